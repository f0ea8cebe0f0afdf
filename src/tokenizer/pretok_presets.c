/* Pre-tokenizers named by llama.cpp's tokenizer.ggml.pre key (GGUF byte-level
 * BPE vocabularies): each is a list of regexes applied one after the other,
 * every one splitting each piece into matches and the text between them
 * (Hugging Face's Split with the Isolated behavior), then the GPT-2 byte map.
 * The regexes are those of the models' own tokenizer.json files. */
#include <string.h>

#include "core/err.h"
#include "tokenizer/tok_impl.h"

#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3                                                                                     \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                       \
  "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2                                                                                      \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                            \
  "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

typedef struct preset {
  const char *names; /* '|'-separated */
  const char *re[6];
  int ignore_merges; /* llama.cpp's ignore_merges (and, through it, add_bos by default) */
} preset;

static const preset PRESETS[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", {LLAMA3}, 1},
    /* same regex, but llama.cpp sets neither ignore_merges nor add_bos for these */
    {"dbrx|smaug-bpe|chatglm-bpe", {LLAMA3}, 0},
    {"qwen2|stablelm2|deepseek-r1-qwen|megrez", {QWEN2}, 0},
    {"gpt-2|phi-2|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|gigachat|roberta-"
     "bpe|mpt|olmo|jais",
     {GPT2},
     0},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva", {"\\p{N}", GPT2}, 0},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"}, 0},
    {"deepseek-llm",
     {"[\r\n]",
      "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
      "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
      "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
      "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
      "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"
      "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
      "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
      "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-"
      "\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-"
      "\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}"
      "\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-"
      "\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
      "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}"
      "-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-"
      "\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-"
      "\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-"
      "\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-"
      "\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", CJK, "\\p{N}+"},
     0},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}"}, 0},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     0},
    {"poro-chat|bloom|gpt3-finnish", {BLOOM}, 0},
    {"viking", {BLOOM, "\\p{N}"}, 0},
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^"
      "\\r\\n\\p{L}"
      "\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     1}, /* llama.cpp: ignore_merges and add_bos, as for llama3 */
};

const char *const mq_pretok_names[] = {
    "default",     "llama3",      "llama-v3",     "llama-bpe",      "falcon3",
    "falcon-h1",   "pixtral",     "midm-2.0",     "lfm2",           "dbrx",
    "smaug-bpe",   "chatglm-bpe", "qwen2",        "stablelm2",      "deepseek-r1-qwen",
    "megrez",      "gpt-2",       "phi-2",        "jina-es",        "jina-de",
    "jina-v1-en",  "jina-v2-es",  "jina-v2-de",   "jina-v2-code",   "gigachat",
    "roberta-bpe", "mpt",         "olmo",         "jais",           "starcoder",
    "refact",      "command-r",   "smollm",       "codeshell",      "exaone",
    "minerva",     "falcon",      "deepseek-llm", "deepseek-coder", "deepseek-v3",
    "poro-chat",   "bloom",       "gpt3-finnish", "viking",         "tekken",
    NULL};

static int name_in(const char *names, const char *name) {
  size_t n = strlen(name);
  for (const char *p = names; *p;) {
    const char *e = strchr(p, '|');
    size_t k = e ? (size_t)(e - p) : strlen(p);
    if (k == n && !memcmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int mq_tok_pre_preset(mq_tokenizer *t, const char *name, mq_err *err) {
  if (!name || !*name) name = "default";
  const preset *ps = NULL;
  for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++)
    if (name_in(PRESETS[i].names, name)) ps = &PRESETS[i];
  if (!ps)
    return mq_errf(err, MQ_ERR_UNSUPPORTED,
                   "pre-tokenizer \"%s\" (tokenizer.ggml.pre) is not supported", name);
  for (int i = 0; i < 6 && ps->re[i]; i++) {
    mq_pre_step s = {.kind = MQ_PRE_SPLIT, .behavior = MQ_SPLIT_ISOLATED};
    int rc = mq_tok_regex(ps->re[i], strlen(ps->re[i]), 0, &s.re, name, err);
    if (rc == MQ_OK) rc = mq_tok_push_pre(t, &s, err);
    if (rc != MQ_OK) {
      pcre2_code_free(s.re);
      return rc;
    }
  }
  mq_pre_step bl = {.kind = MQ_PRE_BYTELEVEL};
  int rc = mq_tok_push_pre(t, &bl, err);
  if (rc == MQ_OK && ps->ignore_merges) t->ignore_merges = 1;
  return rc;
}
