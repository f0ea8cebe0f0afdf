/* The HTTP side of `mixq serve` on libmicrohttpd (see server.h,
 * docs/server.md).
 *
 * Threads: MHD runs one thread per connection (bounded by a connection
 * limit). A connection thread parses and validates its request, tokenizes
 * the prompt, builds a job and queues it for the scheduler thread; then it
 * waits on the job's condition variable — in the access handler for a plain
 * response, in the content-reader callback for an SSE stream — and turns the
 * job's text into the response. While it waits it polls its socket, so a
 * client that goes away cancels its job within one token; MHD's
 * request-completed and response-free callbacks cancel too. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/job.h"
#include "server/oai.h"
#include "server/sched.h"
#include "server/server.h"

enum route { R_NONE, R_HEALTH, R_MODELS, R_COMPLETIONS, R_CHAT, R_TOKENIZE, R_DETOKENIZE, R_METRICS };

static const struct {
  const char *path;
  int route;
  int post;  /* 1: POST, 0: GET (and HEAD) */
  int auth;  /* needs the API key when one is set */
  int model; /* needs the model loaded */
} ROUTES[] = {
    {"/health", R_HEALTH, 0, 0, 0},
    {"/v1/models", R_MODELS, 0, 1, 1},
    {"/models", R_MODELS, 0, 1, 1},
    {"/v1/completions", R_COMPLETIONS, 1, 1, 1},
    {"/completions", R_COMPLETIONS, 1, 1, 1},
    {"/v1/chat/completions", R_CHAT, 1, 1, 1},
    {"/chat/completions", R_CHAT, 1, 1, 1},
    {"/tokenize", R_TOKENIZE, 1, 1, 1},
    {"/detokenize", R_DETOKENIZE, 1, 1, 1},
    {"/metrics", R_METRICS, 0, 1, 0},
};
#define N_ROUTES (int)(sizeof ROUTES / sizeof ROUTES[0])

struct mq_server {
  mq_server_opts o;
  char *host, *alias;
  char **keys;
  size_t *key_len;
  int n_keys;
  struct MHD_Daemon *d;
  int port;
  atomic_int ready; /* 0 while loading */
  atomic_int stopping;
  const mq_model *m;
  const mq_tokenizer *tok;
  mq_chat_template *tmpl;
  pthread_mutex_t tmpl_mu; /* one render at a time */
  mq_sched *sched;
  int n_ctx, n_vocab, n_tok_vocab;
  char *models_json; /* the /v1/models body, built at attach */
  long long created;
  atomic_ullong next_id;
  unsigned long long id_salt;
  pthread_mutex_t st_mu;
  unsigned long long http_by_class[6]; /* [status / 100] */
};

/* One HTTP request (MHD's per-request pointer). */
typedef struct req {
  mq_server *S;
  int route;
  char method[8];
  char path[80];
  char client[64];
  char *body;
  size_t n, cap;
  size_t too_big; /* bytes dropped past the body limit */
  int responded, status;
  int fd;
  double t0;
  mq_job *job; /* for the log line; a reference */
  int stream;
} req;

/* An SSE stream (MHD's content-reader state). */
typedef struct stream {
  mq_server *S;
  mq_job *job; /* a reference */
  int chat, include_usage, fd;
  double keepalive_s; /* longest silence on the stream */
  char id[48];
  long long created;
  int n_prompt;
  size_t sent; /* bytes of job->text already sent */
  int phase;   /* 0: not started, 1: generating, 2: all queued */
  char *buf;   /* bytes to send: buf[pos..n) */
  size_t n, pos, cap;
} stream;

/* ---- small helpers ---- */

static void logf_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void logf_(const char *fmt, ...) {
  char line[1024];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t k = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ mixq serve: ", &tm);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + k, sizeof line - k - 1, fmt, ap);
  va_end(ap);
  size_t n = strlen(line);
  line[n] = '\n';
  fwrite(line, 1, n + 1, stderr); /* one call: lines of threads do not mix */
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  /* we hang up on purpose when a client is gone or a body is too large; the
   * request's own log line says so */
  if (strstr(msg, "application error generating response") ||
      strstr(msg, "Application reported internal error"))
    return;
  logf_("http: %s", msg);
}

/* Equal in time that depends only on the length of the secret b. */
static int ct_equal(const char *a, size_t na, const char *b, size_t nb) {
  unsigned diff = na != nb;
  for (size_t i = 0; i < nb; i++)
    diff |= (unsigned)((unsigned char)b[i] ^ (unsigned char)(i < na ? a[i] : 0));
  return diff == 0;
}

static int auth_ok(mq_server *S, struct MHD_Connection *c) {
  if (!S->n_keys) return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
  h += 7;
  while (*h == ' ') h++;
  size_t n = strlen(h);
  int ok = 0;
  for (int i = 0; i < S->n_keys; i++) ok |= ct_equal(h, n, S->keys[i], S->key_len[i]);
  return ok;
}

/* 1 when the peer closed its end (or the socket failed). */
static int client_gone(int fd) {
  if (fd < 0) return 0;
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
  if (poll(&p, 1, 0) <= 0) return 0;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) return 1;
  if (p.revents & POLLIN) {
    char ch;
    return recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }
  return 0;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long)ms * 1000000L;
  ts.tv_sec += ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  pthread_cond_timedwait(cv, mu, &ts);
}

static void make_id(mq_server *S, const char *prefix, char *out, size_t cap) {
  unsigned long long k = atomic_fetch_add(&S->next_id, 1);
  snprintf(out, cap, "%s-%012llx%08llx", prefix, S->id_salt & 0xffffffffffffULL, k);
}

/* ---- responses ---- */

static enum MHD_Result send_buf(req *q, struct MHD_Connection *c, int status, const char *ctype,
                                char *buf, size_t n) {
  struct MHD_Response *r = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(buf);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  q->responded = 1;
  q->status = status;
  return ok;
}

static enum MHD_Result send_json(req *q, struct MHD_Connection *c, int status, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!s) return MHD_NO;
  return send_buf(q, c, status, "application/json", s, strlen(s));
}

static enum MHD_Result send_oai_err(req *q, struct MHD_Connection *c, const mq_oai_err *e) {
  return send_json(q, c, e->status, mq_oai_error_json(e));
}

static enum MHD_Result send_err(req *q, struct MHD_Connection *c, int status, const char *type,
                                const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
static enum MHD_Result send_err(req *q, struct MHD_Connection *c, int status, const char *type,
                                const char *param, const char *fmt, ...) {
  mq_oai_err e = {.status = status, .type = type};
  snprintf(e.param, sizeof e.param, "%s", param ? param : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.msg, sizeof e.msg, fmt, ap);
  va_end(ap);
  return send_oai_err(q, c, &e);
}

/* ---- simple endpoints ---- */

static enum MHD_Result do_health(req *q, struct MHD_Connection *c) {
  if (!atomic_load(&q->S->ready))
    return send_err(q, c, 503, "unavailable_error", NULL, "Loading model");
  json_t *o = json_object();
  json_object_set_new(o, "status", json_string("ok"));
  return send_json(q, c, 200, o);
}

static enum MHD_Result do_models(req *q, struct MHD_Connection *c) {
  char *s = strdup(q->S->models_json);
  if (!s) return MHD_NO;
  return send_buf(q, c, 200, "application/json", s, strlen(s));
}

static enum MHD_Result do_metrics(req *q, struct MHD_Connection *c) {
  mq_server *S = q->S;
  mq_sched_stats st = {0};
  if (atomic_load(&S->ready)) mq_sched_get_stats(S->sched, &st);
  unsigned long long by[6];
  pthread_mutex_lock(&S->st_mu);
  memcpy(by, S->http_by_class, sizeof by);
  pthread_mutex_unlock(&S->st_mu);
  size_t cap = 4096;
  char *s = malloc(cap);
  if (!s) return MHD_NO;
  int n = snprintf(
      s, cap,
      "# HELP mixq_prompt_tokens_total Prompt tokens evaluated.\n"
      "# TYPE mixq_prompt_tokens_total counter\nmixq_prompt_tokens_total %llu\n"
      "# HELP mixq_tokens_predicted_total Tokens sampled.\n"
      "# TYPE mixq_tokens_predicted_total counter\nmixq_tokens_predicted_total %llu\n"
      "# HELP mixq_prompt_seconds_total Seconds spent evaluating prompts.\n"
      "# TYPE mixq_prompt_seconds_total counter\nmixq_prompt_seconds_total %.6f\n"
      "# HELP mixq_tokens_predicted_seconds_total Seconds spent in decode steps and sampling.\n"
      "# TYPE mixq_tokens_predicted_seconds_total counter\n"
      "mixq_tokens_predicted_seconds_total %.6f\n"
      "# HELP mixq_decode_steps_total Batched decode steps (one weight pass each).\n"
      "# TYPE mixq_decode_steps_total counter\nmixq_decode_steps_total %llu\n"
      "# HELP mixq_decode_sequences_total Sequences summed over decode steps.\n"
      "# TYPE mixq_decode_sequences_total counter\nmixq_decode_sequences_total %llu\n"
      "# HELP mixq_requests_finished_total Generation requests finished.\n"
      "# TYPE mixq_requests_finished_total counter\nmixq_requests_finished_total %llu\n"
      "# HELP mixq_requests_cancelled_total Generation requests cancelled by their client.\n"
      "# TYPE mixq_requests_cancelled_total counter\nmixq_requests_cancelled_total %llu\n"
      "# HELP mixq_requests_processing Requests in a slot.\n"
      "# TYPE mixq_requests_processing gauge\nmixq_requests_processing %d\n"
      "# HELP mixq_requests_deferred Requests waiting for a slot.\n"
      "# TYPE mixq_requests_deferred gauge\nmixq_requests_deferred %d\n"
      "# HELP mixq_slots Sequences decoded together at most (--parallel).\n"
      "# TYPE mixq_slots gauge\nmixq_slots %d\n"
      "# HELP mixq_http_requests_total HTTP requests answered, by status class.\n"
      "# TYPE mixq_http_requests_total counter\n"
      "mixq_http_requests_total{code=\"2xx\"} %llu\nmixq_http_requests_total{code=\"4xx\"} %llu\n"
      "mixq_http_requests_total{code=\"5xx\"} %llu\n",
      (unsigned long long)st.prompt_tokens, (unsigned long long)st.gen_tokens, st.t_prompt_s,
      st.t_decode_s, (unsigned long long)st.decode_steps, (unsigned long long)st.decode_seqs,
      (unsigned long long)st.jobs_done, (unsigned long long)st.jobs_cancelled, st.n_active,
      st.n_queued, S->o.parallel, by[2], by[4], by[5]);
  if (n < 0 || (size_t)n >= cap) {
    free(s);
    return MHD_NO;
  }
  return send_buf(q, c, 200, "text/plain; version=0.0.4", s, (size_t)n);
}

/* ---- JSON bodies ---- */

static json_t *parse_body(req *q, mq_oai_err *e) {
  if (mq_oai_check_depth(q->body, q->n, MQ_OAI_MAX_DEPTH)) {
    mq_oai_fail(e, 400, "invalid_request_error", NULL, "the JSON body nests deeper than %d levels",
                MQ_OAI_MAX_DEPTH);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb(q->body ? q->body : "", q->n, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    mq_oai_fail(e, 400, "invalid_request_error", NULL, "invalid JSON body: %s (line %d, column %d)",
                je.text, je.line, je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    mq_oai_fail(e, 400, "invalid_request_error", NULL, "the request body must be a JSON object");
    return NULL;
  }
  return j;
}

static enum MHD_Result do_tokenize(req *q, struct MHD_Connection *c, json_t *b) {
  mq_server *S = q->S;
  /* llama.cpp: {"content", "add_special" (false)}; vLLM: {"prompt",
   * "add_special_tokens" (true)}. Either naming works, with its default. */
  const json_t *t = json_object_get(b, "content");
  int add = 0;
  if (!t) {
    t = json_object_get(b, "prompt");
    add = 1;
  }
  if (!json_is_string(t))
    return send_err(q, c, 400, "invalid_request_error", "content", "'content' must be a string");
  const char *ak[] = {"add_special", "add_special_tokens"};
  for (int i = 0; i < 2; i++) {
    const json_t *v = json_object_get(b, ak[i]);
    if (!v || json_is_null(v)) continue;
    if (!json_is_boolean(v))
      return send_err(q, c, 400, "invalid_request_error", ak[i], "'%s' must be true or false",
                      ak[i]);
    add = json_is_true(v);
  }
  const json_t *wp = json_object_get(b, "with_pieces");
  if (wp && !json_is_null(wp) && !json_is_boolean(wp))
    return send_err(q, c, 400, "invalid_request_error", "with_pieces",
                    "'with_pieces' must be true or false");
  int32_t *ids = NULL;
  int n = 0;
  mq_err err = {0};
  if (mq_tokenizer_encode(S->tok, json_string_value(t), json_string_length(t), add, &ids, &n,
                          &err) != MQ_OK)
    return send_err(q, c, 400, "invalid_request_error", "content", "%s", err.msg);
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) {
    if (json_is_true(wp)) {
      size_t pl = 0;
      const char *p = mq_tokenizer_piece(S->tok, ids[i], &pl);
      json_t *piece = p ? json_stringn(p, pl) : NULL;
      if (!piece) { /* not UTF-8 on its own (e.g. one byte of a character): the bytes */
        piece = json_array();
        for (size_t k = 0; p && k < pl; k++)
          json_array_append_new(piece, json_integer((unsigned char)p[k]));
      }
      json_t *o = json_object();
      json_object_set_new(o, "id", json_integer(ids[i]));
      json_object_set_new(o, "piece", piece);
      json_array_append_new(arr, o);
    } else {
      json_array_append_new(arr, json_integer(ids[i]));
    }
  }
  free(ids);
  json_t *o = json_object();
  json_object_set_new(o, "tokens", arr);
  json_object_set_new(o, "count", json_integer(n));
  json_object_set_new(o, "max_model_len", json_integer(S->n_ctx));
  return send_json(q, c, 200, o);
}

static enum MHD_Result do_detokenize(req *q, struct MHD_Connection *c, json_t *b) {
  mq_server *S = q->S;
  const json_t *t = json_object_get(b, "tokens");
  if (!json_is_array(t))
    return send_err(q, c, 400, "invalid_request_error", "tokens",
                    "'tokens' must be an array of token ids");
  size_t n = json_array_size(t);
  int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
  if (!ids) return send_err(q, c, 500, "server_error", NULL, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(t, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= S->n_tok_vocab) {
      free(ids);
      return send_err(q, c, 400, "invalid_request_error", "tokens",
                      "tokens[%zu] is not a token id in [0, %d)", i, S->n_tok_vocab);
    }
    ids[i] = (int32_t)json_integer_value(v);
  }
  char *text = NULL;
  size_t len = 0;
  mq_err err = {0};
  int rc = mq_tokenizer_decode(S->tok, ids, (int)n, 0, &text, &len, &err);
  free(ids);
  if (rc != MQ_OK) return send_err(q, c, 400, "invalid_request_error", "tokens", "%s", err.msg);
  json_t *o = json_object();
  json_object_set_new(o, "content", mq_oai_str(text, len));
  json_object_set_new(o, "prompt", mq_oai_str(text, len));
  free(text);
  return send_json(q, c, 200, o);
}

/* ---- generation ---- */

static json_t *usage_json(int n_prompt, int n_gen) {
  json_t *u = json_object();
  json_object_set_new(u, "prompt_tokens", json_integer(n_prompt));
  json_object_set_new(u, "completion_tokens", json_integer(n_gen));
  json_object_set_new(u, "total_tokens", json_integer(n_prompt + n_gen));
  return u;
}

/* llama.cpp's "timings" extension; j->mu held or the job done. */
static json_t *timings_json(const mq_job *j) {
  double pm = (j->t_prompt_done - j->t_start) * 1e3, gm = (j->t_end - j->t_prompt_done) * 1e3;
  if (pm < 0) pm = 0;
  if (gm < 0) gm = 0;
  json_t *t = json_object();
  json_object_set_new(t, "queue_ms", json_real((j->t_start - j->t_submit) * 1e3));
  json_object_set_new(t, "prompt_n", json_integer(j->n_prompt));
  json_object_set_new(t, "prompt_ms", json_real(pm));
  json_object_set_new(t, "prompt_per_second", json_real(pm > 0 ? j->n_prompt * 1e3 / pm : 0));
  json_object_set_new(t, "predicted_n", json_integer(j->n_gen));
  json_object_set_new(t, "predicted_ms", json_real(gm));
  json_object_set_new(t, "predicted_per_second", json_real(gm > 0 ? j->n_gen * 1e3 / gm : 0));
  return t;
}

/* A chunk / response skeleton: {"id","object","created","model","choices":[choice]}. */
static json_t *envelope(mq_server *S, const char *id, const char *object, long long created,
                        json_t *choice) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(id));
  json_object_set_new(o, "object", json_string(object));
  json_object_set_new(o, "created", json_integer(created));
  json_object_set_new(o, "model", mq_oai_str(S->alias, strlen(S->alias)));
  json_t *arr = json_array();
  if (choice) json_array_append_new(arr, choice);
  json_object_set_new(o, "choices", arr);
  return o;
}

static json_t *choice_json(int chat, int delta, const char *text, size_t len, const char *role,
                           const char *finish) {
  json_t *ch = json_object();
  json_object_set_new(ch, "index", json_integer(0));
  if (chat) {
    json_t *m = json_object();
    if (role) json_object_set_new(m, "role", json_string(role));
    if (text) json_object_set_new(m, "content", mq_oai_str(text, len));
    json_object_set_new(ch, delta ? "delta" : "message", m);
  } else {
    json_object_set_new(ch, "text", mq_oai_str(text ? text : "", text ? len : 0));
  }
  json_object_set_new(ch, "logprobs", json_null());
  json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
  return ch;
}

/* Render and encode the chat messages. */
static int chat_prompt(mq_server *S, const mq_oai_req *r, int32_t **ids, int *n, mq_oai_err *e) {
  char *text = NULL;
  size_t len = 0;
  mq_err err = {0};
  pthread_mutex_lock(&S->tmpl_mu);
  int rc = mq_chat_template_apply(S->tmpl, r->msgs, r->n_msgs, 1, &text, &len, &err);
  pthread_mutex_unlock(&S->tmpl_mu);
  if (rc != MQ_OK)
    return mq_oai_fail(e, 400, "invalid_request_error", "messages", "chat template: %s", err.msg);
  /* Templates usually write the BOS token themselves; add it only if not. */
  int add = 1;
  int32_t bos = mq_tokenizer_bos(S->tok);
  size_t pl = 0;
  const char *p = bos >= 0 ? mq_tokenizer_piece(S->tok, bos, &pl) : NULL;
  if (p && pl && len >= pl && !memcmp(text, p, pl)) add = 0;
  rc = mq_tokenizer_encode(S->tok, text, len, add, ids, n, &err);
  free(text);
  if (rc != MQ_OK) return mq_oai_fail(e, 400, "invalid_request_error", "messages", "%s", err.msg);
  return 0;
}

/* Build the job of a parsed request (prompt ids taken over). */
static mq_job *make_job(mq_server *S, mq_oai_req *r, int32_t *ids, int n, mq_oai_err *e) {
  mq_job *j = mq_job_new();
  if (!j) {
    free(ids);
    mq_oai_fail(e, 500, "server_error", NULL, "out of memory");
    return NULL;
  }
  j->prompt = ids;
  j->n_prompt = n;
  int room = S->n_ctx - n;
  j->n_predict = r->max_tokens > 0 && r->max_tokens < room ? r->max_tokens : room;
  j->stop = r->stop;
  j->n_stop = r->n_stop;
  r->stop = NULL;
  r->n_stop = 0;
  j->bias_id = r->bias_id;
  j->bias_val = r->bias_val;
  j->n_bias = r->n_bias;
  r->bias_id = NULL;
  r->bias_val = NULL;
  r->n_bias = 0;
  mq_err err = {0};
  if (mq_sampler_init(&r->sp, S->n_vocab, &j->smp, &err) != MQ_OK ||
      mq_textout_init(&j->out, (const char *const *)j->stop, j->n_stop, mq_job_text_cb, j, &err) !=
          MQ_OK) {
    mq_oai_fail(e, 400, "invalid_request_error", NULL, "%s", err.msg);
    mq_job_unref(j);
    return NULL;
  }
  j->out_ready = 1;
  if (mq_detok_new(S->tok, MQ_DECODE_SKIP_SPECIAL | MQ_DECODE_CONTINUE, &j->dt, &err) != MQ_OK) {
    mq_oai_fail(e, 500, "server_error", NULL, "%s", err.msg);
    mq_job_unref(j);
    return NULL;
  }
  return j;
}

/* Append len bytes to the stream's send buffer. */
static int st_put(stream *st, const char *s, size_t len) {
  if (st->n + len > st->cap) {
    size_t cap = st->cap ? st->cap : 1024;
    while (cap < st->n + len) cap *= 2;
    char *p = realloc(st->buf, cap);
    if (!p) return -1;
    st->buf = p;
    st->cap = cap;
  }
  memcpy(st->buf + st->n, s, len);
  st->n += len;
  return 0;
}

/* "data: <json>\n\n" (o consumed). */
static int st_event(stream *st, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!s) return -1;
  int rc = st_put(st, "data: ", 6) || st_put(st, s, strlen(s)) || st_put(st, "\n\n", 2);
  free(s);
  return rc ? -1 : 0;
}

static json_t *st_chunk(stream *st, json_t *choice) {
  json_t *o = envelope(st->S, st->id, st->chat ? "chat.completion.chunk" : "text_completion",
                       st->created, choice);
  if (st->include_usage) json_object_set_new(o, "usage", json_null());
  return o;
}

/* Produce the next events into st->buf; waits for the scheduler. -1: stop
 * the stream (client gone or out of memory). */
static int st_fill(stream *st) {
  mq_job *j = st->job;
  if (client_gone(st->fd)) { /* checked at every token: cancel within one */
    mq_job_cancel(j);
    return -1;
  }
  if (st->phase == 0) {
    st->phase = 1;
    if (st->chat) /* OpenAI opens with the role */
      return st_event(st, st_chunk(st, choice_json(1, 1, "", 0, "assistant", NULL)));
  }
  /* Nothing sent for keepalive_s (waiting in the queue, a long prompt, tokens
   * without text): send an SSE comment, which clients ignore, so that the
   * idle timeout (ours, or a proxy's) does not cut a healthy stream. */
  double t_wait = mq_srv_now();
  pthread_mutex_lock(&j->mu);
  while (j->n_text == st->sent && j->state != MQ_JOB_DONE) {
    timed_wait(&j->cv, &j->mu, 50); /* woken at every token */
    if (j->n_text != st->sent || j->state == MQ_JOB_DONE) break;
    if (client_gone(st->fd)) {
      pthread_mutex_unlock(&j->mu);
      mq_job_cancel(j);
      return -1;
    }
    if (mq_srv_now() - t_wait >= st->keepalive_s) {
      pthread_mutex_unlock(&j->mu);
      return st_put(st, ": keep-alive\n\n", 14);
    }
  }
  size_t len = j->n_text - st->sent;
  char *text = len ? malloc(len) : NULL;
  if (text) memcpy(text, j->text + st->sent, len);
  int done = j->state == MQ_JOB_DONE;
  pthread_mutex_unlock(&j->mu);
  if (len && !text) return -1;
  int rc = 0;
  if (len) {
    st->sent += len;
    rc = st_event(st, st_chunk(st, choice_json(st->chat, 1, text, len, NULL, NULL)));
    free(text);
  }
  if (done && !rc) { /* the job is done: its fields no longer change */
    if (j->err_status) {
      mq_oai_err e = {.status = j->err_status, .type = j->err_type};
      snprintf(e.msg, sizeof e.msg, "%s", j->err_msg);
      rc = st_event(st, mq_oai_error_json(&e));
    } else {
      rc = st_event(st, st_chunk(st, choice_json(st->chat, 1, NULL, 0, NULL, j->finish_reason)));
      if (!rc && st->include_usage) {
        json_t *o = envelope(st->S, st->id, st->chat ? "chat.completion.chunk" : "text_completion",
                             st->created, NULL);
        json_object_set_new(o, "usage", usage_json(j->n_prompt, j->n_gen));
        json_object_set_new(o, "timings", timings_json(j));
        rc = st_event(st, o);
      }
    }
    if (!rc) rc = st_put(st, "data: [DONE]\n\n", 14);
    st->phase = 2;
  }
  return rc;
}

static ssize_t st_read(void *cls, uint64_t pos, char *out, size_t max) {
  (void)pos;
  stream *st = cls;
  while (st->pos == st->n) {
    if (st->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
    st->pos = st->n = 0;
    if (st_fill(st) < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  size_t k = st->n - st->pos < max ? st->n - st->pos : max;
  memcpy(out, st->buf + st->pos, k);
  st->pos += k;
  return (ssize_t)k;
}

static void st_free(void *cls) {
  stream *st = cls;
  mq_job_cancel(st->job); /* no-op when done; otherwise the client is gone */
  mq_job_unref(st->job);
  free(st->buf);
  free(st);
}

static enum MHD_Result do_generate(req *q, struct MHD_Connection *c, json_t *body, int chat) {
  mq_server *S = q->S;
  mq_oai_req r;
  mq_oai_err e = {0};
  if (mq_oai_parse(body, chat, S->n_vocab, &r, &e)) {
    mq_oai_req_free(&r);
    return send_oai_err(q, c, &e);
  }
  int32_t *ids = NULL;
  int n = 0;
  if (chat) {
    if (chat_prompt(S, &r, &ids, &n, &e)) goto fail;
  } else if (r.prompt_text) {
    mq_err err = {0};
    if (mq_tokenizer_encode(S->tok, r.prompt_text, r.prompt_len, 1, &ids, &n, &err) != MQ_OK) {
      mq_oai_fail(&e, 400, "invalid_request_error", "prompt", "%s", err.msg);
      goto fail;
    }
  } else {
    ids = r.prompt_ids;
    n = r.n_prompt_ids;
    r.prompt_ids = NULL;
  }
  if (n == 0) {
    free(ids);
    mq_oai_fail(&e, 400, "invalid_request_error", chat ? "messages" : "prompt", "the prompt is empty");
    goto fail;
  }
  if (n >= S->n_ctx) {
    free(ids);
    mq_oai_fail(&e, 400, "exceed_context_size_error", chat ? "messages" : "prompt",
                "the prompt is %d tokens long; the context holds %d (a prompt must leave room "
                "for at least one generated token)", n, S->n_ctx);
    e.n_prompt = n;
    e.n_ctx = S->n_ctx;
    goto fail;
  }
  mq_job *j = make_job(S, &r, ids, n, &e);
  if (!j) goto fail;
  int sub = mq_sched_submit(S->sched, j);
  if (sub != 0) {
    mq_job_unref(j);
    if (sub == -1)
      mq_oai_fail(&e, 503, "unavailable_error", NULL,
                  "the server is busy: %d requests are already waiting; retry later", S->o.queue);
    else
      mq_oai_fail(&e, 503, "unavailable_error", NULL, "the server is shutting down");
    goto fail;
  }
  q->job = j; /* the request's reference, released in on_completed */
  char id[48];
  make_id(S, chat ? "chatcmpl" : "cmpl", id, sizeof id);
  long long created = (long long)time(NULL);

  if (r.stream) {
    q->stream = 1;
    stream *st = calloc(1, sizeof *st);
    if (!st) {
      mq_job_cancel(j);
      mq_oai_req_free(&r);
      return send_err(q, c, 500, "server_error", NULL, "out of memory");
    }
    st->S = S;
    st->job = j;
    mq_job_ref(j);
    st->chat = chat;
    st->include_usage = r.include_usage;
    st->fd = q->fd;
    st->keepalive_s = S->o.timeout_s / 2.0 < 15 ? S->o.timeout_s / 2.0 : 15;
    snprintf(st->id, sizeof st->id, "%s", id);
    st->created = created;
    st->n_prompt = n;
    mq_oai_req_free(&r);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, st_read, st, st_free);
    if (!resp) {
      st_free(st);
      return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    q->responded = 1;
    q->status = 200;
    return ok;
  }

  mq_oai_req_free(&r);
  /* wait for the whole reply, watching the client */
  pthread_mutex_lock(&j->mu);
  while (j->state != MQ_JOB_DONE) {
    timed_wait(&j->cv, &j->mu, 50); /* woken at every token */
    if (j->state != MQ_JOB_DONE && client_gone(q->fd)) {
      pthread_mutex_unlock(&j->mu);
      mq_job_cancel(j);
      q->status = 499; /* nginx's "client closed request", for the log */
      return MHD_NO;
    }
  }
  pthread_mutex_unlock(&j->mu);
  if (j->err_status) {
    e.status = j->err_status;
    e.type = j->err_type;
    snprintf(e.msg, sizeof e.msg, "%s", j->err_msg);
    return send_oai_err(q, c, &e);
  }
  json_t *o = envelope(S, id, chat ? "chat.completion" : "text_completion", created,
                       choice_json(chat, 0, j->text ? j->text : "", j->n_text,
                                   chat ? "assistant" : NULL, j->finish_reason));
  json_object_set_new(o, "usage", usage_json(j->n_prompt, j->n_gen));
  json_object_set_new(o, "timings", timings_json(j));
  return send_json(q, c, 200, o);

fail:
  mq_oai_req_free(&r);
  return send_oai_err(q, c, &e);
}

/* ---- MHD callbacks ---- */

static enum MHD_Result dispatch(req *q, struct MHD_Connection *c) {
  switch (q->route) {
  case R_HEALTH: return do_health(q, c);
  case R_MODELS: return do_models(q, c);
  case R_METRICS: return do_metrics(q, c);
  default: break;
  }
  mq_oai_err e = {0};
  json_t *b = parse_body(q, &e);
  if (!b) return send_oai_err(q, c, &e);
  enum MHD_Result ok;
  switch (q->route) {
  case R_TOKENIZE: ok = do_tokenize(q, c, b); break;
  case R_DETOKENIZE: ok = do_detokenize(q, c, b); break;
  case R_CHAT: ok = do_generate(q, c, b, 1); break;
  default: ok = do_generate(q, c, b, 0); break;
  }
  json_decref(b);
  return ok;
}

/* Checks made on the headers alone; MHD_YES with nothing queued: go on. */
static enum MHD_Result first_call(req *q, struct MHD_Connection *c, const char *method) {
  mq_server *S = q->S;
  int ri = -1;
  for (int i = 0; i < N_ROUTES; i++)
    if (!strcmp(q->path, ROUTES[i].path)) ri = i;
  if (ri < 0)
    return send_err(q, c, 404, "not_found_error", NULL, "no endpoint %s %s", q->method, q->path);
  q->route = ROUTES[ri].route;
  int is_post = !strcmp(method, "POST"), is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  if (ROUTES[ri].post ? !is_post : !is_get) {
    struct MHD_Response *r = NULL;
    mq_oai_err e = {.status = 405, .type = "invalid_request_error"};
    snprintf(e.msg, sizeof e.msg, "%s takes %s, not %s", q->path, ROUTES[ri].post ? "POST" : "GET",
             q->method);
    json_t *j = mq_oai_error_json(&e);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s || !(r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE))) {
      free(s);
      return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, ROUTES[ri].post ? "POST" : "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, 405, r);
    MHD_destroy_response(r);
    q->responded = 1;
    q->status = 405;
    return ok;
  }
  if (q->route == R_METRICS && !S->o.metrics)
    return send_err(q, c, 404, "not_found_error", NULL, "metrics are off (start with --metrics)");
  if (ROUTES[ri].auth && !auth_ok(S, c))
    return send_err(q, c, 401, "authentication_error", NULL, "Invalid API Key");
  if (ROUTES[ri].model && !atomic_load(&S->ready))
    return send_err(q, c, 503, "unavailable_error", NULL, "Loading model");
  if (atomic_load(&S->stopping))
    return send_err(q, c, 503, "unavailable_error", NULL, "the server is shutting down");
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl) {
    char *end;
    unsigned long long v = strtoull(cl, &end, 10);
    if (end == cl || *end || v > S->o.max_body)
      return send_err(q, c, 413, "invalid_request_error", NULL,
                      "the request body is larger than %zu bytes", S->o.max_body);
  }
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  mq_server *S = cls;
  req *q = *con_cls;
  if (!q) {
    if (!(q = calloc(1, sizeof *q))) return MHD_NO;
    *con_cls = q;
    q->S = S;
    q->t0 = mq_srv_now();
    q->fd = -1;
    snprintf(q->method, sizeof q->method, "%s", method);
    snprintf(q->path, sizeof q->path, "%s", url);
    for (char *p = q->method; *p; p++) /* both go to the log: no control bytes */
      if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"') *p = '?';
    for (char *p = q->path; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"') *p = '?';
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) q->fd = ci->connect_fd;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
      getnameinfo(ci->client_addr,
                  ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in),
                  q->client, sizeof q->client, NULL, 0, NI_NUMERICHOST);
    return first_call(q, c, method);
  }
  if (q->responded) { /* answered from the headers; the body is ignored */
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size) {
    size_t k = *upload_size;
    if (q->too_big || k > S->o.max_body - q->n) {
      /* A body without Content-Length (chunked) past the limit: read and drop
       * the rest to answer 413 at its end; hang up on one 8 times too long. */
      q->too_big += k;
      *upload_size = 0;
      if (q->too_big / 8 > S->o.max_body) {
        q->status = 413;
        return MHD_NO;
      }
      return MHD_YES;
    }
    if (q->n + k > q->cap) {
      size_t cap = q->cap ? q->cap : 4096;
      while (cap < q->n + k) cap *= 2;
      if (cap > S->o.max_body) cap = S->o.max_body;
      char *p = realloc(q->body, cap);
      if (!p) return MHD_NO;
      q->body = p;
      q->cap = cap;
    }
    memcpy(q->body + q->n, upload, k);
    q->n += k;
    *upload_size = 0;
    return MHD_YES;
  }
  if (q->too_big)
    return send_err(q, c, 413, "invalid_request_error", NULL,
                    "the request body is larger than %zu bytes", S->o.max_body);
  return dispatch(q, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)c;
  mq_server *S = cls;
  req *q = *con_cls;
  if (!q) return;
  *con_cls = NULL;
  int status = q->status ? q->status : 500;
  pthread_mutex_lock(&S->st_mu);
  if (status / 100 < 6) S->http_by_class[status / 100]++;
  pthread_mutex_unlock(&S->st_mu);
  char extra[160] = "";
  if (q->job) {
    mq_job *j = q->job;
    int cancelled = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (cancelled) mq_job_cancel(j);
    pthread_mutex_lock(&j->mu);
    snprintf(extra, sizeof extra, " prompt=%d completion=%d finish=%s%s%s", j->n_prompt, j->n_gen,
             j->state != MQ_JOB_DONE ? (cancelled ? "cancelled" : "pending") : j->err_status ? "error" : j->finish_reason,
             q->stream ? " stream" : "", cancelled ? " client-gone" : "");
    pthread_mutex_unlock(&j->mu);
    mq_job_unref(j);
  } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
    snprintf(extra, sizeof extra, " aborted");
  }
  logf_("%s \"%s %s\" %d %.1f ms%s", q->client[0] ? q->client : "-", q->method, q->path, status,
        (mq_srv_now() - q->t0) * 1e3, extra);
  free(q->body);
  free(q);
}

/* ---- life cycle ---- */

static void free_server(mq_server *S) {
  for (int i = 0; i < S->n_keys; i++) free(S->keys[i]);
  free(S->keys);
  free(S->key_len);
  free(S->host);
  free(S->alias);
  free(S->models_json);
  mq_chat_template_free(S->tmpl);
  pthread_mutex_destroy(&S->tmpl_mu);
  pthread_mutex_destroy(&S->st_mu);
  free(S);
}

static int fail(mq_err *err, int code, const char *msg) {
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  return code;
}

int mq_server_start(const mq_server_opts *o, mq_server **out, mq_err *err) {
  *out = NULL;
  if (o->parallel < 1 || o->queue < 1 || o->max_body < 1 || o->port < 0 || o->port > 65535)
    return fail(err, MQ_ERR_ARG, "serve: bad options");
  mq_server *S = calloc(1, sizeof *S);
  if (!S) return fail(err, MQ_ERR_NOMEM, "out of memory");
  S->o = *o;
  pthread_mutex_init(&S->tmpl_mu, NULL);
  pthread_mutex_init(&S->st_mu, NULL);
  S->host = strdup(o->host ? o->host : "127.0.0.1");
  S->alias = strdup(o->alias ? o->alias : "model");
  S->created = (long long)time(NULL);
  S->id_salt = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid() ^
               (unsigned long long)(uintptr_t)S;
  if (o->n_api_keys > 0) {
    S->keys = calloc((size_t)o->n_api_keys, sizeof *S->keys);
    S->key_len = calloc((size_t)o->n_api_keys, sizeof *S->key_len);
  }
  int ok = S->host && S->alias && (o->n_api_keys <= 0 || (S->keys && S->key_len));
  for (int i = 0; ok && i < o->n_api_keys; i++) {
    ok = (S->keys[i] = strdup(o->api_keys[i])) != NULL;
    if (ok) S->key_len[i] = strlen(S->keys[i]);
    S->n_keys = i + 1;
  }
  if (!ok) {
    free_server(S);
    return fail(err, MQ_ERR_NOMEM, "out of memory");
  }
  S->o.host = S->host;
  S->o.alias = S->alias;
  S->o.api_keys = NULL;
  if (S->o.timeout_s <= 0) S->o.timeout_s = 600;

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  char port[16];
  snprintf(port, sizeof port, "%d", o->port);
  int gr = getaddrinfo(S->host, port, &hints, &ai);
  if (gr != 0 || !ai) {
    char msg[256];
    snprintf(msg, sizeof msg, "serve: cannot resolve host '%s': %s", S->host, gai_strerror(gr));
    free_server(S);
    return fail(err, MQ_ERR_ARG, msg);
  }
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  /* threads: one per connection, so connections are bounded; enough for every
   * slot and queued request plus a margin for cheap endpoints */
  unsigned limit = (unsigned)(2 * (o->parallel + o->queue) + 32);
  S->d = MHD_start_daemon(
      flags, (uint16_t)o->port, NULL, NULL, on_request, S, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, S,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, S, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)S->o.timeout_s, MHD_OPTION_CONNECTION_LIMIT, limit,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!S->d) {
    char msg[256];
    snprintf(msg, sizeof msg, "serve: cannot listen on %s port %d (in use, or not an address of "
             "this machine?)", S->host, o->port);
    free_server(S);
    return fail(err, MQ_ERR_IO, msg);
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(S->d, MHD_DAEMON_INFO_BIND_PORT);
  S->port = di ? di->port : o->port;
  *out = S;
  return MQ_OK;
}

int mq_server_port(const mq_server *S) { return S->port; }

/* The /v1/models body: one model, with llama.cpp's "meta" plus the
 * quantization summary (method, layers per scheme, bits per weight). */
static char *models_body(mq_server *S) {
  mq_model_info info;
  mq_model_get_info(S->m, &info);
  json_t *schemes = json_object(), *formats = json_object();
  unsigned long long lin_params = 0, lin_bytes = 0;
  int nl = mq_model_n_linears(S->m);
  for (int i = 0; i < nl; i++) {
    mq_linear_info li;
    if (mq_model_linear(S->m, i, &li) != MQ_OK) continue;
    const char *sc = li.scheme ? li.scheme : "?", *wf = li.weight_format ? li.weight_format : "?";
    json_t *v = json_object_get(schemes, sc);
    json_object_set_new(schemes, sc, json_integer(v ? json_integer_value(v) + 1 : 1));
    v = json_object_get(formats, wf);
    json_object_set_new(formats, wf, json_integer(v ? json_integer_value(v) + 1 : 1));
    if (li.bytes) {
      lin_params += (unsigned long long)li.n_out * (unsigned long long)li.n_in;
      lin_bytes += li.bytes;
    }
  }
  json_t *qz = json_object();
  json_object_set_new(qz, "method", json_string(info.quant_method ? info.quant_method : "none"));
  json_object_set_new(qz, "schemes", schemes);
  json_object_set_new(qz, "weight_formats", formats);
  json_object_set_new(qz, "n_linears", json_integer(nl));
  json_object_set_new(qz, "bits_per_weight",
                      json_real(lin_params ? 8.0 * (double)lin_bytes / (double)lin_params : 0));
  json_t *meta = json_object();
  json_object_set_new(meta, "arch", json_string(info.arch ? info.arch : "?"));
  json_object_set_new(meta, "n_vocab", json_integer(info.n_vocab));
  json_object_set_new(meta, "n_ctx_train", json_integer(info.n_ctx_train));
  json_object_set_new(meta, "n_ctx", json_integer(S->n_ctx));
  json_object_set_new(meta, "n_embd", json_integer(info.n_embd));
  json_object_set_new(meta, "n_layer", json_integer(info.n_layer));
  json_object_set_new(meta, "n_params", json_integer((json_int_t)info.n_params));
  json_object_set_new(meta, "size", json_integer((json_int_t)info.n_bytes));
  json_object_set_new(meta, "parallel", json_integer(S->o.parallel));
  json_object_set_new(meta, "chat_template", json_string(mq_chat_template_kind(S->tmpl)));
  json_object_set_new(meta, "quantization", qz);
  json_t *mo = json_object();
  json_object_set_new(mo, "id", mq_oai_str(S->alias, strlen(S->alias)));
  json_object_set_new(mo, "object", json_string("model"));
  json_object_set_new(mo, "created", json_integer(S->created));
  json_object_set_new(mo, "owned_by", json_string("mixq"));
  json_object_set_new(mo, "meta", meta);
  json_t *data = json_array();
  json_array_append_new(data, mo);
  json_t *o = json_object();
  json_object_set_new(o, "object", json_string("list"));
  json_object_set_new(o, "data", data);
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

int mq_server_attach(mq_server *S, const mq_model *m, const mq_tokenizer *tok, mq_err *err) {
  mq_model_info info;
  mq_model_get_info(m, &info);
  S->m = m;
  S->tok = tok;
  S->n_vocab = info.n_vocab;
  S->n_tok_vocab = mq_tokenizer_n_vocab(tok);
  int rc = mq_chat_template_init(tok, S->o.chat_template, &S->tmpl, err);
  if (rc != MQ_OK) {
    if (S->o.chat_template) return rc;
    logf_("chat template: %s; using chatml (choose one with --chat-template)", err ? err->msg : "");
    if ((rc = mq_chat_template_init(tok, "chatml", &S->tmpl, err)) != MQ_OK) return rc;
  }
  rc = mq_sched_init(m, tok, S->o.parallel, S->o.queue, &S->o.session, &S->sched, err);
  if (rc != MQ_OK) return rc;
  S->n_ctx = mq_sched_n_ctx(S->sched);
  if (!(S->models_json = models_body(S))) return fail(err, MQ_ERR_NOMEM, "out of memory");
  atomic_store(&S->ready, 1);
  return MQ_OK;
}

void mq_server_stop(mq_server *S) {
  if (!S) return;
  atomic_store(&S->stopping, 1);
  MHD_socket ls = MHD_quiesce_daemon(S->d); /* no new connections */
  if (S->sched) mq_sched_stop(S->sched);    /* running and queued jobs end with a 503 */
  MHD_stop_daemon(S->d);                    /* joins the connection threads */
  if (ls != MHD_INVALID_SOCKET) close(ls);
  mq_sched_free(S->sched);
  free_server(S);
}
