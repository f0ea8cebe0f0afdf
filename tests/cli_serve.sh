#!/usr/bin/env bash
# `mixq serve` end to end with a real HTTP client (curl), loopback only:
#   A. stories260K (shared fixtures), --parallel 2, an API key: /health,
#      /v1/models, greedy completion == the llama.cpp golden, SSE framing and
#      stream == non-stream, usage, stop strings, chat, seeds, tokenize, 4
#      concurrent streams == sequential results, ~40 hostile requests that
#      must get the right 4xx while the server stays up, SIGTERM -> exit 0.
#   B. a slow random model (make-tiny --shape small + the stories tokenizer),
#      --parallel 1 --queue 1 --timeout 2: a client that disconnects
#      mid-stream stops its generation, a full queue answers 503, a
#      slowloris connection is closed, SSE keep-alives hold a silent stream.
#   C. the same model with --parallel 4: 4 requests one after the other vs
#      all at once (a benchmark: the ratio is printed, not asserted).
# Every wait is bounded; the servers are killed on exit.
# usage: cli_serve.sh path/to/mixq tests/data
set -u
MIXQ=$1
for tool in curl jq; do
  if ! command -v $tool >/dev/null; then
    echo "SKIP: $tool not installed (scripts/deps.sh)"
    exit 77
  fi
done
S=${MQ_SHARED_DIR:-$(dirname "$0")/../../shared}/fixtures
M=$S/stories260K/hf
GOLD=$S/stories260K/golden/greedy_f32.json
if [ ! -f "$M/tokenizer.json" ] || [ ! -f "$GOLD" ]; then
  echo "SKIP: shared fixtures not found"
  exit 77
fi
T=$(mktemp -d)
PID=""
BG=""
cleanup() {
  for p in $BG $PID; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*" >&2; fi; }
eq() { [ "$1" = "$2" ] || { echo "  got '$1', want '$2'" >&2; return 1; }; }
has() { grep -q -- "$2" "$1"; }

# start LOG ARGS...: run mixq serve on a free loopback port (--port 0, read
# back from the log); sets PID and URL once /health answers 200.
start() {
  local log=$1
  LOG=$1
  shift
  "$MIXQ" serve "$@" --host 127.0.0.1 --port 0 2>"$log" &
  PID=$!
  URL=""
  for _ in $(seq 1 300); do
    local port
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log")
    if [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/health")" = 200 ]; then
      URL=http://127.0.0.1:$port
      return 0
    fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up:" >&2
  cat "$log" >&2
  return 1
}
# stop: SIGTERM, expect a clean exit.
stop() {
  kill -TERM "$PID"
  wait "$PID"
  local rc=$?
  PID=""
  [ $rc -eq 0 ] || { echo "  mixq serve exited with $rc; its log ends:" >&2; tail -n 30 "$LOG" >&2; }
  return $rc
}
alive() { eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/health")" 200; }

KEY=sk-test-$$-$RANDOM
printf '# keys for the test\n%s\n' "$KEY" >"$T/keys"
AUTH="Authorization: Bearer $KEY"
# post PATH JSON [curl args]: body to $T/out, prints the HTTP status
post() {
  local path=$1 data=$2
  shift 2
  curl -s -o "$T/out" -w '%{http_code}' --max-time 120 -H "$AUTH" -H 'Content-Type: application/json' \
    "$@" --data-binary "$data" "$URL$path"
}
# expect STATUS TYPE PATH JSON [curl args]: an error in OpenAI's shape
expect() {
  local want=$1 type=$2 path=$3 data=$4
  shift 4
  local got
  got=$(post "$path" "$data" "$@")
  if [ "$got" != "$want" ]; then
    echo "  $path $(printf '%.80s' "$data"): status $got, want $want: $(head -c 300 "$T/out")" >&2
    return 1
  fi
  [ -z "$type" ] && return 0
  eq "$(jq -r '.error.type' "$T/out" 2>/dev/null)" "$type" &&
    eq "$(jq -r '.error.code' "$T/out")" "$want" && [ -n "$(jq -r '.error.message' "$T/out")" ]
}
# sse FILE: the text of an SSE capture (completions or chat deltas)
sse_text() { sed -n 's/^data: //p' "$1" | grep -v '^\[DONE\]$' | jq -j '.choices[0] | (.text // .delta.content // empty)'; }

# a bad option value is refused before anything starts
"$MIXQ" serve "$M" --cache-type q8 --port 0 >/dev/null 2>"$T/bad.err"
ok test $? -ne 0
ok has "$T/bad.err" "f32, f16 or q8_0"
# a q8_0 KV cache on stories260K (head_dim 8): the load fails, saying why, and the server exits
timeout 60 "$MIXQ" serve "$M" --cache-type q8_0 --port 0 >/dev/null 2>"$T/bad.err"
ok test $? -eq 1
ok has "$T/bad.err" "q8_0 KV cache needs head_dim to be a multiple of 32"

# ===================================================================== A
ok start "$T/a.log" "$M" --parallel 2 --ctx-size 256 --alias stories --api-key-file "$T/keys" --metrics
[ -n "$URL" ] || exit 1

# /health is public; the rest needs the key
ok eq "$(curl -s --max-time 10 "$URL/health" | jq -r .status)" ok
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/v1/models")" 401
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer nope' "$URL/v1/models")" 401
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Basic $KEY" "$URL/v1/models")" 401
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "$AUTH" "$URL/v1/models")" 200
curl -s --max-time 10 -H "$AUTH" "$URL/v1/models" >"$T/models.json"
ok eq "$(jq -r .object "$T/models.json")" list
ok eq "$(jq -r '.data[0].id' "$T/models.json")" stories
ok eq "$(jq -r '.data[0].object' "$T/models.json")" model
ok eq "$(jq -r '.data[0].meta.quantization.method' "$T/models.json")" none
ok eq "$(jq -r '.data[0].meta.quantization.schemes.FLOAT' "$T/models.json")" 36
ok eq "$(jq -r '.data[0].meta.quantization.bits_per_weight' "$T/models.json")" 32
ok eq "$(jq -r '.data[0].meta.n_ctx' "$T/models.json")" 256

# greedy completion == llama.cpp's greedy tokens on the same weights
jq -j .generated_text "$GOLD" >"$T/gold.txt"
N_GOLD=$(jq -r '.generated_ids | length' "$GOLD")
REQ='{"model":"stories","prompt":"Once upon a time","max_tokens":'$N_GOLD',"temperature":0}'
ok eq "$(post /v1/completions "$REQ")" 200
cp "$T/out" "$T/c.json"
jq -j '.choices[0].text' "$T/c.json" >"$T/c.txt"
ok cmp "$T/c.txt" "$T/gold.txt"
ok eq "$(jq -r .object "$T/c.json")" text_completion
ok eq "$(jq -r '.id | startswith("cmpl-")' "$T/c.json")" true
ok eq "$(jq -r .model "$T/c.json")" stories
ok eq "$(jq -r '.choices[0].finish_reason' "$T/c.json")" length
ok eq "$(jq -c .usage "$T/c.json")" '{"prompt_tokens":5,"completion_tokens":'$N_GOLD',"total_tokens":'$((N_GOLD + 5))'}'
# ... and `mixq run`'s greedy text
ok eq "$("$MIXQ" run "$M" -p "Once upon a time" -n "$N_GOLD" --temp 0 2>/dev/null)" "$(cat "$T/c.txt")"
# the prompt as token ids gives the same
ok eq "$(post /v1/completions '{"prompt":[1,403,407,261,378],"max_tokens":'$N_GOLD',"temperature":0}')" 200
ok eq "$(jq -j '.choices[0].text' "$T/out")" "$(cat "$T/gold.txt")"

# streaming: data chunks, a usage chunk, [DONE]; the text equals the above
curl -sN --max-time 120 -H "$AUTH" -o "$T/s.sse" \
  -d '{"prompt":"Once upon a time","max_tokens":'$N_GOLD',"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
  "$URL/v1/completions"
ok eq "$(tail -n 2 "$T/s.sse" | head -n 1)" "data: [DONE]"
ok eq "$(grep -v '^$' "$T/s.sse" | grep -vc '^data: ')" 0
ok test "$(grep -c '^data: {' "$T/s.sse")" -ge 3
sse_text "$T/s.sse" >"$T/s.txt"
ok cmp "$T/s.txt" "$T/c.txt"
sed -n 's/^data: //p' "$T/s.sse" | grep -v '^\[DONE\]$' >"$T/s.jsonl"
ok eq "$(jq -r '.object' "$T/s.jsonl" | sort -u)" text_completion
ok eq "$(jq -r 'select(.choices | length > 0) | .choices[0].finish_reason // empty' "$T/s.jsonl")" length
ok eq "$(jq -c 'select(.choices == []) | .usage' "$T/s.jsonl")" "$(jq -c .usage "$T/c.json")"
# without include_usage there is no usage chunk
curl -sN --max-time 60 -H "$AUTH" -o "$T/s2.sse" \
  -d '{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"stream":true}' "$URL/v1/completions"
ok eq "$(grep -c '"usage"' "$T/s2.sse")" 0
ok eq "$(tail -n 2 "$T/s2.sse" | head -n 1)" "data: [DONE]"

# stop strings: the text before the first match, finish_reason stop
ok eq "$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":64,"temperature":0,"stop":["Lily","zzz"]}')" 200
ok eq "$(jq -j '.choices[0].text' "$T/out")" "$(sed 's/Lily.*//' "$T/gold.txt" | head -n 1)"
ok eq "$(jq -r '.choices[0].finish_reason' "$T/out")" stop
ok eq "$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":64,"temperature":0,"stop":"park"}')" 200
ok eq "$(jq -j '.choices[0].text' "$T/out")" ", there was a little girl named Lily. She loved to play outside in the "
# max_tokens beyond the context is clamped: the context ends the reply
ok eq "$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":100000,"temperature":0,"repetition_penalty":1.3}')" 200
ok test "$(jq -r '.usage.prompt_tokens + .usage.completion_tokens' "$T/out")" -le 256

# sampling: the same seed gives the same text; parameters are accepted
R='{"prompt":"Once upon a time","max_tokens":40,"temperature":0.9,"top_k":20,"top_p":0.9,"min_p":0.02,"seed":1234,"presence_penalty":0.5,"frequency_penalty":0.2,"repetition_penalty":1.1}'
post /v1/completions "$R" >/dev/null
jq -j '.choices[0].text' "$T/out" >"$T/seed1.txt"
ok eq "$(post /v1/completions "$R")" 200
ok eq "$(jq -j '.choices[0].text' "$T/out")" "$(cat "$T/seed1.txt")"
ok eq "$(post /v1/completions '{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"logit_bias":{"432":-100}}')" 200
ok test "$(jq -j '.choices[0].text' "$T/out" | head -c 1)" != ","

# chat: the template is applied (chatml here: the fixture has none)
CHAT='{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Tell a story."}]}],"max_tokens":24,"temperature":0}'
ok eq "$(post /v1/chat/completions "$CHAT")" 200
cp "$T/out" "$T/chat.json"
ok eq "$(jq -r .object "$T/chat.json")" chat.completion
ok eq "$(jq -r '.choices[0].message.role' "$T/chat.json")" assistant
ok eq "$(jq -r '.choices[0].finish_reason | test("^(stop|length)$")' "$T/chat.json")" true
ok eq "$(jq -r '.usage.prompt_tokens + .usage.completion_tokens == .usage.total_tokens' "$T/chat.json")" true
ok test "$(jq -r '.usage.prompt_tokens' "$T/chat.json")" -gt 10
ok eq "$("$MIXQ" run "$M" --chat-template chatml --system "Be brief." -p "Tell a story." -n 24 --temp 0 2>/dev/null)" \
  "$(jq -j '.choices[0].message.content' "$T/chat.json")"
curl -sN --max-time 60 -H "$AUTH" -o "$T/chat.sse" \
  -d "$(jq -c '. + {stream: true}' <<<"$CHAT")" "$URL/v1/chat/completions"
ok eq "$(sed -n 's/^data: //p' "$T/chat.sse" | head -n 1 | jq -c '.choices[0].delta')" '{"role":"assistant","content":""}'
ok eq "$(sse_text "$T/chat.sse")" "$(jq -j '.choices[0].message.content' "$T/chat.json")"
ok eq "$(sed -n 's/^data: //p' "$T/chat.sse" | grep -v DONE | jq -r .object | sort -u)" chat.completion.chunk

# tokenize / detokenize
ok eq "$(post /tokenize '{"content":"Once upon a time"}')" 200
ok eq "$(jq -c .tokens "$T/out")" '[403,407,261,378]'
ok eq "$(post /tokenize '{"content":"Once upon a time","add_special":true}')" 200
ok eq "$(jq -c .tokens "$T/out")" '[1,403,407,261,378]'
ok eq "$(post /detokenize '{"tokens":[403,407,261,378]}')" 200
ok eq "$(jq -r .content "$T/out")" "Once upon a time"

# 4 concurrent streams on 2 slots == their sequential greedy results
P=("Once upon a time" "Lily and Tom went" "The little dog" "One day, a bird")
for i in 0 1 2 3; do
  post /v1/completions "$(jq -cn --arg p "${P[$i]}" '{prompt:$p,max_tokens:48,temperature:0}')" >/dev/null
  jq -j '.choices[0].text' "$T/out" >"$T/seq$i.txt"
done
pids=""
for i in 0 1 2 3; do
  curl -sN --max-time 120 -H "$AUTH" -o "$T/par$i.sse" \
    -d "$(jq -cn --arg p "${P[$i]}" '{prompt:$p,max_tokens:48,temperature:0,stream:true}')" \
    "$URL/v1/completions" &
  pids="$pids $!"
done
BG=$pids
wait $pids
BG=""
for i in 0 1 2 3; do
  ok eq "$(tail -n 2 "$T/par$i.sse" | head -n 1)" "data: [DONE]"
  sse_text "$T/par$i.sse" >"$T/par$i.txt"
  ok cmp "$T/par$i.txt" "$T/seq$i.txt"
done

# hostile requests: the right 4xx, and the server keeps serving
IR=invalid_request_error
C=/v1/completions
CC=/v1/chat/completions
ok expect 400 $IR $C '{"prompt":'
ok expect 400 $IR $C ''
ok expect 400 $IR $C '[]'
ok expect 400 $IR $C '"text"'
ok expect 400 $IR $C "$(printf '%.0s[' $(seq 1 100))$(printf '%.0s]' $(seq 1 100))"
ok expect 400 $IR $C "{\"prompt\":\"x\",\"a\":$(printf '%.0s{"a":' $(seq 1 80))1$(printf '%.0s}' $(seq 1 80))}"
ok expect 400 $IR $C '{"prompt":"x","prompt":"y"}'
ok expect 400 $IR $C "$(printf '{"prompt":"\xff\xfe"}')"
ok expect 400 $IR $C '{"prompt":"a\u0000b"}'
ok expect 400 $IR $C '{"prompt":123}'
ok expect 400 $IR $C '{"prompt":["a","b"]}'
ok expect 400 $IR $C '{"prompt":[]}'
ok expect 400 $IR $C '{"prompt":[-1]}'
ok expect 400 $IR $C '{"prompt":[1,99999]}'
ok expect 400 $IR $C '{"prompt":[1,2.5]}'
ok expect 400 $IR $C '{}'
ok expect 400 $IR $C '{"prompt":"x","max_tokens":"10"}'
ok expect 400 $IR $C '{"prompt":"x","max_tokens":-1}'
ok expect 400 $IR $C '{"prompt":"x","max_tokens":0}'
ok expect 400 $IR $C '{"prompt":"x","max_tokens":1e400}'
ok expect 400 $IR $C '{"prompt":"x","max_tokens":99999999999999999999999}'
ok expect 400 $IR $C '{"prompt":"x","temperature":-1}'
ok expect 400 $IR $C '{"prompt":"x","temperature":"hot"}'
ok expect 400 $IR $C '{"prompt":"x","top_p":2}'
ok expect 400 $IR $C '{"prompt":"x","top_k":1.5}'
ok expect 400 $IR $C '{"prompt":"x","repetition_penalty":0}'
ok expect 400 $IR $C '{"prompt":"x","seed":1.5}'
ok expect 400 $IR $C '{"prompt":"x","seed":-7}'
ok expect 400 $IR $C '{"prompt":"x","stop":5}'
ok expect 400 $IR $C "{\"prompt\":\"x\",\"stop\":[$(printf '"s",%.0s' $(seq 1 70))\"s\"]}"
ok expect 400 $IR $C "{\"prompt\":\"x\",\"stop\":\"$(head -c 2000 /dev/zero | tr '\0' a)\"}"
ok expect 400 $IR $C '{"prompt":"x","stream":"yes"}'
ok expect 400 $IR $C '{"prompt":"x","stream":true,"stream_options":"yes"}'
ok expect 400 $IR $C '{"prompt":"x","n":2}'
ok expect 400 $IR $C '{"prompt":"x","logprobs":5}'
ok expect 400 $IR $C '{"prompt":"x","echo":true}'
ok expect 400 $IR $C '{"prompt":"x","logit_bias":{"99999":1}}'
ok expect 400 $IR $C '{"prompt":"x","logit_bias":{"5":1000}}'
ok expect 400 $IR $C '{"prompt":"x","model":7}'
ok expect 400 exceed_context_size_error $C "{\"prompt\":[$(printf '403,%.0s' $(seq 1 299))403]}"
ok eq "$(jq -r '.error.n_ctx' "$T/out")" 256
ok expect 400 exceed_context_size_error $C "{\"prompt\":\"$(printf 'Once upon a time %.0s' $(seq 1 100))\"}"
ok expect 400 $IR $CC '{"messages":[]}'
ok expect 400 $IR $CC '{"messages":"hi"}'
ok expect 400 $IR $CC '{"messages":[{"role":"wizard","content":"hi"}]}'
ok expect 400 $IR $CC '{"messages":[{"role":"user"}]}'
ok expect 400 $IR $CC '{"messages":[{"role":"user","content":5}]}'
ok expect 400 $IR $CC '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}'
ok expect 400 $IR $CC '{"messages":[{"role":"user","content":"hi"}],"logprobs":true}'
ok expect 400 $IR $CC '{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}'
ok expect 400 $IR /tokenize '{"content":5}'
ok expect 400 $IR /detokenize '{"tokens":[1,-5]}'
ok expect 400 $IR /detokenize '{"tokens":"abc"}'
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big"
ok expect 413 $IR $C "@$T/big"
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/huge"
ok expect 413 $IR $C "@$T/huge"
ok expect 413 $IR $C "@$T/big" -H 'Transfer-Encoding: chunked'
ok expect 404 not_found_error /v1/nothing '{}'
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "$AUTH" "$URL/v1/completions")" 405
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X DELETE -H "$AUTH" "$URL/v1/models")" 405
ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Big: $(head -c 70000 /dev/zero | tr '\0' b)" "$URL/health")" 431
ok eq "$(curl -s -o "$T/out" -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer wrong' -d '{"prompt":"x"}' "$URL/v1/completions")" 401
ok eq "$(jq -r .error.type "$T/out")" authentication_error
ok alive
# the server still answers correctly after all that
ok eq "$(post /v1/completions "$REQ")" 200
ok eq "$(jq -j '.choices[0].text' "$T/out")" "$(cat "$T/gold.txt")"

# metrics (opt-in, behind the key)
ok eq "$(curl -s -o "$T/metrics" -w '%{http_code}' --max-time 10 -H "$AUTH" "$URL/metrics")" 200
ok has "$T/metrics" "^mixq_tokens_predicted_total [1-9]"
ok has "$T/metrics" "^mixq_requests_processing 0"
ok has "$T/metrics" '^mixq_http_requests_total{code="4xx"} [1-9]'

ok stop
ok has "$T/a.log" '"POST /v1/completions" 200 .* prompt=5 completion='"$N_GOLD"' finish=length'
ok has "$T/a.log" '"POST /v1/completions" 400'
ok has "$T/a.log" "stopped"
echo "cli_serve: A done at ${SECONDS}s"

# ===================================================================== B
# A slow model: random weights (8 layers, 512 wide, vocab 8192) and the
# stories tokenizer; ids past the tokenizer's 512 print nothing, so streams
# go quiet for long stretches.
SM=$T/small
if "$MIXQ" make-tiny "$SM" --shape small --seed 1 >/dev/null; then
  cp "$M"/tokenizer.json "$M"/tokenizer_config.json "$M"/special_tokens_map.json "$SM"/
  LONG='{"prompt":"Once upon a time","max_tokens":2000,"temperature":0,"stream":true}'
  metric() { curl -s --max-time 10 "$URL/metrics" | sed -n "s/^$1 //p"; }
  # wait_metric NAME VALUE: up to 20 s
  wait_metric() {
    for _ in $(seq 1 200); do
      [ "$(metric "$1")" = "$2" ] && return 0
      sleep 0.1
    done
    echo "  $1 is $(metric "$1"), want $2" >&2
    return 1
  }
  ok start "$T/b.log" "$SM" --parallel 1 --queue 1 --timeout 2 --metrics --ctx-size 2048 -t 1
  if [ -n "$URL" ]; then
    # a client that hangs up mid-stream stops its generation
    curl -sN --max-time 1 -o "$T/cut.sse" -d "$LONG" "$URL/v1/completions"
    ok eq $? 28
    ok wait_metric mixq_requests_processing 0
    ok wait_metric mixq_requests_cancelled_total 1
    g1=$(metric mixq_tokens_predicted_total)
    sleep 0.5
    ok eq "$(metric mixq_tokens_predicted_total)" "$g1"
    ok test "$g1" -lt 2000
    ok has "$T/b.log" "client-gone"
    # a full queue answers 503; the waiting ones are cancelled with their clients
    curl -sN --max-time 60 -o /dev/null -d "$LONG" "$URL/v1/completions" &
    b1=$!
    BG=$b1
    ok wait_metric mixq_requests_processing 1
    curl -s --max-time 60 -o /dev/null -d "$(jq -c '.stream = false' <<<"$LONG")" "$URL/v1/completions" &
    b2=$!
    BG="$b1 $b2"
    ok wait_metric mixq_requests_deferred 1
    ok eq "$(curl -s -o "$T/out" -w '%{http_code}' --max-time 10 -d '{"prompt":"x"}' "$URL/v1/completions")" 503
    ok eq "$(jq -r .error.type "$T/out")" unavailable_error
    # a waiting client that leaves frees its place: the next one waits
    # (no 503; curl gives up after 3 s with no answer: 000)
    kill $b2 2>/dev/null
    wait $b2 2>/dev/null
    BG=$b1
    sleep 0.5
    ok eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -d '{"prompt":"x"}' "$URL/v1/completions")" 000
    kill $b1 2>/dev/null
    wait $b1 2>/dev/null
    BG=""
    ok wait_metric mixq_requests_deferred 0
    ok wait_metric mixq_requests_processing 0
    # slowloris: a request that never finishes its headers is closed by the timeout
    t0=$(date +%s)
    if exec 3<>"/dev/tcp/127.0.0.1/${URL##*:}"; then
      printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le' >&3
      timeout 20 cat <&3 >/dev/null
      exec 3<&-
      ok test $(($(date +%s) - t0)) -le 10
    fi
    # ... and so is a body that stops halfway
    t0=$(date +%s)
    if exec 3<>"/dev/tcp/127.0.0.1/${URL##*:}"; then
      printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":' >&3
      timeout 20 cat <&3 >/dev/null
      exec 3<&-
      ok test $(($(date +%s) - t0)) -le 10
    fi
    ok alive
    # a stream that stays silent longer than --timeout is kept alive by SSE comments
    curl -sN --max-time 300 -o "$T/quiet.sse" \
      -d '{"prompt":"Once upon a time","max_tokens":120,"temperature":0,"stream":true}' "$URL/v1/completions"
    ok eq "$(tail -n 2 "$T/quiet.sse" | head -n 1)" "data: [DONE]"
    ok stop
  fi
  echo "cli_serve: B done at ${SECONDS}s"

  # ===================================================================== C
  ok start "$T/c.log" "$SM" --parallel 4 --ctx-size 512 --cache-type f16
  if [ -n "$URL" ]; then
    NT=32
    now() { date +%s.%N; }
    t0=$(now)
    for i in 0 1 2 3; do
      curl -s --max-time 300 -o "$T/bs$i.json" \
        -d "$(jq -cn --arg p "${P[$i]}" --argjson n $NT '{prompt:$p,max_tokens:$n,temperature:0}')" "$URL/v1/completions"
    done
    t1=$(now)
    pids=""
    for i in 0 1 2 3; do
      curl -s --max-time 300 -o "$T/bp$i.json" \
        -d "$(jq -cn --arg p "${P[$i]}" --argjson n $NT '{prompt:$p,max_tokens:$n,temperature:0}')" "$URL/v1/completions" &
      pids="$pids $!"
    done
    BG=$pids
    wait $pids
    BG=""
    t2=$(now)
    for i in 0 1 2 3; do ok eq "$(jq -r .usage.completion_tokens "$T/bp$i.json")" $NT; done
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v n=$((4 * NT)) 'BEGIN {
      printf "batching (--parallel 4, %d tokens): sequential %.2f s (%.1f tok/s), concurrent %.2f s (%.1f tok/s), speed-up %.2fx\n",
        n, b - a, n / (b - a), c - b, n / (c - b), (b - a) / (c - b) }'
    ok stop
  fi
fi

echo "cli_serve: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
