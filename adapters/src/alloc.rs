//! A counting global allocator: heap bytes in use, their peak, allocations and frees.
//!
//! Wrap the allocator a program uses to get a heap signal that `/proc` cannot give: RSS
//! counts pages the allocator keeps cached after a free, heap-in-use counts what the
//! program holds.
//!
//! ```
//! use plimsoll::alloc::Counting;
//! use std::alloc::System;
//!
//! #[global_allocator]
//! static HEAP: Counting<System> = Counting::new(System);
//!
//! let before = HEAP.stats();
//! let v = vec![0u8; 1 << 20];
//! assert!(HEAP.stats().in_use_bytes >= before.in_use_bytes + v.len() as u64);
//! ```
//!
//! # Cost
//!
//! Each allocation and each free adds two relaxed atomic additions, with no lock and no
//! allocation of its own. The counters are split into [`SHARDS`] cache-line-aligned
//! shards and each thread adds to its own (threads are dealt shards in turn when they
//! first allocate), so threads that allocate at once do not fight over one cache line;
//! [`Counting::stats`] adds the shards up. `cargo bench -p plimsoll-benches --bench
//! allocator` measures the cost against plain `System`, alone and with a second thread
//! allocating through the same instance.
//!
//! The shard index lives in a `const`-initialised thread-local without a destructor,
//! which on targets with native thread-locals (Linux, macOS, Windows) neither allocates
//! nor registers anything, so the allocator never re-enters itself. While a thread is being
//! torn down its thread-locals are gone and it counts into shard 0.
//!
//! The counts are of sizes requested (`Layout::size`), not of what the wrapped allocator
//! rounds them up to, so `in_use_bytes` is a lower bound of the heap's footprint.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Shards of the counters: enough that the threads of a small service rarely share one.
pub const SHARDS: usize = 16;

/// One shard's counters, on cache lines of their own (128 bytes: x86 prefetches lines in
/// pairs).
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    /// Bytes allocated minus bytes freed through this shard: negative when a thread frees
    /// what another allocated; the sum over shards is what is in use.
    in_use: AtomicI64,
    allocations: AtomicU64,
    frees: AtomicU64,
}

thread_local! {
    /// This thread's shard, `usize::MAX` until its first allocation.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
/// The next shard to deal.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD
        .try_with(|shard| match shard.get() {
            usize::MAX => {
                let index = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
                shard.set(index);
                index
            }
            index => index,
        })
        .unwrap_or(0)
}

/// Counts what passes through the allocator `A` (by default [`System`]).
#[derive(Debug)]
pub struct Counting<A = System> {
    inner: A,
    shards: [Shard; SHARDS],
    /// The largest in-use total [`stats`](Self::stats) has seen.
    peak: AtomicU64,
}

/// What a [`Counting`] allocator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes allocated and not yet freed.
    pub in_use_bytes: u64,
    /// The largest `in_use_bytes` any call to [`Counting::stats`] has returned: a peak at
    /// the resolution of the sampling, since tracking every allocation's peak would make
    /// all threads update one shared counter.
    pub peak_bytes: u64,
    /// Allocations (reallocations included).
    pub allocations: u64,
    /// Frees.
    pub frees: u64,
}

impl<A> Counting<A> {
    /// Counts from zero what `inner` allocates from now on.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            shards: [const { Shard { in_use: AtomicI64::new(0), allocations: AtomicU64::new(0), frees: AtomicU64::new(0) } };
                SHARDS],
            peak: AtomicU64::new(0),
        }
    }

    /// The counts now, summed over the shards. Each shard is read on its own, so under
    /// concurrent allocation the sum mixes slightly different instants.
    pub fn stats(&self) -> HeapStats {
        let mut in_use: i64 = 0;
        let (mut allocations, mut frees) = (0u64, 0u64);
        for shard in &self.shards {
            in_use = in_use.wrapping_add(shard.in_use.load(Relaxed));
            allocations = allocations.wrapping_add(shard.allocations.load(Relaxed));
            frees = frees.wrapping_add(shard.frees.load(Relaxed));
        }
        // Reads racing with a free on one shard and its allocation on another can sum
        // below zero for an instant.
        let in_use_bytes = u64::try_from(in_use).unwrap_or(0);
        let peak_bytes = self.peak.fetch_max(in_use_bytes, Relaxed).max(in_use_bytes);
        HeapStats { in_use_bytes, peak_bytes, allocations, frees }
    }

    fn allocated(&self, bytes: usize) {
        let shard = &self.shards[shard_index()];
        shard.allocations.fetch_add(1, Relaxed);
        shard.in_use.fetch_add(bytes as i64, Relaxed);
    }

    fn freed(&self, bytes: usize) {
        let shard = &self.shards[shard_index()];
        shard.frees.fetch_add(1, Relaxed);
        shard.in_use.fetch_sub(bytes as i64, Relaxed);
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and
// returns its result unchanged, so `inner`'s `GlobalAlloc` guarantees carry over. The
// counting touches only atomics and a const-initialised thread-local, which neither
// allocate nor unwind (see the module docs).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl's comment).
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.allocated(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `inner` through this wrapper.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        // On failure the old block is untouched and still counted.
        if !new.is_null() {
            let shard = &self.shards[shard_index()];
            shard.allocations.fetch_add(1, Relaxed);
            shard.in_use.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `inner` through this wrapper.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.freed(layout.size());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives an instance directly (the test binary keeps its own global allocator).
    #[test]
    fn counts_follow_alloc_realloc_and_free() {
        let heap = Counting::new(System);
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: each pointer is used with the layout it was allocated with and freed once.
        unsafe {
            let a = heap.alloc(layout);
            let b = heap.alloc_zeroed(layout);
            assert!(!a.is_null() && !b.is_null());
            assert_eq!(heap.stats(), HeapStats { in_use_bytes: 200, peak_bytes: 200, allocations: 2, frees: 0 });
            let a = heap.realloc(a, layout, 300);
            assert!(!a.is_null());
            assert_eq!(heap.stats().in_use_bytes, 400);
            let a = heap.realloc(a, Layout::from_size_align(300, 8).unwrap(), 50);
            assert_eq!(heap.stats().in_use_bytes, 150);
            heap.dealloc(a, Layout::from_size_align(50, 8).unwrap());
            heap.dealloc(b, layout);
        }
        assert_eq!(heap.stats(), HeapStats { in_use_bytes: 0, peak_bytes: 400, allocations: 4, frees: 2 });
    }

    #[test]
    fn threads_lose_no_counts() {
        static HEAP: Counting<System> = Counting::new(System);
        let layout = Layout::from_size_align(64, 8).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        // SAFETY: allocated and freed with the same layout.
                        unsafe { HEAP.dealloc(HEAP.alloc(layout), layout) };
                    }
                });
            }
        });
        let stats = HEAP.stats();
        assert_eq!((stats.allocations, stats.frees, stats.in_use_bytes), (40_000, 40_000, 0));
    }

    #[test]
    fn memory_freed_on_another_thread_sums_to_zero() {
        static HEAP: Counting<System> = Counting::new(System);
        let layout = Layout::from_size_align(256, 8).unwrap();
        // SAFETY: allocated with `layout`, freed once with it.
        let blocks: Vec<usize> = (0..100).map(|_| unsafe { HEAP.alloc(layout) } as usize).collect();
        assert_eq!(HEAP.stats().in_use_bytes, 25_600);
        std::thread::spawn(move || {
            for block in blocks {
                // SAFETY: as above.
                unsafe { HEAP.dealloc(block as *mut u8, layout) };
            }
        })
        .join()
        .unwrap();
        let stats = HEAP.stats();
        assert_eq!((stats.in_use_bytes, stats.peak_bytes, stats.allocations, stats.frees), (0, 25_600, 100, 100));
    }
}
