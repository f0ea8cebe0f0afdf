/* Format adapters, bit-exactly: the test packs known integer codes with its
 * own packers (checked against the formats.md §8 vectors), writes the
 * producer's tensors, runs the adapter and compares every dequantized weight
 * with (q - z) * s computed here. Also the bad-tensor errors. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "core/pool.h"
#include "io/st_write.h"
#include "model/model.h"
#include "quant/adapt.h"
#include "test.h"
#include "adapter_ckpt.h"

static struct mq_model *open_model(mq_st_writer *w) { return open_model_as(w, "model.safetensors"); }

/* Compare every dequantized weight of l with want[n*K + k]. */
static void expect_weights(const mq_linear *l, const float *want, const char *what) {
  float *row = malloc((size_t)l->n_in * sizeof(float));
  int bad = 0;
  for (int n = 0; n < l->n_out; n++) {
    mq_linear_dequant_row(l, n, row);
    for (int k = 0; k < l->n_in; k++) {
      float w = want[(size_t)n * l->n_in + k];
      if (fabsf(row[k] - w) > 1e-6f * (1 + fabsf(w))) {
        if (bad++ < 3) fprintf(stderr, "%s: W[%d][%d] = %g, want %g\n", what, n, k, row[k], w);
      }
    }
  }
  CHECK_MSG(bad == 0, "%s: %d weights differ", what, bad);
  free(row);
}

static uint16_t f16(float v) { return mq_f32_to_f16(v); }

/* ---------------- AWQ ---------------- */
static const int k_awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7}; /* nibble i holds column 8c+ORDER[i] */

static uint32_t awq_pack(const int *vals8) {
  uint32_t w = 0;
  for (int i = 0; i < 8; i++) w |= (uint32_t)(vals8[k_awq_order[i]] & 15) << (4 * i);
  return w;
}

static void test_awq(int with_zeros) {
  enum { K = 96, N = 16, GS = 32, G = K / GS }; /* K: a 64-channel band and a partial one */
  int vals[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(awq_pack(vals) == 0x86427531u); /* formats.md §8 T1 */
  static int q[K][N], z[G][N];
  static float s[G][N], want[N * K];
  static uint32_t qw[K][N / 8], qz[G][N / 8];
  static uint16_t sc[G][N];
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) q[k][n] = (int)(mqt_rand() >> 60);
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) {
      z[g][n] = with_zeros ? (int)(mqt_rand() >> 60) : 8;
      sc[g][n] = f16(mqt_randf(-0.05f, 0.05f));
      s[g][n] = mq_f16_to_f32(sc[g][n]);
    }
  for (int k = 0; k < K; k++)
    for (int c = 0; c < N / 8; c++) qw[k][c] = awq_pack(&q[k][8 * c]);
  for (int g = 0; g < G; g++)
    for (int c = 0; c < N / 8; c++) qz[g][c] = awq_pack(&z[g][8 * c]);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) want[n * K + k] = (float)(q[k][n] - z[k / GS][n]) * s[k / GS][n];
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.qweight", MQ_DTYPE_I32, 2, K, N / 8, qw);
  if (with_zeros) add(w, "L.qzeros", MQ_DTYPE_I32, 2, G, N / 8, qz);
  add(w, "L.scales", MQ_DTYPE_F16, 2, G, N, sc);
  struct mq_model *m = open_model(w);
  mq_lspec sp = {.fmt = MQ_FMT_AWQ, .scheme = "W4A16", .bits = 4, .group_size = GS,
                 .sym = !with_zeros, .zero_point = with_zeros};
  mq_linear l;
  mq_err err = {0};
  CHECK_MSG(mq_adapt_awq(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  expect_weights(&l, want, with_zeros ? "awq asym" : "awq zero_point=false");
  /* group size that does not divide K */
  sp.group_size = 40;
  CHECK(mq_adapt_awq(m, "L", &sp, N, K, &l, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "does not divide") != NULL);
  close_model(m);
}

/* ---------------- GPTQ ---------------- */
/* Pack column n of values v[k] (k < K) along K: words [K*b/32][N]. */
static void gptq_pack_rows(const int *v, int K, int N, int n, int b, uint32_t *qw) {
  for (int k = 0; k < K; k++) {
    int p = b == 3 ? (k / 32) * 96 + 3 * (k % 32) : k * b; /* bit position in column n's stream */
    int word = p / 32, sh = p % 32;
    qw[(size_t)word * N + n] |= (uint32_t)v[k] << sh;
    if (sh + b > 32) qw[(size_t)(word + 1) * N + n] |= (uint32_t)v[k] >> (32 - sh);
  }
}

/* Pack row g of zero fields (already encoded) along N: words [G][N*b/32]. */
static void gptq_pack_cols(const unsigned *f, int N, int b, uint32_t *row) {
  for (int n = 0; n < N; n++) {
    int p = n * b, word = p / 32, sh = p % 32;
    row[word] |= (uint32_t)f[n] << sh;
    if (sh + b > 32) row[word + 1] |= (uint32_t)f[n] >> (32 - sh);
  }
}

static void test_gptq(int b, int v1, int act_order) {
  enum {
    K = 192,
    N = 32,
    GS = 16,
    G = K / GS
  }; /* K: 4-bit words in a full band of 16 and a partial one */
  int mask = (1 << b) - 1, col[K];
  static int q[K][N], gidx[K], perm[K];
  static unsigned z[G][N];
  static float s[G][N], want[N * K];
  static uint32_t qw[K * 8 / 32 * 8][N], qz[G][N];
  static uint16_t sc[G][N];
  memset(qw, 0, sizeof qw);
  memset(qz, 0, sizeof qz);
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) q[k][n] = (int)(mqt_rand() >> 40) & mask;
  q[0][0] = mask; /* high bits set: negative int32 words */
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) {
      z[g][n] = (unsigned)(mqt_rand() >> 40) & (unsigned)mask;
      sc[g][n] = f16(mqt_randf(-0.05f, 0.05f));
      s[g][n] = mq_f16_to_f32(sc[g][n]);
    }
  z[0][0] = 0; /* a true zero of 0: v1 stores -1, the word-level borrow case */
  z[1][3] = 0;
  for (int k = 0; k < K; k++) perm[k] = k;
  if (act_order)
    for (int k = K - 1; k > 0; k--) {
      int j = (int)(mqt_rand() % (uint64_t)(k + 1)), t = perm[k];
      perm[k] = perm[j], perm[j] = t;
    }
  /* act-order: group of channel k is invperm[k] / GS, rows stay in channel order */
  for (int i = 0; i < K; i++) gidx[perm[i]] = i / GS;
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < K; k++) col[k] = q[k][n];
    gptq_pack_rows(col, K, N, n, b, &qw[0][0]);
  }
  for (int g = 0; g < G; g++) {
    unsigned f[N];
    if (v1 && b == 3) /* per field z - 1 */
      for (int n = 0; n < N; n++) f[n] = (z[g][n] - 1) & (unsigned)mask;
    else
      for (int n = 0; n < N; n++) f[n] = z[g][n];
    gptq_pack_cols(f, N, b, qz[g]);
    if (v1 && b != 3) { /* word-level: subtract 0x11.. (4-bit) etc. with borrow */
      uint32_t c = b == 2 ? 0x55555555u : b == 4 ? 0x11111111u : 0x01010101u;
      for (int wd = 0; wd < N * b / 32; wd++) qz[g][wd] -= c;
    }
  }
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++)
      want[n * K + k] = (float)(q[k][n] - (int)z[gidx[k]][n]) * s[gidx[k]][n];
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.qweight", MQ_DTYPE_I32, 2, K * b / 32, N, qw);
  static uint32_t qz_rows[G * N]; /* rows of N*b/32 words, contiguous */
  for (int g = 0; g < G; g++) memcpy(qz_rows + (size_t)g * (N * b / 32), qz[g], (size_t)N * b / 32 * 4);
  add(w, "L.qzeros", MQ_DTYPE_I32, 2, G, N * b / 32, qz_rows);
  add(w, "L.scales", MQ_DTYPE_F16, 2, G, N, sc);
  if (act_order) add(w, "L.g_idx", MQ_DTYPE_I32, 1, K, 0, gidx);
  struct mq_model *m = open_model(w);
  mq_lspec sp = {.fmt = MQ_FMT_GPTQ, .scheme = "W4A16", .bits = b, .group_size = GS, .sym = 0,
                 .gptq_v1 = v1, .g_idx = act_order};
  mq_linear l;
  mq_err err = {0};
  char what[64];
  snprintf(what, sizeof what, "gptq %d-bit %s%s", b, v1 ? "v1" : "v2", act_order ? " act-order" : "");
  CHECK_MSG(mq_adapt_gptq(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s: %s", what, err.msg);
  CHECK((l.q.perm != NULL) == act_order);
  expect_weights(&l, want, what);
  /* the forward pass agrees with the dequantized weights (perm applied to x) */
  float x[K], y[N], gather[K + G], scratch[MQ_SCRATCH_ROWS * K], *sp_[1] = {scratch};
  for (int k = 0; k < K; k++) x[k] = mqt_randf(-1, 1);
  mq_exec ex = {NULL, mq_kern(), sp_, gather};
  mq_linear_forward(&l, x, 1, y, &ex);
  double worst = 0;
  for (int n = 0; n < N; n++) {
    double acc = 0;
    for (int k = 0; k < K; k++) acc += (double)want[n * K + k] * x[k];
    worst = fmax(worst, fabs(acc - y[n]));
  }
  CHECK_MSG(worst < 1e-4, "%s forward: max error %g", what, worst);
  /* asymmetric without qzeros is an error naming the tensor */
  close_model(m);
  w = mq_st_writer_new();
  add(w, "L.qweight", MQ_DTYPE_I32, 2, K * b / 32, N, qw);
  add(w, "L.scales", MQ_DTYPE_F16, 2, G, N, sc);
  m = open_model(w);
  CHECK(mq_adapt_gptq(m, "L", &sp, N, K, &l, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "L.qzeros") && strstr(err.msg, "missing"));
  close_model(m);
}

static void test_gptq_vectors(void) {
  /* formats.md §8: T2 (4-bit rows), T5 (3-bit stream), T3/T4 sym constants */
  uint32_t w[3 * 1] = {0};
  int v[32];
  for (int i = 0; i < 8; i++) v[i] = i + 1;
  gptq_pack_rows(v, 8, 1, 0, 4, w);
  CHECK(w[0] == 0x87654321u);
  memset(w, 0, sizeof w);
  for (int j = 0; j < 32; j++) v[j] = j % 8;
  gptq_pack_rows(v, 32, 1, 0, 3, w);
  CHECK(w[0] == 0x88fac688u && w[1] == 0xc688fac6u && w[2] == 0xfac688fau);
  /* T6: true zeros [0,5,8,15,1,2,3,4]: v2 word, v1 word-level */
  unsigned z[8] = {0, 5, 8, 15, 1, 2, 3, 4};
  uint32_t row[1] = {0};
  gptq_pack_cols(z, 8, 4, row);
  CHECK(row[0] == 0x4321f850u);
  CHECK(row[0] - 0x11111111u == 0x3210e73fu);
}

/* ---------------- compressed-tensors ---------------- */
static void test_ct_packed(int b, int dense, int asym, int act_order) {
  enum { K = 64, N = 32, GS = 32, G = K / GS };
  int off = 1 << (b - 1);
  static int q[N][K], zp[G][N], gidx[K];
  static float s[N][G], want[N * K];
  static uint16_t sc[N][G];
  static uint32_t wp[N][K], zpw[N][G];
  memset(wp, 0, sizeof wp);
  memset(zpw, 0, sizeof zpw);
  int per_word = 32 / b;
  int kw = dense ? (K * b + 31) / 32 : (K + per_word - 1) / per_word;
  int zrows = dense ? (N * b + 31) / 32 : (N + per_word - 1) / per_word;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) q[n][k] = (int)((mqt_rand() >> 40) % (uint64_t)(2 * off)) - off;
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) zp[g][n] = asym ? (int)((mqt_rand() >> 40) % (uint64_t)(2 * off)) - off : 0;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < G; g++) sc[n][g] = mq_f32_to_bf16(mqt_randf(-0.05f, 0.05f)), s[n][g] = mq_bf16_to_f32(sc[n][g]);
  for (int k = 0; k < K; k++) gidx[k] = act_order ? (int)(mqt_rand() % G) : k / GS;
  if (act_order) /* balanced groups: shuffle a balanced assignment */
    for (int k = 0; k < K; k++) gidx[k] = k % G;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      unsigned u = (unsigned)(q[n][k] + off);
      int p = dense ? k * b : (k / per_word) * 32 + (k % per_word) * b, wd = p / 32, sh = p % 32;
      wp[n][wd] |= u << sh;
      if (sh + b > 32) wp[n][wd + 1] |= u >> (32 - sh);
    }
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) {
      unsigned u = (unsigned)(zp[g][n] + off);
      int p = dense ? n * b : (n / per_word) * 32 + (n % per_word) * b, wd = p / 32, sh = p % 32;
      zpw[wd][g] |= u << sh;
      if (sh + b > 32) zpw[wd + 1][g] |= u >> (32 - sh);
    }
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) want[n * K + k] = (float)(q[n][k] - zp[gidx[k]][n]) * s[n][gidx[k]];
  /* repack rows [N][kw] contiguously */
  static uint32_t rows[N * K];
  for (int n = 0; n < N; n++) memcpy(rows + (size_t)n * kw, wp[n], (size_t)kw * 4);
  static uint32_t zrows_buf[N * G];
  for (int r = 0; r < zrows; r++) memcpy(zrows_buf + (size_t)r * G, zpw[r], (size_t)G * 4);
  int64_t shape[2] = {N, K};
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.weight_packed", MQ_DTYPE_I32, 2, N, kw, rows);
  add(w, "L.weight_shape", MQ_DTYPE_I64, 1, 2, 0, shape);
  add(w, "L.weight_scale", MQ_DTYPE_BF16, 2, N, G, sc);
  if (asym) add(w, "L.weight_zero_point", MQ_DTYPE_I32, 2, zrows, G, zrows_buf);
  if (act_order) add(w, "L.weight_g_idx", MQ_DTYPE_I32, 1, K, 0, gidx);
  struct mq_model *m = open_model(w);
  mq_lspec sp = {.fmt = MQ_FMT_CT_PACKED, .scheme = "W4A16", .bits = b, .group_size = GS,
                 .sym = !asym, .g_idx = act_order};
  mq_linear l;
  mq_err err = {0};
  char what[80];
  snprintf(what, sizeof what, "ct pack %d-bit %s%s%s", b, dense ? "dense" : "aligned",
           asym ? " asym" : "", act_order ? " actorder" : "");
  CHECK_MSG(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s: %s", what, err.msg);
  expect_weights(&l, want, what);
  if ((b == 4 || b == 8) && !act_order) /* used in place, inside the mapping */
    CHECK(l.q.data == mq_ckpt_find(&m->ckpt, "L.weight_packed")->data);
  close_model(m);
}

static void test_ct_int(void) {
  enum { K = 32, N = 8, G = 1 };
  static int8_t wq[N][K];
  static float scf[N], want[N * K];
  for (int n = 0; n < N; n++) {
    scf[n] = mqt_randf(0.001f, 0.02f);
    for (int k = 0; k < K; k++) wq[n][k] = (int8_t)(mqt_rand() >> 56), want[n * K + k] = wq[n][k] * scf[n];
  }
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, wq);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, G, scf);
  struct mq_model *m = open_model(w);
  mq_lspec sp = {.fmt = MQ_FMT_CT_INT, .scheme = "W8A16", .bits = 8, .group_size = -1, .sym = 1};
  mq_linear l;
  mq_err err = {0};
  CHECK_MSG(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  expect_weights(&l, want, "ct int-quantized");
  close_model(m);
  /* the same scales as fp32 bit patterns widened to int64 (W4A8 MoE
   * checkpoints converted for Ascend), and one with garbage high bits */
  int64_t sc64[N];
  for (int n = 0; n < N; n++) sc64[n] = (int64_t)(int32_t)mq_f32_to_bits(scf[n]);
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, wq);
  add(w, "L.weight_scale", MQ_DTYPE_I64, 2, N, G, sc64);
  m = open_model(w);
  CHECK_MSG(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  expect_weights(&l, want, "ct int-quantized, int64 scales");
  close_model(m);
  sc64[3] |= (int64_t)0x77 << 40;
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, wq);
  add(w, "L.weight_scale", MQ_DTYPE_I64, 2, N, G, sc64);
  m = open_model(w);
  CHECK(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_ERR_FORMAT && strstr(err.msg, "garbage"));
  close_model(m);
  w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N, K, wq);
  add(w, "L.weight_scale", MQ_DTYPE_F32, 2, N, G, scf);
  m = open_model(w);
  /* wrong scale shape */
  sp.group_size = 16;
  CHECK(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "weight_scale") && strstr(err.msg, "expected [8, 2]"));
  close_model(m);
}

/* compressed-tensors W4A8 with activation clip (cann-recipes-infer
 * checkpoints as SGLang's NPU path reads them): int4 packed two per byte
 * along N, int64 fp32-bit scales, and a bias that is the A8W4 kernel's
 * 8 * s * sum(W) term written in bf16. The result must be the NPU's algebra
 * y = s_x * (s * sum_k (x_q - 8) W + b), computed here in double. */
static void test_ct_w4a8_clip(void) {
  enum { N = 6, K = 64 };
  static int8_t wq[N][K];
  static uint8_t packed[N / 2][K];
  static float scf[N], bias[N], x[K], y[N];
  int64_t sc64[N];
  for (int n = 0; n < N; n++) {
    scf[n] = mqt_randf(0.001f, 0.02f);
    sc64[n] = (int64_t)(uint32_t)mq_f32_to_bits(scf[n]); /* zero-extended, as the converter */
    double sum = 0;
    for (int k = 0; k < K; k++) wq[n][k] = (int8_t)((int)(mqt_rand() % 15) - 7), sum += wq[n][k];
    bias[n] = mq_bf16_to_f32(mq_f32_to_bf16((float)(8.0 * scf[n] * sum))); /* converter's bf16 */
  }
  for (int j = 0; j < N / 2; j++)
    for (int k = 0; k < K; k++)
      packed[j][k] = (uint8_t)((wq[2 * j][k] & 15) | (wq[2 * j + 1][k] & 15) << 4);
  for (int k = 0; k < K; k++) x[k] = mqt_randf(-2, 2);
  mq_lspec sp = {.fmt = MQ_FMT_CT_INT, .scheme = "W4A8", .bits = 4, .group_size = -1, .sym = 1,
                 .act = MQ_ACT_INT8_TOKEN, .act_clip = 1};
  for (int wrong = 0; wrong < 2; wrong++) {
    float b_used[N];
    for (int n = 0; n < N; n++) b_used[n] = wrong ? -bias[n] + 0.5f : bias[n];
    mq_st_writer *w = mq_st_writer_new();
    add(w, "L.weight", MQ_DTYPE_I8, 2, N / 2, K, packed);
    add(w, "L.weight_scale", MQ_DTYPE_I64, 2, N, 1, sc64);
    add(w, "L.bias", MQ_DTYPE_F32, 1, N, 0, b_used);
    struct mq_model *m = open_model(w);
    mq_linear l;
    mq_err err = {0};
    CHECK_MSG(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s", err.msg);
    CHECK(l.bias == NULL && l.qcorr != NULL && l.act == MQ_ACT_INT8_TOKEN);
    /* the bias is the kernel's term, so a wrong one is reported, and applied */
    CHECK(mq_model_n_warnings(m) == wrong);
    if (wrong) CHECK(strstr(mq_model_warning(m, 0), "clip kernel") != NULL);
    mq_pool *pool = mq_pool_init(1);
    float scratch_row[MQ_SCRATCH_ROWS * K], *scratch[1] = {scratch_row};
    static float gather[4096];
    CHECK(mq_linear_gather_floats(&l) <= 4096);
    mq_exec ex = {pool, mq_kern(), scratch, gather, 0};
    mq_linear_forward(&l, x, 1, y, &ex);
    double amax = 0;
    for (int k = 0; k < K; k++) amax = fmax(amax, fabs(x[k]));
    float pt = (float)amax / 127.0f, r = 127.0f / (float)amax;
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += (double)(nearbyintf(x[k] * r) - 8) * wq[n][k];
      double want = pt * (scf[n] * acc + b_used[n]);
      CHECK_NEAR(y[n], want, 1e-4 * (fabs(want) + 1));
    }
    mq_pool_free(pool);
    close_model(m);
  }
  /* the same without the clip flag: an 8 * s * sum(W) bias would be a real
   * linear bias, so the packed weights alone must give s_x * s * sum(x_q W) */
  mq_st_writer *w = mq_st_writer_new();
  add(w, "L.weight", MQ_DTYPE_I8, 2, N / 2, K, packed);
  add(w, "L.weight_scale", MQ_DTYPE_I64, 2, N, 1, sc64);
  struct mq_model *m = open_model(w);
  mq_linear l;
  mq_err err = {0};
  sp.act_clip = 0;
  CHECK_MSG(mq_adapt_ct(m, "L", &sp, N, K, &l, &err) == MQ_OK, "%s", err.msg);
  CHECK(l.qcorr == NULL && l.bias == NULL);
  float want[N * K];
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) want[n * K + k] = wq[n][k] * scf[n];
  expect_weights(&l, want, "ct w4a8 packed along N");
  close_model(m);
}

int main(void) {
  test_ct_w4a8_clip();
  test_awq(1);
  test_awq(0);
  test_gptq_vectors();
  for (int b = 2; b <= 8; b *= 2) {
    test_gptq(b, 1, 0);
    test_gptq(b, 0, 0);
  }
  test_gptq(3, 1, 0);
  test_gptq(3, 0, 0);
  test_gptq(4, 1, 1);
  test_gptq(3, 0, 1);
  /* T7: CT 4-bit [-8..-1] packs to 0x76543210 (checked via the packer above) */
  for (int b = 2; b <= 8; b++) {
    if (b == 5 || b == 6 || b == 7) continue;
    test_ct_packed(b, 0, 0, 0);
    test_ct_packed(b, 1, 1, 0);
  }
  test_ct_packed(4, 0, 1, 1);
  test_ct_packed(3, 1, 0, 1);
  test_ct_int();
  return mqt_report("quant_adapters");
}
