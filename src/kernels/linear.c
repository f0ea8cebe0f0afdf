#include "kernels/linear.h"

#include <stddef.h>

#define ROWS_PER_TASK 16

typedef struct {
  const mq_linear *l;
  const float *x;
  float *y;
  int n_tok;
  const mq_exec *ex;
} job;

static void run_rows(void *ctx, int begin, int end, int tid) {
  const job *j = ctx;
  const mq_linear *l = j->l;
  const mq_kernels *k = j->ex->k;
  size_t esz = (size_t)mq_dtype_size(l->dtype);
  int r0 = begin * ROWS_PER_TASK, r1 = end * ROWS_PER_TASK;
  if (r1 > l->n_out) r1 = l->n_out;
  for (int r = r0; r < r1; r++) {
    /* Convert the weight row once, then reuse it for every token. */
    const float *w = mq_row_f32(k, l->dtype, (const char *)l->w + (size_t)r * l->n_in * esz,
                                j->ex->scratch[tid], l->n_in);
    float b = l->bias ? l->bias[r] : 0.0f;
    for (int t = 0; t < j->n_tok; t++)
      j->y[(size_t)t * l->n_out + r] = k->dot_f32(w, j->x + (size_t)t * l->n_in, l->n_in) + b;
  }
}

void mq_linear_forward(const mq_linear *l, const float *x, int n_tok, float *y, const mq_exec *ex) {
  job j = {l, x, y, n_tok, ex};
  mq_pool_for(ex->pool, (l->n_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK, run_rows, &j);
}

unsigned long long mq_linear_bytes(const mq_linear *l) {
  return (unsigned long long)l->n_out * (unsigned long long)l->n_in *
         (unsigned long long)mq_dtype_size(l->dtype);
}
