#include "core/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

int mq_cpu_has_avx2(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
  if (!(fma && osxsave && avx && f16c)) return 0;
  if ((xgetbv0() & 6) != 6) return 0; /* XMM and YMM state enabled by the OS */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b >> 5) & 1;
}

int mq_cpu_has_avx512(void) {
  unsigned int a, b, c, d;
  if (!mq_cpu_has_avx2()) return 0;
  /* opmask, upper halves of ZMM0-15 and ZMM16-31 saved by the OS, with XMM/YMM */
  if ((xgetbv0() & 0xe6) != 0xe6) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
  return f && bw && vl && vnni;
}

int mq_cpu_has_avx512bf16(void) {
  unsigned int a, b, c, d;
  if (!mq_cpu_has_avx512()) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int vbmi = (c >> 1) & 1, leaf1 = a >= 1;
  if (!vbmi || !leaf1 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
  return (a >> 5) & 1; /* AVX512_BF16 */
}
#else
int mq_cpu_has_avx2(void) { return 0; }
int mq_cpu_has_avx512(void) { return 0; }
int mq_cpu_has_avx512bf16(void) { return 0; }
#endif
