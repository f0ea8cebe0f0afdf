/* ModelSlim adapter: tensors as the v1 saver writes them (built here by
 * hand), decoded weights and activation parameters checked against the
 * spec, and each bad-tensor case gives an error naming it. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "io/st_write.h"
#include "model/model.h"
#include "quant/adapt.h"
#include "test.h"
#include "adapter_ckpt.h"

enum { N = 16, K = 64 };
static struct mq_model *open_model(mq_st_writer *w) { return open_model_as(w, "quant_model_weights.safetensors"); }

static mq_lspec spec(const char *scheme, int bits, mq_act act) {
  mq_lspec s = {.fmt = MQ_FMT_MODELSLIM, .bits = bits, .group_size = -1, .sym = 1, .act = act};
  snprintf(s.scheme, sizeof s.scheme, "%s", scheme);
  return s;
}

static void expect_row(const mq_linear *l, int n, const float *want, const char *what) {
  float row[K];
  mq_linear_dequant_row(l, n, row);
  int bad = 0;
  for (int k = 0; k < K; k++) bad += fabsf(row[k] - want[k]) > 1e-6f * (1 + fabsf(want[k]));
  CHECK_MSG(bad == 0, "%s row %d: %d weights differ", what, n, bad);
}

static int8_t w8[N][K], w4[N][K];
static float s1[N], s2[N][4];

static void test_w8a8_dynamic(int per_group) {
  mq_st_writer *w = mq_st_writer_new();
  float sc[N * 4], off[N * 4] = {0};
  int G = per_group ? 4 : 1;
  for (int i = 0; i < N * G; i++) sc[i] = mqt_randf(0.001f, 0.01f);
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, G, sc);
  add(w, "L.weight_offset", MQ_DTYPE_F32, 2, N, G, off);
  struct mq_model *m = open_model(w);
  mq_lspec s = spec("W8A8_DYNAMIC", 8, MQ_ACT_INT8_TOKEN);
  mq_linear l;
  mq_err err = {0};
  CHECK_MSG(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  CHECK(l.act == MQ_ACT_INT8_TOKEN && l.act_div && l.q.n_groups == G);
  for (int n = 0; n < N; n++) {
    float want[K];
    for (int k = 0; k < K; k++) want[k] = w8[n][k] * sc[n * G + k / (K / G)];
    expect_row(&l, n, want, per_group ? "W8A8_DYNAMIC per-group" : "W8A8_DYNAMIC");
  }
  close_model(m);
  /* parity mode: scales rounded to bf16 */
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, G, sc);
  m = open_model(w);
  m->npu_numerics = 1;
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_OK);
  CHECK(l.q.scales[1] == mq_bf16_to_f32(mq_f32_to_bf16(sc[1])) && l.out_bf16);
  close_model(m);
}

static void test_w8a8_static(int int64_deq, int garbage) {
  mq_st_writer *w = mq_st_writer_new();
  float is = 0.03f, io = -2.0f, deq[N], ws[N];
  int64_t deq64[N];
  int32_t qb[N];
  for (int n = 0; n < N; n++) {
    ws[n] = mqt_randf(0.001f, 0.01f);
    deq[n] = is * ws[n];
    deq64[n] = (int64_t)(int32_t)mq_f32_to_bits(deq[n]);
    qb[n] = (int32_t)(mqt_rand() % 1000) - 500;
  }
  if (garbage) deq64[3] |= (int64_t)0x1234 << 40;
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.input_scale", MQ_DTYPE_F32, 1, 1, 0, &is);
  add(w, "L.input_offset", MQ_DTYPE_F32, 1, 1, 0, &io);
  if (int64_deq) add(w, "L.deq_scale", MQ_DTYPE_I64, 1, N, 0, deq64);
  else add(w, "L.deq_scale", MQ_DTYPE_F32, 1, N, 0, deq);
  add(w, "L.quant_bias", MQ_DTYPE_I32, 1, N, 0, qb);
  struct mq_model *m = open_model(w);
  mq_lspec s = spec("W8A8", 8, MQ_ACT_INT8_STATIC);
  mq_linear l;
  mq_err err = {0};
  int rc = mq_adapt_modelslim(m, "L", &s, N, K, &l, &err);
  if (garbage) {
    CHECK(rc == MQ_ERR_FORMAT && strstr(err.msg, "deq_scale[3]") && strstr(err.msg, "high 32 bits"));
  } else {
    CHECK_MSG(rc == MQ_OK, "%s", err.msg);
    CHECK(l.act == MQ_ACT_INT8_STATIC && l.in_offset == io && l.in_rscale == 1.0f / is);
    CHECK(l.deq[5] == deq[5] && l.qbias[7] == qb[7] && !l.bias);
  }
  close_model(m);
}

static void test_w4(const char *scheme, mq_act act, int packed, int second) {
  mq_st_writer *w = mq_st_writer_new();
  uint8_t pk[N / 2][K];
  for (int j = 0; j < N / 2; j++)
    for (int k = 0; k < K; k++) pk[j][k] = (uint8_t)((w4[2 * j][k] & 15) | ((uint8_t)w4[2 * j + 1][k] << 4));
  if (packed) add(w, "L.weight", MQ_DTYPE_I8, 2, N / 2, K, pk);
  else add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w4);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, 1, s1);
  if (second) add(w, "L.weight_scale_second", MQ_DTYPE_F32, 2, N, 4, s2);
  float sb[N];
  for (int n = 0; n < N; n++) {
    double sum = 0;
    for (int k = 0; k < K; k++) sum += w4[n][k];
    sb[n] = (float)(8.0 * s1[n] * sum);
  }
  /* with per-group scales: per K/2 chunk (two 16-wide groups each; 8 *
   * scale * sum(W) with the effective scales) */
  float sb2[N][2];
  for (int n = 0; n < N; n++)
    for (int c = 0; c < 2; c++) {
      double sum = 0;
      for (int k = c * 32; k < c * 32 + 32; k++) sum += (double)s1[n] * s2[n][k / 16] * w4[n][k];
      sb2[n][c] = (float)(8.0 * sum);
    }
  if (!second) add(w, "L.scale_bias", MQ_DTYPE_F32, 2, N, 1, sb);
  else add(w, "L.scale_bias", MQ_DTYPE_F32, 2, N, 2, sb2);
  struct mq_model *m = open_model(w);
  mq_lspec s = spec(scheme, 4, act);
  mq_linear l;
  mq_err err = {0};
  CHECK_MSG(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_OK, "%s: %s", scheme, err.msg);
  for (int n = 0; n < N; n++) {
    float want[K];
    for (int k = 0; k < K; k++) want[k] = w4[n][k] * s1[n] * (second ? s2[n][k / 16] : 1.0f);
    expect_row(&l, n, want, scheme);
  }
  CHECK(m->n_warnings == 0); /* scale_bias is consistent */
  close_model(m);
}

static void test_mxfp8(int bad_scale) {
  mq_st_writer *w = mq_st_writer_new();
  uint8_t we[N][K], ex[N][K / 32];
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < K; k++) we[n][k] = (uint8_t)(mqt_rand() % 0x7e);
    for (int b = 0; b < K / 32; b++) ex[n][b] = (uint8_t)(118 + mqt_rand() % 8);
  }
  if (bad_scale) ex[2][1] = 0xff;
  add(w, "L.weight", MQ_DTYPE_F8_E4M3, 2, N, K, we);
  add(w, "L.weight_scale", MQ_DTYPE_U8, 2, N, K / 32, ex);
  struct mq_model *m = open_model(w);
  mq_lspec s = spec("W8A8_MXFP8", 8, MQ_ACT_MXFP8);
  mq_linear l;
  mq_err err = {0};
  int rc = mq_adapt_modelslim(m, "L", &s, N, K, &l, &err);
  if (bad_scale) {
    CHECK(rc == MQ_ERR_FORMAT && strstr(err.msg, "0xFF"));
  } else {
    CHECK_MSG(rc == MQ_OK, "%s", err.msg);
    float want[K];
    for (int k = 0; k < K; k++) want[k] = ldexpf(mq_e4m3_to_f32(we[4][k]), ex[4][k / 32] - 127);
    expect_row(&l, 4, want, "MXFP8");
    CHECK(mq_adapt_modelslim(m, "L", &s, N, 48, &l, &err) == MQ_ERR_UNSUPPORTED); /* K % 32 */
    CHECK(strstr(err.msg, "multiple of the MX block"));
  }
  close_model(m);
}

static void test_errors(void) {
  mq_lspec s = spec("W8A8", 8, MQ_ACT_INT8_STATIC);
  mq_linear l;
  mq_err err = {0};
  float is = 0.03f, io = 0;
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.input_scale", MQ_DTYPE_F32, 1, 1, 0, &is);
  add(w, "L.input_offset", MQ_DTYPE_F32, 1, 1, 0, &io);
  struct mq_model *m = open_model(w);
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "L.deq_scale") && strstr(err.msg, "missing"));
  close_model(m);
  /* wrong scale shape, nonzero offset, int4 value out of range */
  float sc[N * 3], off[N];
  for (int i = 0; i < N * 3; i++) sc[i] = 0.01f;
  for (int i = 0; i < N; i++) off[i] = i == 4 ? 1.0f : 0.0f;
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, 3, sc);
  m = open_model(w);
  s = spec("W8A8_DYNAMIC", 8, MQ_ACT_INT8_TOKEN);
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "weight_scale") && strstr(err.msg, "does not divide"));
  close_model(m);
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, 1, sc);
  add(w, "L.weight_offset", MQ_DTYPE_F32, 2, N, 1, off);
  m = open_model(w);
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "L.weight_offset") && strstr(err.msg, "nonzero"));
  s = spec("W4A4_DYNAMIC", 4, MQ_ACT_INT4_TOKEN);
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_ERR_FORMAT); /* w8 values exceed int4 */
  CHECK(strstr(err.msg, "int4 range"));
  close_model(m);
  /* scale_bias inconsistent: a warning, not an error */
  float sb[N];
  for (int n = 0; n < N; n++) sb[n] = 123.0f;
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w4);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, 1, s1);
  add(w, "L.scale_bias", MQ_DTYPE_F32, 2, N, 1, sb);
  m = open_model(w);
  s = spec("W4A8_DYNAMIC", 4, MQ_ACT_INT8_TOKEN);
  CHECK(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_OK);
  CHECK(m->n_warnings == 1 && strstr(m->warnings[0], "scale_bias"));
  close_model(m);
}

static void test_w8a16(void) {
  float sc[N], off[N];
  for (int n = 0; n < N; n++) sc[n] = mqt_randf(0.001f, 0.01f), off[n] = (float)(n % 5) - 2;
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, w8);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, 1, sc);
  add(w, "L.weight_offset", MQ_DTYPE_F32, 2, N, 1, off);
  struct mq_model *m = open_model(w);
  mq_lspec s = spec("W8A16", 8, MQ_ACT_FLOAT);
  mq_linear l;
  mq_err err = {0};
  CHECK_MSG(mq_adapt_modelslim(m, "L", &s, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  for (int n = 0; n < N; n++) {
    float want[K];
    for (int k = 0; k < K; k++) want[k] = ((float)w8[n][k] + off[n]) * sc[n];
    expect_row(&l, n, want, "W8A16");
  }
  close_model(m);
}

int main(void) {
  for (int n = 0; n < N; n++) {
    s1[n] = mqt_randf(0.001f, 0.01f);
    for (int g = 0; g < 4; g++) s2[n][g] = mqt_randf(0.5f, 2.0f);
    for (int k = 0; k < K; k++) w8[n][k] = (int8_t)(mqt_rand() >> 56), w4[n][k] = (int8_t)((int)(mqt_rand() % 16) - 8);
  }
  w8[0][0] = 127; /* outside int4 */
  test_w8a8_dynamic(0);
  test_w8a8_dynamic(1);
  test_w8a8_static(0, 0);
  test_w8a8_static(1, 0);
  test_w8a8_static(1, 1);
  test_w4("W4A4_DYNAMIC", MQ_ACT_INT4_TOKEN, 0, 0);
  test_w4("W4A4_DYNAMIC", MQ_ACT_INT4_TOKEN, 1, 0);
  test_w4("W4A8_DYNAMIC", MQ_ACT_INT8_TOKEN, 1, 0);
  test_w4("W4A8_DYNAMIC", MQ_ACT_INT8_TOKEN, 1, 1);
  test_w4("W4A8_DYNAMIC", MQ_ACT_INT8_TOKEN, 0, 0);
  test_mxfp8(0);
  test_mxfp8(1);
  test_w8a16();
  test_errors();
  return mqt_report("modelslim");
}
