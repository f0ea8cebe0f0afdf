/* safetensors writer: collect tensors, then write one file. Tensors are
 * stored in name order; the header is padded with spaces to a multiple of 8
 * bytes, as the reference writer does. */
#ifndef MQ_IO_ST_WRITE_H
#define MQ_IO_ST_WRITE_H

#include <stdint.h>

#include "io/dtype.h"
#include "mixq.h"

typedef struct mq_st_writer mq_st_writer;

mq_st_writer *mq_st_writer_new(void);
void mq_st_writer_free(mq_st_writer *w);
/* Copy data (product(shape) * dtype size bytes) under name. */
int mq_st_writer_add(mq_st_writer *w, const char *name, mq_dtype dt, int n_dims,
                     const int64_t *shape, const void *data, mq_err *err);
/* Add a __metadata__ entry. */
int mq_st_writer_meta(mq_st_writer *w, const char *key, const char *value, mq_err *err);
int mq_st_writer_save(const mq_st_writer *w, const char *path, mq_err *err);

#endif
