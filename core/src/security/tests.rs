use super::*;
use crate::Format;
use std::string::String;
use std::vec::Vec;

const ALL_KINDS: [EventKind; KINDS] = [
    EventKind::AuthFailure,
    EventKind::Forbidden,
    EventKind::NotFound,
    EventKind::RateLimited,
    EventKind::BruteForce,
    EventKind::PathScan,
    EventKind::LimitViolations,
    EventKind::Custom(3),
];

#[test]
fn kinds_have_their_own_counter_and_label() {
    for (i, kind) in ALL_KINDS.into_iter().enumerate() {
        assert_eq!(kind.index(), i);
        assert_eq!(kind.label(), KIND_LABELS[i]);
    }
    assert_eq!(EventKind::Custom(200).label(), "custom");
    assert_eq!(KindCounts([const { Counter::new() }; KINDS]).label_value_capacity(), 16);
}

/// Each rule hits at the `N`-th of `N` events close together, not at the `N - 1`-th, and
/// once: further events in the window, however many, do not hit again.
#[test]
fn rules_hit_at_the_threshold_once() {
    static S: SecurityEvents<16, 64> = SecurityEvents::new(ThreatRules::DEFAULT);
    let rules = [
        (EventKind::AuthFailure, Rule::BruteForce, 10),
        (EventKind::NotFound, Rule::PathScan, 20),
        (EventKind::RateLimited, Rule::LimitViolations, 50),
    ];
    for (key, (kind, rule, n)) in rules.into_iter().enumerate() {
        let key = key as u64;
        for i in 1..n {
            assert_eq!(S.record(kind, key, 0, 1_000 + i), None, "{rule:?}: event {i} of {n}");
        }
        assert_eq!(S.record(kind, key, 0, 1_000 + n), Some(rule));
        for i in 0..500 {
            assert_eq!(S.record(kind, key, 0, 1_000 + n + i), None, "{rule:?} hit again");
        }
        // Another key is judged on its own.
        assert_eq!(S.record(kind, key + 100, 0, 1_000 + n), None);
        assert_eq!(S.count(rule.kind()), 1);
    }
}

/// A key that keeps failing at one a second hits once per 5-minute window; one that
/// fails at exactly the threshold's rate (one per 30 s) never does.
#[test]
fn persistent_keys_hit_once_per_window_and_steady_ones_never() {
    static S: SecurityEvents<16, 64> = SecurityEvents::new(ThreatRules::DEFAULT);
    let mut hits = Vec::new();
    for second in 0..1_200u64 {
        if S.auth_failure(1, second * 1_000).is_some() {
            hits.push(second);
        }
        if second % 30 == 0 {
            assert_eq!(S.auth_failure(2, second * 1_000), None);
        }
    }
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert_eq!(hits[0], 9, "the 10th failure");
    assert!(hits.windows(2).all(|w| w[1] - w[0] >= 300), "{hits:?}");
}

#[test]
fn ring_keeps_the_last_events_newest_first() {
    static S: SecurityEvents<4, 8> = SecurityEvents::new(ThreatRules::DEFAULT);
    assert!(S.is_empty());
    let mut seen = Vec::new();
    S.for_each_recent(|e| seen.push(e));
    assert!(seen.is_empty());
    for i in 0..10u64 {
        assert_eq!(S.record(EventKind::Custom(i as u8), 100 + i, 500 + i as u16, i), None);
    }
    S.for_each_recent(|e| seen.push(e));
    let times: Vec<u64> = seen.iter().map(|e| e.time_ms).collect();
    assert_eq!(times, [9, 8, 7, 6]);
    assert_eq!(seen[0], SecurityEvent { time_ms: 9, key: 109, code: 509, kind: EventKind::Custom(9) });

    let mut out = [SecurityEvent::EMPTY; 6];
    assert_eq!(S.copy_recent(&mut out), 4);
    assert_eq!(&out[..4], &seen[..]);
    assert_eq!(S.copy_recent(&mut out[..2]), 2);
    assert_eq!(out[1].time_ms, 8);
    assert_eq!((S.len(), S.total(), S.count(EventKind::Custom(0))), (4, 10, 10));
}

/// The hit's event follows the one that triggered it, with its key, time and code.
#[test]
fn hits_raise_an_event_into_the_ring() {
    static S: SecurityEvents<8, 8> =
        SecurityEvents::new(ThreatRules { path_scan: threshold(2, 1_000), ..ThreatRules::DEFAULT });
    assert_eq!(S.not_found(5, 10), None);
    assert_eq!(S.not_found(5, 11), Some(Rule::PathScan));
    let mut out = [SecurityEvent::EMPTY; 8];
    assert_eq!(S.copy_recent(&mut out), 3);
    assert_eq!(out[0], SecurityEvent { time_ms: 11, key: 5, code: 404, kind: EventKind::PathScan });
    assert_eq!(out[1], SecurityEvent { time_ms: 11, key: 5, code: 404, kind: EventKind::NotFound });
}

/// Per-kind counts add up to the events recorded, and rule counts to the hits returned.
#[test]
fn counts_are_conserved() {
    static S: SecurityEvents<8, 64> = SecurityEvents::new(ThreatRules::DEFAULT);
    let mut returned = [0u64; 3];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..20_000u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let kind = ALL_KINDS[(state % KINDS as u64) as usize];
        if let Some(rule) = S.record(kind, state % 5, 0, i * 10) {
            returned[rule as usize] += 1;
        }
    }
    let counted: u64 = ALL_KINDS.iter().map(|&k| S.count(k)).sum();
    assert_eq!(counted, S.total());
    assert_eq!(S.total(), 20_000 + returned.iter().sum::<u64>());
    let recorded_directly = |kind| S.count(kind) - returned[rule_index(kind)];
    // Rule kinds recorded directly are counted too; the rest of each is the hits.
    for kind in [EventKind::BruteForce, EventKind::PathScan, EventKind::LimitViolations] {
        assert!(recorded_directly(kind) > 2_000, "{kind:?}");
    }
    assert!(returned.iter().all(|&n| n > 0), "{returned:?}");
}

fn rule_index(kind: EventKind) -> usize {
    match kind {
        EventKind::BruteForce => Rule::BruteForce as usize,
        EventKind::PathScan => Rule::PathScan as usize,
        _ => Rule::LimitViolations as usize,
    }
}

/// Writers on four threads while a reader copies events out: every event read is one
/// that was written whole (its fields agree with each other).
#[test]
fn concurrent_readers_never_see_torn_events() {
    static S: SecurityEvents<32, 8> = SecurityEvents::new(ThreatRules::DEFAULT);
    const PER_THREAD: u64 = 20_000;
    let whole = |e: &SecurityEvent| {
        e.key == e.time_ms.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            && e.code == e.time_ms as u16
            && e.kind == EventKind::Custom((e.time_ms >> 32) as u8)
    };
    let checked = std::thread::scope(|s| {
        for thread in 0..4u64 {
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let time = (thread << 32) | i;
                    let kind = EventKind::Custom(thread as u8);
                    S.record(kind, time.wrapping_mul(0x9E37_79B9_7F4A_7C15), time as u16, time);
                }
            });
        }
        let reader = s.spawn(|| {
            let mut checked = 0u64;
            let mut out = [SecurityEvent::EMPTY; 32];
            // Reads until the writers are done, and at least once, even if the scheduler
            // ran them all before this thread started.
            loop {
                let done = S.total() >= 4 * PER_THREAD;
                let n = S.copy_recent(&mut out);
                assert!(out[..n].iter().all(whole), "torn: {:?}", &out[..n]);
                S.for_each_recent(|e| assert!(whole(&e), "torn: {e:?}"));
                checked += n as u64;
                if done {
                    return checked;
                }
            }
        });
        reader.join().unwrap()
    });
    assert!(checked > 0);
    assert_eq!(S.count(EventKind::Custom(0)), 4 * PER_THREAD);
    assert_eq!(S.len(), 32);
}

/// Threads racing on one key's failures at one instant: one hit, not one per thread.
#[test]
fn concurrent_failures_hit_once() {
    static S: SecurityEvents<8, 8> = SecurityEvents::new(ThreatRules::DEFAULT);
    let hits: usize = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| (0..1_000).filter(|_| S.auth_failure(7, 5_000).is_some()).count())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(hits, 1);
    assert_eq!(S.count(EventKind::BruteForce), 1);
    assert_eq!(S.count(EventKind::AuthFailure), 4_000);
}

#[test]
fn export_renders_counts_and_ring_size() {
    static S: SecurityEvents<64, 8> = SecurityEvents::new(ThreatRules::DEFAULT);
    static REGISTRY: Registry<4> = Registry::new();
    S.register(&REGISTRY).unwrap();
    assert_eq!(S.register(&REGISTRY), Err(RegisterError::DuplicateFamily("plimsoll_security_events")));
    for i in 0..10 {
        S.auth_failure(1, i);
    }
    S.record(EventKind::Custom(9), 2, 0, 20);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let mut renderer = REGISTRY.renderer(Format::OpenMetrics);
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        text.push_str(core::str::from_utf8(&buf[..n]).unwrap());
    }
    for line in [
        "# TYPE plimsoll_security_events counter",
        "plimsoll_security_events_total{kind=\"auth_failure\"} 10",
        "plimsoll_security_events_total{kind=\"brute_force\"} 1",
        "plimsoll_security_events_total{kind=\"custom\"} 1",
        "plimsoll_security_events_total{kind=\"path_scan\"} 0",
        "plimsoll_security_ring_events 12",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(core::mem::size_of::<SecurityEvent>(), 24);
    assert_eq!(SecurityEvents::<64, 256>::FOOTPRINT, 54_456);
    assert_eq!(SecurityEvents::<8, 8>::FOOTPRINT, 696 + 24 * 8 + 204 * 8);
}
