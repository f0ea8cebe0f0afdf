/* mixq serve MODEL [--host 127.0.0.1] [--port 8080] [--api-key K | --api-key-file F]
 *                  [--alias NAME] [--parallel N] [--ctx-size N] [--timeout S] [--metrics]
 *                  [-t N] [--quantization NAME] [--numerics exact|npu] [--exact]
 *                  [--cache-type f32|f16|q8_0]
 *                  [--chat-template NAME] [--queue N] [--max-body BYTES]
 * An OpenAI-compatible HTTP server (src/server, docs/server.md). The socket
 * is bound first (so /health says "Loading model" meanwhile), then the model
 * is loaded and attached. SIGINT/SIGTERM stop it cleanly; a second one exits
 * at once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/server.h"

#define MAX_KEYS 64

static const char USAGE[] =
    "usage: mixq serve MODEL [--host 127.0.0.1] [--port 8080] [--api-key K | --api-key-file F]\n"
    "                  [--alias NAME] [--parallel N] [--ctx-size N] [--timeout S] [--metrics]\n"
    "                  [-t N] [--quantization NAME] [--numerics exact|npu] [--exact]\n"
    "                  [--cache-type f32|f16|q8_0]\n"
    "                  [--chat-template NAME] [--queue N] [--max-body BYTES]\n"
    "see docs/server.md";

/* Read keys (one a line; blank lines and #comments skipped) into keys[]. */
static int read_keys(const char *path, char **keys, int *n) {
  FILE *f = fopen(path, "r");
  if (!f) return mq_cli_fail("serve: cannot open --api-key-file %s: %s", path, strerror(errno));
  char line[4096];
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
      line[--len] = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#') continue;
    if (*n >= MAX_KEYS) {
      rc = mq_cli_fail("serve: more than %d API keys in %s", MAX_KEYS, path);
      break;
    }
    if (!(keys[(*n)++] = strdup(s))) {
      rc = mq_cli_fail("out of memory");
      break;
    }
  }
  fclose(f);
  if (!rc && *n == 0) rc = mq_cli_fail("serve: no API key in %s", path);
  return rc;
}

/* A comma-separated --api-key list. */
static int split_keys(const char *list, char **keys, int *n) {
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len) {
      if (*n >= MAX_KEYS) return mq_cli_fail("serve: more than %d API keys", MAX_KEYS);
      if (!(keys[*n] = strndup(p, len))) return mq_cli_fail("out of memory");
      (*n)++;
    }
    p += len + (e ? 1 : 0);
  }
  if (*n == 0) return mq_cli_fail("serve: --api-key is empty");
  return 0;
}

typedef struct stopper {
  mq_server *srv;
  atomic_int done;
} stopper;

static void *stop_thread(void *arg) {
  stopper *st = arg;
  mq_server_stop(st->srv);
  atomic_store(&st->done, 1);
  return NULL;
}

int mq_cmd_serve(int argc, char **argv) {
  mq_server_opts o;
  memset(&o, 0, sizeof o);
  o.host = "127.0.0.1";
  o.port = 8080;
  o.parallel = 1;
  o.queue = -1;
  o.timeout_s = 600;
  o.max_body = (size_t)1 << 20;
  mq_session_params_default(&o.session);
  const char *model = NULL, *quant = NULL, *key_arg = NULL, *key_file = NULL;
  mq_numerics numerics = MQ_NUMERICS_EXACT;
  o.session.fast_a16 = 1; /* as `mixq run`: docs/performance.md; --exact turns it off */
  char alias_buf[256] = "";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL()                                                                  \
  do {                                                                         \
    if (!v) return mq_cli_fail("serve: %s needs a value\n%s", a, USAGE) + 1;   \
    i++;                                                                       \
  } while (0)
#define INTVAL(dst, lo, hi)                                                    \
  do {                                                                         \
    VAL();                                                                     \
    int x_ = mq_cli_int(v);                                                    \
    if (x_ < (lo) || x_ > (hi))                                                \
      return mq_cli_fail("serve: %s wants an integer in [%d, %d], not '%s'", a, (lo), (hi), v) + 1; \
    dst = x_;                                                                  \
  } while (0)
    if (!strcmp(a, "--host")) {
      VAL();
      o.host = v;
    } else if (!strcmp(a, "--port")) {
      INTVAL(o.port, 0, 65535);
    } else if (!strcmp(a, "--api-key")) {
      VAL();
      key_arg = v;
    } else if (!strcmp(a, "--api-key-file")) {
      VAL();
      key_file = v;
    } else if (!strcmp(a, "--alias") || !strcmp(a, "-a")) {
      VAL();
      o.alias = v;
    } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
      INTVAL(o.parallel, 1, 256);
    } else if (!strcmp(a, "--queue")) {
      INTVAL(o.queue, 1, 65536);
    } else if (!strcmp(a, "--ctx-size") || !strcmp(a, "-c")) {
      INTVAL(o.session.n_ctx, 0, 1 << 24);
    } else if (!strcmp(a, "--timeout") || !strcmp(a, "-to")) {
      INTVAL(o.timeout_s, 1, 86400);
    } else if (!strcmp(a, "--metrics")) {
      o.metrics = 1;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
      INTVAL(o.session.n_threads, 0, 1024);
    } else if (!strcmp(a, "--quantization")) {
      VAL();
      quant = v;
    } else if (!strcmp(a, "--numerics")) {
      VAL();
      if (!strcmp(v, "exact")) numerics = MQ_NUMERICS_EXACT;
      else if (!strcmp(v, "npu")) numerics = MQ_NUMERICS_NPU;
      else return mq_cli_fail("serve: --numerics must be exact or npu, not '%s'", v) + 1;
    } else if (!strcmp(a, "--exact")) {
      o.session.fast_a16 = 0;
    } else if (!strcmp(a, "--cache-type")) {
      VAL();
      if ((o.session.kv_type = mq_cli_cache_type(v)) < 0)
        return mq_cli_fail("serve: --cache-type must be f32, f16 or q8_0, not '%s'", v) + 1;
    } else if (!strcmp(a, "--chat-template")) {
      VAL();
      o.chat_template = v;
    } else if (!strcmp(a, "--max-body")) {
      int mb = 0;
      INTVAL(mb, 1024, 1 << 30);
      o.max_body = (size_t)mb;
    } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
      VAL();
      model = v;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      puts(USAGE);
      return 0;
    } else if (a[0] == '-' || model) {
      return mq_cli_fail("serve: unexpected argument '%s'\n%s", a, USAGE) + 1;
    } else {
      model = a;
    }
#undef INTVAL
#undef VAL
  }
  if (!model) return mq_cli_fail("serve: no MODEL\n%s", USAGE) + 1;
  if (key_arg && key_file) return mq_cli_fail("serve: give --api-key or --api-key-file, not both") + 1;
  if (o.queue < 0) o.queue = 4 * o.parallel;
  if (!o.alias) { /* the model folder's name */
    size_t n = strlen(model);
    while (n > 1 && model[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && model[b - 1] != '/') b--;
    snprintf(alias_buf, sizeof alias_buf, "%.*s", (int)(n - b), model + b);
    o.alias = alias_buf;
  }

  char *keys[MAX_KEYS];
  int n_keys = 0, rc = 0;
  const char *env_key = getenv("MIXQ_API_KEY");
  if (key_file) rc = read_keys(key_file, keys, &n_keys);
  else if (key_arg) rc = split_keys(key_arg, keys, &n_keys);
  else if (env_key && *env_key) rc = split_keys(env_key, keys, &n_keys);
  if (rc) {
    for (int i = 0; i < n_keys; i++) free(keys[i]);
    return rc;
  }
  o.api_keys = (const char *const *)keys;
  o.n_api_keys = n_keys;

  /* Signals go to sigwait below, not to any thread (they inherit the mask);
   * a write to a closed socket must not kill the process. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  mq_err err = {0};
  mq_server *srv = NULL;
  mq_model *m = NULL;
  mq_tokenizer *tok = NULL;
  if (mq_server_start(&o, &srv, &err) != MQ_OK) {
    rc = mq_cli_fail("%s", err.msg);
    goto out;
  }
  fprintf(stderr, "mixq serve: listening on http://%s%s%s:%d/ (model %s loading)\n",
          strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "",
          mq_server_port(srv), o.alias);
  mq_model_params mp;
  mq_model_params_default(&mp);
  mp.quantization = quant;
  mp.numerics = numerics;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (mq_model_load(model, &mp, &m, &err) != MQ_OK || mq_tokenizer_load(model, &tok, &err) != MQ_OK ||
      mq_server_attach(srv, m, tok, &err) != MQ_OK) {
    rc = mq_cli_fail("%s", err.msg);
    mq_server_stop(srv);
    goto out;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  mq_model_info info;
  mq_model_get_info(m, &info);
  for (int i = 0; i < mq_model_n_warnings(m); i++)
    fprintf(stderr, "mixq serve: warning: %s\n", mq_model_warning(m, i));
  fprintf(stderr,
          "mixq serve: ready: %s (%s, quantization %s) in %.2f s; %d slot(s), queue %d, "
          "API key %s; http://%s%s%s:%d/v1\n",
          o.alias, info.arch, info.quant_method,
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9, o.parallel,
          o.queue, n_keys ? "required" : "off", strchr(o.host, ':') ? "[" : "", o.host,
          strchr(o.host, ':') ? "]" : "", mq_server_port(srv));

  int sig = 0;
  sigwait(&sigs, &sig);
  fprintf(stderr, "mixq serve: %s: stopping (again to exit at once)\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  stopper st = {.srv = srv};
  atomic_init(&st.done, 0);
  pthread_t th;
  if (pthread_create(&th, NULL, stop_thread, &st) != 0) {
    mq_server_stop(srv);
  } else {
    struct timespec poll_ts = {0, 100 * 1000 * 1000};
    while (!atomic_load(&st.done)) {
      if (sigtimedwait(&sigs, NULL, &poll_ts) > 0) {
        fprintf(stderr, "mixq serve: exiting now\n");
        _exit(130);
      }
    }
    pthread_join(th, NULL);
  }
  fprintf(stderr, "mixq serve: stopped\n");
out:
  mq_tokenizer_free(tok);
  mq_model_free(m);
  for (int i = 0; i < n_keys; i++) free(keys[i]);
  return rc;
}
