#include "io/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

typedef struct {
  mq_tensor t;
  uint64_t begin, end;
} entry;

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->t.name, y->t.name);
}

static int read_u64(json_t *v, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

/* Fill e from one header entry; names the tensor and the rule on failure. */
static int parse_entry(const char *label, const char *name, json_t *info, entry *e, mq_err *err) {
  if (!json_is_object(info))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': header entry is not a JSON object", label,
                   name);
  json_t *dt = json_object_get(info, "dtype"), *shape = json_object_get(info, "shape"),
         *offs = json_object_get(info, "data_offsets");
  if (!json_is_string(dt))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", label,
                   name);
  e->t.dtype = mq_dtype_from_name(json_string_value(dt));
  if (e->t.dtype == MQ_DTYPE_INVALID)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype \"%s\"", label, name,
                   json_string_value(dt));
  if (!json_is_array(shape))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", label,
                   name);
  size_t nd = json_array_size(shape);
  if (nd > MQ_MAX_DIMS)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions, at most %d supported",
                   label, name, nd, MQ_MAX_DIMS);
  e->t.n_dims = (int)nd;
  uint64_t n = 1;
  for (size_t i = 0; i < nd; i++) {
    uint64_t d;
    if (read_u64(json_array_get(shape, i), &d) != 0)
      return mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': shape[%zu] is not a non-negative integer", label, name, i);
    if (d > INT64_MAX || (d != 0 && n > UINT64_MAX / d))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': shape overflows 64 bits", label, name);
    e->t.shape[i] = (int64_t)d;
    n *= d;
  }
  e->t.n_elems = n;
  uint64_t esz = (uint64_t)mq_dtype_size(e->t.dtype);
  if (n > UINT64_MAX / esz)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': byte size overflows 64 bits", label, name);
  e->t.nbytes = n * esz;
  if (!json_is_array(offs) || json_array_size(offs) != 2 ||
      read_u64(json_array_get(offs, 0), &e->begin) != 0 ||
      read_u64(json_array_get(offs, 1), &e->end) != 0)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: tensor '%s': \"data_offsets\" must be two non-negative integers", label,
                   name);
  return MQ_OK;
}

static int parse_metadata(const char *label, json_t *md, mq_st_file *out, mq_err *err) {
  if (json_is_null(md)) return MQ_OK;
  if (!json_is_object(md))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"__metadata__\" is not an object", label);
  size_t n = json_object_size(md);
  out->meta = calloc(2 * n + 1, sizeof(char *));
  if (!out->meta) return mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory", label);
  const char *k;
  json_t *v;
  json_object_foreach(md, k, v) {
    if (!json_is_string(v))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: \"__metadata__\" value of '%s' is not a string",
                     label, k);
    out->meta[2 * out->n_meta] = strdup(k);
    out->meta[2 * out->n_meta + 1] = strdup(json_string_value(v));
    out->n_meta++;
    if (!out->meta[2 * out->n_meta - 2] || !out->meta[2 * out->n_meta - 1])
      return mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory", label);
  }
  return MQ_OK;
}

static int parse_header(const uint8_t *buf, uint64_t len, const char *label, mq_st_file *out,
                        mq_err *err) {
  if (len < 8)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: file is %llu bytes, too small for the 8-byte header length", label,
                   (unsigned long long)len);
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--) hn = (hn << 8) | buf[i];
  if (hn > MQ_ST_MAX_HEADER)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", label,
                   (unsigned long long)hn);
  if (hn > len - 8)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: header length %llu runs past the end of the file (%llu bytes)", label,
                   (unsigned long long)hn, (unsigned long long)len);
  if (hn == 0 || buf[8] != '{')
    return mq_errf(err, MQ_ERR_FORMAT, "%s: header does not start with '{'", label);

  json_error_t jerr;
  json_t *root = json_loadb((const char *)buf + 8, (size_t)hn, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: header JSON invalid at byte %d: %s", label,
                   jerr.position, jerr.text);
  int rc = MQ_OK;
  if (!json_is_object(root)) {
    rc = mq_errf(err, MQ_ERR_FORMAT, "%s: header is not a JSON object", label);
    goto done;
  }
  size_t cap = json_object_size(root);
  entry *es = calloc(cap ? cap : 1, sizeof *es);
  if (!es) {
    rc = mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory for %zu tensors", label, cap);
    goto done;
  }
  int n = 0;
  const char *name;
  json_t *info;
  json_object_foreach(root, name, info) {
    if (strcmp(name, "__metadata__") == 0) {
      if ((rc = parse_metadata(label, info, out, err)) != MQ_OK) break;
      continue;
    }
    entry *e = &es[n];
    e->t.name = strdup(name);
    if (!e->t.name) {
      rc = mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory", label);
      break;
    }
    n++;
    if ((rc = parse_entry(label, name, info, e, err)) != MQ_OK) break;
  }
  if (rc == MQ_OK) {
    /* Data region: tensors back to back from 0, in offset order. */
    qsort(es, (size_t)n, sizeof *es, cmp_entry);
    uint64_t data_len = len - 8 - hn, pos = 0;
    for (int i = 0; i < n && rc == MQ_OK; i++) {
      entry *e = &es[i];
      if (e->end < e->begin)
        rc = mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                     label, e->t.name, (unsigned long long)e->begin, (unsigned long long)e->end);
      else if (e->begin != pos)
        rc = mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': data begins at offset %llu, expected %llu (tensors must be "
                     "contiguous, without gaps or overlaps)",
                     label, e->t.name, (unsigned long long)e->begin, (unsigned long long)pos);
      else if (e->end - e->begin != e->t.nbytes) {
        char sh[128];
        rc = mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': %llu data bytes, but dtype %s x shape %s needs %llu", label,
                     e->t.name, (unsigned long long)(e->end - e->begin),
                     mq_dtype_name(e->t.dtype), mq_shape_str(&e->t, sh, sizeof sh),
                     (unsigned long long)e->t.nbytes);
      } else if (e->end > data_len)
        rc = mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s': data_offsets end %llu is beyond the data region (%llu bytes)",
                     label, e->t.name, (unsigned long long)e->end, (unsigned long long)data_len);
      pos = e->end;
    }
    if (rc == MQ_OK && pos != data_len)
      rc = mq_errf(err, MQ_ERR_FORMAT,
                   "%s: tensors cover %llu bytes of data but the file holds %llu after the header",
                   label, (unsigned long long)pos, (unsigned long long)data_len);
  }
  out->tensors = malloc((size_t)(n ? n : 1) * sizeof(mq_tensor));
  if (!out->tensors && rc == MQ_OK) rc = mq_errf(err, MQ_ERR_NOMEM, "%s: out of memory", label);
  for (int i = 0; i < n; i++) {
    if (out->tensors) {
      /* offsets are only known to lie inside buf once validation passed */
      es[i].t.data = rc == MQ_OK ? buf + 8 + hn + es[i].begin : NULL;
      out->tensors[out->n_tensors++] = es[i].t;
    } else {
      free((char *)es[i].t.name);
    }
  }
  free(es);
done:
  json_decref(root);
  return rc;
}

int mq_st_parse(const uint8_t *buf, uint64_t len, const char *label, mq_st_file *out, mq_err *err) {
  memset(out, 0, sizeof *out);
  out->path = strdup(label ? label : "<buffer>");
  if (!out->path) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  int rc = parse_header(buf, len, out->path, out, err);
  for (int i = 0; i < out->n_tensors; i++) out->tensors[i].file = out->path;
  if (rc != MQ_OK) mq_st_close(out);
  return rc;
}

int mq_st_open(const char *path, mq_st_file *out, mq_err *err) {
  mq_mapped m;
  memset(out, 0, sizeof *out);
  int rc = mq_file_map(path, &m, err);
  if (rc != MQ_OK) return rc;
  rc = mq_st_parse(m.data, m.size, path, out, err);
  if (rc != MQ_OK) {
    mq_file_unmap(&m);
    return rc;
  }
  out->map = m;
  return MQ_OK;
}

void mq_st_close(mq_st_file *f) {
  for (int i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
  free(f->tensors);
  for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
  free(f->meta);
  free(f->path);
  mq_file_unmap(&f->map);
  memset(f, 0, sizeof *f);
}

const mq_tensor *mq_st_find(const mq_st_file *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

const char *mq_st_meta(const mq_st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
  return NULL;
}

const char *mq_shape_str(const mq_tensor *t, char *buf, int cap) {
  int p = snprintf(buf, (size_t)cap, "[");
  for (int i = 0; i < t->n_dims && p < cap; i++)
    p += snprintf(buf + p, (size_t)(cap - p), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  if (p < cap) snprintf(buf + p, (size_t)(cap - p), "]");
  return buf;
}
