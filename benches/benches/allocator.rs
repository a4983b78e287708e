//! The cost of counting allocations: `plimsoll::alloc::Counting<System>` against plain
//! `System`, for one allocation and its free, in the same criterion group.
//!
//! - `alloc_free_64`: a 64-byte allocation and its free, on one thread;
//! - `alloc_free_64_contended`: the same while a second thread allocates and frees in a
//!   loop through the same instance (so the counters' cache lines are shared).
//!
//! Run with `cargo bench -p plimsoll-benches --bench allocator`.

use criterion::{Criterion, criterion_group, criterion_main};
use plimsoll::alloc::Counting;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => panic!("a valid layout"),
};

/// One allocation and its free through `heap`.
#[inline]
fn alloc_free(heap: &impl GlobalAlloc) {
    // SAFETY: the block is freed with the layout it was allocated with, once; a null
    // result (out of memory) is not freed.
    unsafe {
        let ptr = heap.alloc(black_box(LAYOUT));
        if !ptr.is_null() {
            heap.dealloc(black_box(ptr), LAYOUT);
        }
    }
}

static COUNTING: Counting<System> = Counting::new(System);

fn alloc_free_64(c: &mut Criterion) {
    alloc_free(&COUNTING);
    let stats = COUNTING.stats();
    assert!(stats.allocations >= 1 && stats.allocations == stats.frees && stats.in_use_bytes == 0);
    let mut group = c.benchmark_group("alloc_free_64");
    group.bench_function("system", |b| b.iter(|| alloc_free(&System)));
    group.bench_function("plimsoll_counting", |b| b.iter(|| alloc_free(&COUNTING)));
    group.finish();
}

fn alloc_free_64_contended(c: &mut Criterion) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Relaxed) {
                alloc_free(&System);
                alloc_free(&COUNTING);
            }
        });
        let mut group = c.benchmark_group("alloc_free_64_contended");
        group.bench_function("system", |b| b.iter(|| alloc_free(&System)));
        group.bench_function("plimsoll_counting", |b| b.iter(|| alloc_free(&COUNTING)));
        group.finish();
        stop.store(true, Relaxed);
    });
    let stats = COUNTING.stats();
    assert_eq!(stats.allocations, stats.frees, "every allocation freed and counted");
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = alloc_free_64, alloc_free_64_contended
}
criterion_main!(benches);
