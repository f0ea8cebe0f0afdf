/* The bf16 MXFP8 entries (the avx512bf16 tier) against the scalar
 * reference's float MXFP8 kernels, on MXFP8 activations (E4M3 codes times a
 * power of two, as the activation quantizer makes them). Skips on a CPU
 * without a tier that has them. */
#include "core/numconv.h"
#include "kernels/kernels.h"
#include "test.h"

enum { NMAX = 2080 };

/* x into MXFP8 activation floats, block by block: the quantizer's exponent
 * rule (floor(log2 amax) - 8) and E4M3 rounding, then exact floats. */
static void mx_acts(const float *x, float *xf, int n) {
  for (int b = 0; b < n; b += 32) {
    float amax = 0;
    for (int i = b; i < b + 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    int fe = 0;
    frexpf(amax, &fe);
    int e = amax > 0 ? fe - 1 - 8 : -127;
    for (int i = b; i < b + 32; i++) xf[i] = ldexpf(mq_e4m3_to_f32(mq_f32_to_e4m3(ldexpf(x[i], -e))), e);
  }
}

/* sum |w x| of a row: the float rounding bound's scale */
static double abs_sum(const uint8_t *w, const uint8_t *e, const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += fabs(mq_e4m3_to_f32(w[i]) * ldexp(1, e[i / 32] - 127) * x[i]);
  return s;
}

static void check_tier(const mq_kernels *k) {
  const mq_kernels *ref = mq_kern_ref();
  static const int sizes[] = {32, 64, 96, 288, 544, 2048, 2080};
  static uint8_t w[4][NMAX + 64], e[4][NMAX / 32];
  static float x[4][NMAX], xf[4][NMAX];
  static uint16_t xb[4][NMAX + 64], wb[4][NMAX + 64];
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
    int n = sizes[si], len = mq_mx_bf16_len(n);
    for (int r = 0; r < 4; r++) {
      for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(mqt_rand() >> 56);
        w[r][i] = (c & 0x7f) == 0x7f ? c ^ 1 : c; /* NaN codes apart, below */
        /* magnitudes over 2^-12 .. 2^4 across blocks, some exact zeros */
        x[r][i] = mqt_randf(-1, 1) * ldexpf(1, (i / 32 + r) % 17 - 12);
        if (mqt_rand() % 16 == 0) x[r][i] = 0;
      }
      for (int i = n; i < len; i++) w[r][i] = 0x7f; /* NaN codes past the row: never read */
      for (int b = 0; b < n / 32; b++) e[r][b] = (uint8_t)(112 + mqt_rand() % 32);
      mx_acts(x[r], xf[r], n);
      for (int i = 0; i < len; i++) xb[r][i] = 0x5555; /* the padding must be written */
      CHECK_MSG(k->mxfp8_act_bf16(xf[r], xb[r], n) == 1, "%s n %d: MXFP8 activations inexact",
                k->name, n);
      /* the last 64-chunk (values in the tier's order): as many nonzero
       * halves as nonzero values, so the padding is zeros */
      int nz_b = 0, nz_x = 0;
      for (int i = len - 64; i < len; i++) nz_b += (xb[r][i] & 0x7fff) != 0;
      for (int i = len - 64; i < n; i++) nz_x += xf[r][i] != 0;
      CHECK_MSG(nz_b == nz_x, "%s n %d: last chunk %d nonzero halves, %d values", k->name, n, nz_b,
                nz_x);
    }
    /* decode's dot: every row against every token */
    for (int r = 0; r < 4; r++)
      for (int t = 0; t < 4; t++) {
        double tol = 1e-6 * n * abs_sum(w[r], e[r], xf[t], n) + 1e-30;
        CHECK_NEAR(k->dot_mxfp8_bf16(w[r], e[r], xb[t], n), ref->dot_mxfp8_f32(w[r], e[r], xf[t], n),
                   tol);
      }
    /* prefill: rows converted once (scales folded in), 4 x 4 blocks */
    for (int r = 0; r < 4; r++)
      CHECK_MSG(k->mxfp8_to_bf16(w[r], e[r], wb[r], n) == 1, "%s n %d: row %d refused", k->name, n, r);
    const uint16_t *wp[4] = {wb[0], wb[1], wb[2], wb[3]}, *xp[4] = {xb[0], xb[1], xb[2], xb[3]};
    float o[16];
    k->dot4x4_bf16(wp, xp, len, o);
    for (int t = 0; t < 4; t++)
      for (int r = 0; r < 4; r++)
        CHECK_NEAR(o[t * 4 + r], ref->dot_mxfp8_f32(w[r], e[r], xf[t], n),
                   1e-6 * n * abs_sum(w[r], e[r], xf[t], n) + 1e-30);
    if (n <= 96) { /* each converted value exactly: a one-hot activation picks it */
      int differ = 0;
      float oh[NMAX], wr[NMAX];
      uint16_t ohb[NMAX + 64];
      ref->mxfp8_to_f32(w[0], e[0], wr, n);
      for (int i = 0; i < n; i++) {
        memset(oh, 0, sizeof(float) * (size_t)n);
        oh[i] = 1.0f;
        k->mxfp8_act_bf16(oh, ohb, n);
        const uint16_t *w1[4] = {wb[0], wb[0], wb[0], wb[0]}, *x1[4] = {ohb, ohb, ohb, ohb};
        k->dot4x4_bf16(w1, x1, len, o);
        differ += o[0] != wr[i];
        differ += k->dot_mxfp8_bf16(w[0], e[0], ohb, n) != wr[i];
      }
      CHECK_MSG(!differ, "%s n %d: %d single values differ", k->name, n, differ);
    }
  }

  /* block exponents at the ends: decode takes all (2^-127 .. 2^127: the
   * activations of the huge blocks scaled down); the folded rows refuse
   * e < 10 and e > 246 (each end alone in a row of e = 127) */
  static const uint8_t ext[] = {0, 1, 7, 9, 10, 246, 247, 250, 254};
  int n = 256;
  for (int j = 0; j < 9; j++) {
    uint8_t ee[8];
    for (int b = 0; b < 8; b++) ee[b] = ext[(j + 3 * b) % 9];
    float xs[256], xq[256];
    for (int i = 0; i < n; i++) xs[i] = ee[i / 32] > 200 ? ldexpf(x[0][i], -90) : x[0][i];
    mx_acts(xs, xq, n);
    CHECK(k->mxfp8_act_bf16(xq, xb[0], n) == 1);
    CHECK_NEAR(k->dot_mxfp8_bf16(w[0], ee, xb[0], n), ref->dot_mxfp8_f32(w[0], ee, xq, n),
               1e-6 * n * abs_sum(w[0], ee, xq, n) + 1e-30);
    uint8_t one[8] = {127, 127, 127, 127, 127, 127, 127, 127};
    one[j % 8] = ext[j];
    int ok = ext[j] >= 10 && ext[j] <= 246;
    CHECK_MSG(k->mxfp8_to_bf16(w[0], one, wb[0], n) == ok, "%s: block exponent %d: refused %d",
              k->name, ext[j], !ok);
  }
  { /* all blocks at 2^-127 (E8M0 0: a float subnormal scale) */
    uint8_t ez[8] = {0};
    double sm = abs_sum(w[1], ez, xf[1], 256), rv = ref->dot_mxfp8_f32(w[1], ez, xf[1], 256);
    CHECK(sm > 0 && rv != 0);
    CHECK_NEAR(k->dot_mxfp8_bf16(w[1], ez, xb[1], 256), rv, 1e-6 * 256 * sm);
  }
  { /* a row of only the kept ends: 10 and 246 folded exactly */
    uint8_t ee[2] = {10, 246};
    float wr[64], oh[64], o[16];
    uint16_t ohb[64];
    ref->mxfp8_to_f32(w[1], ee, wr, 64);
    CHECK(k->mxfp8_to_bf16(w[1], ee, wb[1], 64) == 1);
    int differ = 0;
    for (int i = 0; i < 64; i++) {
      memset(oh, 0, sizeof oh);
      oh[i] = 1.0f;
      k->mxfp8_act_bf16(oh, ohb, 64);
      const uint16_t *w1[4] = {wb[1], wb[1], wb[1], wb[1]}, *x1[4] = {ohb, ohb, ohb, ohb};
      k->dot4x4_bf16(w1, x1, 64, o);
      differ += o[0] != wr[i];
    }
    CHECK_MSG(!differ, "%s: %d values of the e = 10 / 246 row differ", k->name, differ);
  }
  /* activations bf16 cannot hold exactly: a float subnormal, a value with low bits */
  float bad[64];
  for (int i = 0; i < 64; i++) bad[i] = 1.0f;
  bad[17] = 0x1p-127f; /* subnormal, no low bits */
  CHECK(k->mxfp8_act_bf16(bad, xb[0], 64) == 0);
  bad[17] = 1.0f + 0x1p-20f;
  CHECK(k->mxfp8_act_bf16(bad, xb[0], 64) == 0);
  bad[17] = -0.0f;
  CHECK(k->mxfp8_act_bf16(bad, xb[0], 64) == 1);
  /* a NaN weight code (0x7f) gives NaN, as the reference */
  uint8_t wn[64], en[2] = {127, 127};
  for (int i = 0; i < 64; i++) wn[i] = 0x38, bad[i] = 1.0f; /* 1.0 each */
  k->mxfp8_act_bf16(bad, xb[0], 64);
  CHECK(k->dot_mxfp8_bf16(wn, en, xb[0], 64) == 64.0f);
  wn[40] = 0xff;
  CHECK(isnan(k->dot_mxfp8_bf16(wn, en, xb[0], 64)));
  CHECK(k->mxfp8_to_bf16(wn, en, wb[0], 64) == 1);
  const uint16_t *wnp[4] = {wb[0], wb[0], wb[0], wb[0]}, *xnp[4] = {xb[0], xb[0], xb[0], xb[0]};
  float o[16];
  k->dot4x4_bf16(wnp, xnp, 64, o);
  CHECK(isnan(o[5]));
}

int main(void) {
  const mq_kernels *tiers[MQ_KERN_MAX_TIERS];
  int nt = mq_kern_simd_tiers(tiers), tested = 0;
  CHECK(mq_kern_ref()->dot_mxfp8_bf16 == NULL); /* the scalar tier has none */
  for (int i = 0; i < nt; i++)
    if (tiers[i]->dot_mxfp8_bf16) check_tier(tiers[i]), tested++;
  if (!tested) TEST_SKIP("no kernel tier with bf16 MXFP8 kernels on this CPU (avx512bf16)");
  return mqt_report("test_kernels_mx");
}
