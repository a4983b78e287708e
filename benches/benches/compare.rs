//! Plimsoll against its peers: prometheus, metrics (with metrics-exporter-prometheus),
//! prometheus-client and measured.
//!
//! Every peer is measured in the same criterion group, so the ratios within a group are
//! honest:
//!
//! - `counter_inc`: one unlabelled counter increment through a handle;
//! - `labelled_inc`: look up the series for `("GET", "200")` in a family of 20 series and
//!   increment it, on every call;
//! - `histogram_observe`: one observation, values log-uniform over 1 µs .. 10 s;
//! - `render_1000_series`: 5 counter and 5 histogram families of 100 series each, exposed
//!   as Prometheus text (heap allocations per render are counted and printed first);
//! - `slo_record`: one SLO event (`Slo::record`, into the minute and the hour ring, with
//!   the clock advancing 1 ms per event so slot resets happen) next to an unlabelled
//!   `Counter::inc`, Plimsoll's own yardstick (the goal: at most 2x).
//!
//! Each bench checks its answer before it is timed.
//!
//! Run with `cargo bench -p plimsoll-benches --bench compare`.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Allocation counting
// ---------------------------------------------------------------------------------------

/// The system allocator, counting every call that allocates (alloc, alloc_zeroed, realloc)
/// while [`COUNTING`] is set. Counting is off during the timed benches, so the peers that
/// allocate pay one relaxed load per allocation there, not an atomic increment.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count_allocation() {
    if COUNTING.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly as `System` does; the counter has no effect on it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap allocations per call of `f`, averaged over 10 calls after one warm-up call.
fn allocations_per_call(mut f: impl FnMut()) -> f64 {
    const CALLS: u64 = 10;
    f();
    ALLOCATIONS.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    for _ in 0..CALLS {
        f();
    }
    COUNTING.store(false, Relaxed);
    ALLOCATIONS.load(Relaxed) as f64 / CALLS as f64
}

// ---------------------------------------------------------------------------------------
// Shared inputs
// ---------------------------------------------------------------------------------------

/// Prometheus' default classic buckets, used by every peer's histograms when rendering.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// 4096 values log-uniform over 1 µs .. 10 s, from a fixed-seed splitmix64.
fn latencies() -> Vec<f64> {
    let mut state: u64 = 0x5EED_1234_ABCD_0001;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..4096)
        .map(|_| {
            let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
            1e-6 * 10f64.powf(7.0 * unit)
        })
        .collect()
}

/// Cycles through `values` for a timed loop.
struct Cycle<'a> {
    values: &'a [f64],
    at: usize,
}

impl<'a> Cycle<'a> {
    fn new(values: &'a [f64]) -> Self {
        assert!(values.len().is_power_of_two());
        Self { values, at: 0 }
    }

    #[inline]
    fn next(&mut self) -> f64 {
        let value = self.values[self.at & (self.values.len() - 1)];
        self.at = self.at.wrapping_add(1);
        black_box(value)
    }
}

/// HTTP methods and statuses: 5 x 4 = 20 series in every `labelled_inc` family.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const STATUSES: [&str; 4] = ["200", "404", "500", "503"];

fn request_labels() -> impl Iterator<Item = (&'static str, &'static str)> {
    METHODS.into_iter().flat_map(|m| STATUSES.into_iter().map(move |s| (m, s)))
}

/// A metrics-exporter-prometheus recorder that exports histograms with [`BUCKETS`].
fn metrics_recorder() -> PrometheusRecorder {
    PrometheusBuilder::new().set_buckets(&BUCKETS).expect("valid buckets").build_recorder()
}

fn assert_contains(peer: &str, text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "{peer}: no line {line:?} in:\n{text}");
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

// ---------------------------------------------------------------------------------------
// counter_inc
// ---------------------------------------------------------------------------------------

fn counter_inc(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_inc");
    counter_atomic(&mut group);
    counter_plimsoll(&mut group);
    counter_prometheus(&mut group);
    counter_metrics(&mut group);
    counter_prometheus_client(&mut group);
    counter_measured(&mut group);
    group.finish();
}

fn counter_atomic(group: &mut BenchmarkGroup<'_, WallTime>) {
    let counter = AtomicU64::new(0);
    black_box(&counter).fetch_add(1, Relaxed);
    assert_eq!(counter.load(Relaxed), 1);
    group.bench_function("atomic_u64", |b| b.iter(|| black_box(&counter).fetch_add(1, Relaxed)));
}

fn counter_plimsoll(group: &mut BenchmarkGroup<'_, WallTime>) {
    let counter = plimsoll::Counter::new();
    black_box(&counter).inc();
    assert_eq!(counter.get(), 1);
    group.bench_function("plimsoll", |b| b.iter(|| black_box(&counter).inc()));
}

fn counter_prometheus(group: &mut BenchmarkGroup<'_, WallTime>) {
    let counter = prometheus::IntCounter::new("requests_total", "Requests.").unwrap();
    black_box(&counter).inc();
    assert_eq!(counter.get(), 1);
    group.bench_function("prometheus", |b| b.iter(|| black_box(&counter).inc()));
}

fn counter_metrics(group: &mut BenchmarkGroup<'_, WallTime>) {
    let recorder = metrics_recorder();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("requests_total"));
    black_box(&counter).increment(1);
    assert_contains("metrics", &recorder.handle().render(), "requests_total 1");
    group.bench_function("metrics", |b| b.iter(|| black_box(&counter).increment(1)));
}

fn counter_prometheus_client(group: &mut BenchmarkGroup<'_, WallTime>) {
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    black_box(&counter).inc();
    assert_eq!(counter.get(), 1);
    group.bench_function("prometheus_client", |b| b.iter(|| black_box(&counter).inc()));
}

fn counter_measured(group: &mut BenchmarkGroup<'_, WallTime>) {
    let counter = measured::Counter::new();
    black_box(&counter).inc();
    assert_eq!(counter.get_metric().count.load(Relaxed), 1);
    group.bench_function("measured", |b| b.iter(|| black_box(&counter).inc()));
}

// ---------------------------------------------------------------------------------------
// labelled_inc
// ---------------------------------------------------------------------------------------

/// prometheus-client's label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    status: &'static str,
}

/// measured's label group over label values known up front (a dense vec of series).
#[derive(Clone, Copy, measured::LabelGroup)]
#[label(set = HttpFixedSet)]
struct HttpFixed<'a> {
    #[label(fixed_with = measured::lasso::RodeoReader)]
    method: &'a str,
    #[label(fixed_with = measured::lasso::RodeoReader)]
    status: &'a str,
}

/// measured's label group over label values interned on first use (a sharded map).
#[derive(Clone, Copy, measured::LabelGroup)]
#[label(set = HttpDynamicSet)]
struct HttpDynamic<'a> {
    #[label(dynamic_with = measured::lasso::ThreadedRodeo, default)]
    method: &'a str,
    #[label(dynamic_with = measured::lasso::ThreadedRodeo, default)]
    status: &'a str,
}

fn labelled_inc(c: &mut Criterion) {
    let mut group = c.benchmark_group("labelled_inc");
    labelled_plimsoll(&mut group);
    labelled_prometheus(&mut group);
    labelled_metrics(&mut group);
    labelled_metrics_runtime(&mut group);
    labelled_prometheus_client(&mut group);
    labelled_measured_fixed(&mut group);
    labelled_measured_dynamic(&mut group);
    group.finish();
}

fn labelled_plimsoll(group: &mut BenchmarkGroup<'_, WallTime>) {
    static REQUESTS: plimsoll::Family<plimsoll::Counter, 2, 64> =
        plimsoll::Family::new("http_requests", "Requests.", ["method", "status"]);
    for (method, status) in request_labels() {
        REQUESTS.with_label_values(&[method, status]).inc();
    }
    let labels = ["GET", "200"];
    REQUESTS.with_label_values(black_box(&labels)).inc();
    assert_eq!(REQUESTS.with_label_values(&labels).get(), 2);
    assert_eq!(plimsoll::Exposable::series_in_use(&REQUESTS), 20);
    group.bench_function("plimsoll", |b| b.iter(|| REQUESTS.with_label_values(black_box(&labels)).inc()));
}

fn labelled_prometheus(group: &mut BenchmarkGroup<'_, WallTime>) {
    let opts = prometheus::Opts::new("http_requests_total", "Requests.");
    let requests = prometheus::IntCounterVec::new(opts, &["method", "status"]).unwrap();
    for (method, status) in request_labels() {
        requests.with_label_values(&[method, status]).inc();
    }
    let labels = ["GET", "200"];
    requests.with_label_values(black_box(&labels)).inc();
    assert_eq!(requests.with_label_values(&labels).get(), 2);
    group.bench_function("prometheus", |b| b.iter(|| requests.with_label_values(black_box(&labels)).inc()));
}

/// The metrics-exporter-prometheus recorder with the 20 `http_requests_total` series.
fn metrics_requests_recorder() -> PrometheusRecorder {
    let recorder = metrics_recorder();
    metrics::with_local_recorder(&recorder, || {
        for (method, status) in request_labels() {
            metrics::counter!("http_requests_total", "method" => method, "status" => status).increment(1);
        }
    });
    recorder
}

/// `counter!` with literal labels: the macro builds a `static` key.
fn labelled_metrics(group: &mut BenchmarkGroup<'_, WallTime>) {
    let recorder = metrics_requests_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("http_requests_total", "method" => "GET", "status" => "200").increment(1);
    });
    let line = r#"http_requests_total{method="GET",status="200"} 2"#;
    assert_contains("metrics", &recorder.handle().render(), line);
    group.bench_function("metrics", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| metrics::counter!("http_requests_total", "method" => "GET", "status" => "200").increment(1))
        })
    });
}

/// `counter!` with label values known only at run time: the macro builds a key per call.
fn labelled_metrics_runtime(group: &mut BenchmarkGroup<'_, WallTime>) {
    let recorder = metrics_requests_recorder();
    let (method, status) = ("GET", "200");
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("http_requests_total", "method" => black_box(method), "status" => black_box(status))
            .increment(1);
    });
    let line = r#"http_requests_total{method="GET",status="200"} 2"#;
    assert_contains("metrics", &recorder.handle().render(), line);
    group.bench_function("metrics_runtime_labels", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| {
                metrics::counter!("http_requests_total", "method" => black_box(method), "status" => black_box(status))
                    .increment(1)
            })
        })
    });
}

fn labelled_prometheus_client(group: &mut BenchmarkGroup<'_, WallTime>) {
    use prometheus_client::metrics::{counter::Counter, family::Family};
    let requests = Family::<HttpLabels, Counter>::default();
    for (method, status) in request_labels() {
        requests.get_or_create(&HttpLabels { method, status }).inc();
    }
    let labels = HttpLabels { method: "GET", status: "200" };
    requests.get_or_create(black_box(&labels)).inc();
    assert_eq!(requests.get_or_create(&labels).get(), 2);
    group.bench_function("prometheus_client", |b| b.iter(|| requests.get_or_create(black_box(&labels)).inc()));
}

fn labelled_measured_fixed(group: &mut BenchmarkGroup<'_, WallTime>) {
    use measured::lasso::Rodeo;
    let set = HttpFixedSet::new(
        METHODS.into_iter().collect::<Rodeo>().into_reader(),
        STATUSES.into_iter().collect::<Rodeo>().into_reader(),
    );
    let requests = measured::CounterVec::with_label_set(set);
    for (method, status) in request_labels() {
        requests.inc(HttpFixed { method, status });
    }
    let (method, status) = ("GET", "200");
    requests.inc(HttpFixed { method: black_box(method), status: black_box(status) });
    let id = requests.with_labels(HttpFixed { method, status });
    assert_eq!(requests.get_metric(id).count.load(Relaxed), 2);
    group.bench_function("measured_fixed", |b| {
        b.iter(|| requests.inc(HttpFixed { method: black_box(method), status: black_box(status) }))
    });
}

fn labelled_measured_dynamic(group: &mut BenchmarkGroup<'_, WallTime>) {
    let requests = measured::CounterVec::<HttpDynamicSet>::new();
    for (method, status) in request_labels() {
        requests.inc(HttpDynamic { method, status });
    }
    let (method, status) = ("GET", "200");
    requests.inc(HttpDynamic { method: black_box(method), status: black_box(status) });
    let id = requests.with_labels(HttpDynamic { method, status });
    assert_eq!(requests.get_metric(id).count.load(Relaxed), 2);
    group.bench_function("measured_dynamic", |b| {
        b.iter(|| requests.inc(HttpDynamic { method: black_box(method), status: black_box(status) }))
    });
}

// ---------------------------------------------------------------------------------------
// histogram_observe
// ---------------------------------------------------------------------------------------

fn histogram_observe(c: &mut Criterion) {
    let values = latencies();
    let mut group = c.benchmark_group("histogram_observe");
    observe_plimsoll(&mut group, &values);
    observe_prometheus(&mut group, &values, "prometheus", prometheus::DEFAULT_BUCKETS.to_vec());
    let exponential = prometheus::exponential_buckets(1e-6, 2.0, 24).unwrap();
    observe_prometheus(&mut group, &values, "prometheus_24_buckets", exponential);
    observe_metrics(&mut group, &values);
    observe_prometheus_client(&mut group, &values);
    observe_measured(&mut group, &values);
    group.finish();
}

fn observe_plimsoll(group: &mut BenchmarkGroup<'_, WallTime>, values: &[f64]) {
    let histogram = plimsoll::LatencyHistogram::new();
    for &v in values {
        black_box(&histogram).record(v);
    }
    assert_eq!(histogram.count(), values.len() as u64);
    assert_eq!(histogram.zero_count() + histogram.overflow_count() + histogram.invalid(), 0);
    let mut cycle = Cycle::new(values);
    group.bench_function("plimsoll", |b| b.iter(|| black_box(&histogram).record(cycle.next())));
}

fn observe_prometheus(group: &mut BenchmarkGroup<'_, WallTime>, values: &[f64], name: &str, buckets: Vec<f64>) {
    let opts = prometheus::HistogramOpts::new("latency_seconds", "Latency.").buckets(buckets);
    let histogram = prometheus::Histogram::with_opts(opts).unwrap();
    for &v in values {
        black_box(&histogram).observe(v);
    }
    assert_eq!(histogram.get_sample_count(), values.len() as u64);
    let mut cycle = Cycle::new(values);
    group.bench_function(name, |b| b.iter(|| black_box(&histogram).observe(cycle.next())));
}

/// metrics-exporter-prometheus queues each value and folds the queue into the histogram
/// on upkeep or render; the fold runs after each timed batch, outside the timing.
fn observe_metrics(group: &mut BenchmarkGroup<'_, WallTime>, values: &[f64]) {
    let recorder = metrics_recorder();
    let handle = recorder.handle();
    let histogram = metrics::with_local_recorder(&recorder, || metrics::histogram!("latency_seconds"));
    for &v in values {
        black_box(&histogram).record(v);
    }
    let count = format!("latency_seconds_count {}", values.len());
    assert_contains("metrics", &handle.render(), &count);
    let mut cycle = Cycle::new(values);
    group.bench_function("metrics", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(&histogram).record(cycle.next());
            }
            let elapsed = start.elapsed();
            handle.run_upkeep();
            elapsed
        })
    });
}

fn observe_prometheus_client(group: &mut BenchmarkGroup<'_, WallTime>, values: &[f64]) {
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;
    let histogram = Histogram::new(exponential_buckets(1e-6, 2.0, 24));
    for &v in values {
        black_box(&histogram).observe(v);
    }
    let mut registry = Registry::default();
    registry.register("latency_seconds", "Latency.", histogram.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert_contains("prometheus-client", &text, &format!("latency_seconds_count {}", values.len()));
    let mut cycle = Cycle::new(values);
    group.bench_function("prometheus_client", |b| b.iter(|| black_box(&histogram).observe(cycle.next())));
}

fn observe_measured(group: &mut BenchmarkGroup<'_, WallTime>, values: &[f64]) {
    use measured::metric::histogram::Thresholds;
    let histogram = measured::Histogram::<24>::with_metadata(Thresholds::exponential_buckets(1e-6, 2.0));
    for &v in values {
        black_box(&histogram).observe(v);
    }
    let metric = histogram.get_metric();
    let inner = metric.inner.read();
    let count: u64 = inner.buckets.iter().map(|b| b.load(Relaxed)).sum::<u64>() + inner.inf.load(Relaxed);
    assert_eq!(count, values.len() as u64);
    drop(inner);
    let mut cycle = Cycle::new(values);
    group.bench_function("measured", |b| b.iter(|| black_box(&histogram).observe(cycle.next())));
}

// ---------------------------------------------------------------------------------------
// render_1000_series
// ---------------------------------------------------------------------------------------

/// Families of each kind, series per family, and updates per series.
const FAMILIES: usize = 5;
const SERIES: usize = 100;
const TOUCHES: u64 = 3;
/// Sample lines of the bench families: one per counter series, 11 buckets + `+Inf` +
/// `_sum` + `_count` per histogram series.
const SAMPLE_LINES: usize = FAMILIES * SERIES * (1 + BUCKETS.len() + 3);

fn counter_name(family: usize) -> String {
    format!("bench_counter_{family}")
}

fn histogram_name(family: usize) -> String {
    format!("bench_latency_{family}_seconds")
}

fn shard(series: usize) -> String {
    format!("v{series}")
}

/// The value recorded by touch `touch` of `series` in histogram family `family`.
fn observation(values: &[f64], family: usize, series: usize, touch: u64) -> f64 {
    values[(family * SERIES + series) * TOUCHES as usize + touch as usize]
}

/// One peer's exposition of the 1000 series.
trait Exposition {
    /// Renders the whole exposition; returns its length in bytes.
    fn render(&mut self) -> usize;
    /// The whole exposition as text, for checking.
    fn text(&mut self) -> String;
}

/// Checks that the exposition holds every bench sample line and two known lines.
fn check_exposition(peer: &str, text: &str) {
    let samples = text.lines().filter(|l| l.starts_with("bench_")).count();
    assert_eq!(samples, SAMPLE_LINES, "{peer}: sample lines");
    assert_contains(peer, text, &format!(r#"bench_counter_3_total{{shard="v42"}} {TOUCHES}"#));
    assert_contains(peer, text, &format!(r#"bench_latency_3_seconds_count{{shard="v42"}} {TOUCHES}"#));
}

/// Plimsoll: fixed families in a static registry, rendered into a 4 KiB buffer.
struct PlimsollExposition {
    format: plimsoll::Format,
}

type PlimsollCounters = plimsoll::Family<plimsoll::Counter, 1, 128>;
type PlimsollLatencies = plimsoll::Family<plimsoll::LatencyHistogram, 1, 128>;

static PLIMSOLL_REGISTRY: plimsoll::Registry<16> = plimsoll::Registry::new();
static PLIMSOLL_COUNTERS: [PlimsollCounters; FAMILIES] = [
    plimsoll::Family::new("bench_counter_0", "Bench counter.", ["shard"]),
    plimsoll::Family::new("bench_counter_1", "Bench counter.", ["shard"]),
    plimsoll::Family::new("bench_counter_2", "Bench counter.", ["shard"]),
    plimsoll::Family::new("bench_counter_3", "Bench counter.", ["shard"]),
    plimsoll::Family::new("bench_counter_4", "Bench counter.", ["shard"]),
];
static PLIMSOLL_LATENCIES: [PlimsollLatencies; FAMILIES] = [
    plimsoll::Family::new("bench_latency_0_seconds", "Bench latency.", ["shard"]),
    plimsoll::Family::new("bench_latency_1_seconds", "Bench latency.", ["shard"]),
    plimsoll::Family::new("bench_latency_2_seconds", "Bench latency.", ["shard"]),
    plimsoll::Family::new("bench_latency_3_seconds", "Bench latency.", ["shard"]),
    plimsoll::Family::new("bench_latency_4_seconds", "Bench latency.", ["shard"]),
];

impl PlimsollExposition {
    /// Registers and fills the static families (once: later calls only pick the format).
    fn new(values: &[f64], format: plimsoll::Format) -> Self {
        if PLIMSOLL_REGISTRY.is_empty() {
            assert_eq!(plimsoll::DEFAULT_BUCKETS, &BUCKETS[..]);
            for family in &PLIMSOLL_COUNTERS {
                PLIMSOLL_REGISTRY.register(family).unwrap();
            }
            for family in &PLIMSOLL_LATENCIES {
                PLIMSOLL_REGISTRY.register(family).unwrap();
            }
            for series in 0..SERIES {
                let shard = shard(series);
                for family in &PLIMSOLL_COUNTERS {
                    for _ in 0..TOUCHES {
                        family.with_label_values(&[&shard]).inc();
                    }
                }
                for (f, family) in PLIMSOLL_LATENCIES.iter().enumerate() {
                    for touch in 0..TOUCHES {
                        family.with_label_values(&[&shard]).record(observation(values, f, series, touch));
                    }
                }
            }
        }
        Self { format }
    }

    /// Renders chunk by chunk into `buf`, handing each chunk to `sink`.
    fn render_with(&self, mut sink: impl FnMut(&[u8])) {
        // 8 KiB holds the largest protobuf message of these families (a histogram whose
        // 433 native buckets are all used); 4 KiB holds every text line.
        let mut buf = [0u8; 8192];
        let mut renderer = PLIMSOLL_REGISTRY.renderer(black_box(self.format));
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).unwrap();
            sink(&buf[..n]);
        }
    }
}

impl Exposition for PlimsollExposition {
    fn render(&mut self) -> usize {
        let mut bytes = 0;
        self.render_with(|chunk| bytes += black_box(chunk).len());
        bytes
    }

    fn text(&mut self) -> String {
        let mut text = Vec::new();
        self.render_with(|chunk| text.extend_from_slice(chunk));
        String::from_utf8(text).unwrap()
    }
}

/// prometheus: `gather()` and `TextEncoder::encode` into a reused `Vec`.
struct PrometheusExposition {
    registry: prometheus::Registry,
    buf: Vec<u8>,
}

impl PrometheusExposition {
    fn new(values: &[f64]) -> Self {
        use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
        assert_eq!(prometheus::DEFAULT_BUCKETS, &BUCKETS);
        let registry = prometheus::Registry::new();
        for f in 0..FAMILIES {
            let opts = Opts::new(format!("{}_total", counter_name(f)), "Bench counter.");
            let counters = IntCounterVec::new(opts, &["shard"]).unwrap();
            let opts = HistogramOpts::new(histogram_name(f), "Bench latency.");
            let latencies = HistogramVec::new(opts, &["shard"]).unwrap();
            for series in 0..SERIES {
                let shard = shard(series);
                for touch in 0..TOUCHES {
                    counters.with_label_values(&[&shard]).inc();
                    latencies.with_label_values(&[&shard]).observe(observation(values, f, series, touch));
                }
            }
            registry.register(Box::new(counters)).unwrap();
            registry.register(Box::new(latencies)).unwrap();
        }
        Self { registry, buf: Vec::new() }
    }
}

impl Exposition for PrometheusExposition {
    fn render(&mut self) -> usize {
        use prometheus::Encoder;
        self.buf.clear();
        let families = self.registry.gather();
        prometheus::TextEncoder::new().encode(&families, &mut self.buf).unwrap();
        black_box(&self.buf).len()
    }

    fn text(&mut self) -> String {
        self.render();
        String::from_utf8(self.buf.clone()).unwrap()
    }
}

/// prometheus-client's label set for the render families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ShardLabels {
    shard: String,
}

/// prometheus-client: `encode` into a reused `String` (OpenMetrics text).
struct PrometheusClientExposition {
    registry: prometheus_client::registry::Registry,
    buf: String,
}

impl PrometheusClientExposition {
    fn new(values: &[f64]) -> Self {
        use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
        let mut registry = prometheus_client::registry::Registry::default();
        for f in 0..FAMILIES {
            let counters = Family::<ShardLabels, Counter>::default();
            let latencies =
                Family::<ShardLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
            for series in 0..SERIES {
                let labels = ShardLabels { shard: shard(series) };
                for touch in 0..TOUCHES {
                    counters.get_or_create(&labels).inc();
                    latencies.get_or_create(&labels).observe(observation(values, f, series, touch));
                }
            }
            registry.register(counter_name(f), "Bench counter.", counters);
            registry.register(histogram_name(f), "Bench latency.", latencies);
        }
        Self { registry, buf: String::new() }
    }
}

impl Exposition for PrometheusClientExposition {
    fn render(&mut self) -> usize {
        self.buf.clear();
        prometheus_client::encoding::text::encode(&mut self.buf, &self.registry).unwrap();
        black_box(&self.buf).len()
    }

    fn text(&mut self) -> String {
        self.render();
        self.buf.clone()
    }
}

/// measured's label group for the render families: the 100 values are known up front.
#[derive(Clone, Copy, measured::LabelGroup)]
#[label(set = ShardSet)]
struct Shard<'a> {
    #[label(fixed_with = measured::lasso::RodeoReader)]
    shard: &'a str,
}

fn shard_set() -> ShardSet {
    let values: measured::lasso::Rodeo = (0..SERIES).map(shard).collect();
    ShardSet::new(values.into_reader())
}

/// measured: `BufferedTextEncoder`, reused, with a help line and the family per vec.
struct MeasuredExposition {
    counter_names: Vec<String>,
    histogram_names: Vec<String>,
    counters: Vec<measured::CounterVec<ShardSet>>,
    latencies: Vec<measured::HistogramVec<ShardSet, 11>>,
    encoder: measured::text::BufferedTextEncoder,
}

impl MeasuredExposition {
    fn new(values: &[f64]) -> Self {
        use measured::metric::histogram::Thresholds;
        let counters: Vec<_> = (0..FAMILIES).map(|_| measured::CounterVec::with_label_set(shard_set())).collect();
        let latencies: Vec<_> = (0..FAMILIES)
            .map(|_| {
                measured::HistogramVec::with_label_set_and_metadata(shard_set(), Thresholds::with_buckets(BUCKETS))
            })
            .collect();
        for f in 0..FAMILIES {
            for series in 0..SERIES {
                let shard = shard(series);
                for touch in 0..TOUCHES {
                    counters[f].inc(Shard { shard: &shard });
                    latencies[f].observe(Shard { shard: &shard }, observation(values, f, series, touch));
                }
            }
        }
        Self {
            counter_names: (0..FAMILIES).map(|f| format!("{}_total", counter_name(f))).collect(),
            histogram_names: (0..FAMILIES).map(histogram_name).collect(),
            counters,
            latencies,
            encoder: measured::text::BufferedTextEncoder::new(),
        }
    }
}

impl Exposition for MeasuredExposition {
    fn render(&mut self) -> usize {
        self.encode().len()
    }

    fn text(&mut self) -> String {
        String::from_utf8(self.encode().to_vec()).unwrap()
    }
}

impl MeasuredExposition {
    /// Encodes every family; returns the encoder's output (`bytes::Bytes`).
    fn encode(&mut self) -> impl std::ops::Deref<Target = [u8]> {
        use measured::metric::MetricFamilyEncoding;
        use measured::metric::group::Encoding;
        use measured::metric::name::MetricName;
        let enc = &mut self.encoder;
        for (name, family) in self.counter_names.iter().zip(&self.counters) {
            let name = MetricName::try_from_str(name).unwrap();
            enc.write_help(name, "Bench counter.").unwrap();
            family.collect_family_into(name, enc).unwrap();
        }
        for (name, family) in self.histogram_names.iter().zip(&self.latencies) {
            let name = MetricName::try_from_str(name).unwrap();
            enc.write_help(name, "Bench latency.").unwrap();
            family.collect_family_into(name, enc).unwrap();
        }
        black_box(enc.finish())
    }
}

/// metrics-exporter-prometheus: `PrometheusHandle::render` (a new `String` per render).
struct MetricsExposition {
    handle: PrometheusHandle,
}

impl MetricsExposition {
    fn new(values: &[f64]) -> Self {
        let recorder = metrics_recorder();
        metrics::with_local_recorder(&recorder, || {
            for f in 0..FAMILIES {
                let counter = format!("{}_total", counter_name(f));
                let latency = histogram_name(f);
                metrics::describe_counter!(counter.clone(), "Bench counter.");
                metrics::describe_histogram!(latency.clone(), "Bench latency.");
                for series in 0..SERIES {
                    for touch in 0..TOUCHES {
                        metrics::counter!(counter.clone(), "shard" => shard(series)).increment(1);
                        metrics::histogram!(latency.clone(), "shard" => shard(series))
                            .record(observation(values, f, series, touch));
                    }
                }
            }
        });
        Self { handle: recorder.handle() }
    }
}

impl Exposition for MetricsExposition {
    fn render(&mut self) -> usize {
        black_box(self.handle.render()).len()
    }

    fn text(&mut self) -> String {
        self.handle.render()
    }
}

fn render_1000_series(c: &mut Criterion) {
    let values = latencies();
    let mut peers: Vec<(&str, Box<dyn Exposition>)> = vec![
        ("plimsoll", Box::new(PlimsollExposition::new(&values, plimsoll::Format::Prometheus))),
        ("plimsoll_openmetrics", Box::new(PlimsollExposition::new(&values, plimsoll::Format::OpenMetrics))),
        ("prometheus", Box::new(PrometheusExposition::new(&values))),
        ("prometheus_client", Box::new(PrometheusClientExposition::new(&values))),
        ("measured", Box::new(MeasuredExposition::new(&values))),
        ("metrics", Box::new(MetricsExposition::new(&values))),
    ];

    let mut allocations = Vec::new();
    let mut sizes = Vec::new();
    for (name, peer) in &mut peers {
        let text = peer.text();
        check_exposition(name, &text);
        assert_eq!(peer.render(), text.len(), "{name}: rendered length");
        let per_render = allocations_per_call(|| {
            black_box(peer.render());
        });
        if name.starts_with("plimsoll") {
            assert_eq!(per_render, 0.0, "{name} allocated while rendering");
        }
        allocations.push(format!("{name} {per_render}"));
        sizes.push(format!("{name} {}", text.len()));
    }
    println!("allocations per render: {}", allocations.join(", "));
    println!("bytes per render: {}", sizes.join(", "));

    let mut group = c.benchmark_group("render_1000_series");
    group.sample_size(30);
    for (name, peer) in &mut peers {
        group.bench_function(*name, |b| b.iter(|| peer.render()));
    }
    group.finish();
}

/// The protobuf exposition of the same 1000 series: Plimsoll's (native and classic
/// buckets per histogram, written into a fixed buffer) beside its own text renderer and
/// prometheus-client's `prometheus_protobuf::encode_to_vec` (classic buckets, built as
/// prost messages, then encoded into a new `Vec`).
fn render_1000_series_protobuf(c: &mut Criterion) {
    let values = latencies();
    let plimsoll = PlimsollExposition::new(&values, plimsoll::Format::Protobuf);
    let text = PlimsollExposition::new(&values, plimsoll::Format::Prometheus);
    let client = PrometheusClientExposition::new(&values);
    assert!(PLIMSOLL_REGISTRY.max_message_len(plimsoll::Format::Protobuf) <= 8192);

    let render_plimsoll = |exposition: &PlimsollExposition| {
        let mut bytes = 0;
        exposition.render_with(|chunk| bytes += black_box(chunk).len());
        bytes
    };
    let render_client = || {
        let bytes = prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&client.registry).unwrap();
        black_box(bytes).len()
    };
    // Both protobuf expositions hold the 500 counter and 500 histogram series.
    let mut whole = Vec::new();
    plimsoll.render_with(|chunk| whole.extend_from_slice(chunk));
    let client_bytes = prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&client.registry).unwrap();
    for (peer, bytes) in [("plimsoll", &whole[..]), ("prometheus_client", &client_bytes[..])] {
        let series = count_protobuf_series(bytes);
        assert_eq!(series, FAMILIES * SERIES * 2, "{peer}: series");
    }
    let allocations = [
        (
            "plimsoll_protobuf",
            allocations_per_call(|| {
                black_box(render_plimsoll(&plimsoll));
            }),
        ),
        (
            "prometheus_client_protobuf",
            allocations_per_call(|| {
                black_box(render_client());
            }),
        ),
    ];
    assert_eq!(allocations[0].1, 0.0, "plimsoll allocated while rendering protobuf");
    println!("allocations per protobuf render: {allocations:?}");
    println!("protobuf bytes per render: plimsoll {}, prometheus_client {}", whole.len(), client_bytes.len());

    let mut group = c.benchmark_group("render_1000_series_protobuf");
    group.sample_size(30);
    group.bench_function("plimsoll_protobuf", |b| b.iter(|| render_plimsoll(&plimsoll)));
    group.bench_function("plimsoll_text", |b| b.iter(|| render_plimsoll(&text)));
    group.bench_function("prometheus_client_protobuf", |b| b.iter(render_client));
    group.finish();
}

/// Series (`Metric` messages) in a delimited `MetricFamily` stream, with prost and the
/// types prometheus-client generates from `metrics.proto`.
fn count_protobuf_series(mut bytes: &[u8]) -> usize {
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;
    use prost::Message;
    let mut series = 0;
    while !bytes.is_empty() {
        let family = MetricFamily::decode_length_delimited(&mut bytes).unwrap();
        if family.name.starts_with("bench_") {
            series += family.metric.len();
        }
    }
    series
}

// ---------------------------------------------------------------------------------------
// slo_record
// ---------------------------------------------------------------------------------------

fn slo_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("slo_record");
    counter_plimsoll_inc(&mut group);
    slo_plimsoll_record(&mut group);
    group.finish();
}

fn counter_plimsoll_inc(group: &mut BenchmarkGroup<'_, WallTime>) {
    static COUNTER: plimsoll::Counter = plimsoll::Counter::new();
    black_box(&COUNTER).inc();
    assert_eq!(COUNTER.get(), 1);
    group.bench_function("plimsoll_counter_inc", |b| b.iter(|| black_box(&COUNTER).inc()));
}

fn slo_plimsoll_record(group: &mut BenchmarkGroup<'_, WallTime>) {
    static SLO: plimsoll::Slo = plimsoll::Slo::new("api", 0.999, plimsoll::GoodEvent::Success);
    // 1 ms per event: a fresh minute slot every 60,000 events, a fresh hour slot (and a
    // fold into the all-time counts) every 3.6 million.
    let mut now: u64 = 0;
    for _ in 0..120_000 {
        now += 1;
        SLO.record(black_box(now), black_box(now % 1_000 != 0));
    }
    assert_eq!(SLO.events(now, plimsoll::SloWindow::M5), plimsoll::Events { good: 119_880, total: 120_000 });
    assert_eq!(SLO.cumulative().total, 120_000);
    group.bench_function("plimsoll_slo_record", |b| {
        b.iter(|| {
            now += 1;
            SLO.record(black_box(now), black_box(now % 1_000 != 0));
        })
    });
}

criterion_group! {
    name = benches;
    config = config();
    targets = counter_inc, labelled_inc, histogram_observe, render_1000_series, render_1000_series_protobuf, slo_record
}
criterion_main!(benches);
