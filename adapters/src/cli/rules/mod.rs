//! `plimsoll rules [--config FILE] [--demo] [--out DIR]`: Prometheus recording and alerting
//! rules, and a Grafana dashboard, generated from the configured SLOs.
//!
//! The in-process alerts judge one process's events; a fleet of instances is judged by a
//! Prometheus server that scrapes them all. This command writes what that server needs to
//! judge the same SLOs the same way, across every instance:
//!
//! - `plimsoll-rules.yml`: the rule file ([`prometheus`]), for `rule_files:`; it passes
//!   `promtool check rules`;
//! - `plimsoll-dashboard.json`: a Grafana dashboard ([`dashboard`]), to import, its data
//!   source the `${DS_PROMETHEUS}` input.
//!
//! The SLOs come from the TOML file given by `--config` (else `PLIMSOLL_CONFIG`), read and
//! checked exactly as `serve` reads and checks them, and with `--demo` the demo's
//! `demo_latency` after them, as `plimsoll demo` adds it. The output depends only on the
//! SLOs (no time, no path, no host), so running the command twice gives the same bytes.
//!
//! # The rules
//!
//! Per SLO (`N` its name, `O` its objective), in the style Sloth and Pyrra generate, from
//! the exported `plimsoll_slo_events_total{slo, result="good"|"bad"}` of every instance:
//!
//! | record | expression |
//! |---|---|
//! | `slo:plimsoll_error_ratio:rateW` | `sum by (slo) (rate(plimsoll_slo_events_total{slo="N",result="bad"}[W])) / sum by (slo) (rate(plimsoll_slo_events_total{slo="N"}[W]))` |
//! | `slo:plimsoll_burn_rate:rateW` | `slo:plimsoll_error_ratio:rateW{slo="N"} / (1 - O)` |
//! | `slo:plimsoll_events:increaseW` (long windows) | `sum by (slo) (increase(plimsoll_slo_events_total{slo="N"}[W]))` |
//! | `slo:plimsoll_objective:ratio` | `vector(O)`, labelled `slo="N"` |
//! | `slo:plimsoll_error_budget_remaining:ratio30d` | `1 - slo:plimsoll_error_ratio:rate30d{slo="N"} / (1 - O)` |
//!
//! for `W` in 5m, 30m, 1h, 2h, 6h, 1d, 3d (group `plimsoll-slo:N`, evaluated at the global
//! interval) and 7d, 30d (group `plimsoll-slo-period:N`, every 5 minutes: those ranges are
//! long and only the dashboard reads them). The burn rate is the in-process one, `(bad /
//! total) / (1 - objective)`, with `1 - O` left for PromQL to compute as Rust does.
//!
//! Then the alerts, one rule per pair of windows of the SRE Workbook's table, with the
//! in-process thresholds ([`BurnThresholds`](plimsoll::BurnThresholds) of the built SLO,
//! the Workbook's) and its low-traffic guard ([`DEFAULT_MIN_EVENTS`](plimsoll::DEFAULT_MIN_EVENTS)
//! events in the long window):
//!
//! | alert | long, short | burn rate above | `for` | severity |
//! |---|---|---|---|---|
//! | `PlimsollSLOPageBurn` | 1h, 5m | 14.4 | 2m | `page` |
//! | `PlimsollSLOPageBurn` | 6h, 30m | 6 | 15m | `page` |
//! | `PlimsollSLOTicketBurn` | 1d, 2h | 3 | 1h | `ticket` |
//! | `PlimsollSLOTicketBurn` | 3d, 6h | 1 | 3h | `ticket` |
//!
//! each `slo:plimsoll_burn_rate:rate<long>{slo="N"} > T and on (slo)
//! slo:plimsoll_burn_rate:rate<short>{slo="N"} > T and on (slo)
//! slo:plimsoll_events:increase<long>{slo="N"} >= 100`, labelled `severity`, `long` and
//! `short`, annotated with both burn rates. The names say what the in-process
//! [`Alerts`](plimsoll::Alerts) says: `page` is either page pair, `ticket` either ticket
//! pair. The `for` durations are Pyrra's for these windows (a short wait that filters one
//! bad evaluation without delaying a page by more than minutes).
//!
//! # Where Prometheus and the process differ
//!
//! - Prometheus sums every instance; the process judges its own events.
//! - The process judges a window only once it has observed all of it (its coverage guard);
//!   Prometheus judges whatever its storage holds, so after a fresh start its "1h" rate is
//!   over the minutes it has. `rate()` also handles counter resets, so a restarted
//!   instance loses nothing.
//! - `for` delays the Prometheus alert (pending, then firing); the in-process state has no
//!   delay.
//! - The windows: `rate()` over exactly `W` against the process's minute and hour slots
//!   (exact to one slot, see [`Slo`](plimsoll::Slo)).
//!
//! Exit status: 0 written; 1 if a file cannot be written; 2 if the configuration is invalid
//! or names no SLO.

mod dashboard;
mod prometheus;

use super::{EXIT_CONFIG, EXIT_FAILURE, state};
use clap::Args;
use plimsoll::{Config, Slo};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The rule file's name in `--out`.
pub(crate) const RULES_FILE: &str = "plimsoll-rules.yml";
/// The dashboard's file name in `--out`.
pub(crate) const DASHBOARD_FILE: &str = "plimsoll-dashboard.json";

/// `plimsoll rules`'s options.
#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// The TOML file of SLOs ([[slo]] name, objective, latency_threshold_seconds)
    /// [default: PLIMSOLL_CONFIG].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also generate for the demo's SLO (demo_latency), after the configured ones, as
    /// `plimsoll demo` adds it.
    #[arg(long)]
    demo: bool,
    /// Where to write plimsoll-rules.yml and plimsoll-dashboard.json (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

/// Runs `rules`; returns the exit status.
pub(crate) fn run(args: &RulesArgs) -> ExitCode {
    let slos = match slos(args) {
        Ok(slos) => slos,
        Err(message) => {
            eprintln!("plimsoll rules: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let files = [(RULES_FILE, prometheus::rules(slos)), (DASHBOARD_FILE, dashboard::dashboard(slos))];
    match write(&args.out, &files) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("plimsoll rules: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The SLOs, read from the file and built as `serve` builds them.
fn slos(args: &RulesArgs) -> Result<&'static [&'static Slo], String> {
    let file = args.config.as_ref().map(|path| path.to_string_lossy().into_owned());
    let config = match file {
        // Only the file: the other variables play no part in the rules.
        Some(file) => Config::from_vars(|name| (name == "PLIMSOLL_CONFIG").then(|| file.clone())),
        None => Config::from_vars(|name| (name == "PLIMSOLL_CONFIG").then(|| std::env::var(name).ok()).flatten()),
    }
    .map_err(|error| error.to_string())?;
    let slos = state::build_slos(&state::slo_definitions(&config, args.demo))
        .map_err(|error| format!("invalid SLO: {error}"))?;
    if slos.is_empty() {
        return Err("no SLO to generate rules for: give --config FILE (or PLIMSOLL_CONFIG) with [[slo]] tables, \
                    or --demo"
            .to_owned());
    }
    Ok(slos)
}

/// Writes each file into `dir` (created if missing) and prints its path on stdout.
fn write(dir: &Path, files: &[(&str, String)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A number as people write it: at most three decimals, no trailing zeros.
fn number(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

/// What makes an event good, in words: `within 0.3 s` or `succeed`.
fn good_events(slo: &Slo) -> String {
    match slo.good_event() {
        plimsoll::GoodEvent::LatencyAtMost(seconds) => format!("of events within {} s", seconds),
        plimsoll::GoodEvent::Success => "of events succeed".to_owned(),
    }
}

/// `99.9 % of events within 0.3 s`.
fn objective_text(slo: &Slo) -> String {
    format!("{} % {}", number(slo.objective() * 100.0), good_events(slo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(number(99.9), "99.9");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(2.0000000000000004), "2");
        assert_eq!(number(14.4), "14.4");
        assert_eq!(number(-0.0001), "0");
    }
}
