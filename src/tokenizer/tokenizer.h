/* Tokenizers: text <-> token ids, loaded from a Hugging Face model folder
 * (tokenizer.json and its config files) or built from plain vocabulary
 * arrays (what a GGUF file's tokenizer.ggml.* keys hold).
 *
 * Pipeline of an encode (each stage as tokenizer.json describes it):
 *   text -> lossy UTF-8 (ill-formed bytes become U+FFFD)
 *        -> added tokens matched in the raw text (leftmost, longest)
 *        -> normalizer (Prepend, Replace, NFC, ...) on each remaining segment
 *        -> added tokens marked "normalized" matched in the normalized text
 *        -> pre-tokenizer (regex Split, ByteLevel, Metaspace, ...) -> words
 *        -> BPE on each word (merge ranks, or SentencePiece scores)
 *        -> post-processor (BOS/EOS) when add_special is set.
 * Decoding maps each id to its piece (bytes after the decoder's rules) and
 * joins them, stripping the space the encoder prepended and holding back
 * partial UTF-8 characters when streaming.
 *
 * The public functions (mq_tokenizer_encode, _decode, _piece, mq_detok_*)
 * are declared in mixq.h; this header adds what the library itself uses.
 * A tokenizer is immutable once built and may be shared by threads. */
#ifndef MQ_TOKENIZER_TOKENIZER_H
#define MQ_TOKENIZER_TOKENIZER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

/* Load from a Hugging Face folder: tokenizer.json (required),
 * tokenizer_config.json, special_tokens_map.json, generation_config.json and
 * config.json (optional; BOS/EOS ids). */
int mq_tokenizer_load_hf(const char *dir, mq_tokenizer **out, mq_err *err);
/* The chat template of a Hugging Face folder: tokenizer_config.json's
 * "chat_template" (tc; a string, or a list of {"name", "template"} of which
 * "default" is taken), else the folder's chat_template.jinja. *out is
 * malloc'ed (len bytes, NUL-terminated) or NULL when there is none. */
int mq_hf_chat_template(const char *dir, const json_t *tc, char **out, size_t *len, mq_err *err);

/* Kinds of vocabulary a GGUF file (tokenizer.ggml.model) declares. */
typedef enum mq_vocab_kind {
  MQ_VOCAB_KIND_SPM = 0, /* "llama": SentencePiece BPE, scores, "▁" spaces, <0xNN> bytes */
  MQ_VOCAB_KIND_BPE = 1, /* "gpt2": byte-level BPE with merges and a pre-tokenizer */
} mq_vocab_kind;

/* GGUF token types (tokenizer.ggml.token_type). */
enum {
  MQ_TOKTYPE_UNDEFINED = 0,
  MQ_TOKTYPE_NORMAL = 1,
  MQ_TOKTYPE_UNKNOWN = 2,
  MQ_TOKTYPE_CONTROL = 3,
  MQ_TOKTYPE_USER_DEFINED = 4,
  MQ_TOKTYPE_UNUSED = 5,
  MQ_TOKTYPE_BYTE = 6,
};

/* A vocabulary as plain arrays; everything is copied, nothing is kept.
 * Strings are given with lengths (GGUF strings are not NUL-terminated);
 * a NULL lens array means NUL-terminated strings. */
typedef struct mq_vocab_desc {
  mq_vocab_kind kind;
  const char *pre; /* tokenizer.ggml.pre (BPE); NULL or "default" */
  int n_tokens;
  const char *const *tokens;  /* [n_tokens], index = id */
  const size_t *token_lens;   /* [n_tokens] or NULL */
  const float *scores;        /* [n_tokens]; SPM: merge priority (higher first) */
  const int32_t *token_types; /* [n_tokens] MQ_TOKTYPE_*, or NULL (all normal) */
  int n_merges;
  const char *const *merges;      /* [n_merges] "left right", rank = index (BPE) */
  const size_t *merge_lens;       /* [n_merges] or NULL */
  int32_t bos_id, eos_id, unk_id; /* -1: none */
  int32_t eot_id, eom_id;         /* extra end-of-generation ids, -1: none */
  int add_bos, add_eos;           /* -1: the kind's default */
  int add_space_prefix;           /* SPM: -1 default (1) */
} mq_vocab_desc;

/* Defaults: every id -1, every flag -1, everything else 0/NULL. */
void mq_vocab_desc_init(mq_vocab_desc *d);

/* Build a tokenizer from a vocabulary (what the GGUF reader calls). The
 * pre-tokenizer is chosen by llama.cpp's tokenizer.ggml.pre name. */
int mq_tokenizer_from_vocab(const mq_vocab_desc *d, mq_tokenizer **out, mq_err *err);

/* Tokenizer from a GGUF file's tokenizer.ggml.* metadata (gguf_vocab.c):
 * model "llama" (SentencePiece BPE, scores) or "gpt2" (byte-level BPE,
 * merges); others (bert, t5, ...) are MQ_ERR_UNSUPPORTED naming the model.
 * llama.cpp's defaults apply to absent keys (SPM: BOS 1, EOS 2, UNK 0, add
 * BOS, add a space prefix). Array lengths and ids are checked; errors name
 * the file and key. _from_gguf reads an open file (the model loader's);
 * nothing of it is kept, so the file may be closed afterwards. */
struct mq_gguf_file;
int mq_tokenizer_load_gguf(const char *path, mq_tokenizer **out, mq_err *err);
int mq_tokenizer_from_gguf(const struct mq_gguf_file *f, mq_tokenizer **out, mq_err *err);
/* 1 when mq_tokenizer_load should treat path as a GGUF file: it ends in
 * ".gguf" and is not a directory (a missing file is reported by the loader). */
int mq_tokenizer_is_gguf_path(const char *path);

/* 1 when id is a special (control) token: skipped by MQ_DECODE_SKIP_SPECIAL. */
int mq_tokenizer_is_special(const mq_tokenizer *t, int32_t id);

/* Names of the pre-tokenizers mq_tokenizer_from_vocab knows, NULL-terminated. */
extern const char *const mq_pretok_names[];

#endif
