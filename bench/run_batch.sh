#!/bin/sh
# run_batch.sh - `inferd batch` next to `inferd run` and the daemon under load, in one run, on
# the same work: the real spam classifier (tests/data/spam-bert-tiny.tar.xz,
# text-classification) over the SpamAssassin dev emails (tests/data/spam-dev.jsonl.xz) repeated
# REPEAT times, as {"inputs": text, "parameters": {"truncation": true, "max_length": 256}}
# lines, with the same WORKERS x THREADS everywhere:
#   1. inferd run --batch 16 (the engine alone in one process, no HTTP): lines/s of the run
#      minus its load time;
#   2. inferd batch (the daemon in-process, default concurrency): lines/s from its summary
#      (the job, without the model's load), and the whole command's wall time;
#   3. inferd serve (max_batch_size 32) driven by bench-load with CONNECTIONS keep-alive
#      connections for DURATION seconds after WARMUP: requests/s.
# Checks that inferd batch answered every line with the daemon's labels (its output against
# `inferd run`'s: same top label, scores within 1e-6). Prints one JSON line per measurement
# (also in $BUILD/bench-results/batch-<time>.jsonl) and a table. Not part of `make test`.
#
# usage: bench/run_batch.sh [BUILD_DIR (default: build)]   (after `make build`)
# environment: REPEAT (5), WORKERS (1), THREADS (2), CONNECTIONS (64), DURATION (20),
#              WARMUP (3)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
REPEAT=${REPEAT:-5}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
PYTHON=/usr/bin/python3
INFERD=$BUILD/inferd
LOAD=$BUILD/bench/bench-load
for exe in "$INFERD" "$LOAD"; do
    [ -x "$exe" ] || { echo "run_batch: $exe missing (build first: make build)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferd-batch.XXXXXX")
mkdir -p "$BUILD/bench-results"
RESULTS=$BUILD/bench-results/batch-$(date +%Y%m%d-%H%M%S).jsonl
: > "$RESULTS"
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

tar -xJf "$ROOT/tests/data/spam-bert-tiny.tar.xz" -C "$WORK"
MODEL=$WORK/spam-bert-tiny
BODIES=$WORK/bodies.jsonl
xz -dc "$ROOT/tests/data/spam-dev.jsonl.xz" | "$PYTHON" -c '
import json, sys
lines = [l for l in sys.stdin if l.strip()]
for _ in range(int(sys.argv[1])):
    for line in lines:
        text = json.loads(line)["text"]
        print(json.dumps({"inputs": text, "parameters": {"truncation": True, "max_length": 256}}))
' "$REPEAT" > "$BODIES"
N=$(wc -l < "$BODIES")
echo "run_batch: $N lines, WORKERS=$WORKERS THREADS=$THREADS; load average before:" \
    "$(cut -d' ' -f1-3 /proc/loadavg) (other processes on these cores disturb the numbers)"
now() { "$PYTHON" -c 'import time; print(time.monotonic())'; }
rate() { "$PYTHON" -c 'import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 1))' "$@"; }

# ---- 1. inferd run ----
RUN="$INFERD run --model $MODEL --task text-classification --threads $THREADS --batch 16"
t0=$(now); $RUN < /dev/null > /dev/null; t1=$(now)
$RUN < "$BODIES" > "$WORK/run.jsonl"; t2=$(now)
RUN_S=$("$PYTHON" -c "print(($t2 - $t1) - ($t1 - $t0))")
echo "{\"what\": \"inferd run --batch 16\", \"lines\": $N, \"seconds\": $RUN_S," \
    "\"lines_per_s\": $(rate "$N" "$RUN_S")}" | tee -a "$RESULTS"

# ---- 2. inferd batch ----
t0=$(now)
"$INFERD" batch --model "$MODEL" --task text-classification --workers "$WORKERS" \
    --threads "$THREADS" --input "$BODIES" --output "$WORK/batch.jsonl" --progress off \
    2> "$WORK/batch.log"
t1=$(now)
SUMMARY=$(grep 'inferd batch: done:' "$WORK/batch.log")
JOB_RATE=$(echo "$SUMMARY" | sed -n 's/.* \([0-9.]*\) lines\/s.*/\1/p')
echo "{\"what\": \"inferd batch\", \"lines\": $N, \"job_lines_per_s\": $JOB_RATE," \
    "\"wall_seconds\": $("$PYTHON" -c "print(round($t1 - $t0, 2))")," \
    "\"wall_lines_per_s\": $(rate "$N" "$("$PYTHON" -c "print($t1 - $t0)")")}" | tee -a "$RESULTS"
"$PYTHON" - "$WORK/run.jsonl" "$WORK/batch.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b), "run_batch: %d lines from inferd run, %d from inferd batch" % (len(a), len(b))
for i, (x, y) in enumerate(zip(a, b)):
    assert x[0]["label"] == y[0]["label"] and abs(x[0]["score"] - y[0]["score"]) < 1e-6, \
        "run_batch: line %d differs: %s / %s" % (i + 1, x, y)
EOF

# ---- 3. the daemon under load ----
cat > "$WORK/serve.yaml" <<EOF
server:
  host: 127.0.0.1
  port: 0
models:
  - name: spam
    path: $MODEL
    task: text-classification
    workers: $WORKERS
    threads: $THREADS
    batching:
      max_batch_size: 32
      max_queue_delay_us: 2000
EOF
"$INFERD" serve --config "$WORK/serve.yaml" 2> "$WORK/serve.log" &
SERVER_PID=$!
URL=
for _ in $(seq 600); do
    URL=$(sed -n 's/^.*inferd: listening on \(http:[^ ]*\).*/\1/p' "$WORK/serve.log" | head -n 1)
    [ -n "$URL" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ready")" = 200 ] && break
    sleep 0.1
done
"$LOAD" --url "$URL/models/spam" --bodies "$BODIES" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" > "$WORK/load.json"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=
"$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"what": "inferd serve + bench-load", "connections": r["connections"],
                  "requests": r["requests"], "errors": r["errors"], "lines_per_s": r["rps"],
                  "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}))' "$WORK/load.json" |
    tee -a "$RESULTS"

"$PYTHON" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n%-34s %12s" % ("", "lines/s"))
for r in rows:
    v = r.get("lines_per_s", r.get("job_lines_per_s"))
    print("%-34s %12.1f" % (r["what"], v))
    if "wall_lines_per_s" in r:
        print("%-34s %12.1f" % ("  (with the model's load)", r["wall_lines_per_s"]))
EOF
