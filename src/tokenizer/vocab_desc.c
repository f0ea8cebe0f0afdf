/* mq_tokenizer_from_vocab: a tokenizer from plain vocabulary arrays, as a
 * GGUF file's tokenizer.ggml.* keys hold them, behaving as llama.cpp does:
 *  - "llama" (SPM): " " -> "▁" with a "▁" prepended (add_space_prefix),
 *    merges of the adjacent pair whose result has the highest score, bytes
 *    of unknown characters as <0xNN> tokens;
 *  - "gpt2" (BPE): the pre-tokenizer named by tokenizer.ggml.pre, the GPT-2
 *    byte map, ranked merges.
 * Control, user-defined and unknown-type tokens are matched in the text. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"

void mq_vocab_desc_init(mq_vocab_desc *d) {
  memset(d, 0, sizeof *d);
  d->bos_id = d->eos_id = d->unk_id = d->eot_id = d->eom_id = -1;
  d->add_bos = d->add_eos = d->add_space_prefix = -1;
}

static const char META[] = "\xE2\x96\x81"; /* ▁ */

static int build(const mq_vocab_desc *d, mq_tokenizer *t, mq_err *err) {
  int n = d->n_tokens, rc;
  for (int i = 0; i < n; i++) {
    const char *s = d->tokens[i];
    if (!s) return mq_errf(err, MQ_ERR_FORMAT, "token %d has no string", i);
    size_t len = d->token_lens ? d->token_lens[i] : strlen(s);
    if ((rc = mq_tok_set(t, i, s, len, MQ_TOKA_NORMAL | MQ_TOKF_MODEL, err)) != MQ_OK) return rc;
  }
  if ((rc = mq_tok_index(t, err)) != MQ_OK) return rc;
  mq_dec_spec dec = {0};
  int spm = d->kind == MQ_VOCAB_KIND_SPM;
  if (spm) {
    if (!d->scores) return mq_errf(err, MQ_ERR_FORMAT, "a SentencePiece vocabulary needs scores");
    t->score = malloc((size_t)n * sizeof *t->score);
    if (!t->score) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    memcpy(t->score, d->scores, (size_t)n * sizeof *t->score);
    t->mode = MQ_BPE_SCORES;
    t->byte_fallback = 1;
    int space_prefix = d->add_space_prefix < 0 ? 1 : d->add_space_prefix;
    mq_norm_step st = {.kind = MQ_NORM_PREPEND, .a = malloc(4), .alen = 3};
    if (space_prefix) {
      if (!st.a) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      memcpy(st.a, META, 4);
      if ((rc = mq_tok_push_norm(t, &st, err)) != MQ_OK) return free(st.a), rc;
    } else {
      free(st.a);
    }
    mq_norm_step rp = {
        .kind = MQ_NORM_REPLACE, .a = malloc(2), .alen = 1, .b = malloc(4), .blen = 3};
    if (!rp.a || !rp.b) return free(rp.a), free(rp.b), mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    memcpy(rp.a, " ", 2);
    memcpy(rp.b, META, 4);
    if ((rc = mq_tok_push_norm(t, &rp, err)) != MQ_OK) return free(rp.a), free(rp.b), rc;
    dec.byte_fallback = 1;
    dec.n_repl = 1;
    dec.from[0] = META, dec.flen[0] = 3, dec.to[0] = " ", dec.tlen[0] = 1;
    dec.strip_seq = space_prefix;
  } else if (d->kind == MQ_VOCAB_KIND_BPE) {
    t->mode = MQ_BPE_MERGES;
    if ((rc = mq_tok_merges_alloc(t, d->n_merges, err)) != MQ_OK) return rc;
    for (int i = 0; i < d->n_merges; i++) {
      const char *m = d->merges[i];
      size_t ml = m ? (d->merge_lens ? d->merge_lens[i] : strlen(m)) : 0;
      const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
      if (!sp) return mq_errf(err, MQ_ERR_FORMAT, "merge %d is not \"left right\"", i);
      if ((rc = mq_tok_add_merge(t, m, (size_t)(sp - m), sp + 1, ml - (size_t)(sp - m) - 1, i,
                                 err)) != MQ_OK)
        return rc;
    }
    if ((rc = mq_tok_pre_preset(t, d->pre, err)) != MQ_OK) return rc;
    dec.byte_level = 1;
  } else {
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "vocabulary kind %d is not supported", (int)d->kind);
  }
  t->unk_id = d->unk_id >= 0 && d->unk_id < n ? d->unk_id : -1;
  /* control, user-defined and unknown-type tokens are found in the text as is */
  for (int i = 0; i < n && d->token_types; i++) {
    int ty = d->token_types[i];
    if (ty != MQ_TOKTYPE_CONTROL && ty != MQ_TOKTYPE_USER_DEFINED && ty != MQ_TOKTYPE_UNKNOWN)
      continue;
    if (!t->len[i]) continue;
    rc = mq_tok_add_added(t, i, t->text + t->off[i], t->len[i], ty != MQ_TOKTYPE_USER_DEFINED, 0, 0,
                          0, 0, err);
    if (rc != MQ_OK) return rc;
  }
  t->bos = d->bos_id >= 0 && d->bos_id < n ? d->bos_id : -1;
  t->eos = d->eos_id >= 0 && d->eos_id < n ? d->eos_id : -1;
  int add_bos = d->add_bos >= 0 ? d->add_bos : (spm || t->ignore_merges); /* llama.cpp's defaults */
  int add_eos = d->add_eos >= 0 ? d->add_eos : 0;
  if (add_bos && t->bos >= 0) {
    if (!(t->prefix = malloc(sizeof *t->prefix)))
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    t->prefix[0] = t->bos, t->n_prefix = 1;
  }
  if (add_eos && t->eos >= 0) {
    if (!(t->suffix = malloc(sizeof *t->suffix)))
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    t->suffix[0] = t->eos, t->n_suffix = 1;
  }
  if (mq_tok_add_eog(t, d->eot_id) != 0 || mq_tok_add_eog(t, d->eom_id) != 0)
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  return mq_tok_finish(t, &dec, err);
}

int mq_tokenizer_from_vocab(const mq_vocab_desc *d, mq_tokenizer **out, mq_err *err) {
  *out = NULL;
  if (!d || !d->tokens || d->n_tokens <= 0)
    return mq_errf(err, MQ_ERR_ARG, "vocabulary: no tokens");
  if (d->n_merges < 0 || (d->n_merges && !d->merges))
    return mq_errf(err, MQ_ERR_ARG, "vocabulary: bad merges");
  mq_tokenizer *t;
  int rc = mq_tok_new(d->n_tokens, &t, err);
  if (rc != MQ_OK) return rc;
  if ((rc = build(d, t, err)) != MQ_OK) {
    mq_tokenizer_free(t);
    return rc;
  }
  *out = t;
  return MQ_OK;
}
