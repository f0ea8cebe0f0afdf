#!/bin/sh
# The whole test suite, as CI runs it: installs missing Debian packages (as
# root), then builds and tests three variants — the fast build (gcc, SIMD),
# a scalar-only build (clang, reference kernels only) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build (gcc, debug); an aarch64
# build (cross gcc, NEON kernels) tested under qemu-user
# (scripts/check_aarch64.sh); then runs every fuzz target for 30 s
# (tests/fuzz/run.sh).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --cross
JOBS=$(nproc)
run() { # name, cmake args...
  dir=$1
  shift
  echo "== $dir: $*"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" >/dev/null
  (cd "$dir" && ctest --output-on-failure -j "$JOBS")
}
run build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc
run build-scalar -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DMQ_SCALAR_ONLY=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc -DMQ_SANITIZE=ON
# aarch64 (NEON kernels): cross-compiled, tests under qemu-aarch64 (about 3 min
# on 2 cores; the cli_*.sh tests and the slowest two are left out there).
scripts/check_aarch64.sh
# Bounded fuzzing (docs/robustness.md): every libFuzzer target for 30 s on top
# of its seed corpus (clang, ASan + UBSan); fails on any crash, leak or timeout.
echo "== build-fuzz: 30 s per fuzz target"
tests/fuzz/run.sh 30
echo "check: all four builds and the fuzz targets passed"
