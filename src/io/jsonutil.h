/* Typed access to JSON values (jansson) with clear errors.
 * The getters treat JSON null like a missing key. */
#ifndef MQ_IO_JSONUTIL_H
#define MQ_IO_JSONUTIL_H

#include <jansson.h>

#include "mixq.h"

/* Parse a (small) JSON file; rejects duplicate keys. Caller json_decref()s. */
int mq_json_load_file(const char *path, size_t max_bytes, json_t **out, mq_err *err);

/* 1 if obj has key with a non-null value. */
int mq_json_has(const json_t *obj, const char *key);

/* Getters: return MQ_OK and set *out; MQ_ERR_FORMAT naming `where` and key
 * when the value has the wrong type or range. When the key is absent, the
 * _opt forms leave *out at the default given and return MQ_OK; the _req forms
 * fail. */
int mq_json_int_opt(const json_t *obj, const char *key, long long lo, long long hi, long long def,
                    long long *out, const char *where, mq_err *err);
int mq_json_int_req(const json_t *obj, const char *key, long long lo, long long hi, long long *out,
                    const char *where, mq_err *err);
int mq_json_num_opt(const json_t *obj, const char *key, double def, double *out, const char *where,
                    mq_err *err);
int mq_json_bool_opt(const json_t *obj, const char *key, int def, int *out, const char *where,
                     mq_err *err);
/* *out borrowed from obj. */
int mq_json_str_opt(const json_t *obj, const char *key, const char *def, const char **out,
                    const char *where, mq_err *err);

#endif
