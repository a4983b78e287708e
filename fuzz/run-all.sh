#!/usr/bin/env bash
# Builds every fuzz target, then runs each for a bounded time from its corpus (the
# committed seed-* inputs plus whatever earlier local runs kept), and fails if any target
# crashes, hangs or runs out of memory. A committed seed-regression-* input that still
# fails counts as a crash: found crashes stay regression tests. `.ci/run` calls this.
#
#   bash fuzz/run-all.sh                     # 30 s per target
#   FUZZ_SECONDS=600 bash fuzz/run-all.sh    # longer, locally
#
# Each target's full libFuzzer log is kept in fuzz/target/fuzz-logs/<target>.log; the
# summary prints its `Done N runs` line (or the panic and the failing input) and its
# execution and crash counts.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-30}
logs=target/fuzz-logs
mkdir -p "$logs"

cargo +nightly fuzz build || exit 1

start_all=$SECONDS
summary=()
failed=()
for target in $(cargo +nightly fuzz list); do
    log="$logs/$target.log"
    printf -- '--> fuzz %s for %ss\n' "$target" "$seconds"
    start=$SECONDS
    # -timeout: an input that takes 10 s is a hang; -print_final_stats: the execution
    # count, printed on success and on a crash alike.
    cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(grep -a -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
    crashes=$(grep -a -cE 'Test unit written to' "$log")
    grep -a -E '^Done [0-9]+ runs' "$log"
    if [ "$status" -ne 0 ]; then
        grep -a -E -A 2 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|Test unit written to' "$log" | head -n 30
        # A failure that left no input behind (a build error, say) still fails the run.
        [ "$crashes" -gt 0 ] || crashes="? (exit status $status; see $log)"
        failed+=("$target")
    fi
    summary+=("$(printf '%-20s %10s runs  %s crashes  %3ss' "$target" "${runs:-?}" "$crashes" $((SECONDS - start)))")
done

printf '\nfuzz summary (%ss per target, %ss in all):\n' "$seconds" $((SECONDS - start_all))
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'fuzz targets that failed: %s\n' "${failed[*]}"
    exit 1
fi
