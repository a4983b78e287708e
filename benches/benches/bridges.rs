//! Plimsoll's `metrics` facade recorder against metrics-exporter-prometheus's
//! `PrometheusRecorder`, side by side in one run.
//!
//! First, untimed: each recorder's retained heap after 1,000 distinct label values
//! (warm-up) and after 100,000 more, recorded through `counter!` with a dynamic label and
//! counted by a global allocator (bytes allocated minus bytes freed while recording), and
//! printed. Then, timed, each recorder in the same criterion group:
//!
//! - `counter_dynamic_labels`: a counter whose `method` and `status` labels come from a
//!   set of 20 at run time, through the macro (`counter!(...).increment(1)`: the facade
//!   builds the key's label list, the recorder looks the key up), through
//!   `metrics::Recorder::register_counter` with a prebuilt key (the recorder's lookup
//!   alone), and through held handles (`Counter::increment`);
//! - `histogram_record`: one observation, values log-uniform over 1 µs .. 10 s, through
//!   the macro and through a held handle. metrics-exporter-prometheus queues values and
//!   folds them into its histogram on upkeep; the upkeep runs after each timed batch,
//!   outside the timing.
//!
//! Macros run under `metrics::with_local_recorder`, so both recorders are reached the same
//! way. Each bench checks its answer before it is timed.
//!
//! Run with `cargo bench -p plimsoll-benches --bench bridges`.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use plimsoll::bridge::metrics::MetricsRecorder;
use plimsoll::{Format, Registry};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Retained heap
// ---------------------------------------------------------------------------------------

/// The system allocator, adding up bytes allocated minus bytes freed while [`COUNTING`]
/// is set (off during the timed benches, where the peers that allocate then pay one
/// relaxed load per allocation).
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicI64 = AtomicI64::new(0);

#[inline]
fn count(delta: i64) {
    if COUNTING.load(Relaxed) {
        NET_BYTES.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly as `System` does; the counter has no effect on it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Bytes allocated and not freed while `f` ran: what it left on the heap. The bench is
/// single-threaded while this runs, so nothing else allocates meanwhile.
fn retained(f: impl FnOnce()) -> i64 {
    NET_BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    f();
    COUNTING.store(false, Relaxed);
    NET_BYTES.load(Relaxed)
}

/// `requests_total` with a `user` label of each value in `users`, through the macro.
fn distinct_users(recorder: &dyn Recorder, users: std::ops::Range<u32>) {
    metrics::with_local_recorder(recorder, || {
        for user in users {
            metrics::counter!("requests_total", "user" => format!("user-{user}")).increment(1);
        }
    });
}

fn memory() {
    static REGISTRY: Registry<16> = Registry::new();
    // 16 names of each kind, 64 label sets each: the recorder the timed benches use.
    static RECORDER: MetricsRecorder<16, 64> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    let plimsoll = &RECORDER;
    let peer = metrics_recorder();

    let plimsoll_warm_up = retained(|| distinct_users(&plimsoll, 0..1_000));
    let plimsoll_more = retained(|| distinct_users(&plimsoll, 1_000..101_000));
    let peer_warm_up = retained(|| distinct_users(&peer, 0..1_000));
    let peer_more = retained(|| distinct_users(&peer, 1_000..101_000));

    // Both counted every increment: Plimsoll in 64 series and the overflow series.
    let text = render(&REGISTRY);
    assert_contains("plimsoll", &text, "requests_total{user=\"__overflow__\"} 100936");
    assert_contains("plimsoll", &text, "plimsoll_series_overflow_total{family=\"requests\"} 100936");
    assert_contains("metrics", &peer.handle().render(), "requests_total{user=\"user-100999\"} 1");
    assert_eq!(plimsoll_more, 0, "Plimsoll's recorder retained memory after warm-up");
    assert!(peer_more > 0, "the peer's recorder is expected to keep every label set");

    let fixed = MetricsRecorder::<16, 64>::FOOTPRINT;
    println!("retained heap, `counter!(\"requests_total\", \"user\" => ...)` with distinct users:");
    println!("  recorder                      first 1,000   next 100,000   fixed (static)");
    println!("  plimsoll MetricsRecorder<16,64> {plimsoll_warm_up:>9} B {plimsoll_more:>12} B {fixed:>12} B");
    println!("  metrics-exporter-prometheus   {peer_warm_up:>9} B {peer_more:>12} B {:>12} B", 0);
    println!(
        "  (Plimsoll's heap: at most {} handle Arcs, ever; its tables are the static)",
        MetricsRecorder::<16, 64>::MAX_HANDLES
    );
}

// ---------------------------------------------------------------------------------------
// Shared inputs
// ---------------------------------------------------------------------------------------

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// Prometheus' default classic buckets, used by the peer's histograms.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// HTTP methods and statuses: 5 x 4 = 20 label sets.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const STATUSES: [&str; 4] = ["200", "404", "500", "503"];

fn request_labels() -> impl Iterator<Item = (&'static str, &'static str)> {
    METHODS.into_iter().flat_map(|m| STATUSES.into_iter().map(move |s| (m, s)))
}

/// The 20 keys of `http_requests_total`.
fn request_keys() -> Vec<Key> {
    request_labels()
        .map(|(m, s)| Key::from_parts("http_requests_total", vec![Label::new("method", m), Label::new("status", s)]))
        .collect()
}

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

/// An index cycling through `0..n` (a power of two or not), for the timed loops.
struct Cycle {
    n: usize,
    at: usize,
}

impl Cycle {
    fn new(n: usize) -> Self {
        Self { n, at: 0 }
    }

    #[inline]
    fn next(&mut self) -> usize {
        let at = self.at;
        self.at = if at + 1 == self.n { 0 } else { at + 1 };
        black_box(at)
    }
}

fn metrics_recorder() -> PrometheusRecorder {
    PrometheusBuilder::new().set_buckets(&BUCKETS).expect("valid buckets").build_recorder()
}

fn render<const F: usize>(registry: &Registry<F>) -> String {
    let mut renderer = registry.renderer(Format::Prometheus);
    let mut buf = vec![0u8; 16 << 10];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).expect("16 KiB holds any line");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).expect("UTF-8")
}

fn assert_contains(peer: &str, text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "{peer}: no line {line:?} in:\n{text}");
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

/// One recorder under test: the `Recorder` the macros reach, how to read its exposition
/// and how to fold queued histogram values (the peer's upkeep).
struct Subject<'a> {
    name: &'static str,
    recorder: &'a dyn Recorder,
    exposition: &'a dyn Fn() -> String,
    upkeep: &'a dyn Fn(),
}

// ---------------------------------------------------------------------------------------
// counter_dynamic_labels
// ---------------------------------------------------------------------------------------

fn counter_dynamic_labels(c: &mut Criterion) {
    static REGISTRY: Registry<64> = Registry::new();
    static RECORDER: MetricsRecorder<16, 64> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    let plimsoll = &RECORDER;
    let peer = metrics_recorder();
    let peer_handle = peer.handle();
    let mut group = c.benchmark_group("counter_dynamic_labels");
    for subject in [
        Subject { name: "plimsoll", recorder: &plimsoll, exposition: &|| render(&REGISTRY), upkeep: &|| {} },
        Subject {
            name: "metrics_exporter_prometheus",
            recorder: &peer,
            exposition: &|| peer_handle.render(),
            upkeep: &|| peer_handle.run_upkeep(),
        },
    ] {
        counter_macro(&mut group, &subject);
        counter_register(&mut group, &subject);
        counter_handle(&mut group, &subject);
    }
    group.finish();
}

fn counter_macro(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>) {
    let labels: Vec<_> = request_labels().collect();
    metrics::with_local_recorder(s.recorder, || {
        for &(method, status) in &labels {
            metrics::counter!("http_requests_total", "method" => method, "status" => status).increment(1);
        }
    });
    let line = "http_requests_total{method=\"PATCH\",status=\"503\"} 1";
    assert_contains(s.name, &(s.exposition)(), line);
    let mut cycle = Cycle::new(labels.len());
    group.bench_function(format!("{}/macro", s.name), |b| {
        metrics::with_local_recorder(s.recorder, || {
            b.iter(|| {
                let (method, status) = labels[cycle.next()];
                metrics::counter!("http_requests_total", "method" => method, "status" => status).increment(1)
            })
        })
    });
}

fn counter_register(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>) {
    let keys = request_keys();
    let before = count_of(&(s.exposition)(), "http_requests_total{method=\"GET\",status=\"200\"}");
    s.recorder.register_counter(&keys[0], &METADATA).increment(1);
    let after = count_of(&(s.exposition)(), "http_requests_total{method=\"GET\",status=\"200\"}");
    assert_eq!(after, before + 1, "{}: register_counter records into the series", s.name);
    let mut cycle = Cycle::new(keys.len());
    group.bench_function(format!("{}/register", s.name), |b| {
        b.iter(|| s.recorder.register_counter(&keys[cycle.next()], &METADATA).increment(1))
    });
}

fn counter_handle(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>) {
    let handles: Vec<metrics::Counter> =
        request_keys().iter().map(|key| s.recorder.register_counter(key, &METADATA)).collect();
    let before = count_of(&(s.exposition)(), "http_requests_total{method=\"PUT\",status=\"404\"}");
    handles.iter().for_each(|h| h.increment(1));
    let after = count_of(&(s.exposition)(), "http_requests_total{method=\"PUT\",status=\"404\"}");
    assert_eq!(after, before + 1, "{}: a held handle records into its series", s.name);
    let mut cycle = Cycle::new(handles.len());
    group.bench_function(format!("{}/handle", s.name), |b| b.iter(|| handles[cycle.next()].increment(1)));
}

/// The value of the sample named `series` in `text`.
fn count_of(text: &str, series: &str) -> u64 {
    let line = text.lines().find_map(|l| l.strip_prefix(series)).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    line.trim().parse().expect("a counter value")
}

// ---------------------------------------------------------------------------------------
// histogram_record
// ---------------------------------------------------------------------------------------

fn histogram_record(c: &mut Criterion) {
    static REGISTRY: Registry<64> = Registry::new();
    static RECORDER: MetricsRecorder<16, 64> = MetricsRecorder::new();
    RECORDER.register(&REGISTRY).expect("room for the recorder's families");
    let plimsoll = &RECORDER;
    let peer = metrics_recorder();
    let peer_handle = peer.handle();
    let values = latencies();
    let mut group = c.benchmark_group("histogram_record");
    for subject in [
        Subject { name: "plimsoll", recorder: &plimsoll, exposition: &|| render(&REGISTRY), upkeep: &|| {} },
        Subject {
            name: "metrics_exporter_prometheus",
            recorder: &peer,
            exposition: &|| peer_handle.render(),
            upkeep: &|| peer_handle.run_upkeep(),
        },
    ] {
        histogram_macro(&mut group, &subject, &values);
        histogram_handle(&mut group, &subject, &values);
    }
    group.finish();
}

/// Times `record` over `values`, folding the peer's queue after each batch, untimed.
fn timed_records(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>, id: &str, mut record: impl FnMut()) {
    group.bench_function(format!("{}/{id}", s.name), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                record();
            }
            let elapsed = start.elapsed();
            (s.upkeep)();
            elapsed
        })
    });
}

fn histogram_macro(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>, values: &[f64]) {
    metrics::with_local_recorder(s.recorder, || {
        values.iter().for_each(|&v| metrics::histogram!("macro_latency_seconds").record(v));
    });
    assert_contains(s.name, &(s.exposition)(), &format!("macro_latency_seconds_count {}", values.len()));
    let mut cycle = Cycle::new(values.len());
    metrics::with_local_recorder(s.recorder, || {
        timed_records(group, s, "macro", || {
            metrics::histogram!("macro_latency_seconds").record(values[cycle.next()]);
        })
    });
}

fn histogram_handle(group: &mut BenchmarkGroup<'_, WallTime>, s: &Subject<'_>, values: &[f64]) {
    let histogram = s.recorder.register_histogram(&Key::from_name("handle_latency_seconds"), &METADATA);
    values.iter().for_each(|&v| histogram.record(v));
    assert_contains(s.name, &(s.exposition)(), &format!("handle_latency_seconds_count {}", values.len()));
    let mut cycle = Cycle::new(values.len());
    timed_records(group, s, "handle", || histogram.record(values[cycle.next()]));
}

fn retained_heap(_: &mut Criterion) {
    memory();
}

criterion_group! {
    name = benches;
    config = config();
    targets = retained_heap, counter_dynamic_labels, histogram_record
}
criterion_main!(benches);
