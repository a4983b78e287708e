//! `plimsoll`: serve a process's metrics and SLOs, run an instrumented demo shop, inspect a
//! snapshot file, judge a recorded memory trace for leaks, watch another process, or
//! generate Prometheus rules and a Grafana dashboard for the SLOs.
//!
//! ```sh
//! cargo run --release -p plimsoll -- demo             # a shop on :8080, its monitoring on :9090
//! cargo run --release -p plimsoll -- serve            # the exporter with the configured SLOs
//! cargo run --release -p plimsoll -- inspect state/plimsoll.snapshot --json
//! cargo run --release -p plimsoll -- leak-check rss.csv --limit 512MiB --svg rss.svg
//! cargo run --release -p plimsoll -- watch -- node server.js   # a sidecar for another process
//! cargo run --release -p plimsoll -- rules --config plimsoll.toml --out rules/
//! ```
//!
//! Every subcommand has `--help`. Configuration comes from the environment, as
//! [`plimsoll::config`] describes. Exit status: 0 on success (after a graceful shutdown on
//! SIGTERM or SIGINT for `serve` and `demo`), 1 on a failure at run time, 2 on an invalid
//! configuration or usage; `leak-check` and `watch` add their own (see their `--help`:
//! `watch -- CMD` exits with its child's status).

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The command's allocator counts heap bytes in use: the memory monitor's `heap` signal.
#[global_allocator]
static HEAP: plimsoll::alloc::Counting = plimsoll::alloc::Counting::new(std::alloc::System);

const ENVIRONMENT: &str = "\
Configuration (environment):
  PLIMSOLL_ADDR               listening address [default: 127.0.0.1:9090; port 0 picks one]
  PLIMSOLL_TOKEN              bearer token required on every route but /health/live
  PLIMSOLL_STATE_DIR          directory for snapshots (restored at start, saved periodically
                              and at shutdown) [default: none, no snapshots]
  PLIMSOLL_SNAPSHOT_INTERVAL  time between snapshots, such as 30s or 5m [default: 60s]
  PLIMSOLL_CONFIG             TOML file of SLOs: [[slo]] name, objective,
                              latency_threshold_seconds (optional)
  PLIMSOLL_SAMPLE_INTERVAL    time between memory samples [default: 30s]
  PLIMSOLL_MEMORY_LIMIT       limit for out-of-memory forecasts, such as 512MiB
                              [default: the cgroup's limit, if any]
  PLIMSOLL_PROFILE            small or large: the monitors' capacities [default: small,
                              large with ENTERPRISE_MODE=true]
  MONITORING_ENABLED          memory sampling and leak verdicts
  METRICS_ENABLED             the demo shop's request and business families
  TELEMETRY_ENABLED           slow spans
  QUERY_OPTIMIZATION_ENABLED  slow queries and index hints
  SECURITY_ENGINE_ENABLED     rate limits, security events, top offenders
  RESILIENCE_ENABLED          the circuit breaker
                              (each true by default; false leaves that subsystem out)
  OTEL_EXPORTER_OTLP_ENDPOINT push the metrics over OTLP/HTTP (builds with feature otlp;
                              OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
                              OTEL_METRIC_EXPORT_INTERVAL and the others, see plimsoll::otlp)
An invalid value stops start-up with exit status 2 and a message naming the variable,
its value and what is accepted.";

/// Fixed-memory monitoring: serve metrics and SLOs, run a demo, inspect snapshots, judge
/// memory traces, watch another process, generate Prometheus rules.
#[derive(Debug, Parser)]
#[command(name = "plimsoll", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve /metrics, /health, /health/live and /health/ready for the configured SLOs.
    ///
    /// Prints the effective configuration and a footprint report to stderr, restores the
    /// state directory's snapshot (reporting whether it started fresh, restored it or moved
    /// a rejected file aside), then prints `listening on <address>` to stdout once bound.
    /// On SIGTERM or SIGINT it stops accepting, lets responses in flight finish (5 s at
    /// most), saves a final snapshot and exits 0.
    #[command(after_help = ENVIRONMENT)]
    Serve,
    /// Like `serve`, plus an instrumented web shop and visitors to keep it busy.
    ///
    /// The shop is a hyper HTTP/1.1 server on --app-addr, announced as `app listening on
    /// <address>` after the exporter's line: GET / (a page linking the others),
    /// GET /products/:id, GET /search?q=, POST /leads, POST /checkout and POST /login, each
    /// with log-normal latencies, a slow tail, some 5xx and simulated SQL queries. A rate
    /// limiter keyed by x-client-id (else the IP) answers 429 with Retry-After past 10
    /// requests/s (bursts of 20); checkout calls a flaky payment service through a circuit
    /// breaker (503 while open). In-process visitors send about --rate requests/s over
    /// loopback: shoppers, an abusive client, a path scanner and a password guesser. It all
    /// feeds demo_http_requests_total, demo_http_request_duration_seconds, demo_leads_total,
    /// demo_conversions_total, the SLO demo_latency (99 % within 300 ms), and the rate limit,
    /// security event, top-offender, slow-query, slow-span and breaker monitors shown on
    /// /metrics, /health and /api/report. Payments fail in the second minute of every ten
    /// from the start and search degrades in the fourth, so burn rates and the breaker move. --leak RATE leaks memory for
    /// real (up to 1 GiB) so the leak verdict turns. Every 5 s a status line on stderr gives
    /// requests/s, p99, the SLO's burn rate and alert, the rss verdict, the breaker's state
    /// and the requests limited. PLIMSOLL_PROFILE (small, or large with ENTERPRISE_MODE)
    /// sizes the monitors, whose footprints are printed at start; each *_ENABLED=false
    /// leaves its subsystem out.
    #[command(after_help = ENVIRONMENT)]
    Demo(cli::demo::DemoArgs),
    /// Print a snapshot file's header and, given its configuration, its SLOs' figures.
    ///
    /// The header (format version, configuration fingerprint, time taken, size) is always
    /// shown. If PLIMSOLL_CONFIG names SLOs, they are built as `serve` builds them, the
    /// snapshot is restored into them (checking its fingerprint) and each SLO's events,
    /// burn rates per window, error budget and alerts are printed as of the snapshot's
    /// time. Exit status 1 if the file is unreadable, truncated, corrupt, not a snapshot,
    /// of another format version or of another configuration.
    #[command(after_help = ENVIRONMENT)]
    Inspect(cli::inspect::InspectArgs),
    /// Judge a recorded memory trace (CSV) offline: leak verdict, growth and forecast.
    ///
    /// The first column is time: seconds or milliseconds since any origin (told by a name
    /// such as t_s or t_ms, or by --time-unit) or RFC 3339 date-times. Every further
    /// numeric column is a memory signal in bytes and gets its own verdict (stable,
    /// growing, leak_suspected or not_enough_data), its slope, the confidence of the trend
    /// and the time until --limit. The lower envelope (memory after collection) is judged
    /// at two resolutions chosen from the trace's span and sampling rate, after a warm-up
    /// of 10 % of the span (at most 5 minutes). A malformed row stops with its line number
    /// unless --skip-malformed. Exit status: 0 analysed; 3 with --fail-on-leak when a
    /// signal is leak_suspected, or with --evaluate when a goal is missed; 1 when the trace
    /// cannot be read; 2 on a usage error.
    LeakCheck(cli::leak_check::LeakCheckArgs),
    /// Watch another process (any language): its memory, leak verdicts and forecast.
    ///
    /// `watch -- CMD ARGS...` spawns CMD, forwards SIGTERM, SIGINT and SIGHUP to it and
    /// exits with its status (128 + the signal's number if a signal killed it; 127 if CMD
    /// is not found, 126 if it cannot be run). `watch --pid PID` attaches to a running
    /// process and exits 0 once it has exited, or on SIGTERM, SIGINT or SIGHUP; exit 1 if
    /// there is no such process. Meanwhile it samples the process's RSS, threads, open file
    /// descriptors and its cgroup every PLIMSOLL_SAMPLE_INTERVAL, and serves /metrics
    /// (with plimsoll_watch_target_info{pid,command}), /health and /api/report as `serve`
    /// does; it prints `listening on <address>` to stdout once bound. The state directory
    /// and SLOs are not used.
    #[cfg(unix)]
    #[command(after_help = ENVIRONMENT)]
    Watch(cli::watch::WatchArgs),
    /// Write Prometheus recording and alerting rules and a Grafana dashboard for the SLOs.
    ///
    /// Reads the SLOs of --config (else PLIMSOLL_CONFIG; --demo adds the demo's) and writes
    /// plimsoll-rules.yml (per SLO: error ratios and burn rates of every window over all
    /// instances, from plimsoll_slo_events_total; the alerts PlimsollSLOPageBurn and
    /// PlimsollSLOTicketBurn with the in-process thresholds, severity page or ticket) and
    /// plimsoll-dashboard.json (Grafana, data source ${DS_PROMETHEUS}) into --out. The same
    /// SLOs always give the same bytes. Exit status 2 if the configuration is invalid or
    /// names no SLO, 1 if a file cannot be written.
    Rules(cli::rules::RulesArgs),
}

fn main() -> ExitCode {
    one_malloc_arena();
    match Cli::parse().command {
        Command::Serve => cli::run::serve(None),
        Command::Demo(args) => cli::run::serve(Some(args)),
        Command::Inspect(args) => cli::inspect::run(&args),
        Command::LeakCheck(args) => cli::leak_check::run(&args),
        #[cfg(unix)]
        Command::Watch(args) => cli::watch::run(args),
        Command::Rules(args) => cli::rules::run(&args),
    }
}

/// Makes glibc's allocator serve every thread from one arena. By default each thread that
/// allocates gets an arena of its own, and memory freed in one cannot serve another: under
/// `plimsoll demo`, loaded as `benches/soak.sh` loads it (`wrk -c16` on `/metrics` and on
/// the shop), the process's RSS crept up by 0.26 MiB over five minutes with the runtime's
/// two workers, and stayed within 0.03 MiB with one arena, 0.5 MiB lower (2-core x86_64).
/// The process allocates little after start-up, so the arena's lock is not contended.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: `mallopt` sets a parameter of glibc's allocator and touches no memory of
    // ours; it runs first thing in `main`, before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_rate_is_bounded() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["plimsoll", "demo", "--rate", "500"]).is_ok());
        assert!(parse(&["plimsoll", "demo", "--rate", "-1"]).is_err());
        assert!(parse(&["plimsoll", "demo", "--rate", "1000000"]).is_err());
        assert!(parse(&["plimsoll", "inspect"]).is_err(), "inspect needs a file");
    }
}
