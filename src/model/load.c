/* Binding a Hugging Face checkpoint's tensors to the model's blocks. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  mq_alloc_node *n = aligned_alloc(64, (hdr + bytes + 63) & ~(size_t)63);
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
static int describe(struct mq_model *m, const char *prefix, const mq_linear *l, const mq_lspec *s,
                    uint64_t bytes, mq_err *err) {
  if (m->n_linears == m->cap_linears) {
    int nc = m->cap_linears ? 2 * m->cap_linears : 64;
    mq_linear_info *n = realloc(m->linears, (size_t)nc * sizeof *n);
    if (!n) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    m->linears = n;
    m->cap_linears = nc;
  }
  char *name = mq_model_alloc(m, strlen(prefix) + 1);
  char *scheme = mq_model_alloc(m, strlen(s->scheme) + 1);
  if (!name || !scheme) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  strcpy(name, prefix);
  strcpy(scheme, s->scheme);
  mq_linear_info *li = &m->linears[m->n_linears++];
  *li = (mq_linear_info){name, scheme, mq_dtype_name(l->dtype), 8 * mq_dtype_size(l->dtype),
                         mq_act_name(s->act), 0, 0, l->n_out, l->n_in, bytes};
  if (l->kind == MQ_W_INT) {
    static const char *k_fmt[9] = {"", "", "int2", "int3", "int4", "", "", "", "int8"};
    li->weight_format = k_fmt[l->q.bits];
    li->w_bits = l->q.bits;
    li->group_size = s->group_size > 0 ? s->group_size : 0;
    li->has_zero = !s->sym;
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
  char name[96];
  int n_out, n_in, has_bias;
  int fuse; /* shards of one fused layer share a nonzero id */
  mq_linear *dst;
  mq_lspec spec;
} slot;

static int bind_slot(struct mq_model *m, const slot *sl, mq_err *err) {
  const mq_lspec *s = &sl->spec;
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
  if (sl->has_bias && !sl->dst->bias)
    return mq_errf(err, MQ_ERR_FORMAT, "layer %s: tensor '%s.bias' is missing", sl->name, sl->name);
  return describe(m, sl->name, sl->dst, s, module_bytes(m, sl->name), err);
}

/* Every linear of the architecture, in load order. */
static int make_slots(struct mq_model *m, slot **out, int *n, mq_err *err) {
  const mq_config *c = &m->cfg;
  int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
  slot *s = calloc((size_t)c->n_layer * 7 + 1, sizeof *s);
  if (!s) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  int k = 0;
  for (int i = 0; i < c->n_layer; i++) {
    mq_layer *L = &m->layers[i];
    struct {
      const char *sfx;
      int n_out, n_in, bias, fuse;
      mq_linear *dst;
    } t[7] = {{"self_attn.q_proj", q_dim, c->n_embd, c->qkv_bias, 1, &L->wq},
              {"self_attn.k_proj", kv_dim, c->n_embd, c->qkv_bias, 1, &L->wk},
              {"self_attn.v_proj", kv_dim, c->n_embd, c->qkv_bias, 1, &L->wv},
              {"self_attn.o_proj", c->n_embd, q_dim, c->o_bias, 0, &L->wo},
              {"mlp.gate_proj", c->n_ff, c->n_embd, c->mlp_bias, 2, &L->gate},
              {"mlp.up_proj", c->n_ff, c->n_embd, c->mlp_bias, 2, &L->up},
              {"mlp.down_proj", c->n_embd, c->n_ff, c->mlp_bias, 0, &L->down}};
    for (int j = 0; j < 7; j++, k++) {
      snprintf(s[k].name, sizeof s[k].name, "model.layers.%d.%s", i, t[j].sfx);
      s[k].n_out = t[j].n_out, s[k].n_in = t[j].n_in, s[k].has_bias = t[j].bias;
      s[k].fuse = t[j].fuse ? 2 * i + t[j].fuse : 0;
      s[k].dst = t[j].dst;
    }
  }
  if (!c->tie_embeddings) {
    snprintf(s[k].name, sizeof s[k].name, "lm_head");
    s[k].n_out = c->n_vocab, s[k].n_in = c->n_embd, s[k].dst = &m->lm_head;
    k++;
  }
  *out = s;
  *n = k;
  return MQ_OK;
}

/* The plan: every slot's scheme, and fused shards must agree. */
static int plan_slots(struct mq_model *m, const mq_qconfig *q, slot *s, int n, mq_err *err) {
  for (int i = 0; i < n; i++) {
    int rc = mq_plan_linear(q, &m->ckpt, s[i].name, &s[i].spec, err);
    if (rc) return rc;
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n && s[j].fuse && s[j].fuse == s[i].fuse; j++)
      if (!mq_lspec_same(&s[i].spec, &s[j].spec)) {
        char a[96], b[96];
        return mq_errf(err, MQ_ERR_FORMAT,
                       "fused layer shards disagree: %s is %s but %s is %s (all shards of a fused "
                       "layer must share one scheme)",
                       s[i].name, mq_lspec_str(&s[i].spec, a, sizeof a), s[j].name,
                       mq_lspec_str(&s[j].spec, b, sizeof b));
      }
  return MQ_OK;
}

/* Shards of a fused layer see the same input: their static activation
 * scale and offset must agree (SGLang would silently keep the last one). */
static int check_fused_activations(const slot *s, int n, mq_err *err) {
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n && s[j].fuse && s[j].fuse == s[i].fuse; j++) {
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
  if (rc == MQ_OK) rc = aligned_data(m, t, &m->tok_embd, err);
  if (rc) return rc;
  m->embd_dtype = t->dtype;
  m->n_params += t->n_elems;
  m->n_bytes += t->nbytes;
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
    m->lm_head = (mq_linear){.n_out = c->n_vocab, .n_in = c->n_embd, .kind = MQ_W_FLOAT,
                             .dtype = m->embd_dtype, .w = m->tok_embd};
    /* lm_head shares the embedding's bytes: describe it, count nothing twice. */
    mq_lspec fs = {.fmt = MQ_FMT_FLOAT, .scheme = "FLOAT", .bits = 16, .group_size = -1, .sym = 1};
    if ((rc = describe(m, "lm_head", &m->lm_head, &fs, 0, err))) return rc;
    m->n_params -= (uint64_t)c->n_vocab * c->n_embd;
  }
  return MQ_OK;
}

void mq_model_params_default(mq_model_params *p) { memset(p, 0, sizeof *p); }

int mq_model_load(const char *path, const mq_model_params *params, mq_model **out, mq_err *err) {
  *out = NULL;
  if (!path) return mq_errf(err, MQ_ERR_ARG, "no model path given");
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
  if ((rc = mq_ckpt_open(path, &m->ckpt, err))) goto fail;
  if (q.method == MQ_METHOD_MODELSLIM && (rc = mq_modelslim_validate(m, q.q, q.source, err))) goto fail;
  if ((rc = bind_all(m, &q, err))) goto fail;
  mq_qconfig_free(&q);
  json_decref(root);
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
  free(m->linears);
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
