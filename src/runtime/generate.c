/* The generation loop: evaluate the prompt once, then sample, stream and
 * evaluate one token at a time. See mixq.h (mq_generate) for the contract and
 * generate.h for the stop-string filter. */
#include "runtime/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "runtime/session.h"
#include "tokenizer/utf8.h"

#define MQ_TEXTOUT_CHUNK 256

/* ---- stop-string filter ---- */

static int valid_utf8(const char *s, size_t n) {
  mq_bbuf b = {0};
  int ok = mq_utf8_sanitize(s, n, 0, &b) == 0 && b.n == n && (n == 0 || !memcmp(b.p, s, n));
  mq_bbuf_free(&b);
  return ok;
}

int mq_textout_init(mq_textout *o, const char *const *stop, int n_stop, mq_text_fn fn, void *user,
                    mq_err *err) {
  memset(o, 0, sizeof *o);
  if (n_stop < 0 || (n_stop > 0 && !stop))
    return mq_errf(err, MQ_ERR_ARG, "stop strings: bad count %d", n_stop);
  if (n_stop > MQ_MAX_STOP)
    return mq_errf(err, MQ_ERR_ARG, "%d stop strings; at most %d are allowed", n_stop, MQ_MAX_STOP);
  size_t max_len = 0;
  if (n_stop && !(o->stop_len = calloc((size_t)n_stop, sizeof *o->stop_len)))
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n_stop; i++) {
    size_t n = stop[i] ? strlen(stop[i]) : 0;
    if (n > MQ_MAX_STOP_LEN) {
      mq_textout_free(o);
      return mq_errf(err, MQ_ERR_ARG, "stop string %d is %zu bytes long; at most %d are allowed", i,
                     n, MQ_MAX_STOP_LEN);
    }
    if (!valid_utf8(stop[i], n)) {
      mq_textout_free(o);
      return mq_errf(err, MQ_ERR_ARG, "stop string %d is not well-formed UTF-8", i);
    }
    o->stop_len[i] = n;
    if (n > max_len) max_len = n;
  }
  o->stop = stop;
  o->n_stop = n_stop;
  o->cap = max_len + MQ_TEXTOUT_CHUNK;
  if (!(o->hold = malloc(o->cap))) {
    mq_textout_free(o);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  o->fn = fn;
  o->user = user;
  return MQ_OK;
}

void mq_textout_free(mq_textout *o) {
  free(o->hold);
  free(o->stop_len);
  memset(o, 0, sizeof *o);
}

static int emit(mq_textout *o, size_t n) {
  int stop = n > 0 && o->fn && o->fn(o->user, o->hold, n) != 0;
  memmove(o->hold, o->hold + n, o->n - n);
  o->n -= n;
  return stop ? MQ_TEXTOUT_CANCELLED : MQ_TEXTOUT_MORE;
}

static const char *find(const char *h, size_t hn, const char *s, size_t sn) {
  for (size_t i = 0; i + sn <= hn; i++)
    if (h[i] == s[0] && !memcmp(h + i, s, sn)) return h + i;
  return NULL;
}

/* Scan the hold buffer: emit up to a whole stop string, or all but the
 * longest tail that could still become one. */
static int scan(mq_textout *o) {
  size_t first = o->n;
  for (int i = 0; i < o->n_stop; i++) {
    size_t sl = o->stop_len[i];
    if (!sl) continue;
    size_t lim = first < o->n ? first + sl - 1 : o->n; /* only matches starting before first */
    if (lim > o->n) lim = o->n;
    const char *at = find(o->hold, lim, o->stop[i], sl);
    if (at && (size_t)(at - o->hold) < first) first = (size_t)(at - o->hold);
  }
  if (first < o->n) {
    o->n = first;
    int r = emit(o, first);
    return r == MQ_TEXTOUT_MORE ? MQ_TEXTOUT_STOPPED : r;
  }
  size_t keep = 0;
  for (int i = 0; i < o->n_stop; i++) {
    size_t sl = o->stop_len[i];
    size_t k = sl ? sl - 1 : 0;
    if (k > o->n) k = o->n;
    for (; k > keep; k--)
      if (!memcmp(o->hold + o->n - k, o->stop[i], k)) {
        keep = k;
        break;
      }
  }
  return emit(o, o->n - keep);
}

int mq_textout_push(mq_textout *o, const char *text, size_t len) {
  while (len > 0) {
    size_t take = o->cap - o->n;
    if (take >= len) {
      take = len;
    } else {
      size_t t = take; /* cut at a character boundary (space >= 4 bytes always) */
      while (t > 0 && ((unsigned char)text[t] & 0xC0) == 0x80) t--;
      if (t > 0) take = t;
    }
    memcpy(o->hold + o->n, text, take);
    o->n += take;
    text += take;
    len -= take;
    int r = scan(o);
    if (r != MQ_TEXTOUT_MORE) return r;
  }
  return MQ_TEXTOUT_MORE;
}

int mq_textout_finish(mq_textout *o) { return emit(o, o->n); }

/* ---- the loop ---- */

void mq_generate_params_default(mq_generate_params *p) {
  memset(p, 0, sizeof *p);
  p->n_predict = 128;
  p->decode_flags = MQ_DECODE_SKIP_SPECIAL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *reason_of(mq_finish f) {
  return f == MQ_FINISH_LENGTH || f == MQ_FINISH_CONTEXT ? "length" : "stop";
}

int mq_generate(mq_session *s, const mq_tokenizer *tok, mq_sampler *smp, const int32_t *prompt,
                int n_prompt, const mq_generate_params *params, mq_generate_result *res,
                mq_err *err) {
  mq_generate_params def;
  if (!params) {
    mq_generate_params_default(&def);
    params = &def;
  }
  mq_generate_result dummy;
  if (!res) res = &dummy;
  memset(res, 0, sizeof *res);
  res->finish_reason = "stop";
  if (!s || !tok || !smp || !prompt || n_prompt < 1)
    return mq_errf(err, MQ_ERR_ARG,
                   "generate: needs a session, a tokenizer, a sampler and a "
                   "prompt of at least one token");
  mq_model_info info;
  mq_model_get_info(s->m, &info);
  const int n_vocab = info.n_vocab, n_tok_vocab = mq_tokenizer_n_vocab(tok);

  mq_textout out;
  int rc = mq_textout_init(&out, params->stop, params->n_stop, params->on_text, params->user, err);
  if (rc != MQ_OK) return rc;
  mq_detok *dt = NULL;
  rc = mq_detok_new(tok, (params->decode_flags & MQ_DECODE_SKIP_SPECIAL) | MQ_DECODE_CONTINUE, &dt,
                    err);
  if (rc != MQ_OK) goto done;

  double t0 = now_s();
  if ((rc = mq_session_eval(s, prompt, n_prompt, 0, err)) != MQ_OK) goto done;
  double t1 = now_s();
  res->n_prompt = n_prompt;
  res->t_prompt_s = t1 - t0;
  for (int i = 0; i < n_prompt; i++) mq_sampler_accept(smp, prompt[i]);

  mq_finish finish = MQ_FINISH_LENGTH;
  int n_gen = 0, flush = 1;
  for (;;) {
    if (params->n_predict >= 0 && n_gen >= params->n_predict) {
      finish = MQ_FINISH_LENGTH;
      break;
    }
    int rows = 0;
    const float *lg = mq_session_logits(s, &rows);
    int32_t id = mq_sampler_sample(smp, lg + (size_t)(rows - 1) * n_vocab, n_vocab);
    if (id < 0) {
      rc = mq_errf(err, MQ_ERR_ARG, "generate: the sampler is not for this model's %d logits",
                   n_vocab);
      goto done;
    }
    if (params->on_token && params->on_token(params->user, id) != 0) {
      finish = MQ_FINISH_CALLBACK;
      flush = 0;
      break;
    }
    mq_sampler_accept(smp, id);
    res->n_generated = ++n_gen;
    int stop = -1;
    if (mq_tokenizer_is_eog(tok, id)) {
      stop = MQ_FINISH_EOG;
    } else if (id < n_tok_vocab) { /* ids past the tokenizer (padding rows) print nothing */
      const char *text;
      size_t len;
      if ((rc = mq_detok_push(dt, id, &text, &len, err)) != MQ_OK) goto done;
      int r = mq_textout_push(&out, text, len);
      if (r != MQ_TEXTOUT_MORE) {
        stop = r == MQ_TEXTOUT_STOPPED ? MQ_FINISH_STOP : MQ_FINISH_CALLBACK;
        flush = 0;
      }
    }
    int last = stop >= 0 || (params->n_predict >= 0 && n_gen >= params->n_predict);
    if (!last || params->eval_last) {
      if (s->pos >= s->n_ctx) {
        if (stop < 0) stop = MQ_FINISH_CONTEXT;
      } else if ((rc = mq_session_eval(s, &id, 1, 0, err)) != MQ_OK) {
        goto done;
      }
    }
    if (stop >= 0) {
      finish = (mq_finish)stop;
      break;
    }
  }
  if (flush) { /* a partial character becomes U+FFFD; the held tail was no stop string */
    const char *text;
    size_t len;
    mq_detok_flush(dt, &text, &len);
    int r = mq_textout_push(&out, text, len);
    if (r == MQ_TEXTOUT_STOPPED)
      finish = MQ_FINISH_STOP;
    else if (r == MQ_TEXTOUT_CANCELLED)
      finish = MQ_FINISH_CALLBACK;
    else if (mq_textout_finish(&out) != MQ_TEXTOUT_MORE)
      finish = MQ_FINISH_CALLBACK;
  }
  res->n_generated = n_gen;
  res->finish = finish;
  res->finish_reason = reason_of(finish);
  res->t_gen_s = now_s() - t1;
done:
  mq_detok_free(dt);
  mq_textout_free(&out);
  return rc;
}
