/* The quantizing writer: a float Hugging Face checkpoint in, a quantized
 * checkpoint out, laid out the way each producer writes it (AutoAWQ GEMM,
 * AutoGPTQ v1, GPTQModel v2, AutoRound per packing_format, compressed-tensors
 * pack-quantized and int-quantized, ModelSlim's v1 saver), round-to-nearest.
 * For making test checkpoints; docs/quantize.md lists the exact tensors,
 * config keys and description entries.
 *
 * Quantized: every model.layers.N.self_attn.{q,k,v,o}_proj, mlp.{gate,up,
 * down}_proj, MoE experts (mlp.experts.E.{gate,up,down}_proj, Mixtral
 * block_sparse_moe.experts.E.{w1,w3,w2}) and the Qwen2-MoE shared expert
 * (mlp.shared_expert.{gate,up,down}_proj), 2-D float .weight. Everything else
 * is copied unchanged; other 2-D float weights (lm_head, routers, ...) are
 * declared unquantized the way the producer would. */
#ifndef MQ_QUANT_WRITER_H
#define MQ_QUANT_WRITER_H

#include <stdint.h>

#include "mixq.h"

typedef enum mq_qformat {
  MQ_QFORMAT_AWQ = 0,   /* AutoAWQ GEMM (quant_method "awq", version "gemm") */
  MQ_QFORMAT_GPTQ,      /* AutoGPTQ, checkpoint_format "gptq" (v1 zeros) */
  MQ_QFORMAT_GPTQ_V2,   /* GPTQModel, checkpoint_format "gptq_v2" */
  MQ_QFORMAT_AUTOROUND, /* quant_method "auto-round", see mq_qpacking */
  MQ_QFORMAT_CT_W4A16,  /* compressed-tensors pack-quantized, default 4 bits */
  MQ_QFORMAT_CT_W8A16,  /* compressed-tensors pack-quantized, default 8 bits */
  MQ_QFORMAT_CT_W8A8,   /* compressed-tensors int-quantized: int8 channel, int8 token dynamic */
  MQ_QFORMAT_CT_W4A8,   /* compressed-tensors int-quantized: int4 (in I8) group, int8 token */
  MQ_QFORMAT_MS_W8A8,   /* ModelSlim W8A8 (static per-tensor activations, calibrated) */
  MQ_QFORMAT_MS_W8A8_DYNAMIC, /* ModelSlim W8A8_DYNAMIC */
  MQ_QFORMAT_MS_W4A4,         /* ModelSlim W4A4_DYNAMIC */
  MQ_QFORMAT_MS_W4A8,         /* ModelSlim W4A8_DYNAMIC (int4 packed along N) */
  MQ_QFORMAT_MS_MXFP8,        /* ModelSlim W8A8_MXFP8 */
  MQ_QFORMAT_MS_W8A16,        /* ModelSlim W8A16 (weight-only int8) */
} mq_qformat;

typedef enum mq_qpacking {
  MQ_QPACKING_DEFAULT = 0, /* auto-round: auto_gptq if sym else auto_round; CT: aligned */
  MQ_QPACKING_AUTO_GPTQ,   /* "auto_round:auto_gptq": GPTQ layout, v1 zeros, no g_idx */
  MQ_QPACKING_AUTO_ROUND,  /* "auto_round": GPTQ layout, exact zeros, no g_idx */
  MQ_QPACKING_GPTQMODEL,   /* "auto_round:gptqmodel": GPTQ layout, exact zeros, g_idx */
  MQ_QPACKING_AUTO_AWQ,    /* "auto_round:auto_awq": AWQ GEMM layout */
  MQ_QPACKING_CT_ALIGNED,  /* compressed-tensors <= 0.17 pack_to_int32 (config version 0.12.2) */
  MQ_QPACKING_CT_DENSE,    /* compressed-tensors >= 0.18 bit-stream (config version 0.18.0) */
} mq_qpacking;

/* --layer-bits REGEX=B: layers whose module name the regex matches at its
 * start (Python re.match) get B bits; B = 16 leaves them unquantized. */
typedef struct mq_layer_bits {
  const char *regex;
  int bits;
} mq_layer_bits;

/* --mix REGEX=SCHEME: layers whose module name the regex matches at its
 * start get SCHEME: a scheme name of the format's family (ModelSlim: W8A8,
 * W8A8_DYNAMIC, W4A4_DYNAMIC, W4A8_DYNAMIC, W8A8_MXFP8, W8A16; compressed-
 * tensors: W8A8, W4A8, W<b>A16; AWQ/GPTQ/AutoRound: W<b>A16), a format name
 * of the same family (modelslim-w4a4, ct-w8a8, ...) or FLOAT. */
typedef struct mq_mix_rule {
  const char *regex;
  const char *scheme;
} mq_mix_rule;

typedef struct mq_quantize_report {
  int n_quantized;     /* Linear layers written quantized */
  int n_float; /* Linear layers left float (--ignore, --mix ...=FLOAT, --layer-bits ...=16) */
  int n_copied;        /* other tensors copied unchanged */
  char warnings[2048]; /* newline-separated, may be empty */
} mq_quantize_report;

typedef struct mq_quantize_opts {
  const char *src; /* float checkpoint dir: config.json + *.safetensors */
  const char *dst; /* output dir (created; our files in it are overwritten; another
                      format's weights or description there are refused) */
  mq_qformat format;
  int bits;       /* 0: format default (8 for ct-w8a16, else 4) */
  int group_size; /* 0: 128 (ModelSlim: per channel); -1: per output channel;
                     must divide every K */
  int sym;        /* -1: default (awq asym, others sym); 0 asym; 1 sym */
  int desc_act;   /* act-order g_idx: gptq, gptq-v2, auto-round gptqmodel, ct (actorder "group") */
  mq_qpacking packing;
  const mq_layer_bits *layer_bits; /* first match wins */
  int n_layer_bits;
  const char *const *ignore; /* regexes of layers left float; win over layer_bits */
  int n_ignore;
  const mq_mix_rule *mix; /* first match wins; after --ignore, before --layer-bits */
  int n_mix;
  int allow_inconsistent;     /* --mix: allow q/k/v, gate/up or experts of one layer to differ */
  uint64_t seed;              /* act-order permutations, static-activation calibration */
  mq_quantize_report *report; /* optional, filled on success */
} mq_quantize_opts;

void mq_quantize_opts_default(mq_quantize_opts *o);

/* "awq", "gptq", "gptq-v2", "auto-round", "ct-w4a16", "ct-w8a16", "ct-w8a8",
 * "ct-w4a8", "modelslim-w8a8", "modelslim-w8a8-dynamic", "modelslim-w4a4",
 * "modelslim-w4a8", "modelslim-mxfp8", "modelslim-w8a16"; -1 if unknown. */
int mq_qformat_parse(const char *s, mq_qformat *out);
/* "auto_gptq", "auto_round", "gptqmodel", "auto_awq", "aligned", "dense"; -1 if unknown. */
int mq_qpacking_parse(const char *s, mq_qpacking *out);

/* Quantize o->src into o->dst. Everything is validated (options, every
 * layer's shape against the format) before anything is written. */
int mq_quantize_checkpoint(const mq_quantize_opts *o, mq_err *err);

#endif
