/* mixq logits MODEL --tokens 1,5,9 --out FILE [--last] [-t N]
 * Writes float32 little-endian logits, row-major [n_tokens, vocab] (one row
 * with --last), and prints the shape. A stable interface for golden tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int parse_tokens(const char *s, int32_t **out, int *n) {
  int cap = 16;
  *n = 0;
  *out = malloc((size_t)cap * sizeof(int32_t));
  if (!*out) return -1;
  while (*s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno || v < 0 || v > INT32_MAX) return -1;
    if (*n == cap) {
      int32_t *nn = realloc(*out, (size_t)(cap *= 2) * sizeof(int32_t));
      if (!nn) return -1;
      *out = nn;
    }
    (*out)[(*n)++] = (int32_t)v;
    s = end;
    if (*s == ',') s++;
    else if (*s) return -1;
  }
  return *n > 0 ? 0 : -1;
}

int mq_cmd_logits(int argc, char **argv) {
  const char *model = NULL, *toks = NULL, *outp = NULL;
  mq_model_params mp;
  mq_model_params_default(&mp);
  int last = 0, threads = 0, fast = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tokens") && i + 1 < argc) toks = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) outp = argv[++i];
    else if (!strcmp(argv[i], "--last")) last = 1;
    else if (!strcmp(argv[i], "--quantization") && i + 1 < argc) mp.quantization = argv[++i];
    else if (!strcmp(argv[i], "--numerics") && i + 1 < argc) {
      const char *v = argv[++i];
      if (!strcmp(v, "exact")) mp.numerics = MQ_NUMERICS_EXACT;
      else if (!strcmp(v, "npu")) mp.numerics = MQ_NUMERICS_NPU;
      else return mq_cli_fail("--numerics must be exact or npu, not '%s'", v);
    } else if (!strcmp(argv[i], "--fast")) fast = 1;
    else if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) && i + 1 < argc) {
      if ((threads = mq_cli_int(argv[++i])) < 0) return mq_cli_fail("bad thread count '%s'", argv[i]);
    } else if (argv[i][0] != '-' && !model) model = argv[i];
    else return mq_cli_fail("logits: unexpected argument '%s'", argv[i]);
  }
  if (!model || !toks || !outp)
    return mq_cli_fail("usage: mixq logits MODEL --tokens 1,2,3 --out FILE [--last] [-t N] [--quantization NAME] "
                       "[--numerics exact|npu] [--fast]");
  int32_t *tokens = NULL;
  int n = 0;
  if (parse_tokens(toks, &tokens, &n) != 0) {
    free(tokens);
    return mq_cli_fail("--tokens wants comma-separated non-negative ids, got '%s'", toks);
  }
  mq_err err = {0};
  mq_model *m = NULL;
  mq_session *s = NULL;
  int rc = 1;
  if (mq_model_load(model, &mp, &m, &err) != MQ_OK) goto fail;
  mq_model_info info;
  mq_model_get_info(m, &info);
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_threads = threads;
  sp.n_ctx = n;
  sp.fast_a16 = fast;
  if (mq_session_init(m, &sp, &s, &err) != MQ_OK) goto fail;
  if (mq_session_eval(s, tokens, n, !last, &err) != MQ_OK) goto fail;
  int rows;
  const float *lg = mq_session_logits(s, &rows);
  FILE *f = fopen(outp, "wb");
  if (!f) {
    rc = mq_cli_fail("%s: cannot create: %s", outp, strerror(errno));
    goto done;
  }
  size_t cnt = (size_t)rows * info.n_vocab;
  int ok = fwrite(lg, sizeof(float), cnt, f) == cnt;
  if (fclose(f) != 0 || !ok) {
    rc = mq_cli_fail("%s: write failed", outp);
    goto done;
  }
  printf("logits: [%d, %d] float32 -> %s\n", rows, info.n_vocab, outp);
  rc = 0;
  goto done;
fail:
  rc = mq_cli_fail("%s", err.msg);
done:
  mq_session_free(s);
  mq_model_free(m);
  free(tokens);
  return rc;
}
