//! Exporting SLOs through a [`Registry`]: see [`SloExport`].

use super::{Alerts, Events, Slo, SloError, SloReport, SloWindow};
use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::family::{Exposable, SkipNan};
use crate::members::{Member, Members, Refused};
use crate::{Counter, Family, Gauge, GaugeF64, RegisterError, Registry};

/// The most SLOs one [`SloExport`] holds.
pub const MAX_SLOS: usize = 8;
/// The longest SLO name, in bytes (the exported families' label value capacity).
pub const MAX_SLO_NAME_LEN: usize = 64;

const WINDOWS: usize = SloWindow::ALL.len();
const AVAILABILITY_WINDOWS: [SloWindow; 3] = [SloWindow::D1, SloWindow::D7, SloWindow::Period];
/// Families an export registers.
const FAMILIES: usize = 11;

/// What the export reads from an SLO of any ring sizes.
trait Source: Member {
    fn objective(&self) -> f64;
    fn period_ms(&self) -> u64;
    fn report(&self, now_ms: u64) -> SloReport;
    fn cumulative(&self) -> Events;
    fn invalid_events(&self) -> u64;
    fn dropped_events(&self) -> u64;
}

impl<const SHORT: usize, const LONG: usize> Member for Slo<SHORT, LONG> {
    fn name(&self) -> &'static str {
        Slo::name(self)
    }
    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }
}

impl<const SHORT: usize, const LONG: usize> Source for Slo<SHORT, LONG> {
    fn objective(&self) -> f64 {
        Slo::objective(self)
    }
    fn period_ms(&self) -> u64 {
        Self::PERIOD_MS
    }
    fn report(&self, now_ms: u64) -> SloReport {
        Slo::report(self, now_ms)
    }
    fn cumulative(&self) -> Events {
        Slo::cumulative(self)
    }
    fn invalid_events(&self) -> u64 {
        Slo::invalid_events(self)
    }
    fn dropped_events(&self) -> u64 {
        Slo::dropped_events(self)
    }
}

type PerSlo<M> = Family<M, 1, MAX_SLOS, MAX_SLO_NAME_LEN>;
type PerSloAnd<M, const N: usize> = Family<M, 2, N, MAX_SLO_NAME_LEN>;

/// Last exported all-time counts: good, bad, invalid, dropped.
const GOOD: usize = 0;
const BAD: usize = 1;
const INVALID: usize = 2;
const DROPPED: usize = 3;

/// Up to `K` SLOs (at most [`MAX_SLOS`]) exported through a [`Registry`]: a fixed set of
/// ordinary families that [`update`](Self::update) fills from the SLOs before each scrape.
///
/// The core never reads a clock, so the figures are computed when the exporter calls
/// `update(now_ms)`, not when the registry renders. Series that would be NaN (a burn rate
/// or an availability over a window without events, a time to exhaustion when the last day
/// holds no events) are left out of the exposition rather than exported as `NaN`, and so is
/// the burn rate of a window the process has not yet observed in full (a "1h" burn rate of
/// 2 minutes of data is not a 1h burn rate; [`SloReport::is_covered`]). Covered seconds,
/// objectives, budgets and alert states are always exported. Availability is exported over
/// what has been observed, covered or not.
///
/// | family | labels |
/// |---|---|
/// | `plimsoll_slo_objective_ratio` | `slo` |
/// | `plimsoll_slo_period_seconds` | `slo` |
/// | `plimsoll_slo_events_total` | `slo`, `result` = `good` \| `bad` |
/// | `plimsoll_slo_events_rejected_total` | `slo`, `reason` = `invalid` \| `slot_full` |
/// | `plimsoll_slo_burn_rate` | `slo`, `window` = `5m` … `7d` \| `period` |
/// | `plimsoll_slo_window_covered_seconds` | `slo`, `window` |
/// | `plimsoll_slo_error_budget_remaining_ratio` | `slo` |
/// | `plimsoll_slo_error_budget_events` | `slo`, `state` = `allowed` \| `consumed` |
/// | `plimsoll_slo_error_budget_exhaustion_seconds` | `slo` |
/// | `plimsoll_slo_alert` | `slo`, `severity` = `page` \| `ticket` |
/// | `plimsoll_slo_availability_ratio` | `slo`, `window` = `1d` \| `7d` \| `period` |
///
/// # Footprint
///
/// Family capacities must be plain constants (a const generic expression of `K` is not
/// allowed on stable Rust), so the families are sized for [`MAX_SLOS`] = 8 SLOs with names
/// of at most [`MAX_SLO_NAME_LEN`] = 64 bytes whatever `K`, and `K` is asserted to fit:
/// an `SloExport<K>` is 39,352 bytes plus 48 per SLO on a 64-bit target
/// ([`SloExport::FOOTPRINT`]; 39,736 for `K = 8`), the SLOs themselves not included.
/// Nearly all of it is the 264 series of the 11 families (each series holds its label
/// values: 2 × 64 bytes for the two-label families).
///
/// ```
/// use plimsoll_core::{Format, GoodEvent, Registry, Slo, SloExport};
/// static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
/// static SLOS: SloExport<4> = SloExport::new();
/// static REGISTRY: Registry<16> = Registry::new();
///
/// SLOS.add(&API).unwrap();
/// SLOS.register(&REGISTRY).unwrap();
/// API.record(1_000, true);
/// SLOS.update(2_000); // before each scrape, with the scrape's time
/// let mut buf = [0u8; 512];
/// let mut renderer = REGISTRY.renderer(Format::Prometheus);
/// while !renderer.is_done() {
///     let n = renderer.render(&mut buf).unwrap();
/// #   assert!(n > 0);
/// }
/// ```
pub struct SloExport<const K: usize> {
    slos: Members<dyn Source, K>,
    exported: [[AtomicU64; 4]; K],
    objective: PerSlo<GaugeF64>,
    period: PerSlo<GaugeF64>,
    events: PerSloAnd<Counter, { 2 * MAX_SLOS }>,
    rejected: PerSloAnd<Counter, { 2 * MAX_SLOS }>,
    burn_rate: SkipNan<PerSloAnd<GaugeF64, { WINDOWS * MAX_SLOS }>>,
    covered: PerSloAnd<GaugeF64, { WINDOWS * MAX_SLOS }>,
    budget_remaining: PerSlo<GaugeF64>,
    budget_events: PerSloAnd<GaugeF64, { 2 * MAX_SLOS }>,
    exhaustion: SkipNan<PerSlo<GaugeF64>>,
    alert: PerSloAnd<Gauge, { 2 * MAX_SLOS }>,
    availability: SkipNan<PerSloAnd<GaugeF64, { AVAILABILITY_WINDOWS.len() * MAX_SLOS }>>,
}

impl<const K: usize> core::fmt::Debug for SloExport<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SloExport").field("slos", &self.len()).field("capacity", &K).finish_non_exhaustive()
    }
}

impl<const K: usize> Default for SloExport<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> SloExport<K> {
    /// Size in bytes (the families included, the SLOs not).
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty export set.
    pub const fn new() -> Self {
        const { assert!(K > 0 && K <= MAX_SLOS, "an SloExport holds 1 to MAX_SLOS SLOs") };
        Self {
            slos: Members::new(),
            exported: [const { [const { AtomicU64::new(0) }; 4] }; K],
            objective: Family::new(
                "plimsoll_slo_objective_ratio",
                "Target fraction of good events of each SLO.",
                ["slo"],
            )
            .unit("ratio"),
            period: Family::new(
                "plimsoll_slo_period_seconds",
                "Length of each SLO's rolling compliance period.",
                ["slo"],
            )
            .unit("seconds"),
            events: Family::new(
                "plimsoll_slo_events",
                "Events of each SLO since the process started, by result.",
                ["slo", "result"],
            ),
            rejected: Family::new(
                "plimsoll_slo_events_rejected",
                "Events of each SLO not counted: an invalid latency, or a full window slot.",
                ["slo", "reason"],
            ),
            burn_rate: SkipNan(Family::new(
                "plimsoll_slo_burn_rate",
                "Error ratio over the window divided by the error budget ratio (1 - objective); \
                 absent while the window holds no events or is not fully covered.",
                ["slo", "window"],
            )),
            covered: Family::new(
                "plimsoll_slo_window_covered_seconds",
                "How much of each window the process has observed; alerts judge a window only once it is \
                 fully covered.",
                ["slo", "window"],
            )
            .unit("seconds"),
            budget_remaining: Family::new(
                "plimsoll_slo_error_budget_remaining_ratio",
                "Fraction of the period's error budget left (1 - consumed / allowed); negative once overspent.",
                ["slo"],
            )
            .unit("ratio"),
            budget_events: Family::new(
                "plimsoll_slo_error_budget_events",
                "Bad events the period allows ((1 - objective) x events in the period) and bad events it holds.",
                ["slo", "state"],
            ),
            exhaustion: SkipNan(
                Family::new(
                    "plimsoll_slo_error_budget_exhaustion_seconds",
                    "Time until the error budget is spent at the 1-day burn rate; +Inf at a zero burn rate, \
                     absent when the last day holds no events.",
                    ["slo"],
                )
                .unit("seconds"),
            ),
            alert: Family::new(
                "plimsoll_slo_alert",
                "Multi-window, multi-burn-rate alert state (SRE Workbook): 1 firing, 0 not.",
                ["slo", "severity"],
            ),
            availability: SkipNan(
                Family::new(
                    "plimsoll_slo_availability_ratio",
                    "Fraction of good events over the window; absent while it holds no events.",
                    ["slo", "window"],
                )
                .unit("ratio"),
            ),
        }
    }

    /// Adds `slo` after checking it ([`Slo::validate`]) and that no SLO of the same name is
    /// in the set.
    pub fn add<const SHORT: usize, const LONG: usize>(&self, slo: &'static Slo<SHORT, LONG>) -> Result<(), SloError> {
        slo.validate()?;
        let name = slo.name();
        self.slos.push(slo).map_err(|refused| match refused {
            Refused::Duplicate => SloError::DuplicateName(name),
            Refused::Full => SloError::ExportFull(name),
        })
    }

    /// Number of SLOs in the set.
    pub fn len(&self) -> usize {
        self.slos.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes used by the export and the SLOs in it.
    pub fn footprint(&self) -> usize {
        Self::FOOTPRINT + self.slos.footprint()
    }

    fn families(&'static self) -> [&'static dyn Exposable; FAMILIES] {
        [
            &self.objective,
            &self.period,
            &self.events,
            &self.rejected,
            &self.burn_rate,
            &self.covered,
            &self.budget_remaining,
            &self.budget_events,
            &self.exhaustion,
            &self.alert,
            &self.availability,
        ]
    }

    /// Registers the export's 11 families with `registry`. Fails without registering any
    /// if the registry has no room for all of them, or if it already holds an export's
    /// families (the first family is then a duplicate); a clash with another family's name
    /// fails at that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families = self.families();
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Computes every figure of every SLO at `now_ms` and stores it into the families.
    /// Call it before each scrape; concurrent calls are safe (counters never go back).
    pub fn update(&self, now_ms: u64) {
        for (index, slo) in self.slos.iter().enumerate() {
            self.update_one(index, slo, now_ms);
        }
    }

    /// Calls `each(name, objective, report)` for every SLO in the export, with its figures
    /// at `now_ms` (for reports that need more than the alerts).
    pub fn for_each_report(&self, now_ms: u64, mut each: impl FnMut(&'static str, f64, &SloReport)) {
        for slo in self.slos.iter() {
            each(slo.name(), slo.objective(), &slo.report(now_ms));
        }
    }

    /// Calls `each(name, alerts)` for every SLO in the export, with its alert state at
    /// `now_ms` (for health checks that need the states rather than the series).
    pub fn for_each_alert(&self, now_ms: u64, mut each: impl FnMut(&'static str, Alerts)) {
        for slo in self.slos.iter() {
            each(slo.name(), slo.report(now_ms).alerts());
        }
    }

    fn update_one(&self, index: usize, slo: &dyn Source, now_ms: u64) {
        let name = slo.name();
        let report = slo.report(now_ms);
        self.objective.with_label_values(&[name]).set(slo.objective());
        self.period.with_label_values(&[name]).set((slo.period_ms() / 1_000) as f64);

        let all_time = slo.cumulative();
        let exported = &self.exported[index];
        advance(&exported[GOOD], self.events.with_label_values(&[name, "good"]), all_time.good);
        advance(&exported[BAD], self.events.with_label_values(&[name, "bad"]), all_time.bad());
        advance(&exported[INVALID], self.rejected.with_label_values(&[name, "invalid"]), slo.invalid_events());
        advance(&exported[DROPPED], self.rejected.with_label_values(&[name, "slot_full"]), slo.dropped_events());

        for window in SloWindow::ALL {
            let labels = [name, window.label()];
            let burn = report.burn_rate(window).filter(|_| report.is_covered(window)).unwrap_or(f64::NAN);
            self.burn_rate.0.with_label_values(&labels).set(burn);
            self.covered.with_label_values(&labels).set(report.covered_ms(window) as f64 / 1_000.0);
        }
        for window in AVAILABILITY_WINDOWS {
            let availability = report.availability(window).unwrap_or(f64::NAN);
            self.availability.0.with_label_values(&[name, window.label()]).set(availability);
        }

        let budget = report.budget();
        self.budget_remaining.with_label_values(&[name]).set(budget.remaining_ratio);
        self.budget_events.with_label_values(&[name, "allowed"]).set(budget.allowed);
        self.budget_events.with_label_values(&[name, "consumed"]).set(budget.consumed as f64);
        self.exhaustion.0.with_label_values(&[name]).set(budget.exhaustion_seconds.unwrap_or(f64::NAN));

        let alerts = report.alerts();
        self.alert.with_label_values(&[name, "page"]).set(i64::from(alerts.page));
        self.alert.with_label_values(&[name, "ticket"]).set(i64::from(alerts.ticket));
    }
}

/// Moves an exported counter up to `current`. `fetch_max` on the last exported value makes
/// concurrent updates add each increment once, and the counter never goes back.
fn advance(last: &AtomicU64, counter: &Counter, current: u64) {
    let previous = last.fetch_max(current, Relaxed);
    if current > previous {
        counter.inc_by(current - previous);
    }
}
