/* The continuous-batching scheduler of `mixq serve`.
 *
 * One thread owns n_slots sessions of the same model (one per sequence in
 * flight) and a bounded FIFO of waiting jobs. Each step it
 *   1. admits waiting jobs into free slots (a slot is reused: truncated to 0),
 *   2. evaluates one chunk (n_batch tokens) of every prompt still being read,
 *      so a long prompt is interleaved with the others' decoding,
 *   3. samples one token for every slot whose logits are ready, streams its
 *      text (detokenizer -> stop-string filter -> the job's text) and decides
 *      whether that sequence is finished,
 *   4. evaluates the sampled tokens of all continuing sequences with ONE
 *      mq_session_eval_multi call (every weight read once for all of them).
 * A cancelled job (client gone) is dropped at the next step, before its next
 * token is sampled. Nothing waits for the slowest request: a new job joins
 * the running batch at the next step, a finished one leaves it. */
#ifndef MQ_SERVER_SCHED_H
#define MQ_SERVER_SCHED_H

#include <stdint.h>

#include "mixq.h"
#include "server/job.h"

typedef struct mq_sched mq_sched;

typedef struct mq_sched_stats {
  uint64_t prompt_tokens;   /* prompt tokens evaluated */
  uint64_t gen_tokens;      /* tokens sampled */
  uint64_t jobs_done;       /* jobs finished (any way) */
  uint64_t jobs_cancelled;  /* of which cancelled by the client */
  uint64_t decode_steps;    /* mq_session_eval_multi calls */
  uint64_t decode_seqs;     /* sequences summed over those calls */
  double t_prompt_s;        /* seconds spent evaluating prompts */
  double t_decode_s;        /* seconds spent in batched decode steps and sampling */
  int n_active, n_queued, n_slots, queue_cap;
} mq_sched_stats;

/* n_slots sessions with params sp (n_batch is raised to n_slots when lower)
 * and a queue of queue_cap jobs; starts the scheduler thread. */
int mq_sched_init(const mq_model *m, const mq_tokenizer *tok, int n_slots, int queue_cap,
                  const mq_session_params *sp, mq_sched **out, mq_err *err);
/* Queue j (the scheduler takes its own reference). 0: queued; -1: the queue
 * is full; -2: the scheduler is stopping. */
int mq_sched_submit(mq_sched *s, mq_job *j);
/* Context length of every slot. */
int mq_sched_n_ctx(const mq_sched *s);
void mq_sched_get_stats(mq_sched *s, mq_sched_stats *out);
/* Stop the thread: queued and running jobs end with a 503 error; later
 * submits get -2. */
void mq_sched_stop(mq_sched *s);
/* mq_sched_stop if not done yet, then free s. */
void mq_sched_free(mq_sched *s);

#endif
