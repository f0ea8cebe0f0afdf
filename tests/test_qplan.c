/* Method detection and the per-layer plan, from configs as the producers
 * write them. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/plan.h"
#include "test.h"

static char g_dir[256];

static void write_file(const char *name, const char *text) {
  char p[400];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

static void remove_file(const char *name) {
  char p[400];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  unlink(p);
}

/* Detect from a config.json text (plus side files already written). */
static int detect(const char *config, const char *override, mq_qconfig *q, mq_err *err) {
  json_t *root = json_loads(config, 0, NULL);
  CHECK(root != NULL);
  int rc = mq_qconfig_detect(g_dir, root, override, q, err);
  json_decref(root);
  return rc;
}

static void expect_plan(const mq_qconfig *q, const char *layer, const char *scheme, int bits,
                        int gs, mq_fmt fmt) {
  mq_lspec s;
  mq_err err = {0};
  int rc = mq_plan_linear(q, NULL, layer, &s, &err);
  CHECK_MSG(rc == MQ_OK, "%s: %s", layer, err.msg);
  CHECK_MSG(!strcmp(s.scheme, scheme) && s.bits == bits && s.group_size == gs && s.fmt == fmt,
            "%s: got %s bits %d group %d fmt %d, want %s bits %d group %d fmt %d", layer, s.scheme,
            s.bits, s.group_size, s.fmt, scheme, bits, gs, fmt);
}

#define L0 "model.layers.0."
#define Q "{\"model_type\": \"llama\", \"quantization_config\": "

int main(void) {
  snprintf(g_dir, sizeof g_dir, "%s/qplan-%d", MQ_BUILD_DIR, (int)getpid());
  mkdir(g_dir, 0777);
  mq_qconfig q;
  mq_err err = {0};

  /* unquantized */
  CHECK(detect("{\"model_type\": \"llama\"}", NULL, &q, &err) == MQ_OK && q.method == MQ_METHOD_NONE);
  expect_plan(&q, L0 "mlp.up_proj", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  CHECK(detect("{\"model_type\": \"llama\"}", "awq", &q, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "does not match") != NULL);
  CHECK(detect("{\"model_type\": \"llama\"}", "none", &q, &err) == MQ_OK);

  /* AWQ (AutoAWQ's keys), modules_to_not_convert substrings */
  CHECK(detect(Q "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, \"zero_point\": true, "
               "\"version\": \"gemm\", \"modules_to_not_convert\": [\"down_proj\"]}}", NULL, &q, &err) == MQ_OK);
  CHECK(q.method == MQ_METHOD_AWQ);
  expect_plan(&q, L0 "self_attn.q_proj", "W4A16", 4, 128, MQ_FMT_AWQ);
  expect_plan(&q, L0 "mlp.down_proj", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  expect_plan(&q, "lm_head", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"awq\", \"version\": \"gemv_fast\"}}", NULL, &q, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "gemv_fast") != NULL);
  CHECK(detect(Q "{\"quant_method\": \"awq\"}}", "gptq", &q, &err) == MQ_ERR_ARG);

  /* legacy AWQ quant_config.json (w_bit, q_group_size, version GEMM) */
  write_file("quant_config.json", "{\"zero_point\": true, \"q_group_size\": 64, \"w_bit\": 4, \"version\": \"GEMM\"}");
  CHECK(detect("{\"model_type\": \"llama\"}", NULL, &q, &err) == MQ_OK && q.method == MQ_METHOD_AWQ);
  expect_plan(&q, L0 "mlp.gate_proj", "W4A16", 4, 64, MQ_FMT_AWQ);
  mq_qconfig_free(&q);
  remove_file("quant_config.json");

  /* legacy AutoGPTQ quantize_config.json without quant_method */
  write_file("quantize_config.json", "{\"bits\": 8, \"group_size\": -1, \"desc_act\": true, \"sym\": true}");
  CHECK(detect("{\"model_type\": \"llama\"}", NULL, &q, &err) == MQ_OK && q.method == MQ_METHOD_GPTQ);
  expect_plan(&q, L0 "mlp.gate_proj", "W8A16", 8, -1, MQ_FMT_GPTQ);
  CHECK(!q.gptq_v2 && q.desc_act);
  mq_qconfig_free(&q);
  remove_file("quantize_config.json");

  /* GPTQ v2 with GPTQModel dynamic: first match wins, -: skips */
  CHECK(detect(Q "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"sym\": true, "
               "\"desc_act\": false, \"checkpoint_format\": \"gptq_v2\", \"lm_head\": false, \"dynamic\": {"
               "\"-:.*\\\\.mlp\\\\.down_proj\": {}, \"+:model\\\\.layers\\\\.1\\\\..*\": {\"bits\": 8, \"group_size\": 32}, "
               "\"model\\\\.layers\\\\.2\\\\.self_attn\\\\..*\": {\"bits\": 3}}}}", NULL, &q, &err) == MQ_OK);
  CHECK(q.gptq_v2);
  expect_plan(&q, L0 "self_attn.q_proj", "W4A16", 4, 128, MQ_FMT_GPTQ);
  expect_plan(&q, L0 "mlp.down_proj", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  expect_plan(&q, "model.layers.1.mlp.down_proj", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  expect_plan(&q, "model.layers.1.mlp.up_proj", "W8A16", 8, 32, MQ_FMT_GPTQ);
  expect_plan(&q, "model.layers.2.self_attn.k_proj", "W3A16", 3, 128, MQ_FMT_GPTQ);
  expect_plan(&q, "lm_head", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"gptq\", \"checkpoint_format\": \"marlin\"}}", NULL, &q, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(detect(Q "{\"quant_method\": \"gptq\", \"bits\": 5}}", NULL, &q, &err) == MQ_OK);
  mq_lspec s;
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "5-bit") && strstr(err.msg, L0 "mlp.up_proj"));
  mq_qconfig_free(&q);

  /* AutoRound: extra_config exact names, bits 16 = unquantized, block names */
  CHECK(detect(Q "{\"quant_method\": \"auto-round\", \"packing_format\": \"auto_round:auto_gptq\", "
               "\"bits\": 4, \"group_size\": 128, \"sym\": true, \"data_type\": \"int\", "
               "\"block_name_to_quantize\": \"model.layers\", \"extra_config\": {"
               "\"model.layers.0.mlp.down_proj\": {\"bits\": 8, \"group_size\": 32}, "
               "\"model.layers.1.self_attn.o_proj\": {\"bits\": 16}}}}", NULL, &q, &err) == MQ_OK);
  expect_plan(&q, L0 "mlp.down_proj", "W8A16", 8, 32, MQ_FMT_GPTQ);
  expect_plan(&q, L0 "mlp.up_proj", "W4A16", 4, 128, MQ_FMT_GPTQ);
  expect_plan(&q, "model.layers.1.self_attn.o_proj", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  expect_plan(&q, "lm_head", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_OK && s.gptq_v1 && !s.g_idx);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"auto-round\", \"packing_format\": \"auto_round:auto_awq\"}}", NULL, &q, &err) == MQ_OK);
  expect_plan(&q, L0 "mlp.up_proj", "W4A16", 4, 128, MQ_FMT_AWQ);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"auto-round\", \"packing_format\": \"auto_round:gptqmodel\"}}", NULL, &q, &err) == MQ_OK);
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_OK && !s.gptq_v1 && s.g_idx);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"auto-round\", \"packing_format\": \"auto_round:fp8_static\"}}", NULL, &q, &err) == MQ_ERR_UNSUPPORTED);

  /* compressed-tensors: exact name > regex > class; ignore wins */
  CHECK(detect(Q "{\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\", "
               "\"ignore\": [\"lm_head\", \"re:.*mlp\\\\.gate$\"], \"config_groups\": {"
               "\"group_0\": {\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": 4, \"type\": \"int\", "
               "\"symmetric\": true, \"strategy\": \"group\", \"group_size\": 128}},"
               "\"group_1\": {\"targets\": [\"re:.*down_proj\"], \"weights\": {\"num_bits\": 8, \"type\": \"int\", "
               "\"symmetric\": true, \"strategy\": \"channel\"}},"
               "\"group_2\": {\"targets\": [\"model.layers.1.mlp.down_proj\"], \"weights\": {\"num_bits\": 4, "
               "\"type\": \"int\", \"symmetric\": false, \"group_size\": 32}},"
               "\"group_3\": {\"targets\": [\"model.layers.2.mlp.up_proj\"], \"format\": \"int-quantized\", "
               "\"weights\": {\"num_bits\": 8, \"type\": \"int\", \"symmetric\": true, \"strategy\": \"channel\"}, "
               "\"input_activations\": {\"num_bits\": 8, \"type\": \"int\", \"symmetric\": true, "
               "\"strategy\": \"token\", \"dynamic\": true}}}}}", NULL, &q, &err) == MQ_OK);
  CHECK(q.method == MQ_METHOD_CTENSORS);
  expect_plan(&q, L0 "self_attn.q_proj", "W4A16", 4, 128, MQ_FMT_CT_PACKED);
  expect_plan(&q, L0 "mlp.down_proj", "W8A16", 8, -1, MQ_FMT_CT_PACKED);
  expect_plan(&q, "model.layers.1.mlp.down_proj", "W4A16", 4, 32, MQ_FMT_CT_PACKED);
  CHECK(mq_plan_linear(&q, NULL, "model.layers.1.mlp.down_proj", &s, &err) == MQ_OK && !s.sym);
  expect_plan(&q, "model.layers.2.mlp.up_proj", "W8A8_DYNAMIC", 8, -1, MQ_FMT_CT_INT);
  expect_plan(&q, "lm_head", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  expect_plan(&q, "model.layers.3.mlp.gate", "FLOAT", 16, -1, MQ_FMT_FLOAT);
  mq_qconfig_free(&q);

  /* W4A8 with activation clip: planned with its flag; on another scheme it is an error */
  CHECK(detect(Q "{\"quant_method\": \"compressed-tensors\", \"format\": \"int-quantized\", "
               "\"config_groups\": {\"group_1\": {\"targets\": [\"Linear\"], \"activation_use_clip\": true, "
               "\"weights\": {\"num_bits\": 4, \"type\": \"int\", \"symmetric\": true, \"strategy\": \"channel\"}, "
               "\"input_activations\": {\"num_bits\": 8, \"type\": \"int\", \"strategy\": \"token\", "
               "\"dynamic\": true}}}}}", NULL, &q, &err) == MQ_OK);
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_OK);
  CHECK(s.act_clip == 1 && s.bits == 4 && s.act == MQ_ACT_INT8_TOKEN && s.fmt == MQ_FMT_CT_INT);
  mq_qconfig_free(&q);
  CHECK(detect(Q "{\"quant_method\": \"compressed-tensors\", \"format\": \"int-quantized\", "
               "\"config_groups\": {\"group_1\": {\"targets\": [\"Linear\"], \"activation_use_clip\": true, "
               "\"weights\": {\"num_bits\": 8, \"type\": \"int\", \"symmetric\": true, \"strategy\": \"channel\"}, "
               "\"input_activations\": {\"num_bits\": 8, \"type\": \"int\", \"strategy\": \"token\", "
               "\"dynamic\": true}}}}}", NULL, &q, &err) == MQ_OK);
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "activation_use_clip") != NULL && strstr(err.msg, "up_proj") != NULL);
  mq_qconfig_free(&q);

  /* ModelSlim's description wins over config.json */
  write_file("quant_model_description.json", "{\"model_quant_type\": \"W8A8_DYNAMIC\", \"version\": \"1.0.0\"}");
  CHECK(detect(Q "{\"quant_method\": \"awq\"}}", NULL, &q, &err) == MQ_OK && q.method == MQ_METHOD_MODELSLIM);
  mq_qconfig_free(&q);
  remove_file("quant_model_description.json");

  /* errors */
  CHECK(detect(Q "{\"quant_method\": \"bitsandbytes\"}}", NULL, &q, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "bitsandbytes") != NULL);
  CHECK(detect(Q "{\"bits\": 4}}", NULL, &q, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "quant_method") != NULL);
  CHECK(detect(Q "[1, 2]}", NULL, &q, &err) == MQ_ERR_FORMAT);
  CHECK(detect(Q "{\"quant_method\": \"gptq\", \"group_size\": \"128\"}}", NULL, &q, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "group_size") != NULL);
  CHECK(detect(Q "{\"quant_method\": \"gptq\", \"dynamic\": {\"+:([\": {}}}}", NULL, &q, &err) == MQ_OK);
  CHECK(mq_plan_linear(&q, NULL, L0 "mlp.up_proj", &s, &err) == MQ_ERR_FORMAT);
  CHECK(strstr(err.msg, "regular expression") != NULL);
  mq_qconfig_free(&q);
  rmdir(g_dir);
  return mqt_report("qplan");
}
