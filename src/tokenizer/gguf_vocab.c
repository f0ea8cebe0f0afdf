/* Tokenizers from GGUF metadata (specs/formats.md §5.10): the
 * tokenizer.ggml.* keys become an mq_vocab_desc for mq_tokenizer_from_vocab.
 *
 *   tokenizer.ggml.model    "llama" -> SentencePiece BPE with scores,
 *                           "gpt2" -> byte-level BPE with merges;
 *                           bert, t5, rwkv, ... -> MQ_ERR_UNSUPPORTED
 *   tokenizer.ggml.pre      pre-tokenizer name (BPE; absent: "default")
 *   tokenizer.ggml.tokens   [n] strings, index = id
 *   tokenizer.ggml.scores   [n] f32 (or i32, as llama.cpp accepts); SPM needs them
 *   tokenizer.ggml.token_type [n] integers (MQ_TOKTYPE_*)
 *   tokenizer.ggml.merges   [m] "left right" strings (BPE needs them)
 *   tokenizer.ggml.{bos,eos,unknown,eot,eom}_token_id, add_bos_token,
 *   add_eos_token, add_space_prefix
 *   tokenizer.chat_template  Jinja text, kept for chat.c (optional)
 *
 * Defaults when keys are absent are llama.cpp's (llama-vocab.cpp, load()):
 * SPM: BOS 1, EOS 2, UNK 0 (each only when inside the vocabulary), add BOS,
 * no EOS, add a space prefix. BPE: no space prefix, add BOS only for the
 * Llama-3-style pre-tokenizers (mq_tokenizer_from_vocab decides). One
 * deliberate difference: llama.cpp's BPE default BOS/EOS of 11 (Falcon's
 * <|endoftext|>) is not applied, because in other vocabularies id 11 is an
 * ordinary token and would end generation; files name their ids anyway.
 *
 * Strings are not copied here: the descriptor points into the mapping and
 * mq_tokenizer_from_vocab copies what it keeps. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "io/gguf.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

#define KEY(k) "tokenizer.ggml." k

/* Unsupported tokenizer.ggml.model values and what they are. */
static const char *const OTHER_MODELS[][2] = {
    {"bert", "a WordPiece vocabulary"},
    {"t5", "a Unigram vocabulary"},
    {"rwkv", "an RWKV vocabulary"},
    {"plamo2", "a PLaMo-2 vocabulary"},
    {"gemma4", "a Gemma-4 vocabulary"},
    {"hybriddna", "a hybrid DNA vocabulary"},
    {"whitespace", "a whitespace vocabulary"},
    {"no_vocab", "no vocabulary"},
    {"none", "no vocabulary"},
};

/* The array of strings under key. */
static int str_array(const mq_gguf_file *f, const char *key, const mq_gguf_kv **out, mq_err *err) {
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, key);
  if (!kv) return mq_errf(err, MQ_ERR_FORMAT, "no %s", key);
  if (kv->type != MQ_GGUF_VTYPE_ARRAY || kv->elem_type != MQ_GGUF_VTYPE_STRING)
    return mq_errf(err, MQ_ERR_FORMAT, "%s has type %s%s%s, expected an array of strings", key,
                   mq_gguf_vtype_name(kv->type), kv->type == MQ_GGUF_VTYPE_ARRAY ? " of " : "",
                   kv->type == MQ_GGUF_VTYPE_ARRAY ? mq_gguf_vtype_name(kv->elem_type) : "");
  *out = kv;
  return MQ_OK;
}

/* Optional per-token array (scores, token_type) of n numbers. */
static int num_array(const mq_gguf_file *f, const char *key, int n, int want_float,
                     const mq_gguf_kv **out, mq_err *err) {
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, key);
  *out = NULL;
  if (!kv) return MQ_OK;
  mq_gguf_vtype et = kv->elem_type;
  /* u8 .. i32 (0-5), u64, i64; bool (7) does not count as a number here */
  int is_int = et <= MQ_GGUF_VTYPE_I32 || et == MQ_GGUF_VTYPE_U64 || et == MQ_GGUF_VTYPE_I64;
  int is_float = et == MQ_GGUF_VTYPE_F32 || et == MQ_GGUF_VTYPE_F64;
  if (kv->type != MQ_GGUF_VTYPE_ARRAY || !(is_int || (want_float && is_float)))
    return mq_errf(err, MQ_ERR_FORMAT, "%s has type %s%s%s, expected an array of %s", key,
                   mq_gguf_vtype_name(kv->type), kv->type == MQ_GGUF_VTYPE_ARRAY ? " of " : "",
                   kv->type == MQ_GGUF_VTYPE_ARRAY ? mq_gguf_vtype_name(et) : "",
                   want_float ? "f32" : "i32");
  if (kv->count != (uint64_t)n)
    return mq_errf(err, MQ_ERR_FORMAT,
                   "%s has %llu entries but tokenizer.ggml.tokens has %d (one per token)", key,
                   (unsigned long long)kv->count, n);
  *out = kv;
  return MQ_OK;
}

/* A special-token id: absent -> *id unchanged (the default); 0xFFFFFFFF or
 * -1 (what converters write for "no token") -> -1; else inside [0, n). */
static int opt_id(const mq_gguf_file *f, const char *key, int n, int32_t *id, mq_err *err) {
  const mq_gguf_kv *kv = mq_gguf_find_kv(f, key);
  if (!kv) return MQ_OK;
  int64_t v;
  if (kv->type == MQ_GGUF_VTYPE_ARRAY || kv->type == MQ_GGUF_VTYPE_BOOL ||
      mq_gguf_arr_int(kv, 0, &v) != 0)
    return mq_errf(err, MQ_ERR_FORMAT, "%s has type %s, expected a u32 token id", key,
                   mq_gguf_vtype_name(kv->type));
  if (v == -1 || v == (int64_t)UINT32_MAX) {
    *id = -1;
    return MQ_OK;
  }
  if (v < 0 || v >= n)
    return mq_errf(err, MQ_ERR_FORMAT, "%s = %lld is outside the vocabulary [0, %d)", key,
                   (long long)v, n);
  *id = (int32_t)v;
  return MQ_OK;
}

/* A bool flag: absent -> *flag unchanged. */
static int opt_bool(const mq_gguf_file *f, const char *key, int *flag, mq_err *err) {
  if (!mq_gguf_find_kv(f, key)) return MQ_OK;
  return mq_gguf_get_bool(f, key, flag, err);
}

typedef struct gv {
  const char **tokens, **merges;
  size_t *token_lens, *merge_lens;
  float *scores;
  int32_t *types;
} gv;

static void gv_free(gv *g) {
  free(g->tokens);
  free(g->merges);
  free(g->token_lens);
  free(g->merge_lens);
  free(g->scores);
  free(g->types);
}

static int oom(mq_err *err) {
  return mq_errf(err, MQ_ERR_NOMEM, "out of memory for the vocabulary");
}

static int build(const mq_gguf_file *f, gv *g, mq_tokenizer **out, mq_err *err) {
  const char *model;
  uint64_t mlen;
  if (!mq_gguf_find_kv(f, KEY("model")))
    return mq_errf(err, MQ_ERR_FORMAT, "no %s: the file carries no tokenizer", KEY("model"));
  int rc = mq_gguf_get_str(f, KEY("model"), &model, &mlen, err);
  if (rc != MQ_OK) return rc;
  mq_vocab_desc d;
  mq_vocab_desc_init(&d);
  if (mlen == 5 && !memcmp(model, "llama", 5)) {
    d.kind = MQ_VOCAB_KIND_SPM;
  } else if (mlen == 4 && !memcmp(model, "gpt2", 4)) {
    d.kind = MQ_VOCAB_KIND_BPE;
  } else {
    const char *what = NULL;
    for (size_t i = 0; i < sizeof OTHER_MODELS / sizeof *OTHER_MODELS; i++)
      if (strlen(OTHER_MODELS[i][0]) == mlen && !memcmp(model, OTHER_MODELS[i][0], mlen))
        what = OTHER_MODELS[i][1];
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "%s \"%.*s\"%s%s%s is not supported: mixq reads \"llama\" (SentencePiece BPE) "
                   "and \"gpt2\" (byte-level BPE) vocabularies",
                   KEY("model"), (int)(mlen > 64 ? 64 : mlen), model, what ? " (" : "",
                   what ? what : "", what ? ")" : "");
  }
  int spm = d.kind == MQ_VOCAB_KIND_SPM;

  /* pre-tokenizer name (only BPE vocabularies have one) */
  char pre[128];
  if (!spm && mq_gguf_find_kv(f, KEY("pre"))) {
    const char *p;
    uint64_t pl;
    if ((rc = mq_gguf_get_str(f, KEY("pre"), &p, &pl, err)) != MQ_OK) return rc;
    if (pl >= sizeof pre || memchr(p, 0, pl))
      return mq_errf(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer \"%.*s\" (%s) is not supported",
                     (int)(pl > 64 ? 64 : pl), p, KEY("pre"));
    memcpy(pre, p, pl);
    pre[pl] = 0;
    d.pre = pre;
  }

  /* tokens */
  const mq_gguf_kv *toks, *sc, *ty;
  if ((rc = str_array(f, KEY("tokens"), &toks, err)) != MQ_OK) return rc;
  if (toks->count == 0) return mq_errf(err, MQ_ERR_FORMAT, "%s is empty", KEY("tokens"));
  if (toks->count > (1u << 22))
    return mq_errf(err, MQ_ERR_FORMAT, "%s has %llu entries (limit %u)", KEY("tokens"),
                   (unsigned long long)toks->count, 1u << 22);
  int n = (int)toks->count;
  g->tokens = malloc((size_t)n * sizeof *g->tokens);
  g->token_lens = malloc((size_t)n * sizeof *g->token_lens);
  if (!g->tokens || !g->token_lens) return oom(err);
  for (int i = 0; i < n; i++) {
    uint64_t l;
    g->tokens[i] = mq_gguf_arr_str(toks, (uint64_t)i, &l);
    g->token_lens[i] = (size_t)l;
  }
  d.n_tokens = n;
  d.tokens = g->tokens;
  d.token_lens = g->token_lens;

  /* scores (SPM merge priorities) */
  if ((rc = num_array(f, KEY("scores"), n, 1, &sc, err)) != MQ_OK) return rc;
  if (spm && !sc)
    return mq_errf(err, MQ_ERR_FORMAT, "no %s: a \"llama\" (SentencePiece) vocabulary needs them",
                   KEY("scores"));
  if (sc) {
    if (!(g->scores = malloc((size_t)n * sizeof *g->scores))) return oom(err);
    for (int i = 0; i < n; i++) {
      int64_t v;
      if (mq_gguf_arr_f32(sc, (uint64_t)i, &g->scores[i]) != 0) {
        if (mq_gguf_arr_int(sc, (uint64_t)i, &v) != 0)
          return mq_errf(err, MQ_ERR_FORMAT, "%s[%d] is not a number", KEY("scores"), i);
        g->scores[i] = (float)v;
      }
    }
    d.scores = g->scores;
  }

  /* token types; values outside 0..6 are "undefined", as in llama.cpp */
  if ((rc = num_array(f, KEY("token_type"), n, 0, &ty, err)) != MQ_OK) return rc;
  if (ty) {
    if (!(g->types = malloc((size_t)n * sizeof *g->types))) return oom(err);
    for (int i = 0; i < n; i++) {
      int64_t v;
      if (mq_gguf_arr_int(ty, (uint64_t)i, &v) != 0 || v < 0 || v > MQ_TOKTYPE_BYTE)
        v = MQ_TOKTYPE_UNDEFINED;
      g->types[i] = (int32_t)v;
    }
    d.token_types = g->types;
  }

  /* merges (BPE) */
  if (!spm) {
    const mq_gguf_kv *mg;
    if ((rc = str_array(f, KEY("merges"), &mg, err)) != MQ_OK) {
      if (!mq_gguf_find_kv(f, KEY("merges")))
        rc = mq_errf(err, MQ_ERR_FORMAT, "no %s: a \"gpt2\" (BPE) vocabulary needs them",
                     KEY("merges"));
      return rc;
    }
    if (mg->count > (uint64_t)n * 4)
      return mq_errf(err, MQ_ERR_FORMAT, "%s has %llu entries for %d tokens (at most 4 per token)",
                     KEY("merges"), (unsigned long long)mg->count, n);
    int nm = (int)mg->count;
    g->merges = malloc(((size_t)nm + 1) * sizeof *g->merges);
    g->merge_lens = malloc(((size_t)nm + 1) * sizeof *g->merge_lens);
    if (!g->merges || !g->merge_lens) return oom(err);
    for (int i = 0; i < nm; i++) {
      uint64_t l;
      g->merges[i] = mq_gguf_arr_str(mg, (uint64_t)i, &l);
      g->merge_lens[i] = (size_t)l;
    }
    d.n_merges = nm;
    d.merges = g->merges;
    d.merge_lens = g->merge_lens;
  }

  /* special ids: llama.cpp's SPM defaults when inside the vocabulary */
  if (spm) {
    d.bos_id = n > 1 ? 1 : -1;
    d.eos_id = n > 2 ? 2 : -1;
    d.unk_id = 0;
  }
  if ((rc = opt_id(f, KEY("bos_token_id"), n, &d.bos_id, err)) != MQ_OK ||
      (rc = opt_id(f, KEY("eos_token_id"), n, &d.eos_id, err)) != MQ_OK ||
      (rc = opt_id(f, KEY("unknown_token_id"), n, &d.unk_id, err)) != MQ_OK ||
      (rc = opt_id(f, KEY("eot_token_id"), n, &d.eot_id, err)) != MQ_OK ||
      (rc = opt_id(f, KEY("eom_token_id"), n, &d.eom_id, err)) != MQ_OK)
    return rc;
  if ((rc = opt_bool(f, KEY("add_bos_token"), &d.add_bos, err)) != MQ_OK ||
      (rc = opt_bool(f, KEY("add_eos_token"), &d.add_eos, err)) != MQ_OK ||
      (rc = opt_bool(f, KEY("add_space_prefix"), &d.add_space_prefix, err)) != MQ_OK)
    return rc;
  if (!spm) d.add_space_prefix = 0; /* llama.cpp ignores it for BPE */
  if ((rc = mq_tokenizer_from_vocab(&d, out, err)) != MQ_OK) return rc;
  /* the chat template (Jinja text), kept for chat.c as the HF loader does */
  const char *ct;
  uint64_t ctl;
  if (mq_gguf_find_kv(f, "tokenizer.chat_template") &&
      ((rc = mq_gguf_get_str(f, "tokenizer.chat_template", &ct, &ctl, err)) != MQ_OK ||
       (rc = mq_tok_set_chat_template(*out, ct, (size_t)ctl, err)) != MQ_OK)) {
    mq_tokenizer_free(*out);
    *out = NULL;
  }
  return rc;
}

int mq_tokenizer_from_gguf(const mq_gguf_file *f, mq_tokenizer **out, mq_err *err) {
  *out = NULL;
  if (!f) return mq_errf(err, MQ_ERR_ARG, "no GGUF file given");
  gv g = {0};
  int rc = build(f, &g, out, err);
  gv_free(&g);
  const char *label = f->path ? f->path : "GGUF";
  if (rc != MQ_OK && err && strncmp(err->msg, label, strlen(label)) != 0) /* getters name it */
    mq_err_prefix(err, "%s: ", label);
  return rc;
}

int mq_tokenizer_load_gguf(const char *path, mq_tokenizer **out, mq_err *err) {
  *out = NULL;
  if (!path) return mq_errf(err, MQ_ERR_ARG, "no GGUF file given");
  mq_gguf_file f;
  int rc = mq_gguf_open(path, &f, err);
  if (rc != MQ_OK) return rc;
  rc = mq_tokenizer_from_gguf(&f, out, err);
  mq_gguf_close(&f);
  return rc;
}

int mq_tokenizer_is_gguf_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  struct stat st;
  if (n < 6 || strcmp(path + n - 5, ".gguf") != 0) return 0;
  return stat(path, &st) != 0 || !S_ISDIR(st.st_mode); /* a missing file: say so, as GGUF */
}
