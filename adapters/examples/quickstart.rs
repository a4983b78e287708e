//! Declares a static registry, records a synthetic workload, then prints the footprint
//! report and the Prometheus exposition.
//!
//! `cargo run --release -p plimsoll --example quickstart [-- --openmetrics]`

use plimsoll::{Counter, Family, Format, Gauge, LatencyHistogram, MetricKind, Registry, Unlabelled};
use std::io::Write;

static REGISTRY: Registry<8> = Registry::new();
static REQUESTS: Family<Counter, 2, 64> =
    Family::new("http_requests", "HTTP requests served, by method and status.", ["method", "status"]);
static LATENCY: Family<LatencyHistogram, 1, 32> =
    Family::new("http_request_duration_seconds", "HTTP request latency, by route.", ["route"]).unit("seconds");
static IN_FLIGHT: Unlabelled<Gauge> = Unlabelled::new("http_requests_in_flight", "Requests being served.");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    REGISTRY.register(&REQUESTS)?;
    REGISTRY.register(&LATENCY)?;
    REGISTRY.register(&IN_FLIGHT)?;

    record_synthetic_workload(100_000);
    print_footprint();

    let format = if std::env::args().any(|a| a == "--openmetrics") { Format::OpenMetrics } else { Format::Prometheus };
    let mut buf = [0u8; 4096];
    let mut renderer = REGISTRY.renderer(format);
    let mut stdout = std::io::stdout().lock();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf)?;
        stdout.write_all(&buf[..n])?;
    }
    Ok(())
}

/// A deterministic mix of routes, methods, statuses and log-normal-ish latencies.
fn record_synthetic_workload(requests: u32) {
    const ROUTES: [&str; 5] = ["/", "/users/:id", "/search", "/static/*path", "/api/orders"];
    const METHODS: [&str; 3] = ["GET", "POST", "DELETE"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..requests {
        // xorshift64: a reproducible stream with no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let route = ROUTES[(state % 5) as usize];
        let method = METHODS[((state >> 8) % 3) as usize];
        let status = match (state >> 16) % 100 {
            0..=1 => "500",
            2..=6 => "404",
            _ => "200",
        };
        IN_FLIGHT.add(1);
        let latency = 0.002 * (1.0 + ((state >> 24) % 1000) as f64 / 50.0).powi(2);
        LATENCY.with_label_values(&[route]).record(latency);
        REQUESTS.with_label_values(&[method, status]).inc();
        IN_FLIGHT.sub(1);
    }
}

fn print_footprint() {
    eprintln!("{:<32} {:<10} {:>8} {:>10}", "family", "type", "series", "bytes");
    for family in REGISTRY.families() {
        let d = family.descriptor();
        let kind = match d.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        eprintln!("{:<32} {:<10} {:>8} {:>10}", d.name, kind, family.series_in_use(), family.footprint());
    }
    eprintln!("{:<32} {:<10} {:>8} {:>10}", "(registry)", "", "", Registry::<8>::FOOTPRINT);
    eprintln!("total: {} bytes, fixed at compile time\n", REGISTRY.footprint());
}
