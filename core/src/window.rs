//! Rolling time windows in fixed memory: a ring of `S` slots of `SLOT_MS` milliseconds.
//!
//! Each slot holds its data (a [`Counter`], a [`Histogram`], a [`MinMax`]) tagged with
//! the slot's epoch (`now_ms / SLOT_MS`). Recording into a slot whose tag is stale resets
//! it first; reading sums only the slots whose tag lies inside the asked window. There
//! are no timers: time enters with each call (see [`crate::time`]).
//!
//! # What a window covers
//!
//! A span of `W` ms read at `now_ms` covers the slots with epochs
//! `[end - W / SLOT_MS, end]`, where `end` is the current epoch: `W / SLOT_MS` whole
//! slots plus the current, partial one (`W` is rounded down to whole slots and capped at
//! `S - 1` slots). So a window is exact to one slot: it spans between `W` and
//! `W + SLOT_MS` of time. [`Window::covered_ms`] says how much of that the window has
//! actually observed since its first record.
//!
//! # Time that misbehaves
//!
//! - An idle gap longer than the whole ring: every slot's tag is then outside any window,
//!   so old data never leaks into a new window; slots are reset as they are reused.
//! - A clock that jumps forward by days: the same; the window simply starts over.
//! - A time beyond [`MAX_TIME_MS`] (2^62 ms, about 146 million years) is taken as
//!   `MAX_TIME_MS`, so the slot arithmetic can never overflow.
//! - A clock that goes backwards (or a recorder that read the clock before another one
//!   already crossed into a newer slot): the event is recorded into the newest slot seen
//!   so far, never into an older one, and counted in [`Window::late_events`]. Reads use
//!   the newest epoch seen when the caller's `now_ms` is older. Nothing is double counted
//!   and no slot is corrupted.
//!
//! # Concurrency
//!
//! Recording into a current slot is lock-free: two loads and the data's own atomic update.
//! Resetting a stale slot takes a short critical section, in which the slot is reset and
//! its new tag published with a release store; a recorder that sees the new tag (acquire)
//! therefore sees the reset data, so two threads crossing a slot boundary at once neither
//! lose the reset nor lose an increment (`loom` model test and threaded stress test).
//! Reads are not atomic snapshots across slots; each slot is read once.

use crate::Counter;
use crate::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use crate::sealed::Sealed;
cfg_not_loom! {
    use crate::Histogram;
    use crate::atomic::AtomicI64;
    use crate::histogram::BucketCounts;
}

/// Data a window slot can hold. Sealed.
pub trait SlotData: Sync + Sealed {
    /// The empty value, used to build rings in `const` context.
    // A const of an interior-mutable type is only ever copied into a new slot.
    #[allow(clippy::declare_interior_mutable_const)]
    #[cfg(not(loom))]
    const EMPTY: Self;
    /// The empty value (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    fn empty() -> Self;
    /// Returns the data to [`EMPTY`](Self::EMPTY), through `&self`.
    fn reset(&self);

    /// Identifies the data type in snapshot fingerprints.
    #[cfg(feature = "postcard")]
    const KIND: &'static str;
    /// Emits the data as snapshot words.
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64));
    /// Reads the data back from snapshot words, validating it; stores it only if `apply`.
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError>;
}

impl SlotData for Counter {
    #[allow(clippy::declare_interior_mutable_const)] // See `SlotData::EMPTY`.
    #[cfg(not(loom))]
    const EMPTY: Self = Counter::new();
    #[cfg(loom)]
    fn empty() -> Self {
        Counter::new()
    }
    fn reset(&self) {
        self.reset_to_zero();
    }
    #[cfg(feature = "postcard")]
    const KIND: &'static str = "counter";
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64)) {
        out(self.get());
    }
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let value = words.next()?;
        if apply {
            self.reset_to_zero();
            self.inc_by(value);
        }
        Ok(())
    }
}

cfg_not_loom! {
impl<const S: u8, const E: i16, const B: usize> SlotData for Histogram<S, E, B> {
    #[allow(clippy::declare_interior_mutable_const)] // See `SlotData::EMPTY`.
    const EMPTY: Self = Histogram::new();
    fn reset(&self) {
        Histogram::reset(self);
    }
    #[cfg(feature = "postcard")]
    const KIND: &'static str = "histogram";
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64)) {
        self.save_state(out);
    }
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        self.load_state(words, apply)
    }
}

/// The smallest and largest `i64` observed (a windowed min/max gauge's slot).
#[derive(Debug)]
pub struct MinMax {
    min: AtomicI64,
    max: AtomicI64,
}

impl MinMax {
    /// Nothing observed yet.
    pub const fn new() -> Self {
        Self { min: AtomicI64::new(i64::MAX), max: AtomicI64::new(i64::MIN) }
    }

    /// Takes `value` into the minimum and maximum.
    #[inline]
    pub fn observe(&self, value: i64) {
        self.min.fetch_min(value, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }

    /// The smallest and largest values observed, or `None` if none was.
    pub fn get(&self) -> Option<(i64, i64)> {
        let (min, max) = (self.min.load(Relaxed), self.max.load(Relaxed));
        (min <= max).then_some((min, max))
    }
}

impl Default for MinMax {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealed for MinMax {}
impl SlotData for MinMax {
    #[allow(clippy::declare_interior_mutable_const)] // See `SlotData::EMPTY`.
    const EMPTY: Self = MinMax::new();
    fn reset(&self) {
        self.min.store(i64::MAX, Relaxed);
        self.max.store(i64::MIN, Relaxed);
    }
    #[cfg(feature = "postcard")]
    const KIND: &'static str = "min_max";
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64)) {
        out(self.min.load(Relaxed) as u64);
        out(self.max.load(Relaxed) as u64);
    }
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let (min, max) = (words.next()? as i64, words.next()? as i64);
        if min > max && (min, max) != (i64::MAX, i64::MIN) {
            return Err(crate::snapshot::SnapshotError::Corrupt);
        }
        if apply {
            self.min.store(min, Relaxed);
            self.max.store(max, Relaxed);
        }
        Ok(())
    }
}

}

/// The latest time a window distinguishes; later times are taken as this one.
pub const MAX_TIME_MS: u64 = 1 << 62;

/// One slot: the epoch it holds (plus one; 0 means never used) and its data.
#[derive(Debug)]
struct Slot<M> {
    tag: AtomicU64,
    data: M,
}

/// A ring of `S` slots of `SLOT_MS` ms each. See the [module docs](self).
///
/// ```
/// use plimsoll_core::RateWindow;
/// static REQUESTS: RateWindow = RateWindow::new();
/// for second in 0..120 {
///     REQUESTS.add(second * 1_000, 10);
/// }
/// assert_eq!(REQUESTS.sum(120_000, 60_000), 600); // 6 slots of 10 s + the current one
/// ```
#[derive(Debug)]
pub struct Window<M, const S: usize, const SLOT_MS: u64> {
    slots: [Slot<M>; S],
    /// The newest epoch recorded, plus one (0: nothing recorded yet).
    newest: AtomicU64,
    /// The time of the first record, plus one (0: nothing recorded yet).
    first_ms: AtomicU64,
    late: AtomicU64,
    /// Stands in for the critical section in loom models.
    #[cfg(loom)]
    reset_lock: loom::sync::Mutex<()>,
}

/// Request rates over up to the last hour: 10-second slots (5,800 bytes).
pub type RateWindow = Window<Counter, 361, 10_000>;
cfg_not_loom! {
/// Latency quantiles over up to the last 5 minutes: 1-minute slots of
/// [`LatencyHistogram`](crate::LatencyHistogram)s (21,096 bytes).
pub type LatencyWindow = Window<crate::LatencyHistogram, 6, 60_000>;
/// Minimum and maximum of a gauge over up to the last hour: 1-minute slots (1,488 bytes).
pub type MinMaxWindow = Window<MinMax, 61, 60_000>;
}

impl<M: SlotData, const S: usize, const SLOT_MS: u64> Window<M, S, SLOT_MS> {
    /// Size of the window in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty window.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        const {
            assert!(S > 1, "a window needs at least two slots");
            assert!(SLOT_MS > 0, "SLOT_MS must be non-zero");
        }
        Self {
            slots: [const { Slot { tag: AtomicU64::new(0), data: M::EMPTY } }; S],
            newest: AtomicU64::new(0),
            first_ms: AtomicU64::new(0),
            late: AtomicU64::new(0),
        }
    }

    /// An empty window (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| Slot { tag: AtomicU64::new(0), data: M::empty() }),
            newest: AtomicU64::new(0),
            first_ms: AtomicU64::new(0),
            late: AtomicU64::new(0),
            reset_lock: loom::sync::Mutex::new(()),
        }
    }

    /// The slot data for an event at `now_ms`: the current slot, reset first if stale, or
    /// the newest slot for a late event. `on_recycle(old_epoch, &data)` sees a stale
    /// slot's data just before it is reset (inside the critical section).
    pub(crate) fn slot_at(&self, now_ms: u64, on_recycle: impl FnOnce(u64, &M)) -> &M {
        let now_ms = now_ms.min(MAX_TIME_MS);
        let mut epoch = now_ms / SLOT_MS;
        let newest = self.newest.load(Relaxed);
        if epoch + 1 > newest {
            let previous = self.newest.fetch_max(epoch + 1, Relaxed);
            if previous == 0 {
                let _ = self.first_ms.compare_exchange(0, now_ms + 1, Relaxed, Relaxed);
            }
            epoch = epoch.max(previous.saturating_sub(1));
        } else if epoch + 1 < newest {
            self.late.fetch_add(1, Relaxed);
            epoch = newest - 1;
        }
        let slot = &self.slots[(epoch % S as u64) as usize];
        // Acquire pairs with the release store of the tag after a reset.
        if slot.tag.load(Acquire) != epoch + 1 {
            self.recycle(slot, epoch, on_recycle);
        }
        &slot.data
    }

    #[cold]
    fn recycle(&self, slot: &Slot<M>, epoch: u64, on_recycle: impl FnOnce(u64, &M)) {
        #[cfg(not(loom))]
        critical_section::with(|_| self.reset(slot, epoch, on_recycle));
        #[cfg(loom)]
        {
            let _guard = self.reset_lock.lock().expect("lock");
            self.reset(slot, epoch, on_recycle);
        }
    }

    /// Inside the critical section: resets `slot` for `epoch` unless another recorder
    /// already did (or moved it to a newer epoch).
    fn reset(&self, slot: &Slot<M>, epoch: u64, on_recycle: impl FnOnce(u64, &M)) {
        {
            let tag = slot.tag.load(Relaxed);
            if tag < epoch + 1 {
                if tag > 0 {
                    on_recycle(tag - 1, &slot.data);
                }
                slot.data.reset();
                slot.tag.store(epoch + 1, Release);
            } else if tag > epoch + 1 {
                // The ring moved on by a whole turn since this recorder read the clock:
                // the slot now holds a newer epoch, which is where the event goes.
                self.late.fetch_add(1, Relaxed);
            }
        }
    }

    /// The epoch a read at `now_ms` ends at: the current one, or the newest recorded if
    /// the clock went backwards.
    pub(crate) fn end_epoch(&self, now_ms: u64) -> u64 {
        (now_ms.min(MAX_TIME_MS) / SLOT_MS).max(self.newest.load(Relaxed).saturating_sub(1))
    }

    /// Calls `f(epoch, &data)` for each slot inside the window of `span_ms` at `now_ms`.
    pub(crate) fn for_each_in(&self, now_ms: u64, span_ms: u64, mut f: impl FnMut(u64, &M)) {
        let end = self.end_epoch(now_ms);
        let start = end.saturating_sub(Self::whole_slots(span_ms));
        for slot in &self.slots {
            let tag = slot.tag.load(Acquire);
            if tag > start && tag <= end + 1 {
                f(tag - 1, &slot.data);
            }
        }
    }

    /// Calls `f(epoch, &data)` for every slot that holds data, however old: for sums that
    /// must not lose a slot just because it left every window (an SLO's all-time counts).
    #[cfg(not(loom))]
    pub(crate) fn for_each_slot(&self, mut f: impl FnMut(u64, &M)) {
        for slot in &self.slots {
            match slot.tag.load(Acquire) {
                0 => {}
                tag => f(tag - 1, &slot.data),
            }
        }
    }

    /// Whole slots before the current one that a span covers.
    fn whole_slots(span_ms: u64) -> u64 {
        (span_ms / SLOT_MS).min(S as u64 - 1)
    }

    /// The window's length at `now_ms`: whole slots plus the elapsed part of the current.
    pub fn span_ms(&self, now_ms: u64, span_ms: u64) -> u64 {
        let now_ms = now_ms.min(MAX_TIME_MS);
        let end = self.end_epoch(now_ms);
        Self::whole_slots(span_ms) * SLOT_MS + now_ms.saturating_sub(end * SLOT_MS)
    }

    /// How much of the window of `span_ms` at `now_ms` the window has observed: its
    /// length, or less if the first record came later than the window's start.
    pub fn covered_ms(&self, now_ms: u64, span_ms: u64) -> u64 {
        let now_ms = now_ms.min(MAX_TIME_MS);
        match self.first_ms.load(Relaxed) {
            0 => 0,
            first => self.span_ms(now_ms, span_ms).min(now_ms.saturating_sub(first - 1)),
        }
    }

    /// Events recorded into a newer slot than their time because the clock went
    /// backwards or another recorder had already moved on.
    pub fn late_events(&self) -> u64 {
        self.late.load(Relaxed)
    }
}

#[cfg(feature = "postcard")]
impl<M, const S: usize, const SLOT_MS: u64> Sealed for Window<M, S, SLOT_MS> {}

/// A window's snapshot: its newest epoch, first record and late count, then each slot's
/// tag and data. A slot's tag must fit its position in the ring and not be newer than the
/// newest epoch.
#[cfg(feature = "postcard")]
impl<M: SlotData, const S: usize, const SLOT_MS: u64> crate::snapshot::SnapshotPart for Window<M, S, SLOT_MS> {
    fn describe(&self, hasher: &mut rustc_hash::FxHasher) {
        use core::hash::Hasher;
        hasher.write(b"window");
        hasher.write(M::KIND.as_bytes());
        hasher.write_usize(S);
        hasher.write_u64(SLOT_MS);
    }

    fn save(&self, out: &mut dyn FnMut(u64)) {
        out(self.newest.load(Relaxed));
        out(self.first_ms.load(Relaxed));
        out(self.late.load(Relaxed));
        for slot in &self.slots {
            out(slot.tag.load(Acquire));
            slot.data.save(out);
        }
    }

    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let (newest, first_ms, late) = (words.next()?, words.next()?, words.next()?);
        if apply {
            self.newest.store(newest, Relaxed);
            self.first_ms.store(first_ms, Relaxed);
            self.late.store(late, Relaxed);
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let tag = words.next()?;
            let fits = tag == 0 || ((tag - 1) % S as u64 == index as u64 && tag <= newest);
            if !fits {
                return Err(crate::snapshot::SnapshotError::Corrupt);
            }
            slot.data.load(words, apply)?;
            if apply {
                slot.tag.store(tag, Release);
            }
        }
        Ok(())
    }
}

#[cfg(not(loom))]
impl<M: SlotData, const S: usize, const SLOT_MS: u64> Default for Window<M, S, SLOT_MS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const SLOT_MS: u64> Window<Counter, S, SLOT_MS> {
    /// Counts one event at `now_ms`.
    #[inline]
    pub fn inc(&self, now_ms: u64) {
        self.slot_at(now_ms, |_, _| {}).inc();
    }

    /// Counts `n` events at `now_ms`.
    #[inline]
    pub fn add(&self, now_ms: u64, n: u64) {
        self.slot_at(now_ms, |_, _| {}).inc_by(n);
    }

    /// Events in the window of `span_ms` at `now_ms`.
    pub fn sum(&self, now_ms: u64, span_ms: u64) -> u64 {
        let mut sum = 0;
        self.for_each_in(now_ms, span_ms, |_, c| sum += c.get());
        sum
    }

    /// Events per second over the covered part of the window, or `None` before the first
    /// record.
    pub fn rate_per_second(&self, now_ms: u64, span_ms: u64) -> Option<f64> {
        let covered = self.covered_ms(now_ms, span_ms);
        (covered > 0).then(|| self.sum(now_ms, span_ms) as f64 * 1_000.0 / covered as f64)
    }
}

cfg_not_loom! {
impl<const S: usize, const SLOT_MS: u64> Window<MinMax, S, SLOT_MS> {
    /// Observes `value` at `now_ms`.
    #[inline]
    pub fn observe(&self, now_ms: u64, value: i64) {
        self.slot_at(now_ms, |_, _| {}).observe(value);
    }

    /// The smallest and largest values in the window, or `None` if it saw none.
    pub fn min_max(&self, now_ms: u64, span_ms: u64) -> Option<(i64, i64)> {
        let mut result: Option<(i64, i64)> = None;
        self.for_each_in(now_ms, span_ms, |_, m| {
            if let Some((lo, hi)) = m.get() {
                result = Some(result.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        });
        result
    }
}

impl<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize, const S: usize, const SLOT_MS: u64>
    Window<Histogram<SCHEMA, MIN_EXP, BUCKETS>, S, SLOT_MS>
{
    /// Records `value` at `now_ms` (invalid values are counted by the slot's histogram).
    #[inline]
    pub fn record(&self, now_ms: u64, value: f64) {
        self.slot_at(now_ms, |_, _| {}).record(value);
    }

    /// The `q`-quantile of the values in the window (within the histogram's `ALPHA`), or
    /// `None` if the window is empty or `q` is not in `[0, 1]`.
    pub fn quantile(&self, now_ms: u64, span_ms: u64, q: f64) -> Option<f64> {
        let mut in_window = [false; S];
        let (mut zero, mut overflow) = (0, 0);
        self.for_each_in(now_ms, span_ms, |epoch, h| {
            in_window[(epoch % S as u64) as usize] = true;
            let (z, o) = h.zero_and_overflow();
            zero += z;
            overflow += o;
        });
        let bucket = |b: usize| {
            self.slots.iter().zip(&in_window).filter(|(_, inside)| **inside).map(|(s, _)| s.data.bucket_count(b)).sum()
        };
        Histogram::<SCHEMA, MIN_EXP, BUCKETS>::quantile_of(q, &BucketCounts { zero, overflow, bucket })
    }

    /// Number of valid values recorded in the window.
    pub fn count(&self, now_ms: u64, span_ms: u64) -> u64 {
        let mut count = 0;
        self.for_each_in(now_ms, span_ms, |_, h| count += h.count());
        count
    }
}

}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::LatencyHistogram;
    use proptest::prelude::*;
    use std::vec::Vec;

    type Small = Window<Counter, 5, 1_000>;

    #[test]
    fn sums_whole_slots_plus_the_current_one() {
        let w = Small::new();
        for t in (0..10_000).step_by(100) {
            w.inc(t);
        }
        assert_eq!(w.sum(9_999, 0), 10);
        assert_eq!(w.sum(9_999, 2_000), 30);
        assert_eq!(w.sum(9_999, 1_000_000), 50, "capped at S - 1 whole slots");
        assert_eq!(w.span_ms(9_500, 2_000), 2_500);
        assert_eq!(w.covered_ms(9_500, 2_000), 2_500);
        assert_eq!(w.covered_ms(1_500, 4_000), 1_500, "only 1.5 s observed");
        assert_eq!(w.rate_per_second(9_999, 3_999), Some(40.0 / 3.999));
    }

    #[test]
    fn idle_gap_longer_than_the_ring_leaks_nothing() {
        let w = Small::new();
        w.add(1_000, 7);
        assert_eq!(w.sum(1_000, 4_000), 7);
        assert_eq!(w.sum(6_000, 4_000), 0, "read after the gap, before any new record");
        w.add(6_500, 1);
        assert_eq!(w.sum(6_500, 4_000), 1);
        let days = 3 * 86_400_000;
        w.add(days, 2);
        assert_eq!(w.sum(days, 4_000), 2, "a jump by days starts over");
        assert_eq!(w.late_events(), 0);
    }

    /// Found by fuzzing: times near `u64::MAX` overflowed the slot arithmetic.
    #[test]
    fn times_beyond_the_maximum_are_taken_as_the_maximum() {
        let fine = Window::<Counter, 4, 1>::new();
        fine.inc(u64::MAX - 1);
        fine.inc(u64::MAX);
        assert_eq!(fine.sum(u64::MAX, 0), 2);
        assert_eq!(fine.sum(MAX_TIME_MS, 0), 2);
        let w = Small::new();
        w.inc(u64::MAX);
        assert_eq!(w.covered_ms(u64::MAX, 4_000), 0, "observed nothing yet at the one instant");
        assert_eq!(w.rate_per_second(u64::MAX, 4_000), None);
        assert_eq!(w.late_events(), 0);
    }

    #[test]
    fn backwards_clock_goes_to_the_newest_slot_and_is_counted() {
        let w = Small::new();
        w.add(10_000, 1);
        w.add(2_000, 5); // the clock went back 8 s
        assert_eq!(w.late_events(), 1);
        assert_eq!(w.sum(10_000, 0), 6, "recorded into the newest slot");
        assert_eq!(w.sum(2_000, 0), 6, "a read from the past ends at the newest slot");
        w.add(11_000, 1);
        assert_eq!(w.sum(11_000, 4_000), 7, "nothing double counted");
    }

    #[test]
    fn min_max_and_histogram_windows() {
        let g = MinMaxWindow::new();
        assert_eq!(g.min_max(0, 60_000), None);
        g.observe(0, 5);
        g.observe(30_000, -3);
        g.observe(90_000, 9);
        assert_eq!(g.min_max(90_000, 60_000), Some((-3, 9)));
        assert_eq!(g.min_max(90_000, 0), Some((9, 9)));
        assert_eq!(g.min_max(200_000, 0), None);

        let h = LatencyWindow::new();
        for i in 1..=100 {
            h.record(0, f64::from(i) * 1e-3);
        }
        h.record(60_000, 10.0);
        let p50 = h.quantile(60_000, 60_000, 0.5).unwrap();
        assert!((p50 - 0.051).abs() / 0.051 <= LatencyHistogram::ALPHA * (1.0 + 1e-12), "{p50}");
        assert_eq!(h.count(60_000, 0), 1);
        let p99_now = h.quantile(60_000, 0, 0.99).unwrap();
        assert!((p99_now - 10.0).abs() / 10.0 <= LatencyHistogram::ALPHA);
        assert_eq!(h.quantile(500_000, 60_000, 0.5), None, "old slots are outside the window");
    }

    #[test]
    fn footprints() {
        assert_eq!(RateWindow::FOOTPRINT, 5_800);
        assert_eq!(LatencyWindow::FOOTPRINT, 21_096);
        assert_eq!(MinMaxWindow::FOOTPRINT, 1_488);
    }

    /// Threads hammering a small ring across many slot boundaries at once: every
    /// increment of the current window is found (no lost reset, no lost increment).
    #[test]
    fn threaded_stress_across_boundaries() {
        static W: Window<Counter, 4, 10> = Window::new();
        static CLOCK: crate::ManualClock = crate::ManualClock::new(0);
        const THREADS: u64 = 4;
        let totals: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        let mut recorded = 0;
                        for _ in 0..20_000 {
                            let now = crate::Clock::now_ms(&CLOCK);
                            W.inc(now);
                            recorded += 1;
                            if recorded % 50 == 0 {
                                CLOCK.advance(1);
                            }
                        }
                        recorded
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(totals.iter().sum::<u64>(), THREADS * 20_000);
        // After the storm, one more slot's worth of events at a quiet, known time.
        let now = crate::Clock::now_ms(&CLOCK) + 1_000;
        for _ in 0..1000 {
            W.inc(now);
        }
        assert_eq!(W.sum(now, 0), 1000, "a fresh slot starts from zero exactly once");
    }

    /// The naive model: every event kept in a list, with the window's documented rules.
    #[derive(Default)]
    struct Model {
        events: Vec<(u64, u64)>,
        newest: Option<u64>,
        late: u64,
    }

    const D: u64 = 1_000;
    const S: u64 = 8;

    impl Model {
        fn add(&mut self, now: u64, n: u64) {
            let epoch = now / D;
            let epoch = match self.newest {
                Some(newest) if epoch < newest => {
                    self.late += 1;
                    newest
                }
                _ => epoch,
            };
            self.newest = Some(epoch);
            self.events.push((epoch, n));
        }

        fn sum(&self, now: u64, span: u64) -> u64 {
            let end = (now / D).max(self.newest.unwrap_or(0));
            let start = end.saturating_sub((span / D).min(S - 1));
            self.events.iter().filter(|(e, _)| (start..=end).contains(e)).map(|(_, n)| n).sum()
        }
    }

    proptest! {
        #[test]
        fn matches_the_naive_model(steps in proptest::collection::vec((0u8..10, -3_000i64..5_000, 1u64..5), 1..200)) {
            let w = Window::<Counter, { S as usize }, D>::new();
            let mut model = Model::default();
            let mut now: u64 = 1_000_000;
            for (kind, delta, n) in steps {
                now = match kind {
                    0 => now + 86_400_000,                      // a jump by a day
                    1 => now.saturating_sub(20_000),            // backwards by many slots
                    _ => now.saturating_add_signed(delta),
                };
                w.add(now, n);
                model.add(now, n);
                for span in [0, 999, 1_000, 3_500, 7_000, 60_000] {
                    for read_at in [now, now + 2_500, now.saturating_sub(1_500)] {
                        prop_assert_eq!(w.sum(read_at, span), model.sum(read_at, span), "span {} at {}", span, read_at);
                    }
                }
                prop_assert_eq!(w.late_events(), model.late);
            }
        }
    }
}

/// `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p plimsoll-core --release --lib loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two recorders cross into a stale slot at once: one resets it, both increments
    /// survive, and the stale count is gone.
    #[test]
    fn two_recorders_crossing_a_slot_boundary() {
        loom::model(|| {
            let window = Arc::new(Window::<Counter, 2, 10>::new());
            window.add(5, 7); // epoch 0, slot 0
            let recorders: [_; 2] = core::array::from_fn(|i| {
                let window = window.clone();
                thread::spawn(move || window.inc(20 + i as u64)) // epoch 2, slot 0 again
            });
            for recorder in recorders {
                recorder.join().expect("recorder");
            }
            assert_eq!(window.sum(21, 0), 2);
            assert_eq!(window.sum(21, 10), 2, "epoch 1 is empty, epoch 0 left the window");
            assert_eq!(window.late_events(), 0);
        });
    }

    /// A recorder in the current slot races one that opens the next slot: neither
    /// increment is lost and each lands in its own slot.
    #[test]
    fn recorder_and_slot_opener_race() {
        loom::model(|| {
            let window = Arc::new(Window::<Counter, 3, 10>::new());
            window.inc(0);
            let current = {
                let window = window.clone();
                thread::spawn(move || window.inc(5))
            };
            let next = {
                let window = window.clone();
                thread::spawn(move || window.inc(12))
            };
            current.join().expect("current");
            next.join().expect("next");
            // The epoch-0 event may arrive after epoch 1 opened: then it is late and goes
            // to the newest slot. Either way nothing is lost.
            let late = window.late_events();
            assert!(late <= 1);
            assert_eq!(window.sum(12, 0), 1 + late);
            assert_eq!(window.sum(12, 10), 3);
        });
    }
}
