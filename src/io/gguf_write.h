/* GGUF writer (version 3, little-endian; specs/formats.md §5.1): the
 * inverse of io/gguf.h. Metadata and tensor infos are collected first, then
 * mq_gguf_writer_begin writes the header and the data are streamed tensor
 * by tensor in declaration order, so a multi-gigabyte model never has to be
 * held in memory.
 *
 *   w = mq_gguf_writer_new();
 *   mq_gguf_writer_str(w, "general.architecture", "llama", 5, err); ...
 *   mq_gguf_writer_tensor(w, "token_embd.weight", MQ_GGML_TYPE_Q8_0, 2, ne, err); ...
 *   mq_gguf_writer_begin(w, path, err);
 *   mq_gguf_writer_write(w, bytes, n, err); ...   (exactly each tensor's bytes, in order)
 *   mq_gguf_writer_finish(w, err);
 *   mq_gguf_writer_free(w);
 *
 * The file is written as PATH.tmp and renamed to PATH by _finish, so a
 * failed or interrupted run never leaves a truncated PATH; _free removes the
 * temporary file of an unfinished writer. Everything a reader checks is
 * checked here first: keys non-empty and unique, tensor names non-empty,
 * shorter than 64 bytes and unique, 1..4 dimensions, known types, row
 * lengths that are multiples of the type's block. Offsets are the reader's
 * rule: each tensor starts where the previous one ends, padded to the
 * alignment (32). */
#ifndef MQ_IO_GGUF_WRITE_H
#define MQ_IO_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

typedef struct mq_gguf_writer mq_gguf_writer;

mq_gguf_writer *mq_gguf_writer_new(void);
void mq_gguf_writer_free(mq_gguf_writer *w);

/* ---- metadata (before _begin); values are copied ---- */
int mq_gguf_writer_u32(mq_gguf_writer *w, const char *key, uint32_t v, mq_err *err);
int mq_gguf_writer_i32(mq_gguf_writer *w, const char *key, int32_t v, mq_err *err);
int mq_gguf_writer_f32(mq_gguf_writer *w, const char *key, float v, mq_err *err);
int mq_gguf_writer_bool(mq_gguf_writer *w, const char *key, int v, mq_err *err);
int mq_gguf_writer_str(mq_gguf_writer *w, const char *key, const char *s, size_t len, mq_err *err);
/* Arrays; strs[i] has lens[i] bytes (lens NULL: NUL-terminated). */
int mq_gguf_writer_arr_str(mq_gguf_writer *w, const char *key, const char *const *strs,
                           const size_t *lens, uint64_t n, mq_err *err);
int mq_gguf_writer_arr_f32(mq_gguf_writer *w, const char *key, const float *v, uint64_t n,
                           mq_err *err);
int mq_gguf_writer_arr_i32(mq_gguf_writer *w, const char *key, const int32_t *v, uint64_t n,
                           mq_err *err);

/* Declare a tensor (before _begin): ne in GGUF order (ne[0] = row length),
 * type a ggml type id. Returns its byte count through *nbytes (may be NULL). */
int mq_gguf_writer_tensor(mq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                          const int64_t *ne, uint64_t *nbytes, mq_err *err);

/* Create PATH.tmp and write the header, metadata and tensor infos. */
int mq_gguf_writer_begin(mq_gguf_writer *w, const char *path, mq_err *err);
/* Append n bytes of tensor data (any split; padding is inserted between
 * tensors). Writing more than the declared tensors hold is an error. */
int mq_gguf_writer_write(mq_gguf_writer *w, const void *data, size_t n, mq_err *err);
/* Check every tensor was written in full, close and rename to PATH. */
int mq_gguf_writer_finish(mq_gguf_writer *w, mq_err *err);

#endif
