/* Allocations that decode streams every token (repacked weights, the KV
 * cache): from MQ_HUGE_PAGE bytes (2 MiB) they start on a 2 MiB boundary and ask the
 * kernel for transparent huge pages (Linux madvise) before their first
 * touch. With 4 KiB pages a one-core weight stream on Zen 5 read 30-37
 * GB/s, with 2 MiB pages 38-41 (fewer TLB misses and page walks:
 * docs/performance.md). Where THP is off, or not Linux, or with
 * MIXQ_HUGEPAGES=0 in the environment, it is an ordinary 64-byte aligned
 * allocation. Only whole 2 MiB pages are advised, so the resident set does
 * not grow. */
#ifndef MQ_CORE_BIGALLOC_H
#define MQ_CORE_BIGALLOC_H

#include <stddef.h>

#define MQ_HUGE_PAGE ((size_t)2 << 20)

/* bytes (0 allowed) of uninitialized memory, 64-byte aligned, and 2 MiB
 * aligned from MQ_HUGE_PAGE; free() releases it. NULL on failure. */
void *mq_big_alloc(size_t bytes);

#endif
