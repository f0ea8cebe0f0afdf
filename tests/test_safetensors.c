/* safetensors reader: hand-built valid files, a writer roundtrip, corrupted
 * headers (each must fail naming the rule and the tensor), and truncation /
 * byte-flip sweeps (run under the sanitizer build for memory safety). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/st_write.h"
#include "test.h"

/* File bytes: u64 LE header length, hdr, pad spaces, data. Caller frees. */
static uint8_t *mk_file(const char *hdr, size_t pad, const uint8_t *data, size_t dlen,
                        size_t *len) {
  size_t hl = strlen(hdr), n = hl + pad;
  *len = 8 + n + dlen;
  uint8_t *b = malloc(*len);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
  memcpy(b + 8, hdr, hl);
  memset(b + 8 + hl, ' ', pad);
  if (dlen) memcpy(b + 8 + n, data, dlen);
  return b;
}

static void set_hlen(uint8_t *b, uint64_t n) {
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
}

/* Random bytes, none zero, so a wrong pointer cannot match by accident. */
static void fill_rand(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t v;
    do v = (uint8_t)(mqt_rand() >> 56);
    while (v == 0);
    p[i] = v;
  }
}

static void app(char *buf, size_t cap, const char *fmt, ...) {
  size_t l = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + l, cap - l, fmt, ap);
  va_end(ap);
}

/* ---- valid files ---- */

typedef struct {
  const char *name, *dt;
  mq_dtype want;
  int esz, nd;
  int64_t shape[MQ_MAX_DIMS];
} spec;

static const spec k_specs[] = {
    {"w.f32", "F32", MQ_DTYPE_F32, 4, 2, {3, 5}},
    {"w.f16", "F16", MQ_DTYPE_F16, 2, 1, {7}},
    {"w.bf16", "BF16", MQ_DTYPE_BF16, 2, 3, {2, 1, 3}},
    {"q.i8", "I8", MQ_DTYPE_I8, 1, 2, {4, 3}},
    {"q.u8", "U8", MQ_DTYPE_U8, 1, 1, {9}},
    {"q.i32", "I32", MQ_DTYPE_I32, 4, 2, {2, 2}},
    {"q.i64", "I64", MQ_DTYPE_I64, 8, 1, {3}},
    {"fp8.e4m3", "F8_E4M3", MQ_DTYPE_F8_E4M3, 1, 2, {2, 16}},
    {"scalar", "F32", MQ_DTYPE_F32, 4, 0, {0}},
    {"fp8.e5m2", "F8_E5M2", MQ_DTYPE_F8_E5M2, 1, 1, {5}},
    {"fp8.e8m0", "F8_E8M0", MQ_DTYPE_F8_E8M0, 1, 1, {4}},
    {"empty", "F16", MQ_DTYPE_F16, 2, 3, {3, 0, 2}},
    {"mask", "BOOL", MQ_DTYPE_BOOL, 1, 1, {6}},
    {"u16", "U16", MQ_DTYPE_U16, 2, 1, {3}},
    {"i16", "I16", MQ_DTYPE_I16, 2, 2, {1, 3}},
    {"u32", "U32", MQ_DTYPE_U32, 4, 1, {2}},
    {"u64", "U64", MQ_DTYPE_U64, 8, 1, {2}},
    {"f64", "F64", MQ_DTYPE_F64, 8, 4, {1, 1, 2, 1}},
    {"rank8", "U8", MQ_DTYPE_U8, 1, 8, {1, 2, 1, 2, 1, 1, 2, 1}},
};
#define N_SPECS ((int)(sizeof k_specs / sizeof k_specs[0]))

static uint64_t spec_bytes(const spec *s) {
  uint64_t n = (uint64_t)s->esz;
  for (int d = 0; d < s->nd; d++) n *= (uint64_t)s->shape[d];
  return n;
}

/* Data in k_specs order; JSON entries in a shuffled order (i * 7 mod n), with
 * __metadata__ in the middle and 13 spaces of padding. */
static void test_valid_many_dtypes(void) {
  uint64_t off[N_SPECS + 1];
  off[0] = 0;
  for (int i = 0; i < N_SPECS; i++) off[i + 1] = off[i] + spec_bytes(&k_specs[i]);
  size_t dlen = (size_t)off[N_SPECS];
  uint8_t *data = malloc(dlen);
  fill_rand(data, dlen);

  char hdr[8192] = "{";
  for (int k = 0; k < N_SPECS; k++) {
    const spec *s = &k_specs[(k * 7) % N_SPECS];
    int i = (int)(s - k_specs);
    if (k == N_SPECS / 2) app(hdr, sizeof hdr, ",\"__metadata__\":{\"format\":\"pt\",\"note\":\"a b\"}");
    app(hdr, sizeof hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", k ? "," : "", s->name, s->dt);
    for (int d = 0; d < s->nd; d++) app(hdr, sizeof hdr, "%s%lld", d ? "," : "", (long long)s->shape[d]);
    app(hdr, sizeof hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off[i],
        (unsigned long long)off[i + 1]);
  }
  app(hdr, sizeof hdr, "}");
  size_t len, hl = strlen(hdr) + 13;
  uint8_t *buf = mk_file(hdr, 13, data, dlen, &len);
  const uint8_t *base = buf + 8 + hl;

  mq_st_file f;
  mq_err err = {0};
  int rc = mq_st_parse(buf, len, "mem.safetensors", &f, &err);
  CHECK_MSG(rc == MQ_OK, "valid file rejected: %s", err.msg);
  if (rc == MQ_OK) {
    CHECK(f.n_tensors == N_SPECS);
    CHECK(f.n_meta == 2);
    CHECK(mq_st_meta(&f, "format") && strcmp(mq_st_meta(&f, "format"), "pt") == 0);
    CHECK(mq_st_meta(&f, "note") && strcmp(mq_st_meta(&f, "note"), "a b") == 0);
    CHECK(mq_st_meta(&f, "missing") == NULL);
    CHECK(mq_st_find(&f, "nope") == NULL);
    CHECK(mq_st_find(&f, "__metadata__") == NULL);
    for (int i = 1; i < f.n_tensors; i++) CHECK(f.tensors[i - 1].data <= f.tensors[i].data);
    for (int i = 0; i < N_SPECS; i++) {
      const spec *s = &k_specs[i];
      const mq_tensor *t = mq_st_find(&f, s->name);
      CHECK_MSG(t != NULL, "tensor %s not found", s->name);
      if (!t) continue;
      uint64_t ne = 1;
      for (int d = 0; d < s->nd; d++) ne *= (uint64_t)s->shape[d];
      CHECK_MSG(t->dtype == s->want, "%s: dtype %d", s->name, (int)t->dtype);
      CHECK_MSG(t->n_dims == s->nd, "%s: n_dims %d", s->name, t->n_dims);
      for (int d = 0; d < s->nd && d < t->n_dims; d++) CHECK(t->shape[d] == s->shape[d]);
      CHECK_MSG(t->n_elems == ne, "%s: n_elems %llu", s->name, (unsigned long long)t->n_elems);
      CHECK_MSG(t->nbytes == spec_bytes(s), "%s: nbytes", s->name);
      CHECK_MSG(t->data == base + off[i], "%s: data pointer off by %lld", s->name,
                (long long)(t->data - (base + off[i])));
      CHECK(t->nbytes == 0 || memcmp(t->data, data + off[i], (size_t)t->nbytes) == 0);
      CHECK(t->file && strcmp(t->file, "mem.safetensors") == 0);
    }
    const mq_tensor *sc = mq_st_find(&f, "scalar");
    CHECK(sc && sc->n_dims == 0 && sc->n_elems == 1 && sc->nbytes == 4);
    const mq_tensor *em = mq_st_find(&f, "empty");
    CHECK(em && em->n_elems == 0 && em->nbytes == 0);
    char sh[64];
    CHECK(strcmp(mq_shape_str(mq_st_find(&f, "w.bf16"), sh, sizeof sh), "[2, 1, 3]") == 0);
    CHECK(strcmp(mq_shape_str(sc, sh, sizeof sh), "[]") == 0);
    CHECK(strncmp(mq_shape_str(mq_st_find(&f, "w.bf16"), sh, 4), "[2,", 3) == 0);
    mq_st_close(&f);
  }
  free(buf);
  free(data);
}

static void test_valid_small(void) {
  mq_st_file f;
  mq_err err = {0};
  size_t len;
  /* empty header, no data */
  uint8_t *b = mk_file("{}", 6, NULL, 0, &len);
  CHECK(mq_st_parse(b, len, NULL, &f, &err) == MQ_OK);
  CHECK(f.n_tensors == 0 && f.n_meta == 0 && strcmp(f.path, "<buffer>") == 0);
  mq_st_close(&f);
  free(b);
  /* only metadata; empty map */
  b = mk_file("{\"__metadata__\":{}}", 0, NULL, 0, &len);
  CHECK(mq_st_parse(b, len, "m", &f, &err) == MQ_OK);
  CHECK(f.n_tensors == 0 && mq_st_meta(&f, "format") == NULL);
  mq_st_close(&f);
  free(b);
  /* two zero-size tensors at the data end, after a real one */
  uint8_t d[8];
  fill_rand(d, sizeof d);
  b = mk_file("{\"z2\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[8,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"z1\":{\"dtype\":\"F16\",\"shape\":[4,0],\"data_offsets\":[8,8]}}",
              3, d, sizeof d, &len);
  int rc = mq_st_parse(b, len, "z", &f, &err);
  CHECK_MSG(rc == MQ_OK, "zero-size tensors at the end: %s", err.msg);
  if (rc == MQ_OK) {
    CHECK(f.n_tensors == 3);
    const mq_tensor *a = mq_st_find(&f, "a"), *z = mq_st_find(&f, "z2");
    CHECK(a && memcmp(a->data, d, 8) == 0);
    CHECK(z && z->nbytes == 0 && z->data == b + len);
    mq_st_close(&f);
  }
  free(b);
}

/* ---- writer roundtrip ---- */

static void test_roundtrip(void) {
  char dir[] = "/tmp/mq_st_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK_MSG(0, "mkdtemp failed");
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "%s/rt.safetensors", dir);
  struct {
    const char *name;
    mq_dtype dt;
    int nd;
    int64_t shape[3];
  } ts[] = {
      {"zeta.weight", MQ_DTYPE_F32, 2, {4, 8}},  {"alpha.bias", MQ_DTYPE_BF16, 1, {16}},
      {"mid.qweight", MQ_DTYPE_I32, 2, {2, 3}},  {"e8m0.scale", MQ_DTYPE_F8_E8M0, 1, {5}},
      {"one", MQ_DTYPE_F64, 0, {0}},             {"nothing", MQ_DTYPE_F16, 2, {0, 4}},
      {"fp8", MQ_DTYPE_F8_E4M3, 3, {3, 1, 7}},
  };
  enum { NT = sizeof ts / sizeof ts[0] };
  uint8_t *bytes[NT];
  size_t nb[NT];
  mq_err err = {0};
  mq_st_writer *w = mq_st_writer_new();
  CHECK(w != NULL);
  for (int i = 0; i < NT; i++) {
    nb[i] = (size_t)mq_dtype_size(ts[i].dt);
    for (int d = 0; d < ts[i].nd; d++) nb[i] *= (size_t)ts[i].shape[d];
    bytes[i] = malloc(nb[i] ? nb[i] : 1);
    fill_rand(bytes[i], nb[i]);
    CHECK(mq_st_writer_add(w, ts[i].name, ts[i].dt, ts[i].nd, ts[i].shape, bytes[i], &err) ==
          MQ_OK);
  }
  CHECK(mq_st_writer_meta(w, "format", "pt", &err) == MQ_OK);
  CHECK(mq_st_writer_meta(w, "producer", "mixq test", &err) == MQ_OK);
  CHECK_MSG(mq_st_writer_save(w, path, &err) == MQ_OK, "save: %s", err.msg);
  mq_st_writer_free(w);

  mq_st_file f;
  int rc = mq_st_open(path, &f, &err);
  CHECK_MSG(rc == MQ_OK, "reopen: %s", err.msg);
  if (rc == MQ_OK) {
    CHECK(f.n_tensors == NT);
    CHECK(mq_st_meta(&f, "format") && strcmp(mq_st_meta(&f, "format"), "pt") == 0);
    CHECK(mq_st_meta(&f, "producer") && strcmp(mq_st_meta(&f, "producer"), "mixq test") == 0);
    for (int i = 0; i < NT; i++) {
      const mq_tensor *t = mq_st_find(&f, ts[i].name);
      CHECK_MSG(t != NULL, "%s missing after roundtrip", ts[i].name);
      if (!t) continue;
      CHECK(t->dtype == ts[i].dt && t->n_dims == ts[i].nd && t->nbytes == nb[i]);
      for (int d = 0; d < ts[i].nd; d++) CHECK(t->shape[d] == ts[i].shape[d]);
      CHECK_MSG(nb[i] == 0 || memcmp(t->data, bytes[i], nb[i]) == 0, "%s: bytes differ",
                ts[i].name);
      CHECK(strcmp(t->file, path) == 0);
    }
    /* writer contract: header length a multiple of 8, data in name order */
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | f.map.data[i];
    CHECK_MSG(hn % 8 == 0, "header length %llu", (unsigned long long)hn);
    for (int i = 1; i < f.n_tensors; i++)
      CHECK(strcmp(f.tensors[i - 1].name, f.tensors[i].name) < 0);
    mq_st_close(&f);
  }
  for (int i = 0; i < NT; i++) free(bytes[i]);

  /* mq_st_open failures: missing file, a directory, an empty file */
  char p2[256];
  snprintf(p2, sizeof p2, "%s/absent.safetensors", dir);
  CHECK(mq_st_open(p2, &f, &err) == MQ_ERR_IO && strstr(err.msg, "absent.safetensors"));
  CHECK(mq_st_open(dir, &f, &err) == MQ_ERR_IO && strstr(err.msg, dir));
  snprintf(p2, sizeof p2, "%s/empty.safetensors", dir);
  FILE *fp = fopen(p2, "wb");
  if (fp) fclose(fp);
  CHECK(mq_st_open(p2, &f, &err) == MQ_ERR_FORMAT && strstr(err.msg, "empty.safetensors") &&
        strstr(err.msg, "too small"));
  unlink(p2);
  unlink(path);
  rmdir(dir);
}

/* ---- corrupted headers ---- */

/* Header fragments for one 4-byte F32 tensor "w". */
#define WT(offs) "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" offs "}"

typedef struct {
  const char *what, *hdr;
  size_t dlen;
  int code;
  const char *m1, *m2; /* substrings the message must hold (m2 may be NULL) */
} bad_case;

static const bad_case k_bad[] = {
    {"invalid JSON", "{" WT("[0,4]"), 4, MQ_ERR_FORMAT, "JSON", NULL},
    {"trailing garbage", "{" WT("[0,4]") "}x", 4, MQ_ERR_FORMAT, "JSON", NULL},
    {"JSON array", "[{" WT("[0,4]") "}]", 4, MQ_ERR_FORMAT, "'{'", NULL},
    {"leading space", " {" WT("[0,4]") "}", 4, MQ_ERR_FORMAT, "'{'", NULL},
    {"bad UTF-8 byte", "{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "JSON", NULL},
    {"overlong UTF-8", "{\"w\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, MQ_ERR_FORMAT, "JSON", NULL},
    {"UTF-8 surrogate", "{\"w\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, MQ_ERR_FORMAT, "JSON", NULL},
    {"bad UTF-8 in padding", "{" WT("[0,4]") "}\xfe", 4, MQ_ERR_FORMAT, "JSON", NULL},
    {"NUL in a name", "{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "JSON", NULL},
    {"duplicate name", "{" WT("[0,4]") "," WT("[4,8]") "}", 8, MQ_ERR_FORMAT, "duplicate",
     "\"w\""},
    {"entry not an object", "{\"w\":[1,2]}", 0, MQ_ERR_FORMAT, "'w'", "not a JSON object"},
    {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MQ_ERR_FORMAT, "'w'",
     "\"dtype\""},
    {"dtype not a string", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "\"dtype\""},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, MQ_ERR_FORMAT, "'w'",
     "\"shape\""},
    {"shape not an array", "{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "\"shape\""},
    {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, MQ_ERR_FORMAT, "'w'",
     "data_offsets"},
    {"unknown dtype", "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_UNSUPPORTED, "'w'", "unknown dtype \"Q4_K\""},
    {"lowercase dtype", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_UNSUPPORTED, "'w'", "unknown dtype"},
    {"negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "shape[1]"},
    {"real dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "shape[0]"},
    {"string dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "shape[0]"},
    {"dim beyond int64", "{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
     "\"data_offsets\":[0,1]}}", 1, MQ_ERR_FORMAT, "JSON", NULL},
    {"element count overflow", "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],"
     "\"data_offsets\":[0,0]}}", 0, MQ_ERR_FORMAT, "'w'", "overflows 64 bits"},
    {"overflow to zero", "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
     "\"data_offsets\":[0,0]}}", 0, MQ_ERR_FORMAT, "'w'", "overflows 64 bits"},
    {"byte size overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
     "\"data_offsets\":[0,0]}}", 0, MQ_ERR_FORMAT, "'w'", "overflows 64 bits"},
    {"9 dims", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
     MQ_ERR_UNSUPPORTED, "'w'", "9 dimensions"},
    {"1 offset", "{" WT("[0]") "}", 4, MQ_ERR_FORMAT, "'w'", "data_offsets"},
    {"3 offsets", "{" WT("[0,4,8]") "}", 4, MQ_ERR_FORMAT, "'w'", "data_offsets"},
    {"negative offset", "{" WT("[-4,0]") "}", 4, MQ_ERR_FORMAT, "'w'", "data_offsets"},
    {"string offset", "{" WT("[\"0\",4]") "}", 4, MQ_ERR_FORMAT, "'w'", "data_offsets"},
    {"offsets not an array", "{" WT("4") "}", 4, MQ_ERR_FORMAT, "'w'", "data_offsets"},
    {"end before begin", "{" WT("[4,0]") "}", 4, MQ_ERR_FORMAT, "'w'", "end before begin"},
    {"gap at start", "{" WT("[4,8]") "}", 8, MQ_ERR_FORMAT, "'w'", "expected 0"},
    {"gap in middle", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, MQ_ERR_FORMAT, "'b'",
     "expected 4"},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, MQ_ERR_FORMAT, "'b'",
     "overlap"},
    {"same offsets twice", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, MQ_ERR_FORMAT, "'b'",
     "overlap"},
    {"bytes != dtype x shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
     12, MQ_ERR_FORMAT, "'w'", "needs 16"},
    {"zero-size with bytes", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,4]}}", 4,
     MQ_ERR_FORMAT, "'w'", "needs 0"},
    {"trailing data bytes", "{" WT("[0,4]") "}", 8, MQ_ERR_FORMAT, "cover 4 bytes", "holds 8"},
    {"data but no tensors", "{}", 4, MQ_ERR_FORMAT, "cover 0 bytes", "holds 4"},
    {"offsets beyond file", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
     MQ_ERR_FORMAT, "'w'", "beyond the data region"},
    {"huge offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
     "\"data_offsets\":[9223372036854775806,9223372036854775807]}}", 1, MQ_ERR_FORMAT, "'w'",
     "expected 0"},
    {"__metadata__ array", "{\"__metadata__\":[\"a\"]," WT("[0,4]") "}", 4, MQ_ERR_FORMAT,
     "__metadata__", "not an object"},
    {"__metadata__ string", "{" WT("[0,4]") ",\"__metadata__\":\"pt\"}", 4, MQ_ERR_FORMAT,
     "__metadata__", "not an object"},
    {"__metadata__ number value", "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}," WT("[0,4]") "}",
     4, MQ_ERR_FORMAT, "'n'", "not a string"},
    {"__metadata__ object value", "{\"__metadata__\":{\"o\":{}}," WT("[0,4]") "}", 4,
     MQ_ERR_FORMAT, "'o'", "not a string"},
};

static void check_fail(const char *what, const uint8_t *buf, size_t len, int code, const char *m1,
                       const char *m2) {
  /* exact-size copy so the sanitizer sees any read past the end */
  uint8_t *b = malloc(len ? len : 1);
  if (len) memcpy(b, buf, len);
  mq_st_file f;
  mq_err err = {0};
  int rc = mq_st_parse(b, len, "bad.safetensors", &f, &err);
  CHECK_MSG(rc == code, "%s: rc %d, want %d (%s)", what, rc, code, err.msg);
  if (getenv("MQT_VERBOSE")) printf("%-28s %s\n", what, err.msg);
  if (rc == MQ_OK) mq_st_close(&f);
  else {
    CHECK_MSG(err.code == rc, "%s: err.code %d", what, err.code);
    CHECK_MSG(strstr(err.msg, "bad.safetensors") != NULL, "%s: file not named: %s", what, err.msg);
    CHECK_MSG(m1 == NULL || strstr(err.msg, m1), "%s: '%s' not in: %s", what, m1, err.msg);
    CHECK_MSG(m2 == NULL || strstr(err.msg, m2), "%s: '%s' not in: %s", what, m2, err.msg);
    CHECK_MSG(f.n_tensors == 0 && f.tensors == NULL && f.meta == NULL, "%s: out not reset", what);
  }
  free(b);
}

static void test_corrupt(void) {
  uint8_t data[64];
  fill_rand(data, sizeof data);
  for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
    const bad_case *c = &k_bad[i];
    size_t len;
    uint8_t *b = mk_file(c->hdr, 2, data, c->dlen, &len);
    check_fail(c->what, b, len, c->code, c->m1, c->m2);
    free(b);
  }

  /* length-field cases */
  size_t len;
  uint8_t *b = mk_file("{" WT("[0,4]") "}", 0, data, 4, &len);
  for (size_t n = 0; n < 8; n++) check_fail("shorter than 8", b, n, MQ_ERR_FORMAT, "too small", NULL);
  uint64_t hn = len - 8 - 4;
  set_hlen(b, hn + 5);
  check_fail("header past end", b, len, MQ_ERR_FORMAT, "past the end", NULL);
  set_hlen(b, 100000001ull);
  check_fail("header > 100 MB", b, len, MQ_ERR_FORMAT, "100 MB", NULL);
  set_hlen(b, 100000000ull);
  check_fail("header = 100 MB, short file", b, len, MQ_ERR_FORMAT, "past the end", NULL);
  set_hlen(b, UINT64_MAX);
  check_fail("header length 2^64-1", b, len, MQ_ERR_FORMAT, "100 MB", NULL);
  set_hlen(b, UINT64_MAX - 6);
  check_fail("header length 2^64-7", b, len, MQ_ERR_FORMAT, "100 MB", NULL);
  set_hlen(b, 0);
  check_fail("header length 0", b, len, MQ_ERR_FORMAT, "'{'", NULL);
  check_fail("header length 0, 8 bytes", b, 8, MQ_ERR_FORMAT, "'{'", NULL);
  set_hlen(b, hn - 4); /* header cut inside the JSON, rest becomes data */
  check_fail("header cut short", b, len, MQ_ERR_FORMAT, "JSON", NULL);
  free(b);

  /* 200,000 nested arrays as a dim: must fail, not exhaust the stack */
  size_t depth = 200000;
  char *deep = malloc(2 * depth + 64);
  strcpy(deep, "{\"w\":{\"shape\":");
  size_t p = strlen(deep);
  memset(deep + p, '[', depth);
  memset(deep + p + depth, ']', depth);
  strcpy(deep + p + 2 * depth, "}}");
  b = mk_file(deep, 0, NULL, 0, &len);
  check_fail("deep nesting", b, len, MQ_ERR_FORMAT, "JSON", NULL);
  free(b);
  free(deep);
}

/* ---- sweeps ---- */

static uint8_t *three_tensor_file(size_t *len, size_t *hlen) {
  uint8_t d[4 * 6 + 2 * 5 + 3];
  fill_rand(d, sizeof d);
  const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"c\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[34,37]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[24,34]}}";
  *hlen = strlen(hdr) + 5;
  return mk_file(hdr, 5, d, sizeof d, len);
}

static void test_truncation(void) {
  size_t len, hl;
  uint8_t *full = three_tensor_file(&len, &hl);
  mq_st_file f;
  mq_err err = {0};
  int rc = mq_st_parse(full, len, "t", &f, &err);
  CHECK_MSG(rc == MQ_OK && f.n_tensors == 3, "sweep base file rejected: %s", err.msg);
  if (rc == MQ_OK) mq_st_close(&f);
  int accepted = 0, silent = 0;
  for (size_t n = 0; n < len; n++) {
    uint8_t *b = malloc(n ? n : 1);
    memcpy(b, full, n);
    err.msg[0] = 0;
    rc = mq_st_parse(b, n, "t", &f, &err);
    if (rc == MQ_OK) {
      accepted++;
      mq_st_close(&f);
    } else if (!err.msg[0]) {
      silent++;
    }
    free(b);
  }
  CHECK_MSG(accepted == 0, "%d truncated prefixes were accepted", accepted);
  CHECK_MSG(silent == 0, "%d failures without a message", silent);
  free(full);
}

/* Flip each header byte (xor 0xFF, then each single bit): the parse either
 * fails with a message or yields tensors inside the buffer. */
static void test_byte_flips(void) {
  size_t len, hl;
  uint8_t *full = three_tensor_file(&len, &hl);
  static const uint8_t masks[] = {0xFF, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80};
  int ok = 0, failed = 0, outside = 0, silent = 0;
  for (size_t i = 0; i < 8 + hl; i++) {
    for (size_t m = 0; m < sizeof masks; m++) {
      uint8_t *b = malloc(len);
      memcpy(b, full, len);
      b[i] ^= masks[m];
      mq_st_file f;
      mq_err err = {0};
      int rc = mq_st_parse(b, len, "flip", &f, &err);
      if (rc != MQ_OK) {
        failed++;
        if (!err.msg[0]) silent++;
      } else {
        ok++;
        for (int t = 0; t < f.n_tensors; t++) {
          const mq_tensor *x = &f.tensors[t];
          unsigned sum = 0;
          if (x->data < b + 8 || x->data > b + len || x->nbytes > (uint64_t)(b + len - x->data) ||
              x->nbytes != x->n_elems * (uint64_t)mq_dtype_size(x->dtype)) {
            outside++;
            fprintf(stderr, "flip byte %zu ^ 0x%02x: tensor '%s' outside the buffer\n", i,
                    masks[m], x->name);
            continue;
          }
          for (uint64_t k = 0; k < x->nbytes; k++) sum += x->data[k]; /* ASan touches every byte */
          (void)sum;
        }
        mq_st_close(&f);
      }
      free(b);
    }
  }
  CHECK_MSG(outside == 0, "%d tensors outside the buffer after a byte flip", outside);
  CHECK_MSG(silent == 0, "%d flip failures without a message", silent);
  CHECK(failed > 0);
  printf("byte flips: %d accepted, %d rejected\n", ok, failed);
  free(full);
}

int main(void) {
  test_valid_many_dtypes();
  test_valid_small();
  test_roundtrip();
  test_corrupt();
  test_truncation();
  test_byte_flips();
  return mqt_report("test_safetensors");
}
