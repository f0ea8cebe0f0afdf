/* Added tokens (special tokens such as <s> or <|im_start|>, and user-added
 * words) are found in the text before the model sees it: the leftmost match
 * wins, and among matches starting there the longest, as Hugging Face's
 * AddedVocabulary does. lstrip/rstrip let a match swallow the white space
 * beside it; single_word refuses matches inside a word. */
#include <string.h>

#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

#include <unicode/uchar.h>

static int is_word_char(const mq_tokenizer *t, const char *s, size_t n, size_t i,
                        pcre2_match_data *md) {
  return pcre2_match(t->word_re, (PCRE2_SPTR)s, n, i, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md,
                     NULL) > 0;
}

/* start of the character that ends at byte i (exclusive) */
static size_t char_before(const char *s, size_t i) {
  size_t k = i - 1;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
  return k;
}

static int space_at(const char *s, size_t n, size_t i, size_t *len) {
  uint32_t cp;
  *len = (size_t)mq_utf8_decode(s + i, n - i, &cp);
  return u_isUWhiteSpace((UChar32)cp);
}

int mq_tok_find_added(const mq_tokenizer *t, const char *s, size_t n, size_t from, int normalized,
                      pcre2_match_data *md, size_t *mstart, size_t *mend, int32_t *id) {
  if (normalized ? !t->any_norm_added : !t->any_raw_added) return 0;
  for (size_t i = from; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int lo = t->added_first[c], hi = t->added_first[c + 1];
    for (int k = lo; k < hi; k++) { /* longest first */
      const mq_added *a = &t->added[k];
      if (a->normalized != normalized || a->len > n - i || memcmp(s + i, a->text, a->len)) continue;
      size_t e = i + a->len;
      if (a->single_word && ((i > 0 && is_word_char(t, s, n, char_before(s, i), md)) ||
                             (e < n && is_word_char(t, s, n, e, md))))
        continue;
      size_t b = i, l;
      if (a->lstrip)
        while (b > from) {
          size_t p = char_before(s, b);
          if (!space_at(s, n, p, &l)) break;
          b = p;
        }
      if (a->rstrip)
        while (e < n && space_at(s, n, e, &l)) e += l;
      *mstart = b;
      *mend = e;
      *id = a->id;
      return 1;
    }
  }
  return 0;
}
