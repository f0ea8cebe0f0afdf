/* The quantizing writer's building blocks: packers against formats.md §8
 * (T1-T8) and hand-computed words, round-to-nearest quantization and
 * act-order grouping. (End to end: test_quantize.c, test_quantize_aq.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "quant/pack.h"
#include "quant/rtn.h"
#include "test.h"

/* ---- hand unpackers, written from formats.md (independent of pack.c) ---- */

/* bit pos of the stream held by w[0], w[stride], ... */
static uint32_t bit_at(const uint32_t *w, int64_t stride, int64_t pos) {
  return (w[(pos / 32) * stride] >> (pos % 32)) & 1u;
}
static uint32_t field(const uint32_t *w, int64_t stride, int64_t pos, int bits) {
  uint32_t v = 0;
  for (int i = 0; i < bits; i++) v |= bit_at(w, stride, pos + i) << i;
  return v;
}
static const int k_awq_shift[8] = {0, 16, 4, 20, 8, 24, 12, 28}; /* column 8c+j */
static uint32_t awq_get(uint32_t word, int j) { return (word >> k_awq_shift[j]) & 0xF; }
static int64_t ct_pos(int64_t i, int bits, int dense) {
  return dense ? i * bits : (i / (32 / bits)) * 32 + (i % (32 / bits)) * bits;
}
static uint32_t v1c(int bits) {
  return bits == 2 ? 0x55555555u : bits == 4 ? 0x11111111u : 0x01010101u;
}

/* ---- §8 test vectors ---- */

static void test_vectors(void) {
  uint8_t v[32];
  uint32_t w[8];
  for (int i = 0; i < 8; i++) v[i] = (uint8_t)(i + 1);
  mq_pack_awq(v, 1, 8, w); /* T1 */
  CHECK_MSG(w[0] == 0x86427531u, "T1 %08x", w[0]);
  for (int j = 0; j < 8; j++) CHECK(awq_get(w[0], j) == (uint32_t)(j + 1));
  CHECK(mq_pack_gptq_rows(v, 8, 1, 4, w) == 0 && w[0] == 0x87654321u); /* T2 */
  CHECK(mq_pack_gptq_cols(v, 1, 8, 4, w) == 0 && w[0] == 0x87654321u);

  static const struct {
    int bits;
    uint32_t v1, v2;
  } t3[] = {
      {4, 0x77777777u, 0x88888888u}, {2, 0x55555555u, 0xaaaaaaaau}, {8, 0x7f7f7f7fu, 0x80808080u}};
  for (int t = 0; t < 3; t++) { /* T3: sym zeros 2^(b-1) */
    int b = t3[t].bits, pf = 32 / b;
    memset(v, 1 << (b - 1), sizeof v);
    mq_pack_gptq_cols(v, 1, pf, b, w);
    CHECK_MSG(w[0] == t3[t].v2, "T3 v2 %d-bit %08x", b, w[0]);
    mq_pack_gptq_zeros_to_v1(w, 1, b);
    CHECK_MSG(w[0] == t3[t].v1, "T3 v1 %d-bit %08x", b, w[0]);
  }
  memset(v, 4, 32); /* T4: 3-bit sym zeros */
  mq_pack_gptq_cols(v, 1, 32, 3, w);
  CHECK(w[0] == 0x24924924u && w[1] == 0x49249249u && w[2] == 0x92492492u);
  mq_pack_gptq_zeros_to_v1(w, 3, 3);
  CHECK_MSG(w[0] == 0xdb6db6dbu && w[1] == 0xb6db6db6u && w[2] == 0x6db6db6du,
            "T4 v1 %08x %08x %08x", w[0], w[1], w[2]);
  for (int j = 0; j < 32; j++) v[j] = (uint8_t)(j % 8); /* T5 */
  mq_pack_gptq_rows(v, 32, 1, 3, w);
  CHECK_MSG(w[0] == 0x88fac688u && w[1] == 0xc688fac6u && w[2] == 0xfac688fau, "T5 %08x %08x %08x",
            w[0], w[1], w[2]);
  mq_pack_gptq_cols(v, 1, 32, 3, w + 3);
  CHECK(!memcmp(w, w + 3, 12));
  mq_pack_ct(v, 1, 32, 3, 1, w + 3); /* T8 dense == T5 */
  CHECK(mq_pack_ct_words(32, 3, 1) == 3 && !memcmp(w, w + 3, 12));
  mq_pack_ct(v, 1, 32, 3, 0, w); /* T8 aligned: 10 values per word */
  CHECK(mq_pack_ct_words(32, 3, 0) == 4);
  CHECK_MSG(w[0] == 0x08fac688u && w[1] == 0x1a23eb1au && w[2] == 0x2c688facu && w[3] == 0x3eu,
            "T8 %08x %08x %08x %08x", w[0], w[1], w[2], w[3]);

  static const uint8_t t6[8] = {0, 5, 8, 15, 1, 2, 3, 4}; /* T6: asym zeros */
  mq_pack_gptq_cols(t6, 1, 8, 4, w);
  CHECK_MSG(w[0] == 0x4321f850u, "T6 v2 %08x", w[0]);
  mq_pack_gptq_zeros_to_v1(w, 1, 4);
  CHECK_MSG(w[0] == 0x3210e73fu, "T6 v1 %08x", w[0]);
  static const uint32_t wrong[8] = {0, 4, 8, 15, 1, 2, 3, 4}; /* per-field (f+1)&15: wrong */
  for (int j = 0; j < 8; j++) CHECK(((field(w, 1, 4 * j, 4) + 1) & 15) == wrong[j]);
  uint32_t back = w[0] + 0x11111111u; /* word-level reader: exact */
  for (int j = 0; j < 8; j++) CHECK(field(&back, 1, 4 * j, 4) == t6[j]);
  mq_pack_gptq_zeros_from_v1(w, 1, 4);
  CHECK(w[0] == 0x4321f850u);

  for (int i = 0; i < 8; i++) v[i] = (uint8_t)((i - 8) + 8); /* T7: q = -8..-1, u = q + 8 */
  mq_pack_ct(v, 1, 8, 4, 0, w);
  CHECK(w[0] == 0x76543210u);
  mq_pack_ct(v, 1, 8, 4, 1, w);
  CHECK(w[0] == 0x76543210u);
}

/* ---- hand-computed words ---- */

static void test_hand(void) {
  uint8_t v[64] = {0};
  uint32_t w[8];
  v[7] = 15; /* AWQ column 7 sits in the top nibble: a negative int32 */
  mq_pack_awq(v, 1, 8, w);
  CHECK(w[0] == 0xF0000000u && (int32_t)w[0] < 0);
  v[7] = 0, v[1] = 9; /* column 1 -> shift 16 */
  mq_pack_awq(v, 1, 8, w);
  CHECK(w[0] == 0x00090000u);
  memset(v, 0, sizeof v);
  v[7] = 9; /* GPTQ row 7, 4-bit: high nibble 9 */
  mq_pack_gptq_rows(v, 8, 1, 4, w);
  CHECK(w[0] == 0x90000000u && (int32_t)w[0] < 0);
  v[7] = 0, v[3] = 0xAB; /* 8-bit row 3 of a [4, 1] column... of 8 rows: word 0 byte 3 */
  mq_pack_gptq_rows(v, 8, 1, 8, w);
  CHECK(w[0] == 0xAB000000u && w[1] == 0);

  /* 3-bit straddling: value 10 = word0 bits 30-31 + word1 bit 0; value 21 =
   * word1 bit 31 + word2 bits 0-1 (for qweight rows, qzeros cols, CT dense) */
  memset(v, 0, sizeof v);
  v[10] = 7;
  mq_pack_gptq_rows(v, 32, 1, 3, w);
  CHECK(w[0] == 0xC0000000u && w[1] == 1u && w[2] == 0);
  v[10] = 5; /* 0b101: bit 30 = 1, bit 31 = 0, word1 bit 0 = 1 */
  mq_pack_gptq_cols(v, 1, 32, 3, w);
  CHECK(w[0] == 0x40000000u && w[1] == 1u && w[2] == 0);
  v[10] = 0, v[21] = 7;
  mq_pack_gptq_rows(v, 32, 1, 3, w);
  CHECK(w[0] == 0 && w[1] == 0x80000000u && w[2] == 3u);
  v[21] = 6; /* 0b110: word1 bit 31 = 0, word2 bits 0-1 = 0b11 */
  mq_pack_ct(v, 1, 32, 3, 1, w);
  CHECK(w[0] == 0 && w[1] == 0 && w[2] == 3u);
  v[21] = 0, v[42] = 7, v[63] = 3; /* second 96-bit block: rows 32..63 in words 3..5 */
  mq_pack_gptq_rows(v, 64, 1, 3, w);
  CHECK(w[3] == 0xC0000000u && w[4] == 1u && w[5] == 0x60000000u);

  /* qweight rows of several columns are independent streams */
  uint8_t m[32 * 2];
  uint32_t mw[6];
  for (int k = 0; k < 32; k++) m[k * 2] = (uint8_t)(k % 8), m[k * 2 + 1] = (uint8_t)(7 - k % 8);
  mq_pack_gptq_rows(m, 32, 2, 3, mw);
  CHECK(mw[0] == 0x88fac688u && mw[2] == 0xc688fac6u && mw[4] == 0xfac688fau);
  for (int k = 0; k < 32; k++) CHECK(field(mw + 1, 2, 3 * k, 3) == (uint32_t)(7 - k % 8));
}

/* v1 "minus one": round trip for 2/3/4/8 bits with zeros of 0 included. */
static void test_v1(void) {
  static const int bits[4] = {2, 3, 4, 8};
  for (int bi = 0; bi < 4; bi++) {
    int b = bits[bi], G = 3, N = 64;
    uint32_t mask = (1u << b) - 1;
    uint8_t z[3 * 64];
    for (int i = 0; i < G * N; i++) z[i] = (uint8_t)(mqt_rand() >> 40) & mask;
    z[0] = 0, z[5] = 0, z[N + 1] = 0, z[2 * N + N - 1] = 0, z[2 * N + 2] = (uint8_t)mask;
    int64_t nw = mq_pack_gptq_words(N, b);
    uint32_t p[3 * 16], p1[3 * 16];
    CHECK(nw == N * b / 32 && mq_pack_gptq_cols(z, G, N, b, p) == 0);
    memcpy(p1, p, sizeof p);
    mq_pack_gptq_zeros_to_v1(p1, G * nw, b);
    int exact = 1, minus1 = 1;
    for (int g = 0; g < G; g++)
      for (int n = 0; n < N; n++) {
        uint32_t f;
        if (b == 3)
          f = (field(p1 + g * nw, 1, 3 * n, 3) + 1) & 7; /* per-field reader */
        else {
          uint32_t ww = p1[g * nw + n / (32 / b)] + v1c(b); /* word-level reader */
          f = (ww >> (b * (n % (32 / b)))) & mask;
        }
        exact &= f == z[g * N + n];
        if (b == 3) minus1 &= field(p1 + g * nw, 1, 3 * n, 3) == ((z[g * N + n] - 1u) & 7u);
      }
    CHECK_MSG(exact && minus1, "v1 round trip %d-bit", b);
    if (b != 3) { /* the borrow: a zero of 0 in field 0 lowers field 1 by one */
      uint32_t f0 = p1[0] & mask, f1 = (p1[0] >> b) & mask;
      CHECK(f0 == mask && f1 == ((z[1] - 2u) & mask));
    }
    mq_pack_gptq_zeros_from_v1(p1, G * nw, b);
    CHECK(!memcmp(p, p1, (size_t)(G * nw) * 4));
  }
}

/* Random round trips of every packer against the hand unpackers. */
static void test_roundtrip(void) {
  enum { R = 5, C = 96 };
  uint8_t v[1024]; /* also holds the [21, 37] CT case below */
  uint32_t w[1024];
  for (int i = 0; i < R * C; i++) v[i] = (uint8_t)(mqt_rand() >> 40) & 15;
  mq_pack_awq(v, R, C, w);
  int ok = 1;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) ok &= awq_get(w[r * (C / 8) + c / 8], c % 8) == v[r * C + c];
  CHECK_MSG(ok, "AWQ interleave round trip");
  static const int gb[4] = {2, 3, 4, 8};
  for (int bi = 0; bi < 4; bi++) {
    int b = gb[bi];
    uint32_t mask = (1u << b) - 1;
    for (int i = 0; i < R * C; i++) v[i] = (uint8_t)((mqt_rand() >> 40) & mask);
    /* rows: v is [K = C, N = R] here */
    CHECK(mq_pack_gptq_rows(v, C, R, b, w) == 0);
    ok = 1;
    for (int k = 0; k < C; k++)
      for (int n = 0; n < R; n++) ok &= field(w + n, R, (int64_t)k * b, b) == v[k * R + n];
    if (b != 3) /* the plain word/shift formula of §2.3 */
      for (int k = 0; k < C; k++)
        ok &= ((w[(k / (32 / b)) * R] >> (b * (k % (32 / b)))) & mask) == v[k * R];
    CHECK_MSG(ok, "GPTQ rows %d-bit", b);
    CHECK(mq_pack_gptq_cols(v, R, C, b, w) == 0);
    ok = 1;
    for (int r = 0; r < R; r++)
      for (int n = 0; n < C; n++)
        ok &= field(w + r * (C * b / 32), 1, (int64_t)n * b, b) == v[r * C + n];
    CHECK_MSG(ok, "GPTQ cols %d-bit", b);
  }
  CHECK(mq_pack_gptq_rows(v, 16, 1, 3, w) == -1 && mq_pack_gptq_cols(v, 1, 12, 4, w) == -1);
  for (int b = 2; b <= 8; b++)
    for (int dense = 0; dense < 2; dense++) {
      const int K = 37, N = 21, G = 3; /* K, N not multiples of anything: padding */
      uint32_t mask = (1u << b) - 1;
      for (int i = 0; i < N * K; i++) v[i] = (uint8_t)((mqt_rand() >> 40) & mask);
      int64_t kw = mq_pack_ct_words(K, b, dense);
      CHECK(kw == (dense ? (K * b + 31) / 32 : (K + 32 / b - 1) / (32 / b)));
      mq_pack_ct(v, N, K, b, dense, w);
      ok = 1;
      for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++)
          ok &= field(w + n * kw, 1, ct_pos(k, b, dense), b) == v[n * K + k];
        int64_t used = dense ? (int64_t)K * b : ct_pos(K - 1, b, 0) + b; /* padding bits are zero */
        for (int64_t p = used; p < kw * 32; p++) ok &= bit_at(w + n * kw, 1, p) == 0;
      }
      CHECK_MSG(ok, "CT %s %d-bit", dense ? "dense" : "aligned", b);
      mq_pack_ct_dim0(v, N, G, b, dense, w); /* v as [N, G] zero points */
      ok = 1;
      for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) ok &= field(w + g, G, ct_pos(n, b, dense), b) == v[n * G + g];
      CHECK_MSG(ok, "CT dim0 %s %d-bit", dense ? "dense" : "aligned", b);
    }
}

/* ---- RTN ---- */

static void test_rtn(void) {
  enum { N = 8, K = 256 };
  static float w[N * K];
  static uint8_t q[N * K], z[N * K];
  static float s[N * K];
  static const int gss[3] = {32, 128, 256};
  static const mq_dtype dts[3] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32};
  static const int bitss[4] = {2, 3, 4, 8};
  for (int n = 0; n < N; n++) {
    float f = mqt_randf(0.01f, 3.0f);
    for (int k = 0; k < K; k++) w[n * K + k] = f * mqt_randf(-1.0f, 1.0f);
  }
  for (int mode = 0; mode < 5; mode++)
    for (int bi = 0; bi < 4; bi++)
      for (int gi = 0; gi < 3; gi++)
        for (int di = 0; di < 3; di++) {
          int b = bitss[bi], gs = gss[gi], G = K / gs, qmax = (1 << b) - 1;
          mq_rtn_params p = {b, gs, G, NULL, (mq_rtn_mode)mode, dts[di]};
          mq_err err = {0};
          CHECK(mq_rtn_quantize(w, N, K, &p, q, s, z, &err) == MQ_OK);
          /* clipping at a range end grows by the scale's rounding (qmax/2 steps * rel. error) */
          double rel = dts[di] == MQ_DTYPE_F16    ? 1.0 / 2048
                       : dts[di] == MQ_DTYPE_BF16 ? 1.0 / 256
                                                  : 1e-6;
          double bound = (mode == MQ_RTN_SYM_AUTOROUND ? 1.0 : 0.5) + qmax * rel;
          int ok_range = 1, ok_err = 1, ok_z = 1, ok_s = 1;
          for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
              int g = k / gs;
              float sc = s[n * G + g];
              ok_range &= q[n * K + k] <= qmax && z[n * G + g] <= qmax;
              ok_s &= mq_rtn_round_to(sc, dts[di]) == sc && sc != 0;
              double d = ((double)q[n * K + k] - z[n * G + g]) * sc - w[n * K + k];
              ok_err &= fabs(d) <= fabs(sc) * bound + 1e-7;
              if (mode == MQ_RTN_SYM || mode == MQ_RTN_SYM_AUTOROUND || mode == MQ_RTN_SYM_MS)
                ok_z &= z[n * G + g] == 1 << (b - 1);
            }
          CHECK_MSG(ok_range && ok_err && ok_z && ok_s,
                    "rtn mode %d bits %d gs %d dtype %d: range %d err %d zero %d scale %d", mode, b,
                    gs, di, ok_range, ok_err, ok_z, ok_s);
        }
  /* AutoRound sym: the larger-magnitude extreme maps to code 0, the scale's sign follows */
  float r2[2 * 8] = {-2.0f, 1.0f, 0.5f, -0.25f, 0.1f, 0.2f, 0.3f, 0.4f,  /* |min| wins: s > 0 */
                     -1.0f, 2.0f, 0.5f, -0.25f, 0.1f, 0.2f, 0.3f, 0.4f}; /* max wins: s < 0 */
  mq_rtn_params p = {4, 8, 1, NULL, MQ_RTN_SYM_AUTOROUND, MQ_DTYPE_F16};
  CHECK(mq_rtn_quantize(r2, 2, 8, &p, q, s, z, NULL) == MQ_OK);
  CHECK(s[0] == 0.25f && q[0] == 0 && z[0] == 8);
  CHECK(s[1] == -0.25f && q[8 + 1] == 0 && z[1] == 8);
  /* msmodelslim sym: absmax / (2^(b-1) - 1), values in [-2^(b-1), 2^(b-1) - 1] */
  float r3[8] = {-1.4f, 0.75f, 0.35f, -0.13f, 0.0f, 0.2f, 0.3f, 0.69f};
  mq_rtn_params pm = {4, 8, 1, NULL, MQ_RTN_SYM_MS, MQ_DTYPE_F32};
  CHECK(mq_rtn_quantize(r3, 1, 8, &pm, q, s, z, NULL) == MQ_OK);
  CHECK(s[0] == 1.4f / 7.0f && z[0] == 8 && q[0] == 8 - 7 && q[1] == 8 + 4 && q[2] == 8 + 2 &&
        q[3] == 8 - 1 && q[4] == 8);
  pm.bits = 8;
  CHECK(mq_rtn_quantize(r3, 1, 8, &pm, q, s, z, NULL) == MQ_OK);
  CHECK(s[0] == 1.4f / 127.0f && q[0] == 128 - 127 && q[1] == 128 + 68);
  /* a group of zeros: finite scale, codes at the zero point (dequant 0) */
  float zr[32] = {0};
  for (int mode = 0; mode < 5; mode++) {
    mq_rtn_params pz = {4, 32, 1, NULL, (mq_rtn_mode)mode, MQ_DTYPE_BF16};
    CHECK(mq_rtn_quantize(zr, 1, 32, &pz, q, s, z, NULL) == MQ_OK);
    CHECK(s[0] != 0 && isfinite(s[0]) && q[0] == z[0] && q[31] == z[0]);
  }
  mq_rtn_params pf = {4, 32, 1, NULL, MQ_RTN_SYM, MQ_DTYPE_F16};
  zr[3] = NAN;
  CHECK(mq_rtn_quantize(zr, 1, 32, &pf, q, s, z, NULL) == MQ_ERR_FORMAT);
  zr[3] = 1e6f; /* scale 1e6/7.5 overflows fp16 */
  CHECK(mq_rtn_quantize(zr, 1, 32, &pf, q, s, z, NULL) == MQ_ERR_FORMAT);
  pf.n_groups = 0;
  CHECK(mq_rtn_quantize(zr, 1, 32, &pf, q, s, z, NULL) == MQ_ERR_ARG);
}

static void test_actorder(void) {
  enum { K = 256, GS = 32, G = K / GS };
  int32_t a[K], b[K], c[K];
  CHECK(mq_rtn_actorder_gidx(K, GS, 42, a) == MQ_OK);
  mq_rtn_actorder_gidx(K, GS, 42, b);
  mq_rtn_actorder_gidx(K, GS, 43, c);
  int count[G] = {0}, mono = 1, ok = 1;
  for (int k = 0; k < K; k++) {
    ok &= a[k] >= 0 && a[k] < G;
    if (ok) count[a[k]]++;
    if (k) mono &= a[k] >= a[k - 1];
  }
  for (int g = 0; g < G; g++) ok &= count[g] == GS;
  CHECK(ok && !mono && !memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a));
  /* RTN groups follow g_idx: every member of a group within its group's scale */
  static float w[4 * K];
  static uint8_t q[4 * K], z[4 * G];
  static float s[4 * G];
  for (int i = 0; i < 4 * K; i++) w[i] = mqt_randf(-1.0f, 1.0f) * (1.0f + (float)(i % K) / 64.0f);
  mq_rtn_params p = {4, GS, G, a, MQ_RTN_ASYM, MQ_DTYPE_F32};
  CHECK(mq_rtn_quantize(w, 4, K, &p, q, s, z, NULL) == MQ_OK);
  ok = 1;
  for (int n = 0; n < 4; n++)
    for (int k = 0; k < K; k++) {
      float sc = s[n * G + a[k]];
      ok &= fabs(((double)q[n * K + k] - z[n * G + a[k]]) * sc - w[n * K + k]) <= sc * 0.5 + 1e-6;
    }
  CHECK(ok);
}

int main(void) {
  test_vectors();
  test_hand();
  test_v1();
  test_roundtrip();
  test_rtn();
  test_actorder();
  return mqt_report("test_pack");
}
