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

#ifndef MQ_PREFETCH_AHEAD /* -D overrides it for experiments */
#define MQ_PREFETCH_AHEAD 8192
#endif

/* x8 tiles keep their per-group scales (and mins) in arrays of their own
 * beside the codes: small streams (1/16 of the codes' bytes at group 128)
 * that the hardware prefetcher leaves late. A kernel prefetches them this
 * many bytes ahead at each group (Zen 5, 4-bit A16 decode: 29 -> 34 GB/s;
 * 512 and 1024 were slower than 256). */
#define MQ_PREFETCH_SCALES 256
#define MQ_PREFETCH_SIDE(p) __builtin_prefetch((const char *)(p) + MQ_PREFETCH_SCALES, 0, 3)

#endif
