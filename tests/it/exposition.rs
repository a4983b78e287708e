//! Every exposition the library produces is accepted by `promtool check metrics` and by
//! `prometheus_client`'s strict parsers, and label values survive the round trip.

use crate::support::{promtool_check, python_parse, render};
use plimsoll::{Counter, Family, Format, Gauge, GaugeF64, LatencyHistogram, Registry, Unlabelled};
use serde_json::{Value, json};
use std::sync::Once;

type Counters = Family<Counter, 1, 100>;
type Latencies = Family<LatencyHistogram, 1, 100>;

static COUNTERS: [Counters; 5] = [
    Family::new("app_jobs_done", "Jobs done.", ["worker"]),
    Family::new("app_jobs_failed", "Jobs failed.", ["worker"]),
    Family::new("app_cache_hits", "Cache hits.", ["shard"]),
    Family::new("app_cache_misses", "Cache misses.", ["shard"]),
    Family::new("app_bytes_sent", "Bytes sent.", ["peer"]),
];
static LATENCIES: [Latencies; 5] = [
    Family::new("app_job_duration_seconds", "Job duration.", ["worker"]).unit("seconds"),
    Family::new("app_cache_lookup_seconds", "Cache lookup time.", ["shard"]).unit("seconds"),
    Family::new("app_query_seconds", "Query time.", ["table"]).unit("seconds"),
    Family::new("app_send_seconds", "Send time.", ["peer"]).unit("seconds"),
    Family::new("app_render_seconds", "Render time.", ["view"]).unit("seconds"),
];

/// Registers 10 families x 100 label values (5 counter, 5 histogram families) into
/// `registry`, recording into every series once per process; returns the family count.
pub(crate) fn register_thousand_series<const F: usize>(registry: &Registry<F>) -> usize {
    static RECORD: Once = Once::new();
    RECORD.call_once(|| {
        for i in 0..100u32 {
            let value = format!("v{i}");
            for (j, family) in COUNTERS.iter().enumerate() {
                family.with_label_values(&[&value]).inc_by(u64::from(i) * 10 + j as u64);
            }
            for family in &LATENCIES {
                for k in 1..=5 {
                    family.with_label_values(&[&value]).record(f64::from(i * k) * 1e-3);
                }
            }
        }
    });
    for family in &COUNTERS {
        registry.register(family).expect("valid family");
    }
    for family in &LATENCIES {
        registry.register(family).expect("valid family");
    }
    COUNTERS.len() + LATENCIES.len()
}

fn samples(text: &str, format: Format) -> Vec<Value> {
    python_parse(text, format).iter().map(|line| serde_json::from_str(line).expect("JSON line")).collect()
}

/// Whether `samples` holds `name{labels} value`; numbers compare as `f64` (the parsers
/// give `1` or `1.0` for the same value), NaN and infinities as the strings Python prints.
fn has_sample(samples: &[Value], name: &str, labels: Value, value: f64) -> bool {
    samples.iter().any(|s| {
        let same_value = match (&s[2], value.is_finite()) {
            (Value::Number(n), true) => n.as_f64() == Some(value),
            (Value::String(text), false) => *text == format!("{value}").to_lowercase(),
            _ => false,
        };
        s[0] == name && s[1] == labels && same_value
    })
}

#[test]
fn thousand_series_pass_promtool_and_both_parsers() {
    static REGISTRY: Registry<16> = Registry::new();
    register_thousand_series(&REGISTRY);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&REGISTRY, format, 4096);
        if format == Format::Prometheus {
            promtool_check(&text);
        }
        let samples = samples(&text, format);
        // 500 counters, 500 histograms x (11 buckets + +Inf + _sum + _count), and
        // Plimsoll's own counters: 10 + 10 + 5 series.
        assert_eq!(samples.len(), 500 + 500 * 14 + 25, "{format:?}");
        assert!(has_sample(&samples, "app_jobs_failed_total", json!({"worker": "v7"}), 71.0), "{format:?}");
        assert!(has_sample(&samples, "app_query_seconds_count", json!({"table": "v3"}), 5.0), "{format:?}");
    }
}

#[test]
fn adversarial_label_values_round_trip() {
    static REGISTRY: Registry<2> = Registry::new();
    static EVENTS: Family<Counter, 2, 16> = Family::new("events", "Events with odd labels.", ["kind", "detail"]);
    REGISTRY.register(&EVENTS).unwrap();
    let values: [[&str; 2]; 7] = [
        ["quote\"d", "back\\slash"],
        ["new\nline", "tab\tand space"],
        ["", "empty first"],
        ["ünïcödé ✓", "日本語"],
        ["braces}{,=", "le=\"1\""],
        ["\\n literally", "\\\""],
        ["x".repeat(64).leak(), "max length"],
    ];
    for (i, labels) in values.iter().enumerate() {
        EVENTS.with_label_values(labels).inc_by(i as u64 + 1);
    }
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&REGISTRY, format, 1024);
        if format == Format::Prometheus {
            promtool_check(&text);
        }
        let samples = samples(&text, format);
        for (i, [kind, detail]) in values.iter().enumerate() {
            let labels = json!({"kind": kind, "detail": detail});
            assert!(has_sample(&samples, "events_total", labels, (i + 1) as f64), "{format:?}: {samples:?}");
        }
    }
}

#[test]
fn special_float_values_parse_back() {
    static REGISTRY: Registry<4> = Registry::new();
    static LEVEL: Family<GaugeF64, 1, 8> = Family::new("level", "Levels.", ["case"]);
    static DEPTH: Unlabelled<Gauge> = Unlabelled::new("depth", "Depth.");
    REGISTRY.register(&LEVEL).unwrap();
    REGISTRY.register(&DEPTH).unwrap();
    let cases = [
        ("nan", f64::NAN),
        ("inf", f64::INFINITY),
        ("ninf", f64::NEG_INFINITY),
        ("tiny", 1e-300),
        ("huge", -1.7976931348623157e308),
        ("negzero", -0.0),
        ("frac", 0.1),
    ];
    for (case, value) in cases {
        LEVEL.with_label_values(&[case]).set(value);
    }
    DEPTH.set(i64::MIN);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&REGISTRY, format, 512);
        if format == Format::Prometheus {
            promtool_check(&text);
        }
        let samples = samples(&text, format);
        for (case, value) in cases {
            // NaN != NaN, so NaN is checked through its text; -0.0 is written as 0.
            assert!(has_sample(&samples, "level", json!({"case": case}), value), "{format:?} {case}: {samples:?}");
        }
        assert!(text.contains(&format!("depth {}\n", i64::MIN)), "{text}");
    }
}

#[test]
fn slo_export_passes_promtool_and_both_parsers() {
    use plimsoll::{GoodEvent, Slo, SloExport};
    static REGISTRY: Registry<16> = Registry::new();
    static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    static CHECKOUT: Slo = Slo::new("checkout \"v2\"", 0.99, GoodEvent::LatencyAtMost(0.3));
    static SLOS: SloExport<2> = SloExport::new();
    SLOS.add(&API).unwrap();
    SLOS.add(&CHECKOUT).unwrap();
    SLOS.register(&REGISTRY).unwrap();
    // Four days at one event per second; 1 % of API events fail, checkout has slow tails.
    let end = 4 * 86_400_000;
    for t in (0..end).step_by(1_000) {
        API.record(t, t % 100_000 != 0);
        CHECKOUT.record_latency(t, if t % 7_000 == 0 { 0.9 } else { 0.05 });
    }
    SLOS.update(end);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&REGISTRY, format, 4096);
        if format == Format::Prometheus {
            promtool_check(&text);
        }
        let samples = samples(&text, format);
        assert!(has_sample(&samples, "plimsoll_slo_objective_ratio", json!({"slo": "api"}), 0.999), "{text}");
        // 1 % errors against 99.9 % is a burn rate of 10: above the 6h/30m page threshold
        // of 6, below the 1h/5m one of 14.4.
        assert!(has_sample(&samples, "plimsoll_slo_alert", json!({"slo": "api", "severity": "page"}), 1.0), "{text}");
        let events = samples.iter().filter(|s| s[0] == "plimsoll_slo_events_total").count();
        assert_eq!(events, 4, "good and bad for each SLO:\n{text}");
        let burn = |slo: &str| {
            samples.iter().any(|s| s[0] == "plimsoll_slo_burn_rate" && s[1]["slo"] == slo && s[1]["window"] == "1h")
        };
        assert!(burn("api") && burn("checkout \"v2\""), "{text}");
    }
}
