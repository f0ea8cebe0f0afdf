#include "model/rope.h"

#include <math.h>

void mq_rope_inv_freq(const mq_rope *r, double *inv) {
  int d = r->rot_dim, half = d / 2;
  for (int i = 0; i < half; i++) inv[i] = 1.0 / pow(r->theta, (2.0 * i) / d);
  switch (r->type) {
  case MQ_ROPE_DEFAULT: break;
  case MQ_ROPE_LINEAR:
    for (int i = 0; i < half; i++) inv[i] /= r->factor;
    break;
  case MQ_ROPE_LLAMA3: { /* transformers _compute_llama3_parameters */
    double low_wl = r->orig_ctx / r->low_freq_factor, high_wl = r->orig_ctx / r->high_freq_factor;
    for (int i = 0; i < half; i++) {
      double wl = 2.0 * M_PI / inv[i];
      if (wl < high_wl) continue;
      if (wl > low_wl) {
        inv[i] /= r->factor;
      } else {
        double s = (r->orig_ctx / wl - r->low_freq_factor) /
                   (r->high_freq_factor - r->low_freq_factor);
        inv[i] = (1 - s) * inv[i] / r->factor + s * inv[i];
      }
    }
    break;
  }
  case MQ_ROPE_YARN: { /* transformers _compute_yarn_parameters */
#define CORR_DIM(rot) (d * log(r->orig_ctx / ((rot)*2.0 * M_PI)) / (2.0 * log(r->theta)))
    double lo = CORR_DIM(r->beta_fast), hi = CORR_DIM(r->beta_slow);
#undef CORR_DIM
    if (r->truncate) lo = floor(lo), hi = ceil(hi);
    if (lo < 0) lo = 0;
    if (hi > d - 1) hi = d - 1;
    if (lo == hi) hi += 0.001; /* avoids a division by zero, as transformers does */
    for (int i = 0; i < half; i++) {
      double ramp = (i - lo) / (hi - lo);
      ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
      double extrap = 1.0 - ramp; /* weight of the unscaled frequency */
      inv[i] = inv[i] / r->factor * (1 - extrap) + inv[i] * extrap;
    }
    break;
  }
  }
  if (r->freq_factors)
    for (int i = 0; i < half; i++) inv[i] /= r->freq_factors[i];
}

void mq_rope_tables(const mq_rope *r, int n_pos, float *cos_t, float *sin_t) {
  int half = r->rot_dim / 2;
  double inv[2048];
  mq_rope_inv_freq(r, inv);
  for (int p = 0; p < n_pos; p++)
    for (int i = 0; i < half; i++) {
      double a = p * inv[i];
      cos_t[(size_t)p * half + i] = (float)(cos(a) * r->attn_factor);
      sin_t[(size_t)p * half + i] = (float)(sin(a) * r->attn_factor);
    }
}

void mq_rope_apply(float *x, int rot_dim, int interleaved, const float *c, const float *s) {
  int half = rot_dim / 2;
  int stride = interleaved ? 2 : 1, off = interleaved ? 1 : half;
  for (int i = 0; i < half; i++) {
    float *p = x + i * stride;
    float a = p[0], b = p[off];
    p[0] = a * c[i] - b * s[i];
    p[off] = b * c[i] + a * s[i];
  }
}
