//! The Plimsoll exporter of `benches/exporters/run.sh`: the 100 bench series in static
//! families, served by [`plimsoll::exporter::Exporter`] with its default limits on a
//! 2-worker tokio runtime.
//!
//! The series (the same in every exporter of the comparison; `check.py` verifies it):
//! nine counter families `bench_events_<f>_total{shard}` (`f` 0–8) whose series
//! `shard="s<v>"` (`v` 0–9) holds `1000 (f + 1) + v`, and one histogram family
//! `bench_latency_seconds{shard}` whose series `s<v>` holds `10 + v` observations of
//! [`OBSERVATIONS`], the `i`-th being `OBSERVATIONS[(i + v) % 10]`.
//!
//! Binds 127.0.0.1 port 0 (or the address in the first argument), prints
//! `listening on <address>` and serves until killed. The exporter adds its own families
//! (`plimsoll_exporter_*`) and the registry its per-family overflow counters
//! (`plimsoll_series_overflow_total`, ...), which the peers do not serve: Plimsoll's
//! answer is the larger one.

use plimsoll::exporter::Exporter;
use plimsoll::{Counter, ExporterMetrics, Family, LatencyHistogram, Registry};
use std::io::Write;
use std::net::SocketAddr;

/// The ten bench families and the exporter's own.
static REGISTRY: Registry<{ 10 + ExporterMetrics::FAMILIES }> = Registry::new();
static COUNTERS: [Family<Counter, 1, 10>; 9] = [
    Family::new("bench_events_0", "Bench events.", ["shard"]),
    Family::new("bench_events_1", "Bench events.", ["shard"]),
    Family::new("bench_events_2", "Bench events.", ["shard"]),
    Family::new("bench_events_3", "Bench events.", ["shard"]),
    Family::new("bench_events_4", "Bench events.", ["shard"]),
    Family::new("bench_events_5", "Bench events.", ["shard"]),
    Family::new("bench_events_6", "Bench events.", ["shard"]),
    Family::new("bench_events_7", "Bench events.", ["shard"]),
    Family::new("bench_events_8", "Bench events.", ["shard"]),
];
static LATENCY: Family<LatencyHistogram, 1, 10> =
    Family::new("bench_latency_seconds", "Bench latency.", ["shard"]).unit("seconds");
const SHARDS: [&str; 10] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
/// One value inside each classic bucket, far from its edges.
const OBSERVATIONS: [f64; 10] = [0.003, 0.007, 0.015, 0.03, 0.07, 0.15, 0.3, 0.7, 1.5, 3.0];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for family in &COUNTERS {
        REGISTRY.register(family)?;
    }
    REGISTRY.register(&LATENCY)?;
    for (v, shard) in (0u64..).zip(SHARDS) {
        for (f, family) in (1u64..).zip(&COUNTERS) {
            family.with_label_values(&[shard]).inc_by(1000 * f + v);
        }
        let series = LATENCY.with_label_values(&[shard]);
        for i in 0..10 + v {
            series.record(OBSERVATIONS[((i + v) % 10) as usize]);
        }
    }
    let address: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let exporter = Exporter::builder(&REGISTRY).address(address).bind().await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", exporter.local_addr())?;
        stdout.flush()?;
        drop(stdout);
        exporter.serve(std::future::pending()).await;
        Ok(())
    })
}
