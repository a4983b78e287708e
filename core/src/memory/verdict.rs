//! The leak verdict: rules, the statistics of one lower envelope, and the decision.

use super::stats::{self, LinearFit, MannKendall, RobustFit};
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
    /// The rise over the span (Theil–Sen slope × span) must be at least this many times
    /// the envelope's noise (1.4826 × [`RobustFit::spread`], a robust standard deviation)
    /// for a leak; 0 turns the check off. Default 2.
    pub min_rise_to_noise: f64,
    /// The recent part of the span that the plateau check looks at, as a fraction of the
    /// span (in `(0, 1)`). Default 1/3.
    pub recent_fraction: f64,
    /// For a leak, the recent part's Theil–Sen slope must be within this factor of the
    /// whole span's (at least 1): slower, the growth has levelled off (a plateau); faster,
    /// it is a step or an acceleration not yet seen for long enough ([`Verdict::Growing`]).
    /// Default 2.
    pub max_slope_change: f64,
}

impl LeakRules {
    /// The defaults: 5 min warm-up, 10 buckets, p < 0.01, 1 MiB/h or 0.5 %/h, a rise of
    /// twice the noise, the last third growing between half and twice as fast as the
    /// whole span.
    pub const DEFAULT: Self = Self {
        warm_up_ms: 5 * 60_000,
        min_buckets: 10,
        max_p_value: 0.01,
        min_growth_bytes_per_hour: MIB,
        min_growth_ratio_per_hour: 0.005,
        min_rise_to_noise: 2.0,
        recent_fraction: 1.0 / 3.0,
        max_slope_change: 2.0,
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
            && (1.0..=f64::MAX).contains(&self.max_slope_change);
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
    /// ([`LeakRules::leak_threshold_bytes_per_hour`]) or rising less than the noise
    /// ([`LeakRules::min_rise_to_noise`]).
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

/// The statistics of one lower envelope: x in seconds since `origin_ms`, y in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trend {
    /// The time x = 0 stands for, in the caller's milliseconds (for a history, the start of
    /// the span's oldest bucket).
    pub origin_ms: u64,
    /// Points (non-empty buckets) analysed.
    pub points: usize,
    /// From the first to the last point, in seconds.
    pub span_seconds: f64,
    /// The newest point's y: the latest lower-envelope value, in bytes.
    pub level_bytes: f64,
    /// The least-squares line (bytes per second).
    pub least_squares: LinearFit,
    /// The Theil–Sen line over the whole span (bytes per second).
    pub theil_sen: RobustFit,
    /// The Theil–Sen line over the recent part ([`LeakRules::recent_fraction`] of the span),
    /// `None` if it holds fewer than 3 points.
    pub recent: Option<RobustFit>,
    /// The Mann–Kendall test.
    pub mann_kendall: MannKendall,
}

impl Trend {
    /// The rise over the span at the Theil–Sen slope, in bytes: `slope × span_seconds`.
    pub fn rise_bytes(&self) -> f64 {
        self.theil_sen.slope * self.span_seconds
    }

    /// The envelope's noise about the Theil–Sen line, in bytes: 1.4826 × its spread (the
    /// median absolute deviation scaled to a standard deviation for normal noise).
    pub fn noise_bytes(&self) -> f64 {
        1.4826 * self.theil_sen.spread
    }

    /// The statistics of `points` (x in seconds, ascending; y in bytes) with x = 0 at
    /// `origin_ms`; `None` with fewer than two distinct x.
    pub fn of(points: &[(f64, f64)], origin_ms: u64, recent_fraction: f64) -> Option<Self> {
        let (&(first_x, _), &(last_x, level_bytes)) = (points.first()?, points.last()?);
        let least_squares = stats::least_squares(points)?;
        let theil_sen = stats::theil_sen(points)?;
        let mann_kendall = stats::mann_kendall(points)?;
        let span_seconds = last_x - first_x;
        let recent_from = last_x - span_seconds * recent_fraction;
        let recent_start = points.partition_point(|p| p.0 < recent_from);
        let recent = (points.len() - recent_start >= 3).then(|| stats::theil_sen(&points[recent_start..])).flatten();
        Some(Self {
            origin_ms,
            points: points.len(),
            span_seconds,
            level_bytes,
            least_squares,
            theil_sen,
            recent,
            mann_kendall,
        })
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
    /// Whether the span grew significantly and fast enough but its recent part is flat: a
    /// cache that filled up to its cap. The verdict is then [`Verdict::Stable`].
    pub plateau: bool,
    /// Seconds from the newest point until the level reaches the limit at the Theil–Sen
    /// slope: 0 once at or over the limit, `+∞` when not growing, `None` without a limit or
    /// without a verdict.
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
        let trend = Trend::of(points, origin_ms, rules.recent_fraction);
        let Some(trend) = trend.filter(|_| points.len() >= rules.min_buckets.max(3)) else {
            return Self { trend, ..Self::NOT_ENOUGH_DATA };
        };
        let threshold = rules.leak_threshold_bytes_per_hour(trend.level_bytes) / SECONDS_PER_HOUR;
        let slope = trend.theil_sen.slope;
        let increasing = trend.mann_kendall.s > 0 && trend.mann_kendall.p_value < rules.max_p_value;
        let (verdict, plateau) = if !increasing || slope <= 0.0 {
            (Verdict::Stable, false)
        } else if slope < threshold || trend.rise_bytes() < rules.min_rise_to_noise * trend.noise_bytes() {
            (Verdict::Growing, false)
        } else if trend.recent.is_some_and(|recent| recent.slope < threshold.max(slope / rules.max_slope_change)) {
            (Verdict::Stable, true)
        } else if trend.recent.is_some_and(|recent| recent.slope > slope * rules.max_slope_change) {
            (Verdict::Growing, false)
        } else {
            (Verdict::LeakSuspected, false)
        };
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
        self.judged().map(|t| t.theil_sen.slope)
    }

    /// The Theil–Sen slope in bytes per hour, `None` without a verdict.
    pub fn slope_bytes_per_hour(&self) -> Option<f64> {
        self.growth_bytes_per_second().map(|s| s * SECONDS_PER_HOUR)
    }

    /// The Mann–Kendall two-sided p-value, `None` without a verdict.
    pub fn p_value(&self) -> Option<f64> {
        self.judged().map(|t| t.mann_kendall.p_value)
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
