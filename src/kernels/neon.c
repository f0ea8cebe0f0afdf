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
#include <string.h>
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* arch/arm64/include/uapi/asm/hwcap.h */
#endif

#define MQ_ALWAYS_INLINE inline __attribute__((always_inline))

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

static void f16_to_f32_neon(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    uint16x8_t h = vld1q_u16(src + i);
    vst1q_f32(dst + i, vreinterpretq_f32_u32(f16_bits4(vget_low_u16(h))));
    vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(f16_bits4(vget_high_u16(h))));
  }
  mq_kern_ref()->f16_to_f32(src + i, dst + i, n - i);
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
#endif

int mq_kern_fill_neon(mq_kernels *k) {
  k->name = "neon";
  k->dot_f32 = dot_f32_neon;
  k->f16_to_f32 = f16_to_f32_neon;
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
  k->gguf_dot[MQ_GGML_TYPE_Q6_K] = gguf_q6_k_neon;
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
