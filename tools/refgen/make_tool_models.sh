#!/bin/sh
# make_tool_models.sh: rebuilds tests/data/tool-models.tar.xz (tool_models.py: two tiny decoders
# whose greedy answer is a tool call, with transformers' references; README.md). Their
# tokenizer.json files are left out: the tests link Qwen3's from models-issue14-qwen3.tar.xz
# and Llama 3's from tokenizers.tar.xz, the files tool_models.py copied.
# PYTHON names the venv's interpreter (default /work/venv-refgen/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
tar -xJf "$root/tests/data/models-issue14-qwen3.tar.xz" -C "$work"
"$py" "$here/tool_models.py" "$work/tokenizers" "$work/models/qwen3-lm" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    --exclude=tokenizer.json -cf - models) | xz -9e -T1 > "$root/tests/data/tool-models.tar.xz"
ls -l "$root/tests/data/tool-models.tar.xz"
