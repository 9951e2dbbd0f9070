#!/bin/sh
# fuzz.sh: make fuzz. Installs clang and libFuzzer when missing (scripts/deps.sh --fuzz), builds
# the harnesses of tests/fuzz with clang -fsanitize=fuzzer,address,undefined in BUILD (its own
# build directory), then runs each for SECONDS on its working corpus BUILD/fuzz-run/NAME/corpus:
# the committed seeds plus what earlier runs in BUILD found (FUZZ_FRESH=1 starts from the
# seeds alone; the tree's corpus is never written). Prints per harness libFuzzer's final
# "#N DONE cov: ..." line and appends it to BUILD/fuzz-run/ledger.tsv (date, harness,
# seconds, executions, coverage, outcome, CPU seconds when /usr/bin/time is there: the fuzzing
# time a build directory has accumulated, on a busy machine less CPU than wall); exits 1
# naming the reproducer (BUILD/fuzz-run/NAME/crash-*, leak-*, timeout-*, oom-*) when any
# harness crashed, leaked, hung or ran out of memory.
# Usage: fuzz.sh BUILD SECONDS [HARNESS...] (default: every harness).
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
ALL="chat_template tokenizer config_yaml model_json safetensors gen_params pipeline pickle spm"
HARNESSES=${*:-$ALL}

# Largest input per harness, in bytes: room for the seeds and their growth, no more.
max_len() {
    case "$1" in
    chat_template | tokenizer) echo 16384 ;;
    config_yaml | spm) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

sh scripts/deps.sh --fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
targets=""
for h in $HARNESSES; do targets="$targets tests/fuzz/fuzz_$h"; done
# shellcheck disable=SC2086
if ! ninja -C "$BUILD" $targets >"$BUILD/fuzz-build.log" 2>&1; then
    cat "$BUILD/fuzz-build.log"
    exit 1
fi

# the pipeline harness loads the small BERT fixtures once
fixtures="$BUILD/fuzz-fixtures"
if [ ! -f "$fixtures/.unpacked" ]; then
    rm -rf "$fixtures" && mkdir -p "$fixtures"
    tar -xJf tests/data/models-bert.tar.xz -C "$fixtures" && touch "$fixtures/.unpacked"
fi
export INFERD_FUZZ_MODELS="$PWD/$fixtures/models"
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

failed=""
for h in $HARNESSES; do
    run="$BUILD/fuzz-run/$h"
    if [ "${FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$run"; fi
    mkdir -p "$run/corpus"
    cp tests/fuzz/corpus/"$h"/* "$run/corpus/"
    dict=""
    [ -f "tests/fuzz/dict/$h.dict" ] && dict="-dict=tests/fuzz/dict/$h.dict"
    rc=0
    timer=""
    [ -x /usr/bin/time ] && timer="/usr/bin/time -f %U+%S -o $run/cpu"
    rm -f "$run/cpu"
    # shellcheck disable=SC2086
    $timer "$BUILD/tests/fuzz/fuzz_$h" "$run/corpus" $dict -max_total_time="$SECONDS_EACH" \
        -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$h")" \
        -artifact_prefix="$run/" -print_final_stats=1 >"$run/log" 2>&1 || rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$run/log" | tail -n 1 || true)
    execs=$(printf '%s' "$done_line" | sed -n 's/^#\([0-9]*\).*/\1/p')
    cov=$(printf '%s' "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    cpu=-
    [ -s "$run/cpu" ] && cpu=$(tail -n 1 "$run/cpu" | sed 's/[^0-9.+]//g' | awk -F+ '{ printf "%.0f", $1 + $2 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$h" "$SECONDS_EACH" \
        "${execs:-0}" "${cov:-0}" "$([ "$rc" -eq 0 ] && echo ok || echo finding)" "$cpu" \
        >>"$BUILD/fuzz-run/ledger.tsv"
    if [ "$rc" -eq 0 ]; then
        echo "fuzz: $h: ${done_line:-no DONE line (see $run/log)}"
    else
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$run/log" | tail -n 1)
        echo "fuzz: $h: FAILED (exit $rc): ${crash:-no reproducer written}; log: $run/log"
        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|ALARM' "$run/log" | head -n 5 || true
        failed="$failed $h"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
echo "fuzz: every harness ran ${SECONDS_EACH}s without a finding"
