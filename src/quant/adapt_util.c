#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/numconv.h"
#include "quant/adapt.h"

static const char *dtype_list(const mq_dtype *d, char *buf, size_t cap) {
  buf[0] = 0;
  for (int i = 0; d[i] != MQ_DTYPE_INVALID; i++) {
    strncat(buf, i ? "/" : "", cap - strlen(buf) - 1);
    strncat(buf, mq_dtype_name(d[i]), cap - strlen(buf) - 1);
  }
  return buf;
}

int mq_adapt_tensor(const struct mq_model *m, const char *name, const mq_lspec *s,
                    const char *suffix, const mq_dtype *dtypes, int n_dims, int64_t d0, int64_t d1,
                    int optional, const mq_tensor **out, mq_err *err) {
  char tn[320], dl[64], sh[96];
  snprintf(tn, sizeof tn, "%s.%s", name, suffix);
  const mq_tensor *t = mq_ckpt_find(&m->ckpt, tn);
  *out = NULL;
  if (!t) {
    if (optional) return MQ_OK;
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (%s): tensor '%s' is missing", name, s->scheme, tn);
  }
  int ok = 0;
  for (int i = 0; dtypes[i] != MQ_DTYPE_INVALID; i++) ok |= t->dtype == dtypes[i];
  if (!ok)
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (%s): tensor '%s' has dtype %s, expected %s", name,
                   s->scheme, tn, mq_dtype_name(t->dtype), dtype_list(dtypes, dl, sizeof dl));
  int shape_ok = t->n_dims == n_dims && (d0 < 0 || t->shape[0] == d0) &&
                 (n_dims < 2 || d1 < 0 || t->shape[1] == d1);
  if (!shape_ok) {
    char want[64];
    if (n_dims == 1) snprintf(want, sizeof want, "[%lld]", (long long)d0);
    else snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s (%s): tensor '%s' has shape %s, expected %s", name,
                   s->scheme, tn, mq_shape_str(t, sh, sizeof sh), want);
  }
  *out = t;
  return MQ_OK;
}

float mq_adapt_float_at(const mq_tensor *t, uint64_t i) {
  uint16_t h;
  uint32_t u;
  switch (t->dtype) {
  case MQ_DTYPE_F16: memcpy(&h, t->data + 2 * i, 2); return mq_f16_to_f32(h);
  case MQ_DTYPE_BF16: memcpy(&h, t->data + 2 * i, 2); return mq_bf16_to_f32(h);
  case MQ_DTYPE_F32: memcpy(&u, t->data + 4 * i, 4); return mq_bits_to_f32(u);
  default: return 0.0f;
  }
}

int64_t mq_adapt_int_at(const mq_tensor *t, uint64_t i) {
  switch (t->dtype) {
  case MQ_DTYPE_I32:
  case MQ_DTYPE_U32: {
    uint32_t u;
    memcpy(&u, t->data + 4 * i, 4);
    return u;
  }
  case MQ_DTYPE_I64: {
    int64_t v;
    memcpy(&v, t->data + 8 * i, 8);
    return v;
  }
  case MQ_DTYPE_I8: return (int8_t)t->data[i];
  case MQ_DTYPE_U8: return t->data[i];
  default: return 0;
  }
}

int mq_adapt_alloc(struct mq_model *m, const char *name, mq_linear *l, int N, int K, int bits,
                   int gs, mq_codes codes, int with_mins, const uint8_t *in_place, mq_err *err) {
  if (gs <= 0 || gs > K) gs = K;
  if (codes == MQ_CODES_U4 && (K % 2 || gs % 2))
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "layer %s: 4-bit codes need an even input size and group size (K %d, group %d)",
                   name, K, gs);
  memset(l, 0, sizeof *l);
  l->n_out = N;
  l->n_in = K;
  l->kind = MQ_W_INT;
  mq_qint *q = &l->q;
  q->codes = codes;
  q->bits = bits;
  q->group_size = gs;
  q->n_groups = (K + gs - 1) / gs;
  size_t code_bytes = codes == MQ_CODES_U4 ? (size_t)N * K / 2 : (size_t)N * K;
  size_t ng = (size_t)N * q->n_groups;
  q->data = in_place ? in_place : mq_model_alloc(m, code_bytes);
  q->scales = mq_model_alloc(m, ng * sizeof(float));
  q->mins = with_mins ? mq_model_alloc(m, ng * sizeof(float)) : NULL;
  if (!q->data || !q->scales || (with_mins && !q->mins))
    return mq_errf(err, MQ_ERR_NOMEM, "layer %s: out of memory for %zu bytes of codes", name,
                   code_bytes);
  return MQ_OK;
}

void mq_adapt_put(mq_linear *l, int n, int j, unsigned c) {
  uint8_t *d = (uint8_t *)l->q.data;
  if (l->q.codes == MQ_CODES_U4) {
    uint8_t *b = d + (size_t)n * (l->n_in / 2) + j / 2;
    *b = (uint8_t)((j & 1) ? ((*b & 0x0f) | (c << 4)) : ((*b & 0xf0) | (c & 15)));
  } else {
    d[(size_t)n * l->n_in + j] = (uint8_t)c;
  }
}

int mq_adapt_perm(struct mq_model *m, const char *name, const mq_tensor *g_idx, int K, int gs,
                  int G, int32_t **perm, mq_err *err) {
  *perm = NULL;
  int trivial = 1;
  for (int k = 0; k < K; k++) {
    int64_t g = mq_adapt_int_at(g_idx, (uint64_t)k);
    if (g_idx->dtype == MQ_DTYPE_I32) g = (int32_t)g;
    if (g < 0 || g >= G)
      return mq_errf(err, MQ_ERR_FORMAT, "layer %s: g_idx[%d] = %lld is outside [0, %d)", name, k,
                     (long long)g, G);
    trivial &= g == k / gs;
  }
  if (trivial) return MQ_OK;
  /* Counting sort by group keeps channel order inside a group. */
  int *count = calloc((size_t)G + 1, sizeof(int));
  int32_t *p = mq_model_alloc(m, (size_t)K * sizeof(int32_t));
  if (!count || !p) {
    free(count);
    return mq_errf(err, MQ_ERR_NOMEM, "layer %s: out of memory", name);
  }
  for (int k = 0; k < K; k++) count[(int32_t)mq_adapt_int_at(g_idx, (uint64_t)k) + 1]++;
  for (int g = 0; g < G; g++) {
    int want = g < G - 1 ? gs : K - (G - 1) * gs;
    if (count[g + 1] != want) {
      int got = count[g + 1];
      free(count);
      return mq_errf(err, MQ_ERR_UNSUPPORTED,
                     "layer %s: g_idx puts %d input channels in group %d, expected %d (groups of "
                     "unequal size are not supported)",
                     name, got, g, want);
    }
    count[g + 1] += count[g];
  }
  for (int k = 0; k < K; k++) p[count[(int32_t)mq_adapt_int_at(g_idx, (uint64_t)k)]++] = k;
  free(count);
  *perm = p;
  return MQ_OK;
}

int mq_adapt_bias(struct mq_model *m, const char *name, int N, const float **out, mq_err *err) {
  static const mq_dtype k_float[] = {MQ_DTYPE_F16, MQ_DTYPE_BF16, MQ_DTYPE_F32, MQ_DTYPE_INVALID};
  const mq_tensor *t;
  mq_lspec s = {.scheme = "bias"};
  int rc = mq_adapt_tensor(m, name, &s, "bias", k_float, 1, N, -1, 1, &t, err);
  *out = NULL;
  if (rc || !t) return rc;
  float *b = mq_model_alloc(m, (size_t)N * sizeof(float));
  if (!b) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < N; i++) b[i] = mq_adapt_float_at(t, (uint64_t)i);
  *out = b;
  return MQ_OK;
}

/* int4 weights: [N,K] one value per byte (checked to lie in [-8, 7]) or
 * [N/2,K] two per byte along N (low nibble = even row); *out: S8 [N,K]. */
int mq_adapt_int4(struct mq_model *m, const char *name, const mq_lspec *s, int N, int K,
                  const uint8_t **out, mq_err *err) {
  static const mq_dtype k_i8[] = {MQ_DTYPE_I8, MQ_DTYPE_INVALID};
  char tn[320];
  snprintf(tn, sizeof tn, "%s.weight", name);
  const mq_tensor *w = mq_ckpt_find(&m->ckpt, tn);
  int packed = w && w->n_dims == 2 && w->shape[0] == N / 2 && N % 2 == 0;
  int rc = mq_adapt_tensor(m, name, s, "weight", k_i8, 2, packed ? N / 2 : N, K, 0, &w, err);
  if (rc) return rc;
  if (!packed) {
    for (uint64_t i = 0; i < w->n_elems; i++) {
      int8_t v = (int8_t)w->data[i];
      if (v < -8 || v > 7)
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s (%s): weight value %d at [%llu, %llu] is outside the int4 range "
                       "[-8, 7]",
                       name, s->scheme, v, (unsigned long long)(i / (uint64_t)K),
                       (unsigned long long)(i % (uint64_t)K));
    }
    *out = w->data;
    return MQ_OK;
  }
  int8_t *d = mq_model_alloc(m, (size_t)N * K);
  if (!d) return mq_errf(err, MQ_ERR_NOMEM, "layer %s: out of memory", name);
  for (int j = 0; j < N / 2; j++)
    for (int k = 0; k < K; k++) {
      uint8_t b = w->data[(size_t)j * K + k];
      d[(size_t)(2 * j) * K + k] = (int8_t)((int8_t)(b << 4) >> 4); /* low nibble, signed */
      d[(size_t)(2 * j + 1) * K + k] = (int8_t)((int8_t)b >> 4);
    }
  *out = (const uint8_t *)d;
  return MQ_OK;
}
