/* libFuzzer target: a chat template's Jinja source (the input) parsed and,
 * when accepted, rendered for a short conversation with and without the
 * generation prompt. Rendering has step, output and memory limits: any
 * template must end with text or a clean error. */
#include <stdint.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mq_err err = {0};
  mq_chat_template *t = NULL;
  int rc = mq_chat_template_parse((const char *)data, size, NULL, &t, &err);
  if (rc != MQ_OK) {
    MQF_REQUIRE_ERR(rc, err);
    return 0;
  }
  static const mq_chat_msg msgs[3] = {{"system", "Be brief."},
                                      {"user", "Hello {{ there }} <|im_start|>"},
                                      {"assistant", "Hi! \xc3\xa9\xe2\x82\xac"}};
  for (int gen = 0; gen < 2; gen++) {
    char *out = NULL;
    size_t len = 0;
    rc = mq_chat_template_apply(t, msgs, 3, gen, &out, &len, &err);
    if (rc == MQ_OK) MQF_REQUIRE(out != NULL && strlen(out) <= len); /* templates may hold NULs */
    else MQF_REQUIRE_ERR(rc, err);
    free(out);
  }
  mq_chat_template_free(t);
  return 0;
}
