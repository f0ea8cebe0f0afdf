/* config.json parsing and RoPE frequency scaling. */
#include "model/config.h"
#include "model/rope.h"
#include "test.h"

static int parse(const char *text, mq_config *c, mq_err *err) {
  json_t *j = json_loads(text, 0, NULL);
  if (!j) return -100;
  int rc = mq_config_parse(j, "config.json", c, err);
  json_decref(j);
  return rc;
}

#define BASE "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, " \
             "\"num_attention_heads\": 4, \"vocab_size\": 100"

static void expect_error(const char *text, int code, const char *needle) {
  mq_config c;
  mq_err err = {0};
  int rc = parse(text, &c, &err);
  CHECK_MSG(rc == code, "%s: rc %d, want %d (%s)", text, rc, code, err.msg);
  CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
  CHECK_MSG(strstr(err.msg, "config.json") != NULL, "message '%s' does not name the file", err.msg);
}

int main(void) {
  mq_config c;
  mq_err err = {0};
  /* llama defaults */
  CHECK(parse("{\"model_type\": \"llama\", " BASE "}", &c, &err) == MQ_OK);
  CHECK(c.arch == MQ_ARCH_LLAMA && c.head_dim == 16 && c.n_head_kv == 4 && !c.qkv_bias);
  CHECK(c.rope.type == MQ_ROPE_DEFAULT && c.rope.theta == 10000.0 && c.rope.rot_dim == 16);
  CHECK(!c.tie_embeddings && c.eos_id == -1);
  /* qwen2: q/k/v bias hard-wired; eos list keeps the first */
  CHECK(parse("{\"model_type\": \"qwen2\", \"num_key_value_heads\": 2, \"eos_token_id\": [7, 9], "
              "\"tie_word_embeddings\": true, " BASE "}", &c, &err) == MQ_OK);
  CHECK(c.qkv_bias && !c.o_bias && c.n_head_kv == 2 && c.eos_id == 7 && c.tie_embeddings);
  /* qwen3: explicit head_dim, q/k norm */
  CHECK(parse("{\"model_type\": \"qwen3\", \"head_dim\": 32, " BASE "}", &c, &err) == MQ_OK);
  CHECK(c.qk_norm && c.head_dim == 32 && !c.qkv_bias);
  /* llama attention_bias and mlp_bias */
  CHECK(parse("{\"model_type\": \"llama\", \"attention_bias\": true, \"mlp_bias\": true, " BASE "}",
              &c, &err) == MQ_OK);
  CHECK(c.qkv_bias && c.o_bias && c.mlp_bias);
  /* transformers v5 rope_parameters */
  CHECK(parse("{\"model_type\": \"llama\", \"rope_parameters\": {\"rope_type\": \"linear\", "
              "\"rope_theta\": 5000, \"factor\": 2.0}, " BASE "}", &c, &err) == MQ_OK);
  CHECK(c.rope.type == MQ_ROPE_LINEAR && c.rope.theta == 5000 && c.rope.factor == 2.0);
  /* legacy "type" key */
  CHECK(parse("{\"model_type\": \"llama\", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 4}, " BASE "}",
              &c, &err) == MQ_OK);
  CHECK(c.rope.type == MQ_ROPE_LINEAR && c.rope.factor == 4.0);

  expect_error("{\"model_type\": \"gpt2\", " BASE "}", MQ_ERR_UNSUPPORTED, "gpt2");
  expect_error("{" BASE "}", MQ_ERR_FORMAT, "model_type");
  expect_error("{\"model_type\": \"llama\", \"hidden_size\": 64}", MQ_ERR_FORMAT, "vocab_size");
  expect_error("{\"model_type\": \"llama\", \"num_key_value_heads\": 3, " BASE "}", MQ_ERR_FORMAT,
               "num_key_value_heads");
  expect_error("{\"model_type\": \"llama\", \"vocab_size\": -5, \"hidden_size\": 64, "
               "\"intermediate_size\": 1, \"num_hidden_layers\": 1, \"num_attention_heads\": 1}",
               MQ_ERR_FORMAT, "vocab_size");
  expect_error("{\"model_type\": \"llama\", \"hidden_act\": \"gelu\", " BASE "}", MQ_ERR_UNSUPPORTED,
               "gelu");
  expect_error("{\"model_type\": \"qwen2\", \"use_sliding_window\": true, " BASE "}",
               MQ_ERR_UNSUPPORTED, "sliding");
  expect_error("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2}, " BASE "}",
               MQ_ERR_UNSUPPORTED, "dynamic");
  expect_error("{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"intermediate_size\": 1, "
               "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 1}",
               MQ_ERR_FORMAT, "hidden_size");
  expect_error("{\"model_type\": \"llama\", \"rope_theta\": 0, " BASE "}", MQ_ERR_FORMAT, "rope_theta");

  /* llama3 scaling, values from transformers' formula (tools/make_dense_golden.py):
   * head_dim 16, theta 1e4, factor 8, low 1, high 4, original context 32:
   * i=0 unchanged, i=1 in the smooth band (0.316228 -> 0.0958404), i>=2 / 8. */
  CHECK(parse("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
              "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
              "\"original_max_position_embeddings\": 32}, " BASE "}", &c, &err) == MQ_OK);
  double inv[8];
  mq_rope_inv_freq(&c.rope, inv);
  CHECK_NEAR(inv[0], 1.0, 1e-12);
  CHECK_NEAR(inv[1], 0.0958404, 1e-6);
  CHECK_NEAR(inv[2], pow(10000.0, -4.0 / 16) / 8, 1e-12);
  CHECK_NEAR(inv[7], pow(10000.0, -14.0 / 16) / 8, 1e-12);

  /* yarn: head_dim 32, theta 1e6, factor 4, original 32: correction range
   * [0, 2], so i=0 unscaled, i=1 half way, i>=2 divided by 4; attention
   * factor 0.1 ln 4 + 1. */
  CHECK(parse("{\"model_type\": \"qwen3\", \"head_dim\": 32, \"rope_theta\": 1000000, "
              "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
              "\"original_max_position_embeddings\": 32}, " BASE "}", &c, &err) == MQ_OK);
  double yi[16];
  mq_rope_inv_freq(&c.rope, yi);
  double b1 = pow(1e6, -2.0 / 32);
  CHECK_NEAR(yi[0], 1.0, 1e-12);
  CHECK_NEAR(yi[1], 0.5 * b1 + 0.5 * b1 / 4, 1e-12);
  CHECK_NEAR(yi[5], pow(1e6, -10.0 / 32) / 4, 1e-12);
  CHECK_NEAR(c.rope.attn_factor, 0.1 * log(4.0) + 1, 1e-12);

  /* tables: position p row = cos/sin(p * inv) * attn_factor */
  float ct[3 * 16], st[3 * 16];
  mq_rope_tables(&c.rope, 3, ct, st);
  CHECK_NEAR(ct[2 * 16 + 1], cos(2 * yi[1]) * c.rope.attn_factor, 1e-6);
  CHECK_NEAR(st[2 * 16 + 1], sin(2 * yi[1]) * c.rope.attn_factor, 1e-6);
  return mqt_report("config");
}
