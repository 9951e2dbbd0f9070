#!/bin/sh
# make_beam_fixtures.sh: rebuilds tests/data/models-issue16-beams.tar.xz (models/bart-s2s and
# beams/*.json) with tools/refgen/beams.py under transformers 4.x (README.md, "transformers 4").
# PYTHON names the venv's interpreter (default /work/venv-refgen4/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
tar -xJf "$root/tests/data/models-other.tar.xz" -C "$work" models/llama-lm models/t5-s2s
"$py" "$here/beams.py" "$work/tokenizers" "$work" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - models beams) | xz -9e -T1 > "$root/tests/data/models-issue16-beams.tar.xz"
ls -l "$root/tests/data/models-issue16-beams.tar.xz"
