/* Float HF checkpoint -> GGUF file: see gguf_convert.h.
 * Flow: config.json -> refuse what GGUF readers cannot express -> plan every
 * tensor (GGUF name, source tensors, shape, type) and check each source ->
 * metadata (architecture keys, tokenizer) -> header -> tensor data streamed
 * in row chunks quantized by a thread pool. */
#include "quant/gguf_convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/file.h"
#include "core/numconv.h"
#include "core/pool.h"
#include "io/checkpoint.h"
#include "io/gguf_write.h"
#include "io/jsonutil.h"
#include "model/config.h"
#include "quant/gguf_quantize.h"
#include "quant/gguf_types.h"
#include "quant/qconfig.h"
#include "tokenizer/gguf_vocab_write.h"

#define CFG_MAX ((size_t)16 << 20)
#define CHUNK_BYTES ((size_t)32 << 20) /* output bytes quantized per pool loop */

static const struct {
  const char *name;
  mq_gguf_ftype ft;
  uint32_t file_type; /* llama_ftype: general.file_type */
} k_ftypes[] = {
    {"gguf-f32", MQ_GGUF_FTYPE_F32, 0},    {"gguf-f16", MQ_GGUF_FTYPE_F16, 1},
    {"gguf-bf16", MQ_GGUF_FTYPE_BF16, 32}, {"gguf-q8_0", MQ_GGUF_FTYPE_Q8_0, 7},
    {"gguf-q4_0", MQ_GGUF_FTYPE_Q4_0, 2},  {"gguf-q4_k_m", MQ_GGUF_FTYPE_Q4_K_M, 15},
};
#define N_FTYPES (sizeof k_ftypes / sizeof k_ftypes[0])

int mq_gguf_ftype_parse(const char *s, mq_gguf_ftype *out) {
  for (size_t i = 0; i < N_FTYPES; i++)
    if (!strcasecmp(s, k_ftypes[i].name)) return (*out = k_ftypes[i].ft), 0;
  return -1;
}

/* What a tensor is, for the type rules. */
enum { R_VEC, R_ROUTER, R_EMBD, R_OUTPUT, R_ATTN_V, R_FFN_DOWN, R_WEIGHT };

typedef struct {
  char name[64];
  int role, layer;
  int n_dims;            /* 1, 2 or 3 */
  int64_t ne[3];         /* GGUF order: ne[0] = row length */
  const mq_tensor **src; /* 1 (or ne[2] for a stack of experts) source tensors */
  int n_src;
  int perm_hd; /* llama q/k: rows permuted within heads of this size */
  uint32_t type;
} tplan;

typedef struct {
  const mq_gguf_convert_opts *o;
  mq_config cfg;
  json_t *config;
  mq_ckpt ck;
  tplan *t;
  int n_t, cap_t;
  char gguf_arch[16];
  mq_gguf_convert_report rep;
  float *rope_ff;     /* llama3 scaling: rope_freqs.weight's values */
  mq_tensor rope_src; /* ... as the source of its plan */
} conv;

static void warn(conv *C, const char *fmt, const char *a) {
  size_t l = strlen(C->rep.warnings);
  if (l + 1 < sizeof C->rep.warnings)
    snprintf(C->rep.warnings + l, sizeof C->rep.warnings - l, fmt, a);
}

static int is_fp(mq_dtype t) {
  return t == MQ_DTYPE_F32 || t == MQ_DTYPE_F16 || t == MQ_DTYPE_BF16;
}

/* ---- types ---- */

/* llama.cpp's layer choice for more bits in Q4_K_M (attn_v, ffn_down). */
static int use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t base_type(const conv *C, int role, int layer) {
  if (role == R_VEC || role == R_ROUTER) return MQ_GGML_TYPE_F32;
  int tied_out = role == R_EMBD && C->cfg.tie_embeddings; /* the embeddings also serve as output */
  int is_out = role == R_OUTPUT || tied_out;
  switch (C->o->ftype) {
  case MQ_GGUF_FTYPE_F32: return MQ_GGML_TYPE_F32;
  case MQ_GGUF_FTYPE_F16: return MQ_GGML_TYPE_F16;
  case MQ_GGUF_FTYPE_BF16: return MQ_GGML_TYPE_BF16;
  case MQ_GGUF_FTYPE_Q8_0: return MQ_GGML_TYPE_Q8_0;
  case MQ_GGUF_FTYPE_Q4_0: return is_out ? MQ_GGML_TYPE_Q6_K : MQ_GGML_TYPE_Q4_0;
  case MQ_GGUF_FTYPE_Q4_K_M:
    if (is_out) return MQ_GGML_TYPE_Q6_K;
    if ((role == R_ATTN_V || role == R_FFN_DOWN) && use_more_bits(layer, C->cfg.n_layer))
      return MQ_GGML_TYPE_Q6_K;
    return MQ_GGML_TYPE_Q4_K;
  }
  return MQ_GGML_TYPE_F32;
}

/* llama-quantize's fallback when the row length is not a multiple of the block. */
static uint32_t fit_type(uint32_t t, int64_t K) {
  for (;;) {
    const mq_ggml_type_info *ti = mq_ggml_type_get(t);
    if (K % ti->blck == 0) return t;
    switch (t) {
    case MQ_GGML_TYPE_Q4_K: t = MQ_GGML_TYPE_Q5_0; break;
    case MQ_GGML_TYPE_Q6_K: t = MQ_GGML_TYPE_Q8_0; break;
    default: t = MQ_GGML_TYPE_F16;
    }
  }
}

/* ---- the plan ---- */

static tplan *plan_new(conv *C, const char *name, int role, int layer, mq_err *err) {
  if (C->n_t == C->cap_t) {
    int cap = C->cap_t ? 2 * C->cap_t : 256;
    tplan *nt = realloc(C->t, (size_t)cap * sizeof *nt);
    if (!nt) return mq_errf(err, MQ_ERR_NOMEM, "out of memory"), NULL;
    C->t = nt, C->cap_t = cap;
  }
  tplan *p = &C->t[C->n_t];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->role = role, p->layer = layer;
  return p;
}

/* The source tensor `hf`, which must be float with shape [N, K] (N = 0: 1-D [K];
 * one_row: [1, K] also accepted for a vector). */
static int source(conv *C, const char *hf, int64_t N, int64_t K, int one_row, const mq_tensor **out,
                  mq_err *err) {
  const mq_tensor *t = mq_ckpt_find(&C->ck, hf);
  if (!t) return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' is missing", C->o->src, hf);
  char sh[96];
  if (!is_fp(t->dtype))
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: tensor '%s' is %s; the GGUF writer reads F32/F16/BF16 tensors", C->o->src,
                   hf, mq_dtype_name(t->dtype));
  int ok = N ? t->n_dims == 2 && t->shape[0] == N && t->shape[1] == K
             : (t->n_dims == 1 && t->shape[0] == K) ||
                   (one_row && t->n_dims == 2 && t->shape[0] == 1 && t->shape[1] == K);
  char want[64];
  if (N)
    snprintf(want, sizeof want, "[%lld, %lld]", (long long)N, (long long)K);
  else
    snprintf(want, sizeof want, "[%lld]", (long long)K);
  if (!ok)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", C->o->src, hf,
                   mq_shape_str(t, sh, sizeof sh), want);
  *out = t;
  return MQ_OK;
}

static int add_vec(conv *C, const char *gname, const char *hf, int64_t n, int one_row,
                   mq_err *err) {
  tplan *p = plan_new(C, gname, R_VEC, -1, err);
  if (!p) return MQ_ERR_NOMEM;
  if (!(p->src = malloc(sizeof *p->src))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  C->n_t++;
  p->n_src = 1, p->n_dims = 1, p->ne[0] = n, p->ne[1] = p->ne[2] = 1;
  p->type = MQ_GGML_TYPE_F32;
  return source(C, hf, 0, n, one_row, &p->src[0], err);
}

static int add_mat(conv *C, const char *gname, const char *hf, int role, int layer, int64_t N,
                   int64_t K, int perm_hd, mq_err *err) {
  tplan *p = plan_new(C, gname, role, layer, err);
  if (!p) return MQ_ERR_NOMEM;
  if (!(p->src = malloc(sizeof *p->src))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  C->n_t++;
  p->n_src = 1, p->n_dims = 2, p->ne[0] = K, p->ne[1] = N, p->ne[2] = 1, p->perm_hd = perm_hd;
  return source(C, hf, N, K, 0, &p->src[0], err);
}

/* Experts [E] x [N, K] stacked as ne {K, N, E}; fmt has %d for the expert. */
static int add_exps(conv *C, const char *gname, const char *fmt, int layer, int role, int E,
                    int64_t N, int64_t K, mq_err *err) {
  tplan *p = plan_new(C, gname, role, layer, err);
  if (!p) return MQ_ERR_NOMEM;
  if (!(p->src = calloc((size_t)E, sizeof *p->src)))
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  C->n_t++;
  p->n_src = E, p->n_dims = 3, p->ne[0] = K, p->ne[1] = N, p->ne[2] = E;
  char hf[256];
  for (int e = 0; e < E; e++) {
    snprintf(hf, sizeof hf, fmt, e);
    int rc = source(C, hf, N, K, 0, &p->src[e], err);
    if (rc) return rc;
  }
  return MQ_OK;
}

static int plan_layer(conv *C, int i, mq_err *err) {
  const mq_config *c = &C->cfg;
  int64_t D = c->n_embd, Q = (int64_t)c->n_head * c->head_dim,
          KV = (int64_t)c->n_head_kv * c->head_dim;
  int llama = !strcmp(C->gguf_arch, "llama"), mixtral = c->arch == MQ_ARCH_MIXTRAL, rc;
  char g[64], h[256], fmt[256];
#define G(s) (snprintf(g, sizeof g, "blk.%d." s, i), g)
#define H(s) (snprintf(h, sizeof h, "model.layers.%d." s, i), h)
  if ((rc = add_vec(C, G("attn_norm.weight"), H("input_layernorm.weight"), D, 0, err)) ||
      (rc = add_mat(C, G("attn_q.weight"), H("self_attn.q_proj.weight"), R_WEIGHT, i, Q, D,
                    llama ? c->head_dim : 0, err)) ||
      (rc = add_mat(C, G("attn_k.weight"), H("self_attn.k_proj.weight"), R_WEIGHT, i, KV, D,
                    llama ? c->head_dim : 0, err)) ||
      (rc = add_mat(C, G("attn_v.weight"), H("self_attn.v_proj.weight"), R_ATTN_V, i, KV, D, 0,
                    err)) ||
      (rc = add_mat(C, G("attn_output.weight"), H("self_attn.o_proj.weight"), R_WEIGHT, i, D, Q, 0,
                    err)))
    return rc;
  if (c->qkv_bias && ((rc = add_vec(C, G("attn_q.bias"), H("self_attn.q_proj.bias"), Q, 0, err)) ||
                      (rc = add_vec(C, G("attn_k.bias"), H("self_attn.k_proj.bias"), KV, 0, err)) ||
                      (rc = add_vec(C, G("attn_v.bias"), H("self_attn.v_proj.bias"), KV, 0, err))))
    return rc;
  if (c->qk_norm && ((rc = add_vec(C, G("attn_q_norm.weight"), H("self_attn.q_norm.weight"),
                                   c->head_dim, 0, err)) ||
                     (rc = add_vec(C, G("attn_k_norm.weight"), H("self_attn.k_norm.weight"),
                                   c->head_dim, 0, err))))
    return rc;
  if ((rc = add_vec(C, G("ffn_norm.weight"), H("post_attention_layernorm.weight"), D, 0, err)))
    return rc;
  if (!mq_config_layer_is_moe(c, i))
    return (rc = add_mat(C, G("ffn_gate.weight"), H("mlp.gate_proj.weight"), R_WEIGHT, i, c->n_ff,
                         D, 0, err)) ||
                   (rc = add_mat(C, G("ffn_up.weight"), H("mlp.up_proj.weight"), R_WEIGHT, i,
                                 c->n_ff, D, 0, err)) ||
                   (rc = add_mat(C, G("ffn_down.weight"), H("mlp.down_proj.weight"), R_FFN_DOWN, i,
                                 D, c->n_ff, 0, err))
               ? rc
               : MQ_OK;
  int E = c->n_expert;
  int64_t I = c->n_ff_exp;
  const char *blk = mixtral ? "block_sparse_moe" : "mlp";
  const char *pj[3] = {mixtral ? "w1" : "gate_proj", mixtral ? "w3" : "up_proj",
                       mixtral ? "w2" : "down_proj"};
  snprintf(fmt, sizeof fmt, "model.layers.%d.%s.gate.weight", i, blk);
  if ((rc = add_mat(C, G("ffn_gate_inp.weight"), fmt, R_ROUTER, i, E, D, 0, err))) return rc;
  static const char *const gn[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight",
                                    "ffn_down_exps.weight"};
  for (int r = 0; r < 3; r++) {
    snprintf(fmt, sizeof fmt, "model.layers.%d.%s.experts.%%d.%s.weight", i, blk, pj[r]);
    snprintf(g, sizeof g, "blk.%d.%s", i, gn[r]);
    if ((rc = add_exps(C, g, fmt, i, r == 2 ? R_FFN_DOWN : R_WEIGHT, E, r == 2 ? D : I,
                       r == 2 ? I : D, err)))
      return rc;
  }
  if (c->n_ff_shexp > 0) {
    int64_t S = c->n_ff_shexp;
    if ((rc = add_mat(C, G("ffn_gate_shexp.weight"), H("mlp.shared_expert.gate_proj.weight"),
                      R_WEIGHT, i, S, D, 0, err)) ||
        (rc = add_mat(C, G("ffn_up_shexp.weight"), H("mlp.shared_expert.up_proj.weight"), R_WEIGHT,
                      i, S, D, 0, err)) ||
        (rc = add_mat(C, G("ffn_down_shexp.weight"), H("mlp.shared_expert.down_proj.weight"),
                      R_FFN_DOWN, i, D, S, 0, err)) ||
        (rc = add_vec(C, G("ffn_gate_inp_shexp.weight"), H("mlp.shared_expert_gate.weight"), D, 1,
                      err)))
      return rc;
  }
#undef G
#undef H
  return MQ_OK;
}

/* llama3 RoPE scaling as llama.cpp's convert writes it: rope_freqs.weight,
 * one factor per rotated pair that divides its frequency (ggml's rope
 * divides theta by it): 1 for wavelengths under orig_ctx / high_freq_factor,
 * `factor` over orig_ctx / low_freq_factor, and between them the reciprocal
 * of transformers' smooth interpolation (_compute_llama3_parameters), so a
 * reader gets the same frequencies as the Hugging Face model. */
static int add_rope_freqs(conv *C, mq_err *err) {
  const mq_rope *r = &C->cfg.rope;
  int half = r->rot_dim / 2;
  if (!(C->rope_ff = malloc((size_t)half * sizeof(float))))
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  double low_wl = r->orig_ctx / r->low_freq_factor, high_wl = r->orig_ctx / r->high_freq_factor;
  for (int i = 0; i < half; i++) {
    double wl = 2.0 * M_PI * pow(r->theta, (2.0 * i) / r->rot_dim), f = r->factor;
    if (wl < high_wl) {
      f = 1.0;
    } else if (wl <= low_wl) {
      double sm = (r->orig_ctx / wl - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
      f = 1.0 / ((1.0 - sm) / r->factor + sm);
    }
    C->rope_ff[i] = (float)f;
  }
  C->rope_src = (mq_tensor){.name = "rope_scaling (llama3)", .dtype = MQ_DTYPE_F32, .n_dims = 1,
                            .shape = {half}, .n_elems = (uint64_t)half,
                            .nbytes = (uint64_t)half * 4, .data = (const uint8_t *)C->rope_ff,
                            .file = C->o->src};
  tplan *p = plan_new(C, "rope_freqs.weight", R_VEC, -1, err);
  if (!p) return MQ_ERR_NOMEM;
  if (!(p->src = malloc(sizeof *p->src))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  C->n_t++;
  p->src[0] = &C->rope_src;
  p->n_src = 1, p->n_dims = 1, p->ne[0] = half, p->ne[1] = p->ne[2] = 1;
  p->type = MQ_GGML_TYPE_F32;
  return MQ_OK;
}

static int plan_all(conv *C, mq_err *err) {
  const mq_config *c = &C->cfg;
  if (c->rope.type == MQ_ROPE_LLAMA3) {
    int rc = add_rope_freqs(C, err);
    if (rc) return rc;
  }
  int rc = add_mat(C, "token_embd.weight", "model.embed_tokens.weight", R_EMBD, -1, c->n_vocab,
                   c->n_embd, 0, err);
  for (int i = 0; i < c->n_layer && !rc; i++) rc = plan_layer(C, i, err);
  if (!rc) rc = add_vec(C, "output_norm.weight", "model.norm.weight", c->n_embd, 0, err);
  if (!rc && !c->tie_embeddings)
    rc = add_mat(C, "output.weight", "lm_head.weight", R_OUTPUT, -1, c->n_vocab, c->n_embd, 0, err);
  if (rc) return rc;
  for (int i = 0; i < C->n_t; i++) {
    tplan *p = &C->t[i];
    uint32_t want = base_type(C, p->role, p->layer);
    p->type = fit_type(want, p->ne[0]);
    if (p->type != want) {
      C->rep.n_fallback++;
      char msg[160];
      snprintf(msg, sizeof msg,
               "%s: row length %lld is not a multiple of %s's block; written as %s", p->name,
               (long long)p->ne[0], mq_ggml_type_name(want), mq_ggml_type_name(p->type));
      warn(C, "%s\n", msg);
    }
    if (p->type < 64) C->rep.n_by_type[p->type]++;
  }
  C->rep.n_tensors = C->n_t;
  return MQ_OK;
}

/* ---- refusals: what a GGUF reader could not run as the checkpoint means ---- */

static int check_config(conv *C, mq_err *err) {
  const mq_config *c = &C->cfg;
  const char *src = C->o->src;
  static const char *const k_arch[] = {
      [MQ_ARCH_LLAMA] = "llama",   [MQ_ARCH_QWEN2] = "qwen2",
      [MQ_ARCH_QWEN3] = "qwen3",   [MQ_ARCH_QWEN3_MOE] = "qwen3moe",
      [MQ_ARCH_MIXTRAL] = "llama", [MQ_ARCH_QWEN2_MOE] = "qwen2moe"};
  snprintf(C->gguf_arch, sizeof C->gguf_arch, "%s", k_arch[c->arch]);
  if (c->rope.type == MQ_ROPE_YARN)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: yarn RoPE scaling is not written to GGUF (mixq's GGUF reader takes linear "
                   "scaling and llama3's rope_freqs factors)",
                   src);
  if (!strcmp(C->gguf_arch, "llama") && c->rope.rot_dim != c->head_dim)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: partial RoPE (%d of %d dims) with llama's q/k permutation", src,
                   c->rope.rot_dim, c->head_dim);
  if (c->o_bias || c->mlp_bias ||
      (c->qkv_bias && c->arch != MQ_ARCH_QWEN2 && c->arch != MQ_ARCH_QWEN2_MOE))
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: %s with attention_bias/mlp_bias: GGUF readers take biases from the "
                   "architecture (q/k/v biases for qwen2 only)",
                   src, c->arch_name);
  if (c->n_expert && c->arch == MQ_ARCH_QWEN3_MOE && !c->norm_topk)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: qwen3_moe with norm_topk_prob false: GGUF readers renormalize the top-k "
                   "routing weights of qwen3moe",
                   src);
  if (c->n_expert && c->arch == MQ_ARCH_QWEN2_MOE && c->norm_topk)
    return mq_errf(
        err, MQ_ERR_UNSUPPORTED,
        "%s: qwen2_moe with norm_topk_prob true: GGUF readers do not renormalize qwen2moe "
        "routing weights",
        src);
  if (c->sliding_window > 0 && c->sliding_window < c->n_ctx_train)
    warn(C,
         "%s: sliding_window has no GGUF key for this architecture; readers attend to the whole "
         "context\n",
         c->arch_name);
  return MQ_OK;
}

/* ---- metadata ---- */

static int put_u32(mq_gguf_writer *w, const char *arch, const char *key, uint32_t v, mq_err *err) {
  char k[160];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  return mq_gguf_writer_u32(w, k, v, err);
}

static int put_f32(mq_gguf_writer *w, const char *arch, const char *key, float v, mq_err *err) {
  char k[160];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  return mq_gguf_writer_f32(w, k, v, err);
}

static int metadata(conv *C, mq_gguf_writer *w, mq_err *err) {
  const mq_config *c = &C->cfg;
  const char *a = C->gguf_arch;
  uint32_t ft = 0;
  for (size_t i = 0; i < N_FTYPES; i++)
    if (k_ftypes[i].ft == C->o->ftype) ft = k_ftypes[i].file_type;
  /* general.name: the source folder's last component */
  char name[256];
  snprintf(name, sizeof name, "%s", C->o->src);
  size_t nl = strlen(name);
  while (nl > 1 && name[nl - 1] == '/') name[--nl] = 0;
  const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
  int rc;
  if ((rc = mq_gguf_writer_str(w, "general.architecture", a, strlen(a), err)) ||
      (rc = mq_gguf_writer_str(w, "general.name", base, strlen(base), err)) ||
      (rc = mq_gguf_writer_u32(w, "general.file_type", ft, err)) ||
      (rc = mq_gguf_writer_u32(w, "general.quantization_version", 2, err)) ||
      (rc = put_u32(w, a, "context_length", (uint32_t)c->n_ctx_train, err)) ||
      (rc = put_u32(w, a, "embedding_length", (uint32_t)c->n_embd, err)) ||
      (rc = put_u32(w, a, "block_count", (uint32_t)c->n_layer, err)) ||
      (rc = put_u32(w, a, "feed_forward_length", (uint32_t)c->n_ff, err)) ||
      (rc = put_u32(w, a, "attention.head_count", (uint32_t)c->n_head, err)) ||
      (rc = put_u32(w, a, "attention.head_count_kv", (uint32_t)c->n_head_kv, err)) ||
      (rc = put_u32(w, a, "attention.key_length", (uint32_t)c->head_dim, err)) ||
      (rc = put_u32(w, a, "attention.value_length", (uint32_t)c->head_dim, err)) ||
      (rc = put_f32(w, a, "attention.layer_norm_rms_epsilon", (float)c->norm_eps, err)) ||
      (rc = put_f32(w, a, "rope.freq_base", (float)c->rope.theta, err)) ||
      (rc = put_u32(w, a, "rope.dimension_count", (uint32_t)c->rope.rot_dim, err)) ||
      (rc = put_u32(w, a, "vocab_size", (uint32_t)c->n_vocab, err)))
    return rc;
  if (c->rope.type == MQ_ROPE_LINEAR) {
    char k[160];
    snprintf(k, sizeof k, "%s.rope.scaling.type", a);
    if ((rc = mq_gguf_writer_str(w, k, "linear", 6, err)) ||
        (rc = put_f32(w, a, "rope.scaling.factor", (float)c->rope.factor, err)))
      return rc;
  }
  if (c->n_expert) {
    if ((rc = put_u32(w, a, "expert_count", (uint32_t)c->n_expert, err)) ||
        (rc = put_u32(w, a, "expert_used_count", (uint32_t)c->n_expert_used, err)))
      return rc;
    if (c->arch != MQ_ARCH_MIXTRAL &&
        (rc = put_u32(w, a, "expert_feed_forward_length", (uint32_t)c->n_ff_exp, err)))
      return rc;
    if (c->n_ff_shexp > 0 &&
        (rc = put_u32(w, a, "expert_shared_feed_forward_length", (uint32_t)c->n_ff_shexp, err)))
      return rc;
  }
  char tj[4096];
  if (mq_path_join(tj, sizeof tj, C->o->src, "tokenizer.json") == 0 && mq_file_exists(tj)) {
    size_t l = strlen(C->rep.warnings);
    return mq_gguf_write_vocab(w, C->o->src, c->n_vocab, C->rep.warnings + l,
                               sizeof C->rep.warnings - l, err);
  }
  warn(C, "%s has no tokenizer.json: the GGUF file carries no tokenizer (llama.cpp needs one)\n",
       C->o->src);
  return MQ_OK;
}

/* ---- data ---- */

typedef struct {
  const tplan *p;
  const mq_tensor *src;
  int64_t row0; /* first row of the chunk (within src) */
  uint8_t *out;
  size_t rb;
  float *scratch; /* [threads][K] */
  int64_t *bad;   /* [threads]: a row with a non-finite value, or -1 */
} job;

static void read_row(const mq_tensor *t, int64_t r, int64_t K, float *v) {
  const uint8_t *p = t->data + (size_t)r * (size_t)K * (t->dtype == MQ_DTYPE_F32 ? 4 : 2);
  for (int64_t k = 0; k < K; k++) {
    if (t->dtype == MQ_DTYPE_F32) {
      uint32_t u;
      memcpy(&u, p + 4 * k, 4);
      v[k] = mq_bits_to_f32(u);
    } else {
      uint16_t h;
      memcpy(&h, p + 2 * k, 2);
      v[k] = t->dtype == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
    }
  }
}

static void work(void *ctx, int begin, int end, int tid) {
  job *J = ctx;
  const tplan *p = J->p;
  int64_t K = p->ne[0];
  float *v = J->scratch + (size_t)tid * (size_t)K;
  for (int i = begin; i < end; i++) {
    int64_t r = J->row0 + i, s = r;
    if (p->perm_hd) { /* GGUF row h*hd + 2j + t = HF row h*hd + t*hd/2 + j */
      int64_t hd = p->perm_hd, h = r / hd, w = r % hd;
      s = h * hd + (w % 2) * (hd / 2) + w / 2;
    }
    read_row(J->src, s, K, v);
    for (int64_t k = 0; k < K; k++)
      if (!isfinite(v[k])) {
        if (J->bad[tid] < 0) J->bad[tid] = s;
        memset(v, 0, (size_t)K * sizeof *v);
        break;
      }
    mq_gguf_quantize_row(p->type, v, J->out + (size_t)i * J->rb, K);
  }
}

static int write_tensor(mq_gguf_writer *w, mq_pool *pool, const tplan *p, uint8_t *out,
                        float *scratch, int64_t *bad, int nth, mq_err *err) {
  int64_t K = p->ne[0], N = p->ne[1];
  size_t rb = (size_t)mq_ggml_row_size(p->type, K);
  int64_t chunk = (int64_t)(CHUNK_BYTES / rb);
  if (chunk < 1) chunk = 1;
  for (int e = 0; e < p->n_src; e++) {
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      int64_t n = N - r0 < chunk ? N - r0 : chunk;
      for (int t = 0; t < nth; t++) bad[t] = -1;
      job J = {p, p->src[e], r0, out, rb, scratch, bad};
      mq_pool_for(pool, (int)n, work, &J);
      for (int t = 0; t < nth; t++)
        if (bad[t] >= 0)
          return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' row %lld holds a non-finite value",
                         p->src[e]->file, p->src[e]->name, (long long)bad[t]);
      int rc = mq_gguf_writer_write(w, out, (size_t)n * rb, err);
      if (rc) return rc;
    }
  }
  return MQ_OK;
}

static int write_file(conv *C, mq_err *err) {
  mq_gguf_writer *w = mq_gguf_writer_new();
  mq_pool *pool = mq_pool_init(C->o->n_threads);
  if (!w || !pool) {
    mq_gguf_writer_free(w), mq_pool_free(pool);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  int nth = mq_pool_size(pool), rc = metadata(C, w, err);
  int64_t maxK = 1;
  for (int i = 0; i < C->n_t && !rc; i++) {
    const tplan *p = &C->t[i];
    maxK = p->ne[0] > maxK ? p->ne[0] : maxK;
    uint64_t nb;
    rc = mq_gguf_writer_tensor(w, p->name, p->type, p->n_dims, p->ne, &nb, err);
    C->rep.bytes += (nb + 31) / 32 * 32;
  }
  uint8_t *out = malloc(CHUNK_BYTES + (size_t)maxK * 4);
  float *scratch = malloc((size_t)nth * (size_t)maxK * sizeof(float));
  int64_t *bad = malloc((size_t)nth * sizeof *bad);
  if (!rc && (!out || !scratch || !bad)) rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  if (!rc) rc = mq_gguf_writer_begin(w, C->o->dst, err);
  for (int i = 0; i < C->n_t && !rc; i++)
    rc = write_tensor(w, pool, &C->t[i], out, scratch, bad, nth, err);
  if (!rc) rc = mq_gguf_writer_finish(w, err);
  if (!rc) {
    struct stat st;
    if (stat(C->o->dst, &st) == 0) C->rep.bytes = (uint64_t)st.st_size;
  }
  free(out), free(scratch), free(bad);
  mq_gguf_writer_free(w);
  mq_pool_free(pool);
  return rc;
}

int mq_gguf_convert(const mq_gguf_convert_opts *o, mq_err *err) {
  if (!o || !o->src || !o->dst)
    return mq_errf(err, MQ_ERR_ARG, "GGUF writer: no source or destination");
  size_t dl = strlen(o->dst);
  if (dl < 6 || strcmp(o->dst + dl - 5, ".gguf") != 0)
    return mq_errf(err, MQ_ERR_ARG, "%s: a GGUF destination must be a file name ending in .gguf",
                   o->dst);
  struct stat st;
  if (stat(o->dst, &st) == 0 && S_ISDIR(st.st_mode))
    return mq_errf(err, MQ_ERR_ARG, "%s is a directory; give a file name ending in .gguf", o->dst);
  conv C = {.o = o};
  char cpath[4096];
  mq_qconfig q = {0};
  int rc = mq_path_join(cpath, sizeof cpath, o->src, "config.json")
               ? mq_errf(err, MQ_ERR_ARG, "%s: path too long", o->src)
               : mq_json_load_file(cpath, CFG_MAX, &C.config, err);
  if (!rc) rc = mq_config_parse(C.config, cpath, &C.cfg, err);
  if (!rc) rc = mq_qconfig_detect(o->src, C.config, NULL, &q, err);
  if (!rc && q.method != MQ_METHOD_NONE)
    rc = mq_errf(err, MQ_ERR_UNSUPPORTED,
                 "%s is a %s checkpoint; the GGUF writer reads float checkpoints (run `mixq "
                 "dequantize` first)",
                 o->src, mq_method_name(q.method));
  mq_qconfig_free(&q);
  if (!rc) rc = check_config(&C, err);
  if (!rc) rc = mq_ckpt_open(o->src, &C.ck, err);
  if (!rc) rc = plan_all(&C, err);
  if (!rc) rc = write_file(&C, err);
  if (!rc && o->report) *o->report = C.rep;
  for (int i = 0; i < C.n_t; i++) free(C.t[i].src);
  free(C.t);
  free(C.rope_ff);
  mq_ckpt_close(&C.ck);
  json_decref(C.config);
  return rc;
}
