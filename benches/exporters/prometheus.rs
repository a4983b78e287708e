//! The `prometheus` crate's exporter of `benches/exporters/run.sh`: the 100 bench series
//! (see `plimsoll.rs` for what they hold) in a `prometheus::Registry`, served by hyper 1 on
//! a 2-worker tokio runtime, gathering and encoding with `TextEncoder` on every request, as
//! the crate's documentation and its hyper example do.
//!
//! Binds 127.0.0.1 port 0 (or the address in the first argument), prints
//! `listening on <address>` and serves until killed.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

const SHARDS: [&str; 10] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
/// One value inside each classic bucket, far from its edges (as in `plimsoll.rs`).
const OBSERVATIONS: [f64; 10] = [0.003, 0.007, 0.015, 0.03, 0.07, 0.15, 0.3, 0.7, 1.5, 3.0];
/// The bucket bounds Plimsoll serves for its default buckets (0.005 … 10): each default
/// bound snapped to an edge of its native histogram (schema 4, edges 2^(k/16)). The peers
/// use them so that all four exporters serve the same `le` labels with the same counts.
const BUCKETS: [f64; 11] = [
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
];

fn registry() -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    for f in 0..9u64 {
        let counters = IntCounterVec::new(Opts::new(format!("bench_events_{f}_total"), "Bench events."), &["shard"])?;
        for (v, shard) in (0u64..).zip(SHARDS) {
            counters.with_label_values(&[shard]).inc_by(1000 * (f + 1) + v);
        }
        registry.register(Box::new(counters))?;
    }
    let opts = HistogramOpts::new("bench_latency_seconds", "Bench latency.").buckets(BUCKETS.to_vec());
    let latency = HistogramVec::new(opts, &["shard"])?;
    for (v, shard) in (0u64..).zip(SHARDS) {
        let series = latency.with_label_values(&[shard]);
        for i in 0..10 + v {
            series.observe(OBSERVATIONS[((i + v) % 10) as usize]);
        }
    }
    registry.register(Box::new(latency))?;
    Ok(registry)
}

/// `/metrics`: gather, encode into a fresh buffer, answer; anything else is 404.
async fn answer(registry: &Registry, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    let response = match encoder.encode(&registry.gather(), &mut buffer) {
        Ok(()) => Response::builder().header(CONTENT_TYPE, encoder.format_type()).body(Full::new(Bytes::from(buffer))),
        Err(error) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::from(error.to_string()))),
    };
    // The builder fails only on an invalid header, and these are constants.
    Ok(response.expect("a valid response"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry: &'static Registry = Box::leak(Box::new(registry()?));
    let address: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", listener.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(registry, request));
                // A client that goes away mid-request is not the exporter's failure.
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}
