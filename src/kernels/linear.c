#include "kernels/linear.h"

#include <stddef.h>
#include <string.h>

#include "core/numconv.h"
#include "kernels/linear_aq.h"
#include "kernels/linear_gguf.h"
#include "kernels/linear_x8.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"

#define ROWS_PER_TASK 16

const char *mq_act_name(mq_act a) {
  switch (a) {
  case MQ_ACT_FLOAT: return "float";
  case MQ_ACT_INT8_TOKEN: return "int8-token";
  case MQ_ACT_INT8_STATIC: return "int8-static";
  case MQ_ACT_INT4_TOKEN: return "int4-token";
  case MQ_ACT_FP8: return "fp8";
  case MQ_ACT_MXFP8: return "mxfp8-32";
  }
  return "?";
}

typedef struct {
  const mq_linear *l;
  const float *x; /* token t at x + t * ldx */
  size_t ldx;
  float *y;
  int n_tok;
  const mq_exec *ex;
} job;

static void float_rows(void *ctx, int begin, int end, int tid) {
  const job *j = ctx;
  const mq_linear *l = j->l;
  const mq_kernels *k = j->ex->k;
  size_t esz = (size_t)mq_dtype_size(l->dtype);
  int r0 = begin * ROWS_PER_TASK, r1 = end * ROWS_PER_TASK;
  if (r1 > l->n_out) r1 = l->n_out;
  if (j->n_tok == 1 && l->dtype != MQ_DTYPE_F32) { /* decode: dot straight from the row */
    float (*dot)(const uint16_t *, const float *, int) =
        l->dtype == MQ_DTYPE_BF16 ? k->dot_bf16_f32 : k->dot_f16_f32;
    for (int r = r0; r < r1; r++)
      j->y[r] = dot((const uint16_t *)((const char *)l->w + (size_t)r * l->n_in * esz), j->x, l->n_in) +
                (l->bias ? l->bias[r] : 0.0f);
    return;
  }
  for (int r = r0; r < r1; r += 4) {
    /* Convert four weight rows once, then reuse them for every token. */
    int nr = r1 - r < 4 ? r1 - r : 4, K = l->n_in;
    const float *w[4];
    for (int i = 0; i < nr; i++)
      w[i] = mq_row_f32(k, l->dtype, (const char *)l->w + (size_t)(r + i) * K * esz,
                        j->ex->scratch[tid] + (size_t)i * K, K);
    mq_float_block(k, w, nr, j->x, j->ldx, K, j->n_tok, j->y, l->n_out, r, l->bias);
  }
}

void mq_float_block(const mq_kernels *k, const float *const w[4], int nr, const float *x,
                    size_t ldx, int K, int n_tok, float *y, int n_out, int r0, const float *bias) {
  const float *wp[4], *xp[4];
  float o[16];
  for (int i = 0; i < 4; i++) wp[i] = w[i < nr ? i : 0]; /* padding: copies, results dropped */
  for (int t0 = 0; t0 < n_tok; t0 += 4) {
    int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
    for (int i = 0; i < 4; i++) xp[i] = x + (size_t)(t0 + (i < nt ? i : 0)) * ldx;
    if (k->dot4x4_f32) k->dot4x4_f32(wp, xp, nt, K, o);
    else
      for (int t = 0; t < nt; t++)
        for (int i = 0; i < nr; i++) o[t * 4 + i] = k->dot_f32(wp[i], xp[t], K);
    for (int t = 0; t < nt; t++)
      for (int i = 0; i < nr; i++)
        y[(size_t)(t0 + t) * n_out + r0 + i] = o[t * 4 + i] + (bias ? bias[r0 + i] : 0.0f);
  }
}

/* Integer rows: y[n] = sum_g scale[n][g] * <codes_g, x_g> + min[n][g] * sum(x_g).
 * x has been gathered (perm) and its group sums computed by the caller. */
typedef struct {
  const mq_linear *l;
  const float *xg;   /* [n_tok, K] gathered input */
  const float *gsum; /* [n_tok, n_groups] */
  const int8_t *xq;  /* fast path: [n_tok, K] int8 blocks, or NULL */
  const float *xd;   /* fast path: [n_tok, K/32] block scales */
  float *y;
  int n_tok;
  const mq_exec *ex;
} int_job;

/* Fast path, 4 tokens at once for U4 codes: each weight block decoded once. */
static void int_rows4(const int_job *j, const uint8_t *row, const float *sc, const float *mn,
                      int t0, float out[4]) {
  const mq_linear *l = j->l;
  const mq_qint *q = &l->q;
  int K = l->n_in, gs = q->group_size, G = q->n_groups;
  out[0] = out[1] = out[2] = out[3] = 0;
  for (int g = 0; g < G; g++) {
    int k0 = g * gs, n = K - k0 < gs ? K - k0 : gs;
    float d[4];
    j->ex->k->dot4_u4_q8(row + k0 / 2, j->xq + (size_t)t0 * K + k0, K,
                         j->xd + ((size_t)t0 * K + k0) / 32, K / 32, n, d);
    for (int i = 0; i < 4; i++)
      out[i] += sc[g] * d[i] + (mn ? mn[g] * j->gsum[(size_t)(t0 + i) * G + g] : 0.0f);
  }
}

static void int_rows(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const int_job *j = ctx;
  const mq_linear *l = j->l;
  const mq_qint *q = &l->q;
  const mq_kernels *k = j->ex->k;
  int K = l->n_in, gs = q->group_size, G = q->n_groups;
  size_t row_bytes = q->codes == MQ_CODES_U4 ? (size_t)K / 2 : (size_t)K;
  int r0 = begin * ROWS_PER_TASK, r1 = end * ROWS_PER_TASK;
  if (r1 > l->n_out) r1 = l->n_out;
  for (int r = r0; r < r1; r++) {
    const uint8_t *row = q->data + (size_t)r * row_bytes;
    const float *sc = q->scales + (size_t)r * G, *mn = q->mins ? q->mins + (size_t)r * G : NULL;
    float b = l->bias ? l->bias[r] : 0.0f;
    int t = 0;
    if (j->xq && q->codes == MQ_CODES_U4)
      for (; t + 4 <= j->n_tok; t += 4) {
        float o[4];
        int_rows4(j, row, sc, mn, t, o);
        for (int i = 0; i < 4; i++) j->y[(size_t)(t + i) * l->n_out + r] = o[i] + b;
      }
    for (; t < j->n_tok; t++) {
      const float *x = j->xg + (size_t)t * K, *gs_t = j->gsum + (size_t)t * G;
      float acc = 0;
      for (int g = 0; g < G; g++) {
        int k0 = g * gs, n = K - k0 < gs ? K - k0 : gs;
        float d;
        if (j->xq) { /* fast path: groups are whole 32-blocks */
          const int8_t *xq = j->xq + (size_t)t * K + k0;
          const float *xd = j->xd + ((size_t)t * K + k0) / 32;
          d = q->codes == MQ_CODES_U4 ? k->dot_u4_q8(row + k0 / 2, xq, xd, n)
                                      : k->dot_u8_q8(row + k0, xq, xd, n);
        } else if (q->codes == MQ_CODES_U4) d = k->dot_u4_f32(row + k0 / 2, x + k0, n);
        else if (q->codes == MQ_CODES_U8) d = k->dot_u8_f32(row + k0, x + k0, n);
        else d = k->dot_s8_f32((const int8_t *)row + k0, x + k0, n);
        acc += sc[g] * d + (mn ? mn[g] * gs_t[g] : 0.0f);
      }
      j->y[(size_t)t * l->n_out + r] = acc + b;
    }
  }
}

mq_pool *mq_tokens_pool(const mq_exec *ex, int n_tok, double cost) {
  return n_tok > 1 ? mq_pool_if(ex->pool, cost * n_tok) : NULL;
}

typedef struct {
  const mq_kernels *k;
  const float *x;
  int K, gs;
  float *gsum;
  int8_t *xq;
  float *xd;
  int32_t *bsum;
} a16_prep;

static void a16_prep_tokens(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const a16_prep *p = ctx;
  int K = p->K, G = (K + p->gs - 1) / p->gs;
  for (int t = begin; t < end; t++) {
    const float *xt = p->x + (size_t)t * K;
    if (p->gsum)
      for (int g = 0; g < G; g++) {
        int k0 = g * p->gs, n = K - k0 < p->gs ? K - k0 : p->gs;
        double s = 0;
        for (int i = 0; i < n; i++) s += xt[k0 + i];
        p->gsum[(size_t)t * G + g] = (float)s;
      }
    if (p->xq) {
      int8_t *q = p->xq + (size_t)t * K;
      p->k->quantize_q8_32(xt, K, q, p->xd + (size_t)t * (K / 32));
      for (int b = 0; p->bsum && b < K / 32; b++) {
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += q[32 * b + i];
        p->bsum[(size_t)t * (K / 32) + b] = s;
      }
    }
  }
}

void mq_a16_prepare(const float *x, int n_tok, int K, int gs, float *gsum, int8_t *xq, float *xd,
                    int32_t *bsum, const mq_exec *ex) {
  a16_prep p = {ex->k, x, K, gs, gsum, xq, xd, bsum};
  mq_pool_for(mq_tokens_pool(ex, n_tok, MQ_QUANT_COST * K), n_tok, a16_prep_tokens, &p);
}

static void int_forward(const mq_linear *l, const float *x, int n_tok, float *y, const mq_exec *ex) {
  const mq_qint *q = &l->q;
  int K = l->n_in, G = q->n_groups;
  float *xg = ex->gather, *gsum = xg + (size_t)n_tok * K; /* see mq_linear_gather_floats */
  const float *xin = x;
  if (q->perm) {
    for (int t = 0; t < n_tok; t++)
      for (int j = 0; j < K; j++) xg[(size_t)t * K + j] = x[(size_t)t * K + q->perm[j]];
    xin = xg;
  }
  int8_t *xq = NULL;
  float *xd = NULL;
  int32_t *bsum = NULL;
  /* the fast path: row kernels for unsigned codes, every x8 tile kernel */
  if (ex->fast_a16 && (q->codes != MQ_CODES_S8 || q->x8) && K % 32 == 0 && q->group_size % 32 == 0) {
    xq = (int8_t *)(gsum + (size_t)n_tok * G);
    xd = (float *)(xq + (size_t)n_tok * K);
    if (q->x8 && q->codes == MQ_CODES_S8 && n_tok > 1) /* the S8 pairs' block code sums */
      bsum = (int32_t *)(xd + (size_t)n_tok * (K / 32));
  }
  /* group sums for the mins, int8 blocks for the fast path */
  mq_a16_prepare(xin, n_tok, K, q->group_size, q->mins ? gsum : NULL, xq, xd, bsum, ex);
  int_job j = {l, xin, gsum, xq, xd, y, n_tok, ex};
  if (q->x8) {
    mq_x8_forward(l, xin, gsum, j.xq, j.xd, bsum, n_tok, y, ex);
    return;
  }
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok),
              (l->n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, int_rows, &j);
}

void mq_linear_forward(const mq_linear *l, const float *x, int n_tok, float *y, const mq_exec *ex) {
  if (l->act != MQ_ACT_FLOAT) {
    mq_linear_forward_aq(l, x, n_tok, y, ex);
    return;
  }
  if (l->kind == MQ_W_INT) {
    int_forward(l, x, n_tok, y, ex);
    return;
  }
  if (l->kind == MQ_W_GGUF) {
    mq_linear_forward_gguf(l, x, n_tok, y, ex);
    return;
  }
  mq_linear_float_forward(l, x, (size_t)l->n_in, n_tok, y, ex);
}

void mq_linear_float_forward(const mq_linear *l, const float *x, size_t ldx, int n_tok, float *y,
                             const mq_exec *ex) {
  job j = {l, x, ldx, y, n_tok, ex};
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok),
              (l->n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, float_rows, &j);
}

void mq_linear_forward_multi(const mq_linear *const *ls, int n, const float *x, int n_tok,
                             float *const *ys, const mq_exec *ex) {
  if (mq_x8_forward_multi(ls, n, x, n_tok, ys, ex)) return;
  for (int i = 0; i < n; i++) mq_linear_forward(ls[i], x, n_tok, ys[i], ex);
}

void mq_linear_forward_each(const mq_linear *const *ls, int n, const float *const *xs, int n_tok,
                            float *const *ys, const mq_exec *ex) {
  if (mq_x8_forward_each(ls, n, xs, n_tok, ys, ex)) return;
  for (int i = 0; i < n; i++) mq_linear_forward(ls[i], xs[i], n_tok, ys[i], ex);
}

int mq_linear_gather_floats(const mq_linear *l) {
  if (l->act != MQ_ACT_FLOAT) return mq_linear_aq_gather_floats(l);
  if (l->kind == MQ_W_GGUF) return mq_linear_gguf_gather_floats(l);
  /* gathered x [K], group sums [G], fast path: int8 x [K/4 floats], scales [K/32], block
   * code sums [K/32] */
  return l->kind == MQ_W_INT ? l->n_in + l->q.n_groups + l->n_in / 4 + 2 * (l->n_in / 32) + 4 : 0;
}

unsigned long long mq_linear_bytes(const mq_linear *l) {
  unsigned long long n = (unsigned long long)l->n_out, k = (unsigned long long)l->n_in;
  if (l->kind == MQ_W_FLOAT) return n * k * (unsigned long long)mq_dtype_size(l->dtype);
  const mq_qint *q = &l->q;
  if (l->kind == MQ_W_MXFP8) return n * k + n * k / 32;
  if (l->kind == MQ_W_GGUF)
    return l->q.x8 ? mq_x8_gguf_bytes(l->gtype, l->n_out, l->n_in)
                   : n * (unsigned long long)mq_ggml_row_size(l->gtype, l->n_in);
  unsigned long long perm = q->perm ? 4 * k : 0;
  if (q->x8) /* tiles of 8 rows (the last one padded) with their scales and mins */
    return mq_x8_bytes(l->n_out, l->n_in, q->group_size, q->codes == MQ_CODES_S8, q->mins != NULL) +
           perm;
  unsigned long long codes = q->codes == MQ_CODES_U4 ? n * k / 2 : n * k;
  unsigned long long per_group = q->mins ? 8 : 4;
  return codes + n * (unsigned long long)q->n_groups * per_group + perm;
}

void mq_linear_dequant_row(const mq_linear *l, int n, float *dst) {
  int K = l->n_in;
  if (l->kind == MQ_W_FLOAT) {
    size_t esz = (size_t)mq_dtype_size(l->dtype);
    const uint8_t *row = (const uint8_t *)l->w + (size_t)n * K * esz;
    for (int k = 0; k < K; k++) {
      uint16_t h;
      uint32_t u;
      if (l->dtype == MQ_DTYPE_F32) memcpy(&u, row + 4 * (size_t)k, 4), dst[k] = mq_bits_to_f32(u);
      else if (l->dtype == MQ_DTYPE_F16) memcpy(&h, row + 2 * (size_t)k, 2), dst[k] = mq_f16_to_f32(h);
      else memcpy(&h, row + 2 * (size_t)k, 2), dst[k] = mq_bf16_to_f32(h);
    }
    return;
  }
  const mq_qint *q = &l->q;
  if (l->kind == MQ_W_GGUF && q->x8) {
    mq_x8_gguf_dequant_row(l, n, dst);
    return;
  }
  if (l->kind == MQ_W_GGUF) {
    size_t rb = (size_t)mq_ggml_row_size(l->gtype, K);
    mq_gguf_dequant_row(l->gtype, (const uint8_t *)l->w + (size_t)n * rb, dst, K);
    return;
  }
  if (l->kind == MQ_W_MXFP8) {
    for (int k = 0; k < K; k++)
      dst[k] = ldexpf(mq_e4m3_to_f32(q->data[(size_t)n * K + k]),
                      (int)l->mx_exp[(size_t)n * (K / 32) + k / 32] - 127);
    return;
  }
  if (q->x8) {
    for (int j = 0; j < K; j++) {
      int g = j / q->group_size;
      float c =
          q->codes == MQ_CODES_S8 ? (float)mq_x8_s8_code(l, n, j) : (float)mq_x8_code(l, n, j);
      float w = c * mq_x8_scale(l, n, g) + mq_x8_min(l, n, g);
      dst[q->perm ? q->perm[j] : j] = w;
    }
    return;
  }
  size_t row_bytes = q->codes == MQ_CODES_U4 ? (size_t)K / 2 : (size_t)K;
  const uint8_t *row = q->data + (size_t)n * row_bytes;
  for (int j = 0; j < K; j++) {
    int g = j / q->group_size;
    float c;
    if (q->codes == MQ_CODES_U4) c = (float)((row[j / 2] >> (4 * (j & 1))) & 15);
    else if (q->codes == MQ_CODES_U8) c = (float)row[j];
    else c = (float)(int8_t)row[j];
    float w = c * q->scales[(size_t)n * q->n_groups + g] +
              (q->mins ? q->mins[(size_t)n * q->n_groups + g] : 0.0f);
    dst[q->perm ? q->perm[j] : j] = w;
  }
}
