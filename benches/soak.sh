#!/usr/bin/env bash
# Soak: `plimsoll demo` under load for a bounded time, its RSS sampled every second, then
# judged for growth. Exit status 1 if memory grows (or a step fails), 0 if it is flat.
#
#   bash benches/soak.sh [SECONDS]       # default 600; CI runs 180
#
# The load runs for SOAK_WARMUP_SECONDS (default 300) before sampling starts: the demo's RSS
# climbs for about 50 s under a new load (pages touched for the first time), and its two
# incidents (minutes 1 and 3 of every ten from its start) run their code and put more
# requests in flight at once for the first time. Neither is growth, and either would
# dominate a short soak. 300 s is the demo's own memory monitor's warm-up too; a 600 s soak
# then sees the incidents once more, from memory already sized for them.
#
# 1. Builds `plimsoll` in release and starts `plimsoll demo` with PLIMSOLL_ADDR=127.0.0.1:0
#    (and `--app-addr 127.0.0.1:0` if it has that option).
# 2. Load: `wrk -t1 -c16` against /metrics and, if the demo prints `app listening on
#    <address>`, another against the app's `/` (each request with its own x-client-id, so
#    the shop's per-client rate limit does not turn it into 429s), for SECONDS (wrk is
#    installed from Debian if missing); without wrk, the demo's own synthetic traffic at
#    `--rate 5000` (25 times its default) is the load.
# 3. Samples the demo's VmRSS every second into `t_s,rss_bytes` CSV (target/soak/soak.csv,
#    or under CARGO_TARGET_DIR), time from /proc/uptime so a wall-clock step cannot skew it.
# 4. Judges the trace two ways, and reads the demo's own verdict:
#    - `plimsoll leak-check soak.csv --json`: the memory monitor's rules on the trace
#      (lower envelope, Mann–Kendall, Theil–Sen; see `plimsoll leak-check --help`). It
#      leaves out the first 10 % of the span as warm-up and needs 2 minutes after it: under
#      about 135 s it says not_enough_data, and only the slope judges;
#    - an ordinary least-squares slope of RSS over time after the same warm-up, with a 95 %
#      confidence interval widened for the samples' autocorrelation (the effective sample
#      size n (1 − r₁) / (1 + r₁) of the residuals' lag-1 autocorrelation r₁, as usual for
#      trends in autocorrelated series; Student's t with that many degrees of freedom);
#    - the demo's own `plimsoll_memory_verdict{signal="rss"}`, scraped at the end. Its
#      monitor has a 5-minute warm-up and judges 30 s buckets, so it has a verdict only
#      after about 10.5 minutes (warm-up and soak together); shorter runs report
#      not_enough_data.
#
# Memory grows, and the soak fails, if either verdict is leak_suspected or the whole
# confidence interval of the slope lies above the tolerance, SOAK_TOLERANCE_MIB_PER_HOUR
# (default 1 MiB/h, the monitor's own floor for a leak: 24 MiB a day). A slope that is
# merely not proven flat (an interval that straddles the tolerance) passes: a soak of
# minutes cannot resolve a slope of 1 MiB/h, and the leak-check's verdict covers that case.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=SCRIPTDIR/exporters/lib.sh
source "$root/benches/exporters/lib.sh"

seconds=${1:-600}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 10 ]; then
    echo "usage: soak.sh [SECONDS], at least 10 (default 600)" >&2
    exit 2
fi
tolerance=${SOAK_TOLERANCE_MIB_PER_HOUR:-1}
warmup=${SOAK_WARMUP_SECONDS:-300}
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
plimsoll=$target/release/plimsoll
out=$target/soak
csv=$out/soak.csv

track_processes
rm -rf "$out"
mkdir -p "$out"
echo "building plimsoll (release)" >&2
(cd "$root" && cargo build --release --locked -q -p plimsoll)

demo_args=(demo)
if "$plimsoll" demo --help | grep -q -- --app-addr; then demo_args+=(--app-addr 127.0.0.1:0); fi
load=
if ensure_wrk; then
    raise_open_files 1024
else
    echo "soak.sh: no wrk; the load is the demo's own traffic at --rate 5000" >&2
    demo_args+=(--rate 5000)
    load="the demo's synthetic traffic at 5,000 requests/s"
fi
start demo "$out" env PLIMSOLL_ADDR=127.0.0.1:0 "$plimsoll" "${demo_args[@]}"
demo=$STARTED
address=$(wait_for_address "$out/demo.out" "$demo" 30) ||
    { echo "the demo did not start; see $out/demo.err" >&2; exit 1; }
app=$(wait_for_address "$out/demo.out" "$demo" 3 "app ") || app=

wrks=()
if [ -z "$load" ]; then
    start_wrk "http://$address/metrics" 16 "$((seconds + warmup))s" "$out/wrk-metrics.log" 1
    wrks+=("$STARTED:$out/wrk-metrics.log:/metrics")
    if [ -n "$app" ]; then
        start_wrk "http://$app/" 16 "$((seconds + warmup))s" "$out/wrk-app.log" 1 fresh-client-ids
        wrks+=("$STARTED:$out/wrk-app.log:the app's /")
    fi
fi

# Centiseconds since boot.
uptime_cs() {
    local up _
    read -r up _ </proc/uptime
    echo "${up/./}"
}

echo "warming up for ${warmup}s under load, then sampling" >&2
sleep "$warmup"
echo "soaking for ${seconds}s: sampling the demo's RSS every second into $csv" >&2
echo "t_s,rss_bytes" >"$csv"
start_cs=$(uptime_cs)
for ((k = 0; k <= seconds; k++)); do
    wait_cs=$((start_cs + 100 * k - $(uptime_cs)))
    if [ "$wait_cs" -gt 0 ]; then sleep "$((wait_cs / 100)).$(printf '%02d' $((wait_cs % 100)))"; fi
    kib=$(memory_kib "$demo" VmRSS) || { echo "the demo exited during the soak; see $out/demo.err" >&2; exit 1; }
    elapsed=$(($(uptime_cs) - start_cs))
    printf '%d.%02d,%d\n' $((elapsed / 100)) $((elapsed % 100)) $((kib * 1024)) >>"$csv"
done

for entry in "${wrks[@]}"; do
    IFS=: read -r pid log what <<<"$entry"
    wait "$pid" || { echo "wrk failed; see $log" >&2; exit 1; }
    stop "$pid"
    wrk_summary "$log"
    load+="${load:+; }wrk -c16 on $what: $WRK_RPS requests/s, p99 $WRK_P99_MS ms, errors $WRK_ERROR_TEXT"
done
own_verdict=$(curl -sf --max-time 10 "http://$address/metrics" |
    sed -n 's/^plimsoll_memory_verdict{signal="rss",verdict="\([a-z_]*\)"} 1$/\1/p') || own_verdict=
stop "$demo"

"$plimsoll" leak-check "$csv" --json >"$out/leak-check.json"
python3 - "$csv" "$out/leak-check.json" "$tolerance" "${own_verdict:-unknown}" "$load" <<'PYTHON'
"""Prints the soak's figures and verdict; exit status 1 if memory grows."""
import json
import math
import statistics
import sys

csv_path, check_path, tolerance, own_verdict, load = sys.argv[1:6]
tolerance = float(tolerance)
MIB = 1024 * 1024
with open(csv_path, encoding="utf-8") as file:
    next(file)
    rows = [tuple(map(float, line.split(","))) for line in file if line.strip()]
with open(check_path, encoding="utf-8") as file:
    signal = json.load(file)["signals"][0]
warm_up = signal["warm_up_seconds"]


def t_quantile(p, dof):
    """Student's t quantile, by bisection on its CDF (the regularised incomplete beta)."""

    def beta_cf(a, b, x):
        # Lentz's continued fraction for the incomplete beta function.
        tiny = 1e-300
        c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
        d = 1.0 / (d if abs(d) > tiny else tiny)
        h = d
        for m in range(1, 300):
            for numerator in (
                m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
            ):
                d = 1.0 + numerator * d
                d = 1.0 / (d if abs(d) > tiny else tiny)
                c = 1.0 + numerator / c
                c = c if abs(c) > tiny else tiny
                h *= d * c
            if abs(d * c - 1.0) < 1e-15:
                break
        return h

    def cdf(t):
        x = dof / (dof + t * t)
        a, b = dof / 2.0, 0.5
        front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
        tail = front * beta_cf(a, b, x) / a / 2.0
        return 1.0 - tail if t > 0 else tail

    low, high = 0.0, 1e6
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2.0


kept = [(t, rss) for t, rss in rows if t >= warm_up]
n = len(kept)
if n < 3:
    print(f"soak: only {n} samples after the {warm_up:.0f} s warm-up: too short to judge")
    sys.exit(1)
times = [t / 3600.0 for t, _ in kept]
sizes = [rss / MIB for _, rss in kept]
slope, intercept = statistics.linear_regression(times, sizes)
residuals = [y - (intercept + slope * x) for x, y in zip(times, sizes)]
mean_t = statistics.fmean(times)
sxx = sum((x - mean_t) ** 2 for x in times)
sse = sum(r * r for r in residuals)
r1 = 0.0
if sse > 0:
    r1 = sum(a * b for a, b in zip(residuals, residuals[1:])) / sse
n_eff = min(n, max(3.0, n * (1 - r1) / (1 + r1))) if r1 > 0 else n
std_error = math.sqrt(sse / (n - 2) / sxx) * math.sqrt((n - 2) / (n_eff - 2)) if sxx > 0 else math.inf
half = t_quantile(0.975, n_eff - 2) * std_error
low, high = slope - half, slope + half

verdict = signal["verdict"]
theil_sen = signal["slope_bytes_per_hour"]
first_mib, last_mib = rows[0][1] / MIB, rows[-1][1] / MIB
grows = []
if verdict == "leak_suspected":
    grows.append("plimsoll leak-check says leak_suspected")
if own_verdict == "leak_suspected":
    grows.append("the demo's own verdict is leak_suspected")
if low > tolerance:
    grows.append(f"the slope's 95 % CI lies above {tolerance:g} MiB/h")

print(f"duration       {rows[-1][0]:.0f} s, {len(rows)} samples of the demo's VmRSS, every second ({csv_path})")
print(f"load           {load}")
print(f"RSS            {first_mib:.2f} MiB at start; after the {warm_up:.0f} s warm-up {min(sizes):.2f} to "
      f"{max(sizes):.2f} MiB, {last_mib:.2f} MiB at the end")
print(f"slope          {slope:+.3f} ± {half:.3f} MiB/h (least squares, 95 % CI [{low:+.3f}, {high:+.3f}]; "
      f"{n} samples, lag-1 autocorrelation {r1:.2f}, {n_eff:.0f} effective); tolerance {tolerance:g} MiB/h")
theil_sen_text = "n/a" if theil_sen is None else f"{theil_sen / MIB:+.3f} MiB/h"
print(f"leak-check     {verdict} (Theil–Sen {theil_sen_text} on the lower envelope, "
      f"{signal['envelope_points']} points of {signal['bucket_seconds']:.1f} s)")
print(f"demo's own     {own_verdict} (plimsoll_memory_verdict{{signal=\"rss\"}} at the end)")
print(f"verdict        {'FAILED: memory grows: ' + '; '.join(grows) if grows else 'flat'}")
sys.exit(1 if grows else 0)
PYTHON
