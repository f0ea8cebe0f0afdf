/* libFuzzer target: the safetensors header and tensor table (mq_st_parse on
 * the input buffer). On success every tensor must lie inside the buffer and
 * hold exactly product(shape) x dtype size bytes; on failure the status and
 * message must say why. */
#include <stdint.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mq_st_file f;
  mq_err err = {0};
  int rc = mq_st_parse(data, size, "fuzz.safetensors", &f, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    MQF_REQUIRE(f.n_tensors == 0 && f.tensors == NULL);
    return 0;
  }
  volatile uint8_t sink = 0;
  uint64_t covered = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_tensor *t = &f.tensors[i];
    MQF_REQUIRE(t->n_dims >= 0 && t->n_dims <= MQ_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
      MQF_REQUIRE(t->shape[d] >= 0);
      n *= (uint64_t)t->shape[d];
    }
    MQF_REQUIRE(n == t->n_elems);
    MQF_REQUIRE(t->nbytes == n * (uint64_t)mq_dtype_size(t->dtype));
    MQF_REQUIRE(t->data >= data + 8 && t->data + t->nbytes <= data + size);
    if (t->nbytes) sink ^= t->data[0] ^ t->data[t->nbytes - 1];
    covered += t->nbytes;
    char sh[64];
    mq_shape_str(t, sh, sizeof sh); /* truncates long shapes */
    MQF_REQUIRE(mq_st_find(&f, t->name) != NULL);
    MQF_REQUIRE(mq_dtype_name(t->dtype) != NULL);
  }
  /* tensors tile the data region exactly */
  if (f.n_tensors) MQF_REQUIRE(f.tensors[f.n_tensors - 1].data + f.tensors[f.n_tensors - 1].nbytes == data + size);
  MQF_REQUIRE(covered <= size);
  for (int i = 0; i < f.n_meta; i++) MQF_REQUIRE(mq_st_meta(&f, f.meta[2 * i]) != NULL);
  (void)mq_st_meta(&f, "format");
  (void)sink;
  mq_st_close(&f);
  return 0;
}
