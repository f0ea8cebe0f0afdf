/* ModelSlim adapter (modelslim.md §3-4): per-layer tensors as the v1 saver
 * writes them, into the canonical forms:
 *   W8A8          weight I8 [N,K], input_scale/input_offset [1], deq_scale [N]
 *                 (F32, or I64 carrying the fp32 bits sign-extended), quant_bias
 *                 I32 [N] (the float bias is already folded in)
 *   W8A8_DYNAMIC  weight I8 [N,K], weight_scale [N,1] or [N,K/gs], weight_offset zeros
 *   W4A4_DYNAMIC  weight I8 [N,K] one int4 per byte, or [N/2,K] two per byte along N
 *   W4A8_DYNAMIC  weight I8 [N/2,K] two int4 per byte along N (or [N,K]), weight_scale
 *                 [N,1], optional weight_scale_second [N,K/gs]; scale_bias is a
 *                 checksum 8 s sum(W) ([N,1], or [N,16] per K chunk), not math
 *   W8A8_MXFP8    weight F8_E4M3 [N,K], weight_scale U8 (E8M0) [N,K/32]
 *   W8A16/W4A16   weight I8, weight_scale, weight_offset: W = (q + offset) * scale
 *                 (the NPU antiquant convention) with float activations */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/numconv.h"
#include "quant/adapt.h"

static const mq_dtype k_i8[] = {MQ_DTYPE_I8, MQ_DTYPE_INVALID};
static const mq_dtype k_f[] = {MQ_DTYPE_F32, MQ_DTYPE_BF16, MQ_DTYPE_F16, MQ_DTYPE_INVALID};
static const mq_dtype k_deq[] = {MQ_DTYPE_F32, MQ_DTYPE_I64, MQ_DTYPE_INVALID};
static const mq_dtype k_i32[] = {MQ_DTYPE_I32, MQ_DTYPE_INVALID};
static const mq_dtype k_e4m3[] = {MQ_DTYPE_F8_E4M3, MQ_DTYPE_INVALID};
static const mq_dtype k_u8[] = {MQ_DTYPE_U8, MQ_DTYPE_F8_E8M0, MQ_DTYPE_INVALID};

static float bf16_round(float v) { return mq_bf16_to_f32(mq_f32_to_bf16(v)); }

/* weight_scale [N,1] or [N,G] (G dividing K): returns G and the tensor. */
static int weight_scale(struct mq_model *m, const char *name, const mq_lspec *s, const char *sfx,
                        int N, int K, const mq_tensor **out, int *G, mq_err *err) {
  int rc = mq_adapt_tensor(m, name, s, sfx, k_f, 2, N, -1, 0, out, err);
  if (rc) return rc;
  int64_t g = (*out)->shape[1];
  if (g < 1 || K % g)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "layer %s (%s): tensor '%s.%s' has %lld columns, which does not divide K = %d",
                   name, s->scheme, name, sfx, (long long)g, K);
  *G = (int)g;
  return MQ_OK;
}

/* Scales [N, G] into l (bf16-rounded in NPU parity mode), offsets checked. */
static int fill_scales(struct mq_model *m, const char *name, const mq_lspec *s, mq_linear *l,
                       const mq_tensor *sc, const mq_tensor *sc2, int zero_offsets, mq_err *err) {
  int N = l->n_out, G = l->q.n_groups, G2 = sc2 ? (int)sc2->shape[1] : 1;
  float *dst = (float *)l->q.scales;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < G; g++) {
      float v = mq_adapt_float_at(sc, (uint64_t)n * sc->shape[1] + (sc->shape[1] == 1 ? 0 : g));
      if (sc2) v *= mq_adapt_float_at(sc2, (uint64_t)n * G2 + g);
      dst[(size_t)n * G + g] = m->npu_numerics ? bf16_round(v) : v;
    }
  if (!zero_offsets) return MQ_OK;
  static const char *k_off[] = {"weight_offset", "weight_offset_second"};
  for (int i = 0; i < 2; i++) {
    char tn[320];
    snprintf(tn, sizeof tn, "%s.%s", name, k_off[i]);
    const mq_tensor *o = mq_ckpt_find(&m->ckpt, tn);
    if (!o || !mq_dtype_is_float(o->dtype)) continue;
    for (uint64_t j = 0; j < o->n_elems; j++)
      if (mq_adapt_float_at(o, j) != 0.0f)
        return mq_errf(err, MQ_ERR_UNSUPPORTED,
                       "layer %s (%s): %s has a nonzero value (%g at %llu); asymmetric weights are "
                       "not supported for this scheme",
                       name, s->scheme, tn, mq_adapt_float_at(o, j), (unsigned long long)j);
  }
  return MQ_OK;
}

/* scale_bias = 8 * s * sum_k W (per row, or per K/16 chunk): a checksum. */
static void check_scale_bias(struct mq_model *m, const char *name, const mq_linear *l) {
  char tn[320];
  snprintf(tn, sizeof tn, "%s.scale_bias", name);
  const mq_tensor *sb = mq_ckpt_find(&m->ckpt, tn);
  if (!sb || !mq_dtype_is_float(sb->dtype) || sb->n_dims != 2 || sb->shape[0] != l->n_out) return;
  int chunks = (int)sb->shape[1], K = l->n_in, G = l->q.n_groups;
  if (chunks < 1 || K % chunks) return;
  double worst = 0;
  int gs = l->q.group_size;
  for (int n = 0; n < l->n_out; n++)
    for (int c = 0; c < chunks; c++) {
      double want = 0, scale_mag = 0;
      const int8_t *row = (const int8_t *)l->q.data + (size_t)n * K;
      /* the chunk's pieces of one group each: an integer sum, then its scale */
      for (int k = c * (K / chunks), end = k + K / chunks; k < end;) {
        int g = k / gs, stop = (g + 1) * gs < end ? (g + 1) * gs : end;
        int32_t isum = 0;
        for (int i = k; i < stop; i++) isum += row[i];
        double sv = l->q.scales[(size_t)n * G + g];
        want += 8.0 * sv * isum;
        scale_mag += 64.0 * fabs(sv) * (stop - k);
        k = stop;
      }
      double got = mq_adapt_float_at(sb, (uint64_t)n * chunks + c);
      worst = fmax(worst, fabs(got - want) / (scale_mag + 1e-30));
    }
  if (worst > 1e-2)
    mq_model_warn(m, "layer %s: scale_bias does not equal 8 * scale * sum(W) (max relative "
                  "deviation %.3g); it is a kernel correction term and is not used",
                  name, worst);
}

static int w8a8_static(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                       mq_linear *l, mq_err *err) {
  const mq_tensor *w, *is, *io, *dq, *qb;
  int rc;
  if ((rc = mq_adapt_tensor(m, name, s, "weight", k_i8, 2, N, K, 0, &w, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "input_scale", k_f, 1, 1, -1, 0, &is, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "input_offset", k_f, 1, 1, -1, 0, &io, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "deq_scale", k_deq, 1, N, -1, 0, &dq, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "quant_bias", k_i32, 1, N, -1, 0, &qb, err)) ||
      (rc = mq_adapt_alloc(m, name, l, N, K, 8, K, MQ_CODES_S8, 0, w->data, err)))
    return rc;
  float s_x = mq_adapt_float_at(is, 0), o_x = mq_adapt_float_at(io, 0);
  if (!(s_x > 0) || !isfinite(s_x) || !isfinite(o_x) || o_x != nearbyintf(o_x))
    return mq_errf(err, MQ_ERR_FORMAT,
                   "layer %s (W8A8): input_scale %g must be finite and > 0 and input_offset %g an "
                   "integer",
                   name, s_x, o_x);
  float *deq = mq_model_alloc(m, (size_t)N * sizeof(float));
  if (!deq) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int n = 0; n < N; n++) {
    if (dq->dtype == MQ_DTYPE_I64) {
      int64_t v = (int64_t)mq_adapt_int_at(dq, (uint64_t)n);
      uint32_t lo = (uint32_t)v;
      if (v != (int64_t)(int32_t)lo)
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s (W8A8): deq_scale[%d] = 0x%016llx is not an fp32 bit pattern "
                       "sign-extended to int64 (its high 32 bits are garbage)",
                       name, n, (unsigned long long)v);
      deq[n] = mq_bits_to_f32(lo);
    } else {
      deq[n] = mq_adapt_float_at(dq, (uint64_t)n);
    }
    if (!isfinite(deq[n]))
      return mq_errf(err, MQ_ERR_FORMAT, "layer %s (W8A8): deq_scale[%d] is not finite", name, n);
    ((float *)l->q.scales)[n] = deq[n] / s_x; /* the weight scale, for inspection */
  }
  if (m->npu_numerics) { /* SGLang keeps these in the params dtype (bf16) */
    s_x = bf16_round(s_x);
    o_x = bf16_round(o_x);
    l->in_rscale = bf16_round(1.0f / s_x);
  } else {
    l->in_rscale = 1.0f / s_x;
  }
  l->in_offset = o_x;
  l->deq = deq;
  l->qbias = (const int32_t *)qb->data;
  if (((uintptr_t)qb->data & 3) != 0) {
    int32_t *c = mq_model_alloc(m, (size_t)N * 4);
    if (!c) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    memcpy(c, qb->data, (size_t)N * 4);
    l->qbias = c;
  }
  l->act = MQ_ACT_INT8_STATIC;
  return MQ_OK; /* the float .bias is folded into quant_bias: not added again */
}

static int mxfp8(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K, mq_linear *l,
                 mq_err *err) {
  if (K % 32)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "layer %s (W8A8_MXFP8): input size %d is not a multiple of the MX block of 32",
                   name, K);
  const mq_tensor *w, *sc;
  int rc;
  if ((rc = mq_adapt_tensor(m, name, s, "weight", k_e4m3, 2, N, K, 0, &w, err)) ||
      (rc = mq_adapt_tensor(m, name, s, "weight_scale", k_u8, 2, N, K / 32, 0, &sc, err)))
    return rc;
  for (uint64_t i = 0; i < sc->n_elems; i++)
    if (sc->data[i] == 0xff)
      return mq_errf(err, MQ_ERR_FORMAT,
                     "layer %s (W8A8_MXFP8): weight_scale[%llu] is 0xFF (NaN): the scale was not "
                     "written",
                     name, (unsigned long long)i);
  memset(l, 0, sizeof *l);
  l->n_out = N, l->n_in = K, l->kind = MQ_W_MXFP8, l->act = MQ_ACT_MXFP8;
  l->q.data = w->data;
  l->q.bits = 8;
  l->q.group_size = 32;
  l->q.n_groups = K / 32;
  l->mx_exp = sc->data;
  return MQ_OK;
}

int mq_adapt_modelslim(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                       mq_linear *l, mq_err *err) {
  const mq_tensor *w, *sc, *sc2 = NULL;
  int rc, G = 1;
  if (!strcmp(s->scheme, "W8A8")) rc = w8a8_static(m, name, s, N, K, l, err);
  else if (!strcmp(s->scheme, "W8A8_MXFP8")) rc = mxfp8(m, name, s, N, K, l, err);
  else {
    int a16 = s->act == MQ_ACT_FLOAT;
    if ((rc = weight_scale(m, name, s, "weight_scale", N, K, &sc, &G, err))) return rc;
    if (!strcmp(s->scheme, "W4A8_DYNAMIC")) {
      char tn[320];
      snprintf(tn, sizeof tn, "%s.weight_scale_second", name);
      if (mq_ckpt_find(&m->ckpt, tn)) {
        if (G != 1)
          return mq_errf(err, MQ_ERR_FORMAT, "layer %s (W4A8_DYNAMIC): weight_scale must be [N, 1] "
                         "with a weight_scale_second", name);
        if ((rc = weight_scale(m, name, s, "weight_scale_second", N, K, &sc2, &G, err))) return rc;
      }
    }
    const uint8_t *codes = NULL;
    if (s->bits == 4) rc = mq_adapt_int4(m, name, s, N, K, &codes, err);
    else if (!(rc = mq_adapt_tensor(m, name, s, "weight", k_i8, 2, N, K, 0, &w, err))) codes = w->data;
    if (rc || (rc = mq_adapt_alloc(m, name, l, N, K, s->bits, K / G, MQ_CODES_S8, a16, codes, err)) ||
        (rc = fill_scales(m, name, s, l, sc, sc2, !a16, err)))
      return rc;
    if (a16) { /* weight-only: W = (q + offset) * scale */
      const mq_tensor *off;
      if ((rc = mq_adapt_tensor(m, name, s, "weight_offset", k_f, 2, N, G, 1, &off, err))) return rc;
      for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++)
          ((float *)l->q.mins)[(size_t)n * G + g] =
              (off ? mq_adapt_float_at(off, (uint64_t)n * G + g) : 0.0f) * l->q.scales[(size_t)n * G + g];
    } else {
      l->act = s->act;
      l->act_div = 1; /* npu_dynamic_quant divides by the per-token scale */
    }
    if (!strcmp(s->scheme, "W4A8_DYNAMIC")) check_scale_bias(m, name, l);
  }
  if (rc) return rc;
  l->out_bf16 = m->npu_numerics;
  if (l->act == MQ_ACT_INT8_STATIC) return MQ_OK;
  return mq_adapt_bias(m, name, N, &l->bias, err);
}

/* Whole-description checks: global keys recognised, every tensor described,
 * KV-cache / FA quantization reported (mixq keeps its KV cache in float). */
int mq_modelslim_validate(struct mq_model *m, const json_t *desc, const char *where, mq_err *err) {
  static const char *k_global[] = {"model_quant_type", "version", "group_size", "metadata",
                                   "optional", "ignore", "packed_modules_mapping"};
  static const char *k_kv[] = {"kv_quant_type", "kv_cache_type", "fa_quant_type", "reduce_quant_type"};
  const char *key;
  json_t *v;
  int unknown = 0;
  json_object_foreach((json_t *)desc, key, v) {
    int known = 0;
    for (size_t i = 0; i < sizeof k_global / sizeof k_global[0]; i++) known |= !strcmp(key, k_global[i]);
    for (size_t i = 0; i < sizeof k_kv / sizeof k_kv[0]; i++)
      if (!strcmp(key, k_kv[i])) {
        known = 1;
        mq_model_warn(m, "%s: %s = %s is recorded; mixq keeps the KV cache and attention in float",
                      where, key, json_is_string(v) ? json_string_value(v) : "(non-string)");
      }
    if (known) continue;
    if (!json_is_string(v))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must map to a type string", where, key);
    if (!mq_ckpt_find(&m->ckpt, key) && !strstr(key, ".quant_type") && unknown++ < 3)
      mq_model_warn(m, "%s: \"%s\" is described but no such tensor is stored", where, key);
  }
  int undescribed = 0;
  for (int i = 0; i < m->ckpt.n_all; i++)
    if (!json_object_get(desc, m->ckpt.all[i]->name) && undescribed++ < 3)
      mq_model_warn(m, "%s: tensor '%s' has no description entry", where, m->ckpt.all[i]->name);
  const json_t *mqt = json_object_get(desc, "model_quant_type");
  if (mqt && !json_is_string(mqt))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"model_quant_type\" must be a string", where);
  return MQ_OK;
}
