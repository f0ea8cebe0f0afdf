/* mixq tokenize MODEL [TEXT] [--no-bos]   -> ids separated by spaces
 * mixq detokenize MODEL ID...             -> the text of the ids
 * For debugging and tests; TEXT is read from standard input when absent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static char *read_stdin(size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, stdin);
    n += got;
    if (got == 0) break;
    if (n == cap) {
      char *p = cap < ((size_t)1 << 30) ? realloc(buf, cap *= 2) : NULL;
      if (!p) {
        free(buf);
        return NULL;
      }
      buf = p;
    }
  }
  if (buf && ferror(stdin)) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

int mq_cmd_tokenize(int argc, char **argv) {
  const char *model = NULL, *text = NULL;
  int add_special = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-bos"))
      add_special = 0;
    else if (!model)
      model = argv[i];
    else if (!text)
      text = argv[i];
    else
      return mq_cli_fail("tokenize: unexpected argument '%s'", argv[i]);
  }
  if (!model) return mq_cli_fail("usage: mixq tokenize MODEL [TEXT] [--no-bos]");
  size_t len = 0;
  char *owned = NULL;
  if (!text) {
    if (!(owned = read_stdin(&len))) return mq_cli_fail("tokenize: cannot read standard input");
    text = owned;
  } else {
    len = strlen(text);
  }
  mq_err err = {0};
  mq_tokenizer *tok = NULL;
  int32_t *ids = NULL;
  int n = 0, rc = 0;
  if (mq_tokenizer_load(model, &tok, &err) != MQ_OK ||
      mq_tokenizer_encode(tok, text, len, add_special, &ids, &n, &err) != MQ_OK) {
    rc = mq_cli_fail("%s", err.msg);
  } else {
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
  }
  free(ids);
  free(owned);
  mq_tokenizer_free(tok);
  return rc;
}

int mq_cmd_detokenize(int argc, char **argv) {
  if (argc < 2) return mq_cli_fail("usage: mixq detokenize MODEL ID...");
  int n = argc - 2;
  int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
  if (!ids) return mq_cli_fail("out of memory");
  for (int i = 0; i < n; i++) {
    char *end;
    errno = 0;
    long v = strtol(argv[i + 2], &end, 10);
    if (end == argv[i + 2] || *end || errno || v < 0 || v > INT32_MAX) {
      free(ids);
      return mq_cli_fail("detokenize: '%s' is not a token id", argv[i + 2]);
    }
    ids[i] = (int32_t)v;
  }
  mq_err err = {0};
  mq_tokenizer *tok = NULL;
  char *text = NULL;
  size_t len = 0;
  int rc = 0;
  if (mq_tokenizer_load(argv[1], &tok, &err) != MQ_OK ||
      mq_tokenizer_decode(tok, ids, n, 0, &text, &len, &err) != MQ_OK) {
    rc = mq_cli_fail("%s", err.msg);
  } else {
    fwrite(text, 1, len, stdout);
    putchar('\n');
  }
  free(text);
  free(ids);
  mq_tokenizer_free(tok);
  return rc;
}
