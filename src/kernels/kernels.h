/* Compute kernels behind one table of function pointers, chosen once at
 * start-up from the CPU's features. Every entry has a scalar reference
 * (kernels/ref.c) that is the oracle for the SIMD variants. */
#ifndef MQ_KERNELS_H
#define MQ_KERNELS_H

#include <stdint.h>

#include "io/dtype.h"

typedef struct mq_kernels {
  const char *name; /* "scalar", "avx2" ... */
  /* sum_i a[i] * b[i] over n floats */
  float (*dot_f32)(const float *a, const float *b, int n);
  /* dst[0..n) = float(src[0..n)) for an F16 or BF16 row */
  void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
  void (*bf16_to_f32)(const uint16_t *src, float *dst, int n);
  /* sum_i code_i * x[i] over n codes (n even for u4): unsigned nibbles
   * (low nibble first), unsigned bytes, signed bytes */
  float (*dot_u4_f32)(const uint8_t *codes, const float *x, int n);
  float (*dot_u8_f32)(const uint8_t *codes, const float *x, int n);
  float (*dot_s8_f32)(const int8_t *codes, const float *x, int n);
  /* sum_i a[i] * b[i] of signed bytes, exact in int32 (n < 2^17) */
  int32_t (*dot_s8s8)(const int8_t *a, const int8_t *b, int n);
  /* Fast A16 path (activations as int8 blocks of 32 with a float scale each):
   * sum over blocks b of d[b] * sum_i code_i * q_i, n a multiple of 32.
   * codes: u4 nibbles (low first) or u8 bytes. */
  float (*dot_u4_q8)(const uint8_t *codes, const int8_t *q, const float *d, int n);
  float (*dot_u8_q8)(const uint8_t *codes, const int8_t *q, const float *d, int n);
  /* The same for 4 tokens at once (prefill): token j's activations at
   * q + j * q_stride, scales at d + j * d_stride; out[j] = its dot. The
   * weight block is decoded once for the four. */
  void (*dot4_u4_q8)(const uint8_t *codes, const int8_t *q, int q_stride, const float *d,
                     int d_stride, int n, float out[4]);
  /* GGUF rows of n values (n % 32 == 0) against Q8_0 activation blocks:
   * Q4_0 and Q8_0 weights (the scalar entries are quant/gguf_blocks.c's). */
  float (*gguf_q4_0)(int n, const void *w, const void *act);
  float (*gguf_q8_0)(int n, const void *w, const void *act);
  /* ... and Q4_K / Q6_K weights against Q8_K blocks (n % 256 == 0) */
  float (*gguf_q4_k)(int n, const void *w, const void *act);
  float (*gguf_q6_k)(int n, const void *w, const void *act);
} mq_kernels;

/* x [n] (n % 32 == 0) into int8 blocks of 32: d[b] = max|x_b| / 127,
 * q = rne(x / d) (llama.cpp's Q8_0 activation rule, scales kept in f32). */
void mq_quantize_q8_32(const float *x, int n, int8_t *q, float *d);

/* The active table (initialized on first use; thread-safe). */
const mq_kernels *mq_kern(void);
/* The scalar reference table, for tests and the scalar-only build. */
const mq_kernels *mq_kern_ref(void);
/* NULL when this CPU or build has no AVX2 variant. */
const mq_kernels *mq_kern_avx2(void);

/* Float row of any float dtype into dst (converted) — or, for F32 input,
 * the source itself when it is 4-byte aligned. */
const float *mq_row_f32(const mq_kernels *k, mq_dtype dt, const void *src, float *dst, int n);

/* y = x / sqrt(mean(x^2) + eps) * w; x and y may alias. [n] */
void mq_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
/* In-place softmax over n values. */
void mq_softmax(float *x, int n);
/* g[i] = silu(g[i]) * u[i] */
void mq_swiglu(float *g, const float *u, int n);

#endif
