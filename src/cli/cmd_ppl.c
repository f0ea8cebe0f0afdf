/* mixq ppl MODEL --file TEXT [--ctx N] [--base MODEL] [-t N] [--fast] [--cache-type f32|f16|q8_0]
 * Perplexity as llama.cpp's perplexity tool computes it: the text's tokens
 * are cut into consecutive chunks of N tokens, the first token of each chunk
 * replaced by BOS, every chunk evaluated from an empty context, and the
 * negative log-likelihood of the next token counted for the second half of
 * each chunk only (so every scored token sees at least N/2 tokens of
 * context). With --base, the same chunks are run through a second (e.g.
 * unquantized) model and the mean KL divergence KL(base || model) of the
 * next-token distributions and the top-1 agreement are reported too; the
 * base keeps an f32 KV cache, so `--base` the same model with --cache-type
 * f16 measures what the f16 cache alone changes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* log-softmax of logits at id, and the softmax into p (when p). */
static double log_prob(const float *lg, int n, int id, double *p) {
  double mx = lg[0], sum = 0;
  for (int i = 1; i < n; i++) mx = lg[i] > mx ? lg[i] : mx;
  for (int i = 0; i < n; i++) sum += exp(lg[i] - mx);
  if (p)
    for (int i = 0; i < n; i++) p[i] = exp(lg[i] - mx) / sum;
  return lg[id] - mx - log(sum);
}

static int argmax(const float *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++) b = v[i] > v[b] ? i : b;
  return b;
}

int mq_cmd_ppl(int argc, char **argv) {
  const char *model = NULL, *file = NULL, *base = NULL;
  int ctx = 128, threads = 0, fast = 0, kv_type = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
    else if ((!strcmp(argv[i], "--ctx") || !strcmp(argv[i], "-c")) && i + 1 < argc) ctx = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "--base") && i + 1 < argc) base = argv[++i];
    else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = mq_cli_int(argv[++i]);
    else if (!strcmp(argv[i], "--fast")) fast = 1;
    else if (!strcmp(argv[i], "--cache-type") && i + 1 < argc) kv_type = mq_cli_cache_type(argv[++i]);
    else if (argv[i][0] != '-' && !model) model = argv[i];
    else return mq_cli_fail("ppl: unexpected argument '%s'", argv[i]);
  }
  if (!model || !file || ctx < 4 || threads < 0 || kv_type < 0)
    return mq_cli_fail("usage: mixq ppl MODEL --file TEXT [--ctx N] [--base MODEL] [-t N] [--fast] "
                       "[--cache-type f32|f16|q8_0]");
  FILE *f = fopen(file, "rb");
  if (!f) return mq_cli_fail("%s: cannot open", file);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc(len > 0 ? (size_t)len + 1 : 1);
  if (!text || fread(text, 1, (size_t)(len > 0 ? len : 0), f) != (size_t)(len > 0 ? len : 0)) {
    fclose(f);
    free(text);
    return mq_cli_fail("%s: read failed", file);
  }
  fclose(f);
  mq_err err = {0};
  mq_model *m = NULL, *mb = NULL;
  mq_tokenizer *tok = NULL;
  mq_session *s = NULL, *sb = NULL;
  int32_t *ids = NULL;
  double *p = NULL, *pb = NULL;
  int n_ids = 0, rc = 1;
  if (mq_model_load(model, NULL, &m, &err) || mq_tokenizer_load(model, &tok, &err) ||
      mq_tokenizer_encode(tok, text, (size_t)len, 0, &ids, &n_ids, &err) ||
      (base && mq_model_load(base, NULL, &mb, &err))) {
    rc = mq_cli_fail("%s", err.msg);
    goto done;
  }
  mq_model_info info;
  mq_model_get_info(m, &info);
  if (mb) {
    mq_model_info ib;
    mq_model_get_info(mb, &ib);
    if (ib.n_vocab != info.n_vocab) {
      rc = mq_cli_fail("--base has %d tokens in its vocabulary, the model %d", ib.n_vocab, info.n_vocab);
      goto done;
    }
  }
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_ctx = ctx;
  sp.n_threads = threads;
  sp.fast_a16 = fast;
  mq_session_params spb = sp; /* the base: an f32 cache */
  sp.kv_type = kv_type;
  if (mq_session_init(m, &sp, &s, &err) || (mb && mq_session_init(mb, &spb, &sb, &err))) {
    rc = mq_cli_fail("%s", err.msg);
    goto done;
  }
  int n_chunks = n_ids / ctx;
  if (n_chunks < 1) {
    rc = mq_cli_fail("%s: %d tokens, fewer than one chunk of %d", file, n_ids, ctx);
    goto done;
  }
  int32_t bos = mq_tokenizer_bos(tok);
  p = malloc((size_t)info.n_vocab * sizeof(double));
  pb = malloc((size_t)info.n_vocab * sizeof(double));
  double nll = 0, kl = 0;
  long scored = 0, agree = 0;
  int32_t *chunk = malloc((size_t)ctx * sizeof(int32_t));
  for (int c = 0; c < n_chunks; c++) {
    memcpy(chunk, ids + (size_t)c * ctx, (size_t)ctx * sizeof(int32_t));
    if (bos >= 0) chunk[0] = bos;
    mq_session_truncate(s, 0, NULL);
    if (mq_session_eval(s, chunk, ctx, 1, &err)) break;
    const float *lg = mq_session_logits(s, NULL), *lb = NULL;
    if (sb) {
      mq_session_truncate(sb, 0, NULL);
      if (mq_session_eval(sb, chunk, ctx, 1, &err)) break;
      lb = mq_session_logits(sb, NULL);
    }
    for (int t = ctx / 2; t < ctx - 1; t++) {
      const float *row = lg + (size_t)t * info.n_vocab;
      int32_t next = ids[(size_t)c * ctx + t + 1];
      nll -= log_prob(row, info.n_vocab, next, lb ? p : NULL);
      scored++;
      if (lb) {
        const float *rb = lb + (size_t)t * info.n_vocab;
        log_prob(rb, info.n_vocab, next, pb);
        double k = 0;
        for (int v = 0; v < info.n_vocab; v++)
          if (pb[v] > 0) k += pb[v] * (log(pb[v]) - log(p[v] > 1e-300 ? p[v] : 1e-300));
        kl += k;
        agree += argmax(row, info.n_vocab) == argmax(rb, info.n_vocab);
      }
    }
    fprintf(stderr, "\r[%d/%d] ppl %.4f", c + 1, n_chunks, exp(nll / (double)scored));
  }
  free(chunk);
  fprintf(stderr, "\n");
  if (err.code) {
    rc = mq_cli_fail("%s", err.msg);
    goto done;
  }
  printf("method: %d chunks of %d tokens (%d of %d tokens used), BOS first, second half of each "
         "chunk scored (%ld tokens)%s\n",
         n_chunks, ctx, n_chunks * ctx, n_ids, scored, fast ? ", fast A16 path" : "");
  printf("perplexity: %.4f\n", exp(nll / (double)scored));
  if (mb) printf("vs base: mean KL %.6f, top-1 agreement %.4f\n", kl / (double)scored, (double)agree / (double)scored);
  rc = 0;
done:
  free(p);
  free(pb);
  free(ids);
  free(text);
  mq_session_free(s);
  mq_session_free(sb);
  mq_tokenizer_free(tok);
  mq_model_free(m);
  mq_model_free(mb);
  return rc;
}
