#!/bin/sh
# run_ab.sh - two builds of inferd side by side (a refactor's before and after), measured in
# the same run on the same machine: what a change that should not move the numbers did to them.
#
# For ROUNDS rounds, the two builds alternating (A first in odd rounds, B first in even ones):
#   encoder    `inferd bench` on a random bert-base (make-random-bert), every DTYPE x SHAPE
#   generate   `bench-generate` on a random ~124M LLaMA (make-random-decoder): prefill and
#              decode at 1 and 16 streams (the engine's forward path)
#   served     `inferd serve` driven by bench-load for DURATION seconds each:
#                spam      the spam classifier (tests/data), 16 connections: the HTTP core,
#                          the batcher and an encoder pipeline
#                complete  the random LLaMA with the llama-lm fixture's tokenizer,
#                          /v1/completions, max_tokens 32, ignore_eos, 8 connections: the
#                          dialect, the scheduler and the generator
#                t5        the t5-s2s fixture, POST /models/t5 (text2text), 8 connections
#   load       `inferd bench`'s and bench-generate's load_ms (model load and prepack)
# Every JSON line goes to BUILD_B/bench-results/ab-<time>.jsonl, tagged with the build (a, b)
# and the round; the summary prints per measurement the median over rounds for each build and
# the ratio B/A (throughput: > 1 means B is faster; load time: < 1 means B is faster).
# Not part of `make test`.
#
# usage: bench/run_ab.sh BUILD_A BUILD_B     (both built: ninja -C DIR)
# environment: ROUNDS (3), THREADS (2), SHAPES (1x16,8x128), DTYPES (fp32,bf16,int8),
#              MIN_SECONDS (3), DURATION (10), PARTS (encoder,generate,served),
#              SUMMARIZE=FILE.jsonl (summarize an earlier run only)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
summarize() {
    "$PYTHON" - "$1" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    p = r["part"]
    if p == "encoder":
        return ("encoder %s %sx%s" % (r["dtype"], r["batch"], r["seq"]), "seq_per_s", "seq/s")
    if p == "generate":
        s = "%s %s streams=%s" % (r["dtype"], r["metric"], r["streams"])
        return ("generate " + s, "tokens_per_s", "tok/s")
    if p == "served":
        return ("served %s c=%s" % (r["route"], r["connections"]), "rps", "req/s")
    return None
meas, load = {}, {}
for r in rows:
    k = key(r)
    if not k:
        continue
    meas.setdefault(k, {}).setdefault(r["build"], []).append(r[k[1]])
    if "load_ms" in r:
        lk = ("load %s" % ("bert-base " + r["dtype"] if r["part"] == "encoder"
                           else "llama-124M " + r["dtype"]), "load_ms", "ms")
        load.setdefault(lk, {}).setdefault(r["build"], []).append(r["load_ms"])
print("| measurement | A | B | B/A |")
print("| --- | ---: | ---: | ---: |")
for k, v in list(meas.items()) + list(load.items()):
    if "a" not in v or "b" not in v:
        continue
    a, b = statistics.median(v["a"]), statistics.median(v["b"])
    print("| %s (%s) | %.1f | %.1f | %.3f |" % (k[0], k[2], a, b, b / a if a else float("nan")))
EOF
}
if [ -n "${SUMMARIZE:-}" ]; then
    summarize "$SUMMARIZE"
    exit 0
fi

[ $# -eq 2 ] || { echo "usage: bench/run_ab.sh BUILD_A BUILD_B" >&2; exit 2; }
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
SHAPES=${SHAPES:-1x16,8x128}
DTYPES=${DTYPES:-fp32,bf16,int8}
MIN_SECONDS=${MIN_SECONDS:-3}
DURATION=${DURATION:-10}
PARTS=${PARTS:-encoder,generate,served}
for d in "$A" "$B"; do
    for exe in inferd bench/bench-generate bench/bench-load; do
        [ -x "$d/$exe" ] || { echo "run_ab: $d/$exe missing (ninja -C $d)" >&2; exit 1; }
    done
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferd-ab.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- models and bodies (written once per run, by build A's tools) ----
"$A/tools/make-random-bert" "$WORK/bert" >&2
"$A/bench/make-random-decoder" llama "$WORK/llama" >&2
tar -xJf "$ROOT/tests/data/models-other.tar.xz" -C "$WORK" models/llama-lm models/t5-s2s
tar -xJf "$ROOT/tests/data/spam-bert-tiny.tar.xz" -C "$WORK"
cp "$WORK/models/llama-lm/tokenizer.json" "$WORK/models/llama-lm/tokenizer_config.json" \
    "$WORK/llama/"
xz -dc "$ROOT/tests/data/spam-dev.jsonl.xz" | "$PYTHON" -c '
import json, sys
for line in sys.stdin:
    if line.strip():
        t = json.loads(line)["text"]
        print(json.dumps({"inputs": t, "parameters": {"truncation": True, "max_length": 256}}))
' > "$WORK/spam.jsonl"
"$PYTHON" - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
prompts = ["The quick brown fox", "Once upon a time in a small town", "Serving models in C is",
           "A list of prime numbers: 2, 3, 5,", "def fibonacci(n):"]
with open(w + "/complete.jsonl", "w") as f:
    for p in prompts:
        f.write(json.dumps({"model": "llama", "prompt": p, "max_tokens": 32, "ignore_eos": True,
                            "temperature": 0}) + "\n")
with open(w + "/t5.jsonl", "w") as f:
    for p in prompts:
        f.write(json.dumps({"inputs": "translate English to German: " + p,
                            "parameters": {"max_new_tokens": 16}}) + "\n")
EOF
cat > "$WORK/serve.yaml" <<EOF
server:
  host: 127.0.0.1
  port: 0
  log_level: warn
models:
  - name: spam
    path: $WORK/spam-bert-tiny
    task: text-classification
    threads: $THREADS
  - name: llama
    path: $WORK/llama
    task: text-generation
    threads: $THREADS
  - name: t5
    path: $WORK/models/t5-s2s
    task: text2text-generation
    threads: $THREADS
EOF

OUT_DIR=$B/bench-results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/ab-$(date +%Y%m%d-%H%M%S).jsonl
echo "run_ab: A=$A B=$B, writing $OUT; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# tag BUILD ROUND PART [EXTRA_JSON_FIELDS]: the tool's JSON lines (stdin) into $OUT
tag() {
    sed -n "s/^{\(.*\)}\$/{\"build\":\"$1\",\"round\":$2,\"part\":\"$3\"${4:-},\1}/p" >> "$OUT"
}

encoder() { # DIR NAME ROUND
    for d in $(echo "$DTYPES" | tr ',' ' '); do
        for shape in $(echo "$SHAPES" | tr ',' ' '); do
            "$1/inferd" bench --model "$WORK/bert" --batch "${shape%x*}" --seq "${shape#*x}" \
                --threads "$THREADS" --dtype "$d" --min-seconds "$MIN_SECONDS" | tag "$2" "$3" encoder
        done
    done
}

generate() { # DIR NAME ROUND
    "$1/bench/bench-generate" --model "$WORK/llama" --threads "$THREADS" --prompts 128 \
        --context 128 --streams 1,16 --steps 32 --min-runs 3 --min-seconds "$MIN_SECONDS" |
        tag "$2" "$3" generate
}

start_server() { # DIR LOG (a new file each time: an old one would give the old port)
    "$1/inferd" serve --config "$WORK/serve.yaml" 2> "$2" &
    SERVER_PID=$!
    URL=
    i=0
    until [ -n "$URL" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ready")" = 200 ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2" >&2; exit 1; }
        [ "$i" -lt 1200 ] || { echo "run_ab: $1/inferd serve not ready after 120 s" >&2; exit 1; }
        [ -s "$2" ] && URL=$(sed -n 's/^.*listening on \(http:[^ ]*\).*/\1/p' "$2" | head -n 1)
        i=$((i + 1))
        sleep 0.1
    done
}

served() { # DIR NAME ROUND
    start_server "$1" "$WORK/serve-$2-$3.log"
    "$1/bench/bench-load" --url "$URL/models/spam" --bodies "$WORK/spam.jsonl" \
        --connections 16 --duration "$DURATION" --warmup 2 | tag "$2" "$3" served ',"route":"spam"'
    "$1/bench/bench-load" --url "$URL/v1/completions" --bodies "$WORK/complete.jsonl" \
        --connections 8 --duration "$DURATION" --warmup 2 |
        tag "$2" "$3" served ',"route":"complete"'
    "$1/bench/bench-load" --url "$URL/models/t5" --bodies "$WORK/t5.jsonl" \
        --connections 8 --duration "$DURATION" --warmup 2 | tag "$2" "$3" served ',"route":"t5"'
    kill -TERM "$SERVER_PID"
    rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    [ "$rc" -eq 0 ] || echo "run_ab: $1/inferd serve exited $rc after SIGTERM" >&2
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
    order="a b"
    [ $((r % 2)) -eq 0 ] && order="b a"
    for part in $(echo "$PARTS" | tr ',' ' '); do
        for x in $order; do
            dir=$A
            [ "$x" = b ] && dir=$B
            echo "run_ab: round $r/$ROUNDS $part $x" >&2
            "$part" "$dir" "$x" "$r"
        done
    done
    r=$((r + 1))
done
summarize "$OUT"
