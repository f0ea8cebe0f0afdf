/* OpenAI-compatible request parsing and response building for `mixq serve`
 * (no HTTP here: JSON in, JSON out; see docs/server.md for the fields).
 *
 * Every field a client sends is type- and range-checked; a failure fills an
 * mq_oai_err with the HTTP status, OpenAI's error type, the offending
 * parameter and a message. Unknown fields are ignored. */
#ifndef MQ_SERVER_OAI_H
#define MQ_SERVER_OAI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

#define MQ_OAI_MAX_DEPTH 64      /* JSON nesting accepted in a request body */
#define MQ_OAI_MAX_MESSAGES 4096 /* chat messages per request */
#define MQ_OAI_MAX_BIAS 1024     /* logit_bias entries */

typedef struct mq_oai_err {
  int status;       /* HTTP status */
  const char *type; /* "invalid_request_error", ... (static) */
  char param[64];   /* "" when none */
  char msg[512];
  int n_prompt, n_ctx; /* exceed_context_size_error only */
} mq_oai_err;

/* Fill e; returns -1 (for `return mq_oai_fail(...)`). */
int mq_oai_fail(mq_oai_err *e, int status, const char *type, const char *param, const char *fmt,
                ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

typedef struct mq_oai_req {
  int chat; /* 1: /v1/chat/completions, 0: /v1/completions */
  int stream, include_usage;
  int max_tokens; /* -1: not given (until the context is full) */
  mq_sampler_params sp;
  char **stop; /* [n_stop] owned */
  int n_stop;
  int32_t *bias_id; /* [n_bias] owned */
  float *bias_val;
  int n_bias;
  /* completions: the prompt as text, or as token ids */
  char *prompt_text;
  size_t prompt_len;
  int32_t *prompt_ids;
  int n_prompt_ids;
  /* chat: the messages (role and content owned) */
  mq_chat_msg *msgs;
  int n_msgs;
} mq_oai_req;

/* Reject nesting deeper than max_depth before handing a body to jansson
 * (which recurses). 0: fine. */
int mq_oai_check_depth(const char *body, size_t len, int max_depth);

/* Parse a request body (already a JSON object) for /v1/completions (chat 0)
 * or /v1/chat/completions (chat 1). Token ids must be < n_vocab. 0 on
 * success (free r with mq_oai_req_free), -1 with e filled. */
int mq_oai_parse(const json_t *body, int chat, int n_vocab, mq_oai_req *r, mq_oai_err *e);
void mq_oai_req_free(mq_oai_req *r);

/* {"error":{"code":status,"message":...,"type":...,"param":...}} (+ n_prompt_tokens
 * and n_ctx for exceed_context_size_error). */
json_t *mq_oai_error_json(const mq_oai_err *e);

/* A JSON string of len bytes of UTF-8; "" (never NULL) if jansson refuses it. */
json_t *mq_oai_str(const char *s, size_t len);

#endif
