/* libFuzzer target: tokenizer.json text -> the Hugging Face tokenizer loader
 * (mq_tokenizer_load on a scratch folder holding it), then, when it loads:
 * vocabulary queries, and encode / decode / streaming decode of a fixed
 * text and of the first bytes of the input. */
#include <stdint.h>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char k_text[] =
    "Hello world! <s> </s> <|endoftext|> <|im_start|>user\n  tabs\tand 123 4567 don't "
    "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xff\xfe bad";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[512];
  if (!dir[0]) mqf_dir("tok", dir, sizeof dir);
  mqf_write(dir, "tokenizer.json", data, size);
  mq_tokenizer *t = NULL;
  mq_err err = {0};
  int rc = mq_tokenizer_load(dir, &t, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    MQF_REQUIRE(t == NULL);
    return 0;
  }
  int nv = mq_tokenizer_n_vocab(t);
  MQF_REQUIRE(nv >= 1);
  int32_t bos = mq_tokenizer_bos(t), eos = mq_tokenizer_eos(t);
  MQF_REQUIRE(bos >= -1 && bos < nv && eos >= -1 && eos < nv);
  /* pieces of a bounded sample of ids, and ids outside the vocabulary */
  for (int32_t id = -2; id < nv && id < 512; id++) {
    size_t pl = 0;
    const char *p = mq_tokenizer_piece(t, id, &pl);
    MQF_REQUIRE((id < 0) == (p == NULL));
    (void)mq_tokenizer_is_eog(t, id);
    (void)mq_tokenizer_is_special(t, id);
  }
  MQF_REQUIRE(mq_tokenizer_piece(t, nv, NULL) == NULL);
  mqf_tok_roundtrip(t, k_text, sizeof k_text - 1, 0, NULL, NULL);
  mqf_tok_roundtrip(t, k_text, sizeof k_text - 1, 1, NULL, NULL);
  mqf_tok_roundtrip(t, (const char *)data, size < 200 ? size : 200, 1, NULL, NULL);
  /* decoding ids that are not what an encode gives, including bad ones */
  int32_t ids[6] = {0, nv - 1, nv / 2, bos, eos, nv};
  char *text = NULL;
  rc = mq_tokenizer_decode(t, ids, 5, 0, &text, NULL, &err);
  if (rc == MQ_OK) free(text);
  else MQF_REQUIRE_ERR(rc, err);
  rc = mq_tokenizer_decode(t, ids, 6, 0, &text, NULL, &err); /* ids[5] = nv is out of range */
  MQF_REQUIRE(rc == MQ_ERR_RANGE && err.code == rc);
  mq_tokenizer_free(t);
  return 0;
}
