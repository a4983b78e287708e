//! The SLO engine against a naive model, the SRE Workbook scenarios, validation and export.

use super::*;
use crate::{Format, Registry};
use proptest::prelude::*;
use std::boxed::Box;
use std::string::String;
use std::vec::Vec;

type DefaultSlo = Slo;

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

fn boxed(objective: f64, good: GoodEvent) -> Box<DefaultSlo> {
    Box::new(Slo::new("test", objective, good))
}

// ---------------------------------------------------------------------------------------
// Footprint, slots, validation, latency
// ---------------------------------------------------------------------------------------

/// The sizes the module docs state.
#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(GoodTotal::FOOTPRINT, 8);
    assert_eq!(Window::<GoodTotal, 361, MINUTE_MS>::FOOTPRINT, 5_800);
    assert_eq!(Window::<GoodTotal, 721, HOUR_MS>::FOOTPRINT, 11_560);
    assert_eq!(DefaultSlo::FOOTPRINT, 17_472);
    assert_eq!(SloExport::<1>::FOOTPRINT, 39_352 + 48);
    assert_eq!(SloExport::<8>::FOOTPRINT, 39_352 + 8 * 48);
}

#[test]
fn a_full_slot_refuses_and_the_slo_counts_the_drop() {
    let slot = GoodTotal::new();
    slot.set(Events { good: 7, total: GoodTotal::CAPACITY - 1 });
    assert!(slot.record(true));
    assert!(!slot.record(true), "full");
    assert!(!slot.record(false), "still full");
    assert_eq!(slot.get(), Events { good: 8, total: GoodTotal::CAPACITY }, "nothing wrapped into good");

    let slo = boxed(0.99, GoodEvent::Success);
    let now = 5 * HOUR;
    slo.record(now, true);
    slo.long.slot_at(now, |_, _| {}).set(Events { good: 1, total: GoodTotal::CAPACITY });
    slo.record(now, false);
    slo.record(now, true);
    assert_eq!(slo.dropped_events(), 2);
    assert_eq!(slo.events(now, SloWindow::M5), Events { good: 1, total: 1 }, "dropped from both rings");
    assert_eq!(slo.events(now, SloWindow::D1).total, GoodTotal::CAPACITY);
    // The minute ring full, the hour ring not: taken back from the hour ring too.
    let later = now + HOUR;
    slo.short.slot_at(later, |_, _| {}).set(Events { good: 0, total: GoodTotal::CAPACITY });
    slo.record(later, true);
    assert_eq!(slo.dropped_events(), 3);
    assert_eq!(slo.events(later, SloWindow::M5).total, GoodTotal::CAPACITY);
    assert_eq!(slo.events(later, SloWindow::D1).total, GoodTotal::CAPACITY, "the hour slot of `later` is empty");
    assert_eq!(slo.long.events(later, 0), Events::default());
}

/// Recorders racing past a slot's capacity: exactly the room left is counted, the total
/// never wraps into the good field.
#[test]
fn racing_past_capacity_counts_exactly_the_room_left() {
    static SLOT: GoodTotal = GoodTotal::new();
    SLOT.set(Events { good: 0, total: GoodTotal::CAPACITY - 1_000 });
    let accepted: u64 = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| (0..1_000).filter(|i| SLOT.record(i % 2 == 0)).count() as u64)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(accepted, 1_000);
    let events = SLOT.get();
    assert_eq!(events.total, GoodTotal::CAPACITY);
    assert!(events.good <= 1_000);
}

#[test]
fn validation_errors() {
    let check = |objective: f64| Slo::<361, 721>::new("x", objective, GoodEvent::Success).validate();
    for bad in [0.0, 1.0, 1.5, -0.5, f64::NAN, f64::INFINITY] {
        assert_eq!(check(bad), Err(SloError::InvalidObjective("x")), "{bad}");
    }
    assert_eq!(check(0.999), Ok(()));
    assert_eq!(check(f64::MIN_POSITIVE), Ok(()));
    let named = |name: &'static str| Slo::<361, 721>::new(name, 0.9, GoodEvent::Success).validate();
    static LONG: [u8; 65] = [b'n'; 65];
    let long = core::str::from_utf8(&LONG).unwrap();
    for bad in ["", "a\nb", "tab\there", crate::OVERFLOW_LABEL_VALUE, long] {
        assert_eq!(named(bad), Err(SloError::InvalidName(bad)), "{bad:?}");
    }
    assert_eq!(named(&long[..64]), Ok(()));
    assert_eq!(named("checkout \"p99\" ✓"), Ok(()), "quotes and Unicode are escaped, not refused");
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let t = BurnThresholds { ticket_1d_2h: bad, ..BurnThresholds::WORKBOOK };
        let slo = Slo::<361, 721>::new("x", 0.9, GoodEvent::Success).thresholds(t);
        assert_eq!(slo.validate(), Err(SloError::InvalidThreshold("x")), "{bad}");
        let slo = Slo::<361, 721>::new("x", 0.9, GoodEvent::LatencyAtMost(bad));
        assert_eq!(slo.validate(), Err(SloError::InvalidLatencyThreshold("x")), "{bad}");
    }
    let message = std::format!("{}", SloError::InvalidObjective("api"));
    assert_eq!(message, "objective of SLO \"api\" is not strictly between 0 and 1");
    let _: &dyn core::error::Error = &SloError::ExportFull("api");
}

#[test]
fn the_export_refuses_invalid_duplicate_and_surplus_slos() {
    static ZERO: Slo = Slo::new("zero", 0.0, GoodEvent::Success);
    static ONE: Slo = Slo::new("one", 1.0, GoodEvent::Success);
    static OVER: Slo = Slo::new("over", 1.5, GoodEvent::Success);
    static NAN: Slo = Slo::new("nan", f64::NAN, GoodEvent::Success);
    static A: Slo = Slo::new("a", 0.99, GoodEvent::Success);
    static A_AGAIN: Slo = Slo::new("a", 0.9, GoodEvent::Success);
    static B: Slo = Slo::new("b", 0.99, GoodEvent::Success);
    static EXPORT: SloExport<1> = SloExport::new();
    for (slo, name) in [(&ZERO, "zero"), (&ONE, "one"), (&OVER, "over"), (&NAN, "nan")] {
        assert_eq!(EXPORT.add(slo), Err(SloError::InvalidObjective(name)));
    }
    assert_eq!(EXPORT.add(&A), Ok(()));
    assert_eq!(EXPORT.add(&A_AGAIN), Err(SloError::DuplicateName("a")));
    assert_eq!(EXPORT.add(&B), Err(SloError::ExportFull("b")));
    assert_eq!(EXPORT.len(), 1);
}

#[test]
fn latency_slo_classifies_and_counts_invalid_latencies() {
    let slo = boxed(0.99, GoodEvent::LatencyAtMost(0.3));
    let now = 10 * MINUTE;
    for latency in [0.0, -0.0, 0.1, 0.3] {
        slo.record_latency(now, latency);
    }
    for latency in [0.300_000_000_000_000_04, 1.0, 1e300] {
        slo.record_latency(now, latency);
    }
    for latency in [f64::NAN, -0.001, f64::INFINITY, f64::NEG_INFINITY] {
        slo.record_latency(now, latency);
    }
    slo.record(now, false); // an error, however fast
    assert_eq!(slo.events(now, SloWindow::M5), Events { good: 4, total: 8 });
    assert_eq!(slo.invalid_events(), 4);
    assert_eq!(slo.cumulative(), Events { good: 4, total: 8 });

    let success = boxed(0.99, GoodEvent::Success);
    success.record_latency(now, 0.1);
    assert_eq!(success.invalid_events(), 1, "a success SLO has no latency threshold");
    assert_eq!(success.events(now, SloWindow::M5).total, 0);
}

/// The all-time counts survive the hour ring wrapping around many times, gaps and a clock
/// that goes backwards, and never decrease.
#[test]
fn cumulative_counts_are_monotonic_across_recycling() {
    let slo = boxed(0.99, GoodEvent::Success);
    let (mut now, mut recorded, mut good) = (0u64, 0u64, 0u64);
    let mut last = Events::default();
    for step in 0..3_000u64 {
        now = match step % 97 {
            0 => now + 40 * DAY,
            1 => now.saturating_sub(3 * HOUR),
            _ => now + 37 * MINUTE,
        };
        let is_good = step % 7 != 0;
        slo.record(now, is_good);
        recorded += 1;
        good += u64::from(is_good);
        let all = slo.cumulative();
        assert!(all.good >= last.good && all.total >= last.total);
        assert_eq!(all, Events { good, total: recorded });
        last = all;
    }
}

// ---------------------------------------------------------------------------------------
// The naive model
// ---------------------------------------------------------------------------------------

const SHORT_WINDOWS: [SloWindow; 5] = [SloWindow::M5, SloWindow::M30, SloWindow::H1, SloWindow::H2, SloWindow::H6];

/// Every event in a list with the epoch each ring put it in, applying each ring's late
/// rule separately: an event older than the newest epoch seen goes to the newest epoch.
#[derive(Default)]
struct Model {
    /// (minute epoch, hour epoch, good)
    events: Vec<(u64, u64, bool)>,
    newest_minute: Option<u64>,
    newest_hour: Option<u64>,
    first_ms: Option<u64>,
    late: (u64, u64),
}

fn late_rule(epoch: u64, newest: &mut Option<u64>, late: &mut u64) -> u64 {
    match *newest {
        Some(n) if epoch < n => {
            *late += 1;
            n
        }
        _ => {
            *newest = Some(epoch);
            epoch
        }
    }
}

impl Model {
    fn record(&mut self, now: u64, good: bool) {
        let minute = late_rule(now / MINUTE, &mut self.newest_minute, &mut self.late.0);
        let hour = late_rule(now / HOUR, &mut self.newest_hour, &mut self.late.1);
        self.first_ms.get_or_insert(now);
        self.events.push((minute, hour, good));
    }

    /// (slot length, slots in the ring, newest epoch) of the ring `window` is read from.
    fn ring(&self, window: SloWindow) -> (u64, u64, Option<u64>) {
        if SHORT_WINDOWS.contains(&window) { (MINUTE, 361, self.newest_minute) } else { (HOUR, 721, self.newest_hour) }
    }

    /// The window rule: epochs `[end - W / slot, end]`, `end = max(now epoch, newest)`.
    fn events(&self, now: u64, window: SloWindow) -> Events {
        let (slot, slots, newest) = self.ring(window);
        let end = (now / slot).max(newest.unwrap_or(0));
        let start = end.saturating_sub((DefaultSlo::window_ms(window) / slot).min(slots - 1));
        let short = SHORT_WINDOWS.contains(&window);
        let mut events = Events::default();
        for &(minute, hour, good) in &self.events {
            let epoch = if short { minute } else { hour };
            if (start..=end).contains(&epoch) {
                events.total += 1;
                events.good += u64::from(good);
            }
        }
        events
    }

    fn covered(&self, now: u64, window: SloWindow) -> u64 {
        let (slot, slots, newest) = self.ring(window);
        let Some(first) = self.first_ms else { return 0 };
        let end = (now / slot).max(newest.unwrap_or(0));
        let span = (DefaultSlo::window_ms(window) / slot).min(slots - 1) * slot + now.saturating_sub(end * slot);
        span.min(now.saturating_sub(first))
    }
}

fn model_burn(events: Events, objective: f64) -> Option<f64> {
    if events.total == 0 {
        return None;
    }
    let bad = (events.total - events.good) as f64;
    Some(bad / events.total as f64 / (1.0 - objective))
}

/// Checks every figure of `slo` read at `now` against the model.
fn check(slo: &DefaultSlo, model: &Model, now: u64) -> Result<(), TestCaseError> {
    let objective = slo.objective();
    let report = slo.report(now);
    let expected = SloWindow::ALL.map(|w| model.events(now, w));
    let covered = SloWindow::ALL.map(|w| model.covered(now, w));
    let events = |w: SloWindow| expected[w as usize];
    for w in SloWindow::ALL {
        let events = events(w);
        prop_assert_eq!(report.events(w), events, "{:?} at {}", w, now);
        prop_assert_eq!(slo.events(now, w), events, "{:?} at {}", w, now);
        prop_assert_eq!(report.covered_ms(w), covered[w as usize], "covered {:?} at {}", w, now);
        prop_assert_eq!(slo.covered_ms(now, w), covered[w as usize]);
        prop_assert_eq!(report.is_covered(w), covered[w as usize] >= DefaultSlo::window_ms(w));
        prop_assert_eq!(report.burn_rate(w), model_burn(events, objective));
        prop_assert_eq!(slo.burn_rate(now, w), model_burn(events, objective));
        let availability = (events.total > 0).then(|| events.good as f64 / events.total as f64);
        prop_assert_eq!(slo.availability(now, w), availability);
    }

    let period = events(SloWindow::Period);
    let allowed = (1.0 - objective) * period.total as f64;
    let consumed = period.total - period.good;
    let remaining = if period.total == 0 { 1.0 } else { 1.0 - consumed as f64 / allowed };
    let exhaustion = model_burn(events(SloWindow::D1), objective).map(|burn| match () {
        () if remaining <= 0.0 => 0.0,
        () if burn == 0.0 => f64::INFINITY,
        () => remaining * (720.0 * 3_600.0) / burn,
    });
    let budget = ErrorBudget { allowed, consumed, remaining_ratio: remaining, exhaustion_seconds: exhaustion };
    prop_assert_eq!(report.budget(), budget);
    prop_assert_eq!(slo.error_budget(now), budget);

    let mut alerts = Alerts::default();
    for pair in BurnPair::ALL {
        let (long, short) = pair.windows();
        let threshold = slo.burn_thresholds().get(pair);
        let judged = |w: SloWindow| covered[w as usize] >= DefaultSlo::window_ms(w);
        let above = |w| model_burn(events(w), objective).is_some_and(|b| b > threshold);
        let firing = judged(long)
            && judged(short)
            && events(long).total >= slo.min_events_to_alert()
            && above(long)
            && above(short);
        prop_assert_eq!(report.pair_firing(pair), firing, "{:?} at {}", pair, now);
        alerts.page |= firing && pair.is_page();
        alerts.ticket |= firing && !pair.is_page();
    }
    prop_assert_eq!(report.alerts(), alerts);
    prop_assert_eq!(slo.alerts(now), alerts);

    let all = model.events.iter().filter(|e| e.2).count() as u64;
    prop_assert_eq!(slo.cumulative(), Events { good: all, total: model.events.len() as u64 });
    prop_assert_eq!(slo.late_events(), model.late);
    Ok(())
}

/// How the clock moves before a step's events.
fn next_time(now: u64, kind: u8, amount: u64) -> u64 {
    match kind {
        // Small steps, across minute boundaries.
        0..=5 => now + amount % (3 * MINUTE),
        // Within the minute ring.
        6 => now + amount % (4 * HOUR),
        // A gap longer than the minute ring.
        7 => now + 6 * HOUR + amount % (2 * DAY),
        // A gap longer than the period.
        8 => now + 30 * DAY + amount % (10 * DAY),
        // A jump forward by whole days.
        9 => now + (1 + amount % 10) * DAY,
        // Backwards by up to 3 hours, then by up to 3 days.
        10 => now.saturating_sub(amount % (3 * HOUR)),
        _ => now.saturating_sub(amount % (3 * DAY)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random event streams through the SLO and the model agree on every figure, read at
    /// the time of the last event, later, and earlier.
    #[test]
    fn matches_the_naive_model(
        steps in proptest::collection::vec(
            (0u8..12, any::<u64>(), 0u8..4, proptest::collection::vec(any::<u8>(), 1..16)),
            1..90,
        ),
        later in 0..3 * DAY,
        earlier in 0..2 * HOUR,
    ) {
        let slo = Box::new(DefaultSlo::new("model", 0.99, GoodEvent::Success).min_events(5));
        let mut model = Model::default();
        let mut now = 4 * DAY;
        for (kind, amount, density, draws) in steps {
            now = next_time(now, kind, amount);
            // Bad with probability 0, 2 %, 20 % or 60 %.
            let bad_below = [0u8, 5, 51, 153][usize::from(density)];
            for (i, draw) in draws.into_iter().enumerate() {
                let good = draw >= bad_below;
                // A few events of a step land up to 2 minutes apart.
                let at = now + (i as u64 % 3) * 59_999;
                slo.record(at, good);
                model.record(at, good);
            }
            for read_at in [now, now + later, now.saturating_sub(earlier)] {
                check(&slo, &model, read_at)?;
            }
        }
    }
}

/// Five days of steady traffic (20 events a minute) with a 40-minute burst of errors each
/// day and a stray error every 97 minutes: a realistic stream next to the random ones, in
/// which every pair fires at some point and the model must agree then too.
#[test]
fn model_agrees_over_days_of_steady_traffic_with_bursts_of_errors() {
    let slo = Box::new(DefaultSlo::new("model", 0.999, GoodEvent::Success));
    let mut model = Model::default();
    let mut fired = [false; 4];
    let mut now = DAY;
    for minute in 0..(5 * 24 * 60) {
        for i in 0..20 {
            let t = now + i * 3 * SECOND;
            let bad = (minute % 1_440 > 600 && minute % 1_440 < 640 && i % 2 == 0) || (minute % 97 == 0 && i == 0);
            slo.record(t, !bad);
            model.record(t, !bad);
        }
        now += MINUTE;
        if minute % 7 == 0 {
            check(&slo, &model, now).unwrap();
            let report = slo.report(now);
            for (fired, pair) in fired.iter_mut().zip(BurnPair::ALL) {
                *fired |= report.pair_firing(pair);
            }
        }
    }
    assert_eq!(fired, [true; 4], "every pair fired at some point");
}

// ---------------------------------------------------------------------------------------
// SRE Workbook scenarios: steady traffic of 10 events/s (one every 100 ms)
// ---------------------------------------------------------------------------------------

const TICK: u64 = 100;
/// The first event. Ticks fall on multiples of 100 ms.
const START: u64 = 10 * DAY + 123_400;

/// Records one event every `TICK` from `*now` (inclusive) to `until` (exclusive), good
/// unless `bad(t)`, calling `after(t)` after each.
fn steady(slo: &DefaultSlo, now: &mut u64, until: u64, bad: impl Fn(u64) -> bool, mut after: impl FnMut(u64)) {
    while *now < until {
        slo.record(*now, !bad(*now));
        after(*now);
        *now += TICK;
    }
}

/// Four clean days (every window but 7d and the period covered), up to `until`; no alert
/// may fire.
fn clean_history(slo: &DefaultSlo, until: u64) -> u64 {
    let mut now = START;
    steady(
        slo,
        &mut now,
        until,
        |_| false,
        |t| {
            if t % HOUR == 0 {
                assert_eq!(slo.alerts(t), Alerts::default(), "clean traffic alerted at {t}");
            }
        },
    );
    assert!(until - START > 3 * DAY);
    now
}

/// Whether `bad / total` is above `per_10k / 10_000`, in exact integer arithmetic (14.4 ×
/// 0.1 % = 144 / 10,000; 6 × 0.1 % = 60 / 10,000).
fn ratio_above(bad: u64, total: u64, per_10k: u64) -> bool {
    10_000 * bad > per_10k * total
}

/// (a) 99.9 %, a total outage after a clean history: the page fires exactly when the 1h
/// window's error ratio passes 14.4 × 0.1 % = 1.44 %, which the slot layout fixes.
#[test]
fn total_outage_pages_at_the_computed_instant() {
    let slo = boxed(0.999, GoodEvent::Success);
    // The outage starts 20 s into the minute slot that begins at `m0`.
    let m0 = 14 * DAY + 17 * MINUTE;
    let t0 = m0 + 20 * SECOND;
    let mut now = clean_history(&slo, t0);

    // At t = t0 + x, b = x / 100 ms + 1 bad events have been recorded (t0 included).
    // The 1h window is the 60 whole minute slots before the current one plus the current
    // one, so it starts 60 minutes before the current slot:
    // - while x < 40 s the current slot starts at m0: the window starts at m0 - 60 min and
    //   holds 60 min + 20 s + x of events, 36_200 + b; b <= 400 there, and
    //   400 / 36_600 = 1.09 % is below 1.44 %: no page yet.
    assert!(!ratio_above(400, 36_200 + 400, 144));
    // - for 40 s <= x < 100 s the current slot starts at m0 + 1 min: the window starts at
    //   m0 - 59 min and holds 59 min + 20 s + x, that is 35_600 + b events. The page needs
    //   b / (35_600 + b) > 0.0144, i.e. 10_000 b > 144 (35_600 + b): b > 520.1.
    let b = 144 * 35_600 / (10_000 - 144) + 1;
    assert!(ratio_above(b, 35_600 + b, 144) && !ratio_above(b - 1, 35_600 + b - 1, 144));
    assert_eq!(b, 521);
    let detection = t0 + (b - 1) * TICK;
    assert!((40 * SECOND..100 * SECOND).contains(&(detection - t0)));
    // 52.0 s of outage. An exactly sliding hour (36,000 events) would need 519 bad events,
    // 51.8 s (the 0.0144 h): the slots cost 0.2 s here.
    assert_eq!(detection - t0, 52_000);
    assert!(ratio_above(519, 36_000, 144) && !ratio_above(518, 36_000, 144));
    // The 5m window then holds 4 min + 20 s + 52 s of events, 521 of them bad: far above.
    // The 6h/30m pair needs 0.6 % of the 6h window's ~216,000 events: much later.

    let mut first_page = None;
    steady(
        &slo,
        &mut now,
        t0 + 100 * SECOND,
        |_| true,
        |t| {
            let report = slo.report(t);
            if first_page.is_none() && report.alerts().page {
                first_page = Some((t, report));
            }
        },
    );
    let (at, report) = first_page.expect("the outage paged");
    assert_eq!(at, detection);
    assert!(report.pair_firing(BurnPair::Page1h5m) && !report.pair_firing(BurnPair::Page6h30m));
    assert_eq!(report.events(SloWindow::H1), Events { good: 35_600, total: 35_600 + 521 });
}

/// (b) A 0.2 % error rate (every 500th event bad) against 99.9 %: burn rate 2. Only the
/// 3d/6h ticket fires, from the instant the 3d window is covered, and never a page.
#[test]
fn slow_burn_raises_only_the_ticket() {
    let slo = boxed(0.999, GoodEvent::Success);
    let mut now = START;
    let bad = |t: u64| (t - START) / TICK % 500 == 499;
    // The coverage guard: the 3d window is judged once 3 days have been observed.
    let covered = START + 3 * DAY;
    steady(&slo, &mut now, covered, bad, |t| {
        if t % (10 * MINUTE) == 0 {
            assert_eq!(slo.alerts(t), Alerts::default(), "at {t}");
        }
    });
    assert_eq!(slo.alerts(covered - TICK), Alerts::default());
    steady(&slo, &mut now, covered + 12 * HOUR, bad, |t| {
        if t == covered || t % (10 * MINUTE) == 0 {
            let report = slo.report(t);
            assert_eq!(report.alerts(), Alerts { page: false, ticket: true }, "at {t}");
            assert!(report.pair_firing(BurnPair::Ticket3d6h) && !report.pair_firing(BurnPair::Ticket1d2h));
            for w in [SloWindow::H6, SloWindow::D1, SloWindow::D3] {
                let burn = report.burn_rate(w).unwrap();
                assert!((1.99..=2.01).contains(&burn), "{w:?}: {burn}");
            }
        }
    });
    // The budget is a fraction of the period's events: at twice the allowed error ratio
    // the period holds twice its allowed bad events, so 1 - 2 = -1 of it remains.
    let budget = slo.error_budget(now);
    assert!((budget.remaining_ratio + 1.0).abs() < 0.01, "{budget:?}");
    assert_eq!(budget.exhaustion_seconds, Some(0.0));
}

/// (c) After a 10-minute total outage ends, the 1h/5m page pair clears once the 5m window
/// no longer holds the outage's last slot; the 6h/30m pair, also a page, once the 30m
/// window does not.
#[test]
fn page_clears_when_the_short_windows_have_passed() {
    let slo = boxed(0.999, GoodEvent::Success);
    // The outage ends 20 s into the minute slot that begins at `m1`.
    let m1 = 14 * DAY + 42 * MINUTE;
    let t1 = m1 + 20 * SECOND;
    let t0 = t1 - 10 * MINUTE;
    let mut now = clean_history(&slo, t0);
    steady(&slo, &mut now, t1, |_| true, |_| {});
    assert!(slo.report(t1 - TICK).pair_firing(BurnPair::Page1h5m));
    assert!(slo.report(t1 - TICK).pair_firing(BurnPair::Page6h30m));

    // The last bad event (t1 - 100 ms) is in the slot starting at m1. A window of W whole
    // slots read at t holds slots from floor(t / 1 min) - W: it holds that slot until
    // floor(t / 1 min) - W > m1 / 1 min, i.e. until t = m1 + (W + 1) min. While it does,
    // it holds >= 200 bad events (m1 .. t1) of at most (W + 1) min / 100 ms events:
    // 200 / 3_600 = 5.6 % > 1.44 % for W = 5, 200 / 18_600 = 1.08 % > 0.6 % for W = 30.
    assert!(ratio_above(200, 3_600, 144) && ratio_above(200, 18_600, 60));
    // After it, the short window holds no bad event: burn rate 0. The long windows stay
    // far above (6,000 bad events in the 1h and 6h windows).
    let fast_clear = m1 + 6 * MINUTE;
    let slow_clear = m1 + 31 * MINUTE;
    assert_eq!(fast_clear - t1, 5 * MINUTE + 40 * SECOND);
    assert_eq!(slow_clear - t1, 30 * MINUTE + 40 * SECOND);

    steady(
        &slo,
        &mut now,
        t1 + 40 * MINUTE,
        |_| false,
        |t| {
            let report = slo.report(t);
            assert_eq!(report.pair_firing(BurnPair::Page1h5m), t < fast_clear, "1h/5m at t1 + {} ms", t - t1);
            assert_eq!(report.pair_firing(BurnPair::Page6h30m), t < slow_clear, "6h/30m at t1 + {} ms", t - t1);
            assert_eq!(report.alerts().page, t < slow_clear);
            assert!(report.burn_rate(SloWindow::H1).unwrap() > 14.4 || t > t0 + HOUR + MINUTE);
        },
    );
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

fn render(registry: &Registry<16>, format: Format) -> String {
    let mut renderer = registry.renderer(format);
    let mut buf = std::vec![0u8; registry.max_line_len()];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// No sample has the value NaN (help texts may mention it).
fn no_nan(text: &str) -> bool {
    text.lines().filter(|l| !l.starts_with('#')).all(|l| !l.ends_with(" NaN"))
}

/// Runs `promtool check metrics` on `text` when promtool is installed (CI installs it).
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool");
    promtool.args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let Ok(mut child) = promtool.spawn() else {
        std::eprintln!("promtool not found; skipping its check");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && report.trim().is_empty(), "promtool:\n{report}\n--- input ---\n{text}");
}

#[test]
fn export_renders_every_figure_and_skips_undefined_ones() {
    static API: Slo = Slo::new("api", 0.99, GoodEvent::Success).min_events(10);
    static QUIET: Slo<361, 169> = Slo::new("quiet \"one\"", 0.9, GoodEvent::LatencyAtMost(0.25));
    static SLOS: SloExport<2> = SloExport::new();
    static REGISTRY: Registry<16> = Registry::new();
    SLOS.add(&API).unwrap();
    SLOS.add(&QUIET).unwrap();
    SLOS.register(&REGISTRY).unwrap();
    assert_eq!(SLOS.register(&REGISTRY), Err(crate::RegisterError::RegistryFull("plimsoll_slo_objective_ratio")));
    assert_eq!(SLOS.footprint(), SloExport::<2>::FOOTPRINT + DefaultSlo::FOOTPRINT + Slo::<361, 169>::FOOTPRINT);

    // Two hours of 1 event/s on "api", 5 % bad in the last 5 minutes; "quiet" saw one
    // invalid latency only.
    for s in 0..2 * 3_600 {
        let t = s * SECOND;
        API.record(t, !(s >= 7_200 - 300 && s % 20 == 0));
    }
    QUIET.record_latency(0, f64::NAN);
    let now = 2 * HOUR;
    SLOS.update(now);

    let text = render(&REGISTRY, Format::Prometheus);
    for line in [
        "plimsoll_slo_objective_ratio{slo=\"api\"} 0.99",
        "plimsoll_slo_objective_ratio{slo=\"quiet \\\"one\\\"\"} 0.9",
        "plimsoll_slo_period_seconds{slo=\"api\"} 2592000",
        "plimsoll_slo_period_seconds{slo=\"quiet \\\"one\\\"\"} 604800",
        "plimsoll_slo_events_total{slo=\"api\",result=\"good\"} 7185",
        "plimsoll_slo_events_total{slo=\"api\",result=\"bad\"} 15",
        "plimsoll_slo_events_rejected_total{slo=\"quiet \\\"one\\\"\",reason=\"invalid\"} 1",
        "plimsoll_slo_events_rejected_total{slo=\"api\",reason=\"slot_full\"} 0",
        // 15 bad of 301 events in the 5m window (5 whole minutes and the current one).
        "plimsoll_slo_window_covered_seconds{slo=\"api\",window=\"5m\"} 300",
        "plimsoll_slo_window_covered_seconds{slo=\"api\",window=\"3d\"} 7200",
        "plimsoll_slo_window_covered_seconds{slo=\"quiet \\\"one\\\"\",window=\"1h\"} 0",
        "plimsoll_slo_alert{slo=\"api\",severity=\"page\"} 0",
        "plimsoll_slo_alert{slo=\"api\",severity=\"ticket\"} 0",
        "plimsoll_slo_alert{slo=\"quiet \\\"one\\\"\",severity=\"page\"} 0",
        "plimsoll_slo_error_budget_remaining_ratio{slo=\"quiet \\\"one\\\"\"} 1",
        "plimsoll_slo_error_budget_events{slo=\"api\",state=\"consumed\"} 15",
    ] {
        assert!(has_line(&text, line), "no line {line:?} in:\n{text}");
    }
    let burn_5m = 15.0 / 300.0 / (1.0 - 0.99);
    assert!(has_line(&text, &std::format!("plimsoll_slo_burn_rate{{slo=\"api\",window=\"5m\"}} {burn_5m}")), "{text}");
    // Two hours observed: the 2h window is covered, the 6h one is not and shows no burn rate.
    assert!(text.contains("plimsoll_slo_burn_rate{slo=\"api\",window=\"2h\"} "), "{text}");
    assert!(!text.contains("plimsoll_slo_burn_rate{slo=\"api\",window=\"6h\"}"), "{text}");
    let api = API.report(now);
    assert_eq!(api.events(SloWindow::M5), Events { good: 285, total: 300 }, "the current slot is empty at 2:00:00");
    let remaining = api.budget().remaining_ratio;
    assert!(has_line(&text, &std::format!("plimsoll_slo_error_budget_remaining_ratio{{slo=\"api\"}} {remaining}")));
    assert!(text.contains("plimsoll_slo_error_budget_exhaustion_seconds{slo=\"api\"} "));
    assert!(text.contains("plimsoll_slo_availability_ratio{slo=\"api\",window=\"1d\"} 0.9979"));
    // Undefined figures of "quiet" are absent, never NaN.
    assert!(no_nan(&text), "{text}");
    let quiet = ["burn_rate{slo=\"quiet", "availability_ratio{slo=\"quiet", "exhaustion_seconds{slo=\"quiet"];
    for absent in quiet {
        assert!(!text.contains(absent), "{absent} in:\n{text}");
    }
    promtool_check(&text);

    let open = render(&REGISTRY, Format::OpenMetrics);
    for line in [
        "# TYPE plimsoll_slo_events counter",
        "# UNIT plimsoll_slo_objective_ratio ratio",
        "# UNIT plimsoll_slo_window_covered_seconds seconds",
        "plimsoll_slo_events_total{slo=\"api\",result=\"bad\"} 15",
        "# EOF",
    ] {
        assert!(has_line(&open, line), "no line {line:?} in:\n{open}");
    }
    assert!(no_nan(&open), "{open}");

    // Counters only go up: more events, then a later update.
    API.record(now, false);
    SLOS.update(now + SECOND);
    SLOS.update(now);
    let text = render(&REGISTRY, Format::Prometheus);
    assert!(has_line(&text, "plimsoll_slo_events_total{slo=\"api\",result=\"bad\"} 16"), "{text}");
}

/// An SLO whose every window was left behind by the clock: no NaN, no burn rate, and the
/// all-time counters keep their value.
#[test]
fn export_after_a_long_silence() {
    static API: Slo = Slo::new("silent", 0.999, GoodEvent::Success);
    static CLEAN: Slo = Slo::new("clean", 0.999, GoodEvent::Success);
    static SLOS: SloExport<2> = SloExport::new();
    static REGISTRY: Registry<16> = Registry::new();
    SLOS.add(&API).unwrap();
    SLOS.add(&CLEAN).unwrap();
    SLOS.register(&REGISTRY).unwrap();
    for t in 0..1_000 {
        API.record(t * SECOND, t % 10 != 0);
        CLEAN.record(t * SECOND, true);
    }
    SLOS.update(1_000 * SECOND);
    let text = render(&REGISTRY, Format::Prometheus);
    assert!(text.contains("plimsoll_slo_burn_rate{slo=\"silent\",window=\"5m\"}"), "{text}");
    // No bad event in the last day: the budget lasts forever.
    assert!(has_line(&text, "plimsoll_slo_error_budget_exhaustion_seconds{slo=\"clean\"} +Inf"), "{text}");
    assert!(has_line(&text, "plimsoll_slo_burn_rate{slo=\"clean\",window=\"5m\"} 0"), "{text}");
    promtool_check(&text);
    SLOS.update(60 * DAY);
    let text = render(&REGISTRY, Format::Prometheus);
    assert!(!text.contains("plimsoll_slo_burn_rate{"), "{text}");
    assert!(no_nan(&text), "{text}");
    assert!(has_line(&text, "plimsoll_slo_events_total{slo=\"silent\",result=\"bad\"} 100"), "{text}");
    assert!(has_line(&text, "plimsoll_slo_error_budget_remaining_ratio{slo=\"silent\"} 1"), "{text}");
    assert!(!text.contains("plimsoll_slo_error_budget_exhaustion_seconds{"), "no events in the last day: {text}");
    promtool_check(&text);
}
