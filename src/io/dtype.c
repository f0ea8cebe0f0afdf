#include "io/dtype.h"

#include <string.h>

static const struct {
  const char *name;
  int size;
} k_dtypes[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_INVALID] = {"INVALID", 0}, [MQ_DTYPE_BOOL] = {"BOOL", 1},
    [MQ_DTYPE_U8] = {"U8", 1},           [MQ_DTYPE_I8] = {"I8", 1},
    [MQ_DTYPE_U16] = {"U16", 2},         [MQ_DTYPE_I16] = {"I16", 2},
    [MQ_DTYPE_U32] = {"U32", 4},         [MQ_DTYPE_I32] = {"I32", 4},
    [MQ_DTYPE_U64] = {"U64", 8},         [MQ_DTYPE_I64] = {"I64", 8},
    [MQ_DTYPE_F16] = {"F16", 2},         [MQ_DTYPE_BF16] = {"BF16", 2},
    [MQ_DTYPE_F32] = {"F32", 4},         [MQ_DTYPE_F64] = {"F64", 8},
    [MQ_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [MQ_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [MQ_DTYPE_F8_E8M0] = {"F8_E8M0", 1},
};

mq_dtype mq_dtype_from_name(const char *name) {
  for (int t = 1; t < MQ_DTYPE_COUNT; t++)
    if (strcmp(name, k_dtypes[t].name) == 0) return (mq_dtype)t;
  return MQ_DTYPE_INVALID;
}

const char *mq_dtype_name(mq_dtype t) {
  return (t > 0 && t < MQ_DTYPE_COUNT) ? k_dtypes[t].name : "INVALID";
}

int mq_dtype_size(mq_dtype t) { return (t > 0 && t < MQ_DTYPE_COUNT) ? k_dtypes[t].size : 0; }

int mq_dtype_is_float(mq_dtype t) {
  return t == MQ_DTYPE_F16 || t == MQ_DTYPE_BF16 || t == MQ_DTYPE_F32 || t == MQ_DTYPE_F64;
}
