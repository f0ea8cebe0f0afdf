/* The 8-row interleaved layout of 4-bit A16 weights: repacking, element
 * access and the forward pass (tile kernels in the kernel table). */
#include "kernels/linear_x8.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/numconv.h"
#include "kernels/linear_gguf.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"

#define TILES_PER_TASK 2

int mq_x8_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return l->kind == MQ_W_INT && l->act == MQ_ACT_FLOAT && !q->x8 && q->codes == MQ_CODES_U4 &&
         l->n_in % 32 == 0 && q->group_size % 32 == 0 && l->n_out > 0;
}

static size_t n_tiles(int n_out) { return ((size_t)n_out + 7) / 8; }

size_t mq_x8_code_bytes(int n_out, int n_in) { return n_tiles(n_out) * 4 * (size_t)n_in; }

size_t mq_x8_scale_bytes(int n_out, int n_groups) {
  return n_tiles(n_out) * 8 * (size_t)n_groups * sizeof(float);
}

/* Byte and nibble of row r (in its tile), column k within a tile. */
static inline size_t x8_byte(int r, int k, int *shift) {
  int b = k / 32, i = k % 32;
  *shift = i >= 16 ? 4 : 0;
  return (size_t)b * 128 + (size_t)((i % 16) / 4) * 32 + (size_t)r * 4 + (size_t)(i % 4);
}

unsigned mq_x8_code(const mq_linear *l, int n, int k) {
  int sh;
  size_t off = x8_byte(n % 8, k, &sh);
  const uint8_t *tile = l->q.data + (size_t)(n / 8) * 4 * (size_t)l->n_in;
  return (tile[off] >> sh) & 15;
}

static void repack_groups(const float *src, float *dst, int N, int G) {
  for (size_t t = 0; t < n_tiles(N); t++)
    for (int g = 0; g < G; g++)
      for (int r = 0; r < 8; r++) {
        size_t n = t * 8 + (size_t)r;
        dst[(t * (size_t)G + (size_t)g) * 8 + (size_t)r] = n < (size_t)N ? src[n * (size_t)G + (size_t)g] : 0.0f;
      }
}

void mq_x8_repack(mq_linear *l, uint8_t *codes, float *scales, float *mins) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in;
  size_t row_bytes = (size_t)K / 2;
  memset(codes, 0, mq_x8_code_bytes(N, K));
  for (int n = 0; n < N; n++) {
    const uint8_t *row = q->data + (size_t)n * row_bytes;
    uint8_t *dst = codes + (size_t)(n / 8) * 4 * (size_t)K + (size_t)(n % 8) * 4;
    for (int b = 0; b < K / 32; b++, row += 16, dst += 128) {
      /* row: 16 bytes = columns 0..31 of the block, low nibble first */
      uint8_t c[32];
      for (int i = 0; i < 16; i++) c[2 * i] = row[i] & 15, c[2 * i + 1] = row[i] >> 4;
      for (int ch = 0; ch < 4; ch++)
        for (int j = 0; j < 4; j++) dst[32 * ch + j] = (uint8_t)(c[4 * ch + j] | c[16 + 4 * ch + j] << 4);
    }
  }
  repack_groups(q->scales, scales, N, q->n_groups);
  if (q->mins) repack_groups(q->mins, mins, N, q->n_groups);
  q->data = codes;
  q->scales = scales;
  q->mins = q->mins ? mins : NULL;
  q->x8 = 1;
}

typedef struct {
  const mq_linear *l;
  const float *xg, *gsum;
  const int8_t *xq;
  const float *xd;
  float *y;
  int n_tok;
  const mq_exec *ex;
} x8_job;

static void x8_tiles(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const x8_job *j = ctx;
  const mq_linear *l = j->l;
  const mq_qint *q = &l->q;
  const mq_kernels *k = j->ex->k;
  int N = l->n_out, K = l->n_in, G = q->n_groups, gs = q->group_size;
  size_t t1 = (size_t)end * TILES_PER_TASK;
  if (t1 > n_tiles(N)) t1 = n_tiles(N);
  for (size_t t = (size_t)begin * TILES_PER_TASK; t < t1; t++) {
    const uint8_t *tile = q->data + t * 4 * (size_t)K;
    const float *sc = q->scales + t * (size_t)G * 8;
    const float *mn = q->mins ? q->mins + t * (size_t)G * 8 : NULL;
    /* token groups of 4 reuse the tile from L1 */
    for (int t0 = 0; t0 < j->n_tok; t0 += 4) {
      int T = j->n_tok - t0 < 4 ? j->n_tok - t0 : 4;
      const float *gs_t = mn ? j->gsum + (size_t)t0 * G : NULL;
      float out[32];
      if (j->xq)
        k->x8_u4_q8(tile, sc, mn, K, gs, j->xq + (size_t)t0 * K, K, j->xd + (size_t)t0 * (K / 32),
                    K / 32, gs_t, G, T, out);
      else
        k->x8_u4_f32(tile, sc, mn, K, gs, j->xg + (size_t)t0 * K, K, gs_t, G, T, out);
      for (int i = 0; i < T; i++)
        for (int r = 0; r < 8; r++) {
          size_t n = t * 8 + (size_t)r;
          if (n < (size_t)N) j->y[(size_t)(t0 + i) * N + n] = out[i * 8 + r] + (l->bias ? l->bias[n] : 0.0f);
        }
    }
  }
}

void mq_x8_forward(const mq_linear *l, const float *xg, const float *gsum, const int8_t *xq,
                   const float *xd, int n_tok, float *y, const mq_exec *ex) {
  x8_job j = {l, xg, gsum, xq, xd, y, n_tok, ex};
  size_t tasks = (n_tiles(l->n_out) + TILES_PER_TASK - 1) / TILES_PER_TASK;
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok), (int)tasks, x8_tiles, &j);
}

/* ---- activation-quantized 4-bit (W4A8, W4A4) ---- */

#define MAX_BLOCKS 8192 /* K up to 262144 */

int mq_x8_aq_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return l->kind == MQ_W_INT && (l->act == MQ_ACT_INT8_TOKEN || l->act == MQ_ACT_INT4_TOKEN) &&
         !q->x8 && q->codes == MQ_CODES_S8 && q->bits == 4 && !q->perm && l->n_in % 32 == 0 &&
         q->group_size % 32 == 0 && l->n_in / 32 <= MAX_BLOCKS && l->n_out > 0;
}

int mq_x8_aq_repack(mq_linear *l, uint8_t *codes, float *scales, float *mins) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in, G = q->n_groups;
  memset(codes, 0, mq_x8_code_bytes(N, K));
  for (int n = 0; n < N; n++) {
    const int8_t *row = (const int8_t *)q->data + (size_t)n * K;
    uint8_t *dst = codes + (size_t)(n / 8) * 4 * (size_t)K + (size_t)(n % 8) * 4;
    for (int b = 0; b < K / 32; b++, row += 32, dst += 128)
      for (int ch = 0; ch < 4; ch++)
        for (int j = 0; j < 4; j++)
          dst[32 * ch + j] = (uint8_t)((row[4 * ch + j] + 8) | (row[16 + 4 * ch + j] + 8) << 4);
  }
  /* mins' = mins - 8 * scale */
  float *tmp = malloc(sizeof(float) * (size_t)N * (size_t)G);
  if (!tmp) return -1;
  for (size_t i = 0; i < (size_t)N * (size_t)G; i++)
    tmp[i] = (q->mins ? q->mins[i] : 0.0f) - 8.0f * q->scales[i];
  repack_groups(q->scales, scales, N, G);
  repack_groups(tmp, mins, N, G);
  free(tmp);
  q->data = codes;
  q->scales = scales;
  q->mins = mins;
  q->codes = MQ_CODES_U4;
  q->x8 = 1;
  return 0;
}

static float g_ones[MAX_BLOCKS];
static pthread_once_t g_ones_once = PTHREAD_ONCE_INIT;
static void init_ones(void) {
  for (int i = 0; i < MAX_BLOCKS; i++) g_ones[i] = 1.0f;
}

typedef struct {
  const mq_linear *l;
  const uint8_t *buf;
  size_t stride, off_gsum;
  float *y;
  int n_tok;
  const mq_exec *ex;
} aq_job;

static void aq_tiles(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const aq_job *j = ctx;
  const mq_linear *l = j->l;
  const mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in, G = q->n_groups;
  size_t t1 = (size_t)end * TILES_PER_TASK;
  if (t1 > n_tiles(N)) t1 = n_tiles(N);
  for (size_t t = (size_t)begin * TILES_PER_TASK; t < t1; t++) {
    const uint8_t *tile = q->data + t * (q->codes == MQ_CODES_S8 ? 8 : 4) * (size_t)K;
    const float *sc = q->scales + t * (size_t)G * 8, *mn = q->mins ? q->mins + t * (size_t)G * 8 : NULL;
    for (int t0 = 0; t0 < j->n_tok; t0 += 4) {
      int T = j->n_tok - t0 < 4 ? j->n_tok - t0 : 4;
      const uint8_t *b = j->buf + (size_t)t0 * j->stride;
      float out[32];
      /* block scales all 1: the per-token scale is applied by the caller */
      if (q->codes == MQ_CODES_S8)
        j->ex->k->x8_s8_q8(tile, sc, K, q->group_size, (const int8_t *)b, (int)j->stride, T, out);
      else
        j->ex->k->x8_u4_q8(tile, sc, mn, K, q->group_size, (const int8_t *)b, (int)j->stride, g_ones,
                           0, (const float *)(b + j->off_gsum), (int)(j->stride / 4), T, out);
      for (int i = 0; i < T; i++)
        for (int r = 0; r < 8; r++) {
          size_t n = t * 8 + (size_t)r;
          if (n < (size_t)N) j->y[(size_t)(t0 + i) * N + n] = out[i * 8 + r];
        }
    }
  }
}

void mq_x8_aq_forward(const mq_linear *l, const uint8_t *buf, size_t stride, size_t off_gsum,
                      int n_tok, float *y, const mq_exec *ex) {
  pthread_once(&g_ones_once, init_ones);
  aq_job j = {l, buf, stride, off_gsum, y, n_tok, ex};
  size_t tasks = (n_tiles(l->n_out) + TILES_PER_TASK - 1) / TILES_PER_TASK;
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok), (int)tasks, aq_tiles, &j);
}

/* ---- 8-bit weights, dynamic int8 activations (W8A8) ---- */

int mq_x8_s8_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return l->kind == MQ_W_INT && l->act == MQ_ACT_INT8_TOKEN && !q->x8 && q->codes == MQ_CODES_S8 &&
         q->bits == 8 && !q->perm && !q->mins && l->n_in % 32 == 0 && q->group_size % 32 == 0 &&
         l->n_out > 0;
}

size_t mq_x8_s8_code_bytes(int n_out, int n_in) { return n_tiles(n_out) * 8 * (size_t)n_in; }

/* Row r's 32 codes of one block into an S8 tile block (256 bytes). */
static void put_s8_block(uint8_t *blk, int r, const uint8_t *src) {
  for (int c = 0; c < 8; c++) memcpy(blk + 32 * c + 4 * r, src + 4 * c, 4);
}

void mq_x8_s8_repack(mq_linear *l, uint8_t *codes, float *scales) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in;
  memset(codes, 0, mq_x8_s8_code_bytes(N, K));
  for (int n = 0; n < N; n++)
    for (int b = 0; b < K / 32; b++)
      put_s8_block(codes + ((size_t)(n / 8) * (K / 32) + (size_t)b) * 256, n % 8,
                   q->data + (size_t)n * K + 32 * (size_t)b);
  repack_groups(q->scales, scales, N, q->n_groups);
  q->data = codes;
  q->scales = scales;
  q->x8 = 1;
}

/* ---- GGUF Q4_0x8 ---- */

int mq_x8_gguf_eligible(const mq_linear *l) {
  return l->kind == MQ_W_GGUF && !l->q.x8 && l->n_out > 0 &&
         ((l->gtype == MQ_GGML_TYPE_Q4_0 && l->n_in % 32 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q8_0 && l->n_in % 32 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q6_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q5_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q4_K && l->n_in % 256 == 0));
}

/* Bytes of one tile's super-block (Q4_K) or block (Q4_0), and its columns. */
static size_t tile_block(uint32_t gtype, int *cols) {
  *cols = gtype == MQ_GGML_TYPE_Q4_K || gtype == MQ_GGML_TYPE_Q5_K || gtype == MQ_GGML_TYPE_Q6_K
              ? 256
              : 32;
  return gtype == MQ_GGML_TYPE_Q4_K   ? MQ_X8_Q4_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q5_K ? MQ_X8_Q5_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q6_K ? MQ_X8_Q6_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q8_0 ? MQ_X8_Q8_0_BLOCK
                                      : MQ_X8_Q4_0_BLOCK;
}

size_t mq_x8_gguf_bytes_of(uint32_t gtype, int n_out, int n_in) {
  int cols;
  size_t tb = tile_block(gtype, &cols);
  return n_tiles(n_out) * (size_t)(n_in / cols) * tb;
}

size_t mq_x8_gguf_bytes(int n_out, int n_in) {
  return mq_x8_gguf_bytes_of(MQ_GGML_TYPE_Q4_0, n_out, n_in);
}

/* Q4_K's 6-bit scale and min of sub-block j (12 packed bytes s). */
static void q4k_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
  if (j < 4) {
    *sc = s[j] & 63, *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

/* Q4_K (144 bytes: d, dmin, 12 scale bytes, qs[128]) and Q5_K (176 bytes:
 * the same with qh[32] before qs): 64-column chunk c from qs[32c..32c+31],
 * low nibbles then high nibbles; Q5_K's fifth bit of sub-block j at bit j of
 * qh[column within the sub-block]. */
static void repack_q45_k(mq_linear *l, uint8_t *dst) {
  int five = l->gtype == MQ_GGML_TYPE_Q5_K;
  int N = l->n_out, K = l->n_in, ns = K / 256, rb = five ? 176 : 144;
  size_t tb = five ? MQ_X8_Q5_K_BLOCK : MQ_X8_Q4_K_BLOCK, sc_at = five ? 1280 : 1024;
  for (int n = 0; n < N; n++) {
    const uint8_t *row = (const uint8_t *)l->w + (size_t)n * ns * rb;
    uint8_t *tile = dst + (size_t)(n / 8) * ns * tb;
    int r = n % 8;
    for (int sb = 0; sb < ns; sb++, row += rb) {
      uint8_t *blk = tile + (size_t)sb * tb;
      for (int j = 0; j < 8; j++) {
        const uint8_t *qs = row + (five ? 48 : 16) + 32 * (j / 2);
        int shift = 4 * (j % 2);
        uint8_t c[32];
        for (int i = 0; i < 32; i++)
          c[i] = (uint8_t)(((qs[i] >> shift) & 15) | (five ? ((row[16 + i] >> j) & 1) << 4 : 0));
        for (int ch = 0; ch < 4; ch++)
          for (int i = 0; i < 4; i++) {
            int a = 4 * ch + i, b = 16 + 4 * ch + i, at = 4 * r + i;
            blk[128 * j + 32 * ch + at] = (uint8_t)((c[a] & 15) | (c[b] & 15) << 4);
            if (five)
              blk[1024 + 32 * j + at] |= (uint8_t)((c[a] >> 4) << ch | (c[b] >> 4) << (4 + ch));
          }
        int scv, mn;
        q4k_scale_min(j, row + 4, &scv, &mn);
        blk[sc_at + 8 * j + r] = (uint8_t)scv;
        blk[sc_at + 64 + 8 * j + r] = (uint8_t)mn;
      }
      memcpy(blk + sc_at + 128 + 2 * r, row, 2);
      memcpy(blk + sc_at + 144 + 2 * r, row + 2, 2);
    }
  }
}

/* Q6_K codes u (0..63) of one 256-column super-block, in column order. */
static void q6k_codes(const uint8_t *b, uint8_t u[256]) {
  for (int h = 0; h < 2; h++) {
    const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
    uint8_t *y = u + 128 * h;
    for (int i = 0; i < 32; i++) {
      y[i] = (uint8_t)((ql[i] & 0xF) | ((qh[i] >> 0) & 3) << 4);
      y[i + 32] = (uint8_t)((ql[i + 32] & 0xF) | ((qh[i] >> 2) & 3) << 4);
      y[i + 64] = (uint8_t)((ql[i] >> 4) | ((qh[i] >> 4) & 3) << 4);
      y[i + 96] = (uint8_t)((ql[i + 32] >> 4) | ((qh[i] >> 6) & 3) << 4);
    }
  }
}

static void repack_q6_k(mq_linear *l, uint8_t *dst) {
  int N = l->n_out, K = l->n_in, ns = K / 256;
  for (int n = 0; n < N; n++) {
    const uint8_t *row = (const uint8_t *)l->w + (size_t)n * ns * 210;
    uint8_t *tile = dst + (size_t)(n / 8) * ns * MQ_X8_Q6_K_BLOCK;
    int r = n % 8;
    for (int sb = 0; sb < ns; sb++, row += 210) {
      uint8_t *blk = tile + (size_t)sb * MQ_X8_Q6_K_BLOCK, u[256];
      q6k_codes(row, u);
      for (int j = 0; j < 8; j++) { /* 32-column block j */
        const uint8_t *c = u + 32 * j;
        uint8_t *lo = blk + 128 * j, *hb = blk + 1024 + 64 * j;
        for (int ch = 0; ch < 4; ch++)
          for (int i = 0; i < 4; i++) {
            int a = 4 * ch + i, b = 16 + 4 * ch + i, at = 4 * r + i;
            lo[32 * ch + at] = (uint8_t)((c[a] & 15) | (c[b] & 15) << 4);
            hb[at] |= (uint8_t)((c[a] >> 4) << (2 * ch));
            hb[32 + at] |= (uint8_t)((c[b] >> 4) << (2 * ch));
          }
      }
      for (int s16 = 0; s16 < 16; s16++) blk[1536 + 8 * s16 + r] = row[192 + s16];
      memcpy(blk + 1664 + 2 * r, row + 208, 2);
    }
  }
}

/* Code u of row r, column k (0..255) of a Q6_Kx8 super-block. */
static unsigned q6k_x8_code(const uint8_t *blk, int r, int k) {
  int j = k / 32, i = k % 32, hi = i >= 16, ch = (i % 16) / 4, at = 4 * r + i % 4;
  unsigned lo = (blk[128 * j + 32 * ch + at] >> (4 * hi)) & 15;
  unsigned h2 = (blk[1024 + 64 * j + 32 * hi + at] >> (2 * ch)) & 3;
  return lo | h2 << 4;
}

void mq_x8_gguf_repack(mq_linear *l, uint8_t *dst) {
  memset(dst, 0, mq_x8_gguf_bytes_of(l->gtype, l->n_out, l->n_in));
  if (l->gtype == MQ_GGML_TYPE_Q4_K || l->gtype == MQ_GGML_TYPE_Q5_K) {
    repack_q45_k(l, dst);
    l->w = dst;
    l->q.x8 = 1;
    return;
  }
  if (l->gtype == MQ_GGML_TYPE_Q6_K) {
    repack_q6_k(l, dst);
    l->w = dst;
    l->q.x8 = 1;
    return;
  }
  if (l->gtype == MQ_GGML_TYPE_Q8_0) { /* Q8_0: f16 d, 32 int8 */
    int nb = l->n_in / 32;
    for (int n = 0; n < l->n_out; n++)
      for (int b = 0; b < nb; b++) {
        const uint8_t *src = (const uint8_t *)l->w + ((size_t)n * nb + b) * 34;
        uint8_t *blk = dst + ((size_t)(n / 8) * nb + b) * MQ_X8_Q8_0_BLOCK;
        put_s8_block(blk, n % 8, src + 2);
        memcpy(blk + 256 + 2 * (n % 8), src, 2);
      }
    l->w = dst;
    l->q.x8 = 1;
    return;
  }
  int N = l->n_out, K = l->n_in, nb = K / 32;
  memset(dst, 0, mq_x8_gguf_bytes(N, K));
  for (int n = 0; n < N; n++) {
    const uint8_t *row = (const uint8_t *)l->w + (size_t)n * nb * 18;
    uint8_t *tile = dst + (size_t)(n / 8) * nb * MQ_X8_Q4_0_BLOCK;
    int r = n % 8;
    for (int b = 0; b < nb; b++, row += 18) {
      /* Q4_0: f16 d, then byte i holds column i (low nibble) and i + 16 */
      uint8_t *blk = tile + (size_t)b * MQ_X8_Q4_0_BLOCK;
      for (int ch = 0; ch < 4; ch++)
        for (int j = 0; j < 4; j++) blk[32 * ch + 4 * r + j] = row[2 + 4 * ch + j];
      memcpy(blk + 128 + 2 * r, row, 2);
    }
  }
  l->w = dst;
  l->q.x8 = 1;
}

void mq_x8_gguf_dequant_row(const mq_linear *l, int n, float *dst) {
  int r = n % 8;
  if (l->gtype == MQ_GGML_TYPE_Q6_K) {
    int ns = l->n_in / 256;
    const uint8_t *tile = (const uint8_t *)l->w + (size_t)(n / 8) * ns * MQ_X8_Q6_K_BLOCK;
    for (int sb = 0; sb < ns; sb++) {
      const uint8_t *blk = tile + (size_t)sb * MQ_X8_Q6_K_BLOCK;
      uint16_t h;
      memcpy(&h, blk + 1664 + 2 * r, 2);
      float d = mq_f16_to_f32(h);
      for (int k = 0; k < 256; k++) /* as llama.cpp: d * sc * (u - 32) */
        dst[256 * sb + k] = d * (float)(int8_t)blk[1536 + 8 * (k / 16) + r] *
                            (float)((int)q6k_x8_code(blk, r, k) - 32);
    }
    return;
  }
  if (l->gtype == MQ_GGML_TYPE_Q4_K || l->gtype == MQ_GGML_TYPE_Q5_K) {
    int five = l->gtype == MQ_GGML_TYPE_Q5_K, ns = l->n_in / 256;
    size_t tb = five ? MQ_X8_Q5_K_BLOCK : MQ_X8_Q4_K_BLOCK, sc_at = five ? 1280 : 1024;
    const uint8_t *tile = (const uint8_t *)l->w + (size_t)(n / 8) * ns * tb;
    for (int sb = 0; sb < ns; sb++) {
      const uint8_t *blk = tile + (size_t)sb * tb;
      uint16_t hd, hm;
      memcpy(&hd, blk + sc_at + 128 + 2 * r, 2);
      memcpy(&hm, blk + sc_at + 144 + 2 * r, 2);
      float d = mq_f16_to_f32(hd), dmin = mq_f16_to_f32(hm);
      for (int j = 0; j < 8; j++) {
        /* as llama.cpp dequantizes: d * sc * q - dmin * m */
        float d1 = d * (float)blk[sc_at + 8 * j + r], m1 = dmin * (float)blk[sc_at + 64 + 8 * j + r];
        for (int i = 0; i < 16; i++) {
          int at = 32 * (i / 4) + 4 * r + i % 4;
          uint8_t byte = blk[128 * j + at], h = five ? blk[1024 + 32 * j + 4 * r + i % 4] : 0;
          int lo = (byte & 15) | ((h >> (i / 4)) & 1) << 4, hi = (byte >> 4) | ((h >> (4 + i / 4)) & 1) << 4;
          dst[256 * sb + 32 * j + i] = d1 * (float)lo - m1;
          dst[256 * sb + 32 * j + 16 + i] = d1 * (float)hi - m1;
        }
      }
    }
    return;
  }
  int nb = l->n_in / 32;
  if (l->gtype == MQ_GGML_TYPE_Q8_0) {
    const uint8_t *tile = (const uint8_t *)l->w + (size_t)(n / 8) * nb * MQ_X8_Q8_0_BLOCK;
    for (int b = 0; b < nb; b++) {
      const uint8_t *blk = tile + (size_t)b * MQ_X8_Q8_0_BLOCK;
      uint16_t h;
      memcpy(&h, blk + 256 + 2 * r, 2);
      float d = mq_f16_to_f32(h);
      for (int k = 0; k < 32; k++) dst[32 * b + k] = (float)(int8_t)blk[32 * (k / 4) + 4 * r + k % 4] * d;
    }
    return;
  }
  const uint8_t *tile = (const uint8_t *)l->w + (size_t)(n / 8) * nb * MQ_X8_Q4_0_BLOCK;
  for (int b = 0; b < nb; b++) {
    const uint8_t *blk = tile + (size_t)b * MQ_X8_Q4_0_BLOCK;
    uint16_t h;
    memcpy(&h, blk + 128 + 2 * r, 2);
    float d = mq_f16_to_f32(h);
    for (int i = 0; i < 16; i++) {
      uint8_t byte = blk[32 * (i / 4) + 4 * r + i % 4];
      dst[32 * b + i] = (float)((int)(byte & 15) - 8) * d;
      dst[32 * b + 16 + i] = (float)((int)(byte >> 4) - 8) * d;
    }
  }
}

typedef struct {
  const mq_linear *l;
  const uint8_t *act;
  size_t stride;
  const int32_t *bsum;
  float *y;
  int n_tok;
  const mq_exec *ex;
} gguf_x8_job;

static void gguf_x8_tiles(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const gguf_x8_job *j = ctx;
  const mq_linear *l = j->l;
  int N = l->n_out, K = l->n_in, nb = K / 32, cols;
  size_t block_bytes = tile_block(l->gtype, &cols);
  size_t tile_bytes = (size_t)(K / cols) * block_bytes;
  int q4k = l->gtype == MQ_GGML_TYPE_Q4_K;
  size_t t1 = (size_t)end * TILES_PER_TASK;
  if (t1 > n_tiles(N)) t1 = n_tiles(N);
  for (size_t t = (size_t)begin * TILES_PER_TASK; t < t1; t++) {
    const uint8_t *tile = (const uint8_t *)l->w + t * tile_bytes;
    for (int t0 = 0; t0 < j->n_tok; t0 += 4) {
      int T = j->n_tok - t0 < 4 ? j->n_tok - t0 : 4;
      float out[32];
      const uint8_t *act = j->act + (size_t)t0 * j->stride;
      if (q4k) j->ex->k->x8_q4_k(tile, K, act, j->stride, NULL, 0, T, out);
      else if (l->gtype == MQ_GGML_TYPE_Q5_K) j->ex->k->x8_q5_k(tile, K, act, j->stride, NULL, 0, T, out);
      else if (l->gtype == MQ_GGML_TYPE_Q6_K) j->ex->k->x8_q6_k(tile, K, act, j->stride, NULL, 0, T, out);
      else if (l->gtype == MQ_GGML_TYPE_Q8_0) j->ex->k->x8_q8_0(tile, K, act, j->stride, NULL, 0, T, out);
      else j->ex->k->x8_q4_0(tile, K, act, j->stride, j->bsum + (size_t)t0 * nb, nb, T, out);
      for (int i = 0; i < T; i++)
        for (int r = 0; r < 8; r++) {
          size_t n = t * 8 + (size_t)r;
          if (n < (size_t)N) j->y[(size_t)(t0 + i) * N + n] = out[i * 8 + r] + (l->bias ? l->bias[n] : 0.0f);
        }
    }
  }
}

void mq_x8_gguf_forward(const mq_linear *l, const uint8_t *act, size_t stride, const int32_t *bsum,
                        int n_tok, float *y, const mq_exec *ex) {
  gguf_x8_job j = {l, act, stride, bsum, y, n_tok, ex};
  size_t tasks = (n_tiles(l->n_out) + TILES_PER_TASK - 1) / TILES_PER_TASK;
  mq_pool_for(mq_pool_if(ex->pool, (double)l->n_out * l->n_in * n_tok), (int)tasks, gguf_x8_tiles, &j);
}

/* ---- several x8 layers reading one input (q/k/v, gate/up) ---- */

#define MULTI_MAX 16

typedef struct {
  int n;
  int first[MULTI_MAX + 1]; /* pool task where layer i's tiles start */
  void (*fn)(void *, int, int, int);
  void *jobs[MULTI_MAX];
} multi_job;

static void multi_tasks(void *ctx, int begin, int end, int tid) {
  const multi_job *m = ctx;
  for (int i = 0; i < m->n; i++) {
    int b = begin > m->first[i] ? begin : m->first[i];
    int e = end < m->first[i + 1] ? end : m->first[i + 1];
    if (b < e) m->fn(m->jobs[i], b - m->first[i], e - m->first[i], tid);
  }
}

/* The layers can share one prepared input: x8 A16 4-bit layers on the fast
 * path with one K and group size and no act-order, or x8 GGUF layers of one
 * K whose types consume one activation format. */
static int multi_ok(const mq_linear *const *ls, int n, const mq_exec *ex) {
  const mq_linear *a = ls[0];
  if (n < 2 || n > MULTI_MAX) return 0;
  for (int i = 0; i < n; i++) {
    const mq_linear *l = ls[i];
    if (!l->q.x8 || l->act != MQ_ACT_FLOAT || l->kind != a->kind || l->n_in != a->n_in) return 0;
    if (l->kind == MQ_W_INT &&
        (!ex->fast_a16 || l->q.codes != MQ_CODES_U4 || l->q.perm || l->q.group_size != a->q.group_size))
      return 0;
    if (l->kind == MQ_W_GGUF && mq_gguf_act_type(l->gtype) != mq_gguf_act_type(a->gtype)) return 0;
  }
  return 1;
}

int mq_x8_forward_multi(const mq_linear *const *ls, int n, const float *x, int n_tok,
                        float *const *ys, const mq_exec *ex) {
  if (!multi_ok(ls, n, ex)) return 0;
  int K = ls[0]->n_in;
  multi_job m = {.n = n, .fn = ls[0]->kind == MQ_W_INT ? x8_tiles : gguf_x8_tiles};
  x8_job ij[MULTI_MAX];
  gguf_x8_job gj[MULTI_MAX];
  double macs = 0;
  if (ls[0]->kind == MQ_W_INT) { /* int8 blocks of x and (for mins) group sums, as int_forward */
    int gs = ls[0]->q.group_size, G = ls[0]->q.n_groups;
    float *gsum = ex->gather + (size_t)n_tok * K;
    int8_t *xq = (int8_t *)(gsum + (size_t)n_tok * G);
    float *xd = (float *)(xq + (size_t)n_tok * K);
    for (int t = 0; t < n_tok; t++) {
      for (int g = 0; g < G; g++) {
        int k0 = g * gs, c = K - k0 < gs ? K - k0 : gs;
        double sum = 0;
        for (int i = 0; i < c; i++) sum += x[(size_t)t * K + k0 + i];
        gsum[(size_t)t * G + g] = (float)sum;
      }
      mq_quantize_q8_32(x + (size_t)t * K, K, xq + (size_t)t * K, xd + (size_t)t * (K / 32));
    }
    for (int i = 0; i < n; i++) {
      ij[i] = (x8_job){ls[i], x, gsum, xq, xd, ys[i], n_tok, ex};
      m.jobs[i] = &ij[i];
    }
  } else { /* the activation blocks of the first layer's type (Q4_0 first: its block sums) */
    const mq_linear *prep = ls[0];
    for (int i = 0; i < n; i++)
      if (ls[i]->gtype == MQ_GGML_TYPE_Q4_0) prep = ls[i];
    const int32_t *bsum;
    size_t stride = mq_linear_gguf_prepare(prep, x, n_tok, ex, &bsum);
    for (int i = 0; i < n; i++) {
      gj[i] = (gguf_x8_job){ls[i], (const uint8_t *)ex->gather, stride, bsum, ys[i], n_tok, ex};
      m.jobs[i] = &gj[i];
    }
  }
  m.first[0] = 0;
  for (int i = 0; i < n; i++) {
    m.first[i + 1] = m.first[i] + (int)((n_tiles(ls[i]->n_out) + TILES_PER_TASK - 1) / TILES_PER_TASK);
    macs += (double)ls[i]->n_out * K * n_tok;
  }
  mq_pool_for(mq_pool_if(ex->pool, macs), m.first[n], multi_tasks, &m);
  return 1;
}
