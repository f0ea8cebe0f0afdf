#include "runtime/moe.h"

#include <math.h>
#include <string.h>

void mq_moe_route(const float *logits, int n_expert, int k, int norm, int *idx, float *w) {
  double mx = logits[0], sum = 0;
  for (int e = 1; e < n_expert; e++) mx = logits[e] > mx ? logits[e] : mx;
  for (int e = 0; e < n_expert; e++) sum += exp((double)logits[e] - mx);
  double picked = 0;
  for (int j = 0; j < k; j++) {
    int best = -1;
    for (int e = 0; e < n_expert; e++) {
      int used = 0;
      for (int i = 0; i < j; i++) used |= idx[i] == e;
      if (!used && (best < 0 || logits[e] > logits[best])) best = e;
    }
    idx[j] = best;
    double p = exp((double)logits[best] - mx) / sum;
    w[j] = (float)p;
    picked += p;
  }
  if (norm)
    for (int j = 0; j < k; j++) w[j] = (float)(w[j] / picked);
}

/* Decode (one token): every chosen expert reads the same input, so all
 * their gate and up projections go in one parallel loop, their down
 * projections in another; experts are taken
 * in index order, the order the grouped path adds them in. */
static void experts_decode(struct mq_session *s, const mq_moe *moe, const float *x, float *out) {
  const mq_config *c = &s->m->cfg;
  int d = c->n_embd, K = c->n_expert_used, ff = c->n_ff_exp;
  int ex[8], slot[8];
  for (int j = 0; j < K; j++) ex[j] = s->route_e[j], slot[j] = j;
  for (int a = 1; a < K; a++)
    for (int b = a; b > 0 && ex[b] < ex[b - 1]; b--) {
      int te = ex[b], ts = slot[b];
      ex[b] = ex[b - 1], slot[b] = slot[b - 1], ex[b - 1] = te, slot[b - 1] = ts;
    }
  const mq_linear *gu[16] = {0};
  float *gu_out[16] = {0};
  for (int j = 0; j < K; j++) {
    gu[2 * j] = &moe->gate[ex[j]], gu[2 * j + 1] = &moe->up[ex[j]];
    gu_out[2 * j] = s->g + (size_t)j * ff, gu_out[2 * j + 1] = s->u + (size_t)j * ff;
  }
  mq_linear_forward_multi(gu, 2 * K, x, 1, gu_out, &s->ex);
  mq_swiglu_rows(s, K, ff);
  /* the down projections in one loop too (K <= n_batch: moe_out holds
   * their K outputs), then added in expert order */
  const mq_linear *dn[8] = {0};
  const float *dn_in[8] = {0};
  float *dn_out[8] = {0};
  for (int j = 0; j < K; j++)
    dn[j] = &moe->down[ex[j]], dn_in[j] = s->g + (size_t)j * ff,
    dn_out[j] = s->moe_out + (size_t)j * d;
  mq_linear_forward_each(dn, K, dn_in, 1, dn_out, &s->ex);
  for (int j = 0; j < K; j++) {
    float w = s->route_w[slot[j]];
    for (int i = 0; i < d; i++) out[i] += w * dn_out[j][i];
  }
}

/* Tokens grouped by expert: each chosen expert's weights are read once. */
static void experts_grouped(struct mq_session *s, const mq_moe *moe, const float *x, int n,
                            float *out) {
  const mq_config *c = &s->m->cfg;
  int d = c->n_embd, E = c->n_expert, K = c->n_expert_used, ff = c->n_ff_exp;
  for (int e = 0; e < E; e++) {
    int cnt = 0;
    for (int t = 0; t < n; t++)
      for (int j = 0; j < K; j++)
        if (s->route_e[(size_t)t * K + j] == e) s->rows[cnt++] = t * K + j;
    if (!cnt) continue; /* no token chose this expert: its weights are not read */
    for (int i = 0; i < cnt; i++)
      memcpy(s->moe_in + (size_t)i * d, x + (size_t)(s->rows[i] / K) * d,
             (size_t)d * sizeof(float));
    const mq_linear *gu[2] = {&moe->gate[e], &moe->up[e]};
    float *gu_out[2] = {s->g, s->u};
    mq_linear_forward_multi(gu, 2, s->moe_in, cnt, gu_out, &s->ex);
    mq_swiglu_rows(s, cnt, ff);
    /* the down projection quantizes this activation itself as its scheme requires */
    mq_linear_forward(&moe->down[e], s->g, cnt, s->moe_out, &s->ex);
    for (int i = 0; i < cnt; i++) {
      float w = s->route_w[s->rows[i]];
      float *o = out + (size_t)(s->rows[i] / K) * d;
      const float *y = s->moe_out + (size_t)i * d;
      for (int j = 0; j < d; j++) o[j] += w * y[j];
    }
  }
}

void mq_moe_forward(struct mq_session *s, const mq_moe *moe, const float *x, int n, float *out) {
  const mq_config *c = &s->m->cfg;
  int d = c->n_embd, E = c->n_expert, K = c->n_expert_used;
  mq_linear_forward(&moe->router, x, n, s->router, &s->ex);
  for (int t = 0; t < n; t++)
    mq_moe_route(s->router + (size_t)t * E, E, K, c->norm_topk, s->route_e + (size_t)t * K,
                 s->route_w + (size_t)t * K);
  memset(out, 0, (size_t)n * d * sizeof(float));
  if (n == 1 && K <= 8 && K <= s->n_batch)
    experts_decode(s, moe, x, out);
  else
    experts_grouped(s, moe, x, n, out);
  if (moe->has_shared) {
    int sf = c->n_ff_shexp;
    const mq_linear *sgu[2] = {&moe->sh_gate, &moe->sh_up};
    float *sgu_out[2] = {s->g, s->u};
    mq_linear_forward_multi(sgu, 2, x, n, sgu_out, &s->ex);
    mq_swiglu_rows(s, n, sf);
    mq_linear_forward(&moe->sh_down, s->g, n, s->moe_out, &s->ex);
    mq_linear_forward(&moe->sh_router, x, n, s->router, &s->ex); /* [n, 1] */
    for (int t = 0; t < n; t++) {
      float gw = 1.0f / (1.0f + expf(-s->router[t]));
      for (int j = 0; j < d; j++) out[(size_t)t * d + j] += gw * s->moe_out[(size_t)t * d + j];
    }
  }
}
