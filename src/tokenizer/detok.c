/* Token ids -> text. Each id has a precomputed piece (its bytes after the
 * decoder's rules: byte-level map, "▁" -> " ", <0xNN> -> byte); decoding
 * joins pieces, strips the space the encoder prepended (at the start, and
 * after added tokens when the encoder prepended there too), and passes the
 * bytes through a streaming UTF-8 validator, so text handed out is always
 * well-formed: a partial character is held back until it completes, and
 * ill-formed bytes become U+FFFD. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

struct mq_detok {
  const mq_tokenizer *t;
  int flags;
  int strip; /* leading spaces still to strip */
  mq_utf8_fix fix;
  mq_bbuf out;
};

static void detok_init(mq_detok *d, const mq_tokenizer *t, int flags) {
  memset(d, 0, sizeof *d);
  d->t = t;
  d->flags = flags;
  d->strip = (flags & MQ_DECODE_CONTINUE) ? 0 : t->dec_strip;
  d->fix.per_byte = t->dec_per_byte_fffd;
}

/* Append the text of id to d->out. */
static int feed(mq_detok *d, int32_t id, mq_err *err) {
  const mq_tokenizer *t = d->t;
  if (id < 0 || id >= t->n_vocab)
    return mq_errf(err, MQ_ERR_RANGE, "token id %d is outside the vocabulary [0, %d)", (int)id,
                   t->n_vocab);
  int a = t->attr[id] & 0x0F;
  const char *p = t->piece + t->poff[id];
  size_t n = t->plen[id];
  if (a == MQ_TOKA_SPECIAL || a == MQ_TOKA_ADDED) {
    if (!(a == MQ_TOKA_SPECIAL && (d->flags & MQ_DECODE_SKIP_SPECIAL)) &&
        mq_utf8_fix_feed(&d->fix, p, n, &d->out) != 0)
      goto oom;
    d->strip = t->dec_strip_after_added ? t->dec_strip : 0;
    return MQ_OK;
  }
  int stripped = 0;
  while (d->strip > 0 && n > 0 && p[0] == ' ') {
    p++, n--, d->strip--;
    stripped = 1;
  }
  if (n > 0 || stripped) d->strip = 0;
  if (mq_utf8_fix_feed(&d->fix, p, n, &d->out) != 0) goto oom;
  return MQ_OK;
oom:
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory while decoding");
}

int mq_detok_new(const mq_tokenizer *t, int flags, mq_detok **out, mq_err *err) {
  *out = NULL;
  if (!t) return mq_errf(err, MQ_ERR_ARG, "detokenizer: no tokenizer");
  mq_detok *d = malloc(sizeof *d);
  if (!d) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  detok_init(d, t, flags);
  *out = d;
  return MQ_OK;
}

int mq_detok_push(mq_detok *d, int32_t id, const char **text, size_t *len, mq_err *err) {
  d->out.n = 0;
  int rc = feed(d, id, err);
  *text = d->out.p ? d->out.p : "";
  *len = d->out.n;
  return rc;
}

void mq_detok_flush(mq_detok *d, const char **text, size_t *len) {
  d->out.n = 0;
  if (mq_utf8_fix_flush(&d->fix, &d->out) != 0) d->out.n = 0; /* out of memory: drop the U+FFFD */
  *text = d->out.p ? d->out.p : "";
  *len = d->out.n;
  d->strip = 0; /* what follows continues the text */
}

void mq_detok_free(mq_detok *d) {
  if (!d) return;
  mq_bbuf_free(&d->out);
  free(d);
}

int mq_tokenizer_decode(const mq_tokenizer *t, const int32_t *ids, int n_ids, int flags,
                        char **text, size_t *len, mq_err *err) {
  *text = NULL;
  if (len) *len = 0;
  if (!t || n_ids < 0 || (!ids && n_ids)) return mq_errf(err, MQ_ERR_ARG, "decode: bad arguments");
  mq_detok d;
  detok_init(&d, t, flags);
  int rc = MQ_OK;
  for (int i = 0; i < n_ids && rc == MQ_OK; i++) rc = feed(&d, ids[i], err);
  if (rc == MQ_OK && (mq_utf8_fix_flush(&d.fix, &d.out) != 0 || mq_bbuf_addc(&d.out, 0) != 0))
    rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory while decoding");
  if (rc != MQ_OK) {
    mq_bbuf_free(&d.out);
    return rc;
  }
  *text = d.out.p;
  if (len) *len = d.out.n - 1;
  return MQ_OK;
}
