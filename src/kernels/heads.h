/* The attention entries of a tier (kernels.h: dot_rows_f32, axpy_rows_f32)
 * from its one-head kernels dot_rows_one_<isa> and axpy_rows_one_<isa>: the
 * query heads one after the other. (Computing several heads together from
 * each loaded row chunk measured no faster: docs/performance.md.) */
#ifndef MQ_KERNELS_HEADS_H
#define MQ_KERNELS_HEADS_H

#include <stddef.h>

#define MQ_HEAD_ENTRIES(isa)                                                                       \
  static void dot_rows_f32_##isa(const float *q, size_t q_stride, int nq, const float *rows,       \
                                 size_t stride, int n, int len, float *out, size_t out_stride) {   \
    for (int j = 0; j < nq; j++)                                                                   \
      dot_rows_one_##isa(q + j * q_stride, rows, stride, n, len, out + j * out_stride);            \
  }                                                                                                \
  static void axpy_rows_f32_##isa(float *o, size_t o_stride, int nq, const float *rows,            \
                                  size_t stride, const float *w, size_t w_stride, int n,           \
                                  int len) {                                                       \
    for (int j = 0; j < nq; j++)                                                                   \
      axpy_rows_one_##isa(o + j * o_stride, rows, stride, w + j * w_stride, n, len);               \
  }

#endif
