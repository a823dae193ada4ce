#!/bin/sh
# tests/cli/test_serve.sh — `comi serve` over real HTTP on 127.0.0.1 (only
# loopback, an ephemeral port the server picks): good requests, every class
# of bad request, 40 concurrent requests, limits, queue-full, timeouts,
# metrics, and graceful SIGTERM shutdown. Every server started here is
# killed on exit; every curl has a time limit.
. tests/cli/lib.sh

PY=${PYTHON:-python3}
[ -x /usr/bin/python3 ] && PY=${PYTHON:-/usr/bin/python3}
SERVERS=""
cleanup() {
    for p in $SERVERS; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! command -v curl >/dev/null 2>&1; then
    skip serve "curl is not installed"
    exit 0
fi

# start_server TAG ARGS... — starts comi serve on 127.0.0.1:0, sets SPID and
# PORT (from the "listening on" line); returns 1 when it did not come up.
start_server() {
    tag=$1; shift
    # the files exist before the loop below reads them: the background job
    # opens its redirections only once it runs, which on a loaded machine can
    # be after the first read ("sed: can't read .../main.out")
    : >"$TMP/$tag.out"
    : >"$TMP/$tag.err"
    "$COMI" serve --host 127.0.0.1 --port 0 "$@" >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
    SPID=$!
    SERVERS="$SERVERS $SPID"
    PORT=""
    i=0
    while [ $i -lt 100 ]; do
        PORT=$(sed -n 's|^comi serve: listening on http://127\.0\.0\.1:\([0-9][0-9]*\) .*|\1|p' \
            "$TMP/$tag.out")
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    echo "server $tag did not start: $(head -c 300 "$TMP/$tag.err")"
    return 1
}

# http NAME METHOD PATH [BODY-FILE] [CURL-ARGS...] — body in $TMP/NAME.body,
# status code in $TMP/NAME.code, headers in $TMP/NAME.hdr. A body is sent
# as $CT (default application/json).
http() {
    name=$1; method=$2; path=$3; shift 3
    data=""
    if [ $# -gt 0 ] && [ -f "$1" ]; then data=$1; shift; fi
    if [ -n "$data" ]; then
        curl -s --max-time 20 -X "$method" -H "Content-Type: ${CT:-application/json}" \
            --data-binary "@$data" -D "$TMP/$name.hdr" -o "$TMP/$name.body" \
            -w '%{http_code}' "$@" "http://127.0.0.1:$PORT$path" >"$TMP/$name.code" 2>/dev/null
    else
        curl -s --max-time 20 -X "$method" -D "$TMP/$name.hdr" -o "$TMP/$name.body" \
            -w '%{http_code}' "$@" "http://127.0.0.1:$PORT$path" >"$TMP/$name.code" 2>/dev/null
    fi
}

# expect NAME CODE PYEXPR — the status is CODE and PYEXPR (d = the parsed
# JSON body, h = the headers, lower-cased) is true.
expect() {
    name=$1; want=$2; cond=$3
    got=$(cat "$TMP/$name.code" 2>/dev/null)
    if [ "$got" != "$want" ]; then
        fail "$name" "status $got, expected $want; body: $(head -c 300 "$TMP/$name.body" 2>/dev/null)"
        return
    fi
    if "$PY" - "$TMP/$name.body" "$TMP/$name.hdr" "$cond" <<'EOF'
import json, sys
body, hdr, cond = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    d = json.load(open(body, encoding="utf-8"))
except ValueError as e:
    print("body is not JSON: %s" % e); sys.exit(1)
h = {}
for line in open(hdr, encoding="latin-1"):
    if ":" in line:
        k, v = line.split(":", 1); h[k.strip().lower()] = v.strip()
ok = eval(cond)
if not ok: print("condition failed: %s; body: %s" % (cond, json.dumps(d)[:300]))
sys.exit(0 if ok else 1)
EOF
    then pass "$name"; else fail "$name" "see the line above"; fi
}

# post NAME JSON-TEXT CODE PYEXPR — POST /v1/compress with the given body.
post() {
    printf '%s' "$2" >"$TMP/$1.req"
    http "$1" POST /v1/compress "$TMP/$1.req"
    expect "$1" "$3" "$4"
}

expect_fail serve_model_missing "--model '/nonexistent/m.gguf'" "$COMI" serve --port 0 --model /nonexistent/m.gguf
expect_fail serve_checkpoint_needs_model "--checkpoint needs --model" "$COMI" serve --port 0 --checkpoint /tmp
expect_fail serve_bad_port "--port" "$COMI" serve --port 70000
expect_fail serve_bad_option "unknown option" "$COMI" serve --port 0 --bogus
expect_fail serve_bad_encoder "--encoder" "$COMI" serve --port 0 --encoder vectors:/nonexistent/vec.txt
"$COMI" serve --help >"$TMP/help" 2>&1
if grep -q -- "--max-body" "$TMP/help" && grep -q "/v1/compress" "$TMP/help"; then
    pass serve_help
else fail serve_help "--help lacks the flags/endpoints"; fi

start_server main --threads 2 --max-tokens 5000 || { fail serve_start "no server"; exit 1; }
MAIN_PID=$SPID
MAIN_PORT=$PORT

expect_fail serve_port_in_use "cannot listen" "$COMI" serve --port "$PORT"

# --- good requests -------------------------------------------------------
VERSION=$("$COMI" version | sed 's/^comi //')
http health GET /health
expect health 200 "d['status'] == 'ok' and d['version'] == '$VERSION' and d['model'] is None and d['encoder'] == 'lexical' and d['workers'] == 2 and d['tokenizer'] == 'words'"
http health_head HEAD /health -I
[ "$(cat "$TMP/health_head.code")" = 200 ] && pass health_head || fail health_head "HEAD /health"

CTX="alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi"
post compress_ratio "{\"context\": \"$CTX\", \"question\": \"which letter is kappa?\", \"ratio\": 2}" 200 \
  "set(d) >= {'compressed','original_tokens','compressed_tokens','ratio','ms'} and d['original_tokens'] == 16 and 1 <= d['compressed_tokens'] <= 8 and isinstance(d['compressed'], str) and len(d['compressed'].split()) == d['compressed_tokens'] and abs(d['ratio'] - 16 / d['compressed_tokens']) < 1e-9 and d['ms'] >= 0"
post compress_target "{\"context\": \"$CTX\", \"question\": \"kappa\", \"target_tokens\": 3}" 200 \
  "d['original_tokens'] == 16 and 1 <= d['compressed_tokens'] <= 3"
post compress_documents "{\"documents\": [\"the cat sat on the mat\", \"paris is the capital of france\"], \"question\": \"what is the capital of france?\", \"ratio\": 2}" 200 \
  "d['original_tokens'] == 12 and 1 <= d['compressed_tokens'] <= 6"
post compress_default_ratio "{\"context\": \"$CTX\", \"question\": \"kappa\"}" 200 \
  "d['original_tokens'] == 16 and d['compressed_tokens'] <= 16"
post compress_encoder_lexical "{\"context\": \"$CTX\", \"question\": \"kappa\", \"ratio\": 4, \"encoder\": \"lexical\"}" 200 \
  "d['compressed_tokens'] <= 4"
post compress_unicode "{\"context\": \"caf\\u00e9 na\\u00efve \\u65e5\\u672c \\ud83d\\ude00 end\", \"question\": \"caf\\u00e9\", \"ratio\": 1}" 200 \
  "d['original_tokens'] == 6 and d['compressed'].split() == ['café', 'naïve', '日本', '\U0001F600', 'end']"

# Same output as the CLI (when the compress subcommand exists).
if "$COMI" compress --help >/dev/null 2>&1; then
    printf '%s' "$CTX" >"$TMP/ctx.txt"
    "$COMI" compress --question "which letter is kappa?" --context-file "$TMP/ctx.txt" --ratio 2 \
        >"$TMP/cli.out" 2>"$TMP/cli.err"
    if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=open(sys.argv[2], encoding="utf-8").read(); sys.exit(0 if d["compressed"] + "\n" == c else 1)' \
        "$TMP/compress_ratio.body" "$TMP/cli.out"; then pass compress_same_as_cli
    else fail compress_same_as_cli "server: $(head -c 200 "$TMP/compress_ratio.body") cli: $(head -c 200 "$TMP/cli.out")"; fi
else
    skip compress_same_as_cli "comi compress is not built yet"
fi

# NQ-20 example 1 at 8x (the benchmark's request).
DATA=${COMI_DATA:-../shared/data}
if [ -f "$DATA/nq20.jsonl" ]; then
    head -n 1 "$DATA/nq20.jsonl" | "$PY" -c 'import json,sys; e=json.loads(sys.stdin.readline()); print(json.dumps({"context": e["input"], "question": e["prompt"], "ratio": 8}))' >"$TMP/nq.req"
    WORDS=$(head -n 1 "$DATA/nq20.jsonl" | "$PY" -c 'import json,sys; print(len(json.loads(sys.stdin.readline())["input"].split()))')
    http nq20 POST /v1/compress "$TMP/nq.req"
    expect nq20 200 "d['original_tokens'] == $WORDS and 0 < d['compressed_tokens'] <= $WORDS // 8"
else
    skip nq20 "no $DATA/nq20.jsonl"
fi

# "unit" / "readable": whole sentences, the same text as compress --unit sentence
UCTX="The canal opened in 1914. Stevens resigned in 1907, and Goethals led the project until it was finished. Ships avoid Cape Horn."
post compress_unit_sentence "{\"context\": \"$UCTX\", \"question\": \"Who led the project?\", \"ratio\": 1.5, \"unit\": \"sentence\"}" 200 \
  "d['unit'] == 'sentence' and d['tokenizer'] == 'words' and d['compressed'] == 'Stevens resigned in 1907, and Goethals led the project until it was finished.' and d['compressed_tokens'] == 13"
post compress_readable "{\"context\": \"$UCTX\", \"question\": \"Who led the project?\", \"ratio\": 1.5, \"readable\": true}" 200 \
  "d['unit'] == 'sentence' and d['compressed'].endswith('until it was finished.')"
"$COMI" compress --question "Who led the project?" --context "$UCTX" --ratio 1.5 --unit sentence >"$TMP/cli_unit.out" 2>&1
if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=open(sys.argv[2], encoding="utf-8").read(); sys.exit(0 if d["compressed"] + "\n" == c else 1)' \
    "$TMP/compress_unit_sentence.body" "$TMP/cli_unit.out"; then pass compress_unit_same_as_cli
else fail compress_unit_same_as_cli "cli: $(head -c 200 "$TMP/cli_unit.out")"; fi
post compress_unit_word_default "{\"context\": \"$UCTX\", \"question\": \"Who led the project?\", \"ratio\": 2}" 200 "d['unit'] == 'word'"
post bad_unit "{\"context\": \"$UCTX\", \"question\": \"q\", \"unit\": \"paragraph\"}" 422 "\"'paragraph' is not sentence, clause, word\" in d['error']"
post bad_unit_type "{\"context\": \"$UCTX\", \"question\": \"q\", \"unit\": 2}" 400 "\"'unit' must be a string\" in d['error']"
post bad_readable_type "{\"context\": \"$UCTX\", \"question\": \"q\", \"readable\": \"yes\"}" 400 "\"'readable' must be true or false\" in d['error']"
post bad_readable_conflict "{\"context\": \"$UCTX\", \"question\": \"q\", \"readable\": true, \"unit\": \"word\"}" 422 "'means unit sentence' in d['error']"
post bad_unit_budget_too_small "{\"context\": \"$UCTX\", \"question\": \"q\", \"target_tokens\": 2, \"unit\": \"sentence\"}" 422 "'shorter than every sentence' in d['error']"
post bad_tokenizer_not_loaded "{\"context\": \"$UCTX\", \"question\": \"q\", \"tokenizer\": \"/m.gguf\"}" 422 "'without --tokenizer' in d['error']"

# --- bad requests --------------------------------------------------------
post bad_json "{\"context\": \"a b\",
  \"question\": what}" 400 "'line 2' in d['error'] and 'column' in d['error']"
post bad_trailing "{\"context\": \"a\", \"question\": \"q\"} x" 400 "'malformed JSON' in d['error']"
post bad_empty_body "" 400 "'malformed JSON' in d['error']"
post bad_not_object "[1, 2]" 400 "'must be a JSON object' in d['error']"
post bad_context_type "{\"context\": 5, \"question\": \"q\"}" 400 "\"'context' must be a string, got an integer\" in d['error']"
post bad_question_type "{\"context\": \"a b\", \"question\": [\"q\"]}" 400 "\"'question' must be a string, got an array\" in d['error']"
post bad_docs_type "{\"documents\": \"a b\", \"question\": \"q\"}" 400 "\"'documents' must be a list\" in d['error']"
post bad_doc_item "{\"documents\": [\"a b\", null], \"question\": \"q\"}" 400 "\"'documents'[1] must be a string, got null\" in d['error']"
post bad_ratio_type "{\"context\": \"a b\", \"question\": \"q\", \"ratio\": \"8x\"}" 400 "\"'ratio' must be a number\" in d['error']"
post bad_target_type "{\"context\": \"a b\", \"question\": \"q\", \"target_tokens\": 2.5}" 400 "\"'target_tokens' must be an integer, got a real number\" in d['error']"
post bad_encoder_type "{\"context\": \"a b\", \"question\": \"q\", \"encoder\": 1}" 400 "\"'encoder' must be a string\" in d['error']"
post bad_missing_context "{\"question\": \"q\"}" 400 "\"missing field 'context'\" in d['error']"
post bad_missing_question "{\"context\": \"a b\"}" 400 "\"missing field 'question'\" in d['error']"
post bad_both_inputs "{\"context\": \"a b\", \"documents\": [\"c\"], \"question\": \"q\"}" 400 "'not both' in d['error']"
post bad_both_budgets "{\"context\": \"a b\", \"question\": \"q\", \"ratio\": 2, \"target_tokens\": 1}" 400 "'not both' in d['error']"
post bad_unknown_field "{\"context\": \"a b\", \"question\": \"q\", \"ratoi\": 2}" 400 "\"unknown field 'ratoi'\" in d['error']"
# every text-mode knob by its name, as compress --set and Python take them
post compress_knobs "{\"context\": \"$CTX\", \"question\": \"kappa\", \"target_tokens\": 3, \"lead_weight\": 0, \"summary\": \"off\", \"coarse\": false, \"min_unit_words\": 2}" 200 \
  "d['compressed_tokens'] == 3"
post bad_knob_value "{\"context\": \"a b\", \"question\": \"q\", \"temperature\": -1}" 422 "'temperature: -1 must be > 0' in d['error']"
post bad_knob_type "{\"context\": \"a b\", \"question\": \"q\", \"beta\": \"high\"}" 400 "\"'beta' must be a number\" in d['error']"
post bad_duplicate_key "{\"context\": \"a b\", \"context\": \"c\", \"question\": \"q\"}" 400 "'duplicate' in d['error']"
post bad_nul "{\"context\": \"a\\u0000b\", \"question\": \"q\"}" 400 "'malformed JSON' in d['error']"
post bad_surrogate "{\"context\": \"a \\ud800 b\", \"question\": \"q\"}" 400 "'malformed JSON' in d['error']"
post bad_ratio_small "{\"context\": \"a b\", \"question\": \"q\", \"ratio\": 0.5}" 422 "\"'ratio' must be a finite number >= 1, got 0.5\" in d['error']"
post bad_ratio_zero "{\"context\": \"a b\", \"question\": \"q\", \"ratio\": 0}" 422 "\"'ratio'\" in d['error']"
post bad_target_zero "{\"context\": \"a b\", \"question\": \"q\", \"target_tokens\": 0}" 422 "\"'target_tokens' must be > 0, got 0\" in d['error']"
post bad_target_negative "{\"context\": \"a b\", \"question\": \"q\", \"target_tokens\": -4}" 422 "'got -4' in d['error']"
post bad_empty_context "{\"context\": \"  \\n \", \"question\": \"q\"}" 422 "\"'context' is empty\" in d['error']"
post bad_empty_question "{\"context\": \"a b\", \"question\": \"\"}" 422 "\"'question' is empty\" in d['error']"
post bad_unicode_space_question "{\"context\": \"a b\", \"question\": \"\\u3000\\u00a0\"}" 422 "\"'question' is empty\" in d['error']"
post unicode_spaces "{\"context\": \"a\\u3000b\\u2003c d\", \"question\": \"b\", \"ratio\": 1}" 200 "d['original_tokens'] == 4"
post bad_empty_docs "{\"documents\": [], \"question\": \"q\"}" 422 "'empty list' in d['error']"
post bad_encoder_other "{\"context\": \"a b\", \"question\": \"q\", \"encoder\": \"vectors:x.txt\"}" 422 "\"'vectors:x.txt'\" in d['error'] and \"'lexical'\" in d['error']"
printf '{"context": "a \377\376 b", "question": "q"}' >"$TMP/bad_utf8.req"
http bad_utf8 POST /v1/compress "$TMP/bad_utf8.req"
expect bad_utf8 400 "'unable to decode byte 0xff' in d['error'] and 'column' in d['error']"
"$PY" -c 'import json; print(json.dumps({"context": " ".join(["w"] * 6000), "question": "q"}))' >"$TMP/many.req"
http bad_max_tokens POST /v1/compress "$TMP/many.req"
expect bad_max_tokens 413 "'6000 words' in d['error'] and '--max-tokens 5000' in d['error']"

http bad_method_compress GET /v1/compress
expect bad_method_compress 405 "'GET not allowed on /v1/compress' in d['error'] and h.get('allow') == 'POST'"
printf '{}' >"$TMP/empty.json"
http bad_method_health POST /health "$TMP/empty.json"
expect bad_method_health 405 "'not allowed on /health' in d['error'] and 'GET' in h.get('allow', '')"
http bad_method_delete DELETE /v1/compress
expect bad_method_delete 405 "'DELETE not allowed' in d['error']"
http bad_path GET /v2/nothing
expect bad_path 404 "'no such endpoint: GET /v2/nothing' in d['error']"
http bad_path_post POST /v1/compress/extra "$TMP/empty.json"
expect bad_path_post 404 "'no such endpoint' in d['error']"
printf '{"context": "a b", "question": "q"}' >"$TMP/ok.req"
CT='multipart/form-data; boundary=x' http bad_content_type POST /v1/compress "$TMP/ok.req"
expect bad_content_type 415 "\"unsupported Content-Type 'multipart/form-data; boundary=x'\" in d['error']"
CT='application/x-www-form-urlencoded' http ok_content_type_form POST /v1/compress "$TMP/ok.req"
expect ok_content_type_form 200 "d['original_tokens'] == 2"
CT='application/json; charset=utf-8' http ok_content_type_charset POST /v1/compress "$TMP/ok.req"
expect ok_content_type_charset 200 "d['original_tokens'] == 2"
CT='application/vnd.api+json' http ok_content_type_plus_json POST /v1/compress "$TMP/ok.req"
expect ok_content_type_plus_json 200 "d['original_tokens'] == 2"

http answer_no_model POST /v1/answer "$TMP/ok.req"
expect answer_no_model 503 "d['error'] == 'no model loaded: start comi serve with --model'"

# Oversized bodies: announced (Content-Length) and streamed (chunked).
head -c 9000000 /dev/zero | tr '\0' 'a' >"$TMP/big.req"
http big_body POST /v1/compress "$TMP/big.req"
expect big_body 413 "'over this server' in d['error'] and '8388608' in d['error']"
http big_body_chunked POST /v1/compress "$TMP/big.req" -H 'Transfer-Encoding: chunked'
expect big_body_chunked 413 "'--max-body' in d['error']"

# Half a request, then the client goes away: the server must not care.
printf 'POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"con' >"$TMP/half.req"
curl -s --max-time 2 "telnet://127.0.0.1:$PORT" <"$TMP/half.req" >/dev/null 2>&1
printf 'GARBAGE\r\n\r\n' >"$TMP/garbage.req"
curl -s --max-time 2 "telnet://127.0.0.1:$PORT" <"$TMP/garbage.req" >/dev/null 2>&1

# Mutated requests (random byte edits of valid bodies): each must get a JSON
# answer, 200 or a 4xx with an "error", and the server must stay up.
if "$PY" - "$PORT" <<'EOF'
import json, random, sys, urllib.request, urllib.error
port = int(sys.argv[1])
rng = random.Random(1234)
seeds = [b'{"context": "alpha beta gamma delta", "question": "which?", "ratio": 2}',
         b'{"documents": ["one two", "three four"], "question": "q", "target_tokens": 1}',
         '{"context": "caf\\u00e9 \\u65e5\\u672c", "question": "\\u00e9?"}'.encode()]
bad = 0
for i in range(300):
    b = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.randint(0, 2), rng.randrange(len(b) + 1)
        if op == 0 and pos < len(b): del b[pos]
        elif op == 1: b[pos:pos] = bytes([rng.randrange(256)])
        elif pos < len(b): b[pos] = rng.choice(b'{}[]",:0-.e\\u \xff\x00')
    req = urllib.request.Request("http://127.0.0.1:%d/v1/compress" % port, data=bytes(b),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read()
    try:
        d = json.loads(body)
        ok = (code == 200 and "compressed" in d) or (code in (400, 413, 422) and d.get("error"))
    except ValueError:
        ok = False
    if not ok:
        bad += 1
        if bad < 4: print("mutant %d: %r -> %d %r" % (i, bytes(b)[:80], code, body[:120]))
sys.exit(1 if bad else 0)
EOF
then pass mutated_requests; else fail mutated_requests "see the lines above"; fi

# --- 40 concurrent requests ----------------------------------------------
printf '{"context": "%s", "question": "which letter is kappa?", "ratio": 2}' "$CTX" >"$TMP/conc.req"
pids=""
i=1
while [ $i -le 40 ]; do
    curl -s --max-time 30 -H 'Content-Type: application/json' --data-binary "@$TMP/conc.req" \
        -o "$TMP/conc$i.body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/compress" \
        >"$TMP/conc$i.code" 2>/dev/null &
    pids="$pids $!"
    i=$((i + 1))
done
wait $pids
ok=0
i=1
while [ $i -le 40 ]; do
    if [ "$(cat "$TMP/conc$i.code")" = 200 ] && cmp -s "$TMP/conc$i.body" "$TMP/compress_ratio.body" 2>/dev/null; then
        ok=$((ok + 1))
    elif [ "$(cat "$TMP/conc$i.code")" = 200 ] && "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a["compressed"]==b["compressed"] and a["compressed_tokens"]==b["compressed_tokens"] else 1)' "$TMP/conc$i.body" "$TMP/compress_ratio.body"; then
        ok=$((ok + 1))
    fi
    i=$((i + 1))
done
[ $ok -eq 40 ] && pass concurrent_40 || fail concurrent_40 "$ok of 40 answered 200 with the single-request result"

# --- after the abuse -----------------------------------------------------
http health_after GET /health
expect health_after 200 "d['status'] == 'ok' and d['in_flight'] == 1 and d['queue_depth'] == 0"
kill -0 "$MAIN_PID" 2>/dev/null && pass server_alive || fail server_alive "the server died"

curl -s --max-time 10 -o "$TMP/metrics.txt" "http://127.0.0.1:$PORT/metrics"
if "$PY" - "$TMP/metrics.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
vals = {}
for line in text.splitlines():
    if line.startswith("#") or not line.strip(): continue
    m = re.match(r'^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$', line)
    if not m: print("bad line: %r" % line); sys.exit(1)
    vals[m.group(1)] = float(m.group(2))
ok200 = vals.get('comi_http_requests_total{endpoint="/v1/compress",code="200"}', 0)
checks = [
    ok200 >= 48,
    vals.get('comi_http_requests_total{endpoint="/v1/compress",code="400"}', 0) >= 15,
    vals.get('comi_http_requests_total{endpoint="/v1/compress",code="500"}', 0) == 0,
    vals.get('comi_http_requests_total{endpoint="/v1/compress",code="413"}', 0) >= 3,
    vals.get('comi_http_requests_total{endpoint="/v1/answer",code="503"}', 0) == 1,
    vals.get('comi_http_requests_total{endpoint="other",code="404"}', 0) >= 2,
    vals.get('comi_request_duration_seconds_bucket{endpoint="/v1/compress",le="+Inf"}', -1)
        == vals.get('comi_request_duration_seconds_count{endpoint="/v1/compress"}', -2),
    vals.get('comi_tokens_in_total', 0) >= 16 * 40,
    0 < vals.get('comi_tokens_out_total', 0) < vals.get('comi_tokens_in_total', 0),
    vals.get('comi_queue_depth', -1) == 0,
    vals.get('comi_workers{state="total"}', 0) == 2,
    '# TYPE comi_request_duration_seconds histogram' in text,
]
if not all(checks): print("metrics checks %s failed" % [i for i, c in enumerate(checks) if not c]); sys.exit(1)
EOF
then pass metrics; else fail metrics "see the line above"; fi

# --- queue full, timeouts, graceful shutdown (--delay-ms makes them visible)
kill -TERM "$MAIN_PID"
i=0; while kill -0 "$MAIN_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait "$MAIN_PID" 2>/dev/null
mrc=$?
if kill -0 "$MAIN_PID" 2>/dev/null; then fail sigterm_idle "still running 5 s after SIGTERM"
elif [ "$mrc" -ne 0 ]; then fail sigterm_idle "exit status $mrc: $(tail -c 300 "$TMP/main.err")"
elif grep -q "stopped" "$TMP/main.err"; then pass sigterm_idle
else fail sigterm_idle "no 'stopped' line: $(head -c 300 "$TMP/main.err")"; fi

# The states are awaited on /health rather than guessed from sleeps, so a
# loaded machine (slow process starts) cannot reorder them: q1 runs (the one
# worker sleeps --delay-ms), q2 waits in the queue of 1, then q3 must get 503.
start_server slow --threads 1 --queue 1 --delay-ms 3000 --timeout-ms 20000 || { fail slow_start "no server"; exit 1; }
SLOW_PID=$SPID
# wait_health PYEXPR — polls /health (d = its JSON) until PYEXPR holds, 15 s at most
wait_health() {
    "$PY" - "$PORT" "$1" <<'EOF2'
import json, sys, time, urllib.request
port, cond = int(sys.argv[1]), sys.argv[2]
end = time.time() + 15
while True:
    try:
        d = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5).read())
        if eval(cond):
            sys.exit(0)
    except OSError:
        pass
    if time.time() > end:
        print("waited 15 s for %s; last health: %s" % (cond, d if "d" in dir() else None))
        sys.exit(1)
    time.sleep(0.02)
EOF2
}
qpost() {
    curl -s --max-time 30 -H 'Content-Type: application/json' --data-binary "@$TMP/ok.req" \
        -D "$TMP/q$1.hdr" -o "$TMP/q$1.body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/compress" \
        >"$TMP/q$1.code" 2>/dev/null
}
qpost 1 &
qp1=$!
# q1 running: it and this /health in flight, nothing queued
states_ok=1
wait_health "d['in_flight'] == 2 and d['queue_depth'] == 0" || states_ok=0
qpost 2 &
qp2=$!
wait_health "d['in_flight'] == 3 and d['queue_depth'] == 1" || states_ok=0
qpost 3
codes="$(cat "$TMP/q3.code")"
if [ $states_ok -eq 1 ] && [ "$codes" = 503 ] && grep -qi '^retry-after: 1' "$TMP/q3.hdr" && grep -q 'busy' "$TMP/q3.body"; then
    pass queue_full_503
else fail queue_full_503 "states reached: $states_ok, q3 code $codes (want 503 + Retry-After): $(head -c 200 "$TMP/q3.body")"; fi

# SIGTERM with q1 running and q2 queued: both still get their answers, then exit 0.
kill -TERM "$SLOW_PID"
wait $qp1 $qp2
i=0; while kill -0 "$SLOW_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
wait "$SLOW_PID" 2>/dev/null
src=$?
if [ "$(cat "$TMP/q1.code") $(cat "$TMP/q2.code")" = "200 200" ] && grep -q '"original_tokens":2' "$TMP/q1.body" &&
    grep -q '"original_tokens":2' "$TMP/q2.body" && [ "$src" -eq 0 ] &&
    grep -qE "finishing ([2-9]|[1-9][0-9]+) in-flight requests" "$TMP/slow.err"; then
    pass sigterm_finishes_in_flight
else fail sigterm_finishes_in_flight "codes $(cat "$TMP/q1.code") $(cat "$TMP/q2.code"), exit $src, $(grep finishing "$TMP/slow.err"), body $(head -c 200 "$TMP/q2.body")"; fi
if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null; then
    fail sigterm_closed "still answering after shutdown"
else pass sigterm_closed; fi

# --- --tokenizer: budgets in SmolLM2's tokens (FAIL when it cannot be had) --
SMOL=${COMI_SMOLLM2:-$(sh scripts/fetch_models.sh --quiet 2>/dev/null)}
if [ -n "$SMOL" ] && [ -f "$SMOL" ]; then
    start_server tok --threads 1 --tokenizer "$SMOL" || { fail tok_start "no server"; exit 1; }
    TOK_PID=$SPID
    http tok_health GET /health
    expect tok_health 200 "d['tokenizer'] == '$SMOL'"
    EX=examples/panama-canal.txt
    TOTAL=$("$COMI" tokenize --model "$SMOL" --no-bos --file "$EX" | wc -w)
    "$PY" -c 'import json,sys; print(json.dumps({"context": open(sys.argv[1]).read(), "question": "Who took over as chief engineer?", "ratio": 4, "unit": "sentence"}))' "$EX" >"$TMP/tok.req"
    http tok POST /v1/compress "$TMP/tok.req"
    "$PY" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["compressed"])' "$TMP/tok.body" >"$TMP/tok.txt" 2>/dev/null
    GOT=$("$COMI" tokenize --model "$SMOL" --no-bos --file "$TMP/tok.txt" | wc -w)
    expect tok 200 "d['tokenizer'] == '$SMOL' and d['original_tokens'] == $TOTAL and d['compressed_tokens'] == $GOT and 0.75 * ($TOTAL // 4) <= $GOT <= $TOTAL // 4"
    # the same text as the CLI with --tokenizer
    "$COMI" compress --context-file "$EX" --question "Who took over as chief engineer?" --ratio 4 --unit sentence --tokenizer "$SMOL" >"$TMP/tok_cli.out" 2>&1
    if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=open(sys.argv[2], encoding="utf-8").read(); sys.exit(0 if d["compressed"] + "\n" == c else 1)' \
        "$TMP/tok.body" "$TMP/tok_cli.out"; then pass tok_same_as_cli
    else fail tok_same_as_cli "cli: $(head -c 200 "$TMP/tok_cli.out")"; fi
    "$PY" -c 'import json,sys; print(json.dumps({"context": open(sys.argv[1]).read(), "question": "Who took over as chief engineer?", "target_tokens": 40, "tokenizer": "words"}))' "$EX" >"$TMP/tokw.req"
    http tok_words POST /v1/compress "$TMP/tokw.req"
    expect tok_words 200 "d['tokenizer'] == 'words' and d['compressed_tokens'] == 40 and len(d['compressed'].split()) == 40"
    printf '%s' '{"context": "a b c", "question": "b", "tokenizer": "other.gguf"}' >"$TMP/tokb.req"
    http tok_other POST /v1/compress "$TMP/tokb.req"
    expect tok_other 422 "\"but this server loaded '$SMOL'\" in d['error']"
    kill -TERM "$TOK_PID" 2>/dev/null
else
    fail tok_server "SmolLM2 cannot be had: scripts/fetch_models.sh failed and COMI_SMOLLM2 is not set"
fi
expect_fail serve_bad_tokenizer "--tokenizer '/nonexistent/t.gguf'" "$COMI" serve --port 0 --tokenizer /nonexistent/t.gguf

# --- /v1/answer with a model (the tiny random-weight golden model) -------
MODEL=$GOLDEN/forward/models/tiny-llama-spm.gguf
if [ -f "$MODEL" ]; then
    start_server model --threads 2 --model "$MODEL" --encoder "$MODEL" || { fail model_start "no server"; exit 1; }
    MODEL_PID=$SPID
    http model_health GET /health
    expect model_health 200 "'tiny-llama-spm' in d['model'] and d['status'] == 'ok' and d['encoder'] == '$MODEL' and d['kv_type'] == 'f32'"
    # text mode with the transformer encoder: the same text as the CLI
    ENC_CTX="The Eiffel Tower is in Paris. It was finished in 1889. Bananas are yellow and rich in potassium."
    post compress_model_encoder "{\"context\": \"$ENC_CTX\", \"question\": \"When was the tower finished?\", \"ratio\": 2}" 200 \
        "d['encoder'] == '$MODEL' and d['original_tokens'] == 18 and 1 <= d['compressed_tokens'] <= 9"
    "$COMI" compress --encoder "$MODEL" --question "When was the tower finished?" --context "$ENC_CTX" --ratio 2 >"$TMP/cli_enc.out" 2>"$TMP/cli_enc.err"
    if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=open(sys.argv[2], encoding="utf-8").read(); sys.exit(0 if d["compressed"] + "\n" == c else 1)' \
        "$TMP/compress_model_encoder.body" "$TMP/cli_enc.out"; then pass compress_model_encoder_same_as_cli
    else fail compress_model_encoder_same_as_cli "server $(head -c 200 "$TMP/compress_model_encoder.body"); cli $(head -c 200 "$TMP/cli_enc.out") $(head -c 200 "$TMP/cli_enc.err")"; fi
    post compress_lexical_on_model_server "{\"context\": \"$ENC_CTX\", \"question\": \"When?\", \"ratio\": 2, \"encoder\": \"lexical\"}" 200 "d['encoder'] == 'lexical'"
    printf '%s' '{"context": "The Eiffel Tower is in Paris. It was finished in 1889.", "question": "When was the tower finished?"}' >"$TMP/ans.req"
    http answer POST /v1/answer "$TMP/ans.req"
    expect answer 200 "isinstance(d['answer'], str) and 1 <= len(d['ids']) <= 20 and all(isinstance(i, int) and 0 <= i < 32000 for i in d['ids']) and d['context_tokens'] > 5 and d['question_tokens'] > 0 and d['memory_vectors'] >= 1 and d['encoder_layers'] == 3 and d['merge_size'] == 16 and d['ms'] > 0"
    http answer_again POST /v1/answer "$TMP/ans.req"
    if cmp -s "$TMP/answer.body" "$TMP/answer_again.body" || "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a["ids"]==b["ids"] and a["answer"]==b["answer"] else 1)' "$TMP/answer.body" "$TMP/answer_again.body"; then
        pass answer_deterministic
    else fail answer_deterministic "two identical requests gave different answers"; fi
    if "$COMI" answer --help >/dev/null 2>&1; then
        "$COMI" answer --model "$MODEL" --context "The Eiffel Tower is in Paris. It was finished in 1889." \
            --question "When was the tower finished?" --print-ids >"$TMP/cli_answer.out" 2>"$TMP/cli_answer.err"
        if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); lines=open(sys.argv[2]).read().split("\n"); sys.exit(0 if " ".join(map(str, d["ids"])) in lines else 1)' "$TMP/answer.body" "$TMP/cli_answer.out"; then
            pass answer_same_ids_as_cli
        else fail answer_same_ids_as_cli "server $(head -c 200 "$TMP/answer.body"); cli $(head -c 200 "$TMP/cli_answer.out") $(head -c 200 "$TMP/cli_answer.err")"; fi
    else
        skip answer_same_ids_as_cli "comi answer is not built yet"
    fi
    post_answer() {
        printf '%s' "$2" >"$TMP/$1.req"
        http "$1" POST /v1/answer "$TMP/$1.req"
        expect "$1" "$3" "$4"
    }
    post_answer answer_documents '{"documents": ["The Eiffel Tower is in Paris.", "It was finished in 1889."], "question": "When?", "max_new_tokens": 4, "merge_size": 2}' 200 \
        "1 <= len(d['ids']) <= 4 and d['merge_size'] == 2 and d['memory_vectors'] >= 2"
    post_answer answer_empty_context '{"context": "", "question": "What is it?", "max_new_tokens": 3}' 200 \
        "d['context_tokens'] == 0 and d['memory_vectors'] == 0 and len(d['ids']) <= 3"
    post_answer answer_bad_merge_size '{"context": "a b", "question": "q", "merge_size": 0}' 422 "\"'merge_size' must be in [1,\" in d['error']"
    post_answer answer_bad_max_new '{"context": "a b", "question": "q", "max_new_tokens": 3000}' 422 "\"'max_new_tokens' must be in [1, 256], got 3000\" in d['error']"
    post_answer answer_bad_layers '{"context": "a b", "question": "q", "encoder_layers": 9}' 422 "\"'encoder_layers' must be in [1, 3]\" in d['error']"
    post_answer answer_bad_type '{"context": "a b", "question": "q", "merge_size": "16"}' 400 "\"'merge_size' must be an integer, got a string\" in d['error']"
    post_answer answer_unknown_field '{"context": "a b", "question": "q", "ratio": 4}' 400 "\"unknown field 'ratio'\" in d['error']"
    post_answer answer_empty_question '{"context": "a b", "question": " "}' 422 "\"'question' is empty\" in d['error']"
    post_answer answer_bad_json '{"context": "a b", "question": }' 400 "'line 1, column' in d['error']"
    pids=""
    for n in 1 2 3 4 5 6 7 8; do
        curl -s --max-time 60 -H 'Content-Type: application/json' --data-binary "@$TMP/ans.req" \
            -o "$TMP/ac$n.body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/answer" >"$TMP/ac$n.code" 2>/dev/null &
        pids="$pids $!"
    done
    wait $pids
    ok=0
    for n in 1 2 3 4 5 6 7 8; do
        if [ "$(cat "$TMP/ac$n.code")" = 200 ] && "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a["ids"]==b["ids"] else 1)' "$TMP/ac$n.body" "$TMP/answer.body"; then
            ok=$((ok + 1))
        fi
    done
    [ $ok -eq 8 ] && pass answer_concurrent_8 || fail answer_concurrent_8 "$ok of 8 gave the single-request ids"
    kill -TERM "$MODEL_PID"
    wait "$MODEL_PID" 2>/dev/null
    arc=$?
    [ $arc -eq 0 ] && pass model_server_exit_0 || fail model_server_exit_0 "exit status $arc"
    # --kv-type f16: every worker's context keeps half caches, for the model
    # encoder of /v1/compress and for /v1/answer: the CLI's --kv-type f16 text and ids
    start_server kv16 --threads 1 --model "$MODEL" --encoder "$MODEL" --kv-type f16 || { fail kv16_start "no server"; exit 1; }
    KV_PID=$SPID
    http kv16_health GET /health
    expect kv16_health 200 "d['kv_type'] == 'f16' and d['encoder'] == '$MODEL'"
    post kv16_compress "{\"context\": \"$ENC_CTX\", \"question\": \"When was the tower finished?\", \"ratio\": 2}" 200 "d['encoder'] == '$MODEL'"
    "$COMI" compress --encoder "$MODEL" --kv-type f16 --question "When was the tower finished?" --context "$ENC_CTX" --ratio 2 >"$TMP/cli_kv16.out" 2>"$TMP/cli_kv16.err"
    if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=open(sys.argv[2], encoding="utf-8").read(); sys.exit(0 if d["compressed"] + "\n" == c else 1)' \
        "$TMP/kv16_compress.body" "$TMP/cli_kv16.out"; then pass kv16_compress_same_as_cli
    else fail kv16_compress_same_as_cli "server $(head -c 200 "$TMP/kv16_compress.body"); cli $(head -c 200 "$TMP/cli_kv16.out") $(head -c 200 "$TMP/cli_kv16.err")"; fi
    http kv16_answer POST /v1/answer "$TMP/ans.req"
    "$COMI" answer --model "$MODEL" --kv-type f16 --context "The Eiffel Tower is in Paris. It was finished in 1889." \
        --question "When was the tower finished?" --print-ids >"$TMP/cli_kv16a.out" 2>"$TMP/cli_kv16a.err"
    if [ "$(cat "$TMP/kv16_answer.code")" = 200 ] && "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); lines=open(sys.argv[2]).read().split("\n"); sys.exit(0 if " ".join(map(str, d["ids"])) in lines else 1)' "$TMP/kv16_answer.body" "$TMP/cli_kv16a.out"; then
        pass kv16_answer_same_ids_as_cli
    else fail kv16_answer_same_ids_as_cli "server $(head -c 200 "$TMP/kv16_answer.body"); cli $(head -c 200 "$TMP/cli_kv16a.out") $(head -c 200 "$TMP/cli_kv16a.err")"; fi
    kill -TERM "$KV_PID"
    wait "$KV_PID" 2>/dev/null
else
    skip answer "no golden model $MODEL"
fi

# --- --max-context-tokens / --max-memory: over a limit -> 413 -------------
LIM_MODEL=""
[ -f "$MODEL" ] && LIM_MODEL="--model $MODEL"
# shellcheck disable=SC2086
start_server limits --threads 1 --max-context-tokens 10 --max-memory 1M $LIM_MODEL || { fail limits_start "no server"; exit 1; }
LIMITS_PID=$SPID
http limits_health GET /health
expect limits_health 200 "d['limits']['max_context_tokens'] == 10 and d['limits']['max_memory'] == 1048576"
post limits_tokens_over '{"context": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11", "question": "w3"}' 413 \
    "'has 11 tokens' in d['error'] and 'limit of 10' in d['error'] and '--max-context-tokens' in d['error']"
post limits_tokens_at '{"context": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", "question": "w3", "ratio": 2}' 200 \
    "d['original_tokens'] == 10"
post limits_documents_over '{"documents": ["w1 w2 w3 w4 w5 w6", "w7 w8 w9 w10 w11"], "question": "w3"}' 413 \
    "'has 11 tokens' in d['error']"
if [ -n "$LIM_MODEL" ]; then
    printf '%s' '{"context": "The Eiffel Tower is in Paris. It was finished in 1889.", "question": "When?"}' >"$TMP/lim_ans.req"
    http limits_answer_over POST /v1/answer "$TMP/lim_ans.req"
    expect limits_answer_over 413 "'answer: context has' in d['error'] and 'limit of 10' in d['error']"
else
    skip limits_answer_over "no golden model $MODEL"
fi
kill -TERM "$LIMITS_PID"
wait "$LIMITS_PID" 2>/dev/null
start_server limits_mem --threads 1 --max-memory 1K || { fail limits_mem_start "no server"; exit 1; }
LIMITS_MEM_PID=$SPID
post limits_memory_over '{"context": "w1 w2 w3 w4", "question": "w3"}' 413 \
    "'needs' in d['error'] and 'limit of 1024 bytes' in d['error'] and '--max-memory' in d['error']"
kill -TERM "$LIMITS_MEM_PID"
wait "$LIMITS_MEM_PID" 2>/dev/null
expect_fail serve_bad_max_memory "--max-memory: '12Q' has an unknown unit" "$COMI" serve --port 0 --max-memory 12Q
expect_fail serve_bad_max_context_tokens "--max-context-tokens: -1 is out of range" "$COMI" serve --port 0 --max-context-tokens -1

start_server late --threads 1 --delay-ms 800 --timeout-ms 200 || { fail late_start "no server"; exit 1; }
LATE_PID=$SPID
http timeout POST /v1/compress "$TMP/ok.req"
expect timeout 504 "'timed out after' in d['error'] and '--timeout-ms 200' in d['error']"
http health_after_timeout GET /health
expect health_after_timeout 200 "d['status'] == 'ok'"
kill -INT "$LATE_PID"
wait "$LATE_PID" 2>/dev/null
lrc=$?
[ $lrc -eq 0 ] && pass sigint_exit_0 || fail sigint_exit_0 "exit status $lrc"
if grep -l -E "Sanitizer|runtime error" "$TMP"/*.err >/dev/null 2>&1; then
    fail serve_sanitizers "$(grep -h -E -m 3 "Sanitizer|runtime error" "$TMP"/*.err | head -c 400)"
else pass serve_sanitizers; fi
exit 0
