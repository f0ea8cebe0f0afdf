/* GGUF weight quantizers: see gguf_quantize.h. Written from the block
 * layouts (formats.md §5.3-5.4) and checked against gguf_blocks.c's
 * dequantizers (tests/test_gguf_write.c). */
#include "quant/gguf_quantize.h"

#include <math.h>
#include <string.h>

#include "core/numconv.h"
#include "mixq.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK 32
#define QKK 256
#define TINY 1e-30f

static void wr_f16(uint8_t *p, float v) {
  uint16_t h = mq_f32_to_f16(v);
  p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

static float f16_round(float v) { return mq_f16_to_f32(mq_f32_to_f16(v)); }

/* x[0..n) with tiny values flushed to zero */
static void load(const float *x, float *v, int n) {
  for (int i = 0; i < n; i++) v[i] = fabsf(x[i]) < TINY ? 0.0f : x[i];
}

/* The value of largest magnitude (signed; the first one on ties). */
static float signed_max(const float *v, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; i++)
    if (fabsf(v[i]) > amax) amax = fabsf(v[i]), max = v[i];
  return max;
}

/* Q4_0 (levels 16) and Q5_0 (levels 32): d = max / -(levels/2),
 * q = min(levels-1, trunc(x/d + levels/2 + 0.5)). Codes of one block in q. */
static float legacy_codes(const float *x, int levels, int q[QK]) {
  float v[QK];
  load(x, v, QK);
  float d = signed_max(v, QK) / (float)-(levels / 2);
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < QK; j++) {
    float t = v[j] * id + (float)(levels / 2) + 0.5f; /* in [0.5, levels + 0.5] */
    int c = (int)t;
    q[j] = c > levels - 1 ? levels - 1 : c < 0 ? 0 : c;
  }
  return d;
}

static void q4_0_block(const float *x, uint8_t *b) {
  int q[QK];
  wr_f16(b, legacy_codes(x, 16, q));
  for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q5_0_block(const float *x, uint8_t *b) {
  int q[QK];
  wr_f16(b, legacy_codes(x, 32, q));
  uint32_t h = 0;
  for (int j = 0; j < 16; j++) {
    b[6 + j] = (uint8_t)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
    h |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
  }
  for (int i = 0; i < 4; i++) b[2 + i] = (uint8_t)(h >> (8 * i));
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- Q4_K: affine sub-blocks of 32, y = S*q - M, q in 0..15, M >= 0 ---- */

/* Fit S, M for v[0..n) by min/max, then two rounds of least squares on the
 * codes (keeping M >= 0). */
static void fit_affine(const float *v, int n, float *S, float *M) {
  float mn = v[0], mx = v[0];
  for (int i = 1; i < n; i++) mn = v[i] < mn ? v[i] : mn, mx = v[i] > mx ? v[i] : mx;
  if (mn > 0) mn = 0;
  float s = (mx - mn) / 15.0f, m = -mn;
  for (int it = 0; it < 2 && s > 0; it++) {
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; i++) {
      int q = clampi((int)lrintf((v[i] + m) / s), 0, 15);
      sq += q, sqq += (double)q * q, sx += v[i], sxq += (double)v[i] * q;
    }
    /* minimize sum (s*q - m - x)^2 over s, m */
    double det = n * sqq - sq * sq;
    if (det <= 0) break;
    double ns = (n * sxq - sq * sx) / det, nm = (sq * sxq - sqq * sx) / det;
    if (nm < 0) { /* M must stay >= 0: refit the scale alone with M = 0 */
      nm = 0;
      ns = sqq > 0 ? sxq / sqq : 0;
    }
    if (!(ns > 0)) break;
    s = (float)ns, m = (float)nm;
  }
  *S = s > 0 ? s : 0, *M = m;
}

static void q4_k_block(const float *x, uint8_t *b) {
  float v[QKK], S[8], M[8], smax = 0, mmax = 0;
  load(x, v, QKK);
  for (int j = 0; j < 8; j++) {
    fit_affine(v + 32 * j, 32, &S[j], &M[j]);
    smax = S[j] > smax ? S[j] : smax, mmax = M[j] > mmax ? M[j] : mmax;
  }
  float d = f16_round(smax / 63.0f), dmin = f16_round(mmax / 63.0f);
  wr_f16(b, d), wr_f16(b + 2, dmin);
  uint8_t *s = b + 4, *qs = b + 16;
  memset(s, 0, 12);
  int q[QKK];
  for (int j = 0; j < 8; j++) {
    int sc = d > 0 ? clampi((int)lrintf(S[j] / d), 0, 63) : 0;
    int mn = dmin > 0 ? clampi((int)lrintf(M[j] / dmin), 0, 63) : 0;
    if (j < 4) {
      s[j] |= (uint8_t)sc, s[j + 4] |= (uint8_t)mn;
    } else { /* low 4 bits in s[j+4], high 2 bits on top of s[j-4] (scale) / s[j] (min) */
      s[j + 4] = (uint8_t)((sc & 0xF) | (mn & 0xF) << 4);
      s[j - 4] |= (uint8_t)((sc >> 4) << 6);
      s[j] |= (uint8_t)((mn >> 4) << 6);
    }
    float ds = d * (float)sc, dm = dmin * (float)mn;
    for (int l = 0; l < 32; l++)
      q[32 * j + l] = ds > 0 ? clampi((int)lrintf((v[32 * j + l] + dm) / ds), 0, 15) : 0;
  }
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++)
      qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

/* ---- Q6_K: symmetric sub-blocks of 16, y = S*q, q in -32..31 ---- */

static float fit_sym(const float *v, int n) {
  float s = signed_max(v, n) / -32.0f;
  for (int it = 0; it < 2 && s != 0; it++) {
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; i++) {
      int q = clampi((int)lrintf(v[i] / s), -32, 31);
      sxq += (double)v[i] * q, sqq += (double)q * q;
    }
    if (sqq <= 0) break;
    float ns = (float)(sxq / sqq);
    if (ns == 0 || (ns > 0) != (s > 0)) break; /* keep the sign that maps the extreme to -32 */
    s = ns;
  }
  return s;
}

static void q6_k_block(const float *x, uint8_t *b) {
  float v[QKK], S[16], smax = 0;
  load(x, v, QKK);
  for (int j = 0; j < 16; j++) {
    S[j] = fit_sym(v + 16 * j, 16);
    if (fabsf(S[j]) > fabsf(smax)) smax = S[j];
  }
  float d = f16_round(smax / -128.0f);
  wr_f16(b + 208, d);
  int q[QKK];
  for (int j = 0; j < 16; j++) {
    int sc = d != 0 ? clampi((int)lrintf(S[j] / d), -128, 127) : 0;
    b[192 + j] = (uint8_t)(int8_t)sc;
    float ds = d * (float)sc;
    for (int l = 0; l < 16; l++)
      q[16 * j + l] = (ds != 0 ? clampi((int)lrintf(v[16 * j + l] / ds), -32, 31) : 0) + 32;
  }
  uint8_t *ql = b, *qh = b + 128;
  for (int h = 0; h < 2; h++) {
    const int *y = q + 128 * h;
    for (int l = 0; l < 32; l++) {
      ql[64 * h + l] = (uint8_t)((y[l] & 0xF) | (y[l + 64] & 0xF) << 4);
      ql[64 * h + l + 32] = (uint8_t)((y[l + 32] & 0xF) | (y[l + 96] & 0xF) << 4);
      qh[32 * h + l] = (uint8_t)((y[l] >> 4) | (y[l + 32] >> 4) << 2 | (y[l + 64] >> 4) << 4 |
                                 (y[l + 96] >> 4) << 6);
    }
  }
}

int mq_gguf_quantize_supported(uint32_t type) {
  switch (type) {
  case MQ_GGML_TYPE_F32:
  case MQ_GGML_TYPE_F16:
  case MQ_GGML_TYPE_BF16:
  case MQ_GGML_TYPE_Q8_0:
  case MQ_GGML_TYPE_Q4_0:
  case MQ_GGML_TYPE_Q5_0:
  case MQ_GGML_TYPE_Q4_K:
  case MQ_GGML_TYPE_Q6_K: return 1;
  default: return 0;
  }
}

int mq_gguf_quantize_row(uint32_t type, const float *x, void *dst, int64_t n) {
  if (!mq_gguf_quantize_supported(type)) return MQ_ERR_UNSUPPORTED;
  if (mq_ggml_row_size(type, n) < 0) return MQ_ERR_ARG;
  uint8_t *o = dst;
  switch (type) {
  case MQ_GGML_TYPE_F32:
    for (int64_t i = 0; i < n; i++) {
      uint32_t u = mq_f32_to_bits(x[i]);
      for (int k = 0; k < 4; k++) o[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    break;
  case MQ_GGML_TYPE_F16:
    for (int64_t i = 0; i < n; i++) wr_f16(o + 2 * i, x[i]);
    break;
  case MQ_GGML_TYPE_BF16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t h = mq_f32_to_bf16(x[i]);
      o[2 * i] = (uint8_t)h, o[2 * i + 1] = (uint8_t)(h >> 8);
    }
    break;
  case MQ_GGML_TYPE_Q8_0:
    for (int64_t i = 0; i < n; i += QK) {
      float v[QK];
      load(x + i, v, QK);
      mq_gguf_quantize_row_q8_0(v, o + i / QK * 34, QK);
    }
    break;
  case MQ_GGML_TYPE_Q4_0:
    for (int64_t i = 0; i < n; i += QK) q4_0_block(x + i, o + i / QK * 18);
    break;
  case MQ_GGML_TYPE_Q5_0:
    for (int64_t i = 0; i < n; i += QK) q5_0_block(x + i, o + i / QK * 22);
    break;
  case MQ_GGML_TYPE_Q4_K:
    for (int64_t i = 0; i < n; i += QKK) q4_k_block(x + i, o + i / QKK * 144);
    break;
  case MQ_GGML_TYPE_Q6_K:
    for (int64_t i = 0; i < n; i += QKK) q6_k_block(x + i, o + i / QKK * 210);
    break;
  }
  return MQ_OK;
}
