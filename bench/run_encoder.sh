#!/bin/sh
# run_encoder.sh - inferd's encoder speed next to the anchors, measured in the same run.
#
# Sets up the anchors (shared/anchors, README.md there) in a writable copy under the build dir,
# writes a random-weight bert-base-sized BertForSequenceClassification with make-random-bert,
# then for ROUNDS rounds and every shape runs, interleaved (the order rotates per round):
#   inferd bench          fp32, bf16, int8
#   ort_bert.js           the ORT-optimized graph, the plain graph (fp32) and the int8 graph
#   torch_bert.py         hand-written eager BERT and nn.TransformerEncoder's fast path (fp32)
# and gemm_peak once (the oneDNN matmul ceilings and the memory read bandwidth).
# Every JSON line goes to $BUILD/bench-results/encoder-<time>.jsonl; the summary (median of the
# round medians, spread, ratios inferd/ORT and inferd/torch, share of the matmul ceiling) is
# printed as Markdown. Not part of `make test`.
#
# usage: bench/run_encoder.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), SHAPES (1x16,1x128,8x128,32x128), ROUNDS (3), MIN_SECONDS (5),
#              DTYPES (fp32,bf16,int8), ANCHORS_SRC (the repo's ../shared/anchors),
#              SUMMARIZE=FILE.jsonl (summarize an earlier run only)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
SHAPES=${SHAPES:-1x16,1x128,8x128,32x128}
ROUNDS=${ROUNDS:-3}
MIN_SECONDS=${MIN_SECONDS:-5}
DTYPES=${DTYPES:-fp32,bf16,int8}
ANCHORS_SRC=${ANCHORS_SRC:-$ROOT/../shared/anchors}
ANCHORS=$BUILD/anchors
MODEL=$BUILD/bench-models/bert-base-random
PYTHON=/usr/bin/python3
SUMMARY=$ROOT/bench/summarize_encoder.py

if [ -n "${SUMMARIZE:-}" ]; then
    exec "$PYTHON" "$SUMMARY" "$SUMMARIZE"
fi

for exe in "$BUILD/inferd" "$BUILD/tools/make-random-bert"; do
    [ -x "$exe" ] || { echo "run_encoder: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done

# 1. The anchors, in a writable copy (the shared folder may be read-only).
mkdir -p "$ANCHORS"
for f in "$ANCHORS_SRC"/*; do
    case $(basename "$f") in node_modules|results|gemm_peak|*.weights|*.onnx.data) continue ;; esac
    cmp -s "$f" "$ANCHORS/$(basename "$f")" 2>/dev/null || cp "$f" "$ANCHORS/"
done
sh "$ANCHORS/setup.sh" >&2

# 2. The model inferd runs: same sizes and recipe as the anchors' weights.
if [ ! -s "$MODEL/model.safetensors" ]; then
    "$BUILD/tools/make-random-bert" "$MODEL"
fi

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/encoder-$(date +%Y%m%d-%H%M%S).jsonl
echo "run_encoder: writing $OUT" >&2

# Appends the tool's JSON lines, tagged with the round, to $OUT.
tag() {
    sed -n "s/^{\(.*\)}\$/{\"round\":$1,\1}/p" >> "$OUT"
}

(cd "$ANCHORS" && ./gemm_peak "$THREADS" 1024) | tag 0
printf '{"round":0,"engine":"machine","cpu":"%s","cores":%s}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" >> "$OUT"

run_one() { # round, what, batch, seq
    r=$1 what=$2 b=$3 s=$4
    case $what in
    inferd-*)
        "$BUILD/inferd" bench --model "$MODEL" --batch "$b" --seq "$s" --threads "$THREADS" \
            --dtype "${what#inferd-}" --min-seconds "$MIN_SECONDS" | tag "$r" ;;
    ort-opt)
        (cd "$ANCHORS" && node ort_bert.js --model bert-base-seqcls-ortopt.onnx \
            --threads "$THREADS" --shapes "${b}x$s" --min-seconds "$MIN_SECONDS") | tag "$r" ;;
    ort-plain)
        (cd "$ANCHORS" && node ort_bert.js --model bert-base-seqcls.onnx \
            --threads "$THREADS" --shapes "${b}x$s" --min-seconds "$MIN_SECONDS") | tag "$r" ;;
    ort-int8)
        (cd "$ANCHORS" && node ort_bert.js --model bert-base-seqcls-int8.onnx \
            --threads "$THREADS" --shapes "${b}x$s" --min-seconds "$MIN_SECONDS") | tag "$r" ;;
    torch)
        (cd "$ANCHORS" && "$PYTHON" torch_bert.py --threads "$THREADS" --shapes "${b}x$s" \
            --min-seconds "$MIN_SECONDS") | tag "$r" ;;
    esac
}

ENGINES="ort-opt ort-plain ort-int8 torch"
for d in $(echo "$DTYPES" | tr ',' ' '); do
    ENGINES="inferd-$d $ENGINES"
done
n_engines=$(echo "$ENGINES" | wc -w)

r=1
while [ "$r" -le "$ROUNDS" ]; do
    for shape in $(echo "$SHAPES" | tr ',' ' '); do
        b=${shape%x*}
        s=${shape#*x}
        # rotate the engine order by the round number
        i=0
        rot=$(( (r - 1) % n_engines ))
        order=$(echo "$ENGINES" | tr ' ' '\n' | awk -v k="$rot" '{a[NR-1]=$0} END {
            for (j = 0; j < NR; j++) print a[(j + k) % NR] }')
        for what in $order; do
            echo "run_encoder: round $r/$ROUNDS ${b}x$s $what" >&2
            run_one "$r" "$what" "$b" "$s"
            i=$((i + 1))
        done
    done
    r=$((r + 1))
done

"$PYTHON" "$SUMMARY" "$OUT"
