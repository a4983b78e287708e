//! The process sampler: `/proc/PID/status` and `/proc/PID/fd`, and `/proc/PID/stat` to
//! tell whether the process still runs.

use super::{Failures, READ_LIMIT, Report, SampleError, Signal, field, read_into, read_small, report_to_stderr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

/// One reading of a process; a field is `None` when its file could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// Resident set size, bytes (`VmRSS`).
    pub rss_bytes: Option<u64>,
    /// Peak resident set size, bytes (`VmHWM`).
    pub peak_rss_bytes: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
}

/// Which process a PID names, and whether it has exited: from `/proc/PID/stat`.
///
/// A PID is reused once its process is gone, so the PID alone cannot tell a process that
/// exited from a new one that took its number; the PID and the start time together name
/// one process for the life of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// When the process started, in clock ticks after boot (`starttime`).
    pub start_ticks: u64,
    /// It has exited and waits for its parent to collect its status (a zombie, state `Z`,
    /// or `X` while it is being collected): its memory is already gone.
    pub exited: bool,
}

impl ProcessIdentity {
    /// Parses the content of a `/proc/PID/stat` file: `PID (COMM) STATE PPID ...`, where
    /// COMM may hold spaces and parentheses, so fields are counted from its last `)`.
    fn parse(stat: &[u8]) -> Option<Self> {
        let after_comm = stat.iter().rposition(|&b| b == b')')?;
        let mut fields = stat[after_comm + 1..].split(u8::is_ascii_whitespace).filter(|f| !f.is_empty());
        let state = *fields.next()?.first()?;
        // `starttime` is field 22 of the file; `state`, just taken, is field 3.
        let start_ticks = std::str::from_utf8(fields.nth(22 - 3 - 1)?).ok()?.parse().ok()?;
        Some(Self { start_ticks, exited: matches!(state, b'Z' | b'X' | b'x') })
    }
}

/// Reads a process's memory, threads and open file descriptors from `/proc`.
///
/// ```no_run
/// let sampler = plimsoll::sampler::ProcessSampler::current();
/// let sample = sampler.sample();
/// println!("RSS: {:?} bytes", sample.rss_bytes);
/// ```
#[derive(Debug)]
pub struct ProcessSampler {
    status: PathBuf,
    stat: PathBuf,
    fd_dir: PathBuf,
    failures: Failures,
}

impl ProcessSampler {
    /// The calling process (`/proc/self`), reporting to stderr.
    pub fn current() -> Self {
        Self::at("/proc/self", report_to_stderr)
    }

    /// Process `pid` (`/proc/PID`), reporting to stderr. A process that does not exist or
    /// has exited gives samples of `None`s, reported once per signal.
    pub fn of_pid(pid: u32) -> Self {
        Self::at(format!("/proc/{pid}"), report_to_stderr)
    }

    /// The process whose `/proc` directory is `dir` (`status`, `stat` and `fd` inside it),
    /// reporting first failures through `report`.
    pub fn at(dir: impl AsRef<Path>, report: Report) -> Self {
        let dir = dir.as_ref();
        Self {
            status: dir.join("status"),
            stat: dir.join("stat"),
            fd_dir: dir.join("fd"),
            failures: Failures::new(report),
        }
    }

    /// Which process this is and whether it has exited; `None` if there is no such process
    /// (its `stat` file cannot be read or parsed). A probe, not a sample: no failure is
    /// counted or reported, and nothing is allocated.
    pub fn identity(&self) -> Option<ProcessIdentity> {
        let mut buf = [0u8; READ_LIMIT];
        ProcessIdentity::parse(read_into(&self.stat, &mut buf).ok()?)
    }

    /// Reads the process now.
    pub fn sample(&self) -> ProcessSample {
        let mut buf = [0u8; READ_LIMIT];
        let mut sample = ProcessSample::default();
        if let Some(status) = self.failures.keep(read_small(&self.status, Signal::Rss, &mut buf)) {
            sample.rss_bytes = self.status_field(status, "VmRSS", Signal::Rss);
            sample.peak_rss_bytes = self.status_field(status, "VmHWM", Signal::PeakRss);
            sample.threads = self.status_field(status, "Threads", Signal::Threads);
        }
        sample.open_fds = self.failures.keep(self.count_fds());
        sample
    }

    /// Failures so far (each file that could not be read or parsed counts once per sample).
    pub fn failures(&self) -> u64 {
        self.failures.count.load(Relaxed)
    }

    fn status_field(&self, status: &[u8], key: &str, signal: Signal) -> Option<u64> {
        let value = field(status, key).ok_or_else(|| SampleError::Format { signal, path: self.status.clone() });
        self.failures.keep(value)
    }

    fn count_fds(&self) -> Result<u64, SampleError> {
        let io_error = |source| SampleError::Io { signal: Signal::OpenFds, path: self.fd_dir.clone(), source };
        let mut count = 0;
        for entry in std::fs::read_dir(&self.fd_dir).map_err(io_error)? {
            entry.map_err(io_error)?;
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_current_process_reads_from_proc() {
        let sampler = ProcessSampler::current();
        let sample = sampler.sample();
        let rss = sample.rss_bytes.expect("VmRSS of this process");
        let peak = sample.peak_rss_bytes.expect("VmHWM of this process");
        assert!(rss > 1 << 20, "a test binary is resident in more than 1 MiB, got {rss}");
        assert!(peak >= rss, "the peak {peak} is at least the current {rss}");
        // The test harness runs this test on a thread of its own, so there are at least two.
        assert!(sample.threads.expect("Threads of this process") >= 2);
        // stdin, stdout and stderr at least, plus the directory being listed.
        assert!(sample.open_fds.expect("open fds of this process") >= 3);
        assert_eq!(sampler.failures(), 0);
    }

    #[test]
    fn rss_agrees_with_statm() {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        let rss = ProcessSampler::current().sample().rss_bytes.unwrap();
        let from_statm = pages * 4096;
        // Both are read a moment apart in a process that allocates; pages are 4 KiB on the
        // machines this runs on (an other page size only widens the ratio check below).
        let ratio = rss as f64 / from_statm as f64;
        assert!((0.5..2.0).contains(&ratio), "status says {rss}, statm says {from_statm}");
    }

    #[test]
    fn a_spawned_process_is_sampled_by_pid() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let sample = ProcessSampler::of_pid(child.id()).sample();
        child.kill().ok();
        child.wait().ok();
        assert!(sample.rss_bytes.is_some_and(|rss| rss > 0));
        assert_eq!(sample.threads, Some(1));
    }

    #[test]
    fn identity_tells_a_running_process_from_an_exited_one() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let sampler = ProcessSampler::of_pid(child.id());
        let running = sampler.identity().expect("the identity of a running process");
        assert!(!running.exited);
        let own = ProcessSampler::current().identity().expect("this process's identity");
        assert!(own.start_ticks <= running.start_ticks, "the child started after this process");
        child.kill().expect("kill the sleep");
        // Killed but not yet waited for: a zombie, whose identity is unchanged.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let exited = loop {
            let identity = sampler.identity().expect("a zombie still has a stat file");
            if identity.exited || std::time::Instant::now() > deadline {
                break identity;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(exited, ProcessIdentity { start_ticks: running.start_ticks, exited: true });
        child.wait().expect("reap the sleep");
        assert_eq!(sampler.identity(), None, "a reaped process has no /proc entry");
        assert_eq!(sampler.failures(), 0, "probes count no failures");
    }

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let fields = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21";
        let parse = |comm: &str| ProcessIdentity::parse(format!("77 ({comm}) {fields}\n").as_bytes());
        let expected = Some(ProcessIdentity { start_ticks: 424_242, exited: false });
        assert_eq!(parse("node"), expected);
        assert_eq!(parse("a) S 1 (b"), expected, "a name with parentheses and spaces");
        let zombie = ProcessIdentity::parse(format!("77 (x) Z{}", &fields[1..]).as_bytes());
        assert_eq!(zombie, Some(ProcessIdentity { start_ticks: 424_242, exited: true }));
        assert_eq!(ProcessIdentity::parse(b"77 (x) S 1 2"), None, "too few fields");
        assert_eq!(ProcessIdentity::parse(b"no parenthesis"), None);
        assert_eq!(ProcessIdentity::parse(b""), None);
    }

    static REPORTS: AtomicUsize = AtomicUsize::new(0);

    fn count_report(_: &SampleError) {
        REPORTS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn missing_files_are_skipped_and_reported_once() {
        let dir = std::env::temp_dir().join(format!("plimsoll-sampler-missing-{}", std::process::id()));
        let sampler = ProcessSampler::at(&dir, count_report);
        for _ in 0..3 {
            assert_eq!(sampler.sample(), ProcessSample::default());
        }
        // Two signals fail (status, fd), each reported on its first failure only.
        assert_eq!(REPORTS.load(Ordering::Relaxed), 2);
        assert_eq!(sampler.failures(), 6);
    }

    #[test]
    fn malformed_status_skips_only_the_bad_fields() {
        let dir = std::env::temp_dir().join(format!("plimsoll-sampler-bad-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::write(dir.join("status"), "VmRSS:\tgarbage kB\nVmHWM:\t8 kB\n").unwrap();
        let sample = ProcessSampler::at(&dir, |_| {}).sample();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            sample,
            ProcessSample { rss_bytes: None, peak_rss_bytes: Some(8 * 1024), threads: None, open_fds: Some(0) }
        );
    }
}
