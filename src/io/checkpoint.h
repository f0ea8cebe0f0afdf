/* A checkpoint directory's tensors: one or many safetensors files (sharded
 * through an *.safetensors.index.json weight_map), looked up by name. */
#ifndef MQ_IO_CHECKPOINT_H
#define MQ_IO_CHECKPOINT_H

#include "core/strmap.h"
#include "io/safetensors.h"

typedef struct mq_ckpt {
  char *dir;
  mq_st_file *files;
  int n_files;
  mq_strmap by_name;     /* tensor name -> index into all[] */
  const mq_tensor **all; /* every tensor of every file */
  int n_all;
} mq_ckpt;

/* Open the tensors of a checkpoint directory. Looks, in order, for
 * model.safetensors.index.json, quant_model_weights.safetensors.index.json,
 * any other *.safetensors.index.json, model.safetensors,
 * quant_model_weights.safetensors, then every *.safetensors in the folder.
 * With an index, every tensor it lists must exist in the file it names, and
 * shard names may not leave the directory. A name present in two files is an
 * error. */
int mq_ckpt_open(const char *dir, mq_ckpt *out, mq_err *err);
void mq_ckpt_close(mq_ckpt *c);
const mq_tensor *mq_ckpt_find(const mq_ckpt *c, const char *name);

#endif
