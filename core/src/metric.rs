//! What the registry needs from each kind of metric to render it.

use crate::sealed;
use crate::{Counter, Gauge, GaugeF64, Histogram};

/// The type of a metric family, as written in `# TYPE` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetricKind {
    /// A monotonic counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram, exported with classic `le` buckets.
    Histogram,
}

/// A metric that can live in a [`Family`](crate::Family): [`Counter`], [`Gauge`],
/// [`GaugeF64`] or a [`Histogram`]. Sealed.
pub trait Metric: Sync + sealed::Sealed {
    /// The family type it belongs to.
    const KIND: MetricKind;
    /// The zero value, used to build series tables in `const` context.
    // A const of an interior-mutable type is only ever copied into a new series slot.
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self;
    /// The most native buckets one series exports (histograms only).
    const NATIVE_BUCKETS: usize = 0;
    /// Whether it keeps exemplars.
    const EXEMPLARS: bool = false;

    /// The value to render.
    fn sample(&self) -> Sample<'_>;

    /// Whether `bounds` are valid classic bucket bounds for this metric (histograms only).
    fn valid_buckets(bounds: &[f64]) -> bool {
        bounds.is_empty()
    }
}

/// A histogram metric ([`Histogram`] or [`ExemplarHistogram`](crate::ExemplarHistogram)):
/// its families take classic bucket bounds. Sealed.
pub trait HistogramMetric: Metric {}

impl<const S: u8, const E: i16, const B: usize> HistogramMetric for Histogram<S, E, B> {}
impl<const S: u8, const E: i16, const B: usize, const R: usize> HistogramMetric
    for crate::ExemplarHistogram<S, E, B, R>
{
}

/// A metric's current value, as the renderer reads it.
#[derive(Debug, Clone, Copy)]
pub enum Sample<'a> {
    /// A counter value.
    Counter(u64),
    /// An integer gauge value.
    Gauge(i64),
    /// A float gauge value.
    GaugeF64(f64),
    /// A histogram.
    Histogram(&'a dyn HistogramRead),
}

/// Read access to a histogram of any schema and range, for rendering. Sealed.
pub trait HistogramRead: Sync + core::fmt::Debug + sealed::Sealed {
    /// The smallest bucket edge at or above `bound`, if `bound` is within range.
    fn snap_to_edge(&self, bound: f64) -> Option<f64>;
    /// Cumulative counts at each of `edges` (sorted, from `snap_to_edge`) into `out`,
    /// in one pass over the buckets; returns the total count.
    fn cumulative_counts(&self, edges: &[f64], out: &mut [u64]) -> u64;
    /// The same at edges given by their [`edge_index`](Self::edge_index).
    fn cumulative_counts_at(&self, edge_indices: &[i32], out: &mut [u64]) -> u64;
    /// Sum of valid observations.
    fn sum(&self) -> f64;
    /// Rejected observations.
    fn invalid(&self) -> u64;
    /// The native schema (Prometheus) or scale (OpenTelemetry): bucket edges are powers of
    /// `2^(2^-schema)`.
    fn schema(&self) -> i8;
    /// Upper edge of the zero bucket `[0, zero_threshold]`.
    fn zero_threshold(&self) -> f64;
    /// Reads the native buckets once: calls `bucket(index, count)` for each non-empty
    /// bucket in increasing index order, where bucket `index` covers
    /// `(γ^(index-1), γ^index]`, and returns the zero bucket's count.
    ///
    /// Observations above the histogram's range are reported in the bucket just past it
    /// (index `native_index(BUCKETS)`), so the counts add up to the total; their values
    /// are thereby understated, as a classic `+Inf` bucket would leave them unknown.
    fn native_buckets(&self, bucket: &mut dyn FnMut(i32, u64)) -> u64;
    /// The native index of the bucket whose upper edge is `edge`, a value returned by
    /// [`snap_to_edge`](Self::snap_to_edge); the zero bucket's edge gives the index just
    /// below the first bucket's.
    fn edge_index(&self, edge: f64) -> i32;
    /// Calls `visit` with each exemplar kept (none, unless it keeps exemplars).
    fn exemplars(&self, visit: &mut dyn FnMut(&crate::Exemplar)) {
        let _ = visit;
    }
}

impl Metric for Counter {
    const KIND: MetricKind = MetricKind::Counter;
    #[allow(clippy::declare_interior_mutable_const)] // See `Metric::ZERO`.
    const ZERO: Self = Counter::new();
    fn sample(&self) -> Sample<'_> {
        Sample::Counter(self.get())
    }
}

impl sealed::Sealed for Gauge {}
impl Metric for Gauge {
    const KIND: MetricKind = MetricKind::Gauge;
    #[allow(clippy::declare_interior_mutable_const)] // See `Metric::ZERO`.
    const ZERO: Self = Gauge::new();
    fn sample(&self) -> Sample<'_> {
        Sample::Gauge(self.get())
    }
}

impl sealed::Sealed for GaugeF64 {}
impl Metric for GaugeF64 {
    const KIND: MetricKind = MetricKind::Gauge;
    #[allow(clippy::declare_interior_mutable_const)] // See `Metric::ZERO`.
    const ZERO: Self = GaugeF64::new();
    fn sample(&self) -> Sample<'_> {
        Sample::GaugeF64(self.get())
    }
}

impl<const S: u8, const E: i16, const B: usize> sealed::Sealed for Histogram<S, E, B> {}
impl<const S: u8, const E: i16, const B: usize> Metric for Histogram<S, E, B> {
    const KIND: MetricKind = MetricKind::Histogram;
    #[allow(clippy::declare_interior_mutable_const)] // See `Metric::ZERO`.
    const ZERO: Self = Histogram::new();
    const NATIVE_BUCKETS: usize = B + 1;
    fn sample(&self) -> Sample<'_> {
        Sample::Histogram(self)
    }
    fn valid_buckets(bounds: &[f64]) -> bool {
        let mut previous = f64::NEG_INFINITY;
        bounds.len() <= crate::MAX_CLASSIC_BUCKETS
            && bounds.iter().all(|&b| match Self::snap_to_edge(b) {
                Some(edge) if edge > previous => {
                    previous = edge;
                    true
                }
                _ => false,
            })
    }
}

impl<const S: u8, const E: i16, const B: usize> HistogramRead for Histogram<S, E, B> {
    fn snap_to_edge(&self, bound: f64) -> Option<f64> {
        Self::snap_to_edge(bound)
    }
    fn cumulative_counts(&self, edges: &[f64], out: &mut [u64]) -> u64 {
        Histogram::cumulative_counts(self, edges, out)
    }
    fn cumulative_counts_at(&self, edge_indices: &[i32], out: &mut [u64]) -> u64 {
        Histogram::cumulative_counts_at(self, edge_indices, out)
    }
    fn sum(&self) -> f64 {
        Histogram::sum(self)
    }
    fn invalid(&self) -> u64 {
        Histogram::invalid(self)
    }
    fn schema(&self) -> i8 {
        S as i8
    }
    fn zero_threshold(&self) -> f64 {
        Self::ZERO_THRESHOLD
    }
    fn native_buckets(&self, bucket: &mut dyn FnMut(i32, u64)) -> u64 {
        Histogram::native_buckets(self, bucket)
    }
    fn edge_index(&self, edge: f64) -> i32 {
        Self::edge_index(edge)
    }
}
