/* A Hugging Face tokenizer (tokenizer.json and its config files) as GGUF
 * tokenizer.ggml.* metadata (specs/formats.md §5.10), for the GGUF writer.
 *
 *   byte-level BPE (a ByteLevel pre-tokenizer)   -> model "gpt2": tokens,
 *       merges, token types, and tokenizer.ggml.pre = the llama.cpp
 *       pre-tokenizer name whose splitting reproduces this tokenizer
 *   SentencePiece-style BPE (byte_fallback)      -> model "llama": tokens,
 *       scores, token types (unknown, control, byte, normal), add_space_prefix
 *
 * Token ids are kept; holes in the id range and ids up to the model's vocab
 * size are filled with "[PAD<id>]" tokens of type unused, as llama.cpp's
 * converter does. SentencePiece scores are not in tokenizer.json: a token
 * made by merge rank r gets score -r (so merge order = score order, which
 * is what the SentencePiece merge loop uses), other tokens -1e9.
 *
 * The choice is checked, not assumed: the GGUF-side tokenizer is built
 * (mq_tokenizer_from_vocab, what the GGUF reader uses) and must encode a set
 * of probe strings (spaces, digits, contractions, accents, CJK, emoji, code)
 * exactly as the Hugging Face tokenizer does; llama.cpp picks its "pre" name
 * the same way, by comparing tokenizations. For "gpt2" the first
 * pre-tokenizer that agrees on every probe is written; when none does, or a
 * "llama" vocabulary disagrees, the closest is written and a warning says so.
 * Other tokenizer kinds (WordPiece, Unigram) are MQ_ERR_UNSUPPORTED. */
#ifndef MQ_TOKENIZER_GGUF_VOCAB_WRITE_H
#define MQ_TOKENIZER_GGUF_VOCAB_WRITE_H

#include <stddef.h>

#include "io/gguf_write.h"
#include "mixq.h"

/* Add the tokenizer metadata of the Hugging Face folder dir to w.
 * n_vocab_model: the model's vocabulary size (embedding rows); the token
 * list is padded to it. Warnings are appended to warn[0..warn_cap) (one per
 * line; may be NULL). */
int mq_gguf_write_vocab(mq_gguf_writer *w, const char *dir, int n_vocab_model, char *warn,
                        size_t warn_cap, mq_err *err);

#endif
