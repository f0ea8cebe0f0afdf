/* Architecture hyper-parameters from a Hugging Face config.json. */
#ifndef MQ_MODEL_CONFIG_H
#define MQ_MODEL_CONFIG_H

#include <jansson.h>

#include "mixq.h"

typedef enum mq_arch { MQ_ARCH_LLAMA = 0, MQ_ARCH_QWEN2, MQ_ARCH_QWEN3 } mq_arch;

typedef enum mq_rope_type {
  MQ_ROPE_DEFAULT = 0,
  MQ_ROPE_LINEAR,
  MQ_ROPE_LLAMA3,
  MQ_ROPE_YARN,
} mq_rope_type;

typedef struct mq_rope {
  mq_rope_type type;
  double theta;        /* rope_theta */
  int rot_dim;         /* rotated dims per head: head_dim * partial_rotary_factor */
  double factor;       /* linear / llama3 / yarn */
  double low_freq_factor, high_freq_factor; /* llama3 */
  int orig_ctx;        /* original_max_position_embeddings (llama3, yarn) */
  double beta_fast, beta_slow; /* yarn */
  double attn_factor;  /* yarn: multiplies cos and sin */
  int truncate;        /* yarn: floor/ceil the correction range */
} mq_rope;

typedef struct mq_config {
  mq_arch arch;
  const char *arch_name; /* static string: "llama", "qwen2", "qwen3" */
  int n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim;
  int n_ctx_train;
  double norm_eps;
  mq_rope rope;
  int qkv_bias;   /* q/k/v projections carry a bias */
  int o_bias;     /* o_proj carries a bias (llama attention_bias) */
  int mlp_bias;   /* gate/up/down carry a bias (llama mlp_bias) */
  int qk_norm;    /* per-head RMSNorm of q and k before RoPE (qwen3) */
  int tie_embeddings;
  int bos_id, eos_id; /* -1 when absent */
} mq_config;

/* Fill cfg from a parsed config.json; `where` names the file in errors.
 * Unknown model_type, missing keys and inconsistent sizes are errors. */
int mq_config_parse(const json_t *root, const char *where, mq_config *cfg, mq_err *err);

#endif
