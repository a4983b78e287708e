//! Service level objectives: good/total event counts in two fixed rings, error budgets and
//! the SRE Workbook's multi-window, multi-burn-rate alerts, with no timers and no
//! allocation.
//!
//! The design, the figures and the defaults are documented on [`Slo`]; the metric families
//! on [`SloExport`].

use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::sealed::Sealed;
use crate::window::{SlotData, Window};
use core::fmt;

mod export;
#[cfg(all(test, not(loom)))]
mod tests;

pub use export::{MAX_SLO_NAME_LEN, MAX_SLOS, SloExport};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// The default low-traffic guard: a pair of windows may alert only if its long window
/// holds at least this many events. See [`Slo`] for why 100.
pub const DEFAULT_MIN_EVENTS: u64 = 100;

// ---------------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------------

/// Good and total event counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Events {
    /// Good events.
    pub good: u64,
    /// All events, good and bad.
    pub total: u64,
}

impl Events {
    /// Bad events: `total - good`.
    pub const fn bad(self) -> u64 {
        self.total.saturating_sub(self.good)
    }

    fn add(&mut self, other: Events) {
        self.good += other.good;
        self.total += other.total;
    }
}

const TOTAL_MASK: u64 = 0xFFFF_FFFF;

/// A window slot of good and total event counts, packed into one `AtomicU64`
/// (`good << 32 | total`), so counting an event is one `fetch_add`.
///
/// A slot counts at most [`CAPACITY`](Self::CAPACITY) events; [`record`](Self::record)
/// refuses the rest (see [`Slo`], "Per-slot bound").
#[derive(Debug, Default)]
pub struct GoodTotal(AtomicU64);

impl GoodTotal {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();
    /// The most events a slot counts: 2^32 − 2^16. The headroom up to `u32::MAX` absorbs
    /// the transient overshoot of up to 2^16 recorders racing past the limit at once.
    pub const CAPACITY: u64 = (1 << 32) - (1 << 16);

    /// No events.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Counts one event; returns `false`, counting nothing, if the slot is full.
    #[inline]
    pub fn record(&self, good: bool) -> bool {
        let event = 1 | (u64::from(good) << 32);
        let previous = self.0.fetch_add(event, Relaxed);
        if previous & TOTAL_MASK < Self::CAPACITY {
            return true;
        }
        self.0.fetch_sub(event, Relaxed);
        false
    }

    /// Takes back an event [`record`](Self::record) counted.
    fn unrecord(&self, good: bool) {
        self.0.fetch_sub(1 | (u64::from(good) << 32), Relaxed);
    }

    /// The counts, read in one load (so `good <= total`).
    #[inline]
    pub fn get(&self) -> Events {
        let packed = self.0.load(Relaxed);
        Events { good: packed >> 32, total: packed & TOTAL_MASK }
    }

    #[cfg(test)]
    fn set(&self, events: Events) {
        self.0.store(events.good << 32 | events.total, Relaxed);
    }
}

impl Sealed for GoodTotal {}
impl SlotData for GoodTotal {
    #[allow(clippy::declare_interior_mutable_const)] // See `SlotData::EMPTY`.
    const EMPTY: Self = GoodTotal::new();
    fn reset(&self) {
        self.0.store(0, Relaxed);
    }
    #[cfg(feature = "postcard")]
    const KIND: &'static str = "good_total";
    #[cfg(feature = "postcard")]
    fn save(&self, out: &mut dyn FnMut(u64)) {
        out(self.0.load(Relaxed));
    }
    #[cfg(feature = "postcard")]
    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let packed = words.next()?;
        if packed >> 32 > packed & u64::from(u32::MAX) {
            return Err(crate::snapshot::SnapshotError::Corrupt);
        }
        if apply {
            self.0.store(packed, Relaxed);
        }
        Ok(())
    }
}

impl<const S: usize, const SLOT_MS: u64> Window<GoodTotal, S, SLOT_MS> {
    /// Counts one event at `now_ms`; `false` if its slot was full (nothing counted).
    #[inline]
    pub fn record(&self, now_ms: u64, good: bool) -> bool {
        self.slot_at(now_ms, |_, _| {}).record(good)
    }

    /// Good and total events in the window of `span_ms` at `now_ms`.
    pub fn events(&self, now_ms: u64, span_ms: u64) -> Events {
        let mut events = Events::default();
        self.for_each_in(now_ms, span_ms, |_, slot| events.add(slot.get()));
        events
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// What makes an event good.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GoodEvent {
    /// The caller says: [`Slo::record`] with `good`.
    Success,
    /// A latency of at most this many seconds ([`Slo::record_latency`]); must be finite and
    /// positive.
    LatencyAtMost(f64),
}

/// Burn-rate thresholds of the four alerting pairs of windows. A pair fires when both of
/// its burn rates are strictly above its threshold. Thresholds must be finite and positive.
///
/// The defaults ([`WORKBOOK`](Self::WORKBOOK)) are the Google SRE Workbook's for a 30-day
/// objective ("Alerting on SLOs", the multiwindow, multi-burn-rate table that Sloth's
/// 30-day catalog encodes). A threshold is the budget fraction spent in the long window,
/// times the period over the window: page when 2 % burns in 1 hour (0.02 × 720 h / 1 h =
/// 14.4) or 5 % in 6 hours (6); ticket when 10 % burns in 1 day (3) or in 3 days (1).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BurnThresholds {
    /// Page when the 1h and 5m burn rates both exceed this (default 14.4).
    pub page_1h_5m: f64,
    /// Page when the 6h and 30m burn rates both exceed this (default 6).
    pub page_6h_30m: f64,
    /// Ticket when the 1d and 2h burn rates both exceed this (default 3).
    pub ticket_1d_2h: f64,
    /// Ticket when the 3d and 6h burn rates both exceed this (default 1).
    pub ticket_3d_6h: f64,
}

impl BurnThresholds {
    /// The SRE Workbook's thresholds for a 30-day objective.
    pub const WORKBOOK: Self = Self { page_1h_5m: 14.4, page_6h_30m: 6.0, ticket_1d_2h: 3.0, ticket_3d_6h: 1.0 };

    const fn get(&self, pair: BurnPair) -> f64 {
        match pair {
            BurnPair::Page1h5m => self.page_1h_5m,
            BurnPair::Page6h30m => self.page_6h_30m,
            BurnPair::Ticket1d2h => self.ticket_1d_2h,
            BurnPair::Ticket3d6h => self.ticket_3d_6h,
        }
    }
}

impl Default for BurnThresholds {
    fn default() -> Self {
        Self::WORKBOOK
    }
}

/// The windows an SLO is read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SloWindow {
    /// 5 minutes (minute ring).
    M5,
    /// 30 minutes (minute ring).
    M30,
    /// 1 hour (minute ring).
    H1,
    /// 2 hours (minute ring).
    H2,
    /// 6 hours (minute ring).
    H6,
    /// 1 day (hour ring).
    D1,
    /// 3 days (hour ring).
    D3,
    /// 7 days (hour ring).
    D7,
    /// The compliance period: `LONG - 1` hours (hour ring), 30 days by default.
    Period,
}

impl SloWindow {
    /// Every window, shortest first.
    pub const ALL: [SloWindow; 9] =
        [Self::M5, Self::M30, Self::H1, Self::H2, Self::H6, Self::D1, Self::D3, Self::D7, Self::Period];

    /// The value of the `window` label: `5m`, `30m`, `1h`, `2h`, `6h`, `1d`, `3d`, `7d`,
    /// `period`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::M5 => "5m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H2 => "2h",
            Self::H6 => "6h",
            Self::D1 => "1d",
            Self::D3 => "3d",
            Self::D7 => "7d",
            Self::Period => "period",
        }
    }

    /// Whether the window is read from the minute ring (else the hour ring).
    const fn is_short(self) -> bool {
        matches!(self, Self::M5 | Self::M30 | Self::H1 | Self::H2 | Self::H6)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// The four alerting pairs of windows (long, short) of the SRE Workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BurnPair {
    /// Page: 1h and 5m.
    Page1h5m,
    /// Page: 6h and 30m.
    Page6h30m,
    /// Ticket: 1d and 2h.
    Ticket1d2h,
    /// Ticket: 3d and 6h.
    Ticket3d6h,
}

impl BurnPair {
    /// Every pair, pages first.
    pub const ALL: [BurnPair; 4] = [Self::Page1h5m, Self::Page6h30m, Self::Ticket1d2h, Self::Ticket3d6h];

    /// The long and the short window of the pair.
    pub const fn windows(self) -> (SloWindow, SloWindow) {
        match self {
            Self::Page1h5m => (SloWindow::H1, SloWindow::M5),
            Self::Page6h30m => (SloWindow::H6, SloWindow::M30),
            Self::Ticket1d2h => (SloWindow::D1, SloWindow::H2),
            Self::Ticket3d6h => (SloWindow::D3, SloWindow::H6),
        }
    }

    /// Whether the pair pages (else it opens a ticket).
    pub const fn is_page(self) -> bool {
        matches!(self, Self::Page1h5m | Self::Page6h30m)
    }
}

/// Why an SLO was refused by an [`SloExport`] (or by [`Slo::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SloError {
    /// The objective of this SLO is not strictly between 0 and 1 (or is NaN).
    InvalidObjective(&'static str),
    /// The name is empty, longer than [`MAX_SLO_NAME_LEN`] bytes, holds a control
    /// character, or is the overflow label value `"__overflow__"`.
    InvalidName(&'static str),
    /// A burn-rate threshold of this SLO is not finite and positive.
    InvalidThreshold(&'static str),
    /// The latency threshold of this SLO is not finite and positive.
    InvalidLatencyThreshold(&'static str),
    /// An SLO of this name is already in the export set.
    DuplicateName(&'static str),
    /// The export set is full; this SLO was not added.
    ExportFull(&'static str),
}

impl fmt::Display for SloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidObjective(name) => write!(f, "objective of SLO {name:?} is not strictly between 0 and 1"),
            Self::InvalidName(name) => write!(f, "SLO name {name:?} is not a valid label value"),
            Self::InvalidThreshold(name) => {
                write!(f, "a burn-rate threshold of SLO {name:?} is not finite and positive")
            }
            Self::InvalidLatencyThreshold(name) => {
                write!(f, "latency threshold of SLO {name:?} is not finite and positive")
            }
            Self::DuplicateName(name) => write!(f, "an SLO named {name:?} is already exported"),
            Self::ExportFull(name) => write!(f, "SLO export set is full; cannot add {name:?}"),
        }
    }
}

impl core::error::Error for SloError {}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SLO_NAME_LEN
        && name != crate::OVERFLOW_LABEL_VALUE
        && !name.chars().any(char::is_control)
}

fn is_finite_positive(x: f64) -> bool {
    x > 0.0 && x < f64::INFINITY
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// Alert states ([`BurnThresholds`] has the rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Alerts {
    /// A page pair (1h/5m or 6h/30m) fires.
    pub page: bool,
    /// A ticket pair (1d/2h or 3d/6h) fires.
    pub ticket: bool,
}

/// The error budget over the compliance period.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorBudget {
    /// Bad events the period allows: `(1 - objective) * total`.
    pub allowed: f64,
    /// Bad events in the period.
    pub consumed: u64,
    /// `1 - consumed / allowed`: 1 with no events, negative once overspent.
    pub remaining_ratio: f64,
    /// Seconds until the budget is spent at the 1-day burn rate: 0 once spent, `+∞` at a
    /// zero burn rate, `None` if the last day holds no events.
    pub exhaustion_seconds: Option<f64>,
}

/// Every figure of an SLO at one instant, from one pass over each ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloReport {
    events: [Events; 9],
    covered_ms: [u64; 9],
    covered: [bool; 9],
    burn_rates: [Option<f64>; 9],
    pairs: [bool; 4],
    budget: ErrorBudget,
}

impl SloReport {
    /// Good and total events in `window`.
    pub fn events(&self, window: SloWindow) -> Events {
        self.events[window.index()]
    }

    /// The burn rate over `window`, `None` without events. Computed whether or not the
    /// window [is covered](Self::is_covered): over the part observed so far.
    pub fn burn_rate(&self, window: SloWindow) -> Option<f64> {
        self.burn_rates[window.index()]
    }

    /// How much of `window` the process has observed, in ms.
    pub fn covered_ms(&self, window: SloWindow) -> u64 {
        self.covered_ms[window.index()]
    }

    /// Whether the process has observed the whole nominal length of `window` (the coverage
    /// guard): only then do alerts judge it, and the export show its burn rate.
    pub fn is_covered(&self, window: SloWindow) -> bool {
        self.covered[window.index()]
    }

    /// `good / total` over `window`, `None` without events.
    pub fn availability(&self, window: SloWindow) -> Option<f64> {
        let events = self.events(window);
        (events.total > 0).then(|| events.good as f64 / events.total as f64)
    }

    /// The error budget over the period.
    pub fn budget(&self) -> ErrorBudget {
        self.budget
    }

    /// Whether `pair` fires.
    pub fn pair_firing(&self, pair: BurnPair) -> bool {
        self.pairs[pair as usize]
    }

    /// Page and ticket states.
    pub fn alerts(&self) -> Alerts {
        let mut alerts = Alerts::default();
        for pair in BurnPair::ALL.into_iter().filter(|&p| self.pair_firing(p)) {
            if pair.is_page() {
                alerts.page = true;
            } else {
                alerts.ticket = true;
            }
        }
        alerts
    }
}

// ---------------------------------------------------------------------------------------
// The SLO
// ---------------------------------------------------------------------------------------

/// A service level objective: good and total event counts in two fixed rings, its error
/// budget and the SRE Workbook's multi-window, multi-burn-rate alerts.
///
/// An `Slo` counts events, each good or bad, into two rolling [`Window`]s of [`GoodTotal`]
/// slots: `SHORT` 1-minute slots (default 361, so the 5m, 30m, 1h, 2h and 6h windows are
/// exact to one slot) and `LONG` 1-hour slots (default 721: the 1d, 3d and 7d windows and
/// the rolling compliance period of `LONG - 1` hours, 30 days by default). `SHORT` must be
/// at least 361 and `LONG` at least 169 (7 days), checked at compile time, so that every
/// [`SloWindow`] is exact to one slot. Every event goes into both rings. Counts, never
/// ratios, are stored: ratios are computed when read, so bursty traffic is not averaged
/// into bias. Time enters with each call (`now_ms`, see [`crate::time`]); the windows'
/// rules for gaps, jumps and a clock that goes backwards apply to each ring separately
/// (see [`Window`]).
///
/// Use it for the handful of objectives a service is judged by (availability of an API,
/// latency of a checkout). It is not a general windowed counter: use a
/// [`RateWindow`](crate::RateWindow) for request rates.
///
/// ```
/// use plimsoll_core::{GoodEvent, Slo, SloWindow};
/// static CHECKOUT: Slo = Slo::new("checkout", 0.999, GoodEvent::LatencyAtMost(0.3));
///
/// let now_ms = 7_200_000;
/// CHECKOUT.record_latency(now_ms, 0.120); // good: at most 300 ms
/// CHECKOUT.record_latency(now_ms, 0.450); // bad
/// CHECKOUT.record(now_ms, false); // a failed request is bad whatever its latency
/// assert_eq!(CHECKOUT.events(now_ms, SloWindow::H1).total, 3);
/// // 2 bad of 3 against a 0.1 % error budget: a burn rate of about 667.
/// assert!(CHECKOUT.burn_rate(now_ms, SloWindow::M5).unwrap() > 666.0);
/// // Not judged yet: the process has observed 0 s of each window.
/// assert!(!CHECKOUT.alerts(now_ms).page);
/// ```
///
/// # What is computed
///
/// For a window `w` read at `now_ms` (a [`SloWindow`]), with `good` and `total` events in
/// it and `objective` the target fraction of good events:
///
/// - **burn rate** = `(bad / total) / (1 - objective)`, `None` when the window holds no
///   event. A burn rate of 1 spends exactly the whole budget over the period.
/// - **covered time**: how much of the window the process has actually observed since its
///   first event ([`Window::covered_ms`]). After a start without restored state, a "1h"
///   burn rate computed from 2 minutes of data is not a 1h burn rate, so a window is judged
///   by the alerts only once its covered time reaches its nominal length.
/// - **error budget** over the period: `allowed = (1 - objective) * total`, `consumed =
///   bad`, `remaining_ratio = 1 - consumed / allowed` (1 when the period holds no event,
///   negative once overspent), and the time until it is spent at the 1-day burn rate,
///   `remaining_ratio * period / burn_rate_1d`: zero once spent, `+∞` at a zero burn rate,
///   `None` when the last day holds no event (its burn rate is unknown).
/// - **availability** = `good / total` over any window, `None` without events.
/// - **alerts** ([`Alerts`]): a pair of windows fires when both are fully covered, the long
///   one holds at least `min_events` events, and both burn rates exceed the pair's
///   threshold ([`BurnThresholds`], the SRE Workbook's defaults for a 30-day objective:
///   page on 1h and 5m above 14.4 or 6h and 30m above 6, ticket on 1d and 2h above 3 or 3d
///   and 6h above 1). `page` is either page pair, `ticket` either ticket pair.
///
/// # Windows are exact to one slot
///
/// As in every [`Window`], a window of `W` read at `now_ms` holds the `W / slot` whole slots
/// before the current one plus the current, partial slot. So the "1h" window holds between
/// 60 and 61 minutes of events, the "30d" period between 720 and 721 hours. Alerts react to
/// the slot boundaries; the scenario tests compute the exact instants from these rules. At
/// 10 events/s against 99.9 %:
///
/// - a total outage starting 20 s into a minute pages after 52.0 s (an exactly sliding
///   hour would take 51.8 s, the Workbook's 0.0144 h);
/// - after a 10-minute total outage that ends 20 s into a minute, the 1h/5m pair clears
///   5 min 40 s after the end, when the 5m window no longer holds the outage's last slot.
///   The 6h/30m pair, also a page, fired too (6,000 bad events are 2.8 % of 6 hours) and
///   clears 30 min 40 s after the end, so `page` stays on until then, as the Workbook's
///   table implies.
///
/// # Choices a demanding SRE should know about
///
/// - **Low-traffic guard, default [`DEFAULT_MIN_EVENTS`] = 100.** A pair may fire only if its
///   long window holds at least 100 events. For a 99.9 % objective the fast page pair needs
///   an error ratio above 14.4 × 0.1 % = 1.44 %: with fewer than 70 events one failure is
///   enough, so a service idling at a few requests an hour would page on every single error.
///   At 100 events one failure is 1 %, below the threshold, and the ratio is known to 1 %.
///   Lower it for objectives of 99 % or looser, raise it for 99.99 % (where one failure in
///   694 events already crosses 14.4); 0 turns the guard off.
/// - **Both rings count every event** so that each window is read from one ring with one
///   rule; the all-time totals behind `plimsoll_slo_events_total` are the long ring's live
///   slots plus every long-ring slot folded away when it was recycled (inside the slot
///   reset's critical section). [`Slo::cumulative`] reads them inside a critical section, so
///   a concurrent recycle can never make them go backwards; it walks the long ring (721
///   loads) with the section held, which is why it is a scrape-time read only.
/// - **Per-slot bound.** A slot counts at most [`GoodTotal::CAPACITY`] = 2^32 − 2^16 events
///   (good and total share one `AtomicU64`, so recording is one `fetch_add`). For the 1-hour
///   slots that is 1.19 million events per second sustained for a whole hour. An event past
///   it is taken back (`fetch_sub`, from both rings: an event is in both or in neither) and
///   counted in [`Slo::dropped_events`]
///   (`plimsoll_slo_events_rejected_total{reason="slot_full"}`), never lost silently. The
///   2^16 headroom below `u32::MAX` is what makes this safe with concurrent recorders: up to
///   65,536 of them may overshoot the limit at the same instant without the total field
///   ever wrapping into the good field.
/// - **Latency SLOs** ([`GoodEvent::LatencyAtMost`]): an event is good when its latency is
///   at most the threshold (inclusive, as "99 % under 300 ms" is usually meant). NaN,
///   negative and infinite latencies are not recorded and are counted in
///   [`Slo::invalid_events`]; so is [`Slo::record_latency`] on a [`GoodEvent::Success`]
///   SLO, which has no threshold to compare with. [`Slo::record`] works for both kinds, so a
///   failed request can be counted bad whatever its latency.
/// - **Validation** happens when an SLO joins an [`SloExport`] ([`Slo::validate`]): an
///   objective not strictly between 0 and 1 (100 % would make every error an infinite
///   burn), thresholds that are not finite and positive, or a name that is not a usable
///   label value are a typed [`SloError`]. The exposition thus never holds a NaN or an
///   infinite burn rate. The reads of an SLO that fails validation are meaningless.
///
/// # Cost
///
/// Recording is two window slot look-ups (a few loads) and two relaxed `fetch_add`s, and
/// takes a short critical section when it opens a new minute or hour slot. The default
/// `Slo` is 17,472 bytes on a 64-bit target ([`Slo::FOOTPRINT`]): 5,800 for the minute
/// ring, 11,560 for the hour ring, the rest configuration and counters.
pub struct Slo<const SHORT: usize = 361, const LONG: usize = 721> {
    name: &'static str,
    objective: f64,
    good: GoodEvent,
    thresholds: BurnThresholds,
    min_events: u64,
    short: Window<GoodTotal, SHORT, MINUTE_MS>,
    long: Window<GoodTotal, LONG, HOUR_MS>,
    /// Counts of the hour-ring slots recycled so far; written only inside the critical
    /// section of a slot reset.
    folded_good: AtomicU64,
    folded_total: AtomicU64,
    dropped: AtomicU64,
    invalid: AtomicU64,
}

impl<const SHORT: usize, const LONG: usize> fmt::Debug for Slo<SHORT, LONG> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slo")
            .field("name", &self.name)
            .field("objective", &self.objective)
            .field("good", &self.good)
            .field("thresholds", &self.thresholds)
            .field("min_events", &self.min_events)
            .field("dropped", &self.dropped_events())
            .field("invalid", &self.invalid_events())
            .finish_non_exhaustive()
    }
}

impl<const SHORT: usize, const LONG: usize> Slo<SHORT, LONG> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();
    /// The compliance period in ms: `LONG - 1` hours.
    pub const PERIOD_MS: u64 = (LONG as u64 - 1) * HOUR_MS;

    /// An SLO named `name` (the `slo` label value), with the target fraction of good events
    /// `objective` (for example `0.999`), the Workbook's thresholds and a low-traffic guard
    /// of [`DEFAULT_MIN_EVENTS`]. Checked by [`validate`](Self::validate) when exported.
    pub const fn new(name: &'static str, objective: f64, good: GoodEvent) -> Self {
        const {
            assert!(SHORT >= 361, "SHORT must hold 6 hours of 1-minute slots plus the current one");
            assert!(LONG >= 169, "LONG must hold 7 days of 1-hour slots plus the current one");
        }
        Self {
            name,
            objective,
            good,
            thresholds: BurnThresholds::WORKBOOK,
            min_events: DEFAULT_MIN_EVENTS,
            short: Window::new(),
            long: Window::new(),
            folded_good: AtomicU64::new(0),
            folded_total: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
        }
    }

    /// Sets the burn-rate thresholds.
    pub const fn thresholds(mut self, thresholds: BurnThresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Sets the low-traffic guard: a pair alerts only if its long window holds at least
    /// `min_events` events (0: no guard).
    pub const fn min_events(mut self, min_events: u64) -> Self {
        self.min_events = min_events;
        self
    }

    /// The name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The objective.
    pub const fn objective(&self) -> f64 {
        self.objective
    }

    /// What makes an event good.
    pub const fn good_event(&self) -> GoodEvent {
        self.good
    }

    /// The burn-rate thresholds.
    pub const fn burn_thresholds(&self) -> BurnThresholds {
        self.thresholds
    }

    /// The low-traffic guard.
    pub const fn min_events_to_alert(&self) -> u64 {
        self.min_events
    }

    /// Checks the configuration; [`SloExport::add`] calls it.
    pub fn validate(&self) -> Result<(), SloError> {
        if !is_valid_name(self.name) {
            return Err(SloError::InvalidName(self.name));
        }
        if !(self.objective > 0.0 && self.objective < 1.0) {
            return Err(SloError::InvalidObjective(self.name));
        }
        if let GoodEvent::LatencyAtMost(seconds) = self.good {
            if !is_finite_positive(seconds) {
                return Err(SloError::InvalidLatencyThreshold(self.name));
            }
        }
        if !BurnPair::ALL.iter().all(|&p| is_finite_positive(self.thresholds.get(p))) {
            return Err(SloError::InvalidThreshold(self.name));
        }
        Ok(())
    }

    // -- recording ------------------------------------------------------------------------

    /// Counts one event at `now_ms`, good or bad, into both rings; or, if a slot is full,
    /// into neither, counting it in [`dropped_events`](Self::dropped_events).
    #[inline]
    pub fn record(&self, now_ms: u64, good: bool) {
        let long = self.long.slot_at(now_ms, |_, old| self.fold(old));
        if long.record(good) {
            if self.short.slot_at(now_ms, |_, _| {}).record(good) {
                return;
            }
            long.unrecord(good);
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Counts one event of `seconds` latency at `now_ms`: good if at most the SLO's
    /// threshold. NaN, negative and infinite latencies, and any latency on a
    /// [`GoodEvent::Success`] SLO, are not recorded but counted in
    /// [`invalid_events`](Self::invalid_events).
    #[inline]
    pub fn record_latency(&self, now_ms: u64, seconds: f64) {
        match self.good {
            GoodEvent::LatencyAtMost(limit) if (0.0..f64::INFINITY).contains(&seconds) => {
                self.record(now_ms, seconds <= limit);
            }
            _ => {
                self.invalid.fetch_add(1, Relaxed);
            }
        }
    }

    /// Inside the reset's critical section: keeps a recycled hour slot's counts.
    fn fold(&self, old: &GoodTotal) {
        let events = old.get();
        self.folded_good.fetch_add(events.good, Relaxed);
        self.folded_total.fetch_add(events.total, Relaxed);
    }

    /// Events not counted because a slot was full ([`GoodTotal::CAPACITY`]).
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Latencies not recorded: NaN, negative, infinite, or on a success SLO.
    pub fn invalid_events(&self) -> u64 {
        self.invalid.load(Relaxed)
    }

    /// Events counted into a newer slot than their time (the clock went backwards, or
    /// another recorder had already moved on), in the minute and the hour ring.
    pub fn late_events(&self) -> (u64, u64) {
        (self.short.late_events(), self.long.late_events())
    }

    // -- reading --------------------------------------------------------------------------

    /// The nominal length of `window` in ms.
    pub const fn window_ms(window: SloWindow) -> u64 {
        match window {
            SloWindow::M5 => 5 * MINUTE_MS,
            SloWindow::M30 => 30 * MINUTE_MS,
            SloWindow::H1 => HOUR_MS,
            SloWindow::H2 => 2 * HOUR_MS,
            SloWindow::H6 => 6 * HOUR_MS,
            SloWindow::D1 => 24 * HOUR_MS,
            SloWindow::D3 => 72 * HOUR_MS,
            SloWindow::D7 => 168 * HOUR_MS,
            SloWindow::Period => Self::PERIOD_MS,
        }
    }

    /// All-time good and total events, monotonic for the life of the process: the hour
    /// ring's live slots plus every slot it recycled. Read inside a critical section.
    pub fn cumulative(&self) -> Events {
        critical_section::with(|_| {
            let mut events = Events { good: self.folded_good.load(Relaxed), total: self.folded_total.load(Relaxed) };
            self.long.for_each_slot(|_, slot| events.add(slot.get()));
            events
        })
    }

    /// Good and total events of every window at `now_ms`, one pass over each ring.
    fn window_events(&self, now_ms: u64) -> [Events; 9] {
        let mut out = [Events::default(); 9];
        let end = self.short.end_epoch(now_ms);
        self.short.for_each_slot(|epoch, slot| {
            Self::sum_into(&mut out, end, epoch, MINUTE_MS, SHORT, slot.get(), SloWindow::is_short);
        });
        let end = self.long.end_epoch(now_ms);
        self.long.for_each_slot(|epoch, slot| {
            Self::sum_into(&mut out, end, epoch, HOUR_MS, LONG, slot.get(), |w| !w.is_short());
        });
        out
    }

    /// Adds a slot's counts to each window of its ring that holds its epoch (the window
    /// rule: `end - whole slots ..= end`).
    fn sum_into(
        out: &mut [Events; 9],
        end: u64,
        epoch: u64,
        slot_ms: u64,
        slots: usize,
        events: Events,
        in_ring: fn(SloWindow) -> bool,
    ) {
        // A slot newer than `end` was opened by a concurrent recorder after `end` was read.
        let Some(age) = end.checked_sub(epoch) else { return };
        for window in SloWindow::ALL.into_iter().filter(|&w| in_ring(w)) {
            let whole = (Self::window_ms(window) / slot_ms).min(slots as u64 - 1);
            if age <= whole {
                out[window.index()].add(events);
            }
        }
    }

    fn covered(&self, now_ms: u64, window: SloWindow) -> u64 {
        let span = Self::window_ms(window);
        if window.is_short() { self.short.covered_ms(now_ms, span) } else { self.long.covered_ms(now_ms, span) }
    }

    fn burn(&self, events: Events) -> Option<f64> {
        (events.total > 0).then(|| events.bad() as f64 / events.total as f64 / (1.0 - self.objective))
    }

    /// Every figure at `now_ms`.
    pub fn report(&self, now_ms: u64) -> SloReport {
        let events = self.window_events(now_ms);
        let covered_ms = SloWindow::ALL.map(|w| self.covered(now_ms, w));
        let burn_rates = events.map(|e| self.burn(e));
        let covered = SloWindow::ALL.map(|w| covered_ms[w.index()] >= Self::window_ms(w));
        let pairs = BurnPair::ALL.map(|pair| {
            let (long, short) = pair.windows();
            let threshold = self.thresholds.get(pair);
            let above = |w: SloWindow| burn_rates[w.index()].is_some_and(|b| b > threshold);
            covered[long.index()]
                && covered[short.index()]
                && events[long.index()].total >= self.min_events
                && above(long)
                && above(short)
        });
        let budget = self.budget(events[SloWindow::Period.index()], burn_rates[SloWindow::D1.index()]);
        SloReport { events, covered_ms, covered, burn_rates, pairs, budget }
    }

    fn budget(&self, period: Events, burn_1d: Option<f64>) -> ErrorBudget {
        let allowed = (1.0 - self.objective) * period.total as f64;
        let consumed = period.bad();
        let remaining_ratio = if period.total == 0 { 1.0 } else { 1.0 - consumed as f64 / allowed };
        let period_s = (Self::PERIOD_MS / 1_000) as f64;
        let exhaustion_seconds = burn_1d.map(|burn| {
            if remaining_ratio <= 0.0 {
                0.0
            } else if burn == 0.0 {
                f64::INFINITY
            } else {
                remaining_ratio * period_s / burn
            }
        });
        ErrorBudget { allowed, consumed, remaining_ratio, exhaustion_seconds }
    }

    /// Good and total events in `window` at `now_ms`.
    pub fn events(&self, now_ms: u64, window: SloWindow) -> Events {
        let span = Self::window_ms(window);
        if window.is_short() { self.short.events(now_ms, span) } else { self.long.events(now_ms, span) }
    }

    /// The burn rate over `window` at `now_ms`: `(bad / total) / (1 - objective)`, `None`
    /// if the window holds no events.
    pub fn burn_rate(&self, now_ms: u64, window: SloWindow) -> Option<f64> {
        self.burn(self.events(now_ms, window))
    }

    /// How much of `window` at `now_ms` has been observed, in ms (the coverage guard).
    pub fn covered_ms(&self, now_ms: u64, window: SloWindow) -> u64 {
        self.covered(now_ms, window)
    }

    /// `good / total` over `window` at `now_ms`, `None` without events.
    pub fn availability(&self, now_ms: u64, window: SloWindow) -> Option<f64> {
        let events = self.events(now_ms, window);
        (events.total > 0).then(|| events.good as f64 / events.total as f64)
    }

    /// The error budget over the period at `now_ms`.
    pub fn error_budget(&self, now_ms: u64) -> ErrorBudget {
        let period = self.events(now_ms, SloWindow::Period);
        self.budget(period, self.burn_rate(now_ms, SloWindow::D1))
    }

    /// The alert states at `now_ms`.
    pub fn alerts(&self, now_ms: u64) -> Alerts {
        self.report(now_ms).alerts()
    }
}

#[cfg(feature = "postcard")]
impl<const SHORT: usize, const LONG: usize> Sealed for Slo<SHORT, LONG> {}

/// An SLO's snapshot: its folded, dropped and invalid counts, then both rings. The
/// fingerprint covers the name, what a good event is and the ring sizes, not the
/// objective or thresholds (see [`crate::snapshot`]).
#[cfg(feature = "postcard")]
impl<const SHORT: usize, const LONG: usize> crate::snapshot::SnapshotPart for Slo<SHORT, LONG> {
    fn describe(&self, hasher: &mut rustc_hash::FxHasher) {
        use core::hash::Hasher;
        hasher.write(b"slo");
        hasher.write(self.name.as_bytes());
        match self.good {
            GoodEvent::Success => hasher.write_u8(0),
            GoodEvent::LatencyAtMost(limit) => {
                hasher.write_u8(1);
                hasher.write_u64(limit.to_bits());
            }
        }
        self.short.describe(hasher);
        self.long.describe(hasher);
    }

    fn save(&self, out: &mut dyn FnMut(u64)) {
        // The folded counts change only together with a long-ring slot, inside the
        // critical section of its reset; holding it keeps them consistent with the ring.
        critical_section::with(|_| {
            for counter in [&self.folded_good, &self.folded_total, &self.dropped, &self.invalid] {
                out(counter.load(Relaxed));
            }
            self.short.save(out);
            self.long.save(out);
        });
    }

    fn load(&self, words: &mut crate::snapshot::Words<'_>, apply: bool) -> Result<(), crate::snapshot::SnapshotError> {
        let counts = [words.next()?, words.next()?, words.next()?, words.next()?];
        if counts[0] > counts[1] {
            return Err(crate::snapshot::SnapshotError::Corrupt);
        }
        if apply {
            for (counter, value) in
                [&self.folded_good, &self.folded_total, &self.dropped, &self.invalid].into_iter().zip(counts)
            {
                counter.store(value, Relaxed);
            }
        }
        self.short.load(words, apply)?;
        self.long.load(words, apply)
    }
}
