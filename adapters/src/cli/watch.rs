//! `plimsoll watch`: a sidecar for a process in any language (a Node.js server in a small
//! container, say). It samples the process's memory and its cgroup's, judges them for
//! leaks, forecasts when they reach the limit, serves them like `serve` does, and ends when
//! the process does.
//!
//! # Two ways to watch
//!
//! - `plimsoll watch -- CMD ARGS...` spawns CMD (stdin, stdout and stderr inherited) and
//!   supervises it: SIGTERM, SIGINT and SIGHUP are forwarded to it, and once it exits the
//!   watcher exits with its status: its exit code, or 128 + the signal's number if a signal
//!   killed it, as shells report it (137 for SIGKILL, which the out-of-memory killer
//!   sends). The watcher never exits before its child, so a child that ignores SIGTERM is
//!   left to the supervisor's SIGKILL. A CMD that cannot be started exits 127 if it is not
//!   found and 126 if it is found but cannot be run (not executable, a directory, not a
//!   program), as shells do. From a terminal, Ctrl-C reaches the child twice: from the
//!   terminal (the child is in the watcher's process group, so it may read the terminal)
//!   and forwarded.
//! - `plimsoll watch --pid PID` attaches to a running process. Every 250 ms it reads
//!   `/proc/PID/stat`, and once the process has exited (its entry is gone, it is a zombie,
//!   or its PID now names a process started at another time) it exits 0 with a message.
//!   SIGTERM, SIGINT and SIGHUP stop the watcher (exit 0); the process is not its to
//!   signal. A PID with no running process is an error (exit 1), and so is a PID whose
//!   `/proc` entry cannot be read.
//!
//! # Configuration and start-up
//!
//! As for `serve` ([`Config::from_env`]): the address, the token, the sample interval and
//! the memory limit (if unset, the limit of the *watched* process's cgroup). The state
//! directory and the SLOs of `PLIMSOLL_CONFIG` are not used (nothing here records events
//! for SLOs; a line on stderr says so when they are set), and `MONITORING_ENABLED=false`
//! is an invalid configuration (exit 2): memory is what `watch` is for.
//!
//! In order: read the configuration and print it (exit 2 if invalid); check PID; install
//! the signal handlers; spawn CMD; find its cgroup (`/proc/PID/cgroup`); bind the
//! exporter (if that fails, a spawned child is killed with SIGKILL and the exit status is
//! 1); print `listening on <address>` to stdout. A spawned child writes to the same
//! stdout, so a reader looks for the line that starts with `listening on `.
//!
//! # What it serves
//!
//! `/metrics`: the memory monitor's families for the watched process
//! (`plimsoll_memory_*` for the signals `rss` and, if it has a memory cgroup, `cgroup`;
//! `plimsoll_process_threads`, `plimsoll_process_open_fds` and
//! `plimsoll_process_peak_resident_memory_bytes`), `plimsoll_watch_target_info{pid,command} 1`
//! (so a scrape says what is watched) and the exporter's own families. `/health`: the
//! memory checks (503 when the limit is forecast within 15 minutes). `/api/report`: the
//! memory section and a `watch` section (`pid`, `command`, `mode`). Samples are taken
//! every `PLIMSOLL_SAMPLE_INTERVAL`, the first at start.
//!
//! # Cost
//!
//! One thread (a current-thread tokio runtime: scrapes, samples and supervision are
//! light), the memory monitor (three histories, about 52 KiB, allocated once) and the
//! exporter's connections, bounded as its docs state. Each PID check reads one small file
//! into a stack buffer.

use super::run::{CLOCK, announce, sample_memory};
use super::{EXIT_CONFIG, EXIT_FAILURE};
use plimsoll::report::Section;
use plimsoll::sampler::{ProcessIdentity, ProcessSampler};
use plimsoll::{Config, Exporter, ExporterMetrics, Family, Gauge, Limits, MemoryMonitor, Registry};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io;
use std::process::{Child, ExitCode, ExitStatus};
use std::time::Duration;

/// The registry: the exporter's 6 families, the memory monitor's 10 and the target's.
static REGISTRY: Registry<24> = Registry::new();
static EXPORTER_METRICS: ExporterMetrics = ExporterMetrics::new();
/// What is watched; one series, set once.
static TARGET: Family<Gauge, 2, 1> = Family::new(
    "plimsoll_watch_target_info",
    "The process plimsoll watch samples: its PID and command name. Always 1.",
    ["pid", "command"],
);
/// The exporter's default limits (64 connections, 5 s header and shutdown deadlines).
const LIMITS: Limits = Limits::DEFAULT;
/// How often `--pid` checks that its process still runs: soon enough that the watcher
/// ends with it, rarely enough to cost nothing (one small read).
const PID_POLL: Duration = Duration::from_millis(250);
/// Exit status when CMD is not found, as shells give.
const EXIT_NOT_FOUND: u8 = 127;
/// Exit status when CMD is found but cannot be run, as shells give.
const EXIT_CANNOT_RUN: u8 = 126;
/// The longest command name exported: the family's label values hold 64 bytes.
const MAX_COMMAND_LABEL: usize = 64;

/// `plimsoll watch` arguments: a PID or a command.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("target").required(true).args(["pid", "command"]),
    override_usage = "plimsoll watch --pid <PID>\n       plimsoll watch [--] <CMD> [ARGS]..."
)]
pub(crate) struct WatchArgs {
    /// Watch the running process PID until it exits.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
    pid: Option<u32>,
    /// The command to spawn and supervise, and its arguments: every word from CMD on is
    /// the command's, options included (a `--` before CMD is optional).
    #[arg(value_name = "CMD", trailing_var_arg = true, num_args = 1..)]
    command: Vec<OsString>,
}

/// Why the command stopped early: the message for stderr and the exit status.
#[derive(Debug)]
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn new(status: u8, message: impl ToString) -> Self {
        Self { status, message: message.to_string() }
    }
}

/// Runs `watch`; returns the exit status.
pub(crate) fn run(args: WatchArgs) -> ExitCode {
    match start_and_watch(args) {
        Ok(status) => ExitCode::from(status),
        Err(Failure { status, message }) => {
            eprintln!("plimsoll: {message}");
            ExitCode::from(status)
        }
    }
}

fn start_and_watch(args: WatchArgs) -> Result<u8, Failure> {
    let config = Config::from_env().map_err(|e| Failure::new(EXIT_CONFIG, e))?;
    eprintln!("plimsoll {} watch: effective configuration", env!("CARGO_PKG_VERSION"));
    eprint!("{config}");
    if !config.subsystems.monitoring {
        return Err(Failure::new(
            EXIT_CONFIG,
            "MONITORING_ENABLED=false: watch has nothing to do without memory sampling",
        ));
    }
    if let Some(dir) = &config.state_dir {
        eprintln!("plimsoll: watch keeps no state: PLIMSOLL_STATE_DIR ({}) is not used", dir.display());
    }
    if !config.slos.is_empty() {
        eprintln!("plimsoll: watch records no SLO events: the SLOs of PLIMSOLL_CONFIG are not served");
    }
    // Attaching needs no runtime, so a wrong PID is reported before one starts.
    let attached = args.pid.map(attach).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        // Installed before the child exists, so no signal meant for it is missed, and
        // before the address is announced, so a supervisor's signal is handled, not fatal.
        let signals = Signals::install()
            .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot install signal handlers: {e}")))?;
        let target = match attached {
            Some(target) => target,
            None => spawn(&args.command)?,
        };
        watch(&config, target, signals).await
    })
}

/// The process watched.
#[derive(Debug)]
struct Target {
    pid: u32,
    /// Its name: CMD's file name, or `/proc/PID/comm` (at most 15 bytes) when attached.
    command: String,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Spawned and supervised: the watcher is its parent and collects its status.
    Spawned(Child),
    /// Attached to by PID: `probe` reads its identity, which must stay `identity`.
    Attached { probe: ProcessSampler, identity: ProcessIdentity },
}

impl Target {
    fn mode(&self) -> &'static str {
        match self.how {
            How::Spawned(_) => "spawned",
            How::Attached { .. } => "attached",
        }
    }
}

/// Checks that `pid` names a running process other than this one.
fn attach(pid: u32) -> Result<Target, Failure> {
    if pid == std::process::id() {
        return Err(Failure::new(EXIT_CONFIG, format!("--pid {pid} is the watcher itself")));
    }
    let probe = ProcessSampler::of_pid(pid);
    let identity = match probe.identity() {
        None => return Err(Failure::new(EXIT_FAILURE, format!("--pid {pid}: no such process (no /proc/{pid}/stat)"))),
        Some(identity) if identity.exited => {
            return Err(Failure::new(EXIT_FAILURE, format!("--pid {pid}: the process has already exited")));
        }
        Some(identity) => identity,
    };
    // `comm` is readable for any process whose `stat` is; a failure only blanks a label.
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Ok(Target { pid, command: label(command.trim_end()), how: How::Attached { probe, identity } })
}

/// Spawns `command`, its stdio inherited.
fn spawn(command: &[OsString]) -> Result<Target, Failure> {
    // clap requires either --pid or at least one word of command.
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::new(EXIT_CONFIG, "nothing to watch: give --pid PID or -- CMD ARGS..."));
    };
    let shown = program.to_string_lossy();
    let child = std::process::Command::new(program).args(args).spawn().map_err(|e| {
        let status = if e.kind() == io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_RUN };
        Failure::new(status, format!("cannot run {shown}: {e}"))
    })?;
    let name = std::path::Path::new(program).file_name().map_or(shown.clone(), |name| name.to_string_lossy());
    Ok(Target { pid: child.id(), command: label(&name), how: How::Spawned(child) })
}

/// `name`, cut to the longest label value the family stores (at a character boundary).
fn label(name: &str) -> String {
    let mut end = name.len().min(MAX_COMMAND_LABEL);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Serves and samples until the target ends (or, attached, a signal stops the watcher);
/// returns the exit status.
async fn watch(config: &Config, mut target: Target, mut signals: Signals) -> Result<u8, Failure> {
    let monitor = MemoryMonitor::start_for_pid(target.pid, config.memory_limit);
    let exporter = match bind(config, &target, monitor).await {
        Ok(exporter) => exporter,
        Err(message) => {
            if let How::Spawned(child) = &mut target.how {
                // Nothing will supervise it: end it before it does anything more.
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(Failure::new(EXIT_FAILURE, message));
        }
    };
    eprintln!(
        "plimsoll: watching {} (pid {}, {}); memory sampled every {:?}",
        target.command,
        target.pid,
        target.mode(),
        config.sample_interval
    );
    announce(exporter.local_addr());

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampling = tokio::spawn(sample_memory(monitor, config.sample_interval, stopped));
    let status = match &mut target.how {
        How::Spawned(child) => {
            let status = supervise(child, &mut signals)
                .await
                .map_err(|e| Failure::new(EXIT_FAILURE, format!("cannot wait for pid {}: {e}", target.pid)))?;
            eprintln!("plimsoll: {} (pid {}) {}", target.command, target.pid, describe(status));
            exit_status(status)
        }
        How::Attached { probe, identity } => {
            match until_exit(probe, *identity, &mut signals).await {
                Some(signal) => eprintln!("plimsoll: {signal}: stopping"),
                None => eprintln!("plimsoll: {} (pid {}) has exited", target.command, target.pid),
            }
            0
        }
    };
    // The sender is alive until here, so the sampler sees the stop, not a dropped channel.
    let _ = stop.send(true);
    sampling.await.map_err(|e| Failure::new(EXIT_FAILURE, format!("the memory sampler failed: {e}")))?;
    let report = exporter.shutdown().await;
    if report.aborted > 0 {
        eprintln!("plimsoll: closed {} connections that outlasted the grace period", report.aborted);
    }
    eprintln!("plimsoll: stopped");
    Ok(status)
}

/// Registers the target's family, binds the exporter with the memory monitor and the
/// `watch` section; an error is the message to print.
async fn bind(
    config: &Config,
    target: &Target,
    monitor: &'static MemoryMonitor,
) -> Result<plimsoll::RunningExporter, String> {
    REGISTRY.register(&TARGET).map_err(|e| format!("cannot register {}: {e}", "plimsoll_watch_target_info"))?;
    TARGET.with_label_values(&[&target.pid.to_string(), &target.command]).set(1);
    // Allocated once, for the life of the process, as the exporter needs.
    let section: &'static WatchSection =
        Box::leak(Box::new(WatchSection { pid: target.pid, command: target.command.clone(), mode: target.mode() }));
    Exporter::builder(&REGISTRY)
        .memory(monitor)
        .section(section)
        .address(config.address)
        .token(config.token.clone())
        .clock(&CLOCK)
        .metrics(&EXPORTER_METRICS)
        .limits(LIMITS)
        .bind()
        .await
        .map_err(|e| e.to_string())
}

/// `/api/report`'s `watch` section: what is watched, and how.
#[derive(Debug)]
struct WatchSection {
    pid: u32,
    command: String,
    mode: &'static str,
}

impl Section for WatchSection {
    fn key(&self) -> &'static str {
        "watch"
    }

    fn report(&self, _now_ms: u64) -> Value {
        json!({"pid": self.pid, "command": self.command, "mode": self.mode})
    }
}

/// Waits until the attached process has exited (`None`) or a signal stops the watcher
/// (its name).
async fn until_exit(probe: &ProcessSampler, identity: ProcessIdentity, signals: &mut Signals) -> Option<&'static str> {
    let mut poll = tokio::time::interval(PID_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick() => if !still_runs(probe.identity(), identity) {
                return None;
            },
            signal = signals.termination.recv() => return Some(signal.name),
        }
    }
}

/// Whether `now` (a fresh probe) is still the process first seen as `then`: a PID freed
/// and reused by a new process reads with another start time.
fn still_runs(now: Option<ProcessIdentity>, then: ProcessIdentity) -> bool {
    now.is_some_and(|now| !now.exited && now.start_ticks == then.start_ticks)
}

/// Forwards every signal to `child` until it exits; returns its status.
async fn supervise(child: &mut Child, signals: &mut Signals) -> io::Result<ExitStatus> {
    loop {
        // Checked after every SIGCHLD (which several exits may share) and every forward.
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        tokio::select! {
            _ = signals.child.recv() => {}
            signal = signals.termination.recv() => {
                // Only `try_wait`, above, collects the child, so until it returns a status the
                // PID still names the child (a zombie at worst), never a newer process.
                match send(child.id(), signal.number) {
                    Ok(()) => eprintln!("plimsoll: {}: forwarded to pid {}", signal.name, child.id()),
                    Err(e) => eprintln!("plimsoll: {}: cannot forward to pid {}: {e}", signal.name, child.id()),
                }
            }
        }
    }
}

/// Sends signal `number` to process `pid`.
fn send(pid: u32, number: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes two integers and reads or writes no memory of this process.
    let sent = unsafe { libc::kill(pid, number) };
    if sent == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A child's exit status as a shell reports it: its code, or 128 + the signal that killed it.
fn exit_status(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        // Exit codes are 0 to 255 and signals 1 to 64 on Unix: the conversions cannot
        // fail, and would give the generic failure if they did.
        (Some(code), _) => u8::try_from(code).unwrap_or(EXIT_FAILURE),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(EXIT_FAILURE),
        // Neither: only a stopped or continued child, which `try_wait` never returns.
        (None, None) => EXIT_FAILURE,
    }
}

/// How the child ended, for stderr.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                libc::SIGHUP => " (SIGHUP)",
                libc::SIGINT => " (SIGINT)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGKILL => " (SIGKILL, as the out-of-memory killer sends)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGTERM => " (SIGTERM)",
                _ => "",
            };
            format!("was killed by signal {signal}{name}; exiting with {}", exit_status(status))
        }
        None => format!("exited with status {}", exit_status(status)),
    }
}

/// A signal received: its name and number.
#[derive(Debug, Clone, Copy)]
struct Received {
    name: &'static str,
    number: libc::c_int,
}

/// The signals the watcher handles, installed together.
#[derive(Debug)]
struct Signals {
    /// SIGTERM, SIGINT and SIGHUP: forwarded to a spawned child, or stopping the watcher.
    termination: Termination,
    /// SIGCHLD: a child has exited.
    child: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers: from here on these signals no longer end the process.
    fn install() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            termination: Termination {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
                hangup: signal(SignalKind::hangup())?,
            },
            child: signal(SignalKind::child())?,
        })
    }
}

/// SIGTERM, SIGINT and SIGHUP.
#[derive(Debug)]
struct Termination {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Termination {
    /// The next of them.
    async fn recv(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => Received { name: "SIGTERM", number: libc::SIGTERM },
            _ = self.interrupt.recv() => Received { name: "SIGINT", number: libc::SIGINT },
            _ = self.hangup.recv() => Received { name: "SIGHUP", number: libc::SIGHUP },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn statuses_map_as_shells_report_them() {
        // A wait status holds the code in its second byte, or the signal in its low bits.
        assert_eq!(exit_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_status(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_status(ExitStatus::from_raw(255 << 8)), 255);
        assert_eq!(exit_status(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_status(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert!(describe(ExitStatus::from_raw(libc::SIGKILL)).contains("signal 9 (SIGKILL"));
    }

    #[test]
    fn a_command_keeps_its_own_options() {
        use clap::Parser;
        let parse = |args: &[&str]| match crate::Cli::try_parse_from(args.iter().copied()) {
            Ok(crate::Cli { command: crate::Command::Watch(args) }) => Ok((args.pid, args.command)),
            Ok(other) => panic!("{args:?} parsed as {other:?}"),
            Err(e) => Err(e.kind()),
        };
        let words = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        let node = words(&["node", "server.js", "--port", "3000", "-v"]);
        assert_eq!(
            parse(&["plimsoll", "watch", "--", "node", "server.js", "--port", "3000", "-v"]),
            Ok((None, node.clone()))
        );
        assert_eq!(parse(&["plimsoll", "watch", "node", "server.js", "--port", "3000", "-v"]), Ok((None, node)));
        assert_eq!(parse(&["plimsoll", "watch", "--pid", "42"]), Ok((Some(42), Vec::new())));
        let usage = clap::error::ErrorKind::MissingRequiredArgument;
        assert_eq!(parse(&["plimsoll", "watch"]), Err(usage));
        assert_eq!(parse(&["plimsoll", "watch", "--pid", "0"]), Err(clap::error::ErrorKind::ValueValidation));
        assert_eq!(parse(&["plimsoll", "watch", "--pid", "2147483648"]), Err(clap::error::ErrorKind::ValueValidation));
        assert_eq!(
            parse(&["plimsoll", "watch", "--pid", "42", "--", "ls"]),
            Err(clap::error::ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn a_reused_pid_is_not_the_process_watched() {
        let then = ProcessIdentity { start_ticks: 100, exited: false };
        assert!(still_runs(Some(then), then));
        assert!(!still_runs(None, then), "gone");
        assert!(!still_runs(Some(ProcessIdentity { exited: true, ..then }), then), "a zombie");
        assert!(!still_runs(Some(ProcessIdentity { start_ticks: 200, exited: false }), then), "another process");
    }

    #[test]
    fn command_labels_fit_the_family() {
        assert_eq!(label("node"), "node");
        let long = "é".repeat(40);
        let cut = label(&long);
        assert_eq!(cut.len(), 64);
        assert!(long.starts_with(&cut));
        assert_eq!(label(&"x".repeat(65)).len(), 64);
    }

    #[test]
    fn a_missing_pid_is_an_error_not_a_panic() {
        // PIDs never exceed pid_max (at most 2^22), so 2^31 - 1 names no process.
        let failure = attach(i32::MAX as u32).expect_err("no such process");
        assert_eq!(failure.status, EXIT_FAILURE);
        assert!(failure.message.contains("no such process"), "{}", failure.message);
        assert_eq!(attach(std::process::id()).expect_err("itself").status, EXIT_CONFIG);
    }
}
