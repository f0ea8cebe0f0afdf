/* mixq bench MODEL [-p 128] [-n 64] [-d 0] [-t N] [-r 3] [--exact] [--cache-type f32|f16|q8_0] [--json]
 * mixq bench --synthetic SHAPE [--format F] [...]
 * Prompt (prefill) and generation (decode) speed, next to the machine's
 * memory read bandwidth measured in the same run: decode reads every weight
 * once per token, so bandwidth / bytes-per-token is its roofline.
 * --synthetic builds a random model of a make-tiny shape in a temporary
 * folder (make-tiny and quantize, in-process), benches it and removes it. */
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/make_tiny.h"
#include "core/bigalloc.h"
#include "core/err.h"
#include "core/file.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "kernels/prefetch.h"
#include "quant/gguf_convert.h"
#include "quant/writer.h"

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
  const uint64_t *p;
  size_t n; /* words */
  uint64_t sum;
} bw_arg;

/* Three streams per thread, read in lockstep and folded with XOR (one cheap
 * vector op per load, so the loop measures memory, not arithmetic), each
 * prefetched as far ahead as the kernels prefetch weights: one
 * hardware-prefetched stream alone leaves bandwidth unused, so the roofline
 * is the best the machine gives. Wide loads where the CPU has them (gcc: one
 * clone per target, chosen at load): the baseline's 16-byte loads left the
 * loop short of the bandwidth the vector kernels see. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MQ_SCALAR_ONLY)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void *
bw_read(void *arg) {
  bw_arg *a = arg;
  size_t third = a->n / 3 / 8 * 8;
  const uint64_t *p0 = a->p, *p1 = a->p + third, *p2 = a->p + 2 * third;
  uint64_t s[8] = {0};
  for (size_t i = 0; i + 8 <= third; i += 8) { /* one 64-byte line of each stream */
    __builtin_prefetch((const char *)(p0 + i) + MQ_PREFETCH_AHEAD, 0, 3);
    __builtin_prefetch((const char *)(p1 + i) + MQ_PREFETCH_AHEAD, 0, 3);
    __builtin_prefetch((const char *)(p2 + i) + MQ_PREFETCH_AHEAD, 0, 3);
    for (int j = 0; j < 8; j++) s[j] ^= p0[i + j] ^ p1[i + j] ^ p2[i + j];
  }
  for (int j = 0; j < 8; j++) a->sum ^= s[j];
  a->n = 3 * third; /* words actually read, for the rate */
  return NULL;
}

/* The 512 MiB buffer the bandwidth is read from (written once: its page
 * faults and its first write stay out of the readings). */
#define BW_WORDS ((512u << 20) / sizeof(uint64_t))
static volatile uint64_t g_bw_sink; /* the folded reads: they must not be optimized away */

static uint64_t *bw_buffer(void) {
  uint64_t *buf = mq_big_alloc(BW_WORDS * sizeof(uint64_t)); /* pages as the weights' */
  if (buf)
    for (size_t i = 0; i < BW_WORDS; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
  return buf;
}

/* Best read bandwidth (GB/s) of n_threads threads over buf in `passes` passes. */
static double measure_bandwidth(const uint64_t *buf, int n_threads, int passes) {
  size_t n = BW_WORDS;
  if (!buf) return 0;
  double best = 0;
  uint64_t fold = 0;
  for (int rep = 0; rep < passes; rep++) {
    pthread_t th[64];
    bw_arg args[64];
    int nt = n_threads > 64 ? 64 : n_threads;
    double t0 = now();
    for (int t = 0; t < nt; t++) {
      args[t] = (bw_arg){buf + n / nt * t, n / nt, 0};
      pthread_create(&th[t], NULL, bw_read, &args[t]);
    }
    size_t read = 0;
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL), read += args[t].n, fold ^= args[t].sum;
    double gbps = read * sizeof(uint64_t) / (now() - t0) / 1e9;
    best = gbps > best ? gbps : best;
  }
  g_bw_sink = fold;
  return best;
}

/* Resident set of this process in MB (Linux /proc; 0 where unknown). */
static double resident_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb * 1024 / 1e6;
}

static int argmax(const float *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++) b = v[i] > v[b] ? i : b;
  return b;
}

/* ---- --synthetic: a temporary random model ---- */

/* Build shape in format fmt under a new temporary folder (*tmp, to remove);
 * the model's path into model. */
static int build_synthetic(const char *shape, const char *fmt, int threads, char *tmp, char *model,
                           mq_err *err) {
  const char *base = getenv("TMPDIR");
  snprintf(tmp, PATH_MAX, "%s/mixq-synthetic-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp)) {
    *tmp = 0;
    return mq_errf(err, MQ_ERR_IO, "cannot create a temporary folder under %s",
                   base ? base : "/tmp");
  }
  int is_float = !strcmp(fmt, "f32") || !strcmp(fmt, "f16") || !strcmp(fmt, "bf16");
  mq_gguf_ftype gft;
  mq_qformat qf;
  int is_gguf = !mq_gguf_ftype_parse(fmt, &gft);
  if (!is_float && !is_gguf && mq_qformat_parse(fmt, &qf))
    return mq_errf(err, MQ_ERR_ARG, "--format %s: not a format of mixq quantize, nor f32/f16/bf16",
                   fmt);
  char fdir[PATH_MAX];
  if (snprintf(fdir, sizeof fdir, "%s/float", tmp) >= (int)sizeof fdir ||
      snprintf(model, PATH_MAX, "%s/%s", tmp,
               is_float  ? "float"
               : is_gguf ? "model.gguf"
                         : "model") >= PATH_MAX)
    return mq_errf(err, MQ_ERR_ARG, "%s: path too long", tmp);
  mq_tiny_opts to = {.dir = fdir, .shape = shape, .dtype = is_float ? fmt : "bf16", .seed = 1};
  int rc = mq_make_tiny(&to, err);
  if (rc || is_float) return rc;
  if (is_gguf) {
    mq_gguf_convert_opts go = {.src = fdir, .dst = model, .ftype = gft, .n_threads = threads};
    rc = mq_gguf_convert(&go, err);
  } else {
    mq_quantize_opts qo;
    mq_quantize_opts_default(&qo);
    qo.src = fdir, qo.dst = model, qo.format = qf;
    rc = mq_quantize_checkpoint(&qo, err);
  }
  mq_rm_tree(fdir); /* the float source is not needed any more */
  return rc;
}

/* What to run: pp prompt tokens, tg generated after depth tokens of
 * context, reps times, on threads (0: all CPUs). */
typedef struct {
  int pp, tg, depth, threads, reps, as_json, exact;
  int kv_type; /* --cache-type */
} bench_opts;

static int run_bench(const char *model, const mq_model_params *mpp, const bench_opts *o,
                     const char *synthetic, const char *format, double model_bytes);

int mq_cmd_bench(int argc, char **argv) {
  const char *model = NULL, *synthetic = NULL, *format = NULL;
  bench_opts o = {.pp = 128, .tg = 64, .reps = 3};
  mq_model_params mp;
  mq_model_params_default(&mp);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--synthetic") && i + 1 < argc) synthetic = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
    else if (!strcmp(argv[i], "-p") && i + 1 < argc)
      o.pp = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-n") && i + 1 < argc)
      o.tg = mq_cli_int(argv[++i]);
    else if ((!strcmp(argv[i], "-d") || !strcmp(argv[i], "--depth")) && i + 1 < argc)
      o.depth = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-t") && i + 1 < argc)
      o.threads = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "-r") && i + 1 < argc)
      o.reps = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      o.as_json = 1;
    else if (!strcmp(argv[i], "--exact"))
      o.exact = 1;
    else if (!strcmp(argv[i], "--cache-type") && i + 1 < argc) {
      if ((o.kv_type = mq_cli_cache_type(argv[++i])) < 0)
        return mq_cli_fail("bench: --cache-type takes f32, f16 or q8_0, not '%s'", argv[i]);
    }
    else if (!strcmp(argv[i], "--quantization") && i + 1 < argc) mp.quantization = argv[++i];
    else if (argv[i][0] != '-' && !model)
      model = argv[i];
    else
      return mq_cli_fail("bench: unexpected argument '%s'", argv[i]);
  }
  if (!model == !synthetic || (format && !synthetic) || o.pp < 1 || o.tg < 1 || o.depth < 0 ||
      o.depth > (1 << 20) || o.threads < 0 || o.reps < 1 || o.reps > 100)
    return mq_cli_fail("usage: mixq bench MODEL [-p 128] [-n 64] [-d 0] [-t N] [-r 3] [--exact] "
                       "[--cache-type f32|f16|q8_0] [--json]\n"
                       "       mixq bench --synthetic tiny|small|tinyllama-1.1b|qwen3-moe-1b "
                       "[--format F] [options]\n"
                       "F: f32 f16 bf16 (default) or any `mixq quantize` format");
  if (!synthetic) return run_bench(model, &mp, &o, NULL, NULL, 0);
  if (!format) format = "bf16";
  int known = 0;
  for (int i = 0; mq_tiny_shapes[i]; i++) known |= !strcmp(synthetic, mq_tiny_shapes[i]);
  mq_gguf_ftype gft;
  mq_qformat qf;
  if (!known)
    return mq_cli_fail("bench: --synthetic %s: not a make-tiny shape (tiny, small, "
                       "tinyllama-1.1b, qwen3-moe-1b)",
                       synthetic);
  if (strcmp(format, "f32") && strcmp(format, "f16") && strcmp(format, "bf16") &&
      mq_gguf_ftype_parse(format, &gft) && mq_qformat_parse(format, &qf))
    return mq_cli_fail("bench: --format %s: not a format of mixq quantize, nor f32/f16/bf16",
                       format);
  char tmp[PATH_MAX], path[PATH_MAX];
  mq_err err = {0};
  double t0 = now();
  FILE *info = o.as_json ? stderr : stdout; /* --json: stdout holds the JSON only */
  fprintf(info, "building a synthetic %s model, format %s ...\n", synthetic, format);
  fflush(info);
  int rc = build_synthetic(synthetic, format, o.threads, tmp, path, &err);
  if (rc) {
    if (*tmp) mq_rm_tree(tmp);
    return mq_cli_fail("bench --synthetic: %s", err.msg);
  }
  double bytes = mq_path_bytes(path);
  fprintf(info, "built %s: format %s, %.1f MB on disk (%.0f s)\n", synthetic, format, bytes / 1e6,
          now() - t0);
  fflush(info);
  rc = run_bench(path, &mp, &o, synthetic, format, bytes);
  mq_rm_tree(tmp);
  return rc;
}

/* One routed expert's linear (HF "model.layers.1.mlp.experts.5.up_proj",
 * GGUF "blk.1.ffn_up_exps.weight[5]"): decode reads only the experts a token
 * is routed to. */
static int is_experts(const char *name) {
  return strstr(name, ".experts.") != NULL || strstr(name, "_exps.weight[") != NULL;
}

/* experts used per token / experts per layer, from config.json or the GGUF
 * metadata; 1 for dense models (or when unknown). */
static double moe_active_fraction(const char *model) {
  long long used = 0, all = 0;
  size_t n = strlen(model);
  if (n > 5 && !strcmp(model + n - 5, ".gguf")) {
    mq_gguf_file f;
    mq_err err = {0};
    if (mq_gguf_open(model, &f, &err) != MQ_OK) return 1;
    const char *a;
    uint64_t al;
    char k[96];
    const mq_gguf_kv *kv;
    int64_t v;
    if (mq_gguf_get_str(&f, "general.architecture", &a, &al, &err) == MQ_OK && al < 32) {
      snprintf(k, sizeof k, "%.*s.expert_used_count", (int)al, a);
      if ((kv = mq_gguf_find_kv(&f, k)) && !mq_gguf_arr_int(kv, 0, &v)) used = v;
      snprintf(k, sizeof k, "%.*s.expert_count", (int)al, a);
      if ((kv = mq_gguf_find_kv(&f, k)) && !mq_gguf_arr_int(kv, 0, &v)) all = v;
    }
    mq_gguf_close(&f);
  } else {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/config.json", model);
    json_t *c = json_load_file(p, 0, NULL);
    json_t *u = json_object_get(c, "num_experts_per_tok"), *e = json_object_get(c, "num_experts");
    if (!json_is_integer(e)) e = json_object_get(c, "num_local_experts");
    if (json_is_integer(u) && json_is_integer(e))
      used = json_integer_value(u), all = json_integer_value(e);
    json_decref(c);
  }
  return used > 0 && all >= used ? (double)used / (double)all : 1.0;
}

static int run_bench(const char *model, const mq_model_params *mpp, const bench_opts *o,
                     const char *synthetic, const char *format, double model_bytes) {
  int pp = o->pp, tg = o->tg, depth = o->depth, threads = o->threads, reps = o->reps;
  int as_json = o->as_json;
  mq_model_params mp = *mpp;
  mq_err err = {0};
  mq_model *m;
  double t0 = now();
  if (mq_model_load(model, &mp, &m, &err) != MQ_OK) return mq_cli_fail("%s", err.msg);
  double load_s = now() - t0;
  mq_model_info info;
  mq_model_get_info(m, &info);
  /* bytes read per generated token: every linear's compute layout */
  double bytes = 0, moe = moe_active_fraction(model);
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    mq_model_linear(m, i, &li);
    bytes += (double)li.compute_bytes * (is_experts(li.name) ? moe : 1.0);
  }
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = threads;
  sp.n_ctx = (pp > depth ? pp : depth) + tg + 1;
  sp.fast_a16 = !o->exact;
  sp.kv_type = o->kv_type;
  mq_session *s;
  if (mq_session_init(m, &sp, &s, &err) != MQ_OK) {
    mq_model_free(m);
    return mq_cli_fail("%s", err.msg);
  }
  /* the prompt, and the depth context as its prefix (or continued past it) */
  int n_toks = pp > depth ? pp : depth;
  int32_t *toks = malloc((size_t)n_toks * sizeof(int32_t));
  for (int i = 0; i < n_toks; i++) toks[i] = (int32_t)((i * 7919 + 13) % info.n_vocab);
  double *pp_tps = calloc((size_t)reps, sizeof(double)), *tg_tps = calloc((size_t)reps, sizeof(double));
  int rc = 0, nt = threads > 0 ? threads : 0;
  if (!nt) { /* the session's default: every online CPU */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nt = n > 0 ? (int)n : 1;
  }
  /* the bandwidth before each timed run and after the last, the best
   * reading: a busy neighbour on a shared host depresses some, and a VM's
   * bandwidth can change between runs (this project's 2-vCPU machine reads
   * about 48 or about 78 GB/s at two threads from minute to minute) */
  uint64_t *bw_buf = bw_buffer();
  double bw = 0;
  for (int r = 0; r < reps && !rc; r++) {
    double b = measure_bandwidth(bw_buf, nt, 3);
    bw = b > bw ? b : bw;
    mq_session_truncate(s, 0, NULL);
    double a = now();
    if (mq_session_eval(s, toks, pp, 0, &err) != MQ_OK) rc = 1;
    pp_tps[r] = pp / (now() - a);
    /* the cache holds the prompt: keep depth of it, or evaluate the rest
     * (untimed) */
    mq_session_truncate(s, depth < pp ? depth : pp, NULL);
    if (depth > pp && mq_session_eval(s, toks + pp, depth - pp, 0, &err) != MQ_OK) rc = 1;
    int32_t tok = toks[0];
    a = now();
    for (int i = 0; i < tg && !rc; i++) {
      if (mq_session_eval(s, &tok, 1, 0, &err) != MQ_OK) rc = 1;
      tok = argmax(mq_session_logits(s, NULL), info.n_vocab);
    }
    tg_tps[r] = tg / (now() - a);
  }
  if (rc) {
    free(toks), free(pp_tps), free(tg_tps), free(bw_buf);
    mq_session_free(s);
    mq_model_free(m);
    return mq_cli_fail("%s", err.msg);
  }
  double bw2 = measure_bandwidth(bw_buf, nt, 3);
  bw = bw2 > bw ? bw2 : bw;
  free(bw_buf);
  double rss = resident_mb(); /* model, session and KV cache after the runs, the buffer gone */
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
    if (j) json_object_set_new(j, "kernels", json_string(mq_kern()->name)); /* the kernel tier */
    if (j) json_object_set_new(j, "depth", json_integer(depth));
    if (j) json_object_set_new(j, "cache_type", json_string(mq_cli_cache_name(o->kv_type)));
    if (j && rss > 0) json_object_set_new(j, "resident_mb", json_real(rss));
    if (j && synthetic) { /* what --synthetic built (the model path is gone afterwards) */
      json_object_set_new(j, "synthetic", json_string(synthetic));
      json_object_set_new(j, "format", json_string(format));
      json_object_set_new(j, "model_bytes", json_real(model_bytes));
    }
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(txt);
    free(txt);
    json_decref(j);
  } else {
    printf("model: %s (%s, %s), %d threads, %s kernels, load %.2f s\n", model, info.arch, info.quant_method,
           nt, mq_kern()->name, load_s);
    printf("prompt     pp%-4d %8.1f tok/s (min %.1f, max %.1f over %d runs)\n", pp, pp_med, pp_tps[0],
           pp_tps[reps - 1], reps);
    printf("generation tg%-4d %8.1f tok/s (min %.1f, max %.1f)", tg, tg_med, tg_tps[0],
           tg_tps[reps - 1]);
    if (depth) printf(" after %d tokens of context", depth);
    if (o->kv_type) printf(", %s KV cache", mq_cli_cache_name(o->kv_type));
    printf("\n");
    printf("weights read per token %.1f MB%s; read bandwidth %.1f GB/s -> roofline %.1f tok/s; "
           "decode at %.0f%% of it\n",
           bytes / 1e6, moe < 1 ? " (routed experts counted at experts used / experts)" : "", bw,
           roof, roof > 0 ? 100 * tg_med / roof : 0);
    if (rss > 0) printf("resident after the runs %.0f MB\n", rss);
  }
  free(toks), free(pp_tps), free(tg_tps);
  mq_session_free(s);
  mq_model_free(m);
  return 0;
}
