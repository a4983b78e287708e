//! An axum app monitored by Plimsoll: its routes wrapped in `PlimsollLayer` (requests by
//! route template, in flight, latency, and a latency SLO), its spans timed by `SpanLayer`
//! into `SlowSpans`, and Plimsoll's exporter on a port of its own.
//!
//! `cargo run -p plimsoll --example axum --features axum,tracing`, then
//! `curl 127.0.0.1:3000/users/7` (`/users/13` fails, `/users/2000` is not found; a
//! `traceparent` header gives the spans its trace id) and
//! `curl 127.0.0.1:9090/metrics` or `/api/report`.
//!
//! The app listens on `APP_ADDR` (default 127.0.0.1:3000) and the exporter on
//! `PLIMSOLL_ADDR` (default 127.0.0.1:9090); port 0 picks a free port. It prints
//! `listening on <exporter address>` then `app listening on <app address>`, and stops
//! gracefully on Ctrl-C or SIGTERM.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use plimsoll::exporter::Exporter;
use plimsoll::middleware::{HttpMetrics, PlimsollLayer};
use plimsoll::tracing_layer::{OpenSpans, SpanLayer};
use plimsoll::{GoodEvent, Registry, Slo, SloExport, SlowSpans, SlowSpansConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

static REGISTRY: Registry<32> = Registry::new();
static HTTP: HttpMetrics = HttpMetrics::new();
static SPANS: SlowSpans = SlowSpans::new(SlowSpansConfig::DEFAULT);
static OPEN_SPANS: OpenSpans = OpenSpans::new();
/// 99 % of requests answered without a server error within 250 ms.
static LATENCY_SLO: Slo = Slo::new("http_latency", 0.99, GoodEvent::LatencyAtMost(0.25));
static SLOS: SloExport<1> = SloExport::new();

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SpanLayer::new(&SPANS, &OPEN_SPANS)))?;
    HTTP.register(&REGISTRY)?;
    SPANS.register(&REGISTRY)?;
    OPEN_SPANS.register(&REGISTRY)?;
    SLOS.add(&LATENCY_SLO)?;

    let app = Router::new()
        .route("/", get(index))
        .route("/users/{id}", get(user))
        // After routing, so that requests are labelled by route template; the fallback
        // (404) is wrapped too, and counted as `unmatched`.
        .layer(PlimsollLayer::new(&HTTP).slo(&LATENCY_SLO));
    let listener = tokio::net::TcpListener::bind(address("APP_ADDR", "127.0.0.1:3000")?).await?;
    let exporter = Exporter::builder(&REGISTRY)
        .address(address("PLIMSOLL_ADDR", "127.0.0.1:9090")?)
        .slos(&SLOS)
        .section(&SPANS)
        .bind()
        .await?;
    println!("listening on {}", exporter.local_addr());
    println!("app listening on {}", listener.local_addr()?);

    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    exporter.shutdown().await;
    Ok(())
}

/// The address in `variable`, or `default`.
fn address(variable: &str, default: &str) -> Result<SocketAddr, String> {
    let value = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    value.parse().map_err(|e| format!("{variable}={value:?}: {e}"))
}

async fn index() -> &'static str {
    "Try /users/7, /users/13 (a server error) or /users/2000 (not found).\n"
}

/// A user's page after a simulated query of `id % 20` ms, in a `load_user` span (with the
/// trace id of a W3C `traceparent` header) and a child `db.query` span.
async fn user(Path(id): Path<u64>, headers: HeaderMap) -> Result<String, StatusCode> {
    let span = tracing::info_span!("load_user", trace_id = tracing::field::Empty);
    // traceparent: version-traceid-parentid-flags; the layer checks the trace id's form.
    if let Some(trace_id) = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|v| v.split('-').nth(1)) {
        span.record("trace_id", trace_id);
    }
    async move {
        tokio::time::sleep(Duration::from_millis(id % 20)).instrument(tracing::info_span!("db.query")).await;
        match id {
            13 => Err(StatusCode::INTERNAL_SERVER_ERROR),
            1001.. => Err(StatusCode::NOT_FOUND),
            _ => Ok(format!("user {id}\n")),
        }
    }
    .instrument(span)
    .await
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
