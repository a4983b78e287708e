//! Time as the core sees it: milliseconds on a monotonic clock, passed in by the caller.
//!
//! The core never reads a clock by itself. Every time-dependent operation takes `now_ms`,
//! milliseconds since an arbitrary origin that the caller keeps fixed (process start,
//! boot). A [`Clock`] supplies it: [`ManualClock`] for tests and simulations,
//! `EmbassyClock` (feature `embassy-time`) on embedded targets, and the std adapter's
//! clock on servers.
//!
//! A clock that goes backwards is tolerated, never trusted: see the window docs for what
//! happens to such events.

use crate::atomic::{AtomicU64, Ordering::Relaxed};

/// A source of monotonic milliseconds.
pub trait Clock {
    /// Milliseconds since the clock's fixed origin.
    fn now_ms(&self) -> u64;
}

/// A clock that moves only when told to. `const`-constructible, shareable across threads.
///
/// ```
/// use plimsoll_core::{Clock, ManualClock};
/// static CLOCK: ManualClock = ManualClock::new(0);
/// CLOCK.advance(1_500);
/// assert_eq!(CLOCK.now_ms(), 1_500);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub const fn new(now_ms: u64) -> Self {
        Self(AtomicU64::new(now_ms))
    }

    /// Sets the reading (it may go backwards, to test how callers cope).
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Relaxed);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// `embassy_time::Instant::now()` in milliseconds since boot.
#[cfg(feature = "embassy-time")]
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        embassy_time::Instant::now().as_millis()
    }
}
