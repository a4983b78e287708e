//! A histogram that keeps the latest exemplar of each range of its buckets.

use super::{Histogram, Slot};
use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::exemplar::{Exemplar, ExemplarSlot, TraceId};
use crate::metric::{HistogramRead, Metric, MetricKind, Sample};
use crate::sealed;

/// A [`Histogram`] that also keeps, for each of `RANGES` equal ranges of its buckets, the
/// latest [`Exemplar`]: an observation with the trace it was made in.
///
/// Bucket slot `s` belongs to range `s * RANGES / BUCKETS`; the zero bucket to range 0 and
/// the overflow to the last. With one range per power of two (the default type's 27),
/// every classic `le` bucket of a latency histogram usually finds an exemplar of its own.
/// The exemplars are exposed in OpenMetrics text (on the classic bucket lines) and in the
/// protobuf format (on the classic buckets and among the native histogram's exemplars).
///
/// Each range costs 40 bytes: [`FOOTPRINT`](Self::FOOTPRINT) is the histogram's size plus
/// `40 * RANGES + 8`. Recording with an exemplar adds a compare-exchange and four relaxed
/// stores to a record; when two threads write the same range at once, one exemplar is
/// kept and the other counted in [`exemplars_skipped`](Self::exemplars_skipped) (the
/// observation itself is always counted).
///
/// ```
/// use plimsoll_core::LatencyExemplarHistogram;
/// static LATENCY: LatencyExemplarHistogram = LatencyExemplarHistogram::new();
/// LATENCY.record_with_exemplar(0.250, [7; 16], 1_700_000_000_000);
/// let mut kept = Vec::new();
/// LATENCY.exemplars(&mut |e| kept.push(*e));
/// assert_eq!(kept[0].value, 0.250);
/// assert_eq!(LATENCY.count(), 1);
/// ```
#[derive(Debug)]
pub struct ExemplarHistogram<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize, const RANGES: usize> {
    histogram: Histogram<SCHEMA, MIN_EXP, BUCKETS>,
    exemplars: [ExemplarSlot; RANGES],
    skipped: AtomicU64,
}

/// [`LatencyHistogram`](crate::LatencyHistogram) with one exemplar per power of two
/// (27 ranges; 4,592 bytes).
pub type LatencyExemplarHistogram = ExemplarHistogram<4, -20, 432, 27>;

impl<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize, const RANGES: usize>
    ExemplarHistogram<SCHEMA, MIN_EXP, BUCKETS, RANGES>
{
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty histogram with no exemplars.
    pub const fn new() -> Self {
        const { assert!(RANGES > 0 && RANGES <= BUCKETS, "RANGES must be in 1..=BUCKETS") };
        Self {
            histogram: Histogram::new(),
            exemplars: [const { ExemplarSlot::new() }; RANGES],
            skipped: AtomicU64::new(0),
        }
    }

    /// Records `value`, as [`Histogram::record`] does, with the trace it was observed in
    /// at `timestamp_ms` (milliseconds since the Unix epoch). An invalid value is counted
    /// as such and keeps no exemplar.
    pub fn record_with_exemplar(&self, value: f64, trace_id: TraceId, timestamp_ms: u64) {
        self.histogram.record(value);
        let range = match Histogram::<SCHEMA, MIN_EXP, BUCKETS>::slot(value) {
            None => return,
            Some(Slot::Zero) => 0,
            Some(Slot::Bucket(slot)) => slot * RANGES / BUCKETS,
            Some(Slot::Overflow) => RANGES - 1,
        };
        if !self.exemplars[range].store(&Exemplar { trace_id, value, timestamp_ms }) {
            self.skipped.fetch_add(1, Relaxed);
        }
    }

    /// Calls `visit` with each kept exemplar, in range order.
    pub fn exemplars(&self, visit: &mut dyn FnMut(&Exemplar)) {
        for exemplar in self.exemplars.iter().filter_map(ExemplarSlot::load) {
            visit(&exemplar);
        }
    }

    /// Exemplars not kept because another thread was writing the same range.
    pub fn exemplars_skipped(&self) -> u64 {
        self.skipped.load(Relaxed)
    }
}

impl<const S: u8, const E: i16, const B: usize, const R: usize> Default for ExemplarHistogram<S, E, B, R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything else a histogram does: `record`, `quantile`, `count`, …
impl<const S: u8, const E: i16, const B: usize, const R: usize> core::ops::Deref for ExemplarHistogram<S, E, B, R> {
    type Target = Histogram<S, E, B>;
    fn deref(&self) -> &Self::Target {
        &self.histogram
    }
}

impl<const S: u8, const E: i16, const B: usize, const R: usize> sealed::Sealed for ExemplarHistogram<S, E, B, R> {}

impl<const S: u8, const E: i16, const B: usize, const R: usize> Metric for ExemplarHistogram<S, E, B, R> {
    const KIND: MetricKind = MetricKind::Histogram;
    #[allow(clippy::declare_interior_mutable_const)] // See `Metric::ZERO`.
    const ZERO: Self = Self::new();
    const NATIVE_BUCKETS: usize = B + 1;
    const EXEMPLARS: bool = true;
    fn sample(&self) -> Sample<'_> {
        Sample::Histogram(self)
    }
    fn valid_buckets(bounds: &[f64]) -> bool {
        Histogram::<S, E, B>::valid_buckets(bounds)
    }
}

impl<const S: u8, const E: i16, const B: usize, const R: usize> HistogramRead for ExemplarHistogram<S, E, B, R> {
    fn snap_to_edge(&self, bound: f64) -> Option<f64> {
        Histogram::<S, E, B>::snap_to_edge(bound)
    }
    fn cumulative_counts(&self, edges: &[f64], out: &mut [u64]) -> u64 {
        self.histogram.cumulative_counts(edges, out)
    }
    fn cumulative_counts_at(&self, edge_indices: &[i32], out: &mut [u64]) -> u64 {
        self.histogram.cumulative_counts_at(edge_indices, out)
    }
    fn sum(&self) -> f64 {
        self.histogram.sum()
    }
    fn invalid(&self) -> u64 {
        self.histogram.invalid()
    }
    fn schema(&self) -> i8 {
        S as i8
    }
    fn zero_threshold(&self) -> f64 {
        Histogram::<S, E, B>::ZERO_THRESHOLD
    }
    fn native_buckets(&self, bucket: &mut dyn FnMut(i32, u64)) -> u64 {
        self.histogram.native_buckets(bucket)
    }
    fn edge_index(&self, edge: f64) -> i32 {
        Histogram::<S, E, B>::edge_index(edge)
    }
    fn exemplars(&self, visit: &mut dyn FnMut(&Exemplar)) {
        ExemplarHistogram::exemplars(self, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    type Small = ExemplarHistogram<2, -4, 32, 8>;

    fn kept(h: &Small) -> Vec<Exemplar> {
        let mut kept = Vec::new();
        h.exemplars(&mut |e| kept.push(*e));
        kept
    }

    #[test]
    fn each_range_keeps_its_latest_exemplar() {
        let h = Small::new();
        // Range of width 4 slots = one power of two at schema 2: (1/16, 1/8], (1/8, 1/4], ...
        h.record_with_exemplar(0.1, [1; 16], 1);
        h.record_with_exemplar(0.11, [2; 16], 2);
        h.record_with_exemplar(3.0, [3; 16], 3);
        h.record_with_exemplar(0.0, [4; 16], 4);
        h.record_with_exemplar(1e9, [5; 16], 5);
        h.record_with_exemplar(f64::NAN, [6; 16], 6);
        let ids: Vec<u8> = kept(&h).iter().map(|e| e.trace_id[0]).collect();
        // The zero bucket shares range 0 with 0.1 and 0.11: the latest of the three is kept.
        assert_eq!(ids, [4, 3, 5]);
        assert_eq!((h.count(), h.invalid(), h.exemplars_skipped()), (5, 1, 0));
        let zero = kept(&h)[0];
        assert_eq!(zero, Exemplar { trace_id: [4; 16], value: 0.0, timestamp_ms: 4 });
    }

    #[test]
    fn footprint_is_stated() {
        assert_eq!(LatencyExemplarHistogram::FOOTPRINT, crate::LatencyHistogram::FOOTPRINT + 40 * 27 + 8);
        assert_eq!(LatencyExemplarHistogram::FOOTPRINT, 4_592);
    }
}
