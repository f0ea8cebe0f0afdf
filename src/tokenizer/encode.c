/* Text -> token ids: the whole encode pipeline (see tokenizer.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

#define MQ_TOK_MAX_TEXT ((size_t)1 << 30)

typedef struct enc {
  const mq_tokenizer *t;
  pcre2_match_data *md;
  mq_bbuf norm, tmp;
  mq_words w, wtmp;
  mq_bpe_scratch bpe;
  mq_ibuf out;
  mq_err *err;
} enc;

static int oom(enc *e) { return mq_errf(e->err, MQ_ERR_NOMEM, "out of memory while encoding"); }

/* Pre-tokenize a normalized piece and run the model on each word. */
static int model_text(enc *e, const char *s, size_t n, int first) {
  if (!n) return MQ_OK;
  int rc = mq_tok_pretokenize(e->t, s, n, first, &e->w, &e->wtmp, e->md, e->err);
  if (rc != MQ_OK) return rc;
  for (size_t i = 0; i < e->w.n; i++)
    if (mq_bpe_word(e->t, e->w.text.p + e->w.start[i], e->w.len[i], &e->bpe, &e->out) != 0)
      return oom(e);
  return MQ_OK;
}

/* One segment of raw text between added tokens. */
static int segment(enc *e, const char *s, size_t n, int first) {
  if (!n) return MQ_OK;
  int rc = mq_tok_normalize(e->t, s, n, &e->norm, &e->tmp, e->md, e->err);
  if (rc != MQ_OK) return rc;
  /* e->norm is not touched below: the pre-tokenizer has its own buffers */
  const char *p = e->norm.p ? e->norm.p : "";
  size_t np = e->norm.n, pos = 0, a, b;
  int32_t id;
  while (mq_tok_find_added(e->t, p, np, pos, 1, e->md, &a, &b, &id)) {
    if ((rc = model_text(e, p + pos, a - pos, first && pos == 0)) != MQ_OK) return rc;
    if (mq_ibuf_push(&e->out, id) != 0) return oom(e);
    pos = b;
  }
  return model_text(e, p + pos, np - pos, first && pos == 0);
}

int mq_tokenizer_encode(const mq_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t **ids, int *n_ids, mq_err *err) {
  *ids = NULL;
  *n_ids = 0;
  if (!t || (!text && len))
    return mq_errf(err, MQ_ERR_ARG, "tokenizer encode: no tokenizer or text");
  if (len > MQ_TOK_MAX_TEXT)
    return mq_errf(err, MQ_ERR_RANGE, "text of %zu bytes is too long to tokenize (limit %zu)", len,
                   MQ_TOK_MAX_TEXT);
  enc e = {.t = t, .err = err};
  mq_bbuf clean = {0};
  int rc = MQ_OK;
  e.md = pcre2_match_data_create(8, NULL);
  /* ill-formed UTF-8 becomes U+FFFD, so every later stage sees valid text */
  if (!e.md || mq_utf8_sanitize(text ? text : "", len, 0, &clean) != 0) {
    rc = oom(&e);
    goto done;
  }
  if (add_special)
    for (int i = 0; i < t->n_prefix; i++)
      if (mq_ibuf_push(&e.out, t->prefix[i]) != 0) {
        rc = oom(&e);
        goto done;
      }
  const char *s = clean.p ? clean.p : "";
  size_t pos = 0, a, b;
  int32_t id;
  while (rc == MQ_OK && mq_tok_find_added(t, s, clean.n, pos, 0, e.md, &a, &b, &id)) {
    rc = segment(&e, s + pos, a - pos, pos == 0);
    if (rc == MQ_OK && mq_ibuf_push(&e.out, id) != 0) rc = oom(&e);
    pos = b;
  }
  if (rc == MQ_OK) rc = segment(&e, s + pos, clean.n - pos, pos == 0);
  if (rc == MQ_OK && add_special)
    for (int i = 0; i < t->n_suffix && rc == MQ_OK; i++)
      if (mq_ibuf_push(&e.out, t->suffix[i]) != 0) rc = oom(&e);
  if (rc == MQ_OK && e.out.n > INT_MAX) rc = mq_errf(err, MQ_ERR_RANGE, "too many tokens");
done:
  if (rc == MQ_OK) {
    *ids = e.out.p ? e.out.p : malloc(sizeof(int32_t));
    if (!*ids)
      rc = oom(&e);
    else
      *n_ids = (int)e.out.n;
  } else {
    mq_ibuf_free(&e.out);
  }
  pcre2_match_data_free(e.md);
  mq_bbuf_free(&clean);
  mq_bbuf_free(&e.norm);
  mq_bbuf_free(&e.tmp);
  mq_words_free(&e.w);
  mq_words_free(&e.wtmp);
  mq_bpe_scratch_free(&e.bpe);
  return rc;
}
