/* Quantized models end to end: the writer (mq_quantize_checkpoint) makes a
 * checkpoint of every format from a float model (tests/data/tiny-llama3,
 * tiny-qwen2 with q/k/v bias); mixq loads it, names each layer's scheme, and
 * its logits equal those of the float model rebuilt from the dequantized
 * weights (mq_model_export_float) to float32 rounding: tolerance 1e-4 on
 * logits of magnitude ~4. Also mixed checkpoints and fused-shard errors. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "mixq.h"
#include "quant/writer.h"
#include "test.h"

static char g_tmp[256];
static const int32_t k_tokens[12] = {1, 252, 165, 238, 70, 15, 187, 35, 10, 99, 253, 122};

static float *logits_of(const char *dir, mq_err *err) {
  mq_model *m;
  if (mq_model_load(dir, NULL, &m, err) != MQ_OK) return NULL;
  mq_session *s;
  mq_session_init(m, NULL, &s, err);
  mq_session_eval(s, k_tokens, 12, 1, err);
  mq_model_info info;
  mq_model_get_info(m, &info);
  float *out = malloc(12 * (size_t)info.n_vocab * sizeof(float));
  memcpy(out, mq_session_logits(s, NULL), 12 * (size_t)info.n_vocab * sizeof(float));
  mq_session_free(s);
  mq_model_free(m);
  return out;
}

/* Quantize src with o, check schemes (want_scheme for every decoder linear
 * unless NULL) and logits vs the dequantized float model. */
static void roundtrip(const char *src_name, mq_quantize_opts o, const char *want_scheme,
                      const char *label) {
  char src[512], q[600], f[600];
  snprintf(src, sizeof src, "%s/%s", MQ_TEST_DATA, src_name);
  snprintf(q, sizeof q, "%s/q", g_tmp);
  snprintf(f, sizeof f, "%s/f", g_tmp);
  o.src = src;
  o.dst = q;
  mq_err err = {0};
  if (mq_quantize_checkpoint(&o, &err) != MQ_OK) {
    CHECK_MSG(0, "%s: quantize: %s", label, err.msg);
    return;
  }
  mq_model *m;
  if (mq_model_load(q, NULL, &m, &err) != MQ_OK) {
    CHECK_MSG(0, "%s: load: %s", label, err.msg);
    mqt_rm_tree(q);
    return;
  }
  int n_quant = 0;
  for (int i = 0; i < mq_model_n_linears(m); i++) {
    mq_linear_info li;
    mq_model_linear(m, i, &li);
    if (strcmp(li.scheme, "FLOAT")) n_quant++;
    if (want_scheme && strncmp(li.name, "model.layers.", 13) == 0)
      CHECK_MSG(!strcmp(li.scheme, want_scheme), "%s: %s is %s, want %s", label, li.name, li.scheme, want_scheme);
  }
  CHECK_MSG(n_quant > 0, "%s: no quantized layer", label);
  CHECK(mq_model_export_float(m, f, &err) == MQ_OK);
  mq_model_free(m);
  float *lq = logits_of(q, &err), *lf = logits_of(f, &err);
  CHECK_MSG(lq && lf, "%s: %s", label, err.msg);
  if (lq && lf) {
    double worst = 0;
    for (int i = 0; i < 12 * 256; i++) worst = fmax(worst, fabs((double)lq[i] - lf[i]));
    CHECK_MSG(worst < 1e-4, "%s: quantized vs dequantized-float logits differ by %g", label, worst);
    printf("%-40s max |logit diff| vs dequantized float: %.2g\n", label, worst);
  }
  free(lq);
  free(lf);
  mqt_rm_tree(q);
  mqt_rm_tree(f);
}

/* The dequantized export does not depend on the compute layout: ModelSlim
 * W8A8 (static; its bias is folded into quant_bias and unfolded from the
 * codes) exported from S8 tiles equals the export from the row layout. */
static void export_layouts(void) {
  char src[512], q[600], f0[600], f1[600], p0[700], p1[700];
  snprintf(src, sizeof src, "%s/tiny-qwen2", MQ_TEST_DATA);
  snprintf(q, sizeof q, "%s/w8a8", g_tmp);
  snprintf(f0, sizeof f0, "%s/w8a8-x8", g_tmp);
  snprintf(f1, sizeof f1, "%s/w8a8-rows", g_tmp);
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  o.format = MQ_QFORMAT_MS_W8A8, o.src = src, o.dst = q, o.seed = 7;
  mq_err err = {0};
  CHECK_MSG(mq_quantize_checkpoint(&o, &err) == MQ_OK, "w8a8: %s", err.msg);
  for (int nr = 0; nr < 2; nr++) {
    mq_model_params mp = {0};
    mp.no_repack = nr;
    mq_model *m;
    CHECK_MSG(mq_model_load(q, &mp, &m, &err) == MQ_OK, "w8a8 load: %s", err.msg);
    mq_linear_info li;
    mq_model_linear(m, 0, &li);
    CHECK_MSG(!strcmp(li.layout, nr ? "rows" : "x8"), "%s: layout %s", li.name, li.layout);
    CHECK(mq_model_export_float(m, nr ? f1 : f0, &err) == MQ_OK);
    mq_model_free(m);
  }
  snprintf(p0, sizeof p0, "%s/model.safetensors", f0);
  snprintf(p1, sizeof p1, "%s/model.safetensors", f1);
  size_t n0 = 0, n1 = 0;
  char *b0 = NULL, *b1 = NULL;
  CHECK(mq_file_read(p0, (size_t)1 << 30, &b0, &n0, &err) == MQ_OK &&
        mq_file_read(p1, (size_t)1 << 30, &b1, &n1, &err) == MQ_OK);
  CHECK_MSG(b0 && b1 && n0 == n1 && memcmp(b0, b1, n0) == 0, "w8a8 exports from x8 and rows differ");
  free(b0), free(b1);
  mqt_rm_tree(q), mqt_rm_tree(f0), mqt_rm_tree(f1);
}

static mq_quantize_opts opts(mq_qformat fmt, int bits, int gs, int sym) {
  mq_quantize_opts o;
  mq_quantize_opts_default(&o);
  o.format = fmt, o.bits = bits, o.group_size = gs, o.sym = sym, o.seed = 7;
  return o;
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "%s/qm-%d", MQ_BUILD_DIR, (int)getpid());
  mkdir(g_tmp, 0777);
  mq_quantize_opts o;
  roundtrip("tiny-llama3", opts(MQ_QFORMAT_AWQ, 4, 32, -1), "W4A16", "awq g32 asym");
  roundtrip("tiny-qwen2", opts(MQ_QFORMAT_AWQ, 4, 64, 1), "W4A16", "awq sym (zero_point false), bias");
  roundtrip("tiny-llama3", opts(MQ_QFORMAT_GPTQ, 4, 32, 0), "W4A16", "gptq v1 asym");
  o = opts(MQ_QFORMAT_GPTQ, 4, 32, 1);
  o.desc_act = 1;
  roundtrip("tiny-llama3", o, "W4A16", "gptq v1 act-order");
  roundtrip("tiny-llama3", opts(MQ_QFORMAT_GPTQ, 3, 32, 0), "W3A16", "gptq 3-bit asym");
  roundtrip("tiny-llama3", opts(MQ_QFORMAT_GPTQ, 2, -1, 0), "W2A16", "gptq 2-bit per-channel");
  roundtrip("tiny-qwen2", opts(MQ_QFORMAT_GPTQ_V2, 8, 32, 1), "W8A16", "gptq-v2 8-bit, bias");
  mq_qpacking packs[4] = {MQ_QPACKING_AUTO_GPTQ, MQ_QPACKING_AUTO_ROUND, MQ_QPACKING_GPTQMODEL,
                          MQ_QPACKING_AUTO_AWQ};
  for (int i = 0; i < 4; i++) {
    o = opts(MQ_QFORMAT_AUTOROUND, 4, 32, i == 1 ? 0 : 1);
    o.packing = packs[i];
    o.desc_act = packs[i] == MQ_QPACKING_GPTQMODEL;
    char label[64];
    snprintf(label, sizeof label, "auto-round packing %d", i);
    roundtrip("tiny-llama3", o, "W4A16", label);
  }
  roundtrip("tiny-llama3", opts(MQ_QFORMAT_CT_W4A16, 4, 32, 0), "W4A16", "ct-w4a16 asym");
  roundtrip("tiny-qwen2", opts(MQ_QFORMAT_CT_W8A16, 8, -1, 1), "W8A16", "ct-w8a16 channel, bias");
  o = opts(MQ_QFORMAT_CT_W4A16, 3, 32, 1);
  o.packing = MQ_QPACKING_CT_DENSE;
  roundtrip("tiny-llama3", o, "W3A16", "ct 3-bit dense");
  o = opts(MQ_QFORMAT_CT_W4A16, 4, 32, 1);
  o.desc_act = 1;
  roundtrip("tiny-llama3", o, "W4A16", "ct actorder");
  export_layouts();

  /* mixed: 8-bit MLP, float o_proj, in AutoRound extra_config and CT groups */
  mq_layer_bits lb[1] = {{".*mlp\\.", 8}};
  const char *ign[1] = {".*o_proj"};
  mq_qformat mixed[3] = {MQ_QFORMAT_AUTOROUND, MQ_QFORMAT_CT_W4A16, MQ_QFORMAT_GPTQ_V2};
  for (int i = 0; i < 3; i++) {
    o = opts(mixed[i], 4, 32, 1);
    o.layer_bits = lb, o.n_layer_bits = 1, o.ignore = ign, o.n_ignore = 1;
    char label[64];
    snprintf(label, sizeof label, "mixed format %d", (int)mixed[i]);
    roundtrip("tiny-llama3", o, NULL, label);
    /* and the plan is what the settings say */
    char src[512], q[600];
    snprintf(src, sizeof src, "%s/tiny-llama3", MQ_TEST_DATA);
    snprintf(q, sizeof q, "%s/mix", g_tmp);
    o.src = src, o.dst = q;
    mq_err err = {0};
    mq_model *m;
    CHECK(mq_quantize_checkpoint(&o, &err) == MQ_OK && mq_model_load(q, NULL, &m, &err) == MQ_OK);
    for (int j = 0; j < mq_model_n_linears(m); j++) {
      mq_linear_info li;
      mq_model_linear(m, j, &li);
      const char *want = strstr(li.name, "o_proj") || !strcmp(li.name, "lm_head") ? "FLOAT"
                         : strstr(li.name, "mlp.") ? "W8A16" : "W4A16";
      CHECK_MSG(!strcmp(li.scheme, want), "mixed %d: %s is %s, want %s", i, li.name, li.scheme, want);
    }
    mq_model_free(m);
    mqt_rm_tree(q);
  }

  /* fused shards with different schemes: refused, naming both */
  char src[512], q[600];
  snprintf(src, sizeof src, "%s/tiny-llama3", MQ_TEST_DATA);
  snprintf(q, sizeof q, "%s/bad", g_tmp);
  mq_layer_bits kb[1] = {{".*k_proj", 8}};
  o = opts(MQ_QFORMAT_GPTQ_V2, 4, 32, 1);
  o.src = src, o.dst = q, o.layer_bits = kb, o.n_layer_bits = 1;
  mq_err err = {0};
  CHECK(mq_quantize_checkpoint(&o, &err) == MQ_OK);
  mq_model *m = NULL;
  CHECK(mq_model_load(q, NULL, &m, &err) == MQ_ERR_FORMAT);
  CHECK_MSG(strstr(err.msg, "q_proj") && strstr(err.msg, "k_proj") && strstr(err.msg, "W8A16"), "%s", err.msg);
  /* --quantization mismatch */
  mq_model_params mp;
  mq_model_params_default(&mp);
  mp.quantization = "awq";
  CHECK(mq_model_load(q, &mp, &m, &err) == MQ_ERR_ARG);
  mqt_rm_tree(q);
  rmdir(g_tmp);
  return mqt_report("quant_model");
}
