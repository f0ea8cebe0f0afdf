/* The ggml tensor types a GGUF file can name (specs/formats.md §5.2): id,
 * name, block size in elements, bytes per block, and what mixq does with
 * each. Ids follow ggml's `enum ggml_type` (2026: GGML_TYPE_COUNT = 43);
 * ids 4, 5, 31-33 and 36-38 are types ggml removed and have no entry. */
#ifndef MQ_QUANT_GGUF_TYPES_H
#define MQ_QUANT_GGUF_TYPES_H

#include <stdint.h>

typedef enum mq_ggml_type {
  MQ_GGML_TYPE_F32 = 0,
  MQ_GGML_TYPE_F16 = 1,
  MQ_GGML_TYPE_Q4_0 = 2,
  MQ_GGML_TYPE_Q4_1 = 3,
  MQ_GGML_TYPE_Q5_0 = 6,
  MQ_GGML_TYPE_Q5_1 = 7,
  MQ_GGML_TYPE_Q8_0 = 8,
  MQ_GGML_TYPE_Q8_1 = 9,
  MQ_GGML_TYPE_Q2_K = 10,
  MQ_GGML_TYPE_Q3_K = 11,
  MQ_GGML_TYPE_Q4_K = 12,
  MQ_GGML_TYPE_Q5_K = 13,
  MQ_GGML_TYPE_Q6_K = 14,
  MQ_GGML_TYPE_Q8_K = 15,
  MQ_GGML_TYPE_IQ2_XXS = 16,
  MQ_GGML_TYPE_IQ2_XS = 17,
  MQ_GGML_TYPE_IQ3_XXS = 18,
  MQ_GGML_TYPE_IQ1_S = 19,
  MQ_GGML_TYPE_IQ4_NL = 20,
  MQ_GGML_TYPE_IQ3_S = 21,
  MQ_GGML_TYPE_IQ2_S = 22,
  MQ_GGML_TYPE_IQ4_XS = 23,
  MQ_GGML_TYPE_I8 = 24,
  MQ_GGML_TYPE_I16 = 25,
  MQ_GGML_TYPE_I32 = 26,
  MQ_GGML_TYPE_I64 = 27,
  MQ_GGML_TYPE_F64 = 28,
  MQ_GGML_TYPE_IQ1_M = 29,
  MQ_GGML_TYPE_BF16 = 30,
  MQ_GGML_TYPE_TQ1_0 = 34,
  MQ_GGML_TYPE_TQ2_0 = 35,
  MQ_GGML_TYPE_MXFP4 = 39,
  MQ_GGML_TYPE_NVFP4 = 40,
  MQ_GGML_TYPE_Q1_0 = 41,
  MQ_GGML_TYPE_Q2_0 = 42,
  MQ_GGML_TYPE_COUNT = 43
} mq_ggml_type;

/* What mixq does with a type (bit flags). */
enum {
  MQ_GGML_WEIGHT = 1,     /* weights of this type are computed natively */
  MQ_GGML_ACTIVATION = 2, /* used for quantized activations (Q8_0, Q8_1, Q8_K) */
};

typedef struct mq_ggml_type_info {
  const char *name; /* ggml's name: "f32", "q4_0", "q4_K", "iq4_xs" ... */
  int blck;         /* elements per block (1 for plain element types) */
  int type_size;    /* bytes per block */
  int flags;        /* MQ_GGML_WEIGHT | MQ_GGML_ACTIVATION */
} mq_ggml_type_info;

/* Info of a type id, or NULL for ids >= MQ_GGML_TYPE_COUNT and removed ids. */
const mq_ggml_type_info *mq_ggml_type_get(uint32_t id);
/* Name of a type id; "removed" / "unknown" for ids without an entry. */
const char *mq_ggml_type_name(uint32_t id);
/* 1 when weights of this type are computed by mixq. */
int mq_ggml_type_supported(uint32_t id);
/* Bytes of a row of n elements (n a multiple of the block size), or -1 when
 * the type is unknown or n is not a multiple of its block size. */
int64_t mq_ggml_row_size(uint32_t id, int64_t n);

#endif
