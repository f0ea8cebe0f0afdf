/* Forward pass of GGUF block-quantized linears (MQ_W_GGUF). */
#ifndef MQ_KERNELS_LINEAR_GGUF_H
#define MQ_KERNELS_LINEAR_GGUF_H

#include "kernels/linear.h"

void mq_linear_forward_gguf(const mq_linear *l, const float *x, int n_tok, float *y,
                            const mq_exec *ex);
int mq_linear_gguf_gather_floats(const mq_linear *l);

#endif
