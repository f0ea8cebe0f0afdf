/* Text generation (public API in mixq.h: mq_generate) and the stop-string
 * filter it streams through, exposed here for tests and for the server.
 *
 * The filter sits between the streaming detokenizer and the user's callback:
 *   pieces of well-formed UTF-8 -> hold buffer -> callback
 * It emits everything except a tail that is a proper prefix of some stop
 * string (that tail waits for the next piece); when a stop string appears
 * whole, the text before it is emitted and nothing after. Stop strings are
 * well-formed UTF-8, so a held tail always starts on a character boundary and
 * the emitted text stays well-formed. The hold buffer is allocated once
 * (longest stop string + a chunk); pieces longer than the free space go
 * through in chunks cut at character boundaries. */
#ifndef MQ_RUNTIME_GENERATE_H
#define MQ_RUNTIME_GENERATE_H

#include <stddef.h>

#include "mixq.h"

typedef struct mq_textout {
  const char *const *stop;
  size_t *stop_len; /* [n_stop]; 0 for an ignored (empty) stop string */
  int n_stop;
  char *hold; /* [cap] text not yet emitted */
  size_t n, cap;
  mq_text_fn fn; /* may be NULL */
  void *user;
} mq_textout;

enum { MQ_TEXTOUT_MORE = 0, MQ_TEXTOUT_STOPPED = 1, MQ_TEXTOUT_CANCELLED = 2 };

/* Check the stop strings (count, length, UTF-8) and allocate the buffers.
 * The strings are not copied: they must outlive o. */
int mq_textout_init(mq_textout *o, const char *const *stop, int n_stop, mq_text_fn fn, void *user,
                    mq_err *err);
/* Feed len bytes of well-formed UTF-8. Returns MQ_TEXTOUT_MORE, _STOPPED (a
 * stop string appeared; the text before it was emitted) or _CANCELLED (the
 * callback returned nonzero). Call no more after a nonzero return. */
int mq_textout_push(mq_textout *o, const char *text, size_t len);
/* End of the text: emit the held tail (it never became a stop string).
 * Returns MQ_TEXTOUT_MORE or _CANCELLED. */
int mq_textout_finish(mq_textout *o);
void mq_textout_free(mq_textout *o);

#endif
