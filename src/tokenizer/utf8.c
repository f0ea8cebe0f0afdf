#include "tokenizer/utf8.h"

int mq_utf8_decode(const char *s, size_t n, uint32_t *cp) {
  const unsigned char *u = (const unsigned char *)s;
  int len = u[0] < 0x80 ? 1 : u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
  if ((size_t)len > n) len = 1; /* defensive: callers pass valid text */
  uint32_t c;
  switch (len) {
  case 1: c = u[0]; break;
  case 2: c = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F); break;
  case 3: c = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F); break;
  default:
    c = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
        (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
  }
  *cp = c;
  return len;
}

int mq_utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static const char FFFD[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

static int bad(mq_utf8_fix *f, int count, mq_bbuf *out) {
  int k = f->per_byte ? count : 1;
  for (int i = 0; i < k; i++)
    if (mq_bbuf_add(out, FFFD, 3) != 0) return -1;
  return 0;
}

static int feed1(mq_utf8_fix *f, unsigned char b, mq_bbuf *out) {
  if (f->npend) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (f->npend == 1) { /* the second byte's range depends on the first */
      unsigned char c = f->pend[0];
      if (c == 0xE0)
        lo = 0xA0;
      else if (c == 0xED)
        hi = 0x9F;
      else if (c == 0xF0)
        lo = 0x90;
      else if (c == 0xF4)
        hi = 0x8F;
    }
    if (b >= lo && b <= hi) {
      f->pend[f->npend++] = b;
      if (f->npend == f->need) {
        f->npend = 0;
        return mq_bbuf_add(out, f->pend, (size_t)f->need);
      }
      return 0;
    }
    int n = f->npend;
    f->npend = 0;
    if (bad(f, n, out) != 0) return -1;
    /* b starts afresh */
  }
  if (b < 0x80) return mq_bbuf_addc(out, (char)b);
  int need = (b >= 0xC2 && b <= 0xDF)   ? 2
             : (b >= 0xE0 && b <= 0xEF) ? 3
             : (b >= 0xF0 && b <= 0xF4) ? 4
                                        : 0;
  if (!need) return bad(f, 1, out);
  f->pend[0] = b;
  f->npend = 1;
  f->need = need;
  return 0;
}

int mq_utf8_fix_feed(mq_utf8_fix *f, const char *s, size_t n, mq_bbuf *out) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n; i++) {
    /* fast path for runs of ASCII */
    if (!f->npend && u[i] < 0x80) {
      size_t j = i;
      while (j < n && u[j] < 0x80) j++;
      if (mq_bbuf_add(out, s + i, j - i) != 0) return -1;
      i = j - 1;
      continue;
    }
    if (feed1(f, u[i], out) != 0) return -1;
  }
  return 0;
}

int mq_utf8_fix_flush(mq_utf8_fix *f, mq_bbuf *out) {
  if (!f->npend) return 0;
  int n = f->npend;
  f->npend = 0;
  return bad(f, n, out);
}

int mq_utf8_sanitize(const char *s, size_t n, int per_byte, mq_bbuf *out) {
  mq_utf8_fix f = {.per_byte = per_byte};
  if (mq_utf8_fix_feed(&f, s, n, out) != 0) return -1;
  return mq_utf8_fix_flush(&f, out);
}

/* GPT-2: bytes that are printable Latin-1 stand for themselves; the other 68
 * bytes get U+0100 onwards in byte order. */
static int printable(unsigned b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

uint32_t mq_bytelevel_char(unsigned char b) {
  if (printable(b)) return b;
  if (b <= 32) return 256u + b;               /* 0..32    -> U+0100..U+0120 */
  if (b <= 160) return 256u + 33 + (b - 127); /* 127..160 -> U+0121..U+0142 */
  return 256u + 67;                           /* 173      -> U+0143 */
}

int mq_bytelevel_byte(uint32_t cp) {
  if (cp < 256) return printable(cp) ? (int)cp : -1;
  if (cp > 256 + 67) return -1;
  uint32_t k = cp - 256;
  if (k <= 32) return (int)k;
  if (k <= 66) return (int)(127 + k - 33);
  return 173;
}
