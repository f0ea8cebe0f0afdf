/* Chat templates: each family's published template rendered natively (by
 * fingerprint) and by the Jinja interpreter, against strings written from the
 * families' documented formats; the TinyLlama-Chat template of the shared
 * fixtures as a real tokenizer_config.json; Jinja subset features one by one;
 * clear errors for constructs outside the subset. */
#include "mixq.h"
#include "test.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

/* Published chat templates (tokenizer_config.json "chat_template" as the
 * families ship them; written out from the model repositories). */
static const char T_QWEN25[] =
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

static const char T_QWEN3[] =
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- messages[0].content + '\\n\\n' }}\n"
    "    {%- endif %}\n"
    "    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
    "{%- for message in messages[::-1] %}\n"
    "    {%- set index = (messages|length - 1) - loop.index0 %}\n"
    "    {%- if ns.multi_step_tool and message.role == \"user\" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n"
    "        {%- set ns.multi_step_tool = false %}\n"
    "        {%- set ns.last_query_index = index %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.content is string %}\n"
    "        {%- set content = message.content %}\n"
    "    {%- else %}\n"
    "        {%- set content = '' %}\n"
    "    {%- endif %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {%- set reasoning_content = '' %}\n"
    "        {%- if message.reasoning_content is string %}\n"
    "            {%- set reasoning_content = message.reasoning_content %}\n"
    "        {%- else %}\n"
    "            {%- if '</think>' in content %}\n"
    "                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n"
    "                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n"
    "            {%- endif %}\n"
    "        {%- endif %}\n"
    "        {%- if loop.index0 > ns.last_query_index %}\n"
    "            {%- if loop.last or (not loop.last and reasoning_content) %}\n"
    "                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
    "            {%- else %}\n"
    "                {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    "            {%- endif %}\n"
    "        {%- else %}\n"
    "            {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    "        {%- endif %}\n"
    "        {%- if message.tool_calls %}\n"
    "            {%- for tool_call in message.tool_calls %}\n"
    "                {%- if (loop.first and content) or (not loop.first) %}\n"
    "                    {{- '\\n' }}\n"
    "                {%- endif %}\n"
    "                {%- if tool_call.function %}\n"
    "                    {%- set tool_call = tool_call.function %}\n"
    "                {%- endif %}\n"
    "                {{- '<tool_call>\\n{\"name\": \"' }}\n"
    "                {{- tool_call.name }}\n"
    "                {{- '\", \"arguments\": ' }}\n"
    "                {%- if tool_call.arguments is string %}\n"
    "                    {{- tool_call.arguments }}\n"
    "                {%- else %}\n"
    "                    {{- tool_call.arguments | tojson }}\n"
    "                {%- endif %}\n"
    "                {{- '}\\n</tool_call>' }}\n"
    "            {%- endfor %}\n"
    "        {%- endif %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}";

static const char T_LLAMA3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n"
    "\n"
    "'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
    "' }}{% endif %}";

static const char T_LLAMA31[] =
    "{{- bos_token }}\n"
    "{%- if custom_tools is defined %}\n"
    "    {%- set tools = custom_tools %}\n"
    "{%- endif %}\n"
    "{%- if not tools_in_user_message is defined %}\n"
    "    {%- set tools_in_user_message = true %}\n"
    "{%- endif %}\n"
    "{%- if not date_string is defined %}\n"
    "    {%- set date_string = \"26 Jul 2024\" %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- This block extracts the system message, so we can slot it into the right place. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- System message + builtin tools #}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{%- if builtin_tools is defined or tools is not none %}\n"
    "    {{- \"Environment: ipython\\n\" }}\n"
    "{%- endif %}\n"
    "{%- if builtin_tools is defined %}\n"
    "    {{- \"Tools: \" + builtin_tools | reject('equalto', 'code_interpreter') | join(\", \") + \"\\n\\n\"}}\n"
    "{%- endif %}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{%- if tools is not none and not tools_in_user_message %}\n"
    "    {{- \"You have access to the following functions. To call a function, please respond with JSON for a function call.\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "{%- endif %}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "\n"
    "{#- Custom tools are passed in a user message with some extra guidance #}\n"
    "{%- if tools_in_user_message and not tools is none %}\n"
    "    {#- Extract the first user message so we can plug it in here #}\n"
    "    {%- if messages | length != 0 %}\n"
    "        {%- set first_user_message = messages[0]['content']|trim %}\n"
    "        {%- set messages = messages[1:] %}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Cannot put tools in the first user message when there's no first user message!\") }}\n"
    "{%- endif %}\n"
    "    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n"
    "    {{- \"Given the following functions, please respond with a JSON for a function call \" }}\n"
    "    {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "    {{- first_user_message + \"<|eot_id|>\"}}\n"
    "{%- endif %}\n"
    "\n"
    "{%- for message in messages %}\n"
    "    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n"
    "        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "    {%- elif 'tool_calls' in message %}\n"
    "        {%- if not message.tool_calls|length == 1 %}\n"
    "            {{- raise_exception(\"This model only supports single tool-calls at once!\") }}\n"
    "        {%- endif %}\n"
    "        {%- set tool_call = message.tool_calls[0].function %}\n"
    "        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}\n"
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "            {{- \"<|python_tag|>\" + tool_call.name + \".call(\" }}\n"
    "            {%- for arg_name, arg_val in tool_call.arguments | items %}\n"
    "                {{- arg_name + '=\"' + arg_val + '\"' }}\n"
    "                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n"
    "                {%- endif %}\n"
    "                {%- endfor %}\n"
    "            {{- \")\" }}\n"
    "        {%- else  %}\n"
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "            {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n"
    "            {{- '\"parameters\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- \"}\" }}\n"
    "        {%- endif %}\n"
    "        {%- if builtin_tools is defined %}\n"
    "            {#- This means we're in ipython mode #}\n"
    "            {{- \"<|eom_id|>\" }}\n"
    "        {%- else %}\n"
    "            {{- \"<|eot_id|>\" }}\n"
    "        {%- endif %}\n"
    "    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n"
    "        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n"
    "        {%- if message.content is mapping or message.content is iterable %}\n"
    "            {{- message.content | tojson }}\n"
    "        {%- else %}\n"
    "            {{- message.content }}\n"
    "        {%- endif %}\n"
    "        {{- \"<|eot_id|>\" }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n";

static const char T_LLAMA2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

static const char T_MISTRAL[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";


/* A small vocabulary whose BOS/EOS are the given special tokens. */
static mq_tokenizer *tiny_tok(const char *bos, const char *eos) {
  const char *toks[] = {bos, eos, "a", "b", "c"};
  int32_t types[] = {MQ_TOKTYPE_CONTROL, MQ_TOKTYPE_CONTROL, 1, 1, 1};
  mq_vocab_desc d;
  mq_vocab_desc_init(&d);
  d.kind = MQ_VOCAB_KIND_BPE;
  d.n_tokens = 5;
  d.tokens = toks;
  d.token_types = types;
  d.bos_id = 0;
  d.eos_id = 1;
  mq_tokenizer *t = NULL;
  mq_err err = {0};
  if (mq_tokenizer_from_vocab(&d, &t, &err) != MQ_OK) {
    fprintf(stderr, "tiny tokenizer: %s\n", err.msg);
    exit(1);
  }
  return t;
}

#define M(r, c) {r, c}

/* Render msgs with src both ways (fingerprinted and forced Jinja) and compare
 * with want; kind: the family the fingerprint must pick. */
static void both(const char *what, const char *src, const mq_tokenizer *tok, const char *kind,
                 const mq_chat_msg *msgs, int n, int gen, const char *want) {
  mq_err err = {0};
  mq_chat_template *nat = NULL, *jin = NULL;
  int rc = mq_chat_template_parse(src, strlen(src), tok, &nat, &err);
  CHECK_MSG(rc == MQ_OK, "%s: parse: %s", what, err.msg);
  rc = mq_chat_template_parse_jinja(src, strlen(src), tok, &jin, &err);
  CHECK_MSG(rc == MQ_OK, "%s: jinja parse: %s", what, err.msg);
  if (nat) CHECK_MSG(!strcmp(mq_chat_template_kind(nat), kind), "%s: kind %s, want %s", what,
                     mq_chat_template_kind(nat), kind);
  mq_chat_template *ts[2] = {nat, jin};
  for (int k = 0; k < 2; k++) {
    if (!ts[k]) continue;
    char *out = NULL;
    size_t len = 0;
    rc = mq_chat_template_apply(ts[k], msgs, n, gen, &out, &len, &err);
    CHECK_MSG(rc == MQ_OK, "%s (%s): %s", what, k ? "jinja" : "native", err.msg);
    if (out) {
      CHECK_MSG(!strcmp(out, want) && len == strlen(want), "%s (%s):\n got  [%s]\n want [%s]",
                what, k ? "jinja" : "native", out, want);
    }
    free(out);
  }
  mq_chat_template_free(nat);
  mq_chat_template_free(jin);
}

static char *render_src(const char *src, const mq_tokenizer *tok, const mq_chat_msg *m, int n,
                        int gen, int *rc, mq_err *err) {
  mq_chat_template *t = NULL;
  char *out = NULL;
  *rc = mq_chat_template_parse_jinja(src, strlen(src), tok, &t, err);
  if (*rc == MQ_OK) *rc = mq_chat_template_apply(t, m, n, gen, &out, NULL, err);
  mq_chat_template_free(t);
  return out;
}

/* A Jinja snippet with the standard conversation; expect exact output. */
static void jinja_case(const char *src, const char *want) {
  static const mq_chat_msg conv[] = {M("system", "Be brief."), M("user", "  Hi there  "),
                                     M("assistant", "Hello!")};
  mq_tokenizer *tok = tiny_tok("<s>", "</s>");
  mq_err err = {0};
  int rc;
  char *out = render_src(src, tok, conv, 3, 1, &rc, &err);
  CHECK_MSG(rc == MQ_OK, "[%s]: %s", src, err.msg);
  if (out) CHECK_MSG(!strcmp(out, want), "[%s]:\n got  [%s]\n want [%s]", src, out, want);
  free(out);
  mq_tokenizer_free(tok);
}

/* A template that must fail: status and a message fragment. */
static void jinja_error(const char *src, int code, const char *frag) {
  static const mq_chat_msg conv[] = {M("user", "Hi")};
  mq_err err = {0};
  int rc;
  char *out = render_src(src, NULL, conv, 1, 1, &rc, &err);
  CHECK_MSG(rc == code, "[%s]: status %d, want %d (%s)", src, rc, code, err.msg);
  CHECK_MSG(strstr(err.msg, frag) != NULL, "[%s]: message '%s' lacks '%s'", src, err.msg, frag);
  free(out);
}

static void test_qwen(void) {
  mq_tokenizer *tok = tiny_tok("<|endoftext|>", "<|im_end|>");
  const mq_chat_msg sys_conv[] = {M("system", "You are a bot."), M("user", "Hi"),
                                  M("assistant", "Hello!"), M("user", "How are you?")};
  both("qwen2.5 system", T_QWEN25, tok, "chatml", sys_conv, 4, 1,
       "<|im_start|>system\nYou are a bot.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
       "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
       "<|im_start|>assistant\n");
  const mq_chat_msg user_only[] = {M("user", "Hi")};
  both("qwen2.5 default system", T_QWEN25, tok, "chatml", user_only, 1, 1,
       "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
       "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  both("qwen2.5 no generation prompt", T_QWEN25, tok, "chatml", user_only, 1, 0,
       "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
       "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  const mq_chat_msg tools[] = {M("user", "Weather?"), M("assistant", "Checking."),
                               M("tool", "{\"t\": 21}"), M("tool", "{\"t\": 22}"),
                               M("user", "Thanks")};
  both("qwen2.5 tool turns", T_QWEN25, tok, "chatml", tools, 5, 1,
       "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
       "assistant.<|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n"
       "Checking.<|im_end|>\n<|im_start|>user\n<tool_response>\n{\"t\": 21}\n</tool_response>\n"
       "<tool_response>\n{\"t\": 22}\n</tool_response><|im_end|>\n<|im_start|>user\nThanks"
       "<|im_end|>\n<|im_start|>assistant\n");
  /* Qwen3: no default system prompt; earlier turns lose their <think> block;
   * the last assistant turn after the last query keeps (or gets) one */
  const mq_chat_msg think[] = {M("user", "Hi"), M("assistant", "<think>\nhmm\n</think>\n\nHello!"),
                               M("user", "How are you?")};
  both("qwen3 history", T_QWEN3, tok, "chatml", think, 3, 1,
       "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
       "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
  const mq_chat_msg last[] = {M("system", "S"), M("user", "Hi"), M("assistant", "Hello!")};
  both("qwen3 last turn", T_QWEN3, tok, "chatml", last, 3, 0,
       "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
       "<think>\n\n</think>\n\nHello!<|im_end|>\n");
  const mq_chat_msg last2[] = {M("user", "Hi"), M("assistant", "<think>\nr1\n</think>\n\nA1"),
                               M("assistant", "B")};
  both("qwen3 reasoning after the query", T_QWEN3, tok, "chatml", last2, 3, 0,
       "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1"
       "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nB<|im_end|>\n");
  mq_tokenizer_free(tok);
}

static void test_llama(void) {
  mq_tokenizer *tok = tiny_tok("<|begin_of_text|>", "<|eot_id|>");
  const mq_chat_msg conv[] = {M("system", "You are a bot."), M("user", " Hi \n"),
                              M("assistant", "Hello!")};
  both("llama3", T_LLAMA3, tok, "llama3", conv, 3, 1,
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a bot.<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\n");
  both("llama3.1", T_LLAMA31, tok, "llama3", conv, 3, 1,
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
       "December 2023\nToday Date: 26 Jul 2024\n\nYou are a bot.<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const mq_chat_msg nosys[] = {M("user", "Hi"), M("tool", "21 \"C\"")};
  both("llama3.1 no system, tool", T_LLAMA31, tok, "llama3", nosys, 2, 0,
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
       "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
       "<|start_header_id|>ipython<|end_header_id|>\n\n\"21 \\\"C\\\"\"<|eot_id|>");
  mq_tokenizer_free(tok);

  tok = tiny_tok("<s>", "</s>");
  const mq_chat_msg l2[] = {M("system", "You are a bot."), M("user", "Hi "),
                            M("assistant", " Hello!"), M("user", "How are you?")};
  both("llama2", T_LLAMA2, tok, "llama2", l2, 4, 1,
       "<s>[INST] <<SYS>>\nYou are a bot.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
       "<s>[INST] How are you? [/INST]");
  both("llama2 no system", T_LLAMA2, tok, "llama2", l2 + 1, 3, 0,
       "<s>[INST] Hi [/INST] Hello! </s><s>[INST] How are you? [/INST]");
  /* Mistral's [INST] template has no <<SYS>>: the interpreter runs it */
  both("mistral", T_MISTRAL, tok, "jinja", l2 + 1, 3, 1,
       "<s>[INST] Hi  [/INST] Hello!</s>[INST] How are you? [/INST]");
  /* roles must alternate: the templates' raise_exception, natively too */
  const mq_chat_msg bad[] = {M("user", "a"), M("user", "b")};
  mq_err err = {0};
  const char *srcs[] = {T_LLAMA2, T_MISTRAL};
  for (int k = 0; k < 2; k++) {
    mq_chat_template *t = NULL;
    char *out = NULL;
    CHECK(mq_chat_template_parse(srcs[k], strlen(srcs[k]), tok, &t, &err) == MQ_OK);
    CHECK(mq_chat_template_apply(t, bad, 2, 1, &out, NULL, &err) == MQ_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "Conversation roles must alternate"), "%s", err.msg);
    CHECK(out == NULL);
    mq_chat_template_free(t);
  }
  const mq_chat_msg sys_m[] = {M("user", "u"), M("system", "S")};
  int rc;
  char *out = render_src(T_MISTRAL, tok, sys_m, 2, 1, &rc, &err);
  CHECK(rc == MQ_ERR_ARG && strstr(err.msg, "Only user and assistant roles are supported!"));
  free(out);
  mq_tokenizer_free(tok);
}

/* Built-in formats by name (--chat-template), without a tokenizer. */
static void test_named(void) {
  const mq_chat_msg conv[] = {M("system", "S"), M("user", "U"), M("assistant", "A"),
                              M("user", "V")};
  struct {
    const char *name, *want;
  } cases[] = {
      {"chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>"
                 "assistant\nA<|im_end|>\n<|im_start|>user\nV<|im_end|>\n<|im_start|>assistant\n"},
      {"llama3", "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user"
                 "<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA"
                 "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nV<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"llama2", "[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A [INST] V [/INST]"},
      {"mistral", "[INST] S\n\nU [/INST]A[INST] V [/INST]"},
  };
  for (int k = 0; k < 4; k++) {
    mq_chat_template *t = NULL;
    mq_err err = {0};
    char *out = NULL;
    CHECK_MSG(mq_chat_template_init(NULL, cases[k].name, &t, &err) == MQ_OK, "%s", err.msg);
    if (!t) continue;
    CHECK(!strcmp(mq_chat_template_kind(t), cases[k].name));
    CHECK(mq_chat_template_apply(t, conv, 4, 1, &out, NULL, &err) == MQ_OK);
    if (out) CHECK_MSG(!strcmp(out, cases[k].want), "%s:\n got  [%s]\n want [%s]", cases[k].name,
                       out, cases[k].want);
    free(out);
    mq_chat_template_free(t);
  }
  mq_chat_template *t = NULL;
  mq_err err = {0};
  CHECK(mq_chat_template_init(NULL, "vicuna", &t, &err) == MQ_ERR_ARG);
  CHECK(strstr(err.msg, "vicuna") && strstr(err.msg, "chatml"));
  /* a tokenizer without a template: a clear error naming the way out */
  mq_tokenizer *tok = tiny_tok("<s>", "</s>");
  CHECK(mq_chat_template_init(tok, NULL, &t, &err) == MQ_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, "chat_template") && strstr(err.msg, "chatml"));
  char *out = NULL;
  CHECK(mq_chat_apply(tok, conv, 4, 1, &out, NULL, &err) == MQ_ERR_UNSUPPORTED && !out);
  /* ... and with one set (what the HF and GGUF loaders do) */
  CHECK(mq_tok_set_chat_template(tok, T_LLAMA2, strlen(T_LLAMA2), &err) == MQ_OK);
  CHECK(mq_chat_apply(tok, conv + 1, 1, 1, &out, NULL, &err) == MQ_OK);
  CHECK(out && !strcmp(out, "<s>[INST] U [/INST]"));
  free(out);
  mq_tokenizer_free(tok);
}

/* The TinyLlama-Chat template of the shared fixtures (a real
 * tokenizer_config.json, loaded with the tokenizer; Zephyr format, rendered by
 * the interpreter with Hugging Face's trim_blocks / lstrip_blocks). */
static void test_fixture(void) {
  char path[1024];
  if (!mqt_shared("fixtures/tokenizers/hf-llama2/tokenizer_config.json", path, sizeof path)) {
    printf("SKIP (part): shared fixtures not found\n");
    return;
  }
  path[strlen(path) - strlen("/tokenizer_config.json")] = 0;
  mq_tokenizer *tok = NULL;
  mq_err err = {0};
  CHECK_MSG(mq_tokenizer_load(path, &tok, &err) == MQ_OK, "%s", err.msg);
  if (!tok) return;
  CHECK(mq_tokenizer_chat_template(tok) && strstr(mq_tokenizer_chat_template(tok), "<|user|>"));
  const mq_chat_msg conv[] = {M("system", "You are a friendly chatbot."), M("user", "Hi"),
                              M("assistant", "Hello! How can I help?"), M("user", "Tell a joke")};
  char *out = NULL;
  CHECK_MSG(mq_chat_apply(tok, conv, 4, 1, &out, NULL, &err) == MQ_OK, "%s", err.msg);
  const char *want = "<|system|>\nYou are a friendly chatbot.</s>\n<|user|>\nHi</s>\n"
                     "<|assistant|>\nHello! How can I help?</s>\n<|user|>\nTell a joke</s>\n"
                     "<|assistant|>\n";
  if (out) CHECK_MSG(!strcmp(out, want), "tinyllama:\n got  [%s]\n want [%s]", out, want);
  free(out);
  CHECK(mq_chat_apply(tok, conv, 2, 0, &out, NULL, &err) == MQ_OK);
  if (out) CHECK(!strcmp(out, "<|system|>\nYou are a friendly chatbot.</s>\n<|user|>\nHi</s>\n"));
  free(out);
  mq_chat_template *t = NULL;
  CHECK(mq_chat_template_init(tok, NULL, &t, &err) == MQ_OK && t &&
        !strcmp(mq_chat_template_kind(t), "jinja"));
  mq_chat_template_free(t);
  mq_tokenizer_free(tok);
  /* stories260K ships no template */
  if (mqt_shared("fixtures/stories260K/hf/tokenizer.json", path, sizeof path)) {
    path[strlen(path) - strlen("/tokenizer.json")] = 0;
    CHECK(mq_tokenizer_load(path, &tok, &err) == MQ_OK);
    CHECK(mq_tokenizer_chat_template(tok) == NULL);
    mq_tokenizer_free(tok);
  }
}

static void test_jinja_features(void) {
  /* loops, loop variables, filters, concatenation */
  jinja_case("{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}"
             "{{ loop.last }}{{ loop.length }}{{ loop.revindex0 }}|{% endfor %}",
             "01TrueFalse32|12FalseFalse31|23FalseTrue30|");
  jinja_case("{% for m in messages %}{{ m.role ~ ':' ~ m['content'] | trim }};{% endfor %}",
             "system:Be brief.;user:Hi there;assistant:Hello!;");
  jinja_case("{{ messages | length }} {{ messages[1].content | length }} {{ 'abc' + 'def' }} "
             "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} "
             "{{ 'x' ~ 3 ~ none ~ true }}",
             "3 12 abcdef 7 3 -4 1 1024 3.5 x3NoneTrue");
  /* if / elif / else, comparisons, boolean logic, in, tests */
  jinja_case("{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role != 'user' %}A"
             "{% else %}U{% endif %}{% endfor %}|{{ 1 < 2 and 2 <= 2 and not 3 > 4 or false }}|"
             "{{ 'ell' in 'hello' }}{{ 'user' in ['user', 'x'] }}{{ 'q' not in 'abc' }}|"
             "{{ foo is defined }}{{ messages is defined }}{{ none is none }}{{ 3 is odd }}"
             "{{ 'a' is string }}{{ 4 is divisibleby 2 }}{{ x is not defined }}",
             "SUA|True|TrueTrueTrue|FalseTrueTrueTrueTrueTrueTrue");
  /* bos/eos, add_generation_prompt, ternary, default, slices, negative index */
  jinja_case("{{ bos_token }}{{ 'G' if add_generation_prompt else 'N' }}{{ eos_token }}"
             "{{ undefined_var | default('dflt') }}{{ messages[1:] | length }}"
             "{{ messages[-1].content }}{{ messages[::-1][0].role }}{{ 'hello'[1:3] }}"
             "{{ 'hello'[::-1] }}{{ [1, 2, 3][-1] }}",
             "<s>G</s>dflt2Hello!assistantelolleh3");
  /* whitespace control, trim_blocks, lstrip_blocks, comments */
  jinja_case("A  {{- ' B ' -}}  C\n{# note #}\n  {% if true %}\n    D\n  {% endif %}\nE{#- x -#}   F",
             "A B C\n    D\nEF");
  jinja_case("{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor %}\n", "[system][user][assistant]");
  jinja_case("{% if true %}x{%+ if true %} y{% endif +%}\nz{% endif %}", "x y\nz");
  /* set, scoping, namespace, break / continue, block set */
  jinja_case("{% set a = 'out' %}{% for m in messages %}{% set a = 'in' %}{% endfor %}{{ a }}|"
             "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
             "{% set ns.s = ns.s + m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}|"
             "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}"
             "{% break %}{% endif %}{{ i }}{% endfor %}|{% set b %}[{{ 1 + 1 }}]{% endset %}{{ b }}",
             "out|3sua|0134|[2]");
  /* for-else, loop filter, tuple unpacking, dict literals, items */
  jinja_case("{% for x in [] %}no{% else %}empty{% endfor %}|{% for m in messages if m.role != "
             "'system' %}{{ loop.index }}{{ m.role[0] }}{% endfor %}|{% for k, v in {'a': 1, 'b': "
             "[2]} | items %}{{ k }}={{ v }};{% endfor %}|{% for k, v in {'x': 'y'}.items() %}{{ k "
             "}}{{ v }}{% endfor %}",
             "empty|1u2a|a=1;b=[2];|xy");
  /* string methods and more filters */
  jinja_case("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nz'.lstrip('\\n') }}|"
             "{{ 'a</think>b</think>c'.split('</think>')[-1] }}|{{ 'a b  c'.split() | length }}|"
             "{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}{{ 'hi there' | title }}{{ 'hI' | capitalize }}|"
             "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|"
             "{{ 'a-b-c'.replace('-', '+') }}{{ ['x', 'y'] | join(', ') }}|"
             "{{ messages | map(attribute='role') | join(',') }}|"
             "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|"
             "{{ ['a', 'b', 'c'] | reject('equalto', 'b') | join }}|{{ [3, 4] | first }}"
             "{{ [3, 4] | last }}|{{ '12' | int + 1 }}|{{ {'k': 'v'}.get('k') }}"
             "{{ {'k': 'v'}.get('z', 'd') }}",
             "a b|a|z|c|3|HIhiHi ThereHi|TrueTrue|a+b+cx, y|system,user,assistant|1|ac|34|13|vd");
  /* tojson as Python's json.dumps (ensure_ascii off) */
  jinja_case("{{ {'name': 'f', 'args': [1, 2.5, true, none, 'q\"\\n']} | tojson }}|"
             "{{ 'é' | tojson }}|{{ {'a': [1]} | tojson(indent=2) }}",
             "{\"name\": \"f\", \"args\": [1, 2.5, true, null, \"q\\\"\\n\"]}|\"é\"|"
             "{\n  \"a\": [\n    1\n  ]\n}");
  /* escapes in string literals, adjacent literals, unicode */
  jinja_case("{{ 'a\\tb\\\\' \"c\\\"\" }}{{ '\\u00e9\\x41' }}{{ 'héllo' | length }}{{ 'ü' | upper }}",
             "a\tb\\c\"éA5ü");
}

static void test_jinja_errors(void) {
  jinja_error("{% macro f() %}x{% endmacro %}", MQ_ERR_UNSUPPORTED, "statement '{% macro %}'");
  jinja_error("{{ messages | wordcount }}", MQ_ERR_UNSUPPORTED, "filter 'wordcount'");
  jinja_error("\n  {{ frobnicate(1) }}", MQ_ERR_UNSUPPORTED, "line 2, column 6: function 'frobnicate()'");
  jinja_error("{{ 'x'.zfill(3) }}", MQ_ERR_UNSUPPORTED, "method '.zfill()'");
  jinja_error("{{ x is callable }}", MQ_ERR_UNSUPPORTED, "test 'is callable'");
  jinja_error("{% include 'other.jinja' %}", MQ_ERR_UNSUPPORTED, "include");
  jinja_error("{% for m in messages %}x", MQ_ERR_FORMAT, "{% for %} is never closed ({% endfor %} missing)");
  jinja_error("{% if true %}x{% else %}y", MQ_ERR_FORMAT, "{% endif %} missing");
  jinja_error("{{ 'unterminated }}", MQ_ERR_FORMAT, "unterminated string");
  jinja_error("{{ 1 + }}", MQ_ERR_FORMAT, "expected an expression");
  jinja_error("{% endfor %}", MQ_ERR_FORMAT, "unexpected '{% endfor %}'");
  jinja_error("{% break %}", MQ_ERR_FORMAT, "outside a loop");
  jinja_error("{{ x", MQ_ERR_FORMAT, "unclosed {{");
  jinja_error("{# x", MQ_ERR_FORMAT, "unclosed comment");
  jinja_error("{{ 'a' + 1 }}", MQ_ERR_ARG, "unsupported operand types for +: string and integer");
  jinja_error("{{ raise_exception('No system role, please') }}", MQ_ERR_ARG,
              "chat template raised an exception: No system role, please");
  jinja_error("{% set r = range(6000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
              MQ_ERR_UNSUPPORTED, "steps");
  jinja_error("{% for i in range(100000) %}{{ range(1000) | length }}{% endfor %}", MQ_ERR_NOMEM,
              "MiB");
  jinja_error("{% set x = 'a' %}{% set x.y = 1 %}", MQ_ERR_ARG, "not a namespace");
  jinja_error("{{ 1 // 0 }}", MQ_ERR_ARG, "division by zero");
  char deep[1024] = "{{ ";
  for (int k = 0; k < 300; k++) strcat(deep, "(");
  strcat(deep, "1");
  for (int k = 0; k < 300; k++) strcat(deep, ")");
  strcat(deep, " }}");
  jinja_error(deep, MQ_ERR_UNSUPPORTED, "nesting deeper");
  /* fuzz-ish: every prefix of a real template parses or fails cleanly */
  size_t n = strlen(T_QWEN3);
  int ok = 0;
  for (size_t k = 0; k <= n; k += 7) {
    mq_chat_template *t = NULL;
    mq_err err = {0};
    if (mq_chat_template_parse_jinja(T_QWEN3, k, NULL, &t, &err) == MQ_OK) {
      static const mq_chat_msg conv[] = {M("user", "Hi"), M("assistant", "Hey")};
      char *out = NULL;
      if (mq_chat_template_apply(t, conv, 2, 1, &out, NULL, &err) == MQ_OK) ok++;
      free(out);
      mq_chat_template_free(t);
    } else {
      CHECK_MSG(err.msg[0] != 0, "prefix %zu: empty message", k);
    }
  }
  CHECK(ok > 0);
}

int main(void) {
  test_qwen();
  test_llama();
  test_named();
  test_fixture();
  test_jinja_features();
  test_jinja_errors();
  return mqt_report("chat");
}
