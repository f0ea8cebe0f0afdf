/* Session state: KV cache, RoPE tables, activations and logits. */
#ifndef MQ_RUNTIME_SESSION_H
#define MQ_RUNTIME_SESSION_H

#include "kernels/linear.h"
#include "model/model.h"

/* Attention's block of cached positions: a block's keys (or values) of one
 * KV head, 64 x head_dim floats (16 KB at 64), stay in L1 while each query
 * head of the group uses them. */
#define MQ_ATT_BLOCK 64

struct mq_session {
  const struct mq_model *m;
  mq_exec ex;
  int n_ctx, n_batch, pos;
  /* [n_layer, n_kv, n_ctx, hd]: a KV head's positions contiguous, as
   * floats, f16 bits or Q8_0 blocks (34 bytes per 32 values) by kv_type */
  void *k_cache, *v_cache;
  int kv_type; /* mq_kv_type */
  float *kv_block;            /* [n_threads, MQ_ATT_BLOCK * hd]: a converted block as floats */
  float *rope_cos, *rope_sin; /* [n_ctx, rot_dim/2] */
  /* activations of one chunk of up to n_batch tokens */
  float *x, *xn;      /* [n_batch, n_embd] */
  float *q, *att;     /* [n_batch, n_head*hd] */
  float *k, *v;       /* [n_batch, n_kv*hd] */
  float *g, *u;       /* [n_batch, max(n_ff, n_ff_exp, n_ff_shexp)] */
  /* MoE: router logits, routes, gathered rows of one expert, accumulated output */
  float *router;      /* [n_batch, n_expert] */
  int *route_e;       /* [n_batch, n_expert_used] expert of each route */
  float *route_w;     /* [n_batch, n_expert_used] its weight */
  int *rows;          /* [n_batch] tokens routed to the expert in hand */
  float *moe_in, *moe_out, *moe_acc; /* [n_batch, n_embd] */
  float *scores;      /* [n_threads, n_ctx] */
  float *logits;      /* [logits_cap, n_vocab] */
  int logits_cap, n_logits;
  /* during mq_session_eval_multi on this (host) session: the session of each
   * token of the chunk (its KV cache and position); NULL otherwise */
  struct mq_session *const *owners;
  float *scratch_logits; /* [n_batch, n_vocab]: a multi-session step's logits */
};

/* Run tokens[0..n) (n <= n_batch) at positions s->pos.. through the model,
 * writing logits for rows [first_logit, n) to out ([n - first_logit, n_vocab]). */
void mq_forward_chunk(struct mq_session *s, const int32_t *tokens, int n, int first_logit,
                      float *out);

/* s->g[r] = silu(s->g[r]) * s->u[r] for rows r < rows of w values (the
 * FFN's activation), rows across the session's pool. */
void mq_swiglu_rows(struct mq_session *s, int rows, int w);

#endif
