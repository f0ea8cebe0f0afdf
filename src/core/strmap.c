#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s, size_t n) { /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

void mq_strmap_free(mq_strmap *m) {
  free(m->keys);
  free(m->klen);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

static size_t find_slot(const mq_strmap *m, const char *key, size_t len) {
  size_t i = (size_t)hash(key, len) & (m->cap - 1);
  while (m->keys[i] && !(m->klen[i] == len && memcmp(m->keys[i], key, len) == 0))
    i = (i + 1) & (m->cap - 1);
  return i;
}

static int grow(mq_strmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  mq_strmap n = {calloc(ncap, sizeof(char *)), calloc(ncap, sizeof(size_t)),
                 calloc(ncap, sizeof(int64_t)), ncap, 0};
  if (!n.keys || !n.klen || !n.vals) {
    mq_strmap_free(&n);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = find_slot(&n, m->keys[i], m->klen[i]);
    n.keys[j] = m->keys[i];
    n.klen[j] = m->klen[i];
    n.vals[j] = m->vals[i];
    n.count++;
  }
  mq_strmap_free(m);
  *m = n;
  return 0;
}

int mq_strmap_put(mq_strmap *m, const char *key, size_t len, int64_t val) {
  if ((m->count + 1) * 2 > m->cap && grow(m) != 0) return -1;
  size_t i = find_slot(m, key, len);
  if (m->keys[i]) return 1;
  m->keys[i] = key;
  m->klen[i] = len;
  m->vals[i] = val;
  m->count++;
  return 0;
}

int64_t mq_strmap_get(const mq_strmap *m, const char *key, size_t len) {
  if (!m->cap) return -1;
  size_t i = find_slot(m, key, len);
  return m->keys[i] ? m->vals[i] : -1;
}

int64_t mq_strmap_gets(const mq_strmap *m, const char *key) {
  return mq_strmap_get(m, key, strlen(key));
}
