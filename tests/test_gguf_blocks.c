/* GGUF block kernels: dequantization of every supported type against values
 * computed here from the block definitions (specs/formats.md §5.3-5.4:
 * blocks packed by this file's own writers from chosen codes and scales,
 * including zero, negative, subnormal and largest scales and all-min /
 * all-max / all-ones codes); the activation quantizers (rounding rules,
 * round trip within half a step); each dot product against the dot product
 * of the dequantized operands; and the real stories260K Q8_0 / Q4_0 files
 * against their F32 original (requantized byte for byte, dequantized within
 * the quantization step). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "io/gguf.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"
#include "test.h"

#define MAXB 292 /* largest block, bytes */

/* An independent copy of the IQ4_NL codebook (ggml-common.h kvalues_iq4nl). */
static const int k_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

/* ---- codes and scales ---- */

enum { PAT_RANDOM, PAT_MIN, PAT_MAX, PAT_ONES, PAT_ALT, N_PAT };
static const char *const k_pat_names[N_PAT] = {"random", "all-min", "all-max", "all-ones",
                                               "alternating"};

static int rand_in(int lo, int hi) { return lo + (int)(mqt_rand() % (uint64_t)(hi - lo + 1)); }

static void fill(int *v, int n, int lo, int hi, int pat) {
  for (int i = 0; i < n; i++) {
    switch (pat) {
    case PAT_RANDOM: v[i] = rand_in(lo, hi); break;
    case PAT_MIN: v[i] = lo; break;
    case PAT_MAX: v[i] = hi; break;
    case PAT_ONES: v[i] = 1 < lo ? lo : 1 > hi ? hi : 1; break;
    default: v[i] = i % 2 ? hi : lo;
    }
  }
}

/* f16 super-scales to try: ordinary, negative, zero, largest, smallest
 * normal, smallest subnormal, negative largest. */
enum { N_SCALES = 8 };
static uint16_t scale_bits(int k) {
  switch (k) {
  case 0: return mq_f32_to_f16(mqt_randf(0.001f, 0.5f));
  case 1: return mq_f32_to_f16(-mqt_randf(0.001f, 0.5f));
  case 2: return 0x0000;
  case 3: return 0x7BFF;  /* 65504 */
  case 4: return 0x0400;  /* 2^-14 */
  case 5: return 0x0001;  /* 2^-24 */
  case 6: return 0xFBFF;  /* -65504 */
  default: return 0x8000; /* -0 */
  }
}

/* ---- block writers (the inverse of each definition) and expected values ---- */

typedef struct {
  uint32_t type;
  int blck, size;
} tinfo;

/* Build one block of `type` from codes in pattern pat and scales k;
 * expected[] gets the values the definition gives. */
static void make_block(uint32_t type, int pat, int k, uint8_t *b, float *y) {
  int q[256], s[16], m[16];
  uint16_t dh = scale_bits(k), mh = scale_bits((k + 1) % N_SCALES);
  float d = mq_f16_to_f32(dh), dm = mq_f16_to_f32(mh);
  memset(b, 0, MAXB);
  switch (type) {
  case MQ_GGML_TYPE_Q4_0:
  case MQ_GGML_TYPE_Q4_1:
  case MQ_GGML_TYPE_IQ4_NL: {
    fill(q, 32, 0, 15, pat);
    int off = type == MQ_GGML_TYPE_Q4_1 ? 4 : 2;
    put16(b, dh);
    if (type == MQ_GGML_TYPE_Q4_1) put16(b + 2, mh);
    for (int j = 0; j < 16; j++) b[off + j] = (uint8_t)(q[j] | q[j + 16] << 4);
    for (int j = 0; j < 32; j++)
      y[j] = type == MQ_GGML_TYPE_Q4_0   ? (float)(q[j] - 8) * d
             : type == MQ_GGML_TYPE_Q4_1 ? (float)q[j] * d + dm
                                         : d * (float)k_iq4nl[q[j]];
    break;
  }
  case MQ_GGML_TYPE_Q5_0:
  case MQ_GGML_TYPE_Q5_1: {
    fill(q, 32, 0, 31, pat);
    int one = type == MQ_GGML_TYPE_Q5_1, qh = one ? 4 : 2, qs = qh + 4;
    put16(b, dh);
    if (one) put16(b + 2, mh);
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j;
    for (int i = 0; i < 4; i++) b[qh + i] = (uint8_t)(h >> (8 * i));
    for (int j = 0; j < 16; j++) b[qs + j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    for (int j = 0; j < 32; j++) y[j] = one ? (float)q[j] * d + dm : (float)(q[j] - 16) * d;
    break;
  }
  case MQ_GGML_TYPE_Q8_0:
    fill(q, 32, -128, 127, pat);
    put16(b, dh);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)q[j], y[j] = (float)q[j] * d;
    break;
  case MQ_GGML_TYPE_Q2_K:
    fill(q, 256, 0, 3, pat);
    fill(s, 16, 0, 15, (pat + 1) % N_PAT);
    fill(m, 16, 0, 15, (pat + 2) % N_PAT);
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)(s[i] | m[i] << 4);
    for (int e = 0; e < 256; e++) { /* e = 128h + 32j + l: 2 bits at 2j of qs[32h + l] */
      int h = e / 128, j = e % 128 / 32, l = e % 32;
      b[16 + 32 * h + l] |= (uint8_t)(q[e] << (2 * j));
    }
    put16(b + 80, dh), put16(b + 82, mh);
    for (int e = 0; e < 256; e++) y[e] = d * (float)s[e / 16] * (float)q[e] - dm * (float)m[e / 16];
    break;
  case MQ_GGML_TYPE_Q3_K:
    fill(q, 256, -4, 3, pat);
    fill(s, 16, -32, 31, (pat + 1) % N_PAT);
    for (int e = 0; e < 256; e++) {
      int h = e / 128, j = e % 128 / 32, l = e % 32, v = q[e] + 4;
      b[32 + 32 * h + l] |= (uint8_t)((v & 3) << (2 * j));
      if (v >> 2) b[l] |= (uint8_t)(1 << (4 * h + j)); /* hmask: set = no -4 */
    }
    for (int i = 0; i < 16; i++) {
      int u = s[i] + 32;
      if (i < 8)
        b[96 + i] |= (uint8_t)(u & 15);
      else
        b[96 + i - 8] |= (uint8_t)((u & 15) << 4);
      b[96 + 8 + i % 4] |= (uint8_t)((u >> 4) << (2 * (i / 4)));
    }
    put16(b + 108, dh);
    for (int e = 0; e < 256; e++) y[e] = d * (float)s[e / 16] * (float)q[e];
    break;
  case MQ_GGML_TYPE_Q4_K:
  case MQ_GGML_TYPE_Q5_K: {
    int five = type == MQ_GGML_TYPE_Q5_K, qs = five ? 48 : 16;
    fill(q, 256, 0, five ? 31 : 15, pat);
    fill(s, 8, 0, 63, (pat + 1) % N_PAT);
    fill(m, 8, 0, 63, (pat + 3) % N_PAT);
    put16(b, dh), put16(b + 2, mh);
    for (int j = 0; j < 4; j++) { /* inverse of get_scale_min_k4 */
      b[4 + j] = (uint8_t)((s[j] & 63) | (s[j + 4] >> 4) << 6);
      b[4 + j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
      b[4 + j + 8] = (uint8_t)((s[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) {
        int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        b[qs + 32 * c + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
        if (five) b[16 + l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    for (int e = 0; e < 256; e++) y[e] = d * (float)s[e / 32] * (float)q[e] - dm * (float)m[e / 32];
    break;
  }
  case MQ_GGML_TYPE_Q6_K:
    fill(q, 256, -32, 31, pat);
    fill(s, 16, -128, 127, (pat + 1) % N_PAT);
    for (int e = 0; e < 256; e++) { /* e = 128h + 32t + l */
      int h = e / 128, t = e % 128 / 32, l = e % 32, u = q[e] + 32;
      int qli = 64 * h + l + (t & 1) * 32;
      b[qli] |= (uint8_t)((u & 15) << (t >= 2 ? 4 : 0));
      b[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * t));
    }
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)s[i];
    put16(b + 208, dh);
    for (int e = 0; e < 256; e++) y[e] = d * (float)s[e / 16] * (float)q[e];
    break;
  case MQ_GGML_TYPE_Q8_K: {
    fill(q, 256, -128, 127, pat);
    float df = k == 3 ? 3.0e38f : k == 5 ? 1e-45f : d * 1.25f;
    uint32_t u = mq_f32_to_bits(df);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
    for (int e = 0; e < 256; e++) b[4 + e] = (uint8_t)(int8_t)q[e], y[e] = df * (float)q[e];
    break;
  }
  case MQ_GGML_TYPE_IQ4_XS: {
    fill(q, 256, 0, 15, pat);
    fill(s, 8, -32, 31, (pat + 1) % N_PAT);
    put16(b, dh);
    uint16_t sh = 0;
    for (int ib = 0; ib < 8; ib++) {
      int u = s[ib] + 32;
      b[4 + ib / 2] |= (uint8_t)((u & 15) << (4 * (ib % 2)));
      sh |= (uint16_t)((u >> 4) << (2 * ib));
      for (int j = 0; j < 16; j++)
        b[8 + 16 * ib + j] = (uint8_t)(q[32 * ib + j] | q[32 * ib + 16 + j] << 4);
    }
    put16(b + 2, sh);
    for (int e = 0; e < 256; e++) y[e] = d * (float)s[e / 32] * (float)k_iq4nl[q[e]];
    break;
  }
  case MQ_GGML_TYPE_F32: {
    float v = pat == PAT_RANDOM ? mqt_randf(-3, 3) : k == 3 ? 3.4e38f : k == 5 ? -1e-45f : d;
    uint32_t u = mq_f32_to_bits(v);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
    y[0] = v;
    break;
  }
  case MQ_GGML_TYPE_F16: put16(b, dh), y[0] = d; break;
  case MQ_GGML_TYPE_BF16: {
    uint16_t v = pat == PAT_RANDOM ? mq_f32_to_bf16(mqt_randf(-3, 3)) : dh;
    put16(b, v), y[0] = mq_bits_to_f32((uint32_t)v << 16);
    break;
  }
  }
}

static const uint32_t k_supported[] = {MQ_GGML_TYPE_F32,  MQ_GGML_TYPE_F16,    MQ_GGML_TYPE_BF16,
                                       MQ_GGML_TYPE_Q4_0, MQ_GGML_TYPE_Q4_1,   MQ_GGML_TYPE_Q5_0,
                                       MQ_GGML_TYPE_Q5_1, MQ_GGML_TYPE_Q8_0,   MQ_GGML_TYPE_Q2_K,
                                       MQ_GGML_TYPE_Q3_K, MQ_GGML_TYPE_Q4_K,   MQ_GGML_TYPE_Q5_K,
                                       MQ_GGML_TYPE_Q6_K, MQ_GGML_TYPE_IQ4_NL, MQ_GGML_TYPE_IQ4_XS};
#define N_SUP ((int)(sizeof k_supported / sizeof k_supported[0]))

static int same_float(float a, float b) { return a == b || (a != a && b != b); }

static void test_dequant_hand_blocks(void) {
  uint32_t types[N_SUP + 1];
  memcpy(types, k_supported, sizeof k_supported);
  types[N_SUP] = MQ_GGML_TYPE_Q8_K; /* dequantizable too (activations) */
  for (int t = 0; t < N_SUP + 1; t++) {
    const mq_ggml_type_info *ti = mq_ggml_type_get(types[t]);
    int bad = 0, cases = 0;
    for (int pat = 0; pat < N_PAT; pat++)
      for (int k = 0; k < N_SCALES; k++)
        for (int rep = 0; rep < (pat == PAT_RANDOM ? 20 : 1); rep++) {
          /* a row of 3 blocks, the middle one under test */
          uint8_t row[3 * MAXB];
          float want[3 * 256], got[3 * 256];
          for (int bl = 0; bl < 3; bl++)
            make_block(types[t], bl == 1 ? pat : PAT_RANDOM, bl == 1 ? k : 0,
                       row + bl * ti->type_size, want + bl * ti->blck);
          memset(got, 0xFF, sizeof got);
          int rc = mq_gguf_dequant_row(types[t], row, got, 3 * ti->blck);
          cases++;
          if (rc != MQ_OK) {
            bad++;
            continue;
          }
          for (int e = 0; e < 3 * ti->blck; e++)
            if (!same_float(got[e], want[e])) {
              if (bad++ < 3)
                fprintf(stderr, "%s %s scale %d: element %d: %.9g, expected %.9g\n", ti->name,
                        k_pat_names[pat], k, e, got[e], want[e]);
            }
        }
    CHECK_MSG(bad == 0, "%s: %d mismatches in %d rows", ti->name, bad, cases);
  }
  /* formats.md §8 T9: Q4_0 with d = 1 */
  static const uint8_t t9[18] = {0x00, 0x3c, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96,
                                 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};
  float y[32];
  CHECK(mq_gguf_dequant_row(MQ_GGML_TYPE_Q4_0, t9, y, 32) == MQ_OK);
  int ok = 1;
  for (int j = 0; j < 16; j++) ok &= y[j] == (float)(j - 8) && y[16 + j] == (float)(7 - j);
  CHECK_MSG(ok, "T9 vector");
  /* argument checks */
  CHECK(mq_gguf_dequant_row(MQ_GGML_TYPE_Q4_0, t9, y, 31) == MQ_ERR_ARG);
  CHECK(mq_gguf_dequant_row(MQ_GGML_TYPE_IQ2_XXS, t9, y, 256) == MQ_ERR_UNSUPPORTED);
  CHECK(mq_gguf_dequant_row(4, t9, y, 32) == MQ_ERR_UNSUPPORTED);
  CHECK(mq_gguf_dequant_row(MQ_GGML_TYPE_Q4_0, t9, y, 0) == MQ_OK);
}

/* F16 and BF16: every bit pattern against the IEEE definitions. */
static void test_half_exhaustive(void) {
  int bad = 0;
  for (uint32_t u = 0; u < 65536; u++) {
    uint8_t b[2] = {(uint8_t)u, (uint8_t)(u >> 8)};
    float h, bf;
    mq_gguf_dequant_row(MQ_GGML_TYPE_F16, b, &h, 1);
    mq_gguf_dequant_row(MQ_GGML_TYPE_BF16, b, &bf, 1);
    int e = (int)(u >> 10) & 31, man = (int)(u & 1023);
    double want = e == 0    ? ldexp(man, -24)
                  : e == 31 ? (man ? NAN : INFINITY)
                            : ldexp(1024 + man, e - 25);
    if (u & 0x8000) want = -want;
    if (!same_float(h, (float)want)) bad++;
    uint32_t bits = u << 16;
    float wbf;
    memcpy(&wbf, &bits, 4);
    if (!same_float(bf, wbf) || (bf == 0 && signbit(bf) != signbit(wbf))) bad++;
  }
  CHECK_MSG(bad == 0, "f16/bf16 decoding: %d mismatches", bad);
}

/* Independent decoding of two K-quant scale packings, checked on every byte
 * value in every position: Q3_K's 6-bit signed scales and get_scale_min_k4. */
static void test_scale_packing(void) {
  int bad = 0;
  for (int trial = 0; trial < 2000; trial++) {
    uint8_t b[MAXB] = {0};
    for (int i = 0; i < 110; i++) b[i] = (uint8_t)(mqt_rand() >> 56);
    for (int i = 0; i < 32; i++) b[i] = 0xFF;  /* hmask set: codes are the 2 low bits */
    for (int i = 32; i < 96; i++) b[i] = 0x55; /* every 2-bit code = 1 */
    put16(b + 108, 0x3C00);                    /* d = 1: y = scale */
    float y[256];
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q3_K, b, y, 256);
    for (int sidx = 0; sidx < 16; sidx++) {
      /* bits of scale sidx: low 4 bits in byte sidx%8 (low nibble for
       * sidx < 8, high for sidx >= 8), high 2 bits in byte 8 + sidx%4 at 2*(sidx/4) */
      int lo = (b[96 + sidx % 8] >> (sidx < 8 ? 0 : 4)) & 15;
      int hi = (b[104 + sidx % 4] >> (2 * (sidx / 4))) & 3;
      if (y[16 * sidx] != (float)((lo | hi << 4) - 32)) bad++;
    }
  }
  CHECK_MSG(bad == 0, "Q3_K scale unpacking: %d mismatches", bad);

  /* The same scales as ggml's vec_dot code unpacks them, 32-bit words at a
   * time (masks 0x0f0f0f0f / 0x03030303 / 0x3f3f3f3f), against the
   * per-scale definitions the dequantizers use: Q3_K and Q4_K. */
  bad = 0;
  for (int trial = 0; trial < 2000; trial++) {
    uint8_t sb[12];
    for (int i = 0; i < 12; i++) sb[i] = (uint8_t)(mqt_rand() >> 56);
    uint32_t w0 = 0, w1 = 0, w2 = 0;
    for (int i = 0; i < 4; i++)
      w0 |= (uint32_t)sb[i] << (8 * i), w1 |= (uint32_t)sb[4 + i] << (8 * i),
          w2 |= (uint32_t)sb[8 + i] << (8 * i);
    uint32_t q3w[4] = {(w0 & 0x0f0f0f0fu) | (w2 & 0x03030303u) << 4,
                       (w1 & 0x0f0f0f0fu) | ((w2 >> 2) & 0x03030303u) << 4,
                       ((w0 >> 4) & 0x0f0f0f0fu) | ((w2 >> 4) & 0x03030303u) << 4,
                       ((w1 >> 4) & 0x0f0f0f0fu) | ((w2 >> 6) & 0x03030303u) << 4};
    uint32_t k4sc[2] = {w0 & 0x3f3f3f3fu, (w2 & 0x0f0f0f0fu) | ((w0 >> 6) & 0x03030303u) << 4};
    uint32_t k4mn[2] = {w1 & 0x3f3f3f3fu, ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 6) & 0x03030303u)
                                                                          << 4};
    uint8_t b[MAXB] = {0};
    float y[256];
    memset(b, 0xFF, 32), memset(b + 32, 0x55, 64), memcpy(b + 96, sb, 12), put16(b + 108, 0x3C00);
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q3_K, b, y, 256);
    for (int i = 0; i < 16; i++)
      if (y[16 * i] != (float)((int)((q3w[i / 4] >> (8 * (i % 4))) & 0xFF) - 32)) bad++;
    memset(b, 0, sizeof b);
    memcpy(b + 4, sb, 12), memset(b + 16, 0x11, 128); /* every nibble 1 */
    put16(b, 0x3C00);                                 /* d = 1, dmin = 0: y = scale */
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q4_K, b, y, 256);
    for (int i = 0; i < 8; i++)
      if (y[32 * i] != (float)((k4sc[i / 4] >> (8 * (i % 4))) & 0xFF)) bad++;
    put16(b, 0), put16(b + 2, 0x3C00); /* d = 0, dmin = 1: y = -min */
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q4_K, b, y, 256);
    for (int i = 0; i < 8; i++)
      if (y[32 * i] != -(float)((k4mn[i / 4] >> (8 * (i % 4))) & 0xFF)) bad++;
  }
  CHECK_MSG(bad == 0, "word-wise scale unpacking disagrees with the definitions: %d", bad);
}

/* ---- activation quantizers ---- */

static void test_q8_quantizers(void) {
  /* rounding rules at exact ties: amax = 127 makes d = 1 and id = 1 */
  float x[256];
  for (int i = 0; i < 256; i++) x[i] = 0;
  x[0] = 127, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = 3.5f, x[5] = -0.5f;
  uint8_t q0[34 * 8], q1[36 * 8], qk[292];
  mq_gguf_quantize_row_q8_0(x, q0, 32);
  CHECK(q0[0] == 0x00 && q0[1] == 0x3C); /* d = 1.0 */
  CHECK((int8_t)q0[3] == 3 && (int8_t)q0[4] == -3 && (int8_t)q0[5] == 1 && (int8_t)q0[6] == 4 &&
        (int8_t)q0[7] == -1); /* roundf: ties away from zero */
  mq_gguf_quantize_row_q8_0_x86(x, q0, 32);
  CHECK((int8_t)q0[3] == 2 && (int8_t)q0[4] == -2 && (int8_t)q0[5] == 0 && (int8_t)q0[6] == 4 &&
        (int8_t)q0[7] == 0); /* x86 SIMD: ties to even */
  mq_gguf_quantize_row_q8_1(x, q1, 32);
  CHECK((int8_t)q1[5] == 3 && (int8_t)q1[6] == -3 &&
        mq_f16_to_f32((uint16_t)(q1[2] | q1[3] << 8)) == 127 + 3 - 3 + 1 + 4 - 1);
  mq_gguf_quantize_row_q8_1_x86(x, q1, 32);
  CHECK((int8_t)q1[5] == 2 && mq_f16_to_f32((uint16_t)(q1[2] | q1[3] << 8)) == 127 + 2 - 2 + 4);
  /* q8_K: max = +127 gives iscale = -1, d = -1 and q = nearest_int(-x), ties to even */
  mq_gguf_quantize_row_q8_K(x, qk, 256);
  float dk;
  memcpy(&dk, qk, 4);
  CHECK(dk == -1.0f);
  CHECK((int8_t)qk[4] == -127 && (int8_t)qk[5] == -2 && (int8_t)qk[6] == 2 && (int8_t)qk[7] == 0 &&
        (int8_t)qk[8] == -4 && (int8_t)qk[9] == 0);
  /* an all-zero block */
  {
    float z[256] = {0};
    memset(qk, 0x5A, sizeof qk);
    mq_gguf_quantize_row_q8_K(z, qk, 256);
    int zero = 1;
    for (int i = 0; i < 292; i++) zero &= qk[i] == 0;
    CHECK_MSG(zero, "q8_K of zeros is not all zero");
    mq_gguf_quantize_row_q8_0(z, q0, 32);
    zero = 1;
    for (int i = 0; i < 34; i++) zero &= q0[i] == 0;
    CHECK(zero);
  }

  /* round trip of random data within half a step; 8 blocks of 32, one of 256 */
  int bad0 = 0, bad1 = 0, badk = 0;
  for (int trial = 0; trial < 400; trial++) {
    float v[256], y[256];
    float scale = trial % 4 == 0 ? 1e-3f : trial % 4 == 1 ? 1e3f : 1.0f;
    for (int i = 0; i < 256; i++) v[i] = mqt_randf(-1, 1) * scale;
    if (trial % 5 == 0) v[trial % 256] = -4 * scale; /* a negative extreme */
    mq_gguf_quantize_row_q8_0(v, q0, 256);
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q8_0, q0, y, 256);
    for (int b = 0; b < 8; b++) {
      float amax = 0;
      for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[32 * b + j]));
      float d = amax / 127, d16 = mq_f16_to_f32((uint16_t)(q0[34 * b] | q0[34 * b + 1] << 8));
      for (int j = 0; j < 32; j++) {
        float e = fabsf(v[32 * b + j] - y[32 * b + j]);
        if (e > d * 0.5f * (1 + 1e-6f) + 127 * fabsf(d - d16)) bad0++;
      }
    }
    mq_gguf_quantize_row_q8_1(v, q1, 256);
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q8_1, q1, y, 256);
    for (int b = 0; b < 8; b++) {
      float amax = 0;
      int sum = 0;
      for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[32 * b + j]));
      for (int j = 0; j < 32; j++) sum += (int8_t)q1[36 * b + 4 + j];
      float d = amax / 127, d16 = mq_f16_to_f32((uint16_t)(q1[36 * b] | q1[36 * b + 1] << 8));
      if (q1[36 * b + 2] != (uint8_t)mq_f32_to_f16((float)sum * d) ||
          q1[36 * b + 3] != (uint8_t)(mq_f32_to_f16((float)sum * d) >> 8))
        bad1++;
      for (int j = 0; j < 32; j++)
        if (fabsf(v[32 * b + j] - y[32 * b + j]) > d * 0.5f * (1 + 1e-6f) + 127 * fabsf(d - d16))
          bad1++;
    }
    mq_gguf_quantize_row_q8_K(v, qk, 256);
    mq_gguf_dequant_row(MQ_GGML_TYPE_Q8_K, qk, y, 256);
    memcpy(&dk, qk, 4);
    for (int j = 0; j < 256; j++)
      if (fabsf(v[j] - y[j]) > fabsf(dk) * 0.5f * (1 + 1e-5f)) badk++;
    for (int g = 0; g < 16; g++) {
      int sum = 0;
      for (int l = 0; l < 16; l++) sum += (int8_t)qk[4 + 16 * g + l];
      if ((int16_t)(uint16_t)(qk[260 + 2 * g] | qk[261 + 2 * g] << 8) != sum) badk++;
    }
  }
  CHECK_MSG(bad0 == 0, "q8_0 round trip: %d values off by more than half a step", bad0);
  CHECK_MSG(bad1 == 0, "q8_1 round trip / s field: %d failures", bad1);
  CHECK_MSG(badk == 0, "q8_K round trip / bsums: %d failures", badk);
}

/* ---- dot products ---- */

static void test_vec_dot(void) {
  for (int t = 0; t < N_SUP; t++) {
    uint32_t type = k_supported[t];
    const mq_ggml_type_info *ti = mq_ggml_type_get(type);
    int act = mq_gguf_act_type(type);
    CHECK(act >= 0);
    int nblk = ti->blck == 1 ? 300 : 4;
    int n = nblk * ti->blck;
    int worst = 0;
    double worst_rel = 0;
    for (int trial = 0; trial < 60; trial++) {
      uint8_t *w = malloc((size_t)nblk * MAXB);
      float *wd = malloc((size_t)n * sizeof(float)), *a = malloc((size_t)n * sizeof(float));
      float *ad = malloc((size_t)n * sizeof(float)), *scratch = malloc(256 * sizeof(float));
      for (int b = 0; b < nblk; b++) /* random codes; ordinary (or zero, negative) scales */
        make_block(type, trial % 7 == 0 ? rand_in(0, N_PAT - 1) : PAT_RANDOM,
                   trial % 5 == 0 ? rand_in(0, 2) : rand_in(0, 1), w + b * ti->type_size, scratch);
      for (int i = 0; i < n; i++) a[i] = mqt_randf(-2, 2) * (trial % 3 == 0 ? 100.0f : 1.0f);
      int64_t asz = mq_gguf_act_size(type, n);
      CHECK(asz > 0);
      uint8_t *aq = malloc((size_t)asz);
      CHECK(mq_gguf_quantize_act(type, a, aq, n) == MQ_OK);
      CHECK(mq_gguf_dequant_row(type, w, wd, n) == MQ_OK);
      CHECK(mq_gguf_dequant_row((uint32_t)act, aq, ad, n) == MQ_OK);
      double ref = 0, mag = 0;
      for (int i = 0; i < n; i++) {
        ref += (double)wd[i] * ad[i];
        mag += fabs((double)wd[i] * ad[i]);
      }
      if (act == MQ_GGML_TYPE_Q8_1) {
        /* ggml's Q4_1/Q5_1 dot uses the block sum s stored in the Q8_1 block
         * (f16 of d * sum(q), d in f32) for the min term: the defined result
         * is sum (w_i - m) a_i + m * s per block */
        for (int b = 0; b < nblk; b++) {
          float m =
              mq_f16_to_f32((uint16_t)(w[b * ti->type_size + 2] | w[b * ti->type_size + 3] << 8));
          float s = mq_f16_to_f32((uint16_t)(aq[36 * b + 2] | aq[36 * b + 3] << 8));
          double sa = 0;
          for (int j = 0; j < 32; j++) sa += ad[32 * b + j];
          ref += (double)m * s - (double)m * sa;
          mag += fabs((double)m * s);
        }
      }
      float got = mq_gguf_vec_dot(type, n, w, aq);
      double err = fabs((double)got - ref), tol = 1e-5 * mag + 1e-30;
      if (!(err <= tol)) {
        if (worst++ < 3)
          fprintf(stderr, "%s trial %d: dot %.9g, expected %.9g (|w.a| %.3g)\n", ti->name, trial,
                  got, ref, mag);
      }
      if (mag > 0 && err / mag > worst_rel) worst_rel = err / mag;
      free(w), free(wd), free(a), free(ad), free(aq), free(scratch);
    }
    CHECK_MSG(worst == 0, "%s: %d dot products off by more than 1e-5 relative", ti->name, worst);
    printf("vec_dot %-7s (act %s): max error %.2e relative to sum|w*a|\n", ti->name,
           mq_ggml_type_name((uint32_t)act), worst_rel);
  }
  CHECK(mq_gguf_act_type(MQ_GGML_TYPE_IQ2_XXS) == -1 &&
        mq_gguf_act_size(MQ_GGML_TYPE_Q8_K, 256) == -1);
  CHECK(mq_gguf_act_size(MQ_GGML_TYPE_Q4_K, 512) == 584 &&
        mq_gguf_act_size(MQ_GGML_TYPE_F16, 3) == 12);
  CHECK(mq_gguf_act_size(MQ_GGML_TYPE_Q4_0, 33) == -1);
}

/* ---- the real stories260K files ---- */

/* ggml's quantize_row_q4_0_ref, written from its definition: per 32 values,
 * max = the value of largest magnitude (first on ties), d = max / -8,
 * q = min(15, trunc(x/d + 8.5)). */
static void ref_quant_q4_0(const float *x, uint8_t *b) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
  float d = max / -8, id = d != 0 ? 1.0f / d : 0.0f;
  put16(b, mq_f32_to_f16(d));
  for (int j = 0; j < 16; j++) {
    int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + 16] * id + 8.5f);
    b[2 + j] = (uint8_t)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
  }
}

static void check_quantized_file(const char *rel, const mq_gguf_file *f32) {
  char path[1024];
  if (!mqt_shared(rel, path, sizeof path)) {
    printf("SKIP: %s not found\n", rel);
    return;
  }
  mq_gguf_file f;
  mq_err err = {0};
  int rc = mq_gguf_open(path, &f, &err);
  CHECK_MSG(rc == MQ_OK, "%s", err.msg);
  if (rc != MQ_OK) return;
  int rows = 0, bad_bytes = 0, bad_vals = 0, bad_dots = 0;
  double max_step_ratio = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_gguf_tensor *t = &f.tensors[i], *o = mq_gguf_find_tensor(f32, t->name);
    CHECK_MSG(o && o->type == MQ_GGML_TYPE_F32 && o->n_elems == t->n_elems && o->ne[0] == t->ne[0],
              "%s: no matching F32 tensor", t->name);
    if (!o) continue;
    int64_t n = t->ne[0], nrows = (int64_t)t->n_elems / n, rs = mq_ggml_row_size(t->type, n);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    uint8_t *re = malloc((size_t)rs);
    for (int64_t r = 0; r < nrows; r++, rows++) {
      memcpy(x, o->data + 4 * n * r, (size_t)n * 4);
      const uint8_t *row = t->data + rs * r;
      CHECK(mq_gguf_dequant_row(t->type, row, y, n) == MQ_OK);
      /* the quantizer that made the file, run again on the F32 values */
      if (t->type == MQ_GGML_TYPE_Q8_0)
        mq_gguf_quantize_row_q8_0(x, re, n);
      else if (t->type == MQ_GGML_TYPE_Q4_0)
        for (int64_t b = 0; b < n / 32; b++) ref_quant_q4_0(x + 32 * b, re + 18 * b);
      else if (t->type == MQ_GGML_TYPE_F16)
        for (int64_t j = 0; j < n; j++) put16(re + 2 * j, mq_f32_to_f16(x[j]));
      else
        memcpy(re, x, (size_t)rs);
      if (memcmp(re, row, (size_t)rs) != 0) bad_bytes++;
      /* dequantized within the quantization step of the original */
      for (int64_t j = 0; j < n; j++) {
        double tol = 0, step = 0;
        if (t->type == MQ_GGML_TYPE_Q8_0 || t->type == MQ_GGML_TYPE_Q4_0) {
          int64_t b0 = j / 32 * 32;
          float amax = 0;
          for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[b0 + k]));
          const uint8_t *blk = row + (j / 32) * (t->type == MQ_GGML_TYPE_Q8_0 ? 34 : 18);
          double d16 = fabs(mq_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)));
          if (t->type == MQ_GGML_TYPE_Q8_0) {
            double d = amax / 127.0;
            step = d16;
            tol = d / 2 + 127 * fabs(d - d16) + 1e-7 * fabs(x[j]);
          } else { /* one full step where +8 is clamped to +7, else half a step */
            double d = amax / 8.0;
            step = d16;
            tol = d + 8 * fabs(d - d16) + 1e-7 * fabs(x[j]);
          }
        } else if (t->type == MQ_GGML_TYPE_F16) {
          tol = fabs(x[j]) * (1.0 / 2048) + 1e-7;
        }
        double e = fabs((double)x[j] - y[j]);
        if (e > tol) bad_vals++;
        if (step > 0 && e / step > max_step_ratio) max_step_ratio = e / step;
      }
      /* the dot product of this row with real activations (another tensor's
       * row, scaled) against the dequantized operands */
      if (n % 32 == 0 && (r % 7 == 0)) {
        float *a = malloc((size_t)n * sizeof *a), *ad = malloc((size_t)n * sizeof *ad);
        for (int64_t j = 0; j < n; j++) a[j] = x[(j * 5 + 3) % n] * 3.0f - 0.01f * (float)j;
        int64_t asz = mq_gguf_act_size(t->type, n);
        uint8_t *aq = malloc((size_t)asz);
        mq_gguf_quantize_act(t->type, a, aq, n);
        mq_gguf_dequant_row((uint32_t)mq_gguf_act_type(t->type), aq, ad, n);
        double ref = 0, mag = 0;
        for (int64_t j = 0; j < n; j++)
          ref += (double)y[j] * ad[j], mag += fabs((double)y[j] * ad[j]);
        double got = mq_gguf_vec_dot(t->type, n, row, aq);
        if (fabs(got - ref) > 1e-5 * mag + 1e-30) bad_dots++;
        free(a), free(ad), free(aq);
      }
    }
    free(x), free(y), free(re);
  }
  CHECK_MSG(rows > 0, "%s: no rows checked", rel);
  CHECK_MSG(bad_bytes == 0, "%s: %d rows differ from the F32 rows requantized", rel, bad_bytes);
  CHECK_MSG(bad_vals == 0, "%s: %d values outside the quantization step", rel, bad_vals);
  CHECK_MSG(bad_dots == 0, "%s: %d row dot products off", rel, bad_dots);
  printf("%s: %d rows requantized byte for byte; max |dequant - f32| = %.3f steps\n", rel, rows,
         max_step_ratio);
  mq_gguf_close(&f);
}

static void test_stories(void) {
  char path[1024];
  if (!mqt_shared("fixtures/stories260K/gguf/stories260K-f32.gguf", path, sizeof path)) {
    printf("SKIP: stories260K GGUF fixtures not found\n");
    return;
  }
  mq_gguf_file f32;
  mq_err err = {0};
  int rc = mq_gguf_open(path, &f32, &err);
  CHECK_MSG(rc == MQ_OK, "%s", err.msg);
  if (rc != MQ_OK) return;
  check_quantized_file("fixtures/stories260K/gguf/stories260K-Q8_0.gguf", &f32);
  check_quantized_file("fixtures/stories260K/gguf/stories260K-Q4_0.gguf", &f32);
  mq_gguf_close(&f32);
}

int main(void) {
  test_dequant_hand_blocks();
  test_scale_packing();
  test_half_exhaustive();
  test_q8_quantizers();
  test_vec_dot();
  test_stories();
  return mqt_report("test_gguf_blocks");
}
