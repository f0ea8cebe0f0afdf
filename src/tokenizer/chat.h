/* Chat templates (public API in mixq.h, "Sampling and generation").
 *
 * A template comes from the tokenizer (tokenizer_config.json "chat_template",
 * a string or a list of named templates of which "default" is taken, or a
 * chat_template.jinja file beside it) or is named. Families recognised by a
 * fingerprint of the template text are rendered natively:
 *   chatml   "<|im_start|>"        Qwen2 / Qwen2.5 / Qwen3 (default system
 *                                   prompt taken from the template, tool turns
 *                                   as <tool_response>, earlier turns' <think>
 *                                   blocks dropped as Qwen3 does)
 *   llama3   "<|start_header_id|>"  Llama-3 / 3.1 / 3.2 (the "Cutting Knowledge
 *                                   Date" system preamble when the template has it)
 *   llama2   "[INST]" + "<<SYS>>"   Llama-2-chat
 * Other templates ([INST] ones of Mistral included) go to the Jinja-subset
 * interpreter (jinja.h); an [INST] template it cannot parse falls back to the
 * native "mistral" rendering. */
#ifndef MQ_TOKENIZER_CHAT_H
#define MQ_TOKENIZER_CHAT_H

#include <stddef.h>

#include "mixq.h"

/* The chat template source the tokenizer came with, or NULL. */
const char *mq_tokenizer_chat_template(const mq_tokenizer *t);

/* Keep a copy of a chat template source in t (the HF loader calls this; a
 * GGUF loader sets tokenizer.chat_template the same way). len 0 clears it. */
int mq_tok_set_chat_template(mq_tokenizer *t, const char *src, size_t len, mq_err *err);

/* Compile src with the Jinja interpreter even when it is a recognised
 * family (tests compare the two paths). */
int mq_chat_template_parse_jinja(const char *src, size_t len, const mq_tokenizer *tok,
                                 mq_chat_template **out, mq_err *err);

#endif
