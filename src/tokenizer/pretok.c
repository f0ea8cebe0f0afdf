/* Pre-tokenizers: the regexes (PCRE2, Unicode properties), the steps
 * tokenizer.json can describe (Split with its five behaviors, ByteLevel,
 * Metaspace, Sequence) and the named presets of llama.cpp's
 * tokenizer.ggml.pre. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

/* Hugging Face compiles its patterns with Oniguruma (Ruby syntax), where \s
 * also matches U+0085 and \h is a hex digit; PCRE2 differs on both. Rewrite
 * those escapes; everything else means the same in both engines. */
static int translate(const char *p, size_t n, mq_bbuf *o) {
  int in_class = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '\\' && i + 1 < n) {
      char e = p[i + 1];
      const char *rep = NULL;
      if (e == 's')
        rep = in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      else if (e == 'S' && !in_class)
        rep = "[^\\s\\x{85}]";
      else if (e == 'h')
        rep = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
      else if (e == 'H' && !in_class)
        rep = "[^0-9a-fA-F]";
      if (rep) {
        if (mq_bbuf_add(o, rep, strlen(rep)) != 0) return -1;
      } else if (mq_bbuf_add(o, p + i, 2) != 0) {
        return -1;
      }
      i++;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = 1;
      if (mq_bbuf_addc(o, c) != 0) return -1;
      /* a ']' right after '[' or '[^' is a literal */
      if (i + 1 < n && p[i + 1] == '^') {
        if (mq_bbuf_addc(o, '^') != 0) return -1;
        i++;
      }
      if (i + 1 < n && p[i + 1] == ']') {
        if (mq_bbuf_addc(o, ']') != 0) return -1;
        i++;
      }
      continue;
    }
    if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* [:alpha:] */
      const char *end = memchr(p + i + 2, ']', n - i - 2);
      size_t k = end ? (size_t)(end - p) + 1 : i + 1;
      if (mq_bbuf_add(o, p + i, k - i) != 0) return -1;
      i = k - 1;
      continue;
    }
    if (in_class && c == ']') in_class = 0;
    if (mq_bbuf_addc(o, c) != 0) return -1;
  }
  return 0;
}

int mq_tok_regex(const char *pat, size_t len, int literal, pcre2_code **out, const char *where,
                 mq_err *err) {
  *out = NULL;
  mq_bbuf tp = {0};
  uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  if (!literal && translate(pat, len, &tp) != 0) {
    mq_bbuf_free(&tp);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  int ecode;
  PCRE2_SIZE eoff;
  pcre2_code *re =
      literal ? pcre2_compile((PCRE2_SPTR)pat, len, opts, &ecode, &eoff, NULL)
              : pcre2_compile((PCRE2_SPTR)(tp.p ? tp.p : ""), tp.n, opts, &ecode, &eoff, NULL);
  mq_bbuf_free(&tp);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ecode, msg, sizeof msg);
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: cannot compile the regex \"%.*s\": %s", where,
                   (int)(len > 200 ? 200 : len), pat, (const char *)msg);
  }
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
  *out = re;
  return MQ_OK;
}

void mq_words_free(mq_words *w) {
  mq_bbuf_free(&w->text);
  free(w->start);
  free(w->len);
  memset(w, 0, sizeof *w);
}

static void words_reset(mq_words *w) {
  w->text.n = 0;
  w->n = 0;
}

/* Append a word with text s[0..n) (empty words are dropped). */
static int words_add(mq_words *w, const char *s, size_t n) {
  if (!n) return 0;
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    uint32_t *a = realloc(w->start, cap * sizeof *a);
    if (!a) return -1;
    w->start = a;
    uint32_t *b = realloc(w->len, cap * sizeof *b);
    if (!b) return -1;
    w->len = b;
    w->cap = cap;
  }
  if (w->text.n + n > UINT32_MAX) return -1;
  w->start[w->n] = (uint32_t)w->text.n;
  w->len[w->n] = (uint32_t)n;
  w->n++;
  return mq_bbuf_add(&w->text, s, n);
}

/* Split s by re under a Hugging Face SplitDelimiterBehavior; pieces go to out. */
typedef struct seg {
  size_t a, b;
  int m;
} seg;

static int split_one(const mq_pre_step *st, const char *s, size_t n, mq_words *out,
                     pcre2_match_data *md, mq_err *err) {
  seg *v = NULL;
  size_t nv = 0, cap = 0, prev = 0, at = 0;
  int rc = MQ_OK;
#define PUSH(x, y, mm)                                                                             \
  do {                                                                                             \
    if (nv == cap) {                                                                               \
      cap = cap ? cap * 2 : 16;                                                                    \
      seg *nvp = realloc(v, cap * sizeof *v);                                                      \
      if (!nvp) goto oom;                                                                          \
      v = nvp;                                                                                     \
    }                                                                                              \
    v[nv].a = (x), v[nv].b = (y), v[nv].m = (mm) != st->invert, nv++;                              \
  } while (0)
  while (at <= n) {
    int r = pcre2_match(st->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
    if (r == PCRE2_ERROR_NOMATCH) break;
    if (r < 0) {
      PCRE2_UCHAR msg[200];
      pcre2_get_error_message(r, msg, sizeof msg);
      rc = mq_errf(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer regex failed: %s", (const char *)msg);
      goto done;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t ms = ov[0], me = ov[1];
    if (me <= ms) { /* empty match: move on by one character */
      if (ms >= n) break;
      at = ms + (size_t)mq_utf8_len_at(s, n, ms);
      continue;
    }
    if (ms > prev) PUSH(prev, ms, 0);
    PUSH(ms, me, 1);
    prev = at = me;
  }
  if (prev < n) PUSH(prev, n, 0);
#undef PUSH
  /* behaviors, as Hugging Face's NormalizedString::split defines them */
  if (st->behavior == MQ_SPLIT_MERGED_NEXT) {
    size_t w = nv; /* fold from the right, in place, writing leftwards */
    int prev_m = 0;
    for (size_t i = nv; i-- > 0;) {
      if (v[i].m && !prev_m && w < nv)
        v[w].a = v[i].a;
      else
        v[--w] = v[i];
      prev_m = v[i].m;
    }
    for (size_t i = w; i < nv; i++)
      if (words_add(out, s + v[i].a, v[i].b - v[i].a) != 0) goto oom;
  } else {
    size_t w = 0;
    int prev_m = 0;
    for (size_t i = 0; i < nv; i++) {
      seg g = v[i];
      if (st->behavior == MQ_SPLIT_REMOVED) {
        if (!g.m) v[w++] = g;
      } else if (st->behavior == MQ_SPLIT_MERGED_PREV) {
        if (g.m && !prev_m && w)
          v[w - 1].b = g.b;
        else
          v[w++] = g;
      } else if (st->behavior == MQ_SPLIT_CONTIGUOUS) {
        if (g.m == prev_m && w)
          v[w - 1].b = g.b;
        else
          v[w++] = g;
      } else {
        v[w++] = g;
      }
      prev_m = g.m;
    }
    for (size_t i = 0; i < w; i++)
      if (words_add(out, s + v[i].a, v[i].b - v[i].a) != 0) goto oom;
  }
done:
  free(v);
  return rc;
oom:
  free(v);
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory in the pre-tokenizer");
}

/* Append s with every byte replaced by its byte-level character. */
static int bytelevel_map(const mq_tokenizer *t, const char *s, size_t n, mq_bbuf *o) {
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (mq_bbuf_add(o, t->bl_char[b], t->bl_len[b]) != 0) return -1;
  }
  return 0;
}

static int step(const mq_tokenizer *t, const mq_pre_step *st, const mq_words *in, int first,
                mq_words *out, pcre2_match_data *md, mq_err *err) {
  words_reset(out);
  mq_bbuf tmp = {0};
  mq_words parts = {0};
  int rc = MQ_OK;
  for (size_t i = 0; i < in->n && rc == MQ_OK; i++) {
    const char *s = in->text.p + in->start[i];
    size_t n = in->len[i];
    if (st->kind == MQ_PRE_SPLIT) {
      rc = split_one(st, s, n, out, md, err);
    } else if (st->kind == MQ_PRE_BYTELEVEL) {
      tmp.n = 0;
      if (st->add_prefix_space && s[0] != ' ' && mq_bbuf_addc(&tmp, ' ') != 0) goto oom;
      if (mq_bbuf_add(&tmp, s, n) != 0) goto oom;
      words_reset(&parts);
      if (st->re) {
        mq_pre_step iso = *st;
        iso.behavior = MQ_SPLIT_ISOLATED;
        iso.invert = 0;
        rc = split_one(&iso, tmp.p, tmp.n, &parts, md, err);
      } else if (words_add(&parts, tmp.p, tmp.n) != 0) {
        goto oom;
      }
      for (size_t k = 0; k < parts.n && rc == MQ_OK; k++) {
        mq_bbuf m = {0};
        if (bytelevel_map(t, parts.text.p + parts.start[k], parts.len[k], &m) != 0 ||
            words_add(out, m.p, m.n) != 0) {
          mq_bbuf_free(&m);
          goto oom;
        }
        mq_bbuf_free(&m);
      }
    } else { /* Metaspace */
      tmp.n = 0;
      int pre = st->prepend == 1 || (st->prepend == 2 && first && i == 0);
      if (pre && !(n >= st->alen && !memcmp(s, st->a, st->alen)) &&
          mq_bbuf_add(&tmp, st->a, st->alen) != 0)
        goto oom;
      for (size_t k = 0; k < n; k++) {
        int r = s[k] == ' ' ? mq_bbuf_add(&tmp, st->a, st->alen) : mq_bbuf_addc(&tmp, s[k]);
        if (r != 0) goto oom;
      }
      if (st->split) {
        /* split before each replacement character (MergedWithNext) */
        size_t a = 0;
        for (size_t k = 0; k + st->alen <= tmp.n; k++) {
          if (k > a && !memcmp(tmp.p + k, st->a, st->alen)) {
            if (words_add(out, tmp.p + a, k - a) != 0) goto oom;
            a = k;
          }
        }
        if (words_add(out, tmp.p + a, tmp.n - a) != 0) goto oom;
      } else if (words_add(out, tmp.p, tmp.n) != 0) {
        goto oom;
      }
    }
  }
  mq_bbuf_free(&tmp);
  mq_words_free(&parts);
  return rc;
oom:
  mq_bbuf_free(&tmp);
  mq_words_free(&parts);
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory in the pre-tokenizer");
}

int mq_tok_pretokenize(const mq_tokenizer *t, const char *s, size_t n, int first, mq_words *w,
                       mq_words *tmp, pcre2_match_data *md, mq_err *err) {
  words_reset(w);
  if (words_add(w, s, n) != 0) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < t->n_pre; i++) {
    int rc = step(t, &t->pre[i], w, first, tmp, md, err);
    if (rc != MQ_OK) return rc;
    mq_words x = *w;
    *w = *tmp;
    *tmp = x;
  }
  return MQ_OK;
}
