//! The leak verdict: rules, the statistics of one lower envelope, and the decision.

use super::stats::{self, ChangePoint, LinearFit, MannKendall, RobustFit};
use super::{MemoryError, Resolution};

const MIB: f64 = 1024.0 * 1024.0;
const SECONDS_PER_HOUR: f64 = 3_600.0;

/// The thresholds of the verdict; see the [module docs](super) for the rules and why these
/// defaults ([`LeakRules::DEFAULT`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeakRules {
    /// Buckets that start less than this long after the first sample are left out (start-up
    /// allocations are not a leak). Default 5 minutes.
    pub warm_up_ms: u64,
    /// The fewest non-empty, closed buckets a verdict needs (at least 3). Default 10.
    pub min_buckets: usize,
    /// Mann–Kendall must say "increasing" at a two-sided p-value below this (in `(0, 1)`).
    /// Default 0.01.
    pub max_p_value: f64,
    /// A leak grows by at least this many bytes per hour... Default 1 MiB/h.
    pub min_growth_bytes_per_hour: f64,
    /// ...and by at least this fraction of the current level per hour, whichever is
    /// larger. Default 0.005 (0.5 %/h).
    pub min_growth_ratio_per_hour: f64,
    /// The rise over the judged segment (Theil–Sen slope × its span) must be at least this
    /// many times the envelope's noise (1.4826 × [`RobustFit::spread`], a robust standard
    /// deviation) for a leak; 0 turns the check off. Default 2.
    pub min_rise_to_noise: f64,
    /// The recent part of the judged segment that the plateau check looks at, as a
    /// fraction of its span (in `(0, 1)`). Default 1/3.
    pub recent_fraction: f64,
    /// For a leak, the recent part's Theil–Sen slope must be within this factor of the
    /// judged segment's (at least 1): slower, the growth has levelled off (a plateau);
    /// faster, it is a step or an acceleration not yet seen for long enough
    /// ([`Verdict::Growing`]). After a change point, a slope this many times slower than
    /// before it is growth that levelled off too. Default 2.
    pub max_slope_change: f64,
    /// The evidence a change point needs, per `ln n` of the `n` points (at least 0): the
    /// verdict is drawn from the points after the most likely change when its
    /// [`ChangePoint::score`] is at least `change_penalty × ln n` (and the points on
    /// either side hold no such change of their own). `+∞` turns the search off.
    /// Default 8: the Bayesian information criterion's 3 (the second line's two parameters
    /// and where it starts) lets the best split of white noise through in 1 to 10 % of
    /// series; at 8, fewer than 1 in 1,000 from 20 to 240 points, and a step or a leak
    /// that starts late clears it within minutes of showing.
    pub change_penalty: f64,
    /// For a leak, the slope's standard error ([`Segment::slope_error`], with the noise at
    /// [`Segment::noise_bound_bytes`]) must be at most this fraction of the slope (more
    /// than 0); `+∞` turns the check off. Default 0.2: the forecast's error is the
    /// slope's, and its goal is 25 %.
    pub max_slope_error: f64,
}

impl LeakRules {
    /// The defaults: 5 min warm-up, 10 buckets, p < 0.01, 1 MiB/h or 0.5 %/h, a rise of
    /// twice the noise, the last third growing between half and twice as fast as the
    /// judged segment, a change point at 8 × ln n, a slope known within 20 %.
    pub const DEFAULT: Self = Self {
        warm_up_ms: 5 * 60_000,
        min_buckets: 10,
        max_p_value: 0.01,
        min_growth_bytes_per_hour: MIB,
        min_growth_ratio_per_hour: 0.005,
        min_rise_to_noise: 2.0,
        recent_fraction: 1.0 / 3.0,
        max_slope_change: 2.0,
        change_penalty: 8.0,
        max_slope_error: 0.2,
    };

    /// Checks that every threshold is in range ([`MemoryError::InvalidRules`]).
    pub fn validate(&self, signal: &'static str) -> Result<(), MemoryError> {
        let in_unit = |x: f64| x > 0.0 && x < 1.0;
        let non_negative = |x: f64| (0.0..f64::INFINITY).contains(&x);
        let valid = self.min_buckets >= 3
            && in_unit(self.max_p_value)
            && in_unit(self.recent_fraction)
            && non_negative(self.min_growth_bytes_per_hour)
            && non_negative(self.min_growth_ratio_per_hour)
            && non_negative(self.min_rise_to_noise)
            && (1.0..=f64::MAX).contains(&self.max_slope_change)
            && self.change_penalty >= 0.0
            && self.max_slope_error > 0.0;
        if valid { Ok(()) } else { Err(MemoryError::InvalidRules(signal)) }
    }

    /// The least growth a leak has at `level_bytes`, in bytes per hour:
    /// `max(min_growth_bytes_per_hour, min_growth_ratio_per_hour × level_bytes)`.
    pub fn leak_threshold_bytes_per_hour(&self, level_bytes: f64) -> f64 {
        let relative = self.min_growth_ratio_per_hour * level_bytes;
        if relative > self.min_growth_bytes_per_hour { relative } else { self.min_growth_bytes_per_hour }
    }
}

impl Default for LeakRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the monitor concludes about a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Fewer than [`LeakRules::min_buckets`] buckets after the warm-up: no verdict yet.
    NotEnoughData,
    /// No significant growth: flat, shrinking, noise, a sawtooth with a flat floor, or a
    /// plateau (grew, then flattened).
    Stable,
    /// Significant growth, but slower than a leak
    /// ([`LeakRules::leak_threshold_bytes_per_hour`]), rising less than the noise
    /// ([`LeakRules::min_rise_to_noise`]), not yet known well enough
    /// ([`LeakRules::max_slope_error`]), a step or an acceleration too recent to judge, or
    /// growth right after memory was given back.
    Growing,
    /// Significant growth, at least the leak threshold, still going on.
    LeakSuspected,
}

impl Verdict {
    /// Every verdict, from the least to the most severe (the order of `Ord`).
    pub const ALL: [Verdict; 4] = [Verdict::NotEnoughData, Verdict::Stable, Verdict::Growing, Verdict::LeakSuspected];

    /// The `verdict` label value: `not_enough_data`, `stable`, `growing`, `leak_suspected`.
    pub const fn label(self) -> &'static str {
        match self {
            Verdict::NotEnoughData => "not_enough_data",
            Verdict::Stable => "stable",
            Verdict::Growing => "growing",
            Verdict::LeakSuspected => "leak_suspected",
        }
    }
}

/// The statistics of a run of consecutive points of an envelope: the whole span, or the
/// parts before and after a change point.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Segment {
    /// The index of its first point among the points analysed.
    pub first: usize,
    /// Points in it.
    pub points: usize,
    /// Its first point's x, in seconds.
    pub start_seconds: f64,
    /// From its first to its last point, in seconds.
    pub span_seconds: f64,
    /// The least-squares line (bytes per second).
    pub least_squares: LinearFit,
    /// The Theil–Sen line (bytes per second).
    pub theil_sen: RobustFit,
    /// The Theil–Sen line over its recent part ([`LeakRules::recent_fraction`] of its
    /// span), `None` if that holds fewer than 3 points.
    pub recent: Option<RobustFit>,
    /// The Mann–Kendall test.
    pub mann_kendall: MannKendall,
    /// `Σ(x − x̄)²` over its points, in seconds²: how well its times pin down a slope.
    pub x_sum_squares: f64,
}

impl Segment {
    /// The statistics of `part`, the points analysed from index `first` on; `None` with
    /// fewer than two distinct x.
    fn of(part: &[(f64, f64)], first: usize, recent_fraction: f64) -> Option<Self> {
        let (&(first_x, _), &(last_x, _)) = (part.first()?, part.last()?);
        let least_squares = stats::least_squares(part)?;
        let theil_sen = stats::theil_sen(part)?;
        let mann_kendall = stats::mann_kendall(part)?;
        let span_seconds = last_x - first_x;
        let recent_from = last_x - span_seconds * recent_fraction;
        let recent_start = part.partition_point(|p| p.0 < recent_from);
        let recent = (part.len() - recent_start >= 3).then(|| stats::theil_sen(&part[recent_start..])).flatten();
        let points = part.len();
        let mean_x = part.iter().map(|p| p.0).sum::<f64>() / points as f64;
        let x_sum_squares = part.iter().map(|p| (p.0 - mean_x) * (p.0 - mean_x)).sum();
        let start_seconds = first_x;
        Some(Self {
            first,
            points,
            start_seconds,
            span_seconds,
            least_squares,
            theil_sen,
            recent,
            mann_kendall,
            x_sum_squares,
        })
    }

    /// The rise over the segment at the Theil–Sen slope, in bytes: `slope × span_seconds`.
    pub fn rise_bytes(&self) -> f64 {
        self.theil_sen.slope * self.span_seconds
    }

    /// The noise about the Theil–Sen line, in bytes: 1.4826 × its spread (the median
    /// absolute deviation scaled to a standard deviation for normal noise).
    pub fn noise_bytes(&self) -> f64 {
        1.4826 * self.theil_sen.spread
    }

    /// The noise with the uncertainty of its own estimate from few points: `noise_bytes ×
    /// (1 + 1.16 / √m)` over the `m` points of the Theil–Sen fit (a median absolute
    /// deviation from `m` normal points estimates the standard deviation within about
    /// `1.16 / √m` of it, one standard error).
    pub fn noise_bound_bytes(&self) -> f64 {
        self.noise_bytes() * (1.0 + 1.16 / libm::sqrt(self.theil_sen.points as f64))
    }

    /// The standard error of the slope for points scattered by `noise_bytes` about a line,
    /// `noise_bytes / √Σ(x − x̄)²`, in bytes per second.
    pub fn slope_error(&self, noise_bytes: f64) -> f64 {
        noise_bytes / libm::sqrt(self.x_sum_squares)
    }

    /// Whether Mann–Kendall says "increasing" at p < [`LeakRules::max_p_value`] and the
    /// Theil–Sen slope is positive.
    pub fn increasing(&self, rules: &LeakRules) -> bool {
        self.mann_kendall.s > 0 && self.mann_kendall.p_value < rules.max_p_value && self.theil_sen.slope > 0.0
    }

    /// Rules 2 to 6 of the [module docs](super) on this segment, with `threshold` in
    /// bytes per second, `noise_bytes` the noise its rise must clear and `noise_bound` the
    /// noise its slope error is computed from: the verdict and whether it is a plateau.
    fn judge(&self, threshold: f64, (noise_bytes, noise_bound): (f64, f64), rules: &LeakRules) -> (Verdict, bool) {
        let slope = self.theil_sen.slope;
        if !self.increasing(rules) {
            (Verdict::Stable, false)
        } else if slope < threshold
            || self.rise_bytes() < rules.min_rise_to_noise * noise_bytes
            || self.slope_error(noise_bound) > rules.max_slope_error * slope
        {
            (Verdict::Growing, false)
        } else if self.recent.is_some_and(|recent| recent.slope < threshold.max(slope / rules.max_slope_change)) {
            (Verdict::Stable, true)
        } else if self.recent.is_some_and(|recent| recent.slope > slope * rules.max_slope_change) {
            (Verdict::Growing, false)
        } else {
            (Verdict::LeakSuspected, false)
        }
    }
}

/// A change point found in an envelope and the statistics on either side of it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Change {
    /// The search's figures: where, the least-squares lines on either side, the evidence.
    pub fit: ChangePoint,
    /// The points before the change...
    pub before: Segment,
    /// ...and from it on, which the verdict is drawn from.
    pub after: Segment,
}

/// The statistics of one lower envelope: x in seconds since `origin_ms`, y in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trend {
    /// The time x = 0 stands for, in the caller's milliseconds (for a history, the start of
    /// the span's oldest bucket).
    pub origin_ms: u64,
    /// The newest point's y: the latest lower-envelope value, in bytes.
    pub level_bytes: f64,
    /// The whole span: every point analysed.
    pub whole: Segment,
    /// The most likely change point, when its evidence clears
    /// [`LeakRules::change_penalty`] and the points on either side of it hold no such
    /// change of their own: the verdict is then drawn from the points after it.
    pub change: Option<Change>,
}

impl Trend {
    /// The segment the verdict is drawn from: the points after the change, or the whole
    /// span when there is none.
    pub fn judged(&self) -> Segment {
        self.change.map_or(self.whole, |change| change.after)
    }

    /// The statistics of `points` (x in seconds, ascending; y in bytes) with x = 0 at
    /// `origin_ms`, and the change point search with `rules`; `None` with fewer than two
    /// distinct x.
    pub fn of(points: &[(f64, f64)], origin_ms: u64, rules: &LeakRules) -> Option<Self> {
        let whole = Segment::of(points, 0, rules.recent_fraction)?;
        let level_bytes = points.last()?.1;
        let (min_before, min_after) = Self::min_segments(rules);
        let significant = |part: &[(f64, f64)], min_before: usize, min_after: usize| {
            stats::change_point(part, min_before, min_after)
                .filter(|fit| fit.score >= rules.change_penalty * libm::log(part.len() as f64))
        };
        // A single change, and the part after it one regime: when the points before it
        // change too, the envelope changes again and again (a collector's sawtooth drawn
        // into it, an oscillation) and the part after the last change is one more swing;
        // when the part after it changes (a step in its last few points), the newest change
        // is too recent to judge the part after it.
        let change = significant(points, min_before, min_after)
            .filter(|fit| significant(&points[..fit.index], min_before, min_after).is_none())
            .filter(|fit| significant(&points[fit.index..], 3, 3).is_none())
            .and_then(|fit| {
                let before = Segment::of(&points[..fit.index], 0, rules.recent_fraction)?;
                let after = Segment::of(&points[fit.index..], fit.index, rules.recent_fraction)?;
                Some(Change { fit, before, after })
            });
        Some(Self { origin_ms, level_bytes, whole, change })
    }

    /// The fewest points before and after a change point:
    /// `max(3, min_buckets / 2)` and `min_buckets`.
    fn min_segments(rules: &LeakRules) -> (usize, usize) {
        ((rules.min_buckets / 2).max(3), rules.min_buckets.max(3))
    }
}

/// A signal's verdict with the figures behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Assessment {
    /// The verdict.
    pub verdict: Verdict,
    /// The ring the verdict comes from (`None` for [`Assessment::of`] on bare points).
    pub resolution: Option<Resolution>,
    /// The statistics, `None` when there were fewer than two points.
    pub trend: Option<Trend>,
    /// Whether the envelope grew significantly but has not lately: its recent part is flat
    /// or slowing (a cache that filled up to its cap, a warm-up), or it is flat after a
    /// change point (a step). The verdict is then [`Verdict::Stable`].
    pub plateau: bool,
    /// Seconds from the newest point until the level reaches the limit at the judged
    /// segment's Theil–Sen slope: 0 once at or over the limit, `+∞` when not growing,
    /// `None` without a limit or without a verdict.
    pub eta_seconds: Option<f64>,
}

impl Assessment {
    /// No verdict: fewer than [`LeakRules::min_buckets`] points.
    pub const NOT_ENOUGH_DATA: Self =
        Self { verdict: Verdict::NotEnoughData, resolution: None, trend: None, plateau: false, eta_seconds: None };

    /// The verdict on `points`, a lower envelope after the warm-up (x in seconds,
    /// ascending; y in bytes) with x = 0 at `origin_ms`, against `limit_bytes` if given.
    /// The rules are in the [module docs](super).
    pub fn of(points: &[(f64, f64)], origin_ms: u64, rules: &LeakRules, limit_bytes: Option<u64>) -> Self {
        let trend = Trend::of(points, origin_ms, rules);
        let Some(trend) = trend.filter(|_| points.len() >= rules.min_buckets.max(3)) else {
            return Self { trend, ..Self::NOT_ENOUGH_DATA };
        };
        let threshold = rules.leak_threshold_bytes_per_hour(trend.level_bytes) / SECONDS_PER_HOUR;
        let whole = trend.whole;
        let (verdict, plateau) = match trend.change {
            None => whole.judge(threshold, (whole.noise_bytes(), whole.noise_bound_bytes()), rules),
            Some(Change { fit, before, after }) => {
                // The noise does not change at a change point, and the shorter side's
                // estimate is the less reliable: the larger of the two is used on both.
                let noise = before.noise_bytes().max(after.noise_bytes());
                let bound = before.noise_bound_bytes().max(after.noise_bound_bytes());
                let (verdict, plateau) = after.judge(threshold, (noise, bound), rules);
                // Growth that slowed down at the change: a warm-up or a cache levelling off.
                let slowed = before.rise_bytes() >= rules.min_rise_to_noise * noise
                    && after.theil_sen.slope * rules.max_slope_change < before.theil_sen.slope;
                // Grew over the span (a step up, or growth before the change), not after it.
                let grew = whole.increasing(rules);
                // Memory given back at the change: growth after it may be given back again
                // (the next tooth of a collector's sawtooth slower than the buckets).
                let at = after.start_seconds;
                let dropped = fit.after.at(at) < fit.before.at(at) - rules.min_rise_to_noise * noise;
                match verdict {
                    Verdict::LeakSuspected if slowed => (Verdict::Stable, true),
                    Verdict::LeakSuspected if dropped => (Verdict::Growing, false),
                    Verdict::Stable => (Verdict::Stable, plateau || grew),
                    verdict => (verdict, plateau),
                }
            }
        };
        let slope = trend.judged().theil_sen.slope;
        let eta_seconds = limit_bytes.map(|limit| {
            let headroom = limit as f64 - trend.level_bytes;
            match verdict {
                _ if headroom <= 0.0 => 0.0,
                Verdict::Growing | Verdict::LeakSuspected => headroom / slope,
                Verdict::Stable | Verdict::NotEnoughData => f64::INFINITY,
            }
        });
        Self { verdict, resolution: None, trend: Some(trend), plateau, eta_seconds }
    }

    /// The Theil–Sen slope in bytes per second, `None` without a verdict.
    pub fn growth_bytes_per_second(&self) -> Option<f64> {
        self.judged().map(|t| t.judged().theil_sen.slope)
    }

    /// The Theil–Sen slope in bytes per hour, `None` without a verdict.
    pub fn slope_bytes_per_hour(&self) -> Option<f64> {
        self.growth_bytes_per_second().map(|s| s * SECONDS_PER_HOUR)
    }

    /// The Mann–Kendall two-sided p-value, `None` without a verdict.
    pub fn p_value(&self) -> Option<f64> {
        self.judged().map(|t| t.judged().mann_kendall.p_value)
    }

    /// `1 − p-value`: the confidence that the envelope has a monotonic trend (in either
    /// direction; the verdict says which), `None` without a verdict.
    pub fn confidence(&self) -> Option<f64> {
        self.p_value().map(|p| 1.0 - p)
    }

    /// The latest lower-envelope value in bytes, `None` without a verdict.
    pub fn level_bytes(&self) -> Option<f64> {
        self.judged().map(|t| t.level_bytes)
    }

    fn judged(&self) -> Option<&Trend> {
        self.trend.as_ref().filter(|_| self.verdict != Verdict::NotEnoughData)
    }
}
