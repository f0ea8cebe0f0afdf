/* AVX-512 (F, BW, VL) + VNNI variants of the x8 tile kernels, over the AVX2
 * tier (entries not set here stay AVX2's). Compiled with those flags (this
 * file only); used only when the CPU reports the features and the OS saves
 * the ZMM state.
 *
 * One zmm holds two 32-byte chunks of an x8 block (kernels/linear_x8.h):
 * two column quads of 8 rows, row r in 32-bit lanes r and 8 + r. The
 * activation's two matching 4-byte words are spread over the two halves
 * with one permute, and VPDPBUSD adds the four u8 x s8 products of each lane
 * into int32 directly (no int16 stage, no sign trick for unsigned codes).
 * The halves are added once per group or sub-block. */
#include "kernels/kernels.h"

#if defined(MQ_SCALAR_ONLY) || !(defined(__x86_64__) || defined(__i386__))
int mq_kern_fill_avx512(mq_kernels *k) {
  (void)k;
  return 0;
}
#else
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "core/numconv.h"
#include "kernels/by_t.h"
#include "kernels/heads.h"
#include "kernels/linear_x8.h"
#include "kernels/prefetch.h"

static inline float fp16_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

/* Permute indices putting activation word a in lanes 0..7 and b in 8..15. */
static inline __m512i pair_idx(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi32(a), _mm256_set1_epi32(b), 1);
}

/* 32 activation bytes as the zmm's first 8 dwords. */
static inline __m512i act32(const void *q) {
  return _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)q));
}

/* Lanes r and 8 + r added: the 8 rows' sums. */
static inline __m256i fold_i32(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* a in the low half of a zmm, b in the high */
static inline __m512 both_ps(__m256 a, __m256 b) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(a)), _mm256_castps_pd(b), 1));
}

/* A 128-byte 4-bit block as 4 zmm of codes: column quads (0,1), (4,5),
 * (2,3), (6,7) (low and high nibbles of the two 64-byte halves). */
static inline void u4_decode(const uint8_t *blk, __m512i w[4]) {
  const __m512i m4 = _mm512_set1_epi8(15);
  __m512i v0 = _mm512_loadu_si512(blk), v1 = _mm512_loadu_si512(blk + 64);
  w[0] = _mm512_and_si512(v0, m4);
  w[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
  w[2] = _mm512_and_si512(v1, m4);
  w[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
}

typedef struct {
  __m512i p01, p45, p23, p67;
} quad_idx;

static inline quad_idx quad_indices(void) {
  quad_idx p = {pair_idx(0, 1), pair_idx(4, 5), pair_idx(2, 3), pair_idx(6, 7)};
  return p;
}

/* The 32 activation bytes at q as the four permuted words the blocks
 * take: x[0] quads (0,1), x[1] (4,5), x[2] (2,3), x[3] (6,7). Kernels that
 * compute two tiles a call permute once for both. */
static inline void quad_acts(const void *q, const quad_idx *p, __m512i x[4]) {
  __m512i a = act32(q);
  x[0] = _mm512_permutexvar_epi32(p->p01, a), x[1] = _mm512_permutexvar_epi32(p->p45, a);
  x[2] = _mm512_permutexvar_epi32(p->p23, a), x[3] = _mm512_permutexvar_epi32(p->p67, a);
}

/* acc + a u4 block's sums against quad_acts' words, in two dependency
 * chains (half the latency per block) */
static inline __m512i u4_dot(__m512i acc, const __m512i w[4], const __m512i x[4]) {
  __m512i acc2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], x[1]);
  acc = _mm512_dpbusd_epi32(acc, w[0], x[0]);
  acc = _mm512_dpbusd_epi32(acc, w[2], x[2]);
  acc2 = _mm512_dpbusd_epi32(acc2, w[3], x[3]);
  return _mm512_add_epi32(acc, acc2);
}

/* Two tiles' blocks regrouped so that each zmm holds one column quad of all
 * 16 rows (tile 0's in lanes 0..7, tile 1's in 8..15): v[q] for quad q.
 * u4_decode gives quads (0,1), (4,5), (2,3), (6,7) per zmm; vshufi64x2
 * pairs the two tiles' halves. Once per block, for all the tokens: each
 * token's word for quad q is then one broadcast load, with no permutes, and
 * the 16 lanes are the 16 rows (no fold). */
static inline void u4_pair(const __m512i w0[4], const __m512i w1[4], __m512i v[8]) {
  static const int src[8] = {0, 0, 2, 2, 1, 1, 3, 3}; /* zmm of quad q */
  for (int q = 0; q < 8; q++)
    v[q] = q & 1 ? _mm512_shuffle_i64x2(w0[src[q]], w1[src[q]], 0xEE)
                 : _mm512_shuffle_i64x2(w0[src[q]], w1[src[q]], 0x44);
}

/* acc + sum over the 8 quads of v[q] . (the token's word q, broadcast) */
static inline __m512i pair_dot(__m512i acc, const __m512i v[8], const uint8_t *q) {
  __m512i acc2 = _mm512_setzero_si512();
  for (int c = 0; c < 8; c += 2) { /* two dependency chains */
    int32_t a0, a1;
    memcpy(&a0, q + 4 * c, 4);
    memcpy(&a1, q + 4 * c + 4, 4);
    acc = _mm512_dpbusd_epi32(acc, v[c], _mm512_set1_epi32(a0));
    acc2 = _mm512_dpbusd_epi32(acc2, v[c + 1], _mm512_set1_epi32(a1));
  }
  return _mm512_add_epi32(acc, acc2);
}

/* Two S8 blocks (256 bytes: chunk c holds column quad c of 8 rows) as u4_pair
 * regroups 4-bit ones: v[c] = quad c of all 16 rows, each code offset to
 * u = w + 128 (an xor of the sign bit). VPDPBUSD then takes the unsigned
 * codes against the signed activations directly, with no per-token sign
 * trick; each row's sum is sum w x + 128 S, S the block's activation code
 * sum, which the caller's initial -128 S removes. */
static inline void s8_pair(const uint8_t *blk0, const uint8_t *blk1, __m512i v[8]) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  for (int c = 0; c < 8; c++)
    v[c] = _mm512_xor_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk0 + 32 * c))),
                           _mm256_loadu_si256((const __m256i *)(blk1 + 32 * c)), 1),
        flip);
}

/* The two tiles' blocks at blk0, blk1 (bb bytes each: the codes, then a
 * layout's scales) prefetched ahead in their streams and regrouped into
 * v[8]: S8 codes by s8_pair, 4-bit ones by u4_pair. */
static inline void pair_load(const uint8_t *blk0, const uint8_t *blk1, size_t bb, int s8,
                             __m512i v[8]) {
  mq_prefetch_lines(blk0 + MQ_PREFETCH_AHEAD, bb);
  mq_prefetch_lines(blk1 + MQ_PREFETCH_AHEAD, bb);
  if (s8) {
    s8_pair(blk0, blk1, v);
  } else {
    __m512i w0[4], w1[4];
    u4_decode(blk0, w0);
    u4_decode(blk1, w1);
    u4_pair(w0, w1, v);
  }
}

/* S8 blocks (256 bytes: 8 chunks, quad c in chunk c): signed x signed as
 * |w| x (q with w's sign), |w| <= 128 unsigned; |w| and the sign masks are
 * taken once per block for the T tokens. */
typedef struct {
  __m512i wa[4];
  __mmask64 neg[4];
} s8_block;

static inline void s8_prep(const uint8_t *blk, s8_block *w) {
  for (int i = 0; i < 4; i++) {
    __m512i v = _mm512_loadu_si512(blk + 64 * i);
    w->wa[i] = _mm512_abs_epi8(v);
    w->neg[i] = _mm512_movepi8_mask(v);
  }
}

/* acc + an S8 block's sums against quad_acts' words (chunk i holds quads
 * (0,1), (2,3), (4,5), (6,7): x[0], x[2], x[1], x[3]) */
static inline __m512i s8_dot(__m512i acc, const s8_block *w, const __m512i x[4]) {
  const __m512i z = _mm512_setzero_si512();
  __m512i acc2 = _mm512_dpbusd_epi32(z, w->wa[1], _mm512_mask_sub_epi8(x[2], w->neg[1], z, x[2]));
  acc = _mm512_dpbusd_epi32(acc, w->wa[0], _mm512_mask_sub_epi8(x[0], w->neg[0], z, x[0]));
  acc = _mm512_dpbusd_epi32(acc, w->wa[2], _mm512_mask_sub_epi8(x[1], w->neg[2], z, x[1]));
  acc2 = _mm512_dpbusd_epi32(acc2, w->wa[3], _mm512_mask_sub_epi8(x[3], w->neg[3], z, x[3]));
  return _mm512_add_epi32(acc, acc2);
}

/* A16 fast path, 4-bit tiles or (s8) the S8 tiles of 8-bit layers: per
 * group, each block's integer row sums (the halves folded) times the
 * tokens' block scales, then the rows' scales and mins. */
typedef struct {
  __m512i w[4];
  s8_block ws;
} a16_block;

static inline void a16_load(const uint8_t *blk, a16_block *w, const int s8) {
  mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, s8 ? 256 : 128);
  if (s8) s8_prep(blk, &w->ws);
  else u4_decode(blk, w->w);
}

static MQ_ALWAYS_INLINE void x8_q8_T(const uint8_t *tile, size_t gst, const float *sc,
                                     const float *mn, int K, int gs, const int8_t *q, int qs,
                                     const float *d, int ds, const float *gsum, int gss, float *out,
                                     const int s8, const int T) {
  const quad_idx p = quad_indices();
  const __m512i z = _mm512_setzero_si512();
  const size_t bb = s8 ? 256 : 128;
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst;
    __m256 gacc[4];
    for (int t = 0; t < T; t++) gacc[t] = _mm256_setzero_ps();
    for (int b = b0; b < b1; b++) {
      a16_block w;
      a16_load(gp + (size_t)(b - b0) * bb, &w, s8);
      for (int t = 0; t < T; t++) {
        __m512i x[4];
        quad_acts(q + (size_t)t * qs + 32 * b, &p, x);
        __m256i si = fold_i32(s8 ? s8_dot(z, &w.ws, x) : u4_dot(z, w.w, x));
        gacc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(d[(size_t)t * ds + b]),
                                  gacc[t]);
      }
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * bb, gst);
    size_t so = (size_t)g * (gst / 4);
    __m256 s = _mm256_loadu_ps(sc + so), m = mn ? _mm256_loadu_ps(mn + so) : s;
    for (int t = 0; t < T; t++) {
      acc[t] = _mm256_fmadd_ps(gacc[t], s, acc[t]);
      if (mn) acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(gsum[(size_t)t * gss + g]), acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_u4_q8_avx512(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                            int K, int gs, const int8_t *q, int qs, const float *d, int ds,
                            const float *gsum, int gss, int T, float *out) {
  MQ_BY_T(T, x8_q8_T, tile, gst, sc, mn, K, gs, q, qs, d, ds, gsum, gss, out, 0)
}

static void x8_s8a16_q8_avx512(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                               int K, int gs, const int8_t *q, int qs, const float *d, int ds,
                               const float *gsum, int gss, int T, float *out) {
  MQ_BY_T(T, x8_q8_T, tile, gst, sc, mn, K, gs, q, qs, d, ds, gsum, gss, out, 1)
}

/* The same for two tiles (16 rows a zmm, broadcast activation words:
 * u4_pair, or s8_pair with -128 times the blocks' code sums bsum): per row
 * the same integer sums and float operations as x8_q8_T, so the same
 * results. */
static MQ_ALWAYS_INLINE void x8_a16_pair_T(const uint8_t *tile, const uint8_t *tile2, size_t gst,
                                           const float *sc, const float *sc2, const float *mn,
                                           const float *mn2, int K, int gs, const int8_t *q,
                                           int qs, const float *d, int ds, const float *gsum,
                                           int gss, const int32_t *bsum, int bss, float *out,
                                           const int s8, const int T) {
  const size_t bb = s8 ? 256 : 128;
  __m512 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst, *gp2 = tile2 + g * gst;
    __m512 gacc[4];
    for (int t = 0; t < T; t++) gacc[t] = _mm512_setzero_ps();
    for (int b = b0; b < b1; b++) {
      const uint8_t *blk0 = gp + (size_t)(b - b0) * bb, *blk1 = gp2 + (size_t)(b - b0) * bb;
      __m512i v[8];
      pair_load(blk0, blk1, bb, s8, v);
      for (int t = 0; t < T; t++) {
        __m512i init = s8 ? _mm512_set1_epi32(-128 * bsum[(size_t)t * bss + b]) : _mm512_setzero_si512();
        __m512i s = pair_dot(init, v, (const uint8_t *)(q + (size_t)t * qs + 32 * b));
        gacc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(d[(size_t)t * ds + b]),
                                  gacc[t]);
      }
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * bb, gst);
    mq_prefetch_group_rest(gp2, (size_t)(b1 - b0) * bb, gst);
    size_t so = (size_t)g * (gst / 4);
    __m512 s2 = both_ps(_mm256_loadu_ps(sc + so), _mm256_loadu_ps(sc2 + so));
    __m512 m2 = mn ? both_ps(_mm256_loadu_ps(mn + so), _mm256_loadu_ps(mn2 + so)) : s2;
    for (int t = 0; t < T; t++) {
      acc[t] = _mm512_fmadd_ps(gacc[t], s2, acc[t]);
      if (mn) acc[t] = _mm512_fmadd_ps(m2, _mm512_set1_ps(gsum[(size_t)t * gss + g]), acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

static void x8_u4_q8_2_avx512(const uint8_t *tile, const uint8_t *tile2, size_t gst,
                              const float *sc, const float *sc2, const float *mn, const float *mn2,
                              int K, int gs, const int8_t *q, int qs, const float *d, int ds,
                              const float *gsum, int gss, const int32_t *bsum, int bss, int T,
                              float *out) {
  MQ_BY_T(T, x8_a16_pair_T, tile, tile2, gst, sc, sc2, mn, mn2, K, gs, q, qs, d, ds, gsum, gss,
          bsum, bss, out, 0)
}

static void x8_s8a16_q8_2_avx512(const uint8_t *tile, const uint8_t *tile2, size_t gst,
                                 const float *sc, const float *sc2, const float *mn,
                                 const float *mn2, int K, int gs, const int8_t *q, int qs,
                                 const float *d, int ds, const float *gsum, int gss,
                                 const int32_t *bsum, int bss, int T, float *out) {
  MQ_BY_T(T, x8_a16_pair_T, tile, tile2, gst, sc, sc2, mn, mn2, K, gs, q, qs, d, ds, gsum, gss,
          bsum, bss, out, 1)
}

/* GGUF Q4_0x8: the stored nibbles u against Q8_0, the -8 through the
 * activation block's code sum; each block's integer row sums (the halves
 * folded) times d_w * d_x, accumulated in float. */
static MQ_ALWAYS_INLINE void x8_q4_0_T(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                       const int32_t *bsum, int bs, float *out, const int T) {
  const quad_idx p = quad_indices();
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk = tile + (size_t)b * 144;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, 144);
    __m512i w[4];
    u4_decode(blk, w);
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 128)));
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
      __m512i x[4];
      quad_acts(a + 2, &p, x);
      /* -8 * bsum split over the two halves' lanes: 4 * bsum each */
      __m256i s = fold_i32(u4_dot(_mm512_set1_epi32(-4 * bsum[(size_t)t * bs + b]), w, x));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(fp16_at(a))),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q4_0_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  MQ_BY_T(T, x8_q4_0_T, tile, K, act, as, bsum, bs, out)
}

/* GGUF Q4_0x8 (q8 0) or Q8_0x8 (q8 1), two tiles (tile and tile + tst)
 * regrouped by u4_pair or s8_pair; the codes' offset (Q4_0's 8, the S8
 * pair's 128) comes off through the activation blocks' code sums (bsum).
 * Per row the same integer sums and float operations as the one-tile
 * kernels, so the same results. */
static MQ_ALWAYS_INLINE void x8_gguf_pair_T(const uint8_t *tile, size_t tst, int K,
                                            const uint8_t *act, size_t as, const int32_t *bsum,
                                            int bs, float *out, const int q8, const int T) {
  const size_t bb = q8 ? 272 : 144, d_at = q8 ? 256 : 128;
  const int offset = q8 ? 128 : 8;
  __m512 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk0 = tile + (size_t)b * bb, *blk1 = blk0 + tst;
    __m512i v[8];
    pair_load(blk0, blk1, bb, q8, v);
    __m512 dw = both_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk0 + d_at))),
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk1 + d_at))));
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
      __m512i s = pair_dot(_mm512_set1_epi32(-offset * bsum[(size_t)t * bs + b]), v, a + 2);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(fp16_at(a))),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

static void x8_q4_0_2_avx512(const uint8_t *tile, size_t tst, int K, const uint8_t *act,
                             size_t as, const int32_t *bsum, int bs, int T, float *out) {
  MQ_BY_T(T, x8_gguf_pair_T, tile, tst, K, act, as, bsum, bs, out, 0)
}

static void x8_q8_0_2_avx512(const uint8_t *tile, size_t tst, int K, const uint8_t *act,
                             size_t as, const int32_t *bsum, int bs, int T, float *out) {
  MQ_BY_T(T, x8_gguf_pair_T, tile, tst, K, act, as, bsum, bs, out, 1)
}

/* W8A8 S8 tiles: integer sums per group times the rows' scales. */
static MQ_ALWAYS_INLINE void x8_s8_T(const uint8_t *tile, size_t gst, const float *sc, int K,
                                     int gs, const int8_t *q, int qs, float *out, const int T) {
  const quad_idx p = quad_indices();
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst;
    __m512i isum[4];
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    for (int b = b0; b < b1; b++) {
      a16_block w;
      a16_load(gp + (size_t)(b - b0) * 256, &w, 1);
      for (int t = 0; t < T; t++) {
        __m512i x[4];
        quad_acts(q + (size_t)t * qs + 32 * b, &p, x);
        isum[t] = s8_dot(isum[t], &w.ws, x);
      }
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * 256, gst);
    __m256 s = _mm256_loadu_ps(sc + g * (gst / 4));
    for (int t = 0; t < T; t++)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(fold_i32(isum[t])), s, acc[t]);
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_s8_q8_avx512(const uint8_t *tile, size_t gst, const float *sc, int K, int gs,
                            const int8_t *q, int qs, int T, float *out) {
  MQ_BY_T(T, x8_s8_T, tile, gst, sc, K, gs, q, qs, out)
}

/* W8A8, two tiles through s8_pair: per row the same integer group sums and
 * float operations as x8_s8_T, so the same results. */
static MQ_ALWAYS_INLINE void x8_s8_pair_T(const uint8_t *tile, const uint8_t *tile2, size_t gst,
                                          const float *sc, const float *sc2, int K, int gs,
                                          const int8_t *q, int qs, const int32_t *bsum, int bss,
                                          float *out, const int T) {
  __m512 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  int nb = K / 32, bpg = gs / 32;
  for (int g = 0, b0 = 0; b0 < nb; g++, b0 += bpg) {
    int b1 = b0 + bpg < nb ? b0 + bpg : nb;
    const uint8_t *gp = tile + g * gst, *gp2 = tile2 + g * gst;
    __m512i isum[4];
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    for (int b = b0; b < b1; b++) {
      const uint8_t *blk0 = gp + (size_t)(b - b0) * 256, *blk1 = gp2 + (size_t)(b - b0) * 256;
      __m512i v[8];
      pair_load(blk0, blk1, 256, 1, v);
      for (int t = 0; t < T; t++)
        isum[t] = pair_dot(_mm512_add_epi32(isum[t], _mm512_set1_epi32(-128 * bsum[(size_t)t * bss + b])),
                           v, (const uint8_t *)(q + (size_t)t * qs + 32 * b));
    }
    mq_prefetch_group_rest(gp, (size_t)(b1 - b0) * 256, gst);
    mq_prefetch_group_rest(gp2, (size_t)(b1 - b0) * 256, gst);
    size_t so = (size_t)g * (gst / 4);
    __m512 s2 = both_ps(_mm256_loadu_ps(sc + so), _mm256_loadu_ps(sc2 + so));
    for (int t = 0; t < T; t++) acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), s2, acc[t]);
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

static void x8_s8_q8_2_avx512(const uint8_t *tile, const uint8_t *tile2, size_t gst,
                              const float *sc, const float *sc2, int K, int gs, const int8_t *q,
                              int qs, const int32_t *bsum, int bss, int T, float *out) {
  MQ_BY_T(T, x8_s8_pair_T, tile, tile2, gst, sc, sc2, K, gs, q, qs, bsum, bss, out)
}


/* GGUF Q8_0x8 against Q8_0: each block's integer row sums (the halves
 * folded) times d_w * d_x, accumulated in float. */
static MQ_ALWAYS_INLINE void x8_q8_0_T(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                       float *out, const int T) {
  const quad_idx p = quad_indices();
  const __m512i z = _mm512_setzero_si512();
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int b = 0; b < K / 32; b++) {
    const uint8_t *blk = tile + (size_t)b * 272;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, 272);
    s8_block w;
    s8_prep(blk, &w);
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 256)));
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)b * 34;
      __m512i x[4];
      quad_acts(a + 2, &p, x);
      __m256i s = fold_i32(s8_dot(z, &w, x));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(fp16_at(a))),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q8_0_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q8_0_T, tile, K, act, as, out)
}

/* One Q4_K / Q5_K sub-block of a tile (x8_q45_k_T below). */
typedef struct {
  __m512i w[4];
  __m512i sc;
} k_sub;

/* Sub-block j of super-block blk: codes (Q5_K: the fifth bits added) and
 * scales. */
static inline void k_sub_load(const uint8_t *blk, int j, const int five, const size_t sc_at,
                              const __m512i hbit[4], k_sub *s) {
  u4_decode(blk + 128 * j, s->w);
  if (five) {
    __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 1024 + 32 * j)));
    for (int i = 0; i < 4; i++)
      s->w[i] = _mm512_mask_add_epi8(s->w[i], _mm512_test_epi8_mask(hb, hbit[i]),
                                     s->w[i], _mm512_set1_epi8(16));
  }
  s->sc = _mm512_broadcast_i64x4(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 8 * j))));
}

/* isc + the sub-block's sums times its scales */
static inline __m512i k_sub_dot(const k_sub *s, const __m512i x[4], const int five, __m512i isc) {
  const __m512i z = _mm512_setzero_si512();
  __m512i s0 = _mm512_dpbusd_epi32(z, s->w[0], x[0]);
  __m512i s1 = _mm512_dpbusd_epi32(z, s->w[1], x[1]);
  s0 = _mm512_dpbusd_epi32(s0, s->w[2], x[2]);
  s1 = _mm512_dpbusd_epi32(s1, s->w[3], x[3]);
  if (five)
    return _mm512_add_epi32(isc, _mm512_add_epi32(_mm512_madd_epi16(s0, s->sc),
                                                  _mm512_madd_epi16(s1, s->sc)));
  return _mm512_add_epi32(isc, _mm512_madd_epi16(_mm512_add_epi32(s0, s1), s->sc));
}

/* The super-block's mins times a token's Q8_K block sums (a: its block):
 * sum_j m_j (b_2j + b_2j+1) for the 8 rows, after the sub-blocks' loop so
 * that loop keeps its registers. */
static inline __m256i k_mins(const uint8_t *blk, size_t sc_at, const uint8_t *a) {
  __m256i imn = _mm256_setzero_si256();
  for (int j = 0; j < 8; j++) {
    __m256i mn = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 64 + 8 * j)));
    int16_t b0, b1;
    memcpy(&b0, a + 260 + 4 * j, 2);
    memcpy(&b1, a + 262 + 4 * j, 2);
    imn = _mm256_add_epi32(imn,
                           _mm256_madd_epi16(mn, _mm256_set1_epi32((uint16_t)(int16_t)(b0 + b1))));
  }
  return imn;
}

static inline __m256 k_super(__m256 acc, const uint8_t *blk, size_t sc_at, __m256 vdx, __m512i isc,
                             __m256i imn) {
  __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 128)));
  __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 144)));
  acc = _mm256_fmadd_ps(_mm256_mul_ps(d, vdx), _mm256_cvtepi32_ps(fold_i32(isc)), acc);
  return _mm256_fnmadd_ps(_mm256_mul_ps(dmin, vdx), _mm256_cvtepi32_ps(imn), acc);
}

/* Q4_Kx8 / Q5_Kx8 against Q8_K: per 32-column sub-block j, the rows'
 * integer sums times their 6-bit scales, the mins against the Q8_K block
 * sums, then d_x * d and d_x * dmin per super-block, as the types' dot
 * products define them. A lane's sum over 16 products of Q4_K codes is at
 * most 16 * 15 * 127 < 2^15, so madd_epi16 against the scale (high half
 * zero) multiplies it exactly in one step; Q5_K's codes (up to 31) take two
 * 8-product sums. The halves are folded once per super-block. Q5_K's fifth
 * bits (linear_x8.h) are added with byte masks: zmm i's two chunks take
 * bits (c, c + 1) of the same plane byte in their two halves. NT (1 or 2)
 * tiles a call, the second at tile + tst, as x8_q4_0_T. */
static MQ_ALWAYS_INLINE void x8_q45_k_T(const uint8_t *tile, size_t tst, int K,
                                        const uint8_t *act, size_t as, float *out, const int five,
                                        const int NT, const int T) {
  const size_t tb = five ? 1440 : 1184, sc_at = five ? 1280 : 1024;
  const quad_idx p = quad_indices();
  /* plane bit of each code zmm (u4_decode's order: quads 01, 45, 23, 67) */
  const __m512i hbit[4] = {
      _mm512_inserti64x4(_mm512_set1_epi8(1 << 0), _mm256_set1_epi8(1 << 1), 1),
      _mm512_inserti64x4(_mm512_set1_epi8(1 << 4), _mm256_set1_epi8((char)(1 << 5)), 1),
      _mm512_inserti64x4(_mm512_set1_epi8(1 << 2), _mm256_set1_epi8(1 << 3), 1),
      _mm512_inserti64x4(_mm512_set1_epi8(1 << 6), _mm256_set1_epi8((char)(1 << 7)), 1)};
  __m256 acc0[4], acc1[4];
  for (int t = 0; t < T; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk0 = tile + (size_t)sb * tb, *blk1 = blk0 + tst;
    mq_prefetch_lines(blk0 + MQ_PREFETCH_AHEAD, tb);
    if (NT == 2) mq_prefetch_lines(blk1 + MQ_PREFETCH_AHEAD, tb);
    __m512i isc0[4], isc1[4];
    for (int t = 0; t < T; t++) isc0[t] = isc1[t] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++) {
      k_sub s0, s1;
      k_sub_load(blk0, j, five, sc_at, hbit, &s0);
      if (NT == 2) k_sub_load(blk1, j, five, sc_at, hbit, &s1);
      for (int t = 0; t < T; t++) {
        const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
        __m512i x[4];
        quad_acts(a + 4 + 32 * j, &p, x);
        isc0[t] = k_sub_dot(&s0, x, five, isc0[t]);
        if (NT == 2) isc1[t] = k_sub_dot(&s1, x, five, isc1[t]);
      }
    }
    for (int t = 0; t < T; t++) {
      const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
      float dx;
      memcpy(&dx, a, 4);
      __m256 vdx = _mm256_set1_ps(dx);
      acc0[t] = k_super(acc0[t], blk0, sc_at, vdx, isc0[t], k_mins(blk0, sc_at, a));
      if (NT == 2) acc1[t] = k_super(acc1[t], blk1, sc_at, vdx, isc1[t], k_mins(blk1, sc_at, a));
    }
  }
  for (int t = 0; t < T; t++) {
    _mm256_storeu_ps(out + 8 * NT * t, acc0[t]);
    if (NT == 2) _mm256_storeu_ps(out + 16 * t + 8, acc1[t]);
  }
}

static void x8_q4_k_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, 0, K, act, as, out, 0, 1)
}

static void x8_q5_k_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, 0, K, act, as, out, 1, 1)
}

static void x8_q4_k_2_avx512(const uint8_t *tile, size_t tst, int K, const uint8_t *act,
                             size_t as, const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, tst, K, act, as, out, 0, 2)
}

static void x8_q5_k_2_avx512(const uint8_t *tile, size_t tst, int K, const uint8_t *act,
                             size_t as, const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_q45_k_T, tile, tst, K, act, as, out, 1, 2)
}

/* Q6_Kx8 (bits 6; Q3_Kx8, bits 3: 3-bit codes from the 2-bit planes and
 * the 1-bit plane, the same per-half shift counts; Q2_Kx8, bits 2: the
 * 2-bit planes, 4-bit scales and mins) against Q8_K: 6-bit codes
 * from the nibbles and the 2-bit planes
 * (zmm i's halves take bit pairs 2c and 2c + 2 of the same plane byte: a
 * per-half shift count); the low nibbles of a 32-column block are its
 * first 16-column sub-block, the high nibbles its second. Each dpbusd sum
 * (4 products <= 4 * 63 * 127 < 2^15) meets the rows' int8 scales (high
 * half zero) in madd_epi16; the -32 goes through the Q8_K block sums, both
 * sub-blocks' in one madd of (scale_a, scale_b) pairs. */
static MQ_ALWAYS_INLINE void x8_sub16_T(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                                        float *out, const int bits, const int T) {
  const quad_idx p = quad_indices();
  const __m512i m2 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(1), z = _mm512_setzero_si512();
  const size_t tb = bits == 6 ? MQ_X8_Q6_K_BLOCK : bits == 3 ? MQ_X8_Q3_K_BLOCK : MQ_X8_Q2_K_BLOCK;
  const size_t sc_at = bits == 6 ? 1536 : bits == 3 ? 768 : 512;
  const __m256i lo16 = _mm256_set1_epi32(0xffff);
  /* shift counts per 16-bit lane: zmm (0,1) -> bits 0 and 2, (2,3) -> 4 and 6 */
  const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
  __m256 acc[4];
  for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
  for (int sb = 0; sb < K / 256; sb++) {
    const uint8_t *blk = tile + (size_t)sb * tb;
    mq_prefetch_lines(blk + MQ_PREFETCH_AHEAD, tb);
    __m512i isc[4];
    __m256i imn[4];
    for (int t = 0; t < T; t++) isc[t] = z, imn[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
      __m512i w[4];
      if (bits == 2) { /* the 2-bit planes alone, placed as below */
        const uint8_t *lp = blk + 64 * j;
        __m512i la = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)lp));
        __m512i lh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(lp + 32)));
        w[0] = _mm512_and_si512(_mm512_srlv_epi16(la, sh01), m2);
        w[2] = _mm512_and_si512(_mm512_srlv_epi16(la, sh23), m2);
        w[1] = _mm512_and_si512(_mm512_srlv_epi16(lh, sh01), m2);
        w[3] = _mm512_and_si512(_mm512_srlv_epi16(lh, sh23), m2);
      } else if (bits == 3) { /* w[0], w[2]: low-nibble positions (plane la, third bits c), w[1],
                      w[3]: high (lh, 4 + c) */
        const uint8_t *lp = blk + 64 * j;
        __m512i la = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)lp));
        __m512i lh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(lp + 32)));
        __m512i f =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 512 + 32 * j)));
        for (int i = 0; i < 4; i++) {
          int c0 = 2 * (i / 2), hi = i % 2; /* chunks c0, c0 + 1 in the halves */
          __m512i fb = _mm512_srlv_epi16(
              f, _mm512_inserti64x4(_mm512_set1_epi16((short)(c0 + 4 * hi)),
                                    _mm256_set1_epi16((short)(c0 + 1 + 4 * hi)), 1));
          __m512i lb = _mm512_srlv_epi16(hi ? lh : la, c0 ? sh23 : sh01);
          w[i] = _mm512_or_si512(_mm512_and_si512(lb, m2),
                                 _mm512_slli_epi16(_mm512_and_si512(fb, m1), 2));
        }
      } else {
        const uint8_t *lo = blk + 128 * j, *hp = blk + 1024 + 64 * j;
        u4_decode(lo, w);
        __m512i ha = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)hp));
        __m512i hh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(hp + 32)));
        /* w[0], w[2]: low nibbles (plane ha); w[1], w[3]: high (plane hh) */
        w[0] = _mm512_or_si512(
            w[0], _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(ha, sh01), m2), 4));
        w[2] = _mm512_or_si512(
            w[2], _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(ha, sh23), m2), 4));
        w[1] = _mm512_or_si512(
            w[1], _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hh, sh01), m2), 4));
        w[3] = _mm512_or_si512(
            w[3], _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hh, sh23), m2), 4));
      }
      /* sub-blocks 2j, 2j + 1: scales (int16 in int32 lanes) and the pair
       * of block-sum factors (the scales, or Q2_K's mins) */
      __m256i sa, sbv, pair;
      if (bits == 2) { /* scale | min << 4 bytes */
        __m256i ra = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j)));
        __m256i rb =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j + 8)));
        const __m256i m15 = _mm256_set1_epi32(15);
        sa = _mm256_and_si256(ra, m15), sbv = _mm256_and_si256(rb, m15);
        pair = _mm256_or_si256(_mm256_srli_epi32(ra, 4),
                               _mm256_slli_epi32(_mm256_srli_epi32(rb, 4), 16));
      } else {
        sa = _mm256_and_si256(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j))), lo16);
        sbv = _mm256_and_si256(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + sc_at + 16 * j + 8))),
            lo16);
        pair = _mm256_or_si256(sa, _mm256_slli_epi32(sbv, 16));
      }
      __m512i sa2 = _mm512_broadcast_i64x4(sa), sb2 = _mm512_broadcast_i64x4(sbv);
      for (int t = 0; t < T; t++) {
        const uint8_t *a = act + (size_t)t * as + (size_t)sb * 292;
        __m512i q = act32(a + 4 + 32 * j);
        __m512i s0 = _mm512_madd_epi16(
            _mm512_dpbusd_epi32(z, w[0], _mm512_permutexvar_epi32(p.p01, q)), sa2);
        __m512i s1 = _mm512_madd_epi16(
            _mm512_dpbusd_epi32(z, w[2], _mm512_permutexvar_epi32(p.p23, q)), sa2);
        __m512i s2 = _mm512_madd_epi16(
            _mm512_dpbusd_epi32(z, w[1], _mm512_permutexvar_epi32(p.p45, q)), sb2);
        __m512i s3 = _mm512_madd_epi16(
            _mm512_dpbusd_epi32(z, w[3], _mm512_permutexvar_epi32(p.p67, q)), sb2);
        isc[t] = _mm512_add_epi32(
            isc[t], _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
        uint32_t bb;
        memcpy(&bb, a + 260 + 4 * j, 4); /* the two sub-blocks' int16 sums */
        imn[t] = _mm256_add_epi32(imn[t], _mm256_madd_epi16(pair, _mm256_set1_epi32((int)bb)));
      }
    }
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 128)));
    for (int t = 0; t < T; t++) {
      float dx;
      memcpy(&dx, act + (size_t)t * as + (size_t)sb * 292, 4);
      __m256 ddx = _mm256_mul_ps(d, _mm256_set1_ps(dx));
      if (bits == 2) { /* d * isc - dmin * (mins . bsums) */
        __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + sc_at + 144)));
        acc[t] = _mm256_fmadd_ps(ddx, _mm256_cvtepi32_ps(fold_i32(isc[t])), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, _mm256_set1_ps(dx)),
                                  _mm256_cvtepi32_ps(imn[t]), acc[t]);
        continue;
      }
      __m256i tot =
          _mm256_sub_epi32(fold_i32(isc[t]), _mm256_slli_epi32(imn[t], bits == 3 ? 2 : 5));
      acc[t] = _mm256_fmadd_ps(ddx, _mm256_cvtepi32_ps(tot), acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

static void x8_q6_k_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 6)
}

static void x8_q3_k_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 3)
}

static void x8_q2_k_avx512(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                           const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  MQ_BY_T(T, x8_sub16_T, tile, K, act, as, out, 2)
}

/* Attention scores, eight rows a pass (x's 16-float chunks loaded once for
 * the eight); the eight sums reduced together: halves added, then a
 * horizontal-add tree over the eight ymm (about 3 instructions a row). */
static inline __m256 sum8_rows(const __m512 a[8]) {
  __m256 h[8];
  for (int r = 0; r < 8; r++)
    h[r] = _mm256_add_ps(_mm512_castps512_ps256(a[r]),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[r]), 1)));
  __m256 s01 = _mm256_hadd_ps(h[0], h[1]), s23 = _mm256_hadd_ps(h[2], h[3]);
  __m256 s45 = _mm256_hadd_ps(h[4], h[5]), s67 = _mm256_hadd_ps(h[6], h[7]);
  __m256 q0 = _mm256_hadd_ps(s01, s23), q1 = _mm256_hadd_ps(s45, s67);
  /* q0 lanes: rows 0..3 (low 128), rows 0..3 (high 128) of the other half */
  return _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
}

static void dot_rows_one_avx512(const float *x, const float *rows, size_t stride, int n, int len,
                                float *out) {
  int p = 0, l16 = len / 16 * 16;
  for (; p + 8 <= n; p += 8) {
    const float *r0 = rows + (size_t)p * stride;
    __m512 a[8];
    for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
    for (int i = 0; i < l16; i += 16) {
      __m512 xv = _mm512_loadu_ps(x + i);
      for (int r = 0; r < 8; r++)
        a[r] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r0 + (size_t)r * stride + i), a[r]);
    }
    __m256 s = sum8_rows(a);
    if (l16 < len) { /* the tail columns, row by row */
      float t[8];
      _mm256_storeu_ps(t, s);
      for (int r = 0; r < 8; r++)
        for (int i = l16; i < len; i++) t[r] += x[i] * r0[(size_t)r * stride + i];
      s = _mm256_loadu_ps(t);
    }
    _mm256_storeu_ps(out + p, s);
  }
  if (p < n)
    mq_kern_avx2()->dot_rows_f32(x, 0, 1, rows + (size_t)p * stride, stride, n - p, len, out + p,
                                 0);
}

/* Weighted values: nc zmm (16 floats each) of o in registers, the rows
 * added in order. */
static MQ_ALWAYS_INLINE void axpy_chunk(float *o, const float *rows, size_t stride, const float *w,
                                        int n, const int nc) {
  __m512 a[8];
  for (int c = 0; c < nc; c++) a[c] = _mm512_loadu_ps(o + 16 * c);
  for (int p = 0; p < n; p++) {
    __m512 wp = _mm512_set1_ps(w[p]);
    const float *r = rows + (size_t)p * stride;
    for (int c = 0; c < nc; c++) a[c] = _mm512_fmadd_ps(wp, _mm512_loadu_ps(r + 16 * c), a[c]);
  }
  for (int c = 0; c < nc; c++) _mm512_storeu_ps(o + 16 * c, a[c]);
}

/* 128 floats of o at a time, then 64, the rest through AVX2. */
static void axpy_rows_one_avx512(float *o, const float *rows, size_t stride, const float *w, int n,
                                 int len) {
  int i0 = 0;
  for (; i0 + 128 <= len; i0 += 128) axpy_chunk(o + i0, rows + i0, stride, w, n, 8);
  for (; i0 + 64 <= len; i0 += 64) axpy_chunk(o + i0, rows + i0, stride, w, n, 4);
  if (i0 < len) mq_kern_avx2()->axpy_rows_f32(o + i0, 0, 1, rows + i0, stride, w, 0, n, len - i0);
}

MQ_HEAD_ENTRIES(avx512)

/* MXFP8 rows (AVX2's method, 32 codes a step): an E4M3 byte s.eeee.mmm
 * placed as the f16 bits s.0eeee.mmm0000000 is its value times 2^-8 (E4M3
 * subnormals become f16 subnormals, which the conversion takes exactly);
 * the block's 2^(e - 127 + 8) scales the block sum. NaN codes (0x7f/0xff)
 * read as 480 here; writers never store them. */
static float dot_mxfp8_f32_avx512(const uint8_t *w, const uint8_t *e, const float *x, int n) {
  __m512 acc = _mm512_setzero_ps();
  for (int b = 0; b < n / 32; b++) {
    mq_prefetch_lines(w + 32 * b + MQ_PREFETCH_AHEAD, 32);
    __m512i t = _mm512_slli_epi16(
        _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(w + 32 * b))), 7);
    __m512i h = _mm512_add_epi16(t, _mm512_and_si512(t, _mm512_set1_epi16(0x4000)));
    __m512 w0 = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    __m512 w1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    __m512 s = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 32 * b + 16),
                               _mm512_mul_ps(w0, _mm512_loadu_ps(x + 32 * b)));
    int ex = (int)e[b] - 127 + 8; /* in [-119, 136] */
    if (ex <= 127)                /* 2^ex from its exponent bits */
      acc = _mm512_fmadd_ps(s, _mm512_castsi512_ps(_mm512_set1_epi32((ex + 127) << 23)), acc);
    else /* beyond float's exponent: by parts */
      acc = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_castsi512_ps(_mm512_set1_epi32(ex << 23))),
                            _mm512_set1_ps(0x1p127f), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

static void mxfp8_to_f32_avx512(const uint8_t *w, const uint8_t *e, float *dst, int n) {
  for (int b = 0; b < n / 32; b++) {
    __m512i t = _mm512_slli_epi16(
        _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(w + 32 * b))), 7);
    __m512i h = _mm512_add_epi16(t, _mm512_and_si512(t, _mm512_set1_epi16(0x4000)));
    int ex = (int)e[b] - 127 + 8; /* in [-119, 136]; by parts past 127 */
    __m512 sc = _mm512_castsi512_ps(_mm512_set1_epi32((ex <= 127 ? ex + 127 : ex) << 23));
    __m512 sc2 = _mm512_set1_ps(ex <= 127 ? 1.0f : 0x1p127f);
    _mm512_storeu_ps(
        dst + 32 * b,
        _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), sc), sc2));
    _mm512_storeu_ps(
        dst + 32 * b + 16,
        _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), sc), sc2));
  }
}

/* MXFP8 activations (mq_quantize_mxfp8), bit for bit: per 32-block the
 * reference's exponent and scale, then 16 values a step onto the E4M3 grid
 * as roundscale(|t| * 2^(3 - ex)) * 2^(ex - 3) (nearest even; ex = the
 * exponent of |t|, at least -6: the subnormal step 2^-9), saturated at 448,
 * signed, times 2^e. Every step but the rounding is exact, as in the
 * reference. A block holding inf or NaN goes to the reference. */
static void quantize_mxfp8_avx512(const float *x, int n, float *xf) {
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  for (int b0 = 0; b0 < n; b0 += 32) {
    __m512 v[2] = {_mm512_loadu_ps(x + b0), _mm512_loadu_ps(x + b0 + 16)};
    __m512 a0 = _mm512_abs_ps(v[0]), a1 = _mm512_abs_ps(v[1]), inf = _mm512_set1_ps(INFINITY);
    if (_mm512_cmp_ps_mask(a0, inf, _CMP_NLT_UQ) | _mm512_cmp_ps_mask(a1, inf, _CMP_NLT_UQ)) {
      /* inf or NaN (max_ps would drop a NaN) */
      mq_quantize_mxfp8(x + b0, 32, xf + b0);
      continue;
    }
    int e = mq_mx_shared_exp(_mm512_reduce_max_ps(_mm512_max_ps(a0, a1)));
    const __m512 inv = _mm512_set1_ps(ldexpf(1.0f, -e)), ev = _mm512_set1_ps((float)e);
    for (int h = 0; h < 2; h++) {
      __m512 t = _mm512_mul_ps(v[h], inv), a = _mm512_abs_ps(t);
      __m512 ex = _mm512_max_ps(_mm512_getexp_ps(a), _mm512_set1_ps(-6.0f)); /* getexp(0): -inf */
      __m512 r = _mm512_roundscale_ps(_mm512_scalef_ps(a, _mm512_sub_ps(_mm512_set1_ps(3.0f), ex)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      r = _mm512_min_ps(_mm512_scalef_ps(r, _mm512_sub_ps(ex, _mm512_set1_ps(3.0f))),
                        _mm512_set1_ps(448.0f));
      r = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(r), _mm512_castps_si512(t),
                                                        sign, 0xF8)); /* | t's sign, -0 included */
      _mm512_storeu_ps(xf + b0 + 16 * h, _mm512_scalef_ps(r, ev));
    }
  }
}

/* 4 weight rows x T tokens: 16 zmm accumulators at T = 4, 8 loads per 16
 * FMAs; the tail of n % 16 under a mask. Named accumulators: as an array,
 * gcc kept them in memory (a store per FMA). */
#define MQ_F32_TOKEN(t)                                                                            \
  if (t < T) {                                                                                     \
    __m512 v = _mm512_maskz_loadu_ps(m, x[t] + k);                                                 \
    c##t##0 = _mm512_fmadd_ps(a0, v, c##t##0), c##t##1 = _mm512_fmadd_ps(a1, v, c##t##1);          \
    c##t##2 = _mm512_fmadd_ps(a2, v, c##t##2), c##t##3 = _mm512_fmadd_ps(a3, v, c##t##3);          \
  }
static MQ_ALWAYS_INLINE void dot4x4_T(const float *const w[4], const float *const x[4], int n,
                                      float out[16], const int T) {
  const __m512 z = _mm512_setzero_ps();
  __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  __m512 c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  for (int k = 0; k < n; k += 16) {
    __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
    __m512 a0 = _mm512_maskz_loadu_ps(m, w[0] + k), a1 = _mm512_maskz_loadu_ps(m, w[1] + k);
    __m512 a2 = _mm512_maskz_loadu_ps(m, w[2] + k), a3 = _mm512_maskz_loadu_ps(m, w[3] + k);
    MQ_F32_TOKEN(0) MQ_F32_TOKEN(1) MQ_F32_TOKEN(2) MQ_F32_TOKEN(3)
  }
  const __m512 c[16] = {c00, c01, c02, c03, c10, c11, c12, c13,
                        c20, c21, c22, c23, c30, c31, c32, c33};
  for (int i = 0; i < 4 * T; i++) out[i] = _mm512_reduce_add_ps(c[i]);
}
#undef MQ_F32_TOKEN

static void dot4x4_f32_avx512(const float *const w[4], const float *const x[4], int nt, int n,
                              float out[16]) {
  MQ_BY_T(nt, dot4x4_T, w, x, n, out)
}

/* 16 halves a step (the KV cache's f16 blocks), the rest through AVX2. */
static void f16_to_f32_avx512(const uint16_t *src, float *dst, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
  if (i < n) mq_kern_avx2()->f16_to_f32(src + i, dst + i, n - i);
}

int mq_kern_fill_avx512(mq_kernels *k) {
  if (!mq_cpu_has_avx512()) return 0;
  k->name = "avx512";
  k->x8_u4_q8 = x8_u4_q8_avx512;
  k->x8_q4_0 = x8_q4_0_avx512;
  k->x8_gguf_2[MQ_GGML_TYPE_Q4_0] = x8_q4_0_2_avx512;
  k->x8_gguf_2[MQ_GGML_TYPE_Q8_0] = x8_q8_0_2_avx512;
  k->x8_gguf_2[MQ_GGML_TYPE_Q4_K] = x8_q4_k_2_avx512;
  k->x8_gguf_2[MQ_GGML_TYPE_Q5_K] = x8_q5_k_2_avx512;
  k->x8_u4_q8_2 = x8_u4_q8_2_avx512;
  k->x8_s8a16_q8_2 = x8_s8a16_q8_2_avx512;
  k->x8_s8_q8_2 = x8_s8_q8_2_avx512;
  k->x8_q4_k = x8_q4_k_avx512;
  k->x8_q5_k = x8_q5_k_avx512;
  k->x8_q6_k = x8_q6_k_avx512;
  k->x8_q3_k = x8_q3_k_avx512;
  k->x8_q2_k = x8_q2_k_avx512;
  k->x8_s8_q8 = x8_s8_q8_avx512;
  k->x8_q8_0 = x8_q8_0_avx512;
  k->x8_s8a16_q8 = x8_s8a16_q8_avx512;
  k->dot_mxfp8_f32 = dot_mxfp8_f32_avx512;
  k->dot4x4_f32 = dot4x4_f32_avx512;
  k->dot_rows_f32 = dot_rows_f32_avx512;
  k->axpy_rows_f32 = axpy_rows_f32_avx512;
  k->mxfp8_to_f32 = mxfp8_to_f32_avx512;
  k->quantize_mxfp8 = quantize_mxfp8_avx512;
  k->f16_to_f32 = f16_to_f32_avx512;
  return 1;
}
#endif
