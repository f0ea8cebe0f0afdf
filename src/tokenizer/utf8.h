/* UTF-8 helpers for the tokenizer: decoding, encoding, a lossy validator
 * that replaces ill-formed sequences with U+FFFD (usable as a stream, so a
 * detokenizer never emits half a character), and GPT-2's byte <-> unicode
 * map used by byte-level BPE. */
#ifndef MQ_TOKENIZER_UTF8_H
#define MQ_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/buf.h"

/* Decode the character at s[0..n) of *valid* UTF-8; returns its length
 * (1..4) and sets *cp. n must be > 0. */
int mq_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Length of the (valid) character starting at s[i], at most n - i. */
static inline int mq_utf8_len_at(const char *s, size_t n, size_t i) {
  unsigned char c = (unsigned char)s[i];
  int l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  return (size_t)l > n - i ? (int)(n - i) : l;
}

/* Encode cp (<= 0x10FFFF) into out; returns the length. */
int mq_utf8_encode(uint32_t cp, char out[4]);

/* Streaming lossy validator. Feed bytes; well-formed characters go to out as
 * soon as they are complete, an incomplete tail is held back. Each maximal
 * ill-formed subpart becomes one U+FFFD (what Rust's from_utf8_lossy, and so
 * Hugging Face's ByteLevel decoder, do); with per_byte set, every byte of an
 * ill-formed subpart becomes one U+FFFD (Hugging Face's ByteFallback). */
typedef struct mq_utf8_fix {
  unsigned char pend[4];
  int npend; /* bytes held back */
  int need;  /* total length of the pending sequence */
  int per_byte;
} mq_utf8_fix;

int mq_utf8_fix_feed(mq_utf8_fix *f, const char *s, size_t n, mq_bbuf *out);
/* End of stream: a held-back incomplete sequence becomes U+FFFD. */
int mq_utf8_fix_flush(mq_utf8_fix *f, mq_bbuf *out);
/* Whole-buffer form: out = lossy(s). */
int mq_utf8_sanitize(const char *s, size_t n, int per_byte, mq_bbuf *out);

/* GPT-2 byte-level map: the printable character standing for byte b, and the
 * byte a character stands for (-1 when it stands for none). */
uint32_t mq_bytelevel_char(unsigned char b);
int mq_bytelevel_byte(uint32_t cp);

#endif
