use super::*;
use crate::{Format, RegisterError, Registry};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::string::String;
use std::vec::Vec;

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

/// 10 per second: `t` = 100 ms, burst 10.
const TEN_PER_SECOND: Quota = Quota::per_second(nz(10));

/// GCRA with unlimited memory, written from governor's `Gcra::test_and_update`: the
/// reference every decision is compared with.
struct Reference {
    quota: Quota,
    tats: HashMap<u64, u64>,
    newest_ms: u64,
}

impl Reference {
    fn new(quota: Quota) -> Self {
        Self { quota, tats: HashMap::new(), newest_ms: 0 }
    }

    fn check(&mut self, key: u64, now_ms: u64) -> Decision {
        self.newest_ms = self.newest_ms.max(now_ms);
        let now = self.newest_ms * 1_000;
        let t = self.quota.interval_us();
        let tau = t * u64::from(self.quota.burst().get() - 1);
        let tat = *self.tats.get(&key).unwrap_or(&now);
        let earliest = tat.saturating_sub(tau);
        if now < earliest {
            return Decision::Limited { retry_after_ms: (earliest - now).div_ceil(1_000) };
        }
        let next = tat.max(now) + t;
        self.tats.insert(key, next);
        Decision::Allowed { remaining: ((now + t + tau - next).min(tau) / t) as u32 }
    }
}

#[test]
fn quota_constructors() {
    assert_eq!(Quota::per_second(nz(10)).interval_us(), 100_000);
    assert_eq!(Quota::per_second(nz(10)).burst(), nz(10));
    assert_eq!(Quota::per_second(nz(3)).interval_us(), 333_333);
    assert_eq!(Quota::per_minute(nz(60)).interval_us(), 1_000_000);
    assert_eq!(Quota::per_hour(nz(2)).interval_us(), 1_800_000_000);
    assert_eq!(Quota::per_period(nz(20), NonZeroU64::new(60_000).unwrap()).interval_us(), 3_000_000);
    let daily = Quota::with_period(NonZeroU64::new(86_400_000).unwrap());
    assert_eq!((daily.interval_us(), daily.burst()), (86_400_000_000, nz(1)));
    assert_eq!(daily.allow_burst(nz(5)).burst(), nz(5));
    // Faster than one per microsecond: one per microsecond.
    assert_eq!(Quota::per_second(nz(u32::MAX)).interval_us(), 1);
    assert_eq!(Quota::per_second(nz(10)), Quota::per_minute(nz(600)).allow_burst(nz(10)));
}

#[test]
fn burst_then_one_per_interval() {
    static L: RateLimiter<16> = RateLimiter::new("l", TEN_PER_SECOND);
    for remaining in (0..10).rev() {
        assert_eq!(L.check(1, 5_000), Decision::Allowed { remaining });
    }
    assert_eq!(L.check(1, 5_000), Decision::Limited { retry_after_ms: 100 });
    assert_eq!(L.check(1, 5_099), Decision::Limited { retry_after_ms: 1 });
    assert_eq!(L.check(1, 5_100), Decision::Allowed { remaining: 0 });
    assert_eq!(L.check(1, 5_100), Decision::Limited { retry_after_ms: 100 });
    // Another key is untouched; silence earns the whole burst back.
    assert_eq!(L.check(2, 5_100), Decision::Allowed { remaining: 9 });
    assert_eq!(L.check(1, 6_200), Decision::Allowed { remaining: 9 });
    let stats = L.stats();
    assert_eq!((stats.allowed, stats.limited, stats.keys, stats.capacity), (13, 3, 2, 16));
}

#[test]
fn retry_after_rounds_up_to_whole_milliseconds() {
    static L: RateLimiter<4> = RateLimiter::new("l", Quota::per_second(nz(3)).allow_burst(nz(1)));
    assert!(L.check(1, 0).is_allowed());
    // Next conforming at 333.333 ms.
    assert_eq!(L.check(1, 0), Decision::Limited { retry_after_ms: 334 });
    assert_eq!(L.check(1, 333), Decision::Limited { retry_after_ms: 1 });
    assert!(L.check(1, 334).is_allowed());
}

#[test]
fn check_n_is_all_or_nothing() {
    static L: RateLimiter<4> = RateLimiter::new("l", TEN_PER_SECOND);
    assert_eq!(L.check_n(1, nz(11), 0), Err(InsufficientCapacity { burst: 10 }));
    assert_eq!(L.check_n(1, nz(7), 0), Ok(Decision::Allowed { remaining: 3 }));
    // 4 would need 100 ms more: nothing is taken.
    assert_eq!(L.check_n(1, nz(4), 0), Ok(Decision::Limited { retry_after_ms: 100 }));
    assert_eq!(L.check_n(1, nz(3), 0), Ok(Decision::Allowed { remaining: 0 }));
    assert_eq!(L.check_n(1, nz(4), 250), Ok(Decision::Limited { retry_after_ms: 150 }));
    assert_eq!(L.check_n(1, nz(2), 250), Ok(Decision::Allowed { remaining: 0 }));
    let stats = L.stats();
    assert_eq!((stats.allowed, stats.limited), (3, 2), "the refused request is not a decision");
}

#[test]
fn clock_going_backwards_grants_nothing() {
    static L: RateLimiter<4> = RateLimiter::new("l", TEN_PER_SECOND);
    for _ in 0..10 {
        assert!(L.check(1, 10_000).is_allowed());
    }
    // Nine seconds back is "no time passed": still limited, for the same wait.
    assert_eq!(L.check(1, 1_000), Decision::Limited { retry_after_ms: 100 });
    assert_eq!(L.check(1, 0), Decision::Limited { retry_after_ms: 100 });
    // A key first seen with a stale time is judged at the newest time.
    assert_eq!(L.check(2, 5), Decision::Allowed { remaining: 9 });
    assert_eq!(L.check(1, 10_100), Decision::Allowed { remaining: 0 });
}

#[test]
fn extreme_times_and_quotas_saturate_without_panicking() {
    static L: RateLimiter<2> = RateLimiter::new("l", TEN_PER_SECOND);
    assert!(L.check(1, u64::MAX).is_allowed());
    for _ in 0..20 {
        L.check(1, u64::MAX);
    }
    assert!(!L.check(1, u64::MAX).is_allowed());
    assert!(!L.check(1, 0).is_allowed());

    // A burst of 4 billion one-day intervals saturates `tau`: effectively unlimited.
    const HUGE: Quota = Quota::with_period(NonZeroU64::MAX).allow_burst(nz(u32::MAX));
    static H: RateLimiter<2> = RateLimiter::new("h", HUGE);
    for now in [0, 1, u64::MAX] {
        for _ in 0..3 {
            assert!(H.check(7, now).is_allowed());
        }
    }
    assert_eq!(H.check_n(7, nz(u32::MAX), u64::MAX).map(|d| d.is_allowed()), Ok(true));
}

proptest! {
    /// With a table big enough that nothing is evicted, every decision (allowed with the
    /// same remaining count, or limited with the same retry time) is the reference's.
    #[test]
    fn decisions_match_unlimited_gcra(
        burst in 1u32..6,
        per_second in 1u32..50,
        stream in proptest::collection::vec((0u64..24, 0u64..120, 0u8..20), 1..300),
    ) {
        let quota = Quota::per_second(nz(per_second)).allow_burst(nz(burst));
        let limiter: RateLimiter<1024> = RateLimiter::new("p", quota);
        let mut reference = Reference::new(quota);
        let mut now = 1_000_000u64;
        for (key, step, jump) in stream {
            // Mostly forward, sometimes a burst at one instant, sometimes backwards.
            now = if jump == 0 { now.saturating_sub(step * 10) } else { now + step };
            prop_assert_eq!(limiter.check(key, now), reference.check(key, now));
        }
        let stats = limiter.stats();
        prop_assert_eq!(stats.evicted_expired + stats.evicted_in_debt, 0);
    }
}

/// `count` keys other than `key` with the same home slot and another shadow cell.
fn neighbours<const K: usize>(key: u64, count: usize) -> Vec<u64> {
    let of = |k| Place::of(k, 0, K);
    (1_000u64..).filter(|&k| of(k).home == of(key).home && of(k).cell != of(key).cell).take(count).collect()
}

/// The attack the shadow is for: a key bursting as fast as it can, pushed out of the
/// table between bursts by other keys of the same slots. Forgetting evicted state
/// would give it a fresh burst of 10 on each of its 600 returns; it gets exactly what an
/// unlimited table gives it, within the GCRA bound, and the other keys are not limited.
#[test]
fn evicted_key_never_escapes_its_limit() {
    static L: RateLimiter<64> = RateLimiter::new("l", TEN_PER_SECOND);
    const ATTACKER: u64 = 7;
    const ROUNDS: u64 = 600;
    let others = neighbours::<64>(ATTACKER, 64);
    let mut reference = Reference::new(TEN_PER_SECOND);
    let (mut got, mut exact) = (0u64, 0u64);
    let mut others = others.iter().copied().cycle();
    for round in 0..ROUNDS {
        let start = round * 50;
        for _ in 0..20 {
            got += u64::from(L.check(ATTACKER, start).is_allowed());
            exact += u64::from(reference.check(ATTACKER, start).is_allowed());
        }
        // Eight of 64 others, each within its limit (one request per 400 ms), take the slots.
        for i in 1..=8 {
            let other = others.next().unwrap_or_default();
            assert!(L.check(other, start + i).is_allowed(), "round {round}: an innocent key was limited");
        }
    }
    let span_us = (ROUNDS - 1) * 50 * 1_000;
    assert_eq!(got, exact);
    assert!(got <= 10 + span_us / TEN_PER_SECOND.interval_us(), "{got} over the bound");
    assert!(L.stats().evicted_in_debt >= ROUNDS, "the attacker was evicted each round: {:?}", L.stats());
}

/// The documented price of the shadow: a key entering the table may inherit debt it did
/// not make, but only from a merged cell (or a 1-in-65,535 tag match), never from a cell
/// holding one other key's debt.
#[test]
fn only_merged_shadow_cells_charge_other_keys() {
    static L: RateLimiter<1> = RateLimiter::new("l", TEN_PER_SECOND);
    let (x, y, w) = (1, 2, 3);
    for _ in 0..10 {
        L.check(x, 0);
    }
    // `y` evicts `x`: the one cell holds `x`'s debt, tagged `x`; `y` starts afresh.
    assert_eq!(L.check(y, 1), Decision::Allowed { remaining: 9 });
    // `x` comes back (evicting `y`, in debt too: the cell merges) to its own debt.
    assert_eq!(L.check(x, 2), Decision::Limited { retry_after_ms: 98 });
    // `w` was never seen, but enters through the merged cell: limited for `x`'s debt.
    assert_eq!(L.check(w, 3), Decision::Limited { retry_after_ms: 97 });
    // The debt is paid off as it would have been.
    assert_eq!(L.check(w, 100), Decision::Allowed { remaining: 0 });
    assert_eq!(L.stats().evicted_in_debt, 3);
}

#[test]
fn eviction_takes_expired_keys_first_then_least_recently_seen() {
    static L: RateLimiter<2> = RateLimiter::new("l", TEN_PER_SECOND);
    // `a` is in debt until 1,000 ms; `b`, seen later, is expired by then.
    for _ in 0..10 {
        L.check(1, 0);
    }
    L.check(2, 500);
    L.check(3, 900);
    assert_eq!(L.stats().evicted_expired, 1, "expired `b` goes although `a` was seen earlier");
    // Both left are in debt: the least recently seen (`a`, at 0) goes.
    L.check(4, 950);
    assert_eq!(L.stats().evicted_in_debt, 1);
    assert_eq!(L.check(3, 950), Decision::Allowed { remaining: 8 }, "`c` kept its state");
    assert_eq!(L.stats().keys, 2);
}

/// Four threads hammer the same keys at one instant: each key is allowed exactly its
/// burst, and every check is counted once.
#[test]
fn concurrent_checks_lose_no_update() {
    static L: RateLimiter<256> = RateLimiter::new("l", Quota::per_minute(nz(25)));
    const THREADS: u64 = 4;
    const CHECKS: u64 = 5_000;
    const KEYS: u64 = 16;
    let allowed: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                s.spawn(move || {
                    let mut allowed = std::vec![0u64; KEYS as usize];
                    for i in 0..CHECKS {
                        let key = (i + thread) % KEYS;
                        allowed[key as usize] += u64::from(L.check(key, 42_000).is_allowed());
                    }
                    allowed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for key in 0..KEYS as usize {
        assert_eq!(allowed.iter().map(|a| a[key]).sum::<u64>(), 25, "key {key}");
    }
    let stats = L.stats();
    assert_eq!((stats.allowed, stats.limited), (25 * KEYS, THREADS * CHECKS - 25 * KEYS));
    assert_eq!(stats.keys, KEYS);
}

#[test]
fn key_of_is_injective_on_short_inputs_of_one_length() {
    let keys: HashSet<u64> = (0..=u16::MAX).map(|v| key_of(&v.to_le_bytes())).collect();
    assert_eq!(keys.len(), 1 << 16);
    let addresses: HashSet<u64> =
        (0..100_000u32).map(|v| key_of(&v.wrapping_mul(2_654_435_761).to_be_bytes())).collect();
    assert_eq!(addresses.len(), 100_000);
    assert_ne!(key_of(b""), key_of(b"\0"));
    assert_ne!(key_of(b"a"), key_of(b"a\0"));
    assert_ne!(key_of(b"user-000000001"), key_of(b"user-000000002"));
    const AT_COMPILE_TIME: u64 = key_of(b"203.0.113.9");
    assert_eq!(AT_COMPILE_TIME, key_of(b"203.0.113.9"));
}

#[test]
fn seeds_move_keys() {
    let moved = (0..64u64).filter(|&k| Place::of(k, 0, 1024).home != Place::of(k, 99, 1024).home).count();
    assert!(moved > 56, "{moved}");
}

fn render(registry: &'static Registry<8>) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let mut renderer = registry.renderer(Format::Prometheus);
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        text.push_str(core::str::from_utf8(&buf[..n]).unwrap());
    }
    text
}

#[test]
fn export_reads_each_limiters_counters() {
    static API: RateLimiter<8> = RateLimiter::new("api", Quota::per_second(nz(2)));
    static LOGIN: RateLimiter<4> = RateLimiter::new("login", Quota::per_minute(nz(5)));
    static EXPORT: RateLimitExport<2> = RateLimitExport::new();
    static REGISTRY: Registry<8> = Registry::new();
    EXPORT.add(&API).unwrap();
    EXPORT.add(&LOGIN).unwrap();
    EXPORT.register(&REGISTRY).unwrap();
    for _ in 0..3 {
        API.check(1, 0);
    }
    LOGIN.check(9, 0);
    let text = render(&REGISTRY);
    for line in [
        "# TYPE plimsoll_ratelimit_decisions_total counter",
        "plimsoll_ratelimit_decisions_total{limiter=\"api\",decision=\"allowed\"} 2",
        "plimsoll_ratelimit_decisions_total{limiter=\"api\",decision=\"limited\"} 1",
        "plimsoll_ratelimit_decisions_total{limiter=\"login\",decision=\"allowed\"} 1",
        "plimsoll_ratelimit_evictions_total{limiter=\"login\",reason=\"in_debt\"} 0",
        "plimsoll_ratelimit_keys{limiter=\"api\"} 1",
        "plimsoll_ratelimit_keys_capacity{limiter=\"api\"} 8",
        "plimsoll_ratelimit_keys_capacity{limiter=\"login\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(REGISTRY.max_line_len() >= text.lines().map(str::len).max().unwrap_or(0));
}

#[test]
fn export_refuses_bad_names_and_overflow() {
    static A: RateLimiter<1> = RateLimiter::new("a", TEN_PER_SECOND);
    static A_AGAIN: RateLimiter<2> = RateLimiter::new("a", TEN_PER_SECOND);
    static EMPTY: RateLimiter<1> = RateLimiter::new("", TEN_PER_SECOND);
    static LONG: RateLimiter<1> =
        RateLimiter::new("an-overly-long-limiter-name-that-goes-past-the-sixty-four-byte-cap", TEN_PER_SECOND);
    static B: RateLimiter<1> = RateLimiter::new("b", TEN_PER_SECOND);
    static EXPORT: RateLimitExport<1> = RateLimitExport::new();
    assert_eq!(EXPORT.add(&EMPTY), Err(ExportError::InvalidName("")));
    assert!(matches!(EXPORT.add(&LONG), Err(ExportError::InvalidName(_))));
    assert_eq!(EXPORT.add(&A), Ok(()));
    assert_eq!(EXPORT.add(&A_AGAIN), Err(ExportError::DuplicateName("a")));
    assert_eq!(EXPORT.add(&B), Err(ExportError::ExportFull("b")));
    assert_eq!(EXPORT.len(), 1);

    static SMALL: Registry<3> = Registry::new();
    assert_eq!(EXPORT.register(&SMALL), Err(RegisterError::RegistryFull("plimsoll_ratelimit_decisions")));
    assert!(SMALL.is_empty());
}

#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(RateLimiter::<1024>::FOOTPRINT, 34 * 1024 + 88);
    assert_eq!(RateLimitExport::<8>::FOOTPRINT, 352 + 64 * 8);
    assert_eq!(RateLimitExport::<1>::FOOTPRINT, 352 + 64);
}
