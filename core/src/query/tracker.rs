//! Per-fingerprint statistics of the slowest queries, in fixed memory.
//!
//! A [`SlowQueryTracker`] is fed every query the application runs: its fingerprint (a
//! `u64` that identifies the normalised statement, computed by the caller), the normalised
//! text and the duration. It counts every query and every slow one (over
//! [`TrackerConfig::slow_threshold_us`]), and keeps detailed statistics for the `K`
//! fingerprints with the most **total time**, chosen by Space-Saving
//! ([`crate::topk`]): a query that takes 2 ms but runs 10,000 times a minute outranks one
//! that takes 2 s once an hour, which is what to optimise first.
//!
//! # What is kept per fingerprint
//!
//! - the estimated total time, an over-estimate by at most `N / K` where `N` is the total
//!   time of all queries ([`SlowQuery::total_us`], [`SlowQuery::error_us`]);
//! - since the fingerprint entered the table (`first_seen_ms`), exactly: its calls, its
//!   slow calls, its time, its longest call and a [`QueryHistogram`] of its durations
//!   (from which the report's median and 99th percentile come);
//! - the first `T` bytes (default 120) of its text, cut at a UTF-8 character boundary,
//!   for display; taken from the call that admitted the fingerprint.
//!
//! While at most `K` distinct fingerprints have been seen, everything is exact. Beyond,
//! a fingerprint that re-enters the table starts its statistics afresh (and inherits the
//! smallest total as the error of its estimate); the totals of the tracker itself
//! (queries, slow queries, total time) are never approximate.
//!
//! # Durations and time
//!
//! Durations are whole **microseconds** (`u64`): point lookups commonly take tens to
//! hundreds of microseconds, and milliseconds would round them to zero and hide the
//! cheap-but-frequent statements from a ranking by total time. Integer input also leaves
//! no NaN or negative duration to reject. A zero duration counts but never evicts a
//! tracked fingerprint ([`crate::topk`]). `now_ms` only dates the statistics: a clock
//! that goes backwards moves neither `last_seen_ms` back nor `first_seen_ms` forward.
//!
//! # Concurrency and cost
//!
//! [`record`](SlowQueryTracker::record) is two relaxed counter increments and one short
//! critical section: a scan of the `K` fingerprints, another on a miss, the statistics
//! update (a histogram record), plus the text copy (`T` bytes) and a statistics reset when
//! a fingerprint enters the table. Reports take the section for the whole copy (two
//! quantile reads of 80 buckets per entry), so that each entry's figures belong together.
//!
//! # Metrics
//!
//! [`register`](SlowQueryTracker::register) adds three families;
//! [`update`](SlowQueryTracker::update) must run before each scrape:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `plimsoll_queries_total` | counter | none |
//! | `plimsoll_query_slow_total` | counter | none |
//! | `plimsoll_query_duration_seconds` | histogram ([`QUERY_BUCKETS`]) | `fingerprint` (16 lowercase hex digits) |
//!
//! The histogram family has one series per tracked fingerprint, at most `K`: its `_count`
//! and `_sum` are the calls and time since the fingerprint entered the table, so
//! `rate()` works and a fingerprint that re-enters reads as a counter reset. A fingerprint
//! that leaves the table leaves the exposition. The fingerprints are a snapshot taken by
//! `update`, the counts are live: a fingerprint replaced between `update` and the scrape
//! shows its successor's fresh counts under its label for that one scrape. The text is
//! kept for reports and never exported: it would make unbounded, unreadable label values.
//!
//! # When not to use it
//!
//! For a handful of known statements, a [`Family`](crate::Family) of histograms labelled by statement is
//! simpler and exact. The tracker covers everything since it was created; it does not
//! answer "what was slow in the last five minutes" (use the exported histogram's `rate()`
//! for that).

use crate::atomic::{AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use crate::family::{Descriptor, Exposable, Fallbacks};
use crate::metric::Metric;
use crate::metric::{MetricKind, Sample};
use crate::sealed::Sealed;
use crate::topk::{Entry, Payload, SpaceSaving, hex16};
use crate::{Counter, Histogram, MAX_LABEL_VALUE_LEN, RegisterError, Registry, Unlabelled};

/// The duration histogram of each tracked fingerprint: schema 2 (quantiles within
/// 8.6 %) over `(2^-13 s, 2^7 s]` ≈ (122 µs, 128 s]; 80 buckets, 688 bytes. Faster
/// queries land in the zero bucket (their quantiles read as 0), slower ones in the
/// overflow bucket.
pub type QueryHistogram = Histogram<2, -13, 80>;

/// The default slow-query threshold: 100 ms, as Laravel Telescope's query watcher and
/// MongoDB's profiler (`slowms`) use.
pub const DEFAULT_SLOW_THRESHOLD_US: u64 = 100_000;

/// The classic `le` bounds of `plimsoll_query_duration_seconds`, in seconds: the powers
/// of two from 2^-10 (≈ 1 ms) to 2^4 (16 s). Powers of two are bucket edges of the
/// histogram, so each is exported exactly as written and its cumulative count is exact.
pub const QUERY_BUCKETS: &[f64] = &[
    0.0009765625,
    0.001953125,
    0.00390625,
    0.0078125,
    0.015625,
    0.03125,
    0.0625,
    0.125,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
];

const DURATION_NAME: &str = "plimsoll_query_duration_seconds";
const DURATION_HELP: &str = "Durations of the queries of each tracked fingerprint (the top fingerprints by total \
                             time), since the fingerprint entered the tracker.";
const DURATION_LABELS: [&str; 1] = ["fingerprint"];

/// A [`SlowQueryTracker`]'s settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct TrackerConfig {
    /// A query is slow when it takes longer than this, in microseconds (default
    /// [`DEFAULT_SLOW_THRESHOLD_US`], 100 ms).
    pub slow_threshold_us: u64,
}

impl TrackerConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self { slow_threshold_us: DEFAULT_SLOW_THRESHOLD_US };

    /// Sets the slow-query threshold, in microseconds (0 makes every query that takes any
    /// time slow).
    pub const fn with_slow_threshold_us(mut self, threshold_us: u64) -> Self {
        self.slow_threshold_us = threshold_us;
        self
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The order of a [`SlowQueryTracker::top`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Order {
    /// Largest estimated total time first.
    TotalTime,
    /// Most recently seen first.
    LastSeen,
}

/// One tracked fingerprint, as a report reads it. Times are in microseconds, instants in
/// the caller's milliseconds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SlowQuery<const T: usize = 120> {
    /// The fingerprint.
    pub fingerprint: u64,
    /// Estimated total time: never below the exact total, above it by at most `error_us`.
    pub total_us: u64,
    /// How much `total_us` may over-estimate (0 while the tracker has never been full).
    pub error_us: u64,
    /// Calls since `first_seen_ms`.
    pub calls: u64,
    /// Calls over the slow-query threshold since `first_seen_ms`.
    pub slow_calls: u64,
    /// The longest call since `first_seen_ms`.
    pub max_us: u64,
    /// Median duration, from the histogram (within 8.6 %; 0 at or below 122 µs).
    pub p50_us: u64,
    /// 99th percentile duration, from the histogram (same accuracy; at most `max_us`).
    pub p99_us: u64,
    /// When the fingerprint entered the table (the earliest `now_ms` it was recorded with).
    pub first_seen_ms: u64,
    /// The latest `now_ms` the fingerprint was recorded with.
    pub last_seen_ms: u64,
    text: [u8; T],
    text_len: usize,
}

impl<const T: usize> SlowQuery<T> {
    /// An empty report entry, to fill an output array with.
    pub const EMPTY: Self = Self {
        fingerprint: 0,
        total_us: 0,
        error_us: 0,
        calls: 0,
        slow_calls: 0,
        max_us: 0,
        p50_us: 0,
        p99_us: 0,
        first_seen_ms: 0,
        last_seen_ms: 0,
        text: [0; T],
        text_len: 0,
    };

    /// The first `T` bytes of the normalised text, cut at a character boundary.
    pub fn text(&self) -> &str {
        core::str::from_utf8(&self.text[..self.text_len.min(T)]).unwrap_or("")
    }

    /// The exact time since `first_seen_ms`: `total_us - error_us`.
    pub const fn tracked_us(&self) -> u64 {
        self.total_us.saturating_sub(self.error_us)
    }

    /// The mean duration since `first_seen_ms` (0 without calls).
    pub const fn mean_us(&self) -> u64 {
        match self.calls {
            0 => 0,
            calls => self.tracked_us() / calls,
        }
    }
}

impl<const T: usize> Default for SlowQuery<T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const T: usize> core::fmt::Debug for SlowQuery<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlowQuery")
            .field("fingerprint", &self.fingerprint)
            .field("total_us", &self.total_us)
            .field("error_us", &self.error_us)
            .field("calls", &self.calls)
            .field("slow_calls", &self.slow_calls)
            .field("max_us", &self.max_us)
            .field("p50_us", &self.p50_us)
            .field("p99_us", &self.p99_us)
            .field("first_seen_ms", &self.first_seen_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .field("text", &self.text())
            .finish()
    }
}

/// The statistics of one tracked fingerprint. Written only inside the table's critical
/// section (so plain loads and stores suffice); atomics because the exporter reads the
/// histogram outside it.
#[derive(Debug)]
struct QueryStats<const T: usize> {
    calls: AtomicU64,
    slow_calls: AtomicU64,
    max_us: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
    text_len: AtomicU64,
    text: [AtomicU8; T],
    histogram: QueryHistogram,
}

impl<const T: usize> Payload for QueryStats<T> {
    #[allow(clippy::declare_interior_mutable_const)] // See `Payload::ZERO`.
    const ZERO: Self = Self {
        calls: AtomicU64::new(0),
        slow_calls: AtomicU64::new(0),
        max_us: AtomicU64::new(0),
        first_ms: AtomicU64::new(0),
        last_ms: AtomicU64::new(0),
        text_len: AtomicU64::new(0),
        text: [const { AtomicU8::new(0) }; T],
        histogram: QueryHistogram::new(),
    };

    fn reset(&self) {
        // The text needs no clearing: its length is reset and it is rewritten on the next
        // call.
        for counter in [&self.calls, &self.slow_calls, &self.max_us, &self.first_ms, &self.last_ms, &self.text_len] {
            counter.store(0, Relaxed);
        }
        self.histogram.reset();
    }
}

impl<const T: usize> QueryStats<T> {
    fn record(&self, text: &str, duration_us: u64, slow: bool, now_ms: u64) {
        let calls = self.calls.load(Relaxed);
        if calls == 0 {
            for (stored, byte) in self.text.iter().zip(text.bytes()) {
                stored.store(byte, Relaxed);
            }
            self.text_len.store(text.len() as u64, Relaxed);
            self.first_ms.store(now_ms, Relaxed);
        }
        self.calls.store(calls.saturating_add(1), Relaxed);
        if slow {
            self.slow_calls.store(self.slow_calls.load(Relaxed).saturating_add(1), Relaxed);
        }
        self.max_us.store(self.max_us.load(Relaxed).max(duration_us), Relaxed);
        self.first_ms.store(self.first_ms.load(Relaxed).min(now_ms), Relaxed);
        self.last_ms.store(self.last_ms.load(Relaxed).max(now_ms), Relaxed);
        self.histogram.record(duration_us as f64 / 1e6);
    }

    fn report(&self, entry: &Entry) -> SlowQuery<T> {
        let max_us = self.max_us.load(Relaxed);
        // The estimate of the overflow bucket is infinite: the longest call bounds it.
        let quantile_us =
            |q| self.histogram.quantile(q).map_or(0, |seconds| ((seconds * 1e6 + 0.5) as u64).min(max_us));
        let mut text = [0; T];
        let text_len = (self.text_len.load(Relaxed) as usize).min(T);
        for (out, stored) in text.iter_mut().zip(&self.text[..text_len]) {
            *out = stored.load(Relaxed);
        }
        SlowQuery {
            fingerprint: entry.key,
            total_us: entry.count,
            error_us: entry.error,
            calls: self.calls.load(Relaxed),
            slow_calls: self.slow_calls.load(Relaxed),
            max_us,
            p50_us: quantile_us(0.5),
            p99_us: quantile_us(0.99),
            first_seen_ms: self.first_ms.load(Relaxed),
            last_seen_ms: self.last_ms.load(Relaxed),
            text,
            text_len,
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends at a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    // A UTF-8 character is at most 4 bytes, so this steps back at most 3 times.
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Query counts and the top `K` fingerprints by total time, with their statistics and the
/// first `T` bytes of their text. See the [module docs](self).
///
/// Its size is fixed: `SlowQueryTracker::<32, 120>::FOOTPRINT` is 28,600 bytes on a 64-bit
/// target: 888 bytes per fingerprint (statistics, counter, exported label) plus 184.
///
/// ```
/// use plimsoll_core::query::tracker::{Order, SlowQuery, SlowQueryTracker};
/// static QUERIES: SlowQueryTracker = SlowQueryTracker::new();
///
/// // After each query: fingerprint, normalised text, duration (µs), now (ms).
/// QUERIES.record(0x1F, "SELECT * FROM users WHERE id = ?", 450, 1_000);
/// let slow = QUERIES.record(0x2A, "UPDATE orders SET state = ? WHERE id = ?", 180_000, 1_002);
/// assert!(slow);
///
/// let mut report = [SlowQuery::EMPTY; 10];
/// let n = QUERIES.top(Order::TotalTime, &mut report);
/// assert_eq!(n, 2);
/// assert_eq!(report[0].text(), "UPDATE orders SET state = ? WHERE id = ?");
/// assert_eq!((report[0].calls, report[0].slow_calls, report[0].max_us), (1, 1, 180_000));
/// ```
pub struct SlowQueryTracker<const K: usize = 32, const T: usize = 120> {
    config: TrackerConfig,
    table: SpaceSaving<QueryStats<T>, K>,
    queries: Unlabelled<Counter>,
    slow: Unlabelled<Counter>,
    /// The fingerprint of each table counter at the last `update`, for the labels.
    exported: [AtomicU64; K],
    exported_len: AtomicU64,
}

impl<const K: usize, const T: usize> core::fmt::Debug for SlowQueryTracker<K, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlowQueryTracker")
            .field("config", &self.config)
            .field("queries", &self.queries())
            .field("slow_queries", &self.slow_queries())
            .field("tracked", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl<const K: usize, const T: usize> Default for SlowQueryTracker<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize, const T: usize> SlowQueryTracker<K, T> {
    /// Size in bytes, the exported families included.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A tracker with the default configuration ([`TrackerConfig::DEFAULT`]).
    pub const fn new() -> Self {
        Self::with_config(TrackerConfig::DEFAULT)
    }

    /// A tracker with `config`.
    pub const fn with_config(config: TrackerConfig) -> Self {
        Self {
            config,
            table: SpaceSaving::new(),
            queries: Unlabelled::new("plimsoll_queries", "Queries recorded by the slow-query tracker."),
            slow: Unlabelled::new(
                "plimsoll_query_slow",
                "Queries that took longer than the slow-query threshold (100 ms by default).",
            ),
            exported: [const { AtomicU64::new(0) }; K],
            exported_len: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> TrackerConfig {
        self.config
    }

    /// Records one query: its `fingerprint`, its normalised `text` (only the first `T`
    /// bytes are kept, cut at a character boundary), its duration in microseconds and the
    /// caller's time in milliseconds. Returns whether it was slow (longer than the
    /// threshold), so that the caller may log it.
    pub fn record(&self, fingerprint: u64, text: &str, duration_us: u64, now_ms: u64) -> bool {
        self.queries.inc();
        let slow = duration_us > self.config.slow_threshold_us;
        if slow {
            self.slow.inc();
        }
        let text = prefix(text, T);
        self.table.add_with(fingerprint, duration_us, |stats| stats.record(text, duration_us, slow, now_ms));
        slow
    }

    /// Fills `out` with the tracked fingerprints in `order`, as many as fit; returns how
    /// many were written (at most `K`).
    pub fn top(&self, order: Order, out: &mut [SlowQuery<T>]) -> usize {
        let read = |entry: &Entry, stats: &QueryStats<T>| stats.report(entry);
        match order {
            Order::TotalTime => self.table.top_with(out, |entry, _| entry.count, read),
            Order::LastSeen => self.table.top_with(out, |_, stats| stats.last_ms.load(Relaxed), read),
        }
    }

    /// Queries recorded.
    pub fn queries(&self) -> u64 {
        self.queries.get()
    }

    /// Queries longer than the threshold.
    pub fn slow_queries(&self) -> u64 {
        self.slow.get()
    }

    /// The total time of every query recorded, in microseconds (saturating).
    pub fn total_time_us(&self) -> u64 {
        self.table.total()
    }

    /// Registers `plimsoll_queries_total`, `plimsoll_query_slow_total` and
    /// `plimsoll_query_duration_seconds` with `registry`. Fails without registering any if
    /// the registry has no room for all three, or if it already holds a tracker's
    /// families.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 3] = [&self.queries, &self.slow, self];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Takes the snapshot of tracked fingerprints that the next scrapes label the
    /// histogram series with. Call it before each scrape.
    pub fn update(&self) {
        let mut keys = [0; K];
        let len = self.table.keys(&mut keys);
        for (exported, key) in self.exported.iter().zip(&keys[..len]) {
            exported.store(*key, Relaxed);
        }
        // Release pairs with the acquire load in `sample`: a renderer that sees the new
        // length sees the fingerprints stored before it.
        self.exported_len.store(len as u64, Release);
    }

    fn exported_len(&self) -> usize {
        self.exported_len.load(Acquire) as usize
    }
}

impl<const K: usize, const T: usize> Sealed for SlowQueryTracker<K, T> {}

/// The tracker is itself the `plimsoll_query_duration_seconds` family: series `i` is the
/// histogram of table counter `i`.
impl<const K: usize, const T: usize> Exposable for SlowQueryTracker<K, T> {
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            name: DURATION_NAME,
            help: DURATION_HELP,
            unit: Some("seconds"),
            kind: MetricKind::Histogram,
            label_names: &DURATION_LABELS,
            buckets: QUERY_BUCKETS,
            native_buckets: <QueryHistogram as crate::metric::Metric>::NATIVE_BUCKETS,
            exemplars: false,
        }
    }

    fn slots(&self) -> usize {
        K
    }

    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        if slot >= self.exported_len() {
            return None;
        }
        self.table.payload(slot).map(|stats| Sample::Histogram(&stats.histogram))
    }

    fn label_value_capacity(&self) -> usize {
        16
    }

    fn label_value(&self, slot: usize, _label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        let fingerprint = self.exported.get(slot).map_or(0, |f| f.load(Relaxed));
        out[..16].copy_from_slice(&hex16(fingerprint));
        16
    }

    fn fallbacks(&self) -> Fallbacks {
        // Durations are integers: nothing is ever rejected.
        Fallbacks::default()
    }

    fn footprint(&self) -> usize {
        // The two counters are families of their own and count themselves.
        Self::FOOTPRINT - 2 * Unlabelled::<Counter>::FOOTPRINT
    }

    fn series_in_use(&self) -> usize {
        self.exported_len()
    }

    fn validate(&self) -> Result<(), RegisterError> {
        crate::family::validate(&self.descriptor())?;
        if QueryHistogram::valid_buckets(QUERY_BUCKETS) {
            Ok(())
        } else {
            Err(RegisterError::InvalidBuckets(DURATION_NAME))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use std::collections::HashMap;
    use std::string::String;
    use std::vec::Vec;

    fn report<const K: usize, const T: usize>(tracker: &SlowQueryTracker<K, T>, order: Order) -> Vec<SlowQuery<T>> {
        let mut out = [SlowQuery::EMPTY; 64];
        let n = tracker.top(order, &mut out);
        out[..n].to_vec()
    }

    fn render<const F: usize>(registry: &Registry<F>) -> String {
        let mut renderer = registry.renderer(Format::Prometheus);
        let mut buf = [0u8; 300];
        let mut out = Vec::new();
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn statistics_are_exact_while_the_fingerprints_fit() {
        let t = SlowQueryTracker::<4>::new();
        t.record(1, "SELECT 1", 2_000, 10);
        t.record(2, "SELECT 2", 150_000, 20);
        t.record(1, "SELECT 1", 4_000, 30);
        t.record(3, "SELECT 3", 100, 40);
        t.record(1, "SELECT 1", 300_000, 50);
        assert_eq!((t.queries(), t.slow_queries(), t.total_time_us()), (5, 2, 456_100));
        let top = report(&t, Order::TotalTime);
        let summary: Vec<_> =
            top.iter().map(|q| (q.fingerprint, q.total_us, q.error_us, q.calls, q.slow_calls, q.max_us)).collect();
        assert_eq!(summary, [(1, 306_000, 0, 3, 1, 300_000), (2, 150_000, 0, 1, 1, 150_000), (3, 100, 0, 1, 0, 100)]);
        let one = &top[0];
        assert_eq!((one.first_seen_ms, one.last_seen_ms, one.text()), (10, 50, "SELECT 1"));
        assert_eq!((one.tracked_us(), one.mean_us()), (306_000, 102_000));
        let alpha = QueryHistogram::ALPHA;
        assert!((one.p50_us as f64 - 4_000.0).abs() <= 4_000.0 * alpha + 1.0, "{one:?}");
        assert!(one.p99_us <= one.max_us && one.p99_us as f64 >= 300_000.0 * (1.0 - alpha), "{one:?}");
        assert_eq!(top[2].p50_us, 0, "100 µs is in the zero bucket");
        let newest: Vec<u64> = report(&t, Order::LastSeen).iter().map(|q| q.fingerprint).collect();
        assert_eq!(newest, [1, 3, 2]);
        let mut two = [SlowQuery::EMPTY; 2];
        assert_eq!(t.top(Order::TotalTime, &mut two), 2, "a short output takes the best");
        assert_eq!(two.map(|q| q.fingerprint), [1, 2]);
    }

    /// Sixty fingerprints through eight counters, with a few heavy ones: the tracker's
    /// totals are exact, the estimates within the Space-Saving bound, and the heavy
    /// fingerprints on top with statistics that match their time since admission.
    #[test]
    fn beyond_k_totals_are_conserved_and_the_bound_holds() {
        const K: usize = 8;
        let t = SlowQueryTracker::<K>::new();
        let mut exact: HashMap<u64, u64> = HashMap::new();
        let mut n = 0;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..6_000u64 {
            // xorshift: a fixed pseudo-random stream.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (fingerprint, duration) =
                if i % 5 == 0 { (1_000 + i % 2, 20_000) } else { (state % 60, state % 5_000) };
            t.record(fingerprint, "q", duration, i);
            *exact.entry(fingerprint).or_default() += duration;
            n += duration;
        }
        assert_eq!((t.queries(), t.total_time_us()), (6_000, n));
        let top = report(&t, Order::TotalTime);
        assert_eq!(top.len(), K);
        assert_eq!(top.iter().map(|q| q.total_us).sum::<u64>(), n);
        let mut heavy = [top[0].fingerprint, top[1].fingerprint];
        heavy.sort_unstable();
        assert_eq!(heavy, [1_000, 1_001]);
        for q in &top {
            let x = exact[&q.fingerprint];
            assert!(x <= q.total_us && (q.total_us - x) * K as u64 <= n, "{q:?} exact {x}");
            assert!(q.tracked_us() <= x && q.error_us * K as u64 <= n, "{q:?} exact {x}");
        }
        // Fingerprint 1000 runs at every tenth `now_ms`: the statistics count exactly its
        // calls since it (last) entered the table.
        let heavy = top.iter().find(|q| q.fingerprint == 1_000).unwrap();
        assert_eq!(heavy.calls, 600 - heavy.first_seen_ms / 10);
        assert_eq!(heavy.tracked_us(), heavy.calls * 20_000);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary_and_kept_from_admission() {
        let t = SlowQueryTracker::<4, 5>::new();
        t.record(1, "abcdé", 1, 0);
        t.record(2, "abcde", 1, 0);
        t.record(3, "日本", 1, 0);
        t.record(1, "other", 1, 0);
        let texts: Vec<(u64, String)> =
            report(&t, Order::TotalTime).iter().map(|q| (q.fingerprint, String::from(q.text()))).collect();
        assert_eq!(texts, [(1, "abcd".into()), (2, "abcde".into()), (3, "日".into())]);
        let none = SlowQueryTracker::<1, 0>::new();
        none.record(1, "SELECT", 1, 0);
        assert_eq!(report(&none, Order::TotalTime)[0].text(), "");
        assert_eq!(prefix("ab", 10), "ab");
    }

    #[test]
    fn the_slow_threshold_is_strict_and_configurable() {
        let t = SlowQueryTracker::<2>::new();
        assert!(!t.record(1, "", DEFAULT_SLOW_THRESHOLD_US, 0));
        assert!(t.record(1, "", DEFAULT_SLOW_THRESHOLD_US + 1, 0));
        assert_eq!((t.slow_queries(), report(&t, Order::TotalTime)[0].slow_calls), (1, 1));
        let strict = SlowQueryTracker::<2>::with_config(TrackerConfig::DEFAULT.with_slow_threshold_us(0));
        assert!(!strict.record(1, "", 0, 0));
        assert!(strict.record(1, "", 1, 0));
        assert_eq!(strict.config().slow_threshold_us, 0);
    }

    #[test]
    fn a_clock_going_backwards_widens_the_seen_interval() {
        let t = SlowQueryTracker::<2>::new();
        t.record(1, "", 10, 5_000);
        t.record(2, "", 10, 4_000);
        t.record(1, "", 10, 3_000);
        let one = report(&t, Order::TotalTime)[0];
        assert_eq!((one.fingerprint, one.first_seen_ms, one.last_seen_ms), (1, 3_000, 5_000));
        let newest: Vec<u64> = report(&t, Order::LastSeen).iter().map(|q| q.fingerprint).collect();
        assert_eq!(newest, [1, 2]);
    }

    #[test]
    fn a_zero_duration_counts_but_never_evicts() {
        let t = SlowQueryTracker::<1>::new();
        t.record(1, "a", 0, 0);
        t.record(2, "b", 0, 0);
        t.record(1, "a", 0, 0);
        assert_eq!(t.queries(), 3);
        let top = report(&t, Order::TotalTime);
        assert_eq!((top.len(), top[0].fingerprint, top[0].calls), (1, 1, 2));
    }

    #[test]
    fn concurrent_records_lose_nothing() {
        static FEW: SlowQueryTracker<8> = SlowQueryTracker::new();
        static MANY: SlowQueryTracker<8> = SlowQueryTracker::new();
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 3_000;
        std::thread::scope(|s| {
            for thread in 0..THREADS {
                s.spawn(move || {
                    for i in 0..ROUNDS {
                        FEW.record((thread + i) % 8, "q", 100 + i % 7, i);
                        MANY.record(thread * 100 + i % 30, "q", 100 + i % 7, i);
                    }
                });
            }
        });
        let mut calls = [0u64; 8];
        let mut time = [0u64; 8];
        for thread in 0..THREADS {
            for i in 0..ROUNDS {
                let f = ((thread + i) % 8) as usize;
                calls[f] += 1;
                time[f] += 100 + i % 7;
            }
        }
        let mut few = report(&FEW, Order::TotalTime);
        few.sort_unstable_by_key(|q| q.fingerprint);
        let got: Vec<_> = few.iter().map(|q| (q.fingerprint, q.calls, q.total_us, q.error_us)).collect();
        let want: Vec<_> = (0..8).map(|f| (f as u64, calls[f], time[f], 0)).collect();
        assert_eq!(got, want);
        for slot in 0..8 {
            let stats = FEW.table.payload(slot).unwrap();
            assert_eq!(stats.histogram.count(), stats.calls.load(Relaxed));
        }
        let total: u64 = time.iter().sum();
        assert_eq!((FEW.queries(), FEW.total_time_us()), (THREADS * ROUNDS, total));
        let many = report(&MANY, Order::TotalTime);
        assert_eq!(many.iter().map(|q| q.total_us).sum::<u64>(), total);
        assert_eq!((MANY.queries(), MANY.total_time_us()), (THREADS * ROUNDS, total));
    }

    #[test]
    fn export_renders_one_histogram_per_tracked_fingerprint() {
        static QUERIES: SlowQueryTracker<2> = SlowQueryTracker::new();
        static REGISTRY: Registry<3> = Registry::new();
        QUERIES.register(&REGISTRY).unwrap();
        assert_eq!(QUERIES.register(&REGISTRY), Err(RegisterError::RegistryFull("plimsoll_queries")));
        QUERIES.record(0xAA, "SELECT a", 2_000, 0);
        QUERIES.record(0xAA, "SELECT a", 200_000, 0);
        let text = render(&REGISTRY);
        assert!(text.contains("plimsoll_queries_total 2\n") && text.contains("plimsoll_query_slow_total 1\n"));
        assert!(!text.contains("fingerprint="), "no series before the first update:\n{text}");
        QUERIES.update();
        let text = render(&REGISTRY);
        for line in [
            "# TYPE plimsoll_query_duration_seconds histogram",
            "plimsoll_query_duration_seconds_bucket{fingerprint=\"00000000000000aa\",le=\"0.001953125\"} 0",
            "plimsoll_query_duration_seconds_bucket{fingerprint=\"00000000000000aa\",le=\"0.00390625\"} 1",
            "plimsoll_query_duration_seconds_bucket{fingerprint=\"00000000000000aa\",le=\"+Inf\"} 2",
            "plimsoll_query_duration_seconds_sum{fingerprint=\"00000000000000aa\"} 0.202",
            "plimsoll_query_duration_seconds_count{fingerprint=\"00000000000000aa\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // Five fingerprints through two counters: never more than two series.
        for f in 1..=5 {
            QUERIES.record(f, "SELECT f", 1_000_000, 0);
        }
        QUERIES.update();
        let text = render(&REGISTRY);
        let series = text.lines().filter(|l| l.starts_with("plimsoll_query_duration_seconds_count{")).count();
        assert_eq!((series, QUERIES.series_in_use()), (2, 2));
        assert_eq!(REGISTRY.footprint(), Registry::<3>::FOOTPRINT + SlowQueryTracker::<2>::FOOTPRINT);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn footprint_of_the_default_tracker() {
        assert_eq!(SlowQueryTracker::<32, 120>::FOOTPRINT, 28_600);
    }
}
