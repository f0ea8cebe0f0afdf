/* Growable byte and int32 buffers used inside the tokenizer. Header-only;
 * every push returns 0, or -1 when memory runs out (the buffer is then left
 * as it was). */
#ifndef MQ_TOKENIZER_BUF_H
#define MQ_TOKENIZER_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct mq_bbuf {
  char *p;
  size_t n, cap;
} mq_bbuf;

typedef struct mq_ibuf {
  int32_t *p;
  size_t n, cap;
} mq_ibuf;

static inline int mq_bbuf_reserve(mq_bbuf *b, size_t extra) {
  if (extra > SIZE_MAX / 2 - b->n) return -1;
  if (b->n + extra <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->n + extra) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static inline int mq_bbuf_add(mq_bbuf *b, const void *s, size_t n) {
  if (mq_bbuf_reserve(b, n) != 0) return -1;
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  return 0;
}

static inline int mq_bbuf_addc(mq_bbuf *b, char c) { return mq_bbuf_add(b, &c, 1); }

static inline void mq_bbuf_free(mq_bbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static inline int mq_ibuf_push(mq_ibuf *b, int32_t v) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(int32_t)) return -1;
    int32_t *p = realloc(b->p, cap * sizeof(int32_t));
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  b->p[b->n++] = v;
  return 0;
}

static inline void mq_ibuf_free(mq_ibuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

#endif
