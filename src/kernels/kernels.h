/* Compute kernels behind one table of function pointers, chosen once at
 * start-up from the CPU's features. Every entry has a scalar reference
 * (kernels/ref.c) that is the oracle for the SIMD variants. */
#ifndef MQ_KERNELS_H
#define MQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "io/dtype.h"
#include "quant/gguf_types.h"

typedef float (*mq_gguf_dot_fn)(int n, const void *w, const void *act);

typedef struct mq_kernels {
  const char *name; /* "scalar", "avx2", "avx512", "avx512bf16", "neon" */
  /* sum_i a[i] * b[i] over n floats */
  float (*dot_f32)(const float *a, const float *b, int n);
  /* Attention of nq (1..8) query heads over n cached rows (row p at rows +
   * p * stride, len floats): the scores out_j[p] = sum_i q_j[i] * row_p[i]
   * (q_j = q + j * q_stride, out_j = out + j * out_stride), and the weighted
   * values o_j[i] += sum_p w_j[p] * row_p[i] (o_j = o + j * o_stride, w_j =
   * w + j * w_stride; o accumulates). */
  void (*dot_rows_f32)(const float *q, size_t q_stride, int nq, const float *rows, size_t stride,
                       int n, int len, float *out, size_t out_stride);
  void (*axpy_rows_f32)(float *o, size_t o_stride, int nq, const float *rows, size_t stride,
                        const float *w, size_t w_stride, int n, int len);
  /* x[0..n) = softmax(x) (n >= 1); the reference is mq_softmax (libm expf,
   * a double sum), SIMD tiers evaluate exp by a polynomial within 2 ulp */
  void (*softmax_f32)(float *x, int n);
  /* g[i] = silu(g[i]) * u[i] over n values (the FFN's SwiGLU); the reference
   * is mq_swiglu (libm expf), SIMD tiers evaluate the sigmoid's exp by the
   * softmax's polynomial (within 4 ulp of the reference) */
  void (*swiglu_f32)(float *g, const float *u, int n);
  /* The float block: out[t * 4 + r] = dot_f32(w[r], x[t], n) for 4 weight
   * rows and the first nt (1..4) token rows (row pointers may repeat:
   * callers pad a short block with copies and drop those results; outputs
   * of tokens past nt are not written). Each pair's sum is computed the same
   * whatever nt, so one token's results are those of a block of four. NULL
   * in a tier without one (the scalar reference, NEON): dot_f32 per pair. */
  void (*dot4x4_f32)(const float *const w[4], const float *const x[4], int nt, int n,
                     float out[16]);
  /* dst[0..n) = d * q of n / 32 GGUF Q8_0 blocks (34 bytes: f16 d, 32 int8
   * q; n % 32 == 0): the q8_0 KV cache's rows */
  void (*q8_0_to_f32)(const uint8_t *blocks, float *dst, int n);
  /* dst[0..n) = float(src[0..n)) for an F16 or BF16 row */
  void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
  void (*bf16_to_f32)(const uint16_t *src, float *dst, int n);
  /* sum_i float(w[i]) * x[i] for an F16 or BF16 row w (decode: no converted
   * copy of the row) */
  float (*dot_f16_f32)(const uint16_t *w, const float *x, int n);
  float (*dot_bf16_f32)(const uint16_t *w, const float *x, int n);
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
  /* GGUF activation blocks of n floats (n % 32 == 0): Q8_0 (34 bytes a
   * block) or, with_sum, Q8_1 (36), with llama.cpp's x86 rounding, byte for
   * byte mq_gguf_quantize_row_q8_{0,1}_x86 (the reference) */
  void (*gguf_q8_x86)(const float *x, uint8_t *y, int n, int with_sum);
  /* the A16 fast path's activation blocks, byte for byte mq_quantize_q8_32
   * (the reference) */
  void (*quantize_q8_32)(const float *x, int n, int8_t *q, float *d);
  /* MXFP8 activations, bit for bit mq_quantize_mxfp8 (the reference) */
  void (*quantize_mxfp8)(const float *x, int n, float *xf);
  /* MXFP8 row: sum over 32-blocks b of 2^(e[b] - 127) * sum_i e4m3(w[i]) * x[i]
   * (w: n E4M3 codes, e: n/32 E8M0 exponents, x: n floats, n % 32 == 0) */
  float (*dot_mxfp8_f32)(const uint8_t *w, const uint8_t *e, const float *x, int n);
  /* ... and the row itself: dst[i] = e4m3(w[i]) * 2^(e[i / 32] - 127) (prefill
   * converts a row once for all tokens; values past float range become inf) */
  void (*mxfp8_to_f32)(const uint8_t *w, const uint8_t *e, float *dst, int n);
  /* MXFP8 through bf16 products (NULL below the avx512bf16 tier). Vectors of
   * bf16 halves are stored in the tier's order, padded with zeros to
   * mq_mx_bf16_len(n) halves; callers only hand them back.
   * mxfp8_act_bf16: n MXFP8 activation floats (x_e4m3 * 2^e) into xb; returns
   *   1 when exact (0: some value is not a normal bf16, use the float kernels);
   * dot_mxfp8_bf16: dot_mxfp8_f32's sum against xb;
   * mxfp8_to_bf16: mxfp8_to_f32's row as bf16 into dst; returns 0 (dst
   *   unspecified) when a block's scale takes values out of bf16's normal range;
   * dot4x4_bf16: dot4x4_f32 over two such vectors each of 4 rows and 4 tokens,
   *   n = mq_mx_bf16_len(K). */
  int (*mxfp8_act_bf16)(const float *x, uint16_t *xb, int n);
  float (*dot_mxfp8_bf16)(const uint8_t *w, const uint8_t *e, const uint16_t *xb, int n);
  int (*mxfp8_to_bf16)(const uint8_t *w, const uint8_t *e, uint16_t *dst, int n);
  void (*dot4x4_bf16)(const uint16_t *const w[4], const uint16_t *const x[4], int n,
                      float out[16]);
  /* x8 tiles of 4-bit weights (kernels/linear_x8.h): one tile of 8 rows
   * against T tokens (1 <= T <= 4). Group g's code blocks start at
   * tile + g * gstride and its 8 scales (mins) at sc + g * gstride / 4 floats
   * (mn); in the layout the scales and mins follow each group's codes, so
   * one stream holds them all. K and gs are multiples of 32 (the last group
   * may be shorter). out[t*8 + r] = sum_g sc[g][r] * D(t, g, r) +
   * mn[g][r] * gsum_t[g], with gsum_t = gsum + t * gsum_stride (mn and gsum
   * NULL: no mins) and
   *   fast:  D = sum over the group's 32-blocks b of d_t[b] * sum_k code * q_t[k]
   *          (q_t = q + t * q_stride, d_t = d + t * d_stride; exact int sums)
   *   exact: D = sum_k code * x_t[k] (x_t = x + t * x_stride). */
  void (*x8_u4_q8)(const uint8_t *tile, size_t gstride, const float *sc, const float *mn, int K,
                   int gs, const int8_t *q, int q_stride, const float *d, int d_stride,
                   const float *gsum, int gsum_stride, int T, float *out);
  void (*x8_u4_f32)(const uint8_t *tile, size_t gstride, const float *sc, const float *mn, int K,
                    int gs, const float *x, int x_stride, const float *gsum, int gsum_stride, int T,
                    float *out);
  /* The same two for S8 tiles of weight-only 8-bit layers (layout of
   * x8_s8_q8's tiles; unsigned checkpoint codes stored as q - 128 with the
   * 128 * scale moved into the mins): x8_u4_q8's and x8_u4_f32's sums. */
  void (*x8_s8a16_q8)(const uint8_t *tile, size_t gstride, const float *sc, const float *mn, int K,
                      int gs, const int8_t *q, int q_stride, const float *d, int d_stride,
                      const float *gsum, int gsum_stride, int T, float *out);
  void (*x8_s8a16_f32)(const uint8_t *tile, size_t gstride, const float *sc, const float *mn, int K,
                       int gs, const float *x, int x_stride, const float *gsum, int gsum_stride,
                       int T, float *out);
  /* S8 x8 tiles (W8A8) against T (1..4) tokens' int8 codes q + t * q_stride
   * (|q| <= 127): out[t*8 + r] = sum_g sc[g][r] * sum_{k in g} w q, integer
   * sums per group (groups and scales placed as for x8_u4_q8). */
  void (*x8_s8_q8)(const uint8_t *tile, size_t gstride, const float *sc, int K, int gs,
                   const int8_t *q, int q_stride, int T, float *out);
  /* GGUF Q4_0x8 tiles (kernels/linear_x8.h) against T (1..4) tokens' Q8_0
   * activation blocks (act + t * act_stride; bsum + t * bsum_stride: each
   * block's sum of codes): out[t*8 + r] = sum_b (d_w * d_x) * sum_k (u - 8) q,
   * the Q4_0 dot product of each row. */
  void (*x8_q4_0)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... Q8_0x8 tiles against Q8_0 (bsum unused): sum_b (d_w * d_x) * sum_k w q */
  void (*x8_q8_0)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... and Q4_Kx8 tiles against Q8_K blocks (bsum unused: Q8_K has its own):
   * out[t*8 + r] = sum_sb d_x * (d * sum_j sc_j sum_k u q - dmin * sum_j m_j bsum_j) */
  void (*x8_q4_k)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... Q5_Kx8 tiles against Q8_K (Q4_K's sums with 5-bit codes) */
  void (*x8_q5_k)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... and Q6_Kx8 tiles against Q8_K: sum_sb d_x * d * sum_s sc_s (sum_k u q - 32 bsum_s) */
  void (*x8_q6_k)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... Q3_Kx8 tiles against Q8_K: Q6_K's sums with 3-bit codes, -4 */
  void (*x8_q3_k)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* ... and Q2_Kx8 against Q8_K:
   * sum_sb d_x * (d * sum_s sc_s sum_k u q - dmin * sum_s m_s bsum_s) */
  void (*x8_q2_k)(const uint8_t *tile, int K, const uint8_t *act, size_t act_stride,
                  const int32_t *bsum, int bsum_stride, int T, float *out);
  /* Two tiles a call (prefill): out[t*16 + r] for their 16 rows, each
   * token's activation words permuted once for both. The integer tiles' second
   * codes, scales and mins are at tile2, sc2, mn2; GGUF's at tile + tstride
   * (bytes; x8_gguf_2 is indexed by ggml type and takes x8_q4_0's arguments).
   * The S8 entries (x8_s8_q8_2, x8_s8a16_q8_2, Q8_0) also take each token's
   * block code sums (bsum + t * bsum_stride: the sum of block b's 32
   * activation codes; x8_u4_q8_2 ignores them).
   * NULL where a tier has none (callers take the one-tile entry per tile);
   * otherwise the one-tile entry's results, bit for bit. */
  void (*x8_u4_q8_2)(const uint8_t *tile, const uint8_t *tile2, size_t gstride, const float *sc,
                     const float *sc2, const float *mn, const float *mn2, int K, int gs,
                     const int8_t *q, int q_stride, const float *d, int d_stride,
                     const float *gsum, int gsum_stride, const int32_t *bsum, int bsum_stride,
                     int T, float *out);
  void (*x8_s8a16_q8_2)(const uint8_t *tile, const uint8_t *tile2, size_t gstride,
                        const float *sc, const float *sc2, const float *mn, const float *mn2,
                        int K, int gs, const int8_t *q, int q_stride, const float *d,
                        int d_stride, const float *gsum, int gsum_stride, const int32_t *bsum,
                        int bsum_stride, int T, float *out);
  void (*x8_s8_q8_2)(const uint8_t *tile, const uint8_t *tile2, size_t gstride, const float *sc,
                     const float *sc2, int K, int gs, const int8_t *q, int q_stride,
                     const int32_t *bsum, int bsum_stride, int T, float *out);
  void (*x8_gguf_2[MQ_GGML_TYPE_COUNT])(const uint8_t *tile, size_t tstride, int K,
                                        const uint8_t *act, size_t act_stride,
                                        const int32_t *bsum, int bsum_stride, int T, float *out);
  /* GGUF: one row of n values of ggml type t against the activation blocks
   * that type's dot product consumes (mq_gguf_act_size: Q8_0 for Q4_0/Q8_0,
   * Q8_K for the K-quants ...). Indexed by ggml type id; NULL where a tier
   * has no kernel for the type: callers then use mq_gguf_vec_dot, the
   * scalar definition (quant/gguf_blocks.c), which the entries must equal. */
  mq_gguf_dot_fn gguf_dot[MQ_GGML_TYPE_COUNT];
} mq_kernels;

/* x [n] (n % 32 == 0) into int8 blocks of 32: d[b] = max|x_b| / 127,
 * q = rne(x / d) (llama.cpp's Q8_0 activation rule, scales kept in f32). */
void mq_quantize_q8_32(const float *x, int n, int8_t *q, float *d);
/* x [n] (n % 32 == 0) quantized to MXFP8 as a block's values: per 32-block
 * the shared exponent e = floor(log2 max|x|) - 8 (clamped to [-127, 127];
 * -127 for an all-zero block), each value rounded to E4M3 (nearest even,
 * saturating at 448; NaN stays NaN) as x * 2^-e, and written back as the
 * exact float e4m3 * 2^e into xf. */
void mq_quantize_mxfp8(const float *x, int n, float *xf);

/* Halves a bf16 MXFP8 vector of n values takes (n rounded up to 64). */
static inline int mq_mx_bf16_len(int n) { return (n + 63) & ~63; }

/* The active table (initialized on first use; thread-safe). */
const mq_kernels *mq_kern(void);
/* The scalar reference table, for tests and the scalar-only build. */
const mq_kernels *mq_kern_ref(void);
/* A tier's table (the reference's entries where the tier has none), or NULL
 * when this CPU or build lacks the tier. */
const mq_kernels *mq_kern_avx2(void);
const mq_kernels *mq_kern_avx512(void); /* AVX-512 F/BW/VL + VNNI over AVX2 */
const mq_kernels *mq_kern_avx512bf16(void); /* + VBMI and BF16 over AVX-512 */
const mq_kernels *mq_kern_neon(void);
/* Every SIMD tier this build and CPU have, lowest first (tests check each
 * against the reference); returns how many. */
#define MQ_KERN_MAX_TIERS 4
int mq_kern_simd_tiers(const mq_kernels *out[MQ_KERN_MAX_TIERS]);

/* Each ISA source file overwrites the entries it implements in a copy of
 * the reference table (one ISA per file; dispatch.c assembles the tiers).
 * The fill functions return 0 when this CPU or build lacks the ISA. */
int mq_kern_fill_avx2(mq_kernels *k);      /* kernels/avx2.c */
void mq_kern_fill_avx2_gguf(mq_kernels *k); /* kernels/avx2_gguf.c: more GGUF types */
int mq_kern_fill_avx512(mq_kernels *k);     /* kernels/avx512.c, over the AVX2 tier */
int mq_kern_fill_avx512bf16(mq_kernels *k); /* kernels/avx512_bf16.c, over AVX-512 */
int mq_kern_fill_neon(mq_kernels *k);      /* kernels/neon.c */

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
