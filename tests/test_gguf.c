/* GGUF reader: small files written here (every metadata value type, arrays,
 * several tensor types, custom alignment), a list of corrupted files (each
 * must fail naming its rule), truncation and byte-flip sweeps (memory safety
 * under the sanitizer build), and the real files in shared/fixtures
 * (stories260K F32 / Q8_0 / Q4_0, llama.cpp's vocab-only GGUFs). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "quant/gguf_types.h"
#include "test.h"

/* ---- an in-memory GGUF writer ---- */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} wb;

static void wb_put(wb *w, const void *d, size_t n) {
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2 + 64;
    w->p = realloc(w->p, w->cap);
  }
  if (n) memcpy(w->p + w->n, d, n);
  w->n += n;
}
static void wb_u8(wb *w, uint8_t v) { wb_put(w, &v, 1); }
static void wb_uint(wb *w, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) wb_u8(w, (uint8_t)(v >> (8 * i)));
}
static void wb_u32(wb *w, uint32_t v) { wb_uint(w, v, 4); }
static void wb_u64(wb *w, uint64_t v) { wb_uint(w, v, 8); }
static void wb_strn(wb *w, const char *s, size_t n) {
  wb_u64(w, n);
  wb_put(w, s, n);
}
static void wb_str(wb *w, const char *s) { wb_strn(w, s, strlen(s)); }
static void wb_f32(wb *w, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  wb_u32(w, u);
}
static void wb_f64(wb *w, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  wb_u64(w, u);
}
static void set_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void set_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* key + value type (the value follows) */
static void kv_hdr(wb *w, const char *key, uint32_t t) {
  wb_str(w, key);
  wb_u32(w, t);
}

typedef struct {
  const char *name;
  uint32_t type;
  int nd;
  int64_t ne[4];
} tdesc;

/* Where the writer put each structural field, for patching. */
typedef struct {
  size_t version, n_tensors, n_kv;
  size_t kv_key[32], kv_type[32], kv_val[32];
  int n_kv_written;
  size_t ti_name[16], ti_ndims[16], ti_ne[16], ti_type[16], ti_off[16];
  size_t ti_end, data;
  uint64_t t_off[16], t_bytes[16];
} marks;

typedef void (*extra_kvs)(wb *w, marks *m);

static void mark_kv(wb *w, marks *m) { m->kv_key[m->n_kv_written++] = w->n; }

/* The standard metadata: one pair of every value type and several arrays. */
static void std_kvs(wb *w, marks *m, uint32_t align) {
  mark_kv(w, m);
  kv_hdr(w, "general.architecture", MQ_GGUF_VTYPE_STRING);
  wb_str(w, "llama");
  if (align) {
    mark_kv(w, m);
    kv_hdr(w, "general.alignment", MQ_GGUF_VTYPE_U32);
    wb_u32(w, align);
  }
  mark_kv(w, m), kv_hdr(w, "t.u8", MQ_GGUF_VTYPE_U8), wb_u8(w, 200);
  mark_kv(w, m), kv_hdr(w, "t.i8", MQ_GGUF_VTYPE_I8), wb_uint(w, (uint8_t)-100, 1);
  mark_kv(w, m), kv_hdr(w, "t.u16", MQ_GGUF_VTYPE_U16), wb_uint(w, 60000, 2);
  mark_kv(w, m), kv_hdr(w, "t.i16", MQ_GGUF_VTYPE_I16), wb_uint(w, (uint16_t)-30000, 2);
  mark_kv(w, m), kv_hdr(w, "t.u32", MQ_GGUF_VTYPE_U32), wb_u32(w, 4000000000u);
  mark_kv(w, m), kv_hdr(w, "t.i32", MQ_GGUF_VTYPE_I32), wb_u32(w, (uint32_t)-2000000000);
  mark_kv(w, m), kv_hdr(w, "t.f32", MQ_GGUF_VTYPE_F32), wb_f32(w, 1.5f);
  mark_kv(w, m), kv_hdr(w, "t.bool", MQ_GGUF_VTYPE_BOOL), wb_u8(w, 1);
  mark_kv(w, m), kv_hdr(w, "t.u64", MQ_GGUF_VTYPE_U64), wb_u64(w, 1ull << 40);
  mark_kv(w, m), kv_hdr(w, "t.i64", MQ_GGUF_VTYPE_I64), wb_u64(w, (uint64_t) - (1ll << 40));
  mark_kv(w, m), kv_hdr(w, "t.f64", MQ_GGUF_VTYPE_F64), wb_f64(w, 0.25);
  mark_kv(w, m), kv_hdr(w, "t.small", MQ_GGUF_VTYPE_U16), wb_uint(w, 7, 2);
  mark_kv(w, m), kv_hdr(w, "t.arr_i32", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_I32), wb_u64(w, 3);
  wb_u32(w, 1), wb_u32(w, (uint32_t)-2), wb_u32(w, 3);
  mark_kv(w, m), kv_hdr(w, "t.arr_str", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_STRING), wb_u64(w, 3);
  wb_str(w, "a"), wb_str(w, ""), wb_str(w, "h\xc3\xa9llo");
  mark_kv(w, m), kv_hdr(w, "t.arr_f32", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_F32), wb_u64(w, 2), wb_f32(w, 0.5f), wb_f32(w, -1.0f);
  mark_kv(w, m), kv_hdr(w, "t.arr_empty", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_U8), wb_u64(w, 0);
  mark_kv(w, m), kv_hdr(w, "t.arr_bool", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_BOOL), wb_u64(w, 2), wb_u8(w, 1), wb_u8(w, 0);
  mark_kv(w, m), kv_hdr(w, "t.arr_u64", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_U64), wb_u64(w, 2), wb_u64(w, 5), wb_u64(w, UINT64_MAX);
  mark_kv(w, m), kv_hdr(w, "t.arr_f64", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_F64), wb_u64(w, 1), wb_f64(w, -2.5);
  mark_kv(w, m), kv_hdr(w, "t.str_empty", MQ_GGUF_VTYPE_STRING), wb_str(w, "");
}

static const tdesc k_tensors[] = {
    {"token_embd.weight", MQ_GGML_TYPE_F32, 2, {8, 3, 1, 1}},
    {"blk.0.attn_q.weight", MQ_GGML_TYPE_Q4_0, 2, {64, 2, 1, 1}},
    {"output_norm.weight", MQ_GGML_TYPE_F16, 1, {5, 1, 1, 1}},
    {"blk.0.ffn_down.weight", MQ_GGML_TYPE_Q4_K, 3, {256, 1, 2, 1}},
    {"scalar", MQ_GGML_TYPE_F32, 0, {1, 1, 1, 1}},
    {"four_d", MQ_GGML_TYPE_I8, 4, {2, 3, 1, 2}},
};
#define N_TENSORS ((int)(sizeof k_tensors / sizeof k_tensors[0]))

static uint64_t tensor_bytes(const tdesc *t) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(t->type);
  uint64_t n = (uint64_t)t->ne[0] / (uint64_t)ti->blck * (uint64_t)ti->type_size;
  for (int j = 1; j < t->nd; j++) n *= (uint64_t)t->ne[j];
  return n;
}

static uint8_t data_byte(int t, uint64_t i) { return (uint8_t)(t * 31 + i * 7 + 1); }

/* A whole file: version 3, standard metadata (+ extra pairs), the given
 * tensors at sequential aligned offsets, data bytes from data_byte(). The
 * last tensor is not padded, so the file ends with its last byte.
 * align == 0: no general.alignment key (default 32). Caller frees. */
static uint8_t *build(const tdesc *ts, int nt, uint32_t align, extra_kvs extra, size_t *len,
                      marks *m) {
  wb w = {0};
  memset(m, 0, sizeof *m);
  uint64_t a = align ? align : 32;
  wb_put(&w, "GGUF", 4);
  m->version = w.n, wb_u32(&w, 3);
  m->n_tensors = w.n, wb_u64(&w, (uint64_t)nt);
  m->n_kv = w.n, wb_u64(&w, 0);
  std_kvs(&w, m, align);
  if (extra) extra(&w, m);
  set_u64(w.p + m->n_kv, (uint64_t)m->n_kv_written);
  uint64_t off = 0;
  for (int i = 0; i < nt; i++) {
    m->ti_name[i] = w.n, wb_str(&w, ts[i].name);
    m->ti_ndims[i] = w.n, wb_u32(&w, (uint32_t)ts[i].nd);
    m->ti_ne[i] = w.n;
    for (int j = 0; j < ts[i].nd; j++) wb_u64(&w, (uint64_t)ts[i].ne[j]);
    m->ti_type[i] = w.n, wb_u32(&w, ts[i].type);
    m->ti_off[i] = w.n, wb_u64(&w, off);
    m->t_off[i] = off;
    m->t_bytes[i] = tensor_bytes(&ts[i]);
    off += (m->t_bytes[i] + a - 1) / a * a;
  }
  m->ti_end = w.n;
  if (nt) {
    while (w.n % a) wb_u8(&w, 0);
  }
  m->data = w.n;
  for (int i = 0; i < nt; i++) {
    if (m->t_bytes[i] > (1u << 20)) break; /* a test of sizes: the data is not written */
    while (w.n < m->data + m->t_off[i]) wb_u8(&w, 0xAA);
    for (uint64_t b = 0; b < m->t_bytes[i]; b++) wb_u8(&w, data_byte(i, b));
  }
  *len = w.n;
  return w.p;
}

static uint8_t *build_std(size_t *len, marks *m) {
  return build(k_tensors, N_TENSORS, 0, NULL, len, m);
}

/* ---- valid files ---- */

static void check_std_metadata(const mq_gguf_file *f) {
  mq_err err = {0};
  const char *s;
  uint64_t sl;
  CHECK(mq_gguf_get_str(f, "general.architecture", &s, &sl, &err) == MQ_OK && sl == 5 &&
        memcmp(s, "llama", 5) == 0);
  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  float f32;
  int b;
  CHECK(mq_gguf_get_u32(f, "t.u8", &u32, &err) == MQ_OK && u32 == 200);
  CHECK(mq_gguf_get_i32(f, "t.i8", &i32, &err) == MQ_OK && i32 == -100);
  CHECK(mq_gguf_get_u32(f, "t.u16", &u32, &err) == MQ_OK && u32 == 60000);
  CHECK(mq_gguf_get_i32(f, "t.i16", &i32, &err) == MQ_OK && i32 == -30000);
  CHECK(mq_gguf_get_u32(f, "t.u32", &u32, &err) == MQ_OK && u32 == 4000000000u);
  CHECK(mq_gguf_get_i32(f, "t.i32", &i32, &err) == MQ_OK && i32 == -2000000000);
  CHECK(mq_gguf_get_f32(f, "t.f32", &f32, &err) == MQ_OK && f32 == 1.5f);
  CHECK(mq_gguf_get_bool(f, "t.bool", &b, &err) == MQ_OK && b == 1);
  CHECK(mq_gguf_get_u64(f, "t.u64", &u64, &err) == MQ_OK && u64 == (1ull << 40));
  CHECK(mq_gguf_get_f32(f, "t.f64", &f32, &err) == MQ_OK && f32 == 0.25f);
  CHECK(mq_gguf_get_i32(f, "t.small", &i32, &err) == MQ_OK && i32 == 7);
  CHECK(mq_gguf_get_u64(f, "t.small", &u64, &err) == MQ_OK && u64 == 7);
  /* lenient integer widths, strict ranges and kinds */
  CHECK(mq_gguf_get_u32(f, "t.u64", &u32, &err) == MQ_ERR_FORMAT && strstr(err.msg, "t.u64") &&
        strstr(err.msg, "does not fit"));
  CHECK(mq_gguf_get_u32(f, "t.i8", &u32, &err) == MQ_ERR_FORMAT && strstr(err.msg, "-100"));
  CHECK(mq_gguf_get_i32(f, "t.u32", &i32, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_u64(f, "t.i64", &u64, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_u32(f, "t.f32", &u32, &err) == MQ_ERR_FORMAT && strstr(err.msg, "f32"));
  CHECK(mq_gguf_get_u32(f, "t.bool", &u32, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_f32(f, "t.u32", &f32, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_bool(f, "t.u8", &b, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_str(f, "t.u8", &s, &sl, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_u32(f, "no.such.key", &u32, &err) == MQ_ERR_FORMAT &&
        strstr(err.msg, "no.such.key") && strstr(err.msg, "missing"));
  CHECK(mq_gguf_find_kv(f, "no.such.key") == NULL);
  CHECK(mq_gguf_get_str(f, "t.str_empty", &s, &sl, &err) == MQ_OK && sl == 0);

  const mq_gguf_kv *kv = mq_gguf_find_kv(f, "t.i64");
  int64_t v;
  CHECK(kv && mq_gguf_arr_int(kv, 0, &v) == 0 && v == -(1ll << 40));
  CHECK(kv && mq_gguf_arr_int(kv, 1, &v) == -1);
  const mq_gguf_kv *arr;
  CHECK(mq_gguf_get_arr(f, "t.arr_i32", MQ_GGUF_VTYPE_I32, &arr, &err) == MQ_OK);
  CHECK(arr->count == 3 && arr->type == MQ_GGUF_VTYPE_ARRAY && arr->elem_type == MQ_GGUF_VTYPE_I32);
  CHECK(mq_gguf_arr_int(arr, 0, &v) == 0 && v == 1);
  CHECK(mq_gguf_arr_int(arr, 1, &v) == 0 && v == -2);
  CHECK(mq_gguf_arr_int(arr, 2, &v) == 0 && v == 3);
  CHECK(mq_gguf_arr_int(arr, 3, &v) == -1);
  CHECK(mq_gguf_get_arr(f, "t.arr_i32", MQ_GGUF_VTYPE_F32, &arr, &err) == MQ_ERR_FORMAT &&
        strstr(err.msg, "array of i32"));
  CHECK(mq_gguf_get_arr(f, "t.u8", MQ_GGUF_VTYPE_COUNT, &arr, &err) == MQ_ERR_FORMAT);
  CHECK(mq_gguf_get_arr(f, "t.arr_str", MQ_GGUF_VTYPE_STRING, &arr, &err) == MQ_OK);
  CHECK(arr->count == 3);
  s = mq_gguf_arr_str(arr, 0, &sl);
  CHECK(s && sl == 1 && s[0] == 'a');
  s = mq_gguf_arr_str(arr, 1, &sl);
  CHECK(s && sl == 0);
  s = mq_gguf_arr_str(arr, 2, &sl);
  CHECK(s && sl == 6 && memcmp(s, "h\xc3\xa9llo", 6) == 0);
  CHECK(mq_gguf_arr_str(arr, 3, &sl) == NULL);
  CHECK(mq_gguf_arr_int(arr, 0, &v) == -1);
  CHECK(mq_gguf_get_arr(f, "t.arr_f32", MQ_GGUF_VTYPE_COUNT, &arr, &err) == MQ_OK);
  CHECK(mq_gguf_arr_f32(arr, 0, &f32) == 0 && f32 == 0.5f);
  CHECK(mq_gguf_arr_f32(arr, 1, &f32) == 0 && f32 == -1.0f);
  CHECK(mq_gguf_arr_str(arr, 0, &sl) == NULL);
  CHECK(mq_gguf_get_arr(f, "t.arr_empty", MQ_GGUF_VTYPE_U8, &arr, &err) == MQ_OK &&
        arr->count == 0);
  CHECK(mq_gguf_get_arr(f, "t.arr_bool", MQ_GGUF_VTYPE_BOOL, &arr, &err) == MQ_OK);
  CHECK(mq_gguf_arr_int(arr, 0, &v) == 0 && v == 1 && mq_gguf_arr_int(arr, 1, &v) == 0 && v == 0);
  CHECK(mq_gguf_get_arr(f, "t.arr_u64", MQ_GGUF_VTYPE_U64, &arr, &err) == MQ_OK);
  CHECK(mq_gguf_arr_int(arr, 0, &v) == 0 && v == 5);
  CHECK(mq_gguf_arr_int(arr, 1, &v) == -1); /* UINT64_MAX does not fit in int64 */
  CHECK(mq_gguf_get_arr(f, "t.arr_f64", MQ_GGUF_VTYPE_F64, &arr, &err) == MQ_OK);
  CHECK(mq_gguf_arr_f32(arr, 0, &f32) == 0 && f32 == -2.5f);
  CHECK(strcmp(mq_gguf_vtype_name(MQ_GGUF_VTYPE_STRING), "string") == 0);
  CHECK(strcmp(mq_gguf_vtype_name(99), "invalid") == 0);
}

static void check_std_tensors(const mq_gguf_file *f, const uint8_t *buf, const marks *m,
                              const tdesc *ts, int nt) {
  CHECK(f->n_tensors == nt);
  CHECK(f->data_offset == m->data);
  for (int i = 0; i < nt && i < f->n_tensors; i++) {
    const mq_gguf_tensor *t = mq_gguf_find_tensor(f, ts[i].name);
    CHECK_MSG(t == &f->tensors[i], "tensor %s not found in file order", ts[i].name);
    if (!t) continue;
    CHECK(strcmp(t->name, ts[i].name) == 0);
    CHECK(t->type == ts[i].type && t->n_dims == ts[i].nd);
    uint64_t n = 1;
    for (int j = 0; j < 4; j++) {
      CHECK(t->ne[j] == (j < ts[i].nd ? ts[i].ne[j] : 1));
      n *= (uint64_t)t->ne[j];
    }
    CHECK(t->n_elems == n);
    CHECK(t->offset == m->t_off[i] && t->nbytes == m->t_bytes[i]);
    CHECK(t->data == buf + m->data + m->t_off[i]);
    CHECK((size_t)(t->data - buf) % f->alignment == 0);
    int ok = 1;
    for (uint64_t b = 0; b < t->nbytes; b++) ok &= t->data[b] == data_byte(i, b);
    CHECK_MSG(ok, "tensor %s data differs", t->name);
  }
  CHECK(mq_gguf_find_tensor(f, "missing.weight") == NULL);
}

static void test_valid(void) {
  marks m;
  size_t len;
  mq_err err = {0};
  /* default alignment, then 1, 8 and 64 */
  uint32_t aligns[] = {0, 1, 8, 64};
  for (int a = 0; a < 4; a++) {
    uint8_t *buf = build(k_tensors, N_TENSORS, aligns[a], NULL, &len, &m);
    mq_gguf_file f;
    int rc = mq_gguf_parse(buf, len, "mem.gguf", &f, &err);
    CHECK_MSG(rc == MQ_OK, "valid file (alignment %u) rejected: %s", aligns[a], err.msg);
    if (rc == MQ_OK) {
      CHECK(f.version == 3 && f.size == len);
      CHECK(f.alignment == (aligns[a] ? aligns[a] : 32));
      CHECK(f.n_kv == m.n_kv_written);
      CHECK(strcmp(f.path, "mem.gguf") == 0);
      check_std_metadata(&f);
      check_std_tensors(&f, buf, &m, k_tensors, N_TENSORS);
      char sh[64];
      CHECK(strcmp(mq_gguf_shape_str(&f.tensors[3], sh, sizeof sh), "[256, 1, 2]") == 0);
      CHECK(strcmp(mq_gguf_shape_str(&f.tensors[4], sh, sizeof sh), "[]") == 0);
      mq_gguf_close(&f);
      CHECK(f.n_tensors == 0 && f.kvs == NULL && f.path == NULL);
    }
    free(buf);
  }
  /* version 2 reads the same */
  uint8_t *buf = build_std(&len, &m);
  set_u32(buf + m.version, 2);
  mq_gguf_file f;
  CHECK(mq_gguf_parse(buf, len, NULL, &f, &err) == MQ_OK && f.version == 2);
  CHECK(f.path && strcmp(f.path, "<buffer>") == 0);
  mq_gguf_close(&f);
  free(buf);
  /* metadata only: no tensors, the file ends after the last pair (no padding) */
  buf = build(NULL, 0, 0, NULL, &len, &m);
  CHECK(mq_gguf_parse(buf, len, "kv-only", &f, &err) == MQ_OK && f.n_tensors == 0 &&
        f.data_offset == len);
  mq_gguf_close(&f);
  free(buf);
  /* tensors in another order than their data, with a gap: accepted (only
   * aligned, in bounds and non-overlapping is required) */
  buf = build_std(&len, &m);
  uint64_t o0 = m.t_off[0], o1 = m.t_off[1];
  set_u64(buf + m.ti_off[0], o1);
  set_u64(buf + m.ti_off[1], o0);
  /* swapping two offsets only works where both fit: token_embd (96 bytes)
   * and attn_q (72 bytes) are both padded to 96 */
  int rc = mq_gguf_parse(buf, len, "swap", &f, &err);
  CHECK_MSG(rc == MQ_OK, "out-of-order offsets rejected: %s", err.msg);
  if (rc == MQ_OK) {
    CHECK(f.tensors[0].data == buf + m.data + o1 && f.tensors[1].data == buf + m.data + o0);
    mq_gguf_close(&f);
  }
  free(buf);
}

/* ---- corrupted files ---- */

static int n_corrupt;

/* Parse and expect failure with code and a message containing want. */
static void expect_fail(const char *what, const uint8_t *buf, size_t len, int code,
                        const char *want) {
  mq_gguf_file f;
  mq_err err = {0};
  int rc = mq_gguf_parse(buf, len, "bad.gguf", &f, &err);
  n_corrupt++;
  CHECK_MSG(rc != MQ_OK, "%s: accepted", what);
  if (rc == MQ_OK) {
    mq_gguf_close(&f);
    return;
  }
  CHECK_MSG(code == 0 || rc == code, "%s: code %d, expected %d (%s)", what, rc, code, err.msg);
  CHECK_MSG(strstr(err.msg, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg, want);
  CHECK_MSG(strncmp(err.msg, "bad.gguf: ", 10) == 0, "%s: message does not name the file: %s", what,
            err.msg);
  CHECK(f.n_tensors == 0 && f.n_kv == 0 && f.kvs == NULL && f.tensors == NULL && f.path == NULL);
}

/* Patch a copy of the standard file and expect failure. */
static void patch32(const char *what, size_t at, uint32_t v, const char *want) {
  marks m;
  size_t len;
  uint8_t *buf = build_std(&len, &m);
  set_u32(buf + at, v);
  expect_fail(what, buf, len, 0, want);
  free(buf);
}
static void patch64(const char *what, size_t at, uint64_t v, const char *want) {
  marks m;
  size_t len;
  uint8_t *buf = build_std(&len, &m);
  set_u64(buf + at, v);
  expect_fail(what, buf, len, 0, want);
  free(buf);
}

static void x_nested(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.nested", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_ARRAY), wb_u64(w, 1);
  wb_u32(w, MQ_GGUF_VTYPE_U8), wb_u64(w, 1), wb_u8(w, 1);
}
static void x_badtype(wb *w, marks *m) { mark_kv(w, m), kv_hdr(w, "x.bad", 13), wb_u32(w, 0); }
static void x_badelem(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.bad", MQ_GGUF_VTYPE_ARRAY), wb_u32(w, 77), wb_u64(w, 0);
}
static void x_dupkey(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "t.u8", MQ_GGUF_VTYPE_U8), wb_u8(w, 1);
}
static void x_emptykey(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "", MQ_GGUF_VTYPE_U8), wb_u8(w, 1);
}
static void x_nulkey(wb *w, marks *m) {
  mark_kv(w, m), wb_strn(w, "a\0b", 3), wb_u32(w, MQ_GGUF_VTYPE_U8), wb_u8(w, 1);
}
static void x_align48(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "general.alignment", MQ_GGUF_VTYPE_U32), wb_u32(w, 48);
}
static void x_align0(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "general.alignment", MQ_GGUF_VTYPE_U32), wb_u32(w, 0);
}
static void x_alignbig(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "general.alignment", MQ_GGUF_VTYPE_U32), wb_u32(w, 1u << 21);
}
static void x_align64bit(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "general.alignment", MQ_GGUF_VTYPE_U64), wb_u64(w, 32);
}
static void x_strarr_huge(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.strs", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_STRING), wb_u64(w, 1ull << 25), wb_str(w, "x");
}
static void x_arr_huge(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.arr", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_U32), wb_u64(w, 1ull << 40);
}
static void x_arr_past(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.arr", MQ_GGUF_VTYPE_ARRAY);
  wb_u32(w, MQ_GGUF_VTYPE_U64), wb_u64(w, 1000000), wb_u64(w, 1);
}
static void x_str_huge(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.s", MQ_GGUF_VTYPE_STRING), wb_u64(w, (64ull << 20) + 1);
}
static void x_str_past(wb *w, marks *m) {
  mark_kv(w, m), kv_hdr(w, "x.s", MQ_GGUF_VTYPE_STRING), wb_u64(w, 1u << 20), wb_u8(w, 'x');
}

static void with_extra(const char *what, extra_kvs x, const char *want) {
  marks m;
  size_t len;
  uint8_t *buf = build(k_tensors, N_TENSORS, 0, x, &len, &m);
  expect_fail(what, buf, len, MQ_ERR_FORMAT, want);
  free(buf);
}

/* A file with the given tensors (and standard metadata). */
static void with_tensors(const char *what, const tdesc *ts, int nt, const char *want) {
  marks m;
  size_t len;
  uint8_t *buf = build(ts, nt, 0, NULL, &len, &m);
  expect_fail(what, buf, len, MQ_ERR_FORMAT, want);
  free(buf);
}

static void test_corrupt(void) {
  marks m;
  size_t len;
  uint8_t *buf = build_std(&len, &m);
  free(buf);

  /* header */
  patch32("bad magic", 0, 0x47475546 /* "FUGG" */, "bad magic 'FUGG'");
  patch32("version 0", m.version, 0, "version 0");
  patch32("version 1", m.version, 1, "version 1 is not supported");
  patch32("version 99", m.version, 99, "version 99");
  patch32("big-endian version", m.version, 0x03000000, "big-endian");
  patch64("huge tensor count", m.n_tensors, 1ull << 40, "tensor count");
  patch64("negative tensor count", m.n_tensors, (uint64_t)-1, "tensor count is negative");
  patch64("huge kv count", m.n_kv, 1ull << 40, "key/value count");
  patch64("negative kv count", m.n_kv, 1ull << 63, "key/value count is negative");
  patch64("tensor count too big by one", m.n_tensors, N_TENSORS + 1, "name of tensor 6");

  /* metadata */
  patch64("key length past EOF", m.kv_key[2], 1u << 20, "runs past the end of the file");
  patch64("key length over the string limit", m.kv_key[2], 1ull << 40, "exceeds the limit");
  patch32("unknown value type (patched)", m.kv_key[2] + 8 + 4, 200, "unknown value type 200");
  with_extra("unknown value type", x_badtype, "unknown value type 13");
  with_extra("unknown array element type", x_badelem, "unknown array element type 77");
  with_extra("nested array", x_nested, "nested array");
  with_extra("duplicate key", x_dupkey, "duplicate key 't.u8'");
  with_extra("empty key", x_emptykey, "is empty");
  with_extra("key with NUL", x_nulkey, "NUL byte");
  with_extra("string length past EOF", x_str_past, "runs past the end of the file");
  with_extra("string length over the limit", x_str_huge, "exceeds the limit");
  with_extra("array count huge", x_arr_huge, "array count 1099511627776 exceeds the limit");
  with_extra("array past EOF", x_arr_past, "runs past the end of the file");
  with_extra("string array count past EOF", x_strarr_huge, "cannot fit");
  with_extra("alignment 48", x_align48, "power of two");
  with_extra("alignment 0", x_align0, "power of two");
  with_extra("alignment 2 MiB", x_alignbig, "exceeds the limit");
  with_extra("alignment as u64", x_align64bit, "must be u32");

  /* tensor infos */
  patch32("n_dims 5", m.ti_ndims[1], 5, "n_dims 5");
  patch64("ne negative", m.ti_ne[1] + 8, (uint64_t)-3, "dimension 1 is negative");
  patch64("ne zero", m.ti_ne[0], 0, "dimension 0 is zero");
  patch32("unknown ggml type", m.ti_type[0], 99, "unknown ggml type 99");
  patch32("removed ggml type", m.ti_type[0], 4, "removed");
  patch32("ggml type = count", m.ti_type[0], MQ_GGML_TYPE_COUNT, "unknown ggml type 43");
  patch64("offset misaligned", m.ti_off[1], m.t_off[1] + 4, "not a multiple of the alignment");
  patch64("offset past EOF", m.ti_off[1], 1ull << 30, "runs past the end of the file");
  patch64("offset near 2^64", m.ti_off[1], ~0ull - 31, "runs past the end of the file");
  patch64("overlapping tensors", m.ti_off[2], m.t_off[1], "overlaps");
  patch64("name length past EOF", m.ti_name[3], 1u << 20, "runs past the end of the file");
  {
    tdesc t[] = {{"a", MQ_GGML_TYPE_F32, 2, {1ll << 32, 1ll << 32}}};
    with_tensors("ne overflow", t, 1, "overflows 64 bits");
  }
  {
    tdesc t[] = {{"a", MQ_GGML_TYPE_F32, 4, {1ll << 20, 1ll << 20, 1ll << 20, 1ll << 10}}};
    with_tensors("ne overflow in dim 3", t, 1, "overflows 64 bits at dimension 3");
  }
  {
    tdesc t[] = {{"a", MQ_GGML_TYPE_F32, 2, {4, 2}}, {"a", MQ_GGML_TYPE_F32, 1, {4}}};
    with_tensors("duplicate tensor names", t, 2, "duplicate tensor name 'a'");
  }
  {
    tdesc t[] = {{"q", MQ_GGML_TYPE_Q4_0, 2, {48, 2}}};
    with_tensors("row not a multiple of the block", t, 1,
                 "not a multiple of the q4_0 block size 32");
  }
  {
    tdesc t[] = {{"k", MQ_GGML_TYPE_Q6_K, 1, {128}}};
    with_tensors("row not a multiple of 256", t, 1, "q6_K block size 256");
  }
  {
    tdesc t[] = {{"", MQ_GGML_TYPE_F32, 1, {4}}};
    with_tensors("empty tensor name", t, 1, "empty name");
  }
  {
    char name[70];
    memset(name, 'n', 64);
    name[64] = 0;
    tdesc t[] = {{name, MQ_GGML_TYPE_F32, 1, {4}}};
    with_tensors("tensor name too long", t, 1, "at most 63");
  }
  {
    /* 2^62 f32 elements: 2^64 bytes */
    tdesc t[] = {{"big", MQ_GGML_TYPE_F32, 2, {1ll << 31, 1ll << 31}}};
    with_tensors("byte size overflow", t, 1, "byte size overflows");
  }
  {
    /* huge but representable: must fail on the file size, not allocate */
    tdesc t[] = {{"big", MQ_GGML_TYPE_F32, 2, {1ll << 20, 1ll << 20}}};
    with_tensors("tensor data past EOF", t, 1, "runs past the end of the file");
  }

  /* truncation at every structural boundary (and one byte into each field) */
  buf = build_std(&len, &m);
  size_t cuts[256];
  int nc = 0;
  cuts[nc++] = 0, cuts[nc++] = 3, cuts[nc++] = 4, cuts[nc++] = m.version + 2;
  cuts[nc++] = m.n_tensors, cuts[nc++] = m.n_tensors + 5, cuts[nc++] = m.n_kv,
  cuts[nc++] = m.n_kv + 7;
  for (int i = 0; i < m.n_kv_written; i++) {
    cuts[nc++] = m.kv_key[i];
    cuts[nc++] = m.kv_key[i] + 4;
    cuts[nc++] = m.kv_key[i] + 9;
  }
  for (int i = 0; i < N_TENSORS; i++) {
    cuts[nc++] = m.ti_name[i], cuts[nc++] = m.ti_name[i] + 9;
    cuts[nc++] = m.ti_ndims[i], cuts[nc++] = m.ti_ndims[i] + 2;
    cuts[nc++] = m.ti_ne[i], cuts[nc++] = m.ti_type[i];
    cuts[nc++] = m.ti_off[i], cuts[nc++] = m.ti_off[i] + 7;
  }
  cuts[nc++] = m.ti_end;
  for (int c = 0; c < nc; c++) {
    char what[64];
    snprintf(what, sizeof what, "truncated at %zu", cuts[c]);
    /* which rule fires depends on the field cut: a count that no longer fits,
     * a string running past the end, or a plain short read */
    mq_gguf_file f;
    mq_err err = {0};
    int rc = mq_gguf_parse(buf, cuts[c], "cut.gguf", &f, &err);
    n_corrupt++;
    CHECK_MSG(rc == MQ_ERR_FORMAT, "%s: rc %d", what, rc);
    CHECK_MSG(strstr(err.msg, "truncated") || strstr(err.msg, "past the end of the file") ||
                  strstr(err.msg, "cannot fit"),
              "%s: message \"%s\"", what, err.msg);
    if (rc == MQ_OK) mq_gguf_close(&f);
  }
  for (int i = 0; i < N_TENSORS; i++) { /* inside and at the start of each tensor's data */
    char what[64];
    snprintf(what, sizeof what, "truncated in tensor %d's data", i);
    expect_fail(what, buf, m.data + m.t_off[i] + m.t_bytes[i] - 1, MQ_ERR_FORMAT,
                "runs past the end of the file");
  }
  free(buf);
}

/* Every prefix of a small valid file fails cleanly; the whole file parses. */
static void test_truncation_sweep(void) {
  marks m;
  size_t len;
  uint8_t *buf = build_std(&len, &m);
  int bad = 0;
  for (size_t n = 0; n < len; n++) {
    uint8_t *copy = malloc(n ? n : 1); /* exact-size copy: ASan sees any over-read */
    memcpy(copy, buf, n);
    mq_gguf_file f;
    mq_err err = {0};
    int rc = mq_gguf_parse(n ? copy : NULL, n, "prefix", &f, &err);
    if (rc == MQ_OK || err.msg[0] == 0) {
      bad++;
      if (rc == MQ_OK) mq_gguf_close(&f);
    }
    free(copy);
  }
  CHECK_MSG(bad == 0, "%d of %zu prefixes did not fail with a message", bad, len);
  mq_gguf_file f;
  mq_err err = {0};
  CHECK(mq_gguf_parse(buf, len, "whole", &f, &err) == MQ_OK);
  mq_gguf_close(&f);
  free(buf);
}

/* Flip every byte of the header part in turn: any outcome but a crash or a
 * sanitizer report is fine; accepted files must still be self-consistent. */
static void test_byte_flips(void) {
  marks m;
  size_t len;
  uint8_t *buf = build_std(&len, &m);
  int accepted = 0, rejected = 0;
  for (size_t i = 0; i < m.data; i++) {
    for (int v = 0; v < 3; v++) {
      uint8_t *copy = malloc(len);
      memcpy(copy, buf, len);
      copy[i] = v == 0 ? (uint8_t)~copy[i] : v == 1 ? 0xFF : (uint8_t)(copy[i] + 1);
      mq_gguf_file f;
      mq_err err = {0};
      if (mq_gguf_parse(copy, len, "flip", &f, &err) == MQ_OK) {
        accepted++;
        for (int t = 0; t < f.n_tensors; t++) {
          const mq_gguf_tensor *x = &f.tensors[t];
          CHECK(x->data >= copy + f.data_offset && x->data + x->nbytes <= copy + len);
        }
        for (int k = 0; k < f.n_kv; k++) {
          const mq_gguf_kv *kv = &f.kvs[k];
          for (uint64_t e = 0; kv->elem_type == MQ_GGUF_VTYPE_STRING && e < kv->count; e++) {
            uint64_t sl;
            const char *s = mq_gguf_arr_str(kv, e, &sl);
            CHECK(s && (const uint8_t *)s + sl <= copy + len);
          }
        }
        mq_gguf_close(&f);
      } else {
        rejected++;
        CHECK(err.msg[0] != 0);
      }
      free(copy);
    }
  }
  CHECK(rejected > 0 && accepted > 0);
  free(buf);
}

/* ---- real files ---- */

static void check_type(const mq_gguf_file *f, const char *name, uint32_t want) {
  const mq_gguf_tensor *t = mq_gguf_find_tensor(f, name);
  CHECK_MSG(t && t->type == want, "%s: %s has type %s, expected %s", f->path, name,
            t ? mq_ggml_type_name(t->type) : "(missing)", mq_ggml_type_name(want));
}

static void check_stories(const char *rel, uint32_t wtype, int file_type) {
  char path[1024];
  if (!mqt_shared(rel, path, sizeof path)) {
    printf("SKIP: %s not found\n", rel);
    return;
  }
  mq_gguf_file f;
  mq_err err = {0};
  int rc = mq_gguf_open(path, &f, &err);
  CHECK_MSG(rc == MQ_OK, "%s: %s", rel, err.msg);
  if (rc != MQ_OK) return;
  const char *s;
  uint64_t sl;
  uint32_t u;
  float x;
  CHECK(f.version == 3 && f.alignment == 32);
  CHECK(mq_gguf_get_str(&f, "general.architecture", &s, &sl, &err) == MQ_OK && sl == 5 &&
        memcmp(s, "llama", 5) == 0);
  CHECK(mq_gguf_get_u32(&f, "llama.context_length", &u, &err) == MQ_OK && u == 128);
  CHECK(mq_gguf_get_u32(&f, "llama.embedding_length", &u, &err) == MQ_OK && u == 64);
  CHECK(mq_gguf_get_u32(&f, "llama.block_count", &u, &err) == MQ_OK && u == 5);
  CHECK(mq_gguf_get_u32(&f, "llama.feed_forward_length", &u, &err) == MQ_OK && u == 172);
  CHECK(mq_gguf_get_u32(&f, "llama.attention.head_count", &u, &err) == MQ_OK && u == 8);
  CHECK(mq_gguf_get_u32(&f, "llama.attention.head_count_kv", &u, &err) == MQ_OK && u == 4);
  CHECK(mq_gguf_get_u32(&f, "llama.rope.dimension_count", &u, &err) == MQ_OK && u == 8);
  CHECK(mq_gguf_get_f32(&f, "llama.attention.layer_norm_rms_epsilon", &x, &err) == MQ_OK &&
        x == 1e-5f);
  CHECK(mq_gguf_find_kv(&f, "llama.rope.freq_base") == NULL);
  if (file_type < 0)
    CHECK(mq_gguf_find_kv(&f, "general.file_type") == NULL);
  else
    CHECK(mq_gguf_get_u32(&f, "general.file_type", &u, &err) == MQ_OK && u == (uint32_t)file_type);
  CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.model", &s, &sl, &err) == MQ_OK && sl == 5 &&
        memcmp(s, "llama", 5) == 0);
  const mq_gguf_kv *tok, *sc, *tt;
  CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.tokens", MQ_GGUF_VTYPE_STRING, &tok, &err) == MQ_OK &&
        tok->count == 512);
  CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.scores", MQ_GGUF_VTYPE_F32, &sc, &err) == MQ_OK &&
        sc->count == 512);
  CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_COUNT, &tt, &err) == MQ_OK &&
        tt->count == 512);
  if (f.n_kv > 0 && tok && tt) {
    s = mq_gguf_arr_str(tok, 3, &sl);
    CHECK(s && sl == 6 && memcmp(s, "<0x00>", 6) == 0);
    int64_t v;
    CHECK(mq_gguf_arr_int(tt, 3, &v) == 0 && v == 6);   /* byte */
    CHECK(mq_gguf_arr_int(tt, 1, &v) == 0 && v == 3);   /* control */
    CHECK(mq_gguf_arr_int(tt, 0, &v) == 0 && v == 2);   /* unknown */
    CHECK(mq_gguf_arr_int(tt, 300, &v) == 0 && v == 1); /* normal */
  }
  CHECK(mq_gguf_get_u32(&f, "tokenizer.ggml.bos_token_id", &u, &err) == MQ_OK && u == 1);
  CHECK(mq_gguf_get_u32(&f, "tokenizer.ggml.eos_token_id", &u, &err) == MQ_OK && u == 2);
  CHECK(mq_gguf_get_u32(&f, "tokenizer.ggml.unknown_token_id", &u, &err) == MQ_OK && u == 0);

  CHECK(f.n_tensors == 48);
  uint32_t q = wtype, out = wtype == MQ_GGML_TYPE_F32 ? wtype : MQ_GGML_TYPE_Q8_0;
  uint32_t down = wtype == MQ_GGML_TYPE_F32 ? wtype : MQ_GGML_TYPE_F16;
  check_type(&f, "token_embd.weight", q);
  check_type(&f, "output.weight", out);
  check_type(&f, "output_norm.weight", MQ_GGML_TYPE_F32);
  for (int l = 0; l < 5; l++) {
    static const char *const wq[] = {"attn_q",      "attn_k",   "attn_v",
                                     "attn_output", "ffn_gate", "ffn_up"};
    char name[64];
    for (int i = 0; i < 6; i++) {
      snprintf(name, sizeof name, "blk.%d.%s.weight", l, wq[i]);
      check_type(&f, name, q);
    }
    snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
    check_type(&f, name, down);
    const mq_gguf_tensor *t = mq_gguf_find_tensor(&f, name);
    CHECK(t && t->n_dims == 2 && t->ne[0] == 172 && t->ne[1] == 64);
    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
    check_type(&f, name, MQ_GGML_TYPE_F32);
    snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
    check_type(&f, name, MQ_GGML_TYPE_F32);
    snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
    t = mq_gguf_find_tensor(&f, name);
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 32);
  }
  const mq_gguf_tensor *te = mq_gguf_find_tensor(&f, "token_embd.weight");
  CHECK(te && te->n_dims == 2 && te->ne[0] == 64 && te->ne[1] == 512 && te->n_elems == 32768);
  CHECK(te && te->nbytes == (uint64_t)mq_ggml_row_size(q, 64) * 512);
  uint64_t end = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_gguf_tensor *t = &f.tensors[i];
    CHECK(t->offset == end); /* llama.cpp writes them back to back, padded */
    end = t->offset + (t->nbytes + 31) / 32 * 32;
  }
  CHECK(f.data_offset + f.tensors[f.n_tensors - 1].offset + f.tensors[f.n_tensors - 1].nbytes <=
        f.size);
  mq_gguf_close(&f);
}

static void test_vocab_files(void) {
  char dir[1024];
  if (!mqt_shared("fixtures/tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf", dir,
                  sizeof dir)) {
    printf("SKIP: llama.cpp vocab GGUFs not found\n");
    return;
  }
  *strrchr(dir, '/') = 0;
  DIR *d = opendir(dir);
  CHECK(d != NULL);
  if (!d) return;
  int n_files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t nl = strlen(e->d_name);
    if (nl < 5 || strcmp(e->d_name + nl - 5, ".gguf") != 0) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    mq_gguf_file f;
    mq_err err = {0};
    int rc = mq_gguf_open(path, &f, &err);
    CHECK_MSG(rc == MQ_OK, "%s: %s", e->d_name, err.msg);
    if (rc != MQ_OK) continue;
    n_files++;
    CHECK(f.n_tensors == 0 && f.version == 3);
    const mq_gguf_kv *tok, *arr;
    CHECK_MSG(mq_gguf_get_arr(&f, "tokenizer.ggml.tokens", MQ_GGUF_VTYPE_STRING, &tok, &err) ==
                  MQ_OK,
              "%s", err.msg);
    uint64_t total = 0;
    for (uint64_t i = 0; i < tok->count; i++) {
      uint64_t sl;
      CHECK(mq_gguf_arr_str(tok, i, &sl) != NULL);
      total += sl;
    }
    CHECK(total > 0);
    if (mq_gguf_find_kv(&f, "tokenizer.ggml.scores")) {
      CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.scores", MQ_GGUF_VTYPE_F32, &arr, &err) == MQ_OK &&
            arr->count == tok->count);
    }
    if (mq_gguf_find_kv(&f, "tokenizer.ggml.token_type")) {
      CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_I32, &arr, &err) ==
                MQ_OK &&
            arr->count == tok->count);
    }
    const char *s;
    uint64_t sl;
    if (strcmp(e->d_name, "ggml-vocab-llama-spm.gguf") == 0) {
      CHECK(f.n_kv == 22 && tok->count == 32000);
      CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.model", &s, &sl, &err) == MQ_OK && sl == 5 &&
            memcmp(s, "llama", 5) == 0);
      s = mq_gguf_arr_str(tok, 1, &sl);
      CHECK(s && sl == 3 && memcmp(s, "<s>", 3) == 0);
      s = mq_gguf_arr_str(tok, 2, &sl);
      CHECK(s && sl == 4 && memcmp(s, "</s>", 4) == 0);
      uint32_t u;
      int b;
      CHECK(mq_gguf_get_u32(&f, "tokenizer.ggml.bos_token_id", &u, &err) == MQ_OK && u == 1);
      CHECK(mq_gguf_get_u32(&f, "tokenizer.ggml.eos_token_id", &u, &err) == MQ_OK && u == 2);
      CHECK(mq_gguf_get_bool(&f, "tokenizer.ggml.add_bos_token", &b, &err) == MQ_OK && b == 1);
      CHECK(f.data_offset == f.size); /* the file ends right after the last pair */
    }
    if (strcmp(e->d_name, "ggml-vocab-gpt-2.gguf") == 0) {
      CHECK(tok->count == 50257);
      CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.model", &s, &sl, &err) == MQ_OK && sl == 4 &&
            memcmp(s, "gpt2", 4) == 0);
      CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.pre", &s, &sl, &err) == MQ_OK && sl == 5 &&
            memcmp(s, "gpt-2", 5) == 0);
      CHECK(mq_gguf_get_arr(&f, "tokenizer.ggml.merges", MQ_GGUF_VTYPE_STRING, &arr, &err) ==
                MQ_OK &&
            arr->count == 50000);
    }
    mq_gguf_close(&f);
  }
  closedir(d);
  CHECK(n_files >= 12);
}

static void test_open_errors(void) {
  mq_gguf_file f;
  mq_err err = {0};
  CHECK(mq_gguf_open("/nonexistent/x.gguf", &f, &err) == MQ_ERR_IO && strstr(err.msg, "x.gguf"));
  CHECK(mq_gguf_parse(NULL, 0, "empty.gguf", &f, &err) == MQ_ERR_FORMAT &&
        strstr(err.msg, "truncated"));
}

static void test_type_table(void) {
  static const struct {
    uint32_t id;
    const char *name;
    int blck, size, sup;
  } want[] = {
      {0, "f32", 1, 4, 1},       {1, "f16", 1, 2, 1},         {2, "q4_0", 32, 18, 1},
      {3, "q4_1", 32, 20, 1},    {6, "q5_0", 32, 22, 1},      {7, "q5_1", 32, 24, 1},
      {8, "q8_0", 32, 34, 1},    {9, "q8_1", 32, 36, 0},      {10, "q2_K", 256, 84, 1},
      {11, "q3_K", 256, 110, 1}, {12, "q4_K", 256, 144, 1},   {13, "q5_K", 256, 176, 1},
      {14, "q6_K", 256, 210, 1}, {15, "q8_K", 256, 292, 0},   {16, "iq2_xxs", 256, 66, 0},
      {20, "iq4_nl", 32, 18, 1}, {23, "iq4_xs", 256, 136, 1}, {28, "f64", 1, 8, 0},
      {30, "bf16", 1, 2, 1},     {39, "mxfp4", 32, 17, 0},    {42, "q2_0", 64, 18, 0},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const mq_ggml_type_info *t = mq_ggml_type_get(want[i].id);
    CHECK_MSG(t && strcmp(t->name, want[i].name) == 0 && t->blck == want[i].blck &&
                  t->type_size == want[i].size,
              "type %u", want[i].id);
    CHECK(mq_ggml_type_supported(want[i].id) == want[i].sup);
  }
  int removed[] = {4, 5, 31, 32, 33, 36, 37, 38};
  for (int i = 0; i < 8; i++) {
    CHECK(mq_ggml_type_get((uint32_t)removed[i]) == NULL);
    CHECK(strcmp(mq_ggml_type_name((uint32_t)removed[i]), "removed") == 0);
  }
  CHECK(mq_ggml_type_get(43) == NULL && strcmp(mq_ggml_type_name(1000), "unknown") == 0);
  CHECK(mq_ggml_type_get(MQ_GGML_TYPE_Q8_K)->flags == MQ_GGML_ACTIVATION);
  CHECK(mq_ggml_type_get(MQ_GGML_TYPE_Q8_0)->flags == (MQ_GGML_WEIGHT | MQ_GGML_ACTIVATION));
  CHECK(mq_ggml_row_size(MQ_GGML_TYPE_Q4_K, 512) == 288);
  CHECK(mq_ggml_row_size(MQ_GGML_TYPE_Q4_K, 100) == -1);
  CHECK(mq_ggml_row_size(31, 32) == -1);
  int n_sup = 0;
  for (uint32_t id = 0; id < MQ_GGML_TYPE_COUNT; id++) n_sup += mq_ggml_type_supported(id);
  CHECK(n_sup == 15);
}

int main(void) {
  test_type_table();
  test_valid();
  test_corrupt();
  printf("corrupted cases: %d\n", n_corrupt);
  test_truncation_sweep();
  test_byte_flips();
  test_open_errors();
  check_stories("fixtures/stories260K/gguf/stories260K-f32.gguf", MQ_GGML_TYPE_F32, -1);
  check_stories("fixtures/stories260K/gguf/stories260K-Q8_0.gguf", MQ_GGML_TYPE_Q8_0, 7);
  check_stories("fixtures/stories260K/gguf/stories260K-Q4_0.gguf", MQ_GGML_TYPE_Q4_0, 2);
  test_vocab_files();
  return mqt_report("test_gguf");
}
