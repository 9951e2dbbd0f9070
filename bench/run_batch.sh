#!/bin/sh
# run_batch.sh - `inferd batch` next to `inferd run` and the daemon under load, in one run, on
# the same work and the same WORKERS x THREADS:
#   spam: the real spam classifier (tests/data/spam-bert-tiny.tar.xz, text-classification)
#         over the SpamAssassin dev emails (tests/data/spam-dev.jsonl.xz) repeated REPEAT
#         times, as {"inputs": text, "parameters": {"truncation": true, "max_length": 256}};
#   generate (GENERATE=1): the gpt2-lm fixture (tests/data/models-other.tar.xz, tiny random
#         weights) continuing GEN_LINES prompts (the emails' first words) by GEN_TOKENS greedy
#         tokens, {"inputs": prompt, "parameters": {"max_new_tokens": GEN_TOKENS}}.
# For each: 1. inferd run (spam: --batch 16; generation runs a line at a time): lines/s of
# the run minus its load time; 2. inferd batch (the daemon in-process, default concurrency):
# lines/s from its summary (the job, without the model's load) and with the load (the
# command's wall time); 3. inferd serve driven by bench-load (CONNECTIONS keep-alive
# connections, GEN_CONNECTIONS for generation) for DURATION seconds after WARMUP: requests/s.
# Checks that inferd batch answered every line as inferd run did (spam: the same top label,
# scores within 1e-6; generation: the same text). Prints one JSON line per measurement (also
# in $BUILD/bench-results/batch-<time>.jsonl) and a table. Not part of `make test`.
#
# usage: bench/run_batch.sh [BUILD_DIR (default: build)]   (after `make build`)
# environment: REPEAT (5), WORKERS (1), THREADS (2), CONNECTIONS (64), DURATION (20),
#              WARMUP (3), GENERATE (1), GEN_LINES (96), GEN_TOKENS (16), GEN_CONNECTIONS (16)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
REPEAT=${REPEAT:-5}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
GENERATE=${GENERATE:-1}
GEN_LINES=${GEN_LINES:-96}
GEN_TOKENS=${GEN_TOKENS:-16}
GEN_CONNECTIONS=${GEN_CONNECTIONS:-16}
PYTHON=/usr/bin/python3
INFERD=$BUILD/inferd
LOAD=$BUILD/bench/bench-load
for exe in "$INFERD" "$LOAD"; do
    [ -x "$exe" ] || { echo "run_batch: $exe missing (build first: make build)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "run_batch: curl is needed" >&2; exit 1; }

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

now() { "$PYTHON" -c 'import time; print(time.monotonic())'; }
py() { "$PYTHON" -c "print($1)"; }

# ---- the work ----
tar -xJf "$ROOT/tests/data/spam-bert-tiny.tar.xz" -C "$WORK"
tar -xJf "$ROOT/tests/data/models-other.tar.xz" -C "$WORK" models/gpt2-lm
xz -dc "$ROOT/tests/data/spam-dev.jsonl.xz" > "$WORK/dev.jsonl"
"$PYTHON" - "$WORK/dev.jsonl" "$REPEAT" "$GEN_LINES" "$GEN_TOKENS" "$WORK" <<'EOF'
import json, sys
path, repeat, gen_lines, gen_tokens, work = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
texts = [json.loads(l)["text"] for l in open(path) if l.strip()]
with open(work + "/spam.jsonl", "w") as f:
    for _ in range(repeat):
        for t in texts:
            f.write(json.dumps({"inputs": t, "parameters": {"truncation": True, "max_length": 256}}) + "\n")
with open(work + "/generate.jsonl", "w") as f:
    for t in (texts * (gen_lines // len(texts) + 1))[:gen_lines]:
        prompt = " ".join(t.split()[:12])
        f.write(json.dumps({"inputs": prompt, "parameters": {"max_new_tokens": gen_tokens}}) + "\n")
EOF
echo "run_batch: WORKERS=$WORKERS THREADS=$THREADS; load average before:" \
    "$(cut -d' ' -f1-3 /proc/loadavg) (other processes on these cores disturb the numbers)"

# measure NAME MODEL TASK BODIES RUN_BATCH CONNECTIONS MAX_BATCH_SIZE
measure() {
    name=$1 model=$2 task=$3 bodies=$4 run_batch=$5 conns=$6 mbs=$7
    n=$(wc -l < "$bodies")
    # 1. inferd run
    run="$INFERD run --model $model --task $task --threads $THREADS $run_batch"
    t0=$(now); $run < /dev/null > /dev/null; t1=$(now)
    $run < "$bodies" > "$WORK/$name.run.jsonl"; t2=$(now)
    secs=$(py "($t2 - $t1) - ($t1 - $t0)")
    echo "{\"work\": \"$name\", \"what\": \"inferd run $run_batch\", \"lines\": $n," \
        "\"seconds\": $(py "round($secs, 2)"), \"lines_per_s\": $(py "round($n / $secs, 1)")}" |
        tee -a "$RESULTS"
    # 2. inferd batch
    t0=$(now)
    "$INFERD" batch --model "$model" --task "$task" --workers "$WORKERS" --threads "$THREADS" \
        --max-batch-size "$mbs" --input "$bodies" --output "$WORK/$name.batch.jsonl" \
        --progress off 2> "$WORK/$name.batch.log"
    t1=$(now)
    job=$(sed -n 's/.*inferd batch: done: .* \([0-9.]*\) lines\/s.*/\1/p' "$WORK/$name.batch.log")
    echo "{\"work\": \"$name\", \"what\": \"inferd batch\", \"lines\": $n, \"lines_per_s\": $job," \
        "\"wall_seconds\": $(py "round($t1 - $t0, 2)")," \
        "\"wall_lines_per_s\": $(py "round($n / ($t1 - $t0), 1)")}" | tee -a "$RESULTS"
    "$PYTHON" - "$WORK/$name.run.jsonl" "$WORK/$name.batch.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b), "run_batch: %d lines from inferd run, %d from inferd batch" % (len(a), len(b))
for i, (x, y) in enumerate(zip(a, b)):
    if "generated_text" in x[0]:
        same = x[0]["generated_text"] == y[0]["generated_text"]
    else:
        same = x[0]["label"] == y[0]["label"] and abs(x[0]["score"] - y[0]["score"]) < 1e-6
    assert same, "run_batch: line %d differs: %s / %s" % (i + 1, x, y)
EOF
    # 3. the daemon under load
    cat > "$WORK/serve.yaml" <<EOF
server:
  host: 127.0.0.1
  port: 0
models:
  - name: m
    path: $model
    task: $task
    workers: $WORKERS
    threads: $THREADS
    batching:
      max_batch_size: $mbs
      max_queue_delay_us: 2000
EOF
    "$INFERD" serve --config "$WORK/serve.yaml" 2> "$WORK/serve.log" &
    SERVER_PID=$!
    url=
    for _ in $(seq 600); do
        url=$(sed -n 's/^.*inferd: listening on \(http:[^ ]*\).*/\1/p' "$WORK/serve.log" | head -n 1)
        [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ready")" = 200 ] && break
        sleep 0.1
    done
    "$LOAD" --url "$url/models/m" --bodies "$bodies" --connections "$conns" \
        --duration "$DURATION" --warmup "$WARMUP" > "$WORK/load.json"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    SERVER_PID=
    "$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"work": sys.argv[2], "what": "inferd serve + bench-load, %d connections"
                  % r["connections"], "requests": r["requests"], "errors": r["errors"],
                  "lines_per_s": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}))' \
        "$WORK/load.json" "$name" | tee -a "$RESULTS"
}

measure spam "$WORK/spam-bert-tiny" text-classification "$WORK/spam.jsonl" "--batch 16" \
    "$CONNECTIONS" 32
if [ "$GENERATE" = 1 ]; then
    measure generate "$WORK/models/gpt2-lm" text-generation "$WORK/generate.jsonl" "" \
        "$GEN_CONNECTIONS" 16
fi

"$PYTHON" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n%-10s %-44s %10s" % ("work", "", "lines/s"))
for r in rows:
    print("%-10s %-44s %10.1f" % (r["work"], r["what"], r["lines_per_s"]))
    if "wall_lines_per_s" in r:
        print("%-10s %-44s %10.1f" % ("", "  (with the model's load)", r["wall_lines_per_s"]))
EOF
