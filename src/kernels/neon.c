/* NEON variants (aarch64 Advanced SIMD, little-endian). Baseline NEON needs
 * no compiler flags on aarch64; the integer dot products also come in a
 * variant built for the dot-product extension (SDOT), compiled through a
 * function target attribute and chosen at start-up only when the kernel
 * reports HWCAP_ASIMDDP. Integer sums are exact in both variants; float
 * sums differ from the reference only in summation order. */
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(MQ_SCALAR_ONLY) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include <sys/auxv.h>

#include "core/numconv.h"
#include "kernels/heads.h"
#include "kernels/linear_x8.h" /* the tile block sizes */
#include "kernels/q8_entries.h"
#include "quant/gguf_blocks.h" /* the IQ4 codebook */

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* arch/arm64/include/uapi/asm/hwcap.h */
#endif

#define MQ_ALWAYS_INLINE inline __attribute__((always_inline))
/* small loops over registers (tokens, tile halves, column quads): fully
 * unrolled, so that their arrays of vectors stay in registers */
#define MQ_UNROLL _Pragma("GCC unroll 8")

/* SDOT through a target attribute: GCC's arm_neon.h declares vdotq_s32
 * under its own target pragma, so GCC builds always have the SDOT variant.
 * clang 14's arm_neon.h declares it only when the whole file is built with
 * dotprod (-march=...+dotprod); then no attribute is needed (the runtime
 * check still applies), otherwise a clang build has plain NEON only. */
#if defined(__ARM_FEATURE_DOTPROD)
#define MQ_HAVE_DOTPROD 1
#define MQ_DOTPROD
#elif defined(__GNUC__) && !defined(__clang__)
#define MQ_HAVE_DOTPROD 1
#define MQ_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#else
#define MQ_HAVE_DOTPROD 0
#endif

/* ---- helpers ---- */

/* acc += products of 16 int8 pairs, summed so that the 4 lanes of acc add
 * up to sum a[i] * b[i]. General version: exact for any int8 values (each
 * int16 product is widened on its own: (-128)^2 * 2 would not fit int16). */
static MQ_ALWAYS_INLINE int32x4_t dot16_any(int32x4_t acc, int8x16_t a, int8x16_t b) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/* The same when every |a[i] * b[i]| <= 127 * 128 (one operand within
 * [-127, 127]): two products share an int16 lane. */
static MQ_ALWAYS_INLINE int32x4_t dot16_small(int32x4_t acc, int8x16_t a, int8x16_t b) {
  int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  return vpadalq_s16(acc, vmlal_high_s8(p, a, b));
}

#if MQ_HAVE_DOTPROD
MQ_DOTPROD static inline int32x4_t dot16_sdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
  return vdotq_s32(acc, a, b);
}
#endif

/* The kernels below are written once as always-inline bodies with a
 * constant `dp` flag and instantiated twice: dp = 0 in plain functions,
 * dp = 1 in functions carrying the dotprod target (where dot16_sdot can be
 * inlined). */
static MQ_ALWAYS_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b, int dp, int small) {
#if MQ_HAVE_DOTPROD
  if (dp) return dot16_sdot(acc, a, b);
#else
  (void)dp;
#endif
  return small ? dot16_small(acc, a, b) : dot16_any(acc, a, b);
}

static inline float f16_scalar(const uint8_t *p) { /* fp16 field, any alignment */
  uint16_t h;
  memcpy(&h, p, 2);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

static inline float f32_scalar(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* 16 nibbles of 8 bytes, low nibble first: codes in k order */
static inline uint8x16_t nibbles16(uint8x8_t b) {
  uint8x8_t lo = vand_u8(b, vdup_n_u8(15)), hi = vshr_n_u8(b, 4);
  return vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
}

/* 32 nibbles of 16 bytes, low nibble first: c[0] codes 0..15, c[1] 16..31 */
static inline void nibbles32(uint8x16_t b, int8x16_t c[2]) {
  uint8x16_t lo = vandq_u8(b, vdupq_n_u8(15)), hi = vshrq_n_u8(b, 4);
  c[0] = vreinterpretq_s8_u8(vzip1q_u8(lo, hi));
  c[1] = vreinterpretq_s8_u8(vzip2q_u8(lo, hi));
}

/* acc[0..3] += 16 unsigned bytes (as floats) * x[0..16) */
static MQ_ALWAYS_INLINE void fma16_u8(float32x4_t acc[4], uint8x16_t c, const float *x) {
  uint16x8_t lo = vmovl_u8(vget_low_u8(c)), hi = vmovl_high_u8(c);
  acc[0] = vfmaq_f32(acc[0], vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), vld1q_f32(x));
  acc[1] = vfmaq_f32(acc[1], vcvtq_f32_u32(vmovl_high_u16(lo)), vld1q_f32(x + 4));
  acc[2] = vfmaq_f32(acc[2], vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), vld1q_f32(x + 8));
  acc[3] = vfmaq_f32(acc[3], vcvtq_f32_u32(vmovl_high_u16(hi)), vld1q_f32(x + 12));
}

static MQ_ALWAYS_INLINE void fma16_s8(float32x4_t acc[4], int8x16_t c, const float *x) {
  int16x8_t lo = vmovl_s8(vget_low_s8(c)), hi = vmovl_high_s8(c);
  acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x));
  acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(vmovl_high_s16(lo)), vld1q_f32(x + 4));
  acc[2] = vfmaq_f32(acc[2], vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + 8));
  acc[3] = vfmaq_f32(acc[3], vcvtq_f32_s32(vmovl_high_s16(hi)), vld1q_f32(x + 12));
}

static inline float hsum4(const float32x4_t acc[4]) {
  return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

/* ---- float kernels ---- */

static float dot_f32_neon(const float *a, const float *b, int n) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Attention scores: four rows a pass against one x. */
static void dot_rows_one_neon(const float *x, const float *rows, size_t stride, int n, int len,
                              float *out) {
  int p = 0, l4 = len / 4 * 4;
  for (; p + 4 <= n; p += 4) {
    const float *r0 = rows + (size_t)p * stride, *r1 = r0 + stride, *r2 = r1 + stride,
                *r3 = r2 + stride;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < l4; i += 4) {
      float32x4_t xv = vld1q_f32(x + i);
      a0 = vfmaq_f32(a0, xv, vld1q_f32(r0 + i));
      a1 = vfmaq_f32(a1, xv, vld1q_f32(r1 + i));
      a2 = vfmaq_f32(a2, xv, vld1q_f32(r2 + i));
      a3 = vfmaq_f32(a3, xv, vld1q_f32(r3 + i));
    }
    float s0 = vaddvq_f32(a0), s1 = vaddvq_f32(a1), s2 = vaddvq_f32(a2), s3 = vaddvq_f32(a3);
    for (int i = l4; i < len; i++)
      s0 += x[i] * r0[i], s1 += x[i] * r1[i], s2 += x[i] * r2[i], s3 += x[i] * r3[i];
    out[p] = s0, out[p + 1] = s1, out[p + 2] = s2, out[p + 3] = s3;
  }
  for (; p < n; p++) out[p] = dot_f32_neon(x, rows + (size_t)p * stride, len);
}

/* Weighted values: 32 floats of o (8 registers) at a time, rows in order. */
static void axpy_rows_one_neon(float *o, const float *rows, size_t stride, const float *w, int n,
                               int len) {
  int i0 = 0;
  for (; i0 + 32 <= len; i0 += 32) {
    float32x4_t a[8];
    for (int c = 0; c < 8; c++) a[c] = vld1q_f32(o + i0 + 4 * c);
    for (int p = 0; p < n; p++) {
      const float *r = rows + (size_t)p * stride + i0;
      for (int c = 0; c < 8; c++) a[c] = vfmaq_n_f32(a[c], vld1q_f32(r + 4 * c), w[p]);
    }
    for (int c = 0; c < 8; c++) vst1q_f32(o + i0 + 4 * c, a[c]);
  }
  for (; i0 + 4 <= len; i0 += 4) {
    float32x4_t a = vld1q_f32(o + i0);
    for (int p = 0; p < n; p++) a = vfmaq_n_f32(a, vld1q_f32(rows + (size_t)p * stride + i0), w[p]);
    vst1q_f32(o + i0, a);
  }
  for (int i = i0; i < len; i++)
    for (int p = 0; p < n; p++) o[i] += w[p] * rows[(size_t)p * stride + i];
}

MQ_HEAD_ENTRIES(neon)

/* exp(x) for x <= 0, as the AVX2 tier computes it: x = n ln2 + r (ln2 in
 * two parts), e^r by its Taylor series to r^7, times 2^n in the exponent
 * bits; below -87, 0. */
static inline float32x4_t exp_neg4(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.0f);
  uint32x4_t tiny = vcltq_f32(x, lo);
  x = vmaxq_f32(x, lo);
  float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145752f));
  r = vfmsq_f32(r, n, vdupq_n_f32(1.42860677e-6f));
  float32x4_t p = vdupq_n_f32(1.0f / 5040);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 720), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), tiny));
}

static void softmax_f32_neon(float *x, int n) {
  int n4 = n / 4 * 4;
  float mx = x[0];
  float32x4_t vm = vdupq_n_f32(x[0]);
  for (int i = 0; i < n4; i += 4) vm = vmaxq_f32(vm, vld1q_f32(x + i));
  mx = vmaxvq_f32(vm) > mx ? vmaxvq_f32(vm) : mx;
  for (int i = n4; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  float32x4_t s = vdupq_n_f32(0), m = vdupq_n_f32(mx);
  for (int i = 0; i < n4; i += 4) {
    float32x4_t e = exp_neg4(vsubq_f32(vld1q_f32(x + i), m));
    vst1q_f32(x + i, e);
    s = vaddq_f32(s, e);
  }
  float sum = vaddvq_f32(s);
  for (int i = n4; i < n; i++) sum += x[i] = expf(x[i] - mx);
  float inv = 1.0f / sum;
  for (int i = 0; i < n4; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (int i = n4; i < n; i++) x[i] *= inv;
}

/* IEEE binary16 -> f32 in integer arithmetic, bit-exact with the reference
 * for every input (NaN payloads too, which FCVT would quieten). */
static inline uint32x4_t f16_bits4(uint16x4_t h) {
  uint32x4_t x = vmovl_u16(h);
  uint32x4_t em = vandq_u32(x, vdupq_n_u32(0x7fff)), sign = vshlq_n_u32(vandq_u32(x, vdupq_n_u32(0x8000)), 16);
  uint32x4_t bias = vdupq_n_u32(112u << 23);
  uint32x4_t norm = vaddq_u32(vshlq_n_u32(em, 13), bias);                /* exponent rebiased */
  norm = vaddq_u32(norm, vandq_u32(vcgeq_u32(em, vdupq_n_u32(0x7c00)), bias)); /* inf / NaN: 255 */
  /* zero and subnormals: man * 2^-24, exact in f32 */
  uint32x4_t sub = vreinterpretq_u32_f32(vmulq_n_f32(vcvtq_f32_u32(em), 1.0f / 16777216.0f));
  uint32x4_t r = vbslq_u32(vcltq_u32(em, vdupq_n_u32(0x0400)), sub, norm);
  return vorrq_u32(r, sign);
}

/* One block of 32 activations as int8 codes x * 127 / amax, rounded to
 * nearest even (vcvtnq, as mq_round_small), into q[0..32); *amax and, with
 * sum, the codes' sum. Returns 0 (nothing written) for a block the scalar
 * references must take: a NaN or an infinity (their saturation rules), or
 * an amax so small that 127 / amax overflows. */
static inline int q8_block_neon(const float *x, uint8_t *q, float *amax, int *sum) {
  float32x4_t v[8], m = vdupq_n_f32(0);
  uint32x4_t fin = vdupq_n_u32(~0u);
  for (int i = 0; i < 8; i++) {
    v[i] = vld1q_f32(x + 4 * i);
    m = vmaxq_f32(m, vabsq_f32(v[i]));
    fin = vandq_u32(fin, vceqq_f32(vsubq_f32(v[i], v[i]), vdupq_n_f32(0)));
  }
  if (vminvq_u32(fin) == 0) return 0; /* NaN or infinity */
  float a = vmaxvq_f32(m), id = a != 0 ? 127.0f / a : 0.0f;
  if (!(id < INFINITY)) return 0;
  int32x4_t c[8], s = vdupq_n_s32(0);
  for (int i = 0; i < 8; i++) {
    c[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
    s = vaddq_s32(s, c[i]);
  }
  for (int i = 0; i < 8; i += 2) {
    int16x8_t h = vcombine_s16(vqmovn_s32(c[i]), vqmovn_s32(c[i + 1]));
    vst1_s8((int8_t *)q + 4 * i, vqmovn_s16(h));
  }
  if (sum) *sum = vaddvq_s32(s);
  *amax = a;
  return 1;
}

MQ_Q8_ENTRIES(neon)

static void f16_to_f32_neon(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    uint16x8_t h = vld1q_u16(src + i);
    vst1q_f32(dst + i, vreinterpretq_f32_u32(f16_bits4(vget_low_u16(h))));
    vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(f16_bits4(vget_high_u16(h))));
  }
  mq_kern_ref()->f16_to_f32(src + i, dst + i, n - i);
}

static void q8_0_to_f32_neon(const uint8_t *blocks, float *dst, int n) {
  for (int b = 0; b < n / 32; b++, blocks += 34, dst += 32) {
    uint16_t h;
    memcpy(&h, blocks, 2);
    float d = mq_f16_to_f32(h);
    for (int i = 0; i < 32; i += 8) {
      int16x8_t q = vmovl_s8(vld1_s8((const int8_t *)blocks + 2 + i));
      vst1q_f32(dst + i, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), d));
      vst1q_f32(dst + i + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q)), d));
    }
  }
}

static void bf16_to_f32_neon(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    uint16x8_t h = vld1q_u16(src + i);
    vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
  }
  mq_kern_ref()->bf16_to_f32(src + i, dst + i, n - i);
}

/* Dots of an F16 / BF16 row with floats, converting in registers (FCVTL for
 * f16: exact for every finite value; a NaN stays a NaN). */
static float dot_f16_f32_neon(const uint16_t *w, const float *x, int n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(w + i));
    float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(w + i + 8));
    acc[0] = vfmaq_f32(acc[0], vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
    acc[1] = vfmaq_f32(acc[1], vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
    acc[2] = vfmaq_f32(acc[2], vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
    acc[3] = vfmaq_f32(acc[3], vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4)
    acc[0] = vfmaq_f32(acc[0], vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))), vld1q_f32(x + i));
  return hsum4(acc) + (i < n ? mq_kern_ref()->dot_f16_f32(w + i, x + i, n - i) : 0.0f);
}

static float dot_bf16_f32_neon(const uint16_t *w, const float *x, int n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    uint16x8_t h0 = vld1q_u16(w + i), h1 = vld1q_u16(w + i + 8);
    acc[0] = vfmaq_f32(acc[0], vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h0), 16)), vld1q_f32(x + i));
    acc[1] = vfmaq_f32(acc[1], vreinterpretq_f32_u32(vshll_high_n_u16(h0, 16)), vld1q_f32(x + i + 4));
    acc[2] = vfmaq_f32(acc[2], vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h1), 16)), vld1q_f32(x + i + 8));
    acc[3] = vfmaq_f32(acc[3], vreinterpretq_f32_u32(vshll_high_n_u16(h1, 16)), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= n; i += 4)
    acc[0] = vfmaq_f32(acc[0], vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16)), vld1q_f32(x + i));
  return hsum4(acc) + (i < n ? mq_kern_ref()->dot_bf16_f32(w + i, x + i, n - i) : 0.0f);
}

/* ---- integer codes times floats ---- */

static float dot_u4_f32_neon(const uint8_t *c, const float *x, int n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    int8x16_t cc[2];
    nibbles32(vld1q_u8(c + i / 2), cc);
    fma16_u8(acc, vreinterpretq_u8_s8(cc[0]), x + i);
    fma16_u8(acc, vreinterpretq_u8_s8(cc[1]), x + i + 16);
  }
  for (; i + 16 <= n; i += 16) fma16_u8(acc, nibbles16(vld1_u8(c + i / 2)), x + i);
  float s = hsum4(acc);
  for (; i < n; i++) s += (float)((c[i / 2] >> (4 * (i & 1))) & 15) * x[i];
  return s;
}

static float dot_u8_f32_neon(const uint8_t *c, const float *x, int n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int i = 0;
  for (; i + 16 <= n; i += 16) fma16_u8(acc, vld1q_u8(c + i), x + i);
  float s = hsum4(acc);
  for (; i < n; i++) s += (float)c[i] * x[i];
  return s;
}

static float dot_s8_f32_neon(const int8_t *c, const float *x, int n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int i = 0;
  for (; i + 16 <= n; i += 16) fma16_s8(acc, vld1q_s8(c + i), x + i);
  float s = hsum4(acc);
  for (; i < n; i++) s += (float)c[i] * x[i];
  return s;
}

/* ---- integer dot products: bodies (dp constant) ---- */

static MQ_ALWAYS_INLINE int32_t body_s8s8(const int8_t *a, const int8_t *b, int n, int dp) {
  int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = dot16(s0, vld1q_s8(a + i), vld1q_s8(b + i), dp, 0);
    s1 = dot16(s1, vld1q_s8(a + i + 16), vld1q_s8(b + i + 16), dp, 0);
  }
  for (; i + 16 <= n; i += 16) s0 = dot16(s0, vld1q_s8(a + i), vld1q_s8(b + i), dp, 0);
  int32_t r = vaddvq_s32(vaddq_s32(s0, s1));
  for (; i < n; i++) r += (int32_t)a[i] * b[i];
  return r;
}

/* sum over the 32 codes of one block (as int8 in [0, 15]) times 32 int8 */
static MQ_ALWAYS_INLINE int32x4_t block_u4(const int8x16_t c[2], const int8_t *q, int dp) {
  int32x4_t s = dot16(vdupq_n_s32(0), c[0], vld1q_s8(q), dp, 1);
  return dot16(s, c[1], vld1q_s8(q + 16), dp, 1);
}

static MQ_ALWAYS_INLINE float body_u4_q8(const uint8_t *c, const int8_t *q, const float *d, int n,
                                         int dp) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = acc0;
  int b = 0;
  for (; b + 2 <= n / 32; b += 2) { /* two blocks: two independent chains */
    int8x16_t c0[2], c1[2];
    nibbles32(vld1q_u8(c + 16 * b), c0);
    nibbles32(vld1q_u8(c + 16 * b + 16), c1);
    acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(block_u4(c0, q + 32 * b, dp)), d[b]);
    acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(block_u4(c1, q + 32 * b + 32, dp)), d[b + 1]);
  }
  for (; b < n / 32; b++) {
    int8x16_t c0[2];
    nibbles32(vld1q_u8(c + 16 * b), c0);
    acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(block_u4(c0, q + 32 * b, dp)), d[b]);
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

static MQ_ALWAYS_INLINE void body_dot4_u4_q8(const uint8_t *c, const int8_t *q, int qs,
                                             const float *d, int ds, int n, float out[4], int dp) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  for (int b = 0; b < n / 32; b++) {
    int8x16_t cc[2];
    nibbles32(vld1q_u8(c + 16 * b), cc);
    for (int j = 0; j < 4; j++) {
      int32x4_t s = block_u4(cc, q + (size_t)j * qs + 32 * b, dp);
      acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), d[(size_t)j * ds + b]);
    }
  }
  for (int j = 0; j < 4; j++) out[j] = vaddvq_f32(acc[j]);
}

static MQ_ALWAYS_INLINE float body_u8_q8(const uint8_t *c, const int8_t *q, const float *d, int n,
                                         int dp) {
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++) {
    uint8x16_t c0 = vld1q_u8(c + 32 * b), c1 = vld1q_u8(c + 32 * b + 16);
    int8x16_t q0 = vld1q_s8(q + 32 * b), q1 = vld1q_s8(q + 32 * b + 16);
    int32x4_t s;
    if (dp) { /* sum c q = sum (c - 128) q + 128 sum q, c - 128 a signed byte */
      const uint8x16_t off = vdupq_n_u8(0x80);
      const int8x16_t ones = vdupq_n_s8(1);
      s = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(veorq_u8(c0, off)), q0, dp, 0);
      s = dot16(s, vreinterpretq_s8_u8(veorq_u8(c1, off)), q1, dp, 0);
      int32x4_t qsum = dot16(dot16(vdupq_n_s32(0), ones, q0, dp, 1), ones, q1, dp, 1);
      s = vaddq_s32(s, vshlq_n_s32(qsum, 7));
    } else { /* widen to 16 bits: u8 codes fit int16 */
      int16x8_t a0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c0)));
      int16x8_t a1 = vreinterpretq_s16_u16(vmovl_high_u8(c0));
      int16x8_t a2 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c1)));
      int16x8_t a3 = vreinterpretq_s16_u16(vmovl_high_u8(c1));
      int16x8_t b0 = vmovl_s8(vget_low_s8(q0)), b1 = vmovl_high_s8(q0);
      int16x8_t b2 = vmovl_s8(vget_low_s8(q1)), b3 = vmovl_high_s8(q1);
      s = vmull_s16(vget_low_s16(a0), vget_low_s16(b0));
      s = vmlal_high_s16(s, a0, b0);
      s = vmlal_s16(s, vget_low_s16(a1), vget_low_s16(b1));
      s = vmlal_high_s16(s, a1, b1);
      s = vmlal_s16(s, vget_low_s16(a2), vget_low_s16(b2));
      s = vmlal_high_s16(s, a2, b2);
      s = vmlal_s16(s, vget_low_s16(a3), vget_low_s16(b3));
      s = vmlal_high_s16(s, a3, b3);
    }
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), d[b]);
  }
  return vaddvq_f32(acc);
}

/* GGUF Q4_0 (fp16 d, 16 bytes: low nibbles elements 0..15, high 16..31,
 * value q - 8) and Q8_0 (fp16 d, 32 int8) against Q8_0 activation blocks. */
static MQ_ALWAYS_INLINE float body_q4_0(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const int8x16_t eight = vdupq_n_s8(8);
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++, x += 18, y += 34) {
    uint8x16_t raw = vld1q_u8(x + 2);
    int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(15))), eight);
    int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
    int32x4_t s = dot16(vdupq_n_s32(0), w0, vld1q_s8((const int8_t *)y + 2), dp, 1);
    s = dot16(s, w1, vld1q_s8((const int8_t *)y + 18), dp, 1);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16_scalar(x) * f16_scalar(y));
  }
  return vaddvq_f32(acc);
}

static MQ_ALWAYS_INLINE float body_q8_0(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++, x += 34, y += 34) {
    const int8_t *xq = (const int8_t *)x + 2, *yq = (const int8_t *)y + 2;
    int32x4_t s = dot16(vdupq_n_s32(0), vld1q_s8(xq), vld1q_s8(yq), dp, 0);
    s = dot16(s, vld1q_s8(xq + 16), vld1q_s8(yq + 16), dp, 0);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16_scalar(x) * f16_scalar(y));
  }
  return vaddvq_f32(acc);
}

/* Q4_K: d, dmin (fp16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
 * (chunk c of 64: low nibbles of qs[32c..] are sub-block 2c, high 2c+1).
 * Q8_K: f32 d, 256 int8, 16 int16 sums of 16. */
static MQ_ALWAYS_INLINE float body_q4_k(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const uint8x16_t m4 = vdupq_n_u8(15);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 144, y += 292) {
    const uint8_t *s = x + 4;
    int16_t mn[8];
    int32_t sc[8];
    for (int j = 0; j < 8; j++) {
      if (j < 4) sc[j] = s[j] & 63, mn[j] = (int16_t)(s[j + 4] & 63);
      else {
        sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        mn[j] = (int16_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      }
    }
    const int8_t *yq = (const int8_t *)y + 4;
    int32x4_t isum = vdupq_n_s32(0);
    for (int c = 0; c < 4; c++) {
      uint8x16_t q0 = vld1q_u8(x + 16 + 32 * c), q1 = vld1q_u8(x + 32 + 32 * c);
      int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(q0, m4)), l1 = vreinterpretq_s8_u8(vandq_u8(q1, m4));
      int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), h1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
      int32x4_t pl = dot16(vdupq_n_s32(0), l0, vld1q_s8(yq + 64 * c), dp, 1);
      pl = dot16(pl, l1, vld1q_s8(yq + 64 * c + 16), dp, 1);
      int32x4_t ph = dot16(vdupq_n_s32(0), h0, vld1q_s8(yq + 64 * c + 32), dp, 1);
      ph = dot16(ph, h1, vld1q_s8(yq + 64 * c + 48), dp, 1);
      isum = vmlaq_n_s32(isum, pl, sc[2 * c]);
      isum = vmlaq_n_s32(isum, ph, sc[2 * c + 1]);
    }
    /* mins: bsums of 16 paired into sums of 32 (|.| <= 8192), times mn */
    int16x8_t bs0 = vreinterpretq_s16_u8(vld1q_u8(y + 260)), bs1 = vreinterpretq_s16_u8(vld1q_u8(y + 276));
    int16x8_t bs = vpaddq_s16(bs0, bs1), mv = vld1q_s16(mn);
    int32_t msum = vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(bs), vget_low_s16(mv)), bs, mv));
    float dy = f32_scalar(y);
    sumf += f16_scalar(x) * dy * (float)vaddvq_s32(isum) - f16_scalar(x + 2) * dy * (float)msum;
  }
  return sumf;
}

/* Q6_K: ql[128], qh[64], 16 int8 scales (one per 16), fp16 d; value q - 32
 * with q = 4 low bits from ql, 2 high bits from qh. Per half h: elements
 * 128h + 32k + l (l < 32) take ql[64h + 32(k & 1) + l] (low nibble for
 * k < 2, high for k >= 2) and bits 2k..2k+1 of qh[32h + l]. */
static MQ_ALWAYS_INLINE float body_q6_k(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const uint8x16_t m4 = vdupq_n_u8(15), m30 = vdupq_n_u8(0x30);
  const int8x16_t k32 = vdupq_n_s8(32);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 210, y += 292) {
    const int8_t *sc = (const int8_t *)(x + 192), *yq = (const int8_t *)y + 4;
    int32x4_t isum = vdupq_n_s32(0);
    for (int h = 0; h < 2; h++) {
      for (int half = 0; half < 2; half++) { /* l in [16 half, 16 half + 16) */
        int o = 16 * half;
        uint8x16_t ql0 = vld1q_u8(x + 64 * h + o), ql1 = vld1q_u8(x + 64 * h + 32 + o);
        uint8x16_t qh = vld1q_u8(x + 128 + 32 * h + o);
        uint8x16_t q[4];
        q[0] = vorrq_u8(vandq_u8(ql0, m4), vandq_u8(vshlq_n_u8(qh, 4), m30));
        q[1] = vorrq_u8(vandq_u8(ql1, m4), vandq_u8(vshlq_n_u8(qh, 2), m30));
        q[2] = vorrq_u8(vshrq_n_u8(ql0, 4), vandq_u8(qh, m30));
        q[3] = vorrq_u8(vshrq_n_u8(ql1, 4), vandq_u8(vshrq_n_u8(qh, 2), m30));
        for (int k = 0; k < 4; k++) {
          int e0 = 128 * h + 32 * k + o; /* first of these 16 elements */
          int8x16_t w = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
          isum = vmlaq_n_s32(isum, dot16(vdupq_n_s32(0), w, vld1q_s8(yq + e0), dp, 1), sc[e0 / 16]);
        }
      }
    }
    sumf += f16_scalar(x + 208) * f32_scalar(y) * (float)vaddvq_s32(isum);
  }
  return sumf;
}

/* ---- more GGUF rows: Q4_1, Q5_0, Q5_1, IQ4_NL against Q8_0 / Q8_1
 * blocks, IQ4_XS against Q8_K (the activation types mq_gguf_act_type
 * gives). Integer sums as the scalar definition (weights within
 * [-127, 113], activations int8: dot16's small form is exact); the
 * block scales are applied in float lanes (Q4_1 / Q5_1 add m_w * s_a in a
 * scalar), IQ4_XS's sub-block scales in integers (|sum| < 2^28). ---- */

/* The 32 codes of a 16-byte nibble block in element order: low nibbles
 * (elements 0..15) in c[0], high nibbles (16..31) in c[1]. */
static inline void gguf_nibbles(const uint8_t *qs, uint8x16_t c[2]) {
  uint8x16_t raw = vld1q_u8(qs);
  c[0] = vandq_u8(raw, vdupq_n_u8(15));
  c[1] = vshrq_n_u8(raw, 4);
}

/* Q5_0 / Q5_1 fifth bits (u32 qh, bit j: element j) as 0x10 in byte j of
 * h[j / 16], 0 where clear: byte k of qh copied into 8 lanes, tested
 * against the bits 1, 2, ..., 128. */
static inline void gguf_fifth_bits(const uint8_t *qh, uint8x16_t h[2]) {
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
  const uint8x16_t b4 = vdupq_n_u8(0x10);
  h[0] = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), bit), b4);
  h[1] = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), bit), b4);
}

/* sum over one 32-block of w (two halves) times 32 int8 activations at q */
static MQ_ALWAYS_INLINE int32x4_t gguf_block32(const int8x16_t w[2], const uint8_t *q, int dp) {
  int32x4_t s = dot16(vdupq_n_s32(0), w[0], vld1q_s8((const int8_t *)q), dp, 1);
  return dot16(s, w[1], vld1q_s8((const int8_t *)q + 16), dp, 1);
}

/* Q4_1 (20 bytes: f16 d, f16 m, 16 nibble bytes; value d q + m) and Q5_1
 * (24 bytes: f16 d, f16 m, u32 qh, 16 nibble bytes) against Q8_1 (36 bytes:
 * f16 d, f16 s = d sum(q), 32 int8): d_w d_a isum + m_w s_a per block. */
static MQ_ALWAYS_INLINE float body_q41_q51(int n, const void *wv, const void *av, int five,
                                           int dp) {
  const uint8_t *x = wv, *y = av;
  const int bsz = five ? 24 : 20, qo = five ? 8 : 4;
  float32x4_t acc = vdupq_n_f32(0);
  float summ = 0;
  for (int b = 0; b < n / 32; b++, x += bsz, y += 36) {
    uint8x16_t c[2];
    gguf_nibbles(x + qo, c);
    if (five) {
      uint8x16_t h[2];
      gguf_fifth_bits(x + 4, h);
      c[0] = vorrq_u8(c[0], h[0]);
      c[1] = vorrq_u8(c[1], h[1]);
    }
    int8x16_t w[2] = {vreinterpretq_s8_u8(c[0]), vreinterpretq_s8_u8(c[1])};
    int32x4_t s = gguf_block32(w, y + 4, dp);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16_scalar(x) * f16_scalar(y));
    summ += f16_scalar(x + 2) * f16_scalar(y + 2);
  }
  return vaddvq_f32(acc) + summ;
}

/* Q5_0 (22 bytes: f16 d, u32 qh, 16 nibble bytes; value d (q - 16)) against Q8_0. */
static MQ_ALWAYS_INLINE float body_q5_0(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const uint8x16_t sixteen = vdupq_n_u8(16);
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++, x += 22, y += 34) {
    uint8x16_t c[2], h[2];
    gguf_nibbles(x + 6, c);
    gguf_fifth_bits(x + 2, h);
    int8x16_t w[2] = {vreinterpretq_s8_u8(vsubq_u8(vorrq_u8(c[0], h[0]), sixteen)),
                      vreinterpretq_s8_u8(vsubq_u8(vorrq_u8(c[1], h[1]), sixteen))};
    int32x4_t s = gguf_block32(w, y + 2, dp);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16_scalar(x) * f16_scalar(y));
  }
  return vaddvq_f32(acc);
}

/* IQ4_NL (18 bytes: f16 d, 16 nibble bytes indexing the codebook) against
 * Q8_0; the codebook is one register, the nibbles its TBL indices. */
static MQ_ALWAYS_INLINE float body_iq4_nl(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const int8x16_t tab = vld1q_s8(mq_iq4nl_values);
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++, x += 18, y += 34) {
    uint8x16_t c[2];
    gguf_nibbles(x + 2, c);
    int8x16_t w[2] = {vqtbl1q_s8(tab, c[0]), vqtbl1q_s8(tab, c[1])};
    int32x4_t s = gguf_block32(w, y + 2, dp);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16_scalar(x) * f16_scalar(y));
  }
  return vaddvq_f32(acc);
}

/* IQ4_XS (136 bytes: f16 d, u16 high scale bits, 4 bytes of low scale
 * nibbles, 8 sub-blocks of 16 nibble bytes as IQ4_NL) against Q8_K: value
 * d (ls - 32) codebook[q] per 32, ls 6 bits (low nibble, 2 high bits). */
static MQ_ALWAYS_INLINE float body_iq4_xs(int n, const void *wv, const void *av, int dp) {
  const uint8_t *x = wv, *y = av;
  const int8x16_t tab = vld1q_s8(mq_iq4nl_values);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 136, y += 292) {
    unsigned hbits = (unsigned)(x[2] | x[3] << 8);
    int32x4_t isum = vdupq_n_s32(0);
    for (int ib = 0; ib < 8; ib++) {
      int ls = (((x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((hbits >> (2 * ib)) & 3) << 4) - 32;
      uint8x16_t c[2];
      gguf_nibbles(x + 8 + 16 * ib, c);
      int8x16_t w[2] = {vqtbl1q_s8(tab, c[0]), vqtbl1q_s8(tab, c[1])};
      isum = vmlaq_n_s32(isum, gguf_block32(w, y + 4 + 32 * ib, dp), ls);
    }
    sumf += f16_scalar(x) * f32_scalar(y) * (float)vaddvq_s32(isum);
  }
  return sumf;
}

/* ---- x8 tiles (kernels/linear_x8.h) ----
 * In a 32-byte chunk of 8 rows x 4 columns (byte 4r + j: row r, column j)
 * each 16-byte half holds 4 rows, one per 32-bit lane. The activation's 4
 * bytes of that column quad, copied into every lane, meet the 4 rows at
 * once and each row's sum stays in its own lane: SDOT's by-element form is
 * exactly this product; plain NEON multiplies into int16 lanes (row,
 * column) and folds them pairwise. The kernels work a block half (rows
 * 4h..4h+3: 8 registers, one per column quad) at a time for all tokens, so
 * that 4 tokens' accumulators and the weights fit the 32 registers. */

#if MQ_HAVE_DOTPROD
#define MQ_SDOT_LANE(i)                                                                            \
  MQ_DOTPROD static inline int32x4_t sdot_lane##i(int32x4_t acc, int8x16_t w, int8x16_t q) {      \
    return vdotq_laneq_s32(acc, w, q, i);                                                          \
  }
MQ_SDOT_LANE(0)
MQ_SDOT_LANE(1)
MQ_SDOT_LANE(2)
MQ_SDOT_LANE(3)
#undef MQ_SDOT_LANE
/* acc + w (4 rows x 4 columns) times the 4 bytes in lane `lane` of q (a
 * constant once inlined) */
static MQ_ALWAYS_INLINE int32x4_t sdot_lane(int32x4_t acc, int8x16_t w, int8x16_t q, int lane) {
  switch (lane) {
  case 0: return sdot_lane0(acc, w, q);
  case 1: return sdot_lane1(acc, w, q);
  case 2: return sdot_lane2(acc, w, q);
  default: return sdot_lane3(acc, w, q);
  }
}
#endif

/* lane `lane` (a constant once inlined) of q in every 32-bit lane: one
 * column quad's 4 activation bytes */
static MQ_ALWAYS_INLINE int8x16_t dup_quad(int8x16_t q, int lane) {
  int32x4_t v = vreinterpretq_s32_s8(q);
  switch (lane) {
  case 0: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 0));
  case 1: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 1));
  case 2: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 2));
  default: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 3));
  }
}

/* Half h of a 4-bit block (128 bytes) as w[quad]: column quad 0..7 (the
 * low nibbles of chunk c are quad c, the high nibbles quad c + 4), codes
 * 0..15 as int8. */
static MQ_ALWAYS_INLINE void x8_u4_half(const uint8_t *blk, int h, int8x16_t w[8]) {
  const uint8x16_t m4 = vdupq_n_u8(15);
  MQ_UNROLL
  for (int c = 0; c < 4; c++) {
    uint8x16_t v = vld1q_u8(blk + 32 * c + 16 * h);
    w[c] = vreinterpretq_s8_u8(vandq_u8(v, m4));
    w[c + 4] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
  }
}

/* Half h of an S8 block (256 bytes: chunk c is column quad c) as w[quad]. */
static MQ_ALWAYS_INLINE void x8_s8_half(const uint8_t *blk, int h, int8x16_t w[8]) {
  MQ_UNROLL
  for (int c = 0; c < 8; c++) w[c] = vld1q_s8((const int8_t *)blk + 32 * c + 16 * h);
}

/* The integer sums of a block half's 4 rows with 32 int8 activations q.
 * u4 (codes 0..15, any int8 q): an int16 lane (row, column) gathers the 8
 * quads' products (<= 15 * 128 each), the pairwise fold 16 of them (30720
 * at most). s8 (any int8 weights, |q| <= 127): an int16 lane takes two
 * products (<= 2 * 128 * 127 = 32512) before widening. SDOT: exact. */
static MQ_ALWAYS_INLINE int32x4_t x8_half_dot(const int8x16_t w[8], const int8_t *q, int u4,
                                              int dp) {
  /* The activations are loaded again for each half rather than kept from
   * the other: an opaque copy of the pointer stops the compiler from
   * holding every token's activations (or their 8 copied quads) in
   * registers across the halves, which made it spill. */
  __asm__ volatile("" : "+r"(q));
#if MQ_HAVE_DOTPROD
  if (dp) { /* two chains: quads 0-3 (lanes of qa), quads 4-7 (qb) */
    int8x16_t qa = vld1q_s8(q), qb = vld1q_s8(q + 16);
    int32x4_t u = sdot_lane(vdupq_n_s32(0), w[0], qa, 0);
    int32x4_t v = sdot_lane(vdupq_n_s32(0), w[4], qb, 0);
    u = sdot_lane(u, w[1], qa, 1);
    v = sdot_lane(v, w[5], qb, 1);
    u = sdot_lane(u, w[2], qa, 2);
    v = sdot_lane(v, w[6], qb, 2);
    u = sdot_lane(u, w[3], qa, 3);
    v = sdot_lane(v, w[7], qb, 3);
    return vaddq_s32(u, v);
  }
#else
  (void)dp;
#endif
  int8x16_t qa = vld1q_s8(q), qb = vld1q_s8(q + 16);
  if (u4) {
    int16x8_t lo = vdupq_n_s16(0), hi = lo; /* rows 0, 1 of the half; rows 2, 3 */
    MQ_UNROLL
    for (int c = 0; c < 8; c++) {
      int8x16_t a = dup_quad(c < 4 ? qa : qb, c & 3);
      lo = vmlal_s8(lo, vget_low_s8(w[c]), vget_low_s8(a));
      hi = vmlal_high_s8(hi, w[c], a);
    }
    return vpaddlq_s16(vpaddq_s16(lo, hi));
  }
  int32x4_t lo = vdupq_n_s32(0), hi = lo; /* lanes (row, column pair) */
  MQ_UNROLL
  for (int c = 0; c < 8; c += 2) {
    int8x16_t a0 = dup_quad(c < 4 ? qa : qb, c & 3), a1 = dup_quad(c < 4 ? qa : qb, (c + 1) & 3);
    int16x8_t pl = vmull_s8(vget_low_s8(w[c]), vget_low_s8(a0));
    int16x8_t ph = vmull_high_s8(w[c], a0);
    pl = vmlal_s8(pl, vget_low_s8(w[c + 1]), vget_low_s8(a1));
    ph = vmlal_high_s8(ph, w[c + 1], a1);
    lo = vpadalq_s16(lo, pl);
    hi = vpadalq_s16(hi, ph);
  }
  return vpaddq_s32(lo, hi);
}

/* 4 rows' fp16 values (8 bytes) as floats */
static inline float32x4_t f16x4(const uint8_t *p) {
  return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

static MQ_ALWAYS_INLINE void x8_store(float *out, float32x4_t acc[4][2], const int T) {
  MQ_UNROLL
  for (int t = 0; t < T; t++) {
    vst1q_f32(out + 8 * t, acc[t][0]);
    vst1q_f32(out + 8 * t + 4, acc[t][1]);
  }
}

/* x8_u4_q8 (A16 fast path and the W4A8 tiles) for T constant tokens. */
static MQ_ALWAYS_INLINE void body_x8_u4_q8(const uint8_t *tile, size_t gst, const float *sc,
                                           const float *mn, int K, int gs, const int8_t *q, int qs,
                                           const float *d, int ds, const float *gsum, int gss,
                                           float *out, const int T, int dp) {
  memset(out, 0, sizeof(float) * 8 * T); /* the sums over groups: in out, off the registers */
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    float32x4_t gacc[4][2];
    MQ_UNROLL
    for (int t = 0; t < T; t++) gacc[t][0] = gacc[t][1] = vdupq_n_f32(0);
    for (int b = b0; b < b1; b++) {
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        int8x16_t w[8];
        x8_u4_half(tile + g * gst + (size_t)(b - b0) * 128, h, w);
        MQ_UNROLL
        for (int t = 0; t < T; t++) {
          int32x4_t s = x8_half_dot(w, q + (size_t)t * qs + 32 * b, 1, dp);
          gacc[t][h] = vfmaq_n_f32(gacc[t][h], vcvtq_f32_s32(s), d[(size_t)t * ds + b]);
        }
      }
    }
    MQ_UNROLL
    for (int h = 0; h < 2; h++) {
      float32x4_t s = vld1q_f32(sc + g * (gst / 4) + 4 * h);
      float32x4_t m = mn ? vld1q_f32(mn + g * (gst / 4) + 4 * h) : vdupq_n_f32(0);
      MQ_UNROLL
      for (int t = 0; t < T; t++) {
        float32x4_t a = vfmaq_f32(vld1q_f32(out + 8 * t + 4 * h), gacc[t][h], s);
        if (mn) a = vfmaq_n_f32(a, m, gsum[(size_t)t * gss + g]);
        vst1q_f32(out + 8 * t + 4 * h, a);
      }
    }
  }
}

/* x8_s8_q8 (W8A8): integer sums per group, then the rows' scales. */
static MQ_ALWAYS_INLINE void body_x8_s8_q8(const uint8_t *tile, size_t gst, const float *sc, int K,
                                           int gs, const int8_t *q, int qs, float *out, const int T,
                                           int dp) {
  float32x4_t acc[4][2];
  MQ_UNROLL
  for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    int32x4_t isum[4][2];
    MQ_UNROLL
    for (int t = 0; t < T; t++) isum[t][0] = isum[t][1] = vdupq_n_s32(0);
    for (int b = b0; b < b1; b++) {
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        int8x16_t w[8];
        x8_s8_half(tile + g * gst + (size_t)(b - b0) * 256, h, w);
        MQ_UNROLL
        for (int t = 0; t < T; t++)
          isum[t][h] = vaddq_s32(isum[t][h], x8_half_dot(w, q + (size_t)t * qs + 32 * b, 0, dp));
      }
    }
    MQ_UNROLL
    for (int h = 0; h < 2; h++) {
      float32x4_t s = vld1q_f32(sc + g * (gst / 4) + 4 * h);
      MQ_UNROLL
      for (int t = 0; t < T; t++) acc[t][h] = vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), s);
    }
  }
  x8_store(out, acc, T);
}

/* GGUF Q4_0x8 and Q8_0x8 against Q8_0 blocks (codes within [-127, 127], as
 * the Q8_0 quantizer writes them). Q4_0: the block dot on the stored
 * nibbles u, with sum (u - 8) q = sum u q - 8 * (the activation block's
 * code sum); then d_w * d_x. */
static MQ_ALWAYS_INLINE void body_x8_q0(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                        const int32_t *bsum, int bs, float *out, int q8,
                                        const int T, int dp) {
  float32x4_t acc[4][2];
  MQ_UNROLL
  for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
  size_t bb = q8 ? MQ_X8_Q8_0_BLOCK : MQ_X8_Q4_0_BLOCK, dof = q8 ? 256 : 128;
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk = tile + (size_t)b * bb;
    MQ_UNROLL
    for (int h = 0; h < 2; h++) {
      int8x16_t w[8];
      if (q8) x8_s8_half(blk, h, w);
      else x8_u4_half(blk, h, w);
      float32x4_t dw = f16x4(blk + dof + 8 * h);
      MQ_UNROLL
      for (int t = 0; t < T; t++) {
        const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
        int32x4_t s = x8_half_dot(w, (const int8_t *)a + 2, !q8, dp);
        if (!q8) s = vsubq_s32(s, vdupq_n_s32(8 * bsum[(size_t)t * bs + b]));
        acc[t][h] = vfmaq_f32(acc[t][h], vcvtq_f32_s32(s), vmulq_n_f32(dw, f16_scalar(a)));
      }
    }
  }
  x8_store(out, acc, T);
}

/* GGUF Q4_Kx8 against Q8_K: per sub-block the rows' integer sums times
 * their 6-bit scales, the mins times the Q8_K sums of the sub-block, all in
 * int32 (a sub-block sum <= 32 * 15 * 128, times 63, 8 sub-blocks: < 2^25),
 * then d_x * d and d_x * dmin per super-block as Q4_K's dot defines them. */
static MQ_ALWAYS_INLINE void body_x8_q4_k(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                          float *out, const int five, const int T, int dp) {
  /* five: Q5_Kx8, the fifth bits from their plane; codes up to 31 take
   * x8_half_dot's general int8 sums */
  const size_t tb = five ? MQ_X8_Q5_K_BLOCK : MQ_X8_Q4_K_BLOCK, sc_at = five ? 1280 : 1024;
  float32x4_t acc[4][2];
  MQ_UNROLL
  for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk = tile + (size_t)sb * tb;
    const int8_t *a0 = (const int8_t *)act + (size_t)sb * 292 + 4;
    int32x4_t isc[4][2];
    MQ_UNROLL
    for (int t = 0; t < T; t++) isc[t][0] = isc[t][1] = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) {
      uint16x8_t sc16 = vmovl_u8(vld1_u8(blk + sc_at + 8 * j));
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        int8x16_t w[8];
        x8_u4_half(blk + 128 * j, h, w);
        if (five) { /* bit c: chunk c's low nibbles (quad c), bit 4 + c: its high (quad c + 4) */
          uint8x16_t f = vld1q_u8(blk + 1024 + 32 * j + 16 * h), one = vdupq_n_u8(1);
          MQ_UNROLL
          for (int c = 0; c < 8; c++) {
            uint8x16_t b = vandq_u8(vshlq_u8(f, vdupq_n_s8((int8_t)-c)), one);
            w[c] = vorrq_s8(w[c], vreinterpretq_s8_u8(vshlq_n_u8(b, 4)));
          }
        }
        uint32x4_t sc32 = h ? vmovl_high_u16(sc16) : vmovl_u16(vget_low_u16(sc16));
        MQ_UNROLL
        for (int t = 0; t < T; t++) {
          int32x4_t s = x8_half_dot(w, a0 + (size_t)t * as + 32 * j, !five, dp);
          isc[t][h] = vmlaq_s32(isc[t][h], s, vreinterpretq_s32_u32(sc32));
        }
      }
    }
    MQ_UNROLL
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
      /* mins: each sub-block's two Q8_K sums of 16 (|.| <= 4096 together) */
      int16x8_t bs = vpaddq_s16(vreinterpretq_s16_u8(vld1q_u8(a + 260)),
                                vreinterpretq_s16_u8(vld1q_u8(a + 276)));
      int16_t bsj[8];
      vst1q_s16(bsj, bs);
      int32x4_t imn[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
      MQ_UNROLL
      for (int j = 0; j < 8; j++) {
        int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(blk + sc_at + 64 + 8 * j)));
        imn[0] = vmlal_n_s16(imn[0], vget_low_s16(m), bsj[j]);
        imn[1] = vmlal_high_n_s16(imn[1], m, bsj[j]);
      }
      float dx = f32_scalar(a);
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        float32x4_t d = f16x4(blk + sc_at + 128 + 8 * h), dmin = f16x4(blk + sc_at + 144 + 8 * h);
        acc[t][h] = vfmaq_f32(acc[t][h], vmulq_n_f32(d, dx), vcvtq_f32_s32(isc[t][h]));
        acc[t][h] = vfmsq_f32(acc[t][h], vmulq_n_f32(dmin, dx), vcvtq_f32_s32(imn[h]));
      }
    }
  }
  x8_store(out, acc, T);
}

/* x8_half_dot's sums split by sub-block: *u over quads 0-3 (the block's
 * first 16 columns), *v over quads 4-7; any int8 codes (the general sums:
 * an int16 lane takes two products <= 2 * 128 * 127). */
static MQ_ALWAYS_INLINE void x8_half_dot2(const int8x16_t w[8], const int8_t *q, int dp,
                                          int32x4_t *u, int32x4_t *v) {
  __asm__ volatile("" : "+r"(q)); /* as x8_half_dot: reload rather than spill */
  int8x16_t qa = vld1q_s8(q), qb = vld1q_s8(q + 16);
#if MQ_HAVE_DOTPROD
  if (dp) {
    int32x4_t a = sdot_lane(vdupq_n_s32(0), w[0], qa, 0),
              b = sdot_lane(vdupq_n_s32(0), w[4], qb, 0);
    a = sdot_lane(a, w[1], qa, 1);
    b = sdot_lane(b, w[5], qb, 1);
    a = sdot_lane(a, w[2], qa, 2);
    b = sdot_lane(b, w[6], qb, 2);
    a = sdot_lane(a, w[3], qa, 3);
    b = sdot_lane(b, w[7], qb, 3);
    *u = a, *v = b;
    return;
  }
#else
  (void)dp;
#endif
  int32x4_t r[2];
  MQ_UNROLL
  for (int half = 0; half < 2; half++) { /* quads 0-3 from qa, 4-7 from qb */
    int8x16_t qq = half ? qb : qa;
    int32x4_t lo = vdupq_n_s32(0), hi = lo;
    MQ_UNROLL
    for (int c = 0; c < 4; c += 2) {
      const int8x16_t w0 = w[4 * half + c], w1 = w[4 * half + c + 1];
      int8x16_t a0 = dup_quad(qq, c), a1 = dup_quad(qq, c + 1);
      int16x8_t pl = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));
      int16x8_t ph = vmull_high_s8(w0, a0);
      pl = vmlal_s8(pl, vget_low_s8(w1), vget_low_s8(a1));
      ph = vmlal_high_s8(ph, w1, a1);
      lo = vpadalq_s16(lo, pl);
      hi = vpadalq_s16(hi, ph);
    }
    r[half] = vpaddq_s32(lo, hi);
  }
  *u = r[0], *v = r[1];
}

/* Byte lanes of v shifted right by n (a variable count) and masked */
static MQ_ALWAYS_INLINE int8x16_t bits_at(uint8x16_t v, int n, uint8_t mask) {
  return vreinterpretq_s8_u8(vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)-n)), vdupq_n_u8(mask)));
}

/* GGUF Q6_Kx8 (bits 6), Q3_Kx8 (3) and Q2_Kx8 (2) against Q8_K, as the x86
 * tiers compute them: per 16-column sub-block the rows' integer sums times
 * their scales in int32; the -32 (-4) or Q2_K's mins times the Q8_K sums of
 * the sub-block; then d_x * d (and d_x * dmin) per super-block. */
static MQ_ALWAYS_INLINE void body_x8_sub16(const uint8_t *tile, int K, const uint8_t *act,
                                           size_t as, float *out, const int bits, const int T,
                                           int dp) {
  const size_t tb = bits == 6 ? MQ_X8_Q6_K_BLOCK : bits == 3 ? MQ_X8_Q3_K_BLOCK : MQ_X8_Q2_K_BLOCK;
  const size_t sc_at = bits == 6 ? 1536 : bits == 3 ? 768 : 512;
  float32x4_t acc[4][2];
  MQ_UNROLL
  for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0);
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk = tile + (size_t)sb * tb;
    const int8_t *a0 = (const int8_t *)act + (size_t)sb * 292 + 4;
    int32x4_t isc[4][2];
    MQ_UNROLL
    for (int t = 0; t < T; t++) isc[t][0] = isc[t][1] = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) {
      /* the scales of sub-blocks 2j and 2j + 1, rows 0-7 */
      int16x8_t s0 = vmovl_s8(vld1_s8((const int8_t *)blk + sc_at + 16 * j));
      int16x8_t s1 = vmovl_s8(vld1_s8((const int8_t *)blk + sc_at + 16 * j + 8));
      if (bits == 2) { /* scale | min << 4: the low nibbles */
        s0 = vandq_s16(s0, vdupq_n_s16(15)), s1 = vandq_s16(s1, vdupq_n_s16(15));
      }
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        int8x16_t w[8];
        if (bits == 6) {
          uint8x16_t ha = vld1q_u8(blk + 1024 + 64 * j + 16 * h),
                     hh = vld1q_u8(blk + 1024 + 64 * j + 32 + 16 * h);
          MQ_UNROLL
          for (int c = 0; c < 4; c++) {
            uint8x16_t nib = vld1q_u8(blk + 128 * j + 32 * c + 16 * h);
            w[c] = vorrq_s8(vreinterpretq_s8_u8(vandq_u8(nib, vdupq_n_u8(15))),
                            vshlq_n_s8(bits_at(ha, 2 * c, 3), 4));
            w[c + 4] = vorrq_s8(vreinterpretq_s8_u8(vshrq_n_u8(nib, 4)),
                                vshlq_n_s8(bits_at(hh, 2 * c, 3), 4));
          }
        } else {
          uint8x16_t la = vld1q_u8(blk + 64 * j + 16 * h),
                     lh = vld1q_u8(blk + 64 * j + 32 + 16 * h);
          MQ_UNROLL
          for (int c = 0; c < 4; c++)
            w[c] = bits_at(la, 2 * c, 3), w[c + 4] = bits_at(lh, 2 * c, 3);
          if (bits == 3) { /* bit c: the low-nibble quad c's third bits, bit 4 + c: quad c + 4's */
            uint8x16_t f = vld1q_u8(blk + 512 + 32 * j + 16 * h);
            MQ_UNROLL
            for (int c = 0; c < 8; c++) w[c] = vorrq_s8(w[c], vshlq_n_s8(bits_at(f, c, 1), 2));
          }
        }
        int32x4_t sa = vmovl_s16(h ? vget_high_s16(s0) : vget_low_s16(s0));
        int32x4_t sbv = vmovl_s16(h ? vget_high_s16(s1) : vget_low_s16(s1));
        MQ_UNROLL
        for (int t = 0; t < T; t++) {
          int32x4_t u, v;
          x8_half_dot2(w, a0 + (size_t)t * as + 32 * j, dp, &u, &v);
          isc[t][h] = vmlaq_s32(vmlaq_s32(isc[t][h], u, sa), v, sbv);
        }
      }
    }
    MQ_UNROLL
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
      int16_t bs[16];
      memcpy(bs, a + 260, 32);
      /* per row: sum over sub-blocks of factor * bsum (the scales; Q2_K: the mins) */
      int32x4_t imn[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
      MQ_UNROLL
      for (int s16 = 0; s16 < 16; s16++) {
        int16x8_t f = vmovl_s8(vld1_s8((const int8_t *)blk + sc_at + 8 * s16));
        if (bits == 2)
          f = vreinterpretq_s16_u16(
              vshrq_n_u16(vreinterpretq_u16_s16(vandq_s16(f, vdupq_n_s16(255))), 4));
        imn[0] = vmlal_n_s16(imn[0], vget_low_s16(f), bs[s16]);
        imn[1] = vmlal_high_n_s16(imn[1], f, bs[s16]);
      }
      float dx = f32_scalar(a);
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        float32x4_t d = vmulq_n_f32(f16x4(blk + sc_at + 128 + 8 * h), dx);
        if (bits == 2) {
          float32x4_t dmin = vmulq_n_f32(f16x4(blk + sc_at + 144 + 8 * h), dx);
          acc[t][h] = vfmaq_f32(acc[t][h], d, vcvtq_f32_s32(isc[t][h]));
          acc[t][h] = vfmsq_f32(acc[t][h], dmin, vcvtq_f32_s32(imn[h]));
        } else {
          int32x4_t tot = vsubq_s32(isc[t][h], vshlq_n_s32(imn[h], bits == 3 ? 2 : 5));
          acc[t][h] = vfmaq_f32(acc[t][h], d, vcvtq_f32_s32(tot));
        }
      }
    }
  }
  x8_store(out, acc, T);
}

/* x8_u4_f32 (exact A16 path): in each 32-bit lane (one row) of a chunk
 * half, byte j holds column j's codes; shifted out, masked and converted
 * they meet x[column] (a lane of the column quad's floats) in an FMA.
 * Eight chains: rows 0-3 / 4-7, low / high nibbles, even / odd columns. */
static void x8_u4_f32_neon(const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K,
                           int gs, const float *x, int xs, const float *gsum, int gss, int T,
                           float *out) {
  const uint32x4_t m4 = vdupq_n_u32(15);
  int nb = K / 32, bpg = gs / 32;
  for (int t = 0; t < T; t++) {
    const float *xt = x + (size_t)t * xs;
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
      int b1 = b0 + bpg < nb ? b0 + bpg : nb;
      float32x4_t ga[2][4];
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        MQ_UNROLL
        for (int i = 0; i < 4; i++) ga[h][i] = vdupq_n_f32(0);
      }
      for (int b = b0; b < b1; b++) {
        const uint8_t *blk = tile + g * gst + (size_t)(b - b0) * 128;
        const float *xb = xt + 32 * b;
        for (int c = 0; c < 4; c++) {
          float32x4_t xl = vld1q_f32(xb + 4 * c), xh = vld1q_f32(xb + 16 + 4 * c);
          MQ_UNROLL
          for (int h = 0; h < 2; h++) {
            uint32x4_t v = vreinterpretq_u32_u8(vld1q_u8(blk + 32 * c + 16 * h));
            float32x4_t *a = ga[h];
            a[0] = vfmaq_laneq_f32(a[0], vcvtq_f32_u32(vandq_u32(v, m4)), xl, 0);
            a[1] = vfmaq_laneq_f32(a[1], vcvtq_f32_u32(vandq_u32(vshrq_n_u32(v, 8), m4)), xl, 1);
            a[2] = vfmaq_laneq_f32(a[2], vcvtq_f32_u32(vandq_u32(vshrq_n_u32(v, 4), m4)), xh, 0);
            a[3] = vfmaq_laneq_f32(a[3], vcvtq_f32_u32(vandq_u32(vshrq_n_u32(v, 12), m4)), xh, 1);
            a[0] = vfmaq_laneq_f32(a[0], vcvtq_f32_u32(vandq_u32(vshrq_n_u32(v, 16), m4)), xl, 2);
            a[1] = vfmaq_laneq_f32(a[1], vcvtq_f32_u32(vshrq_n_u32(vshlq_n_u32(v, 4), 28)), xl, 3);
            a[2] = vfmaq_laneq_f32(a[2], vcvtq_f32_u32(vandq_u32(vshrq_n_u32(v, 20), m4)), xh, 2);
            a[3] = vfmaq_laneq_f32(a[3], vcvtq_f32_u32(vshrq_n_u32(v, 28)), xh, 3);
          }
        }
      }
      MQ_UNROLL
      for (int h = 0; h < 2; h++) {
        float32x4_t s = vaddq_f32(vaddq_f32(ga[h][0], ga[h][1]), vaddq_f32(ga[h][2], ga[h][3]));
        acc[h] = vfmaq_f32(acc[h], s, vld1q_f32(sc + g * (gst / 4) + 4 * h));
        if (mn)
          acc[h] =
              vfmaq_n_f32(acc[h], vld1q_f32(mn + g * (gst / 4) + 4 * h), gsum[(size_t)t * gss + g]);
      }
    }
    vst1q_f32(out + 8 * t, acc[0]);
    vst1q_f32(out + 8 * t + 4, acc[1]);
  }
}

/* MXFP8 rows: an E4M3 byte s.eeee.mmm placed as the f16 bits
 * s.0eeee.mmm0000000 is its value times 2^-8, subnormals included (they
 * land on f16 subnormals, which FCVTL converts exactly). The signed
 * widening shift by 7 puts e.m at bits 7..13 and copies of the sign at bits
 * 14 and 15; clearing bit 14 leaves the f16. The block scale is
 * 2^(e - 127 + 8). NaN codes (0x7f / 0xff) read as +-480 here; writers
 * never store them (the reference gives NaN). */
static inline void e4m3_f16x16(int8x16_t v, float32x4_t f[4]) {
  const uint16x8_t b14 = vdupq_n_u16(0x4000);
  uint16x8_t l = vreinterpretq_u16_s16(vshll_n_s8(vget_low_s8(v), 7));
  uint16x8_t h = vreinterpretq_u16_s16(vshll_high_n_s8(v, 7));
  float16x8_t lo = vreinterpretq_f16_u16(vbicq_u16(l, b14));
  float16x8_t hi = vreinterpretq_f16_u16(vbicq_u16(h, b14));
  f[0] = vcvt_f32_f16(vget_low_f16(lo));
  f[1] = vcvt_high_f32_f16(lo);
  f[2] = vcvt_f32_f16(vget_low_f16(hi));
  f[3] = vcvt_high_f32_f16(hi);
}

static inline float pow2f(int ex) { /* 2^ex for ex in [-126, 127] */
  uint32_t u = (uint32_t)(ex + 127) << 23;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static float dot_mxfp8_f32_neon(const uint8_t *w, const uint8_t *e, const float *x, int n) {
  float32x4_t acc = vdupq_n_f32(0);
  for (int b = 0; b < n / 32; b++) {
    const float *xb = x + 32 * b;
    float32x4_t f[8];
    e4m3_f16x16(vld1q_s8((const int8_t *)w + 32 * b), f);
    e4m3_f16x16(vld1q_s8((const int8_t *)w + 32 * b + 16), f + 4);
    float32x4_t s0 = vmulq_f32(f[0], vld1q_f32(xb)), s1 = vmulq_f32(f[1], vld1q_f32(xb + 4));
    float32x4_t s2 = vmulq_f32(f[2], vld1q_f32(xb + 8)), s3 = vmulq_f32(f[3], vld1q_f32(xb + 12));
    s0 = vfmaq_f32(s0, f[4], vld1q_f32(xb + 16));
    s1 = vfmaq_f32(s1, f[5], vld1q_f32(xb + 20));
    s2 = vfmaq_f32(s2, f[6], vld1q_f32(xb + 24));
    s3 = vfmaq_f32(s3, f[7], vld1q_f32(xb + 28));
    float32x4_t s = vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3));
    int ex = (int)e[b] - 127 + 8; /* in [-119, 136] */
    if (ex <= 127) acc = vfmaq_n_f32(acc, s, pow2f(ex));
    else /* beyond float's exponent: by parts */
      acc = vfmaq_n_f32(acc, vmulq_n_f32(s, pow2f(ex - 127)), 0x1p127f);
  }
  return vaddvq_f32(acc);
}

/* ---- instantiations ---- */

static int32_t dot_s8s8_neon(const int8_t *a, const int8_t *b, int n) { return body_s8s8(a, b, n, 0); }
static float dot_u4_q8_neon(const uint8_t *c, const int8_t *q, const float *d, int n) {
  return body_u4_q8(c, q, d, n, 0);
}
static float dot_u8_q8_neon(const uint8_t *c, const int8_t *q, const float *d, int n) {
  return body_u8_q8(c, q, d, n, 0);
}
static void dot4_u4_q8_neon(const uint8_t *c, const int8_t *q, int qs, const float *d, int ds, int n,
                            float out[4]) {
  body_dot4_u4_q8(c, q, qs, d, ds, n, out, 0);
}
static float gguf_q4_0_neon(int n, const void *w, const void *a) { return body_q4_0(n, w, a, 0); }
static float gguf_q8_0_neon(int n, const void *w, const void *a) { return body_q8_0(n, w, a, 0); }
static float gguf_q4_k_neon(int n, const void *w, const void *a) { return body_q4_k(n, w, a, 0); }
static float gguf_q6_k_neon(int n, const void *w, const void *a) { return body_q6_k(n, w, a, 0); }
static float gguf_q4_1_neon(int n, const void *w, const void *a) {
  return body_q41_q51(n, w, a, 0, 0);
}
static float gguf_q5_0_neon(int n, const void *w, const void *a) { return body_q5_0(n, w, a, 0); }
static float gguf_q5_1_neon(int n, const void *w, const void *a) {
  return body_q41_q51(n, w, a, 1, 0);
}
static float gguf_iq4_nl_neon(int n, const void *w, const void *a) {
  return body_iq4_nl(n, w, a, 0);
}
static float gguf_iq4_xs_neon(int n, const void *w, const void *a) {
  return body_iq4_xs(n, w, a, 0);
}

/* x8 entries: each body compiled for a constant token count T (its token
 * loops unroll and the accumulators stay in registers) in a function of
 * its own (inlined into one, the four made the register allocator spill
 * in the inner loops), and for a constant dp */
#define MQ_T_VARIANTS(name, attr, dp, body, params, ...)                                           \
  attr __attribute__((noinline)) static void name##_1 params { body(__VA_ARGS__, 1, dp); }         \
  attr __attribute__((noinline)) static void name##_2 params { body(__VA_ARGS__, 2, dp); }         \
  attr __attribute__((noinline)) static void name##_3 params { body(__VA_ARGS__, 3, dp); }         \
  attr __attribute__((noinline)) static void name##_4 params { body(__VA_ARGS__, 4, dp); }
#define MQ_T_CALL(name, ...)                                                                       \
  switch (T) {                                                                                     \
  case 1: name##_1(__VA_ARGS__); break;                                                            \
  case 2: name##_2(__VA_ARGS__); break;                                                            \
  case 3: name##_3(__VA_ARGS__); break;                                                            \
  default: name##_4(__VA_ARGS__); break;                                                           \
  }
#define MQ_U4Q8_P                                                                                  \
  (const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K, int gs,               \
   const int8_t *q, int qs, const float *d, int ds, const float *gsum, int gss, float *out)
#define MQ_U4Q8_A tile, gst, sc, mn, K, gs, q, qs, d, ds, gsum, gss, out
#define MQ_S8_P                                                                                    \
  (const uint8_t *tile, size_t gst, const float *sc, int K, int gs, const int8_t *q, int qs,       \
   float *out)
#define MQ_S8_A tile, gst, sc, K, gs, q, qs, out
#define MQ_Q0_P                                                                                    \
  (const uint8_t *tile, int K, const uint8_t *act, size_t as, const int32_t *bsum, int bs,         \
   float *out)
#define MQ_Q0_A tile, K, act, as, bsum, bs, out
#define MQ_QK_P (const uint8_t *tile, int K, const uint8_t *act, size_t as, float *out)
#define MQ_QK_A tile, K, act, as, out
/* a K-quant x8 entry (bsum unused: Q8_K carries its own) */
#define MQ_QK_ENTRY(entry, variants, attr)                                                         \
  attr static void entry(const uint8_t *tile, int K, const uint8_t *act, size_t as,                \
                         const int32_t *bsum, int bs, int T, float *out) {                         \
    (void)bsum, (void)bs;                                                                          \
    MQ_T_CALL(variants, MQ_QK_A)                                                                   \
  }
#define MQ_X8_ENTRIES(sfx, attr, dp)                                                               \
  MQ_T_VARIANTS(u4q8_##sfx, attr, dp, body_x8_u4_q8, MQ_U4Q8_P, MQ_U4Q8_A)                         \
  MQ_T_VARIANTS(s8q8_##sfx, attr, dp, body_x8_s8_q8, MQ_S8_P, MQ_S8_A)                             \
  MQ_T_VARIANTS(q40_##sfx, attr, dp, body_x8_q0, MQ_Q0_P, MQ_Q0_A, 0)                              \
  MQ_T_VARIANTS(q80_##sfx, attr, dp, body_x8_q0, MQ_Q0_P, MQ_Q0_A, 1)                              \
  MQ_T_VARIANTS(q4k_##sfx, attr, dp, body_x8_q4_k, MQ_QK_P, MQ_QK_A, 0)                            \
  MQ_T_VARIANTS(q5k_##sfx, attr, dp, body_x8_q4_k, MQ_QK_P, MQ_QK_A, 1)                            \
  MQ_T_VARIANTS(q6k_##sfx, attr, dp, body_x8_sub16, MQ_QK_P, MQ_QK_A, 6)                           \
  MQ_T_VARIANTS(q3k_##sfx, attr, dp, body_x8_sub16, MQ_QK_P, MQ_QK_A, 3)                           \
  MQ_T_VARIANTS(q2k_##sfx, attr, dp, body_x8_sub16, MQ_QK_P, MQ_QK_A, 2)                           \
  attr static void x8_u4_q8_##sfx(const uint8_t *tile, size_t gst, const float *sc,                \
                                  const float *mn, int K, int gs, const int8_t *q, int qs,         \
                                  const float *d, int ds, const float *gsum, int gss, int T,       \
                                  float *out){MQ_T_CALL(                                           \
      u4q8_##sfx, MQ_U4Q8_A)} attr static void x8_s8_q8_##sfx(const uint8_t *tile, size_t gst,     \
                                                              const float *sc, int K, int gs,      \
                                                              const int8_t *q, int qs, int T,      \
                                                              float *out){MQ_T_CALL(               \
      s8q8_##sfx, MQ_S8_A)} attr static void x8_q4_0_##sfx(const uint8_t *tile, int K,             \
                                                           const uint8_t *act, size_t as,          \
                                                           const int32_t *bsum, int bs, int T,     \
                                                           float *out){                            \
      MQ_T_CALL(q40_##sfx, MQ_Q0_A)} attr static void x8_q8_0_##sfx(const uint8_t *tile, int K,    \
                                                                    const uint8_t *act, size_t as, \
                                                                    const int32_t *bsum, int bs,   \
                                                                    int T, float *out){            \
      MQ_T_CALL(q80_##sfx, MQ_Q0_A) /* bsum unused */                                              \
  } MQ_QK_ENTRY(x8_q4_k_##sfx, q4k_##sfx, attr) MQ_QK_ENTRY(x8_q5_k_##sfx, q5k_##sfx, attr)        \
      MQ_QK_ENTRY(x8_q6_k_##sfx, q6k_##sfx, attr) MQ_QK_ENTRY(x8_q3_k_##sfx, q3k_##sfx, attr)      \
          MQ_QK_ENTRY(x8_q2_k_##sfx, q2k_##sfx, attr)
MQ_X8_ENTRIES(neon, , 0)

#if MQ_HAVE_DOTPROD
MQ_DOTPROD static int32_t dot_s8s8_sdot(const int8_t *a, const int8_t *b, int n) {
  return body_s8s8(a, b, n, 1);
}
MQ_DOTPROD static float dot_u4_q8_sdot(const uint8_t *c, const int8_t *q, const float *d, int n) {
  return body_u4_q8(c, q, d, n, 1);
}
MQ_DOTPROD static float dot_u8_q8_sdot(const uint8_t *c, const int8_t *q, const float *d, int n) {
  return body_u8_q8(c, q, d, n, 1);
}
MQ_DOTPROD static void dot4_u4_q8_sdot(const uint8_t *c, const int8_t *q, int qs, const float *d,
                                       int ds, int n, float out[4]) {
  body_dot4_u4_q8(c, q, qs, d, ds, n, out, 1);
}
MQ_DOTPROD static float gguf_q4_0_sdot(int n, const void *w, const void *a) { return body_q4_0(n, w, a, 1); }
MQ_DOTPROD static float gguf_q8_0_sdot(int n, const void *w, const void *a) { return body_q8_0(n, w, a, 1); }
MQ_DOTPROD static float gguf_q4_k_sdot(int n, const void *w, const void *a) { return body_q4_k(n, w, a, 1); }
MQ_DOTPROD static float gguf_q6_k_sdot(int n, const void *w, const void *a) { return body_q6_k(n, w, a, 1); }
MQ_DOTPROD static float gguf_q4_1_sdot(int n, const void *w, const void *a) {
  return body_q41_q51(n, w, a, 0, 1);
}
MQ_DOTPROD static float gguf_q5_0_sdot(int n, const void *w, const void *a) {
  return body_q5_0(n, w, a, 1);
}
MQ_DOTPROD static float gguf_q5_1_sdot(int n, const void *w, const void *a) {
  return body_q41_q51(n, w, a, 1, 1);
}
MQ_DOTPROD static float gguf_iq4_nl_sdot(int n, const void *w, const void *a) {
  return body_iq4_nl(n, w, a, 1);
}
MQ_DOTPROD static float gguf_iq4_xs_sdot(int n, const void *w, const void *a) {
  return body_iq4_xs(n, w, a, 1);
}
MQ_X8_ENTRIES(sdot, MQ_DOTPROD, 1)
#endif

int mq_kern_fill_neon(mq_kernels *k) {
  k->name = "neon";
  k->dot_f32 = dot_f32_neon;
  k->dot_rows_f32 = dot_rows_f32_neon;
  k->axpy_rows_f32 = axpy_rows_f32_neon;
  k->softmax_f32 = softmax_f32_neon;
  k->f16_to_f32 = f16_to_f32_neon;
  k->q8_0_to_f32 = q8_0_to_f32_neon;
  k->gguf_q8_x86 = gguf_q8_x86_neon;
  k->quantize_q8_32 = quantize_q8_32_neon;
  k->bf16_to_f32 = bf16_to_f32_neon;
  k->dot_f16_f32 = dot_f16_f32_neon;
  k->dot_bf16_f32 = dot_bf16_f32_neon;
  k->dot_u4_f32 = dot_u4_f32_neon;
  k->dot_u8_f32 = dot_u8_f32_neon;
  k->dot_s8_f32 = dot_s8_f32_neon;
  k->dot_s8s8 = dot_s8s8_neon;
  k->dot_u4_q8 = dot_u4_q8_neon;
  k->dot_u8_q8 = dot_u8_q8_neon;
  k->dot4_u4_q8 = dot4_u4_q8_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q4_0] = gguf_q4_0_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q8_0] = gguf_q8_0_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q4_K] = gguf_q4_k_neon;
  k->dot_mxfp8_f32 = dot_mxfp8_f32_neon;
  k->x8_u4_q8 = x8_u4_q8_neon;
  k->x8_u4_f32 = x8_u4_f32_neon;
  k->x8_q4_0 = x8_q4_0_neon;
  k->x8_q4_k = x8_q4_k_neon;
  k->x8_q5_k = x8_q5_k_neon;
  k->x8_q6_k = x8_q6_k_neon;
  k->x8_q3_k = x8_q3_k_neon;
  k->x8_q2_k = x8_q2_k_neon;
  k->x8_s8_q8 = x8_s8_q8_neon;
  k->x8_q8_0 = x8_q8_0_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q6_K] = gguf_q6_k_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q4_1] = gguf_q4_1_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q5_0] = gguf_q5_0_neon;
  k->gguf_dot[MQ_GGML_TYPE_Q5_1] = gguf_q5_1_neon;
  k->gguf_dot[MQ_GGML_TYPE_IQ4_NL] = gguf_iq4_nl_neon;
  k->gguf_dot[MQ_GGML_TYPE_IQ4_XS] = gguf_iq4_xs_neon;
#if MQ_HAVE_DOTPROD
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) { /* SDOT: the integer kernels */
    k->dot_s8s8 = dot_s8s8_sdot;
    k->dot_u4_q8 = dot_u4_q8_sdot;
    k->dot_u8_q8 = dot_u8_q8_sdot;
    k->dot4_u4_q8 = dot4_u4_q8_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q4_0] = gguf_q4_0_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q8_0] = gguf_q8_0_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q4_K] = gguf_q4_k_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q6_K] = gguf_q6_k_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q4_1] = gguf_q4_1_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q5_0] = gguf_q5_0_sdot;
    k->gguf_dot[MQ_GGML_TYPE_Q5_1] = gguf_q5_1_sdot;
    k->gguf_dot[MQ_GGML_TYPE_IQ4_NL] = gguf_iq4_nl_sdot;
    k->gguf_dot[MQ_GGML_TYPE_IQ4_XS] = gguf_iq4_xs_sdot;
    k->x8_u4_q8 = x8_u4_q8_sdot;
    k->x8_q4_0 = x8_q4_0_sdot;
    k->x8_q4_k = x8_q4_k_sdot;
    k->x8_q5_k = x8_q5_k_sdot;
    k->x8_q6_k = x8_q6_k_sdot;
    k->x8_q3_k = x8_q3_k_sdot;
    k->x8_q2_k = x8_q2_k_sdot;
    k->x8_s8_q8 = x8_s8_q8_sdot;
    k->x8_q8_0 = x8_q8_0_sdot;
  }
#endif
  return 1;
}
#else
int mq_kern_fill_neon(mq_kernels *k) {
  (void)k;
  return 0;
}
#endif
