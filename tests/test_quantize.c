/* The quantizing writer end to end, weight-only formats: a float checkpoint
 * quantized in every format (AWQ, GPTQ v1/v2, AutoRound packings,
 * compressed-tensors pack-quantized), re-opened, tensors checked by name,
 * dtype and shape, weights decoded by hand (unpackers written from
 * formats.md, independent of pack.c) and compared with the RTN codes; the
 * quantization_config of each; refused options. (Packers themselves:
 * test_pack.c; activation-quantized formats and MoE: test_quantize_aq.c.) */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "io/checkpoint.h"
#include "io/st_write.h"
#include "quant/pack.h"
#include "quant/rtn.h"
#include "quant/writer.h"
#include "test.h"

/* ---- hand unpackers, written from formats.md (independent of pack.c) ---- */

/* bit pos of the stream held by w[0], w[stride], ... */
static uint32_t bit_at(const uint32_t *w, int64_t stride, int64_t pos) {
  return (w[(pos / 32) * stride] >> (pos % 32)) & 1u;
}
static uint32_t field(const uint32_t *w, int64_t stride, int64_t pos, int bits) {
  uint32_t v = 0;
  for (int i = 0; i < bits; i++) v |= bit_at(w, stride, pos + i) << i;
  return v;
}
static const int k_awq_shift[8] = {0, 16, 4, 20, 8, 24, 12, 28}; /* column 8c+j */
static uint32_t awq_get(uint32_t word, int j) { return (word >> k_awq_shift[j]) & 0xF; }
static int64_t ct_pos(int64_t i, int bits, int dense) {
  return dense ? i * bits : (i / (32 / bits)) * 32 + (i % (32 / bits)) * bits;
}
static uint32_t v1c(int bits) {
  return bits == 2 ? 0x55555555u : bits == 4 ? 0x11111111u : 0x01010101u;
}

/* ---- end to end ---- */

enum { L_AWQ, L_GPTQ, L_CT };
static const char *const k_mod[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                     "mlp.down_proj"};

static void put_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f) fputs(text, f), fclose(f);
}

static int file_exists(const char *dir, const char *name) {
  char p[512];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

static void add_rand(mq_st_writer *w, const char *name, mq_dtype dt, int nd, int64_t d0,
                     int64_t d1) {
  int64_t shape[2] = {d0, d1}, n = d0 * (nd == 2 ? d1 : 1);
  uint8_t *buf = malloc((size_t)n * 4);
  float rowf = 1.0f;
  for (int64_t i = 0; i < n; i++) {
    if (nd == 2 && i % d1 == 0) rowf = mqt_randf(0.02f, 0.5f); /* rows of different magnitude */
    float v = rowf * mqt_randf(-1.0f, 1.0f);
    if (dt == MQ_DTYPE_F32)
      memcpy(buf + 4 * i, &v, 4);
    else {
      uint16_t h = dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v) : mq_f32_to_bf16(v);
      memcpy(buf + 2 * i, &h, 2);
    }
  }
  CHECK(mq_st_writer_add(w, name, dt, nd, shape, buf, NULL) == MQ_OK);
  free(buf);
}

/* llama-like float checkpoint: hidden 128, kv 64, ffn 256, 2 layers, vocab 64;
 * bias: q/k/v biases (qwen2); router: an extra in-block Linear mlp.gate. */
static void make_src(const char *dir, mq_dtype dt, int bias, int router) {
  static const int64_t nk[7][2] = {{128, 128}, {64, 128},  {64, 128}, {128, 128},
                                   {256, 128}, {256, 128}, {128, 256}};
  mkdir(dir, 0777);
  mq_st_writer *w = mq_st_writer_new();
  char n[128];
  add_rand(w, "model.embed_tokens.weight", dt, 2, 64, 128);
  for (int l = 0; l < 2; l++) {
    snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
    add_rand(w, n, dt, 1, 128, 0);
    for (int m = 0; m < 7; m++) {
      snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, k_mod[m]);
      add_rand(w, n, dt, 2, nk[m][0], nk[m][1]);
      if (bias && m < 3) {
        snprintf(n, sizeof n, "model.layers.%d.%s.bias", l, k_mod[m]);
        add_rand(w, n, dt, 1, nk[m][0], 0);
      }
    }
    if (router) {
      snprintf(n, sizeof n, "model.layers.%d.mlp.gate.weight", l);
      add_rand(w, n, dt, 2, 8, 128);
    }
  }
  add_rand(w, "model.norm.weight", dt, 1, 128, 0);
  add_rand(w, "lm_head.weight", dt, 2, 64, 128);
  char p[512];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  CHECK(mq_st_writer_save(w, p, NULL) == MQ_OK);
  mq_st_writer_free(w);
  put_file(
      dir, "config.json",
      "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 128,"
      " \"intermediate_size\": 256, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
      " \"num_key_value_heads\": 2, \"vocab_size\": 64, \"rms_norm_eps\": 1e-06}");
  put_file(dir, "tokenizer.json", "{\"model\": {}}");
  put_file(dir, "golden.json", "{}"); /* not a side file: must not be copied */
}

typedef struct {
  int layout, bits, gs, sym, v1, gidx, dense, desc_act;
  mq_rtn_mode mode;
  mq_dtype model_dt;
} expect;

static uint32_t u32_at(const mq_tensor *t, int64_t i) {
  uint32_t v;
  memcpy(&v, t->data + 4 * i, 4);
  return v;
}
static float f_at(const mq_tensor *t, int64_t i) {
  uint16_t h;
  if (t->dtype == MQ_DTYPE_F32) {
    float f;
    memcpy(&f, t->data + 4 * i, 4);
    return f;
  }
  memcpy(&h, t->data + 2 * i, 2);
  return t->dtype == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
}
static uint32_t *words(const mq_tensor *t) {
  uint32_t *w = malloc(t->nbytes + 4);
  memcpy(w, t->data, t->nbytes);
  return w;
}

/* The tensor mod.suf with exactly this dtype and shape (d1 < 0: rank 1). */
static const mq_tensor *need(const mq_ckpt *c, const char *mod, const char *suf, mq_dtype dt,
                             int64_t d0, int64_t d1) {
  char n[256];
  snprintf(n, sizeof n, "%s.%s", mod, suf);
  const mq_tensor *t = mq_ckpt_find(c, n);
  int nd = d1 < 0 ? 1 : 2;
  int ok =
      t && t->dtype == dt && t->n_dims == nd && t->shape[0] == d0 && (nd == 1 || t->shape[1] == d1);
  CHECK_MSG(ok, "%s: want %s [%lld, %lld], have %s rank %d [%lld, %lld]", n, mq_dtype_name(dt),
            (long long)d0, (long long)d1, t ? mq_dtype_name(t->dtype) : "none", t ? t->n_dims : 0,
            t ? (long long)t->shape[0] : 0, t && t->n_dims > 1 ? (long long)t->shape[1] : 0);
  return ok ? t : NULL;
}
static int absent(const mq_ckpt *c, const char *mod, const char *suf) {
  char n[256];
  snprintf(n, sizeof n, "%s.%s", mod, suf);
  return mq_ckpt_find(c, n) == NULL;
}

/* Decode one quantized layer by hand and compare with RTN of the source weights. */
static void check_layer(const mq_ckpt *src, const mq_ckpt *dst, const char *mod, const expect *e,
                        int bits) {
  char n[256];
  snprintf(n, sizeof n, "%s.weight", mod);
  const mq_tensor *wt = mq_ckpt_find(src, n);
  const int64_t N = wt->shape[0], K = wt->shape[1];
  const int gs = e->gs == -1 ? (int)K : e->gs, G = (int)(K / gs), b = bits;
  float *W = malloc((size_t)(N * K) * 4), *s = malloc((size_t)(N * G) * 4),
        *s2 = malloc((size_t)(N * G) * 4);
  uint8_t *q = calloc((size_t)(N * K), 1), *z = calloc((size_t)(N * G), 1),
          *q2 = malloc((size_t)(N * K)), *z2 = malloc((size_t)(N * G));
  int32_t *gi = malloc((size_t)K * 4);
  for (int64_t i = 0; i < N * K; i++) W[i] = f_at(wt, i);
  for (int64_t k = 0; k < K; k++) gi[k] = (int32_t)(k / gs);
  CHECK(absent(dst, mod, "weight"));
  snprintf(n, sizeof n, "%s.bias", mod);
  const mq_tensor *sb = mq_ckpt_find(src, n), *db = NULL;
  int ok = 1;
  if (e->layout != L_CT) {
    const mq_tensor *qw, *qz, *sc, *g = NULL;
    int64_t kw = e->layout == L_AWQ ? K : K * b / 32, zw = e->layout == L_AWQ ? N / 8 : N * b / 32;
    qw = need(dst, mod, "qweight", MQ_DTYPE_I32, kw, e->layout == L_AWQ ? N / 8 : N);
    qz = need(dst, mod, "qzeros", MQ_DTYPE_I32, G, zw);
    sc = need(dst, mod, "scales", MQ_DTYPE_F16, G, N);
    if (e->gidx)
      g = need(dst, mod, "g_idx", MQ_DTYPE_I32, K, -1);
    else
      CHECK(absent(dst, mod, "g_idx"));
    if (sb) CHECK((db = need(dst, mod, "bias", MQ_DTYPE_F16, N, -1)) != NULL);
    if (!qw || !qz || !sc || (e->gidx && !g)) goto out;
    uint32_t *w = words(qw), *zz = words(qz);
    if (e->v1 && b == 3)
      for (int64_t r = 0; r < G; r++)
        for (int64_t i = 0; i < N; i++) { /* per-field +1 */
          uint32_t f = (field(zz + r * zw, 1, 3 * i, 3) + 1) & 7;
          for (int t = 0; t < 3; t++) {
            int64_t pos = 3 * i + t, wi = r * zw + pos / 32;
            zz[wi] = (zz[wi] & ~(1u << (pos % 32))) | (((f >> t) & 1u) << (pos % 32));
          }
        }
    else if (e->v1)
      for (int64_t i = 0; i < G * zw; i++) zz[i] += v1c(b); /* word-level +C */
    for (int64_t k = 0; k < K; k++)
      for (int64_t c = 0; c < N; c++)
        q[c * K + k] = (uint8_t)(e->layout == L_AWQ ? awq_get(w[k * (N / 8) + c / 8], (int)(c % 8))
                                                    : field(w + c, N, k * b, b));
    for (int64_t r = 0; r < G; r++)
      for (int64_t c = 0; c < N; c++) {
        z[c * G + r] = (uint8_t)(e->layout == L_AWQ ? awq_get(zz[r * zw + c / 8], (int)(c % 8))
                                                    : field(zz + r * zw, 1, c * b, b));
        s[c * G + r] = f_at(sc, r * N + c);
      }
    if (g)
      for (int64_t k = 0; k < K; k++)
        ok &= e->desc_act || (int32_t)u32_at(g, k) == gi[k], gi[k] = (int32_t)u32_at(g, k);
    free(w), free(zz);
    for (int64_t i = 0; db && i < N; i++)
      ok &= f_at(db, i) == mq_rtn_round_to(f_at(sb, i), MQ_DTYPE_F16);
  } else {
    int64_t kw = mq_pack_ct_words(K, b, e->dense), nw = mq_pack_ct_words(N, b, e->dense);
    const mq_tensor *wp = need(dst, mod, "weight_packed", MQ_DTYPE_I32, N, kw);
    const mq_tensor *ws = need(dst, mod, "weight_scale", e->model_dt, N, G);
    const mq_tensor *sh = need(dst, mod, "weight_shape", MQ_DTYPE_I64, 2, -1), *zp = NULL,
                    *g = NULL;
    if (!e->sym)
      zp = need(dst, mod, "weight_zero_point", MQ_DTYPE_I32, nw, G);
    else
      CHECK(absent(dst, mod, "weight_zero_point"));
    if (e->desc_act)
      g = need(dst, mod, "weight_g_idx", MQ_DTYPE_I32, K, -1);
    else
      CHECK(absent(dst, mod, "weight_g_idx"));
    if (sb) { /* CT keeps the bias as it was */
      db = need(dst, mod, "bias", sb->dtype, N, -1);
      CHECK(db && !memcmp(db->data, sb->data, sb->nbytes));
    }
    if (!wp || !ws || !sh || (!e->sym && !zp) || (e->desc_act && !g)) goto out;
    int64_t shp[2];
    memcpy(shp, sh->data, 16);
    CHECK(shp[0] == N && shp[1] == K);
    uint32_t *w = words(wp), *zz = zp ? words(zp) : NULL;
    for (int64_t c = 0; c < N; c++) {
      for (int64_t k = 0; k < K; k++)
        q[c * K + k] = (uint8_t)field(w + c * kw, 1, ct_pos(k, b, e->dense), b);
      for (int r = 0; r < G; r++) {
        z[c * G + r] = (uint8_t)(zz ? field(zz + r, G, ct_pos(c, b, e->dense), b) : 1u << (b - 1));
        s[c * G + r] = f_at(ws, c * G + r);
      }
    }
    for (int64_t k = 0; g && k < K; k++) gi[k] = (int32_t)u32_at(g, k);
    free(w), free(zz);
  }
  CHECK_MSG(ok, "%s: g_idx or bias", mod);
  mq_rtn_params p = {
      b, gs, G, e->desc_act ? gi : NULL, e->mode, e->layout == L_CT ? e->model_dt : MQ_DTYPE_F16};
  CHECK(mq_rtn_quantize(W, N, K, &p, q2, s2, z2, NULL) == MQ_OK);
  int bad_q = 0, bad_z = 0, bad_s = 0;
  for (int64_t i = 0; i < N * K; i++) bad_q += q[i] != q2[i];
  for (int64_t i = 0; i < N * G; i++) bad_z += z[i] != z2[i], bad_s += s[i] != s2[i];
  CHECK_MSG(!bad_q && !bad_z && !bad_s, "%s: %d codes, %d zeros, %d scales differ from RTN", mod,
            bad_q, bad_z, bad_s);
  if (e->desc_act) { /* a real act-order g_idx: non-monotonic, gs channels per group */
    int mono = 1, cnt[64] = {0};
    for (int64_t k = 0; k < K; k++) mono &= !k || gi[k] >= gi[k - 1], cnt[gi[k] & 63]++;
    CHECK_MSG((G == 1 || !mono) && cnt[0] == gs,
              "%s: act-order g_idx (G %d, monotonic %d, group 0 has %d)", mod, G, mono, cnt[0]);
  }
out:
  free(W), free(s), free(s2), free(q), free(z), free(q2), free(z2), free(gi);
}

typedef struct {
  const char *re; /* exact module name (for the test) */
  int bits;
} override;

/* Every Linear of the 2 layers: quantized as expected, or (bits 16) copied. */
static void check_model(const char *srcd, const char *dstd, const expect *e, const override *ov,
                        int nov) {
  mq_ckpt src, dst;
  mq_err err = {0};
  CHECK(mq_ckpt_open(srcd, &src, &err) == MQ_OK);
  if (mq_ckpt_open(dstd, &dst, &err) != MQ_OK) {
    CHECK_MSG(0, "open %s: %s", dstd, err.msg);
    mq_ckpt_close(&src);
    return;
  }
  for (int l = 0; l < 2; l++)
    for (int m = 0; m < 7; m++) {
      char mod[128], n[160];
      snprintf(mod, sizeof mod, "model.layers.%d.%s", l, k_mod[m]);
      int bits = e->bits;
      for (int i = 0; i < nov; i++)
        if (!strcmp(ov[i].re, mod)) bits = ov[i].bits;
      if (bits != 16) {
        check_layer(&src, &dst, mod, e, bits);
        continue;
      }
      snprintf(n, sizeof n, "%s.weight", mod);
      const mq_tensor *a = mq_ckpt_find(&src, n), *b = mq_ckpt_find(&dst, n);
      CHECK_MSG(b && b->dtype == a->dtype && b->nbytes == a->nbytes &&
                    !memcmp(a->data, b->data, a->nbytes) && absent(&dst, mod, "qweight") &&
                    absent(&dst, mod, "weight_packed"),
                "%s kept float", mod);
    }
  static const char *const other[] = {"model.embed_tokens.weight", "model.norm.weight",
                                      "lm_head.weight", "model.layers.1.input_layernorm.weight"};
  for (int i = 0; i < 4; i++) {
    const mq_tensor *a = mq_ckpt_find(&src, other[i]), *b = mq_ckpt_find(&dst, other[i]);
    CHECK_MSG(b && b->dtype == a->dtype && !memcmp(a->data, b->data, a->nbytes), "%s copied",
              other[i]);
  }
  mq_ckpt_close(&src);
  mq_ckpt_close(&dst);
}

/* quantization_config of dst/config.json (caller decrefs the returned root). */
static json_t *load_cfg(const char *dst, json_t **qc) {
  char p[512];
  snprintf(p, sizeof p, "%s/config.json", dst);
  json_t *root = json_load_file(p, 0, NULL);
  *qc = json_object_get(root, "quantization_config");
  CHECK_MSG(*qc != NULL, "%s: quantization_config", p);
  CHECK(json_integer_value(json_object_get(root, "hidden_size")) == 128);
  return root;
}
static int js(const json_t *o, const char *k, const char *want) {
  const char *v = json_string_value(json_object_get(o, k));
  return v && !strcmp(v, want);
}
static long long ji(const json_t *o, const char *k) {
  return json_integer_value(json_object_get(o, k));
}
static int jb(const json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

static int quant(const char *src, const char *dst, mq_quantize_opts *o, mq_err *err) {
  o->src = src, o->dst = dst;
  int rc = mq_quantize_checkpoint(o, err);
  CHECK_MSG(rc == MQ_OK, "quantize %s: %s", dst, err->msg);
  return rc;
}

static void test_end_to_end(void) {
  char tmp[] = "/tmp/mq_test_pack_XXXXXX", src[128], srcb[128], srcr[128], dst[160];
  if (!mkdtemp(tmp)) {
    CHECK_MSG(0, "mkdtemp");
    return;
  }
  snprintf(src, sizeof src, "%s/src", tmp);
  snprintf(srcb, sizeof srcb, "%s/src-bf16-bias", tmp);
  snprintf(srcr, sizeof srcr, "%s/src-router", tmp);
  make_src(src, MQ_DTYPE_F32, 0, 0);
  make_src(srcb, MQ_DTYPE_BF16, 1, 0);
  make_src(srcr, MQ_DTYPE_F16, 0, 1);
  mq_quantize_opts o;
  mq_err err = {0};
  json_t *root, *qc;
#define DST(name) (snprintf(dst, sizeof dst, "%s/%s", tmp, name), dst)
#define RESET() (mq_quantize_opts_default(&o), memset(&err, 0, sizeof err))

  /* AWQ GEMM, defaults: asym 4-bit gs 128, fp16 scales and bias */
  RESET(), o.format = MQ_QFORMAT_AWQ;
  if (!quant(srcb, DST("awq"), &o, &err)) {
    expect e = {L_AWQ, 4, 128, 0, 0, 0, 0, 0, MQ_RTN_ASYM_AWQ, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "awq") && jb(qc, "zero_point") && ji(qc, "bits") == 4 &&
          ji(qc, "group_size") == 128 && js(qc, "version", "gemm") &&
          json_is_null(json_object_get(qc, "modules_to_not_convert")));
    json_decref(root);
    CHECK(file_exists(dst, "tokenizer.json") && !file_exists(dst, "golden.json"));
  }
  /* AWQ with skipped layers: modules_to_not_convert lists exact names */
  RESET(), o.format = MQ_QFORMAT_AWQ;
  const char *ign_down[] = {".*down_proj"};
  o.ignore = ign_down, o.n_ignore = 1;
  if (!quant(src, DST("awq-skip"), &o, &err)) {
    expect e = {L_AWQ, 4, 128, 0, 0, 0, 0, 0, MQ_RTN_ASYM_AWQ, MQ_DTYPE_F32};
    override ov[] = {{"model.layers.0.mlp.down_proj", 16}, {"model.layers.1.mlp.down_proj", 16}};
    check_model(src, dst, &e, ov, 2);
    root = load_cfg(dst, &qc);
    json_t *m = json_object_get(qc, "modules_to_not_convert");
    CHECK(json_array_size(m) == 2 &&
          !strcmp(json_string_value(json_array_get(m, 1)), "model.layers.1.mlp.down_proj"));
    json_decref(root);
  }
  /* AutoGPTQ v1, defaults: sym 4-bit, g_idx = k / 128, qzeros all 0x77777777 */
  RESET(), o.format = MQ_QFORMAT_GPTQ;
  if (!quant(srcb, DST("gptq"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 1, 0, 0, MQ_RTN_SYM, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "gptq") && js(qc, "checkpoint_format", "gptq") && jb(qc, "sym") &&
          !jb(qc, "desc_act") && ji(qc, "bits") == 4 && !json_object_get(qc, "dynamic"));
    json_decref(root);
    CHECK(file_exists(dst, "quantize_config.json"));
    mq_ckpt c;
    if (mq_ckpt_open(dst, &c, NULL) == MQ_OK) {
      const mq_tensor *t = mq_ckpt_find(&c, "model.layers.0.mlp.down_proj.qzeros");
      CHECK(t && u32_at(t, 0) == 0x77777777u && u32_at(t, t->n_elems - 1) == 0x77777777u);
      mq_ckpt_close(&c);
    }
    /* its output is quantized: refusing it as a source */
    char prev[160];
    snprintf(prev, sizeof prev, "%s", dst);
    RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = prev, o.dst = DST("twice");
    CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_UNSUPPORTED &&
          strstr(err.msg, "already quantized"));
  }
  /* v1 asym 3-bit gs 32 and 4-bit gs 64, 2- and 8-bit */
  static const int v1b[4][2] = {{3, 32}, {4, 64}, {2, 128}, {8, -1}};
  for (int i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "gptq-asym-%d", v1b[i][0]);
    RESET(), o.format = MQ_QFORMAT_GPTQ, o.sym = 0, o.bits = v1b[i][0], o.group_size = v1b[i][1];
    if (quant(src, DST(name), &o, &err)) continue;
    expect e = {L_GPTQ, v1b[i][0], v1b[i][1], 0, 1, 1, 0, 0, MQ_RTN_ASYM, MQ_DTYPE_F32};
    check_model(src, dst, &e, NULL, 0);
  }
  /* GPTQModel v2 with act-order, 8-bit gs 32 and 3-bit gs 64 */
  for (int i = 0; i < 2; i++) {
    RESET(), o.format = MQ_QFORMAT_GPTQ_V2, o.desc_act = 1, o.bits = i ? 3 : 8,
             o.group_size = i ? 64 : 32, o.seed = 5;
    if (quant(srcb, DST(i ? "gptq-v2-3" : "gptq-v2-8"), &o, &err)) continue;
    expect e = {L_GPTQ, o.bits, o.group_size, 1, 0, 1, 0, 1, MQ_RTN_SYM, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "checkpoint_format", "gptq_v2") && js(qc, "format", "gptq_v2") &&
          jb(qc, "desc_act") && js(qc, "pack_dtype", "int32") &&
          json_object_get(json_object_get(qc, "meta"), "quantizer"));
    json_decref(root);
  }
  /* GPTQ mixed bits: GPTQModel `dynamic`, ignores first */
  RESET(), o.format = MQ_QFORMAT_GPTQ;
  mq_layer_bits lb[] = {{"model\\.layers\\.1\\.mlp", 8}, {".*v_proj", 16}};
  const char *ign_o[] = {".*o_proj"};
  o.layer_bits = lb, o.n_layer_bits = 2, o.ignore = ign_o, o.n_ignore = 1;
  if (!quant(src, DST("gptq-mixed"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 1, 0, 0, MQ_RTN_SYM, MQ_DTYPE_F32};
    override ov[] = {
        {"model.layers.1.mlp.gate_proj", 8},     {"model.layers.1.mlp.up_proj", 8},
        {"model.layers.1.mlp.down_proj", 8},     {"model.layers.0.self_attn.o_proj", 16},
        {"model.layers.1.self_attn.o_proj", 16}, {"model.layers.0.self_attn.v_proj", 16},
        {"model.layers.1.self_attn.v_proj", 16}};
    check_model(src, dst, &e, ov, 7);
    root = load_cfg(dst, &qc);
    json_t *d = json_object_get(qc, "dynamic");
    const char *k0 = json_object_iter_key(json_object_iter(d));
    CHECK(json_object_size(d) == 3 && k0 && !strcmp(k0, "-:.*o_proj") &&
          ji(json_object_get(d, "+:model\\.layers\\.1\\.mlp"), "bits") == 8 &&
          json_object_size(json_object_get(d, "-:.*v_proj")) == 0);
    json_decref(root);
  }
  /* AutoRound: default sym -> auto_round:auto_gptq (v1, no g_idx, signed scales) */
  RESET(), o.format = MQ_QFORMAT_AUTOROUND;
  if (!quant(srcb, DST("ar"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 0, 0, 0, MQ_RTN_SYM_AUTOROUND, MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "quant_method", "auto-round") &&
          js(qc, "packing_format", "auto_round:auto_gptq") && js(qc, "data_type", "int") &&
          jb(qc, "sym") && !json_object_get(qc, "extra_config"));
    json_decref(root);
    CHECK(file_exists(dst, "quantization_config.json"));
    mq_ckpt c;
    int neg = 0;
    if (mq_ckpt_open(dst, &c, NULL) == MQ_OK) {
      const mq_tensor *t = mq_ckpt_find(&c, "model.layers.0.mlp.up_proj.scales");
      for (uint64_t i = 0; t && i < t->n_elems; i++) neg += f_at(t, (int64_t)i) < 0;
      mq_ckpt_close(&c);
    }
    CHECK_MSG(neg > 0, "AutoRound sym scales are signed");
  }
  /* AutoRound asym -> "auto_round" (exact zeros); gptqmodel 3-bit act-order; auto_awq sym */
  static const struct {
    mq_qpacking pack;
    int sym, bits, desc, layout, v1, gidx;
    const char *pf;
  } arc[] = {{MQ_QPACKING_DEFAULT, 0, 4, 0, L_GPTQ, 0, 0, "auto_round"},
             {MQ_QPACKING_GPTQMODEL, 1, 3, 1, L_GPTQ, 0, 1, "auto_round:gptqmodel"},
             {MQ_QPACKING_AUTO_AWQ, 1, 4, 0, L_AWQ, 0, 0, "auto_round:auto_awq"},
             {MQ_QPACKING_AUTO_GPTQ, 0, 2, 0, L_GPTQ, 1, 0, "auto_round:auto_gptq"}};
  for (int i = 0; i < 4; i++) {
    RESET(), o.format = MQ_QFORMAT_AUTOROUND, o.packing = arc[i].pack, o.sym = arc[i].sym;
    o.bits = arc[i].bits, o.desc_act = arc[i].desc, o.group_size = 32;
    if (quant(src, DST(arc[i].pf), &o, &err)) continue;
    expect e = {arc[i].layout,
                arc[i].bits,
                32,
                arc[i].sym,
                arc[i].v1,
                arc[i].gidx,
                0,
                arc[i].desc,
                arc[i].sym ? MQ_RTN_SYM_AUTOROUND : MQ_RTN_ASYM,
                MQ_DTYPE_F32};
    check_model(src, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    CHECK(js(qc, "packing_format", arc[i].pf) && jb(qc, "sym") == arc[i].sym);
    json_decref(root);
  }
  /* AutoRound mixed: extra_config with exact names, bits 16 = float */
  RESET(), o.format = MQ_QFORMAT_AUTOROUND, o.layer_bits = lb, o.n_layer_bits = 1, o.ignore = ign_o,
           o.n_ignore = 1;
  if (!quant(src, DST("ar-mixed"), &o, &err)) {
    expect e = {L_GPTQ, 4, 128, 1, 1, 0, 0, 0, MQ_RTN_SYM_AUTOROUND, MQ_DTYPE_F32};
    override ov[] = {{"model.layers.1.mlp.gate_proj", 8},
                     {"model.layers.1.mlp.up_proj", 8},
                     {"model.layers.1.mlp.down_proj", 8},
                     {"model.layers.0.self_attn.o_proj", 16},
                     {"model.layers.1.self_attn.o_proj", 16}};
    check_model(src, dst, &e, ov, 5);
    root = load_cfg(dst, &qc);
    json_t *x = json_object_get(qc, "extra_config");
    CHECK(json_object_size(x) == 5 &&
          ji(json_object_get(x, "model.layers.1.mlp.down_proj"), "bits") == 8 &&
          ji(json_object_get(x, "model.layers.0.self_attn.o_proj"), "bits") == 16 &&
          json_object_size(json_object_get(x, "model.layers.0.self_attn.o_proj")) == 1);
    json_decref(root);
  }
  /* compressed-tensors W4A16 (bf16: bf16 scales), W8A16 channel, asym, 3-bit both packings */
  static const struct {
    mq_qformat f;
    int bits, gs, sym, dense;
    mq_qpacking pack;
  } ctc[] = {{MQ_QFORMAT_CT_W4A16, 0, 0, -1, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W8A16, 0, -1, -1, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W4A16, 0, 32, 0, 0, MQ_QPACKING_DEFAULT},
             {MQ_QFORMAT_CT_W4A16, 3, 64, 0, 0, MQ_QPACKING_CT_ALIGNED},
             {MQ_QFORMAT_CT_W4A16, 3, 64, 0, 1, MQ_QPACKING_CT_DENSE},
             {MQ_QFORMAT_CT_W8A16, 0, 128, 1, 0, MQ_QPACKING_DEFAULT}};
  for (int i = 0; i < 6; i++) {
    char name[32];
    snprintf(name, sizeof name, "ct-%d", i);
    RESET(), o.format = ctc[i].f, o.bits = ctc[i].bits, o.group_size = ctc[i].gs,
             o.sym = ctc[i].sym;
    o.packing = ctc[i].pack, o.desc_act = i == 5;
    if (quant(srcb, DST(name), &o, &err)) continue;
    int bits = ctc[i].bits ? ctc[i].bits : ctc[i].f == MQ_QFORMAT_CT_W8A16 ? 8 : 4;
    int gs = ctc[i].gs ? ctc[i].gs : 128, sym = ctc[i].sym != 0;
    expect e = {
        L_CT,         bits, gs, sym, 0, 0, ctc[i].dense, i == 5, sym ? MQ_RTN_SYM : MQ_RTN_ASYM,
        MQ_DTYPE_BF16};
    check_model(srcb, dst, &e, NULL, 0);
    root = load_cfg(dst, &qc);
    json_t *g0 = json_object_get(json_object_get(qc, "config_groups"), "group_0"),
           *wa = json_object_get(g0, "weights");
    CHECK(js(qc, "quant_method", "compressed-tensors") && js(qc, "format", "pack-quantized") &&
          js(qc, "quantization_status", "compressed") &&
          js(qc, "version", ctc[i].dense ? "0.18.0" : "0.12.2"));
    CHECK(
        ji(wa, "num_bits") == bits && jb(wa, "symmetric") == sym && js(wa, "type", "int") &&
        js(wa, "strategy", gs == -1 ? "channel" : "group") &&
        (gs == -1 ? json_is_null(json_object_get(wa, "group_size")) : ji(wa, "group_size") == gs));
    CHECK(i != 5 ? json_is_null(json_object_get(wa, "actorder")) : js(wa, "actorder", "group"));
    CHECK(json_array_size(json_object_get(qc, "ignore")) == 1 &&
          !strcmp(json_string_value(json_array_get(json_object_get(qc, "ignore"), 0)), "lm_head"));
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(g0, "targets"), 0)), "Linear"));
    json_decref(root);
  }
  /* compressed-tensors mixed: extra group with exact names, ignore for skipped */
  RESET(), o.format = MQ_QFORMAT_CT_W4A16;
  mq_layer_bits lbd[] = {{".*down_proj", 8}};
  const char *ign_a[] = {"model\\.layers\\.0\\.self_attn"};
  o.layer_bits = lbd, o.n_layer_bits = 1, o.ignore = ign_a, o.n_ignore = 1;
  if (!quant(src, DST("ct-mixed"), &o, &err)) {
    expect e = {L_CT, 4, 128, 1, 0, 0, 0, 0, MQ_RTN_SYM, MQ_DTYPE_F32};
    override ov[] = {
        {"model.layers.0.mlp.down_proj", 8},     {"model.layers.1.mlp.down_proj", 8},
        {"model.layers.0.self_attn.q_proj", 16}, {"model.layers.0.self_attn.k_proj", 16},
        {"model.layers.0.self_attn.v_proj", 16}, {"model.layers.0.self_attn.o_proj", 16}};
    check_model(src, dst, &e, ov, 6);
    root = load_cfg(dst, &qc);
    json_t *g1 = json_object_get(json_object_get(qc, "config_groups"), "group_1");
    json_t *t = json_object_get(g1, "targets"), *ig = json_object_get(qc, "ignore");
    CHECK(ji(json_object_get(g1, "weights"), "num_bits") == 8 && json_array_size(t) == 2 &&
          !strcmp(json_string_value(json_array_get(t, 0)), "model.layers.0.mlp.down_proj"));
    CHECK(json_array_size(ig) == 5 &&
          !strcmp(json_string_value(json_array_get(ig, 4)), "model.layers.0.self_attn.o_proj"));
    json_decref(root);
  }
  /* another Linear in the blocks (a router) is declared float in every format */
  RESET(), o.format = MQ_QFORMAT_CT_W4A16;
  if (!quant(srcr, DST("ct-router"), &o, &err)) {
    root = load_cfg(dst, &qc);
    json_t *ig = json_object_get(qc, "ignore"); /* routers: llm-compressor's regex, once */
    CHECK(json_array_size(ig) == 2 &&
          !strcmp(json_string_value(json_array_get(ig, 1)), "re:.*mlp.gate$"));
    json_decref(root);
  }
  /* AWQ matches modules_to_not_convert by substring: "model.layers.0.mlp.gate"
   * would also unquantize mlp.gate_proj, so the writer refuses */
  RESET(), o.format = MQ_QFORMAT_AWQ, o.src = srcr, o.dst = DST("awq-router");
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_UNSUPPORTED && strstr(err.msg, "substring") &&
        strstr(err.msg, "model.layers.0.mlp.gate_proj"));
  RESET(), o.format = MQ_QFORMAT_GPTQ_V2;
  if (!quant(srcr, DST("gptq-router"), &o, &err)) {
    root = load_cfg(dst, &qc);
    CHECK(json_object_get(json_object_get(qc, "dynamic"), "-:model\\.layers\\.1\\.mlp\\.gate$") !=
          NULL);
    json_decref(root);
  }
  /* errors: each refused before anything is written */
  struct {
    mq_qformat f;
    int bits, gs, desc;
    mq_qpacking pack;
    int nlb;
    int rc;
    const char *msg;
  } bad[] = {
      {MQ_QFORMAT_AWQ, 8, 0, 0, 0, 0, MQ_ERR_UNSUPPORTED, "4-bit"},
      {MQ_QFORMAT_AWQ, 0, 0, 0, 0, 1, MQ_ERR_UNSUPPORTED, "cannot mix"},
      {MQ_QFORMAT_GPTQ, 0, 96, 0, 0, 0, MQ_ERR_ARG, "does not divide"},
      {MQ_QFORMAT_AWQ, 0, 0, 1, 0, 0, MQ_ERR_ARG, "act-order"},
      {MQ_QFORMAT_GPTQ, 5, 0, 0, 0, 0, MQ_ERR_UNSUPPORTED, "bits"},
      {MQ_QFORMAT_AUTOROUND, 0, 0, 1, 0, 0, MQ_ERR_ARG, "g_idx"},
      {MQ_QFORMAT_GPTQ, 0, 0, 0, MQ_QPACKING_AUTO_AWQ, 0, MQ_ERR_ARG, "packing"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    RESET(), o.format = bad[i].f, o.bits = bad[i].bits, o.group_size = bad[i].gs,
             o.desc_act = bad[i].desc;
    o.packing = bad[i].pack, o.layer_bits = lbd, o.n_layer_bits = bad[i].nlb;
    o.src = src, o.dst = DST("bad");
    int rc = mq_quantize_checkpoint(&o, &err);
    CHECK_MSG(rc == bad[i].rc && strstr(err.msg, bad[i].msg) && !file_exists(tmp, "bad"),
              "bad case %zu: rc %d '%s'", i, rc, err.msg);
  }
  RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = src, o.dst = src;
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_ARG && strstr(err.msg, "differ"));
  const char *badre[] = {"model.(layers"};
  RESET(), o.format = MQ_QFORMAT_GPTQ, o.src = src, o.dst = DST("bad"), o.ignore = badre,
           o.n_ignore = 1;
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_ERR_ARG && strstr(err.msg, "regex"));
#undef DST
#undef RESET
  mqt_rm_tree(tmp);
}

int main(void) {
  test_end_to_end();
  return mqt_report("test_quantize");
}
