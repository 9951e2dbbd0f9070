#!/bin/sh
# run_generate.sh - inferd's text generation speed next to PyTorch eager, measured in the same run.
#
# Writes two random-weight ~124M-parameter decoders with make-random-decoder (the gpt2-lm and
# llama-lm fixture architectures scaled up: GPT-2 small's shape; LLaMA with hidden 768, 12
# layers, 12 heads, 4 kv heads, intermediate 2048, vocab 32000, untied head) into
# $BUILD/bench-models (once; never committed), checks that bench-generate and
# bench/torch_decoder.py compute the same logits on them (max |difference| after the prefill
# and after one decode step, within 1e-3; stops otherwise), then for ROUNDS rounds and every
# model runs, interleaved (the order rotates per round):
#   bench-generate       inferd, DTYPES (fp32)
#   torch_decoder.py     hand-written eager GPT-2 / LLaMA with a KV cache (fp32)
# each measuring prefill tokens/s (PROMPTS), time to first token (CONTEXT-token prompt) and
# decode tokens/s at STREAMS concurrent streams (every stream's token in one step, STEPS steps
# after a CONTEXT-token prompt). Every JSON line goes to $BUILD/bench-results/generate-<time>.jsonl;
# the summary (median of the round medians, spread, ratios inferd/torch, decode throughput at
# the most streams over one stream, which must reach 4x) is printed as Markdown.
# Not part of `make test`.
#
# usage: bench/run_generate.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (3), MODELS (llama,gpt2), PROMPTS (128,512), CONTEXT (128),
#              STREAMS (1,16), STEPS (64), MIN_RUNS (3), MIN_SECONDS (3), DTYPES (fp32),
#              SUMMARIZE=FILE.jsonl (summarize an earlier run only)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-llama,gpt2}
PROMPTS=${PROMPTS:-128,512}
CONTEXT=${CONTEXT:-128}
STREAMS=${STREAMS:-1,16}
STEPS=${STEPS:-64}
MIN_RUNS=${MIN_RUNS:-3}
MIN_SECONDS=${MIN_SECONDS:-3}
DTYPES=${DTYPES:-fp32}
PYTHON=/usr/bin/python3
SUMMARY=$ROOT/bench/summarize_generate.py
TORCH=$ROOT/bench/torch_decoder.py
BENCH=$BUILD/bench/bench-generate
MAKE_MODEL=$BUILD/bench/make-random-decoder

if [ -n "${SUMMARIZE:-}" ]; then
    exec "$PYTHON" "$SUMMARY" "$SUMMARIZE"
fi

for exe in "$BENCH" "$MAKE_MODEL"; do
    [ -x "$exe" ] || { echo "run_generate: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done

# 1. PyTorch (Debian's, in /usr/bin/python3) and the OpenMP OpenBLAS it should use (see
#    shared/anchors/README.md), installed only if missing.
missing=""
for pkg in python3-torch libopenblas0-openmp; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "run_generate: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
fi

# 2. The models (written once; a half-written file never has the final name).
MODEL_DIR=$BUILD/bench-models
mkdir -p "$MODEL_DIR"
for m in $(echo "$MODELS" | tr ',' ' '); do
    [ -s "$MODEL_DIR/$m-lm-random/model.safetensors" ] || "$MAKE_MODEL" "$m" "$MODEL_DIR/$m-lm-random"
done

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$OUT_DIR/generate-$STAMP.jsonl
echo "run_generate: writing $OUT" >&2

# Appends the tool's JSON lines, tagged with the round, to $OUT.
tag() {
    sed -n "s/^{\(.*\)}\$/{\"round\":$1,\1}/p" >> "$OUT"
}

printf '{"round":0,"engine":"machine","cpu":"%s","cores":%s,"threads":%s}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" "$THREADS" >> "$OUT"

# 3. Both implementations compute the same model: inferd's logits against torch's.
for m in $(echo "$MODELS" | tr ',' ' '); do
    dir=$MODEL_DIR/$m-lm-random
    bytes=$(stat -c %s "$dir/model.safetensors")
    printf '{"round":0,"engine":"model","model":"%s","arch":"%s","bytes":%s}\n' \
        "$m-lm-random" "$m" "$bytes" >> "$OUT"
    check=$OUT_DIR/generate-$STAMP-check-$m.json
    echo "run_generate: checking inferd against torch on $m-lm-random" >&2
    "$BENCH" --model "$dir" --threads "$THREADS" --metrics "" --context "$CONTEXT" \
        --dump-check "$check"
    if ! "$PYTHON" "$TORCH" --model "$dir" --threads "$THREADS" --metrics "" \
        --context "$CONTEXT" --check "$check" > "$check.out"; then
        tag 0 < "$check.out"
        echo "run_generate: inferd and torch disagree on $m-lm-random (see $check.out)" >&2
        exit 1
    fi
    tag 0 < "$check.out"
    rm -f "$check" "$check.out"
done

COMMON="--threads $THREADS --prompts $PROMPTS --context $CONTEXT --streams $STREAMS --steps $STEPS
    --min-runs $MIN_RUNS --min-seconds $MIN_SECONDS"

run_one() { # round, model, what
    r=$1 dir=$MODEL_DIR/$2-lm-random what=$3
    case $what in
    inferd-*)
        # shellcheck disable=SC2086
        "$BENCH" --model "$dir" --dtype "${what#inferd-}" $COMMON | tag "$r" ;;
    torch)
        # shellcheck disable=SC2086
        "$PYTHON" "$TORCH" --model "$dir" $COMMON | tag "$r" ;;
    esac
}

ENGINES="torch"
for d in $(echo "$DTYPES" | tr ',' ' '); do
    ENGINES="inferd-$d $ENGINES"
done
n_engines=$(echo "$ENGINES" | wc -w)

r=1
while [ "$r" -le "$ROUNDS" ]; do
    for m in $(echo "$MODELS" | tr ',' ' '); do
        # rotate the engine order by the round number
        rot=$(( (r - 1) % n_engines ))
        order=$(echo "$ENGINES" | tr ' ' '\n' | awk -v k="$rot" '{a[NR-1]=$0} END {
            for (j = 0; j < NR; j++) print a[(j + k) % NR] }')
        for what in $order; do
            echo "run_generate: round $r/$ROUNDS $m $what" >&2
            run_one "$r" "$m" "$what"
        done
    done
    r=$((r + 1))
done

"$PYTHON" "$SUMMARY" "$OUT"
