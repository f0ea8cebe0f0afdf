/* compressed-tensors adapters (formats.md §4).
 *  pack-quantized: weight_packed I32 [N, Kw] of offset-binary codes
 *    u = q + 2^(b-1) along K, weight_shape [2] = [N, K], weight_scale
 *    [N, G] / [N, 1] / [1], optional weight_zero_point I32 packed along N
 *    (asymmetric) and weight_g_idx [K] (actorder "group"). Two packings
 *    exist: element-aligned (32/b codes per word; <= 0.17) and dense (a
 *    bit-stream; >= 0.18); they differ only for b in {3, 5, 6, 7} and are
 *    told apart by Kw. 4- and 8-bit rows are used in place (zero copy).
 *  int-/naive-quantized: I8 weight [N, K] (int4 values unpacked), scale,
 *    optional I8 zero point: used in place as signed codes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "quant/adapt.h"

static const mq_dtype k_i32[] = {MQ_DTYPE_I32, MQ_DTYPE_U32, MQ_DTYPE_INVALID};
static const mq_dtype k_shape[] = {MQ_DTYPE_I64, MQ_DTYPE_I32, MQ_DTYPE_INVALID};
/* I64 scales: fp32 bit patterns widened to int64, as the W4A8 MoE checkpoints
 * converted for Ascend store them (modelslim.md §3.7) */
static const mq_dtype k_scale[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32, MQ_DTYPE_I64,
                                   MQ_DTYPE_INVALID};

static float scale_at(const mq_tensor *t, uint64_t i) {
  if (t->dtype != MQ_DTYPE_I64) return mq_adapt_float_at(t, i);
  uint32_t lo = (uint32_t)mq_adapt_int_at(t, i);
  float f;
  memcpy(&f, &lo, 4);
  return f;
}
static const mq_dtype k_i8[] = {MQ_DTYPE_I8, MQ_DTYPE_INVALID};
static const mq_dtype k_zp_int[] = {MQ_DTYPE_I8, MQ_DTYPE_I32, MQ_DTYPE_INVALID};

/* Element e of a packed row starting at word `base` (aligned or dense). */
static unsigned packed_at(const mq_tensor *t, uint64_t base, int b, int dense, int e) {
  int wi, sh;
  if (dense) wi = (b * e) / 32, sh = (b * e) % 32;
  else wi = e / (32 / b), sh = b * (e % (32 / b));
  uint64_t v = (uint32_t)mq_adapt_int_at(t, base + (uint64_t)wi) >> sh;
  if (dense && sh + b > 32) v |= (uint64_t)(uint32_t)mq_adapt_int_at(t, base + (uint64_t)wi + 1) << (32 - sh);
  return (unsigned)(v & ((1u << b) - 1));
}

/* Words of one packed run of n b-bit values: aligned and dense counts. */
static int64_t words_aligned(int64_t n, int b) { return (n + 32 / b - 1) / (32 / b); }
static int64_t words_dense(int64_t n, int b) { return (n * b + 31) / 32; }

/* Scales of any strategy into [N, G]. */
static int read_scales(struct mq_model *m, const char *name, const mq_lspec *s, int N, int G,
                       mq_linear *l, const mq_tensor **out, mq_err *err) {
  char tn[320];
  snprintf(tn, sizeof tn, "%s.weight_scale", name);
  const mq_tensor *t = mq_ckpt_find(&m->ckpt, tn);
  int per_tensor = t && t->n_elems == 1;
  int rc = per_tensor ? mq_adapt_tensor(m, name, s, "weight_scale", k_scale, t->n_dims, -1, -1, 0, &t, err)
                      : mq_adapt_tensor(m, name, s, "weight_scale", k_scale, 2, N, G, 0, &t, err);
  if (rc) return rc;
  if (t->dtype == MQ_DTYPE_I64)
    for (uint64_t i = 0; i < t->n_elems; i++) {
      int64_t v = mq_adapt_int_at(t, i);
      if (v != (int64_t)(int32_t)(uint32_t)v && v != (int64_t)(uint32_t)v)
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s (%s): int64 weight_scale[%llu] = 0x%016llx does not hold fp32 bits "
                       "(its high 32 bits are garbage)",
                       name, s->scheme, (unsigned long long)i, (unsigned long long)v);
    }
  float *sc = (float *)l->q.scales;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < G; g++)
      sc[(size_t)n * G + g] = scale_at(t, per_tensor ? 0 : (uint64_t)n * G + g);
  *out = t;
  return MQ_OK;
}

static int ct_packed(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                     mq_linear *l, mq_err *err) {
  int b = s->bits, gs = s->group_size <= 0 ? K : s->group_size, G = (K + gs - 1) / gs, rc;
  const mq_tensor *wp, *ws, *zp = NULL, *gi, *sc;
  if ((rc = mq_adapt_tensor(m, name, s, "weight_packed", k_i32, 2, N, -1, 0, &wp, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "weight_shape", k_shape, 1, 2, -1, 1, &ws, err)))
    return rc;
  if (ws && (mq_adapt_int_at(ws, 0) != N || mq_adapt_int_at(ws, 1) != K))
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (%s): weight_shape is [%lld, %lld], expected [%d, %d]",
                   name, s->scheme, (long long)mq_adapt_int_at(ws, 0), (long long)mq_adapt_int_at(ws, 1),
                   N, K);
  int64_t kw = wp->shape[1], wa = words_aligned(K, b), wd = words_dense(K, b);
  if (kw != wa && kw != wd)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "layer %s (%s): weight_packed has %lld words per row, expected %lld (aligned "
                   "packing) or %lld (dense packing) for K = %d at %d bits",
                   name, s->scheme, (long long)kw, (long long)wa, (long long)wd, K, b);
  int dense = kw == wd && kw != wa;
  if (!s->sym) {
    int64_t za = words_aligned(N, b), zd = words_dense(N, b);
    if ((rc = mq_adapt_tensor(m, name, s, "weight_zero_point", k_i32, 2, -1, G, 0, &zp, err))) return rc;
    if (zp->shape[0] != za && zp->shape[0] != zd)
      return mq_errf(err, MQ_ERR_FORMAT,
                     "layer %s (%s): weight_zero_point has %lld rows, expected %lld or %lld (N = %d "
                     "packed at %d bits)",
                     name, s->scheme, (long long)zp->shape[0], (long long)za, (long long)zd, N, b);
  }
  if ((rc = mq_adapt_tensor(m, name, s, "weight_g_idx", k_i32, 1, K, -1, !s->g_idx, &gi, err))) return rc;
  int32_t *perm = NULL;
  if (gi && (rc = mq_adapt_perm(m, name, gi, K, gs, G, &perm, err))) return rc;
  /* Rows already in the canonical layout (4 or 8 bits, no padding, no
   * permutation) are used where they are, in the mapping. */
  int in_place = !perm && (b == 4 || b == 8) && (int64_t)K * b == kw * 32;
  mq_codes codes = b == 8 ? MQ_CODES_U8 : MQ_CODES_U4;
  if ((rc = mq_adapt_alloc(m, name, l, N, K, b, gs, codes, 1, in_place ? wp->data : NULL, err)))
    return rc;
  l->q.perm = perm;
  if (!in_place) {
    for (int n = 0; n < N; n++)
      for (int j = 0; j < K; j++)
        mq_adapt_put(l, n, j, packed_at(wp, (uint64_t)n * kw, b, dense, perm ? perm[j] : j));
  }
  if ((rc = read_scales(m, name, s, N, G, l, &sc, err))) return rc;
  int zdense = zp && zp->shape[0] == words_dense(N, b) && zp->shape[0] != words_aligned(N, b);
  float *mins = (float *)l->q.mins;
  for (int g = 0; g < G; g++) {
    for (int n = 0; n < N; n++) {
      /* zero points are packed along N: column g, element n */
      unsigned z = 1u << (b - 1);
      if (zp) {
        int e = n, wi, sh;
        if (zdense) wi = (b * e) / 32, sh = (b * e) % 32;
        else wi = e / (32 / b), sh = b * (e % (32 / b));
        uint64_t v = (uint32_t)mq_adapt_int_at(zp, (uint64_t)wi * G + g) >> sh;
        if (zdense && sh + b > 32) v |= (uint64_t)(uint32_t)mq_adapt_int_at(zp, (uint64_t)(wi + 1) * G + g) << (32 - sh);
        z = (unsigned)(v & ((1u << b) - 1));
      }
      mins[(size_t)n * G + g] = -(float)z * l->q.scales[(size_t)n * G + g];
    }
  }
  return mq_adapt_bias(m, name, N, &l->bias, err);
}

/* W4A8 with activation clip: name.bias is not a linear bias but the term the
 * Ascend A8W4 kernel adds to compensate for computing with x - 8 (it splits
 * each int8 activation into two int4 halves): b[n] = 8 * s[n] * sum_k W[n,k],
 * written by the converter in bf16. The kernel computes
 *   y = s_x * (s * sum_k (x_q - 8) W + b) = s_x * (s * sum_k x_q W + c),
 * c = b - 8 s sum(W); c is kept (it is the converter's rounding) so the
 * result is the NPU's. A c that is not small next to b means the tensor is
 * something else: warned, as the result then departs from the producer's. */
static int clip_bias(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                     mq_linear *l, mq_err *err) {
  static const mq_dtype k_float[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32, MQ_DTYPE_INVALID};
  const mq_tensor *t;
  int rc = mq_adapt_tensor(m, name, s, "bias", k_float, 1, N, -1, 0, &t, err);
  if (rc) return rc;
  float *c = mq_model_alloc(m, (size_t)N * sizeof(float));
  if (!c) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  const mq_qint *q = &l->q;
  double worst = 0, bmax = 0;
  int worst_n = 0;
  for (int n = 0; n < N; n++) {
    double want = 0;
    for (int k = 0; k < K; k++)
      want += 8.0 * q->scales[(size_t)n * q->n_groups + k / q->group_size] *
              (int8_t)q->data[(size_t)n * K + k];
    double b = mq_adapt_float_at(t, (uint64_t)n);
    c[n] = (float)(b - want);
    bmax = fmax(bmax, fabs(b));
    if (fabs(b - want) > worst) worst = fabs(b - want), worst_n = n;
  }
  /* the converter's bf16 rounding leaves |c| <= 2^-8 |b| */
  if (worst > 0.01 * bmax + 1e-6)
    mq_model_warn(m, "layer %s: bias of the W4A8 clip kernel is not 8 * scale * sum(W) (row %d off "
                     "by %g, largest bias %g); it is applied as the kernel would",
                  name, worst_n, worst, bmax);
  l->qcorr = c;
  l->bias = NULL;
  return MQ_OK;
}

static int ct_int(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                  mq_linear *l, mq_err *err) {
  int gs = s->group_size <= 0 ? K : s->group_size, G = (K + gs - 1) / gs, rc;
  const mq_tensor *w, *zp, *sc;
  if ((rc = mq_adapt_tensor(m, name, s, "weight_zero_point", k_zp_int, 2, N, G, 1, &zp, err)))
    return rc;
  if (s->sym) zp = NULL; /* older writers kept an unused zero point */
  const uint8_t *codes;
  if (s->bits == 4) { /* W4A8: one value per byte, or two per byte along N (Ascend) */
    if ((rc = mq_adapt_int4(m, name, s, N, K, &codes, err))) return rc;
  } else if ((rc = mq_adapt_tensor(m, name, s, "weight", k_i8, 2, N, K, 0, &w, err))) {
    return rc;
  } else if ((codes = w->data), s->bits < 8) { /* one value per byte: it must fit the declared bits */
    int lo = -(1 << (s->bits - 1)), hi = (1 << (s->bits - 1)) - 1;
    for (uint64_t i = 0; i < w->n_elems; i++) {
      int v = (int8_t)w->data[i];
      if (v < lo || v > hi)
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s (%s): weight value %d at [%llu, %llu] is outside the %d-bit range "
                       "[%d, %d]",
                       name, s->scheme, v, (unsigned long long)(i / (uint64_t)K),
                       (unsigned long long)(i % (uint64_t)K), s->bits, lo, hi);
    }
  }
  /* signed bytes are the canonical S8 layout: used in place */
  if ((rc = mq_adapt_alloc(m, name, l, N, K, s->bits, gs, MQ_CODES_S8, zp != NULL, codes, err)))
    return rc;
  if ((rc = read_scales(m, name, s, N, G, l, &sc, err))) return rc;
  if (zp)
    for (int n = 0; n < N; n++)
      for (int g = 0; g < G; g++) {
        int64_t z = mq_adapt_int_at(zp, (uint64_t)n * G + g);
        if (zp->dtype == MQ_DTYPE_I32) z = (int32_t)z;
        ((float *)l->q.mins)[(size_t)n * G + g] = -(float)z * l->q.scales[(size_t)n * G + g];
      }
  if (s->act_clip) return clip_bias(m, name, s, N, K, l, err);
  return mq_adapt_bias(m, name, N, &l->bias, err);
}

int mq_adapt_ct(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                mq_linear *l, mq_err *err) {
  /* Activation quantization: dynamic per-token int8 (W8A8, W4A8) as vLLM
   * computes it; static and float activations are not computed yet. */
  if (s->act != MQ_ACT_FLOAT && !(s->fmt == MQ_FMT_CT_INT && s->act == MQ_ACT_INT8_TOKEN))
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "layer %s: scheme %s with %s activations is not supported yet (dynamic per-token "
                   "int8 is)",
                   name, s->scheme, mq_act_name(s->act));
  switch (s->fmt) {
  case MQ_FMT_CT_PACKED: return ct_packed(m, name, s, N, K, l, err);
  case MQ_FMT_CT_INT: {
    int rc = ct_int(m, name, s, N, K, l, err);
    l->act = s->act; /* scale max|x|/127, codes rne(x * 127/max|x|) */
    return rc;
  }
  default:
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "layer %s: compressed-tensors %s weights are not supported yet",
                   name, s->scheme);
  }
}
