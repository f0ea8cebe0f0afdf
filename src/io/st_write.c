#include "io/st_write.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

typedef struct {
  char *name;
  mq_dtype dt;
  int n_dims;
  int64_t shape[8];
  void *data;
  size_t nbytes;
} wt;

struct mq_st_writer {
  wt *t;
  int n, cap;
  json_t *meta;
};

mq_st_writer *mq_st_writer_new(void) { return calloc(1, sizeof(mq_st_writer)); }

void mq_st_writer_free(mq_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->t[i].name), free(w->t[i].data);
  free(w->t);
  json_decref(w->meta);
  free(w);
}

int mq_st_writer_add(mq_st_writer *w, const char *name, mq_dtype dt, int n_dims,
                     const int64_t *shape, const void *data, mq_err *err) {
  if (n_dims < 0 || n_dims > 8 || !mq_dtype_size(dt))
    return mq_errf(err, MQ_ERR_ARG, "%s: bad dtype or rank", name);
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->t[i].name, name) == 0)
      return mq_errf(err, MQ_ERR_ARG, "tensor '%s' added twice", name);
  size_t n = (size_t)mq_dtype_size(dt);
  for (int i = 0; i < n_dims; i++) n *= (size_t)shape[i];
  if (w->n == w->cap) {
    int nc = w->cap ? 2 * w->cap : 64;
    wt *nt = realloc(w->t, (size_t)nc * sizeof *nt);
    if (!nt) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    w->t = nt;
    w->cap = nc;
  }
  wt *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  t->data = malloc(n ? n : 1);
  if (!t->name || !t->data) {
    free(t->name), free(t->data);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  if (n) memcpy(t->data, data, n);
  t->dt = dt;
  t->n_dims = n_dims;
  memcpy(t->shape, shape, (size_t)n_dims * sizeof(int64_t));
  t->nbytes = n;
  w->n++;
  return MQ_OK;
}

int mq_st_writer_meta(mq_st_writer *w, const char *key, const char *value, mq_err *err) {
  if (!w->meta && !(w->meta = json_object())) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  json_object_set_new(w->meta, key, json_string(value));
  return MQ_OK;
}

static int cmp_wt(const void *a, const void *b) {
  return strcmp(((const wt *)a)->name, ((const wt *)b)->name);
}

int mq_st_writer_save(const mq_st_writer *w, const char *path, mq_err *err) {
  qsort(w->t, (size_t)w->n, sizeof(wt), cmp_wt);
  json_t *h = json_object();
  if (w->meta) json_object_set(h, "__metadata__", w->meta);
  size_t off = 0;
  for (int i = 0; i < w->n; i++) {
    const wt *t = &w->t[i];
    json_t *shape = json_array();
    for (int d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    json_object_set_new(h, t->name,
                        json_pack("{s:s, s:o, s:[I, I]}", "dtype", mq_dtype_name(t->dt), "shape",
                                  shape, "data_offsets", (json_int_t)off,
                                  (json_int_t)(off + t->nbytes)));
    off += t->nbytes;
  }
  char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(h);
  if (!text) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  size_t hl = strlen(text), padded = (hl + 7) & ~(size_t)7;
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(text);
    return mq_errf(err, MQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, hl, f) == hl;
  for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
  for (int i = 0; ok && i < w->n; i++) ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) == w->t[i].nbytes;
  free(text);
  if (fclose(f) != 0 || !ok) return mq_errf(err, MQ_ERR_IO, "%s: write failed", path);
  return MQ_OK;
}
