//! The OTLP pusher end to end: a receiver on 127.0.0.1 (hyper's server) decodes every
//! request into OTLP's `ExportMetricsServiceRequest`, and the tests compare what arrived
//! with the core's own state, read through its public API.
//!
//! Every test runs under a time budget and binds port 0; the receiver's `Drop` stops its
//! server and the pusher's `Drop` stops its tasks, so a failing test stops both.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, Metric, NumberDataPoint, metric, number_data_point,
};
use plimsoll::otlp::{OtlpConfig, OtlpMetrics, OtlpPusher, OtlpStats, SpawnError};
use plimsoll::{Counter, Family, Gauge, GaugeF64, Histogram, RegisterError, Registry, Unlabelled};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, timeout};

/// The most any one test may take.
const BUDGET: Duration = Duration::from_secs(30);

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    timeout(BUDGET, test).await.expect("the test ran past its time budget")
}

/// Waits (polling every 2 ms, at most 15 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(2)).await;
    }
}

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    request: ExportMetricsServiceRequest,
    /// Whether the receiver took it (answered 2xx).
    taken: bool,
    at: Instant,
}

/// The requests a receiver saw: those it took, and the first few it refused (so that a
/// long refusal costs the test's heap nothing).
#[derive(Debug, Default)]
struct Log {
    received: Vec<Received>,
    refused: usize,
}

/// Refused requests kept in the log.
const REFUSED_KEPT: usize = 4;

/// A collector stand-in on 127.0.0.1: answers every request with `status`, logging it.
struct Receiver {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    retry_after: Arc<Mutex<Option<&'static str>>>,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Aborting the accept loop drops its `JoinSet`, which aborts every connection.
        self.task.abort();
    }
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let status = Arc::new(AtomicU16::new(status));
        let retry_after = Arc::new(Mutex::new(None));
        let log = Arc::new(Mutex::new(Log::default()));
        let task = tokio::spawn(accept(listener, Arc::clone(&status), Arc::clone(&retry_after), Arc::clone(&log)));
        Self { addr, status, retry_after, log, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Relaxed);
    }

    fn taken(&self) -> usize {
        self.log.lock().unwrap().received.iter().filter(|r| r.taken).count()
    }

    fn attempts(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.received.iter().filter(|r| r.taken).count() + log.refused
    }
}

async fn accept(
    listener: TcpListener,
    status: Arc<AtomicU16>,
    retry_after: Arc<Mutex<Option<&'static str>>>,
    log: Arc<Mutex<Log>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        while connections.try_join_next().is_some() {}
        let (status, retry_after, log) = (Arc::clone(&status), Arc::clone(&retry_after), Arc::clone(&log));
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let (status, retry_after, log) = (Arc::clone(&status), Arc::clone(&retry_after), Arc::clone(&log));
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await?.to_bytes();
                let request = ExportMetricsServiceRequest::decode(body).expect("a valid ExportMetricsServiceRequest");
                let code = StatusCode::from_u16(status.load(Relaxed)).expect("a status code");
                let path = parts.uri.path().to_owned();
                let at = Instant::now();
                let taken = code.is_success();
                let mut log = log.lock().unwrap();
                if !taken {
                    log.refused += 1;
                }
                if taken || log.refused <= REFUSED_KEPT {
                    log.received.push(Received { path, headers: parts.headers, request, taken, at });
                }
                drop(log);
                let mut response = Response::builder().status(code).header("content-type", "application/x-protobuf");
                if let Some(after) = *retry_after.lock().unwrap() {
                    response = response.header("retry-after", after);
                }
                Ok::<_, hyper::Error>(response.body(Full::new(Bytes::new())).expect("a valid response"))
            }
        });
        connections.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// A configuration read from `vars` (as the environment would give them).
fn config(vars: &[(&str, &str)]) -> OtlpConfig {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    OtlpConfig::from_vars(|name| vars.get(name).cloned()).expect("a valid configuration")
}

fn metrics(request: &ExportMetricsServiceRequest) -> &[Metric] {
    assert_eq!(request.resource_metrics.len(), 1);
    assert_eq!(request.resource_metrics[0].scope_metrics.len(), 1);
    &request.resource_metrics[0].scope_metrics[0].metrics
}

fn find<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
    metrics(request).iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no metric {name}"))
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                other => panic!("unexpected attribute value {other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The sum's points by attributes, checked to be monotonic and cumulative.
fn sum_points(metric: &Metric) -> Vec<&NumberDataPoint> {
    let Some(metric::Data::Sum(sum)) = &metric.data else { panic!("{} is not a sum", metric.name) };
    assert!(sum.is_monotonic, "{}", metric.name);
    assert_eq!(sum.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    sum.data_points.iter().collect()
}

fn int_value(point: &NumberDataPoint) -> i64 {
    match point.value {
        Some(number_data_point::Value::AsInt(v)) => v,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn point_with<'a>(points: &[&'a NumberDataPoint], want: &BTreeMap<String, String>) -> &'a NumberDataPoint {
    points.iter().find(|p| attributes(&p.attributes) == *want).unwrap_or_else(|| panic!("no point {want:?}"))
}

type Spread = Histogram<3, -8, 96>;

/// The buckets the core holds for `h`, read slot by slot through its public API and
/// shifted to OTLP's indices (Prometheus native bucket `k` is OTLP bucket `k - 1`):
/// (offset, dense counts).
fn expected_buckets(h: &Spread) -> (i32, Vec<u64>) {
    let mut by_index: BTreeMap<i32, u64> = (0..96)
        .filter(|&slot| h.bucket_count(slot) > 0)
        .map(|slot| (Spread::native_index(slot) - 1, h.bucket_count(slot)))
        .collect();
    if h.overflow_count() > 0 {
        by_index.insert(Spread::native_index(96) - 1, h.overflow_count());
    }
    let first = *by_index.keys().next().expect("some bucket");
    let last = *by_index.keys().last().expect("some bucket");
    (first, (first..=last).map(|i| by_index.get(&i).copied().unwrap_or(0)).collect())
}

fn check_histogram(point: &ExponentialHistogramDataPoint, h: &Spread) {
    let (offset, counts) = expected_buckets(h);
    assert_eq!(point.scale, i32::from(Spread::SCHEMA));
    assert_eq!(point.zero_threshold, Spread::ZERO_THRESHOLD);
    assert_eq!(point.zero_count, h.zero_count());
    assert_eq!(point.count, h.count());
    assert_eq!(point.sum, Some(h.sum()));
    let positive = point.positive.as_ref().expect("positive buckets");
    assert_eq!(positive.offset, offset);
    assert_eq!(positive.bucket_counts, counts, "every bucket, from the offset on");
    assert_eq!(point.zero_count + positive.bucket_counts.iter().sum::<u64>(), point.count);
    assert!(point.negative.as_ref().is_none_or(|n| n.bucket_counts.is_empty()));
}

/// Counters, gauges, histograms (zero bucket, spread, over the range) and their labels,
/// resource attributes and headers, as the core holds them.
#[tokio::test]
async fn pushes_what_the_core_holds() {
    static REGISTRY: Registry<24> = Registry::new();
    static REQUESTS: Family<Counter, 2, 8> = Family::new("http_requests", "Requests served.", ["method", "status"]);
    static TENANTS: Family<Counter, 1, 2> = Family::new("tenant_requests", "Requests by tenant.", ["tenant"]);
    static DEPTH: Unlabelled<Gauge> = Unlabelled::new("queue_depth", "Jobs waiting.");
    static TEMPERATURE: Unlabelled<GaugeF64> =
        Unlabelled::<GaugeF64>::new("room_celsius", "Temperature.").unit("celsius");
    static LATENCY: Family<Spread, 1, 4> =
        Family::<Spread, 1, 4>::new("latency_seconds", "Latency.", ["route"]).unit("seconds");
    static OTLP: OtlpMetrics = OtlpMetrics::new();
    bounded(async {
        for family in [&REQUESTS as &dyn plimsoll::Exposable, &TENANTS, &DEPTH, &TEMPERATURE, &LATENCY] {
            REGISTRY.register(family).unwrap();
        }
        REQUESTS.with_label_values(&["GET", "200"]).inc_by(5);
        REQUESTS.with_label_values(&["POST", "500"]).inc_by(2);
        for tenant in ["a", "b", "c", "d", "c"] {
            TENANTS.with_label_values(&[tenant]).inc();
        }
        DEPTH.set(-3);
        TEMPERATURE.set(21.5);
        let spread = LATENCY.with_label_values(&["/api"]);
        // The zero bucket (the threshold itself included), 200 values from 5 ms to 15 s
        // over many buckets, three above the range (16 s), and two rejected values.
        for v in [0.0, 0.001, Spread::ZERO_THRESHOLD] {
            spread.record(v);
        }
        for i in 0..200 {
            spread.record(0.005 * 3000f64.powf(f64::from(i) / 199.0));
        }
        for v in [20.0, 100.0, 1e6] {
            spread.record(v);
        }
        spread.record(f64::NAN);
        spread.record(-1.0);
        // A single value: its bucket's edges must enclose it, γ^i < v ≤ γ^(i+1).
        LATENCY.with_label_values(&["/single"]).record(0.3);
        assert!(spread.zero_count() == 3 && spread.overflow_count() == 3, "the test covers both ends");

        let receiver = Receiver::start(200).await;
        let before = SystemTime::now();
        let endpoint = receiver.endpoint();
        let pusher = OtlpPusher::spawn(
            &REGISTRY,
            config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr%3Dt%2C1, x-tenant = team%20a"),
                ("OTEL_SERVICE_NAME", "checkout"),
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=a%2Cb"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "20"),
            ]),
            &OTLP,
        )
        .unwrap();
        until("a push is delivered", || pusher.stats().sent > 0).await;
        let stats = pusher.shutdown().await;
        check_accounts(&stats);
        // The first push and the final one at least (a push in flight at shutdown is
        // abandoned and counted as dropped).
        assert!(stats.sent >= 2 && stats.failed == 0, "{stats:?}");
        let after = SystemTime::now();

        let log = receiver.log.lock().unwrap();
        let first = &log.received[0];
        assert_eq!(first.path, "/v1/metrics");
        let header = |name: &str| first.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("content-type").as_deref(), Some("application/x-protobuf"));
        assert_eq!(header("x-api-key").as_deref(), Some("s3cr=t,1"));
        assert_eq!(header("x-tenant").as_deref(), Some("team a"));
        let request = &first.request;

        let resource = attributes(&request.resource_metrics[0].resource.as_ref().unwrap().attributes);
        assert_eq!(resource["service.name"], "checkout");
        assert_eq!(resource["telemetry.sdk.name"], "plimsoll");
        assert_eq!(resource["telemetry.sdk.language"], "rust");
        assert_eq!(resource["telemetry.sdk.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(resource["deployment.environment"], "test");
        assert_eq!(resource["team"], "a,b");

        let requests = find(request, "http_requests");
        assert_eq!(requests.description, "Requests served.");
        let points = sum_points(requests);
        assert_eq!(points.len(), 2);
        assert_eq!(int_value(point_with(&points, &labels(&[("method", "GET"), ("status", "200")]))), 5);
        assert_eq!(int_value(point_with(&points, &labels(&[("method", "POST"), ("status", "500")]))), 2);
        let to_nanos = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
        for point in &points {
            assert!(point.start_time_unix_nano >= to_nanos(before), "start: the pusher's start");
            assert!(point.start_time_unix_nano < point.time_unix_nano && point.time_unix_nano <= to_nanos(after));
        }

        // Two tenants fit; the other two records went to the overflow series.
        let tenants = sum_points(find(request, "tenant_requests"));
        assert_eq!(int_value(point_with(&tenants, &labels(&[("tenant", "a")]))), 1);
        let overflow = labels(&[("tenant", "__overflow__"), ("otel.metric.overflow", "true")]);
        assert_eq!(int_value(point_with(&tenants, &overflow)), 3);

        let Some(metric::Data::Gauge(depth)) = &find(request, "queue_depth").data else { panic!("a gauge") };
        assert_eq!(int_value(&depth.data_points[0]), -3);
        let temperature = find(request, "room_celsius");
        assert_eq!(temperature.unit, "Cel");
        let Some(metric::Data::Gauge(temperature)) = &temperature.data else { panic!("a gauge") };
        assert_eq!(temperature.data_points[0].value, Some(number_data_point::Value::AsDouble(21.5)));

        let latency = find(request, "latency_seconds");
        assert_eq!(latency.unit, "s");
        let Some(metric::Data::ExponentialHistogram(latency)) = &latency.data else { panic!("an exponential one") };
        assert_eq!(latency.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        let by_route = |route: &str| {
            latency.data_points.iter().find(|p| attributes(&p.attributes) == labels(&[("route", route)])).unwrap()
        };
        let point = by_route("/api");
        check_histogram(point, spread);
        assert!(point.positive.as_ref().unwrap().bucket_counts.len() > 80, "spread over many buckets");
        let single = by_route("/single").positive.as_ref().unwrap();
        assert_eq!(single.bucket_counts, [1]);
        let gamma = 2f64.powf(2f64.powi(-i32::from(Spread::SCHEMA)));
        let (lower, upper) = (gamma.powi(single.offset), gamma.powi(single.offset + 1));
        assert!(lower < 0.3 && 0.3 <= upper, "OTLP bucket {} is ({lower}, {upper}]", single.offset);

        // Plimsoll's own counters, by family.
        let rejected = sum_points(find(request, "plimsoll_observations_rejected"));
        assert_eq!(int_value(point_with(&rejected, &labels(&[("family", "latency_seconds")]))), 2);
        let overflowed = sum_points(find(request, "plimsoll_series_overflow"));
        assert_eq!(int_value(point_with(&overflowed, &labels(&[("family", "tenant_requests")]))), 3);
        // And the pusher's, registered into the same registry.
        assert!(metrics(request).iter().any(|m| m.name == "plimsoll_otlp_batches_sent"));
    })
    .await;
}

/// The stats agree with themselves: every batch queued is accounted for exactly once.
fn check_accounts(stats: &OtlpStats) {
    let accounted = stats.sent + stats.failed + stats.dropped + stats.queue_batches as u64 + stats.in_flight as u64;
    assert_eq!(stats.queued, accounted, "{stats:?}");
}

/// A collector answering 503: the queue stays at its bound, the drop counter counts
/// exactly the batches pushed out, and the test thread's heap does not grow; once the
/// collector answers 200, the surviving batches arrive oldest first, then new ones.
#[tokio::test]
async fn an_unavailable_collector_costs_a_bounded_queue_and_delivery_resumes_in_order() {
    static REGISTRY: Registry<16> = Registry::new();
    static EVENTS: Family<Counter, 1, 32> = Family::new("events", "Events.", ["kind"]);
    static LATENCY: Unlabelled<Spread> = Unlabelled::new("outage_latency_seconds", "Latency.");
    static OTLP: OtlpMetrics = OtlpMetrics::new();
    const CAPACITY: usize = 4;
    bounded(async {
        REGISTRY.register(&EVENTS).unwrap();
        REGISTRY.register(&LATENCY).unwrap();
        for i in 0..16 {
            EVENTS.with_label_values(&[&format!("kind-{i}")]).inc_by(i);
            LATENCY.record(f64::from(i as u32) * 0.37 + 0.01);
        }
        let receiver = Receiver::start(503).await;
        let endpoint = receiver.endpoint();
        let mut config = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_METRIC_EXPORT_INTERVAL", "2")]);
        config.queue_capacity = CAPACITY;
        config.max_retries = 2;
        config.initial_backoff = Duration::from_millis(10);
        config.max_backoff = Duration::from_millis(40);
        config.timeout = Duration::from_secs(2);
        let pusher = OtlpPusher::spawn(&REGISTRY, config, &OTLP).unwrap();

        // Everything on this thread (a current-thread runtime: the pusher, the receiver)
        // is counted by the tests' allocator.
        // The heap after 200 batches (when the allocator's and the runtime's buffers have
        // settled), and its largest growth from there to 700.
        let (mut baseline, mut growth) = (None, 0);
        let mut peak_queue = 0;
        until("700 batches were queued during the outage", || {
            let stats = pusher.stats();
            check_accounts(&stats);
            assert!(stats.queue_batches <= CAPACITY, "{stats:?}");
            assert!(stats.queue_bytes <= CAPACITY * stats.largest_batch_bytes, "{stats:?}");
            assert_eq!(stats.sent, 0);
            peak_queue = peak_queue.max(stats.queue_batches);
            let (_, net_bytes) = crate::alloc::thread_counts();
            if stats.queued >= 200 {
                growth = growth.max(net_bytes - *baseline.get_or_insert(net_bytes));
            }
            stats.queued >= 700
        })
        .await;
        let during = pusher.stats();
        assert_eq!(peak_queue, CAPACITY, "the queue filled to its bound");
        assert!(during.dropped > 500 && during.failed > 0, "{during:?}");
        assert!(during.retries >= 2 * during.failed, "each failed batch was retried twice: {during:?}");
        // Dropped: every batch queued beyond what was sent, failed, waiting or in flight.
        let over = during.queued - during.failed - during.queue_batches as u64 - during.in_flight as u64;
        assert_eq!(during.dropped, over);
        eprintln!(
            "otlp outage: {} batches queued, {} dropped, {} failed, {} retries; batch {} bytes; queue bound {} bytes; heap growth over {} batches: {growth} bytes",
            during.queued,
            during.dropped,
            during.failed,
            during.retries,
            during.largest_batch_bytes,
            CAPACITY * during.largest_batch_bytes,
            during.queued - 200,
        );
        assert!(growth < 8 * 1024, "the heap grew by {growth} bytes over 500 batches");
        assert_eq!(receiver.taken(), 0);

        // Recorded during the outage: must arrive once the collector is back.
        EVENTS.with_label_values(&["late"]).inc_by(7);
        receiver.answer(200);
        until("the backlog and new batches are delivered", || receiver.taken() >= CAPACITY + 3).await;
        let stats = pusher.shutdown().await;
        check_accounts(&stats);
        assert_eq!((stats.queue_batches, stats.in_flight), (0, 0));

        let log = receiver.log.lock().unwrap();
        let delivered: Vec<&Received> = log.received.iter().filter(|r| r.taken).collect();
        // A batch the receiver took as shutdown abandoned it counts as dropped, not sent.
        let taken = delivered.len() as u64;
        assert!(taken == stats.sent || taken == stats.sent + 1, "{taken} taken, {stats:?}");
        let times: Vec<u64> = delivered.iter().map(|r| batch_time(&r.request)).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "delivered oldest first: {times:?}");
        // Batches collected during the outage, queued survivors, were delivered first.
        assert!(!has_late(&delivered[0].request), "the first delivered batch is from the outage");
        let outage_batches = delivered.iter().filter(|r| !has_late(&r.request)).count();
        assert!(outage_batches >= 1, "a batch from before the recovery was delivered");
        assert!(has_late(&delivered.last().unwrap().request), "the final push has the latest values");
        assert!(log.received.iter().all(|r| r.path == "/v1/metrics"));
    })
    .await;
}

fn batch_time(request: &ExportMetricsServiceRequest) -> u64 {
    let Some(metric::Data::Sum(sum)) = &find(request, "events").data else { panic!("a sum") };
    sum.data_points[0].time_unix_nano
}

fn has_late(request: &ExportMetricsServiceRequest) -> bool {
    let points = sum_points(find(request, "events"));
    points.iter().any(|p| attributes(&p.attributes) == labels(&[("kind", "late")]) && int_value(p) == 7)
}

/// With an interval longer than the test, the only push is shutdown's, with the final values.
#[tokio::test]
async fn shutdown_pushes_the_final_values_once() {
    static REGISTRY: Registry<16> = Registry::new();
    static JOBS: Unlabelled<Counter> = Unlabelled::new("jobs", "Jobs done.");
    static OTLP: OtlpMetrics = OtlpMetrics::new();
    bounded(async {
        REGISTRY.register(&JOBS).unwrap();
        let receiver = Receiver::start(200).await;
        let endpoint = receiver.endpoint();
        let config = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_METRIC_EXPORT_INTERVAL", "3600000")]);
        let pusher = OtlpPusher::spawn(&REGISTRY, config, &OTLP).unwrap();
        JOBS.inc_by(41);
        sleep(Duration::from_millis(20)).await;
        assert_eq!(receiver.attempts(), 0, "nothing before the first interval");
        JOBS.inc();
        let stats = pusher.shutdown().await;
        assert_eq!((stats.queued, stats.sent, stats.failed, stats.dropped), (1, 1, 0, 0));
        let log = receiver.log.lock().unwrap();
        assert_eq!(log.received.len(), 1);
        assert_eq!(int_value(sum_points(find(&log.received[0].request, "jobs"))[0]), 42);
    })
    .await;
}

/// A 429 with `Retry-After: 1` delays the retry by that second, not the (1 ms) backoff.
#[tokio::test]
async fn retry_after_is_honoured() {
    static REGISTRY: Registry<16> = Registry::new();
    static JOBS: Unlabelled<Counter> = Unlabelled::new("retried_jobs", "Jobs done.");
    static OTLP: OtlpMetrics = OtlpMetrics::new();
    bounded(async {
        REGISTRY.register(&JOBS).unwrap();
        let receiver = Receiver::start(429).await;
        *receiver.retry_after.lock().unwrap() = Some("1");
        let endpoint = receiver.endpoint();
        let mut config =
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_METRIC_EXPORT_INTERVAL", "3600000")]);
        config.interval = Duration::from_millis(10);
        config.initial_backoff = Duration::from_millis(1);
        let pusher = OtlpPusher::spawn(&REGISTRY, config, &OTLP).unwrap();
        until("the first attempt", || receiver.attempts() >= 1).await;
        receiver.answer(200);
        until("the retry", || receiver.taken() >= 1).await;
        {
            let log = receiver.log.lock().unwrap();
            let gap = log.received[1].at - log.received[0].at;
            assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
            assert_eq!(log.received[0].request, log.received[1].request, "the same batch, retried");
        }
        // The receiver logs the request before the pusher has read its answer.
        until("the retried batch counted as sent", || pusher.stats().sent >= 1).await;
        let stats = pusher.stats();
        assert!(stats.retries >= 1, "{stats:?}");
        assert!(pusher.last_error().is_some_and(|e| e.contains("429")), "{:?}", pusher.last_error());
    })
    .await;
}

/// Spawning checks the registry has room for the pusher's metrics.
#[test]
fn spawn_needs_room_for_its_metrics() {
    static REGISTRY: Registry<4> = Registry::new();
    static OTLP: OtlpMetrics = OtlpMetrics::new();
    let error = OtlpPusher::spawn(&REGISTRY, config(&[]), &OTLP).unwrap_err();
    assert_eq!(error, SpawnError::Register(RegisterError::RegistryFull("plimsoll_otlp_batches_queued")));
    assert_eq!(REGISTRY.len(), 0, "none registered");
}

/// A closed port and a collector that never answers: each attempt fails (at the timeout
/// for the silent one), is retried, then the batch is counted as failed.
#[tokio::test]
async fn closed_and_silent_collectors_fail_within_bounds() {
    // One registry per pusher: each registers its own metrics.
    static CLOSED_REGISTRY: Registry<16> = Registry::new();
    static SILENT_REGISTRY: Registry<16> = Registry::new();
    static OTLP_CLOSED: OtlpMetrics = OtlpMetrics::new();
    static OTLP_SILENT: OtlpMetrics = OtlpMetrics::new();
    static JOBS: Unlabelled<Counter> = Unlabelled::new("failing_jobs", "Jobs done.");
    bounded(async {
        CLOSED_REGISTRY.register(&JOBS).unwrap();
        SILENT_REGISTRY.register(&JOBS).unwrap();
        // A port that was just free: nothing listens there.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        // A listener that accepts into its backlog and never reads or answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let quick = |addr: SocketAddr| {
            let endpoint = format!("http://{addr}");
            let mut config = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
            config.interval = Duration::from_millis(10);
            config.timeout = Duration::from_millis(100);
            config.max_retries = 1;
            config.initial_backoff = Duration::from_millis(1);
            config
        };
        let refused = OtlpPusher::spawn(&CLOSED_REGISTRY, quick(closed), &OTLP_CLOSED).unwrap();
        let unanswered = OtlpPusher::spawn(&SILENT_REGISTRY, quick(silent_addr), &OTLP_SILENT).unwrap();
        let started = Instant::now();
        until("two batches failed on each", || refused.stats().failed >= 2 && unanswered.stats().failed >= 2).await;
        // Two attempts of 100 ms each per failed batch, at least.
        assert!(started.elapsed() >= Duration::from_millis(400));
        for (pusher, cause) in [(&refused, "connect"), (&unanswered, "no answer within 100ms")] {
            let stats = pusher.stats();
            assert_eq!(stats.sent, 0);
            assert!(stats.retries >= stats.failed, "{stats:?}");
            assert!(pusher.last_error().is_some_and(|e| e.contains(cause)), "{:?}", pusher.last_error());
        }
        drop(silent);
        let stats = refused.shutdown().await;
        check_accounts(&stats);
    })
    .await;
}
