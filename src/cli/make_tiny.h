/* Random float checkpoints of named shapes: `mixq make-tiny`, also called
 * in-process by `mixq bench --synthetic`. */
#ifndef MQ_CLI_MAKE_TINY_H
#define MQ_CLI_MAKE_TINY_H

#include "mixq.h"

typedef struct mq_tiny_opts {
  const char *dir;   /* created if missing; config.json + model.safetensors */
  const char *arch;  /* llama, qwen2, qwen3, qwen3_moe; NULL: the shape's own */
  const char *shape; /* tiny (default), small, tinyllama-1.1b, qwen3-moe-1b */
  const char *dtype; /* f32 (default), f16, bf16 */
  int seed;
} mq_tiny_opts;

/* Write the checkpoint. MQ_ERR_ARG for unknown names (the message lists
 * the valid ones), MQ_ERR_IO / MQ_ERR_NOMEM otherwise. */
int mq_make_tiny(const mq_tiny_opts *o, mq_err *err);

/* The shape names, NULL-terminated, and the usage line of their options. */
extern const char *const mq_tiny_shapes[];
#define MQ_TINY_USAGE                                                                              \
  "[--arch llama|qwen2|qwen3|qwen3_moe] [--dtype f32|f16|bf16] "                                   \
  "[--shape tiny|small|tinyllama-1.1b|qwen3-moe-1b] [--seed N]"

#endif
