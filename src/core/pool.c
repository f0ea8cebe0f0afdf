#define _GNU_SOURCE
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define MQ_POOL_MAX 256
/* A worker spins this many rounds waiting for the next loop, then yields the
 * CPU for YIELD_ROUNDS more checks, then sleeps: decode issues a loop every
 * few microseconds and waking a sleeping thread costs more than the loop. */
#define SPIN_ROUNDS 20000
#define YIELD_ROUNDS 2000
/* Chunks per thread: work is claimed chunk by chunk, so a thread that is
 * late (descheduled on a busy machine) is not waited for — the others take
 * its share. */
#define CHUNKS_PER_THREAD 4

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* A loop is published as `work` = generation << 32 | next chunk to claim.
 * Its parameters are written (relaxed) before `work` is stored (release); a
 * thread reads them after loading `work` and uses them only if its claim
 * (a CAS on the same `work` value) succeeds — which proves the loop it read
 * is still the current one. */
struct mq_pool {
  int n_threads; /* including the caller */
  pthread_t threads[MQ_POOL_MAX];
  atomic_uint_fast64_t work;
  atomic_int done;  /* chunks of the current loop finished */
  _Atomic(mq_pool_fn) fn;
  _Atomic(void *) ctx;
  atomic_int n, n_chunks;
  atomic_int quit;
  atomic_int sleepers;
  pthread_mutex_t mu;
  pthread_cond_t wake;
};

typedef struct {
  mq_pool *p;
  int tid;
} worker_arg;

/* Claim and run chunks of the loop of generation gen until none are left. */
static void run_chunks(mq_pool *p, uint64_t gen, int tid) {
  for (;;) {
    uint64_t w = atomic_load_explicit(&p->work, memory_order_acquire);
    if ((w >> 32) != gen) return;
    int chunk = (int)(w & 0xffffffffu);
    int n = atomic_load_explicit(&p->n, memory_order_relaxed);
    int nc = atomic_load_explicit(&p->n_chunks, memory_order_relaxed);
    mq_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
    if (chunk >= nc) return;
    if (!atomic_compare_exchange_weak_explicit(&p->work, &w, w + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    long long b = (long long)n * chunk / nc, e = (long long)n * (chunk + 1) / nc;
    if (b < e) fn(ctx, (int)b, (int)e, tid);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
  }
}

/* Wait until the published generation differs from seen (or quit). */
static uint64_t wait_next(mq_pool *p, uint64_t seen) {
  for (int i = 0; i < SPIN_ROUNDS + YIELD_ROUNDS; i++) {
    uint64_t g = atomic_load_explicit(&p->work, memory_order_acquire) >> 32;
    if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed)) return g;
    if (i < SPIN_ROUNDS) CPU_RELAX();
    else sched_yield();
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->sleepers, 1);
  uint64_t g;
  while ((g = atomic_load(&p->work) >> 32) == seen && !atomic_load(&p->quit))
    pthread_cond_wait(&p->wake, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mu);
  return g;
}

static void *worker_main(void *arg) {
  mq_pool *p = ((worker_arg *)arg)->p;
  int tid = ((worker_arg *)arg)->tid;
  free(arg);
  uint64_t seen = 0;
  for (;;) {
    seen = wait_next(p, seen);
    if (atomic_load(&p->quit)) return NULL;
    run_chunks(p, seen, tid);
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
  atomic_init(&p->work, 0);
  atomic_init(&p->done, 0);
  atomic_init(&p->fn, NULL);
  atomic_init(&p->ctx, NULL);
  atomic_init(&p->n, 0);
  atomic_init(&p->n_chunks, 0);
  atomic_init(&p->quit, 0);
  atomic_init(&p->sleepers, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
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
 * for the other threads costs more than it saves. */
#define MQ_POOL_MIN_WORK 65536.0

mq_pool *mq_pool_if(mq_pool *p, double work) { return work < MQ_POOL_MIN_WORK ? NULL : p; }

void mq_pool_for(mq_pool *p, int n, mq_pool_fn fn, void *ctx) {
  if (n <= 0) return;
  if (!p || p->n_threads == 1 || n == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  int nc = p->n_threads * CHUNKS_PER_THREAD;
  if (nc > n) nc = n;
  uint64_t gen = (atomic_load_explicit(&p->work, memory_order_relaxed) >> 32) + 1;
  atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
  atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&p->n, n, memory_order_relaxed);
  atomic_store_explicit(&p->n_chunks, nc, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store(&p->work, gen << 32); /* seq_cst: ordered against the sleepers check */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  run_chunks(p, gen, 0);
  /* every chunk is claimed now; wait only for those still running */
  for (int i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < nc; i++) {
    if (i < SPIN_ROUNDS) CPU_RELAX();
    else sched_yield();
  }
}
