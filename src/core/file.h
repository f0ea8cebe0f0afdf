/* Read-only file mappings and whole-file reads. */
#ifndef MQ_CORE_FILE_H
#define MQ_CORE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

typedef struct mq_mapped {
  const uint8_t *data; /* NULL for an empty file */
  uint64_t size;
} mq_mapped;

/* Map path read-only (private). Caller unmaps with mq_file_unmap. */
int mq_file_map(const char *path, mq_mapped *out, mq_err *err);
void mq_file_unmap(mq_mapped *m);

/* Read a whole (small) file into a NUL-terminated heap buffer; refuses files
 * larger than max_bytes. Caller frees *out. */
int mq_file_read(const char *path, size_t max_bytes, char **out, size_t *len, mq_err *err);

int mq_file_exists(const char *path);
/* Every entry under path, path itself last (post-order: a folder after its
 * contents); links are not followed. visit gets the entry's path and lstat. */
struct stat;
void mq_path_walk(const char *path, void (*visit)(const char *path, const struct stat *st, void *ctx),
                  void *ctx);
/* Remove path and, for a folder, everything under it (best effort). */
void mq_rm_tree(const char *path);
/* Bytes of a file, or of the files under a folder. */
double mq_path_bytes(const char *path);
/* dir + "/" + name into buf; returns 0, or -1 when it does not fit. */
int mq_path_join(char *buf, size_t cap, const char *dir, const char *name);

#endif
