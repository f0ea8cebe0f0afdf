#!/bin/sh
# Install the Debian packages mixq needs to build and test, or say how.
set -eu
# libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for clang (tests/fuzz);
# only a Recommends of clang, so minimal installs lack it. valgrind: tests/cli_valgrind.sh.
# libmicrohttpd-dev: the HTTP server (mixq serve); curl, jq: tests/cli_serve.sh.
PKGS="build-essential cmake pkg-config libjansson-dev libpcre2-dev libicu-dev clang libclang-rt-14-dev valgrind libmicrohttpd-dev curl jq"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq $missing >/dev/null
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "run: sudo apt-get install -y$missing" >&2
  exit 1
fi
