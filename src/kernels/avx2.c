/* AVX2 + FMA + F16C variants. Compiled with those flags (this file only);
 * used only when the CPU reports the features. */
#include "kernels/kernels.h"

#if defined(MQ_SCALAR_ONLY) || !(defined(__x86_64__) || defined(__i386__))
int mq_kern_fill_avx2(mq_kernels *k) {
  (void)k;
  return 0;
}
#else
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/by_t.h"
#include "kernels/heads.h"
#include "kernels/linear_x8.h"
#include "kernels/prefetch.h"
#include "kernels/q8_entries.h"

static inline float fp16_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

static float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static float dot_f32_avx2(const float *a, const float *b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Attention scores: four rows a pass against one x (each x chunk loaded
 * once for the four), a horizontal sum per row. */
static void dot_rows_one_avx2(const float *x, const float *rows, size_t stride, int n, int len,
                              float *out) {
  int p = 0, l8 = len / 8 * 8;
  for (; p + 4 <= n; p += 4) {
    const float *r0 = rows + (size_t)p * stride, *r1 = r0 + stride, *r2 = r1 + stride,
                *r3 = r2 + stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < l8; i += 8) {
      __m256 xv = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r0 + i), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r1 + i), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r2 + i), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r3 + i), a3);
    }
    float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int i = l8; i < len; i++)
      s0 += x[i] * r0[i], s1 += x[i] * r1[i], s2 += x[i] * r2[i], s3 += x[i] * r3[i];
    out[p] = s0, out[p + 1] = s1, out[p + 2] = s2, out[p + 3] = s3;
  }
  for (; p < n; p++) out[p] = dot_f32_avx2(x, rows + (size_t)p * stride, len);
}

/* Weighted values: o in registers, 64 floats (8 accumulators) at a time,
 * the rows added in order. */
static void axpy_rows_one_avx2(float *o, const float *rows, size_t stride, const float *w, int n,
                               int len) {
  int i0 = 0;
  for (; i0 + 64 <= len; i0 += 64) {
    __m256 a[8];
    for (int c = 0; c < 8; c++) a[c] = _mm256_loadu_ps(o + i0 + 8 * c);
    for (int p = 0; p < n; p++) {
      __m256 wp = _mm256_set1_ps(w[p]);
      const float *r = rows + (size_t)p * stride + i0;
      for (int c = 0; c < 8; c++) a[c] = _mm256_fmadd_ps(wp, _mm256_loadu_ps(r + 8 * c), a[c]);
    }
    for (int c = 0; c < 8; c++) _mm256_storeu_ps(o + i0 + 8 * c, a[c]);
  }
  for (; i0 + 8 <= len; i0 += 8) {
    __m256 a = _mm256_loadu_ps(o + i0);
    for (int p = 0; p < n; p++)
      a = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(rows + (size_t)p * stride + i0), a);
    _mm256_storeu_ps(o + i0, a);
  }
  for (int i = i0; i < len; i++)
    for (int p = 0; p < n; p++) o[i] += w[p] * rows[(size_t)p * stride + i];
}

MQ_HEAD_ENTRIES(avx2)

/* exp(x) for x <= 0 (softmax's shifted scores): x = n ln2 + r with |r| <=
 * ln2 / 2 (ln2 in two parts, so r is exact to float rounding), e^r by its
 * Taylor series to r^7 (truncation below 1e-8 relative), times 2^n built in
 * the exponent bits; below -87 (2^n past the normal range) 0, where expf
 * gives at most 1e-38. */
static inline __m256 exp_neg(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x); /* ln2 high part */
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);      /* and low part */
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* silu(g) u = g sigmoid(g) u, the sigmoid from e = exp(-|g|) (exp_neg's
 * domain): 1 / (1 + e) for g >= 0, e / (1 + e) below; a NaN g stays NaN
 * (through the final products), g = -inf gives NaN as the reference does
 * (-inf * 0). */
static void swiglu_f32_avx2(float *g, const float *u, int n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    __m256 e = exp_neg(_mm256_or_ps(x, sign)); /* exp(-|x|) */
    __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
    __m256 sig = _mm256_blendv_ps(_mm256_mul_ps(e, r), r, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(x, sig), _mm256_loadu_ps(u + i)));
  }
  mq_swiglu(g + i, u + i, n - i);
}

static void softmax_f32_avx2(float *x, int n) {
  int n8 = n / 8 * 8;
  float mx = x[0];
  __m256 vm = _mm256_set1_ps(x[0]);
  for (int i = 0; i < n8; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
  float m8[8];
  _mm256_storeu_ps(m8, vm);
  for (int i = 0; i < 8; i++) mx = m8[i] > mx ? m8[i] : mx;
  for (int i = n8; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  __m256 s = _mm256_setzero_ps(), m = _mm256_set1_ps(mx);
  for (int i = 0; i < n8; i += 8) {
    __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
  }
  float sum = hsum(s);
  for (int i = n8; i < n; i++) sum += x[i] = expf(x[i] - mx);
  float inv = 1.0f / sum;
  for (int i = 0; i < n8; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(inv)));
  for (int i = n8; i < n; i++) x[i] *= inv;
}

/* 2 weight rows x T tokens per pass (8 accumulators at T = 4: 6 loads per
 * 8 FMAs, where single dots take 2 loads per FMA), two passes */
static MQ_ALWAYS_INLINE void dot4x4_T(const float *const w[4], const float *const x[4], int n,
                                      float out[16], const int T) {
  for (int h = 0; h < 4; h += 2) {
    const float *w0 = w[h], *w1 = w[h + 1];
    __m256 acc[8];
    for (int i = 0; i < 2 * T; i++) acc[i] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= n; k += 8) {
      __m256 a = _mm256_loadu_ps(w0 + k), b = _mm256_loadu_ps(w1 + k);
      for (int t = 0; t < T; t++) {
        __m256 v = _mm256_loadu_ps(x[t] + k);
        acc[2 * t] = _mm256_fmadd_ps(a, v, acc[2 * t]);
        acc[2 * t + 1] = _mm256_fmadd_ps(b, v, acc[2 * t + 1]);
      }
    }
    for (int t = 0; t < T; t++) {
      float s0 = hsum(acc[2 * t]), s1 = hsum(acc[2 * t + 1]);
      for (int i = k; i < n; i++) s0 += w0[i] * x[t][i], s1 += w1[i] * x[t][i];
      out[t * 4 + h] = s0, out[t * 4 + h + 1] = s1;
    }
  }
}

static void dot4x4_f32_avx2(const float *const w[4], const float *const x[4], int nt, int n,
                            float out[16]) {
  MQ_BY_T(nt, dot4x4_T, w, x, n, out)
}

/* One block of 32 activations as int8 codes x * 127 / amax, rounded to
 * nearest even (cvtps under the default MXCSR, as mq_round_small), into
 * q[0..32); *amax and, with sum, the codes' sum. Returns 0 (nothing
 * written) for a block the scalar references must take: a NaN or an
 * infinity (their saturation rules), or an amax so small that 127 / amax
 * overflows. */
static inline int q8_block_avx2(const float *x, uint8_t *q, float *amax, int *sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
  __m256 v[4], m = zero, fin = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int i = 0; i < 4; i++) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    fin = _mm256_and_ps(fin, _mm256_cmp_ps(_mm256_sub_ps(v[i], v[i]), zero, _CMP_EQ_OQ));
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float a = _mm_cvtss_f32(h), id = a != 0 ? 127.0f / a : 0.0f;
  if (_mm256_movemask_ps(fin) != 0xff || !(id < INFINITY)) return 0;
  __m256 vid = _mm256_set1_ps(id);
  __m256i c[4];
  for (int i = 0; i < 4; i++) c[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  _mm256_storeu_si256((__m256i *)q,
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  if (sum) {
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
  }
  *amax = a;
  return 1;
}

MQ_Q8_ENTRIES(avx2)

static void f16_to_f32_avx2(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  mq_kern_ref()->f16_to_f32(src + i, dst + i, n - i);
}

static void q8_0_to_f32_avx2(const uint8_t *blocks, float *dst, int n) {
  for (int b = 0; b < n / 32; b++, blocks += 34, dst += 32) {
    __m256 d = _mm256_set1_ps(fp16_at(blocks));
    for (int i = 0; i < 32; i += 8) {
      __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blocks + 2 + i)));
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
    }
  }
}

static void bf16_to_f32_avx2(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  mq_kern_ref()->bf16_to_f32(src + i, dst + i, n - i);
}

/* 16-bit float rows dotted straight from memory: 32 weights per step in
 * four accumulators, the row streamed with a prefetch ahead (decode reads
 * each weight once, so the converted copy the prefill path makes would only
 * add traffic). */
static inline __m256 bf16x8(const uint16_t *p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256 f16x8(const uint16_t *p) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

#define DOT_H16(name, cvt, ref_fn)                                                                 \
  static float name(const uint16_t *w, const float *x, int n) {                                    \
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),           \
           s3 = _mm256_setzero_ps();                                                               \
    int i = 0;                                                                                     \
    for (; i + 32 <= n; i += 32) {                                                                 \
      mq_prefetch_lines((const char *)(w + i) + MQ_PREFETCH_AHEAD, 64);                            \
      s0 = _mm256_fmadd_ps(cvt(w + i), _mm256_loadu_ps(x + i), s0);                                \
      s1 = _mm256_fmadd_ps(cvt(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);                        \
      s2 = _mm256_fmadd_ps(cvt(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);                      \
      s3 = _mm256_fmadd_ps(cvt(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);                      \
    }                                                                                              \
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(cvt(w + i), _mm256_loadu_ps(x + i), s0);       \
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) +                     \
           (i < n ? ref_fn(w + i, x + i, n - i) : 0.0f);                                           \
  }
DOT_H16(dot_bf16_f32_avx2, bf16x8, mq_kern_ref()->dot_bf16_f32)
DOT_H16(dot_f16_f32_avx2, f16x8, mq_kern_ref()->dot_f16_f32)

/* 8 codes (as int32 lanes) times 8 floats, accumulated. */
static inline __m256 fma_codes(__m256i c32, const float *x, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(c32), _mm256_loadu_ps(x), acc);
}

static float dot_u4_f32_avx2(const uint8_t *c, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  const __m128i lo_mask = _mm_set1_epi8(15);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    /* 8 bytes = 16 codes; interleave low/high nibbles back into k order */
    __m128i b = _mm_loadl_epi64((const __m128i *)(c + i / 2));
    __m128i lo = _mm_and_si128(b, lo_mask), hi = _mm_and_si128(_mm_srli_epi16(b, 4), lo_mask);
    __m128i seq = _mm_unpacklo_epi8(lo, hi); /* 16 codes in order */
    a0 = fma_codes(_mm256_cvtepu8_epi32(seq), x + i, a0);
    a1 = fma_codes(_mm256_cvtepu8_epi32(_mm_srli_si128(seq, 8)), x + i + 8, a1);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; i++) s += (float)((c[i / 2] >> (4 * (i & 1))) & 15) * x[i];
  return s;
}

static float dot_u8_f32_avx2(const uint8_t *c, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i b = _mm_loadu_si128((const __m128i *)(c + i));
    a0 = fma_codes(_mm256_cvtepu8_epi32(b), x + i, a0);
    a1 = fma_codes(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)), x + i + 8, a1);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; i++) s += (float)c[i] * x[i];
  return s;
}

static float dot_s8_f32_avx2(const int8_t *c, const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i b = _mm_loadu_si128((const __m128i *)(c + i));
    a0 = fma_codes(_mm256_cvtepi8_epi32(b), x + i, a0);
    a1 = fma_codes(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)), x + i + 8, a1);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; i++) s += (float)c[i] * x[i];
  return s;
}

static int32_t dot_s8s8_avx2(const int8_t *a, const int8_t *b, int n) {
  __m256i acc = _mm256_setzero_si256();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
    __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  int32_t r = _mm_cvtsi128_si32(s);
  for (; i < n; i++) r += (int32_t)a[i] * b[i];
  return r;
}

/* sum of 32 products u8 * s8 -> 8 int32 lanes (a: unsigned, at most 15 or
 * less than 128 in magnitude after the sign trick, so maddubs cannot saturate) */
static inline __m256i dot32_us(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

static float dot_u4_q8_avx2(const uint8_t *c, const int8_t *q, const float *d, int n) {
  __m256 acc = _mm256_setzero_ps();
  const __m128i m4 = _mm_set1_epi8(15);
  for (int b = 0; b < n / 32; b++) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(c + 16 * b));
    __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    __m256i codes = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    __m256i qs = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
    __m256 sum = _mm256_cvtepi32_ps(dot32_us(codes, qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d[b]), sum, acc);
  }
  return hsum(acc);
}

static void dot4_u4_q8_avx2(const uint8_t *c, const int8_t *q, int qs, const float *d, int ds,
                            int n, float out[4]) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const __m128i m4 = _mm_set1_epi8(15);
  for (int b = 0; b < n / 32; b++) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(c + 16 * b));
    __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    __m256i codes = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    for (int j = 0; j < 4; j++) {
      __m256i qv = _mm256_loadu_si256((const __m256i *)(q + (size_t)j * qs + 32 * b));
      __m256 sum = _mm256_cvtepi32_ps(dot32_us(codes, qv));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d[(size_t)j * ds + b]), sum, acc[j]);
    }
  }
  for (int j = 0; j < 4; j++) out[j] = hsum(acc[j]);
}

/* x8 tiles (layout in kernels/linear_x8.h). Lanes are the tile's 8 rows:
 * a 32-byte chunk holds 8 rows x 4 columns in each nibble half, the
 * activation's 4 bytes of that column quad are broadcast, and maddubs + madd
 * give each row's 4-column sum in its own lane, so no horizontal sums. The
 * int16 partial sums of a block's 8 quads stay below 8 * 2 * 15 * 128 = 30720. */
static inline void x8_decode(const uint8_t *blk, __m256i w[8]) {
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int c = 0; c < 4; c++) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 32 * c));
    w[c] = _mm256_and_si256(v, m4);
    w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
}

static inline __m256 x8_block_dot(const __m256i w[8], const int8_t *q) {
  __m256i s = _mm256_setzero_si256();
  for (int c = 0; c < 8; c++) {
    int32_t a;
    memcpy(&a, q + 4 * c, 4);
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(a)));
  }
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(s, _mm256_set1_epi16(1)));
}

/* S8 x8 tiles: signed x signed with maddubs(|w|, sign(a, w)) (|w| <= 128,
 * |a| <= 127: pairs <= 32512, no saturation), one madd per chunk into int32;
 * |w| is taken once per block for the T tokens. */
static inline void s8_prep(const uint8_t *blk, __m256i wa[8], __m256i ws[8]) {
  for (int c = 0; c < 8; c++) {
    ws[c] = _mm256_loadu_si256((const __m256i *)(blk + 32 * c));
    wa[c] = _mm256_abs_epi8(ws[c]);
  }
}

static inline __m256i s8_block_dot(const __m256i wa[8], const __m256i ws[8], const int8_t *q) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 8; c++) {
    int32_t v;
    memcpy(&v, q + 4 * c, 4);
    __m256i p = _mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(_mm256_set1_epi32(v), ws[c]));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
  }
  return acc;
}

/* A16 fast path, 4-bit tiles or (s8) the S8 tiles of 8-bit layers: per
 * group, the blocks' integer sums times the tokens' block scales, then the
 * rows' scales and mins. */
static MQ_ALWAYS_INLINE void x8_q8_T(const uint8_t *tile, size_t gst, const float *sc,
                                     const float *mn, int K, int gs, const int8_t *q, int qs,
                                     const float *d, int ds, const float *gsum, int gss, float *out,
                                     const int s8, const int T) {
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  const size_t bb = s8 ? 256 : 128;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst;
    __m256 gacc[4];
    for (int t = 0; t < T; t++) gacc[t] = _mm256_setzero_ps();
    for (int b = b0; b < b1; b++) {
      const uint8_t *blk = gp + (size_t)(b - b0) * bb;
      /* a second stream ahead of the loads (the next tile, near a tile's
       * end): one hardware-prefetched stream alone leaves bandwidth unused */
      mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, bb);
      __m256i w[8], ws[8];
      if (s8) s8_prep(blk, w, ws);
      else x8_decode(blk, w);
      for (int t = 0; t < T; t++) {
        const int8_t *qb = q + (size_t)t * qs + 32 * b;
        __m256 v = s8 ? _mm256_cvtepi32_ps(s8_block_dot(w, ws, qb)) : x8_block_dot(w, qb);
        gacc[t] = _mm256_fmadd_ps(v, _mm256_set1_ps(d[(size_t)t * ds + b]), gacc[t]);
      }
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * bb, gst);
    __m256 s = _mm256_loadu_ps(sc + g * (gst / 4));
    for (int t = 0; t < T; t++) acc[t] = _mm256_fmadd_ps(gacc[t], s, acc[t]);
    if (mn) {
      __m256 m = _mm256_loadu_ps(mn + g * (gst / 4));
      for (int t = 0; t < T; t++)
        acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(gsum[(size_t)t * gss + g]), acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_u4_q8_avx2(const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K,
                          int gs, const int8_t *q, int qs, const float *d, int ds,
                          const float *gsum, int gss, int T, float *out) {
  MQ_BY_T(T, x8_q8_T, tile, gst, sc, mn, K, gs, q, qs, d, ds, gsum, gss, out, 0)
}

/* Exact path: each column's 8 codes (byte j of the 8 lanes of a chunk:
 * 4-bit codes as bytes, or (s8) the signed bytes of S8 tiles, sign-extended
 * by shifts) become 8 floats and meet the broadcast activation in an FMA. */
static MQ_ALWAYS_INLINE void x8_f32_body(const uint8_t *tile, size_t gst, const float *sc,
                                         const float *mn, int K, int gs, const float *x, int xs,
                                         const float *gsum, int gss, int T, float *out,
                                         const int s8) {
  const __m256i mff = _mm256_set1_epi32(0xff);
  int nb = K / 32, bpg = gs / 32;
  for (int t = 0; t < T; t++) {
    const float *xt = x + (size_t)t * xs;
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
      int b1 = b0 + bpg < nb ? b0 + bpg : nb;
      const uint8_t *gp = tile + g * gst;
      __m256 ga = _mm256_setzero_ps(), gb = _mm256_setzero_ps();
      for (int b = b0; b < b1; b++) {
        __m256i w[8];
        const uint8_t *blk = gp + (size_t)(b - b0) * (s8 ? 256 : 128);
        if (s8)
          for (int c = 0; c < 8; c++) w[c] = _mm256_loadu_si256((const __m256i *)(blk + 32 * c));
        else
          x8_decode(blk, w);
        const float *xb = xt + 32 * b;
        for (int c = 0; c < 8; c++)
          for (int j = 0; j < 4; j += 2) {
            __m256i i0 = s8 ? _mm256_srai_epi32(_mm256_slli_epi32(w[c], 24 - 8 * j), 24)
                            : _mm256_and_si256(_mm256_srli_epi32(w[c], 8 * j), mff);
            __m256i i1 = s8 ? _mm256_srai_epi32(_mm256_slli_epi32(w[c], 16 - 8 * j), 24)
                            : _mm256_and_si256(_mm256_srli_epi32(w[c], 8 * j + 8), mff);
            ga = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_broadcast_ss(xb + 4 * c + j), ga);
            gb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_broadcast_ss(xb + 4 * c + j + 1), gb);
          }
      }
      acc = _mm256_fmadd_ps(_mm256_add_ps(ga, gb), _mm256_loadu_ps(sc + g * (gst / 4)), acc);
      if (mn)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(mn + g * (gst / 4)),
                              _mm256_set1_ps(gsum[(size_t)t * gss + g]), acc);
    }
    _mm256_storeu_ps(out + 8 * t, acc);
  }
}

static void x8_u4_f32_avx2(const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K,
                           int gs, const float *x, int xs, const float *gsum, int gss, int T,
                           float *out) {
  x8_f32_body(tile, gst, sc, mn, K, gs, x, xs, gsum, gss, T, out, 0);
}

/* GGUF Q4_0x8 tiles: the x8 block dot on the stored nibbles, the -8 applied
 * to the integer sum through the activation block's code sum, then scaled
 * by d_w * d_x (8 rows' f16 scales converted at once). */
static MQ_ALWAYS_INLINE void x8_q4_0_T(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                             const int32_t *bsum, int bs, float *out, const int T) {
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk = tile + (size_t)b * 144;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, 144);
    __m256i w[8];
    x8_decode(blk, w);
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 128)));
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
      __m256i s = _mm256_setzero_si256();
      for (int c = 0; c < 8; c++) {
        int32_t v;
        memcpy(&v, a + 2 + 4 * c, 4);
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(v)));
      }
      __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)),
                                      _mm256_set1_epi32(8 * bsum[(size_t)t * bs + b]));
      __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(fp16_at(a)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q4_0_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  MQ_BY_T(T, x8_q4_0_T, tile, K, act, as, bsum, bs, out)
}

/* GGUF Q4_Kx8 tiles against Q8_K: each sub-block's maddubs sums are scaled
 * by the rows' 6-bit scales inside madd (each row's scale in both int16
 * halves of its lane), the mins meet the Q8_K block sums in a second madd;
 * all integer, then d_x * d and d_x * dmin per super-block, as Q4_K's dot
 * product defines it. Bounds: a sub-block's int16 sums <= 30720, times a
 * scale < 64 and 8 sub-blocks stays far inside int32. */
static MQ_ALWAYS_INLINE void x8_q45_k_T(const uint8_t *tile, int K, const uint8_t *act, size_t as, float *out,
                              const int five, const int T) {
  /* Q5_K: codes up to 31, so the int16 sums are taken per 4 quads (<= 31744) */
  const size_t tb = five ? 1440 : 1184, sc_at = five ? 1280 : 1024;
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk = tile + (size_t)sb * tb;
    /* the whole super-block, 8 KB ahead: prefetching only each sub-block's
     * codes left the scales' lines to stall the loads (Q4_K_M decode on Zen
     * 5, one thread: 44 -> 51 tokens/s) */
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, tb);
    __m256i isc[4], imn[4];
    for (int t = 0; t < T; t++) isc[t] = imn[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
      const uint8_t *sub = blk + 128 * j;
      __m256i w[8];
      x8_decode(sub, w);
      if (five) {
        __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 1024 + 32 * j));
        for (int c = 0; c < 4; c++) {
          w[c] = _mm256_or_si256(w[c], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, c), m1), 4));
          w[c + 4] = _mm256_or_si256(
              w[c + 4], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4 + c), m1), 4));
        }
      }
      __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 8 * j)));
      sc = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
      __m256i mn = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 64 + 8 * j)));
      for (int t = 0; t < T; t++) {
        const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
        __m256i s16 = _mm256_setzero_si256(), s16b = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
          int32_t v;
          memcpy(&v, a + 4 + 32 * j + 4 * c, 4);
          __m256i p = _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(v));
          if (five && c >= 4) s16b = _mm256_add_epi16(s16b, p);
          else s16 = _mm256_add_epi16(s16, p);
        }
        isc[t] = _mm256_add_epi32(isc[t], _mm256_madd_epi16(s16, sc));
        if (five) isc[t] = _mm256_add_epi32(isc[t], _mm256_madd_epi16(s16b, sc));
        int16_t b0, b1;
        memcpy(&b0, a + 260 + 4 * j, 2);
        memcpy(&b1, a + 262 + 4 * j, 2);
        imn[t] = _mm256_add_epi32(imn[t], _mm256_madd_epi16(mn, _mm256_set1_epi32((uint16_t)(int16_t)(b0 + b1))));
      }
    }
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 128)));
    __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 144)));
    for (int t = 0; t < T; t++) {
      float dx;
      memcpy(&dx, act + (size_t)t * as + (size_t)sb * 292, 4);
      __m256 vdx = _mm256_set1_ps(dx);
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, vdx), _mm256_cvtepi32_ps(isc[t]), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, vdx), _mm256_cvtepi32_ps(imn[t]), acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q4_k_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, K, act, as, out, 0)
}

static void x8_q5_k_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, K, act, as, out, 1)
}

static MQ_ALWAYS_INLINE void x8_s8_T(const uint8_t *tile, size_t gst, const float *sc, int K,
                                     int gs, const int8_t *q, int qs, float *out, const int T) {
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst;
    __m256i isum[4];
    for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
    for (int b = b0; b < b1; b++) {
      const uint8_t *blk = gp + (size_t)(b - b0) * 256;
      mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, 256);
      __m256i wa[8], ws[8];
      s8_prep(blk, wa, ws);
      for (int t = 0; t < T; t++)
        isum[t] = _mm256_add_epi32(isum[t], s8_block_dot(wa, ws, q + (size_t)t * qs + 32 * b));
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * 256, gst);
    __m256 s = _mm256_loadu_ps(sc + g * (gst / 4));
    for (int t = 0; t < T; t++) acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), s, acc[t]);
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_s8_q8_avx2(const uint8_t *tile, size_t gst, const float *sc, int K, int gs,
                          const int8_t *q, int qs, int T, float *out) {
  MQ_BY_T(T, x8_s8_T, tile, gst, sc, K, gs, q, qs, out)
}

static void x8_s8a16_q8_avx2(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                             int K, int gs, const int8_t *q, int qs, const float *d, int ds,
                             const float *gsum, int gss, int T, float *out) {
  MQ_BY_T(T, x8_q8_T, tile, gst, sc, mn, K, gs, q, qs, d, ds, gsum, gss, out, 1)
}

static void x8_s8a16_f32_avx2(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                              int K, int gs, const float *x, int xs, const float *gsum, int gss,
                              int T, float *out) {
  x8_f32_body(tile, gst, sc, mn, K, gs, x, xs, gsum, gss, T, out, 1);
}

static MQ_ALWAYS_INLINE void x8_q8_0_T(const uint8_t *tile, int K, const uint8_t *act, size_t as, float *out,
                             const int T) {
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk = tile + (size_t)b * 272;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, 272);
    __m256i wa[8], ws[8];
    s8_prep(blk, wa, ws);
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 256)));
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
      __m256i isum = s8_block_dot(wa, ws, (const int8_t *)(a + 2));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(fp16_at(a))),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q8_0_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q8_0_T, tile, K, act, as, out)
}

/* MXFP8 rows: an E4M3 byte s.eeee.mmm placed as the f16 bits s.0eeee.mmm0000000
 * is its value times 2^-8 (E4M3 subnormals become f16 subnormals, which
 * F16C converts exactly), so 16 codes widen, shift, convert and FMA; the
 * block's 2^(e - 127 + 8) scales the block sum. NaN codes (0x7f/0xff) read
 * as 480 here; writers never store them (the reference gives NaN). */
static inline void e4m3x16(const uint8_t *p, __m256 *lo, __m256 *hi) {
  /* b << 7 puts e.m at bits 7..13 and the sign at bit 14; adding bit 14 to
   * itself carries it into bit 15 */
  __m256i t = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p)), 7);
  __m256i h = _mm256_add_epi16(t, _mm256_and_si256(t, _mm256_set1_epi16(0x4000)));
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

static float dot_mxfp8_f32_avx2(const uint8_t *w, const uint8_t *e, const float *x, int n) {
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 32; b++) {
    mq_prefetch_lines(w + 32 * b + MQ_PREFETCH_AHEAD, 32);
    __m256 w0, w1, w2, w3;
    e4m3x16(w + 32 * b, &w0, &w1);
    e4m3x16(w + 32 * b + 16, &w2, &w3);
    const float *xb = x + 32 * b;
    __m256 s = _mm256_mul_ps(w0, _mm256_loadu_ps(xb));
    s = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + 8), s);
    s = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xb + 16), s);
    s = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xb + 24), s);
    /* 2^(e - 127 + 8): e in 0..255, so the exponent stays within float range
     * except e >= 247 (weights beyond 2^120): computed by parts */
    int ex = (int)e[b] - 127 + 8; /* in [-119, 136] */
    if (ex <= 127) { /* 2^ex built from its exponent bits */
      acc = _mm256_fmadd_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32((ex + 127) << 23)), acc);
    } else { /* beyond float's exponent: by parts (the result overflows unless s is tiny) */
      __m256 big = _mm256_castsi256_ps(_mm256_set1_epi32((ex - 127 + 127) << 23));
      acc = _mm256_fmadd_ps(_mm256_mul_ps(s, big), _mm256_set1_ps(0x1p127f), acc);
    }
  }
  return hsum(acc);
}

/* GGUF Q6_Kx8 tiles against Q8_K (bits 6): 6-bit codes rebuilt from the
 * nibble chunks and the 2-bit planes; Q3_Kx8 (3): codes from the 2-bit and
 * 1-bit planes; Q2_Kx8 (2): from the 2-bit planes. Each 16-column
 * sub-block's maddubs sums (two quads at a time: 2 * 2 * 63 * 128 < 2^15)
 * are scaled by the rows' scales inside madd; the -32 (-4) or Q2_K's mins
 * go through the Q8_K block sums. */
static inline __m256i sc16_of(__m256i v) { /* 8 int32 -> each in both int16 halves */
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16));
}

static MQ_ALWAYS_INLINE void x8_sub16_T(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                        float *out, const int bits, const int T) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
  const size_t tb = bits == 6 ? MQ_X8_Q6_K_BLOCK : bits == 3 ? MQ_X8_Q3_K_BLOCK : MQ_X8_Q2_K_BLOCK;
  const size_t sc_at = bits == 6 ? 1536 : bits == 3 ? 768 : 512;
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk = tile + (size_t)sb * tb;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, tb);
    __m256i isc[4], imn[4];
    for (int t = 0; t < T; t++) isc[t] = imn[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
      __m256i w[8];
      if (bits == 2) {
        const uint8_t *lp = blk + 64 * j;
        __m256i la = _mm256_loadu_si256((const __m256i *)lp),
                lh = _mm256_loadu_si256((const __m256i *)(lp + 32));
        for (int c = 0; c < 4; c++) {
          w[c] = _mm256_and_si256(_mm256_srli_epi16(la, 2 * c), m2);
          w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(lh, 2 * c), m2);
        }
      } else if (bits == 3) { /* low 2 bits from the 2-bit planes, the third from the 1-bit plane */
        const uint8_t *lp = blk + 64 * j;
        __m256i la = _mm256_loadu_si256((const __m256i *)lp),
                lh = _mm256_loadu_si256((const __m256i *)(lp + 32));
        __m256i f = _mm256_loadu_si256((const __m256i *)(blk + 512 + 32 * j));
        for (int c = 0; c < 4; c++) {
          __m256i fa = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(f, c), m1), 2);
          __m256i fb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(f, 4 + c), m1), 2);
          w[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 2 * c), m2), fa);
          w[c + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lh, 2 * c), m2), fb);
        }
      } else {
        const uint8_t *lo = blk + 128 * j, *hb = blk + 1024 + 64 * j;
        __m256i ha = _mm256_loadu_si256((const __m256i *)hb),
                hh = _mm256_loadu_si256((const __m256i *)(hb + 32));
        for (int c = 0; c < 4; c++) {
          __m256i v = _mm256_loadu_si256((const __m256i *)(lo + 32 * c));
          __m256i ua = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(ha, 2 * c), m2), 4);
          __m256i ub = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2 * c), m2), 4);
          w[c] = _mm256_or_si256(_mm256_and_si256(v, m4), ua);
          w[c + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), ub);
        }
      }
      /* sub-blocks 2j, 2j + 1: scales (sa, sbv as int16 pairs) and the
       * factors of their block sums (ma, mb: the scales, or Q2_K's mins) */
      __m256i ma = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j)));
      __m256i mb =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j + 8)));
      __m256i sa, sbv;
      if (bits == 2) { /* scale | min << 4 bytes */
        ma = _mm256_and_si256(ma, _mm256_set1_epi32(255)),
        mb = _mm256_and_si256(mb, _mm256_set1_epi32(255));
        sa = sc16_of(_mm256_and_si256(ma, _mm256_set1_epi32(15)));
        sbv = sc16_of(_mm256_and_si256(mb, _mm256_set1_epi32(15)));
        ma = _mm256_srli_epi32(ma, 4), mb = _mm256_srli_epi32(mb, 4);
      } else {
        sa = sc16_of(ma), sbv = sc16_of(mb);
      }
      for (int t = 0; t < T; t++) {
        const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
        const uint8_t *q = a + 4 + 32 * j;
        __m256i p[8];
        for (int c = 0; c < 8; c++) {
          int32_t v;
          memcpy(&v, q + 4 * c, 4);
          p[c] = _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(v));
        }
        __m256i s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(p[0], p[1]), sa),
                                     _mm256_madd_epi16(_mm256_add_epi16(p[2], p[3]), sa));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_add_epi16(p[4], p[5]), sbv));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_add_epi16(p[6], p[7]), sbv));
        isc[t] = _mm256_add_epi32(isc[t], s);
        int16_t b0, b1;
        memcpy(&b0, a + 260 + 4 * j, 2);
        memcpy(&b1, a + 262 + 4 * j, 2);
        __m256i m = _mm256_add_epi32(_mm256_mullo_epi32(ma, _mm256_set1_epi32(b0)),
                                     _mm256_mullo_epi32(mb, _mm256_set1_epi32(b1)));
        imn[t] = _mm256_add_epi32(imn[t], m);
      }
    }
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 128)));
    for (int t = 0; t < T; t++) {
      float dx;
      memcpy(&dx, act + (size_t)t * as + (size_t)sb * 292, 4);
      __m256 ddx = _mm256_mul_ps(d, _mm256_set1_ps(dx));
      if (bits == 2) { /* d * isc - dmin * (mins . bsums) */
        __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 144)));
        acc[t] = _mm256_fmadd_ps(ddx, _mm256_cvtepi32_ps(isc[t]), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, _mm256_set1_ps(dx)),
                                  _mm256_cvtepi32_ps(imn[t]), acc[t]);
      } else {
        __m256i tot = _mm256_sub_epi32(isc[t], _mm256_slli_epi32(imn[t], bits == 3 ? 2 : 5));
        acc[t] = _mm256_fmadd_ps(ddx, _mm256_cvtepi32_ps(tot), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q6_k_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 6)
}

static void x8_q3_k_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 3)
}

static void x8_q2_k_avx2(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                         const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 2)
}

/* 2^(e - 127 + 8) as a float: e in 0..246 (exponent bits); past that, the
 * caller multiplies by parts */
static void mxfp8_to_f32_avx2(const uint8_t *w, const uint8_t *e, float *dst, int n) {
  for (int b = 0; b < n / 32; b++) {
    __m256 v[4];
    e4m3x16(w + 32 * b, &v[0], &v[1]);
    e4m3x16(w + 32 * b + 16, &v[2], &v[3]);
    int ex = (int)e[b] - 127 + 8; /* in [-119, 136] */
    __m256 sc = _mm256_castsi256_ps(_mm256_set1_epi32((ex <= 127 ? ex + 127 : ex) << 23));
    __m256 sc2 = _mm256_set1_ps(ex <= 127 ? 1.0f : 0x1p127f);
    for (int i = 0; i < 4; i++) _mm256_storeu_ps(dst + 32 * b + 8 * i, _mm256_mul_ps(_mm256_mul_ps(v[i], sc), sc2));
  }
}

static float dot_u8_q8_avx2(const uint8_t *c, const int8_t *q, const float *d, int n) {
  /* codes - 128 are signed; sum c q = sum (c - 128) q + 128 sum q; the
   * signed product uses maddubs(|a|, sign(b, a)) */
  __m256 acc = _mm256_setzero_ps();
  const __m256i off = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi8(1);
  for (int b = 0; b < n / 32; b++) {
    __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(c + 32 * b)), off);
    __m256i qs = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
    __m256i p = dot32_us(_mm256_abs_epi8(a), _mm256_sign_epi8(qs, a));
    __m256i qsum = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, qs), _mm256_set1_epi16(128));
    __m256 sum = _mm256_cvtepi32_ps(_mm256_add_epi32(p, qsum));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d[b]), sum, acc);
  }
  return hsum(acc);
}

/* Q4_0 (fp16 d, 16 bytes: low nibbles elements 0..15, high 16..31, value
 * q - 8) and Q8_0 (fp16 d, 32 int8) rows against Q8_0 activation blocks. */

static inline __m256i signed_dot32(__m256i w, __m256i a) { /* exact: |w| <= 128, |a| <= 127 */
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)),
                           _mm256_set1_epi16(1));
}

static float gguf_q4_0_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m128i m4 = _mm_set1_epi8(15);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 32; b++, x += 18, y += 34) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(x + 2));
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    q = _mm256_sub_epi8(q, eight);
    __m256i a = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 sum = _mm256_cvtepi32_ps(signed_dot32(q, a));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(x) * fp16_at(y)), sum, acc);
  }
  return hsum(acc);
}

static float gguf_q8_0_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 32; b++, x += 34, y += 34) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i a = _mm256_loadu_si256((const __m256i *)(y + 2));
    __m256 sum = _mm256_cvtepi32_ps(signed_dot32(q, a));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(x) * fp16_at(y)), sum, acc);
  }
  return hsum(acc);
}

static inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

static inline int16_t i16_at(const uint8_t *p) {
  int16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* Q4_K: d, dmin (fp16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
 * (chunk c of 64: low nibbles of qs[32c..] are sub-block 2c, high 2c+1).
 * Q8_K: f32 d, 256 int8, 16 int16 sums of 16. */
static float gguf_q4_k_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 144, y += 292) {
    const uint8_t *s = x + 4;
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
      if (j < 4) sc[j] = s[j] & 63, mn[j] = s[j + 4] & 63;
      else sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i q = _mm256_loadu_si256((const __m256i *)(x + 16 + 32 * c));
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + 4 + 64 * c));
      __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + 4 + 64 * c + 32));
      __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), ones);
      __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), ones);
      isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(p0, _mm256_set1_epi32(sc[2 * c])));
      isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(p1, _mm256_set1_epi32(sc[2 * c + 1])));
    }
    int msum = 0;
    for (int j = 0; j < 16; j++) msum += i16_at(y + 260 + 2 * j) * mn[j / 2];
    float dy;
    memcpy(&dy, y, 4);
    sumf += fp16_at(x) * dy * (float)hsum_i32(isum) - fp16_at(x + 2) * dy * (float)msum;
  }
  return sumf;
}

/* Q6_K: ql[128], qh[64], 16 int8 scales (one per 16), fp16 d; values q - 32
 * (the -32 is taken out through Q8_K's sums of 16). */
static float gguf_q6_k_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 210, y += 292) {
    const int8_t *sc = (const int8_t *)(x + 192);
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i ql0 = _mm256_loadu_si256((const __m256i *)(x + 64 * h));
      __m256i ql1 = _mm256_loadu_si256((const __m256i *)(x + 64 * h + 32));
      __m256i qh = _mm256_loadu_si256((const __m256i *)(x + 128 + 32 * h));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
      for (int k = 0; k < 4; k++) {
        int e0 = 128 * h + 32 * k; /* first element of these 32 */
        __m256i yy = _mm256_loadu_si256((const __m256i *)(y + 4 + e0));
        __m256i p = _mm256_maddubs_epi16(q[k], yy); /* 16 pairs, lanes 0-7: first 16 elements */
        __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[e0 / 16 + 1]), _mm_set1_epi16(sc[e0 / 16]));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scv));
      }
    }
    int off = 0;
    for (int j = 0; j < 16; j++) off += sc[j] * i16_at(y + 260 + 2 * j);
    float dy;
    memcpy(&dy, y, 4);
    sumf += fp16_at(x + 208) * dy * (float)(hsum_i32(isum) - 32 * off);
  }
  return sumf;
}

int mq_kern_fill_avx2(mq_kernels *k) {
  if (!mq_cpu_has_avx2()) return 0;
  k->name = "avx2";
  k->dot_f32 = dot_f32_avx2;
  k->dot_rows_f32 = dot_rows_f32_avx2;
  k->axpy_rows_f32 = axpy_rows_f32_avx2;
  k->softmax_f32 = softmax_f32_avx2;
  k->swiglu_f32 = swiglu_f32_avx2;
  k->dot4x4_f32 = dot4x4_f32_avx2;
  k->f16_to_f32 = f16_to_f32_avx2;
  k->q8_0_to_f32 = q8_0_to_f32_avx2;
  k->gguf_q8_x86 = gguf_q8_x86_avx2;
  k->quantize_q8_32 = quantize_q8_32_avx2;
  k->bf16_to_f32 = bf16_to_f32_avx2;
  k->dot_f16_f32 = dot_f16_f32_avx2;
  k->dot_bf16_f32 = dot_bf16_f32_avx2;
  k->dot_u4_f32 = dot_u4_f32_avx2;
  k->dot_u8_f32 = dot_u8_f32_avx2;
  k->dot_s8_f32 = dot_s8_f32_avx2;
  k->dot_s8s8 = dot_s8s8_avx2;
  k->dot_u4_q8 = dot_u4_q8_avx2;
  k->dot_u8_q8 = dot_u8_q8_avx2;
  k->dot4_u4_q8 = dot4_u4_q8_avx2;
  k->dot_mxfp8_f32 = dot_mxfp8_f32_avx2;
  k->mxfp8_to_f32 = mxfp8_to_f32_avx2;
  k->x8_u4_q8 = x8_u4_q8_avx2;
  k->x8_u4_f32 = x8_u4_f32_avx2;
  k->x8_s8a16_q8 = x8_s8a16_q8_avx2;
  k->x8_s8a16_f32 = x8_s8a16_f32_avx2;
  k->x8_q4_0 = x8_q4_0_avx2;
  k->x8_q4_k = x8_q4_k_avx2;
  k->x8_q5_k = x8_q5_k_avx2;
  k->x8_q6_k = x8_q6_k_avx2;
  k->x8_q3_k = x8_q3_k_avx2;
  k->x8_q2_k = x8_q2_k_avx2;
  k->x8_s8_q8 = x8_s8_q8_avx2;
  k->x8_q8_0 = x8_q8_0_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q4_0] = gguf_q4_0_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q8_0] = gguf_q8_0_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q4_K] = gguf_q4_k_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q6_K] = gguf_q6_k_avx2;
  return 1;
}
#endif
