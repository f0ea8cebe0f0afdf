/* SIMD kernels against the scalar reference on random data. */
#include "core/numconv.h"
#include "core/pool.h"
#include "kernels/kernels.h"
#include "kernels/linear.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"
#include "test.h"

/* A tier's GGUF kernel for type t, or the scalar definition where it has none. */
static float gdot(const mq_kernels *k, int t, int n, const void *w, const void *a) {
  return k->gguf_dot[t] ? k->gguf_dot[t](n, w, a) : mq_gguf_vec_dot(t, n, w, a);
}

/* The A16 activation blocks equal mq_quantize_q8_32 byte for byte: blocks
 * of different magnitudes, zeros, exact ties (amax 127: codes x rounded to
 * even), subnormal values, a NaN, an infinity. */
static void check_q8_32(const mq_kernels *k) {
  enum { NB = 10, N = 32 * NB };
  float x[N], da[NB], dr[NB];
  int8_t qa[N], qr[N];
  for (int i = 0; i < N; i++) x[i] = mqt_randf(-1, 1) * powf(10.0f, (float)(i / 32 % 5) - 2.0f);
  for (int i = 0; i < 32; i++) x[32 + i] = 0.0f, x[64 + i] = (float)(i - 16) + 0.5f;
  x[64] = -127.0f;
  for (int i = 0; i < 32; i++) x[96 + i] = mqt_randf(-1, 1) * 1e-40f;
  x[128 + 3] = NAN, x[160 + 30] = INFINITY;
  k->quantize_q8_32(x, N, qa, da);
  mq_quantize_q8_32(x, N, qr, dr);
  CHECK_MSG(memcmp(qa, qr, sizeof qa) == 0 && memcmp(da, dr, sizeof da) == 0,
            "%s: quantize_q8_32 differs from the reference", k->name);
}

/* MXFP8 activations equal mq_quantize_mxfp8 bit for bit: blocks of many
 * magnitudes (float subnormals included), zeros and -0, exact ties between
 * E4M3 neighbours (both parities), values that round up an exponent or
 * saturate, a NaN and an infinity (the block falls back). The reference
 * against values computed here: E4M3 grid points times 2^e. */
static void check_mxfp8_quant(const mq_kernels *k) {
  enum { NB = 12, N = 32 * NB };
  float x[N], xa[N], xr[N];
  for (int i = 0; i < N; i++) x[i] = mqt_randf(-1, 1) * powf(10.0f, (float)(i / 32 % 9) * 4.0f - 20.0f);
  for (int i = 0; i < 32; i++) x[i] = 0.0f, x[32 + i] = mqt_randf(-1, 1) * 1e-41f;
  x[5] = -0.0f;
  /* block 2: amax 256, so e = 0 and the grid step over [8, 16) is 1: ties
   * 8.5 -> 8, 9.5 -> 10, 15.5 -> 16 (up an exponent); below 2^-6 the step
   * is 2^-9: 7.5 steps -> 2^-6 (into the normal range), 2.5 steps -> 2 */
  for (int i = 0; i < 32; i++) x[64 + i] = mqt_randf(-200, 200);
  x[64] = 256.0f, x[65] = 8.5f, x[66] = 9.5f, x[67] = -8.5f, x[68] = 15.5f;
  x[69] = 7.5f / 512, x[70] = 2.5f / 512;
  /* block 3: amax 511, e = 0 again: 479 and -511 saturate, 447.9 rounds to 448 */
  for (int i = 0; i < 32; i++) x[96 + i] = mqt_randf(-1, 1) * 500.0f;
  x[96] = 479.0f, x[97] = -511.0f, x[98] = 447.9f;
  x[128 + 7] = NAN, x[160 + 2] = INFINITY, x[192 + 9] = -INFINITY;
  k->quantize_mxfp8(x, N, xa);
  mq_quantize_mxfp8(x, N, xr);
  int differ = 0;
  for (int i = 0; i < N; i++)
    if (memcmp(&xa[i], &xr[i], 4) != 0 && differ++ < 4)
      fprintf(stderr, "  [%d] x %a: %a vs reference %a\n", i, x[i], xa[i], xr[i]);
  CHECK_MSG(!differ, "%s: quantize_mxfp8: %d values differ from the reference", k->name, differ);
  if (k == mq_kern_ref()) {
    CHECK(xr[65] == 8.0f && xr[66] == 10.0f && xr[67] == -8.0f && xr[68] == 16.0f);
    CHECK(xr[69] == 8.0f / 512 && xr[70] == 2.0f / 512);
    CHECK(xr[96] == 448.0f && xr[97] == -448.0f && xr[98] == 448.0f);
    CHECK(signbit(xr[5]) && xr[5] == 0.0f && xr[0] == 0.0f && isnan(xr[135]));
    /* block 1 (amax about 1e-41, 2^-136: e clamped to -127): the subnormal
     * E4M3 steps of 2^-9 * 2^-127, each value within half a step */
    for (int i = 32; i < 64; i++) CHECK(fabsf(xr[i] - x[i]) <= 0x1p-137f);
  }
}

/* Q8_0 blocks back to floats (the q8_0 KV cache): every tier equals the
 * reference bit for bit, the reference equals d * q computed here, and that
 * lies within about half a step of what was quantized. */
static void check_q8_0_rows(const mq_kernels *k) {
  enum { NB = 9, N = 32 * NB };
  float x[N], a[N], r[N];
  uint8_t blk[NB * 34];
  /* blocks of 0.1 .. 1000: d = amax / 127 stays a normal f16 (below about
   * 0.008 it is subnormal and coarser, as in llama.cpp) */
  for (int i = 0; i < N; i++) x[i] = mqt_randf(-1, 1) * powf(10.0f, (float)(i / 32 % 5) - 1.0f);
  mq_kern_ref()->gguf_q8_x86(x, blk, N, 0);
  k->q8_0_to_f32(blk, a, N);
  mq_kern_ref()->q8_0_to_f32(blk, r, N);
  CHECK_MSG(memcmp(a, r, sizeof a) == 0, "%s: q8_0_to_f32 differs from the reference", k->name);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    uint16_t h;
    memcpy(&h, blk + 34 * (i / 32), 2);
    float want = mq_f16_to_f32(h) * (float)(int8_t)blk[34 * (i / 32) + 2 + i % 32];
    /* half a step, plus 127 codes times the rounding of d to f16 (2^-11 d) */
    bad += r[i] != want || fabsf(r[i] - x[i]) > 0.57f * fabsf(mq_f16_to_f32(h)) + 1e-12f;
  }
  CHECK_MSG(!bad, "%s: q8_0_to_f32: %d values not d * q near x", k->name, bad);
}

/* SwiGLU against the reference (libm expf): within 5e-7 relative (a few
 * ulp: the tiers' exp polynomial, a reciprocal and two products; 1e-35
 * absolute, where the polynomial flushes e^-87 and below to 0), on both
 * signs, the saturating ends (|g| past 87), zeros, odd lengths, NaN and
 * infinities where the reference gives them. */
static void check_swiglu(const mq_kernels *k) {
  enum { N = 203 };
  float g[N], u[N], a[N], r[N];
  for (int i = 0; i < N; i++) g[i] = mqt_randf(-20, 20), u[i] = mqt_randf(-3, 3);
  g[0] = 0.0f, g[1] = -0.0f, g[2] = 100.0f, g[3] = -100.0f, g[4] = 1e-30f, g[5] = 88.5f;
  g[6] = -88.5f, g[7] = NAN, g[8] = INFINITY, g[9] = -INFINITY, g[10] = 1e30f, g[11] = -1e30f;
  memcpy(a, g, sizeof g);
  memcpy(r, g, sizeof g);
  k->swiglu_f32(a, u, N);
  mq_swiglu(r, u, N);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    if (isnan(r[i]) || isnan(a[i])) bad += !(isnan(r[i]) && isnan(a[i]));
    else if (a[i] != r[i] && !(fabsf(a[i] - r[i]) <= 5e-7f * fabsf(r[i]) + 1e-35f) && bad++ < 3)
      fprintf(stderr, "  g %g u %g: %.9g vs reference %.9g\n", g[i], u[i], a[i], r[i]);
  }
  CHECK_MSG(!bad, "%s: swiglu_f32: %d values off the reference", k->name, bad);
}

static void check_table(const mq_kernels *k) {
  check_q8_32(k);
  check_swiglu(k);
  check_q8_0_rows(k);
  check_mxfp8_quant(k);
  const mq_kernels *ref = mq_kern_ref();
  for (int n = 1; n <= 300; n += (n < 40 ? 1 : (n == 40 ? 24 : 37))) { /* includes 64, 288 */
    float a[300], b[300], fa[300], fb[300];
    uint16_t h[300], bh[300];
    for (int i = 0; i < n; i++) {
      a[i] = mqt_randf(-2, 2), b[i] = mqt_randf(-2, 2);
      h[i] = mq_f32_to_f16(mqt_randf(-100, 100));
      bh[i] = mq_f32_to_bf16(mqt_randf(-1e6f, 1e6f));
    }
    double sum_abs = 0;
    for (int i = 0; i < n; i++) sum_abs += fabs((double)a[i] * b[i]);
    /* f32 accumulation vs double: bounded by n * eps * sum|a*b| */
    CHECK_NEAR(k->dot_f32(a, b, n), ref->dot_f32(a, b, n), 1e-6 * n * sum_abs + 1e-30);
    if (k->dot4x4_f32) { /* the 4 x 4 block: rows and tokens from a, b, h's floats (one repeated) */
      float hf[300];
      ref->f16_to_f32(h, hf, n);
      const float *w4[4] = {a, b, hf, a}, *x4[4] = {b, hf, a, b};
      float o[16];
      k->dot4x4_f32(w4, x4, 4, n, o);
      for (int t = 0; t < 4; t++)
        for (int r = 0; r < 4; r++) {
          double sa = 0;
          for (int i = 0; i < n; i++) sa += fabs((double)w4[r][i] * x4[t][i]);
          CHECK_NEAR(o[t * 4 + r], ref->dot_f32(w4[r], x4[t], n), 1e-6 * n * sa + 1e-30);
        }
      /* fewer tokens: the same sums bit for bit, nothing written past them */
      for (int nt = 1; nt < 4; nt++) {
        float o2[16];
        for (int i = 0; i < 16; i++) o2[i] = -7.0f;
        k->dot4x4_f32(w4, x4, nt, n, o2);
        CHECK_MSG(memcmp(o2, o, sizeof(float) * 4 * (size_t)nt) == 0, "%s dot4x4 nt %d n %d",
                  k->name, nt, n);
        int untouched = 1;
        for (int i = 4 * nt; i < 16; i++) untouched &= o2[i] == -7.0f;
        CHECK(untouched);
      }
    }
    k->f16_to_f32(h, fa, n);
    ref->f16_to_f32(h, fb, n);
    CHECK(memcmp(fa, fb, (size_t)n * 4) == 0); /* conversions are exact */
    k->bf16_to_f32(bh, fa, n);
    ref->bf16_to_f32(bh, fb, n);
    CHECK(memcmp(fa, fb, (size_t)n * 4) == 0);
    /* integer codes times floats: codes are exact, so only summation order differs */
    uint8_t cu[300];
    int8_t cs[300];
    double s4 = 0, s8 = 0;
    for (int i = 0; i < n; i++) {
      cu[i] = (uint8_t)(mqt_rand() >> 56);
      cs[i] = (int8_t)(mqt_rand() >> 56);
      s8 += fabs((double)cu[i] * a[i]);
      s4 += 15 * fabs(a[i]);
    }
    int ne = n & ~1;
    { /* 16-bit float rows dotted in place: sum of |w x| bounds the f32 rounding */
      double sh = 0, sb = 0;
      for (int i = 0; i < n; i++)
        sh += fabs((double)mq_f16_to_f32(h[i]) * a[i]), sb += fabs((double)mq_bf16_to_f32(bh[i]) * a[i]);
      CHECK_NEAR(k->dot_f16_f32(h, a, n), ref->dot_f16_f32(h, a, n), 1e-6 * n * sh + 1e-30);
      CHECK_NEAR(k->dot_bf16_f32(bh, a, n), ref->dot_bf16_f32(bh, a, n), 1e-6 * n * sb + 1e-30);
      double dh = 0;
      for (int i = 0; i < n; i++) dh += (double)mq_f16_to_f32(h[i]) * a[i];
      CHECK_NEAR(ref->dot_f16_f32(h, a, n), dh, 1e-6 * sh + 1e-30);
    }
    CHECK_NEAR(k->dot_u4_f32(cu, a, ne), ref->dot_u4_f32(cu, a, ne), 1e-6 * n * s4 + 1e-30);
    CHECK_NEAR(k->dot_u8_f32(cu, a, n), ref->dot_u8_f32(cu, a, n), 1e-6 * n * s8 + 1e-30);
    CHECK_NEAR(k->dot_s8_f32(cs, a, n), ref->dot_s8_f32(cs, a, n), 1e-6 * n * s8 + 1e-30);
    CHECK(k->dot_s8s8(cs, (const int8_t *)cu, n) == ref->dot_s8s8(cs, (const int8_t *)cu, n));
    if (n % 32 == 0) { /* MXFP8 rows: E4M3 codes (NaN codes excluded) with block exponents */
      uint8_t e8[10], cw[300];
      for (int i = 0; i < n; i++) cw[i] = (cu[i] & 0x7f) == 0x7f ? cu[i] ^ 1 : cu[i];
      for (int i = 0; i < n / 32; i++) e8[i] = (uint8_t)(112 + mqt_rand() % 32);
      double sm = 0;
      for (int i = 0; i < n; i++) sm += fabs(mq_e4m3_to_f32(cw[i]) * ldexp(1, e8[i / 32] - 127) * a[i]);
      CHECK_NEAR(k->dot_mxfp8_f32(cw, e8, a, n), ref->dot_mxfp8_f32(cw, e8, a, n), 1e-6 * n * sm + 1e-30);
      /* extreme block exponents: 2^(e - 127) from 2^-127 to 2^127 (the SIMD
       * kernels build 2^(e - 119) by parts past e = 254 - 8), activations of
       * the huge blocks scaled down to keep the sums finite */
      float ax[300];
      static const uint8_t ext[] = {0, 1, 7, 246, 247, 250, 254};
      for (int j = 0; j < 7; j++) { /* every exponent in the first block */
        sm = 0;
        for (int i = 0; i < n / 32; i++) e8[i] = ext[(j + 3 * i) % 7];
        for (int i = 0; i < n; i++) {
          ax[i] = e8[i / 32] > 200 ? ldexpf(a[i], -120) : a[i];
          sm += fabs(mq_e4m3_to_f32(cw[i]) * ldexp(1, e8[i / 32] - 127) * ax[i]);
        }
        CHECK_NEAR(k->dot_mxfp8_f32(cw, e8, ax, n), ref->dot_mxfp8_f32(cw, e8, ax, n),
                   1e-6 * n * sm + 1e-30);
        /* the row conversion is exact: powers of two times E4M3 values */
        float wk[300], wr[300];
        k->mxfp8_to_f32(cw, e8, wk, n);
        ref->mxfp8_to_f32(cw, e8, wr, n);
        int differ = 0;
        for (int i = 0; i < n; i++) differ += wk[i] != wr[i];
        CHECK_MSG(!differ, "%s mxfp8_to_f32 n %d: %d values differ", k->name, n, differ);
      }
    }
    if (n % 32 == 0) { /* fast A16 path: int8 activation blocks */
      int8_t xq[300];
      float xd[10];
      mq_quantize_q8_32(a, n, xq, xd);
      for (int i = 0; i < n; i++) CHECK(abs(xq[i] - (int)nearbyintf(a[i] / xd[i / 32])) <= 1);
      double r4 = ref->dot_u4_q8(cu, xq, xd, n), r8 = ref->dot_u8_q8(cu, xq, xd, n);
      CHECK_NEAR(k->dot_u4_q8(cu, xq, xd, n), r4, 1e-5 * (fabs(r4) + s4));
      CHECK_NEAR(k->dot_u8_q8(cu, xq, xd, n), r8, 1e-5 * (fabs(r8) + s8));
      /* four tokens at once equal four single dots (token j = a rotated by j) */
      static int8_t q4[4][300];
      static float d4[4][10];
      float o4[4];
      for (int jj = 0; jj < 4; jj++) {
        float rot[300];
        for (int i = 0; i < n; i++) rot[i] = a[(i + jj) % n];
        mq_quantize_q8_32(rot, n, q4[jj], d4[jj]);
      }
      k->dot4_u4_q8(cu, q4[0], 300, d4[0], 10, n, o4);
      for (int jj = 0; jj < 4; jj++) {
        double one = ref->dot_u4_q8(cu, q4[jj], d4[jj], n);
        CHECK_NEAR(o4[jj], one, 1e-5 * (fabs(one) + s4));
      }
      /* GGUF Q4_0 / Q8_0 rows against Q8_0 activation blocks */
      static uint8_t w40[10 * 18], w80[10 * 34], a80[10 * 34];
      for (int bb = 0; bb < n / 32; bb++) {
        uint16_t d1 = mq_f32_to_f16(mqt_randf(-0.1f, 0.1f)), d2 = mq_f32_to_f16(mqt_randf(0.001f, 0.1f));
        memcpy(w40 + 18 * bb, &d1, 2);
        memcpy(w80 + 34 * bb, &d1, 2);
        memcpy(a80 + 34 * bb, &d2, 2);
        for (int i = 0; i < 16; i++) w40[18 * bb + 2 + i] = (uint8_t)(mqt_rand() >> 56);
        for (int i = 0; i < 32; i++) {
          w80[34 * bb + 2 + i] = (uint8_t)(mqt_rand() >> 56);
          a80[34 * bb + 2 + i] = (uint8_t)(int8_t)((int)(mqt_rand() % 255) - 127);
        }
      }
      double g4 = mq_gguf_vec_dot(MQ_GGML_TYPE_Q4_0, n, w40, a80), g8 = mq_gguf_vec_dot(MQ_GGML_TYPE_Q8_0, n, w80, a80);
      CHECK_NEAR(gdot(k, MQ_GGML_TYPE_Q4_0, n, w40, a80), g4, 1e-5 * fabs(g4) + 1e-4);
      CHECK_NEAR(gdot(k, MQ_GGML_TYPE_Q8_0, n, w80, a80), g8, 1e-5 * fabs(g8) + 1e-4);
      /* and the fast dot approximates the exact one within the int8 step */
      CHECK_NEAR(r8, ref->dot_u8_f32(cu, a, n), 0.01 * s8 + 1e-6);
    }
  }
}

/* Integer linear (U4 / U8 / S8 codes, groups with a partial last one, mins,
 * act-order permutation) vs a double loop over mq_linear_dequant_row. */
static void check_int_linear(mq_codes codes, int gs, int with_mins, int with_perm, int n_threads) {
  enum { N = 333, K = 72, T = 3 }; /* > 65536 multiply-adds: the threaded path */
  int G = (K + gs - 1) / gs;
  static uint8_t data[N * K];
  static float scales[N * 16], mins[N * 16], x[T * K], y[T * N], wrow[K], gather[T * (2 * K + 16)];
  static int32_t perm[K];
  for (int i = 0; i < N * K; i++) data[i] = (uint8_t)(mqt_rand() >> 56);
  for (int i = 0; i < N * G; i++) scales[i] = mqt_randf(-0.1f, 0.1f), mins[i] = mqt_randf(-1, 1);
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-1, 1);
  for (int i = 0; i < K; i++) perm[i] = i;
  for (int i = K - 1; i > 0; i--) {
    int j = (int)(mqt_rand() % (uint64_t)(i + 1)), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_INT};
  l.q = (mq_qint){codes, codes == MQ_CODES_U4 ? 4 : 8, gs, G, data, scales,
                  with_mins ? mins : NULL, with_perm ? perm : NULL};
  mq_pool *pool = mq_pool_init(n_threads);
  float *scratch[8];
  for (int t = 0; t < mq_pool_size(pool); t++) scratch[t] = malloc(MQ_SCRATCH_ROWS * K * sizeof(float));
  mq_exec ex = {pool, mq_kern(), scratch, gather};
  CHECK(mq_linear_gather_floats(&l) * T <= (int)(sizeof gather / sizeof gather[0]));
  mq_linear_forward(&l, x, T, y, &ex);
  double worst = 0;
  for (int o = 0; o < N; o++) {
    mq_linear_dequant_row(&l, o, wrow);
    for (int t = 0; t < T; t++) {
      double s = 0;
      for (int i = 0; i < K; i++) s += (double)wrow[i] * x[t * K + i];
      worst = fmax(worst, fabs(s - y[t * N + o]));
    }
  }
  /* dequant_row also defines the math: check one weight by hand */
  mq_linear_dequant_row(&l, 3, wrow);
  int j = 5, k = with_perm ? perm[j] : j;
  double c = codes == MQ_CODES_U4 ? (data[3 * K / 2 + j / 2] >> 4 * (j & 1)) & 15
                                  : codes == MQ_CODES_U8 ? data[3 * K + j] : (int8_t)data[3 * K + j];
  double want = c * scales[3 * G + j / gs] + (with_mins ? mins[3 * G + j / gs] : 0);
  CHECK_NEAR(wrow[k], want, 1e-6 * (1 + fabs(want))); /* float rounding of c * s + m */
  CHECK_MSG(worst < 1e-4, "int linear codes %d gs %d mins %d perm %d: max error %g", codes, gs,
            with_mins, with_perm, worst);
  for (int t = 0; t < mq_pool_size(pool); t++) free(scratch[t]);
  mq_pool_free(pool);
}

/* Linear forward of every float dtype, threaded, vs a double-precision loop. */
static void check_linear(mq_dtype dt, int n_threads) {
  enum { N = 67, K = 300, T = 5 }; /* > 65536 multiply-adds: the threaded path */
  static float wf[N * K], x[T * K], y[T * N], bias[N];
  static uint16_t wh[N * K];
  for (int i = 0; i < N * K; i++) {
    float v = mqt_randf(-1, 1);
    wh[i] = dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v) : mq_f32_to_bf16(v);
    wf[i] = dt == MQ_DTYPE_F32 ? v : dt == MQ_DTYPE_F16 ? mq_f16_to_f32(wh[i]) : mq_bf16_to_f32(wh[i]);
  }
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-1, 1);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1);
  mq_pool *pool = mq_pool_init(n_threads);
  float *scratch[8];
  for (int t = 0; t < mq_pool_size(pool); t++) scratch[t] = malloc(MQ_SCRATCH_ROWS * K * sizeof(float));
  mq_exec ex = {pool, mq_kern(), scratch, NULL};
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_FLOAT, .dtype = dt,
                 .w = dt == MQ_DTYPE_F32 ? (const void *)wf : (const void *)wh, .bias = bias};
  mq_linear_forward(&l, x, T, y, &ex);
  double worst = 0;
  for (int t = 0; t < T; t++)
    for (int o = 0; o < N; o++) {
      double s = bias[o];
      for (int i = 0; i < K; i++) s += (double)wf[o * K + i] * x[t * K + i];
      double d = fabs(s - y[t * N + o]);
      worst = d > worst ? d : worst;
    }
  CHECK_MSG(worst < 1e-5, "linear %s threads %d: max error %g", mq_dtype_name(dt), n_threads, worst);
  for (int t = 0; t < mq_pool_size(pool); t++) free(scratch[t]);
  mq_pool_free(pool);
}

typedef struct {
  int hits[1000];
} cover;

static void mark(void *ctx, int b, int e, int tid) {
  (void)tid;
  for (int i = b; i < e; i++) ((cover *)ctx)->hits[i]++;
}

/* GGUF K-quant rows (random bits, sane fp16 scales) against Q8_K blocks
 * quantized by the reference quantizer: the table's kernel vs the scalar
 * reference dot product. */
static void check_kquants(const mq_kernels *k) {
  enum { NB = 3, N = 256 * NB };
  static uint8_t w4[144 * NB], w6[210 * NB], act[292 * NB];
  static float x[N];
  for (int i = 0; i < N; i++) x[i] = mqt_randf(-2, 2);
  mq_gguf_quantize_row_q8_K(x, act, N);
  for (size_t i = 0; i < sizeof w4; i++) w4[i] = (uint8_t)(mqt_rand() >> 56);
  for (size_t i = 0; i < sizeof w6; i++) w6[i] = (uint8_t)(mqt_rand() >> 56);
  for (int b = 0; b < NB; b++) {
    uint16_t d = mq_f32_to_f16(mqt_randf(0.001f, 0.01f)), dm = mq_f32_to_f16(mqt_randf(0.001f, 0.01f));
    memcpy(w4 + 144 * b, &d, 2);
    memcpy(w4 + 144 * b + 2, &dm, 2);
    memcpy(w6 + 210 * b + 208, &d, 2);
  }
  double r4 = mq_gguf_vec_dot(MQ_GGML_TYPE_Q4_K, N, w4, act);
  double r6 = mq_gguf_vec_dot(MQ_GGML_TYPE_Q6_K, N, w6, act);
  CHECK_NEAR(gdot(k, MQ_GGML_TYPE_Q4_K, N, w4, act), r4, 1e-5 * fabs(r4) + 1e-4);
  CHECK_NEAR(gdot(k, MQ_GGML_TYPE_Q6_K, N, w6, act), r6, 1e-5 * fabs(r6) + 1e-4);
}

/* The activation quantizers' inline helpers against libm: mq_round_small
 * equals nearbyintf below 2^22 in magnitude (every quarter step to 300 and
 * around 2^22, random values, the special values), keeps sign and a
 * magnitude of at least 2^22 above; mq_amax equals an fmaxf fold (NaNs
 * skipped); mq_quantize_q8_32 equals its definition written with libm. */
/* The attention entries against the reference's: scores over n rows of a
 * strided cache, the weighted sum of rows into o, softmax. Rows of len
 * 1..130 (not multiples of the vector widths), n 1..70, stride > len.
 * Tolerances: float sums vs the reference's (double scores, sequential
 * float values): n or len * 2^-23 * sum|terms|; softmax: its exp within 2
 * ulp, so 1e-6 relative to each probability plus 1e-9. */
static void check_attention(const mq_kernels *k) {
  const mq_kernels *ref = mq_kern_ref();
  enum { MAXN = 70, MAXL = 130, STRIDE = 137 };
  static float rows[MAXN * STRIDE], x[MAXL], w[MAXN], out[MAXN], want[MAXN], o[MAXL], ow[MAXL];
  for (int rep = 0; rep < 40; rep++) {
    int n = 1 + (int)(mqt_rand() % MAXN), len = 1 + (int)(mqt_rand() % MAXL);
    if (rep < 4) n = 64 + rep, len = 64 << (rep % 2); /* the common head sizes */
    for (int i = 0; i < MAXN * STRIDE; i++) rows[i] = mqt_randf(-3, 3);
    for (int i = 0; i < len; i++) x[i] = mqt_randf(-2, 2), o[i] = ow[i] = mqt_randf(-1, 1);
    for (int p = 0; p < n; p++) w[p] = mqt_randf(0, 1);
    k->dot_rows_f32(x, 0, 1, rows, STRIDE, n, len, out, 0);
    ref->dot_rows_f32(x, 0, 1, rows, STRIDE, n, len, want, 0);
    /* several query heads at once (strided queries and outputs) equal one at a time */
    static float q3[3 * MAXL], out3[3 * MAXN];
    for (int i = 0; i < 3 * len; i++) q3[i] = mqt_randf(-2, 2);
    k->dot_rows_f32(q3, (size_t)len, 3, rows, STRIDE, n, len, out3, MAXN);
    int bad3 = 0;
    for (int j = 0; j < 3; j++) {
      float one[MAXN];
      k->dot_rows_f32(q3 + j * len, 0, 1, rows, STRIDE, n, len, one, 0);
      for (int p = 0; p < n; p++) bad3 += out3[j * MAXN + p] != one[p];
    }
    CHECK_MSG(!bad3, "%s dot_rows_f32 3 heads n %d len %d: %d differ", k->name, n, len, bad3);
    int bad = 0;
    for (int p = 0; p < n; p++) {
      double mag = 0;
      for (int i = 0; i < len; i++) mag += fabs((double)x[i] * rows[p * STRIDE + i]);
      bad += fabs(out[p] - want[p]) > 1.2e-7 * len * mag + 1e-30;
    }
    CHECK_MSG(!bad, "%s dot_rows_f32 n %d len %d: %d scores off", k->name, n, len, bad);
    k->axpy_rows_f32(o, 0, 1, rows, STRIDE, w, 0, n, len);
    ref->axpy_rows_f32(ow, 0, 1, rows, STRIDE, w, 0, n, len);
    bad = 0;
    for (int i = 0; i < len; i++) {
      double mag = 1;
      for (int p = 0; p < n; p++) mag += fabs((double)w[p] * rows[p * STRIDE + i]);
      bad += fabs(o[i] - ow[i]) > 1.2e-7 * n * mag;
    }
    CHECK_MSG(!bad, "%s axpy_rows_f32 n %d len %d: %d outputs off", k->name, n, len, bad);
    /* softmax of scores spread over +-60 (exp down to 1e-52: the underflow side) */
    for (int p = 0; p < n; p++) out[p] = want[p] = mqt_randf(-60, 60);
    k->softmax_f32(out, n);
    ref->softmax_f32(want, n);
    bad = 0;
    double sum = 0;
    for (int p = 0; p < n; p++)
      bad += fabs(out[p] - want[p]) > 1e-6 * want[p] + 1e-9, sum += out[p];
    CHECK_MSG(!bad && fabs(sum - 1) < 1e-5, "%s softmax_f32 n %d: %d off, sum %g", k->name, n, bad,
              sum);
  }
}

static void check_round_helpers(void) {
  int bad = 0;
  for (int i = -1200; i <= 1200; i++) bad += mq_round_small(i * 0.25f) != nearbyintf(i * 0.25f);
  for (int i = -8; i <= 8; i++) {
    float v = 4194304.0f + (float)i * 0.5f, r = mq_round_small(v), rn = mq_round_small(-v);
    bad += fabsf(v) < 4194304.0f ? r != nearbyintf(v) || rn != nearbyintf(-v)
                                 : r < 4194304.0f || rn > -4194304.0f;
  }
  for (int i = 0; i < 100000; i++) {
    float v = mqt_randf(-200, 200) * (i % 3 ? 1.0f : 1e4f);
    float r = mq_round_small(v);
    bad += fabsf(v) < 4194304.0f ? r != nearbyintf(v) : (r > 0) != (v > 0) || fabsf(r) < 4194304.0f;
  }
  float big[] = {1e10f, -1e10f, 3e38f, -3e38f, INFINITY, -INFINITY};
  for (int i = 0; i < 6; i++)
    bad +=
        (mq_round_small(big[i]) > 0) != (big[i] > 0) || fabsf(mq_round_small(big[i])) < 4194304.0f;
  bad += !isnan(mq_round_small(NAN)) + (mq_round_small(-0.25f) != 0.0f);
  CHECK_MSG(bad == 0, "mq_round_small: %d values differ from nearbyintf", bad);
  float x[96];
  int8_t q[96];
  float d[3];
  for (int rep = 0; rep < 200; rep++) {
    for (int i = 0; i < 96; i++) x[i] = mqt_randf(-4, 4) * (rep % 4 ? 1.0f : 1e-30f);
    if (rep % 5 == 1) x[rep % 96] = NAN;
    if (rep % 7 == 2) x[(rep * 7) % 96] = -INFINITY;
    float m = 0;
    for (int i = 0; i < 96; i++) m = fmaxf(m, fabsf(x[i]));
    CHECK(mq_amax(x, 96) == m);
    mq_quantize_q8_32(x, 96, q, d);
    for (int b = 0; b < 3; b++) {
      float amax = 0;
      for (int i = 32 * b; i < 32 * b + 32; i++) amax = fmaxf(amax, fabsf(x[i]));
      float inv = amax > 0 ? 127.0f / amax : 0.0f;
      CHECK(d[b] == amax / 127.0f || (isnan(d[b]) && isnan(amax)));
      for (int i = 32 * b; i < 32 * b + 32; i++) {
        float r = nearbyintf(x[i] * inv);
        int8_t want = (int8_t)(r >= 127.0f ? 127 : (r <= -128.0f ? -128 : (r == r ? r : 0)));
        bad += q[i] != want;
      }
    }
  }
  CHECK_MSG(bad == 0, "mq_quantize_q8_32: %d codes differ from the libm definition", bad);
}

int main(void) {
  printf("active kernels: %s\n", mq_kern()->name);
  check_round_helpers();
  /* every SIMD tier this build and CPU have (NULL where not) */
  const mq_kernels *tiers[MQ_KERN_MAX_TIERS];
  const int NT = mq_kern_simd_tiers(tiers);
  for (int rep = 0; rep < 20; rep++) {
    check_kquants(mq_kern_ref());
    for (int i = 0; i < NT; i++)
      if (tiers[i]) check_kquants(tiers[i]);
  }
  check_table(mq_kern_ref());
  printf("checked tiers: scalar");
  int n_simd = 0;
  for (int i = 0; i < NT; i++)
    if (tiers[i]) {
      check_table(tiers[i]);
      check_attention(tiers[i]);
      printf(" %s", tiers[i]->name);
      n_simd++;
    }
  printf("%s\n", n_simd ? "" : " (no SIMD tier in this build or CPU)");
  for (int t = 1; t <= 3; t++) {
    check_linear(MQ_DTYPE_F32, t);
    check_linear(MQ_DTYPE_F16, t);
    check_linear(MQ_DTYPE_BF16, t);
  }
  for (int c = MQ_CODES_U4; c <= MQ_CODES_S8; c++)
    for (int gs = 8; gs <= 72; gs += 32) /* 8, 40 (partial last group), 72 (one group) */
      for (int v = 0; v < 4; v++) check_int_linear((mq_codes)c, gs, v & 1, v >> 1, 1 + v % 2);
  /* the pool covers every item exactly once, for many sizes */
  mq_pool *p = mq_pool_init(3);
  for (int n = 1; n < 1000; n = n * 3 + 1) {
    cover c = {{0}};
    mq_pool_for(p, n, mark, &c);
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= c.hits[i] == 1;
    CHECK_MSG(ok, "pool coverage for n=%d", n);
  }
  mq_pool_free(p);
  /* rmsnorm, softmax, swiglu against direct formulas */
  float x[33], w[33], y[33], sm[33], g[33], u[33];
  double ss = 0, mx = -1e9, se = 0;
  for (int i = 0; i < 33; i++) {
    x[i] = mqt_randf(-3, 3), w[i] = mqt_randf(0.5f, 1.5f), g[i] = mqt_randf(-4, 4), u[i] = mqt_randf(-1, 1);
    ss += (double)x[i] * x[i];
    sm[i] = x[i];
    mx = x[i] > mx ? x[i] : mx;
  }
  mq_rmsnorm(y, x, w, 33, 1e-5f);
  for (int i = 0; i < 33; i++) CHECK_NEAR(y[i], x[i] / sqrt(ss / 33 + 1e-5) * w[i], 1e-5);
  for (int i = 0; i < 33; i++) se += exp(x[i] - mx);
  mq_softmax(sm, 33);
  for (int i = 0; i < 33; i++) CHECK_NEAR(sm[i], exp(x[i] - mx) / se, 1e-6);
  float g0[33];
  memcpy(g0, g, sizeof g);
  mq_swiglu(g, u, 33);
  for (int i = 0; i < 33; i++) CHECK_NEAR(g[i], g0[i] / (1 + exp(-g0[i])) * u[i], 1e-5);
  return mqt_report("kernels");
}
