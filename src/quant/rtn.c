/* Round-to-nearest group quantization (see rtn.h for the per-producer recipes). */
#include "quant/rtn.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/numconv.h"

float mq_rtn_round_to(float f, mq_dtype dt) {
  if (dt == MQ_DTYPE_F16) return mq_f16_to_f32(mq_f32_to_f16(f));
  if (dt == MQ_DTYPE_BF16) return mq_bf16_to_f32(mq_f32_to_bf16(f));
  return f;
}

/* Round a computed scale to its storage dtype; 0 becomes the smallest normal
 * (so codes stay finite), overflow is an error (returns 0). */
static int store_scale(float *s, mq_dtype dt) {
  float r = mq_rtn_round_to(*s, dt);
  if (!isfinite(r)) return 0;
  if (r == 0.0f) r = dt == MQ_DTYPE_F16 ? 6.103515625e-05f : FLT_MIN;
  *s = r;
  return 1;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Scale and zero of one group with extremes [mn, mx] (mn > mx: empty group). */
static int group_params(float mn, float mx, const mq_rtn_params *p, float *s_out, int *z_out) {
  const float qmax = (float)((1 << p->bits) - 1), half = (float)(1 << (p->bits - 1));
  if (mn > mx) mn = mx = 0.0f;
  float s;
  int z;
  switch (p->mode) {
  case MQ_RTN_ASYM_AWQ: {
    float range = mx - mn;
    s = (range < 1e-5f ? 1e-5f : range) / qmax;
    if (!store_scale(&s, p->scale_dtype)) return 0;
    z = (int)clampf(-rintf(mn / s), 0.0f, qmax);
    break;
  }
  case MQ_RTN_ASYM: {
    float lo = fminf(mn, 0.0f), hi = fmaxf(mx, 0.0f);
    if (lo == 0.0f && hi == 0.0f) lo = -1.0f, hi = 1.0f;
    s = (hi - lo) / qmax;
    if (!store_scale(&s, p->scale_dtype)) return 0;
    z = (int)clampf(rintf(-lo / s), 0.0f, qmax);
    break;
  }
  case MQ_RTN_SYM: {
    float a = fmaxf(-fminf(mn, 0.0f), fmaxf(mx, 0.0f));
    if (a == 0.0f) a = 1.0f;
    s = a / (qmax / 2.0f);
    if (!store_scale(&s, p->scale_dtype)) return 0;
    z = (int)half;
    break;
  }
  case MQ_RTN_SYM_MS: {
    float a = fmaxf(-fminf(mn, 0.0f), fmaxf(mx, 0.0f));
    s = fmaxf(a / (half - 1.0f), FLT_EPSILON);
    if (!store_scale(&s, p->scale_dtype)) return 0;
    z = (int)half;
    break;
  }
  default: { /* MQ_RTN_SYM_AUTOROUND */
    float amin = -fminf(mn, 0.0f), amax = fmaxf(mx, 0.0f);
    /* the larger-magnitude extreme must land on -2^(b-1): positive scale when
     * the negative side is larger, negative otherwise (ties: negative) */
    float sign = amax < amin ? 1.0f : -1.0f;
    s = sign * fmaxf(amin, amax) / half;
    s = mq_rtn_round_to(s, p->scale_dtype);
    float thr = mq_rtn_round_to(1e-5f, p->scale_dtype);
    if (s < 0.0f && s > -thr)
      s = -thr;
    else if (s >= 0.0f && s < thr)
      s = thr; /* also -0.0: AutoRound's `scale < 0` is false */
    if (!store_scale(&s, p->scale_dtype)) return 0;
    z = (int)half;
    break;
  }
  }
  *s_out = s;
  *z_out = z;
  return 1;
}

int mq_rtn_quantize(const float *w, int64_t N, int64_t K, const mq_rtn_params *p, uint8_t *q,
                    float *scale, uint8_t *zero, mq_err *err) {
  if (p->bits < 2 || p->bits > 8 || N <= 0 || K <= 0 || p->group_size <= 0 || p->n_groups <= 0)
    return mq_errf(err, MQ_ERR_ARG, "rtn: bad parameters (bits %d, shape [%lld, %lld], group %d)",
                   p->bits, (long long)N, (long long)K, p->group_size);
  const int64_t G = p->n_groups;
  if (!p->g_idx && (K + p->group_size - 1) / p->group_size > G)
    return mq_errf(err, MQ_ERR_ARG, "rtn: %lld groups cannot hold K = %lld", (long long)G,
                   (long long)K);
  for (int64_t k = 0; p->g_idx && k < K; k++)
    if (p->g_idx[k] < 0 || p->g_idx[k] >= G)
      return mq_errf(err, MQ_ERR_ARG, "rtn: g_idx[%lld] = %d outside [0, %lld)", (long long)k,
                     (int)p->g_idx[k], (long long)G);
  float *mn = malloc((size_t)G * sizeof *mn), *mx = malloc((size_t)G * sizeof *mx);
  if (!mn || !mx) {
    free(mn), free(mx);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  const float qmax = (float)((1 << p->bits) - 1), half = (float)(1 << (p->bits - 1));
  int rc = MQ_OK;
  for (int64_t n = 0; n < N && rc == MQ_OK; n++) {
    const float *row = w + n * K;
    for (int64_t g = 0; g < G; g++) mn[g] = INFINITY, mx[g] = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
      float v = row[k];
      if (!isfinite(v)) {
        rc = mq_errf(err, MQ_ERR_FORMAT, "weight [%lld, %lld] is not finite", (long long)n,
                     (long long)k);
        break;
      }
      int64_t g = p->g_idx ? p->g_idx[k] : k / p->group_size;
      mn[g] = fminf(mn[g], v), mx[g] = fmaxf(mx[g], v);
    }
    for (int64_t g = 0; g < G && rc == MQ_OK; g++) {
      int z = 0;
      if (!group_params(mn[g], mx[g], p, &scale[n * G + g], &z))
        rc = mq_errf(err, MQ_ERR_FORMAT,
                     "row %lld group %lld: scale overflows %s (weights too large)", (long long)n,
                     (long long)g, mq_dtype_name(p->scale_dtype));
      zero[n * G + g] = (uint8_t)z;
    }
    for (int64_t k = 0; k < K && rc == MQ_OK; k++) {
      int64_t g = p->g_idx ? p->g_idx[k] : k / p->group_size;
      float s = scale[n * G + g], r = rintf(row[k] / s), c;
      if (p->mode == MQ_RTN_SYM_AUTOROUND || p->mode == MQ_RTN_SYM_MS)
        c = clampf(r, -half, half - 1.0f) + half;
      else
        c = clampf(r + (float)zero[n * G + g], 0.0f, qmax);
      q[n * K + k] = (uint8_t)c;
    }
  }
  free(mn), free(mx);
  return rc;
}

/* splitmix64: a well-mixed stream from any seed (0 included). */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int mq_rtn_actorder_gidx(int64_t K, int group_size, uint64_t seed, int32_t *g_idx) {
  int32_t *perm = malloc((size_t)(K > 0 ? K : 1) * sizeof *perm); /* act order -> channel */
  uint64_t s = seed;
  if (!perm) return MQ_ERR_NOMEM;
  for (int64_t j = 0; j < K; j++) perm[j] = (int32_t)j;
  for (int64_t j = K - 1; j > 0; j--) {
    int64_t r = (int64_t)(splitmix(&s) % (uint64_t)(j + 1));
    int32_t t = perm[j];
    perm[j] = perm[r], perm[r] = t;
  }
  /* channel perm[j] is the j-th in act order: invperm[perm[j]] = j */
  for (int64_t j = 0; j < K; j++) g_idx[perm[j]] = (int32_t)(j / group_size);
  free(perm);
  return MQ_OK;
}
