#define _GNU_SOURCE
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define MQ_POOL_MAX 256

struct mq_pool {
  int n_threads; /* including the caller */
  pthread_t threads[MQ_POOL_MAX];
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  unsigned long generation; /* bumped for every loop */
  int pending;              /* workers not yet finished with this loop */
  int quit;
  /* the current loop */
  int n;
  mq_pool_fn fn;
  void *ctx;
};

typedef struct {
  mq_pool *p;
  int tid;
} worker_arg;

static void range_of(int n, int n_threads, int tid, int *b, int *e) {
  long long per = n / n_threads, extra = n % n_threads;
  *b = (int)(tid * per + (tid < extra ? tid : extra));
  *e = (int)(*b + per + (tid < extra ? 1 : 0));
}

static void *worker_main(void *arg) {
  mq_pool *p = ((worker_arg *)arg)->p;
  int tid = ((worker_arg *)arg)->tid;
  free(arg);
  unsigned long seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->quit) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = p->generation;
    int n = p->n;
    mq_pool_fn fn = p->fn;
    void *ctx = p->ctx;
    pthread_mutex_unlock(&p->mu);

    int b, e;
    range_of(n, p->n_threads, tid, &b, &e);
    if (b < e) fn(ctx, b, e, tid);

    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
}

int mq_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (n > MQ_POOL_MAX ? MQ_POOL_MAX : (int)n);
}

mq_pool *mq_pool_init(int n_threads) {
  if (n_threads <= 0) n_threads = mq_cpu_count();
  if (n_threads > MQ_POOL_MAX) n_threads = MQ_POOL_MAX;
  mq_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n_threads = 1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  for (int t = 1; t < n_threads; t++) {
    worker_arg *a = malloc(sizeof *a);
    if (!a) break;
    a->p = p;
    a->tid = t;
    if (pthread_create(&p->threads[t], NULL, worker_main, a) != 0) {
      free(a);
      break;
    }
    p->n_threads++;
  }
  return p;
}

void mq_pool_free(mq_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

int mq_pool_size(const mq_pool *p) { return p ? p->n_threads : 1; }

void mq_pool_for(mq_pool *p, int n, mq_pool_fn fn, void *ctx) {
  if (n <= 0) return;
  if (!p || p->n_threads == 1 || n == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->n = n;
  p->fn = fn;
  p->ctx = ctx;
  p->pending = p->n_threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);

  int b, e;
  range_of(n, p->n_threads, 0, &b, &e);
  if (b < e) fn(ctx, b, e, 0);

  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
