/* Element types of stored tensors (safetensors names). */
#ifndef MQ_IO_DTYPE_H
#define MQ_IO_DTYPE_H

#include <stdint.h>

typedef enum mq_dtype {
  MQ_DTYPE_INVALID = 0,
  MQ_DTYPE_BOOL,
  MQ_DTYPE_U8,
  MQ_DTYPE_I8,
  MQ_DTYPE_U16,
  MQ_DTYPE_I16,
  MQ_DTYPE_U32,
  MQ_DTYPE_I32,
  MQ_DTYPE_U64,
  MQ_DTYPE_I64,
  MQ_DTYPE_F16,
  MQ_DTYPE_BF16,
  MQ_DTYPE_F32,
  MQ_DTYPE_F64,
  MQ_DTYPE_F8_E4M3,
  MQ_DTYPE_F8_E5M2,
  MQ_DTYPE_F8_E8M0,
  MQ_DTYPE_COUNT
} mq_dtype;

/* "F32" -> MQ_DTYPE_F32; MQ_DTYPE_INVALID for unknown names. */
mq_dtype mq_dtype_from_name(const char *name);
const char *mq_dtype_name(mq_dtype t);
/* Bytes per element (all supported types are whole bytes); 0 if invalid. */
int mq_dtype_size(mq_dtype t);
/* 1 for F16/BF16/F32/F64 (types a float weight may have). */
int mq_dtype_is_float(mq_dtype t);

#endif
