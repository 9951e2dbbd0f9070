#!/bin/sh
# make_bart_fixtures.sh: rebuilds tests/data/models-issue16-bart.tar.xz (models/s2s-* and
# refs/s2s-*.json) with tools/refgen/bart_family.py under transformers 4.x (README.md,
# "transformers 4"). PYTHON names the venv's interpreter (default /work/venv-refgen4/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py" "$here/bart_family.py" "$work/tokenizers" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - models refs) | xz -9e -T1 > "$root/tests/data/models-issue16-bart.tar.xz"
ls -l "$root/tests/data/models-issue16-bart.tar.xz"
