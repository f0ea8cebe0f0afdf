/* Activation-quantized linears against an independent float64 evaluation of
 * the spec formulas (modelslim.md §3-4, formats.md §4.7): the integer parts
 * must agree exactly, the float epilogue to 1e-5 relative. */
#include "core/numconv.h"
#include "core/pool.h"
#include "kernels/linear.h"
#include "test.h"

enum { N = 19, K = 96, T = 4 };

static float gather[T * 2048];

static void run(const mq_linear *l, const float *x, float *y, int threads) {
  mq_pool *p = mq_pool_init(threads);
  float s0[MQ_SCRATCH_ROWS * K], s1[MQ_SCRATCH_ROWS * K], s2[MQ_SCRATCH_ROWS * K], *sc[3] = {s0, s1, s2};
  CHECK(mq_linear_gather_floats(l) * T <= (int)(sizeof gather / 4));
  mq_exec ex = {p, mq_kern(), sc, gather};
  mq_linear_forward(l, x, T, y, &ex);
  mq_pool_free(p);
}

static double rel_err(double got, double want) { return fabs(got - want) / (1e-3 + fabs(want)); }

/* Dynamic per-token int8/int4 with per-group weight scales (+ zero points). */
static void check_dynamic(mq_act act, int divide, int gs, int with_mins) {
  static int8_t w[N * K];
  static float x[T * K], y[T * N], sc[N * 8], mn[N * 8], bias[N];
  int G = (K + gs - 1) / gs, hi = act == MQ_ACT_INT4_TOKEN ? 7 : 127;
  for (int i = 0; i < N * K; i++) w[i] = (int8_t)((int)(mqt_rand() % 16) - 8);
  for (int i = 0; i < N * G; i++) sc[i] = mqt_randf(0.001f, 0.01f), mn[i] = mqt_randf(-0.05f, 0.05f);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1);
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-3, 3);
  for (int k = 0; k < K; k++) x[2 * K + k] = 0; /* an all-zero token: scale 0 */
  x[3 * K + 5] = 50; /* an outlier */
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_INT, .act = act, .act_div = divide, .bias = bias};
  l.q = (mq_qint){MQ_CODES_S8, 8, gs, G, (const uint8_t *)w, sc, with_mins ? mn : NULL, NULL};
  run(&l, x, y, 2);
  double worst = 0;
  for (int t = 0; t < T; t++) {
    double amax = 0;
    for (int k = 0; k < K; k++) amax = fmax(amax, fabs(x[t * K + k]));
    double s = amax / hi;
    int xq[K];
    for (int k = 0; k < K; k++) {
      double v = amax == 0 ? 0 : (divide ? (double)(x[t * K + k] / (float)s) : (double)(x[t * K + k] * ((float)hi / (float)amax)));
      double r = nearbyint(v);
      xq[k] = (int)(r < -hi - 1 ? -hi - 1 : (r > hi ? hi : r));
    }
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int g = 0; g < G; g++) {
        long long ia = 0, qs = 0;
        for (int k = g * gs; k < K && k < (g + 1) * gs; k++) ia += (long long)xq[k] * w[n * K + k], qs += xq[k];
        acc += (double)sc[n * G + g] * ia + (with_mins ? (double)mn[n * G + g] * qs : 0);
      }
      double want = acc * s + bias[n];
      worst = fmax(worst, rel_err(y[t * N + n], want));
    }
  }
  CHECK_MSG(worst < 1e-5, "%s div %d gs %d mins %d: max rel err %g", mq_act_name(act), divide, gs,
            with_mins, worst);
}

/* ModelSlim W8A8 static: y = (sum x_q w + quant_bias) * deq. */
static void check_static(void) {
  static int8_t w[N * K];
  static float x[T * K], y[T * N], deq[N], sc[N];
  static int32_t qb[N];
  float s_x = 0.02f, o_x = 3.0f;
  for (int i = 0; i < N * K; i++) w[i] = (int8_t)(mqt_rand() >> 56);
  for (int i = 0; i < N; i++) deq[i] = mqt_randf(1e-5f, 1e-4f), qb[i] = (int32_t)(mqt_rand() % 20001) - 10000, sc[i] = deq[i] / s_x;
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-3, 3);
  x[7] = 100; /* saturates at 127 */
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_INT, .act = MQ_ACT_INT8_STATIC,
                 .in_rscale = 1.0f / s_x, .in_offset = o_x, .qbias = qb, .deq = deq};
  l.q = (mq_qint){MQ_CODES_S8, 8, K, 1, (const uint8_t *)w, sc, NULL, NULL};
  run(&l, x, y, 1);
  double worst = 0;
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) {
      long long acc = qb[n];
      for (int k = 0; k < K; k++) {
        double r = nearbyint((double)(x[t * K + k] * (1.0f / s_x) + o_x));
        int xq = (int)(r < -128 ? -128 : (r > 127 ? 127 : r));
        acc += (long long)xq * w[n * K + k];
      }
      worst = fmax(worst, rel_err(y[t * N + n], (double)acc * deq[n]));
    }
  CHECK_MSG(worst < 1e-6, "W8A8 static: max rel err %g", worst);
  /* parity mode rounds outputs to bf16 */
  l.out_bf16 = 1;
  run(&l, x, y, 1);
  CHECK(y[3] == mq_bf16_to_f32(mq_f32_to_bf16(y[3])));
}

/* E4M3 encoding: the nearest representable value, ties to even mantissa,
 * saturating — by brute force over all codes. */
static uint8_t e4m3_nearest(float v) {
  if (v >= 448) return 0x7e;
  if (v <= -448) return 0xfe;
  int best = -1;
  double bd = 1e30;
  for (int c = 0; c < 256; c++) {
    float f = mq_e4m3_to_f32((uint8_t)c);
    if (isnan(f) || (signbit(f) != signbit(v))) continue;
    double d = fabs((double)f - v);
    if (d < bd || (d == bd && (c & 1) == 0)) bd = d, best = c;
  }
  return (uint8_t)best;
}

static void check_mxfp8(void) {
  int bad = 0;
  for (int i = 0; i < 20000; i++) {
    float v = ldexpf(mqt_randf(-1, 1), (int)(mqt_rand() % 30) - 15);
    uint8_t got = mq_f32_to_e4m3(v), want = e4m3_nearest(v);
    if (got != want && !(v == 0 || (got & 0x7f) == 0)) bad++;
  }
  CHECK_MSG(bad == 0, "e4m3 encoder: %d mismatches", bad);
  CHECK(mq_f32_to_e4m3(1000.0f) == 0x7e && mq_f32_to_e4m3(-1000.0f) == 0xfe);
  CHECK(mq_f32_to_e4m3(1.0625f) == 0x38);  /* tie 1 + 1/16 -> even mantissa (1.0) */
  CHECK(mq_f32_to_e4m3(1.1875f) == 0x3a);  /* tie 1.125/1.25 -> 1.25 */

  static uint8_t w[N * K], we[N * K / 32];
  static float x[T * K], y[T * N], bias[N];
  static double want[T * N], mag[T * N];
  for (int i = 0; i < N * K; i++) {
    w[i] = (uint8_t)(mqt_rand() >> 56);
    if ((w[i] & 0x7f) == 0x7f) w[i] = 0x30; /* no NaN codes */
  }
  for (int i = 0; i < N * K / 32; i++) we[i] = (uint8_t)(120 + mqt_rand() % 10);
  for (int i = 0; i < N; i++) bias[i] = mqt_randf(-1, 1);
  for (int i = 0; i < T * K; i++) x[i] = mqt_randf(-3, 3);
  for (int k = 32; k < 64; k++) x[k] = 0; /* an all-zero block */
  mq_linear l = {.n_out = N, .n_in = K, .kind = MQ_W_MXFP8, .act = MQ_ACT_MXFP8, .mx_exp = we, .bias = bias};
  l.q.data = w;
  run(&l, x, y, 2);
  double worst = 0;
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) {
      double acc = 0, sabs = 0;
      for (int b = 0; b < K / 32; b++) {
        double amax = 0;
        for (int k = 32 * b; k < 32 * b + 32; k++) amax = fmax(amax, fabs(x[t * K + k]));
        int e = amax > 0 ? (int)floor(log2(amax)) - 8 : -127;
        double blk = 0, babs = 0;
        for (int k = 32 * b; k < 32 * b + 32; k++) {
          double xe = mq_e4m3_to_f32(e4m3_nearest((float)ldexp(x[t * K + k], -e)));
          blk += xe * mq_e4m3_to_f32(w[n * K + k]);
          babs += fabs(xe * mq_e4m3_to_f32(w[n * K + k]));
        }
        acc += ldexp(blk, e + we[n * (K / 32) + b] - 127);
        sabs += ldexp(babs, e + we[n * (K / 32) + b] - 127);
      }
      want[t * N + n] = acc + bias[n];
      mag[t * N + n] = sabs + fabs(bias[n]);
      worst = fmax(worst, fabs(y[t * N + n] - want[t * N + n]) / mag[t * N + n]);
    }
  /* float sums of exact products: within K * 2^-24 of sum |w x| (the
   * products are exact: E4M3 times E4M3 times powers of two) */
  CHECK_MSG(worst < 1e-5, "MXFP8: max error / sum|w x| %g", worst);
  /* one token at a time (decode's row kernel; several tokens convert each
   * row once and take float dots): the same sums, in another order */
  mq_pool *p = mq_pool_init(1);
  float s0[MQ_SCRATCH_ROWS * K], *sc[1] = {s0}, y1[N];
  mq_exec ex = {p, mq_kern(), sc, gather};
  worst = 0;
  for (int t = 0; t < T; t++) {
    mq_linear_forward(&l, x + t * K, 1, y1, &ex);
    for (int n = 0; n < N; n++) worst = fmax(worst, fabs(y1[n] - want[t * N + n]) / mag[t * N + n]);
  }
  CHECK_MSG(worst < 1e-5, "MXFP8 one token at a time: max error / sum|w x| %g", worst);
  mq_pool_free(p);
}

int main(void) {
  for (int gs = 32; gs <= K; gs += 64) { /* 32: three groups; 96: per channel */
    check_dynamic(MQ_ACT_INT8_TOKEN, 0, gs, 0);
    check_dynamic(MQ_ACT_INT8_TOKEN, 1, gs, 1);
    check_dynamic(MQ_ACT_INT4_TOKEN, 1, gs, 0);
  }
  check_dynamic(MQ_ACT_INT8_TOKEN, 0, 40, 1); /* partial last group */
  check_static();
  check_mxfp8();
  return mqt_report("kernels_aq");
}
