#define PCRE2_CODE_UNIT_WIDTH 8
#include "quant/match.h"

#include <pcre2.h>
#include <string.h>

#include "core/err.h"

int mq_re_match(const char *pattern, const char *name, const char *where, mq_err *err) {
  int ecode;
  PCRE2_SIZE eoff;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                 PCRE2_ANCHORED | PCRE2_UTF, &ecode, &eoff, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ecode, msg, sizeof msg);
    mq_errf(err, MQ_ERR_FORMAT, "%s: invalid regular expression \"%s\" at offset %zu: %s", where,
            pattern, (size_t)eoff, (const char *)msg);
    return -1;
  }
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  int r = md ? pcre2_match(re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL) : -1;
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return r >= 0 ? 1 : 0;
}
