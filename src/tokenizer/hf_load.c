/* Loading a tokenizer from a Hugging Face model folder: tokenizer.json
 * (model, added tokens, normalizer, pre-tokenizer, post-processor, decoder)
 * and the config files that name BOS/EOS. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/file.h"
#include "io/jsonutil.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok_impl.h"

#define TOKJSON_MAX ((size_t)512 << 20)
#define CFG_MAX ((size_t)16 << 20)

static const char *type_of(const json_t *o) {
  const json_t *v = json_object_get(o, "type");
  return json_is_string(v) ? json_string_value(v) : "";
}

static int str_of(const json_t *v, const char **s, size_t *n) {
  if (!json_is_string(v)) return 0;
  *s = json_string_value(v);
  *n = json_string_length(v);
  return 1;
}

static int bool_of(const json_t *o, const char *key, int def) {
  const json_t *v = json_object_get(o, key);
  return json_is_boolean(v) ? json_is_true(v) : def;
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

/* {"String": "..."} or {"Regex": "..."} */
static int pattern_of(const json_t *pat, const char **s, size_t *n, int *is_regex) {
  if (str_of(json_object_get(pat, "String"), s, n)) {
    *is_regex = 0;
    return 1;
  }
  if (str_of(json_object_get(pat, "Regex"), s, n)) {
    *is_regex = 1;
    return 1;
  }
  return 0;
}

/* ---- normalizer ---- */
static int parse_norm(mq_tokenizer *t, const json_t *o, mq_err *err) {
  if (!o || json_is_null(o)) return MQ_OK;
  const char *ty = type_of(o);
  mq_norm_step st = {0};
  const char *a, *b;
  size_t an, bn;
  int is_re;
  if (!strcmp(ty, "Sequence")) {
    const json_t *arr = json_object_get(o, "normalizers"), *x;
    size_t i;
    if (!json_is_array(arr))
      return mq_errf(err, MQ_ERR_FORMAT, "normalizer Sequence without \"normalizers\"");
    json_array_foreach(arr, i, x) {
      int rc = parse_norm(t, x, err);
      if (rc != MQ_OK) return rc;
    }
    return MQ_OK;
  } else if (!strcmp(ty, "Prepend")) {
    if (!str_of(json_object_get(o, "prepend"), &a, &an))
      return mq_errf(err, MQ_ERR_FORMAT, "normalizer Prepend without \"prepend\"");
    st.kind = MQ_NORM_PREPEND;
    st.a = dup_n(a, an);
    st.alen = an;
    if (!st.a) goto oom;
  } else if (!strcmp(ty, "Replace")) {
    if (!pattern_of(json_object_get(o, "pattern"), &a, &an, &is_re) ||
        !str_of(json_object_get(o, "content"), &b, &bn))
      return mq_errf(err, MQ_ERR_FORMAT, "normalizer Replace needs \"pattern\" and \"content\"");
    st.kind = is_re ? MQ_NORM_REPLACE_RE : MQ_NORM_REPLACE;
    st.a = dup_n(a, an);
    st.alen = an;
    st.b = dup_n(b, bn);
    st.blen = bn;
    if (!st.a || !st.b) goto oom;
    if (is_re) {
      int rc = mq_tok_regex(a, an, 0, &st.re, "normalizer Replace", err);
      if (rc != MQ_OK) {
        free(st.a);
        free(st.b);
        return rc;
      }
    }
  } else if (!strcmp(ty, "NFC") || !strcmp(ty, "NFD") || !strcmp(ty, "NFKC") ||
             !strcmp(ty, "NFKD")) {
    st.kind = !strcmp(ty, "NFC")    ? MQ_NORM_NFC
              : !strcmp(ty, "NFD")  ? MQ_NORM_NFD
              : !strcmp(ty, "NFKC") ? MQ_NORM_NFKC
                                    : MQ_NORM_NFKD;
  } else if (!strcmp(ty, "Lowercase")) {
    st.kind = MQ_NORM_LOWER;
  } else if (!strcmp(ty, "Strip")) {
    st.kind = MQ_NORM_STRIP;
    st.left = bool_of(o, "strip_left", 1);
    st.right = bool_of(o, "strip_right", 1);
  } else {
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "normalizer \"%s\" is not supported", ty);
  }
  int rc = mq_tok_push_norm(t, &st, err);
  if (rc != MQ_OK) {
    free(st.a);
    free(st.b);
    pcre2_code_free(st.re);
  }
  return rc;
oom:
  free(st.a);
  free(st.b);
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
}

/* ---- pre-tokenizer ---- */
static int push_split(mq_tokenizer *t, const char *pat, size_t n, int literal, mq_split_behavior b,
                      int invert, mq_err *err) {
  mq_pre_step st = {.kind = MQ_PRE_SPLIT, .behavior = b, .invert = invert};
  int rc = mq_tok_regex(pat, n, literal, &st.re, "pre-tokenizer Split", err);
  if (rc == MQ_OK) rc = mq_tok_push_pre(t, &st, err);
  if (rc != MQ_OK) pcre2_code_free(st.re);
  return rc;
}

static int behavior_of(const json_t *o, mq_split_behavior def, mq_split_behavior *b, mq_err *err) {
  const json_t *v = json_object_get(o, "behavior");
  *b = def;
  if (!v || json_is_null(v)) return MQ_OK;
  const char *s = json_is_string(v) ? json_string_value(v) : "";
  static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                      "Contiguous"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(s, names[i])) {
      *b = (mq_split_behavior)i;
      return MQ_OK;
    }
  return mq_errf(err, MQ_ERR_UNSUPPORTED, "split behavior \"%s\" is not supported", s);
}

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static int parse_pre(mq_tokenizer *t, const json_t *o, mq_err *err) {
  if (!o || json_is_null(o)) return MQ_OK;
  const char *ty = type_of(o), *a;
  size_t an;
  int is_re, rc;
  mq_split_behavior b;
  if (!strcmp(ty, "Sequence")) {
    const json_t *arr = json_object_get(o, "pretokenizers"), *x;
    size_t i;
    if (!json_is_array(arr))
      return mq_errf(err, MQ_ERR_FORMAT, "pre-tokenizer Sequence without \"pretokenizers\"");
    json_array_foreach(arr, i, x) {
      if ((rc = parse_pre(t, x, err)) != MQ_OK) return rc;
    }
    return MQ_OK;
  }
  if (!strcmp(ty, "ByteLevel")) {
    mq_pre_step st = {.kind = MQ_PRE_BYTELEVEL,
                      .add_prefix_space = bool_of(o, "add_prefix_space", 1)};
    if (bool_of(o, "use_regex", 1) &&
        (rc = mq_tok_regex(GPT2_RE, strlen(GPT2_RE), 0, &st.re, "ByteLevel", err)) != MQ_OK)
      return rc;
    if ((rc = mq_tok_push_pre(t, &st, err)) != MQ_OK) pcre2_code_free(st.re);
    return rc;
  }
  if (!strcmp(ty, "Split")) {
    if (!pattern_of(json_object_get(o, "pattern"), &a, &an, &is_re))
      return mq_errf(err, MQ_ERR_FORMAT, "pre-tokenizer Split without a pattern");
    if ((rc = behavior_of(o, MQ_SPLIT_ISOLATED, &b, err)) != MQ_OK) return rc;
    return push_split(t, a, an, !is_re, b, bool_of(o, "invert", 0), err);
  }
  if (!strcmp(ty, "Metaspace")) {
    mq_pre_step st = {.kind = MQ_PRE_METASPACE, .split = bool_of(o, "split", 1), .prepend = 1};
    if (!str_of(json_object_get(o, "replacement"), &a, &an)) a = "\xE2\x96\x81", an = 3;
    const json_t *ps = json_object_get(o, "prepend_scheme");
    if (json_is_string(ps)) {
      const char *p = json_string_value(ps);
      st.prepend = !strcmp(p, "always") ? 1 : !strcmp(p, "first") ? 2 : 0;
    } else {
      st.prepend = bool_of(o, "add_prefix_space", 1);
    }
    if (!an) return mq_errf(err, MQ_ERR_FORMAT, "Metaspace with an empty replacement");
    st.a = dup_n(a, an);
    st.alen = an;
    if (!st.a) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    if ((rc = mq_tok_push_pre(t, &st, err)) != MQ_OK) free(st.a);
    return rc;
  }
  if (!strcmp(ty, "Digits"))
    return push_split(t, "\\p{N}", 5, 0,
                      bool_of(o, "individual_digits", 0) ? MQ_SPLIT_ISOLATED : MQ_SPLIT_CONTIGUOUS,
                      0, err);
  if (!strcmp(ty, "Punctuation")) {
    if ((rc = behavior_of(o, MQ_SPLIT_ISOLATED, &b, err)) != MQ_OK) return rc;
    static const char re[] = "[\\p{P}!-/:-@\\[-`{-~]";
    return push_split(t, re, sizeof re - 1, 0, b, 0, err);
  }
  if (!strcmp(ty, "Whitespace"))
    return push_split(t, "\\w+|[^\\w\\s]+", 13, 0, MQ_SPLIT_REMOVED, 1, err);
  if (!strcmp(ty, "WhitespaceSplit")) return push_split(t, "\\s+", 3, 0, MQ_SPLIT_REMOVED, 0, err);
  if (!strcmp(ty, "CharDelimiterSplit") && str_of(json_object_get(o, "delimiter"), &a, &an))
    return push_split(t, a, an, 1, MQ_SPLIT_REMOVED, 0, err);
  return mq_errf(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer \"%s\" is not supported", ty);
}

/* ---- decoder ---- */
static int parse_dec(const json_t *o, mq_dec_spec *d, int *fused, mq_err *err) {
  if (!o || json_is_null(o)) return MQ_OK;
  const char *ty = type_of(o), *a, *b;
  size_t an, bn;
  int is_re;
  if (!strcmp(ty, "Sequence")) {
    const json_t *arr = json_object_get(o, "decoders"), *x;
    size_t i;
    if (!json_is_array(arr))
      return mq_errf(err, MQ_ERR_FORMAT, "decoder Sequence without \"decoders\"");
    json_array_foreach(arr, i, x) {
      int rc = parse_dec(x, d, fused, err);
      if (rc != MQ_OK) return rc;
    }
    return MQ_OK;
  }
  if (!strcmp(ty, "ByteLevel"))
    d->byte_level = 1;
  else if (!strcmp(ty, "ByteFallback"))
    d->byte_fallback = 1;
  else if (!strcmp(ty, "Fuse"))
    *fused = 1;
  else if (!strcmp(ty, "Replace") || !strcmp(ty, "Metaspace")) {
    int meta = !strcmp(ty, "Metaspace");
    if (meta) {
      if (!str_of(json_object_get(o, "replacement"), &a, &an)) a = "\xE2\x96\x81", an = 3;
      b = " ", bn = 1;
      const json_t *ps = json_object_get(o, "prepend_scheme");
      int prepend = json_is_string(ps) ? strcmp(json_string_value(ps), "never") != 0
                                       : bool_of(o, "add_prefix_space", 1);
      if (prepend) d->strip_seq = 1;
    } else if (!pattern_of(json_object_get(o, "pattern"), &a, &an, &is_re) || is_re ||
               !str_of(json_object_get(o, "content"), &b, &bn)) {
      return mq_errf(err, MQ_ERR_UNSUPPORTED,
                     "decoder Replace is supported with a String pattern only");
    }
    if (d->n_repl == MQ_DEC_MAX_REPL)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "more than %d Replace decoders", MQ_DEC_MAX_REPL);
    d->from[d->n_repl] = a, d->flen[d->n_repl] = an;
    d->to[d->n_repl] = b, d->tlen[d->n_repl] = bn;
    d->n_repl++;
  } else if (!strcmp(ty, "Strip")) {
    long long start = 0, stop = 0;
    const json_t *c = json_object_get(o, "content");
    if (json_is_integer(json_object_get(o, "start")))
      start = json_integer_value(json_object_get(o, "start"));
    if (json_is_integer(json_object_get(o, "stop")))
      stop = json_integer_value(json_object_get(o, "stop"));
    if (!json_is_string(c) || strcmp(json_string_value(c), " ") || stop != 0 || start < 0 ||
        start > 8)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "decoder Strip is supported for leading spaces only");
    if (*fused)
      d->strip_seq = (int)start;
    else
      d->strip_tok = (int)start;
  } else {
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "decoder \"%s\" is not supported", ty);
  }
  return MQ_OK;
}

/* ---- ids of token strings ---- */
static int32_t id_of_str(const mq_tokenizer *t, const char *s, size_t n) {
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].clen == n && !memcmp(t->added[i].content, s, n)) return t->added[i].id;
  return (int32_t)mq_strmap_get(&t->vocab, s, n);
}

/* a token given as "text" or {"content": "text", ...} */
static int32_t id_of_json(const mq_tokenizer *t, const json_t *v) {
  if (json_is_object(v)) v = json_object_get(v, "content");
  const char *s;
  size_t n;
  return str_of(v, &s, &n) ? id_of_str(t, s, n) : -1;
}

/* ---- post-processor: what add_special puts around the text ---- */
static int add_ids(int32_t **arr, int *n, const int32_t *ids, int k) {
  int32_t *p = realloc(*arr, (size_t)(*n + k + 1) * sizeof *p);
  if (!p) return -1;
  memcpy(p + *n, ids, (size_t)k * sizeof *p);
  *arr = p;
  *n += k;
  return 0;
}

static int parse_post(mq_tokenizer *t, const json_t *o, mq_err *err) {
  if (!o || json_is_null(o)) return MQ_OK;
  const char *ty = type_of(o);
  if (!strcmp(ty, "Sequence")) {
    const json_t *arr = json_object_get(o, "processors"), *x;
    size_t i;
    json_array_foreach(arr, i, x) {
      int rc = parse_post(t, x, err);
      if (rc != MQ_OK) return rc;
    }
    return MQ_OK;
  }
  if (!strcmp(ty, "ByteLevel")) return MQ_OK;
  if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
    const json_t *cls = json_object_get(o, "cls"), *sep = json_object_get(o, "sep");
    if (!json_is_array(cls) || !json_is_array(sep) || !json_is_integer(json_array_get(cls, 1)) ||
        !json_is_integer(json_array_get(sep, 1)))
      return mq_errf(err, MQ_ERR_FORMAT, "%s needs \"cls\" and \"sep\"", ty);
    long long cv = json_integer_value(json_array_get(cls, 1)),
              sv = json_integer_value(json_array_get(sep, 1));
    if (cv < 0 || cv >= t->n_vocab || sv < 0 || sv >= t->n_vocab)
      return mq_errf(err, MQ_ERR_FORMAT, "%s: token id outside the vocabulary", ty);
    int32_t c = (int32_t)cv, s = (int32_t)sv;
    if (add_ids(&t->prefix, &t->n_prefix, &c, 1) || add_ids(&t->suffix, &t->n_suffix, &s, 1))
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    return MQ_OK;
  }
  if (!strcmp(ty, "TemplateProcessing")) {
    const json_t *single = json_object_get(o, "single"), *sp = json_object_get(o, "special_tokens");
    const json_t *item;
    size_t i;
    int seen_a = 0;
    if (!json_is_array(single))
      return mq_errf(err, MQ_ERR_FORMAT, "TemplateProcessing without \"single\"");
    json_array_foreach(single, i, item) {
      const json_t *st = json_object_get(item, "SpecialToken");
      if (!st) {
        if (json_object_get(item, "Sequence")) seen_a = 1;
        continue;
      }
      const json_t *name = json_object_get(st, "id");
      const json_t *def =
          json_is_string(name) ? json_object_get(sp, json_string_value(name)) : NULL;
      const json_t *ids = json_object_get(def, "ids"), *x;
      size_t k;
      if (!json_is_array(ids))
        return mq_errf(err, MQ_ERR_FORMAT, "TemplateProcessing: special token %s has no ids",
                       json_is_string(name) ? json_string_value(name) : "?");
      json_array_foreach(ids, k, x) {
        long long v = json_integer_value(x);
        if (!json_is_integer(x) || v < 0 || v >= t->n_vocab)
          return mq_errf(err, MQ_ERR_FORMAT, "TemplateProcessing: token id outside the vocabulary");
        int32_t id = (int32_t)v;
        if (seen_a ? add_ids(&t->suffix, &t->n_suffix, &id, 1)
                   : add_ids(&t->prefix, &t->n_prefix, &id, 1))
          return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      }
    }
    return MQ_OK;
  }
  return mq_errf(err, MQ_ERR_UNSUPPORTED, "post-processor \"%s\" is not supported", ty);
}

/* ---- the model ---- */
static int load_model(mq_tokenizer **out, const json_t *root, mq_err *err) {
  const json_t *model = json_object_get(root, "model"),
               *added = json_object_get(root, "added_tokens");
  if (!json_is_object(model)) return mq_errf(err, MQ_ERR_FORMAT, "no \"model\" object");
  const char *ty = type_of(model);
  if (*ty ? strcmp(ty, "BPE") != 0 : !json_object_get(model, "merges"))
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "model type \"%s\" is not supported (mixq supports BPE tokenizers)", ty);
  const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
  if (!json_is_object(vocab) || !json_is_array(merges))
    return mq_errf(err, MQ_ERR_FORMAT, "BPE model needs \"vocab\" and \"merges\"");
  static const char *const unsupported[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int k = 0; k < 2; k++) {
    const json_t *v = json_object_get(model, unsupported[k]);
    if (json_is_string(v) && json_string_length(v))
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "BPE \"%s\" is not supported", unsupported[k]);
  }
  /* size: the largest id of the vocabulary and of the added tokens */
  long long max_id = -1;
  const char *key;
  const json_t *v, *x;
  size_t i;
  json_object_foreach((json_t *)vocab, key, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 22))
      return mq_errf(err, MQ_ERR_FORMAT, "vocab entry \"%.40s\" has a bad id", key);
    if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
  }
  json_array_foreach(added, i, x) {
    v = json_object_get(x, "id");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 22))
      return mq_errf(err, MQ_ERR_FORMAT, "added_tokens[%zu] has a bad id", i);
    if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
  }
  int rc = mq_tok_new((int)(max_id + 1), out, err);
  if (rc != MQ_OK) return rc;
  mq_tokenizer *t = *out;
  json_object_foreach((json_t *)vocab, key, v) {
    rc = mq_tok_set(t, (int32_t)json_integer_value(v), key, strlen(key),
                    MQ_TOKA_NORMAL | MQ_TOKF_MODEL, err);
    if (rc != MQ_OK) return mq_err_prefix(err, "model.vocab: ");
  }
  if ((rc = mq_tok_index(t, err)) != MQ_OK) return rc;
  if ((rc = mq_tok_merges_alloc(t, (int)json_array_size(merges), err)) != MQ_OK) return rc;
  json_array_foreach(merges, i, x) {
    const char *l, *r;
    size_t ll, rl;
    if (json_is_array(x) && json_array_size(x) == 2 && str_of(json_array_get(x, 0), &l, &ll) &&
        str_of(json_array_get(x, 1), &r, &rl)) {
      /* ["a", "b"] */
    } else if (str_of(x, &l, &ll)) { /* "a b": split at the first space after position 0 */
      const char *sp = ll > 1 ? memchr(l + 1, ' ', ll - 1) : NULL;
      if (!sp) return mq_errf(err, MQ_ERR_FORMAT, "merges[%zu] is not \"left right\"", i);
      r = sp + 1;
      rl = ll - (size_t)(r - l);
      ll = (size_t)(sp - l);
    } else {
      return mq_errf(err, MQ_ERR_FORMAT, "merges[%zu] is neither a string nor a pair", i);
    }
    if ((rc = mq_tok_add_merge(t, l, ll, r, rl, (int)i, err)) != MQ_OK) return rc;
  }
  t->mode = MQ_BPE_MERGES;
  t->byte_fallback = bool_of(model, "byte_fallback", 0);
  t->fuse_unk = bool_of(model, "fuse_unk", 0);
  t->ignore_merges = bool_of(model, "ignore_merges", 0);
  const char *us;
  size_t un;
  if (str_of(json_object_get(model, "unk_token"), &us, &un)) {
    t->unk_id = (int32_t)mq_strmap_get(&t->vocab, us, un);
    if (t->unk_id < 0)
      return mq_errf(err, MQ_ERR_FORMAT, "unk_token \"%.40s\" is not in the vocabulary", us);
  }
  return MQ_OK;
}

static int load_added(mq_tokenizer *t, const json_t *added, mq_err *err) {
  const json_t *x;
  size_t i;
  json_array_foreach(added, i, x) {
    const char *c;
    size_t cn;
    if (!str_of(json_object_get(x, "content"), &c, &cn))
      return mq_errf(err, MQ_ERR_FORMAT, "added_tokens[%zu] has no content", i);
    int special = bool_of(x, "special", 0);
    int rc =
        mq_tok_add_added(t, (int32_t)json_integer_value(json_object_get(x, "id")), c, cn, special,
                         bool_of(x, "lstrip", 0), bool_of(x, "rstrip", 0),
                         bool_of(x, "single_word", 0), bool_of(x, "normalized", !special), err);
    if (rc != MQ_OK) return mq_err_prefix(err, "added_tokens[%zu]: ", i);
  }
  return MQ_OK;
}

static json_t *opt_json(const char *dir, const char *name, mq_err *err, int *rc) {
  char path[4096];
  *rc = MQ_OK;
  if (mq_path_join(path, sizeof path, dir, name) != 0 || !mq_file_exists(path)) return NULL;
  json_t *j = NULL;
  *rc = mq_json_load_file(path, CFG_MAX, &j, err);
  return j;
}

/* BOS/EOS from the config files, in order of precedence. */
static void special_ids(mq_tokenizer *t, json_t *tc, json_t *stm, json_t *gen, json_t *cfg) {
  const char *names[2] = {"bos_token", "eos_token"};
  int32_t *dst[2] = {&t->bos, &t->eos};
  for (int k = 0; k < 2; k++) {
    int32_t id = id_of_json(t, json_object_get(tc, names[k]));
    if (id < 0) id = id_of_json(t, json_object_get(stm, names[k]));
    for (json_t *c = gen; id < 0 && c; c = c == gen ? cfg : NULL) {
      char key[32];
      snprintf(key, sizeof key, "%s_id", names[k]);
      json_t *v = json_object_get(c, key);
      if (json_is_array(v)) v = json_array_get(v, 0);
      if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < t->n_vocab)
        id = (int32_t)json_integer_value(v);
    }
    *dst[k] = id;
  }
}

static int eog_from(mq_tokenizer *t, json_t *c) {
  json_t *v = json_object_get(c, "eos_token_id"), *x;
  size_t i;
  if (json_is_integer(v)) return mq_tok_add_eog(t, (int32_t)json_integer_value(v));
  json_array_foreach(v, i, x) {
    if (json_is_integer(x) && json_integer_value(x) < INT32_MAX &&
        mq_tok_add_eog(t, (int32_t)json_integer_value(x)) != 0)
      return -1;
  }
  return 0;
}

int mq_hf_chat_template(const char *dir, const json_t *tc, char **out, size_t *len, mq_err *err) {
  *out = NULL, *len = 0;
  const json_t *ct = json_object_get(tc, "chat_template"), *x;
  size_t i;
  if (json_is_array(ct)) {
    const json_t *pick = NULL;
    json_array_foreach(ct, i, x) {
      const json_t *nm = json_object_get(x, "name");
      if (!pick || (json_is_string(nm) && !strcmp(json_string_value(nm), "default")))
        pick = json_object_get(x, "template");
    }
    ct = pick;
  }
  if (json_is_string(ct)) {
    *len = json_string_length(ct);
    if (!(*out = malloc(*len + 1))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    memcpy(*out, json_string_value(ct), *len + 1);
    return MQ_OK;
  }
  char path[4096];
  if (mq_path_join(path, sizeof path, dir, "chat_template.jinja") != 0 || !mq_file_exists(path))
    return MQ_OK;
  return mq_file_read(path, CFG_MAX, out, len, err);
}

/* The chat template, kept as text for chat.c. */
static int load_chat_template(mq_tokenizer *t, const char *dir, const json_t *tc, mq_err *err) {
  char *buf;
  size_t len;
  int rc = mq_hf_chat_template(dir, tc, &buf, &len, err);
  if (rc == MQ_OK && buf) rc = mq_tok_set_chat_template(t, buf, len, err);
  free(buf);
  return rc;
}

int mq_tokenizer_load_hf(const char *dir, mq_tokenizer **out, mq_err *err) {
  char path[4096];
  *out = NULL;
  if (mq_path_join(path, sizeof path, dir, "tokenizer.json") != 0)
    return mq_errf(err, MQ_ERR_ARG, "%s: path too long", dir);
  json_t *root = NULL, *tc = NULL, *stm = NULL, *gen = NULL, *cfg = NULL;
  mq_tokenizer *t = NULL;
  int rc = mq_json_load_file(path, TOKJSON_MAX, &root, err);
  if (rc != MQ_OK) return rc;
  if ((tc = opt_json(dir, "tokenizer_config.json", err, &rc)), rc != MQ_OK) goto done;
  if ((stm = opt_json(dir, "special_tokens_map.json", err, &rc)), rc != MQ_OK) goto done;
  if ((gen = opt_json(dir, "generation_config.json", err, &rc)), rc != MQ_OK) goto done;
  if ((cfg = opt_json(dir, "config.json", err, &rc)), rc != MQ_OK) goto done;

  if ((rc = load_model(&t, root, err)) != MQ_OK) goto fail;
  if ((rc = parse_norm(t, json_object_get(root, "normalizer"), err)) != MQ_OK) goto fail;
  if ((rc = parse_pre(t, json_object_get(root, "pre_tokenizer"), err)) != MQ_OK) goto fail;
  if ((rc = load_added(t, json_object_get(root, "added_tokens"), err)) != MQ_OK) goto fail;
  if ((rc = parse_post(t, json_object_get(root, "post_processor"), err)) != MQ_OK) goto fail;
  special_ids(t, tc, stm, gen, cfg);
  /* Llama/Gemma tokenizer classes rebuild the post-processor from
   * add_bos_token (default true) and add_eos_token (default false) */
  const json_t *cls = json_object_get(tc, "tokenizer_class");
  const char *cn = json_is_string(cls) ? json_string_value(cls) : "";
  if (!strncmp(cn, "Llama", 5) || !strncmp(cn, "CodeLlama", 9) || !strncmp(cn, "Gemma", 5)) {
    t->n_prefix = t->n_suffix = 0;
    if (bool_of(tc, "add_bos_token", 1) && t->bos >= 0 &&
        add_ids(&t->prefix, &t->n_prefix, &t->bos, 1))
      goto oom;
    if (bool_of(tc, "add_eos_token", 0) && t->eos >= 0 &&
        add_ids(&t->suffix, &t->n_suffix, &t->eos, 1))
      goto oom;
  }
  if (eog_from(t, gen) != 0 || eog_from(t, cfg) != 0) goto oom;
  if ((rc = load_chat_template(t, dir, tc, err)) != MQ_OK) goto fail;
  mq_dec_spec dec = {0};
  int fused = 0;
  if ((rc = parse_dec(json_object_get(root, "decoder"), &dec, &fused, err)) != MQ_OK) goto fail;
  rc = mq_tok_finish(t, &dec, err); /* dec's strings point into root: finish before freeing it */
  if (rc != MQ_OK) goto fail;
  *out = t;
  t = NULL;
  goto done;
oom:
  rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
fail:
  mq_err_prefix(err, "%s: ", path);
done:
  mq_tokenizer_free(t);
  json_decref(root);
  json_decref(tc);
  json_decref(stm);
  json_decref(gen);
  json_decref(cfg);
  return rc;
}

int mq_tokenizer_load(const char *model_dir, mq_tokenizer **out, mq_err *err) {
  *out = NULL;
  if (!model_dir) return mq_errf(err, MQ_ERR_ARG, "no model folder given");
  if (mq_tokenizer_is_gguf_path(model_dir)) /* a .gguf file: its tokenizer.ggml.* keys */
    return mq_tokenizer_load_gguf(model_dir, out, err);
  char path[4096];
  if (mq_path_join(path, sizeof path, model_dir, "tokenizer.json") != 0 || !mq_file_exists(path))
    return mq_errf(err, MQ_ERR_IO, "%s: no tokenizer.json in this folder", model_dir);
  return mq_tokenizer_load_hf(model_dir, out, err);
}
