/* libFuzzer target: the GGUF reader (mq_gguf_parse on the input buffer).
 * On success: every key/value read back through the typed getters and the
 * element accessors, every tensor inside the buffer, the first row of each
 * tensor of a computed type dequantized and dotted with a quantized
 * activation (the block kernels reading fuzzed block bytes), the tokenizer
 * built from tokenizer.ggml.* (mq_tokenizer_from_gguf) encoding and
 * decoding, and the file loaded as a model (mq_model_load of a .gguf) and,
 * when it loads, evaluated. */
#include <stdint.h>

#include "fuzz_model.h"
#include "io/gguf.h"
#include "quant/gguf_blocks.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROW 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mq_gguf_file f;
  mq_err err = {0};
  int rc = mq_gguf_parse(data, size, "fuzz.gguf", &f, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    return 0;
  }
  volatile uint64_t sink = 0;
  const uint8_t *end = data + size;
  for (int i = 0; i < f.n_kv; i++) {
    const mq_gguf_kv *kv = &f.kvs[i];
    MQF_REQUIRE(mq_gguf_find_kv(&f, kv->key) == kv);
    MQF_REQUIRE(mq_gguf_vtype_name(kv->type) != NULL);
    uint32_t u32;
    int32_t i32;
    uint64_t u64, sl;
    float f32;
    int b;
    const char *s;
    const mq_gguf_kv *arr;
    mq_err e2;
    (void)mq_gguf_get_u32(&f, kv->key, &u32, &e2);
    (void)mq_gguf_get_i32(&f, kv->key, &i32, &e2);
    (void)mq_gguf_get_u64(&f, kv->key, &u64, &e2);
    (void)mq_gguf_get_f32(&f, kv->key, &f32, &e2);
    (void)mq_gguf_get_bool(&f, kv->key, &b, &e2);
    if (mq_gguf_get_str(&f, kv->key, &s, &sl, &e2) == MQ_OK) {
      MQF_REQUIRE((const uint8_t *)s >= data && (const uint8_t *)s + sl <= end);
      if (sl) sink += (uint8_t)s[0] + (uint8_t)s[sl - 1];
    }
    (void)mq_gguf_get_arr(&f, kv->key, MQ_GGUF_VTYPE_COUNT, &arr, &e2);
    uint64_t n = kv->count < 4096 ? kv->count : 4096;
    for (uint64_t j = 0; j < n; j++) {
      int64_t iv;
      float fv;
      if (mq_gguf_arr_int(kv, j, &iv) == 0) sink += (uint64_t)iv;
      if (mq_gguf_arr_f32(kv, j, &fv) == 0) sink += (uint64_t)(fv == fv);
      const char *str = mq_gguf_arr_str(kv, j, &sl);
      if (str) {
        MQF_REQUIRE((const uint8_t *)str >= data && (const uint8_t *)str + sl <= end);
        if (sl) sink += (uint8_t)str[sl - 1];
      }
    }
  }
  static float row[MAX_ROW], x[MAX_ROW];
  static uint8_t act[MAX_ROW * 4 + 1024];
  for (int i = 0; i < f.n_tensors; i++) {
    const mq_gguf_tensor *t = &f.tensors[i];
    MQF_REQUIRE(mq_gguf_find_tensor(&f, t->name) == t);
    MQF_REQUIRE(t->n_dims >= 0 && t->n_dims <= MQ_GGUF_MAX_DIMS);
    MQF_REQUIRE(t->data >= data && t->data + t->nbytes <= end);
    char sh[64];
    mq_gguf_shape_str(t, sh, sizeof sh);
    (void)mq_ggml_type_name(t->type);
    if (t->nbytes) sink += t->data[0] + t->data[t->nbytes - 1];
    int64_t n = t->ne[0];
    if (t->n_elems == 0 || n > MAX_ROW || !mq_ggml_type_supported(t->type)) continue;
    int64_t rs = mq_ggml_row_size(t->type, n);
    MQF_REQUIRE(rs >= 0 && (uint64_t)rs <= t->nbytes);
    if (mq_gguf_dequant_row(t->type, t->data, row, n) == MQ_OK) sink += (uint64_t)(row[0] == row[0]);
    int64_t as = mq_gguf_act_size(t->type, n);
    if (as < 0 || (size_t)as > sizeof act) continue;
    for (int64_t k = 0; k < n; k++) x[k] = (float)((k * 37) % 17) - 8.0f;
    if (mq_gguf_quantize_act(t->type, x, act, n) == MQ_OK) {
      float d = mq_gguf_vec_dot(t->type, n, t->data, act);
      sink += (uint64_t)(d == d);
    }
  }
  (void)sink;
  mq_tokenizer *tok = NULL;
  rc = mq_tokenizer_from_gguf(&f, &tok, &err);
  if (rc == MQ_OK) {
    static const char k_text[] = "Hello world! <s> </s> \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \xff 123";
    mqf_tok_roundtrip(tok, k_text, sizeof k_text - 1, 1, NULL, NULL);
    mqf_tok_roundtrip(tok, (const char *)data + size / 2, size - size / 2 < 64 ? size - size / 2 : 64, 0,
                      NULL, NULL);
    mq_tokenizer_free(tok);
  } else {
    MQF_REQUIRE_ERR(rc, err);
  }
  mq_gguf_close(&f);
  /* the model loader reads the same bytes from a file */
  static char dir[512], path[600];
  if (!dir[0]) {
    mqf_dir("gguf", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
  }
  mqf_write(dir, "model.gguf", data, size);
  mqf_load_and_run(path);
  return 0;
}
