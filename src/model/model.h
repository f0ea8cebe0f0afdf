/* The immutable model: config, the mapped checkpoint and the weights bound
 * to the blocks of the architecture. Shared read-only by sessions. */
#ifndef MQ_MODEL_MODEL_H
#define MQ_MODEL_MODEL_H

#include "io/checkpoint.h"
#include "io/gguf.h"
#include "kernels/linear.h"
#include "model/config.h"
#include "quant/qconfig.h"

/* A sparse mixture-of-experts block. Experts' gate/up (w13) and down (w2)
 * are separate linears, each with its own scheme; w13 and w2 may differ. */
typedef struct mq_moe {
  mq_linear router;            /* [n_expert, n_embd] */
  mq_linear *gate, *up, *down; /* [n_expert] each: [n_ff_exp, n_embd], [n_embd, n_ff_exp] */
  int has_shared;              /* qwen2_moe shared expert */
  mq_linear sh_gate, sh_up, sh_down, sh_router; /* sh_router: [1, n_embd] */
} mq_moe;

typedef struct mq_layer {
  const float *attn_norm;       /* [n_embd] */
  const float *attn_norm_b, *ffn_norm_b; /* [n_embd] anti-outlier norm bias, or NULL */
  mq_linear wq, wk, wv, wo;     /* q: [n_head*hd, n_embd], k/v: [n_kv*hd, n_embd], o: [n_embd, n_head*hd] */
  const float *q_norm, *k_norm; /* [head_dim] (qwen3) or NULL */
  const float *ffn_norm;        /* [n_embd] */
  mq_linear gate, up, down;     /* gate/up: [n_ff, n_embd], down: [n_embd, n_ff] */
  mq_moe *moe;                  /* non-NULL: sparse MoE block instead of gate/up/down */
} mq_layer;

typedef struct mq_alloc_node {
  struct mq_alloc_node *next;
  /* payload follows, 64-byte aligned */
} mq_alloc_node;

struct mq_model {
  mq_config cfg;
  mq_method method; /* quantization method the checkpoint declares */
  mq_ckpt ckpt;     /* safetensors checkpoints */
  mq_gguf_file gguf; /* GGUF files */
  mq_linear embd;       /* token embeddings [n_vocab, n_embd]: rows are looked up */
  mq_layer *layers;     /* [n_layer] */
  const float *out_norm;
  const float *out_norm_b; /* [n_embd] or NULL */
  mq_linear lm_head; /* a copy of embd when tied */
  int max_in;        /* largest n_in of any linear (scratch size) */
  int max_gather;    /* largest mq_linear_gather_floats of any linear */
  uint64_t n_params, n_bytes;
  mq_linear_info *linears; /* description of every bound linear, load order */
  const mq_linear **linear_ptr; /* the bound linear of each description */
  json_t *config;          /* config.json as read (for exporters) */
  int n_linears, cap_linears;
  int no_repack;     /* keep checkpoint layouts (mq_model_params.no_repack) */
  int npu_numerics;  /* round scales (and outputs) to bf16 where SGLang on Ascend does */
  char **warnings;   /* things the loader noticed and let pass (inspect shows them) */
  int n_warnings;
  mq_alloc_node *owned; /* f32 copies of small tensors; freed with the model */
};

/* Load a .gguf file (load_gguf.c). */
int mq_model_load_gguf(const char *path, const mq_model_params *params, mq_model **out, mq_err *err);

/* Repack a bound linear into the kernels' interleaved layout where that
 * pays, freeing (or dropping the pages of) what it replaces (repack.c). */
int mq_model_repack(struct mq_model *m, mq_linear *l, mq_err *err);
/* Drop from memory the mapped pages of module prefix's tensors that bound
 * linear l no longer reads (an adapter converted them): read-only private
 * mappings, so nothing is lost; keeps peak RSS at what the kernels read. */
void mq_model_drop_sources(struct mq_model *m, const char *prefix, const mq_linear *l);

/* Allocate model-owned memory (64-byte aligned, zeroed); NULL on failure. */
void *mq_model_alloc(struct mq_model *m, size_t bytes);
/* Record a load warning (formatted); silently dropped when out of memory. */
void mq_model_warn(struct mq_model *m, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
