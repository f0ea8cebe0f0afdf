/* The GGUF writer (`mixq quantize SRC DST.gguf --format gguf-*`):
 *  - block quantizers: every type round-trips through gguf_blocks.c's
 *    dequantizer within the type's error bound; Q4_0 / Q5_0 / Q8_0 follow
 *    ggml's reference rule exactly (a hand re-implementation here);
 *  - the container: a file with metadata of every type and tensors parses
 *    back with io/gguf.c; misuse is refused;
 *  - end to end, for tests/data models (qwen2 biases, qwen3, qwen3-moe,
 *    qwen2-moe shared expert, mixtral) and models/tiny-en (llama, tied, rows
 *    of 256), in every file type:
 *      (a) logits of the GGUF model vs the float model run on the GGUF's own
 *          dequantized weights (a Hugging Face checkpoint rebuilt here from
 *          the GGUF tensors with an independent name map and the inverse
 *          llama q/k permutation): max |diff| <= 1e-4 for f32/bf16 (float
 *          activations both ways), <= 0.2% of the largest logit for f16
 *          (whose activations are rounded to f16, as ggml does) and <= 5%
 *          for the quantized types (GGUF computes with int8 activation
 *          blocks; measured 1-2%);
 *      (b) every tensor dequantizes within its type's bound of the source;
 *      (c) tokenizer: the GGUF file's tokenizer encodes probe strings to the
 *          same ids as the source tokenizer.json (tiny-en, byte-level BPE;
 *          stories260K, SentencePiece, against llama.cpp's ids; the GPT-2 and
 *          Llama-2 tokenizer.json fixtures on llama.cpp's 46 test strings);
 *  - stories260K (shared fixtures): our Q8_0 and Q4_0 tensors are byte-for-
 *    byte llama-quantize's (same tensor types); F32 logits equal the source's;
 *  - refusals: bad destination, quantized source, llama3 RoPE, NaN weights. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numconv.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "io/st_write.h"
#include "quant/gguf_blocks.h"
#include "quant/gguf_convert.h"
#include "quant/gguf_quantize.h"
#include "quant/gguf_types.h"
#include "quant/writer.h"
#include "test.h"
#include "tokenizer/gguf_vocab_write.h"
#include "vocab_vectors.h"

static char g_tmp[256];

static int copy_file(const char *from, const char *to) {
  size_t n;
  void *b = mqt_read(from, &n);
  if (!b) return -1;
  FILE *f = fopen(to, "wb");
  int ok = f && fwrite(b, 1, n, f) == n;
  if (f) fclose(f);
  free(b);
  return ok ? 0 : -1;
}

static float gauss(void) {
  float u = mqt_randf(1e-6f, 1.0f), v = mqt_randf(0.0f, 1.0f);
  return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* ---- error bounds of one row of n values quantized as `type` ---- */

/* max |y - x| allowed for element i; x: the row. */
static float bound(uint32_t type, const float *x, int64_t n, int64_t i) {
  const mq_ggml_type_info *ti = mq_ggml_type_get(type);
  int64_t b0 = i / ti->blck * ti->blck;
  float amax = 0, mn = 0, mx = 0;
  (void)n;
  switch (type) {
  case MQ_GGML_TYPE_F32: return 0;
  case MQ_GGML_TYPE_F16: return fabsf(x[i]) * 4.9e-4f + 6e-8f;
  case MQ_GGML_TYPE_BF16: return fabsf(x[i]) * 3.9e-3f;
  case MQ_GGML_TYPE_Q4_K: { /* the 32-value sub-block's range / 15, plus 6-bit scale rounding */
    int64_t s0 = i / 32 * 32;
    float rmax = 0;
    for (int64_t j = b0; j < b0 + 256; j++) rmax = fmaxf(rmax, fabsf(x[j]));
    for (int64_t j = s0; j < s0 + 32; j++) mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
    return (mx - mn) / 15.0f * 0.6f + 2.0f * rmax / 63.0f + 1e-30f;
  }
  case MQ_GGML_TYPE_Q6_K: {
    int64_t s0 = i / 16 * 16;
    float rmax = 0;
    for (int64_t j = b0; j < b0 + 256; j++) rmax = fmaxf(rmax, fabsf(x[j]));
    for (int64_t j = s0; j < s0 + 16; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax / 32.0f * 1.01f + 40.0f * rmax / 32.0f / 127.0f + 1e-30f;
  }
  default: break;
  }
  for (int64_t j = b0; j < b0 + ti->blck; j++) amax = fmaxf(amax, fabsf(x[j]));
  switch (type) {
  /* (+1e-30: smaller values are read as zero) */
  case MQ_GGML_TYPE_Q8_0: return amax / 127.0f * 0.51f + amax * 1e-3f + 1e-30f;
  case MQ_GGML_TYPE_Q5_0:
    return amax / 16.0f * 1.01f + amax * 1e-3f + 1e-30f;                      /* +16 clamps to 15 */
  case MQ_GGML_TYPE_Q4_0: return amax / 8.0f * 1.01f + amax * 1e-3f + 1e-30f; /* +8 clamps to 7 */
  }
  return 0;
}

/* Count elements of x (n values) whose dequantized `type` value is outside
 * the bound; *rms_rel: RMS error / RMS value. */
static int64_t check_row(uint32_t type, const float *x, int64_t n, const float *y,
                         double *rms_rel) {
  int64_t bad = 0;
  double se = 0, sx = 0;
  for (int64_t i = 0; i < n; i++) {
    float e = fabsf(y[i] - x[i]);
    if (!(e <= bound(type, x, n, i))) {
      if (!bad)
        fprintf(stderr, "  %s: element %lld: %g -> %g (bound %g)\n", mq_ggml_type_name(type),
                (long long)i, x[i], y[i], bound(type, x, n, i));
      bad++;
    }
    se += (double)e * e, sx += (double)x[i] * x[i];
  }
  if (rms_rel) *rms_rel = sx > 0 ? sqrt(se / sx) : 0;
  return bad;
}

/* ---- ggml's reference rules, re-implemented (formats.md §5.3) ---- */

static void ref_q8_0(const float *x, uint8_t *b) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
  uint16_t h = mq_f32_to_f16(d);
  b[0] = (uint8_t)h, b[1] = (uint8_t)(h >> 8);
  for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void ref_q45_0(const float *x, uint8_t *b, int five) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
  float half = five ? 16.0f : 8.0f, d = max / -half, id = d ? 1.0f / d : 0.0f;
  uint16_t h = mq_f32_to_f16(d);
  b[0] = (uint8_t)h, b[1] = (uint8_t)(h >> 8);
  uint32_t qh = 0;
  uint8_t *qs = b + (five ? 6 : 2);
  for (int j = 0; j < 16; j++) {
    int a = (int)(x[j] * id + half + 0.5f), c = (int)(x[j + 16] * id + half + 0.5f);
    int top = five ? 31 : 15;
    a = a > top ? top : a, c = c > top ? top : c;
    qs[j] = (uint8_t)((a & 0xF) | (c & 0xF) << 4);
    qh |= (uint32_t)((a >> 4) & 1) << j | (uint32_t)((c >> 4) & 1) << (j + 16);
  }
  if (five)
    for (int i = 0; i < 4; i++) b[2 + i] = (uint8_t)(qh >> (8 * i));
}

static void test_blocks(void) {
  static const uint32_t types[] = {MQ_GGML_TYPE_F32,  MQ_GGML_TYPE_F16,  MQ_GGML_TYPE_BF16,
                                   MQ_GGML_TYPE_Q8_0, MQ_GGML_TYPE_Q4_0, MQ_GGML_TYPE_Q5_0,
                                   MQ_GGML_TYPE_Q4_K, MQ_GGML_TYPE_Q6_K};
  enum { N = 1024 };
  float x[N], y[N];
  uint8_t q[N * 4], r[N * 4];
  /* rms error / rms value allowed for Gaussian rows */
  static const double rms_max[] = {0, 3e-4, 3e-3, 0.01, 0.13, 0.07, 0.11, 0.03};
  for (int kind = 0; kind < 5; kind++) {
    for (int i = 0; i < N; i++) {
      switch (kind) {
      case 0: x[i] = gauss() * 0.02f; break;                       /* weights */
      case 1: x[i] = gauss() * (i % 97 == 0 ? 8.0f : 0.5f); break; /* outliers */
      case 2:
        x[i] = i % 256 < 128 ? fabsf(gauss()) + 0.5f : -fabsf(gauss());
        break;                                                              /* one-signed halves */
      case 3: x[i] = i < 512 ? 0.0f : 1e-31f * (float)(i % 7); break;       /* zeros, tiny */
      default: x[i] = (i / 32) % 2 ? 3.0f : -1e-3f * (float)(i % 5); break; /* constant blocks */
      }
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
      CHECK(mq_gguf_quantize_row(types[t], x, q, N) == MQ_OK);
      CHECK(mq_gguf_dequant_row(types[t], q, y, N) == MQ_OK);
      double rel;
      int64_t bad = check_row(types[t], x, N, y, &rel);
      CHECK_MSG(bad == 0, "%s, data kind %d: %lld values outside the bound",
                mq_ggml_type_name(types[t]), kind, (long long)bad);
      if (kind == 0)
        CHECK_MSG(rel <= rms_max[t], "%s: rms error %.4f of rms (limit %.4f)",
                  mq_ggml_type_name(types[t]), rel, rms_max[t]);
      if (t == 0) CHECK(rel == 0);
    }
    /* ggml's reference rules, bit for bit */
    for (int b = 0; b < N / 32; b++) {
      int tiny = 0;
      for (int j = 0; j < 32; j++) tiny |= x[32 * b + j] != 0 && fabsf(x[32 * b + j]) < 1e-30f;
      if (tiny) continue; /* mixq reads these as zero on purpose */
      ref_q8_0(x + 32 * b, r);
      mq_gguf_quantize_row(MQ_GGML_TYPE_Q8_0, x + 32 * b, q, 32);
      CHECK_MSG(!memcmp(q, r, 34), "q8_0 block %d (kind %d) differs from ggml's rule", b, kind);
      ref_q45_0(x + 32 * b, r, 0);
      mq_gguf_quantize_row(MQ_GGML_TYPE_Q4_0, x + 32 * b, q, 32);
      CHECK_MSG(!memcmp(q, r, 18), "q4_0 block %d (kind %d) differs from ggml's rule", b, kind);
      ref_q45_0(x + 32 * b, r, 1);
      mq_gguf_quantize_row(MQ_GGML_TYPE_Q5_0, x + 32 * b, q, 32);
      CHECK_MSG(!memcmp(q, r, 22), "q5_0 block %d (kind %d) differs from ggml's rule", b, kind);
    }
  }
  /* formats.md §5.3 test vector: Q4_0 codes 0..15 then 15..0 with d = 1 */
  for (int j = 0; j < 32; j++) x[j] = j < 16 ? (float)(j - 8) : (float)(23 - j);
  x[0] = -8.0f;
  mq_gguf_quantize_row(MQ_GGML_TYPE_Q4_0, x, q, 32);
  CHECK(q[0] == 0x00 && q[1] == 0x3c && q[2] == 0xf0 && q[3] == 0xe1 && q[17] == 0x0f);
  CHECK(mq_gguf_quantize_row(MQ_GGML_TYPE_Q4_K, x, q, 32) == MQ_ERR_ARG);
  CHECK(mq_gguf_quantize_row(MQ_GGML_TYPE_IQ4_XS, x, q, 256) == MQ_ERR_UNSUPPORTED);
}

/* ---- the container ---- */

static void test_container(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/c.gguf", g_tmp);
  mq_err err = {0};
  mq_gguf_writer *w = mq_gguf_writer_new();
  const char *strs[3] = {"a", "", "\xE2\x96\x81x"};
  float fv[2] = {1.5f, -2.0f};
  int32_t iv[3] = {-1, 0, 7};
  int64_t ne1[1] = {5}, ne2[2] = {64, 3}, ne3[3] = {32, 2, 2};
  uint64_t nb = 0;
  CHECK(mq_gguf_writer_u32(w, "general.alignment", 32, &err) == MQ_OK);
  CHECK(mq_gguf_writer_i32(w, "x.i32", -5, &err) == MQ_OK);
  CHECK(mq_gguf_writer_f32(w, "x.f32", 0.25f, &err) == MQ_OK);
  CHECK(mq_gguf_writer_bool(w, "x.bool", 1, &err) == MQ_OK);
  CHECK(mq_gguf_writer_str(w, "x.str", "hello", 5, &err) == MQ_OK);
  CHECK(mq_gguf_writer_arr_str(w, "x.strs", strs, NULL, 3, &err) == MQ_OK);
  CHECK(mq_gguf_writer_arr_f32(w, "x.f32s", fv, 2, &err) == MQ_OK);
  CHECK(mq_gguf_writer_arr_i32(w, "x.i32s", iv, 3, &err) == MQ_OK);
  CHECK(mq_gguf_writer_u32(w, "x.i32", 1, &err) == MQ_ERR_ARG); /* duplicate key */
  CHECK(strstr(err.msg, "twice") != NULL);
  CHECK(mq_gguf_writer_u32(w, "", 1, &err) == MQ_ERR_ARG);
  CHECK(mq_gguf_writer_tensor(w, "v", MQ_GGML_TYPE_F32, 1, ne1, &nb, &err) == MQ_OK && nb == 20);
  CHECK(mq_gguf_writer_tensor(w, "m", MQ_GGML_TYPE_Q8_0, 2, ne2, &nb, &err) == MQ_OK &&
        nb == 6 * 34);
  CHECK(mq_gguf_writer_tensor(w, "e", MQ_GGML_TYPE_Q4_0, 3, ne3, &nb, &err) == MQ_OK &&
        nb == 4 * 18);
  CHECK(mq_gguf_writer_tensor(w, "m", MQ_GGML_TYPE_F32, 1, ne1, NULL, &err) == MQ_ERR_ARG);
  CHECK(mq_gguf_writer_tensor(w, "bad", MQ_GGML_TYPE_Q4_K, 2, ne2, NULL, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "multiple") != NULL);
  CHECK(mq_gguf_writer_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123",
                              MQ_GGML_TYPE_F32, 1, ne1, NULL, &err) == MQ_ERR_ARG);
  CHECK(mq_gguf_writer_tensor(w, "bad", 4, 1, ne1, NULL, &err) == MQ_ERR_ARG); /* removed type */
  CHECK(mq_gguf_writer_finish(w, &err) == MQ_ERR_ARG);                         /* before begin */
  CHECK(mq_gguf_writer_begin(w, path, &err) == MQ_OK);
  CHECK(mq_gguf_writer_u32(w, "late", 1, &err) == MQ_ERR_ARG);
  uint8_t data[512];
  for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 7);
  CHECK(mq_gguf_writer_write(w, data, 7, &err) == MQ_OK); /* split across calls and tensors */
  CHECK(mq_gguf_writer_finish(w, &err) == MQ_ERR_ARG && strstr(err.msg, "incomplete"));
  CHECK(mq_gguf_writer_write(w, data + 7, 13 + 204 + 72, &err) == MQ_OK);
  CHECK(mq_gguf_writer_write(w, data, 1, &err) == MQ_ERR_ARG);
  CHECK(mq_gguf_writer_finish(w, &err) == MQ_OK);
  mq_gguf_writer_free(w);
  mq_gguf_file f;
  CHECK_MSG(mq_gguf_open(path, &f, &err) == MQ_OK, "%s", err.msg);
  if (f.n_tensors == 3) {
    uint32_t u;
    int32_t i32;
    float fl;
    int bo;
    const char *s;
    uint64_t sl;
    CHECK(mq_gguf_get_u32(&f, "general.alignment", &u, &err) == MQ_OK && u == 32);
    CHECK(mq_gguf_get_i32(&f, "x.i32", &i32, &err) == MQ_OK && i32 == -5);
    CHECK(mq_gguf_get_f32(&f, "x.f32", &fl, &err) == MQ_OK && fl == 0.25f);
    CHECK(mq_gguf_get_bool(&f, "x.bool", &bo, &err) == MQ_OK && bo == 1);
    CHECK(mq_gguf_get_str(&f, "x.str", &s, &sl, &err) == MQ_OK && sl == 5 &&
          !memcmp(s, "hello", 5));
    const mq_gguf_kv *kv;
    CHECK(mq_gguf_get_arr(&f, "x.strs", MQ_GGUF_VTYPE_STRING, &kv, &err) == MQ_OK &&
          kv->count == 3);
    s = mq_gguf_arr_str(kv, 2, &sl);
    CHECK(s && sl == 4 && !memcmp(s, strs[2], 4));
    CHECK(mq_gguf_get_arr(&f, "x.i32s", MQ_GGUF_VTYPE_I32, &kv, &err) == MQ_OK);
    int64_t v;
    CHECK(mq_gguf_arr_int(kv, 0, &v) == 0 && v == -1);
    const mq_gguf_tensor *t = mq_gguf_find_tensor(&f, "m");
    CHECK(t && t->type == MQ_GGML_TYPE_Q8_0 && t->ne[0] == 64 && t->ne[1] == 3 && t->offset == 32);
    CHECK(t && !memcmp(t->data, data + 20, 204));
    t = mq_gguf_find_tensor(&f, "e");
    CHECK(t && t->n_dims == 3 && t->ne[2] == 2 && !memcmp(t->data, data + 224, 72));
    mq_gguf_close(&f);
  } else {
    CHECK(0);
  }
  /* a writer freed unfinished leaves no file */
  snprintf(path, sizeof path, "%s/unfinished.gguf", g_tmp);
  w = mq_gguf_writer_new();
  mq_gguf_writer_tensor(w, "v", MQ_GGML_TYPE_F32, 1, ne1, NULL, &err);
  mq_gguf_writer_begin(w, path, &err);
  mq_gguf_writer_free(w);
  char tmp[320];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
}

/* ---- end to end ---- */

/* GGUF name -> HF name (expert e of a 3-D tensor); independent of gguf_convert.c. */
static int hf_name(const char *g, int mixtral, int e, char *out, size_t cap) {
  static const char *const k[][2] = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
      {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
      {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
      {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"},
  };
  if (!strcmp(g, "token_embd.weight")) return snprintf(out, cap, "model.embed_tokens.weight"), 0;
  if (!strcmp(g, "output_norm.weight")) return snprintf(out, cap, "model.norm.weight"), 0;
  if (!strcmp(g, "output.weight")) return snprintf(out, cap, "lm_head.weight"), 0;
  int L, n;
  if (sscanf(g, "blk.%d.%n", &L, &n) != 1) return -1;
  const char *rest = g + n;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(rest, k[i][0])) return snprintf(out, cap, "model.layers.%d.%s", L, k[i][1]), 0;
  const char *blk = mixtral ? "block_sparse_moe" : "mlp";
  if (!strcmp(rest, "ffn_gate_inp.weight"))
    return snprintf(out, cap, "model.layers.%d.%s.gate.weight", L, blk), 0;
  static const char *const ex[3][3] = {{"ffn_gate_exps.weight", "gate_proj", "w1"},
                                       {"ffn_up_exps.weight", "up_proj", "w3"},
                                       {"ffn_down_exps.weight", "down_proj", "w2"}};
  for (int r = 0; r < 3; r++)
    if (!strcmp(rest, ex[r][0]))
      return snprintf(out, cap, "model.layers.%d.%s.experts.%d.%s.weight", L, blk, e,
                      ex[r][mixtral ? 2 : 1]),
             0;
  return -1;
}

static float src_value(const mq_tensor *t, size_t i) {
  if (t->dtype == MQ_DTYPE_F32) {
    float v;
    memcpy(&v, t->data + 4 * i, 4);
    return v;
  }
  uint16_t h;
  memcpy(&h, t->data + 2 * i, 2);
  return t->dtype == MQ_DTYPE_F16 ? mq_f16_to_f32(h) : mq_bf16_to_f32(h);
}

/* Rebuild a float HF checkpoint in ref_dir from the GGUF tensors and check
 * (b) every tensor against the source checkpoint. Returns 0 on success. */
static int rebuild(const char *gguf, const char *src, const char *ref_dir, const char *label) {
  mq_err err = {0};
  mq_gguf_file f;
  mq_ckpt ck;
  if (mq_gguf_open(gguf, &f, &err) != MQ_OK) return fprintf(stderr, "%s\n", err.msg), -1;
  if (mq_ckpt_open(src, &ck, &err) != MQ_OK)
    return mq_gguf_close(&f), fprintf(stderr, "%s\n", err.msg), -1;
  const char *arch;
  uint64_t al;
  mq_gguf_get_str(&f, "general.architecture", &arch, &al, &err);
  int llama = al == 5 && !memcmp(arch, "llama", 5);
  int mixtral = llama && mq_gguf_find_kv(&f, "llama.expert_count") != NULL;
  uint32_t hd = 0;
  mq_gguf_get_u32(&f, "llama.attention.key_length", &hd, &err);
  mq_st_writer *w = mq_st_writer_new();
  int rc = 0;
  for (int ti = 0; ti < f.n_tensors && !rc; ti++) {
    const mq_gguf_tensor *t = &f.tensors[ti];
    int64_t K = t->ne[0], N = t->n_dims > 1 ? t->ne[1] : 1, E = t->n_dims > 2 ? t->ne[2] : 1;
    size_t rb = (size_t)mq_ggml_row_size(t->type, K);
    float *buf = malloc((size_t)(N * K) * sizeof(float)), *row = malloc((size_t)K * sizeof(float));
    if (!strcmp(t->name, "rope_freqs.weight")) { /* config.json's llama3 scaling: the logits check it */
      free(buf), free(row);
      continue;
    }
    int perm = llama && (strstr(t->name, "attn_q.weight") || strstr(t->name, "attn_k.weight"));
    for (int64_t e = 0; e < E && !rc; e++) {
      for (int64_t r = 0; r < N; r++) { /* GGUF row r holds HF row s (inverse permutation) */
        int64_t s = r;
        if (perm) {
          int64_t h = r / hd, w2 = r % hd;
          s = h * hd + (w2 % 2) * (hd / 2) + w2 / 2;
        }
        mq_gguf_dequant_row(t->type, t->data + (size_t)(e * N + r) * rb, row, K);
        memcpy(buf + (size_t)s * (size_t)K, row, (size_t)K * sizeof(float));
      }
      char hn[256];
      if (hf_name(t->name, mixtral, (int)e, hn, sizeof hn)) {
        fprintf(stderr, "%s: unexpected GGUF tensor %s\n", label, t->name);
        rc = -1;
        break;
      }
      const mq_tensor *st = mq_ckpt_find(&ck, hn);
      if (!st || st->n_elems != (uint64_t)(N * K)) {
        fprintf(stderr, "%s: %s (from %s) missing in the source or of another size\n", label, hn,
                t->name);
        rc = -1;
        break;
      }
      /* (b) the dequantized tensor is within its type's bound of the source */
      float *x = malloc((size_t)K * sizeof(float));
      int64_t bad = 0;
      for (int64_t r = 0; r < N; r++) {
        for (int64_t k = 0; k < K; k++) x[k] = src_value(st, (size_t)(r * K + k));
        bad += check_row(t->type, x, K, buf + (size_t)(r * K), NULL);
      }
      free(x);
      CHECK_MSG(bad == 0, "%s: %s (%s): %lld values outside the bound", label, t->name,
                mq_ggml_type_name(t->type), (long long)bad);
      mq_st_writer_add(w, hn, MQ_DTYPE_F32, st->n_dims, st->shape, buf, &err);
    }
    free(buf), free(row);
  }
  char p1[1100], p2[1100];
  mkdir(ref_dir, 0777);
  snprintf(p1, sizeof p1, "%s/model.safetensors", ref_dir);
  if (!rc && mq_st_writer_save(w, p1, &err) != MQ_OK) rc = -1;
  snprintf(p1, sizeof p1, "%s/config.json", src);
  snprintf(p2, sizeof p2, "%s/config.json", ref_dir);
  if (!rc) rc = copy_file(p1, p2);
  mq_st_writer_free(w);
  mq_ckpt_close(&ck);
  mq_gguf_close(&f);
  return rc;
}

/* Logits [n, vocab] of model path for tokens; caller frees. */
static float *logits(const char *path, const int32_t *tok, int n, int *n_vocab) {
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(path, NULL, &m, &err) != MQ_OK) return fprintf(stderr, "%s\n", err.msg), NULL;
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = 1, sp.n_ctx = 64;
  mq_session *s;
  float *out = NULL;
  if (mq_session_init(m, &sp, &s, &err) == MQ_OK) {
    if (mq_session_eval(s, tok, n, 1, &err) == MQ_OK) {
      mq_model_info mi;
      mq_model_get_info(m, &mi);
      *n_vocab = mi.n_vocab;
      out = malloc((size_t)n * (size_t)mi.n_vocab * sizeof(float));
      memcpy(out, mq_session_logits(s, NULL), (size_t)n * (size_t)mi.n_vocab * sizeof(float));
    }
    mq_session_free(s);
  }
  if (!out) fprintf(stderr, "%s: %s\n", path, err.msg);
  mq_model_free(m);
  return out;
}

static const char *const k_ft[] = {"gguf-f32",  "gguf-f16",  "gguf-bf16",
                                   "gguf-q8_0", "gguf-q4_0", "gguf-q4_k_m"};

static void test_model(const char *src, const char *label, const int32_t *tok, int n_tok) {
  for (size_t fi = 0; fi < sizeof k_ft / sizeof k_ft[0]; fi++) {
    char dst[512], ref[512], lab[128];
    snprintf(dst, sizeof dst, "%s/%s-%s.gguf", g_tmp, label, k_ft[fi]);
    snprintf(ref, sizeof ref, "%s/%s-%s-ref", g_tmp, label, k_ft[fi]);
    snprintf(lab, sizeof lab, "%s %s", label, k_ft[fi]);
    mq_gguf_convert_report rep;
    mq_gguf_convert_opts o = {.src = src, .dst = dst, .n_threads = 2, .report = &rep};
    mq_gguf_ftype_parse(k_ft[fi], &o.ftype);
    mq_err err = {0};
    int rc = mq_gguf_convert(&o, &err);
    CHECK_MSG(rc == MQ_OK, "%s: %s", lab, err.msg);
    if (rc) continue;
    struct stat st;
    CHECK(stat(dst, &st) == 0 && (uint64_t)st.st_size == rep.bytes);
    if (rebuild(dst, src, ref, lab) != 0) {
      CHECK_MSG(0, "%s: rebuilding the float reference failed", lab);
      continue;
    }
    int va = 0, vb = 0;
    float *a = logits(dst, tok, n_tok, &va), *b = logits(ref, tok, n_tok, &vb);
    CHECK_MSG(a && b && va == vb, "%s: logits", lab);
    if (a && b && va == vb) {
      double md = 0, mx = 0;
      for (int i = 0; i < n_tok * va; i++)
        md = fmax(md, fabs(a[i] - b[i])), mx = fmax(mx, fabs(b[i]));
      /* F16 weights see activations rounded to f16 (as in ggml; linear_gguf.c) */
      double tol = fi == 1 ? 2e-3 * mx + 1e-4 : fi < 3 ? 1e-4 : 0.05 * mx;
      CHECK_MSG(md <= tol,
                "%s: max |logit diff| %.3g vs the float model on its own weights (tol %.3g)", lab,
                md, tol);
      printf("  %-28s %8.1f KB  max |diff| %.2e of max |logit| %.2f\n", lab, rep.bytes / 1024.0, md,
             mx);
    }
    free(a), free(b);
    mqt_rm_tree(ref);
    if (fi) unlink(dst);
  }
}

/* (c): GGUF tokenizer vs the source's */
static void test_tokenizer(const char *src, const char *gguf, const char *const *texts, int n) {
  mq_tokenizer *a = NULL, *b = NULL;
  mq_err err = {0};
  CHECK_MSG(mq_tokenizer_load(src, &a, &err) == MQ_OK, "%s", err.msg);
  CHECK_MSG(mq_tokenizer_load(gguf, &b, &err) == MQ_OK, "%s", err.msg);
  if (!a || !b) goto done;
  CHECK(mq_tokenizer_bos(a) == mq_tokenizer_bos(b) && mq_tokenizer_eos(a) == mq_tokenizer_eos(b));
  for (int i = 0; i < n; i++) {
    int32_t *x = NULL, *y = NULL;
    int nx = 0, ny = 0;
    mq_tokenizer_encode(a, texts[i], strlen(texts[i]), 1, &x, &nx, &err);
    mq_tokenizer_encode(b, texts[i], strlen(texts[i]), 1, &y, &ny, &err);
    CHECK_MSG(nx == ny && nx > 0 && !memcmp(x, y, (size_t)nx * sizeof *x),
              "%s: \"%s\" tokenizes differently", gguf, texts[i]);
    char *back = NULL;
    mq_tokenizer_decode(b, y, ny, MQ_DECODE_SKIP_SPECIAL, &back, NULL, &err);
    CHECK_MSG(back && !strcmp(back, texts[i]), "%s: decode(encode(\"%s\")) = \"%s\"", gguf,
              texts[i], back ? back : "");
    free(x), free(y), free(back);
  }
done:
  mq_tokenizer_free(a);
  mq_tokenizer_free(b);
}

static const char *const k_texts[] = {
    "In the beginning God created the heaven and the earth.",
    "  And God said, Let there be light: and there was light.\n\nVerse 3:16",
    "Zo\xC3\xAB said: \"I have 3 apples \xE2\x80\x94 na\xC3\xAFve!\" \xF0\x9F\x90\xB1",
    "tabs\tand  spaces   x",
};

/* stories260K: our tensors vs llama-quantize's, the tokenizer vs llama.cpp's ids */
static void test_stories(void) {
  char hf[512], ref[512], dst[512];
  if (!mqt_shared("fixtures/stories260K/hf/config.json", hf, sizeof hf)) {
    printf("  (stories260K fixtures absent: llama.cpp comparisons skipped)\n");
    return;
  }
  *strrchr(hf, '/') = 0;
  static const char *const names[2] = {"Q8_0", "Q4_0"};
  static const mq_gguf_ftype fts[2] = {MQ_GGUF_FTYPE_Q8_0, MQ_GGUF_FTYPE_Q4_0};
  for (int k = 0; k < 2; k++) {
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/stories260K/gguf/stories260K-%s.gguf", names[k]);
    if (!mqt_shared(rel, ref, sizeof ref)) continue;
    snprintf(dst, sizeof dst, "%s/stories-%s.gguf", g_tmp, names[k]);
    mq_gguf_convert_opts o = {.src = hf, .dst = dst, .ftype = fts[k], .n_threads = 2};
    mq_err err = {0};
    CHECK_MSG(mq_gguf_convert(&o, &err) == MQ_OK, "%s", err.msg);
    mq_gguf_file a, b;
    if (mq_gguf_open(dst, &a, &err) != MQ_OK) continue;
    if (mq_gguf_open(ref, &b, &err) != MQ_OK) {
      mq_gguf_close(&a);
      continue;
    }
    int same = 0, compared = 0;
    for (int i = 0; i < a.n_tensors; i++) {
      const mq_gguf_tensor *x = &a.tensors[i], *y = mq_gguf_find_tensor(&b, x->name);
      CHECK_MSG(y != NULL, "%s: llama.cpp's file has no %s", names[k], x->name);
      if (!y || y->type != x->type) continue; /* token_embd: tied here, separate output there */
      compared++;
      same += x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
      CHECK_MSG(x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes),
                "%s: %s (%s) differs from llama-quantize's", names[k], x->name,
                mq_ggml_type_name(x->type));
    }
    CHECK(compared >= 40);
    printf("  stories260K %s: %d of %d tensors byte-identical to llama-quantize's\n", names[k],
           same, compared);
    /* tokenizer metadata: same tokens and token types as llama.cpp's converter */
    const mq_gguf_kv *ta, *tb;
    if (mq_gguf_get_arr(&a, "tokenizer.ggml.tokens", MQ_GGUF_VTYPE_STRING, &ta, &err) == MQ_OK &&
        mq_gguf_get_arr(&b, "tokenizer.ggml.tokens", MQ_GGUF_VTYPE_STRING, &tb, &err) == MQ_OK) {
      int diff = ta->count != tb->count;
      for (uint64_t i = 0; !diff && i < ta->count; i++) {
        uint64_t l1, l2;
        const char *s1 = mq_gguf_arr_str(ta, i, &l1), *s2 = mq_gguf_arr_str(tb, i, &l2);
        diff = l1 != l2 || memcmp(s1, s2, l1);
      }
      CHECK_MSG(!diff, "stories260K: tokens differ from llama.cpp's");
    }
    if (mq_gguf_get_arr(&a, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_COUNT, &ta, &err) == MQ_OK &&
        mq_gguf_get_arr(&b, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_COUNT, &tb, &err) == MQ_OK) {
      int diff = ta->count != tb->count;
      for (uint64_t i = 0; !diff && i < ta->count; i++) {
        int64_t u, v;
        diff = mq_gguf_arr_int(ta, i, &u) || mq_gguf_arr_int(tb, i, &v) || u != v;
      }
      CHECK_MSG(!diff, "stories260K: token types differ from llama.cpp's");
    }
    mq_gguf_close(&a);
    mq_gguf_close(&b);
  }
  /* (c) against llama.cpp's tokenizations (tokenizer_cases.json) */
  char cases[512];
  snprintf(dst, sizeof dst, "%s/stories-Q8_0.gguf", g_tmp);
  json_t *j = mqt_shared("fixtures/stories260K/golden/tokenizer_cases.json", cases, sizeof cases)
                  ? json_load_file(cases, 0, NULL)
                  : NULL;
  mq_tokenizer *t = NULL;
  mq_err err = {0};
  if (j && mq_tokenizer_load(dst, &t, &err) == MQ_OK) {
    size_t i;
    json_t *c;
    int ok = 0, n = 0;
    json_array_foreach(json_object_get(j, "cases"), i, c) {
      const char *text = json_string_value(json_object_get(c, "text"));
      json_t *ids = json_object_get(c, "ids");
      int32_t *x = NULL;
      int nx = 0;
      if (!text) continue;
      mq_tokenizer_encode(t, text, strlen(text), 1, &x, &nx, &err);
      int same = nx == (int)json_array_size(ids);
      for (int k = 0; same && k < nx; k++)
        same = x[k] == json_integer_value(json_array_get(ids, (size_t)k));
      CHECK_MSG(same, "stories260K GGUF tokenizer: \"%s\" differs from llama.cpp", text);
      ok += same, n++;
      free(x);
    }
    printf("  stories260K GGUF tokenizer: %d of %d llama.cpp tokenizations\n", ok, n);
    CHECK(n >= 20);
  }
  mq_tokenizer_free(t);
  json_decref(j);
  test_tokenizer(hf, dst, k_texts, 4);
  /* F32: the GGUF model computes what the source does */
  snprintf(dst, sizeof dst, "%s/stories-f32.gguf", g_tmp);
  mq_gguf_convert_opts o = {.src = hf, .dst = dst, .ftype = MQ_GGUF_FTYPE_F32};
  CHECK(mq_gguf_convert(&o, &err) == MQ_OK);
  int32_t tok[16] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
  int va = 0, vb = 0;
  float *a = logits(dst, tok, 16, &va), *b = logits(hf, tok, 16, &vb);
  if (a && b && va == vb) {
    double md = 0;
    for (int i = 0; i < 16 * va; i++) md = fmax(md, fabs(a[i] - b[i]));
    CHECK_MSG(md < 1e-4, "stories260K f32: max |logit diff| %g", md);
  } else {
    CHECK(0);
  }
  free(a), free(b);
}

/* (c) on real tokenizers: GPT-2 (byte-level BPE) and Llama-2 (SentencePiece)
 * tokenizer.json as a vocabulary-only GGUF; llama.cpp's 46 test strings must
 * give the golden ids (shared fixtures; skipped without them). */
static void test_vocab_fixtures(void) {
  static const char *const k[2][3] = {{"hf-gpt2", "gpt-2", "gpt2"},
                                      {"hf-llama2", "llama-spm", "llama"}};
  for (int v = 0; v < 2; v++) {
    char rel[256], dir[512], inp[512], outp[512], path[600], warn[1024] = "";
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s/tokenizer.json", k[v][0]);
    if (!mqt_shared(rel, dir, sizeof dir)) {
      printf("  (tokenizer fixtures absent: skipped)\n");
      return;
    }
    *strrchr(dir, '/') = 0;
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s/%s.inp", k[v][0], k[v][1]);
    const char *pi = mqt_shared(rel, inp, sizeof inp);
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s/%s.hf-tokenizers-js.out", k[v][0], k[v][1]);
    const char *po = mqt_shared(rel, outp, sizeof outp);
    if (!pi || !po) continue;
    snprintf(path, sizeof path, "%s/vocab-%s.gguf", g_tmp, k[v][0]);
    mq_err err = {0};
    mq_gguf_writer *w = mq_gguf_writer_new();
    int rc = mq_gguf_write_vocab(w, dir, 0, warn, sizeof warn, &err);
    if (!rc) rc = mq_gguf_writer_begin(w, path, &err);
    if (!rc) rc = mq_gguf_writer_finish(w, &err);
    mq_gguf_writer_free(w);
    CHECK_MSG(rc == MQ_OK, "%s: %s", k[v][0], err.msg);
    CHECK_MSG(!warn[0], "%s: %s", k[v][0], warn);
    mq_gguf_file f;
    if (rc || mq_gguf_open(path, &f, &err) != MQ_OK) continue;
    const char *model;
    uint64_t ml;
    CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.model", &model, &ml, &err) == MQ_OK &&
          ml == strlen(k[v][2]) && !memcmp(model, k[v][2], ml));
    if (v == 0) {
      const char *pre;
      uint64_t pl;
      CHECK(mq_gguf_get_str(&f, "tokenizer.ggml.pre", &pre, &pl, &err) == MQ_OK && pl == 5 &&
            !memcmp(pre, "gpt-2", 5));
    }
    mq_gguf_close(&f);
    mq_tokenizer *t = NULL;
    CHECK_MSG(mq_tokenizer_load(path, &t, &err) == MQ_OK, "%s", err.msg);
    char **strs = NULL, *outs = NULL;
    size_t *lens = NULL, olen;
    int n = read_inp(pi, &strs, &lens), ok = 0;
    outs = mqt_read(po, &olen);
    char *line = outs;
    for (int i = 0; t && i < n && line; i++) {
      int32_t want[1024], *ids = NULL;
      int nw = parse_ids(line, want, 1024), ni = 0;
      char *nl = strchr(line, '\n');
      line = nl ? nl + 1 : NULL;
      if (mq_tokenizer_encode(t, strs[i], lens[i], 0, &ids, &ni, &err) == MQ_OK &&
          same(ids, ni, want, nw))
        ok++;
      else
        fprintf(stderr, "%s case %d: \"%s\" differs\n", k[v][0], i, strs[i]),
            print_ids("want", want, nw), print_ids("got ", ids, ni);
      free(ids);
    }
    CHECK_MSG(n == 46 && ok == n, "%s as GGUF: %d/%d golden cases", k[v][0], ok, n);
    printf("  %s as a GGUF vocabulary: %d/%d golden tokenizations\n", k[v][0], ok, n);
    if (n > 0) free(strs[0]);
    free(strs), free(lens), free(outs);
    mq_tokenizer_free(t);
  }
}

static void expect_fail(const char *src, const char *dst, mq_gguf_ftype ft, const char *needle) {
  mq_gguf_convert_opts o = {.src = src, .dst = dst, .ftype = ft};
  mq_err err = {0};
  int rc = mq_gguf_convert(&o, &err);
  CHECK_MSG(rc != MQ_OK && strstr(err.msg, needle), "expected an error with \"%s\", got %d: %s",
            needle, rc, err.msg);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  CHECK(access(tmp, F_OK) != 0);
}

/* A copy of tiny-qwen2 in dir with tensor `name` dropped (drop) or holding a
 * NaN (else). */
static int variant(const char *dir, const char *name, int drop) {
  mq_err err = {0};
  mq_ckpt ck;
  char p[600];
  mkdir(dir, 0777);
  if (mq_ckpt_open(MQ_TEST_DATA "/tiny-qwen2", &ck, &err) != MQ_OK) return -1;
  mq_st_writer *w = mq_st_writer_new();
  for (int i = 0; i < ck.n_all; i++) {
    const mq_tensor *t = ck.all[i];
    if (drop && !strcmp(t->name, name)) continue;
    uint8_t *b = malloc(t->nbytes);
    memcpy(b, t->data, t->nbytes);
    if (!strcmp(t->name, name)) memset(b + 40, 0xFF, 4);
    mq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, b, &err);
    free(b);
  }
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  int rc = mq_st_writer_save(w, p, &err);
  mq_st_writer_free(w);
  mq_ckpt_close(&ck);
  snprintf(p, sizeof p, "%s/config.json", dir);
  return rc || copy_file(MQ_TEST_DATA "/tiny-qwen2/config.json", p) ? -1 : 0;
}

static void test_refusals(void) {
  char dst[512], dir[512], p[600];
  snprintf(dst, sizeof dst, "%s/x.gguf", g_tmp);
  expect_fail(MQ_TEST_DATA "/tiny-qwen2", g_tmp, MQ_GGUF_FTYPE_Q8_0, ".gguf");
  snprintf(p, sizeof p, "%s/x.bin", g_tmp);
  expect_fail(MQ_TEST_DATA "/tiny-qwen2", p, MQ_GGUF_FTYPE_Q8_0, ".gguf");
  expect_fail(MQ_TEST_DATA "/nonexistent", dst, MQ_GGUF_FTYPE_Q8_0, "config.json");
  /* a quantized source */
  snprintf(dir, sizeof dir, "%s/gptq", g_tmp);
  mq_quantize_opts qo;
  mq_quantize_opts_default(&qo);
  qo.src = MQ_TEST_DATA "/tiny-qwen2", qo.dst = dir, qo.format = MQ_QFORMAT_GPTQ,
  qo.group_size = -1;
  mq_err err = {0};
  CHECK_MSG(mq_quantize_checkpoint(&qo, &err) == MQ_OK, "%s", err.msg);
  expect_fail(dir, dst, MQ_GGUF_FTYPE_Q8_0, "dequantize");
  /* NaN in a weight; a missing tensor; a tokenizer GGUF cannot carry */
  snprintf(dir, sizeof dir, "%s/nan", g_tmp);
  if (variant(dir, "model.layers.1.mlp.up_proj.weight", 0) == 0) {
    expect_fail(dir, dst, MQ_GGUF_FTYPE_Q4_0, "non-finite");
    CHECK(access(dst, F_OK) != 0);
  }
  snprintf(dir, sizeof dir, "%s/missing", g_tmp);
  if (variant(dir, "model.layers.1.mlp.up_proj.weight", 1) == 0)
    expect_fail(dir, dst, MQ_GGUF_FTYPE_Q8_0, "model.layers.1.mlp.up_proj.weight' is missing");
  snprintf(dir, sizeof dir, "%s/wordpiece", g_tmp);
  if (variant(dir, "", 0) == 0) {
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    FILE *f = fopen(p, "w");
    if (f) fputs("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", f), fclose(f);
    expect_fail(dir, dst, MQ_GGUF_FTYPE_Q8_0, "WordPiece");
  }
  /* yarn scaling has no GGUF form mixq reads */
  snprintf(dir, sizeof dir, "%s/yarn", g_tmp);
  if (variant(dir, "", 0) == 0) {
    snprintf(p, sizeof p, "%s/config.json", dir);
    size_t n = 0;
    char *cfg = mqt_read(p, &n), *at = NULL;
    if (cfg && (cfg = realloc(cfg, n + 1))) cfg[n] = 0, at = strstr(cfg, "\"model_type\"");
    FILE *f = at ? fopen(p, "w") : NULL;
    if (f) {
      fprintf(f, "%.*s\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
                 "\"original_max_position_embeddings\": 32}, %s",
              (int)(at - cfg), cfg, at);
      fclose(f);
      expect_fail(dir, dst, MQ_GGUF_FTYPE_Q8_0, "yarn");
    }
    CHECK(f != NULL);
    free(cfg);
  }
  mq_gguf_ftype ft;
  CHECK(mq_gguf_ftype_parse("gguf-Q4_K_M", &ft) == 0 && ft == MQ_GGUF_FTYPE_Q4_K_M);
  CHECK(mq_gguf_ftype_parse("gguf-q2_k", &ft) == -1);
}

/* A copy of src at dst with the n bytes at file offset off replaced by v. */
static void write_patched(const char *src, const char *dst, size_t off, const void *v, size_t n) {
  size_t len = 0;
  uint8_t *b = mqt_read(src, &len);
  CHECK(b && off + n <= len);
  FILE *o = b && off + n <= len ? fopen(dst, "wb") : NULL;
  if (o) {
    memcpy(b + off, v, n);
    CHECK(fwrite(b, 1, len, o) == len);
    fclose(o);
  }
  free(b);
}

/* Load path: it must fail with MQ_ERR_FORMAT and a message holding n1 and n2. */
static void expect_load_error(const char *path, const char *n1, const char *n2) {
  mq_model *m = NULL;
  mq_err err = {0};
  int rc = mq_model_load(path, NULL, &m, &err);
  CHECK_MSG(rc == MQ_ERR_FORMAT && strstr(err.msg, n1) && strstr(err.msg, n2), "%s: %d %s", path,
            rc, err.msg);
  mq_model_free(m);
}

/* The reader refuses rope_freqs factors that are not finite and positive,
 * naming the tensor, and a file with tensors of blocks past block_count:
 * tiny-llama3's F32 file (test_model keeps it), patched. */
static void test_gguf_lies(void) {
  char src[600], dst[600];
  snprintf(src, sizeof src, "%s/tiny-llama3-gguf-f32.gguf", g_tmp);
  snprintf(dst, sizeof dst, "%s/patched.gguf", g_tmp);
  mq_err err = {0};
  mq_gguf_file f;
  if (mq_gguf_open(src, &f, &err) != MQ_OK) {
    CHECK_MSG(0, "%s", err.msg);
    return;
  }
  const mq_gguf_tensor *t = mq_gguf_find_tensor(&f, "rope_freqs.weight");
  const mq_gguf_kv *kv = mq_gguf_find_kv(&f, "llama.block_count");
  CHECK(t && t->ne[0] == 8 && t->type == MQ_GGML_TYPE_F32); /* head_dim 16 */
  CHECK(kv && kv->type == MQ_GGUF_VTYPE_U32);
  static const float bad[] = {0.0f, -2.0f, NAN};
  for (size_t i = 0; t && i < sizeof bad / sizeof bad[0]; i++) { /* the third factor */
    write_patched(src, dst, (size_t)(t->data - f.map.data) + 8, &bad[i], 4);
    expect_load_error(dst, "rope_freqs.weight", "at 2");
  }
  uint32_t one = 1, was = 0;
  if (kv) {
    memcpy(&was, kv->data, 4);
    write_patched(src, dst, (size_t)(kv->data - f.map.data), &one, 4);
    expect_load_error(dst, "'blk.1.", "block_count is 1");
  }
  CHECK(was == 2);
  mq_gguf_close(&f);
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/mq_gguf_write_XXXXXX");
  if (!mkdtemp(g_tmp)) TEST_SKIP("no temporary directory");
  test_blocks();
  test_container();
  int32_t tok[8] = {1, 5, 9, 200, 17, 3, 100, 42};
  static const char *const models[] = {"tiny-qwen2",     "tiny-qwen3",   "tiny-qwen3-moe",
                                       "tiny-qwen2-moe", "tiny-mixtral", "tiny-llama3"};
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "%s/%s", MQ_TEST_DATA, models[i]);
    test_model(src, models[i], tok, 8);
  }
  const char *en = MQ_TEST_DATA "/../../models/tiny-en";
  int32_t en_tok[8] = {4094, 12, 300, 7, 1000, 2048, 55, 4000};
  test_model(en, "tiny-en", en_tok, 8);
  char g[512];
  snprintf(g, sizeof g, "%s/tiny-en-gguf-f32.gguf", g_tmp);
  test_tokenizer(en, g, k_texts, 4);
  test_stories();
  test_vocab_fixtures();
  test_refusals();
  test_gguf_lies();
  mqt_rm_tree(g_tmp);
  return mqt_report("test_gguf_write");
}
