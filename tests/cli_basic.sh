#!/usr/bin/env bash
# The `mixq` command end to end: make-tiny, inspect (text and --json), logits
# (every row and --last; logits equal between the two), and clean errors.
# usage: cli_basic.sh path/to/mixq tests/data
set -u
MIXQ=$1
DATA=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*" >&2; fi; }
has() { grep -q -- "$2" "$1"; }
# two float32 files of one length, equal within 1e-5 * (1 + |value|)
close_f32() {
  paste <(od -An -v -f -w4 "$1") <(od -An -v -f -w4 "$2") |
    awk 'NF != 2 { bad++ } { d = $1 - $2; a = $1 < 0 ? -$1 : $1; if (d < 0) d = -d; if (d > 1e-5 * (1 + a)) bad++ }
         END { exit bad > 0 || NR == 0 }'
}

for arch in llama qwen2 qwen3; do
  for dt in f32 bf16; do
    d=$T/$arch-$dt
    ok "$MIXQ" make-tiny "$d" --arch $arch --dtype $dt --seed 7
    ok test -s "$d/config.json" -a -s "$d/model.safetensors"
    "$MIXQ" inspect "$d" --json >"$T/i.json"
    ok has "$T/i.json" "\"arch\": \"$arch\""
    ok has "$T/i.json" '"method": "none"'
    ok has "$T/i.json" '"scheme": "FLOAT"'
    ok has "$T/i.json" '"name": "model.layers.1.mlp.down_proj"'
    "$MIXQ" logits "$d" --tokens 1,5,9,200 --out "$T/all.f32" >"$T/out.txt"
    ok has "$T/out.txt" "logits: \[4, 256\]"
    ok test "$(stat -c %s "$T/all.f32")" = $((4 * 256 * 4))
    "$MIXQ" logits "$d" --tokens 1,5,9,200 --out "$T/last.f32" --last -t 1 >/dev/null
    ok test "$(stat -c %s "$T/last.f32")" = $((256 * 4))
    # the --last row is the last row of the full output: bit for bit with f32
    # weights (one token and four take the same per-pair float sums); bf16
    # rows are dotted in place for one token and converted for several,
    # which sums in another order: equal to float rounding
    if [ $dt = f32 ]; then
      ok cmp -s <(tail -c 1024 "$T/all.f32") "$T/last.f32"
    else
      ok close_f32 <(tail -c 1024 "$T/all.f32") "$T/last.f32"
    fi
  done
done

# same seed, same bytes; another seed, other bytes
"$MIXQ" make-tiny "$T/a" --seed 3 >/dev/null
"$MIXQ" make-tiny "$T/b" --seed 3 >/dev/null
"$MIXQ" make-tiny "$T/c" --seed 4 >/dev/null
ok cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors"
ok test -n "$(cmp "$T/a/model.safetensors" "$T/c/model.safetensors")"

# text inspect has a table and totals
"$MIXQ" inspect "$DATA/tiny-qwen2" >"$T/t.txt"
ok has "$T/t.txt" "method: none"
ok has "$T/t.txt" "bits per weight"

# COMMAND --help: its usage on stdout, exit 0 (run/serve/quantize print their
# full option lists); no COMMAND: the list on stderr, exit 2
for c in inspect logits make-tiny quantize bench ppl dequantize run tokenize detokenize serve version; do
  "$MIXQ" $c --help >"$T/h.txt" 2>"$T/h.err"
  ok test $? = 0
  ok has "$T/h.txt" "usage"
  ok test ! -s "$T/h.err"
done
"$MIXQ" >/dev/null 2>"$T/h.err"
ok test $? = 2
ok has "$T/h.err" "COMMAND --help"

# errors: non-zero exit and a message naming the problem, never a crash
"$MIXQ" logits "$T/nonexistent" --tokens 1 --out "$T/x" 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "config.json"
"$MIXQ" logits "$T/a" --tokens 1,999 --out "$T/x" 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "outside the vocabulary"
"$MIXQ" logits "$T/a" --tokens 1,x --out "$T/x" 2>"$T/e.txt"
ok test $? -eq 1
"$MIXQ" frobnicate 2>/dev/null
ok test $? -eq 2
mkdir -p "$T/broken" && cp "$T/a/config.json" "$T/broken/"
head -c 1000 "$T/a/model.safetensors" >"$T/broken/model.safetensors"
"$MIXQ" inspect "$T/broken" 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "model.safetensors"
sed 's/"llama"/"gpt_neox"/' "$T/a/config.json" >"$T/broken/config.json"
"$MIXQ" inspect "$T/broken" 2>"$T/e.txt"
ok has "$T/e.txt" "gpt_neox"

echo "cli_basic: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
