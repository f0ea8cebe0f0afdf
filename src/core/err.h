/* Error reporting helpers shared by every layer of the library. */
#ifndef MQ_CORE_ERR_H
#define MQ_CORE_ERR_H

#include "mixq.h"

#if defined(__GNUC__)
#define MQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MQ_PRINTF(a, b)
#endif

/* Fill err (may be NULL) with code and a formatted message; returns code so
 * callers can write `return mq_errf(err, MQ_ERR_FORMAT, "...")`. */
int mq_errf(mq_err *err, int code, const char *fmt, ...) MQ_PRINTF(3, 4);

/* Prefix an already-filled message with more context ("file.json: " + msg). */
int mq_err_prefix(mq_err *err, const char *fmt, ...) MQ_PRINTF(2, 3);

#endif
