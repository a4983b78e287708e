//! Exponential histograms in the Prometheus native / OpenTelemetry exponential layout.
//!
//! A [`Histogram`] keeps one counter per fine bucket over a fixed range, a counted
//! zero/underflow bucket, a counted overflow bucket, a counter of rejected values and
//! the sum. Recording is one table lookup, one relaxed `fetch_add` on the bucket and one
//! atomic float add on the sum (a load and a compare-exchange when uncontended); the
//! total count is the sum of the buckets, read only when rendering.
//!
//! # Accuracy
//!
//! With schema `n`, neighbouring edges differ by the factor `γ = 2^(2^-n)`. A quantile
//! is read back as the bucket's mid-point estimate `2·lo·hi / (lo + hi)`, which is within
//! relative error `α = (γ - 1) / (γ + 1)` of every value in the bucket, and therefore of
//! the true sample quantile (defined as the `⌈q·count⌉`-th smallest value). This holds
//! for every value inside the range; a quantile that falls in the zero/underflow bucket
//! reads as `0.0`, one in the overflow bucket as `+∞`.
//!
//! | schema | α | buckets per power of two |
//! |---|---|---|
//! | 2 | 8.64 % | 4 |
//! | 3 | 4.33 % | 8 |
//! | 4 | 2.17 % | 16 |
//! | 5 | 1.08 % | 32 |
//!
//! # Bad input
//!
//! NaN, infinite and negative values are rejected: they are counted in
//! [`Histogram::invalid`] (exported as `plimsoll_observations_rejected_total`)
//! and change nothing else. `-0.0` and `0.0` are valid and land in the zero bucket.

mod exemplars;
mod layout;

use crate::atomic::{AtomicF64, AtomicU64, Ordering::Relaxed};
pub use exemplars::{ExemplarHistogram, LatencyExemplarHistogram};
use layout::Layout;
pub use layout::MAX_SCHEMA;

/// A histogram over `(2^MIN_EXP, 2^(MIN_EXP + BUCKETS / 2^SCHEMA)]` with `BUCKETS`
/// native buckets of schema `SCHEMA`.
///
/// Values in `[0, 2^MIN_EXP]` go to the zero bucket (Prometheus' zero bucket with zero
/// threshold `2^MIN_EXP`), values above the range to the overflow bucket. The size in
/// bytes is `8 * BUCKETS + 48` ([`Histogram::FOOTPRINT`]).
///
/// ```
/// use plimsoll_core::LatencyHistogram;
/// static LATENCY: LatencyHistogram = LatencyHistogram::new();
/// LATENCY.record(0.250);
/// let p50 = LATENCY.quantile(0.5).unwrap();
/// assert!((p50 - 0.250).abs() / 0.250 <= LatencyHistogram::ALPHA);
/// ```
#[derive(Debug)]
pub struct Histogram<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize> {
    buckets: [AtomicU64; BUCKETS],
    /// One bit per block of [`BLOCK`](Self::BLOCK) buckets, set once a bucket in the block
    /// is first used, so that reads skip the (usually many) empty blocks.
    used_blocks: [AtomicU64; 2],
    zero: AtomicU64,
    overflow: AtomicU64,
    invalid: AtomicU64,
    sum: AtomicF64,
}

/// The default histogram for server latencies in seconds: schema 4 (α ≈ 2.17 %) over
/// `(2^-20 s, 2^7 s]` ≈ (0.95 µs, 128 s]; 432 buckets, 3,504 bytes.
pub type LatencyHistogram = Histogram<4, -20, 432>;

/// Where one observation goes.
enum Slot {
    Zero,
    Bucket(usize),
    Overflow,
}

impl<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize> Histogram<SCHEMA, MIN_EXP, BUCKETS> {
    const LAYOUT: Layout = Layout::new(SCHEMA);
    /// Native index of the zero bucket's upper edge; bucket slot `s` has index `BASE + 1 + s`.
    const BASE: i32 = (MIN_EXP as i32) << SCHEMA;
    const CHECKED: () = {
        assert!(SCHEMA <= MAX_SCHEMA, "SCHEMA must be at most 8");
        assert!(BUCKETS > 0, "BUCKETS must be non-zero");
        assert!(MIN_EXP >= -1000, "MIN_EXP must be at least -1000");
        let octaves = BUCKETS.div_ceil(1 << SCHEMA);
        assert!(MIN_EXP as i64 + octaves as i64 <= 1000, "the range must end below 2^1000");
    };
    /// Buckets per bit of `used_blocks`: 128 bits cover every bucket.
    const BLOCK: usize = BUCKETS.div_ceil(128);
    /// Size of one histogram in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();
    /// The relative error bound of [`quantile`](Self::quantile): `(γ - 1) / (γ + 1)`.
    pub const ALPHA: f64 = {
        let gamma = Self::LAYOUT.upper_edge(1);
        (gamma - 1.0) / (gamma + 1.0)
    };
    /// Values at or below this go to the zero bucket.
    pub const ZERO_THRESHOLD: f64 = Self::LAYOUT.upper_edge(Self::BASE);
    /// Values above this go to the overflow bucket.
    pub const MAX: f64 = Self::LAYOUT.upper_edge(Self::BASE + BUCKETS as i32);
    /// The schema, as a Prometheus native histogram states it.
    pub const SCHEMA: u8 = SCHEMA;

    /// An empty histogram.
    #[allow(clippy::let_unit_value)] // Evaluating `CHECKED` is what runs the assertions.
    pub const fn new() -> Self {
        let () = Self::CHECKED;
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            used_blocks: [const { AtomicU64::new(0) }; 2],
            zero: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            sum: AtomicF64::new(0.0),
        }
    }

    /// Records one observation; NaN, infinite and negative values are counted as invalid.
    #[inline]
    pub fn record(&self, value: f64) {
        let Some(slot) = Self::slot(value) else {
            self.invalid.fetch_add(1, Relaxed);
            return;
        };
        let counter = match slot {
            Slot::Zero => &self.zero,
            Slot::Bucket(i) => {
                self.mark_used(i);
                &self.buckets[i]
            }
            Slot::Overflow => &self.overflow,
        };
        counter.fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// Sets the bit of `bucket`'s block, before the bucket is incremented; after the
    /// first use of a block this is one load of a read-mostly word.
    #[inline]
    fn mark_used(&self, bucket: usize) {
        let block = bucket / Self::BLOCK;
        let (word, bit) = (&self.used_blocks[block / 64], 1 << (block % 64));
        if word.load(Relaxed) & bit == 0 {
            word.fetch_or(bit, Relaxed);
        }
    }

    /// Calls `f(first_bucket, buckets)` for each used block, in bucket order.
    fn for_each_used_block(&self, mut f: impl FnMut(usize, &[AtomicU64])) {
        for (w, word) in self.used_blocks.iter().enumerate() {
            let mut bits = word.load(Relaxed);
            while bits != 0 {
                let block = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let start = block * Self::BLOCK;
                f(start, &self.buckets[start..(start + Self::BLOCK).min(BUCKETS)]);
            }
        }
    }

    #[inline]
    fn slot(value: f64) -> Option<Slot> {
        if value.is_nan() || value < 0.0 || value == f64::INFINITY {
            return None;
        }
        if value <= Self::ZERO_THRESHOLD {
            return Some(Slot::Zero);
        }
        if value > Self::MAX {
            return Some(Slot::Overflow);
        }
        let index = Self::LAYOUT.index(value);
        Some(Slot::Bucket((index - Self::BASE - 1) as usize))
    }

    /// Number of valid observations.
    pub fn count(&self) -> u64 {
        let mut fine = 0;
        self.for_each_used_block(|_, block| fine += sum_counts(block));
        fine + self.zero.load(Relaxed) + self.overflow.load(Relaxed)
    }

    /// Sum of valid observations.
    pub fn sum(&self) -> f64 {
        self.sum.load(Relaxed)
    }

    /// Observations in the zero/underflow bucket `[0, ZERO_THRESHOLD]`.
    pub fn zero_count(&self) -> u64 {
        self.zero.load(Relaxed)
    }

    /// Observations above [`MAX`](Self::MAX).
    pub fn overflow_count(&self) -> u64 {
        self.overflow.load(Relaxed)
    }

    /// Rejected observations (NaN, infinite or negative).
    pub fn invalid(&self) -> u64 {
        self.invalid.load(Relaxed)
    }

    /// Count of fine bucket `slot` (`0..BUCKETS`), which covers
    /// `(bucket_upper_edge(slot - 1), bucket_upper_edge(slot)]`.
    pub fn bucket_count(&self, slot: usize) -> u64 {
        self.buckets[slot].load(Relaxed)
    }

    /// The upper edge of fine bucket `slot`; `slot = -1` gives [`ZERO_THRESHOLD`](Self::ZERO_THRESHOLD).
    pub fn bucket_upper_edge(slot: isize) -> f64 {
        Self::LAYOUT.upper_edge(Self::BASE + 1 + slot as i32)
    }

    /// The native (Prometheus / OpenTelemetry) index of fine bucket `slot`.
    pub const fn native_index(slot: usize) -> i32 {
        Self::BASE + 1 + slot as i32
    }

    /// Reads the native buckets once, calling `bucket(native_index, count)` for each
    /// non-empty one in index order, and returns the zero bucket's count. The overflow
    /// count is reported as bucket `native_index(BUCKETS)`, the one just past the range,
    /// so that all counts add up (see [`HistogramRead::native_buckets`](crate::HistogramRead::native_buckets)).
    pub fn native_buckets(&self, bucket: &mut dyn FnMut(i32, u64)) -> u64 {
        let zero = self.zero.load(Relaxed);
        self.for_each_used_block(|start, block| {
            for (slot, count) in (start..).zip(block) {
                match count.load(Relaxed) {
                    0 => {}
                    count => bucket(Self::native_index(slot), count),
                }
            }
        });
        match self.overflow.load(Relaxed) {
            0 => {}
            overflow => bucket(Self::native_index(BUCKETS), overflow),
        }
        zero
    }

    /// The native index of the bucket holding `value` (a value at or below
    /// [`ZERO_THRESHOLD`](Self::ZERO_THRESHOLD), negative or not a number gives the index
    /// just below the first bucket's; one above [`MAX`](Self::MAX), `+∞` included, the
    /// overflow bucket's). For
    /// an edge from [`snap_to_edge`](Self::snap_to_edge), the bucket it is the upper edge of.
    pub fn edge_index(value: f64) -> i32 {
        match Self::slot(value) {
            Some(Slot::Bucket(i)) => Self::native_index(i),
            Some(Slot::Overflow) => Self::native_index(BUCKETS),
            None if value > 0.0 => Self::native_index(BUCKETS),
            Some(Slot::Zero) | None => Self::BASE,
        }
    }

    /// The smallest bucket edge at or above `bound`, or `None` if `bound` is not a
    /// finite number within `[0, MAX]`. Classic `le` buckets are snapped to these edges
    /// so that their cumulative counts are exact.
    pub fn snap_to_edge(bound: f64) -> Option<f64> {
        match Self::slot(bound)? {
            Slot::Zero => Some(Self::ZERO_THRESHOLD),
            Slot::Bucket(i) => Some(Self::bucket_upper_edge(i as isize)),
            Slot::Overflow => None,
        }
    }

    /// Writes the number of observations at or below each of `edges` into `out` and
    /// returns the total count, in one pass over the buckets.
    ///
    /// `edges` must be sorted values returned by [`snap_to_edge`](Self::snap_to_edge)
    /// (at most [`MAX_CLASSIC_BUCKETS`](crate::MAX_CLASSIC_BUCKETS); extra edges, or edges
    /// beyond `out`'s length, are ignored). Counts are exact for such edges.
    pub fn cumulative_counts(&self, edges: &[f64], out: &mut [u64]) -> u64 {
        let n = edges.len().min(crate::MAX_CLASSIC_BUCKETS);
        let mut indices = [0i32; crate::MAX_CLASSIC_BUCKETS];
        for (index, edge) in indices.iter_mut().zip(&edges[..n]) {
            *index = Self::edge_index(*edge);
        }
        self.cumulative_counts_at(&indices[..n], out)
    }

    /// [`cumulative_counts`](Self::cumulative_counts) at edges given by their
    /// [`edge_index`](Self::edge_index), as a renderer computes them once per family.
    pub fn cumulative_counts_at(&self, edge_indices: &[i32], out: &mut [u64]) -> u64 {
        let n = edge_indices.len().min(out.len()).min(crate::MAX_CLASSIC_BUCKETS);
        let out = &mut out[..n];
        // The first bucket past each edge.
        let mut ends = [0usize; crate::MAX_CLASSIC_BUCKETS];
        for (end, index) in ends.iter_mut().zip(&edge_indices[..n]) {
            *end = (i64::from(*index) - i64::from(Self::BASE)).clamp(0, BUCKETS as i64) as usize;
        }
        let mut seen = self.zero.load(Relaxed);
        let mut next_edge = 0;
        self.for_each_used_block(|start, block| {
            for (bucket, count) in (start..).zip(block) {
                while next_edge < out.len() && ends[next_edge] <= bucket {
                    out[next_edge] = seen;
                    next_edge += 1;
                }
                seen += count.load(Relaxed);
            }
        });
        for cumulative in &mut out[next_edge..] {
            *cumulative = seen;
        }
        seen + self.overflow.load(Relaxed)
    }

    /// The `q`-quantile estimate (`q` in `[0, 1]`), or `None` if the histogram is empty
    /// or `q` is not in `[0, 1]`. See the module docs for the error bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts = BucketCounts {
            zero: self.zero.load(Relaxed),
            overflow: self.overflow.load(Relaxed),
            bucket: |slot: usize| self.buckets[slot].load(Relaxed),
        };
        Self::quantile_of(q, &counts)
    }

    /// The `q`-quantile of bucket counts read through `counts` (one histogram, or several
    /// of the same type summed bucket by bucket).
    pub(crate) fn quantile_of(q: f64, counts: &BucketCounts<impl Fn(usize) -> u64>) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let count = counts.zero + counts.overflow + (0..BUCKETS).map(&counts.bucket).sum::<u64>();
        if count == 0 {
            return None;
        }
        // `ceil(q * count)` clamped to `[1, count]` (`f64::ceil` needs std).
        let target = q * count as f64;
        let rank = (target as u64 + u64::from((target as u64 as f64) < target)).clamp(1, count);
        let mut seen = counts.zero;
        if seen >= rank {
            return Some(0.0);
        }
        for slot in 0..BUCKETS {
            seen += (counts.bucket)(slot);
            if seen >= rank {
                let lower = Self::bucket_upper_edge(slot as isize - 1);
                let upper = Self::bucket_upper_edge(slot as isize);
                return Some(2.0 * lower * upper / (lower + upper));
            }
        }
        Some(f64::INFINITY)
    }

    /// Sets every count and the sum back to zero (for window slots being reused).
    pub(crate) fn reset(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Relaxed);
        }
        for word in &self.used_blocks {
            word.store(0, Relaxed);
        }
        self.zero.store(0, Relaxed);
        self.overflow.store(0, Relaxed);
        self.invalid.store(0, Relaxed);
        self.sum.store(0.0, Relaxed);
    }

    /// Emits every count, the used-block bits and the sum, for a snapshot.
    #[cfg(feature = "postcard")]
    pub(crate) fn save_state(&self, out: &mut dyn FnMut(u64)) {
        let counters = self.buckets.iter().chain(&self.used_blocks).chain([&self.zero, &self.overflow, &self.invalid]);
        for counter in counters {
            out(counter.load(Relaxed));
        }
        out(self.sum.load(Relaxed).to_bits());
    }

    /// Reads back what [`save_state`](Self::save_state) wrote; stores it only if `apply`.
    #[cfg(feature = "postcard")]
    pub(crate) fn load_state(
        &self,
        words: &mut crate::snapshot::Words<'_>,
        apply: bool,
    ) -> Result<(), crate::snapshot::SnapshotError> {
        let counters = self.buckets.iter().chain(&self.used_blocks).chain([&self.zero, &self.overflow, &self.invalid]);
        for counter in counters {
            let value = words.next()?;
            if apply {
                counter.store(value, Relaxed);
            }
        }
        let sum = f64::from_bits(words.next()?);
        if apply {
            self.sum.store(sum, Relaxed);
        }
        Ok(())
    }

    pub(crate) fn zero_and_overflow(&self) -> (u64, u64) {
        (self.zero.load(Relaxed), self.overflow.load(Relaxed))
    }
}

/// The sum of `counters`, with four independent accumulators so the loads overlap (the
/// render of a histogram series reads every bucket once).
fn sum_counts(counters: &[AtomicU64]) -> u64 {
    let mut sums = [0u64; 4];
    let chunks = counters.chunks_exact(4);
    let rest: u64 = chunks.remainder().iter().map(|c| c.load(Relaxed)).sum();
    for chunk in chunks {
        for (sum, counter) in sums.iter_mut().zip(chunk) {
            *sum += counter.load(Relaxed);
        }
    }
    sums.iter().sum::<u64>() + rest
}

/// Bucket counts to read a quantile from.
pub(crate) struct BucketCounts<F> {
    pub(crate) zero: u64,
    pub(crate) overflow: u64,
    pub(crate) bucket: F,
}

impl<const SCHEMA: u8, const MIN_EXP: i16, const BUCKETS: usize> Default for Histogram<SCHEMA, MIN_EXP, BUCKETS> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    type Fine = Histogram<5, -20, 864>;
    type Coarse = Histogram<2, -10, 80>;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_quantiles<const S: u8, const M: i16, const B: usize>(values: &[f64]) {
        let h = Histogram::<S, M, B>::new();
        for &v in values {
            h.record(v);
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let alpha = Histogram::<S, M, B>::ALPHA * (1.0 + 1e-12);
        for q in [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = exact_quantile(&sorted, q);
            let estimate = h.quantile(q).unwrap();
            let error = (estimate - exact).abs() / exact;
            assert!(error <= alpha, "q {q}: {estimate} vs {exact}, error {error} > {alpha}");
        }
    }

    proptest! {
        /// Every value lands in the native bucket whose edges hold it, and the native
        /// counts add up to the total.
        #[test]
        fn native_buckets_hold_their_values(values in proptest::collection::vec(0.0..2e3f64, 0..200)) {
            let h = Coarse::new();
            for &v in &values {
                h.record(v);
            }
            let mut buckets = Vec::new();
            let zero = h.native_buckets(&mut |index, count| buckets.push((index, count)));
            prop_assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(zero + buckets.iter().map(|b| b.1).sum::<u64>(), h.count());
            let gamma = 2f64.powf(2f64.powi(-i32::from(Coarse::SCHEMA)));
            for (index, count) in buckets {
                let (lo, hi) = (gamma.powi(index - 1), gamma.powi(index));
                let inside = values.iter().filter(|&&v| v > lo * (1.0 + 1e-12) && v <= hi * (1.0 - 1e-12)).count() as u64;
                let near = values.iter().filter(|&&v| v > lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12)).count() as u64;
                let overflow = index == Coarse::native_index(80);
                prop_assert!(overflow || (inside..=near).contains(&count), "bucket {} holds {} of [{}, {}]", index, count, inside, near);
            }
            prop_assert_eq!(zero, values.iter().filter(|&&v| v <= Coarse::ZERO_THRESHOLD).count() as u64);
        }
    }

    #[test]
    fn alpha_matches_the_formula() {
        let gamma = 2f64.powf(1.0 / 16.0);
        assert!((LatencyHistogram::ALPHA - (gamma - 1.0) / (gamma + 1.0)).abs() < 1e-15);
        assert!((Fine::ALPHA - 0.010830).abs() < 1e-5);
        assert_eq!(LatencyHistogram::FOOTPRINT, 3504);
    }

    #[test]
    fn range_edges_and_bad_values_are_counted() {
        let h = LatencyHistogram::new();
        for v in [0.0, -0.0, LatencyHistogram::ZERO_THRESHOLD, 1e-300, f64::MIN_POSITIVE / 2.0] {
            h.record(v);
        }
        assert_eq!(h.zero_count(), 5);
        h.record(LatencyHistogram::MAX);
        assert_eq!(h.overflow_count(), 0);
        assert_eq!(h.bucket_count(431), 1);
        h.record(f64::from_bits(LatencyHistogram::MAX.to_bits() + 1));
        h.record(1e300);
        assert_eq!(h.overflow_count(), 2);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -1e-300] {
            h.record(v);
        }
        assert_eq!(h.invalid(), 5);
        assert_eq!(h.count(), 8);
        assert_eq!(h.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(h.quantile(0.0), Some(0.0));
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(h.quantile(1.5), None);
        assert_eq!(LatencyHistogram::new().quantile(0.5), None);
    }

    #[test]
    fn sum_is_exact_for_representable_values() {
        let h = LatencyHistogram::new();
        for _ in 0..1000 {
            h.record(0.25);
        }
        assert_eq!(h.sum(), 250.0);
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn snapped_edges_give_exact_cumulative_counts() {
        let h = LatencyHistogram::new();
        let values: Vec<f64> = (1..=2000).map(|i| i as f64 * 1e-3).collect();
        for &v in &values {
            h.record(v);
        }
        for le in [0.005, 0.01, 0.1, 0.25, 1.0, 1.5] {
            let edge = LatencyHistogram::snap_to_edge(le).unwrap();
            assert!(edge >= le && edge <= le * (1.0 + 2.0 * LatencyHistogram::ALPHA) + 1e-12);
            let exact = values.iter().filter(|&&v| v <= edge).count() as u64;
            let mut out = [0];
            assert_eq!(h.cumulative_counts(&[edge], &mut out), 2000);
            assert_eq!(out[0], exact, "le {le} snapped to {edge}");
        }
        assert_eq!(LatencyHistogram::snap_to_edge(1.0), Some(1.0));
        assert_eq!(LatencyHistogram::snap_to_edge(1000.0), None);
        assert_eq!(LatencyHistogram::snap_to_edge(f64::NAN), None);
    }

    #[test]
    fn adversarial_inputs_stay_within_alpha() {
        check_quantiles::<4, -20, 432>(&[0.3; 1000]);
        let powers: Vec<f64> = (-19..7).map(|e| 2f64.powi(e)).collect();
        check_quantiles::<4, -20, 432>(&powers);
        check_quantiles::<5, -20, 864>(&powers);
        check_quantiles::<2, -10, 40>(&[2f64.powi(-10) * 1.0000001, 2f64.powi(0)]);
        let edges: Vec<f64> = (0..432).map(LatencyHistogram::bucket_upper_edge).collect();
        check_quantiles::<4, -20, 432>(&edges);
        let above: Vec<f64> = edges.iter().map(|e| f64::from_bits(e.to_bits() + 1)).take(431).collect();
        check_quantiles::<4, -20, 432>(&above);
    }

    proptest! {
        #[test]
        fn quantiles_within_alpha_log_uniform(exps in proptest::collection::vec(-19.9f64..6.9, 1..400)) {
            let values: Vec<f64> = exps.iter().map(|e| 2f64.powf(*e)).collect();
            check_quantiles::<4, -20, 432>(&values);
            check_quantiles::<5, -20, 864>(&values);
        }

        #[test]
        fn cumulative_counts_are_exact(
            values in proptest::collection::vec(1e-7f64..200.0, 0..300),
            bounds in proptest::collection::vec(1e-6f64..100.0, 1..12),
        ) {
            let h = LatencyHistogram::new();
            for &v in &values {
                h.record(v);
            }
            let mut edges: Vec<f64> = bounds.iter().filter_map(|&b| LatencyHistogram::snap_to_edge(b)).collect();
            edges.sort_by(f64::total_cmp);
            edges.dedup();
            let mut out = std::vec![0; edges.len()];
            prop_assert_eq!(h.cumulative_counts(&edges, &mut out), values.len() as u64);
            prop_assert_eq!(h.count(), values.len() as u64);
            for (edge, counted) in edges.iter().zip(&out) {
                prop_assert_eq!(*counted, values.iter().filter(|&&v| v <= *edge).count() as u64);
            }
        }

        #[test]
        fn quantiles_within_alpha_coarse(values in proptest::collection::vec(0.001f64..1000.0, 1..400)) {
            check_quantiles::<2, -10, 80>(&values);
        }

        #[test]
        fn quantiles_within_alpha_clustered(base in 1e-5f64..10.0, n in 1usize..50, m in 1usize..50) {
            let mut values = std::vec![base; n];
            values.extend(core::iter::repeat_n(base * 1.01, m));
            check_quantiles::<4, -20, 432>(&values);
            check_quantiles::<2, -10, 80>(&values.iter().map(|v| v.clamp(0.001, 500.0)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn coarse_type_is_usable() {
        let h = Coarse::new();
        h.record(1.0);
        assert_eq!(h.count(), 1);
    }
}
