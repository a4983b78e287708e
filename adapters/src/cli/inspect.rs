//! `plimsoll inspect SNAPSHOT [--json] [--demo]`: a snapshot's header, and its SLOs'
//! figures when the configuration says what it holds.
//!
//! The header (format version, configuration fingerprint, time taken, size) is read with
//! [`snapshot::inspect`], which checks the length, magic and checksum. The body can only be
//! decoded against the configuration that wrote it, so if `PLIMSOLL_CONFIG` names SLOs the
//! command builds them exactly as `serve` does ([`state`]), restores the snapshot into them
//! with [`snapshot::restore`] (which checks the fingerprint) and prints each SLO's figures
//! at the moment the snapshot was taken. `--demo` adds the demo's SLO, as `demo` does.
//!
//! Exit status: 0 if the snapshot is valid (and matches the configuration, if one names
//! SLOs); 1 if the file cannot be read or the snapshot is truncated, corrupt, foreign, of
//! another format version or of another configuration (the typed error on stderr); 2 if
//! the configuration is invalid.

use super::{EXIT_CONFIG, EXIT_FAILURE, human, state};
use clap::Args;
use plimsoll::snapshot::{self, SnapshotError, Summary};
use plimsoll::{Config, GoodEvent, Slo, SloWindow};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `plimsoll inspect`'s options.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The snapshot file (`plimsoll.snapshot` in the state directory).
    #[arg(value_name = "SNAPSHOT")]
    snapshot: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Decode a snapshot written by `plimsoll demo`: add the demo's SLO after the
    /// configured ones, as the demo does.
    #[arg(long)]
    demo: bool,
}

/// What the configuration made of the snapshot's body.
enum Body {
    /// It matches: the SLOs, restored to the snapshot's state.
    Decoded(&'static [&'static Slo]),
    /// The configuration names no SLOs, and the snapshot holds parts.
    NotDecoded,
}

/// Runs `inspect`; returns the exit status.
pub(crate) fn run(args: &InspectArgs) -> ExitCode {
    let path = args.snapshot.display();
    let bytes = match std::fs::read(&args.snapshot) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("plimsoll inspect: cannot read {path}: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let summary = match snapshot::inspect(&bytes) {
        Ok(summary) => summary,
        Err(error) => return rejected(&args.snapshot, error),
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("plimsoll inspect: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let slos = match state::build_slos(&state::slo_definitions(&config, args.demo)) {
        Ok(slos) => slos,
        Err(error) => {
            eprintln!("plimsoll inspect: invalid SLO in PLIMSOLL_CONFIG: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // A snapshot with parts cannot be checked against a configuration without any; one
    // without parts (serve with no SLOs) can.
    let body = if slos.is_empty() && summary.parts > 0 {
        Body::NotDecoded
    } else {
        match snapshot::restore(state::state_parts(slos), &bytes) {
            Ok(_) => Body::Decoded(slos),
            Err(error) => return rejected(&args.snapshot, error),
        }
    };
    let output = if args.json {
        let mut text = json_report(args, &summary, bytes.len(), &body).to_string();
        text.push('\n');
        text
    } else {
        text_report(args, &summary, bytes.len(), &body)
    };
    print!("{output}");
    ExitCode::SUCCESS
}

/// Reports a snapshot the core rejected; exit status 1.
fn rejected(path: &std::path::Path, error: SnapshotError) -> ExitCode {
    let hint = match error {
        SnapshotError::ConfigMismatch => {
            "; set PLIMSOLL_CONFIG to the SLO file it was written with (and --demo for the demo's snapshots)"
        }
        _ => "",
    };
    eprintln!("plimsoll inspect: {}: {error} ({error:?}){hint}", path.display());
    ExitCode::from(EXIT_FAILURE)
}

fn good_event(slo: &Slo) -> String {
    match slo.good_event() {
        GoodEvent::Success => "events that succeed".to_owned(),
        GoodEvent::LatencyAtMost(seconds) => format!("events within {seconds} s"),
    }
}

fn text_report(args: &InspectArgs, summary: &Summary, len: usize, body: &Body) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "snapshot     {}", args.snapshot.display());
    let _ = writeln!(out, "format       version {}", summary.version);
    let _ = writeln!(out, "fingerprint  {:#018x}", summary.fingerprint);
    let _ = writeln!(out, "taken at     {} ms ({})", summary.taken_at_ms, human::utc(summary.taken_at_ms));
    let _ = writeln!(
        out,
        "size         {len} bytes: {}, {}",
        human::count(summary.parts.into(), "part"),
        human::count(summary.words.into(), "state word")
    );
    match body {
        Body::NotDecoded => {
            let _ = writeln!(
                out,
                "state        not decoded: PLIMSOLL_CONFIG names no SLOs; set it to the file the snapshot was \
                 written with{}",
                if args.demo { "" } else { " (or pass --demo for the demo's snapshots)" }
            );
        }
        Body::Decoded(slos) => {
            let _ =
                writeln!(out, "state        matches the configuration ({})", human::count(slos.len() as u64, "SLO"));
            for slo in slos.iter() {
                out.push('\n');
                slo_text(&mut out, slo, summary.taken_at_ms);
            }
        }
    }
    out
}

fn slo_text(out: &mut String, slo: &Slo, at_ms: u64) {
    let report = slo.report(at_ms);
    let _ = writeln!(out, "slo {}: {} % of {}", slo.name(), slo.objective() * 100.0, good_event(slo));
    let _ = writeln!(out, "  {:<7} {:>12} {:>12} {:>10}  covered", "window", "good", "total", "burn rate");
    for window in SloWindow::ALL {
        let events = report.events(window);
        let burn = report.burn_rate(window).map_or_else(|| "-".to_owned(), |b| format!("{b:.3}"));
        let covered = report.covered_ms(window);
        let of = Slo::<361, 721>::window_ms(window);
        let coverage = if report.is_covered(window) {
            "all".to_owned()
        } else {
            format!("{} of {}", human::duration(covered), human::duration(of))
        };
        let _ =
            writeln!(out, "  {:<7} {:>12} {:>12} {burn:>10}  {coverage}", window.label(), events.good, events.total);
    }
    let all = slo.cumulative();
    let _ = writeln!(
        out,
        "  all time: {} good of {}; {} invalid latencies, {} dropped (slot full)",
        all.good,
        all.total,
        slo.invalid_events(),
        slo.dropped_events()
    );
    let budget = report.budget();
    let exhaustion = match budget.exhaustion_seconds {
        None => "n/a (no events in the last day)".to_owned(),
        Some(s) if s.is_infinite() => "never at the 1d burn rate".to_owned(),
        Some(s) => format!("in {} at the 1d burn rate", human::duration((s * 1_000.0) as u64)),
    };
    let _ = writeln!(
        out,
        "  error budget: {:.1} % remaining ({:.1} bad events allowed, {} consumed); exhaustion {exhaustion}",
        budget.remaining_ratio * 100.0,
        budget.allowed,
        budget.consumed
    );
    let alerts = report.alerts();
    let yes_no = |b: bool| if b { "FIRING" } else { "no" };
    let _ = writeln!(out, "  alerts: page {}, ticket {}", yes_no(alerts.page), yes_no(alerts.ticket));
}

fn json_report(args: &InspectArgs, summary: &Summary, len: usize, body: &Body) -> Value {
    let (state, slos) = match body {
        Body::NotDecoded => ("not_decoded", Vec::new()),
        Body::Decoded(slos) => ("decoded", slos.iter().map(|slo| slo_json(slo, summary.taken_at_ms)).collect()),
    };
    json!({
        "snapshot": args.snapshot.display().to_string(),
        "version": summary.version,
        "fingerprint": format!("{:#018x}", summary.fingerprint),
        "taken_at_ms": summary.taken_at_ms,
        "taken_at": human::utc(summary.taken_at_ms),
        "size_bytes": len,
        "parts": summary.parts,
        "words": summary.words,
        "state": state,
        "slos": slos,
    })
}

/// A finite number, or null (JSON has no NaN or infinities).
fn number(x: Option<f64>) -> Value {
    x.filter(|x| x.is_finite()).map_or(Value::Null, Value::from)
}

fn slo_json(slo: &Slo, at_ms: u64) -> Value {
    let report = slo.report(at_ms);
    let windows: Vec<Value> = SloWindow::ALL
        .into_iter()
        .map(|window| {
            let events = report.events(window);
            json!({
                "window": window.label(),
                "good": events.good,
                "total": events.total,
                "burn_rate": number(report.burn_rate(window)),
                "covered_seconds": report.covered_ms(window) as f64 / 1_000.0,
                "covered": report.is_covered(window),
            })
        })
        .collect();
    let good_event = match slo.good_event() {
        GoodEvent::Success => json!({ "kind": "success" }),
        GoodEvent::LatencyAtMost(seconds) => json!({ "kind": "latency", "threshold_seconds": seconds }),
    };
    let all = slo.cumulative();
    let budget = report.budget();
    let alerts = report.alerts();
    json!({
        "name": slo.name(),
        "objective": slo.objective(),
        "good_event": good_event,
        "windows": windows,
        "cumulative": { "good": all.good, "total": all.total },
        "invalid_events": slo.invalid_events(),
        "dropped_events": slo.dropped_events(),
        "error_budget": {
            "allowed": budget.allowed,
            "consumed": budget.consumed,
            "remaining_ratio": budget.remaining_ratio,
            // Null without events in the last day; "+Inf" at a zero burn rate.
            "exhaustion_seconds": match budget.exhaustion_seconds {
                Some(s) if s.is_infinite() => json!("+Inf"),
                other => number(other),
            },
        },
        "alerts": { "page": alerts.page, "ticket": alerts.ticket },
    })
}
