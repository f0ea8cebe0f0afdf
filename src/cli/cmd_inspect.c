/* mixq inspect MODEL [--json]: method, architecture, every layer's scheme. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* MoE experts are listed once per layer: w13 (gate/up) and w2 (down) each
 * with its scheme. Returns 1 for an expert linear, with its layer prefix
 * ("model.layers.1.mlp.experts", "blk.1.ffn_exps") and role 13 or 2. */
static int expert_of(const char *name, char *prefix, size_t cap, int *role) {
  const char *e = strstr(name, ".experts.");
  if (e) {
    const char *proj = strchr(e + 9, '.');
    if (!proj) return 0;
    snprintf(prefix, cap, "%.*s", (int)(e + 8 - name), name);
    proj++;
    *role = (!strncmp(proj, "down_proj", 9) || !strcmp(proj, "w2")) ? 2 : 13;
    return 1;
  }
  const char *g = strstr(name, "_exps.weight[");
  if (!g) return 0;
  const char *f = strstr(name, ".ffn_");
  if (!f || f > g) return 0;
  snprintf(prefix, cap, "%.*s.ffn_exps", (int)(f - name), name);
  *role = strstr(f, "ffn_down_exps") ? 2 : 13;
  return 1;
}

typedef struct {
  char prefix[128];
  mq_linear_info w13, w2;
  int n_w2;
  unsigned long long bytes, params, compute;
} moe_item;

/* The MoE layer of expert linear i (aggregating all its experts), or NULL
 * when i is not an expert; *first is 1 at the layer's first expert. A
 * layer's experts are contiguous in load order, so this is one pass. */
static const moe_item *moe_of(const mq_model *m, int i, int *first) {
  static moe_item item;
  mq_linear_info li;
  char prefix[128];
  int role;
  mq_model_linear(m, i, &li);
  if (!expert_of(li.name, prefix, sizeof prefix, &role)) return NULL;
  *first = 1;
  if (i > 0) {
    mq_linear_info lp;
    char pp[128];
    int rp;
    mq_model_linear(m, i - 1, &lp);
    if (expert_of(lp.name, pp, sizeof pp, &rp) && !strcmp(pp, prefix)) *first = 0;
  }
  if (!*first) return &item;
  memset(&item, 0, sizeof item);
  snprintf(item.prefix, sizeof item.prefix, "%s", prefix);
  for (int j = i; j < mq_model_n_linears(m); j++) {
    mq_linear_info lj;
    char pj[128];
    int rj;
    mq_model_linear(m, j, &lj);
    if (!expert_of(lj.name, pj, sizeof pj, &rj) || strcmp(pj, prefix)) break;
    if (rj == 2) item.w2 = lj, item.n_w2++;
    else item.w13 = lj;
    item.bytes += lj.bytes;
    item.compute += lj.compute_bytes;
    item.params += (unsigned long long)lj.n_out * lj.n_in;
  }
  return &item;
}

static json_t *to_json(const mq_model *m, const mq_model_info *info) {
  json_t *root = json_object(), *layers = json_array();
  json_object_set_new(root, "method", json_string(info->quant_method));
  json_object_set_new(root, "arch", json_string(info->arch));
  json_object_set_new(root, "n_params", json_integer((json_int_t)info->n_params));
  json_object_set_new(root, "bytes", json_integer((json_int_t)info->n_bytes));
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    mq_model_linear(m, i, &li);
    int first;
    const moe_item *mo = moe_of(m, i, &first);
    if (mo) {
      if (!first) continue;
      int same = !strcmp(mo->w13.scheme, mo->w2.scheme);
      json_array_append_new(
          layers, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:s, s:s, s:I}",
                            "name", mo->prefix, "scheme", same ? mo->w13.scheme : "MIXED",
                            "w13_scheme", mo->w13.scheme, "w2_scheme", mo->w2.scheme, "w13_act",
                            mo->w13.act, "w2_act", mo->w2.act, "w13_bits", mo->w13.w_bits, "w2_bits",
                            mo->w2.w_bits, "n_experts", mo->n_w2, "bytes", (json_int_t)mo->bytes,
                            "w13_layout", mo->w13.layout, "w2_layout", mo->w2.layout,
                            "compute_bytes", (json_int_t)mo->compute));
      continue;
    }
    json_array_append_new(
        layers, json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:b, s:[i, i], s:I, s:s, s:I}", "name",
                          li.name, "scheme", li.scheme, "weight_format", li.weight_format, "w_bits",
                          li.w_bits, "act", li.act, "group_size", li.group_size, "zero_point",
                          li.has_zero, "shape", li.n_out, li.n_in, "bytes", (json_int_t)li.bytes,
                          "layout", li.layout, "compute_bytes", (json_int_t)li.compute_bytes));
  }
  json_object_set_new(root, "layers", layers);
  json_t *warn = json_array();
  for (int i = 0; i < mq_model_n_warnings(m); i++) json_array_append_new(warn, json_string(mq_model_warning(m, i)));
  json_object_set_new(root, "warnings", warn);
  return root;
}

static void print_table(const mq_model *m, const mq_model_info *info) {
  printf("method: %s\narch:   %s (%d layers, hidden %d, %d heads / %d kv, head_dim %d, ffn %d, "
         "vocab %d)\n\n",
         info->quant_method, info->arch, info->n_layer, info->n_embd, info->n_head,
         info->n_head_kv, info->head_dim, info->n_ff, info->n_vocab);
  printf("%-44s %-8s %-7s %5s %-8s %6s %4s %14s %12s %-6s %12s\n", "layer", "scheme", "weights",
         "bits", "act", "group", "zero", "shape", "bytes", "layout", "in memory");
  unsigned long long lin_params = 0, lin_bytes = 0;
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    mq_model_linear(m, i, &li);
    int first;
    const moe_item *mo = moe_of(m, i, &first);
    if (mo) {
      if (first) {
        char experts[48];
        snprintf(experts, sizeof experts, "%d experts", mo->n_w2);
        printf("%-44s %-8s %-7s %5d %-8s %6d %4s %14s %12llu %-6s %12llu\n", mo->prefix, "w13:",
               mo->w13.scheme, mo->w13.w_bits, mo->w13.act, mo->w13.group_size,
               mo->w13.has_zero ? "yes" : "no", experts, mo->bytes, mo->w13.layout, mo->compute);
        printf("%-44s %-8s %-7s %5d %-8s %6d %4s %14s %12s %-6s\n", "", "w2:", mo->w2.scheme,
               mo->w2.w_bits, mo->w2.act, mo->w2.group_size, mo->w2.has_zero ? "yes" : "no", "", "",
               mo->w2.layout);
      }
      lin_params += (unsigned long long)li.n_out * li.n_in;
      lin_bytes += li.bytes;
      continue;
    }
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", li.n_out, li.n_in);
    printf("%-44s %-8s %-7s %5d %-8s %6d %4s %14s %12llu %-6s %12llu\n", li.name, li.scheme,
           li.weight_format, li.w_bits, li.act, li.group_size, li.has_zero ? "yes" : "no", shape,
           (unsigned long long)li.bytes, li.layout, (unsigned long long)li.compute_bytes);
    if (li.bytes) {
      lin_params += (unsigned long long)li.n_out * li.n_in;
      lin_bytes += li.bytes;
    }
  }
  printf("\nlinear layers: %d, %llu weights, %llu bytes, %.2f bits per weight\n",
         mq_model_n_linears(m), lin_params, lin_bytes,
         lin_params ? 8.0 * lin_bytes / lin_params : 0.0);
  printf("whole model:   %llu parameters, %llu bytes (%.1f MiB)\n",
         (unsigned long long)info->n_params, (unsigned long long)info->n_bytes,
         info->n_bytes / 1048576.0);
  for (int i = 0; i < mq_model_n_warnings(m); i++) printf("warning: %s\n", mq_model_warning(m, i));
}

int mq_cmd_inspect(int argc, char **argv) {
  const char *model = NULL;
  int as_json = 0;
  mq_model_params mp;
  mq_model_params_default(&mp);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) as_json = 1;
    else if (!strcmp(argv[i], "--quantization") && i + 1 < argc) mp.quantization = argv[++i];
    else if (argv[i][0] != '-' && !model) model = argv[i];
    else return mq_cli_fail("inspect: unexpected argument '%s'", argv[i]);
  }
  if (!model) return mq_cli_fail("usage: mixq inspect MODEL [--json] [--quantization NAME]");
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(model, &mp, &m, &err) != MQ_OK) return mq_cli_fail("%s", err.msg);
  mq_model_info info;
  mq_model_get_info(m, &info);
  if (as_json) {
    json_t *j = to_json(m, &info);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s ? s : "{}");
    free(s);
    json_decref(j);
  } else {
    print_table(m, &info);
  }
  mq_model_free(m);
  return 0;
}
