/* A tier's activation quantizers (kernels.h: gguf_q8_x86, quantize_q8_32)
 * from its block function
 *   int q8_block_<isa>(const float *x, uint8_t *q, float *amax, int *sum)
 * which writes one block of 32 codes x * 127 / amax rounded to nearest even
 * (and, with sum, their sum), or returns 0 for a block the scalar
 * references must take (a NaN or an infinity, or 127 / amax overflowing).
 * The block scales are written as the references write them: d = amax /
 * 127, as f16 (GGUF, and d * sum for Q8_1) or as a float. */
#ifndef MQ_KERNELS_Q8_ENTRIES_H
#define MQ_KERNELS_Q8_ENTRIES_H

#include <string.h>

#include "core/numconv.h"
#include "kernels/kernels.h"

#define MQ_Q8_ENTRIES(isa)                                                                         \
  static void gguf_q8_x86_##isa(const float *x, uint8_t *y, int n, int with_sum) {                 \
    const int qoff = with_sum ? 4 : 2, bs = qoff + 32;                                             \
    for (int b = 0; b < n / 32; b++, x += 32, y += bs) {                                           \
      float amax;                                                                                  \
      int sum = 0;                                                                                 \
      if (!q8_block_##isa(x, y + qoff, &amax, with_sum ? &sum : NULL)) {                           \
        mq_kern_ref()->gguf_q8_x86(x, y, 32, with_sum);                                            \
        continue;                                                                                  \
      }                                                                                            \
      float d = amax / 127.0f;                                                                     \
      uint16_t h[2] = {mq_f32_to_f16(d), mq_f32_to_f16(d * (float)sum)};                           \
      memcpy(y, h, with_sum ? 4 : 2);                                                              \
    }                                                                                              \
  }                                                                                                \
  static void quantize_q8_32_##isa(const float *x, int n, int8_t *q, float *d) {                   \
    for (int b = 0; b < n / 32; b++) {                                                             \
      float amax;                                                                                  \
      if (q8_block_##isa(x + 32 * b, (uint8_t *)q + 32 * b, &amax, NULL))                          \
        d[b] = amax / 127.0f;                                                                      \
      else                                                                                         \
        mq_quantize_q8_32(x + 32 * b, 32, q + 32 * b, d + b);                                      \
    }                                                                                              \
  }

#endif
