/* The quantizing writer (see writer.h; layouts and config keys in
 * docs/quantize.md). Flow: resolve options -> open SRC -> list the Linear
 * layers and decide each one's bits -> validate every layer against the
 * format -> quantize + pack + collect tensors -> model.safetensors ->
 * config.json with the producer's quantization_config -> side files. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "quant/writer.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/file.h"
#include "core/numconv.h"
#include "io/checkpoint.h"
#include "io/jsonutil.h"
#include "io/st_write.h"
#include "quant/pack.h"
#include "quant/rtn.h"

enum { LAYOUT_AWQ, LAYOUT_GPTQ, LAYOUT_CT };

/* Options resolved against the format's defaults and rules. */
typedef struct {
  mq_qformat fmt;
  mq_qpacking pack;
  int bits, gs, sym, desc_act; /* gs: -1 = per channel */
  int layout;                  /* LAYOUT_* */
  int v1;                      /* GPTQ layout: qzeros "minus one" */
  int gidx;                    /* GPTQ layout: write g_idx */
  int dense;                   /* CT: dense bit-stream packing */
} qset;

typedef struct {
  char name[256];         /* module, e.g. "model.layers.3.mlp.down_proj" */
  int layer, mod;         /* model order: block index, k_mods index */
  const mq_tensor *w, *b; /* weight [N, K]; bias [N] or NULL */
  int bits;               /* 16: left float */
} qlayer;

typedef struct {
  const mq_quantize_opts *o;
  qset q;
  mq_ckpt ck;
  qlayer *L; /* sorted in model order */
  int nL;
  char **flin; /* other 2-D float weights (module names), kept float */
  int nflin;
  pcre2_code **re_ign, **re_lb;
  mq_quantize_report rep;
} job;

static const char *const k_mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                     "mlp.down_proj"};
#define N_MODS 7

void mq_quantize_opts_default(mq_quantize_opts *o) {
  memset(o, 0, sizeof *o);
  o->sym = -1;
}

int mq_qformat_parse(const char *s, mq_qformat *out) {
  static const char *const names[] = {"awq",        "gptq",     "gptq-v2",
                                      "auto-round", "ct-w4a16", "ct-w8a16"};
  for (int i = 0; i < 6; i++)
    if (!strcmp(s, names[i])) return (*out = (mq_qformat)i), 0;
  return -1;
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

/* ---- options ---- */

static int resolve(const mq_quantize_opts *o, qset *q, mq_err *err) {
  memset(q, 0, sizeof *q);
  q->fmt = o->format;
  int is_ct = o->format == MQ_QFORMAT_CT_W4A16 || o->format == MQ_QFORMAT_CT_W8A16;
  if ((unsigned)o->format > MQ_QFORMAT_CT_W8A16) return mq_errf(err, MQ_ERR_ARG, "unknown format");
  q->bits = o->bits ? o->bits : o->format == MQ_QFORMAT_CT_W8A16 ? 8 : 4;
  q->gs = o->group_size ? o->group_size : 128;
  if (q->gs < -1 || q->gs == 0)
    return mq_errf(err, MQ_ERR_ARG, "group size must be positive or -1 (per channel), not %d",
                   q->gs);
  q->sym = o->sym >= 0 ? o->sym : o->format != MQ_QFORMAT_AWQ;
  q->desc_act = o->desc_act;
  q->pack = o->packing;
  int gptq_bits = q->bits == 2 || q->bits == 3 || q->bits == 4 || q->bits == 8;
  if (o->packing >= MQ_QPACKING_AUTO_GPTQ && o->packing <= MQ_QPACKING_AUTO_AWQ &&
      o->format != MQ_QFORMAT_AUTOROUND)
    return mq_errf(err, MQ_ERR_ARG, "--packing %s is an auto-round packing_format",
                   packing_format(o->packing));
  if (o->packing >= MQ_QPACKING_CT_ALIGNED && !is_ct)
    return mq_errf(err, MQ_ERR_ARG, "--packing aligned|dense applies to ct-w4a16 / ct-w8a16 only");
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

/* "model.layers.<L>.<module>.weight" for one of k_mods. */
static int parse_linear(const char *tn, int *layer, int *mod) {
  static const char pre[] = "model.layers.";
  if (strncmp(tn, pre, sizeof pre - 1) || !isdigit((unsigned char)tn[sizeof pre - 1])) return 0;
  char *end;
  long l = strtol(tn + sizeof pre - 1, &end, 10);
  if (*end != '.' || l > INT_MAX) return 0;
  for (int i = 0; i < N_MODS; i++) {
    size_t ml = strlen(k_mods[i]);
    if (!strncmp(end + 1, k_mods[i], ml) && !strcmp(end + 1 + ml, ".weight")) {
      *layer = (int)l, *mod = i;
      return 1;
    }
  }
  return 0;
}

static int cmp_layer(const void *a, const void *b) {
  const qlayer *x = a, *y = b;
  return x->layer != y->layer ? (x->layer > y->layer) - (x->layer < y->layer) : x->mod - y->mod;
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
    if (parse_linear(t->name, &L->layer, &L->mod)) {
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

/* Bits of every layer: --ignore wins, then the first --layer-bits match. */
static void decide(job *J) {
  const mq_quantize_opts *o = J->o;
  for (int i = 0; i < J->nL; i++) {
    qlayer *L = &J->L[i];
    int out = -1, conflict = 0;
    for (int r = 0; r < o->n_ignore; r++)
      if (re_match(J->re_ign[r], L->name)) conflict |= out >= 0 && out != 16, out = 16;
    for (int r = 0; r < o->n_layer_bits; r++)
      if (re_match(J->re_lb[r], L->name)) {
        conflict |= out >= 0 && out != o->layer_bits[r].bits;
        if (out < 0) out = o->layer_bits[r].bits;
      }
    L->bits = out < 0 ? J->q.bits : out;
    if (conflict && J->q.layout == LAYOUT_GPTQ && J->q.fmt != MQ_QFORMAT_AUTOROUND)
      warn(J,
           "%s: several \"dynamic\" patterns match it with different results; readers take the "
           "first in file order%s\n",
           L->name, "");
  }
  for (int i = 0; i + 1 < J->nL; i++) { /* fused shards (qkv, gate_up) should agree */
    const qlayer *a = &J->L[i], *b = &J->L[i + 1];
    int same_group =
        a->layer == b->layer &&
        ((a->mod < 3 && b->mod < 3) || (a->mod >= 4 && a->mod < 6 && b->mod >= 4 && b->mod < 6));
    if (same_group && a->bits != b->bits)
      warn(J, "%s and %s get different schemes; vLLM/SGLang refuse to fuse them\n", a->name,
           b->name);
  }
}

static int group_size_of(const qset *q, int64_t K) { return q->gs == -1 ? (int)K : q->gs; }

/* Everything that could fail on a layer's shape, before anything is written. */
static int validate(const job *J, const qlayer *L, mq_err *err) {
  const qset *q = &J->q;
  int b = L->bits;
  int64_t N = L->w->shape[0], K = L->w->shape[1];
  if (b == 16) return MQ_OK;
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
  if (N <= 0 || K <= 0 || N > INT32_MAX || K > INT32_MAX)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: bad weight shape [%lld, %lld]", L->name, (long long)N,
                   (long long)K);
  int gs = group_size_of(q, K);
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
  if (L->b && (L->b->n_dims != 1 || L->b->shape[0] != N || !is_fp(L->b->dtype)))
    return mq_errf(err, MQ_ERR_FORMAT, "%s.bias: expected a float [%lld]", L->name, (long long)N);
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

/* n floats into dt storage (dt float; values already representable or RNE). */
static void store_floats(const float *v, size_t n, mq_dtype dt, void *out) {
  for (size_t i = 0; i < n; i++) {
    if (dt == MQ_DTYPE_F32)
      memcpy((uint8_t *)out + 4 * i, &v[i], 4);
    else {
      uint16_t h = dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v[i]) : mq_f32_to_bf16(v[i]);
      memcpy((uint8_t *)out + 2 * i, &h, 2);
    }
  }
}

static int add2(mq_st_writer *w, const char *mod, const char *suffix, mq_dtype dt, int nd,
                int64_t d0, int64_t d1, const void *data, mq_err *err) {
  char name[300];
  int64_t shape[2] = {d0, d1};
  snprintf(name, sizeof name, "%s.%s", mod, suffix);
  return mq_st_writer_add(w, name, dt, nd, shape, data, err);
}

static uint64_t layer_seed(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: each layer its own permutation */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  return h ^ (seed * 0x9E3779B97F4A7C15ull);
}

/* Quantize one Linear and add its tensors in the format's layout. */
static int emit(job *J, mq_st_writer *w, const qlayer *L, mq_err *err) {
  const qset *q = &J->q;
  const mq_tensor *t = L->w;
  const int64_t N = t->shape[0], K = t->shape[1];
  const int b = L->bits, gs = group_size_of(q, K);
  const int64_t G = K / gs;
  const mq_dtype sdt = q->layout == LAYOUT_CT ? t->dtype : MQ_DTYPE_F16; /* CT: model dtype */
  const int esz = mq_dtype_size(t->dtype);
  size_t nk = (size_t)(N * K), ng = (size_t)(N * G);
  float *W = malloc(nk * sizeof *W), *s = malloc(ng * sizeof *s);
  uint8_t *qv = malloc(nk), *z = malloc(ng), *tr = malloc(nk > ng ? nk : ng); /* tr: transposes */
  int32_t *gi = malloc((size_t)K * sizeof *gi);
  uint32_t *pk = malloc((nk + ng) * sizeof *pk + 64); /* any packing of qv or z fits */
  void *sc = malloc(ng * 4);
  int rc = (W && s && qv && z && tr && gi && pk && sc)
               ? MQ_OK
               : mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (size_t i = 0; rc == MQ_OK && i < nk; i++)
    W[i] = elem_f32(t->data + i * (size_t)esz, t->dtype);
  if (rc == MQ_OK && q->desc_act)
    rc = mq_rtn_actorder_gidx(K, gs, layer_seed(J->o->seed, L->name), gi);
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
      rc = add2(w, L->name, "qweight", MQ_DTYPE_I32, 2, K, N / 8, pk, err);
    } else { /* qweight [K*b/32, N] */
      mq_pack_gptq_rows(tr, K, N, b, pk);
      rc = add2(w, L->name, "qweight", MQ_DTYPE_I32, 2, mq_pack_gptq_words(K, b), N, pk, err);
    }
    for (int64_t n = 0; n < N; n++)
      for (int64_t g = 0; g < G; g++) {
        tr[g * N + n] = z[n * G + g];
        W[g * N + n] = s[n * G + g]; /* W reused: scales [G, N] */
      }
    if (rc == MQ_OK && q->layout == LAYOUT_AWQ) { /* qzeros [G, N/8] */
      mq_pack_awq(tr, G, N, pk);
      rc = add2(w, L->name, "qzeros", MQ_DTYPE_I32, 2, G, N / 8, pk, err);
    } else if (rc == MQ_OK) { /* qzeros [G, N*b/32] */
      int64_t nw = mq_pack_gptq_words(N, b);
      mq_pack_gptq_cols(tr, G, N, b, pk);
      if (q->v1) mq_pack_gptq_zeros_to_v1(pk, G * nw, b);
      rc = add2(w, L->name, "qzeros", MQ_DTYPE_I32, 2, G, nw, pk, err);
    }
    store_floats(W, ng, MQ_DTYPE_F16, sc);
    if (rc == MQ_OK) rc = add2(w, L->name, "scales", MQ_DTYPE_F16, 2, G, N, sc, err);
    if (rc == MQ_OK && q->gidx) rc = add2(w, L->name, "g_idx", MQ_DTYPE_I32, 1, K, 0, gi, err);
    if (rc == MQ_OK && L->b) { /* the producers store the bias as fp16 */
      float *bv = W;           /* N <= G*N floats of room */
      for (int64_t n = 0; n < N; n++)
        bv[n] = elem_f32(L->b->data + n * mq_dtype_size(L->b->dtype), L->b->dtype);
      store_floats(bv, (size_t)N, MQ_DTYPE_F16, sc);
      rc = add2(w, L->name, "bias", MQ_DTYPE_F16, 1, N, 0, sc, err);
    }
  } else if (rc == MQ_OK) { /* compressed-tensors: [N, K] orientation kept */
    int64_t kw = mq_pack_ct_words(K, b, q->dense), nw = mq_pack_ct_words(N, b, q->dense);
    int64_t shape[2] = {N, K};
    mq_pack_ct(qv, N, K, b, q->dense, pk); /* codes are already offset-binary q + 2^(b-1) */
    rc = add2(w, L->name, "weight_packed", MQ_DTYPE_I32, 2, N, kw, pk, err);
    store_floats(s, ng, sdt, sc);
    if (rc == MQ_OK) rc = add2(w, L->name, "weight_scale", sdt, 2, N, G, sc, err);
    if (rc == MQ_OK) rc = add2(w, L->name, "weight_shape", MQ_DTYPE_I64, 1, 2, 0, shape, err);
    if (rc == MQ_OK && !q->sym) { /* zero points packed along N: [nw, G] */
      mq_pack_ct_dim0(z, N, G, b, q->dense, pk);
      rc = add2(w, L->name, "weight_zero_point", MQ_DTYPE_I32, 2, nw, G, pk, err);
    }
    if (rc == MQ_OK && q->desc_act)
      rc = add2(w, L->name, "weight_g_idx", MQ_DTYPE_I32, 1, K, 0, gi, err);
    if (rc == MQ_OK && L->b)
      rc = mq_st_writer_add(w, L->b->name, L->b->dtype, 1, L->b->shape, L->b->data, err);
  }
  free(W), free(s), free(qv), free(z), free(tr), free(gi), free(pk), free(sc);
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

static json_t *ct_group(const qset *q, int bits, json_t *targets) {
  json_t *w =
      json_pack("{s:i, s:s, s:b, s:s, s:o, s:n, s:b, s:o, s:s, s:{}, s:n, s:n}", "num_bits", bits,
                "type", "int", "symmetric", q->sym, "strategy", q->gs == -1 ? "channel" : "group",
                "group_size", q->gs == -1 ? json_null() : json_integer(q->gs), "block_structure",
                "dynamic", 0, "actorder", q->desc_act ? json_string("group") : json_null(),
                "observer", "minmax", "observer_kwargs", "scale_dtype", "zp_dtype");
  return json_pack("{s:o, s:o, s:n, s:n, s:s}", "targets", targets, "weights", w,
                   "input_activations", "output_activations", "format", "pack-quantized");
}

static json_t *qc_ct(const job *J) {
  const qset *q = &J->q;
  json_t *groups = json_object(), *ign = json_pack("[s]", "lm_head");
  json_object_set_new(groups, "group_0", ct_group(q, q->bits, json_pack("[s]", "Linear")));
  int done[17] = {0}, ng = 1;
  for (int i = 0; i < J->nL; i++) {
    int b = J->L[i].bits;
    if (b == 16) json_array_append_new(ign, json_string(J->L[i].name));
    if (b == 16 || b == q->bits || done[b]) continue;
    done[b] = 1; /* one extra group per bit width, targets = exact names */
    json_t *t = json_array();
    for (int j = i; j < J->nL; j++)
      if (J->L[j].bits == b) json_array_append_new(t, json_string(J->L[j].name));
    char gname[32];
    snprintf(gname, sizeof gname, "group_%d", ng++);
    json_object_set_new(groups, gname, ct_group(q, b, t));
  }
  for (int i = 0; i < J->nflin; i++) json_array_append_new(ign, json_string(J->flin[i]));
  return json_pack("{s:o, s:s, s:n, s:o, s:n, s:s, s:s, s:{}, s:{}, s:s}", "config_groups", groups,
                   "format", "pack-quantized", "global_compression_ratio", "ignore", ign,
                   "kv_cache_scheme", "quant_method", "compressed-tensors", "quantization_status",
                   "compressed", "sparsity_config", "transform_config", "version",
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

/* ---- driver ---- */

static void job_free(job *J) {
  for (int i = 0; J->re_ign && i < J->o->n_ignore; i++) pcre2_code_free(J->re_ign[i]);
  for (int i = 0; J->re_lb && i < J->o->n_layer_bits; i++) pcre2_code_free(J->re_lb[i]);
  for (int i = 0; i < J->nflin; i++) free(J->flin[i]);
  free(J->re_ign), free(J->re_lb), free(J->flin), free(J->L);
  mq_ckpt_close(&J->ck);
}

static int run(job *J, json_t **cfg, mq_err *err) {
  const mq_quantize_opts *o = J->o;
  int rc = resolve(o, &J->q, err);
  J->re_ign = calloc((size_t)o->n_ignore + 1, sizeof *J->re_ign);
  J->re_lb = calloc((size_t)o->n_layer_bits + 1, sizeof *J->re_lb);
  if (rc == MQ_OK && (!J->re_ign || !J->re_lb)) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
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
  if (rc == MQ_OK) decide(J);
  for (int i = 0; rc == MQ_OK && i < J->nL; i++) rc = validate(J, &J->L[i], err);
  if (rc == MQ_OK) rc = make_dst(o->src, o->dst, err);
  if (rc != MQ_OK) return rc;

  mq_st_writer *w = mq_st_writer_new();
  if (!w) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; rc == MQ_OK && i < J->ck.n_all; i++) { /* everything but the quantized layers */
    const mq_tensor *t = J->ck.all[i];
    int owned = 0;
    for (int l = 0; l < J->nL && !owned; l++)
      owned = J->L[l].bits != 16 && (t == J->L[l].w || t == J->L[l].b);
    if (!owned)
      rc = mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, err),
      J->rep.n_copied++;
  }
  for (int l = 0; rc == MQ_OK && l < J->nL; l++) {
    if (J->L[l].bits == 16)
      J->rep.n_float++, J->rep.n_copied -= 1 + (J->L[l].b != NULL);
    else
      rc = emit(J, w, &J->L[l], err), J->rep.n_quantized++;
  }
  if (rc == MQ_OK) rc = mq_st_writer_meta(w, "format", "pt", err);
  if (rc == MQ_OK && mq_path_join(path, sizeof path, o->dst, "model.safetensors"))
    rc = mq_errf(err, MQ_ERR_ARG, "%s: path too long", o->dst);
  if (rc == MQ_OK) rc = mq_st_writer_save(w, path, err);
  mq_st_writer_free(w);
  if (rc != MQ_OK) return rc;

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
