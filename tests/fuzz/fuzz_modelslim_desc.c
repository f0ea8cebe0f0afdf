/* libFuzzer target: quant_model_description.json contents.
 *   1. in a folder of its own: mq_qconfig_detect + mq_plan_linear for
 *      typical layer names;
 *   2. beside a real ModelSlim checkpoint (tiny-llama3 made W8A8 /
 *      W8A8_DYNAMIC by hand, tests/modelslim_tiny.h): mq_model_load (the
 *      whole-description checks, the plan, the adapters), and when it loads,
 *      an evaluation. */
#include <jansson.h>
#include <stdint.h>

#include "../modelslim_tiny.h"
#include "fuzz_model.h"
#include "quant/plan.h"
#include "quant/qconfig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_plain[512], g_ms[512];
static json_t *g_config;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  mqf_dir("plain", g_plain, sizeof g_plain);
  mqf_dir("ms", g_ms, sizeof g_ms);
  mq_err err = {0};
  if (mqt_make_modelslim(MQ_TEST_DATA "/tiny-llama3", g_ms, mqt_ms_default_type, &err) != MQ_OK) {
    fprintf(stderr, "fuzz setup: %s\n", err.msg);
    abort();
  }
  json_error_t je;
  g_config = json_load_file(MQ_TEST_DATA "/tiny-llama3/config.json", 0, &je);
  MQF_REQUIRE(g_config != NULL);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mqf_write(g_plain, "quant_model_description.json", data, size);
  mq_qconfig q;
  mq_err err = {0};
  int rc = mq_qconfig_detect(g_plain, g_config, NULL, &q, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    return 0; /* not JSON, or not an object: the load would fail the same way */
  }
  MQF_REQUIRE(q.method == MQ_METHOD_MODELSLIM);
  mq_ckpt ck;
  memset(&ck, 0, sizeof ck);
  for (int i = 0; i < MQF_N_LAYER_NAMES; i++) {
    mq_lspec s;
    memset(&err, 0, sizeof err);
    rc = mq_plan_linear(&q, &ck, mqf_layer_names[i], &s, &err);
    if (rc != MQ_OK) MQF_REQUIRE_ERR(rc, err);
  }
  mq_qconfig_free(&q);
  mqf_write(g_ms, "quant_model_description.json", data, size);
  mqf_load_and_run(g_ms);
  return 0;
}
