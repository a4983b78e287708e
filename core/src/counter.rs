//! A monotonic 64-bit counter.

use crate::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonic `u64` counter: one relaxed `fetch_add` per update.
///
/// Relaxed ordering is enough: a counter orders nothing else, and readers only need to
/// see every increment eventually. It wraps at `u64::MAX` (2^64 increments), which no
/// realistic rate reaches.
///
/// ```
/// use plimsoll_core::Counter;
/// static REQUESTS: Counter = Counter::new();
/// REQUESTS.inc();
/// REQUESTS.inc_by(2);
/// assert_eq!(REQUESTS.get(), 3);
/// ```
#[derive(Debug)]
#[cfg_attr(not(loom), derive(Default))]
pub struct Counter(AtomicU64);

impl Counter {
    /// Size of a counter in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A counter at zero.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// A counter at zero (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Back to zero, for a window slot being reused (a counter is otherwise monotonic).
    pub(crate) fn reset_to_zero(&self) {
        self.0.store(0, Relaxed);
    }
}

impl crate::sealed::Sealed for Counter {}
