#!/bin/bash
# check-deploy: the deployment files tested as far as this machine allows (make test-deploy).
#
#   1. k8s-schema: every manifest of deploy/kubernetes/ against the Kubernetes API schemas
#      (scripts/k8s-validate.mjs: OpenAPI validators of kubernetes-models plus a TypeScript
#      check on kubernetes-types that refuses unknown fields), the manifests' agreement with
#      the config and the Dockerfile, and negative copies that must be refused. The npm
#      packages are installed once, pinned, into $INFERD_CI_CACHE/k8s-tools; later runs are
#      offline.
#   2. k8s-config: the ConfigMap's inferd.yaml served by the real daemon (paths moved to this
#      tree, a key file in place of the Secret): GET /ready answers 200 without a
#      key, as the kubelet's probes and Prometheus ask; a model route answers 401 without the
#      key and 200 with it; SIGTERM drains and exits 0.
#   3. systemd: `systemd-analyze verify` on the unit (ExecStart moved to build/inferd) with no
#      warning, and `systemd-analyze security --offline` at exposure <= 2.0. Skipped, with a
#      notice, where systemd-analyze is missing.
#   4. docker: the Dockerfile built and run in Debian 12 chroots (scripts/docker-chroot-test.sh,
#      about a minute once the base tarball is cached). SKIP_DOCKER=1 leaves it out.
#
# Usage: scripts/check-deploy.sh [BUILD_DIR]   (BUILD_DIR holds the inferd binary; default build)
# Ends with "deploy: N passed, N failed"; exit status 1 when a check failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
CACHE=${INFERD_CI_CACHE:-/var/cache/inferd-ci}
OUT=$BUILD/deploy-check
mkdir -p "$OUT"
passed=0
failed=0
failed_names=""

# check NAME CMD...: runs CMD, counts it
check() {
    local name=$1
    shift
    local t0=$SECONDS
    if "$@"; then
        echo "deploy: PASS $name ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        echo "deploy: FAIL $name ($((SECONDS - t0)) s)"
        failed=$((failed + 1))
        failed_names="$failed_names $name"
    fi
}

apt_install() {
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "deploy: installing $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        > /dev/null ||
        { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install \
            -y -qq --no-install-recommends "$@" > /dev/null; }
}

# ---- 1. the manifests against the Kubernetes schemas ----

# pinned: the validator must not change under CI
K8S_TOOLS_PKGS='"yaml": "2.9.1", "kubernetes-models": "5.1.0", "kubernetes-types": "1.30.0", "typescript": "5.9.3"'

k8s_tools() {
    command -v node > /dev/null && command -v npm > /dev/null || apt_install nodejs npm
    TOOLS=$CACHE/k8s-tools
    mkdir -p "$TOOLS" 2> /dev/null && [ -w "$TOOLS" ] || TOOLS=$PWD/$BUILD/k8s-tools
    mkdir -p "$TOOLS"
    local want="{\"name\": \"inferd-k8s-tools\", \"private\": true, \"dependencies\": {$K8S_TOOLS_PKGS}}"
    if [ "$(cat "$TOOLS/package.json" 2> /dev/null)" = "$want" ] && [ -f "$TOOLS/.installed" ]; then
        return 0
    fi
    echo "deploy: npm install of the validators into $TOOLS (once)"
    rm -f "$TOOLS/.installed"
    echo "$want" > "$TOOLS/package.json"
    (cd "$TOOLS" && npm install --no-audit --no-fund --loglevel=error --prefer-offline > npm.log 2>&1) ||
        { cat "$TOOLS/npm.log"; return 1; }
    touch "$TOOLS/.installed"
}

k8s_schema() {
    k8s_tools || return 1
    node scripts/k8s-validate.mjs "$TOOLS" deploy/kubernetes --config-out "$OUT/configmap-inferd.yaml"
}

# ---- 2. the ConfigMap's config on the daemon ----

DAEMON_PID=""
stop_daemon() {
    [ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2> /dev/null
    DAEMON_PID=""
}
trap stop_daemon EXIT

k8s_config() {
    local cfg=$OUT/configmap-inferd.yaml key=ci-deploy-check-key-0123456789 log=$OUT/daemon.log
    [ -s "$cfg" ] || { echo "deploy: no config extracted (k8s-schema failed)"; return 1; }
    [ -x "$BUILD/inferd" ] || { echo "deploy: $BUILD/inferd missing: make build"; return 1; }
    # the pod's paths moved into this tree: /models -> models/, the Secret -> a file here
    local keys=$PWD/$OUT/api_keys
    echo "$key" > "$keys"
    sed -e "s#^\( *path: *\)/models/#\1$PWD/models/#" \
        -e "s#^\( *api_keys_file: *\)/etc/inferd/keys/api_keys#\1$keys#" "$cfg" > "$OUT/inferd.yaml"
    local with_keys=""
    grep -q '^ *api_keys_file:' "$OUT/inferd.yaml" && with_keys=1
    "$BUILD/inferd" serve --config "$OUT/inferd.yaml" --port 0 2> "$log" &
    DAEMON_PID=$!
    local url=""
    for _ in $(seq 100); do
        url=$(grep -o 'listening on http://[^ ]*' "$log" | sed 's/.*http:\/\/[^:]*:/http:\/\/127.0.0.1:/')
        [ -n "$url" ] && break
        kill -0 "$DAEMON_PID" 2> /dev/null || break
        sleep 0.1
    done
    if [ -z "$url" ]; then
        echo "deploy: the daemon refused the ConfigMap's config:"
        cat "$log"
        stop_daemon
        return 1
    fi
    local code ok=1
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/ready")
        [ "$code" = 200 ] && break
        [ "$code" = 503 ] || break
        sleep 0.1
    done
    # what the kubelet's probes and Prometheus' scrape send: no Authorization header
    expect() {
        local want=$1 what=$2
        shift 2
        local got
        got=$(curl -s -o "$OUT/body" -w '%{http_code}' "$@")
        if [ "$got" = "$want" ]; then
            echo "deploy:   $what: $got"
        else
            echo "deploy:   $what: $got, expected $want ($(head -c 200 "$OUT/body"))"
            ok=""
        fi
    }
    expect 200 "GET /ready without a key (readinessProbe, startupProbe)" "$url/ready"
    expect 200 "GET /health without a key (livenessProbe)" "$url/health"
    if [ -n "$with_keys" ]; then
        expect 401 "GET /metrics without a key" "$url/metrics"
        expect 200 "GET /metrics with the key (Prometheus scrape with credentials)" \
            "$url/metrics" -H "Authorization: Bearer $key"
    else
        expect 200 "GET /metrics (Prometheus scrape)" "$url/metrics"
    fi
    if ! grep -q '^inferd_queue_depth{' "$OUT/body"; then
        echo "deploy:   /metrics has no inferd_queue_depth (the HPA's metric)"
        ok=""
    fi
    local body='{"inputs": "WIN a FREE iPhone now!!! Click here to claim your prize"}'
    if [ -n "$with_keys" ]; then
        expect 401 "POST /models/spam without a key" "$url/models/spam" -d "$body"
        expect 200 "POST /models/spam with the Secret's key" "$url/models/spam" -d "$body" \
            -H "Authorization: Bearer $key"
    else
        expect 200 "POST /models/spam" "$url/models/spam" -d "$body"
    fi
    grep -q '"label":"spam"' "$OUT/body" || { echo "deploy:   not classified as spam"; ok=""; }
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    if [ "$rc" -ne 0 ] || ! grep -q 'inferd: stopped' "$log"; then
        echo "deploy:   SIGTERM: exit status $rc, expected a drain and 0"
        cat "$log"
        ok=""
    fi
    [ -n "$ok" ]
}

# ---- 3. the systemd unit ----

systemd_unit() {
    local unit=$OUT/inferd.service out
    sed "s#/usr/local/bin/inferd#$PWD/$BUILD/inferd#g" deploy/systemd/inferd.service > "$unit"
    out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out"; return 1; }
    # verify exits 0 on unknown keys and misplaced settings: any word from it is a failure
    [ -z "$out" ] || { echo "$out"; return 1; }
    out=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1) ||
        { echo "$out" | tail -n 30; return 1; }
    echo "deploy:   $(echo "$out" | grep -o 'Overall exposure level.*')"
}

# ---- the run ----

check k8s-schema k8s_schema
check k8s-config k8s_config
if command -v systemd-analyze > /dev/null; then
    check systemd systemd_unit
else
    echo "deploy: SKIP systemd: systemd-analyze is not installed"
fi
if [ "${SKIP_DOCKER:-0}" = 1 ]; then
    echo "deploy: SKIP docker: SKIP_DOCKER=1"
elif [ "$(id -u)" -ne 0 ]; then
    echo "deploy: SKIP docker: the chroot build needs root"
else
    check docker env BUILD="$BUILD" bash scripts/docker-chroot-test.sh
fi
[ "$failed" -eq 0 ] || echo "deploy: failed:$failed_names"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
