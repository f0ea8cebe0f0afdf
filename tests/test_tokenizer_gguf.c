/* Tokenizers from GGUF metadata (src/tokenizer/gguf_vocab.c):
 *  - llama.cpp's vocab-only GGUFs reproduce their .out ids (Hugging Face
 *    tokenizers' ids, which llama.cpp also reproduces; no BOS/EOS) for all 46
 *    strings, and decode back to the input; bert-bge (WordPiece) is refused;
 *  - the stories260K GGUFs' tokenizer gives llama.cpp's ids on the 30
 *    tokenizer_cases.json strings (with BOS, special-token text parsed);
 *  - hand-made GGUFs: llama.cpp's defaults for absent keys, and a clear error
 *    for each malformed tokenizer.ggml.* key.
 * Fixture parts SKIP (exit 77) when ../shared is absent. */
#include <jansson.h>
#include <unistd.h>

#include "io/gguf.h"
#include "test.h"
#include "vocab_vectors.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

#define VOCAB_DIR "fixtures/tokenizers/llama.cpp-vocab/"

/* Encode every string of NAME.gguf.inp without BOS/EOS, compare with
 * NAME.gguf.out and decode back. */
static void run_vocab(const char *name) {
  char rel[256], bg[512], bi[512], bo[512];
  snprintf(rel, sizeof rel, VOCAB_DIR "ggml-vocab-%s.gguf", name);
  const char *pg = mqt_shared(rel, bg, sizeof bg);
  snprintf(rel, sizeof rel, VOCAB_DIR "ggml-vocab-%s.gguf.inp", name);
  const char *pi = mqt_shared(rel, bi, sizeof bi);
  snprintf(rel, sizeof rel, VOCAB_DIR "ggml-vocab-%s.gguf.out", name);
  const char *po = mqt_shared(rel, bo, sizeof bo);
  CHECK_MSG(pg && pi && po, "%s: fixture files missing", name);
  if (!pg || !pi || !po) return;
  mq_tokenizer *t = NULL;
  mq_err err;
  int rc = mq_tokenizer_load(pg, &t, &err); /* the public entry point dispatches on ".gguf" */
  CHECK_MSG(rc == MQ_OK, "%s: %s", name, err.msg);
  if (rc != MQ_OK) return;
  if (!strcmp(name, "phi-3")) { /* tokenizer.chat_template comes along */
    const char *ct = mq_tokenizer_chat_template(t);
    CHECK_MSG(ct && !strncmp(ct, "{{ bos_token }}", 15), "phi-3 chat template: %s",
              ct ? ct : "(none)");
  } else if (!strcmp(name, "gpt-2")) {
    CHECK(mq_tokenizer_chat_template(t) == NULL);
  }
  char **strs = NULL;
  size_t *lens = NULL, olen;
  int n = read_inp(pi, &strs, &lens);
  char *outs = mqt_read(po, &olen);
  CHECK(n == 46 && outs);
  int ok = 0, rt = 0;
  char *line = outs;
  for (int i = 0; i < n && line; i++) {
    int32_t want[1024];
    int nw = parse_ids(line, want, 1024);
    char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
    int32_t *ids;
    int ni;
    if (mq_tokenizer_encode(t, strs[i], lens[i], 0, &ids, &ni, &err) != MQ_OK) {
      CHECK_MSG(0, "%s[%d]: %s", name, i, err.msg);
      continue;
    }
    if (same(ids, ni, want, nw)) {
      ok++;
    } else {
      fprintf(stderr, "%s case %d mismatch for \"%s\"\n", name, i, strs[i]);
      print_ids("want", want, nw);
      print_ids("got ", ids, ni);
    }
    char *txt;
    size_t tl;
    if (mq_tokenizer_decode(t, ids, ni, 0, &txt, &tl, &err) == MQ_OK) {
      if (tl == lens[i] && !memcmp(txt, strs[i], tl))
        rt++;
      else
        fprintf(stderr, "%s case %d: decode gives \"%s\" for \"%s\"\n", name, i, txt, strs[i]);
      free(txt);
    }
    free(ids);
  }
  CHECK_MSG(ok == n, "%s: %d/%d golden cases match", name, ok, n);
  CHECK_MSG(rt == n, "%s: %d/%d round trips", name, rt, n);
  printf("%-15s %d/%d golden, %d/%d round trip\n", name, ok, n, rt, n);
  if (n > 0) free(strs[0]);
  free(strs);
  free(lens);
  free(outs);
  mq_tokenizer_free(t);
}

/* Vocabularies without test strings still load and round-trip text. */
static void run_load_only(const char *name, int spm) {
  char rel[256], b[512];
  snprintf(rel, sizeof rel, VOCAB_DIR "ggml-vocab-%s.gguf", name);
  const char *p = mqt_shared(rel, b, sizeof b);
  CHECK_MSG(p != NULL, "%s missing", rel);
  if (!p) return;
  mq_tokenizer *t = NULL;
  mq_err err;
  CHECK_MSG(mq_tokenizer_load_gguf(p, &t, &err) == MQ_OK, "%s: %s", name, err.msg);
  if (!t) return;
  const char *s =
      "Hello, world!  It's 2024\n\ttabs \xE2\x82\xAC \xF0\x9F\x90\xB1 \xE4\xBD\xA0\xE5\xA5\xBD";
  int32_t *ids;
  int ni;
  CHECK(mq_tokenizer_encode(t, s, strlen(s), 0, &ids, &ni, &err) == MQ_OK && ni > 0);
  char *d;
  size_t dl;
  CHECK(mq_tokenizer_decode(t, ids, ni, 0, &d, &dl, &err) == MQ_OK);
  CHECK_MSG(dl == strlen(s) && !memcmp(d, s, dl), "%s: round trip gives \"%s\"", name, d);
  free(d);
  free(ids);
  /* SPM: BOS 1 added by default (no add_bos_token key in baichuan) */
  CHECK(mq_tokenizer_encode(t, "a", 1, 1, &ids, &ni, &err) == MQ_OK);
  CHECK_MSG(spm ? (ni >= 2 && ids[0] == 1) : ni >= 1, "%s: add_special", name);
  free(ids);
  printf("%-15s loads, round trip ok\n", name);
  mq_tokenizer_free(t);
}

/* stories260K: the 30 tokenizer cases (BOS, special-token text parsed). */
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
    json_array_foreach(jids, k, x) if (nw < 512) want[nw++] = (int32_t)json_integer_value(x);
    int32_t *ids;
    int ni;
    mq_err err;
    if (mq_tokenizer_encode(t, text, tl, 1, &ids, &ni, &err) != MQ_OK) {
      CHECK_MSG(0, "%s: %s", name, err.msg);
      continue;
    }
    if (same(ids, ni, want, nw)) {
      ok++;
    } else {
      fprintf(stderr, "%s: mismatch for \"%s\"\n", name, text);
      print_ids("want", want, nw);
      print_ids("got ", ids, ni);
    }
    /* decoding without the BOS gives the text back; a literal "▁" in the
     * text is read as a space (as in SentencePiece) */
    char *d;
    size_t dl;
    int meta = strstr(text, "\xE2\x96\x81") != NULL;
    if (ni >= 1 && ids[0] == 1 &&
        mq_tokenizer_decode(t, ids + 1, ni - 1, 0, &d, &dl, &err) == MQ_OK) {
      if (meta)
        rt += !strcmp(d, "x y   z") && !strcmp(text, "x\xE2\x96\x81y \xE2\x96\x81 z");
      else if (dl == tl && !memcmp(d, text, tl))
        rt++;
      else
        fprintf(stderr, "%s: decode gives \"%s\" for \"%s\"\n", name, d, text);
      free(d);
    }
    free(ids);
  }
  CHECK_MSG(ok == n && n == 30, "%s: %d/%d", name, ok, n);
  CHECK_MSG(rt == n, "%s: %d/%d round trips", name, rt, n);
  printf("%-15s %d/%d golden, %d/%d round trip\n", name, ok, n, rt, n);
  json_decref(root);
}

static void test_stories(void) {
  static const char *files[] = {"f32", "Q8_0", "Q4_0"};
  for (int i = 0; i < 3; i++) {
    char rel[256], b[512], name[64];
    snprintf(rel, sizeof rel, "fixtures/stories260K/gguf/stories260K-%s.gguf", files[i]);
    snprintf(name, sizeof name, "stories %s", files[i]);
    const char *p = mqt_shared(rel, b, sizeof b);
    CHECK_MSG(p != NULL, "%s missing", rel);
    if (!p) continue;
    mq_tokenizer *t = NULL;
    mq_err err;
    if (i == 0) { /* through an open file, as the model loader does */
      mq_gguf_file f;
      CHECK(mq_gguf_open(p, &f, &err) == MQ_OK);
      CHECK_MSG(mq_tokenizer_from_gguf(&f, &t, &err) == MQ_OK, "%s: %s", name, err.msg);
      mq_gguf_close(&f); /* the tokenizer keeps nothing of the mapping */
    } else {
      CHECK_MSG(mq_tokenizer_load(p, &t, &err) == MQ_OK, "%s: %s", name, err.msg);
    }
    if (!t) continue;
    CHECK(mq_tokenizer_n_vocab(t) == 512);
    CHECK(mq_tokenizer_bos(t) == 1 && mq_tokenizer_eos(t) == 2 && mq_tokenizer_is_eog(t, 2));
    CHECK(mq_tokenizer_is_special(t, 1) && mq_tokenizer_is_special(t, 2));
    run_stories(t, name);
    mq_tokenizer_free(t);
  }
}

static void test_bert(void) {
  char b[512];
  const char *p = mqt_shared(VOCAB_DIR "ggml-vocab-bert-bge.gguf", b, sizeof b);
  CHECK(p != NULL);
  if (!p) return;
  mq_tokenizer *t = (mq_tokenizer *)1;
  mq_err err;
  int rc = mq_tokenizer_load(p, &t, &err);
  CHECK_MSG(rc == MQ_ERR_UNSUPPORTED && t == NULL && strstr(err.msg, "\"bert\"") &&
                strstr(err.msg, "WordPiece") && strstr(err.msg, "bert-bge.gguf"),
            "bert-bge: rc %d, %s", rc, err.msg);
  printf("%-15s refused: %s\n", "bert-bge", err.msg);
}

/* ---- hand-made GGUFs ---- */

typedef struct gw {
  uint8_t *p;
  size_t n, cap;
  uint64_t n_kv;
} gw;

static void put(gw *w, const void *src, size_t n) {
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2 + 256;
    w->p = realloc(w->p, w->cap);
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
}
static void put_u32(gw *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(gw *w, uint64_t v) { put(w, &v, 8); }
static void put_str(gw *w, const char *s) {
  put_u64(w, strlen(s));
  put(w, s, strlen(s));
}
static void key(gw *w, const char *k, uint32_t type) {
  put_str(w, k);
  put_u32(w, type);
  w->n_kv++;
}
static void kv_str(gw *w, const char *k, const char *v) {
  key(w, k, MQ_GGUF_VTYPE_STRING);
  put_str(w, v);
}
static void kv_u32(gw *w, const char *k, uint32_t v) {
  key(w, k, MQ_GGUF_VTYPE_U32);
  put_u32(w, v);
}
static void kv_bool(gw *w, const char *k, int v) {
  key(w, k, MQ_GGUF_VTYPE_BOOL);
  uint8_t b = (uint8_t)v;
  put(w, &b, 1);
}
static void kv_strs(gw *w, const char *k, const char *const *v, int n) {
  key(w, k, MQ_GGUF_VTYPE_ARRAY);
  put_u32(w, MQ_GGUF_VTYPE_STRING);
  put_u64(w, (uint64_t)n);
  for (int i = 0; i < n; i++) put_str(w, v[i]);
}
static void kv_arr(gw *w, const char *k, uint32_t et, const void *v, int n) {
  key(w, k, MQ_GGUF_VTYPE_ARRAY);
  put_u32(w, et);
  put_u64(w, (uint64_t)n);
  put(w, v, (size_t)n * 4);
}

/* The file: header, then the pairs written into body. */
static uint8_t *gguf_bytes(const gw *body, size_t *len) {
  gw h = {0};
  put(&h, "GGUF", 4);
  put_u32(&h, 3);
  put_u64(&h, 0);
  put_u64(&h, body->n_kv);
  put(&h, body->p, body->n);
  *len = h.n;
  return h.p;
}

/* A small SPM vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces. */
enum { SPM_N = 3 + 256 + 6 };
static const char *spm_tok[SPM_N];
static float spm_score[SPM_N + 1]; /* + 1: the "too long" cases write one more */
static int32_t spm_type[SPM_N + 1];
static char spm_bytes[256][8];

static void spm_init(void) {
  static const char *pieces[] = {"\xE2\x96\x81",
                                 "a",
                                 "b",
                                 "\xE2\x96\x81"
                                 "a",
                                 "ab",
                                 "\xE2\x96\x81"
                                 "ab"};
  spm_tok[0] = "<unk>", spm_type[0] = MQ_TOKTYPE_UNKNOWN;
  spm_tok[1] = "<s>", spm_type[1] = MQ_TOKTYPE_CONTROL;
  spm_tok[2] = "</s>", spm_type[2] = MQ_TOKTYPE_CONTROL;
  for (int i = 0; i < 256; i++) {
    snprintf(spm_bytes[i], sizeof spm_bytes[i], "<0x%02X>", i);
    spm_tok[3 + i] = spm_bytes[i], spm_type[3 + i] = MQ_TOKTYPE_BYTE;
  }
  for (int i = 0; i < 6; i++) {
    spm_tok[259 + i] = pieces[i];
    spm_type[259 + i] = MQ_TOKTYPE_NORMAL;
    spm_score[259 + i] = (float)-i;
  }
}

enum { F_NO_MODEL = 1, F_NO_SCORES = 2, F_NO_TYPES = 4, F_NO_TOKENS = 8 };

static void spm_body(gw *w, int flags, int n_scores, int n_types) {
  if (!(flags & F_NO_MODEL)) kv_str(w, "tokenizer.ggml.model", "llama");
  if (!(flags & F_NO_TOKENS)) kv_strs(w, "tokenizer.ggml.tokens", spm_tok, SPM_N);
  if (!(flags & F_NO_SCORES))
    kv_arr(w, "tokenizer.ggml.scores", MQ_GGUF_VTYPE_F32, spm_score, n_scores);
  if (!(flags & F_NO_TYPES))
    kv_arr(w, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_I32, spm_type, n_types);
}

/* Parse w as a GGUF and build its tokenizer; rc, with *t set on success. */
static int from_body(const gw *w, mq_tokenizer **t, mq_err *err) {
  size_t len;
  uint8_t *buf = gguf_bytes(w, &len);
  mq_gguf_file f;
  int rc = mq_gguf_parse(buf, len, "made.gguf", &f, err);
  if (rc == MQ_OK) {
    rc = mq_tokenizer_from_gguf(&f, t, err);
    mq_gguf_close(&f);
  }
  free(buf);
  return rc;
}

static int encode_is(const mq_tokenizer *t, const char *s, int add, const int32_t *want, int nw) {
  int32_t *ids;
  int ni;
  mq_err err;
  if (mq_tokenizer_encode(t, s, strlen(s), add, &ids, &ni, &err) != MQ_OK) return 0;
  int ok = same(ids, ni, want, nw);
  if (!ok) print_ids("got", ids, ni);
  free(ids);
  return ok;
}

static void test_made(void) {
  spm_init();
  mq_tokenizer *t = NULL;
  mq_err err;
  /* SPM with no bos/eos/unk/add_* keys: llama.cpp's defaults */
  gw w = {0};
  spm_body(&w, 0, SPM_N, SPM_N);
  CHECK_MSG(from_body(&w, &t, &err) == MQ_OK, "spm defaults: %s", err.msg);
  if (t) {
    static const int32_t w1[] = {1, 264, 261}; /* <s> ▁ab b */
    CHECK(encode_is(t, "abb", 1, w1, 3));
    CHECK(mq_tokenizer_bos(t) == 1 && mq_tokenizer_eos(t) == 2 && mq_tokenizer_is_eog(t, 2));
    static const int32_t w3[] = {1, 262, 3 + 'c'}; /* "▁a" then byte fallback for c */
    CHECK(encode_is(t, "ac", 1, w3, 3));
    mq_tokenizer_free(t), t = NULL;
  }
  free(w.p);
  /* add_space_prefix false, add_bos false, add_eos true, explicit ids */
  memset(&w, 0, sizeof w);
  spm_body(&w, 0, SPM_N, SPM_N);
  kv_bool(&w, "tokenizer.ggml.add_space_prefix", 0);
  kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
  kv_bool(&w, "tokenizer.ggml.add_eos_token", 1);
  kv_u32(&w, "tokenizer.ggml.eot_token_id", 0);
  kv_u32(&w, "tokenizer.ggml.seperator_token_id", UINT32_MAX); /* not read */
  CHECK_MSG(from_body(&w, &t, &err) == MQ_OK, "spm flags: %s", err.msg);
  if (t) {
    static const int32_t w1[] = {263, 2}; /* "ab" </s> */
    CHECK(encode_is(t, "ab", 1, w1, 2));
    CHECK(mq_tokenizer_is_eog(t, 0));
    mq_tokenizer_free(t), t = NULL;
  }
  free(w.p);
  /* bos_token_id 0xFFFFFFFF: no BOS (what converters write for "none") */
  memset(&w, 0, sizeof w);
  spm_body(&w, 0, SPM_N, SPM_N);
  kv_u32(&w, "tokenizer.ggml.bos_token_id", UINT32_MAX);
  CHECK_MSG(from_body(&w, &t, &err) == MQ_OK, "spm no bos: %s", err.msg);
  if (t) {
    CHECK(mq_tokenizer_bos(t) == -1);
    static const int32_t w1[] = {262};
    CHECK(encode_is(t, "a", 1, w1, 1));
    mq_tokenizer_free(t), t = NULL;
  }
  free(w.p);

  /* errors: each names the key and the rule */
  struct {
    const char *what;
    int flags, n_scores, n_types;
    const char *extra_key; /* a u32 key added */
    uint32_t extra_val;
    int rc;
    const char *msg1, *msg2;
  } bad[] = {
      {"no model", F_NO_MODEL, SPM_N, SPM_N, NULL, 0, MQ_ERR_FORMAT, "tokenizer.ggml.model",
       "no tokenizer"},
      {"no tokens", F_NO_TOKENS, SPM_N, SPM_N, NULL, 0, MQ_ERR_FORMAT, "tokenizer.ggml.tokens",
       "no "},
      {"no scores", F_NO_SCORES, SPM_N, SPM_N, NULL, 0, MQ_ERR_FORMAT, "tokenizer.ggml.scores",
       "SentencePiece"},
      {"short scores", 0, SPM_N - 1, SPM_N, NULL, 0, MQ_ERR_FORMAT, "tokenizer.ggml.scores",
       "264 entries"},
      {"long types", 0, SPM_N, SPM_N + 1, NULL, 0, MQ_ERR_FORMAT, "tokenizer.ggml.token_type",
       "266 entries"},
      {"bos out of range", 0, SPM_N, SPM_N, "tokenizer.ggml.bos_token_id", SPM_N, MQ_ERR_FORMAT,
       "bos_token_id = 265", "outside the vocabulary"},
      {"eos out of range", 0, SPM_N, SPM_N, "tokenizer.ggml.eos_token_id", 1u << 31, MQ_ERR_FORMAT,
       "eos_token_id", "outside"},
      {"unk out of range", 0, SPM_N, SPM_N, "tokenizer.ggml.unknown_token_id", 100000,
       MQ_ERR_FORMAT, "unknown_token_id", "outside"},
      {"eom out of range", 0, SPM_N, SPM_N, "tokenizer.ggml.eom_token_id", 4000000000u,
       MQ_ERR_FORMAT, "eom_token_id", "outside"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&w, 0, sizeof w);
    spm_body(&w, bad[i].flags, bad[i].n_scores, bad[i].n_types);
    if (bad[i].extra_key) kv_u32(&w, bad[i].extra_key, bad[i].extra_val);
    t = (mq_tokenizer *)1;
    int rc = from_body(&w, &t, &err);
    CHECK_MSG(rc == bad[i].rc && t == NULL && strstr(err.msg, "made.gguf") &&
                  strstr(err.msg, bad[i].msg1) && strstr(err.msg, bad[i].msg2),
              "%s: rc %d, %s", bad[i].what, rc, err.msg);
    free(w.p);
  }
  /* wrong value types */
  struct {
    const char *what, *key;
    int type;
    const char *msg;
  } wrong[] = {
      {"model not a string", "tokenizer.ggml.model", MQ_GGUF_VTYPE_U32, "expected string"},
      {"tokens not strings", "tokenizer.ggml.tokens", MQ_GGUF_VTYPE_I32, "array of strings"},
      {"scores of strings", "tokenizer.ggml.scores", MQ_GGUF_VTYPE_STRING, "expected an array"},
      {"types of f32", "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_F32, "expected an array"},
      {"add_bos u32", "tokenizer.ggml.add_bos_token", MQ_GGUF_VTYPE_U32, "expected bool"},
      {"bos a string", "tokenizer.ggml.bos_token_id", MQ_GGUF_VTYPE_STRING, "token id"},
      {"chat template u32", "tokenizer.chat_template", MQ_GGUF_VTYPE_U32, "expected string"},
  };
  for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
    memset(&w, 0, sizeof w);
    const char *k = wrong[i].key;
    int skip = !strcmp(k, "tokenizer.ggml.model")        ? F_NO_MODEL
               : !strcmp(k, "tokenizer.ggml.tokens")     ? F_NO_TOKENS
               : !strcmp(k, "tokenizer.ggml.scores")     ? F_NO_SCORES
               : !strcmp(k, "tokenizer.ggml.token_type") ? F_NO_TYPES
                                                         : 0;
    spm_body(&w, skip, SPM_N, SPM_N);
    if (wrong[i].type == MQ_GGUF_VTYPE_STRING)
      kv_str(&w, k, "x");
    else if (wrong[i].type == MQ_GGUF_VTYPE_U32)
      kv_u32(&w, k, 1);
    else if (wrong[i].type == MQ_GGUF_VTYPE_F32)
      kv_arr(&w, k, MQ_GGUF_VTYPE_F32, spm_score, SPM_N);
    else
      kv_arr(&w, k, MQ_GGUF_VTYPE_I32, spm_type, SPM_N);
    t = (mq_tokenizer *)1;
    int rc = from_body(&w, &t, &err);
    CHECK_MSG(rc == MQ_ERR_FORMAT && t == NULL && strstr(err.msg, k) &&
                  strstr(err.msg, wrong[i].msg),
              "%s: rc %d, %s", wrong[i].what, rc, err.msg);
    free(w.p);
  }
  /* unsupported models and pre-tokenizers; a BPE vocabulary without merges */
  static const char *models[] = {"t5", "rwkv", "plamo2", "whatever"};
  for (int i = 0; i < 4; i++) {
    memset(&w, 0, sizeof w);
    kv_str(&w, "tokenizer.ggml.model", models[i]);
    spm_body(&w, F_NO_MODEL, SPM_N, SPM_N);
    t = (mq_tokenizer *)1;
    int rc = from_body(&w, &t, &err);
    CHECK_MSG(rc == MQ_ERR_UNSUPPORTED && t == NULL && strstr(err.msg, models[i]),
              "model %s: rc %d, %s", models[i], rc, err.msg);
    free(w.p);
  }
  static const char *bpe_tok[] = {"a", "b", "ab", "<|end|>"};
  static const int32_t bpe_type[] = {1, 1, 1, 3};
  static const char *bpe_merge[] = {"a b"};
  for (int c = 0; c < 4; c++) {
    memset(&w, 0, sizeof w);
    kv_str(&w, "tokenizer.ggml.model", "gpt2");
    if (c == 1) kv_str(&w, "tokenizer.ggml.pre", "qwen35");
    if (c == 3) kv_str(&w, "tokenizer.ggml.pre", "gpt-2");
    kv_strs(&w, "tokenizer.ggml.tokens", bpe_tok, 4);
    kv_arr(&w, "tokenizer.ggml.token_type", MQ_GGUF_VTYPE_I32, bpe_type, 4);
    if (c != 2) kv_strs(&w, "tokenizer.ggml.merges", bpe_merge, 1);
    if (c == 3) kv_u32(&w, "tokenizer.ggml.eos_token_id", 3);
    t = NULL;
    int rc = from_body(&w, &t, &err);
    if (c == 0 || c == 3) { /* no pre: "default" (llama.cpp warns); no BOS added */
      CHECK_MSG(rc == MQ_OK, "bpe %d: %s", c, err.msg);
      static const int32_t w1[] = {2, 3, 0};
      CHECK(t && encode_is(t, "ab<|end|>a", 1, w1, 3));
      CHECK(t && mq_tokenizer_bos(t) == -1 && mq_tokenizer_eos(t) == (c == 3 ? 3 : -1));
      CHECK(t && mq_tokenizer_is_eog(t, 3)); /* <|end|> ends a turn */
      mq_tokenizer_free(t);
    } else if (c == 1) {
      CHECK_MSG(rc == MQ_ERR_UNSUPPORTED && strstr(err.msg, "qwen35"), "pre: %s", err.msg);
    } else {
      CHECK_MSG(rc == MQ_ERR_FORMAT && strstr(err.msg, "tokenizer.ggml.merges"), "merges: %s",
                err.msg);
    }
    free(w.p);
  }
  /* every truncation of a valid file fails cleanly (in the reader) */
  memset(&w, 0, sizeof w);
  spm_body(&w, 0, SPM_N, SPM_N);
  size_t len;
  uint8_t *buf = gguf_bytes(&w, &len);
  for (size_t k = 0; k < len; k += 13) {
    mq_gguf_file f;
    if (mq_gguf_parse(buf, k, "cut.gguf", &f, &err) == MQ_OK) {
      t = NULL;
      if (mq_tokenizer_from_gguf(&f, &t, &err) == MQ_OK) mq_tokenizer_free(t);
      mq_gguf_close(&f);
    }
  }
  /* through the public loader: a .gguf path, a missing one */
  char path[] = "/tmp/mq_tokgguf_XXXXXX.gguf";
  int fd = mkstemps(path, 5);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, buf, len) == (ssize_t)len);
    close(fd);
    CHECK_MSG(mq_tokenizer_load(path, &t, &err) == MQ_OK, "load %s: %s", path, err.msg);
    mq_tokenizer_free(t);
    unlink(path);
  }
  free(buf);
  free(w.p);
  int rc = mq_tokenizer_load("/nonexistent/model.gguf", &t, &err);
  CHECK_MSG(rc == MQ_ERR_IO && strstr(err.msg, "/nonexistent/model.gguf"), "missing: %d %s", rc,
            err.msg);
  CHECK(mq_tokenizer_is_gguf_path("m.gguf") && !mq_tokenizer_is_gguf_path("m.gguf.json") &&
        !mq_tokenizer_is_gguf_path(".gguf") && !mq_tokenizer_is_gguf_path("/tmp"));
}

int main(void) {
  test_made();
  char b[512];
  if (!mqt_shared(VOCAB_DIR "ggml-vocab-gpt-2.gguf", b, sizeof b)) {
    mqt_report("test_tokenizer_gguf");
    TEST_SKIP("shared fixtures not found (MQ_SHARED_DIR)");
  }
  static const char *vocabs[] = {"llama-spm",      "gpt-2",        "phi-3",
                                 "deepseek-coder", "deepseek-llm", "falcon",
                                 "starcoder",      "mpt",          "refact"};
  for (size_t i = 0; i < sizeof vocabs / sizeof *vocabs; i++) run_vocab(vocabs[i]);
  test_bert();
  run_load_only("gpt-neox", 0);
  run_load_only("baichuan", 1);
  test_stories();
  return mqt_report("test_tokenizer_gguf");
}
