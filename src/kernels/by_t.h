/* Tile kernels instantiated per token count: a body written for a constant
 * T (1..4) is inlined into each case of MQ_BY_T, so its token loops unroll
 * and its accumulators stay in registers. always_inline because gcc would
 * otherwise clone a large body on one constant argument only and keep T a
 * variable (the accumulator arrays then live in memory: Q4_K decode ran at
 * 60% of the speed in cache). */
#ifndef MQ_KERNELS_BY_T_H
#define MQ_KERNELS_BY_T_H

#define MQ_ALWAYS_INLINE inline __attribute__((always_inline))

/* f(args..., T) with T a constant 1, 2, 3 or 4 (4 for anything larger) */
#define MQ_BY_T(T, f, ...)                                                                         \
  switch (T) {                                                                                     \
  case 1: f(__VA_ARGS__, 1); break;                                                                \
  case 2: f(__VA_ARGS__, 2); break;                                                                \
  case 3: f(__VA_ARGS__, 3); break;                                                                \
  default: f(__VA_ARGS__, 4); break;                                                               \
  }

#endif
