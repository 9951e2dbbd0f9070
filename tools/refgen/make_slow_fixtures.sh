#!/bin/sh
# make_slow_fixtures.sh: rebuilds tests/data/tokenizers-slow.tar.xz (slow-tokenizer files
# derived from tests/data/tokenizers.tar.xz and transformers' references for them) with
# slow_tokenizers.py. Usage: tools/refgen/make_slow_fixtures.sh [NAME ...]
# PYTHON names the venv's interpreter (default /work/venv-refgen/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py" "$here/slow_tokenizers.py" "$work/tokenizers" "$work/out" "$@"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - tokenizers-slow) | xz -9e -T1 > "$root/tests/data/tokenizers-slow.tar.xz"
ls -l "$root/tests/data/tokenizers-slow.tar.xz"
