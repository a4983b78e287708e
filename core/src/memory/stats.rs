//! Trend statistics on a series of `(x, y)` points, without allocation: a least-squares
//! line, the Theil–Sen robust line, the Mann–Kendall trend test, and the most likely
//! change point (one line against two).
//!
//! The memory monitor feeds them the lower envelope of a ring (x in seconds, y in bytes),
//! but they work on any finite points. Points are taken in the order given, which for
//! Mann–Kendall must be time order. Buffers are fixed-size arrays on the stack, so the
//! work per call is bounded: see each function for its cost. A NaN or infinite
//! coordinate makes the result meaningless (it never panics).
//!
//! Use these functions for a few hundred points at most, as the monitor does:
//! Mann–Kendall is quadratic in the number of points (the change point search is linear).

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

/// The most likely change in a series: the split where one least-squares line before it
/// and another from it on fit the points best, with the evidence for it against a single
/// line. The two lines are independent, so a change can be a step (a level shift), a
/// change of slope (flat then rising, rising then flat), or both.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChangePoint {
    /// The index of the first point after the change.
    pub index: usize,
    /// The least-squares line through the points before `index`...
    pub before: LinearFit,
    /// ...and through those from `index` on.
    pub after: LinearFit,
    /// The sum of squared residuals about one least-squares line through every point...
    pub one_line_sse: f64,
    /// ...and about the two lines.
    pub two_lines_sse: f64,
    /// The evidence for the change, `n × ln(one_line_sse / two_lines_sse)` (each sum plus
    /// 10⁻¹⁰ of the points' total sum of squares about their mean, so exact lines and
    /// rounding make no evidence): twice the gain in log-likelihood of the two lines over
    /// one under Gaussian noise. The Bayesian information criterion asks for more than
    /// `3 × ln n` (two more parameters for the second line and one for where it starts).
    pub score: f64,
}

/// Running sums of shifted points, for least-squares fits of any split in one pass.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
    yy: f64,
}

impl Sums {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
        self.yy += y * y;
    }

    fn minus(&self, other: &Sums) -> Sums {
        Sums {
            n: self.n - other.n,
            x: self.x - other.x,
            y: self.y - other.y,
            xx: self.xx - other.xx,
            xy: self.xy - other.xy,
            yy: self.yy - other.yy,
        }
    }

    /// The sum of squares of y about its mean.
    fn syy(&self) -> f64 {
        (self.yy - self.y * self.y / self.n).max(0.0)
    }

    /// `(slope, intercept, sum of squared residuals, Σ(x − x̄)²)` in the shifted
    /// coordinates; `None` with fewer than two points or every x equal.
    fn fit(&self) -> Option<(f64, f64, f64, f64)> {
        if self.n < 2.0 {
            return None;
        }
        let sxx = self.xx - self.x * self.x / self.n;
        if sxx <= 0.0 {
            return None;
        }
        let sxy = self.xy - self.x * self.y / self.n;
        let slope = sxy / sxx;
        let intercept = (self.y - slope * self.x) / self.n;
        Some((slope, intercept, (self.syy() - slope * sxy).max(0.0), sxx))
    }
}

/// The most likely single change point of `points` (x ascending): over every split with
/// at least `min_before` points before it and `min_after` from it on (each at least 2),
/// the one whose two least-squares lines leave the smallest sum of squared residuals.
/// `None` when no split has that many points on both sides with distinct x.
///
/// Running sums (of x and y less their means, so large values lose little precision)
/// make it one pass over the points for every split: O(n) time, no buffer. Whether the
/// change is real is for the caller to judge from [`ChangePoint::score`].
pub fn change_point(points: &[(f64, f64)], min_before: usize, min_after: usize) -> Option<ChangePoint> {
    let n = points.len();
    let (min_before, min_after) = (min_before.max(2), min_after.max(2));
    if n < min_before + min_after {
        return None;
    }
    let count = n as f64;
    let x0 = points.iter().map(|p| p.0).sum::<f64>() / count;
    let y0 = points.iter().map(|p| p.1).sum::<f64>() / count;
    let mut total = Sums::default();
    for &(x, y) in points {
        total.add(x - x0, y - y0);
    }
    let (_, _, one_line_sse, _) = total.fit()?;
    let floor = 1e-10 * total.syy() + f64::MIN_POSITIVE;
    let mut left = Sums::default();
    // (index, sse) of the best split so far.
    let mut best: Option<(usize, f64)> = None;
    for (index, &(x, y)) in points.iter().enumerate().take(n - min_after + 1) {
        if index >= min_before {
            if let (Some((.., before, _)), Some((.., after, _))) = (left.fit(), total.minus(&left).fit()) {
                let sse = before + after;
                if best.is_none_or(|(_, b)| sse < b) {
                    best = Some((index, sse));
                }
            }
        }
        left.add(x - x0, y - y0);
    }
    let (index, two_lines_sse) = best?;
    let line = |part: &[(f64, f64)]| {
        let mut sums = Sums::default();
        for &(x, y) in part {
            sums.add(x - x0, y - y0);
        }
        let (slope, intercept, sse, sxx) = sums.fit()?;
        let slope_std_error = (part.len() > 2).then(|| libm::sqrt(sse / (sums.n - 2.0) / sxx));
        Some(LinearFit { slope, intercept: intercept + y0 - slope * x0, slope_std_error, points: part.len() })
    };
    let (before, after) = (line(&points[..index])?, line(&points[index..])?);
    let score = count * libm::log((one_line_sse + floor) / (two_lines_sse + floor));
    Some(ChangePoint { index, before, after, one_line_sse, two_lines_sse, score })
}
