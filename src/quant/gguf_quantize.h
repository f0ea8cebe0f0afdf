/* Weight quantizers for GGUF block types (the writer's side of
 * gguf_blocks.h; block layouts in specs/formats.md §5.3-5.4).
 *
 *   F32 F16 BF16  plain conversion (F16/BF16 round to nearest even)
 *   Q8_0          ggml's reference rule: d = amax/127, q = round(x/d)
 *                 (mq_gguf_quantize_row_q8_0, bit-exact with llama.cpp)
 *   Q4_0 / Q5_0   ggml's reference rule: m = the value of largest magnitude
 *                 (signed), d = m/-8 (Q5_0: m/-16), q = min(15 (31),
 *                 trunc(x/d + 8.5 (16.5))): the block's extreme value maps
 *                 exactly to code 0; bit-exact with llama.cpp's reference
 *   Q4_K          per 32-value sub-block an affine fit y = S*q - M (q 0..15,
 *                 M >= 0), refined by least squares on the codes, then S and
 *                 M quantized to 6 bits against the super-block's f16 d / dmin
 *   Q6_K          per 16-value sub-block a symmetric fit y = S*q (q -32..31),
 *                 refined by least squares, S quantized to int8 against the
 *                 super-block's f16 d
 *
 * The K-quant searches are simpler than llama-quantize's (which weighs each
 * value and tries many candidate scales), so the layouts are valid Q4_K /
 * Q6_K that any reader decodes, at somewhat lower accuracy than llama.cpp
 * would get from the same weights (docs/quantize.md measures it).
 *
 * Values with magnitude below 1e-30 are read as zero (f16 block scales
 * cannot represent such blocks, and 1/d would overflow); inputs must be
 * finite (the caller checks). */
#ifndef MQ_QUANT_GGUF_QUANTIZE_H
#define MQ_QUANT_GGUF_QUANTIZE_H

#include <stdint.h>

/* 1 when mq_gguf_quantize_row can write this ggml type. */
int mq_gguf_quantize_supported(uint32_t type);

/* Quantize one row of n floats (n a multiple of the type's block size) into
 * dst (mq_ggml_row_size(type, n) bytes). MQ_OK, MQ_ERR_UNSUPPORTED for a
 * type not listed above, MQ_ERR_ARG for a bad n. */
int mq_gguf_quantize_row(uint32_t type, const float *x, void *dst, int64_t n);

#endif
