#include "quant/qconfig.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/file.h"
#include "io/jsonutil.h"

#define MQ_QCFG_MAX_BYTES (64u << 20)

const char *mq_method_name(mq_method m) {
  switch (m) {
  case MQ_METHOD_NONE: return "none";
  case MQ_METHOD_AWQ: return "awq";
  case MQ_METHOD_GPTQ: return "gptq";
  case MQ_METHOD_AUTOROUND: return "auto-round";
  case MQ_METHOD_CTENSORS: return "compressed-tensors";
  case MQ_METHOD_MODELSLIM: return "modelslim";
  case MQ_METHOD_GGUF: return "gguf";
  }
  return "?";
}

static int method_from_name(const char *s, mq_method *out) {
  static const struct {
    const char *name;
    mq_method m;
  } k[] = {{"none", MQ_METHOD_NONE},           {"awq", MQ_METHOD_AWQ},
           {"gptq", MQ_METHOD_GPTQ},           {"gptqmodel", MQ_METHOD_GPTQ},
           {"auto-round", MQ_METHOD_AUTOROUND}, {"auto_round", MQ_METHOD_AUTOROUND},
           {"autoround", MQ_METHOD_AUTOROUND}, {"compressed-tensors", MQ_METHOD_CTENSORS},
           {"compressed_tensors", MQ_METHOD_CTENSORS}, {"modelslim", MQ_METHOD_MODELSLIM},
           {"gguf", MQ_METHOD_GGUF}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (strcasecmp(s, k[i].name) == 0) return *out = k[i].m, 0;
  return -1;
}

/* Global settings of the int-weight producers. */
static int read_weight_settings(mq_qconfig *q, mq_err *err) {
  const json_t *c = q->q;
  const char *w = q->source;
  long long bits, gs;
  int rc;
  /* AWQ legacy names: w_bit, q_group_size */
  const char *bkey = mq_json_has(c, "bits") ? "bits" : "w_bit";
  const char *gkey = mq_json_has(c, "group_size") ? "group_size" : "q_group_size";
  if ((rc = mq_json_int_opt(c, bkey, 1, 16, 4, &bits, w, err)) ||
      (rc = mq_json_int_opt(c, gkey, -1, 1 << 20, 128, &gs, w, err)) ||
      (rc = mq_json_bool_opt(c, "sym", 1, &q->sym, w, err)) ||
      (rc = mq_json_bool_opt(c, "desc_act", 0, &q->desc_act, w, err)) ||
      (rc = mq_json_bool_opt(c, "zero_point", 1, &q->zero_point, w, err)) ||
      (rc = mq_json_bool_opt(c, "lm_head", 0, &q->lm_head, w, err)))
    return rc;
  if (gs == 0) return mq_errf(err, MQ_ERR_FORMAT, "%s: group_size 0 is invalid", w);
  q->bits = (int)bits;
  q->group_size = (int)gs;
  return MQ_OK;
}

static int read_gptq(mq_qconfig *q, mq_err *err) {
  const char *fmt = NULL;
  int rc = mq_json_str_opt(q->q, "checkpoint_format", NULL, &fmt, q->source, err);
  if (rc == MQ_OK && !fmt) rc = mq_json_str_opt(q->q, "format", "gptq", &fmt, q->source, err);
  if (rc) return rc;
  int marlin = 0;
  if ((rc = mq_json_bool_opt(q->q, "is_marlin_format", 0, &marlin, q->source, err))) return rc;
  if (marlin) fmt = "marlin";
  if (strcasecmp(fmt, "gptq") == 0) q->gptq_v2 = 0;
  else if (strcasecmp(fmt, "gptq_v2") == 0) q->gptq_v2 = 1;
  else
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: GPTQ checkpoint_format \"%s\" is not supported (gptq and gptq_v2 are)",
                   q->source, fmt);
  return MQ_OK;
}

static int read_awq(mq_qconfig *q, mq_err *err) {
  const char *ver;
  int rc = mq_json_str_opt(q->q, "version", "gemm", &ver, q->source, err);
  if (rc) return rc;
  if (strcasecmp(ver, "gemm") != 0)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: AWQ version \"%s\" is not supported (the GEMM layout is)", q->source, ver);
  if (q->bits != 4)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: AWQ with %d bits is not supported (4 is)",
                   q->source, q->bits);
  return MQ_OK;
}

static int read_autoround(mq_qconfig *q, mq_err *err) {
  const char *pf, *dt;
  int rc = mq_json_str_opt(q->q, "packing_format", "auto_round:auto_gptq", &pf, q->source, err);
  if (rc == MQ_OK) rc = mq_json_str_opt(q->q, "data_type", "int", &dt, q->source, err);
  if (rc) return rc;
  if (strcmp(dt, "int") != 0)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: AutoRound data_type \"%s\" is not supported (int is)", q->source, dt);
  static const char *k_ok[] = {"auto_round:auto_gptq", "auto_round", "auto_round:gptqmodel",
                               "auto_round:auto_awq"};
  for (size_t i = 0; i < sizeof k_ok / sizeof k_ok[0]; i++)
    if (strcmp(pf, k_ok[i]) == 0) {
      snprintf(q->packing, sizeof q->packing, "%s", pf);
      return MQ_OK;
    }
  return mq_errf(err, MQ_ERR_UNSUPPORTED,
                 "%s: AutoRound packing_format \"%s\" is not supported (auto_round:auto_gptq, "
                 "auto_round, auto_round:gptqmodel, auto_round:auto_awq are)",
                 q->source, pf);
}

/* Find the settings: ModelSlim description first, then config.json, then
 * legacy side files. Sets q->q (new reference) and q->source, or leaves
 * q->q NULL for an unquantized checkpoint. */
static int locate(const char *dir, const json_t *config, mq_qconfig *q, mq_err *err) {
  char path[PATH_MAX];
  int rc;
  if (mq_path_join(path, sizeof path, dir, "quant_model_description.json") == 0 &&
      mq_file_exists(path)) {
    json_t *d;
    if ((rc = mq_json_load_file(path, MQ_QCFG_MAX_BYTES, &d, err))) return rc;
    if (!json_is_object(d)) {
      json_decref(d);
      return mq_errf(err, MQ_ERR_FORMAT, "%s: not a JSON object", path);
    }
    q->q = d;
    q->method = MQ_METHOD_MODELSLIM;
    snprintf(q->source, sizeof q->source, "%s", path);
    return MQ_OK;
  }
  json_t *qc = json_object_get(config, "quantization_config");
  if (!qc || json_is_null(qc)) qc = json_object_get(config, "compression_config");
  if (qc && !json_is_null(qc)) {
    if (!json_is_object(qc))
      return mq_errf(err, MQ_ERR_FORMAT, "%s/config.json: quantization_config is not an object", dir);
    q->q = json_incref(qc);
    snprintf(q->source, sizeof q->source, "%s/config.json quantization_config", dir);
    return MQ_OK;
  }
  static const char *k_side[] = {"quantize_config.json", "quant_config.json",
                                 "quantization_config.json"};
  for (size_t i = 0; i < sizeof k_side / sizeof k_side[0]; i++) {
    if (mq_path_join(path, sizeof path, dir, k_side[i]) != 0 || !mq_file_exists(path)) continue;
    json_t *d;
    if ((rc = mq_json_load_file(path, MQ_QCFG_MAX_BYTES, &d, err))) return rc;
    if (!json_is_object(d)) {
      json_decref(d);
      return mq_errf(err, MQ_ERR_FORMAT, "%s: not a JSON object", path);
    }
    q->q = d;
    snprintf(q->source, sizeof q->source, "%s", path);
    /* Legacy files often lack quant_method: AutoGPTQ's quantize_config.json
     * is GPTQ; AutoAWQ's quant_config.json (w_bit, version) is AWQ. */
    if (!mq_json_has(d, "quant_method"))
      q->method = (i == 0 || !mq_json_has(d, "w_bit")) ? MQ_METHOD_GPTQ : MQ_METHOD_AWQ;
    if (i == 1 && mq_json_has(d, "w_bit")) q->method = MQ_METHOD_AWQ;
    return MQ_OK;
  }
  return MQ_OK;
}

int mq_qconfig_detect(const char *dir, const json_t *config, const char *override,
                      mq_qconfig *q, mq_err *err) {
  memset(q, 0, sizeof *q);
  int rc = locate(dir, config, q, err);
  if (rc) return rc;
  if (q->q && q->method == MQ_METHOD_NONE) {
    const char *qm;
    if ((rc = mq_json_str_opt(q->q, "quant_method", NULL, &qm, q->source, err))) goto fail;
    if (!qm) {
      rc = mq_errf(err, MQ_ERR_FORMAT, "%s: no \"quant_method\"", q->source);
      goto fail;
    }
    if (method_from_name(qm, &q->method) != 0 || q->method == MQ_METHOD_NONE) {
      rc = mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: quant_method \"%s\" is not supported (awq, gptq, auto-round, "
                   "compressed-tensors and ModelSlim descriptions are)",
                   q->source, qm);
      goto fail;
    }
  }
  if (override) {
    mq_method want;
    if (method_from_name(override, &want) != 0) {
      rc = mq_errf(err, MQ_ERR_ARG, "unknown quantization method \"%s\" (none, awq, gptq, "
                   "auto-round, compressed-tensors, modelslim)", override);
      goto fail;
    }
    if (want != q->method) {
      rc = mq_errf(err, MQ_ERR_ARG,
                   "Quantization method specified in the model config (%s) does not match the "
                   "quantization method specified in the `quantization` argument (%s)",
                   mq_method_name(q->method), override);
      goto fail;
    }
  }
  switch (q->method) {
  case MQ_METHOD_AWQ:
    if (!(rc = read_weight_settings(q, err))) rc = read_awq(q, err);
    break;
  case MQ_METHOD_GPTQ:
    if (!(rc = read_weight_settings(q, err))) rc = read_gptq(q, err);
    break;
  case MQ_METHOD_AUTOROUND:
    if (!(rc = read_weight_settings(q, err))) rc = read_autoround(q, err);
    break;
  default: break;
  }
  if (rc == MQ_OK) return MQ_OK;
fail:
  mq_qconfig_free(q);
  return rc;
}

void mq_qconfig_free(mq_qconfig *q) {
  json_decref(q->q);
  q->q = NULL;
}
