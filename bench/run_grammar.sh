#!/bin/sh
# run_grammar.sh - decode tokens/s with and without an output constraint (constrained decoding,
# engine/generate/grammar.h) on a realistic-size random decoder: make-random-decoder's ~124M
# GPT-2 (vocab 50257) with the gpt2-lm fixture's tokenizer (GPT-2's own) beside it, written
# once into $BUILD/bench-models/gpt2-grammar. bench-grammar then runs, per round and per
# stream count: no constraint, a JSON-shaped regex with its mask cache cold (its first
# request), and warm (every later one), each generating TOKENS sampled tokens. Prints the JSON
# lines and the median tokens/s per run kind with the slowdown against no constraint.
# Not part of `make test`.
#
# usage: bench/run_grammar.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), TOKENS (128), STREAMS (1 4), ROUNDS (3)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-128}
STREAMS=${STREAMS:-1 4}
ROUNDS=${ROUNDS:-3}
DIR=$BUILD/bench-models/gpt2-grammar
TOK=$BUILD/test-fixtures/models-other/models/gpt2-lm

for exe in "$BUILD/bench/bench-grammar" "$BUILD/bench/make-random-decoder"; do
    [ -x "$exe" ] || { echo "run_grammar: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done
[ -f "$TOK/tokenizer.json" ] || {
    echo "run_grammar: $TOK missing (run the tests once: build/tests/inferd-tests grammar)" >&2
    exit 1
}
if [ ! -f "$DIR/model.safetensors" ]; then
    mkdir -p "$DIR"
    "$BUILD/bench/make-random-decoder" gpt2 "$DIR"
    cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$DIR/"
fi
out=$(mktemp)
for s in $STREAMS; do
    "$BUILD/bench/bench-grammar" --model "$DIR" --threads "$THREADS" --tokens "$TOKENS" \
        --streams "$s" --rounds "$ROUNDS" | tee -a "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
masks = [r["median_us"] for r in rows if r["run"] == "mask_only"]
rows = [r for r in rows if r["run"] != "mask_only"]
print(f"\nmask step alone: median {statistics.median(masks):.1f} us per token")
print("\n| streams | run | median tokens/s | vs none |")
print("|---|---|---|---|")
for s in sorted({r["streams"] for r in rows}):
    med = {k: statistics.median(r["tokens_per_s"] for r in rows if r["streams"] == s and r["run"] == k)
           for k in ("none", "cold", "warm")}
    for k, v in med.items():
        print(f"| {s} | {k} | {v:.1f} | {100 * (v / med['none'] - 1):+.1f}% |")
PY
rm -f "$out"
