#!/usr/bin/env bash
# The `mixq` command under valgrind memcheck: a logits run on float and
# quantized tiny models, a short generation (bench: prefill + decode loop),
# tokenize / detokenize, and failing loads of corrupted checkpoints. Any
# invalid read/write, use of uninitialised memory or definite/possible leak
# fails the test. Skipped (77) when valgrind is not installed.
# usage: cli_valgrind.sh path/to/mixq tests/data
set -u
MIXQ=$1
DATA=$2
if ! command -v valgrind >/dev/null 2>&1; then
  echo "SKIP: valgrind not installed"
  exit 77
fi
# a sanitizer build cannot run under valgrind
if nm "$MIXQ" 2>/dev/null | grep -q __asan_init; then
  echo "SKIP: $MIXQ is built with AddressSanitizer"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
  --show-leak-kinds=definite,possible --track-origins=yes)
# vg EXPECTED_STATUS ARGS...: memcheck clean and the command's own status as expected
vg() {
  want=$1
  shift
  "${VG[@]}" --log-file="$T/vg.log" "$MIXQ" "$@" >"$T/out.txt" 2>"$T/err.txt"
  rc=$?
  if [ "$rc" = "$want" ] && [ ! -s "$T/vg.log" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAILED (status $rc, want $want): mixq $*" >&2
    cat "$T/vg.log" "$T/err.txt" >&2
  fi
}

vg 0 logits "$DATA/tiny-qwen2" --tokens 1,2,3 --out "$T/x.f32"
vg 0 logits "$DATA/tiny-llama3" --tokens 1,5,9,200 --out "$T/x.f32" --last -t 2
vg 0 logits "$DATA/tiny-qwen3-moe" --tokens 3,4,5 --out "$T/x.f32"
vg 0 bench "$DATA/tiny-qwen3" -p 4 -n 4 -r 1 -t 2
vg 0 inspect "$DATA/tiny-qwen3-yarn" --json
# quantized: AWQ and GPTQ act-order written by mixq itself
"$MIXQ" quantize "$DATA/tiny-llama3" "$T/awq" --format awq --group-size 32 >/dev/null
"$MIXQ" quantize "$DATA/tiny-llama3" "$T/gptq" --format gptq --group-size 32 --desc-act >/dev/null
"$MIXQ" quantize "$DATA/tiny-qwen2" "$T/ct" --format ct-w8a16 --group-size -1 >/dev/null
vg 0 logits "$T/awq" --tokens 1,2,3 --out "$T/x.f32"
vg 0 logits "$T/gptq" --tokens 1,2,3 --out "$T/x.f32"
vg 0 bench "$T/ct" -p 4 -n 4 -r 1 -t 1
# failing loads free everything they allocated
mkdir -p "$T/broken"
cp "$T/gptq/config.json" "$T/broken/"
head -c 3000 "$T/gptq/model.safetensors" >"$T/broken/model.safetensors"
vg 1 logits "$T/broken" --tokens 1 --out "$T/x.f32"
cp "$T/gptq/model.safetensors" "$T/broken/"
sed 's/"bits": 4/"bits": 3/' "$T/gptq/config.json" >"$T/broken/config.json"
vg 1 logits "$T/broken" --tokens 1 --out "$T/x.f32"
vg 1 logits "$T/nonexistent" --tokens 1 --out "$T/x.f32"
# tokenizers (shared fixtures, when present)
S=${MQ_SHARED_DIR:-$(dirname "$0")/../../shared}/fixtures
if [ -f "$S/stories260K/hf/tokenizer.json" ]; then
  vg 0 tokenize "$S/stories260K/hf" "Once upon a time, \xff there was a cat. 🐱"
  vg 0 detokenize "$S/stories260K/hf" 1 403 407 261 378 243 162 147 180
  vg 0 logits "$S/stories260K/hf" --tokens 1,403,407,261 --out "$T/x.f32"
fi
echo "cli_valgrind: $pass passed, $fail failed"
[ "$fail" = 0 ]
