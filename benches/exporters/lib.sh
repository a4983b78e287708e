# shellcheck shell=bash
# Shared by run.sh, demo.sh and ../soak.sh (sourced, not run): installing wrk, starting
# processes that are all stopped on exit, reading a process's memory, running wrk.
#
# A script that sources this file calls `track_processes` once, before starting anything:
# from then on every process started with `start` is stopped when the script exits, however
# it exits (an error under `set -e`, Ctrl-C, SIGTERM).

# The processes `start` started and `stop` has not stopped yet.
STARTED_PIDS=()

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs wrk from Debian if it is missing; fails if it cannot.
ensure_wrk() {
    command -v wrk >/dev/null && return 0
    echo "installing wrk (Debian package)" >&2
    command -v apt-get >/dev/null || return 1
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

# Raises the soft limit of open files to at least $1 (wrk and the server each hold one per
# connection), up to the hard limit.
raise_open_files() {
    local want=$1 soft hard
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    [ "$soft" = unlimited ] && return 0
    [ "$soft" -ge "$want" ] && return 0
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
    ulimit -Sn "$want"
}

stop_all() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}

track_processes() {
    trap stop_all EXIT
    # Turned into an ordinary exit, so the EXIT trap runs.
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# start NAME DIR COMMAND...: runs COMMAND in the background, its stdout in DIR/NAME.out and
# stderr in DIR/NAME.err; sets STARTED to its pid.
start() {
    local name=$1 dir=$2
    shift 2
    # Created before the command starts, so a reader never finds them missing.
    : >"$dir/$name.out"
    : >"$dir/$name.err"
    "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
    STARTED=$!
    STARTED_PIDS+=("$STARTED")
}

# start_logged LOG COMMAND...: `start` with stdout and stderr both in LOG.
start_logged() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    STARTED=$!
    STARTED_PIDS+=("$STARTED")
}

# stop PID: SIGTERM, then SIGKILL after 10 s; forgets the pid.
stop() {
    local pid=$1 i kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${STARTED_PIDS[@]}"; do
        [ "$i" = "$pid" ] || kept+=("$i")
    done
    STARTED_PIDS=("${kept[@]}")
}

# wait_for_address FILE PID SECONDS [PREFIX]: prints the address of the first line
# `PREFIXlistening on <address>` of FILE (PREFIX empty by default) once it appears; fails
# if PID exits or SECONDS pass first.
wait_for_address() {
    local file=$1 pid=$2 seconds=$3 prefix=${4:-} address i
    for ((i = 0; i < seconds * 10; i++)); do
        address=$(sed -n "s/^${prefix}listening on //p" "$file" | head -n 1)
        if [ -n "$address" ]; then
            echo "$address"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# memory_kib PID FIELD: FIELD (VmRSS, VmHWM) of /proc/PID/status, in KiB.
memory_kib() {
    awk -v field="$2:" '$1 == field { print $2; found = 1 } END { exit !found }' "/proc/$1/status"
}

# KiB as MiB with two decimals.
mib() {
    awk -v kib="$1" 'BEGIN { printf "%.2f", kib / 1024 }'
}

# start_wrk URL CONNECTIONS DURATION LOG [THREADS [SCRIPT_ARGS...]]: starts wrk (THREADS
# threads, default 2; --latency; wrk.lua, given SCRIPT_ARGS) against URL in the
# background, its output in LOG; sets STARTED to its pid, stopped on exit like every
# process `start` starts.
start_wrk() {
    local url=$1 connections=$2 duration=$3 log=$4 threads=${5:-2}
    shift $(($# < 5 ? $# : 5))
    start_logged "$log" wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s --latency \
        -s "$BENCH_LIB_DIR/wrk.lua" "$url" -- "$@"
}

# wrk_summary LOG: reads the summary line of a finished wrk's LOG into WRK_RPS, WRK_P50_MS,
# WRK_P99_MS, WRK_REQUESTS, WRK_ERRORS (every kind added up) and WRK_ERROR_TEXT ("0", or
# the count of each kind). Fails if there is none.
# shellcheck disable=SC2034 # The WRK_ variables are read by the scripts that source this file.
wrk_summary() {
    local log=$1 line
    line=$(grep '^wrk-result ' "$log") || { echo "wrk printed no summary; see $log" >&2; return 1; }
    local requests duration_us p50_us p99_us connect read_errors write status timeout
    read -r requests duration_us p50_us p99_us connect read_errors write status timeout _ \
        <<<"$(echo "${line#wrk-result }" | sed -E 's/[a-z0-9_]+=//g')"
    WRK_REQUESTS=$requests
    WRK_RPS=$(awk -v n="$requests" -v us="$duration_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
    WRK_P50_MS=$(awk -v us="$p50_us" 'BEGIN { printf "%.2f", us / 1000 }')
    WRK_P99_MS=$(awk -v us="$p99_us" 'BEGIN { printf "%.2f", us / 1000 }')
    WRK_ERRORS=$((connect + read_errors + write + status + timeout))
    WRK_ERROR_TEXT=0
    if [ "$WRK_ERRORS" -gt 0 ]; then
        WRK_ERROR_TEXT=$(printf 'connect %s, read %s, write %s, non-2xx %s, timeout %s' \
            "$connect" "$read_errors" "$write" "$status" "$timeout")
    fi
}

# run_wrk URL CONNECTIONS DURATION LOG [THREADS [SCRIPT_ARGS...]]: start_wrk, wait for it
# (a signal to the script still stops it), then wrk_summary. Fails if wrk fails.
run_wrk() {
    local pid status=0
    start_wrk "$@"
    pid=$STARTED
    wait "$pid" || status=$?
    stop "$pid"
    [ "$status" = 0 ] || { echo "wrk failed against $1; see $4" >&2; return 1; }
    wrk_summary "$4"
}

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
