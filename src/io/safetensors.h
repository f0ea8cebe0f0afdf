/* safetensors reader: validated, zero-copy views into a mapped file.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data region; offsets are relative to the data region. Validation
 * follows the reference implementation: header at most 100 MB and starting
 * with '{', known dtypes, tensors packed back to back from offset 0 without
 * gaps or overlaps, byte counts equal to product(shape) * dtype size, and the
 * data region ending exactly at the end of the file. Duplicate names and
 * sizes that overflow 64 bits are rejected too. */
#ifndef MQ_IO_SAFETENSORS_H
#define MQ_IO_SAFETENSORS_H

#include <stdint.h>

#include "core/file.h"
#include "io/dtype.h"
#include "mixq.h"

#define MQ_MAX_DIMS 8
#define MQ_ST_MAX_HEADER 100000000ull

typedef struct mq_tensor {
  const char *name; /* owned by the file that holds the tensor */
  mq_dtype dtype;
  int n_dims;
  int64_t shape[MQ_MAX_DIMS]; /* outermost first, as stored */
  uint64_t n_elems;
  uint64_t nbytes;
  const uint8_t *data; /* inside the file's mapping; may be unaligned */
  const char *file;    /* path of the file that holds it */
} mq_tensor;

typedef struct mq_st_file {
  char *path;
  mq_mapped map; /* empty when parsed from a caller's buffer */
  mq_tensor *tensors; /* sorted by data offset */
  int n_tensors;
  char **meta; /* __metadata__ as key, value, key, value ... */
  int n_meta;
} mq_st_file;

/* Parse and validate buf[0..len) (borrowed: must outlive *out). label names
 * the file in error messages. */
int mq_st_parse(const uint8_t *buf, uint64_t len, const char *label, mq_st_file *out, mq_err *err);
/* Map path and parse it; *out owns the mapping. */
int mq_st_open(const char *path, mq_st_file *out, mq_err *err);
void mq_st_close(mq_st_file *f);

const mq_tensor *mq_st_find(const mq_st_file *f, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *mq_st_meta(const mq_st_file *f, const char *key);

/* "[4096, 128]" into buf, for messages. */
const char *mq_shape_str(const mq_tensor *t, char *buf, int cap);

#endif
