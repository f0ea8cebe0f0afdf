/* A small Jinja interpreter for chat templates (the subset real
 * tokenizer_config.json templates use), with Hugging Face's environment
 * settings: trim_blocks and lstrip_blocks on, `{%- -%}` / `{{- -}}` / `+`
 * whitespace control.
 *
 * Supported:
 *   statements  for (`for x in xs`, `for a, b in ...`, `if` filter, `else`),
 *               if / elif / else, set (`set x = e`, `set ns.a = e`, block
 *               `set x %}...{% endset`), break, continue, generation (no-op),
 *               comments
 *   expressions literals (strings, ints, floats, true/false/none, lists,
 *               dicts), names, `.attr`, `[i]`, slices `[a:b:c]`, calls,
 *               `a if c else b`, or / and / not, == != < <= > >= in, not in,
 *               `is [not] test`, + - * / // % ** ~, filters with arguments
 *   filters     trim length count upper lower capitalize title tojson string
 *               int float default d first last join list reverse replace safe
 *               abs items map(attribute=) select reject selectattr rejectattr
 *   tests       defined undefined none string number integer float boolean
 *               true false mapping iterable sequence odd even divisibleby
 *               equalto eq ne
 *   functions   raise_exception namespace range strftime_now dict
 *   methods     strip lstrip rstrip startswith endswith split upper lower
 *               replace title capitalize find join items keys values get
 *   variables   messages, add_generation_prompt, bos_token, eos_token,
 *               tools / documents (none), loop.index/index0/revindex/
 *               revindex0/first/last/length/previtem/nextitem
 * Anything else (macros, includes, unknown filters or functions, ...) is
 * refused at parse time with the construct's name and its line and column.
 * Rendering runs under a step budget and an output cap. */
#ifndef MQ_TOKENIZER_JINJA_H
#define MQ_TOKENIZER_JINJA_H

#include <stddef.h>

#include "mixq.h"
#include "tokenizer/buf.h"

typedef struct mq_jinja mq_jinja;

/* Parse a template (src need not be NUL-terminated; it is copied). */
int mq_jinja_parse(const char *src, size_t len, mq_jinja **out, mq_err *err);
void mq_jinja_free(mq_jinja *j);

typedef struct mq_jinja_vars {
  const mq_chat_msg *msgs;
  int n_msgs;
  int add_generation_prompt;
  const char *bos_token, *eos_token; /* NULL: "" */
} mq_jinja_vars;

/* Render into out (appended). A raise_exception in the template fails with
 * MQ_ERR_ARG and its message; other runtime errors name line and column. */
int mq_jinja_render(const mq_jinja *j, const mq_jinja_vars *v, mq_bbuf *out, mq_err *err);

#endif
