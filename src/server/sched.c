/* The continuous-batching scheduler (see sched.h for the step). */
#include "server/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_PREFILL, SLOT_READY, SLOT_PENDING };

typedef struct slot {
  mq_session *s;
  mq_job *job; /* NULL when free */
  int phase;
  int n_done;   /* prompt tokens evaluated so far */
  int32_t next; /* SLOT_PENDING: the sampled token to evaluate */
  float *lbuf;  /* [n_vocab] logits + logit_bias */
} slot;

struct mq_sched {
  const mq_model *m;
  const mq_tokenizer *tok;
  int n_vocab, n_tok_vocab, n_ctx, n_batch;
  int n_slots;
  slot *slots;
  mq_session **batch; /* [n_slots] scratch for eval_multi */
  int32_t *batch_tok;
  slot **batch_slot;
  slot *last_pool; /* the slot whose session's thread pool ran last */

  pthread_t th;
  int started;
  pthread_mutex_t mu; /* queue, stopping, stats */
  pthread_cond_t cv;
  mq_job **queue; /* ring of q_cap */
  int q_head, q_len, q_cap;
  int stopping;
  mq_sched_stats st;
};

/* ---- finishing a job ---- */

static void end_job_(mq_sched *S, slot *sl, mq_job *j, const char *reason, int status,
                     const char *type, const char *msg, int locked) {
  pthread_mutex_lock(&j->mu);
  j->state = MQ_JOB_DONE;
  j->finish_reason = reason;
  if (status) {
    j->err_status = status;
    j->err_type = type;
    snprintf(j->err_msg, sizeof j->err_msg, "%s", msg);
  }
  j->t_end = mq_srv_now();
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (!locked) pthread_mutex_lock(&S->mu);
  S->st.jobs_done++;
  if (atomic_load(&j->cancel) && !status) S->st.jobs_cancelled++;
  if (sl) S->st.n_active--;
  if (!locked) pthread_mutex_unlock(&S->mu);
  if (sl) {
    sl->job = NULL;
    sl->phase = SLOT_FREE;
  }
  mq_job_unref(j);
}

static void end_job(mq_sched *S, slot *sl, mq_job *j, const char *reason, int status,
                    const char *type, const char *msg) {
  end_job_(S, sl, j, reason, status, type, msg, 0);
}

/* Emit what the detokenizer and the stop filter still hold (the sequence
 * ended without a stop string). */
static void flush_text(mq_job *j) {
  const char *text;
  size_t len;
  mq_detok_flush(j->dt, &text, &len);
  if (mq_textout_push(&j->out, text, len) == MQ_TEXTOUT_MORE) mq_textout_finish(&j->out);
}

/* ---- one step ---- */

static void admit(mq_sched *S) {
  /* under S->mu */
  for (int i = 0; i < S->n_slots && S->q_len > 0; i++) {
    slot *sl = &S->slots[i];
    if (sl->job) continue;
    mq_job *j = S->queue[S->q_head];
    S->q_head = (S->q_head + 1) % S->q_cap;
    S->q_len--;
    S->st.n_queued = S->q_len;
    sl->job = j;
    sl->phase = SLOT_PREFILL;
    sl->n_done = 0;
    mq_session_truncate(sl->s, 0, NULL);
    S->st.n_active++;
    pthread_mutex_lock(&j->mu);
    j->state = MQ_JOB_RUNNING;
    j->t_start = mq_srv_now();
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
  }
}

static void prefill(mq_sched *S, slot *sl) {
  mq_job *j = sl->job;
  if (atomic_load(&j->cancel)) {
    end_job(S, sl, j, "stop", 0, NULL, NULL);
    return;
  }
  int n = j->n_prompt - sl->n_done;
  if (n > S->n_batch) n = S->n_batch;
  mq_err err = {0};
  double t0 = mq_srv_now();
  int rc = mq_session_eval(sl->s, j->prompt + sl->n_done, n, 0, &err);
  double t1 = mq_srv_now();
  S->last_pool = sl;
  if (rc != MQ_OK) {
    end_job(S, sl, j, NULL, 500, "server_error", err.msg);
    return;
  }
  sl->n_done += n;
  pthread_mutex_lock(&S->mu);
  S->st.prompt_tokens += (uint64_t)n;
  S->st.t_prompt_s += t1 - t0;
  pthread_mutex_unlock(&S->mu);
  if (sl->n_done == j->n_prompt) {
    for (int i = 0; i < j->n_prompt; i++) mq_sampler_accept(j->smp, j->prompt[i]);
    pthread_mutex_lock(&j->mu);
    j->t_prompt_done = t1;
    pthread_mutex_unlock(&j->mu);
    sl->phase = SLOT_READY;
  }
}

/* Sample one token for sl (logits ready) and decide whether it goes on. */
static void sample(mq_sched *S, slot *sl) {
  mq_job *j = sl->job;
  if (atomic_load(&j->cancel)) {
    end_job(S, sl, j, "stop", 0, NULL, NULL);
    return;
  }
  int rows = 0;
  const float *lg = mq_session_logits(sl->s, &rows);
  lg += (size_t)(rows > 0 ? rows - 1 : 0) * (size_t)S->n_vocab;
  if (j->n_bias > 0) {
    memcpy(sl->lbuf, lg, (size_t)S->n_vocab * sizeof(float));
    for (int i = 0; i < j->n_bias; i++) sl->lbuf[j->bias_id[i]] += j->bias_val[i];
    lg = sl->lbuf;
  }
  int32_t id = mq_sampler_sample(j->smp, lg, S->n_vocab);
  if (id < 0) {
    end_job(S, sl, j, NULL, 500, "server_error", "the sampler rejected the logits");
    return;
  }
  mq_sampler_accept(j->smp, id);
  pthread_mutex_lock(&j->mu);
  int n_gen = ++j->n_gen;
  pthread_cond_broadcast(&j->cv); /* its connection checks its client at every token */
  pthread_mutex_unlock(&j->mu);
  pthread_mutex_lock(&S->mu);
  S->st.gen_tokens++;
  pthread_mutex_unlock(&S->mu);

  const char *reason = NULL; /* set: the sequence ends here */
  int flush = 1;
  if (mq_tokenizer_is_eog(S->tok, id)) {
    reason = "stop";
  } else if (id < S->n_tok_vocab) { /* ids past the tokenizer (padding rows) print nothing */
    const char *text;
    size_t len;
    mq_err err = {0};
    if (mq_detok_push(j->dt, id, &text, &len, &err) != MQ_OK) {
      end_job(S, sl, j, NULL, 500, "server_error", err.msg);
      return;
    }
    int r = mq_textout_push(&j->out, text, len);
    if (r != MQ_TEXTOUT_MORE) {
      reason = "stop"; /* a stop string, or cancelled (then nobody reads it) */
      flush = 0;
    }
  }
  if (!reason && n_gen >= j->n_predict) reason = "length";
  if (!reason && mq_session_pos(sl->s) >= S->n_ctx) reason = "length";
  if (reason) {
    if (flush) flush_text(j);
    end_job(S, sl, j, reason, 0, NULL, NULL);
    return;
  }
  sl->next = id;
  sl->phase = SLOT_PENDING;
}

static void decode(mq_sched *S) {
  int n = 0;
  for (int i = 0; i < S->n_slots; i++) {
    slot *sl = &S->slots[i];
    if (sl->job && sl->phase == SLOT_PENDING) {
      S->batch[n] = sl->s;
      S->batch_tok[n] = sl->next;
      S->batch_slot[n] = sl;
      /* The first session's thread pool computes the whole step. Prefer the
       * pool used last: its workers are still spinning, and every other
       * pool's are asleep (two spinning pools would fight for the cores). */
      if (sl == S->last_pool && n > 0) {
        mq_session *ts = S->batch[0];
        int32_t tt = S->batch_tok[0];
        slot *tl = S->batch_slot[0];
        S->batch[0] = S->batch[n], S->batch_tok[0] = S->batch_tok[n], S->batch_slot[0] = sl;
        S->batch[n] = ts, S->batch_tok[n] = tt, S->batch_slot[n] = tl;
      }
      n++;
    }
  }
  if (!n) return;
  S->last_pool = S->batch_slot[0];
  mq_err err = {0};
  double t0 = mq_srv_now();
  int rc = n == 1 ? mq_session_eval(S->batch[0], S->batch_tok, 1, 0, &err)
                  : mq_session_eval_multi(S->batch, S->batch_tok, n, &err);
  double t1 = mq_srv_now();
  pthread_mutex_lock(&S->mu);
  S->st.decode_steps++;
  S->st.decode_seqs += (uint64_t)n;
  S->st.t_decode_s += t1 - t0;
  pthread_mutex_unlock(&S->mu);
  for (int i = 0; i < n; i++) {
    slot *sl = S->batch_slot[i];
    if (rc == MQ_OK) sl->phase = SLOT_READY;
    else end_job(S, sl, sl->job, NULL, 500, "server_error", err.msg);
  }
}

static void *run(void *arg) {
  mq_sched *S = arg;
  for (;;) {
    pthread_mutex_lock(&S->mu);
    while (!S->stopping && S->q_len == 0 && S->st.n_active == 0) pthread_cond_wait(&S->cv, &S->mu);
    if (S->stopping) {
      pthread_mutex_unlock(&S->mu);
      break;
    }
    admit(S);
    pthread_mutex_unlock(&S->mu);

    for (int i = 0; i < S->n_slots; i++)
      if (S->slots[i].job && S->slots[i].phase == SLOT_PREFILL) prefill(S, &S->slots[i]);
    double t0 = mq_srv_now();
    for (int i = 0; i < S->n_slots; i++)
      if (S->slots[i].job && S->slots[i].phase == SLOT_READY) sample(S, &S->slots[i]);
    double t1 = mq_srv_now();
    pthread_mutex_lock(&S->mu);
    S->st.t_decode_s += t1 - t0;
    pthread_mutex_unlock(&S->mu);
    decode(S);
  }
  /* stopping: everything still here ends with 503 */
  for (int i = 0; i < S->n_slots; i++)
    if (S->slots[i].job)
      end_job(S, &S->slots[i], S->slots[i].job, NULL, 503, "unavailable_error",
              "the server is shutting down");
  pthread_mutex_lock(&S->mu);
  while (S->q_len > 0) {
    mq_job *j = S->queue[S->q_head];
    S->q_head = (S->q_head + 1) % S->q_cap;
    S->q_len--;
    pthread_mutex_unlock(&S->mu);
    end_job(S, NULL, j, NULL, 503, "unavailable_error", "the server is shutting down");
    pthread_mutex_lock(&S->mu);
  }
  S->st.n_queued = 0;
  pthread_mutex_unlock(&S->mu);
  return NULL;
}

/* ---- life cycle ---- */

int mq_sched_init(const mq_model *m, const mq_tokenizer *tok, int n_slots, int queue_cap,
                  const mq_session_params *sp, mq_sched **out, mq_err *err) {
  *out = NULL;
  if (n_slots < 1 || queue_cap < 1) {
    if (err) snprintf(err->msg, sizeof err->msg, "need at least one slot and a queue");
    if (err) err->code = MQ_ERR_ARG;
    return MQ_ERR_ARG;
  }
  mq_sched *S = calloc(1, sizeof *S);
  if (!S) return MQ_ERR_NOMEM;
  mq_model_info info;
  mq_model_get_info(m, &info);
  S->m = m;
  S->tok = tok;
  S->n_vocab = info.n_vocab;
  S->n_tok_vocab = mq_tokenizer_n_vocab(tok);
  S->n_slots = n_slots;
  S->q_cap = queue_cap;
  pthread_mutex_init(&S->mu, NULL);
  pthread_cond_init(&S->cv, NULL);
  S->slots = calloc((size_t)n_slots, sizeof *S->slots);
  S->batch = calloc((size_t)n_slots, sizeof *S->batch);
  S->batch_tok = calloc((size_t)n_slots, sizeof *S->batch_tok);
  S->batch_slot = calloc((size_t)n_slots, sizeof *S->batch_slot);
  S->queue = calloc((size_t)queue_cap, sizeof *S->queue);
  if (!S->slots || !S->batch || !S->batch_tok || !S->batch_slot || !S->queue) {
    mq_sched_free(S);
    if (err) snprintf(err->msg, sizeof err->msg, "out of memory");
    if (err) err->code = MQ_ERR_NOMEM;
    return MQ_ERR_NOMEM;
  }
  /* eval_multi needs n_batch >= the number of sequences in the first session
   * of a step; any slot may come first, so every slot gets it. */
  mq_session_params p = *sp;
  if (p.n_batch <= 0) p.n_batch = 64;
  if (p.n_batch < n_slots) p.n_batch = n_slots;
  for (int i = 0; i < n_slots; i++) {
    int rc = mq_session_init(m, &p, &S->slots[i].s, err);
    if (rc == MQ_OK && !(S->slots[i].lbuf = malloc((size_t)S->n_vocab * sizeof(float)))) {
      rc = MQ_ERR_NOMEM;
      if (err) snprintf(err->msg, sizeof err->msg, "out of memory");
    }
    if (rc != MQ_OK) {
      mq_sched_free(S);
      return rc;
    }
  }
  /* the session may have resolved n_ctx (0: from the model) and capped n_batch */
  S->n_ctx = p.n_ctx > 0 ? p.n_ctx : (info.n_ctx_train < 4096 ? info.n_ctx_train : 4096);
  S->n_batch = p.n_batch < S->n_ctx ? p.n_batch : S->n_ctx;
  if (S->n_batch < n_slots) {
    mq_sched_free(S);
    if (err) {
      err->code = MQ_ERR_ARG;
      snprintf(err->msg, sizeof err->msg, "%d parallel slots need a context of at least %d tokens",
               n_slots, n_slots);
    }
    return MQ_ERR_ARG;
  }
  S->st.n_slots = n_slots;
  S->st.queue_cap = queue_cap;
  if (pthread_create(&S->th, NULL, run, S) != 0) {
    mq_sched_free(S);
    if (err) snprintf(err->msg, sizeof err->msg, "cannot start the scheduler thread");
    if (err) err->code = MQ_ERR_NOMEM;
    return MQ_ERR_NOMEM;
  }
  S->started = 1;
  *out = S;
  return MQ_OK;
}

/* Drop the queued jobs whose clients are gone (under S->mu), so that they
 * do not hold places in a full queue until a slot frees up. */
static void purge_cancelled(mq_sched *S) {
  int n = 0;
  for (int i = 0; i < S->q_len; i++) {
    mq_job *j = S->queue[(S->q_head + i) % S->q_cap];
    if (atomic_load(&j->cancel)) end_job_(S, NULL, j, "stop", 0, NULL, NULL, 1);
    else S->queue[(S->q_head + n++) % S->q_cap] = j;
  }
  S->q_len = n;
  S->st.n_queued = n;
}

int mq_sched_submit(mq_sched *S, mq_job *j) {
  pthread_mutex_lock(&S->mu);
  int rc = 0;
  if (S->q_len >= S->q_cap) purge_cancelled(S);
  if (S->stopping) {
    rc = -2;
  } else if (S->q_len >= S->q_cap) {
    rc = -1;
  } else {
    mq_job_ref(j);
    j->t_submit = mq_srv_now();
    S->queue[(S->q_head + S->q_len) % S->q_cap] = j;
    S->q_len++;
    S->st.n_queued = S->q_len;
    pthread_cond_signal(&S->cv);
  }
  pthread_mutex_unlock(&S->mu);
  return rc;
}

int mq_sched_n_ctx(const mq_sched *S) { return S->n_ctx; }

void mq_sched_get_stats(mq_sched *S, mq_sched_stats *out) {
  pthread_mutex_lock(&S->mu);
  *out = S->st;
  pthread_mutex_unlock(&S->mu);
}

void mq_sched_stop(mq_sched *S) {
  if (!S || !S->started) return;
  pthread_mutex_lock(&S->mu);
  S->stopping = 1;
  pthread_cond_signal(&S->cv);
  pthread_mutex_unlock(&S->mu);
  pthread_join(S->th, NULL);
  S->started = 0;
}

void mq_sched_free(mq_sched *S) {
  if (!S) return;
  mq_sched_stop(S);
  for (int i = 0; S->slots && i < S->n_slots; i++) {
    mq_session_free(S->slots[i].s);
    free(S->slots[i].lbuf);
  }
  free(S->slots);
  free(S->batch);
  free(S->batch_tok);
  free(S->batch_slot);
  free(S->queue);
  pthread_cond_destroy(&S->cv);
  pthread_mutex_destroy(&S->mu);
  free(S);
}
