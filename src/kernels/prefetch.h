/* How far ahead of its loads a kernel that streams weights prefetches them.
 * Decode reads every weight once from DRAM, so one core needs several KB in
 * flight (bandwidth x latency) and the hardware prefetcher alone leaves a
 * single stream short of that: on Zen 5 one BF16 row stream read 31 GB/s
 * with 1 KB ahead, 39 GB/s with 4 KB and 44 GB/s with 8 KB (the machine's
 * best read, several streams, was 38-41 GB/s; Q4_0 tiles gained 5% over
 * 4 KB). On Zen 3, W4 tile decode rose from 48% to 75-85% of the roofline
 * at 4-8 KB (docs/performance.md). Lines prefetched past the end
 * of a matrix are harmless (prefetches do not fault). */
#ifndef MQ_KERNELS_PREFETCH_H
#define MQ_KERNELS_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#ifndef MQ_PREFETCH_AHEAD /* -D overrides it for experiments */
#define MQ_PREFETCH_AHEAD 8192
#endif

/* Prefetch, non-temporal, each 64-byte line whose first byte lies in
 * [p, p + n): a kernel passes each consecutive piece of its stream (a block,
 * a super-block) plus the distance, so every line is prefetched once even
 * where pieces are not whole lines (Q4_0x8's 144 bytes). Zen 5, one core,
 * same-process A/B: the non-temporal hint (prefetchnta) with each line once
 * streamed Q4_0x8 tiles at 37 GB/s against 34 with _MM_HINT_T0 and repeats;
 * end to end +1-3% decode (docs/performance.md). always_inline: gcc
 * otherwise finds a function of prefetches alone free of side effects
 * (const) and deletes its calls. */
static inline __attribute__((always_inline)) void mq_prefetch_lines(const void *p, size_t n) {
  uintptr_t a = ((uintptr_t)p + 63) & ~(uintptr_t)63, e = (uintptr_t)p + n;
  for (; a < e; a += 64) __builtin_prefetch((const void *)a, 0, 0);
}

/* The rest of an x8 group (its scales and mins, and a short last group's
 * padding) after the `used` bytes of code blocks already prefetched: group
 * by group, each line of the tile once. */
static inline __attribute__((always_inline)) void mq_prefetch_group_rest(const uint8_t *gp,
                                                                         size_t used, size_t gst) {
  mq_prefetch_lines(gp + used + MQ_PREFETCH_AHEAD, gst - used);
}

#endif
