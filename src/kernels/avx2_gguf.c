/* AVX2 kernels for the GGUF block types that avx2.c does not cover.
 * Compiled with -mavx2 -mfma -mf16c (this file only). */
#include "kernels/kernels.h"

void mq_kern_fill_avx2_gguf(mq_kernels *k) { (void)k; }
