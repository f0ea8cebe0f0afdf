#!/usr/bin/env bash
# Bounded load test of `mixq serve` on loopback: R completion requests, C at a
# time, against a server with --parallel P; reports requests/s, generated
# tokens/s and errors. Stops by itself (every request has a timeout, the
# server is killed at the end). Run after `make`:
#   bench/load.sh [MODEL] [R] [C] [P]     (defaults: models/tiny-en 32 8 4)
# Compare P=1 with P=C to see what continuous batching buys.
set -u
MODEL=${1:-models/tiny-en}
R=${2:-32}
C=${3:-8}
P=${4:-4}
MIXQ=${MIXQ:-build/mixq}
for tool in curl jq; do
  command -v $tool >/dev/null || { echo "load: $tool is needed (apt-get install -y $tool)"; exit 1; }
done
T=$(mktemp -d)
PORT=$(( 20000 + RANDOM % 20000 ))
"$MIXQ" serve "$MODEL" --host 127.0.0.1 --port "$PORT" --parallel "$P" >"$T/log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do
  curl -s -m 1 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
one() { # request i: a completion of 64 tokens, greedy
  curl -s -m 120 -o "$T/r$1.json" -w '%{http_code}\n' "http://127.0.0.1:$PORT/v1/completions" \
    -H 'Content-Type: application/json' \
    -d "{\"prompt\": \"In the beginning $1\", \"max_tokens\": 64, \"temperature\": 0}"
}
export -f one
export T PORT
start=$(date +%s.%N)
codes=$(seq "$R" | xargs -P "$C" -I{} bash -c 'one {}')
end=$(date +%s.%N)
ok=$(echo "$codes" | grep -c '^200$')
tokens=0
for f in "$T"/r*.json; do
  n=$(jq -r '.usage.completion_tokens // 0' "$f" 2>/dev/null || echo 0)
  tokens=$((tokens + n))
done
secs=$(echo "$end - $start" | bc -l)
printf 'load: %s, %d requests, %d at a time, --parallel %d: %d ok, %d errors\n' "$MODEL" "$R" "$C" "$P" "$ok" $((R - ok))
printf 'load: %.2f s, %.2f requests/s, %.1f generated tokens/s\n' "$secs" "$(echo "$R / $secs" | bc -l)" \
  "$(echo "$tokens / $secs" | bc -l)"
[ "$ok" -eq "$R" ]
