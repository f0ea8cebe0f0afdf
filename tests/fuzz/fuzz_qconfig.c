/* libFuzzer target: a quantization_config JSON object.
 *   1. as config.json's quantization_config: mq_qconfig_detect + mq_plan_linear
 *      for typical layer names;
 *   2. as a legacy side file (quantize_config.json or quant_config.json);
 *   3. as the quantization_config of a real tiny checkpoint quantized in the
 *      format the text names (awq, gptq, gptq_v2, auto-round, compressed-
 *      tensors; float otherwise): mq_model_load, and when it loads, an
 *      evaluation. This is where settings that disagree with the tensors
 *      (bits, group_size, g_idx, formats) meet the adapters. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_model.h"
#include "quant/plan.h"
#include "quant/qconfig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_empty[512], g_side[512], g_float[512], g_awq[512], g_gptq[512], g_gptq2[512],
    g_ar[512], g_ct[512];
static json_t *g_config; /* tiny-llama3's config.json */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  mqf_dir("empty", g_empty, sizeof g_empty);
  mqf_dir("side", g_side, sizeof g_side);
  mqf_dir("float", g_float, sizeof g_float);
  mqf_copy(MQ_TEST_DATA "/tiny-llama3", g_float, "model.safetensors");
  mqf_quantized("awq", MQ_QFORMAT_AWQ, 4, 32, -1, 0, MQ_QPACKING_DEFAULT, g_awq, sizeof g_awq);
  mqf_quantized("gptq", MQ_QFORMAT_GPTQ, 4, 32, 0, 1, MQ_QPACKING_DEFAULT, g_gptq, sizeof g_gptq);
  mqf_quantized("gptq2", MQ_QFORMAT_GPTQ_V2, 8, 32, 1, 0, MQ_QPACKING_DEFAULT, g_gptq2, sizeof g_gptq2);
  mqf_quantized("ar", MQ_QFORMAT_AUTOROUND, 4, 32, 1, 0, MQ_QPACKING_AUTO_GPTQ, g_ar, sizeof g_ar);
  mqf_quantized("ct", MQ_QFORMAT_CT_W4A16, 4, 32, 0, 1, MQ_QPACKING_DEFAULT, g_ct, sizeof g_ct);
  json_error_t je;
  g_config = json_load_file(MQ_TEST_DATA "/tiny-llama3/config.json", 0, &je);
  MQF_REQUIRE(g_config != NULL);
  return 0;
}

static void plan_all(const char *dir, const json_t *config) {
  mq_qconfig q;
  mq_err err = {0};
  int rc = mq_qconfig_detect(dir, config, NULL, &q, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    MQF_REQUIRE(q.q == NULL);
    return;
  }
  mq_ckpt ck;
  memset(&ck, 0, sizeof ck);
  for (int i = 0; i < MQF_N_LAYER_NAMES; i++) {
    mq_lspec s;
    memset(&err, 0, sizeof err);
    rc = mq_plan_linear(&q, &ck, mqf_layer_names[i], &s, &err);
    if (rc != MQ_OK) {
      MQF_REQUIRE_ERR(rc, err);
      continue;
    }
    char buf[96];
    mq_lspec_str(&s, buf, sizeof buf);
    MQF_REQUIRE(s.bits >= 1 && s.bits <= 16);
    MQF_REQUIRE(s.group_size != 0);
    (void)mq_lspec_same(&s, &s);
  }
  mq_qconfig_free(&q);
}

static int has(const uint8_t *d, size_t n, const char *s) { return memmem(d, n, s, strlen(s)) != NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t je;
  json_t *qc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
  if (!qc) return 0;
  /* 1. inside config.json */
  json_t *cfg = json_object();
  json_object_set(cfg, "quantization_config", qc);
  plan_all(g_empty, cfg);
  json_decref(cfg);
  /* 2. a legacy side file */
  const char *side = size % 2 ? "quantize_config.json" : "quant_config.json";
  mqf_write(g_side, side, data, size);
  cfg = json_object();
  plan_all(g_side, cfg);
  json_decref(cfg);
  char p[600];
  snprintf(p, sizeof p, "%s/%s", g_side, side);
  unlink(p);
  /* 3. a real checkpoint */
  const char *dir = g_float;
  if (has(data, size, "compressed")) dir = g_ct;
  else if (has(data, size, "round")) dir = g_ar;
  else if (has(data, size, "gptq_v2")) dir = g_gptq2;
  else if (has(data, size, "gptq")) dir = g_gptq;
  else if (has(data, size, "awq")) dir = g_awq;
  cfg = json_deep_copy(g_config);
  json_object_set(cfg, "quantization_config", qc);
  snprintf(p, sizeof p, "%s/config.json", dir);
  MQF_REQUIRE(json_dump_file(cfg, p, 0) == 0);
  json_decref(cfg);
  json_decref(qc);
  mqf_load_and_run(dir);
  return 0;
}
