#!/bin/sh
# The aarch64 (NEON) build, cross-compiled with gcc and tested under
# qemu-user (docs/testing.md, "aarch64 (NEON)"). Installs nothing:
# scripts/deps.sh (as root) adds the arm64 architecture and installs the
# cross compiler, qemu-user and the arm64 libraries. Configures and builds
# into build-aarch64/ (or $MQ_AARCH64_DIR), then runs ctest there: every test
# goes through qemu-aarch64 (the toolchain file's CMAKE_CROSSCOMPILING_EMULATOR),
# on qemu's default CPU (NEON + dot product: the SDOT kernels), then the
# kernel and model tests again on a CPU without the dot product (plain NEON).
#
#   scripts/check_aarch64.sh          # ~3 min on 2 cores; leaves out the 2 slowest tests
#   scripts/check_aarch64.sh --all    # also test_model, test_gguf_write (~4 + 2.5 min of CPU)
#
# Never run here: the cli_*.sh tests and test_quantize_aq, which start the
# aarch64 mixq binary themselves (that needs binfmt_misc, absent in containers).
set -eu
cd "$(dirname "$0")/.."
DIR=${MQ_AARCH64_DIR:-build-aarch64}
JOBS=$(nproc)
ALL=0
[ "${1:-}" = "--all" ] && ALL=1
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check_aarch64: $tool not found (scripts/deps.sh installs it)" >&2
    exit 1
  fi
done
if [ ! -e /usr/lib/aarch64-linux-gnu/pkgconfig/jansson.pc ]; then
  echo "check_aarch64: no arm64 libraries (scripts/deps.sh installs libjansson-dev:arm64 ...)" >&2
  exit 1
fi
EXCLUDE='^(cli_.*|test_quantize_aq)$'
[ "$ALL" = 1 ] || EXCLUDE='^(cli_.*|test_quantize_aq|test_model|test_gguf_write)$'
echo "== $DIR: aarch64 cross build (gcc), tests under qemu-aarch64"
cmake -S . -B "$DIR" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$DIR" -j "$JOBS" >/dev/null
(cd "$DIR" && ctest --output-on-failure -j "$JOBS" -E "$EXCLUDE")
echo "== $DIR: kernel and model tests on a CPU without the dot product (QEMU_CPU=cortex-a57)"
(cd "$DIR" && QEMU_CPU=cortex-a57 ctest --output-on-failure -j "$JOBS" \
  -R '^(test_kernels|test_kernels_aq|test_kernels_gguf|test_linear_x8|test_golden|test_quant_model|test_session)$')
