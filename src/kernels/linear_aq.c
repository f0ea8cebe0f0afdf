/* Activation-quantized linear layers: the input is quantized per token (int8,
 * int4), per tensor (static int8) or per 32-block (MXFP8), then multiplied
 * with integer / FP8 weights with exact integer (or exact FP8 product)
 * accumulation, as the producers' kernels define it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "kernels/linear_aq.h"
#include "kernels/linear_x8.h"

#define ROWS_PER_TASK 16

static inline int8_t sat(float v, int lo, int hi) {
  float r = mq_round_small(v); /* ties to even; |v| >= 2^22 saturates below either way */
  if (r != r) return 0;    /* NaN (non-finite activations): converting it is undefined */
  return (int8_t)(r < lo ? lo : (r > hi ? hi : r));
}

/* Per-token layout of the gather buffer: K int8 codes, then floats: scale,
 * and group sums of the codes (for weights with zero points), then int32
 * sums of each 32-block's codes (S8 tiles' two-tile kernels). MXFP8 has no
 * codes: its flag, the exact floats and their bf16 vector instead. */
typedef struct {
  size_t stride; /* bytes per token */
  size_t off_scale, off_gsum, off_bsum;
  size_t off_xf; /* MXFP8: the quantized activations as floats (exact) */
  size_t off_xb; /* ... and as the tier's bf16 vector (mq_mx_bf16_len(K) halves), with an
                    int at off_scale + 4: 1 when those are exact and in use */
} aq_layout;

static aq_layout layout(const mq_linear *l) {
  aq_layout a;
  int mx = l->kind == MQ_W_MXFP8;
  size_t K = (size_t)l->n_in, G = (size_t)(l->q.n_groups > 0 ? l->q.n_groups : 1);
  a.off_scale = mx ? 0 : (K + 15) & ~(size_t)15;
  a.off_gsum = a.off_scale + 16;
  a.off_bsum = a.off_gsum + 4 * G;
  a.stride = a.off_bsum + 4 * (K / 32);
  a.off_xf = (a.stride + 63) & ~(size_t)63; /* whole cache lines for the kernels' vectors */
  a.off_xb = (a.off_xf + 4 * K + 63) & ~(size_t)63;
  if (mx) a.stride = a.off_xb + 2 * (size_t)mq_mx_bf16_len((int)K);
  a.stride = (a.stride + 63) & ~(size_t)63;
  return a;
}

int mq_linear_aq_gather_floats(const mq_linear *l) { return (int)(layout(l).stride / 4); }

/* Quantize one token row x [K] into buffer b; with sums, also the S8 tiles'
 * block code sums (only prefill's two-tile kernels read them). */
static void quantize_row(const mq_linear *l, const mq_kernels *kern, const float *x, uint8_t *b,
                         const aq_layout *a, int sums) {
  int K = l->n_in;
  int8_t *xq = (int8_t *)b;
  float *scale = (float *)(b + a->off_scale);
  if (l->act == MQ_ACT_INT8_STATIC) {
    for (int k = 0; k < K; k++) xq[k] = sat(x[k] * l->in_rscale + l->in_offset, -128, 127);
    *scale = 1.0f;
  } else if (l->act == MQ_ACT_MXFP8) { /* no codes: the exact floats are what the kernels take */
    kern->quantize_mxfp8(x, K, (float *)(b + a->off_xf));
    *scale = 1.0f;
    int bf16 = kern->mxfp8_act_bf16 &&
               kern->mxfp8_act_bf16((const float *)(b + a->off_xf), (uint16_t *)(b + a->off_xb), K);
    memcpy(b + a->off_scale + 4, &bf16, sizeof bf16);
  } else {
    int hi = l->act == MQ_ACT_INT4_TOKEN ? 7 : 127, lo = -hi - 1;
    float amax = mq_amax(x, K);
    float s = amax / (float)hi;
    if (amax == 0) {
      memset(xq, 0, (size_t)K);
    } else if (l->act_div) {
      for (int k = 0; k < K; k++) xq[k] = sat(x[k] / s, lo, hi);
    } else {
      float r = (float)hi / amax;
      for (int k = 0; k < K; k++) xq[k] = sat(x[k] * r, lo, hi);
    }
    *scale = s;
  }
  if (sums && l->q.x8 && l->q.codes == MQ_CODES_S8) { /* S8 tiles: each block's code sum */
    int32_t *bs = (int32_t *)(b + a->off_bsum);
    for (int b0 = 0; b0 + 32 <= K; b0 += 32) {
      int32_t s = 0;
      for (int i = 0; i < 32; i++) s += xq[b0 + i];
      bs[b0 / 32] = s;
    }
  }
  if (l->kind == MQ_W_INT && l->q.mins) {
    float *gs = (float *)(b + a->off_gsum);
    for (int g = 0; g < l->q.n_groups; g++) {
      int k0 = g * l->q.group_size, n = K - k0 < l->q.group_size ? K - k0 : l->q.group_size;
      int32_t s = 0;
      for (int i = 0; i < n; i++) s += xq[k0 + i];
      gs[g] = (float)s;
    }
  }
}

typedef struct {
  const mq_linear *l;
  const uint8_t *buf;
  aq_layout a;
  float *y;
  int n_tok;
  const mq_exec *ex;
} aq_job;

static float row_int(const mq_linear *l, const mq_kernels *k, const int8_t *w, int r,
                     const uint8_t *tb, const aq_layout *a) {
  const mq_qint *q = &l->q;
  const int8_t *xq = (const int8_t *)tb;
  int K = l->n_in, G = q->n_groups, gs = q->group_size;
  float s_x = *(const float *)(tb + a->off_scale);
  if (l->act == MQ_ACT_INT8_STATIC) {
    int32_t acc = k->dot_s8s8(w, xq, K);
    return (float)((double)acc + l->qbias[r]) * l->deq[r];
  }
  const float *sc = q->scales + (size_t)r * G, *mn = q->mins ? q->mins + (size_t)r * G : NULL;
  const float *gsum = (const float *)(tb + a->off_gsum);
  float acc = 0;
  for (int g = 0; g < G; g++) {
    int k0 = g * gs, n = K - k0 < gs ? K - k0 : gs;
    acc += sc[g] * (float)k->dot_s8s8(w + k0, xq + k0, n) + (mn ? mn[g] * gsum[g] : 0.0f);
  }
  if (l->qcorr) acc += l->qcorr[r];
  return acc * s_x + (l->bias ? l->bias[r] : 0.0f);
}

/* Whether token buffer tb holds exact bf16 activations (MXFP8). */
static int has_bf16(const uint8_t *tb, const aq_layout *a) {
  int v;
  memcpy(&v, tb + a->off_scale + 4, sizeof v);
  return v;
}

/* MXFP8: the activations as exact floats (x_e4m3 * 2^(e_x - 127)) against
 * the weight row's codes and block exponents; through bf16 products where
 * the tier has them (the same products, summed in another order). */
static float row_mx(const mq_linear *l, const mq_kernels *k, int r, const uint8_t *tb,
                    const aq_layout *a) {
  int K = l->n_in, nb = K / 32;
  const uint8_t *w = l->q.data + (size_t)r * K, *we = l->mx_exp + (size_t)r * nb;
  float v = has_bf16(tb, a) ? k->dot_mxfp8_bf16(w, we, (const uint16_t *)(tb + a->off_xb), K)
                            : k->dot_mxfp8_f32(w, we, (const float *)(tb + a->off_xf), K);
  return v + (l->bias ? l->bias[r] : 0.0f);
}

/* Prefill through bf16: rows r .. r + nr - 1 (nr <= 4) converted into the
 * thread's scratch with their scales folded in, then 4 x 4 blocks against
 * the tokens' bf16 activations (all exact: checked by the caller). Returns 0
 * when a row's scales leave bf16's range; the caller then takes floats. */
static int mx_bf16_block(const aq_job *j, int r, int nr, int tid) {
  const mq_linear *l = j->l;
  const mq_kernels *k = j->ex->k;
  int K = l->n_in, len = mq_mx_bf16_len(K);
  const uint16_t *wp[4], *xp[4];
  uint16_t *dst = (uint16_t *)j->ex->scratch[tid];
  for (int i = 0; i < nr; i++) {
    if (!k->mxfp8_to_bf16(l->q.data + (size_t)(r + i) * K, l->mx_exp + (size_t)(r + i) * (K / 32),
                          dst + (size_t)i * len, K))
      return 0;
    wp[i] = dst + (size_t)i * len;
  }
  for (int i = nr; i < 4; i++) wp[i] = wp[0]; /* padding: copies, results dropped */
  float o[16];
  for (int t0 = 0; t0 < j->n_tok; t0 += 4) {
    int nt = j->n_tok - t0 < 4 ? j->n_tok - t0 : 4;
    for (int t = 0; t < 4; t++)
      xp[t] = (const uint16_t *)(j->buf + (size_t)(t0 + (t < nt ? t : 0)) * j->a.stride + j->a.off_xb);
    k->dot4x4_bf16(wp, xp, len, o);
    for (int t = 0; t < nt; t++)
      for (int i = 0; i < nr; i++)
        j->y[(size_t)(t0 + t) * l->n_out + r + i] = o[t * 4 + i] + (l->bias ? l->bias[r + i] : 0.0f);
  }
  return 1;
}

static void aq_rows(void *ctx, int begin, int end, int tid) {
  const aq_job *j = ctx;
  const mq_linear *l = j->l;
  const mq_kernels *k = j->ex->k;
  int K = l->n_in, r0 = begin * ROWS_PER_TASK, r1 = end * ROWS_PER_TASK;
  if (r1 > l->n_out) r1 = l->n_out;
  if (l->kind == MQ_W_MXFP8 && j->n_tok > 1) {
    /* several tokens: four rows converted once (the E4M3 decode is the
     * cost), then bf16 or float blocks against the exact activations; the
     * same sums in another order */
    int bf16 = k->mxfp8_to_bf16 != NULL;
    for (int t = 0; bf16 && t < j->n_tok; t++) bf16 = has_bf16(j->buf + (size_t)t * j->a.stride, &j->a);
    for (int r = r0; r < r1; r += 4) {
      int nr = r1 - r < 4 ? r1 - r : 4;
      if (!bf16 || !mx_bf16_block(j, r, nr, tid)) {
        const float *wf[4];
        for (int i = 0; i < nr; i++) {
          float *dst = j->ex->scratch[tid] + (size_t)i * K;
          k->mxfp8_to_f32(l->q.data + (size_t)(r + i) * K, l->mx_exp + (size_t)(r + i) * (K / 32),
                          dst, K);
          wf[i] = dst;
        }
        mq_float_block(k, wf, nr, (const float *)(j->buf + j->a.off_xf), j->a.stride / 4, K,
                       j->n_tok, j->y, l->n_out, r, l->bias);
      }
      for (int t = 0; l->out_bf16 && t < j->n_tok; t++)
        for (int i = 0; i < nr; i++) {
          float *v = &j->y[(size_t)t * l->n_out + r + i];
          *v = mq_bf16_to_f32(mq_f32_to_bf16(*v));
        }
    }
    return;
  }
  for (int r = r0; r < r1; r++) {
    const int8_t *w = (const int8_t *)l->q.data + (size_t)r * K;
    for (int t = 0; t < j->n_tok; t++) {
      const uint8_t *tb = j->buf + (size_t)t * j->a.stride;
      float v = l->kind == MQ_W_MXFP8 ? row_mx(l, k, r, tb, &j->a) : row_int(l, k, w, r, tb, &j->a);
      if (l->out_bf16) v = mq_bf16_to_f32(mq_f32_to_bf16(v));
      j->y[(size_t)t * l->n_out + r] = v;
    }
  }
}

/* Tokens [begin, end) of x8 tiles' row sums y: the per-token terms
 * (static: the quant_bias and deq_scale of the row path). */
typedef struct {
  const mq_linear *l;
  const uint8_t *buf;
  const aq_layout *a;
  float *y;
  int stat;
} post_job;

static void post_tokens(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const post_job *j = ctx;
  const mq_linear *l = j->l;
  for (int t = begin; t < end; t++) {
    float s_x = *(const float *)(j->buf + (size_t)t * j->a->stride + j->a->off_scale);
    for (int n = 0; n < l->n_out; n++) {
      float *v = &j->y[(size_t)t * l->n_out + n];
      if (j->stat) *v = (float)((double)*v + l->qbias[n]) * l->deq[n];
      else *v = (*v + (l->qcorr ? l->qcorr[n] : 0.0f)) * s_x + (l->bias ? l->bias[n] : 0.0f);
      if (l->out_bf16) *v = mq_bf16_to_f32(mq_f32_to_bf16(*v));
    }
  }
}

/* Static W8A8 in S8 tiles: the tile kernels take activation codes in
 * [-127, 127] (their sign trick), while static quantization may give -128.
 * Those codes go in as -127 and the missing -w[n][k] is subtracted after
 * (rare: inputs below the calibrated range). The integer sums are exact in
 * float below 2^24, so y = (sum + quant_bias) * deq_scale as the row path. */
static void static_x8(const mq_linear *l, uint8_t *buf, const aq_layout *a, int n_tok, float *y,
                      const mq_exec *ex) {
  int K = l->n_in, N = l->n_out, n_low = 0;
  for (int t = 0; t < n_tok; t++)
    for (int k = 0; k < K; k++) n_low += (int8_t)buf[(size_t)t * a->stride + k] == -128;
  int *low = n_low ? malloc(sizeof(int) * 2 * (size_t)n_low) : NULL; /* (token, column) pairs */
  if (n_low && !low) { /* no memory for the list: exact sums on the tiles' codes, row by row */
    for (int t = 0; t < n_tok; t++)
      for (int n = 0; n < N; n++) {
        int64_t s = 0;
        for (int k = 0; k < K; k++)
          s += (int64_t)mq_x8_s8_code(l, n, k) * (int8_t)buf[(size_t)t * a->stride + k];
        y[(size_t)t * N + n] = (float)s;
      }
  } else {
    for (int t = 0, i = 0; i < n_low && t < n_tok; t++)
      for (int k = 0; k < K; k++) {
        int8_t *c = (int8_t *)buf + (size_t)t * a->stride + k;
        if (*c == -128) { /* the block's code sum follows the code */
          *c = -127, low[2 * i] = t, low[2 * i + 1] = k, i++;
          if (n_tok > 1) ((int32_t *)(buf + (size_t)t * a->stride + a->off_bsum))[k / 32] += 1;
        }
      }
    mq_x8_aq_forward(l, buf, a->stride, a->off_gsum, a->off_bsum, n_tok, y, ex);
    for (int i = 0; i < n_low; i++)
      for (int n = 0; n < N; n++)
        y[(size_t)low[2 * i] * N + n] -= (float)mq_x8_s8_code(l, n, low[2 * i + 1]);
  }
  free(low);
  post_job pj = {l, buf, a, y, 1};
  mq_pool_for(mq_tokens_pool(ex, n_tok, 4.0 * N), n_tok, post_tokens, &pj);
}

typedef struct {
  const mq_linear *l;
  const float *x;
  uint8_t *buf;
  const aq_layout *a;
  const mq_kernels *k;
  int sums; /* prefill: the block code sums too */
} quant_job;

static void quantize_tokens(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const quant_job *j = ctx;
  for (int t = begin; t < end; t++)
    quantize_row(j->l, j->k, j->x + (size_t)t * j->l->n_in, j->buf + (size_t)t * j->a->stride,
                 j->a, j->sums);
}

void mq_linear_forward_aq(const mq_linear *l, const float *x, int n_tok, float *y,
                          const mq_exec *ex) {
  aq_layout a = layout(l);
  uint8_t *buf = (uint8_t *)ex->gather;
  /* the tokens' activation codes, across the pool in prefill */
  quant_job qj = {l, x, buf, &a, ex->k, n_tok > 1};
  mq_pool_for(mq_tokens_pool(ex, n_tok, MQ_QUANT_COST * l->n_in), n_tok, quantize_tokens, &qj);
  if (l->q.x8 && l->act == MQ_ACT_INT8_STATIC) {
    static_x8(l, buf, &a, n_tok, y, ex);
    return;
  }
  if (l->q.x8) { /* weights in x8 tiles: row sums, then the per-token terms */
    mq_x8_aq_forward(l, buf, a.stride, a.off_gsum, a.off_bsum, n_tok, y, ex);
    post_job pj = {l, buf, &a, y, 0};
    mq_pool_for(mq_tokens_pool(ex, n_tok, 4.0 * l->n_out), n_tok, post_tokens, &pj);
    return;
  }
  aq_job j = {l, buf, a, y, n_tok, ex};
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok),
              (l->n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, aq_rows, &j);
}
