/* Checkpoint directories: single file, sharded with an index, broken indexes
 * (missing shard, tensor not in its shard, shard names leaving the folder),
 * duplicate tensors across shards, empty folders and loose files. Every case
 * is written with mq_st_writer into its own temporary directory. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "io/st_write.h"
#include "test.h"

static char g_root[] = "/tmp/mq_ckpt_XXXXXX";

/* Remove dir and the plain files in it (the tests make nothing deeper). */
static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[1024];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_dir(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* A fresh subfolder of the test root. */
static const char *mk_case(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", g_root, name);
  if (mkdir(buf, 0700) != 0) CHECK_MSG(0, "mkdir %s failed", buf);
  return buf;
}

static void write_text(const char *dir, const char *name, const char *text) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  CHECK_MSG(f != NULL, "cannot create %s", p);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* Tensor contents are a function of the name, so any reader can verify them:
 * F32 [2, n] with values seeded from the name's hash. */
static void tensor_values(const char *name, int n, float *out) {
  uint32_t h = 2166136261u;
  for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  for (int i = 0; i < 2 * n; i++) out[i] = (float)(h % 1000) + 0.25f * (float)(i + 1);
}

/* Write dir/file holding the F32 tensors named in the NULL-terminated list. */
static void write_shard(const char *dir, const char *file, ...) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  mq_st_writer *w = mq_st_writer_new();
  mq_err err = {0};
  va_list ap;
  va_start(ap, file);
  const char *name;
  int n = 3;
  while ((name = va_arg(ap, const char *))) {
    float v[2 * 8];
    int64_t shape[2] = {2, n};
    tensor_values(name, n, v);
    CHECK(mq_st_writer_add(w, name, MQ_DTYPE_F32, 2, shape, v, &err) == MQ_OK);
    n = n % 8 + 1;
  }
  va_end(ap);
  CHECK(mq_st_writer_meta(w, "format", "pt", &err) == MQ_OK);
  CHECK_MSG(mq_st_writer_save(w, p, &err) == MQ_OK, "save %s: %s", p, err.msg);
  mq_st_writer_free(w);
}

/* t holds the values tensor_values gives for its name, and lives in file. */
static void check_tensor(const mq_ckpt *c, const char *name, const char *file) {
  const mq_tensor *t = mq_ckpt_find(c, name);
  CHECK_MSG(t != NULL, "tensor %s not found", name);
  if (!t) return;
  CHECK(strcmp(t->name, name) == 0);
  CHECK(t->dtype == MQ_DTYPE_F32 && t->n_dims == 2 && t->shape[0] == 2);
  int n = (int)t->shape[1];
  CHECK(n >= 1 && n <= 8 && t->nbytes == (uint64_t)(8 * n));
  if (n >= 1 && n <= 8) {
    float want[16], got[16];
    tensor_values(name, n, want);
    memcpy(got, t->data, (size_t)(8 * n)); /* data may be unaligned */
    CHECK_MSG(memcmp(got, want, (size_t)(8 * n)) == 0, "%s: values differ", name);
  }
  size_t lf = strlen(t->file), lw = strlen(file);
  CHECK_MSG(lf > lw && strcmp(t->file + lf - lw, file) == 0 && t->file[lf - lw - 1] == '/',
            "%s: in %s, expected %s", name, t->file, file);
}

/* Open must fail with code and a message holding m1 and m2 (either may be NULL). */
static void check_open_fails(const char *what, const char *dir, int code, const char *m1,
                             const char *m2) {
  mq_ckpt c;
  mq_err err = {0};
  int rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == code, "%s: rc %d, want %d (%s)", what, rc, code, err.msg);
  if (getenv("MQT_VERBOSE")) printf("%-30s %s\n", what, err.msg);
  if (rc == MQ_OK) {
    mq_ckpt_close(&c);
    return;
  }
  CHECK_MSG(err.code == rc, "%s: err.code %d", what, err.code);
  CHECK_MSG(!m1 || strstr(err.msg, m1), "%s: '%s' not in: %s", what, m1, err.msg);
  CHECK_MSG(!m2 || strstr(err.msg, m2), "%s: '%s' not in: %s", what, m2, err.msg);
  CHECK_MSG(c.n_files == 0 && c.files == NULL && c.dir == NULL, "%s: out not reset", what);
}

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define INDEX "model.safetensors.index.json"

/* (a) one model.safetensors */
static void test_single(void) {
  char dir[512];
  mk_case("single", dir, sizeof dir);
  write_shard(dir, "model.safetensors", "embed.weight", "lm_head.weight", "norm.weight", NULL);
  mq_ckpt c;
  mq_err err = {0};
  int rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK, "single: %s", err.msg);
  if (rc != MQ_OK) return;
  CHECK(c.n_files == 1 && c.n_all == 3);
  check_tensor(&c, "embed.weight", "model.safetensors");
  check_tensor(&c, "lm_head.weight", "model.safetensors");
  check_tensor(&c, "norm.weight", "model.safetensors");
  CHECK(mq_ckpt_find(&c, "missing.weight") == NULL);
  CHECK(mq_ckpt_find(&c, "embed") == NULL);
  CHECK(strcmp(c.dir, dir) == 0);
  mq_ckpt_close(&c);

  /* model.safetensors wins over other loose files; ModelSlim's name works alone */
  write_shard(dir, "extra.safetensors", "extra.weight", NULL);
  rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK && c.n_files == 1 && !mq_ckpt_find(&c, "extra.weight"),
            "model.safetensors should be preferred (%s)", err.msg);
  if (rc == MQ_OK) mq_ckpt_close(&c);

  mk_case("modelslim", dir, sizeof dir);
  write_shard(dir, "quant_model_weights.safetensors", "a.weight", NULL);
  rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK, "quant_model_weights.safetensors: %s", err.msg);
  if (rc == MQ_OK) {
    check_tensor(&c, "a.weight", "quant_model_weights.safetensors");
    mq_ckpt_close(&c);
  }
}

/* (b) two shards and an index */
static void test_sharded(void) {
  char dir[512];
  mk_case("sharded", dir, sizeof dir);
  write_shard(dir, SHARD1, "layers.0.q.weight", "layers.0.k.weight", "embed.weight", NULL);
  write_shard(dir, SHARD2, "layers.1.q.weight", "lm_head.weight", NULL);
  write_text(dir, INDEX,
             "{\"metadata\": {\"total_size\": 0},\n \"weight_map\": {\n"
             "  \"embed.weight\": \"" SHARD1 "\",\n"
             "  \"layers.0.k.weight\": \"" SHARD1 "\",\n"
             "  \"layers.0.q.weight\": \"" SHARD1 "\",\n"
             "  \"layers.1.q.weight\": \"" SHARD2 "\",\n"
             "  \"lm_head.weight\": \"" SHARD2 "\"\n }\n}\n");
  /* a stray file the index does not name is ignored */
  write_shard(dir, "stray.safetensors", "stray.weight", NULL);
  mq_ckpt c;
  mq_err err = {0};
  int rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK, "sharded: %s", err.msg);
  if (rc != MQ_OK) return;
  CHECK(c.n_files == 2 && c.n_all == 5);
  check_tensor(&c, "embed.weight", SHARD1);
  check_tensor(&c, "layers.0.q.weight", SHARD1);
  check_tensor(&c, "layers.0.k.weight", SHARD1);
  check_tensor(&c, "layers.1.q.weight", SHARD2);
  check_tensor(&c, "lm_head.weight", SHARD2);
  CHECK(mq_ckpt_find(&c, "stray.weight") == NULL);
  mq_ckpt_close(&c);

  /* any other *.safetensors.index.json name, index without "metadata" */
  mk_case("other-index", dir, sizeof dir);
  write_shard(dir, "w-1.safetensors", "a", NULL);
  write_shard(dir, "w-2.safetensors", "b", NULL);
  write_text(dir, "weights.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"w-1.safetensors\", \"b\": \"w-2.safetensors\"}}");
  rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK, "other index name: %s", err.msg);
  if (rc == MQ_OK) {
    check_tensor(&c, "a", "w-1.safetensors");
    check_tensor(&c, "b", "w-2.safetensors");
    mq_ckpt_close(&c);
  }
}

/* (c)-(f): broken indexes */
static void test_bad_index(void) {
  char dir[512];

  mk_case("missing-shard", dir, sizeof dir);
  write_shard(dir, SHARD1, "a", NULL);
  write_text(dir, INDEX, "{\"weight_map\": {\"a\": \"" SHARD1 "\", \"b\": \"" SHARD2 "\"}}");
  check_open_fails("(c) missing shard", dir, MQ_ERR_IO, SHARD2, NULL);

  mk_case("not-in-shard", dir, sizeof dir);
  write_shard(dir, SHARD1, "a", NULL);
  write_shard(dir, SHARD2, "b", NULL);
  write_text(dir, INDEX,
             "{\"weight_map\": {\"a\": \"" SHARD1 "\", \"b\": \"" SHARD2 "\","
             " \"ghost.weight\": \"" SHARD2 "\"}}");
  check_open_fails("(d) tensor not in its shard", dir, MQ_ERR_FORMAT, "'ghost.weight'", SHARD2);

  mk_case("wrong-shard", dir, sizeof dir);
  write_shard(dir, SHARD1, "a", NULL);
  write_shard(dir, SHARD2, "b", NULL);
  write_text(dir, INDEX, "{\"weight_map\": {\"a\": \"" SHARD2 "\", \"b\": \"" SHARD1 "\"}}");
  check_open_fails("(d) tensor in the other shard", dir, MQ_ERR_FORMAT, "not found there", NULL);

  /* (e) shard names leaving the folder: a real file sits one level up */
  mk_case("escape", dir, sizeof dir);
  write_shard(g_root, "outside.safetensors", "a", NULL);
  static const char *k_evil[] = {"../outside.safetensors", "sub/x.safetensors",
                                 "/tmp/x.safetensors",     "..",
                                 ".",                       "",
                                 "sub\\\\x.safetensors"};
  for (size_t i = 0; i < sizeof k_evil / sizeof k_evil[0]; i++) {
    char idx[256], what[128];
    snprintf(idx, sizeof idx, "{\"weight_map\": {\"a\": \"%s\"}}", k_evil[i]);
    write_text(dir, INDEX, idx);
    snprintf(what, sizeof what, "(e) shard name \"%s\"", k_evil[i]);
    check_open_fails(what, dir, MQ_ERR_FORMAT, "'a'", "inside the checkpoint directory");
  }
  write_text(dir, INDEX, "{\"weight_map\": {\"a\": 3}}");
  check_open_fails("non-string shard name", dir, MQ_ERR_FORMAT, "'a'", NULL);

  /* (f) one tensor in two shards */
  mk_case("dup", dir, sizeof dir);
  write_shard(dir, SHARD1, "a", "shared.weight", NULL);
  write_shard(dir, SHARD2, "b", "shared.weight", NULL);
  write_text(dir, INDEX,
             "{\"weight_map\": {\"a\": \"" SHARD1 "\", \"b\": \"" SHARD2 "\","
             " \"shared.weight\": \"" SHARD1 "\"}}");
  check_open_fails("(f) tensor in two shards", dir, MQ_ERR_FORMAT, SHARD1, SHARD2);
  check_open_fails("(f) ... names it", dir, MQ_ERR_FORMAT, "'shared.weight'", NULL);

  /* malformed index files */
  mk_case("bad-json", dir, sizeof dir);
  write_shard(dir, SHARD1, "a", NULL);
  write_text(dir, INDEX, "{\"weight_map\": {\"a\": \"" SHARD1 "\"");
  check_open_fails("index: invalid JSON", dir, MQ_ERR_FORMAT, INDEX, "JSON");
  write_text(dir, INDEX, "{\"metadata\": {}}");
  check_open_fails("index: no weight_map", dir, MQ_ERR_FORMAT, INDEX, "weight_map");
  write_text(dir, INDEX, "[\"" SHARD1 "\"]");
  check_open_fails("index: array", dir, MQ_ERR_FORMAT, INDEX, "weight_map");
  write_text(dir, INDEX, "{\"weight_map\": []}");
  check_open_fails("index: weight_map array", dir, MQ_ERR_FORMAT, INDEX, "weight_map");
  write_text(dir, INDEX,
             "{\"weight_map\": {\"a\": \"" SHARD1 "\", \"a\": \"" SHARD1 "\"}}");
  check_open_fails("index: duplicate key", dir, MQ_ERR_FORMAT, INDEX, "duplicate");

  /* a shard that is not valid safetensors: the error names the shard */
  mk_case("bad-shard", dir, sizeof dir);
  write_text(dir, SHARD1, "not a safetensors file");
  write_text(dir, INDEX, "{\"weight_map\": {\"a\": \"" SHARD1 "\"}}");
  check_open_fails("corrupt shard", dir, MQ_ERR_FORMAT, SHARD1, NULL);
}

/* (g) nothing to load; (h) loose files without an index */
static void test_loose(void) {
  char dir[512];
  mk_case("empty", dir, sizeof dir);
  check_open_fails("(g) empty folder", dir, MQ_ERR_IO, "no *.safetensors", NULL);
  write_text(dir, "config.json", "{}");
  write_text(dir, "model.bin", "xx");
  check_open_fails("(g) no safetensors", dir, MQ_ERR_IO, "no *.safetensors", dir);
  check_open_fails("missing folder", "/tmp/mq_ckpt_no_such_dir_", MQ_ERR_IO,
                   "mq_ckpt_no_such_dir_", NULL);

  mk_case("loose", dir, sizeof dir);
  write_shard(dir, "part-b.safetensors", "b.weight", "b.bias", NULL);
  write_shard(dir, "part-a.safetensors", "a.weight", NULL);
  write_text(dir, "config.json", "{}");
  mq_ckpt c;
  mq_err err = {0};
  int rc = mq_ckpt_open(dir, &c, &err);
  CHECK_MSG(rc == MQ_OK, "(h) loose files: %s", err.msg);
  if (rc == MQ_OK) {
    CHECK(c.n_files == 2 && c.n_all == 3);
    check_tensor(&c, "a.weight", "part-a.safetensors");
    check_tensor(&c, "b.weight", "part-b.safetensors");
    check_tensor(&c, "b.bias", "part-b.safetensors");
    mq_ckpt_close(&c);
  }

  /* loose files sharing a tensor name */
  write_shard(dir, "part-c.safetensors", "a.weight", NULL);
  check_open_fails("loose duplicate", dir, MQ_ERR_FORMAT, "part-a.safetensors",
                   "part-c.safetensors");
}

int main(void) {
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    return 1;
  }
  test_single();
  test_sharded();
  test_bad_index();
  test_loose();
  rm_dir(g_root);
  return mqt_report("test_checkpoint");
}
