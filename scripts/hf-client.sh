#!/bin/sh
# hf-client: the real Python clients from PyPI, pinned in tests/integration/hf-client/
# requirements.txt: `huggingface_hub` (the Hub client, for the hub_client suite's cross-checks
# against inferd's hub/, tests/integration/hf_client.py; and its InferenceClient), `openai` and
# LangChain's `langchain-openai`, for the clients suite against a running inferd
# (tests/integration/clients.py). One virtual environment under the build directory,
# BUILD/hf-client, made once with Debian's python3 (python3-venv comes from apt when missing)
# and `pip install --no-deps` of the pinned list; later runs are offline. `make run` never
# installs it.
#
# Usage: scripts/hf-client.sh --install BUILD         (make deps-test)
#        scripts/hf-client.sh BUILD hub ARGS...       (the hub_client suite: hf_client.py ARGS)
#        scripts/hf-client.sh BUILD clients ARGS...   (the clients suite: clients.py ARGS)
set -eu
cd "$(dirname "$0")/.."
REQ=tests/integration/hf-client/requirements.txt
install=0
if [ "${1:-}" = "--install" ]; then
    install=1
    shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--install] BUILD [hub|clients ARGS...]" >&2; exit 2; }
BUILD=$1
shift
mkdir -p "$BUILD"
VENV=$(cd "$BUILD" && pwd)/hf-client

if ! command -v python3 > /dev/null || ! python3 -c 'import ensurepip, venv' 2> /dev/null; then
    # installing system packages is make deps-test's business, never a test run's
    [ "$install" = 1 ] || { echo "hf-client: python3-venv missing (run make deps-test)"; exit 1; }
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "hf-client: installing python3 and python3-venv"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv > /dev/null ||
        { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install \
            -y -qq --no-install-recommends python3 python3-venv > /dev/null; }
fi

if ! { [ -f "$VENV/.installed" ] && cmp -s "$REQ" "$VENV/requirements.txt"; }; then
    echo "hf-client: huggingface_hub, openai and langchain-openai into $VENV (once)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    cp "$REQ" "$VENV/requirements.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        -r "$VENV/requirements.txt" > "$VENV/pip.log" 2>&1 ||
        { cat "$VENV/pip.log"; echo "hf-client: pip install failed (no network to PyPI?)"; exit 1; }
    touch "$VENV/.installed"
fi
[ "$install" = 1 ] && exit 0
case "${1:-}" in
hub) shift; exec "$VENV/bin/python" tests/integration/hf_client.py "$@" ;;
clients) shift; exec "$VENV/bin/python" tests/integration/clients.py "$@" ;;
*) echo "usage: $0 BUILD hub|clients [ARGS...]" >&2; exit 2 ;;
esac
