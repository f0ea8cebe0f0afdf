/* mixq make-tiny DIR [--arch llama|qwen2|qwen3|qwen3_moe] [--dtype f32|f16|bf16]
 *                    [--shape tiny|small|tinyllama-1.1b|qwen3-moe-1b] [--seed N]
 * Writes a random float checkpoint (config.json, model.safetensors). The
 * default shape is tiny: hidden 128, 2 layers, 4 heads / 2 kv heads, ffn
 * 256, vocab 256 (qwen3_moe: 8 experts of ffn 128, top 2); --shape small
 * (34M parameters), tinyllama-1.1b and qwen3-moe-1b are for benchmarks.
 * qwen3-moe-1b is Qwen3-30B-A3B's layout scaled down: hidden 1024, 16
 * layers, 16 query / 4 kv heads of 128 (so q is 2048 wide, as in Qwen3),
 * 32 experts of ffn 512, top 4, vocab 32000: 0.95B parameters, 0.25B
 * active per token. Every Linear's input size is a multiple of 128 so every
 * quantization scheme applies. The weights mean nothing. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/make_tiny.h"
#include "core/err.h"
#include "core/file.h"
#include "core/numconv.h"
#include "io/st_write.h"

typedef struct {
  uint64_t s;
} rng;

static double uniform(rng *r) { /* xorshift64*, 53-bit uniform in (0, 1) */
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return ((double)((r->s * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(rng *r) {
  return sqrt(-2.0 * log(uniform(r))) * cos(2.0 * M_PI * uniform(r));
}

typedef struct {
  mq_st_writer *w;
  mq_dtype dt;
  rng r;
  mq_err err;
} gen;

/* A tensor of n values mean + std * N(0, 1) stored in g->dt. */
static int add(gen *g, const char *name, int n_dims, int64_t d0, int64_t d1, double mean,
               double std) {
  int64_t shape[2] = {d0, d1};
  size_t n = (size_t)d0 * (size_t)(n_dims == 2 ? d1 : 1);
  int esz = mq_dtype_size(g->dt);
  uint8_t *buf = malloc(n * (size_t)esz);
  if (!buf) return MQ_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    float v = (float)(mean + std * normal(&g->r));
    if (g->dt == MQ_DTYPE_F32) memcpy(buf + 4 * i, &v, 4);
    else {
      uint16_t h = g->dt == MQ_DTYPE_F16 ? mq_f32_to_f16(v) : mq_f32_to_bf16(v);
      memcpy(buf + 2 * i, &h, 2);
    }
  }
  int rc = mq_st_writer_add(g->w, name, g->dt, n_dims, shape, buf, &g->err);
  free(buf);
  return rc;
}

const char *const mq_tiny_shapes[] = {"tiny", "small", "tinyllama-1.1b", "qwen3-moe-1b", NULL};

typedef struct {
  const char *name, *arch; /* arch: the default for the shape */
  int D, L, H, KV, HD, F, V;
  int E, top, FE; /* experts (qwen3_moe) */
} shape_t;

static const shape_t k_shapes[] = {
    {"tiny", "llama", 128, 2, 4, 2, 0, 256, 256, 8, 2, 128},
    {"small", "llama", 512, 8, 8, 4, 64, 1536, 8192, 8, 2, 512},
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 64, 5632, 32000, 8, 2, 1408},
    {"qwen3-moe-1b", "qwen3_moe", 1024, 16, 16, 4, 128, 3072, 32000, 32, 4, 512},
};

int mq_make_tiny(const mq_tiny_opts *o, mq_err *err) {
  const char *shape = o->shape ? o->shape : "tiny", *dts = o->dtype ? o->dtype : "f32";
  const shape_t *sh = NULL;
  for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
    if (!strcmp(shape, k_shapes[i].name)) sh = &k_shapes[i];
  if (!sh)
    return mq_errf(err, MQ_ERR_ARG,
                   "--shape must be tiny, small, tinyllama-1.1b or qwen3-moe-1b, not '%s'", shape);
  const char *arch = o->arch ? o->arch : sh->arch;
  int is_qwen2 = !strcmp(arch, "qwen2"), is_moe = !strcmp(arch, "qwen3_moe");
  int is_qwen3 = !strcmp(arch, "qwen3") || is_moe;
  if (!is_qwen2 && !is_qwen3 && strcmp(arch, "llama"))
    return mq_errf(err, MQ_ERR_ARG, "--arch must be llama, qwen2, qwen3 or qwen3_moe, not '%s'",
                   arch);
  mq_dtype dt = !strcmp(dts, "f32")    ? MQ_DTYPE_F32
                : !strcmp(dts, "f16")  ? MQ_DTYPE_F16
                : !strcmp(dts, "bf16") ? MQ_DTYPE_BF16
                                       : MQ_DTYPE_INVALID;
  if (dt == MQ_DTYPE_INVALID)
    return mq_errf(err, MQ_ERR_ARG, "--dtype must be f32, f16 or bf16, not '%s'", dts);
  gen g = {mq_st_writer_new(), dt, {0x9E3779B97F4A7C15ull ^ (uint64_t)o->seed}, {0}};
  int D = sh->D, L = sh->L, H = sh->H, KV = sh->KV, F = sh->F, V = sh->V;
  int HD = sh->HD ? sh->HD : is_qwen3 ? 64 : D / H, E = sh->E, FE = sh->FE;
  int rc = g.w ? MQ_OK : MQ_ERR_NOMEM;
  char n[128];
  double ws = 1.0 / sqrt(D);
#define T(fmt, ...) (snprintf(n, sizeof n, fmt, __VA_ARGS__), n)
  rc = rc ? rc : add(&g, "model.embed_tokens.weight", 2, V, D, 0, 1.0);
  for (int l = 0; l < L && !rc; l++) {
    const char *p = "model.layers";
    rc = add(&g, T("%s.%d.input_layernorm.weight", p, l), 1, D, 0, 1.0, 0.1);
    rc = rc ? rc : add(&g, T("%s.%d.post_attention_layernorm.weight", p, l), 1, D, 0, 1.0, 0.1);
    rc = rc ? rc : add(&g, T("%s.%d.self_attn.q_proj.weight", p, l), 2, H * HD, D, 0, ws);
    rc = rc ? rc : add(&g, T("%s.%d.self_attn.k_proj.weight", p, l), 2, KV * HD, D, 0, ws);
    rc = rc ? rc : add(&g, T("%s.%d.self_attn.v_proj.weight", p, l), 2, KV * HD, D, 0, ws);
    rc = rc ? rc : add(&g, T("%s.%d.self_attn.o_proj.weight", p, l), 2, D, H * HD, 0, ws);
    if (is_moe) {
      rc = rc ? rc : add(&g, T("%s.%d.mlp.gate.weight", p, l), 2, E, D, 0, ws);
      for (int e = 0; e < E && !rc; e++) {
        rc = add(&g, T("%s.%d.mlp.experts.%d.gate_proj.weight", p, l, e), 2, FE, D, 0, ws);
        rc = rc ? rc : add(&g, T("%s.%d.mlp.experts.%d.up_proj.weight", p, l, e), 2, FE, D, 0, ws);
        rc = rc ? rc
                : add(&g, T("%s.%d.mlp.experts.%d.down_proj.weight", p, l, e), 2, D, FE, 0,
                      1.0 / sqrt(FE));
      }
    } else {
      rc = rc ? rc : add(&g, T("%s.%d.mlp.gate_proj.weight", p, l), 2, F, D, 0, ws);
      rc = rc ? rc : add(&g, T("%s.%d.mlp.up_proj.weight", p, l), 2, F, D, 0, ws);
      rc = rc ? rc : add(&g, T("%s.%d.mlp.down_proj.weight", p, l), 2, D, F, 0, 1.0 / sqrt(F));
    }
    if (is_qwen2) {
      rc = rc ? rc : add(&g, T("%s.%d.self_attn.q_proj.bias", p, l), 1, H * HD, 0, 0, 0.1);
      rc = rc ? rc : add(&g, T("%s.%d.self_attn.k_proj.bias", p, l), 1, KV * HD, 0, 0, 0.1);
      rc = rc ? rc : add(&g, T("%s.%d.self_attn.v_proj.bias", p, l), 1, KV * HD, 0, 0, 0.1);
    }
    if (is_qwen3) {
      rc = rc ? rc : add(&g, T("%s.%d.self_attn.q_norm.weight", p, l), 1, HD, 0, 1.0, 0.1);
      rc = rc ? rc : add(&g, T("%s.%d.self_attn.k_norm.weight", p, l), 1, HD, 0, 1.0, 0.1);
    }
  }
#undef T
  rc = rc ? rc : add(&g, "model.norm.weight", 1, D, 0, 1.0, 0.1);
  rc = rc ? rc : add(&g, "lm_head.weight", 2, V, D, 0, ws);
  if (rc == MQ_OK) mq_st_writer_meta(g.w, "format", "pt", &g.err);

  char path[PATH_MAX];
  if (rc == MQ_OK && mkdir(o->dir, 0777) != 0 && errno != EEXIST) {
    mq_st_writer_free(g.w);
    return mq_errf(err, MQ_ERR_IO, "%s: cannot create directory: %s", o->dir, strerror(errno));
  }
  if (rc == MQ_OK && mq_path_join(path, sizeof path, o->dir, "model.safetensors") == 0)
    rc = mq_st_writer_save(g.w, path, &g.err);
  mq_st_writer_free(g.w);
  if (rc != MQ_OK)
    return mq_errf(err, rc, "make-tiny: %s", g.err.msg[0] ? g.err.msg : "out of memory");

  static const char *k_arch[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                 "Qwen3MoeForCausalLM"};
  int ai = is_moe ? 3 : is_qwen2 ? 1 : is_qwen3 ? 2 : 0;
  json_t *cfg = json_pack(
      "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:s, s:s, s:i, s:i}",
      "architectures", k_arch[ai], "model_type", arch, "hidden_size", D, "intermediate_size", F,
      "num_hidden_layers", L, "num_attention_heads", H, "num_key_value_heads", KV, "head_dim", HD,
      "vocab_size", V, "max_position_embeddings", 2048, "rms_norm_eps", 1e-6, "rope_theta",
      is_qwen2 || is_qwen3 ? 1000000.0 : 10000.0, "tie_word_embeddings", 0, "torch_dtype",
      g.dt == MQ_DTYPE_F32   ? "float32"
      : g.dt == MQ_DTYPE_F16 ? "float16"
                             : "bfloat16",
      "hidden_act", "silu", "bos_token_id", 1, "eos_token_id", 2);
  if (cfg && is_moe) {
    json_t *moe = json_pack("{s:i, s:i, s:i, s:b, s:i, s:[]}", "num_experts", E,
                            "num_experts_per_tok", sh->top, "moe_intermediate_size", FE,
                            "norm_topk_prob", 1, "decoder_sparse_step", 1, "mlp_only_layers");
    if (!moe || json_object_update(cfg, moe) != 0) json_decref(cfg), cfg = NULL;
    json_decref(moe);
  }
  if (!cfg || mq_path_join(path, sizeof path, o->dir, "config.json") != 0 ||
      json_dump_file(cfg, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
    json_decref(cfg);
    return mq_errf(err, MQ_ERR_IO, "%s: cannot write config.json", o->dir);
  }
  json_decref(cfg);
  return MQ_OK;
}

int mq_cmd_make_tiny(int argc, char **argv) {
  mq_tiny_opts o = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--arch") && i + 1 < argc) o.arch = argv[++i];
    else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) o.dtype = argv[++i];
    else if (!strcmp(argv[i], "--shape") && i + 1 < argc) o.shape = argv[++i];
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if ((o.seed = mq_cli_int(argv[++i])) < 0) return mq_cli_fail("bad seed '%s'", argv[i]);
    } else if (argv[i][0] != '-' && !o.dir) o.dir = argv[i];
    else return mq_cli_fail("make-tiny: unexpected argument '%s'", argv[i]);
  }
  if (!o.dir) return mq_cli_fail("usage: mixq make-tiny DIR " MQ_TINY_USAGE);
  mq_err err = {0};
  if (mq_make_tiny(&o, &err) != MQ_OK) return mq_cli_fail("%s", err.msg);
  printf("wrote a tiny random %s checkpoint (%s, shape %s) to %s\n",
         o.arch ? o.arch : !o.shape || strcmp(o.shape, "qwen3-moe-1b") ? "llama" : "qwen3_moe",
         o.dtype ? o.dtype : "f32", o.shape ? o.shape : "tiny", o.dir);
  return 0;
}
