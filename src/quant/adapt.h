/* Format adapters: turn one layer's on-disk tensors into the canonical
 * mq_linear (kernels/linear.h), bit-exactly. Memory they allocate belongs to
 * the model (mq_model_alloc). */
#ifndef MQ_QUANT_ADAPT_H
#define MQ_QUANT_ADAPT_H

#include <string.h>

#include "kernels/linear.h"
#include "model/model.h"
#include "quant/plan.h"

/* name: module prefix ("model.layers.0.mlp.up_proj"); [N, K] its shape. */
int mq_adapt_awq(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                 mq_linear *l, mq_err *err);
int mq_adapt_gptq(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                  mq_linear *l, mq_err *err);
int mq_adapt_ct(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                mq_linear *l, mq_err *err);
/* Checks of quant_model_description.json as a whole (warnings go to m). */
int mq_modelslim_validate(struct mq_model *m, const json_t *desc, const char *where, mq_err *err);
int mq_adapt_modelslim(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                       mq_linear *l, mq_err *err);

/* ---- shared helpers (adapt_util.c) ---- */

/* Tensor name.suffix with one of the dtypes (MQ_DTYPE_INVALID-terminated
 * list) and, when d0/d1 >= 0, that shape ([d0] for n_dims 1). Errors name the
 * layer, its scheme and what was expected. NULL tensor + MQ_OK when optional
 * and absent. */
int mq_adapt_tensor(const struct mq_model *m, const char *name, const mq_lspec *s,
                    const char *suffix, const mq_dtype *dtypes, int n_dims, int64_t d0, int64_t d1,
                    int optional, const mq_tensor **out, mq_err *err);

/* Element i of a float tensor (F16/BF16/F32) as f32. */
float mq_adapt_float_at(const mq_tensor *t, uint64_t i);
/* Element i of an integer tensor (I32/U32/I64/I8/U8) as int64; words of I32
 * are returned as their unsigned bit pattern. */
int64_t mq_adapt_int_at(const mq_tensor *t, uint64_t i);
/* Element i of an I32 / U32 tensor as its 32 bits (the packed-code words
 * of AWQ and GPTQ: inline, where mq_adapt_int_at's dtype switch cost a
 * call per word in the load loops). */
static inline uint32_t mq_adapt_word_at(const mq_tensor *t, uint64_t i) {
  uint32_t w;
  memcpy(&w, t->data + 4 * i, 4);
  return w;
}

/* Fill the qint of l for N x K with group size gs (-1: K) and U4 or U8/S8
 * codes: allocates scales (+ mins) and the codes, unless in_place gives
 * codes already in the canonical layout (then used where they are). */
int mq_adapt_alloc(struct mq_model *m, const char *name, mq_linear *l, int N, int K, int bits,
                   int gs, mq_codes codes, int with_mins, const uint8_t *in_place, mq_err *err);
/* Store code c at [n, j] of a U4/U8 allocation. */
void mq_adapt_put(mq_linear *l, int n, int j, unsigned c);

/* From g_idx [K] (values < G): NULL perm when g_idx[k] == k / gs for all k;
 * otherwise a permutation that makes groups contiguous (each group must then
 * hold exactly gs channels, the last one K - (G-1) gs). */
int mq_adapt_perm(struct mq_model *m, const char *name, const mq_tensor *g_idx, int K, int gs,
                  int G, int32_t **perm, mq_err *err);

/* The bias of a quantized linear (optional: NULL when absent). */
int mq_adapt_bias(struct mq_model *m, const char *name, int N, const float **out, mq_err *err);

/* int4 weights of name: [N,K] one value per byte (checked to lie in
 * [-8, 7]) or [N/2,K] two per byte along N (low nibble = even row, the
 * ModelSlim / Ascend packing); *out: S8 [N,K] (in place or model-owned). */
int mq_adapt_int4(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                  const uint8_t **out, mq_err *err);

#endif
