/* Binding a Hugging Face checkpoint's tensors to the model's blocks. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigalloc.h"
#include "core/err.h"
#include "core/numconv.h"
#include "io/jsonutil.h"
#include "model/model.h"
#include "quant/adapt.h"
#include "quant/plan.h"

#define MQ_CONFIG_MAX_BYTES (16u << 20)

void *mq_model_alloc(struct mq_model *m, size_t bytes) {
  size_t hdr = 64; /* keeps the payload 64-byte aligned */
  if (bytes > SIZE_MAX - hdr) return NULL;
  mq_alloc_node *n = mq_big_alloc(hdr + bytes); /* huge pages for tiles: core/bigalloc.h */
  if (!n) return NULL;
  memset(n, 0, hdr + bytes);
  n->next = m->owned;
  m->owned = n;
  return (char *)n + hdr;
}

void mq_model_warn(struct mq_model *m, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char **nw = realloc(m->warnings, (size_t)(m->n_warnings + 1) * sizeof(char *));
  if (!nw) return;
  m->warnings = nw;
  if ((nw[m->n_warnings] = strdup(buf))) m->n_warnings++;
}

int mq_model_describe(struct mq_model *m, const char *prefix, const mq_linear *l,
                      const mq_lspec *s, uint64_t bytes, mq_err *err);

static int check_shape(const mq_tensor *t, int n_dims, int64_t d0, int64_t d1, mq_err *err) {
  int ok = t->n_dims == n_dims && t->shape[0] == d0 && (n_dims < 2 || t->shape[1] == d1);
  if (ok) return MQ_OK;
  char got[128];
  if (n_dims == 1)
    return mq_errf(err, MQ_ERR_FORMAT, "tensor '%s' in %s: shape %s, expected [%lld]", t->name,
                   t->file, mq_shape_str(t, got, sizeof got), (long long)d0);
  return mq_errf(err, MQ_ERR_FORMAT, "tensor '%s' in %s: shape %s, expected [%lld, %lld]", t->name,
                 t->file, mq_shape_str(t, got, sizeof got), (long long)d0, (long long)d1);
}

static int find(const struct mq_model *m, const char *name, const mq_tensor **out, mq_err *err) {
  *out = mq_ckpt_find(&m->ckpt, name);
  if (!*out) return mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' is missing", m->ckpt.dir, name);
  if (!mq_dtype_is_float((*out)->dtype) || (*out)->dtype == MQ_DTYPE_F64)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "tensor '%s' in %s: dtype %s, expected F32, F16 or BF16",
                   name, (*out)->file, mq_dtype_name((*out)->dtype));
  return MQ_OK;
}

/* A small vector (norm weight, bias) converted to a model-owned f32 copy. */
static int bind_vec(struct mq_model *m, const char *name, int n, const float **out, mq_err *err) {
  const mq_tensor *t;
  int rc = find(m, name, &t, err);
  if (rc == MQ_OK) rc = check_shape(t, 1, n, 0, err);
  if (rc) return rc;
  float *v = mq_model_alloc(m, (size_t)n * sizeof(float));
  if (!v) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for '%s'", name);
  for (int i = 0; i < n; i++) {
    const uint8_t *p = t->data + (size_t)i * mq_dtype_size(t->dtype);
    uint16_t h;
    uint32_t u;
    switch (t->dtype) {
    case MQ_DTYPE_F32: memcpy(&u, p, 4), v[i] = mq_bits_to_f32(u); break;
    case MQ_DTYPE_F16: memcpy(&h, p, 2), v[i] = mq_f16_to_f32(h); break;
    default: memcpy(&h, p, 2), v[i] = mq_bf16_to_f32(h); break;
    }
  }
  m->n_params += (uint64_t)n;
  m->n_bytes += t->nbytes;
  *out = v;
  return MQ_OK;
}

/* An optional vector: *out = NULL when the tensor is absent. */
static int bind_opt_vec(struct mq_model *m, const char *name, int n, const float **out, mq_err *err) {
  *out = NULL;
  return mq_ckpt_find(&m->ckpt, name) ? bind_vec(m, name, n, out, err) : MQ_OK;
}

/* Weights stay in the mapping unless misaligned for their element size, in
 * which case they are copied once. */
static int aligned_data(struct mq_model *m, const mq_tensor *t, const void **out, mq_err *err) {
  size_t esz = (size_t)mq_dtype_size(t->dtype);
  if (((uintptr_t)t->data % esz) == 0) {
    *out = t->data;
    return MQ_OK;
  }
  void *copy = mq_model_alloc(m, (size_t)t->nbytes);
  if (!copy) return mq_errf(err, MQ_ERR_NOMEM, "out of memory copying '%s'", t->name);
  memcpy(copy, t->data, (size_t)t->nbytes);
  *out = copy;
  return MQ_OK;
}

/* Bytes on disk of every tensor of module prefix (prefix + "." + anything
 * without further dots, e.g. qweight, scales, bias). */
static uint64_t module_bytes(const struct mq_model *m, const char *prefix) {
  size_t pl = strlen(prefix);
  uint64_t total = 0;
  for (int i = 0; i < m->ckpt.n_all; i++) {
    const char *n = m->ckpt.all[i]->name;
    if (strncmp(n, prefix, pl) == 0 && n[pl] == '.' && !strchr(n + pl + 1, '.'))
      total += m->ckpt.all[i]->nbytes;
  }
  return total;
}

/* Record a bound linear for mq_model_linear (inspect). */
int mq_model_describe(struct mq_model *m, const char *prefix, const mq_linear *l,
                      const mq_lspec *s, uint64_t bytes, mq_err *err) {
  if (m->n_linears == m->cap_linears) {
    int nc = m->cap_linears ? 2 * m->cap_linears : 64;
    mq_linear_info *n = realloc(m->linears, (size_t)nc * sizeof *n);
    if (n) m->linears = n;
    const mq_linear **p = realloc(m->linear_ptr, (size_t)nc * sizeof *p);
    if (p) m->linear_ptr = p;
    if (!n || !p) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    m->cap_linears = nc;
  }
  char *name = mq_model_alloc(m, strlen(prefix) + 1);
  char *scheme = mq_model_alloc(m, strlen(s->scheme) + 1);
  if (!name || !scheme) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  strcpy(name, prefix);
  strcpy(scheme, s->scheme);
  m->linear_ptr[m->n_linears] = l;
  mq_linear_info *li = &m->linears[m->n_linears++];
  *li = (mq_linear_info){name, scheme, mq_dtype_name(l->dtype), 8 * mq_dtype_size(l->dtype),
                         mq_act_name(l->act), 0, 0, l->n_out, l->n_in, bytes, mq_linear_bytes(l)};
  li->layout = l->q.x8 ? "x8" : "rows";
  if (l->kind == MQ_W_INT) {
    static const char *k_fmt[9] = {"", "", "int2", "int3", "int4", "", "", "", "int8"};
    li->weight_format = k_fmt[l->q.bits];
    li->w_bits = l->q.bits;
    li->group_size = s->group_size > 0 ? s->group_size : 0;
    li->has_zero = !s->sym;
  } else if (l->kind == MQ_W_GGUF) {
    li->weight_format = scheme; /* the ggml type name */
    li->w_bits = (int)(8 * mq_linear_bytes(l) / ((uint64_t)l->n_out * l->n_in));
  } else if (l->kind == MQ_W_MXFP8) {
    li->weight_format = "fp8-e4m3";
    li->w_bits = 8;
    li->group_size = 32;
  }
  int g = mq_linear_gather_floats(l);
  if (g > m->max_gather) m->max_gather = g;
  if (l->n_in > m->max_in) m->max_in = l->n_in;
  m->n_params += (uint64_t)l->n_out * (uint64_t)l->n_in;
  m->n_bytes += bytes;
  return MQ_OK;
}

static int bind_float_linear(struct mq_model *m, const char *prefix, int n_out, int n_in,
                             int has_bias, mq_linear *l, mq_err *err) {
  char name[256];
  const mq_tensor *t;
  snprintf(name, sizeof name, "%s.weight", prefix);
  if (!mq_ckpt_find(&m->ckpt, name)) {
    static const char *k_quant[] = {"qweight", "weight_packed"};
    for (int i = 0; i < 2; i++) {
      snprintf(name, sizeof name, "%s.%s", prefix, k_quant[i]);
      if (mq_ckpt_find(&m->ckpt, name))
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s: tensor '%s' is quantized, but the quantization settings leave "
                       "this layer unquantized (FLOAT)",
                       prefix, name);
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
  }
  int rc = find(m, name, &t, err);
  if (rc == MQ_OK) rc = check_shape(t, 2, n_out, n_in, err);
  if (rc == MQ_OK) rc = aligned_data(m, t, &l->w, err);
  if (rc) return rc;
  l->n_out = n_out;
  l->n_in = n_in;
  l->kind = MQ_W_FLOAT;
  l->dtype = t->dtype;
  l->bias = NULL;
  if (has_bias) {
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((rc = bind_vec(m, name, n_out, &l->bias, err))) return rc;
    m->n_params -= (uint64_t)n_out, m->n_bytes -= mq_ckpt_find(&m->ckpt, name)->nbytes;
  }
  return MQ_OK;
}

/* One linear module of the architecture, its plan and where it binds. */
typedef struct slot {
  char name[112];
  int n_out, n_in, has_bias;
  int fuse;   /* shards of one fused layer share a nonzero id */
  int router; /* a MoE router: float in every producer's checkpoints */
  int moe_layer, expert, role; /* experts: layer, expert index, 0 gate 1 up 2 down; -1 otherwise */
  mq_linear *dst;
  mq_lspec spec;
} slot;

/* A non-finite scale, zero-point term or bias would turn every output of
 * the layer into NaN or inf: refuse it, naming the layer (corrupt checkpoint
 * or a producer bug), instead of computing garbage. */
static int check_finite(const char *name, const mq_linear *l, mq_err *err) {
  const mq_qint *q = &l->q;
  if (l->kind == MQ_W_INT && q->scales) {
    size_t n = (size_t)l->n_out * (size_t)q->n_groups;
    for (size_t i = 0; i < n; i++) {
      float v = q->scales[i], z = q->mins ? q->mins[i] : 0.0f;
      if (!isfinite(v) || !isfinite(z))
        return mq_errf(err, MQ_ERR_FORMAT,
                       "layer %s: the %s of output row %zu, group %zu is %g: not a finite number", name,
                       isfinite(v) ? "zero point term" : "scale", i / (size_t)q->n_groups,
                       i % (size_t)q->n_groups, isfinite(v) ? (double)z : (double)v);
    }
  }
  for (int i = 0; i < l->n_out; i++) {
    if (l->bias && !isfinite(l->bias[i]))
      return mq_errf(err, MQ_ERR_FORMAT, "layer %s: bias[%d] is %g: not a finite number", name, i,
                     (double)l->bias[i]);
    if (l->deq && !isfinite(l->deq[i]))
      return mq_errf(err, MQ_ERR_FORMAT, "layer %s: deq_scale[%d] is %g: not a finite number", name,
                     i, (double)l->deq[i]);
  }
  return MQ_OK;
}

static int bind_slot(struct mq_model *m, slot *sl, mq_err *err) {
  mq_lspec *s = &sl->spec;
  char wn[160];
  snprintf(wn, sizeof wn, "%s.weight", sl->name);
  const mq_tensor *wt = mq_ckpt_find(&m->ckpt, wn);
  if (sl->router && s->fmt != MQ_FMT_FLOAT && wt && mq_dtype_is_float(wt->dtype)) {
    mq_lspec fs = {.fmt = MQ_FMT_FLOAT, .scheme = "FLOAT", .bits = 16, .group_size = -1, .sym = 1};
    *s = fs; /* routers stay float; settings that name every Linear do not change that */
  }
  int rc;
  switch (s->fmt) {
  case MQ_FMT_FLOAT: rc = bind_float_linear(m, sl->name, sl->n_out, sl->n_in, sl->has_bias, sl->dst, err); break;
  case MQ_FMT_AWQ: rc = mq_adapt_awq(m, sl->name, s, sl->n_out, sl->n_in, sl->dst, err); break;
  case MQ_FMT_GPTQ: rc = mq_adapt_gptq(m, sl->name, s, sl->n_out, sl->n_in, sl->dst, err); break;
  case MQ_FMT_CT_PACKED:
  case MQ_FMT_CT_INT:
  case MQ_FMT_CT_FLOAT: rc = mq_adapt_ct(m, sl->name, s, sl->n_out, sl->n_in, sl->dst, err); break;
  case MQ_FMT_MODELSLIM: rc = mq_adapt_modelslim(m, sl->name, s, sl->n_out, sl->n_in, sl->dst, err); break;
  default:
    rc = mq_errf(err, MQ_ERR_UNSUPPORTED, "layer %s: scheme %s is not supported by this build yet",
                 sl->name, s->scheme);
  }
  if (rc) return rc;
  /* ModelSlim W8A8 folds the float bias into quant_bias */
  if (sl->has_bias && !sl->dst->bias && sl->dst->act != MQ_ACT_INT8_STATIC)
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s: tensor '%s.bias' is missing", sl->name, sl->name);
  if ((rc = check_finite(sl->name, sl->dst, err))) return rc;
  if ((rc = mq_model_repack(m, sl->dst, err))) return rc;
  mq_model_drop_sources(m, sl->name, sl->dst);
  return mq_model_describe(m, sl->name, sl->dst, s, module_bytes(m, sl->name), err);
}

typedef struct slot_list {
  slot *s;
  int n, cap;
} slot_list;

static slot *add_slot(slot_list *l, const char *name, int n_out, int n_in, int bias, int fuse,
                      mq_linear *dst) {
  slot *s = &l->s[l->n++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->n_out = n_out, s->n_in = n_in, s->has_bias = bias, s->fuse = fuse, s->dst = dst;
  s->moe_layer = s->expert = s->role = -1;
  return s;
}

/* The MoE block of layer i: router, experts, shared expert (qwen2_moe). */
static int moe_slots(struct mq_model *m, int i, slot_list *sl, int *fuse, mq_err *err) {
  const mq_config *c = &m->cfg;
  mq_moe *e = mq_model_alloc(m, sizeof *e);
  mq_linear *lin = mq_model_alloc(m, 3 * (size_t)c->n_expert * sizeof(mq_linear));
  if (!e || !lin) return mq_errf(err, MQ_ERR_NOMEM, "out of memory for %d experts", c->n_expert);
  e->gate = lin, e->up = lin + c->n_expert, e->down = lin + 2 * c->n_expert;
  m->layers[i].moe = e;
  int mixtral = c->arch == MQ_ARCH_MIXTRAL;
  const char *blk = mixtral ? "block_sparse_moe" : "mlp";
  static const char *k_qwen[3] = {"gate_proj", "up_proj", "down_proj"}, *k_mix[3] = {"w1", "w3", "w2"};
  char n[112];
  snprintf(n, sizeof n, "model.layers.%d.%s.gate", i, blk);
  add_slot(sl, n, c->n_expert, c->n_embd, 0, 0, &e->router)->router = 1;
  for (int x = 0; x < c->n_expert; x++) {
    ++*fuse;
    for (int r = 0; r < 3; r++) {
      snprintf(n, sizeof n, "model.layers.%d.%s.experts.%d.%s", i, blk, x, (mixtral ? k_mix : k_qwen)[r]);
      mq_linear *dst = r == 0 ? &e->gate[x] : r == 1 ? &e->up[x] : &e->down[x];
      slot *s = add_slot(sl, n, r == 2 ? c->n_embd : c->n_ff_exp, r == 2 ? c->n_ff_exp : c->n_embd,
                         0, r < 2 ? *fuse : 0, dst);
      s->moe_layer = i, s->expert = x, s->role = r;
    }
  }
  /* more experts stored than configured is an inconsistent checkpoint */
  snprintf(n, sizeof n, "model.layers.%d.%s.experts.%d.%s.", i, blk, c->n_expert, (mixtral ? k_mix : k_qwen)[0]);
  for (int t = 0; t < m->ckpt.n_all; t++)
    if (strncmp(m->ckpt.all[t]->name, n, strlen(n)) == 0)
      return mq_errf(err, MQ_ERR_FORMAT,
                     "layer %d: tensor '%s' belongs to expert %d, but config.json declares %d experts",
                     i, m->ckpt.all[t]->name, c->n_expert, c->n_expert);
  if (c->n_ff_shexp > 0) {
    e->has_shared = 1;
    ++*fuse;
    snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert.gate_proj", i);
    add_slot(sl, n, c->n_ff_shexp, c->n_embd, 0, *fuse, &e->sh_gate);
    snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert.up_proj", i);
    add_slot(sl, n, c->n_ff_shexp, c->n_embd, 0, *fuse, &e->sh_up);
    snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert.down_proj", i);
    add_slot(sl, n, c->n_embd, c->n_ff_shexp, 0, 0, &e->sh_down);
    snprintf(n, sizeof n, "model.layers.%d.mlp.shared_expert_gate", i);
    add_slot(sl, n, 1, c->n_embd, 0, 0, &e->sh_router)->router = 1;
  }
  return MQ_OK;
}

/* A decoder layer past num_hidden_layers means config.json and the weights
 * disagree (a truncated config would otherwise run the first layers only):
 * refused, naming the tensor. A multi-token-prediction layer stored there
 * (DeepSeek-style: it has an eh_proj) is not part of the decoder: ignored,
 * with a warning. */
static int check_layer_count(struct mq_model *m, mq_err *err) {
  int warned = 0;
  for (int i = 0; i < m->ckpt.n_all; i++) {
    const char *nm = m->ckpt.all[i]->name;
    int layer, at = 0;
    if (sscanf(nm, "model.layers.%d.%n", &layer, &at) != 1 || at == 0 || layer < m->cfg.n_layer)
      continue;
    char mtp[64];
    snprintf(mtp, sizeof mtp, "model.layers.%d.eh_proj.weight", layer);
    if (!mq_ckpt_find(&m->ckpt, mtp))
      return mq_errf(err, MQ_ERR_FORMAT,
                     "%s: tensor '%s' belongs to layer %d, but config.json has num_hidden_layers "
                     "%d",
                     m->ckpt.dir, nm, layer, m->cfg.n_layer);
    if (!warned++)
      mq_model_warn(m, "%s: multi-token-prediction layer %d (past num_hidden_layers) is not used",
                    m->ckpt.dir, layer);
  }
  return MQ_OK;
}

/* Every linear of the architecture, in load order. */
static int make_slots(struct mq_model *m, slot **out, int *n, mq_err *err) {
  const mq_config *c = &m->cfg;
  int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim, fuse = 0, rc;
  slot_list sl = {0};
  /* Every linear module needs at least one stored tensor: refuse a config
   * that declares more modules than the checkpoint holds tensors before
   * anything is sized by it (4096 layers x 65536 experts = 805M modules). */
  uint64_t need = c->tie_embeddings ? 0 : 1;
  for (int i = 0; i < c->n_layer; i++)
    need += 4 + (mq_config_layer_is_moe(c, i)
                     ? 1 + 3 * (uint64_t)c->n_expert + (c->n_ff_shexp > 0 ? 4 : 0)
                     : 3);
  if (need > (uint64_t)m->ckpt.n_all)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "config.json declares %llu linear modules (%d layers, %d experts) but %s holds "
                   "only %d tensors",
                   (unsigned long long)need, c->n_layer, c->n_expert, m->ckpt.dir, m->ckpt.n_all);
  sl.cap = c->n_layer * (7 + 3 * c->n_expert + 5) + 1;
  if (!(sl.s = calloc((size_t)sl.cap, sizeof(slot)))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < c->n_layer; i++) {
    mq_layer *L = &m->layers[i];
    char nm[112];
    int qkv = ++fuse;
    static const char *k_attn[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    mq_linear *attn[4] = {&L->wq, &L->wk, &L->wv, &L->wo};
    for (int j = 0; j < 4; j++) {
      snprintf(nm, sizeof nm, "model.layers.%d.self_attn.%s", i, k_attn[j]);
      add_slot(&sl, nm, j == 0 ? q_dim : j == 3 ? c->n_embd : kv_dim, j == 3 ? q_dim : c->n_embd,
               j == 3 ? c->o_bias : c->qkv_bias, j == 3 ? 0 : qkv, attn[j]);
    }
    if (mq_config_layer_is_moe(c, i)) {
      if ((rc = moe_slots(m, i, &sl, &fuse, err))) {
        free(sl.s);
        return rc;
      }
      continue;
    }
    int gu = ++fuse;
    snprintf(nm, sizeof nm, "model.layers.%d.mlp.gate_proj", i);
    add_slot(&sl, nm, c->n_ff, c->n_embd, c->mlp_bias, gu, &L->gate);
    snprintf(nm, sizeof nm, "model.layers.%d.mlp.up_proj", i);
    add_slot(&sl, nm, c->n_ff, c->n_embd, c->mlp_bias, gu, &L->up);
    snprintf(nm, sizeof nm, "model.layers.%d.mlp.down_proj", i);
    add_slot(&sl, nm, c->n_embd, c->n_ff, c->mlp_bias, 0, &L->down);
  }
  if (!c->tie_embeddings) add_slot(&sl, "lm_head", c->n_vocab, c->n_embd, 0, 0, &m->lm_head);
  *out = sl.s;
  *n = sl.n;
  return MQ_OK;
}

/* The plan: every slot's scheme, and fused shards must agree. */
static int plan_slots(struct mq_model *m, const mq_qconfig *q, slot *s, int n, mq_err *err) {
  for (int i = 0; i < n; i++) {
    int rc = mq_plan_linear(q, &m->ckpt, s[i].name, &s[i].spec, err);
    if (rc) return rc;
  }
  char a[96], b[96];
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n && s[j].fuse && s[j].fuse == s[i].fuse; j++)
      if (!mq_lspec_same(&s[i].spec, &s[j].spec))
        return mq_errf(err, MQ_ERR_FORMAT,
                       "fused layer shards disagree: %s is %s but %s is %s (all shards of a fused "
                       "layer must share one scheme)",
                       s[i].name, mq_lspec_str(&s[i].spec, a, sizeof a), s[j].name,
                       mq_lspec_str(&s[j].spec, b, sizeof b));
  /* Every expert of a MoE layer shares the w13 scheme and the w2 scheme
   * (checked across all experts, not only expert 0); w13 and w2 may differ. */
  for (int i = 0; i < n; i++) {
    if (s[i].expert <= 0) continue;
    for (int j = i - 1; j >= 0; j--)
      if (s[j].moe_layer == s[i].moe_layer && s[j].expert == 0 && s[j].role == (s[i].role == 2 ? 2 : 0)) {
        if (!mq_lspec_same(&s[i].spec, &s[j].spec))
          return mq_errf(err, MQ_ERR_FORMAT,
                         "layer %d: expert %d's %s is %s but expert 0's is %s (all experts of a "
                         "layer must share the w13 scheme and the w2 scheme)",
                         s[i].moe_layer, s[i].expert, s[i].role == 2 ? "w2 (down)" : "w13 (gate/up)",
                         mq_lspec_str(&s[i].spec, a, sizeof a), mq_lspec_str(&s[j].spec, b, sizeof b));
        break;
      }
  }
  return MQ_OK;
}

/* Shards of a fused layer see the same input: their static activation
 * scale and offset must agree (SGLang would silently keep the last one). */
static int check_fused_activations(const slot *s, int n, mq_err *err) {
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n && s[i].fuse && s[j].fuse == s[i].fuse; j++) {
      const mq_linear *a = s[i].dst, *b = s[j].dst;
      if (a->act != MQ_ACT_INT8_STATIC) continue;
      if (a->in_rscale != b->in_rscale || a->in_offset != b->in_offset)
        return mq_errf(err, MQ_ERR_FORMAT,
                       "fused layer shards disagree on static activation parameters: %s has "
                       "input_scale %.9g, input_offset %g but %s has input_scale %.9g, input_offset %g",
                       s[i].name, 1.0 / a->in_rscale, a->in_offset, s[j].name, 1.0 / b->in_rscale,
                       b->in_offset);
    }
  return MQ_OK;
}

static int bind_layer(struct mq_model *m, int i, mq_err *err) {
  const mq_config *c = &m->cfg;
  mq_layer *L = &m->layers[i];
  char p[128], n[160];
  int rc;
  snprintf(p, sizeof p, "model.layers.%d", i);
#define NAME(suffix) (snprintf(n, sizeof n, "%s.%s", p, suffix), n)
  if ((rc = bind_vec(m, NAME("input_layernorm.weight"), c->n_embd, &L->attn_norm, err)) ||
      (rc = bind_vec(m, NAME("post_attention_layernorm.weight"), c->n_embd, &L->ffn_norm, err)) ||
      (rc = bind_opt_vec(m, NAME("input_layernorm.bias"), c->n_embd, &L->attn_norm_b, err)) ||
      (rc = bind_opt_vec(m, NAME("post_attention_layernorm.bias"), c->n_embd, &L->ffn_norm_b, err)))
    return rc;
  if (c->qk_norm &&
      ((rc = bind_vec(m, NAME("self_attn.q_norm.weight"), c->head_dim, &L->q_norm, err)) ||
       (rc = bind_vec(m, NAME("self_attn.k_norm.weight"), c->head_dim, &L->k_norm, err))))
    return rc;
#undef NAME
  return MQ_OK;
}

static int bind_all(struct mq_model *m, const mq_qconfig *q, mq_err *err) {
  const mq_config *c = &m->cfg;
  const mq_tensor *t;
  int rc = find(m, "model.embed_tokens.weight", &t, err);
  if (rc == MQ_OK) rc = check_shape(t, 2, c->n_vocab, c->n_embd, err);
  if (rc) return rc; /* t is NULL when the tensor is missing */
  m->embd = (mq_linear){.n_out = c->n_vocab, .n_in = c->n_embd, .kind = MQ_W_FLOAT, .dtype = t->dtype};
  if ((rc = aligned_data(m, t, &m->embd.w, err))) return rc;
  m->n_params += t->n_elems;
  m->n_bytes += t->nbytes;
  if ((rc = check_layer_count(m, err))) return rc;
  m->layers = mq_model_alloc(m, (size_t)c->n_layer * sizeof(mq_layer));
  if (!m->layers) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  slot *slots = NULL;
  int n = 0;
  if ((rc = make_slots(m, &slots, &n, err))) return rc;
  if ((rc = plan_slots(m, q, slots, n, err)) == MQ_OK) /* before any weight is read */
    for (int i = 0; i < n && rc == MQ_OK; i++) rc = bind_slot(m, &slots[i], err);
  if (rc == MQ_OK) rc = check_fused_activations(slots, n, err);
  free(slots);
  if (rc) return rc;
  for (int i = 0; i < c->n_layer; i++)
    if ((rc = bind_layer(m, i, err))) return rc;
  if ((rc = bind_vec(m, "model.norm.weight", c->n_embd, &m->out_norm, err)) ||
      (rc = bind_opt_vec(m, "model.norm.bias", c->n_embd, &m->out_norm_b, err)))
    return rc;
  if (c->tie_embeddings) {
    m->lm_head = m->embd;
    /* lm_head shares the embedding's bytes: describe it, count nothing twice. */
    mq_lspec fs = {.fmt = MQ_FMT_FLOAT, .scheme = "FLOAT", .bits = 16, .group_size = -1, .sym = 1};
    if ((rc = mq_model_describe(m, "lm_head", &m->lm_head, &fs, 0, err))) return rc;
    m->n_params -= (uint64_t)c->n_vocab * c->n_embd;
  }
  return MQ_OK;
}

void mq_model_params_default(mq_model_params *p) { memset(p, 0, sizeof *p); }

int mq_model_load(const char *path, const mq_model_params *params, mq_model **out, mq_err *err) {
  *out = NULL;
  if (!path) return mq_errf(err, MQ_ERR_ARG, "no model path given");
  size_t pl = strlen(path);
  if (pl > 5 && strcmp(path + pl - 5, ".gguf") == 0) return mq_model_load_gguf(path, params, out, err);
  struct mq_model *m = calloc(1, sizeof *m);
  if (!m) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  char cpath[PATH_MAX];
  json_t *root = NULL;
  mq_qconfig q = {0};
  int rc;
  if (mq_path_join(cpath, sizeof cpath, path, "config.json") != 0) {
    rc = mq_errf(err, MQ_ERR_ARG, "%s: path too long", path);
    goto fail;
  }
  if ((rc = mq_json_load_file(cpath, MQ_CONFIG_MAX_BYTES, &root, err))) goto fail;
  if ((rc = mq_config_parse(root, cpath, &m->cfg, err))) goto fail;
  if ((rc = mq_qconfig_detect(path, root, params ? params->quantization : NULL, &q, err))) goto fail;
  m->method = q.method;
  m->npu_numerics = params && params->numerics == MQ_NUMERICS_NPU;
  m->no_repack = params && params->no_repack;
  if ((rc = mq_ckpt_open(path, &m->ckpt, err))) goto fail;
  if (q.method == MQ_METHOD_MODELSLIM && (rc = mq_modelslim_validate(m, q.q, q.source, err))) goto fail;
  if ((rc = bind_all(m, &q, err))) goto fail;
  mq_qconfig_free(&q);
  m->config = root;
  *out = m;
  return MQ_OK;
fail:
  mq_qconfig_free(&q);
  json_decref(root);
  mq_model_free(m);
  return rc;
}

void mq_model_free(mq_model *m) {
  if (!m) return;
  mq_ckpt_close(&m->ckpt);
  mq_gguf_close(&m->gguf);
  free(m->linears);
  free(m->linear_ptr);
  json_decref(m->config);
  for (int i = 0; i < m->n_warnings; i++) free(m->warnings[i]);
  free(m->warnings);
  for (mq_alloc_node *n = m->owned, *next; n; n = next) {
    next = n->next;
    free(n);
  }
  free(m);
}

void mq_model_get_info(const mq_model *m, mq_model_info *o) {
  const mq_config *c = &m->cfg;
  *o = (mq_model_info){c->arch_name, mq_method_name(m->method), c->n_vocab,   c->n_embd,      c->n_layer,
                       c->n_head,    c->n_head_kv, c->head_dim,    c->n_ff,
                       c->n_ctx_train, c->bos_id,  c->eos_id,      m->n_params,
                       m->n_bytes};
}

int mq_model_n_linears(const mq_model *m) { return m->n_linears; }

int mq_model_linear(const mq_model *m, int i, mq_linear_info *out) {
  if (i < 0 || i >= m->n_linears) return MQ_ERR_RANGE;
  *out = m->linears[i];
  return MQ_OK;
}

int mq_model_n_warnings(const mq_model *m) { return m->n_warnings; }

const char *mq_model_warning(const mq_model *m, int i) {
  return i >= 0 && i < m->n_warnings ? m->warnings[i] : NULL;
}
