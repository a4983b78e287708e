//! Exporting a [`TopK`] through a [`Registry`]: see [`TopKExport`].

use super::{TopK, hex16};
use crate::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use crate::family::{Descriptor, Exposable, Fallbacks};
use crate::metric::{MetricKind, Sample};
use crate::sealed::Sealed;
use crate::{MAX_LABEL_VALUE_LEN, RegisterError, Registry};

/// The label names: the rank (`"1"` for the largest count) and the key.
const LABELS: [&str; 2] = ["rank", "key"];
/// The longest label value: a rank of up to 20 decimal digits (keys take 16).
const LABEL_VALUE_LEN: usize = 20;

/// The top entries of a [`TopK`] as one gauge family with at most `K` series, labelled
/// `rank` (`"1"` to `"K"`, by descending count) and `key` (the key as 16 lowercase
/// hexadecimal digits, the same width whatever the key); the value is the key's estimated
/// count (an over-estimate by at most `N / K`, see the [module docs](super)).
///
/// Series keyed by an arbitrary key would be unbounded; here there is one series per rank
/// in use, so the exposition never holds more than `K` series and a key that drops out of
/// the table drops out of the exposition. A key that changes rank appears as a new series
/// (the rank is part of its identity); `topk()` or a `key` match in PromQL follows a key
/// across ranks. The ranks are a snapshot taken by [`update`](Self::update), which the
/// exporter calls before each scrape; until the first update the family has no series.
///
/// ```
/// use plimsoll_core::topk::{TopK, TopKExport};
/// use plimsoll_core::{Format, Registry};
/// static LIMITED: TopK<8> = TopK::new();
/// static LIMITED_EXPORT: TopKExport<8> =
///     TopKExport::new(&LIMITED, "rate_limited_top_keys", "Most rate-limited clients.");
/// static REGISTRY: Registry<4> = Registry::new();
///
/// LIMITED_EXPORT.register(&REGISTRY).unwrap();
/// LIMITED.add(0xC0FFEE, 1);
/// LIMITED_EXPORT.update(); // before each scrape
/// let mut buf = [0u8; 1024];
/// let n = REGISTRY.renderer(Format::Prometheus).render(&mut buf).unwrap();
/// let text = core::str::from_utf8(&buf[..n]).unwrap();
/// assert!(text.contains("rate_limited_top_keys{rank=\"1\",key=\"0000000000c0ffee\"} 1"));
/// ```
pub struct TopKExport<const K: usize> {
    source: &'static TopK<K>,
    name: &'static str,
    help: &'static str,
    /// Key and count of each rank at the last update.
    ranks: [[AtomicU64; 2]; K],
    /// Ranks filled at the last update.
    len: AtomicU64,
}

impl<const K: usize> core::fmt::Debug for TopKExport<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TopKExport").field("name", &self.name).field("ranks", &self.len()).finish_non_exhaustive()
    }
}

impl<const K: usize> TopKExport<K> {
    /// Size in bytes (the source table not included).
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An export of `source` as the gauge family `name`; names are checked at
    /// registration.
    pub const fn new(source: &'static TopK<K>, name: &'static str, help: &'static str) -> Self {
        Self { source, name, help, ranks: [const { [const { AtomicU64::new(0) }; 2] }; K], len: AtomicU64::new(0) }
    }

    /// Registers the family with `registry`.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        registry.register(self)
    }

    /// Takes the snapshot of the ranks that the next scrapes render. Call it before each
    /// scrape, from one place: concurrent calls are memory-safe but may interleave their
    /// snapshots rank by rank until the next call.
    pub fn update(&self) {
        let mut len = 0;
        self.source.for_each_top(|key, count, _| {
            self.ranks[len][0].store(key, Relaxed);
            self.ranks[len][1].store(count, Relaxed);
            len += 1;
        });
        // Release pairs with the acquire load in `sample`: a renderer that sees the new
        // length sees the ranks stored before it.
        self.len.store(len as u64, Release);
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The table exported.
    pub fn source(&self) -> &'static TopK<K> {
        self.source
    }

    fn len(&self) -> usize {
        self.len.load(Acquire) as usize
    }
}

impl<const K: usize> Sealed for TopKExport<K> {}

impl<const K: usize> Exposable for TopKExport<K> {
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            name: self.name,
            help: self.help,
            unit: None,
            kind: MetricKind::Gauge,
            label_names: &LABELS,
            buckets: &[],
            native_buckets: 0,
            exemplars: false,
        }
    }

    fn slots(&self) -> usize {
        K
    }

    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        let count = self.ranks[..self.len()].get(slot)?[1].load(Relaxed);
        Some(Sample::Gauge(i64::try_from(count).unwrap_or(i64::MAX)))
    }

    fn label_value_capacity(&self) -> usize {
        LABEL_VALUE_LEN
    }

    fn label_value(&self, slot: usize, label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        let mut digits = itoa::Buffer::new();
        let key;
        let value = if label == 0 {
            digits.format(slot + 1).as_bytes()
        } else {
            key = hex16(self.ranks.get(slot).map_or(0, |rank| rank[0].load(Relaxed)));
            &key[..]
        };
        out[..value.len()].copy_from_slice(value);
        value.len()
    }

    fn fallbacks(&self) -> Fallbacks {
        Fallbacks::default()
    }

    fn footprint(&self) -> usize {
        Self::FOOTPRINT
    }

    fn series_in_use(&self) -> usize {
        self.len()
    }

    fn validate(&self) -> Result<(), RegisterError> {
        crate::family::validate(&self.descriptor())
    }
}
