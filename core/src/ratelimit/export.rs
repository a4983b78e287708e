//! Exporting rate limiters through a [`Registry`]: see [`RateLimitExport`].

use super::{RateLimitStats, RateLimiter};
use crate::family::Exposable;
use crate::view::{Rows, View};
use crate::{MetricKind, RegisterError, Registry, Sample};
use core::cell::RefCell;
use core::fmt;
use critical_section::Mutex;

/// The longest limiter name, in bytes (the exported families' label value capacity).
pub const MAX_LIMITER_NAME_LEN: usize = 64;

/// Why a limiter was refused by a [`RateLimitExport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ExportError {
    /// The name is empty or longer than [`MAX_LIMITER_NAME_LEN`] bytes.
    InvalidName(&'static str),
    /// A limiter of this name is already in the export.
    DuplicateName(&'static str),
    /// The export holds its maximum number of limiters.
    ExportFull(&'static str),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(name) => write!(f, "limiter name {name:?} is empty or too long"),
            Self::DuplicateName(name) => write!(f, "a limiter named {name:?} is already exported"),
            Self::ExportFull(name) => write!(f, "export is full; cannot add limiter {name:?}"),
        }
    }
}

impl core::error::Error for ExportError {}

/// What the export reads from a limiter of any size.
trait Source: Sync {
    fn name(&self) -> &'static str;
    fn stats(&self) -> RateLimitStats;
}

impl<const K: usize> Source for RateLimiter<K> {
    fn name(&self) -> &'static str {
        RateLimiter::name(self)
    }
    fn stats(&self) -> RateLimitStats {
        RateLimiter::stats(self)
    }
}

/// The figure a family shows of each limiter.
#[derive(Clone, Copy)]
enum Figure {
    Decisions,
    Evictions,
    Keys,
    Capacity,
}

impl Figure {
    /// Values of the second label, one series each (none: one series per limiter).
    const fn labels(self) -> &'static [&'static str] {
        match self {
            Self::Decisions => &["allowed", "limited"],
            Self::Evictions => &["expired", "in_debt"],
            Self::Keys | Self::Capacity => &[""],
        }
    }

    fn sample(self, stats: RateLimitStats, series: usize) -> Sample<'static> {
        let gauge = |value: u64| Sample::Gauge(i64::try_from(value).unwrap_or(i64::MAX));
        match (self, series) {
            (Self::Decisions, 0) => Sample::Counter(stats.allowed),
            (Self::Decisions, _) => Sample::Counter(stats.limited),
            (Self::Evictions, 0) => Sample::Counter(stats.evicted_expired),
            (Self::Evictions, _) => Sample::Counter(stats.evicted_in_debt),
            (Self::Keys, _) => gauge(stats.keys),
            (Self::Capacity, _) => gauge(stats.capacity),
        }
    }
}

type List<const N: usize> = Mutex<RefCell<heapless::Vec<&'static dyn Source, N>>>;

/// One family's series: a figure of each limiter in the export.
struct Limiters<const N: usize> {
    figure: Figure,
    list: List<N>,
}

impl<const N: usize> Limiters<N> {
    const fn new(figure: Figure) -> Self {
        Self { figure, list: Mutex::new(RefCell::new(heapless::Vec::new())) }
    }

    /// The limiter and series of `slot`.
    fn at(&self, slot: usize) -> Option<(&'static dyn Source, usize)> {
        let per = self.figure.labels().len();
        let limiter = critical_section::with(|cs| self.list.borrow_ref(cs).get(slot / per).copied())?;
        Some((limiter, slot % per))
    }
}

impl<const N: usize> Rows for Limiters<N> {
    fn slots(&self) -> usize {
        N * self.figure.labels().len()
    }

    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        self.at(slot).map(|(limiter, series)| self.figure.sample(limiter.stats(), series))
    }

    fn label_value(&self, slot: usize, label: usize) -> &str {
        match (self.at(slot), label) {
            (Some((limiter, _)), 0) => limiter.name(),
            (Some((_, series)), _) => self.figure.labels()[series],
            (None, _) => "",
        }
    }

    fn label_value_capacity(&self) -> usize {
        MAX_LIMITER_NAME_LEN
    }
}

/// Up to `N` rate limiters exported through a [`Registry`], as four families whose series
/// read each limiter's own counters at scrape time (no `update` call, and the limiter's
/// hot path touches no family):
///
/// | family | type | labels |
/// |---|---|---|
/// | `plimsoll_ratelimit_decisions_total` | counter | `limiter`, `decision` = `allowed` \| `limited` |
/// | `plimsoll_ratelimit_evictions_total` | counter | `limiter`, `reason` = `expired` \| `in_debt` |
/// | `plimsoll_ratelimit_keys` | gauge | `limiter` |
/// | `plimsoll_ratelimit_keys_capacity` | gauge | `limiter` |
///
/// Limiters are gathered in one export, rather than each registering families of its own,
/// because a registry holds one family per name: the `limiter` label tells them apart.
///
/// # Footprint
///
/// Each family keeps its own list of the limiters (16 bytes per limiter of capacity):
/// a `RateLimitExport<N>` is 352 + 64 × `N` bytes on a 64-bit target (864 for the
/// default `N` = 8), the limiters not included.
///
/// ```
/// use core::num::NonZeroU32;
/// use plimsoll_core::Registry;
/// use plimsoll_core::ratelimit::{Quota, RateLimitExport, RateLimiter};
///
/// const QUOTA: Quota = Quota::per_second(NonZeroU32::new(50).unwrap());
/// static API: RateLimiter = RateLimiter::new("api", QUOTA);
/// static LIMITS: RateLimitExport = RateLimitExport::new();
/// static REGISTRY: Registry<8> = Registry::new();
///
/// LIMITS.add(&API).unwrap();
/// LIMITS.register(&REGISTRY).unwrap();
/// API.check(42, 1_000);
/// ```
pub struct RateLimitExport<const N: usize = 8> {
    decisions: View<Limiters<N>, 2>,
    evictions: View<Limiters<N>, 2>,
    keys: View<Limiters<N>, 1>,
    capacity: View<Limiters<N>, 1>,
}

impl<const N: usize> fmt::Debug for RateLimitExport<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitExport").field("limiters", &self.len()).field("capacity", &N).finish_non_exhaustive()
    }
}

impl<const N: usize> Default for RateLimitExport<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RateLimitExport<N> {
    /// Size in bytes (the limiters not included).
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty export.
    pub const fn new() -> Self {
        const { assert!(N > 0, "an export needs room for at least one limiter") };
        Self {
            decisions: View::new(
                "plimsoll_ratelimit_decisions",
                "Rate limiter checks, by decision.",
                MetricKind::Counter,
                ["limiter", "decision"],
                Limiters::new(Figure::Decisions),
            ),
            evictions: View::new(
                "plimsoll_ratelimit_evictions",
                "Keys evicted from a full rate limiter table: expired ones carried no debt, in_debt ones \
                 moved their debt into the shadow (a table too small for its active keys).",
                MetricKind::Counter,
                ["limiter", "reason"],
                Limiters::new(Figure::Evictions),
            ),
            keys: View::new(
                "plimsoll_ratelimit_keys",
                "Keys held in the rate limiter's table.",
                MetricKind::Gauge,
                ["limiter"],
                Limiters::new(Figure::Keys),
            ),
            capacity: View::new(
                "plimsoll_ratelimit_keys_capacity",
                "Keys the rate limiter's table can hold.",
                MetricKind::Gauge,
                ["limiter"],
                Limiters::new(Figure::Capacity),
            ),
        }
    }

    fn lists(&self) -> [&List<N>; 4] {
        [&self.decisions.rows.list, &self.evictions.rows.list, &self.keys.rows.list, &self.capacity.rows.list]
    }

    /// Adds `limiter`, after checking its name (1 to [`MAX_LIMITER_NAME_LEN`] bytes, not
    /// already in the export).
    pub fn add<const K: usize>(&self, limiter: &'static RateLimiter<K>) -> Result<(), ExportError> {
        let name = limiter.name();
        if name.is_empty() || name.len() > MAX_LIMITER_NAME_LEN {
            return Err(ExportError::InvalidName(name));
        }
        critical_section::with(|cs| {
            let lists = self.lists();
            let first = lists[0].borrow_ref(cs);
            if first.iter().any(|l| l.name() == name) {
                return Err(ExportError::DuplicateName(name));
            }
            if first.is_full() {
                return Err(ExportError::ExportFull(name));
            }
            drop(first);
            for list in lists {
                // Every list has the same length, checked not full above.
                let _ = list.borrow_ref_mut(cs).push(limiter);
            }
            Ok(())
        })
    }

    /// Calls `each(name, stats)` for every limiter in the export (for reports).
    pub fn for_each_limiter(&self, mut each: impl FnMut(&'static str, RateLimitStats)) {
        for index in 0..N {
            let Some((limiter, _)) = self.decisions.rows.at(index * Figure::Decisions.labels().len()) else {
                return;
            };
            each(limiter.name(), limiter.stats());
        }
    }

    /// Number of limiters in the export.
    pub fn len(&self) -> usize {
        critical_section::with(|cs| self.decisions.rows.list.borrow_ref(cs).len())
    }

    /// Whether the export holds no limiter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers the export's 4 families with `registry`. Fails without registering any if
    /// the registry has no room for all of them, or if it already holds an export's
    /// families (the first family is then a duplicate); a clash with another family's name
    /// fails at that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 4] = [&self.decisions, &self.evictions, &self.keys, &self.capacity];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }
}
