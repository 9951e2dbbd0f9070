#!/bin/sh
# run_int4.sh - 4-bit weights against int8 on the random ~124M LLaMA of run_generate.sh, with
# int4's many-token s8 GEMM path (engine/ops/matmul_q4_gemm.c) on and off in the same run:
# "int4" is what inferd serves, "int4-kernel" the f32 weight-only kernel at every token count
# (bench-generate --q4-gemm 0, the arithmetic before that path). For ROUNDS rounds, the three
# alternating (the order rotates per round), bench-generate measures prefill tokens/s (PROMPTS)
# and decode tokens/s at STREAMS streams after a CONTEXT-token prompt. Every JSON line goes to
# $BUILD/bench-results/int4-<time>.jsonl tagged with its variant and round; the summary gives,
# per metric, each variant's median tokens/s over the rounds and the ratios int4 / int8 and
# int4 / int4-kernel, computed per round (same round, adjacent runs), as median [min, max];
# once from each measurement's median run, once from its fastest run (on a shared machine the
# fastest run is the one other processes disturbed least).
# Not part of `make test`.
#
# usage: bench/run_int4.sh [BUILD_DIR (default: build)]
# environment: THREADS (2), ROUNDS (3), PROMPTS (128,512), CONTEXT (128), STREAMS (1,16),
#              STEPS (16), MIN_RUNS (2), MIN_SECONDS (1), MODEL (DIR; default the one
#              run_generate.sh writes, made if missing), SUMMARIZE=FILE.jsonl
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PROMPTS=${PROMPTS:-128,512}
CONTEXT=${CONTEXT:-128}
STREAMS=${STREAMS:-1,16}
STEPS=${STEPS:-16}
MIN_RUNS=${MIN_RUNS:-2}
MIN_SECONDS=${MIN_SECONDS:-1}
PYTHON=/usr/bin/python3
BENCH=$BUILD/bench/bench-generate
MODEL=${MODEL:-$BUILD/bench-models/llama-lm-random}

summarize() {
    "$PYTHON" - "$1" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps, best = {}, {}  # (metric, size) -> variant -> round -> tokens/s (median run, fastest run)
for r in rows:
    size = r["prompt"] if r["metric"] == "prefill" else r["streams"]
    n_tok = size
    tps.setdefault((r["metric"], size), {}).setdefault(r["variant"], {})[r["round"]] = r["tokens_per_s"]
    best.setdefault((r["metric"], size), {}).setdefault(r["variant"], {})[r["round"]] = n_tok / (r["min_ms"] * 1e-3)
def spread(xs):
    return "%.2f [%.2f, %.2f]" % (statistics.median(xs), min(xs), max(xs)) if xs else "n/a"
def ratios(d, a, b):
    return [d[a][k] / d[b][k] for k in d.get(a, {}) if k in d.get(b, {})]
for title, table in (("median run of each measurement", tps),
                     ("fastest run of each measurement (least disturbed by other processes)", best)):
    print("\n%s: tokens/s, median over rounds; ratios per round, median [min, max]\n" % title)
    print("| metric | int8 | int4 | int4-kernel | int4 / int8 | int4 / int4-kernel |")
    print("|---|---:|---:|---:|---:|---:|")
    for (m, size), d in sorted(table.items()):
        med = lambda v: "%.1f" % statistics.median(d[v].values()) if v in d else "n/a"
        what = "prefill %d tokens" % size if m == "prefill" else "decode %d stream%s" % (size, "s" * (size > 1))
        print("| %s | %s | %s | %s | %s | %s |" % (what, med("int8"), med("int4"), med("int4-kernel"),
              spread(ratios(d, "int4", "int8")), spread(ratios(d, "int4", "int4-kernel"))))
fc = [r["foreign_cpu"] for r in rows if r.get("foreign_cpu") is not None]
if fc:
    print("\nforeign_cpu (other processes' share of the machine while timing): median %.2f, max %.2f"
          % (statistics.median(fc), max(fc)))
EOF
}

if [ -n "${SUMMARIZE:-}" ]; then
    summarize "$SUMMARIZE"
    exit 0
fi
[ -x "$BENCH" ] || { echo "run_int4: $BENCH missing (build first: ninja -C $BUILD)" >&2; exit 1; }
[ -s "$MODEL/model.safetensors" ] || "$BUILD/bench/make-random-decoder" llama "$MODEL"

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/int4-$(date +%Y%m%d-%H%M%S).jsonl
echo "run_int4: writing $OUT" >&2

run_one() { # round, variant
    case $2 in
    int8) args="--dtype int8" ;;
    int4) args="--dtype int4 --q4-gemm 1" ;;
    int4-kernel) args="--dtype int4 --q4-gemm 0" ;;
    esac
    for metric in prefill decode; do
        # shellcheck disable=SC2086
        "$BENCH" --model "$MODEL" $args --threads "$THREADS" --metrics $metric \
            --prompts "$PROMPTS" --context "$CONTEXT" --streams "$STREAMS" --steps "$STEPS" \
            --min-runs "$MIN_RUNS" --min-seconds "$MIN_SECONDS" |
            sed -n "s/^{\(.*\)}\$/{\"round\":$1,\"variant\":\"$2\",\1}/p" >> "$OUT"
    done
}

VARIANTS="int8 int4 int4-kernel"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    rot=$(( (r - 1) % 3 ))
    for v in $(echo "$VARIANTS" | tr ' ' '\n' | awk -v k="$rot" '{a[NR-1]=$0} END {
        for (j = 0; j < NR; j++) print a[(j + k) % NR] }'); do
        echo "run_int4: round $r/$ROUNDS $v" >&2
        run_one "$r" "$v"
    done
    r=$((r + 1))
done
summarize "$OUT"
