/* Test helper for adapter tests: tensors written to a fresh checkpoint
 * folder and opened as a bare model (checkpoint only, no config), so a
 * format adapter can be run on one layer. Include after test.h. */
#ifndef MQ_TEST_ADAPTER_CKPT_H
#define MQ_TEST_ADAPTER_CKPT_H

#include <sys/stat.h>
#include <unistd.h>

#include "io/st_write.h"
#include "model/model.h"

static char g_dir[256];

/* file: the safetensors file name the producer uses */
static struct mq_model *open_model_as(mq_st_writer *w, const char *file) {
  static int seq;
  snprintf(g_dir, sizeof g_dir, "%s/ad-%d-%d", MQ_BUILD_DIR, (int)getpid(), seq++);
  mkdir(g_dir, 0777);
  char p[300];
  snprintf(p, sizeof p, "%s/%s", g_dir, file);
  mq_err err;
  CHECK(mq_st_writer_save(w, p, &err) == MQ_OK);
  mq_st_writer_free(w);
  struct mq_model *m = calloc(1, sizeof *m);
  CHECK(mq_ckpt_open(g_dir, &m->ckpt, &err) == MQ_OK);
  return m;
}

/* Close the model and remove its folder. */
static void close_model(struct mq_model *m) {
  for (int i = 0; i < m->ckpt.n_files; i++) unlink(m->ckpt.files[i].path);
  mq_model_free(m);
  rmdir(g_dir);
}

static void add(mq_st_writer *w, const char *name, mq_dtype dt, int nd, int64_t d0, int64_t d1,
                const void *data) {
  int64_t sh[2] = {d0, d1};
  mq_err err;
  CHECK(mq_st_writer_add(w, name, dt, nd, sh, data, &err) == MQ_OK);
}

#endif
