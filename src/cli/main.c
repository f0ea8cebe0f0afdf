#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "mixq %s — run offline-quantized LLM checkpoints on CPUs\n"
          "\n"
          "usage: mixq COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  inspect MODEL [--json]            method, architecture and every layer's scheme\n"
          "  logits MODEL --tokens 1,2,3 --out FILE [--last] [-t N]\n"
          "                                    write float32 logits [n_tokens, vocab]\n"
          "  make-tiny DIR [--arch llama|qwen2|qwen3|qwen3_moe] [--dtype f32|f16|bf16] [--seed N]\n"
          "            [--shape tiny|small|tinyllama-1.1b|qwen3-moe-1b]\n"
          "                                    write a small random float checkpoint\n"
          "  quantize SRC DST --format F [...]  awq gptq gptq-v2 auto-round ct-w4a16 ct-w8a16 ct-w8a8\n"
          "                                    ct-w4a8 modelslim-{w8a8,w8a8-dynamic,w4a4,w4a8,mxfp8,w8a16}\n"
          "                                    gguf-{f32,f16,bf16,q8_0,q4_0,q4_k_m} (DST.gguf)\n"
          "                                    round-to-nearest quantized copy of a float checkpoint\n"
          "  bench MODEL [-p 128] [-n 64] [-t N] [-r 3] [--exact] [--json]\n"
          "  bench --synthetic SHAPE --format F [...]  the same on a random model built first\n"
          "                                    prompt / generation tokens/s vs the memory roofline\n"
          "  ppl MODEL --file TEXT [--ctx N] [--base MODEL]\n"
          "                                    perplexity (llama.cpp's method); KL vs a base model\n"
          "  dequantize MODEL DST              write MODEL with every quantized layer as F32\n"
          "  run MODEL -p TEXT [-n N] [--temp T] [--chat | -i] [...]\n"
          "                                    generate text, streamed to stdout (run --help)\n"
          "  tokenize MODEL [TEXT] [--no-bos]  print the token ids of TEXT (default: standard input)\n"
          "  detokenize MODEL ID...            print the text of token ids\n"
          "  serve MODEL [--port 8080] [--parallel N] [...]  OpenAI-compatible HTTP server\n"
          "  version                           print the version\n"
          "\n"
          "MODEL is a Hugging Face checkpoint directory (config.json + *.safetensors).\n",
          MIXQ_VERSION);
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

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
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
