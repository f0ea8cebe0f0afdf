/* GGUF linears computed natively, as llama.cpp's CPU backend defines it:
 * each token's activations are quantized once into the block format the
 * weight type's dot product consumes (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1
 * for Q4_1/Q5_1, Q8_K for the K-quants and IQ4_XS), with the x86 build's
 * rounding for Q8_0/Q8_1; F16 weights see activations rounded to f16, F32
 * and BF16 weights see them as they are (see docs/gguf.md). */
#include <string.h>

#include "core/numconv.h"
#include "kernels/linear_gguf.h"
#include "kernels/linear_x8.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"

#define ROWS_PER_TASK 8

/* Bytes of one token's activation buffer, 64-byte aligned. */
static size_t act_stride(const mq_linear *l) {
  int64_t a = mq_gguf_act_size(l->gtype, l->n_in);
  if (a < (int64_t)l->n_in * 4) a = (int64_t)l->n_in * 4;
  return ((size_t)a + 63) & ~(size_t)63;
}

/* Per token: the activation blocks, then (x8 layers) one int32 code sum per
 * 32-block. */
int mq_linear_gguf_gather_floats(const mq_linear *l) {
  return (int)(act_stride(l) / 4) + 16 + (l->q.x8 ? l->n_in / 32 : 0); /* Q4_0x8 sums */
}

typedef struct {
  const mq_linear *l;
  const uint8_t *act;
  size_t stride, row_bytes;
  float *y;
  int n_tok;
  float (*dot)(int n, const void *w, const void *act); /* SIMD row kernel, or NULL */
} gguf_job;

static void gguf_rows(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const gguf_job *j = ctx;
  const mq_linear *l = j->l;
  int r0 = begin * ROWS_PER_TASK, r1 = end * ROWS_PER_TASK;
  if (r1 > l->n_out) r1 = l->n_out;
  for (int r = r0; r < r1; r++) {
    const uint8_t *w = (const uint8_t *)l->w + (size_t)r * j->row_bytes;
    float b = l->bias ? l->bias[r] : 0.0f;
    for (int t = 0; t < j->n_tok; t++) {
      const uint8_t *a = j->act + (size_t)t * j->stride;
      float d = j->dot ? j->dot(l->n_in, w, a) : mq_gguf_vec_dot(l->gtype, l->n_in, w, a);
      j->y[(size_t)t * l->n_out + r] = d + b;
    }
  }
}

/* Tokens [begin, end) of a prepare: each one's activation blocks (and, for
 * Q4_0 tiles, its blocks' code sums). */
typedef struct {
  const mq_linear *l;
  const mq_kernels *k;
  const float *x;
  uint8_t *act;
  size_t stride;
  int32_t *bsum; /* NULL: none */
} prep_job;

static void prep_tokens(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const prep_job *j = ctx;
  const mq_linear *l = j->l;
  int K = l->n_in;
  for (int t = begin; t < end; t++) {
    const float *xt = j->x + (size_t)t * K;
    uint8_t *at = j->act + (size_t)t * j->stride;
    switch (l->gtype) {
    case MQ_GGML_TYPE_F16: /* ggml converts the activations to f16 first */
      for (int k = 0; k < K; k++) ((float *)at)[k] = mq_f16_to_f32(mq_f32_to_f16(xt[k]));
      break;
    case MQ_GGML_TYPE_Q4_0:
    case MQ_GGML_TYPE_Q5_0:
    case MQ_GGML_TYPE_Q8_0:
    case MQ_GGML_TYPE_IQ4_NL: j->k->gguf_q8_x86(xt, at, K, 0); break;
    case MQ_GGML_TYPE_Q4_1:
    case MQ_GGML_TYPE_Q5_1: j->k->gguf_q8_x86(xt, at, K, 1); break;
    default: mq_gguf_quantize_act(l->gtype, xt, at, K); break;
    }
    if (j->bsum) { /* block code sums after the blocks */
      int nb = K / 32;
      for (int b = 0; b < nb; b++) {
        const int8_t *q = (const int8_t *)(at + (size_t)b * 34 + 2);
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) sum += q[i];
        j->bsum[(size_t)t * nb + b] = sum;
      }
    }
  }
}


size_t mq_linear_gguf_prepare(const mq_linear *l, const float *x, int n_tok, const mq_exec *ex,
                              const int32_t **bsum) {
  size_t stride = act_stride(l);
  uint8_t *act = (uint8_t *)ex->gather;
  /* block code sums: Q4_0x8's -8 term, and Q8_0x8's two-tile (prefill) kernels */
  int sums = l->q.x8 && (l->gtype == MQ_GGML_TYPE_Q4_0 ||
                         (l->gtype == MQ_GGML_TYPE_Q8_0 && n_tok > 1));
  prep_job j = {l, ex->k, x, act, stride, sums ? (int32_t *)(act + (size_t)n_tok * stride) : NULL};
  /* across the pool in prefill: on the caller alone it was 4% of a
   * 1536-token prefill, the other thread idle */
  mq_pool_for(mq_tokens_pool(ex, n_tok, MQ_QUANT_COST * l->n_in), n_tok, prep_tokens, &j);
  *bsum = j.bsum;
  return stride;
}

void mq_linear_forward_gguf(const mq_linear *l, const float *x, int n_tok, float *y,
                            const mq_exec *ex) {
  const int32_t *bsum;
  size_t stride = mq_linear_gguf_prepare(l, x, n_tok, ex, &bsum);
  const uint8_t *act = (const uint8_t *)ex->gather;
  int K = l->n_in;
  if (l->q.x8) {
    mq_x8_gguf_forward(l, act, stride, bsum, n_tok, y, ex);
    return;
  }
  if (l->gtype == MQ_GGML_TYPE_F16) {
    /* F16 rows are a float layer's rows: dotted in place at decode, four
     * converted rows against four tokens at prefill. The f16 x f16 products
     * are exact in float; the sums run in float, as ggml's SIMD F16 dot
     * does (the scalar definition, mq_gguf_vec_dot, sums in double). */
    mq_linear f = *l;
    f.kind = MQ_W_FLOAT;
    f.dtype = MQ_DTYPE_F16;
    mq_linear_float_forward(&f, (const float *)act, stride / sizeof(float), n_tok, y, ex);
    return;
  }
  gguf_job j = {l, act, stride, (size_t)mq_ggml_row_size(l->gtype, K), y, n_tok,
                l->gtype < MQ_GGML_TYPE_COUNT ? ex->k->gguf_dot[l->gtype] : NULL};
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok),
              (l->n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, gguf_rows, &j);
}
