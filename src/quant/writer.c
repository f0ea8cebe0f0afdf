/* The quantizing writer (see writer.h; layouts and config keys in
 * docs/quantize.md). Flow: resolve options -> open SRC -> list the Linear
 * layers (dense, MoE experts, shared experts) and decide each one's scheme
 * (--ignore, --mix, --layer-bits, the format's default) -> check fused shards
 * and experts agree -> validate every layer against the format -> quantize +
 * pack + collect tensors -> the weights file -> config.json with the
 * producer's quantization_config, or ModelSlim's description -> side files.
 * ModelSlim layers are written by writer_ms.c. */
#include "quant/writer.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/file.h"
#include "core/numconv.h"
#include "io/jsonutil.h"
#include "quant/pack.h"
#include "quant/rtn.h"
#include "quant/writer_int.h"

static const struct {
  const char *name;
  mq_qformat fmt;
} k_formats[] = {
    {"awq", MQ_QFORMAT_AWQ},
    {"gptq", MQ_QFORMAT_GPTQ},
    {"gptq-v2", MQ_QFORMAT_GPTQ_V2},
    {"auto-round", MQ_QFORMAT_AUTOROUND},
    {"ct-w4a16", MQ_QFORMAT_CT_W4A16},
    {"ct-w8a16", MQ_QFORMAT_CT_W8A16},
    {"ct-w8a8", MQ_QFORMAT_CT_W8A8},
    {"ct-w4a8", MQ_QFORMAT_CT_W4A8},
    {"modelslim-w8a8", MQ_QFORMAT_MS_W8A8},
    {"modelslim-w8a8-dynamic", MQ_QFORMAT_MS_W8A8_DYNAMIC},
    {"modelslim-w4a4", MQ_QFORMAT_MS_W4A4},
    {"modelslim-w4a8", MQ_QFORMAT_MS_W4A8},
    {"modelslim-mxfp8", MQ_QFORMAT_MS_MXFP8},
    {"modelslim-w8a16", MQ_QFORMAT_MS_W8A16},
};
#define N_FORMATS (sizeof k_formats / sizeof k_formats[0])

void mq_quantize_opts_default(mq_quantize_opts *o) {
  memset(o, 0, sizeof *o);
  o->sym = -1;
}

int mq_qformat_parse(const char *s, mq_qformat *out) {
  for (size_t i = 0; i < N_FORMATS; i++)
    if (!strcmp(s, k_formats[i].name)) return (*out = k_formats[i].fmt), 0;
  return -1;
}

static const char *format_name(mq_qformat f) {
  for (size_t i = 0; i < N_FORMATS; i++)
    if (k_formats[i].fmt == f) return k_formats[i].name;
  return "?";
}

int mq_qpacking_parse(const char *s, mq_qpacking *out) {
  static const char *const names[] = {"auto_gptq", "auto_round", "gptqmodel",
                                      "auto_awq",  "aligned",    "dense"};
  for (int i = 0; i < 6; i++)
    if (!strcmp(s, names[i])) return (*out = (mq_qpacking)(i + 1)), 0;
  return -1;
}

static const char *packing_format(mq_qpacking p) {
  switch (p) {
  case MQ_QPACKING_AUTO_GPTQ: return "auto_round:auto_gptq";
  case MQ_QPACKING_GPTQMODEL: return "auto_round:gptqmodel";
  case MQ_QPACKING_AUTO_AWQ: return "auto_round:auto_awq";
  default: return "auto_round";
  }
}

static void warn(job *J, const char *fmt, const char *a, const char *b) {
  size_t l = strlen(J->rep.warnings);
  if (l + 1 < sizeof J->rep.warnings)
    snprintf(J->rep.warnings + l, sizeof J->rep.warnings - l, fmt, a, b);
}

static int is_ms_format(mq_qformat f) {
  return f >= MQ_QFORMAT_MS_W8A8 && f <= MQ_QFORMAT_MS_W8A16;
}
static int is_ct_aq(mq_qformat f) { return f == MQ_QFORMAT_CT_W8A8 || f == MQ_QFORMAT_CT_W4A8; }

const char *mq_wr_sch_name(const qset *q, wsch s, int bits, char *buf, size_t cap) {
  int ms = q->layout == LAYOUT_MS;
  switch (s) {
  case WS_FLOAT: snprintf(buf, cap, "FLOAT"); break;
  case WS_A16: snprintf(buf, cap, "W%dA16", bits); break;
  case WS_W8A8: snprintf(buf, cap, "W8A8"); break;
  case WS_W8A8_DYN: snprintf(buf, cap, "W8A8_DYNAMIC"); break;
  case WS_W4A4_DYN: snprintf(buf, cap, "W4A4_DYNAMIC"); break;
  case WS_W4A8_DYN: snprintf(buf, cap, "W4A8_DYNAMIC"); break;
  case WS_MXFP8: snprintf(buf, cap, ms ? "W8A8_MXFP8" : "MXFP8"); break;
  }
  return buf;
}

/* ---- options ---- */

static int resolve(const mq_quantize_opts *o, qset *q, mq_err *err) {
  memset(q, 0, sizeof *q);
  q->fmt = o->format;
  if ((unsigned)o->format > MQ_QFORMAT_MS_W8A16) return mq_errf(err, MQ_ERR_ARG, "unknown format");
  int is_ct =
      o->format == MQ_QFORMAT_CT_W4A16 || o->format == MQ_QFORMAT_CT_W8A16 || is_ct_aq(o->format);
  const char *fn = format_name(o->format);
  q->sch = WS_A16;
  q->desc_act = o->desc_act;
  q->pack = o->packing;
  if (o->packing >= MQ_QPACKING_AUTO_GPTQ && o->packing <= MQ_QPACKING_AUTO_AWQ &&
      o->format != MQ_QFORMAT_AUTOROUND)
    return mq_errf(err, MQ_ERR_ARG, "--packing %s is an auto-round packing_format",
                   packing_format(o->packing));
  if (o->packing >= MQ_QPACKING_CT_ALIGNED && !is_ct)
    return mq_errf(err, MQ_ERR_ARG,
                   "--packing aligned|dense applies to compressed-tensors formats only");
  if (is_ms_format(o->format)) {
    static const wsch k_ms[] = {WS_W8A8, WS_W8A8_DYN, WS_W4A4_DYN, WS_W4A8_DYN, WS_MXFP8, WS_A16};
    q->layout = LAYOUT_MS;
    q->sch = k_ms[o->format - MQ_QFORMAT_MS_W8A8];
    q->bits = q->sch == WS_W4A4_DYN || q->sch == WS_W4A8_DYN ? 4 : 8;
    q->sym = o->sym != 0; /* --asym: W8A16 layers only (the others are symmetric) */
    q->gs = o->group_size > 0 ? o->group_size : 0;
    if (o->bits && o->bits != q->bits)
      return mq_errf(err, MQ_ERR_ARG,
                     "--bits %d: %s stores %d-bit weights (use --mix to mix types)", o->bits, fn,
                     q->bits);
    if (o->n_layer_bits)
      return mq_errf(err, MQ_ERR_ARG, "--layer-bits: use --mix REGEX=TYPE with %s", fn);
    if (o->desc_act) return mq_errf(err, MQ_ERR_ARG, "--desc-act: ModelSlim has no act-order");
    if (q->gs > 0 && (q->sch == WS_W8A8 || q->sch == WS_W4A8_DYN || q->sch == WS_MXFP8))
      return mq_errf(err, MQ_ERR_ARG,
                     "--group-size %d: %s has no per-group variant (per-group types: W8A8_DYNAMIC, "
                     "W4A4_DYNAMIC, W8A16)",
                     q->gs, fn);
    if (!q->sym && q->sch != WS_A16)
      return mq_errf(err, MQ_ERR_ARG, "--asym: only ModelSlim W8A16 is written asymmetric");
    return MQ_OK;
  }
  if (is_ct_aq(o->format)) {
    q->layout = LAYOUT_CT, q->dense = o->packing == MQ_QPACKING_CT_DENSE;
    q->sch = o->format == MQ_QFORMAT_CT_W8A8 ? WS_W8A8_DYN : WS_W4A8_DYN;
    q->bits = q->sch == WS_W8A8_DYN ? 8 : 4;
    q->gs = o->group_size ? o->group_size : 128; /* W4A8 and W<b>A16 layers; W8A8 is per channel */
    q->sym = 1;
    if (o->bits && o->bits != q->bits)
      return mq_errf(err, MQ_ERR_ARG,
                     "--bits %d: %s stores %d-bit weights (use --mix to mix schemes)", o->bits, fn,
                     q->bits);
    if (o->sym == 0)
      return mq_errf(err, MQ_ERR_ARG,
                     "--asym: %s is written symmetric (as llm-compressor's preset)", fn);
    if (o->desc_act) return mq_errf(err, MQ_ERR_ARG, "--desc-act: int-quantized stores no g_idx");
    if (o->n_layer_bits)
      return mq_errf(err, MQ_ERR_ARG, "--layer-bits: use --mix REGEX=SCHEME with %s", fn);
    if (q->gs < -1 || q->gs == 0)
      return mq_errf(err, MQ_ERR_ARG, "group size must be positive or -1 (per channel), not %d",
                     q->gs);
    return MQ_OK;
  }
  q->bits = o->bits ? o->bits : o->format == MQ_QFORMAT_CT_W8A16 ? 8 : 4;
  q->gs = o->group_size ? o->group_size : 128;
  if (q->gs < -1 || q->gs == 0)
    return mq_errf(err, MQ_ERR_ARG, "group size must be positive or -1 (per channel), not %d",
                   q->gs);
  q->sym = o->sym >= 0 ? o->sym : o->format != MQ_QFORMAT_AWQ;
  int gptq_bits = q->bits == 2 || q->bits == 3 || q->bits == 4 || q->bits == 8;
  switch (o->format) {
  case MQ_QFORMAT_AWQ:
    q->layout = LAYOUT_AWQ;
    if (q->bits != 4)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "AWQ GEMM stores 4-bit weights only, not %d",
                     q->bits);
    if (q->desc_act) return mq_errf(err, MQ_ERR_ARG, "--desc-act: AWQ has no act-order");
    break;
  case MQ_QFORMAT_GPTQ:
  case MQ_QFORMAT_GPTQ_V2:
    q->layout = LAYOUT_GPTQ, q->gidx = 1, q->v1 = o->format == MQ_QFORMAT_GPTQ;
    if (!gptq_bits)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "GPTQ bits must be 2, 3, 4 or 8, not %d", q->bits);
    break;
  case MQ_QFORMAT_AUTOROUND:
    if (q->pack == MQ_QPACKING_DEFAULT)
      q->pack = q->sym ? MQ_QPACKING_AUTO_GPTQ : MQ_QPACKING_AUTO_ROUND; /* what AutoRound picks */
    q->layout = q->pack == MQ_QPACKING_AUTO_AWQ ? LAYOUT_AWQ : LAYOUT_GPTQ;
    q->v1 = q->pack == MQ_QPACKING_AUTO_GPTQ;
    q->gidx = q->pack == MQ_QPACKING_GPTQMODEL;
    if (q->layout == LAYOUT_AWQ && q->bits != 4)
      return mq_errf(err, MQ_ERR_UNSUPPORTED,
                     "auto_round:auto_awq stores 4-bit weights only, not %d", q->bits);
    if (!gptq_bits)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "auto-round bits must be 2, 3, 4 or 8, not %d",
                     q->bits);
    if (q->desc_act && q->pack != MQ_QPACKING_GPTQMODEL)
      return mq_errf(err, MQ_ERR_ARG, "--desc-act: only auto_round:gptqmodel stores a g_idx");
    break;
  default:
    q->layout = LAYOUT_CT, q->dense = o->packing == MQ_QPACKING_CT_DENSE;
    if (q->bits < 2 || q->bits > 8)
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "compressed-tensors int bits must be 2..8, not %d",
                     q->bits);
  }
  return MQ_OK;
}

static mq_rtn_mode rtn_mode(const qset *q) {
  /* the producer's recipe, not the layout: auto_awq packing keeps AutoRound's math */
  if (q->sym)
    return q->fmt == MQ_QFORMAT_AUTOROUND || q->fmt == MQ_QFORMAT_AWQ ? MQ_RTN_SYM_AUTOROUND
                                                                      : MQ_RTN_SYM;
  return q->fmt == MQ_QFORMAT_AWQ ? MQ_RTN_ASYM_AWQ : MQ_RTN_ASYM;
}

/* A --mix value: a scheme (or format) name the format's family can write. */
static int parse_scheme(const qset *q, const char *v, wsch *sch, int *bits) {
  *bits = 16, *sch = WS_FLOAT;
  if (!strcasecmp(v, "FLOAT")) return 0;
  mq_qformat f;
  if (!mq_qformat_parse(v, &f)) { /* a format name of the same family */
    int ms = is_ms_format(f), ct = f >= MQ_QFORMAT_CT_W4A16 && f <= MQ_QFORMAT_CT_W4A8;
    if ((q->layout == LAYOUT_MS) != ms || (ct && q->layout != LAYOUT_CT)) return -1;
    static const struct {
      mq_qformat f;
      wsch s;
      int b;
    } k[] = {{MQ_QFORMAT_CT_W4A16, WS_A16, 4},     {MQ_QFORMAT_CT_W8A16, WS_A16, 8},
             {MQ_QFORMAT_CT_W8A8, WS_W8A8_DYN, 8}, {MQ_QFORMAT_CT_W4A8, WS_W4A8_DYN, 4},
             {MQ_QFORMAT_MS_W8A8, WS_W8A8, 8},     {MQ_QFORMAT_MS_W8A8_DYNAMIC, WS_W8A8_DYN, 8},
             {MQ_QFORMAT_MS_W4A4, WS_W4A4_DYN, 4}, {MQ_QFORMAT_MS_W4A8, WS_W4A8_DYN, 4},
             {MQ_QFORMAT_MS_MXFP8, WS_MXFP8, 8},   {MQ_QFORMAT_MS_W8A16, WS_A16, 8}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
      if (k[i].f == f) return (*sch = k[i].s), (*bits = k[i].b), 0;
    return -1;
  }
  if (q->layout == LAYOUT_MS) {
    static const struct {
      const char *n;
      wsch s;
      int b;
    } k[] = {{"W8A8", WS_W8A8, 8},
             {"W8A8_DYNAMIC", WS_W8A8_DYN, 8},
             {"W4A4_DYNAMIC", WS_W4A4_DYN, 4},
             {"W4A8_DYNAMIC", WS_W4A8_DYN, 4},
             {"W8A8_MXFP8", WS_MXFP8, 8},
             {"W8A16", WS_A16, 8}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
      if (!strcasecmp(v, k[i].n)) return (*sch = k[i].s), (*bits = k[i].b), 0;
    return -1;
  }
  if (q->layout == LAYOUT_CT) {
    if (!strcasecmp(v, "W8A8") || !strcasecmp(v, "W8A8_DYNAMIC"))
      return (*sch = WS_W8A8_DYN), (*bits = 8), 0;
    if (!strcasecmp(v, "W4A8") || !strcasecmp(v, "W4A8_DYNAMIC"))
      return (*sch = WS_W4A8_DYN), (*bits = 4), 0;
  }
  /* W<b>A16 */
  if ((v[0] == 'W' || v[0] == 'w') && v[1] >= '2' && v[1] <= '8' && !strcasecmp(v + 2, "A16")) {
    int b = v[1] - '0';
    int ok = q->layout == LAYOUT_CT    ? 1
             : q->layout == LAYOUT_AWQ ? b == 4
                                       : (b == 2 || b == 3 || b == 4 || b == 8);
    if (!ok) return -1;
    return (*sch = WS_A16), (*bits = b), 0;
  }
  return -1;
}

static const char *family_schemes(const qset *q) {
  switch (q->layout) {
  case LAYOUT_MS:
    return "W8A8, W8A8_DYNAMIC, W4A4_DYNAMIC, W4A8_DYNAMIC, W8A8_MXFP8, W8A16, a modelslim-* "
           "format, FLOAT";
  case LAYOUT_CT: return "W8A8, W4A8, W2A16..W8A16, a ct-* format, FLOAT";
  case LAYOUT_AWQ: return "W4A16, FLOAT";
  default: return "W2A16, W3A16, W4A16, W8A16, FLOAT";
  }
}

/* ---- regexes (PCRE2, anchored at the start like Python re.match) ---- */

static int re_compile(const char *pat, pcre2_code **out, mq_err *err) {
  int ec;
  PCRE2_SIZE off;
  *out = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &ec, &off, NULL);
  if (*out) return MQ_OK;
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(ec, msg, sizeof msg);
  return mq_errf(err, MQ_ERR_ARG, "bad regex '%s' at offset %d: %s", pat, (int)off, (char *)msg);
}

static int re_match(pcre2_code *re, const char *s) {
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  if (!md) return 0;
  int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
  pcre2_match_data_free(md);
  return rc >= 0;
}

/* ---- layers ---- */

/* "model.layers.<L>.<module>.weight" of a linear mixq quantizes: attention,
 * dense MLP, MoE experts (Qwen, Mixtral names), the Qwen2-MoE shared expert. */
static int parse_linear(const char *tn, qlayer *L) {
  static const char pre[] = "model.layers.";
  static const struct {
    const char *mod;
    int grp, role;
  } k[] = {{"self_attn.q_proj", G_ATTN, 0},
           {"self_attn.k_proj", G_ATTN, 1},
           {"self_attn.v_proj", G_ATTN, 2},
           {"self_attn.o_proj", G_ATTN, 3},
           {"mlp.gate_proj", G_MLP, 0},
           {"mlp.up_proj", G_MLP, 1},
           {"mlp.down_proj", G_MLP, 2},
           {"mlp.shared_expert.gate_proj", G_SHARED, 0},
           {"mlp.shared_expert.up_proj", G_SHARED, 1},
           {"mlp.shared_expert.down_proj", G_SHARED, 2}};
  static const struct {
    const char *blk, *proj[3];
  } moe[] = {{"mlp.experts.", {"gate_proj", "up_proj", "down_proj"}},
             {"block_sparse_moe.experts.", {"w1", "w3", "w2"}}};
  if (strncmp(tn, pre, sizeof pre - 1) || !isdigit((unsigned char)tn[sizeof pre - 1])) return 0;
  char *end;
  long l = strtol(tn + sizeof pre - 1, &end, 10);
  if (*end != '.' || l > INT_MAX) return 0;
  const char *m = end + 1;
  L->layer = (int)l, L->expert = -1;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    size_t ml = strlen(k[i].mod);
    if (!strncmp(m, k[i].mod, ml) && !strcmp(m + ml, ".weight"))
      return (L->grp = k[i].grp), (L->role = k[i].role), 1;
  }
  for (size_t i = 0; i < 2; i++) {
    size_t bl = strlen(moe[i].blk);
    if (strncmp(m, moe[i].blk, bl) || !isdigit((unsigned char)m[bl])) continue;
    long e = strtol(m + bl, &end, 10);
    if (*end != '.' || e > INT_MAX) return 0;
    for (int r = 0; r < 3; r++) {
      size_t pl = strlen(moe[i].proj[r]);
      if (!strncmp(end + 1, moe[i].proj[r], pl) && !strcmp(end + 1 + pl, ".weight"))
        return (L->grp = G_EXPERT), (L->expert = (int)e), (L->role = r), 1;
    }
  }
  return 0;
}

static int cmp_layer(const void *a, const void *b) {
  const qlayer *x = a, *y = b;
  if (x->layer != y->layer) return (x->layer > y->layer) - (x->layer < y->layer);
  if (x->grp != y->grp) return x->grp - y->grp;
  if (x->expert != y->expert) return (x->expert > y->expert) - (x->expert < y->expert);
  return x->role - y->role;
}

static int is_fp(mq_dtype t) {
  return t == MQ_DTYPE_F32 || t == MQ_DTYPE_F16 || t == MQ_DTYPE_BF16;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* Collect the Linear layers (sorted) and the other 2-D float weights. */
static int collect(job *J, mq_err *err) {
  J->L = calloc((size_t)J->ck.n_all + 1, sizeof *J->L);
  J->flin = calloc((size_t)J->ck.n_all + 1, sizeof *J->flin);
  if (!J->L || !J->flin) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < J->ck.n_all; i++) {
    const mq_tensor *t = J->ck.all[i];
    qlayer *L = &J->L[J->nL];
    if (parse_linear(t->name, L)) {
      if (t->n_dims != 2 || !is_fp(t->dtype))
        return mq_errf(err, MQ_ERR_FORMAT,
                       "%s: expected a 2-D F32/F16/BF16 weight, found %s rank %d", t->name,
                       mq_dtype_name(t->dtype), t->n_dims);
      size_t nl = strlen(t->name) - strlen(".weight");
      if (nl >= sizeof L->name) return mq_errf(err, MQ_ERR_FORMAT, "%s: name too long", t->name);
      memcpy(L->name, t->name, nl);
      char bn[sizeof L->name + 8];
      snprintf(bn, sizeof bn, "%s.bias", L->name);
      L->w = t, L->b = mq_ckpt_find(&J->ck, bn);
      J->nL++;
    } else if (t->n_dims == 2 && is_fp(t->dtype) && ends_with(t->name, ".weight") &&
               !strstr(t->name, "embed") && strcmp(t->name, "lm_head.weight")) {
      /* a Linear we leave float (router, vision tower, ...): declared below */
      if (!(J->flin[J->nflin] = strndup(t->name, strlen(t->name) - strlen(".weight"))))
        return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      J->nflin++;
    }
  }
  if (!J->nL)
    return mq_errf(
        err, MQ_ERR_FORMAT,
        "%s: no model.layers.N.{self_attn.{q,k,v,o},mlp.{gate,up,down}}_proj.weight tensors",
        J->o->src);
  qsort(J->L, (size_t)J->nL, sizeof *J->L, cmp_layer);
  return MQ_OK;
}

/* Scheme of every layer: --ignore wins, then the first --mix match, then the
 * first --layer-bits match, then the format's scheme. */
static void decide(job *J) {
  const mq_quantize_opts *o = J->o;
  for (int i = 0; i < J->nL; i++) {
    qlayer *L = &J->L[i];
    int out = -1, conflict = 0, set = 0;
    for (int r = 0; r < o->n_ignore && !set; r++)
      if (re_match(J->re_ign[r], L->name)) L->sch = WS_FLOAT, L->bits = 16, set = 1;
    for (int r = 0; r < o->n_mix && !set; r++)
      if (re_match(J->re_mix[r], L->name))
        L->sch = J->mix_sch[r], L->bits = J->mix_bits[r], set = 1;
    for (int r = 0; r < o->n_ignore; r++)
      if (re_match(J->re_ign[r], L->name)) conflict |= out >= 0 && out != 16, out = 16;
    for (int r = 0; r < o->n_layer_bits; r++)
      if (re_match(J->re_lb[r], L->name)) {
        conflict |= out >= 0 && out != o->layer_bits[r].bits;
        if (out < 0) out = o->layer_bits[r].bits;
      }
    if (!set) {
      L->bits = out < 0 ? J->q.bits : out;
      L->sch = L->bits == 16 ? WS_FLOAT : out < 0 ? J->q.sch : WS_A16;
    }
    if (conflict && J->q.layout == LAYOUT_GPTQ && J->q.fmt != MQ_QFORMAT_AUTOROUND)
      warn(J,
           "%s: several \"dynamic\" patterns match it with different results; readers take the "
           "first in file order%s\n",
           L->name, "");
  }
}

/* Layers readers require to share one scheme: the shards of a fused layer
 * (q/k/v; gate/up of the MLP, of each expert, of the shared expert) and the
 * experts of one MoE layer (all w13 alike, all w2 alike). Returns the index
 * of the first layer of i's set (i itself when it leads it). */
static int agree_with(const job *J, int i) {
  const qlayer *L = &J->L[i];
  int lead = i;
  for (int j = i - 1; j >= 0; j--) {
    const qlayer *P = &J->L[j];
    if (P->layer != L->layer || P->grp != L->grp) break;
    int same;
    switch (L->grp) {
    case G_ATTN: same = L->role < 3 && P->role < 3; break;
    case G_EXPERT: same = (L->role < 2) == (P->role < 2); break;
    default: same = L->role < 2 && P->role < 2;
    }
    if (same) lead = j;
  }
  return lead;
}

/* With --mix a disagreement is an error (unless --allow-inconsistent); with
 * --layer-bits / --ignore only, a warning (as before --mix existed). */
static int check_consistency(job *J, mq_err *err) {
  char a[32], b[32];
  for (int i = 0; i < J->nL; i++) {
    int j = agree_with(J, i);
    const qlayer *P = &J->L[j], *L = &J->L[i];
    if (j == i || (P->sch == L->sch && P->bits == L->bits)) continue;
    if (J->o->n_mix && !J->o->allow_inconsistent)
      return mq_errf(err, MQ_ERR_ARG,
                     "%s would be %s but %s is %s: readers refuse fused shards (q/k/v, gate/up) "
                     "and experts of one layer with different schemes (adjust --mix, or pass "
                     "--allow-inconsistent to write such a checkpoint anyway)",
                     L->name, mq_wr_sch_name(&J->q, L->sch, L->bits, a, sizeof a), P->name,
                     mq_wr_sch_name(&J->q, P->sch, P->bits, b, sizeof b));
    if (!J->o->allow_inconsistent)
      warn(J, "%s and %s get different schemes; vLLM/SGLang refuse to fuse them\n", P->name,
           L->name);
  }
  return MQ_OK;
}

static int group_size_of(const qset *q, int64_t K) { return q->gs == -1 ? (int)K : q->gs; }

/* AWQ's modules_to_not_convert is matched by substring (AutoAWQ, vLLM, mixq):
 * a float-declared name inside a quantized layer's name would unquantize it. */
static int check_awq_skips(const job *J, mq_err *err) {
  for (int i = 0; i < J->nL + J->nflin; i++) {
    const char *f = i < J->nL ? J->L[i].name : J->flin[i - J->nL];
    if (i < J->nL && J->L[i].bits != 16) continue;
    for (int j = 0; j < J->nL; j++)
      if (J->L[j].bits != 16 && strstr(J->L[j].name, f))
        return mq_errf(err, MQ_ERR_UNSUPPORTED,
                       "AWQ: %s stays float, but modules_to_not_convert matches by substring and "
                       "would also leave %s float; AWQ cannot express this model",
                       f, J->L[j].name);
  }
  return MQ_OK;
}

/* Everything that could fail on a layer's shape, before anything is written. */
static int validate(const job *J, const qlayer *L, mq_err *err) {
  const qset *q = &J->q;
  int b = L->bits;
  int64_t N = L->w->shape[0], K = L->w->shape[1];
  if (b == 16) return MQ_OK;
  if (N <= 0 || K <= 0 || N > INT32_MAX || K > INT32_MAX)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: bad weight shape [%lld, %lld]", L->name, (long long)N,
                   (long long)K);
  if (L->b && (L->b->n_dims != 1 || L->b->shape[0] != N || !is_fp(L->b->dtype)))
    return mq_errf(err, MQ_ERR_FORMAT, "%s.bias: expected a float [%lld]", L->name, (long long)N);
  if (q->layout == LAYOUT_MS) return mq_wr_ms_validate(J, L, err);
  if (q->layout == LAYOUT_AWQ && b != 4)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: AWQ cannot mix bit widths (%d bits asked; only 4, or 16 = float)", L->name,
                   b);
  if (q->layout == LAYOUT_GPTQ && mq_pack_gptq_words(32, b) < 0)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: GPTQ bits must be 2, 3, 4 or 8 (or 16 = float), not %d", L->name, b);
  if (q->layout == LAYOUT_CT && (b < 2 || b > 8))
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: int bits must be 2..8 (or 16 = float), not %d",
                   L->name, b);
  int gs = L->sch == WS_W8A8_DYN ? (int)K : group_size_of(q, K);
  if (K % gs)
    return mq_errf(err, MQ_ERR_ARG,
                   "%s: group size %d does not divide K = %lld (choose a divisor, or -1)", L->name,
                   gs, (long long)K);
  if (q->layout == LAYOUT_AWQ && N % 8)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: AWQ GEMM needs N %% 8 == 0, N = %lld", L->name,
                   (long long)N);
  if (q->layout == LAYOUT_GPTQ && (mq_pack_gptq_words(K, b) < 0 || mq_pack_gptq_words(N, b) < 0))
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: %d-bit GPTQ packing needs K and N multiples of %d, have [%lld, %lld]",
                   L->name, b, b == 3 ? 32 : 32 / b, (long long)N, (long long)K);
  return MQ_OK;
}

/* ---- tensors ---- */

static float elem_f32(const uint8_t *p, mq_dtype dt) {
  uint32_t u = 0;
  uint16_t h;
  if (dt == MQ_DTYPE_F32) return memcpy(&u, p, 4), mq_bits_to_f32(u);
  memcpy(&h, p, 2);
  return dt == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
}

float *mq_wr_load_f32(const mq_tensor *t) {
  float *v = malloc((size_t)(t->n_elems ? t->n_elems : 1) * sizeof *v);
  const int esz = mq_dtype_size(t->dtype);
  for (uint64_t i = 0; v && i < t->n_elems; i++)
    v[i] = elem_f32(t->data + i * (size_t)esz, t->dtype);
  return v;
}

void mq_wr_store_floats(const float *v, size_t n, mq_dtype dt, void *out) {
  for (size_t i = 0; i < n; i++) {
    if (dt == MQ_DTYPE_F32)
      memcpy((uint8_t *)out + 4 * i, &v[i], 4);
    else {
      uint16_t h = dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v[i]) : mq_f32_to_bf16(v[i]);
      memcpy((uint8_t *)out + 2 * i, &h, 2);
    }
  }
}

int mq_wr_add(mq_st_writer *w, const char *mod, const char *suffix, mq_dtype dt, int nd, int64_t d0,
              int64_t d1, const void *data, mq_err *err) {
  char name[300];
  int64_t shape[2] = {d0, d1};
  snprintf(name, sizeof name, "%s.%s", mod, suffix);
  return mq_st_writer_add(w, name, dt, nd, shape, data, err);
}

uint64_t mq_wr_seed(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: each name its own stream */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  return h ^ (seed * 0x9E3779B97F4A7C15ull);
}

/* Quantize one weight-only Linear and add its tensors in the format's layout. */
static int emit(job *J, mq_st_writer *w, const qlayer *L, mq_err *err) {
  const qset *q = &J->q;
  const mq_tensor *t = L->w;
  const int64_t N = t->shape[0], K = t->shape[1];
  const int b = L->bits, gs = group_size_of(q, K);
  const int64_t G = K / gs;
  const mq_dtype sdt = q->layout == LAYOUT_CT ? t->dtype : MQ_DTYPE_F16; /* CT: model dtype */
  size_t nk = (size_t)(N * K), ng = (size_t)(N * G);
  float *W = mq_wr_load_f32(t), *s = malloc(ng * sizeof *s);
  uint8_t *qv = malloc(nk), *z = malloc(ng), *tr = malloc(nk > ng ? nk : ng); /* tr: transposes */
  int32_t *gi = malloc((size_t)K * sizeof *gi);
  uint32_t *pk = malloc((nk + ng) * sizeof *pk + 64); /* any packing of qv or z fits */
  void *sc = malloc(ng * 4);
  int rc = (W && s && qv && z && tr && gi && pk && sc)
               ? MQ_OK
               : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  if (rc == MQ_OK && q->desc_act)
    rc = mq_rtn_actorder_gidx(K, gs, mq_wr_seed(J->o->seed, L->name), gi);
  else
    for (int64_t k = 0; rc == MQ_OK && k < K; k++) gi[k] = (int32_t)(k / gs);
  if (rc == MQ_OK) {
    mq_rtn_params p = {b, gs, (int)G, q->desc_act ? gi : NULL, rtn_mode(q), sdt};
    rc = mq_rtn_quantize(W, N, K, &p, qv, s, z, err);
  }
  if (rc == MQ_OK && q->layout != LAYOUT_CT) {
    /* AWQ and GPTQ are transposed: qweight rows / scales rows are K / groups */
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++) tr[k * N + n] = qv[n * K + k];
    if (q->layout == LAYOUT_AWQ) { /* qweight [K, N/8] */
      mq_pack_awq(tr, K, N, pk);
      rc = mq_wr_add(w, L->name, "qweight", MQ_DTYPE_I32, 2, K, N / 8, pk, err);
    } else { /* qweight [K*b/32, N] */
      mq_pack_gptq_rows(tr, K, N, b, pk);
      rc = mq_wr_add(w, L->name, "qweight", MQ_DTYPE_I32, 2, mq_pack_gptq_words(K, b), N, pk, err);
    }
    for (int64_t n = 0; n < N; n++)
      for (int64_t g = 0; g < G; g++) {
        tr[g * N + n] = z[n * G + g];
        W[g * N + n] = s[n * G + g]; /* W reused: scales [G, N] */
      }
    if (rc == MQ_OK && q->layout == LAYOUT_AWQ) { /* qzeros [G, N/8] */
      mq_pack_awq(tr, G, N, pk);
      rc = mq_wr_add(w, L->name, "qzeros", MQ_DTYPE_I32, 2, G, N / 8, pk, err);
    } else if (rc == MQ_OK) { /* qzeros [G, N*b/32] */
      int64_t nw = mq_pack_gptq_words(N, b);
      mq_pack_gptq_cols(tr, G, N, b, pk);
      if (q->v1) mq_pack_gptq_zeros_to_v1(pk, G * nw, b);
      rc = mq_wr_add(w, L->name, "qzeros", MQ_DTYPE_I32, 2, G, nw, pk, err);
    }
    mq_wr_store_floats(W, ng, MQ_DTYPE_F16, sc);
    if (rc == MQ_OK) rc = mq_wr_add(w, L->name, "scales", MQ_DTYPE_F16, 2, G, N, sc, err);
    if (rc == MQ_OK && q->gidx) rc = mq_wr_add(w, L->name, "g_idx", MQ_DTYPE_I32, 1, K, 0, gi, err);
    if (rc == MQ_OK && L->b) { /* the producers store the bias as fp16 */
      float *bv = W;           /* N <= G*N floats of room */
      for (int64_t n = 0; n < N; n++)
        bv[n] = elem_f32(L->b->data + n * mq_dtype_size(L->b->dtype), L->b->dtype);
      mq_wr_store_floats(bv, (size_t)N, MQ_DTYPE_F16, sc);
      rc = mq_wr_add(w, L->name, "bias", MQ_DTYPE_F16, 1, N, 0, sc, err);
    }
  } else if (rc == MQ_OK) { /* compressed-tensors: [N, K] orientation kept */
    int64_t kw = mq_pack_ct_words(K, b, q->dense), nw = mq_pack_ct_words(N, b, q->dense);
    int64_t shape[2] = {N, K};
    mq_pack_ct(qv, N, K, b, q->dense, pk); /* codes are already offset-binary q + 2^(b-1) */
    rc = mq_wr_add(w, L->name, "weight_packed", MQ_DTYPE_I32, 2, N, kw, pk, err);
    mq_wr_store_floats(s, ng, sdt, sc);
    if (rc == MQ_OK) rc = mq_wr_add(w, L->name, "weight_scale", sdt, 2, N, G, sc, err);
    if (rc == MQ_OK) rc = mq_wr_add(w, L->name, "weight_shape", MQ_DTYPE_I64, 1, 2, 0, shape, err);
    if (rc == MQ_OK && !q->sym) { /* zero points packed along N: [nw, G] */
      mq_pack_ct_dim0(z, N, G, b, q->dense, pk);
      rc = mq_wr_add(w, L->name, "weight_zero_point", MQ_DTYPE_I32, 2, nw, G, pk, err);
    }
    if (rc == MQ_OK && q->desc_act)
      rc = mq_wr_add(w, L->name, "weight_g_idx", MQ_DTYPE_I32, 1, K, 0, gi, err);
    if (rc == MQ_OK && L->b)
      rc = mq_st_writer_add(w, L->b->name, L->b->dtype, 1, L->b->shape, L->b->data, err);
  }
  free(W), free(s), free(qv), free(z), free(tr), free(gi), free(pk), free(sc);
  return rc == MQ_OK ? rc : mq_err_prefix(err, "%s: ", L->name);
}

/* compressed-tensors int-quantized (W8A8 / W4A8): signed values in I8 [N, K]
 * (int4 unpacked, one per byte), symmetric scale in the model dtype, per
 * channel [N, 1] (W8A8) or per group [N, K/gs] (W4A8), bias unchanged. */
static int emit_ct_int(job *J, mq_st_writer *w, const qlayer *L, mq_err *err) {
  const mq_tensor *t = L->w;
  const int64_t N = t->shape[0], K = t->shape[1];
  const int b = L->bits, gs = L->sch == WS_W8A8_DYN ? (int)K : group_size_of(&J->q, K);
  const int64_t G = K / gs;
  size_t nk = (size_t)(N * K), ng = (size_t)(N * G);
  float *W = mq_wr_load_f32(t), *s = malloc(ng * sizeof *s);
  uint8_t *qv = malloc(nk), *z = malloc(ng);
  void *sc = malloc(ng * 4);
  int rc = W && s && qv && z && sc ? MQ_OK : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  if (rc == MQ_OK) {
    mq_rtn_params p = {b, gs, (int)G, NULL, MQ_RTN_SYM, t->dtype};
    rc = mq_rtn_quantize(W, N, K, &p, qv, s, z, err);
  }
  if (rc == MQ_OK) {
    for (size_t i = 0; i < nk; i++) qv[i] = (uint8_t)(int8_t)((int)qv[i] - (1 << (b - 1)));
    rc = mq_wr_add(w, L->name, "weight", MQ_DTYPE_I8, 2, N, K, qv, err);
  }
  if (rc == MQ_OK) mq_wr_store_floats(s, ng, t->dtype, sc);
  if (rc == MQ_OK) rc = mq_wr_add(w, L->name, "weight_scale", t->dtype, 2, N, G, sc, err);
  if (rc == MQ_OK && L->b)
    rc = mq_st_writer_add(w, L->b->name, L->b->dtype, 1, L->b->shape, L->b->data, err);
  free(W), free(s), free(qv), free(z), free(sc);
  return rc == MQ_OK ? rc : mq_err_prefix(err, "%s: ", L->name);
}
/* ---- quantization_config, as each producer writes it ---- */

static json_t *str_array(void) { return json_array(); }

/* PCRE-escaped exact module name, anchored at the end: for GPTQModel `dynamic`. */
static json_t *exact_re(const char *prefix, const char *name) {
  char buf[600];
  size_t o = strlen(prefix);
  memcpy(buf, prefix, o);
  for (const char *p = name; *p && o + 4 < sizeof buf; p++) {
    if (strchr("\\.^$|?*+()[]{}", *p)) buf[o++] = '\\';
    buf[o++] = *p;
  }
  buf[o++] = '$', buf[o] = 0;
  return json_string(buf);
}

static int in_block(const char *name) { return !strncmp(name, "model.layers.", 13); }

static json_t *qc_gptq_dynamic(const job *J) {
  const mq_quantize_opts *o = J->o;
  json_t *d = json_object();
  char key[600];
  for (int r = 0; r < o->n_ignore; r++) {
    snprintf(key, sizeof key, "-:%s", o->ignore[r]);
    if (!json_object_get(d, key)) json_object_set_new(d, key, json_object());
  }
  for (int r = 0; r < o->n_mix; r++) { /* --mix comes before --layer-bits, as in decide() */
    int bb = J->mix_bits[r];
    snprintf(key, sizeof key, "%s%s", bb == 16 ? "-:" : "+:", o->mix[r].regex);
    if (json_object_get(d, key)) continue;
    json_object_set_new(d, key, bb == 16 ? json_object() : json_pack("{s:i}", "bits", bb));
  }
  for (int r = 0; r < o->n_layer_bits; r++) {
    int bb = o->layer_bits[r].bits;
    snprintf(key, sizeof key, "%s%s", bb == 16 ? "-:" : "+:", o->layer_bits[r].regex);
    if (json_object_get(d, key)) continue; /* first one wins, as in our matching */
    json_object_set_new(d, key, bb == 16 ? json_object() : json_pack("{s:i}", "bits", bb));
  }
  for (int i = 0; i < J->nflin; i++)
    if (in_block(J->flin[i])) {
      json_t *k = exact_re("-:", J->flin[i]);
      json_object_set_new(d, json_string_value(k), json_object());
      json_decref(k);
    }
  if (json_object_size(d)) return d;
  json_decref(d);
  return NULL;
}

static json_t *qc_awq(const job *J) {
  json_t *skip = str_array();
  for (int i = 0; i < J->nL; i++)
    if (J->L[i].bits == 16) json_array_append_new(skip, json_string(J->L[i].name));
  for (int i = 0; i < J->nflin; i++) json_array_append_new(skip, json_string(J->flin[i]));
  if (!json_array_size(skip)) json_decref(skip), skip = json_null();
  /* AutoAWQ AwqConfig.to_transformers_dict(), in its key order */
  return json_pack("{s:s, s:b, s:i, s:i, s:s, s:o}", "quant_method", "awq", "zero_point", !J->q.sym,
                   "group_size", J->q.gs, "bits", 4, "version", "gemm", "modules_to_not_convert",
                   skip);
}

static json_t *qc_gptq(const job *J) {
  const qset *q = &J->q;
  json_t *c, *dyn = qc_gptq_dynamic(J);
  if (q->v1) /* AutoGPTQ BaseQuantizeConfig.to_dict() */
    c = json_pack("{s:i, s:i, s:f, s:b, s:b, s:b, s:b, s:s, s:s, s:s, s:s}", "bits", q->bits,
                  "group_size", q->gs, "damp_percent", 0.01, "desc_act", q->desc_act,
                  "static_groups", 0, "sym", q->sym, "true_sequential", 1, "model_name_or_path",
                  J->o->dst, "model_file_base_name", "model", "quant_method", "gptq",
                  "checkpoint_format", "gptq");
  else /* GPTQModel QuantizeConfig.to_dict() */
    c = json_pack("{s:i, s:i, s:b, s:b, s:s, s:s, s:s, s:{s:[s], s:b, s:b}, s:b, s:s}", "bits",
                  q->bits, "group_size", q->gs, "desc_act", q->desc_act, "lm_head", 0,
                  "quant_method", "gptq", "checkpoint_format", "gptq_v2", "pack_dtype", "int32",
                  "meta", "quantizer", "mixq:" MIXQ_VERSION, "static_groups", 0, "true_sequential",
                  1, "sym", q->sym, "format", "gptq_v2");
  if (c && dyn)
    json_object_set_new(c, "dynamic", dyn); /* AutoGPTQ has none: GPTQModel's key */
  else
    json_decref(dyn);
  return c;
}

static json_t *qc_autoround(const job *J) {
  const qset *q = &J->q;
  json_t *extra = json_object();
  for (int i = 0; i < J->nL; i++) /* only the keys that differ, exact module names */
    if (J->L[i].bits != q->bits)
      json_object_set_new(extra, J->L[i].name, json_pack("{s:i}", "bits", J->L[i].bits));
  for (int i = 0; i < J->nflin; i++)
    if (in_block(J->flin[i]))
      json_object_set_new(extra, J->flin[i], json_pack("{s:i}", "bits", 16));
  json_t *c = json_pack("{s:i, s:i, s:b, s:s, s:i, s:s, s:s, s:s}", "bits", q->bits, "group_size",
                        q->gs, "sym", q->sym, "data_type", "int", "iters", 0, "packing_format",
                        packing_format(q->pack), "quant_method", "auto-round",
                        "block_name_to_quantize", "model.layers");
  if (c && json_object_size(extra))
    json_object_set_new(c, "extra_config", extra);
  else
    json_decref(extra);
  return c;
}

/* QuantizationArgs in compressed-tensors' key order. */
static json_t *ct_args(int bits, int sym, const char *strategy, int gs, int dynamic, int actorder) {
  return json_pack("{s:i, s:s, s:b, s:s, s:o, s:n, s:b, s:o, s:o, s:{}, s:n, s:n}", "num_bits",
                   bits, "type", "int", "symmetric", sym, "strategy", strategy, "group_size",
                   gs > 0 ? json_integer(gs) : json_null(), "block_structure", "dynamic", dynamic,
                   "actorder", actorder ? json_string("group") : json_null(), "observer",
                   dynamic ? json_null() : json_string("minmax"), "observer_kwargs", "scale_dtype",
                   "zp_dtype");
}

static const char *ct_format_of(wsch s) { return s == WS_A16 ? "pack-quantized" : "int-quantized"; }

/* One config_groups entry: weight-only groups as pack-quantized, W8A8 (int8
 * channel) and W4A8 (int4 group) as int-quantized with llm-compressor's
 * dynamic per-token int8 input_activations. */
static json_t *ct_group(const qset *q, wsch sch, int bits, json_t *targets) {
  json_t *w, *a = json_null();
  if (sch == WS_A16) {
    w = ct_args(bits, q->sym, q->gs == -1 ? "channel" : "group", q->gs, 0, q->desc_act);
  } else {
    int chan = sch == WS_W8A8_DYN || q->gs == -1;
    w = ct_args(bits, 1, chan ? "channel" : "group", chan ? -1 : q->gs, 0, 0);
    a = ct_args(8, 1, "token", -1, 1, 0);
  }
  return json_pack("{s:o, s:o, s:o, s:n, s:s}", "targets", targets, "weights", w,
                   "input_activations", a, "output_activations", "format", ct_format_of(sch));
}

/* The ignore entry of a router: the regex llm-compressor recipes use. */
static const char *router_regex(const char *name) {
  if (ends_with(name, ".block_sparse_moe.gate")) return "re:.*block_sparse_moe.gate$";
  if (ends_with(name, ".mlp.shared_expert_gate")) return "re:.*shared_expert_gate$";
  if (ends_with(name, ".mlp.gate")) return "re:.*mlp.gate$";
  return NULL;
}

static void append_once(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return;
  json_array_append_new(arr, json_string(s));
}

static json_t *qc_ct(const job *J) {
  const qset *q = &J->q;
  json_t *groups = json_object(), *ign = json_pack("[s]", "lm_head");
  json_object_set_new(groups, "group_0", ct_group(q, q->sch, q->bits, json_pack("[s]", "Linear")));
  const char *fmt = ct_format_of(q->sch);
  int ng = 1;
  for (int i = 0; i < J->nL; i++) {
    const qlayer *L = &J->L[i];
    if (L->bits == 16) json_array_append_new(ign, json_string(L->name));
    if (L->bits == 16 || (L->sch == q->sch && L->bits == q->bits)) continue;
    int seen = 0; /* one extra group per scheme, targets = exact names */
    for (int j = 0; j < i && !seen; j++) seen = J->L[j].sch == L->sch && J->L[j].bits == L->bits;
    if (seen) continue;
    json_t *t = json_array();
    for (int j = i; j < J->nL; j++)
      if (J->L[j].sch == L->sch && J->L[j].bits == L->bits)
        json_array_append_new(t, json_string(J->L[j].name));
    char gname[32];
    snprintf(gname, sizeof gname, "group_%d", ng++);
    json_object_set_new(groups, gname, ct_group(q, L->sch, L->bits, t));
    if (strcmp(fmt, ct_format_of(L->sch))) fmt = "mixed-precision";
  }
  for (int i = 0; i < J->nflin; i++) {
    const char *re = router_regex(J->flin[i]);
    append_once(ign, re ? re : J->flin[i]);
  }
  return json_pack("{s:o, s:s, s:n, s:o, s:n, s:s, s:s, s:{}, s:{}, s:s}", "config_groups", groups,
                   "format", fmt, "global_compression_ratio", "ignore", ign, "kv_cache_scheme",
                   "quant_method", "compressed-tensors", "quantization_status", "compressed",
                   "sparsity_config", "transform_config", "version",
                   q->dense ? "0.18.0" : "0.12.2");
}

/* ---- files ---- */

/* Digits (%.Ng) every real in j needs to read back exactly: 1e-06 stays
 * "1e-06" instead of jansson's default 17-digit "9.9999999999999995e-07". */
static int real_digits(const json_t *j) {
  int p = 1;
  if (json_is_real(j)) {
    double v = json_real_value(j);
    char buf[64];
    while (p < 17 && (snprintf(buf, sizeof buf, "%.*g", p, v), strtod(buf, NULL) != v)) p++;
  } else if (json_is_object(j)) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)j, k, x) {
      int q = real_digits(x);
      p = q > p ? q : p;
    }
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) {
      int q = real_digits(json_array_get(j, i));
      p = q > p ? q : p;
    }
  }
  return p;
}

static int write_json(const char *dir, const char *name, json_t *j, mq_err *err) {
  char path[PATH_MAX];
  size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(real_digits(j));
  if (mq_path_join(path, sizeof path, dir, name) || json_dump_file(j, path, flags) != 0)
    return mq_errf(err, MQ_ERR_IO, "%s/%s: cannot write", dir, name);
  return MQ_OK;
}

/* Tokenizer and generation files travel with the weights. */
static int is_side_file(const char *n) {
  static const char *const k[] = {"special_tokens_map.json",
                                  "generation_config.json",
                                  "vocab.json",
                                  "vocab.txt",
                                  "merges.txt",
                                  "added_tokens.json",
                                  "chat_template.jinja",
                                  "chat_template.json",
                                  "preprocessor_config.json",
                                  "processor_config.json"};
  if (!strncmp(n, "tokenizer", 9) || ends_with(n, ".tiktoken")) return 1;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(n, k[i])) return 1;
  return 0;
}

static int copy_file(const char *from, const char *to, mq_err *err) {
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  char buf[65536];
  size_t n;
  int ok = in && out;
  while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
  ok = ok && !ferror(in);
  if (in) fclose(in);
  if (out && fclose(out) != 0) ok = 0;
  return ok ? MQ_OK : mq_errf(err, MQ_ERR_IO, "cannot copy %s to %s", from, to);
}

static int copy_side_files(const char *src, const char *dst, mq_err *err) {
  DIR *d = opendir(src);
  if (!d) return mq_errf(err, MQ_ERR_IO, "%s: cannot open directory", src);
  struct dirent *de;
  int rc = MQ_OK;
  char a[PATH_MAX], b[PATH_MAX];
  struct stat st;
  while (rc == MQ_OK && (de = readdir(d)))
    if (de->d_name[0] != '.' && is_side_file(de->d_name) &&
        !mq_path_join(a, sizeof a, src, de->d_name) && !stat(a, &st) && S_ISREG(st.st_mode) &&
        !mq_path_join(b, sizeof b, dst, de->d_name))
      rc = copy_file(a, b, err);
  closedir(d);
  return rc;
}

static int make_dst(const char *src, const char *dst, mq_err *err) {
  struct stat st;
  if (mkdir(dst, 0777) != 0 && errno != EEXIST)
    return mq_errf(err, MQ_ERR_IO, "%s: cannot create directory: %s", dst, strerror(errno));
  if (stat(dst, &st) != 0 || !S_ISDIR(st.st_mode))
    return mq_errf(err, MQ_ERR_IO, "%s: not a directory", dst);
  char *a = realpath(src, NULL), *b = realpath(dst, NULL);
  int same = a && b && !strcmp(a, b);
  free(a), free(b);
  return same ? mq_errf(err, MQ_ERR_ARG, "the output directory must differ from the source")
              : MQ_OK;
}

/* Files another format left in DST that readers would pick over ours (a
 * stale quant_model_description.json makes any checkpoint ModelSlim, a stale
 * model.safetensors wins over quant_model_weights.safetensors). */
static int check_stale(const char *dst, int ms, mq_err *err) {
  static const char *const k_ms[] = {"model.safetensors", "model.safetensors.index.json"};
  static const char *const k_other[] = {"quant_model_description.json",
                                        "quant_model_weights.safetensors",
                                        "quant_model_weights.safetensors.index.json"};
  const char *const *k = ms ? k_ms : k_other;
  char p[PATH_MAX];
  struct stat st;
  for (int i = 0; i < (ms ? 2 : 3); i++)
    if (!mq_path_join(p, sizeof p, dst, k[i]) && stat(p, &st) == 0)
      return mq_errf(err, MQ_ERR_ARG,
                     "%s already holds %s from another format, which readers would pick up; "
                     "write into an empty directory",
                     dst, k[i]);
  return MQ_OK;
}

/* ---- driver ---- */

static void job_free(job *J) {
  for (int i = 0; J->re_ign && i < J->o->n_ignore; i++) pcre2_code_free(J->re_ign[i]);
  for (int i = 0; J->re_lb && i < J->o->n_layer_bits; i++) pcre2_code_free(J->re_lb[i]);
  for (int i = 0; J->re_mix && i < J->o->n_mix; i++) pcre2_code_free(J->re_mix[i]);
  for (int i = 0; i < J->nflin; i++) free(J->flin[i]);
  free(J->re_ign), free(J->re_lb), free(J->re_mix), free(J->mix_sch), free(J->mix_bits);
  free(J->flin), free(J->L);
  mq_ckpt_close(&J->ck);
}

/* Options, regexes and --mix values, before the source is opened. */
static int prepare(job *J, mq_err *err) {
  const mq_quantize_opts *o = J->o;
  int rc = resolve(o, &J->q, err);
  if (rc != MQ_OK) return rc;
  J->re_ign = calloc((size_t)o->n_ignore + 1, sizeof *J->re_ign);
  J->re_lb = calloc((size_t)o->n_layer_bits + 1, sizeof *J->re_lb);
  J->re_mix = calloc((size_t)o->n_mix + 1, sizeof *J->re_mix);
  J->mix_sch = calloc((size_t)o->n_mix + 1, sizeof *J->mix_sch);
  J->mix_bits = calloc((size_t)o->n_mix + 1, sizeof *J->mix_bits);
  if (!J->re_ign || !J->re_lb || !J->re_mix || !J->mix_sch || !J->mix_bits)
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; rc == MQ_OK && i < o->n_ignore; i++)
    rc = re_compile(o->ignore[i], &J->re_ign[i], err);
  for (int i = 0; rc == MQ_OK && i < o->n_layer_bits; i++) {
    int b = o->layer_bits[i].bits;
    if (b != 16 && (b < 2 || b > 8))
      rc = mq_errf(err, MQ_ERR_ARG, "--layer-bits %s=%d: bits must be 2..8 or 16",
                   o->layer_bits[i].regex, b);
    else
      rc = re_compile(o->layer_bits[i].regex, &J->re_lb[i], err);
  }
  for (int i = 0; rc == MQ_OK && i < o->n_mix; i++) {
    const mq_mix_rule *r = &o->mix[i];
    if (!r->regex || !r->scheme || !*r->regex)
      return mq_errf(err, MQ_ERR_ARG, "--mix: rule %d needs REGEX=SCHEME", i + 1);
    if (parse_scheme(&J->q, r->scheme, &J->mix_sch[i], &J->mix_bits[i]))
      return mq_errf(err, MQ_ERR_ARG, "--mix %s=%s: %s cannot write scheme '%s' (it writes: %s)",
                     r->regex, r->scheme, format_name(J->q.fmt), r->scheme, family_schemes(&J->q));
    rc = re_compile(r->regex, &J->re_mix[i], err);
  }
  return rc;
}

/* config.json torch_dtype ("dtype" in newer transformers), else the first
 * layer's weights: bfloat16 or not (ModelSlim's deq_scale dtype depends on it). */
static int model_is_bf16(const json_t *cfg, const job *J) {
  const json_t *d = json_object_get(cfg, "torch_dtype");
  if (!json_is_string(d)) d = json_object_get(cfg, "dtype");
  if (json_is_string(d)) return !strcmp(json_string_value(d), "bfloat16");
  return J->nL && J->L[0].w->dtype == MQ_DTYPE_BF16;
}

/* owner[i] of checkpoint tensor i: l for the weight of quantized layer l,
 * -2 - l for its bias, -1 for a tensor copied as it is. Caller frees. */
static int *owners(const job *J) {
  int *own = malloc((size_t)(J->ck.n_all + 1) * sizeof *own);
  for (int i = 0; own && i < J->ck.n_all; i++) own[i] = -1;
  for (int l = 0; own && l < J->nL; l++) {
    if (J->L[l].bits == 16) continue;
    own[mq_strmap_gets(&J->ck.by_name, J->L[l].w->name)] = l;
    if (J->L[l].b) own[mq_strmap_gets(&J->ck.by_name, J->L[l].b->name)] = -2 - l;
  }
  return own;
}

static int run(job *J, json_t **cfg, mq_err *err) {
  const mq_quantize_opts *o = J->o;
  int rc = prepare(J, err);
  char path[PATH_MAX];
  if (rc == MQ_OK && mq_path_join(path, sizeof path, o->src, "config.json"))
    rc = mq_errf(err, MQ_ERR_ARG, "%s: path too long", o->src);
  if (rc == MQ_OK) rc = mq_json_load_file(path, 16u << 20, cfg, err);
  if (rc == MQ_OK && !json_is_object(*cfg))
    rc = mq_errf(err, MQ_ERR_FORMAT, "%s: not a JSON object", path);
  if (rc == MQ_OK && json_object_get(*cfg, "quantization_config"))
    rc = mq_errf(err, MQ_ERR_UNSUPPORTED,
                 "%s: the source is already quantized (quantization_config)", path);
  if (rc == MQ_OK) rc = mq_ckpt_open(o->src, &J->ck, err);
  if (rc == MQ_OK) rc = collect(J, err);
  if (rc == MQ_OK) decide(J), J->model_bf16 = model_is_bf16(*cfg, J);
  if (rc == MQ_OK) rc = check_consistency(J, err);
  for (int i = 0; rc == MQ_OK && i < J->nL; i++) rc = validate(J, &J->L[i], err);
  if (rc == MQ_OK && J->q.layout == LAYOUT_AWQ) rc = check_awq_skips(J, err);
  if (rc == MQ_OK) rc = make_dst(o->src, o->dst, err);
  if (rc == MQ_OK) rc = check_stale(o->dst, J->q.layout == LAYOUT_MS, err);
  if (rc != MQ_OK) return rc;

  const int ms = J->q.layout == LAYOUT_MS;
  json_t *desc = ms ? json_object() : NULL;
  mq_st_writer *w = mq_st_writer_new();
  int *own = owners(J);
  if (!w || !own || (ms && !desc)) {
    mq_st_writer_free(w), json_decref(desc), free(own);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  /* in the source's order; a quantized layer's tensors where its weight was */
  for (int i = 0; rc == MQ_OK && i < J->ck.n_all; i++) {
    const mq_tensor *t = J->ck.all[i];
    if (own[i] < -1) continue; /* the bias goes with its layer */
    if (own[i] >= 0) {
      const qlayer *L = &J->L[own[i]];
      rc = ms                                             ? mq_wr_ms_emit(J, w, desc, L, err)
           : J->q.layout == LAYOUT_CT && L->sch != WS_A16 ? emit_ct_int(J, w, L, err)
                                                          : emit(J, w, L, err);
      J->rep.n_quantized++;
      continue;
    }
    rc = mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, err);
    if (ms && rc == MQ_OK) json_object_set_new(desc, t->name, json_string("FLOAT"));
    J->rep.n_copied++;
  }
  free(own);
  for (int l = 0; l < J->nL; l++)
    if (J->L[l].bits == 16) J->rep.n_float++, J->rep.n_copied -= 1 + (J->L[l].b != NULL);
  if (rc == MQ_OK) rc = mq_st_writer_meta(w, "format", "pt", err);
  if (rc == MQ_OK && mq_path_join(path, sizeof path, o->dst,
                                  ms ? "quant_model_weights.safetensors" : "model.safetensors"))
    rc = mq_errf(err, MQ_ERR_ARG, "%s: path too long", o->dst);
  if (rc == MQ_OK) rc = mq_st_writer_save(w, path, err);
  mq_st_writer_free(w);
  if (rc == MQ_OK && ms) { /* ModelSlim: config.json as it was, the description beside it */
    json_object_del(*cfg, "quantization_config");
    rc = mq_wr_ms_finish(J, desc) ? mq_errf(err, MQ_ERR_NOMEM, "out of memory") : MQ_OK;
    if (rc == MQ_OK) rc = write_json(o->dst, "quant_model_description.json", desc, err);
    if (rc == MQ_OK) rc = write_json(o->dst, "config.json", *cfg, err);
  }
  json_decref(desc);
  if (rc != MQ_OK || ms) return rc == MQ_OK ? copy_side_files(o->src, o->dst, err) : rc;

  json_t *qc = J->q.fmt == MQ_QFORMAT_AWQ         ? qc_awq(J)
               : J->q.fmt == MQ_QFORMAT_AUTOROUND ? qc_autoround(J)
               : J->q.layout == LAYOUT_GPTQ       ? qc_gptq(J)
                                                  : qc_ct(J);
  if (!qc) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  json_object_set_new(*cfg, "quantization_config", qc);
  rc = write_json(o->dst, "config.json", *cfg, err);
  /* the side file each producer also writes */
  if (rc == MQ_OK && J->q.layout == LAYOUT_GPTQ && J->q.fmt != MQ_QFORMAT_AUTOROUND)
    rc = write_json(o->dst, "quantize_config.json", qc, err);
  if (rc == MQ_OK && J->q.fmt == MQ_QFORMAT_AUTOROUND)
    rc = write_json(o->dst, "quantization_config.json", qc, err);
  if (rc == MQ_OK) rc = copy_side_files(o->src, o->dst, err);
  return rc;
}

int mq_quantize_checkpoint(const mq_quantize_opts *o, mq_err *err) {
  job J;
  memset(&J, 0, sizeof J);
  J.o = o;
  if (!o->src || !o->dst)
    return mq_errf(err, MQ_ERR_ARG, "quantize: source and destination needed");
  json_t *cfg = NULL;
  int rc = run(&J, &cfg, err);
  if (rc == MQ_OK && o->report) *o->report = J.rep;
  json_decref(cfg);
  job_free(&J);
  return rc;
}
