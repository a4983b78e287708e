//! Zero allocations on every hot path and in rendering, counted by a global allocator.

use plimsoll::{Counter, Family, Format, Gauge, LatencyHistogram, Registry, Unlabelled};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations made by the current thread, so tests running in parallel on other
/// threads do not disturb the count.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread allocated minus bytes it freed: the growth of what it retains,
    /// as long as what it frees it also allocated (true of a current-thread runtime).
    static NET_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Adds `delta` bytes to this thread's net count.
fn count_bytes(delta: i64) {
    let _ = NET_BYTES.try_with(|n| n.set(n.get() + delta));
}

/// This thread's allocations so far and its net bytes (allocated minus freed).
pub(crate) fn thread_counts() -> (u64, i64) {
    (ALLOCATIONS.with(Cell::get), NET_BYTES.with(Cell::get))
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees carry over; counting touches only a const-initialised
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as i64);
        // SAFETY: forwarded with the caller's layout (see the impl's comment).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as i64);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        count_bytes(new_size as i64 - layout.size() as i64);
        // SAFETY: as above; `ptr` was allocated by `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_bytes(-(layout.size() as i64));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    let n = allocations_in(|| drop(vec![1u8; 16]));
    assert_eq!(n, 1, "the counting allocator must see a Vec's allocation");
}

#[test]
fn net_bytes_follow_allocations_and_frees() {
    let (_, before) = thread_counts();
    let mut kept = Vec::<u8>::with_capacity(100);
    assert_eq!(thread_counts().1 - before, 100);
    kept.reserve_exact(300);
    assert_eq!(thread_counts().1 - before, 300, "a realloc counts its change in size");
    drop(kept);
    assert_eq!(thread_counts().1 - before, 0);
}

#[test]
fn hot_paths_never_allocate() {
    static REQUESTS: Unlabelled<Counter> = Unlabelled::new("requests", "Requests.");
    static IN_FLIGHT: Unlabelled<Gauge> = Unlabelled::new("in_flight", "In flight.");
    static LATENCY: Unlabelled<LatencyHistogram> = Unlabelled::new("latency_seconds", "Latency.");
    static BY_ROUTE: Family<Counter, 2, 64> = Family::new("by_route", "By route.", ["method", "status"]);
    BY_ROUTE.with_label_values(&["GET", "200"]).inc();

    assert_eq!(allocations_in(|| (0..1000).for_each(|_| REQUESTS.inc())), 0, "counter inc");
    assert_eq!(allocations_in(|| (0..1000).for_each(|i| IN_FLIGHT.set(i))), 0, "gauge set");
    let record = || (0..1000).for_each(|i| LATENCY.record(f64::from(i) * 1e-3));
    assert_eq!(allocations_in(record), 0, "histogram record");
    let lookup = || (0..1000).for_each(|_| BY_ROUTE.with_label_values(&["GET", "200"]).inc());
    assert_eq!(allocations_in(lookup), 0, "labelled lookup of an existing series");
    assert_eq!(BY_ROUTE.with_label_values(&["GET", "200"]).get(), 1001);
    assert_eq!(REQUESTS.get(), 1000);
}

#[test]
fn inserting_and_overflowing_never_allocate() {
    static KEYS: Family<Counter, 1, 8> = Family::new("keys", "Keys.", ["key"]);
    let names: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    let n = allocations_in(|| names.iter().for_each(|k| KEYS.with_label_values(&[k.as_str()]).inc()));
    assert_eq!(n, 0, "new series and overflow");
}

#[test]
fn rendering_a_thousand_series_into_4_kib_never_allocates() {
    static REGISTRY: Registry<16> = Registry::new();
    let families = crate::exposition::register_thousand_series(&REGISTRY);
    let mut buf = [0u8; 4096];
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let mut bytes = 0;
        let mut lines = 0;
        let n = allocations_in(|| {
            let mut renderer = REGISTRY.renderer(format);
            while !renderer.is_done() {
                let n = renderer.render(&mut buf).expect("4 KiB holds every line");
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                bytes += n;
            }
        });
        assert_eq!(n, 0, "{format:?} render of {families} families");
        assert!(bytes > 100_000, "rendered {bytes} bytes");
        assert!(lines > 7_500, "rendered {lines} lines");
    }
}

#[test]
fn rendering_a_thousand_series_as_protobuf_never_allocates() {
    static REGISTRY: Registry<16> = Registry::new();
    let families = crate::exposition::register_thousand_series(&REGISTRY);
    let mut buf = vec![0u8; REGISTRY.max_message_len(Format::Protobuf).max(4096)];
    let mut rendered = Vec::with_capacity(1 << 20);
    let n = allocations_in(|| {
        let mut renderer = REGISTRY.renderer(Format::Protobuf);
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).expect("the buffer holds every message");
            rendered.extend_from_slice(&buf[..n]);
        }
    });
    assert_eq!(n, 0, "protobuf render of {families} families");
    let messages = crate::protobuf::decode(&rendered);
    let series = messages.iter().filter(|m| !m.name.starts_with("plimsoll_")).count();
    assert!(series >= 1_000, "rendered {series} series in {} bytes", rendered.len());
}

#[test]
fn recording_slo_events_never_allocates() {
    use plimsoll::{GoodEvent, Slo, SloExport};
    static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    static CHECKOUT: Slo = Slo::new("checkout", 0.99, GoodEvent::LatencyAtMost(0.3));
    static SLOS: SloExport<2> = SloExport::new();
    static REGISTRY: Registry<16> = Registry::new();
    SLOS.add(&API).expect("valid SLO");
    SLOS.add(&CHECKOUT).expect("valid SLO");
    SLOS.register(&REGISTRY).expect("room for the SLO families");

    // 200 ms apart over 10,000 events: 33 minutes, crossing minute and hour slots, so the
    // slot resets (and the hour ring's fold) run too.
    let good_and_bad = || (0..10_000u64).for_each(|i| API.record(i * 200, i % 100 != 0));
    assert_eq!(allocations_in(good_and_bad), 0, "Slo::record");
    let latencies = || (0..10_000u64).for_each(|i| CHECKOUT.record_latency(i * 200, (i % 7) as f64 * 0.1));
    assert_eq!(allocations_in(latencies), 0, "Slo::record_latency");
    let invalid = || [f64::NAN, -1.0, f64::INFINITY].into_iter().for_each(|l| CHECKOUT.record_latency(0, l));
    assert_eq!(allocations_in(invalid), 0, "invalid latencies");
    assert_eq!(allocations_in(|| SLOS.update(2_000_000)), 0, "SloExport::update");
    assert_eq!(API.events(2_000_000, plimsoll::SloWindow::H1).total, 10_000);
    assert_eq!(CHECKOUT.invalid_events(), 3);
}

#[test]
fn recording_into_windows_never_allocates() {
    use plimsoll::{LatencyWindow, MinMaxWindow, RateWindow};
    static RATE: RateWindow = RateWindow::new();
    static LATENCY: LatencyWindow = LatencyWindow::new();
    static DEPTH: MinMaxWindow = MinMaxWindow::new();
    // 10 ms apart over 100,000 events: 1,000 s, so every window opens and resets slots,
    // and a clock step backwards takes the late path.
    let record = || {
        for i in 0..100_000u64 {
            let now = if i % 1_000 == 999 { (i * 10).saturating_sub(30_000) } else { i * 10 };
            RATE.inc(now);
            LATENCY.record(now, (i % 500) as f64 * 1e-3);
            DEPTH.observe(now, (i % 64) as i64);
        }
    };
    assert_eq!(allocations_in(record), 0, "window records");
    let read = || {
        assert!(RATE.rate_per_second(1_000_000, 60_000).is_some());
        assert!(LATENCY.quantile(1_000_000, 300_000, 0.99).is_some());
        assert!(DEPTH.min_max(1_000_000, 3_600_000).is_some());
    };
    assert_eq!(allocations_in(read), 0, "window reads");
    assert!(RATE.late_events() > 0);
}

#[test]
fn memory_history_record_assess_and_export_never_allocate() {
    use plimsoll::{MemoryExport, MemoryHistory};
    static RSS: MemoryHistory = MemoryHistory::new("rss");
    static MEMORY: MemoryExport<1> = MemoryExport::new();
    static REGISTRY: Registry<16> = Registry::new();
    MEMORY.add(&RSS).expect("valid history");
    MEMORY.register(&REGISTRY).expect("room for the memory families");
    // Six hours of 10 s samples leaking 10 MiB/h over a 100 MiB base.
    let record = || {
        for i in 0..2_160u64 {
            RSS.record(i * 10_000, (100 << 20) + i * 10 * (10 << 20) / 3_600);
        }
    };
    assert_eq!(allocations_in(record), 0, "MemoryHistory::record");
    let now = 2_160 * 10_000;
    // `assess` keeps ~21 KB of arrays on the stack: run it on a thread with room.
    let assess = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let mut assessment = None;
            let assessing = allocations_in(|| assessment = Some(RSS.assess(now, Some(512 << 20))));
            let updating = allocations_in(|| MEMORY.update(now, Some(512 << 20)));
            assert_eq!(assessment.map(|a| a.verdict), Some(plimsoll::Verdict::LeakSuspected));
            (assessing, updating)
        })
        .expect("spawn")
        .join()
        .expect("join");
    assert_eq!(assess, (0, 0), "MemoryHistory::assess and MemoryExport::update");
}

#[test]
fn memory_sampling_retains_nothing() {
    use plimsoll::sampler::{CgroupSampler, CgroupVersion, ProcessSampler};
    let dir = std::env::temp_dir().join(format!("plimsoll-alloc-cgroup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memory.current"), "104857600\n").unwrap();
    std::fs::write(dir.join("memory.max"), "536870912\n").unwrap();
    std::fs::write(dir.join("memory.peak"), "209715200\n").unwrap();
    let cgroup = CgroupSampler::at(CgroupVersion::V2, &dir, |_| {});
    let process = ProcessSampler::current();
    cgroup.sample();
    process.sample();

    let cgroup_allocations = allocations_in(|| {
        for _ in 0..100 {
            assert_eq!(cgroup.sample().limit_bytes, Some(512 << 20));
        }
    });
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(cgroup_allocations, 0, "reading cgroup files into a stack buffer allocates nothing");

    // Counting open file descriptors lists /proc/self/fd, whose iterator allocates while
    // it runs; everything else reads into a stack buffer. Nothing is kept.
    let (_, before) = thread_counts();
    for _ in 0..100 {
        assert!(process.sample().rss_bytes.is_some());
    }
    let (_, after) = thread_counts();
    assert_eq!(after - before, 0, "100 process samples retained {} bytes", after - before);
}

#[test]
fn security_query_and_resilience_hot_paths_never_allocate() {
    use plimsoll::query::hints::Hints;
    use plimsoll::{
        BreakerConfig, CircuitBreaker, EventKind, Quota, RateLimiter, SecurityEvents, SlowQueryTracker, SlowSpans,
        SlowSpansConfig, ThreatRules, TopK, fingerprint,
    };
    use std::num::NonZeroU32;
    static LIMITER: RateLimiter<64> = RateLimiter::new("api", Quota::per_second(NonZeroU32::new(10).unwrap()));
    static OFFENDERS: TopK<16> = TopK::new();
    static EVENTS: SecurityEvents<32, 64> = SecurityEvents::new(ThreatRules::DEFAULT);
    static QUERIES: SlowQueryTracker<8, 120> = SlowQueryTracker::new();
    static BREAKER: CircuitBreaker<20> = CircuitBreaker::new("db", BreakerConfig::DEFAULT);
    static SPANS: SlowSpans<4, 5> = SlowSpans::new(SlowSpansConfig::DEFAULT);
    let sql: Vec<String> =
        (0..50).map(|i| format!("SELECT * FROM t{} WHERE id = {i} AND name = 'n{i}'", i % 12)).collect();

    // Many keys (evictions), limits, events and rule hits, more fingerprints than slots,
    // span names beyond the table, and a breaker that opens and half-opens.
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            let key = i % 200;
            if matches!(LIMITER.check(key, i), plimsoll::Decision::Limited { .. }) {
                OFFENDERS.add(key, 1);
                EVENTS.limit_violation(key, i);
            }
            EVENTS.record(EventKind::NotFound, key, 404, i);
            EVENTS.auth_failure(key, i);
            let query = fingerprint(&sql[(i % 50) as usize]);
            QUERIES.record(query.hash(), query.text(), i * 37 % 300_000, i);
            let hints: Hints = Hints::of(query.text());
            assert!(hints.indexes().count() <= 1);
            if BREAKER.try_acquire(i).is_ok() {
                if i % 3 == 0 { BREAKER.on_error(10, i) } else { BREAKER.on_success(10, i) }
            }
            SPANS.record(["a", "b", "c", "d", "e", "f"][(i % 6) as usize], i, i % 5_000, None, i);
        }
    });
    assert_eq!(n, 0, "rate limits, top-k, security events, fingerprints, hints, slow queries, breaker, spans");
    assert!(OFFENDERS.total() > 0 && EVENTS.total() > 0 && QUERIES.queries() == 10_000);
    assert!(SPANS.name_overflow() > 0, "span names beyond the table were exercised");
}

/// The allocation audit: every monitor at large capacities, initialised, then every hot
/// path driven a million times from two threads (and rendered), with zero allocations and
/// zero frees after initialisation; and a footprint report whose lines add up to the
/// monitor's size, so no state goes unaccounted.
mod audit {
    use super::thread_counts;
    use plimsoll::topk::TopKExport;
    use plimsoll::{
        BreakerConfig, BreakerExport, CircuitBreaker, Counter, Decision, EventKind, Family, Format, Gauge, GoodEvent,
        LatencyHistogram, LatencyWindow, MemoryExport, MemoryHistory, Quota, RateLimitExport, RateLimiter, RateWindow,
        Registry, SecurityEvents, Slo, SloExport, SlowQueryTracker, SlowSpans, SlowSpansConfig, ThreatRules, TopK,
        Unlabelled, fingerprint,
    };
    use std::num::NonZeroU32;

    /// Every monitor of a large deployment in one static: its size is the total.
    struct Monitor {
        registry: Registry<64>,
        requests: Family<Counter, 3, 256>,
        latency: Family<LatencyHistogram, 1, 32>,
        in_flight: Unlabelled<Gauge>,
        rate: RateWindow,
        recent_latency: LatencyWindow,
        slo: Slo,
        slos: SloExport<1>,
        rss: MemoryHistory,
        memory: MemoryExport<1>,
        limiter: RateLimiter<16_384>,
        limits: RateLimitExport<1>,
        events: SecurityEvents<512, 4_096>,
        offenders: TopK<64>,
        queries: SlowQueryTracker<128, 120>,
        breaker: CircuitBreaker<100>,
        breakers: BreakerExport<1>,
        spans: SlowSpans<64, 10>,
    }

    static MONITOR: Monitor = Monitor {
        registry: Registry::new(),
        requests: Family::new("audit_requests", "Requests.", ["method", "route", "status"]),
        latency: Family::new("audit_latency_seconds", "Latency.", ["route"]).unit("seconds"),
        in_flight: Unlabelled::new("audit_in_flight", "In flight."),
        rate: RateWindow::new(),
        recent_latency: LatencyWindow::new(),
        slo: Slo::new("audit", 0.999, GoodEvent::LatencyAtMost(0.3)),
        slos: SloExport::new(),
        rss: MemoryHistory::new("rss"),
        memory: MemoryExport::new(),
        limiter: RateLimiter::new("audit", Quota::per_second(NonZeroU32::new(100).unwrap())),
        limits: RateLimitExport::new(),
        events: SecurityEvents::new(ThreatRules::DEFAULT),
        offenders: TopK::new(),
        queries: SlowQueryTracker::new(),
        breaker: CircuitBreaker::new("audit", BreakerConfig::DEFAULT),
        breakers: BreakerExport::new(),
        spans: SlowSpans::new(SlowSpansConfig::DEFAULT),
    };
    // Refers to a table in `MONITOR`, so it is a static of its own.
    static OFFENDERS: TopKExport<64> = TopKExport::new(&MONITOR.offenders, "audit_top_limited", "Top limited keys.");

    const OPS_PER_THREAD: u64 = 500_000;

    /// One hot-path operation, chosen by `i`, at time `i` ms (a clock that moves on).
    fn operate(thread: u64, i: u64, sql: &[String]) {
        let m = &MONITOR;
        let now_ms = 1_000_000 + i;
        let key = (i * 7919 + thread) % 20_000;
        match i % 10 {
            0 => m.requests.with_label_values(&[["GET", "POST"][(i % 2) as usize], "/items/:id", "200"]).inc(),
            1 => {
                let seconds = (i % 1_000) as f64 * 1e-3;
                m.latency.with_label_values(&["/items/:id"]).record(seconds);
                m.recent_latency.record(now_ms, seconds);
                m.slo.record_latency(now_ms, seconds);
            }
            2 => {
                m.in_flight.set((i % 64) as i64);
                m.rate.add(now_ms, 1);
                m.rss.record(now_ms, 100 << 20);
            }
            3 => {
                if matches!(m.limiter.check(key, now_ms), Decision::Limited { .. }) {
                    m.offenders.add(key, 1);
                }
            }
            4 => {
                m.events.record(EventKind::NotFound, key, 404, now_ms);
            }
            5 => {
                m.events.auth_failure(key % 50, now_ms);
            }
            6 => {
                let query = fingerprint(&sql[(i % sql.len() as u64) as usize]);
                m.queries.record(query.hash(), query.text(), i % 200_000, now_ms);
            }
            7 => {
                if m.breaker.try_acquire(now_ms).is_ok() {
                    if i % 7 == 0 { m.breaker.on_error(5, now_ms) } else { m.breaker.on_success(5, now_ms) }
                }
            }
            8 => m.spans.record(["load", "save", "auth"][(i % 3) as usize], now_ms, i % 50_000, None, now_ms),
            _ => m.offenders.add(key % 100, 1),
        }
    }

    fn init() {
        let m = &MONITOR;
        let r = &m.registry;
        r.register(&m.requests).unwrap();
        r.register(&m.latency).unwrap();
        r.register(&m.in_flight).unwrap();
        m.slos.add(&m.slo).unwrap();
        m.slos.register(r).unwrap();
        m.memory.add(&m.rss).unwrap();
        m.memory.register(r).unwrap();
        m.limits.add(&m.limiter).unwrap();
        m.limits.register(r).unwrap();
        m.events.register(r).unwrap();
        OFFENDERS.register(r).unwrap();
        m.queries.register(r).unwrap();
        m.breakers.add(&m.breaker).unwrap();
        m.breakers.register(r).unwrap();
        m.spans.register(r).unwrap();
    }

    #[test]
    fn a_full_monitor_allocates_nothing_after_init() {
        init();
        let sql: Vec<String> = (0..64).map(|i| format!("SELECT * FROM t{} WHERE id = {i}", i % 24)).collect();
        let sql = &sql;
        let counts: Vec<(u64, i64)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2u64)
                .map(|thread| {
                    scope.spawn(move || {
                        let before = thread_counts();
                        for i in 0..OPS_PER_THREAD {
                            operate(thread, i, sql);
                        }
                        let now_ms = 1_000_000 + OPS_PER_THREAD;
                        MONITOR.slos.update(now_ms);
                        MONITOR.memory.update(now_ms, Some(512 << 20));
                        MONITOR.breakers.update(now_ms);
                        MONITOR.queries.update();
                        OFFENDERS.update();
                        let mut buf = [0u8; 8192];
                        for format in [Format::Prometheus, Format::OpenMetrics] {
                            let mut renderer = MONITOR.registry.renderer(format);
                            while !renderer.is_done() {
                                renderer.render(&mut buf).expect("8 KiB holds any line");
                            }
                        }
                        let after = thread_counts();
                        (after.0 - before.0, after.1 - before.1)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("a driver thread")).collect()
        });
        for (thread, (allocations, net_bytes)) in counts.iter().enumerate() {
            assert_eq!(*allocations, 0, "thread {thread}: allocations after init");
            assert_eq!(*net_bytes, 0, "thread {thread}: bytes allocated minus freed after init");
        }
        let per_case = 2 * OPS_PER_THREAD / 10;
        assert_eq!(MONITOR.queries.queries(), per_case, "every query recorded");
        assert_eq!(MONITOR.events.count(EventKind::NotFound), per_case, "every 404 counted");
        assert_eq!(MONITOR.rate.sum(1_000_000 + OPS_PER_THREAD, 3_600_000), 2 * OPS_PER_THREAD / 10, "no lost update");
        println!("audit: {} operations over 2 threads, 2 renders each: 0 allocations, 0 frees", 2 * OPS_PER_THREAD);
    }

    #[test]
    fn the_footprint_report_adds_up_to_the_monitor() {
        let lines: [(&str, usize); 18] = [
            ("Registry<64>", Registry::<64>::FOOTPRINT),
            ("Family<Counter, 3, 256>", Family::<Counter, 3, 256>::FOOTPRINT),
            ("Family<LatencyHistogram, 1, 32>", Family::<LatencyHistogram, 1, 32>::FOOTPRINT),
            ("Unlabelled<Gauge>", Unlabelled::<Gauge>::FOOTPRINT),
            ("RateWindow", RateWindow::FOOTPRINT),
            ("LatencyWindow", LatencyWindow::FOOTPRINT),
            ("Slo", Slo::<361, 721>::FOOTPRINT),
            ("SloExport<1>", SloExport::<1>::FOOTPRINT),
            ("MemoryHistory", MemoryHistory::<241, 30_000, 289, 600_000>::FOOTPRINT),
            ("MemoryExport<1>", MemoryExport::<1>::FOOTPRINT),
            ("RateLimiter<16384>", RateLimiter::<16_384>::FOOTPRINT),
            ("RateLimitExport<1>", RateLimitExport::<1>::FOOTPRINT),
            ("SecurityEvents<512, 4096>", SecurityEvents::<512, 4_096>::FOOTPRINT),
            ("TopK<64>", TopK::<64>::FOOTPRINT),
            ("SlowQueryTracker<128, 120>", SlowQueryTracker::<128, 120>::FOOTPRINT),
            ("CircuitBreaker<100>", CircuitBreaker::<100>::FOOTPRINT),
            ("BreakerExport<1>", BreakerExport::<1>::FOOTPRINT),
            ("SlowSpans<64, 10>", SlowSpans::<64, 10>::FOOTPRINT),
        ];
        let mut report = String::new();
        for (what, bytes) in lines {
            report.push_str(&format!("{what:<34} {bytes:>10}\n"));
        }
        let sum: usize = lines.iter().map(|&(_, bytes)| bytes).sum();
        report.push_str(&format!("{:<34} {sum:>10}\n", "total"));
        println!("{report}");
        // Every component is a multiple of 8 bytes, so the struct has no padding: its size
        // equals the sum exactly when each FOOTPRINT covers all of that component's state.
        assert_eq!(sum, size_of::<Monitor>(), "footprints do not add up to the monitor:\n{report}");
        let with_export = sum + TopKExport::<64>::FOOTPRINT;
        println!("plus TopKExport<64> {}: {with_export} bytes in all", TopKExport::<64>::FOOTPRINT);
    }
}
