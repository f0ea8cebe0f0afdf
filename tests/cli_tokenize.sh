#!/usr/bin/env bash
# `mixq tokenize` / `mixq detokenize` end to end on the shared fixtures'
# tokenizers (skips when ../shared is absent).
# usage: cli_tokenize.sh path/to/mixq tests/data
set -u
MIXQ=$1
S=${MQ_SHARED_DIR:-$(dirname "$0")/../../shared}/fixtures
if [ ! -f "$S/stories260K/hf/tokenizer.json" ]; then
  echo "SKIP: shared fixtures not found"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*" >&2; fi; }
eq() { [ "$1" = "$2" ] || { echo "  got '$1', want '$2'" >&2; return 1; }; }

M=$S/stories260K/hf
ok eq "$("$MIXQ" tokenize "$M" "Once upon a time")" "1 403 407 261 378"
ok eq "$("$MIXQ" tokenize "$M" "Once upon a time" --no-bos)" "403 407 261 378"
ok eq "$(printf 'Once upon a time' | "$MIXQ" tokenize "$M")" "1 403 407 261 378"
ok eq "$(printf '' | "$MIXQ" tokenize "$M" --no-bos)" ""
ok eq "$("$MIXQ" detokenize "$M" 403 407 261 378)" "Once upon a time"
ok eq "$("$MIXQ" detokenize "$M" 1 403 407 261 378)" "<s>Once upon a time"
# byte-fallback tokens of an emoji come back as the emoji
ok eq "$("$MIXQ" detokenize "$M" 243 162 147 180)" "🐱"
G=$S/tokenizers/hf-gpt2
ok eq "$("$MIXQ" tokenize "$G" "Hello world" --no-bos)" "15496 995"
ok eq "$("$MIXQ" detokenize "$G" 15496 995)" "Hello world"
# a .gguf file: its tokenizer.ggml.* metadata (SPM defaults: BOS, space prefix)
Q=$S/stories260K/gguf/stories260K-Q4_0.gguf
ok eq "$("$MIXQ" tokenize "$Q" "Once upon a time")" "1 403 407 261 378"
ok eq "$("$MIXQ" tokenize "$Q" "Once upon a time" --no-bos)" "403 407 261 378"
ok eq "$("$MIXQ" detokenize "$Q" 403 407 261 378)" "Once upon a time"
V=$S/tokenizers/llama.cpp-vocab
ok eq "$("$MIXQ" tokenize "$V/ggml-vocab-gpt-2.gguf" "Hello world")" "15496 995"
ok eq "$("$MIXQ" detokenize "$V/ggml-vocab-gpt-2.gguf" 15496 995)" "Hello world"
"$MIXQ" tokenize "$V/ggml-vocab-bert-bge.gguf" "x" 2>"$T/e.txt"
ok test $? -eq 1
ok grep -q "WordPiece" "$T/e.txt"
"$MIXQ" tokenize "$T/missing.gguf" "x" 2>"$T/e.txt"
ok test $? -eq 1
ok grep -q "missing.gguf" "$T/e.txt"

# errors: exit status 1 and a message naming the problem
"$MIXQ" tokenize "$T/nothing" "x" 2>"$T/e.txt"
ok test $? -eq 1
ok grep -q "tokenizer.json" "$T/e.txt"
"$MIXQ" detokenize "$M" 1 99999 2>"$T/e.txt"
ok test $? -eq 1
ok grep -q "outside the vocabulary" "$T/e.txt"
"$MIXQ" detokenize "$M" 1 x 2>/dev/null
ok test $? -eq 1
"$MIXQ" tokenize 2>/dev/null
ok test $? -eq 1

echo "cli_tokenize: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
