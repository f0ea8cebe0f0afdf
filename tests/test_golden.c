/* Logits against independent references:
 *  - stories260K (real trained Llama) vs llama.cpp's F32 logits and greedy ids
 *    (../shared/fixtures; skipped when absent). Tolerance 1e-4 absolute: the
 *    fixture's own float64 reference agrees with llama.cpp to 7.8e-6.
 *  - tests/data/tiny-* (llama3 rope, qwen2 bias + BF16, qwen3 q/k norm + F16,
 *    qwen3 yarn) and tests/data/tiny-*moe*, tiny-mixtral vs float64 PyTorch
 *    forwards (tools/make_dense_golden.py, tools/make_moe_golden.py).
 *    Tolerance 2e-5 absolute on logits of magnitude ~4 (a wrong rms_norm_eps
 *    moves them by ~1e-4). */
#include <jansson.h>

#include "mixq.h"
#include "test.h"

static int load_ids(json_t *arr, int32_t *ids, int cap) {
  int n = 0;
  for (size_t i = 0; i < json_array_size(arr) && n < cap; i++)
    ids[n++] = (int32_t)json_integer_value(json_array_get(arr, i));
  return n;
}

/* Evaluate ids on a fresh session and compare every row with ref. */
static void compare_logits(const char *model_dir, const int32_t *ids, int n, const float *ref,
                           double tol, int n_threads, int n_batch, const char *label) {
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(model_dir, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "%s: load failed: %s", label, err.msg);
    return;
  }
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = n_threads;
  sp.n_batch = n_batch;
  mq_session *s;
  CHECK(mq_session_init(m, &sp, &s, &err) == MQ_OK);
  CHECK(mq_session_eval(s, ids, n, 1, &err) == MQ_OK);
  int rows;
  const float *lg = mq_session_logits(s, &rows);
  mq_model_info info;
  mq_model_get_info(m, &info);
  double worst = 0;
  for (size_t i = 0; i < (size_t)rows * info.n_vocab; i++) {
    double d = fabs((double)lg[i] - ref[i]);
    worst = d > worst ? d : worst;
  }
  CHECK(rows == n);
  CHECK_MSG(worst <= tol, "%s (threads %d, batch %d): max |diff| %.3g > %.3g", label, n_threads,
            n_batch, worst, tol);
  printf("%-28s threads %d batch %2d: max |logit diff| %.3g\n", label, n_threads, n_batch, worst);
  mq_session_free(s);
  mq_model_free(m);
}

/* The first 3 positions within 1e-4, all within 0.5, and the same argmax
 * at >= 90% of them. */
static void compare_loose(const char *model_dir, const int32_t *ids, int n, const float *ref,
                          const char *label) {
  mq_err err = {0};
  mq_model *m;
  mq_session *s;
  if (mq_model_load(model_dir, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "%s: %s", label, err.msg);
    return;
  }
  CHECK(mq_session_init(m, NULL, &s, &err) == MQ_OK);
  CHECK(mq_session_eval(s, ids, n, 1, &err) == MQ_OK);
  const float *lg = mq_session_logits(s, NULL);
  mq_model_info info;
  mq_model_get_info(m, &info);
  double worst = 0;
  int same = 0, V = info.n_vocab, exact = 0;
  for (int t = 0; t < n; t++) {
    int a = 0, b = 0;
    double row = 0;
    for (int v = 0; v < V; v++) {
      row = fmax(row, fabs((double)lg[t * V + v] - ref[t * V + v]));
      a = lg[t * V + v] > lg[t * V + a] ? v : a;
      b = ref[t * V + v] > ref[t * V + b] ? v : b;
    }
    same += a == b;
    exact += row <= 1e-4;
    if (t < 3) CHECK_MSG(row <= 1e-4, "%s: position %d differs by %g", label, t, row);
    worst = fmax(worst, row);
  }
  CHECK_MSG(worst < 0.5 && same * 10 >= n * 9,
            "%s: max |diff| %.3g, argmax agrees at %d/%d, %d positions within 1e-4", label, worst,
            same, n, exact);
  printf("%-28s max |logit diff| %.3g; %d/%d positions within 1e-4; argmax %d/%d\n", label, worst,
         exact, n, same, n);
  mq_session_free(s);
  mq_model_free(m);
}

static void stories_logits(void) {
  char p[1024], dir[1024];
  if (!mqt_shared("fixtures/stories260K/hf/config.json", p, sizeof p)) {
    printf("SKIP stories260K: ../shared/fixtures not found (set MQ_SHARED_DIR)\n");
    return;
  }
  snprintf(dir, sizeof dir, "%s", p);
  *strrchr(dir, '/') = 0;
  for (int k = 1; k <= 3; k++) {
    char js[1024], bin[1024], rel[128];
    snprintf(rel, sizeof rel, "fixtures/stories260K/golden/logits_f32_seq%d.json", k);
    mqt_shared(rel, js, sizeof js);
    snprintf(rel, sizeof rel, "fixtures/stories260K/golden/logits_f32_seq%d.f32", k);
    mqt_shared(rel, bin, sizeof bin);
    json_t *j = json_load_file(js, 0, NULL);
    int32_t ids[512];
    int n = load_ids(json_object_get(j, "token_ids"), ids, 512);
    float *ref = mqt_read(bin, NULL);
    char label[64];
    snprintf(label, sizeof label, "stories260K seq%d", k);
    compare_logits(dir, ids, n, ref, 1e-4, 1, 64, label);
    compare_logits(dir, ids, n, ref, 1e-4, 2, 5, label); /* chunked prefill, 2 threads */
    free(ref);
    json_decref(j);
  }
}

/* The GGUF files (F32, Q8_0, Q4_0 with an F16 ffn_down) vs llama.cpp's
 * logits of the same files. Computing each type natively with activations
 * quantized as llama.cpp's x86 build does (and Q4_0/Q8_0 dot products summed
 * in its AVX2 order), the first positions agree bit for bit. Later ones
 * depart by up to ~0.25: a one-ulp difference anywhere upstream can flip an
 * activation's int8 rounding, and the change travels through the KV cache
 * (the F32 file agrees everywhere; see docs/gguf.md). Bounds: the first 3
 * positions within 1e-4 (measured 0), all within 0.5, the same argmax at
 * >= 90% of positions (measured 100%). */
static void stories_gguf_logits(void) {
  static const char *k_types[3] = {"f32", "Q8_0", "Q4_0"};
  for (int ti = 0; ti < 3; ti++) {
    char model[1024], rel[160];
    snprintf(rel, sizeof rel, "fixtures/stories260K/gguf/stories260K-%s.gguf", k_types[ti]);
    if (!mqt_shared(rel, model, sizeof model)) {
      printf("SKIP stories260K GGUF: ../shared/fixtures not found\n");
      return;
    }
    for (int k = 1; k <= 3; k++) {
      char js[1024], bin[1024];
      snprintf(rel, sizeof rel, "fixtures/stories260K/golden/logits_%s_seq%d.json", k_types[ti], k);
      mqt_shared(rel, js, sizeof js);
      snprintf(rel, sizeof rel, "fixtures/stories260K/golden/logits_%s_seq%d.f32", k_types[ti], k);
      mqt_shared(rel, bin, sizeof bin);
      json_t *j = json_load_file(js, 0, NULL);
      int32_t ids[512];
      int n = load_ids(json_object_get(j, "token_ids"), ids, 512);
      float *ref = mqt_read(bin, NULL);
      char label[64];
      snprintf(label, sizeof label, "gguf %s seq%d", k_types[ti], k);
      if (ti == 0) compare_logits(model, ids, n, ref, 1e-4, 2, 64, label);
      else compare_loose(model, ids, n, ref, label);
      free(ref);
      json_decref(j);
    }
  }
}

/* Greedy decoding one token at a time equals llama.cpp's 64 ids. */
static void greedy(const char *model_rel, const char *golden_rel) {
  char p[1024], dir[1024], js[1024];
  if (!mqt_shared(model_rel, p, sizeof p) || !mqt_shared(golden_rel, js, sizeof js)) return;
  snprintf(dir, sizeof dir, "%s", p);
  if (strstr(model_rel, "config.json")) *strrchr(dir, '/') = 0;
  json_t *j = json_load_file(js, 0, NULL);
  int32_t prompt[64], want[128];
  int np = load_ids(json_object_get(j, "prompt_ids"), prompt, 64);
  int ng = load_ids(json_object_get(j, "generated_ids"), want, 128);
  mq_err err = {0};
  mq_model *m;
  mq_session *s;
  CHECK(mq_model_load(dir, NULL, &m, &err) == MQ_OK);
  CHECK(mq_session_init(m, NULL, &s, &err) == MQ_OK);
  CHECK(mq_session_eval(s, prompt, np, 0, &err) == MQ_OK);
  int same = 0;
  for (int i = 0; i < ng; i++) {
    int rows;
    const float *lg = mq_session_logits(s, &rows);
    int best = 0;
    for (int v = 1; v < 512; v++) best = lg[v] > lg[best] ? v : best;
    same += best == want[i];
    if (best != want[i]) break;
    int32_t tok = best;
    CHECK(mq_session_eval(s, &tok, 1, 0, &err) == MQ_OK);
  }
  CHECK_MSG(same == ng, "%s greedy ids: first %d of %d agree with llama.cpp", model_rel, same, ng);
  printf("%s greedy: %d/%d ids equal llama.cpp's\n", model_rel, same, ng);
  mq_session_free(s);
  mq_model_free(m);
  json_decref(j);
}

/* model: a file or folder under tests/data; golden files in folder `name` */
static void fixture_model(const char *name, const char *model) {
  char dir[1024], js[1100], bin[1100], path[1100];
  snprintf(dir, sizeof dir, "%s/%s", MQ_TEST_DATA, name);
  snprintf(path, sizeof path, "%s/%s", MQ_TEST_DATA, model);
  snprintf(js, sizeof js, "%s/golden.json", dir);
  snprintf(bin, sizeof bin, "%s/logits.f32", dir);
  json_t *j = json_load_file(js, 0, NULL);
  CHECK_MSG(j != NULL, "%s missing", js);
  if (!j) return;
  int32_t ids[256];
  int n = load_ids(json_object_get(j, "tokens"), ids, 256);
  float *ref = mqt_read(bin, NULL);
  compare_logits(path, ids, n, ref, 2e-5, 1, 64, model);
  compare_logits(path, ids, n, ref, 2e-5, 2, 3, model);
  free(ref);
  json_decref(j);
}

static void dense_fixture(const char *name) { fixture_model(name, name); }

int main(void) {
  stories_logits();
  stories_gguf_logits();
  greedy("fixtures/stories260K/hf/config.json", "fixtures/stories260K/golden/greedy_f32.json");
  greedy("fixtures/stories260K/gguf/stories260K-f32.gguf", "fixtures/stories260K/golden/greedy_f32.json");
  greedy("fixtures/stories260K/gguf/stories260K-Q8_0.gguf", "fixtures/stories260K/golden/greedy_Q8_0.json");
  greedy("fixtures/stories260K/gguf/stories260K-Q4_0.gguf", "fixtures/stories260K/golden/greedy_Q4_0.json");
  dense_fixture("tiny-llama3");
  dense_fixture("tiny-qwen2");
  dense_fixture("tiny-qwen3");
  dense_fixture("tiny-qwen3-yarn");
  /* MoE (tools/make_moe_golden.py): qwen3_moe with a dense layer 0, mixtral,
   * qwen2_moe with a shared expert, and a top-1 model whose router sends
   * every token to expert 2 (three experts get no token). */
  dense_fixture("tiny-qwen3-moe");
  dense_fixture("tiny-mixtral");
  dense_fixture("tiny-qwen2-moe");
  dense_fixture("tiny-qwen3-moe-top1");
  /* the same weights as GGUF files (tools/hf_to_gguf_tiny.py): qwen3 and
   * qwen3moe metadata, names and stacked experts */
  fixture_model("tiny-qwen3", "tiny-qwen3/tiny-qwen3-f32.gguf");
  fixture_model("tiny-qwen3-moe", "tiny-qwen3-moe/tiny-qwen3-moe-f32.gguf");
  return mqt_report("golden");
}
