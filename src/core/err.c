#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mq_errf(mq_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

int mq_err_prefix(mq_err *err, const char *fmt, ...) {
  if (!err) return MQ_OK;
  char prefix[512], old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  old[sizeof old - 1] = 0;
  size_t cap = sizeof err->msg - 1, pl = strlen(prefix), ol = strlen(old);
  if (pl > cap) pl = cap;
  if (ol > cap - pl) ol = cap - pl;
  memcpy(err->msg, prefix, pl);
  memcpy(err->msg + pl, old, ol);
  err->msg[pl + ol] = 0;
  return err->code;
}

const char *mq_status_str(int status) {
  switch (status) {
  case MQ_OK: return "ok";
  case MQ_ERR_IO: return "I/O error";
  case MQ_ERR_FORMAT: return "format error";
  case MQ_ERR_UNSUPPORTED: return "unsupported";
  case MQ_ERR_NOMEM: return "out of memory";
  case MQ_ERR_ARG: return "invalid argument";
  case MQ_ERR_RANGE: return "out of range";
  default: return "unknown error";
  }
}
