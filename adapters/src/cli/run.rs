//! `plimsoll serve` and `plimsoll demo`: configuration, state, the exporter, signals and
//! shutdown.
//!
//! Start-up, in order: read the configuration (exit 2 if invalid) and print it; build the
//! SLOs ([`state`]); restore the state directory's snapshot and report the outcome; for the
//! demo, register its families and the monitors its profile and switches keep; install the
//! SIGTERM/SIGINT handlers; bind the demo's shop (if any) and the exporter (every monitor a
//! section of `/api/report` and `/health`), print the footprint report to stderr,
//! `listening on <address>` to stdout and, for the demo, `app listening on <address>`. Then
//! serve until a signal: stop accepting, let responses in flight finish (the exporter's
//! grace period, 5 s), stop the demo (its traffic, then its shop, 2 s of grace), make the
//! OTLP push's final push if one runs ([`otlp`]), save the final snapshot, exit 0.
//!
//! The runtime has two worker threads (scrapes, the snapshot ticker, the memory sampler and
//! the demo are light; two threads bound the stacks and let a scrape and the demo run at
//! once) and at most one blocking thread, for snapshot saves.

use super::demo::{self, Demo, DemoArgs};
use super::{EXIT_CONFIG, EXIT_FAILURE, footprint, otlp, snapshots, state};
use plimsoll::snapshot::SnapshotPart;
use plimsoll::{
    Clock, Config, Exporter, ExporterMetrics, Limits, MAX_SLOS, MemoryMonitor, Registry, Slo, SloExport, StateFile,
    StdClock,
};
use std::io::{self, Write};
use std::process::ExitCode;

/// The registry: the exporter's 6 families, the SLO export's 11, the memory monitor's 10,
/// the demo's 4 and its monitors' 19 (rate limits 4, security events 2, top limited
/// clients 1, slow queries 3, slow spans 3, breakers 6), and the OTLP push's 10 if built
/// with it, with room to spare.
static REGISTRY: Registry<64> = Registry::new();
/// Every configured SLO (and the demo's), exported and judged on `/health`.
static SLOS: SloExport<MAX_SLOS> = SloExport::new();
static EXPORTER_METRICS: ExporterMetrics = ExporterMetrics::new();
/// The exporter's limits: its defaults (64 connections, 5 s header and shutdown
/// deadlines; see [`Limits`]).
const LIMITS: Limits = Limits::DEFAULT;
/// The one clock: SLO events, the exporter's SLO updates and snapshot times.
pub(crate) static CLOCK: StdClock = StdClock::new();

/// Why the command stopped early: the message for stderr and the exit status.
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn config(message: impl ToString) -> Self {
        Self { status: EXIT_CONFIG, message: message.to_string() }
    }

    fn run(message: impl ToString) -> Self {
        Self { status: EXIT_FAILURE, message: message.to_string() }
    }
}

/// Runs `serve`, or `demo` with `demo` given; returns the exit status.
pub(crate) fn serve(demo: Option<DemoArgs>) -> ExitCode {
    match start_and_serve(demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { status, message }) => {
            eprintln!("plimsoll: {message}");
            ExitCode::from(status)
        }
    }
}

fn start_and_serve(demo: Option<DemoArgs>) -> Result<(), Failure> {
    let config = Config::from_env().map_err(Failure::config)?;
    let command = if demo.is_some() { "demo" } else { "serve" };
    eprintln!("plimsoll {} {command}: effective configuration", env!("CARGO_PKG_VERSION"));
    eprint!("{config}");
    let push = otlp::configure().map_err(Failure::config)?;
    let slos = state::build_slos(&state::slo_definitions(&config, demo.is_some()))
        .map_err(|e| Failure::config(format!("invalid SLO in PLIMSOLL_CONFIG: {e}")))?;
    for slo in slos {
        // `build_slos` checked what `add` checks, so this fails only on a bug.
        SLOS.add(*slo).expect("SLOs checked by build_slos");
    }
    let parts = state::state_parts(slos);
    // Restore before anything records (the demo starts after this).
    let state_file = config.state_dir.as_deref().and_then(|dir| snapshots::open(dir, parts));
    let demo = match demo {
        Some(args) => {
            let slo = state::find(slos, state::DEMO_SLO_NAME).expect("the demo's SLO is built");
            Some(Demo::install(args, &config, &REGISTRY, slo).map_err(Failure::run)?)
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .thread_name("plimsoll")
        .enable_all()
        .build()
        .map_err(|e| Failure::run(format!("cannot start the runtime: {e}")))?;
    // With monitoring off, nothing is sampled and no memory family is exported.
    let memory = config.subsystems.monitoring.then(|| MemoryMonitor::start(config.memory_limit, Some(&crate::HEAP)));
    runtime.block_on(run(&config, slos, parts, state_file, demo, memory, push)).map_err(Failure::run)
}

/// Serves until a signal, then shuts down; an error is the message to print.
async fn run(
    config: &Config,
    slos: &'static [&'static Slo],
    parts: &'static [&'static dyn SnapshotPart],
    state_file: Option<StateFile>,
    demo: Option<Demo>,
    memory: Option<&'static MemoryMonitor>,
    push: otlp::Setting,
) -> Result<(), String> {
    // Installed before the address is announced, so a signal sent as soon as a supervisor
    // reads it is handled, not fatal.
    let mut signals = Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let shop = match &demo {
        Some(demo) => Some(demo.bind().await?),
        None => None,
    };
    let mut exporter = Exporter::builder(&REGISTRY);
    if let Some(monitor) = memory {
        exporter = exporter.memory(monitor);
    }
    for &section in demo.iter().flat_map(Demo::sections) {
        exporter = exporter.section(section);
    }
    let exporter = exporter
        .address(config.address)
        .token(config.token.clone())
        .slos(&SLOS)
        .snapshot(parts)
        .clock(&CLOCK)
        .metrics(&EXPORTER_METRICS)
        .limits(LIMITS)
        .bind()
        .await
        .map_err(|e| e.to_string())?;
    let extras = demo.as_ref().map_or(&[][..], Demo::extras);
    let monitors = demo.as_ref().map(Demo::footprints);
    eprint!("\n{}", footprint::report(&REGISTRY, &SLOS, slos, memory, extras, monitors, &exporter.limits()));
    if demo.is_some() {
        eprintln!("{}", demo::connections_bound());
    }
    announce(exporter.local_addr());
    if let Some(shop) = &shop {
        demo::announce(shop);
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let snapshots =
        state_file.map(|file| tokio::spawn(snapshots::run(file, parts, config.snapshot_interval, stopped.clone())));
    let demo = demo.zip(shop).map(|(demo, shop)| tokio::spawn(demo.run(shop, memory, stopped.clone())));
    let sampling = memory.map(|monitor| tokio::spawn(sample_memory(monitor, config.sample_interval, stopped.clone())));
    // After the exporter's bind registered its families, so the push carries them too.
    let pushing = otlp::start(push, &REGISTRY)?;

    let report = exporter
        .serve(async {
            let signal = signals.recv().await;
            eprintln!("plimsoll: {signal}: shutting down");
        })
        .await;
    if report.aborted > 0 {
        eprintln!("plimsoll: closed {} connections that outlasted the grace period", report.aborted);
    }
    // The sender is alive until here, so every task sees the stop, not a dropped channel.
    let _ = stop.send(true);
    if let Some(demo) = demo {
        demo.await.map_err(|e| format!("the demo failed: {e}"))?;
    }
    if let Some(sampling) = sampling {
        sampling.await.map_err(|e| format!("the memory sampler failed: {e}"))?;
    }
    otlp::stop(pushing).await;
    if let Some(snapshots) = snapshots {
        let saved = snapshots.await.map_err(|e| format!("the snapshot task failed: {e}"))?;
        let bytes = saved.map_err(|e| format!("final snapshot failed: {e}"))?;
        eprintln!("plimsoll: final snapshot saved ({bytes} bytes)");
    }
    eprintln!("plimsoll: stopped");
    Ok(())
}

/// Samples memory every `interval` (the first sample at once) until `stop`, each time
/// after giving the allocator's free pages back to the kernel ([`release_free_heap`]).
pub(crate) async fn sample_memory(
    monitor: &'static MemoryMonitor,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    // After a stall, sample once and carry on, rather than catching up with a burst.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                release_free_heap();
                monitor.sample(CLOCK.now_ms());
            }
            () = super::stopped(&mut stop) => return,
        }
    }
}

/// Gives the pages of glibc's allocator that hold no live allocation back to the kernel
/// (`malloc_trim`). glibc keeps memory freed inside its heap for reuse, so a burst of
/// requests in flight at once (the demo's incidents) leaves the RSS at its high-water mark,
/// and freed chunks scattered by ordinary traffic make it creep up by a few KiB a minute
/// with the live heap flat: under `benches/soak.sh`'s load the demo's anonymous memory
/// rose 72 KiB in ten minutes while its counted heap stayed at 2.28 MB. Trimmed before
/// each sample, the RSS the leak rules judge is live memory plus code, not the allocator's
/// cache; a real leak is live memory, which no trim gives back. One walk of a heap of a
/// few MiB every sampling interval (30 s by default).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_heap() {
    // SAFETY: `malloc_trim` only returns free memory of glibc's allocator to the kernel,
    // under the allocator's own locks; it reads or writes no memory of ours.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_heap() {}

/// Prints `listening on <address>` to stdout, flushed: supervisors and tests read it to
/// learn the port (with `PLIMSOLL_ADDR=127.0.0.1:0`). A closed stdout is not an error.
pub(crate) fn announce(address: std::net::SocketAddr) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "listening on {address}");
    let _ = stdout.flush();
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere than Unix).
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers: from here on the signals no longer end the process.
    fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal's name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
