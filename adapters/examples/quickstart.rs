//! Declares a static registry with families, an SLO and a rate window, records a
//! synthetic workload, then prints the footprint report and the Prometheus exposition.
//!
//! `cargo run --release -p plimsoll --example quickstart [-- --openmetrics]`

use plimsoll::{
    Counter, Family, Format, Gauge, GoodEvent, LatencyHistogram, MetricKind, RateWindow, Registry, Slo, SloExport,
    Unlabelled,
};
use std::io::Write;

static REGISTRY: Registry<16> = Registry::new();
static REQUESTS: Family<Counter, 2, 64> =
    Family::new("http_requests", "HTTP requests served, by method and status.", ["method", "status"]);
static LATENCY: Family<LatencyHistogram, 1, 32> =
    Family::new("http_request_duration_seconds", "HTTP request latency, by route.", ["route"]).unit("seconds");
static IN_FLIGHT: Unlabelled<Gauge> = Unlabelled::new("http_requests_in_flight", "Requests being served.");
/// 99 % of requests answered within 300 ms.
static LATENCY_SLO: Slo = Slo::new("http_latency", 0.99, GoodEvent::LatencyAtMost(0.3));
static SLOS: SloExport<1> = SloExport::new();
static REQUEST_RATE: RateWindow = RateWindow::new();

/// The workload's clock: one request every 10 ms from this instant (milliseconds).
const START_MS: u64 = 1_000_000_000;
const STEP_MS: u64 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    REGISTRY.register(&REQUESTS)?;
    REGISTRY.register(&LATENCY)?;
    REGISTRY.register(&IN_FLIGHT)?;
    SLOS.add(&LATENCY_SLO)?;
    SLOS.register(&REGISTRY)?;

    let end_ms = record_synthetic_workload(100_000);
    SLOS.update(end_ms);
    print_footprint();
    eprintln!(
        "over the last minute: {:.0} requests/s; 1h latency burn rate {:.2}\n",
        REQUEST_RATE.rate_per_second(end_ms, 60_000).unwrap_or(0.0),
        LATENCY_SLO.burn_rate(end_ms, plimsoll::SloWindow::H1).unwrap_or(0.0),
    );

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

/// A deterministic mix of routes, methods, statuses and skewed latencies, one request
/// every 10 ms; returns the time of the last one.
fn record_synthetic_workload(requests: u64) -> u64 {
    const ROUTES: [&str; 5] = ["/", "/users/:id", "/search", "/static/*path", "/api/orders"];
    const METHODS: [&str; 3] = ["GET", "POST", "DELETE"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut now_ms = START_MS;
    for i in 0..requests {
        now_ms = START_MS + i * STEP_MS;
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
        REQUEST_RATE.inc(now_ms);
        LATENCY_SLO.record_latency(now_ms, latency);
        IN_FLIGHT.sub(1);
    }
    now_ms
}

fn print_footprint() {
    eprintln!("{:<44} {:<10} {:>6} {:>8}", "family", "type", "series", "bytes");
    for family in REGISTRY.families() {
        let d = family.descriptor();
        let kind = match d.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        eprintln!("{:<44} {:<10} {:>6} {:>8}", d.name, kind, family.series_in_use(), family.footprint());
    }
    eprintln!("{:<44} {:<10} {:>6} {:>8}", "(registry)", "", "", Registry::<16>::FOOTPRINT);
    // The export's families are listed above and counted in the registry's footprint;
    // the export's own footprint includes them too, so they are taken out once.
    let export_families: usize =
        REGISTRY.families().filter(|f| f.descriptor().name.starts_with("plimsoll_slo_")).map(|f| f.footprint()).sum();
    let export_rest = SloExport::<1>::FOOTPRINT - export_families;
    eprintln!("{:<44} {:<10} {:>6} {:>8}", "(slo export, besides families)", "", "", export_rest);
    eprintln!("{:<44} {:<10} {:>6} {:>8}", "slo http_latency", "slo", "", Slo::<361, 721>::FOOTPRINT);
    eprintln!("{:<44} {:<10} {:>6} {:>8}", "request rate window", "window", "", RateWindow::FOOTPRINT);
    let total = REGISTRY.footprint() + export_rest + Slo::<361, 721>::FOOTPRINT + RateWindow::FOOTPRINT;
    eprintln!("total: {total} bytes, fixed at compile time\n");
}
