/* GGUF writer: see gguf_write.h. */
#include "io/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/gguf.h"
#include "quant/gguf_types.h"

typedef struct {
  char *name;
  uint32_t type;
  int n_dims;
  int64_t ne[MQ_GGUF_MAX_DIMS];
  uint64_t nbytes;
} wtensor;

struct mq_gguf_writer {
  uint8_t *kv; /* serialized key/value pairs */
  size_t kv_len, kv_cap;
  char **keys;
  int n_kv;
  wtensor *t;
  int n_t, cap_t;
  FILE *f;
  char *path, *tmp;
  int cur;          /* tensor being written */
  uint64_t cur_off; /* bytes of it written */
  int failed;       /* a write error happened: refuse to go on */
};

static int oom(mq_err *err) { return mq_errf(err, MQ_ERR_NOMEM, "out of memory writing GGUF"); }

mq_gguf_writer *mq_gguf_writer_new(void) { return calloc(1, sizeof(mq_gguf_writer)); }

void mq_gguf_writer_free(mq_gguf_writer *w) {
  if (!w) return;
  if (w->f) {
    fclose(w->f);
    if (w->tmp) remove(w->tmp);
  }
  for (int i = 0; i < w->n_kv; i++) free(w->keys[i]);
  for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
  free(w->keys);
  free(w->t);
  free(w->kv);
  free(w->path);
  free(w->tmp);
  free(w);
}

/* ---- serialization into the metadata buffer ---- */

static int put(mq_gguf_writer *w, const void *p, size_t n) {
  if (w->kv_len + n > w->kv_cap) {
    size_t cap = w->kv_cap ? w->kv_cap : 4096;
    while (cap < w->kv_len + n) cap *= 2;
    uint8_t *b = realloc(w->kv, cap);
    if (!b) return -1;
    w->kv = b, w->kv_cap = cap;
  }
  memcpy(w->kv + w->kv_len, p, n);
  w->kv_len += n;
  return 0;
}

static int put_u32(mq_gguf_writer *w, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
  return put(w, b, 4);
}

static int put_u64(mq_gguf_writer *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  return put(w, b, 8);
}

static int put_str(mq_gguf_writer *w, const char *s, size_t n) {
  return put_u64(w, n) || put(w, s, n);
}

/* Start a pair: check the key, write it and the value type. */
static int key(mq_gguf_writer *w, const char *k, uint32_t vtype, mq_err *err) {
  if (w->f) return mq_errf(err, MQ_ERR_ARG, "GGUF writer: metadata \"%s\" added after begin", k);
  if (!k || !*k) return mq_errf(err, MQ_ERR_ARG, "GGUF writer: empty metadata key");
  for (int i = 0; i < w->n_kv; i++)
    if (!strcmp(w->keys[i], k))
      return mq_errf(err, MQ_ERR_ARG, "GGUF writer: metadata key \"%s\" given twice", k);
  char **nk = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *nk);
  if (!nk) return oom(err);
  w->keys = nk;
  if (!(w->keys[w->n_kv] = strdup(k))) return oom(err);
  w->n_kv++;
  if (put_str(w, k, strlen(k)) || put_u32(w, vtype)) return oom(err);
  return MQ_OK;
}

int mq_gguf_writer_u32(mq_gguf_writer *w, const char *k, uint32_t v, mq_err *err) {
  int rc = key(w, k, MQ_GGUF_VTYPE_U32, err);
  return rc ? rc : put_u32(w, v) ? oom(err) : MQ_OK;
}

int mq_gguf_writer_i32(mq_gguf_writer *w, const char *k, int32_t v, mq_err *err) {
  int rc = key(w, k, MQ_GGUF_VTYPE_I32, err);
  return rc ? rc : put_u32(w, (uint32_t)v) ? oom(err) : MQ_OK;
}

static uint32_t f32_bits(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}

int mq_gguf_writer_f32(mq_gguf_writer *w, const char *k, float v, mq_err *err) {
  int rc = key(w, k, MQ_GGUF_VTYPE_F32, err);
  return rc ? rc : put_u32(w, f32_bits(v)) ? oom(err) : MQ_OK;
}

int mq_gguf_writer_bool(mq_gguf_writer *w, const char *k, int v, mq_err *err) {
  int rc = key(w, k, MQ_GGUF_VTYPE_BOOL, err);
  uint8_t b = v ? 1 : 0;
  return rc ? rc : put(w, &b, 1) ? oom(err) : MQ_OK;
}

int mq_gguf_writer_str(mq_gguf_writer *w, const char *k, const char *s, size_t len, mq_err *err) {
  if (len > MQ_GGUF_MAX_STRING)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: \"%s\" is too long (%zu bytes)", k, len);
  int rc = key(w, k, MQ_GGUF_VTYPE_STRING, err);
  return rc ? rc : put_str(w, s, len) ? oom(err) : MQ_OK;
}

static int arr_head(mq_gguf_writer *w, const char *k, uint32_t et, uint64_t n, mq_err *err) {
  if (n > MQ_GGUF_MAX_ARRAY)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: \"%s\" has too many elements (%llu)", k,
                   (unsigned long long)n);
  int rc = key(w, k, MQ_GGUF_VTYPE_ARRAY, err);
  return rc ? rc : put_u32(w, et) || put_u64(w, n) ? oom(err) : MQ_OK;
}

int mq_gguf_writer_arr_str(mq_gguf_writer *w, const char *k, const char *const *strs,
                           const size_t *lens, uint64_t n, mq_err *err) {
  for (uint64_t i = 0; i < n; i++)
    if (!strs[i] || (lens ? lens[i] : strlen(strs[i])) > MQ_GGUF_MAX_STRING)
      return mq_errf(err, MQ_ERR_ARG, "GGUF writer: \"%s\"[%llu] is missing or too long", k,
                     (unsigned long long)i);
  int rc = arr_head(w, k, MQ_GGUF_VTYPE_STRING, n, err);
  for (uint64_t i = 0; i < n && !rc; i++)
    if (put_str(w, strs[i], lens ? lens[i] : strlen(strs[i]))) rc = oom(err);
  return rc;
}

int mq_gguf_writer_arr_f32(mq_gguf_writer *w, const char *k, const float *v, uint64_t n,
                           mq_err *err) {
  int rc = arr_head(w, k, MQ_GGUF_VTYPE_F32, n, err);
  for (uint64_t i = 0; i < n && !rc; i++)
    if (put_u32(w, f32_bits(v[i]))) rc = oom(err);
  return rc;
}

int mq_gguf_writer_arr_i32(mq_gguf_writer *w, const char *k, const int32_t *v, uint64_t n,
                           mq_err *err) {
  int rc = arr_head(w, k, MQ_GGUF_VTYPE_I32, n, err);
  for (uint64_t i = 0; i < n && !rc; i++)
    if (put_u32(w, (uint32_t)v[i])) rc = oom(err);
  return rc;
}

/* ---- tensors ---- */

int mq_gguf_writer_tensor(mq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                          const int64_t *ne, uint64_t *nbytes, mq_err *err) {
  if (w->f) return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s' declared after begin", name);
  size_t nl = name ? strlen(name) : 0;
  if (!nl || nl > MQ_GGUF_MAX_NAME)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor name '%s' must have 1..%d bytes",
                   name ? name : "", MQ_GGUF_MAX_NAME);
  for (int i = 0; i < w->n_t; i++)
    if (!strcmp(w->t[i].name, name))
      return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s' declared twice", name);
  const mq_ggml_type_info *ti = mq_ggml_type_get(type);
  if (!ti) return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s': unknown type %u", name, type);
  if (n_dims < 1 || n_dims > MQ_GGUF_MAX_DIMS)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s' has %d dimensions", name, n_dims);
  wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
  uint64_t rows = 1;
  for (int d = 0; d < n_dims; d++) {
    if (ne[d] <= 0 || ne[d] > (int64_t)1 << 40)
      return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s': bad dimension %lld", name,
                     (long long)ne[d]);
    t.ne[d] = ne[d];
    if (d) rows *= (uint64_t)ne[d];
  }
  int64_t rb = mq_ggml_row_size(type, ne[0]);
  if (rb < 0)
    return mq_errf(
        err, MQ_ERR_ARG,
        "GGUF writer: tensor '%s': row length %lld is not a multiple of %s's block of %d", name,
        (long long)ne[0], ti->name, ti->blck);
  if (rows > ((uint64_t)1 << 50) / (uint64_t)rb)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s' is too large", name);
  t.nbytes = (uint64_t)rb * rows;
  if (w->n_t == w->cap_t) {
    int cap = w->cap_t ? 2 * w->cap_t : 64;
    wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
    if (!nt) return oom(err);
    w->t = nt, w->cap_t = cap;
  }
  if (!(t.name = strdup(name))) return oom(err);
  w->t[w->n_t++] = t;
  if (nbytes) *nbytes = t.nbytes;
  return MQ_OK;
}

static uint64_t pad_to(uint64_t x) {
  uint64_t a = MQ_GGUF_DEFAULT_ALIGNMENT;
  return (x + a - 1) / a * a;
}

static int out(mq_gguf_writer *w, const void *p, size_t n, mq_err *err) {
  if (n && fwrite(p, 1, n, w->f) != n) {
    w->failed = 1;
    return mq_errf(err, MQ_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  }
  return MQ_OK;
}

static int zeros(mq_gguf_writer *w, size_t n, mq_err *err) {
  static const uint8_t z[MQ_GGUF_DEFAULT_ALIGNMENT];
  return out(w, z, n, err);
}

int mq_gguf_writer_begin(mq_gguf_writer *w, const char *path, mq_err *err) {
  if (w->f || w->path) return mq_errf(err, MQ_ERR_ARG, "GGUF writer: begin called twice");
  size_t pl = strlen(path);
  if (!(w->path = strdup(path)) || !(w->tmp = malloc(pl + 5))) return oom(err);
  memcpy(w->tmp, path, pl);
  memcpy(w->tmp + pl, ".tmp", 5);
  if (!(w->f = fopen(w->tmp, "wb")))
    return mq_errf(err, MQ_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
  /* header and tensor infos are serialized after the metadata, in the same buffer */
  size_t kv_end = w->kv_len;
  uint8_t head[24] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  for (int i = 0; i < 8; i++) head[8 + i] = (uint8_t)((uint64_t)w->n_t >> (8 * i));
  for (int i = 0; i < 8; i++) head[16 + i] = (uint8_t)((uint64_t)w->n_kv >> (8 * i));
  uint64_t off = 0;
  for (int i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->t[i];
    if (put_str(w, t->name, strlen(t->name)) || put_u32(w, (uint32_t)t->n_dims)) return oom(err);
    for (int d = 0; d < t->n_dims; d++)
      if (put_u64(w, (uint64_t)t->ne[d])) return oom(err);
    if (put_u32(w, t->type) || put_u64(w, off)) return oom(err);
    off = pad_to(off + t->nbytes);
  }
  uint64_t hdr = sizeof head + w->kv_len;
  int rc = out(w, head, sizeof head, err);
  if (!rc) rc = out(w, w->kv, w->kv_len, err);
  w->kv_len = kv_end; /* the infos are not metadata */
  if (!rc && w->n_t) rc = zeros(w, (size_t)(pad_to(hdr) - hdr), err);
  w->cur = 0, w->cur_off = 0;
  return rc;
}

int mq_gguf_writer_write(mq_gguf_writer *w, const void *data, size_t n, mq_err *err) {
  if (!w->f || w->failed)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: write before begin or after an error");
  const uint8_t *p = data;
  while (n) {
    if (w->cur >= w->n_t)
      return mq_errf(err, MQ_ERR_ARG, "GGUF writer: more data than the declared tensors hold");
    const wtensor *t = &w->t[w->cur];
    uint64_t room = t->nbytes - w->cur_off;
    size_t k = n < room ? n : (size_t)room;
    int rc = out(w, p, k, err);
    if (rc) return rc;
    p += k, n -= k, w->cur_off += k;
    if (w->cur_off == t->nbytes) {
      if ((rc = zeros(w, (size_t)(pad_to(t->nbytes) - t->nbytes), err))) return rc;
      w->cur++, w->cur_off = 0;
    }
  }
  return MQ_OK;
}

int mq_gguf_writer_finish(mq_gguf_writer *w, mq_err *err) {
  if (!w->f || w->failed)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: finish before begin or after an error");
  if (w->cur < w->n_t)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: tensor '%s' is incomplete (%llu of %llu bytes)",
                   w->t[w->cur].name, (unsigned long long)w->cur_off,
                   (unsigned long long)w->t[w->cur].nbytes);
  int bad = fflush(w->f) != 0 || ferror(w->f);
  bad |= fclose(w->f) != 0;
  w->f = NULL;
  if (bad) {
    remove(w->tmp);
    return mq_errf(err, MQ_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  }
  if (rename(w->tmp, w->path) != 0) {
    int e = errno;
    remove(w->tmp);
    return mq_errf(err, MQ_ERR_IO, "%s: cannot rename to %s: %s", w->tmp, w->path, strerror(e));
  }
  return MQ_OK;
}
