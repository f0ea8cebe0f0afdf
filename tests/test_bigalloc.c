/* mq_big_alloc: alignment, and where Linux has transparent huge pages, the
 * huge-page advice on the whole 2 MiB pages only (the mapping's VmFlags in
 * /proc/self/smaps carry "hg" where MADV_HUGEPAGE applies), none below
 * MQ_HUGE_PAGE and none with MIXQ_HUGEPAGES=0. */
#include <stdlib.h>

#include <sys/mman.h>

#include "core/bigalloc.h"
#include "test.h"

/* 1 if the mapping holding address a has the hg flag, 0 if not, -1 if
 * smaps cannot tell. */
static int advised(const void *a) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int in = 0, r = -1;
  uintptr_t x = (uintptr_t)a;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = x >= lo && x < hi;
    } else if (in && !strncmp(line, "VmFlags:", 8)) {
      r = strstr(line, " hg") != NULL;
      break;
    }
  }
  fclose(f);
  return r;
}

int main(void) {
  for (size_t n = 0; n < 5000; n += 997) { /* small: 64-byte aligned, writable */
    uint8_t *p = mq_big_alloc(n);
    CHECK(p && (uintptr_t)p % 64 == 0);
    if (p && n) {
      memset(p, 0xa5, n);
      CHECK(p[n - 1] == 0xa5);
    }
    free(p);
  }
  size_t big = 2 * MQ_HUGE_PAGE + 12345; /* two whole huge pages and a tail */
  uint8_t *p = mq_big_alloc(big);
  CHECK(p && (uintptr_t)p % MQ_HUGE_PAGE == 0);
  if (!p) return mqt_report("bigalloc");
  for (size_t i = 0; i < big; i++) p[i] = (uint8_t)(i * 31 + 7);
  int ok = 1;
  for (size_t i = 0; i < big; i++) ok &= p[i] == (uint8_t)(i * 31 + 7);
  CHECK(ok);
  /* control: does advice given here show in smaps at all? (no THP, or
   * qemu-user, which accepts madvise and ignores it: then nothing to check) */
  int shows = 0;
#ifdef MADV_HUGEPAGE
  void *c = NULL;
  if (!posix_memalign(&c, MQ_HUGE_PAGE, MQ_HUGE_PAGE)) {
    shows = madvise(c, MQ_HUGE_PAGE, MADV_HUGEPAGE) == 0 && advised(c) == 1;
    free(c);
  }
#endif
  if (shows) {
    CHECK_MSG(advised(p) == 1 && advised(p + MQ_HUGE_PAGE + 5) == 1, "whole pages advised");
    CHECK_MSG(advised(p + 2 * MQ_HUGE_PAGE + 100) == 0, "the partial last page is not");
    uint8_t *s = mq_big_alloc(MQ_HUGE_PAGE - 64);
    CHECK(s && advised(s) == 0);
    free(s);
    setenv("MIXQ_HUGEPAGES", "0", 1);
    uint8_t *o = mq_big_alloc(big);
    CHECK(o && advised(o) == 0);
    free(o);
    unsetenv("MIXQ_HUGEPAGES");
  } else {
    printf("huge-page advice does not show in smaps here (no THP, or an emulator): not checked\n");
  }
  free(p);
  return mqt_report("bigalloc");
}
