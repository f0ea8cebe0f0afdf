/* Export a loaded model as an unquantized Hugging Face checkpoint: every
 * quantized linear dequantized (F32 weight, F32 bias), everything else
 * copied byte for byte. The inverse direction of the quantizing writer, for
 * users who need float weights and for tests ("the float model run on the
 * dequantized weights"). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/file.h"
#include "io/st_write.h"
#include "kernels/linear_x8.h"
#include "model/model.h"

/* 1 if tensor name belongs to a linear that is written dequantized. */
static int replaced(const struct mq_model *m, const char *name) {
  for (int i = 0; i < m->n_linears; i++) {
    if (!strcmp(m->linears[i].scheme, "FLOAT")) continue;
    size_t pl = strlen(m->linears[i].name);
    if (!strncmp(name, m->linears[i].name, pl) && name[pl] == '.' && !strchr(name + pl + 1, '.'))
      return 1;
  }
  return 0;
}

int mq_model_export_float(const mq_model *m, const char *dst, mq_err *err) {
  if (mkdir(dst, 0777) != 0 && errno != EEXIST)
    return mq_errf(err, MQ_ERR_IO, "%s: cannot create directory: %s", dst, strerror(errno));
  mq_st_writer *w = mq_st_writer_new();
  if (!w) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  int rc = mq_st_writer_meta(w, "format", "pt", err);
  for (int i = 0; i < m->ckpt.n_all && rc == MQ_OK; i++) {
    const mq_tensor *t = m->ckpt.all[i];
    if (replaced(m, t->name)) continue;
    rc = mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, err);
  }
  float *buf = NULL;
  for (int i = 0; i < m->n_linears && rc == MQ_OK; i++) {
    const mq_linear_info *li = &m->linears[i];
    const mq_linear *l = m->linear_ptr[i];
    if (!strcmp(li->scheme, "FLOAT")) continue;
    float *nb = realloc(buf, (size_t)l->n_out * l->n_in * sizeof(float));
    if (!nb) {
      rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory exporting %s", li->name);
      break;
    }
    buf = nb;
    for (int n = 0; n < l->n_out; n++) mq_linear_dequant_row(l, n, buf + (size_t)n * l->n_in);
    char name[320];
    int64_t shape[2] = {l->n_out, l->n_in};
    snprintf(name, sizeof name, "%s.weight", li->name);
    rc = mq_st_writer_add(w, name, MQ_DTYPE_F32, 2, shape, buf, err);
    const float *bias = l->bias;
    float *folded = NULL;
    if (l->act == MQ_ACT_INT8_STATIC) {
      /* ModelSlim W8A8 folds the float bias into quant_bias =
       * bias / deq - offset * sum_k W_q: unfold it */
      if (!(folded = malloc((size_t)l->n_out * sizeof(float)))) {
        rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
        break;
      }
      for (int n = 0; n < l->n_out; n++) {
        long long sw = 0;
        for (int k = 0; k < l->n_in; k++)
          sw += l->q.x8 ? mq_x8_s8_code(l, n, k) : (int8_t)l->q.data[(size_t)n * l->n_in + k];
        folded[n] = (float)(((double)l->qbias[n] + (double)l->in_offset * (double)sw) * l->deq[n]);
      }
      bias = folded;
    }
    if (rc == MQ_OK && bias) {
      snprintf(name, sizeof name, "%s.bias", li->name);
      rc = mq_st_writer_add(w, name, MQ_DTYPE_F32, 1, shape, bias, err);
    }
    free(folded);
  }
  free(buf);
  char path[PATH_MAX];
  if (rc == MQ_OK && mq_path_join(path, sizeof path, dst, "model.safetensors") == 0)
    rc = mq_st_writer_save(w, path, err);
  mq_st_writer_free(w);
  if (rc) return rc;
  json_t *cfg = json_deep_copy(m->config);
  if (!cfg) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  json_object_del(cfg, "quantization_config");
  json_object_del(cfg, "compression_config");
  if (mq_path_join(path, sizeof path, dst, "config.json") != 0 ||
      json_dump_file(cfg, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
    rc = mq_errf(err, MQ_ERR_IO, "%s: cannot write config.json", dst);
  json_decref(cfg);
  return rc;
}
