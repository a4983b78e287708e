//! Bad input gets a typed error or a documented, counted fallback, and the exposition
//! stays valid for real parsers.

use crate::support::{promtool_check, python_parse, render};
use plimsoll::{Counter, Family, Format, LatencyHistogram, OVERFLOW_LABEL_VALUE, RegisterError, Registry, Unlabelled};

#[test]
fn registration_errors_are_typed() {
    static REGISTRY: Registry<2> = Registry::new();
    static BAD_NAME: Unlabelled<Counter> = Unlabelled::new("http-requests", "Bad name.");
    static BAD_LABEL: Family<Counter, 1, 4> = Family::new("ok_name", "Bad label.", ["__reserved"]);
    static SUFFIX: Unlabelled<Counter> = Unlabelled::new("requests_total", "Suffix given.");
    static BAD_BUCKETS: Unlabelled<LatencyHistogram> =
        Unlabelled::<LatencyHistogram>::new("h_seconds", "Bad buckets.").buckets(&[0.5, 0.1]);
    static FIRST: Unlabelled<Counter> = Unlabelled::new("first", "First.");
    static SECOND: Unlabelled<Counter> = Unlabelled::new("second", "Second.");
    static THIRD: Unlabelled<Counter> = Unlabelled::new("third", "Third.");
    static OWN: Unlabelled<Counter> = Unlabelled::new("plimsoll_series_overflow", "Clashes.");

    assert_eq!(REGISTRY.register(&BAD_NAME), Err(RegisterError::InvalidMetricName("http-requests")));
    assert_eq!(
        REGISTRY.register(&BAD_LABEL),
        Err(RegisterError::InvalidLabelName { family: "ok_name", label: "__reserved" })
    );
    assert_eq!(REGISTRY.register(&SUFFIX), Err(RegisterError::ReservedMetricName("requests_total")));
    assert_eq!(REGISTRY.register(&OWN), Err(RegisterError::ReservedMetricName("plimsoll_series_overflow")));
    assert_eq!(REGISTRY.register(&BAD_BUCKETS), Err(RegisterError::InvalidBuckets("h_seconds")));
    assert_eq!(REGISTRY.register(&FIRST), Ok(()));
    assert_eq!(REGISTRY.register(&FIRST), Err(RegisterError::DuplicateFamily("first")));
    assert_eq!(REGISTRY.register(&SECOND), Ok(()));
    assert_eq!(REGISTRY.register(&THIRD), Err(RegisterError::RegistryFull("third")));
    assert_eq!(REGISTRY.len(), 2, "failed registrations leave the registry unchanged");
    let message = RegisterError::InvalidMetricName("http-requests").to_string();
    assert_eq!(message, "invalid metric name \"http-requests\"");
}

#[test]
fn overflow_long_values_and_invalid_observations_are_counted_and_exported() {
    static REGISTRY: Registry<2> = Registry::new();
    static USERS: Family<Counter, 1, 3, 16> = Family::new("logins", "Logins per user.", ["user"]);
    static LATENCY: Family<LatencyHistogram, 1, 2> =
        Family::new("request_seconds", "Request latency.", ["route"]).unit("seconds");
    REGISTRY.register(&USERS).unwrap();
    REGISTRY.register(&LATENCY).unwrap();

    for user in ["ann", "bob", "cy", "dee", "eve", "ann"] {
        USERS.with_label_values(&[user]).inc();
    }
    USERS.with_label_values(&["a-name-longer-than-16-bytes"]).inc();
    let route = LATENCY.with_label_values(&["/"]);
    for value in [0.1, f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY, 0.2] {
        route.record(value);
    }

    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&REGISTRY, format, 1024);
        if format == Format::Prometheus {
            promtool_check(&text);
        }
        python_parse(&text, format);
        let overflow = format!("logins_total{{user=\"{OVERFLOW_LABEL_VALUE}\"}} 3\n");
        assert!(text.contains(&overflow), "{text}");
        assert!(text.contains("logins_total{user=\"ann\"} 2\n"), "{text}");
        assert!(text.contains("plimsoll_series_overflow_total{family=\"logins\"} 2\n"), "{text}");
        assert!(text.contains("plimsoll_label_value_rejected_total{family=\"logins\"} 1\n"), "{text}");
        assert!(text.contains("plimsoll_observations_rejected_total{family=\"request_seconds\"} 4\n"));
        assert!(text.contains("request_seconds_count{route=\"/\"} 2\n"), "{text}");
        assert!(text.contains("request_seconds_sum{route=\"/\"} 0.30000000000000004\n"), "{text}");
    }
}
