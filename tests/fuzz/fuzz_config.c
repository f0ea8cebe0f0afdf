/* libFuzzer target: config.json text -> mq_config_parse, then the RoPE
 * frequency tables of an accepted config (a few positions), so fuzzed
 * scaling parameters run through the same arithmetic as at load. */
#include <jansson.h>
#include <stdint.h>

#include "fuzz_util.h"
#include "model/config.h"
#include "model/rope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t jerr;
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return 0;
  static mq_config c; /* large (per-layer flags): not on the stack */
  mq_err err = {0};
  int rc = mq_config_parse(root, "fuzz/config.json", &c, &err);
  json_decref(root);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    return 0;
  }
  MQF_REQUIRE(c.n_layer >= 1 && c.n_layer <= MQ_MAX_LAYERS);
  MQF_REQUIRE(c.n_head >= 1 && c.n_head_kv >= 1 && c.n_head % c.n_head_kv == 0);
  MQF_REQUIRE(c.head_dim >= 2 && c.head_dim <= 4096 && c.head_dim % 2 == 0);
  MQF_REQUIRE(c.rope.rot_dim >= 2 && c.rope.rot_dim <= c.head_dim && c.rope.rot_dim % 2 == 0);
  MQF_REQUIRE(c.n_vocab >= 1 && c.n_embd >= 1 && c.n_ff >= 1 && c.n_ctx_train >= 1);
  MQF_REQUIRE(c.n_expert_used <= c.n_expert);
  MQF_REQUIRE(c.n_expert == 0 || c.sparse_step >= 1);
  for (int i = 0; i < c.n_layer; i++) (void)mq_config_layer_is_moe(&c, i);
  enum { NPOS = 3 };
  int half = c.rope.rot_dim / 2;
  float *cs = malloc((size_t)NPOS * half * sizeof(float)), *sn = malloc((size_t)NPOS * half * sizeof(float));
  MQF_REQUIRE(cs && sn);
  mq_rope_tables(&c.rope, NPOS, cs, sn);
  free(cs);
  free(sn);
  return 0;
}
