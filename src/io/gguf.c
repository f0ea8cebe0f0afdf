#include "io/gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "quant/gguf_types.h"

/* Smallest possible encodings, used to bound counts before anything is
 * allocated: a pair is a key (u64 length + at least one byte), a u32 type
 * and at least a one-byte value; a tensor info is a name (u64 + at least one
 * byte), u32 n_dims, u32 type and u64 offset. */
#define MIN_KV_BYTES 14u
#define MIN_TENSOR_INFO_BYTES 25u

typedef unsigned long long ull;
typedef long long sll;

/* A bounds-checked cursor over the file. */
typedef struct {
  const uint8_t *buf;
  uint64_t len, pos;
  const char *label;
  mq_err *err;
} rd;

static uint64_t left(const rd *r) { return r->len - r->pos; }

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Ensure n more bytes; the message says what was being read. */
static int need(rd *r, uint64_t n, const char *fmt, ...) MQ_PRINTF(3, 4);
static int need(rd *r, uint64_t n, const char *fmt, ...) {
  if (left(r) >= n) return MQ_OK;
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return mq_errf(r->err, MQ_ERR_FORMAT,
                 "%s: truncated: %s needs %llu bytes at offset %llu, but the file ends after %llu",
                 r->label, what, (ull)n, (ull)r->pos, (ull)left(r));
}

static uint32_t take32(rd *r) {
  uint32_t v = le32(r->buf + r->pos);
  r->pos += 4;
  return v;
}

static uint64_t take64(rd *r) {
  uint64_t v = le64(r->buf + r->pos);
  r->pos += 8;
  return v;
}

/* A string: u64 length, then the bytes. what names it in messages. */
static int read_str(rd *r, const char *what, const char **s, uint64_t *n) {
  int rc = need(r, 8, "length of %s", what);
  if (rc) return rc;
  uint64_t len = take64(r);
  if (len > MQ_GGUF_MAX_STRING)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: %s: string length %llu exceeds the limit of %llu bytes", r->label, what,
                   (ull)len, (ull)MQ_GGUF_MAX_STRING);
  if (len > left(r))
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: %s: string length %llu runs past the end of the file (%llu bytes left at "
                   "offset %llu)",
                   r->label, what, (ull)len, (ull)left(r), (ull)r->pos);
  *s = (const char *)r->buf + r->pos;
  *n = len;
  r->pos += len;
  return MQ_OK;
}

static const char *const k_vtype_names[MQ_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

const char *mq_gguf_vtype_name(uint32_t t) {
  return t < MQ_GGUF_VTYPE_COUNT ? k_vtype_names[t] : "invalid";
}

/* Bytes of one value of a fixed-size type; 0 for string and array. */
static uint64_t vtype_size(uint32_t t) {
  static const uint8_t sz[MQ_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return t < MQ_GGUF_VTYPE_COUNT ? sz[t] : 0;
}

/* Grow *arr (of *cap elements of size esz) to hold at least n + 1. */
static int grow(void **arr, int *cap, int n, size_t esz) {
  if (n < *cap) return 0;
  int ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, (size_t)ncap * esz);
  if (!p) return -1;
  memset((char *)p + (size_t)*cap * esz, 0, (size_t)(ncap - *cap) * esz);
  *arr = p;
  *cap = ncap;
  return 0;
}

static char *dup_bytes(const char *s, uint64_t n) {
  char *d = malloc((size_t)n + 1);
  if (d) {
    memcpy(d, s, (size_t)n);
    d[n] = 0;
  }
  return d;
}

/* ---- key/value pairs ---- */

static int parse_value(rd *r, mq_gguf_kv *kv) {
  const char *key = kv->key;
  int rc = need(r, 4, "value type of key '%s'", key);
  if (rc) return rc;
  uint32_t t = take32(r);
  if (t >= MQ_GGUF_VTYPE_COUNT)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key '%s': unknown value type %u", r->label, key, t);
  kv->type = kv->elem_type = (mq_gguf_vtype)t;
  kv->count = 1;
  if (t == MQ_GGUF_VTYPE_ARRAY) {
    if ((rc = need(r, 12, "array header of key '%s'", key))) return rc;
    uint32_t et = take32(r);
    uint64_t n = take64(r);
    if (et == MQ_GGUF_VTYPE_ARRAY)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: key '%s': nested array (an array of arrays) is not allowed", r->label,
                     key);
    if (et >= MQ_GGUF_VTYPE_COUNT)
      return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key '%s': unknown array element type %u", r->label,
                     key, et);
    if (n > MQ_GGUF_MAX_ARRAY)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: key '%s': array count %llu exceeds the limit of %llu elements", r->label,
                     key, (ull)n, (ull)MQ_GGUF_MAX_ARRAY);
    kv->elem_type = (mq_gguf_vtype)et;
    kv->count = n;
    kv->data = r->buf + r->pos;
    if (et != MQ_GGUF_VTYPE_STRING) {
      uint64_t esz = vtype_size(et);
      if (n > left(r) / esz)
        return mq_errf(r->err, MQ_ERR_FORMAT,
                       "%s: key '%s': array of %llu %s values runs past the end of the file (%llu "
                       "bytes left at offset %llu)",
                       r->label, key, (ull)n, k_vtype_names[et], (ull)left(r), (ull)r->pos);
      r->pos += n * esz;
      return MQ_OK;
    }
    /* Every string takes at least its 8-byte length: bound n before the
     * per-element table is allocated. */
    if (n > left(r) / 8)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: key '%s': array count %llu: that many strings cannot fit in the %llu "
                     "bytes left at offset %llu",
                     r->label, key, (ull)n, (ull)left(r), (ull)r->pos);
    kv->strs = malloc((size_t)(n ? n : 1) * sizeof *kv->strs);
    if (!kv->strs)
      return mq_errf(r->err, MQ_ERR_NOMEM, "%s: key '%s': out of memory for %llu strings", r->label,
                     key, (ull)n);
    char what[128];
    snprintf(what, sizeof what, "element of key '%.80s'", key);
    for (uint64_t i = 0; i < n; i++) {
      const char *s = NULL;
      uint64_t sl = 0;
      kv->strs[i] = r->buf + r->pos;
      if ((rc = read_str(r, what, &s, &sl))) return rc;
    }
    return MQ_OK;
  }
  kv->data = r->buf + r->pos;
  if (t == MQ_GGUF_VTYPE_STRING) {
    const char *s = NULL;
    uint64_t sl = 0;
    char what[128];
    snprintf(what, sizeof what, "value of key '%.80s'", key);
    return read_str(r, what, &s, &sl);
  }
  if ((rc = need(r, vtype_size(t), "%s value of key '%s'", k_vtype_names[t], key))) return rc;
  r->pos += vtype_size(t);
  return MQ_OK;
}

static int parse_kvs(rd *r, uint64_t n_kv, mq_gguf_file *f) {
  int cap = 0;
  for (uint64_t i = 0; i < n_kv; i++) {
    if (grow((void **)&f->kvs, &cap, f->n_kv, sizeof *f->kvs))
      return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->label);
    char what[64];
    snprintf(what, sizeof what, "key %llu", (ull)i);
    const char *k = NULL;
    uint64_t kl = 0;
    int rc = read_str(r, what, &k, &kl);
    if (rc) return rc;
    if (kl == 0) return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key %llu is empty", r->label, (ull)i);
    if (kl > MQ_GGUF_MAX_KEY)
      return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key %llu is %llu bytes, at most %u allowed",
                     r->label, (ull)i, (ull)kl, MQ_GGUF_MAX_KEY);
    if (memchr(k, 0, (size_t)kl))
      return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key %llu contains a NUL byte", r->label, (ull)i);
    mq_gguf_kv *kv = &f->kvs[f->n_kv];
    if (!(kv->key = dup_bytes(k, kl)))
      return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->label);
    f->n_kv++;
    int put = mq_strmap_put(&f->kv_index, kv->key, (size_t)kl, f->n_kv - 1);
    if (put < 0) return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->label);
    if (put > 0)
      return mq_errf(r->err, MQ_ERR_FORMAT, "%s: duplicate key '%s' (pairs %lld and %llu)",
                     r->label, kv->key, (sll)mq_strmap_gets(&f->kv_index, kv->key), (ull)i);
    if ((rc = parse_value(r, kv))) return rc;
  }
  return MQ_OK;
}

/* general.alignment: a u32 power of two in [1, 1 MiB]; 32 when absent. */
static int read_alignment(const char *label, mq_gguf_file *f, mq_err *err) {
  f->alignment = MQ_GGUF_DEFAULT_ALIGNMENT;
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, "general.alignment");
  if (!kv) return MQ_OK;
  if (kv->type != MQ_GGUF_VTYPE_U32)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key 'general.alignment' has type %s, must be u32",
                   label, mq_gguf_vtype_name(kv->type));
  uint32_t a = le32(kv->data);
  if (a == 0 || (a & (a - 1)) != 0)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: general.alignment is %u, must be a nonzero power of two", label, a);
  if (a > MQ_GGUF_MAX_ALIGNMENT)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: general.alignment %u exceeds the limit of %llu", label,
                   a, (ull)MQ_GGUF_MAX_ALIGNMENT);
  f->alignment = a;
  return MQ_OK;
}

/* ---- tensor infos ---- */

static int parse_tensor(rd *r, uint64_t idx, mq_gguf_file *f) {
  char what[64];
  snprintf(what, sizeof what, "name of tensor %llu", (ull)idx);
  const char *s = NULL;
  uint64_t sl = 0;
  int rc = read_str(r, what, &s, &sl);
  if (rc) return rc;
  if (sl == 0)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor %llu has an empty name", r->label, (ull)idx);
  if (sl > MQ_GGUF_MAX_NAME)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: tensor %llu: name is %llu bytes, at most %d allowed (GGML_MAX_NAME)",
                   r->label, (ull)idx, (ull)sl, MQ_GGUF_MAX_NAME);
  if (memchr(s, 0, (size_t)sl))
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor %llu: name contains a NUL byte", r->label,
                   (ull)idx);
  mq_gguf_tensor *t = &f->tensors[f->n_tensors];
  if (!(t->name = dup_bytes(s, sl)))
    return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->label);
  f->n_tensors++;
  const char *nm = t->name;
  int put = mq_strmap_put(&f->tensor_index, nm, (size_t)sl, f->n_tensors - 1);
  if (put < 0) return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->label);
  if (put > 0)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: duplicate tensor name '%s' (tensors %lld and %llu)",
                   r->label, nm, (sll)mq_strmap_gets(&f->tensor_index, nm), (ull)idx);

  if ((rc = need(r, 4, "n_dims of tensor '%s'", nm))) return rc;
  uint32_t nd = take32(r);
  if (nd > MQ_GGUF_MAX_DIMS)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: tensor '%s': n_dims %u, at most %d dimensions allowed", r->label, nm, nd,
                   MQ_GGUF_MAX_DIMS);
  t->n_dims = (int)nd;
  if ((rc = need(r, 8ull * nd, "dimensions of tensor '%s'", nm))) return rc;
  uint64_t n = 1;
  for (int j = 0; j < MQ_GGUF_MAX_DIMS; j++) {
    uint64_t d = 1;
    if (j < (int)nd) d = take64(r);
    if (d > (uint64_t)INT64_MAX)
      return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor '%s': dimension %d is negative (%lld)",
                     r->label, nm, j, (sll)d);
    if (d == 0)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': dimension %d is zero (empty tensors are not accepted)",
                     r->label, nm, j);
    if (n > (uint64_t)INT64_MAX / d)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': element count overflows 64 bits at dimension %d (%llu)",
                     r->label, nm, j, (ull)d);
    t->ne[j] = (int64_t)d;
    n *= d;
  }
  t->n_elems = n;

  if ((rc = need(r, 4, "ggml type of tensor '%s'", nm))) return rc;
  t->type = take32(r);
  const mq_ggml_type_info *ti = mq_ggml_type_get(t->type);
  if (!ti)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor '%s': unknown ggml type %u%s", r->label, nm,
                   t->type, t->type < MQ_GGML_TYPE_COUNT ? " (removed from ggml)" : "");
  if (t->ne[0] % ti->blck)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: tensor '%s': row length ne[0] = %lld is not a multiple of the %s block "
                   "size %d",
                   r->label, nm, (sll)t->ne[0], ti->name, ti->blck);
  uint64_t blocks = n / (uint64_t)ti->blck;
  if (blocks > UINT64_MAX / (uint64_t)ti->type_size)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor '%s': byte size overflows 64 bits", r->label,
                   nm);
  t->nbytes = blocks * (uint64_t)ti->type_size;

  if ((rc = need(r, 8, "offset of tensor '%s'", nm))) return rc;
  t->offset = take64(r);
  if (t->offset % f->alignment)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: tensor '%s': offset %llu is not a multiple of the alignment %llu", r->label,
                   nm, (ull)t->offset, (ull)f->alignment);
  return MQ_OK;
}

typedef struct {
  uint64_t offset;
  int idx;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x->idx - y->idx;
}

/* Every tensor inside the data section, none overlapping another. */
static int check_extents(const char *label, const uint8_t *buf, mq_gguf_file *f, mq_err *err) {
  uint64_t data_len = f->size - f->data_offset;
  for (int i = 0; i < f->n_tensors; i++) {
    mq_gguf_tensor *t = &f->tensors[i];
    if (t->offset > data_len || t->nbytes > data_len - t->offset)
      return mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': data [%llu, +%llu bytes) runs past the end of the file "
                     "(data section at %llu holds %llu bytes)",
                     label, t->name, (ull)t->offset, (ull)t->nbytes, (ull)f->data_offset,
                     (ull)data_len);
    t->data = buf + f->data_offset + t->offset;
  }
  if (f->n_tensors < 2) return MQ_OK;
  span *order = malloc((size_t)f->n_tensors * sizeof *order);
  if (!order) return mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory", label);
  for (int i = 0; i < f->n_tensors; i++) order[i] = (span){f->tensors[i].offset, i};
  qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_span);
  int rc = MQ_OK;
  for (int i = 1; i < f->n_tensors; i++) {
    const mq_gguf_tensor *p = &f->tensors[order[i - 1].idx], *c = &f->tensors[order[i].idx];
    if (p->offset + p->nbytes > c->offset) {
      rc = mq_errf(err, MQ_ERR_FORMAT,
                   "%s: tensor '%s' (data [%llu, %llu)) overlaps tensor '%s' (data [%llu, %llu))",
                   label, c->name, (ull)c->offset, (ull)(c->offset + c->nbytes), p->name,
                   (ull)p->offset, (ull)(p->offset + p->nbytes));
      break;
    }
  }
  free(order);
  return rc;
}

/* ---- file ---- */

static int parse_all(rd *r, mq_gguf_file *f) {
  const char *label = r->label;
  int rc = need(r, 4, "magic");
  if (rc) return rc;
  if (memcmp(r->buf, "GGUF", 4) != 0) {
    char m[5];
    for (int i = 0; i < 4; i++) m[i] = (r->buf[i] >= 32 && r->buf[i] < 127) ? (char)r->buf[i] : '?';
    m[4] = 0;
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: bad magic '%s', expected 'GGUF'", label, m);
  }
  r->pos = 4;
  if ((rc = need(r, 4, "version"))) return rc;
  f->version = take32(r);
  if (f->version != 0 && (f->version & 0xFFFFu) == 0)
    return mq_errf(r->err, MQ_ERR_UNSUPPORTED,
                   "%s: version field 0x%08x looks byte-swapped: big-endian GGUF files are not "
                   "supported",
                   label, f->version);
  if (f->version == 1)
    return mq_errf(r->err, MQ_ERR_UNSUPPORTED,
                   "%s: GGUF version 1 is not supported (only versions 2 and 3; re-convert the "
                   "file with a current llama.cpp)",
                   label);
  if (f->version < 2 || f->version > 3)
    return mq_errf(r->err, MQ_ERR_UNSUPPORTED,
                   "%s: GGUF version %u is not supported (only versions 2 and 3)", label,
                   f->version);
  if ((rc = need(r, 16, "tensor and key/value counts"))) return rc;
  uint64_t n_t = take64(r), n_kv = take64(r);
  if (n_t > (uint64_t)INT64_MAX)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: tensor count is negative (%lld)", label, (sll)n_t);
  if (n_kv > (uint64_t)INT64_MAX)
    return mq_errf(r->err, MQ_ERR_FORMAT, "%s: key/value count is negative (%lld)", label,
                   (sll)n_kv);
  if (n_kv > left(r) / MIN_KV_BYTES || n_kv > INT32_MAX)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: key/value count %llu cannot fit in the %llu bytes that follow the header "
                   "(each pair takes at least %u)",
                   label, (ull)n_kv, (ull)left(r), MIN_KV_BYTES);
  if (n_t > (left(r) - n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES || n_t > INT32_MAX)
    return mq_errf(r->err, MQ_ERR_FORMAT,
                   "%s: tensor count %llu cannot fit in the %llu bytes that follow the header "
                   "(each tensor info takes at least %u)",
                   label, (ull)n_t, (ull)left(r), MIN_TENSOR_INFO_BYTES);

  if ((rc = parse_kvs(r, n_kv, f))) return rc;
  if ((rc = read_alignment(label, f, r->err))) return rc;

  /* The tables grow with the entries actually read, so a count that lies
   * costs no more memory than the bytes the file really has. */
  int cap = 0;
  for (uint64_t i = 0; i < n_t; i++) {
    if (grow((void **)&f->tensors, &cap, f->n_tensors, sizeof *f->tensors))
      return mq_errf(r->err, MQ_ERR_NOMEM, "%s: out of memory", label);
    if ((rc = parse_tensor(r, i, f))) return rc;
  }

  f->data_offset = r->pos;
  if (n_t > 0) {
    uint64_t a = f->alignment;
    f->data_offset = (r->pos + a - 1) / a * a; /* r->pos <= len, no overflow */
    if (f->data_offset > r->len)
      return mq_errf(r->err, MQ_ERR_FORMAT,
                     "%s: truncated: the data section would start at offset %llu (tensor infos "
                     "end at %llu, aligned to %llu) but the file has %llu bytes",
                     label, (ull)f->data_offset, (ull)r->pos, (ull)a, (ull)r->len);
  }
  return check_extents(label, r->buf, f, r->err);
}

int mq_gguf_parse(const uint8_t *buf, uint64_t len, const char *label, mq_gguf_file *out,
                  mq_err *err) {
  memset(out, 0, sizeof *out);
  out->path = strdup(label ? label : "<buffer>");
  if (!out->path) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  out->size = len;
  rd r = {buf, len, 0, out->path, err};
  int rc = parse_all(&r, out);
  if (rc != MQ_OK) mq_gguf_close(out);
  return rc;
}

int mq_gguf_open(const char *path, mq_gguf_file *out, mq_err *err) {
  mq_mapped m;
  memset(out, 0, sizeof *out);
  int rc = mq_file_map(path, &m, err);
  if (rc != MQ_OK) return rc;
  rc = mq_gguf_parse(m.data, m.size, path, out, err);
  if (rc != MQ_OK) {
    mq_file_unmap(&m);
    return rc;
  }
  out->map = m;
  return MQ_OK;
}

void mq_gguf_close(mq_gguf_file *f) {
  for (int i = 0; i < f->n_kv; i++) {
    free((char *)f->kvs[i].key);
    free((void *)f->kvs[i].strs);
  }
  free(f->kvs);
  for (int i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
  free(f->tensors);
  mq_strmap_free(&f->kv_index);
  mq_strmap_free(&f->tensor_index);
  free(f->path);
  mq_file_unmap(&f->map);
  memset(f, 0, sizeof *f);
}

/* ---- accessors ---- */

const mq_gguf_kv *mq_gguf_find_kv(const mq_gguf_file *f, const char *key) {
  int64_t i = mq_strmap_gets(&f->kv_index, key);
  return i < 0 ? NULL : &f->kvs[i];
}

const mq_gguf_tensor *mq_gguf_find_tensor(const mq_gguf_file *f, const char *name) {
  int64_t i = mq_strmap_gets(&f->tensor_index, name);
  return i < 0 ? NULL : &f->tensors[i];
}

/* Integer element i as sign and magnitude; -1 if the type is not an integer. */
static int elem_int(const mq_gguf_kv *kv, uint64_t i, int *neg, uint64_t *mag) {
  uint64_t sz = vtype_size(kv->elem_type);
  if (i >= kv->count || !sz || kv->elem_type == MQ_GGUF_VTYPE_F32 ||
      kv->elem_type == MQ_GGUF_VTYPE_F64 || kv->elem_type == MQ_GGUF_VTYPE_BOOL)
    return -1;
  const uint8_t *p = kv->data + i * sz;
  uint64_t u = 0;
  for (uint64_t b = 0; b < sz; b++) u |= (uint64_t)p[b] << (8 * b);
  int is_signed = kv->elem_type == MQ_GGUF_VTYPE_I8 || kv->elem_type == MQ_GGUF_VTYPE_I16 ||
                  kv->elem_type == MQ_GGUF_VTYPE_I32 || kv->elem_type == MQ_GGUF_VTYPE_I64;
  *neg = is_signed && (u >> (8 * sz - 1)) & 1;
  if (*neg) {
    if (sz < 8) u |= ~0ull << (8 * sz); /* sign-extend, then negate as unsigned */
    u = ~u + 1;
  }
  *mag = u;
  return 0;
}

int mq_gguf_arr_int(const mq_gguf_kv *kv, uint64_t i, int64_t *out) {
  if (kv->elem_type == MQ_GGUF_VTYPE_BOOL && i < kv->count) {
    *out = kv->data[i] != 0;
    return 0;
  }
  int neg;
  uint64_t mag;
  if (elem_int(kv, i, &neg, &mag)) return -1;
  if (!neg && mag > (uint64_t)INT64_MAX) return -1;
  *out = neg ? (mag == (1ull << 63) ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
  return 0;
}

int mq_gguf_arr_f32(const mq_gguf_kv *kv, uint64_t i, float *out) {
  if (i >= kv->count) return -1;
  if (kv->elem_type == MQ_GGUF_VTYPE_F32) {
    uint32_t u = le32(kv->data + 4 * i);
    memcpy(out, &u, 4);
    return 0;
  }
  if (kv->elem_type == MQ_GGUF_VTYPE_F64) {
    uint64_t u = le64(kv->data + 8 * i);
    double d;
    memcpy(&d, &u, 8);
    *out = (float)d;
    return 0;
  }
  return -1;
}

const char *mq_gguf_arr_str(const mq_gguf_kv *kv, uint64_t i, uint64_t *len) {
  if (kv->elem_type != MQ_GGUF_VTYPE_STRING || i >= kv->count) return NULL;
  const uint8_t *p = kv->type == MQ_GGUF_VTYPE_ARRAY ? kv->strs[i] : kv->data;
  *len = le64(p);
  return (const char *)p + 8;
}

static const mq_gguf_kv *find_or_err(const mq_gguf_file *f, const char *key, mq_err *err) {
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, key);
  if (!kv) mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' is missing", f->path, key);
  return kv;
}

/* A scalar integer within [lo_neg: -lo, hi]. */
static int get_int(const mq_gguf_file *f, const char *key, uint64_t max_neg, uint64_t max_pos,
                   const char *want, int *neg, uint64_t *mag, mq_err *err) {
  const mq_gguf_kv *kv = find_or_err(f, key, err);
  if (!kv) return MQ_ERR_FORMAT;
  if (kv->type == MQ_GGUF_VTYPE_ARRAY || elem_int(kv, 0, neg, mag))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' has type %s, expected an integer (%s)",
                   f->path, key, mq_gguf_vtype_name(kv->type), want);
  if ((*neg && *mag > max_neg) || (!*neg && *mag > max_pos))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' = %s%llu does not fit in %s", f->path, key,
                   *neg ? "-" : "", (ull)*mag, want);
  return MQ_OK;
}

int mq_gguf_get_u32(const mq_gguf_file *f, const char *key, uint32_t *out, mq_err *err) {
  int neg;
  uint64_t mag;
  int rc = get_int(f, key, 0, UINT32_MAX, "u32", &neg, &mag, err);
  if (rc == MQ_OK) *out = (uint32_t)mag;
  return rc;
}

int mq_gguf_get_i32(const mq_gguf_file *f, const char *key, int32_t *out, mq_err *err) {
  int neg;
  uint64_t mag;
  int rc = get_int(f, key, 1ull << 31, INT32_MAX, "i32", &neg, &mag, err);
  if (rc == MQ_OK) *out = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
  return rc;
}

int mq_gguf_get_u64(const mq_gguf_file *f, const char *key, uint64_t *out, mq_err *err) {
  int neg;
  uint64_t mag;
  int rc = get_int(f, key, 0, UINT64_MAX, "u64", &neg, &mag, err);
  if (rc == MQ_OK) *out = mag;
  return rc;
}

int mq_gguf_get_f32(const mq_gguf_file *f, const char *key, float *out, mq_err *err) {
  const mq_gguf_kv *kv = find_or_err(f, key, err);
  if (!kv) return MQ_ERR_FORMAT;
  if (kv->type == MQ_GGUF_VTYPE_ARRAY || mq_gguf_arr_f32(kv, 0, out))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' has type %s, expected f32", f->path, key,
                   mq_gguf_vtype_name(kv->type));
  return MQ_OK;
}

int mq_gguf_get_bool(const mq_gguf_file *f, const char *key, int *out, mq_err *err) {
  const mq_gguf_kv *kv = find_or_err(f, key, err);
  if (!kv) return MQ_ERR_FORMAT;
  if (kv->type != MQ_GGUF_VTYPE_BOOL)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' has type %s, expected bool", f->path, key,
                   mq_gguf_vtype_name(kv->type));
  *out = kv->data[0] != 0;
  return MQ_OK;
}

int mq_gguf_get_str(const mq_gguf_file *f, const char *key, const char **s, uint64_t *len,
                    mq_err *err) {
  const mq_gguf_kv *kv = find_or_err(f, key, err);
  if (!kv) return MQ_ERR_FORMAT;
  if (kv->type != MQ_GGUF_VTYPE_STRING)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' has type %s, expected string", f->path, key,
                   mq_gguf_vtype_name(kv->type));
  *s = mq_gguf_arr_str(kv, 0, len);
  return MQ_OK;
}

int mq_gguf_get_arr(const mq_gguf_file *f, const char *key, mq_gguf_vtype elem,
                    const mq_gguf_kv **out, mq_err *err) {
  const mq_gguf_kv *kv = find_or_err(f, key, err);
  if (!kv) return MQ_ERR_FORMAT;
  if (kv->type != MQ_GGUF_VTYPE_ARRAY)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' has type %s, expected an array", f->path, key,
                   mq_gguf_vtype_name(kv->type));
  if (elem != MQ_GGUF_VTYPE_COUNT && kv->elem_type != elem)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: key '%s' is an array of %s, expected an array of %s",
                   f->path, key, mq_gguf_vtype_name(kv->elem_type), mq_gguf_vtype_name(elem));
  *out = kv;
  return MQ_OK;
}

const char *mq_gguf_shape_str(const mq_gguf_tensor *t, char *buf, int cap) {
  int p = snprintf(buf, (size_t)cap, "[");
  for (int i = 0; i < t->n_dims && p < cap; i++)
    p += snprintf(buf + p, (size_t)(cap - p), "%s%lld", i ? ", " : "", (sll)t->ne[i]);
  if (p < cap) snprintf(buf + p, (size_t)(cap - p), "]");
  return buf;
}
