#!/bin/sh
# make_lang_fixtures.sh: rebuilds tests/data/tokenizers-lang.tar.xz (tokenizers with
# language codes and transformers 4.x's translation inputs, lang_tokenizers.py) and
# tests/data/models-issue16-lang.tar.xz (tiny translators with them, lang_pipelines.py) with PYTHON4 (default
# /work/venv-refgen4/bin/python: transformers 4.57.6, sentencepiece, protobuf).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py4=${PYTHON4:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py4" "$here/lang_tokenizers.py" "$work/tokenizers/xlmr-unigram" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - tokenizers-lang) | xz -9e -T1 > "$root/tests/data/tokenizers-lang.tar.xz"
ls -l "$root/tests/data/tokenizers-lang.tar.xz"
# the tiny translators with those tokenizers and their pipeline outputs (lang_pipelines.py)
mkdir -p "$work/lang"
tar -xJf "$root/tests/data/tokenizers-lang.tar.xz" -C "$work/lang"
"$py4" "$here/lang_pipelines.py" "$work/lang/tokenizers-lang" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - models-lang) | xz -9e -T1 > "$root/tests/data/models-issue16-lang.tar.xz"
ls -l "$root/tests/data/models-issue16-lang.tar.xz"
