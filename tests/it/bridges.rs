//! The bridges: the `metrics` facade recorder (exact values, overflow accounting, racing
//! first registrations, a flat heap under 100,000 distinct label values) and the
//! `prometheus` crate both ways (`prometheus::gather()` with Plimsoll's collector, and the
//! exporter serving a `prometheus::Registry` beside Plimsoll's series), each checked by
//! promtool.
//!
//! Recorders are installed with `metrics::with_local_recorder`, per thread, so tests that
//! run in parallel cannot record into each other's.

use crate::alloc::thread_counts;
use crate::support::{dechunk, promtool_check, python_parse, render};
use metrics::{Key, Label, Level, Metadata, Recorder};
use plimsoll::bridge::metrics::{Kind, MetricsRecorder, Rejection};
use plimsoll::bridge::prometheus::RegistryCollector;
use plimsoll::exporter::{Exporter, ExporterMetrics};
use plimsoll::{Counter, Family, Format, Gauge, LatencyHistogram, Registry, Unlabelled};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The sample lines of an exposition (no comments), in order.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|line| !line.starts_with('#')).collect()
}

fn has_line(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
}

#[test]
fn facade_macros_record_exact_values() {
    static REGISTRY: Registry<32> = Registry::new();
    static RECORDER: MetricsRecorder<8, 16> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    metrics::with_local_recorder(&&RECORDER, || {
        metrics::describe_counter!("jobs_total", "Jobs done.");
        metrics::counter!("jobs_total", "queue" => "a", "result" => "ok").increment(3);
        metrics::counter!("jobs_total", "queue" => "b", "result" => "ok").increment(1);
        // The same series with its labels in another order.
        metrics::counter!("jobs_total", "result" => "ok", "queue" => "a").increment(2);
        let held = metrics::counter!("jobs_total", "queue" => "c", "result" => "failed");
        held.absolute(40);
        held.absolute(7);
        held.increment(1);
        metrics::counter!("http.requests").increment(5);
        // Made valid as metrics-exporter-prometheus makes names: one `_` per character.
        metrics::counter!("9lives.é", "route-name" => "/x").increment(2);
        metrics::counter!("9lives.é", "route_name" => "/x").increment(1);

        let depth = metrics::gauge!("queue_depth", "queue" => "a");
        depth.set(2.5);
        depth.increment(1.0);
        depth.decrement(0.25);

        for value in [0.004, 0.02, 0.02, 0.3, 300.0] {
            metrics::histogram!("task_duration_seconds", "queue" => "a").record(value);
        }
        metrics::histogram!("task_duration_seconds", "queue" => "b").record_many(0.02, 3);
    });

    let text = render(&REGISTRY, Format::Prometheus, 4096);
    has_line(&text, "# HELP jobs_total Jobs done.");
    has_line(&text, "jobs_total{queue=\"a\",result=\"ok\"} 5");
    has_line(&text, "jobs_total{queue=\"b\",result=\"ok\"} 1");
    has_line(&text, "jobs_total{queue=\"c\",result=\"failed\"} 41");
    has_line(&text, "http_requests_total 5");
    has_line(&text, "_lives___total{route_name=\"/x\"} 3");
    has_line(&text, "queue_depth{queue=\"a\"} 3.25");
    // Classic buckets at the histogram's edges at or above 0.005, 0.25 and 0.5.
    has_line(&text, "task_duration_seconds_bucket{queue=\"a\",le=\"0.005065779510355506\"} 1");
    has_line(&text, "task_duration_seconds_bucket{queue=\"a\",le=\"0.25\"} 3");
    has_line(&text, "task_duration_seconds_bucket{queue=\"a\",le=\"0.5\"} 4");
    has_line(&text, "task_duration_seconds_bucket{queue=\"a\",le=\"+Inf\"} 5");
    has_line(&text, "task_duration_seconds_count{queue=\"a\"} 5");
    has_line(&text, "task_duration_seconds_count{queue=\"b\"} 3");
    for reason in Rejection::ALL {
        has_line(
            &text,
            &format!("plimsoll_metrics_rejected_total{{kind=\"counter\",reason=\"{}\"}} 0", reason.label()),
        );
    }
    assert!(!text.contains("__overflow__"), "nothing overflowed:\n{text}");
    assert_eq!(RECORDER.names_in_use(Kind::Counter), 3);
    assert_eq!(RECORDER.names_in_use(Kind::Histogram), 1);
    promtool_check(&text);
    python_parse(&render(&REGISTRY, Format::OpenMetrics, 4096), Format::OpenMetrics);
}

#[test]
fn records_beyond_capacity_go_to_overflow_and_are_counted() {
    static REGISTRY: Registry<16> = Registry::new();
    static RECORDER: MetricsRecorder<2, 4> = MetricsRecorder::new();
    static UNREGISTERED: MetricsRecorder<2, 4> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    assert!(RECORDER.register(&REGISTRY).is_err(), "a recorder registers once");
    metrics::with_local_recorder(&&RECORDER, || {
        for i in 0..10 {
            metrics::counter!("orders_total", "customer" => format!("c{i}")).increment(1);
        }
        metrics::counter!("orders_total", "region" => "eu").increment(100);
        metrics::counter!("orders_total", "customer" => "c0", "region" => "eu").increment(100);
        metrics::counter!("refunds_total").increment(1);
        // Every counter name is taken now.
        metrics::counter!("returns_total").increment(7);
        metrics::counter!("returns_total").increment(7);
        metrics::counter!("a".repeat(65)).increment(1);
        metrics::gauge!("wide", "a" => "1", "b" => "2", "c" => "3", "d" => "4", "e" => "5").set(1.0);
        metrics::gauge!("wide").set(2.0);
        // `_sum` is a suffix the exposition appends: the registry refuses the name.
        metrics::gauge!("latency_sum").set(3.0);
        metrics::histogram!("sizes_seconds", "le" => "x").record(1.0);
    });
    metrics::with_local_recorder(&&UNREGISTERED, || metrics::counter!("early_total").increment(1));

    let counted = [
        (Kind::Counter, Rejection::LabelNames, 2),
        (Kind::Counter, Rejection::NamesFull, 2),
        (Kind::Counter, Rejection::TooLong, 1),
        (Kind::Gauge, Rejection::TooManyLabels, 2),
        (Kind::Gauge, Rejection::Refused, 1),
        (Kind::Histogram, Rejection::Refused, 1),
    ];
    for kind in Kind::ALL {
        for reason in Rejection::ALL {
            let expected = counted.iter().find(|c| (c.0, c.1) == (kind, reason)).map_or(0, |c| c.2);
            assert_eq!(RECORDER.rejected(kind, reason), expected, "{kind:?} {reason:?}");
        }
    }
    assert_eq!(UNREGISTERED.rejected(Kind::Counter, Rejection::Unregistered), 1);

    let text = render(&REGISTRY, Format::Prometheus, 4096);
    // Four customers got series; six more and the two mismatched keys went to overflow.
    assert_eq!(samples(&text).iter().filter(|l| l.starts_with("orders_total{customer=\"c")).count(), 4);
    has_line(&text, "orders_total{customer=\"__overflow__\"} 206");
    has_line(&text, "plimsoll_series_overflow_total{family=\"orders\"} 6");
    has_line(&text, "refunds_total 1");
    has_line(&text, "plimsoll_metrics_overflow_increments_total 15");
    has_line(&text, "plimsoll_metrics_overflow_value 3");
    has_line(&text, "plimsoll_metrics_overflow_observations_count 1");
    has_line(&text, "plimsoll_metrics_rejected_total{kind=\"counter\",reason=\"names_full\"} 2");
    has_line(&text, "plimsoll_metrics_rejected_total{kind=\"gauge\",reason=\"too_many_labels\"} 2");
    assert!(!text.contains("returns") && !text.contains("latency_sum"), "{text}");
    promtool_check(&text);
}

#[test]
fn racing_registrations_neither_duplicate_nor_lose() {
    static REGISTRY: Registry<32> = Registry::new();
    static RECORDER: MetricsRecorder<8, 16> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    const THREADS: usize = 4;
    const ROUNDS: usize = 2_000;
    // Every thread registers the same 8 new names and 16 label values, from different
    // starting points, so first registrations race.
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            scope.spawn(move || {
                metrics::with_local_recorder(&&RECORDER, || {
                    for round in 0..ROUNDS {
                        let i = round + thread * 37;
                        let name = ["a", "b", "c", "d", "e", "f", "g", "h"][i % 8];
                        metrics::counter!(name, "shard" => format!("{}", i % 16)).increment(1);
                    }
                })
            });
        }
    });
    assert_eq!(RECORDER.names_in_use(Kind::Counter), 8);
    for reason in Rejection::ALL {
        assert_eq!(RECORDER.rejected(Kind::Counter, reason), 0, "{reason:?}");
    }
    let text = render(&REGISTRY, Format::Prometheus, 4096);
    let series: Vec<&str> = samples(&text).into_iter().filter(|l| l.contains("_total{shard=")).collect();
    let total: u64 = series.iter().map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(total, (THREADS * ROUNDS) as u64, "no increment lost");
    // 8 names × 2 shards each (i % 8 and i % 16 keep a name's shards to two values).
    assert_eq!(series.len(), 16, "one series per label set:\n{text}");
    promtool_check(&text);
}

/// Keys named `requests` with one `user` label of `count` distinct values.
fn user_keys(prefix: &str, count: usize) -> Vec<Key> {
    (0..count).map(|i| Key::from_parts("requests", vec![Label::new("user", format!("{prefix}-{i}"))])).collect()
}

#[test]
fn distinct_label_values_keep_the_heap_flat() {
    static REGISTRY: Registry<16> = Registry::new();
    static RECORDER: MetricsRecorder<4, 64> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    let recorder = &RECORDER;
    let warm_up = user_keys("warm-up", 1_000);
    let keys = user_keys("user", 100_000);
    // Warm-up: the first 64 users take the series (each handle's `Arc` is made once),
    // the rest take the overflow series, whose handle is made once too.
    for key in &warm_up {
        recorder.register_counter(key, &METADATA).increment(1);
    }

    let (allocations, bytes) = thread_counts();
    for key in &keys {
        recorder.register_counter(key, &METADATA).increment(1);
    }
    let after = thread_counts();
    assert_eq!(after.0 - allocations, 0, "registering 100,000 distinct label sets allocated");
    assert_eq!(after.1 - bytes, 0, "the heap grew");

    // Through the macro, the facade builds each key's label list (and here its value) on
    // the heap and frees it: nothing is retained.
    let (_, bytes) = thread_counts();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..100_000 {
            metrics::counter!("requests", "user" => format!("macro-{i}")).increment(1);
        }
    });
    assert_eq!(thread_counts().1 - bytes, 0, "the macro path retained memory");

    let text = render(&REGISTRY, Format::Prometheus, 4096);
    let total: u64 = samples(&text)
        .iter()
        .filter(|l| l.starts_with("requests_total{"))
        .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).expect("a counter value"))
        .sum();
    assert_eq!(total, 201_000, "every increment is counted");
    has_line(&text, "plimsoll_series_overflow_total{family=\"requests\"} 200936");
    // The recorder's tables are all the state there is: the registry's families live in it.
    assert!(REGISTRY.footprint() <= Registry::<16>::FOOTPRINT + MetricsRecorder::<4, 64>::FOOTPRINT);
}

/// A registry with every kind of family, overflowed and with an invalid observation, so
/// Plimsoll's own counters have something to say.
fn bridged_registry() -> &'static Registry<16> {
    static REGISTRY: Registry<16> = Registry::new();
    static REQUESTS: Family<Counter, 2, 4> =
        Family::new("bridged_requests", "Requests \"served\"\\.", ["method", "status"]);
    static DEPTH: Unlabelled<Gauge> = Unlabelled::new("bridged_queue_depth", "Jobs waiting.");
    static LATENCY: Family<LatencyHistogram, 1, 4> =
        Family::new("bridged_latency_seconds", "Latency.", ["route"]).unit("seconds");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        REGISTRY.register(&REQUESTS).expect("room");
        REGISTRY.register(&DEPTH).expect("room");
        REGISTRY.register(&LATENCY).expect("room");
        for (i, status) in ["200", "404", "500", "503", "502", "418"].into_iter().enumerate() {
            REQUESTS.with_label_values(&["GET", status]).inc_by(i as u64 + 1);
        }
        DEPTH.set(-3);
        for value in [0.002, 0.02, 0.2, 2.0, f64::NAN] {
            LATENCY.with_label_values(&["/a\"b"]).record(value);
        }
    });
    &REGISTRY
}

#[test]
fn prometheus_gather_includes_plimsolls_series() {
    let registry = bridged_registry();
    let own = prometheus::IntCounter::new("legacy_jobs_total", "Jobs counted by the prometheus crate.").unwrap();
    own.inc_by(9);
    prometheus::register(Box::new(own)).expect("a new name");
    prometheus::register(Box::new(RegistryCollector::new(registry))).expect("names distinct from the crate's");
    // A second collector of the same registry has the same descriptors: refused.
    assert!(prometheus::register(Box::new(RegistryCollector::new(registry))).is_err());

    let text = prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()).expect("encodable families");
    promtool_check(&text);
    has_line(&text, "legacy_jobs_total 9");
    // The same samples as Plimsoll's own exposition, whatever the formatting of numbers.
    let parsed = |text: &str| python_parse(text, Format::Prometheus).into_iter().collect::<BTreeSet<_>>();
    let plimsoll = parsed(&render(registry, Format::Prometheus, 4096));
    let gathered = parsed(&text);
    assert_eq!(plimsoll.len(), 25, "every kind of series, the overflow series and own counters: {plimsoll:?}");
    let missing: Vec<_> = plimsoll.difference(&gathered).collect();
    assert!(missing.is_empty(), "samples missing from gather(): {missing:?}\n{text}");
    assert_eq!(gathered.len(), plimsoll.len() + 1, "only legacy_jobs_total is added");
}

/// `GET /metrics` over a fresh loopback connection asking for OpenMetrics first.
async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                   Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .expect("a content type");
    (content_type, dechunk(body))
}

#[tokio::test]
async fn the_exporter_serves_an_attached_prometheus_registry() {
    static REGISTRY: Registry<16> = Registry::new();
    static METRICS: ExporterMetrics = ExporterMetrics::new();
    static JOBS: Family<Counter, 1, 4> = Family::new("served_jobs", "Jobs.", ["queue"]);
    REGISTRY.register(&JOBS).expect("room");
    JOBS.with_label_values(&["a"]).inc_by(2);

    let legacy = prometheus::Registry::new();
    let opts = prometheus::Opts::new("legacy_requests_total", "Requests counted by the prometheus crate.");
    let requests = prometheus::IntCounterVec::new(opts, &["code"]).unwrap();
    legacy.register(Box::new(requests.clone())).unwrap();
    requests.with_label_values(&["200"]).inc_by(5);
    let histogram =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("legacy_seconds", "Time.")).unwrap();
    legacy.register(Box::new(histogram.clone())).unwrap();
    histogram.observe(0.3);
    // Named like Plimsoll's counter as exposed: left out, with a comment.
    let clash = prometheus::IntGauge::new("served_jobs_total", "A clash.").unwrap();
    legacy.register(Box::new(clash)).unwrap();

    let exporter = Exporter::builder(&REGISTRY)
        .metrics(&METRICS)
        .prometheus_registry(legacy)
        .address("127.0.0.1:0".parse().unwrap());
    let server = exporter.bind().await.expect("the exporter binds");
    let (content_type, body) =
        tokio::time::timeout(Duration::from_secs(20), scrape(server.local_addr())).await.expect("a timely scrape");

    assert_eq!(content_type, Format::Prometheus.content_type(), "Prometheus text despite Accept");
    has_line(&body, "served_jobs_total{queue=\"a\"} 2");
    has_line(&body, "legacy_requests_total{code=\"200\"} 5");
    has_line(&body, "legacy_seconds_count 1");
    has_line(&body, "# plimsoll: left out prometheus family \"served_jobs_total\": the name is taken");
    assert!(body.find("served_jobs_total{").unwrap() < body.find("legacy_requests_total{").unwrap());
    assert!(!body.contains("# EOF"));
    promtool_check(&body);
    assert!(!python_parse(&body, Format::Prometheus).is_empty());
    server.shutdown().await;
}
