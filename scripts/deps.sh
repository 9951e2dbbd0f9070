#!/bin/sh
# deps.sh: installs the Debian 12 packages inferd needs, only those missing: what building and
# serving need (make deps: `make run`), and with --test what the test suites add on top
# (make deps-test: nginx in front of daemons, promtool for /metrics, openssl for TLS
# certificates, valgrind), and with --fuzz what make fuzz needs (clang, the compiler-rt
# package that holds libclang_rt.fuzzer, clang's OpenMP runtime for the oneDNN code), and with
# --llamacpp what building llama.cpp for make bench-llamacpp needs (cmake, g++, pip; never
# make build). Runs apt-get as root, or through sudo when available.
set -eu
PKGS="gcc make meson ninja-build pkg-config xz-utils ca-certificates
libjansson-dev libutf8proc-dev libpcre2-dev libyaml-dev libmicrohttpd-dev
libdnnl-dev check libsubunit-dev libcurl4-openssl-dev libssl-dev libzip-dev"
case "${1:-}" in
--test) PKGS="prometheus openssl nginx valgrind" ;;
--fuzz) PKGS="clang libclang-rt-14-dev libomp-14-dev" ;;
--llamacpp) PKGS="cmake g++ ninja-build python3-pip" ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
