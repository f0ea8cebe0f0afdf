/* A ModelSlim checkpoint made by hand from a float one (there is no
 * ModelSlim writer): quant_model_weights.safetensors and
 * quant_model_description.json the way the v1 saver writes them, for the
 * corrupted-checkpoint suite and the description fuzzer.
 *
 * Each decoder linear (model.layers.N.{self_attn,mlp}.X_proj) gets the type
 * type_of(name) returns:
 *   "W8A8"          weight I8 [N,K] (per-row absmax/127), input_scale F32 [1]
 *                   = 0.05, input_offset F32 [1] = 0, deq_scale F32 [N] =
 *                   input_scale * weight scale, quant_bias I32 [N] = 0
 *   "W8A8_DYNAMIC"  weight I8 [N,K], weight_scale F32 [N,1], weight_offset [N,1] = 0
 *   "W8A16"         as W8A8_DYNAMIC (weight-only, float activations)
 *   "FLOAT"         the float weight copied
 * Everything else is copied and described "FLOAT". Only float checkpoints
 * without linear biases (e.g. tests/data/tiny-llama3) are supported. */
#ifndef MQ_TESTS_MODELSLIM_TINY_H
#define MQ_TESTS_MODELSLIM_TINY_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "quant/adapt.h"

static inline int mqt_ms_is_linear(const char *name) {
  return strncmp(name, "model.layers.", 13) == 0 &&
         (strstr(name, ".self_attn.") || strstr(name, ".mlp.")) && strstr(name, "_proj.weight") &&
         strcmp(name + strlen(name) - 12, "_proj.weight") == 0;
}

/* Copy src_dir/config.json, quantize src_dir/model.safetensors into dst_dir
 * (which must exist). type_of gets the module name (without ".weight"). */
static inline int mqt_make_modelslim(const char *src_dir, const char *dst_dir,
                              const char *(*type_of)(const char *module), mq_err *err) {
  char p[4096];
  snprintf(p, sizeof p, "%s/model.safetensors", src_dir);
  mq_st_file f;
  int rc = mq_st_open(p, &f, err);
  if (rc) return rc;
  mq_st_writer *w = mq_st_writer_new();
  json_t *desc = json_object();
  json_object_set_new(desc, "model_quant_type", json_string("W8A8"));
  json_object_set_new(desc, "version", json_string("1.0.0"));
  for (int i = 0; i < f.n_tensors && rc == MQ_OK; i++) {
    const mq_tensor *t = &f.tensors[i];
    const char *type = "FLOAT";
    char mod[256];
    if (mqt_ms_is_linear(t->name) && t->n_dims == 2) {
      snprintf(mod, sizeof mod, "%.*s", (int)(strlen(t->name) - 7), t->name);
      type = type_of(mod);
    }
    json_object_set_new(desc, t->name, json_string(type));
    if (!strcmp(type, "FLOAT")) {
      rc = mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, err);
      continue;
    }
    int64_t N = t->shape[0], K = t->shape[1];
    int8_t *q = malloc((size_t)(N * K));
    float *sc = malloc((size_t)N * sizeof(float)), *deq = malloc((size_t)N * sizeof(float));
    float *zero = calloc((size_t)N, sizeof(float));
    int32_t *qb = calloc((size_t)N, sizeof(int32_t));
    if (!q || !sc || !deq || !zero || !qb) {
      rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    } else {
      for (int64_t n = 0; n < N; n++) {
        float amax = 0;
        for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(mq_adapt_float_at(t, (uint64_t)(n * K + k))));
        sc[n] = amax > 0 ? amax / 127.0f : 1.0f;
        deq[n] = 0.05f * sc[n];
        for (int64_t k = 0; k < K; k++)
          q[n * K + k] = (int8_t)lrintf(mq_adapt_float_at(t, (uint64_t)(n * K + k)) / sc[n]);
      }
      char tn[320];
      int64_t shNK[2] = {N, K}, shN1[2] = {N, 1}, sh1[1] = {1}, shN[1] = {N};
      float is = 0.05f, io = 0.0f;
#define ADD(sfx, dt, nd, sh, data) \
  (snprintf(tn, sizeof tn, "%s.%s", mod, sfx), json_object_set_new(desc, tn, json_string(type)), \
   mq_st_writer_add(w, tn, dt, nd, sh, data, err))
      if (!strcmp(type, "W8A8")) {
        (void)((rc = ADD("weight", MQ_DTYPE_I8, 2, shNK, q)) ||
               (rc = ADD("input_scale", MQ_DTYPE_F32, 1, sh1, &is)) ||
               (rc = ADD("input_offset", MQ_DTYPE_F32, 1, sh1, &io)) ||
               (rc = ADD("deq_scale", MQ_DTYPE_F32, 1, shN, deq)) ||
               (rc = ADD("quant_bias", MQ_DTYPE_I32, 1, shN, qb)));
      } else {
        (void)((rc = ADD("weight", MQ_DTYPE_I8, 2, shNK, q)) ||
               (rc = ADD("weight_scale", MQ_DTYPE_F32, 2, shN1, sc)) ||
               (rc = ADD("weight_offset", MQ_DTYPE_F32, 2, shN1, zero)));
      }
#undef ADD
    }
    free(q), free(sc), free(deq), free(zero), free(qb);
  }
  if (rc == MQ_OK) {
    snprintf(p, sizeof p, "%s/quant_model_weights.safetensors", dst_dir);
    rc = mq_st_writer_save(w, p, err);
  }
  if (rc == MQ_OK) {
    snprintf(p, sizeof p, "%s/quant_model_description.json", dst_dir);
    if (json_dump_file(desc, p, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
      rc = mq_errf(err, MQ_ERR_IO, "%s: cannot write", p);
  }
  if (rc == MQ_OK) {
    snprintf(p, sizeof p, "%s/config.json", src_dir);
    json_error_t je;
    json_t *cfg = json_load_file(p, 0, &je);
    snprintf(p, sizeof p, "%s/config.json", dst_dir);
    if (!cfg || json_dump_file(cfg, p, JSON_INDENT(2)) != 0)
      rc = mq_errf(err, MQ_ERR_IO, "%s: cannot write", p);
    json_decref(cfg);
  }
  json_decref(desc);
  mq_st_writer_free(w);
  mq_st_close(&f);
  return rc;
}

/* The default recipe: attention static W8A8, MLP W8A8_DYNAMIC. */
static inline const char *mqt_ms_default_type(const char *module) {
  return strstr(module, ".self_attn.") ? "W8A8" : "W8A8_DYNAMIC";
}

#endif
