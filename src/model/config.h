/* Architecture hyper-parameters from a Hugging Face config.json. */
#ifndef MQ_MODEL_CONFIG_H
#define MQ_MODEL_CONFIG_H

#include <jansson.h>

#include "mixq.h"

typedef enum mq_arch {
  MQ_ARCH_LLAMA = 0,
  MQ_ARCH_QWEN2,
  MQ_ARCH_QWEN3,
  MQ_ARCH_QWEN3_MOE,
  MQ_ARCH_MIXTRAL,
  MQ_ARCH_QWEN2_MOE,
} mq_arch;

#define MQ_MAX_LAYERS 4096

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
  int interleaved;     /* rotate adjacent pairs (x[2i], x[2i+1]) as GGUF llama
                          stores q/k; 0: Hugging Face halves (x[i], x[i+rot/2]) */
  double factor;       /* linear / llama3 / yarn */
  double low_freq_factor, high_freq_factor; /* llama3 */
  int orig_ctx;        /* original_max_position_embeddings (llama3, yarn) */
  double beta_fast, beta_slow; /* yarn */
  double attn_factor;  /* yarn: multiplies cos and sin */
  int truncate;        /* yarn: floor/ceil the correction range */
  /* GGUF rope_freqs.weight (rot_dim/2 values, model-owned): inv_freq[i] /=
   * freq_factors[i] after the scaling above, as llama.cpp's rope applies
   * them (Llama 3.1's scaling travels in GGUF this way); NULL: none */
  const float *freq_factors;
} mq_rope;

typedef struct mq_config {
  mq_arch arch;
  const char *arch_name; /* static string: the model_type */
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
  int sliding_window;  /* 0: full attention; else keys within this many positions (mixtral) */
  /* Mixture of experts (0 experts: dense) */
  int n_expert, n_expert_used;
  int n_ff_exp;        /* intermediate size of one expert */
  int n_ff_shexp;      /* qwen2_moe shared expert (0: none) */
  int norm_topk;       /* renormalize the top-k routing weights */
  int sparse_step;     /* decoder_sparse_step */
  unsigned char mlp_only[MQ_MAX_LAYERS]; /* 1: dense MLP in a MoE model */
} mq_config;

/* 1 when layer i has a sparse MoE block. */
int mq_config_layer_is_moe(const mq_config *c, int i);

/* Fill cfg from a parsed config.json; `where` names the file in errors.
 * Unknown model_type, missing keys and inconsistent sizes are errors. */
int mq_config_parse(const json_t *root, const char *where, mq_config *cfg, mq_err *err);

#endif
