"""Records a leak-check trace from a real process: starts workload.py and samples its
resident set size (VmRSS in /proc/PID/status) four times a second, writing
`time,rss_bytes` rows with RFC 3339 UTC date-times.

    python3 record.py --out real/leak-9mib-per-min.csv --seconds 180 -- --leak-mib-per-minute 9

Arguments after `--` go to workload.py. Linux only (it reads /proc).
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

SAMPLE_EVERY_S = 0.25


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the CSV file to write")
    parser.add_argument("--seconds", type=float, required=True, help="how long to record")
    parser.add_argument("workload_args", nargs="*", help="arguments for workload.py")
    args = parser.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    child = subprocess.Popen(
        [sys.executable, os.path.join(here, "workload.py"), "--seconds", str(args.seconds + 5), *args.workload_args],
        env=env,
    )
    try:
        start = time.monotonic()
        next_sample = start
        with open(args.out, "w") as out:
            out.write("time,rss_bytes\n")
            while time.monotonic() - start < args.seconds:
                stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
                out.write(f"{stamp.replace('+00:00', 'Z')},{rss_bytes(child.pid)}\n")
                next_sample += SAMPLE_EVERY_S
                time.sleep(max(0.0, next_sample - time.monotonic()))
    finally:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()
