/* Corrupted checkpoints: valid checkpoints of every format mixq can write
 * (float llama / qwen2 with biases / MoE, AWQ, GPTQ v1 and v2, AutoRound in
 * GPTQ and AWQ packings, compressed-tensors W4A16 / W8A16 / W8A8 / W4A8,
 * ModelSlim W8A8 + W8A8_DYNAMIC made by hand and W8A8 / W4A8_DYNAMIC /
 * W4A4_DYNAMIC / W8A8_MXFP8 from the writer) are generated into a scratch
 * folder, then broken one way at a time:
 *   - model weights file truncated at every structural boundary;
 *   - bytes flipped in the safetensors header (targeted, and a sweep);
 *   - a tensor's shape, dtype or data_offsets lied about (header rewritten);
 *   - tensors removed (qweight, qzeros, scales, g_idx, weight_packed,
 *     weight_scale, bias, norms, ...);
 *   - config.json missing, empty, garbage, or with bad values;
 *   - quantization_config inconsistent with itself or with the tensors;
 *   - ModelSlim descriptions with unknown types, missing layers, fused
 *     shards of different types; bad values in the activation-quantized
 *     formats (deq_scale high bits, int4 range, E8M0 NaN scales).
 * Each case must make mq_model_load fail with a nonzero status, err.code
 * equal to it, and a message naming the problem (checked with strstr), no
 * crash, no sanitizer report, no leak (the ASan build runs this too).
 * MQT_VERBOSE=1 prints every message. */
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/st_write.h"
#include "mixq.h"
#include "modelslim_tiny.h"
#include "quant/writer.h"
#include "test.h"

static char g_root[512];
static int g_cases, g_seq;

/* ---- files ---------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK_MSG(f != NULL, "cannot create %s", path);
  if (!f) return;
  if (n) CHECK(fwrite(data, 1, n, f) == n);
  fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text) {
  char p[1200];
  snprintf(p, sizeof p, "%.900s/%s", dir, name);
  write_bytes(p, text, strlen(text));
}

/* Copy the plain files of src into the new folder dst. */
static void copy_dir(const char *src, const char *dst) {
  mkdir(dst, 0700);
  DIR *d = opendir(src);
  CHECK_MSG(d != NULL, "cannot open %s", src);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%.900s/%s", src, de->d_name);
    snprintf(b, sizeof b, "%.900s/%s", dst, de->d_name);
    struct stat st;
    if (stat(a, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    size_t n;
    void *buf = mqt_read(a, &n);
    CHECK_MSG(buf != NULL, "cannot read %s", a);
    if (buf) write_bytes(b, buf, n);
    free(buf);
  }
  closedir(d);
}

/* A fresh copy of base to break; removed by the case that uses it. */
static const char *variant(const char *base, char *buf, size_t cap) {
  snprintf(buf, cap, "%.500s/v%04d", g_root, g_seq++);
  copy_dir(base, buf);
  return buf;
}

/* The safetensors weights file of a checkpoint folder. */
static const char *weights_of(const char *dir, char *buf, size_t cap) {
  snprintf(buf, cap, "%.900s/model.safetensors", dir);
  if (access(buf, F_OK) == 0) return buf;
  snprintf(buf, cap, "%.900s/quant_model_weights.safetensors", dir);
  return buf;
}

/* ---- outcomes ------------------------------------------------------------- */

/* mq_model_load(dir) must fail (with code when code != 0) and its message
 * must contain every needle (NULL-terminated list). Removes dir. */
static void expect_fail(const char *label, const char *dir, int code, ...) {
  g_cases++;
  mq_model *m = NULL;
  mq_err err;
  memset(&err, 0, sizeof err);
  int rc = mq_model_load(dir, NULL, &m, &err);
  if (getenv("MQT_VERBOSE")) printf("  [%s] rc %d: %s\n", label, rc, err.msg);
  if (rc == MQ_OK) {
    CHECK_MSG(0, "%s: loaded, but should fail", label);
    mq_model_free(m);
  } else {
    CHECK_MSG(m == NULL, "%s: failed but returned a model", label);
    CHECK_MSG(err.code == rc && err.msg[0], "%s: rc %d, err.code %d, msg '%s'", label, rc, err.code,
              err.msg);
    CHECK_MSG(code == 0 || rc == code, "%s: rc %d (%s), want %d: %s", label, rc, mq_status_str(rc),
              code, err.msg);
    va_list ap;
    va_start(ap, code);
    const char *needle;
    while ((needle = va_arg(ap, const char *)))
      CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: '%s' not in: %s", label, needle, err.msg);
    va_end(ap);
  }
  mqt_rm_tree(dir);
}

/* Loading must not crash; failing is fine (but must say why). For sweeps
 * where some variants stay valid (a flipped byte inside a metadata value).
 * Returns 1 when it loaded. */
static int expect_no_crash(const char *label, const char *dir) {
  mq_model *m = NULL;
  mq_err err;
  memset(&err, 0, sizeof err);
  int rc = mq_model_load(dir, NULL, &m, &err);
  if (rc == MQ_OK) {
    mq_model_free(m);
    return 1;
  }
  CHECK_MSG(m == NULL && err.code == rc && err.msg[0], "%s: rc %d without a message", label, rc);
  return 0;
}

/* ---- safetensors surgery -------------------------------------------------- */

/* Rewrite the JSON header of a safetensors file with edit() and keep the
 * data region byte for byte (the header is padded with spaces to 8). */
static void st_edit_header(const char *path, void (*edit)(json_t *hdr, void *arg), void *arg) {
  size_t n;
  uint8_t *buf = mqt_read(path, &n);
  CHECK(buf && n >= 8);
  if (!buf || n < 8) return;
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--) hn = hn << 8 | buf[i];
  json_error_t je;
  json_t *h = json_loadb((const char *)buf + 8, (size_t)hn, 0, &je);
  CHECK_MSG(h != NULL, "%s: header: %s", path, je.text);
  if (!h) {
    free(buf);
    return;
  }
  edit(h, arg);
  char *text = json_dumps(h, JSON_COMPACT);
  size_t tl = strlen(text), pl = (tl + 7) & ~(size_t)7;
  size_t data_len = n - 8 - (size_t)hn, total = 8 + pl + data_len;
  uint8_t *out = malloc(total);
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)pl >> (8 * i));
  memcpy(out + 8, text, tl);
  memset(out + 8 + tl, ' ', pl - tl);
  memcpy(out + 8 + pl, buf + 8 + hn, data_len);
  write_bytes(path, out, total);
  free(out);
  free(text);
  json_decref(h);
  free(buf);
}

typedef struct {
  const char *tensor, *key;
  json_t *value; /* stolen */
} set_arg;

static void edit_set(json_t *h, void *p) {
  set_arg *a = p;
  json_t *t = json_object_get(h, a->tensor);
  CHECK_MSG(t != NULL, "no tensor %s in the header", a->tensor);
  if (t) json_object_set(t, a->key, a->value);
  json_decref(a->value);
}

/* Set header[tensor][key] = value (a json_t reference is taken over). */
static void st_set(const char *dir, const char *tensor, const char *key, json_t *value) {
  char w[1200];
  set_arg a = {tensor, key, value};
  st_edit_header(weights_of(dir, w, sizeof w), edit_set, &a);
}

/* Shape and offsets of a tensor from the header, for lies that keep sizes. */
static json_t *st_get(const char *dir, const char *tensor, const char *key) {
  char w[1200];
  mq_st_file f;
  mq_err err;
  json_t *r = NULL;
  if (mq_st_open(weights_of(dir, w, sizeof w), &f, &err) != MQ_OK) return NULL;
  const mq_tensor *t = mq_st_find(&f, tensor);
  if (t && !strcmp(key, "shape")) {
    r = json_array();
    for (int i = 0; i < t->n_dims; i++) json_array_append_new(r, json_integer(t->shape[i]));
  } else if (t && !strcmp(key, "data_offsets")) {
    uint64_t b = (uint64_t)(t->data - (f.tensors[0].data));
    r = json_pack("[II]", (json_int_t)b, (json_int_t)(b + t->nbytes));
  }
  mq_st_close(&f);
  return r;
}

/* Rewrite the weights file through the writer, dropping tensor `drop`
 * (NULL: none), letting patch() change one tensor's bytes, and adding an F32
 * [2, 4] tensor named `add` of random values (NULL: none). */
static void st_rewrite_add(const char *dir, const char *drop, const char *patch_name,
                           void (*patch)(uint8_t *data, const mq_tensor *t), const char *add) {
  char w[1200];
  weights_of(dir, w, sizeof w);
  mq_st_file f;
  mq_err err;
  CHECK_MSG(mq_st_open(w, &f, &err) == MQ_OK, "%s", err.msg);
  mq_st_writer *wr = mq_st_writer_new();
  int found = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_tensor *t = &f.tensors[i];
    if (drop && !strcmp(t->name, drop)) {
      found = 1;
      continue;
    }
    uint8_t *copy = malloc(t->nbytes ? t->nbytes : 1);
    memcpy(copy, t->data, t->nbytes);
    if (patch_name && !strcmp(t->name, patch_name)) {
      patch(copy, t);
      found = 1;
    }
    CHECK(mq_st_writer_add(wr, t->name, t->dtype, t->n_dims, t->shape, copy, &err) == MQ_OK);
    free(copy);
  }
  CHECK_MSG(found || (!drop && !patch_name), "%s: tensor %s not found", dir,
            drop ? drop : patch_name);
  if (add) {
    float v[8];
    for (int i = 0; i < 8; i++) v[i] = mqt_randf(-1, 1);
    int64_t shape[2] = {2, 4};
    CHECK(mq_st_writer_add(wr, add, MQ_DTYPE_F32, 2, shape, v, &err) == MQ_OK);
  }
  for (int i = 0; i < f.n_meta; i++) mq_st_writer_meta(wr, f.meta[2 * i], f.meta[2 * i + 1], &err);
  mq_st_close(&f);
  CHECK(mq_st_writer_save(wr, w, &err) == MQ_OK);
  mq_st_writer_free(wr);
}

static void st_rewrite(const char *dir, const char *drop, const char *patch_name,
                       void (*patch)(uint8_t *data, const mq_tensor *t)) {
  st_rewrite_add(dir, drop, patch_name, patch, NULL);
}

static void st_drop(const char *dir, const char *name) { st_rewrite(dir, name, NULL, NULL); }

/* ---- config surgery ------------------------------------------------------- */

/* config.json (and its quantization_config with q = 1) edited. */
typedef void (*json_edit)(json_t *obj);

static void edit_config(const char *dir, int q, const char *key, json_t *value) {
  char p[1200];
  snprintf(p, sizeof p, "%.900s/config.json", dir);
  json_error_t je;
  json_t *c = json_load_file(p, 0, &je);
  CHECK_MSG(c != NULL, "%s: %s", p, je.text);
  if (!c) return;
  json_t *o = q ? json_object_get(c, "quantization_config") : c;
  CHECK_MSG(o != NULL, "%s: no quantization_config", p);
  if (o) {
    if (value) json_object_set_new(o, key, value);
    else json_object_del(o, key);
  }
  CHECK(json_dump_file(c, p, JSON_INDENT(2)) == 0);
  json_decref(c);
}

/* Same for quant_model_description.json. */
static void edit_desc(const char *dir, const char *key, json_t *value) {
  char p[1200];
  snprintf(p, sizeof p, "%.900s/quant_model_description.json", dir);
  json_error_t je;
  json_t *c = json_load_file(p, 0, &je);
  CHECK_MSG(c != NULL, "%s: %s", p, je.text);
  if (!c) return;
  if (value) json_object_set_new(c, key, value);
  else json_object_del(c, key);
  CHECK(json_dump_file(c, p, JSON_INDENT(2)) == 0);
  json_decref(c);
}

/* ---- the valid checkpoints ------------------------------------------------ */

enum {
  B_FLOAT,   /* tiny-llama3, F32 */
  B_QWEN2,   /* tiny-qwen2, BF16, q/k/v bias, tied embeddings */
  B_MOE,     /* tiny-qwen3-moe */
  B_AWQ,     /* AWQ GEMM, 4-bit g32 asym (qzeros) */
  B_GPTQ,    /* GPTQ v1, 4-bit g32 asym (qzeros required), desc_act (g_idx) */
  B_GPTQ2,   /* GPTQ v2 8-bit g32 on qwen2 (bias) */
  B_AR,      /* AutoRound auto_gptq 4-bit g32 */
  B_AR_AWQ,  /* AutoRound auto_awq */
  B_CT4,     /* compressed-tensors pack-quantized W4A16 g32 asym, actorder */
  B_CT8,     /* compressed-tensors W8A16 per channel */
  B_MS,      /* ModelSlim W8A8 (attention) + W8A8_DYNAMIC (MLP), by hand */
  B_MS_W8A8, /* the ModelSlim writer: W8A8 static on F32 llama3 (deq_scale I64) */
  B_MS_W4A8, /* ModelSlim W4A8_DYNAMIC on qwen2 (int4 packed along N, scale_bias, bias) */
  B_MS_W4A4, /* ModelSlim W4A4_DYNAMIC */
  B_MS_MXFP8, /* ModelSlim W8A8_MXFP8 (F8_E4M3 weights, E8M0 scales) */
  B_CT_W8A8, /* compressed-tensors int-quantized W8A8 (dynamic int8 tokens) on qwen2 */
  B_CT_W4A8, /* compressed-tensors int-quantized W4A8, group 32 */
  N_BASE
};
static const char *k_base_name[N_BASE] = {
    "float",     "qwen2",        "moe",          "awq",          "gptq",
    "gptq-v2",   "autoround",    "autoround-awq", "ct-w4a16",    "ct-w8a16",
    "modelslim", "modelslim-w8a8", "modelslim-w4a8", "modelslim-w4a4", "modelslim-mxfp8",
    "ct-w8a8",   "ct-w4a8"};
static char g_base[N_BASE][600];

static void make_quant(int b, const char *src, mq_qformat fmt, int bits, int gs, int sym, int desc,
                       mq_qpacking pk) {
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  char s[600];
  snprintf(s, sizeof s, "%.900s/%s", MQ_TEST_DATA, src);
  o.src = s;
  o.dst = g_base[b];
  o.format = fmt, o.bits = bits, o.group_size = gs, o.sym = sym, o.desc_act = desc, o.packing = pk;
  o.seed = 3;
  mq_err err;
  CHECK_MSG(mq_quantize_checkpoint(&o, &err) == MQ_OK, "%s: %s", k_base_name[b], err.msg);
}

static void make_bases(void) {
  for (int b = 0; b < N_BASE; b++) snprintf(g_base[b], sizeof g_base[b], "%s/base-%s", g_root, k_base_name[b]);
  char s[600];
  snprintf(s, sizeof s, "%.900s/tiny-llama3", MQ_TEST_DATA);
  copy_dir(s, g_base[B_FLOAT]);
  snprintf(s, sizeof s, "%.900s/tiny-qwen2", MQ_TEST_DATA);
  copy_dir(s, g_base[B_QWEN2]);
  snprintf(s, sizeof s, "%.900s/tiny-qwen3-moe", MQ_TEST_DATA);
  copy_dir(s, g_base[B_MOE]);
  make_quant(B_AWQ, "tiny-llama3", MQ_QFORMAT_AWQ, 4, 32, 0, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_GPTQ, "tiny-llama3", MQ_QFORMAT_GPTQ, 4, 32, 0, 1, MQ_QPACKING_DEFAULT);
  make_quant(B_GPTQ2, "tiny-qwen2", MQ_QFORMAT_GPTQ_V2, 8, 32, 1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_AR, "tiny-llama3", MQ_QFORMAT_AUTOROUND, 4, 32, 1, 0, MQ_QPACKING_AUTO_GPTQ);
  make_quant(B_AR_AWQ, "tiny-llama3", MQ_QFORMAT_AUTOROUND, 4, 32, 1, 0, MQ_QPACKING_AUTO_AWQ);
  make_quant(B_CT4, "tiny-llama3", MQ_QFORMAT_CT_W4A16, 4, 32, 0, 1, MQ_QPACKING_DEFAULT);
  make_quant(B_CT8, "tiny-qwen2", MQ_QFORMAT_CT_W8A16, 8, -1, 1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_MS_W8A8, "tiny-llama3", MQ_QFORMAT_MS_W8A8, 0, 0, -1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_MS_W4A8, "tiny-qwen2", MQ_QFORMAT_MS_W4A8, 0, 0, -1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_MS_W4A4, "tiny-llama3", MQ_QFORMAT_MS_W4A4, 0, 0, -1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_MS_MXFP8, "tiny-llama3", MQ_QFORMAT_MS_MXFP8, 0, 0, -1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_CT_W8A8, "tiny-qwen2", MQ_QFORMAT_CT_W8A8, 0, 0, -1, 0, MQ_QPACKING_DEFAULT);
  make_quant(B_CT_W4A8, "tiny-llama3", MQ_QFORMAT_CT_W4A8, 0, 32, -1, 0, MQ_QPACKING_DEFAULT);
  mkdir(g_base[B_MS], 0700);
  snprintf(s, sizeof s, "%.900s/tiny-llama3", MQ_TEST_DATA);
  mq_err err;
  CHECK_MSG(mqt_make_modelslim(s, g_base[B_MS], mqt_ms_default_type, &err) == MQ_OK, "modelslim: %s",
            err.msg);
  /* every base loads and names its method */
  static const char *k_method[N_BASE] = {"none", "none", "none", "awq", "gptq", "gptq", "auto-round",
                                         "auto-round", "compressed-tensors", "compressed-tensors",
                                         "modelslim", "modelslim", "modelslim", "modelslim",
                                         "modelslim", "compressed-tensors", "compressed-tensors"};
  for (int b = 0; b < N_BASE; b++) {
    mq_model *m = NULL;
    int rc = mq_model_load(g_base[b], NULL, &m, &err);
    CHECK_MSG(rc == MQ_OK, "base %s does not load: %s", k_base_name[b], err.msg);
    if (rc != MQ_OK) continue;
    mq_model_info info;
    mq_model_get_info(m, &info);
    CHECK_MSG(!strcmp(info.quant_method, k_method[b]), "base %s: method %s", k_base_name[b],
              info.quant_method);
    mq_model_free(m);
  }
}

#define L0 "model.layers.0.self_attn.q_proj"
#define FAIL(label, dir, code, ...) expect_fail(label, dir, code, __VA_ARGS__, (const char *)NULL)

/* ---- 1. truncations ------------------------------------------------------- */

static void test_truncations(void) {
  for (int b = 0; b < N_BASE; b++) {
    char w[1200];
    weights_of(g_base[b], w, sizeof w);
    size_t n;
    uint8_t *buf = mqt_read(w, &n);
    CHECK(buf && n > 16);
    if (!buf) continue;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | buf[i];
    const char *file = strrchr(w, '/') + 1;
    /* the first tensor's data begins at 8 + hn; cut in its middle too */
    struct {
      const char *what;
      size_t len;
    } cut[] = {{"empty file", 0},
               {"4 bytes", 4},
               {"only the 8-byte length", 8},
               {"mid-header", 8 + (size_t)hn / 2},
               {"end of header", 8 + (size_t)hn},
               {"mid-data", 8 + (size_t)hn + (n - 8 - (size_t)hn) / 2},
               {"last byte missing", n - 1}};
    for (size_t c = 0; c < sizeof cut / sizeof cut[0]; c++) {
      char d[1200], label[200], p[1300];
      variant(g_base[b], d, sizeof d);
      snprintf(p, sizeof p, "%.900s/%s", d, file);
      write_bytes(p, buf, cut[c].len);
      snprintf(label, sizeof label, "%s: %s truncated (%s, %zu bytes)", k_base_name[b], file,
               cut[c].what, cut[c].len);
      FAIL(label, d, MQ_ERR_FORMAT, file);
    }
    /* appended bytes (polyglot file) */
    char d[1200], label[200], p[1300];
    variant(g_base[b], d, sizeof d);
    snprintf(p, sizeof p, "%.900s/%s", d, file);
    uint8_t *more = malloc(n + 5);
    memcpy(more, buf, n);
    memcpy(more + n, "junk!", 5);
    write_bytes(p, more, n + 5);
    free(more);
    snprintf(label, sizeof label, "%s: %s with 5 bytes appended", k_base_name[b], file);
    FAIL(label, d, MQ_ERR_FORMAT, file, "tensors cover");
    free(buf);
  }
}

/* ---- 2. flipped header bytes ---------------------------------------------- */

/* Flip (xor 0x20, or set) the byte at the first occurrence of pat + skip. */
static void flip_at(const char *dir, const char *pat, int skip, int set_to) {
  char w[1200];
  weights_of(dir, w, sizeof w);
  size_t n;
  uint8_t *buf = mqt_read(w, &n);
  if (!buf) return;
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--) hn = hn << 8 | buf[i];
  uint8_t *at = NULL;
  if (!pat) at = buf + skip;
  else {
    char *hdr = strndup((const char *)buf + 8, (size_t)hn);
    char *f = strstr(hdr, pat);
    if (f) at = buf + 8 + (f - hdr) + skip;
    free(hdr);
  }
  CHECK_MSG(at != NULL, "%s: pattern %s not found", w, pat);
  if (at) *at = set_to >= 0 ? (uint8_t)set_to : *at ^ 0x20;
  write_bytes(w, buf, n);
  free(buf);
}

static void test_flips(void) {
  char d[1200];
  const char *f = g_base[B_GPTQ], *file = "model.safetensors";
  /* header length's top byte: length beyond the file and beyond 100 MB */
  FAIL("flip: header length byte 7", (flip_at(variant(f, d, sizeof d), NULL, 7, 0x01), d),
       MQ_ERR_FORMAT, file, "header length");
  FAIL("flip: header length byte 3", (flip_at(variant(f, d, sizeof d), NULL, 3, 0x10), d),
       MQ_ERR_FORMAT, file, "header length");
  FAIL("flip: header length low byte", (flip_at(variant(f, d, sizeof d), NULL, 0, -1), d),
       MQ_ERR_FORMAT, file);
  FAIL("flip: '{' of the header", (flip_at(variant(f, d, sizeof d), NULL, 8, '['), d),
       MQ_ERR_FORMAT, file, "'{'");
  FAIL("flip: ':' in the header JSON", (flip_at(variant(f, d, sizeof d), "\":", 1, ';'), d),
       MQ_ERR_FORMAT, file, "JSON");
  FAIL("flip: non-UTF-8 byte in a name", (flip_at(variant(f, d, sizeof d), L0 ".qweight", 3, 0xff), d),
       MQ_ERR_FORMAT, file);
  FAIL("flip: dtype I32 -> i32", (flip_at(variant(f, d, sizeof d), "\"I32\"", 1, -1), d), 0,
       file, "dtype", "i32");
  FAIL("flip: dtype F16 -> F36", (flip_at(variant(f, d, sizeof d), "\"F16\"", 2, '3'), d), 0,
       file, "F36");
  FAIL("flip: data_offsets digit", (flip_at(variant(f, d, sizeof d), "data_offsets\":[", 15, '9'), d),
       MQ_ERR_FORMAT, file);
  FAIL("flip: shape digit", (flip_at(variant(f, d, sizeof d), "shape\":[", 8, '9'), d),
       MQ_ERR_FORMAT, file);
  FAIL("flip: tensor name letter", (flip_at(variant(f, d, sizeof d), L0 ".scales", 31, 'X'), d),
       MQ_ERR_FORMAT, L0 ".scales", "missing");
  /* sweep: every byte of the header of the ModelSlim and AWQ files flipped
   * in turn; many variants fail, some still load (a flipped space in the
   * padding or a metadata value); none may crash or fail without a message */
  static const int sweep[] = {B_AWQ, B_MS, B_CT4};
  for (size_t s = 0; s < sizeof sweep / sizeof sweep[0]; s++) {
    char w[1200];
    weights_of(g_base[sweep[s]], w, sizeof w);
    size_t n;
    uint8_t *buf = mqt_read(w, &n);
    if (!buf) continue;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | buf[i];
    char dst[1200];
    variant(g_base[sweep[s]], dst, sizeof dst);
    weights_of(dst, w, sizeof w);
    int loaded = 0, tried = 0;
    size_t step = hn / 400 + 1; /* ~400 positions per file */
    for (size_t i = 0; i < 8 + hn; i += (i < 8 ? 1 : step)) {
      buf[i] ^= 0x5a;
      write_bytes(w, buf, n);
      buf[i] ^= 0x5a;
      char label[160];
      snprintf(label, sizeof label, "%s: header byte %zu flipped", k_base_name[sweep[s]], i);
      loaded += expect_no_crash(label, dst);
      tried++;
    }
    mqt_rm_tree(dst);
    free(buf);
    g_cases++;
    printf("sweep %s: %d header bytes flipped, %d still load, no crash\n", k_base_name[sweep[s]],
           tried, loaded);
  }
}

/* ---- 3. lies in the header ------------------------------------------------ */

static void test_lies(void) {
  char d[1200];
  const char *gp = g_base[B_GPTQ];
  /* shape with the same byte count, transposed: the adapter must notice */
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "shape", json_pack("[ii]", 64, 8));
  FAIL("gptq: qweight shape transposed (same bytes)", d, MQ_ERR_FORMAT, L0 ".qweight", "shape");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".scales", "shape", json_pack("[iii]", 2, 32, 1));
  FAIL("gptq: scales shape 3-D (same bytes)", d, MQ_ERR_FORMAT, L0 ".scales");
  /* shape whose byte count disagrees with the offsets */
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "shape", json_pack("[ii]", 9, 64));
  FAIL("gptq: qweight shape larger than its bytes", d, MQ_ERR_FORMAT, L0 ".qweight", "needs");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "shape", json_pack("[iI]", 2, (json_int_t)INT64_MAX));
  FAIL("gptq: qweight shape overflowing 64 bits", d, MQ_ERR_FORMAT, L0 ".qweight", "overflows");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "shape", json_pack("[if]", 8, 64.0));
  FAIL("gptq: qweight shape with a real number", d, MQ_ERR_FORMAT, L0 ".qweight", "shape");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "shape", json_pack("[ii]", -8, -64));
  FAIL("gptq: qweight negative shape", d, MQ_ERR_FORMAT, L0 ".qweight", "shape");
  /* dtype of the same size but the wrong kind */
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "dtype", json_string("F32"));
  FAIL("gptq: qweight dtype I32 -> F32", d, 0, L0 ".qweight", "F32");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".scales", "dtype", json_string("I16"));
  FAIL("gptq: scales dtype F16 -> I16", d, 0, L0 ".scales", "I16");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".g_idx", "dtype", json_string("F32"));
  FAIL("gptq: g_idx dtype I32 -> F32", d, 0, L0 ".g_idx", "F32");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "dtype", json_string("f32"));
  FAIL("gptq: dtype in the wrong case", d, MQ_ERR_UNSUPPORTED, L0 ".qweight", "f32");
  variant(g_base[B_FLOAT], d, sizeof d);
  st_set(d, "model.embed_tokens.weight", "dtype", json_string("I32"));
  FAIL("float: embeddings dtype F32 -> I32", d, 0, "model.embed_tokens.weight", "I32");
  variant(g_base[B_MS], d, sizeof d);
  st_set(d, L0 ".weight", "dtype", json_string("U8"));
  FAIL("modelslim: W8A8 weight dtype I8 -> U8", d, 0, L0 ".weight", "U8");
  variant(g_base[B_MS], d, sizeof d);
  st_set(d, "model.layers.0.mlp.up_proj.weight_scale", "dtype", json_string("I32"));
  FAIL("modelslim: weight_scale dtype F32 -> I32", d, 0, "model.layers.0.mlp.up_proj.weight_scale", "I32");
  /* data_offsets */
  variant(gp, d, sizeof d);
  json_t *o = st_get(d, L0 ".qweight", "data_offsets");
  json_int_t b0 = json_integer_value(json_array_get(o, 0)), b1 = json_integer_value(json_array_get(o, 1));
  json_decref(o);
  st_set(d, L0 ".qweight", "data_offsets", json_pack("[II]", b1, b0));
  FAIL("gptq: data_offsets end before begin", d, MQ_ERR_FORMAT, L0 ".qweight", "data_offsets");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "data_offsets", json_pack("[II]", b0 + 4, b1 + 4));
  FAIL("gptq: data_offsets shifted (gap and overlap)", d, MQ_ERR_FORMAT, "contiguous");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "data_offsets", json_pack("[I]", b0));
  FAIL("gptq: data_offsets with one number", d, MQ_ERR_FORMAT, L0 ".qweight", "data_offsets");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "data_offsets", json_pack("[II]", (json_int_t)-1, b1));
  FAIL("gptq: negative data_offsets", d, MQ_ERR_FORMAT, L0 ".qweight", "data_offsets");
  variant(gp, d, sizeof d);
  st_set(d, L0 ".qweight", "data_offsets", json_pack("[II]", b0, (json_int_t)INT64_MAX));
  FAIL("gptq: data_offsets past the file", d, MQ_ERR_FORMAT, L0 ".qweight");
  variant(gp, d, sizeof d);
  st_set(d, "__metadata__", "format", json_integer(1));
  FAIL("gptq: __metadata__ value not a string", d, MQ_ERR_FORMAT, "__metadata__");
}

/* ---- 4. missing tensors --------------------------------------------------- */

static void drop_case(int b, const char *tensor, const char *extra_needle) {
  char d[1200], label[300];
  variant(g_base[b], d, sizeof d);
  st_drop(d, tensor);
  snprintf(label, sizeof label, "%s: tensor %s removed", k_base_name[b], tensor);
  FAIL(label, d, 0, tensor, extra_needle);
}

static void test_missing(void) {
  drop_case(B_FLOAT, "model.embed_tokens.weight", "missing");
  drop_case(B_FLOAT, "model.norm.weight", "missing");
  drop_case(B_FLOAT, "lm_head.weight", "missing");
  drop_case(B_FLOAT, "model.layers.1.input_layernorm.weight", "missing");
  drop_case(B_FLOAT, "model.layers.1.mlp.down_proj.weight", "missing");
  drop_case(B_QWEN2, "model.layers.0.self_attn.k_proj.bias", "missing");
  drop_case(B_MOE, "model.layers.1.mlp.experts.3.up_proj.weight", "missing");
  drop_case(B_MOE, "model.layers.1.mlp.gate.weight", "missing");
  drop_case(B_MOE, "model.layers.0.self_attn.q_norm.weight", "missing");
  static const char *awq[] = {".qweight", ".qzeros", ".scales"};
  for (int i = 0; i < 3; i++) {
    char t[200];
    snprintf(t, sizeof t, "%s%s", L0, awq[i]);
    drop_case(B_AWQ, t, NULL);
    drop_case(B_AR_AWQ, t, NULL);
  }
  static const char *gptq[] = {".qweight", ".qzeros", ".scales", ".g_idx"};
  for (int i = 0; i < 4; i++) {
    char t[200];
    snprintf(t, sizeof t, "%s%s", L0, gptq[i]);
    drop_case(B_GPTQ, t, NULL);
    /* symmetric GPTQ may omit qzeros (implicit zero 2^(b-1), gptq.c) */
    if (i != 1 && i < 3) drop_case(B_AR, t, NULL);
    if (i != 1 && i < 3) drop_case(B_GPTQ2, t, NULL);
  }
  drop_case(B_GPTQ2, L0 ".bias", "missing");
  static const char *ct[] = {".weight_packed", ".weight_scale", ".weight_zero_point", ".weight_g_idx"};
  for (int i = 0; i < 4; i++) {
    char t[200];
    snprintf(t, sizeof t, "%s%s", L0, ct[i]);
    drop_case(B_CT4, t, NULL);
  }
  drop_case(B_CT8, L0 ".weight_packed", NULL);
  drop_case(B_CT8, L0 ".weight_scale", NULL);
  drop_case(B_CT8, "model.layers.1.self_attn.v_proj.bias", "missing");
  static const char *ms_static[] = {".weight", ".input_scale", ".input_offset", ".deq_scale", ".quant_bias"};
  for (int i = 0; i < 5; i++) {
    char t[200];
    snprintf(t, sizeof t, "%s%s", L0, ms_static[i]);
    drop_case(B_MS, t, NULL);
  }
  drop_case(B_MS, "model.layers.1.mlp.gate_proj.weight_scale", NULL);
  drop_case(B_MS, "model.layers.1.mlp.gate_proj.weight", NULL);
}

/* ---- 5. config.json ------------------------------------------------------- */

static void test_config(void) {
  char d[1200], p[1300];
  const char *fl = g_base[B_FLOAT];
  variant(fl, d, sizeof d);
  snprintf(p, sizeof p, "%.900s/config.json", d);
  unlink(p);
  FAIL("config.json missing", d, MQ_ERR_IO, "config.json");
  variant(fl, d, sizeof d);
  write_text(d, "config.json", "");
  FAIL("config.json empty", d, MQ_ERR_FORMAT, "config.json");
  variant(fl, d, sizeof d);
  snprintf(p, sizeof p, "%.900s/config.json", d);
  write_bytes(p, "\x00\x01\xfe\xff garbage \x80", 14);
  FAIL("config.json binary garbage", d, MQ_ERR_FORMAT, "config.json");
  variant(fl, d, sizeof d);
  write_text(d, "config.json", "{\"model_type\": \"llama\", \"hidden_size\": 64,");
  FAIL("config.json truncated", d, MQ_ERR_FORMAT, "config.json");
  variant(fl, d, sizeof d);
  write_text(d, "config.json", "[1, 2, 3]");
  FAIL("config.json an array", d, MQ_ERR_FORMAT, "config.json", "object");
  variant(fl, d, sizeof d);
  write_text(d, "config.json", "{\"a\": 1, \"a\": 2}");
  FAIL("config.json duplicate key", d, MQ_ERR_FORMAT, "config.json");
  variant(fl, d, sizeof d);
  snprintf(p, sizeof p, "%.900s/config.json", d);
  unlink(p);
  mkdir(p, 0700); /* a folder where the file should be */
  FAIL("config.json is a folder", d, 0, "config.json");
  static const char *req[] = {"model_type", "vocab_size", "hidden_size", "intermediate_size",
                              "num_hidden_layers", "num_attention_heads"};
  for (int i = 0; i < 6; i++) {
    char label[120];
    snprintf(label, sizeof label, "config.json without %s", req[i]);
    variant(fl, d, sizeof d);
    edit_config(d, 0, req[i], NULL);
    FAIL(label, d, MQ_ERR_FORMAT, "config.json", req[i]);
  }
  struct {
    const char *label, *key;
    json_t *v;
    const char *needle;
  } bad[] = {
      {"hidden_size 0", "hidden_size", json_integer(0), "hidden_size"},
      {"hidden_size 1e300 (fuzz find: UB cast)", "hidden_size", json_real(1e300), "hidden_size"},
      {"hidden_size a string", "hidden_size", json_string("64"), "hidden_size"},
      {"num_attention_heads 0", "num_attention_heads", json_integer(0), "num_attention_heads"},
      {"num_hidden_layers -1", "num_hidden_layers", json_integer(-1), "num_hidden_layers"},
      {"num_hidden_layers 2^40", "num_hidden_layers", json_integer(1LL << 40), "num_hidden_layers"},
      {"vocab_size 2^31", "vocab_size", json_integer(1LL << 31), "vocab_size"},
      {"num_key_value_heads 3 (not dividing 4 heads)", "num_key_value_heads", json_integer(3),
       "num_key_value_heads"},
      {"head_dim 15 (odd)", "head_dim", json_integer(15), "head_dim"},
      {"model_type gpt2", "model_type", json_string("gpt2"), "gpt2"},
      {"hidden_act gelu", "hidden_act", json_string("gelu"), "gelu"},
      {"rms_norm_eps -1", "rms_norm_eps", json_real(-1), "rms_norm_eps"},
      {"rope_theta 0", "rope_theta", json_integer(0), "rope_theta"},
      {"rope_scaling type dynamic", "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "dynamic", "factor", 2.0),
       "dynamic"},
      {"rope_scaling factor 0.5", "rope_scaling", json_pack("{s:s,s:f}", "rope_type", "linear", "factor", 0.5),
       "factor"},
      {"partial_rotary_factor 0", "partial_rotary_factor", json_real(0.0), "partial_rotary_factor"},
      {"partial_rotary_factor 1e300", "partial_rotary_factor", json_real(1e300), "partial_rotary_factor"},
      {"tie_word_embeddings \"yes\"", "tie_word_embeddings", json_string("yes"), "tie_word_embeddings"},
      {"eos_token_id -5", "eos_token_id", json_integer(-5), "eos_token_id"},
      {"use_sliding_window true", "use_sliding_window", json_true(), "sliding"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char label[160];
    snprintf(label, sizeof label, "config.json %s", bad[i].label);
    variant(fl, d, sizeof d);
    edit_config(d, 0, bad[i].key, bad[i].v);
    FAIL(label, d, 0, "config.json", bad[i].needle);
  }
  /* head_dim defaulted from hidden_size / heads beyond the RoPE table bound
   * (fuzz find: stack overflow in mq_rope_tables at session start) */
  variant(fl, d, sizeof d);
  edit_config(d, 0, "hidden_size", json_integer(8520));
  edit_config(d, 0, "num_attention_heads", json_integer(1));
  edit_config(d, 0, "num_key_value_heads", json_integer(1));
  edit_config(d, 0, "head_dim", NULL);
  FAIL("config.json head_dim 8520 by default (hidden 8520 / 1 head)", d, MQ_ERR_FORMAT, "head_dim");
  /* values that disagree with the tensors */
  struct {
    const char *label, *key;
    json_int_t v;
    const char *needle;
  } shape[] = {
      {"vocab_size 300 vs embeddings [256, 64]", "vocab_size", 300, "model.embed_tokens.weight"},
      {"vocab_size 2^30 vs embeddings (no 2^30-row allocation)", "vocab_size", 1 << 30,
       "model.embed_tokens.weight"},
      {"hidden_size 128 vs tensors", "hidden_size", 128, "shape"},
      {"intermediate_size 96 vs tensors", "intermediate_size", 96, "mlp"},
      {"num_hidden_layers 3 with 2 stored", "num_hidden_layers", 3, "3 layers"},
      {"num_hidden_layers 4096 with 2 stored", "num_hidden_layers", 4096, "4096 layers"},
      {"num_key_value_heads 4 vs k_proj", "num_key_value_heads", 4, "k_proj"},
  };
  for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
    char label[160];
    snprintf(label, sizeof label, "config.json %s", shape[i].label);
    variant(fl, d, sizeof d);
    edit_config(d, 0, shape[i].key, json_integer(shape[i].v));
    FAIL(label, d, MQ_ERR_FORMAT, shape[i].needle);
  }
  /* a quantized checkpoint whose config lost its quantization_config (and
   * side files): tensors are quantized, the plan says float */
  variant(g_base[B_AWQ], d, sizeof d);
  edit_config(d, 0, "quantization_config", NULL);
  FAIL("awq: quantization_config removed", d, MQ_ERR_FORMAT, "qweight");
  variant(g_base[B_CT4], d, sizeof d);
  edit_config(d, 0, "quantization_config", NULL);
  FAIL("ct-w4a16: quantization_config removed", d, MQ_ERR_FORMAT, "weight_packed");
  /* MoE sizes */
  variant(g_base[B_MOE], d, sizeof d);
  edit_config(d, 0, "num_experts", json_integer(4));
  FAIL("moe: num_experts 4 with 8 stored", d, MQ_ERR_FORMAT, "expert");
  variant(g_base[B_MOE], d, sizeof d);
  edit_config(d, 0, "num_experts_per_tok", json_integer(99));
  FAIL("moe: num_experts_per_tok 99 > num_experts", d, MQ_ERR_FORMAT, "num_experts_per_tok");
  variant(g_base[B_MOE], d, sizeof d);
  edit_config(d, 0, "mlp_only_layers", json_pack("[i]", 7));
  FAIL("moe: mlp_only_layers names layer 7 of 2", d, MQ_ERR_FORMAT, "mlp_only_layers");
  /* sizes that would need a huge allocation before any tensor is checked:
   * 4096 layers x 65536 experts is 805M linear modules */
  variant(g_base[B_MOE], d, sizeof d);
  edit_config(d, 0, "num_hidden_layers", json_integer(4096));
  edit_config(d, 0, "num_experts", json_integer(65536));
  FAIL("moe: 4096 layers x 65536 experts declared", d, MQ_ERR_FORMAT, "65536 experts", "tensors");
  /* a config that lost layers: the tensors of layer 1 are not the decoder's */
  variant(g_base[B_FLOAT], d, sizeof d);
  edit_config(d, 0, "num_hidden_layers", json_integer(1));
  FAIL("config.json num_hidden_layers 1 with 2 layers stored", d, MQ_ERR_FORMAT, "model.layers.1.",
       "num_hidden_layers 1");
  /* ... unless the layer past them is a multi-token-prediction layer (it
   * has an eh_proj): ignored, with a warning */
  {
    variant(g_base[B_FLOAT], d, sizeof d);
    edit_config(d, 0, "num_hidden_layers", json_integer(1));
    st_rewrite_add(d, NULL, NULL, NULL, "model.layers.1.eh_proj.weight");
    mq_model *m = NULL;
    mq_err err = {0};
    int rc = mq_model_load(d, NULL, &m, &err);
    CHECK_MSG(rc == MQ_OK, "MTP layer past num_hidden_layers: %s", err.msg);
    mq_model_info info;
    if (m) mq_model_get_info(m, &info);
    CHECK(m && info.n_layer == 1 && mq_model_n_warnings(m) >= 1 &&
          strstr(mq_model_warning(m, 0), "multi-token-prediction layer 1"));
    mq_model_free(m);
    mqt_rm_tree(d);
  }
}

/* ---- 6. quantization metadata --------------------------------------------- */

static void qcase(int b, const char *label, const char *key, json_t *v, int code, const char *n1,
                  const char *n2) {
  char d[1200], l[200];
  variant(g_base[b], d, sizeof d);
  edit_config(d, 1, key, v);
  snprintf(l, sizeof l, "%s: quantization_config %s", k_base_name[b], label);
  FAIL(l, d, code, n1, n2);
}

static void gidx_out_of_range(uint8_t *data, const mq_tensor *t) {
  (void)t;
  int32_t v = 77; /* K = 64, G = 2: group 77 does not exist */
  memcpy(data + 4 * 5, &v, 4);
}

static void gidx_uneven(uint8_t *data, const mq_tensor *t) {
  (void)t;
  int32_t v;
  memcpy(&v, data, 4);
  v = v == 0 ? 1 : 0; /* one channel moved to the other group: 33 + 31 */
  memcpy(data, &v, 4);
}

/* A copy of base b with config_groups.group_0[key] = v. */
static void ct_group_set(int b, const char *key, json_t *v, char *d, size_t cap) {
  variant(g_base[b], d, cap);
  char p[1300];
  snprintf(p, sizeof p, "%.900s/config.json", d);
  json_error_t je;
  json_t *c = json_load_file(p, 0, &je);
  json_t *g = json_object_get(json_object_get(json_object_get(c, "quantization_config"), "config_groups"),
                              "group_0");
  CHECK(g != NULL);
  if (g) json_object_set(g, key, v);
  json_decref(v);
  CHECK(json_dump_file(c, p, 0) == 0);
  json_decref(c);
}

static void test_qconfig(void) {
  char d[1200];
  qcase(B_GPTQ, "bits 5", "bits", json_integer(5), MQ_ERR_UNSUPPORTED, "5-bit", NULL);
  qcase(B_GPTQ, "bits 0", "bits", json_integer(0), MQ_ERR_FORMAT, "bits", NULL);
  qcase(B_GPTQ, "bits \"4\"", "bits", json_string("4"), MQ_ERR_FORMAT, "bits", NULL);
  qcase(B_GPTQ, "bits 8 (tensors are 4-bit)", "bits", json_integer(8), MQ_ERR_FORMAT, "qweight", NULL);
  qcase(B_GPTQ, "bits 2 (tensors are 4-bit)", "bits", json_integer(2), MQ_ERR_FORMAT, "qweight", NULL);
  qcase(B_GPTQ, "group_size 0", "group_size", json_integer(0), MQ_ERR_FORMAT, "group_size", NULL);
  qcase(B_GPTQ, "group_size -2", "group_size", json_integer(-2), MQ_ERR_FORMAT, "group_size", NULL);
  qcase(B_GPTQ, "group_size 48 (does not divide K = 64)", "group_size", json_integer(48), 0, L0, NULL);
  qcase(B_GPTQ, "group_size 16 (tensors have 32)", "group_size", json_integer(16), 0, L0, NULL);
  qcase(B_AR, "group_size 48", "group_size", json_integer(48), 0, "shape", NULL);
  qcase(B_AWQ, "group_size 48", "group_size", json_integer(48), 0, L0, NULL);
  qcase(B_AWQ, "group_size -1 (tensors have 32)", "group_size", json_integer(-1), 0, L0, NULL);
  qcase(B_AWQ, "bits 8", "bits", json_integer(8), MQ_ERR_UNSUPPORTED, "AWQ", "8 bits");
  qcase(B_AWQ, "version gemv", "version", json_string("gemv"), MQ_ERR_UNSUPPORTED, "gemv", NULL);
  qcase(B_GPTQ, "unknown quant_method", "quant_method", json_string("frobnicate"), MQ_ERR_UNSUPPORTED,
        "quant_method", "frobnicate");
  qcase(B_GPTQ, "quant_method a number", "quant_method", json_integer(3), MQ_ERR_FORMAT,
        "quant_method", NULL);
  qcase(B_GPTQ, "quant_method removed", "quant_method", NULL, MQ_ERR_FORMAT, "quant_method", NULL);
  qcase(B_GPTQ, "checkpoint_format marlin", "checkpoint_format", json_string("marlin"),
        MQ_ERR_UNSUPPORTED, "marlin", NULL);
  qcase(B_GPTQ, "quant_method awq (tensors are GPTQ)", "quant_method", json_string("awq"), 0, L0, NULL);
  qcase(B_GPTQ2, "checkpoint_format gptq (zeros v1 vs v2 is undetectable; bits 4)", "bits",
        json_integer(4), 0, L0, NULL);
  qcase(B_AR, "packing_format auto_round:marlin", "packing_format", json_string("auto_round:marlin"),
        MQ_ERR_UNSUPPORTED, "packing_format", NULL);
  qcase(B_AR, "data_type fp", "data_type", json_string("fp"), MQ_ERR_UNSUPPORTED, "data_type", NULL);
  qcase(B_AR, "extra_config bits 5", "extra_config",
        json_pack("{s:{s:i}}", L0, "bits", 5), MQ_ERR_UNSUPPORTED, "5-bit", NULL);
  /* per-layer overrides (fuzz find: group_size 0 slipped past the global check) */
  qcase(B_AR, "extra_config group_size 0", "extra_config",
        json_pack("{s:{s:i}}", ".*self_attn.*", "group_size", 0), MQ_ERR_FORMAT, "group_size 0", L0);
  qcase(B_GPTQ, "dynamic group_size 0", "dynamic",
        json_pack("{s:{s:i}}", "+:.*self_attn.*", "group_size", 0), MQ_ERR_FORMAT, "group_size 0", L0);
  qcase(B_GPTQ, "dynamic with a bad regex", "dynamic", json_pack("{s:{}}", "+:model.(layers"),
        MQ_ERR_FORMAT, "regular expression", NULL);
  qcase(B_GPTQ, "dynamic bits 6", "dynamic", json_pack("{s:{s:i}}", ".*mlp.*", "bits", 6),
        MQ_ERR_UNSUPPORTED, "6-bit", NULL);
  qcase(B_CT4, "config_groups a list", "config_groups", json_pack("[]"), MQ_ERR_FORMAT, "weight_packed",
        NULL);
  qcase(B_CT4, "ignore with a bad regex", "ignore", json_pack("[s]", "re:model.(layers"), MQ_ERR_FORMAT,
        "regular expression", NULL);
  /* group settings inside config_groups */
  variant(g_base[B_CT4], d, sizeof d);
  {
    char p[1300];
    snprintf(p, sizeof p, "%.900s/config.json", d);
    json_error_t je;
    json_t *c = json_load_file(p, 0, &je);
    json_t *w = json_object_get(json_object_get(json_object_get(json_object_get(c, "quantization_config"),
                                                                "config_groups"), "group_0"), "weights");
    CHECK(w != NULL);
    json_object_set_new(w, "strategy", json_string("block"));
    json_dump_file(c, p, 0);
    json_decref(c);
  }
  FAIL("ct-w4a16: weights strategy block", d, MQ_ERR_UNSUPPORTED, "block");
  variant(g_base[B_CT4], d, sizeof d);
  {
    char p[1300];
    snprintf(p, sizeof p, "%.900s/config.json", d);
    json_error_t je;
    json_t *c = json_load_file(p, 0, &je);
    json_t *w = json_object_get(json_object_get(json_object_get(json_object_get(c, "quantization_config"),
                                                                "config_groups"), "group_0"), "weights");
    json_object_set_new(w, "num_bits", json_integer(5));
    json_dump_file(c, p, 0);
    json_decref(c);
  }
  FAIL("ct-w4a16: num_bits 5 (tensors 4-bit)", d, 0, L0);
  ct_group_set(B_CT4, "format", json_string("sparse-bitmask"), d, sizeof d);
  FAIL("ct-w4a16: unknown format sparse-bitmask", d, MQ_ERR_UNSUPPORTED, "sparse-bitmask");
  ct_group_set(B_CT8, "format", json_string("int-quantized"), d, sizeof d);
  FAIL("ct-w8a16: format int-quantized (tensors packed)", d, 0, "weight");
  ct_group_set(B_CT4, "targets", json_pack("[s]", "re:model.(layers"), d, sizeof d);
  FAIL("ct-w4a16: targets with a bad regex", d, MQ_ERR_FORMAT, "regular expression", "model.(layers");
  ct_group_set(B_CT4, "input_activations", json_pack("{s:i,s:s,s:b}", "num_bits", 6, "type", "int", "dynamic", 1),
               d, sizeof d);
  FAIL("ct-w4a16: 6-bit input activations", d, MQ_ERR_UNSUPPORTED, "input activations");
  /* quantization_config not an object; the --quantization override */
  variant(g_base[B_GPTQ], d, sizeof d);
  edit_config(d, 0, "quantization_config", json_string("gptq"));
  FAIL("gptq: quantization_config a string", d, MQ_ERR_FORMAT, "quantization_config");
  {
    variant(g_base[B_GPTQ], d, sizeof d);
    mq_model_params mp;
    mq_model_params_default(&mp);
    mp.quantization = "awq";
    mq_model *m = NULL;
    mq_err err;
    int rc = mq_model_load(d, &mp, &m, &err);
    g_cases++;
    CHECK_MSG(rc == MQ_ERR_ARG && m == NULL && strstr(err.msg, "gptq") && strstr(err.msg, "awq"),
              "override awq on gptq: rc %d: %s", rc, err.msg);
    if (m) mq_model_free(m);
    mqt_rm_tree(d);
  }
  /* desc_act / g_idx */
  variant(g_base[B_GPTQ], d, sizeof d);
  st_drop(d, L0 ".g_idx");
  FAIL("gptq: desc_act true, g_idx removed", d, MQ_ERR_FORMAT, L0 ".g_idx");
  variant(g_base[B_GPTQ], d, sizeof d);
  st_rewrite(d, NULL, L0 ".g_idx", gidx_out_of_range);
  FAIL("gptq: g_idx value 77 with 2 groups", d, MQ_ERR_FORMAT, "g_idx");
  variant(g_base[B_GPTQ], d, sizeof d);
  st_rewrite(d, NULL, L0 ".g_idx", gidx_uneven);
  FAIL("gptq: g_idx groups of unequal size", d, 0, "g_idx");
  variant(g_base[B_CT4], d, sizeof d);
  st_drop(d, L0 ".weight_g_idx");
  FAIL("ct-w4a16: actorder group, weight_g_idx removed", d, MQ_ERR_FORMAT, "weight_g_idx");
  variant(g_base[B_GPTQ], d, sizeof d);
  st_set(d, L0 ".g_idx", "shape", json_pack("[ii]", 32, 2));
  FAIL("gptq: g_idx shape [32, 2] for K = 64", d, MQ_ERR_FORMAT, L0 ".g_idx");
  /* side file only, inconsistent */
  variant(g_base[B_GPTQ], d, sizeof d);
  edit_config(d, 0, "quantization_config", NULL);
  write_text(d, "quantize_config.json", "{\"bits\": 4, \"group_size\": 0}");
  FAIL("gptq: quantize_config.json group_size 0", d, MQ_ERR_FORMAT, "quantize_config.json", "group_size");
  variant(g_base[B_GPTQ], d, sizeof d);
  edit_config(d, 0, "quantization_config", NULL);
  write_text(d, "quantize_config.json", "{\"bits\": 4, \"group_size\": 32, \"desc_act\": tru");
  FAIL("gptq: quantize_config.json truncated", d, MQ_ERR_FORMAT, "quantize_config.json");
}

/* ---- 7. ModelSlim descriptions -------------------------------------------- */

static void deq_garbage(uint8_t *data, const mq_tensor *t) {
  (void)t;
  data[3 * 8 + 5] ^= 0x12; /* deq_scale[3]: bits 40..47 of its int64 */
}

static void int4_out_of_range(uint8_t *data, const mq_tensor *t) {
  (void)t;
  data[0] = 100;
}

/* First element of a float tensor (F32, F16 or BF16) set to NaN. */
static void h16_nan(uint8_t *data, const mq_tensor *t) {
  uint32_t nan32 = 0x7fc00000u;
  uint16_t nan = t->dtype == MQ_DTYPE_BF16 ? 0x7fc0 : 0x7e00;
  if (t->dtype == MQ_DTYPE_F32) memcpy(data, &nan32, 4);
  else memcpy(data, &nan, 2);
}

static void h16_inf(uint8_t *data, const mq_tensor *t) {
  uint16_t inf = t->dtype == MQ_DTYPE_BF16 ? 0x7f80 : 0x7c00;
  memcpy(data + 2 * 3, &inf, 2);
}

static void e8m0_nan(uint8_t *data, const mq_tensor *t) {
  (void)t;
  data[1] = 0xff;
}

static void test_modelslim(void) {
  char d[1200];
  const char *ms = g_base[B_MS];
  variant(ms, d, sizeof d);
  edit_desc(d, L0 ".weight", json_string("W3A5_DYNAMIC"));
  FAIL("modelslim: unknown type W3A5_DYNAMIC", d, MQ_ERR_UNSUPPORTED, "W3A5_DYNAMIC", L0);
  variant(ms, d, sizeof d);
  edit_desc(d, L0 ".weight", json_string("w8a8"));
  FAIL("modelslim: type in the wrong case", d, MQ_ERR_UNSUPPORTED, "w8a8");
  variant(ms, d, sizeof d);
  edit_desc(d, L0 ".weight", NULL);
  FAIL("modelslim: layer missing from the description", d, MQ_ERR_FORMAT, L0 ".weight");
  variant(ms, d, sizeof d);
  edit_desc(d, L0 ".weight", json_integer(8));
  FAIL("modelslim: type not a string", d, MQ_ERR_FORMAT, L0 ".weight");
  variant(ms, d, sizeof d);
  edit_desc(d, L0 ".weight", json_string("FLOAT"));
  FAIL("modelslim: FLOAT for q_proj but not k_proj", d, MQ_ERR_FORMAT, "q_proj", "k_proj");
  variant(ms, d, sizeof d);
  edit_desc(d, "model.layers.1.mlp.up_proj.weight", json_string("W8A8"));
  FAIL("modelslim: up_proj W8A8 vs gate_proj W8A8_DYNAMIC", d, MQ_ERR_FORMAT, "gate_proj", "up_proj");
  variant(ms, d, sizeof d);
  edit_desc(d, "model.layers.1.mlp.down_proj.weight", json_string("W8A8"));
  FAIL("modelslim: down_proj W8A8 without its static tensors", d, 0, "model.layers.1.mlp.down_proj");
  variant(ms, d, sizeof d);
  edit_desc(d, "model.layers.1.mlp.down_proj.weight", json_string("W8A8_MXFP8"));
  FAIL("modelslim: W8A8_MXFP8 over int8 tensors", d, 0, "model.layers.1.mlp.down_proj");
  variant(ms, d, sizeof d);
  edit_desc(d, "model.layers.1.mlp.down_proj.weight", json_string("W4A8_DYNAMIC"));
  FAIL("modelslim: W4A8_DYNAMIC over int8 values", d, MQ_ERR_FORMAT, "model.layers.1.mlp.down_proj", "int4");
  variant(ms, d, sizeof d);
  edit_desc(d, "model_quant_type", json_integer(1));
  FAIL("modelslim: model_quant_type not a string", d, MQ_ERR_FORMAT, "model_quant_type");
  variant(ms, d, sizeof d);
  write_text(d, "quant_model_description.json", "{\"model_quant_type\": \"W8A8\", ");
  FAIL("modelslim: description truncated", d, MQ_ERR_FORMAT, "quant_model_description.json");
  variant(ms, d, sizeof d);
  write_text(d, "quant_model_description.json", "[\"W8A8\"]");
  FAIL("modelslim: description an array", d, MQ_ERR_FORMAT, "quant_model_description.json");
  variant(ms, d, sizeof d);
  write_text(d, "quant_model_description.json", "");
  FAIL("modelslim: description empty", d, MQ_ERR_FORMAT, "quant_model_description.json");
  /* values */
  static float zero = 0.0f, nan_v = NAN, half = 0.5f;
  struct {
    const char *label, *tensor;
    const float *v;
    const char *needle;
  } vals[] = {{"input_scale 0", L0 ".input_scale", &zero, "input_scale"},
              {"input_scale NaN", L0 ".input_scale", &nan_v, "input_scale"},
              {"input_offset 0.5", L0 ".input_offset", &half, "input_offset"},
              {"deq_scale NaN", L0 ".deq_scale", &nan_v, "deq_scale"}};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    variant(ms, d, sizeof d);
    char w[1200];
    mq_st_file f;
    mq_err err;
    weights_of(d, w, sizeof w);
    /* patch the first float of the tensor in place (file copy, then map) */
    CHECK(mq_st_open(w, &f, &err) == MQ_OK);
    const mq_tensor *t = mq_st_find(&f, vals[i].tensor);
    long off = t ? (long)(t->data - f.map.data) : -1;
    mq_st_close(&f);
    CHECK(off > 0);
    FILE *fp = fopen(w, "r+b");
    if (fp && off > 0) {
      fseek(fp, off, SEEK_SET);
      fwrite(vals[i].v, 4, 1, fp);
    }
    if (fp) fclose(fp);
    char label[160];
    snprintf(label, sizeof label, "modelslim: %s", vals[i].label);
    FAIL(label, d, MQ_ERR_FORMAT, vals[i].needle);
  }
  /* checkpoints of the ModelSlim and compressed-tensors writers */
  variant(g_base[B_MS_W8A8], d, sizeof d);
  st_rewrite(d, NULL, L0 ".deq_scale", deq_garbage);
  FAIL("modelslim-w8a8: deq_scale I64 with garbage high bits", d, MQ_ERR_FORMAT, "deq_scale[3]",
       "high 32 bits");
  variant(g_base[B_MS_W8A8], d, sizeof d);
  st_set(d, L0 ".deq_scale", "dtype", json_string("U64"));
  FAIL("modelslim-w8a8: deq_scale dtype I64 -> U64", d, MQ_ERR_FORMAT, L0 ".deq_scale", "U64");
  variant(g_base[B_MS_W4A8], d, sizeof d);
  st_drop(d, L0 ".weight_scale");
  FAIL("modelslim-w4a8: weight_scale removed", d, MQ_ERR_FORMAT, L0 ".weight_scale");
  variant(g_base[B_MS_W4A8], d, sizeof d);
  st_set(d, L0 ".weight", "shape", json_pack("[ii]", 64, 32));
  FAIL("modelslim-w4a8: packed weight shape [64, 32] (same bytes)", d, MQ_ERR_FORMAT, L0 ".weight");
  variant(g_base[B_MS_W4A4], d, sizeof d);
  st_rewrite(d, NULL, L0 ".weight", int4_out_of_range);
  FAIL("modelslim-w4a4: int4 weight value 100", d, MQ_ERR_FORMAT, L0, "int4");
  variant(g_base[B_MS_MXFP8], d, sizeof d);
  st_rewrite(d, NULL, L0 ".weight_scale", e8m0_nan);
  FAIL("modelslim-mxfp8: E8M0 scale 0xFF (NaN)", d, MQ_ERR_FORMAT, L0, "0xFF");
  variant(g_base[B_MS_MXFP8], d, sizeof d);
  st_set(d, L0 ".weight", "dtype", json_string("I8"));
  FAIL("modelslim-mxfp8: weight dtype F8_E4M3 -> I8", d, MQ_ERR_FORMAT, L0 ".weight", "F8_E4M3");
  variant(g_base[B_MS_MXFP8], d, sizeof d);
  st_drop(d, "model.layers.1.mlp.down_proj.weight_scale");
  FAIL("modelslim-mxfp8: weight_scale removed", d, MQ_ERR_FORMAT, "model.layers.1.mlp.down_proj.weight_scale");
  variant(g_base[B_CT_W8A8], d, sizeof d);
  st_drop(d, L0 ".weight_scale");
  FAIL("ct-w8a8: weight_scale removed", d, MQ_ERR_FORMAT, L0 ".weight_scale");
  variant(g_base[B_CT_W8A8], d, sizeof d);
  st_set(d, L0 ".weight", "dtype", json_string("U8"));
  FAIL("ct-w8a8: weight dtype I8 -> U8", d, 0, L0 ".weight", "U8");
  ct_group_set(B_CT_W8A8, "input_activations", json_pack("{s:i,s:s,s:b}", "num_bits", 4, "type", "int",
                                                          "dynamic", 0), d, sizeof d);
  FAIL("ct-w8a8: static 4-bit input activations", d, MQ_ERR_UNSUPPORTED, "input activations");
  variant(g_base[B_CT_W4A8], d, sizeof d);
  st_set(d, L0 ".weight_scale", "shape", json_pack("[ii]", 32, 4));
  FAIL("ct-w4a8: weight_scale [32, 4] for N = 64", d, MQ_ERR_FORMAT, L0 ".weight_scale");
  variant(g_base[B_CT_W4A8], d, sizeof d);
  st_rewrite(d, NULL, L0 ".weight", int4_out_of_range);
  FAIL("ct-w4a8: int4 weight value 100 stored in I8", d, MQ_ERR_FORMAT, L0, "int4 range");
  /* non-finite scales: the layer's outputs would all be NaN / inf */
  variant(g_base[B_AWQ], d, sizeof d);
  st_rewrite(d, NULL, L0 ".scales", h16_nan);
  FAIL("awq: scales[0] NaN", d, MQ_ERR_FORMAT, L0, "not a finite number");
  variant(g_base[B_GPTQ], d, sizeof d);
  st_rewrite(d, NULL, L0 ".scales", h16_inf);
  FAIL("gptq: scales[3] inf", d, MQ_ERR_FORMAT, L0, "not a finite number");
  variant(g_base[B_CT_W4A8], d, sizeof d);
  st_rewrite(d, NULL, L0 ".weight_scale", h16_nan);
  FAIL("ct-w4a8: weight_scale[0] NaN", d, MQ_ERR_FORMAT, L0, "not a finite number");
  variant(ms, d, sizeof d);
  st_set(d, L0 ".deq_scale", "shape", json_pack("[ii]", 16, 4));
  FAIL("modelslim: deq_scale [16, 4] instead of [64]", d, MQ_ERR_FORMAT, L0 ".deq_scale");
  variant(ms, d, sizeof d);
  st_set(d, "model.layers.0.mlp.up_proj.weight_scale", "shape", json_pack("[ii]", 32, 4));
  FAIL("modelslim: weight_scale [32, 4] for N = 128", d, MQ_ERR_FORMAT, "model.layers.0.mlp.up_proj.weight_scale");
}

/* ---- 8. sharded checkpoints through the loader ---------------------------- */

static void test_shards(void) {
  char d[1200], p[1300];
  variant(g_base[B_FLOAT], d, sizeof d);
  write_text(d, "model.safetensors.index.json",
             "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\"}}");
  FAIL("index naming a missing shard", d, 0, "model-00001-of-00002.safetensors");
  variant(g_base[B_FLOAT], d, sizeof d);
  write_text(d, "model.safetensors.index.json",
             "{\"weight_map\": {\"model.embed_tokens.weight\": \"../model.safetensors\"}}");
  FAIL("index naming a shard outside the folder", d, MQ_ERR_FORMAT, "model.embed_tokens.weight",
       "inside the checkpoint directory");
  variant(g_base[B_FLOAT], d, sizeof d);
  write_text(d, "model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
  FAIL("index with a weight_map list", d, MQ_ERR_FORMAT, "weight_map");
  variant(g_base[B_FLOAT], d, sizeof d);
  snprintf(p, sizeof p, "%.900s/model.safetensors", d);
  unlink(p);
  FAIL("no safetensors file at all", d, 0, "safetensors");
}

int main(void) {
  snprintf(g_root, sizeof g_root, "%s/corrupt-%d", MQ_BUILD_DIR, (int)getpid());
  mqt_rm_tree(g_root);
  CHECK(mkdir(g_root, 0700) == 0);
  make_bases();
  if (mqt_fail) {
    mqt_rm_tree(g_root);
    return mqt_report("test_corrupt (setup)");
  }
  int before = g_cases;
  test_truncations();
  printf("truncations: %d cases\n", g_cases - before), before = g_cases;
  test_flips();
  printf("flipped bytes: %d cases\n", g_cases - before), before = g_cases;
  test_lies();
  printf("header lies: %d cases\n", g_cases - before), before = g_cases;
  test_missing();
  printf("missing tensors: %d cases\n", g_cases - before), before = g_cases;
  test_config();
  printf("config.json: %d cases\n", g_cases - before), before = g_cases;
  test_qconfig();
  printf("quantization metadata: %d cases\n", g_cases - before), before = g_cases;
  test_modelslim();
  printf("ModelSlim and activation-quantized formats: %d cases\n", g_cases - before), before = g_cases;
  test_shards();
  printf("sharded: %d cases\n", g_cases - before);
  printf("test_corrupt: %d corrupted-checkpoint cases over %d valid checkpoints\n", g_cases,
         N_BASE);
  mqt_rm_tree(g_root);
  return mqt_report("test_corrupt");
}
