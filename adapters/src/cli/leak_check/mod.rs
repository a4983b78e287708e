//! `plimsoll leak-check TRACE.csv`: the memory monitor's leak verdict on a recorded trace,
//! offline, with a forecast of when the limit is reached and an optional SVG chart.
//!
//! # The trace
//!
//! A CSV file with a header row. Lines starting with `#` are comments; fields are trimmed;
//! quoting follows RFC 4180.
//!
//! - **The first column is time**, in one of three forms, told apart by `--time-unit` or,
//!   without it, by the column's name, then by its first value:
//!   - seconds since any origin when the name ends in `_s`, `_sec`, `_secs` or `_seconds`
//!     (or is `s`, `seconds`): `t_s`, `uptime_seconds`;
//!   - milliseconds since any origin when it ends in `_ms`, `_millis` or `_milliseconds`
//!     (or is `ms`): `t_ms`, `time_ms`;
//!   - otherwise RFC 3339 date-times with an offset (`2026-11-27T06:00:00.250Z`,
//!     `…+01:00`), if the first value is one.
//!
//!   Numbers may have fractions. A bare number under another name (`time`, `timestamp`)
//!   is an error asking for `--time-unit`: Unix seconds and milliseconds cannot be told
//!   apart safely from the values. Rows must be in time order; equal times are allowed.
//! - **Every further numeric column is a memory signal** in bytes (a finite number ≥ 0,
//!   `1.5e9` allowed) and gets its own verdict; `--column NAME` keeps one. A column is
//!   numeric when its first non-empty value is a number; columns that are not (a host
//!   name, a label) are listed as ignored. An empty cell or `NaN` is a missed sample of
//!   that signal: skipped and counted, not an error.
//! - **Malformed rows are errors**, reported with their line number (exit status 1): a row
//!   with the wrong number of fields, a time that is not one or goes backwards, a value of
//!   a memory column that is not a number of bytes. With `--skip-malformed` they are
//!   skipped instead, and counted in the output with the first one's line and reason. A
//!   trace with fewer than two data rows, or whose rows all have the same time, is an
//!   error: there is no trend to judge.
//!
//! # The analysis, and how it adapts to the trace
//!
//! Each signal is judged as [`plimsoll::memory`] judges a ring (its module docs give the
//! rules: the most likely change point, a step or a change of slope, and the part after it
//! judged alone when the change is clear; Mann–Kendall at p < 0.01, a Theil–Sen slope of at
//! least max(1 MiB/h, 0.5 %/h of the level) known within 20 %, a rise of twice the noise,
//! no plateau in the last third), on a lower
//! envelope built from the trace itself rather than the monitor's fixed 30 s and 10 min
//! buckets, so that a 10-minute trace at 4 samples a second and a 30-day trace at one
//! sample a minute are judged alike:
//!
//! 1. **Warm-up.** The first 10 % of the signal's span, at most 5 minutes (the monitor's
//!    warm-up), is left out: start-up allocations are not a leak. `--warm-up` sets it.
//! 2. **Two resolutions.** The rest is cut into 120 buckets (fine) and into 20 (coarse),
//!    each at least 4 sampling intervals wide (the median gap between samples), so a
//!    bucket's minimum is a floor over several samples. A 10-minute trace at 4 samples/s
//!    gets buckets of 4.5 s and 27 s; a 30-day trace at one a minute, of 6 h and 1.5 d.
//!    The fine envelope follows the signal closely; the coarse one sees through a
//!    collector's sawtooth slower than the fine buckets.
//! 3. **Lower envelope.** Each bucket's minimum: memory just after collection. Empty
//!    buckets (gaps) are skipped; the last bucket is left out unless the trace covers it
//!    (as the monitor leaves out the bucket still filling).
//! 4. **Verdict.** [`Assessment::of`](plimsoll::memory::Assessment::of) on each envelope,
//!    with the monitor's [`LeakRules`] but for two changes: the relative threshold
//!    (0.5 %/h of the level, meant for spans up to the coarse ring's 2 days) is scaled by
//!    2 days / span on longer traces, so a month-long linear leak is not asked to outgrow
//!    its own level; and no verdict is drawn from less than 2 minutes after the warm-up,
//!    where a collector's cycle of up to a minute could be one rising half of it. A
//!    plateau at either resolution wins (growth that levelled off is not a leak, however
//!    the other envelope reads); otherwise the more severe verdict wins, the fine one's
//!    on a tie (as the monitor's two rings). A change point needs 10 envelope points
//!    after it: a twelfth of the fine envelope's span.
//!
//! How well this does, on synthetic and recorded traces of known truth, is measured by
//! `--evaluate` (see [`evaluate`]) and reported in `tests/traces/README.md`.
//!
//! The slope is the Theil–Sen slope of the envelope (of its part after the change point,
//! which the text report gives as `change`, the JSON as `change_seconds`); the confidence
//! is 1 − the Mann–Kendall p-value (that the envelope trends at all, either way, over the
//! same part); the forecast is
//! `(limit − level) / slope` from the last envelope point, for a `growing` or
//! `leak_suspected` signal. It forecasts the **floor** reaching the limit: a process whose
//! peaks ride well above its floor runs out sooner, by the sawtooth's height.
//!
//! # Output and exit status
//!
//! Text per signal: the verdict, the slope (human units per hour), the confidence, the
//! level, the change point the verdict is drawn after (if any) and the forecast, then how
//! the trace was analysed. `--json` prints the same as
//! one object. `--svg FILE` writes a self-contained chart (see [`svg`]).
//!
//! Exit status: 0 when the trace was analysed, whatever the verdicts; 3 with
//! `--fail-on-leak` when any signal's verdict is `leak_suspected` (for CI: a `growing`
//! signal does not fail); 1 when the trace cannot be read or is malformed or the chart
//! cannot be written; 2 on a usage error. `--evaluate` ([`evaluate`]) exits 3 when a goal
//! is missed.
//!
//! # When not to use it
//!
//! On a trace that mixes processes (a restart drops the floor, and the verdict then
//! judges the restart), or on signals that grow with load during the day: a trace that
//! ends while load rises reads as a leak. Judge the same hours of two days instead.

mod analysis;
mod evaluate;
mod svg;
mod trace;

use super::{EXIT_FAILURE, human};
use analysis::{Analysis, Settings};
use clap::Args;
use plimsoll::memory::{LeakRules, Verdict};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trace::{ReadOptions, TimeUnit, Trace};

/// Exit status of `--fail-on-leak` on a leak, and of `--evaluate` on a missed goal.
const EXIT_CHECK_FAILED: u8 = 3;

/// `plimsoll leak-check`'s options.
#[derive(Debug, Args)]
pub(crate) struct LeakCheckArgs {
    /// The trace: CSV with a header row, time first, then memory columns in bytes.
    #[arg(value_name = "TRACE.csv", required_unless_present = "evaluate")]
    trace: Option<PathBuf>,
    /// Memory limit for the forecast: 512MiB, 1GiB, 500MB or a number of bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_limit)]
    limit: Option<u64>,
    /// Judge only this memory column.
    #[arg(long, value_name = "NAME")]
    column: Option<String>,
    /// How the time column is written [default: by its name (t_s, t_ms), else RFC 3339
    /// date-times].
    #[arg(long, value_enum)]
    time_unit: Option<TimeUnit>,
    /// Leave this much out at the start, such as 90s or 5m [default: 10 % of the span, at
    /// most 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_warm_up)]
    warm_up: Option<f64>,
    /// Write an SVG chart of each signal to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 3 if any signal's verdict is leak_suspected.
    #[arg(long)]
    fail_on_leak: bool,
    /// Skip malformed rows and count them, instead of stopping at the first.
    #[arg(long)]
    skip_malformed: bool,
    /// Judge the detector on the labelled traces a manifest lists (tests/traces/
    /// manifest.toml): false positives, detection delay, forecast error; a Markdown table.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["trace", "limit", "column", "time_unit", "warm_up", "svg", "fail_on_leak", "skip_malformed"])]
    evaluate: Option<PathBuf>,
}

/// A `--limit` value, in bytes.
fn parse_limit(value: &str) -> Result<u64, String> {
    plimsoll::config::parse_bytes(value.trim())
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| "expected a positive size such as 512MiB, 1GiB, 500MB or a number of bytes".to_owned())
}

/// A `--warm-up` value, in milliseconds.
fn parse_warm_up(value: &str) -> Result<f64, String> {
    let duration: jiff::SignedDuration =
        value.trim().parse().map_err(|e| format!("expected a duration such as 90s or 5m ({e})"))?;
    let ms = duration.as_secs_f64() * 1_000.0;
    if ms >= 0.0 { Ok(ms) } else { Err("a warm-up cannot be negative".to_owned()) }
}

/// Runs `leak-check`; returns the exit status.
pub(crate) fn run(args: &LeakCheckArgs) -> ExitCode {
    if let Some(manifest) = &args.evaluate {
        return evaluate::run(manifest, args.json);
    }
    let Some(path) = &args.trace else {
        // clap requires one of the two.
        return ExitCode::from(super::EXIT_CONFIG);
    };
    let options =
        ReadOptions { time_unit: args.time_unit, column: args.column.clone(), skip_malformed: args.skip_malformed };
    let trace = match trace::read(path, &options) {
        Ok(trace) => trace,
        Err(error) => {
            eprintln!("plimsoll leak-check: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let settings = Settings { limit_bytes: args.limit, warm_up_ms: args.warm_up, rules: LeakRules::DEFAULT };
    let analyses: Vec<Analysis> = trace.signals.iter().map(|s| analysis::analyse(&s.samples, &settings)).collect();
    if let Some(svg_path) = &args.svg {
        if let Err(error) = std::fs::write(svg_path, svg::chart(&trace, &analyses, args.limit)) {
            eprintln!("plimsoll leak-check: cannot write {}: {error}", svg_path.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    if args.json {
        println!("{}", json_report(path, &trace, &analyses, args.limit));
    } else {
        print!("{}", text_report(path, &trace, &analyses, args.limit));
    }
    let leak = analyses.iter().any(|a| a.assessment.verdict == Verdict::LeakSuspected);
    if args.fail_on_leak && leak { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS }
}

/// A size in binary units with three significant digits: `980 KiB`, `45.3 MiB`, `1.50 GiB`.
pub(crate) fn bytes(value: f64) -> String {
    let magnitude = value.abs();
    let units = [(1u64 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    let (size, unit) = units.into_iter().find(|&(size, _)| magnitude >= size as f64).unwrap_or((1, "B"));
    let scaled = value / size as f64;
    let decimals = match scaled.abs() {
        _ if size == 1 => 0,
        x if x < 10.0 => 2,
        x if x < 100.0 => 1,
        _ => 0,
    };
    format!("{scaled:.decimals$} {unit}")
}

/// A growth rate per hour with its sign: `+16.0 MiB/h`, `-512 KiB/h`, `0 B/h`.
pub(crate) fn rate(bytes_per_hour: f64) -> String {
    let sign = if bytes_per_hour > 0.0 { "+" } else { "" };
    format!("{sign}{}/h", bytes(bytes_per_hour))
}

/// Seconds as a short duration: `250ms`, `4.5s`, `45s`, `4m 12s`, `29d 23h`.
pub(crate) fn seconds(value: f64) -> String {
    match value.max(0.0) {
        v if v > 0.0 && v < 1.0 => format!("{:.0}ms", v * 1_000.0),
        v if v < 10.0 && v.fract() >= 0.05 => format!("{v:.1}s"),
        v => human::duration((v * 1_000.0).min(u64::MAX as f64) as u64),
    }
}

/// The trace's time `ms` (since its first row) as the file writes it: a UTC date-time for
/// date-time traces, else the value in the file's unit.
fn time_label(trace: &Trace, ms: f64) -> String {
    let at = trace.start_ms + ms;
    match trace.time_unit {
        TimeUnit::Rfc3339 if at >= 0.0 => human::utc(at as u64),
        TimeUnit::Rfc3339 | TimeUnit::Milliseconds => format!("{} = {at:.0}", trace.time_column),
        TimeUnit::Seconds => format!("{} = {:.0}", trace.time_column, at / 1_000.0),
    }
}

/// The forecast in words.
fn forecast(trace: &Trace, analysis: &Analysis, limit: Option<u64>) -> String {
    let Some(limit) = limit else {
        return "no limit given (--limit 512MiB)".to_owned();
    };
    match analysis.assessment.eta_seconds {
        None => "no forecast without a verdict".to_owned(),
        Some(eta) if eta <= 0.0 => format!("the floor is at or over the limit of {}", bytes(limit as f64)),
        Some(eta) if eta.is_infinite() => format!("not growing: the limit of {} is not in sight", bytes(limit as f64)),
        Some(eta) => {
            let at_ms = analysis.envelope.last().map_or(0.0, |p| p.0) + eta * 1_000.0;
            format!("{} reached in {} ({})", bytes(limit as f64), seconds(eta), time_label(trace, at_ms))
        }
    }
}

/// The verdict in capitals for the text report, with the plateau note.
fn verdict_text(analysis: &Analysis) -> String {
    let assessment = &analysis.assessment;
    match assessment.verdict {
        Verdict::LeakSuspected => "LEAK SUSPECTED (leak_suspected)".to_owned(),
        Verdict::Growing => "growing: a significant trend, but slower than a leak or within the noise".to_owned(),
        Verdict::Stable if assessment.plateau => "stable: grew, then levelled off (a plateau)".to_owned(),
        Verdict::Stable => "stable".to_owned(),
        Verdict::NotEnoughData => {
            format!("not enough data: fewer than {} envelope points after the warm-up", LeakRules::DEFAULT.min_buckets)
        }
    }
}

fn text_report(path: &Path, trace: &Trace, analyses: &[Analysis], limit: Option<u64>) -> String {
    let mut out = String::new();
    let span = trace.signals.iter().filter_map(|s| s.samples.last()).map(|s| s.0).fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "trace {}: {} over {}, time column {:?} ({}) from {}",
        path.display(),
        human::count(trace.rows as u64, "row"),
        seconds(span / 1_000.0),
        trace.time_column,
        trace.time_unit.label(),
        time_label(trace, 0.0)
    );
    if let Some((line, reason)) = &trace.skipped.first {
        let _ = writeln!(
            out,
            "skipped {} (the first, line {line}: {reason})",
            human::count(trace.skipped.count as u64, "malformed row")
        );
    }
    if !trace.ignored_columns.is_empty() {
        let _ = writeln!(out, "ignored columns (not numeric): {}", trace.ignored_columns.join(", "));
    }
    for (signal, analysis) in trace.signals.iter().zip(analyses) {
        let a = &analysis.assessment;
        let _ = writeln!(out, "\n{}: {}", signal.name, verdict_text(analysis));
        if let (Some(slope), Some(p), Some(level)) = (a.slope_bytes_per_hour(), a.p_value(), a.level_bytes()) {
            let _ = writeln!(out, "  slope       {} (Theil–Sen, lower envelope)", rate(slope));
            let _ = writeln!(out, "  confidence  {:.2} % (Mann–Kendall p = {p:.2e})", (1.0 - p) * 100.0);
            let _ = writeln!(out, "  level       {} (latest floor)", bytes(level));
        }
        if let Some(at) = analysis.change_ms() {
            let _ = writeln!(
                out,
                "  change      at {} ({}): judged on the {} after it",
                seconds(at / 1_000.0),
                time_label(trace, at),
                human::count(analysis.judged_envelope().len() as u64, "envelope point")
            );
        }
        let _ = writeln!(out, "  forecast    {}", forecast(trace, analysis, limit));
        let _ = writeln!(
            out,
            "  analysed    {} over {} (every {}, {} missing), after a {} warm-up: {} of {}",
            human::count(analysis.samples as u64, "sample"),
            seconds(analysis.span_ms / 1_000.0),
            seconds(analysis.interval_ms / 1_000.0),
            signal.missing,
            seconds(analysis.warm_up_ms / 1_000.0),
            human::count(analysis.envelope.len() as u64, "envelope point"),
            seconds(analysis.bucket_ms / 1_000.0),
        );
    }
    out
}

/// A finite number, or null (JSON has no NaN or infinities).
fn number(x: Option<f64>) -> Value {
    x.filter(|x| x.is_finite()).map_or(Value::Null, Value::from)
}

fn json_report(path: &Path, trace: &Trace, analyses: &[Analysis], limit: Option<u64>) -> Value {
    let signals: Vec<Value> = trace
        .signals
        .iter()
        .zip(analyses)
        .map(|(signal, analysis)| {
            let a = &analysis.assessment;
            json!({
                "name": signal.name,
                "verdict": a.verdict.label(),
                "plateau": a.plateau,
                // Seconds since the first row; null when the whole span is judged.
                "change_seconds": analysis.change_ms().map(|ms| ms / 1_000.0),
                "slope_bytes_per_hour": number(a.slope_bytes_per_hour()),
                "confidence": number(a.confidence()),
                "p_value": number(a.p_value()),
                "level_bytes": number(a.level_bytes()),
                // Null without a limit or a verdict; "+Inf" when not growing.
                "eta_seconds": match a.eta_seconds {
                    Some(s) if s.is_infinite() => json!("+Inf"),
                    other => number(other),
                },
                "samples": analysis.samples,
                "missing": signal.missing,
                "span_seconds": analysis.span_ms / 1_000.0,
                "interval_seconds": analysis.interval_ms / 1_000.0,
                "warm_up_seconds": analysis.warm_up_ms / 1_000.0,
                "bucket_seconds": analysis.bucket_ms / 1_000.0,
                "envelope_points": analysis.envelope.len(),
            })
        })
        .collect();
    json!({
        "trace": path.display().to_string(),
        "rows": trace.rows,
        "time_column": trace.time_column,
        "time_unit": trace.time_unit.label(),
        "start": time_label(trace, 0.0),
        "limit_bytes": limit,
        "skipped_rows": trace.skipped.count,
        "first_skipped": trace.skipped.first.as_ref().map(|(line, reason)| json!({ "line": line, "reason": reason })),
        "ignored_columns": trace.ignored_columns,
        "signals": signals,
    })
}
