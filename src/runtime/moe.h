/* The sparse mixture-of-experts block of one layer. */
#ifndef MQ_RUNTIME_MOE_H
#define MQ_RUNTIME_MOE_H

#include "runtime/session.h"

/* out[t] = sum over the top-k experts e of token t: p[t,e] * down_e(silu(gate_e(x)) * up_e(x)),
 * plus the shared expert scaled by sigmoid(x . w) when present. x, out: [n, n_embd].
 * Tokens are grouped by expert so each expert's weights are read once. */
void mq_moe_forward(struct mq_session *s, const mq_moe *moe, const float *x, int n, float *out);

/* Routing of one token: softmax over logits [n_expert] (in double), the k
 * largest (ties: lower index), renormalized when norm. */
void mq_moe_route(const float *logits, int n_expert, int k, int norm, int *idx, float *w);

#endif
