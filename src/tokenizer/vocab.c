/* Building an mq_tokenizer (shared by the tokenizer.json and the vocabulary
 * array loaders), freeing it, and the small accessors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

#define MQ_TOK_MAX_VOCAB (1 << 22)

int mq_tok_new(int n_vocab, mq_tokenizer **out, mq_err *err) {
  *out = NULL;
  if (n_vocab <= 0 || n_vocab > MQ_TOK_MAX_VOCAB)
    return mq_errf(err, MQ_ERR_FORMAT, "vocabulary size %d is outside [1, %d]", n_vocab,
                   MQ_TOK_MAX_VOCAB);
  mq_tokenizer *t = calloc(1, sizeof *t);
  if (!t) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for the tokenizer");
  t->n_vocab = n_vocab;
  t->off = calloc((size_t)n_vocab, sizeof *t->off);
  t->len = calloc((size_t)n_vocab, sizeof *t->len);
  t->attr = malloc((size_t)n_vocab);
  if (!t->off || !t->len || !t->attr) {
    mq_tokenizer_free(t);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory for %d tokens", n_vocab);
  }
  memset(t->attr, MQ_TOKA_UNUSED, (size_t)n_vocab);
  t->unk_id = t->bos = t->eos = -1;
  for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
  *out = t;
  return MQ_OK;
}

int mq_tok_set(mq_tokenizer *t, int32_t id, const char *s, size_t n, int attr, mq_err *err) {
  if (id < 0 || id >= t->n_vocab)
    return mq_errf(err, MQ_ERR_FORMAT, "token id %d is outside the vocabulary [0, %d)", (int)id,
                   t->n_vocab);
  if ((t->attr[id] & 0x0F) != MQ_TOKA_UNUSED)
    return mq_errf(err, MQ_ERR_FORMAT, "token id %d is given twice", (int)id);
  if (n > UINT32_MAX / 2 || t->text_len + n > UINT32_MAX)
    return mq_errf(err, MQ_ERR_FORMAT, "token strings exceed 4 GiB");
  if (t->text_len + n + 1 > t->text_cap) {
    size_t cap = t->text_cap ? t->text_cap : 4096;
    while (cap < t->text_len + n + 1) cap *= 2;
    char *p = realloc(t->text, cap);
    if (!p) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for token strings");
    t->text = p;
    t->text_cap = cap;
  }
  memcpy(t->text + t->text_len, s, n);
  t->off[id] = (uint32_t)t->text_len;
  t->len[id] = (uint32_t)n;
  t->text_len += n;
  t->text[t->text_len] = 0;
  t->attr[id] = (uint8_t)attr;
  return MQ_OK;
}

int mq_tok_index(mq_tokenizer *t, mq_err *err) {
  for (int i = 0; i < t->n_vocab; i++) {
    if (!(t->attr[i] & MQ_TOKF_MODEL)) continue;
    /* a repeated string keeps its first id (as llama.cpp's GGUF vocabularies do) */
    if (mq_strmap_put(&t->vocab, t->text + t->off[i], t->len[i], i) < 0)
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory for the vocabulary map");
  }
  return MQ_OK;
}

int mq_tok_merges_alloc(mq_tokenizer *t, int n, mq_err *err) {
  if (n < 0 || n > MQ_TOK_MAX_VOCAB * 4)
    return mq_errf(err, MQ_ERR_FORMAT, "%d merges is out of range", n);
  t->merge_keys = malloc(((size_t)n * 2 + 1) * sizeof(uint32_t));
  if (!t->merge_keys) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for %d merges", n);
  return MQ_OK;
}

int mq_tok_add_merge(mq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, int rank,
                     mq_err *err) {
  int64_t a = mq_strmap_get(&t->vocab, l, ll), b = mq_strmap_get(&t->vocab, r, rl);
  if (a < 0 || b < 0)
    return mq_errf(err, MQ_ERR_FORMAT, "merge %d: \"%.*s\" is not in the vocabulary", rank,
                   (int)(a < 0 ? ll : rl), a < 0 ? l : r);
  /* the merged token is the concatenation */
  char small[256];
  char *cat = ll + rl <= sizeof small ? small : malloc(ll + rl);
  if (!cat) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  memcpy(cat, l, ll);
  memcpy(cat + ll, r, rl);
  int64_t m = mq_strmap_get(&t->vocab, cat, ll + rl);
  if (cat != small) free(cat);
  if (m < 0)
    return mq_errf(err, MQ_ERR_FORMAT, "merge %d: \"%.*s%.*s\" is not in the vocabulary", rank,
                   (int)ll, l, (int)rl, r);
  uint32_t *key = t->merge_keys + 2 * (size_t)rank;
  key[0] = (uint32_t)a;
  key[1] = (uint32_t)b;
  int rc = mq_strmap_put(&t->merges, (const char *)key, 8, (int64_t)rank << 32 | m);
  if (rc < 0) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for merges");
  return MQ_OK; /* a repeated pair keeps its first (best) rank */
}

int mq_tok_add_added(mq_tokenizer *t, int32_t id, const char *content, size_t n, int special,
                     int lstrip, int rstrip, int single_word, int normalized, mq_err *err) {
  if (id < 0 || id >= t->n_vocab)
    return mq_errf(err, MQ_ERR_FORMAT, "added token id %d is outside the vocabulary", (int)id);
  if (n == 0) return mq_errf(err, MQ_ERR_FORMAT, "added token %d has empty content", (int)id);
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].id == id) return MQ_OK; /* listed twice: keep the first */
  mq_added *na = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *na);
  if (!na) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for added tokens");
  t->added = na;
  mq_added *a = &na[t->n_added];
  memset(a, 0, sizeof *a);
  a->content = malloc(n + 1);
  if (!a->content) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for added tokens");
  memcpy(a->content, content, n);
  a->content[n] = 0;
  a->clen = n;
  t->n_added++;
  a->id = id;
  a->special = (uint8_t) !!special;
  a->lstrip = (uint8_t) !!lstrip;
  a->rstrip = (uint8_t) !!rstrip;
  a->single_word = (uint8_t) !!single_word;
  a->normalized = (uint8_t) !!normalized;
  if (normalized && t->n_norm) {
    mq_bbuf o = {0}, tmp = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    int rc = md ? mq_tok_normalize(t, content, n, &o, &tmp, md, err)
                : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    pcre2_match_data_free(md);
    mq_bbuf_free(&tmp);
    if (rc == MQ_OK && o.n == 0) /* normalized to nothing: match the content as is */
      if (mq_bbuf_add(&o, content, n) != 0) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    if (rc != MQ_OK || mq_bbuf_addc(&o, 0) != 0) {
      mq_bbuf_free(&o);
      return rc != MQ_OK ? rc : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    }
    a->text = o.p;
    a->len = o.n - 1;
  } else {
    a->text = malloc(n + 1);
    if (!a->text) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for added tokens");
    memcpy(a->text, content, n + 1);
    a->len = n;
  }
  /* the id's attribute and string: an added token's content is its piece */
  if ((t->attr[id] & 0x0F) == MQ_TOKA_UNUSED) {
    int rc = mq_tok_set(t, id, content, n, special ? MQ_TOKA_SPECIAL : MQ_TOKA_ADDED, err);
    if (rc != MQ_OK) return rc;
  } else {
    t->attr[id] =
        (uint8_t)((t->attr[id] & MQ_TOKF_MODEL) | (special ? MQ_TOKA_SPECIAL : MQ_TOKA_ADDED));
  }
  return MQ_OK;
}

int mq_tok_add_eog(mq_tokenizer *t, int32_t id) {
  if (id < 0 || id >= t->n_vocab) return 0;
  for (int i = 0; i < t->n_eog; i++)
    if (t->eog[i] == id) return 0;
  int32_t *p = realloc(t->eog, (size_t)(t->n_eog + 1) * sizeof *p);
  if (!p) return -1;
  t->eog = p;
  t->eog[t->n_eog++] = id;
  return 0;
}

static int cmp_added(const void *x, const void *y) {
  const mq_added *a = x, *b = y;
  unsigned char ca = (unsigned char)a->text[0], cb = (unsigned char)b->text[0];
  if (ca != cb) return ca < cb ? -1 : 1;
  if (a->len != b->len) return a->len > b->len ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* Piece of a model token under the decoder's rules, appended to b. */
static int model_piece(const mq_dec_spec *d, const char *s, size_t n, mq_bbuf *b) {
  if (d->byte_fallback && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
    unsigned v;
    char hex[3] = {s[3], s[4], 0};
    char *end;
    v = (unsigned)strtoul(hex, &end, 16);
    if (*end == 0 && isxdigit((unsigned char)hex[0]) && isxdigit((unsigned char)hex[1]))
      return mq_bbuf_addc(b, (char)v);
  }
  size_t start = b->n;
  if (mq_bbuf_add(b, s, n) != 0) return -1;
  for (int r = 0; r < d->n_repl; r++) { /* literal replacements, in place */
    if (!d->flen[r]) continue;
    mq_bbuf o = {0};
    const char *p = b->p + start, *e = b->p + b->n;
    while (p < e) {
      if ((size_t)(e - p) >= d->flen[r] && !memcmp(p, d->from[r], d->flen[r])) {
        if (mq_bbuf_add(&o, d->to[r], d->tlen[r]) != 0) goto oom;
        p += d->flen[r];
      } else if (mq_bbuf_addc(&o, *p++) != 0) {
        goto oom;
      }
    }
    b->n = start;
    if (mq_bbuf_add(b, o.p, o.n) != 0) goto oom;
    mq_bbuf_free(&o);
    continue;
  oom:
    mq_bbuf_free(&o);
    return -1;
  }
  if (d->byte_level) { /* every char must stand for a byte, else keep the text */
    int ok = 1;
    for (size_t i = start; i < b->n && ok;) {
      uint32_t cp;
      i += (size_t)mq_utf8_decode(b->p + i, b->n - i, &cp);
      ok = mq_bytelevel_byte(cp) >= 0;
    }
    if (ok) { /* each char is 1-2 bytes and becomes 1: convert in place */
      size_t w = start;
      for (size_t i = start; i < b->n;) {
        uint32_t cp;
        i += (size_t)mq_utf8_decode(b->p + i, b->n - i, &cp);
        b->p[w++] = (char)mq_bytelevel_byte(cp);
      }
      b->n = w;
    }
  }
  for (int k = 0; k < d->strip_tok && b->n > start && b->p[start] == ' '; k++) {
    memmove(b->p + start, b->p + start + 1, b->n - start - 1);
    b->n--;
  }
  return 0;
}

static const char *const EOG_NAMES[] = {"<|eot_id|>",
                                        "<|eom_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|endoftext|>",
                                        "<end_of_turn>",
                                        "<|end_of_text|>",
                                        "<\xEF\xBD\x9C"
                                        "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                        NULL};

int mq_tok_finish(mq_tokenizer *t, const mq_dec_spec *dec, mq_err *err) {
  /* byte-fallback ids and the byte-level character table */
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    int64_t id = mq_strmap_get(&t->vocab, name, 6);
    t->byte_id[b] = (int32_t)id;
    if (id >= 0 && (t->attr[id] & 0x0F) == MQ_TOKA_NORMAL &&
        (t->byte_fallback || dec->byte_fallback))
      t->attr[id] = (uint8_t)((t->attr[id] & MQ_TOKF_MODEL) | MQ_TOKA_BYTE);
    t->bl_len[b] = (uint8_t)mq_utf8_encode(mq_bytelevel_char((unsigned char)b), t->bl_char[b]);
  }
  /* added tokens: sorted by first byte, longest first */
  if (t->n_added) qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
  int k = 0;
  for (int c = 0; c <= 256; c++) {
    while (k < t->n_added && (unsigned char)t->added[k].text[0] < c) k++;
    t->added_first[c] = k;
  }
  t->added_first[256] = t->n_added;
  int32_t *added_of = malloc((size_t)t->n_vocab * sizeof *added_of);
  if (!added_of) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < t->n_vocab; i++) added_of[i] = -1;
  for (int i = 0; i < t->n_added; i++) {
    mq_added *a = &t->added[i];
    added_of[a->id] = i;
    if (a->normalized)
      t->any_norm_added = 1;
    else
      t->any_raw_added = 1;
    if (a->single_word) t->any_single_word = 1;
  }
  if (t->any_single_word && !t->word_re) {
    int rc = mq_tok_regex("\\w", 2, 0, &t->word_re, "single_word", err);
    if (rc != MQ_OK) {
      free(added_of);
      return rc;
    }
  }
  /* pieces */
  mq_bbuf pb = {0};
  t->poff = malloc((size_t)t->n_vocab * sizeof *t->poff);
  t->plen = malloc((size_t)t->n_vocab * sizeof *t->plen);
  int fail = !t->poff || !t->plen;
  for (int i = 0; i < t->n_vocab && !fail; i++) {
    size_t start = pb.n;
    int a = t->attr[i] & 0x0F;
    if (added_of[i] >= 0) {
      const mq_added *ad = &t->added[added_of[i]];
      fail = mq_bbuf_add(&pb, ad->content, ad->clen) != 0;
    } else if (a == MQ_TOKA_SPECIAL || a == MQ_TOKA_ADDED) {
      fail = mq_bbuf_add(&pb, t->text + t->off[i], t->len[i]) != 0;
    } else if (a != MQ_TOKA_UNUSED) {
      fail = model_piece(dec, t->text + t->off[i], t->len[i], &pb) != 0;
    }
    if (pb.n - start > UINT32_MAX || pb.n > UINT32_MAX) fail = 1;
    if (!fail) {
      t->poff[i] = (uint32_t)start;
      t->plen[i] = (uint32_t)(pb.n - start);
    }
  }
  free(added_of);
  if (fail || mq_bbuf_addc(&pb, 0) != 0) {
    mq_bbuf_free(&pb);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory for token pieces");
  }
  t->piece = pb.p;
  t->dec_strip = dec->strip_seq;
  t->dec_per_byte_fffd = dec->byte_fallback && !dec->byte_level;
  /* the encoder prepends "▁" to every segment after an added token when the
   * normalizer prepends, or Metaspace prepends always: strip it there too */
  int prepends_each = 0;
  for (int i = 0; i < t->n_norm; i++)
    if (t->norm[i].kind == MQ_NORM_PREPEND) prepends_each = 1;
  for (int i = 0; i < t->n_pre; i++)
    if (t->pre[i].kind == MQ_PRE_METASPACE && t->pre[i].prepend == 1) prepends_each = 1;
  t->dec_strip_after_added = dec->strip_seq && prepends_each;
  /* end of generation: EOS plus the usual end-of-turn specials */
  if (mq_tok_add_eog(t, t->eos) != 0) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < t->n_added; i++) {
    if (!t->added[i].special) continue;
    for (int j = 0; EOG_NAMES[j]; j++)
      if (t->added[i].clen == strlen(EOG_NAMES[j]) &&
          !memcmp(t->added[i].content, EOG_NAMES[j], t->added[i].clen) &&
          mq_tok_add_eog(t, t->added[i].id) != 0)
        return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  return MQ_OK;
}

int mq_tok_push_pre(mq_tokenizer *t, const mq_pre_step *s, mq_err *err) {
  mq_pre_step *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
  if (!p) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  t->pre = p;
  t->pre[t->n_pre++] = *s;
  return MQ_OK;
}

int mq_tok_push_norm(mq_tokenizer *t, const mq_norm_step *s, mq_err *err) {
  mq_norm_step *p = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
  if (!p) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  t->norm = p;
  t->norm[t->n_norm++] = *s;
  return MQ_OK;
}

void mq_tokenizer_free(mq_tokenizer *t) {
  if (!t) return;
  free(t->chat_template);
  free(t->text);
  free(t->off);
  free(t->len);
  free(t->attr);
  free(t->score);
  mq_strmap_free(&t->vocab);
  free(t->merge_keys);
  mq_strmap_free(&t->merges);
  for (int i = 0; i < t->n_norm; i++) {
    free(t->norm[i].a);
    free(t->norm[i].b);
    pcre2_code_free(t->norm[i].re);
  }
  free(t->norm);
  for (int i = 0; i < t->n_pre; i++) {
    pcre2_code_free(t->pre[i].re);
    free(t->pre[i].a);
  }
  free(t->pre);
  for (int i = 0; i < t->n_added; i++) {
    free(t->added[i].text);
    free(t->added[i].content);
  }
  free(t->added);
  pcre2_code_free(t->word_re);
  free(t->prefix);
  free(t->suffix);
  free(t->piece);
  free(t->poff);
  free(t->plen);
  free(t->eog);
  free(t);
}

int mq_tokenizer_n_vocab(const mq_tokenizer *t) { return t->n_vocab; }
int32_t mq_tokenizer_bos(const mq_tokenizer *t) { return t->bos; }
int32_t mq_tokenizer_eos(const mq_tokenizer *t) { return t->eos; }

int mq_tokenizer_is_eog(const mq_tokenizer *t, int32_t id) {
  for (int i = 0; i < t->n_eog; i++)
    if (t->eog[i] == id) return 1;
  return 0;
}

int mq_tokenizer_is_special(const mq_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->n_vocab && (t->attr[id] & 0x0F) == MQ_TOKA_SPECIAL;
}

const char *mq_tokenizer_piece(const mq_tokenizer *t, int32_t id, size_t *len) {
  if (id < 0 || id >= t->n_vocab) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = t->plen[id];
  return t->piece + t->poff[id];
}
