/* Text generation: the stop-string filter on hand-made pieces (stops split
 * across pieces, holdback, UTF-8 chunking, limits), then mq_generate on the
 * real stories260K model: greedy from "Once upon a time" equals llama.cpp's 64
 * ids and text; stop strings across token boundaries; n_predict, context end,
 * eval_last, callbacks; hot sampling never streams broken UTF-8 and ends at
 * EOS cleanly. The model part skips (77) without ../shared. */
#include <jansson.h>
#include <unistd.h>

#include "mixq.h"
#include "runtime/generate.h"
#include "test.h"

/* ---- UTF-8 check ---- */
static int utf8_ok(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    int l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!l || i + (size_t)l > n) return 0;
    uint32_t cp = l == 1 ? c : (uint32_t)(c & (0x7F >> l));
    for (int k = 1; k < l; k++) {
      if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
    }
    if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
      return 0;
    i += (size_t)l;
  }
  return 1;
}

/* ---- a collecting callback ---- */
typedef struct sink {
  char buf[65536];
  size_t n;
  int calls, bad_utf8, stop_after; /* stop_after > 0: return 1 on that call */
  int32_t ids[4096];
  int n_ids, stop_at_token; /* stop_at_token > 0: on_token returns 1 there */
} sink;

static int on_text(void *u, const char *t, size_t n) {
  sink *s = u;
  s->calls++;
  if (n == 0 || !utf8_ok(t, n)) s->bad_utf8++;
  if (s->n + n < sizeof s->buf) {
    memcpy(s->buf + s->n, t, n);
    s->n += n;
    s->buf[s->n] = 0;
  }
  return s->stop_after > 0 && s->calls == s->stop_after;
}

static int on_token(void *u, int32_t id) {
  sink *s = u;
  if (s->stop_at_token > 0 && s->n_ids + 1 == s->stop_at_token) return 1;
  if (s->n_ids < 4096) s->ids[s->n_ids++] = id;
  return 0;
}

/* ---- the stop-string filter alone ---- */
static int push_all(mq_textout *o, const char *const *pieces, int n) {
  for (int i = 0; i < n; i++) {
    int r = mq_textout_push(o, pieces[i], strlen(pieces[i]));
    if (r != MQ_TEXTOUT_MORE) return r;
  }
  return mq_textout_finish(o);
}

static void textout_case(const char *what, const char *const *stops, int n_stop,
                         const char *const *pieces, int n, int want_r, const char *want) {
  sink *s = calloc(1, sizeof *s);
  mq_textout o;
  mq_err err = {0};
  CHECK_MSG(mq_textout_init(&o, stops, n_stop, on_text, s, &err) == MQ_OK, "%s: %s", what, err.msg);
  int r = push_all(&o, pieces, n);
  CHECK_MSG(r == want_r, "%s: returned %d, want %d", what, r, want_r);
  CHECK_MSG(!strcmp(s->buf, want), "%s: emitted [%s], want [%s]", what, s->buf, want);
  CHECK(s->bad_utf8 == 0);
  mq_textout_free(&o);
  free(s);
}

static void test_textout(void) {
  const char *stop1[] = {"STOP"};
  const char *p1[] = {"Hel", "lo wo", "rld! S", "T", "OP here", "never"};
  textout_case("stop across pieces", stop1, 1, p1, 6, MQ_TEXTOUT_STOPPED, "Hello world! ");
  const char *p2[] = {"a ST", "OW b ", "STO"};
  textout_case("false start, tail at the end", stop1, 1, p2, 3, MQ_TEXTOUT_MORE, "a STOW b STO");
  const char *stop2[] = {"b c", "ab", ""};
  const char *p3[] = {"xa", "b c"};
  textout_case("earliest stop wins", stop2, 3, p3, 2, MQ_TEXTOUT_STOPPED, "x");
  const char *p4[] = {"no stops here"};
  textout_case("no stop strings", NULL, 0, p4, 1, MQ_TEXTOUT_MORE, "no stops here");
  const char *stop3[] = {"\xC3\xA9!"}; /* "é!" */
  const char *p5[] = {"caf\xC3\xA9", " ok caf\xC3\xA9", "!"};
  textout_case("UTF-8 stop", stop3, 1, p5, 3, MQ_TEXTOUT_STOPPED, "caf\xC3\xA9 ok caf");
  const char *stop4[] = {"\n\n", "User:"};
  const char *p6[] = {"line\n", "\nUser: hi"};
  textout_case("two stops, the first completes", stop4, 2, p6, 2, MQ_TEXTOUT_STOPPED, "line");

  /* holdback: text that may start a stop string waits; the rest goes out now */
  sink *s = calloc(1, sizeof *s);
  mq_textout o;
  mq_err err = {0};
  const char *stop5[] = {"<|end|>"};
  CHECK(mq_textout_init(&o, stop5, 1, on_text, s, &err) == MQ_OK);
  CHECK(mq_textout_push(&o, "answer <|e", 10) == MQ_TEXTOUT_MORE);
  CHECK(!strcmp(s->buf, "answer "));
  CHECK(mq_textout_push(&o, "x", 1) == MQ_TEXTOUT_MORE);
  CHECK(!strcmp(s->buf, "answer <|ex"));
  CHECK(mq_textout_push(&o, "<|en", 4) == MQ_TEXTOUT_MORE && !strcmp(s->buf, "answer <|ex"));
  CHECK(mq_textout_push(&o, "d|>tail", 7) == MQ_TEXTOUT_STOPPED && !strcmp(s->buf, "answer <|ex"));
  mq_textout_free(&o);

  /* a long piece goes through in chunks cut at character boundaries */
  memset(s, 0, sizeof *s);
  const char *stop6[] = {"zz"};
  CHECK(mq_textout_init(&o, stop6, 1, on_text, s, &err) == MQ_OK);
  static char big[30001];
  for (int i = 0; i < 10000; i++) memcpy(big + 3 * i, "\xE2\x82\xAC", 3); /* € x 10000 */
  CHECK(mq_textout_push(&o, big, 30000) == MQ_TEXTOUT_MORE);
  CHECK(mq_textout_finish(&o) == MQ_TEXTOUT_MORE);
  CHECK(s->n == 30000 && !memcmp(s->buf, big, 30000) && s->bad_utf8 == 0 && s->calls > 1);
  mq_textout_free(&o);

  /* the callback stops it */
  memset(s, 0, sizeof *s);
  s->stop_after = 1;
  CHECK(mq_textout_init(&o, NULL, 0, on_text, s, &err) == MQ_OK);
  CHECK(mq_textout_push(&o, "abc", 3) == MQ_TEXTOUT_CANCELLED);
  mq_textout_free(&o);
  free(s);

  /* limits */
  const char *many[MQ_MAX_STOP + 1];
  for (int i = 0; i <= MQ_MAX_STOP; i++) many[i] = "x";
  CHECK(mq_textout_init(&o, many, MQ_MAX_STOP + 1, NULL, NULL, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "stop strings") != NULL);
  static char longstop[MQ_MAX_STOP_LEN + 2];
  memset(longstop, 'a', MQ_MAX_STOP_LEN + 1);
  const char *ls[] = {longstop};
  CHECK(mq_textout_init(&o, ls, 1, NULL, NULL, &err) == MQ_ERR_ARG);
  const char *badu[] = {"ok", "\xC3("};
  CHECK(mq_textout_init(&o, badu, 2, NULL, NULL, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "stop string 1") && strstr(err.msg, "UTF-8"));
  CHECK(mq_textout_init(&o, NULL, 2, NULL, NULL, &err) == MQ_ERR_ARG);
}

/* ---- the real model ---- */
typedef struct golden {
  int32_t prompt[16], gen[64];
  int n_prompt, n_gen;
  char text[4096];
} golden;

static int load_golden(const char *path, golden *g) {
  json_t *j = json_load_file(path, 0, NULL);
  if (!j) return -1;
  json_t *p = json_object_get(j, "prompt_ids"), *q = json_object_get(j, "generated_ids");
  g->n_prompt = (int)json_array_size(p);
  g->n_gen = (int)json_array_size(q);
  if (g->n_prompt > 16 || g->n_gen > 64) return json_decref(j), -1;
  for (int i = 0; i < g->n_prompt; i++)
    g->prompt[i] = (int32_t)json_integer_value(json_array_get(p, i));
  for (int i = 0; i < g->n_gen; i++) g->gen[i] = (int32_t)json_integer_value(json_array_get(q, i));
  snprintf(g->text, sizeof g->text, "%s", json_string_value(json_object_get(j, "generated_text")));
  json_decref(j);
  return 0;
}

typedef struct env {
  mq_model *m;
  mq_tokenizer *tok, *eog_tok;
  int n_vocab;
} env;

/* A copy of the tokenizer folder whose generation_config.json lists [2, 1]
 * as end-of-generation ids. */
static mq_tokenizer *tokenizer_with_bos_eog(const char *dir) {
  char tmp[] = "/tmp/mqt_genXXXXXX", path[1200], src[1200];
  if (!mkdtemp(tmp)) return NULL;
  const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
  for (int k = 0; k < 3; k++) {
    snprintf(src, sizeof src, "%s/%s", dir, files[k]);
    snprintf(path, sizeof path, "%s/%s", tmp, files[k]);
    size_t n;
    void *buf = mqt_read(src, &n);
    FILE *f = fopen(path, "wb");
    if (buf && f) fwrite(buf, 1, n, f);
    if (f) fclose(f);
    free(buf);
  }
  snprintf(path, sizeof path, "%s/generation_config.json", tmp);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs("{\"bos_token_id\": 1, \"eos_token_id\": [2, 1]}\n", f);
    fclose(f);
  }
  mq_tokenizer *t = NULL;
  mq_err err = {0};
  if (mq_tokenizer_load(tmp, &t, &err) != MQ_OK) fprintf(stderr, "eog tokenizer: %s\n", err.msg);
  const char *all[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                       "generation_config.json"};
  for (int k = 0; k < 4; k++) {
    snprintf(path, sizeof path, "%s/%s", tmp, all[k]);
    remove(path);
  }
  rmdir(tmp);
  return t;
}

static mq_session *new_session(env *e, int n_ctx) {
  mq_session_params sp;
  mq_session_params_default(&sp);
  sp.n_ctx = n_ctx;
  sp.n_threads = 1; /* the model is tiny: threads would only add synchronisation */
  mq_session *s = NULL;
  mq_err err = {0};
  if (mq_session_init(e->m, &sp, &s, &err) != MQ_OK) {
    fprintf(stderr, "session: %s\n", err.msg);
    exit(1);
  }
  return s;
}

static mq_sampler *greedy(env *e) {
  mq_sampler_params p;
  mq_sampler_params_default(&p);
  p.temperature = 0;
  mq_sampler *smp = NULL;
  mq_err err = {0};
  mq_sampler_init(&p, e->n_vocab, &smp, &err);
  return smp;
}

/* One generation; returns its status and fills res and s. */
static int gen(env *e, int n_ctx, mq_sampler *smp, const int32_t *prompt, int n_prompt,
               mq_generate_params *gp, sink *s, mq_generate_result *res, int *pos_after) {
  mq_session *ses = new_session(e, n_ctx);
  gp->on_text = on_text;
  gp->on_token = on_token;
  gp->user = s;
  mq_err err = {0};
  int rc = mq_generate(ses, e->tok, smp, prompt, n_prompt, gp, res, &err);
  if (rc != MQ_OK && rc != MQ_ERR_RANGE) fprintf(stderr, "generate: %s\n", err.msg);
  if (pos_after) *pos_after = mq_session_pos(ses);
  mq_session_free(ses);
  return rc;
}

static void test_model(env *e, const golden *g) {
  sink *s = calloc(1, sizeof *s);
  mq_generate_result res;
  mq_generate_params gp;
  int pos;

  /* greedy == llama.cpp: 64 ids and their text */
  mq_sampler *smp = greedy(e);
  mq_generate_params_default(&gp);
  gp.n_predict = 64;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, &pos) == MQ_OK);
  CHECK(res.n_prompt == 5 && res.n_generated == 64 && s->n_ids == 64);
  int same = s->n_ids == g->n_gen;
  for (int i = 0; same && i < g->n_gen; i++) same = s->ids[i] == g->gen[i];
  CHECK_MSG(same, "greedy ids differ from llama.cpp's");
  CHECK_MSG(!strcmp(s->buf, g->text), "greedy text:\n got  [%s]\n want [%s]", s->buf, g->text);
  CHECK(res.finish == MQ_FINISH_LENGTH && !strcmp(res.finish_reason, "length"));
  CHECK(pos == 5 + 63); /* the last sampled token is not evaluated */
  CHECK(res.t_prompt_s > 0 && res.t_gen_s > 0 && s->bad_utf8 == 0);
  printf("  greedy: %d ids as llama.cpp; prompt %.1f ms, %d tokens in %.1f ms\n", s->n_ids,
         res.t_prompt_s * 1e3, res.n_generated, res.t_gen_s * 1e3);

  /* a stop string spanning tokens: text up to it, then nothing */
  const char *stops[] = {"ttle gi"};
  memset(s, 0, sizeof *s);
  mq_sampler_reset(smp);
  mq_generate_params_default(&gp);
  gp.n_predict = 64;
  gp.stop = stops;
  gp.n_stop = 1;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, NULL) == MQ_OK);
  CHECK(res.finish == MQ_FINISH_STOP && !strcmp(res.finish_reason, "stop"));
  CHECK_MSG(!strcmp(s->buf, ", there was a li"), "stop: [%s]", s->buf);
  CHECK(res.n_generated < 10);

  /* a stop string never completed: the held tail comes out at the end */
  const char *stops2[] = {"Lily's mom said no"};
  memset(s, 0, sizeof *s);
  mq_sampler_reset(smp);
  gp.stop = stops2;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, NULL) == MQ_OK);
  CHECK(res.finish == MQ_FINISH_LENGTH && !strcmp(s->buf, g->text));

  /* n_predict, and eval_last */
  memset(s, 0, sizeof *s);
  mq_sampler_reset(smp);
  mq_generate_params_default(&gp);
  gp.n_predict = 10;
  gp.eval_last = 1;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, &pos) == MQ_OK);
  CHECK(res.n_generated == 10 && s->n_ids == 10 && pos == 15 && res.finish == MQ_FINISH_LENGTH);
  char *want = NULL;
  mq_err err = {0};
  mq_tokenizer_decode(e->tok, g->gen, 10, MQ_DECODE_CONTINUE, &want, NULL, &err);
  CHECK_MSG(want && !strcmp(s->buf, want), "n_predict 10: [%s] vs [%s]", s->buf, want ? want : "");
  free(want);
  memset(s, 0, sizeof *s);
  gp.n_predict = 0;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, &pos) == MQ_OK);
  CHECK(res.n_generated == 0 && s->n == 0 && pos == 5 && res.finish == MQ_FINISH_LENGTH);

  /* the end of the context: stop cleanly, "length" */
  memset(s, 0, sizeof *s);
  mq_sampler_reset(smp);
  gp.n_predict = -1;
  gp.eval_last = 0;
  CHECK(gen(e, 20, smp, g->prompt, g->n_prompt, &gp, s, &res, &pos) == MQ_OK);
  CHECK(res.finish == MQ_FINISH_CONTEXT && !strcmp(res.finish_reason, "length"));
  CHECK(res.n_generated == 20 - 5 + 1 && pos == 20);
  same = 1;
  for (int i = 0; i < res.n_generated; i++) same &= s->ids[i] == g->gen[i];
  CHECK(same);
  /* a prompt that does not fit: MQ_ERR_RANGE, session untouched */
  int32_t longp[25];
  for (int i = 0; i < 25; i++) longp[i] = g->prompt[i % 5];
  memset(s, 0, sizeof *s);
  CHECK(gen(e, 20, smp, longp, 25, &gp, s, &res, &pos) == MQ_ERR_RANGE);
  CHECK(pos == 0 && s->n == 0);

  /* callbacks stop it */
  memset(s, 0, sizeof *s);
  s->stop_after = 2;
  gp.n_predict = 64;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, NULL) == MQ_OK);
  CHECK(res.finish == MQ_FINISH_CALLBACK && !strcmp(res.finish_reason, "stop") && s->calls == 2);
  memset(s, 0, sizeof *s);
  s->stop_at_token = 4;
  CHECK(gen(e, 512, smp, g->prompt, g->n_prompt, &gp, s, &res, NULL) == MQ_OK);
  CHECK(res.finish == MQ_FINISH_CALLBACK && res.n_generated == 3 && s->n_ids == 3);

  /* bad arguments */
  mq_session *ses = new_session(e, 64);
  CHECK(mq_generate(ses, e->tok, smp, g->prompt, 0, NULL, NULL, &err) == MQ_ERR_ARG);
  mq_sampler *wrong = NULL;
  mq_sampler_init(NULL, 100, &wrong, &err);
  CHECK(mq_generate(ses, e->tok, wrong, g->prompt, 5, NULL, NULL, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "sampler") != NULL);
  mq_sampler_free(wrong);
  mq_session_free(ses);
  mq_sampler_free(smp);

  /* hot sampling: byte-fallback tokens galore, yet every piece is whole
   * UTF-8; none runs past the context. stories260K was trained as llama2.c
   * does (BOS starts each story, no EOS), so a tokenizer whose
   * generation_config.json lists BOS among the eos ids makes runs end at an
   * end-of-generation token (not printed) */
  mq_tokenizer *plain_tok = e->tok;
  if (e->eog_tok) e->tok = e->eog_tok;
  int eos_runs = 0, pieces = 0, bytes = 0;
  for (uint64_t seed = 1; seed <= 12; seed++) {
    mq_sampler_params sp;
    mq_sampler_params_default(&sp);
    sp.temperature = seed <= 6 ? 2.5f : 0.8f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.seed = seed;
    mq_sampler *hot = NULL;
    mq_sampler_init(&sp, e->n_vocab, &hot, &err);
    memset(s, 0, sizeof *s);
    mq_generate_params_default(&gp);
    gp.n_predict = -1;
    CHECK(gen(e, 512, hot, g->prompt, g->n_prompt, &gp, s, &res, NULL) == MQ_OK);
    CHECK_MSG(s->bad_utf8 == 0, "seed %llu: %d pieces broke UTF-8", (unsigned long long)seed,
              s->bad_utf8);
    CHECK(utf8_ok(s->buf, s->n));
    CHECK(res.finish == MQ_FINISH_EOG || res.finish == MQ_FINISH_CONTEXT);
    if (res.finish == MQ_FINISH_EOG) {
      eos_runs++;
      CHECK(mq_tokenizer_is_eog(e->tok, s->ids[s->n_ids - 1]));
      CHECK(strstr(s->buf, "</s>") == NULL);
    }
    CHECK(res.n_prompt + res.n_generated <= 512 + 1);
    pieces += s->calls;
    bytes += (int)s->n;
    mq_sampler_free(hot);
  }
  CHECK(eos_runs > 0);
  e->tok = plain_tok;
  printf("  hot sampling: 12 runs, %d pieces, %d bytes, all well-formed; %d ended at EOS\n", pieces,
         bytes, eos_runs);
  free(s);
}

int main(void) {
  test_textout();
  char dir[1024], gj[1024];
  if (!mqt_shared("fixtures/stories260K/hf/config.json", dir, sizeof dir) ||
      !mqt_shared("fixtures/stories260K/golden/greedy_f32.json", gj, sizeof gj)) {
    mqt_report("generate (stop filter only)");
    if (mqt_fail) return 1;
    TEST_SKIP("../shared/fixtures not found (set MQ_SHARED_DIR)");
  }
  dir[strlen(dir) - strlen("/config.json")] = 0;
  golden g;
  CHECK(load_golden(gj, &g) == 0);
  env e = {0};
  mq_err err = {0};
  CHECK_MSG(mq_model_load(dir, NULL, &e.m, &err) == MQ_OK, "%s", err.msg);
  CHECK_MSG(mq_tokenizer_load(dir, &e.tok, &err) == MQ_OK, "%s", err.msg);
  if (e.m && e.tok) {
    mq_model_info info;
    mq_model_get_info(e.m, &info);
    e.n_vocab = info.n_vocab;
    /* the prompt as mixq tokenizes it is llama.cpp's */
    int32_t *ids = NULL;
    int n = 0;
    CHECK(mq_tokenizer_encode(e.tok, "Once upon a time", 16, 1, &ids, &n, &err) == MQ_OK);
    CHECK(n == g.n_prompt && !memcmp(ids, g.prompt, sizeof *ids * (size_t)n));
    free(ids);
    e.eog_tok = tokenizer_with_bos_eog(dir);
    CHECK(e.eog_tok && mq_tokenizer_is_eog(e.eog_tok, 1) && !mq_tokenizer_is_eog(e.tok, 1));
    test_model(&e, &g);
  }
  mq_tokenizer_free(e.eog_tok);
  mq_tokenizer_free(e.tok);
  mq_model_free(e.m);
  return mqt_report("generate");
}
