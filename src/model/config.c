#include "model/config.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "io/jsonutil.h"

#define BIG 0x40000000LL /* 2^30: no dimension of a real model is larger */

static int parse_rope(const json_t *root, const char *where, mq_config *c, mq_err *err) {
  mq_rope *r = &c->rope;
  /* transformers v5 writes rope_parameters (rope_type, rope_theta, ...). */
  const json_t *rs = json_object_get(root, "rope_scaling");
  const json_t *rp = json_object_get(root, "rope_parameters");
  if (json_is_object(rp)) rs = rp;
  double theta;
  int rc = mq_json_num_opt(root, "rope_theta", 10000.0, &theta, where, err);
  if (rc == MQ_OK && json_is_object(rs) && mq_json_has(rs, "rope_theta"))
    rc = mq_json_num_opt(rs, "rope_theta", theta, &theta, where, err);
  if (rc) return rc;
  if (!(theta > 1.0) || !isfinite(theta))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: rope_theta %g must be a finite number > 1", where, theta);
  r->theta = theta;
  double prf;
  if ((rc = mq_json_num_opt(root, "partial_rotary_factor", 1.0, &prf, where, err))) return rc;
  /* range first: converting head_dim * 1e300 to int is undefined */
  r->rot_dim = prf > 0 && prf <= 1 ? (int)(c->head_dim * prf) : 0;
  if (prf <= 0 || prf > 1 || r->rot_dim % 2 || r->rot_dim < 2)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: partial_rotary_factor %g gives an invalid rotary dim %d",
                   where, prf, r->rot_dim);
  r->type = MQ_ROPE_DEFAULT;
  r->factor = 1.0;
  r->attn_factor = 1.0;
  if (!json_is_object(rs)) {
    if (rs && !json_is_null(rs))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: rope_scaling must be an object or null", where);
    return MQ_OK;
  }
  const char *type = NULL;
  if ((rc = mq_json_str_opt(rs, "rope_type", NULL, &type, where, err))) return rc;
  if (!type && (rc = mq_json_str_opt(rs, "type", "default", &type, where, err))) return rc;
  long long orig;
  if ((rc = mq_json_num_opt(rs, "factor", 1.0, &r->factor, where, err)) ||
      (rc = mq_json_int_opt(rs, "original_max_position_embeddings", 1, BIG, c->n_ctx_train, &orig,
                            where, err)))
    return rc;
  r->orig_ctx = (int)orig;
  if (strcmp(type, "default") == 0) return MQ_OK;
  if (!(r->factor >= 1.0) || !isfinite(r->factor))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: rope_scaling factor %g must be >= 1", where, r->factor);
  if (strcmp(type, "linear") == 0) {
    r->type = MQ_ROPE_LINEAR;
  } else if (strcmp(type, "llama3") == 0) {
    r->type = MQ_ROPE_LLAMA3;
    if ((rc = mq_json_num_opt(rs, "low_freq_factor", 1.0, &r->low_freq_factor, where, err)) ||
        (rc = mq_json_num_opt(rs, "high_freq_factor", 4.0, &r->high_freq_factor, where, err)))
      return rc;
    if (!(r->high_freq_factor > r->low_freq_factor) || !(r->low_freq_factor > 0))
      return mq_errf(err, MQ_ERR_FORMAT,
                     "%s: llama3 rope_scaling needs high_freq_factor > low_freq_factor > 0", where);
  } else if (strcmp(type, "yarn") == 0) {
    r->type = MQ_ROPE_YARN;
    double mscale, mscale_all;
    if ((rc = mq_json_num_opt(rs, "beta_fast", 32.0, &r->beta_fast, where, err)) ||
        (rc = mq_json_num_opt(rs, "beta_slow", 1.0, &r->beta_slow, where, err)) ||
        (rc = mq_json_num_opt(rs, "mscale", 0.0, &mscale, where, err)) ||
        (rc = mq_json_num_opt(rs, "mscale_all_dim", 0.0, &mscale_all, where, err)) ||
        (rc = mq_json_bool_opt(rs, "truncate", 1, &r->truncate, where, err)))
      return rc;
    /* transformers: get_mscale(s, m) = 0.1 * m * ln(s) + 1 for s > 1. */
#define MSCALE(s, m) ((s) <= 1.0 ? 1.0 : 0.1 * (m)*log(s) + 1.0)
    if (mq_json_has(rs, "attention_factor")) {
      if ((rc = mq_json_num_opt(rs, "attention_factor", 1.0, &r->attn_factor, where, err))) return rc;
    } else if (mscale != 0.0 && mscale_all != 0.0) {
      r->attn_factor = MSCALE(r->factor, mscale) / MSCALE(r->factor, mscale_all);
    } else {
      r->attn_factor = MSCALE(r->factor, 1.0);
    }
#undef MSCALE
    if (!(r->beta_fast > 0) || !(r->beta_slow > 0))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: yarn beta_fast/beta_slow must be > 0", where);
  } else {
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: rope scaling type \"%s\" is not supported (default, linear, llama3, yarn are)",
                   where, type);
  }
  return MQ_OK;
}

int mq_config_layer_is_moe(const mq_config *c, int i) {
  return c->n_expert > 0 && !c->mlp_only[i] && (i + 1) % c->sparse_step == 0;
}

/* MoE keys (formats.md §7.1): qwen3_moe / qwen2_moe num_experts,
 * moe_intermediate_size, norm_topk_prob, decoder_sparse_step, mlp_only_layers;
 * mixtral num_local_experts with intermediate_size per expert. */
static int parse_moe(const json_t *root, const char *where, mq_config *c, mq_err *err) {
  if (c->arch != MQ_ARCH_QWEN3_MOE && c->arch != MQ_ARCH_MIXTRAL && c->arch != MQ_ARCH_QWEN2_MOE)
    return MQ_OK;
  long long ne, nu, ff, sh = 0, step = 1;
  int rc, mixtral = c->arch == MQ_ARCH_MIXTRAL;
  if ((rc = mq_json_int_req(root, mixtral ? "num_local_experts" : "num_experts", 1, 1 << 16, &ne,
                            where, err)) ||
      (rc = mq_json_int_req(root, "num_experts_per_tok", 1, 1 << 16, &nu, where, err)))
    return rc;
  if (nu > ne)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: num_experts_per_tok %lld is more than the %lld experts",
                   where, nu, ne);
  if (mixtral) {
    ff = c->n_ff;
    c->norm_topk = 1; /* Mixtral always renormalizes */
  } else {
    if ((rc = mq_json_int_req(root, "moe_intermediate_size", 1, BIG, &ff, where, err)) ||
        (rc = mq_json_bool_opt(root, "norm_topk_prob", 0, &c->norm_topk, where, err)) ||
        (rc = mq_json_int_opt(root, "decoder_sparse_step", 1, 4096, 1, &step, where, err)))
      return rc;
    if (c->arch == MQ_ARCH_QWEN2_MOE &&
        (rc = mq_json_int_opt(root, "shared_expert_intermediate_size", 0, BIG, 0, &sh, where, err)))
      return rc;
    const json_t *mo = json_object_get(root, "mlp_only_layers");
    size_t i;
    json_t *v;
    if (mo && !json_is_null(mo) && !json_is_array(mo))
      return mq_errf(err, MQ_ERR_FORMAT, "%s: mlp_only_layers must be a list", where);
    json_array_foreach(mo, i, v) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= c->n_layer)
        return mq_errf(err, MQ_ERR_FORMAT, "%s: mlp_only_layers[%zu] is not a layer index", where, i);
      c->mlp_only[json_integer_value(v)] = 1;
    }
  }
  c->n_expert = (int)ne, c->n_expert_used = (int)nu, c->n_ff_exp = (int)ff;
  c->n_ff_shexp = (int)sh, c->sparse_step = (int)step;
  return MQ_OK;
}

/* eos_token_id may be an int or a list of ints: keep the first. */
static int token_id(const json_t *root, const char *key, int *out, const char *where, mq_err *err) {
  const json_t *v = json_object_get(root, key);
  *out = -1;
  if (json_is_array(v)) v = json_array_size(v) ? json_array_get(v, 0) : NULL;
  if (!v || json_is_null(v)) return MQ_OK;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= BIG)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: \"%s\" must be a token id", where, key);
  *out = (int)json_integer_value(v);
  return MQ_OK;
}

int mq_config_parse(const json_t *root, const char *where, mq_config *c, mq_err *err) {
  memset(c, 0, sizeof *c);
  if (!json_is_object(root)) return mq_errf(err, MQ_ERR_FORMAT, "%s: not a JSON object", where);
  const char *mt;
  int rc = mq_json_str_opt(root, "model_type", NULL, &mt, where, err);
  if (rc) return rc;
  if (!mt) return mq_errf(err, MQ_ERR_FORMAT, "%s: missing \"model_type\"", where);
  static const struct {
    const char *name;
    mq_arch arch;
  } k_arch[] = {{"llama", MQ_ARCH_LLAMA},         {"qwen2", MQ_ARCH_QWEN2},
                {"qwen3", MQ_ARCH_QWEN3},         {"qwen3_moe", MQ_ARCH_QWEN3_MOE},
                {"mixtral", MQ_ARCH_MIXTRAL},     {"qwen2_moe", MQ_ARCH_QWEN2_MOE}};
  size_t ai = 0;
  while (ai < sizeof k_arch / sizeof k_arch[0] && strcmp(mt, k_arch[ai].name) != 0) ai++;
  if (ai == sizeof k_arch / sizeof k_arch[0])
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: model_type \"%s\" is not supported (llama, qwen2, qwen3, qwen3_moe, mixtral, "
                   "qwen2_moe are)",
                   where, mt);
  c->arch = k_arch[ai].arch;
  c->arch_name = k_arch[ai].name;

  long long v_vocab, v_embd, v_ff, v_layer, v_head, v_kv, v_hd, v_ctx;
  if ((rc = mq_json_int_req(root, "vocab_size", 1, BIG, &v_vocab, where, err)) ||
      (rc = mq_json_int_req(root, "hidden_size", 1, BIG, &v_embd, where, err)) ||
      (rc = mq_json_int_req(root, "intermediate_size", 1, BIG, &v_ff, where, err)) ||
      (rc = mq_json_int_req(root, "num_hidden_layers", 1, 4096, &v_layer, where, err)) ||
      (rc = mq_json_int_req(root, "num_attention_heads", 1, 4096, &v_head, where, err)) ||
      (rc = mq_json_int_opt(root, "num_key_value_heads", 1, 4096, v_head, &v_kv, where, err)) ||
      (rc = mq_json_int_opt(root, "max_position_embeddings", 1, BIG, 4096, &v_ctx, where, err)))
    return rc;
  if (v_embd % v_head != 0 && !mq_json_has(root, "head_dim"))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of %lld heads", where,
                   v_embd, v_head);
  if ((rc = mq_json_int_opt(root, "head_dim", 2, 4096, v_embd / v_head, &v_hd, where, err)))
    return rc;
  /* the default (hidden_size / heads) must obey the same bound: RoPE tables
   * are sized for head_dim <= 4096 */
  if (v_hd < 2 || v_hd > 4096)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: head_dim %lld (hidden_size %lld / num_attention_heads %lld) is outside "
                   "[2, 4096]",
                   where, v_hd, v_embd, v_head);
  if (v_hd % 2)
    return mq_errf(err, MQ_ERR_FORMAT, "%s: head_dim %lld must be even for RoPE", where, v_hd);
  if (v_head % v_kv)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                   where, v_head, v_kv);
  c->n_vocab = (int)v_vocab, c->n_embd = (int)v_embd, c->n_ff = (int)v_ff;
  c->n_layer = (int)v_layer, c->n_head = (int)v_head, c->n_head_kv = (int)v_kv;
  c->head_dim = (int)v_hd, c->n_ctx_train = (int)v_ctx;

  const char *act;
  if ((rc = mq_json_str_opt(root, "hidden_act", "silu", &act, where, err))) return rc;
  if (strcmp(act, "silu") != 0)
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (silu is)",
                   where, act);
  if ((rc = mq_json_num_opt(root, "rms_norm_eps", 1e-6, &c->norm_eps, where, err))) return rc;
  if (!(c->norm_eps > 0) || !(c->norm_eps < 1))
    return mq_errf(err, MQ_ERR_FORMAT, "%s: rms_norm_eps %g must be in (0, 1)", where, c->norm_eps);
  /* LlamaConfig, Qwen2Config and Qwen3Config all default to untied. */
  if ((rc = mq_json_bool_opt(root, "tie_word_embeddings", 0, &c->tie_embeddings, where, err)))
    return rc;
  int attn_bias = 0, mlp_bias = 0;
  if (c->arch == MQ_ARCH_LLAMA &&
      ((rc = mq_json_bool_opt(root, "attention_bias", 0, &attn_bias, where, err)) ||
       (rc = mq_json_bool_opt(root, "mlp_bias", 0, &mlp_bias, where, err))))
    return rc;
  if (c->arch == MQ_ARCH_QWEN3 &&
      (rc = mq_json_bool_opt(root, "attention_bias", 0, &attn_bias, where, err)))
    return rc;
  int qwen2ish = c->arch == MQ_ARCH_QWEN2 || c->arch == MQ_ARCH_QWEN2_MOE;
  c->qkv_bias = qwen2ish ? 1 : attn_bias; /* hard-wired in Qwen2 and Qwen2-MoE */
  c->o_bias = qwen2ish ? 0 : attn_bias;
  c->mlp_bias = mlp_bias;
  c->qk_norm = c->arch == MQ_ARCH_QWEN3 || c->arch == MQ_ARCH_QWEN3_MOE;

  int sliding = 0;
  if ((rc = mq_json_bool_opt(root, "use_sliding_window", 0, &sliding, where, err))) return rc;
  if (sliding)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s: use_sliding_window is true; sliding-window attention is not supported yet",
                   where);
  if (c->arch == MQ_ARCH_MIXTRAL) { /* Mixtral applies sliding_window when it is set */
    long long sw;
    if ((rc = mq_json_int_opt(root, "sliding_window", 1, BIG, 0, &sw, where, err))) return rc;
    c->sliding_window = (int)sw;
  }
  if ((rc = parse_moe(root, where, c, err))) return rc;
  if ((rc = token_id(root, "bos_token_id", &c->bos_id, where, err)) ||
      (rc = token_id(root, "eos_token_id", &c->eos_id, where, err)))
    return rc;
  return parse_rope(root, where, c, err);
}
