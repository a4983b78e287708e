//! The security, query and resilience monitors' hot paths, with peers where one exists:
//!
//! - `ratelimit_check`: one keyed rate-limit decision, keys cycling over 1,000 clients
//!   (every one allowed: 1,000 requests/s each), Plimsoll's `RateLimiter<4096>` against
//!   `governor`'s keyed limiter (its default DashMap store and clock);
//! - `topk_update`: one Space-Saving update of a `TopK<64>` from a skewed stream of keys;
//! - `breaker_permission`: a circuit breaker's permission check and the success report;
//! - `sql_fingerprint_200b`: the fingerprint (normalised text and hash) of a 200-byte query;
//!
//! and, before timing, the memory each limiter holds after 100,000 distinct keys: the heap
//! governor's store grew to (counted by a global allocator) against Plimsoll's fixed size.
//!
//! Run with `cargo bench -p plimsoll-benches --bench guards`.

use criterion::{Criterion, criterion_group, criterion_main};
use plimsoll::{BreakerConfig, CircuitBreaker, Decision, Quota, RateLimiter, TopK};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

/// Bytes allocated and not yet freed, by every thread.
static HEAP: AtomicI64 = AtomicI64::new(0);

struct CountingAlloc;

// SAFETY: forwards to `System` unchanged; counting touches one atomic.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const PER_KEY_PER_SECOND: NonZeroU32 = NonZeroU32::new(1_000).unwrap();
const CLIENTS: u64 = 1_000;

/// The heap a fresh governor keyed limiter holds after `keys` distinct keys, and the
/// bytes a `RateLimiter<4096>` holds whatever the keys.
fn memory_after_distinct_keys(keys: u64) {
    let before = HEAP.load(Relaxed);
    let governor = governor::RateLimiter::keyed(governor::Quota::per_second(PER_KEY_PER_SECOND));
    for key in 0..keys {
        assert!(governor.check_key(&key).is_ok());
    }
    let grown = HEAP.load(Relaxed) - before;
    println!(
        "after {keys} distinct keys: governor keyed store {} keys, {grown} bytes of heap; \
         plimsoll RateLimiter<4096> {} bytes, fixed (no heap)",
        governor.len(),
        RateLimiter::<4096>::FOOTPRINT
    );
}

fn ratelimit_check(c: &mut Criterion) {
    memory_after_distinct_keys(100_000);
    static PLIMSOLL: RateLimiter<4096> = RateLimiter::new("bench", Quota::per_second(PER_KEY_PER_SECOND));
    let governor = governor::RateLimiter::keyed(governor::Quota::per_second(PER_KEY_PER_SECOND));
    // One request per client per millisecond of the plimsoll clock: 1,000/s, all allowed.
    let (mut key, mut now_ms) = (0u64, 0u64);
    let mut next = move || {
        key += 1;
        if key == CLIENTS {
            key = 0;
            now_ms += 1;
        }
        (key, now_ms)
    };
    for _ in 0..10 * CLIENTS {
        let (key, now_ms) = next();
        assert!(matches!(PLIMSOLL.check(key, now_ms), Decision::Allowed { .. }));
    }
    assert!(governor.check_key(&1u64).is_ok());
    let mut group = c.benchmark_group("ratelimit_check");
    group.bench_function("plimsoll", |b| {
        b.iter(|| {
            let (key, now_ms) = next();
            black_box(PLIMSOLL.check(black_box(key), now_ms))
        })
    });
    let mut governor_key = 0u64;
    group.bench_function("governor_keyed", |b| {
        b.iter(|| {
            governor_key = (governor_key + 1) % CLIENTS;
            black_box(governor.check_key(black_box(&governor_key)).is_ok())
        })
    });
    group.finish();
}

fn topk_update(c: &mut Criterion) {
    static TOP: TopK<64> = TopK::new();
    // A skewed stream: key i with weight ~ 1/i, from a fixed-seed generator.
    let mut state: u64 = 0x5EED;
    let keys: Vec<u64> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            (1.0 / (unit + 1e-3)) as u64
        })
        .collect();
    for &key in &keys {
        TOP.add(key, 1);
    }
    assert_eq!(TOP.total(), keys.len() as u64);
    let mut at = 0;
    c.bench_function("topk_update/plimsoll_topk64", |b| {
        b.iter(|| {
            at = (at + 1) & 4095;
            TOP.add(black_box(keys[at]), 1);
        })
    });
}

fn breaker_permission(c: &mut Criterion) {
    static BREAKER: CircuitBreaker = CircuitBreaker::new("bench", BreakerConfig::DEFAULT);
    let mut now_ms = 0u64;
    assert!(BREAKER.try_acquire(now_ms).is_ok());
    BREAKER.on_success(5, now_ms);
    c.bench_function("breaker_permission/plimsoll_acquire_and_success", |b| {
        b.iter(|| {
            now_ms += 1;
            if BREAKER.try_acquire(black_box(now_ms)).is_ok() {
                BREAKER.on_success(black_box(5), now_ms);
            }
        })
    });
}

/// A 200-byte query as an ORM writes it: a join, string, number and IN-list literals.
const QUERY_200B: &str = "SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id \
                          WHERE o.status = 'shipped' AND o.created_at > '2026-11-01' AND c.country IN ('FR', 'DE', 'IT') \
                          ORDER BY 1 LIMIT 500";

fn sql_fingerprint(c: &mut Criterion) {
    assert_eq!(QUERY_200B.len(), 200);
    let expected = plimsoll::fingerprint(QUERY_200B);
    let whole = plimsoll::Fingerprint::<256>::of(QUERY_200B);
    assert!(whole.text().contains("c.country in (?) order by ? limit ?"), "{}", whole.text());
    assert_eq!(plimsoll::fingerprint(&QUERY_200B.replace("500", "10")).hash(), expected.hash());
    c.bench_function("sql_fingerprint_200b/plimsoll", |b| {
        b.iter(|| black_box(plimsoll::fingerprint(black_box(QUERY_200B))).hash())
    });
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ratelimit_check, topk_update, breaker_permission, sql_fingerprint
}
criterion_main!(benches);
