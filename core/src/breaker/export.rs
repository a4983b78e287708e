//! Exporting circuit breakers through a [`Registry`]: see [`BreakerExport`].

use super::{BreakerError, BreakerMetrics, BreakerState, CallKind, CircuitBreaker};
use crate::atomic::{AtomicU64, Ordering::Relaxed};
use crate::family::{Exposable, SkipNan};
use crate::members::{Member, Members, Refused};
use crate::{Counter, Family, Gauge, GaugeF64, RegisterError, Registry};

/// The most breakers one [`BreakerExport`] holds.
pub const MAX_BREAKERS: usize = 16;
/// The longest breaker name, in bytes (the exported families' label value capacity).
pub const MAX_BREAKER_NAME_LEN: usize = 32;

const STATES: usize = BreakerState::ALL.len();
const KINDS: usize = CallKind::ALL.len();
/// Families an export registers.
const FAMILIES: usize = 6;

/// What the export reads from a breaker of any window size.
trait Source: Member {
    fn metrics(&self, now_ms: u64) -> BreakerMetrics;
    fn calls(&self, kind: CallKind) -> u64;
    fn transitions_into(&self, state: BreakerState) -> u64;
}

impl<const W: usize> Member for CircuitBreaker<W> {
    fn name(&self) -> &'static str {
        CircuitBreaker::name(self)
    }
    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }
}

impl<const W: usize> Source for CircuitBreaker<W> {
    fn metrics(&self, now_ms: u64) -> BreakerMetrics {
        CircuitBreaker::metrics(self, now_ms)
    }
    fn calls(&self, kind: CallKind) -> u64 {
        CircuitBreaker::calls(self, kind)
    }
    fn transitions_into(&self, state: BreakerState) -> u64 {
        CircuitBreaker::transitions_into(self, state)
    }
}

type PerBreaker<M> = Family<M, 1, MAX_BREAKERS, MAX_BREAKER_NAME_LEN>;
type PerBreakerAnd<M, const N: usize> = Family<M, 2, N, MAX_BREAKER_NAME_LEN>;

/// Up to `K` circuit breakers (at most [`MAX_BREAKERS`]) exported through a [`Registry`]:
/// one set of ordinary families, shared by breakers of any window size, that
/// [`update`](Self::update) fills before each scrape.
///
/// The core never reads a clock, so the figures are computed when the exporter calls
/// `update(now_ms)`, not when the registry renders: a time-based window is moved to
/// `now_ms` first. The state family follows resilience4j-micrometer's
/// `resilience4j_circuitbreaker_state`: one series per state, 1 on the current one. Rates
/// are ratios (resilience4j's percentages divided by 100), and are left out of the
/// exposition while the window holds fewer than the minimum number of calls (resilience4j
/// reports -1). Counters count since each breaker's creation; their `kind` values are
/// disjoint, so they add up to every call reported or refused.
///
/// | family | type | labels |
/// |---|---|---|
/// | `plimsoll_circuit_breaker_state` | gauge | `name`, `state` = `closed` \| `open` \| `half_open` \| `disabled` \| `forced_open` \| `metrics_only` |
/// | `plimsoll_circuit_breaker_calls_total` | counter | `name`, `kind` = `successful` \| `failed` \| `slow_successful` \| `slow_failed` \| `not_permitted` |
/// | `plimsoll_circuit_breaker_failure_ratio` | gauge | `name` |
/// | `plimsoll_circuit_breaker_slow_call_ratio` | gauge | `name` |
/// | `plimsoll_circuit_breaker_buffered_calls` | gauge | `name` |
/// | `plimsoll_circuit_breaker_transitions_total` | counter | `name`, `to` = a state |
///
/// # Footprint
///
/// Family capacities must be plain constants (a const generic expression of `K` is not
/// allowed on stable Rust), so the families are sized for [`MAX_BREAKERS`] = 16 breakers
/// with names of at most [`MAX_BREAKER_NAME_LEN`] = 32 bytes whatever `K`, and `K` is
/// asserted to fit: a `BreakerExport<K>` is 27,312 bytes plus 104 per breaker on a 64-bit
/// target ([`BreakerExport::FOOTPRINT`]), the breakers themselves not included. Nearly all
/// of it is the 320 series of the 6 families, each holding its label values.
///
/// ```
/// use plimsoll_core::breaker::{BreakerConfig, BreakerExport, CircuitBreaker};
/// use plimsoll_core::{Format, Registry};
/// static DATABASE: CircuitBreaker = CircuitBreaker::new("database", BreakerConfig::DEFAULT);
/// static SEARCH: CircuitBreaker<30> = CircuitBreaker::new("search", BreakerConfig::DEFAULT);
/// static BREAKERS: BreakerExport<4> = BreakerExport::new();
/// static REGISTRY: Registry<8> = Registry::new();
///
/// BREAKERS.add(&DATABASE).unwrap();
/// BREAKERS.add(&SEARCH).unwrap();
/// BREAKERS.register(&REGISTRY).unwrap();
/// DATABASE.on_success(12, 1_000);
/// BREAKERS.update(2_000); // before each scrape, with the scrape's time
/// let mut buf = [0u8; 512];
/// let mut renderer = REGISTRY.renderer(Format::Prometheus);
/// while !renderer.is_done() {
///     let n = renderer.render(&mut buf).unwrap();
/// #   assert!(n > 0);
/// }
/// ```
pub struct BreakerExport<const K: usize> {
    breakers: Members<dyn Source, K>,
    /// Per breaker, the counts last exported: calls by kind, then transitions by state.
    exported: [[AtomicU64; KINDS + STATES]; K],
    state: PerBreakerAnd<Gauge, { STATES * MAX_BREAKERS }>,
    calls: PerBreakerAnd<Counter, { KINDS * MAX_BREAKERS }>,
    failure_ratio: SkipNan<PerBreaker<GaugeF64>>,
    slow_call_ratio: SkipNan<PerBreaker<GaugeF64>>,
    buffered: PerBreaker<Gauge>,
    transitions: PerBreakerAnd<Counter, { STATES * MAX_BREAKERS }>,
}

impl<const K: usize> core::fmt::Debug for BreakerExport<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BreakerExport").field("breakers", &self.len()).field("capacity", &K).finish_non_exhaustive()
    }
}

impl<const K: usize> Default for BreakerExport<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> BreakerExport<K> {
    /// Size in bytes (the families included, the breakers not).
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty export set.
    pub const fn new() -> Self {
        const { assert!(K > 0 && K <= MAX_BREAKERS, "a BreakerExport holds 1 to MAX_BREAKERS breakers") };
        Self {
            breakers: Members::new(),
            exported: [const { [const { AtomicU64::new(0) }; KINDS + STATES] }; K],
            state: Family::new(
                "plimsoll_circuit_breaker_state",
                "State of each circuit breaker, 1 on the current one: closed, open, half_open, disabled, \
                 forced_open or metrics_only.",
                ["name", "state"],
            ),
            calls: Family::new(
                "plimsoll_circuit_breaker_calls",
                "Calls of each circuit breaker since it was created, by disjoint kind: successful, failed, \
                 slow_successful, slow_failed (slower than the slow-call duration), not_permitted (refused).",
                ["name", "kind"],
            ),
            failure_ratio: SkipNan(
                Family::new(
                    "plimsoll_circuit_breaker_failure_ratio",
                    "Failed calls over the calls in each breaker's window; absent below the minimum number \
                     of calls.",
                    ["name"],
                )
                .unit("ratio"),
            ),
            slow_call_ratio: SkipNan(
                Family::new(
                    "plimsoll_circuit_breaker_slow_call_ratio",
                    "Slow calls over the calls in each breaker's window; absent below the minimum number of \
                     calls.",
                    ["name"],
                )
                .unit("ratio"),
            ),
            buffered: Family::new(
                "plimsoll_circuit_breaker_buffered_calls",
                "Calls in each breaker's window (the half-open trial's calls while half-open).",
                ["name"],
            ),
            transitions: Family::new(
                "plimsoll_circuit_breaker_transitions",
                "State transitions of each circuit breaker since it was created, by the state entered.",
                ["name", "to"],
            ),
        }
    }

    /// Adds `breaker` after checking it ([`CircuitBreaker::validate`]) and that no breaker
    /// of the same name is in the set.
    pub fn add<const W: usize>(&self, breaker: &'static CircuitBreaker<W>) -> Result<(), BreakerError> {
        breaker.validate()?;
        let name = breaker.name();
        self.breakers.push(breaker).map_err(|refused| match refused {
            Refused::Duplicate => BreakerError::DuplicateName(name),
            Refused::Full => BreakerError::ExportFull(name),
        })
    }

    /// Number of breakers in the set.
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes used by the export and the breakers in it.
    pub fn footprint(&self) -> usize {
        Self::FOOTPRINT + self.breakers.footprint()
    }

    fn families(&'static self) -> [&'static dyn Exposable; FAMILIES] {
        [&self.state, &self.calls, &self.failure_ratio, &self.slow_call_ratio, &self.buffered, &self.transitions]
    }

    /// Registers the export's 6 families with `registry`. Fails without registering any if
    /// the registry has no room for all of them, or if it already holds an export's families
    /// (the first family is then a duplicate); a clash with another family's name fails at
    /// that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families = self.families();
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Calls `each(name, metrics)` for every breaker in the export, its time-based window
    /// moved to `now_ms` first (for health checks and reports).
    pub fn for_each_breaker(&self, now_ms: u64, mut each: impl FnMut(&'static str, BreakerMetrics)) {
        for breaker in self.breakers.iter() {
            each(breaker.name(), breaker.metrics(now_ms));
        }
    }

    /// Reads every breaker at `now_ms` and stores its figures into the families. Call it
    /// before each scrape; concurrent calls are safe (counters never go back).
    pub fn update(&self, now_ms: u64) {
        for (index, breaker) in self.breakers.iter().enumerate() {
            self.update_one(index, breaker, now_ms);
        }
    }

    fn update_one(&self, index: usize, breaker: &dyn Source, now_ms: u64) {
        let name = breaker.name();
        let metrics = breaker.metrics(now_ms);
        for state in BreakerState::ALL {
            self.state.with_label_values(&[name, state.label()]).set(i64::from(state == metrics.state));
        }
        let ratio = |percent: Option<f64>| percent.map_or(f64::NAN, |p| p / 100.0);
        self.failure_ratio.0.with_label_values(&[name]).set(ratio(metrics.failure_rate));
        self.slow_call_ratio.0.with_label_values(&[name]).set(ratio(metrics.slow_call_rate));
        self.buffered.with_label_values(&[name]).set(i64::try_from(metrics.buffered_calls).unwrap_or(i64::MAX));

        let exported = &self.exported[index];
        for kind in CallKind::ALL {
            let counter = self.calls.with_label_values(&[name, kind.label()]);
            advance(&exported[kind.as_index()], counter, breaker.calls(kind));
        }
        for state in BreakerState::ALL {
            let counter = self.transitions.with_label_values(&[name, state.label()]);
            advance(&exported[KINDS + state.as_index()], counter, breaker.transitions_into(state));
        }
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
