/* ModelSlim layers of the quantizing writer: the tensor set and description
 * entries of msmodelslim's v1 saver (AscendV1Saver, modelslim.md §1.4, §3-4)
 * for each type, weights by msmodelslim's own round-to-nearest recipe
 * (symmetric: absmax / (2^(b-1) - 1)), and W8A8's static activation scale and
 * offset calibrated on random inputs (see calib_range).
 *
 *   W8A8          weight I8 [N,K], quant_bias I32 [N], input_scale F32 [1],
 *                 input_offset F32 [1], deq_scale [N] (F32 when the model is
 *                 bf16, else I64 = fp32 bits sign-extended), bias F32 (FLOAT)
 *   W8A8_DYNAMIC  weight I8 [N,K], weight_scale F32 [N,1] (per group [N,K/gs]),
 *                 weight_offset zeros of the same shape, bias F32 (FLOAT)
 *   W4A4_DYNAMIC  as W8A8_DYNAMIC, int4 values one per byte
 *   W4A8_DYNAMIC  weight I8 [N/2,K] (two int4 along N, low nibble = even row),
 *                 weight_scale/weight_offset F32 [N,1], scale_bias F32 8 s sum(W):
 *                 [N,1], or [N,16] per K/16 chunk for o_proj/down_proj/w2
 *   W8A8_MXFP8    weight F8_E4M3 [N,K], weight_scale U8 [N,K/32] = shared_exp + 127
 *   W8A16         weight I8 [N,K], weight_scale/weight_offset F32 [N,1] or [N,K/gs];
 *                 the reader dequantizes (q + offset) * scale, so --asym writes
 *                 offset = -zero point */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/numconv.h"
#include "quant/rtn.h"
#include "quant/writer_int.h"

enum { CALIB_TOKENS = 64 };

static const char *ms_type(wsch s) {
  switch (s) {
  case WS_W8A8: return "W8A8";
  case WS_W8A8_DYN: return "W8A8_DYNAMIC";
  case WS_W4A4_DYN: return "W4A4_DYNAMIC";
  case WS_W4A8_DYN: return "W4A8_DYNAMIC";
  case WS_MXFP8: return "W8A8_MXFP8";
  case WS_A16: return "W8A16";
  default: return "FLOAT";
  }
}

/* Types with msmodelslim's per-group variant take --group-size. */
static int per_group(const job *J, const qlayer *L) {
  return J->q.gs > 0 && (L->sch == WS_W8A8_DYN || L->sch == WS_W4A4_DYN || L->sch == WS_A16);
}

/* o_proj, down_proj, w2: scale_bias summed per K/16 chunk (tp up to 16). */
static int row_parallel(const qlayer *L) {
  return (L->grp == G_ATTN && L->role == 3) || (L->grp != G_ATTN && L->role == 2);
}

int mq_wr_ms_validate(const job *J, const qlayer *L, mq_err *err) {
  int64_t N = L->w->shape[0], K = L->w->shape[1];
  if (per_group(J, L) && K % J->q.gs)
    return mq_errf(err, MQ_ERR_ARG,
                   "%s: group size %d does not divide K = %lld (choose a divisor, or 0 for per "
                   "channel)",
                   L->name, J->q.gs, (long long)K);
  if (L->sch == WS_MXFP8 && K % 32)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: W8A8_MXFP8 needs K %% 32 == 0 (blocks of 32 along K), K = %lld; leave it "
                   "float with --mix 'REGEX=FLOAT' or give it another type",
                   L->name, (long long)K);
  if (L->sch == WS_W4A8_DYN && N % 2)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: W4A8_DYNAMIC packs two rows per byte and needs an even N, N = %lld",
                   L->name, (long long)N);
  if (L->sch == WS_W4A8_DYN && row_parallel(L) && K % 16)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: W4A8_DYNAMIC scale_bias sums 16 chunks of K, K = %lld is not a multiple "
                   "of 16",
                   L->name, (long long)K);
  return MQ_OK;
}

/* ---- static activation calibration (W8A8) ---- */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double gauss(uint64_t *s) { /* Box-Muller */
  double u = ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
  double v = (double)(splitmix(s) >> 11) / 9007199254740992.0;
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static const mq_tensor *find_vec(const job *J, const char *name, int64_t n) {
  const mq_tensor *t = mq_ckpt_find(&J->ck, name);
  return t && t->n_dims == 1 && t->shape[0] == n && mq_dtype_is_float(t->dtype) &&
                 t->dtype != MQ_DTYPE_F64
             ? t
             : NULL;
}

/* y [M, N] = x [M, K] W^T (+ b) with a float weight tensor [N, K]. */
static float *matmul_t(const float *x, int M, const mq_tensor *wt, const mq_tensor *bt) {
  int64_t N = wt->shape[0], K = wt->shape[1];
  float *W = mq_wr_load_f32(wt), *b = bt ? mq_wr_load_f32(bt) : NULL;
  float *y = malloc((size_t)M * (size_t)N * sizeof *y);
  if (W && y && (!bt || b))
    for (int m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double acc = b ? b[n] : 0.0;
        for (int64_t k = 0; k < K; k++) acc += (double)x[(size_t)m * K + k] * W[n * K + k];
        y[(size_t)m * N + n] = (float)acc;
      }
  else
    free(y), y = NULL;
  free(W), free(b);
  return y;
}

/* The source's float weight (and bias) of the sibling module `sib` of L
 * (same prefix, last component replaced). */
static const mq_tensor *sibling(const job *J, const qlayer *L, const char *sib,
                                const mq_tensor **bias) {
  char n[300];
  const char *dot = strrchr(L->name, '.');
  int pl = dot ? (int)(dot - L->name) : 0;
  snprintf(n, sizeof n, "%.*s.%s.weight", pl, L->name, sib);
  const mq_tensor *t = mq_ckpt_find(&J->ck, n);
  if (!t || t->n_dims != 2 || !mq_dtype_is_float(t->dtype) || t->dtype == MQ_DTYPE_F64) return NULL;
  snprintf(n, sizeof n, "%.*s.%s.bias", pl, L->name, sib);
  *bias = find_vec(J, n, t->shape[0]);
  return t;
}

/* Range [lo, hi] of L's input over CALIB_TOKENS random tokens. A block input
 * is rmsnorm output: N(0,1) per channel times the norm weight (plus an
 * anti-outlier norm bias if present). o_proj sees attention averages of
 * v_proj outputs, whose range is that of v_proj's outputs; down_proj (w2)
 * sees silu(gate) * up of its own gate/up projections. Every layer behind one
 * norm draws the same tokens (seeded by --seed and the norm's name), so q/k/v
 * and gate/up get identical scales, as readers require of fused shards. */
static int calib_range(const job *J, const qlayer *L, float *lo, float *hi, mq_err *err) {
  const char *norm = L->grp == G_ATTN ? "input_layernorm" : "post_attention_layernorm";
  const mq_tensor *bw = NULL, *bb = NULL, *w1 = NULL, *w3 = NULL, *b1 = NULL, *b3 = NULL;
  int attn_out = L->grp == G_ATTN && L->role == 3, ffn_out = L->grp != G_ATTN && L->role == 2;
  int64_t H = L->w->shape[1]; /* width of the normed input */
  if (attn_out && (w1 = sibling(J, L, "v_proj", &b1))) H = w1->shape[1];
  if (ffn_out) {
    int mix = L->grp == G_EXPERT && !strcmp(strrchr(L->name, '.') + 1, "w2");
    w1 = sibling(J, L, mix ? "w1" : "gate_proj", &b1);
    w3 = sibling(J, L, mix ? "w3" : "up_proj", &b3);
    if (w1 && w3 && w1->shape[1] == w3->shape[1] && w1->shape[0] == w3->shape[0] &&
        w1->shape[0] == L->w->shape[1])
      H = w1->shape[1];
    else
      w1 = w3 = NULL;
  }
  char n[300];
  snprintf(n, sizeof n, "model.layers.%d.%s.weight", L->layer, norm);
  bw = find_vec(J, n, H);
  snprintf(n, sizeof n, "model.layers.%d.%s.bias", L->layer, norm);
  bb = find_vec(J, n, H);
  float *g = bw ? mq_wr_load_f32(bw) : NULL, *gb = bb ? mq_wr_load_f32(bb) : NULL;
  float *h = malloc((size_t)CALIB_TOKENS * (size_t)H * sizeof *h), *x = NULL, *u = NULL;
  int64_t nx = 0;
  int rc = h && (!bw || g) && (!bb || gb) ? MQ_OK : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  snprintf(n, sizeof n, "model.layers.%d.%s", L->layer, norm);
  uint64_t s = mq_wr_seed(J->o->seed, n);
  for (int64_t i = 0; rc == MQ_OK && i < CALIB_TOKENS * H; i++)
    h[i] = (float)gauss(&s) * (g ? g[i % H] : 1.0f) + (gb ? gb[i % H] : 0.0f);
  if (rc == MQ_OK && (attn_out || ffn_out) && w1) {
    x = matmul_t(h, CALIB_TOKENS, w1, b1);
    u = w3 ? matmul_t(h, CALIB_TOKENS, w3, b3) : NULL;
    nx = (int64_t)CALIB_TOKENS * w1->shape[0];
    if (!x || (w3 && !u)) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; rc == MQ_OK && u && i < nx; i++) /* SwiGLU */
      x[i] = x[i] / (1.0f + expf(-x[i])) * u[i];
  } else if (rc == MQ_OK && (attn_out || ffn_out)) { /* no producer found: unit Gaussian */
    nx = (int64_t)CALIB_TOKENS * L->w->shape[1];
    if (!(x = malloc((size_t)nx * sizeof *x))) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; rc == MQ_OK && i < nx; i++) x[i] = (float)gauss(&s);
  } else {
    x = h, h = NULL, nx = (int64_t)CALIB_TOKENS * H;
  }
  *lo = INFINITY, *hi = -INFINITY;
  for (int64_t i = 0; rc == MQ_OK && i < nx; i++) *lo = fminf(*lo, x[i]), *hi = fmaxf(*hi, x[i]);
  if (rc == MQ_OK && !(isfinite(*lo) && isfinite(*hi)))
    rc = mq_errf(err, MQ_ERR_FORMAT, "%s: calibration inputs are not finite", L->name);
  free(g), free(gb), free(h), free(x), free(u);
  return rc;
}

/* ---- tensors ---- */

static int add(mq_st_writer *w, json_t *desc, const qlayer *L, const char *sfx, const char *type,
               mq_dtype dt, int nd, int64_t d0, int64_t d1, const void *data, mq_err *err) {
  char n[300];
  snprintf(n, sizeof n, "%s.%s", L->name, sfx);
  int rc = mq_wr_add(w, L->name, sfx, dt, nd, d0, d1, data, err);
  if (rc == MQ_OK && json_object_set_new(desc, n, json_string(type)))
    rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  return rc;
}

/* MX: element = e4m3(W / 2^e), e = floor(log2 amax) - 8 over each block of
 * 32 along K, clamped to [-127, 127] (OCP; 0 blocks get -127); U8 = e + 127. */
static void mxfp8_row(const float *w, int64_t K, uint8_t *codes, uint8_t *exps) {
  for (int64_t b = 0; b < K / 32; b++) {
    float amax = 0.0f;
    for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(w[b * 32 + k]));
    int e = mq_mx_shared_exp(amax);
    exps[b] = (uint8_t)(e + 127);
    for (int k = 0; k < 32; k++) codes[b * 32 + k] = mq_f32_to_e4m3(ldexpf(w[b * 32 + k], -e));
  }
}

static int emit_mxfp8(mq_st_writer *w, json_t *desc, const qlayer *L, const float *W, mq_err *err) {
  int64_t N = L->w->shape[0], K = L->w->shape[1];
  uint8_t *c = malloc((size_t)(N * K)), *e = malloc((size_t)(N * (K / 32)) + 1);
  int rc = c && e ? MQ_OK : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int64_t n = 0; rc == MQ_OK && n < N; n++)
    mxfp8_row(W + n * K, K, c + n * K, e + n * (K / 32));
  if (rc == MQ_OK) rc = add(w, desc, L, "weight", "W8A8_MXFP8", MQ_DTYPE_F8_E4M3, 2, N, K, c, err);
  if (rc == MQ_OK)
    rc = add(w, desc, L, "weight_scale", "W8A8_MXFP8", MQ_DTYPE_U8, 2, N, K / 32, e, err);
  free(c), free(e);
  return rc;
}

/* W8A8: int8 per-channel weights, per-tensor activation scale and offset,
 * deq_scale = s_x s_w, quant_bias = round(bias / deq - o_x sum_k W_q). */
static int emit_w8a8(const job *J, mq_st_writer *w, json_t *desc, const qlayer *L, const int8_t *q,
                     const float *sw, const float *bias, mq_err *err) {
  int64_t N = L->w->shape[0], K = L->w->shape[1];
  float lo, hi;
  int rc = calib_range(J, L, &lo, &hi, err);
  if (rc) return rc;
  /* msmodelslim asymmetric int8: range widened to 0, offset integral and signed */
  float mn = fminf(lo, 0.0f), mx = fmaxf(hi, 0.0f);
  float sx = fmaxf(mx / 255.0f - mn / 255.0f, FLT_EPSILON);
  float ox = rintf(-mn / sx) - 128.0f;
  float *deq = malloc((size_t)N * sizeof *deq);
  int32_t *qb = malloc((size_t)N * sizeof *qb);
  int64_t *d64 = malloc((size_t)N * sizeof *d64);
  if (!deq || !qb || !d64) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int64_t n = 0; rc == MQ_OK && n < N; n++) {
    int64_t sum = 0;
    for (int64_t k = 0; k < K; k++) sum += q[n * K + k];
    deq[n] = sx * sw[n];
    float v = rintf((bias ? bias[n] : 0.0f) / deq[n] - (float)sum * ox);
    if (!(fabsf(v) < 2147483520.0f))
      rc = mq_errf(err, MQ_ERR_FORMAT, "%s: quant_bias[%lld] = %g does not fit int32", L->name,
                   (long long)n, v);
    qb[n] = (int32_t)v;
    d64[n] = (int64_t)(int32_t)mq_f32_to_bits(deq[n]); /* sign-extended fp32 bits */
  }
  if (rc == MQ_OK) rc = add(w, desc, L, "weight", "W8A8", MQ_DTYPE_I8, 2, N, K, q, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "quant_bias", "W8A8", MQ_DTYPE_I32, 1, N, 0, qb, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "input_scale", "W8A8", MQ_DTYPE_F32, 1, 1, 0, &sx, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "input_offset", "W8A8", MQ_DTYPE_F32, 1, 1, 0, &ox, err);
  if (rc == MQ_OK)
    rc = J->model_bf16 ? add(w, desc, L, "deq_scale", "W8A8", MQ_DTYPE_F32, 1, N, 0, deq, err)
                       : add(w, desc, L, "deq_scale", "W8A8", MQ_DTYPE_I64, 1, N, 0, d64, err);
  free(deq), free(qb), free(d64);
  return rc;
}

/* W4A8_DYNAMIC: int4 packed two per byte along N, scale_bias checksum. */
static int emit_w4a8(mq_st_writer *w, json_t *desc, const qlayer *L, const int8_t *sq,
                     const float *s, const float *off, mq_err *err) {
  const int64_t N = L->w->shape[0], K = L->w->shape[1];
  const char *type = "W4A8_DYNAMIC";
  const int chunks = row_parallel(L) ? 16 : 1;
  uint8_t *pk = malloc((size_t)(N / 2 * K) + 1);
  float *sb = malloc((size_t)(N * chunks) * sizeof *sb);
  int rc = pk && sb ? MQ_OK : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int64_t j = 0; rc == MQ_OK && j < N / 2; j++) /* low nibble = even row */
    for (int64_t k = 0; k < K; k++)
      pk[j * K + k] = (uint8_t)(((sq[(2 * j + 1) * K + k] & 0xF) << 4) | (sq[2 * j * K + k] & 0xF));
  for (int64_t n = 0; rc == MQ_OK && n < N; n++)
    for (int c = 0; c < chunks; c++) {
      double acc = 0; /* 8 * sum_k W_q s over the chunk */
      for (int64_t k = c * (K / chunks); k < (c + 1) * (K / chunks); k++)
        acc += (double)((float)sq[n * K + k] * s[n]);
      sb[n * chunks + c] = (float)(8.0 * acc);
    }
  if (rc == MQ_OK) rc = add(w, desc, L, "weight", type, MQ_DTYPE_I8, 2, N / 2, K, pk, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "weight_scale", type, MQ_DTYPE_F32, 2, N, 1, s, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "weight_offset", type, MQ_DTYPE_F32, 2, N, 1, off, err);
  if (rc == MQ_OK) rc = add(w, desc, L, "scale_bias", type, MQ_DTYPE_F32, 2, N, chunks, sb, err);
  free(pk), free(sb);
  return rc;
}

int mq_wr_ms_emit(job *J, mq_st_writer *w, json_t *desc, const qlayer *L, mq_err *err) {
  const int64_t N = L->w->shape[0], K = L->w->shape[1];
  const char *type = ms_type(L->sch);
  const int b = L->bits, gs = per_group(J, L) ? J->q.gs : (int)K;
  const int64_t G = K / gs;
  const int asym = L->sch == WS_A16 && !J->q.sym;
  float *W = mq_wr_load_f32(L->w), *s = malloc((size_t)(N * G) * sizeof *s);
  float *off = calloc((size_t)(N * G), sizeof *off), *bias = L->b ? mq_wr_load_f32(L->b) : NULL;
  uint8_t *qv = malloc((size_t)(N * K)), *z = malloc((size_t)(N * G));
  int8_t *sq = (int8_t *)qv;
  int rc = W && s && off && qv && z && (!L->b || bias)
               ? MQ_OK
               : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  if (rc == MQ_OK && L->sch != WS_MXFP8) {
    mq_rtn_params p = {b, gs, (int)G, NULL, asym ? MQ_RTN_ASYM : MQ_RTN_SYM_MS, MQ_DTYPE_F32};
    rc = mq_rtn_quantize(W, N, K, &p, qv, s, z, err);
    /* signed values; asym: offset = -(z - 2^(b-1)), so (q + offset) s = (code - z) s */
    for (int64_t i = 0; rc == MQ_OK && i < N * K; i++)
      sq[i] = (int8_t)((int)qv[i] - (1 << (b - 1)));
    for (int64_t i = 0; rc == MQ_OK && asym && i < N * G; i++)
      off[i] = (float)((1 << (b - 1)) - z[i]);
  }
  if (rc == MQ_OK) switch (L->sch) {
    case WS_MXFP8: rc = emit_mxfp8(w, desc, L, W, err); break;
    case WS_W8A8: rc = emit_w8a8(J, w, desc, L, sq, s, bias, err); break;
    case WS_W4A8_DYN: rc = emit_w4a8(w, desc, L, sq, s, off, err); break;
    default: /* W8A8_DYNAMIC, W4A4_DYNAMIC (one int4 per byte), W8A16 */
      rc = add(w, desc, L, "weight", type, MQ_DTYPE_I8, 2, N, K, sq, err);
      if (rc == MQ_OK) rc = add(w, desc, L, "weight_scale", type, MQ_DTYPE_F32, 2, N, G, s, err);
      if (rc == MQ_OK) rc = add(w, desc, L, "weight_offset", type, MQ_DTYPE_F32, 2, N, G, off, err);
    }
  /* the float bias, tagged FLOAT (for W8A8 it is also folded into quant_bias) */
  if (rc == MQ_OK && bias) rc = add(w, desc, L, "bias", "FLOAT", MQ_DTYPE_F32, 1, N, 0, bias, err);
  free(W), free(s), free(off), free(bias), free(qv), free(z);
  return rc == MQ_OK ? rc : mq_err_prefix(err, "%s: ", L->name);
}

/* msmodelslim's QUANT_TYPE_PRIORITY: fewer bits win; W4A8_DYNAMIC is hidden
 * (never recorded), FLOAT counts for Linear layers left float. */
static int priority(const char *t) {
  static const char *const k[] = {
      "FLOAT",     "W16A16S",          "W8A16",      "W8A8_DYNAMIC", "W8A8_MIX",
      "W8A8",      "WFP8AFP8_DYNAMIC", "W8A8_MXFP8", "W4A8_MXFP",    "W4A4_DYNAMIC",
      "W4A4_MXFP4"};
  for (int i = 0; i < (int)(sizeof k / sizeof k[0]); i++)
    if (!strcmp(t, k[i])) return i;
  return -1;
}

int mq_wr_ms_finish(const job *J, json_t *desc) {
  const char *mqt = "Unknown"; /* the saver's initial value */
  int best = -1, gsz = 0;
  for (int i = 0; i < J->nL + J->nflin + 1; i++) {
    const char *t;
    if (i < J->nL) {
      const qlayer *L = &J->L[i];
      t = ms_type(L->sch);
      if (L->sch == WS_MXFP8)
        gsz = 32; /* the last per-group quantizer sets it */
      else if (per_group(J, L))
        gsz = J->q.gs;
    } else if (i < J->nL + J->nflin || mq_ckpt_find(&J->ck, "lm_head.weight")) {
      t = "FLOAT"; /* routers, lm_head: float nn.Linear modules */
    } else {
      continue;
    }
    int p = priority(t);
    if (p > best) best = p, mqt = t;
  }
  int rc = json_object_set_new(desc, "version", json_string("1.0.0"));
  rc |= json_object_set_new(desc, "model_quant_type", json_string(mqt));
  rc |= json_object_set_new(desc, "metadata", json_object());
  rc |= json_object_set_new(desc, "group_size", json_integer(gsz));
  rc |= json_object_set_new(desc, "optional", json_object());
  return rc;
}
