"""A process whose memory behaves in a known way, for recording real leak-check traces.

Every 50 ms it allocates a 400 KiB buffer and keeps it; every 5 s it drops them all, as a
garbage collector would: a 40 MiB sawtooth over the interpreter's own memory. With
--leak-mib-per-minute R it also keeps, for good, 64 KiB buffers at R MiB a minute of wall
time (counted from the clock, not from ticks, so a busy machine does not change the rate).

Buffers are filled with a non-zero byte so their pages are resident (a zeroed buffer may
be left unmapped). The recorder sets MALLOC_MMAP_THRESHOLD_=131072, so glibc maps each
400 KiB buffer on its own and returns it when dropped (the sawtooth falls back to its
floor), while the 64 KiB leaked buffers come from the heap.

    python3 workload.py --seconds 180 --leak-mib-per-minute 9
"""

import argparse
import time

MIB = 1 << 20
CHURN_BYTES = 400 << 10
LEAK_CHUNK = 64 << 10
TICK_S = 0.05
COLLECT_EVERY_S = 5.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="how long to run")
    parser.add_argument("--leak-mib-per-minute", type=float, default=0.0, help="leak rate (0: none)")
    args = parser.parse_args()

    start = time.monotonic()
    leaked, garbage = [], []
    next_tick, next_collect = start, start + COLLECT_EVERY_S
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= args.seconds:
            break
        garbage.append(b"\x01" * CHURN_BYTES)
        if now >= next_collect:
            garbage.clear()
            next_collect += COLLECT_EVERY_S
        owed = int(args.leak_mib_per_minute * MIB * elapsed / 60.0)
        while len(leaked) * LEAK_CHUNK + LEAK_CHUNK <= owed:
            leaked.append(b"\x01" * LEAK_CHUNK)
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))


if __name__ == "__main__":
    main()
