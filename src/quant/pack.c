/* Bit packers of AWQ GEMM, GPTQ and compressed-tensors (see pack.h). All the
 * sequential layouts are one little-endian bit-stream per packed line: value
 * i at stream bit pos(i), word pos/32, shift pos%32, spilling into the next
 * word when it straddles (GPTQ 3-bit, CT dense). */
#include "quant/pack.h"

#include <string.h>

/* OR bits-wide val into the stream held by words[0], words[stride], ... */
static void put_bits(uint32_t *words, int64_t stride, int64_t pos, uint32_t val, int bits) {
  int64_t wi = pos >> 5;
  int sh = (int)(pos & 31);
  words[wi * stride] |= val << sh;
  if (sh + bits > 32) words[(wi + 1) * stride] |= val >> (32 - sh);
}

static uint32_t get_bits(const uint32_t *words, int64_t pos, int bits) {
  int64_t wi = pos >> 5;
  int sh = (int)(pos & 31);
  uint64_t v = words[wi] >> sh;
  if (sh + bits > 32) v |= (uint64_t)words[wi + 1] << (32 - sh);
  return (uint32_t)v & ((1u << bits) - 1);
}

void mq_pack_awq(const uint8_t *v, int64_t rows, int64_t cols, uint32_t *out) {
  /* logical column 8c+j sits at nibble REV[j]: the inverse of ORDER */
  static const int rev[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  int64_t wpr = cols / 8;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < wpr; c++) {
      uint32_t w = 0;
      for (int j = 0; j < 8; j++) w |= (uint32_t)(v[r * cols + 8 * c + j] & 0xF) << (4 * rev[j]);
      out[r * wpr + c] = w;
    }
}

int64_t mq_pack_gptq_words(int64_t n, int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) return -1;
  if (n < 0 || n % (bits == 3 ? 32 : 32 / bits) != 0) return -1;
  return n * bits / 32;
}

int mq_pack_gptq_rows(const uint8_t *v, int64_t rows, int64_t cols, int bits, uint32_t *out) {
  int64_t nw = mq_pack_gptq_words(rows, bits);
  if (nw < 0) return -1;
  uint32_t mask = (1u << bits) - 1;
  memset(out, 0, (size_t)(nw * cols) * sizeof *out);
  for (int64_t k = 0; k < rows; k++)
    for (int64_t n = 0; n < cols; n++)
      put_bits(out + n, cols, k * bits, v[k * cols + n] & mask, bits);
  return 0;
}

int mq_pack_gptq_cols(const uint8_t *v, int64_t rows, int64_t cols, int bits, uint32_t *out) {
  int64_t nw = mq_pack_gptq_words(cols, bits);
  if (nw < 0) return -1;
  uint32_t mask = (1u << bits) - 1;
  memset(out, 0, (size_t)(nw * rows) * sizeof *out);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t n = 0; n < cols; n++)
      put_bits(out + r * nw, 1, n * bits, v[r * cols + n] & mask, bits);
  return 0;
}

/* 3-bit: every 3 words are 32 self-contained fields; shift each by delta. */
static void shift_fields3(uint32_t *w, int64_t n, int delta) {
  for (int64_t c = 0; c + 3 <= n; c += 3) {
    uint32_t f[32];
    for (int j = 0; j < 32; j++) f[j] = (get_bits(w + c, 3 * j, 3) + (uint32_t)delta) & 7u;
    w[c] = w[c + 1] = w[c + 2] = 0;
    for (int j = 0; j < 32; j++) put_bits(w + c, 1, 3 * j, f[j], 3);
  }
}

static uint32_t v1_const(int bits) {
  return bits == 2 ? 0x55555555u : bits == 4 ? 0x11111111u : 0x01010101u;
}

void mq_pack_gptq_zeros_to_v1(uint32_t *w, int64_t n, int bits) {
  if (bits == 3) {
    shift_fields3(w, n, -1);
    return;
  }
  uint32_t c = v1_const(bits);
  for (int64_t i = 0; i < n; i++) w[i] -= c; /* unsigned: wraps mod 2^32, borrows inside the word */
}

void mq_pack_gptq_zeros_from_v1(uint32_t *w, int64_t n, int bits) {
  if (bits == 3) {
    shift_fields3(w, n, 1);
    return;
  }
  uint32_t c = v1_const(bits);
  for (int64_t i = 0; i < n; i++) w[i] += c;
}

int64_t mq_pack_ct_words(int64_t n, int bits, int dense) {
  if (dense) return (n * bits + 31) / 32;
  int64_t pf = 32 / bits;
  return (n + pf - 1) / pf;
}

/* Stream bit position of value i in a CT line. */
static int64_t ct_pos(int64_t i, int bits, int dense) {
  if (dense) return i * bits;
  int64_t pf = 32 / bits;
  return (i / pf) * 32 + (i % pf) * bits;
}

void mq_pack_ct(const uint8_t *v, int64_t rows, int64_t cols, int bits, int dense, uint32_t *out) {
  int64_t nw = mq_pack_ct_words(cols, bits, dense);
  uint32_t mask = (1u << bits) - 1;
  memset(out, 0, (size_t)(nw * rows) * sizeof *out);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < cols; i++)
      put_bits(out + r * nw, 1, ct_pos(i, bits, dense), v[r * cols + i] & mask, bits);
}

void mq_pack_ct_dim0(const uint8_t *v, int64_t rows, int64_t cols, int bits, int dense,
                     uint32_t *out) {
  int64_t nw = mq_pack_ct_words(rows, bits, dense);
  uint32_t mask = (1u << bits) - 1;
  memset(out, 0, (size_t)(nw * cols) * sizeof *out);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t g = 0; g < cols; g++)
      put_bits(out + g, cols, ct_pos(r, bits, dense), v[r * cols + g] & mask, bits);
}
