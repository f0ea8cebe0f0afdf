/* AWQ GEMM adapter (formats.md §1): qweight I32 [K, N/8] packed along the
 * output dim with the AWQ interleave, qzeros I32 [G, N/8] likewise, scales
 * [G, N]. Produces U4 codes [N, K] with scale and -zero*scale per group. */
#include <stdio.h>

#include "core/err.h"
#include "quant/adapt.h"

/* Logical column 8c + j sits at nibble REV[j] of word c. */
static const int k_awq_shift[8] = {0, 16, 4, 20, 8, 24, 12, 28};

static const mq_dtype k_i32[] = {MQ_DTYPE_I32, MQ_DTYPE_U32, MQ_DTYPE_INVALID};
static const mq_dtype k_scale[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32, MQ_DTYPE_INVALID};

int mq_adapt_awq(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                 mq_linear *l, mq_err *err) {
  int gs = s->group_size <= 0 ? K : s->group_size;
  if (N % 8)
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (AWQ): output size %d is not a multiple of 8", name, N);
  if (K % gs)
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (AWQ): group size %d does not divide input size %d",
                   name, gs, K);
  int G = K / gs, rc;
  const mq_tensor *qw, *qz, *sc;
  if ((rc = mq_adapt_tensor(m, name, s, "qweight", k_i32, 2, K, N / 8, 0, &qw, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "qzeros", k_i32, 2, G, N / 8, !s->zero_point, &qz, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "scales", k_scale, 2, G, N, 0, &sc, err)))
    return rc;
  if ((rc = mq_adapt_alloc(m, name, l, N, K, 4, gs, MQ_CODES_U4, 1, NULL, err))) return rc;
  /* two input channels at a time: whole bytes of the [N, K/2] codes. A
   * transpose, done in bands of KB input channels so that both the band of
   * qweight rows and the codes rows' 32-byte pieces stay in cache (one pass
   * over all of k per word column wrote a byte per cache line). */
  enum { KB = 64 };
  uint8_t *codes = (uint8_t *)l->q.data;
  for (int k0 = 0; k0 < K; k0 += KB) {
    int k1 = k0 + KB < K ? k0 + KB : K;
    for (int c = 0; c < N / 8; c++)
      for (int k = k0; k < k1; k += 2) {
        uint32_t w0 = mq_adapt_word_at(qw, (uint64_t)k * (N / 8) + c);
        uint32_t w1 = mq_adapt_word_at(qw, (uint64_t)(k + 1) * (N / 8) + c);
        for (int j = 0; j < 8; j++)
          codes[(size_t)(8 * c + j) * (K / 2) + k / 2] =
              (uint8_t)(((w0 >> k_awq_shift[j]) & 15) | ((w1 >> k_awq_shift[j]) & 15) << 4);
      }
  }
  float *scales = (float *)l->q.scales, *mins = (float *)l->q.mins;
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) {
      /* No qzeros (zero_point false): symmetric, implicit zero 8 (formats.md §1.4). */
      unsigned z = 8;
      if (qz) z = ((uint32_t)mq_adapt_int_at(qz, (uint64_t)g * (N / 8) + n / 8) >> k_awq_shift[n % 8]) & 15;
      float sv = mq_adapt_float_at(sc, (uint64_t)g * N + n);
      scales[(size_t)n * G + g] = sv;
      mins[(size_t)n * G + g] = -(float)z * sv;
    }
  return mq_adapt_bias(m, name, N, &l->bias, err);
}
