/* AVX-512 (BW) row kernels for the GGUF K-quants without an x8 form, Q2_K
 * and Q3_K against Q8_K: the AVX2 kernels' sums (avx2_gguf.c) with two
 * 32-element groups per zmm instead of one. The codes of groups j and j + 1
 * come from the same 32 bytes shifted by per-half counts; maddubs pairs
 * (unsigned codes <= 7 times int8: no saturation), then madd with each
 * 16-element sub-block's scale, whose int16 lanes one word permute spreads
 * over the four 128-bit lanes. The integer sums equal the scalar
 * definition's; the float combination is AVX2's (one accumulator vector per
 * row). Compiled with the avx512 tier's flags (this file only); the AVX2
 * kernels were compute-bound at ~13 GB/s a core. */
#include "kernels/kernels.h"

#if defined(MQ_SCALAR_ONLY) || !(defined(__x86_64__) || defined(__i386__))
void mq_kern_fill_avx512_gguf(mq_kernels *k) { (void)k; }
#else
#include "kernels/gguf_x86.h"
#include "quant/gguf_types.h"

static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* The 32 bytes at p in both halves. */
static inline __m512i both_halves(const uint8_t *p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

/* int16 shift counts: a in the low half's 16 lanes, b in the high half's */
static inline __m512i counts(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
}

/* The scales of sub-blocks s0 .. s0 + 3 (of the 16 int16 in scv), one per
 * 128-bit lane: 16 elements' maddubs pairs each. */
static inline __m512i scales4(__m256i scv, int s0) {
  const __m512i lane =
      _mm512_cvtepu8_epi16(_mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  return _mm512_permutexvar_epi16(_mm512_add_epi16(lane, _mm512_set1_epi16((short)s0)),
                                  _mm512_castsi256_si512(scv));
}

static inline __m256i fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* Q2_K (84 bytes: 16 bytes scale | min << 4, 64 bytes of 2-bit codes, f16 d,
 * f16 dmin): element 128h + 32j + l is (qs[32h + l] >> 2j) & 3. */
static float gguf_q2_k_avx512(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (int b = 0; b < n / 256; b++, x += 84, y += 292) {
    __m128i raw = _mm_loadu_si128((const __m128i *)x);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    __m256i summs = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)));
    __m256i scv = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
    const uint8_t *q8 = Q8K_QS(y);
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
      __m512i qv = both_halves(x + 16 + 32 * h);
      for (int j = 0; j < 4; j += 2) {
        __m512i u = _mm512_and_si512(_mm512_srlv_epi16(qv, counts(2 * j, 2 * j + 2)), m3);
        __m512i p = _mm512_maddubs_epi16(u, _mm512_loadu_si512(q8 + 128 * h + 32 * j));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, scales4(scv, 8 * h + 2 * j)));
      }
    }
    float dy = f32_at(y);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * f16_at(x + 80)), _mm256_cvtepi32_ps(fold(isum)), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(dy * f16_at(x + 82)), _mm256_cvtepi32_ps(summs), accm);
  }
  return hsum256(_mm256_sub_ps(acc, accm));
}

/* Q3_K (110 bytes: hmask[32], 64 bytes of 2-bit codes, 12 scale bytes, f16
 * d): element 128h + 32j + l has the 2 low bits as Q2_K and, where bit
 * 4h + j of hmask[l] is clear, minus 4; computed as (q + 4 hbit) in 0..7,
 * less 4 * scale * bsum per sub-block. */
static float gguf_q3_k_avx512(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m512i m3 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 256; b++, x += 110, y += 292) {
    __m256i scv = q3k_scales(x + 96);
    __m256i corr = _mm256_madd_epi16(scv, _mm256_loadu_si256((const __m256i *)Q8K_BSUMS(y)));
    const uint8_t *q8 = Q8K_QS(y);
    __m512i hm = both_halves(x), isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
      __m512i qv = both_halves(x + 32 + 32 * h);
      for (int j = 0; j < 4; j += 2) {
        __m512i lo = _mm512_and_si512(_mm512_srlv_epi16(qv, counts(2 * j, 2 * j + 2)), m3);
        __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(hm, counts(4 * h + j, 4 * h + j + 1)), m1);
        __m512i u = _mm512_or_si512(lo, _mm512_slli_epi16(hb, 2));
        __m512i p = _mm512_maddubs_epi16(u, _mm512_loadu_si512(q8 + 128 * h + 32 * j));
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, scales4(scv, 8 * h + 2 * j)));
      }
    }
    __m256i tot = _mm256_sub_epi32(fold(isum), _mm256_slli_epi32(corr, 2));
    acc =
        _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x + 108) * f32_at(y)), _mm256_cvtepi32_ps(tot), acc);
  }
  return hsum256(acc);
}

void mq_kern_fill_avx512_gguf(mq_kernels *k) {
  k->gguf_dot[MQ_GGML_TYPE_Q2_K] = gguf_q2_k_avx512;
  k->gguf_dot[MQ_GGML_TYPE_Q3_K] = gguf_q3_k_avx512;
}
#endif
