//! One signal's verdict: the warm-up, the bucket width chosen from the trace, the lower
//! envelope, and the core's [`Assessment`] on it. The choices are explained in the
//! [parent module](super)'s docs.

use plimsoll::memory::{Assessment, LeakRules};

/// The longest warm-up left out by default.
const MAX_WARM_UP_MS: f64 = 5.0 * 60_000.0;
/// The default warm-up as a fraction of the signal's span, when that is shorter.
const WARM_UP_FRACTION: f64 = 0.1;
/// The fewest sampling intervals a bucket spans, so its minimum is a floor, not a sample.
const MIN_SAMPLES_PER_BUCKET: f64 = 4.0;
/// The monitor's coarse ring: the longest span its relative leak threshold is meant for.
const LONGEST_RING_MS: f64 = 48.0 * 3_600_000.0;
/// The shortest analysed span (after the warm-up) a verdict is drawn from.
const MIN_ANALYSED_MS: f64 = 2.0 * 60_000.0;
/// The windows judged, as fractions of the span after the warm-up, ending at the last
/// sample: the whole of it, and the recent part where a leak that started late shows.
const WINDOWS: [f64; 1] = [1.0];
/// How many buckets the analysed span is cut into at the fine resolution...
const FINE_BUCKETS: f64 = 120.0;
/// ...and at the coarse one.
const COARSE_BUCKETS: f64 = 20.0;

/// What the analysis is told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// The memory limit for the forecast.
    pub(crate) limit_bytes: Option<u64>,
    /// The warm-up to leave out; `None`: [`default_warm_up_ms`].
    pub(crate) warm_up_ms: Option<f64>,
    /// The verdict's thresholds (their `warm_up_ms` is not used: see `warm_up_ms` here).
    pub(crate) rules: LeakRules,
}

/// The warm-up left out of a signal spanning `span_ms`: 10 % of it, at most 5 minutes.
pub(crate) fn default_warm_up_ms(span_ms: f64) -> f64 {
    (span_ms * WARM_UP_FRACTION).min(MAX_WARM_UP_MS)
}

/// The verdict on one signal, with what it was drawn from.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    /// Samples of the signal.
    pub(crate) samples: usize,
    /// From its first to its last sample.
    pub(crate) span_ms: f64,
    /// The median time between samples.
    pub(crate) interval_ms: f64,
    /// Left out at the start.
    pub(crate) warm_up_ms: f64,
    /// The bucket width of the resolution the verdict comes from.
    pub(crate) bucket_ms: f64,
    /// The lower envelope at that resolution: `(bucket middle, minimum)`, in milliseconds
    /// since the trace's start and bytes; closed, non-empty buckets after the warm-up.
    pub(crate) envelope: Vec<(f64, f64)>,
    /// The start of the first bucket (the end of the warm-up), where the fitted lines'
    /// x = 0 is, in milliseconds since the trace's start.
    pub(crate) origin_ms: f64,
    /// The core's verdict on the envelope.
    pub(crate) assessment: Assessment,
}

impl Analysis {
    /// The judged segment's Theil–Sen line's value at `ms` (since the trace's start), if
    /// there is a trend.
    pub(crate) fn trend_at(&self, ms: f64) -> Option<f64> {
        self.assessment.trend.map(|t| t.judged().theil_sen.at((ms - self.origin_ms) / 1_000.0))
    }

    /// Where the envelope changed, if the verdict is drawn from the part after a change
    /// point: the start of the first bucket after it, in milliseconds since the trace's
    /// start.
    pub(crate) fn change_ms(&self) -> Option<f64> {
        let change = self.assessment.trend?.change?;
        self.envelope.get(change.after.first).map(|&(ms, _)| ms - self.bucket_ms / 2.0)
    }

    /// The envelope points the verdict is drawn from: those after the change point, or all.
    pub(crate) fn judged_envelope(&self) -> &[(f64, f64)] {
        let first = self.assessment.trend.map_or(0, |t| t.judged().first);
        self.envelope.get(first..).unwrap_or_default()
    }
}

/// The median of the positive gaps between consecutive times, `None` if there are none.
fn median_interval(samples: &[(f64, f64)]) -> Option<f64> {
    let mut gaps: Vec<f64> = samples.windows(2).map(|w| w[1].0 - w[0].0).filter(|&g| g > 0.0).collect();
    if gaps.is_empty() {
        return None;
    }
    let middle = gaps.len() / 2;
    Some(*gaps.select_nth_unstable_by(middle, f64::total_cmp).1)
}

/// The verdict on `samples` (`(ms since the trace's start, bytes)`, in time order): on
/// the whole span after the warm-up and on its last half and last quarter, each at both
/// resolutions; the most severe verdict, the longest window's on a tie.
pub(crate) fn analyse(samples: &[(f64, f64)], settings: &Settings) -> Analysis {
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => (first.0, last.0),
        _ => (0.0, 0.0),
    };
    let span_ms = last - first;
    let interval_ms = median_interval(samples).unwrap_or(0.0);
    let warm_up_ms = settings.warm_up_ms.unwrap_or_else(|| default_warm_up_ms(span_ms));
    let judged_ms = last - (first + warm_up_ms);
    // The relative threshold (0.5 %/h by default) is meant for the monitor's rings of up to
    // 2 days; over longer traces it would ask a linear leak to outgrow its own level, so it
    // is scaled down to the same share of the level over the span.
    let mut rules = settings.rules;
    rules.min_growth_ratio_per_hour *= (LONGEST_RING_MS / judged_ms).min(1.0);
    let settings = &Settings { rules, ..*settings };
    let mut best: Option<Analysis> = None;
    for fraction in WINDOWS {
        let origin_ms = last - judged_ms * fraction;
        let at = |buckets: f64| {
            let bucket_ms = ((last - origin_ms) / buckets).max(MIN_SAMPLES_PER_BUCKET * interval_ms).max(1.0);
            let envelope = envelope(samples, origin_ms, bucket_ms, last + interval_ms);
            let points: Vec<(f64, f64)> = envelope.iter().map(|&(ms, min)| ((ms - origin_ms) / 1_000.0, min)).collect();
            let mut assessment =
                Assessment::of(&points, origin_ms.max(0.0) as u64, &settings.rules, settings.limit_bytes);
            if last - origin_ms < MIN_ANALYSED_MS {
                assessment = Assessment { trend: assessment.trend, ..Assessment::NOT_ENOUGH_DATA };
            }
            let samples = samples.len();
            Analysis { samples, span_ms, interval_ms, warm_up_ms, bucket_ms, envelope, origin_ms, assessment }
        };
        let (fine, coarse) = (at(FINE_BUCKETS), at(COARSE_BUCKETS));
        // Growth that levelled off at either resolution is a plateau, whatever the other says.
        let window = match (fine.assessment.plateau, coarse.assessment.plateau) {
            (true, _) => fine,
            (false, true) => coarse,
            _ if coarse.assessment.verdict > fine.assessment.verdict => coarse,
            _ => fine,
        };
        if best.as_ref().is_none_or(|b| window.assessment.verdict > b.assessment.verdict) {
            best = Some(window);
        }
    }
    best.unwrap_or_else(|| Analysis {
        samples: samples.len(),
        span_ms,
        interval_ms,
        warm_up_ms,
        bucket_ms: 0.0,
        envelope: Vec::new(),
        origin_ms: last,
        assessment: Assessment::NOT_ENOUGH_DATA,
    })
}

/// The minimum of each bucket of `bucket_ms` from `origin_ms` that holds a sample and
/// ends by `covered_until_ms` (a bucket the trace stops inside is left out, as the
/// monitor leaves out the bucket still filling): `(bucket middle, minimum)`.
fn envelope(samples: &[(f64, f64)], origin_ms: f64, bucket_ms: f64, covered_until_ms: f64) -> Vec<(f64, f64)> {
    let closed = ((covered_until_ms - origin_ms) / bucket_ms).floor().max(0.0) as usize;
    let mut minima = vec![f64::INFINITY; closed];
    for &(ms, bytes) in samples.iter().filter(|s| s.0 >= origin_ms) {
        let index = ((ms - origin_ms) / bucket_ms) as usize;
        if let Some(min) = minima.get_mut(index) {
            *min = min.min(bytes);
        }
    }
    minima
        .into_iter()
        .enumerate()
        .filter(|(_, min)| min.is_finite())
        .map(|(index, min)| (origin_ms + (index as f64 + 0.5) * bucket_ms, min))
        .collect()
}
