#include "quant/gguf_types.h"

#include <stddef.h>

#define W MQ_GGML_WEIGHT
#define A MQ_GGML_ACTIVATION

/* Block sizes and bytes per block from ggml-common.h's block structs
 * (specs/formats.md §5.2). A NULL name marks a removed id. */
static const mq_ggml_type_info k_types[MQ_GGML_TYPE_COUNT] = {
    [MQ_GGML_TYPE_F32] = {"f32", 1, 4, W},
    [MQ_GGML_TYPE_F16] = {"f16", 1, 2, W},
    [MQ_GGML_TYPE_Q4_0] = {"q4_0", 32, 18, W},
    [MQ_GGML_TYPE_Q4_1] = {"q4_1", 32, 20, W},
    [MQ_GGML_TYPE_Q5_0] = {"q5_0", 32, 22, W},
    [MQ_GGML_TYPE_Q5_1] = {"q5_1", 32, 24, W},
    [MQ_GGML_TYPE_Q8_0] = {"q8_0", 32, 34, W | A},
    [MQ_GGML_TYPE_Q8_1] = {"q8_1", 32, 36, A},
    [MQ_GGML_TYPE_Q2_K] = {"q2_K", 256, 84, W},
    [MQ_GGML_TYPE_Q3_K] = {"q3_K", 256, 110, W},
    [MQ_GGML_TYPE_Q4_K] = {"q4_K", 256, 144, W},
    [MQ_GGML_TYPE_Q5_K] = {"q5_K", 256, 176, W},
    [MQ_GGML_TYPE_Q6_K] = {"q6_K", 256, 210, W},
    [MQ_GGML_TYPE_Q8_K] = {"q8_K", 256, 292, A},
    [MQ_GGML_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, 0},
    [MQ_GGML_TYPE_IQ2_XS] = {"iq2_xs", 256, 74, 0},
    [MQ_GGML_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, 0},
    [MQ_GGML_TYPE_IQ1_S] = {"iq1_s", 256, 50, 0},
    [MQ_GGML_TYPE_IQ4_NL] = {"iq4_nl", 32, 18, W},
    [MQ_GGML_TYPE_IQ3_S] = {"iq3_s", 256, 110, 0},
    [MQ_GGML_TYPE_IQ2_S] = {"iq2_s", 256, 82, 0},
    [MQ_GGML_TYPE_IQ4_XS] = {"iq4_xs", 256, 136, W},
    [MQ_GGML_TYPE_I8] = {"i8", 1, 1, 0},
    [MQ_GGML_TYPE_I16] = {"i16", 1, 2, 0},
    [MQ_GGML_TYPE_I32] = {"i32", 1, 4, 0},
    [MQ_GGML_TYPE_I64] = {"i64", 1, 8, 0},
    [MQ_GGML_TYPE_F64] = {"f64", 1, 8, 0},
    [MQ_GGML_TYPE_IQ1_M] = {"iq1_m", 256, 56, 0},
    [MQ_GGML_TYPE_BF16] = {"bf16", 1, 2, W},
    [MQ_GGML_TYPE_TQ1_0] = {"tq1_0", 256, 54, 0},
    [MQ_GGML_TYPE_TQ2_0] = {"tq2_0", 256, 66, 0},
    [MQ_GGML_TYPE_MXFP4] = {"mxfp4", 32, 17, 0},
    [MQ_GGML_TYPE_NVFP4] = {"nvfp4", 64, 36, 0},
    [MQ_GGML_TYPE_Q1_0] = {"q1_0", 128, 18, 0},
    [MQ_GGML_TYPE_Q2_0] = {"q2_0", 64, 18, 0},
};

const mq_ggml_type_info *mq_ggml_type_get(uint32_t id) {
  if (id >= MQ_GGML_TYPE_COUNT || !k_types[id].name) return NULL;
  return &k_types[id];
}

const char *mq_ggml_type_name(uint32_t id) {
  const mq_ggml_type_info *t = mq_ggml_type_get(id);
  if (t) return t->name;
  return id < MQ_GGML_TYPE_COUNT ? "removed" : "unknown";
}

int mq_ggml_type_supported(uint32_t id) {
  const mq_ggml_type_info *t = mq_ggml_type_get(id);
  return t && (t->flags & MQ_GGML_WEIGHT);
}

int64_t mq_ggml_row_size(uint32_t id, int64_t n) {
  const mq_ggml_type_info *t = mq_ggml_type_get(id);
  if (!t || n < 0 || n % t->blck) return -1;
  return n / t->blck * t->type_size;
}
