/* The dense decoder forward pass (llama, qwen2, qwen3), one chunk of tokens
 * at a time: every weight is read once per chunk. */
#include <math.h>
#include <string.h>

#include "model/rope.h"
#include "runtime/moe.h"
#include "runtime/session.h"

typedef struct {
  struct mq_session *s;
  int layer, n;
} attn_job;

/* The session whose KV cache token t of the chunk belongs to, and its
 * position: the host itself, or one session per token (mq_session_eval_multi). */
static inline struct mq_session *owner(struct mq_session *s, int t) {
  return s->owners ? s->owners[t] : s;
}
static inline int tok_pos(const struct mq_session *s, int t) {
  return s->owners ? s->owners[t]->pos : s->pos + t;
}

/* One (token, head) per item: causal softmax attention over the cache. */
static void attn_rows(void *ctx, int begin, int end, int tid) {
  const attn_job *j = ctx;
  struct mq_session *s = j->s;
  const mq_config *c = &s->m->cfg;
  int hd = c->head_dim, kv_dim = c->n_head_kv * hd, group = c->n_head / c->n_head_kv;
  float *sc = s->scores + (size_t)tid * s->n_ctx;
  float scale = 1.0f / sqrtf((float)hd);
  for (int item = begin; item < end; item++) {
    int t = item / c->n_head, h = item % c->n_head, kvh = h / group;
    const struct mq_session *o_s = owner(s, t);
    const float *kc = o_s->k_cache + (size_t)j->layer * o_s->n_ctx * kv_dim;
    const float *vc = o_s->v_cache + (size_t)j->layer * o_s->n_ctx * kv_dim;
    int n_keys = tok_pos(s, t) + 1;
    /* sliding window (mixtral): keys within the last `window` positions */
    int p0 = c->sliding_window > 0 && n_keys > c->sliding_window ? n_keys - c->sliding_window : 0;
    const float *q = s->q + (size_t)t * c->n_head * hd + (size_t)h * hd;
    for (int p = p0; p < n_keys; p++)
      sc[p - p0] = s->ex.k->dot_f32(q, kc + (size_t)p * kv_dim + (size_t)kvh * hd, hd) * scale;
    mq_softmax(sc, n_keys - p0);
    float *o = s->att + (size_t)t * c->n_head * hd + (size_t)h * hd;
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int p = p0; p < n_keys; p++) {
      const float *v = vc + (size_t)p * kv_dim + (size_t)kvh * hd;
      float w = sc[p - p0];
      for (int i = 0; i < hd; i++) o[i] += w * v[i];
    }
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
    size_t off = ((size_t)layer * o_s->n_ctx + p) * kv_dim;
    memcpy(o_s->k_cache + off, s->k + (size_t)t * kv_dim, (size_t)kv_dim * sizeof(float));
    memcpy(o_s->v_cache + off, s->v + (size_t)t * kv_dim, (size_t)kv_dim * sizeof(float));
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
    attn_job aj = {s, l, n};
    double work = (double)n * c->n_head * (s->owners ? s->n_ctx : s->pos + n) * c->head_dim * 2;
    mq_pool_for(mq_pool_if(s->ex.pool, work), n * c->n_head, attn_rows, &aj);
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
    mq_swiglu(s->g, s->u, n * c->n_ff);
    mq_linear_forward(&L->down, s->g, n, s->xn, &s->ex);
    for (size_t i = 0; i < (size_t)n * d; i++) s->x[i] += s->xn[i];
  }
  int n_out = n - first_logit;
  if (n_out <= 0) return;
  norm_rows(s->xn, s->x + (size_t)first_logit * d, m->out_norm, m->out_norm_b, n_out, d, eps);
  mq_linear_forward(&m->lm_head, s->xn, n_out, out, &s->ex);
}
