/* mixq make-tiny DIR [--arch llama|qwen2|qwen3] [--dtype f32|f16|bf16] [--seed N]
 * Writes a random float checkpoint (config.json, model.safetensors). The
 * default shape is tiny: hidden 128, 2 layers, 4 heads / 2 kv heads, ffn
 * 256, vocab 256; --shape small (~50M parameters) and tinyllama-1.1b are for
 * benchmarks. Every Linear's input size is a multiple of 128 so every
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

int mq_cmd_make_tiny(int argc, char **argv) {
  const char *dir = NULL, *arch = "llama", *dts = "f32", *shape = NULL;
  int seed = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
    else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dts = argv[++i];
    else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if ((seed = mq_cli_int(argv[++i])) < 0) return mq_cli_fail("bad seed '%s'", argv[i]);
    } else if (argv[i][0] != '-' && !dir) dir = argv[i];
    else return mq_cli_fail("make-tiny: unexpected argument '%s'", argv[i]);
  }
  if (!dir)
    return mq_cli_fail("usage: mixq make-tiny DIR [--arch llama|qwen2|qwen3] [--dtype f32|f16|bf16] "
                       "[--shape tiny|small|tinyllama-1.1b] [--seed N]");
  int is_qwen2 = !strcmp(arch, "qwen2"), is_qwen3 = !strcmp(arch, "qwen3");
  if (!is_qwen2 && !is_qwen3 && strcmp(arch, "llama"))
    return mq_cli_fail("--arch must be llama, qwen2 or qwen3, not '%s'", arch);
  gen g = {mq_st_writer_new(), MQ_DTYPE_INVALID, {0x9E3779B97F4A7C15ull ^ (uint64_t)seed}, {0}};
  g.dt = !strcmp(dts, "f32") ? MQ_DTYPE_F32 : !strcmp(dts, "f16") ? MQ_DTYPE_F16
         : !strcmp(dts, "bf16") ? MQ_DTYPE_BF16 : MQ_DTYPE_INVALID;
  if (g.dt == MQ_DTYPE_INVALID) {
    mq_st_writer_free(g.w);
    return mq_cli_fail("--dtype must be f32, f16 or bf16, not '%s'", dts);
  }
  int D = 128, L = 2, H = 4, KV = 2, HD = is_qwen3 ? 64 : D / H, F = 256, V = 256;
  if (shape && !strcmp(shape, "tinyllama-1.1b")) /* TinyLlama-1.1B's shape, for benchmarks */
    D = 2048, L = 22, H = 32, KV = 4, HD = 64, F = 5632, V = 32000;
  else if (shape && !strcmp(shape, "small")) /* ~50M parameters: quick benchmarks */
    D = 512, L = 8, H = 8, KV = 4, HD = 64, F = 1536, V = 8192;
  else if (shape && strcmp(shape, "tiny")) {
    mq_st_writer_free(g.w);
    return mq_cli_fail("--shape must be tiny, small or tinyllama-1.1b, not '%s'", shape);
  }
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
    rc = rc ? rc : add(&g, T("%s.%d.mlp.gate_proj.weight", p, l), 2, F, D, 0, ws);
    rc = rc ? rc : add(&g, T("%s.%d.mlp.up_proj.weight", p, l), 2, F, D, 0, ws);
    rc = rc ? rc : add(&g, T("%s.%d.mlp.down_proj.weight", p, l), 2, D, F, 0, 1.0 / sqrt(F));
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
  if (rc == MQ_OK && mkdir(dir, 0777) != 0 && errno != EEXIST) {
    mq_st_writer_free(g.w);
    return mq_cli_fail("%s: cannot create directory: %s", dir, strerror(errno));
  }
  if (rc == MQ_OK && mq_path_join(path, sizeof path, dir, "model.safetensors") == 0)
    rc = mq_st_writer_save(g.w, path, &g.err);
  mq_st_writer_free(g.w);
  if (rc != MQ_OK) return mq_cli_fail("make-tiny: %s", g.err.msg[0] ? g.err.msg : "failed");

  static const char *k_arch[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
  int ai = is_qwen2 ? 1 : is_qwen3 ? 2 : 0;
  json_t *cfg = json_pack(
      "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:s, s:s, s:i, s:i}",
      "architectures", k_arch[ai], "model_type", arch, "hidden_size", D, "intermediate_size", F,
      "num_hidden_layers", L, "num_attention_heads", H, "num_key_value_heads", KV, "head_dim", HD,
      "vocab_size", V, "max_position_embeddings", 2048, "rms_norm_eps", 1e-6, "rope_theta",
      is_qwen2 || is_qwen3 ? 1000000.0 : 10000.0, "tie_word_embeddings", 0, "torch_dtype",
      g.dt == MQ_DTYPE_F32 ? "float32" : g.dt == MQ_DTYPE_F16 ? "float16" : "bfloat16",
      "hidden_act", "silu", "bos_token_id", 1, "eos_token_id", 2);
  if (mq_path_join(path, sizeof path, dir, "config.json") != 0 ||
      json_dump_file(cfg, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
    json_decref(cfg);
    return mq_cli_fail("%s: cannot write config.json", dir);
  }
  json_decref(cfg);
  printf("wrote a tiny random %s checkpoint (%s) to %s\n", arch, dts, dir);
  return 0;
}
