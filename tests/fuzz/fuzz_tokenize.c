/* libFuzzer target: fixed real vocabularies encoding arbitrary input bytes,
 * then decoding (at once and streaming). The tokenizers are loaded once:
 * stories260K (SentencePiece BPE, byte fallback), GPT-2 (byte-level BPE)
 * and Llama-2 (SentencePiece, 32000 tokens) from ../shared/fixtures when
 * present, and a tiny hand-written one with added tokens (always).
 *
 * Properties: ids inside the vocabulary; decoded text well-formed UTF-8;
 * streaming equals one-shot decoding; and for well-formed UTF-8 input
 * without U+FFFD, decode(encode(x)) == x with the byte-level GPT-2
 * vocabulary (lossless by construction). */
#include <stdint.h>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char k_tiny[] =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":4,\"content\":\"<x>\",\"lstrip\":true,\"rstrip\":false,\"single_word\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":5,\"content\":\"<y>\",\"lstrip\":false,\"rstrip\":true,\"single_word\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":6,\"content\":\"cat\",\"lstrip\":false,\"rstrip\":false,\"single_word\":true,"
    "\"normalized\":true,\"special\":false}],"
    "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\","
    "\"add_prefix_space\":true,\"use_regex\":true},\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"?\",\"fuse_unk\":true,\"vocab\":{\"a\":0,\"b\":1,"
    "\"\\u0120\":2,\"ab\":3,\"c\":7,\"t\":8,\"?\":10},\"merges\":[\"a b\"]}}";

enum { N_TOK = 4 };
static mq_tokenizer *g_tok[N_TOK];
static int g_gpt2 = -1;

static mq_tokenizer *load_shared(const char *rel) {
  const char *root = getenv("MQ_SHARED_DIR");
  if (!root) root = MQ_SHARED_DIR_DEFAULT;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", root, rel);
  mq_tokenizer *t = NULL;
  mq_err err;
  if (mq_tokenizer_load(dir, &t, &err) != MQ_OK) {
    fprintf(stderr, "fuzz_tokenize: %s not used: %s\n", rel, err.msg);
    return NULL;
  }
  return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  char dir[512];
  mqf_dir("tiny", dir, sizeof dir);
  mqf_write(dir, "tokenizer.json", k_tiny, sizeof k_tiny - 1);
  mq_err err;
  int n = 0;
  if (mq_tokenizer_load(dir, &g_tok[n], &err) != MQ_OK) {
    fprintf(stderr, "fuzz_tokenize: tiny tokenizer: %s\n", err.msg);
    abort();
  }
  n++;
  if ((g_tok[n] = load_shared("fixtures/stories260K/hf"))) n++;
  if ((g_tok[n] = load_shared("fixtures/tokenizers/hf-gpt2"))) g_gpt2 = n++;
  if ((g_tok[n] = load_shared("fixtures/tokenizers/hf-llama2"))) n++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  /* lossless only where nothing can change the text: well-formed, no
   * U+FFFD already in it */
  int lossless = mqf_utf8_ok(data, size) && !memmem(data, size, "\xef\xbf\xbd", 3);
  for (int i = 0; i < N_TOK; i++) {
    if (!g_tok[i]) continue;
    char *dec = NULL;
    size_t dl = 0;
    mqf_tok_roundtrip(g_tok[i], text, size, (int)(size & 1), &dec, &dl);
    if (i == g_gpt2 && lossless && dec) {
      if (!(dl == size && memcmp(dec, text, size) == 0)) {
        fprintf(stderr, "gpt2: decode(encode(x)) != x (%zu vs %zu bytes)\n", dl, size);
        abort();
      }
    }
    free(dec);
  }
  return 0;
}
