/* The sampler chain: greedy and ties, seeded reproducibility, empirical
 * frequencies of temperature / top-k / top-p / min-p / penalties against the
 * renormalized probabilities a straightforward reference computes, penalty
 * effects on the argmax, the penalty window, parameter validation, and a
 * 151,936-token vocabulary (Qwen's) through top-p without top-k. */
#include <time.h>

#include "mixq.h"
#include "runtime/sampler.h"
#include "test.h"

#define N_DRAWS 20000

typedef struct ref_cand {
  int id;
  double l;
} ref_cand;

static int cmp_ref(const void *x, const void *y) {
  const ref_cand *a = x, *b = y;
  if (a->l != b->l) return a->l > b->l ? -1 : 1;
  return a->id - b->id;
}

/* The chain written the obvious way: full sort, then each stage on the
 * sorted list. counts: occurrences of each id in the penalty window (or NULL). */
static void reference(const float *logits, int n, const mq_sampler_params *p, const int *counts,
                      double *prob) {
  ref_cand *c = malloc(sizeof *c * (size_t)n);
  for (int i = 0; i < n; i++) {
    double l = logits[i];
    if (counts && counts[i] > 0) {
      if (p->repeat_penalty != 1.0f) {
        float f = (float)l;
        f = f <= 0 ? f * p->repeat_penalty : f / p->repeat_penalty;
        l = f;
      }
      l = (float)((float)l - ((float)counts[i] * p->frequency_penalty + p->presence_penalty));
    }
    c[i].id = i;
    c[i].l = l;
  }
  qsort(c, (size_t)n, sizeof *c, cmp_ref);
  int keep = n;
  if (p->top_k > 0 && p->top_k < keep) keep = p->top_k;
  double mx = c[0].l;
  if (p->top_p < 1.0f) {
    double tot = 0, cum = 0;
    for (int i = 0; i < keep; i++) tot += exp(c[i].l - mx);
    for (int i = 0; i < keep; i++) {
      cum += exp(c[i].l - mx);
      if (cum >= p->top_p * tot) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p->min_p > 0.0f) {
    int k = 0;
    while (k < keep && exp(c[k].l - mx) >= p->min_p) k++;
    keep = k;
  }
  memset(prob, 0, sizeof *prob * (size_t)n);
  double tot = 0;
  for (int i = 0; i < keep; i++) tot += exp((c[i].l - mx) / p->temperature);
  for (int i = 0; i < keep; i++) prob[c[i].id] = exp((c[i].l - mx) / p->temperature) / tot;
  free(c);
}

static mq_sampler *make(const mq_sampler_params *p, int n) {
  mq_sampler *s = NULL;
  mq_err err = {0};
  if (mq_sampler_init(p, n, &s, &err) != MQ_OK) {
    fprintf(stderr, "sampler init: %s\n", err.msg);
    exit(1);
  }
  return s;
}

/* Draw N_DRAWS tokens; every frequency within 5 standard deviations of its
 * expected probability (plus 2e-4 for rounding), and never a token of
 * probability 0. With fixed seeds the outcome is deterministic. */
static void check_freqs(const char *what, const float *logits, int n, const mq_sampler_params *p,
                        const int32_t *history, int n_hist) {
  mq_sampler *s = make(p, n);
  int *counts = calloc((size_t)n, sizeof *counts);
  for (int i = 0; i < n_hist; i++) {
    mq_sampler_accept(s, history[i]);
    counts[history[i]]++;
  }
  double *prob = malloc(sizeof *prob * (size_t)n);
  reference(logits, n, p, n_hist ? counts : NULL, prob);
  int *hits = calloc((size_t)n, sizeof *hits);
  for (int d = 0; d < N_DRAWS; d++) {
    int32_t id = mq_sampler_sample(s, logits, n);
    CHECK(id >= 0 && id < n);
    if (id >= 0 && id < n) hits[id]++;
  }
  double worst = 0;
  int bad = 0;
  for (int i = 0; i < n; i++) {
    double f = (double)hits[i] / N_DRAWS, pe = prob[i];
    double tol = 5.0 * sqrt(pe * (1 - pe) / N_DRAWS) + 2e-4;
    if (pe == 0 && hits[i])
      bad++, fprintf(stderr, "%s: id %d drawn %d times, p = 0\n", what, i, hits[i]);
    if (fabs(f - pe) > tol)
      bad++, fprintf(stderr, "%s: id %d freq %.4f vs p %.4f\n", what, i, f, pe);
    if (pe > 0 && fabs(f - pe) / sqrt(pe * (1 - pe) / N_DRAWS + 1e-12) > worst)
      worst = fabs(f - pe) / sqrt(pe * (1 - pe) / N_DRAWS + 1e-12);
  }
  CHECK_MSG(bad == 0, "%s: %d frequencies off", what, bad);
  printf("  %-34s worst deviation %.2f sigma\n", what, worst);
  free(hits);
  free(prob);
  free(counts);
  mq_sampler_free(s);
}

static mq_sampler_params plain(float temp, uint64_t seed) {
  mq_sampler_params p;
  mq_sampler_params_default(&p);
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

static void test_distributions(void) {
  enum { NV = 24 };
  float lg[NV];
  for (int i = 0; i < NV; i++) lg[i] = mqt_randf(-3.0f, 3.0f);
  mq_sampler_params p = plain(1.0f, 11);
  check_freqs("temperature 1", lg, NV, &p, NULL, 0);
  p = plain(0.5f, 12);
  check_freqs("temperature 0.5", lg, NV, &p, NULL, 0);
  p = plain(1.7f, 13);
  check_freqs("temperature 1.7", lg, NV, &p, NULL, 0);
  p = plain(1.0f, 14);
  p.top_k = 5;
  check_freqs("top-k 5", lg, NV, &p, NULL, 0);
  p = plain(1.0f, 15);
  p.top_p = 0.8f;
  check_freqs("top-p 0.8", lg, NV, &p, NULL, 0);
  p = plain(1.0f, 16);
  p.min_p = 0.1f;
  check_freqs("min-p 0.1", lg, NV, &p, NULL, 0);
  p = plain(0.7f, 17);
  p.top_k = 10, p.top_p = 0.9f, p.min_p = 0.05f;
  check_freqs("top-k 10, top-p 0.9, min-p 0.05, T 0.7", lg, NV, &p, NULL, 0);
  mq_sampler_params_default(&p);
  p.seed = 18;
  check_freqs("llama.cpp defaults", lg, NV, &p, NULL, 0);
  /* penalties change exactly the accepted ids' logits */
  int32_t hist[] = {3, 3, 7, 20, 3};
  p = plain(1.0f, 19);
  p.repeat_penalty = 1.3f;
  check_freqs("repeat penalty 1.3", lg, NV, &p, hist, 5);
  p = plain(1.0f, 20);
  p.frequency_penalty = 0.4f, p.presence_penalty = 0.3f;
  check_freqs("frequency 0.4 + presence 0.3", lg, NV, &p, hist, 5);
  /* a flat distribution: every id equally likely */
  float flat[NV] = {0};
  p = plain(1.0f, 21);
  check_freqs("uniform", flat, NV, &p, NULL, 0);
}

static void test_greedy(void) {
  mq_sampler_params p = plain(0.0f, 1);
  float lg[8] = {0.5f, 1.0f, 3.0f, -2.0f, 3.0f, NAN, -INFINITY, 2.9f};
  mq_sampler *s = make(&p, 8);
  CHECK(mq_sampler_sample(s, lg, 8) == 2); /* tie 2 / 4: lowest id */
  lg[2] = NAN;                             /* NaN counts as -inf */
  CHECK(mq_sampler_sample(s, lg, 8) == 4);
  CHECK(mq_sampler_sample(s, lg, 7) == -1); /* not this sampler's vocabulary */
  CHECK(mq_sampler_sample(s, NULL, 8) == -1);
  float dead[8];
  for (int i = 0; i < 8; i++) dead[i] = NAN;
  CHECK(mq_sampler_sample(s, dead, 8) == 0);
  mq_sampler_free(s);
  /* negative temperature is greedy too; so is a single surviving candidate */
  p.temperature = -1.0f;
  s = make(&p, 8);
  lg[2] = 3.0f;
  CHECK(mq_sampler_sample(s, lg, 8) == 2);
  mq_sampler_free(s);
  p = plain(1.0f, 5);
  s = make(&p, 8);
  float one[8] = {-INFINITY, -INFINITY, -INFINITY, 4.0f, -INFINITY, -INFINITY, -INFINITY, NAN};
  for (int i = 0; i < 100; i++) CHECK(mq_sampler_sample(s, one, 8) == 3);
  float inf[8] = {0, 0, INFINITY, 0, 0, 0, 0, 0};
  for (int i = 0; i < 100; i++) CHECK(mq_sampler_sample(s, inf, 8) == 2);
  mq_sampler_free(s);
}

static void test_penalties(void) {
  float lg[8] = {2.0f, 1.9f, -1.0f, -1.05f, 0, 0, 0, 0};
  mq_sampler_params p = plain(0.0f, 1);
  p.repeat_penalty = 1.1f;
  mq_sampler *s = make(&p, 8);
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  mq_sampler_accept(s, 0); /* 2.0 / 1.1 = 1.82 < 1.9 */
  CHECK(mq_sampler_sample(s, lg, 8) == 1);
  float neg[8] = {-1.0f, -1.05f, -9, -9, -9, -9, -9, -9};
  CHECK(mq_sampler_sample(s, neg, 8) == 1); /* -1.0 * 1.1 = -1.1 < -1.05 */
  mq_sampler_reset(s);
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  mq_sampler_accept(s, -1); /* ignored */
  mq_sampler_accept(s, 99);
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  mq_sampler_free(s);

  /* frequency scales with the count, presence does not */
  p = plain(0.0f, 1);
  p.frequency_penalty = 0.04f;
  s = make(&p, 8);
  mq_sampler_accept(s, 0);
  mq_sampler_accept(s, 0);
  CHECK(mq_sampler_sample(s, lg, 8) == 0); /* 2.0 - 0.08 > 1.9 */
  mq_sampler_accept(s, 0);
  CHECK(mq_sampler_sample(s, lg, 8) == 1); /* 2.0 - 0.12 < 1.9 */
  mq_sampler_free(s);
  p = plain(0.0f, 1);
  p.presence_penalty = 0.15f;
  s = make(&p, 8);
  for (int i = 0; i < 5; i++) mq_sampler_accept(s, 1);
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  mq_sampler_accept(s, 0);
  CHECK(mq_sampler_sample(s, lg, 8) == 0); /* both lose 0.15 once */
  mq_sampler_free(s);

  /* the window: only the last repeat_last_n accepted ids count */
  p = plain(0.0f, 1);
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 2;
  s = make(&p, 8);
  mq_sampler_accept(s, 0);
  CHECK(mq_sampler_sample(s, lg, 8) == 1);
  mq_sampler_accept(s, 5);
  CHECK(mq_sampler_sample(s, lg, 8) == 1);
  mq_sampler_accept(s, 6); /* 0 leaves the window */
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  for (int i = 0; i < 50; i++) mq_sampler_accept(s, (int32_t)(i % 8));
  mq_sampler_accept(s, 7);
  mq_sampler_accept(s, 0); /* window {7, 0} */
  CHECK(mq_sampler_sample(s, lg, 8) == 1);
  mq_sampler_free(s);
  p.repeat_last_n = 0; /* no penalties at all */
  s = make(&p, 8);
  mq_sampler_accept(s, 0);
  CHECK(mq_sampler_sample(s, lg, 8) == 0);
  mq_sampler_free(s);
  p.repeat_last_n = -1; /* everything ever accepted */
  s = make(&p, 8);
  mq_sampler_accept(s, 0);
  for (int i = 0; i < 1000; i++) mq_sampler_accept(s, 5);
  CHECK(mq_sampler_sample(s, lg, 8) == 1);
  mq_sampler_free(s);
}

static void test_seeds(void) {
  enum { NV = 64, K = 2000 };
  float lg[NV];
  for (int i = 0; i < NV; i++) lg[i] = mqt_randf(-2.0f, 2.0f);
  mq_sampler_params p;
  mq_sampler_params_default(&p);
  p.seed = 42;
  mq_sampler *a = make(&p, NV), *b = make(&p, NV);
  p.seed = 43;
  mq_sampler *c = make(&p, NV);
  int32_t first[K];
  int same_ab = 1, same_ac = 1;
  for (int i = 0; i < K; i++) {
    int32_t x = mq_sampler_sample(a, lg, NV), y = mq_sampler_sample(b, lg, NV),
            z = mq_sampler_sample(c, lg, NV);
    first[i] = x;
    same_ab &= x == y;
    same_ac &= x == z;
  }
  CHECK(same_ab);
  CHECK(!same_ac);
  CHECK(mq_sampler_seed(a) == 42);
  mq_sampler_reset(a); /* the stream restarts */
  int same = 1;
  for (int i = 0; i < K; i++) same &= mq_sampler_sample(a, lg, NV) == first[i];
  CHECK(same);
  /* the random stream itself is fixed for a seed (xoshiro256** via splitmix64),
   * so a seed gives the same ids on every platform */
  mq_sampler_reset(a);
  double u0 = mq_sampler_uniform(a), u1 = mq_sampler_uniform(a);
  CHECK(u0 >= 0 && u0 < 1 && u1 >= 0 && u1 < 1 && u0 != u1);
  mq_sampler_reset(a);
  CHECK(mq_sampler_uniform(a) == u0);
  mq_sampler_free(a);
  mq_sampler_free(b);
  mq_sampler_free(c);
  p.seed = MQ_SEED_RANDOM;
  a = make(&p, NV);
  CHECK(mq_sampler_seed(a) != MQ_SEED_RANDOM);
  mq_sampler_free(a);
  /* pinned: the first draws for seed 1234 on a fixed distribution */
  float fixed[8] = {1.0f, 0.5f, 0.25f, 0.0f, -0.25f, -0.5f, -1.0f, 2.0f};
  p = plain(1.0f, 1234);
  a = make(&p, 8);
  char got[64] = "";
  for (int i = 0; i < 12; i++) {
    char one[8];
    snprintf(one, sizeof one, "%d", (int)mq_sampler_sample(a, fixed, 8));
    strcat(got, one);
  }
  printf("  seed 1234 draws: %s\n", got);
  CHECK_MSG(!strcmp(got, "077707417751"), "seed 1234 drew %s", got);
  mq_sampler_reset(a);
  char again[64] = "";
  for (int i = 0; i < 12; i++) {
    char one[8];
    snprintf(one, sizeof one, "%d", (int)mq_sampler_sample(a, fixed, 8));
    strcat(again, one);
  }
  CHECK(!strcmp(got, again));
  mq_sampler_free(a);
}

static void test_params(void) {
  mq_sampler_params p;
  mq_sampler *s = NULL;
  mq_err err = {0};
  struct {
    const char *field;
    void (*set)(mq_sampler_params *);
  } bad[] = {
      {"temperature", NULL},    {"top_p", NULL},         {"min_p", NULL},
      {"repeat_penalty", NULL}, {"repeat_last_n", NULL}, {"presence_penalty", NULL},
  };
  for (int k = 0; k < 6; k++) {
    mq_sampler_params_default(&p);
    switch (k) {
    case 0: p.temperature = NAN; break;
    case 1: p.top_p = 1.5f; break;
    case 2: p.min_p = -0.1f; break;
    case 3: p.repeat_penalty = 0.0f; break;
    case 4: p.repeat_last_n = -2; break;
    case 5: p.presence_penalty = INFINITY; break;
    }
    CHECK(mq_sampler_init(&p, 10, &s, &err) == MQ_ERR_ARG && s == NULL);
    CHECK_MSG(strstr(err.msg, bad[k].field) != NULL, "%s", err.msg);
  }
  mq_sampler_params_default(&p);
  CHECK(mq_sampler_init(&p, 0, &s, &err) == MQ_ERR_ARG);
  CHECK(p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f &&
        p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.seed == MQ_SEED_RANDOM);
  CHECK(mq_sampler_init(NULL, 10, &s, &err) == MQ_OK); /* NULL: the defaults */
  mq_sampler_free(s);
  mq_sampler_free(NULL);
}

/* Qwen-sized vocabulary: top-p without top-k has to rank a long tail; every
 * draw must come from the reference's kept set. */
static void test_large_vocab(void) {
  enum { NV = 151936, DRAWS = 40 };
  float *lg = malloc(sizeof *lg * NV);
  for (int i = 0; i < NV; i++) lg[i] = mqt_randf(-4.0f, 4.0f);
  lg[1234] = 12.0f; /* a few strong candidates, a flat tail */
  lg[99] = 11.5f;
  mq_sampler_params p = plain(1.0f, 7);
  p.top_p = 0.999f;
  double *prob = malloc(sizeof *prob * NV);
  reference(lg, NV, &p, NULL, prob);
  int kept = 0;
  for (int i = 0; i < NV; i++) kept += prob[i] > 0;
  mq_sampler *s = make(&p, NV);
  clock_t t0 = clock();
  int ok = 1;
  for (int d = 0; d < DRAWS; d++) {
    int32_t id = mq_sampler_sample(s, lg, NV);
    ok &= id >= 0 && id < NV && prob[id] > 0;
  }
  double ms = 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC / DRAWS;
  CHECK(ok);
  printf("  vocab %d, top-p 0.999 keeps %d: %.2f ms per draw\n", NV, kept, ms);
  mq_sampler_free(s);
  /* defaults (top-k 40) on the same row */
  mq_sampler_params_default(&p);
  p.seed = 8;
  s = make(&p, NV);
  reference(lg, NV, &p, NULL, prob);
  t0 = clock();
  ok = 1;
  for (int d = 0; d < DRAWS; d++) {
    int32_t id = mq_sampler_sample(s, lg, NV);
    ok &= id >= 0 && id < NV && prob[id] > 0;
  }
  CHECK(ok);
  printf("  vocab %d, defaults: %.2f ms per draw\n", NV,
         1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC / DRAWS);
  mq_sampler_free(s);
  free(prob);
  free(lg);
}

int main(void) {
  test_greedy();
  test_penalties();
  test_seeds();
  test_params();
  test_distributions();
  test_large_vocab();
  return mqt_report("sampler");
}
