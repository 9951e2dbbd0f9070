#!/bin/sh
# run_perplexity.sh - what inferd's reduced precisions cost in perplexity on real text: a small
# LLaMA trained on Vim's user manual (tools/refgen/train_tiny_llama.py, into
# $BUILD/tiny-llama-vim once; ~20 CPU minutes on a busy 2-core machine, needs VENV with the
# pinned tools/refgen/requirements.txt) is scored on its held-out split by bench/perplexity.c at
# fp32, bf16, int8 and int4 (and int4 with its many-token s8 path off, "int4-kernel": the f32
# weight-only arithmetic), sliding windows of 256 tokens every 128 as transformers' perplexity
# guide. inferd's fp32 perplexity must match transformers' (reference.json, written by the
# training script: token count equal, perplexity within 1e-4 relative) or the run stops; the
# int4-kernel line is set next to transformers on the same 4-bit weights, dequantized
# (tools/refgen/q4_perplexity.py, reference-int4.json).
# Lines go to $BUILD/bench-results/perplexity-<time>.jsonl; the summary prints each dtype's
# perplexity and its change against fp32 as Markdown. Not part of `make test`.
#
# usage: bench/run_perplexity.sh [BUILD_DIR (default: build)]
# environment: VENV (/work/venv-refgen), THREADS (2), DTYPES (fp32,bf16,int8,int4,int4-kernel)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
VENV=${VENV:-/work/venv-refgen}
THREADS=${THREADS:-2}
DTYPES=${DTYPES:-fp32,bf16,int8,int4,int4-kernel}
TOOL=$BUILD/bench/perplexity
MODEL=$BUILD/tiny-llama-vim

[ -x "$TOOL" ] || { echo "run_perplexity: $TOOL missing (build first: ninja -C $BUILD)" >&2; exit 1; }
if [ ! -s "$MODEL/reference.json" ]; then
    echo "run_perplexity: training $MODEL (tools/refgen/train_tiny_llama.py)" >&2
    "$VENV/bin/python" "$ROOT/tools/refgen/train_tiny_llama.py" "$MODEL" >&2
fi
if [ ! -s "$MODEL/reference-int4.json" ]; then
    echo "run_perplexity: transformers on the 4-bit weights (tools/refgen/q4_perplexity.py)" >&2
    "$VENV/bin/python" "$ROOT/tools/refgen/q4_perplexity.py" "$MODEL" > "$MODEL/reference-int4.json.tmp"
    mv "$MODEL/reference-int4.json.tmp" "$MODEL/reference-int4.json"
fi

OUT_DIR=$BUILD/bench-results
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/perplexity-$(date +%Y%m%d-%H%M%S).jsonl
echo "run_perplexity: writing $OUT" >&2
for d in $(echo "$DTYPES" | tr ',' ' '); do
    case $d in
    int4-kernel) args="--dtype int4 --q4-gemm 0" ;;
    *) args="--dtype $d" ;;
    esac
    echo "run_perplexity: $d" >&2
    # shellcheck disable=SC2086
    "$TOOL" --model "$MODEL" --text "$MODEL/heldout.txt" --threads "$THREADS" $args >> "$OUT"
done

/usr/bin/python3 - "$OUT" "$MODEL/reference.json" "$MODEL/reference-int4.json" <<'EOF'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ref = json.load(open(sys.argv[2]))
ref4 = json.load(open(sys.argv[3]))
name = lambda r: r["dtype"] + ("-kernel" if r["dtype"] == "int4" and not r["q4_gemm"] else "")
by = {name(r): r for r in rows}
print("model: %s (%s, %d steps, seed %d), held-out %d tokens, windows %d / stride %d; %s" % (
    rows[0]["model"], ref["source"], ref["steps"], ref["seed"], ref["heldout_tokens"],
    ref["max_length"], ref["stride"],
    ", ".join("%s %s" % kv for kv in sorted(ref["versions"].items()))))
print("transformers fp32 perplexity: %.4f; on the 4-bit round-to-nearest weights: %.4f\n"
      % (ref["perplexity_fp32"], ref4["perplexity_int4_rtn"]))
print("| dtype | perplexity | change vs fp32 |")
print("|---|---:|---:|")
base = by.get("fp32")
for n, r in by.items():
    ch = "%+.4f (%+.2f%%)" % (r["perplexity"] - base["perplexity"],
                             100 * (r["perplexity"] / base["perplexity"] - 1)) if base else "n/a"
    print("| %s | %.4f | %s |" % (n, r["perplexity"], ch))
if base:
    rel = abs(base["perplexity"] / ref["perplexity_fp32"] - 1)
    ok = base["tokens"] == ref["heldout_tokens"] and base["scored"] == ref["scored_tokens"] and rel <= 1e-4
    print("\ninferd fp32 vs transformers: tokens %d vs %d, scored %d vs %d, perplexity relative "
          "difference %.2e: %s" % (base["tokens"], ref["heldout_tokens"], base["scored"],
                                   ref["scored_tokens"], rel, "ok" if ok else "MISMATCH"))
    k = by.get("int4-kernel")
    if k:
        print("inferd int4-kernel vs transformers on the same 4-bit weights: relative difference %.2e"
              % abs(k["perplexity"] / ref4["perplexity_int4_rtn"] - 1))
    sys.exit(0 if ok else 1)
EOF
