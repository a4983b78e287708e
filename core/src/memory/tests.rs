//! Tests of the memory monitor: the estimators against naive models, the verdict on
//! synthetic scenarios, and the export.

use super::stats::{self, THEIL_SEN_MAX_POINTS};
use super::*;
use crate::{Format, Registry};
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;
use std::{format, println, vec};

const MIB: f64 = 1024.0 * 1024.0;
const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;

// ---------------------------------------------------------------------------------------
// Estimators against naive models
// ---------------------------------------------------------------------------------------

/// Least squares from the textbook normal equations, with plain sums.
fn naive_least_squares(points: &[(f64, f64)]) -> Option<(f64, f64, Option<f64>)> {
    let n = points.len() as f64;
    let sx: f64 = points.iter().map(|p| p.0).sum();
    let sy: f64 = points.iter().map(|p| p.1).sum();
    let sxx: f64 = points.iter().map(|p| p.0 * p.0).sum();
    let sxy: f64 = points.iter().map(|p| p.0 * p.1).sum();
    let denominator = n * sxx - sx * sx;
    if points.len() < 2 || denominator == 0.0 {
        return None;
    }
    let slope = (n * sxy - sx * sy) / denominator;
    let intercept = (sy - slope * sx) / n;
    let se = (points.len() > 2).then(|| {
        let ssr: f64 = points.iter().map(|&(x, y)| (y - intercept - slope * x).powi(2)).sum();
        let centred = sxx - sx * sx / n;
        (ssr / (n - 2.0) / centred).sqrt()
    });
    Some((slope, intercept, se))
}

/// The documented subsample, then every pairwise slope in a `Vec`, sorted.
fn naive_theil_sen(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let n = points.len();
    let used: Vec<(f64, f64)> = if n <= THEIL_SEN_MAX_POINTS {
        points.to_vec()
    } else {
        (0..THEIL_SEN_MAX_POINTS).map(|i| points[i * (n - 1) / (THEIL_SEN_MAX_POINTS - 1)]).collect()
    };
    let mut slopes = Vec::new();
    for i in 0..used.len() {
        for j in i + 1..used.len() {
            if used[j].0 != used[i].0 {
                slopes.push((used[j].1 - used[i].1) / (used[j].0 - used[i].0));
            }
        }
    }
    let sorted_median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let k = v.len() / 2;
        if v.len() % 2 == 1 { v[k] } else { (v[k - 1] + v[k]) / 2.0 }
    };
    if slopes.is_empty() {
        return None;
    }
    let slope = sorted_median(slopes);
    let intercept = sorted_median(used.iter().map(|&(x, y)| y - slope * x).collect());
    let spread = sorted_median(used.iter().map(|&(x, y)| (y - slope * x - intercept).abs()).collect());
    Some((slope, intercept, spread))
}

/// S by the definition; the tie correction from the sorted values' runs.
fn naive_mann_kendall(ys: &[f64]) -> (i64, f64) {
    let n = ys.len();
    let mut s = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            s += match ys[j].partial_cmp(&ys[i]).unwrap() {
                core::cmp::Ordering::Greater => 1,
                core::cmp::Ordering::Less => -1,
                core::cmp::Ordering::Equal => 0,
            };
        }
    }
    let mut sorted = ys.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties: i128 = 0;
    for run in sorted.chunk_by(|a, b| a == b) {
        let t = run.len() as i128;
        ties += t * (t - 1) * (2 * t + 5);
    }
    let n = n as i128;
    (s, (n * (n - 1) * (2 * n + 5) - ties) as f64 / 18.0)
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
}

proptest! {
    #[test]
    fn least_squares_matches_the_normal_equations(
        points in proptest::collection::vec((0u32..10_000, 0.0f64..1e9), 0..200),
    ) {
        let points: Vec<(f64, f64)> = points.into_iter().map(|(x, y)| (f64::from(x), y)).collect();
        let fit = stats::least_squares(&points);
        match (fit, naive_least_squares(&points)) {
            (None, None) => {}
            (Some(fit), Some((slope, intercept, se))) => {
                // The slope's scale: y range over x range.
                let scale = 1e9 / 1e4;
                prop_assert!((fit.slope - slope).abs() <= 1e-7 * scale, "{} vs {}", fit.slope, slope);
                prop_assert!((fit.intercept - intercept).abs() <= 1e-3 * 1e9 * 1e-4 + 1e-6 * intercept.abs());
                match (fit.slope_std_error, se) {
                    (None, None) => {}
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 1e-6 * scale + 1e-6 * b, "{} vs {}", a, b),
                    other => prop_assert!(false, "{:?}", other),
                }
                prop_assert_eq!(fit.points, points.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Small integer ranges give duplicate x (skipped pairs) and tied slopes; up to 150
    /// points exercises the subsample.
    #[test]
    fn theil_sen_matches_the_median_of_all_pairwise_slopes(
        points in proptest::collection::vec((0u8..40, -20i32..20), 0..150),
        shift in -1e6f64..1e6,
    ) {
        let points: Vec<(f64, f64)> =
            points.into_iter().map(|(x, y)| (f64::from(x) * 30.0 + shift, f64::from(y) * 1e6)).collect();
        let fit = stats::theil_sen(&points);
        match (fit, naive_theil_sen(&points)) {
            (None, None) => {}
            (Some(fit), Some((slope, intercept, spread))) => {
                prop_assert_eq!(fit.slope, slope);
                prop_assert_eq!(fit.intercept, intercept);
                prop_assert_eq!(fit.spread, spread);
                prop_assert_eq!(fit.points, points.len().min(THEIL_SEN_MAX_POINTS));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn mann_kendall_matches_the_definition(ys in proptest::collection::vec(0u8..12, 2..120)) {
        let ys: Vec<f64> = ys.into_iter().map(f64::from).collect();
        let points: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect();
        let mk = stats::mann_kendall(&points).unwrap();
        let (s, variance) = naive_mann_kendall(&ys);
        prop_assert_eq!(mk.s, s);
        prop_assert_eq!(mk.variance, variance);
        let z = if variance == 0.0 || s == 0 { 0.0 } else { (s - s.signum()) as f64 / variance.sqrt() };
        prop_assert!(close(mk.z, z, 1e-12), "{} vs {}", mk.z, z);
        prop_assert!((0.0..=1.0).contains(&mk.p_value));
        prop_assert_eq!(mk.points, ys.len());
    }
}

/// The sum of squared residuals about the least-squares line, by the textbook.
fn naive_sse(points: &[(f64, f64)]) -> Option<f64> {
    let (slope, intercept, _) = naive_least_squares(points)?;
    Some(points.iter().map(|&(x, y)| (y - intercept - slope * x).powi(2)).sum())
}

proptest! {
    /// The one-pass search finds the split every two-pass fit would: the smallest sum of
    /// squared residuals of two lines, with its evidence against one line.
    #[test]
    fn change_point_matches_fitting_every_split(
        ys in proptest::collection::vec(-50i32..50, 8..80),
        step in 0usize..80,
        jump in -500i32..500,
        min_before in 2usize..6,
        min_after in 2usize..12,
    ) {
        let points: Vec<(f64, f64)> = ys
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64 * 30.0, 2e8 + f64::from(y) * 1e5 + if i >= step { f64::from(jump) * 1e5 } else { 0.0 }))
            .collect();
        let n = points.len();
        let naive = (min_before..=n.saturating_sub(min_after))
            .filter_map(|k| Some((k, naive_sse(&points[..k])? + naive_sse(&points[k..])?)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match (stats::change_point(&points, min_before, min_after), naive) {
            (None, None) => {}
            (Some(fit), Some((_, best))) => {
                let scale = naive_sse(&points).unwrap() + 1e6;
                prop_assert!((fit.two_lines_sse - best).abs() <= 1e-6 * scale, "{} vs {}", fit.two_lines_sse, best);
                prop_assert!(fit.index >= min_before && n - fit.index >= min_after);
                let (one, two) = (naive_sse(&points).unwrap(), naive_sse(&points[..fit.index]).unwrap() + naive_sse(&points[fit.index..]).unwrap());
                prop_assert!((fit.one_line_sse - one).abs() <= 1e-6 * scale);
                prop_assert!((two - best).abs() <= 1e-6 * scale, "the index's own fits: {} vs {}", two, best);
                prop_assert!(fit.score >= -1e-6, "two lines never fit worse than one: {}", fit.score);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn estimators_on_degenerate_input() {
    assert_eq!(stats::least_squares(&[]), None);
    assert_eq!(stats::least_squares(&[(1.0, 1.0), (1.0, 2.0)]), None, "every x equal");
    let two = stats::least_squares(&[(0.0, 1.0), (2.0, 5.0)]).unwrap();
    assert_eq!((two.slope, two.intercept, two.slope_std_error), (2.0, 1.0, None));
    assert_eq!(two.at(1.0), 3.0);
    assert_eq!(stats::theil_sen(&[(3.0, 1.0)]), None);
    assert_eq!(stats::theil_sen(&[(3.0, 1.0), (3.0, 7.0)]), None, "no pair with distinct x");
    assert_eq!(stats::mann_kendall(&[(0.0, 1.0)]), None);
    assert_eq!(stats::change_point(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], 2, 2), None, "too few points");
    let clean = [(0.0, 5.0), (1.0, 5.0), (2.0, 5.0), (3.0, 9.0), (4.0, 9.0), (5.0, 9.0)];
    let step = stats::change_point(&clean, 2, 2).unwrap();
    assert_eq!((step.index, step.before.slope, step.after.at(4.0)), (3, 0.0, 9.0));
    assert!(step.score > 100.0, "an exact step: {}", step.score);
    let line: Vec<(f64, f64)> = (0..20).map(|i| (f64::from(i), 3.0 * f64::from(i))).collect();
    assert!(stats::change_point(&line, 3, 3).unwrap().score.abs() < 1e-6, "an exact line has no change");
    let flat = stats::mann_kendall(&[(0.0, 4.0), (1.0, 4.0), (2.0, 4.0)]).unwrap();
    assert_eq!((flat.s, flat.variance, flat.z, flat.p_value), (0, 0.0, 0.0, 1.0), "every value tied");
    let nan = stats::mann_kendall(&[(0.0, f64::NAN), (1.0, 1.0), (2.0, f64::NAN)]).unwrap();
    assert!(nan.p_value.is_finite(), "NaN input gives a meaningless result, not a panic");
}

/// A robust slope shrugs off a spike that drags least squares far away.
#[test]
fn theil_sen_ignores_a_spike() {
    let mut points: Vec<(f64, f64)> = (0..40).map(|i| (f64::from(i), 2.0 * f64::from(i))).collect();
    points[39].1 = 10_000.0;
    assert_eq!(stats::theil_sen(&points).unwrap().slope, 2.0);
    assert!(stats::least_squares(&points).unwrap().slope > 20.0);
}

/// Hand-computed examples. For 1, 2, 3, 4, 5: all 10 pairs increase, so S = 10; with no
/// ties the variance is 5 × 4 × 15 / 18 = 50/3; z = (10 − 1) / √(50/3) = 2.2045; the
/// two-sided p-value is 2 × (1 − Φ(2.2045)) = 2 × 0.013743 = 0.027486.
///
/// For 1, 2, 2, 3, 3, 3: S = 5 + 3 + 3 = 11 (the first value is below all five others,
/// each 2 below the three 3s, the tied pairs count 0); the tie groups (2 twos, 3 threes)
/// take (2·1·9 + 3·2·11) / 18 = 84/18 off 6·5·17/18 = 510/18, so the variance is 426/18 =
/// 23.667; z = 10 / 4.8648 = 2.0556; p = 2 × 0.019912 = 0.039824.
///
/// For 5, 3, 4, 2, 1, 1, 0 (decreasing, one tie): S = −18, variance (7·6·19 − 1·2·9·... )
/// = (798 − 18) / 18 = 43.333; z = (−18 + 1) / 6.5828 = −2.5825; p = 0.0098.
#[test]
fn mann_kendall_textbook_values() {
    let series = |ys: &[f64]| -> Vec<(f64, f64)> { ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect() };
    let cases: [(&[f64], i64, f64, f64, f64); 3] = [
        (&[1.0, 2.0, 3.0, 4.0, 5.0], 10, 50.0 / 3.0, 2.204_541, 0.027_486),
        (&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0], 11, 426.0 / 18.0, 2.055_566, 0.039_824),
        (&[5.0, 3.0, 4.0, 2.0, 1.0, 1.0, 0.0], -18, 780.0 / 18.0, -2.582_485, 0.009_809),
    ];
    for (ys, s, variance, z, p) in cases {
        let mk = stats::mann_kendall(&series(ys)).unwrap();
        assert_eq!(mk.s, s, "{ys:?}");
        assert!((mk.variance - variance).abs() < 1e-12, "{ys:?}: {}", mk.variance);
        assert!((mk.z - z).abs() < 1e-6, "{ys:?}: {}", mk.z);
        assert!((mk.p_value - p).abs() < 1e-6, "{ys:?}: {}", mk.p_value);
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (SplitMix64) for noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

type History = MemoryHistory;

/// Samples `bytes(t_seconds, rng)` every `step_s` seconds from `from_s` to `to_s`.
fn feed(history: &History, from_s: u64, to_s: u64, step_s: u64, rng: &mut Rng, bytes: impl Fn(f64, &mut Rng) -> f64) {
    for t in (from_s..to_s).step_by(step_s as usize) {
        history.record(t * 1_000, bytes(t as f64, rng).max(0.0) as u64);
    }
}

fn report(name: &str, a: &Assessment) {
    println!(
        "{name}: {:?} from {:?} ring, slope {:.3} MiB/h, p {:.2e}, plateau {}, eta {:?} h, points {:?}",
        a.verdict,
        a.resolution,
        a.slope_bytes_per_hour().unwrap_or(f64::NAN) / MIB,
        a.p_value().unwrap_or(f64::NAN),
        a.plateau,
        a.eta_seconds.map(|s| s / 3_600.0),
        a.trend.map(|t| t.whole.points),
    );
}

/// A GC sawtooth: from `floor` up by `amplitude` over `period_s`, then collected.
fn sawtooth(t: f64, period_s: f64, floor: f64, amplitude: f64) -> f64 {
    floor + amplitude * ((t % period_s) / period_s)
}

#[test]
fn linear_leak_is_suspected_with_its_slope_and_eta() {
    let history = History::new("rss");
    let mut rng = Rng(1);
    // 200 MiB plus 10 MiB/h, ±3 MiB of noise, a sample every 5 s for 2 hours.
    let truth = |t: f64| 200.0 * MIB + 10.0 * MIB * t / 3_600.0;
    feed(&history, 0, 7_200, 5, &mut rng, |t, rng| truth(t) + 3.0 * MIB * rng.unit());
    let now = 2 * HOUR;
    let limit = 512 * (1 << 20);
    let a = history.assess(now, Some(limit));
    report("linear leak 10 MiB/h", &a);
    assert_eq!(a.verdict, Verdict::LeakSuspected);
    assert_eq!(a.resolution, Some(Resolution::Fine));
    let slope = a.slope_bytes_per_hour().unwrap() / MIB;
    assert!((slope - 10.0).abs() <= 1.0, "slope {slope} MiB/h");
    let exact_eta = (limit as f64 - truth(7_200.0)) / (10.0 * MIB / 3_600.0);
    let eta = a.eta_seconds.unwrap();
    println!("  eta {:.2} h, exact {:.2} h", eta / 3_600.0, exact_eta / 3_600.0);
    assert!((eta - exact_eta).abs() <= 0.1 * exact_eta, "eta {eta} vs {exact_eta}");
    assert!(a.confidence().unwrap() > 0.99);
    // The least-squares line agrees on clean linear data.
    let ls = a.trend.unwrap().whole.least_squares;
    assert!((ls.slope * 3_600.0 / MIB - 10.0).abs() <= 1.0);
    assert!(ls.slope_std_error.unwrap() * 3_600.0 / MIB < 0.5);
}

/// The first minute at which `leak` (bytes at t seconds, sampled every 5 s) is flagged.
fn minutes_to_flag(leak: impl Fn(f64, &mut Rng) -> f64, limit_minutes: u64) -> Option<(u64, Assessment)> {
    let history = History::new("rss");
    let mut rng = Rng(11);
    (1..=limit_minutes).find_map(|minute| {
        feed(&history, (minute - 1) * 60, minute * 60, 5, &mut rng, &leak);
        let a = history.assess(minute * MINUTE, Some(512 << 20));
        (a.verdict == Verdict::LeakSuspected).then_some((minute, a))
    })
}

/// The detection goals for a leak from the process start: one that would fill
/// 512 MiB within an hour is flagged within 10 minutes, one that would fill it within a
/// day within an hour.
#[test]
fn fast_leaks_are_flagged_early() {
    for (name, rate_mib_per_hour, goal_minutes) in [("1 h to the limit", 412.0, 10), ("24 h to the limit", 17.2, 60)] {
        let leak = move |t: f64, rng: &mut Rng| 100.0 * MIB + rate_mib_per_hour * MIB * t / 3_600.0 + MIB * rng.unit();
        let (minute, a) = minutes_to_flag(leak, goal_minutes).unwrap_or_else(|| panic!("{name}: not flagged"));
        report(&format!("leak, {name}, flagged at {minute} min"), &a);
        // At the first flag the slope rests on a few minutes of data: the goal for
        // the forecast is 25 %.
        let slope = a.slope_bytes_per_hour().unwrap() / MIB;
        assert!((slope - rate_mib_per_hour).abs() <= 0.25 * rate_mib_per_hour, "{name}: {slope}");
        let level = 100.0 + rate_mib_per_hour * minute as f64 / 60.0;
        let exact_eta = (512.0 - level) / rate_mib_per_hour * 3_600.0;
        let eta = a.eta_seconds.unwrap();
        println!("  eta {:.0} s, exact from now {:.0} s", eta, exact_eta);
        assert!((eta - exact_eta).abs() <= 0.25 * exact_eta, "{name}: eta {eta} vs {exact_eta}");
    }
}

/// A slow leak drowned in noise: the 2-hour ring's envelope (minima of 3 samples) does not
/// rise above its noise, the 2-day ring's (minima of 60) does.
#[test]
fn slow_leak_in_heavy_noise_is_found_by_the_coarse_ring() {
    let history = History::new("rss");
    let mut rng = Rng(12);
    let leak = |t: f64, rng: &mut Rng| 200.0 * MIB + 2.0 * MIB * t / 3_600.0 + 20.0 * MIB * rng.unit();
    feed(&history, 0, 2 * 3_600, 10, &mut rng, leak);
    let fine = history.assess_span(2 * HOUR, Resolution::Fine, u64::MAX, None);
    report("slow leak 2 MiB/h, ±20 MiB noise, 2 h, fine", &fine);
    assert_ne!(fine.verdict, Verdict::LeakSuspected);
    let early = history.assess(2 * HOUR, None);
    report("slow leak 2 MiB/h, ±20 MiB noise, 2 h", &early);
    assert_eq!((early.verdict, early.resolution), (Verdict::LeakSuspected, Some(Resolution::Coarse)));
    feed(&history, 2 * 3_600, 24 * 3_600, 10, &mut rng, leak);
    let late = history.assess(24 * HOUR, None);
    report("slow leak 2 MiB/h, ±20 MiB noise, 24 h", &late);
    assert_eq!((late.verdict, late.resolution), (Verdict::LeakSuspected, Some(Resolution::Coarse)));
    assert!((late.slope_bytes_per_hour().unwrap() / MIB - 2.0).abs() <= 0.2);
}

#[test]
fn sawtooth_with_a_flat_floor_is_stable() {
    let history = History::new("heap");
    let mut rng = Rng(2);
    // Collected every 20 s: up 60 MiB from a 300 MiB floor, then back; 6 hours.
    feed(&history, 0, 6 * 3_600, 2, &mut rng, |t, rng| {
        sawtooth(t, 20.0, 300.0 * MIB, 60.0 * MIB) + 0.5 * MIB * rng.unit()
    });
    let a = history.assess(6 * HOUR, Some(512 << 20));
    report("sawtooth, flat floor", &a);
    assert_eq!(a.verdict, Verdict::Stable);
    assert_eq!(a.eta_seconds, Some(f64::INFINITY));
    let level = a.level_bytes().unwrap() / MIB;
    assert!((level - 300.0).abs() < 1.0, "the floor, not the sawtooth: {level}");
}

/// A collector slower than the fine buckets: the fine ring sees the sawtooth itself, and
/// still finds no leak (no significant growth above the threshold).
#[test]
fn slow_sawtooth_with_a_flat_floor_is_stable() {
    let history = History::new("heap");
    let mut rng = Rng(3);
    feed(&history, 0, 6 * 3_600, 5, &mut rng, |t, rng| {
        sawtooth(t, 170.0, 300.0 * MIB, 80.0 * MIB) + 0.5 * MIB * rng.unit()
    });
    for (now, resolution) in
        [(2 * HOUR, Resolution::Fine), (6 * HOUR, Resolution::Fine), (6 * HOUR, Resolution::Coarse)]
    {
        let a = history.assess_span(now, resolution, u64::MAX, None);
        report(&format!("slow sawtooth, flat floor, {resolution:?} at {} h", now / HOUR), &a);
        assert_eq!(a.verdict, Verdict::Stable);
    }
}

#[test]
fn sawtooth_with_a_rising_floor_is_a_leak() {
    let history = History::new("heap");
    let mut rng = Rng(4);
    let floor = |t: f64| 300.0 * MIB + 5.0 * MIB * t / 3_600.0;
    feed(&history, 0, 2 * 3_600, 2, &mut rng, |t, rng| {
        sawtooth(t, 20.0, floor(t), 60.0 * MIB) + 0.5 * MIB * rng.unit()
    });
    let a = history.assess(2 * HOUR, Some(512 << 20));
    report("sawtooth, rising floor 5 MiB/h", &a);
    assert_eq!(a.verdict, Verdict::LeakSuspected);
    let slope = a.slope_bytes_per_hour().unwrap() / MIB;
    assert!((slope - 5.0).abs() <= 0.5, "slope {slope} MiB/h");
    let exact_eta = (512.0 * MIB - floor(7_200.0)) / (5.0 * MIB / 3_600.0);
    let eta = a.eta_seconds.unwrap();
    println!("  eta {:.2} h, exact {:.2} h", eta / 3_600.0, exact_eta / 3_600.0);
    assert!((eta - exact_eta).abs() <= 0.1 * exact_eta);
}

#[test]
fn cache_filling_to_its_cap_is_a_plateau() {
    let history = History::new("cache");
    let mut rng = Rng(5);
    // From 100 MiB up to a 300 MiB cap over the first hour, then flat for the next.
    let cache = |t: f64, rng: &mut Rng| 100.0 * MIB + 200.0 * MIB * (t / 3_600.0).min(1.0) + MIB * rng.unit();
    feed(&history, 0, 55 * 60, 5, &mut rng, cache);
    let filling = history.assess(55 * MINUTE, None);
    report("cache while filling (55 min)", &filling);
    assert_eq!(filling.verdict, Verdict::LeakSuspected, "while it fills, a cache looks like a leak");
    feed(&history, 55 * 60, 2 * 3_600, 5, &mut rng, cache);
    for resolution in [Resolution::Fine, Resolution::Coarse] {
        let a = history.assess_span(2 * HOUR, resolution, u64::MAX, Some(512 << 20));
        report(&format!("cache at its cap (2 h), {resolution:?}"), &a);
        assert_eq!(a.verdict, Verdict::Stable);
        assert!(a.plateau, "grew over the span, flat lately");
        assert!(a.trend.unwrap().whole.mann_kendall.p_value < 0.01, "the whole span did grow");
        assert_eq!(a.eta_seconds, Some(f64::INFINITY));
    }
}

/// One point a minute (x in seconds) of `level(minute)` plus ±0.5 MiB of noise.
fn minutes(count: usize, seed: u64, level: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let mut rng = Rng(seed);
    (0..count).map(|m| (m as f64 * 60.0, level(m as f64) + 0.5 * MIB * rng.unit())).collect()
}

#[test]
fn a_step_is_growth_then_a_plateau_never_a_leak() {
    let step_at = 90.0;
    let level = |m: f64| if m < step_at { 200.0 * MIB } else { 320.0 * MIB };
    let min_after = LeakRules::DEFAULT.min_buckets;
    let (mut plateaus, mut judged_after) = (0, 0);
    for count in 92..=240 {
        let a = Assessment::of(&minutes(count, 21, level), 0, &LeakRules::DEFAULT, None);
        assert_ne!(a.verdict, Verdict::LeakSuspected, "{count} min, step at {step_at}: {a:?}");
        let after = count - step_at as usize;
        if after < min_after {
            // Too recent to tell a step from a leak that started: the span is judged whole
            // (few stepped points: no significant trend, `Stable`; more: its recent third
            // grows far faster than the span, `Growing`), or after a change found before the
            // step, whose part after it holds too few stepped points to make a trend.
            assert!(a.verdict == Verdict::Growing || a.verdict == Verdict::Stable, "{count} min: {a:?}");
            assert!(a.trend.unwrap().change.is_none_or(|c| c.fit.index < step_at as usize), "{count} min");
        } else {
            // From `min_buckets` points after it, the step is the change point, and the flat
            // part after it is judged: the span grew, not lately (a plateau). A short flat
            // part can show a trend by chance, too small or noisy for a leak: `Growing`.
            let change = a.trend.unwrap().change.unwrap_or_else(|| panic!("{count} min: {a:?}"));
            assert_eq!(change.fit.index, step_at as usize, "{count} min");
            assert_eq!(a.level_bytes().map(|l| (l / MIB).round()), Some(320.0));
            judged_after += 1;
            if (a.verdict, a.plateau) == (Verdict::Stable, true) {
                plateaus += 1;
            } else {
                assert_eq!(a.verdict, Verdict::Growing, "{count} min: {a:?}");
            }
        }
    }
    println!("step then flat: {plateaus} plateaus of {judged_after} judged after the step");
    assert!(plateaus * 10 >= judged_after * 9, "{plateaus} of {judged_after}");
}

/// A level shift down (memory freed, a cache dropped) then flat is stable, not a plateau.
#[test]
fn a_step_down_is_stable() {
    let level = |m: f64| if m < 100.0 { 320.0 * MIB } else { 200.0 * MIB };
    let a = Assessment::of(&minutes(160, 23, level), 0, &LeakRules::DEFAULT, Some(512 << 20));
    assert_eq!(a.trend.unwrap().change.map(|c| c.fit.index), Some(100));
    assert_eq!((a.verdict, a.plateau, a.eta_seconds), (Verdict::Stable, false, Some(f64::INFINITY)), "{a:?}");
}

/// Flat for 3 hours, then leaking 12 MiB/h: the change point is where the leak starts,
/// and the slope, the p-value and the forecast come from the part after it, so it is
/// flagged within the hour with the leak's own slope, where one line over the span is
/// diluted by the flat part (`Growing`, a third of the slope).
#[test]
fn a_leak_that_starts_late_is_judged_after_its_start() {
    let start = 180.0;
    let rate = 12.0; // MiB/h
    let level = |m: f64| 200.0 * MIB + rate * MIB * (m - start).max(0.0) / 60.0;
    let whole_span = LeakRules { change_penalty: f64::INFINITY, ..LeakRules::DEFAULT };
    let mut flagged = None;
    for count in (190..=300).step_by(5) {
        let points = minutes(count, 24, level);
        let a = Assessment::of(&points, 0, &LeakRules::DEFAULT, Some(512 << 20));
        if a.verdict == Verdict::LeakSuspected {
            flagged.get_or_insert(count);
            let change = a.trend.unwrap().change.expect("judged after a change");
            assert!((change.fit.index as f64 - start).abs() <= 10.0, "{count} min: change at {}", change.fit.index);
            let slope = a.slope_bytes_per_hour().unwrap() / MIB;
            assert!((slope - rate).abs() <= 0.25 * rate, "{count} min: {slope} MiB/h");
            let exact_eta = (512.0 - level(count as f64 - 1.0) / MIB) / rate * 3_600.0;
            let eta = a.eta_seconds.unwrap();
            assert!((eta - exact_eta).abs() <= 0.25 * exact_eta, "{count} min: eta {eta} vs {exact_eta}");
        } else {
            assert!(flagged.is_none(), "{count} min: flagged, then {a:?}");
        }
        if count == 240 {
            let one_line = Assessment::of(&points, 0, &whole_span, None);
            report("late leak, one line over the span, 1 h after it starts", &one_line);
            assert_ne!(one_line.verdict, Verdict::LeakSuspected);
        }
    }
    let flagged = flagged.expect("flagged");
    println!("late leak flagged {} min after it started", flagged as f64 - start);
    assert!(flagged as f64 - start <= 60.0, "{flagged}");
}

/// A collector slower than the buckets draws its sawtooth into the envelope: each rising
/// tooth follows a drop. Growth after memory was given back is not judged a leak on its
/// own (it may be given back again); from the third tooth on, the points before the last
/// drop change too, and no change point is taken at all.
#[test]
fn a_sawtooth_in_the_envelope_is_not_a_change() {
    // 20-minute cycles of 60 MiB over 200 MiB, one point a minute, for 2 hours.
    let level = |m: f64| 200.0 * MIB + 60.0 * MIB * (m % 20.0) / 20.0;
    for count in 30..=120 {
        let a = Assessment::of(&minutes(count, 25, level), 0, &LeakRules::DEFAULT, None);
        assert_ne!(a.verdict, Verdict::LeakSuspected, "{count} min: {a:?}");
        if count >= 60 {
            assert!(a.trend.unwrap().change.is_none(), "{count} min: {:?}", a.trend.unwrap().change);
        }
    }
}

/// Pure noise rarely shows a change point at the default penalty: the evidence of the
/// best split of white noise stays below 8 × ln n in all but a few of 2,000 series.
#[test]
fn white_noise_rarely_has_a_change_point() {
    let mut rng = Rng(77);
    for n in [20usize, 60, 120, 240] {
        let mut changes = 0;
        for _ in 0..500 {
            // About Gaussian: the sum of four uniforms.
            let points: Vec<(f64, f64)> = (0..n)
                .map(|i| (i as f64 * 30.0, 1e8 + 1e6 * (rng.unit() + rng.unit() + rng.unit() + rng.unit())))
                .collect();
            let trend = Trend::of(&points, 0, &LeakRules::DEFAULT).unwrap();
            changes += usize::from(trend.change.is_some());
        }
        println!("white noise, {n} points: {changes} of 500 with a change point");
        assert!(changes <= 2, "{n} points: {changes} of 500");
    }
}

#[test]
fn growth_slowing_to_a_crawl_is_a_plateau() {
    // A warm-up: 200 MiB × (1 − e^(−t / 30 min)) over 2 h. Lately it still grows by
    // 200 MiB × e^(−3) / 30 min ≈ 20 MiB/h, far above 1 MiB/h, but a fifth of its pace
    // over the span.
    let level = |m: f64| 100.0 * MIB + 200.0 * MIB * (1.0 - libm::exp(-m / 30.0));
    let a = Assessment::of(&minutes(120, 22, level), 0, &LeakRules::DEFAULT, None);
    let recent = a.trend.unwrap().whole.recent.unwrap().slope * 3_600.0 / MIB;
    assert!(recent > 5.0, "recent slope {recent} MiB/h");
    assert_eq!((a.verdict, a.plateau), (Verdict::Stable, true), "{a:?}");
    // Without the rule the same signal is a leak.
    let lax = LeakRules { max_slope_change: f64::MAX, ..LeakRules::DEFAULT };
    assert_eq!(Assessment::of(&minutes(120, 22, level), 0, &lax, None).verdict, Verdict::LeakSuspected);
}

#[test]
fn pure_noise_is_stable() {
    let (mut stable, mut growing) = (0, 0);
    for seed in 0..50 {
        let history = History::new("rss");
        let mut rng = Rng(100 + seed);
        let noise = |_, rng: &mut Rng| 200.0 * MIB + 10.0 * MIB * rng.unit();
        for (from, to) in [(0, 2), (2, 6), (6, 24), (24, 48)] {
            feed(&history, from * 3_600, to * 3_600, 10, &mut rng, noise);
            let a = history.assess(to * HOUR, Some(512 << 20));
            assert_ne!(a.verdict, Verdict::LeakSuspected, "seed {seed} at {to} h");
            assert_ne!(a.verdict, Verdict::NotEnoughData);
            if a.verdict == Verdict::Growing {
                report(&format!("noise seed {seed} at {to} h"), &a);
                growing += 1;
            } else {
                stable += 1;
            }
        }
    }
    println!("pure noise: {stable} stable, {growing} growing of 200 assessments");
    assert!(growing <= 10, "{growing}");
}

#[test]
fn warm_up_is_left_out() {
    let mut rng = Rng(6);
    // Start-up: from 50 MiB to 250 MiB in the first 4 minutes, then flat.
    let start_up = |t: f64, rng: &mut Rng| 50.0 * MIB + 200.0 * MIB * (t / 240.0).min(1.0) + 0.5 * MIB * rng.unit();
    let history = History::new("rss");
    let early = History::new("rss").rules(LeakRules { warm_up_ms: 0, ..LeakRules::DEFAULT });
    feed(&history, 0, 9 * 60, 5, &mut rng, start_up);
    // 9 minutes in: buckets from 5:00 to 8:30 are closed, 8 of the 10 needed.
    let a = history.assess(9 * MINUTE, None);
    assert_eq!(a.verdict, Verdict::NotEnoughData);
    assert_eq!(a.trend.map(|t| t.whole.points), Some(8));
    assert_eq!((a.p_value(), a.growth_bytes_per_second(), a.eta_seconds), (None, None, None));
    let mut early_rng = Rng(6);
    feed(&early, 0, 9 * 60, 5, &mut early_rng, start_up);
    for minutes in [15, 30, 60] {
        let from = if minutes == 15 { 9 * 60 } else { (minutes / 2) * 60 };
        feed(&history, from, minutes * 60, 5, &mut rng, start_up);
        feed(&early, from, minutes * 60, 5, &mut early_rng, start_up);
        let with = history.assess_span(minutes * MINUTE, Resolution::Fine, u64::MAX, None);
        let without = early.assess_span(minutes * MINUTE, Resolution::Fine, u64::MAX, None);
        report(&format!("start-up then flat, {minutes} min, 5 min warm-up"), &with);
        report(&format!("start-up then flat, {minutes} min, no warm-up"), &without);
        assert_eq!((with.verdict, with.plateau), (Verdict::Stable, false));
        assert_eq!(with.trend.unwrap().whole.points, (minutes as usize - 5) * 2, "5:00 onwards");
        // Without it the start-up ramp reads as growth: a plateau at best.
        assert!(without.plateau || without.verdict == Verdict::Growing, "{without:?}");
        assert_eq!(without.trend.unwrap().whole.points, minutes as usize * 2);
    }
    assert_eq!(history.first_sample_ms(), Some(0));
}

#[test]
fn gaps_leave_empty_buckets_that_are_skipped() {
    let history = History::new("rss");
    let mut rng = Rng(7);
    let leak = |t: f64, rng: &mut Rng| 200.0 * MIB + 10.0 * MIB * t / 3_600.0 + MIB * rng.unit();
    feed(&history, 0, 3_000, 5, &mut rng, leak);
    // Nothing sampled from 50 to 80 minutes.
    feed(&history, 4_800, 7_200, 5, &mut rng, leak);
    let a = history.assess(2 * HOUR, None);
    report("leak with a 30-minute gap", &a);
    assert_eq!(a.verdict, Verdict::LeakSuspected);
    assert_eq!(a.trend.unwrap().whole.points, 240 - 10 - 60, "warm-up and gap buckets skipped");
    assert!((a.slope_bytes_per_hour().unwrap() / MIB - 10.0).abs() <= 1.0);
    let mut buckets = 0;
    history.for_each_bucket(2 * HOUR, Resolution::Fine, u64::MAX, |b| {
        assert!(!(3_000_000..4_800_000).contains(&b.start_ms), "no bucket in the gap");
        assert!(b.closed);
        buckets += 1;
    });
    assert_eq!(buckets, 240 - 60);

    // A gap longer than the fine ring: it starts over; the coarse ring still remembers.
    feed(&history, 6 * 3_600, 6 * 3_600 + 240, 5, &mut rng, leak);
    let now = 6 * HOUR + 10 * MINUTE;
    let fine = history.assess_span(now, Resolution::Fine, u64::MAX, None);
    assert_eq!(fine.verdict, Verdict::NotEnoughData);
    assert_eq!(fine.trend.unwrap().whole.points, 8, "only the 4 minutes after the gap");
    let coarse = history.assess_span(now, Resolution::Coarse, u64::MAX, None);
    assert_eq!(coarse.trend.unwrap().whole.points, 9, "10-minute buckets at 10..40, 80..110 and 360 min");
}

#[test]
fn clock_going_backwards_goes_to_the_newest_bucket() {
    let history = History::new("rss");
    let mut rng = Rng(8);
    let leak = |t: f64, rng: &mut Rng| 200.0 * MIB + 10.0 * MIB * t / 3_600.0 + MIB * rng.unit();
    feed(&history, 0, 3_600, 5, &mut rng, leak);
    // The clock steps back 15 minutes at 1 h and runs on from there.
    feed(&history, 2_700, 6_300, 5, &mut rng, |t, rng| leak(t + 900.0, rng));
    // Late: the samples before the newest bucket (3,570 s and 3,000 s) as the clock was
    // at the time, every 5 s.
    assert_eq!(history.late_samples(), ((3_570 - 2_700) / 5, (3_000 - 2_700) / 5));
    let a = history.assess(6_300_000, None);
    report("leak with the clock 15 minutes back", &a);
    assert_eq!(a.verdict, Verdict::LeakSuspected);
    // In the clock's time the samples after the step are 15 minutes ahead, 2.5 MiB up:
    // the envelope steps up. One line over the two hours is steepened by the step; the
    // change point puts it between the parts, and the slope after it is the leak's own.
    let trend = a.trend.unwrap();
    let whole = trend.whole.theil_sen.slope * 3_600.0 / MIB;
    assert!((10.0..=13.0).contains(&whole), "{whole}");
    let change = trend.change.expect("the step is a change point");
    assert_eq!(change.after.start_seconds, 3_600.0 - 300.0 + 15.0, "the first bucket after the step, less the warm-up");
    let slope = a.slope_bytes_per_hour().unwrap() / MIB;
    assert!((9.0..=11.0).contains(&slope), "{slope}");
    // A read from before the newest bucket ends at the newest bucket.
    let mut newest = 0;
    history.for_each_bucket(0, Resolution::Fine, 0, |b| newest = b.start_ms);
    assert_eq!(newest, 6_270_000);
}

#[test]
fn extreme_times_and_values_do_not_panic() {
    let history = History::new("rss");
    history.record(u64::MAX, u64::MAX);
    history.record(u64::MAX - 1, 0);
    history.record(0, 5);
    assert_eq!(history.assess(u64::MAX, Some(u64::MAX)).verdict, Verdict::NotEnoughData);
    let summary = history.summary(u64::MAX).unwrap();
    assert_eq!((summary.min, summary.max), (0, u64::MAX));
    assert_eq!(history.late_samples(), (1, 1));
}

#[test]
fn buckets_keep_min_max_and_last() {
    let history = History::new("rss");
    for (t, bytes) in [(0, 50), (10_000, 20), (20_000, 40), (30_000, 70), (45_000, 60)] {
        history.record(t, bytes);
    }
    let mut buckets = Vec::new();
    history.for_each_bucket(45_000, Resolution::Fine, u64::MAX, |b| buckets.push(b));
    assert_eq!(
        buckets,
        vec![
            Bucket { start_ms: 0, min: 20, max: 50, last: 40, closed: true },
            Bucket { start_ms: 30_000, min: 60, max: 70, last: 60, closed: false },
        ]
    );
    assert_eq!(history.summary(45_000), Some(Summary { last: 60, floor: 20, min: 20, max: 70 }));
    assert_eq!(History::new("x").summary(0), None);
}

#[test]
fn concurrent_samplers_keep_the_extremes() {
    static HISTORY: MemoryHistory = MemoryHistory::new("rss");
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            s.spawn(move || {
                for i in 0..10_000u64 {
                    HISTORY.record(i, 1_000 + thread * 10_000 + i);
                }
            });
        }
    });
    let summary = HISTORY.summary(10_000).unwrap();
    assert_eq!((summary.min, summary.max), (1_000, 40_999));
}

#[test]
fn rules_are_validated() {
    assert_eq!(History::new("rss").validate(), Ok(()));
    for name in ["", "__overflow__", "a\nb", "a_name_longer_than_thirty_two_bytes"] {
        let leaked: &'static str = std::boxed::Box::leak(String::from(name).into_boxed_str());
        assert_eq!(History::new(leaked).validate(), Err(MemoryError::InvalidName(leaked)));
    }
    let bad = [
        LeakRules { min_buckets: 2, ..LeakRules::DEFAULT },
        LeakRules { max_p_value: 0.0, ..LeakRules::DEFAULT },
        LeakRules { max_p_value: 1.0, ..LeakRules::DEFAULT },
        LeakRules { min_growth_bytes_per_hour: f64::NAN, ..LeakRules::DEFAULT },
        LeakRules { min_growth_ratio_per_hour: -0.1, ..LeakRules::DEFAULT },
        LeakRules { min_rise_to_noise: f64::INFINITY, ..LeakRules::DEFAULT },
        LeakRules { recent_fraction: 1.0, ..LeakRules::DEFAULT },
        LeakRules { max_slope_change: 0.5, ..LeakRules::DEFAULT },
        LeakRules { max_slope_change: f64::NAN, ..LeakRules::DEFAULT },
        LeakRules { change_penalty: -1.0, ..LeakRules::DEFAULT },
        LeakRules { change_penalty: f64::NAN, ..LeakRules::DEFAULT },
        LeakRules { max_slope_error: 0.0, ..LeakRules::DEFAULT },
        LeakRules { max_slope_error: f64::NAN, ..LeakRules::DEFAULT },
    ];
    for rules in bad {
        assert_eq!(History::new("rss").rules(rules).validate(), Err(MemoryError::InvalidRules("rss")), "{rules:?}");
    }
    // Infinity turns the change point search and the slope error check off.
    let off = LeakRules { change_penalty: f64::INFINITY, max_slope_error: f64::INFINITY, ..LeakRules::DEFAULT };
    assert_eq!(History::new("rss").rules(off).validate(), Ok(()));
    assert_eq!(LeakRules::DEFAULT.leak_threshold_bytes_per_hour(100.0 * MIB), MIB);
    assert_eq!(LeakRules::DEFAULT.leak_threshold_bytes_per_hour(1_000.0 * MIB), 5.0 * MIB);
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

fn render(registry: &Registry<16>) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    let mut renderer = registry.renderer(Format::Prometheus);
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        out.push_str(core::str::from_utf8(&buf[..n]).unwrap());
    }
    out
}

#[test]
fn export_publishes_verdicts_and_skips_undefined_series() {
    static LEAKY: MemoryHistory = MemoryHistory::new("rss");
    static FLAT: MemoryHistory = MemoryHistory::new("cache");
    static FRESH: MemoryHistory = MemoryHistory::new("heap");
    static MEMORY: MemoryExport<3> = MemoryExport::new();
    static REGISTRY: Registry<16> = Registry::new();
    MEMORY.add(&LEAKY).unwrap();
    MEMORY.add(&FLAT).unwrap();
    MEMORY.add(&FRESH).unwrap();
    assert_eq!(MEMORY.add(&FLAT), Err(MemoryError::DuplicateName("cache")));
    static EXTRA: MemoryHistory = MemoryHistory::new("extra");
    assert_eq!(MEMORY.add(&EXTRA), Err(MemoryError::ExportFull("extra")));
    MEMORY.register(&REGISTRY).unwrap();
    assert!(MEMORY.register(&REGISTRY).is_err(), "registered twice");

    let mut rng = Rng(9);
    feed(&LEAKY, 0, 7_200, 10, &mut rng, |t, rng| 100.0 * MIB + 50.0 * MIB * t / 3_600.0 + MIB * rng.unit());
    feed(&FLAT, 0, 7_200, 10, &mut rng, |_, rng| 64.0 * MIB + MIB * rng.unit());
    FRESH.record(7_190_000, 1 << 20);

    MEMORY.update(2 * HOUR, None);
    let text = render(&REGISTRY);
    assert!(text.contains("plimsoll_memory_leak_suspected{signal=\"rss\"} 1\n"), "{text}");
    assert!(text.contains("plimsoll_memory_leak_suspected{signal=\"cache\"} 0\n"));
    assert!(text.contains("plimsoll_memory_verdict{signal=\"heap\",verdict=\"not_enough_data\"} 1\n"));
    assert!(text.contains("plimsoll_memory_verdict{signal=\"cache\",verdict=\"stable\"} 1\n"));
    assert!(text.contains("plimsoll_memory_bytes{signal=\"heap\",stat=\"last\"} 1048576\n"));
    assert!(!text.contains("plimsoll_memory_limit_eta_seconds{"), "no limit, no forecast");
    assert!(!text.contains("\nplimsoll_memory_limit_bytes "), "no limit");
    assert!(!text.contains("plimsoll_memory_growth_bytes_per_second{signal=\"heap\"}"), "no verdict yet");
    assert!(text.contains("# HELP plimsoll_memory_limit_bytes "), "the family is described even when empty");

    MEMORY.update(2 * HOUR, Some(512 << 20));
    let text = render(&REGISTRY);
    println!("{text}");
    assert!(text.contains("plimsoll_memory_limit_bytes 536870912\n"));
    assert!(text.contains("plimsoll_memory_limit_eta_seconds{signal=\"cache\"} +Inf\n"));
    assert!(!text.contains("plimsoll_memory_limit_eta_seconds{signal=\"heap\"}"));
    let eta_line = text.lines().find(|l| l.starts_with("plimsoll_memory_limit_eta_seconds{signal=\"rss\"}")).unwrap();
    let eta: f64 = eta_line.rsplit(' ').next().unwrap().parse().unwrap();
    // (512 - 200) MiB at 50 MiB/h is 6.24 h.
    assert!((eta / 3_600.0 - 6.24).abs() < 0.3, "{eta_line}");
    let growth =
        text.lines().find(|l| l.starts_with("plimsoll_memory_growth_bytes_per_second{signal=\"rss\"}")).unwrap();
    let growth: f64 = growth.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((growth * 3_600.0 / MIB - 50.0).abs() < 2.0);

    let mut seen = Vec::new();
    MEMORY.for_each_assessment(2 * HOUR, None, |name, a| seen.push((name, a.verdict)));
    assert_eq!(seen, [("rss", Verdict::LeakSuspected), ("cache", Verdict::Stable), ("heap", Verdict::NotEnoughData)]);
    assert_eq!(
        MEMORY.footprint(),
        MemoryExport::<3>::FOOTPRINT + 3 * MemoryHistory::<241, 30_000, 289, 600_000>::FOOTPRINT
    );
}

#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(MemoryBucket::FOOTPRINT, 24);
    assert_eq!(MemoryHistory::<241, 30_000, 289, 600_000>::FOOTPRINT, 17_112);
    assert_eq!(MemoryExport::<1>::FOOTPRINT, 8_216);
    assert_eq!(MemoryExport::<8>::FOOTPRINT, 8_328);
}

/// The analysis needs no heap and a bounded stack: it runs on a 48 KiB thread stack (in
/// debug builds too; 32 KiB is enough in release builds), reading two full rings.
#[test]
fn assessment_fits_a_small_stack() {
    static HISTORY: MemoryHistory = MemoryHistory::new("rss");
    for t in (0..2 * 86_400u64).step_by(30) {
        HISTORY.record(t * 1_000, (100 << 20) + t * 1_000);
    }
    let assess = || HISTORY.assess(2 * 86_400_000, Some(1 << 30));
    let small_stack = std::thread::Builder::new().stack_size(48 * 1024).spawn(assess).unwrap();
    assert_eq!(small_stack.join().unwrap().verdict, Verdict::LeakSuspected);
}
