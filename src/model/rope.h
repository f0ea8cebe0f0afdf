/* Rotary position embedding tables (Hugging Face rotate-half layout). */
#ifndef MQ_MODEL_ROPE_H
#define MQ_MODEL_ROPE_H

#include "model/config.h"

/* inv_freq[i] for i < rot_dim/2, with the configured scaling applied. */
void mq_rope_inv_freq(const mq_rope *r, double *inv_freq);

/* cos/sin tables [n_pos, rot_dim/2], attention factor folded in. */
void mq_rope_tables(const mq_rope *r, int n_pos, float *cos_t, float *sin_t);

/* Rotate one head in place: pairs (x[i], x[i + rot/2]) for i < rot/2, or
 * (x[2i], x[2i+1]) when interleaved, using the table row of its position;
 * dims past rot_dim are left as they are. */
void mq_rope_apply(float *x, int rot_dim, int interleaved, const float *cos_row,
                   const float *sin_row);

#endif
