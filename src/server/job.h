/* A generation request as the scheduler sees it: shared by the connection
 * that made it (and its SSE stream) and the scheduler thread.
 *
 * The connection fills the inputs (prompt ids, limits, a ready sampler,
 * streaming detokenizer and stop-string filter) and submits the job; from
 * then on the inputs belong to the scheduler. Results come back through the
 * fields under `mu`: the text produced so far (it only grows, and is always
 * well-formed UTF-8 at any length the scheduler leaves it at), counters and,
 * once state is MQ_JOB_DONE, the finish reason or an error. `cv` is broadcast
 * on every change. `cancel` is set by the connection when its client is gone
 * (or by shutdown); the scheduler checks it before every token.
 *
 * Lifetime: reference counted (connection, stream, scheduler); the last
 * mq_job_unref frees everything. */
#ifndef MQ_SERVER_JOB_H
#define MQ_SERVER_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "mixq.h"
#include "runtime/generate.h"

typedef enum mq_job_state { MQ_JOB_QUEUED, MQ_JOB_RUNNING, MQ_JOB_DONE } mq_job_state;

typedef struct mq_job {
  /* ---- inputs: written before mq_sched_submit, then owned by the scheduler */
  int32_t *prompt; /* [n_prompt], n_prompt >= 1 and < the slot's context */
  int n_prompt;
  int n_predict;   /* >= 1: most tokens to sample */
  mq_sampler *smp;
  mq_detok *dt;
  mq_textout out; /* its callback appends to text (mq_job_text_cb) */
  int out_ready;  /* out was initialised */
  char **stop;    /* [n_stop] stop strings, owned; out points at them */
  int n_stop;
  int32_t *bias_id; /* logit_bias: [n_bias] ids and values added to the logits */
  float *bias_val;
  int n_bias;

  /* ---- results, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  mq_job_state state;
  char *text; /* [n_text] UTF-8 produced so far (not NUL-terminated) */
  size_t n_text, cap_text;
  int n_gen;                 /* tokens sampled (an end-of-generation token included) */
  const char *finish_reason; /* "stop" or "length" once done without error */
  int err_status;            /* 0, or the HTTP status of a failure */
  const char *err_type;      /* OpenAI error type of a failure (static) */
  char err_msg[256];
  double t_submit, t_start, t_prompt_done, t_end; /* monotonic seconds */

  atomic_int cancel; /* 1: stop at the next token */
} mq_job;

/* A new job with one reference; NULL when out of memory. */
mq_job *mq_job_new(void);
void mq_job_ref(mq_job *j);
void mq_job_unref(mq_job *j);
/* Ask the scheduler to stop this job (no-op once done). */
void mq_job_cancel(mq_job *j);
/* mq_text_fn for the job's stop-string filter: appends under mu, wakes
 * waiters; returns nonzero (stop) when cancelled or out of memory. */
int mq_job_text_cb(void *job, const char *text, size_t len);

/* Monotonic clock in seconds. */
double mq_srv_now(void);

#endif
