/* The inside of mq_tokenizer, shared by src/tokenizer/ files only. */
#ifndef MQ_TOKENIZER_TOK_IMPL_H
#define MQ_TOKENIZER_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>

#include "core/strmap.h"
#include "tokenizer/buf.h"
#include "tokenizer/tokenizer.h"

/* Token attributes. */
enum {
  MQ_TOKA_NORMAL = 0,
  MQ_TOKA_BYTE = 1,    /* <0xNN> byte-fallback token */
  MQ_TOKA_SPECIAL = 2, /* added special / GGUF control token (skippable on decode) */
  MQ_TOKA_ADDED = 3,   /* added, not special: rendered as its text */
  MQ_TOKA_UNUSED = 4,  /* no string (a hole in the id range) */
};

/* ---- normalizers ---- */
typedef enum mq_norm_kind {
  MQ_NORM_PREPEND,    /* a: text to prepend to a non-empty string */
  MQ_NORM_REPLACE,    /* a -> b, literal */
  MQ_NORM_REPLACE_RE, /* re -> b */
  MQ_NORM_NFC,
  MQ_NORM_NFD,
  MQ_NORM_NFKC,
  MQ_NORM_NFKD,
  MQ_NORM_LOWER,
  MQ_NORM_STRIP, /* left/right: strip Unicode white space */
} mq_norm_kind;

typedef struct mq_norm_step {
  mq_norm_kind kind;
  char *a, *b;
  size_t alen, blen;
  pcre2_code *re;
  int left, right;
} mq_norm_step;

/* ---- pre-tokenizers ---- */
typedef enum mq_pre_kind {
  MQ_PRE_SPLIT,     /* re, behavior, invert */
  MQ_PRE_BYTELEVEL, /* add_prefix_space; re (GPT-2 regex) or NULL; then bytes -> chars */
  MQ_PRE_METASPACE, /* a: replacement; prepend: 0 never 1 always 2 first; split */
} mq_pre_kind;

typedef enum mq_split_behavior {
  MQ_SPLIT_REMOVED,
  MQ_SPLIT_ISOLATED,
  MQ_SPLIT_MERGED_PREV,
  MQ_SPLIT_MERGED_NEXT,
  MQ_SPLIT_CONTIGUOUS,
} mq_split_behavior;

typedef struct mq_pre_step {
  mq_pre_kind kind;
  pcre2_code *re;
  mq_split_behavior behavior;
  int invert;
  int add_prefix_space;
  char *a;
  size_t alen;
  int prepend;
  int split;
} mq_pre_step;

/* ---- added tokens ---- */
typedef struct mq_added {
  char *text; /* what is matched: the content, normalized when normalized is set */
  size_t len;
  char *content; /* the raw content (the token's piece) */
  size_t clen;
  int32_t id;
  uint8_t special, lstrip, rstrip, single_word, normalized;
} mq_added;

typedef enum mq_bpe_mode {
  MQ_BPE_MERGES = 0, /* ranked merge list (Hugging Face, GGUF gpt2) */
  MQ_BPE_SCORES = 1, /* merge the adjacent pair whose result scores highest (SentencePiece) */
} mq_bpe_mode;

struct mq_tokenizer {
  int n_vocab;
  /* model-form token strings ("Ġhello", "▁hello"): text[off[i] .. +len[i]] */
  char *text;
  size_t text_len, text_cap;
  uint32_t *off, *len;
  uint8_t *attr;
  float *score;    /* SCORES mode only */
  mq_strmap vocab; /* model string -> id (keys point into text) */

  /* BPE model */
  mq_bpe_mode mode;
  uint32_t *merge_keys; /* 2 per merge: left id, right id (map keys) */
  mq_strmap merges;     /* 8-byte (left, right) -> rank << 32 | result id */
  int byte_fallback, fuse_unk, ignore_merges;
  int32_t unk_id;
  int32_t byte_id[256]; /* <0xNN> token ids, -1 when absent */
  char bl_char[256][3]; /* byte-level: UTF-8 of the char standing for each byte */
  uint8_t bl_len[256];

  mq_norm_step *norm;
  int n_norm;
  mq_pre_step *pre;
  int n_pre;

  mq_added *added; /* sorted by first byte, then longest first */
  int n_added;
  int added_first[257]; /* added[added_first[c] .. added_first[c+1]) start with byte c */
  int any_norm_added, any_raw_added, any_single_word;
  pcre2_code *word_re; /* \w, for single_word */

  int32_t *prefix, *suffix; /* added by add_special */
  int n_prefix, n_suffix;

  /* decoding: piece of each id = bytes after the decoder's rules */
  char *piece;
  uint32_t *poff, *plen;
  int dec_strip;             /* leading spaces stripped at the start of a text */
  int dec_strip_after_added; /* ... and after every added token (encoder prepended "▁" there) */
  int dec_per_byte_fffd;     /* ByteFallback: one U+FFFD per ill-formed byte */

  int32_t bos, eos;
  int32_t *eog;
  int n_eog;

  char *chat_template; /* the template source the tokenizer came with, or NULL (chat.c) */
};

/* How the decoder turns a token string into its piece (built from
 * tokenizer.json's decoder, or implied by a GGUF vocabulary kind). */
#define MQ_DEC_MAX_REPL 4
typedef struct mq_dec_spec {
  int byte_level;    /* ByteLevel: characters -> the bytes they stand for */
  int byte_fallback; /* ByteFallback: <0xNN> -> that byte */
  int n_repl;        /* Replace / Metaspace: literal replacements, in order */
  const char *from[MQ_DEC_MAX_REPL], *to[MQ_DEC_MAX_REPL];
  size_t flen[MQ_DEC_MAX_REPL], tlen[MQ_DEC_MAX_REPL];
  int strip_seq; /* spaces stripped at the start of the decoded text */
  int strip_tok; /* spaces stripped from the start of every token (Strip without Fuse) */
} mq_dec_spec;

/* ---- building (vocab.c) ---- */
#define MQ_TOKF_MODEL 0x10 /* attr flag: the string is in the model vocabulary */
/* An empty tokenizer with n_vocab ids, every id unused. */
int mq_tok_new(int n_vocab, mq_tokenizer **out, mq_err *err);
/* Give id its model-form string; attr is MQ_TOKA_* | MQ_TOKF_MODEL. */
int mq_tok_set(mq_tokenizer *t, int32_t id, const char *s, size_t n, int attr, mq_err *err);
/* Build the string -> id map over model tokens (after every mq_tok_set). */
int mq_tok_index(mq_tokenizer *t, mq_err *err);
/* Merges: call mq_tok_merges_alloc once, then add rank 0, 1, ... */
int mq_tok_merges_alloc(mq_tokenizer *t, int n, mq_err *err);
int mq_tok_add_merge(mq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, int rank,
                     mq_err *err);
/* An added token; content is the raw text. Its match text is normalized
 * with the tokenizer's normalizer when normalized is set, so add added tokens
 * after the normalizer steps. */
int mq_tok_add_added(mq_tokenizer *t, int32_t id, const char *content, size_t n, int special,
                     int lstrip, int rstrip, int single_word, int normalized, mq_err *err);
/* Add an end-of-generation id (ignored when < 0 or a duplicate). */
int mq_tok_add_eog(mq_tokenizer *t, int32_t id);
/* Pieces, byte tables, added-token index, end-of-generation set. */
int mq_tok_finish(mq_tokenizer *t, const mq_dec_spec *dec, mq_err *err);

/* ---- regexes (pretok.c) ---- */
/* Compile a pattern written for Hugging Face tokenizers (Oniguruma syntax) or
 * llama.cpp; literal: match the text as is. */
int mq_tok_regex(const char *pat, size_t len, int literal, pcre2_code **out, const char *where,
                 mq_err *err);
/* Pre-tokenizer steps for a llama.cpp tokenizer.ggml.pre name (BPE vocabularies). */
int mq_tok_pre_preset(mq_tokenizer *t, const char *name, mq_err *err);
/* Append a pre-tokenizer / normalizer step (takes ownership of its pointers). */
int mq_tok_push_pre(mq_tokenizer *t, const mq_pre_step *s, mq_err *err);
int mq_tok_push_norm(mq_tokenizer *t, const mq_norm_step *s, mq_err *err);

/* ---- encoding helpers ---- */
/* Words of one text piece: spans into text. */
typedef struct mq_words {
  mq_bbuf text;
  uint32_t *start, *len;
  size_t n, cap;
} mq_words;
void mq_words_free(mq_words *w);

/* normalize.c: out = normalizer(s). */
int mq_tok_normalize(const mq_tokenizer *t, const char *s, size_t n, mq_bbuf *out, mq_bbuf *tmp,
                     pcre2_match_data *md, mq_err *err);
/* pretok.c: words of s (first: s starts the input text). w is reset. */
int mq_tok_pretokenize(const mq_tokenizer *t, const char *s, size_t n, int first, mq_words *w,
                       mq_words *tmp, pcre2_match_data *md, mq_err *err);

/* bpe.c: ids of one word (model-form text), appended to out. */
typedef struct mq_bpe_scratch {
  void *sym, *heap;
  size_t sym_cap, heap_cap;
} mq_bpe_scratch;
int mq_bpe_word(const mq_tokenizer *t, const char *w, size_t n, mq_bpe_scratch *s, mq_ibuf *out);
void mq_bpe_scratch_free(mq_bpe_scratch *s);

/* added.c: the first added-token match in s[from..n) among tokens with the
 * given normalized flag. *mstart..*mend is the text it consumes (with
 * lstrip/rstrip white space). Returns 1 when found, 0 when not. */
int mq_tok_find_added(const mq_tokenizer *t, const char *s, size_t n, size_t from, int normalized,
                      pcre2_match_data *md, size_t *mstart, size_t *mend, int32_t *id);

#endif
