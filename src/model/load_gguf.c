/* Loading a .gguf file: hyper-parameters from the metadata
 * ({arch}.embedding_length, ...), tensors bound by GGUF names
 * (blk.N.attn_q.weight, ...), every quantized type computed natively in its
 * own blocks (formats.md §5.7-5.9). llama's q/k rows are stored in
 * adjacent-pair RoPE order: mixq rotates pairs for that architecture instead
 * of permuting rows back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/numconv.h"
#include "model/model.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_types.h"
#include "quant/plan.h"

int mq_model_describe(struct mq_model *m, const char *prefix, const mq_linear *l,
                      const mq_lspec *s, uint64_t bytes, mq_err *err);

#define BIG 0x40000000LL

/* {arch}.{key} as an integer; def when absent (def < 0: required). */
static int kv_int(const mq_gguf_file *f, const char *arch, const char *key, long long def,
                  long long lo, long long hi, long long *out, mq_err *err) {
  char k[160];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, k);
  if (!kv) {
    if (def < 0) return mq_errf(err, MQ_ERR_FORMAT, "%s: metadata key \"%s\" is missing", f->path, k);
    *out = def;
    return MQ_OK;
  }
  int64_t v;
  if (kv->type == MQ_GGUF_VTYPE_ARRAY || mq_gguf_arr_int(kv, 0, &v) != 0 || v < lo || v > hi)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: metadata key \"%s\" must be an integer in [%lld, %lld]",
                   f->path, k, lo, hi);
  *out = v;
  return MQ_OK;
}

static int kv_f32(const mq_gguf_file *f, const char *arch, const char *key, float def, float *out,
                  mq_err *err) {
  char k[160];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, k);
  *out = def;
  if (!kv) return MQ_OK;
  if (kv->type == MQ_GGUF_VTYPE_ARRAY || mq_gguf_arr_f32(kv, 0, out) != 0)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: metadata key \"%s\" must be a number", f->path, k);
  return MQ_OK;
}

static int parse_config(const mq_gguf_file *f, mq_config *c, mq_err *err) {
  memset(c, 0, sizeof *c);
  const char *a;
  uint64_t alen;
  int rc = mq_gguf_get_str(f, "general.architecture", &a, &alen, err);
  if (rc) return rc;
  char arch[32];
  snprintf(arch, sizeof arch, "%.*s", (int)(alen < 31 ? alen : 31), a);
  static const struct {
    const char *name;
    mq_arch arch;
    const char *hf;
  } k_arch[] = {{"llama", MQ_ARCH_LLAMA, "llama"},         {"qwen2", MQ_ARCH_QWEN2, "qwen2"},
                {"qwen3", MQ_ARCH_QWEN3, "qwen3"},         {"qwen3moe", MQ_ARCH_QWEN3_MOE, "qwen3_moe"},
                {"qwen2moe", MQ_ARCH_QWEN2_MOE, "qwen2_moe"}};
  size_t i = 0;
  while (i < sizeof k_arch / sizeof k_arch[0] && strcmp(arch, k_arch[i].name) != 0) i++;
  if (i == sizeof k_arch / sizeof k_arch[0])
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: general.architecture \"%s\" is not supported (llama, qwen2, qwen3, qwen3moe, "
                   "qwen2moe are)",
                   f->path, arch);
  c->arch = k_arch[i].arch;
  c->arch_name = k_arch[i].hf;
  long long ctx = 0, d = 0, nl = 0, ff = 0, nh = 1, nkv = 1, hd = 0, rot = 0, ne = 0, nu = 0, fe = 0, fs = 0;
  if ((rc = kv_int(f, arch, "context_length", 2048, 1, BIG, &ctx, err)) ||
      (rc = kv_int(f, arch, "embedding_length", -1, 1, BIG, &d, err)) ||
      (rc = kv_int(f, arch, "block_count", -1, 1, MQ_MAX_LAYERS, &nl, err)) ||
      (rc = kv_int(f, arch, "feed_forward_length", 0, 0, BIG, &ff, err)) ||
      (rc = kv_int(f, arch, "attention.head_count", -1, 1, 4096, &nh, err)) ||
      (rc = kv_int(f, arch, "attention.head_count_kv", nh, 1, 4096, &nkv, err)))
    return rc;
  /* head_dim: attention.key_length when given (qwen3), else embedding / heads */
  if ((rc = kv_int(f, arch, "attention.key_length", d / nh, 2, 4096, &hd, err)) ||
      (rc = kv_int(f, arch, "rope.dimension_count", hd, 2, hd, &rot, err)) ||
      (rc = kv_int(f, arch, "expert_count", 0, 0, 1 << 16, &ne, err)) ||
      (rc = kv_int(f, arch, "expert_used_count", 0, 0, 1 << 16, &nu, err)) ||
      (rc = kv_int(f, arch, "expert_feed_forward_length", ff, 0, BIG, &fe, err)) ||
      (rc = kv_int(f, arch, "expert_shared_feed_forward_length", 0, 0, BIG, &fs, err)))
    return rc;
  if (nh % nkv || hd % 2 || rot % 2)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: inconsistent attention shape (%lld heads, %lld kv heads, "
                   "head_dim %lld, rope dims %lld)", f->path, nh, nkv, hd, rot);
  float eps = 0, theta = 0, factor = 1;
  if ((rc = kv_f32(f, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &eps, err)) ||
      (rc = kv_f32(f, arch, "rope.freq_base", 10000.0f, &theta, err)) ||
      (rc = kv_f32(f, arch, "rope.scaling.factor", 1.0f, &factor, err)))
    return rc;
  c->n_embd = (int)d, c->n_layer = (int)nl, c->n_ff = (int)ff, c->n_head = (int)nh;
  c->n_head_kv = (int)nkv, c->head_dim = (int)hd, c->n_ctx_train = (int)ctx;
  c->norm_eps = eps;
  c->rope.theta = theta;
  c->rope.rot_dim = (int)rot;
  c->rope.factor = 1;
  c->rope.attn_factor = 1;
  c->rope.interleaved = c->arch == MQ_ARCH_LLAMA; /* GGUF llama: rope "norm" mode */
  char k[160];
  snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
  const mq_gguf_kv *st = mq_gguf_find_kv(f, k);
  if (st) {
    uint64_t sl;
    const char *sv = mq_gguf_arr_str(st, 0, &sl);
    if (sv && sl == 6 && !memcmp(sv, "linear", 6)) c->rope.type = MQ_ROPE_LINEAR, c->rope.factor = factor;
    else if (!(sv && ((sl == 4 && !memcmp(sv, "none", 4)) || factor == 1.0f)))
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: rope scaling \"%.*s\" is not supported for GGUF",
                     f->path, sv ? (int)sl : 1, sv ? sv : "?");
  }
  c->qkv_bias = c->arch == MQ_ARCH_QWEN2 || c->arch == MQ_ARCH_QWEN2_MOE;
  c->qk_norm = c->arch == MQ_ARCH_QWEN3 || c->arch == MQ_ARCH_QWEN3_MOE;
  c->bos_id = c->eos_id = -1;
  const mq_gguf_kv *kv;
  int64_t v;
  if ((kv = mq_gguf_find_kv(f, "tokenizer.ggml.bos_token_id")) && !mq_gguf_arr_int(kv, 0, &v)) c->bos_id = (int)v;
  if ((kv = mq_gguf_find_kv(f, "tokenizer.ggml.eos_token_id")) && !mq_gguf_arr_int(kv, 0, &v)) c->eos_id = (int)v;
  if (ne > 0) {
    if (nu < 1 || nu > ne)
      return mq_errf(err, MQ_ERR_FORMAT, "%s: %lld experts used of %lld", f->path, nu, ne);
    c->n_expert = (int)ne, c->n_expert_used = (int)nu, c->n_ff_exp = (int)fe, c->n_ff_shexp = (int)fs;
    c->sparse_step = 1;
    /* llama.cpp renormalizes top-k for llama (Mixtral) and qwen3moe, not qwen2moe */
    c->norm_topk = c->arch != MQ_ARCH_QWEN2_MOE;
  }
  return MQ_OK;
}

/* A weight tensor [ne0 = K, ne1 = N] (optionally one expert of a 3-D stack)
 * as a linear computed in its own type. */
static int bind_tensor(struct mq_model *m, const char *name, int N, int K, int expert, int n_expert,
                       mq_linear *l, int describe, mq_err *err) {
  const mq_gguf_tensor *t = mq_gguf_find_tensor(&m->gguf, name);
  if (!t) return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->gguf.path, name);
  char sh[96];
  int want_dims = n_expert ? 3 : 2;
  if (t->ne[0] != K || t->ne[1] != N || (n_expert && t->ne[2] != n_expert) ||
      (t->n_dims != want_dims && !(want_dims == 2 && t->n_dims == 1 && N == 1)))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected [%d, %d%s]",
                   m->gguf.path, name, mq_gguf_shape_str(t, sh, sizeof sh), K, N,
                   n_expert ? ", experts" : "");
  if (!mq_ggml_type_supported(t->type))
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which mixq does not compute",
                   m->gguf.path, name, mq_ggml_type_name(t->type));
  size_t rb = (size_t)mq_ggml_row_size(t->type, K);
  memset(l, 0, sizeof *l);
  l->n_out = N, l->n_in = K;
  const uint8_t *data = t->data + (size_t)expert * N * rb;
  if (t->type == MQ_GGML_TYPE_F32 || t->type == MQ_GGML_TYPE_BF16) {
    l->kind = MQ_W_FLOAT; /* float activations, as ggml computes these types */
    l->dtype = t->type == MQ_GGML_TYPE_F32 ? MQ_DTYPE_F32 : MQ_DTYPE_BF16;
    l->w = data;
  } else {
    l->kind = MQ_W_GGUF;
    l->gtype = t->type;
    l->w = data;
  }
  if (!describe) return MQ_OK; /* token_embd: rows are looked up, left as stored */
  int rc = mq_model_repack(m, l, err);
  if (rc) return rc;
  mq_lspec s = {.fmt = MQ_FMT_GGUF, .bits = 16, .group_size = -1, .sym = 1};
  snprintf(s.scheme, sizeof s.scheme, "%s", mq_ggml_type_name(t->type));
  char desc[128];
  if (n_expert) snprintf(desc, sizeof desc, "%s[%d]", name, expert);
  else snprintf(desc, sizeof desc, "%s", name);
  return mq_model_describe(m, desc, l, &s, (uint64_t)N * rb, err);
}

/* A float vector [n] (norm weights, biases) as an f32 copy. */
static int bind_vec(struct mq_model *m, const char *name, int n, int optional, const float **out,
                    mq_err *err) {
  const mq_gguf_tensor *t = mq_gguf_find_tensor(&m->gguf, name);
  *out = NULL;
  if (!t) return optional ? MQ_OK : mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->gguf.path, name);
  if (t->n_dims != 1 || t->ne[0] != n ||
      (t->type != MQ_GGML_TYPE_F32 && t->type != MQ_GGML_TYPE_F16 && t->type != MQ_GGML_TYPE_BF16))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' must be a float vector of %d values",
                   m->gguf.path, name, n);
  float *v = mq_model_alloc(m, (size_t)n * sizeof(float));
  if (!v) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  mq_gguf_dequant_row(t->type, t->data, v, n);
  m->n_params += (uint64_t)n;
  m->n_bytes += t->nbytes;
  *out = v;
  return MQ_OK;
}

/* rope_freqs.weight, where present: one factor per rotated pair dividing
 * its frequency (llama.cpp's convert writes Llama 3.1's llama3 scaling so,
 * and ggml's rope divides theta by it). Each must be finite and positive. */
static int bind_rope_freqs(struct mq_model *m, mq_err *err) {
  mq_rope *r = &m->cfg.rope;
  const float *ff;
  int rc = bind_vec(m, "rope_freqs.weight", r->rot_dim / 2, 1, &ff, err);
  if (rc || !ff) return rc;
  for (int i = 0; i < r->rot_dim / 2; i++)
    if (!(ff[i] > 0 && ff[i] < INFINITY))
      return mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor 'rope_freqs.weight' holds %g at %d: factors must be finite and "
                     "positive",
                     m->gguf.path, (double)ff[i], i);
  r->freq_factors = ff;
  return MQ_OK;
}

static int bind_moe(struct mq_model *m, int i, mq_err *err) {
  const mq_config *c = &m->cfg;
  mq_moe *e = mq_model_alloc(m, sizeof *e);
  mq_linear *lin = mq_model_alloc(m, 3 * (size_t)c->n_expert * sizeof(mq_linear));
  if (!e || !lin) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  e->gate = lin, e->up = lin + c->n_expert, e->down = lin + 2 * c->n_expert;
  m->layers[i].moe = e;
  char n[96];
  int rc, E = c->n_expert, D = c->n_embd, I = c->n_ff_exp;
  snprintf(n, sizeof n, "blk.%d.ffn_gate_inp.weight", i);
  if ((rc = bind_tensor(m, n, E, D, 0, 0, &e->router, 1, err))) return rc;
  for (int x = 0; x < E; x++) {
    snprintf(n, sizeof n, "blk.%d.ffn_gate_exps.weight", i);
    if ((rc = bind_tensor(m, n, I, D, x, E, &e->gate[x], 1, err))) return rc;
    snprintf(n, sizeof n, "blk.%d.ffn_up_exps.weight", i);
    if ((rc = bind_tensor(m, n, I, D, x, E, &e->up[x], 1, err))) return rc;
    snprintf(n, sizeof n, "blk.%d.ffn_down_exps.weight", i);
    if ((rc = bind_tensor(m, n, D, I, x, E, &e->down[x], 1, err))) return rc;
  }
  if (c->n_ff_shexp > 0) {
    e->has_shared = 1;
    int S = c->n_ff_shexp;
    snprintf(n, sizeof n, "blk.%d.ffn_gate_shexp.weight", i);
    if ((rc = bind_tensor(m, n, S, D, 0, 0, &e->sh_gate, 1, err))) return rc;
    snprintf(n, sizeof n, "blk.%d.ffn_up_shexp.weight", i);
    if ((rc = bind_tensor(m, n, S, D, 0, 0, &e->sh_up, 1, err))) return rc;
    snprintf(n, sizeof n, "blk.%d.ffn_down_shexp.weight", i);
    if ((rc = bind_tensor(m, n, D, S, 0, 0, &e->sh_down, 1, err))) return rc;
    snprintf(n, sizeof n, "blk.%d.ffn_gate_inp_shexp.weight", i);
    if ((rc = bind_tensor(m, n, 1, D, 0, 0, &e->sh_router, 1, err))) return rc;
  }
  return MQ_OK;
}

static int bind_layer(struct mq_model *m, int i, mq_err *err) {
  const mq_config *c = &m->cfg;
  mq_layer *L = &m->layers[i];
  int D = c->n_embd, q = c->n_head * c->head_dim, kv = c->n_head_kv * c->head_dim, rc;
  char n[96];
#define NM(fmt) (snprintf(n, sizeof n, "blk.%d." fmt, i), n)
  if ((rc = bind_vec(m, NM("attn_norm.weight"), D, 0, &L->attn_norm, err)) ||
      (rc = bind_vec(m, NM("ffn_norm.weight"), D, 0, &L->ffn_norm, err)) ||
      (rc = bind_tensor(m, NM("attn_q.weight"), q, D, 0, 0, &L->wq, 1, err)) ||
      (rc = bind_tensor(m, NM("attn_k.weight"), kv, D, 0, 0, &L->wk, 1, err)) ||
      (rc = bind_tensor(m, NM("attn_v.weight"), kv, D, 0, 0, &L->wv, 1, err)) ||
      (rc = bind_tensor(m, NM("attn_output.weight"), D, q, 0, 0, &L->wo, 1, err)))
    return rc;
  if (c->qkv_bias &&
      ((rc = bind_vec(m, NM("attn_q.bias"), q, 0, &L->wq.bias, err)) ||
       (rc = bind_vec(m, NM("attn_k.bias"), kv, 0, &L->wk.bias, err)) ||
       (rc = bind_vec(m, NM("attn_v.bias"), kv, 0, &L->wv.bias, err))))
    return rc;
  if (c->qk_norm &&
      ((rc = bind_vec(m, NM("attn_q_norm.weight"), c->head_dim, 0, &L->q_norm, err)) ||
       (rc = bind_vec(m, NM("attn_k_norm.weight"), c->head_dim, 0, &L->k_norm, err))))
    return rc;
  /* sparse when the layer has a router (a model may keep some layers dense) */
  if (c->n_expert > 0 && mq_gguf_find_tensor(&m->gguf, NM("ffn_gate_inp.weight"))) return bind_moe(m, i, err);
  return (rc = bind_tensor(m, NM("ffn_gate.weight"), c->n_ff, D, 0, 0, &L->gate, 1, err)) ||
                 (rc = bind_tensor(m, NM("ffn_up.weight"), c->n_ff, D, 0, 0, &L->up, 1, err)) ||
                 (rc = bind_tensor(m, NM("ffn_down.weight"), D, c->n_ff, 0, 0, &L->down, 1, err))
             ? rc
             : MQ_OK;
#undef NM
}

int mq_model_load_gguf(const char *path, const mq_model_params *params, mq_model **out, mq_err *err) {
  *out = NULL;
  if (params && params->quantization && strcmp(params->quantization, "gguf") != 0)
    return mq_errf(err, MQ_ERR_ARG,
                   "Quantization method specified in the model config (gguf) does not match the "
                   "quantization method specified in the `quantization` argument (%s)",
                   params->quantization);
  struct mq_model *m = calloc(1, sizeof *m);
  if (!m) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  m->method = MQ_METHOD_GGUF;
  m->no_repack = params && params->no_repack;
  int rc = mq_gguf_open(path, &m->gguf, err);
  if (rc == MQ_OK) rc = parse_config(&m->gguf, &m->cfg, err);
  if (rc) goto fail;
  mq_config *c = &m->cfg;
  const mq_gguf_tensor *te = mq_gguf_find_tensor(&m->gguf, "token_embd.weight");
  if (!te) {
    rc = mq_errf(err, MQ_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", path);
    goto fail;
  }
  c->n_vocab = (int)te->ne[1];
  if ((rc = bind_tensor(m, "token_embd.weight", c->n_vocab, c->n_embd, 0, 0, &m->embd, 0, err))) goto fail;
  m->n_params += te->n_elems;
  m->n_bytes += te->nbytes;
  if (!(m->layers = mq_model_alloc(m, (size_t)c->n_layer * sizeof(mq_layer)))) {
    rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0; i < m->gguf.n_tensors; i++) { /* as the Hugging Face loader: no layer past block_count */
    int layer, at = 0;
    if (sscanf(m->gguf.tensors[i].name, "blk.%d.%n", &layer, &at) == 1 && at > 0 &&
        layer >= c->n_layer) {
      rc = mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' belongs to layer %d, but block_count is %d",
                   path, m->gguf.tensors[i].name, layer, c->n_layer);
      goto fail;
    }
  }
  if ((rc = bind_rope_freqs(m, err))) goto fail;
  for (int i = 0; i < c->n_layer && rc == MQ_OK; i++) rc = bind_layer(m, i, err);
  if (rc || (rc = bind_vec(m, "output_norm.weight", c->n_embd, 0, &m->out_norm, err))) goto fail;
  if (mq_gguf_find_tensor(&m->gguf, "output.weight")) {
    rc = bind_tensor(m, "output.weight", c->n_vocab, c->n_embd, 0, 0, &m->lm_head, 1, err);
  } else { /* no output tensor: tied to the embeddings, as llama.cpp does */
    c->tie_embeddings = 1;
    m->lm_head = m->embd;
    mq_lspec s = {.fmt = MQ_FMT_GGUF, .bits = 16, .group_size = -1, .sym = 1};
    snprintf(s.scheme, sizeof s.scheme, "%s", mq_ggml_type_name(te->type));
    rc = mq_model_describe(m, "output (tied to token_embd)", &m->lm_head, &s, 0, err);
    m->n_params -= (uint64_t)c->n_vocab * c->n_embd;
  }
  if (rc) goto fail;
  *out = m;
  return MQ_OK;
fail:
  mq_model_free(m);
  return rc;
}
