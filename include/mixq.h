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
  /* 1: keep every layer in its checkpoint layout (for comparisons); 0: 4-bit
   * weight-only layers are repacked at load into the interleaved layout the
   * kernels read fastest (same math; see docs/performance.md) */
  int no_repack;
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
  uint64_t compute_bytes; /* bytes the kernels read per use (weights, scales) */
  const char *layout; /* compute layout: "rows" (as stored, row-major), "x8" (4-bit
                         codes repacked into 8-row interleaved tiles at load) */
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
  int fast_a16;  /* weight-only (A16) integer layers: quantize activations to
                    int8 blocks of 32 and use integer dot products (faster,
                    not bit-exact; see docs/performance.md). 0: exact */
  int kv_type;   /* the KV cache's element type (mq_kv_type): MQ_KV_F32 exact;
                    MQ_KV_F16 half the memory, keys and values rounded to f16
                    (saturated at +-65504); MQ_KV_Q8_0 about a quarter, each
                    head's row in llama.cpp's Q8_0 blocks of 32 (head_dim must
                    be a multiple of 32) */
} mq_session_params;

typedef enum { MQ_KV_F32 = 0, MQ_KV_F16 = 1, MQ_KV_Q8_0 = 2 } mq_kv_type;

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

/* One decode step for several sessions of the same model at once (continuous
 * batching): tokens[i] is appended to sessions[i]. Every weight is read once
 * for all of them. n must not exceed sessions[0]'s n_batch, no session may
 * have a longer context than sessions[0], and a session appears once. On
 * success each session holds the logits of its token (one row). On error no
 * session is changed. */
int mq_session_eval_multi(mq_session *const *sessions, const int32_t *tokens, int n, mq_err *err);

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

/* ==== Sampling and generation =============================================
 * A sampler turns a row of logits into one token id; mq_generate runs the
 * prompt -> sample -> evaluate loop and streams text. Chat templates render
 * role/content messages into the prompt text a model was tuned on. See
 * docs/generation.md. */

/* The sampler chain, applied in this order (llama.cpp's order):
 *   penalties (repeat, frequency, presence over the last repeat_last_n
 *   accepted tokens) -> top-k -> top-p -> min-p -> temperature -> seeded draw.
 * top-p and min-p see the probabilities at temperature 1, as in llama.cpp.
 * temperature <= 0 is greedy: the penalized argmax (ties: lowest id). */
typedef struct mq_sampler_params {
  float temperature;       /* 0.8; <= 0: greedy */
  int top_k;               /* 40; <= 0: off */
  float top_p;             /* 0.95; 1: off. In [0, 1] */
  float min_p;             /* 0.05; 0: off. In [0, 1] */
  float repeat_penalty;    /* 1.0 (off); > 0: logit / penalty if > 0, else * penalty */
  int repeat_last_n;       /* 64; 0: no penalties; -1: every accepted token */
  float presence_penalty;  /* 0: off; subtracted once from a token seen in the window */
  float frequency_penalty; /* 0: off; subtracted once per occurrence in the window */
  uint64_t seed;           /* MQ_SEED_RANDOM: from the clock (see mq_sampler_seed) */
} mq_sampler_params;

#define MQ_SEED_RANDOM UINT64_MAX

void mq_sampler_params_default(mq_sampler_params *p);

typedef struct mq_sampler mq_sampler;

/* A sampler for a vocabulary of n_vocab logits; every buffer is sized here,
 * sampling allocates nothing. Fails with MQ_ERR_ARG on out-of-range params
 * (NaN, top_p outside [0, 1], repeat_penalty <= 0, ...), naming the field.
 * One sampler per generation stream; it is not shared between threads. */
int mq_sampler_init(const mq_sampler_params *p, int n_vocab, mq_sampler **out, mq_err *err);
void mq_sampler_free(mq_sampler *s);

/* Draw a token from logits [n_vocab] (not modified). NaN logits count as
 * -inf. Returns the id, or -1 when n_vocab is not the sampler's. Does not
 * record the id: call mq_sampler_accept for that. */
int32_t mq_sampler_sample(mq_sampler *s, const float *logits, int n_vocab);

/* Add a token to the penalty history (ids outside the vocabulary are ignored). */
void mq_sampler_accept(mq_sampler *s, int32_t id);

/* Forget the history and restart the random stream from the seed. */
void mq_sampler_reset(mq_sampler *s);

/* The seed in use (the drawn one when MQ_SEED_RANDOM was asked for). */
uint64_t mq_sampler_seed(const mq_sampler *s);

/* Text callback of mq_generate: len bytes of well-formed UTF-8 (not
 * NUL-terminated, valid during the call). Return nonzero to stop. */
typedef int (*mq_text_fn)(void *user, const char *text, size_t len);

#define MQ_MAX_STOP 64
#define MQ_MAX_STOP_LEN 1024

typedef struct mq_generate_params {
  int n_predict;           /* 128; most tokens to sample; < 0: until the context is full */
  const char *const *stop; /* stop strings (UTF-8, not emitted), or NULL; empty ones are */
  int n_stop;              /* ignored; at most MQ_MAX_STOP, each up to MQ_MAX_STOP_LEN bytes */
  int decode_flags;        /* MQ_DECODE_SKIP_SPECIAL (default): special tokens print nothing */
  int eval_last;           /* 1: also evaluate the last sampled token, so the session holds
                              the whole reply (to continue a conversation); default 0 */
  mq_text_fn on_text;      /* may be NULL */
  /* may be NULL: called with each sampled id before its text; nonzero stops
   * (the id is then neither printed nor evaluated). Collect ids or cancel here. */
  int (*on_token)(void *user, int32_t id);
  void *user;              /* passed to both callbacks */
} mq_generate_params;

void mq_generate_params_default(mq_generate_params *p);

typedef enum mq_finish {
  MQ_FINISH_EOG = 0,      /* the model sampled an end-of-generation token ("stop") */
  MQ_FINISH_STOP = 1,     /* a stop string appeared ("stop") */
  MQ_FINISH_LENGTH = 2,   /* n_predict tokens ("length") */
  MQ_FINISH_CONTEXT = 3,  /* the session's context is full ("length") */
  MQ_FINISH_CALLBACK = 4, /* a callback returned nonzero ("stop") */
} mq_finish;

typedef struct mq_generate_result {
  int n_prompt;              /* prompt tokens evaluated */
  int n_generated;           /* tokens sampled, an end-of-generation token included */
  mq_finish finish;
  const char *finish_reason; /* "stop" or "length" (OpenAI's words); static */
  double t_prompt_s;         /* seconds evaluating the prompt */
  double t_gen_s;            /* seconds from then on: sampling and evaluating each token */
} mq_generate_result;

/* Append prompt[0..n_prompt) (n_prompt >= 1) to the session in one eval,
 * then sample and evaluate one token at a time, streaming text through the
 * tokenizer's streaming detokenizer: a character split over tokens is held
 * back until complete, and text that could be the start of a stop string is
 * held back until it is known not to be one. Stops at an end-of-generation
 * token (its text is not emitted), a stop string (neither it nor what
 * follows is emitted), n_predict tokens, the end of the context, or when
 * a callback returns nonzero. The prompt and every sampled id are passed to
 * mq_sampler_accept. A prompt that does not fit fails with MQ_ERR_RANGE and
 * leaves the session unchanged. Re-entrant: everything lives in the
 * arguments; no allocation per token. */
int mq_generate(mq_session *s, const mq_tokenizer *tok, mq_sampler *smp, const int32_t *prompt,
                int n_prompt, const mq_generate_params *p, mq_generate_result *res, mq_err *err);

/* One chat message. role: "system", "user", "assistant" (templates may know
 * others, e.g. "tool"); content: UTF-8 text. */
typedef struct mq_chat_msg {
  const char *role;
  const char *content;
} mq_chat_msg;

typedef struct mq_chat_template mq_chat_template;

/* The chat template to use with a tokenizer. name NULL: the tokenizer's own
 * (tokenizer_config.json "chat_template" or chat_template.jinja), rendered
 * natively when it is a family mixq recognises (ChatML, Llama-3, Llama-2),
 * otherwise by a Jinja-subset interpreter; a template outside the subset
 * fails here with a message naming the construct and its line and column.
 * name "chatml", "llama3", "llama2" or "mistral": that built-in format. tok
 * may be NULL with a name (bos/eos tokens then render as ""). */
int mq_chat_template_init(const mq_tokenizer *tok, const char *name, mq_chat_template **out,
                          mq_err *err);
/* A template from its Jinja source (e.g. a --chat-template-file). */
int mq_chat_template_parse(const char *src, size_t len, const mq_tokenizer *tok,
                           mq_chat_template **out, mq_err *err);
void mq_chat_template_free(mq_chat_template *t);
/* "chatml", "llama3", "llama2", "mistral" or "jinja". */
const char *mq_chat_template_kind(const mq_chat_template *t);

/* Render n messages; add_generation_prompt != 0 appends what opens the
 * assistant's turn. *out (caller free()s) is NUL-terminated, *len (may be
 * NULL) its length. The text holds special tokens as text (e.g.
 * "<|im_start|>"); encoding turns them into their ids. */
int mq_chat_template_apply(const mq_chat_template *t, const mq_chat_msg *msgs, int n,
                           int add_generation_prompt, char **out, size_t *len, mq_err *err);

/* mq_chat_template_init(tok, NULL) + apply + free, in one call. */
int mq_chat_apply(const mq_tokenizer *tok, const mq_chat_msg *msgs, int n,
                  int add_generation_prompt, char **out, size_t *len, mq_err *err);

/* ==== end of Sampling and generation ====================================== */

#ifdef __cplusplus
}
#endif
#endif
