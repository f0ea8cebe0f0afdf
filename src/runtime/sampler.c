/* Sampler chain: penalties, top-k, top-p, min-p, temperature, seeded draw.
 * See sampler.h for the order and the reproducibility rules. Every buffer is
 * sized for the vocabulary at init; sampling allocates nothing. */
#include "runtime/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

typedef struct mq_cand {
  int32_t id;
  float logit;
} mq_cand;

struct mq_sampler {
  mq_sampler_params p;
  int n_vocab;
  uint64_t seed;
  uint64_t rng[4];
  mq_cand *cand; /* [n_vocab] scratch */
  /* penalty window: ring of the last repeat_last_n ids (no ring when -1),
   * occurrences of each id, and the list of ids that occur */
  int32_t *ring;
  int ring_cap, ring_n, ring_head;
  int32_t *count; /* [n_vocab] */
  int32_t *where; /* [n_vocab] index in seen, -1 when absent */
  int32_t *seen;  /* [n_vocab] ids with count > 0 */
  int n_seen;
};

void mq_sampler_params_default(mq_sampler_params *p) {
  memset(p, 0, sizeof *p);
  p->temperature = 0.8f;
  p->top_k = 40;
  p->top_p = 0.95f;
  p->min_p = 0.05f;
  p->repeat_penalty = 1.0f;
  p->repeat_last_n = 64;
  p->presence_penalty = 0.0f;
  p->frequency_penalty = 0.0f;
  p->seed = MQ_SEED_RANDOM;
}

/* ---- random numbers: splitmix64 -> xoshiro256** ---- */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t *s) {
  uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return r;
}

double mq_sampler_uniform(mq_sampler *s) {
  return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

static void seed_rng(mq_sampler *s) {
  uint64_t x = s->seed;
  for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

static uint64_t random_seed(const void *salt) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
  uint64_t r = splitmix64(&x);
  return r == MQ_SEED_RANDOM ? 0 : r;
}

/* ---- parameters ---- */
static int check_params(const mq_sampler_params *p, mq_err *err) {
#define BAD(field, why) mq_errf(err, MQ_ERR_ARG, "sampler: " field " %s", why)
  if (!isfinite(p->temperature)) return BAD("temperature", "must be a finite number");
  if (!(p->top_p >= 0.0f && p->top_p <= 1.0f)) return BAD("top_p", "must be in [0, 1]");
  if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) return BAD("min_p", "must be in [0, 1]");
  if (!(isfinite(p->repeat_penalty) && p->repeat_penalty > 0.0f))
    return BAD("repeat_penalty", "must be a finite number > 0");
  if (p->repeat_last_n < -1) return BAD("repeat_last_n", "must be >= -1");
  if (!isfinite(p->presence_penalty)) return BAD("presence_penalty", "must be a finite number");
  if (!isfinite(p->frequency_penalty)) return BAD("frequency_penalty", "must be a finite number");
  return MQ_OK;
#undef BAD
}

int mq_sampler_init(const mq_sampler_params *p, int n_vocab, mq_sampler **out, mq_err *err) {
  *out = NULL;
  mq_sampler_params def;
  if (!p) {
    mq_sampler_params_default(&def);
    p = &def;
  }
  if (n_vocab <= 0) return mq_errf(err, MQ_ERR_ARG, "sampler: n_vocab must be positive");
  int rc = check_params(p, err);
  if (rc != MQ_OK) return rc;
  mq_sampler *s = calloc(1, sizeof *s);
  if (!s) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  s->p = *p;
  s->n_vocab = n_vocab;
  size_t nv = (size_t)n_vocab;
  s->cand = malloc(nv * sizeof *s->cand);
  s->count = calloc(nv, sizeof *s->count);
  s->where = malloc(nv * sizeof *s->where);
  s->seen = malloc(nv * sizeof *s->seen);
  if (p->repeat_last_n > 0) {
    s->ring_cap = p->repeat_last_n;
    s->ring = malloc((size_t)s->ring_cap * sizeof *s->ring);
  }
  if (!s->cand || !s->count || !s->where || !s->seen || (s->ring_cap && !s->ring)) {
    mq_sampler_free(s);
    return mq_errf(err, MQ_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d", n_vocab);
  }
  s->seed = p->seed == MQ_SEED_RANDOM ? random_seed(s) : p->seed;
  mq_sampler_reset(s);
  *out = s;
  return MQ_OK;
}

void mq_sampler_free(mq_sampler *s) {
  if (!s) return;
  free(s->cand);
  free(s->count);
  free(s->where);
  free(s->seen);
  free(s->ring);
  free(s);
}

uint64_t mq_sampler_seed(const mq_sampler *s) { return s->seed; }

void mq_sampler_reset(mq_sampler *s) {
  memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
  memset(s->where, 0xFF, (size_t)s->n_vocab * sizeof *s->where);
  s->n_seen = 0;
  s->ring_n = s->ring_head = 0;
  seed_rng(s);
}

/* ---- penalty history ---- */
static void count_add(mq_sampler *s, int32_t id) {
  if (s->count[id]++ == 0) {
    s->where[id] = s->n_seen;
    s->seen[s->n_seen++] = id;
  }
}

static void count_remove(mq_sampler *s, int32_t id) {
  if (--s->count[id] == 0) {
    int32_t w = s->where[id], last = s->seen[--s->n_seen];
    s->seen[w] = last;
    s->where[last] = w;
    s->where[id] = -1;
  }
}

void mq_sampler_accept(mq_sampler *s, int32_t id) {
  if (!s || id < 0 || id >= s->n_vocab || s->p.repeat_last_n == 0) return;
  if (s->ring_cap) {
    if (s->ring_n == s->ring_cap) { /* full: the oldest (at head) leaves */
      count_remove(s, s->ring[s->ring_head]);
      s->ring[s->ring_head] = id;
      s->ring_head = (s->ring_head + 1) % s->ring_cap;
    } else {
      s->ring[(s->ring_head + s->ring_n++) % s->ring_cap] = id;
    }
  }
  count_add(s, id);
}

/* ---- ordering and selection ---- */
static inline int better(const mq_cand *a, const mq_cand *b) {
  return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *x, const void *y) {
  const mq_cand *a = x, *b = y;
  return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static inline void swap_cand(mq_cand *a, mq_cand *b) {
  mq_cand t = *a;
  *a = *b;
  *b = t;
}

/* Reorder a[0..n) so that a[0..k) are its k best candidates, sorted
 * (quickselect with a median-of-three pivot, then a sort of the k). Falls
 * back to a full sort if the selection degenerates. */
static void top_sorted(mq_cand *a, int n, int k) {
  if (k >= n) {
    qsort(a, (size_t)n, sizeof *a, cmp_cand);
    return;
  }
  int lo = 0, hi = n - 1, budget = 64;
  while (lo < hi) {
    if (--budget == 0) {
      qsort(a + lo, (size_t)(hi - lo + 1), sizeof *a, cmp_cand);
      break;
    }
    int mid = lo + (hi - lo) / 2;
    if (better(&a[mid], &a[lo])) swap_cand(&a[mid], &a[lo]);
    if (better(&a[hi], &a[lo])) swap_cand(&a[hi], &a[lo]);
    if (better(&a[hi], &a[mid])) swap_cand(&a[hi], &a[mid]);
    mq_cand pivot = a[mid];
    int i = lo, j = hi;
    while (i <= j) {
      while (better(&a[i], &pivot)) i++;
      while (better(&pivot, &a[j])) j--;
      if (i <= j) swap_cand(&a[i++], &a[j--]);
    }
    /* a[lo..j] >= pivot >= a[i..hi] in the candidate order */
    if (k - 1 <= j)
      hi = j;
    else if (k - 1 >= i)
      lo = i;
    else
      break;
  }
  qsort(a, (size_t)k, sizeof *a, cmp_cand);
}

/* ---- the chain ---- */
static void apply_penalties(mq_sampler *s, mq_cand *c) {
  const mq_sampler_params *p = &s->p;
  if (p->repeat_last_n == 0 || s->n_seen == 0) return;
  if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
    return;
  /* c is still indexed by id here */
  for (int i = 0; i < s->n_seen; i++) {
    int32_t id = s->seen[i];
    float l = c[id].logit;
    if (p->repeat_penalty != 1.0f) l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
    l -= (float)s->count[id] * p->frequency_penalty + p->presence_penalty;
    c[id].logit = isnan(l) ? -INFINITY : l;
  }
}

int32_t mq_sampler_sample(mq_sampler *s, const float *logits, int n_vocab) {
  if (!s || !logits || n_vocab != s->n_vocab) return -1;
  const mq_sampler_params *p = &s->p;
  mq_cand *c = s->cand;
  for (int i = 0; i < n_vocab; i++) {
    float l = logits[i];
    c[i].id = i;
    c[i].logit = isnan(l) ? -INFINITY : l == INFINITY ? 3.0e38f : l;
  }
  apply_penalties(s, c);

  /* greedy, and the maximum every later stage needs */
  int best = 0;
  for (int i = 1; i < n_vocab; i++)
    if (c[i].logit > c[best].logit) best = i; /* strict: ties keep the lowest id */
  if (p->temperature <= 0.0f || c[best].logit == -INFINITY) return c[best].id;
  float max_logit = c[best].logit;

  /* drop -inf candidates (masked or penalized away) */
  int n = 0;
  for (int i = 0; i < n_vocab; i++)
    if (c[i].logit > -INFINITY) c[n++] = c[i];
  int sorted = 0; /* c[0..sorted) holds the best candidates in order */

  if (p->top_k > 0 && p->top_k < n) {
    top_sorted(c, n, p->top_k);
    n = sorted = p->top_k;
  }

  if (p->top_p < 1.0f && n > 1) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += exp((double)c[i].logit - max_logit);
    double target = (double)p->top_p * total;
    int m = sorted ? n : (n < 64 ? n : 64);
    for (;;) {
      if (sorted < m) {
        top_sorted(c, n, m);
        sorted = m;
      }
      double cum = 0.0;
      int cut = -1;
      for (int i = 0; i < m; i++) {
        cum += exp((double)c[i].logit - max_logit);
        if (cum >= target) {
          cut = i + 1;
          break;
        }
      }
      if (cut > 0) {
        n = cut;
        break;
      }
      if (m == n) break; /* rounding: the whole set */
      m = m > n / 4 ? n : m * 4;
    }
  }

  if (p->min_p > 0.0f && n > 1) {
    /* keep p_i >= min_p * p_max, i.e. exp(l_i - max) >= min_p */
    int k = 0;
    for (int i = 0; i < n; i++)
      if (exp((double)c[i].logit - max_logit) >= (double)p->min_p) c[k++] = c[i];
    n = k; /* the maximum always stays */
  }

  if (n == 1) return c[0].id;

  /* temperature and the draw */
  double inv_t = 1.0 / (double)p->temperature, total = 0.0;
  for (int i = 0; i < n; i++) total += exp(((double)c[i].logit - max_logit) * inv_t);
  double u = mq_sampler_uniform(s) * total, cum = 0.0;
  for (int i = 0; i < n; i++) {
    cum += exp(((double)c[i].logit - max_logit) * inv_t);
    if (u < cum) return c[i].id;
  }
  return c[n - 1].id;
}
