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
//! Each allocation, reallocation and free adds one or two relaxed atomic read-modify-write
//! operations on shared counters (plus a relaxed load for the peak), with no lock and no
//! allocation of its own. Under many threads allocating at once the shared cache lines
//! are contended. `cargo bench -p plimsoll-benches --bench allocator` measures the cost
//! against plain `System`, alone and with a second thread allocating.
//!
//! The counts are of sizes requested (`Layout::size`), not of what the wrapped allocator
//! rounds them up to, so `in_use_bytes` is a lower bound of the heap's footprint.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts what passes through the allocator `A` (by default [`System`]).
#[derive(Debug)]
pub struct Counting<A = System> {
    inner: A,
    in_use: AtomicU64,
    peak: AtomicU64,
    allocations: AtomicU64,
    frees: AtomicU64,
}

/// What a [`Counting`] allocator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes allocated and not yet freed.
    pub in_use_bytes: u64,
    /// The most `in_use_bytes` has been.
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
            in_use: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
            frees: AtomicU64::new(0),
        }
    }

    /// The counts now. Each is read on its own, so under concurrent allocation they may be
    /// from slightly different instants.
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            in_use_bytes: self.in_use.load(Relaxed),
            peak_bytes: self.peak.load(Relaxed),
            allocations: self.allocations.load(Relaxed),
            frees: self.frees.load(Relaxed),
        }
    }

    fn grew(&self, bytes: u64) {
        let in_use = self.in_use.fetch_add(bytes, Relaxed).wrapping_add(bytes);
        // A load first: the peak changes rarely, so most calls skip the read-modify-write.
        if in_use > self.peak.load(Relaxed) {
            self.peak.fetch_max(in_use, Relaxed);
        }
    }

    fn shrank(&self, bytes: u64) {
        self.in_use.fetch_sub(bytes, Relaxed);
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments unchanged and
// returns its result unchanged, so `inner`'s `GlobalAlloc` guarantees carry over. The
// counting touches only atomics, which neither allocate nor unwind.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl's comment).
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.allocations.fetch_add(1, Relaxed);
            self.grew(layout.size() as u64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.allocations.fetch_add(1, Relaxed);
            self.grew(layout.size() as u64);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `inner` through this wrapper.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        // On failure the old block is untouched and still counted.
        if !new.is_null() {
            self.allocations.fetch_add(1, Relaxed);
            let (old, new_size) = (layout.size() as u64, new_size as u64);
            if new_size >= old { self.grew(new_size - old) } else { self.shrank(old - new_size) }
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `inner` through this wrapper.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.frees.fetch_add(1, Relaxed);
        self.shrank(layout.size() as u64);
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
        assert!((64..=4 * 64).contains(&stats.peak_bytes), "peak {}", stats.peak_bytes);
    }
}
