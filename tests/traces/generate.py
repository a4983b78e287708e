"""Writes the synthetic traces of the leak-check evaluation set from manifest.toml.

Each `[[trace]]` with a `synthetic` table becomes a CSV: a sample every `interval_s` for
`span_s` seconds of

    floor + rate × max(0, t − leak_starts_s) + shape(t) + Gaussian noise (σ noise_mib)

where floor is the truth's `floor_bytes` (or `floor_mib`), rate its `rate_bytes_per_hour`
(0 without a leak), leak_starts_s its start (0 if not given), and shape the sum of the optional parts:

- sawtooth { mib, period_s }: a collector's heap, rising by about `mib` over about
  `period_s` (each cycle drawn within ±20 % and ±30 %), then dropping back to the floor;
- warm_up { mib, tau_s }: mib × (1 − e^(−t / tau_s));
- cache { mib, fill_s }: mib × min(t / fill_s, 1);
- spikes { mib, every_s, duration_s }: a triangle of height mib, duration_s long, every
  every_s;
- step { mib, at_s }: mib from at_s on.

The time column is `t_s` by default, `t_ms` with time = "ms", RFC 3339 date-times from
2026-01-01T00:00:00Z with time = "rfc3339". Values are whole bytes. Every trace has its
own seed, so the files are the same on every run (Python's `random` is stable across
versions for these calls).

    python3 tests/traces/generate.py
"""

import datetime
import math
import os
import random
import tomllib

MIB = 1 << 20
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def shape(params, t, state, rng):
    extra = 0.0
    saw = params.get("sawtooth")
    if saw:
        if t >= state["gc_at"]:
            state["cycle_start"] = t
            state["height"] = saw["mib"] * MIB * rng.uniform(0.8, 1.2)
            state["period"] = saw["period_s"] * rng.uniform(0.7, 1.3)
            state["gc_at"] = t + state["period"]
        extra += state["height"] * (t - state["cycle_start"]) / state["period"]
    warm = params.get("warm_up")
    if warm:
        extra += warm["mib"] * MIB * (1.0 - math.exp(-t / warm["tau_s"]))
    cache = params.get("cache")
    if cache:
        extra += cache["mib"] * MIB * min(t / cache["fill_s"], 1.0)
    spikes = params.get("spikes")
    if spikes:
        into = t % spikes["every_s"]
        half = spikes["duration_s"] / 2.0
        if into < spikes["duration_s"]:
            extra += spikes["mib"] * MIB * (1.0 - abs(into - half) / half)
    step = params.get("step")
    if step and t >= step["at_s"]:
        extra += step["mib"] * MIB
    return extra


def time_text(kind, t):
    if kind == "ms":
        return f"{round(t * 1000)}"
    if kind == "rfc3339":
        return (EPOCH + datetime.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{t:g}"


def write(directory, entry):
    params = entry["synthetic"]
    rng = random.Random(params["seed"])
    floor = entry.get("floor_bytes", params.get("floor_mib", 0) * MIB)
    rate = entry.get("rate_bytes_per_hour", 0.0) / 3600.0
    leak_start = entry.get("leak_starts_s", 0.0)
    kind = params.get("time", "s")
    header = {"s": "t_s", "ms": "t_ms", "rfc3339": "time"}[kind]
    state = {"gc_at": 0.0}
    steps = round(params["span_s"] / params["interval_s"])
    with open(os.path.join(directory, entry["file"]), "w") as out:
        out.write(f"{header},rss_bytes\n")
        for i in range(steps + 1):
            t = i * params["interval_s"]
            value = floor + rate * max(0.0, t - leak_start) + shape(params, t, state, rng) + rng.gauss(0.0, params["noise_mib"] * MIB)
            out.write(f"{time_text(kind, t)},{max(0, round(value))}\n")


def main():
    directory = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(directory, "manifest.toml"), "rb") as manifest:
        entries = tomllib.load(manifest)["trace"]
    for entry in entries:
        if "synthetic" in entry:
            write(directory, entry)


if __name__ == "__main__":
    main()
