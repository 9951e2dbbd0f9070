#!/bin/sh
# fuzz-deps.sh: installs what make fuzz needs on Debian 12 (clang, the compiler-rt
# package that holds libclang_rt.fuzzer, and clang's OpenMP runtime for oneDNN code),
# only those missing. Never called by make build.
set -eu
PKGS="clang libclang-rt-14-dev libomp-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "fuzz-deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
