//! Arbitrary metric names, label names, help texts, units, bucket bounds, label values
//! and numbers through family construction, registration and rendering in both formats.
//!
//! Each input builds up to six families of a dozen concrete types, registers them in a
//! `Registry<4>` and records into them; a naive model predicts every registration's
//! outcome and every series' value. The checks:
//!
//! - a registration is accepted exactly when the model finds nothing wrong, and a
//!   rejection is a `RegisterError` naming one of the problems the model found;
//! - rendering never fails with a buffer of `Registry::max_line_len()` bytes (or more),
//!   writes whole lines, and a smaller buffer either works or reports the exact length
//!   of the line that did not fit; every buffer size gives the same bytes;
//! - the output passes the strict parser in `strict_parser.rs` in both formats, and
//!   parses back to exactly the model: families in order, help texts and label values
//!   unescaped to what was given, every series that got a slot with its value, the
//!   overflow series when used, and Plimsoll's own counters.
#![no_main]

#[path = "strict_parser.rs"]
mod strict_parser;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use plimsoll_core::{
    Counter, DEFAULT_BUCKETS, Exposable, Family, Format, Gauge, GaugeF64, Histogram, LatencyHistogram,
    MAX_CLASSIC_BUCKETS, MAX_HELP_LEN, MAX_NAME_LEN, Metric, OVERFLOW_LABEL_VALUE, RegisterError, Registry,
    RenderError, Unlabelled,
};
use strict_parser::{Kind, Value};

/// The small-target histogram of the README: schema 2 over `(2^-10, 2^7]`.
type SmallHistogram = Histogram<2, -10, 68>;

/// Families per registry; inputs build up to `MAX_FAMILIES`, so a full registry is reached.
const REGISTRY_CAPACITY: usize = 4;
const MAX_FAMILIES: usize = 6;
const MAX_RECORDS: usize = 64;
const OWN_COUNTERS: [&str; 3] =
    ["plimsoll_series_overflow", "plimsoll_label_value_rejected", "plimsoll_observations_rejected"];
const RESERVED_SUFFIXES: [&str; 5] = ["_total", "_created", "_bucket", "_count", "_sum"];

fuzz_target!(|data: &[u8]| {
    let mut arena = Arena::default();
    run(&mut Input(Unstructured::new(data)), &mut arena);
    // Every `&'static` the arena handed out was held by `run`'s locals only.
    // SAFETY: `run` has returned, so nothing refers to the arena's values any more.
    unsafe { arena.free() };
});

// ---------------------------------------------------------------------------------------
// `&'static` values for one iteration
// ---------------------------------------------------------------------------------------

/// Families and names must be `&'static` to be registered. Leaking them with `Box::leak`
/// would grow the process by a few KiB per iteration, enough to reach libFuzzer's RSS
/// limit in a minute, so the arena leaks them and takes them back after the iteration.
#[derive(Default)]
struct Arena {
    frees: Vec<Box<dyn FnOnce()>>,
}

impl Arena {
    fn leak<T: 'static>(&mut self, value: T) -> &'static T {
        let ptr = Box::into_raw(Box::new(value));
        // SAFETY: `ptr` came from `Box::into_raw`, and `free` runs this closure once, when
        // its caller guarantees that no reference to the value is left.
        let free = move || drop(unsafe { Box::from_raw(ptr) });
        self.frees.push(Box::new(free));
        // SAFETY: `ptr` stays valid until `free`, whose caller guarantees that the returned
        // reference is no longer used by then.
        unsafe { &*ptr }
    }

    fn leak_str(&mut self, text: String) -> &'static str {
        self.leak(text).as_str()
    }

    /// Frees everything leaked.
    ///
    /// # Safety
    ///
    /// No reference returned by [`leak`](Self::leak) may be used afterwards.
    unsafe fn free(self) {
        for free in self.frees {
            free();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading the input
// ---------------------------------------------------------------------------------------

/// Unstructured bytes, read from the front only, so hand-written seeds stay readable:
/// a text is a mode byte, a length byte and (for raw text) that many bytes.
struct Input<'a>(Unstructured<'a>);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn u64(&mut self) -> u64 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn pick<'p, T>(&mut self, from: &'p [T]) -> &'p T {
        &from[usize::from(self.byte()) % from.len()]
    }

    /// A text: from `alphabet`, raw bytes, from `pool`, or one unit repeated up to
    /// `255 * repeat` bytes (to cross the length limits).
    fn text(&mut self, alphabet: &[&str], pool: &[&str], repeat: usize) -> String {
        let mode = self.byte();
        let len = usize::from(self.byte());
        match mode % 6 {
            0 | 1 => (0..len % 24).map(|_| *self.pick(alphabet)).collect(),
            2 => String::from_utf8_lossy(self.0.bytes(len % 32).unwrap_or_default()).into_owned(),
            3 => pool[len % pool.len()].to_owned(),
            4 => {
                let suffix: String = (0..len % 4).map(|_| *self.pick(alphabet)).collect();
                format!("{}{suffix}", self.pick(pool))
            }
            _ => {
                let unit = *self.pick(alphabet);
                unit.repeat(len * repeat / unit.len())
            }
        }
    }

    fn f64(&mut self, pool: &[f64]) -> f64 {
        match self.byte() % 3 {
            0 => f64::from_bits(self.u64()),
            _ => *self.pick(pool),
        }
    }
}

const NAME_ALPHABET: &[&str] = &["a", "b", "x", "_", ":", "0", "9", "Z", "-", " ", "é"];
const NAME_POOL: &[&str] = &[
    "a",
    "requests",
    "x_seconds",
    "y_bytes",
    "a_total",
    "h_bucket",
    "b_sum",
    "c_count",
    "d_created",
    "plimsoll_series_overflow",
    "plimsoll_label_value_rejected",
    "plimsoll_observations_rejected",
    "plimsoll_series_overflow_x",
    "9a",
    "",
    "a:b",
    "__name__",
];
const NAME_SUFFIXES: &[&str] = &["", "", "", "_total", "_seconds", "_bytes", "_sum", "_count", "_bucket", "_created"];
const LABEL_ALPHABET: &[&str] = &["a", "b", "l", "e", "_", "0", ":", "Z", "-"];
const LABEL_POOL: &[&str] = &["le", "a", "b", "family", "method", "__x", "_x", "x:y", "9", "", "quantile"];
const UNIT_POOL: &[&str] = &["seconds", "bytes", "", "a b", "total", "x", "seconds_total"];
const VALUE_ALPHABET: &[&str] =
    &["a", "\\", "\"", "\n", "é", "{", "}", "=", ",", " ", "#", "_", "\r", "\t", "\0", "\u{2028}", "😀", "\\n"];
const VALUE_POOL: &[&str] =
    &[OVERFLOW_LABEL_VALUE, "", "GET", "/a\"b\\c\nd", "x", "12345678", "123456789", "ééééé", "le", "+Inf"];
const HELP_POOL: &[&str] = &["", "Requests served.", "Latency \"quoted\".", "a \\ b\nc", "# EOF", "\\n"];
const NUMBER_POOL: &[f64] = &[
    0.0,
    -0.0,
    1.5,
    -1.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e308,
    -1e-308,
    5e-324,
    9_007_199_254_740_992.0,
    0.1,
];
const OBSERVATION_POOL: &[f64] = &[
    0.0,
    -0.0,
    0.001,
    0.000_976_562_5,
    0.005,
    0.1,
    1.0,
    10.0,
    127.9,
    128.0,
    1e9,
    f64::NAN,
    f64::INFINITY,
    -1.0,
    1e308,
    5e-324,
];
const BOUND_POOL: &[f64] = &[
    0.0,
    -0.0,
    1e-9,
    0.000_976_562_5,
    0.005,
    0.01,
    0.1,
    0.1001,
    1.0,
    10.0,
    128.0,
    128.1,
    1e9,
    f64::NAN,
    f64::INFINITY,
    -1.0,
];

// ---------------------------------------------------------------------------------------
// Family types
// ---------------------------------------------------------------------------------------

/// The metric types a family may hold.
#[derive(Debug, Clone, Copy)]
enum MetricType {
    Counter,
    Gauge,
    GaugeF64,
    /// A histogram, with its `snap_to_edge`.
    Histogram(fn(f64) -> Option<f64>),
}

impl MetricType {
    fn kind(self) -> Kind {
        match self {
            MetricType::Counter => Kind::Counter,
            MetricType::Gauge | MetricType::GaugeF64 => Kind::Gauge,
            MetricType::Histogram(_) => Kind::Histogram,
        }
    }
}

/// One concrete family type: `Unlabelled<M>` (`labelled: false`) or `Family<M, L, N, V>`.
struct Shape {
    metric: MetricType,
    labelled: bool,
    labels: usize,
    series: usize,
    value_len: usize,
    build: fn(&mut Arena, &Spec) -> Built,
}

const SMALL: MetricType = MetricType::Histogram(SmallHistogram::snap_to_edge);
const LATENCY: MetricType = MetricType::Histogram(LatencyHistogram::snap_to_edge);

macro_rules! unlabelled {
    ($metric:expr, $m:ty) => {
        Shape { metric: $metric, labelled: false, labels: 0, series: 1, value_len: 0, build: unlabelled::<$m> }
    };
}
macro_rules! family {
    ($metric:expr, $m:ty, $l:literal, $n:literal, $v:literal) => {
        Shape {
            metric: $metric,
            labelled: true,
            labels: $l,
            series: $n,
            value_len: $v,
            build: family::<$m, $l, $n, $v>,
        }
    };
}

/// Small tables keep an iteration fast; tiny `V`s put the 12-byte overflow value into
/// families whose values are shorter, and eight labels make long lines.
const SHAPES: &[Shape] = &[
    unlabelled!(MetricType::Counter, Counter),
    unlabelled!(MetricType::Gauge, Gauge),
    unlabelled!(MetricType::GaugeF64, GaugeF64),
    unlabelled!(SMALL, SmallHistogram),
    family!(MetricType::Counter, Counter, 1, 4, 8),
    family!(MetricType::Counter, Counter, 2, 3, 3),
    family!(MetricType::Gauge, Gauge, 3, 4, 16),
    family!(MetricType::GaugeF64, GaugeF64, 1, 2, 255),
    family!(SMALL, SmallHistogram, 2, 2, 5),
    family!(SMALL, SmallHistogram, 1, 3, 64),
    family!(MetricType::Counter, Counter, 8, 2, 1),
    family!(MetricType::Gauge, Gauge, 0, 1, 64),
    family!(LATENCY, LatencyHistogram, 1, 1, 12),
];

/// What an input asks a family to be.
struct Spec {
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    label_names: Vec<&'static str>,
    buckets: Option<&'static [f64]>,
}

/// Records an [`Op`] into the series of the given label values.
type Recorder = Box<dyn Fn(&[&str], &Op)>;

/// A family built for one iteration.
struct Built {
    exposable: &'static dyn Exposable,
    record: Recorder,
}

/// An update to one series.
#[derive(Debug, Clone, Copy)]
enum Op {
    Count(u64),
    SetI(i64),
    AddI(i64),
    SubI(i64),
    SetF(f64),
    AddF(f64),
    SubF(f64),
    Observe(f64),
}

/// Applies an [`Op`] of the right kind; sets a histogram family's buckets.
trait Apply: Metric + Sized + 'static {
    fn apply(&self, op: &Op);
    fn family_buckets<const L: usize, const N: usize, const V: usize>(
        family: Family<Self, L, N, V>,
        _buckets: Option<&'static [f64]>,
    ) -> Family<Self, L, N, V> {
        family
    }
    fn unlabelled_buckets(family: Unlabelled<Self>, _buckets: Option<&'static [f64]>) -> Unlabelled<Self> {
        family
    }
}

impl Apply for Counter {
    fn apply(&self, op: &Op) {
        if let Op::Count(n) = *op {
            self.inc_by(n);
        }
    }
}

impl Apply for Gauge {
    fn apply(&self, op: &Op) {
        match *op {
            Op::SetI(v) => self.set(v),
            Op::AddI(v) => self.add(v),
            Op::SubI(v) => self.sub(v),
            _ => {}
        }
    }
}

impl Apply for GaugeF64 {
    fn apply(&self, op: &Op) {
        match *op {
            Op::SetF(v) => self.set(v),
            Op::AddF(v) => self.add(v),
            Op::SubF(v) => self.sub(v),
            _ => {}
        }
    }
}

macro_rules! apply_histogram {
    ($h:ty) => {
        impl Apply for $h {
            fn apply(&self, op: &Op) {
                if let Op::Observe(v) = *op {
                    self.record(v);
                }
            }
            fn family_buckets<const L: usize, const N: usize, const V: usize>(
                family: Family<Self, L, N, V>,
                buckets: Option<&'static [f64]>,
            ) -> Family<Self, L, N, V> {
                match buckets {
                    Some(b) => family.buckets(b),
                    None => family,
                }
            }
            fn unlabelled_buckets(family: Unlabelled<Self>, buckets: Option<&'static [f64]>) -> Unlabelled<Self> {
                match buckets {
                    Some(b) => family.buckets(b),
                    None => family,
                }
            }
        }
    };
}
apply_histogram!(SmallHistogram);
apply_histogram!(LatencyHistogram);

fn unlabelled<M: Apply>(arena: &mut Arena, spec: &Spec) -> Built {
    let mut family = Unlabelled::<M>::new(spec.name, spec.help);
    if let Some(unit) = spec.unit {
        family = family.unit(unit);
    }
    let family: &'static Unlabelled<M> = arena.leak(M::unlabelled_buckets(family, spec.buckets));
    Built { exposable: family, record: Box::new(move |_, op| M::apply(family, op)) }
}

fn family<M: Apply, const L: usize, const N: usize, const V: usize>(arena: &mut Arena, spec: &Spec) -> Built {
    let mut family = Family::<M, L, N, V>::new(spec.name, spec.help, core::array::from_fn(|i| spec.label_names[i]));
    if let Some(unit) = spec.unit {
        family = family.unit(unit);
    }
    let family: &'static Family<M, L, N, V> = arena.leak(M::family_buckets(family, spec.buckets));
    Built {
        exposable: family,
        record: Box::new(move |values, op| {
            let values: &[&str; L] = values.try_into().expect("one value per label");
            family.with_label_values(values).apply(op);
        }),
    }
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// A series' expected value.
#[derive(Debug, Clone)]
enum Model {
    Counter(u64),
    Gauge(i64),
    GaugeF64(f64),
    Histogram { valid: Vec<f64>, sum: f64, invalid: u64 },
}

impl Model {
    fn zero(metric: MetricType) -> Self {
        match metric {
            MetricType::Counter => Model::Counter(0),
            MetricType::Gauge => Model::Gauge(0),
            MetricType::GaugeF64 => Model::GaugeF64(0.0),
            MetricType::Histogram(_) => Model::Histogram { valid: Vec::new(), sum: 0.0, invalid: 0 },
        }
    }

    fn apply(&mut self, op: &Op) {
        match (self, *op) {
            (Model::Counter(c), Op::Count(n)) => *c = c.wrapping_add(n),
            (Model::Gauge(g), Op::SetI(v)) => *g = v,
            (Model::Gauge(g), Op::AddI(v)) => *g = g.wrapping_add(v),
            (Model::Gauge(g), Op::SubI(v)) => *g = g.wrapping_sub(v),
            (Model::GaugeF64(g), Op::SetF(v)) => *g = v,
            (Model::GaugeF64(g), Op::AddF(v)) => *g += v,
            (Model::GaugeF64(g), Op::SubF(v)) => *g -= v,
            (Model::Histogram { valid, sum, invalid }, Op::Observe(v)) => {
                if v.is_nan() || v < 0.0 || v == f64::INFINITY {
                    *invalid += 1;
                } else {
                    valid.push(v);
                    *sum += v;
                }
            }
            (model, op) => panic!("op {op:?} for {model:?}"),
        }
    }

    /// Whether an overflow series holding this is left out of the exposition.
    fn is_zero(&self) -> bool {
        match self {
            Model::Counter(c) => *c == 0,
            Model::Gauge(g) => *g == 0,
            Model::GaugeF64(g) => *g == 0.0,
            Model::Histogram { valid, invalid, .. } => valid.is_empty() && *invalid == 0,
        }
    }

    fn invalid(&self) -> u64 {
        match self {
            Model::Histogram { invalid, .. } => *invalid,
            _ => 0,
        }
    }
}

/// Why a registration may be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    MetricName,
    Reserved,
    HelpTooLong,
    Unit,
    LabelName,
    DuplicateLabel,
    Buckets,
    DuplicateFamily,
    RegistryFull,
}

/// A family under test: its shape, spec, the registration outcome and the expected series.
struct Subject {
    shape: &'static Shape,
    spec: Spec,
    built: Built,
    accepted: bool,
    /// Label sets with their own series, in order of first use; at most `N`.
    series: Vec<(Vec<String>, Model)>,
    overflow: Model,
    spilled: u64,
    rejected: u64,
}

impl Subject {
    /// Routes a record as `Family::with_label_values` documents, returning the model to
    /// update.
    fn route(&mut self, values: &[&str]) -> &mut Model {
        if !self.shape.labelled {
            return &mut self.series[0].1;
        }
        if values.iter().any(|v| v.len() > self.shape.value_len) {
            self.rejected += 1;
            return &mut self.overflow;
        }
        if !values.is_empty() && values.iter().all(|v| *v == OVERFLOW_LABEL_VALUE) {
            return &mut self.overflow;
        }
        if let Some(i) = self.series.iter().position(|(k, _)| k.iter().eq(values.iter())) {
            return &mut self.series[i].1;
        }
        if self.series.len() < self.shape.series {
            self.series.push((values.iter().map(|v| v.to_string()).collect(), Model::zero(self.shape.metric)));
            return &mut self.series.last_mut().expect("pushed").1;
        }
        self.spilled += 1;
        &mut self.overflow
    }

    fn overflow_used(&self) -> bool {
        self.shape.labels > 0 && (self.spilled > 0 || self.rejected > 0 || !self.overflow.is_zero())
    }

    /// The series the exposition must hold: label values and expected value.
    fn expected_series(&self) -> Vec<(Vec<String>, &Model)> {
        let mut out: Vec<_> = self.series.iter().map(|(k, m)| (k.clone(), m)).collect();
        if self.overflow_used() {
            out.push((vec![OVERFLOW_LABEL_VALUE.to_owned(); self.shape.labels], &self.overflow));
        }
        out
    }

    /// What the model finds wrong with the family itself.
    fn problems(&self) -> Vec<Reason> {
        let Spec { name, help, unit, ref label_names, buckets } = self.spec;
        let mut problems = Vec::new();
        if !strict_parser::is_metric_name(name) || name.len() > MAX_NAME_LEN {
            problems.push(Reason::MetricName);
        }
        if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) || OWN_COUNTERS.contains(&name) {
            problems.push(Reason::Reserved);
        }
        if help.len() > MAX_HELP_LEN {
            problems.push(Reason::HelpTooLong);
        }
        if let Some(unit) = unit {
            let syntax = !unit.is_empty()
                && unit.len() <= MAX_NAME_LEN
                && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !syntax || !name.ends_with(&format!("_{unit}")) {
                problems.push(Reason::Unit);
            }
        }
        let histogram = self.shape.metric.kind() == Kind::Histogram;
        for (i, label) in label_names.iter().enumerate() {
            let syntax = strict_parser::is_label_name(label) && label.len() <= MAX_NAME_LEN;
            if !syntax || label.starts_with("__") || (histogram && *label == "le") {
                problems.push(Reason::LabelName);
            }
            if label_names[..i].contains(label) {
                problems.push(Reason::DuplicateLabel);
            }
        }
        if let MetricType::Histogram(snap) = self.shape.metric
            && edges(snap, buckets.unwrap_or(DEFAULT_BUCKETS)).is_none()
        {
            problems.push(Reason::Buckets);
        }
        problems
    }
}

/// The snapped edges of valid classic bounds, or `None` if they are not valid.
fn edges(snap: fn(f64) -> Option<f64>, bounds: &[f64]) -> Option<Vec<f64>> {
    if bounds.len() > MAX_CLASSIC_BUCKETS {
        return None;
    }
    let mut out: Vec<f64> = Vec::new();
    for &bound in bounds {
        let edge = snap(bound)?;
        assert!(edge.is_finite() && edge >= bound, "{bound} snapped to {edge}");
        if out.last().is_some_and(|&previous| edge <= previous) {
            return None;
        }
        out.push(edge);
    }
    Some(out)
}

/// The reason an error names, if it names this family.
fn reason_of(error: &RegisterError, spec: &Spec) -> Option<Reason> {
    let name = spec.name;
    let label = |l: &str| spec.label_names.contains(&l);
    match *error {
        RegisterError::InvalidMetricName(n) if n == name => Some(Reason::MetricName),
        RegisterError::ReservedMetricName(n) if n == name => Some(Reason::Reserved),
        RegisterError::HelpTooLong(n) if n == name => Some(Reason::HelpTooLong),
        RegisterError::InvalidUnit { family, unit } if family == name && Some(unit) == spec.unit => Some(Reason::Unit),
        RegisterError::InvalidLabelName { family, label: l } if family == name && label(l) => Some(Reason::LabelName),
        RegisterError::DuplicateLabelName { family, label: l } if family == name && label(l) => {
            Some(Reason::DuplicateLabel)
        }
        RegisterError::InvalidBuckets(n) if n == name => Some(Reason::Buckets),
        RegisterError::DuplicateFamily(n) if n == name => Some(Reason::DuplicateFamily),
        RegisterError::RegistryFull(n) if n == name => Some(Reason::RegistryFull),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// One iteration
// ---------------------------------------------------------------------------------------

fn run(input: &mut Input<'_>, arena: &mut Arena) {
    let registry = Registry::<REGISTRY_CAPACITY>::new();
    let mut subjects = Vec::new();
    let families = 1 + usize::from(input.byte()) % MAX_FAMILIES;
    for _ in 0..families {
        let mut subject = build_subject(input, arena);
        subject.accepted = register(&registry, &subjects, &subject);
        subjects.push(subject);
    }
    for _ in 0..MAX_RECORDS {
        if input.is_empty() {
            break;
        }
        record(input, &mut subjects);
    }
    let extra = usize::from(input.byte());
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render_every_way(&registry, format, extra);
        let parser_format = match format {
            Format::Prometheus => strict_parser::Format::Prometheus,
            Format::OpenMetrics => strict_parser::Format::OpenMetrics,
            Format::Protobuf => unreachable!("only the text formats are parsed here"),
        };
        let parsed = strict_parser::parse(&text, parser_format)
            .unwrap_or_else(|e| panic!("{format:?} exposition rejected: {e}\n{text}"));
        check_against_model(&parsed, &subjects, format, &text);
    }
}

fn build_subject(input: &mut Input<'_>, arena: &mut Arena) -> Subject {
    let shape = input.pick(SHAPES);
    let name = input.text(NAME_ALPHABET, NAME_POOL, 1) + *input.pick(NAME_SUFFIXES);
    let help = input.text(VALUE_ALPHABET, HELP_POOL, 5);
    let unit = match input.byte() % 3 {
        0 => None,
        _ => Some(arena.leak_str(input.text(LABEL_ALPHABET, UNIT_POOL, 1))),
    };
    let label_names = (0..shape.labels).map(|_| arena.leak_str(input.text(LABEL_ALPHABET, LABEL_POOL, 1))).collect();
    let buckets = match shape.metric {
        MetricType::Histogram(_) if input.byte().is_multiple_of(2) => Some(arena.leak(bounds(input)).as_slice()),
        _ => None,
    };
    let spec = Spec { name: arena.leak_str(name), help: arena.leak_str(help), unit, label_names, buckets };
    let built = (shape.build)(arena, &spec);
    let descriptor = built.exposable.descriptor();
    assert_eq!(descriptor.label_names.len(), shape.labels);
    assert_eq!(built.exposable.label_value_capacity(), shape.value_len);
    let series = if shape.labelled { Vec::new() } else { vec![(Vec::new(), Model::zero(shape.metric))] };
    Subject {
        shape,
        spec,
        built,
        accepted: false,
        series,
        overflow: Model::zero(shape.metric),
        spilled: 0,
        rejected: 0,
    }
}

/// Classic bounds: mostly increasing, sometimes not, sometimes out of range.
fn bounds(input: &mut Input<'_>) -> Vec<f64> {
    let count = usize::from(input.byte()) % (MAX_CLASSIC_BUCKETS + 4);
    let mut out: Vec<f64> = Vec::with_capacity(count);
    for _ in 0..count {
        let previous = out.last().copied().unwrap_or(0.001);
        let bound = match input.byte() % 4 {
            0 => *input.pick(BOUND_POOL),
            1 => previous + f64::from(input.byte()) * 0.01,
            2 => previous * (1.0 + f64::from(input.byte()) / 16.0),
            _ => f64::from_bits(input.u64()),
        };
        out.push(bound);
    }
    out
}

/// Registers `subject`, checking the outcome against the model; returns whether it was
/// accepted.
fn register(registry: &Registry<REGISTRY_CAPACITY>, earlier: &[Subject], subject: &Subject) -> bool {
    let mut expected = subject.problems();
    if expected.is_empty() {
        let accepted = earlier.iter().filter(|s| s.accepted);
        if accepted.clone().any(|s| s.spec.name == subject.spec.name) {
            expected.push(Reason::DuplicateFamily);
        }
        if accepted.count() == REGISTRY_CAPACITY {
            expected.push(Reason::RegistryFull);
        }
    }
    let result = registry.register(subject.built.exposable);
    match result {
        Ok(()) => {
            assert!(expected.is_empty(), "accepted {:?} despite {expected:?}", subject.spec.name);
            true
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            let reason = reason_of(&error, &subject.spec);
            assert!(
                reason.is_some_and(|r| expected.contains(&r)),
                "{error:?} ({error}) for {:?}, expected one of {expected:?}",
                subject.spec.name
            );
            false
        }
    }
}

/// One record into one family, and into the model.
fn record(input: &mut Input<'_>, subjects: &mut [Subject]) {
    let index = usize::from(input.byte()) % subjects.len();
    let subject = &mut subjects[index];
    let values: Vec<String> = (0..subject.shape.labels).map(|_| input.text(VALUE_ALPHABET, VALUE_POOL, 1)).collect();
    let op = op(input, subject);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    (subject.built.record)(&values, &op);
    subject.route(&values).apply(&op);
}

fn op(input: &mut Input<'_>, subject: &Subject) -> Op {
    let integer = |input: &mut Input<'_>| match input.byte() % 2 {
        0 => input.u64(),
        _ => u64::from(input.byte()),
    };
    match subject.shape.metric {
        MetricType::Counter => Op::Count(integer(input)),
        MetricType::Gauge => {
            let which = input.byte();
            let v = integer(input) as i64;
            [Op::SetI(v), Op::AddI(v), Op::SubI(v)][usize::from(which) % 3]
        }
        MetricType::GaugeF64 => {
            let which = input.byte();
            let v = input.f64(NUMBER_POOL);
            [Op::SetF(v), Op::AddF(v), Op::SubF(v)][usize::from(which) % 3]
        }
        MetricType::Histogram(snap) => {
            if input.byte().is_multiple_of(4) {
                // Next to a bucket edge: the edge itself or one ulp either side.
                let bounds = subject.spec.buckets.unwrap_or(DEFAULT_BUCKETS);
                let edge = bounds.get(usize::from(input.byte()) % bounds.len().max(1)).and_then(|&b| snap(b));
                let edge = edge.unwrap_or(1.0);
                let bits = edge.to_bits();
                Op::Observe(f64::from_bits([bits, bits + 1, bits.saturating_sub(1)][usize::from(input.byte()) % 3]))
            } else {
                Op::Observe(input.f64(OBSERVATION_POOL))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// Renders through a buffer of `max_line_len`, of `max_line_len + extra`, of 64 KiB and of
/// `extra % 64 + 1` bytes (growing it to the reported need when a line does not fit), and
/// checks that all give the same text; returns it.
fn render_every_way(registry: &Registry<REGISTRY_CAPACITY>, format: Format, extra: usize) -> String {
    let min = registry.max_line_len();
    let reference = render(registry, format, min, false);
    for len in [min + extra, 1 << 16] {
        assert_eq!(render(registry, format, len, false), reference, "buffer of {len} bytes");
    }
    assert_eq!(render(registry, format, extra % 64 + 1, true), reference, "growing buffer");
    String::from_utf8(reference).expect("the exposition is UTF-8")
}

fn render(registry: &Registry<REGISTRY_CAPACITY>, format: Format, len: usize, may_grow: bool) -> Vec<u8> {
    let max = registry.max_line_len();
    let mut renderer = registry.renderer(format);
    let mut buf = vec![0u8; len];
    let mut out = Vec::new();
    while !renderer.is_done() {
        match renderer.render(&mut buf) {
            Ok(n) => {
                assert!(n > 0 || renderer.is_done(), "no progress with a buffer of {}", buf.len());
                assert!(n == 0 || buf[n - 1] == b'\n', "a chunk that does not end a line");
                out.extend_from_slice(&buf[..n]);
            }
            Err(RenderError::BufferTooSmall { needed }) => {
                assert!(buf.len() < max, "a {}-byte buffer (max_line_len {max}) failed: {needed}", buf.len());
                assert!(may_grow, "a {}-byte buffer failed: needs {needed}", buf.len());
                assert!(needed > buf.len() && needed <= max, "needed {needed}, buffer {}, max {max}", buf.len());
                // A buffer of exactly the need takes exactly that line.
                buf = vec![0u8; needed];
                let n = renderer.render(&mut buf).expect("a buffer of the stated need");
                assert_eq!(n, needed);
                assert_eq!(buf[n - 1], b'\n');
                out.extend_from_slice(&buf[..n]);
            }
            Err(other) => panic!("unexpected render error {other:?}"),
        }
    }
    assert_eq!(renderer.render(&mut buf), Ok(0), "render after done");
    out
}

// ---------------------------------------------------------------------------------------
// Checking the parsed exposition
// ---------------------------------------------------------------------------------------

fn check_against_model(parsed: &[strict_parser::Family], subjects: &[Subject], format: Format, text: &str) {
    let accepted: Vec<&Subject> = subjects.iter().filter(|s| s.accepted).collect();
    assert_eq!(parsed.len(), accepted.len() + OWN_COUNTERS.len(), "family count\n{text}");
    for (family, subject) in parsed.iter().zip(&accepted) {
        check_family(family, subject, format, text);
    }
    for (i, (family, own)) in parsed[accepted.len()..].iter().zip(OWN_COUNTERS).enumerate() {
        let name = metadata_name(own, Kind::Counter, format);
        assert_eq!((family.name.as_str(), family.kind), (name.as_str(), Kind::Counter), "{text}");
        assert!(family.help.is_some());
        let expected: Vec<(String, u64)> = accepted
            .iter()
            .filter_map(|s| {
                match i {
                    0 if s.shape.labels > 0 => Some(s.spilled),
                    1 if s.shape.labels > 0 => Some(s.rejected),
                    2 if s.shape.metric.kind() == Kind::Histogram => {
                        Some(s.series.iter().map(|(_, m)| m.invalid()).sum::<u64>() + s.overflow.invalid())
                    }
                    _ => None,
                }
                .map(|v| (s.spec.name.to_owned(), v))
            })
            .collect();
        let got: Vec<(String, u64)> = family
            .series
            .iter()
            .map(|series| match (&series.labels[..], &series.value) {
                ([(label, value)], Value::Counter(v)) if label == "family" => (value.clone(), *v),
                _ => panic!("unexpected own-counter series {series:?}"),
            })
            .collect();
        assert_eq!(got, expected, "{own}\n{text}");
    }
}

fn metadata_name(name: &str, kind: Kind, format: Format) -> String {
    match (kind, format) {
        (Kind::Counter, Format::Prometheus) => format!("{name}_total"),
        _ => name.to_owned(),
    }
}

fn check_family(family: &strict_parser::Family, subject: &Subject, format: Format, text: &str) {
    let spec = &subject.spec;
    let kind = subject.shape.metric.kind();
    assert_eq!(family.name, metadata_name(spec.name, kind, format), "{text}");
    assert_eq!(family.kind, kind, "{text}");
    assert_eq!(family.help.as_deref(), (!spec.help.is_empty()).then_some(spec.help), "{text}");
    let unit = if format == Format::OpenMetrics { spec.unit } else { None };
    assert_eq!(family.unit.as_deref(), unit, "{text}");
    let expected = subject.expected_series();
    assert_eq!(family.series.len(), expected.len(), "series of {:?}\n{text}", spec.name);
    for series in &family.series {
        let names: Vec<&str> = series.labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, spec.label_names, "{text}");
        let values: Vec<String> = series.labels.iter().map(|(_, v)| v.clone()).collect();
        let Some((_, model)) = expected.iter().find(|(k, _)| *k == values) else {
            panic!("series {values:?} of {:?} was never recorded\n{text}", spec.name);
        };
        check_value(&series.value, model, subject, text);
    }
}

fn check_value(value: &Value, model: &Model, subject: &Subject, text: &str) {
    match (value, model) {
        (Value::Counter(v), Model::Counter(m)) => assert_eq!(v, m, "{text}"),
        (Value::Gauge { text: t, .. }, Model::Gauge(m)) => assert_eq!(*t, m.to_string(), "{text}"),
        (Value::Gauge { value: v, .. }, Model::GaugeF64(m)) => {
            assert!(v == m || (v.is_nan() && m.is_nan()), "{v} != {m}\n{text}")
        }
        (Value::Histogram { buckets, sum, count }, Model::Histogram { valid, sum: model_sum, .. }) => {
            let MetricType::Histogram(snap) = subject.shape.metric else { unreachable!() };
            let edges = edges(snap, subject.spec.buckets.unwrap_or(DEFAULT_BUCKETS)).expect("accepted bounds");
            let les: Vec<f64> = buckets.iter().map(|&(le, _)| le).collect();
            let expected_les: Vec<f64> = edges.iter().copied().chain([f64::INFINITY]).collect();
            assert_eq!(les, expected_les, "{text}");
            for &(le, cumulative) in buckets {
                let at_most = valid.iter().filter(|&&v| v <= le).count() as u64;
                assert_eq!(cumulative, at_most, "bucket le={le} of {valid:?}\n{text}");
            }
            assert_eq!(*count, valid.len() as u64, "{text}");
            assert!(sum == model_sum, "sum {sum} != {model_sum}\n{text}");
        }
        (value, model) => panic!("{value:?} for {model:?}\n{text}"),
    }
}
