/* A fixed pool of worker threads for data-parallel loops.
 *
 * mq_pool_for splits [0, n) into one contiguous range per thread (the caller
 * thread works too) and returns when all ranges are done. One loop at a time
 * per pool: a pool belongs to one session. */
#ifndef MQ_CORE_POOL_H
#define MQ_CORE_POOL_H

typedef struct mq_pool mq_pool;

/* Work on items [begin, end); tid in [0, n_threads) identifies the thread
 * (for per-thread scratch). */
typedef void (*mq_pool_fn)(void *ctx, int begin, int end, int tid);

/* n_threads <= 0: all online CPUs. Returns NULL on failure. */
mq_pool *mq_pool_init(int n_threads);
void mq_pool_free(mq_pool *p);
int mq_pool_size(const mq_pool *p);
void mq_pool_for(mq_pool *p, int n, mq_pool_fn fn, void *ctx);

/* p, or NULL (run on the caller alone) when a loop of `work` multiply-adds
 * is too small to repay handing it to other threads. */
mq_pool *mq_pool_if(mq_pool *p, double work);

/* Online CPUs of this machine (at least 1). */
int mq_cpu_count(void);

#endif
