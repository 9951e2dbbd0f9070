#!/bin/sh
# run_llamacpp.sh - inferd's text generation speed next to llama.cpp's, measured in the same run,
# on the generation benchmark's random-weight LLaMA (bench/run_generate.sh describes it).
#
# Needs BUILD_DIR's bench tools (ninja -C BUILD_DIR) and llama.cpp built by bench/llamacpp.sh
# (make bench-llamacpp runs both first). Then:
#  1. the model: make-random-decoder llama (once, shared with run_generate.sh), converted by
#     make-gguf into F32, F16, BF16, Q8_0 and Q4_0 GGUF files beside it (once);
#  2. parity before any timing: for each CHECK_CONTEXTS prompt length, bench-generate (inferd
#     fp32) and llamacpp-bench (llama.cpp's C API on the F32 file, flash attention off, F32 KV
#     cache) dump the logits after the prefill and after one decode step and 16 greedy ids;
#     bench/compare_logits.py requires every id equal and every logit within TOLERANCE, and the
#     run stops otherwise;
#  3. ROUNDS interleaved rounds (the order rotates per round) over PAIRS, each inferd dtype with
#     its llama.cpp match: bench-generate --dtype D and llamacpp-bench on the GGUF (prefill
#     tokens/s of PROMPTS, time to first token of a CONTEXT-token prompt, decode tokens/s at
#     STREAMS parallel sequences; the same prompts, the same statistics), THREADS threads each;
#     and, once per round for every GGUF type, llama.cpp's own llama-bench (-p PROMPTS -n STEPS
#     -t THREADS, its default flash attention and KV cache) as a second opinion on prefill and
#     single-stream decode. A dtype inferd does not have yet (int4 until `dtype: int4` lands)
#     prints n/a.
# llama.cpp is timed as people run it: KV cache F16 and flash attention "auto" (KV=f32,
# FLASH_ATTN=off change that). Every JSON line goes to BUILD_DIR/bench-results/llamacpp-<time>.jsonl;
# bench/summarize_llamacpp.py prints the table (medians over rounds, ratios inferd/llama.cpp).
# Not part of `make test`.
#
# usage: bench/run_llamacpp.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (3), PROMPTS (128,512), CONTEXT (128), STREAMS (1,16),
#              STEPS (64), MIN_RUNS (3), MIN_SECONDS (3), PAIRS (fp32:F32,bf16:BF16,int8:Q8_0,
#              int4:Q4_0), CHECK_CONTEXTS (16,64,128), TOLERANCE (1e-5), KV (f16), FLASH_ATTN
#              (auto), LLAMA_BENCH (1), SUMMARIZE=FILE.jsonl (summarize an earlier run only)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PROMPTS=${PROMPTS:-128,512}
CONTEXT=${CONTEXT:-128}
STREAMS=${STREAMS:-1,16}
STEPS=${STEPS:-64}
MIN_RUNS=${MIN_RUNS:-3}
MIN_SECONDS=${MIN_SECONDS:-3}
PAIRS=${PAIRS:-fp32:F32,bf16:BF16,int8:Q8_0,int4:Q4_0}
CHECK_CONTEXTS=${CHECK_CONTEXTS:-16,64,128}
TOLERANCE=${TOLERANCE:-1e-5}
KV=${KV:-f16}
FLASH_ATTN=${FLASH_ATTN:-auto}
LLAMA_BENCH=${LLAMA_BENCH:-1}
PYTHON=/usr/bin/python3
SUMMARY=$ROOT/bench/summarize_llamacpp.py
BENCH=$BUILD/bench/bench-generate
MAKE_MODEL=$BUILD/bench/make-random-decoder
MAKE_GGUF=$BUILD/bench/make-gguf
LDIR=$BUILD/bench-llamacpp
DRIVER=$LDIR/llamacpp-bench
LLAMA_BENCH_EXE=$(find "$LDIR/cmake-build" -name llama-bench -type f 2> /dev/null | head -n 1)

if [ -n "${SUMMARIZE:-}" ]; then
    exec "$PYTHON" "$SUMMARY" "$SUMMARIZE"
fi
for exe in "$BENCH" "$MAKE_MODEL" "$MAKE_GGUF"; do
    [ -x "$exe" ] || { echo "run_llamacpp: $exe missing (build first: ninja -C $BUILD)" >&2; exit 1; }
done
[ -x "$DRIVER" ] || { echo "run_llamacpp: $DRIVER missing (run bench/llamacpp.sh first)" >&2; exit 1; }
if [ "$LLAMA_BENCH" != 0 ] && [ -z "$LLAMA_BENCH_EXE" ]; then
    echo "run_llamacpp: llama-bench missing (bench/llamacpp.sh builds it; LLAMA_BENCH=0 skips it)" >&2
    exit 1
fi

# 1. The model and its GGUF files (written once; a half-written file never has the final name).
MODEL=llama-lm-random
DIR=$BUILD/bench-models/$MODEL
GGUF_DIR=$BUILD/bench-models/$MODEL-gguf
mkdir -p "$BUILD/bench-models" "$GGUF_DIR"
[ -s "$DIR/model.safetensors" ] || "$MAKE_MODEL" llama "$DIR"
for t in F32 F16 BF16 Q8_0 Q4_0; do
    [ -s "$GGUF_DIR/$t.gguf" ] || "$MAKE_GGUF" "$DIR" "$GGUF_DIR/$t.gguf" "$t"
done

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$OUT_DIR/llamacpp-$STAMP.jsonl
echo "run_llamacpp: writing $OUT" >&2

# Appends the tool's JSON lines, tagged with the round (and an engine when given), to $OUT.
tag() {
    sed -n "s/^{\(.*\)}\$/{\"round\":$1,${2:+\"engine\":\"$2\",}\1}/p" >> "$OUT"
}

printf '{"round":0,"engine":"machine","cpu":"%s","cores":%s,"threads":%s,"kv":"%s","flash_attn":"%s"}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" "$THREADS" "$KV" \
    "$FLASH_ATTN" >> "$OUT"
for t in F32 F16 BF16 Q8_0 Q4_0; do
    printf '{"round":0,"engine":"model","model":"%s","dtype":"%s","bytes":%s}\n' "$MODEL" "$t" \
        "$(stat -c %s "$GGUF_DIR/$t.gguf")" >> "$OUT"
done
printf '{"round":0,"engine":"model","model":"%s","dtype":"safetensors","bytes":%s}\n' "$MODEL" \
    "$(stat -c %s "$DIR/model.safetensors")" >> "$OUT"

# 2. The same model in both: greedy ids and logits of a few prompts.
for c in $(echo "$CHECK_CONTEXTS" | tr ',' ' '); do
    ours=$OUT_DIR/llamacpp-$STAMP-check-$c-inferd.json
    theirs=$OUT_DIR/llamacpp-$STAMP-check-$c-llamacpp.json
    echo "run_llamacpp: checking inferd fp32 against llama.cpp F32 on a $c-token prompt" >&2
    "$BENCH" --model "$DIR" --threads "$THREADS" --metrics "" --context "$c" --dump-check "$ours"
    "$DRIVER" --model "$GGUF_DIR/F32.gguf" --name "$MODEL" --type F32 --threads "$THREADS" \
        --metrics "" --context "$c" --kv f32 --flash-attn off --dump-check "$theirs"
    if ! "$PYTHON" "$ROOT/bench/compare_logits.py" "$ours" "$theirs" "$TOLERANCE" > "$ours.out"; then
        tag 0 < "$ours.out"
        echo "run_llamacpp: inferd and llama.cpp disagree on the $c-token prompt (see $ours.out)" >&2
        exit 1
    fi
    tag 0 < "$ours.out"
    rm -f "$ours" "$theirs" "$ours.out"
done

COMMON="--threads $THREADS --prompts $PROMPTS --context $CONTEXT --streams $STREAMS --steps $STEPS
    --min-runs $MIN_RUNS --min-seconds $MIN_SECONDS"

run_one() { # round, what (inferd-DTYPE | llamacpp-TYPE | llama-bench-TYPE)
    r=$1 what=$2
    case $what in
    inferd-*)
        # a dtype this inferd does not know (int4 before it lands) is left out: n/a
        # shellcheck disable=SC2086
        "$BENCH" --model "$DIR" --dtype "${what#inferd-}" $COMMON > "$OUT_DIR/llamacpp-$STAMP.tmp" ||
            { [ $? = 2 ] && echo "run_llamacpp: inferd has no ${what#inferd-} yet: n/a" >&2; } ||
            exit 1
        tag "$r" < "$OUT_DIR/llamacpp-$STAMP.tmp" ;;
    llamacpp-*)
        # shellcheck disable=SC2086
        "$DRIVER" --model "$GGUF_DIR/${what#llamacpp-}.gguf" --name "$MODEL" \
            --type "${what#llamacpp-}" --kv "$KV" --flash-attn "$FLASH_ATTN" $COMMON \
            > "$OUT_DIR/llamacpp-$STAMP.tmp"
        tag "$r" < "$OUT_DIR/llamacpp-$STAMP.tmp" ;;
    llama-bench-*)
        "$LLAMA_BENCH_EXE" -m "$GGUF_DIR/${what#llama-bench-}.gguf" -p "$PROMPTS" -n "$STEPS" \
            -t "$THREADS" -r "$MIN_RUNS" -o jsonl > "$OUT_DIR/llamacpp-$STAMP.tmp" 2> /dev/null
        tag "$r" llama-bench < "$OUT_DIR/llamacpp-$STAMP.tmp" ;;
    esac
}

ORDER=""
for p in $(echo "$PAIRS" | tr ',' ' '); do
    ORDER="$ORDER inferd-${p%%:*} llamacpp-${p#*:}"
    [ "$LLAMA_BENCH" = 0 ] || ORDER="$ORDER llama-bench-${p#*:}"
done
n=$(echo "$ORDER" | wc -w)
r=1
while [ "$r" -le "$ROUNDS" ]; do
    rot=$(( (r - 1) % n ))
    for what in $(echo "$ORDER" | tr ' ' '\n' | sed '/^$/d' | awk -v k="$rot" '{a[NR-1]=$0}
        END { for (j = 0; j < NR; j++) print a[(j + k) % NR] }'); do
        echo "run_llamacpp: round $r/$ROUNDS $what" >&2
        run_one "$r" "$what"
    done
    r=$((r + 1))
done
rm -f "$OUT_DIR/llamacpp-$STAMP.tmp"

"$PYTHON" "$SUMMARY" "$OUT"
