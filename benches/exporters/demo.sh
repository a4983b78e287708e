#!/usr/bin/env bash
# `plimsoll demo` under load: requests/s, p50/p99 latency and the demo's peak RSS at 64 and
# 1,024 connections, against /metrics and, when the demo serves an app, against the app's /.
#
#   bash benches/exporters/demo.sh           # wrk -d10s per row (DURATION to change it)
#
# Run by run.sh after the exporter comparison, or alone. Each row gets a fresh
# `target/release/plimsoll demo` with PLIMSOLL_ADDR=127.0.0.1:0 (and `--app-addr
# 127.0.0.1:0` if it has that option; its synthetic traffic at the default rate), so each
# peak is that row's alone: the demo prints `listening on <address>` for its exporter and,
# when it has an app, `app listening on <address>` after it (awaited for 3 s; without it
# only /metrics is loaded). After one scrape its VmRSS is the idle figure;
# `wrk -t2 -cN -d$DURATION --latency` runs, then its VmHWM is the peak. Against the app,
# every request carries an `x-client-id` of its own (wrk.lua's `fresh-client-ids`): the
# shop limits each client to 10 requests/s, and one client at full speed would measure its
# 429 answers, not its pages. Goals: under 8 MiB at 64 connections; at 1,024, within the idle RSS
# plus the connection bound the demo's footprint report states for the loaded side (its
# "plus the exporter's connections" or "plus the shop's connections" line). The table goes
# to stdout and out/demo.md; exit status 1 if a step fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh"

DURATION=${DURATION:-10s}
out=$here/out
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
plimsoll=$target/release/plimsoll

track_processes
mkdir -p "$out"
ensure_wrk || { echo "demo.sh: wrk is missing and could not be installed" >&2; exit 1; }
# wrk and the demo's app hold one descriptor per connection.
raise_open_files 4096
echo "building plimsoll (release)" >&2
(cd "$root" && cargo build --release --locked -q -p plimsoll)

demo_args=(demo)
if "$plimsoll" demo --help | grep -q -- --app-addr; then demo_args+=(--app-addr 127.0.0.1:0); fi

rows=()
goals=()
failed=0
no_app=0

# The connection bound the footprint report in FILE states for WHOSE connections
# (exporter or shop), in KiB.
stated_bound_kib() {
    sed -n "s/^plus the $2's connections: .*at most about \([0-9]*\) KiB.*/\1/p" "$1" | awk '{ sum += $1 } END { print sum + 0 }'
}

# row TARGET CONNECTIONS: a fresh demo, loaded on TARGET (metrics or app).
row() {
    local which=$1 connections=$2 name pid address app peak idle bound url script_args=()
    name=demo-$which-c$connections
    echo "== demo, $which, $connections connections" >&2
    start "$name" "$out" env PLIMSOLL_ADDR=127.0.0.1:0 "$plimsoll" "${demo_args[@]}"
    pid=$STARTED
    address=$(wait_for_address "$out/$name.out" "$pid" 30) ||
        { echo "the demo did not start; see $out/$name.err" >&2; stop "$pid"; return 1; }
    app=$(wait_for_address "$out/$name.out" "$pid" 3 "app ") || app=
    case $which in
        metrics) url=http://$address/metrics ;;
        app)
            if [ -z "$app" ]; then
                no_app=1
                stop "$pid"
                return 0
            fi
            url=http://$app/
            script_args=(fresh-client-ids)
            ;;
    esac
    curl -sf --max-time 10 "http://$address/metrics" -o /dev/null ||
        { echo "the demo's first scrape failed" >&2; stop "$pid"; return 1; }
    idle=$(memory_kib "$pid" VmRSS) || return 1
    run_wrk "$url" "$connections" "$DURATION" "$out/$name.wrk" 2 "${script_args[@]}" || { stop "$pid"; return 1; }
    kill -0 "$pid" 2>/dev/null || { echo "the demo exited under load; see $out/$name.err" >&2; stop "$pid"; return 1; }
    peak=$(memory_kib "$pid" VmHWM) || return 1
    stop "$pid"
    rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s |' "$which" "$connections" "$WRK_RPS" \
        "$WRK_P50_MS" "$WRK_P99_MS" "$WRK_ERROR_TEXT" "$(mib "$idle")" "$(mib "$peak")")")
    if [ "$connections" -le 64 ]; then
        if [ "$peak" -lt 8192 ]; then
            goals+=("- ✓ $which, $connections connections: peak $(mib "$peak") MiB < 8 MiB")
        else
            goals+=("- ✗ $which, $connections connections: peak $(mib "$peak") MiB, not under 8 MiB (missed)")
        fi
    else
        case $which in metrics) whose=exporter ;; app) whose=shop ;; esac
        bound=$((idle + $(stated_bound_kib "$out/$name.err" "$whose")))
        if [ "$peak" -le "$bound" ]; then
            goals+=("- ✓ $which, $connections connections: peak $(mib "$peak") MiB ≤ idle + stated bound = $(mib "$bound") MiB")
        else
            goals+=("- ✗ $which, $connections connections: peak $(mib "$peak") MiB > idle + stated bound = $(mib "$bound") MiB (missed)")
        fi
    fi
}

for connections in 64 1024; do
    for which in metrics app; do
        row "$which" "$connections" || failed=1
    done
done

{
    echo "## \`plimsoll demo\` under \`wrk -t2 -cN -d$DURATION\`"
    echo
    echo "| target | connections | requests/s | p50 (ms) | p99 (ms) | errors | idle RSS (MiB) | peak RSS (MiB) |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "A fresh demo per row (its synthetic traffic running); idle: VmRSS after one scrape; peak: VmHWM after the run."
    echo "metrics: the exporter's /metrics; app: the shop's /, each request with its own x-client-id."
    if [ "$no_app" = 1 ]; then echo "The demo printed no \`app listening on\` line: only /metrics was loaded."; fi
    echo
    printf '%s\n' "${goals[@]}"
} | tee "$out/demo.md"
exit "$failed"
