"""The prometheus_client exporter of run.sh: the 100 bench series (see plimsoll.rs for what
they hold) in a fresh CollectorRegistry, served by start_http_server, as the library's
documentation shows. The bucket bounds are the ones Plimsoll serves for its default
buckets (see prometheus.rs); `_created` series are turned off, since the other exporters
have none.

Binds 127.0.0.1 port 0, prints `listening on <address>` and serves until killed.
"""

import signal

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, start_http_server

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


def main():
    disable_created_metrics()
    registry = CollectorRegistry()
    for f in range(9):
        counters = Counter(f"bench_events_{f}", "Bench events.", ["shard"], registry=registry)
        for v, shard in enumerate(SHARDS):
            counters.labels(shard=shard).inc(1000 * (f + 1) + v)
    latency = Histogram("bench_latency_seconds", "Bench latency.", ["shard"], buckets=BUCKETS, registry=registry)
    for v, shard in enumerate(SHARDS):
        series = latency.labels(shard=shard)
        for i in range(10 + v):
            series.observe(OBSERVATIONS[(i + v) % 10])
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
