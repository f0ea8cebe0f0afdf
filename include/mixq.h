/* mixq — run offline-quantized LLM checkpoints on CPUs.
 *
 * The public API: an immutable model (weights memory-mapped, shareable by
 * many sessions and threads) and a mutable session (KV cache, scratch,
 * logits). Every function that can fail returns an mq_status and, when given
 * an mq_err, fills it with a message naming the file, tensor or layer and
 * what was expected. Nothing here exits or aborts on bad input. */
#ifndef MIXQ_H
#define MIXQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXQ_VERSION "0.1.0"

typedef enum mq_status {
  MQ_OK = 0,
  MQ_ERR_IO = 1,          /* a file could not be opened, read or mapped */
  MQ_ERR_FORMAT = 2,      /* a file breaks its format's rules */
  MQ_ERR_UNSUPPORTED = 3, /* valid, but not something mixq runs */
  MQ_ERR_NOMEM = 4,       /* an allocation failed or a size is too large */
  MQ_ERR_ARG = 5,         /* the caller passed something invalid */
  MQ_ERR_RANGE = 6,       /* e.g. a token id outside the vocabulary, context full */
} mq_status;

/* Error details. code is the returned status; msg is NUL-terminated text. */
typedef struct mq_err {
  int code;
  char msg[1024];
} mq_err;

/* Short name of a status, e.g. "format error". */
const char *mq_status_str(int status);

typedef struct mq_model mq_model;
typedef struct mq_session mq_session;

typedef enum mq_numerics {
  MQ_NUMERICS_EXACT = 0, /* each scheme's producer math in fp32 (default) */
  MQ_NUMERICS_NPU = 1,   /* ModelSlim parity with SGLang on Ascend: scales and
                            outputs of quantized layers rounded to bf16 */
} mq_numerics;

typedef struct mq_model_params {
  /* NULL: detect the quantization method from the checkpoint. Otherwise a
   * method name the checkpoint must agree with ("none" for float). */
  const char *quantization;
  mq_numerics numerics;
} mq_model_params;

void mq_model_params_default(mq_model_params *p);

/* Load a model from a Hugging Face checkpoint directory (config.json and
 * *.safetensors, single or sharded). On success *out owns the model; free it
 * with mq_model_free once no session uses it. */
int mq_model_load(const char *path, const mq_model_params *params, mq_model **out, mq_err *err);
void mq_model_free(mq_model *m);

typedef struct mq_model_info {
  const char *arch;         /* "llama", "qwen2", "qwen3" */
  const char *quant_method; /* "none", or the detected quantization method */
  int n_vocab;
  int n_embd;
  int n_layer;
  int n_head;
  int n_head_kv;
  int head_dim;
  int n_ff;
  int n_ctx_train;   /* max_position_embeddings */
  int bos_token_id;  /* -1 when unknown */
  int eos_token_id;  /* -1 when unknown */
  uint64_t n_params; /* parameters of all bound weights */
  uint64_t n_bytes;  /* bytes of all bound weights as stored */
} mq_model_info;

void mq_model_get_info(const mq_model *m, mq_model_info *out);

/* One weight matrix of the model as loaded (for `mixq inspect`). */
typedef struct mq_linear_info {
  const char *name;   /* checkpoint prefix, e.g. "model.layers.0.self_attn.q_proj" */
  const char *scheme; /* producer's scheme name, e.g. "FLOAT", "W4A16" */
  const char *weight_format; /* storage, e.g. "BF16", "int4" */
  int w_bits;         /* bits per stored weight value */
  const char *act;    /* activation handling: "float", "int8-dynamic", ... */
  int group_size;     /* 0: none (per-channel or unquantized) */
  int has_zero;       /* zero points present */
  int n_out, n_in;
  uint64_t bytes;     /* bytes of all tensors of this layer as stored */
} mq_linear_info;

/* Things the loader noticed and let pass (e.g. an inconsistent ModelSlim
 * scale_bias checksum); strings owned by m. */
int mq_model_n_warnings(const mq_model *m);
const char *mq_model_warning(const mq_model *m, int i);

/* Write the model as an unquantized checkpoint (config.json without
 * quantization settings, model.safetensors with every quantized linear
 * dequantized to F32, other tensors copied) into directory dst. */
int mq_model_export_float(const mq_model *m, const char *dst, mq_err *err);

int mq_model_n_linears(const mq_model *m);
/* Fill *out for linear i (0 <= i < mq_model_n_linears); strings owned by m. */
int mq_model_linear(const mq_model *m, int i, mq_linear_info *out);

typedef struct mq_session_params {
  int n_ctx;     /* KV cache length in tokens; 0: min(n_ctx_train, 4096) */
  int n_threads; /* 0: all online CPUs */
  int n_batch;   /* tokens computed per forward chunk; 0: 64 */
} mq_session_params;

void mq_session_params_default(mq_session_params *p);

int mq_session_init(const mq_model *m, const mq_session_params *params, mq_session **out,
                    mq_err *err);
void mq_session_free(mq_session *s);

/* Evaluate n_tokens tokens at positions pos..pos+n_tokens-1, where pos is the
 * number of tokens already in the session, appending them to the KV cache.
 * all_logits != 0 keeps logits for every one of these tokens, otherwise only
 * for the last. Fails with MQ_ERR_RANGE (session unchanged) if a token id is
 * outside the vocabulary or the context would overflow. */
int mq_session_eval(mq_session *s, const int32_t *tokens, int n_tokens, int all_logits,
                    mq_err *err);

/* Logits of the last mq_session_eval: [*n_rows, n_vocab] row-major, owned by
 * the session and valid until the next eval. */
const float *mq_session_logits(const mq_session *s, int *n_rows);

/* Tokens currently in the KV cache. */
int mq_session_pos(const mq_session *s);

/* Forget tokens from position pos on (0 clears the session). */
int mq_session_truncate(mq_session *s, int pos, mq_err *err);

/* ==== Tokenizer ===========================================================
 * Text <-> token ids with the checkpoint's own tokenizer. Immutable once
 * loaded; one tokenizer may be used by many threads at once. */

typedef struct mq_tokenizer mq_tokenizer;

/* Load the tokenizer of a Hugging Face model folder (tokenizer.json, with
 * tokenizer_config.json, special_tokens_map.json, generation_config.json and
 * config.json when present for BOS/EOS). Byte-level BPE (GPT-2, Llama-3,
 * Qwen2) and SentencePiece-style BPE with byte fallback (Llama-2, Mistral). */
int mq_tokenizer_load(const char *model_dir, mq_tokenizer **out, mq_err *err);
void mq_tokenizer_free(mq_tokenizer *t);

int mq_tokenizer_n_vocab(const mq_tokenizer *t);
int32_t mq_tokenizer_bos(const mq_tokenizer *t); /* -1 when none */
int32_t mq_tokenizer_eos(const mq_tokenizer *t); /* -1 when none */
/* 1 when id ends a generation: EOS, generation_config's eos ids, and
 * end-of-turn tokens such as <|eot_id|> or <|im_end|>. */
int mq_tokenizer_is_eog(const mq_tokenizer *t, int32_t id);

/* Encode len bytes of text (any bytes: ill-formed UTF-8 is read as U+FFFD).
 * add_special != 0 adds what the model adds around a text (usually BOS).
 * Special tokens written in the text (e.g. "<|im_start|>") become their ids.
 * On success *ids (caller free()s) holds *n_ids ids. */
int mq_tokenizer_encode(const mq_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t **ids, int *n_ids, mq_err *err);

/* Decoding flags. */
#define MQ_DECODE_SKIP_SPECIAL 1 /* leave out special tokens (BOS, EOS, <|im_end|>, ...) */
#define MQ_DECODE_CONTINUE 2     /* the ids continue a text: keep a leading space */

/* Decode ids to well-formed UTF-8: *text is NUL-terminated, caller free()s;
 * *len (may be NULL) its length. Encode then decode gives the text back. */
int mq_tokenizer_decode(const mq_tokenizer *t, const int32_t *ids, int n_ids, int flags,
                        char **text, size_t *len, mq_err *err);

/* The bytes of one token after the decoder's rules (e.g. " the", or one byte
 * of a multi-byte character); NULL for an id outside the vocabulary. Owned by t. */
const char *mq_tokenizer_piece(const mq_tokenizer *t, int32_t id, size_t *len);

/* Streaming detokenizer: push ids one at a time and print what comes back;
 * a character split across tokens is held back until complete, so the
 * output never contains half a character. */
typedef struct mq_detok mq_detok;
int mq_detok_new(const mq_tokenizer *t, int flags, mq_detok **out, mq_err *err);
/* text, len: the bytes ready to print, owned by d, valid until the next call. */
int mq_detok_push(mq_detok *d, int32_t id, const char **text, size_t *len, mq_err *err);
/* End of the stream: a held-back partial character comes out as U+FFFD. The
 * detokenizer can go on afterwards (as with MQ_DECODE_CONTINUE). */
void mq_detok_flush(mq_detok *d, const char **text, size_t *len);
void mq_detok_free(mq_detok *d);

/* ==== end of Tokenizer ==================================================== */

#ifdef __cplusplus
}
#endif
#endif
