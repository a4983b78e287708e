"""Checks that a /metrics answer serves the 100 bench series with the expected values.

Usage: check.py FILE...  (each a Prometheus text exposition; exit status 1 if any fails)

The expected samples are computed here from the definition every exporter follows (see
plimsoll.rs): nine counter families bench_events_<f>_total{shard="s<v>"} = 1000 (f + 1) + v
and the histogram bench_latency_seconds{shard="s<v>"} of 10 + v observations, the i-th
OBSERVATIONS[(i + v) % 10], in the bucket bounds Plimsoll serves. Values are compared as
numbers (1003 and 1003.0 are equal), label sets whatever their order. Other families (an
exporter's own metrics) are counted, not judged. Standard library only.
"""

import math
import re
import sys

SHARDS = [f"s{v}" for v in range(10)]
OBSERVATIONS = [0.003, 0.007, 0.015, 0.03, 0.07, 0.15, 0.3, 0.7, 1.5, 3.0]
BUCKETS = [
    0.005065779510355506,
    0.010131559020711013,
    0.025163911436707098,
    0.050327822873414196,
    0.10065564574682839,
    0.25,
    0.5,
    1.0,
    2.5936791093020193,
    5.187358218604039,
    10.374716437208077,
]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def expected():
    """{(name, labels): value} and {family: type} of the bench families."""
    samples, types = {}, {}
    for f in range(9):
        family = f"bench_events_{f}_total"
        types[family] = "counter"
        for v, shard in enumerate(SHARDS):
            samples[(family, (("shard", shard),))] = 1000 * (f + 1) + v
    types["bench_latency_seconds"] = "histogram"
    for v, shard in enumerate(SHARDS):
        values = [OBSERVATIONS[(i + v) % 10] for i in range(10 + v)]
        for bound in BUCKETS + [math.inf]:
            labels = (("le", bound), ("shard", shard))
            samples[("bench_latency_seconds_bucket", labels)] = sum(1 for x in values if x <= bound)
        total = 0.0
        for x in values:
            total += x
        samples[("bench_latency_seconds_sum", (("shard", shard),))] = total
        samples[("bench_latency_seconds_count", (("shard", shard),))] = len(values)
    return samples, types


def labels_of(text):
    """The label set as a sorted tuple; `le` as a number, so 1 and 1.0 are one bound."""
    pairs, at = [], 0
    while at < len(text):
        match = LABEL.match(text, at)
        if not match:
            raise ValueError(f"malformed labels: {text!r}")
        name, value = match.group(1), match.group(2)
        pairs.append((name, float(value) if name == "le" else value))
        at = match.end()
    return tuple(sorted(pairs))


def parse(path):
    """Samples and TYPE lines of the bench families; the count of other sample lines."""
    samples, types, others = {}, {}, 0
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            line = line.rstrip("\n")
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(" ", 3)
                if family.startswith("bench_"):
                    types[family] = kind
                continue
            if not line or line.startswith("#"):
                continue
            match = SAMPLE.match(line)
            if not match:
                raise ValueError(f"{path}:{number}: not a sample line: {line!r}")
            name, labels, value = match.groups()
            if not name.startswith("bench_"):
                others += 1
                continue
            key = (name, labels_of(labels or ""))
            if key in samples:
                raise ValueError(f"{path}:{number}: repeated sample {name}{{{labels}}}")
            samples[key] = float(value)
    return samples, types, others


def check(path, want, want_types):
    """Problems with the exposition in `path`, and a one-line summary."""
    samples, types, others = parse(path)
    problems = []
    for family, kind in want_types.items():
        # prom-client and prometheus_client name a counter family with or without _total.
        got = types.get(family, types.get(family.removesuffix("_total")))
        if got != kind:
            problems.append(f"family {family}: TYPE {got}, expected {kind}")
    for key, value in want.items():
        got = samples.get(key)
        if got is None:
            problems.append(f"missing {key[0]}{dict(key[1])}")
        elif not math.isclose(got, value, rel_tol=1e-12, abs_tol=0.0):
            problems.append(f"{key[0]}{dict(key[1])} = {got}, expected {value}")
    problems += [f"unexpected {k[0]}{dict(k[1])}" for k in samples.keys() - want.keys()]
    series = len({(k[0].removesuffix("_bucket").removesuffix("_sum").removesuffix("_count"), k[1][-1]) for k in samples})
    summary = f"{series} bench series in {len(samples)} sample lines, {others} other sample lines"
    return problems, summary


def main(paths):
    want, want_types = expected()
    failed = False
    for path in paths:
        try:
            problems, summary = check(path, want, want_types)
        except (OSError, ValueError) as error:
            problems, summary = [str(error)], "unreadable"
        print(f"{path}: {'ok' if not problems else 'FAILED'}: {summary}")
        for problem in problems[:10]:
            print(f"  {problem}")
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
