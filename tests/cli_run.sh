#!/usr/bin/env bash
# `mixq run` end to end on the real stories260K model (skips when ../shared is
# absent): greedy text equals llama.cpp's, stdout carries only the text and
# stderr the timings, sampling flags, stop strings, prompts from -f and stdin,
# chat templates, the interactive REPL, and clean errors.
# usage: cli_run.sh path/to/mixq tests/data
set -u
MIXQ=$1
S=${MQ_SHARED_DIR:-$(dirname "$0")/../../shared}/fixtures
M=$S/stories260K/hf
if [ ! -f "$M/model.safetensors" ]; then
  echo "SKIP: shared fixtures not found"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*" >&2; fi; }
eq() { [ "$1" = "$2" ] || { printf '  got  [%s]\n  want [%s]\n' "$1" "$2" >&2; return 1; }; }
has() { grep -q -- "$2" "$1" || { echo "  $1 lacks '$2':" >&2; cat "$1" >&2; return 1; }; }

# llama.cpp's greedy continuation (golden/greedy_f32.json, generated_text)
GOLD=$', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said'
R="$MIXQ run $M -t 1"

$R -p "Once upon a time" --temp 0 -n 64 >"$T/out" 2>"$T/err"
ok test $? -eq 0
ok eq "$(cat "$T/out"; echo x)" "${GOLD}x" # byte-exact: nothing else on stdout, no newline added
ok has "$T/err" "prompt 5 tokens in .* tokens/s"
ok has "$T/err" "generated 64 tokens in .* tokens/s"
ok has "$T/err" "load .* ms"
ok has "$T/err" "finish: length"
# the prompt from a file and from standard input; --numerics npu changes nothing on a float model
printf 'Once upon a time' >"$T/prompt.txt"
ok eq "$($R -f "$T/prompt.txt" --temp 0 -n 64 2>/dev/null)" "$GOLD"
ok eq "$(printf 'Once upon a time' | $R --temp 0 -n 64 2>/dev/null)" "$GOLD"
ok eq "$($R -p "Once upon a time" --temp 0 -n 64 --numerics npu 2>/dev/null)" "$GOLD"
# an f16 KV cache (llama.cpp's default) keeps the greedy text; an unknown type is refused
ok eq "$($R -p "Once upon a time" --temp 0 -n 64 --cache-type f16 2>/dev/null)" "$GOLD"
$R -p "Once upon a time" -n 4 --cache-type q4 >/dev/null 2>"$T/err"
ok test $? -ne 0
ok has "$T/err" "bad value 'q4' for --cache-type"
# q8_0 needs head_dim % 32 == 0: stories260K's 8 is refused, saying why
$R -p "Once upon a time" -n 4 --cache-type q8_0 >/dev/null 2>"$T/err"
ok test $? -ne 0
ok has "$T/err" "q8_0 KV cache needs head_dim to be a multiple of 32.*head_dim is 8"
# -n and stop strings (split across tokens; neither it nor what follows is printed)
ok eq "$($R -p "Once upon a time" --temp 0 -n 4 2>/dev/null)" ", there was a"
ok eq "$($R -p "Once upon a time" --temp 0 --stop "ttle gi" --stop "zzz" 2>/dev/null)" ", there was a li"
$R -p "Once upon a time" --temp 0 --stop "Lily" >/dev/null 2>"$T/err"
ok has "$T/err" "finish: stop"
ok eq "$($R -p "Once upon a time" --temp 0 -n 0 2>/dev/null)" ""
# sampling: a seed repeats, the seed is reported, another seed differs
a=$($R -p "Once upon a time" -n 48 -s 7 --top-k 20 --top-p 0.9 --min-p 0.02 --repeat-penalty 1.1 \
  --repeat-last-n 32 --presence-penalty 0.1 --frequency-penalty 0.1 2>"$T/err")
b=$($R -p "Once upon a time" -n 48 -s 7 --top-k 20 --top-p 0.9 --min-p 0.02 --repeat-penalty 1.1 \
  --repeat-last-n 32 --presence-penalty 0.1 --frequency-penalty 0.1 2>/dev/null)
c=$($R -p "Once upon a time" -n 48 -s 8 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 2>/dev/null)
ok eq "$a" "$b"
ok test "$a" != "$c"
ok test -n "$a"
ok has "$T/err" "seed 7"
# --no-bos: a different prompt, so a different continuation
ok test "$($R -p "Once upon a time" --temp 0 -n 16 --no-bos 2>/dev/null)" != "$(echo "$GOLD" | head -c 20)"

# chat: stories260K has no template; a named one works
$R -p "Hi" --chat 2>"$T/err" >/dev/null
ok test $? -eq 1
ok has "$T/err" "no chat template"
ok has "$T/err" "chatml"
$R -p "Hi" --chat --chat-template chatml --temp 0 -n 8 >"$T/out" 2>"$T/err"
ok test $? -eq 0
ok has "$T/err" "prompt 42 tokens" # <s> + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" as text
$R -p "Hi" --chat-template vicuna 2>"$T/err" >/dev/null
ok test $? -eq 1
ok has "$T/err" "unknown chat template 'vicuna'"
# interactive: two turns from stdin, the second evaluated on top of the first
printf 'Hello there\nTell me a story\n' | $R -i --chat-template llama2 --temp 0 -n 6 >"$T/out" 2>"$T/err"
ok test $? -eq 0
ok test "$(wc -l <"$T/out")" -eq 2
ok has "$T/err" "generated 12 tokens"
# a context too small for the next turn ends the chat cleanly
printf 'Hello there\nTell me a story about a dog and a cat\n' |
  $R -i --chat-template chatml --temp 0 -n 8 -c 64 >"$T/out" 2>"$T/err"
ok test $? -eq 0
ok has "$T/err" "do not fit: 53 of the context's 64 are in use"
ok test "$(wc -l <"$T/out")" -eq 1
# ... while a first turn that does not fit is an error
printf 'Hello there\n' | $R -i --chat-template chatml -c 40 >/dev/null 2>"$T/err"
ok test $? -eq 1
ok has "$T/err" "do not fit"

# errors: a message and status 1, usage errors 2
$R 2>/dev/null -p x --temp abc
ok test $? -eq 2
$R 2>"$T/err" -p x --frobnicate
ok test $? -eq 2
ok has "$T/err" "frobnicate"
$R -p x --top-p 2 2>"$T/err"
ok test $? -eq 1
ok has "$T/err" "top_p"
"$MIXQ" run "$T/nothing" -p x 2>"$T/err"
ok test $? -eq 1
ok has "$T/err" "config.json"
$R -p "Once upon a time" -n 1 -c 5 2>"$T/err" >/dev/null
ok test $? -eq 0
$R -p "Once upon a time, in a land far away" -c 5 2>"$T/err" >/dev/null
ok test $? -eq 1
ok has "$T/err" "context"
"$MIXQ" run --help | grep -q -- "--repeat-penalty"
ok test $? -eq 0

echo "cli_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
