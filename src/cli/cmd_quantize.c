/* mixq quantize SRC DST --format FORMAT
 *   [--bits B] [--group-size G] [--sym|--asym] [--desc-act]
 *   [--packing auto_gptq|auto_round|gptqmodel|auto_awq|aligned|dense]
 *   [--mix REGEX=SCHEME,...] [--allow-inconsistent]
 *   [--layer-bits REGEX=B ...] [--ignore REGEX ...] [--seed N]
 * Round-to-nearest quantization of a float checkpoint into the layout a real
 * producer writes (docs/quantize.md). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "quant/gguf_convert.h"
#include "quant/gguf_types.h"
#include "quant/writer.h"

static const char k_usage[] =
    "usage: mixq quantize SRC DST --format FORMAT\n"
    "         [--bits B] [--group-size G|-1] [--sym|--asym] [--desc-act]\n"
    "         [--packing auto_gptq|auto_round|gptqmodel|auto_awq|aligned|dense]\n"
    "         [--mix REGEX=SCHEME,...] [--allow-inconsistent]\n"
    "         [--layer-bits REGEX=B ...] [--ignore REGEX ...] [--seed N]\n"
    "FORMAT: awq gptq gptq-v2 auto-round ct-w4a16 ct-w8a16 ct-w8a8 ct-w4a8\n"
    "        modelslim-w8a8 modelslim-w8a8-dynamic modelslim-w4a4 modelslim-w4a8\n"
    "        modelslim-mxfp8 modelslim-w8a16\n"
    "        gguf-f32 gguf-f16 gguf-bf16 gguf-q8_0 gguf-q4_0 gguf-q4_k_m (DST: a .gguf file)\n"
    "SCHEME (--mix, first match wins): FLOAT, W<b>A16; compressed-tensors W8A8, W4A8;\n"
    "        ModelSlim W8A8, W8A8_DYNAMIC, W4A4_DYNAMIC, W4A8_DYNAMIC, W8A8_MXFP8, W8A16;\n"
    "        or a format name of the same family";

/* Split a --mix value into rules at the commas outside (), [] and {} (a
 * regex may hold "{1,3}"); each rule is REGEX=SCHEME split at its last '='.
 * Strings are strndup'ed into rules[*n]; returns -1 on a malformed rule. */
/* --format gguf-*: a GGUF file (quant/gguf_convert.h); no other option applies. */
static int quantize_gguf(const mq_quantize_opts *o, mq_gguf_ftype ft) {
  if (o->bits || o->group_size || o->sym >= 0 || o->desc_act || o->packing || o->n_layer_bits ||
      o->n_mix || o->n_ignore || o->allow_inconsistent || o->seed)
    return mq_cli_fail("quantize: GGUF formats take no other option (types per tensor follow "
                       "llama-quantize's rules, docs/quantize.md)");
  mq_gguf_convert_report rep;
  mq_gguf_convert_opts go = {.src = o->src, .dst = o->dst, .ftype = ft, .report = &rep};
  mq_err err = {0};
  if (mq_gguf_convert(&go, &err) != MQ_OK) return mq_cli_fail("quantize: %s", err.msg);
  for (char *l = rep.warnings, *nl; *l; l = nl + 1) {
    if (!(nl = strchr(l, '\n'))) nl = l + strlen(l) - 1;
    fprintf(stderr, "mixq: warning: %.*s\n", (int)(nl - l + (*nl != '\n')), l);
  }
  printf("wrote %d tensors (%.1f MB) into %s:", rep.n_tensors, rep.bytes / 1e6, o->dst);
  for (int t = 0; t < 64; t++)
    if (rep.n_by_type[t]) printf(" %d %s", rep.n_by_type[t], mq_ggml_type_name((uint32_t)t));
  printf("\n");
  return 0;
}

static int parse_mix(const char *v, mq_mix_rule *rules, int *n) {
  int depth = 0;
  const char *start = v;
  for (const char *p = v;; p++) {
    if (*p == '\\' && p[1]) {
      p++;
      continue;
    }
    if (*p == '(' || *p == '[' || *p == '{')
      depth++;
    else if ((*p == ')' || *p == ']' || *p == '}') && depth > 0)
      depth--;
    if (*p && (*p != ',' || depth > 0)) continue;
    const char *eq = NULL;
    for (const char *q = start; q < p; q++)
      if (*q == '=') eq = q;
    if (!eq || eq == start || eq + 1 == p) return -1;
    rules[*n].regex = strndup(start, (size_t)(eq - start));
    rules[*n].scheme = strndup(eq + 1, (size_t)(p - eq - 1));
    if (!rules[*n].regex || !rules[*n].scheme) return -1;
    ++*n;
    if (!*p) return 0;
    start = p + 1;
  }
}

int mq_cmd_quantize(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      puts(k_usage);
      return 0;
    }
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  mq_quantize_report rep;
  o.report = &rep;
  int have_format = 0, rc = 1, gguf = 0;
  mq_gguf_ftype gft = MQ_GGUF_FTYPE_F32;
  /* at most argc rules of each kind */
  mq_layer_bits *lb = calloc((size_t)argc, sizeof *lb);
  const char **ign = calloc((size_t)argc, sizeof *ign);
  size_t mix_cap = 1;
  for (int i = 1; i < argc; i++) mix_cap += strlen(argv[i]) + 1; /* >= rules of all --mix */
  mq_mix_rule *mix = calloc(mix_cap, sizeof *mix);
  if (!lb || !ign || !mix) {
    free(lb), free(ign), free(mix);
    return mq_cli_fail("out of memory");
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--format") && v) {
      gguf = !mq_gguf_ftype_parse(v, &gft);
      if (!gguf && mq_qformat_parse(v, &o.format)) goto bad_value;
      have_format = 1, i++;
    } else if (!strcmp(a, "--bits") && v) {
      if ((o.bits = mq_cli_int(v)) <= 0) goto bad_value;
      i++;
    } else if (!strcmp(a, "--group-size") && v) {
      o.group_size = !strcmp(v, "-1") ? -1 : mq_cli_int(v);
      if (o.group_size == 0 || o.group_size < -1) goto bad_value;
      i++;
    } else if (!strcmp(a, "--sym"))
      o.sym = 1;
    else if (!strcmp(a, "--asym"))
      o.sym = 0;
    else if (!strcmp(a, "--desc-act"))
      o.desc_act = 1;
    else if (!strcmp(a, "--packing") && v) {
      if (mq_qpacking_parse(v, &o.packing)) goto bad_value;
      i++;
    } else if (!strcmp(a, "--layer-bits") && v) {
      const char *eq = strrchr(v, '=');
      int b = eq ? mq_cli_int(eq + 1) : -1;
      if (!eq || eq == v || b <= 0) goto bad_value;
      char *re = strndup(v, (size_t)(eq - v)); /* freed at exit */
      if (!re) goto oom;
      lb[o.n_layer_bits].regex = re, lb[o.n_layer_bits++].bits = b;
      i++;
    } else if (!strcmp(a, "--mix") && v) {
      if (parse_mix(v, mix, &o.n_mix)) goto bad_value;
      i++;
    } else if (!strcmp(a, "--allow-inconsistent")) {
      o.allow_inconsistent = 1;
    } else if (!strcmp(a, "--ignore") && v) {
      ign[o.n_ignore++] = v, i++;
    } else if (!strcmp(a, "--seed") && v) {
      char *end;
      errno = 0;
      o.seed = strtoull(v, &end, 10);
      if (*end || !*v || errno || v[0] == '-') goto bad_value;
      i++;
    } else if (a[0] != '-' && !o.src)
      o.src = a;
    else if (a[0] != '-' && !o.dst)
      o.dst = a;
    else {
      rc = mq_cli_fail("quantize: unexpected argument '%s'\n%s", a, k_usage);
      goto done;
    }
    continue;
  bad_value:
    rc = mq_cli_fail("quantize: bad value '%s' for %s\n%s", v, a, k_usage);
    goto done;
  }
  if (!o.src || !o.dst || !have_format) {
    rc = mq_cli_fail("%s", k_usage);
    goto done;
  }
  o.layer_bits = lb, o.ignore = ign, o.mix = mix;
  if (gguf) {
    rc = quantize_gguf(&o, gft);
    goto done;
  }
  mq_err err = {0};
  if (mq_quantize_checkpoint(&o, &err) != MQ_OK) {
    rc = mq_cli_fail("quantize: %s", err.msg);
    goto done;
  }
  for (char *l = rep.warnings, *nl; *l; l = nl + 1) { /* one "warning:" per line */
    if (!(nl = strchr(l, '\n'))) nl = l + strlen(l) - 1;
    fprintf(stderr, "mixq: warning: %.*s\n", (int)(nl - l + (*nl != '\n')), l);
  }
  printf("quantized %d layers (%d left float, %d other tensors copied) into %s\n", rep.n_quantized,
         rep.n_float, rep.n_copied, o.dst);
  rc = 0;
  goto done;
oom:
  rc = mq_cli_fail("out of memory");
done:
  for (int i = 0; i < o.n_layer_bits; i++) free((char *)lb[i].regex);
  for (int i = 0; i < o.n_mix + 1; i++) free((char *)mix[i].regex), free((char *)mix[i].scheme);
  free(lb), free(ign), free(mix);
  return rc;
}
