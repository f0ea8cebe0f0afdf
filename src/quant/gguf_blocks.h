/* Scalar reference kernels for GGUF block types (specs/formats.md §5.3-5.6):
 * dequantization, the activation quantizers GGUF's dot products use, and
 * the dot products themselves, computed as ggml's reference does (integer
 * sums per block, then scaled; same float operation order). These are the
 * oracle for any SIMD variant. The compute choice of each weight type is
 * listed at the top of gguf_blocks.c and in docs/gguf.md.
 *
 * Blocks are read byte by byte (little-endian), so rows need no alignment.
 * Row lengths n are in elements and must be multiples of the type's block
 * size (the GGUF reader guarantees it for tensors). */
#ifndef MQ_QUANT_GGUF_BLOCKS_H
#define MQ_QUANT_GGUF_BLOCKS_H

#include <stdint.h>

#include "quant/gguf_types.h"

/* dst[0..n) = the n values of a row of type `type` at src.
 * Returns MQ_OK, MQ_ERR_UNSUPPORTED for a type mixq does not compute (and
 * not Q8_0/Q8_1/Q8_K) or MQ_ERR_ARG when n is not a multiple of its block. */
int mq_gguf_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Activation quantizers, as ggml's quantize_row_*_ref (bit-exact):
 * q8_0: per 32 values d = amax/127 (f32), q = roundf(x * (1/d)) (ties away
 *       from zero), d stored as f16. dst: n/32 blocks of 34 bytes.
 * q8_1: as q8_0, plus s = f16(d * sum(q)) with the f32 d. 36-byte blocks
 *       (d f16, s f16, qs[32]).
 * q8_K: per 256 values, iscale = -127/max where max is the value of largest
 *       magnitude (signed), q = min(127, nearest_int(iscale * x)) (ties to
 *       even), d = 1/iscale (f32), bsums[16] = sums of 16 q's. 292-byte
 *       blocks (f32 d, qs[256], i16 bsums[16]). An all-zero block gives d = 0
 *       and q = 0 (bsums too). */
void mq_gguf_quantize_row_q8_0(const float *x, void *dst, int64_t n);
void mq_gguf_quantize_row_q8_1(const float *x, void *dst, int64_t n);
void mq_gguf_quantize_row_q8_K(const float *x, void *dst, int64_t n);

/* The same two quantizers as llama.cpp's x86 SIMD builds compute them (a
 * named mode, not the reference): the multiplier is 127/amax instead of
 * 1/(amax/127) and rounding is to nearest even. The llama.cpp goldens in
 * shared/fixtures were produced by such a build (AVX2). */
void mq_gguf_quantize_row_q8_0_x86(const float *x, void *dst, int64_t n);
void mq_gguf_quantize_row_q8_1_x86(const float *x, void *dst, int64_t n);

/* Activation format the dot product of weight type `type` consumes:
 * MQ_GGML_TYPE_Q8_0 / _Q8_1 / _Q8_K, or MQ_GGML_TYPE_F32 (plain floats) for
 * F32/F16/BF16 weights; -1 for unsupported weight types. */
int mq_gguf_act_type(uint32_t type);
/* Bytes of the activation buffer for a row of n values of weight type
 * `type` (n a multiple of its block size); -1 for unsupported types. */
int64_t mq_gguf_act_size(uint32_t type, int64_t n);
/* Quantize n floats into the activation format of weight type `type`
 * (a copy for F32/F16/BF16). dst holds mq_gguf_act_size(type, n) bytes. */
int mq_gguf_quantize_act(uint32_t type, const float *x, void *dst, int64_t n);

/* sum_i w[i] * a[i] over a row of n values: w_row in weight type `type`,
 * act in mq_gguf_act_type(type)'s format. type must be supported
 * (mq_ggml_type_supported) and n a multiple of its block size. */
float mq_gguf_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *act);

/* Q4_K / Q5_K 6-bit scale and min of sub-block j (0..7) from the 12 packed
 * scale bytes s (get_scale_min_k4). */
void mq_gguf_scale_min_k4(int j, const uint8_t *s, int *sc, int *mn);
/* The unsigned codes of one Q2_K (0..3), Q3_K (0..7), Q4_K (0..15), Q5_K (0..31) or Q6_K
 * (0..63) super-block, in column order (Q3_K's value is code - 4, Q6_K's
 * code - 32). */
void mq_gguf_k_codes(uint32_t type, const uint8_t *block, uint8_t u[256]);
/* Q3_K's 16 sub-block scales (6-bit, minus 32: -32..31). */
void mq_gguf_q3k_scales(const uint8_t *block, int sc[16]);

/* The IQ4_NL / IQ4_XS codebook (kvalues_iq4nl). */
extern const int8_t mq_iq4nl_values[16];

#endif
