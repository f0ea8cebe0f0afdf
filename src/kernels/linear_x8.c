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

/* The forward passes of every x8 layout share this driver: tiles are split
 * across the pool in pairs; for each tile, tokens go in groups of 4 (the tile
 * stays in L1) through the layout's tile kernel, whose 8 rows are then
 * scattered into y with the layer's bias. Each layout's job starts with a
 * tile_job and supplies `call`, and `call2` where a kernel takes two tiles
 * at once (prefill: the activations' permutes shared). */
typedef struct tile_job tile_job;
struct tile_job {
  const mq_linear *l;
  float *y;
  int n_tok, add_bias; /* add_bias 0: the caller applies per-token terms and the bias */
  const mq_exec *ex;
  /* out[i*8 + r] for tokens t0 + i (i < T <= 4) and the rows of tile t */
  void (*call)(const tile_job *j, size_t t, int t0, int T, float out[32]);
  /* or NULL; out[i*16 + r] for the rows of tiles t and t + 1 */
  void (*call2)(const tile_job *j, size_t t, int t0, int T, float out[64]);
};

static size_t n_tasks(const mq_linear *l) {
  return (n_tiles(l->n_out) + TILES_PER_TASK - 1) / TILES_PER_TASK;
}

static void run_tiles(void *ctx, int begin, int end, int tid) {
  (void)tid;
  const tile_job *j = ctx;
  const mq_linear *l = j->l;
  size_t N = (size_t)l->n_out, t1 = (size_t)end * TILES_PER_TASK;
  if (t1 > n_tiles(l->n_out)) t1 = n_tiles(l->n_out);
  for (size_t t = (size_t)begin * TILES_PER_TASK, nt; t < t1; t += nt) {
    nt = j->call2 && j->n_tok > 1 && t + 1 < t1 ? 2 : 1;
    for (int t0 = 0; t0 < j->n_tok; t0 += 4) {
      int T = j->n_tok - t0 < 4 ? j->n_tok - t0 : 4;
      float out[64];
      if (nt == 2) j->call2(j, t, t0, T, out);
      else j->call(j, t, t0, T, out);
      for (int i = 0; i < T; i++)
        for (size_t r = 0, n = t * 8; r < 8 * nt && n < N; r++, n++)
          j->y[(size_t)(t0 + i) * N + n] =
              out[i * 8 * (int)nt + r] + (j->add_bias && l->bias ? l->bias[n] : 0.0f);
    }
  }
}

static void run(const tile_job *j) {
  const mq_linear *l = j->l;
  mq_pool_for(mq_pool_if(j->ex->pool, (double)l->n_out * l->n_in * j->n_tok), (int)n_tasks(l),
              run_tiles, (void *)j);
}

/* Bytes of a group's code blocks (a short last group padded to them). */
static size_t group_code_bytes(int n_in, int gs, int s8) {
  return (size_t)((gs < n_in ? gs : n_in) / 32) * (s8 ? 256 : 128);
}

size_t mq_x8_gstride(int n_in, int gs, int s8, int mins) {
  return group_code_bytes(n_in, gs, s8) + (mins ? 64 : 32);
}

size_t mq_x8_bytes(int n_out, int n_in, int gs, int s8, int mins) {
  int G = (n_in + gs - 1) / gs;
  return n_tiles(n_out) * (size_t)G * mq_x8_gstride(n_in, gs, s8, mins);
}

size_t mq_x8_layer_gstride(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return mq_x8_gstride(l->n_in, q->group_size, q->codes == MQ_CODES_S8, q->mins != NULL);
}

/* Block (128 or 256 bytes) holding column k of row n's tile. */
static const uint8_t *block_of(const mq_linear *l, int n, int k) {
  const mq_qint *q = &l->q;
  size_t gst = mq_x8_layer_gstride(l), bb = q->codes == MQ_CODES_S8 ? 256 : 128;
  int gs = q->group_size;
  return q->data + ((size_t)(n / 8) * q->n_groups + (size_t)(k / gs)) * gst +
         (size_t)((k % gs) / 32) * bb;
}

unsigned mq_x8_code(const mq_linear *l, int n, int k) {
  return mq_x8_nib(block_of(l, n, k), n % 8, k % 32);
}

int mq_x8_s8_code(const mq_linear *l, int n, int k) {
  return (int8_t)block_of(l, n, k)[32 * ((k % 32) / 4) + 4 * (n % 8) + k % 4];
}

/* Row n, group g's scale (or min: a = q.mins) of a repacked layer. */
static float side_at(const mq_linear *l, const float *a, int n, int g) {
  size_t fs = mq_x8_layer_gstride(l) / sizeof(float);
  return a[((size_t)(n / 8) * l->q.n_groups + (size_t)g) * fs + (size_t)(n % 8)];
}
float mq_x8_scale(const mq_linear *l, int n, int g) { return side_at(l, l->q.scales, n, g); }
float mq_x8_min(const mq_linear *l, int n, int g) {
  return l->q.mins ? side_at(l, l->q.mins, n, g) : 0.0f;
}

/* Row r's 32 codes c (column order, low 4 bits used) into a 4-bit block. */
static void put_u4_block(uint8_t *blk, int r, const uint8_t c[32]) {
  for (int i = 0; i < 16; i++) blk[mq_x8_nib_at(r, i)] = (uint8_t)((c[i] & 15) | (c[16 + i] & 15) << 4);
}

/* The tiles of an N x K layer of group size gs being written: where block b
 * of row n goes, and where its group's scales go. */
typedef struct {
  uint8_t *tiles;
  size_t gst, bb;
  int G, gs;
} tiles_out;

static tiles_out tiles_begin(const mq_linear *l, uint8_t *tiles, int s8, int mins) {
  const mq_qint *q = &l->q;
  tiles_out o = {tiles, mq_x8_gstride(l->n_in, q->group_size, s8, mins), s8 ? 256 : 128,
                 q->n_groups, q->group_size};
  memset(tiles, 0, mq_x8_bytes(l->n_out, l->n_in, q->group_size, s8, mins));
  return o;
}

static uint8_t *block_at(const tiles_out *o, int n, int b) {
  int g = 32 * b / o->gs;
  return o->tiles + ((size_t)(n / 8) * o->G + (size_t)g) * o->gst +
         (size_t)(b - g * o->gs / 32) * o->bb;
}

/* Place the row-major [N][G] scales (and mins, or NULL) after each group's
 * codes (rows past N keep zeros) and point l at the tiles. */
static void tiles_end(mq_linear *l, const tiles_out *o, const float *scales, const float *mins) {
  mq_qint *q = &l->q;
  size_t side = group_code_bytes(l->n_in, o->gs, o->bb == 256); /* scales after the codes */
  for (int n = 0; n < l->n_out; n++)
    for (int g = 0; g < o->G; g++) {
      float *f = (float *)(o->tiles + ((size_t)(n / 8) * o->G + (size_t)g) * o->gst + side);
      f[n % 8] = scales[(size_t)n * o->G + (size_t)g];
      if (mins) f[8 + n % 8] = mins[(size_t)n * o->G + (size_t)g];
    }
  q->data = o->tiles;
  q->scales = (const float *)(o->tiles + side);
  q->mins = mins ? q->scales + 8 : NULL;
  q->x8 = 1;
}

void mq_x8_repack(mq_linear *l, uint8_t *tiles) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in;
  size_t row_bytes = (size_t)K / 2;
  tiles_out o = tiles_begin(l, tiles, 0, q->mins != NULL);
  for (int n = 0; n < N; n++) {
    const uint8_t *row = q->data + (size_t)n * row_bytes;
    for (int b = 0; b < K / 32; b++, row += 16) {
      /* row: 16 bytes = columns 0..31 of the block, low nibble first */
      uint8_t c[32];
      for (int i = 0; i < 16; i++) c[2 * i] = row[i] & 15, c[2 * i + 1] = row[i] >> 4;
      put_u4_block(block_at(&o, n, b), n % 8, c);
    }
  }
  tiles_end(l, &o, q->scales, q->mins);
}

/* Tile t of a repacked integer layer: its codes, its group 0's scales and
 * mins (NULL without), and the group stride the kernels step by. */
typedef struct {
  const uint8_t *codes;
  const float *sc, *mn;
  size_t gst;
} int_tile;

static int_tile int_tile_at(const mq_linear *l, size_t t) {
  const mq_qint *q = &l->q;
  size_t gst = mq_x8_layer_gstride(l), at = t * (size_t)q->n_groups * gst;
  int_tile r = {q->data + at, q->scales + at / 4, q->mins ? q->mins + at / 4 : NULL, gst};
  return r;
}

typedef struct {
  tile_job base;
  const float *xg, *gsum;
  const int8_t *xq;
  const float *xd;
  const int32_t *bsum; /* S8 pairs: the blocks' code sums, or NULL */
} x8_job;

static void x8_call(const tile_job *b, size_t t, int t0, int T, float out[32]) {
  const x8_job *j = (const x8_job *)b;
  const mq_qint *q = &b->l->q;
  int K = b->l->n_in, G = q->n_groups, gs = q->group_size, s8 = q->codes == MQ_CODES_S8;
  int_tile w = int_tile_at(b->l, t);
  const uint8_t *tile = w.codes;
  size_t gst = w.gst;
  const float *sc = w.sc, *mn = w.mn;
  const float *gs_t = mn ? j->gsum + (size_t)t0 * G : NULL;
  if (s8 && j->xq)
    b->ex->k->x8_s8a16_q8(tile, gst, sc, mn, K, gs, j->xq + (size_t)t0 * K, K,
                          j->xd + (size_t)t0 * (K / 32), K / 32, gs_t, G, T, out);
  else if (s8)
    b->ex->k->x8_s8a16_f32(tile, gst, sc, mn, K, gs, j->xg + (size_t)t0 * K, K, gs_t, G, T, out);
  else if (j->xq)
    b->ex->k->x8_u4_q8(tile, gst, sc, mn, K, gs, j->xq + (size_t)t0 * K, K,
                       j->xd + (size_t)t0 * (K / 32), K / 32, gs_t, G, T, out);
  else
    b->ex->k->x8_u4_f32(tile, gst, sc, mn, K, gs, j->xg + (size_t)t0 * K, K, gs_t, G, T, out);
}

/* Tiles t and t + 1 through the fast path's two-tile kernels. */
static void x8_call2(const tile_job *b, size_t t, int t0, int T, float out[64]) {
  const x8_job *j = (const x8_job *)b;
  const mq_qint *q = &b->l->q;
  int K = b->l->n_in, G = q->n_groups, gs = q->group_size;
  int_tile w = int_tile_at(b->l, t), w2 = int_tile_at(b->l, t + 1);
  const float *gs_t = w.mn ? j->gsum + (size_t)t0 * G : NULL;
  const int8_t *xq = j->xq + (size_t)t0 * K;
  const float *xd = j->xd + (size_t)t0 * (K / 32);
  const int32_t *bs = j->bsum ? j->bsum + (size_t)t0 * (K / 32) : NULL;
  if (q->codes == MQ_CODES_S8)
    b->ex->k->x8_s8a16_q8_2(w.codes, w2.codes, w.gst, w.sc, w2.sc, w.mn, w2.mn, K, gs, xq, K, xd,
                            K / 32, gs_t, G, bs, K / 32, T, out);
  else
    b->ex->k->x8_u4_q8_2(w.codes, w2.codes, w.gst, w.sc, w2.sc, w.mn, w2.mn, K, gs, xq, K, xd,
                         K / 32, gs_t, G, NULL, 0, T, out);
}

/* The two-tile kernel on the fast path where the tier has one. */
static void x8_job_init(x8_job *j, const mq_linear *l, float *y, int n_tok, const mq_exec *ex,
                        const float *xg, const float *gsum, const int8_t *xq, const float *xd,
                        const int32_t *bsum) {
  const mq_kernels *k = ex->k;
  int two = xq && (l->q.codes == MQ_CODES_S8 ? k->x8_s8a16_q8_2 && bsum : k->x8_u4_q8_2 != NULL);
  *j = (x8_job){{l, y, n_tok, 1, ex, x8_call, two ? x8_call2 : NULL}, xg, gsum, xq, xd, bsum};
}

void mq_x8_forward(const mq_linear *l, const float *xg, const float *gsum, const int8_t *xq,
                   const float *xd, const int32_t *bsum, int n_tok, float *y, const mq_exec *ex) {
  x8_job j;
  x8_job_init(&j, l, y, n_tok, ex, xg, gsum, xq, xd, bsum);
  run(&j.base);
}

/* ---- activation-quantized 4-bit (W4A8, W4A4) ---- */

#define MAX_BLOCKS 8192 /* K up to 262144 */

int mq_x8_aq_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return l->kind == MQ_W_INT && (l->act == MQ_ACT_INT8_TOKEN || l->act == MQ_ACT_INT4_TOKEN) &&
         !q->x8 && q->codes == MQ_CODES_S8 && q->bits == 4 && !q->perm && l->n_in % 32 == 0 &&
         q->group_size % 32 == 0 && l->n_in / 32 <= MAX_BLOCKS && l->n_out > 0;
}

int mq_x8_aq_repack(mq_linear *l, uint8_t *tiles) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in, G = q->n_groups;
  /* mins' = mins - 8 * scale */
  float *tmp = malloc(sizeof(float) * (size_t)N * (size_t)G);
  if (!tmp) return -1;
  for (size_t i = 0; i < (size_t)N * (size_t)G; i++)
    tmp[i] = (q->mins ? q->mins[i] : 0.0f) - 8.0f * q->scales[i];
  tiles_out o = tiles_begin(l, tiles, 0, 1);
  for (int n = 0; n < N; n++) {
    const int8_t *row = (const int8_t *)q->data + (size_t)n * K;
    for (int b = 0; b < K / 32; b++, row += 32) {
      uint8_t c[32];
      for (int i = 0; i < 32; i++) c[i] = (uint8_t)(row[i] + 8);
      put_u4_block(block_at(&o, n, b), n % 8, c);
    }
  }
  tiles_end(l, &o, q->scales, tmp);
  free(tmp);
  q->codes = MQ_CODES_U4;
  return 0;
}

static float g_ones[MAX_BLOCKS];
static pthread_once_t g_ones_once = PTHREAD_ONCE_INIT;
static void init_ones(void) {
  for (int i = 0; i < MAX_BLOCKS; i++) g_ones[i] = 1.0f;
}

typedef struct {
  tile_job base;
  const uint8_t *buf; /* per token: int8 codes, group sums at off_gsum, block sums at off_bsum */
  size_t stride, off_gsum, off_bsum;
} aq_job;

static void aq_call(const tile_job *b, size_t t, int t0, int T, float out[32]) {
  const aq_job *j = (const aq_job *)b;
  const mq_qint *q = &b->l->q;
  int K = b->l->n_in;
  int_tile w = int_tile_at(b->l, t);
  const uint8_t *tile = w.codes;
  size_t gst = w.gst;
  const float *sc = w.sc, *mn = w.mn;
  const uint8_t *x = j->buf + (size_t)t0 * j->stride;
  /* block scales all 1: the per-token scale is applied by the caller; static
   * W8A8 takes unit group scales too (exact integer sums, deq_scale after) */
  if (q->codes == MQ_CODES_S8)
    b->ex->k->x8_s8_q8(tile, gst, b->l->act == MQ_ACT_INT8_STATIC ? g_ones : sc, K, q->group_size,
                       (const int8_t *)x, (int)j->stride, T, out);
  else
    b->ex->k->x8_u4_q8(tile, gst, sc, mn, K, q->group_size, (const int8_t *)x, (int)j->stride,
                       g_ones, 0, (const float *)(x + j->off_gsum), (int)(j->stride / 4), T, out);
}

static void aq_call2(const tile_job *b, size_t t, int t0, int T, float out[64]) {
  const aq_job *j = (const aq_job *)b;
  const mq_qint *q = &b->l->q;
  int K = b->l->n_in;
  int_tile w = int_tile_at(b->l, t), w2 = int_tile_at(b->l, t + 1);
  const uint8_t *x = j->buf + (size_t)t0 * j->stride;
  if (q->codes == MQ_CODES_S8) {
    int stat = b->l->act == MQ_ACT_INT8_STATIC;
    b->ex->k->x8_s8_q8_2(w.codes, w2.codes, w.gst, stat ? g_ones : w.sc, stat ? g_ones : w2.sc, K,
                         q->group_size, (const int8_t *)x, (int)j->stride,
                         (const int32_t *)(x + j->off_bsum), (int)(j->stride / 4), T, out);
  } else {
    b->ex->k->x8_u4_q8_2(w.codes, w2.codes, w.gst, w.sc, w2.sc, w.mn, w2.mn, K, q->group_size,
                         (const int8_t *)x, (int)j->stride, g_ones, 0,
                         (const float *)(x + j->off_gsum), (int)(j->stride / 4), NULL, 0, T, out);
  }
}

void mq_x8_aq_forward(const mq_linear *l, const uint8_t *buf, size_t stride, size_t off_gsum,
                      size_t off_bsum, int n_tok, float *y, const mq_exec *ex) {
  pthread_once(&g_ones_once, init_ones);
  const mq_kernels *k = ex->k;
  int two = l->q.codes == MQ_CODES_S8 ? k->x8_s8_q8_2 != NULL : k->x8_u4_q8_2 != NULL;
  aq_job j = {{l, y, n_tok, 0, ex, aq_call, two ? aq_call2 : NULL}, buf, stride, off_gsum, off_bsum};
  run(&j.base);
}

/* ---- 8-bit weights, dynamic int8 activations (W8A8) ---- */

int mq_x8_s8_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  int stat = l->act == MQ_ACT_INT8_STATIC; /* one group, K <= 32 * MAX_BLOCKS (unit scales) */
  return l->kind == MQ_W_INT && (l->act == MQ_ACT_INT8_TOKEN || stat) && !q->x8 &&
         q->codes == MQ_CODES_S8 && q->bits == 8 && !q->perm && !q->mins && l->n_in % 32 == 0 &&
         q->group_size % 32 == 0 && l->n_out > 0 &&
         (!stat || (q->n_groups == 1 && l->n_in / 32 <= MAX_BLOCKS));
}

/* Row r's 32 codes of one block into an S8 tile block (256 bytes). */
static void put_s8_block(uint8_t *blk, int r, const uint8_t *src) {
  for (int c = 0; c < 8; c++) memcpy(blk + 32 * c + 4 * r, src + 4 * c, 4);
}

int mq_x8_a16s8_eligible(const mq_linear *l) {
  const mq_qint *q = &l->q;
  return l->kind == MQ_W_INT && l->act == MQ_ACT_FLOAT && !q->x8 && q->bits == 8 &&
         (q->codes == MQ_CODES_U8 || q->codes == MQ_CODES_S8) && l->n_in % 32 == 0 &&
         q->group_size % 32 == 0 && l->n_out > 0;
}

int mq_x8_a16s8_mins(const mq_linear *l) { return l->q.mins || l->q.codes == MQ_CODES_U8; }

/* S8 tiles of l's codes (u8: flipped to u - 128), scales and mins (or NULL). */
static void s8_tiles(mq_linear *l, uint8_t *tiles, int u8, const float *mins) {
  mq_qint *q = &l->q;
  int N = l->n_out, K = l->n_in;
  tiles_out o = tiles_begin(l, tiles, 1, mins != NULL);
  for (int n = 0; n < N; n++)
    for (int b = 0; b < K / 32; b++) {
      uint8_t c[32];
      const uint8_t *src = q->data + (size_t)n * K + 32 * (size_t)b;
      for (int i = 0; i < 32; i++) c[i] = u8 ? (uint8_t)(src[i] ^ 0x80) : src[i];
      put_s8_block(block_at(&o, n, b), n % 8, c);
    }
  tiles_end(l, &o, q->scales, mins);
  q->codes = MQ_CODES_S8;
}

int mq_x8_a16s8_repack(mq_linear *l, uint8_t *tiles) {
  mq_qint *q = &l->q;
  int N = l->n_out, G = q->n_groups, u8 = q->codes == MQ_CODES_U8;
  float *tmp = NULL;
  if (u8) { /* mins' = mins + 128 * scale */
    if (!(tmp = malloc(sizeof(float) * (size_t)N * (size_t)G))) return -1;
    for (size_t i = 0; i < (size_t)N * (size_t)G; i++)
      tmp[i] = (q->mins ? q->mins[i] : 0.0f) + 128.0f * q->scales[i];
  }
  s8_tiles(l, tiles, u8, u8 ? tmp : q->mins);
  free(tmp);
  return 0;
}

void mq_x8_s8_repack(mq_linear *l, uint8_t *tiles) { s8_tiles(l, tiles, 0, NULL); }

/* ---- GGUF Q4_0x8 ---- */

int mq_x8_gguf_eligible(const mq_linear *l) {
  return l->kind == MQ_W_GGUF && !l->q.x8 && l->n_out > 0 &&
         ((l->gtype == MQ_GGML_TYPE_Q4_0 && l->n_in % 32 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q8_0 && l->n_in % 32 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q6_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q5_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q4_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q3_K && l->n_in % 256 == 0) ||
          (l->gtype == MQ_GGML_TYPE_Q2_K && l->n_in % 256 == 0));
}

/* The super-block types (256 columns a block). */
static int is_k(uint32_t gtype) {
  return gtype == MQ_GGML_TYPE_Q2_K || gtype == MQ_GGML_TYPE_Q3_K || gtype == MQ_GGML_TYPE_Q4_K ||
         gtype == MQ_GGML_TYPE_Q5_K || gtype == MQ_GGML_TYPE_Q6_K;
}

/* Bytes of one tile's super-block (Q4_K) or block (Q4_0), and its columns. */
static size_t tile_block(uint32_t gtype, int *cols) {
  *cols = is_k(gtype) ? 256 : 32;
  return gtype == MQ_GGML_TYPE_Q2_K   ? MQ_X8_Q2_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q3_K ? MQ_X8_Q3_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q4_K ? MQ_X8_Q4_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q5_K ? MQ_X8_Q5_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q6_K ? MQ_X8_Q6_K_BLOCK
         : gtype == MQ_GGML_TYPE_Q8_0 ? MQ_X8_Q8_0_BLOCK
                                      : MQ_X8_Q4_0_BLOCK;
}

size_t mq_x8_gguf_bytes(uint32_t gtype, int n_out, int n_in) {
  int cols;
  size_t tb = tile_block(gtype, &cols);
  return n_tiles(n_out) * (size_t)(n_in / cols) * tb;
}

/* Q4_K, Q5_K, Q6_K super-blocks: the codes' low 4 bits in the 4-bit layout,
 * Q5_K's fifth and Q6_K's two high bits in their planes, the scales (and
 * mins) as bytes per row, the f16 d (and dmin); layouts in linear_x8.h. */
static void repack_k(mq_linear *l, uint8_t *dst) {
  uint32_t type = l->gtype;
  int two = type == MQ_GGML_TYPE_Q2_K, three = type == MQ_GGML_TYPE_Q3_K;
  int five = type == MQ_GGML_TYPE_Q5_K;
  int six = type == MQ_GGML_TYPE_Q6_K, cols;
  int N = l->n_out, ns = l->n_in / 256;
  size_t rb = (size_t)mq_ggml_row_size(type, 256), tb = tile_block(type, &cols);
  size_t sc_at = five ? 1280 : 1024; /* Q4_K / Q5_K scales, mins, d, dmin */
  for (int n = 0; n < N; n++) {
    const uint8_t *row = (const uint8_t *)l->w + (size_t)n * ns * rb;
    uint8_t *tile = dst + (size_t)(n / 8) * ns * tb;
    int r = n % 8;
    for (int sb = 0; sb < ns; sb++, row += rb) {
      uint8_t *blk = tile + (size_t)sb * tb, u[256];
      mq_gguf_k_codes(type, row, u);
      if (two || three) { /* the 2-bit planes; Q3_K's third bits in their plane */
        for (int j = 0; j < 8; j++)
          for (int i = 0; i < 32; i++) {
            int at = 4 * r + i % 4, ch = (i % 16) / 4, hi = i >= 16;
            blk[64 * j + 32 * hi + at] |= (uint8_t)((u[32 * j + i] & 3) << (2 * ch));
            if (three) blk[512 + 32 * j + at] |= (uint8_t)((u[32 * j + i] >> 2) << (ch + 4 * hi));
          }
        if (two) { /* the scale | min bytes, d, dmin */
          for (int s16 = 0; s16 < 16; s16++) blk[512 + 8 * s16 + r] = row[s16];
          memcpy(blk + 640 + 2 * r, row + 80, 2);
          memcpy(blk + 656 + 2 * r, row + 82, 2);
        } else { /* int8 scales, d */
          int sc[16];
          mq_gguf_q3k_scales(row, sc);
          for (int s16 = 0; s16 < 16; s16++) blk[768 + 8 * s16 + r] = (uint8_t)(int8_t)sc[s16];
          memcpy(blk + 896 + 2 * r, row + 108, 2);
        }
        continue;
      }
      for (int j = 0; j < 8; j++) { /* 32-column block j */
        const uint8_t *c = u + 32 * j;
        put_u4_block(blk + 128 * j, r, c);
        for (int i = 0; i < 16; i++) {
          int at = 4 * r + i % 4, ch = i / 4;
          if (five) blk[1024 + 32 * j + at] |= (uint8_t)((c[i] >> 4) << ch | (c[16 + i] >> 4) << (4 + ch));
          if (six) {
            blk[1024 + 64 * j + at] |= (uint8_t)((c[i] >> 4) << (2 * ch));
            blk[1024 + 64 * j + 32 + at] |= (uint8_t)((c[16 + i] >> 4) << (2 * ch));
          }
        }
        if (!six) {
          int scv, mn;
          mq_gguf_scale_min_k4(j, row + 4, &scv, &mn);
          blk[sc_at + 8 * j + r] = (uint8_t)scv;
          blk[sc_at + 64 + 8 * j + r] = (uint8_t)mn;
        }
      }
      if (six) { /* Q6_K: ql, qh, 16 int8 scales, d */
        for (int s16 = 0; s16 < 16; s16++) blk[1536 + 8 * s16 + r] = row[192 + s16];
        memcpy(blk + 1664 + 2 * r, row + 208, 2);
      } else { /* Q4_K / Q5_K: d, dmin first */
        memcpy(blk + sc_at + 128 + 2 * r, row, 2);
        memcpy(blk + sc_at + 144 + 2 * r, row + 2, 2);
      }
    }
  }
}

void mq_x8_gguf_repack(mq_linear *l, uint8_t *dst) {
  int N = l->n_out, nb = l->n_in / 32;
  memset(dst, 0, mq_x8_gguf_bytes(l->gtype, N, l->n_in));
  if (is_k(l->gtype)) {
    repack_k(l, dst);
  } else if (l->gtype == MQ_GGML_TYPE_Q8_0) { /* Q8_0: f16 d, 32 int8 */
    for (int n = 0; n < N; n++)
      for (int b = 0; b < nb; b++) {
        const uint8_t *src = (const uint8_t *)l->w + ((size_t)n * nb + b) * 34;
        uint8_t *blk = dst + ((size_t)(n / 8) * nb + b) * MQ_X8_Q8_0_BLOCK;
        put_s8_block(blk, n % 8, src + 2);
        memcpy(blk + 256 + 2 * (n % 8), src, 2);
      }
  } else { /* Q4_0: f16 d, then byte i holds column i (low nibble) and i + 16, as the layout */
    for (int n = 0; n < N; n++)
      for (int b = 0; b < nb; b++) {
        const uint8_t *src = (const uint8_t *)l->w + ((size_t)n * nb + b) * 18;
        uint8_t *blk = dst + ((size_t)(n / 8) * nb + b) * MQ_X8_Q4_0_BLOCK;
        for (int i = 0; i < 16; i++) blk[mq_x8_nib_at(n % 8, i)] = src[2 + i];
        memcpy(blk + 128 + 2 * (n % 8), src, 2);
      }
  }
  l->w = dst;
  l->q.x8 = 1;
}

void mq_x8_gguf_dequant_row(const mq_linear *l, int n, float *dst) {
  int r = n % 8, cols;
  size_t tb = tile_block(l->gtype, &cols);
  int nblk = l->n_in / cols;
  const uint8_t *tile = (const uint8_t *)l->w + (size_t)(n / 8) * (size_t)nblk * tb;
  for (int b = 0; b < nblk; b++) {
    const uint8_t *blk = tile + (size_t)b * tb;
    float *y = dst + (size_t)b * cols;
    uint16_t h[2];
    switch (l->gtype) { /* as llama.cpp dequantizes each type */
    case MQ_GGML_TYPE_Q2_K: /* (d * sc) * u - dmin * m */
      memcpy(h, blk + 640 + 2 * r, 2);
      memcpy(h + 1, blk + 656 + 2 * r, 2);
      for (int k = 0; k < 256; k++) {
        uint8_t sm = blk[512 + 8 * (k / 16) + r];
        float dl = mq_f16_to_f32(h[0]) * (float)(sm & 15),
              ml = mq_f16_to_f32(h[1]) * (float)(sm >> 4);
        y[k] = dl * (float)mq_x8_q2k_code(blk, r, k) - ml;
      }
      break;
    case MQ_GGML_TYPE_Q3_K: /* (d * sc) * (u - 4) */
      memcpy(h, blk + 896 + 2 * r, 2);
      for (int k = 0; k < 256; k++)
        y[k] = mq_f16_to_f32(h[0]) * (float)(int8_t)blk[768 + 8 * (k / 16) + r] *
               (float)((int)mq_x8_q3k_code(blk, r, k) - 4);
      break;
    case MQ_GGML_TYPE_Q6_K: /* d * sc * (u - 32) */
      memcpy(h, blk + 1664 + 2 * r, 2);
      for (int k = 0; k < 256; k++)
        y[k] = mq_f16_to_f32(h[0]) * (float)(int8_t)blk[1536 + 8 * (k / 16) + r] *
               (float)((int)mq_x8_q6k_code(blk, r, k) - 32);
      break;
    case MQ_GGML_TYPE_Q4_K:
    case MQ_GGML_TYPE_Q5_K: { /* d * sc * u - dmin * m per 32 columns */
      int five = l->gtype == MQ_GGML_TYPE_Q5_K;
      size_t sc_at = five ? 1280 : 1024;
      memcpy(h, blk + sc_at + 128 + 2 * r, 2);
      memcpy(h + 1, blk + sc_at + 144 + 2 * r, 2);
      for (int k = 0; k < 256; k++) {
        float d1 = mq_f16_to_f32(h[0]) * (float)blk[sc_at + 8 * (k / 32) + r];
        float m1 = mq_f16_to_f32(h[1]) * (float)blk[sc_at + 64 + 8 * (k / 32) + r];
        unsigned u = five ? mq_x8_q5k_code(blk, r, k) : mq_x8_nib(blk + 128 * (k / 32), r, k % 32);
        y[k] = d1 * (float)u - m1;
      }
      break;
    }
    case MQ_GGML_TYPE_Q8_0: /* d * q */
      memcpy(h, blk + 256 + 2 * r, 2);
      for (int k = 0; k < 32; k++) y[k] = (float)(int8_t)blk[32 * (k / 4) + 4 * r + k % 4] * mq_f16_to_f32(h[0]);
      break;
    default: /* Q4_0: (u - 8) * d */
      memcpy(h, blk + 128 + 2 * r, 2);
      for (int k = 0; k < 32; k++) y[k] = (float)((int)mq_x8_nib(blk, r, k) - 8) * mq_f16_to_f32(h[0]);
    }
  }
}

typedef struct {
  tile_job base;
  const uint8_t *act; /* per token (stride bytes): the type's activation blocks */
  size_t stride;
  const int32_t *bsum; /* Q4_0: the blocks' code sums */
} gguf_x8_job;

static void gguf_call(const tile_job *b, size_t t, int t0, int T, float out[32]) {
  const gguf_x8_job *j = (const gguf_x8_job *)b;
  const mq_linear *l = b->l;
  const mq_kernels *k = b->ex->k;
  int K = l->n_in, cols;
  size_t tb = tile_block(l->gtype, &cols);
  const uint8_t *tile = (const uint8_t *)l->w + t * (size_t)(K / cols) * tb;
  const uint8_t *act = j->act + (size_t)t0 * j->stride;
  switch (l->gtype) {
  case MQ_GGML_TYPE_Q4_K: k->x8_q4_k(tile, K, act, j->stride, NULL, 0, T, out); break;
  case MQ_GGML_TYPE_Q5_K: k->x8_q5_k(tile, K, act, j->stride, NULL, 0, T, out); break;
  case MQ_GGML_TYPE_Q6_K: k->x8_q6_k(tile, K, act, j->stride, NULL, 0, T, out); break;
  case MQ_GGML_TYPE_Q3_K: k->x8_q3_k(tile, K, act, j->stride, NULL, 0, T, out); break;
  case MQ_GGML_TYPE_Q2_K: k->x8_q2_k(tile, K, act, j->stride, NULL, 0, T, out); break;
  case MQ_GGML_TYPE_Q8_0: k->x8_q8_0(tile, K, act, j->stride, NULL, 0, T, out); break;
  default: k->x8_q4_0(tile, K, act, j->stride, j->bsum + (size_t)t0 * (K / 32), K / 32, T, out);
  }
}

static void gguf_call2(const tile_job *b, size_t t, int t0, int T, float out[64]) {
  const gguf_x8_job *j = (const gguf_x8_job *)b;
  const mq_linear *l = b->l;
  int K = l->n_in, cols;
  size_t tb = tile_block(l->gtype, &cols), tst = (size_t)(K / cols) * tb; /* bytes a tile */
  b->ex->k->x8_gguf_2[l->gtype]((const uint8_t *)l->w + t * tst, tst, K,
                                j->act + (size_t)t0 * j->stride, j->stride,
                                j->bsum ? j->bsum + (size_t)t0 * (K / 32) : NULL, K / 32, T, out);
}

/* The two-tile kernel where the tier has one for the layer's type. */
static void gguf_job_init(gguf_x8_job *j, const mq_linear *l, float *y, int n_tok,
                          const mq_exec *ex, const uint8_t *act, size_t stride,
                          const int32_t *bsum) {
  /* Q4_0's and Q8_0's pairs take the activation blocks' code sums */
  int two = ex->k->x8_gguf_2[l->gtype] != NULL &&
            (bsum || (l->gtype != MQ_GGML_TYPE_Q4_0 && l->gtype != MQ_GGML_TYPE_Q8_0));
  *j = (gguf_x8_job){{l, y, n_tok, 1, ex, gguf_call, two ? gguf_call2 : NULL}, act, stride, bsum};
}

void mq_x8_gguf_forward(const mq_linear *l, const uint8_t *act, size_t stride, const int32_t *bsum,
                        int n_tok, float *y, const mq_exec *ex) {
  gguf_x8_job j;
  gguf_job_init(&j, l, y, n_tok, ex, act, stride, bsum);
  run(&j.base);
}

/* ---- several x8 layers reading one input (q/k/v, gate/up) ---- */

#define MULTI_MAX 16

typedef struct {
  int n;
  int first[MULTI_MAX + 1]; /* pool task where layer i's tiles start */
  tile_job *jobs[MULTI_MAX];
} multi_job;

static void multi_tasks(void *ctx, int begin, int end, int tid) {
  const multi_job *m = ctx;
  for (int i = 0; i < m->n; i++) {
    int b = begin > m->first[i] ? begin : m->first[i];
    int e = end < m->first[i + 1] ? end : m->first[i + 1];
    if (b < e) run_tiles(m->jobs[i], b - m->first[i], e - m->first[i], tid);
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
        (!ex->fast_a16 || l->q.perm || l->q.group_size != a->q.group_size)) /* U4 or S8 tiles */
      return 0;
    if (l->kind == MQ_W_GGUF && mq_gguf_act_type(l->gtype) != mq_gguf_act_type(a->gtype)) return 0;
  }
  return 1;
}

/* Shared by the two entries: xs[i] is layer i's input; `same` when they
 * are all one (prepared once), else each is prepared in its own part of
 * ex->gather. */
static int forward_multi(const mq_linear *const *ls, int n, const float *const *xs, int same,
                         int n_tok, float *const *ys, const mq_exec *ex) {
  if (!multi_ok(ls, n, ex)) return 0;
  int K = ls[0]->n_in;
  size_t part = 0; /* floats of ex->gather per input */
  if (!same) {
    for (int i = 0; i < n; i++) {
      size_t f = (size_t)mq_linear_gather_floats(ls[i]) * n_tok;
      part = f > part ? f : part;
    }
    part = (part + 15) & ~(size_t)15; /* parts stay 64-byte aligned */
    if (!ex->gather_floats || part * n > ex->gather_floats) return 0;
  }
  multi_job m = {.n = n};
  x8_job ij[MULTI_MAX];
  gguf_x8_job gj[MULTI_MAX];
  double macs = 0;
  const mq_linear *prep = ls[0]; /* GGUF: the activation blocks of the first layer's type */
  for (int j = 0; j < n; j++)    /* (Q4_0 or Q8_0 first: their block sums) */
    if (ls[j]->gtype == MQ_GGML_TYPE_Q4_0 || ls[j]->gtype == MQ_GGML_TYPE_Q8_0) prep = ls[j];
  for (int i = 0; i < n; i++) {
    const float *x = xs[i];
    float *gather = ex->gather + (same ? 0 : (size_t)i * part);
    if (ls[0]->kind == MQ_W_INT) { /* int8 blocks of x and (for mins) group sums, as int_forward */
      int gs = ls[0]->q.group_size, G = ls[0]->q.n_groups;
      float *gsum = gather + (size_t)n_tok * K;
      int8_t *xq = (int8_t *)(gsum + (size_t)n_tok * G);
      float *xd = (float *)(xq + (size_t)n_tok * K);
      int32_t *bsum = n_tok > 1 ? (int32_t *)(xd + (size_t)n_tok * (K / 32)) : NULL;
      if (same && i > 0) { /* prepared for layer 0 */
        x8_job_init(&ij[i], ls[i], ys[i], n_tok, ex, ij[0].xg, ij[0].gsum, ij[0].xq, ij[0].xd,
                    ij[0].bsum);
        m.jobs[i] = &ij[i].base;
        continue;
      }
      mq_a16_prepare(x, n_tok, K, gs, gsum, xq, xd, bsum, ex);
      x8_job_init(&ij[i], ls[i], ys[i], n_tok, ex, x, gsum, xq, xd, bsum);
      m.jobs[i] = &ij[i].base;
    } else { /* GGUF: prep's activation blocks */
      if (same && i > 0) {
        gguf_job_init(&gj[i], ls[i], ys[i], n_tok, ex, gj[0].act, gj[0].stride, gj[0].bsum);
        m.jobs[i] = &gj[i].base;
        continue;
      }
      const int32_t *bsum;
      mq_exec part_ex = *ex;
      part_ex.gather = gather;
      size_t stride = mq_linear_gguf_prepare(prep, x, n_tok, &part_ex, &bsum);
      gguf_job_init(&gj[i], ls[i], ys[i], n_tok, ex, (const uint8_t *)gather, stride, bsum);
      m.jobs[i] = &gj[i].base;
    }
  }
  m.first[0] = 0;
  for (int i = 0; i < n; i++) {
    m.first[i + 1] = m.first[i] + (int)n_tasks(ls[i]);
    macs += (double)ls[i]->n_out * K * n_tok;
  }
  mq_pool_for(mq_pool_if(ex->pool, macs), m.first[n], multi_tasks, &m);
  return 1;
}

int mq_x8_forward_multi(const mq_linear *const *ls, int n, const float *x, int n_tok,
                        float *const *ys, const mq_exec *ex) {
  const float *xs[MULTI_MAX];
  if (n > MULTI_MAX) return 0;
  for (int i = 0; i < n; i++) xs[i] = x;
  return forward_multi(ls, n, xs, 1, n_tok, ys, ex);
}

int mq_x8_forward_each(const mq_linear *const *ls, int n, const float *const *xs, int n_tok,
                       float *const *ys, const mq_exec *ex) {
  return forward_multi(ls, n, xs, 0, n_tok, ys, ex);
}
