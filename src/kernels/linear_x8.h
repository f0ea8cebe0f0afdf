/* 4-bit integer weights repacked at load into tiles of 8 interleaved rows,
 * the layout the A16 kernels read fastest (one activation load serves 8
 * output rows; no horizontal sums).
 *
 * Tile t holds rows 8t..8t+7 (rows past N are zero codes with zero scales).
 * For each 32-column block b of the tile, 128 bytes: 4 chunks of 32 bytes;
 * byte r*4 + j of chunk c holds, in its low nibble, the code of row 8t+r at
 * column 32b + 4c + j and, in its high nibble, the code at 32b + 16 + 4c + j.
 * So the low nibbles of chunk c are column quad c and the high nibbles quad
 * c + 4, each as 8 rows x 4 columns.
 *
 * Scales and mins travel with the codes, so a kernel reads one stream: tile
 * t is G groups of mq_x8_gstride bytes each, group g holding the code
 * blocks of columns [g*gs, g*gs + gs) (a short last group is padded with
 * zero blocks), then the 8 rows' f32 scales, then, when the layer has mins,
 * their 8 f32 mins. After a repack q.scales and q.mins point at tile 0's
 * group 0 (mq_x8_scale / mq_x8_min reach the others). Separate scale arrays
 * read 35 GB/s where the single stream reads 38-40 on Zen 5 (decode's
 * shapes, one core; docs/performance.md).
 *
 * The group structure, the codes and the scales are those of the row layout:
 * only the order changes, so every path computes the same math. */
#ifndef MQ_KERNELS_LINEAR_X8_H
#define MQ_KERNELS_LINEAR_X8_H

#include <stddef.h>

#include "kernels/linear.h"

/* Whether l (MQ_W_INT, A16, row layout) can take the x8 layout: 4-bit codes
 * (2/3-bit widened included), K and the group size multiples of 32. */
int mq_x8_eligible(const mq_linear *l);

/* Bytes from one group of a tile to the next (code blocks of 128 bytes, or
 * of 256 for S8 tiles, then scales and, with mins, mins), and bytes of the
 * whole layer, for an n_out x n_in layer of group size gs. */
size_t mq_x8_gstride(int n_in, int gs, int s8, int mins);
size_t mq_x8_bytes(int n_out, int n_in, int gs, int s8, int mins);
/* ... of a repacked layer */
size_t mq_x8_layer_gstride(const mq_linear *l);

/* Repack l's codes, scales and mins into tiles (mq_x8_bytes with l's mins)
 * and point l at them (l->q.x8 = 1). The old buffers are left to the caller. */
void mq_x8_repack(mq_linear *l, uint8_t *tiles);

/* Code of row n, column k of an x8 4-bit layer; of an S8 one; the scale and
 * min (0 without mins) of row n, group g of either. */
unsigned mq_x8_code(const mq_linear *l, int n, int k);
int mq_x8_s8_code(const mq_linear *l, int n, int k);
float mq_x8_scale(const mq_linear *l, int n, int g);
float mq_x8_min(const mq_linear *l, int n, int g);

/* Offset, in a 128-byte block of the 4-bit layout, of the byte holding row
 * r (0..7), column i (0..31): its low nibble for i < 16, its high nibble for
 * column i + 16. */
static inline int mq_x8_nib_at(int r, int i) { return 32 * ((i % 16) / 4) + 4 * r + i % 4; }
static inline unsigned mq_x8_nib(const uint8_t *blk, int r, int i) {
  return (blk[mq_x8_nib_at(r, i % 16)] >> (i >= 16 ? 4 : 0)) & 15;
}

/* y = x W^T + b for an x8 layer, inputs already gathered (act-order) into xg
 * [n_tok, K] with group sums gsum [n_tok, G] when the layer has mins; xq/xd:
 * the fast path's int8 blocks of xg and their scales, or NULL (exact); bsum:
 * their blocks' code sums [n_tok, K / 32] (S8 tiles' two-tile kernels) or
 * NULL. */
void mq_x8_forward(const mq_linear *l, const float *xg, const float *gsum, const int8_t *xq,
                   const float *xd, const int32_t *bsum, int n_tok, float *y, const mq_exec *ex);

/* Activation-quantized 4-bit layers (W4A8, W4A4: S8 codes in [-8, 7] with
 * dynamic per-token activations) take the same layout with u = code + 8 and
 * mins' = mins - 8 * scale, so y = s_x * (sum_g s_g <u, x_q> + mins'_g
 * sum_g(x_q)) reads 4 bits per weight instead of 8. */
int mq_x8_aq_eligible(const mq_linear *l);
/* Repack (tiles sized by mq_x8_bytes with mins); -1 when out of memory for
 * a temporary (l unchanged). */
int mq_x8_aq_repack(mq_linear *l, uint8_t *tiles);
/* Tile results for n_tok tokens whose int8 codes start at buf + t * stride
 * with their group sums (floats) at buf + t * stride + off_gsum and, for S8
 * tiles, their 32-blocks' code sums (int32) at off_bsum:
 * y[t, n] = row sum (before the activation scale and the layer's terms). */
void mq_x8_aq_forward(const mq_linear *l, const uint8_t *buf, size_t stride, size_t off_gsum,
                      size_t off_bsum, int n_tok, float *y, const mq_exec *ex);

/* 8-bit weights with int8 activations (W8A8_DYNAMIC, CT W8A8: per token;
 * ModelSlim W8A8: static, one group, unit scales given to the kernel and
 * quant_bias / deq_scale applied after; symmetric weights, no zero points):
 * S8 codes in tiles of 8 rows, per
 * 32-column block 8 chunks of 32 bytes, byte r*4 + j of chunk c = the code
 * of row r at column 4c + j (256 bytes); groups, scales as above. */
int mq_x8_s8_eligible(const mq_linear *l);
/* Weight-only 8-bit layers (GPTQ/AWQ/AutoRound/CT W8A16: U8 codes with
 * zero points, or S8) in the same S8 tiles: U8 codes stored as u - 128 with
 * mins' = mins + 128 * scale, so w = s * c + mins'. Kernels: x8_s8a16_q8
 * (fast path) and x8_s8a16_f32 (exact). */
int mq_x8_a16s8_eligible(const mq_linear *l);
/* Repack into tiles (mq_x8_bytes, S8, with mins when l has mins or U8
 * codes); -1 when out of memory for a temporary (l unchanged). */
int mq_x8_a16s8_mins(const mq_linear *l);
int mq_x8_a16s8_repack(mq_linear *l, uint8_t *tiles);
/* W8A8: tiles sized by mq_x8_bytes (S8, no mins). */
void mq_x8_s8_repack(mq_linear *l, uint8_t *tiles);

/* y_i = W_i x for n (2..16) x8 layers reading one input x [n_tok, K]
 * (q/k/v, gate/up, the chosen experts' gate/up at decode): the input is
 * prepared once and one pool loop covers all their tiles. 0 (nothing done)
 * when the layers cannot share it. */
int mq_x8_forward_multi(const mq_linear *const *ls, int n, const float *x, int n_tok,
                        float *const *ys, const mq_exec *ex);

/* The same with an input per layer (y_i = W_i xs[i]; the chosen experts'
 * down projections at decode): each input prepared in its own part of
 * ex->gather (n times a layer's need: 0 when ex->gather_floats is smaller
 * or unknown), one pool loop. */
int mq_x8_forward_each(const mq_linear *const *ls, int n, const float *const *xs, int n_tok,
                       float *const *ys, const mq_exec *ex);

/* GGUF Q4_0 rows, repacked the same way ("Q4_0x8", as llama.cpp's CPU
 * backend does): per tile and 32-column block, the 128 code bytes of the
 * layout above (the stored nibbles, value = (u - 8) * d) then the 8 rows'
 * f16 scales d (16 bytes): 144 bytes per tile-block, the Q4_0 bytes. */
#define MQ_X8_Q4_0_BLOCK 144
/* GGUF Q4_K rows as "Q4_Kx8": per tile and 256-column super-block, the 8
 * sub-blocks' codes (8 x 128 bytes, layout above), the 6-bit scales as
 * bytes [sub-block j][row r] (64), the 6-bit mins likewise (64), then the
 * rows' f16 d (16) and dmin (16): 1184 bytes for 8 x 144 of Q4_K. */
#define MQ_X8_Q4_K_BLOCK 1184
/* GGUF Q5_K as "Q5_Kx8": Q4_Kx8's layout with the fifth bit of every code
 * after the nibbles — per 32-column block 32 bytes, byte i holding at bit c
 * the high bit of the low nibble of byte i of chunk c and at bit 4 + c that
 * of its high nibble — then scales (64), mins (64), d (16), dmin (16):
 * 1440 bytes for 8 x 176. */
#define MQ_X8_Q5_K_BLOCK 1440
/* Code (0..31) of row r, column k (0..255) of a Q5_Kx8 super-block sb. */
static inline unsigned mq_x8_q5k_code(const uint8_t *sb, int r, int k) {
  int j = k / 32, i = k % 32;
  unsigned hb = sb[1024 + 32 * j + 4 * r + i % 4];
  return mq_x8_nib(sb + 128 * j, r, i) | ((hb >> ((i % 16) / 4 + 4 * (i >= 16))) & 1) << 4;
}
/* GGUF Q6_K as "Q6_Kx8": per tile and super-block, the low 4 bits of the
 * 6-bit codes u (value (u - 32) * d * sc) as 8 x 128 bytes in the nibble
 * layout above; per 32-column block 64 bytes of high 2 bits — byte i of the
 * first 32 holds, at bits 2c..2c+1, the high bits of the low nibble of byte
 * i of chunk c, the second 32 those of the high nibbles; the int8 scales
 * [16 columns sub-block][row] (128); the rows' f16 d (16): 1680 = 8 x 210. */
#define MQ_X8_Q6_K_BLOCK 1680
/* Code (0..63) of row r, column k (0..255) of a Q6_Kx8 super-block sb. */
static inline unsigned mq_x8_q6k_code(const uint8_t *sb, int r, int k) {
  int j = k / 32, i = k % 32;
  unsigned hb = sb[1024 + 64 * j + 32 * (i >= 16) + 4 * r + i % 4];
  return mq_x8_nib(sb + 128 * j, r, i) | ((hb >> (2 * ((i % 16) / 4))) & 3) << 4;
}
/* GGUF Q3_K as "Q3_Kx8": per tile and super-block, the 3-bit codes u (value
 * (u - 4) * d * sc) in planes placed like Q6_Kx8's and Q5_Kx8's: per
 * 32-column block 64 bytes of the low 2 bits (Q6_Kx8's high-bit plane: byte
 * i of the first 32 holds at bits 2c..2c+1 the code of what would be the low
 * nibble of byte i of chunk c, the second 32 the high nibbles'), from byte
 * 512 per block 32 bytes of the third bits (Q5_Kx8's fifth-bit plane: bit c
 * low nibble's, bit 4 + c high nibble's), the int8 scales (-32..31)
 * [16-column sub-block][row] at 768, the rows' f16 d at 896: 912 bytes for
 * 8 x 110. */
#define MQ_X8_Q3_K_BLOCK 912
/* Code (0..7) of row r, column k (0..255) of a Q3_Kx8 super-block sb. */
static inline unsigned mq_x8_q3k_code(const uint8_t *sb, int r, int k) {
  int j = k / 32, i = k % 32, c = (i % 16) / 4;
  unsigned lo = sb[64 * j + 32 * (i >= 16) + 4 * r + i % 4] >> (2 * c);
  unsigned hb = sb[512 + 32 * j + 4 * r + i % 4] >> (c + 4 * (i >= 16));
  return (lo & 3) | (hb & 1) << 2;
}
/* GGUF Q2_K as "Q2_Kx8": per tile and super-block, the 2-bit codes u (value
 * d * sc * u - dmin * m) in Q3_Kx8's 2-bit planes (64 bytes per 32-column
 * block), the stored scale | min << 4 bytes [16-column sub-block][row] at
 * 512, the rows' f16 d at 640 and dmin at 656: 672 bytes, the Q2_K bytes. */
#define MQ_X8_Q2_K_BLOCK 672
/* Code (0..3) of row r, column k (0..255) of a Q2_Kx8 super-block sb. */
static inline unsigned mq_x8_q2k_code(const uint8_t *sb, int r, int k) {
  int j = k / 32, i = k % 32;
  return (sb[64 * j + 32 * (i >= 16) + 4 * r + i % 4] >> (2 * ((i % 16) / 4))) & 3;
}
/* GGUF Q8_0 as "Q8_0x8": per tile and block, the 256 code bytes of the S8
 * layout above, then the rows' f16 d (16): 272 bytes for 8 x 34. */
#define MQ_X8_Q8_0_BLOCK 272
int mq_x8_gguf_eligible(const mq_linear *l);
size_t mq_x8_gguf_bytes(uint32_t gtype, int n_out, int n_in);
void mq_x8_gguf_repack(mq_linear *l, uint8_t *dst);
void mq_x8_gguf_dequant_row(const mq_linear *l, int n, float *dst);
/* y = W x + b for n_tok tokens whose activation blocks (Q8_0; Q8_K for
 * Q4_K) are at act (stride bytes per token); Q4_0: bsum [n_tok, K/32] the
 * Q8_0 blocks' code sums (Q8_K carries its own). */
void mq_x8_gguf_forward(const mq_linear *l, const uint8_t *act, size_t stride, const int32_t *bsum,
                        int n_tok, float *y, const mq_exec *ex);

#endif
