/* The per-layer plan ("mix-bits"): one resolved scheme for every linear
 * module, computed from the quantization settings and tensor names only,
 * before any weight is read. */
#ifndef MQ_QUANT_PLAN_H
#define MQ_QUANT_PLAN_H

#include "io/checkpoint.h"
#include "kernels/linear.h"
#include "quant/qconfig.h"

typedef enum mq_fmt {
  MQ_FMT_FLOAT = 0,  /* .weight in F32/F16/BF16 */
  MQ_FMT_AWQ,        /* AWQ GEMM: qweight [K, N/8] interleaved, qzeros, scales [G, N] */
  MQ_FMT_GPTQ,       /* GPTQ: qweight packed along K, qzeros along N, scales, g_idx */
  MQ_FMT_CT_PACKED,  /* compressed-tensors pack-quantized: weight_packed [N, Kw] */
  MQ_FMT_CT_INT,     /* compressed-tensors int-/naive-quantized: I8 weight [N, K] */
  MQ_FMT_CT_FLOAT,   /* compressed-tensors float-quantized: F8_E4M3 weight */
  MQ_FMT_MODELSLIM,  /* ModelSlim description types */
  MQ_FMT_GGUF,       /* ggml block types, per tensor */
} mq_fmt;

typedef struct mq_lspec {
  mq_fmt fmt;
  char scheme[32]; /* producer's name: "FLOAT", "W4A16", "W8A8_DYNAMIC", ... */
  int bits;        /* weight bits (16 for FLOAT) */
  int group_size;  /* -1: one group per output channel (per-channel) */
  int sym;         /* symmetric: no stored zero point needed */
  int zero_point;  /* AWQ: zeros stored */
  int gptq_v1;     /* GPTQ zeros stored minus one */
  int g_idx;       /* a g_idx tensor is expected (act-order) */
  mq_act act;
  int act_clip;    /* compressed-tensors W4A8 "activation_use_clip": name.bias is
                      the NPU kernel's 8 * s * sum(W) term, not a linear bias */
} mq_lspec;

/* Resolve the spec of linear module `name` (e.g. "model.layers.0.mlp.up_proj",
 * "lm_head"). */
int mq_plan_linear(const mq_qconfig *q, const mq_ckpt *ck, const char *name, mq_lspec *out,
                   mq_err *err);

/* 1 when two shards of a fused layer (q/k/v, gate/up) may be computed alike. */
int mq_lspec_same(const mq_lspec *a, const mq_lspec *b);
/* "W4A16 (4-bit, group 128, asym)" into buf. */
const char *mq_lspec_str(const mq_lspec *s, char *buf, int cap);

#endif
