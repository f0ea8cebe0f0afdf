/* Forward pass of GGUF block-quantized linears (MQ_W_GGUF). */
#ifndef MQ_KERNELS_LINEAR_GGUF_H
#define MQ_KERNELS_LINEAR_GGUF_H

#include "kernels/linear.h"

void mq_linear_forward_gguf(const mq_linear *l, const float *x, int n_tok, float *y,
                            const mq_exec *ex);
int mq_linear_gguf_gather_floats(const mq_linear *l);
/* Quantize x [n_tok, K] into the activation blocks l's type consumes, in
 * ex->gather (returned: bytes per token); *bsum: Q4_0x8's block code sums
 * (after the blocks) or NULL. */
size_t mq_linear_gguf_prepare(const mq_linear *l, const float *x, int n_tok, const mq_exec *ex,
                              const int32_t **bsum);

#endif
