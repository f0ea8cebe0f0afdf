/* Quantization method detection: which producer wrote the checkpoint and its
 * global settings, read from quant_model_description.json (ModelSlim, wins),
 * config.json's quantization_config, or the legacy side files
 * quantize_config.json / quant_config.json / quantization_config.json. */
#ifndef MQ_QUANT_QCONFIG_H
#define MQ_QUANT_QCONFIG_H

#include <jansson.h>

#include "mixq.h"

typedef enum mq_method {
  MQ_METHOD_NONE = 0,
  MQ_METHOD_AWQ,
  MQ_METHOD_GPTQ,
  MQ_METHOD_AUTOROUND,
  MQ_METHOD_CTENSORS,
  MQ_METHOD_MODELSLIM,
  MQ_METHOD_GGUF, /* a .gguf file (no quantization config: types per tensor) */
} mq_method;

typedef struct mq_qconfig {
  mq_method method;
  char source[4200]; /* file the settings came from, for messages */
  json_t *q;        /* the quantization_config object or description (owned) */
  /* global weight settings (AWQ, GPTQ, AutoRound) */
  int bits, group_size, sym, desc_act;
  /* AWQ */
  int zero_point;
  /* GPTQ */
  int gptq_v2;      /* zeros stored as is (v2) rather than minus one (v1) */
  int lm_head;      /* lm_head quantized too */
  /* AutoRound: "auto_round:auto_gptq", "auto_round", "auto_round:gptqmodel", "auto_round:auto_awq" */
  char packing[64];
} mq_qconfig;

/* Method names as the producers and SGLang write them: "none", "awq",
 * "gptq", "auto-round", "compressed-tensors", "modelslim". */
const char *mq_method_name(mq_method m);

/* Detect the method of checkpoint dir, whose parsed config.json is config.
 * override (NULL for none) is a --quantization name; a mismatch with what the
 * checkpoint says is an error. */
int mq_qconfig_detect(const char *dir, const json_t *config, const char *override,
                      mq_qconfig *out, mq_err *err);
void mq_qconfig_free(mq_qconfig *q);

#endif
