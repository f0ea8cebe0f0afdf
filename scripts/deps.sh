#!/bin/sh
# Install the Debian packages mixq needs to build and test, or say how.
set -eu
# libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for clang (tests/fuzz);
# only a Recommends of clang, so minimal installs lack it. valgrind: tests/cli_valgrind.sh.
# libmicrohttpd-dev: the HTTP server (mixq serve); curl, jq: tests/cli_serve.sh.
PKGS="build-essential cmake pkg-config libjansson-dev libpcre2-dev libicu-dev clang libclang-rt-14-dev valgrind libmicrohttpd-dev curl jq"
# --cross (scripts/check.sh): also the aarch64 cross build tested under
# qemu-user (scripts/check_aarch64.sh): the cross compiler, qemu and the
# libraries for arm64 (Debian multiarch: the arm64 architecture is added to
# dpkg below).
if [ "${1:-}" = "--cross" ]; then
  PKGS="$PKGS gcc-aarch64-linux-gnu qemu-user libjansson-dev:arm64 libpcre2-dev:arm64 libicu-dev:arm64 libmicrohttpd-dev:arm64"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  case "$missing" in
  *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
  esac
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq $missing >/dev/null
else
  echo "deps: missing Debian packages:$missing" >&2
  case "$missing" in
  *:arm64*) echo "run: sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2 ;;
  esac
  echo "run: sudo apt-get install -y$missing" >&2
  exit 1
fi
