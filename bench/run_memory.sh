#!/bin/sh
# run_memory.sh - what a served model costs in memory and start-up time: for each benchmark
# model and dtype, `inferd serve` is started with that one model (WORKERS workers, THREADS
# threads), timed from exec to /ready answering 200, then, SETTLE seconds later, its
# /proc/PID/status read: VmRSS (resident), RssAnon (heap and packed weights), RssFile (mapped
# code: libdnnl mostly), VmHWM (the peak while loading). Next to it, the weights' bytes at the
# serving dtype, every parameter at 4 (fp32), 2 (bf16), 1 (int8) or 0.5 (int4) bytes, counted
# from the safetensors header; the ratio VmRSS / those bytes is the issue-18 goal (<= 1.2x).
#
# Models (written by the other benchmarks' tools, once; never committed):
#   tiny    the bundled spam classifier (bert-tiny, 4.4M parameters, tests/data): what any
#           served model costs besides its weights (mapped code, runtime buffers), fp32 only
#   bert    bench-models/bert-base-random (make-random-bert, run_encoder.sh), served as
#           text-classification with the bert-uncased fixture tokenizer (same 30522 ids)
#   llama   bench-models/llama-lm-random (make-random-decoder, run_generate.sh; 124M, untied
#           head), served as text-generation with the llama2 fixture tokenizer (32000 ids)
#   gpt2    bench-models/gpt2-lm-random (make-random-decoder, run_generate.sh; 124M, its head
#           tied to the token embeddings, counted once), with the gpt2 fixture tokenizer
# Every JSON line goes to $BUILD/bench-results/memory-<time>.jsonl; the table is printed as
# Markdown. Not part of `make test`.
#
# usage: bench/run_memory.sh [BUILD_DIR (default: build)]
# environment: MODELS (tiny,bert,llama,gpt2), DTYPES_tiny (fp32),
#              DTYPES_bert (fp32,bf16,int8), DTYPES_llama and DTYPES_gpt2
#              (fp32,bf16,int8,int4), WORKERS (1), THREADS (2), ROUNDS (2: start-up is the
#              median), SETTLE (1)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
MODELS=${MODELS:-tiny,bert,llama,gpt2}
DTYPES_tiny=${DTYPES_tiny:-fp32}
DTYPES_bert=${DTYPES_bert:-fp32,bf16,int8}
DTYPES_llama=${DTYPES_llama:-fp32,bf16,int8,int4}
DTYPES_gpt2=${DTYPES_gpt2:-fp32,bf16,int8,int4}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
SETTLE=${SETTLE:-1}
INFERD=$BUILD/inferd
PYTHON=/usr/bin/python3

for exe in "$INFERD" "$BUILD/tools/make-random-bert" "$BUILD/bench/make-random-decoder"; do
    [ -x "$exe" ] || { echo "run_memory: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferd-mem.XXXXXX")
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

# 1. The models (written once) and a serving directory for each: weights linked, tokenizer copied.
MODEL_DIR=$BUILD/bench-models
mkdir -p "$MODEL_DIR"
tar -xJf "$ROOT/tests/data/tokenizers.tar.xz" -C "$WORK"
mkdir -p "$WORK/models"
tar -xJf "$ROOT/tests/data/spam-bert-tiny.tar.xz" -C "$WORK/models"
mv "$WORK/models/spam-bert-tiny" "$WORK/models/tiny"
[ -s "$MODEL_DIR/bert-base-random/model.safetensors" ] ||
    "$BUILD/tools/make-random-bert" "$MODEL_DIR/bert-base-random"
[ -s "$MODEL_DIR/llama-lm-random/model.safetensors" ] ||
    "$BUILD/bench/make-random-decoder" llama "$MODEL_DIR/llama-lm-random"
[ -s "$MODEL_DIR/gpt2-lm-random/model.safetensors" ] ||
    "$BUILD/bench/make-random-decoder" gpt2 "$MODEL_DIR/gpt2-lm-random"
serving_dir() { # name raw tokenizer
    d=$WORK/models/$1
    mkdir -p "$d"
    ln -sf "$MODEL_DIR/$2/config.json" "$d/config.json"
    ln -sf "$MODEL_DIR/$2/model.safetensors" "$d/model.safetensors"
    cp "$WORK/tokenizers/$3/tokenizer.json" "$WORK/tokenizers/$3/tokenizer_config.json" "$d/"
}
serving_dir bert bert-base-random bert-uncased
serving_dir llama llama-lm-random llama2
serving_dir gpt2 gpt2-lm-random gpt2

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/memory-$(date +%Y%m%d-%H%M%S).jsonl
echo "run_memory: writing $OUT" >&2

now() { date +%s.%N; }

# Starts the daemon on model $1 at dtype $2 and prints one JSON line.
measure() {
    name=$1 dtype=$2 round=$3
    case $name in tiny | bert) task=text-classification ;; *) task=text-generation ;; esac
    cat > "$WORK/c.yaml" <<EOC
server:
  host: 127.0.0.1
  port: 0
models:
  - name: $name
    path: $WORK/models/$name
    task: $task
    dtype: $dtype
    workers: $WORKERS
    threads: $THREADS
EOC
    : > "$WORK/log"
    t0=$(now)
    "$INFERD" serve --config "$WORK/c.yaml" 2> "$WORK/log" &
    SERVER_PID=$!
    url=
    while [ -z "$url" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/log" >&2; exit 1; }
        url=$(sed -n 's/^.*inferd: listening on \(http:[^ ]*\).*/\1/p' "$WORK/log" | head -n 1)
        sleep 0.02
    done
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ready")" = 200 ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/log" >&2; exit 1; }
        sleep 0.02
    done
    t1=$(now)
    sleep "$SETTLE"
    kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$SERVER_PID/status"; }
    printf '{"model": "%s", "dtype": "%s", "round": %s, "workers": %s, "ready_s": %s, ' \
        "$name" "$dtype" "$round" "$WORKERS" "$(echo "$t1 $t0" | awk '{printf "%.3f", $1 - $2}')"
    printf '"vm_rss_kb": %s, "rss_anon_kb": %s, "rss_file_kb": %s, "vm_hwm_kb": %s, ' \
        "$(kb VmRSS)" "$(kb RssAnon)" "$(kb RssFile)" "$(kb VmHWM)"
    "$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import summarize_memory as m
total, emb = m.parameters(sys.argv[2])
print(f"\"parameters\": {total}, \"embedding_parameters\": {emb}}}")' \
        "$ROOT/bench" "$WORK/models/$name/model.safetensors"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# 2. The rounds: every model and dtype once per round.
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for m in $(echo "$MODELS" | tr ',' ' '); do
        eval "dts=\$DTYPES_$m"
        for dt in $(echo "$dts" | tr ',' ' '); do
            measure "$m" "$dt" "$round" >> "$OUT"
        done
    done
    round=$((round + 1))
done

"$PYTHON" "$ROOT/bench/summarize_memory.py" "$OUT"
