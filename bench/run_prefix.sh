#!/bin/sh
# run_prefix.sh - prefix caching's effect on a chat's second turn: time to first token of turn 2
# (turn 1's messages, its answer and a new question: about PREFIX_WORDS words, ~1,000 tokens,
# shared) next to turn 1's (nothing cached), over HTTP through a real daemon.
#
# Writes the random-weight ~124M-parameter LLaMA of run_generate.sh with make-random-decoder
# into $BUILD/bench-models (once; never committed) and serves it as a chat model with the
# llama-lm fixture's tokenizer and the Llama 3 chat template that the tests write to
# $BUILD/test-fixtures/llama-lm-chat (run `build/tests/inferd-tests serve_generate` once if it
# is missing; the vocabularies match: 32000). Then starts `inferd serve` on PORT with THREADS
# threads and generation.prefix_cache PREFIX_CACHE, and runs bench/prefix_chat.py: ROUNDS
# rounds (after a warm-up round) of a two-turn streamed chat whose system prompt differs every
# round, each turn answering MAX_TOKENS tokens greedily. Every JSON line goes to
# $BUILD/bench-results/prefix-<time>.jsonl; the summary gives the median time to first token
# of each turn, the ratio turn 2 / turn 1 (the goal: <= 0.15 with prefix caching) and the
# prompt and cached tokens of turn 2. Not part of `make test`.
#
# usage: bench/run_prefix.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (5), PREFIX_WORDS (570: ~1,000 tokens with the template),
#              MAX_TOKENS (16), PREFIX_CACHE (true), PORT (8093)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
PREFIX_WORDS=${PREFIX_WORDS:-570}
MAX_TOKENS=${MAX_TOKENS:-16}
PREFIX_CACHE=${PREFIX_CACHE:-true}
PORT=${PORT:-8093}
PYTHON=/usr/bin/python3
INFERD=$BUILD/inferd
MAKE_MODEL=$BUILD/bench/make-random-decoder
CHAT_FIXTURE=$BUILD/test-fixtures/llama-lm-chat

for exe in "$INFERD" "$MAKE_MODEL"; do
    [ -x "$exe" ] || { echo "run_prefix: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done
[ -f "$CHAT_FIXTURE/tokenizer_config.json" ] || {
    echo "run_prefix: $CHAT_FIXTURE missing (run: $BUILD/tests/inferd-tests serve_generate)" >&2
    exit 1
}

# 1. The model (written once) and its chat directory: the weights linked, the tokenizer copied.
MODEL_DIR=$BUILD/bench-models
mkdir -p "$MODEL_DIR"
RAW=$MODEL_DIR/llama-lm-random
[ -s "$RAW/model.safetensors" ] || "$MAKE_MODEL" llama "$RAW"
CHAT=$MODEL_DIR/llama-lm-random-chat
mkdir -p "$CHAT"
ln -sf "$RAW/config.json" "$CHAT/config.json"
ln -sf "$RAW/model.safetensors" "$CHAT/model.safetensors"
cp -L "$CHAT_FIXTURE/tokenizer.json" "$CHAT_FIXTURE/tokenizer_config.json" "$CHAT/"
if [ -f "$CHAT_FIXTURE/generation_config.json" ]; then
    cp -L "$CHAT_FIXTURE/generation_config.json" "$CHAT/"
fi

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$OUT_DIR/prefix-$STAMP.jsonl
CONFIG=$OUT_DIR/prefix-$STAMP.yaml
LOG=$OUT_DIR/prefix-$STAMP.log
cat > "$CONFIG" <<YAML
server:
  host: 127.0.0.1
  port: $PORT
models:
  - name: chat
    path: $CHAT
    task: text-generation
    threads: $THREADS
    generation:
      prefix_cache: $PREFIX_CACHE
YAML
printf '{"engine":"machine","cpu":"%s","cores":%s,"threads":%s,"prefix_cache":%s,"load":"%s"}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" "$THREADS" "$PREFIX_CACHE" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT"

# 2. The daemon, until /ready; stopped on exit.
"$INFERD" serve --config "$CONFIG" > "$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true' EXIT INT TERM
i=0
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null 2>&1; do
    i=$((i + 1))
    kill -0 "$PID" 2>/dev/null || { echo "run_prefix: the daemon exited (see $LOG)" >&2; exit 1; }
    [ "$i" -lt 600 ] || { echo "run_prefix: not ready after 120 s (see $LOG)" >&2; exit 1; }
    sleep 0.2
done

# 3. The chats, then the summary.
echo "run_prefix: writing $OUT" >&2
"$PYTHON" "$ROOT/bench/prefix_chat.py" "$PORT" "$ROUNDS" "$PREFIX_WORDS" "$MAX_TOKENS" >> "$OUT"
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"turn"' in l]
rows = [r for r in rows if r["round"] > 0]
t1 = [r["ttft_s"] for r in rows if r["turn"] == 1]
t2 = [r["ttft_s"] for r in rows if r["turn"] == 2]
p2 = [r for r in rows if r["turn"] == 2]
m1, m2 = statistics.median(t1), statistics.median(t2)
print("| turn | prompt tokens | cached tokens | median TTFT (ms) | min-max (ms) |")
print("| --- | --- | --- | --- | --- |")
for turn, ts in ((1, t1), (2, t2)):
    rs = [r for r in rows if r["turn"] == turn]
    print(f"| {turn} | {rs[0]['prompt_tokens']} | {rs[0]['cached_tokens']} | "
          f"{statistics.median(ts) * 1e3:.1f} | {min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f} |")
print(f"\nturn 2 / turn 1 time to first token: {m2 / m1:.3f} (goal <= 0.15), "
      f"{len(t1)} rounds")
PY
