#!/bin/sh
# Build the libFuzzer targets (clang, coverage + ASan + UBSan, in build-fuzz/)
# and run each one for SECONDS (default 60). Crash, leak, timeout and OOM
# inputs are written to tests/fuzz/crashes/<target>/; the script fails if any
# target finds one, or if a reproducer already there still fails.
#
# usage: tests/fuzz/run.sh [SECONDS] [TARGET ...]   (targets: safetensors config
#        qconfig modelslim_desc tokenizer tokenize gguf load chat oai; default all)
# env:   MQ_FUZZ_BUILD (build folder, default build-fuzz), MQ_FUZZ_JOBS
#        (targets run at once, default 1), MQ_SHARED_DIR (fixtures)
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-safetensors config qconfig modelslim_desc tokenizer tokenize gguf load chat oai}
B=${MQ_FUZZ_BUILD:-build-fuzz}
JOBS=${MQ_FUZZ_JOBS:-1}

command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/deps.sh)" >&2; exit 1; }
cmake -S . -B "$B" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMQ_FUZZ=ON >/dev/null
cmake --build "$B" -j "$(nproc)" --target fuzz_all >/dev/null

# max_len per target: large enough for its seeds (stories260K's tokenizer.json
# is 15 KB), small enough to keep executions fast.
max_len() {
  case $1 in
  tokenizer | load) echo 32768 ;;
  tokenize | chat | oai) echo 4096 ;;
  config | qconfig) echo 8192 ;;
  *) echo 16384 ;;
  esac
}
dict() {
  case $1 in
  safetensors) echo tests/fuzz/safetensors.dict ;;
  gguf) echo tests/fuzz/gguf.dict ;;
  tokenize) echo "" ;;
  load) # config.json keys and safetensors header tokens together
    cat tests/fuzz/json.dict tests/fuzz/safetensors.dict >"$B/load.dict"
    echo "$B/load.dict" ;;
  *) echo tests/fuzz/json.dict ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() { # target -> 0 ok, 1 failed
  t=$1
  exe=$B/tests/fuzz/fuzz_$t
  if [ ! -x "$exe" ]; then
    echo "fuzz $t: not built (skipped)"
    return 0
  fi
  crashes=tests/fuzz/crashes/$t
  work=$B/corpus/$t
  log=$B/fuzz-$t.log
  mkdir -p "$crashes" "$work"
  # reproducers found before must all pass now
  if ls "$crashes"/* >/dev/null 2>&1; then
    if ! "$exe" -runs=1 "$crashes"/* >"$B/replay-$t.log" 2>&1; then
      echo "fuzz $t: FAILED: a reproducer in $crashes still fails (see $B/replay-$t.log)"
      return 1
    fi
  fi
  d=$(dict "$t")
  set -- -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1
  [ -n "$d" ] && set -- "$@" -dict="$d"
  t0=$(date +%s)
  rc=0
  "$exe" "$@" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  # history of every run (docs/robustness.md reports the totals)
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $t $(($(date +%s) - t0))s execs=${execs:-?} cov=${cov:-?} rc=$rc" \
    >>"$B/fuzz-history.txt"
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: ok, ${SECS}s, ${execs:-?} executions, coverage ${cov:-?} edges"
    return 0
  fi
  echo "fuzz $t: FAILED, reproducer in $crashes/ (log: $log):"
  grep -E "ERROR|SUMMARY|invariant failed|runtime error" "$log" | head -5 | sed 's/^/  /'
  return 1
}

fail=0
if [ "$JOBS" -le 1 ]; then
  for t in $TARGETS; do run_one "$t" || fail=1; done
else
  n=0
  for t in $TARGETS; do
    (run_one "$t" >"$B/status-$t" 2>&1 || echo FAILED >>"$B/status-$t") &
    n=$((n + 1))
    if [ "$n" -ge "$JOBS" ]; then wait; n=0; fi
  done
  wait
  for t in $TARGETS; do
    cat "$B/status-$t"
    grep -q FAILED "$B/status-$t" && fail=1
  done
fi
[ "$fail" = 0 ] && echo "fuzz: all targets passed" || echo "fuzz: FAILED" >&2
exit "$fail"
