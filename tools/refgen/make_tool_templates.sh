#!/bin/sh
# make_tool_templates.sh: rebuilds tests/data/tool-templates.tar.xz (tool_templates.py: the
# chat templates with tools, rendered by transformers; README.md).
# PYTHON names the venv's interpreter (default /work/venv-refgen/bin/python).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${PYTHON:-/work/venv-refgen/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tar -xJf "$root/tests/data/tokenizers.tar.xz" -C "$work"
"$py" "$here/tool_templates.py" "$work/tokenizers" "$work/out"
(cd "$work/out" && tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner \
    -cf - tool-templates) | xz -9e -T1 > "$root/tests/data/tool-templates.tar.xz"
ls -l "$root/tests/data/tool-templates.tar.xz"
