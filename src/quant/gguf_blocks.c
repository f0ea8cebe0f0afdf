/* GGUF block kernels, scalar reference.
 *
 * Compute choice per weight type (specs/formats.md §5.6: ggml's CPU backend
 * converts the activations to the weight type's vec_dot_type first):
 *
 *   weight                     activations   dot product
 *   Q4_0 Q5_0 Q8_0 IQ4_NL      Q8_0          integer sum per 32-block, x d_w x d_a
 *   Q4_1 Q5_1                  Q8_1          d_w*d_a*isum + m_w*s_a per block
 *   Q2_K..Q6_K IQ4_XS          Q8_K          integer sums per sub-block x scale,
 *                                            x d_w*d_a per super-block (mins via bsums)
 *   F32 F16 BF16               f32 (F16: f32 rounded to f16 by the caller)
 *                                            float products, double accumulation
 *
 * The quantized paths follow ggml's generic (scalar) vec_dot_* functions in
 * ggml-cpu/quants.c operation for operation: the same integer sums, the
 * same float products in the same order and association (K-quants keep
 * ggml's eight per-lane float accumulators), so results equal ggml's scalar
 * reference bit for bit on the same inputs. ggml's SIMD paths sum in other
 * orders; matching them exactly is not a goal.
 *
 * BF16 differs on purpose from llama.cpp, whose vec_dot_type for it is BF16:
 * it rounds the activations to bf16 before the dot product; mixq keeps them
 * f32 (the exact path). F16 layers round them to f16 as llama.cpp does
 * (kernels/linear_gguf.c), then compute the rows as float rows.
 *
 * Dequantization reproduces ggml's dequantize_row_* float order too
 * (d*sc computed first, then *q, then - dmin*m), so dequantized values are
 * bit-identical to ggml's. */
#include "quant/gguf_blocks.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "core/numconv.h"
#include "mixq.h"

/* No fused multiply-adds: each product and sum is rounded, as in ggml's
 * reference. GCC does not contract in ISO C mode (-std=c11, which the build
 * uses); clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK 32   /* elements per basic block */
#define QKK 256 /* elements per K-quant super-block */

const int8_t mq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

/* ---- little-endian field access ---- */

static inline float rd_f16(const uint8_t *p) {
  return mq_f16_to_f32((uint16_t)(p[0] | (uint16_t)p[1] << 8));
}

static inline float rd_f32(const uint8_t *p) {
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return mq_bits_to_f32(u);
}

static inline int16_t rd_i16(const uint8_t *p) { return (int16_t)(uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void wr_f16(uint8_t *p, float v) {
  uint16_t h = mq_f32_to_f16(v);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

static inline void wr_f32(uint8_t *p, float v) {
  uint32_t u = mq_f32_to_bits(v);
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

static inline void wr_i16(uint8_t *p, int v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)((unsigned)v >> 8);
}

/* ---- code unpacking (formats.md §5.3-5.4), shared by dequant and dot ----
 * Each fills the integer codes of one block in element order. */

/* Q4_0 / Q4_1 / IQ4_NL nibbles: low nibbles are elements 0..15, high 16..31. */
static void nibbles32(const uint8_t *qs, int q[QK]) {
  for (int j = 0; j < 16; j++) {
    q[j] = qs[j] & 0xF;
    q[j + 16] = qs[j] >> 4;
  }
}

/* Q5_0 / Q5_1: nibbles plus the 5th bit from the u32 qh (bit j: element j). */
static void fivebit32(const uint8_t *qh, const uint8_t *qs, int q[QK]) {
  uint32_t h = rd_u32(qh);
  nibbles32(qs, q);
  for (int j = 0; j < QK; j++) q[j] |= (int)((h >> j) & 1) << 4;
}

/* Q2_K: 2-bit codes; element e = 128h + 32j + l uses (qs[32h + l] >> 2j) & 3. */
static void unpack_q2k(const uint8_t *b, int q[QKK]) {
  const uint8_t *qs = b + 16;
  for (int e = 0; e < QKK; e++) {
    int h = e / 128, j = (e % 128) / 32, l = e % 32;
    q[e] = (qs[32 * h + l] >> (2 * j)) & 3;
  }
}

/* Q3_K: 2 low bits as Q2_K, minus 4 when bit (4h + j) of hmask[l] is clear. */
static void unpack_q3k(const uint8_t *b, int q[QKK]) {
  const uint8_t *hm = b, *qs = b + 32;
  for (int e = 0; e < QKK; e++) {
    int h = e / 128, j = (e % 128) / 32, l = e % 32;
    int v = (qs[32 * h + l] >> (2 * j)) & 3;
    q[e] = v - ((hm[l] >> (4 * h + j)) & 1 ? 0 : 4);
  }
}

/* Q3_K's 16 signed 6-bit scales (already minus 32) from its 12 scale bytes. */
static void scales_q3k(const uint8_t *b, int sc[16]) {
  const uint8_t *s = b + 96;
  for (int i = 0; i < 16; i++) {
    int lo = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    sc[i] = (lo | hi << 4) - 32;
  }
}

void mq_gguf_q3k_scales(const uint8_t *block, int sc[16]) { scales_q3k(block, sc); }

/* Q4_K / Q5_K 6-bit scale and min of sub-block j (get_scale_min_k4). */
void mq_gguf_scale_min_k4(int j, const uint8_t *s, int *sc, int *mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/* Q4_K nibbles: chunk c (64 elements) from qs[32c..32c+31], low then high. */
static void unpack_q4k(const uint8_t *qs, int q[QKK]) {
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      q[64 * c + l] = qs[32 * c + l] & 0xF;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
}

/* Q5_K: Q4_K's nibbles + 16 from qh[l] bit 2c (low half) / 2c+1 (high half). */
static void unpack_q5k(const uint8_t *b, int q[QKK]) {
  const uint8_t *qh = b + 16;
  unpack_q4k(b + 48, q);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      q[64 * c + l] += (qh[l] >> (2 * c)) & 1 ? 16 : 0;
      q[64 * c + 32 + l] += (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
    }
}

/* Q6_K: 4 low bits from ql, 2 high bits from qh, minus 32. */
static void unpack_q6k(const uint8_t *b, int q[QKK]) {
  const uint8_t *ql0 = b, *qh0 = b + 128;
  for (int h = 0; h < 2; h++) {
    const uint8_t *ql = ql0 + 64 * h, *qh = qh0 + 32 * h;
    int *y = q + 128 * h;
    for (int l = 0; l < 32; l++) {
      y[l] = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
      y[l + 32] = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
      y[l + 64] = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      y[l + 96] = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
    }
  }
}

void mq_gguf_k_codes(uint32_t type, const uint8_t *block, uint8_t u[256]) {
  int q[QKK], off = 0;
  if (type == MQ_GGML_TYPE_Q2_K)
    unpack_q2k(block, q);
  else if (type == MQ_GGML_TYPE_Q4_K)
    unpack_q4k(block + 16, q);
  else if (type == MQ_GGML_TYPE_Q5_K) unpack_q5k(block, q);
  else if (type == MQ_GGML_TYPE_Q3_K)
    unpack_q3k(block, q), off = 4;     /* q in -4..3 */
  else unpack_q6k(block, q), off = 32; /* unpack_q6k subtracts the 32 */
  for (int i = 0; i < QKK; i++) u[i] = (uint8_t)(q[i] + off);
}

/* IQ4_XS 6-bit scale of sub-block ib (0..7), minus 32. */
static int scale_iq4xs(const uint8_t *b, int ib) {
  unsigned h = (unsigned)(b[2] | b[3] << 8);
  int lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF;
  int hi = (h >> (2 * ib)) & 3;
  return (lo | hi << 4) - 32;
}

/* ---- dequantization: one block (dst: blck floats) ---- */

static void dq_q4_0(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  int q[QK];
  nibbles32(b + 2, q);
  for (int j = 0; j < QK; j++) y[j] = (float)(q[j] - 8) * d;
}

static void dq_q4_1(const uint8_t *b, float *y) {
  float d = rd_f16(b), m = rd_f16(b + 2);
  int q[QK];
  nibbles32(b + 4, q);
  for (int j = 0; j < QK; j++) y[j] = (float)q[j] * d + m;
}

static void dq_q5_0(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  int q[QK];
  fivebit32(b + 2, b + 6, q);
  for (int j = 0; j < QK; j++) y[j] = (float)(q[j] - 16) * d;
}

static void dq_q5_1(const uint8_t *b, float *y) {
  float d = rd_f16(b), m = rd_f16(b + 2);
  int q[QK];
  fivebit32(b + 4, b + 8, q);
  for (int j = 0; j < QK; j++) y[j] = (float)q[j] * d + m;
}

static void dq_q8_0(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dq_q8_1(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)b[4 + j] * d;
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  int q[QK];
  nibbles32(b + 2, q);
  for (int j = 0; j < QK; j++) y[j] = d * (float)mq_iq4nl_values[q[j]];
}

static void dq_q2_k(const uint8_t *b, float *y) {
  float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
  int q[QKK];
  unpack_q2k(b, q);
  for (int s = 0; s < 16; s++) {
    float dl = d * (float)(b[s] & 0xF), ml = dmin * (float)(b[s] >> 4);
    for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q[16 * s + l] - ml;
  }
}

static void dq_q3_k(const uint8_t *b, float *y) {
  float d = rd_f16(b + 108);
  int q[QKK], sc[16];
  unpack_q3k(b, q);
  scales_q3k(b, sc);
  for (int s = 0; s < 16; s++) {
    float dl = d * (float)sc[s];
    for (int l = 0; l < 16; l++) y[16 * s + l] = dl * (float)q[16 * s + l];
  }
}

static void dq_q45_k(const uint8_t *b, const int q[QKK], float *y) {
  float d = rd_f16(b), dmin = rd_f16(b + 2);
  for (int s = 0; s < 8; s++) {
    int sc, mn;
    mq_gguf_scale_min_k4(s, b + 4, &sc, &mn);
    float d1 = d * (float)sc, m1 = dmin * (float)mn;
    for (int l = 0; l < 32; l++) y[32 * s + l] = d1 * (float)q[32 * s + l] - m1;
  }
}

static void dq_q4_k(const uint8_t *b, float *y) {
  int q[QKK];
  unpack_q4k(b + 16, q);
  dq_q45_k(b, q, y);
}

static void dq_q5_k(const uint8_t *b, float *y) {
  int q[QKK];
  unpack_q5k(b, q);
  dq_q45_k(b, q, y);
}

static void dq_q6_k(const uint8_t *b, float *y) {
  float d = rd_f16(b + 208);
  int q[QKK];
  unpack_q6k(b, q);
  for (int e = 0; e < QKK; e++) y[e] = d * (float)(int8_t)b[192 + e / 16] * (float)q[e];
}

static void dq_q8_k(const uint8_t *b, float *y) {
  float d = rd_f32(b);
  for (int e = 0; e < QKK; e++) y[e] = d * (float)(int8_t)b[4 + e];
}

static void dq_iq4_xs(const uint8_t *b, float *y) {
  float d = rd_f16(b);
  for (int ib = 0; ib < 8; ib++) {
    float dl = d * (float)scale_iq4xs(b, ib);
    int q[QK];
    nibbles32(b + 8 + 16 * ib, q);
    for (int j = 0; j < QK; j++) y[32 * ib + j] = dl * (float)mq_iq4nl_values[q[j]];
  }
}

static void dq_f32(const uint8_t *b, float *y) { *y = rd_f32(b); }
static void dq_f16(const uint8_t *b, float *y) { *y = rd_f16(b); }
static void dq_bf16(const uint8_t *b, float *y) {
  *y = mq_bf16_to_f32((uint16_t)(b[0] | (uint16_t)b[1] << 8));
}

/* ---- dot products: one row; act is in the type's activation format ---- */

static float dot_q4_0(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 18, y += 34) {
    int q[QK], sumi = 0;
    nibbles32(x + 2, q);
    for (int j = 0; j < QK; j++) sumi += (q[j] - 8) * (int8_t)y[2 + j];
    sumf += (float)sumi * rd_f16(x) * rd_f16(y);
  }
  return sumf;
}

static float dot_q4_1(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 20, y += 36) {
    int q[QK], sumi = 0;
    nibbles32(x + 4, q);
    for (int j = 0; j < QK; j++) sumi += q[j] * (int8_t)y[4 + j];
    sumf += (rd_f16(x) * rd_f16(y)) * (float)sumi + rd_f16(x + 2) * rd_f16(y + 2);
  }
  return sumf;
}

static float dot_q5_0(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 22, y += 34) {
    int q[QK], sumi = 0;
    fivebit32(x + 2, x + 6, q);
    for (int j = 0; j < QK; j++) sumi += (q[j] - 16) * (int8_t)y[2 + j];
    sumf += (rd_f16(x) * rd_f16(y)) * (float)sumi;
  }
  return sumf;
}

static float dot_q5_1(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 24, y += 36) {
    int q[QK], sumi = 0;
    fivebit32(x + 4, x + 8, q);
    for (int j = 0; j < QK; j++) sumi += q[j] * (int8_t)y[4 + j];
    sumf += (rd_f16(x) * rd_f16(y)) * (float)sumi + rd_f16(x + 2) * rd_f16(y + 2);
  }
  return sumf;
}

static float dot_q8_0(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 34, y += 34) {
    int sumi = 0;
    for (int j = 0; j < QK; j++) sumi += (int8_t)x[2 + j] * (int8_t)y[2 + j];
    sumf += (float)sumi * (rd_f16(x) * rd_f16(y));
  }
  return sumf;
}

static float dot_iq4_nl(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 18, y += 34) {
    float d = rd_f16(y) * rd_f16(x);
    int q[QK], sumi = 0;
    nibbles32(x + 2, q);
    for (int j = 0; j < QK; j++) sumi += (int8_t)y[2 + j] * mq_iq4nl_values[q[j]];
    sumf += d * (float)sumi;
  }
  return sumf;
}

/* Q8_K activation block fields. */
#define Q8K_D(y) rd_f32(y)
#define Q8K_Q(y, e) ((int8_t)(y)[4 + (e)])
#define Q8K_BSUM(y, j) rd_i16((y) + 260 + 2 * (j))

static float dot_q2_k(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 84, y += 292) {
    int q[QKK], summs = 0, isum = 0;
    for (int j = 0; j < 16; j++) summs += Q8K_BSUM(y, j) * (x[j] >> 4);
    unpack_q2k(x, q);
    for (int s = 0; s < 16; s++) {
      int isuml = 0;
      for (int l = 0; l < 16; l++) isuml += Q8K_Q(y, 16 * s + l) * q[16 * s + l];
      isum += (x[s] & 0xF) * isuml;
    }
    float dall = Q8K_D(y) * rd_f16(x + 80), dmin = Q8K_D(y) * rd_f16(x + 82);
    sumf += dall * (float)isum - dmin * (float)summs;
  }
  return sumf;
}

/* Q3_K, Q4_K, Q5_K, Q6_K: ggml's eight lane accumulators: lane l holds the
 * integer sum over elements e = l (mod 8) of scale(e) * q8[e] * q[e]; each
 * super-block adds d * lane into a float per lane, and the lanes are summed
 * in order at the end (after the min terms for Q4_K/Q5_K). */
static float dot_lanes(int64_t nb, const uint8_t *x, const uint8_t *y, uint32_t type) {
  static const int bsz[] = {[MQ_GGML_TYPE_Q3_K] = 110,
                            [MQ_GGML_TYPE_Q4_K] = 144,
                            [MQ_GGML_TYPE_Q5_K] = 176,
                            [MQ_GGML_TYPE_Q6_K] = 210};
  float sums[8] = {0}, sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += bsz[type], y += 292) {
    int q[QKK], sc[16], per = 16; /* elements per scale */
    float dx;
    switch (type) {
    case MQ_GGML_TYPE_Q3_K:
      unpack_q3k(x, q);
      scales_q3k(x, sc);
      dx = rd_f16(x + 108);
      break;
    case MQ_GGML_TYPE_Q6_K:
      unpack_q6k(x, q);
      for (int s = 0; s < 16; s++) sc[s] = (int8_t)x[192 + s];
      dx = rd_f16(x + 208);
      break;
    default: { /* Q4_K, Q5_K: 8 scales of 32, mins through bsums */
      if (type == MQ_GGML_TYPE_Q4_K)
        unpack_q4k(x + 16, q);
      else
        unpack_q5k(x, q);
      int mn[8], sumi = 0;
      for (int s = 0; s < 8; s++) mq_gguf_scale_min_k4(s, x + 4, &sc[s], &mn[s]);
      for (int j = 0; j < 16; j++) sumi += Q8K_BSUM(y, j) * mn[j / 2];
      per = 32;
      dx = rd_f16(x);
      float dmin = rd_f16(x + 2) * Q8K_D(y);
      sumf -= dmin * (float)sumi;
    }
    }
    int32_t aux[8] = {0};
    for (int e = 0; e < QKK; e++) aux[e % 8] += sc[e / per] * (Q8K_Q(y, e) * q[e]);
    float d = dx * Q8K_D(y);
    for (int l = 0; l < 8; l++) sums[l] += d * (float)aux[l];
  }
  for (int l = 0; l < 8; l++) sumf += sums[l];
  return sumf;
}

static float dot_q3_k(int64_t nb, const uint8_t *x, const uint8_t *y) {
  return dot_lanes(nb, x, y, MQ_GGML_TYPE_Q3_K);
}
static float dot_q4_k(int64_t nb, const uint8_t *x, const uint8_t *y) {
  return dot_lanes(nb, x, y, MQ_GGML_TYPE_Q4_K);
}
static float dot_q5_k(int64_t nb, const uint8_t *x, const uint8_t *y) {
  return dot_lanes(nb, x, y, MQ_GGML_TYPE_Q5_K);
}
static float dot_q6_k(int64_t nb, const uint8_t *x, const uint8_t *y) {
  return dot_lanes(nb, x, y, MQ_GGML_TYPE_Q6_K);
}

static float dot_iq4_xs(int64_t nb, const uint8_t *x, const uint8_t *y) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; i++, x += 136, y += 292) {
    float d4d8 = rd_f16(x) * Q8K_D(y);
    for (int ib = 0; ib < 8; ib++) {
      float dl = d4d8 * (float)scale_iq4xs(x, ib);
      int q[QK], sumi = 0;
      nibbles32(x + 8 + 16 * ib, q);
      for (int j = 0; j < QK; j++) sumi += Q8K_Q(y, 32 * ib + j) * mq_iq4nl_values[q[j]];
      sumf += dl * (float)sumi;
    }
  }
  return sumf;
}

/* Float weights x f32 activations: products in f32, sum in double (as
 * ggml's scalar ggml_vec_dot_f32 does). nb = elements here. */
static float dot_float(int64_t n, const uint8_t *x, const uint8_t *y,
                       void (*dq)(const uint8_t *, float *), int esz) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    float w;
    dq(x + i * esz, &w);
    sum += (double)(w * rd_f32(y + 4 * i));
  }
  return (float)sum;
}

static float dot_f32(int64_t n, const uint8_t *x, const uint8_t *y) {
  return dot_float(n, x, y, dq_f32, 4);
}
static float dot_f16(int64_t n, const uint8_t *x, const uint8_t *y) {
  return dot_float(n, x, y, dq_f16, 2);
}
static float dot_bf16(int64_t n, const uint8_t *x, const uint8_t *y) {
  return dot_float(n, x, y, dq_bf16, 2);
}

/* ---- dispatch ---- */

typedef struct {
  void (*dequant)(const uint8_t *block, float *dst);
  float (*dot)(int64_t n_blocks, const uint8_t *w, const uint8_t *act);
  int act; /* activation type id */
} kernel;

static const kernel k_kern[MQ_GGML_TYPE_COUNT] = {
    [MQ_GGML_TYPE_F32] = {dq_f32, dot_f32, MQ_GGML_TYPE_F32},
    [MQ_GGML_TYPE_F16] = {dq_f16, dot_f16, MQ_GGML_TYPE_F32},
    [MQ_GGML_TYPE_BF16] = {dq_bf16, dot_bf16, MQ_GGML_TYPE_F32},
    [MQ_GGML_TYPE_Q4_0] = {dq_q4_0, dot_q4_0, MQ_GGML_TYPE_Q8_0},
    [MQ_GGML_TYPE_Q4_1] = {dq_q4_1, dot_q4_1, MQ_GGML_TYPE_Q8_1},
    [MQ_GGML_TYPE_Q5_0] = {dq_q5_0, dot_q5_0, MQ_GGML_TYPE_Q8_0},
    [MQ_GGML_TYPE_Q5_1] = {dq_q5_1, dot_q5_1, MQ_GGML_TYPE_Q8_1},
    [MQ_GGML_TYPE_Q8_0] = {dq_q8_0, dot_q8_0, MQ_GGML_TYPE_Q8_0},
    [MQ_GGML_TYPE_Q8_1] = {dq_q8_1, NULL, 0},
    [MQ_GGML_TYPE_Q2_K] = {dq_q2_k, dot_q2_k, MQ_GGML_TYPE_Q8_K},
    [MQ_GGML_TYPE_Q3_K] = {dq_q3_k, dot_q3_k, MQ_GGML_TYPE_Q8_K},
    [MQ_GGML_TYPE_Q4_K] = {dq_q4_k, dot_q4_k, MQ_GGML_TYPE_Q8_K},
    [MQ_GGML_TYPE_Q5_K] = {dq_q5_k, dot_q5_k, MQ_GGML_TYPE_Q8_K},
    [MQ_GGML_TYPE_Q6_K] = {dq_q6_k, dot_q6_k, MQ_GGML_TYPE_Q8_K},
    [MQ_GGML_TYPE_Q8_K] = {dq_q8_k, NULL, 0},
    [MQ_GGML_TYPE_IQ4_NL] = {dq_iq4_nl, dot_iq4_nl, MQ_GGML_TYPE_Q8_0},
    [MQ_GGML_TYPE_IQ4_XS] = {dq_iq4_xs, dot_iq4_xs, MQ_GGML_TYPE_Q8_K},
};

int mq_gguf_dequant_row(uint32_t type, const void *src, float *dst, int64_t n) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(type);
  if (!ti || !k_kern[type].dequant) return MQ_ERR_UNSUPPORTED;
  if (n < 0 || n % ti->blck) return MQ_ERR_ARG;
  const uint8_t *b = src;
  for (int64_t i = 0; i < n / ti->blck; i++)
    k_kern[type].dequant(b + i * ti->type_size, dst + i * ti->blck);
  return MQ_OK;
}

float mq_gguf_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *act) {
  /* callers check types at load; a wrong one is a programmer bug */
  assert(mq_ggml_type_supported(type) && k_kern[type].dot);
  if (!mq_ggml_type_supported(type) || !k_kern[type].dot) return NAN;
  const mq_ggml_type_info *ti = mq_ggml_type_get(type);
  assert(n % ti->blck == 0);
  return k_kern[type].dot(n / ti->blck, w_row, act);
}

int mq_gguf_act_type(uint32_t type) {
  return mq_ggml_type_supported(type) && k_kern[type].dot ? k_kern[type].act : -1;
}

int64_t mq_gguf_act_size(uint32_t type, int64_t n) {
  int act = mq_gguf_act_type(type);
  if (act < 0 || mq_ggml_row_size(type, n) < 0) return -1;
  return mq_ggml_row_size((uint32_t)act, n);
}

/* ---- activation quantizers ---- */

/* A rounded value as an int8 code. Finite activations always give values in
 * [-127, 127], so this is the plain conversion for them; NaN and infinities
 * (a checkpoint with non-finite weights makes them) would make the float ->
 * integer conversion undefined, so they saturate (NaN -> 0). */
static inline int8_t q8_code(float r) {
  return r >= 127.0f ? 127 : (r <= -128.0f ? -128 : (r == r ? (int8_t)r : 0));
}

/* Q8_0 (34 bytes: fp16 d, 32 int8) or, with_sum, Q8_1 (36 bytes: fp16 d,
 * fp16 d * sum(q), 32 int8) blocks of x. x86: the multiplier and rounding of
 * llama.cpp's x86 SIMD builds (127/amax, ties to even) instead of the
 * reference's (1/(amax/127), ties away from zero). */
static void quantize_q8(const float *x, uint8_t *y, int64_t n, int with_sum, int x86) {
  assert(n % QK == 0);
  int qoff = with_sum ? 4 : 2;
  for (int64_t i = 0; i < n / QK; i++, x += QK, y += qoff + QK) {
    float amax = mq_amax(x, QK);
    float d = amax / 127.0f, id;
    if (x86) id = amax != 0 ? 127.0f / amax : 0.0f;
    else id = d != 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < QK; j++) {
      int8_t q = q8_code(x86 ? mq_round_small(x[j] * id) : roundf(x[j] * id));
      y[qoff + j] = (uint8_t)q;
      sum += q;
    }
    wr_f16(y, d);
    if (with_sum) wr_f16(y + 2, d * (float)sum);
  }
}

void mq_gguf_quantize_row_q8_0(const float *x, void *dst, int64_t n) { quantize_q8(x, dst, n, 0, 0); }
void mq_gguf_quantize_row_q8_1(const float *x, void *dst, int64_t n) { quantize_q8(x, dst, n, 1, 0); }
void mq_gguf_quantize_row_q8_0_x86(const float *x, void *dst, int64_t n) { quantize_q8(x, dst, n, 0, 1); }
void mq_gguf_quantize_row_q8_1_x86(const float *x, void *dst, int64_t n) { quantize_q8(x, dst, n, 1, 1); }

void mq_gguf_quantize_row_q8_K(const float *x, void *dst, int64_t n) {
  assert(n % QKK == 0);
  uint8_t *y = dst;
  for (int64_t i = 0; i < n / QKK; i++, x += QKK, y += 292) {
    float max = 0, amax = 0;
    for (int j = 0; j < QKK; j++)
      if (fabsf(x[j]) > amax) {
        amax = fabsf(x[j]);
        max = x[j];
      }
    if (amax == 0) {
      memset(y, 0, 292);
      continue;
    }
    float iscale = -127.0f / max;
    for (int j = 0; j < QKK; j++) {
      /* ggml's nearest_int: ties to even; at most 127 */
      y[4 + j] = (uint8_t)q8_code(rintf(iscale * x[j]));
    }
    for (int j = 0; j < 16; j++) {
      int sum = 0;
      for (int l = 0; l < 16; l++) sum += (int8_t)y[4 + 16 * j + l];
      wr_i16(y + 260 + 2 * j, sum);
    }
    wr_f32(y, 1 / iscale);
  }
}

int mq_gguf_quantize_act(uint32_t type, const float *x, void *dst, int64_t n) {
  switch (mq_gguf_act_type(type)) {
  case MQ_GGML_TYPE_Q8_0: mq_gguf_quantize_row_q8_0(x, dst, n); return MQ_OK;
  case MQ_GGML_TYPE_Q8_1: mq_gguf_quantize_row_q8_1(x, dst, n); return MQ_OK;
  case MQ_GGML_TYPE_Q8_K: mq_gguf_quantize_row_q8_K(x, dst, n); return MQ_OK;
  case MQ_GGML_TYPE_F32: memcpy(dst, x, (size_t)n * sizeof *x); return MQ_OK;
  default: return MQ_ERR_UNSUPPORTED;
  }
}
