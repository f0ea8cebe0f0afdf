/* A float Hugging Face checkpoint as a GGUF file (`mixq quantize SRC
 * DST.gguf --format gguf-*`; docs/quantize.md): llama.cpp's tensor names
 * and architecture keys (specs/formats.md §5.7-5.9), llama's q/k rows
 * permuted to GGUF's adjacent-pair RoPE order, MoE experts stacked into one
 * 3-D tensor per projection, and the tokenizer from tokenizer.json
 * (tokenizer/gguf_vocab_write.h).
 *
 * Architectures: llama (and mixtral, written as llama with experts), qwen2,
 * qwen3, qwen3_moe, qwen2_moe. Refused (MQ_ERR_UNSUPPORTED, naming the
 * reason): llama3 / yarn RoPE scaling, partial RoPE on llama, llama or qwen3
 * attention/MLP biases, qwen3_moe without norm_topk_prob (GGUF readers
 * assume them), quantized sources.
 *
 * Tensor types per file type (1-D tensors and MoE routers stay F32 always):
 *   gguf-f32 / gguf-f16 / gguf-bf16   every weight in that type
 *   gguf-q8_0    every weight Q8_0
 *   gguf-q4_0    Q4_0; the output matrix (or the embeddings when they are
 *                tied) Q6_K, as llama-quantize does
 *   gguf-q4_k_m  Q4_K; output Q6_K; attn_v and ffn_down (dense, experts,
 *                shared expert) Q6_K in the layers llama.cpp's
 *                "use_more_bits" picks (the first and last eighth of the
 *                layers and every third layer between)
 * When a row length is not a multiple of the chosen type's block, the type
 * falls back as llama-quantize does: Q4_K -> Q5_0, Q6_K -> Q8_0, and any
 * 32-block type -> F16 (llama-quantize refuses Q4_0 / Q8_0 files in that
 * case; mixq writes F16 for those tensors and says so in the report). */
#ifndef MQ_QUANT_GGUF_CONVERT_H
#define MQ_QUANT_GGUF_CONVERT_H

#include <stdint.h>

#include "mixq.h"

typedef enum mq_gguf_ftype {
  MQ_GGUF_FTYPE_F32 = 0,
  MQ_GGUF_FTYPE_F16,
  MQ_GGUF_FTYPE_BF16,
  MQ_GGUF_FTYPE_Q8_0,
  MQ_GGUF_FTYPE_Q4_0,
  MQ_GGUF_FTYPE_Q4_K_M,
} mq_gguf_ftype;

/* "gguf-f32", "gguf-f16", "gguf-bf16", "gguf-q8_0", "gguf-q4_0",
 * "gguf-q4_k_m" (case-insensitive); -1 if s is none of them. */
int mq_gguf_ftype_parse(const char *s, mq_gguf_ftype *out);

typedef struct mq_gguf_convert_report {
  int n_tensors;
  int n_by_type[64];   /* tensors per ggml type id (ids < 64) */
  int n_fallback;      /* tensors whose row length forced another type */
  uint64_t bytes;      /* size of the file */
  char warnings[2048]; /* newline-separated, may be empty */
} mq_gguf_convert_report;

typedef struct mq_gguf_convert_opts {
  const char *src; /* float HF checkpoint folder */
  const char *dst; /* output file, must end in ".gguf" (written as dst.tmp, then renamed) */
  mq_gguf_ftype ftype;
  int n_threads;                  /* 0: all CPUs */
  mq_gguf_convert_report *report; /* optional, filled on success */
} mq_gguf_convert_opts;

int mq_gguf_convert(const mq_gguf_convert_opts *o, mq_err *err);

#endif
