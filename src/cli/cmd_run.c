/* mixq run MODEL -p TEXT [options]     generate text, streamed to stdout
 * mixq run MODEL --chat -p TEXT         ... as the user's turn of a chat
 * mixq run MODEL -i                     a chat on standard input
 *
 * stdout carries only the generated text; load time and speeds go to stderr.
 * Interactive mode keeps the conversation in the KV cache: each turn renders
 * the whole conversation with the chat template and evaluates only the text
 * past what the cache already holds. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char USAGE[] =
    "usage: mixq run MODEL [-p TEXT | -f FILE] [options]\n"
    "  -p, --prompt TEXT        the prompt (default: standard input when it is not a terminal)\n"
    "  -f, --file FILE          read the prompt from FILE\n"
    "  -n, --n-predict N        tokens to generate (default 128; -1: until the end)\n"
    "  --temp T                 temperature (default 0.8; 0: greedy)\n"
    "  --top-k N                (default 40; 0: off)\n"
    "  --top-p P                (default 0.95; 1: off)\n"
    "  --min-p P                (default 0.05; 0: off)\n"
    "  --repeat-penalty F       (default 1.0: off)\n"
    "  --repeat-last-n N        tokens the penalties look back on (default 64; -1: all)\n"
    "  --presence-penalty F     (default 0)\n"
    "  --frequency-penalty F    (default 0)\n"
    "  -s, --seed N             random seed (default -1: random; printed at the end)\n"
    "  --stop STR               stop before STR (repeatable)\n"
    "  --chat                   apply the chat template to the prompt as a user message\n"
    "  -i, --interactive        chat on standard input, the conversation kept in the KV cache\n"
    "  --system TEXT            a system message for --chat / -i\n"
    "  --chat-template NAME     chatml, llama3, llama2 or mistral instead of the model's own\n"
    "  --special                print special tokens (e.g. <|im_end|>) as text\n"
    "  --no-bos                 add no BOS (nor what else the tokenizer adds) to the prompt\n"
    "  -t, --threads N          threads (default: all cores)\n"
    "  -c, --ctx-size N         context length (default: min(trained, 4096))\n"
    "  --cache-type f32|f16|q8_0  KV cache element type (default f32; f16 halves its memory,\n"
    "                           q8_0 takes about a quarter)\n"
    "  --quantization NAME      the quantization method the checkpoint must have\n"
    "  --numerics exact|npu     numerics of quantized layers (default exact)\n"
    "  --exact                  weight-only (A16) layers with float activations instead of\n"
    "                           the default int8 activation blocks (docs/performance.md)\n";

typedef struct run_opts {
  const char *model, *prompt, *prompt_file, *system, *chat_template;
  const char *stops[MQ_MAX_STOP];
  int n_stop;
  int n_predict, n_threads, n_ctx, chat, interactive, no_bos, special, exact;
  int kv_type; /* --cache-type */
  mq_sampler_params sp;
  mq_model_params mp;
} run_opts;

/* ---- growable buffers (the CLI sees only mixq.h) ---- */
typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

/* ---- argument parsing ---- */
static int parse_float(const char *s, float *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || errno || !isfinite(v)) return -1;
  *out = (float)v;
  return 0;
}

static int parse_int(const char *s, long lo, long hi, int *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*end || errno || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

static int parse_args(int argc, char **argv, run_opts *o) {
  memset(o, 0, sizeof *o);
  o->n_predict = 128;
  mq_sampler_params_default(&o->sp);
  mq_model_params_default(&o->mp);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(x) (!strcmp(a, x))
#define NEED()                                                                                     \
  do {                                                                                             \
    if (!v) return mq_cli_fail("run: %s needs a value", a) + 1;                                    \
    i++;                                                                                           \
  } while (0)
#define BAD() return mq_cli_fail("run: bad value '%s' for %s", v, a) + 1
    if (IS("-h") || IS("--help")) {
      fputs(USAGE, stdout);
      return -1;
    } else if (IS("-p") || IS("--prompt")) {
      NEED();
      o->prompt = v;
    } else if (IS("-f") || IS("--file")) {
      NEED();
      o->prompt_file = v;
    } else if (IS("-m") || IS("--model")) {
      NEED();
      o->model = v;
    } else if (IS("-n") || IS("--n-predict") || IS("--predict")) {
      NEED();
      if (parse_int(v, -1, 1 << 30, &o->n_predict)) BAD();
    } else if (IS("--temp") || IS("--temperature")) {
      NEED();
      if (parse_float(v, &o->sp.temperature)) BAD();
    } else if (IS("--top-k")) {
      NEED();
      if (parse_int(v, 0, 1 << 30, &o->sp.top_k)) BAD();
    } else if (IS("--top-p")) {
      NEED();
      if (parse_float(v, &o->sp.top_p)) BAD();
    } else if (IS("--min-p")) {
      NEED();
      if (parse_float(v, &o->sp.min_p)) BAD();
    } else if (IS("--repeat-penalty")) {
      NEED();
      if (parse_float(v, &o->sp.repeat_penalty)) BAD();
    } else if (IS("--repeat-last-n")) {
      NEED();
      if (parse_int(v, -1, 1 << 30, &o->sp.repeat_last_n)) BAD();
    } else if (IS("--presence-penalty")) {
      NEED();
      if (parse_float(v, &o->sp.presence_penalty)) BAD();
    } else if (IS("--frequency-penalty")) {
      NEED();
      if (parse_float(v, &o->sp.frequency_penalty)) BAD();
    } else if (IS("-s") || IS("--seed")) {
      NEED();
      char *end;
      errno = 0;
      long long s = strtoll(v, &end, 10);
      if (!*v || *end || errno || s < -1) BAD();
      o->sp.seed = s < 0 ? MQ_SEED_RANDOM : (uint64_t)s;
    } else if (IS("--stop")) {
      NEED();
      if (o->n_stop == MQ_MAX_STOP) return mq_cli_fail("run: at most %d --stop", MQ_MAX_STOP) + 1;
      o->stops[o->n_stop++] = v;
    } else if (IS("--chat") || IS("-cnv") || IS("--conversation")) {
      o->chat = 1;
    } else if (IS("-i") || IS("--interactive")) {
      o->interactive = o->chat = 1;
    } else if (IS("--system") || IS("-sys")) {
      NEED();
      o->system = v;
    } else if (IS("--chat-template")) {
      NEED();
      o->chat_template = v;
    } else if (IS("--special")) {
      o->special = 1;
    } else if (IS("--no-bos")) {
      o->no_bos = 1;
    } else if (IS("-t") || IS("--threads")) {
      NEED();
      if (parse_int(v, 0, 4096, &o->n_threads)) BAD();
    } else if (IS("-c") || IS("--ctx-size")) {
      NEED();
      if (parse_int(v, 0, 1 << 30, &o->n_ctx)) BAD();
    } else if (IS("--cache-type")) {
      NEED();
      if ((o->kv_type = mq_cli_cache_type(v)) < 0) BAD();
    } else if (IS("--quantization")) {
      NEED();
      o->mp.quantization = v;
    } else if (IS("--exact")) {
      o->exact = 1;
    } else if (IS("--numerics")) {
      NEED();
      if (!strcmp(v, "exact"))
        o->mp.numerics = MQ_NUMERICS_EXACT;
      else if (!strcmp(v, "npu"))
        o->mp.numerics = MQ_NUMERICS_NPU;
      else
        BAD();
    } else if (a[0] == '-' && a[1]) {
      return mq_cli_fail("run: unknown option '%s' (see mixq run --help)", a) + 1;
    } else if (!o->model) {
      o->model = a;
    } else {
      return mq_cli_fail("run: unexpected argument '%s'", a) + 1;
    }
#undef IS
#undef NEED
#undef BAD
  }
  if (!o->model) {
    fputs(USAGE, stderr);
    return 2;
  }
  if (o->prompt && o->prompt_file) return mq_cli_fail("run: give -p or -f, not both") + 1;
  if (o->chat_template && !o->chat) o->chat = 1;
  return 0;
}

static char *read_all(FILE *f, size_t *len) {
  buf b = {0};
  char chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (buf_add(&b, chunk, got) != 0) {
      free(b.p);
      return NULL;
    }
  if (ferror(f) || buf_add(&b, "", 0) != 0) {
    free(b.p);
    return NULL;
  }
  *len = b.n;
  return b.p;
}

/* ---- interrupts: the first Ctrl-C stops the generation, a second exits ---- */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
  (void)sig;
  if (g_interrupted) _exit(130);
  g_interrupted = 1;
}

/* ---- streaming ---- */
typedef struct stream {
  buf reply;    /* text of this turn */
  int32_t *ids; /* ids sampled this turn */
  int n_ids, cap_ids;
  int write_failed;
} stream;

static int on_text(void *user, const char *text, size_t len) {
  stream *st = user;
  if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
    st->write_failed = 1;
    return 1;
  }
  return buf_add(&st->reply, text, len) != 0;
}

static int on_token(void *user, int32_t id) {
  stream *st = user;
  if (g_interrupted) return 1;
  if (st->n_ids == st->cap_ids) {
    int cap = st->cap_ids ? st->cap_ids * 2 : 256;
    int32_t *p = realloc(st->ids, sizeof *p * (size_t)cap);
    if (!p) return 1;
    st->ids = p;
    st->cap_ids = cap;
  }
  st->ids[st->n_ids++] = id;
  return 0;
}

typedef struct totals {
  int n_prompt, n_gen;
  double t_prompt, t_gen;
} totals;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Encode text; with add_special, a BOS the text itself starts with (chat
 * templates often write bos_token) is not doubled. */
static int encode(const mq_tokenizer *tok, const char *text, size_t len, int add_special,
                  int32_t **ids, int *n, mq_err *err) {
  int rc = mq_tokenizer_encode(tok, text, len, add_special, ids, n, err);
  int32_t bos = mq_tokenizer_bos(tok);
  if (rc == MQ_OK && add_special && bos >= 0 && *n >= 2 && (*ids)[0] == bos && (*ids)[1] == bos) {
    memmove(*ids, *ids + 1, sizeof **ids * (size_t)(*n - 1));
    --*n;
  }
  return rc;
}

/* One generation from ids; streams to stdout and adds to the totals. */
static int generate(mq_session *s, const mq_tokenizer *tok, mq_sampler *smp, const run_opts *o,
                    const int32_t *ids, int n, int eval_last, stream *st, totals *tot,
                    mq_generate_result *res, mq_err *err) {
  mq_generate_params gp;
  mq_generate_params_default(&gp);
  gp.n_predict = o->n_predict;
  gp.stop = o->stops;
  gp.n_stop = o->n_stop;
  gp.decode_flags = o->special ? 0 : MQ_DECODE_SKIP_SPECIAL;
  gp.eval_last = eval_last;
  gp.on_text = on_text;
  gp.on_token = on_token;
  gp.user = st;
  st->reply.n = 0;
  st->n_ids = 0;
  g_interrupted = 0;
  int rc = mq_generate(s, tok, smp, ids, n, &gp, res, err);
  tot->n_prompt += res->n_prompt;
  tot->n_gen += res->n_generated;
  tot->t_prompt += res->t_prompt_s;
  tot->t_gen += res->t_gen_s;
  return rc;
}

static void report(double t_load, const totals *t, const mq_sampler *smp, const run_opts *o,
                   const char *finish) {
  fprintf(stderr, "\nmixq run: load %.1f ms\n", t_load * 1e3);
  fprintf(stderr, "mixq run: prompt %d tokens in %.1f ms (%.1f tokens/s)\n", t->n_prompt,
          t->t_prompt * 1e3, t->t_prompt > 0 ? t->n_prompt / t->t_prompt : 0.0);
  fprintf(stderr, "mixq run: generated %d tokens in %.1f ms (%.1f tokens/s)", t->n_gen,
          t->t_gen * 1e3, t->t_gen > 0 ? t->n_gen / t->t_gen : 0.0);
  if (finish) fprintf(stderr, ", finish: %s", finish);
  if (o->sp.temperature > 0)
    fprintf(stderr, ", seed %llu", (unsigned long long)mq_sampler_seed(smp));
  fputc('\n', stderr);
}

/* ---- the chat REPL ---- */
typedef struct conv {
  mq_chat_msg *m;
  char **owned; /* texts owned here (NULL for borrowed ones) */
  int n, cap;
} conv;

static int conv_add(conv *c, const char *role, const char *text, int copy) {
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 8;
    mq_chat_msg *m = realloc(c->m, sizeof *m * (size_t)cap);
    if (!m) return -1;
    c->m = m;
    char **ow = realloc(c->owned, sizeof *ow * (size_t)cap);
    if (!ow) return -1;
    c->owned = ow;
    c->cap = cap;
  }
  char *own = NULL;
  if (copy && !(own = strdup(text))) return -1;
  c->m[c->n].role = role;
  c->m[c->n].content = own ? own : text;
  c->owned[c->n++] = own;
  return 0;
}

static void conv_free(conv *c) {
  for (int i = 0; i < c->n; i++) free(c->owned[i]);
  free(c->m);
  free(c->owned);
}

/* A line of standard input without its newline; NULL at the end or on Ctrl-C. */
static char *read_line(buf *b) {
  b->n = 0;
  int c;
  while ((c = fgetc(stdin)) != EOF && c != '\n') {
    char ch = (char)c;
    if (buf_add(b, &ch, 1) != 0) return NULL;
  }
  if (g_interrupted || (c == EOF && b->n == 0)) return NULL;
  if (buf_add(b, "", 0) != 0) return NULL;
  return b->p;
}

static int run_chat(mq_session *s, const mq_tokenizer *tok, mq_sampler *smp,
                    const mq_chat_template *tmpl, const run_opts *o, totals *tot,
                    const char **finish, mq_err *err) {
  conv c = {0};
  buf cache = {0}, line = {0};
  stream st = {0};
  int rc = MQ_OK, tty = isatty(0);
  if (o->system && conv_add(&c, "system", o->system, 0) != 0) goto oom;
  const char *first = o->prompt;
  for (int turn = 0;; turn++) {
    const char *user = first;
    first = NULL;
    if (!user) {
      if (!o->interactive && turn > 0) break;
      if (tty) fputs("> ", stderr);
      g_interrupted = 0;
      if (!(user = read_line(&line))) break;
      if (!*user) continue;
    }
    if (conv_add(&c, "user", user, 1) != 0) goto oom;
    char *full = NULL;
    size_t full_len = 0;
    if ((rc = mq_chat_template_apply(tmpl, c.m, c.n, 1, &full, &full_len, err)) != MQ_OK) break;
    /* only what the KV cache does not hold yet; if the template re-renders
     * earlier turns differently, start the cache over */
    size_t from = 0;
    if (cache.n && full_len >= cache.n && !memcmp(full, cache.p, cache.n)) {
      from = cache.n;
    } else if (cache.n) {
      if ((rc = mq_session_truncate(s, 0, err)) != MQ_OK) {
        free(full);
        break;
      }
      cache.n = 0;
    }
    int32_t *ids = NULL;
    int n = 0;
    rc = encode(tok, full + from, full_len - from, from == 0 && !o->no_bos, &ids, &n, err);
    if (rc == MQ_OK && n == 0) rc = encode(tok, "\n", 1, 0, &ids, &n, err);
    if (rc != MQ_OK) {
      free(full);
      break;
    }
    int pos0 = mq_session_pos(s);
    mq_generate_result res;
    rc = generate(s, tok, smp, o, ids, n, 1, &st, tot, &res, err);
    free(ids);
    if (rc == MQ_ERR_RANGE && cache.n > 0) { /* a later turn: the chat ends here */
      free(full);
      fprintf(stderr, "\nmixq run: %s (a larger -c gives more room)\n", err->msg);
      rc = MQ_OK;
      break;
    }
    if (rc != MQ_OK) {
      free(full);
      break;
    }
    *finish = res.finish_reason;
    if (!st.write_failed) fputc('\n', stdout);
    fflush(stdout);
    /* the cache now holds the rendered turn and the evaluated reply tokens */
    int in_cache = mq_session_pos(s) - pos0 - n;
    char *tail = NULL;
    size_t tail_len = 0;
    if (buf_add(&cache, full + from, full_len - from) != 0) goto oom_full;
    if (in_cache > 0 && mq_tokenizer_decode(tok, st.ids, in_cache, MQ_DECODE_CONTINUE, &tail,
                                            &tail_len, err) != MQ_OK)
      goto oom_full;
    if (buf_add(&cache, tail ? tail : "", tail_len) != 0) {
      free(tail);
      goto oom_full;
    }
    free(tail);
    free(full);
    if (conv_add(&c, "assistant", st.reply.p ? st.reply.p : "", 1) != 0) goto oom;
    if (st.write_failed) break;
    if (res.finish == MQ_FINISH_CONTEXT) {
      fprintf(stderr, "mixq run: the context is full; start again with a larger -c\n");
      break;
    }
    continue;
  oom_full:
    free(full);
    goto oom;
  }
  goto done;
oom:
  rc = MQ_ERR_NOMEM;
  snprintf(err->msg, sizeof err->msg, "out of memory");
done:
  conv_free(&c);
  free(cache.p);
  free(line.p);
  free(st.reply.p);
  free(st.ids);
  return rc;
}

int mq_cmd_run(int argc, char **argv) {
  run_opts o;
  int prc = parse_args(argc, argv, &o);
  if (prc) return prc < 0 ? 0 : prc;

  char *file_text = NULL;
  size_t prompt_len = 0;
  if (o.prompt_file) {
    FILE *f = fopen(o.prompt_file, "rb");
    if (!f) return mq_cli_fail("%s: cannot open: %s", o.prompt_file, strerror(errno));
    file_text = read_all(f, &prompt_len);
    fclose(f);
    if (!file_text) return mq_cli_fail("%s: cannot read", o.prompt_file);
    o.prompt = file_text;
  } else if (!o.prompt && !o.interactive && !isatty(0)) {
    if (!(file_text = read_all(stdin, &prompt_len)))
      return mq_cli_fail("run: cannot read standard input");
    o.prompt = file_text;
  } else if (o.prompt) {
    prompt_len = strlen(o.prompt);
  }
  if (!o.prompt) o.prompt = "", prompt_len = 0;
  if (o.interactive && !*o.prompt) o.prompt = NULL; /* the first turn comes from stdin */

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a read waiting for input returns */

  mq_err err = {0};
  mq_model *m = NULL;
  mq_tokenizer *tok = NULL;
  mq_session *s = NULL;
  mq_sampler *smp = NULL;
  mq_chat_template *tmpl = NULL;
  int32_t *ids = NULL;
  int rc = 1;
  double t0 = now_s();
  if (mq_model_load(o.model, &o.mp, &m, &err) != MQ_OK) goto fail;
  if (mq_tokenizer_load(o.model, &tok, &err) != MQ_OK) goto fail;
  double t_load = now_s() - t0;
  mq_model_info info;
  mq_model_get_info(m, &info);
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_ctx = o.n_ctx;
  sp.n_threads = o.n_threads;
  sp.fast_a16 = !o.exact; /* measured: docs/performance.md */
  sp.kv_type = o.kv_type;
  if (mq_session_init(m, &sp, &s, &err) != MQ_OK) goto fail;
  if (mq_sampler_init(&o.sp, info.n_vocab, &smp, &err) != MQ_OK) goto fail;
  if (o.chat && mq_chat_template_init(tok, o.chat_template, &tmpl, &err) != MQ_OK) goto fail;

  totals tot = {0};
  const char *finish = NULL;
  if (o.chat) {
    if (run_chat(s, tok, smp, tmpl, &o, &tot, &finish, &err) != MQ_OK) goto fail;
  } else {
    int n = 0;
    if (encode(tok, o.prompt, prompt_len, !o.no_bos, &ids, &n, &err) != MQ_OK) goto fail;
    if (n == 0) {
      rc = mq_cli_fail("run: the prompt is empty (and --no-bos adds nothing)");
      goto done;
    }
    stream st = {0};
    mq_generate_result res;
    int grc = generate(s, tok, smp, &o, ids, n, 0, &st, &tot, &res, &err);
    free(st.reply.p);
    free(st.ids);
    if (grc != MQ_OK) goto fail;
    finish = res.finish_reason;
    if (isatty(1) && !st.write_failed) fputc('\n', stdout);
  }
  fflush(stdout);
  report(t_load, &tot, smp, &o, finish);
  rc = 0;
  goto done;
fail:
  rc = mq_cli_fail("%s", err.msg);
done:
  free(ids);
  free(file_text);
  mq_chat_template_free(tmpl);
  mq_sampler_free(smp);
  mq_session_free(s);
  mq_tokenizer_free(tok);
  mq_model_free(m);
  return rc;
}
