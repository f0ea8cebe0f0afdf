/* Pieces shared by the x86 GGUF row kernels (avx2_gguf.c, avx512_gguf.c;
 * included only by files compiled with at least -mavx2 -mf16c): unaligned
 * scalar loads, the Q8_K block offsets, Q3_K's scale unpacking. */
#ifndef MQ_KERNELS_GGUF_X86_H
#define MQ_KERNELS_GGUF_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

#endif
