/* compressed-tensors W4A8 "with activation clip" at model level, on the
 * tiny Qwen3-MoE fixture: a per-channel ct-w4a8 checkpoint (mixq quantize)
 * is turned into the clip variant the Ascend converters write — int64
 * fp32-bit scales, every W4A8 layer's `bias` = bf16(8 * s * sum(W)) (the
 * A8W4 kernel's correction term), `activation_use_clip: true` — and must
 * load without warnings and give the non-clip model's logits up to the
 * converter's bf16 rounding of the bias; a bias of the wrong sign is
 * reported as a load warning (and applied, as the kernel would). */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "quant/writer.h"
#include "test.h"

enum { NTOK = 7 };
static const int32_t g_tok[NTOK] = {3, 17, 42, 5, 99, 123, 7};

static float *logits_of(const char *dir, int *n_vocab, int *n_warn) {
  mq_model *m;
  mq_err err = {0};
  if (mq_model_load(dir, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "load %s: %s", dir, err.msg);
    return NULL;
  }
  *n_warn = mq_model_n_warnings(m);
  mq_session *s;
  float *out = NULL;
  if (mq_session_init(m, NULL, &s, &err) == MQ_OK) {
    if (mq_session_eval(s, g_tok, NTOK, 1, &err) == MQ_OK) {
      mq_model_info info;
      mq_model_get_info(m, &info);
      *n_vocab = info.n_vocab;
      out = malloc((size_t)NTOK * info.n_vocab * sizeof *out);
      memcpy(out, mq_session_logits(s, NULL), (size_t)NTOK * info.n_vocab * sizeof *out);
    }
    mq_session_free(s);
  }
  CHECK_MSG(out != NULL, "eval %s: %s", dir, err.msg);
  mq_model_free(m);
  return out;
}

/* dst = src as the clip variant (sign: +1 the converter's bias, -1 wrong). */
static void make_clip(const char *src, const char *dst, int sign) {
  char p[600], q[600];
  mkdir(dst, 0755);
  snprintf(p, sizeof p, "%s/config.json", src);
  json_t *cfg = json_load_file(p, 0, NULL);
  CHECK(cfg != NULL);
  const char *gname;
  json_t *grp;
  json_object_foreach(json_object_get(json_object_get(cfg, "quantization_config"), "config_groups"),
                      gname, grp) json_object_set_new(grp, "activation_use_clip", json_true());
  snprintf(q, sizeof q, "%s/config.json", dst);
  CHECK(json_dump_file(cfg, q, JSON_INDENT(2)) == 0);
  json_decref(cfg);

  snprintf(p, sizeof p, "%s/model.safetensors", src);
  mq_st_file f;
  mq_err err = {0};
  CHECK_MSG(mq_st_open(p, &f, &err) == MQ_OK, "%s", err.msg);
  mq_st_writer *w = mq_st_writer_new();
  int n_clip = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_tensor *t = &f.tensors[i];
    size_t nl = strlen(t->name);
    int is_scale = nl > 13 && !strcmp(t->name + nl - 13, ".weight_scale");
    if (!is_scale) {
      CHECK(mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, &err) == MQ_OK);
      continue;
    }
    /* per-channel W4A8 layer: scale [N, 1] (model dtype), weight I8 [N, K] */
    char wn[300];
    snprintf(wn, sizeof wn, "%.*s.weight", (int)(nl - 13), t->name);
    const mq_tensor *wt = NULL;
    for (int j = 0; j < f.n_tensors; j++)
      if (!strcmp(f.tensors[j].name, wn)) wt = &f.tensors[j];
    CHECK(wt && wt->dtype == MQ_DTYPE_I8 && t->n_dims == 2 && t->shape[1] == 1);
    if (!wt) continue;
    int64_t N = wt->shape[0], K = wt->shape[1];
    int64_t *s64 = malloc(sizeof(int64_t) * (size_t)N);
    float *bias = malloc(sizeof(float) * (size_t)N);
    for (int64_t n = 0; n < N; n++) {
      uint16_t h;
      memcpy(&h, t->data + 2 * n, 2);
      float s = t->dtype == MQ_DTYPE_BF16 ? mq_bf16_to_f32(h) : mq_f16_to_f32(h);
      s64[n] = (int64_t)(uint32_t)mq_f32_to_bits(s);
      double sum = 0;
      for (int64_t k = 0; k < K; k++) sum += (int8_t)wt->data[n * K + k];
      bias[n] = sign * mq_bf16_to_f32(mq_f32_to_bf16((float)(8.0 * s * sum)));
    }
    int64_t bshape[1] = {N};
    char bn[300];
    snprintf(bn, sizeof bn, "%.*s.bias", (int)(nl - 13), t->name);
    CHECK(mq_st_writer_add(w, t->name, MQ_DTYPE_I64, 2, t->shape, s64, &err) == MQ_OK);
    CHECK(mq_st_writer_add(w, bn, MQ_DTYPE_F32, 1, bshape, bias, &err) == MQ_OK);
    free(s64), free(bias);
    n_clip++;
  }
  CHECK(n_clip > 10);
  snprintf(q, sizeof q, "%s/model.safetensors", dst);
  CHECK_MSG(mq_st_writer_save(w, q, &err) == MQ_OK, "%s", err.msg);
  mq_st_writer_free(w);
  mq_st_close(&f);
}

int main(void) {
  char tmp[] = "/tmp/mixq-ct-clip-XXXXXX";
  CHECK(mkdtemp(tmp) != NULL);
  char base[600], clip[600], wrong[600];
  snprintf(base, sizeof base, "%s/base", tmp);
  snprintf(clip, sizeof clip, "%s/clip", tmp);
  snprintf(wrong, sizeof wrong, "%s/wrong", tmp);
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  o.src = MQ_TEST_DATA "/tiny-qwen3-moe";
  o.dst = base;
  CHECK(mq_qformat_parse("ct-w4a8", &o.format) == MQ_OK);
  o.group_size = -1; /* the clip converters write per-channel scales */
  mq_err err = {0};
  CHECK_MSG(mq_quantize_checkpoint(&o, &err) == MQ_OK, "%s", err.msg);
  make_clip(base, clip, 1);
  make_clip(base, wrong, -1);

  int V = 0, V2 = 0, V3 = 0, w0 = 0, w1 = 0, w2 = 0;
  float *lb = logits_of(base, &V, &w0), *lc = logits_of(clip, &V2, &w1);
  float *lw = logits_of(wrong, &V3, &w2);
  CHECK(w0 == 0 && w1 == 0 && w2 > 0);
  if (lb && lc && lw && V == V2 && V == V3) {
    double dc = 0, dw = 0, mag = 0;
    for (int i = 0; i < NTOK * V; i++) {
      dc = fmax(dc, fabs((double)lc[i] - lb[i]));
      dw = fmax(dw, fabs((double)lw[i] - lb[i]));
      mag = fmax(mag, fabs((double)lb[i]));
    }
    printf("clip vs non-clip: max|d| %.3g (logits up to %.3g); wrong-sign bias: %.3g\n", dc, mag, dw);
    /* the bias residual is bf16 rounding (<= 2^-9 relative) of 8 s sum(W),
     * scaled by each token's activation scale, through 2 layers: measured 1.5% of the
     * largest logit */
    CHECK_MSG(dc < 0.03 * mag, "clip departs from non-clip by %g", dc);
    CHECK_MSG(dw > 10 * dc && dw > 0.05 * mag, "a wrong bias changed nothing (%g)", dw);
  }
  free(lb), free(lc), free(lw);
  mqt_rm_tree(tmp);
  return mqt_report("ct_clip");
}
