#!/bin/sh
# make_m2m100_fixtures.sh: rebuilds tests/data/tokenizers-m2m100.tar.xz (tiny M2M100Tokenizer
# directories and transformers 4.x's references, m2m100_tokenizer.py) with PYTHON4 (default
# /work/venv-refgen4/bin/python: transformers 4.57.6, sentencepiece, protobuf).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py4=${PYTHON4:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py4" "$here/m2m100_tokenizer.py" "$work/tokenizers/t5-unigram/refs-dev.json" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - tokenizers-m2m100) | xz -9e -T1 > "$root/tests/data/tokenizers-m2m100.tar.xz"
ls -l "$root/tests/data/tokenizers-m2m100.tar.xz"
