#!/bin/sh
# make_fixtures.sh: rebuilds tests/data/models-issue14-{encoders,decoders,qwen3}.tar.xz from
# tools/refgen (README.md).
# Usage: tools/refgen/make_fixtures.sh [MODEL ...]   (no names: every row of families.py)
# PYTHON names the venv's interpreter (default /work/venv-refgen/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py" "$here/refgen.py" "$work/tokenizers" "$work/out" "$@"
# deterministic archive: sorted names, fixed owner and time; -9e's 64 MiB dictionary lets the
# repeated tokenizer files and shared embeddings of neighbouring directories cost nothing
pack() { # archive-name dir-glob...
    name=$1
    shift
    (cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
        -cf - $(cd "$work/out" && for g in "$@"; do ls -d models/$g 2>/dev/null; done)) |
        xz -9e -T1 > "$root/tests/data/$name"
    ls -l "$root/tests/data/$name"
}
pack models-issue14-encoders.tar.xz 'deberta-*' 'mpnet-*' 'modernbert-*'
pack models-issue14-decoders.tar.xz 'gemma*' 'phi3-*' 'mistral-*'
pack models-issue14-qwen3.tar.xz 'qwen3-*'

