#include "io/jsonutil.h"

#include <stdlib.h>

#include "core/err.h"
#include "core/file.h"

int mq_json_load_file(const char *path, size_t max_bytes, json_t **out, mq_err *err) {
  char *text;
  size_t len;
  *out = NULL;
  int rc = mq_file_read(path, max_bytes, &text, &len, err);
  if (rc != MQ_OK) return rc;
  json_error_t jerr;
  *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  free(text);
  if (!*out)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, jerr.line,
                   jerr.column, jerr.text);
  return MQ_OK;
}

static json_t *get(const json_t *obj, const char *key) {
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  return json_is_null(v) ? NULL : v;
}

int mq_json_has(const json_t *obj, const char *key) { return get(obj, key) != NULL; }

int mq_json_int_opt(const json_t *obj, const char *key, long long lo, long long hi, long long def,
                    long long *out, const char *where, mq_err *err) {
  json_t *v = get(obj, key);
  *out = def;
  if (!v) return MQ_OK;
  long long x;
  double d = json_is_real(v) ? json_real_value(v) : 0.0;
  if (json_is_integer(v)) x = json_integer_value(v);
  /* 4.0 written by some exporters; the range test comes first because
   * converting a double outside long long's range (1e300) is undefined */
  else if (json_is_real(v) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
           d == (double)(long long)d)
    x = (long long)d;
  else
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be an integer", where, key);
  if (x < lo || x > hi)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" = %lld is outside [%lld, %lld]", where, key, x,
                   lo, hi);
  *out = x;
  return MQ_OK;
}

int mq_json_int_req(const json_t *obj, const char *key, long long lo, long long hi, long long *out,
                    const char *where, mq_err *err) {
  if (!get(obj, key)) return mq_errf(err, MQ_ERR_FORMAT, "%s: missing \"%s\"", where, key);
  return mq_json_int_opt(obj, key, lo, hi, 0, out, where, err);
}

int mq_json_num_opt(const json_t *obj, const char *key, double def, double *out, const char *where,
                    mq_err *err) {
  json_t *v = get(obj, key);
  *out = def;
  if (!v) return MQ_OK;
  if (!json_is_number(v))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be a number", where, key);
  *out = json_number_value(v);
  return MQ_OK;
}

int mq_json_bool_opt(const json_t *obj, const char *key, int def, int *out, const char *where,
                     mq_err *err) {
  json_t *v = get(obj, key);
  *out = def;
  if (!v) return MQ_OK;
  if (!json_is_boolean(v))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be true or false", where, key);
  *out = json_is_true(v);
  return MQ_OK;
}

int mq_json_str_opt(const json_t *obj, const char *key, const char *def, const char **out,
                    const char *where, mq_err *err) {
  json_t *v = get(obj, key);
  *out = def;
  if (!v) return MQ_OK;
  if (!json_is_string(v))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be a string", where, key);
  *out = json_string_value(v);
  return MQ_OK;
}
