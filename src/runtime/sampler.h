/* The sampler chain (public API in mixq.h, "Sampling and generation"):
 *
 *   logits [n_vocab] -> candidates (id, logit), NaN -> -inf
 *     -> penalties over the last repeat_last_n accepted ids (repeat, then
 *        frequency and presence, as llama.cpp applies them)
 *     -> greedy argmax when temperature <= 0 (ties: lowest id)
 *     -> top-k -> top-p -> min-p (probabilities at temperature 1)
 *     -> temperature -> one draw from the renormalized distribution.
 *
 * Candidates are ordered by (logit descending, id ascending), a total order,
 * so the kept set and the draw do not depend on the selection algorithm.
 * The random stream is xoshiro256** seeded through splitmix64, and the draw
 * walks the cumulative sum in double precision: a seed gives the same ids on
 * every platform whose exp() agrees (glibc's is correctly rounded in
 * practice). */
#ifndef MQ_RUNTIME_SAMPLER_H
#define MQ_RUNTIME_SAMPLER_H

#include <stdint.h>

#include "mixq.h"

/* The random stream, exposed for tests: a uniform double in [0, 1) from the
 * top 53 bits of the next xoshiro256** output. */
double mq_sampler_uniform(mq_sampler *s);

#endif
