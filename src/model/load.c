/* Binding a Hugging Face checkpoint's tensors to the model's blocks. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/numconv.h"
#include "io/jsonutil.h"
#include "model/model.h"

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

/* Record a bound linear for mq_model_linear (inspect). */
static int describe(struct mq_model *m, const char *prefix, const mq_linear *l, uint64_t bytes,
                    mq_err *err) {
  if (m->n_linears == m->cap_linears) {
    int nc = m->cap_linears ? 2 * m->cap_linears : 64;
    mq_linear_info *n = realloc(m->linears, (size_t)nc * sizeof *n);
    if (!n) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    m->linears = n;
    m->cap_linears = nc;
  }
  char *name = mq_model_alloc(m, strlen(prefix) + 1);
  if (!name) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  strcpy(name, prefix);
  m->linears[m->n_linears++] = (mq_linear_info){
      name, "FLOAT", mq_dtype_name(l->dtype), 8 * mq_dtype_size(l->dtype), "float", 0, 0,
      l->n_out, l->n_in, bytes};
  return MQ_OK;
}

static int bind_linear(struct mq_model *m, const char *prefix, int n_out, int n_in, int has_bias,
                       mq_linear *l, mq_err *err) {
  char name[256];
  const mq_tensor *t;
  snprintf(name, sizeof name, "%s.weight", prefix);
  int rc = find(m, name, &t, err);
  if (rc == MQ_OK) rc = check_shape(t, 2, n_out, n_in, err);
  if (rc == MQ_OK) rc = aligned_data(m, t, &l->w, err);
  if (rc) return rc;
  l->n_out = n_out;
  l->n_in = n_in;
  l->dtype = t->dtype;
  l->bias = NULL;
  m->n_params += (uint64_t)n_out * (uint64_t)n_in;
  m->n_bytes += t->nbytes;
  if (n_in > m->max_in) m->max_in = n_in;
  uint64_t bytes = t->nbytes;
  if (has_bias) {
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((rc = bind_vec(m, name, n_out, &l->bias, err))) return rc;
    bytes += mq_ckpt_find(&m->ckpt, name)->nbytes;
  }
  return describe(m, prefix, l, bytes, err);
}

static int bind_layer(struct mq_model *m, int i, mq_err *err) {
  const mq_config *c = &m->cfg;
  mq_layer *L = &m->layers[i];
  char p[128], n[160];
  int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim, rc;
  snprintf(p, sizeof p, "model.layers.%d", i);
#define NAME(suffix) (snprintf(n, sizeof n, "%s.%s", p, suffix), n)
  if ((rc = bind_vec(m, NAME("input_layernorm.weight"), c->n_embd, &L->attn_norm, err)) ||
      (rc = bind_linear(m, NAME("self_attn.q_proj"), q_dim, c->n_embd, c->qkv_bias, &L->wq, err)) ||
      (rc = bind_linear(m, NAME("self_attn.k_proj"), kv_dim, c->n_embd, c->qkv_bias, &L->wk, err)) ||
      (rc = bind_linear(m, NAME("self_attn.v_proj"), kv_dim, c->n_embd, c->qkv_bias, &L->wv, err)) ||
      (rc = bind_linear(m, NAME("self_attn.o_proj"), c->n_embd, q_dim, c->o_bias, &L->wo, err)) ||
      (rc = bind_vec(m, NAME("post_attention_layernorm.weight"), c->n_embd, &L->ffn_norm, err)) ||
      (rc = bind_linear(m, NAME("mlp.gate_proj"), c->n_ff, c->n_embd, c->mlp_bias, &L->gate, err)) ||
      (rc = bind_linear(m, NAME("mlp.up_proj"), c->n_ff, c->n_embd, c->mlp_bias, &L->up, err)) ||
      (rc = bind_linear(m, NAME("mlp.down_proj"), c->n_embd, c->n_ff, c->mlp_bias, &L->down, err)))
    return rc;
  if (c->qk_norm &&
      ((rc = bind_vec(m, NAME("self_attn.q_norm.weight"), c->head_dim, &L->q_norm, err)) ||
       (rc = bind_vec(m, NAME("self_attn.k_norm.weight"), c->head_dim, &L->k_norm, err))))
    return rc;
#undef NAME
  return MQ_OK;
}

static int bind_all(struct mq_model *m, mq_err *err) {
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
  for (int i = 0; i < c->n_layer; i++)
    if ((rc = bind_layer(m, i, err))) return rc;
  if ((rc = bind_vec(m, "model.norm.weight", c->n_embd, &m->out_norm, err))) return rc;
  if (!c->tie_embeddings) /* a missing lm_head is an error, never a silent tie */ return bind_linear(m, "lm_head", c->n_vocab, c->n_embd, 0, &m->lm_head, err);
  m->lm_head = (mq_linear){c->n_vocab, c->n_embd, m->embd_dtype, m->tok_embd, NULL};
  /* lm_head shares the embedding's bytes: describe it, count nothing twice. */
  if ((rc = describe(m, "lm_head", &m->lm_head, 0, err))) return rc;
  if (c->n_embd > m->max_in) m->max_in = c->n_embd;
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
  int rc;
  if (mq_path_join(cpath, sizeof cpath, path, "config.json") != 0) {
    rc = mq_errf(err, MQ_ERR_ARG, "%s: path too long", path);
    goto fail;
  }
  if ((rc = mq_json_load_file(cpath, MQ_CONFIG_MAX_BYTES, &root, err))) goto fail;
  if ((rc = mq_config_parse(root, cpath, &m->cfg, err))) goto fail;
  const char *want = params ? params->quantization : NULL;
  if (json_is_object(json_object_get(root, "quantization_config"))) {
    const char *qm = json_string_value(
        json_object_get(json_object_get(root, "quantization_config"), "quant_method"));
    rc = mq_errf(err, MQ_ERR_UNSUPPORTED,
                 "%s: quantization_config (quant_method \"%s\") found; quantized checkpoints are not "
                 "supported by this build yet",
                 cpath, qm ? qm : "?");
    goto fail;
  }
  if (want && strcmp(want, "none") != 0) {
    rc = mq_errf(err, MQ_ERR_ARG, "%s: --quantization %s given, but the checkpoint is not quantized",
                 path, want);
    goto fail;
  }
  if ((rc = mq_ckpt_open(path, &m->ckpt, err))) goto fail;
  if ((rc = bind_all(m, err))) goto fail;
  json_decref(root);
  *out = m;
  return MQ_OK;
fail:
  json_decref(root);
  mq_model_free(m);
  return rc;
}

void mq_model_free(mq_model *m) {
  if (!m) return;
  mq_ckpt_close(&m->ckpt);
  free(m->linears);
  for (mq_alloc_node *n = m->owned, *next; n; n = next) {
    next = n->next;
    free(n);
  }
  free(m);
}

void mq_model_get_info(const mq_model *m, mq_model_info *o) {
  const mq_config *c = &m->cfg;
  *o = (mq_model_info){c->arch_name, "none", c->n_vocab,   c->n_embd,      c->n_layer,
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
