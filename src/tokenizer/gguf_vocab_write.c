/* tokenizer.json -> tokenizer.ggml.* metadata: see gguf_vocab_write.h. */
#include "tokenizer/gguf_vocab_write.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/file.h"
#include "core/strmap.h"
#include "io/jsonutil.h"
#include "tokenizer/tokenizer.h"

#define TOKJSON_MAX ((size_t)512 << 20)
#define CFG_MAX ((size_t)16 << 20)
#define NO_SCORE -1e9f

static const char META[] = "\xE2\x96\x81"; /* ▁ */

/* Texts the HF and the GGUF tokenizer must split alike. */
static const char *const k_probes[] = {
    "Hello world! It's a test, isn't it? I'LL go, you've seen, they'd say.",
    "  two leading spaces, trailing  ",
    "tabs\tand\t\tnewlines\n\n\nand\r\nCRLF \n \n",
    "numbers 1 12 123 1234 12345 3.14159 2024-11-29 $100,000",
    "Caf\xC3\xA9"
    " na\xC3\xAFve \xC3\xBC\xC3\xB1\xC3\xAF\xC3\xA7\xC3\xB8"
    "d\xC3\xA9 "
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
    "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "def f(x):\n    return x**2  # comment\n\n```\nprint(\"hi\")\n```",
    "a",
    "UPPER lower MiXeD ... !!! ??? -- __init__ <tag> {json: [1, 2]}",
    "\xE2\x96\x81literal\xE2\x96\x81marks and    many     spaces",
};
#define N_PROBES (sizeof k_probes / sizeof k_probes[0])

/* llama.cpp pre-tokenizer names tried for byte-level BPE, most common first. */
static const char *const k_pre[] = {
    "gpt-2",  "llama-bpe", "qwen2",        "deepseek-v3",    "tekken", "starcoder", "default",
    "falcon", "dbrx",      "deepseek-llm", "deepseek-coder", "bloom",  "viking"};
#define N_PRE (sizeof k_pre / sizeof k_pre[0])

typedef struct {
  int n;
  const char **tok;
  size_t *len;
  int32_t *type;
  float *score;
  char **owned; /* "[PAD<id>]" strings */
  const char **merges;
  size_t *mlen;
  char **mown; /* merges built from ["a", "b"] pairs */
  int n_merges;
  mq_strmap index; /* token text -> id (keys borrowed from tok) */
} vocab;

static void vocab_free(vocab *v) {
  for (int i = 0; v->owned && i < v->n; i++) free(v->owned[i]);
  for (int i = 0; v->mown && i < v->n_merges; i++) free(v->mown[i]);
  free(v->tok), free(v->len), free(v->type), free(v->score), free(v->owned);
  free(v->merges), free(v->mlen), free(v->mown);
  mq_strmap_free(&v->index);
}

static void warnf(char *warn, size_t cap, const char *fmt, ...) {
  if (!warn || !cap) return;
  size_t l = strlen(warn);
  if (l + 1 >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(warn + l, cap - l, fmt, ap);
  va_end(ap);
}

static const char *type_of(const json_t *o) {
  const json_t *v = json_object_get(o, "type");
  return json_is_string(v) ? json_string_value(v) : "";
}

/* The first object of type ty inside j (j itself, or nested in arrays / objects). */
static const json_t *find_type(const json_t *j, const char *ty) {
  if (json_is_object(j)) {
    if (!strcmp(type_of(j), ty)) return j;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
      const json_t *r = find_type(v, ty);
      if (r) return r;
    }
  } else if (json_is_array(j)) {
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
      const json_t *r = find_type(v, ty);
      if (r) return r;
    }
  }
  return NULL;
}

static int oom(mq_err *err) { return mq_errf(err, MQ_ERR_NOMEM, "out of memory"); }

/* Tokens, token types and the text index from model.vocab and added_tokens. */
static int load_tokens(vocab *v, const json_t *root, int n_model, mq_err *err) {
  const json_t *model = json_object_get(root, "model"),
               *added = json_object_get(root, "added_tokens");
  const json_t *vj = json_object_get(model, "vocab"), *x;
  if (!json_is_object(vj)) return mq_errf(err, MQ_ERR_FORMAT, "BPE model has no \"vocab\" object");
  long long max_id = n_model - 1;
  const char *key;
  size_t i;
  json_object_foreach((json_t *)vj, key, x) {
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= (1 << 22))
      return mq_errf(err, MQ_ERR_FORMAT, "vocab entry \"%.40s\" has a bad id", key);
    if (json_integer_value(x) > max_id) max_id = json_integer_value(x);
  }
  json_array_foreach(added, i, x) {
    const json_t *id = json_object_get(x, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 22) ||
        !json_is_string(json_object_get(x, "content")))
      return mq_errf(err, MQ_ERR_FORMAT, "added_tokens[%zu] has a bad id or no content", i);
    if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
  }
  int n = v->n = (int)max_id + 1;
  v->tok = calloc((size_t)n, sizeof *v->tok);
  v->len = calloc((size_t)n, sizeof *v->len);
  v->type = calloc((size_t)n, sizeof *v->type);
  v->score = calloc((size_t)n, sizeof *v->score);
  v->owned = calloc((size_t)n, sizeof *v->owned);
  if (!v->tok || !v->len || !v->type || !v->score || !v->owned) return oom(err);
  json_object_foreach((json_t *)vj, key, x) {
    int id = (int)json_integer_value(x);
    v->tok[id] = key, v->len[id] = strlen(key), v->type[id] = MQ_TOKTYPE_NORMAL;
  }
  json_array_foreach(added, i, x) {
    int id = (int)json_integer_value(json_object_get(x, "id"));
    const json_t *c = json_object_get(x, "content");
    v->tok[id] = json_string_value(c), v->len[id] = json_string_length(c);
    v->type[id] =
        json_is_true(json_object_get(x, "special")) ? MQ_TOKTYPE_CONTROL : MQ_TOKTYPE_USER_DEFINED;
  }
  for (int id = 0; id < n; id++) {
    v->score[id] = NO_SCORE;
    if (v->tok[id]) continue;
    char buf[32];
    snprintf(buf, sizeof buf, "[PAD%d]", id);
    if (!(v->owned[id] = strdup(buf))) return oom(err);
    v->tok[id] = v->owned[id], v->len[id] = strlen(buf), v->type[id] = MQ_TOKTYPE_UNUSED;
  }
  for (int id = 0; id < n; id++)
    if (mq_strmap_put(&v->index, v->tok[id], v->len[id], id) < 0) return oom(err);
  return MQ_OK;
}

/* model.merges as "left right" strings. */
static int load_merges(vocab *v, const json_t *root, mq_err *err) {
  const json_t *m = json_object_get(json_object_get(root, "model"), "merges"), *x;
  if (!json_is_array(m)) return mq_errf(err, MQ_ERR_FORMAT, "BPE model has no \"merges\" list");
  size_t n = json_array_size(m), i;
  v->merges = calloc(n + 1, sizeof *v->merges);
  v->mlen = calloc(n + 1, sizeof *v->mlen);
  v->mown = calloc(n + 1, sizeof *v->mown);
  if (!v->merges || !v->mlen || !v->mown) return oom(err);
  v->n_merges = (int)n;
  json_array_foreach(m, i, x) {
    if (json_is_string(x)) {
      v->merges[i] = json_string_value(x), v->mlen[i] = json_string_length(x);
      if (v->mlen[i] < 3 || !memchr(v->merges[i] + 1, ' ', v->mlen[i] - 1))
        return mq_errf(err, MQ_ERR_FORMAT, "merges[%zu] is not \"left right\"", i);
    } else if (json_is_array(x) && json_array_size(x) == 2 &&
               json_is_string(json_array_get(x, 0)) && json_is_string(json_array_get(x, 1))) {
      const json_t *a = json_array_get(x, 0), *b = json_array_get(x, 1);
      size_t la = json_string_length(a), lb = json_string_length(b);
      if (!la || !lb || memchr(json_string_value(a), ' ', la))
        return mq_errf(err, MQ_ERR_UNSUPPORTED,
                       "merges[%zu]: a piece holding a space cannot be written as a GGUF merge", i);
      char *s = malloc(la + lb + 2);
      if (!s) return oom(err);
      memcpy(s, json_string_value(a), la), s[la] = ' ';
      memcpy(s + la + 1, json_string_value(b), lb), s[la + lb + 1] = 0;
      v->mown[i] = s, v->merges[i] = s, v->mlen[i] = la + lb + 1;
    } else {
      return mq_errf(err, MQ_ERR_FORMAT, "merges[%zu] is neither a string nor a pair", i);
    }
  }
  return MQ_OK;
}

/* SentencePiece scores from merge ranks; byte and unknown token types. */
static int spm_scores(vocab *v, const json_t *root, mq_err *err) {
  int rc = load_merges(v, root, err);
  if (rc) return rc;
  char *buf = NULL;
  size_t cap = 0;
  for (int r = 0; r < v->n_merges; r++) {
    const char *m = v->merges[r], *sp = memchr(m + 1, ' ', v->mlen[r] - 1);
    size_t a = (size_t)(sp - m), b = v->mlen[r] - a - 1;
    if (a + b > cap) {
      char *nb = realloc(buf, a + b);
      if (!nb) return free(buf), oom(err);
      buf = nb, cap = a + b;
    }
    memcpy(buf, m, a), memcpy(buf + a, sp + 1, b);
    int64_t id = mq_strmap_get(&v->index, buf, a + b);
    if (id >= 0 && v->score[id] == NO_SCORE) v->score[id] = -(float)r;
  }
  free(buf);
  for (int id = 0; id < v->n; id++) {
    const char *t = v->tok[id];
    if (v->type[id] == MQ_TOKTYPE_NORMAL && v->len[id] == 6 && !memcmp(t, "<0x", 3) && t[5] == '>')
      v->type[id] = MQ_TOKTYPE_BYTE;
  }
  const json_t *unk = json_object_get(json_object_get(root, "model"), "unk_token");
  if (json_is_string(unk)) {
    int64_t id = mq_strmap_get(&v->index, json_string_value(unk), json_string_length(unk));
    if (id >= 0) v->type[id] = MQ_TOKTYPE_UNKNOWN;
  }
  return MQ_OK;
}

/* SentencePiece: is a "▁" put in front of the text? */
static int spm_space_prefix(const json_t *root) {
  const json_t *pre = find_type(json_object_get(root, "normalizer"), "Prepend");
  const json_t *p = json_object_get(pre, "prepend");
  if (json_is_string(p) && !strcmp(json_string_value(p), META)) return 1;
  const json_t *ms = find_type(json_object_get(root, "pre_tokenizer"), "Metaspace");
  if (!ms) return 0;
  const json_t *sch = json_object_get(ms, "prepend_scheme");
  if (json_is_string(sch)) return strcmp(json_string_value(sch), "never") != 0;
  return !json_is_false(json_object_get(ms, "add_prefix_space"));
}

/* How many probes t encodes exactly as hf (with the model's special tokens). */
static int agreement(const mq_tokenizer *hf, const mq_tokenizer *t) {
  int ok = 0;
  for (size_t p = 0; p < N_PROBES; p++) {
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    const char *s = k_probes[p];
    if (mq_tokenizer_encode(hf, s, strlen(s), 1, &a, &na, NULL) == MQ_OK &&
        mq_tokenizer_encode(t, s, strlen(s), 1, &b, &nb, NULL) == MQ_OK && na == nb &&
        !memcmp(a, b, (size_t)na * sizeof *a))
      ok++;
    free(a), free(b);
  }
  return ok;
}

static int first_last(const mq_tokenizer *hf, int *add_bos, int *add_eos) {
  int32_t *a = NULL, *b = NULL;
  int na = 0, nb = 0, rc = MQ_OK;
  if (mq_tokenizer_encode(hf, "a", 1, 1, &a, &na, NULL) != MQ_OK ||
      mq_tokenizer_encode(hf, "a", 1, 0, &b, &nb, NULL) != MQ_OK)
    rc = MQ_ERR_FORMAT;
  int32_t bos = mq_tokenizer_bos(hf), eos = mq_tokenizer_eos(hf);
  *add_bos = rc == MQ_OK && na > nb && bos >= 0 && a[0] == bos;
  *add_eos = rc == MQ_OK && na > nb && eos >= 0 && a[na - 1] == eos && (na - nb > 1 || !*add_bos);
  free(a), free(b);
  return rc;
}

/* The id of tokenizer_config.json's pad_token, or -1. */
static int pad_id(const vocab *v, const json_t *tc) {
  const json_t *p = json_object_get(tc, "pad_token");
  if (json_is_object(p)) p = json_object_get(p, "content");
  if (!json_is_string(p)) return -1;
  return (int)mq_strmap_get(&v->index, json_string_value(p), json_string_length(p));
}

static void desc_of(const vocab *v, int spm, mq_vocab_desc *d) {
  mq_vocab_desc_init(d);
  d->kind = spm ? MQ_VOCAB_KIND_SPM : MQ_VOCAB_KIND_BPE;
  d->n_tokens = v->n;
  d->tokens = v->tok, d->token_lens = v->len, d->token_types = v->type;
  if (spm) d->scores = v->score;
  if (!spm) d->n_merges = v->n_merges, d->merges = v->merges, d->merge_lens = v->mlen;
}

static int write_all(mq_gguf_writer *w, const char *dir, const json_t *root, const json_t *tc,
                     const mq_tokenizer *hf, vocab *v, int n_model, char *warn, size_t wcap,
                     mq_err *err) {
  const json_t *model = json_object_get(root, "model");
  const char *ty = type_of(model);
  if (*ty ? strcmp(ty, "BPE") != 0 : !json_object_get(model, "merges"))
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "tokenizer model \"%s\" cannot be written as GGUF metadata (BPE tokenizers can)",
                   ty);
  int bytelevel = find_type(json_object_get(root, "pre_tokenizer"), "ByteLevel") != NULL;
  int spm = !bytelevel && json_is_true(json_object_get(model, "byte_fallback"));
  if (!bytelevel && !spm)
    return mq_errf(
        err, MQ_ERR_UNSUPPORTED,
        "a BPE tokenizer with neither a ByteLevel pre-tokenizer nor byte_fallback has no "
        "GGUF equivalent");
  int rc = load_tokens(v, root, n_model, err);
  if (!rc) rc = spm ? spm_scores(v, root, err) : load_merges(v, root, err);
  if (rc) return rc;
  int add_bos, add_eos;
  first_last(hf, &add_bos, &add_eos);
  int32_t bos = mq_tokenizer_bos(hf), eos = mq_tokenizer_eos(hf), unk = -1, pad = pad_id(v, tc);
  const json_t *uj = json_object_get(model, "unk_token");
  if (json_is_string(uj))
    unk = (int32_t)mq_strmap_get(&v->index, json_string_value(uj), json_string_length(uj));
  int space = spm ? spm_space_prefix(root) : 0;

  /* build the GGUF-side tokenizer and compare (for "gpt2": each candidate pre) */
  mq_vocab_desc d;
  int best = -1, best_ok = -1;
  for (int c = 0; c < (spm ? 1 : (int)N_PRE) && best_ok < (int)N_PROBES; c++) {
    desc_of(v, spm, &d);
    d.pre = spm ? NULL : k_pre[c];
    d.bos_id = bos, d.eos_id = eos, d.unk_id = unk;
    d.add_bos = add_bos, d.add_eos = add_eos, d.add_space_prefix = spm ? space : -1;
    mq_tokenizer *t = NULL;
    mq_err e2 = {0};
    if (mq_tokenizer_from_vocab(&d, &t, &e2) != MQ_OK) {
      if (spm || c == 0)
        return mq_errf(err, e2.code, "the GGUF vocabulary does not build: %s", e2.msg);
      continue;
    }
    int ok = agreement(hf, t);
    mq_tokenizer_free(t);
    if (ok > best_ok) best_ok = ok, best = c;
  }
  if (best_ok < (int)N_PROBES)
    warnf(warn, wcap,
          "tokenizer: the GGUF %s vocabulary%s%s reproduces %d of %d probe texts exactly as "
          "tokenizer.json does\n",
          spm ? "\"llama\"" : "\"gpt2\"", spm ? "" : " with pre-tokenizer ", spm ? "" : k_pre[best],
          best_ok, (int)N_PROBES);

  const char *mname = spm ? "llama" : "gpt2";
  if ((rc = mq_gguf_writer_str(w, "tokenizer.ggml.model", mname, strlen(mname), err)) ||
      (!spm &&
       (rc = mq_gguf_writer_str(w, "tokenizer.ggml.pre", k_pre[best], strlen(k_pre[best]), err))) ||
      (rc = mq_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", v->tok, v->len, (uint64_t)v->n,
                                   err)) ||
      (spm &&
       (rc = mq_gguf_writer_arr_f32(w, "tokenizer.ggml.scores", v->score, (uint64_t)v->n, err))) ||
      (rc = mq_gguf_writer_arr_i32(w, "tokenizer.ggml.token_type", v->type, (uint64_t)v->n, err)) ||
      (!spm && (rc = mq_gguf_writer_arr_str(w, "tokenizer.ggml.merges", v->merges, v->mlen,
                                            (uint64_t)v->n_merges, err))) ||
      (bos >= 0 &&
       (rc = mq_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, err))) ||
      (eos >= 0 &&
       (rc = mq_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, err))) ||
      (unk >= 0 &&
       (rc = mq_gguf_writer_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk, err))) ||
      (pad >= 0 &&
       (rc = mq_gguf_writer_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad, err))) ||
      (rc = mq_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", add_bos, err)) ||
      (rc = mq_gguf_writer_bool(w, "tokenizer.ggml.add_eos_token", add_eos, err)) ||
      (spm && (rc = mq_gguf_writer_bool(w, "tokenizer.ggml.add_space_prefix", space, err))))
    return rc;
  char *ct;
  size_t ctl;
  if ((rc = mq_hf_chat_template(dir, tc, &ct, &ctl, err))) return rc;
  if (ct) rc = mq_gguf_writer_str(w, "tokenizer.chat_template", ct, ctl, err);
  free(ct);
  return rc;
}

int mq_gguf_write_vocab(mq_gguf_writer *w, const char *dir, int n_vocab_model, char *warn,
                        size_t warn_cap, mq_err *err) {
  char path[4096];
  if (mq_path_join(path, sizeof path, dir, "tokenizer.json") != 0)
    return mq_errf(err, MQ_ERR_ARG, "%s: path too long", dir);
  mq_tokenizer *hf = NULL;
  json_t *root = NULL, *tc = NULL;
  vocab v = {0};
  int rc = mq_tokenizer_load_hf(dir, &hf, err);
  if (!rc) rc = mq_json_load_file(path, TOKJSON_MAX, &root, err);
  char tcp[4096];
  if (!rc && mq_path_join(tcp, sizeof tcp, dir, "tokenizer_config.json") == 0 &&
      mq_file_exists(tcp))
    rc = mq_json_load_file(tcp, CFG_MAX, &tc, err);
  if (!rc) {
    rc = write_all(w, dir, root, tc, hf, &v, n_vocab_model, warn, warn_cap, err);
    if (rc) mq_err_prefix(err, "%s: ", path);
  }
  vocab_free(&v);
  json_decref(root);
  json_decref(tc);
  mq_tokenizer_free(hf);
  return rc;
}
