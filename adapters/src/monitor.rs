//! The memory monitor on Linux: samplers feeding the core's memory histories, and the
//! limit forecasts are made against.
//!
//! It monitors the calling process ([`MemoryMonitor::start`]) or another one
//! ([`MemoryMonitor::start_for_pid`], as `plimsoll watch` does). A [`MemoryMonitor`] keeps
//! up to three signals, each a [`MemoryHistory`] with the default rings (the last 2 hours
//! at 30 s, the last 2 days at 10 min):
//!
//! - `rss`: the process's resident set size (`/proc/self/status`, or `/proc/PID/status`);
//! - `heap`: heap bytes in use, when the program's global allocator is a
//!   [`Counting`] allocator passed to [`MemoryMonitor::start`] (so never for another
//!   process, whose allocator this one cannot see);
//! - `cgroup`: the memory charged to the process's cgroup, when it has one.
//!
//! The limit is the configured one (`PLIMSOLL_MEMORY_LIMIT`) if set, else the cgroup's
//! effective limit as last sampled, else none (no forecast). Beside the memory families of
//! [`MemoryExport`], it exports `plimsoll_process_threads`, `plimsoll_process_open_fds`
//! and `plimsoll_process_peak_resident_memory_bytes`.
//!
//! # Allocation
//!
//! [`MemoryMonitor::start`] allocates the monitor once (the histories are 3 ×
//! [`MemoryHistory::FOOTPRINT`] bytes, about 17 KiB each on x86_64) and leaks it, so the
//! exporter and the sampling task can share it for the life of the process. Sampling then
//! allocates nothing but the transient entries of counting open file descriptors (see
//! [`sampler`](crate::sampler)).

use crate::alloc::Counting;
use crate::sampler::{CgroupSampler, ProcessSampler};
use plimsoll_core::{Assessment, Gauge, MemoryExport, MemoryHistory, RegisterError, Registry, Unlabelled};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// [`MemoryMonitor::cgroup_limit`] while there is none.
const NO_LIMIT: u64 = u64::MAX;

/// Process memory and its cgroup, sampled into histories and judged for leaks.
#[derive(Debug)]
pub struct MemoryMonitor {
    rss: MemoryHistory,
    heap: MemoryHistory,
    cgroup: MemoryHistory,
    export: MemoryExport<3>,
    process: ProcessSampler,
    cgroup_sampler: Option<CgroupSampler>,
    heap_source: Option<&'static Counting>,
    configured_limit: Option<u64>,
    /// The cgroup's limit at the last sample, or [`NO_LIMIT`].
    cgroup_limit: AtomicU64,
    threads: Unlabelled<Gauge>,
    open_fds: Unlabelled<Gauge>,
    peak_rss: Unlabelled<Gauge>,
}

impl MemoryMonitor {
    /// Discovers the process's cgroup (reporting on stderr if there is none) and builds
    /// the monitor, leaked for the life of the process (see the [module docs](self)).
    /// `configured_limit` overrides the cgroup's limit; `heap` adds the `heap` signal.
    pub fn start(configured_limit: Option<u64>, heap: Option<&'static Counting>) -> &'static Self {
        let cgroup_sampler = CgroupSampler::discover().map_err(report_no_cgroup).ok();
        Self::with_samplers(ProcessSampler::current(), cgroup_sampler, configured_limit, heap)
    }

    /// [`start`](Self::start) for process `pid` instead of the calling one: its RSS, threads
    /// and open file descriptors, and its cgroup ([`CgroupSampler::discover_for`]) for the
    /// `cgroup` signal and the limit; no `heap` signal.
    pub fn start_for_pid(pid: u32, configured_limit: Option<u64>) -> &'static Self {
        let cgroup_sampler = CgroupSampler::discover_for(pid).map_err(report_no_cgroup).ok();
        Self::with_samplers(ProcessSampler::of_pid(pid), cgroup_sampler, configured_limit, None)
    }

    /// [`start`](Self::start) with given samplers (for other processes, or tests).
    pub fn with_samplers(
        process: ProcessSampler,
        cgroup_sampler: Option<CgroupSampler>,
        configured_limit: Option<u64>,
        heap: Option<&'static Counting>,
    ) -> &'static Self {
        let monitor: &'static Self = Box::leak(Box::new(Self {
            rss: MemoryHistory::new("rss"),
            heap: MemoryHistory::new("heap"),
            cgroup: MemoryHistory::new("cgroup"),
            export: MemoryExport::new(),
            process,
            cgroup_sampler,
            heap_source: heap,
            configured_limit,
            cgroup_limit: AtomicU64::new(NO_LIMIT),
            threads: Unlabelled::new("plimsoll_process_threads", "Threads of the process, at the last sample."),
            open_fds: Unlabelled::new(
                "plimsoll_process_open_fds",
                "Open file descriptors of the process, at the last sample.",
            ),
            peak_rss: Unlabelled::<Gauge>::new(
                "plimsoll_process_peak_resident_memory_bytes",
                "Peak resident set size of the process (VmHWM), at the last sample.",
            )
            .unit("bytes"),
        }));
        // Three histories with fixed, valid names fit an export of three: cannot fail.
        let signals = [
            Some(&monitor.rss),
            monitor.heap_source.map(|_| &monitor.heap),
            monitor.cgroup_sampler.as_ref().map(|_| &monitor.cgroup),
        ];
        for history in signals.into_iter().flatten() {
            monitor.export.add(history).expect("three valid, distinct signals");
        }
        monitor
    }

    /// Registers the memory families and the process gauges into `registry`.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        self.export.register(registry)?;
        registry.register(&self.threads)?;
        registry.register(&self.open_fds)?;
        registry.register(&self.peak_rss)
    }

    /// Samples every signal at `now_ms` (the clock the exporter updates with).
    pub fn sample(&self, now_ms: u64) {
        let process = self.process.sample();
        if let Some(rss) = process.rss_bytes {
            self.rss.record(now_ms, rss);
        }
        let gauges = [
            (&self.threads, process.threads),
            (&self.open_fds, process.open_fds),
            (&self.peak_rss, process.peak_rss_bytes),
        ];
        for (gauge, value) in gauges {
            if let Some(value) = value {
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        if let Some(heap) = self.heap_source {
            self.heap.record(now_ms, heap.stats().in_use_bytes);
        }
        if let Some(sampler) = &self.cgroup_sampler {
            let sample = sampler.sample();
            if let Some(usage) = sample.usage_bytes {
                self.cgroup.record(now_ms, usage);
            }
            self.cgroup_limit.store(sample.limit_bytes.unwrap_or(NO_LIMIT), Relaxed);
        }
    }

    /// The limit forecasts are made against: the configured one, else the cgroup's.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.configured_limit.or_else(|| Some(self.cgroup_limit.load(Relaxed)).filter(|&l| l != NO_LIMIT))
    }

    /// Stores the verdicts at `now_ms` into the exported families; call before a scrape.
    pub fn update(&self, now_ms: u64) {
        self.export.update(now_ms, self.limit_bytes());
    }

    /// Calls `each(signal, assessment)` for every signal, assessed at `now_ms`.
    pub fn for_each_assessment(&self, now_ms: u64, each: impl FnMut(&'static str, Assessment)) {
        self.export.for_each_assessment(now_ms, self.limit_bytes(), each);
    }

    /// Bytes the monitor holds (histories and families).
    pub fn footprint(&self) -> usize {
        size_of::<Self>() - MemoryExport::<3>::FOOTPRINT + self.export.footprint()
    }
}

fn report_no_cgroup(error: crate::sampler::SampleError) {
    eprintln!("plimsoll: {error}; the cgroup signal and limit are off");
}

#[cfg(test)]
mod tests {
    use super::*;
    use plimsoll_core::{Format, Verdict};

    #[test]
    fn samples_the_real_process_and_renders_its_signals() {
        static REGISTRY: Registry<16> = Registry::new();
        static HEAP: Counting = Counting::new(std::alloc::System);
        let monitor = MemoryMonitor::with_samplers(ProcessSampler::current(), None, Some(512 << 20), Some(&HEAP));
        monitor.register(&REGISTRY).unwrap();
        for second in 0..3 {
            monitor.sample(second * 30_000);
        }
        monitor.update(90_000);
        let mut text = Vec::new();
        let mut renderer = REGISTRY.renderer(Format::Prometheus);
        let mut buf = [0u8; 4096];
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).unwrap();
            text.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(text).unwrap();
        for line in [
            "plimsoll_memory_limit_bytes 536870912",
            "plimsoll_memory_verdict{signal=\"rss\",verdict=\"not_enough_data\"} 1",
            "plimsoll_memory_verdict{signal=\"heap\",verdict=\"not_enough_data\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let threads = text.lines().find_map(|l| l.strip_prefix("plimsoll_process_threads ")).unwrap();
        assert!(threads.parse::<u64>().unwrap() >= 1);
        let mut verdicts = Vec::new();
        monitor.for_each_assessment(90_000, |signal, a| verdicts.push((signal, a.verdict)));
        assert_eq!(verdicts, [("rss", Verdict::NotEnoughData), ("heap", Verdict::NotEnoughData)]);
    }

    #[test]
    fn another_process_is_monitored_without_a_heap_signal() {
        static REGISTRY: Registry<16> = Registry::new();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let monitor = MemoryMonitor::start_for_pid(child.id(), None);
        monitor.sample(0);
        child.kill().ok();
        child.wait().ok();
        monitor.register(&REGISTRY).unwrap();
        let mut signals = Vec::new();
        monitor.for_each_assessment(0, |signal, _| signals.push(signal));
        assert_eq!(signals[0], "rss");
        assert!(!signals.contains(&"heap"), "{signals:?}");
        let own_rss = ProcessSampler::current().sample().rss_bytes.unwrap();
        let child_rss = monitor.rss.summary(0).expect("the sleep's RSS").last;
        // A test binary is resident in far more than `sleep`: the figure is the child's.
        assert!(child_rss < own_rss, "the sleep's RSS {child_rss} is not below this process's {own_rss}");
    }

    #[test]
    fn the_configured_limit_wins_over_the_cgroup() {
        let without = MemoryMonitor::with_samplers(ProcessSampler::current(), None, None, None);
        assert_eq!(without.limit_bytes(), None);
        without.cgroup_limit.store(1 << 30, Relaxed);
        assert_eq!(without.limit_bytes(), Some(1 << 30));
        let configured = MemoryMonitor::with_samplers(ProcessSampler::current(), None, Some(256 << 20), None);
        configured.cgroup_limit.store(1 << 30, Relaxed);
        assert_eq!(configured.limit_bytes(), Some(256 << 20));
    }
}
