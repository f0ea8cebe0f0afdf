#include "core/bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* MIXQ_HUGEPAGES=0 in the environment turns the advice off. */
static int huge_wanted(void) {
  const char *e = getenv("MIXQ_HUGEPAGES");
  return !(e && !strcmp(e, "0"));
}

void *mq_big_alloc(size_t bytes) {
  if (bytes > SIZE_MAX - MQ_HUGE_PAGE) return NULL;
  int huge = bytes >= MQ_HUGE_PAGE && huge_wanted();
  void *p = NULL; /* posix_memalign: no size-multiple rule (aligned_alloc has one) */
  if (posix_memalign(&p, huge ? MQ_HUGE_PAGE : 64, bytes ? bytes : 1)) return NULL;
  if (!huge) return p;
#ifdef MADV_HUGEPAGE
  /* only the whole huge pages: a partial last one stays in 4 KiB pages, so
   * the resident set does not grow. Advice only: a refusal (THP compiled
   * out) leaves ordinary pages. */
  if (p) (void)madvise(p, bytes & ~(MQ_HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
  return p;
}
