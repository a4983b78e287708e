//! The std clock: wall-clock milliseconds since the Unix epoch, never going backwards.
//!
//! Windows and SLO state are keyed by time slots, and their snapshots must mean the same
//! slots after a restart, so the origin has to survive the process: the Unix epoch, not
//! `std::time::Instant` (whose origin is arbitrary per boot). Wall clocks can step back
//! (NTP corrections, a VM resumed): this clock then holds at the latest reading until the
//! wall clock catches up, and counts the step, so the core never sees time go backwards
//! from it.

use plimsoll_core::Clock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, monotonic within the process. See the
/// [module docs](self).
#[derive(Debug, Default)]
pub struct StdClock {
    latest: AtomicU64,
    backward_steps: AtomicU64,
}

impl StdClock {
    /// A clock with no reading yet.
    pub const fn new() -> Self {
        Self { latest: AtomicU64::new(0), backward_steps: AtomicU64::new(0) }
    }

    /// Times the wall clock was found behind an earlier reading.
    pub fn backward_steps(&self) -> u64 {
        self.backward_steps.load(Relaxed)
    }

    /// Takes `wall_ms` as the wall clock's reading; returns the clock's time.
    fn observe(&self, wall_ms: u64) -> u64 {
        let previous = self.latest.fetch_max(wall_ms, Relaxed);
        if wall_ms < previous {
            self.backward_steps.fetch_add(1, Relaxed);
        }
        previous.max(wall_ms)
    }
}

impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        // A wall clock before 1970 reads as 0, then holds at the latest reading.
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.observe(wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wall_clock() {
        let clock = StdClock::new();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let now = clock.now_ms();
        assert!(now >= wall && now < wall + 60_000, "{now} vs {wall}");
    }

    #[test]
    fn holds_when_the_wall_clock_steps_back() {
        let clock = StdClock::new();
        assert_eq!(clock.observe(10_000), 10_000);
        assert_eq!(clock.observe(4_000), 10_000);
        assert_eq!(clock.observe(10_500), 10_500);
        assert_eq!(clock.backward_steps(), 1);
    }
}
