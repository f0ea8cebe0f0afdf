/* Minimal test harness: CHECK macros count failures; main returns nonzero if
 * any check failed, 77 (ctest SKIP_RETURN_CODE) when a test must skip. */
#ifndef MQ_TEST_H
#define MQ_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

static int mqt_fail, mqt_pass;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (cond) mqt_pass++;                                                    \
    else {                                                                   \
      mqt_fail++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_MSG(cond, ...)                                     \
  do {                                                           \
    if (cond) mqt_pass++;                                        \
    else {                                                       \
      mqt_fail++;                                                \
      fprintf(stderr, "%s:%d: CHECK failed: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                              \
      fputc('\n', stderr);                                       \
    }                                                            \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
  do {                                                                                        \
    double a_ = (a), b_ = (b);                                                                \
    CHECK_MSG(fabs(a_ - b_) <= (tol), "%s = %.9g vs %s = %.9g (tol %g)", #a, a_, #b, b_,      \
              (double)(tol));                                                                 \
  } while (0)

#define TEST_SKIP(...)          \
  do {                          \
    printf("SKIP: ");           \
    printf(__VA_ARGS__);        \
    printf("\n");               \
    exit(77);                   \
  } while (0)

/* Remove a file or a directory tree (test output folders); errors ignored. */
static inline void mqt_rm_tree(const char *path) { mq_rm_tree(path); }

static inline int mqt_report(const char *name) {
  printf("%s: %d checks passed, %d failed\n", name, mqt_pass, mqt_fail);
  return mqt_fail ? 1 : 0;
}

/* Deterministic random numbers for test inputs (never all zeros). */
static uint64_t mqt_rng_state = 0x243F6A8885A308D3ull;
static inline uint64_t mqt_rand(void) {
  uint64_t x = mqt_rng_state;
  x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
  mqt_rng_state = x;
  return x * 2685821657736338717ull;
}
static inline float mqt_randf(float lo, float hi) {
  return lo + (hi - lo) * (float)((mqt_rand() >> 40) / 16777216.0);
}

/* Path of a file under the shared fixtures folder (MQ_SHARED_DIR), or NULL
 * when the folder is absent. */
static inline const char *mqt_shared(const char *rel, char *buf, size_t cap) {
  const char *root = getenv("MQ_SHARED_DIR");
  if (!root) root = MQ_SHARED_DIR_DEFAULT;
  snprintf(buf, cap, "%s/%s", root, rel);
  FILE *f = fopen(buf, "rb");
  if (!f) return NULL;
  fclose(f);
  return buf;
}

/* Read a whole binary file; caller frees. NULL on failure. */
static inline void *mqt_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (len) *len = (size_t)n;
  return buf;
}

#endif
