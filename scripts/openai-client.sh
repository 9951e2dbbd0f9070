#!/bin/sh
# openai-client: the official `openai` npm client (pinned with a package-lock in
# tests/integration/openai-client/) against a running inferd: tests/integration/openai_client.mjs
# streams a chat completion and a completion and checks them against the plain (greedy) answers.
# The package is installed once into $INFERD_CI_CACHE/openai-client (default
# /var/cache/inferd-ci; a per-user temp dir when that is not writable) with `npm ci`; later runs
# are offline. Node.js and npm come from apt when missing.
#
# Usage: scripts/openai-client.sh --install          (make deps)
#        scripts/openai-client.sh BASE_URL MODEL     (the serve_generate suite)
set -eu
cd "$(dirname "$0")/.."
SRC=tests/integration/openai-client
CACHE=${INFERD_CI_CACHE:-/var/cache/inferd-ci}
DIR=$CACHE/openai-client
if ! { mkdir -p "$DIR" 2> /dev/null && [ -w "$DIR" ]; }; then
    DIR=${TMPDIR:-/tmp}/inferd-openai-client-$(id -u)
    mkdir -p "$DIR"
fi

if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "openai-client: installing nodejs and npm"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        nodejs npm > /dev/null ||
        { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install \
            -y -qq --no-install-recommends nodejs npm > /dev/null; }
fi

if ! { [ -f "$DIR/.installed" ] && cmp -s "$SRC/package-lock.json" "$DIR/package-lock.json"; }; then
    echo "openai-client: npm ci of the openai client into $DIR (once)"
    rm -f "$DIR/.installed"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error --prefer-offline > npm.log 2>&1) ||
        { cat "$DIR/npm.log"; exit 1; }
    touch "$DIR/.installed"
fi
[ "${1:-}" = "--install" ] && exit 0
exec node tests/integration/openai_client.mjs "$DIR" "$@"
