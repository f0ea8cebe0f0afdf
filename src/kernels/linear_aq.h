/* Forward pass of activation-quantized linears (act != MQ_ACT_FLOAT). */
#ifndef MQ_KERNELS_LINEAR_AQ_H
#define MQ_KERNELS_LINEAR_AQ_H

#include "kernels/linear.h"

void mq_linear_forward_aq(const mq_linear *l, const float *x, int n_tok, float *y,
                          const mq_exec *ex);
int mq_linear_aq_gather_floats(const mq_linear *l);

#endif
