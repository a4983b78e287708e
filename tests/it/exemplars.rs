//! Exemplars: recorded with observations, read back by prometheus_client's strict
//! OpenMetrics parser (on the classic bucket lines) and by prost from the protobuf
//! exposition (on the classic buckets and among the native histogram's exemplars).

use crate::protobuf::{decode, render as render_protobuf};
use crate::support::{promtool_check, python_parse, render};
use plimsoll::{Exemplar, Family, Format, LatencyExemplarHistogram, Registry};
use serde_json::Value;

static REGISTRY: Registry<4> = Registry::new();
static CHECKOUT: Family<LatencyExemplarHistogram, 1, 4> =
    Family::new("checkout_seconds", "Checkout time.", ["route"]).buckets(&[0.01, 0.1, 1.0]);

/// The trace ids of the test: byte `n` repeated.
fn trace(n: u8) -> [u8; 16] {
    [n; 16]
}

fn hex(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        REGISTRY.register(&CHECKOUT).unwrap();
        let pay = CHECKOUT.with_label_values(&["/pay"]);
        // Two in the first classic bucket (the later is kept), one in the second, one
        // above the last bound (`+Inf`), and one plain observation.
        pay.record_with_exemplar(0.004, trace(1), 1_700_000_000_001);
        pay.record_with_exemplar(0.005, trace(2), 1_700_000_000_250);
        pay.record_with_exemplar(0.05, trace(3), 1_700_000_001_000);
        pay.record_with_exemplar(7.5, trace(4), 1_700_000_002_999);
        pay.record(0.5);
    });
}

#[test]
fn openmetrics_bucket_lines_carry_the_latest_exemplar_of_their_range() {
    setup();
    let text = render(&REGISTRY, Format::OpenMetrics, REGISTRY.max_line_len());
    let samples: Vec<Value> =
        python_parse(&text, Format::OpenMetrics).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let exemplar_of = |le: &str| -> Value {
        let sample = samples
            .iter()
            .find(|s| s[0] == "checkout_seconds_bucket" && s[1]["le"] == le)
            .unwrap_or_else(|| panic!("bucket {le} missing:\n{text}"));
        sample[3].clone()
    };
    let expect = |n: u8, value: f64, timestamp: f64| serde_json::json!({"labels": {"trace_id": hex(n)}, "value": value, "timestamp": timestamp});
    let first_le = samples.iter().find(|s| s[0] == "checkout_seconds_bucket").unwrap()[1]["le"].as_str().unwrap();
    assert_eq!(exemplar_of(first_le), expect(2, 0.005, 1_700_000_000.25));
    let les: Vec<&str> =
        samples.iter().filter(|s| s[0] == "checkout_seconds_bucket").map(|s| s[1]["le"].as_str().unwrap()).collect();
    assert_eq!(exemplar_of(les[1]), expect(3, 0.05, 1_700_000_001.0));
    assert_eq!(exemplar_of(les[2]), Value::Null, "no exemplar was recorded in (0.1, 1]");
    assert_eq!(exemplar_of("+Inf"), expect(4, 7.5, 1_700_000_002.999));
    // Prometheus text has no exemplars, and promtool accepts it as before.
    let prometheus = render(&REGISTRY, Format::Prometheus, REGISTRY.max_line_len());
    assert!(!prometheus.contains("trace_id"), "{prometheus}");
    promtool_check(&prometheus);
}

#[test]
fn protobuf_carries_exemplars_on_classic_buckets_and_the_native_histogram() {
    setup();
    let families = decode(&render_protobuf(&REGISTRY, REGISTRY.max_message_len(Format::Protobuf)));
    let family = families.iter().find(|f| f.name == "checkout_seconds").expect("the family");
    let histogram = family.metric[0].histogram.as_ref().expect("a histogram");
    let exemplar = |e: &plimsoll_proto_exemplar::Exemplar| -> Exemplar {
        assert_eq!(e.label.len(), 1);
        assert_eq!(e.label[0].name, "trace_id");
        let id = &e.label[0].value;
        let byte = u8::from_str_radix(&id[..2], 16).unwrap();
        assert_eq!(*id, hex(byte));
        let time = e.timestamp.as_ref().expect("a time stamp");
        Exemplar {
            trace_id: trace(byte),
            value: e.value,
            timestamp_ms: time.seconds as u64 * 1_000 + time.nanos as u64 / 1_000_000,
        }
    };
    let on_buckets: Vec<Option<Exemplar>> =
        histogram.bucket.iter().map(|b| b.exemplar.as_ref().map(exemplar)).collect();
    let expected = |n: u8, value: f64, timestamp_ms: u64| Some(Exemplar { trace_id: trace(n), value, timestamp_ms });
    assert_eq!(on_buckets, [expected(2, 0.005, 1_700_000_000_250), expected(3, 0.05, 1_700_000_001_000), None]);
    let native: Vec<Exemplar> = histogram.exemplars.iter().map(exemplar).collect();
    assert_eq!(
        native,
        [
            expected(2, 0.005, 1_700_000_000_250),
            expected(3, 0.05, 1_700_000_001_000),
            expected(4, 7.5, 1_700_000_002_999)
        ]
        .map(Option::unwrap)
    );
    assert_eq!(histogram.sample_count, 5);
}

/// The generated `Exemplar` type.
mod plimsoll_proto_exemplar {
    pub(crate) use crate::protobuf::proto::Exemplar;
}
