use super::*;
use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::family::Exposable;
use crate::{Format, RegisterError, Registry};
use proptest::prelude::*;
use std::collections::HashMap;
use std::string::String;
use std::vec::Vec;

fn top<P: Payload, const K: usize>(table: &SpaceSaving<P, K>) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    table.for_each_top(|key, count, error| out.push((key, count, error)));
    out
}

/// A payload counting the events its key received since it entered the table.
#[derive(Debug)]
struct Hits(AtomicU64);

impl Payload for Hits {
    #[allow(clippy::declare_interior_mutable_const)] // See `Payload::ZERO`.
    const ZERO: Self = Hits(AtomicU64::new(0));
    fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

#[test]
fn exact_while_the_keys_fit() {
    let t = TopK::<4>::new();
    for (key, weight) in [(5, 2), (1, 7), (5, 3), (9, 5), (2, 1)] {
        t.add(key, weight);
    }
    // Equal counts (5 and 9) come by ascending key.
    assert_eq!(top(&t), [(1, 7, 0), (5, 5, 0), (9, 5, 0), (2, 1, 0)]);
    assert_eq!((t.total(), t.len(), t.min_count()), (18, 4, 1));
}

#[test]
fn a_new_key_replaces_the_minimum_and_inherits_it_as_error() {
    let t = TopK::<2>::new();
    t.add(1, 5);
    assert_eq!(t.min_count(), 0, "a counter is free");
    t.add(2, 3);
    t.add(3, 1);
    assert_eq!(top(&t), [(1, 5, 0), (3, 4, 3)]);
    assert_eq!(Entry { key: 3, count: 4, error: 3 }.lower_bound(), 1);
    assert_eq!((t.total(), t.min_count()), (9, 4));
}

#[test]
fn a_zero_weight_never_evicts() {
    let t = TopK::<2>::new();
    t.add(1, 0);
    assert_eq!(top(&t), [(1, 0, 0)], "a free counter takes it");
    t.add(2, 4);
    t.add(3, 0);
    t.add(1, 0);
    assert_eq!(top(&t), [(2, 4, 0), (1, 0, 0)]);
}

#[test]
fn payloads_restart_when_their_counter_changes_key() {
    let t = SpaceSaving::<Hits, 2>::new();
    let hit = |p: &Hits| {
        p.0.fetch_add(1, Relaxed);
    };
    for key in [1, 1, 1, 2, 3, 3] {
        t.add_with(key, 1, hit);
    }
    let mut out = [(0, 0, 0); 4];
    let n = t.top_with(&mut out, |e, _| e.count, |e, p| (e.key, e.lower_bound(), p.0.load(Relaxed)));
    // Key 3 replaced key 2: its payload saw its own two events only.
    assert_eq!(&out[..n], [(1, 3, 3), (3, 2, 2)]);
    // A zero weight that finds no free counter does not reach any payload.
    t.add_with(4, 0, |_| panic!("key 4 has no counter"));
}

#[test]
fn top_with_ranks_by_any_score_and_fills_at_most_out() {
    let t = SpaceSaving::<Hits, 4>::new();
    let hit = |p: &Hits| {
        p.0.fetch_add(1, Relaxed);
    };
    for (key, weight) in [(1, 100), (2, 1), (2, 1), (2, 1), (3, 10), (3, 10)] {
        t.add_with(key, weight, hit);
    }
    let mut out = [0; 2];
    assert_eq!(t.top_with(&mut out, |_, p| p.0.load(Relaxed), |e, _| e.key), 2);
    assert_eq!(out, [2, 3], "by events, not by weight");
    let mut all = [0; 8];
    assert_eq!(t.top_with(&mut all, |e, _| e.count, |e, _| e.key), 3);
    assert_eq!(all[..3], [1, 3, 2]);
}

#[test]
fn counts_saturate_instead_of_wrapping() {
    let t = TopK::<1>::new();
    t.add(1, u64::MAX);
    t.add(1, 5);
    t.add(2, 7);
    assert_eq!(top(&t), [(2, u64::MAX, u64::MAX)]);
    assert_eq!(t.total(), u64::MAX);
}

/// A churning stream (far more keys than counters, round robin) next to two keys with a
/// quarter of the weight each, above N / K: they stay on top, and every count is within
/// the bound.
#[test]
fn the_error_bound_holds_under_churn() {
    const K: usize = 8;
    let t = TopK::<K>::new();
    let mut exact: HashMap<u64, u64> = HashMap::new();
    for i in 0..10_000u64 {
        let key = match i % 4 {
            0 => 1_000,
            1 => 2_000,
            _ => i % 97,
        };
        t.add(key, 1);
        *exact.entry(key).or_default() += 1;
    }
    let n = t.total();
    assert_eq!(n, 10_000);
    let reported = top(&t);
    assert_eq!(reported.iter().map(|&(_, c, _)| c).sum::<u64>(), n);
    assert_eq!(reported[0].0, 1_000);
    assert_eq!(reported[1].0, 2_000);
    for (key, count, error) in reported {
        let exact = exact[&key];
        assert!(count >= exact && (count - exact) * K as u64 <= n, "{key}: {count} vs {exact}");
        assert!(count - error <= exact);
    }
}

#[test]
fn concurrent_adds_lose_nothing() {
    static FEW: TopK<8> = TopK::new();
    static MANY: TopK<8> = TopK::new();
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 5_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..ROUNDS {
                    FEW.add((t + i) % 8, 1 + i % 3);
                    MANY.add(t * 1_000 + i % 40, 1);
                }
            });
        }
    });
    // Eight keys fit: each count is exact.
    let mut expected = [0u64; 8];
    for t in 0..THREADS {
        for i in 0..ROUNDS {
            expected[((t + i) % 8) as usize] += 1 + i % 3;
        }
    }
    let mut few = top(&FEW);
    few.sort_unstable();
    let exact: Vec<(u64, u64, u64)> = (0..8).map(|key| (key, expected[key as usize], 0)).collect();
    assert_eq!(few, exact);
    assert_eq!(FEW.total(), expected.iter().sum::<u64>());
    // 320 keys churn through 8 counters: the counts still add up to every event.
    let many_total: u64 = top(&MANY).iter().map(|&(_, c, _)| c).sum();
    assert_eq!((many_total, MANY.total()), (THREADS * ROUNDS, THREADS * ROUNDS));
}

#[test]
fn hex_is_sixteen_lowercase_digits() {
    assert_eq!(&hex16(0), b"0000000000000000");
    assert_eq!(&hex16(0xDEAD_BEEF), b"00000000deadbeef");
    assert_eq!(&hex16(u64::MAX), b"ffffffffffffffff");
}

fn render<const F: usize>(registry: &Registry<F>) -> String {
    let mut renderer = registry.renderer(Format::Prometheus);
    let mut buf = [0u8; 256];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn export_renders_at_most_k_ranked_series() {
    static KEYS: TopK<3> = TopK::new();
    static EXPORT: TopKExport<3> = TopKExport::new(&KEYS, "top_clients", "Busiest clients.");
    static REGISTRY: Registry<2> = Registry::new();
    EXPORT.register(&REGISTRY).unwrap();
    KEYS.add(0xAB, 2);
    assert!(!render(&REGISTRY).contains("top_clients{"), "no series before the first update");
    EXPORT.update();
    assert!(render(&REGISTRY).contains("top_clients{rank=\"1\",key=\"00000000000000ab\"} 2\n"));
    for key in 1..=10 {
        KEYS.add(key, key);
    }
    EXPORT.update();
    let text = render(&REGISTRY);
    let series: Vec<&str> = text.lines().filter(|l| l.starts_with("top_clients{")).collect();
    // Each new key took the smallest counter; the counts add up to the total, 2 + 55.
    assert_eq!(
        series,
        [
            "top_clients{rank=\"1\",key=\"000000000000000a\"} 23",
            "top_clients{rank=\"2\",key=\"0000000000000009\"} 19",
            "top_clients{rank=\"3\",key=\"0000000000000008\"} 15",
        ],
        "{text}"
    );
    assert_eq!(EXPORT.series_in_use(), 3);
}

#[test]
fn export_names_are_validated() {
    static KEYS: TopK<1> = TopK::new();
    static BAD: TopKExport<1> = TopKExport::new(&KEYS, "top clients", "");
    static RESERVED: TopKExport<1> = TopKExport::new(&KEYS, "top_total", "");
    let registry = Registry::<2>::new();
    assert_eq!(BAD.register(&registry), Err(RegisterError::InvalidMetricName("top clients")));
    assert_eq!(RESERVED.register(&registry), Err(RegisterError::ReservedMetricName("top_total")));
}

/// Exact weights of a stream, for the property test.
fn exact_weights(stream: &[(u64, u64)]) -> HashMap<u64, u64> {
    let mut exact = HashMap::new();
    for &(key, weight) in stream {
        *exact.entry(key).or_default() += weight;
    }
    exact
}

proptest! {
    /// Against exact weights: every count over-estimates by at most N / K, every lower
    /// bound holds, every key heavier than N / K is reported, the counts add up to N.
    #[test]
    fn space_saving_bounds_hold(stream in proptest::collection::vec((0u64..40, 0u64..50), 0..400)) {
        const K: usize = 8;
        let t = TopK::<K>::new();
        for &(key, weight) in &stream {
            t.add(key, weight);
        }
        let exact = exact_weights(&stream);
        let n: u64 = stream.iter().map(|&(_, w)| w).sum();
        let reported = top(&t);
        prop_assert_eq!(t.total(), n);
        prop_assert_eq!(reported.iter().map(|&(_, c, _)| c).sum::<u64>(), n);
        prop_assert!(t.min_count() * K as u64 <= n);
        for &(key, count, error) in &reported {
            let x = exact[&key];
            prop_assert!(x <= count && (count - x) * K as u64 <= n, "key {}: count {} exact {} N {}", key, count, x, n);
            prop_assert!(count - error <= x);
            prop_assert!(error <= t.min_count());
        }
        for (&key, &x) in &exact {
            let present = reported.iter().any(|&(k, ..)| k == key);
            prop_assert!(present || x <= t.min_count(), "key {} absent with exact {}", key, x);
            if x * K as u64 > n {
                prop_assert!(present, "key {} with exact {} > N / K = {} / {} is missing", key, x, n, K);
            }
        }
    }
}

#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    // 24 bytes per counter, plus the length, the total and the table's borrow flag.
    assert_eq!(TopK::<64>::FOOTPRINT, 24 * 64 + 24);
    // 16 bytes per rank, plus the length, the source, the name and the help.
    assert_eq!(TopKExport::<64>::FOOTPRINT, 16 * 64 + 48);
}
