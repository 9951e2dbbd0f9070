#!/bin/sh
# make_q4_fixtures.sh: rebuilds tests/data/models-issue18-q4.tar.xz (models/awq-llama-lm,
# gptq-llama-lm and two refused variants) with tools/refgen/q4_checkpoints.py from the llama-lm
# fixture of tests/data/models-other.tar.xz. AutoAWQ's dequantize_gemm (the oracle's AWQ
# unpacking) comes from the autoawq 0.2.9 sdist, fetched with pip into the work directory and
# loaded by path (only torch is imported). PYTHON names the venv's interpreter (default
# /work/venv-refgen/bin/python: transformers 5.17.0, torch 2.11.0, numpy 2.4.6, safetensors 0.8.0).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/models-other.tar.xz" -C "$work" models/llama-lm
"$py" -m pip download --quiet --no-deps --no-binary :all: -d "$work" autoawq==0.2.9
tar -xzf "$work/autoawq-0.2.9.tar.gz" -C "$work"
"$py" "$here/q4_checkpoints.py" "$work/models/llama-lm" "$work/out" "$work/autoawq-0.2.9"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - models) | xz -9e -T1 > "$root/tests/data/models-issue18-q4.tar.xz"
ls -l "$root/tests/data/models-issue18-q4.tar.xz"
