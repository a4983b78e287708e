//! The HTTP exporter end to end, over real sockets on 127.0.0.1: a scrape that promtool
//! and `prometheus_client` accept, content negotiation, HEAD, 405, 404, the bearer token,
//! `/health` from SLO alerts, slowloris, oversized heads, a connection flood over the cap,
//! busy kept-alive clients over the cap, idle keep-alive connections, graceful shutdown, and the heap over many scrapes.
//!
//! Every test runs under a time budget, binds port 0, and holds its [`RunningExporter`],
//! whose `Drop` shuts the server down, so a failing test stops its server too.

use crate::support::{dechunk, promtool_check, python_parse, render};
use plimsoll::exporter::{CloseReason, Exporter, ExporterMetrics, Limits, RunningExporter};
use plimsoll::{Counter, Family, Format, GoodEvent, ManualClock, Registry, Slo, SloExport, StdClock, Unlabelled};
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// The most any one test may take.
const BUDGET: Duration = Duration::from_secs(20);

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    timeout(BUDGET, test).await.expect("the test ran past its time budget")
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// Binds `exporter` to a free loopback port.
async fn start<const F: usize>(exporter: Exporter<F>) -> RunningExporter {
    exporter.address(any_port()).bind().await.expect("the exporter binds")
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Parses a whole response (head and body, chunked or not).
fn parse_reply(bytes: &[u8]) -> Reply {
    let text = String::from_utf8(bytes.to_vec()).expect("a UTF-8 response");
    let (head, raw_body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(raw_body) } else { raw_body.to_owned() };
    Reply { status, headers, body }
}

/// Sends `request` (a whole HTTP/1.1 request asking to close) and reads the response to
/// the end of the connection.
async fn send(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read the response");
    parse_reply(&bytes)
}

/// `METHOD path` with extra header lines (each ending in CRLF).
async fn call(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Reply {
    send(addr, &format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n")).await
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    call(addr, "GET", path, "").await
}

const PROMETHEUS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

#[tokio::test]
async fn a_scrape_passes_promtool_and_prometheus_client() {
    static REGISTRY: Registry<32> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    static SLOS: SloExport<1> = SloExport::new();
    static CLOCK: StdClock = StdClock::new();
    bounded(async {
        crate::exposition::register_thousand_series(&REGISTRY);
        SLOS.add(&API).expect("a valid SLO");
        let limits = Limits { render_buffer_bytes: 4096, ..Limits::default() };
        let exporter = Exporter::builder(&REGISTRY).metrics(&METRICS).slos(&SLOS).clock(&CLOCK).limits(limits);
        let server = start(exporter).await;
        let addr = server.local_addr();

        // A real client: hyper's, over a fresh connection.
        let text = hyper_get(addr, "/metrics").await;
        promtool_check(&text);
        assert!(!python_parse(&text, Format::Prometheus).is_empty());
        // The application's families come first and match a direct render byte for byte,
        // though the body went out in chunks of at most 4 KiB.
        let direct = render(&REGISTRY, Format::Prometheus, 1 << 20);
        let app_part = &direct[..direct.find("# HELP plimsoll_exporter").expect("exporter families")];
        assert!(app_part.len() > 100_000, "the scrape spans many chunks");
        assert!(text.starts_with(app_part));
        for line in [
            "plimsoll_exporter_requests_total{code=\"200\"} ",
            "plimsoll_exporter_unauthorized_requests_total 0",
            "plimsoll_exporter_connections_open 1",
            "plimsoll_exporter_connections_closed_total{reason=\"header_timeout\"} 0",
            "plimsoll_slo_alert{slo=\"api\",severity=\"page\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?}");
        }

        let reply = call(addr, "GET", "/metrics", &format!("Accept: {PROMETHEUS_ACCEPT}\r\n")).await;
        assert_eq!(reply.header("content-type"), Some(Format::OpenMetrics.content_type()));
        assert!(reply.body.ends_with("# EOF\n"));
        assert!(!python_parse(&reply.body, Format::OpenMetrics).is_empty());
        assert_eq!(METRICS.requests(200), 2);
    })
    .await;
}

/// GET through hyper's client; returns the body after checking status and type.
async fn hyper_get(addr: SocketAddr, path: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path).header("host", "test").body(Empty::<bytes::Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], Format::Prometheus.content_type());
    let body = response.into_body().collect().await.expect("the whole body").to_bytes();
    drop(sender);
    let _ = driver.await;
    String::from_utf8(body.to_vec()).expect("UTF-8")
}

#[tokio::test]
async fn content_negotiation_follows_accept() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        let cases: [(Option<&str>, Format); 8] = [
            (None, Format::Prometheus),
            (Some(PROMETHEUS_ACCEPT), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (Some("text/plain"), Format::Prometheus),
            (Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"), Format::Prometheus),
            (Some("*/*"), Format::Prometheus),
            (Some("application/json"), Format::Prometheus),
            (Some("application/openmetrics-text;version=2.0.0"), Format::Prometheus),
        ];
        for (accept, format) in cases {
            let header = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
            let reply = call(server.local_addr(), "GET", "/metrics", &header).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("content-type"), Some(format.content_type()), "Accept: {accept:?}");
            assert_eq!(reply.body.ends_with("# EOF\n"), format == Format::OpenMetrics, "Accept: {accept:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn head_answers_headers_only() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        for (path, content_type) in [
            ("/metrics", Format::Prometheus.content_type()),
            ("/health/live", "application/json"),
            ("/health", "application/json"),
            ("/health/ready", "application/json"),
        ] {
            let reply = call(server.local_addr(), "HEAD", path, "").await;
            assert_eq!(reply.status, 200, "{path}");
            assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
            assert_eq!(reply.body, "", "{path}");
        }
        let reply = call(server.local_addr(), "HEAD", "/metrics", &format!("Accept: {PROMETHEUS_ACCEPT}\r\n")).await;
        assert_eq!(reply.header("content-type"), Some(Format::OpenMetrics.content_type()));
    })
    .await;
}

#[tokio::test]
async fn other_methods_get_405_and_other_paths_404() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        let addr = server.local_addr();
        for (method, path) in
            [("POST", "/metrics"), ("PUT", "/health/live"), ("DELETE", "/health"), ("OPTIONS", "/health/ready")]
        {
            let reply = call(addr, method, path, "Content-Length: 0\r\n").await;
            assert_eq!(reply.status, 405, "{method} {path}");
            assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
        for path in ["/", "/metrics/", "/metricsx", "/health/", "/health/live/x", "/snapshot"] {
            assert_eq!(get(addr, path).await.status, 404, "{path}");
        }
        assert_eq!(call(addr, "POST", "/nowhere", "Content-Length: 0\r\n").await.status, 404);
        // Query strings do not change the route.
        assert_eq!(get(addr, "/health/live?verbose=1").await.status, 200);
        assert_eq!(METRICS.requests(405), 4);
        assert_eq!(METRICS.requests(404), 7);
        assert_eq!(get(addr, "/health/live").await.body, r#"{"status":"live"}"#);
        assert_eq!(get(addr, "/health/ready").await.body, r#"{"status":"ready"}"#);
    })
    .await;
}

/// Found by the `http` fuzz target: a client that shuts down its write side as soon as its
/// request is sent (as `nc -N` does) got no answer to about 1 request in 25, when the
/// end-of-file reached hyper before it responded. Blocking clients on their own thread
/// and a multi-threaded server, as in production, make the race show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_half_close_after_the_request_are_answered() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        let addr = server.local_addr();
        let unanswered = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut unanswered = 0;
            for request in ["GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n", "GET /metrics HTTP/1.0\r\n\r\n"] {
                for _ in 0..500 {
                    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
                    stream.write_all(request.as_bytes()).expect("send the request");
                    stream.shutdown(std::net::Shutdown::Write).expect("half-close");
                    let mut bytes = Vec::new();
                    stream.read_to_end(&mut bytes).expect("read the response");
                    if bytes.is_empty() {
                        unanswered += 1;
                    } else {
                        assert_eq!(parse_reply(&bytes).status, 200);
                    }
                }
            }
            unanswered
        })
        .await
        .expect("the client thread");
        assert_eq!(unanswered, 0, "requests left unanswered after a half-close, of 1,000");
    })
    .await;
}

#[tokio::test]
async fn snapshot_serves_the_state_as_the_file_holds_it() {
    static REGISTRY: Registry<32> = Registry::new();
    static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    static PARTS: [&dyn plimsoll::snapshot::SnapshotPart; 1] = [&API];
    static CLOCK: ManualClock = ManualClock::new(0);
    bounded(async {
        CLOCK.set(3_600_000);
        for i in 0..1_000u64 {
            API.record(i * 1_000, i % 100 != 0);
        }
        let server =
            start(Exporter::builder(&REGISTRY).snapshot(&PARTS).clock(&CLOCK).token(Some("s3cret".into()))).await;
        let addr = server.local_addr();
        assert_eq!(get(addr, "/snapshot").await.status, 401, "the token guards the state");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = "GET /snapshot HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.expect("read");
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: application/octet-stream"), "{head}");
        let body = &bytes[split..];
        let restored_into: Box<Slo> = Box::new(Slo::new("api", 0.999, GoodEvent::Success));
        let restored = plimsoll::snapshot::restore(&[&*restored_into], body).expect("the served snapshot restores");
        assert_eq!(restored.taken_at_ms, 3_600_000, "taken with the exporter's clock");
        assert_eq!(restored_into.cumulative(), API.cumulative());
        assert_eq!(call(addr, "HEAD", "/snapshot", "Authorization: Bearer s3cret\r\n").await.body, "");
    })
    .await;
}

#[tokio::test]
async fn the_report_shows_every_section_and_an_open_breaker_degrades_health() {
    use plimsoll::topk::TopKExport;
    use plimsoll::{
        BreakerConfig, BreakerExport, CircuitBreaker, EventKind, Quota, RateLimitExport, RateLimiter, SecurityEvents,
        SlowQueryTracker, SlowSpans, SlowSpansConfig, ThreatRules, TopK, fingerprint,
    };
    use std::num::NonZeroU32;
    static REGISTRY: Registry<64> = Registry::new();
    static CLOCK: ManualClock = ManualClock::new(1_000);
    static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    static SLOS: SloExport<1> = SloExport::new();
    static DB: CircuitBreaker<10> =
        CircuitBreaker::new("db", BreakerConfig { minimum_number_of_calls: 5, ..BreakerConfig::DEFAULT });
    static BREAKERS: BreakerExport<1> = BreakerExport::new();
    static LIMITER: RateLimiter<64> = RateLimiter::new("login", Quota::per_minute(NonZeroU32::new(5).unwrap()));
    static LIMITS: RateLimitExport<1> = RateLimitExport::new();
    static EVENTS: SecurityEvents<16, 16> = SecurityEvents::new(ThreatRules::DEFAULT);
    static OFFENDERS: TopK<8> = TopK::new();
    static OFFENDERS_EXPORT: TopKExport<8> = TopKExport::new(&OFFENDERS, "demo_top_limited_clients", "Top clients.");
    static QUERIES: SlowQueryTracker<8, 120> = SlowQueryTracker::new();
    static SPANS: SlowSpans<4, 4> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    bounded(async {
        SLOS.add(&API).unwrap();
        BREAKERS.add(&DB).unwrap();
        BREAKERS.register(&REGISTRY).unwrap();
        LIMITS.add(&LIMITER).unwrap();
        LIMITS.register(&REGISTRY).unwrap();
        EVENTS.register(&REGISTRY).unwrap();
        OFFENDERS_EXPORT.register(&REGISTRY).unwrap();
        QUERIES.register(&REGISTRY).unwrap();
        SPANS.register(&REGISTRY).unwrap();
        for i in 0..10u64 {
            if matches!(LIMITER.check(7, 1_000 + i), plimsoll::Decision::Limited { .. }) {
                OFFENDERS.add(7, 1);
                EVENTS.record(EventKind::RateLimited, 7, 429, 1_000 + i);
            }
        }
        let query = fingerprint("SELECT * FROM orders WHERE customer_id = 42 AND created_at > '2026-01-01'");
        QUERIES.record(query.hash(), query.text(), 250_000, 1_000);
        SPANS.record("checkout", 900, 120_000, Some([0xab; 16]), 1_000);
        let server = start(
            Exporter::builder(&REGISTRY)
                .slos(&SLOS)
                .clock(&CLOCK)
                .section(&BREAKERS)
                .section(&LIMITS)
                .section(&EVENTS)
                .section(&OFFENDERS_EXPORT)
                .section(&QUERIES)
                .section(&SPANS),
        )
        .await;
        let addr = server.local_addr();
        let health: Value = serde_json::from_str(&get(addr, "/health").await.body).unwrap();
        assert_eq!(health["status"], "healthy");
        assert_eq!(health["checks"]["breaker:db"]["state"], "closed");

        // Five failures open the breaker: the service is degraded, still 200.
        for _ in 0..5 {
            let _permit = DB.try_acquire(1_000).unwrap();
            DB.on_error(10, 1_000);
        }
        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 200);
        let health: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(health["status"], "degraded", "{health}");
        assert_eq!(health["checks"]["breaker:db"]["state"], "open");

        let reply = get(addr, "/api/report").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let report: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(report["status"], "degraded");
        assert_eq!(report["slos"][0]["name"], "api");
        assert_eq!(report["breakers"][0]["state"], "open");
        assert_eq!(report["breakers"][0]["failed_calls"], 5);
        assert_eq!(report["rate_limits"][0]["name"], "login");
        assert_eq!(report["rate_limits"][0]["limited"], 5);
        assert_eq!(report["security"]["by_kind"]["rate_limited"], 5);
        assert_eq!(report["demo_top_limited_clients"][0]["key"], "0000000000000007");
        assert_eq!(report["demo_top_limited_clients"][0]["count"], 5);
        let slow = &report["slow_queries"]["top_by_total_time"][0];
        assert_eq!(slow["calls"], 1);
        assert_eq!(slow["index_hints"][0], "orders (customer_id, created_at)");
        assert_eq!(report["slow_spans"]["slowest"][0]["name"], "checkout");
        assert_eq!(report["slow_spans"]["slowest"][0]["trace_id"], "ab".repeat(16));
        assert!(report["footprint"]["registry_bytes"].as_u64().unwrap() > 0);

        // The sections' families are in the exposition, checked by promtool.
        let metrics = get(addr, "/metrics").await.body;
        for line in [
            "plimsoll_circuit_breaker_state{name=\"db\",state=\"open\"} 1",
            "plimsoll_ratelimit_decisions_total{limiter=\"login\",decision=\"limited\"} 5",
            "demo_top_limited_clients{rank=\"1\",key=\"0000000000000007\"} 5",
            "plimsoll_query_slow_total 1",
        ] {
            assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
        }
        promtool_check(&metrics);
    })
    .await;
}

#[tokio::test]
async fn the_token_guards_everything_but_liveness() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let token = "t0ken-for-the-tests".to_owned();
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).token(Some(token.clone()))).await;
        let addr = server.local_addr();
        let refused = [
            "",
            "Authorization: Bearer t0ken-for-the-testz\r\n",
            "Authorization: Bearer t0ken\r\n",
            "Authorization: Bearer t0ken-for-the-tests-and-more\r\n",
            "Authorization: Basic t0ken-for-the-tests\r\n",
        ];
        for (i, header) in refused.iter().enumerate() {
            let reply = call(addr, "GET", "/metrics", header).await;
            assert_eq!(reply.status, 401, "{header:?}");
            assert!(reply.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
            assert_eq!(METRICS.unauthorized_requests(), i as u64 + 1);
        }
        for path in ["/health", "/health/ready", "/nowhere"] {
            assert_eq!(get(addr, path).await.status, 401, "{path}");
        }
        assert_eq!(call(addr, "POST", "/metrics", "Content-Length: 0\r\n").await.status, 401);
        assert_eq!(METRICS.unauthorized_requests(), 9);

        // Liveness stays open, with or without a token.
        assert_eq!(get(addr, "/health/live").await.status, 200);
        assert_eq!(call(addr, "GET", "/health/live", "Authorization: Bearer wrong\r\n").await.status, 200);

        let right = format!("Authorization: Bearer {token}\r\n");
        let reply = call(addr, "GET", "/metrics", &right).await;
        assert_eq!(reply.status, 200);
        promtool_check(&reply.body);
        assert!(reply.body.contains("plimsoll_exporter_unauthorized_requests_total 9\n"), "{}", reply.body);
        assert!(reply.body.contains("plimsoll_exporter_requests_total{code=\"401\"} 9\n"));
        for path in ["/health", "/health/ready"] {
            assert_eq!(call(addr, "GET", path, &right).await.status, 200, "{path}");
        }
        assert_eq!(call(addr, "GET", "/nowhere", &right).await.status, 404);
        assert_eq!(METRICS.unauthorized_requests(), 9);
    })
    .await;
}

#[tokio::test]
async fn health_reports_slo_alerts() {
    const MINUTE: u64 = 60_000;
    const DAY: u64 = 24 * 60 * MINUTE;
    const START: u64 = 100 * DAY;
    static REGISTRY: Registry<32> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    static CLOCK: ManualClock = ManualClock::new(START);
    static BATCH: Slo = Slo::new("batch", 0.9, GoodEvent::Success);
    static CHECKOUT: Slo = Slo::new("checkout \"eu\"", 0.999, GoodEvent::Success);
    static SLOS: SloExport<2> = SloExport::new();
    bounded(async {
        SLOS.add(&BATCH).expect("valid SLO");
        SLOS.add(&CHECKOUT).expect("valid SLO");
        let exporter = Exporter::builder(&REGISTRY).metrics(&METRICS).slos(&SLOS).clock(&CLOCK);
        let server = start(exporter).await;
        let addr = server.local_addr();
        let checks = |reply: &Reply| reply.json()["checks"].clone();

        let reply = get(addr, "/health").await;
        assert_eq!((reply.status, reply.json()["status"].as_str()), (200, Some("healthy")));
        let no_alert = serde_json::json!({"page": false, "ticket": false});
        assert_eq!(checks(&reply), serde_json::json!({"slo:batch": no_alert, "slo:checkout \"eu\"": no_alert}));

        // Batch: every 5th event bad for 3 days and an hour, against 90 %: a burn rate of 2
        // opens the 3d/6h ticket and nothing else.
        let end = START + 3 * DAY + 60 * MINUTE;
        for (i, t) in (START..end).step_by(10_000).enumerate() {
            BATCH.record(t, i % 5 != 4);
        }
        CLOCK.set(end);
        let reply = get(addr, "/health").await;
        assert_eq!((reply.status, reply.json()["status"].as_str()), (200, Some("degraded")), "{}", reply.body);
        assert_eq!(checks(&reply)["slo:batch"], serde_json::json!({"page": false, "ticket": true}));

        // Checkout: a total outage for 65 minutes pages.
        let outage_end = end + 65 * MINUTE;
        for t in (end..outage_end).step_by(1_000) {
            CHECKOUT.record(t, false);
        }
        CLOCK.set(outage_end);
        let reply = get(addr, "/health").await;
        assert_eq!((reply.status, reply.json()["status"].as_str()), (503, Some("unhealthy")), "{}", reply.body);
        assert_eq!(checks(&reply)["slo:checkout \"eu\""]["page"], true);
        assert_eq!(checks(&reply)["slo:batch"]["ticket"], true);
        // The body escapes the quotes in the name.
        assert!(reply.body.contains(r#""slo:checkout \"eu\"""#), "{}", reply.body);

        // /metrics agrees, and the whole exposition passes promtool.
        let text = get(addr, "/metrics").await.body;
        assert!(text.contains("plimsoll_slo_alert{slo=\"checkout \\\"eu\\\"\",severity=\"page\"} 1\n"));
        promtool_check(&text);
    })
    .await;
}

/// Bytes a slowloris client trickles: a request head that never ends.
const TRICKLE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Sends `TRICKLE` one byte every `every`; returns how long the server kept the
/// connection open.
async fn trickle(addr: SocketAddr, every: Duration) -> Duration {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let opened = Instant::now();
    let mut buf = [0u8; 256];
    for byte in TRICKLE.iter().cycle() {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return opened.elapsed(),
                Ok(_) => panic!("the server answered a request head that never ended"),
            },
            () = sleep(every) => {
                if stream.write_all(&[*byte]).await.is_err() {
                    return opened.elapsed();
                }
            }
        }
    }
    unreachable!("cycle never ends")
}

#[tokio::test]
async fn slowloris_connections_are_cut_at_the_header_timeout() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let limits = Limits { header_read_timeout: Duration::from_secs(1), ..Limits::default() };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();
        let slow: Vec<_> = (0..50).map(|_| tokio::spawn(trickle(addr, Duration::from_millis(200)))).collect();

        sleep(Duration::from_millis(300)).await;
        for path in ["/metrics", "/health/live"] {
            let asked = Instant::now();
            let reply = timeout(Duration::from_secs(1), get(addr, path)).await.expect("answered within 1 s");
            assert_eq!(reply.status, 200, "{path}");
            assert!(asked.elapsed() < Duration::from_secs(1));
        }
        for task in slow {
            let kept = task.await.expect("the slow client ran");
            assert!(kept >= Duration::from_millis(900) && kept < Duration::from_millis(2500), "kept open {kept:?}");
        }
        assert_eq!(METRICS.connections_closed(CloseReason::HeaderTimeout), 50);
        assert_eq!(get(addr, "/health/live").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn oversized_heads_get_431_and_the_server_carries_on() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        let addr = server.local_addr();
        // Just under the 8 KiB default: served.
        let fits = format!("X-Big: {}\r\n", "a".repeat(7 << 10));
        assert_eq!(call(addr, "GET", "/health/live", &fits).await.status, 200);

        for size in [9 << 10, 64 << 10, 1 << 20] {
            let big = format!("GET /metrics HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n", "a".repeat(size));
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            // The server may close before taking it all; a failed write is fine.
            let _ = stream.write_all(big.as_bytes()).await;
            let mut bytes = Vec::new();
            match stream.read_to_end(&mut bytes).await {
                Ok(_) if !bytes.is_empty() => assert_eq!(parse_reply(&bytes).status, 431, "{size} bytes"),
                // Closed (or reset, since the request was not read whole) without an answer.
                _ => {}
            }
        }
        assert!(METRICS.connections_closed(CloseReason::HeadersTooLarge) >= 1);
        assert_eq!(get(addr, "/health/live").await.status, 200);
        assert_eq!(get(addr, "/metrics").await.status, 200);
    })
    .await;
}

/// A flood of silent connections over the cap (a slowloris that sends nothing) does not
/// keep a well-behaved client out: once every slot is taken, heads slower than
/// `PREEMPT_AFTER` are preempted one per waiting connection, so the backlog drains at once
/// and the client is answered within a second, never with more than the cap open.
#[tokio::test]
async fn a_flood_over_the_cap_cannot_keep_a_client_out() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        // The default cap; a long header timeout, so only preemption frees the slots.
        let limits = Limits { header_read_timeout: Duration::from_secs(30), ..Limits::default() };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();

        let mut held = Vec::new();
        for _ in 0..limits.max_connections {
            held.push(TcpStream::connect(addr).await.expect("connect"));
        }
        while METRICS.connections_open() < limits.max_connections as i64 {
            sleep(Duration::from_millis(5)).await;
        }
        // 500 more, completed by the kernel into the backlog, all silent.
        for _ in 0..500 {
            held.push(TcpStream::connect(addr).await.expect("connect into the backlog"));
        }
        let asked = Instant::now();
        let reply = timeout(Duration::from_secs(1), get(addr, "/health/live")).await.expect("answered within 1 s");
        assert_eq!(reply.status, 200);
        println!("answered behind a flood of 564 silent connections in {:?}", asked.elapsed());
        let scrape = timeout(Duration::from_secs(10), get(addr, "/metrics")).await.expect("scraped within 1 s");
        println!(
            "took {:?} waits {} made_room {} preempted {}",
            asked.elapsed(),
            METRICS.connection_limit_waits(),
            METRICS.connections_closed(CloseReason::MadeRoom),
            METRICS.connections_closed(CloseReason::Preempted)
        );
        assert_eq!(scrape.status, 200);
        assert!(METRICS.connections_open() <= limits.max_connections as i64, "never more than the cap open");
        assert!(METRICS.connection_limit_waits() >= 1);
        assert!(METRICS.connections_closed(CloseReason::Preempted) >= 500, "the flood was preempted");
        drop(held);
    })
    .await;
}

/// Clients that keep every slot busy with kept-alive requests, back to back, with more of
/// them waiting in the backlog (`wrk -c1024` against 64 slots, in small), do not keep a
/// well-behaved client out: while a connection waits, the open ones close once answered,
/// so slots pass to the backlog in order of arrival and the client is answered within a
/// second.
#[tokio::test]
async fn busy_kept_alive_clients_at_the_cap_cannot_keep_a_client_out() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    const CLIENTS: usize = 24;
    bounded(async {
        let limits = Limits { max_connections: 8, ..Limits::default() };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
                tokio::spawn(async move {
                    let request = b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n";
                    while !stop.load(Relaxed) {
                        let Ok(mut stream) = TcpStream::connect(addr).await else { continue };
                        // Request after request on the connection until the server closes it.
                        while !stop.load(Relaxed) && stream.write_all(request).await.is_ok() {
                            let mut buf = [0u8; 1024];
                            match stream.read(&mut buf).await {
                                Ok(n) if n > 0 => answered.fetch_add(1, Relaxed),
                                _ => break,
                            };
                        }
                    }
                })
            })
            .collect();
        while METRICS.connections_open() < limits.max_connections as i64 || answered.load(Relaxed) < 1_000 {
            sleep(Duration::from_millis(5)).await;
        }
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let asked = Instant::now();
            let scrape = timeout(Duration::from_secs(1), get(addr, "/metrics")).await.expect("scraped within 1 s");
            assert_eq!(scrape.status, 200);
            slowest = slowest.max(asked.elapsed());
        }
        let made_room = METRICS.connections_closed(CloseReason::MadeRoom);
        println!(
            "{CLIENTS} busy clients on {} slots: {} answers; 10 scrapes, slowest {slowest:?}; {made_room} closed to make room",
            limits.max_connections,
            answered.load(Relaxed),
        );
        assert!(made_room >= 1, "connections were closed to make room");
        assert!(METRICS.connections_open() <= limits.max_connections as i64, "never more than the cap open");
        stop.store(true, Relaxed);
        for client in clients {
            client.abort();
        }
    })
    .await;
}

/// Reads one response whose body is `Content-Length` bytes from a kept-alive connection.
async fn read_one(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the response ended");
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .expect("a content length");
            if body.len() >= len {
                return parse_reply(&bytes);
            }
        }
    }
}

/// Waits until the server closes `stream`; returns how long that took.
async fn until_closed(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf).await {
        Ok(0) | Err(_) => start.elapsed(),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(700),
            keep_alive_idle: Duration::from_millis(1500),
            ..Limits::default()
        };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();

        // Kept alive between requests, for less than the idle limit...
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        for _ in 0..2 {
            stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
            assert_eq!(read_one(&mut stream).await.status, 200);
            // Longer than the header timeout: an idle connection is not in a request head.
            sleep(Duration::from_millis(900)).await;
        }
        stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
        assert_eq!(read_one(&mut stream).await.status, 200);
        // ...then closed once idle for it.
        let idle = until_closed(&mut stream).await;
        assert!(idle >= Duration::from_millis(1400) && idle < Duration::from_millis(2500), "closed after {idle:?}");
        assert_eq!(METRICS.connections_closed(CloseReason::IdleTimeout), 1);

        // A connection that never sends a byte gets the header timeout.
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let waited = until_closed(&mut silent).await;
        assert!(
            waited >= Duration::from_millis(600) && waited < Duration::from_millis(1500),
            "closed after {waited:?}"
        );
        assert_eq!(METRICS.connections_closed(CloseReason::HeaderTimeout), 1);
    })
    .await;
}

#[tokio::test]
async fn shutdown_finishes_responses_in_flight() {
    static REGISTRY: Registry<32> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        crate::exposition::register_thousand_series(&REGISTRY);
        let limits = Limits { render_buffer_bytes: 4096, ..Limits::default() };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();

        // A request head in progress when shutdown begins is still answered: 503 from
        // /health/ready, since the exporter is draining.
        let mut partial = TcpStream::connect(addr).await.expect("connect");
        partial.write_all(b"GET /health/ready HTTP/1.1\r\n").await.unwrap();
        // A scrape in flight.
        let mut scrape = TcpStream::connect(addr).await.expect("connect");
        scrape.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
        let mut first = [0u8; 64];
        let n = scrape.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
        // An idle one.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        while METRICS.connections_open() < 3 {
            sleep(Duration::from_millis(5)).await;
        }
        // Time for the server to read the partial head.
        sleep(Duration::from_millis(100)).await;

        let handle = server.shutdown_handle();
        handle.shutdown();
        assert!(handle.is_shutting_down());
        let shutdown = tokio::spawn(server.shutdown());
        partial.write_all(b"Host: test\r\n\r\n").await.unwrap();
        let mut rest = first[..n].to_vec();
        scrape.read_to_end(&mut rest).await.expect("the rest of the scrape");
        let reply = parse_reply(&rest);
        assert!(reply.body.contains("app_bytes_sent_total{peer=\"v99\"}"), "the whole scrape arrived");
        let mut bytes = Vec::new();
        partial.read_to_end(&mut bytes).await.unwrap();
        let reply = parse_reply(&bytes);
        assert_eq!((reply.status, reply.body.as_str()), (503, r#"{"status":"draining"}"#));
        until_closed(&mut idle).await;

        let report = shutdown.await.expect("shutdown ran");
        assert_eq!(report.aborted, 0);
        assert!(TcpStream::connect(addr).await.is_err(), "no longer listening");
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let limits = Limits {
            shutdown_grace: Duration::from_millis(300),
            header_read_timeout: Duration::from_secs(30),
            ..Limits::default()
        };
        let server = start(Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits)).await;
        let mut stuck = TcpStream::connect(server.local_addr()).await.expect("connect");
        stuck.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        while METRICS.connections_open() < 1 {
            sleep(Duration::from_millis(5)).await;
        }
        let began = Instant::now();
        let report = server.shutdown().await;
        assert_eq!(report.aborted, 1);
        assert!(began.elapsed() >= Duration::from_millis(300) && began.elapsed() < Duration::from_secs(2));
        assert_eq!(METRICS.connections_closed(CloseReason::Shutdown), 1);
        until_closed(&mut stuck).await;
    })
    .await;
}

#[tokio::test]
async fn bind_reports_bad_configuration() {
    static REGISTRY: Registry<16> = Registry::new();
    static FULL: Registry<2> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    static OTHER: ExporterMetrics = ExporterMetrics::new();
    bounded(async {
        let limits = Limits { max_connections: 0, ..Limits::default() };
        let error = Exporter::builder(&REGISTRY).metrics(&METRICS).limits(limits).address(any_port()).bind().await;
        assert!(matches!(error, Err(plimsoll::ExportError::InvalidLimits(_))), "{error:?}");
        let error = Exporter::builder(&REGISTRY).metrics(&METRICS).token(Some("has space".into())).bind().await;
        assert!(matches!(error, Err(plimsoll::ExportError::InvalidToken(_))), "{error:?}");
        let error = Exporter::builder(&FULL).metrics(&METRICS).address(any_port()).bind().await;
        assert!(matches!(error, Err(plimsoll::ExportError::Register(_))), "{error:?}");
        assert!(FULL.is_empty(), "nothing registered when the registry lacks room");

        // The same metrics bind twice on one registry (a restart); different ones clash.
        let first = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        let second = start(Exporter::builder(&REGISTRY).metrics(&METRICS)).await;
        assert_eq!(REGISTRY.len(), ExporterMetrics::FAMILIES);
        let error = Exporter::builder(&REGISTRY).metrics(&OTHER).address(any_port()).bind().await;
        assert!(matches!(error, Err(plimsoll::ExportError::Register(_))), "{error:?}");
        let taken = Exporter::builder(&REGISTRY).metrics(&METRICS).address(first.local_addr()).bind().await;
        assert!(matches!(taken, Err(plimsoll::ExportError::Bind { .. })), "{taken:?}");
        drop((first, second));
    })
    .await;
}

/// A registry of about 36 KiB of exposition (nine 4 KiB chunks, or three of the default
/// 16 KiB), for the heap measurement.
fn heap_registry() -> &'static Registry<16> {
    static ONCE: std::sync::OnceLock<&'static Registry<16>> = std::sync::OnceLock::new();
    ONCE.get_or_init(build_heap_registry)
}

fn build_heap_registry() -> &'static Registry<16> {
    static REGISTRY: Registry<16> = Registry::new();
    static REQUESTS: Family<Counter, 2, 512> = Family::new("http_requests", "Requests served.", ["route", "status"]);
    static UP: Unlabelled<Counter> = Unlabelled::new("ticks", "Ticks.");
    REGISTRY.register(&REQUESTS).expect("room");
    REGISTRY.register(&UP).expect("room");
    for route in 0..130u64 {
        for status in ["200", "404", "500"] {
            REQUESTS.with_label_values(&[format!("/api/v1/resource/{route}").as_str(), status]).inc_by(route);
        }
    }
    &REGISTRY
}

/// Runs an exporter of the heap registry on this thread's current-thread runtime and
/// `client` on another thread over blocking sockets. The client calls `checkpoint(open)`
/// at quiescent moments; the server waits until `open` connections remain, then notes this
/// thread's (allocations, net bytes). The counts are per thread, so they are the server's
/// alone. Returns one reading per checkpoint.
fn server_counts(
    render_buffer_bytes: usize,
    client: impl FnOnce(SocketAddr, &dyn Fn(i64)) + Send + 'static,
) -> Vec<(u64, i64)> {
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    let registry = heap_registry();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let limits = Limits { render_buffer_bytes, ..Limits::default() };
        let server = start(Exporter::builder(registry).metrics(&METRICS).limits(limits)).await;
        let addr = server.local_addr();
        let (to_server, mut from_client) = tokio::sync::mpsc::unbounded_channel::<i64>();
        // A rendezvous channel: its storage is allocated here, not at the first send.
        let (to_client, from_server) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::spawn(move || {
            let checkpoint = |open: i64| {
                to_server.send(open).expect("the server listens");
                from_server.recv().expect("the server answers");
            };
            client(addr, &checkpoint);
        });
        let mut readings = Vec::with_capacity(16);
        while let Some(open) = from_client.recv().await {
            while METRICS.connections_open() != open {
                tokio::task::yield_now().await;
            }
            sleep(Duration::from_millis(20)).await;
            readings.push(crate::alloc::thread_counts());
            to_client.send(()).expect("the client waits");
        }
        thread.join().expect("the client ran");
        drop(server);
        readings
    })
}

/// One blocking scrape of `/metrics` on `stream`: sends the request, reads the chunked
/// response to its end into `response`.
fn blocking_scrape(stream: &mut std::net::TcpStream, close: bool, buf: &mut [u8], response: &mut Vec<u8>) {
    use std::io::{Read, Write};
    let request: &[u8] = if close {
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    } else {
        b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n"
    };
    stream.write_all(request).expect("send");
    response.clear();
    while !response.ends_with(b"\r\n0\r\n\r\n") {
        let n = stream.read(buf).expect("read");
        assert!(n > 0, "closed mid-response");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"));
    if close {
        // The server closes next; waiting for it means its connection is gone.
        while stream.read(buf).is_ok_and(|n| n > 0) {}
    }
}

/// After warm-up, scrapes leave the server's heap as they found it, on one kept-alive
/// connection and on a new connection each; open connections cost a fixed amount each,
/// all returned when they close. `PLIMSOLL_SCRAPES` sets how many scrapes (default 1,000).
#[test]
fn the_servers_heap_does_not_grow() {
    let scrapes: u64 = std::env::var("PLIMSOLL_SCRAPES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let warm_up = 100;

    let kept = server_counts(4096, move |addr, checkpoint| {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        let (mut buf, mut response) = (vec![0u8; 64 << 10], Vec::with_capacity(256 << 10));
        (0..warm_up).for_each(|_| blocking_scrape(&mut stream, false, &mut buf, &mut response));
        checkpoint(1);
        (0..scrapes).for_each(|_| blocking_scrape(&mut stream, false, &mut buf, &mut response));
        checkpoint(1);
    });
    let fresh = server_counts(4096, move |addr, checkpoint| {
        let (mut buf, mut response) = (vec![0u8; 64 << 10], Vec::with_capacity(256 << 10));
        let mut scrape = || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            blocking_scrape(&mut stream, true, &mut buf, &mut response);
        };
        (0..warm_up).for_each(|_| scrape());
        checkpoint(0);
        (0..scrapes).for_each(|_| scrape());
        checkpoint(0);
    });
    const OPEN: usize = 32;
    let open_connections = |render_buffer_bytes| {
        server_counts(render_buffer_bytes, move |addr, checkpoint| {
            let (mut buf, mut response) = (vec![0u8; 64 << 10], Vec::with_capacity(256 << 10));
            for _ in 0..warm_up {
                let mut stream = std::net::TcpStream::connect(addr).expect("connect");
                blocking_scrape(&mut stream, true, &mut buf, &mut response);
            }
            checkpoint(0);
            // Twice: the first time may raise high-water marks (tokio's task and I/O
            // registration lists) that the second finds in place.
            for _ in 0..2 {
                let mut open: Vec<_> =
                    (0..OPEN).map(|_| std::net::TcpStream::connect(addr).expect("connect")).collect();
                open.iter_mut().for_each(|stream| blocking_scrape(stream, false, &mut buf, &mut response));
                checkpoint(OPEN as i64);
                drop(open);
                checkpoint(0);
            }
        })
    };
    let idle = open_connections(Limits::DEFAULT.render_buffer_bytes);
    let idle_large = open_connections(16 << 10);

    let per_scrape = |r: &[(u64, i64)]| (r[1].0 - r[0].0) as f64 / scrapes as f64;
    println!(
        "{scrapes} scrapes of {} bytes after {warm_up} of warm-up, the server's thread:\n\
         - one kept-alive connection: {:.3} allocations per scrape, net heap change {} bytes\n\
         - a new connection each: {:.3} allocations per connection and scrape, net heap change {} bytes\n\
         - {OPEN} open idle connections after one scrape each: {} bytes each; once closed, {} bytes left \
         the first time, {} the second\n\
         - the same with a 16 KiB render buffer instead of the default 4 KiB: {} bytes each",
        scrape_size(),
        per_scrape(&kept),
        kept[1].1 - kept[0].1,
        per_scrape(&fresh),
        fresh[1].1 - fresh[0].1,
        (idle[1].1 - idle[0].1) / OPEN as i64,
        idle[2].1 - idle[0].1,
        idle[4].1 - idle[2].1,
        (idle_large[1].1 - idle_large[0].1) / OPEN as i64,
    );
    assert!(kept[1].1 - kept[0].1 <= 0, "kept-alive scrapes grew the heap: {kept:?}");
    assert!(fresh[1].1 - fresh[0].1 <= 0, "scrapes on new connections grew the heap: {fresh:?}");
    // 32 connections closing at once may wake more tasks together than before and grow
    // tokio's run queue to a new high-water mark: a few bytes, once. Anything left per
    // connection would be tens of KiB.
    for (readings, at) in [(&idle, 2), (&idle, 4), (&idle_large, 2), (&idle_large, 4)] {
        let left = readings[at].1 - readings[at - 2].1;
        assert!(left <= 1024, "closed connections left {left} bytes behind: {readings:?}");
    }
    // hyper reuses a connection's buffers and header map, the exporter its render buffer.
    assert!(per_scrape(&kept) < 0.01, "a kept-alive scrape allocates: {kept:?}");
    // Per connection: the task, hyper's buffers, header map and body slot, the socket's
    // registration: a fixed handful.
    assert!(per_scrape(&fresh) <= 16.0, "{fresh:?}");
    // Between scrapes a connection holds hyper's two 8 KiB buffers and a few KiB of fixed
    // state; its scrape (renderer and render buffers) went back to the pool, so the render
    // buffer's size does not matter.
    assert_eq!(Limits::DEFAULT.render_buffer_bytes, 4 << 10);
    assert!((idle[1].1 - idle[0].1) / (OPEN as i64) < 24 << 10, "{idle:?}");
    assert!((idle_large[1].1 - idle_large[0].1) / (OPEN as i64) < 24 << 10, "{idle_large:?}");
}

/// Bytes of one scrape's body.
fn scrape_size() -> usize {
    render(heap_registry(), Format::Prometheus, 1 << 20).len()
}
