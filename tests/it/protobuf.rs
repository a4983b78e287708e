//! The protobuf exposition, decoded by prost with message types generated from
//! Prometheus' `metrics.proto`, and checked value by value against the core's own state.

use plimsoll::exporter::Exporter;
use plimsoll::{Counter, Family, Format, Gauge, GaugeF64, Histogram, Registry, Unlabelled};
use prost::Message;
use std::collections::BTreeMap;

/// `io.prometheus.client` messages: prost types that prometheus-client generates at build
/// time from its copy of Prometheus' `metrics.proto` (proto3, the same wire format as
/// client_model's proto2 file).
pub(crate) use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as proto;

/// The whole protobuf exposition of `registry`, rendered through a buffer of `buf_len`.
pub(crate) fn render<const F: usize>(registry: &Registry<F>, buf_len: usize) -> Vec<u8> {
    let mut renderer = registry.renderer(Format::Protobuf);
    let mut buf = vec![0u8; buf_len];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).expect("buffer holds every message");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Every length-delimited `MetricFamily` in `bytes`; fails on any trailing garbage.
pub(crate) fn decode(mut bytes: &[u8]) -> Vec<proto::MetricFamily> {
    let mut families = Vec::new();
    while !bytes.is_empty() {
        let left = bytes.len();
        let family = proto::MetricFamily::decode_length_delimited(&mut bytes);
        families
            .push(family.unwrap_or_else(|e| panic!("message {} at {left} bytes from the end: {e}", families.len())));
    }
    families
}

/// A native histogram's buckets as absolute counts by bucket index.
pub(crate) fn native_counts(h: &proto::Histogram) -> BTreeMap<i32, u64> {
    let mut counts = BTreeMap::new();
    let (mut index, mut count, mut deltas) = (0i32, 0i64, h.positive_delta.iter());
    for (i, span) in h.positive_span.iter().enumerate() {
        index += span.offset + if i == 0 { 0 } else { 1 };
        for j in 0..span.length {
            count += deltas.next().expect("a delta for every bucket of every span");
            assert!(count >= 0, "negative bucket count");
            if count > 0 {
                counts.insert(index, count as u64);
            }
            if j + 1 < span.length {
                index += 1;
            }
        }
    }
    assert!(deltas.next().is_none(), "more deltas than span buckets");
    counts
}

type Latency = Histogram<3, -10, 160>;

static REGISTRY: Registry<8> = Registry::new();
static REQUESTS: Family<Counter, 2, 16> = Family::new("http_requests", "Requests served.", ["method", "path"]);
static QUEUE: Unlabelled<Gauge> = Unlabelled::new("queue_depth", "Jobs waiting.");
static TEMPERATURE: Unlabelled<GaugeF64> = Unlabelled::<GaugeF64>::new("temperature_celsius", "");
static LATENCY: Family<Latency, 1, 4> =
    Family::<Latency, 1, 4>::new("latency_seconds", "Latency.", ["route"]).buckets(&[0.01, 0.1, 1.0]);

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        REGISTRY.register(&REQUESTS).unwrap();
        REGISTRY.register(&QUEUE).unwrap();
        REGISTRY.register(&TEMPERATURE).unwrap();
        REGISTRY.register(&LATENCY).unwrap();
        REQUESTS.with_label_values(&["GET", "/a\"b\\c\nd"]).inc_by(3);
        REQUESTS.with_label_values(&["POST", "/"]).inc_by(1 << 40);
        QUEUE.set(-7);
        TEMPERATURE.set(-1.5);
        // A dense run, sparse values far apart (several spans), gaps of one and two
        // empty buckets (filled), the zero bucket, the overflow, and a NaN.
        let dense = LATENCY.with_label_values(&["/dense"]);
        for i in 0..2_000 {
            dense.record(0.02 + f64::from(i % 97) * 1e-3);
        }
        let sparse = LATENCY.with_label_values(&["/sparse"]);
        for v in [1e-4, 0.0, 0.0005, 0.003, 0.003 * 1.0905, 0.003 * 1.0905f64.powi(3), 0.9, 500.0, 1e6, f64::NAN] {
            sparse.record(v);
        }
        LATENCY.with_label_values(&["/empty"]);
    });
}

/// The core's native buckets of `h`, by index, and its zero count.
fn core_native(h: &Latency) -> (BTreeMap<i32, u64>, u64) {
    let mut counts = BTreeMap::new();
    let zero = h.native_buckets(&mut |index, count| {
        counts.insert(index, count);
    });
    (counts, zero)
}

#[test]
fn every_value_decodes_as_the_core_holds_it() {
    setup();
    let families = decode(&render(&REGISTRY, 1 << 16));
    let find = |name: &str, label: &str| {
        families
            .iter()
            .find(|f| f.name == name && f.metric[0].label.iter().any(|l| l.value == label))
            .unwrap_or_else(|| panic!("{name}{{{label}}} missing"))
    };
    let get = find("http_requests_total", "/a\"b\\c\nd");
    assert_eq!(get.r#type, 0);
    let helps: Vec<_> = families.iter().filter(|f| f.name == "http_requests_total").map(|f| f.help.as_str()).collect();
    assert_eq!(helps.len(), 2);
    assert!(helps.contains(&"Requests served.") && helps.contains(&""), "help once per family: {helps:?}");
    let labels: Vec<_> = get.metric[0].label.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    assert_eq!(labels, [("method", "GET"), ("path", "/a\"b\\c\nd")]);
    assert_eq!(get.metric[0].counter.as_ref().unwrap().value, 3.0);
    let post = find("http_requests_total", "POST");
    assert_eq!(post.metric[0].counter.as_ref().unwrap().value, (1u64 << 40) as f64);

    let queue = families.iter().find(|f| f.name == "queue_depth").unwrap();
    assert_eq!((queue.r#type, queue.metric[0].gauge.as_ref().unwrap().value), (1, -7.0));
    let temperature = families.iter().find(|f| f.name == "temperature_celsius").unwrap();
    assert_eq!(temperature.metric[0].gauge.as_ref().unwrap().value, -1.5);

    for route in ["/dense", "/sparse", "/empty"] {
        let family = find("latency_seconds", route);
        assert_eq!(family.r#type, 4);
        let h = family.metric[0].histogram.as_ref().unwrap();
        let core = LATENCY.with_label_values(&[route]);
        let (buckets, zero) = core_native(core);
        assert_eq!(h.schema, 3);
        assert_eq!(h.zero_threshold, Latency::ZERO_THRESHOLD);
        assert_eq!(h.zero_count, zero, "{route}");
        assert_eq!(native_counts(h), buckets, "{route}");
        assert_eq!(h.sample_count, core.count(), "{route}");
        assert_eq!(h.sample_sum, core.sum(), "{route}");
        assert!(!h.positive_span.is_empty(), "{route}: a native histogram has at least a no-op span");
        let edges: Vec<f64> = [0.01, 0.1, 1.0].iter().map(|&b| Latency::snap_to_edge(b).unwrap()).collect();
        let mut cumulative = [0u64; 3];
        core.cumulative_counts(&edges, &mut cumulative);
        let classic: Vec<(f64, u64)> = h.bucket.iter().map(|b| (b.upper_bound, b.cumulative_count)).collect();
        assert_eq!(classic, edges.into_iter().zip(cumulative).collect::<Vec<_>>(), "{route}");
    }
    let sparse = find("latency_seconds", "/sparse").metric[0].histogram.clone().unwrap();
    assert!(sparse.positive_span.len() >= 3, "far-apart values make several spans: {:?}", sparse.positive_span);
    assert_eq!(*native_counts(&sparse).last_key_value().unwrap().0, Latency::native_index(160), "overflow bucket");

    let rejected = families
        .iter()
        .find(|f| f.name == "plimsoll_observations_rejected_total")
        .expect("own counters are exported too");
    assert_eq!(rejected.metric[0].label[0].value, "latency_seconds");
    assert_eq!(rejected.metric[0].counter.as_ref().unwrap().value, 1.0);
}

#[test]
fn every_buffer_size_gives_the_same_bytes() {
    setup();
    let whole = render(&REGISTRY, 1 << 16);
    let min = REGISTRY.max_message_len(Format::Protobuf);
    for len in (min..3 * min).step_by(7) {
        assert_eq!(render(&REGISTRY, len), whole, "buffer of {len}");
    }
    // Each message is at most the stated bound.
    let mut rest = &whole[..];
    while !rest.is_empty() {
        let before = rest.len();
        proto::MetricFamily::decode_length_delimited(&mut rest).unwrap();
        assert!(before - rest.len() <= min);
    }
}

/// A thousand series through buffers of many sizes: messages cut at every place a
/// buffer can end are rolled back and written whole by the next call.
#[test]
fn a_thousand_series_through_any_buffer_decode_alike() {
    static THOUSAND: Registry<16> = Registry::new();
    crate::exposition::register_thousand_series(&THOUSAND);
    let whole = render(&THOUSAND, 1 << 20);
    let min = THOUSAND.max_message_len(Format::Protobuf);
    for len in (min..min + 500).step_by(37) {
        assert_eq!(render(&THOUSAND, len), whole, "buffer of {len}");
    }
    assert!(decode(&whole).len() > 1_000);
}

#[test]
fn a_too_small_buffer_is_a_typed_error() {
    setup();
    let mut renderer = REGISTRY.renderer(Format::Protobuf);
    let mut buf = [0u8; 8];
    match renderer.render(&mut buf) {
        Err(plimsoll::RenderError::BufferTooSmall { needed }) => assert!(needed > 8),
        other => panic!("{other:?}"),
    }
}

/// Random histograms (values spread over many octaves, so spans, filled gaps, zero and
/// overflow buckets all occur) decode to exactly the core's buckets.
#[test]
fn random_histograms_decode_exactly() {
    type Small = Histogram<2, -8, 40>;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..200 {
        let registry: &'static Registry<1> = Box::leak(Box::new(Registry::new()));
        let family: &'static Family<Small, 1, 2> =
            Box::leak(Box::new(Family::<Small, 1, 2>::new("h", "", ["case"]).buckets(&[0.01, 0.1, 1.0])));
        registry.register(family).unwrap();
        let h = family.with_label_values(&["x"]);
        for _ in 0..next() % 60 {
            // 2^-10 .. 2^12: below the zero threshold (2^-8) up to past the range (2^2).
            let exponent = (next() % 2_200) as f64 / 100.0 - 10.0;
            h.record(exponent.exp2());
        }
        let families = decode(&render(registry, registry.max_message_len(Format::Protobuf)));
        let decoded = families[0].metric[0].histogram.as_ref().unwrap();
        let mut buckets = BTreeMap::new();
        let zero = h.native_buckets(&mut |index, count| {
            buckets.insert(index, count);
        });
        assert_eq!(native_counts(decoded), buckets, "case {case}");
        assert_eq!((decoded.zero_count, decoded.sample_count), (zero, h.count()), "case {case}");
    }
}

/// What Prometheus sends when it scrapes native histograms.
pub(crate) const NATIVE_HISTOGRAM_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
     encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";

/// The exporter serves protobuf to a scraper that asks for it, the same bytes the
/// renderer writes, and text to everyone else.
#[tokio::test]
async fn the_exporter_serves_protobuf_when_asked() {
    use http_body_util::{BodyExt, Empty};
    // Its own registry: the exporter adds its families, which change as it serves.
    static EXPORTED: Registry<16> = Registry::new();
    setup();
    EXPORTED.register(&LATENCY).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let server = Exporter::builder(&EXPORTED).address("127.0.0.1:0".parse().unwrap()).bind().await.unwrap();
        for (accept, format) in [(NATIVE_HISTOGRAM_ACCEPT, Format::Protobuf), ("text/plain", Format::Prometheus)] {
            let stream = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            let driver = tokio::spawn(connection);
            let request = hyper::Request::get("/metrics")
                .header("host", "test")
                .header("accept", accept)
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], format.content_type());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            drop(sender);
            let _ = driver.await;
            if format == Format::Protobuf {
                let latency = |families: Vec<proto::MetricFamily>| -> Vec<_> {
                    families.into_iter().filter(|f| f.name == "latency_seconds").collect()
                };
                let served = latency(decode(&body));
                assert_eq!(served.len(), 3);
                assert_eq!(served, latency(decode(&render(&REGISTRY, 1 << 16))));
            } else {
                assert!(body.starts_with(b"# HELP latency_seconds"));
            }
        }
    })
    .await
    .expect("within the time budget");
}

/// The stated bound holds for the layouts that make a message longest: every bucket used
/// (one span) and one bucket in every four (the most spans).
#[test]
fn the_bound_holds_for_the_longest_layouts() {
    type Small = Histogram<2, -8, 40>;
    for step in [1, 4] {
        let registry: &'static Registry<1> = Box::leak(Box::new(Registry::new()));
        let family: &'static Family<Small, 1, 1> =
            Box::leak(Box::new(Family::<Small, 1, 1>::new("h", "", ["case"]).buckets(&[0.01, 0.1, 1.0])));
        registry.register(family).unwrap();
        let h = family.with_label_values(&["x"]);
        for slot in (0..40).step_by(step) {
            // Mid-bucket values, counts growing so that deltas are not all alike.
            for _ in 0..=slot * 3 {
                h.record(2f64.powf(-8.0 + (slot as f64 + 0.5) / 4.0));
            }
        }
        h.record(1e9); // the overflow bucket too
        let bound = registry.max_message_len(Format::Protobuf);
        let bytes = render(registry, bound);
        let families = decode(&bytes);
        let spans = families[0].metric[0].histogram.as_ref().unwrap().positive_span.len();
        assert!(bytes.len() <= bound, "step {step}: {} bytes over the bound {bound}", bytes.len());
        // The overflow bucket comes right after the last one, three empty buckets after slot 36.
        assert_eq!(spans, if step == 1 { 1 } else { 11 }, "step {step}");
    }
}
