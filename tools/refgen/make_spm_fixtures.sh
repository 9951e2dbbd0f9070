#!/bin/sh
# make_spm_fixtures.sh: rebuilds tests/data/tokenizers-spm.tar.xz (sentencepiece-model
# tokenizer directories derived from tests/data/tokenizers.tar.xz and transformers' references
# for them) with spm_tokenizers.py: the references with transformers 5 (PYTHON, default
# /work/venv-refgen/bin/python), the slow sentencepiece tokenizer's with transformers 4.x
# (PYTHON4, default /work/venv-refgen4/bin/python). Both need sentencepiece and protobuf.
# Usage: tools/refgen/make_spm_fixtures.sh [NAME ...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
py4=${PYTHON4:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py" "$here/spm_tokenizers.py" "$work/tokenizers" "$work/out" "$@"
"$py4" "$here/spm_tokenizers.py" --slow "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - tokenizers-spm) | xz -9e -T1 > "$root/tests/data/tokenizers-spm.tar.xz"
ls -l "$root/tests/data/tokenizers-spm.tar.xz"
