//! Linux memory samplers: a process's RSS, peak RSS, threads and open file descriptors
//! from `/proc` (this process's or another's, by PID), and its cgroup's memory usage and
//! limit (cgroup v2, with a v1 fallback). For another process,
//! [`ProcessSampler::identity`] also tells whether it still runs.
//!
//! Samplers read small text files into a stack buffer and parse them in place: after
//! construction (which resolves and stores the paths), taking a sample allocates nothing,
//! except counting open file descriptors, which lists `/proc/PID/fd` (std's directory
//! iterator allocates one entry name at a time and frees it before the next).
//!
//! # Missing or unreadable files
//!
//! A signal whose file is missing, unreadable or not in the expected format is left out of
//! that sample (`None`), never a panic. Its first failure is reported once, through the
//! [`Report`] hook given at construction (by default a line on stderr), and every failure
//! is counted ([`ProcessSampler::failures`], [`CgroupSampler::failures`]). The file is
//! tried again at the next sample, so a signal comes back if its file appears.
//!
//! Samplers do not use a clock or keep history: feed their figures to a
//! [`MemoryHistory`](crate::MemoryHistory) with the time of the sample.

mod cgroup;
mod process;

pub use cgroup::{CgroupSample, CgroupSampler, CgroupVersion};
pub use process::{ProcessIdentity, ProcessSample, ProcessSampler};

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// What a sampler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Resident set size (`VmRSS`).
    Rss,
    /// Peak resident set size (`VmHWM`).
    PeakRss,
    /// Threads of the process (`Threads`).
    Threads,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    OpenFds,
    /// Memory charged to the cgroup (`memory.current`, v1 `memory.usage_in_bytes`).
    CgroupUsage,
    /// The cgroup's effective memory limit (`memory.max`, v1 `memory.limit_in_bytes`).
    CgroupLimit,
    /// The cgroup's peak memory (`memory.peak`, v1 `memory.max_usage_in_bytes`).
    CgroupPeak,
}

impl Signal {
    const COUNT: usize = 7;

    /// A short name, for messages and labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rss => "rss",
            Self::PeakRss => "peak_rss",
            Self::Threads => "threads",
            Self::OpenFds => "open_fds",
            Self::CgroupUsage => "cgroup_usage",
            Self::CgroupLimit => "cgroup_limit",
            Self::CgroupPeak => "cgroup_peak",
        }
    }
}

/// Why a signal could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum SampleError {
    /// The file could not be opened or read.
    Io {
        /// The signal left out.
        signal: Signal,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file was read but does not hold the signal in the expected format.
    Format {
        /// The signal left out.
        signal: Signal,
        /// The file.
        path: PathBuf,
    },
    /// No cgroup with a memory controller was found for the process.
    NoCgroup {
        /// What was looked for and where.
        detail: String,
    },
}

impl SampleError {
    /// The signal concerned, if the error is about one.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Self::Io { signal, .. } | Self::Format { signal, .. } => Some(*signal),
            Self::NoCgroup { .. } => None,
        }
    }
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { signal, path, source } => {
                write!(f, "cannot read {} from {}: {source}; skipping it", signal.name(), path.display())
            }
            Self::Format { signal, path } => {
                write!(f, "no {} in the expected format in {}; skipping it", signal.name(), path.display())
            }
            Self::NoCgroup { detail } => write!(f, "no memory cgroup: {detail}"),
        }
    }
}

impl std::error::Error for SampleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where a sampler reports the first failure of each signal.
pub type Report = fn(&SampleError);

/// The default [`Report`]: one line on stderr.
pub fn report_to_stderr(error: &SampleError) {
    eprintln!("plimsoll: {error}");
}

/// The first-failure flags and the failure count a sampler keeps.
#[derive(Debug)]
struct Failures {
    reported: [AtomicBool; Signal::COUNT],
    count: AtomicU64,
    report: Report,
}

impl Failures {
    fn new(report: Report) -> Self {
        Self { reported: [const { AtomicBool::new(false) }; Signal::COUNT], count: AtomicU64::new(0), report }
    }

    /// Counts a failure and reports it if it is the signal's first.
    fn record(&self, error: SampleError) {
        self.count.fetch_add(1, Relaxed);
        if let Some(signal) = error.signal() {
            if self.reported[signal as usize].swap(true, Relaxed) {
                return;
            }
        }
        (self.report)(&error);
    }

    /// `result`'s value, or `None` after recording its error.
    fn keep<T>(&self, result: Result<T, SampleError>) -> Option<T> {
        result.map_err(|error| self.record(error)).ok()
    }
}

/// The most bytes read from one file: `/proc/PID/status` is about 1.5 KiB, cgroup files
/// a line, a v1 `memory.stat` about 1 KiB. Longer files are read up to this.
const READ_LIMIT: usize = 4096;

/// Reads up to [`READ_LIMIT`] bytes of `path` into `buf`, without allocating (paths
/// shorter than a few hundred bytes are converted on the stack by std).
fn read_small<'b>(path: &Path, signal: Signal, buf: &'b mut [u8; READ_LIMIT]) -> Result<&'b [u8], SampleError> {
    read_into(path, buf).map_err(|source| SampleError::Io { signal, path: path.to_owned(), source })
}

/// [`read_small`] for a caller that needs no [`SampleError`]: a probe, whose failure is
/// an answer.
fn read_into<'b>(path: &Path, buf: &'b mut [u8; READ_LIMIT]) -> io::Result<&'b [u8]> {
    let mut file = File::open(path)?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(&buf[..len])
}

/// Parses a whole file's content as one unsigned integer (surrounding whitespace allowed).
fn parse_u64(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` or `key: value [kB]` line, in bytes if a `kB` unit
/// follows (as in `/proc/PID/status`).
fn field(text: &[u8], key: &str) -> Option<u64> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key.as_bytes())?;
        let rest = rest.strip_prefix(b":").unwrap_or(rest);
        // The key must end at a separator: `Threads` must not match `Threads_x`.
        if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let text = std::str::from_utf8(rest).ok()?.trim();
        let (number, unit) = text.split_once(char::is_whitespace).map_or((text, ""), |(n, u)| (n, u.trim()));
        let value: u64 = number.parse().ok()?;
        match unit {
            "" => Some(value),
            "kB" => value.checked_mul(1024),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_with_and_without_units() {
        let status = b"Name:\tcat\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\nThreads_x:\t9\n";
        assert_eq!(field(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(field(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(field(status, "Threads"), Some(3));
        assert_eq!(field(status, "VmSwap"), None);
        assert_eq!(field(b"anon 4096\nfile 8192\n", "file"), Some(8192));
        assert_eq!(field(b"VmRSS:\t12 MB\n", "VmRSS"), None, "unknown units are a format error");
        assert_eq!(field(b"VmRSS:\tlots kB\n", "VmRSS"), None);
        assert_eq!(field(b"VmRSS:\t99999999999999999999 kB\n", "VmRSS"), None, "overflow is a format error");
    }

    #[test]
    fn whole_file_integers_parse() {
        assert_eq!(parse_u64(b"123456\n"), Some(123_456));
        assert_eq!(parse_u64(b"max\n"), None);
        assert_eq!(parse_u64(b""), None);
    }
}
