#!/bin/sh
# run_families.sh - the issue-14 families at realistic sizes: inferd next to PyTorch eager
# (transformers' own model classes), measured in the same run.
#
# Writes one random-weight model per family with bench/torch_families.py make (transformers'
# classes from the Hub checkpoints' configs, fixed seed, save_pretrained as safetensors, a
# tokenizer from tests/data/tokenizers.tar.xz whose ids fit; into $BUILD/bench-models/families,
# once, never committed):
#   deberta-v3-base      DebertaV2ForSequenceClassification (184M)
#   all-mpnet-base-v2    MPNetModel + sentence-transformers mean pooling, normalize (109M)
#   modernbert-base      ModernBertForSequenceClassification (150M)
#   qwen3-0.6b           Qwen3ForCausalLM (596M, tied)
#   gemma-3-1b           Gemma3ForCausalLM, gemma3_text (1000M, tied, 262144 vocabulary)
#   phi-3.5-mini-8l      Phi3ForCausalLM, Phi-3.5-mini's shape and LongRoPE, 8 of its 32 layers
# checks that inferd and transformers compute the same model (encoders: `inferd run`'s
# pipeline answer against transformers.pipeline's, within 1e-4; decoders: bench-generate's
# logits after the prefill and after one decode step, within 1e-3 x the largest logit; stops
# otherwise),
# then for ROUNDS rounds runs, interleaved (the order rotates per round):
#   encoders  inferd bench (DTYPES) and torch_families.py encoder, per SHAPES shape
#   decoders  bench-generate (DTYPES) and torch_families.py decoder: prefill of a PROMPT-token
#             prompt and decode tokens/s of one stream (STEPS greedy steps after a
#             PROMPT-token prompt)
# all at THREADS threads. Every JSON line goes to $BUILD/bench-results/families-<time>.jsonl;
# bench/summarize_families.py prints the medians and the ratios inferd/torch as Markdown.
# Not part of `make test`. About 10 minutes per round on 2 quiet cores (more than half of it
# PyTorch loading the decoders and running their prefill).
#
# usage: bench/run_families.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (1), SHAPES (1x128,8x128), PROMPT (128), STEPS (16),
#              MIN_SECONDS (3), DTYPES (fp32), MODELS (all six, comma-separated),
#              PYTHON (/work/venv-refgen/bin/python: torch and transformers, as
#              tools/refgen/requirements.txt pins them), SUMMARIZE=FILE.jsonl (summarize only)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
SHAPES=${SHAPES:-1x128,8x128}
PROMPT=${PROMPT:-128}
STEPS=${STEPS:-16}
MIN_SECONDS=${MIN_SECONDS:-3}
DTYPES=${DTYPES:-fp32}
MODELS=${MODELS:-deberta-v3-base,all-mpnet-base-v2,modernbert-base,qwen3-0.6b,gemma-3-1b,phi-3.5-mini-8l}
PYTHON=${PYTHON:-/work/venv-refgen/bin/python}
TORCH=$ROOT/bench/torch_families.py
SUMMARY=$ROOT/bench/summarize_families.py
BENCH=$BUILD/bench/bench-generate

if [ -n "${SUMMARIZE:-}" ]; then
    exec python3 "$SUMMARY" "$SUMMARIZE"
fi

for exe in "$BUILD/inferd" "$BENCH"; do
    [ -x "$exe" ] || { echo "run_families: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done
"$PYTHON" -c 'import torch, transformers' || {
    echo "run_families: $PYTHON has no torch/transformers (pip install -r tools/refgen/requirements.txt)" >&2
    exit 1
}

is_decoder() {
    case $1 in qwen3-* | gemma-* | phi-*) return 0 ;; *) return 1 ;; esac
}

# 1. The models (written once; a half-written one never has the final name).
MODEL_DIR=$BUILD/bench-models/families
mkdir -p "$MODEL_DIR"
need=""
for m in $(echo "$MODELS" | tr ',' ' '); do
    [ -s "$MODEL_DIR/$m/model.safetensors" ] || need="$need $m"
done
if [ -n "$need" ]; then
    tok=$(mktemp -d)
    tar -xJf "$ROOT/tests/data/tokenizers.tar.xz" -C "$tok"
    # shellcheck disable=SC2086
    "$PYTHON" "$TORCH" make "$MODEL_DIR" "$tok/tokenizers" $need
    rm -rf "$tok"
fi

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$OUT_DIR/families-$STAMP.jsonl
echo "run_families: writing $OUT" >&2

# Appends the tool's JSON lines, tagged with the round, to $OUT.
tag() {
    sed -n "s/^{\(.*\)}\$/{\"round\":$1,\1}/p" >> "$OUT"
}

printf '{"round":0,"engine":"machine","cpu":"%s","cores":%s,"threads":%s}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" "$THREADS" >> "$OUT"
for m in $(echo "$MODELS" | tr ',' ' '); do
    printf '{"round":0,"engine":"model","model":"%s","arch":"%s","bytes":%s}\n' "$m" \
        "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["architectures"][0])' \
            "$MODEL_DIR/$m/config.json")" \
        "$(stat -c %s "$MODEL_DIR/$m/model.safetensors")" >> "$OUT"
done

# 2. Both implementations compute the same model: on each encoder, `inferd run`'s pipeline
#    answer against transformers.pipeline's (within 1e-4); on each decoder, inferd's logits
#    against transformers' (within 1e-3 x the largest logit).
REQUEST='{"inputs": "The quick brown fox jumps over the lazy dog near the river bank.", "parameters": {"top_k": null}}'
for m in $(echo "$MODELS" | tr ',' ' '); do
    if ! is_decoder "$m"; then
        task=text-classification req=$REQUEST
        case $m in *mpnet*) task=feature-extraction req='{"inputs": "The quick brown fox."}' ;; esac
        check=$OUT_DIR/families-$STAMP-check-$m.json
        echo "run_families: checking inferd against transformers on $m ($task)" >&2
        echo "$req" | "$BUILD/inferd" run --model "$MODEL_DIR/$m" --task "$task" \
            --threads "$THREADS" > "$check"
        if ! "$PYTHON" "$TORCH" encoder --model "$MODEL_DIR/$m" --threads "$THREADS" \
            --check "$check" --task "$task" --request "$req" > "$check.out"; then
            tag 0 < "$check.out"
            echo "run_families: inferd and transformers disagree on $m (see $check.out)" >&2
            exit 1
        fi
        tag 0 < "$check.out"
        rm -f "$check" "$check.out"
        continue
    fi
    check=$OUT_DIR/families-$STAMP-check-$m.json
    echo "run_families: checking inferd against transformers on $m" >&2
    "$BENCH" --model "$MODEL_DIR/$m" --threads "$THREADS" --metrics "" --context "$PROMPT" \
        --dump-check "$check"
    if ! "$PYTHON" "$TORCH" decoder --model "$MODEL_DIR/$m" --threads "$THREADS" \
        --context "$PROMPT" --check "$check" > "$check.out"; then
        tag 0 < "$check.out"
        echo "run_families: inferd and transformers disagree on $m (see $check.out)" >&2
        exit 1
    fi
    tag 0 < "$check.out"
    rm -f "$check" "$check.out"
done

run_one() { # round, model, what, shape (encoders)
    r=$1 dir=$MODEL_DIR/$2 what=$3 shape=${4:-}
    if is_decoder "$2"; then
        case $what in
        inferd-*)
            "$BENCH" --model "$dir" --dtype "${what#inferd-}" --threads "$THREADS" \
                --metrics prefill,decode --prompts "$PROMPT" --context "$PROMPT" --streams 1 \
                --steps "$STEPS" --min-runs 3 --min-seconds "$MIN_SECONDS" | tag "$r" ;;
        torch)
            "$PYTHON" "$TORCH" decoder --model "$dir" --threads "$THREADS" \
                --metrics prefill,decode --prompts "$PROMPT" --context "$PROMPT" --streams 1 \
                --steps "$STEPS" --min-runs 3 --min-seconds "$MIN_SECONDS" | tag "$r" ;;
        esac
    else
        b=${shape%x*} s=${shape#*x}
        case $what in
        inferd-*)
            "$BUILD/inferd" bench --model "$dir" --batch "$b" --seq "$s" --threads "$THREADS" \
                --dtype "${what#inferd-}" --min-seconds "$MIN_SECONDS" |
                sed "s/^{/{\"model\":\"$2\",/" | tag "$r" ;;
        torch)
            "$PYTHON" "$TORCH" encoder --model "$dir" --threads "$THREADS" --shapes "$shape" \
                --min-seconds "$MIN_SECONDS" | tag "$r" ;;
        esac
    fi
}

ENGINES="torch"
for d in $(echo "$DTYPES" | tr ',' ' '); do
    ENGINES="inferd-$d $ENGINES"
done
n_engines=$(echo "$ENGINES" | wc -w)

r=1
while [ "$r" -le "$ROUNDS" ]; do
    for m in $(echo "$MODELS" | tr ',' ' '); do
        shapes=$SHAPES
        is_decoder "$m" && shapes="-"
        for shape in $(echo "$shapes" | tr ',' ' '); do
            # rotate the engine order by the round number
            rot=$(( (r - 1) % n_engines ))
            order=$(echo "$ENGINES" | tr ' ' '\n' | awk -v k="$rot" '{a[NR-1]=$0} END {
                for (j = 0; j < NR; j++) print a[(j + k) % NR] }')
            for what in $order; do
                echo "run_families: round $r/$ROUNDS $m $shape $what" >&2
                run_one "$r" "$m" "$what" "$shape"
            done
        done
    done
    r=$((r + 1))
done

python3 "$SUMMARY" "$OUT"
