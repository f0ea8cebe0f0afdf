/* Bit packers of the weight-only checkpoint formats (specs/formats.md §1.3,
 * §2.3-2.5, §4.4), for the quantizing writer.
 *
 * Inputs are unsigned integer codes, one uint8 per value, each < 2^bits
 * (compressed-tensors' signed values are stored offset-binary, u = q + 2^(b-1),
 * so callers pass u). Outputs are 32-bit words: the bit patterns the formats
 * keep in I32 tensors (write them little-endian; negative I32 is normal).
 * Every packer fills its whole output, padding bits included (zero). */
#ifndef MQ_QUANT_PACK_H
#define MQ_QUANT_PACK_H

#include <stdint.h>

/* AWQ GEMM (AutoAWQ WQLinear_GEMM), 4-bit, packed along the columns with the
 * AWQ interleave: v: [rows, cols], cols % 8 == 0 -> out: [rows, cols/8]; word
 * c holds column 8c + ORDER[i] in bits 4i..4i+3, ORDER = {0,2,4,6,1,3,5,7}.
 * qweight: rows = K (v = codes transposed to [K, N]); qzeros: rows = groups. */
void mq_pack_awq(const uint8_t *v, int64_t rows, int64_t cols, uint32_t *out);

/* Words per packed line of n values, bits in {2,3,4,8}: n * bits / 32. The
 * GPTQ layouts need n % (32/bits) == 0, and n % 32 == 0 for 3 bits. Returns
 * -1 when n or bits do not allow it. */
int64_t mq_pack_gptq_words(int64_t n, int bits);

/* GPTQ qweight: packed along the ROWS. v: [rows, cols] (rows = K, i.e. codes
 * transposed to [K, N]) -> out: [mq_pack_gptq_words(rows), cols]. Along a column
 * the values form one little-endian bit-stream, value k at bits k*bits..: for
 * 2/4/8 bits word k/pf holds it at shift bits*(k%pf); for 3 bits every 3 words
 * hold 32 values and values 10 and 21 straddle words. Returns 0, -1 on a bad
 * shape. */
int mq_pack_gptq_rows(const uint8_t *v, int64_t rows, int64_t cols, int bits, uint32_t *out);

/* GPTQ qzeros: packed along the COLUMNS, same bit-stream per row.
 * v: [rows, cols] (rows = groups, cols = N) -> out: [rows, mq_pack_gptq_words(cols)].
 * Stores the zeros as given (v2 / exact convention). Returns 0, -1 on a bad
 * shape. */
int mq_pack_gptq_cols(const uint8_t *v, int64_t rows, int64_t cols, int bits, uint32_t *out);

/* GPTQ v1 "zeros minus one", in place on packed qzeros words (n words, whole
 * rows of mq_pack_gptq_words(N) words each; for 3 bits n % 3 == 0).
 * 2/4/8 bits: word-level, w -= 0x55555555 / 0x11111111 / 0x01010101 (mod 2^32),
 * so a zero of 0 borrows from the field above it - what GPTQModel's v2->v1
 * export and AutoRound's auto_gptq int32 packer write, and what a word-level
 * `+C` reader (GPTQModel) undoes exactly.
 * 3 bits: per field, f -> (f - 1) & 7, because fields straddle words; this is
 * what GPTQModel's int32 3-bit export does and what its per-field reader undoes. */
void mq_pack_gptq_zeros_to_v1(uint32_t *w, int64_t n, int bits);
/* The inverse (reader side: +C per word, or (f + 1) & 7 per 3-bit field). */
void mq_pack_gptq_zeros_from_v1(uint32_t *w, int64_t n, int bits);

/* compressed-tensors pack_to_int32, two historical variants (§4.4):
 * aligned (compressed-tensors <= 0.17): pf = 32/bits values per word at shift
 *   bits*i, unused high bits zero; words = ceil(n / pf).
 * dense (>= 0.18): one bit-stream, value i at bit i*bits (may straddle);
 *   words = ceil(n * bits / 32).
 * bits in 1..8. For bits 1, 2, 4, 8 the two are identical. */
int64_t mq_pack_ct_words(int64_t n, int bits, int dense);

/* Pack along the last dim (weights): v: [rows, cols] -> out: [rows, mq_pack_ct_words(cols)]. */
void mq_pack_ct(const uint8_t *v, int64_t rows, int64_t cols, int bits, int dense, uint32_t *out);

/* Pack along dim 0 (zero points, packed along N): v: [rows, cols] (rows = N,
 * cols = groups) -> out: [mq_pack_ct_words(rows), cols]; word [c][g] holds
 * v[c*pf + i][g] (aligned) or stream bits of column g (dense). */
void mq_pack_ct_dim0(const uint8_t *v, int64_t rows, int64_t cols, int bits, int dense,
                     uint32_t *out);

#endif
