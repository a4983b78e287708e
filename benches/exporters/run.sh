#!/usr/bin/env bash
# Four minimal exporters serving the same 100 series, side by side under the same load,
# then the demo under load (demo.sh). See README.md for what is measured and how.
#
#   bash benches/exporters/run.sh            # wrk -d10s per exporter
#   DURATION=30s bash benches/exporters/run.sh
#
# Installs what is missing (wrk from Debian as root or with sudo; prometheus_client in
# .venv; prom-client with `npm ci`), builds the Rust exporters in release, then for each
# exporter, RUNS times (default 3; round after round): starts it on 127.0.0.1 port 0,
# scrapes /metrics once, reads its VmRSS and RssAnon (idle), checks the answer (check.py,
# and promtool if installed), runs `wrk -t2 -c64 -d$DURATION --latency` against /metrics
# and reads its VmHWM (peak) and RssAnon. Prints a Markdown table of the medians, writes it
# with the demo's to results.md, and keeps every answer and wrk log in out/. Exit status 1 if an answer is wrong or a step fails; the goals are reported,
# not enforced (a loaded machine would fail them without a regression).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh"

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNECTIONS=64
out=$here/out
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac

track_processes
rm -rf "$out"
mkdir -p "$out"

# The prometheus_client in .venv, if any.
client_version() {
    "$here/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("prometheus_client"))' 2>/dev/null
}

install() {
    ensure_wrk || { echo "run.sh: wrk is missing and could not be installed" >&2; return 1; }
    if [ "$(client_version)" != "$(sed -n 's/^prometheus_client==//p' "$here/requirements.txt")" ]; then
        echo "installing prometheus_client into benches/exporters/.venv" >&2
        python3 -m venv "$here/.venv"
        "$here/.venv/bin/python" -m pip install -q -r "$here/requirements.txt"
    fi
    if [ ! -f "$here/node_modules/prom-client/package.json" ]; then
        echo "installing prom-client into benches/exporters/node_modules" >&2
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# The version of a locked crate.
locked() {
    awk -v name="$1" '$1 == "name" && $3 == "\"" name "\"" { getline; gsub(/"/, "", $3); print $3; exit }' \
        "$root/Cargo.lock"
}

failed=()
declare -A labels runs

# launch KEY NAME: starts one run of the exporter KEY, its output named NAME in out/.
launch() {
    case $1 in
        plimsoll) start "$2" "$out" "$target/release/examples/exporter-plimsoll" ;;
        prometheus) start "$2" "$out" "$target/release/examples/exporter-prometheus" ;;
        python) start "$2" "$out" "$here/.venv/bin/python" "$here/exporter.py" ;;
        node) start "$2" "$out" node "$here/exporter.js" ;;
    esac
}

# measure KEY RUN: one run of one exporter, its figures appended to `runs[KEY]`, one line
# "idle_kib idle_anon_kib peak_kib anon_after_kib rps p50_ms p99_ms errors bytes".
measure() {
    local key=$1 run=$2 name=$1-$2 pid address answer idle idle_anon peak anon_after problems=()
    echo "== ${labels[$key]}, run $run" >&2
    launch "$key" "$name"
    pid=$STARTED
    address=$(wait_for_address "$out/$name.out" "$pid" 30) ||
        { failed+=("$name: did not start (see $out/$name.err)"); stop "$pid"; return; }
    answer=$out/$name.metrics
    curl -sf --max-time 10 "http://$address/metrics" -o "$answer" ||
        { failed+=("$name: first scrape failed"); stop "$pid"; return; }
    idle=$(memory_kib "$pid" VmRSS)
    idle_anon=$(memory_kib "$pid" RssAnon)
    python3 "$here/check.py" "$answer" >&2 || problems+=("wrong series")
    if command -v promtool >/dev/null; then
        promtool check metrics <"$answer" >&2 || problems+=("promtool rejects it")
    fi
    run_wrk "http://$address/metrics" "$CONNECTIONS" "$DURATION" "$out/$name.wrk" ||
        { failed+=("$name: wrk failed"); stop "$pid"; return; }
    kill -0 "$pid" 2>/dev/null || { failed+=("$name: exited under load"); stop "$pid"; return; }
    peak=$(memory_kib "$pid" VmHWM)
    anon_after=$(memory_kib "$pid" RssAnon)
    stop "$pid"
    if [ ${#problems[@]} -gt 0 ]; then failed+=("$name: ${problems[*]}"); fi
    runs[$key]+="$idle $idle_anon $peak $anon_after $WRK_RPS $WRK_P50_MS $WRK_P99_MS $WRK_ERRORS $(wc -c <"$answer")"$'\n'
}

# median KEY FIELD: the median of a figure over the runs of an exporter.
median() {
    printf '%s' "${runs[$1]:-}" | awk -v f="$2" 'NF { print $f }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# total KEY FIELD: a figure added up over the runs.
total() {
    printf '%s' "${runs[$1]:-}" | awk -v f="$2" 'NF { sum += $f } END { print sum + 0 }'
}

row() {
    local key=$1
    [ -n "${runs[$key]:-}" ] || { echo "| ${labels[$key]} | no run finished | | | | | | | | |"; return; }
    printf '| %s | %s | %s | %s | %s | %.0f | %.2f | %.2f | %s | %.0f |\n' "${labels[$key]}" \
        "$(mib "$(median "$key" 1)")" "$(mib "$(median "$key" 2)")" "$(mib "$(median "$key" 3)")" \
        "$(mib "$(median "$key" 4)")" "$(median "$key" 5)" "$(median "$key" 6)" "$(median "$key" 7)" \
        "$(total "$key" 8)" "$(median "$key" 9)"
}

# goal TEXT CONDITION...: a ✓ or ✗ line.
goal() {
    local text=$1
    shift
    if "$@"; then echo "- ✓ $text"; else echo "- ✗ $text (missed)"; fi
}

at_most() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
ratio_at_least() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { exit !(a >= r * b) }'; }

install
echo "building the Rust exporters (release)" >&2
(cd "$root" && cargo build --release --locked -q -p plimsoll-benches --example exporter-plimsoll --example exporter-prometheus)

python_version=$("$here/.venv/bin/python" -c 'import platform; print(platform.python_version())')
node_client=$(cd "$here" && node -p 'require("prom-client/package.json").version')
keys=(plimsoll prometheus python node)
labels[plimsoll]="Plimsoll $(locked plimsoll) \`Exporter\`, default limits (hyper $(locked hyper), tokio, 2 workers)"
labels[prometheus]="\`prometheus\` $(locked prometheus), \`TextEncoder\` per request (hyper $(locked hyper), tokio, 2 workers)"
labels[python]="Python \`prometheus_client\` $(client_version), \`start_http_server\` (Python $python_version)"
labels[node]="Node \`prom-client\` $node_client, \`http\` (Node $(node --version))"
# Round after round, so that a slow spell of the machine falls on every exporter alike.
for ((run = 1; run <= RUNS; run++)); do
    for key in "${keys[@]}"; do
        measure "$key" "$run"
    done
done

{
    echo "## Minimal exporters, 100 series, \`wrk -t2 -c$CONNECTIONS -d$DURATION\` against /metrics"
    echo
    echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2) on the same machine; median of $RUNS runs, each on a fresh process."
    echo
    echo "| exporter | idle RSS (MiB) | idle anon (MiB) | peak RSS (MiB) | anon after load (MiB) | requests/s | p50 (ms) | p99 (ms) | errors (all runs) | answer (bytes) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for key in "${keys[@]}"; do row "$key"; done
    echo
    echo "Idle: after start-up and one scrape. RSS: VmRSS (idle) and VmHWM (peak), which count the mapped"
    echo "binary and libraries; anon: RssAnon, the process's own memory, without them. Plimsoll's answer"
    echo "also holds its exporter's own families and the per-family overflow counters."
    echo
    goal "Plimsoll's idle RSS ≤ the prometheus crate's" \
        at_most "$(median plimsoll 1)" "$(median prometheus 1)"
    goal "Plimsoll's peak RSS ≤ the prometheus crate's" \
        at_most "$(median plimsoll 3)" "$(median prometheus 3)"
    goal "Plimsoll's requests/s ≥ 1.5 × the prometheus crate's" \
        ratio_at_least "$(median plimsoll 5)" "$(median prometheus 5)" 1.5
} | tee "$out/exporters.md"

bash "$here/demo.sh" || failed+=("demo.sh")
{
    cat "$out/exporters.md"
    if [ -f "$out/demo.md" ]; then echo && cat "$out/demo.md"; fi
} >"$here/results.md"
echo "written to $here/results.md" >&2

if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
