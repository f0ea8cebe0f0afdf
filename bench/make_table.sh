#!/usr/bin/env bash
# bench/make_table.sh — the speed table of bench/README.md.
#
# Builds random models of TinyLlama-1.1B's shape and of a Qwen3-MoE-like
# shape (`mixq make-tiny --shape ...`, bf16), quantizes each to the formats
# below (`mixq quantize`), runs `mixq bench --json` at each thread count and
# writes a markdown table between the marker comments
#   <!-- bench-table:begin -->  and  <!-- bench-table:end -->
# of bench/README.md (or --out FILE). One float source per shape is made
# once and every quantized copy is removed after its runs, so the disk
# holds at most one source and one quantized model at a time (TinyLlama
# shape: 2.2 GB + up to 1.2 GB). `mixq bench --synthetic SHAPE --format F`
# does the same for one format in one command.
#
# usage: bench/make_table.sh [--quick] [--formats "F ..."] [--moe-formats "F ..."]
#          [--shape SHAPE] [--moe-shape SHAPE] [--threads "1 2"] [-p 128] [-n 64] [-r 3]
#          [--mixq PATH] [--out FILE] [--json FILE]
#   --quick        two formats (gguf-q4_0, awq) on the dense shape only
#   --formats      dense-shape formats (default: the full list below)
#   --moe-formats  MoE-shape formats (default: gguf-q4_0 awq); "" skips the MoE shape
#   --shape        dense (llama) shape (default tinyllama-1.1b; tiny/small for a dry run)
#   --moe-shape    shape of the qwen3_moe model (default qwen3-moe-1b; tiny for a dry run)
#   --json FILE    also keep every bench result, one JSON object per line
# The full run takes a while (tens of minutes on two cores); run it on an
# otherwise idle machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
MIXQ=$here/../build/mixq
OUT=$here/README.md
SHAPE=tinyllama-1.1b
MOE_SHAPE=qwen3-moe-1b
FORMATS="bf16 awq gptq gptq-w8 modelslim-w8a8 modelslim-w8a8-dynamic modelslim-w4a8 modelslim-w4a4 modelslim-mxfp8 gguf-q4_0 gguf-q8_0 gguf-q4_k_m gguf-f16"
MOE_FORMATS="gguf-q4_0 awq"
THREADS="1 2"
PP=128
TG=64
REPS=3
JSON_OUT=

die() { echo "make_table.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
  --quick) FORMATS="gguf-q4_0 awq" MOE_FORMATS="" ;;
  --formats) FORMATS=${2?}; shift ;;
  --moe-formats) MOE_FORMATS=${2-}; shift ;;
  --shape) SHAPE=${2?}; shift ;;
  --moe-shape) MOE_SHAPE=${2?}; shift ;;
  --threads) THREADS=${2?}; shift ;;
  -p) PP=${2?}; shift ;;
  -n) TG=${2?}; shift ;;
  -r) REPS=${2?}; shift ;;
  --mixq) MIXQ=${2?}; shift ;;
  --out) OUT=${2?}; shift ;;
  --json) JSON_OUT=${2?}; shift ;;
  -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
  *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[ -x "$MIXQ" ] || die "no mixq at $MIXQ (run make, or pass --mixq PATH)"
command -v jq >/dev/null || die "jq is needed"
[ -f "$OUT" ] || die "$OUT does not exist"

T=$(mktemp -d "${TMPDIR:-/tmp}/mixq-table-XXXXXX")
trap 'rm -rf "$T"' EXIT
rows=$T/rows.jsonl
: >"$rows"
if [ -n "$JSON_OUT" ]; then : >"$JSON_OUT"; fi

label() {
  case $1 in
  bf16) echo "BF16 (unquantized)" ;;
  awq) echo "W4A16 g128 · AWQ" ;;
  gptq) echo "W4A16 g128 · GPTQ" ;;
  gptq-w8) echo "W8A16 g128 · GPTQ" ;;
  modelslim-w8a8) echo "W8A8 (static) · ModelSlim" ;;
  modelslim-w8a8-dynamic) echo "W8A8_DYNAMIC · ModelSlim" ;;
  modelslim-w4a8) echo "W4A8_DYNAMIC · ModelSlim" ;;
  modelslim-w4a4) echo "W4A4_DYNAMIC · ModelSlim" ;;
  modelslim-mxfp8) echo "W8A8_MXFP8 · ModelSlim" ;;
  gguf-q4_0) echo "GGUF Q4_0" ;;
  gguf-q8_0) echo "GGUF Q8_0" ;;
  gguf-q4_k_m) echo "GGUF Q4_K_M" ;;
  gguf-f16) echo "GGUF F16" ;;
  *) echo "$1" ;;
  esac
}

# run_shape SHAPE ARCH "FORMATS"
run_shape() {
  local shape=$1 arch=$2 formats=$3 src=$T/src f model t
  [ -n "$formats" ] || return 0
  echo "== $shape: making the bf16 source" >&2
  "$MIXQ" make-tiny "$src" --shape "$shape" --arch "$arch" --dtype bf16 >&2
  for f in $formats; do
    case $f in
    bf16) model=$src ;;
    gguf-*) model=$T/model.gguf ;;
    *) model=$T/model ;;
    esac
    if [ "$f" != bf16 ]; then
      echo "== $shape: quantize --format $f" >&2
      case $f in # gptq-w8: 8-bit GPTQ (W8A16), the quantizer's --bits
      gptq-w8) "$MIXQ" quantize "$src" "$model" --format gptq --bits 8 >&2 ;;
      *) "$MIXQ" quantize "$src" "$model" --format "$f" >&2 ;;
      esac
    fi
    for t in $THREADS; do
      echo "== $shape $f: bench -t $t" >&2
      "$MIXQ" bench "$model" -p "$PP" -n "$TG" -r "$REPS" -t "$t" --json >"$T/r.json"
      if [ -n "$JSON_OUT" ]; then
        jq -c --arg s "$shape" --arg f "$f" '. + {shape: $s, format: $f}' "$T/r.json" >>"$JSON_OUT"
      fi
      jq -c --arg s "$shape" --arg f "$(label "$f")" '. + {shape: $s, label: $f}' "$T/r.json" >>"$rows"
    done
    if [ "$model" != "$src" ]; then rm -rf "$model"; fi
  done
  rm -rf "$src"
}

run_shape "$SHAPE" llama "$FORMATS"
run_shape "$MOE_SHAPE" qwen3_moe "$MOE_FORMATS"

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
family=$(grep -m1 'cpu family' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
[ -n "$family" ] && cpu="$cpu, family $family"
kernels=$(jq -r '.kernels // empty' "$T/r.json" 2>/dev/null || true)
table=$T/table.md
{
  echo "Measured $(date -u +%Y-%m-%d) by \`bench/make_table.sh\` on ${cpu:-an unknown CPU} ($(nproc) CPUs online${kernels:+, \`$kernels\` kernels}):"
  echo "random weights of each shape, prompt $PP tokens, $TG generated, median of $REPS runs, default"
  echo "(fast) A16 path. Bytes/token: weights read per generated token. Bandwidth: the best read of"
  echo "that bench run (before each timed run and after the last); roofline: decode bytes/s over it."
  echo
  echo "| shape | format | threads | pp tok/s | tg tok/s | bytes/token | bandwidth GB/s | roofline |"
  echo "|---|---|---|---|---|---|---|---|"
  jq -r '"| \(.shape) | \(.label) | \(.threads) | \(.pp_tps * 10 | round / 10) | \(.tg_tps * 10 | round / 10) | \(.bytes_per_token / 1e6 * 10 | round / 10) MB | \(.bandwidth_gbps * 10 | round / 10) | \(.roofline_fraction * 100 | round)% |"' "$rows"
} >"$table"

begin='<!-- bench-table:begin -->'
end='<!-- bench-table:end -->'
if ! grep -qF "$begin" "$OUT" || ! grep -qF "$end" "$OUT"; then
  printf '\n%s\n%s\n' "$begin" "$end" >>"$OUT"
fi
awk -v b="$begin" -v e="$end" -v tf="$table" '
  $0 == b { print; while ((getline l < tf) > 0) print l; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$OUT" >"$T/out.md"
cat "$T/out.md" >"$OUT"
echo "wrote $(wc -l <"$rows") rows into $OUT" >&2
