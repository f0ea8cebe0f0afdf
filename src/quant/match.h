/* Module-name matching as the producers do it: Python re.match (anchored at
 * the start, not necessarily the end) through PCRE2. */
#ifndef MQ_QUANT_MATCH_H
#define MQ_QUANT_MATCH_H

#include "mixq.h"

/* 1 if pattern matches name from its first character, 0 if not; on an
 * invalid pattern returns -1 and fills err naming `where`. */
int mq_re_match(const char *pattern, const char *name, const char *where, mq_err *err);

#endif
