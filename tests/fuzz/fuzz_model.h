/* Helpers for the fuzz targets that load whole models: tiny checkpoints made
 * once per process (quantized with mq_quantize_checkpoint from
 * tests/data/tiny-llama3), and a load-and-run step that exercises everything
 * a loaded model promises (inspect, a session, a short evaluation). */
#ifndef MQ_FUZZ_MODEL_H
#define MQ_FUZZ_MODEL_H

#include "fuzz_util.h"
#include "quant/writer.h"

#ifndef MQ_TEST_DATA
#error "MQ_TEST_DATA must name tests/data"
#endif

/* dir = a fresh scratch folder holding tiny-llama3 quantized as asked. */
static inline const char *mqf_quantized(const char *name, mq_qformat fmt, int bits, int gs, int sym,
                                 int desc_act, mq_qpacking packing, char *dir, size_t cap) {
  mqf_dir(name, dir, cap);
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  o.src = MQ_TEST_DATA "/tiny-llama3";
  o.dst = dir;
  o.format = fmt, o.bits = bits, o.group_size = gs, o.sym = sym, o.desc_act = desc_act;
  o.packing = packing, o.seed = 7;
  mq_err err = {0};
  if (mq_quantize_checkpoint(&o, &err) != MQ_OK) {
    fprintf(stderr, "fuzz setup: quantize %s: %s\n", name, err.msg);
    abort();
  }
  return dir;
}

/* Load dir; when it loads, inspect it and evaluate three tokens. */
static inline void mqf_load_and_run(const char *dir) {
  mq_model *m = NULL;
  mq_err err = {0};
  int rc = mq_model_load(dir, NULL, &m, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    MQF_REQUIRE(m == NULL);
    return;
  }
  mq_model_info info;
  mq_model_get_info(m, &info);
  if (getenv("MQF_VERBOSE")) fprintf(stderr, "[load] %s: loaded, method %s\n", dir, info.quant_method);
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    MQF_REQUIRE(mq_model_linear(m, i, &li) == MQ_OK);
    MQF_REQUIRE(li.name && li.scheme && li.weight_format && li.act);
  }
  for (int i = 0; i < mq_model_n_warnings(m); i++) MQF_REQUIRE(mq_model_warning(m, i) != NULL);
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = 1;
  sp.n_ctx = 8;
  mq_session *s = NULL;
  if (mq_session_init(m, &sp, &s, &err) == MQ_OK) {
    int32_t toks[3] = {1, (int32_t)(info.n_vocab > 7 ? 7 : 0), (int32_t)(info.n_vocab - 1)};
    if (mq_session_eval(s, toks, 3, 1, &err) == MQ_OK) {
      int rows = 0;
      const float *lg = mq_session_logits(s, &rows);
      MQF_REQUIRE(lg && rows == 3);
      volatile float sink = lg[0] + lg[3 * (size_t)info.n_vocab - 1];
      (void)sink;
    }
    mq_session_free(s);
  }
  mq_model_free(m);
}

#endif
