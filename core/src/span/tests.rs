//! Slowest sets against a sort, rollover, name overflow, threads and export.

use super::*;
use crate::{Format, Registry};
use proptest::prelude::*;
use std::boxed::Box;
use std::string::{String, ToString};
use std::vec::Vec;

/// What a report shows of a span.
type Seen = (String, u64, u64, Option<[u8; 16]>);

fn report<const N: usize, const S: usize>(spans: &SlowSpans<N, S>, now_ms: u64) -> Vec<Seen> {
    let mut seen = Vec::new();
    spans.for_each_slowest(now_ms, |s| seen.push((s.name().to_string(), s.duration_us(), s.start_ms(), s.trace_id())));
    seen
}

fn boxed<const N: usize, const S: usize>(window_ms: u64) -> Box<SlowSpans<N, S>> {
    Box::new(SlowSpans::new(SlowSpansConfig { window_ms }))
}

/// The sizes the docs state.
#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(core::mem::size_of::<SlowSpan>(), 104);
    assert_eq!(SlowSpans::<16, 10>::FOOTPRINT, 63_224);
}

/// A stable sort by duration, slowest first, of every span of one window, cut to `N`.
fn sorted_model(spans: &[Seen], n: usize) -> Vec<Seen> {
    let mut model = spans.to_vec();
    model.sort_by_key(|s| core::cmp::Reverse(s.1));
    model.truncate(n);
    model
}

const NAMES: [&str; 4] = ["a", "b", "GET /users/:id", "ééé"];

proptest! {
    /// Within one window, the report is exactly the first `N` of a stable sort of all spans
    /// by duration, ties in the order recorded.
    #[test]
    fn slowest_of_one_window_match_a_sort(
        spans in proptest::collection::vec((0usize..4, 0u64..50, any::<u64>(), any::<Option<[u8; 16]>>()), 0..200),
        offsets in proptest::collection::vec(0u64..1_000, 200),
    ) {
        let slow: Box<SlowSpans<4, 5>> = boxed(1_000);
        let mut all = Vec::new();
        for (i, &(name, duration_us, start_ms, trace_id)) in spans.iter().enumerate() {
            slow.record(NAMES[name], start_ms, duration_us, trace_id, 7_000 + offsets[i]);
            all.push((NAMES[name].to_string(), duration_us, start_ms, trace_id));
        }
        prop_assert_eq!(report(&slow, 7_999), sorted_model(&all, 5));
        prop_assert_eq!(slow.recorded(), spans.len() as u64);
    }

    /// Across windows, with time moving back and forth: each span is in the window of the
    /// newest time seen when it was recorded, and the report merges the top `N` of the
    /// window read and of the one before it.
    #[test]
    fn slowest_across_windows_match_a_model(
        steps in proptest::collection::vec((0u8..5, 0u64..3_000, 0u64..40), 1..200),
    ) {
        let slow: Box<SlowSpans<4, 3>> = boxed(1_000);
        let mut newest = 0u64;
        let mut recorded: Vec<(u64, Seen)> = Vec::new();
        let mut now = 0u64;
        for (i, &(op, dt, duration_us)) in steps.iter().enumerate() {
            match op {
                0 => now += dt,
                1 => now = now.saturating_sub(dt),
                2 => {
                    let expected_window = |w: u64| {
                        let spans: Vec<Seen> = recorded.iter().filter(|r| r.0 == w).map(|r| r.1.clone()).collect();
                        sorted_model(&spans, 3)
                    };
                    newest = newest.max(now / 1_000);
                    // The previous window's spans first, so that a stable sort puts them
                    // first among equal durations.
                    let mut merged = if newest > 0 { expected_window(newest - 1) } else { Vec::new() };
                    merged.extend(expected_window(newest));
                    merged.sort_by_key(|s| core::cmp::Reverse(s.1));
                    prop_assert_eq!(report(&slow, now), merged, "step {}", i);
                }
                _ => {
                    newest = newest.max(now / 1_000);
                    let name = NAMES[(dt % 4) as usize];
                    slow.record(name, i as u64, duration_us, None, now);
                    recorded.push((newest, (name.to_string(), duration_us, i as u64, None)));
                }
            }
        }
    }
}

#[test]
fn windows_roll_over_and_gaps_empty_them() {
    let slow: Box<SlowSpans<4, 2>> = boxed(1_000);
    slow.record("a", 0, 30, None, 500);
    slow.record("b", 0, 10, None, 900);
    slow.record("c", 0, 20, None, 999);
    let durations = |now| report(&slow, now).into_iter().map(|s| s.1).collect::<Vec<_>>();
    assert_eq!(durations(999), [30, 20], "the fastest of a full set is replaced");
    slow.record("d", 0, 25, None, 1_000);
    assert_eq!(durations(1_500), [30, 25, 20], "current and previous windows, merged");
    slow.record("e", 0, 5, None, 400);
    assert_eq!(durations(1_500), [30, 25, 20, 5], "a late span goes into the newest window");
    assert_eq!(durations(2_000), [25, 5], "window 0 is two windows old");
    assert_eq!(durations(1_000), [25, 5], "reading an older time changes nothing");
    assert_eq!(durations(4_000), Vec::<u64>::new(), "a gap of more than one window empties both");
    slow.record("f", 0, 1, None, 4_100);
    assert_eq!(durations(4_100), [1]);
}

/// The lock-free check keeps 32 bits of the floor: slower sets still take slower spans.
#[test]
fn durations_beyond_32_bits_still_compete() {
    let slow: Box<SlowSpans<1, 2>> = boxed(1_000);
    for us in [5 << 32, 7 << 32, 6 << 32] {
        slow.record("a", 0, us, None, 0);
    }
    let durations: Vec<u64> = report(&slow, 0).into_iter().map(|s| s.1).collect();
    assert_eq!(durations, [7 << 32, 6 << 32]);
}

#[test]
fn a_zero_window_is_one_millisecond() {
    let slow: Box<SlowSpans<2, 2>> = boxed(0);
    slow.record("a", 0, 10, None, 5);
    assert_eq!(report(&slow, 6).len(), 1);
    assert_eq!(report(&slow, 7).len(), 0);
}

#[test]
fn names_beyond_the_table_or_too_long_overflow_and_are_counted() {
    let slow: Box<SlowSpans<2, 8>> = boxed(60_000);
    let long = "x".repeat(MAX_SPAN_NAME_LEN - 1) + "é"; // 65 bytes, cut before the 'é'
    for (name, us) in [("a", 1_000), ("b", 2_000), ("c", 3_000), ("a", 4_000), (long.as_str(), 5_000)] {
        slow.record(name, 0, us, None, 0);
    }
    assert_eq!(slow.recorded(), 5);
    assert_eq!(slow.name_overflow(), 2, "\"c\" found the table full, the long name is too long");
    assert_eq!(slow.durations("a").count(), 2);
    assert_eq!(slow.durations("c").count(), 2, "the overflow series holds \"c\" and the long name");
    assert_eq!(slow.durations(OVERFLOW_LABEL_VALUE).sum(), 0.008);
    let names: Vec<String> = report(&slow, 0).into_iter().map(|s| s.0).collect();
    assert_eq!(names[0], "x".repeat(MAX_SPAN_NAME_LEN - 1));
    assert_eq!(names[1..], ["a", "c", "b", "a"], "the slowest sets keep every name");
}

/// Threads recording distinct durations into one window: no span is lost from the counters
/// or the histograms, and the slowest set is exactly the slowest of all, so the lock-free
/// check never turned a slow span away.
#[test]
fn racing_records_lose_nothing() {
    static SPANS: SlowSpans<8, 10> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    const THREADS: u64 = 4;
    const EACH: u64 = 5_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..EACH {
                    // Distinct durations, interleaved between threads and shuffled in time.
                    let duration_us = (i * 7_919 % EACH) * THREADS + t;
                    SPANS.record(NAMES[(i % 4) as usize], i, duration_us, None, 60_000 + i % 1_000);
                }
            });
        }
    });
    assert_eq!(SPANS.recorded(), THREADS * EACH);
    let counted: u64 = NAMES.iter().map(|n| SPANS.durations(n).count()).sum();
    assert_eq!(counted, THREADS * EACH);
    let slowest: Vec<u64> = report(&SPANS, 60_999).into_iter().map(|s| s.1).collect();
    let expected: Vec<u64> = (0..10).map(|k| THREADS * EACH - 1 - k).collect();
    assert_eq!(slowest, expected);
}

#[test]
fn export_renders_the_three_families() {
    static SPANS: SlowSpans<2, 2> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    static REGISTRY: Registry<4> = Registry::new();
    SPANS.register(&REGISTRY).unwrap();
    assert_eq!(SPANS.register(&REGISTRY), Err(RegisterError::RegistryFull("plimsoll_span_duration_seconds")));
    SPANS.record("checkout", 0, 250_000, None, 0);
    SPANS.record("a", 0, 1, None, 0);
    SPANS.record("b", 0, 1, None, 0);
    let mut renderer = REGISTRY.renderer(Format::Prometheus);
    let mut buf = std::vec![0u8; REGISTRY.max_line_len()];
    let mut text = String::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        text.push_str(core::str::from_utf8(&buf[..n]).unwrap());
    }
    for line in [
        r#"plimsoll_span_duration_seconds_count{span="checkout"} 1"#,
        r#"plimsoll_span_duration_seconds_count{span="__overflow__"} 1"#,
        "plimsoll_spans_total 3",
        "plimsoll_span_name_overflow_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}
