/* The dense decoder forward pass (llama, qwen2, qwen3), one chunk of tokens
 * at a time: every weight is read once per chunk. */
#include <math.h>
#include <string.h>

#include "core/numconv.h"
#include "model/rope.h"
#include "runtime/moe.h"
#include "runtime/session.h"

typedef struct {
  struct mq_session *s;
  int layer, n;
  int parts; /* items per (token, KV head): its query heads split that many ways */
} attn_job;

/* The session whose KV cache token t of the chunk belongs to, and its
 * position: the host itself, or one session per token (mq_session_eval_multi). */
static inline struct mq_session *owner(struct mq_session *s, int t) {
  return s->owners ? s->owners[t] : s;
}
static inline int tok_pos(const struct mq_session *s, int t) {
  return s->owners ? s->owners[t]->pos : s->pos + t;
}

/* nb cached rows of one KV head from row `at` (in elements) as floats: in
 * place for an f32 cache, converted into buf (nb * hd floats) for f16 and
 * Q8_0 (at a multiple of 32 there: hd is). */
static const float *kv_rows(const struct mq_session *o_s, const void *cache, size_t at, int nb,
                            int hd, float *buf, const mq_kernels *k) {
  switch (o_s->kv_type) {
  case MQ_KV_F16: k->f16_to_f32((const uint16_t *)cache + at, buf, nb * hd); return buf;
  case MQ_KV_Q8_0: k->q8_0_to_f32((const uint8_t *)cache + at / 32 * 34, buf, nb * hd); return buf;
  default: return (const float *)cache + at;
  }
}

/* One (token, KV head, part of its query-head group) per item: causal
 * softmax attention over the cache. The query heads of a group share their
 * KV head's rows, so keys and values are read from memory once per item
 * and reused from L1 by each head, not once per query head. */
static void attn_rows(void *ctx, int begin, int end, int tid) {
  const attn_job *j = ctx;
  struct mq_session *s = j->s;
  const mq_config *c = &s->m->cfg;
  const mq_kernels *k = s->ex.k;
  int hd = c->head_dim, group = c->n_head / c->n_head_kv;
  int per = (group + j->parts - 1) / j->parts;            /* query heads per item */
  float *sc = s->scores + (size_t)tid * group * s->n_ctx; /* [per][n_ctx] */
  float scale = 1.0f / sqrtf((float)hd);
  for (int item = begin; item < end; item++) {
    int t = item / (c->n_head_kv * j->parts), r = item % (c->n_head_kv * j->parts);
    int kvh = r / j->parts, h0 = kvh * group + r % j->parts * per;
    int h1 = h0 + per < (kvh + 1) * group ? h0 + per : (kvh + 1) * group;
    const struct mq_session *o_s = owner(s, t);
    /* this KV head's rows: contiguous, hd floats a position */
    size_t at = ((size_t)j->layer * c->n_head_kv + (size_t)kvh) * o_s->n_ctx * hd;
    int n_keys = tok_pos(s, t) + 1;
    /* sliding window (mixtral): keys within the last `window` positions */
    int p0 = c->sliding_window > 0 && n_keys > c->sliding_window ? n_keys - c->sliding_window : 0;
    int nk = n_keys - p0;
    float *buf = s->kv_block + (size_t)tid * MQ_ATT_BLOCK * hd;
    const float *q = s->q + (size_t)t * c->n_head * hd;
    float *o = s->att + (size_t)t * c->n_head * hd;
    for (int b = 0; b < nk; b += MQ_ATT_BLOCK) {
      int nb = nk - b < MQ_ATT_BLOCK ? nk - b : MQ_ATT_BLOCK;
      const float *kr = kv_rows(o_s, o_s->k_cache, at + (size_t)(p0 + b) * hd, nb, hd, buf, k);
      k->dot_rows_f32(q + (size_t)h0 * hd, (size_t)hd, h1 - h0, kr, (size_t)hd, nb, hd, sc + b,
                      (size_t)s->n_ctx);
    }
    for (int h = h0; h < h1; h++) {
      float *sh = sc + (size_t)(h - h0) * s->n_ctx;
      for (int p = 0; p < nk; p++) sh[p] *= scale;
      k->softmax_f32(sh, nk);
      memset(o + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
    }
    for (int b = 0; b < nk; b += MQ_ATT_BLOCK) {
      int nb = nk - b < MQ_ATT_BLOCK ? nk - b : MQ_ATT_BLOCK;
      const float *vr = kv_rows(o_s, o_s->v_cache, at + (size_t)(p0 + b) * hd, nb, hd, buf, k);
      k->axpy_rows_f32(o + (size_t)h0 * hd, (size_t)hd, h1 - h0, vr, (size_t)hd, sc + b,
                       (size_t)s->n_ctx, nb, hd);
    }
  }
}

/* One head's row of hd floats into a cache at element `off`: copied,
 * rounded to f16 (nearest even) and saturated at +-65504, or quantized to
 * Q8_0 blocks as llama.cpp's x86 build does (gguf_q8_x86). */
static void kv_store(const struct mq_session *o_s, void *cache, size_t off, const float *src,
                     int hd, const mq_kernels *k) {
  switch (o_s->kv_type) {
  case MQ_KV_F16: {
    uint16_t *dst = (uint16_t *)cache + off;
    for (int i = 0; i < hd; i++) dst[i] = mq_f32_to_f16_sat(src[i]);
    return;
  }
  case MQ_KV_Q8_0: k->gguf_q8_x86(src, (uint8_t *)cache + off / 32 * 34, hd, 0); return;
  default: memcpy((float *)cache + off, src, (size_t)hd * sizeof(float));
  }
}

/* q/k norm (qwen3) and RoPE for the chunk's heads, then store k, v. */
static void qk_prepare(struct mq_session *s, const mq_layer *L, int layer, int n) {
  const mq_config *c = &s->m->cfg;
  int hd = c->head_dim, kv_dim = c->n_head_kv * hd, half = c->rope.rot_dim / 2;
  float eps = (float)c->norm_eps;
  for (int t = 0; t < n; t++) {
    struct mq_session *o_s = owner(s, t);
    int p = tok_pos(s, t);
    const float *cr = o_s->rope_cos + (size_t)p * half, *sr = o_s->rope_sin + (size_t)p * half;
    for (int h = 0; h < c->n_head; h++) {
      float *q = s->q + (size_t)t * c->n_head * hd + (size_t)h * hd;
      if (L->q_norm) mq_rmsnorm(q, q, L->q_norm, hd, eps);
      mq_rope_apply(q, c->rope.rot_dim, c->rope.interleaved, cr, sr);
    }
    for (int h = 0; h < c->n_head_kv; h++) {
      float *k = s->k + (size_t)t * kv_dim + (size_t)h * hd;
      if (L->k_norm) mq_rmsnorm(k, k, L->k_norm, hd, eps);
      mq_rope_apply(k, c->rope.rot_dim, c->rope.interleaved, cr, sr);
    }
    for (int h = 0; h < c->n_head_kv; h++) { /* [layer][KV head][position][hd] */
      size_t off = (((size_t)layer * c->n_head_kv + (size_t)h) * o_s->n_ctx + (size_t)p) * hd;
      kv_store(o_s, o_s->k_cache, off, s->k + (size_t)t * kv_dim + (size_t)h * hd, hd, s->ex.k);
      kv_store(o_s, o_s->v_cache, off, s->v + (size_t)t * kv_dim + (size_t)h * hd, hd, s->ex.k);
    }
  }
}

static void embed(struct mq_session *s, const int32_t *tokens, int n) {
  int d = s->m->cfg.n_embd;
  for (int t = 0; t < n; t++) mq_linear_dequant_row(&s->m->embd, tokens[t], s->x + (size_t)t * d);
}

/* RMSNorm of n rows of x into y, plus an optional bias (anti-outlier
 * checkpoints: y = w * rmsnorm(x) + b). */
static void norm_rows(float *y, const float *x, const float *w, const float *b, int n, int d,
                      float eps) {
  for (int t = 0; t < n; t++) {
    float *yr = y + (size_t)t * d;
    mq_rmsnorm(yr, x + (size_t)t * d, w, d, eps);
    if (b)
      for (int i = 0; i < d; i++) yr[i] += b[i];
  }
}

typedef struct {
  float *g;
  const float *u;
  int w;
  const mq_kernels *k;
} swiglu_job;

static void swiglu_rows(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const swiglu_job *j = ctx;
  j->k->swiglu_f32(j->g + (size_t)begin * j->w, j->u + (size_t)begin * j->w, (end - begin) * j->w);
}

void mq_swiglu_rows(struct mq_session *s, int rows, int w) {
  swiglu_job j = {s->g, s->u, w, s->ex.k};
  /* an expf is worth about 20 multiply-adds; on the caller alone this was
   * 2% of a two-thread prefill, the other thread idle */
  mq_pool_for(mq_tokens_pool(&s->ex, rows, 20.0 * w), rows, swiglu_rows, &j);
}

void mq_forward_chunk(struct mq_session *s, const int32_t *tokens, int n, int first_logit,
                      float *out) {
  const struct mq_model *m = s->m;
  const mq_config *c = &m->cfg;
  int d = c->n_embd;
  float eps = (float)c->norm_eps;
  embed(s, tokens, n);
  for (int l = 0; l < c->n_layer; l++) {
    const mq_layer *L = &m->layers[l];
    norm_rows(s->xn, s->x, L->attn_norm, L->attn_norm_b, n, d, eps);
    const mq_linear *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {s->q, s->k, s->v};
    mq_linear_forward_multi(qkv, 3, s->xn, n, qkv_out, &s->ex);
    qk_prepare(s, L, l, n);
    /* items: (token, KV head), split further by query heads when too few
     * to keep the threads busy (decode with few KV heads) */
    double work = (double)n * c->n_head * (s->owners ? s->n_ctx : s->pos + n) * c->head_dim * 2;
    mq_pool *pool = mq_pool_if(s->ex.pool, work);
    int threads = pool ? mq_pool_size(pool) : 1, group = c->n_head / c->n_head_kv, parts = 1;
    while (parts < group && n * c->n_head_kv * parts < 2 * threads) parts++;
    attn_job aj = {s, l, n, parts};
    mq_pool_for(pool, n * c->n_head_kv * parts, attn_rows, &aj);
    mq_linear_forward(&L->wo, s->att, n, s->xn, &s->ex);
    for (size_t i = 0; i < (size_t)n * d; i++) s->x[i] += s->xn[i];

    norm_rows(s->xn, s->x, L->ffn_norm, L->ffn_norm_b, n, d, eps);
    if (L->moe) {
      mq_moe_forward(s, L->moe, s->xn, n, s->moe_acc);
      for (size_t i = 0; i < (size_t)n * d; i++) s->x[i] += s->moe_acc[i];
      continue;
    }
    const mq_linear *gu[2] = {&L->gate, &L->up};
    float *gu_out[2] = {s->g, s->u};
    mq_linear_forward_multi(gu, 2, s->xn, n, gu_out, &s->ex);
    mq_swiglu_rows(s, n, c->n_ff);
    mq_linear_forward(&L->down, s->g, n, s->xn, &s->ex);
    for (size_t i = 0; i < (size_t)n * d; i++) s->x[i] += s->xn[i];
  }
  int n_out = n - first_logit;
  if (n_out <= 0) return;
  norm_rows(s->xn, s->x + (size_t)first_logit * d, m->out_norm, m->out_norm_b, n_out, d, eps);
  mq_linear_forward(&m->lm_head, s->xn, n_out, out, &s->ex);
}
