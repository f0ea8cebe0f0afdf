/* Jobs shared between a connection and the scheduler (see job.h). */
#include "server/job.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double mq_srv_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

mq_job *mq_job_new(void) {
  mq_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  j->refs = 1;
  j->state = MQ_JOB_QUEUED;
  atomic_init(&j->cancel, 0);
  return j;
}

void mq_job_ref(mq_job *j) {
  pthread_mutex_lock(&j->mu);
  j->refs++;
  pthread_mutex_unlock(&j->mu);
}

void mq_job_unref(mq_job *j) {
  if (!j) return;
  pthread_mutex_lock(&j->mu);
  int last = --j->refs == 0;
  pthread_mutex_unlock(&j->mu);
  if (!last) return;
  if (j->out_ready) mq_textout_free(&j->out);
  mq_detok_free(j->dt);
  mq_sampler_free(j->smp);
  for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
  free(j->stop);
  free(j->prompt);
  free(j->bias_id);
  free(j->bias_val);
  free(j->text);
  pthread_cond_destroy(&j->cv);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

void mq_job_cancel(mq_job *j) {
  if (j) atomic_store(&j->cancel, 1);
}

int mq_job_text_cb(void *user, const char *text, size_t len) {
  mq_job *j = user;
  if (atomic_load(&j->cancel)) return 1;
  pthread_mutex_lock(&j->mu);
  int rc = 0;
  if (j->n_text + len > j->cap_text) {
    size_t cap = j->cap_text ? j->cap_text : 256;
    while (cap < j->n_text + len) cap *= 2;
    char *p = realloc(j->text, cap);
    if (!p) {
      rc = 1;
    } else {
      j->text = p;
      j->cap_text = cap;
    }
  }
  if (!rc) {
    memcpy(j->text + j->n_text, text, len);
    j->n_text += len;
    pthread_cond_broadcast(&j->cv);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}
