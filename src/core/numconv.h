/* Scalar conversions of the storage number formats to float32.
 * All are exact (every value of these formats is representable in f32). */
#ifndef MQ_CORE_NUMCONV_H
#define MQ_CORE_NUMCONV_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float mq_bits_to_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline uint32_t mq_f32_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* IEEE binary16 -> f32, subnormals, inf and NaN included. */
static inline float mq_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  if (exp == 0) { /* zero or subnormal: man * 2^-24 */
    float v = (float)man * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return mq_bits_to_f32(sign | 0x7f800000u | (man << 13));
  return mq_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* f32 -> binary16, round to nearest even (for writers and tests). */
static inline uint16_t mq_f32_to_f16(float f) {
  uint32_t x = mq_f32_to_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xff;
  uint32_t man = x & 0x7fffffu;
  if (exp == 255) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) { /* subnormal or zero in f16 */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e; /* 14..24 */
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = man & ((1u << shift) - 1);
    uint32_t r = man >> shift;
    if (rest > half || (rest == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1))) r++; /* may carry into exp: fine */
  return (uint16_t)(sign | r);
}

/* f32 -> f16 as above, but magnitudes past the largest finite half
 * (65504), inf included, become +-65504: an f16 KV cache keeps a large key
 * finite (an inf would turn the softmax into NaN). NaN stays NaN. */
static inline uint16_t mq_f32_to_f16_sat(float f) {
  return mq_f32_to_f16(f > 65504.0f ? 65504.0f : f < -65504.0f ? -65504.0f : f);
}

static inline float mq_bf16_to_f32(uint16_t b) { return mq_bits_to_f32((uint32_t)b << 16); }

/* f32 -> bf16, round to nearest even; NaN stays NaN. */
static inline uint16_t mq_f32_to_bf16(float f) {
  uint32_t x = mq_f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* OCP FP8 E4M3 (fn: no inf, 0x7f/0xff NaN, bias 7). */
static inline float mq_e4m3_to_f32(uint8_t v) {
  uint32_t sign = v & 0x80u, exp = (v >> 3) & 0xf, man = v & 7u;
  float r;
  if (exp == 15 && man == 7) return NAN;
  if (exp == 0) r = (float)man * (1.0f / 512.0f); /* man * 2^-9 */
  else r = ldexpf(1.0f + (float)man / 8.0f, (int)exp - 7);
  return sign ? -r : r;
}

/* f32 -> OCP FP8 E4M3 (fn), round to nearest even, saturating to +-448;
 * NaN -> 0x7f. */
static inline uint8_t mq_f32_to_e4m3(float f) {
  uint8_t sign = signbit(f) ? 0x80 : 0;
  float a = fabsf(f);
  if (isnan(f)) return 0x7f;
  if (a >= 448.0f) return (uint8_t)(sign | 0x7e);
  if (a < 0.015625f) { /* below 2^-6: subnormal steps of 2^-9 (8 -> the smallest normal) */
    return (uint8_t)(sign | (uint8_t)nearbyintf(a * 512.0f));
  }
  int e;
  float m = frexpf(a, &e); /* a = m 2^e, m in [0.5, 1) */
  int mant = (int)nearbyintf((m * 2.0f - 1.0f) * 8.0f);
  e -= 1; /* a = (1 + mant/8) 2^e */
  if (mant == 8) mant = 0, e++;
  int be = e + 7;
  if (be > 15 || (be == 15 && mant == 7)) return (uint8_t)(sign | 0x7e);
  return (uint8_t)(sign | (be << 3) | mant);
}

/* OCP MX shared exponent of a 32-block whose largest magnitude is amax:
 * floor(log2 amax) - emax(E4M3) = - 8, clamped to [-127, 127]; -127 for an
 * all-zero block. Its E8M0 byte is e + 127. */
static inline int mq_mx_shared_exp(float amax) {
  if (!(amax > 0)) return -127;
  int fe;
  frexpf(amax, &fe); /* amax = m 2^fe, m in [0.5, 1): floor(log2 amax) = fe - 1 */
  int e = fe - 1 - 8;
  return e < -127 ? -127 : (e > 127 ? 127 : e);
}

/* FP8 E5M2 (IEEE-like, bias 15, has inf/NaN): the upper byte of an f16. */
static inline float mq_e5m2_to_f32(uint8_t v) { return mq_f16_to_f32((uint16_t)((uint16_t)v << 8)); }

/* OCP E8M0 scale: 2^(v-127); 0xff is NaN. */
static inline float mq_e8m0_to_f32(uint8_t v) {
  if (v == 0xff) return NAN;
  if (v == 0) return mq_bits_to_f32(0x00400000u); /* 2^-127, subnormal in f32 */
  return mq_bits_to_f32((uint32_t)v << 23);
}

/* ---- activation quantizers' helpers (hot at decode: plain float
 * operations the compiler inlines and vectorizes, where fmaxf and
 * nearbyintf are libm calls on the x86-64 baseline) ---- */

/* max |x[i]| over n floats (0 for n = 0); NaNs are skipped, as fmaxf skips them */
static inline float mq_amax(const float *x, int n) {
  float m = 0;
  for (int i = 0; i < n; i++) {
    float a = fabsf(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

/* nearbyintf(v) in the default rounding mode (ties to even) for |v| < 2^22:
 * adding and removing 1.5 * 2^23 rounds v in the adder. Larger |v| come
 * back with their sign and a magnitude of at least 2^22 (callers clamp to
 * int8 anyway); NaN stays NaN, infinities stay. Needs float evaluation
 * without excess precision (x86-64 SSE, aarch64) and no fusing of the
 * caller's multiply into the add: the build's -std=c11 keeps GCC from
 * contracting, and -ffast-math or -ffp-contract=fast would break it. */
static inline float mq_round_small(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

#endif
