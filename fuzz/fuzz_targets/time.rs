//! Arbitrary sequences of (time step, event, value) into rolling windows and an SLO,
//! checked against naive models after every step.
//!
//! Time moves by small steps, whole slots, days, large jumps forward and backwards, or is
//! set outright. The structures (fresh per input, boxed) are two counter windows (1 s and
//! 1 ms slots), a small histogram window, a small and the default `MinMaxWindow`, and an
//! `Slo` with the smallest rings allowed. After each step:
//!
//! - every windowed read (sums, counts, min/max, quantiles within `ALPHA`) equals the
//!   naive model of the window rules (a list of events with the documented late-event
//!   rule), at the current time and at times before and after it; so a sum over the whole
//!   ring never exceeds what was recorded, a longer span never holds fewer events, and
//!   `late_events` equals the model's count, which never decreases;
//! - the SLO's cumulative good and total equal what was recorded (so good <= total and
//!   neither decreases), its window counts match the model and nest, its report agrees
//!   with its single reads, burn rates are finite and >= 0, availability is in [0, 1],
//!   and a pair fires only when its documented conditions hold;
//! - nothing panics, whatever the clock does.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use plimsoll_core::{
    BurnPair, BurnThresholds, Counter, Events, GoodEvent, Histogram, MAX_TIME_MS, MinMax, MinMaxWindow, Slo, SloWindow,
    Window,
};

type SmallHistogram = Histogram<2, -10, 68>;
type RateWindow = Window<Counter, 4, 1_000>;
type FineWindow = Window<Counter, 3, 1>;
type HistogramWindow = Window<SmallHistogram, 4, 500>;
type SmallMinMaxWindow = Window<MinMax, 3, 100>;
/// The smallest rings an `Slo` allows: 6 hours of minutes, 7 days of hours.
type SmallSlo = Slo<361, 169>;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const MAX_STEPS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(Unstructured::new(data));
    let mut now = start_time(&mut input);
    let mut subject = Subject::new(&mut input);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        now = step_time(&mut input, now);
        subject.event(&mut input, now);
        let read_at = [
            now,
            now.saturating_add(u64::from(input.byte()) * 997),
            now.saturating_sub(u64::from(input.byte()) * 1_009),
        ];
        for t in read_at {
            subject.check(t);
        }
    }
});

/// Unstructured bytes, read from the front only (zeros once exhausted).
struct Input<'a>(Unstructured<'a>);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn u32(&mut self) -> u32 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn u64(&mut self) -> u64 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn f64(&mut self, pool: &[f64]) -> f64 {
        match self.byte() % 3 {
            0 => f64::from_bits(self.u64()),
            _ => pool[usize::from(self.byte()) % pool.len()],
        }
    }
}

fn start_time(input: &mut Input<'_>) -> u64 {
    match input.byte() % 4 {
        0 => 0,
        1 => u64::from(input.u32()),
        2 => u64::MAX - u64::from(input.u32()),
        _ => input.u64(),
    }
}

fn step_time(input: &mut Input<'_>, now: u64) -> u64 {
    let amount = u64::from(input.byte());
    match input.byte() % 10 {
        0 => now.saturating_add(amount),
        1 => now.saturating_add(amount * 100),
        2 => now.saturating_add(amount * MINUTE),
        3 => now.saturating_add(u64::from(input.u32())),
        4 => now.saturating_sub(amount * 100),
        5 => now.saturating_sub(u64::from(input.u32())),
        6 => input.u64(),
        7 => now.saturating_add(amount * DAY),
        8 => now.saturating_sub(amount * HOUR),
        _ => now,
    }
}

const LATENCY_POOL: &[f64] =
    &[0.0, -0.0, 0.001, 0.1, 0.3, 0.300_000_000_000_000_04, 1.0, 128.0, 1e9, f64::NAN, f64::INFINITY, -1.0, 5e-324];
const OBJECTIVE_POOL: &[f64] = &[0.999, 0.99, 0.5, 0.9, 0.999_999, 1e-9, 1.0, 0.0, f64::NAN];
const THRESHOLD_POOL: &[f64] = &[14.4, 6.0, 3.0, 1.0, 0.1, 1e300, 0.0, f64::INFINITY];

// ---------------------------------------------------------------------------------------
// The window rules, naively
// ---------------------------------------------------------------------------------------

/// A window's epochs: the newest seen, the late count and the first record's time, with
/// every event kept in a list with the epoch it was counted in.
struct Epochs<T> {
    slot_ms: u64,
    slots: u64,
    newest: Option<u64>,
    first_ms: Option<u64>,
    late: u64,
    events: Vec<(u64, T)>,
}

impl<T: Copy> Epochs<T> {
    fn new(slot_ms: u64, slots: usize) -> Self {
        Self { slot_ms, slots: slots as u64, newest: None, first_ms: None, late: 0, events: Vec::new() }
    }

    /// An event at `now`: into its own epoch, or the newest one if that is later. Times
    /// beyond `MAX_TIME_MS` are taken as it, as windows document.
    fn record(&mut self, now: u64, value: T) {
        let now = now.min(MAX_TIME_MS);
        let mut epoch = now / self.slot_ms;
        match self.newest {
            Some(newest) if epoch < newest => {
                self.late += 1;
                epoch = newest;
            }
            _ => self.newest = Some(epoch),
        }
        self.first_ms.get_or_insert(now);
        self.events.push((epoch, value));
    }

    /// The values in the window of `span` read at `now`.
    fn in_window(&self, now: u64, span: u64) -> impl Iterator<Item = T> + '_ {
        let end = (now.min(MAX_TIME_MS) / self.slot_ms).max(self.newest.unwrap_or(0));
        let start = end.saturating_sub((span / self.slot_ms).min(self.slots - 1));
        self.events.iter().filter(move |(e, _)| (start..=end).contains(e)).map(|&(_, v)| v)
    }

    fn spans(&self) -> [u64; 7] {
        let s = self.slot_ms;
        [
            0,
            s - 1,
            s,
            s.saturating_mul(2) + s / 2,
            s.saturating_mul(self.slots - 1),
            s.saturating_mul(self.slots + 3),
            u64::MAX,
        ]
    }
}

// ---------------------------------------------------------------------------------------
// The structures under test
// ---------------------------------------------------------------------------------------

struct Subject {
    rate: Box<RateWindow>,
    rate_model: Epochs<u64>,
    fine: Box<FineWindow>,
    fine_model: Epochs<u64>,
    recorded: u64,
    histogram: Box<HistogramWindow>,
    histogram_model: Epochs<f64>,
    min_max: Box<SmallMinMaxWindow>,
    min_max_model: Epochs<i64>,
    hour_min_max: Box<MinMaxWindow>,
    hour_min_max_model: Epochs<i64>,
    slo: Box<SmallSlo>,
    slo_valid: bool,
    short_model: Epochs<bool>,
    long_model: Epochs<bool>,
    invalid: u64,
    late_seen: [u64; 5],
}

impl Subject {
    fn new(input: &mut Input<'_>) -> Self {
        let objective = input.f64(OBJECTIVE_POOL);
        let good = match input.byte() % 3 {
            0 => GoodEvent::Success,
            _ => GoodEvent::LatencyAtMost(input.f64(LATENCY_POOL)),
        };
        let thresholds = match input.byte() % 2 {
            0 => BurnThresholds::WORKBOOK,
            _ => BurnThresholds {
                page_1h_5m: input.f64(THRESHOLD_POOL),
                page_6h_30m: input.f64(THRESHOLD_POOL),
                ticket_1d_2h: input.f64(THRESHOLD_POOL),
                ticket_3d_6h: input.f64(THRESHOLD_POOL),
            },
        };
        let min_events = u64::from(input.byte() % 8);
        let slo = Box::new(SmallSlo::new("fuzz", objective, good).thresholds(thresholds).min_events(min_events));
        Self {
            rate: Box::new(RateWindow::new()),
            rate_model: Epochs::new(1_000, 4),
            fine: Box::new(FineWindow::new()),
            fine_model: Epochs::new(1, 3),
            recorded: 0,
            histogram: Box::new(HistogramWindow::new()),
            histogram_model: Epochs::new(500, 4),
            min_max: Box::new(SmallMinMaxWindow::new()),
            min_max_model: Epochs::new(100, 3),
            hour_min_max: Box::new(MinMaxWindow::new()),
            hour_min_max_model: Epochs::new(MINUTE, 61),
            slo_valid: slo.validate().is_ok(),
            slo,
            short_model: Epochs::new(MINUTE, 361),
            long_model: Epochs::new(HOUR, 169),
            invalid: 0,
            late_seen: [0; 5],
        }
    }

    fn event(&mut self, input: &mut Input<'_>, now: u64) {
        match input.byte() % 6 {
            0 => {
                let n = u64::from(input.u32());
                self.rate.add(now, n);
                self.rate_model.record(now, n);
                self.fine.add(now, n);
                self.fine_model.record(now, n);
                self.recorded += n;
            }
            1 => {
                let value = input.f64(LATENCY_POOL);
                self.histogram.record(now, value);
                if (0.0..f64::INFINITY).contains(&value) {
                    self.histogram_model.record(now, value);
                } else {
                    // An invalid value still opens its slot and may be late: the model
                    // keeps it as a NaN, which no read counts.
                    self.histogram_model.record(now, f64::NAN);
                }
            }
            2 => {
                let value = input.u64() as i64;
                self.min_max.observe(now, value);
                self.min_max_model.record(now, value);
                self.hour_min_max.observe(now, value);
                self.hour_min_max_model.record(now, value);
            }
            3 => {
                let good = input.byte().is_multiple_of(2);
                self.slo.record(now, good);
                self.short_model.record(now, good);
                self.long_model.record(now, good);
            }
            4 => {
                let seconds = input.f64(LATENCY_POOL);
                self.slo.record_latency(now, seconds);
                match self.slo.good_event() {
                    GoodEvent::LatencyAtMost(limit) if (0.0..f64::INFINITY).contains(&seconds) => {
                        self.short_model.record(now, seconds <= limit);
                        self.long_model.record(now, seconds <= limit);
                    }
                    _ => self.invalid += 1,
                }
            }
            _ => {} // A step of time alone.
        }
    }

    fn check(&mut self, now: u64) {
        self.check_counters(now);
        self.check_histogram(now);
        check_min_max(&self.min_max, &self.min_max_model, now);
        check_min_max(&self.hour_min_max, &self.hour_min_max_model, now);
        self.check_slo(now);
        let late = [
            self.rate.late_events(),
            self.fine.late_events(),
            self.histogram.late_events(),
            self.min_max.late_events(),
            self.hour_min_max.late_events(),
        ];
        for (now, before) in late.iter().zip(&self.late_seen) {
            assert!(now >= before, "late_events went from {before} to {now}");
        }
        self.late_seen = late;
    }

    fn check_counters(&self, now: u64) {
        check_counter_window(&*self.rate, &self.rate_model, self.recorded, now);
        check_counter_window(&*self.fine, &self.fine_model, self.recorded, now);
    }

    fn check_histogram(&self, now: u64) {
        let (window, model) = (&self.histogram, &self.histogram_model);
        assert_eq!(window.late_events(), model.late);
        for span in model.spans() {
            let mut values: Vec<f64> = model.in_window(now, span).filter(|v| !v.is_nan()).collect();
            assert_eq!(window.count(now, span), values.len() as u64, "count at {now} over {span}");
            values.sort_by(f64::total_cmp);
            for q in [0.0, 0.25, 0.5, 0.99, 1.0, -0.1, 1.5, f64::NAN] {
                let estimate = window.quantile(now, span, q);
                if values.is_empty() || !(0.0..=1.0).contains(&q) {
                    assert_eq!(estimate, None, "quantile {q} of {values:?}");
                    continue;
                }
                let estimate = estimate.expect("a quantile of a non-empty window");
                let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
                let truth = values[rank - 1];
                if truth <= SmallHistogram::ZERO_THRESHOLD {
                    assert_eq!(estimate, 0.0, "quantile {q}: {truth} is in the zero bucket");
                } else if truth > SmallHistogram::MAX {
                    assert_eq!(estimate, f64::INFINITY, "quantile {q}: {truth} is in the overflow bucket");
                } else {
                    let error = (estimate - truth).abs() / truth;
                    assert!(error <= SmallHistogram::ALPHA * (1.0 + 1e-12), "quantile {q}: {estimate} for {truth}");
                }
            }
        }
    }

    fn check_slo(&self, now: u64) {
        let slo = &self.slo;
        let cumulative = slo.cumulative();
        let good = self.long_model.events.iter().filter(|(_, g)| *g).count() as u64;
        let total = self.long_model.events.len() as u64;
        assert_eq!(cumulative, Events { good, total }, "cumulative events");
        assert_eq!(slo.invalid_events(), self.invalid);
        assert_eq!(slo.dropped_events(), 0);
        assert_eq!(slo.late_events(), (self.short_model.late, self.long_model.late));
        let report = slo.report(now);
        let mut previous = [Events::default(); 2];
        for window in SloWindow::ALL {
            let short =
                matches!(window, SloWindow::M5 | SloWindow::M30 | SloWindow::H1 | SloWindow::H2 | SloWindow::H6);
            let model = if short { &self.short_model } else { &self.long_model };
            let span = SmallSlo::window_ms(window);
            let expected = model.in_window(now, span).fold(Events::default(), |mut e, g| {
                e.good += u64::from(g);
                e.total += 1;
                e
            });
            let events = slo.events(now, window);
            assert_eq!(events, expected, "{window:?} at {now}");
            assert_eq!(report.events(window), events, "report of {window:?} at {now}");
            assert!(events.good <= events.total && events.total <= cumulative.total);
            // Windows of one ring nest: a longer one never holds fewer events.
            let previous = &mut previous[usize::from(!short)];
            assert!(events.total >= previous.total && events.good >= previous.good, "{window:?} nests");
            *previous = events;
            assert_eq!(report.covered_ms(window), slo.covered_ms(now, window));
            assert_eq!(report.is_covered(window), report.covered_ms(window) >= span);
            if let Some(a) = report.availability(window) {
                assert!((0.0..=1.0).contains(&a), "availability {a}");
            }
            assert_eq!(report.availability(window), slo.availability(now, window));
            let burn = report.burn_rate(window);
            assert_eq!(burn.map(f64::to_bits), slo.burn_rate(now, window).map(f64::to_bits));
            assert_eq!(burn.is_some(), events.total > 0);
            if self.slo_valid
                && let Some(b) = burn
            {
                assert!(b.is_finite() && b >= 0.0, "burn rate {b} over {window:?}");
            }
        }
        if self.slo_valid {
            self.check_alerts_and_budget(&report, now);
        }
    }

    fn check_alerts_and_budget(&self, report: &plimsoll_core::SloReport, now: u64) {
        let slo = &self.slo;
        let thresholds = slo.burn_thresholds();
        for pair in BurnPair::ALL {
            let (long, short) = pair.windows();
            let threshold = match pair {
                BurnPair::Page1h5m => thresholds.page_1h_5m,
                BurnPair::Page6h30m => thresholds.page_6h_30m,
                BurnPair::Ticket1d2h => thresholds.ticket_1d_2h,
                BurnPair::Ticket3d6h => thresholds.ticket_3d_6h,
            };
            let above = |w| report.burn_rate(w).is_some_and(|b| b > threshold);
            let fires = report.is_covered(long)
                && report.is_covered(short)
                && report.events(long).total >= slo.min_events_to_alert()
                && above(long)
                && above(short);
            assert_eq!(report.pair_firing(pair), fires, "{pair:?}");
        }
        let alerts = report.alerts();
        assert_eq!(alerts, slo.alerts(now));
        let budget = report.budget();
        assert_eq!(budget, slo.error_budget(now));
        assert!(budget.allowed.is_finite() && budget.allowed >= 0.0, "{budget:?}");
        assert!(budget.remaining_ratio.is_finite() && budget.remaining_ratio <= 1.0, "{budget:?}");
        assert_eq!(budget.consumed, report.events(SloWindow::Period).bad());
        if let Some(seconds) = budget.exhaustion_seconds {
            assert!(seconds >= 0.0, "{budget:?}");
        }
    }
}

fn check_counter_window<const S: usize, const SLOT_MS: u64>(
    window: &Window<Counter, S, SLOT_MS>,
    model: &Epochs<u64>,
    recorded: u64,
    now: u64,
) {
    assert_eq!(window.late_events(), model.late, "late events");
    let mut previous = 0;
    for span in model.spans() {
        let sum = window.sum(now, span);
        assert_eq!(sum, model.in_window(now, span).sum::<u64>(), "sum at {now} over {span}");
        assert!(sum <= recorded, "a window holds {sum} of {recorded} recorded");
        assert!(sum >= previous, "a longer span holds fewer events");
        previous = sum;
        let covered = window.covered_ms(now, span);
        let clamped = now.min(MAX_TIME_MS);
        let expected = model.first_ms.map_or(0, |first| window.span_ms(now, span).min(clamped.saturating_sub(first)));
        assert_eq!(covered, expected, "covered at {now} over {span}");
        match window.rate_per_second(now, span) {
            Some(rate) => assert!(covered > 0 && rate.is_finite() && rate >= 0.0, "rate {rate}"),
            None => assert_eq!(covered, 0),
        }
    }
}

fn check_min_max<const S: usize, const SLOT_MS: u64>(
    window: &Window<MinMax, S, SLOT_MS>,
    model: &Epochs<i64>,
    now: u64,
) {
    assert_eq!(window.late_events(), model.late, "late events");
    for span in model.spans() {
        let values: Vec<i64> = model.in_window(now, span).collect();
        let expected = values.iter().min().map(|&min| (min, *values.iter().max().expect("non-empty")));
        assert_eq!(window.min_max(now, span), expected, "min/max at {now} over {span}");
    }
}
