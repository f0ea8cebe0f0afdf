/* OpenAI request parsing (see oai.h). */
#include "server/oai.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mq_oai_fail(mq_oai_err *e, int status, const char *type, const char *param, const char *fmt,
                ...) {
  e->status = status;
  e->type = type;
  snprintf(e->param, sizeof e->param, "%s", param ? param : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return -1;
}

#define BAD(param, ...) mq_oai_fail(e, 400, "invalid_request_error", param, __VA_ARGS__)

json_t *mq_oai_str(const char *s, size_t len) {
  json_t *j = json_stringn(s ? s : "", s ? len : 0);
  return j ? j : json_string("");
}

json_t *mq_oai_error_json(const mq_oai_err *e) {
  json_t *in = json_object();
  json_object_set_new(in, "code", json_integer(e->status));
  json_object_set_new(in, "message", mq_oai_str(e->msg, strlen(e->msg)));
  json_object_set_new(in, "type", json_string(e->type ? e->type : "server_error"));
  json_object_set_new(in, "param", e->param[0] ? json_string(e->param) : json_null());
  if (e->type && !strcmp(e->type, "exceed_context_size_error")) {
    json_object_set_new(in, "n_prompt_tokens", json_integer(e->n_prompt));
    json_object_set_new(in, "n_ctx", json_integer(e->n_ctx));
  }
  json_t *o = json_object();
  json_object_set_new(o, "error", in);
  return o;
}

int mq_oai_check_depth(const char *b, size_t n, int max_depth) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return -1;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 0;
}

/* ---- typed field access: absent or null leaves *out unchanged ---- */

static const json_t *field(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return v && !json_is_null(v) ? v : NULL;
}

static int get_real(const json_t *o, const char *k, double lo, double hi, float *out,
                    mq_oai_err *e) {
  const json_t *v = field(o, k);
  if (!v) return 0;
  if (!json_is_number(v)) return BAD(k, "'%s' must be a number", k);
  double d = json_number_value(v);
  if (!isfinite(d) || d < lo || d > hi) return BAD(k, "'%s' must be in [%g, %g]", k, lo, hi);
  *out = (float)d;
  return 0;
}

static int get_int(const json_t *o, const char *k, long long lo, long long hi, long long *out,
                   mq_oai_err *e) {
  const json_t *v = field(o, k);
  if (!v) return 0;
  if (!json_is_integer(v)) return BAD(k, "'%s' must be an integer", k);
  long long x = json_integer_value(v);
  if (x < lo || x > hi) return BAD(k, "'%s' must be in [%lld, %lld]", k, lo, hi);
  *out = x;
  return 0;
}

static int get_bool(const json_t *o, const char *k, int *out, mq_oai_err *e) {
  const json_t *v = field(o, k);
  if (!v) return 0;
  if (!json_is_boolean(v)) return BAD(k, "'%s' must be true or false", k);
  *out = json_is_true(v);
  return 0;
}

static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

#define NOMEM() mq_oai_fail(e, 500, "server_error", NULL, "out of memory")

/* ---- parts of a request ---- */

static int parse_stop(const json_t *o, mq_oai_req *r, mq_oai_err *e) {
  const json_t *v = field(o, "stop");
  if (!v) return 0;
  size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
  if (!json_is_string(v) && !json_is_array(v))
    return BAD("stop", "'stop' must be a string or an array of strings");
  if (n > MQ_MAX_STOP) return BAD("stop", "at most %d stop strings are allowed", MQ_MAX_STOP);
  if (n == 0) return 0;
  if (!(r->stop = calloc(n, sizeof *r->stop))) return NOMEM();
  for (size_t i = 0; i < n; i++) {
    const json_t *s = json_is_string(v) ? v : json_array_get(v, i);
    if (!json_is_string(s)) return BAD("stop", "'stop' must be a string or an array of strings");
    size_t len = json_string_length(s);
    if (len > MQ_MAX_STOP_LEN)
      return BAD("stop", "a stop string is %zu bytes long; at most %d are allowed", len,
                 MQ_MAX_STOP_LEN);
    if (!(r->stop[i] = dupn(json_string_value(s), len))) return NOMEM();
    r->n_stop = (int)i + 1;
  }
  return 0;
}

static int parse_bias(const json_t *o, int n_vocab, mq_oai_req *r, mq_oai_err *e) {
  const json_t *v = field(o, "logit_bias");
  if (!v) return 0;
  if (!json_is_object(v)) return BAD("logit_bias", "'logit_bias' must be an object");
  size_t n = json_object_size(v);
  if (n == 0) return 0;
  if (n > MQ_OAI_MAX_BIAS)
    return BAD("logit_bias", "at most %d logit_bias entries are allowed", MQ_OAI_MAX_BIAS);
  r->bias_id = calloc(n, sizeof *r->bias_id);
  r->bias_val = calloc(n, sizeof *r->bias_val);
  if (!r->bias_id || !r->bias_val) return NOMEM();
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)v, key, val) {
    char *end;
    long id = strtol(key, &end, 10);
    if (!*key || *end || id < 0 || id >= n_vocab)
      return BAD("logit_bias", "logit_bias key '%.32s' is not a token id in [0, %d)", key, n_vocab);
    if (!json_is_number(val) || !isfinite(json_number_value(val)) ||
        fabs(json_number_value(val)) > 100)
      return BAD("logit_bias", "logit_bias values must be numbers in [-100, 100]");
    r->bias_id[r->n_bias] = (int32_t)id;
    r->bias_val[r->n_bias] = (float)json_number_value(val);
    r->n_bias++;
  }
  return 0;
}

/* An array of token ids, each in [0, n_vocab). */
static int parse_ids(const json_t *a, int n_vocab, mq_oai_req *r, mq_oai_err *e) {
  size_t n = json_array_size(a);
  if (n == 0) return BAD("prompt", "the prompt is empty");
  if (n > (size_t)INT_MAX / 4) return BAD("prompt", "the prompt is too long");
  if (!(r->prompt_ids = malloc(n * sizeof *r->prompt_ids))) return NOMEM();
  for (size_t i = 0; i < n; i++) {
    const json_t *t = json_array_get(a, i);
    if (!json_is_integer(t)) return BAD("prompt", "prompt token %zu is not an integer", i);
    json_int_t id = json_integer_value(t);
    if (id < 0 || id >= n_vocab)
      return BAD("prompt", "prompt token %zu (%lld) is outside the vocabulary [0, %d)", i,
                 (long long)id, n_vocab);
    r->prompt_ids[i] = (int32_t)id;
  }
  r->n_prompt_ids = (int)n;
  return 0;
}

static int all_integers(const json_t *a) {
  for (size_t i = 0; i < json_array_size(a); i++)
    if (!json_is_integer(json_array_get(a, i))) return 0;
  return 1;
}

static int parse_prompt(const json_t *o, int n_vocab, mq_oai_req *r, mq_oai_err *e) {
  const json_t *v = field(o, "prompt");
  if (!v) return BAD("prompt", "'prompt' is required");
  if (json_is_array(v) && json_array_size(v) == 1 && !json_is_integer(json_array_get(v, 0)))
    v = json_array_get(v, 0); /* ["text"] or [[ids]] */
  else if (json_is_array(v) && json_array_size(v) > 1 && !all_integers(v))
    return BAD("prompt", "one prompt per request: send a string or an array of token ids");
  if (json_is_string(v)) {
    r->prompt_len = json_string_length(v);
    if (!(r->prompt_text = dupn(json_string_value(v), r->prompt_len))) return NOMEM();
    return 0;
  }
  if (json_is_array(v)) {
    if (!all_integers(v))
      return BAD("prompt", "'prompt' must be a string or an array of token ids");
    return parse_ids(v, n_vocab, r, e);
  }
  return BAD("prompt", "'prompt' must be a string or an array of token ids");
}

static int parse_content(const json_t *c, size_t i, mq_chat_msg *m, mq_oai_err *e) {
  if (json_is_string(c)) {
    m->content = dupn(json_string_value(c), json_string_length(c));
    return m->content ? 0 : NOMEM();
  }
  if (!json_is_array(c))
    return BAD("messages", "messages[%zu].content must be a string or an array of parts", i);
  size_t total = 0;
  for (size_t k = 0; k < json_array_size(c); k++) {
    const json_t *p = json_array_get(c, k), *type = json_object_get(p, "type"),
                 *text = json_object_get(p, "text");
    if (!json_is_object(p) || !json_is_string(type))
      return BAD("messages", "messages[%zu].content[%zu] must be an object with a 'type'", i, k);
    if (strcmp(json_string_value(type), "text") != 0)
      return BAD("messages", "messages[%zu].content[%zu]: content parts of type '%.40s' are not "
                 "supported (text only)", i, k, json_string_value(type));
    if (!json_is_string(text))
      return BAD("messages", "messages[%zu].content[%zu].text must be a string", i, k);
    total += json_string_length(text) + 1;
  }
  char *s = malloc(total + 1), *w = s;
  if (!s) return NOMEM();
  for (size_t k = 0; k < json_array_size(c); k++) { /* parts joined by newlines */
    const json_t *text = json_object_get(json_array_get(c, k), "text");
    if (k) *w++ = '\n';
    memcpy(w, json_string_value(text), json_string_length(text));
    w += json_string_length(text);
  }
  *w = 0;
  m->content = s;
  return 0;
}

static int parse_messages(const json_t *o, mq_oai_req *r, mq_oai_err *e) {
  const json_t *v = field(o, "messages");
  if (!v) return BAD("messages", "'messages' is required");
  if (!json_is_array(v)) return BAD("messages", "'messages' must be an array");
  size_t n = json_array_size(v);
  if (n == 0) return BAD("messages", "'messages' is empty");
  if (n > MQ_OAI_MAX_MESSAGES)
    return BAD("messages", "at most %d messages are allowed", MQ_OAI_MAX_MESSAGES);
  if (!(r->msgs = calloc(n, sizeof *r->msgs))) return NOMEM();
  static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};
  for (size_t i = 0; i < n; i++) {
    const json_t *m = json_array_get(v, i), *role = json_object_get(m, "role");
    if (!json_is_object(m)) return BAD("messages", "messages[%zu] must be an object", i);
    if (!json_is_string(role)) return BAD("messages", "messages[%zu].role must be a string", i);
    const char *rs = json_string_value(role);
    size_t k = 0;
    while (k < sizeof roles / sizeof *roles && strcmp(rs, roles[k])) k++;
    if (k == sizeof roles / sizeof *roles)
      return BAD("messages", "messages[%zu].role '%.40s' is not one of system, user, assistant, "
                 "tool, developer", i, rs);
    r->n_msgs = (int)i + 1;
    /* "developer" is OpenAI's newer name for the system role */
    if (!(r->msgs[i].role = dupn(k == 4 ? "system" : rs, strlen(k == 4 ? "system" : rs))))
      return NOMEM();
    const json_t *c = json_object_get(m, "content");
    if (!c || json_is_null(c)) {
      if (strcmp(rs, "assistant") != 0)
        return BAD("messages", "messages[%zu].content is required", i);
      if (json_array_size(json_object_get(m, "tool_calls")) > 0)
        return BAD("messages", "messages[%zu]: tool calls are not supported", i);
      if (!(r->msgs[i].content = dupn("", 0))) return NOMEM();
    } else if (parse_content(c, i, &r->msgs[i], e)) {
      return -1;
    }
  }
  return 0;
}

/* Fields of the OpenAI API that mixq does not implement: refuse them
 * clearly rather than silently ignore what the client asked for. */
static int refuse_unsupported(const json_t *o, int chat, mq_oai_err *e) {
  const json_t *v;
  long long n = 1;
  if (get_int(o, "n", 1, 1 << 30, &n, e)) return -1;
  if (n != 1) return BAD("n", "only one choice per request is supported (n must be 1)");
  if (get_int(o, "best_of", 1, 1 << 30, &n, e)) return -1;
  if (n != 1) return BAD("best_of", "best_of must be 1");
  if ((v = field(o, "logprobs"))) {
    if (chat ? !json_is_boolean(v) : !json_is_integer(v))
      return BAD("logprobs", chat ? "'logprobs' must be true or false" : "'logprobs' must be an integer");
    if (chat ? json_is_true(v) : json_integer_value(v) > 0)
      return BAD("logprobs", "logprobs are not supported");
  }
  long long tl = 0;
  if (get_int(o, "top_logprobs", 0, 20, &tl, e)) return -1;
  if (tl > 0) return BAD("top_logprobs", "logprobs are not supported");
  int echo = 0;
  if (get_bool(o, "echo", &echo, e)) return -1;
  if (echo) return BAD("echo", "echo is not supported");
  if ((v = field(o, "suffix"))) {
    if (!json_is_string(v)) return BAD("suffix", "'suffix' must be a string");
    if (json_string_length(v) > 0) return BAD("suffix", "suffix is not supported");
  }
  if ((v = field(o, "tools"))) {
    if (!json_is_array(v)) return BAD("tools", "'tools' must be an array");
    if (json_array_size(v) > 0) return BAD("tools", "tools are not supported");
  }
  if ((v = field(o, "functions")) && json_array_size(v) > 0)
    return BAD("functions", "functions are not supported");
  if ((v = field(o, "response_format"))) {
    const json_t *t = json_object_get(v, "type");
    if (!json_is_object(v) || !json_is_string(t))
      return BAD("response_format", "'response_format' must be an object with a 'type'");
    if (strcmp(json_string_value(t), "text") != 0)
      return BAD("response_format", "response_format '%.40s' is not supported (text only)",
                 json_string_value(t));
  }
  if ((v = field(o, "model")) && !json_is_string(v))
    return BAD("model", "'model' must be a string");
  return 0;
}

int mq_oai_parse(const json_t *o, int chat, int n_vocab, mq_oai_req *r, mq_oai_err *e) {
  memset(r, 0, sizeof *r);
  r->chat = chat;
  r->max_tokens = -1;
  mq_sampler_params_default(&r->sp);
  if (!json_is_object(o)) return BAD(NULL, "the request body must be a JSON object");
  if (refuse_unsupported(o, chat, e)) return -1;
  if (get_bool(o, "stream", &r->stream, e)) return -1;
  const json_t *so = field(o, "stream_options");
  if (so) {
    if (!json_is_object(so)) return BAD("stream_options", "'stream_options' must be an object");
    if (get_bool(so, "include_usage", &r->include_usage, e)) return -1;
  }
  /* max_completion_tokens is the newer name; either may be given */
  long long mt = -1;
  if (get_int(o, "max_tokens", 1, INT_MAX, &mt, e)) return -1;
  if (get_int(o, "max_completion_tokens", 1, INT_MAX, &mt, e)) return -1;
  r->max_tokens = (int)mt;
  mq_sampler_params *sp = &r->sp;
  long long top_k = sp->top_k, last_n = sp->repeat_last_n, seed = -1;
  if (get_real(o, "temperature", 0, 2, &sp->temperature, e) ||
      get_real(o, "top_p", 0, 1, &sp->top_p, e) || get_int(o, "top_k", -1, 1 << 30, &top_k, e) ||
      get_real(o, "min_p", 0, 1, &sp->min_p, e) ||
      get_real(o, "presence_penalty", -2, 2, &sp->presence_penalty, e) ||
      get_real(o, "frequency_penalty", -2, 2, &sp->frequency_penalty, e) ||
      get_real(o, "repetition_penalty", 1e-3, 10, &sp->repeat_penalty, e) ||
      get_real(o, "repeat_penalty", 1e-3, 10, &sp->repeat_penalty, e) ||
      get_int(o, "repeat_last_n", -1, 1 << 24, &last_n, e) ||
      get_int(o, "seed", -1, LLONG_MAX, &seed, e))
    return -1;
  sp->top_k = (int)top_k;
  sp->repeat_last_n = (int)last_n;
  sp->seed = seed < 0 ? MQ_SEED_RANDOM : (uint64_t)seed;
  if (parse_stop(o, r, e) || parse_bias(o, n_vocab, r, e)) return -1;
  return chat ? parse_messages(o, r, e) : parse_prompt(o, n_vocab, r, e);
}

void mq_oai_req_free(mq_oai_req *r) {
  for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
  free(r->stop);
  free(r->bias_id);
  free(r->bias_val);
  free(r->prompt_text);
  free(r->prompt_ids);
  for (int i = 0; i < r->n_msgs; i++) {
    free((char *)r->msgs[i].role);
    free((char *)r->msgs[i].content);
  }
  free(r->msgs);
  memset(r, 0, sizeof *r);
}
