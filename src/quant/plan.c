/* Per-layer scheme resolution for each method (mix-bits). */
#include "quant/plan.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "io/jsonutil.h"
#include "quant/match.h"

static void set_float(mq_lspec *s) {
  memset(s, 0, sizeof *s);
  s->fmt = MQ_FMT_FLOAT;
  snprintf(s->scheme, sizeof s->scheme, "FLOAT");
  s->bits = 16;
  s->group_size = -1;
  s->sym = 1;
}

static void set_wna16(mq_lspec *s, mq_fmt fmt, int bits, int gs, int sym) {
  memset(s, 0, sizeof *s);
  s->fmt = fmt;
  s->bits = bits;
  s->group_size = gs;
  s->sym = sym;
  snprintf(s->scheme, sizeof s->scheme, "W%dA16", bits);
}

static int check_bits(const mq_qconfig *q, const char *name, int bits, mq_err *err) {
  if (bits == 2 || bits == 3 || bits == 4 || bits == 8) return MQ_OK;
  return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: %d-bit weights are not supported (2, 3, 4, 8 are)",
                 q->source, name, bits);
}

/* Per-layer overrides (GPTQModel dynamic, AutoRound extra_config) obey the
 * global rule: group_size -1 (per channel) or > 0. */
static int check_group(const mq_qconfig *q, const char *name, long long gs, mq_err *err) {
  if (gs == -1 || gs > 0) return MQ_OK;
  return mq_errf(err, MQ_ERR_FORMAT, "%s: layer %s: group_size %lld is invalid (-1 or > 0)", q->source,
                 name, gs);
}

/* ---- AWQ: modules_to_not_convert holds substrings of module names. */
static int plan_awq(const mq_qconfig *q, const char *name, mq_lspec *s, mq_err *err) {
  (void)err;
  const json_t *skip = json_object_get(q->q, "modules_to_not_convert");
  size_t i;
  json_t *v;
  if (strcmp(name, "lm_head") == 0) return set_float(s), MQ_OK;
  json_array_foreach(skip, i, v) if (json_is_string(v) && strstr(name, json_string_value(v)))
      return set_float(s), MQ_OK;
  set_wna16(s, MQ_FMT_AWQ, 4, q->group_size, !q->zero_point);
  s->zero_point = q->zero_point;
  return MQ_OK;
}

/* ---- GPTQ: GPTQModel `dynamic` overrides ("-:re" skip, "+:re"/"re" override),
 * first match in order wins; modules_in_block_to_quantize limits the set. */
static int gptq_dynamic(const mq_qconfig *q, const char *name, int *skip, long long *bits,
                        long long *gs, int *sym, int *desc, mq_err *err) {
  const json_t *dyn = json_object_get(q->q, "dynamic");
  const char *key;
  json_t *ov;
  *skip = 0;
  if (!json_is_object(dyn)) return MQ_OK;
  json_object_foreach((json_t *)dyn, key, ov) {
    int neg = strncmp(key, "-:", 2) == 0;
    const char *re = (neg || strncmp(key, "+:", 2) == 0) ? key + 2 : key;
    int m = mq_re_match(re, name, q->source, err);
    if (m < 0) return err ? err->code : MQ_ERR_FORMAT;
    if (!m) continue;
    if (neg) return *skip = 1, MQ_OK;
    int rc;
    if ((rc = mq_json_int_opt(ov, "bits", 1, 16, *bits, bits, q->source, err)) ||
        (rc = mq_json_int_opt(ov, "group_size", -1, 1 << 20, *gs, gs, q->source, err)) ||
        (rc = mq_json_bool_opt(ov, "sym", *sym, sym, q->source, err)) ||
        (rc = mq_json_bool_opt(ov, "desc_act", *desc, desc, q->source, err)))
      return rc;
    return MQ_OK;
  }
  return MQ_OK;
}

static int in_block_list(const json_t *blocks, const char *name) {
  /* [["self_attn.k_proj", ...], ["mlp.up_proj"], ...]: compare name suffixes */
  size_t i, j;
  json_t *grp, *v;
  json_array_foreach(blocks, i, grp) {
    json_array_foreach(grp, j, v) {
      if (!json_is_string(v)) continue;
      const char *sfx = json_string_value(v);
      size_t a = strlen(name), b = strlen(sfx);
      if (a > b && strcmp(name + a - b, sfx) == 0 && name[a - b - 1] == '.') return 1;
    }
  }
  return 0;
}

static int plan_gptq(const mq_qconfig *q, const char *name, mq_lspec *s, mq_err *err) {
  int is_head = strcmp(name, "lm_head") == 0;
  if (is_head && !q->lm_head) return set_float(s), MQ_OK;
  const json_t *blocks = json_object_get(q->q, "modules_in_block_to_quantize");
  if (!is_head && json_is_array(blocks) && !in_block_list(blocks, name)) return set_float(s), MQ_OK;
  long long bits = q->bits, gs = q->group_size;
  int sym = q->sym, desc = q->desc_act, skip;
  int rc = gptq_dynamic(q, name, &skip, &bits, &gs, &sym, &desc, err);
  if (rc) return rc;
  if (skip || bits >= 16) return set_float(s), MQ_OK;
  if ((rc = check_bits(q, name, (int)bits, err)) || (rc = check_group(q, name, gs, err))) return rc;
  set_wna16(s, MQ_FMT_GPTQ, (int)bits, (int)gs, sym);
  s->gptq_v1 = !q->gptq_v2;
  s->g_idx = desc; /* with desc_act the g_idx tensor matters; it is read whenever present */
  return MQ_OK;
}

/* ---- AutoRound: extra_config (exact name, then regex keys), then
 * block_name_to_quantize prefixes, then the globals. */
static int plan_autoround(const mq_qconfig *q, const char *name, mq_lspec *s, mq_err *err) {
  long long bits = q->bits, gs = q->group_size;
  int sym = q->sym, rc;
  const json_t *extra = json_object_get(q->q, "extra_config");
  const json_t *ov = json_is_object(extra) ? json_object_get(extra, name) : NULL;
  if (!ov && json_is_object(extra)) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)extra, key, v) {
      if (!strpbrk(key, ".*+?[](){}|\\^$")) continue; /* plain names matched exactly above */
      int m = mq_re_match(key, name, q->source, err);
      if (m < 0) return err ? err->code : MQ_ERR_FORMAT;
      if (m) {
        ov = v;
        break;
      }
    }
  }
  int quantized = strcmp(name, "lm_head") != 0;
  const json_t *blocks = json_object_get(q->q, "block_name_to_quantize");
  if (!blocks) blocks = json_object_get(q->q, "to_quant_block_names");
  if (quantized && blocks && !json_is_null(blocks)) {
    quantized = 0;
    char list[4096];
    if (json_is_string(blocks)) snprintf(list, sizeof list, "%s", json_string_value(blocks));
    else {
      list[0] = 0;
      size_t i;
      json_t *v;
      json_array_foreach(blocks, i, v) if (json_is_string(v)) {
        strncat(list, json_string_value(v), sizeof list - strlen(list) - 2);
        strcat(list, ",");
      }
    }
    for (char *tok = strtok(list, ","); tok && !quantized; tok = strtok(NULL, ","))
      quantized = *tok && strncmp(name, tok, strlen(tok)) == 0;
  }
  if (ov) {
    quantized = 1;
    const char *dt;
    if ((rc = mq_json_int_opt(ov, "bits", 1, 32, bits, &bits, q->source, err)) ||
        (rc = mq_json_int_opt(ov, "group_size", -1, 1 << 20, gs, &gs, q->source, err)) ||
        (rc = mq_json_bool_opt(ov, "sym", sym, &sym, q->source, err)) ||
        (rc = mq_json_str_opt(ov, "data_type", "int", &dt, q->source, err)))
      return rc;
    if (bits < 16 && strcmp(dt, "int") != 0)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: data_type \"%s\" is not supported",
                     q->source, name, dt);
  }
  if (!quantized || bits >= 16) return set_float(s), MQ_OK;
  if ((rc = check_bits(q, name, (int)bits, err)) || (rc = check_group(q, name, gs, err))) return rc;
  int awq = strcmp(q->packing, "auto_round:auto_awq") == 0;
  if (awq && bits != 4)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: %lld-bit auto_awq packing is not supported",
                   q->source, name, bits);
  set_wna16(s, awq ? MQ_FMT_AWQ : MQ_FMT_GPTQ, (int)bits, (int)gs, sym);
  s->zero_point = awq;
  s->gptq_v1 = strcmp(q->packing, "auto_round:auto_gptq") == 0;
  s->g_idx = strcmp(q->packing, "auto_round:gptqmodel") == 0;
  return MQ_OK;
}

/* ---- compressed-tensors: ignore wins; among config_groups an exact-name
 * target beats a "re:" target beats the class name "Linear". */
static int ct_match(const char *target, const char *name, const char *where, mq_err *err) {
  if (strncmp(target, "re:", 3) == 0) {
    int m = mq_re_match(target + 3, name, where, err);
    return m < 0 ? -1 : (m ? 2 : 0);
  }
  if (strcmp(target, name) == 0) return 3;
  if (strcmp(target, "Linear") == 0) return 1;
  return 0;
}

static int ct_args(const mq_qconfig *q, const char *name, const json_t *grp, const char *fmt,
                   mq_lspec *s, mq_err *err) {
  const json_t *w = json_object_get(grp, "weights"), *a = json_object_get(grp, "input_activations");
  const char *where = q->source, *type, *strategy, *actorder_s = NULL;
  long long bits, gs;
  int sym, rc;
  if (!json_is_object(w)) return set_float(s), MQ_OK;
  if ((rc = mq_json_int_opt(w, "num_bits", 1, 16, 8, &bits, where, err)) ||
      (rc = mq_json_str_opt(w, "type", "int", &type, where, err)) ||
      (rc = mq_json_bool_opt(w, "symmetric", 1, &sym, where, err)) ||
      (rc = mq_json_int_opt(w, "group_size", -1, 1 << 20, 0, &gs, where, err)) ||
      (rc = mq_json_str_opt(w, "strategy", NULL, &strategy, where, err)))
    return rc;
  const json_t *ao = json_object_get(w, "actorder");
  if (json_is_string(ao)) actorder_s = json_string_value(ao);
  else if (json_is_true(ao)) actorder_s = "group";
  if (!strategy) strategy = gs == 0 ? "tensor" : (gs > 0 ? "group" : "channel");
  memset(s, 0, sizeof *s);
  s->bits = (int)bits;
  s->sym = sym;
  if (strcmp(strategy, "group") == 0) {
    if (gs <= 0)
      return mq_errf(err, MQ_ERR_FORMAT, "%s: layer %s: group strategy needs group_size > 0",
                     where, name);
    s->group_size = (int)gs;
  } else if (strcmp(strategy, "channel") == 0 || strcmp(strategy, "tensor") == 0) {
    s->group_size = -1; /* tensor: one scale broadcast to every channel */
  } else {
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: weight strategy \"%s\" is not supported",
                   where, name, strategy);
  }
  s->g_idx = actorder_s && (strcmp(actorder_s, "group") == 0 || strcmp(actorder_s, "dynamic") == 0);
  if (strcmp(fmt, "pack-quantized") == 0) s->fmt = MQ_FMT_CT_PACKED;
  else if (strcmp(fmt, "int-quantized") == 0 || strcmp(fmt, "naive-quantized") == 0)
    s->fmt = strcmp(type, "float") == 0 ? MQ_FMT_CT_FLOAT : MQ_FMT_CT_INT;
  else if (strcmp(fmt, "float-quantized") == 0) s->fmt = MQ_FMT_CT_FLOAT;
  else
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: layer %s: compressed-tensors format \"%s\" is not supported (pack-quantized, "
                   "int-quantized, naive-quantized, float-quantized are)",
                   where, name, fmt);
  if (s->fmt != MQ_FMT_CT_FLOAT && strcmp(type, "int") != 0)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: weight type \"%s\" with format %s",
                   where, name, type, fmt);
  if (s->fmt != MQ_FMT_CT_FLOAT && (bits < 2 || bits > 8))
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: %lld-bit int weights are not supported",
                   where, name, bits);
  s->act = MQ_ACT_FLOAT;
  if (json_is_object(a)) {
    const char *at;
    long long ab;
    int dyn = 0;
    json_t *dv = json_object_get(a, "dynamic");
    if ((rc = mq_json_int_opt(a, "num_bits", 1, 16, 8, &ab, where, err)) ||
        (rc = mq_json_str_opt(a, "type", "int", &at, where, err)))
      return rc;
    dyn = json_is_true(dv) || json_is_string(dv);
    if (strcmp(at, "float") == 0) s->act = MQ_ACT_FP8;
    else if (ab == 8) s->act = dyn ? MQ_ACT_INT8_TOKEN : MQ_ACT_INT8_STATIC;
    else if (ab == 4 && dyn) s->act = MQ_ACT_INT4_TOKEN;
    else
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: layer %s: %lld-bit %s input activations",
                     where, name, ab, at);
  }
  if (s->fmt == MQ_FMT_CT_FLOAT)
    snprintf(s->scheme, sizeof s->scheme, "%s", s->act == MQ_ACT_FLOAT ? "FP8_A16" : "FP8");
  else if (s->act == MQ_ACT_FLOAT)
    snprintf(s->scheme, sizeof s->scheme, "W%lldA16", bits);
  else
    snprintf(s->scheme, sizeof s->scheme, "W%lldA%d%s", bits, s->act == MQ_ACT_INT4_TOKEN ? 4 : 8,
             s->act == MQ_ACT_INT8_STATIC ? "" : "_DYNAMIC");
  return MQ_OK;
}

static int plan_ct(const mq_qconfig *q, const char *name, mq_lspec *s, mq_err *err) {
  const json_t *ign = json_object_get(q->q, "ignore");
  size_t i;
  json_t *v;
  json_array_foreach(ign, i, v) {
    if (!json_is_string(v)) continue;
    int m = ct_match(json_string_value(v), name, q->source, err);
    if (m < 0) return err ? err->code : MQ_ERR_FORMAT;
    if (m >= 2) return set_float(s), MQ_OK; /* class names in ignore do not apply to one module */
  }
  const json_t *groups = json_object_get(q->q, "config_groups");
  const char *gname, *global_fmt;
  json_t *grp;
  const json_t *best = NULL;
  int best_rank = 0, rc;
  if ((rc = mq_json_str_opt(q->q, "format", "pack-quantized", &global_fmt, q->source, err))) return rc;
  json_object_foreach((json_t *)groups, gname, grp) {
    json_array_foreach(json_object_get(grp, "targets"), i, v) {
      if (!json_is_string(v)) continue;
      int m = ct_match(json_string_value(v), name, q->source, err);
      if (m < 0) return err ? err->code : MQ_ERR_FORMAT;
      if (m > best_rank) best_rank = m, best = grp;
    }
  }
  if (!best) return set_float(s), MQ_OK;
  const char *fmt = global_fmt;
  if ((rc = mq_json_str_opt(best, "format", global_fmt, &fmt, q->source, err))) return rc;
  if (strcmp(fmt, "mixed-precision") == 0)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: layer %s: mixed-precision needs a per-group \"format\"",
                   q->source, name);
  if ((rc = ct_args(q, name, best, fmt, s, err))) return rc;
  /* W4A8 "with activation clip" (SGLang PR #14736, cann-recipes-infer
   * checkpoints): per-channel int4 weights, int64 fp32-bit scales and a
   * name.bias that is the kernel's 8 * s * sum(W) term (modelslim.md 3.7) */
  if (json_is_true(json_object_get(best, "activation_use_clip"))) {
    if (s->fmt != MQ_FMT_CT_INT || s->bits != 4 || s->act != MQ_ACT_INT8_TOKEN)
      return mq_errf(err, MQ_ERR_UNSUPPORTED,
                     "%s: layer %s: activation_use_clip is defined for W4A8 (int4 weights, dynamic "
                     "per-token int8 activations), not for %s",
                     q->source, name, s->scheme);
    s->act_clip = 1;
  }
  return MQ_OK;
}

/* ---- ModelSlim: the description's type of name.weight; user-added
 * `ignore` names stay FLOAT. */
static int plan_modelslim(const mq_qconfig *q, const char *name, mq_lspec *s, mq_err *err) {
  const json_t *ign = json_object_get(q->q, "ignore");
  size_t i;
  json_t *v;
  json_array_foreach(ign, i, v) if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
      return set_float(s), MQ_OK;
  char key[320];
  snprintf(key, sizeof key, "%s.weight", name);
  const json_t *t = json_object_get(q->q, key);
  if (!t)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: layer %s has no entry \"%s\" (every layer must be described; add it as "
                   "\"FLOAT\" if it is not quantized)",
                   q->source, name, key);
  if (!json_is_string(t))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be a type string", q->source, key);
  const char *type = json_string_value(t);
  static const struct {
    const char *type;
    int bits;
    mq_act act;
  } k[] = {{"W8A8", 8, MQ_ACT_INT8_STATIC},        {"W8A8_DYNAMIC", 8, MQ_ACT_INT8_TOKEN},
           {"W4A4_DYNAMIC", 4, MQ_ACT_INT4_TOKEN}, {"W4A8_DYNAMIC", 4, MQ_ACT_INT8_TOKEN},
           {"W8A8_MXFP8", 8, MQ_ACT_MXFP8},        {"W8A16", 8, MQ_ACT_FLOAT},
           {"W4A16", 4, MQ_ACT_FLOAT}};
  if (strcmp(type, "FLOAT") == 0) return set_float(s), MQ_OK;
  for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
    if (strcmp(type, k[j].type) != 0) continue;
    memset(s, 0, sizeof *s);
    s->fmt = MQ_FMT_MODELSLIM;
    snprintf(s->scheme, sizeof s->scheme, "%s", type);
    s->bits = k[j].bits;
    s->act = k[j].act;
    s->sym = 1;
    s->group_size = -1; /* per-group variants are recognised from the scale shapes */
    return MQ_OK;
  }
  return mq_errf(err, MQ_ERR_UNSUPPORTED,
                 "%s: layer %s: ModelSlim type \"%s\" is not supported (FLOAT, W8A8, W8A8_DYNAMIC, "
                 "W4A4_DYNAMIC, W4A8_DYNAMIC, W8A8_MXFP8, W8A16, W4A16 are)",
                 q->source, name, type);
}

int mq_plan_linear(const mq_qconfig *q, const mq_ckpt *ck, const char *name, mq_lspec *s,
                   mq_err *err) {
  (void)ck;
  switch (q->method) {
  case MQ_METHOD_NONE: return set_float(s), MQ_OK;
  case MQ_METHOD_AWQ: return plan_awq(q, name, s, err);
  case MQ_METHOD_GPTQ: return plan_gptq(q, name, s, err);
  case MQ_METHOD_AUTOROUND: return plan_autoround(q, name, s, err);
  case MQ_METHOD_CTENSORS: return plan_ct(q, name, s, err);
  case MQ_METHOD_MODELSLIM: return plan_modelslim(q, name, s, err);
  case MQ_METHOD_GGUF: break; /* GGUF tensors carry their own types (load_gguf.c) */
  }
  return mq_errf(err, MQ_ERR_ARG, "unknown quantization method");
}

int mq_lspec_same(const mq_lspec *a, const mq_lspec *b) {
  return a->fmt == b->fmt && strcmp(a->scheme, b->scheme) == 0 && a->bits == b->bits &&
         a->group_size == b->group_size && a->sym == b->sym && a->act == b->act &&
         a->act_clip == b->act_clip;
}

const char *mq_lspec_str(const mq_lspec *s, char *buf, int cap) {
  if (s->fmt == MQ_FMT_FLOAT) snprintf(buf, (size_t)cap, "FLOAT");
  else if (s->group_size > 0)
    snprintf(buf, (size_t)cap, "%s (%d-bit, group %d, %s)", s->scheme, s->bits, s->group_size,
             s->sym ? "sym" : "asym");
  else
    snprintf(buf, (size_t)cap, "%s (%d-bit, per-channel, %s)", s->scheme, s->bits,
             s->sym ? "sym" : "asym");
  return buf;
}
