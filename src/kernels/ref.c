/* Scalar reference kernels: the oracle every SIMD variant is tested against. */
#include <math.h>
#include <string.h>

#include "core/numconv.h"
#include "kernels/heads.h"
#include "kernels/kernels.h"
#include "kernels/linear_x8.h"
#include "quant/gguf_blocks.h"

static float dot_f32_ref(const float *a, const float *b, int n) {
  double s = 0; /* double accumulation: the oracle should be the most exact */
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return (float)s;
}

static void dot_rows_one_ref(const float *x, const float *rows, size_t stride, int n, int len,
                             float *out) {
  for (int p = 0; p < n; p++) out[p] = dot_f32_ref(x, rows + (size_t)p * stride, len);
}

static void axpy_rows_one_ref(float *o, const float *rows, size_t stride, const float *w, int n,
                              int len) {
  for (int p = 0; p < n; p++)
    for (int i = 0; i < len; i++) o[i] += w[p] * rows[(size_t)p * stride + i];
}

MQ_HEAD_ENTRIES(ref)

static void f16_to_f32_ref(const uint16_t *src, float *dst, int n) {
  for (int i = 0; i < n; i++) dst[i] = mq_f16_to_f32(src[i]);
}

static void q8_0_to_f32_ref(const uint8_t *blocks, float *dst, int n) {
  for (int b = 0; b < n / 32; b++, blocks += 34) {
    uint16_t h;
    memcpy(&h, blocks, 2);
    float d = mq_f16_to_f32(h);
    for (int i = 0; i < 32; i++) dst[32 * b + i] = d * (float)(int8_t)blocks[2 + i];
  }
}

static void bf16_to_f32_ref(const uint16_t *src, float *dst, int n) {
  for (int i = 0; i < n; i++) dst[i] = mq_bf16_to_f32(src[i]);
}

static float dot_f16_f32_ref(const uint16_t *w, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)mq_f16_to_f32(w[i]) * x[i];
  return (float)s;
}

static float dot_bf16_f32_ref(const uint16_t *w, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)mq_bf16_to_f32(w[i]) * x[i];
  return (float)s;
}

static float dot_u4_f32_ref(const uint8_t *c, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)((c[i / 2] >> (4 * (i & 1))) & 15) * x[i];
  return (float)s;
}

static float dot_u8_f32_ref(const uint8_t *c, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)c[i] * x[i];
  return (float)s;
}

static float dot_s8_f32_ref(const int8_t *c, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)c[i] * x[i];
  return (float)s;
}

static int32_t dot_s8s8_ref(const int8_t *a, const int8_t *b, int n) {
  int32_t s = 0;
  for (int i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
  return s;
}

static float dot_u4_q8_ref(const uint8_t *c, const int8_t *q, const float *d, int n) {
  float s = 0;
  for (int b = 0; b < n / 32; b++) {
    int32_t acc = 0;
    for (int i = 32 * b; i < 32 * b + 32; i++) acc += ((c[i / 2] >> (4 * (i & 1))) & 15) * q[i];
    s += d[b] * (float)acc;
  }
  return s;
}

static float dot_u8_q8_ref(const uint8_t *c, const int8_t *q, const float *d, int n) {
  float s = 0;
  for (int b = 0; b < n / 32; b++) {
    int32_t acc = 0;
    for (int i = 32 * b; i < 32 * b + 32; i++) acc += c[i] * q[i];
    s += d[b] * (float)acc;
  }
  return s;
}

static void dot4_u4_q8_ref(const uint8_t *c, const int8_t *q, int qs, const float *d, int ds, int n,
                           float out[4]) {
  for (int j = 0; j < 4; j++) out[j] = dot_u4_q8_ref(c, q + (size_t)j * qs, d + (size_t)j * ds, n);
}

/* Code of row r (0..7), column k of an x8 tile (layout in linear_x8.h):
 * 4-bit, or S8 (256-byte blocks, 8 rows x 4 columns per 32-byte chunk). */
static inline unsigned x8_code(const uint8_t *tile, int r, int k) {
  return mq_x8_nib(tile + (size_t)(k / 32) * 128, r, k % 32);
}
static inline int8_t x8_s8(const uint8_t *blk, int r, int k) {
  return (int8_t)blk[32 * (k / 4) + 4 * r + k % 4];
}
/* Block holding column k of a tile whose group g starts at g * gstride. */
static inline const uint8_t *x8_blk(const uint8_t *tile, size_t gstride, int gs, int s8, int k) {
  return tile + (size_t)(k / gs) * gstride + (size_t)((k % gs) / 32) * (s8 ? 256 : 128);
}
static inline int x8_any(const uint8_t *tile, size_t gstride, int gs, int s8, int r, int k) {
  const uint8_t *blk = x8_blk(tile, gstride, gs, s8, k);
  return s8 ? x8_s8(blk, r, k % 32) : (int)x8_code(blk, r, k % 32);
}

static void a16_q8(const uint8_t *tile, size_t gst, int s8, const float *sc, const float *mn, int K,
                   int gs, const int8_t *q, int qs, const float *d, int ds, const float *gsum,
                   int gss, int T, float *out) {
  int G = (K + gs - 1) / gs;
  size_t fs = gst / 4; /* floats from one group's scales to the next's */
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int g = 0; g < G; g++) {
        int k1 = (g + 1) * gs < K ? (g + 1) * gs : K;
        float gacc = 0;
        for (int b = g * gs / 32; b < k1 / 32; b++) {
          int32_t isum = 0;
          for (int k = 32 * b; k < 32 * b + 32; k++)
            isum += (int32_t)x8_any(tile, gst, gs, s8, r, k) * q[(size_t)t * qs + k];
          gacc += d[(size_t)t * ds + b] * (float)isum;
        }
        acc += sc[g * fs + r] * gacc + (mn ? mn[g * fs + r] * gsum[(size_t)t * gss + g] : 0.0f);
      }
      out[t * 8 + r] = acc;
    }
}

static void a16_f32(const uint8_t *tile, size_t gst, int s8, const float *sc, const float *mn,
                    int K, int gs, const float *x, int xs, const float *gsum, int gss, int T,
                    float *out) {
  int G = (K + gs - 1) / gs;
  size_t fs = gst / 4;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      double acc = 0;
      for (int g = 0; g < G; g++) {
        int k1 = (g + 1) * gs < K ? (g + 1) * gs : K;
        double s = 0;
        for (int k = g * gs; k < k1; k++)
          s += (double)x8_any(tile, gst, gs, s8, r, k) * x[(size_t)t * xs + k];
        acc += sc[g * fs + r] * s + (mn ? (double)mn[g * fs + r] * gsum[(size_t)t * gss + g] : 0.0);
      }
      out[t * 8 + r] = (float)acc;
    }
}

static void x8_u4_q8_ref(const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K,
                         int gs, const int8_t *q, int qs, const float *d, int ds, const float *gsum,
                         int gss, int T, float *out) {
  a16_q8(tile, gst, 0, sc, mn, K, gs, q, qs, d, ds, gsum, gss, T, out);
}
static void x8_u4_f32_ref(const uint8_t *tile, size_t gst, const float *sc, const float *mn, int K,
                          int gs, const float *x, int xs, const float *gsum, int gss, int T,
                          float *out) {
  a16_f32(tile, gst, 0, sc, mn, K, gs, x, xs, gsum, gss, T, out);
}
static void x8_s8a16_q8_ref(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                            int K, int gs, const int8_t *q, int qs, const float *d, int ds,
                            const float *gsum, int gss, int T, float *out) {
  a16_q8(tile, gst, 1, sc, mn, K, gs, q, qs, d, ds, gsum, gss, T, out);
}
static void x8_s8a16_f32_ref(const uint8_t *tile, size_t gst, const float *sc, const float *mn,
                             int K, int gs, const float *x, int xs, const float *gsum, int gss,
                             int T, float *out) {
  a16_f32(tile, gst, 1, sc, mn, K, gs, x, xs, gsum, gss, T, out);
}

static void x8_q4_0_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  int nb = K / 32;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = tile + (size_t)b * 144, *a = act + (size_t)t * as + (size_t)b * 34;
        int32_t isum = 0;
        for (int k = 0; k < 32; k++) isum += (int32_t)x8_code(blk, r, k) * (int8_t)a[2 + k];
        uint16_t hw, hx;
        memcpy(&hw, blk + 128 + 2 * r, 2);
        memcpy(&hx, a, 2);
        acc += (float)(isum - 8 * bsum[(size_t)t * bs + b]) * (mq_f16_to_f32(hw) * mq_f16_to_f32(hx));
      }
      out[t * 8 + r] = acc;
    }
}

static void x8_q45_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as, int T,
                         float *out, int five) {
  size_t tb = five ? 1440 : 1184, sc_at = five ? 1280 : 1024;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int sb = 0; sb < K / 256; sb++) {
        const uint8_t *blk = tile + (size_t)sb * tb, *a = act + (size_t)t * as + (size_t)sb * 292;
        int32_t isc = 0, imn = 0;
        for (int j = 0; j < 8; j++) {
          int32_t isum = 0;
          for (int k = 0; k < 32; k++) {
            unsigned u = five ? mq_x8_q5k_code(blk, r, 32 * j + k) : x8_code(blk + 128 * j, r, k);
            isum += (int32_t)u * (int8_t)a[4 + 32 * j + k];
          }
          int16_t b0, b1;
          memcpy(&b0, a + 260 + 4 * j, 2);
          memcpy(&b1, a + 262 + 4 * j, 2);
          isc += isum * blk[sc_at + 8 * j + r];
          imn += (b0 + b1) * blk[sc_at + 64 + 8 * j + r];
        }
        float dx;
        uint16_t hd, hm;
        memcpy(&dx, a, 4);
        memcpy(&hd, blk + sc_at + 128 + 2 * r, 2);
        memcpy(&hm, blk + sc_at + 144 + 2 * r, 2);
        acc += mq_f16_to_f32(hd) * dx * (float)isc - mq_f16_to_f32(hm) * dx * (float)imn;
      }
      out[t * 8 + r] = acc;
    }
}

static void x8_q4_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  x8_q45_k_ref(tile, K, act, as, T, out, 0);
}

static void x8_q5_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  x8_q45_k_ref(tile, K, act, as, T, out, 1);
}

static void x8_s8_q8_ref(const uint8_t *tile, size_t gst, const float *sc, int K, int gs,
                         const int8_t *q, int qs, int T, float *out) {
  int G = (K + gs - 1) / gs;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int g = 0; g < G; g++) {
        int k1 = (g + 1) * gs < K ? (g + 1) * gs : K;
        int32_t isum = 0;
        for (int k = g * gs; k < k1; k++)
          isum += x8_any(tile, gst, gs, 1, r, k) * q[(size_t)t * qs + k];
        acc += sc[g * (gst / 4) + r] * (float)isum;
      }
      out[t * 8 + r] = acc;
    }
}

static void x8_q8_0_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int b = 0; b < K / 32; b++) {
        const uint8_t *blk = tile + (size_t)b * 272, *a = act + (size_t)t * as + (size_t)b * 34;
        int32_t isum = 0;
        for (int k = 0; k < 32; k++) isum += x8_s8(blk, r, k) * (int8_t)a[2 + k];
        uint16_t hw, hx;
        memcpy(&hw, blk + 256 + 2 * r, 2);
        memcpy(&hx, a, 2);
        acc += (float)isum * (mq_f16_to_f32(hw) * mq_f16_to_f32(hx));
      }
      out[t * 8 + r] = acc;
    }
}

static float dot_mxfp8_f32_ref(const uint8_t *w, const uint8_t *e, const float *x, int n) {
  double acc = 0;
  for (int b = 0; b < n / 32; b++) {
    double s = 0;
    for (int i = 32 * b; i < 32 * b + 32; i++) s += (double)mq_e4m3_to_f32(w[i]) * x[i];
    acc += ldexp(s, (int)e[b] - 127);
  }
  return (float)acc;
}

static void mxfp8_to_f32_ref(const uint8_t *w, const uint8_t *e, float *dst, int n) {
  for (int i = 0; i < n; i++) dst[i] = (float)ldexp(mq_e4m3_to_f32(w[i]), (int)e[i / 32] - 127);
}

/* Q6_Kx8 (bits 6), Q3_Kx8 (3) or Q2_Kx8 (2) tiles: per super-block, the
 * integer sums of each 16-column sub-block's codes (centred for Q6_K/Q3_K)
 * times its scale, times d * d_x; Q2_K less dmin * d_x * sum_s m_s bsum_s. */
static void x8_sub16_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as, int T,
                         float *out, int bits) {
  size_t tb = bits == 6 ? MQ_X8_Q6_K_BLOCK : bits == 3 ? MQ_X8_Q3_K_BLOCK : MQ_X8_Q2_K_BLOCK;
  size_t sc_at = bits == 6 ? 1536 : bits == 3 ? 768 : 512;
  for (int t = 0; t < T; t++)
    for (int r = 0; r < 8; r++) {
      float acc = 0;
      for (int sb = 0; sb < K / 256; sb++) {
        const uint8_t *blk = tile + (size_t)sb * tb, *a = act + (size_t)t * as + (size_t)sb * 292;
        int32_t isum = 0, msum = 0;
        for (int s16 = 0; s16 < 16; s16++) {
          int32_t ss = 0;
          for (int k = 16 * s16; k < 16 * s16 + 16; k++) {
            int u = bits == 6   ? (int)mq_x8_q6k_code(blk, r, k) - 32
                    : bits == 3 ? (int)mq_x8_q3k_code(blk, r, k) - 4
                                : (int)mq_x8_q2k_code(blk, r, k);
            ss += u * (int8_t)a[4 + k];
          }
          uint8_t sv = blk[sc_at + 8 * s16 + r];
          if (bits == 2) {
            int16_t bs;
            memcpy(&bs, a + 260 + 2 * s16, 2);
            isum += ss * (sv & 15), msum += (sv >> 4) * bs;
          } else {
            isum += ss * (int8_t)sv;
          }
        }
        float dx;
        uint16_t hd[2];
        memcpy(&dx, a, 4);
        memcpy(hd, blk + sc_at + 128 + 2 * r, 2);
        acc += mq_f16_to_f32(hd[0]) * dx * (float)isum;
        if (bits == 2) { /* dmin: Q2_Kx8 only (past the end of the other blocks) */
          memcpy(hd + 1, blk + sc_at + 144 + 2 * r, 2);
          acc -= mq_f16_to_f32(hd[1]) * dx * (float)msum;
        }
      }
      out[t * 8 + r] = acc;
    }
}

static void x8_q6_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  x8_sub16_ref(tile, K, act, as, T, out, 6);
}

static void x8_q3_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  x8_sub16_ref(tile, K, act, as, T, out, 3);
}

static void x8_q2_k_ref(const uint8_t *tile, int K, const uint8_t *act, size_t as,
                        const int32_t *bsum, int bs, int T, float *out) {
  (void)bsum, (void)bs;
  x8_sub16_ref(tile, K, act, as, T, out, 2);
}

void mq_quantize_q8_32(const float *x, int n, int8_t *q, float *d) {
  for (int b = 0; b < n / 32; b++) {
    float amax = mq_amax(x + 32 * b, 32);
    float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
    d[b] = s;
    for (int i = 32 * b; i < 32 * b + 32; i++) {
      float r = mq_round_small(x[i] * inv); /* in [-127, 127] unless x holds NaN / inf */
      q[i] = (int8_t)(r >= 127.0f ? 127 : (r <= -128.0f ? -128 : (r == r ? r : 0)));
    }
  }
}

void mq_quantize_mxfp8(const float *x, int n, float *xf) {
  for (int b0 = 0; b0 < n; b0 += 32) {
    int e = mq_mx_shared_exp(mq_amax(x + b0, 32));
    float inv = ldexpf(1.0f, -e);
    for (int k = b0; k < b0 + 32; k++) /* exact: a power-of-two scale */
      xf[k] = ldexpf(mq_e4m3_to_f32(mq_f32_to_e4m3(x[k] * inv)), e);
  }
}

static void gguf_q8_x86_ref(const float *x, uint8_t *y, int n, int with_sum) {
  if (with_sum) mq_gguf_quantize_row_q8_1_x86(x, y, n);
  else mq_gguf_quantize_row_q8_0_x86(x, y, n);
}

static const mq_kernels k_ref = {
    .name = "scalar",
    .dot_f32 = dot_f32_ref,
    .dot_rows_f32 = dot_rows_f32_ref,
    .axpy_rows_f32 = axpy_rows_f32_ref,
    .softmax_f32 = mq_softmax,
    .swiglu_f32 = mq_swiglu,
    .f16_to_f32 = f16_to_f32_ref,
    .q8_0_to_f32 = q8_0_to_f32_ref,
    .bf16_to_f32 = bf16_to_f32_ref,
    .dot_f16_f32 = dot_f16_f32_ref,
    .dot_bf16_f32 = dot_bf16_f32_ref,
    .dot_u4_f32 = dot_u4_f32_ref,
    .dot_u8_f32 = dot_u8_f32_ref,
    .dot_s8_f32 = dot_s8_f32_ref,
    .dot_s8s8 = dot_s8s8_ref,
    .dot_u4_q8 = dot_u4_q8_ref,
    .dot_u8_q8 = dot_u8_q8_ref,
    .dot4_u4_q8 = dot4_u4_q8_ref,
    .dot_mxfp8_f32 = dot_mxfp8_f32_ref,
    /* .dot4x4_f32 NULL: mq_float_block takes the tier's dot_f32 per pair */
    .mxfp8_to_f32 = mxfp8_to_f32_ref,
    .gguf_q8_x86 = gguf_q8_x86_ref,
    .quantize_q8_32 = mq_quantize_q8_32,
    .quantize_mxfp8 = mq_quantize_mxfp8,
    .x8_u4_q8 = x8_u4_q8_ref,
    .x8_u4_f32 = x8_u4_f32_ref,
    .x8_s8a16_q8 = x8_s8a16_q8_ref,
    .x8_s8a16_f32 = x8_s8a16_f32_ref,
    .x8_q4_0 = x8_q4_0_ref,
    .x8_q4_k = x8_q4_k_ref,
    .x8_q5_k = x8_q5_k_ref,
    .x8_q6_k = x8_q6_k_ref,
    .x8_q3_k = x8_q3_k_ref,
    .x8_q2_k = x8_q2_k_ref,
    .x8_s8_q8 = x8_s8_q8_ref,
    .x8_q8_0 = x8_q8_0_ref,
    /* .gguf_dot: all NULL, mq_gguf_vec_dot is the reference */
};

const mq_kernels *mq_kern_ref(void) { return &k_ref; }

const float *mq_row_f32(const mq_kernels *k, mq_dtype dt, const void *src, float *dst, int n) {
  switch (dt) {
  case MQ_DTYPE_F32:
    if (((uintptr_t)src & 3) == 0) return src;
    memcpy(dst, src, (size_t)n * 4);
    return dst;
  case MQ_DTYPE_F16: k->f16_to_f32(src, dst, n); return dst;
  case MQ_DTYPE_BF16: k->bf16_to_f32(src, dst, n); return dst;
  default: return NULL; /* callers only pass float dtypes (checked at load) */
  }
}

void mq_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  float r = (float)(1.0 / sqrt(ss / n + eps));
  for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

void mq_softmax(float *x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  double s = 0;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - mx);
    s += x[i];
  }
  float inv = (float)(1.0 / s);
  for (int i = 0; i < n; i++) x[i] *= inv;
}

void mq_swiglu(float *g, const float *u, int n) {
  for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
