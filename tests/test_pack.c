/* The quantizing writer: packers against formats.md §8 (T1-T8) and
 * hand-computed words, round-to-nearest quantization, and end to end (a float
 * checkpoint quantized in every format, re-opened, tensors checked by name,
 * dtype and shape, weights decoded by hand and compared with the RTN codes). */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "io/checkpoint.h"
#include "io/st_write.h"
#include "quant/pack.h"
#include "quant/rtn.h"
#include "quant/writer.h"
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
  for (int mode = 0; mode < 4; mode++)
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
              if (mode == MQ_RTN_SYM || mode == MQ_RTN_SYM_AUTOROUND)
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
  /* a group of zeros: finite scale, codes at the zero point (dequant 0) */
  float zr[32] = {0};
  for (int mode = 0; mode < 4; mode++) {
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

/* ---- end to end ---- */

enum { L_AWQ, L_GPTQ, L_CT };
static const char *const k_mod[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                     "mlp.down_proj"};

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[512];
  struct stat st;
  while (d && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (!lstat(p, &st) && S_ISDIR(st.st_mode))
      rm_tree(p);
    else
      unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static void put_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f) fputs(text, f), fclose(f);
}

static int file_exists(const char *dir, const char *name) {
  char p[512];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

static void add_rand(mq_st_writer *w, const char *name, mq_dtype dt, int nd, int64_t d0,
                     int64_t d1) {
  int64_t shape[2] = {d0, d1}, n = d0 * (nd == 2 ? d1 : 1);
  uint8_t *buf = malloc((size_t)n * 4);
  float rowf = 1.0f;
  for (int64_t i = 0; i < n; i++) {
    if (nd == 2 && i % d1 == 0) rowf = mqt_randf(0.02f, 0.5f); /* rows of different magnitude */
    float v = rowf * mqt_randf(-1.0f, 1.0f);
    if (dt == MQ_DTYPE_F32)
      memcpy(buf + 4 * i, &v, 4);
    else {
      uint16_t h = dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v) : mq_f32_to_bf16(v);
      memcpy(buf + 2 * i, &h, 2);
    }
  }
  CHECK(mq_st_writer_add(w, name, dt, nd, shape, buf, NULL) == MQ_OK);
  free(buf);
}

/* llama-like float checkpoint: hidden 128, kv 64, ffn 256, 2 layers, vocab 64;
 * bias: q/k/v biases (qwen2); router: an extra in-block Linear mlp.gate. */
static void make_src(const char *dir, mq_dtype dt, int bias, int router) {
  static const int64_t nk[7][2] = {{128, 128}, {64, 128},  {64, 128}, {128, 128},
                                   {256, 128}, {256, 128}, {128, 256}};
  mkdir(dir, 0777);
  mq_st_writer *w = mq_st_writer_new();
  char n[128];
  add_rand(w, "model.embed_tokens.weight", dt, 2, 64, 128);
  for (int l = 0; l < 2; l++) {
    snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
    add_rand(w, n, dt, 1, 128, 0);
    for (int m = 0; m < 7; m++) {
      snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, k_mod[m]);
      add_rand(w, n, dt, 2, nk[m][0], nk[m][1]);
      if (bias && m < 3) {
        snprintf(n, sizeof n, "model.layers.%d.%s.bias", l, k_mod[m]);
        add_rand(w, n, dt, 1, nk[m][0], 0);
      }
    }
    if (router) {
      snprintf(n, sizeof n, "model.layers.%d.mlp.gate.weight", l);
      add_rand(w, n, dt, 2, 8, 128);
    }
  }
  add_rand(w, "model.norm.weight", dt, 1, 128, 0);
  add_rand(w, "lm_head.weight", dt, 2, 64, 128);
  char p[512];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  CHECK(mq_st_writer_save(w, p, NULL) == MQ_OK);
  mq_st_writer_free(w);
  put_file(
      dir, "config.json",
      "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 128,"
      " \"intermediate_size\": 256, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
      " \"num_key_value_heads\": 2, \"vocab_size\": 64, \"rms_norm_eps\": 1e-06}");
  put_file(dir, "tokenizer.json", "{\"model\": {}}");
  put_file(dir, "golden.json", "{}"); /* not a side file: must not be copied */
}

typedef struct {
  int layout, bits, gs, sym, v1, gidx, dense, desc_act;
  mq_rtn_mode mode;
  mq_dtype model_dt;
} expect;

static uint32_t u32_at(const mq_tensor *t, int64_t i) {
  uint32_t v;
  memcpy(&v, t->data + 4 * i, 4);
  return v;
}
static float f_at(const mq_tensor *t, int64_t i) {
  uint16_t h;
  if (t->dtype == MQ_DTYPE_F32) {
    float f;
    memcpy(&f, t->data + 4 * i, 4);
    return f;
  }
  memcpy(&h, t->data + 2 * i, 2);
  return t->dtype == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
}
static uint32_t *words(const mq_tensor *t) {
  uint32_t *w = malloc(t->nbytes + 4);
  memcpy(w, t->data, t->nbytes);
  return w;
}

/* The tensor mod.suf with exactly this dtype and shape (d1 < 0: rank 1). */
static const mq_tensor *need(const mq_ckpt *c, const char *mod, const char *suf, mq_dtype dt,
                             int64_t d0, int64_t d1) {
  char n[256];
  snprintf(n, sizeof n, "%s.%s", mod, suf);
  const mq_tensor *t = mq_ckpt_find(c, n);
  int nd = d1 < 0 ? 1 : 2;
  int ok =
      t && t->dtype == dt && t->n_dims == nd && t->shape[0] == d0 && (nd == 1 || t->shape[1] == d1);
  CHECK_MSG(ok, "%s: want %s [%lld, %lld], have %s rank %d [%lld, %lld]", n, mq_dtype_name(dt),
            (long long)d0, (long long)d1, t ? mq_dtype_name(t->dtype) : "none", t ? t->n_dims : 0,
            t ? (long long)t->shape[0] : 0, t && t->n_dims > 1 ? (long long)t->shape[1] : 0);
  return ok ? t : NULL;
}
static int absent(const mq_ckpt *c, const char *mod, const char *suf) {
  char n[256];
  snprintf(n, sizeof n, "%s.%s", mod, suf);
  return mq_ckpt_find(c, n) == NULL;
}

/* Decode one quantized layer by hand and compare with RTN of the source weights. */
static void check_layer(const mq_ckpt *src, const mq_ckpt *dst, const char *mod, const expect *e,
                        int bits) {
  char n[256];
  snprintf(n, sizeof n, "%s.weight", mod);
  const mq_tensor *wt = mq_ckpt_find(src, n);
  const int64_t N = wt->shape[0], K = wt->shape[1];
  const int gs = e->gs == -1 ? (int)K : e->gs, G = (int)(K / gs), b = bits;
  float *W = malloc((size_t)(N * K) * 4), *s = malloc((size_t)(N * G) * 4),
        *s2 = malloc((size_t)(N * G) * 4);
  uint8_t *q = calloc((size_t)(N * K), 1), *z = calloc((size_t)(N * G), 1),
          *q2 = malloc((size_t)(N * K)), *z2 = malloc((size_t)(N * G));
  int32_t *gi = malloc((size_t)K * 4);
  for (int64_t i = 0; i < N * K; i++) W[i] = f_at(wt, i);
  for (int64_t k = 0; k < K; k++) gi[k] = (int32_t)(k / gs);
  CHECK(absent(dst, mod, "weight"));
  snprintf(n, sizeof n, "%s.bias", mod);
  const mq_tensor *sb = mq_ckpt_find(src, n), *db = NULL;
  int ok = 1;
  if (e->layout != L_CT) {
    const mq_tensor *qw, *qz, *sc, *g = NULL;
    int64_t kw = e->layout == L_AWQ ? K : K * b / 32, zw = e->layout == L_AWQ ? N / 8 : N * b / 32;
    qw = need(dst, mod, "qweight", MQ_DTYPE_I32, kw, e->layout == L_AWQ ? N / 8 : N);
    qz = need(dst, mod, "qzeros", MQ_DTYPE_I32, G, zw);
    sc = need(dst, mod, "scales", MQ_DTYPE_F16, G, N);
    if (e->gidx)
      g = need(dst, mod, "g_idx", MQ_DTYPE_I32, K, -1);
    else
      CHECK(absent(dst, mod, "g_idx"));
    if (sb) CHECK((db = need(dst, mod, "bias", MQ_DTYPE_F16, N, -1)) != NULL);
    if (!qw || !qz || !sc || (e->gidx && !g)) goto out;
    uint32_t *w = words(qw), *zz = words(qz);
    if (e->v1 && b == 3)
      for (int64_t r = 0; r < G; r++)
        for (int64_t i = 0; i < N; i++) { /* per-field +1 */
          uint32_t f = (field(zz + r * zw, 1, 3 * i, 3) + 1) & 7;
          for (int t = 0; t < 3; t++) {
            int64_t pos = 3 * i + t, wi = r * zw + pos / 32;
            zz[wi] = (zz[wi] & ~(1u << (pos % 32))) | (((f >> t) & 1u) << (pos % 32));
          }
        }
    else if (e->v1)
      for (int64_t i = 0; i < G * zw; i++) zz[i] += v1c(b); /* word-level +C */
    for (int64_t k = 0; k < K; k++)
      for (int64_t c = 0; c < N; c++)
        q[c * K + k] = (uint8_t)(e->layout == L_AWQ ? awq_get(w[k * (N / 8) + c / 8], (int)(c % 8))
                                                    : field(w + c, N, k * b, b));
    for (int64_t r = 0; r < G; r++)
      for (int64_t c = 0; c < N; c++) {
        z[c * G + r] = (uint8_t)(e->layout == L_AWQ ? awq_get(zz[r * zw + c / 8], (int)(c % 8))
                                                    : field(zz + r * zw, 1, c * b, b));
        s[c * G + r] = f_at(sc, r * N + c);
      }
    if (g)
      for (int64_t k = 0; k < K; k++)
        ok &= e->desc_act || (int32_t)u32_at(g, k) == gi[k], gi[k] = (int32_t)u32_at(g, k);
    free(w), free(zz);
    for (int64_t i = 0; db && i < N; i++)
      ok &= f_at(db, i) == mq_rtn_round_to(f_at(sb, i), MQ_DTYPE_F16);
  } else {
    int64_t kw = mq_pack_ct_words(K, b, e->dense), nw = mq_pack_ct_words(N, b, e->dense);
    const mq_tensor *wp = need(dst, mod, "weight_packed", MQ_DTYPE_I32, N, kw);
    const mq_tensor *ws = need(dst, mod, "weight_scale", e->model_dt, N, G);
    const mq_tensor *sh = need(dst, mod, "weight_shape", MQ_DTYPE_I64, 2, -1), *zp = NULL,
                    *g = NULL;
    if (!e->sym)
      zp = need(dst, mod, "weight_zero_point", MQ_DTYPE_I32, nw, G);
    else
      CHECK(absent(dst, mod, "weight_zero_point"));
    if (e->desc_act)
      g = need(dst, mod, "weight_g_idx", MQ_DTYPE_I32, K, -1);
    else
      CHECK(absent(dst, mod, "weight_g_idx"));
    if (sb) { /* CT keeps the bias as it was */
      db = need(dst, mod, "bias", sb->dtype, N, -1);
      CHECK(db && !memcmp(db->data, sb->data, sb->nbytes));
    }
    if (!wp || !ws || !sh || (!e->sym && !zp) || (e->desc_act && !g)) goto out;
    int64_t shp[2];
    memcpy(shp, sh->data, 16);
    CHECK(shp[0] == N && shp[1] == K);
    uint32_t *w = words(wp), *zz = zp ? words(zp) : NULL;
    for (int64_t c = 0; c < N; c++) {
      for (int64_t k = 0; k < K; k++)
        q[c * K + k] = (uint8_t)field(w + c * kw, 1, ct_pos(k, b, e->dense), b);
      for (int r = 0; r < G; r++) {
        z[c * G + r] = (uint8_t)(zz ? field(zz + r, G, ct_pos(c, b, e->dense), b) : 1u << (b - 1));
        s[c * G + r] = f_at(ws, c * G + r);
      }
    }
    for (int64_t k = 0; g && k < K; k++) gi[k] = (int32_t)u32_at(g, k);
    free(w), free(zz);
  }
  CHECK_MSG(ok, "%s: g_idx or bias", mod);
  mq_rtn_params p = {
      b, gs, G, e->desc_act ? gi : NULL, e->mode, e->layout == L_CT ? e->model_dt : MQ_DTYPE_F16};
  CHECK(mq_rtn_quantize(W, N, K, &p, q2, s2, z2, NULL) == MQ_OK);
  int bad_q = 0, bad_z = 0, bad_s = 0;
  for (int64_t i = 0; i < N * K; i++) bad_q += q[i] != q2[i];
  for (int64_t i = 0; i < N * G; i++) bad_z += z[i] != z2[i], bad_s += s[i] != s2[i];
  CHECK_MSG(!bad_q && !bad_z && !bad_s, "%s: %d codes, %d zeros, %d scales differ from RTN", mod,
            bad_q, bad_z, bad_s);
  if (e->desc_act) { /* a real act-order g_idx: non-monotonic, gs channels per group */
    int mono = 1, cnt[64] = {0};
    for (int64_t k = 0; k < K; k++) mono &= !k || gi[k] >= gi[k - 1], cnt[gi[k] & 63]++;
    CHECK_MSG((G == 1 || !mono) && cnt[0] == gs,
              "%s: act-order g_idx (G %d, monotonic %d, group 0 has %d)", mod, G, mono, cnt[0]);
  }
out:
  free(W), free(s), free(s2), free(q), free(z), free(q2), free(z2), free(gi);
}

typedef struct {
  const char *re; /* exact module name (for the test) */
  int bits;
} override;

/* Every Linear of the 2 layers: quantized as expected, or (bits 16) copied. */
static void check_model(const char *srcd, const char *dstd, const expect *e, const override *ov,
                        int nov) {
  mq_ckpt src, dst;
  mq_err err = {0};
  CHECK(mq_ckpt_open(srcd, &src, &err) == MQ_OK);
  if (mq_ckpt_open(dstd, &dst, &err) != MQ_OK) {
    CHECK_MSG(0, "open %s: %s", dstd, err.msg);
    mq_ckpt_close(&src);
    return;
  }
  for (int l = 0; l < 2; l++)
    for (int m = 0; m < 7; m++) {
      char mod[128], n[160];
      snprintf(mod, sizeof mod, "model.layers.%d.%s", l, k_mod[m]);
      int bits = e->bits;
      for (int i = 0; i < nov; i++)
        if (!strcmp(ov[i].re, mod)) bits = ov[i].bits;
      if (bits != 16) {
        check_layer(&src, &dst, mod, e, bits);
        continue;
      }
      snprintf(n, sizeof n, "%s.weight", mod);
      const mq_tensor *a = mq_ckpt_find(&src, n), *b = mq_ckpt_find(&dst, n);
      CHECK_MSG(b && b->dtype == a->dtype && b->nbytes == a->nbytes &&
                    !memcmp(a->data, b->data, a->nbytes) && absent(&dst, mod, "qweight") &&
                    absent(&dst, mod, "weight_packed"),
                "%s kept float", mod);
    }
  static const char *const other[] = {"model.embed_tokens.weight", "model.norm.weight",
                                      "lm_head.weight", "model.layers.1.input_layernorm.weight"};
  for (int i = 0; i < 4; i++) {
    const mq_tensor *a = mq_ckpt_find(&src, other[i]), *b = mq_ckpt_find(&dst, other[i]);
    CHECK_MSG(b && b->dtype == a->dtype && !memcmp(a->data, b->data, a->nbytes), "%s copied",
              other[i]);
  }
  mq_ckpt_close(&src);
  mq_ckpt_close(&dst);
}

/* quantization_config of dst/config.json (caller decrefs the returned root). */
static json_t *load_cfg(const char *dst, json_t **qc) {
  char p[512];
  snprintf(p, sizeof p, "%s/config.json", dst);
  json_t *root = json_load_file(p, 0, NULL);
  *qc = json_object_get(root, "quantization_config");
  CHECK_MSG(*qc != NULL, "%s: quantization_config", p);
  CHECK(json_integer_value(json_object_get(root, "hidden_size")) == 128);
  return root;
}
static int js(const json_t *o, const char *k, const char *want) {
  const char *v = json_string_value(json_object_get(o, k));
  return v && !strcmp(v, want);
}
static long long ji(const json_t *o, const char *k) {
  return json_integer_value(json_object_get(o, k));
}
static int jb(const json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

static int quant(const char *src, const char *dst, mq_quantize_opts *o, mq_err *err) {
  o->src = src, o->dst = dst;
  int rc = mq_quantize_checkpoint(o, err);
  CHECK_MSG(rc == MQ_OK, "quantize %s: %s", dst, err->msg);
  return rc;
}

static void test_end_to_end(void) {
  char tmp[] = "/tmp/mq_test_pack_XXXXXX", src[128], srcb[128], srcr[128], dst[160];
  if (!mkdtemp(tmp)) {
    CHECK_MSG(0, "mkdtemp");
    return;
  }
  snprintf(src, sizeof src, "%s/src", tmp);
  snprintf(srcb, sizeof srcb, "%s/src-bf16-bias", tmp);
  snprintf(srcr, sizeof srcr, "%s/src-router", tmp);
  make_src(src, MQ_DTYPE_F32, 0, 0);
  make_src(srcb, MQ_DTYPE_BF16, 1, 0);
  make_src(srcr, MQ_DTYPE_F16, 0, 1);
  mq_quantize_opts o;
  mq_err err = {0};
  json_t *root, *qc;
#define DST(name) (snprintf(dst, sizeof dst, "%s/%s", tmp, name), dst)
#define RESET() (mq_quantize_opts_default(&o), memset(&err, 0, sizeof err))

  /* AWQ GEMM, defaults: asym 4-bit gs 128, fp16 scales and bias */
  RESET(), o.format = MQ_QFORMAT_AWQ;
  if (!quant(srcb, DST("awq"), &o, &err)) {
    expect e = {L_AWQ, 4, 128, 0, 0, 0, 0, 0, MQ_RTN_ASYM_AWQ, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "awq") && jb(qc, "zero_point") && ji(qc, "bits") == 4 &&
          ji(qc, "group_size") == 128 && js(qc, "version", "gemm") &&
          json_is_null(json_object_get(qc, "modules_to_not_convert")));
    json_decref(root);
    CHECK(file_exists(dst, "tokenizer.json") && !file_exists(dst, "golden.json"));
  }
  /* AWQ with skipped layers: modules_to_not_convert lists exact names */
  RESET(), o.format = MQ_QFORMAT_AWQ;
  const char *ign_down[] = {".*down_proj"};
  o.ignore = ign_down, o.n_ignore = 1;
  if (!quant(src, DST("awq-skip"), &o, &err)) {
    expect e = {L_AWQ, 4, 128, 0, 0, 0, 0, 0, MQ_RTN_ASYM_AWQ, MQ_DTYPE_F32};
    override ov[] = {{"model.layers.0.mlp.down_proj", 16}, {"model.layers.1.mlp.down_proj", 16}};
    check_model(src, dst, &e, ov, 2);
    root = load_cfg(dst, &qc);
    json_t *m = json_object_get(qc, "modules_to_not_convert");
    CHECK(json_array_size(m) == 2 &&
          !strcmp(json_string_value(json_array_get(m, 1)), "model.layers.1.mlp.down_proj"));
    json_decref(root);
  }
  /* AutoGPTQ v1, defaults: sym 4-bit, g_idx = k / 128, qzeros all 0x77777777 */
  RESET(), o.format = MQ_QFORMAT_GPTQ;
  if (!quant(srcb, DST("gptq"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 1, 0, 0, MQ_RTN_SYM, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "gptq") && js(qc, "checkpoint_format", "gptq") && jb(qc, "sym") &&
          !jb(qc, "desc_act") && ji(qc, "bits") == 4 && !json_object_get(qc, "dynamic"));
    json_decref(root);
    CHECK(file_exists(dst, "quantize_config.json"));
    mq_ckpt c;
    if (mq_ckpt_open(dst, &c, NULL) == MQ_OK) {
      const mq_tensor *t = mq_ckpt_find(&c, "model.layers.0.mlp.down_proj.qzeros");
      CHECK(t && u32_at(t, 0) == 0x77777777u && u32_at(t, t->n_elems - 1) == 0x77777777u);
      mq_ckpt_close(&c);
    }
    /* its output is quantized: refusing it as a source */
    char prev[160];
    snprintf(prev, sizeof prev, "%s", dst);
    RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = prev, o.dst = DST("twice");
    CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_UNSUPPORTED &&
          strstr(err.msg, "already quantized"));
  }
  /* v1 asym 3-bit gs 32 and 4-bit gs 64, 2- and 8-bit */
  static const int v1b[4][2] = {{3, 32}, {4, 64}, {2, 128}, {8, -1}};
  for (int i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "gptq-asym-%d", v1b[i][0]);
    RESET(), o.format = MQ_QFORMAT_GPTQ, o.sym = 0, o.bits = v1b[i][0], o.group_size = v1b[i][1];
    if (quant(src, DST(name), &o, &err)) continue;
    expect e = {L_GPTQ, v1b[i][0], v1b[i][1], 0, 1, 1, 0, 0, MQ_RTN_ASYM, MQ_DTYPE_F32};
    check_model(src, dst, &e, NULL, 0);
  }
  /* GPTQModel v2 with act-order, 8-bit gs 32 and 3-bit gs 64 */
  for (int i = 0; i < 2; i++) {
    RESET(), o.format = MQ_QFORMAT_GPTQ_V2, o.desc_act = 1, o.bits = i ? 3 : 8,
             o.group_size = i ? 64 : 32, o.seed = 5;
    if (quant(srcb, DST(i ? "gptq-v2-3" : "gptq-v2-8"), &o, &err)) continue;
    expect e = {L_GPTQ, o.bits, o.group_size, 1, 0, 1, 0, 1, MQ_RTN_SYM, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "checkpoint_format", "gptq_v2") && js(qc, "format", "gptq_v2") &&
          jb(qc, "desc_act") && js(qc, "pack_dtype", "int32") &&
          json_object_get(json_object_get(qc, "meta"), "quantizer"));
    json_decref(root);
  }
  /* GPTQ mixed bits: GPTQModel `dynamic`, ignores first */
  RESET(), o.format = MQ_QFORMAT_GPTQ;
  mq_layer_bits lb[] = {{"model\\.layers\\.1\\.mlp", 8}, {".*v_proj", 16}};
  const char *ign_o[] = {".*o_proj"};
  o.layer_bits = lb, o.n_layer_bits = 2, o.ignore = ign_o, o.n_ignore = 1;
  if (!quant(src, DST("gptq-mixed"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 1, 0, 0, MQ_RTN_SYM, MQ_DTYPE_F32};
    override ov[] = {
        {"model.layers.1.mlp.gate_proj", 8},     {"model.layers.1.mlp.up_proj", 8},
        {"model.layers.1.mlp.down_proj", 8},     {"model.layers.0.self_attn.o_proj", 16},
        {"model.layers.1.self_attn.o_proj", 16}, {"model.layers.0.self_attn.v_proj", 16},
        {"model.layers.1.self_attn.v_proj", 16}};
    check_model(src, dst, &e, ov, 7);
    root = load_cfg(dst, &qc);
    json_t *d = json_object_get(qc, "dynamic");
    const char *k0 = json_object_iter_key(json_object_iter(d));
    CHECK(json_object_size(d) == 3 && k0 && !strcmp(k0, "-:.*o_proj") &&
          ji(json_object_get(d, "+:model\\.layers\\.1\\.mlp"), "bits") == 8 &&
          json_object_size(json_object_get(d, "-:.*v_proj")) == 0);
    json_decref(root);
  }
  /* AutoRound: default sym -> auto_round:auto_gptq (v1, no g_idx, signed scales) */
  RESET(), o.format = MQ_QFORMAT_AUTOROUND;
  if (!quant(srcb, DST("ar"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 0, 0, 0, MQ_RTN_SYM_AUTOROUND, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "auto-round") &&
          js(qc, "packing_format", "auto_round:auto_gptq") && js(qc, "data_type", "int") &&
          jb(qc, "sym") && !json_object_get(qc, "extra_config"));
    json_decref(root);
    CHECK(file_exists(dst, "quantization_config.json"));
    mq_ckpt c;
    int neg = 0;
    if (mq_ckpt_open(dst, &c, NULL) == MQ_OK) {
      const mq_tensor *t = mq_ckpt_find(&c, "model.layers.0.mlp.up_proj.scales");
      for (uint64_t i = 0; t && i < t->n_elems; i++) neg += f_at(t, (int64_t)i) < 0;
      mq_ckpt_close(&c);
    }
    CHECK_MSG(neg > 0, "AutoRound sym scales are signed");
  }
  /* AutoRound asym -> "auto_round" (exact zeros); gptqmodel 3-bit act-order; auto_awq sym */
  static const struct {
    mq_qpacking pack;
    int sym, bits, desc, layout, v1, gidx;
    const char *pf;
  } arc[] = {{MQ_QPACKING_DEFAULT, 0, 4, 0, L_GPTQ, 0, 0, "auto_round"},
             {MQ_QPACKING_GPTQMODEL, 1, 3, 1, L_GPTQ, 0, 1, "auto_round:gptqmodel"},
             {MQ_QPACKING_AUTO_AWQ, 1, 4, 0, L_AWQ, 0, 0, "auto_round:auto_awq"},
             {MQ_QPACKING_AUTO_GPTQ, 0, 2, 0, L_GPTQ, 1, 0, "auto_round:auto_gptq"}};
  for (int i = 0; i < 4; i++) {
    RESET(), o.format = MQ_QFORMAT_AUTOROUND, o.packing = arc[i].pack, o.sym = arc[i].sym;
    o.bits = arc[i].bits, o.desc_act = arc[i].desc, o.group_size = 32;
    if (quant(src, DST(arc[i].pf), &o, &err)) continue;
    expect e = {arc[i].layout,
                arc[i].bits,
                32,
                arc[i].sym,
                arc[i].v1,
                arc[i].gidx,
                0,
                arc[i].desc,
                arc[i].sym ? MQ_RTN_SYM_AUTOROUND : MQ_RTN_ASYM,
                MQ_DTYPE_F32};
    check_model(src, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "packing_format", arc[i].pf) && jb(qc, "sym") == arc[i].sym);
    json_decref(root);
  }
  /* AutoRound mixed: extra_config with exact names, bits 16 = float */
  RESET(), o.format = MQ_QFORMAT_AUTOROUND, o.layer_bits = lb, o.n_layer_bits = 1, o.ignore = ign_o,
           o.n_ignore = 1;
  if (!quant(src, DST("ar-mixed"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 0, 0, 0, MQ_RTN_SYM_AUTOROUND, MQ_DTYPE_F32};
    override ov[] = {{"model.layers.1.mlp.gate_proj", 8},
                     {"model.layers.1.mlp.up_proj", 8},
                     {"model.layers.1.mlp.down_proj", 8},
                     {"model.layers.0.self_attn.o_proj", 16},
                     {"model.layers.1.self_attn.o_proj", 16}};
    check_model(src, dst, &e, ov, 5);
    root = load_cfg(dst, &qc);
    json_t *x = json_object_get(qc, "extra_config");
    CHECK(json_object_size(x) == 5 &&
          ji(json_object_get(x, "model.layers.1.mlp.down_proj"), "bits") == 8 &&
          ji(json_object_get(x, "model.layers.0.self_attn.o_proj"), "bits") == 16 &&
          json_object_size(json_object_get(x, "model.layers.0.self_attn.o_proj")) == 1);
    json_decref(root);
  }
  /* compressed-tensors W4A16 (bf16: bf16 scales), W8A16 channel, asym, 3-bit both packings */
  static const struct {
    mq_qformat f;
    int bits, gs, sym, dense;
    mq_qpacking pack;
  } ctc[] = {{MQ_QFORMAT_CT_W4A16, 0, 0, -1, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W8A16, 0, -1, -1, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W4A16, 0, 32, 0, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W4A16, 3, 64, 0, 0, MQ_QPACKING_CT_ALIGNED},
             {MQ_QFORMAT_CT_W4A16, 3, 64, 0, 1, MQ_QPACKING_CT_DENSE},
             {MQ_QFORMAT_CT_W8A16, 0, 128, 1, 0, MQ_QPACKING_DEFAULT}};
  for (int i = 0; i < 6; i++) {
    char name[32];
    snprintf(name, sizeof name, "ct-%d", i);
    RESET(), o.format = ctc[i].f, o.bits = ctc[i].bits, o.group_size = ctc[i].gs,
             o.sym = ctc[i].sym;
    o.packing = ctc[i].pack, o.desc_act = i == 5;
    if (quant(srcb, DST(name), &o, &err)) continue;
    int bits = ctc[i].bits ? ctc[i].bits : ctc[i].f == MQ_QFORMAT_CT_W8A16 ? 8 : 4;
    int gs = ctc[i].gs ? ctc[i].gs : 128, sym = ctc[i].sym != 0;
    expect e = {
        L_CT,         bits, gs, sym, 0, 0, ctc[i].dense, i == 5, sym ? MQ_RTN_SYM : MQ_RTN_ASYM,
        MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    json_t *g0 = json_object_get(json_object_get(qc, "config_groups"), "group_0"),
           *wa = json_object_get(g0, "weights");
    CHECK(js(qc, "quant_method", "compressed-tensors") && js(qc, "format", "pack-quantized") &&
          js(qc, "quantization_status", "compressed") &&
          js(qc, "version", ctc[i].dense ? "0.18.0" : "0.12.2"));
    CHECK(
        ji(wa, "num_bits") == bits && jb(wa, "symmetric") == sym && js(wa, "type", "int") &&
        js(wa, "strategy", gs == -1 ? "channel" : "group") &&
        (gs == -1 ? json_is_null(json_object_get(wa, "group_size")) : ji(wa, "group_size") == gs));
    CHECK(i != 5 ? json_is_null(json_object_get(wa, "actorder")) : js(wa, "actorder", "group"));
    CHECK(json_array_size(json_object_get(qc, "ignore")) == 1 &&
          !strcmp(json_string_value(json_array_get(json_object_get(qc, "ignore"), 0)), "lm_head"));
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(g0, "targets"), 0)), "Linear"));
    json_decref(root);
  }
  /* compressed-tensors mixed: extra group with exact names, ignore for skipped */
  RESET(), o.format = MQ_QFORMAT_CT_W4A16;
  mq_layer_bits lbd[] = {{".*down_proj", 8}};
  const char *ign_a[] = {"model\\.layers\\.0\\.self_attn"};
  o.layer_bits = lbd, o.n_layer_bits = 1, o.ignore = ign_a, o.n_ignore = 1;
  if (!quant(src, DST("ct-mixed"), &o, &err)) {
    expect e = {L_CT, 4, 128, 1, 0, 0, 0, 0, MQ_RTN_SYM, MQ_DTYPE_F32};
    override ov[] = {
        {"model.layers.0.mlp.down_proj", 8},     {"model.layers.1.mlp.down_proj", 8},
        {"model.layers.0.self_attn.q_proj", 16}, {"model.layers.0.self_attn.k_proj", 16},
        {"model.layers.0.self_attn.v_proj", 16}, {"model.layers.0.self_attn.o_proj", 16}};
    check_model(src, dst, &e, ov, 6);
    root = load_cfg(dst, &qc);
    json_t *g1 = json_object_get(json_object_get(qc, "config_groups"), "group_1");
    json_t *t = json_object_get(g1, "targets"), *ig = json_object_get(qc, "ignore");
    CHECK(ji(json_object_get(g1, "weights"), "num_bits") == 8 && json_array_size(t) == 2 &&
          !strcmp(json_string_value(json_array_get(t, 0)), "model.layers.0.mlp.down_proj"));
    CHECK(json_array_size(ig) == 5 &&
          !strcmp(json_string_value(json_array_get(ig, 4)), "model.layers.0.self_attn.o_proj"));
    json_decref(root);
  }
  /* another Linear in the blocks (a router) is declared float in every format */
  RESET(), o.format = MQ_QFORMAT_CT_W4A16;
  if (!quant(srcr, DST("ct-router"), &o, &err)) {
    root = load_cfg(dst, &qc);
    json_t *ig = json_object_get(qc, "ignore");
    CHECK(json_array_size(ig) == 3 &&
          !strcmp(json_string_value(json_array_get(ig, 1)), "model.layers.0.mlp.gate"));
    json_decref(root);
  }
  RESET(), o.format = MQ_QFORMAT_GPTQ_V2;
  if (!quant(srcr, DST("gptq-router"), &o, &err)) {
    root = load_cfg(dst, &qc);
    CHECK(json_object_get(json_object_get(qc, "dynamic"), "-:model\\.layers\\.1\\.mlp\\.gate$") !=
          NULL);
    json_decref(root);
  }
  /* errors: each refused before anything is written */
  struct {
    mq_qformat f;
    int bits, gs, desc;
    mq_qpacking pack;
    int nlb;
    int rc;
    const char *msg;
  } bad[] = {
      {MQ_QFORMAT_AWQ, 8, 0, 0, 0, 0, MQ_ERR_UNSUPPORTED, "4-bit"},
      {MQ_QFORMAT_AWQ, 0, 0, 0, 0, 1, MQ_ERR_UNSUPPORTED, "cannot mix"},
      {MQ_QFORMAT_GPTQ, 0, 96, 0, 0, 0, MQ_ERR_ARG, "does not divide"},
      {MQ_QFORMAT_AWQ, 0, 0, 1, 0, 0, MQ_ERR_ARG, "act-order"},
      {MQ_QFORMAT_GPTQ, 5, 0, 0, 0, 0, MQ_ERR_UNSUPPORTED, "bits"},
      {MQ_QFORMAT_AUTOROUND, 0, 0, 1, 0, 0, MQ_ERR_ARG, "g_idx"},
      {MQ_QFORMAT_GPTQ, 0, 0, 0, MQ_QPACKING_AUTO_AWQ, 0, MQ_ERR_ARG, "packing"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    RESET(), o.format = bad[i].f, o.bits = bad[i].bits, o.group_size = bad[i].gs,
             o.desc_act = bad[i].desc;
    o.packing = bad[i].pack, o.layer_bits = lbd, o.n_layer_bits = bad[i].nlb;
    o.src = src, o.dst = DST("bad");
    int rc = mq_quantize_checkpoint(&o, &err);
    CHECK_MSG(rc == bad[i].rc && strstr(err.msg, bad[i].msg) && !file_exists(tmp, "bad"),
              "bad case %zu: rc %d '%s'", i, rc, err.msg);
  }
  RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = src, o.dst = src;
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_ARG && strstr(err.msg, "differ"));
  const char *badre[] = {"model.(layers"};
  RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = src, o.dst = DST("bad"), o.ignore = badre,
           o.n_ignore = 1;
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_ARG && strstr(err.msg, "regex"));
#undef DST
#undef RESET
  rm_tree(tmp);
}

int main(void) {
  test_vectors();
  test_hand();
  test_v1();
  test_roundtrip();
  test_rtn();
  test_actorder();
  test_end_to_end();
  return mqt_report("test_pack");
}
