/* The GGUF row kernels of every SIMD tier (x86: kernels/avx2.c,
 * kernels/avx2_gguf.c, which the AVX-512 tier keeps; aarch64:
 * kernels/neon.c, plain NEON or SDOT as the CPU has it) against the scalar
 * definition mq_gguf_vec_dot, type by type and tier by tier, on the same
 * activation blocks, and the GGUF linear forward (row layout) with and
 * without them.
 *
 * Tolerance: the kernels compute the same integer sums as the scalar code
 * and differ only in the order of float additions, so
 *   |simd - scalar| <= 1e-5 * sum_i |w_i * a_i| + 1e-4
 * with w the dequantized weights and a the dequantized activation blocks. */
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "core/pool.h"
#include "kernels/kernels.h"
#include "kernels/linear.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"
#include "test.h"

#define MAX_BLOCKS 40

/* The types with an AVX2 row kernel (F16 rows are computed as float rows:
 * check_linear compares them with the definition); NEON has all but the
 * three in neon_lacks. */
static const uint32_t k_types[] = {
    MQ_GGML_TYPE_Q4_0, MQ_GGML_TYPE_Q4_1,   MQ_GGML_TYPE_Q5_0, MQ_GGML_TYPE_Q5_1,
    MQ_GGML_TYPE_Q8_0, MQ_GGML_TYPE_IQ4_NL, MQ_GGML_TYPE_Q2_K, MQ_GGML_TYPE_Q3_K,
    MQ_GGML_TYPE_Q4_K, MQ_GGML_TYPE_Q5_K,   MQ_GGML_TYPE_Q6_K, MQ_GGML_TYPE_IQ4_XS,
};

/* Whether tier k must have a row kernel for type t (NEON computes Q2_K,
 * Q3_K and Q5_K rows by the scalar definition; its x8 tiles cover them). */
static int required(const mq_kernels *k, uint32_t t) {
  static const uint32_t neon_lacks[] = {MQ_GGML_TYPE_Q2_K, MQ_GGML_TYPE_Q3_K, MQ_GGML_TYPE_Q5_K};
  if (strcmp(k->name, "neon") != 0) return 1;
  for (size_t i = 0; i < sizeof neon_lacks / sizeof *neon_lacks; i++)
    if (neon_lacks[i] == t) return 0;
  return 1;
}

/* Offsets of the f16 scale fields (d, and dmin / m where the type has one)
 * inside a block; -1 when absent. */
static void f16_fields(uint32_t t, int *d, int *m) {
  *d = 0, *m = -1;
  switch (t) {
  case MQ_GGML_TYPE_Q4_1:
  case MQ_GGML_TYPE_Q5_1:
  case MQ_GGML_TYPE_Q4_K:
  case MQ_GGML_TYPE_Q5_K: *m = 2; break;
  case MQ_GGML_TYPE_Q2_K: *d = 80, *m = 82; break;
  case MQ_GGML_TYPE_Q3_K: *d = 108; break;
  case MQ_GGML_TYPE_Q6_K: *d = 208; break;
  default: break;
  }
}

static void put_f16(uint8_t *p, float v) {
  uint16_t h = mq_f32_to_f16(v);
  memcpy(p, &h, 2);
}

static float rand_sign(void) { return (mqt_rand() >> 63) ? -1.0f : 1.0f; }

/* A row of nb blocks of type t: random bytes (fill < 0) or every byte
 * `fill` (the extreme codes and scales), then sane f16 scales. F16 rows
 * (blocks of one element) get random values. */
static void make_row(uint32_t t, int nb, int fill, uint8_t *row) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(t);
  if (t == MQ_GGML_TYPE_F16) {
    for (int i = 0; i < nb; i++) put_f16(row + 2 * i, fill < 0 ? mqt_randf(-2, 2) : (fill ? 2.0f : -0.5f));
    return;
  }
  int od, om;
  f16_fields(t, &od, &om);
  for (int b = 0; b < nb; b++) {
    uint8_t *blk = row + (size_t)b * ti->type_size;
    for (int i = 0; i < ti->type_size; i++) blk[i] = fill < 0 ? (uint8_t)(mqt_rand() >> 56) : (uint8_t)fill;
    put_f16(blk + od, rand_sign() * mqt_randf(0.001f, 0.05f));
    if (om >= 0) put_f16(blk + om, rand_sign() * mqt_randf(0.001f, 0.05f));
  }
}

/* Activations: uniform, with outliers, or one constant sign (mode 0..2). */
static void make_x(float *x, int n, int mode) {
  for (int i = 0; i < n; i++) {
    x[i] = mqt_randf(-2, 2);
    if (mode == 1 && mqt_rand() % 17 == 0) x[i] *= 50;
    if (mode == 2) x[i] = fabsf(x[i]) + 0.25f;
  }
}

/* sum_i |w_i a_i| from the dequantized row and the dequantized activations
 * (act_type: Q8_0 / Q8_1 / Q8_K blocks, or F32). */
static double sum_abs(uint32_t t, const uint8_t *row, int act_type, const uint8_t *act, int n) {
  static float w[MAX_BLOCKS * 256], a[MAX_BLOCKS * 256];
  CHECK(mq_gguf_dequant_row(t, row, w, n) == 0);
  if (act_type == MQ_GGML_TYPE_F32) memcpy(a, act, (size_t)n * sizeof(float));
  else CHECK(mq_gguf_dequant_row((uint32_t)act_type, act, a, n) == 0);
  double s = 0;
  for (int i = 0; i < n; i++) s += fabs((double)w[i] * a[i]);
  return s;
}

/* The x86 SIMD builds' Q8_0 / Q8_1 rounding, which linear_gguf.c uses on
 * every architecture (llama.cpp's ARM build rounds differently; the
 * kernels see whatever blocks they are given, so each check compares the
 * kernel and the definition on the same blocks). */
static void quantize_x86(int act_type, const float *x, uint8_t *act, int n) {
  if (act_type == MQ_GGML_TYPE_Q8_0) mq_gguf_quantize_row_q8_0_x86(x, act, n);
  else mq_gguf_quantize_row_q8_1_x86(x, act, n);
}

static double g_worst = 0; /* largest |simd - scalar| / tolerance seen */
static int g_checked = 0;  /* types with a kernel in the tier being checked */

static void check_dot(const mq_kernels *k, uint32_t t, const uint8_t *row, int act_type,
                      const uint8_t *act, int n, const char *what) {
  double ref = mq_gguf_vec_dot(t, n, row, act);
  double got = k->gguf_dot[t](n, row, act);
  double tol = 1e-5 * sum_abs(t, row, act_type, act, n) + 1e-4;
  double r = fabs(got - ref) / tol;
  if (r > g_worst) g_worst = r;
  CHECK_MSG(fabs(got - ref) <= tol && isfinite(got), "%s n=%d %s: %s %.9g vs scalar %.9g (tol %g)",
            mq_ggml_type_name(t), n, what, k->name, got, ref, tol);
}

static void check_type(const mq_kernels *k, uint32_t t) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(t);
  CHECK_MSG(k->gguf_dot[t] != NULL || !required(k, t), "no %s kernel for %s", k->name,
            mq_ggml_type_name(t));
  if (!k->gguf_dot[t]) return;
  g_checked++;
  int act_type = mq_gguf_act_type(t);
  static uint8_t row[MAX_BLOCKS * 256 * 2], act[MAX_BLOCKS * 292 + 64];
  static float x[MAX_BLOCKS * 256];
  /* 1..8 blocks (odd counts included) and a longer row; F16 rows: every
   * length 1..40 (the 16 / 8 / 1 element loops) and a few longer ones */
  int lens[48], n_lens = 0;
  if (t == MQ_GGML_TYPE_F16) {
    for (int i = 1; i <= 40; i++) lens[n_lens++] = i;
    lens[n_lens++] = 255, lens[n_lens++] = 1000, lens[n_lens++] = 2048;
  } else {
    for (int nb = 1; nb <= 8; nb++) lens[n_lens++] = nb * ti->blck;
    if (ti->blck == 32) lens[n_lens++] = 37 * 32;
  }
  for (int li = 0; li < n_lens; li++) {
    int n = lens[li], nb = n / ti->blck;
    for (int rep = 0; rep < 6; rep++) {
      /* rep 0..3: random bytes; 4: every byte 0x00; 5: every byte 0xFF */
      make_row(t, nb, rep < 4 ? -1 : (rep == 4 ? 0x00 : 0xFF), row);
      make_x(x, n, rep % 3);
      if (rep == 5 && t != MQ_GGML_TYPE_F16) /* extreme activations: +-amax everywhere */
        for (int i = 0; i < n; i++) x[i] = (i & 1) ? -1.0f : 1.0f;
      CHECK(mq_gguf_quantize_act(t, x, act, n) == 0);
      if (t == MQ_GGML_TYPE_F16) /* linear_gguf.c rounds activations to f16 first */
        for (int i = 0; i < n; i++) ((float *)act)[i] = mq_f16_to_f32(mq_f32_to_f16(x[i]));
      check_dot(k, t, row, act_type, act, n, "reference activations");
      if (act_type == MQ_GGML_TYPE_Q8_0 || act_type == MQ_GGML_TYPE_Q8_1) {
        quantize_x86(act_type, x, act, n);
        check_dot(k, t, row, act_type, act, n, "x86 activations");
      }
    }
  }
}

/* mq_linear_forward of a GGUF layer through the table k vs the same table
 * with every gguf_dot entry removed (the scalar definition). */
static void check_linear(const mq_kernels *k, uint32_t t, int n_tok, int n_threads) {
  enum { N = 67, K = 512, T = 3 }; /* 3 tokens: > 65536 multiply-adds, the threaded path */
  const mq_ggml_type_info *ti = mq_ggml_type_get(t);
  size_t rb = (size_t)mq_ggml_row_size(t, K);
  uint8_t *w = malloc(N * rb);
  static float x[T * K], y_simd[T * N], y_ref[T * N], bias[N], wrow[K];
  for (int r = 0; r < N; r++) make_row(t, K / ti->blck, -1, w + r * rb);
  make_x(x, T * K, 1);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1);
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_GGUF, .gtype = t, .w = w, .bias = bias};
  size_t gfloats = (size_t)mq_linear_gather_floats(&l) * T;
  float *gather = aligned_alloc(64, (gfloats * sizeof(float) + 63) & ~(size_t)63);
  mq_pool *pool = mq_pool_init(n_threads);
  float *scratch[8];
  for (int i = 0; i < mq_pool_size(pool); i++) scratch[i] = malloc(MQ_SCRATCH_ROWS * K * sizeof(float));
  mq_kernels scalar = *k;
  for (int i = 0; i < MQ_GGML_TYPE_COUNT; i++) scalar.gguf_dot[i] = NULL;
  mq_exec ex = {pool, k, scratch, gather, 0};
  mq_linear_forward(&l, x, n_tok, y_simd, &ex);
  ex.k = &scalar;
  mq_linear_forward(&l, x, n_tok, y_ref, &ex);
  double worst = 0;
  for (int o = 0; o < N; o++) {
    mq_linear_dequant_row(&l, o, wrow);
    for (int tk = 0; tk < n_tok; tk++) {
      double s = 0; /* |w x| bounds |w a| up to the int8 step; 2x covers it */
      for (int i = 0; i < K; i++) s += fabs((double)wrow[i] * x[tk * K + i]);
      double tol = 2e-5 * s + 1e-4, d = fabs(y_simd[tk * N + o] - y_ref[tk * N + o]);
      CHECK_MSG(d <= tol, "linear %s token %d row %d: %.9g vs %.9g", mq_ggml_type_name(t), tk, o,
                y_simd[tk * N + o], y_ref[tk * N + o]);
      worst = d > worst ? d : worst;
    }
  }
  if (t == MQ_GGML_TYPE_F16) { /* both against the definition on f16-rounded activations */
    static float xr[K];
    for (int tk = 0; tk < n_tok; tk++) {
      for (int i = 0; i < K; i++) xr[i] = mq_f16_to_f32(mq_f32_to_f16(x[tk * K + i]));
      for (int o = 0; o < N; o++) {
        double s = sum_abs(t, w + o * rb, MQ_GGML_TYPE_F32, (const uint8_t *)xr, K);
        double def = (double)mq_gguf_vec_dot(t, K, w + o * rb, xr) + bias[o], tol = 1e-5 * s + 1e-4;
        CHECK_MSG(fabs(y_simd[tk * N + o] - def) <= tol && fabs(y_ref[tk * N + o] - def) <= tol,
                  "linear F16 token %d row %d: %.9g / %.9g vs definition %.9g", tk, o,
                  y_simd[tk * N + o], y_ref[tk * N + o], def);
      }
    }
  }
  printf("linear %s (%s table, %d token%s, %d threads): max |simd - scalar| %.3g\n",
         mq_ggml_type_name(t), k->name, n_tok, n_tok > 1 ? "s" : "", n_threads, worst);
  for (int i = 0; i < mq_pool_size(pool); i++) free(scratch[i]);
  mq_pool_free(pool);
  free(gather);
  free(w);
}

/* The Q8_0 / Q8_1 activation quantizer equals the reference byte for byte:
 * random blocks of different magnitudes, a zero block, exact ties (amax
 * 127: id 1, codes x rounded to even), subnormal values, and blocks with a
 * NaN or an infinity (the reference's saturation). */
static void check_q8_act(const mq_kernels *k) {
  enum { NB = 12, N = 32 * NB };
  float x[N];
  for (int b = 0; b < NB; b++) {
    float mag = powf(10.0f, (float)(b % 6) - 3.0f);
    for (int i = 0; i < 32; i++) x[32 * b + i] = mqt_randf(-mag, mag);
  }
  for (int i = 0; i < 32; i++) x[32 + i] = 0.0f;                    /* block 1: zeros */
  for (int i = 0; i < 32; i++) x[64 + i] = (float)(i - 16) + 0.5f;  /* block 2: ties */
  x[64] = 127.0f;
  for (int i = 0; i < 32; i++) x[96 + i] = mqt_randf(-1, 1) * 1e-40f; /* block 3: subnormal */
  x[128 + 5] = NAN;                                                   /* block 4 */
  x[160 + 31] = -INFINITY;                                            /* block 5 */
  for (int with_sum = 0; with_sum < 2; with_sum++) {
    uint8_t a[NB * 36], r[NB * 36];
    memset(a, 0xAA, sizeof a), memset(r, 0x55, sizeof r);
    k->gguf_q8_x86(x, a, N, with_sum);
    mq_kern_ref()->gguf_q8_x86(x, r, N, with_sum);
    size_t bytes = (size_t)NB * (with_sum ? 36 : 34);
    CHECK_MSG(memcmp(a, r, bytes) == 0, "%s: Q8_%d activation blocks differ from the reference",
              k->name, with_sum);
  }
}

int main(void) {
  /* every SIMD tier this build and CPU have */
  const mq_kernels *tiers[MQ_KERN_MAX_TIERS];
  int n_tiers = mq_kern_simd_tiers(tiers);
  if (n_tiers == 0) {
    printf("no SIMD tier in this build or on this CPU: checked nothing\n");
    return 0;
  }
  printf("active kernels: %s\n", mq_kern()->name);
  for (int ti = 0; ti < n_tiers; ti++) {
    g_worst = 0, g_checked = 0;
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++) check_type(tiers[ti], k_types[i]);
    check_q8_act(tiers[ti]);
    printf("worst |%s - scalar| / tolerance over the dots of %d types: %.3g\n", tiers[ti]->name,
           g_checked, g_worst);
  }
  /* the lowest tier: AVX2 on x86, NEON on aarch64 */
  const mq_kernels *low = tiers[0], *avx512 = mq_kern_avx512(), *neon = mq_kern_neon();
  if (neon) {
    check_linear(neon, MQ_GGML_TYPE_Q5_0, 1, 1);
    check_linear(neon, MQ_GGML_TYPE_IQ4_XS, 3, 2);
  }
  if (avx512) {
    check_linear(avx512, MQ_GGML_TYPE_Q3_K, 1, 1);
    check_linear(avx512, MQ_GGML_TYPE_Q2_K, 3, 2);
  }
  /* the dispatch: the active table (the best tier unless MIXQ_ISA says otherwise) */
  check_linear(mq_kern(), MQ_GGML_TYPE_Q5_K, 1, 1);
  check_linear(mq_kern(), MQ_GGML_TYPE_Q5_K, 3, 2);
  check_linear(low, MQ_GGML_TYPE_Q4_1, 1, 1);
  check_linear(low, MQ_GGML_TYPE_Q4_1, 3, 2);
  for (int i = 0; i < 2; i++) { /* F16 rows: decode and a prefill block */
    check_linear(i ? low : mq_kern(), MQ_GGML_TYPE_F16, 1, 1);
    check_linear(i ? low : mq_kern(), MQ_GGML_TYPE_F16, 3, 2);
  }
  return mqt_report("kernels_gguf");
}
