/* The avx512bf16 tier: the AVX-512 tier plus MXFP8 kernels for CPUs with
 * AVX-512 VBMI and BF16 (Zen 4/5, Sapphire Rapids and later). Every E4M3
 * value and every MXFP8 activation (E4M3 times a power of two) is exact in
 * bf16, and a product of two of them is exact in float, so vdpbf16ps (32
 * products an instruction) computes the same sums as the float kernels, in
 * another order. E4M3 -> bf16 is two 128-entry byte tables (vpermt2b: the
 * high and the low byte of each value) and an unpack, against the float
 * tier's widen, shift, add and two F16C conversions per 32 codes.
 *
 * The unpack works within 128-bit lanes, so 64 codes come out as two vectors
 * of 32 halves in the order of bf16_pos below; activations and converted
 * rows are stored in that order (callers only pass them back), padded to a
 * multiple of 64 with zeros. */
#include "kernels/kernels.h"

#if defined(MQ_SCALAR_ONLY) || !(defined(__x86_64__) || defined(__i386__))
int mq_kern_fill_avx512bf16(mq_kernels *k) {
  (void)k;
  return 0;
}
#else
#include <immintrin.h>

#include "core/cpu.h"
#include "core/numconv.h"
#include "kernels/prefetch.h"

/* The stored order of a 64-value chunk: unpacklo takes bytes 0..7 of each
 * 128-bit lane (value 16L + j goes to position 8L + j), unpackhi bytes 8..15
 * (16L + 8 + j to 32 + 8L + j). Dword lanes 0..7 of either vector thus hold
 * values of the chunk's first 32-block, lanes 8..15 of its second. */
static __m512i g_hi0, g_hi1, g_lo0, g_lo1; /* the two bytes of bf16(e4m3(c & 0x7f)) */

static void init_tables(void) {
  uint8_t hi[128], lo[128];
  for (int c = 0; c < 128; c++) {
    uint32_t u = mq_f32_to_bits(mq_e4m3_to_f32((uint8_t)c)); /* exact in bf16; 0x7f: NaN */
    hi[c] = (uint8_t)(u >> 24), lo[c] = (uint8_t)(u >> 16);
  }
  g_hi0 = _mm512_loadu_si512(hi), g_hi1 = _mm512_loadu_si512(hi + 64);
  g_lo0 = _mm512_loadu_si512(lo), g_lo1 = _mm512_loadu_si512(lo + 64);
}

/* 64 codes (m: which bytes to load) into 32 + 32 bf16 halves, unscaled. */
static inline __attribute__((always_inline)) void e4m3x64(const uint8_t *w, __mmask64 m,
                                                          __m512i *w0, __m512i *w1) {
  __m512i c = _mm512_maskz_loadu_epi8(m, w);
  __m512i hi = _mm512_permutex2var_epi8(g_hi0, c, g_hi1);
  hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8((char)0x80), 0xF8); /* | sign */
  __m512i lo = _mm512_permutex2var_epi8(g_lo0, c, g_lo1);
  *w0 = _mm512_unpacklo_epi8(lo, hi), *w1 = _mm512_unpackhi_epi8(lo, hi);
}

/* Block scales 2^(e - 127) of up to 16 blocks as floats (e = 0: 2^-127,
 * subnormal; 0xFF, NaN, is refused at load and reads as inf here). */
static inline __m512 scales16(const uint8_t *e, int nb) {
  __m128i b = _mm_maskz_loadu_epi8((__mmask16)(nb >= 16 ? 0xffff : (1u << nb) - 1), e);
  __m512i v = _mm512_slli_epi32(_mm512_cvtepu8_epi32(b), 23);
  return _mm512_castsi512_ps(_mm512_max_epi32(v, _mm512_set1_epi32(0x00400000)));
}

/* Activations: exact when every value is bf16 (MXFP8 activations are, except
 * float subnormals, which vdpbf16ps would read as zero). */
static int mxfp8_act_bf16_avx512bf16(const float *x, uint16_t *xb, int n) {
  const __m512i i0 = _mm512_set_epi16(55, 54, 53, 52, 51, 50, 49, 48, 39, 38, 37, 36, 35, 34, 33,
                                      32, 23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i i1 = _mm512_add_epi16(i0, _mm512_set1_epi16(8));
  __mmask16 bad = 0;
  for (int c = 0; c < n; c += 64) {
    __m512i h[2]; /* values c..c+31 and c+32..c+63 as bf16 in natural order */
    for (int p = 0; p < 2; p++) {
      __m256i part[2];
      for (int q = 0; q < 2; q++) {
        int i = c + 32 * p + 16 * q, left = n - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        __m512i v = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + (left > 0 ? i : 0)));
        /* inexact: low half bits set, or a nonzero value below FLT_MIN */
        __m512i a = _mm512_and_si512(v, _mm512_set1_epi32(0x7fffffff));
        bad |= _mm512_test_epi32_mask(v, _mm512_set1_epi32(0xffff)) |
               _mm512_mask_cmplt_epi32_mask(_mm512_test_epi32_mask(a, a), a,
                                            _mm512_set1_epi32(0x00800000));
        part[q] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16));
      }
      h[p] = _mm512_inserti64x4(_mm512_castsi256_si512(part[0]), part[1], 1);
    }
    _mm512_storeu_si512(xb + c, _mm512_permutex2var_epi16(h[0], i0, h[1]));
    _mm512_storeu_si512(xb + c + 32, _mm512_permutex2var_epi16(h[0], i1, h[1]));
  }
  return bad == 0;
}

/* The dot of 64 codes (or 32: m) with their 64 activation halves: dword
 * lanes 0..7 hold the first block's sum, 8..15 the second's. */
static inline __attribute__((always_inline)) __m512 chunk_dot(const uint8_t *w, __mmask64 m,
                                                              const uint16_t *xb) {
  __m512i w0, w1;
  e4m3x64(w, m, &w0, &w1);
  __m512 d = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)w0,
                              (__m512bh)_mm512_loadu_si512(xb));
  return _mm512_dpbf16_ps(d, (__m512bh)w1, (__m512bh)_mm512_loadu_si512(xb + 32));
}

/* sum over blocks of 2^(e[b] - 127) * sum e4m3(w) * x, x as the activations
 * function stored it. 16 blocks a step: their scales loaded once (the
 * exponent stream prefetched as the codes are), each chunk's pair picked by
 * one permute; two accumulators. */
static float dot_mxfp8_bf16_avx512bf16(const uint8_t *w, const uint8_t *e, const uint16_t *xb,
                                       int n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int nb = n / 32;
  const __m512i pick0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i two = _mm512_set1_epi32(2);
  int b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) {
    /* mq_prefetch_lines(e + b0 + MQ_PREFETCH_AHEAD / 32, 16); */
    __m512 sc = scales16(e + b0, 16);
    __m512i pick = pick0;
    for (int c = 0; c < 8; c += 2) {
      const uint8_t *wc = w + 32 * (b0 + 2 * c);
      mq_prefetch_lines(wc + MQ_PREFETCH_AHEAD, 128);
      __m512 d0 = chunk_dot(wc, ~(__mmask64)0, xb + 32 * (b0 + 2 * c));
      acc0 = _mm512_fmadd_ps(d0, _mm512_permutexvar_ps(pick, sc), acc0);
      pick = _mm512_add_epi32(pick, two);
      __m512 d1 = chunk_dot(wc + 64, ~(__mmask64)0, xb + 32 * (b0 + 2 * c) + 64);
      acc1 = _mm512_fmadd_ps(d1, _mm512_permutexvar_ps(pick, sc), acc1);
      pick = _mm512_add_epi32(pick, two);
    }
  }
  if (b0 < nb) { /* the last 1..15 blocks; an odd last one: its 32 codes, zeros after */
    __m512 sc = scales16(e + b0, nb - b0);
    __m512i pick = pick0;
    for (int b = b0; b < nb; b += 2) {
      __m512 d = chunk_dot(w + 32 * b, b + 1 < nb ? ~(__mmask64)0 : (__mmask64)0xffffffffu,
                           xb + 32 * b);
      acc0 = _mm512_fmadd_ps(d, _mm512_permutexvar_ps(pick, sc), acc0);
      pick = _mm512_add_epi32(pick, two);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* A row with its block scales folded in (prefill): the exponent of each
 * nonzero, non-NaN half raised by e - 127, exact when every block has
 * 10 <= e <= 246 (E4M3 magnitudes 2^-9 .. 448 stay normal bf16); returns 0
 * otherwise, and the caller takes the float path. */
static int mxfp8_to_bf16_avx512bf16(const uint8_t *w, const uint8_t *e, uint16_t *dst, int n) {
  const int nb = n / 32;
  for (int b = 0; b < nb; b++)
    if (e[b] < 10 || e[b] > 246) return 0;
  for (int b = 0; b < nb; b += 2) {
    __m512i w0, w1;
    int two = b + 1 < nb;
    mq_prefetch_lines(w + 32 * b + MQ_PREFETCH_AHEAD, 64); /* the first reads from DRAM */
    e4m3x64(w + 32 * b, two ? ~(__mmask64)0 : (__mmask64)0xffffffffu, &w0, &w1);
    /* halves 0..15 of each vector: block b; 16..31: block b + 1 */
    int d0 = (int)e[b] - 127, d1 = two ? (int)e[b + 1] - 127 : 0;
    __m512i dv = _mm512_mask_set1_epi16(_mm512_set1_epi16((short)(d0 * 128)), 0xffff0000u,
                                        (short)(d1 * 128));
    __m512i out[2] = {w0, w1};
    for (int p = 0; p < 2; p++) {
      __m512i mag = _mm512_and_si512(out[p], _mm512_set1_epi16(0x7fff));
      /* nonzero and finite: mag - 1 < 0x7f7f unsigned */
      __mmask32 live = _mm512_cmplt_epu16_mask(_mm512_sub_epi16(mag, _mm512_set1_epi16(1)),
                                               _mm512_set1_epi16(0x7f7f));
      out[p] = _mm512_mask_add_epi16(out[p], live, out[p], dv);
      _mm512_storeu_si512(dst + 32 * b + 32 * p, out[p]);
    }
  }
  return 1;
}

/* 4 rows x 4 tokens of bf16 (n halves, a multiple of 32): 16 accumulators,
 * 8 loads per 16 vdpbf16ps. */
#define MQ_BF16_TOKEN(t)                                                                           \
  {                                                                                                \
    __m512bh v = (__m512bh)_mm512_loadu_si512(x[t] + k);                                           \
    c##t##0 = _mm512_dpbf16_ps(c##t##0, a0, v), c##t##1 = _mm512_dpbf16_ps(c##t##1, a1, v);        \
    c##t##2 = _mm512_dpbf16_ps(c##t##2, a2, v), c##t##3 = _mm512_dpbf16_ps(c##t##3, a3, v);        \
  }
static void dot4x4_bf16_avx512bf16(const uint16_t *const w[4], const uint16_t *const x[4], int n,
                                   float out[16]) {
  const __m512 z = _mm512_setzero_ps();
  __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  __m512 c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  for (int k = 0; k < n; k += 32) {
    __m512bh a0 = (__m512bh)_mm512_loadu_si512(w[0] + k), a1 = (__m512bh)_mm512_loadu_si512(w[1] + k);
    __m512bh a2 = (__m512bh)_mm512_loadu_si512(w[2] + k), a3 = (__m512bh)_mm512_loadu_si512(w[3] + k);
    MQ_BF16_TOKEN(0) MQ_BF16_TOKEN(1) MQ_BF16_TOKEN(2) MQ_BF16_TOKEN(3)
  }
  const __m512 c[16] = {c00, c01, c02, c03, c10, c11, c12, c13,
                        c20, c21, c22, c23, c30, c31, c32, c33};
  for (int i = 0; i < 16; i++) out[i] = _mm512_reduce_add_ps(c[i]);
}
#undef MQ_BF16_TOKEN

int mq_kern_fill_avx512bf16(mq_kernels *k) {
  if (!mq_cpu_has_avx512bf16()) return 0;
  init_tables();
  k->name = "avx512bf16";
  k->mxfp8_act_bf16 = mxfp8_act_bf16_avx512bf16;
  k->dot_mxfp8_bf16 = dot_mxfp8_bf16_avx512bf16;
  k->mxfp8_to_bf16 = mxfp8_to_bf16_avx512bf16;
  k->dot4x4_bf16 = dot4x4_bf16_avx512bf16;
  return 1;
}
#endif
