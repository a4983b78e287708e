//! Exporting memory verdicts through a [`Registry`]: see [`MemoryExport`].

use super::{Assessment, MemoryError, MemoryHistory, Summary, Verdict};
use crate::family::{Exposable, SkipNan};
use crate::{Family, Gauge, GaugeF64, RegisterError, Registry};
use core::cell::RefCell;
use critical_section::Mutex;

/// The most signals one [`MemoryExport`] holds.
pub const MAX_MEMORY_SIGNALS: usize = 8;
/// The longest signal name, in bytes (the exported families' label value capacity).
pub const MAX_SIGNAL_NAME_LEN: usize = 32;

/// Families an export registers.
const FAMILIES: usize = 7;
/// The `stat` label values of `plimsoll_memory_bytes`.
const STATS: [&str; 4] = ["last", "floor", "min", "max"];

/// What the export reads from a history of any ring sizes.
trait Source: Sync {
    fn name(&self) -> &'static str;
    fn assess(&self, now_ms: u64, limit_bytes: Option<u64>) -> Assessment;
    fn summary(&self, now_ms: u64) -> Option<Summary>;
    fn footprint(&self) -> usize;
}

impl<const FINE: usize, const FINE_MS: u64, const COARSE: usize, const COARSE_MS: u64> Source
    for MemoryHistory<FINE, FINE_MS, COARSE, COARSE_MS>
{
    fn name(&self) -> &'static str {
        MemoryHistory::name(self)
    }
    fn assess(&self, now_ms: u64, limit_bytes: Option<u64>) -> Assessment {
        MemoryHistory::assess(self, now_ms, limit_bytes)
    }
    fn summary(&self, now_ms: u64) -> Option<Summary> {
        MemoryHistory::summary(self, now_ms)
    }
    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }
}

type PerSignal<M> = Family<M, 1, MAX_MEMORY_SIGNALS, MAX_SIGNAL_NAME_LEN>;
type PerSignalAnd<M, const N: usize> = Family<M, 2, N, MAX_SIGNAL_NAME_LEN>;

/// Up to `K` memory signals (at most [`MAX_MEMORY_SIGNALS`]) exported through a
/// [`Registry`]: a fixed set of ordinary families that [`update`](Self::update) fills from
/// the histories before each scrape.
///
/// The core never reads a clock, so the figures are computed when the exporter calls
/// `update(now_ms, limit_bytes)`, not when the registry renders. The limit (from
/// configuration, or the cgroup's `memory.max` in the std adapter) applies to every
/// signal: a component's forecast is the time until it alone would fill the limit. Series
/// that are undefined are left out rather than exported as `NaN`: the growth and p-value
/// before a verdict ([`Verdict::NotEnoughData`]), the forecast without a limit or a
/// verdict, the byte figures before the first sample, the limit when there is none. A
/// stable signal's forecast is `+Inf`.
///
/// | family | labels |
/// |---|---|
/// | `plimsoll_memory_bytes` | `signal`, `stat` = `last` \| `floor` \| `min` \| `max` |
/// | `plimsoll_memory_verdict` | `signal`, `verdict` = `not_enough_data` \| `stable` \| `growing` \| `leak_suspected` |
/// | `plimsoll_memory_leak_suspected` | `signal` |
/// | `plimsoll_memory_growth_bytes_per_second` | `signal` |
/// | `plimsoll_memory_limit_eta_seconds` | `signal` |
/// | `plimsoll_memory_trend_p_value` | `signal` |
/// | `plimsoll_memory_limit_bytes` | none |
///
/// # Footprint
///
/// The families are sized for [`MAX_MEMORY_SIGNALS`] = 8 signals with names of at most
/// [`MAX_SIGNAL_NAME_LEN`] = 32 bytes whatever `K` (a const generic expression of `K`
/// cannot size them on stable Rust), and `K` is asserted to fit: a `MemoryExport<K>` is
/// 8,200 bytes plus 16 per signal on a 64-bit target ([`MemoryExport::FOOTPRINT`]), the
/// histories not included.
///
/// ```
/// use plimsoll_core::{Format, MemoryExport, MemoryHistory, Registry};
/// static RSS: MemoryHistory = MemoryHistory::new("rss");
/// static HEAP: MemoryHistory = MemoryHistory::new("heap");
/// static MEMORY: MemoryExport<2> = MemoryExport::new();
/// static REGISTRY: Registry<16> = Registry::new();
///
/// MEMORY.add(&RSS).unwrap();
/// MEMORY.add(&HEAP).unwrap();
/// MEMORY.register(&REGISTRY).unwrap();
/// RSS.record(1_000, 150 << 20); // from the sampler
/// HEAP.record(1_000, 90 << 20);
/// MEMORY.update(2_000, Some(512 << 20)); // before each scrape
/// let mut buf = [0u8; 512];
/// let mut renderer = REGISTRY.renderer(Format::Prometheus);
/// while !renderer.is_done() {
///     let n = renderer.render(&mut buf).unwrap();
/// #   assert!(n > 0);
/// }
/// ```
pub struct MemoryExport<const K: usize> {
    signals: Mutex<RefCell<heapless::Vec<&'static dyn Source, K>>>,
    bytes: SkipNan<PerSignalAnd<GaugeF64, { STATS.len() * MAX_MEMORY_SIGNALS }>>,
    verdict: PerSignalAnd<Gauge, { Verdict::ALL.len() * MAX_MEMORY_SIGNALS }>,
    leak_suspected: PerSignal<Gauge>,
    growth: SkipNan<PerSignal<GaugeF64>>,
    eta: SkipNan<PerSignal<GaugeF64>>,
    p_value: SkipNan<PerSignal<GaugeF64>>,
    limit: SkipNan<Family<GaugeF64, 0, 1>>,
}

impl<const K: usize> core::fmt::Debug for MemoryExport<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryExport").field("signals", &self.len()).field("capacity", &K).finish_non_exhaustive()
    }
}

impl<const K: usize> Default for MemoryExport<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> MemoryExport<K> {
    /// Size in bytes (the families included, the histories not).
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty export set.
    pub const fn new() -> Self {
        const { assert!(K > 0 && K <= MAX_MEMORY_SIGNALS, "a MemoryExport holds 1 to MAX_MEMORY_SIGNALS signals") };
        Self {
            signals: Mutex::new(RefCell::new(heapless::Vec::new())),
            bytes: SkipNan(
                Family::new(
                    "plimsoll_memory_bytes",
                    "Memory of each signal: the last sample, the floor (the newest closed fine bucket's minimum, \
                     memory after collection), and the smallest and largest sample over the fine ring \
                     (2 hours by default).",
                    ["signal", "stat"],
                )
                .unit("bytes"),
            ),
            verdict: Family::new(
                "plimsoll_memory_verdict",
                "Leak verdict of each signal, 1 on the current one: not_enough_data, stable (including a plateau), \
                 growing (significant but slower than a leak or within the noise) or leak_suspected.",
                ["signal", "verdict"],
            ),
            leak_suspected: Family::new(
                "plimsoll_memory_leak_suspected",
                "1 while the lower envelope of the signal grows significantly (Mann-Kendall p < 0.01 by default), \
                 at least at the leak threshold and still lately; 0 otherwise.",
                ["signal"],
            ),
            growth: SkipNan(
                Family::new(
                    "plimsoll_memory_growth_bytes_per_second",
                    "Theil-Sen slope of the signal's lower envelope, over the ring the verdict comes from \
                     (after its change point, if any); absent before a verdict.",
                    ["signal"],
                )
                .unit("bytes_per_second"),
            ),
            eta: SkipNan(
                Family::new(
                    "plimsoll_memory_limit_eta_seconds",
                    "Forecast time until the signal's floor reaches the memory limit at its Theil-Sen slope; \
                     +Inf when not growing, 0 at or over the limit, absent without a limit or a verdict.",
                    ["signal"],
                )
                .unit("seconds"),
            ),
            p_value: SkipNan(Family::new(
                "plimsoll_memory_trend_p_value",
                "Two-sided Mann-Kendall p-value of a monotonic trend in the signal's lower envelope \
                 (after its change point, if any); absent before a verdict.",
                ["signal"],
            )),
            limit: SkipNan(
                Family::new(
                    "plimsoll_memory_limit_bytes",
                    "The memory limit the forecasts are made against; absent when there is none.",
                    [],
                )
                .unit("bytes"),
            ),
        }
    }

    /// Adds `history` after checking it ([`MemoryHistory::validate`]) and that no signal of
    /// the same name is in the set.
    pub fn add<const FINE: usize, const FINE_MS: u64, const COARSE: usize, const COARSE_MS: u64>(
        &self,
        history: &'static MemoryHistory<FINE, FINE_MS, COARSE, COARSE_MS>,
    ) -> Result<(), MemoryError> {
        history.validate()?;
        let name = history.name();
        critical_section::with(|cs| {
            let mut signals = self.signals.borrow_ref_mut(cs);
            if signals.iter().any(|s| s.name() == name) {
                return Err(MemoryError::DuplicateName(name));
            }
            signals.push(history).map_err(|_| MemoryError::ExportFull(name))
        })
    }

    /// Number of signals in the set.
    pub fn len(&self) -> usize {
        critical_section::with(|cs| self.signals.borrow_ref(cs).len())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, index: usize) -> Option<&'static dyn Source> {
        critical_section::with(|cs| self.signals.borrow_ref(cs).get(index).copied())
    }

    /// Bytes used by the export and the histories in it.
    pub fn footprint(&self) -> usize {
        Self::FOOTPRINT + (0..K).map_while(|i| self.get(i)).map(|s| s.footprint()).sum::<usize>()
    }

    fn families(&'static self) -> [&'static dyn Exposable; FAMILIES] {
        [&self.bytes, &self.verdict, &self.leak_suspected, &self.growth, &self.eta, &self.p_value, &self.limit]
    }

    /// Registers the export's 7 families with `registry`. Fails without registering any if
    /// the registry has no room for all of them, or if it already holds an export's
    /// families (the first family is then a duplicate); a clash with another family's name
    /// fails at that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families = self.families();
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Assesses every signal at `now_ms` against `limit_bytes` and stores the figures into
    /// the families. Call it before each scrape; concurrent calls are safe (each series
    /// ends up with one of the calls' values).
    pub fn update(&self, now_ms: u64, limit_bytes: Option<u64>) {
        self.limit.0.with_label_values(&[]).set(limit_bytes.map_or(f64::NAN, |limit| limit as f64));
        for signal in (0..K).map_while(|i| self.get(i)) {
            self.update_one(signal, now_ms, limit_bytes);
        }
    }

    /// Calls `each(name, assessment)` for every signal in the export, assessed at `now_ms`
    /// against `limit_bytes` (for health checks and reports that need the figures rather
    /// than the series).
    pub fn for_each_assessment(
        &self,
        now_ms: u64,
        limit_bytes: Option<u64>,
        mut each: impl FnMut(&'static str, Assessment),
    ) {
        for signal in (0..K).map_while(|i| self.get(i)) {
            each(signal.name(), signal.assess(now_ms, limit_bytes));
        }
    }

    fn update_one(&self, signal: &dyn Source, now_ms: u64, limit_bytes: Option<u64>) {
        let name = signal.name();
        let summary = signal.summary(now_ms);
        let values = summary.map(|s| [s.last, s.floor, s.min, s.max]);
        for (i, stat) in STATS.into_iter().enumerate() {
            let value = values.map_or(f64::NAN, |v| v[i] as f64);
            self.bytes.0.with_label_values(&[name, stat]).set(value);
        }

        let assessment = signal.assess(now_ms, limit_bytes);
        for verdict in Verdict::ALL {
            self.verdict.with_label_values(&[name, verdict.label()]).set(i64::from(verdict == assessment.verdict));
        }
        let leak = assessment.verdict == Verdict::LeakSuspected;
        self.leak_suspected.with_label_values(&[name]).set(i64::from(leak));
        self.growth.0.with_label_values(&[name]).set(assessment.growth_bytes_per_second().unwrap_or(f64::NAN));
        self.eta.0.with_label_values(&[name]).set(assessment.eta_seconds.unwrap_or(f64::NAN));
        self.p_value.0.with_label_values(&[name]).set(assessment.p_value().unwrap_or(f64::NAN));
    }
}
