//! Metric families: a name, help text, label names and a fixed table of series.
//!
//! A [`Family`] holds at most `N` series, each with `L` label values of at most `V`
//! bytes, copied into the family's own storage. Looking up an existing series hashes
//! the values, probes the table and compares the stored values byte for byte, with
//! atomic loads only: no lock, no allocation. Inserting a new series takes a short
//! critical section (`critical-section`), in which the values are copied and the slot is
//! published with a release store of its hash.
//!
//! # Bounded cardinality
//!
//! Two records go to the family's single **overflow series**, whose every label has the
//! value [`OVERFLOW_LABEL_VALUE`] (`"__overflow__"`), instead of a series of their own:
//!
//! - a new label set when all `N` series are taken, counted per record in
//!   `plimsoll_series_overflow_total{family="..."}`, as the OpenTelemetry SDK's
//!   cardinality limit does;
//! - a label value longer than `V` bytes, counted per record in
//!   `plimsoll_label_value_rejected_total{family="..."}`. Values are rejected rather
//!   than truncated, because truncation would merge distinct label sets into one series.
//!
//! A record whose every label value is literally `"__overflow__"` also lands in the
//! overflow series (it names the same series), so the exposition never repeats a series.
//! The overflow series is exported only once something has been recorded into it.

use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::label_index::{self, LabelIndex, Miss};
use crate::metric::{HistogramMetric, Metric, MetricKind, Sample};
use crate::name::{self, MAX_HELP_LEN};
use crate::sealed::Sealed;
use crate::{MAX_LABEL_VALUE_LEN, RegisterError};

/// The value of every label of a family's overflow series.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";
/// The default classic bucket bounds of histogram families (as in Prometheus' clients).
pub const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// The most label names a family may have.
pub const MAX_LABELS: usize = 8;

/// A family's static description.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor<'a> {
    /// The metric name (for counters, without `_total`).
    pub name: &'static str,
    /// The help text.
    pub help: &'static str,
    /// The unit, if any; the name then ends with `_<unit>`.
    pub unit: Option<&'static str>,
    /// The family type.
    pub kind: MetricKind,
    /// The label names.
    pub label_names: &'a [&'static str],
    /// Classic bucket bounds (histograms only), before snapping to bucket edges.
    pub buckets: &'static [f64],
    /// The most native buckets one series exports (histograms only, else 0).
    pub native_buckets: usize,
    /// Whether its series keep exemplars.
    pub exemplars: bool,
}

/// Records that did not get a series of their own, or were rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fallbacks {
    /// Records routed to the overflow series because the family was full.
    pub series_overflow: u64,
    /// Records routed to the overflow series because a label value was too long.
    pub label_value_rejected: u64,
    /// Observations rejected by the family's histograms (NaN, infinite or negative).
    pub invalid_observations: u64,
}

/// A family the [`Registry`](crate::Registry) can render: [`Family`] or [`Unlabelled`].
/// Sealed; object safe, so one registry holds families of every type and size.
pub trait Exposable: Sync + Sealed {
    /// The static description.
    fn descriptor(&self) -> Descriptor<'_>;
    /// Number of series slots to walk when rendering.
    fn slots(&self) -> usize;
    /// The series in `slot`, or `None` if the slot is empty.
    fn sample(&self, slot: usize) -> Option<Sample<'_>>;
    /// The longest label value a series can hold, in bytes.
    fn label_value_capacity(&self) -> usize;
    /// Copies the value of label `label` of `slot` into `out`; returns its length.
    fn label_value(&self, slot: usize, label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize;
    /// Counted fallbacks so far.
    fn fallbacks(&self) -> Fallbacks;
    /// Bytes this family occupies.
    fn footprint(&self) -> usize;
    /// Series in use (the overflow series included once used).
    fn series_in_use(&self) -> usize;
    /// Checks names, unit, help and buckets; called by the registry.
    fn validate(&self) -> Result<(), RegisterError>;
}

/// A metric family with label names `L`, at most `N` series and label values of at most
/// `V` bytes (default 64). See the [module docs](self) for lookup, overflow and bounds.
///
/// Its size is fixed: `Family::<M, L, N, V>::FOOTPRINT` bytes.
///
/// ```
/// use plimsoll_core::{Counter, Family, Registry};
/// static REQUESTS: Family<Counter, 2, 64> =
///     Family::new("http_requests", "HTTP requests served.", ["method", "status"]);
/// static REGISTRY: Registry<8> = Registry::new();
///
/// REGISTRY.register(&REQUESTS).unwrap();
/// REQUESTS.with_label_values(&["GET", "200"]).inc();
/// assert_eq!(REQUESTS.with_label_values(&["GET", "200"]).get(), 1);
/// ```
#[derive(Debug)]
pub struct Family<M, const L: usize, const N: usize, const V: usize = 64> {
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    label_names: [&'static str; L],
    buckets: &'static [f64],
    series: LabelIndex<M, L, N, V>,
    overflow: M,
    series_overflow: AtomicU64,
    label_value_rejected: AtomicU64,
}

impl<M: Metric, const L: usize, const N: usize, const V: usize> Family<M, L, N, V> {
    /// Size of the family in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A family with no series yet. Names are checked when it is registered.
    pub const fn new(name: &'static str, help: &'static str, label_names: [&'static str; L]) -> Self {
        const {
            assert!(L <= MAX_LABELS, "a family has at most MAX_LABELS labels");
            assert!(N > 0, "a family needs room for at least one series");
            assert!(V > 0 && V <= MAX_LABEL_VALUE_LEN, "V must be in 1..=255");
        }
        let buckets = match M::KIND {
            MetricKind::Histogram => DEFAULT_BUCKETS,
            MetricKind::Counter | MetricKind::Gauge => &[],
        };
        Self {
            name,
            help,
            unit: None,
            label_names,
            buckets,
            series: LabelIndex::new(),
            overflow: M::ZERO,
            series_overflow: AtomicU64::new(0),
            label_value_rejected: AtomicU64::new(0),
        }
    }

    /// Sets the unit (OpenMetrics `# UNIT`); the name must end with `_<unit>`.
    pub const fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The series for `values`, created on first use; the overflow series if the family
    /// is full or a value is longer than `V` bytes (both counted).
    #[inline]
    pub fn with_label_values(&self, values: &[&str; L]) -> &M {
        // Values longer than `V` and the overflow series' own values are never stored, so
        // they find no series and are routed on the cold path, keeping the hit path short.
        let hash = label_index::hash(values);
        match self.series.get(values, hash) {
            Ok(metric) => metric,
            Err(miss) => self.on_miss(values, hash, miss),
        }
    }

    /// A label set with no series yet: the overflow series for values that must never
    /// get a series of their own, else a new series, else (table full) the overflow series.
    #[cold]
    fn on_miss(&self, values: &[&str; L], hash: u64, miss: Miss) -> &M {
        if values.iter().any(|v| v.len() > V) {
            self.label_value_rejected.fetch_add(1, Relaxed);
            return &self.overflow;
        }
        if L > 0 && values.iter().all(|v| *v == OVERFLOW_LABEL_VALUE) {
            return &self.overflow;
        }
        let stored = match miss {
            Miss::Vacant => self.series.get_or_insert(values, hash),
            Miss::Full => None,
        };
        stored.unwrap_or_else(|| {
            self.series_overflow.fetch_add(1, Relaxed);
            &self.overflow
        })
    }
}

impl<M: HistogramMetric, const L: usize, const N: usize, const V: usize> Family<M, L, N, V> {
    /// Sets the classic `le` bucket bounds (default [`DEFAULT_BUCKETS`]). Each is exported
    /// as the smallest fine bucket edge at or above it, so cumulative counts are exact;
    /// bounds must be finite, within the histogram's range and strictly increasing once
    /// snapped (checked at registration).
    pub const fn buckets(mut self, bounds: &'static [f64]) -> Self {
        self.buckets = bounds;
        self
    }
}

impl<M, const L: usize, const N: usize, const V: usize> Sealed for Family<M, L, N, V> {}

impl<M: Metric, const L: usize, const N: usize, const V: usize> Exposable for Family<M, L, N, V> {
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            name: self.name,
            help: self.help,
            unit: self.unit,
            kind: M::KIND,
            label_names: &self.label_names,
            buckets: self.buckets,
            native_buckets: M::NATIVE_BUCKETS,
            exemplars: M::EXEMPLARS,
        }
    }

    fn slots(&self) -> usize {
        N + 1
    }

    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        match self.series.published(slot) {
            Some(metric) => Some(metric.sample()),
            None if slot == N && self.overflow_used() => Some(self.overflow.sample()),
            None => None,
        }
    }

    fn label_value_capacity(&self) -> usize {
        V
    }

    fn label_value(&self, slot: usize, label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        if slot >= N {
            out[..OVERFLOW_LABEL_VALUE.len()].copy_from_slice(OVERFLOW_LABEL_VALUE.as_bytes());
            return OVERFLOW_LABEL_VALUE.len();
        }
        self.series.label_value(slot, label, out)
    }

    fn fallbacks(&self) -> Fallbacks {
        let invalid = |m: &M| match m.sample() {
            Sample::Histogram(h) => h.invalid(),
            _ => 0,
        };
        // Only histograms reject observations: other kinds skip the walk over the series.
        let invalid_observations = match M::KIND {
            MetricKind::Histogram => self.series.payloads().map(invalid).sum::<u64>() + invalid(&self.overflow),
            MetricKind::Counter | MetricKind::Gauge => 0,
        };
        Fallbacks {
            series_overflow: self.series_overflow.load(Relaxed),
            label_value_rejected: self.label_value_rejected.load(Relaxed),
            invalid_observations,
        }
    }

    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }

    fn series_in_use(&self) -> usize {
        self.series.in_use() + usize::from(self.overflow_used())
    }

    fn validate(&self) -> Result<(), RegisterError> {
        validate(&self.descriptor())?;
        if M::valid_buckets(self.buckets) { Ok(()) } else { Err(RegisterError::InvalidBuckets(self.name)) }
    }
}

impl<M: Metric, const L: usize, const N: usize, const V: usize> Family<M, L, N, V> {
    fn overflow_used(&self) -> bool {
        L > 0
            && (self.series_overflow.load(Relaxed) > 0
                || self.label_value_rejected.load(Relaxed) > 0
                || !is_zero(self.overflow.sample()))
    }
}

fn is_zero(sample: Sample<'_>) -> bool {
    match sample {
        Sample::Counter(v) => v == 0,
        Sample::Gauge(v) => v == 0,
        Sample::GaugeF64(v) => v == 0.0,
        Sample::Histogram(h) => h.cumulative_counts(&[], &mut []) == 0 && h.invalid() == 0,
    }
}

/// A family with exactly one series and no labels.
///
/// ```
/// use plimsoll_core::{Gauge, Unlabelled};
/// static QUEUE_DEPTH: Unlabelled<Gauge> = Unlabelled::new("queue_depth", "Jobs waiting.");
/// QUEUE_DEPTH.set(3);
/// assert_eq!(QUEUE_DEPTH.get(), 3);
/// ```
#[derive(Debug)]
pub struct Unlabelled<M> {
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    buckets: &'static [f64],
    metric: M,
}

impl<M: Metric> Unlabelled<M> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A metric at zero. Names are checked when it is registered.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        let buckets = match M::KIND {
            MetricKind::Histogram => DEFAULT_BUCKETS,
            MetricKind::Counter | MetricKind::Gauge => &[],
        };
        Self { name, help, unit: None, buckets, metric: M::ZERO }
    }

    /// Sets the unit (OpenMetrics `# UNIT`); the name must end with `_<unit>`.
    pub const fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }
}

impl<M: HistogramMetric> Unlabelled<M> {
    /// Sets the classic `le` bucket bounds; see [`Family::buckets`].
    pub const fn buckets(mut self, bounds: &'static [f64]) -> Self {
        self.buckets = bounds;
        self
    }
}

impl<M> core::ops::Deref for Unlabelled<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.metric
    }
}

impl<M> Sealed for Unlabelled<M> {}

impl<M: Metric> Exposable for Unlabelled<M> {
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            name: self.name,
            help: self.help,
            unit: self.unit,
            kind: M::KIND,
            label_names: &[],
            buckets: self.buckets,
            native_buckets: M::NATIVE_BUCKETS,
            exemplars: M::EXEMPLARS,
        }
    }

    fn slots(&self) -> usize {
        1
    }

    fn sample(&self, _slot: usize) -> Option<Sample<'_>> {
        Some(self.metric.sample())
    }

    fn label_value_capacity(&self) -> usize {
        0
    }

    fn label_value(&self, _slot: usize, _label: usize, _out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        0
    }

    fn fallbacks(&self) -> Fallbacks {
        let invalid_observations = match self.metric.sample() {
            Sample::Histogram(h) => h.invalid(),
            _ => 0,
        };
        Fallbacks { invalid_observations, ..Fallbacks::default() }
    }

    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }

    fn series_in_use(&self) -> usize {
        1
    }

    fn validate(&self) -> Result<(), RegisterError> {
        validate(&self.descriptor())?;
        if M::valid_buckets(self.buckets) { Ok(()) } else { Err(RegisterError::InvalidBuckets(self.name)) }
    }
}

/// A gauge family whose NaN-valued series are left out of the exposition: the SLO and
/// memory exports store NaN where a figure is undefined (no events, no trend), since a
/// family cannot remove a series.
#[derive(Debug)]
pub(crate) struct SkipNan<F>(pub(crate) F);

impl<F> Sealed for SkipNan<F> {}

impl<F: Exposable> Exposable for SkipNan<F> {
    fn descriptor(&self) -> Descriptor<'_> {
        self.0.descriptor()
    }
    fn slots(&self) -> usize {
        self.0.slots()
    }
    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        self.0.sample(slot).filter(|s| !matches!(s, Sample::GaugeF64(v) if v.is_nan()))
    }
    fn label_value_capacity(&self) -> usize {
        self.0.label_value_capacity()
    }
    fn label_value(&self, slot: usize, label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        self.0.label_value(slot, label, out)
    }
    fn fallbacks(&self) -> Fallbacks {
        self.0.fallbacks()
    }
    fn footprint(&self) -> usize {
        self.0.footprint()
    }
    fn series_in_use(&self) -> usize {
        self.0.series_in_use()
    }
    fn validate(&self) -> Result<(), RegisterError> {
        self.0.validate()
    }
}

/// The checks shared by every family type, also run by the crate's own family types
/// (read-through views, top-k and slow-query exports).
pub(crate) fn validate(d: &Descriptor<'_>) -> Result<(), RegisterError> {
    if !name::is_metric_name(d.name) {
        return Err(RegisterError::InvalidMetricName(d.name));
    }
    if name::has_reserved_suffix(d.name) || crate::registry::is_reserved_name(d.name) {
        return Err(RegisterError::ReservedMetricName(d.name));
    }
    if d.help.len() > MAX_HELP_LEN {
        return Err(RegisterError::HelpTooLong(d.name));
    }
    if let Some(unit) = d.unit {
        let suffixed = d.name.strip_suffix(unit).is_some_and(|rest| rest.ends_with('_'));
        if !name::is_unit(unit) || !suffixed {
            return Err(RegisterError::InvalidUnit { family: d.name, unit });
        }
    }
    for (i, &label) in d.label_names.iter().enumerate() {
        let reserved = d.kind == MetricKind::Histogram && label == "le";
        if !name::is_label_name(label) || reserved {
            return Err(RegisterError::InvalidLabelName { family: d.name, label });
        }
        if d.label_names[..i].contains(&label) {
            return Err(RegisterError::DuplicateLabelName { family: d.name, label });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, LatencyHistogram};

    #[test]
    fn concatenation_collisions_get_distinct_series() {
        static F: Family<Counter, 2, 8> = Family::new("f", "", ["a", "b"]);
        F.with_label_values(&["a", "bc"]).inc();
        F.with_label_values(&["ab", "c"]).inc_by(10);
        F.with_label_values(&["", "abc"]).inc_by(100);
        assert_eq!(F.with_label_values(&["a", "bc"]).get(), 1);
        assert_eq!(F.with_label_values(&["ab", "c"]).get(), 10);
        assert_eq!(F.with_label_values(&["", "abc"]).get(), 100);
        assert_eq!(F.series_in_use(), 3);
    }

    #[test]
    fn full_family_overflows_and_counts() {
        static F: Family<Counter, 1, 4> = Family::new("f", "", ["k"]);
        let keys = ["a", "b", "c", "d", "e", "f", "e"];
        for k in keys {
            F.with_label_values(&[k]).inc();
        }
        assert_eq!(F.fallbacks().series_overflow, 3);
        assert_eq!(F.overflow.get(), 3);
        for k in ["a", "b", "c", "d"] {
            assert_eq!(F.with_label_values(&[k]).get(), 1);
        }
        assert_eq!(F.series_in_use(), 5);
    }

    #[test]
    fn over_long_values_are_rejected_into_overflow() {
        static F: Family<Counter, 2, 4, 8> = Family::new("f", "", ["a", "b"]);
        F.with_label_values(&["12345678", "x"]).inc();
        F.with_label_values(&["123456789", "x"]).inc();
        F.with_label_values(&["x", "ééééé"]).inc();
        assert_eq!(F.fallbacks().label_value_rejected, 2);
        assert_eq!(F.fallbacks().series_overflow, 0);
        assert_eq!(F.overflow.get(), 2);
        assert_eq!(F.with_label_values(&["12345678", "x"]).get(), 1);
    }

    #[test]
    fn sentinel_values_name_the_overflow_series() {
        static F: Family<Counter, 2, 4> = Family::new("f", "", ["a", "b"]);
        F.with_label_values(&[OVERFLOW_LABEL_VALUE, OVERFLOW_LABEL_VALUE]).inc();
        F.with_label_values(&[OVERFLOW_LABEL_VALUE, "x"]).inc();
        assert_eq!(F.overflow.get(), 1);
        assert_eq!(F.series_in_use(), 2);
    }

    #[test]
    fn histogram_families_count_invalid_observations() {
        static F: Family<LatencyHistogram, 1, 4> = Family::new("latency_seconds", "", ["route"]);
        F.with_label_values(&["/a"]).record(f64::NAN);
        F.with_label_values(&["/b"]).record(-1.0);
        F.with_label_values(&["/b"]).record(0.1);
        assert_eq!(F.fallbacks().invalid_observations, 2);
    }

    #[test]
    fn validation_errors() {
        use RegisterError::*;
        let check = |f: &dyn Exposable| f.validate();
        assert_eq!(check(&Family::<Counter, 1, 1>::new("9x", "", ["a"])), Err(InvalidMetricName("9x")));
        assert_eq!(check(&Family::<Counter, 1, 1>::new("x_total", "", ["a"])), Err(ReservedMetricName("x_total")));
        assert_eq!(
            check(&Family::<Counter, 1, 1>::new("x", "", ["__a"])),
            Err(InvalidLabelName { family: "x", label: "__a" })
        );
        assert_eq!(
            check(&Family::<Counter, 2, 1>::new("x", "", ["a", "a"])),
            Err(DuplicateLabelName { family: "x", label: "a" })
        );
        assert_eq!(
            check(&Family::<LatencyHistogram, 1, 1>::new("x", "", ["le"])),
            Err(InvalidLabelName { family: "x", label: "le" })
        );
        assert_eq!(
            check(&Unlabelled::<Counter>::new("x_bytes", "").unit("seconds")),
            Err(InvalidUnit { family: "x_bytes", unit: "seconds" })
        );
        assert_eq!(check(&Unlabelled::<Counter>::new("x_bytes", "").unit("bytes")), Ok(()));
        assert_eq!(
            check(&Unlabelled::<Counter>::new("xbytes", "").unit("bytes")),
            Err(InvalidUnit { family: "xbytes", unit: "bytes" })
        );
        static LONG: [u8; 1025] = [b'h'; 1025];
        let help = core::str::from_utf8(&LONG).unwrap();
        assert_eq!(check(&Unlabelled::<Counter>::new("x", help)), Err(HelpTooLong("x")));
        for bad in [&[0.1, 0.1][..], &[0.2, 0.1], &[f64::NAN], &[1e9], &[-1.0], &[0.1, 0.1001]] {
            let f = Unlabelled::<LatencyHistogram>::new("x", "").buckets(bad);
            assert_eq!(check(&f), Err(InvalidBuckets("x")), "{bad:?}");
        }
        assert_eq!(check(&Unlabelled::<LatencyHistogram>::new("x", "").buckets(&[])), Ok(()));
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;
    use crate::Counter;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    /// Threads racing to insert the same and different label sets: every label set gets
    /// exactly one series and no increment is lost.
    #[test]
    fn racing_inserts_neither_duplicate_nor_lose() {
        static F: Family<Counter, 2, 64> = Family::new("race", "", ["a", "b"]);
        const THREADS: usize = 8;
        const KEYS: usize = 48;
        const ROUNDS: usize = 200;
        let keys: Vec<(String, String)> = (0..KEYS).map(|k| (format!("k{}", k % 7), format!("{k}"))).collect();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let keys = &keys;
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        // Each thread walks the keys from a different start.
                        let (a, b) = &keys[(round + t * 5) % KEYS];
                        F.with_label_values(&[a, b]).inc();
                    }
                });
            }
        });
        assert_eq!(F.series_in_use(), KEYS);
        let total: u64 = keys.iter().map(|(a, b)| F.with_label_values(&[a, b]).get()).sum();
        assert_eq!(total, (THREADS * ROUNDS) as u64);
        assert_eq!(F.fallbacks(), Fallbacks::default());
    }

    /// More distinct label sets than room, from many threads: the table fills exactly,
    /// the rest overflow, and the overflow counter accounts for every spilled record.
    #[test]
    fn racing_overflow_accounts_for_every_record() {
        static F: Family<Counter, 1, 16> = Family::new("spill", "", ["k"]);
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..100 {
                        F.with_label_values(&[&format!("{}", t * 100 + i)]).inc();
                    }
                });
            }
        });
        assert_eq!(F.series_in_use(), 17);
        let stored: u64 = F.series.payloads().map(Counter::get).sum();
        assert_eq!(stored, 16);
        assert_eq!(F.fallbacks().series_overflow, 400 - 16);
        assert_eq!(F.overflow.get(), 400 - 16);
    }
}
