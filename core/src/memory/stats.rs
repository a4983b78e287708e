//! Trend statistics on a series of `(x, y)` points, without allocation: a least-squares
//! line, the Theil–Sen robust line and the Mann–Kendall trend test.
//!
//! The memory monitor feeds them the lower envelope of a ring (x in seconds, y in bytes),
//! but they work on any finite points. Points are taken in the order given, which for
//! Mann–Kendall must be time order. Buffers are fixed-size arrays on the stack, so the
//! work per call is bounded: see each function for its cost. A NaN or infinite
//! coordinate makes the result meaningless (it never panics).
//!
//! Use these functions for a few hundred points at most, as the monitor does:
//! Mann–Kendall is quadratic in the number of points.

/// The most points Theil–Sen uses; longer series are subsampled evenly to this many.
pub const THEIL_SEN_MAX_POINTS: usize = 64;
/// The most pairwise slopes Theil–Sen holds: `64 × 63 / 2` (16,128 bytes on the stack).
pub const THEIL_SEN_MAX_SLOPES: usize = THEIL_SEN_MAX_POINTS * (THEIL_SEN_MAX_POINTS - 1) / 2;

/// A least-squares line `y = intercept + slope × x` (what Prometheus' `deriv` and
/// `predict_linear` compute).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinearFit {
    /// `Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²`, in units of y per unit of x.
    pub slope: f64,
    /// `ȳ − slope × x̄`: the line's value at `x = 0`.
    pub intercept: f64,
    /// The standard error of the slope, `sqrt(Σ residual² / (n − 2) / Σ(x − x̄)²)`; `None`
    /// for two points, which a line always fits exactly.
    pub slope_std_error: Option<f64>,
    /// Points fitted.
    pub points: usize,
}

impl LinearFit {
    /// The line's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// The ordinary least-squares line through `points`, in two passes (centred sums, so
/// large x such as Unix times lose no precision). `None` with fewer than two points or
/// when every x is the same.
pub fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let count = n as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / count;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let slope_std_error = (n > 2).then(|| {
        let ssr: f64 = points.iter().map(|&(x, y)| (y - intercept - slope * x) * (y - intercept - slope * x)).sum();
        libm::sqrt(ssr / (count - 2.0) / sxx)
    });
    Some(LinearFit { slope, intercept, slope_std_error, points: n })
}

/// A Theil–Sen line: the median of pairwise slopes, and the median of `y − slope × x` as
/// the intercept; with the spread of the points about it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RobustFit {
    /// The median of the slopes `(yⱼ − yᵢ) / (xⱼ − xᵢ)` over pairs with `xᵢ ≠ xⱼ`.
    pub slope: f64,
    /// The median of `yᵢ − slope × xᵢ`.
    pub intercept: f64,
    /// The median absolute residual, `median |yᵢ − intercept − slope × xᵢ|`: the spread of
    /// the points about the line (times 1.4826, a robust standard deviation of the noise).
    pub spread: f64,
    /// Points used (at most [`THEIL_SEN_MAX_POINTS`]).
    pub points: usize,
    /// Pairwise slopes the median was taken over.
    pub slopes: usize,
}

impl RobustFit {
    /// The line's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// The Theil–Sen estimator over `points`, with the spread of the points about its line.
/// Robust to up to about 29 % of outliers, where one spike moves a least-squares slope
/// arbitrarily far.
///
/// At most [`THEIL_SEN_MAX_POINTS`] = 64 points are used: with `n > 64` points, those at
/// indices `⌊i × (n − 1) / 63⌋` for `i = 0..64` (evenly spread, first and last included),
/// for the slope, the intercept and the spread alike. Pairs with equal x have no slope
/// and are skipped; the median of an even count is the mean of the two middle values. The
/// medians are found with `select_nth_unstable_by` on stack arrays: O(m²) time for
/// `m ≤ 64` points, 16.6 KB of stack. `None` when no pair has distinct x (fewer than two
/// points, or every x equal).
// Not inlined, so its 16 KB of slopes sit in one frame however many callers it has.
#[inline(never)]
pub fn theil_sen(points: &[(f64, f64)]) -> Option<RobustFit> {
    let n = points.len();
    let m = n.min(THEIL_SEN_MAX_POINTS);
    let pick = |i: usize| if n <= THEIL_SEN_MAX_POINTS { points[i] } else { points[i * (n - 1) / (m - 1)] };
    let mut slopes = [0.0; THEIL_SEN_MAX_SLOPES];
    let mut count = 0;
    for i in 0..m {
        let (xi, yi) = pick(i);
        for j in i + 1..m {
            let (xj, yj) = pick(j);
            if xj != xi {
                slopes[count] = (yj - yi) / (xj - xi);
                count += 1;
            }
        }
    }
    let slope = median(&mut slopes[..count])?;
    let mut residuals = [0.0; THEIL_SEN_MAX_POINTS];
    for (i, residual) in residuals[..m].iter_mut().enumerate() {
        let (x, y) = pick(i);
        *residual = y - slope * x;
    }
    let intercept = median(&mut residuals[..m])?;
    for residual in &mut residuals[..m] {
        *residual = libm::fabs(*residual - intercept);
    }
    let spread = median(&mut residuals[..m])?;
    Some(RobustFit { slope, intercept, spread, points: m, slopes: count })
}

/// The median of `values` (reordering them), the mean of the two middle values for an
/// even count; `None` if empty.
fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    // The lower middle value is the largest of the lower half.
    let lower = lower.iter().copied().max_by(f64::total_cmp)?;
    Some((lower + upper) / 2.0)
}

/// The Mann–Kendall trend test: is there a monotonic trend, whatever its shape?
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MannKendall {
    /// `S = Σᵢ<ⱼ sign(yⱼ − yᵢ)`: positive for an increasing series.
    pub s: i64,
    /// The variance of S under "no trend", with the tie correction:
    /// `(n(n − 1)(2n + 5) − Σ t(t − 1)(2t + 5)) / 18` over each group of `t` equal values.
    pub variance: f64,
    /// `(S − 1) / √variance` for `S > 0`, `(S + 1) / √variance` for `S < 0`, 0 otherwise
    /// (the continuity correction); 0 when the variance is 0 (every value equal).
    pub z: f64,
    /// The two-sided p-value, `erfc(|z| / √2)`: the chance of a trend at least this strong
    /// in either direction if there were none.
    pub p_value: f64,
    /// Points tested.
    pub points: usize,
}

/// The Mann–Kendall test over the y of `points`, in the order given (time order). The
/// normal approximation behind z and the p-value is usual from 10 points on. O(n²) time,
/// no buffer: each value's tie group size is counted directly. `None` with fewer than two
/// points.
pub fn mann_kendall(points: &[(f64, f64)]) -> Option<MannKendall> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mut s: i64 = 0;
    // Σ over points of (t − 1)(2t + 5), t its tie group's size: each group of t equal
    // values is counted once per member, so this is Σ over groups of t(t − 1)(2t + 5).
    let mut ties: u128 = 0;
    for (i, &(_, yi)) in points.iter().enumerate() {
        let mut equal: u128 = 1;
        for (j, &(_, yj)) in points.iter().enumerate() {
            if j == i {
                continue;
            }
            if yj == yi {
                equal += 1;
            } else if j > i {
                s += if yj > yi { 1 } else { -1 };
            }
        }
        ties += (equal - 1) * (2 * equal + 5);
    }
    let n = n as u128;
    let variance = (n * (n - 1) * (2 * n + 5) - ties) as f64 / 18.0;
    let z = match s {
        _ if variance <= 0.0 => 0.0,
        0 => 0.0,
        s if s > 0 => (s - 1) as f64 / libm::sqrt(variance),
        s => (s + 1) as f64 / libm::sqrt(variance),
    };
    let p_value = libm::erfc(libm::fabs(z) / core::f64::consts::SQRT_2);
    Some(MannKendall { s, variance, z, p_value, points: n as usize })
}
