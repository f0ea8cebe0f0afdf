/* A linear layer y = x W^T + b and its forward pass. */
#ifndef MQ_KERNELS_LINEAR_H
#define MQ_KERNELS_LINEAR_H

#include "core/pool.h"
#include "io/dtype.h"
#include "kernels/kernels.h"

typedef struct mq_linear {
  int n_out, n_in;
  mq_dtype dtype;    /* float weights: F32, F16 or BF16 */
  const void *w;     /* [n_out, n_in] row-major; usually inside the mmap */
  const float *bias; /* [n_out] or NULL */
} mq_linear;

/* Where a forward pass runs: the thread pool, the kernel table and one
 * scratch row per pool thread (at least max n_in floats each). */
typedef struct mq_exec {
  mq_pool *pool;
  const mq_kernels *k;
  float **scratch;
} mq_exec;

/* y[t, :] = W x[t, :] + b for t < n_tok. x: [n_tok, n_in], y: [n_tok, n_out];
 * x and y must not overlap. */
void mq_linear_forward(const mq_linear *l, const float *x, int n_tok, float *y, const mq_exec *ex);

/* Bytes the weights of l occupy as stored. */
unsigned long long mq_linear_bytes(const mq_linear *l);

#endif
