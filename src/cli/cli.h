/* The `mixq` command: one function per subcommand. */
#ifndef MQ_CLI_H
#define MQ_CLI_H

#include "mixq.h"

int mq_cmd_logits(int argc, char **argv);
int mq_cmd_inspect(int argc, char **argv);
int mq_cmd_make_tiny(int argc, char **argv);
int mq_cmd_tokenize(int argc, char **argv);
int mq_cmd_detokenize(int argc, char **argv);
int mq_cmd_quantize(int argc, char **argv);
int mq_cmd_dequantize(int argc, char **argv);
int mq_cmd_run(int argc, char **argv);
int mq_cmd_bench(int argc, char **argv);
int mq_cmd_ppl(int argc, char **argv);
int mq_cmd_serve(int argc, char **argv);

/* Print "mixq: <msg>" to stderr; returns 1 (the exit status for errors). */
int mq_cli_fail(const char *fmt, ...);
/* Parse a non-negative int option value; -1 on error. */
int mq_cli_int(const char *s);
/* --cache-type: "f32", "f16", "q8_0" as mq_session_params.kv_type, else -1;
 * and the name of a type. */
int mq_cli_cache_type(const char *s);
const char *mq_cli_cache_name(int kv_type);

#endif
