/* GPTQ adapter (formats.md §2; also AutoRound's GPTQ packings §3): qweight
 * I32 [K*b/32, N] packed along the input dim, qzeros I32 [G, N*b/32] packed
 * along the output dim, scales [G, N], optional g_idx [K]. v1 checkpoints
 * store zeros minus one: word-level for 2/4/8 bits (add 0x55.., 0x11..,
 * 0x01.. with carry, as GPTQModel converts v1 to v2), per field for 3 bits. */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "quant/adapt.h"

static const mq_dtype k_i32[] = {MQ_DTYPE_I32, MQ_DTYPE_U32, MQ_DTYPE_INVALID};
static const mq_dtype k_scale[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32, MQ_DTYPE_INVALID};

/* Field i of a run of b-bit values packed into 32-bit words of tensor t:
 * element e of the run starting at word index base, stride between
 * consecutive words of the run. 3-bit fields form a 96-bit little-endian
 * stream per 32 values and may straddle two words. */
static inline unsigned field(const mq_tensor *t, uint64_t base, uint64_t stride, int b, int e) {
  int p = b * e, wi = p / 32, sh = p % 32;
  uint64_t v = mq_adapt_word_at(t, base + (uint64_t)wi * stride) >> sh;
  if (sh + b > 32)
    v |= (uint64_t)mq_adapt_word_at(t, base + (uint64_t)(wi + 1) * stride) << (32 - sh);
  return (unsigned)(v & ((1u << b) - 1));
}

int mq_adapt_gptq(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                  mq_linear *l, mq_err *err) {
  int b = s->bits, gs = s->group_size <= 0 ? K : s->group_size, rc;
  /* values per 32-bit word, or 32 values per 3 words for 3-bit */
  int vals = b == 3 ? 32 : 32 / b, words = b == 3 ? 3 : 1;
  if (K % vals || N % vals)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "layer %s (GPTQ %d-bit): input size %d and output size %d must be multiples of %d",
                   name, b, K, N, vals);
  int G = (K + gs - 1) / gs;
  const mq_tensor *qw, *qz, *sc, *gi;
  if ((rc = mq_adapt_tensor(m, name, s, "qweight", k_i32, 2, (int64_t)K / vals * words, N, 0, &qw, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "qzeros", k_i32, 2, G, (int64_t)N / vals * words, s->sym, &qz, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "scales", k_scale, 2, G, N, 0, &sc, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "g_idx", k_i32, 1, K, -1, !s->g_idx, &gi, err)))
    return rc;
  mq_codes codes = b == 8 ? MQ_CODES_U8 : MQ_CODES_U4;
  if ((rc = mq_adapt_alloc(m, name, l, N, K, b, gs, codes, 1, NULL, err))) return rc;
  int32_t *perm = NULL;
  if (gi && (rc = mq_adapt_perm(m, name, gi, K, gs, G, &perm, err))) return rc;
  l->q.perm = perm;
  /* codes: column j of the canonical matrix is input channel perm[j] */
  if (codes == MQ_CODES_U4 && b == 4 && !perm) {
    /* a 4-bit word holds input channels 8r..8r+7 of one output, low nibble
     * first: exactly 4 bytes of that row of the [N, K/2] codes. So the codes
     * are qweight's 32-bit words transposed, done in bands of RB word rows
     * (one 64-byte piece of each codes row per band). */
    enum { RB = 16 };
    uint8_t *dst = (uint8_t *)l->q.data;
    int R = K / 8;
    for (int r0 = 0; r0 < R; r0 += RB) {
      int nr = R - r0 < RB ? R - r0 : RB;
      for (int n = 0; n < N; n++)
        for (int r = r0; r < r0 + nr; r++) /* the word's little-endian bytes */
          memcpy(dst + (size_t)n * (K / 2) + 4 * (size_t)r, qw->data + 4 * ((size_t)r * N + n), 4);
    }
  } else if (codes == MQ_CODES_U4) { /* two columns at a time: whole bytes of the [N, K/2] codes */
    uint8_t *dst = (uint8_t *)l->q.data;
    for (int j = 0; j < K; j += 2) {
      int k0 = perm ? perm[j] : j, k1 = perm ? perm[j + 1] : j + 1;
      uint64_t b0 = (uint64_t)(k0 / vals) * words * N, b1 = (uint64_t)(k1 / vals) * words * N;
      for (int n = 0; n < N; n++)
        dst[(size_t)n * (K / 2) + j / 2] =
            (uint8_t)(field(qw, b0 + (uint64_t)n, (uint64_t)N, b, k0 % vals) |
                      field(qw, b1 + (uint64_t)n, (uint64_t)N, b, k1 % vals) << 4);
    }
  } else {
    for (int j = 0; j < K; j++) {
      int k = perm ? perm[j] : j;
      uint64_t base = (uint64_t)(k / vals) * words * N;
      for (int n = 0; n < N; n++) mq_adapt_put(l, n, j, field(qw, base + (uint64_t)n, (uint64_t)N, b, k % vals));
    }
  }
  static const uint32_t k_v1_add[9] = {0, 0, 0x55555555u, 0, 0x11111111u, 0, 0, 0, 0x01010101u};
  float *scales = (float *)l->q.scales, *mins = (float *)l->q.mins;
  unsigned mask = (1u << b) - 1;
  for (int g = 0; g < G; g++)
    for (int n = 0; n < N; n++) {
      unsigned z = 1u << (b - 1); /* symmetric without qzeros */
      if (qz) {
        int c = n / vals, e = n % vals;
        uint64_t base = (uint64_t)g * (N / vals * words) + (uint64_t)c * words;
        if (s->gptq_v1 && b != 3) {
          uint32_t w = mq_adapt_word_at(qz, base) + k_v1_add[b];
          z = (w >> (b * e)) & mask;
        } else {
          z = field(qz, base, 1, b, e);
          if (s->gptq_v1) z = (z + 1) & mask;
        }
      }
      float sv = mq_adapt_float_at(sc, (uint64_t)g * N + n);
      scales[(size_t)n * G + g] = sv;
      mins[(size_t)n * G + g] = -(float)z * sv;
    }
  return mq_adapt_bias(m, name, N, &l->bias, err);
}
