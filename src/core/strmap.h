/* String -> index hash map (open addressing). Keys are borrowed: they must
 * outlive the map. Used for tensor tables, vocabularies and name lookups. */
#ifndef MQ_CORE_STRMAP_H
#define MQ_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct mq_strmap {
  const char **keys;
  size_t *klen;
  int64_t *vals;
  size_t cap; /* power of two, 0 when empty */
  size_t count;
} mq_strmap;

void mq_strmap_free(mq_strmap *m);
/* Insert key -> val. Returns 0 on success, 1 if the key exists (value kept),
 * -1 on allocation failure. */
int mq_strmap_put(mq_strmap *m, const char *key, size_t len, int64_t val);
/* Value of key, or -1 when absent. */
int64_t mq_strmap_get(const mq_strmap *m, const char *key, size_t len);
int64_t mq_strmap_gets(const mq_strmap *m, const char *key);

#endif
