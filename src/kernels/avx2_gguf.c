/* AVX2 kernels for the GGUF block types that avx2.c does not cover:
 * Q4_1, Q5_0, Q5_1, IQ4_NL (32-element blocks against Q8_0 / Q8_1
 * activations), Q2_K, Q3_K, Q5_K, IQ4_XS (256-element super-blocks against
 * Q8_K). (F16 rows are computed as float rows: kernels/linear_gguf.c.)
 * Compiled with -mavx2 -mfma
 * -mf16c (this file only); dispatch.c calls the fill only on CPUs with them.
 *
 * Each kernel computes the same integer sums as the scalar definition
 * (mq_gguf_vec_dot, quant/gguf_blocks.c) exactly, then combines them with the
 * same scales; only the order of the float additions differs (block terms
 * are summed in vector lanes, K-quant sub-block scales are applied in
 * integers before the one float multiply per super-block).
 *
 * Integer bounds (all exact, no saturation): maddubs pairs stay below 2^15
 * because the unsigned operand is at most 31 (Q5), 7 (Q3_K + 4) or the
 * magnitude of a signed weight (at most 128) while activation bytes are
 * within [-127, 127] (every quantizer produces that for finite inputs);
 * scale multiplies go through madd_epi16 (|scale| <= 63). */
#include "kernels/kernels.h"

#if defined(MQ_SCALAR_ONLY) || !(defined(__x86_64__) || defined(__i386__))
void mq_kern_fill_avx2_gguf(mq_kernels *k) { (void)k; }
#else
#include <immintrin.h>
#include <string.h>

#include "quant/gguf_blocks.h"

/* ---- loads, the Q8_K layout, Q3_K scales (rows carry no alignment) ---- */

static inline float f16_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

static inline float f32_at(const uint8_t *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}

/* Q8_K (292 bytes): f32 d, 256 int8, 16 int16 sums of 16 */
#define Q8K_QS(y) ((y) + 4)
#define Q8K_BSUMS(y) ((y) + 260)

/* Q3_K's 16 scales (6 bits, minus 32) as int16. The 12 scale bytes s: low
 * nibbles of s[0..7] are scales 0..7, high nibbles 8..15; the two high
 * bits of scale i are bits 2(i/4).. of s[8 + i%4]. */
static inline __m256i q3k_scales(const uint8_t *s) {
  __m128i v = _mm_loadl_epi64((const __m128i *)s);
  __m128i lo = _mm_and_si128(_mm_unpacklo_epi64(v, _mm_srli_epi16(v, 4)), _mm_set1_epi8(15));
  uint32_t h;
  memcpy(&h, s + 8, 4);
  /* 32-bit lane k holds s[8..11] shifted right by 2k: byte i%4 of lane i/4 */
  __m128i hi = _mm_srlv_epi32(_mm_set1_epi32((int)h), _mm_setr_epi32(0, 2, 4, 6));
  hi = _mm_slli_epi16(_mm_and_si128(hi, _mm_set1_epi8(3)), 4);
  __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, hi), _mm_set1_epi8(32));
  return _mm256_cvtepi8_epi16(sc);
}

/* ---- loads and reductions (rows carry no alignment) ---- */

static inline __m256i ld256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i ld128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

static inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

/* ---- shared pieces ---- */

/* The 32 nibbles of a 16-byte Q4_1/Q5_x/IQ4 block in element order: low
 * nibbles (elements 0..15) in the low 128-bit lane, high nibbles above. */
static inline __m256i nibbles32(const uint8_t *qs) {
  const __m128i m4 = _mm_set1_epi8(15);
  __m128i raw = ld128(qs);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
}

/* Q5_0 / Q5_1 fifth bits: bit j of the little-endian u32 at qh becomes
 * 0x10 in byte j (0 where clear). */
static inline __m256i fifth_bits(const uint8_t *qh) {
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, /* */
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
  uint32_t h;
  memcpy(&h, qh, 4);
  __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread); /* byte j: byte j/8 of qh */
  b = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
  return _mm256_and_si256(b, _mm256_set1_epi8(0x10));
}

/* sum over 32 bytes of u * a (u unsigned, a signed), adjacent pairs weighted
 * by the int16 lanes of s: 8 int32 lanes. */
static inline __m256i udot32(__m256i u, __m256i a, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), s);
}

/* The same for signed w (|w| <= 128): |w| * (a with w's sign). */
static inline __m256i sdot32(__m256i w, __m256i a, __m256i s) {
  return udot32(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w), s);
}

/* The 16 int16 sub-block scales scv of a K-quant super-block, half h
 * (scales 8h..8h+7) in both 128-bit lanes. */
static inline __m256i scales_half(__m256i scv, int h) {
  return h ? _mm256_permute2x128_si256(scv, scv, 0x11) : _mm256_permute2x128_si256(scv, scv, 0x00);
}

/* From a scales_half: int16 lanes 0..7 = scale 2j, lanes 8..15 = scale 2j + 1
 * of the half, matching a 32-byte group's maddubs pairs (low lane = first
 * 16 elements). */
static inline __m256i scale_pair(__m256i sch, int j) {
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, /* */
                                        2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  return _mm256_shuffle_epi8(sch, _mm256_add_epi8(pick, _mm256_set1_epi8((char)(4 * j))));
}

/* The IQ4_NL codebook in both 128-bit lanes, for shuffle lookups. */
static inline __m256i iq4_table(void) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)mq_iq4nl_values));
}

/* ---- 32-element blocks ---- */

/* Q4_1 (20 bytes: f16 d, f16 m, 16 nibble bytes; value d q + m) against Q8_1
 * (36 bytes: f16 d, f16 s = d sum(q), 32 int8): d_w d_a isum + m_w s_a. */
static float gguf_q4_1_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i one = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  float summ = 0;
  for (int b = 0; b < n / 32; b++, x += 20, y += 36) {
    __m256i s = udot32(nibbles32(x + 4), ld256(y + 4), one);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x) * f16_at(y)), _mm256_cvtepi32_ps(s), acc);
    summ += f16_at(x + 2) * f16_at(y + 2);
  }
  return hsum_ps(acc) + summ;
}

/* Q5_0 (22 bytes: f16 d, u32 qh, 16 nibble bytes; value d (q - 16)) against Q8_0. */
static float gguf_q5_0_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i one = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi8(16);
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 32; b++, x += 22, y += 34) {
    __m256i w = _mm256_sub_epi8(_mm256_or_si256(nibbles32(x + 6), fifth_bits(x + 2)), sixteen);
    __m256i s = sdot32(w, ld256(y + 2), one);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x) * f16_at(y)), _mm256_cvtepi32_ps(s), acc);
  }
  return hsum_ps(acc);
}

/* Q5_1 (24 bytes: f16 d, f16 m, u32 qh, 16 nibble bytes; value d q + m) against Q8_1. */
static float gguf_q5_1_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i one = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  float summ = 0;
  for (int b = 0; b < n / 32; b++, x += 24, y += 36) {
    __m256i q = _mm256_or_si256(nibbles32(x + 8), fifth_bits(x + 4));
    __m256i s = udot32(q, ld256(y + 4), one);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x) * f16_at(y)), _mm256_cvtepi32_ps(s), acc);
    summ += f16_at(x + 2) * f16_at(y + 2);
  }
  return hsum_ps(acc) + summ;
}

/* IQ4_NL (18 bytes: f16 d, 16 nibble bytes indexing the codebook) against Q8_0. */
static float gguf_iq4_nl_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i one = _mm256_set1_epi16(1), tab = iq4_table();
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < n / 32; b++, x += 18, y += 34) {
    __m256i w = _mm256_shuffle_epi8(tab, nibbles32(x + 2));
    __m256i s = sdot32(w, ld256(y + 2), one);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x) * f16_at(y)), _mm256_cvtepi32_ps(s), acc);
  }
  return hsum_ps(acc);
}

/* ---- 256-element super-blocks against Q8_K ---- */

/* Q2_K (84 bytes: 16 bytes scale | min << 4, 64 bytes of 2-bit codes, f16 d,
 * f16 dmin). Element 128h + 32j + l is (qs[32h + l] >> 2j) & 3; value
 * d sc q - dmin m per 16-element sub-block; the mins go through bsums. */
static float gguf_q2_k_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(15);
  /* per super-block: dall * isum - dmin * summs in vector lanes, one
   * horizontal sum per row */
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (int b = 0; b < n / 256; b++, x += 84, y += 292) {
    __m128i raw = ld128(x);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    __m256i summs = _mm256_madd_epi16(mins, ld256(Q8K_BSUMS(y)));
    __m256i scv = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
    const uint8_t *q8 = Q8K_QS(y);
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i sch = scales_half(scv, h), qv = ld256(x + 16 + 32 * h);
      for (int j = 0; j < 4; j++, qv = _mm256_srli_epi16(qv, 2)) {
        __m256i q = _mm256_and_si256(qv, m3);
        isum = _mm256_add_epi32(isum, udot32(q, ld256(q8 + 128 * h + 32 * j), scale_pair(sch, j)));
      }
    }
    float dy = f32_at(y);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * f16_at(x + 80)), _mm256_cvtepi32_ps(isum), acc);
    accm = _mm256_fmadd_ps(_mm256_set1_ps(dy * f16_at(x + 82)), _mm256_cvtepi32_ps(summs), accm);
  }
  return hsum_ps(_mm256_sub_ps(acc, accm));
}

/* Q3_K (110 bytes: hmask[32], 64 bytes of 2-bit codes, 12 scale bytes, f16
 * d). Element 128h + 32j + l: 2 low bits as Q2_K, minus 4 where bit 4h + j of
 * hmask[l] is clear. Computed as (q + 4 hbit) in 0..7 times the activations,
 * less 4 * scale * bsum per sub-block. */
static float gguf_q3_k_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps(); /* d * isum per super-block, in lanes */
  for (int b = 0; b < n / 256; b++, x += 110, y += 292) {
    __m256i scv = q3k_scales(x + 96);
    /* the -4 of clear hmask bits: 4 * scale * bsum per sub-block */
    __m256i isum = _mm256_slli_epi32(_mm256_madd_epi16(scv, ld256(Q8K_BSUMS(y))), 2);
    isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
    const uint8_t *q8 = Q8K_QS(y);
    __m256i hm = ld256(x);
    for (int h = 0; h < 2; h++) {
      __m256i sch = scales_half(scv, h), qv = ld256(x + 32 + 32 * h);
      for (int j = 0; j < 4; j++) { /* hmask bit 4h + j: shift hm once per group */
        __m256i u = _mm256_or_si256(_mm256_and_si256(qv, m3),
                                    _mm256_slli_epi16(_mm256_and_si256(hm, m1), 2));
        isum = _mm256_add_epi32(isum, udot32(u, ld256(q8 + 128 * h + 32 * j), scale_pair(sch, j)));
        qv = _mm256_srli_epi16(qv, 2);
        hm = _mm256_srli_epi16(hm, 1);
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(x + 108) * f32_at(y)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum_ps(acc);
}

/* Q4_K / Q5_K 6-bit scales and mins of the 8 sub-blocks (12 bytes at s),
 * as 8 bytes each: sub-blocks 0..3 take the low 6 bits of s[0..3] (scales)
 * and s[4..7] (mins); 4..7 take the nibbles of s[8..11] (scale low, min
 * high) plus the top 2 bits of s[0..3] / s[4..7] as bits 4..5. */
static inline void k4_scales(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
  uint32_t a0, a1, a2;
  memcpy(&a0, s, 4), memcpy(&a1, s + 4, 4), memcpy(&a2, s + 8, 4);
  const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, top = 0x30303030u;
  *sc = (a0 & m6) | (uint64_t)((a2 & m4) | ((a0 >> 2) & top)) << 32;
  *mn = (a1 & m6) | (uint64_t)(((a2 >> 4) & m4) | ((a1 >> 2) & top)) << 32;
}

/* Q5_K (176 bytes: f16 d, f16 dmin, 12 scale bytes, qh[32], qs[128]). Chunk
 * c of 64 elements: low nibbles of qs[32c + l] plus 16 * bit 2c of qh[l],
 * then high nibbles plus 16 * bit 2c + 1; value d sc q - dmin m per 32. */
static float gguf_q5_k_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i m4 = _mm256_set1_epi8(15), m1 = _mm256_set1_epi8(1);
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 176, y += 292) {
    uint64_t sc64, mn64;
    k4_scales(x + 4, &sc64, &mn64);
    uint8_t sc[8], mn[8];
    memcpy(sc, &sc64, 8), memcpy(mn, &mn64, 8);
    /* mins: sum_j mn[j] * (bsums[2j] + bsums[2j + 1]) */
    __m256i bs = _mm256_madd_epi16(ld256(Q8K_BSUMS(y)), _mm256_set1_epi16(1));
    __m128i bs16 = _mm_packs_epi32(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    __m128i mns = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn)), bs16);
    mns = _mm_add_epi32(mns, _mm_shuffle_epi32(mns, 0x4e));
    int32_t msum = _mm_cvtsi128_si32(_mm_add_epi32(mns, _mm_shuffle_epi32(mns, 0xb1)));
    const uint8_t *q8 = Q8K_QS(y);
    __m256i hv = ld256(x + 16), isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i qv = ld256(x + 48 + 32 * c);
      __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hv, m1), 4));
      hv = _mm256_srli_epi16(hv, 1);
      __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hv, m1), 4));
      hv = _mm256_srli_epi16(hv, 1);
      isum = _mm256_add_epi32(isum, udot32(lo, ld256(q8 + 64 * c), _mm256_set1_epi16((short)sc[2 * c])));
      isum = _mm256_add_epi32(isum, udot32(hi, ld256(q8 + 64 * c + 32), _mm256_set1_epi16((short)sc[2 * c + 1])));
    }
    float dy = f32_at(y);
    sumf += f16_at(x) * dy * (float)hsum_i32(isum) - f16_at(x + 2) * dy * (float)msum;
  }
  return sumf;
}

/* IQ4_XS (136 bytes: f16 d, u16 high scale bits, 4 bytes of low scale
 * nibbles, 8 sub-blocks of 16 nibble bytes as IQ4_NL): value
 * d (ls - 32) codebook[q] per 32. */
static float gguf_iq4_xs_avx2(int n, const void *wv, const void *av) {
  const uint8_t *x = wv, *y = av;
  const __m256i tab = iq4_table();
  float sumf = 0;
  for (int b = 0; b < n / 256; b++, x += 136, y += 292) {
    unsigned hbits = (unsigned)(x[2] | x[3] << 8);
    const uint8_t *q8 = Q8K_QS(y);
    __m256i isum = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib++) {
      int ls = (((x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((hbits >> (2 * ib)) & 3) << 4) - 32;
      __m256i w = _mm256_shuffle_epi8(tab, nibbles32(x + 8 + 16 * ib));
      isum = _mm256_add_epi32(isum, sdot32(w, ld256(q8 + 32 * ib), _mm256_set1_epi16((short)ls)));
    }
    sumf += f16_at(x) * f32_at(y) * (float)hsum_i32(isum);
  }
  return sumf;
}

/* ---- F16 rows against f32 activations: products in f32 (exact for the
 * f16-rounded activations linear_gguf.c passes), sums in double as the
 * scalar definition ---- */

void mq_kern_fill_avx2_gguf(mq_kernels *k) {
  k->gguf_dot[MQ_GGML_TYPE_Q4_1] = gguf_q4_1_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q5_0] = gguf_q5_0_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q5_1] = gguf_q5_1_avx2;
  k->gguf_dot[MQ_GGML_TYPE_IQ4_NL] = gguf_iq4_nl_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q2_K] = gguf_q2_k_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q3_K] = gguf_q3_k_avx2;
  k->gguf_dot[MQ_GGML_TYPE_Q5_K] = gguf_q5_k_avx2;
  k->gguf_dot[MQ_GGML_TYPE_IQ4_XS] = gguf_iq4_xs_avx2;
}
#endif
