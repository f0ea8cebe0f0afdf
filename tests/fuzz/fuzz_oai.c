/* libFuzzer target: an HTTP request body of /v1/completions and
 * /v1/chat/completions through the server's checks — the nesting-depth guard,
 * jansson's strict parse, then mq_oai_parse (types, ranges, stop strings,
 * logit_bias, messages) — exactly the path a client's bytes take before any
 * model work. Any body must be accepted or refused with an error object. */
#include <jansson.h>
#include <stdint.h>

#include "fuzz_util.h"
#include "server/oai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (mq_oai_check_depth((const char *)data, size, 64) != 0) return 0;
  json_error_t jerr;
  json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
  if (!body) return 0;
  if (json_is_object(body))
    for (int chat = 0; chat < 2; chat++) {
      mq_oai_req r;
      mq_oai_err e;
      memset(&r, 0, sizeof r);
      memset(&e, 0, sizeof e);
      if (mq_oai_parse(body, chat, 512, &r, &e) == 0) {
        for (int i = 0; i < r.n_prompt_ids; i++) MQF_REQUIRE(r.prompt_ids[i] >= 0 && r.prompt_ids[i] < 512);
      } else {
        json_t *ej = mq_oai_error_json(&e);
        MQF_REQUIRE(ej != NULL);
        json_decref(ej);
      }
      mq_oai_req_free(&r); /* the caller frees in both cases, as the server does */
    }
  json_decref(body);
  return 0;
}
