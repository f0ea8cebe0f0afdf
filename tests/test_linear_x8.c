/* The 8-row interleaved layout of 4-bit weights (kernels/linear_x8.h):
 * repacking keeps every weight (dequantized rows bit-identical), and the x8
 * forward pass of every kernel tier equals the row layout's and a double
 * reference, exact and fast paths, for awkward shapes. */
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "core/pool.h"
#include "quant/gguf_types.h"
#include "kernels/linear_x8.h"
#include "test.h"

/* A pool of n threads with MQ_SCRATCH_ROWS scratch rows of K floats each (mq_exec). */
typedef struct {
  mq_pool *pool;
  float *scratch[8];
} runner;

static void runner_init(runner *r, int n_threads, int K) {
  r->pool = mq_pool_init(n_threads);
  for (int t = 0; t < mq_pool_size(r->pool); t++) r->scratch[t] = malloc(sizeof(float) * MQ_SCRATCH_ROWS * K);
}

/* The reference and every SIMD tier of this build and CPU. */
static int tier_list(const mq_kernels *t[1 + MQ_KERN_MAX_TIERS]) {
  t[0] = mq_kern_ref();
  return 1 + mq_kern_simd_tiers(t + 1);
}

static void runner_free(runner *r) {
  for (int t = 0; t < mq_pool_size(r->pool); t++) free(r->scratch[t]);
  mq_pool_free(r->pool);
}

/* Row layout and x8 forward passes of one layer pair on every tier (fast
 * path off): worst[tier] = max_i |y_x8 - y_rows| / (mag ? mag[i] : |y_rows| +
 * 1e-6) over T tokens. Returns the tier count (tiers filled). */
static int compare_tiers(const mq_linear *row, const mq_linear *x8, const float *x, int T,
                         const double *mag, const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS],
                         double worst[1 + MQ_KERN_MAX_TIERS]) {
  int N = row->n_out, gf = mq_linear_gather_floats(row);
  runner rn;
  runner_init(&rn, 2, row->n_in);
  float *gather = malloc(sizeof(float) * (size_t)gf * T);
  float *yr = malloc(sizeof(float) * T * N), *yx = malloc(sizeof(float) * T * N);
  int n_tiers = tier_list(tiers);
  for (int tier = 0; tier < n_tiers; tier++) {
    mq_exec ex = {rn.pool, tiers[tier], rn.scratch, gather, 0};
    mq_linear_forward(row, x, T, yr, &ex);
    mq_linear_forward(x8, x, T, yx, &ex);
    worst[tier] = 0;
    for (int i = 0; i < T * N; i++)
      worst[tier] = fmax(worst[tier], fabs(yx[i] - yr[i]) / (mag ? mag[i] : fabs(yr[i]) + 1e-6));
  }
  runner_free(&rn);
  free(gather), free(yr), free(yx);
  return n_tiers;
}

typedef struct {
  int N, K, gs, mins, perm, bias;
  int w8; /* 0: 4-bit codes; 8-bit weight-only: 1 U8 (GPTQ, zero points), 2 S8 */
} shape;

static void check_shape(const shape *sh, int T, int n_threads) {
  int N = sh->N, K = sh->K, gs = sh->gs, G = (K + gs - 1) / gs, w8 = sh->w8;
  size_t row_bytes = w8 ? (size_t)K : (size_t)K / 2;
  uint8_t *data = malloc((size_t)N * row_bytes);
  float *scales = malloc(sizeof(float) * N * G), *mins = malloc(sizeof(float) * N * G);
  float *bias = malloc(sizeof(float) * N), *x = malloc(sizeof(float) * T * K);
  int32_t *perm = malloc(sizeof(int32_t) * K);
  for (size_t i = 0; i < (size_t)N * row_bytes; i++) data[i] = (uint8_t)(mqt_rand() >> 56);
  for (int i = 0; i < N * G; i++) scales[i] = mqt_randf(0.01f, 0.1f), mins[i] = mqt_randf(-1, 1);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1);
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-1, 1);
  for (int i = 0; i < K; i++) perm[i] = i;
  for (int i = K - 1; i > 0; i--) {
    int j = (int)(mqt_rand() % (uint64_t)(i + 1)), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  mq_linear row = {.n_out = N, .n_in = K, .kind = MQ_W_INT, .bias = sh->bias ? bias : NULL};
  row.q = (mq_qint){w8 == 1 ? MQ_CODES_U8 : w8 ? MQ_CODES_S8 : MQ_CODES_U4, w8 ? 8 : 4, gs, G, data,
                    scales, sh->mins ? mins : NULL, sh->perm ? perm : NULL, 0};
  CHECK(w8 ? mq_x8_a16s8_eligible(&row) && !mq_x8_eligible(&row) : mq_x8_eligible(&row));
  mq_linear x8 = row;
  uint8_t *codes =
      malloc(mq_x8_bytes(N, K, gs, w8 != 0, w8 ? mq_x8_a16s8_mins(&row) : row.q.mins != NULL));
  if (w8)
    CHECK(mq_x8_a16s8_repack(&x8, codes) == 0);
  else
    mq_x8_repack(&x8, codes);
  CHECK(x8.q.x8 && !mq_x8_eligible(&x8) && !mq_x8_a16s8_eligible(&x8));

  float *wr = malloc(sizeof(float) * K), *wx = malloc(sizeof(float) * K);
  double *ref = malloc(sizeof(double) * T * N), *mag = malloc(sizeof(double) * T * N);
  int same = 1;
  for (int n = 0; n < N; n++) {
    mq_linear_dequant_row(&row, n, wr);
    mq_linear_dequant_row(&x8, n, wx);
    if (w8 == 1) /* s * (u - 128) + (m + 128 s): the same weights to float rounding */
      for (int k = 0; k < K; k++) same &= fabs(wr[k] - wx[k]) <= 4e-6 * (1 + fabs(wr[k]));
    else
      same &= memcmp(wr, wx, sizeof(float) * K) == 0;
    for (int t = 0; t < T; t++) {
      double s = sh->bias ? bias[n] : 0, a = 1;
      for (int k = 0; k < K; k++) s += (double)wr[k] * x[t * K + k], a += fabs((double)wr[k] * x[t * K + k]);
      ref[t * N + n] = s, mag[t * N + n] = a;
    }
  }
  CHECK_MSG(same, "x8 rows differ from the row layout (N %d K %d gs %d)", N, K, gs);

  runner rn;
  runner_init(&rn, n_threads, K);
  int gf = mq_linear_gather_floats(&row);
  float *gather = malloc(sizeof(float) * (size_t)gf * T);
  float *yr = malloc(sizeof(float) * T * N), *yx = malloc(sizeof(float) * T * N);
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = tier_list(tiers);
  for (int tier = 0; tier < n_tiers; tier++) {
    for (int fast = 0; fast < 2; fast++) {
      mq_exec ex = {rn.pool, tiers[tier], rn.scratch, gather, fast};
      mq_linear_forward(&row, x, T, yr, &ex);
      mq_linear_forward(&x8, x, T, yx, &ex);
      double worst_rows = 0, worst_ref = 0, rows_ref = 0;
      for (int i = 0; i < T * N; i++) {
        worst_rows = fmax(worst_rows, fabs(yx[i] - yr[i]) / mag[i]);
        worst_ref = fmax(worst_ref, fabs(yx[i] - ref[i]) / mag[i]);
        rows_ref = fmax(rows_ref, fabs(yr[i] - ref[i]) / mag[i]);
      }
      if (w8 && fast) {
        /* 8-bit tiles hold u - 128 (or S8 codes): the int8 activations'
         * rounding meets the centred codes and the 128 goes through the
         * exact sums of x, where the U8 row kernel multiplies it by u: other
         * math, errors of the same order (checked against double below);
         * S8 rows have no fast path (exact). */
        if (w8 == 1)
          CHECK_MSG(worst_ref <= 2 * rows_ref + 1e-6, "%s u8 x8 N %d K %d T %d: %g vs rows' %g",
                    tiers[tier]->name, N, K, T, worst_ref, rows_ref);
        worst_rows = 0;
      }
      /* Same codes and (fast) the same int8 activations: only the float
       * summation order differs, so relative to sum |w x| the two layouts
       * agree to float rounding. The fast path's int8 activations cost up
       * to 1/254 of each block's max relative to the exact product sum. */
      CHECK_MSG(worst_rows < 2e-6, "%s fast %d w8 %d N %d K %d gs %d mins %d T %d: x8 vs rows %g",
                tiers[tier]->name, fast, w8, N, K, gs, sh->mins, T, worst_rows);
      CHECK_MSG(worst_ref < (fast ? 1e-2 : 2e-6), "%s fast %d w8 %d N %d K %d gs %d: x8 vs double %g",
                tiers[tier]->name, fast, w8, N, K, gs, worst_ref);
    }
  }
  runner_free(&rn);
  free(data), free(scales), free(mins), free(bias), free(x), free(perm), free(codes);
  free(wr), free(wx), free(ref), free(mag), free(gather), free(yr), free(yx);
}

/* Activation-quantized 4-bit layers (W4A8 / W4A4: S8 codes in [-8, 7]) in
 * x8 tiles: same rows, and the same outputs as the S8 row path (integer
 * sums, so only the float combination order differs). */
static void check_aq(mq_act act, int bits, int N, int K, int gs, int with_mins, int T) {
  int G = (K + gs - 1) / gs;
  int8_t *codes = malloc((size_t)N * K);
  float *scales = malloc(sizeof(float) * N * G), *mins = malloc(sizeof(float) * N * G);
  float *bias = malloc(sizeof(float) * N), *qcorr = malloc(sizeof(float) * N);
  float *x = malloc(sizeof(float) * T * K);
  for (int i = 0; i < N * K; i++)
    codes[i] = bits == 4 ? (int8_t)((int)(mqt_rand() % 16) - 8) : (int8_t)(mqt_rand() >> 56);
  for (int i = 0; i < N * G; i++) scales[i] = mqt_randf(0.01f, 0.1f), mins[i] = mqt_randf(-0.5f, 0.5f);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1), qcorr[i] = mqt_randf(-2, 2);
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-1, 1);
  mq_linear row = {.n_out = N, .n_in = K, .kind = MQ_W_INT, .act = act, .bias = bias, .qcorr = qcorr};
  row.q = (mq_qint){MQ_CODES_S8, bits, gs, G, (const uint8_t *)codes, scales, with_mins ? mins : NULL,
                    NULL, 0};
  mq_linear x8 = row;
  uint8_t *tiles = malloc(mq_x8_bytes(N, K, gs, bits == 8, bits == 4));
  if (bits == 4) {
    CHECK(mq_x8_aq_eligible(&row) && !mq_x8_eligible(&row) && !mq_x8_s8_eligible(&row));
    CHECK(mq_x8_aq_repack(&x8, tiles) == 0 && x8.q.x8);
  } else {
    CHECK(mq_x8_s8_eligible(&row) == !with_mins && !mq_x8_aq_eligible(&row));
    if (with_mins) goto done; /* zero points keep the row layout */
    mq_x8_s8_repack(&x8, tiles);
    CHECK(x8.q.x8);
  }
  float *wr = malloc(sizeof(float) * K), *wx = malloc(sizeof(float) * K);
  double *mag = malloc(sizeof(double) * T * N);
  double worst_w = 0;
  for (int n = 0; n < N; n++) {
    mq_linear_dequant_row(&row, n, wr);
    mq_linear_dequant_row(&x8, n, wx);
    for (int k = 0; k < K; k++) worst_w = fmax(worst_w, fabs(wr[k] - wx[k]));
    for (int t = 0; t < T; t++) {
      double a = 1 + fabs(qcorr[n]);
      for (int k = 0; k < K; k++) a += fabs((double)wr[k] * x[t * K + k]);
      mag[t * N + n] = a;
    }
  }
  CHECK_MSG(worst_w < 1e-6, "aq x8 weights differ by %g", worst_w); /* (c+8)s + (m-8s) rounding */
  if (bits == 8) CHECK(worst_w == 0);
  CHECK(mq_linear_gather_floats(&x8) <= mq_linear_gather_floats(&row));
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  double worst[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = compare_tiers(&row, &x8, x, T, mag, tiers, worst);
  for (int tier = 0; tier < n_tiers; tier++)
    CHECK_MSG(worst[tier] < 2e-6, "%s aq x8 %d-bit act %s N %d K %d gs %d mins %d T %d: %g",
              tiers[tier]->name, bits, mq_act_name(act), N, K, gs, with_mins, T, worst[tier]);
  free(mag), free(wr), free(wx);
done:
  free(codes), free(scales), free(mins), free(bias), free(qcorr), free(x), free(tiles);
}

/* ModelSlim W8A8 static in S8 tiles: y = (sum w x_q + quant_bias) * deq_scale
 * with x_q = clamp(rne(x / s_x + offset), -128, 127). Inputs below the
 * calibrated range make x_q = -128, which the tile kernels cannot take (it
 * goes in as -127 and the difference is subtracted): the outputs must equal
 * the row path's exact integer sums on every tier. */
static void check_static(int N, int K, int T) {
  int8_t *codes = malloc((size_t)N * K);
  float *scales = malloc(sizeof(float) * N), *deq = malloc(sizeof(float) * N);
  int32_t *qbias = malloc(sizeof(int32_t) * N);
  float *x = malloc(sizeof(float) * T * K);
  float s_x = 0.02f, o_x = 3;
  for (int i = 0; i < N * K; i++) codes[i] = (int8_t)(mqt_rand() >> 56); /* -128 included */
  for (int n = 0; n < N; n++) {
    scales[n] = mqt_randf(0.001f, 0.01f), deq[n] = scales[n] * s_x;
    qbias[n] = (int32_t)(mqt_rand() % 20001) - 10000;
  }
  int n_low = 0;
  for (int i = 0; i < T * K; i++) {
    x[i] = mqt_randf(-2.5f, 2.5f); /* |x| / s_x up to 125, + offset 3 */
    if (mqt_rand() % 23 == 0) x[i] = -3.0f - mqt_randf(0, 1); /* below the range: -128 */
    n_low += x[i] / s_x + o_x < -127.5f;
  }
  if (T > 1) CHECK(n_low > 0);
  mq_linear row = {.n_out = N, .n_in = K, .kind = MQ_W_INT, .act = MQ_ACT_INT8_STATIC,
                   .in_rscale = 1.0f / s_x, .in_offset = o_x, .deq = deq, .qbias = qbias};
  row.q = (mq_qint){MQ_CODES_S8, 8, K, 1, (const uint8_t *)codes, scales, NULL, NULL, 0};
  CHECK(mq_x8_s8_eligible(&row) && !mq_x8_aq_eligible(&row));
  mq_linear x8 = row;
  uint8_t *tiles = malloc(mq_x8_bytes(N, K, K, 1, 0));
  mq_x8_s8_repack(&x8, tiles);
  float *wr = malloc(sizeof(float) * K), *wx = malloc(sizeof(float) * K);
  int same_w = 1;
  for (int n = 0; n < N; n++) {
    mq_linear_dequant_row(&row, n, wr);
    mq_linear_dequant_row(&x8, n, wx);
    same_w &= memcmp(wr, wx, sizeof(float) * K) == 0;
  }
  CHECK(same_w);
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  double worst[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = compare_tiers(&row, &x8, x, T, NULL, tiers, worst);
  for (int tier = 0; tier < n_tiers; tier++) /* integer sums below 2^24: exact in float */
    CHECK_MSG(worst[tier] == 0, "%s static x8 N %d K %d T %d (%d inputs at -128): rel diff %g",
              tiers[tier]->name, N, K, T, n_low, worst[tier]);
  free(wr), free(wx), free(tiles);
  free(codes), free(scales), free(deq), free(qbias), free(x);
}

/* GGUF Q4_0 / Q8_0 / Q2_K..Q6_K repacked into their x8 forms: rows dequantize identically and the
 * forward pass equals the row layout's (the Q4_0 x Q8_0 / Q4_K x Q8_K dot
 * products of quant/gguf_blocks.c and the tiers' row kernels) to float rounding, relative to sum |w
 * x|. */
/* Offsets of a GGUF block's f16 d and dmin (-1: none). */
static void d_offsets(uint32_t type, int *d, int *dmin) {
  *d = type == MQ_GGML_TYPE_Q6_K   ? 208
       : type == MQ_GGML_TYPE_Q3_K ? 108
       : type == MQ_GGML_TYPE_Q2_K ? 80
                                   : 0;
  *dmin = type == MQ_GGML_TYPE_Q4_K || type == MQ_GGML_TYPE_Q5_K ? 2
          : type == MQ_GGML_TYPE_Q2_K                            ? 82
                                                                 : -1;
}

static void check_gguf(uint32_t type, int N, int K, int T, int n_threads) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(type);
  int nb = K / ti->blck, bsz = ti->type_size, od, om;
  d_offsets(type, &od, &om);
  uint8_t *rows = malloc((size_t)N * nb * bsz);
  float *x = malloc(sizeof(float) * T * K), *bias = malloc(sizeof(float) * N);
  for (int n = 0; n < N; n++) {
    bias[n] = mqt_randf(-1, 1);
    for (int b = 0; b < nb; b++) {
      uint8_t *blk = rows + ((size_t)n * nb + b) * bsz;
      for (int i = 0; i < bsz; i++) blk[i] = (uint8_t)(mqt_rand() >> 56);
      uint16_t d = mq_f32_to_f16(mqt_randf(-0.05f, 0.05f)), dmin = mq_f32_to_f16(mqt_randf(0, 0.02f));
      memcpy(blk + od, &d, 2); /* sane scales over the random bytes */
      if (om >= 0) memcpy(blk + om, &dmin, 2);
    }
  }
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-1, 1);
  mq_linear row = {.n_out = N, .n_in = K, .kind = MQ_W_GGUF, .gtype = type, .w = rows,
                   .bias = bias};
  mq_linear x8 = row;
  CHECK(mq_x8_gguf_eligible(&row));
  uint8_t *tiles = malloc(mq_x8_gguf_bytes(type, N, K));
  mq_x8_gguf_repack(&x8, tiles);
  float *wr = malloc(sizeof(float) * K), *wx = malloc(sizeof(float) * K);
  double *mag = malloc(sizeof(double) * T * N);
  int same = 1;
  for (int n = 0; n < N; n++) {
    mq_linear_dequant_row(&row, n, wr);
    mq_linear_dequant_row(&x8, n, wx);
    same &= memcmp(wr, wx, sizeof(float) * K) == 0;
    for (int t = 0; t < T; t++) {
      double a = 1;
      for (int k = 0; k < K; k++) a += fabs((double)wr[k] * x[t * K + k]);
      mag[t * N + n] = a;
    }
  }
  CHECK_MSG(same, "%s x8 rows differ from the stored rows (N %d K %d)", mq_ggml_type_name(type), N, K);
  runner rn;
  runner_init(&rn, n_threads, K);
  int gf = mq_linear_gather_floats(&x8);
  CHECK(gf >= mq_linear_gather_floats(&row));
  float *gather = malloc(sizeof(float) * (size_t)gf * T);
  float *yr = malloc(sizeof(float) * T * N), *yx = malloc(sizeof(float) * T * N);
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = tier_list(tiers);
  for (int tier = 0; tier < n_tiers; tier++) {
    mq_exec ex = {rn.pool, tiers[tier], rn.scratch, gather, 0};
    mq_linear_forward(&row, x, T, yr, &ex);
    mq_linear_forward(&x8, x, T, yx, &ex);
    double worst = 0;
    for (int i = 0; i < T * N; i++) worst = fmax(worst, fabs(yx[i] - yr[i]) / mag[i]);
    CHECK_MSG(worst < 2e-6, "%s %s x8 N %d K %d T %d: %g", tiers[tier]->name,
              mq_ggml_type_name(type), N, K, T, worst);
  }
  runner_free(&rn);
  free(rows), free(x), free(bias), free(tiles), free(wr), free(wx), free(mag), free(gather);
  free(yr), free(yx);
}

/* mq_linear_forward_multi: layers reading one input, computed together
 * (x8 layers of one kind) or one after another, equal separate forwards
 * bit for bit (the same kernels on the same prepared input). */
enum { A16_8BIT = 1000 }; /* random_layer's type for an 8-bit A16 layer (U8, zero points) */

static mq_linear random_layer(uint32_t type, int N, int K, uint8_t **buf) {
  mq_linear l = {.n_out = N, .n_in = K};
  if (type == A16_8BIT) { /* 8-bit A16 (GPTQ-like U8 codes), group 64, with mins */
    int G = K / 64;
    uint8_t *codes = malloc((size_t)N * K);
    float *sc = malloc(sizeof(float) * N * G), *mn = malloc(sizeof(float) * N * G);
    for (int i = 0; i < N * K; i++) codes[i] = (uint8_t)(mqt_rand() >> 56);
    for (int i = 0; i < N * G; i++) sc[i] = mqt_randf(0.001f, 0.01f), mn[i] = mqt_randf(-1, 1);
    l.kind = MQ_W_INT;
    l.q = (mq_qint){MQ_CODES_U8, 8, 64, G, codes, sc, mn, NULL, 0};
    uint8_t *t = malloc(mq_x8_bytes(N, K, 64, 1, 1));
    CHECK(mq_x8_a16s8_repack(&l, t) == 0);
    free(codes), free(sc), free(mn);
    buf[0] = t, buf[1] = buf[2] = NULL;
    return l;
  }
  if (type == 0) { /* 4-bit A16, group 64, with mins */
    int G = K / 64;
    uint8_t *codes = malloc((size_t)N * K / 2);
    float *sc = malloc(sizeof(float) * N * G), *mn = malloc(sizeof(float) * N * G);
    for (int i = 0; i < N * K / 2; i++) codes[i] = (uint8_t)(mqt_rand() >> 56);
    for (int i = 0; i < N * G; i++) sc[i] = mqt_randf(0.01f, 0.1f), mn[i] = mqt_randf(-1, 1);
    l.kind = MQ_W_INT;
    l.q = (mq_qint){MQ_CODES_U4, 4, 64, G, codes, sc, mn, NULL, 0};
    uint8_t *t = malloc(mq_x8_bytes(N, K, 64, 0, 1));
    mq_x8_repack(&l, t);
    free(codes), free(sc), free(mn);
    buf[0] = t, buf[1] = buf[2] = NULL;
    return l;
  }
  size_t rb = (size_t)mq_ggml_row_size(type, K);
  uint8_t *rows = malloc((size_t)N * rb);
  for (size_t i = 0; i < (size_t)N * rb; i++) rows[i] = (uint8_t)(mqt_rand() >> 56);
  int bpr = K / mq_ggml_type_get(type)->blck, od, om;
  size_t bsz = rb / (size_t)bpr;
  d_offsets(type, &od, &om);
  for (int b = 0; b < N * bpr; b++) { /* sane f16 scales (d, dmin) */
    uint16_t d = mq_f32_to_f16(mqt_randf(-0.05f, 0.05f));
    memcpy(rows + (size_t)b * bsz + od, &d, 2);
    if (om >= 0) memcpy(rows + (size_t)b * bsz + om, &d, 2);
  }
  l.kind = MQ_W_GGUF, l.gtype = type, l.w = rows;
  uint8_t *t = malloc(mq_x8_gguf_bytes(type, N, K));
  mq_x8_gguf_repack(&l, t);
  free(rows);
  buf[0] = t, buf[1] = buf[2] = NULL;
  return l;
}

static void check_multi(const uint32_t *types, int n, int T, int shared) {
  enum { K = 512 };
  int Ns[4] = {40, 24, 24, 16};
  uint8_t *bufs[4][3];
  mq_linear ls[4];
  const mq_linear *lp[4];
  float *ys[4], *yr[4];
  int gf = 0;
  for (int i = 0; i < n; i++) {
    ls[i] = random_layer(types[i], Ns[i], K, bufs[i]);
    lp[i] = &ls[i];
    ys[i] = malloc(sizeof(float) * T * Ns[i]), yr[i] = malloc(sizeof(float) * T * Ns[i]);
    int g = mq_linear_gather_floats(&ls[i]);
    gf = g > gf ? g : gf;
  }
  /* room for an input per layer (forward_each), 64-byte aligned parts */
  size_t cap = (size_t)n * (((size_t)gf * T + 15) & ~(size_t)15);
  float *x = malloc(sizeof(float) * T * K * n), *gather = aligned_alloc(64, sizeof(float) * cap);
  for (int i = 0; i < T * K * n; i++) x[i] = mqt_randf(-1, 1);
  runner rn;
  runner_init(&rn, 2, K);
  mq_exec ex = {rn.pool, mq_kern(), rn.scratch, gather, 1, 0};
  for (int i = 0; i < n; i++) mq_linear_forward(&ls[i], x, T, yr[i], &ex);
  CHECK(mq_x8_forward_multi(lp, n, x, T, ys, &ex) == shared); /* together, or refused */
  mq_linear_forward_multi(lp, n, x, T, ys, &ex);
  for (int i = 0; i < n; i++)
    CHECK_MSG(memcmp(ys[i], yr[i], sizeof(float) * T * Ns[i]) == 0, "multi layer %d (type %u) T %d", i,
              types[i], T);
  /* an input each: refused without a known gather capacity or with one
   * layer's share too little, else one loop; results as separate calls */
  const float *xs[4];
  for (int i = 0; i < n; i++) {
    xs[i] = x + (size_t)i * T * K;
    mq_linear_forward(&ls[i], xs[i], T, yr[i], &ex);
    memset(ys[i], 0, sizeof(float) * T * Ns[i]);
  }
  CHECK(mq_x8_forward_each(lp, n, xs, T, ys, &ex) == 0);
  ex.gather_floats = cap - 16;
  CHECK(n < 2 || mq_x8_forward_each(lp, n, xs, T, ys, &ex) == 0);
  ex.gather_floats = cap;
  CHECK(mq_x8_forward_each(lp, n, xs, T, ys, &ex) == shared);
  mq_linear_forward_each(lp, n, xs, T, ys, &ex);
  for (int i = 0; i < n; i++)
    CHECK_MSG(memcmp(ys[i], yr[i], sizeof(float) * T * Ns[i]) == 0, "each layer %d (type %u) T %d",
              i, types[i], T);
  runner_free(&rn);
  for (int i = 0; i < n; i++) {
    for (int b = 0; b < 3; b++) free(bufs[i][b]);
    free(ys[i]), free(yr[i]);
  }
  free(x), free(gather);
}

/* Each tier's tile entries against the reference's, entry by entry, with
 * scales of 1 or 2 and mins of -1 or 1 (distinct per row, group and block),
 * small integer activations and group sums, so that every result is an
 * integer below 2^24 computed exactly in float: the tiers must agree bit for
 * bit. The tiles are laid out as a layer's (groups of code blocks, then
 * scales, then mins), with random bytes in the short last group's padding.
 * Extremes included: 4-bit codes 0 and 15, S8 codes -128 and 127, int8
 * activations +-127, several groups with a short last one. */
static void check_entries(void) {
  enum { K = 224, GS = 64, G = (K + GS - 1) / GS, T = 4 };
  enum { GST4 = GS / 32 * 128 + 64, GST8 = GS / 32 * 256 + 64 };
  static uint8_t t4[G * GST4], t8[G * GST8];
  static int8_t q[T * K];
  static float x[T * K], d1[T * (K / 32)], gsum[T * G], out[32], want[32];
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS], *ref = mq_kern_ref();
  int n_tiers = tier_list(tiers), bad;
  for (int i = 0; i < T * (K / 32); i++) d1[i] = (float)(1 + (i % 3 == 1));
  for (int i = 0; i < T * G; i++) gsum[i] = (float)((i % 5) - 2);
  for (int rep = 0; rep < 20; rep++) {
    int extreme = rep % 4 == 0;
    for (size_t i = 0; i < sizeof t4 + sizeof t8; i++) {
      uint8_t v = extreme ? (uint8_t)((mqt_rand() & 1) ? 0x80 : 0x7f) : (uint8_t)(mqt_rand() >> 56);
      if (i < sizeof t4)
        t4[i] = v;
      else
        t8[i - sizeof t4] = v;
    }
    for (int g = 0; g < G; g++) /* scales, then mins, after each group's codes */
      for (int r = 0; r < 8; r++) {
        float sc = (float)(1 + (g + r) % 2), mn = (g + r) % 3 ? 1.0f : -1.0f;
        float *f4 = (float *)(t4 + g * GST4 + GS / 32 * 128),
              *f8 = (float *)(t8 + g * GST8 + GS / 32 * 256);
        f4[r] = f8[r] = sc, f4[8 + r] = f8[8 + r] = mn;
      }
    for (int i = 0; i < T * K; i++) {
      q[i] = extreme ? (int8_t)((mqt_rand() & 1) ? 127 : -127) : (int8_t)((int)(mqt_rand() % 255) - 127);
      x[i] = (float)((int)(mqt_rand() % 9) - 4);
    }
    const float *s4 = (const float *)(t4 + GS / 32 * 128),
                *s8 = (const float *)(t8 + GS / 32 * 256);
    for (int tier = 1; tier < n_tiers; tier++) {
      const mq_kernels *k = tiers[tier];
      for (int Tn = 1; Tn <= T; Tn++) {
/* entry on the reference and on the tier (same arguments, then T and the
 * output), outputs compared bit for bit */
#define SAME(entry, ...)                                                                           \
  ref->entry(__VA_ARGS__, Tn, want);                                                               \
  k->entry(__VA_ARGS__, Tn, out);                                                                  \
  bad = 0;                                                                                         \
  for (int i = 0; i < Tn * 8; i++) bad += out[i] != want[i];                                       \
  CHECK_MSG(!bad, "%s %s T %d rep %d: %d of %d outputs differ from the reference", k->name,        \
            #entry, Tn, rep, bad, Tn * 8);
        SAME(x8_u4_q8, t4, GST4, s4, s4 + 8, K, GS, q, K, d1, K / 32, gsum, G)
        SAME(x8_u4_q8, t4, GST4, s4, NULL, K, GS, q, K, d1, K / 32, NULL, 0)
        SAME(x8_u4_f32, t4, GST4, s4, s4 + 8, K, GS, x, K, gsum, G)
        SAME(x8_s8a16_q8, t8, GST8, s8, s8 + 8, K, GS, q, K, d1, K / 32, gsum, G)
        SAME(x8_s8a16_f32, t8, GST8, s8, s8 + 8, K, GS, x, K, gsum, G)
        SAME(x8_s8_q8, t8, GST8, s8, K, GS, q, K)
#undef SAME
      }
    }
  }
}

/* n floats bit for bit, except that any NaN equals any NaN (random scale
 * bytes make NaNs, whose payload depends on the operand order an FMA was
 * encoded with). */
static int same_bits(const float *a, const float *b, int n) {
  for (int i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], 4) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
  return 1;
}

/* A two-tile entry's outputs o2 against the one-tile entry's on each tile
 * (o1[0], o1[1]), T tokens; returns 1 (a check made). */
static int pair_check(const char *tier, const char *what, int T, const float *o2,
                      float (*o1)[32]) {
  int bad = 0;
  for (int t = 0; t < T; t++)
    for (int h = 0; h < 2; h++) bad += !same_bits(o2 + 16 * t + 8 * h, o1[h] + 8 * t, 8);
  CHECK_MSG(!bad, "%s %s T %d: %d of %d row groups differ from the one-tile entry", tier, what, T,
            bad, 2 * T);
  return 1;
}

/* The two-tile entries against their one-tile entry on each tile, bit for
 * bit (same_bits), T = 1..4: integer tiles with and without mins, and GGUF
 * tiles of every type a tier pairs, from random bytes (codes, scales,
 * activation blocks alike). */
static void check_pairs(void) {
  enum { K = 512, GS = 128, G = K / GS, T = 4, QK = 292 * (K / 256) };
  /* bytes a tile: integer S8 tiles; the largest GGUF one (Q8_0x8, 272 a block) */
  enum { GST = GS / 32 * 256 + 64, TB = G * GST, GB = 272 * (K / 32) };
  static uint8_t tiles[2 * TB], gt[2 * GB], act[T * QK];
  static int8_t q[T * K];
  static float d[T * (K / 32)], gsum[T * G], o2[64], o1[2][32];
  static int32_t bsum[T * (K / 32)], qsum[T * (K / 32)], asum[T * (K / 32)];
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = tier_list(tiers), tested = 0;
  for (size_t i = 0; i < sizeof tiles; i++) tiles[i] = (uint8_t)(mqt_rand() >> 56);
  for (size_t i = 0; i < sizeof gt; i++) gt[i] = (uint8_t)(mqt_rand() >> 56);
  /* no byte 0x80: activation codes are never -128 (the one-tile S8 kernels'
   * sign trick cannot take it; llama.cpp's quantizer does not make it) */
  for (size_t i = 0; i < sizeof act; i++) act[i] = (uint8_t)(mqt_rand() >> 56) | 1;
  for (int i = 0; i < T * K; i++) q[i] = (int8_t)((int)(mqt_rand() % 255) - 127);
  for (int i = 0; i < T * (K / 32); i++) d[i] = mqt_randf(0.1f, 2), bsum[i] = (int32_t)(mqt_rand() % 4000);
  for (int i = 0; i < T * G; i++) gsum[i] = mqt_randf(-50, 50);
  /* the S8 pairs' block code sums: of q, and of the Q8_0 blocks in act */
  for (int t = 0; t < T; t++)
    for (int b = 0; b < K / 32; b++) {
      qsum[t * (K / 32) + b] = asum[t * (K / 32) + b] = 0;
      for (int i = 0; i < 32; i++) {
        qsum[t * (K / 32) + b] += q[t * K + 32 * b + i];
        asum[t * (K / 32) + b] += (int8_t)act[(size_t)t * (K / 32) * 34 + 34 * b + 2 + i];
      }
    }
  for (int g = 0; g < 2 * G; g++) /* finite scales and mins after each group's codes */
    for (int i = 0; i < 16; i++)
      ((float *)(tiles + g * GST + GS / 32 * 256))[i] = mqt_randf(-1, 1);
  const uint8_t *t0 = tiles, *t1 = tiles + TB;
  const float *sc0 = (const float *)(t0 + GS / 32 * 256), *sc1 = (const float *)(t1 + GS / 32 * 256);
  for (int tier = 1; tier < n_tiers; tier++) {
    const mq_kernels *k = tiers[tier];
    for (int Tn = 1; Tn <= T; Tn++) {
#define PAIR(what) tested += pair_check(k->name, what, Tn, o2, o1);
      for (int mins = 0; mins < 2 && k->x8_u4_q8_2; mins++) {
        k->x8_u4_q8_2(t0, t1, GST, sc0, sc1, mins ? sc0 + 8 : NULL, mins ? sc1 + 8 : NULL, K, GS, q,
                      K, d, K / 32, mins ? gsum : NULL, G, NULL, 0, Tn, o2);
        k->x8_u4_q8(t0, GST, sc0, mins ? sc0 + 8 : NULL, K, GS, q, K, d, K / 32, mins ? gsum : NULL,
                    G, Tn, o1[0]);
        k->x8_u4_q8(t1, GST, sc1, mins ? sc1 + 8 : NULL, K, GS, q, K, d, K / 32, mins ? gsum : NULL,
                    G, Tn, o1[1]);
        PAIR("x8_u4_q8_2")
      }
      if (k->x8_s8a16_q8_2) {
        k->x8_s8a16_q8_2(t0, t1, GST, sc0, sc1, sc0 + 8, sc1 + 8, K, GS, q, K, d, K / 32, gsum, G,
                         qsum, K / 32, Tn, o2);
        k->x8_s8a16_q8(t0, GST, sc0, sc0 + 8, K, GS, q, K, d, K / 32, gsum, G, Tn, o1[0]);
        k->x8_s8a16_q8(t1, GST, sc1, sc1 + 8, K, GS, q, K, d, K / 32, gsum, G, Tn, o1[1]);
        PAIR("x8_s8a16_q8_2")
      }
      if (k->x8_s8_q8_2) {
        k->x8_s8_q8_2(t0, t1, GST, sc0, sc1, K, GS, q, K, qsum, K / 32, Tn, o2);
        k->x8_s8_q8(t0, GST, sc0, K, GS, q, K, Tn, o1[0]);
        k->x8_s8_q8(t1, GST, sc1, K, GS, q, K, Tn, o1[1]);
        PAIR("x8_s8_q8_2")
      }
      static const struct {
        uint32_t type;
        size_t tile_bytes;
        const char *name;
      } gg[] = {{MQ_GGML_TYPE_Q4_0, 144 * (K / 32), "Q4_0"},
                {MQ_GGML_TYPE_Q8_0, 272 * (K / 32), "Q8_0"},
                {MQ_GGML_TYPE_Q4_K, 1184 * (K / 256), "Q4_K"},
                {MQ_GGML_TYPE_Q5_K, 1440 * (K / 256), "Q5_K"}};
      for (size_t i = 0; i < sizeof gg / sizeof *gg; i++) {
        uint32_t ty = gg[i].type;
        if (!k->x8_gguf_2[ty]) continue;
        void (*one)(const uint8_t *, int, const uint8_t *, size_t, const int32_t *, int, int,
                    float *) = ty == MQ_GGML_TYPE_Q4_0   ? k->x8_q4_0
                               : ty == MQ_GGML_TYPE_Q8_0 ? k->x8_q8_0
                               : ty == MQ_GGML_TYPE_Q4_K ? k->x8_q4_k
                                                         : k->x8_q5_k;
        size_t tb = gg[i].tile_bytes, as = ty == MQ_GGML_TYPE_Q4_K || ty == MQ_GGML_TYPE_Q5_K
                                                ? (size_t)QK
                                                : (size_t)(K / 32) * 34;
        /* Q4_0 takes any sums (the one-tile kernel reads the same); Q8_0's
         * must be the blocks' own */
        const int32_t *bs = ty == MQ_GGML_TYPE_Q8_0 ? asum : bsum;
        k->x8_gguf_2[ty](gt, tb, K, act, as, bs, K / 32, Tn, o2);
        one(gt, K, act, as, bsum, K / 32, Tn, o1[0]);
        one(gt + tb, K, act, as, bsum, K / 32, Tn, o1[1]);
        PAIR(gg[i].name)
      }
#undef PAIR
    }
  }
  if (!tested) printf("two-tile entries: none in this build's tiers\n");
}

int main(void) {
  check_entries();
  check_pairs();
  for (int T = 1; T <= 5; T += 2) {
    static const uint32_t a16[3] = {0, 0, 0}, q40[2] = {MQ_GGML_TYPE_Q8_0, MQ_GGML_TYPE_Q4_0},
                          kq[3] = {MQ_GGML_TYPE_Q4_K, MQ_GGML_TYPE_Q6_K, MQ_GGML_TYPE_Q3_K},
                          mixed[2] = {MQ_GGML_TYPE_Q4_0, MQ_GGML_TYPE_Q4_K},
                          k23[2] = {MQ_GGML_TYPE_Q2_K, MQ_GGML_TYPE_Q3_K},
                          a16_48[3] = {0, A16_8BIT, 0}; /* 4- and 8-bit tiles, one input */
    check_multi(a16, 3, T, 1);
    check_multi(a16_48, 3, T, 1);
    check_multi(q40, 2, T, 1);
    check_multi(kq, 3, T, 1);
    check_multi(k23, 2, T, 1);
    check_multi(mixed, 2, T, 0); /* two activation formats: computed one after another */
  }
  for (int T = 1; T <= 6; T++) {
    check_aq(MQ_ACT_INT8_TOKEN, 4, 5, 64, 64, 0, T);
    check_aq(MQ_ACT_INT8_TOKEN, 4, 19, 160, 32, 1, T);
    check_aq(MQ_ACT_INT4_TOKEN, 4, 9, 128, 64, T % 2, T);
    check_aq(MQ_ACT_INT8_TOKEN, 4, 64, 2048, 2048, 0, T);
    check_aq(MQ_ACT_INT8_TOKEN, 8, 13, 96, 96, 0, T);
    check_aq(MQ_ACT_INT8_TOKEN, 8, 21, 128, 64, 0, T);
    check_aq(MQ_ACT_INT8_TOKEN, 8, 7, 64, 32, 1, T);
    check_aq(MQ_ACT_INT8_TOKEN, 8, 64, 2048, 2048, 0, T);
    check_static(13, 96, T);
    check_static(64, 2048, T);
  }
  for (int T = 1; T <= 9; T += 2) {
    check_gguf(MQ_GGML_TYPE_Q4_0, 1, 32, T, 1);
    check_gguf(MQ_GGML_TYPE_Q4_0, 13, 96, T, 2);
    check_gguf(MQ_GGML_TYPE_Q4_0, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q8_0, 11, 64, T, 1);
    check_gguf(MQ_GGML_TYPE_Q8_0, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q5_K, 9, 256, T, 1);
    check_gguf(MQ_GGML_TYPE_Q5_K, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q6_K, 5, 512, T, 1);
    check_gguf(MQ_GGML_TYPE_Q6_K, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q3_K, 5, 512, T, 1);
    check_gguf(MQ_GGML_TYPE_Q3_K, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q2_K, 3, 256, T, 1);
    check_gguf(MQ_GGML_TYPE_Q2_K, 64, 2048, T, 2);
    check_gguf(MQ_GGML_TYPE_Q4_K, 3, 256, T, 1);
    check_gguf(MQ_GGML_TYPE_Q4_K, 21, 768, T, 2);
    check_gguf(MQ_GGML_TYPE_Q4_K, 64, 2048, T, 2);
  }
  static const shape shapes[] = {
      {1, 32, 32, 1, 0, 0},    {7, 64, 32, 0, 0, 1},   {8, 96, 64, 1, 0, 1},
      {9, 160, 160, 1, 1, 0},  {17, 256, 128, 0, 1, 1}, {33, 352, 64, 1, 0, 1},
      {64, 2048, 128, 1, 1, 1}, /* > 65536 multiply-adds: the threaded path */
      /* 8-bit weight-only: U8 with zero points (GPTQ), S8 with and without mins */
      {7, 64, 32, 1, 0, 1, 1},  {17, 256, 128, 0, 1, 0, 1}, {9, 160, 160, 0, 0, 1, 2},
      {33, 352, 64, 1, 0, 1, 2}, {64, 2048, 128, 1, 1, 1, 1},
  };
  static const int toks[] = {1, 2, 3, 4, 5, 9};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (size_t t = 0; t < sizeof toks / sizeof *toks; t++)
      check_shape(&shapes[s], toks[t], 1 + (int)(t % 2));
  const mq_kernels *tiers[1 + MQ_KERN_MAX_TIERS];
  int n_tiers = tier_list(tiers);
  printf("checked tiers:");
  for (int i = 0; i < n_tiers; i++) printf(" %s", tiers[i]->name);
  printf("%s\n", n_tiers > 1 ? "" : " (no SIMD tier in this build or CPU)");
  return mqt_report("linear_x8");
}
