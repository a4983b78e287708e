//! Slow-span tracking: per-name duration histograms and the slowest recent spans.
//!
//! [`SlowSpans`] times named operations (spans) without a tracing pipeline: each span's
//! duration goes into a histogram per name, exported as
//! `plimsoll_span_duration_seconds{span="..."}`, and the slowest spans of the current and
//! the previous time window are kept, with their start time and trace id, in a fixed set:
//! what tail-based sampling would keep, in fixed memory, for a status page or a log line.
//!
//! Use it for the few dozen operations whose latency matters (a route, a query, a job
//! step). It is not a tracer: it keeps no parent/child links, no attributes and no spans
//! other than the slowest. To measure one latency without names, use a
//! [`LatencyHistogram`] or a [`LatencyWindow`](crate::LatencyWindow).

use crate::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};
use crate::family::Exposable;
use crate::{Counter, Family, LatencyHistogram, OVERFLOW_LABEL_VALUE, RegisterError, Registry, Unlabelled};
use core::cell::RefCell;
use critical_section::Mutex;

mod slowest;
#[cfg(test)]
mod tests;

use slowest::Slowest;
pub use slowest::{MAX_SPAN_NAME_LEN, SlowSpan};

/// How [`SlowSpans`] groups spans in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlowSpansConfig {
    /// The length of a window of slowest spans, in ms; 0 is taken as 1.
    pub window_ms: u64,
}

impl SlowSpansConfig {
    /// One-minute windows.
    pub const DEFAULT: Self = Self { window_ms: 60_000 };
}

impl Default for SlowSpansConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The current window's epoch and slowest sets, guarded by the critical section.
#[derive(Debug)]
struct Sets<const N: usize> {
    epoch: u64,
    current: Slowest<N>,
    previous: Slowest<N>,
}

/// Span durations for up to `NAMES` span names, and the `SLOWEST` slowest spans of the
/// current and of the previous time window.
///
/// ```
/// use plimsoll_core::span::{SlowSpans, SlowSpansConfig};
/// static SPANS: SlowSpans = SlowSpans::new(SlowSpansConfig::DEFAULT);
///
/// // A span of 350 ms that started at t = 10 s and ended at t = 10.35 s.
/// SPANS.record("GET /users/:id", 10_000, 350_000, Some([7; 16]), 10_350);
/// SPANS.record("GET /health", 10_100, 900, None, 10_101);
/// let mut slowest = Vec::new();
/// SPANS.for_each_slowest(11_000, |span| slowest.push((span.name().to_owned(), span.duration_us())));
/// assert_eq!(slowest, [("GET /users/:id".to_owned(), 350_000), ("GET /health".to_owned(), 900)]);
/// ```
///
/// # Names
///
/// Each name gets a series of `plimsoll_span_duration_seconds`, a
/// [`Family`] of [`LatencyHistogram`]s (microsecond to 128-second spans within 2.2 %;
/// longer ones fall into `+Inf`). Once `NAMES` names have a series, or for a name longer
/// than [`MAX_SPAN_NAME_LEN`] bytes (or literally `__overflow__`), the span goes into the
/// family's `__overflow__` series and is counted in `plimsoll_span_name_overflow_total`
/// (and, per reason, in the registry's `plimsoll_series_overflow_total` and
/// `plimsoll_label_value_rejected_total`).
/// The slowest sets keep every name as given, cut to [`MAX_SPAN_NAME_LEN`] bytes.
///
/// # Windows of slowest spans
///
/// Time is cut into windows of `window_ms` (aligned to multiples of it, from the caller's
/// time origin), by the `now_ms` passed to [`record`](Self::record) and
/// [`for_each_slowest`](Self::for_each_slowest), not by the spans' start times. Each window
/// keeps its `SLOWEST` slowest spans; a span enters a full set only if it is strictly slower
/// than the set's fastest, which it then replaces. When time reaches the next window, the
/// current set becomes the previous one and a new set starts; after a gap of more than one
/// window, both start empty. Reports show the previous and the current set together,
/// slowest first. A span recorded with a time before the newest window seen (a clock that
/// went backwards, or a recorder that read the clock before another crossed into a new
/// window) goes into the newest window, so nothing is lost or counted twice.
///
/// # Concurrency and cost
///
/// Recording is lock-free for a span that cannot enter the current set: a family lookup, a
/// relaxed increment of the span counter, the histogram's update, and two loads comparing
/// the duration with the current set's fastest. A span slow enough to enter, or the first
/// of a window, takes a short critical section that inserts it in `O(SLOWEST)`. Reading
/// copies both sets inside the critical section and calls the closure outside it.
///
/// The default `SlowSpans<16, 10>` is 63,224 bytes on a 64-bit target
/// ([`SlowSpans::FOOTPRINT`]): 60,944 for the histogram family (16 names and the overflow
/// series, 3.6 kB each), and 208 per slowest span (104 bytes, for the current and the
/// previous window).
///
/// # Exported families
///
/// | family | type | labels |
/// |---|---|---|
/// | `plimsoll_span_duration_seconds` | histogram | `span` |
/// | `plimsoll_spans_total` | counter | none |
/// | `plimsoll_span_name_overflow_total` | counter | none |
///
/// A `SlowSpans` owns its families, so a registry holds one `SlowSpans`.
pub struct SlowSpans<const NAMES: usize = 16, const SLOWEST: usize = 10> {
    window_ms: u64,
    durations: Family<LatencyHistogram, 1, NAMES, MAX_SPAN_NAME_LEN>,
    recorded: Unlabelled<Counter>,
    name_overflow: Unlabelled<Counter>,
    /// The newest window's epoch, mirrored from `sets` for the lock-free check.
    newest_epoch: AtomicU64,
    /// The newest window's epoch in the high 32 bits and its set's floor in microseconds,
    /// capped at `u32::MAX`, in the low 32 bits (0 while the set has room): both in one
    /// word, so that a floor is never compared under another window's epoch.
    floor: AtomicU64,
    sets: Mutex<RefCell<Sets<SLOWEST>>>,
}

impl<const NAMES: usize, const SLOWEST: usize> core::fmt::Debug for SlowSpans<NAMES, SLOWEST> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlowSpans")
            .field("window_ms", &self.window_ms)
            .field("names", &NAMES)
            .field("slowest", &SLOWEST)
            .field("recorded", &self.recorded.get())
            .finish_non_exhaustive()
    }
}

impl<const NAMES: usize, const SLOWEST: usize> SlowSpans<NAMES, SLOWEST> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// No spans yet.
    pub const fn new(config: SlowSpansConfig) -> Self {
        const { assert!(SLOWEST > 0, "SlowSpans keeps at least one slowest span per window") };
        let window_ms = if config.window_ms == 0 { 1 } else { config.window_ms };
        Self {
            window_ms,
            durations: Family::new(
                "plimsoll_span_duration_seconds",
                "Duration of spans, by span name; names beyond the name table go to __overflow__.",
                ["span"],
            )
            .unit("seconds"),
            recorded: Unlabelled::new("plimsoll_spans", "Spans recorded."),
            name_overflow: Unlabelled::new(
                "plimsoll_span_name_overflow",
                "Spans whose name got no series of its own (the name table was full, or the name too long).",
            ),
            newest_epoch: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            sets: Mutex::new(RefCell::new(Sets { epoch: 0, current: Slowest::EMPTY, previous: Slowest::EMPTY })),
        }
    }

    /// Records a span named `name` that started at `start_ms` and took `duration_us`
    /// microseconds, in the window of `now_ms` (usually the span's end). Durations are whole
    /// microseconds: an integer is never NaN or negative, and the histograms resolve no
    /// finer.
    pub fn record(&self, name: &str, start_ms: u64, duration_us: u64, trace_id: Option<[u8; 16]>, now_ms: u64) {
        self.recorded.inc();
        let histogram = self.durations.with_label_values(&[name]);
        // The sentinel value names the overflow series, so this returns it without counting.
        if core::ptr::eq(histogram, self.durations.with_label_values(&[OVERFLOW_LABEL_VALUE])) {
            self.name_overflow.inc();
        }
        histogram.record(duration_us as f64 / 1e6);

        let epoch = now_ms / self.window_ms;
        if self.cannot_enter(epoch, duration_us) {
            return;
        }
        critical_section::with(|cs| {
            let mut sets = self.sets.borrow_ref_mut(cs);
            self.roll(&mut sets, epoch);
            sets.current.insert(SlowSpan::new(name, start_ms, duration_us, trace_id));
            self.publish_floor(&sets);
        });
    }

    /// Calls `each` for the slowest spans of the window of `now_ms` and of the window
    /// before it, slowest first (among equal durations, the previous window's first, then
    /// in the order recorded).
    pub fn for_each_slowest(&self, now_ms: u64, mut each: impl FnMut(&SlowSpan)) {
        let (current, previous) = critical_section::with(|cs| {
            let mut sets = self.sets.borrow_ref_mut(cs);
            self.roll(&mut sets, now_ms / self.window_ms);
            (sets.current, sets.previous)
        });
        let (mut current, mut previous) = (current.as_slice().iter().peekable(), previous.as_slice().iter().peekable());
        loop {
            let from_current = match (current.peek(), previous.peek()) {
                (Some(c), Some(p)) => c.duration_us() > p.duration_us(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return,
            };
            let next = if from_current { current.next() } else { previous.next() };
            if let Some(span) = next {
                each(span);
            }
        }
    }

    /// Spans recorded.
    pub fn recorded(&self) -> u64 {
        self.recorded.get()
    }

    /// Spans whose name went to the overflow series.
    pub fn name_overflow(&self) -> u64 {
        self.name_overflow.get()
    }

    /// The duration histogram of `name`, for quantiles (the overflow series for a name that
    /// cannot have its own). Like recording, it gives a new name a series if there is room.
    pub fn durations(&self, name: &str) -> &LatencyHistogram {
        self.durations.with_label_values(&[name])
    }

    /// Registers the 3 families with `registry`. Fails without registering any if the
    /// registry has no room for all of them; a clash with another family's name fails at
    /// that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 3] = [&self.durations, &self.recorded, &self.name_overflow];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Whether a span of `duration_us` in window `epoch` is too fast for the slowest set:
    /// lock-free, and never wrong in that direction. The floor word was published for the
    /// window of its 32-bit tag and says that window's set was full with a fastest span
    /// slower than `duration_us`, so a span of that window would not enter it. A span of a
    /// later window fails `epoch <= newest` and takes the critical section; a span of an
    /// earlier window would go into the newest set anyway. Only spans recorded concurrently
    /// 2^32 windows apart, whose tags collide, could be misjudged.
    #[inline]
    fn cannot_enter(&self, epoch: u64, duration_us: u64) -> bool {
        let floor = self.floor.load(Acquire);
        // Acquire pairs with `roll`'s release stores: the newest epoch read after the floor
        // is at least the floor's.
        let newest = self.newest_epoch.load(Acquire);
        floor >> 32 == epoch & 0xFFFF_FFFF && epoch <= newest && duration_us < floor & 0xFFFF_FFFF
    }

    /// Starts a new window if `epoch` is past the current one, inside the critical section.
    fn roll(&self, sets: &mut Sets<SLOWEST>, epoch: u64) {
        if epoch <= sets.epoch {
            return;
        }
        sets.previous = if epoch == sets.epoch + 1 { sets.current } else { Slowest::EMPTY };
        sets.current = Slowest::EMPTY;
        sets.epoch = epoch;
        self.newest_epoch.store(epoch, Release);
        self.publish_floor(sets);
    }

    fn publish_floor(&self, sets: &Sets<SLOWEST>) {
        let floor = sets.current.floor_us().map_or(0, |us| us.min(u64::from(u32::MAX)));
        self.floor.store((sets.epoch & 0xFFFF_FFFF) << 32 | floor, Release);
    }
}
