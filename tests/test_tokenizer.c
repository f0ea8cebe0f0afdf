/* Tokenizers: golden ids from Hugging Face tokenizers (GPT-2, Llama-2) and
 * llama.cpp (stories260K), decode(encode(x)) == x, the vocabulary-array
 * constructor (GGUF path), streaming UTF-8, added tokens, long and hostile
 * inputs. Fixture-based parts SKIP when ../shared is absent. */
#include <jansson.h>
#include <unistd.h>

#include "test.h"
#include "vocab_vectors.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

/* Encode every string of inp without special tokens and compare with out;
 * also decode back. Returns the number of matching cases. */
static int run_golden(const mq_tokenizer *t, const char *name, const char *inp, const char *out,
                      int roundtrip) {
  char b1[512], b2[512];
  const char *pi = mqt_shared(inp, b1, sizeof b1), *po = mqt_shared(out, b2, sizeof b2);
  CHECK_MSG(pi && po, "%s: missing %s or %s", name, inp, out);
  if (!pi || !po) return 0;
  char **strs = NULL;
  size_t *lens = NULL, olen;
  int n = read_inp(pi, &strs, &lens);
  char *outs = mqt_read(po, &olen);
  CHECK(n > 0 && outs);
  if (n <= 0 || !outs) {
    free(outs);
    return 0;
  }
  int ok = 0, rt_ok = 0;
  char *line = outs;
  for (int i = 0; i < n && line; i++) {
    int32_t want[4096];
    int nw = parse_ids(line, want, 4096);
    char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
    int32_t *ids;
    int ni;
    mq_err err;
    int rc = mq_tokenizer_encode(t, strs[i], lens[i], 0, &ids, &ni, &err);
    CHECK_MSG(rc == MQ_OK, "%s[%d]: %s", name, i, err.msg);
    if (rc != MQ_OK) continue;
    if (same(ids, ni, want, nw))
      ok++;
    else {
      fprintf(stderr, "%s case %d mismatch for \"%s\"\n", name, i, strs[i]);
      print_ids("want", want, nw);
      print_ids("got ", ids, ni);
    }
    if (roundtrip) {
      char *txt;
      size_t tl;
      CHECK(mq_tokenizer_decode(t, ids, ni, 0, &txt, &tl, &err) == MQ_OK);
      if (tl == lens[i] && !memcmp(txt, strs[i], tl))
        rt_ok++;
      else
        fprintf(stderr, "%s case %d: decode gives \"%s\" for \"%s\"\n", name, i, txt, strs[i]);
      free(txt);
    }
    free(ids);
  }
  CHECK_MSG(ok == n, "%s: %d/%d golden cases match", name, ok, n);
  if (roundtrip) CHECK_MSG(rt_ok == n, "%s: %d/%d round trips", name, rt_ok, n);
  printf("%s: %d/%d golden, %d/%d round trip\n", name, ok, n, roundtrip ? rt_ok : 0,
         roundtrip ? n : 0);
  free(strs[0]);
  free(strs);
  free(lens);
  free(outs);
  return ok;
}

static mq_tokenizer *load_dir(const char *rel) {
  char buf[512];
  if (!mqt_shared(rel, buf, sizeof buf)) return NULL;
  *strrchr(buf, '/') = 0;
  mq_tokenizer *t = NULL;
  mq_err err;
  int rc = mq_tokenizer_load(buf, &t, &err);
  CHECK_MSG(rc == MQ_OK, "load %s: %s", buf, err.msg);
  return t;
}

/* stories260K: 30 cases with BOS (llama.cpp and HF tokenizers agree). */
static void run_stories(const mq_tokenizer *t, const char *name) {
  char b[512];
  const char *p = mqt_shared("fixtures/stories260K/golden/tokenizer_cases.json", b, sizeof b);
  json_error_t je;
  json_t *root = p ? json_load_file(p, 0, &je) : NULL;
  CHECK(root != NULL);
  if (!root) return;
  json_t *cases = json_object_get(root, "cases"), *c;
  size_t i;
  int ok = 0, rt = 0, n = (int)json_array_size(cases);
  json_array_foreach(cases, i, c) {
    const char *text = json_string_value(json_object_get(c, "text"));
    size_t tl = json_string_length(json_object_get(c, "text"));
    json_t *jids = json_object_get(c, "ids"), *x;
    int32_t want[512];
    int nw = 0;
    size_t k;
    json_array_foreach(jids, k, x) want[nw++] = (int32_t)json_integer_value(x);
    int32_t *ids;
    int ni;
    mq_err err;
    if (mq_tokenizer_encode(t, text, tl, 1, &ids, &ni, &err) != MQ_OK) {
      CHECK_MSG(0, "%s: %s", name, err.msg);
      continue;
    }
    if (same(ids, ni, want, nw))
      ok++;
    else {
      fprintf(stderr, "%s: mismatch for \"%s\"\n", name, text);
      print_ids("want", want, nw);
      print_ids("got ", ids, ni);
    }
    /* without the BOS the encoder added, decoding gives the text back, except
     * that a literal "▁" in the text is read as a space (as in SentencePiece) */
    char *d;
    size_t dl;
    CHECK(ni >= 1 && ids[0] == 1);
    int meta = strstr(text, "\xE2\x96\x81") != NULL;
    if (mq_tokenizer_decode(t, ids + 1, ni - 1, 0, &d, &dl, &err) == MQ_OK) {
      if (meta)
        rt += !strcmp(d, "x y   z") && !strcmp(text, "x\xE2\x96\x81y \xE2\x96\x81 z");
      else if (dl == tl && !memcmp(d, text, tl))
        rt++;
      else
        fprintf(stderr, "%s: decode gives \"%s\" for \"%s\"\n", name, d, text);
      free(d);
    }
    /* with it, skipping specials does too (when the text has no special text) */
    if (!strstr(text, "<s>") && !meta &&
        mq_tokenizer_decode(t, ids, ni, MQ_DECODE_SKIP_SPECIAL, &d, &dl, &err) == MQ_OK) {
      CHECK_MSG(dl == tl && !memcmp(d, text, tl), "%s: skip-special decode \"%s\"", name, d);
      free(d);
    }
    free(ids);
  }
  CHECK_MSG(ok == n && n == 30, "%s: %d/%d", name, ok, n);
  CHECK_MSG(rt == n, "%s: %d/%d round trips", name, rt, n);
  printf("%s: %d/%d golden, %d/%d round trip\n", name, ok, n, rt, n);
  json_decref(root);
}

/* GPT-2 rebuilt through mq_tokenizer_from_vocab from tokenizer.json's arrays
 * (what the GGUF reader will hand over), pre-tokenizer "gpt-2". */
static mq_tokenizer *gpt2_from_vocab(void) {
  char b[512];
  const char *p = mqt_shared("fixtures/tokenizers/hf-gpt2/tokenizer.json", b, sizeof b);
  json_error_t je;
  json_t *root = p ? json_load_file(p, 0, &je) : NULL;
  if (!root) return NULL;
  json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab");
  json_t *merges = json_object_get(model, "merges"), *v;
  int n = (int)json_object_size(vocab);
  const char **toks = calloc((size_t)n, sizeof *toks);
  int32_t *types = calloc((size_t)n, sizeof *types);
  const char *key;
  json_object_foreach(vocab, key, v) {
    toks[json_integer_value(v)] = key;
    types[json_integer_value(v)] = MQ_TOKTYPE_NORMAL;
  }
  types[50256] = MQ_TOKTYPE_CONTROL;
  int nm = (int)json_array_size(merges);
  const char **ms = malloc((size_t)nm * sizeof *ms);
  for (int i = 0; i < nm; i++) ms[i] = json_string_value(json_array_get(merges, (size_t)i));
  mq_vocab_desc d;
  mq_vocab_desc_init(&d);
  d.kind = MQ_VOCAB_KIND_BPE;
  d.pre = "gpt-2";
  d.n_tokens = n;
  d.tokens = toks;
  d.token_types = types;
  d.n_merges = nm;
  d.merges = ms;
  d.bos_id = d.eos_id = 50256;
  mq_tokenizer *t = NULL;
  mq_err err;
  int rc = mq_tokenizer_from_vocab(&d, &t, &err);
  CHECK_MSG(rc == MQ_OK, "gpt2 from vocab: %s", err.msg);
  free(toks);
  free(types);
  free(ms);
  json_decref(root);
  return t;
}

/* stories260K's tok512.bin (llama2.c format: scores and pieces) as a
 * SentencePiece vocabulary, as llama.cpp's converter put it into the GGUF. */
static mq_tokenizer *stories_from_tok512(void) {
  char b[512];
  const char *p = mqt_shared("fixtures/stories260K/llama2c/tok512.bin", b, sizeof b);
  size_t n;
  unsigned char *buf = p ? mqt_read(p, &n) : NULL;
  if (!buf) return NULL;
  enum { N = 512 };
  static char strs[N][64];
  const char *toks[N];
  float scores[N];
  int32_t types[N];
  size_t at = 4;
  for (int i = 0; i < N; i++) {
    int32_t len;
    memcpy(&scores[i], buf + at, 4);
    memcpy(&len, buf + at + 4, 4);
    at += 8;
    char tmp[64] = {0}, *o = strs[i];
    memcpy(tmp, buf + at, (size_t)len);
    at += (size_t)len;
    types[i] = MQ_TOKTYPE_NORMAL;
    if (i == 0)
      strcpy(o, "<unk>"), types[i] = MQ_TOKTYPE_UNKNOWN;
    else if (i == 1)
      strcpy(o, "<s>"), types[i] = MQ_TOKTYPE_CONTROL;
    else if (i == 2)
      strcpy(o, "</s>"), types[i] = MQ_TOKTYPE_CONTROL;
    else if (i < 259)
      snprintf(o, 64, "<0x%02X>", i - 3), types[i] = MQ_TOKTYPE_BYTE;
    else
      for (int k = 0; k < len; k++) { /* spaces back to "▁" */
        if (tmp[k] == ' ')
          memcpy(o, "\xE2\x96\x81", 3), o += 3;
        else
          *o++ = tmp[k];
      }
    toks[i] = strs[i];
  }
  free(buf);
  mq_vocab_desc d;
  mq_vocab_desc_init(&d);
  d.kind = MQ_VOCAB_KIND_SPM;
  d.n_tokens = N;
  d.tokens = toks;
  d.scores = scores;
  d.token_types = types;
  d.bos_id = 1, d.eos_id = 2, d.unk_id = 0;
  mq_tokenizer *t = NULL;
  mq_err err;
  CHECK_MSG(mq_tokenizer_from_vocab(&d, &t, &err) == MQ_OK, "tok512: %s", err.msg);
  return t;
}

static int enc(const mq_tokenizer *t, const char *s, size_t n, int sp, int32_t *out, int cap) {
  int32_t *ids;
  int ni;
  mq_err err;
  if (mq_tokenizer_encode(t, s, n, sp, &ids, &ni, &err) != MQ_OK) return -1;
  for (int i = 0; i < ni && i < cap; i++) out[i] = ids[i];
  free(ids);
  return ni;
}

static int roundtrips(const mq_tokenizer *t, const char *s, size_t n, const char *expect,
                      size_t en) {
  int32_t *ids;
  int ni;
  mq_err err;
  if (mq_tokenizer_encode(t, s, n, 0, &ids, &ni, &err) != MQ_OK) return 0;
  char *d;
  size_t dl;
  int ok = mq_tokenizer_decode(t, ids, ni, 0, &d, &dl, &err) == MQ_OK && dl == en &&
           !memcmp(d, expect, en);
  if (ok)
    free(d);
  else if (dl < 200)
    fprintf(stderr, "round trip gave \"%s\"\n", d), free(d);
  else
    free(d);
  free(ids);
  return ok;
}

static void test_utf8(void) {
  mq_bbuf o = {0};
  struct {
    const char *in, *out;
  } cases[] = {
      {"abc", "abc"},
      {"\xF0\x9F\x90\xB1", "\xF0\x9F\x90\xB1"},
      {"\xF0\x9F\x90"
       "A",
       "\xEF\xBF\xBD"
       "A"},
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xE2\x82", "\xEF\xBF\xBD"},
      {"\xFF"
       "a\xE2\x82\xAC",
       "\xEF\xBF\xBD"
       "a\xE2\x82\xAC"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    o.n = 0;
    CHECK(mq_utf8_sanitize(cases[i].in, strlen(cases[i].in), 0, &o) == 0);
    CHECK_MSG(o.n == strlen(cases[i].out) && !memcmp(o.p, cases[i].out, o.n), "utf8 case %zu", i);
  }
  o.n = 0; /* ByteFallback: one U+FFFD per byte */
  CHECK(mq_utf8_sanitize("\xE2\x82", 2, 1, &o) == 0 && o.n == 6);
  mq_bbuf_free(&o);
  for (int b = 0; b < 256; b++) CHECK(mq_bytelevel_byte(mq_bytelevel_char((unsigned char)b)) == b);
  CHECK(mq_bytelevel_char(' ') == 0x120 && mq_bytelevel_char('\n') == 0x10A);
}

/* Byte tokens of a 4-byte emoji, pushed one at a time: nothing until complete. */
static void test_stream(const mq_tokenizer *t) {
  mq_detok *d;
  mq_err err;
  CHECK(mq_detok_new(t, 0, &d, &err) == MQ_OK);
  const int32_t cat[4] = {243, 162, 147, 180}; /* <0xF0><0x9F><0x90><0xB1> */
  const char *s;
  size_t n;
  for (int i = 0; i < 3; i++) {
    CHECK(mq_detok_push(d, cat[i], &s, &n, &err) == MQ_OK);
    CHECK_MSG(n == 0, "partial emoji emitted %zu bytes after %d tokens", n, i + 1);
  }
  CHECK(mq_detok_push(d, cat[3], &s, &n, &err) == MQ_OK);
  CHECK(n == 4 && !memcmp(s, "\xF0\x9F\x90\xB1", 4));
  /* a broken sequence: two bytes of it, then text; one U+FFFD per byte token (ByteFallback) */
  CHECK(mq_detok_push(d, cat[0], &s, &n, &err) == MQ_OK && n == 0);
  CHECK(mq_detok_push(d, cat[1], &s, &n, &err) == MQ_OK && n == 0);
  CHECK(mq_detok_push(d, 261, &s, &n, &err) == MQ_OK); /* "▁a" */
  CHECK_MSG(n == 8 && !memcmp(s, "\xEF\xBF\xBD\xEF\xBF\xBD a", 8), "got %zu bytes", n);
  /* a dangling lead byte comes out at flush */
  CHECK(mq_detok_push(d, cat[0], &s, &n, &err) == MQ_OK && n == 0);
  mq_detok_flush(d, &s, &n);
  CHECK(n == 3 && !memcmp(s, "\xEF\xBF\xBD", 3));
  CHECK(mq_detok_push(d, 100000, &s, &n, &err) == MQ_ERR_RANGE);
  mq_detok_free(d);
  /* the first text token loses the space the encoder prepended, unless continuing */
  int32_t ids[2] = {403, 407}; /* "▁Once" "▁upon" */
  char *txt;
  size_t tl;
  CHECK(mq_tokenizer_decode(t, ids, 2, 0, &txt, &tl, &err) == MQ_OK && !strcmp(txt, "Once upon"));
  free(txt);
  CHECK(mq_tokenizer_decode(t, ids, 2, MQ_DECODE_CONTINUE, &txt, &tl, &err) == MQ_OK &&
        !strcmp(txt, " Once upon"));
  free(txt);
}

static void test_gpt2_units(const mq_tokenizer *t) {
  int32_t ids[64];
  const char s[] = "a<|endoftext|>b";
  int n = enc(t, s, sizeof s - 1, 0, ids, 64);
  CHECK(n == 3 && ids[0] == 64 && ids[1] == 50256 && ids[2] == 65);
  CHECK(mq_tokenizer_is_eog(t, 50256));
  CHECK(!mq_tokenizer_is_eog(t, 64));
  size_t pl;
  const char *pc = mq_tokenizer_piece(t, 220, &pl);
  CHECK(pc && pl == 1 && pc[0] == ' ');
  CHECK(mq_tokenizer_piece(t, -1, &pl) == NULL && mq_tokenizer_piece(t, 50257, &pl) == NULL);
  CHECK(mq_tokenizer_n_vocab(t) == 50257);
  /* ByteLevel stream: a 3-byte character split over two tokens is held back */
  n = enc(t, "\xE2\x82\xAC", 3, 0, ids, 64); /* € */
  CHECK(n >= 1);
  mq_detok *d;
  mq_err err;
  CHECK(mq_detok_new(t, 0, &d, &err) == MQ_OK);
  size_t total = 0, sl;
  const char *sp;
  for (int i = 0; i < n; i++) {
    CHECK(mq_detok_push(d, ids[i], &sp, &sl, &err) == MQ_OK);
    CHECK(sl == 0 || sl == 3);
    total += sl;
  }
  CHECK(total == 3);
  mq_detok_free(d);
}

static void test_llama2_units(const mq_tokenizer *t) {
  size_t pl;
  const char *p = mq_tokenizer_piece(t, 13, &pl); /* <0x0A> */
  CHECK(p && pl == 1 && p[0] == '\n');
  p = mq_tokenizer_piece(t, 15043, &pl); /* ▁Hello */
  CHECK(p && pl == 6 && !memcmp(p, " Hello", 6));
  CHECK(mq_tokenizer_bos(t) == 1 && mq_tokenizer_eos(t) == 2 && mq_tokenizer_is_eog(t, 2));
  int32_t ids[16];
  CHECK(enc(t, "Hi", 2, 1, ids, 16) >= 2 && ids[0] == 1); /* Llama default: add <s> */
}

/* A hand-written tokenizer.json exercising added-token flags. */
static const char *TINY_JSON =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":4,\"content\":\"<x>\",\"lstrip\":true,\"rstrip\":false,\"single_word\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":5,\"content\":\"<y>\",\"lstrip\":false,\"rstrip\":true,\"single_word\":false,"
    "\"normalized\":false,\"special\":true},"
    "{\"id\":6,\"content\":\"cat\",\"lstrip\":false,\"rstrip\":false,\"single_word\":true,"
    "\"normalized\":true,\"special\":false},"
    "{\"id\":9,\"content\":\"<x>>\",\"lstrip\":false,\"rstrip\":false,\"single_word\":false,"
    "\"normalized\":false,\"special\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<"
    "y>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<x>\",\"type_id\":0}}]"
    ","
    "\"special_tokens\":{\"<y>\":{\"id\":\"<y>\",\"ids\":[5],\"tokens\":[\"<y>\"]},\"<x>\":{\"id\":"
    "\"<x>\",\"ids\":[4],\"tokens\":[\"<x>\"]}}},"
    "\"decoder\":null,"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"?\",\"fuse_unk\":true,\"vocab\":{\"a\":0,\"b\":1,"
    "\" \":2,\"ab\":3,\"c\":7,\"t\":8,\"?\":10},"
    "\"merges\":[\"a b\"]}}";

static void write_file(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(s, 1, n, f);
  fclose(f);
}

/* Load a tokenizer from JSON text written to a temporary folder. */
static mq_tokenizer *from_json(const char *json) {
  char dir[] = "/tmp/mq_tok_XXXXXX", path[600];
  if (!mkdtemp(dir)) return NULL;
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  write_file(path, json, strlen(json));
  mq_tokenizer *t = NULL;
  mq_err err;
  int rc = mq_tokenizer_load(dir, &t, &err);
  CHECK_MSG(rc == MQ_OK, "from_json: %s", err.msg);
  unlink(path);
  rmdir(dir);
  return t;
}

static int enc_is(const mq_tokenizer *t, const char *s, const int32_t *want, int nw) {
  int32_t ids[64] = {0};
  int n = enc(t, s, strlen(s), 0, ids, 64);
  if (n == nw && !memcmp(ids, want, (size_t)n * sizeof *ids)) return 1;
  fprintf(stderr, "encode \"%s\":", s);
  print_ids("got", ids, n < 0 ? 0 : n);
  return 0;
}

/* Split behaviors, Metaspace, ByteLevel prefix space and NFC on tiny vocabularies. */
static void test_pipeline_units(void) {
  static const char *beh[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                              "Contiguous"};
  /* vocab: a 0, - 1, a- 2, -a 3, -- 4; merges a+- then -+a then -+- */
  static const int32_t want[5][4] = {{0, 0}, {0, 1, 1, 0}, {2, 1, 0}, {0, 1, 3}, {0, 4, 0}};
  static const int nwant[5] = {2, 4, 3, 3, 3};
  for (int b = 0; b < 5; b++) {
    char js[1024];
    snprintf(js, sizeof js,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"-\":1,\"a-\":2,\"-a\":3,\"--\":4},"
             "\"merges\":[\"a -\",\"- a\",\"- -\"]},\"pre_tokenizer\":{\"type\":\"Split\","
             "\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\",\"invert\":false}}",
             beh[b]);
    mq_tokenizer *t = from_json(js);
    if (!t) continue;
    CHECK_MSG(enc_is(t, "a--a", want[b], nwant[b]), "split behavior %s", beh[b]);
    mq_tokenizer_free(t);
  }
  /* Metaspace pre-tokenizer and decoder, prepend_scheme first */
  mq_tokenizer *t = from_json(
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\u2581\":0,\"a\":1,\"\u2581a\":2,\"b\":3,"
      "\"\u2581b\":4,\"<s>\":5},"
      "\"merges\":[\"\u2581 a\",\"\u2581 b\"]},"
      "\"added_tokens\":[{\"id\":5,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
      "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":"
      "\"first\",\"split\":true},"
      "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\","
      "\"split\":true}}");
  if (t) {
    static const int32_t w1[] = {2, 4}, w2[] = {5, 1, 4}, w3[] = {0, 2};
    CHECK(enc_is(t, "a b", w1, 2));
    CHECK(enc_is(t, "<s>a b", w2, 3)); /* "first": no prefix after the special token */
    CHECK(enc_is(t, " a", w3, 2));
    CHECK(roundtrips(t, "a b", 3, "a b", 3));
    CHECK(roundtrips(t, " a", 2, " a", 2));
    mq_tokenizer_free(t);
  }
  /* ByteLevel with add_prefix_space, NFC normalizer */
  t = from_json(
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\u0120\":0,\"a\":1,\"\u0120a\":2,\"\u00c3\":3,"
      "\"\u00a9\":4,\"\u00c3\u00a9\":5,"
      "\"e\":6,\"\u00cc\":7,\"\u0123\":8},\"merges\":[\"\u0120 a\",\"\u00c3 \u00a9\"]},"
      "\"normalizer\":{\"type\":\"NFC\"},"
      "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
      "\"decoder\":{\"type\":\"ByteLevel\"}}");
  if (t) {
    static const int32_t w1[] = {2}, w2[] = {0, 5}; /* " a"; " é" from e + U+0301 */
    CHECK(enc_is(t, "a", w1, 1));
    CHECK(enc_is(t, "e\xCC\x81", w2, 2));
    mq_tokenizer_free(t);
  }
}

static void test_added_and_errors(void) {
  char dir[] = "/tmp/mq_tok_XXXXXX", path[600];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  write_file(path, TINY_JSON, strlen(TINY_JSON));
  mq_tokenizer *t = NULL;
  mq_err err;
  CHECK_MSG(mq_tokenizer_load(dir, &t, &err) == MQ_OK, "tiny: %s", err.msg);
  if (t) {
    int32_t ids[32];
    int n = enc(t, "a <x>b", 6, 0, ids, 32); /* lstrip eats the space */
    CHECK(n == 3 && ids[0] == 0 && ids[1] == 4 && ids[2] == 1);
    n = enc(t, "<y> ab", 6, 0, ids, 32); /* rstrip eats it */
    CHECK(n == 2 && ids[0] == 5 && ids[1] == 3);
    n = enc(t, "a cat", 5, 0, ids, 32); /* a whole word */
    CHECK(n == 3 && ids[2] == 6);
    n = enc(t, "acat", 4, 0, ids, 32); /* inside a word: not matched */
    CHECK(n == 4 && ids[1] == 7 && ids[3] == 8);
    n = enc(t, "<x>>", 4, 0, ids, 32); /* longest match */
    CHECK(n == 1 && ids[0] == 9);
    n = enc(t, "ab", 2, 1, ids, 32); /* template: <y> A <x> */
    CHECK(n == 3 && ids[0] == 5 && ids[1] == 3 && ids[2] == 4);
    n = enc(t, "zzab", 4, 0, ids, 32); /* unknown characters fuse into one unk */
    CHECK(n == 2 && ids[0] == 10 && ids[1] == 3);
    mq_tokenizer_free(t);
  }
  /* every truncation of the file fails cleanly (or loads) and never crashes */
  size_t len = strlen(TINY_JSON);
  for (size_t k = 0; k < len; k += 7) {
    write_file(path, TINY_JSON, k);
    t = NULL;
    int rc = mq_tokenizer_load(dir, &t, &err);
    CHECK(rc == MQ_ERR_FORMAT || rc == MQ_ERR_IO);
    mq_tokenizer_free(t);
  }
  /* WordPiece is not supported: say so */
  const char *wp = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}";
  write_file(path, wp, strlen(wp));
  CHECK(mq_tokenizer_load(dir, &t, &err) == MQ_ERR_UNSUPPORTED && strstr(err.msg, "WordPiece"));
  /* a merge of tokens not in the vocabulary */
  const char *bm = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a q\"]}}";
  write_file(path, bm, strlen(bm));
  CHECK(mq_tokenizer_load(dir, &t, &err) == MQ_ERR_FORMAT && strstr(err.msg, "tokenizer.json"));
  /* a bad regex */
  const char *br = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                   "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                   "\"behavior\":\"Isolated\"}}";
  write_file(path, br, strlen(br));
  CHECK(mq_tokenizer_load(dir, &t, &err) == MQ_ERR_UNSUPPORTED);
  unlink(path);
  rmdir(dir);
  CHECK(mq_tokenizer_load("/nonexistent/dir", &t, &err) == MQ_ERR_IO);
  /* vocabulary arrays: unknown pre-tokenizer, bad merge */
  const char *toks[] = {"a", "b", "ab"};
  const char *merges[] = {"a b", "ab"};
  mq_vocab_desc d;
  mq_vocab_desc_init(&d);
  d.kind = MQ_VOCAB_KIND_BPE;
  d.n_tokens = 3;
  d.tokens = toks;
  d.n_merges = 1;
  d.merges = merges;
  d.pre = "no-such-pre";
  CHECK(mq_tokenizer_from_vocab(&d, &t, &err) == MQ_ERR_UNSUPPORTED);
  d.pre = "default";
  d.n_merges = 2;
  CHECK(mq_tokenizer_from_vocab(&d, &t, &err) == MQ_ERR_FORMAT);
  d.n_merges = 1;
  CHECK(mq_tokenizer_from_vocab(&d, &t, &err) == MQ_OK);
  int32_t ids[8];
  CHECK(enc(t, "ab", 2, 1, ids, 8) == 1 && ids[0] == 2);
  mq_tokenizer_free(t);
  for (int i = 0; mq_pretok_names[i]; i++) { /* every named pre-tokenizer compiles */
    d.pre = mq_pretok_names[i];
    int rc = mq_tokenizer_from_vocab(&d, &t, &err);
    CHECK_MSG(rc == MQ_OK, "pre %s: %s", d.pre, err.msg);
    if (rc == MQ_OK) {
      CHECK(enc(t, "ab ab 123 !!", 12, 0, ids, 8) > 0);
      /* 100 KB of white space and of mixed text through every preset's regexes */
      size_t n = 100 * 1024;
      char *big = malloc(n);
      for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) big[k] = pass ? "ab 12\n!,  \t"[k % 11] : " \n\t "[k % 4];
        int32_t *out;
        int no;
        CHECK_MSG(mq_tokenizer_encode(t, big, n, 0, &out, &no, &err) == MQ_OK, "pre %s: %s", d.pre,
                  err.msg);
        free(out);
      }
      free(big);
    }
    mq_tokenizer_free(t);
  }
}

/* 100 KB texts must encode (no timing assertion: quadratic code would hang). */
static void test_long_and_hostile(const mq_tokenizer *t, const char *name) {
  size_t n = 100 * 1024;
  char *s = malloc(n + 64);
  const char *chunk = "The quick brown fox, 12345 jumps! \xE2\x82\xAC\xF0\x9F\xA6\x99\n\t";
  size_t cl = strlen(chunk), k = 0;
  while (k + cl <= n) memcpy(s + k, chunk, cl), k += cl;
  CHECK_MSG(roundtrips(t, s, k, s, k), "%s: mixed 100 KB", name);
  memset(s, 'a', n);
  CHECK_MSG(roundtrips(t, s, n, s, n), "%s: one 100 KB word", name);
  memset(s, ' ', n);
  CHECK_MSG(roundtrips(t, s, n, s, n), "%s: 100 KB of spaces", name);
  for (size_t i = 0; i < n; i++) s[i] = (char)("ab1 .\xC3\xA9"[i % 7]);
  int32_t *ids;
  int ni;
  mq_err err;
  CHECK(mq_tokenizer_encode(t, s, n, 1, &ids, &ni, &err) == MQ_OK); /* may cut é: fine */
  free(ids);
  /* hostile: empty, NUL bytes, ill-formed UTF-8 */
  CHECK(mq_tokenizer_encode(t, "", 0, 0, &ids, &ni, &err) == MQ_OK && ni == 0);
  free(ids);
  CHECK(mq_tokenizer_encode(t, NULL, 0, 0, &ids, &ni, &err) == MQ_OK && ni == 0);
  free(ids);
  CHECK_MSG(roundtrips(t, "\0a\0\0b", 5, "\0a\0\0b", 5), "%s: NUL bytes", name);
  const char bad[] = "\xFF\xFE"
                     "abc\xC3";
  const char fixed[] = "\xEF\xBF\xBD\xEF\xBF\xBD"
                       "abc\xEF\xBF\xBD";
  CHECK_MSG(roundtrips(t, bad, sizeof bad - 1, fixed, sizeof fixed - 1), "%s: ill-formed UTF-8",
            name);
  for (int i = 0; i < 2000; i++) { /* random bytes */
    char r[32];
    for (int j = 0; j < 32; j++) r[j] = (char)mqt_rand();
    if (mq_tokenizer_encode(t, r, (size_t)(mqt_rand() % 32), (int)(mqt_rand() & 1), &ids, &ni,
                            &err) == MQ_OK) {
      char *d;
      size_t dl;
      CHECK(mq_tokenizer_decode(t, ids, ni, 0, &d, &dl, &err) == MQ_OK);
      free(d);
      free(ids);
    } else {
      CHECK(0);
    }
  }
  int32_t badid = -5;
  char *d;
  CHECK(mq_tokenizer_decode(t, &badid, 1, 0, &d, NULL, &err) == MQ_ERR_RANGE);
  free(s);
}

int main(void) {
  test_utf8();
  test_added_and_errors();
  test_pipeline_units();
  char b[512];
  if (!mqt_shared("fixtures/tokenizers/hf-gpt2/tokenizer.json", b, sizeof b)) {
    mqt_report("test_tokenizer");
    TEST_SKIP("shared fixtures not found (MQ_SHARED_DIR)");
  }
  mq_tokenizer *gpt2 = load_dir("fixtures/tokenizers/hf-gpt2/tokenizer.json");
  mq_tokenizer *llama2 = load_dir("fixtures/tokenizers/hf-llama2/tokenizer.json");
  mq_tokenizer *stories = load_dir("fixtures/stories260K/hf/tokenizer.json");
  if (gpt2) {
    run_golden(gpt2, "hf-gpt2", "fixtures/tokenizers/hf-gpt2/gpt-2.inp",
               "fixtures/tokenizers/hf-gpt2/gpt-2.hf-tokenizers-js.out", 1);
    run_golden(gpt2, "hf-gpt2 repair-check", "fixtures/tokenizers/hf-gpt2/repair-check.inp",
               "fixtures/tokenizers/hf-gpt2/repair-check.hf-tokenizers-js.out", 1);
    test_gpt2_units(gpt2);
    test_long_and_hostile(gpt2, "hf-gpt2");
  }
  if (llama2) {
    run_golden(llama2, "hf-llama2", "fixtures/tokenizers/hf-llama2/llama-spm.inp",
               "fixtures/tokenizers/hf-llama2/llama-spm.hf-tokenizers-js.out", 1);
    run_golden(llama2, "hf-llama2 repair-check", "fixtures/tokenizers/hf-llama2/repair-check.inp",
               "fixtures/tokenizers/hf-llama2/repair-check.hf-tokenizers-js.out", 1);
    test_llama2_units(llama2);
    test_long_and_hostile(llama2, "hf-llama2");
  }
  if (stories) {
    run_stories(stories, "stories260K hf");
    test_stream(stories);
  }
  mq_tokenizer *g2 = gpt2_from_vocab();
  if (g2) {
    run_golden(g2, "gpt-2 from vocabulary arrays",
               "fixtures/tokenizers/llama.cpp-vocab/ggml-vocab-gpt-2.gguf.inp",
               "fixtures/tokenizers/llama.cpp-vocab/ggml-vocab-gpt-2.gguf.out", 1);
    mq_tokenizer_free(g2);
  }
  mq_tokenizer *s2 = stories_from_tok512();
  if (s2) {
    run_stories(s2, "stories260K tok512 (SentencePiece scores)");
    mq_tokenizer_free(s2);
  }
  mq_tokenizer_free(gpt2);
  mq_tokenizer_free(llama2);
  mq_tokenizer_free(stories);
  return mqt_report("test_tokenizer");
}
