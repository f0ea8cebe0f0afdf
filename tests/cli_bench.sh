#!/usr/bin/env bash
# `mixq bench --synthetic`: a random model of a make-tiny shape built in a
# temporary folder (float, a safetensors quantize format, a GGUF format),
# benched, removed; the JSON fields the bench table reads exist and are
# positive; errors are clean. Also `make-tiny --arch qwen3_moe` and
# `quantize --format gguf-*` from the command line.
# usage: cli_bench.sh path/to/mixq tests/data
set -u
MIXQ=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TMPDIR=$T
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*" >&2; fi; }
has() { grep -q -- "$2" "$1"; }
positive() { jq -e "(.$2 | type == \"number\") and .$2 > 0" "$1" >/dev/null; }

for f in bf16 gguf-q4_0 awq modelslim-w8a8-dynamic; do
  "$MIXQ" bench --synthetic tiny --format $f -p 8 -n 4 -r 1 -t 1 --json >"$T/b.json" 2>"$T/b.err"
  ok test $? -eq 0
  ok jq -e . "$T/b.json" >/dev/null # stdout is JSON only
  for k in pp_tps tg_tps bytes_per_token bandwidth_gbps roofline_fraction model_bytes; do
    ok positive "$T/b.json" $k
  done
  # Linux: the resident set after the runs, at least the weights read per token
  if [ -r /proc/self/status ]; then
    ok jq -e '.resident_mb * 1e6 >= .bytes_per_token' "$T/b.json" >/dev/null
  fi
  ok jq -e ".format == \"$f\" and .synthetic == \"tiny\" and .threads == 1" "$T/b.json" >/dev/null
  ok has "$T/b.err" "built tiny: format $f"
done
# the MoE shape's architecture at tiny size, text output
"$MIXQ" make-tiny "$T/moe" --arch qwen3_moe --seed 2 >/dev/null
ok has "$T/moe/config.json" '"num_experts": 8'
"$MIXQ" quantize "$T/moe" "$T/moe.gguf" --format gguf-q8_0 >"$T/q.txt"
ok test $? -eq 0
ok has "$T/q.txt" "q8_0"
"$MIXQ" bench "$T/moe.gguf" -p 8 -n 4 -r 1 -t 1 >"$T/b.txt"
ok test $? -eq 0
ok has "$T/b.txt" "generation"
# MoE: routed experts count at experts used / experts (2 of 8) in bytes per token
"$MIXQ" bench "$T/moe.gguf" -p 4 -n 2 -r 1 -t 1 --json >"$T/b.json"
"$MIXQ" inspect "$T/moe.gguf" --json >"$T/i.json"
bpt=$(jq .bytes_per_token "$T/b.json")
all=$(jq '[.layers[].compute_bytes] | add' "$T/i.json")
ok jq -n -e "$bpt > 0 and $bpt < 0.6 * $all" >/dev/null
# f16 and q8_0 KV caches: reported, and a bad type is refused
for ct in f16 q8_0; do
  "$MIXQ" bench "$T/moe.gguf" -p 4 -n 2 -d 70 -r 1 -t 1 --cache-type $ct --json >"$T/b.json"
  ok jq -e ".cache_type == \"$ct\" and .depth == 70 and .tg_tps > 0" "$T/b.json" >/dev/null
done
"$MIXQ" bench "$T/moe.gguf" -p 4 -n 2 --cache-type q8 >/dev/null 2>"$T/b.err"
ok test $? -ne 0
ok has "$T/b.err" "f32, f16 or q8_0"
# decode after a context of -d tokens (longer than the prompt: the rest is evaluated untimed)
"$MIXQ" bench "$T/moe.gguf" -p 4 -n 2 -d 9 -r 2 -t 1 --json >"$T/b.json"
ok jq -e '.depth == 9 and .tg_tps > 0' "$T/b.json" >/dev/null
"$MIXQ" bench "$T/moe.gguf" -p 4 -n 2 -d 3 -r 1 -t 1 >"$T/b.txt"
ok has "$T/b.txt" "after 3 tokens of context"
"$MIXQ" bench --synthetic tiny --format gguf-q4_k_m -p 4 -n 2 -r 1 -t 1 >"$T/b.txt"
ok has "$T/b.txt" "built tiny: format gguf-q4_k_m"
ok has "$T/b.txt" "roofline"
# nothing left behind in TMPDIR but our own files
ok test -z "$(ls -d "$T"/mixq-synthetic-* 2>/dev/null)"

# errors: exit status, a message, no leftovers
"$MIXQ" bench --synthetic tiny --format nonsense 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "not a format"
"$MIXQ" bench --synthetic huge-shape 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "shape"
"$MIXQ" bench "$T/moe" --synthetic tiny 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "usage"
"$MIXQ" bench "$T/moe" --format awq 2>/dev/null
ok test $? -eq 1
"$MIXQ" quantize "$T/moe" "$T/x.gguf" --format gguf-q4_0 --bits 8 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" "GGUF formats take no other option"
"$MIXQ" quantize "$T/moe" "$T/x" --format gguf-q4_0 2>"$T/e.txt"
ok test $? -eq 1
ok has "$T/e.txt" ".gguf"
ok test -z "$(ls -d "$T"/mixq-synthetic-* 2>/dev/null)"

echo "cli_bench: $pass passed, $fail failed"
test $fail -eq 0
