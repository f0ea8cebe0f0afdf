/* Sessions: allocation of the KV cache and scratch, and token evaluation. */
#include "runtime/session.h"

#include <stdlib.h>
#include <string.h>

#include "core/bigalloc.h"
#include "core/err.h"
#include "model/rope.h"

void mq_session_params_default(mq_session_params *p) { memset(p, 0, sizeof *p); }

/* count floats, 64-byte aligned (the KV cache on huge pages where it is
 * large: core/bigalloc.h); NULL on overflow or failure. */
static float *falloc(size_t count, size_t *total) {
  if (count > (SIZE_MAX / 4 - 64)) return NULL;
  size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
  *total += bytes;
  return mq_big_alloc(bytes);
}

int mq_session_init(const mq_model *m, const mq_session_params *params, mq_session **out,
                    mq_err *err) {
  *out = NULL;
  if (!m) return mq_errf(err, MQ_ERR_ARG, "no model");
  mq_session_params p;
  if (params) p = *params;
  else mq_session_params_default(&p);
  const mq_config *c = &m->cfg;
  if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0)
    return mq_errf(err, MQ_ERR_ARG, "negative n_ctx, n_batch or n_threads");
  if (p.kv_type != MQ_KV_F32 && p.kv_type != MQ_KV_F16 && p.kv_type != MQ_KV_Q8_0)
    return mq_errf(err, MQ_ERR_ARG, "unknown KV cache type %d (0 f32, 1 f16, 2 q8_0)", p.kv_type);
  if (p.kv_type == MQ_KV_Q8_0 && c->head_dim % 32)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "a q8_0 KV cache needs head_dim to be a multiple of 32 (Q8_0 blocks of each "
                   "head's row); this model's head_dim is %d: use f16 or f32",
                   c->head_dim);
  if (p.n_ctx == 0) p.n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
  if (p.n_batch == 0) p.n_batch = 64;
  if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;

  struct mq_session *s = calloc(1, sizeof *s);
  if (!s) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  s->m = m;
  s->n_ctx = p.n_ctx;
  s->n_batch = p.n_batch;
  s->ex.k = mq_kern();
  s->ex.fast_a16 = p.fast_a16;
  s->ex.pool = mq_pool_init(p.n_threads);
  int nt = mq_pool_size(s->ex.pool);
  s->ex.scratch = calloc((size_t)nt, sizeof(float *));
  if (!s->ex.pool || !s->ex.scratch) {
    mq_session_free(s);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory creating %d threads", nt);
  }
  size_t total = 0, B = (size_t)p.n_batch, kv_dim = (size_t)c->n_head_kv * c->head_dim;
  size_t q_dim = (size_t)c->n_head * c->head_dim, half = (size_t)c->rope.rot_dim / 2;
  size_t kv = (size_t)c->n_layer * (size_t)p.n_ctx * kv_dim;
  size_t ff = (size_t)c->n_ff;
  if ((size_t)c->n_ff_exp > ff) ff = (size_t)c->n_ff_exp;
  if ((size_t)c->n_ff_shexp > ff) ff = (size_t)c->n_ff_shexp;
  size_t ne = (size_t)(c->n_expert > 0 ? c->n_expert : 1), nu = (size_t)(c->n_expert_used > 0 ? c->n_expert_used : 1);
  s->kv_type = p.kv_type;
  size_t kv_floats = s->kv_type == MQ_KV_F16    ? (kv + 1) / 2 /* f16: two a float's bytes */
                     : s->kv_type == MQ_KV_Q8_0 ? (kv / 32 * 34 + 3) / 4 /* Q8_0 blocks */
                                                : kv;
  int ok =
      (s->k_cache = falloc(kv_floats, &total)) && (s->v_cache = falloc(kv_floats, &total)) &&
      (s->kv_block = falloc((size_t)nt * MQ_ATT_BLOCK * (size_t)c->head_dim, &total)) &&
      (s->rope_cos = falloc((size_t)p.n_ctx * half, &total)) &&
      (s->rope_sin = falloc((size_t)p.n_ctx * half, &total)) &&
      (s->x = falloc(B * c->n_embd, &total)) && (s->xn = falloc(B * c->n_embd, &total)) &&
      (s->q = falloc(B * q_dim, &total)) && (s->att = falloc(B * q_dim, &total)) &&
      (s->k = falloc(B * kv_dim, &total)) && (s->v = falloc(B * kv_dim, &total)) &&
      (s->g = falloc(B * ff, &total)) && (s->u = falloc(B * ff, &total)) &&
      (s->router = falloc(B * ne, &total)) && (s->route_e = (int *)falloc(B * nu, &total)) &&
      (s->route_w = falloc(B * nu, &total)) && (s->rows = (int *)falloc(B, &total)) &&
      (s->moe_in = falloc(B * c->n_embd, &total)) && (s->moe_out = falloc(B * c->n_embd, &total)) &&
      (s->moe_acc = falloc(B * c->n_embd, &total)) &&
      /* attention scores: a KV head's query heads per thread */
      (s->scores = falloc((size_t)nt * (size_t)(c->n_head / c->n_head_kv) * p.n_ctx, &total)) &&
      (s->logits = falloc(B * c->n_vocab, &total)) &&
      (s->scratch_logits = falloc(B * c->n_vocab, &total)) &&
      (s->ex.gather = falloc(B * (size_t)(m->max_gather > 0 ? m->max_gather : 1), &total));
  s->ex.gather_floats = B * (size_t)(m->max_gather > 0 ? m->max_gather : 1);
  for (int t = 0; ok && t < nt; t++) ok = (s->ex.scratch[t] = falloc((size_t)MQ_SCRATCH_ROWS * m->max_in, &total)) != NULL;
  if (!ok) {
    mq_session_free(s);
    return mq_errf(err, MQ_ERR_NOMEM,
                   "cannot allocate the session (n_ctx %d, n_batch %d): about %zu MiB needed",
                   p.n_ctx, p.n_batch, (total + 2 * kv_floats * 4) >> 20);
  }
  s->logits_cap = p.n_batch;
  mq_rope_tables(&c->rope, p.n_ctx, s->rope_cos, s->rope_sin);
  *out = s;
  return MQ_OK;
}

void mq_session_free(mq_session *s) {
  if (!s) return;
  if (s->ex.scratch)
    for (int t = 0; t < mq_pool_size(s->ex.pool); t++) free(s->ex.scratch[t]);
  free(s->ex.scratch);
  mq_pool_free(s->ex.pool);
  void *bufs[] = {s->k_cache, s->v_cache, s->kv_block, s->rope_cos, s->rope_sin, s->x, s->xn, s->q,
                   s->att,     s->k,       s->v,        s->g,        s->u, s->scores, s->logits, s->scratch_logits, s->ex.gather,
                   s->router, (float *)s->route_e, s->route_w, (float *)s->rows, s->moe_in, s->moe_out,
                   s->moe_acc};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(s);
}

int mq_session_eval(mq_session *s, const int32_t *tokens, int n, int all_logits, mq_err *err) {
  if (!s || (!tokens && n > 0) || n <= 0) return mq_errf(err, MQ_ERR_ARG, "no tokens to evaluate");
  const mq_config *c = &s->m->cfg;
  if (n > s->n_ctx - s->pos)
    return mq_errf(err, MQ_ERR_RANGE, "%d tokens do not fit: %d of the context's %d are in use", n,
                   s->pos, s->n_ctx);
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
      return mq_errf(err, MQ_ERR_RANGE, "token %d (at index %d) is outside the vocabulary [0, %d)",
                     tokens[i], i, c->n_vocab);
  int rows = all_logits ? n : 1;
  if (rows > s->logits_cap) {
    size_t bytes = (size_t)rows * c->n_vocab * sizeof(float);
    float *nl = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!nl) return mq_errf(err, MQ_ERR_NOMEM, "cannot allocate logits for %d tokens", rows);
    free(s->logits);
    s->logits = nl;
    s->logits_cap = rows;
  }
  for (int done = 0; done < n;) {
    int chunk = n - done < s->n_batch ? n - done : s->n_batch;
    int last = done + chunk == n;
    /* Which rows of this chunk produce logits, and where they go. */
    int first = all_logits ? 0 : (last ? chunk - 1 : chunk);
    float *out = s->logits + (size_t)(all_logits ? done : 0) * c->n_vocab;
    mq_forward_chunk(s, tokens + done, chunk, first, out);
    s->pos += chunk;
    done += chunk;
  }
  s->n_logits = rows;
  return MQ_OK;
}

const float *mq_session_logits(const mq_session *s, int *n_rows) {
  if (n_rows) *n_rows = s->n_logits;
  return s->logits;
}

int mq_session_pos(const mq_session *s) { return s->pos; }

int mq_session_truncate(mq_session *s, int pos, mq_err *err) {
  if (pos < 0 || pos > s->pos)
    return mq_errf(err, MQ_ERR_RANGE, "cannot truncate to %d: the session holds %d tokens", pos,
                   s->pos);
  s->pos = pos;
  s->n_logits = 0;
  return MQ_OK;
}

int mq_session_eval_multi(mq_session *const *ss, const int32_t *tokens, int n, mq_err *err) {
  if (!ss || !tokens || n <= 0) return mq_errf(err, MQ_ERR_ARG, "no sessions to evaluate");
  struct mq_session *host = ss[0];
  const mq_config *c = &host->m->cfg;
  if (n > host->n_batch)
    return mq_errf(err, MQ_ERR_ARG, "%d sessions in one step, more than the first session's n_batch %d",
                   n, host->n_batch);
  for (int i = 0; i < n; i++) {
    const struct mq_session *s = ss[i];
    if (!s || s->m != host->m)
      return mq_errf(err, MQ_ERR_ARG, "session %d does not belong to the same model", i);
    for (int j = 0; j < i; j++)
      if (ss[j] == s) return mq_errf(err, MQ_ERR_ARG, "session %d appears twice in one step", i);
    if (s->n_ctx > host->n_ctx)
      return mq_errf(err, MQ_ERR_ARG, "session %d has a longer context (%d) than the first (%d)", i,
                     s->n_ctx, host->n_ctx);
    if (s->pos >= s->n_ctx)
      return mq_errf(err, MQ_ERR_RANGE, "session %d: its context of %d tokens is full", i, s->n_ctx);
    if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
      return mq_errf(err, MQ_ERR_RANGE, "token %d (session %d) is outside the vocabulary [0, %d)",
                     tokens[i], i, c->n_vocab);
  }
  /* one chunk: every token's logits into the host's buffer, then to each owner */
  host->owners = ss;
  mq_forward_chunk(host, tokens, n, 0, host->scratch_logits);
  host->owners = NULL;
  for (int i = 0; i < n; i++) {
    struct mq_session *s = ss[i];
    memcpy(s->logits, host->scratch_logits + (size_t)i * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    s->n_logits = 1;
    s->pos++;
  }
  return MQ_OK;
}
