//! The bucket layout of Prometheus native histograms and OpenTelemetry exponential
//! histograms, computed at compile time.
//!
//! With schema `n`, bucket `i` covers `(2^((i-1)/2^n), 2^(i/2^n)]`. A positive normal
//! `f64` is `(1 + m / 2^52) * 2^e`, so its index is `e * 2^n + j`, where `j` counts the
//! octave's boundaries `2^(k/2^n)` (`k < 2^n`) whose mantissa is below `m`.
//!
//! `j` is found in O(1): the top `n + 1` mantissa bits select a cell, a table gives the
//! number of boundaries below the cell's start, and one comparison settles the at most
//! one boundary inside the cell: cells are `2^-(n+1)` wide, and neighbouring boundaries
//! are at least `2^(2^-n) - 1 > ln 2 · 2^-n > 2^-(n+1)` apart.
//!
//! The boundaries are the correctly rounded `f64` values of `2^(k/2^n)`, computed in
//! 126-bit fixed point; the computation fails to compile if any value lies too close
//! to a rounding midpoint to be rounded with certainty.

/// The largest supported schema (as in Prometheus): 256 buckets per power of two.
pub const MAX_SCHEMA: u8 = 8;

const MAX_PER_OCTAVE: usize = 1 << MAX_SCHEMA;
const MANTISSA_BITS: u32 = 52;
const LOW_64: u128 = u64::MAX as u128;
/// `ln 2` in Q126 fixed point, rounded down.
const LN2_Q126: u128 = 0x2c5c_85fd_f473_de6a_f278_ece6_00fc_bdab;
const ONE_Q126: u128 = 1 << 126;

/// The boundaries of one octave and the cell table that indexes them.
#[derive(Debug)]
pub(crate) struct Layout {
    schema: u8,
    /// Mantissa bits of `2^(k/2^n)` for `k < 2^n`; `u64::MAX` pads the rest.
    thresholds: [u64; MAX_PER_OCTAVE + 1],
    /// For each cell, how many thresholds lie below the cell's first mantissa.
    below_cell: [u16; 2 * MAX_PER_OCTAVE],
}

impl Layout {
    pub(crate) const fn new(schema: u8) -> Self {
        assert!(schema <= MAX_SCHEMA, "schema must be at most 8");
        let per_octave = 1usize << schema;
        let mut thresholds = [u64::MAX; MAX_PER_OCTAVE + 1];
        let mut k = 0;
        while k < per_octave {
            thresholds[k] = boundary_mantissa(k as u32, schema as u32);
            k += 1;
        }
        let mut below_cell = [0u16; 2 * MAX_PER_OCTAVE];
        let shift = MANTISSA_BITS - schema as u32 - 1;
        let mut cell = 0;
        while cell < 2 * per_octave {
            let start = (cell as u64) << shift;
            let mut below = 0;
            while below < per_octave && thresholds[below] < start {
                below += 1;
            }
            below_cell[cell] = below as u16;
            cell += 1;
        }
        Layout { schema, thresholds, below_cell }
    }

    /// The native bucket index of a positive, normal, finite `value`.
    #[inline]
    pub(crate) fn index(&self, value: f64) -> i32 {
        let bits = value.to_bits();
        let exponent = ((bits >> MANTISSA_BITS) as i32) - 1023;
        let mantissa = bits & ((1 << MANTISSA_BITS) - 1);
        let cell = (mantissa >> (MANTISSA_BITS - self.schema as u32 - 1)) as usize;
        let below = self.below_cell[cell] as usize;
        let within = below + usize::from(self.thresholds[below] < mantissa);
        (exponent << self.schema) + within as i32
    }

    /// The upper edge `2^(index/2^n)` of native bucket `index`, exactly as an `f64`.
    ///
    /// `index / 2^n` must lie within the normal exponent range (checked by the
    /// histogram's compile-time range assertions).
    #[inline]
    pub(crate) const fn upper_edge(&self, index: i32) -> f64 {
        let exponent = index >> self.schema;
        let k = (index & ((1 << self.schema) - 1)) as usize;
        f64::from_bits((((exponent + 1023) as u64) << MANTISSA_BITS) | self.thresholds[k])
    }
}

/// Mantissa bits of `2^(k / 2^schema)`, correctly rounded to 52 bits.
const fn boundary_mantissa(k: u32, schema: u32) -> u64 {
    // x = k / 2^schema in Q126, then 2^x = e^(x ln 2) by its Taylor series. Each of the
    // at most 48 terms is truncated by less than one unit, so the sum is within 2^-119
    // of the true value.
    let x = (k as u128) << (126 - schema);
    let y = mul_q126(x, LN2_Q126);
    let mut term = ONE_Q126;
    let mut sum = ONE_Q126;
    let mut i = 1;
    while i <= 48 && term != 0 {
        term = mul_q126(term, y) / i;
        sum += term;
        i += 1;
    }
    let fraction = sum - ONE_Q126;
    let dropped_bits = 126 - MANTISSA_BITS;
    let remainder = fraction & ((1 << dropped_bits) - 1);
    let half = 1u128 << (dropped_bits - 1);
    let distance = remainder.abs_diff(half);
    assert!(distance > 1 << 10, "boundary too close to a rounding midpoint");
    ((fraction + half) >> dropped_bits) as u64
}

/// `(a * b) >> 126` for Q126 values below 2, through a 256-bit product.
const fn mul_q126(a: u128, b: u128) -> u128 {
    let (a1, a0) = (a >> 64, a & LOW_64);
    let (b1, b0) = (b >> 64, b & LOW_64);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let mid = (p00 >> 64) + (p01 & LOW_64) + (p10 & LOW_64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    let low = (mid << 64) | (p00 & LOW_64);
    (high << 2) | (low >> 126)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index by definition: the smallest `i` with `value <= upper_edge(i)`.
    fn index_by_search(layout: &Layout, value: f64) -> i32 {
        let mut i = layout.index(value) - 3;
        while value > layout.upper_edge(i) {
            i += 1;
        }
        i
    }

    #[test]
    fn powers_of_two_end_their_bucket() {
        for schema in 0..=MAX_SCHEMA {
            let layout = Layout::new(schema);
            for e in -30..30 {
                let v = 2f64.powi(e);
                assert_eq!(layout.index(v), e << schema, "schema {schema}, 2^{e}");
                assert_eq!(layout.upper_edge(e << schema), v);
            }
        }
    }

    #[test]
    fn square_root_of_two_is_exact() {
        // sqrt is correctly rounded by IEEE 754, so it checks the fixed-point series.
        for schema in 1..=MAX_SCHEMA {
            let layout = Layout::new(schema);
            let half_octave = 1 << (schema - 1);
            assert_eq!(layout.upper_edge(half_octave), 2f64.sqrt());
        }
    }

    #[test]
    fn edges_match_powf_within_one_ulp() {
        for schema in 0..=MAX_SCHEMA {
            let layout = Layout::new(schema);
            for k in 0..(1 << schema) {
                let exact = 2f64.powf(k as f64 / (1u32 << schema) as f64);
                let edge = layout.upper_edge(k);
                let ulps = (edge.to_bits() as i64 - exact.to_bits() as i64).abs();
                assert!(ulps <= 1, "schema {schema} k {k}: {edge} vs {exact}");
            }
        }
    }

    #[test]
    fn index_matches_search_around_every_edge() {
        for schema in 0..=MAX_SCHEMA {
            let layout = Layout::new(schema);
            for i in -(3 << schema)..(3 << schema) {
                let edge = layout.upper_edge(i);
                for v in [f64::from_bits(edge.to_bits() - 1), edge, f64::from_bits(edge.to_bits() + 1)] {
                    assert_eq!(layout.index(v), index_by_search(&layout, v), "schema {schema}, {v:e}");
                }
                assert!(layout.index(edge) == i, "edge {edge:e} belongs to bucket {i}");
            }
        }
    }
}
