#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Each command's synopsis lines and what it does, and how `COMMAND --help`
 * is answered. */
enum {
  HELP_HERE,  /* here, from the synopsis, when any argument asks */
  HELP_FIRST, /* the same, but only the first argument asks (tokenize's TEXT may be "-h") */
  HELP_OWN,   /* the command prints its full option list itself */
};
typedef struct {
  const char *name, *synopsis, *what;
  int help;
} command_help;

static const command_help k_commands[] = {
    {"inspect", "inspect MODEL [--json] [--quantization NAME]",
     "method, architecture and every layer's scheme", HELP_HERE},
    {"logits", "logits MODEL --tokens 1,2,3 --out FILE [--last] [--fast] [-t N]",
     "write float32 logits [n_tokens, vocab]", HELP_HERE},
    {"make-tiny",
     "make-tiny DIR [--arch llama|qwen2|qwen3|qwen3_moe] [--dtype f32|f16|bf16] [--seed N]\n"
     "          [--shape tiny|small|tinyllama-1.1b|qwen3-moe-1b]",
     "write a small random float checkpoint", HELP_HERE},
    {"quantize", "quantize SRC DST --format F [...]",
     "round-to-nearest quantized copy of a float checkpoint (quantize --help); F: awq\n"
     "gptq gptq-v2 auto-round ct-w4a16 ct-w8a16 ct-w8a8 ct-w4a8\n"
     "modelslim-{w8a8,w8a8-dynamic,w4a4,w4a8,mxfp8,w8a16}\n"
     "gguf-{f32,f16,bf16,q8_0,q4_0,q4_k_m} (DST.gguf)",
     HELP_OWN},
    {"bench",
     "bench MODEL [-p 128] [-n 64] [-d 0] [-t N] [-r 3] [--exact] [--cache-type f32|f16|q8_0] [--json]\n"
     "bench --synthetic SHAPE --format F [...]",
     "prompt / generation tokens/s vs the memory roofline (--synthetic: on a\n"
     "random model built first)",
     HELP_HERE},
    {"ppl", "ppl MODEL --file TEXT [--ctx N] [--base MODEL]",
     "perplexity (llama.cpp's method); KL vs a base model", HELP_HERE},
    {"dequantize", "dequantize MODEL DST", "write MODEL with every quantized layer as F32",
     HELP_HERE},
    {"run", "run MODEL -p TEXT [-n N] [--temp T] [--chat | -i] [...]",
     "generate text, streamed to stdout (run --help)", HELP_OWN},
    {"tokenize", "tokenize MODEL [TEXT] [--no-bos]",
     "print the token ids of TEXT (default: standard input)", HELP_FIRST},
    {"detokenize", "detokenize MODEL ID...", "print the text of token ids", HELP_FIRST},
    {"serve", "serve MODEL [--port 8080] [--parallel N] [...]",
     "OpenAI-compatible HTTP server (serve --help)", HELP_OWN},
    {"version", "version", "print the version", HELP_HERE},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof k_commands[0])

/* Text with each line after the first indented by `indent` spaces. */
static void put_indented(FILE *f, const char *text, int indent) {
  for (const char *p = text; *p; p++) {
    fputc(*p, f);
    if (*p == '\n') fprintf(f, "%*s", indent, "");
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "mixq %s — run offline-quantized LLM checkpoints on CPUs\n\nusage: mixq COMMAND "
          "[ARGS]\n\ncommands:\n",
          MIXQ_VERSION);
  for (int i = 0; i < N_COMMANDS; i++) {
    fputs("  ", f);
    put_indented(f, k_commands[i].synopsis, 2);
    fputs("\n      ", f);
    put_indented(f, k_commands[i].what, 6);
    fputc('\n', f);
  }
  fputs("\nMODEL is a Hugging Face checkpoint directory (config.json + *.safetensors) or a .gguf\n"
        "file. COMMAND --help prints one command's usage; docs/cli.md has every option.\n",
        f);
}

/* `mixq COMMAND --help` (or -h) for the commands answered here: the
 * synopsis on stdout; 1 when printed. argv[0] is the command. */
static int command_usage(int argc, char **argv) {
  for (int c = 0; c < N_COMMANDS; c++) {
    const command_help *h = &k_commands[c];
    if (strcmp(h->name, argv[0]) || h->help == HELP_OWN) continue;
    int asked = 0, last = h->help == HELP_FIRST && argc > 2 ? 2 : argc;
    for (int i = 1; i < last; i++) asked |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (!asked) return 0;
    fputs("usage: mixq ", stdout);
    put_indented(stdout, h->synopsis, 7);
    fputs("\n\n", stdout);
    put_indented(stdout, h->what, 0);
    fputs("\n(all options: docs/cli.md)\n", stdout);
    return 1;
  }
  return 0;
}

int mq_cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("mixq: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

int mq_cli_int(const char *s) {
  if (!s || !*s) return -1;
  char *end;
  long v = strtol(s, &end, 10);
  return (*end || v < 0 || v > INT_MAX) ? -1 : (int)v;
}

static const char *const k_cache_types[] = {"f32", "f16", "q8_0"}; /* by mq_kv_type */

int mq_cli_cache_type(const char *s) {
  for (int i = 0; s && i < 3; i++)
    if (!strcmp(s, k_cache_types[i])) return i;
  return -1;
}

const char *mq_cli_cache_name(int kv_type) {
  return kv_type >= 0 && kv_type < 3 ? k_cache_types[kv_type] : "?";
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (command_usage(argc - 1, argv + 1)) return 0;
  if (!strcmp(cmd, "logits")) return mq_cmd_logits(argc - 1, argv + 1);
  if (!strcmp(cmd, "inspect")) return mq_cmd_inspect(argc - 1, argv + 1);
  if (!strcmp(cmd, "make-tiny")) return mq_cmd_make_tiny(argc - 1, argv + 1);
  if (!strcmp(cmd, "tokenize")) return mq_cmd_tokenize(argc - 1, argv + 1);
  if (!strcmp(cmd, "detokenize")) return mq_cmd_detokenize(argc - 1, argv + 1);
  if (!strcmp(cmd, "quantize")) return mq_cmd_quantize(argc - 1, argv + 1);
  if (!strcmp(cmd, "dequantize")) return mq_cmd_dequantize(argc - 1, argv + 1);
  if (!strcmp(cmd, "run")) return mq_cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return mq_cmd_bench(argc - 1, argv + 1);
  if (!strcmp(cmd, "ppl")) return mq_cmd_ppl(argc - 1, argv + 1);
  if (!strcmp(cmd, "serve")) return mq_cmd_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("mixq %s\n", MIXQ_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  usage(stderr);
  return mq_cli_fail("unknown command '%s'", cmd) + 1;
}
