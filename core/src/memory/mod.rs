//! The memory monitor: is memory leaking, how fast, and when will the process reach its
//! limit, from periodic samples, in fixed memory and without heap snapshots.
//!
//! A [`MemoryHistory`] per signal (RSS, heap in use, a cache's size…) keeps each sample
//! `(now_ms, bytes)` in two rings of buckets: by default the last 2 hours at 30 s and the
//! last 2 days at 10 min, so fast leaks show within minutes and slow ones over days. A
//! bucket keeps the minimum, maximum and last sample that fell into it. The statistics run
//! on the per-bucket minima, the **lower envelope**: memory just after collection. A
//! garbage collector's or allocator cache's sawtooth then shows as its floor, and only a
//! floor that rises counts as growth.
//!
//! [`MemoryHistory::assess`] judges each ring's envelope ([`stats`] has the estimators) and
//! returns an [`Assessment`]: a [`Verdict`], the robust slope, the trend test's p-value and
//! confidence, and the time until a memory limit is reached. [`MemoryExport`] publishes it
//! all as `plimsoll_memory_*` families. The core never reads memory figures or clocks: a
//! sampler (the std adapter reads `/proc` and cgroups) calls [`MemoryHistory::record`].
//!
//! # The verdict
//!
//! For one ring, over its closed buckets that start after the warm-up (the bucket still
//! filling is left out: its minimum is not yet memory after collection), with `level` the
//! newest of these buckets' minimum and `threshold = max(1 MiB/h, 0.5 %/h × level)`
//! ([`LeakRules::leak_threshold_bytes_per_hour`]):
//!
//! 1. Fewer than [`LeakRules::min_buckets`] (10) such buckets: [`Verdict::NotEnoughData`].
//!
//! Then the envelope is searched for a **change point** (below); rules 2 to 6 judge the
//! *judged segment*: the points after the change if one is found, else the whole span.
//!
//! 2. Mann–Kendall does not say "increasing" at p < [`LeakRules::max_p_value`] (0.01), or
//!    the Theil–Sen slope is not positive: [`Verdict::Stable`].
//! 3. The Theil–Sen slope is below `threshold`, or the rise it makes over the segment is
//!    less than [`LeakRules::min_rise_to_noise`] (2) times the envelope's noise (1.4826 ×
//!    the median absolute deviation from the Theil–Sen line), or the slope's standard
//!    error is more than [`LeakRules::max_slope_error`] (20 %) of the slope:
//!    [`Verdict::Growing`] (significant but slow, not clear of the noise, or not yet known
//!    well enough to forecast from; informational).
//! 4. The Theil–Sen slope of the most recent third of the segment
//!    ([`LeakRules::recent_fraction`]) is below `threshold` or below half the segment's
//!    slope ([`LeakRules::max_slope_change`]): [`Verdict::Stable`] with
//!    [`Assessment::plateau`] set. It grew, but not lately, or ever more slowly: a cache
//!    that filled to its cap or a warm-up, not a leak.
//! 5. The recent slope is more than twice the segment's: [`Verdict::Growing`]. A step or an
//!    acceleration too recent for the change point search (it needs `min_buckets` points
//!    after a change), not yet seen for long enough to tell them apart.
//! 6. Otherwise [`Verdict::LeakSuspected`].
//!
//! After a change, three more rules: a leak after growth that slowed down at the change
//! (the segment before it rose by at least `min_rise_to_noise` times the noise, at more
//! than [`LeakRules::max_slope_change`] times the slope after it) is
//! [`Verdict::Stable`] with `plateau` set, as rule 4; a leak after a drop (the line after
//! the change starts more than `min_rise_to_noise` times the noise below the line before
//! it) is [`Verdict::Growing`] at most, as memory given back once may be again; and a
//! stable segment after a span that grew (Mann–Kendall "increasing" over the whole span:
//! a step up, a cache that filled) has `plateau` set.
//!
//! [`MemoryHistory::assess`] judges both rings over their whole length and keeps the more
//! severe verdict (`LeakSuspected` > `Growing` > `Stable` > `NotEnoughData`), the fine ring's
//! on a tie. The slope and the p-value reported are the judged segment's; the forecast
//! ([`Assessment::eta_seconds`]) is `(limit − level) / slope` for a growing or leaking
//! signal, `+∞` for a stable one, 0 once the level is at or over the limit.
//!
//! ## The change point
//!
//! One line fitted to the whole span cannot tell a level shift (a large table loaded at
//! once) from a leak, and it dilutes a leak that starts late with the flat part before
//! it. So the envelope's `n` points are split where two least-squares lines, one before
//! and one after, fit best ([`stats::change_point`]: every split with at least
//! `max(3, min_buckets / 2)` points before and `min_buckets` after, one pass of running
//! sums). The two lines are independent, so a split fits a step, a change of slope, or
//! both. The split is a change when:
//!
//! - its evidence, `n × ln(SSE one line / SSE two lines)` ([`stats::ChangePoint::score`]),
//!   is at least [`LeakRules::change_penalty`] (8) × `ln n`;
//! - the points before it hold no such change of their own (with the same minimum sizes
//!   and penalty): an envelope that changes again and again is a collector's sawtooth
//!   slower than the buckets or an oscillation, and its latest swing is not a new regime;
//! - the points after it hold no such change either (at least 3 points on each side): a
//!   step in their last few points is too recent to judge the part after it.
//!
//! The noise the judged segment's rise must clear, and its slope error is computed from,
//! is the larger of the two sides' (the noise does not change at a change point, and the
//! shorter side's estimate is the less reliable). So a step then flat is `Stable` (a
//! plateau) as soon as `min_buckets` points follow the step, and a flat-then-rising
//! envelope is judged on the rising part: its slope, p-value and forecast come from it.
//!
//! # Why these defaults
//!
//! - **Lower envelope, not the mean.** A collector's sawtooth has a large amplitude (tens of
//!   MiB) and no trend; its floor is what a leak lifts. The envelope is only as good as the
//!   bucket is long compared with the collection period: a collector that runs less often
//!   than every 30 s draws its sawtooth into the fine ring, where Mann–Kendall finds no
//!   monotonic trend in a periodic pattern and the noise check discounts its amplitude,
//!   and the 10-minute coarse ring sees its floor.
//! - **Mann–Kendall at p < 0.01** asks "is there a monotonic trend?" without assuming a
//!   line or a distribution of the noise, and ignores the size of outliers. 1 % keeps a
//!   flat, noisy signal from alerting more than rarely (an increase at p < 0.01 two-sided
//!   happens by chance in 0.5 % of windows of pure noise, about 1 % of assessments of both
//!   rings, and the next step stops nearly all of those).
//! - **Theil–Sen, not least squares**, for the slope and the forecast: a single spike or a
//!   missed collection moves a least-squares slope arbitrarily; the median of pairwise
//!   slopes ignores up to 29 % of such points. The least-squares line and its standard
//!   error are reported as well ([`Segment::least_squares`], what Prometheus' `deriv` and
//!   `predict_linear` compute) for comparison.
//! - **1 MiB/h or 0.5 %/h of the level**, whichever is larger: allocators and heaps creep
//!   by fragmentation, and a trend that slow takes weeks to matter. 1 MiB/h is 24 MiB a
//!   day; 0.5 %/h doubles the footprint in about 6 days.
//! - **A rise of twice the noise.** Mann–Kendall at p < 0.01 still passes one window of
//!   pure noise in 200 with a positive S, and on a noisy envelope its slope can then exceed
//!   1 MiB/h by chance (in the tests, ±10 MiB of noise gave 0.9 MiB/h at p = 0.003). A leak
//!   worth an alert lifts the envelope clear of its own noise over the span; a slow one that
//!   does not yet on the 2-hour ring does on the 2-day ring, whose 10-minute minima are far
//!   less noisy.
//! - **A slope known within 20 %.** The forecast is `(limit − level) / slope`, so its
//!   error is the slope's: flagging a leak only once the slope's standard error
//!   (`noise / √Σ(x − x̄)²`) is at most a fifth of it keeps the first forecast near its
//!   goal of 25 %. A rise of twice the noise alone allows a standard error of 45 % of the
//!   slope on 14 points. The noise in that error is taken at one standard error of its own
//!   estimate above it (× `1 + 1.16 / √m` over `m` points), since a median absolute
//!   deviation from a dozen points can be half the true noise. A leak flagged the moment
//!   it clears this still tends to be flagged when its slope happens to read high: see
//!   `tests/traces/README.md` for what remains.
//! - **5 minutes of warm-up** leaves out start-up allocations (caches warming, pools
//!   growing, lazy statics) that would otherwise read as a steep trend at the start.
//! - **10 buckets**: the normal approximation of Mann–Kendall is usual from n = 10, and 10
//!   strictly increasing points give p = 8 × 10⁻⁵, so a fast leak can be flagged 5 minutes
//!   after the warm-up (10 minutes after start) on the 30-second ring. It is also the
//!   fewest points after a change point that are judged.
//! - **Half to twice the segment's slope** for the recent third: with only a fixed
//!   threshold (1 MiB/h), a flat recent part whose slope is estimated from a few noisy
//!   buckets passes it by chance, so a warm-up or a filled cache kept reading as a leak;
//!   a steadily leaking signal has the same slope lately as over the span. Measured on the
//!   `plimsoll leak-check` evaluation set (`tests/traces/`).
//! - **The last third** for the plateau check: long enough to hold 80 fine buckets on the
//!   2-hour ring (its Theil–Sen slope is then precise), short enough that a cache that
//!   stopped growing half-way through the span reads as a plateau.
//! - **A change penalty of 8 × ln n**, not the Bayesian information criterion's 3 × ln n
//!   (two more parameters and a location): the best split of pure noise is the best of
//!   up to `n` tries, and envelopes' noise is not independent (minima of a sawtooth). On
//!   white noise the best split's evidence exceeds 3 × ln n in about 1 % (240 points) to
//!   10 % (20 points) of series, and 5 to 7 × ln n in 0.1 % (tested: at 8, at most 2 of
//!   500 series of 20 to 240 points). The changes worth finding are far clearer: a
//!   120 MiB step over 2 MiB of noise scores about 170 × ln n, a leak of 13 MiB/h after
//!   3 flat hours over the same noise 8 × ln n after 24 minutes and 20 × ln n after 37.
//!
//! # Time that misbehaves
//!
//! The rings are [`Window`]s, with their rules: a sample older than the newest bucket
//! (a clock that went backwards) goes into the newest bucket and is counted
//! ([`MemoryHistory::late_samples`]); gaps in sampling leave empty buckets, which the
//! statistics skip; a jump forward by more than a ring's length starts that ring over.
//!
//! # When not to use it
//!
//! It judges trends in a sampled level. It does not say what leaks (a heap profiler
//! does), and a signal that grows for hours with load and shrinks at night will be called
//! `LeakSuspected` while it grows: read the verdict together with traffic.
//!
//! # Cost
//!
//! [`MemoryHistory::record`] is one `fetch_min`, one `fetch_max` and one store per ring,
//! lock-free; it takes the windows' short critical section when it opens a new bucket
//! (every 30 s and every 10 min). The default history is 17,112 bytes on a 64-bit target
//! ([`MemoryHistory::FOOTPRINT`]: 32 bytes per bucket). [`MemoryHistory::assess`] reads each
//! ring once and allocates nothing; its own arrays on the stack are about 21 KB (one
//! ring's envelope at a time, 16 bytes per bucket, and Theil–Sen's 2,016 pairwise slopes),
//! and the whole call fits a 48 KiB thread stack (tested in debug builds; 32 KiB sufficed
//! in a release build). Its time is quadratic in a ring's points (Mann–Kendall on the
//! span and on the segments either side of a change point, Theil–Sen on at most 64 points
//! of each); the change point search is three linear passes.

use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::sealed::Sealed;
use crate::window::{SlotData, Window};
use core::fmt;

mod export;
pub mod stats;
#[cfg(all(test, not(loom)))]
mod tests;
mod verdict;

pub use export::{MAX_MEMORY_SIGNALS, MAX_SIGNAL_NAME_LEN, MemoryExport};
pub use verdict::{Assessment, Change, LeakRules, Segment, Trend, Verdict};

// ---------------------------------------------------------------------------------------
// Buckets
// ---------------------------------------------------------------------------------------

/// A ring slot of memory samples: the smallest, largest and last `bytes` recorded into it.
#[derive(Debug)]
pub struct MemoryBucket {
    min: AtomicU64,
    max: AtomicU64,
    last: AtomicU64,
}

impl MemoryBucket {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// No samples.
    pub const fn new() -> Self {
        Self { min: AtomicU64::new(u64::MAX), max: AtomicU64::new(0), last: AtomicU64::new(0) }
    }

    /// Takes `bytes` into the minimum, the maximum and the last value.
    #[inline]
    pub fn observe(&self, bytes: u64) {
        self.min.fetch_min(bytes, Relaxed);
        self.max.fetch_max(bytes, Relaxed);
        self.last.store(bytes, Relaxed);
    }

    /// `(min, max, last)`, or `None` if the bucket holds no sample. A sample being
    /// recorded concurrently may be seen in part (its minimum before its maximum).
    pub fn get(&self) -> Option<(u64, u64, u64)> {
        let (min, max) = (self.min.load(Relaxed), self.max.load(Relaxed));
        (min <= max).then(|| (min, max, self.last.load(Relaxed)))
    }
}

impl Default for MemoryBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl Sealed for MemoryBucket {}
impl SlotData for MemoryBucket {
    #[allow(clippy::declare_interior_mutable_const)] // See `SlotData::EMPTY`.
    const EMPTY: Self = MemoryBucket::new();
    fn reset(&self) {
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
        self.last.store(0, Relaxed);
    }
    #[cfg(feature = "postcard")]
    const KIND: &'static str = "memory";
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64)) {
        out(self.min.load(Relaxed));
        out(self.max.load(Relaxed));
        out(self.last.load(Relaxed));
    }
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let (min, max, last) = (words.next()?, words.next()?, words.next()?);
        let empty = (min, max, last) == (u64::MAX, 0, 0);
        let consistent = min <= last && last <= max;
        if !(empty || consistent) {
            return Err(crate::snapshot::SnapshotError::Corrupt);
        }
        if apply {
            self.min.store(min, Relaxed);
            self.max.store(max, Relaxed);
            self.last.store(last, Relaxed);
        }
        Ok(())
    }
}

/// One bucket as read back by [`MemoryHistory::for_each_bucket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bucket {
    /// The bucket's start, in the caller's milliseconds.
    pub start_ms: u64,
    /// The smallest sample (the lower envelope).
    pub min: u64,
    /// The largest sample.
    pub max: u64,
    /// The last sample recorded.
    pub last: u64,
    /// Whether the bucket's time is over (it is older than the one a read at `now_ms`
    /// falls into). Statistics use closed buckets only.
    pub closed: bool,
}

/// Which ring of a [`MemoryHistory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// The short ring of short buckets (default: 2 hours of 30 s).
    Fine,
    /// The long ring of long buckets (default: 2 days of 10 min).
    Coarse,
}

impl Resolution {
    /// `fine` or `coarse`.
    pub const fn label(self) -> &'static str {
        match self {
            Resolution::Fine => "fine",
            Resolution::Coarse => "coarse",
        }
    }
}

/// The latest figures of a signal, for dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
    /// The last sample recorded (into the newest fine bucket).
    pub last: u64,
    /// The newest closed fine bucket's minimum: the current lower envelope (the newest
    /// bucket's, if none is closed yet).
    pub floor: u64,
    /// The smallest sample in the fine ring.
    pub min: u64,
    /// The largest sample in the fine ring.
    pub max: u64,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a signal was refused by a [`MemoryExport`] (or by [`MemoryHistory::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MemoryError {
    /// The name is empty, longer than [`MAX_SIGNAL_NAME_LEN`] bytes, holds a control
    /// character, or is the overflow label value `"__overflow__"`.
    InvalidName(&'static str),
    /// A threshold of this signal's [`LeakRules`] is out of range.
    InvalidRules(&'static str),
    /// A signal of this name is already in the export set.
    DuplicateName(&'static str),
    /// The export set is full; this signal was not added.
    ExportFull(&'static str),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(name) => write!(f, "memory signal name {name:?} is not a valid label value"),
            Self::InvalidRules(name) => write!(f, "a leak rule of memory signal {name:?} is out of range"),
            Self::DuplicateName(name) => write!(f, "a memory signal named {name:?} is already exported"),
            Self::ExportFull(name) => write!(f, "memory export set is full; cannot add {name:?}"),
        }
    }
}

impl core::error::Error for MemoryError {}

// ---------------------------------------------------------------------------------------
// The history
// ---------------------------------------------------------------------------------------

/// The memory history of one signal: two rings of [`MemoryBucket`]s and the leak rules.
/// See the [module docs](self) for the verdict and its defaults.
///
/// `FINE` buckets of `FINE_MS` (default 241 × 30 s: the last 2 hours in closed buckets,
/// plus the one filling) and `COARSE` buckets of `COARSE_MS` (default 289 × 10 min: the
/// last 2 days).
///
/// ```
/// use plimsoll_core::{MemoryHistory, Verdict};
/// static RSS: MemoryHistory = MemoryHistory::new("rss");
///
/// const MIB: u64 = 1 << 20;
/// // Two hours of samples every 10 s, leaking 10 MiB an hour from 100 MiB.
/// for second in (0..7_200).step_by(10) {
///     RSS.record(second * 1_000, 100 * MIB + second * 10 * MIB / 3_600);
/// }
/// let now_ms = 7_200_000;
/// let assessment = RSS.assess(now_ms, Some(512 * MIB));
/// assert_eq!(assessment.verdict, Verdict::LeakSuspected);
/// let per_hour = assessment.slope_bytes_per_hour().unwrap() / MIB as f64;
/// assert!((per_hour - 10.0).abs() < 0.1, "{per_hour}");
/// let hours_left = assessment.eta_seconds.unwrap() / 3_600.0;
/// assert!((hours_left - 39.2).abs() < 0.2, "{hours_left}"); // (512 - 120) MiB at 10 MiB/h
/// ```
pub struct MemoryHistory<
    const FINE: usize = 241,
    const FINE_MS: u64 = 30_000,
    const COARSE: usize = 289,
    const COARSE_MS: u64 = 600_000,
> {
    name: &'static str,
    rules: LeakRules,
    fine: Window<MemoryBucket, FINE, FINE_MS>,
    coarse: Window<MemoryBucket, COARSE, COARSE_MS>,
    /// The time of the first sample, plus one (0: none yet).
    first_ms: AtomicU64,
}

impl<const FINE: usize, const FINE_MS: u64, const COARSE: usize, const COARSE_MS: u64> fmt::Debug
    for MemoryHistory<FINE, FINE_MS, COARSE, COARSE_MS>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHistory")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .field("first_sample_ms", &self.first_sample_ms())
            .field("late_samples", &self.late_samples())
            .finish_non_exhaustive()
    }
}

impl<const FINE: usize, const FINE_MS: u64, const COARSE: usize, const COARSE_MS: u64>
    MemoryHistory<FINE, FINE_MS, COARSE, COARSE_MS>
{
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty history of the signal `name` (the `signal` label value) with
    /// [`LeakRules::DEFAULT`]. Checked by [`validate`](Self::validate) when exported.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            rules: LeakRules::DEFAULT,
            fine: Window::new(),
            coarse: Window::new(),
            first_ms: AtomicU64::new(0),
        }
    }

    /// Replaces the leak rules.
    pub const fn rules(mut self, rules: LeakRules) -> Self {
        self.rules = rules;
        self
    }

    /// The signal's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The leak rules.
    pub const fn leak_rules(&self) -> LeakRules {
        self.rules
    }

    /// Checks the name and the rules.
    pub fn validate(&self) -> Result<(), MemoryError> {
        let name = self.name;
        let valid_name = !name.is_empty()
            && name.len() <= MAX_SIGNAL_NAME_LEN
            && name != crate::OVERFLOW_LABEL_VALUE
            && !name.chars().any(char::is_control);
        if !valid_name {
            return Err(MemoryError::InvalidName(name));
        }
        self.rules.validate(name)
    }

    /// Records a sample of `bytes` at `now_ms` into both rings.
    #[inline]
    pub fn record(&self, now_ms: u64, bytes: u64) {
        if self.first_ms.load(Relaxed) == 0 {
            let _ = self.first_ms.compare_exchange(0, now_ms.min(crate::MAX_TIME_MS) + 1, Relaxed, Relaxed);
        }
        self.fine.slot_at(now_ms, |_, _| {}).observe(bytes);
        self.coarse.slot_at(now_ms, |_, _| {}).observe(bytes);
    }

    /// The time of the first sample, `None` before it.
    pub fn first_sample_ms(&self) -> Option<u64> {
        self.first_ms.load(Relaxed).checked_sub(1)
    }

    /// Samples recorded into a newer bucket than their time (the clock went backwards),
    /// in the fine and the coarse ring.
    pub fn late_samples(&self) -> (u64, u64) {
        (self.fine.late_events(), self.coarse.late_events())
    }

    /// Calls `each` for every non-empty bucket of a ring within the last `span_ms` at
    /// `now_ms` (whole buckets before the one `now_ms` falls into, plus that one, as in a
    /// [`Window`]), oldest first.
    pub fn for_each_bucket(&self, now_ms: u64, resolution: Resolution, span_ms: u64, each: impl FnMut(Bucket)) {
        match resolution {
            Resolution::Fine => buckets_in_order(&self.fine, now_ms, span_ms, each),
            Resolution::Coarse => buckets_in_order(&self.coarse, now_ms, span_ms, each),
        }
    }

    /// The last sample, the current floor and the extremes of the fine ring; `None` if it
    /// holds no sample.
    pub fn summary(&self, now_ms: u64) -> Option<Summary> {
        let end = self.fine.end_epoch(now_ms);
        // (epoch, min, last) of the newest bucket and of the newest closed one.
        let (mut newest, mut newest_closed) = (None::<(u64, u64, u64)>, None::<(u64, u64, u64)>);
        let (mut min, mut max) = (u64::MAX, 0);
        self.fine.for_each_in(now_ms, u64::MAX, |epoch, bucket| {
            let Some((lo, hi, last)) = bucket.get().filter(|_| epoch <= end) else { return };
            (min, max) = (min.min(lo), max.max(hi));
            if newest.is_none_or(|(e, ..)| epoch > e) {
                newest = Some((epoch, lo, last));
            }
            if epoch < end && newest_closed.is_none_or(|(e, ..)| epoch > e) {
                newest_closed = Some((epoch, lo, last));
            }
        });
        let (_, newest_min, last) = newest?;
        let floor = newest_closed.map_or(newest_min, |(_, lo, _)| lo);
        Some(Summary { last, floor, min, max })
    }

    /// The verdict on one ring's lower envelope over the last `span_ms` at `now_ms` (its
    /// closed buckets after the warm-up), against `limit_bytes` if given.
    pub fn assess_span(
        &self,
        now_ms: u64,
        resolution: Resolution,
        span_ms: u64,
        limit_bytes: Option<u64>,
    ) -> Assessment {
        let from_ms = self.first_sample_ms().map_or(u64::MAX, |first| first.saturating_add(self.rules.warm_up_ms));
        let assessment = match resolution {
            Resolution::Fine => assess_ring(&self.fine, now_ms, span_ms, from_ms, &self.rules, limit_bytes),
            Resolution::Coarse => assess_ring(&self.coarse, now_ms, span_ms, from_ms, &self.rules, limit_bytes),
        };
        Assessment { resolution: Some(resolution), ..assessment }
    }

    /// The verdict on both rings over their whole length, the more severe one (the fine
    /// ring's on a tie); see the [module docs](self).
    pub fn assess(&self, now_ms: u64, limit_bytes: Option<u64>) -> Assessment {
        let fine = self.assess_span(now_ms, Resolution::Fine, u64::MAX, limit_bytes);
        let coarse = self.assess_span(now_ms, Resolution::Coarse, u64::MAX, limit_bytes);
        if coarse.verdict > fine.verdict { coarse } else { fine }
    }
}

/// Calls `each` for the ring's non-empty buckets in the window, oldest first.
fn buckets_in_order<const S: usize, const B: u64>(
    ring: &Window<MemoryBucket, S, B>,
    now_ms: u64,
    span_ms: u64,
    each: impl FnMut(Bucket),
) {
    let end = ring.end_epoch(now_ms);
    // Indexed by the epoch's distance from the oldest epoch the window can hold.
    let mut in_order: [Option<Bucket>; S] = [None; S];
    ring.for_each_in(now_ms, span_ms, |epoch, bucket| {
        // A recorder may open a newer bucket meanwhile; it is not part of this read.
        if let (Some((min, max, last)), true) = (bucket.get(), epoch <= end) {
            let closed = epoch < end;
            in_order[(epoch + (S as u64 - 1) - end) as usize] =
                Some(Bucket { start_ms: epoch * B, min, max, last, closed });
        }
    });
    in_order.into_iter().flatten().for_each(each);
}

/// The verdict on a ring's closed buckets starting at or after `from_ms`. Not inlined, so
/// the two rings' envelopes never share one stack frame.
#[inline(never)]
fn assess_ring<const S: usize, const B: u64>(
    ring: &Window<MemoryBucket, S, B>,
    now_ms: u64,
    span_ms: u64,
    from_ms: u64,
    rules: &LeakRules,
    limit_bytes: Option<u64>,
) -> Assessment {
    // The minima by the epoch's distance from the oldest epoch the window can hold, in
    // place of the points (NaN: no closed bucket there), then packed in time order.
    let mut points = [(f64::NAN, f64::NAN); S];
    let end = ring.end_epoch(now_ms);
    let oldest = end.saturating_sub(S as u64 - 1);
    ring.for_each_in(now_ms, span_ms, |epoch, bucket| {
        // A recorder may open a newer bucket meanwhile; it is not part of this read.
        match bucket.get() {
            Some((min, ..)) if epoch < end && epoch >= oldest && epoch * B >= from_ms => {
                points[(epoch - oldest) as usize] = (epoch as f64, min as f64);
            }
            _ => {}
        }
    });
    let mut len = 0;
    for i in 0..S {
        if !points[i].0.is_nan() {
            points[len] = points[i];
            len += 1;
        }
    }
    // x: the bucket's middle, in seconds since the oldest bucket's start.
    let origin = points[..len].first().map_or(0, |p| p.0 as u64);
    for point in &mut points[..len] {
        point.0 = (point.0 as u64 - origin) as f64 * (B as f64 / 1_000.0) + B as f64 / 2_000.0;
    }
    Assessment::of(&points[..len], origin * B, rules, limit_bytes)
}
