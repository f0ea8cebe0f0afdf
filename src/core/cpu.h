/* CPU feature detection (x86 cpuid/xgetbv; 0 elsewhere). */
#ifndef MQ_CORE_CPU_H
#define MQ_CORE_CPU_H

/* AVX2 + FMA + F16C usable (CPU supports them and the OS saves YMM state). */
int mq_cpu_has_avx2(void);
/* That and AVX-512 F/BW/VL with VNNI usable (the OS saves opmask and ZMM
 * state). CPUs with AVX-512 but no VNNI (Skylake-SP) keep the AVX2 tier. */
int mq_cpu_has_avx512(void);
/* That and AVX-512 VBMI and BF16 (Zen 4/5, Sapphire Rapids and later). */
int mq_cpu_has_avx512bf16(void);

#endif
