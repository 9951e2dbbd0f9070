#!/bin/sh
# make_pipeline_refs.sh: rebuilds tests/data/issue16-pipelines.tar.xz (pipelines/s2s.json) with
# tools/refgen/s2s_pipelines.py under transformers 4.x (README.md, "transformers 4"), then its
# llama text-generation calls again under transformers 5 (PYTHON5, default /work/venv-refgen):
# transformers 5's pipeline decodes the new ids alone, as inferd's HF route does.
# PYTHON names the venv's interpreter (default /work/venv-refgen4/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen4/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/models-other.tar.xz" -C "$work" models/llama-lm models/t5-s2s
"$py" "$here/s2s_pipelines.py" "$work" "$work/out"
"${PYTHON5:-/work/venv-refgen/bin/python}" "$here/s2s_pipelines.py" "$work" "$work/out" --llama
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - pipelines) | xz -9e -T1 > "$root/tests/data/issue16-pipelines.tar.xz"
ls -l "$root/tests/data/issue16-pipelines.tar.xz"
