/* The kernel tiers, assembled once: each tier starts as a copy of the tier
 * below it (the scalar reference at the bottom) and its ISA files overwrite
 * the entries they implement, so a tier may be partial. The active table is
 * the best tier the CPU supports, or a lower one named by MIXQ_ISA. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static mq_kernels g_avx2, g_avx512, g_avx512bf16, g_neon;
static const mq_kernels *g_has_avx2, *g_has_avx512, *g_has_avx512bf16, *g_has_neon, *g_active;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
  g_avx2 = *mq_kern_ref();
  if (mq_kern_fill_avx2(&g_avx2)) {
    mq_kern_fill_avx2_gguf(&g_avx2);
    g_has_avx2 = &g_avx2;
    g_avx512 = g_avx2; /* AVX-512 kernels only where they beat AVX2's */
    if (mq_kern_fill_avx512(&g_avx512)) {
      g_has_avx512 = &g_avx512;
      g_avx512bf16 = g_avx512;
      if (mq_kern_fill_avx512bf16(&g_avx512bf16)) g_has_avx512bf16 = &g_avx512bf16;
    }
  }
  g_neon = *mq_kern_ref();
  if (mq_kern_fill_neon(&g_neon)) g_has_neon = &g_neon;

  /* best first */
  const mq_kernels *tiers[] = {g_has_avx512bf16, g_has_avx512, g_has_avx2, g_has_neon, mq_kern_ref()};
  const mq_kernels *best = NULL;
  for (size_t i = 0; i < sizeof tiers / sizeof *tiers && !best; i++) best = tiers[i];
  const char *want = getenv("MIXQ_ISA");
  if (want && *want) {
    const mq_kernels *pick = NULL;
    for (size_t i = 0; i < sizeof tiers / sizeof *tiers; i++)
      if (tiers[i] && strcmp(tiers[i]->name, want) == 0) pick = tiers[i];
    if (!pick) /* a tier this CPU lacks (or a typo): say so once, keep the best */
      fprintf(stderr, "mixq: MIXQ_ISA=%s is not available here; using %s\n", want, best->name);
    else
      best = pick;
  }
  g_active = best;
}

const mq_kernels *mq_kern(void) {
  pthread_once(&g_once, build);
  return g_active;
}

const mq_kernels *mq_kern_avx2(void) {
  pthread_once(&g_once, build);
  return g_has_avx2;
}

const mq_kernels *mq_kern_avx512(void) {
  pthread_once(&g_once, build);
  return g_has_avx512;
}

const mq_kernels *mq_kern_avx512bf16(void) {
  pthread_once(&g_once, build);
  return g_has_avx512bf16;
}

const mq_kernels *mq_kern_neon(void) {
  pthread_once(&g_once, build);
  return g_has_neon;
}

int mq_kern_simd_tiers(const mq_kernels *out[MQ_KERN_MAX_TIERS]) {
  pthread_once(&g_once, build);
  const mq_kernels *all[] = {g_has_avx2, g_has_avx512, g_has_avx512bf16, g_has_neon};
  int n = 0;
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]) out[n++] = all[i];
  return n;
}
