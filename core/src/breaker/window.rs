//! The call windows behind a breaker's rates: resilience4j's count-based and time-based
//! sliding windows (subtract-on-evict over a ring of `W` buckets) and the half-open trial.

use super::SlidingWindowType;

/// Milliseconds per bucket of a time-based window: resilience4j aggregates per epoch second.
const SECOND_MS: u64 = 1_000;

/// One call's outcome, as a window counts it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome {
    pub(super) failed: bool,
    pub(super) slow: bool,
}

/// The calls of one bucket: one call of a count-based window, one second of a time-based one.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    calls: u32,
    failed: u32,
    slow: u32,
    slow_failed: u32,
}

impl Bucket {
    const EMPTY: Self = Self { calls: 0, failed: 0, slow: 0, slow_failed: 0 };

    fn of(outcome: Outcome) -> Self {
        let mut bucket = Self::EMPTY;
        bucket.add(outcome);
        bucket
    }

    /// Adds `outcome`; `false`, adding nothing, once the bucket holds `u32::MAX` calls (4.3
    /// billion calls in one second), so that a bucket and the window total never disagree.
    fn add(&mut self, outcome: Outcome) -> bool {
        if self.calls == u32::MAX {
            return false;
        }
        self.calls += 1;
        self.failed += u32::from(outcome.failed);
        self.slow += u32::from(outcome.slow);
        self.slow_failed += u32::from(outcome.failed && outcome.slow);
        true
    }
}

/// The calls a window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) calls: u64,
    pub(super) failed: u64,
    pub(super) slow: u64,
    pub(super) slow_failed: u64,
}

impl Tally {
    const ZERO: Self = Self { calls: 0, failed: 0, slow: 0, slow_failed: 0 };

    fn add(&mut self, bucket: &Bucket) {
        self.calls += u64::from(bucket.calls);
        self.failed += u64::from(bucket.failed);
        self.slow += u64::from(bucket.slow);
        self.slow_failed += u64::from(bucket.slow_failed);
    }

    /// Takes an evicted bucket out. Every bucket was added before, so nothing saturates; the
    /// saturating form only keeps a broken invariant from panicking in a debug build.
    fn sub(&mut self, bucket: &Bucket) {
        self.calls = self.calls.saturating_sub(u64::from(bucket.calls));
        self.failed = self.failed.saturating_sub(u64::from(bucket.failed));
        self.slow = self.slow.saturating_sub(u64::from(bucket.slow));
        self.slow_failed = self.slow_failed.saturating_sub(u64::from(bucket.slow_failed));
    }
}

/// What a window records, by breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The configured sliding window: closed, metrics-only, and open after closed.
    Sliding,
    /// The half-open trial, and open after a failed trial: every call since the trial began.
    Trial,
    /// Nothing: disabled and forced open.
    Off,
}

/// A ring of `W` buckets and its running total. Not synchronized: the breaker holds it in a
/// critical section.
#[derive(Debug)]
pub(super) struct Calls<const W: usize> {
    ring: [Bucket; W],
    total: Tally,
    /// Count-based: the index of the newest bucket. Time-based: the newest epoch second.
    head: u64,
    mode: Mode,
}

impl<const W: usize> Calls<W> {
    pub(super) const fn new() -> Self {
        Self { ring: [Bucket::EMPTY; W], total: Tally::ZERO, head: 0, mode: Mode::Sliding }
    }

    /// Empties the window and sets what it records from now on.
    pub(super) fn reset(&mut self, mode: Mode) {
        self.ring.fill(Bucket::EMPTY);
        self.total = Tally::ZERO;
        self.head = 0;
        self.mode = mode;
    }

    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    pub(super) fn tally(&self) -> Tally {
        self.total
    }

    /// Records one call at `now_ms`.
    pub(super) fn record(&mut self, kind: SlidingWindowType, now_ms: u64, outcome: Outcome) {
        match (self.mode, kind) {
            (Mode::Off, _) => {}
            // A trial ends as soon as it holds its minimum number of calls, which is at most
            // the permitted number, so it never needs to evict.
            (Mode::Trial, _) => self.total.add(&Bucket::of(outcome)),
            (Mode::Sliding, SlidingWindowType::CountBased) => {
                let i = (self.head as usize + 1) % W;
                self.total.sub(&self.ring[i]);
                self.ring[i] = Bucket::of(outcome);
                self.total.add(&self.ring[i]);
                self.head = i as u64;
            }
            (Mode::Sliding, SlidingWindowType::TimeBased) => {
                self.advance(kind, now_ms);
                // A call older than the newest second (a clock that went backwards, or a
                // recorder that read the clock before another crossed into a new second) is
                // counted in the newest second, as resilience4j does.
                let i = (self.head % W as u64) as usize;
                if self.ring[i].add(outcome) {
                    self.total.add(&Bucket::of(outcome));
                }
            }
        }
    }

    /// Moves a time-based window's end to the second of `now_ms`, evicting the seconds that
    /// fall out of it (at most `W` buckets are touched, however long the gap). Later times
    /// only: an earlier `now_ms` leaves the window as it is.
    pub(super) fn advance(&mut self, kind: SlidingWindowType, now_ms: u64) {
        if self.mode != Mode::Sliding || kind != SlidingWindowType::TimeBased {
            return;
        }
        let epoch = now_ms / SECOND_MS;
        if epoch <= self.head {
            return;
        }
        // Second `e` lives in bucket `e % W`; its previous tenant, second `e - W` or older,
        // is outside the moved window.
        let steps = (epoch - self.head).min(W as u64);
        for second in epoch - steps + 1..=epoch {
            let i = (second % W as u64) as usize;
            self.total.sub(&self.ring[i]);
            self.ring[i] = Bucket::EMPTY;
        }
        self.head = epoch;
    }
}
