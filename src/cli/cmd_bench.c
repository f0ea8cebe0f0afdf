/* mixq bench MODEL [-p 128] [-n 64] [-t N] [-r 3] [--json]
 * Prompt (prefill) and generation (decode) speed, next to the machine's
 * memory read bandwidth measured in the same run: decode reads every weight
 * once per token, so bandwidth / bytes-per-token is its roofline. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  const float *p;
  size_t n;
  float sum;
} bw_arg;

static void *bw_read(void *arg) {
  bw_arg *a = arg;
  float s[16] = {0};
  for (size_t i = 0; i + 16 <= a->n; i += 16)
    for (int j = 0; j < 16; j++) s[j] += a->p[i + j];
  for (int j = 0; j < 16; j++) a->sum += s[j];
  return NULL;
}

/* Best read bandwidth (GB/s) of n_threads threads over a 512 MiB buffer. */
static double measure_bandwidth(int n_threads) {
  size_t n = (512u << 20) / sizeof(float);
  float *buf = malloc(n * sizeof(float));
  if (!buf) return 0;
  for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    pthread_t th[64];
    bw_arg args[64];
    int nt = n_threads > 64 ? 64 : n_threads;
    double t0 = now();
    for (int t = 0; t < nt; t++) {
      args[t] = (bw_arg){buf + n / nt * t, n / nt, 0};
      pthread_create(&th[t], NULL, bw_read, &args[t]);
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    double gbps = n * sizeof(float) / (now() - t0) / 1e9;
    best = gbps > best ? gbps : best;
  }
  free(buf);
  return best;
}

static int argmax(const float *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++) b = v[i] > v[b] ? i : b;
  return b;
}

int mq_cmd_bench(int argc, char **argv) {
  const char *model = NULL;
  int pp = 128, tg = 64, threads = 0, reps = 3, as_json = 0, exact = 0;
  mq_model_params mp;
  mq_model_params_default(&mp);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-p") && i + 1 < argc) pp = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) tg = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "--json")) as_json = 1;
    else if (!strcmp(argv[i], "--exact")) exact = 1;
    else if (!strcmp(argv[i], "--quantization") && i + 1 < argc) mp.quantization = argv[++i];
    else if (argv[i][0] != '-' && !model) model = argv[i];
    else return mq_cli_fail("bench: unexpected argument '%s'", argv[i]);
  }
  if (!model || pp < 1 || tg < 1 || threads < 0 || reps < 1 || reps > 100)
    return mq_cli_fail("usage: mixq bench MODEL [-p 128] [-n 64] [-t N] [-r 3] [--exact] [--json]");
  mq_err err = {0};
  mq_model *m;
  double t0 = now();
  if (mq_model_load(model, &mp, &m, &err) != MQ_OK) return mq_cli_fail("%s", err.msg);
  double load_s = now() - t0;
  mq_model_info info;
  mq_model_get_info(m, &info);
  /* bytes read per generated token: every linear's compute layout */
  double bytes = 0;
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    mq_model_linear(m, i, &li);
    bytes += (double)li.compute_bytes;
  }
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = threads;
  sp.n_ctx = pp + tg + 1;
  sp.fast_a16 = !exact;
  mq_session *s;
  if (mq_session_init(m, &sp, &s, &err) != MQ_OK) {
    mq_model_free(m);
    return mq_cli_fail("%s", err.msg);
  }
  int32_t *toks = malloc((size_t)pp * sizeof(int32_t));
  for (int i = 0; i < pp; i++) toks[i] = (int32_t)((i * 7919 + 13) % info.n_vocab);
  double *pp_tps = calloc((size_t)reps, sizeof(double)), *tg_tps = calloc((size_t)reps, sizeof(double));
  int rc = 0;
  for (int r = 0; r < reps && !rc; r++) {
    mq_session_truncate(s, 0, NULL);
    double a = now();
    if (mq_session_eval(s, toks, pp, 0, &err) != MQ_OK) rc = 1;
    pp_tps[r] = pp / (now() - a);
    mq_session_truncate(s, 0, NULL);
    int32_t tok = toks[0];
    a = now();
    for (int i = 0; i < tg && !rc; i++) {
      if (mq_session_eval(s, &tok, 1, 0, &err) != MQ_OK) rc = 1;
      tok = argmax(mq_session_logits(s, NULL), info.n_vocab);
    }
    tg_tps[r] = tg / (now() - a);
  }
  if (rc) {
    free(toks), free(pp_tps), free(tg_tps);
    mq_session_free(s);
    mq_model_free(m);
    return mq_cli_fail("%s", err.msg);
  }
  int nt = threads > 0 ? threads : 0;
  if (!nt) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nt = n > 0 ? (int)n : 1;
  }
  double bw = measure_bandwidth(nt);
  qsort(pp_tps, (size_t)reps, sizeof(double), cmp_double);
  qsort(tg_tps, (size_t)reps, sizeof(double), cmp_double);
  double pp_med = pp_tps[reps / 2], tg_med = tg_tps[reps / 2];
  double roof = bw > 0 ? bw * 1e9 / bytes : 0;
  if (as_json) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                          "model", model, "method", info.quant_method, "threads", nt, "pp", pp, "tg", tg,
                          "load_s", load_s, "pp_tps", pp_med, "pp_tps_min", pp_tps[0], "tg_tps", tg_med,
                          "tg_tps_min", tg_tps[0], "bytes_per_token", bytes, "bandwidth_gbps", bw,
                          "roofline_tps", roof, "roofline_fraction", roof > 0 ? tg_med / roof : 0);
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(txt);
    free(txt);
    json_decref(j);
  } else {
    printf("model: %s (%s, %s), %d threads, load %.2f s\n", model, info.arch, info.quant_method, nt, load_s);
    printf("prompt     pp%-4d %8.1f tok/s (min %.1f, max %.1f over %d runs)\n", pp, pp_med, pp_tps[0],
           pp_tps[reps - 1], reps);
    printf("generation tg%-4d %8.1f tok/s (min %.1f, max %.1f)\n", tg, tg_med, tg_tps[0], tg_tps[reps - 1]);
    printf("weights read per token %.1f MB; read bandwidth %.1f GB/s -> roofline %.1f tok/s; "
           "decode at %.0f%% of it\n",
           bytes / 1e6, bw, roof, roof > 0 ? 100 * tg_med / roof : 0);
  }
  free(toks), free(pp_tps), free(tg_tps);
  mq_session_free(s);
  mq_model_free(m);
  return 0;
}
