/* Chat templates: recognised families rendered natively, the rest through
 * the Jinja-subset interpreter. See chat.h. The native renderings follow the
 * families' published templates as Hugging Face renders them (trim_blocks,
 * lstrip_blocks) for role/content messages. */
#include "tokenizer/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tok_impl.h"

enum { K_CHATML, K_LLAMA3, K_LLAMA2, K_MISTRAL, K_JINJA };
static const char *const KIND_NAMES[] = {"chatml", "llama3", "llama2", "mistral", "jinja"};

struct mq_chat_template {
  int kind;
  char *bos, *eos;      /* token texts ("" when none) */
  char *default_system; /* chatml: system prompt used when the messages have none */
  int qwen_tools;       /* chatml: "tool" turns as <tool_response> inside a user turn */
  int qwen3_think;      /* chatml: Qwen3's <think> handling */
  int llama31;          /* llama3: "Cutting Knowledge Date" system block */
  int llama3_now;       /* llama3: today's date (strftime_now) instead of 26 Jul 2024 */
  mq_jinja *jinja;
};

/* ---- the tokenizer's template source ---- */
const char *mq_tokenizer_chat_template(const mq_tokenizer *t) {
  return t ? t->chat_template : NULL;
}

int mq_tok_set_chat_template(mq_tokenizer *t, const char *src, size_t len, mq_err *err) {
  free(t->chat_template);
  t->chat_template = NULL;
  if (!src || !len) return MQ_OK;
  if (!(t->chat_template = malloc(len + 1))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  memcpy(t->chat_template, src, len);
  t->chat_template[len] = 0;
  return MQ_OK;
}

/* ---- construction ---- */
static char *token_text(const mq_tokenizer *tok, int32_t id) {
  size_t n = 0;
  const char *p = tok && id >= 0 ? mq_tokenizer_piece(tok, id, &n) : NULL;
  char *s = malloc(n + 1);
  if (s) {
    if (p && n) memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

static int new_template(const mq_tokenizer *tok, int kind, mq_chat_template **out, mq_err *err) {
  mq_chat_template *t = calloc(1, sizeof *t);
  if (!t) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  t->kind = kind;
  t->bos = token_text(tok, tok ? mq_tokenizer_bos(tok) : -1);
  t->eos = token_text(tok, tok ? mq_tokenizer_eos(tok) : -1);
  if (!t->bos || !t->eos) {
    mq_chat_template_free(t);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  *out = t;
  return MQ_OK;
}

void mq_chat_template_free(mq_chat_template *t) {
  if (!t) return;
  free(t->bos);
  free(t->eos);
  free(t->default_system);
  mq_jinja_free(t->jinja);
  free(t);
}

const char *mq_chat_template_kind(const mq_chat_template *t) { return KIND_NAMES[t->kind]; }

static const char *find_n(const char *h, size_t hn, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= hn; i++)
    if (h[i] == needle[0] && !memcmp(h + i, needle, n)) return h + i;
  return NULL;
}

/* ChatML: the literal system prompt a template writes when the messages
 * bring none: '<|im_start|>system\n' + TEXT + '<|im_end|>' inside one string
 * literal. */
static int chatml_default_system(const char *src, size_t len, char **out) {
  *out = NULL;
  static const char head[] = "<|im_start|>system";
  for (const char *at = src; (at = find_n(at, len - (size_t)(at - src), head)) != NULL; at++) {
    const char *p = at + sizeof head - 1, *end = src + len;
    if (end - p >= 2 && p[0] == '\\' && p[1] == 'n')
      p += 2;
    else if (p < end && p[0] == '\n')
      p += 1;
    else
      continue;
    const char *stop = find_n(p, (size_t)(end - p), "<|im_end|>");
    if (!stop) break;
    size_t n = (size_t)(stop - p);
    if (n == 0 || memchr(p, '\'', n) || memchr(p, '"', n) || memchr(p, '{', n) || memchr(p, '}', n))
      continue;
    char *s = malloc(n + 1), *o = s;
    if (!s) return -1;
    for (size_t i = 0; i < n; i++) { /* the literal's escapes */
      if (p[i] == '\\' && i + 1 < n && (p[i + 1] == 'n' || p[i + 1] == 't' || p[i + 1] == '\\')) {
        *o++ = p[i + 1] == 'n' ? '\n' : p[i + 1] == 't' ? '\t' : '\\';
        i++;
      } else {
        *o++ = p[i];
      }
    }
    *o = 0;
    *out = s;
    return 0;
  }
  return 0;
}

int mq_chat_template_parse_jinja(const char *src, size_t len, const mq_tokenizer *tok,
                                 mq_chat_template **out, mq_err *err) {
  *out = NULL;
  mq_jinja *j = NULL;
  int rc = mq_jinja_parse(src, len, &j, err);
  if (rc != MQ_OK) return rc;
  if ((rc = new_template(tok, K_JINJA, out, err)) != MQ_OK) {
    mq_jinja_free(j);
    return rc;
  }
  (*out)->jinja = j;
  return MQ_OK;
}

int mq_chat_template_parse(const char *src, size_t len, const mq_tokenizer *tok,
                           mq_chat_template **out, mq_err *err) {
  *out = NULL;
  if (!src) return mq_errf(err, MQ_ERR_ARG, "chat template: no source");
  int kind = -1;
  if (find_n(src, len, "<|im_start|>"))
    kind = K_CHATML;
  else if (find_n(src, len, "<|start_header_id|>"))
    kind = K_LLAMA3;
  else if (find_n(src, len, "[INST]") && find_n(src, len, "<<SYS>>"))
    kind = K_LLAMA2;
  if (kind < 0) {
    int rc = mq_chat_template_parse_jinja(src, len, tok, out, err);
    if (rc == MQ_OK || !find_n(src, len, "[INST]")) return rc;
    kind = K_MISTRAL; /* an [INST] template beyond the subset: the native Mistral format */
  }
  int rc = new_template(tok, kind, out, err);
  if (rc != MQ_OK) return rc;
  mq_chat_template *t = *out;
  if (kind == K_CHATML) {
    if (chatml_default_system(src, len, &t->default_system) != 0) {
      mq_chat_template_free(t);
      *out = NULL;
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    }
    t->qwen_tools = find_n(src, len, "<tool_response>") != NULL;
    t->qwen3_think = find_n(src, len, "</think>") != NULL;
  } else if (kind == K_LLAMA3) {
    t->llama31 = find_n(src, len, "Cutting Knowledge Date") != NULL;
    t->llama3_now = find_n(src, len, "strftime_now") != NULL;
  }
  return MQ_OK;
}

int mq_chat_template_init(const mq_tokenizer *tok, const char *name, mq_chat_template **out,
                          mq_err *err) {
  *out = NULL;
  if (name) {
    for (int k = 0; k < K_JINJA; k++)
      if (!strcmp(name, KIND_NAMES[k])) return new_template(tok, k, out, err);
    return mq_errf(err, MQ_ERR_ARG,
                   "unknown chat template '%s' (built in: chatml, llama3, llama2, mistral)", name);
  }
  const char *src = mq_tokenizer_chat_template(tok);
  if (!src)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "the tokenizer has no chat template (no \"chat_template\" in "
                   "tokenizer_config.json); name one: chatml, llama3, llama2 or mistral");
  return mq_chat_template_parse(src, strlen(src), tok, out, err);
}

/* ---- native renderings ---- */
typedef struct rb {
  mq_bbuf b;
  int oom;
} rb;

static void put(rb *o, const char *s, size_t n) {
  if (!o->oom && mq_bbuf_add(&o->b, s, n) != 0) o->oom = 1;
}
static void puts_(rb *o, const char *s) { put(o, s, strlen(s)); }

static const char *content_of(const mq_chat_msg *m) { return m->content ? m->content : ""; }
static int role_is(const mq_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }

/* Python's str.strip() / lstrip() / rstrip() for ASCII white space and the
 * characters in chars (NULL: white space). */
static int strip_ch(char c, const char *chars) {
  return chars ? strchr(chars, c) != NULL && c != 0
               : c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static void span_strip(const char **s, size_t *n, const char *chars, int left, int right) {
  while (left && *n && strip_ch(**s, chars)) ++*s, --*n;
  while (right && *n && strip_ch((*s)[*n - 1], chars)) --*n;
}

static void put_stripped(rb *o, const char *s, const char *chars, int left, int right) {
  size_t n = strlen(s);
  span_strip(&s, &n, chars, left, right);
  put(o, s, n);
}

static const char *rfind(const char *s, const char *needle) {
  const char *last = NULL;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) last = p;
  return last;
}

/* Qwen3's assistant turn: content.split('</think>') and the reasoning block. */
static void qwen3_assistant(rb *o, const char *c, int after_query, int last) {
  const char *reason = "", *body = c;
  size_t rn = 0, bn = strlen(c);
  const char *close = strstr(c, "</think>");
  if (close) {
    /* reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
    size_t head = (size_t)(close - c);
    while (head && c[head - 1] == '\n') head--;
    const char *open = NULL;
    for (const char *p = c; (p = strstr(p, "<think>")) != NULL && p + 7 <= c + head; p++) open = p;
    reason = open ? open + 7 : c;
    rn = (size_t)(c + head - reason);
    while (rn && *reason == '\n') reason++, rn--;
    /* content = content.split('</think>')[-1].lstrip('\n') */
    body = rfind(c, "</think>") + 8;
    bn = strlen(body);
    while (bn && *body == '\n') body++, bn--;
  }
  puts_(o, "<|im_start|>assistant\n");
  if (after_query && (last || rn)) {
    puts_(o, "<think>\n");
    span_strip(&reason, &rn, "\n", 1, 1);
    put(o, reason, rn);
    puts_(o, "\n</think>\n\n");
    span_strip(&body, &bn, "\n", 1, 0);
  }
  put(o, body, bn);
}

static int is_tool_response(const char *c) {
  size_t n = strlen(c);
  return !strncmp(c, "<tool_response>", 15) && n >= 16 && !strcmp(c + n - 16, "</tool_response>");
}

static void render_chatml(const mq_chat_template *t, const mq_chat_msg *m, int n, int gen, rb *o) {
  int first = 0;
  if (n > 0 && role_is(&m[0], "system")) {
    puts_(o, "<|im_start|>system\n");
    puts_(o, content_of(&m[0]));
    puts_(o, "<|im_end|>\n");
    first = 1;
  } else if (t->default_system) {
    puts_(o, "<|im_start|>system\n");
    puts_(o, t->default_system);
    puts_(o, "<|im_end|>\n");
  }
  int last_query = n - 1; /* Qwen3: the last user turn that is not a tool response */
  for (int i = n - 1; i >= 0; i--)
    if (role_is(&m[i], "user") && !is_tool_response(content_of(&m[i]))) {
      last_query = i;
      break;
    }
  for (int i = first; i < n; i++) {
    const char *c = content_of(&m[i]);
    if (t->qwen_tools && role_is(&m[i], "tool")) {
      if (i == 0 || !role_is(&m[i - 1], "tool")) puts_(o, "<|im_start|>user");
      puts_(o, "\n<tool_response>\n");
      puts_(o, c);
      puts_(o, "\n</tool_response>");
      if (i == n - 1 || !role_is(&m[i + 1], "tool")) puts_(o, "<|im_end|>\n");
      continue;
    }
    if (t->qwen3_think && role_is(&m[i], "assistant")) {
      qwen3_assistant(o, c, i > last_query, i == n - 1);
    } else {
      puts_(o, "<|im_start|>");
      puts_(o, m[i].role);
      puts_(o, "\n");
      puts_(o, c);
    }
    puts_(o, "<|im_end|>\n");
  }
  if (gen) puts_(o, "<|im_start|>assistant\n");
}

static void json_quote(rb *o, const char *s) {
  puts_(o, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\')
      put(o, "\\", 1), put(o, s, 1);
    else if (c == '\n')
      puts_(o, "\\n");
    else if (c == '\r')
      puts_(o, "\\r");
    else if (c == '\t')
      puts_(o, "\\t");
    else if (c == '\b')
      puts_(o, "\\b");
    else if (c == '\f')
      puts_(o, "\\f");
    else if (c < 0x20)
      snprintf(esc, sizeof esc, "\\u%04x", c), puts_(o, esc);
    else
      put(o, s, 1);
  }
  puts_(o, "\"");
}

static void render_llama3(const mq_chat_template *t, const mq_chat_msg *m, int n, int gen, rb *o) {
  puts_(o, t->bos);
  int first = 0;
  if (t->llama31) {
    char date[64] = "26 Jul 2024";
    if (t->llama3_now) {
      time_t now = time(NULL);
      struct tm tm;
      localtime_r(&now, &tm);
      strftime(date, sizeof date, "%d %b %Y", &tm);
    }
    puts_(o, "<|start_header_id|>system<|end_header_id|>\n\n");
    puts_(o, "Cutting Knowledge Date: December 2023\nToday Date: ");
    puts_(o, date);
    puts_(o, "\n\n");
    if (n > 0 && role_is(&m[0], "system")) {
      put_stripped(o, content_of(&m[0]), NULL, 1, 1);
      first = 1;
    }
    puts_(o, "<|eot_id|>");
  }
  for (int i = first; i < n; i++) {
    if (t->llama31 && (role_is(&m[i], "tool") || role_is(&m[i], "ipython"))) {
      puts_(o, "<|start_header_id|>ipython<|end_header_id|>\n\n");
      json_quote(o, content_of(&m[i])); /* a string is "iterable": the template writes tojson */
      puts_(o, "<|eot_id|>");
      continue;
    }
    puts_(o, "<|start_header_id|>");
    puts_(o, m[i].role);
    puts_(o, "<|end_header_id|>\n\n");
    put_stripped(o, content_of(&m[i]), NULL, 1, 1);
    puts_(o, "<|eot_id|>");
  }
  if (gen) puts_(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static int alternate_error(mq_err *err) {
  return mq_errf(err, MQ_ERR_ARG,
                 "chat template raised an exception: Conversation roles must alternate "
                 "user/assistant/user/assistant/...");
}

static int render_llama2(const mq_chat_template *t, const mq_chat_msg *m, int n, rb *o,
                         mq_err *err) {
  const char *sys = NULL;
  int first = 0;
  if (n > 0 && role_is(&m[0], "system")) {
    sys = content_of(&m[0]);
    first = 1;
  }
  for (int i = first; i < n; i++) {
    int k = i - first;
    if (role_is(&m[i], "user") != (k % 2 == 0)) return alternate_error(err);
    mq_bbuf c = {0};
    int bad = 0;
    if (k == 0 && sys) {
      bad |= mq_bbuf_add(&c, "<<SYS>>\n", 8);
      bad |= mq_bbuf_add(&c, sys, strlen(sys));
      bad |= mq_bbuf_add(&c, "\n<</SYS>>\n\n", 11);
    }
    bad |= mq_bbuf_add(&c, content_of(&m[i]), strlen(content_of(&m[i])));
    if (bad) {
      mq_bbuf_free(&c);
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    }
    const char *s = c.p ? c.p : "";
    size_t sn = c.n;
    span_strip(&s, &sn, NULL, 1, 1);
    if (role_is(&m[i], "user")) {
      puts_(o, t->bos);
      puts_(o, "[INST] ");
      put(o, s, sn);
      puts_(o, " [/INST]");
    } else if (role_is(&m[i], "assistant")) {
      puts_(o, " ");
      put(o, s, sn);
      puts_(o, " ");
      puts_(o, t->eos);
    }
    mq_bbuf_free(&c);
  }
  return MQ_OK;
}

static int render_mistral(const mq_chat_template *t, const mq_chat_msg *m, int n, rb *o,
                          mq_err *err) {
  const char *sys = NULL;
  int first = 0;
  if (n > 0 && role_is(&m[0], "system")) {
    sys = content_of(&m[0]);
    first = 1;
  }
  puts_(o, t->bos);
  for (int i = first; i < n; i++) {
    int k = i - first;
    if (role_is(&m[i], "user") != (k % 2 == 0)) return alternate_error(err);
    if (role_is(&m[i], "user")) {
      puts_(o, "[INST] ");
      if (k == 0 && sys) {
        puts_(o, sys);
        puts_(o, "\n\n");
      }
      puts_(o, content_of(&m[i]));
      puts_(o, " [/INST]");
    } else {
      puts_(o, content_of(&m[i]));
      puts_(o, t->eos);
    }
  }
  return MQ_OK;
}

int mq_chat_template_apply(const mq_chat_template *t, const mq_chat_msg *msgs, int n,
                           int add_generation_prompt, char **out, size_t *len, mq_err *err) {
  *out = NULL;
  if (len) *len = 0;
  if (!t || n < 0 || (n && !msgs)) return mq_errf(err, MQ_ERR_ARG, "chat template: bad arguments");
  for (int i = 0; i < n; i++)
    if (!msgs[i].role) return mq_errf(err, MQ_ERR_ARG, "chat message %d has no role", i);
  rb o = {{0}, 0};
  int rc = MQ_OK;
  switch (t->kind) {
  case K_CHATML: render_chatml(t, msgs, n, add_generation_prompt, &o); break;
  case K_LLAMA3: render_llama3(t, msgs, n, add_generation_prompt, &o); break;
  case K_LLAMA2: rc = render_llama2(t, msgs, n, &o, err); break;
  case K_MISTRAL: rc = render_mistral(t, msgs, n, &o, err); break;
  default: {
    mq_jinja_vars v = {msgs, n, add_generation_prompt, t->bos, t->eos};
    rc = mq_jinja_render(t->jinja, &v, &o.b, err);
  }
  }
  if (rc == MQ_OK && (o.oom || mq_bbuf_addc(&o.b, 0) != 0))
    rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory rendering the chat template");
  if (rc != MQ_OK) {
    mq_bbuf_free(&o.b);
    return rc;
  }
  *out = o.b.p;
  if (len) *len = o.b.n - 1;
  return MQ_OK;
}

int mq_chat_apply(const mq_tokenizer *tok, const mq_chat_msg *msgs, int n,
                  int add_generation_prompt, char **out, size_t *len, mq_err *err) {
  mq_chat_template *t = NULL;
  *out = NULL;
  int rc = mq_chat_template_init(tok, NULL, &t, err);
  if (rc == MQ_OK) rc = mq_chat_template_apply(t, msgs, n, add_generation_prompt, out, len, err);
  mq_chat_template_free(t);
  return rc;
}
