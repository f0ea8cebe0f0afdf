/* `mixq serve`: an OpenAI-compatible HTTP server on libmicrohttpd.
 *
 * Life cycle (src/cli/cmd_serve.c):
 *   mq_server_start   binds the socket; every endpoint but /health answers
 *                     503 "Loading model" until the model is attached
 *   mq_server_attach  hands over the loaded model and tokenizer, creates the
 *                     slots' sessions and starts the scheduler
 *   mq_server_stop    stops accepting, ends running requests with an error
 *                     event, joins every thread and frees the server
 * The model and tokenizer stay owned by the caller and must outlive the
 * server. See docs/server.md. */
#ifndef MQ_SERVER_SERVER_H
#define MQ_SERVER_SERVER_H

#include <stddef.h>

#include "mixq.h"

typedef struct mq_server_opts {
  const char *host;             /* numeric address or name; "127.0.0.1" */
  int port;                     /* 0: any free port (see mq_server_port) */
  const char *const *api_keys;  /* NULL/0: no key required */
  int n_api_keys;
  const char *alias;            /* model id in responses */
  int parallel;                 /* sequences decoded together (slots) */
  int queue;                    /* requests that may wait for a slot */
  int timeout_s;                /* idle connection timeout */
  int metrics;                  /* serve GET /metrics */
  size_t max_body;              /* request body limit in bytes */
  const char *chat_template;    /* built-in name, or NULL: the tokenizer's own */
  mq_session_params session;    /* n_ctx (per slot), n_threads, ... */
} mq_server_opts;

typedef struct mq_server mq_server;

int mq_server_start(const mq_server_opts *o, mq_server **out, mq_err *err);
int mq_server_port(const mq_server *s);
int mq_server_attach(mq_server *s, const mq_model *m, const mq_tokenizer *tok, mq_err *err);
void mq_server_stop(mq_server *s);

#endif
