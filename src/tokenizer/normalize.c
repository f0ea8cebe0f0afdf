/* Normalizers: Prepend, Replace (literal or regex), Unicode normalization
 * forms and lower-casing (ICU), Strip. Applied in order to one text segment
 * (the text between added tokens). */
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

/* UTF-8 -> UTF-16 -> f -> UTF-8 with ICU. */
static int icu_apply(const mq_norm_step *st, const char *s, size_t n, mq_bbuf *out, mq_err *err) {
  if (n > (size_t)INT32_MAX / 4) return mq_errf(err, MQ_ERR_RANGE, "text too long to normalize");
  UErrorCode ue = U_ZERO_ERROR;
  int32_t cap = (int32_t)n + 16, ulen = 0;
  UChar *u = malloc((size_t)cap * sizeof(UChar));
  UChar *v = NULL;
  int rc = MQ_OK;
  if (!u) goto oom;
  u_strFromUTF8(u, cap, &ulen, s, (int32_t)n, &ue);
  if (U_FAILURE(ue)) goto icu_fail;
  int32_t vcap = ulen * 4 + 16, vlen;
  v = malloc((size_t)vcap * sizeof(UChar));
  if (!v) goto oom;
  if (st->kind == MQ_NORM_LOWER) {
    vlen = u_strToLower(v, vcap, u, ulen, "", &ue);
  } else {
    const UNormalizer2 *nz = st->kind == MQ_NORM_NFC    ? unorm2_getNFCInstance(&ue)
                             : st->kind == MQ_NORM_NFD  ? unorm2_getNFDInstance(&ue)
                             : st->kind == MQ_NORM_NFKC ? unorm2_getNFKCInstance(&ue)
                                                        : unorm2_getNFKDInstance(&ue);
    if (U_FAILURE(ue)) goto icu_fail;
    vlen = unorm2_normalize(nz, u, ulen, v, vcap, &ue);
  }
  if (U_FAILURE(ue)) goto icu_fail;
  int32_t olen = 0;
  u_strToUTF8(NULL, 0, &olen, v, vlen, &ue);
  if (ue != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(ue)) goto icu_fail;
  ue = U_ZERO_ERROR;
  if (mq_bbuf_reserve(out, (size_t)olen + 1) != 0) goto oom;
  u_strToUTF8(out->p + out->n, olen + 1, &olen, v, vlen, &ue);
  if (U_FAILURE(ue)) goto icu_fail;
  out->n += (size_t)olen;
  goto done;
icu_fail:
  rc = mq_errf(err, MQ_ERR_FORMAT, "Unicode normalization failed: %s", u_errorName(ue));
  goto done;
oom:
  rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory in the normalizer");
done:
  free(u);
  free(v);
  return rc;
}

static int is_space_at(const char *s, size_t n, size_t i, size_t *len) {
  uint32_t cp;
  int l = mq_utf8_decode(s + i, n - i, &cp);
  *len = (size_t)l;
  return u_isUWhiteSpace((UChar32)cp);
}

static int apply(const mq_norm_step *st, const char *s, size_t n, mq_bbuf *out,
                 pcre2_match_data *md, mq_err *err) {
  out->n = 0;
  switch (st->kind) {
  case MQ_NORM_PREPEND:
    if (n && mq_bbuf_add(out, st->a, st->alen) != 0) goto oom;
    if (mq_bbuf_add(out, s, n) != 0) goto oom;
    return MQ_OK;
  case MQ_NORM_REPLACE:
    for (size_t i = 0; i < n;) {
      if (st->alen && n - i >= st->alen && !memcmp(s + i, st->a, st->alen)) {
        if (mq_bbuf_add(out, st->b, st->blen) != 0) goto oom;
        i += st->alen;
      } else {
        size_t j = i + 1; /* copy up to the next possible match */
        while (j < n && (!st->alen || s[j] != st->a[0])) j++;
        if (mq_bbuf_add(out, s + i, j - i) != 0) goto oom;
        i = j;
      }
    }
    return MQ_OK;
  case MQ_NORM_REPLACE_RE: {
    size_t at = 0, prev = 0;
    while (at <= n) {
      int r = pcre2_match(st->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
      if (r == PCRE2_ERROR_NOMATCH) break;
      if (r < 0) return mq_errf(err, MQ_ERR_UNSUPPORTED, "normalizer regex failed (%d)", r);
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
      if (ov[1] <= ov[0]) {
        if (ov[0] >= n) break;
        at = ov[0] + (size_t)mq_utf8_len_at(s, n, ov[0]);
        continue;
      }
      if (mq_bbuf_add(out, s + prev, ov[0] - prev) != 0 || mq_bbuf_add(out, st->b, st->blen) != 0)
        goto oom;
      prev = at = ov[1];
    }
    if (mq_bbuf_add(out, s + prev, n - prev) != 0) goto oom;
    return MQ_OK;
  }
  case MQ_NORM_STRIP: {
    size_t a = 0, b = n, l;
    while (st->left && a < b && is_space_at(s, b, a, &l)) a += l;
    while (st->right && b > a) {
      size_t k = b - 1;
      while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
      if (!is_space_at(s, b, k, &l)) break;
      b = k;
    }
    if (mq_bbuf_add(out, s + a, b - a) != 0) goto oom;
    return MQ_OK;
  }
  default: return icu_apply(st, s, n, out, err);
  }
oom:
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory in the normalizer");
}

int mq_tok_normalize(const mq_tokenizer *t, const char *s, size_t n, mq_bbuf *out, mq_bbuf *tmp,
                     pcre2_match_data *md, mq_err *err) {
  out->n = 0;
  if (mq_bbuf_add(out, s, n) != 0) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < t->n_norm; i++) {
    int rc = apply(&t->norm[i], out->p ? out->p : "", out->n, tmp, md, err);
    if (rc != MQ_OK) return rc;
    mq_bbuf x = *out;
    *out = *tmp;
    *tmp = x;
  }
  return MQ_OK;
}
