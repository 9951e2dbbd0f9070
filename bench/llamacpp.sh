#!/bin/sh
# llamacpp.sh - fetches llama.cpp's source and builds what the llama.cpp anchor of the generation
# benchmark needs (bench/run_llamacpp.sh), into BUILD_DIR/bench-llamacpp. A benchmark tool only:
# inferd never links, loads or needs llama.cpp; `make build` never runs this.
#
# The source: the llama-cpp-python sdist pinned below, from PyPI (`pip download`), which vendors
# llama.cpp's whole source tree in vendor/llama.cpp; its sha256 is checked. Built with cmake
# (Ninja), Release, CPU only, GGML_NATIVE on (-march=native, as the benchmark machine runs it),
# no OpenSSL or other network code, shared libraries. On a CPU with AMX, AMX is left out
# (AMX=1 keeps it): ggml's AMX kernels (Q8_0/Q4_0 matmuls) died of SIGILL at ldtilecfg on the
# development machine, so there GGML_NATIVE is off and the other extensions are named one by
# one (docs/DECISIONS.md). Only the targets used:
#   libllama (+ libggml*)   the C API, for llamacpp-bench (bench/llamacpp_bench.c, compiled here
#                           against it with an rpath)
#   llama-bench             llama.cpp's own benchmark (LLAMA_BENCH=0 leaves it out: it pulls in
#                           llama.cpp's common library, about half the build)
# Idempotent: each step is skipped when its output exists and is newer than its input, so a
# second run costs nothing. Needs cmake, ninja, a C++ compiler and pip (scripts/deps.sh
# --llamacpp installs them; `make bench-llamacpp` runs that first).
#
# usage: bench/llamacpp.sh [BUILD_DIR (default: build)]
# environment: JOBS (2), LLAMA_BENCH (1), AMX (0)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
JOBS=${JOBS:-2}
LLAMA_BENCH=${LLAMA_BENCH:-1}
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
DIR=$BUILD/bench-llamacpp
SDIST=$DIR/llama_cpp_python-$VERSION.tar.gz
SRC=$DIR/llama_cpp_python-$VERSION/vendor/llama.cpp
OUT=$DIR/cmake-build
DRIVER=$DIR/llamacpp-bench

for tool in cmake ninja c++ cc python3; do
    command -v "$tool" > /dev/null || {
        echo "llamacpp: $tool missing (sh scripts/deps.sh --llamacpp installs it)" >&2
        exit 1
    }
done
mkdir -p "$DIR"

# 1. The source (downloaded once, checked, unpacked once).
if [ ! -s "$SDIST" ]; then
    echo "llamacpp: downloading llama-cpp-python $VERSION (its sdist vendors llama.cpp)" >&2
    python3 -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==$VERSION" -d "$DIR" >&2
fi
echo "$SHA256  $SDIST" | sha256sum -c --quiet - || {
    echo "llamacpp: $SDIST: sha256 mismatch (remove it to download again)" >&2
    exit 1
}
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    tar -xzf "$SDIST" -C "$DIR"
fi

# 2. The CPU flags: -march=native, except on a CPU with AMX (unless AMX=1): there GGML_NATIVE
#    is off and every ISA extension /proc/cpuinfo lists that ggml has a switch for is named.
ISA="-DGGML_NATIVE=ON"
if grep -qw amx_tile /proc/cpuinfo && [ "${AMX:-0}" != 1 ]; then
    ISA="-DGGML_NATIVE=OFF"
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
        avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
        grep -qw "${pair%%:*}" /proc/cpuinfo && ISA="$ISA -DGGML_${pair#*:}=ON"
    done
fi

# 3. Configure (again only when the options change).
ARGS="-G Ninja -DCMAKE_BUILD_TYPE=Release $ISA -DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=OFF
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF"
if [ ! -f "$OUT/build.ninja" ] || [ "$(cat "$DIR/cmake.args" 2> /dev/null)" != "$ARGS" ]; then
    # shellcheck disable=SC2086
    cmake -S "$SRC" -B "$OUT" $ARGS > "$DIR/cmake.log" 2>&1 || {
        echo "llamacpp: cmake failed (see $DIR/cmake.log)" >&2
        exit 1
    }
    printf '%s' "$ARGS" > "$DIR/cmake.args"
fi

# 4. Only the targets used (ninja itself skips what is up to date).
targets=llama
[ "$LLAMA_BENCH" = 0 ] || targets="llama llama-bench"
echo "llamacpp: building $targets (ninja -j$JOBS; the first build takes a while)" >&2
# shellcheck disable=SC2086
ninja -C "$OUT" -j "$JOBS" $targets > "$DIR/ninja.log" 2>&1 || {
    tail -n 20 "$DIR/ninja.log" >&2
    exit 1
}

# 5. The C driver against libllama.
LIB=$(dirname "$(find "$OUT" -name 'libllama.so' | head -n 1)")
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2> /dev/null || echo unknown)
if [ ! -x "$DRIVER" ] || [ "$ROOT/bench/llamacpp_bench.c" -nt "$DRIVER" ] ||
    [ "$ROOT/bench/bench_stats.c" -nt "$DRIVER" ] ||
    [ "$LIB/libllama.so" -nt "$DRIVER" ]; then
    cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -I"$SRC/include" -I"$SRC/ggml/include" \
        -DLLAMACPP_VERSION="\"llama-cpp-python $VERSION, llama.cpp $COMMIT\"" \
        "$ROOT/bench/llamacpp_bench.c" "$ROOT/bench/bench_stats.c" -o "$DRIVER" -L"$LIB" -lllama -lggml -lggml-base \
        -Wl,-rpath,"$LIB"
fi
echo "llamacpp: ready: $DRIVER$( [ "$LLAMA_BENCH" = 0 ] || echo ", $LIB/llama-bench")" >&2
