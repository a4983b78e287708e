//! A recorder for the [`metrics`] facade over fixed tables (feature `metrics`).
//!
//! With a [`MetricsRecorder`] installed, `metrics::counter!`, `gauge!` and `histogram!`
//! calls anywhere in a program, libraries included, record into Plimsoll families that
//! the recorder creates in its own fixed storage and registers into a [`Registry`] on
//! first use. Other recorders keep a map entry per distinct key and label set for the life
//! of the process, which is how the facade's dynamic keys grow their memory; this one
//! keeps at most `NAMES` names of each kind, `SERIES` label sets per name, and counts
//! whatever does not fit into an overflow series instead.
//!
//! ```
//! use plimsoll::Registry;
//! use plimsoll::bridge::metrics::MetricsRecorder;
//!
//! static REGISTRY: Registry<64> = Registry::new();
//! // At most 16 counter, 16 gauge and 16 histogram names, 32 label sets each.
//! static RECORDER: MetricsRecorder<16, 32> = MetricsRecorder::new();
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     RECORDER.register(&REGISTRY)?;
//!     metrics::set_global_recorder(&RECORDER)?;
//!
//!     metrics::describe_counter!("http_requests_total", "HTTP requests served.");
//!     metrics::counter!("http_requests_total", "method" => "GET", "status" => "200").increment(1);
//!     metrics::gauge!("queue_depth").set(3.0);
//!     metrics::histogram!("http_request_duration_seconds", "route" => "/users/:id").record(0.012);
//!     # assert_eq!(RECORDER.names_in_use(plimsoll::bridge::metrics::Kind::Counter), 1);
//!     Ok(())
//! }
//! ```
//!
//! The recorder is used through a `&'static` reference (`metrics::Recorder` is
//! implemented for `&'static MetricsRecorder`), because the families it creates borrow
//! their names from it: put it in a `static`, pass `&RECORDER` to
//! `metrics::set_global_recorder` and `&&RECORDER` to `metrics::with_local_recorder`.
//!
//! # Names, labels and help
//!
//! - A name becomes a family the first time a key with that name is registered; its label
//!   names (at most [`MAX_KEY_LABELS`]) are those of that first key, in its order. Later
//!   keys must carry the same label names, in any order.
//! - Names and label names are made valid Prometheus names as metrics-exporter-prometheus
//!   makes them, so they stay the same when moving from it: each character outside
//!   `[a-zA-Z0-9_:]` (`[a-zA-Z0-9_]` for labels) becomes `_`, as does a leading digit, so
//!   `http.requests` is `http_requests` (two names that differ only there share one
//!   family). Counters are exposed with the `_total` suffix Prometheus expects, whether
//!   the name has it or not: `counter!("requests_total")` and `counter!("requests")` are
//!   both `requests_total`.
//! - `describe_*!` sets a name's help text (cut to [`MAX_HELP_BYTES`] at a character
//!   boundary) if it comes before the name's first registration, as the facade advises;
//!   afterwards the family exists and its help is fixed ([`DEFAULT_HELP`] if none came).
//!   Units are not exported: the facade's units are not part of its names.
//! - Histograms are `H` (default [`LatencyHistogram`]: 0.95 µs to 128 s, 2.17 % relative
//!   error) with [`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS) as classic buckets, so they
//!   suit values in seconds; values above the range count in the `+Inf` bucket and the
//!   sum.
//!
//! # What is bounded, and where the rest goes
//!
//! Every record has a place; what has no series of its own goes to an overflow series and
//! is counted, per record, so a dashboard shows both the lost detail and how much of it
//! there was:
//!
//! | record | goes to | counted in |
//! |---|---|---|
//! | a label set beyond a name's `SERIES` | the family's `__overflow__` series | `plimsoll_series_overflow_total{family}` |
//! | a label value over 64 bytes | the family's `__overflow__` series | `plimsoll_label_value_rejected_total{family}` |
//! | label names other than the name's first ones | the family's `__overflow__` series (an unlabelled name's: the kind's overflow) | `plimsoll_metrics_rejected_total{kind,reason="label_names"}` |
//! | a name beyond `NAMES` of its kind | the kind's overflow | `plimsoll_metrics_rejected_total{kind,reason="names_full"}` |
//! | a name or label name over [`MAX_NAME_BYTES`] | the kind's overflow | `reason="too_long"` |
//! | a first key with more than [`MAX_KEY_LABELS`] labels (the name is then unusable) | the kind's overflow | `reason="too_many_labels"` |
//! | a name the registry refuses (invalid or reserved after the rules above, taken by another family, or the registry full) | the kind's overflow | `reason="refused"` |
//! | anything before [`register`](MetricsRecorder::register) | the kind's overflow | `reason="unregistered"` |
//!
//! where the kind's overflow is the counter `plimsoll_metrics_overflow_increments_total`,
//! the gauge `plimsoll_metrics_overflow_value` (the last value set through any such
//! handle) or the histogram `plimsoll_metrics_overflow_observations`, and the counter's
//! `kind` label is `counter`, `gauge` or `histogram`. A name's slot is taken by its
//! first registration (or `describe_*!`) whatever happens next, so a flood of distinct
//! names fills the table once and then costs nothing. The registry needs room for the
//! recorder's 4 own families ([`register`](MetricsRecorder::register) checks) and for up
//! to `3 × NAMES` more, one per name in use.
//!
//! # What it allocates, and when
//!
//! The tables are the recorder's own fixed storage: [`MetricsRecorder::FOOTPRINT`] bytes,
//! in a `static`. The facade's handles hold an `Arc`, so the recorder allocates one small
//! `Arc` (24 bytes on 64-bit targets: two counts and a pointer) the first time each series
//! is registered, and one (32 bytes) per kind and reason of rejection and per name whose
//! label names were mismatched; it keeps them for reuse, so
//! every later registration of that series clones the `Arc` (an atomic increment) and
//! allocates nothing. In all at most [`MAX_HANDLES`](MetricsRecorder::MAX_HANDLES) of
//! them, whatever the traffic. Recording through a handle (`increment`, `set`, `record`)
//! is one or two relaxed atomic operations and never allocates. A name's first
//! registration builds its family on the stack before moving it into place (a histogram
//! family is about `SERIES × 3.8 KB` with the default `H`), so keep `SERIES` of that size
//! within the stack of the threads that record.
//!
//! The facade itself allocates outside the recorder: a macro whose label values are not
//! string literals builds its key's label list in a fresh `Vec` on every call. Hold the
//! handle (`let requests = counter!(...)`) on hot paths to pay that once.
//!
//! # Cost
//!
//! A macro call registers its key each time: the name is hashed and looked up in a fixed
//! open-addressing table, the label set in the family's table (as
//! [`Family::with_label_values`]), and the series' cached `Arc` cloned. `Counter::absolute`
//! (set the counter to at least a value) takes a process-wide lock, since the core's
//! counters have no atomic maximum; it is meant for mirroring external counters, not for
//! hot paths.

use crate::{Counter, Exposable, Family, GaugeF64, Histogram, LatencyHistogram, Metric, RegisterError, Registry};
use crate::{OVERFLOW_LABEL_VALUE, Unlabelled};
use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::sync::atomic::{AtomicPtr, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The longest metric name or label name, in bytes (after the rules of the
/// [module docs](self#names-labels-and-help)).
pub const MAX_NAME_BYTES: usize = 64;
/// The most labels a name may have.
pub const MAX_KEY_LABELS: usize = 4;
/// The longest help text kept from `describe_*!`, in bytes.
pub const MAX_HELP_BYTES: usize = 256;

/// The kinds of facade metric, each with its own table of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter!`, into [`Counter`] families.
    Counter,
    /// `gauge!`, into [`GaugeF64`] families.
    Gauge,
    /// `histogram!`, into histogram families.
    Histogram,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Counter, Kind::Gauge, Kind::Histogram];

    /// The `kind` label value of `plimsoll_metrics_rejected_total`.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Why a registration got no series of its own (see the
/// [module docs](self#what-is-bounded-and-where-the-rest-goes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The recorder was not registered into a registry yet.
    Unregistered,
    /// Every name of the kind is taken.
    NamesFull,
    /// The name or a label name is longer than [`MAX_NAME_BYTES`].
    TooLong,
    /// The name's first key had more than [`MAX_KEY_LABELS`] labels.
    TooManyLabels,
    /// The registry refused the name's family.
    Refused,
    /// The label names differ from those of the name's first key.
    LabelNames,
}

impl Rejection {
    /// Every reason.
    pub const ALL: [Rejection; 6] = [
        Rejection::Unregistered,
        Rejection::NamesFull,
        Rejection::TooLong,
        Rejection::TooManyLabels,
        Rejection::Refused,
        Rejection::LabelNames,
    ];

    /// The `reason` label value of `plimsoll_metrics_rejected_total`.
    pub const fn label(self) -> &'static str {
        match self {
            Rejection::Unregistered => "unregistered",
            Rejection::NamesFull => "names_full",
            Rejection::TooLong => "too_long",
            Rejection::TooManyLabels => "too_many_labels",
            Rejection::Refused => "refused",
            Rejection::LabelNames => "label_names",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A histogram type the recorder can use for `histogram!`: any [`Histogram`].
pub trait Observe: Metric + Send + Sync + 'static {
    /// Records one value (see [`Histogram::record`]).
    fn observe(&self, value: f64);
}

impl<const S: u8, const E: i16, const B: usize> Observe for Histogram<S, E, B> {
    #[inline]
    fn observe(&self, value: f64) {
        self.record(value);
    }
}

/// The help text of a name that was not described before its first use (Prometheus'
/// linters want one on every family).
pub const DEFAULT_HELP: &str = "Recorded through the metrics facade.";

const REJECTED_NAME: &str = "plimsoll_metrics_rejected";
const REJECTED_SERIES: usize = Kind::ALL.len() * Rejection::ALL.len();
/// The recorder's own families: the rejection counts and one overflow metric per kind.
const OWN_FAMILIES: usize = 1 + Kind::ALL.len();

/// Text copied into fixed storage: a name, or a help text cut at a character boundary.
#[derive(Clone, Copy)]
struct Text<const CAP: usize> {
    len: usize,
    bytes: [u8; CAP],
}

impl<const CAP: usize> Text<CAP> {
    const EMPTY: Self = Self { len: 0, bytes: [0; CAP] };

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_str(&self) -> &str {
        // Always valid: the bytes are ASCII or a prefix of a `str` cut at a char boundary.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// `text`, cut to `CAP` bytes at a character boundary.
    fn truncated(text: &str) -> Self {
        let mut len = text.len().min(CAP);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut out = Self::EMPTY;
        out.bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        out.len = len;
        out
    }

    /// The valid name for `raw` (see [`sanitized`]), or `None` if longer than `CAP`.
    fn name(raw: &str, colon: bool) -> Option<Self> {
        let mut out = Self::EMPTY;
        for byte in sanitized(raw, colon) {
            *out.bytes.get_mut(out.len)? = byte;
            out.len += 1;
        }
        Some(out)
    }

    /// Whether `raw` names this text: the same bytes, or the same once sanitized.
    fn names(&self, raw: &str, colon: bool) -> bool {
        raw.as_bytes() == self.as_bytes() || sanitized(raw, colon).eq(self.as_bytes().iter().copied())
    }
}

/// `raw` as a Prometheus name: characters outside `[a-zA-Z0-9_]` (and `:` if `colon`)
/// become `_`, as does a leading digit (as metrics-exporter-prometheus does). Bytewise:
/// a character of several bytes is its first byte, made `_`, its other bytes skipped.
fn sanitized(raw: &str, colon: bool) -> impl Iterator<Item = u8> + '_ {
    let valid = move |b: u8| b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':');
    let continuation = |b: &u8| b & 0xC0 == 0x80;
    let first = move |i: usize, b: u8| valid(b) && !(i == 0 && b.is_ascii_digit());
    raw.bytes().filter(move |b| !continuation(b)).enumerate().map(move |(i, b)| if first(i, b) { b } else { b'_' })
}

/// A metric name and its hash.
#[derive(Clone, Copy)]
struct Name {
    hash: u64,
    text: Text<MAX_NAME_BYTES>,
}

impl Name {
    /// The family name for a key named `raw` of `kind`, or `None` if too long.
    fn of(raw: &str, kind: Kind) -> Option<Self> {
        let raw = match kind {
            Kind::Counter => raw.strip_suffix("_total").unwrap_or(raw),
            Kind::Gauge | Kind::Histogram => raw,
        };
        let text = Text::name(raw, true)?;
        Some(Self { hash: hash_words(&text), text })
    }

    fn same(&self, other: &Name) -> bool {
        self.hash == other.hash && self.text.as_bytes() == other.text.as_bytes()
    }
}

/// A hash of `text` eight bytes at a time (as `rustc-hash`'s), so a name costs a few
/// multiplications; the bytes past its end are zero, so they hash the same every time.
fn hash_words(text: &Text<MAX_NAME_BYTES>) -> u64 {
    const { assert!(MAX_NAME_BYTES % 8 == 0, "names hash in 8-byte words") };
    let words = text.bytes[..text.len.next_multiple_of(8)].chunks_exact(8);
    words.fold(text.len as u64, |hash, chunk| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95)
    })
}

/// `hash` spread over `0..n`, by its high bits.
fn spread(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// The label names of a name's first key.
struct Labels {
    names: [Text<MAX_NAME_BYTES>; MAX_KEY_LABELS],
    count: usize,
}

impl Labels {
    fn of(key: &Key) -> Result<Self, Rejection> {
        if key.labels().len() > MAX_KEY_LABELS {
            return Err(Rejection::TooManyLabels);
        }
        let mut labels = Self { names: [Text::EMPTY; MAX_KEY_LABELS], count: key.labels().len() };
        for (name, label) in labels.names.iter_mut().zip(key.labels()) {
            *name = Text::name(label.key(), false).ok_or(Rejection::TooLong)?;
        }
        Ok(labels)
    }

    fn names(&'static self) -> [&'static str; MAX_KEY_LABELS] {
        self.names.each_ref().map(Text::as_str)
    }

    /// `key`'s label values in the order of these names, or `None` if its label names
    /// differ. Names are distinct (the registry checks) and the counts equal, so finding
    /// each name once pairs every label.
    fn values<'k>(&self, key: &'k Key) -> Option<[&'k str; MAX_KEY_LABELS]> {
        if key.labels().len() != self.count {
            return None;
        }
        let mut values = [""; MAX_KEY_LABELS];
        for (i, (value, name)) in values.iter_mut().zip(&self.names[..self.count]).enumerate() {
            let same = |label: &&metrics::Label| name.names(label.key(), false);
            // Keys usually list their labels in the first key's order: look there first.
            let label = key.labels().nth(i).filter(same).or_else(|| key.labels().find(same))?;
            *value = label.value();
        }
        Some(values)
    }
}

/// A name's family, of the arity of its first key.
enum Table<M, const N: usize> {
    L0(Unlabelled<M>),
    L1(Family<M, 1, N>),
    L2(Family<M, 2, N>),
    L3(Family<M, 3, N>),
    L4(Family<M, 4, N>),
}

impl<M: Metric, const N: usize> Table<M, N> {
    fn new(name: &'static str, help: &'static str, labels: &'static Labels) -> Self {
        let [a, b, c, d] = labels.names();
        match labels.count {
            0 => Self::L0(Unlabelled::new(name, help)),
            1 => Self::L1(Family::new(name, help, [a])),
            2 => Self::L2(Family::new(name, help, [a, b])),
            3 => Self::L3(Family::new(name, help, [a, b, c])),
            _ => Self::L4(Family::new(name, help, [a, b, c, d])),
        }
    }

    fn exposable(&'static self) -> &'static dyn Exposable {
        match self {
            Self::L0(f) => f,
            Self::L1(f) => f,
            Self::L2(f) => f,
            Self::L3(f) => f,
            Self::L4(f) => f,
        }
    }

    #[inline]
    fn series(&self, v: &[&str; MAX_KEY_LABELS]) -> &M {
        match self {
            Self::L0(f) => f,
            Self::L1(f) => f.with_label_values(&[v[0]]),
            Self::L2(f) => f.with_label_values(&[v[0], v[1]]),
            Self::L3(f) => f.with_label_values(&[v[0], v[1], v[2]]),
            Self::L4(f) => f.with_label_values(&[v[0], v[1], v[2], v[3]]),
        }
    }

    /// The family's overflow series (an unlabelled family has none). Every label at
    /// `__overflow__` names it without counting a record as overflowing.
    fn overflow(&self) -> Option<&M> {
        let o = OVERFLOW_LABEL_VALUE;
        match self {
            Self::L0(_) => None,
            Self::L1(f) => Some(f.with_label_values(&[o])),
            Self::L2(f) => Some(f.with_label_values(&[o, o])),
            Self::L3(f) => Some(f.with_label_values(&[o, o, o])),
            Self::L4(f) => Some(f.with_label_values(&[o, o, o, o])),
        }
    }
}

/// The facade's handle on one core metric.
#[derive(Debug)]
struct Handle<M: 'static>(&'static M);

/// The facade's handle on an overflow metric: every record also counts its rejection.
#[derive(Debug)]
struct Rejected<M: 'static> {
    metric: &'static M,
    count: &'static Counter,
}

/// Serialises [`CounterFn::absolute`] calls: see [`raise_to`].
static ABSOLUTE: Mutex<()> = Mutex::new(());

/// Raises `counter` to at least `value`. The core's counter has no atomic maximum, so a
/// lock keeps two callers from both adding the same difference; increments made
/// meanwhile by others only add to the result, which `absolute` allows.
fn raise_to(counter: &Counter, value: u64) {
    let _guard = ABSOLUTE.lock().unwrap_or_else(PoisonError::into_inner);
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl CounterFn for Handle<Counter> {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }
    fn absolute(&self, value: u64) {
        raise_to(self.0, value);
    }
}

impl GaugeFn for Handle<GaugeF64> {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }
    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

impl<H: Observe> HistogramFn for Handle<H> {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

impl CounterFn for Rejected<Counter> {
    fn increment(&self, value: u64) {
        self.count.inc();
        self.metric.inc_by(value);
    }
    fn absolute(&self, value: u64) {
        self.count.inc();
        raise_to(self.metric, value);
    }
}

impl GaugeFn for Rejected<GaugeF64> {
    fn increment(&self, value: f64) {
        self.count.inc();
        self.metric.add(value);
    }
    fn decrement(&self, value: f64) {
        self.count.inc();
        self.metric.sub(value);
    }
    fn set(&self, value: f64) {
        self.count.inc();
        self.metric.set(value);
    }
}

impl<H: Observe> HistogramFn for Rejected<H> {
    fn record(&self, value: f64) {
        self.count.inc();
        self.metric.observe(value);
    }
}

/// What a registration resolves to.
enum Resolved<M: 'static> {
    Series(Arc<Handle<M>>),
    Rejected(Arc<Rejected<M>>),
}

/// One entry of a handle cache: a series' address and its `Arc`, made once.
struct Cached<M: 'static> {
    metric: AtomicPtr<M>,
    handle: OnceLock<Arc<Handle<M>>>,
}

impl<M> Cached<M> {
    const fn new() -> Self {
        Self { metric: AtomicPtr::new(std::ptr::null_mut()), handle: OnceLock::new() }
    }

    fn handle(&self, metric: &'static M) -> Arc<Handle<M>> {
        Arc::clone(self.handle.get_or_init(|| Arc::new(Handle(metric))))
    }
}

/// A registration's outcome for a name: its family and label names, made once.
type State<M, const N: usize> = Result<(&'static Table<M, N>, &'static Labels), Rejection>;

/// One name's storage. Each part is set once and never changes, so readers need no lock.
struct Slot<M: 'static, const N: usize> {
    name: OnceLock<Name>,
    help: OnceLock<Text<MAX_HELP_BYTES>>,
    labels: OnceLock<Labels>,
    table: OnceLock<Table<M, N>>,
    state: OnceLock<State<M, N>>,
    /// Handles by series address: a family has `N` series and an overflow series, so
    /// these `N + 1` entries never run out.
    handles: [Cached<M>; N],
    spare: Cached<M>,
    /// The handle of records whose label names differ from the first key's.
    mismatch: OnceLock<Arc<Rejected<M>>>,
}

impl<M: Metric, const N: usize> Slot<M, N> {
    const fn new() -> Self {
        Self {
            name: OnceLock::new(),
            help: OnceLock::new(),
            labels: OnceLock::new(),
            table: OnceLock::new(),
            state: OnceLock::new(),
            handles: [const { Cached::new() }; N],
            spare: Cached::new(),
            mismatch: OnceLock::new(),
        }
    }

    /// The family for `name`, created and registered by the first key (whose labels it
    /// takes), or why there is none.
    fn state(&'static self, name: &'static Name, key: &Key, registry: &dyn Attach) -> State<M, N> {
        *self.state.get_or_init(|| {
            let labels = Labels::of(key)?;
            let labels = self.labels.get_or_init(|| labels);
            // A `describe_*!` after this point finds the help set and changes nothing.
            let help = self.help.get_or_init(|| Text::truncated(DEFAULT_HELP)).as_str();
            let table = self.table.get_or_init(|| Table::new(name.text.as_str(), help, labels));
            registry.add(table.exposable()).map_err(|_| Rejection::Refused)?;
            Ok((table, labels))
        })
    }

    /// The cached handle of `metric`, a series of this slot's family.
    fn handle(&'static self, metric: &'static M) -> Arc<Handle<M>> {
        let address = std::ptr::from_ref(metric).cast_mut();
        // Series addresses differ only in their middle bits: mix them into the high bits
        // that `spread` uses (Fibonacci hashing).
        let start = spread((address.addr() as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15), N);
        let entries = self.handles[start..].iter().chain(&self.handles[..start]).chain([&self.spare]);
        for entry in entries {
            let claimed = match entry.metric.load(Acquire) {
                p if p.is_null() => {
                    match entry.metric.compare_exchange(std::ptr::null_mut(), address, AcqRel, Acquire) {
                        Ok(_) => true,
                        Err(other) => other == address,
                    }
                }
                p => p == address,
            };
            if claimed {
                return entry.handle(metric);
            }
        }
        // Unreachable: the family has at most `N + 1` distinct series. A fresh handle is
        // still correct, only not cached.
        Arc::new(Handle(metric))
    }
}

/// The names of one kind, and where records without a family go.
struct Names<M: 'static, const NAMES: usize, const N: usize> {
    kind: Kind,
    slots: [Slot<M, N>; NAMES],
    /// Where records of names without a family go.
    overflow: Unlabelled<M>,
    /// The overflow's handles, by [`Rejection::index`].
    rejected: [OnceLock<Arc<Rejected<M>>>; Rejection::ALL.len()],
}

impl<M: Metric, const NAMES: usize, const N: usize> Names<M, NAMES, N> {
    const fn new(kind: Kind, overflow: &'static str, help: &'static str) -> Self {
        Self {
            kind,
            slots: [const { Slot::new() }; NAMES],
            overflow: Unlabelled::new(overflow, help),
            rejected: [const { OnceLock::new() }; Rejection::ALL.len()],
        }
    }

    /// The slot of `name`, taken now if it has none, or `None` if every slot is taken.
    fn slot(&'static self, name: &Name) -> Option<(&'static Slot<M, N>, &'static Name)> {
        let start = spread(name.hash, NAMES);
        self.slots[start..].iter().chain(&self.slots[..start]).find_map(|slot| {
            let stored = slot.name.get_or_init(|| *name);
            stored.same(name).then_some((slot, stored))
        })
    }

    fn names_in_use(&self) -> usize {
        self.slots.iter().filter(|slot| slot.name.get().is_some()).count()
    }

    /// Sets the help text of `raw`'s family, unless the family exists already.
    fn describe(&'static self, raw: &str, help: &str) {
        if let Some((slot, _)) = Name::of(raw, self.kind).and_then(|name| self.slot(&name)) {
            let _ = slot.help.set(Text::truncated(help));
        }
    }
}

/// A registry of any capacity, as the recorder adds families to it.
trait Attach: Sync {
    fn add(&self, family: &'static dyn Exposable) -> Result<(), RegisterError>;
}

impl<const F: usize> Attach for Registry<F> {
    fn add(&self, family: &'static dyn Exposable) -> Result<(), RegisterError> {
        self.register(family)
    }
}

/// A `metrics` facade recorder with at most `NAMES` names of each kind, `SERIES` label
/// sets per name, and histograms of type `H`. See the [module docs](self).
///
/// Its size is fixed: [`FOOTPRINT`](Self::FOOTPRINT) bytes, plus at most
/// [`MAX_HANDLES`](Self::MAX_HANDLES) small `Arc`s on the heap.
pub struct MetricsRecorder<const NAMES: usize, const SERIES: usize, H: 'static = LatencyHistogram> {
    registry: OnceLock<&'static dyn Attach>,
    counters: Names<Counter, NAMES, SERIES>,
    gauges: Names<GaugeF64, NAMES, SERIES>,
    histograms: Names<H, NAMES, SERIES>,
    /// `plimsoll_metrics_rejected_total{kind, reason}`: every pair, so no overflow.
    rejected: Family<Counter, 2, REJECTED_SERIES>,
}

impl<const NAMES: usize, const SERIES: usize, H: Observe> MetricsRecorder<NAMES, SERIES, H> {
    /// Size of the recorder in bytes, its tables included.
    pub const FOOTPRINT: usize = size_of::<Self>();
    /// The most `Arc`s the recorder allocates for the facade's handles, ever: one per
    /// series and overflow series of every name, one per name for mismatched label names,
    /// and one per kind and reason of rejection.
    pub const MAX_HANDLES: usize = Kind::ALL.len() * (NAMES * (SERIES + 2) + Rejection::ALL.len());

    /// An empty recorder; [`register`](Self::register) it before use.
    pub const fn new() -> Self {
        const { assert!(NAMES > 0 && SERIES > 0, "a recorder needs room for a name and a series") };
        Self {
            registry: OnceLock::new(),
            counters: Names::new(
                Kind::Counter,
                "plimsoll_metrics_overflow_increments",
                "Increments of metrics facade counters that got no family of their own.",
            ),
            gauges: Names::new(
                Kind::Gauge,
                "plimsoll_metrics_overflow_value",
                "Last value given to a metrics facade gauge that got no family of its own.",
            ),
            histograms: Names::new(
                Kind::Histogram,
                "plimsoll_metrics_overflow_observations",
                "Observations of metrics facade histograms that got no family of their own.",
            ),
            rejected: Family::new(
                REJECTED_NAME,
                "Records of the metrics facade routed to an overflow series, by kind and reason.",
                ["kind", "reason"],
            ),
        }
    }

    /// Registers the recorder's own families into `registry`, where it then adds a family
    /// per name on the name's first use. Checks that `registry` has room for the 4 own
    /// families first; a recorder registers into one registry only (a second call returns
    /// [`RegisterError::DuplicateFamily`]).
    pub fn register<const F: usize>(&'static self, registry: &'static Registry<F>) -> Result<(), RegisterError> {
        if self.registry.get().is_some() {
            return Err(RegisterError::DuplicateFamily(REJECTED_NAME));
        }
        if F - registry.len() < OWN_FAMILIES {
            return Err(RegisterError::RegistryFull(REJECTED_NAME));
        }
        // Every (kind, reason) series exists from the start, so a rejection that never
        // happened reads 0 rather than being absent.
        for kind in Kind::ALL {
            for reason in Rejection::ALL {
                self.rejected_counter(kind, reason);
            }
        }
        registry.register(&self.rejected)?;
        registry.register(&self.counters.overflow)?;
        registry.register(&self.gauges.overflow)?;
        registry.register(&self.histograms.overflow)?;
        self.registry.set(registry).map_err(|_| RegisterError::DuplicateFamily(REJECTED_NAME))
    }

    /// Records of `kind` routed to an overflow series for `reason` so far.
    pub fn rejected(&self, kind: Kind, reason: Rejection) -> u64 {
        self.rejected_counter(kind, reason).get()
    }

    /// Names of `kind` that hold a slot (each used or described at least once).
    pub fn names_in_use(&self, kind: Kind) -> usize {
        match kind {
            Kind::Counter => self.counters.names_in_use(),
            Kind::Gauge => self.gauges.names_in_use(),
            Kind::Histogram => self.histograms.names_in_use(),
        }
    }

    fn rejected_counter(&self, kind: Kind, reason: Rejection) -> &Counter {
        self.rejected.with_label_values(&[kind.label(), reason.label()])
    }

    /// The handle for `key` among `names`: its series, or an overflow and the reason.
    fn resolve<M: Metric>(&'static self, names: &'static Names<M, NAMES, SERIES>, key: &Key) -> Resolved<M> {
        let Some(&registry) = self.registry.get() else {
            return self.reject(names, Rejection::Unregistered);
        };
        let Some(name) = Name::of(key.name(), names.kind) else {
            return self.reject(names, Rejection::TooLong);
        };
        let Some((slot, name)) = names.slot(&name) else {
            return self.reject(names, Rejection::NamesFull);
        };
        let (table, labels) = match slot.state(name, key, registry) {
            Ok(state) => state,
            Err(reason) => return self.reject(names, reason),
        };
        match labels.values(key) {
            Some(values) => Resolved::Series(slot.handle(table.series(&values))),
            None => match table.overflow() {
                Some(overflow) => Resolved::Rejected(Arc::clone(slot.mismatch.get_or_init(|| {
                    let count = self.rejected_counter(names.kind, Rejection::LabelNames);
                    Arc::new(Rejected { metric: overflow, count })
                }))),
                None => self.reject(names, Rejection::LabelNames),
            },
        }
    }

    /// The handle of `names`' overflow metric, counting records as rejected for `reason`.
    fn reject<M: Metric>(&'static self, names: &'static Names<M, NAMES, SERIES>, reason: Rejection) -> Resolved<M> {
        let handle = names.rejected[reason.index()].get_or_init(|| {
            Arc::new(Rejected { metric: &names.overflow, count: self.rejected_counter(names.kind, reason) })
        });
        Resolved::Rejected(Arc::clone(handle))
    }
}

impl<const NAMES: usize, const SERIES: usize, H: Observe> Default for MetricsRecorder<NAMES, SERIES, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const NAMES: usize, const SERIES: usize, H: Observe> core::fmt::Debug for MetricsRecorder<NAMES, SERIES, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("registered", &self.registry.get().is_some())
            .field("counters", &self.counters.names_in_use())
            .field("gauges", &self.gauges.names_in_use())
            .field("histograms", &self.histograms.names_in_use())
            .field("capacity", &(NAMES, SERIES))
            .finish()
    }
}

impl<const NAMES: usize, const SERIES: usize, H: Observe> Recorder for &'static MetricsRecorder<NAMES, SERIES, H> {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.counters.describe(key.as_str(), &description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.gauges.describe(key.as_str(), &description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.histograms.describe(key.as_str(), &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Counter {
        match self.resolve(&self.counters, key) {
            Resolved::Series(handle) => metrics::Counter::from_arc(handle),
            Resolved::Rejected(handle) => metrics::Counter::from_arc(handle),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        match self.resolve(&self.gauges, key) {
            Resolved::Series(handle) => metrics::Gauge::from_arc(handle),
            Resolved::Rejected(handle) => metrics::Gauge::from_arc(handle),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        match self.resolve(&self.histograms, key) {
            Resolved::Series(handle) => metrics::Histogram::from_arc(handle),
            Resolved::Rejected(handle) => metrics::Histogram::from_arc(handle),
        }
    }
}
