//! The HTTP layer (`plimsoll::middleware`) in axum routers and hyper services, the span
//! layer (`plimsoll::tracing_layer`) under a tracing-subscriber registry, what each
//! allocates, and the axum example run as a process and scraped.

use crate::alloc::thread_counts;
use crate::cli::{DEADLINE, PROMETHEUS_ACCEPT, scrape};
use crate::support::{promtool_check, render};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Empty;
use plimsoll::middleware::{HttpMetrics, PlimsollLayer, UNMATCHED_ROUTE};
use plimsoll::tracing_layer::{OpenSpans, SpanLayer};
use plimsoll::{Clock, Format, GoodEvent, ManualClock, Registry, Slo, SloWindow, SlowSpans, SlowSpansConfig};
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use tower_layer::Layer;
use tower_service::Service;
use tracing_subscriber::layer::SubscriberExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Sends `method uri` through `app`; returns the status code.
async fn send(app: &mut Router, method: &str, uri: &str) -> u16 {
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).expect("a valid request");
    app.call(request).await.expect("axum services do not fail").status().as_u16()
}

/// The value of the sample whose line starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

fn requests(method: &str, route: &str, status: &str) -> String {
    format!(r#"http_server_requests_total{{method="{method}",route="{route}",status="{status}"}}"#)
}

/// `/`, `/users/{id}`, a 500, a 301, a 300 ms answer and one that never comes.
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/users/{id}", get(|| async { "a user" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/moved", get(|| async { (StatusCode::MOVED_PERMANENTLY, [("location", "/")]) }))
        .route("/slow", get(|| tokio::time::sleep(Duration::from_millis(300))))
        .route("/hang", get(std::future::pending::<()>))
}

#[test]
fn routes_are_templates_unknown_paths_fold_and_statuses_are_classes() {
    static REGISTRY: Registry<16> = Registry::new();
    static HTTP: HttpMetrics = HttpMetrics::new();
    HTTP.register(&REGISTRY).expect("room in the registry");
    let mut app = app().layer(PlimsollLayer::new(&HTTP));
    runtime().block_on(async {
        for id in 1..=5 {
            assert_eq!(send(&mut app, "GET", &format!("/users/{id}")).await, 200);
        }
        for path in ["/nope", "/users", "/users/1/orders", "/a/b?c=d", "/%2e%2e/etc/passwd"] {
            assert_eq!(send(&mut app, "GET", path).await, 404, "{path}");
        }
        assert_eq!(send(&mut app, "GET", "/boom").await, 500);
        assert_eq!(send(&mut app, "GET", "/moved").await, 301);
        assert_eq!(send(&mut app, "POST", "/").await, 405);
        assert_eq!(send(&mut app, "BREW", "/users/9").await, 405);
    });
    let text = render(&REGISTRY, Format::Prometheus, 4096);
    promtool_check(&text);
    for (series, count) in [
        (requests("GET", "/users/{id}", "2xx"), 5.0),
        (requests("GET", UNMATCHED_ROUTE, "4xx"), 5.0),
        (requests("GET", "/boom", "5xx"), 1.0),
        (requests("GET", "/moved", "3xx"), 1.0),
        (requests("POST", "/", "4xx"), 1.0),
        (requests("OTHER", "/users/{id}", "4xx"), 1.0),
        (r#"http_server_request_duration_seconds_count{route="/users/{id}"}"#.to_owned(), 6.0),
        (r#"http_server_request_duration_seconds_count{route="unmatched"}"#.to_owned(), 5.0),
        ("http_server_active_requests".to_owned(), 0.0),
    ] {
        assert_eq!(sample(&text, &series), count, "{series}");
    }
    let request_series = text.lines().filter(|l| l.starts_with("http_server_requests_total{")).count();
    assert_eq!(request_series, 6, "one series per method, route template and class:\n{text}");
    for raw in ["/users/1", "/nope", "passwd", "BREW"] {
        assert!(!text.contains(raw), "a raw path or method leaked into a label: {raw}\n{text}");
    }
}

async fn panics() -> &'static str {
    panic!("a handler bug")
}

/// Polls `future` for `wait`; it must still be pending.
async fn still_pending<F: Future + Unpin>(future: &mut F, wait: Duration) {
    assert!(tokio::time::timeout(wait, future).await.is_err(), "the request finished");
}

#[test]
fn in_flight_returns_to_zero_and_dropped_or_panicking_requests_are_counted() {
    static REGISTRY: Registry<16> = Registry::new();
    static HTTP: HttpMetrics = HttpMetrics::new();
    HTTP.register(&REGISTRY).expect("room in the registry");
    let mut app = app().route("/panic", get(panics)).layer(PlimsollLayer::new(&HTTP));
    let runtime = runtime();
    runtime.block_on(async {
        let mut hanging: Vec<_> =
            (0..3).map(|_| Box::pin(app.call(Request::get("/hang").body(Body::empty()).unwrap()))).collect();
        for future in &mut hanging {
            still_pending(future, Duration::from_millis(10)).await;
        }
        assert_eq!(HTTP.in_flight(), 3);
        let mut slow = Box::pin(app.call(Request::get("/slow").body(Body::empty()).unwrap()));
        still_pending(&mut slow, Duration::from_millis(10)).await;
        assert_eq!(HTTP.in_flight(), 4);
        assert_eq!(slow.await.unwrap().status(), StatusCode::OK);
        assert_eq!(HTTP.in_flight(), 3);
        drop(hanging);
        assert_eq!(HTTP.in_flight(), 0, "dropped requests are no longer in flight");
    });
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(app.call(Request::get("/panic").body(Body::empty()).unwrap()))
    }));
    assert!(panicked.is_err(), "the handler's panic reaches the caller");
    assert_eq!(HTTP.in_flight(), 0);

    let text = render(&REGISTRY, Format::Prometheus, 4096);
    promtool_check(&text);
    assert_eq!(sample(&text, &requests("GET", "/hang", "cancelled")), 3.0);
    assert_eq!(sample(&text, &requests("GET", "/slow", "2xx")), 1.0);
    assert_eq!(sample(&text, &requests("GET", "/panic", "5xx")), 1.0, "a panic is the server's failure");
    let hang_count = sample(&text, r#"http_server_request_duration_seconds_count{route="/hang"}"#);
    let hang_sum = sample(&text, r#"http_server_request_duration_seconds_sum{route="/hang"}"#);
    assert_eq!(hang_count, 3.0, "a cancelled request's time is recorded");
    assert!(hang_sum >= 3.0 * 0.010, "each hung for over 10 ms: {hang_sum}");
}

#[test]
fn slos_count_good_and_bad_requests() {
    static LATENCY_HTTP: HttpMetrics = HttpMetrics::new();
    static SUCCESS_HTTP: HttpMetrics = HttpMetrics::new();
    static LATENCY: Slo = Slo::new("latency", 0.99, GoodEvent::LatencyAtMost(0.25));
    static SUCCESS: Slo = Slo::new("success", 0.99, GoodEvent::Success);
    static CLOCK: ManualClock = ManualClock::new(3_600_000);
    let mut app = app()
        .layer(PlimsollLayer::new(&LATENCY_HTTP).slo(&LATENCY).clock(&CLOCK))
        .layer(PlimsollLayer::new(&SUCCESS_HTTP).slo(&SUCCESS).clock(&CLOCK));
    runtime().block_on(async {
        assert_eq!(send(&mut app, "GET", "/").await, 200); // good, good
        assert_eq!(send(&mut app, "GET", "/nope").await, 404); // good, good: not the server's fault
        assert_eq!(send(&mut app, "GET", "/slow").await, 200); // too slow, good
        assert_eq!(send(&mut app, "GET", "/boom").await, 500); // bad, bad
        let mut quick = Box::pin(app.call(Request::get("/hang").body(Body::empty()).unwrap()));
        still_pending(&mut quick, Duration::from_millis(1)).await;
        drop(quick); // cancelled within 250 ms: no event for either
        let mut late = Box::pin(app.call(Request::get("/hang").body(Body::empty()).unwrap()));
        still_pending(&mut late, Duration::from_millis(300)).await;
        drop(late); // cancelled after 300 ms: too slow, no event for success
    });
    let now = CLOCK.now_ms();
    let latency = LATENCY.events(now, SloWindow::H1);
    let success = SUCCESS.events(now, SloWindow::H1);
    assert_eq!((latency.good, latency.total), (2, 5), "latency SLO");
    assert_eq!((success.good, success.total), (3, 4), "success SLO");
    assert_eq!(LATENCY_HTTP.in_flight() + SUCCESS_HTTP.in_flight(), 0);
}

/// The route template of the hyper service's paths.
fn item_route(_method: &hyper::Method, path: &str) -> Option<&'static str> {
    match path.strip_prefix("/items/") {
        Some(id) if !id.is_empty() && !id.contains('/') => Some("/items/:id"),
        _ => None,
    }
}

/// A hyper handler: 500 for item 13, an error for `/fail`, else 200.
async fn item(request: Request<Empty<Bytes>>) -> Result<Response<Empty<Bytes>>, std::io::Error> {
    let status = match request.uri().path() {
        "/fail" => return Err(std::io::Error::other("the handler failed")),
        "/items/13" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    Ok(Response::builder().status(status).body(Empty::new()).expect("a valid response"))
}

#[test]
fn a_hyper_service_is_labelled_by_its_route_function() {
    use hyper::service::Service as _;
    static REGISTRY: Registry<16> = Registry::new();
    static HTTP: HttpMetrics = HttpMetrics::new();
    HTTP.register(&REGISTRY).expect("room in the registry");
    let service = PlimsollLayer::new(&HTTP).route_fn(item_route).layer(hyper::service::service_fn(item));
    runtime().block_on(async {
        for path in ["/items/1", "/items/2", "/items/13", "/items/", "/elsewhere", "/fail"] {
            let request = Request::builder().method("DELETE").uri(path).body(Empty::new()).unwrap();
            let answer = service.call(request).await;
            assert_eq!(answer.is_err(), path == "/fail", "{path}");
        }
    });
    let text = render(&REGISTRY, Format::Prometheus, 4096);
    promtool_check(&text);
    assert_eq!(sample(&text, &requests("DELETE", "/items/:id", "2xx")), 2.0);
    assert_eq!(sample(&text, &requests("DELETE", "/items/:id", "5xx")), 1.0);
    assert_eq!(sample(&text, &requests("DELETE", UNMATCHED_ROUTE, "2xx")), 2.0);
    assert_eq!(sample(&text, &requests("DELETE", UNMATCHED_ROUTE, "5xx")), 1.0, "a service error is a 5xx");
    assert_eq!(HTTP.in_flight(), 0);
}

/// Allocations this thread makes while `runtime` runs `requests`.
fn allocations<F: Future>(runtime: &tokio::runtime::Runtime, requests: F) -> u64 {
    let (before, _) = thread_counts();
    runtime.block_on(requests);
    thread_counts().0 - before
}

#[test]
fn the_http_layer_allocates_nothing_per_request() {
    use hyper::service::Service as _;
    static HTTP: HttpMetrics = HttpMetrics::new();
    const PATHS: [&str; 4] = ["/users/7", "/users/8", "/nope", "/boom"];
    let runtime = runtime();

    // An axum router, against tower's `Identity` layer, which axum wraps and boxes alike.
    // `with_state` turns the handlers into routes once, as `axum::serve` does; a router
    // without it clones each layer into a new box per request (none for a zero-sized one
    // such as `Identity`).
    let mut bare = app().layer(tower_layer::Identity::new()).with_state(());
    let mut layered = app().layer(PlimsollLayer::new(&HTTP)).with_state(());
    let run = |app: &mut Router, n: usize| {
        let app = &mut *app;
        allocations(&runtime, async move {
            for i in 0..n {
                send(app, "GET", PATHS[i % PATHS.len()]).await;
            }
        })
    };
    run(&mut bare, 100);
    run(&mut layered, 100);
    let (without, with) = (run(&mut bare, 1_000), run(&mut layered, 1_000));
    assert!(without > 0, "the counting allocator sees axum's own allocations");
    assert_eq!(with, without, "1,000 requests through axum: {with} allocations with the layer, {without} without");

    // A hyper service, with and without the layer.
    let bare = hyper::service::service_fn(item);
    let layered = PlimsollLayer::new(&HTTP).route_fn(item_route).layer(hyper::service::service_fn(item));
    let requests = |n: usize| (0..n).map(|i| Request::get(["/items/7", "/other"][i % 2]).body(Empty::new()).unwrap());
    for _ in 0..2 {
        let n = 1_000;
        let without = allocations(&runtime, async {
            for request in requests(n) {
                let _ = bare.call(request).await;
            }
        });
        let with = allocations(&runtime, async {
            for request in requests(n) {
                let _ = layered.call(request).await;
            }
        });
        assert_eq!(with, without, "{n} requests through a hyper service");
    }
    assert_eq!(HTTP.in_flight(), 0);
}

type Seen = (String, u64, u64, Option<[u8; 16]>);

fn slowest<const N: usize, const S: usize>(spans: &SlowSpans<N, S>, now_ms: u64) -> Vec<Seen> {
    let mut seen = Vec::new();
    spans.for_each_slowest(now_ms, |s| seen.push((s.name().to_owned(), s.duration_us(), s.start_ms(), s.trace_id())));
    seen
}

fn hex(text: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits");
    }
    id
}

#[test]
fn spans_land_in_slow_spans_with_their_trace_ids() {
    static SPANS: SlowSpans<8, 16> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    static OPEN: OpenSpans<64> = OpenSpans::new();
    static CLOCK: ManualClock = ManualClock::new(5_000_000);
    const CHECKOUT: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const LOOKUP: u128 = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c;
    const QUOTED: &str = "00f067aa0ba902b700f067aa0ba902b7";
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new(&SPANS, &OPEN).clock(&CLOCK));
    tracing::subscriber::with_default(subscriber, || {
        let checkout = tracing::info_span!("checkout", trace_id = CHECKOUT).entered();
        tracing::info_span!("charge").in_scope(|| std::thread::sleep(Duration::from_millis(30)));
        tracing::info_span!("retry", trace_id = "not a trace id").in_scope(|| {});
        drop(checkout);
        let lookup = tracing::info_span!("lookup", trace_id = tracing::field::Empty);
        lookup.record("trace_id", LOOKUP);
        drop(lookup);
        tracing::info_span!("quoted", trace_id = ?QUOTED).in_scope(|| {});
        tracing::info_span!("orphan").in_scope(|| {});
    });
    let seen = slowest(&SPANS, CLOCK.now_ms());
    let find = |name: &str| seen.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("no span {name}: {seen:?}"));
    let (_, checkout_us, checkout_start, checkout_trace) = find("checkout");
    let (_, charge_us, _, charge_trace) = find("charge");
    assert!(*charge_us >= 30_000 && *checkout_us >= *charge_us, "{seen:?}");
    assert_eq!(*checkout_start, 5_000_000 - checkout_us / 1_000, "the start is the close less the duration");
    assert_eq!(*checkout_trace, Some(hex(CHECKOUT)));
    assert_eq!(*charge_trace, Some(hex(CHECKOUT)), "a child takes its parent's trace id");
    assert_eq!(find("retry").3, Some(hex(CHECKOUT)), "an invalid trace id is ignored; the parent's is taken");
    assert_eq!(find("lookup").3, Some(LOOKUP.to_be_bytes()), "a u128 recorded after creation");
    assert_eq!(find("quoted").3, Some(hex(QUOTED)), "a Debug-formatted string");
    assert_eq!(find("orphan").3, None);
    assert_eq!(seen[0].0, "checkout", "slowest first: {seen:?}");
    assert_eq!(SPANS.recorded(), 6);
    assert_eq!(SPANS.durations("charge").count(), 1);
    assert_eq!(OPEN.invalid_trace_ids(), 1);
    assert_eq!((OPEN.untimed(), OPEN.in_use()), (0, 0), "every slot was freed");
}

#[test]
fn span_names_and_open_spans_are_bounded_and_overflow_is_counted() {
    static REGISTRY: Registry<16> = Registry::new();
    static SPANS: SlowSpans<2, 4> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    static OPEN: OpenSpans<2> = OpenSpans::new();
    SPANS.register(&REGISTRY).expect("room in the registry");
    OPEN.register(&REGISTRY).expect("room in the registry");
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new(&SPANS, &OPEN));
    tracing::subscriber::with_default(subscriber, || {
        let a = tracing::info_span!("a").entered();
        let b = tracing::info_span!("b").entered();
        tracing::info_span!("c").in_scope(|| assert_eq!(OPEN.in_use(), 2, "the third open span finds no slot"));
        drop((b, a));
        tracing::info_span!("d").in_scope(|| {});
        tracing::info_span!("e").in_scope(|| {});
    });
    assert_eq!(OPEN.untimed(), 1, "c was not timed");
    assert_eq!(SPANS.recorded(), 4);
    assert_eq!(SPANS.name_overflow(), 2, "a and b took the two names; d and e share the overflow series");
    let text = render(&REGISTRY, Format::Prometheus, 4096);
    promtool_check(&text);
    assert_eq!(sample(&text, "plimsoll_tracing_untimed_spans_total"), 1.0);
    assert_eq!(sample(&text, "plimsoll_tracing_invalid_trace_ids_total"), 0.0);
    assert_eq!(sample(&text, r#"plimsoll_span_duration_seconds_count{span="__overflow__"}"#), 2.0);
}

#[test]
fn the_span_layer_allocates_nothing_per_span() {
    static SPANS: SlowSpans = SlowSpans::new(SlowSpansConfig::DEFAULT);
    static OPEN: OpenSpans = OpenSpans::new();
    // 1,000 requests of two spans each, their trace ids set at creation and recorded later.
    let spans = || {
        let (before, _) = thread_counts();
        for i in 0..1_000 {
            let request = tracing::info_span!("request", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", i);
            let _entered = request.enter();
            tracing::info_span!("query", trace_id = tracing::field::Empty).in_scope(|| {
                tracing::Span::current().record("trace_id", 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128);
            });
        }
        thread_counts().0 - before
    };
    let bare = tracing::Dispatch::new(tracing_subscriber::registry());
    let layered = tracing::Dispatch::new(tracing_subscriber::registry().with(SpanLayer::new(&SPANS, &OPEN)));
    let mut totals = [0, 0];
    for round in 0..5 {
        let without = tracing::dispatcher::with_default(&bare, spans);
        let with = tracing::dispatcher::with_default(&layered, spans);
        // The first rounds fill the registries' span pools and per-thread stacks.
        if round >= 2 {
            totals[0] += without;
            totals[1] += with;
        }
    }
    // The bare registry allocates now and then (about once in 3,000 spans here), so the
    // layer's spans must cost no more than the bare registry's: one allocation per span
    // would be 6,000.
    let [without, with] = totals;
    assert!(with <= without, "6,000 spans: {with} allocations with the layer, {without} without");
    assert_eq!(SPANS.recorded(), 10_000);
    assert_eq!(OPEN.in_use(), 0);
}

/// The axum example, built once per test run into this test executable's target
/// directory and profile (as `support::plimsoll_binary` builds the command).
fn axum_example() -> &'static Path {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let test_exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = test_exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile directory name");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "plimsoll", "--example", "axum", "--features", "axum,tracing"]);
        build.arg("--target-dir").arg(profile_dir.parent().expect("the target directory"));
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let output = build.output().expect("run cargo build");
        assert!(
            output.status.success(),
            "building the axum example failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let example = profile_dir.join("examples").join(format!("axum{}", std::env::consts::EXE_SUFFIX));
        assert!(example.is_file(), "cargo build did not leave {}", example.display());
        example
    })
}

/// The running example, killed on drop; its stdout lines come through a channel.
struct Example {
    child: Child,
    stdout: Receiver<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    fn start() -> Self {
        let mut child = Command::new(axum_example())
            .env("APP_ADDR", "127.0.0.1:0")
            .env("PLIMSOLL_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the axum example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stdout: receiver }
    }

    /// The address of the next stdout line, which must start with `prefix`.
    fn address(&self, prefix: &str) -> SocketAddr {
        let line = self.stdout.recv_timeout(DEADLINE).unwrap_or_else(|e| panic!("no `{prefix}` line: {e}"));
        let address = line.strip_prefix(prefix).unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
        address.parse().unwrap_or_else(|e| panic!("{address:?}: {e}"))
    }

    /// Sends SIGTERM and waits for the exit, at most [`DEADLINE`].
    fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < deadline, "the example did not exit within {DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET path` on a connection of its own; returns the status and the body.
fn http_get(address: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n").as_bytes())
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let status = response.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{response:?}"));
    (status, response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

#[test]
fn the_axum_example_serves_metrics_that_promtool_accepts() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut example = Example::start();
    let exporter = example.address("listening on ");
    let app = example.address("app listening on ");
    let traceparent = format!("traceparent: 00-{TRACE}-00f067aa0ba902b7-01\r\n");
    for (path, status) in [("/", 200), ("/users/1", 200), ("/users/2", 200), ("/users/13", 500), ("/users/2000", 404)] {
        assert_eq!(http_get(app, path, &traceparent).0, status, "{path}");
    }
    for path in ["/nope", "/users/x/y"] {
        assert_eq!(http_get(app, path, "").0, 404, "{path}");
    }
    let text = scrape(exporter, PROMETHEUS_ACCEPT);
    promtool_check(&text);
    for (series, count) in [
        (requests("GET", "/users/{id}", "2xx"), 2.0),
        (requests("GET", "/users/{id}", "4xx"), 1.0),
        (requests("GET", "/users/{id}", "5xx"), 1.0),
        (requests("GET", "/", "2xx"), 1.0),
        (requests("GET", UNMATCHED_ROUTE, "4xx"), 2.0),
        ("http_server_active_requests".to_owned(), 0.0),
        (r#"plimsoll_span_duration_seconds_count{span="load_user"}"#.to_owned(), 4.0),
        (r#"plimsoll_span_duration_seconds_count{span="db.query"}"#.to_owned(), 4.0),
        (r#"plimsoll_slo_events_total{slo="http_latency",result="good"}"#.to_owned(), 6.0),
        (r#"plimsoll_slo_events_total{slo="http_latency",result="bad"}"#.to_owned(), 1.0),
    ] {
        assert_eq!(sample(&text, &series), count, "{series}");
    }
    let (status, report) = http_get(exporter, "/api/report", "");
    assert_eq!(status, 200, "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let slowest = report["slow_spans"]["slowest"].as_array().unwrap_or_else(|| panic!("no slow spans: {report}"));
    assert_eq!(slowest.len(), 8, "{slowest:?}");
    assert!(slowest.iter().all(|span| span["trace_id"] == TRACE), "every span has the request's trace id: {slowest:?}");
    let status = example.terminate();
    assert!(status.success(), "the example exits cleanly on SIGTERM: {status}");
}
