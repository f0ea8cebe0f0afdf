/* Helpers shared by the libFuzzer targets: a private scratch folder (on
 * /dev/shm when there is one: some targets write a file per input), file
 * writing, and a check that aborts on a broken invariant so libFuzzer
 * records the input as a crash. */
#ifndef MQ_FUZZ_UTIL_H
#define MQ_FUZZ_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mixq.h"

/* An invariant of the API that must hold for any input. */
#define MQF_REQUIRE(cond)                                                               \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);     \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

/* A failed call must say why: a nonzero status matching err.code and a
 * message. MQF_VERBOSE=1 prints the message (to check what seeds reach). */
#define MQF_REQUIRE_ERR(rc, err)                                                 \
  do {                                                                           \
    MQF_REQUIRE((rc) != MQ_OK && (err).code == (rc) && (err).msg[0] != 0);       \
    if (getenv("MQF_VERBOSE")) fprintf(stderr, "[%s:%d] %s\n", __FILE__, __LINE__, (err).msg); \
  } while (0)

static inline void mqf_rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[4096];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (strlen(dir) + strlen(de->d_name) + 2 > sizeof p) continue;
    snprintf(p, sizeof p, "%.2000s/%.255s", dir, de->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) mqf_rm_tree(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static char mqf_root[256];
static inline void mqf_cleanup(void) {
  if (mqf_root[0]) mqf_rm_tree(mqf_root);
}

/* A fresh folder under this process's scratch root; name must be unique. */
static inline const char *mqf_dir(const char *name, char *buf, size_t cap) {
  if (!mqf_root[0]) {
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(mqf_root, sizeof mqf_root, "%s/mqfuzz_XXXXXX", base);
    if (!mkdtemp(mqf_root)) {
      perror("mkdtemp");
      abort();
    }
    atexit(mqf_cleanup);
  }
  snprintf(buf, cap, "%s/%s", mqf_root, name);
  mkdir(buf, 0700);
  return buf;
}

static inline void mqf_write(const char *dir, const char *name, const void *data, size_t n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n)) {
    perror(p);
    abort();
  }
  fclose(f);
}

/* Copy src_dir/name to dst_dir/name. */
static inline void mqf_copy(const char *src_dir, const char *dst_dir, const char *name) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", src_dir, name);
  FILE *f = fopen(p, "rb");
  if (!f) {
    perror(p);
    abort();
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) abort();
  fclose(f);
  mqf_write(dst_dir, name, buf, (size_t)n);
  free(buf);
}

/* The linear modules a llama-family model plans, plus names that exercise
 * the matchers (MoE experts, a router, an odd module). */
static const char *const mqf_layer_names[] = {
    "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
    "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj",
    "model.layers.0.mlp.gate_proj",    "model.layers.0.mlp.up_proj",
    "model.layers.0.mlp.down_proj",    "model.layers.1.self_attn.q_proj",
    "model.layers.31.mlp.down_proj",   "model.layers.0.mlp.experts.7.gate_proj",
    "model.layers.0.mlp.gate",         "model.layers.3.block_sparse_moe.experts.0.w2",
    "lm_head",                         "model.embed_tokens",
};
#define MQF_N_LAYER_NAMES ((int)(sizeof mqf_layer_names / sizeof mqf_layer_names[0]))

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
static inline int mqf_utf8_ok(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    int len = c >= 0xC2 && c <= 0xDF ? 2 : (c >= 0xE0 && c <= 0xEF ? 3 : (c >= 0xF0 && c <= 0xF4 ? 4 : 0));
    if (!len || i + (size_t)len > n) return 0;
    for (int k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[i + 1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[i + 1] > 0x9F) return 0; /* surrogate */
    if (c == 0xF0 && s[i + 1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[i + 1] > 0x8F) return 0; /* > U+10FFFF */
    i += (size_t)len;
  }
  return 1;
}

/* Encode text with t, then decode the ids in one go and streaming; both
 * must be well-formed UTF-8 and agree. Returns the decoded text (caller
 * frees) in *out when out is not NULL. */
static inline void mqf_tok_roundtrip(const mq_tokenizer *t, const char *text, size_t len, int add_special,
                              char **out, size_t *out_len) {
  int32_t *ids = NULL;
  int n = 0;
  mq_err err = {0};
  if (out) *out = NULL;
  int rc = mq_tokenizer_encode(t, text, len, add_special, &ids, &n, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    return;
  }
  int nv = mq_tokenizer_n_vocab(t);
  MQF_REQUIRE(n >= 0 && (n == 0 || ids));
  for (int i = 0; i < n; i++) MQF_REQUIRE(ids[i] >= 0 && ids[i] < nv);
  static const int k_flags[3] = {0, MQ_DECODE_SKIP_SPECIAL, MQ_DECODE_CONTINUE};
  for (int f = 0; f < 3; f++) {
    char *dec = NULL;
    size_t dl = 0;
    rc = mq_tokenizer_decode(t, ids, n, k_flags[f], &dec, &dl, &err);
    if (rc != MQ_OK) {
      MQF_REQUIRE_ERR(rc, err);
      continue;
    }
    MQF_REQUIRE(dec && dec[dl] == 0 && mqf_utf8_ok((const unsigned char *)dec, dl));
    /* streaming gives the same bytes */
    mq_detok *d = NULL;
    if (mq_detok_new(t, k_flags[f], &d, &err) == MQ_OK) {
      char *acc = malloc(dl + 64);
      size_t al = 0, cap = dl + 64;
      MQF_REQUIRE(acc);
      for (int i = 0; i <= n; i++) {
        const char *piece = NULL;
        size_t pl = 0;
        if (i < n) MQF_REQUIRE(mq_detok_push(d, ids[i], &piece, &pl, &err) == MQ_OK);
        else mq_detok_flush(d, &piece, &pl);
        MQF_REQUIRE(mqf_utf8_ok((const unsigned char *)piece, pl));
        if (al + pl > cap) {
          cap = 2 * (al + pl);
          acc = realloc(acc, cap);
          MQF_REQUIRE(acc);
        }
        if (pl) memcpy(acc + al, piece, pl);
        al += pl;
      }
      MQF_REQUIRE(al == dl && memcmp(acc, dec, dl) == 0);
      free(acc);
      mq_detok_free(d);
    }
    if (f == 0 && out) {
      *out = dec;
      if (out_len) *out_len = dl;
    } else {
      free(dec);
    }
  }
  free(ids);
}

#endif
