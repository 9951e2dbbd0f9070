#!/bin/bash
# docker-chroot-test: builds the Dockerfile without Docker and runs the image it makes.
#
# This machine has no Docker engine, so the Dockerfile is interpreted here: each FROM
# debian:12-slim stage starts from a fresh Debian 12 root file system (debootstrap
# --variant=minbase, cached as a tarball outside the clone), its RUN lines run in a chroot of it
# (/proc, /sys read-only and the usual /dev nodes mounted, the host's resolv.conf; Debian's
# mirror reachable, as in `docker build`), COPY takes files from the build context (the git
# work tree less .dockerignore) or from an earlier stage (--from), and ENV, WORKDIR, USER and
# ARG apply as Docker applies them. Any other instruction stops the test, so the Dockerfile
# cannot use something this script would silently skip.
#
# Then the last stage is run as the container would be: ENTRYPOINT + CMD as the image's USER,
# as PID 1 of new PID, network and mount namespaces, on a read-only root file system with no
# writable /tmp. The test waits for /ready, runs the HEALTHCHECK command inside the image,
# classifies a spam and a ham text through the image's curl, sends the STOPSIGNAL from outside
# the namespace (as `docker stop` does) and expects a drain and exit status 0. It also checks
# that the runtime image holds no compiler or -dev package.
#
# Usage: scripts/docker-chroot-test.sh   (as root; installs debootstrap when missing)
# Env:   INFERD_CI_CACHE  cache directory (default /var/cache/inferd-ci): base tarball, .debs
#        DEBIAN_MIRROR    default http://deb.debian.org/debian
#        BUILD            the build directory (default build): the stages go to $BUILD/docker-chroot
#        KEEP=1           keep the stage root file systems
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) WORK=$BUILD/docker-chroot ;; *) WORK=$SRC/$BUILD/docker-chroot ;; esac
CACHE=${INFERD_CI_CACHE:-/var/cache/inferd-ci}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "docker-chroot: $*"; }
die() {
    echo "docker-chroot: FAIL: $*" >&2
    exit 1
}
now() { date +%s; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts, namespaces)"
for tool in chroot unshare nsenter findmnt ip git tar; do
    command -v "$tool" > /dev/null || die "$tool is missing"
done
if ! command -v debootstrap > /dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
        -y -qq --no-install-recommends debootstrap > /dev/null; }
fi

T0=$(now)
DAEMON_NS_PID=""

# ---- mounts and cleanup ----

# Every mount this script makes is under $WORK; unmount them deepest first.
unmount_all() {
    local m
    findmnt -rn -o TARGET | { grep "^$WORK/" || true; } | sort -r | while read -r m; do
        umount -l "$m" 2> /dev/null || true
    done
}
cleanup() {
    local rc=$?
    if [ -n "$DAEMON_NS_PID" ] && kill -0 "$DAEMON_NS_PID" 2> /dev/null; then
        kill -KILL "$DAEMON_NS_PID" 2> /dev/null || true
        wait "$DAEMON_NS_PID" 2> /dev/null || true
    fi
    unmount_all
    if [ "$rc" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
        rm -rf --one-file-system "$WORK"
    elif [ "$rc" -ne 0 ]; then
        echo "docker-chroot: the stages are left in $WORK for a look" >&2
    fi
}
trap cleanup EXIT

# ---- the base image: Debian 12 minbase, as debian:12-slim ----

BASE_TAR=$CACHE/debian12-minbase-$(uname -m).tar
mkdir -p "$CACHE/apt-archives/partial"
# a month-old base is made again (RUN's apt-get upgrades what it installs anyway)
if [ -s "$BASE_TAR" ] && [ -z "$(find "$BASE_TAR" -mtime +30)" ]; then
    say "base: $BASE_TAR (cached)"
else
    t=$(now)
    say "base: debootstrap --variant=minbase $SUITE from $MIRROR (once; cached in $CACHE)"
    tmp=$CACHE/debootstrap.tmp
    rm -rf --one-file-system "$tmp"
    debootstrap --variant=minbase --cache-dir="$CACHE/apt-archives" "$SUITE" "$tmp" "$MIRROR" \
        > "$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed: see $CACHE/debootstrap.log"
    # the sources of the debian:12 images: the release, its updates and security updates
    rm -f "$tmp/etc/apt/sources.list"
    cat > "$tmp/etc/apt/sources.list.d/debian.sources" << EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
    tar -C "$tmp" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf --one-file-system "$tmp"
    say "base: made in $(($(now) - t)) s"
fi

# ---- the build context: the git work tree less .dockerignore ----

# .dockerignore lines: a path or glob from the context root ("*" stays within one component),
# "**/" in front for any depth; a match on a directory excludes what is under it.
mapfile -t IGNORE < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's#^/##' -e 's#/$##' \
    .dockerignore | grep -v '^$')
for pat in "${IGNORE[@]}"; do
    case $pat in !*) die ".dockerignore: '!' exceptions are not handled here" ;; esac
done
# glob_path PATH PATTERN: both split on "/", same number of components, each one matching
glob_path() {
    local IFS=/
    local -a p q
    read -r -a p <<< "$1"
    read -r -a q <<< "$2"
    [ "${#p[@]}" -eq "${#q[@]}" ] || return 1
    local i
    for i in "${!p[@]}"; do
        # shellcheck disable=SC2053
        [[ ${p[i]} == ${q[i]} ]] || return 1
    done
}
ignored() {
    local path=$1 pat prefix rest
    for pat in "${IGNORE[@]}"; do
        prefix=""
        rest=$path
        while :; do
            prefix=${prefix:+$prefix/}${rest%%/*}
            if [[ $pat == \*\*/* ]]; then
                local tail=${pat#\*\*/} sub=$prefix
                while :; do
                    glob_path "$sub" "$tail" && return 0
                    [[ $sub == */* ]] || break
                    sub=${sub#*/}
                done
            else
                glob_path "$prefix" "$pat" && return 0
            fi
            [[ $rest == */* ]] || break
            rest=${rest#*/}
        done
    done
    return 1
}

rm -rf --one-file-system "$WORK"
mkdir -p "$WORK/context"
n_files=0
while IFS= read -r -d '' f; do
    [ -e "$f" ] || continue # deleted in the work tree
    ignored "$f" && continue
    cp -a --parents "$f" "$WORK/context/"
    n_files=$((n_files + 1))
done < <(git ls-files -z --cached --others --exclude-standard)
say "context: $n_files files ($(du -sh "$WORK/context" | cut -f1))"

# ---- the interpreter ----

declare -A STAGE_DIR  # stage index or name -> root file system
declare -a ENV_KV     # ENV and ARG values of the current stage, "K=V"
STAGE=-1
ROOT=""
WORKDIR=/
USERSPEC=""
EXPOSE_PORT=""
HEALTH_CMD=""
STOP_SIGNAL=SIGTERM
ENTRYPOINT=""
CMD=""

stage_mounts() {
    local d
    mount -t proc proc "$ROOT/proc"
    mount --bind /sys "$ROOT/sys"
    mount -o remount,bind,ro "$ROOT/sys"
    for d in null zero full random urandom tty; do
        [ -e "$ROOT/dev/$d" ] || touch "$ROOT/dev/$d"
        mount --bind "/dev/$d" "$ROOT/dev/$d"
    done
    mount -t tmpfs -o size=64m tmpfs "$ROOT/dev/shm" 2> /dev/null || true
    mkdir -p "$ROOT/var/cache/apt/archives"
    mount --bind "$CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

# JSON array of plain strings -> words, one a line ("exec form"); nothing else is accepted.
exec_form() {
    local s=$1 re='^\[ *"[^"\\]*"( *, *"[^"\\]*")* *\]$'
    [[ $s =~ $re ]] || die "exec form expected (a JSON array of plain strings): $s"
    s=${s#*\[}
    s=${s%\]*}
    grep -o '"[^"]*"' <<< "$s" | sed 's/^"//; s/"$//'
}

# USER NAME[:GROUP] or UID[:GID] -> uid:gid from the stage's own passwd and group files
resolve_user() {
    local u=${1%%:*} g="" uid gid
    [[ $1 == *:* ]] && g=${1#*:}
    if [[ $u =~ ^[0-9]+$ ]]; then
        uid=$u
        gid=$(awk -F: -v u="$u" '$3 == u { print $4; exit }' "$ROOT/etc/passwd")
    else
        uid=$(awk -F: -v u="$u" '$1 == u { print $3; exit }' "$ROOT/etc/passwd")
        gid=$(awk -F: -v u="$u" '$1 == u { print $4; exit }' "$ROOT/etc/passwd")
    fi
    [ -n "$uid" ] || die "USER $1: no such user in the image"
    if [ -n "$g" ]; then
        if [[ $g =~ ^[0-9]+$ ]]; then gid=$g; else
            gid=$(awk -F: -v g="$g" '$1 == g { print $3; exit }' "$ROOT/etc/group")
        fi
    fi
    echo "$uid:${gid:-$uid}"
}

# run_in_stage CMD: /bin/sh -c CMD in the chroot with the stage's user, env and workdir
run_in_stage() {
    local -a envs=("PATH=$DEFAULT_PATH" HOME=/root HOSTNAME=inferd-build)
    [ "${#ENV_KV[@]}" -gt 0 ] && envs+=("${ENV_KV[@]}")
    local -a as=()
    [ -n "$USERSPEC" ] && as=(--userspec="$USERSPEC" --groups="${USERSPEC#*:}")
    env -i "${envs[@]}" chroot "${as[@]}" "$ROOT" /usr/bin/env -C "$WORKDIR" /bin/sh -c "$1"
}

do_from() {
    local img=$1 name=${3:-}
    [ "${2:-}" = "" ] || [ "${2,,}" = as ] || die "FROM $*: only 'FROM IMAGE [AS NAME]'"
    case $img in
    debian:12-slim | debian:bookworm-slim | debian:12 | debian:bookworm) ;;
    *) die "FROM $img: only Debian 12 images are emulated here" ;;
    esac
    unmount_all
    STAGE=$((STAGE + 1))
    ROOT=$WORK/stage-$STAGE
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xf "$BASE_TAR"
    STAGE_DIR[$STAGE]=$ROOT
    [ -n "$name" ] && STAGE_DIR[$name]=$ROOT
    ENV_KV=()
    WORKDIR=/
    USERSPEC=""
    stage_mounts
    say "stage $STAGE${name:+ ($name)}: FROM $img"
}

do_copy() {
    local from="" chown="" a
    local -a args=()
    for a in "$@"; do
        case $a in
        --from=*) from=${a#--from=} ;;
        --chown=*) chown=${a#--chown=} ;;
        --*) die "COPY $a: not handled here" ;;
        *) args+=("$a") ;;
        esac
    done
    [ "${#args[@]}" -ge 2 ] || die "COPY $*: needs a source and a destination"
    local dest=${args[-1]} base
    unset 'args[-1]'
    if [ -n "$from" ]; then
        base=${STAGE_DIR[$from]:-}
        [ -n "$base" ] || die "COPY --from=$from: no such stage"
    else
        base=$WORK/context
    fi
    [[ $dest == /* ]] || dest=${WORKDIR%/}/$dest
    local s src
    for s in "${args[@]}"; do
        [[ $s == *[*?[]* ]] && die "COPY $s: wildcards are not handled here"
        src=$base/${s#/}
        [ -e "$src" ] || die "COPY $s: not in the ${from:+stage $from}${from:-build context}"
        if [ -d "$src" ]; then
            mkdir -p "$ROOT$dest"
            cp -a "$src/." "$ROOT$dest/"
        elif [[ $dest == */ ]] || [ -d "$ROOT$dest" ]; then
            mkdir -p "$ROOT$dest"
            cp -a "$src" "$ROOT$dest/"
        else
            mkdir -p "$(dirname "$ROOT$dest")"
            cp -a "$src" "$ROOT$dest"
        fi
        # files from the context belong to root, as Docker makes them
        [ -n "$from" ] || chown -R 0:0 "$ROOT$dest"
        if [ -n "$chown" ]; then
            chroot "$ROOT" chown -R "$chown" "$dest" || die "COPY --chown=$chown failed"
        fi
    done
}

do_healthcheck() {
    local rest=$1
    while [[ $rest == --* ]]; do
        rest=${rest#* }
        rest=${rest#"${rest%%[! ]*}"}
    done
    case $rest in
    NONE) HEALTH_CMD="" ;;
    CMD\ \[*) HEALTH_CMD=${rest#CMD } ;;
    CMD\ *) HEALTH_CMD="[\"/bin/sh\", \"-c\", \"${rest#CMD }\"]" ;;
    *) die "HEALTHCHECK $1: expected CMD" ;;
    esac
}

# one instruction: keyword and the rest of its (joined) line
instruction() {
    local kw=${1^^} rest=$2 t
    case $kw in
    FROM)
        # shellcheck disable=SC2086
        do_from $rest
        ;;
    RUN)
        [ "$STAGE" -ge 0 ] || die "RUN before FROM"
        [[ $rest == \[* ]] && die "RUN in exec form is not handled here"
        t=$(now)
        t=$(tr -s ' ' <<< "$rest")
        say "stage $STAGE: RUN ${t:0:90}$([ ${#t} -gt 90 ] && echo ...)"
        t=$(now)
        run_in_stage "$rest" > "$WORK/run.log" 2>&1 || {
            tail -n 40 "$WORK/run.log" >&2
            die "stage $STAGE: RUN failed: $rest"
        }
        say "  ($(($(now) - t)) s)"
        ;;
    COPY)
        # shellcheck disable=SC2086
        do_copy $rest
        ;;
    WORKDIR)
        [[ $rest == /* ]] || rest=${WORKDIR%/}/$rest
        WORKDIR=$rest
        mkdir -p "$ROOT$WORKDIR"
        ;;
    ENV)
        [[ $rest == *=* ]] || die "ENV $rest: only ENV KEY=VALUE"
        # shellcheck disable=SC2206
        ENV_KV+=($rest)
        ;;
    ARG)
        [[ $rest == *=* ]] || die "ARG $rest: only ARG NAME=DEFAULT"
        ENV_KV+=("$rest")
        ;;
    USER) USERSPEC=$(resolve_user "$rest") ;;
    EXPOSE) EXPOSE_PORT=${rest%%/*} ;;
    HEALTHCHECK) do_healthcheck "$rest" ;;
    STOPSIGNAL) STOP_SIGNAL=$rest ;;
    ENTRYPOINT) ENTRYPOINT=$rest ;;
    CMD) CMD=$rest ;;
    LABEL) ;;
    *) die "$kw: not handled here (add it to $0)" ;;
    esac
}

# Joins continuation lines, drops comments and blank lines, runs each instruction.
T_BUILD=$(now)
line=""
while IFS= read -r raw || [ -n "$raw" ]; do
    [[ $raw =~ ^[[:space:]]*# ]] && continue
    [[ -z $line && $raw =~ ^[[:space:]]*$ ]] && continue
    if [[ $raw == *\\ ]]; then
        line+="${raw%\\} "
        continue
    fi
    line+=$raw
    line=${line#"${line%%[! ]*}"}
    instruction "${line%% *}" "$(sed 's/^[^ ]* *//' <<< "$line")"
    line=""
done < Dockerfile
[ -z "$line" ] || die "Dockerfile ends inside a continued line"
unmount_all
say "build: $((STAGE + 1)) stages in $(($(now) - T_BUILD)) s"

# ---- the image ----

[ -n "$ENTRYPOINT$CMD" ] || die "no ENTRYPOINT or CMD"
[ -n "$HEALTH_CMD" ] || die "no HEALTHCHECK"
[ -n "$EXPOSE_PORT" ] || die "no EXPOSE"
[ -n "$USERSPEC" ] && [ "${USERSPEC%%:*}" != 0 ] || die "the image runs as root (no USER)"
# (command substitutions, not process substitutions: exec_form's die must stop the script)
ep=""
cm=""
[ -z "$ENTRYPOINT" ] || ep=$(exec_form "$ENTRYPOINT")
[ -z "$CMD" ] || cm=$(exec_form "$CMD")
mapfile -t ARGV <<< "$(printf '%s\n%s\n' "$ep" "$cm" | sed '/^$/d')"
hc=$(exec_form "$HEALTH_CMD")
mapfile -t HEALTH_ARGV <<< "$hc"
devpkgs=$(chroot "$ROOT" dpkg-query -W -f '${Package}\n' |
    grep -E -- '-dev$|^(gcc|cpp)(-[0-9]+)?$|^(meson|ninja-build|make)$' | tr '\n' ' ' || true)
[ -z "$devpkgs" ] || die "the runtime image holds build packages: $devpkgs"
say "image: $(du -sx --apparent-size -m "$ROOT" | cut -f1) MiB unpacked, runs '${ARGV[*]}' as $USERSPEC"

# ---- run it as the container would ----

T_RUN=$(now)
LOG=$WORK/daemon.log
# New PID, network and mount namespaces: the daemon is PID 1 on its own loopback; the root
# file system is read-only with no tmpfs anywhere, as with readOnlyRootFilesystem.
unshare --pid --net --mount --fork --kill-child --propagation private -- /bin/sh -c '
    set -e
    root=$1 uidgid=$2
    shift 2
    ip link set lo up
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount -t proc proc "$root/proc"
    for d in null zero full random urandom; do mount --bind /dev/$d "$root/dev/$d"; done
    exec env -i PATH='"$DEFAULT_PATH"' HOME=/nonexistent HOSTNAME=inferd \
        chroot --userspec="$uidgid" --groups="${uidgid#*:}" "$root" "$@"
' sh "$ROOT" "$USERSPEC" "${ARGV[@]}" > "$LOG" 2>&1 &
DAEMON_NS_PID=$!
# the daemon: unshare's child (it execs sh -> chroot -> inferd, keeping its PID)
pid=""
for _ in $(seq 50); do
    pid=$(cat "/proc/$DAEMON_NS_PID/task/$DAEMON_NS_PID/children" 2> /dev/null | awk '{print $1}')
    [ -n "$pid" ] && break
    sleep 0.1
done
[ -n "$pid" ] || die "the container did not start: $(cat "$LOG")"

# in_image CMD...: runs CMD from the image, in the daemon's network namespace
in_image() {
    nsenter --net="/proc/$pid/ns/net" -- env -i PATH="$DEFAULT_PATH" \
        chroot --userspec="$USERSPEC" "$ROOT" "$@"
}
url=http://127.0.0.1:$EXPOSE_PORT
ready=""
for _ in $(seq 600); do
    kill -0 "$pid" 2> /dev/null || die "the daemon exited: $(cat "$LOG")"
    if in_image curl -fsS -o /dev/null "$url/ready" 2> /dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || die "/ready never answered 200 in 60 s: $(cat "$LOG")"
say "run: ready after $(($(now) - T_RUN)) s; $(grep -m1 'listening on' "$LOG")"

uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" = "${USERSPEC%%:*}" ] || die "the daemon runs as uid $uid, not ${USERSPEC%%:*}"
[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")" = 1 ] || die "the daemon is not PID 1"
in_image "${HEALTH_ARGV[@]}" > /dev/null || die "HEALTHCHECK failed: ${HEALTH_ARGV[*]}"
say "run: HEALTHCHECK '${HEALTH_ARGV[*]}' passes"

classify() {
    in_image curl -fsS "$url/models/spam" -H 'Content-Type: application/json' \
        -d "{\"inputs\": \"$1\"}"
}
spam=$(classify "WIN a FREE iPhone now!!! Click here to claim your prize") || die "POST failed"
ham=$(classify "The patch to the kernel scheduler looks fine to me, I will merge it after the tests pass") || die "POST failed"
[[ $spam == '[{"label":"spam","score":'* ]] || die "spam text answered $spam"
[[ $ham == '[{"label":"ham","score":'* ]] || die "ham text answered $ham"
say "run: POST /models/spam: $spam and $ham"

# the STOPSIGNAL from outside the PID namespace, as the runtime sends it on `docker stop`
kill -s "${STOP_SIGNAL#SIG}" "$pid"
rc=0
timeout 60 tail --pid="$DAEMON_NS_PID" -f /dev/null || die "no exit 60 s after $STOP_SIGNAL"
wait "$DAEMON_NS_PID" || rc=$?
DAEMON_NS_PID=""
[ "$rc" -eq 0 ] || die "exit status $rc after $STOP_SIGNAL: $(cat "$LOG")"
grep -q 'inferd: stopped' "$LOG" || die "no drain in the log: $(cat "$LOG")"
say "run: $STOP_SIGNAL drained and exited 0"
say "OK in $(($(now) - T0)) s (build $((T_RUN - T_BUILD)) s, run $(($(now) - T_RUN)) s)"
