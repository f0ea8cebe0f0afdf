/* Session behaviour: prefill == token-by-token decode, truncation, chunking,
 * and errors that leave the session unchanged. Uses tests/data/tiny-qwen3. */
#include <stdlib.h>

#include "mixq.h"
#include "quant/writer.h"
#include "test.h"

static int g_fast;   /* sessions use the fast A16 path */
static int g_kv_type; /* ... and this KV cache type (mq_kv_type) */

static float *eval_all(mq_model *m, const int32_t *ids, int n, int one_by_one, int batch,
                       int threads) {
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_batch = batch;
  sp.n_threads = threads;
  sp.n_ctx = n; /* past the model's 128 positions for the long decode */
  sp.fast_a16 = g_fast;
  sp.kv_type = g_kv_type;
  mq_session *s;
  mq_err err;
  if (mq_session_init(m, &sp, &s, &err) != MQ_OK) return NULL;
  mq_model_info info;
  mq_model_get_info(m, &info);
  float *out = malloc((size_t)n * info.n_vocab * sizeof(float));
  if (one_by_one) {
    for (int i = 0; i < n; i++) {
      CHECK(mq_session_eval(s, ids + i, 1, 0, &err) == MQ_OK);
      int rows;
      const float *lg = mq_session_logits(s, &rows);
      CHECK(rows == 1);
      memcpy(out + (size_t)i * info.n_vocab, lg, info.n_vocab * sizeof(float));
    }
  } else {
    CHECK(mq_session_eval(s, ids, n, 1, &err) == MQ_OK);
    memcpy(out, mq_session_logits(s, NULL), (size_t)n * info.n_vocab * sizeof(float));
  }
  CHECK(mq_session_pos(s) == n);
  mq_session_free(s);
  return out;
}

static double max_diff(const float *a, const float *b, size_t n) {
  double w = 0;
  for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
  return w;
}

/* MoE: decode (one token: the chosen experts' gate/up in one loop) against
 * prefill (tokens grouped by expert), float experts and 4-bit AWQ experts on
 * the fast path (x8 tiles). */
static void check_moe(void) {
  char tmp[] = "/tmp/mixq-session-moe-XXXXXX", dst[600];
  CHECK(mkdtemp(tmp) != NULL);
  snprintf(dst, sizeof dst, "%s/awq", tmp);
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  o.src = MQ_TEST_DATA "/tiny-qwen3-moe";
  o.dst = dst;
  o.group_size = 32;
  mq_err err = {0};
  CHECK(mq_qformat_parse("awq", &o.format) == MQ_OK);
  CHECK_MSG(mq_quantize_checkpoint(&o, &err) == MQ_OK, "%s", err.msg);
  const char *dirs[2] = {MQ_TEST_DATA "/tiny-qwen3-moe", dst};
  for (int i = 0; i < 2; i++) {
    mq_model *m;
    if (mq_model_load(dirs[i], NULL, &m, &err) != MQ_OK) {
      CHECK_MSG(0, "load %s: %s", dirs[i], err.msg);
      continue;
    }
    mq_model_info info;
    mq_model_get_info(m, &info);
    enum { N = 12 };
    int32_t ids[N];
    for (int t = 0; t < N; t++) ids[t] = (int32_t)(mqt_rand() % (uint64_t)info.n_vocab);
    g_fast = i;
    float *pre = eval_all(m, ids, N, 0, 64, 2), *dec = eval_all(m, ids, N, 1, 64, 2);
    double d = max_diff(pre, dec, (size_t)N * info.n_vocab);
    CHECK_MSG(d < 1e-4, "MoE %s: prefill vs decode %g", i ? "awq fast" : "float", d);
    free(pre), free(dec);
    mq_model_free(m);
  }
  g_fast = 0;
  mqt_rm_tree(tmp);
}

/* A q8_0 KV cache needs head_dim % 32 == 0: tiny-llama3's 16 is refused,
 * naming it; an unknown cache type is refused too. */
static void check_kv_refusals(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tiny-llama3", MQ_TEST_DATA);
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(dir, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "load: %s", err.msg);
    return;
  }
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.kv_type = MQ_KV_Q8_0;
  mq_session *s = NULL;
  CHECK(mq_session_init(m, &sp, &s, &err) == MQ_ERR_UNSUPPORTED && !s);
  CHECK_MSG(strstr(err.msg, "head_dim is 16") && strstr(err.msg, "q8_0"), "%s", err.msg);
  sp.kv_type = 3;
  CHECK(mq_session_init(m, &sp, &s, &err) == MQ_ERR_ARG && !s);
  sp.kv_type = MQ_KV_F16;
  CHECK(mq_session_init(m, &sp, &s, &err) == MQ_OK && s);
  mq_session_free(s);
  mq_model_free(m);
}

int main(void) {
  check_moe();
  check_kv_refusals();
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tiny-qwen3", MQ_TEST_DATA);
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(dir, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "load: %s", err.msg);
    return mqt_report("session");
  }
  mq_model_info info;
  mq_model_get_info(m, &info);
  CHECK(!strcmp(info.arch, "qwen3") && info.head_dim == 32 && info.n_vocab == 256);
  enum { N = 40 };
  int32_t ids[N];
  for (int i = 0; i < N; i++) ids[i] = (int32_t)(mqt_rand() % 256);
  size_t sz = (size_t)N * info.n_vocab;
  float *prefill = eval_all(m, ids, N, 0, 64, 1);
  float *decode = eval_all(m, ids, N, 1, 64, 2);
  float *chunked = eval_all(m, ids, N, 0, 7, 2);
  /* Same math in a different order of tokens per matmul: float rounding only. */
  CHECK_MSG(max_diff(prefill, decode, sz) < 1e-5, "prefill vs decode %g", max_diff(prefill, decode, sz));
  CHECK_MSG(max_diff(prefill, chunked, sz) < 1e-5, "prefill vs chunked %g", max_diff(prefill, chunked, sz));

  /* Decode past 256 positions on 3 threads: the attention work is large
   * enough for the pool, and one token's 2 KV heads are too few items for 3
   * threads, so each KV head's query heads are split between items. */
  {
    enum { L = 300 };
    int32_t *lid = malloc(sizeof(int32_t) * L);
    for (int i = 0; i < L; i++) lid[i] = (int32_t)(mqt_rand() % 256);
    float *pre = eval_all(m, lid, L, 0, 64, 1), *dec = eval_all(m, lid, L, 1, 64, 3);
    size_t lz = (size_t)L * info.n_vocab;
    CHECK_MSG(pre && dec && max_diff(pre, dec, lz) < 1e-5, "long decode on 3 threads %g",
              pre && dec ? max_diff(pre, dec, lz) : -1.0);
    free(pre), free(dec), free(lid);
  }

  /* f16 and q8_0 KV caches: prefill equals decode on 3 threads past several
   * 64-position blocks (up to a value rounding to the other neighbour), and
   * the logits stay near the f32 cache's while differing from them (the
   * cache really is f16 / Q8_0). Tolerances: about 10x what was measured. */
  {
    enum { L = 150 };
    static const struct {
      int type;
      double pd, fd;
    } kinds[] = {{MQ_KV_F16, 1e-3, 1e-2}, {MQ_KV_Q8_0, 5e-3, 0.2}};
    int32_t *lid = malloc(sizeof(int32_t) * L);
    for (int i = 0; i < L; i++) lid[i] = (int32_t)(mqt_rand() % 256);
    float *f32 = eval_all(m, lid, L, 0, 64, 1);
    for (int kk = 0; kk < 2; kk++) {
      g_kv_type = kinds[kk].type;
      float *pre = eval_all(m, lid, L, 0, 64, 1), *dec = eval_all(m, lid, L, 1, 64, 3);
      g_kv_type = MQ_KV_F32;
      size_t lz = (size_t)L * info.n_vocab;
      double pd = max_diff(pre, dec, lz), fd = max_diff(pre, f32, lz);
      printf("KV cache type %d: prefill vs decode %g, vs f32 %g\n", kinds[kk].type, pd, fd);
      CHECK_MSG(pd < kinds[kk].pd, "KV type %d: prefill vs decode %g", kinds[kk].type, pd);
      CHECK_MSG(fd > 0 && fd < kinds[kk].fd, "KV type %d vs f32: %g (logits of a few units)",
                kinds[kk].type, fd);
      free(pre), free(dec);
    }
    free(f32), free(lid);
  }

  /* last-row-only logits equal the last row of all logits */
  mq_session *s;
  CHECK(mq_session_init(m, NULL, &s, &err) == MQ_OK);
  CHECK(mq_session_eval(s, ids, N, 0, &err) == MQ_OK);
  int rows;
  const float *lg = mq_session_logits(s, &rows);
  CHECK(rows == 1);
  CHECK(max_diff(lg, prefill + (size_t)(N - 1) * info.n_vocab, info.n_vocab) < 1e-5);

  /* truncate to 10, re-evaluate the rest: same logits as before */
  CHECK(mq_session_truncate(s, 10, &err) == MQ_OK && mq_session_pos(s) == 10);
  CHECK(mq_session_eval(s, ids + 10, N - 10, 1, &err) == MQ_OK);
  lg = mq_session_logits(s, &rows);
  CHECK(rows == N - 10);
  CHECK(max_diff(lg, prefill + (size_t)10 * info.n_vocab, (size_t)(N - 10) * info.n_vocab) < 1e-5);
  CHECK(mq_session_truncate(s, N + 1, &err) == MQ_ERR_RANGE);

  /* bad token: error names it, session unchanged */
  int32_t bad[2] = {5, 256};
  CHECK(mq_session_eval(s, bad, 2, 0, &err) == MQ_ERR_RANGE);
  CHECK(strstr(err.msg, "256") != NULL);
  CHECK(mq_session_pos(s) == N);
  CHECK(mq_session_eval(s, NULL, 0, 0, &err) == MQ_ERR_ARG);
  mq_session_free(s);

  /* context overflow refused up front */
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_ctx = 8;
  CHECK(mq_session_init(m, &sp, &s, &err) == MQ_OK);
  CHECK(mq_session_eval(s, ids, 6, 0, &err) == MQ_OK);
  CHECK(mq_session_eval(s, ids, 3, 0, &err) == MQ_ERR_RANGE);
  CHECK(strstr(err.msg, "do not fit") != NULL);
  CHECK(mq_session_eval(s, ids, 2, 0, &err) == MQ_OK && mq_session_pos(s) == 8);
  mq_session_free(s);

  /* two sessions share one model */
  mq_session *s1 = NULL, *s2 = NULL;
  CHECK(mq_session_init(m, NULL, &s1, &err) == MQ_OK && mq_session_init(m, NULL, &s2, &err) == MQ_OK);
  CHECK(mq_session_eval(s1, ids, 5, 0, &err) == MQ_OK && mq_session_eval(s2, ids, 5, 0, &err) == MQ_OK);
  CHECK(max_diff(mq_session_logits(s1, NULL), mq_session_logits(s2, NULL), info.n_vocab) == 0);
  mq_session_free(s1);
  mq_session_free(s2);

  /* continuous batching: three sessions at different positions take one step
   * together; each gets the logits it would get alone */
  {
    mq_session *a[3], *b[3];
    int lens[3] = {3, 11, 7};
    int32_t next[3] = {17, 200, 5};
    for (int i = 0; i < 3; i++) {
      CHECK(mq_session_init(m, NULL, &a[i], &err) == MQ_OK && mq_session_init(m, NULL, &b[i], &err) == MQ_OK);
      CHECK(mq_session_eval(a[i], ids + i, lens[i], 0, &err) == MQ_OK);
      CHECK(mq_session_eval(b[i], ids + i, lens[i], 0, &err) == MQ_OK);
      CHECK(mq_session_eval(b[i], &next[i], 1, 0, &err) == MQ_OK);
    }
    CHECK_MSG(mq_session_eval_multi(a, next, 3, &err) == MQ_OK, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
      int nr;
      const float *la = mq_session_logits(a[i], &nr);
      CHECK(nr == 1 && mq_session_pos(a[i]) == lens[i] + 1);
      CHECK_MSG(max_diff(la, mq_session_logits(b[i], NULL), info.n_vocab) < 1e-5, "multi step session %d", i);
    }
    /* a second step continues each one */
    int32_t again[3] = {9, 9, 9};
    CHECK(mq_session_eval_multi(a, again, 3, &err) == MQ_OK);
    for (int i = 0; i < 3; i++) CHECK(mq_session_eval(b[i], &again[i], 1, 0, &err) == MQ_OK);
    for (int i = 0; i < 3; i++)
      CHECK(max_diff(mq_session_logits(a[i], NULL), mq_session_logits(b[i], NULL), info.n_vocab) < 1e-5);
    /* a step of sessions with different KV cache types: an f16 and a q8_0
     * one behind an f32 host each get what they get alone */
    for (int kt = MQ_KV_F16; kt <= MQ_KV_Q8_0; kt++) {
      mq_session_params hp;
      mq_session_params_default(&hp);
      hp.kv_type = kt;
      mq_session *h[2] = {NULL, NULL}, *alone = NULL;
      CHECK(mq_session_init(m, NULL, &h[0], &err) == MQ_OK);
      CHECK(mq_session_init(m, &hp, &h[1], &err) == MQ_OK && mq_session_init(m, &hp, &alone, &err) == MQ_OK);
      CHECK(mq_session_eval(h[0], ids, 4, 0, &err) == MQ_OK);
      CHECK(mq_session_eval(h[1], ids + 1, 9, 0, &err) == MQ_OK);
      CHECK(mq_session_eval(alone, ids + 1, 9, 0, &err) == MQ_OK);
      int32_t nx[2] = {3, 77};
      CHECK(mq_session_eval_multi(h, nx, 2, &err) == MQ_OK);
      CHECK(mq_session_eval(alone, &nx[1], 1, 0, &err) == MQ_OK);
      CHECK_MSG(max_diff(mq_session_logits(h[1], NULL), mq_session_logits(alone, NULL), info.n_vocab) < 1e-5,
                "KV type %d session behind an f32 host", kt);
      mq_session_free(h[0]), mq_session_free(h[1]), mq_session_free(alone);
    }
    /* errors leave every session unchanged */
    mq_session *dup[2] = {a[0], a[0]};
    CHECK(mq_session_eval_multi(dup, again, 2, &err) == MQ_ERR_ARG);
    int32_t oov[3] = {1, 999, 1};
    CHECK(mq_session_eval_multi(a, oov, 3, &err) == MQ_ERR_RANGE && mq_session_pos(a[0]) == lens[0] + 2);
    for (int i = 0; i < 3; i++) mq_session_free(a[i]), mq_session_free(b[i]);
  }

  free(prefill);
  free(decode);
  free(chunked);
  mq_model_free(m);
  return mqt_report("session");
}
