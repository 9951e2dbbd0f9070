#!/bin/sh
# run_s2s.sh - summarization / translation models: inferd next to CTranslate2 and PyTorch
# eager, measured in the same run (issue 16).
#
# Writes two random-weight models with bench/s2s_anchor.py make (transformers' classes, fixed
# seed, save_pretrained as safetensors + a tokenizer; into $BUILD/bench-models/s2s, once,
# never committed):
#   bart    BartForConditionalGeneration, distilbart-cnn-12-6's shapes (305M parameters)
#   marian  MarianMTModel, opus-mt-en-de's shapes (74M parameters)
# and converts each with CTranslate2's own converter (TransformersConverter, float32;
# compute_type int8 quantizes at load). Then, per model:
#   1. starts one `inferd serve` holding the model once per dtype (fp32 and DTYPES, as
#      MODEL-fp32, MODEL-int8: loaded once, an idle one costs nothing) and checks that inferd
#      computes what transformers computes: CHECK sentences greedily and with 4 beams
#      (return_tensors) give exactly the ids of transformers' generate() (fp32); stops
#      otherwise. CTranslate2's agreement is reported too.
#   2. for ROUNDS rounds, each BATCHES x BEAMS setting through every engine (the order rotates
#      per round) before the next setting:
#        inferd-fp32, inferd-int8  the daemon, B requests in flight over HTTP (continuous
#                                  batching; what a client of the daemon gets, tokenization
#                                  and HTTP included)
#        ct2-fp32, ct2-int8        ctranslate2.Translator(compute_type=float32|int8,
#                                  intra_threads=THREADS, inter_threads=1).translate_batch
#                                  with max_batch_size B
#        torch                     transformers' generate() in fp32, batches of B padded
#      sentences per second over LINES_B1 (batch 1) or LINES_B16 (larger batches) sentences,
#      at most NEW_TOKENS new tokens each (random weights never stop early: every engine
#      generates NEW_TOKENS; "mean_generated" in each line shows it), after an untimed
#      warm-up of two sentences, THREADS threads each. PyTorch runs fp32 only.
#      Each line also has the CPU seconds spent (the anchor's process; the daemon's for inferd)
#      and sentences per CPU second: on a machine busy with other work, wall time mostly
#      measures the scheduler.
#      With BASE_BUILD set (another build directory of inferd, e.g. main's before a change), a
#      second daemon from it serves the same models and runs as inferd-base-fp32 and
#      inferd-base-int8 in the same rotation: a change's before and after in one run.
# Every JSON line goes to $BUILD/bench-results/s2s-<time>.jsonl; the tables at the end give
# each engine's sentences per second and per CPU second and the ratios inferd/ct2,
# inferd/torch and inferd/inferd-base (> 1: inferd faster).
# Not part of `make test`.
#
# usage: bench/run_s2s.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (1), MODELS (bart,marian), BATCHES (1,16), BEAMS (1,4),
#              DTYPES (fp32,int8), NEW_TOKENS (32), LINES_B1 (8), LINES_B16 (32), CHECK (3),
#              PYTHON (/work/venv-refgen4/bin/python: torch, transformers 4.x,
#              ctranslate2 == CT2_VERSION), CT2_VERSION (4.8.5), BASE_BUILD (none),
#              TORCH (1; 0 leaves PyTorch out: the slowest engine, not needed for inferd/ct2)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
MODELS=${MODELS:-bart,marian}
BATCHES=${BATCHES:-1,16}
BEAMS=${BEAMS:-1,4}
DTYPES=${DTYPES:-fp32,int8}
NEW_TOKENS=${NEW_TOKENS:-32}
LINES_B1=${LINES_B1:-8}
LINES_B16=${LINES_B16:-32}
CHECK=${CHECK:-3}
PYTHON=${PYTHON:-/work/venv-refgen4/bin/python}
CT2_VERSION=${CT2_VERSION:-4.8.5}
ANCHOR=$ROOT/bench/s2s_anchor.py
INFERD=$BUILD/inferd
BASE_BUILD=${BASE_BUILD:-}
TORCH=${TORCH:-1}

[ -x "$INFERD" ] || { echo "run_s2s: $INFERD missing (build first: ninja -C $BUILD)" >&2; exit 1; }
[ -z "$BASE_BUILD" ] || [ -x "$BASE_BUILD/inferd" ] ||
    { echo "run_s2s: $BASE_BUILD/inferd missing" >&2; exit 1; }
"$PYTHON" -c "import torch, transformers, ctranslate2, sys
sys.exit(ctranslate2.__version__ != '$CT2_VERSION' or transformers.__version__[0] != '4')" || {
    echo "run_s2s: $PYTHON needs torch, transformers 4.x and ctranslate2==$CT2_VERSION" \
        "(pip install -r tools/refgen/requirements-4x.txt ctranslate2==$CT2_VERSION)" >&2
    exit 1
}

# 1. The models and their CTranslate2 conversions (written once).
MODEL_DIR=$BUILD/bench-models/s2s
mkdir -p "$MODEL_DIR"
if [ ! -s "$MODEL_DIR/bart/model.safetensors" ] || [ ! -s "$MODEL_DIR/marian/model.safetensors" ]; then
    tok=$(mktemp -d)
    tar -xJf "$ROOT/tests/data/tokenizers.tar.xz" -C "$tok"
    tar -xJf "$ROOT/tests/data/tokenizers-marian.tar.xz" -C "$tok"
    "$PYTHON" "$ANCHOR" make "$MODEL_DIR" "$tok/tokenizers" "$tok/tokenizers-marian/marian"
    rm -rf "$tok"
fi
for m in $(echo "$MODELS" | tr ',' ' '); do
    if [ ! -s "$MODEL_DIR/$m-ct2/model.bin" ]; then
        echo "run_s2s: converting $m with CTranslate2 $CT2_VERSION" >&2
        "$PYTHON" "$ANCHOR" convert "$MODEL_DIR/$m" "$MODEL_DIR/$m-ct2"
    fi
done

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$OUT_DIR/s2s-$STAMP.jsonl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferd-s2s.XXXXXX")
echo "run_s2s: writing $OUT" >&2
"$PYTHON" "$ANCHOR" sentences "$CHECK" "$WORK/check.jsonl"
"$PYTHON" "$ANCHOR" sentences "$LINES_B1" "$WORK/lines-b1.jsonl"
"$PYTHON" "$ANCHOR" sentences "$LINES_B16" "$WORK/lines-bn.jsonl"

SERVER_PID=
BASE_PID=
stop_server() {
    for p in $SERVER_PID $BASE_PID; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    SERVER_PID=
    BASE_PID=
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts `inferd serve` with model $1 once per dtype of fp32 + DTYPES, named $1-DTYPE (an idle
# one costs no CPU; an hour's request timeout: the default 30 s is too short for a batch of
# beams on a busy machine); BASE set to its address (POST $BASE/models/$1-DTYPE). With
# BASE_BUILD, the same from that build too, its address in BASE_OLD.
start_server() {
    max_b=$(echo "$BATCHES" | tr ',' '\n' | sort -n | tail -n 1)
    max_k=$(echo "$BEAMS" | tr ',' '\n' | sort -n | tail -n 1)
    slots=$((max_b * max_k))
    [ "$slots" -ge 32 ] || slots=32
    : > "$WORK/serve.log"
    printf 'server:\n  host: 127.0.0.1\n  port: 0\n  request_timeout_ms: 3600000\nmodels:\n' \
        > "$WORK/serve.yaml"
    for d in $(printf 'fp32\n%s\n' "$(echo "$DTYPES" | tr ',' '\n')" | awk '!seen[$0]++'); do
        printf '  - name: %s-%s\n    path: %s\n    task: text2text-generation\n    dtype: %s\n    workers: 1\n    threads: %s\n    batching:\n      max_batch_size: %s\n' \
            "$1" "$d" "$MODEL_DIR/$1" "$d" "$THREADS" "$slots" >> "$WORK/serve.yaml"
    done
    "$INFERD" serve --config "$WORK/serve.yaml" 2> "$WORK/serve.log" &
    SERVER_PID=$!
    BASE=$(wait_ready "$SERVER_PID" "$WORK/serve.log" "$1") || exit 1
    BASE_OLD=
    [ -n "$BASE_BUILD" ] || return 0
    "$BASE_BUILD/inferd" serve --config "$WORK/serve.yaml" 2> "$WORK/serve-base.log" &
    BASE_PID=$!
    BASE_OLD=$(wait_ready "$BASE_PID" "$WORK/serve-base.log" "$1") || exit 1
}

# Prints the address of daemon $1 (its log $2) once it is ready.
wait_ready() {
    url=
    i=0
    while [ $i -lt 2400 ]; do
        kill -0 "$1" 2>/dev/null || { cat "$2" >&2; return 1; }
        [ -n "$url" ] || url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$2" | head -n 1)
        if [ -n "$url" ] && curl -sf "$url/ready" >/dev/null 2>&1; then
            echo "$url"
            return 0
        fi
        sleep 0.5
        i=$((i + 1))
    done
    echo "run_s2s: the daemon did not get ready on $3" >&2
    cat "$2" >&2
    return 1
}

tag() { # round
    sed -n "s/^{\(.*\)}\$/{\"round\":$1,\1}/p" | tee -a "$OUT"
}

printf '{"round":0,"engine":"machine","cpu":"%s","cores":%s,"threads":%s,"load":"%s"}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(nproc)" "$THREADS" \
    "$(cut -d ' ' -f 1-3 /proc/loadavg)" >> "$OUT"

lines_for() { [ "$1" -eq 1 ] && echo "$WORK/lines-b1.jsonl" || echo "$WORK/lines-bn.jsonl"; }

# Per model: one daemon (every dtype), 2. inferd computes transformers' ids (fp32, greedy and
# 4 beams), 3. the rounds, each batch x beams setting running every engine (rotated per
# round) before the next setting, so a stopped run still has whole rows.
for m in $(echo "$MODELS" | tr ',' ' '); do
    start_server "$m"
    echo "run_s2s: checking inferd against transformers on $m" >&2
    if ! "$PYTHON" "$ANCHOR" check --model "$MODEL_DIR/$m" --url "$BASE/models/$m-fp32" \
        --sentences "$WORK/check.jsonl" --new-tokens "$NEW_TOKENS" --threads "$THREADS" \
        --ct2 "$MODEL_DIR/$m-ct2" > "$WORK/check.out"; then
        tag 0 < "$WORK/check.out"
        echo "run_s2s: inferd and transformers disagree on $m" >&2
        exit 1
    fi
    tag 0 < "$WORK/check.out"
    engines=
    [ "$TORCH" = 0 ] || engines="torch"
    for d in $(echo "$DTYPES" | tr ',' ' '); do
        engines="$engines ct2-$d inferd-$d"
        [ -z "$BASE_BUILD" ] || engines="$engines base-$d"
    done
    n=$(echo "$engines" | wc -w)
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        rot=$(( (r - 1) % n ))
        order=$(echo "$engines" | tr ' ' '\n' | awk -v k="$rot" '{a[NR-1]=$0} END {
            for (j = 0; j < NR; j++) print a[(j + k) % NR] }')
        for b in $(echo "$BATCHES" | tr ',' ' '); do
            for k in $(echo "$BEAMS" | tr ',' ' '); do
                for e in $order; do
                    echo "run_s2s: round $r/$ROUNDS $m batch $b beams $k $e" >&2
                    common="--sentences $(lines_for "$b") --batch $b --beams $k --new-tokens $NEW_TOKENS --threads $THREADS"
                    case $e in
                    torch)
                        # shellcheck disable=SC2086
                        "$PYTHON" "$ANCHOR" torch --model "$MODEL_DIR/$m" $common | tag "$r" ;;
                    ct2-*)
                        ct=float32
                        [ "$e" = ct2-int8 ] && ct=int8
                        # shellcheck disable=SC2086
                        "$PYTHON" "$ANCHOR" ct2 --model "$MODEL_DIR/$m-ct2" --hf "$MODEL_DIR/$m" \
                            --compute-type "$ct" $common | tag "$r" ;;
                    inferd-*)
                        # shellcheck disable=SC2086
                        "$PYTHON" "$ANCHOR" inferd --url "$BASE/models/$m-${e#inferd-}" \
                            --model "$m" --compute-type "${e#inferd-}" $common | tag "$r" ;;
                    base-*)
                        # shellcheck disable=SC2086
                        "$PYTHON" "$ANCHOR" inferd --url "$BASE_OLD/models/$m-${e#base-}" \
                            --model "$m" --compute-type "${e#base-}" --label inferd-base \
                            $common | tag "$r" ;;
                    esac
                done
            done
        done
        r=$((r + 1))
    done
    stop_server
done

"$PYTHON" "$ANCHOR" summarize "$OUT"
