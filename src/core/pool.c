#define _GNU_SOURCE
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define MQ_POOL_MAX 256
/* A worker spins this many rounds waiting for the next loop, then yields the
 * CPU for YIELD_ROUNDS more checks, then sleeps: decode issues a loop every
 * few microseconds and waking a sleeping thread costs more than the loop,
 * but on a machine with more runnable threads than cores a spinning thread
 * would take the CPU from the one it waits for. */
#define SPIN_ROUNDS 20000
#define YIELD_ROUNDS 2000

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

struct mq_pool {
  int n_threads; /* including the caller */
  pthread_t threads[MQ_POOL_MAX];
  atomic_ulong generation; /* bumped to publish a loop */
  atomic_int pending;      /* workers not yet done with the current loop */
  atomic_int quit;
  atomic_int sleepers;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  /* the current loop, written before generation is bumped */
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

/* Wait until generation differs from seen (or quit); returns the new one. */
static unsigned long wait_next(mq_pool *p, unsigned long seen) {
  for (int i = 0; i < SPIN_ROUNDS + YIELD_ROUNDS; i++) {
    unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
    if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed)) return g;
    if (i < SPIN_ROUNDS) CPU_RELAX();
    else sched_yield();
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->sleepers, 1);
  unsigned long g;
  while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->quit))
    pthread_cond_wait(&p->wake, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mu);
  return g;
}

static void *worker_main(void *arg) {
  mq_pool *p = ((worker_arg *)arg)->p;
  int tid = ((worker_arg *)arg)->tid;
  free(arg);
  unsigned long seen = 0;
  for (;;) {
    seen = wait_next(p, seen);
    if (atomic_load(&p->quit)) return NULL;
    int b, e;
    range_of(p->n, p->n_threads, tid, &b, &e);
    if (b < e) p->fn(p->ctx, b, e, tid);
    atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
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
  atomic_init(&p->generation, 0);
  atomic_init(&p->pending, 0);
  atomic_init(&p->quit, 0);
  atomic_init(&p->sleepers, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  for (int t = 1; t < n_threads; t++) {
    worker_arg *a = malloc(sizeof *a);
    if (!a) break;
    a->p = p;
    a->tid = t;
    /* n_threads is read by workers for their ranges: count before starting */
    p->n_threads++;
    if (pthread_create(&p->threads[t], NULL, worker_main, a) != 0) {
      p->n_threads--;
      free(a);
      break;
    }
  }
  return p;
}

void mq_pool_free(mq_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->quit, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  free(p);
}

int mq_pool_size(const mq_pool *p) { return p ? p->n_threads : 1; }

/* About 20 microseconds of work on one core: below it, waking and waiting
 * for the other threads costs more than it saves (and far more when the
 * machine is oversubscribed and a worker is not running). */
#define MQ_POOL_MIN_WORK 65536.0

mq_pool *mq_pool_if(mq_pool *p, double work) { return work < MQ_POOL_MIN_WORK ? NULL : p; }

void mq_pool_for(mq_pool *p, int n, mq_pool_fn fn, void *ctx) {
  if (n <= 0) return;
  if (!p || p->n_threads == 1 || n == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  p->n = n;
  p->fn = fn;
  p->ctx = ctx;
  atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
  atomic_fetch_add(&p->generation, 1); /* seq_cst: ordered against the sleepers check */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  int b, e;
  range_of(n, p->n_threads, 0, &b, &e);
  if (b < e) fn(ctx, b, e, 0);
  for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
    if (i < SPIN_ROUNDS) CPU_RELAX();
    else sched_yield();
  }
}
