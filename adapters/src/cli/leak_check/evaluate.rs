//! `plimsoll leak-check --evaluate MANIFEST`: how well the verdict does on traces whose
//! truth is known, as a Markdown table (or JSON), against three goals.
//!
//! The manifest (TOML) names a default `limit` and lists each `[[trace]]`: its `file`
//! (relative to the manifest), an optional `column`, a `description`, and the truth:
//! `leak = true` with `rate_bytes_per_hour` (and, when known, `floor_bytes`, the noise-free
//! floor at the first row), or `leak = false`, with `grows_until_s` for a trace that grows
//! for a while and then stops (a warm-up, a cache filling up). A `synthetic` table holds
//! the generator's parameters and is not read here.
//!
//! Every trace is judged whole, and on 400 prefixes (every 1/400 of its span, at least one
//! sampling interval apart), as the monitor would have judged it while it was recorded:
//!
//! - **False positives** (goal: none). A trace without a leak is a false positive if any
//!   prefix is `leak_suspected` — except, for one with `grows_until_s = G`, prefixes
//!   ending before 1.5 × G: until then, the growth takes up more than the last third of
//!   what has been seen, and no one could yet tell it from a leak.
//! - **Detection delay**: the shortest prefix (time since the first row) whose verdict is
//!   `leak_suspected`. Goals: 10 minutes for a leak that would take the floor from its
//!   level at the first row to the limit within 1 hour; 1 hour for one that would within 24
//!   hours; none for slower leaks (reported only).
//! - **Forecast error** (goal: within 25 %): `(forecast − truth) / truth` for the time to
//!   the limit, at detection and on the whole trace. The truth is `(limit − floor) / rate`
//!   from the newest envelope point, with the floor `floor_bytes + rate × t` when the
//!   manifest gives `floor_bytes`, and the envelope's own level otherwise (for recorded
//!   traces, whose noise-free floor is unknown: the error is then the slope's alone).

use super::analysis::{self, Analysis, Settings};
use super::trace::{self, ReadOptions};
use super::{EXIT_CHECK_FAILED, EXIT_FAILURE, bytes, rate, seconds};
use plimsoll::memory::{LeakRules, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

/// Prefixes judged per trace.
const PREFIXES: usize = 400;
/// Goals.
const FAST_LEAK_HOURS: f64 = 1.0;
const FAST_LEAK_DELAY_S: f64 = 600.0;
const SLOW_LEAK_HOURS: f64 = 24.0;
const SLOW_LEAK_DELAY_S: f64 = 3_600.0;
const MAX_FORECAST_ERROR: f64 = 0.25;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The default limit: `512MiB`.
    limit: String,
    trace: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: String,
    description: String,
    #[serde(default)]
    column: Option<String>,
    leak: bool,
    #[serde(default)]
    rate_bytes_per_hour: Option<f64>,
    #[serde(default)]
    floor_bytes: Option<f64>,
    #[serde(default)]
    leak_starts_s: Option<f64>,
    #[serde(default)]
    grows_until_s: Option<f64>,
    /// The generator's parameters (tests/traces/generate.py), not the evaluation's.
    #[serde(default, rename = "synthetic")]
    _synthetic: Option<toml::Table>,
}

/// One trace's figures.
#[derive(Debug)]
struct Outcome {
    file: String,
    description: String,
    truth: String,
    whole: Analysis,
    /// Non-leaking traces: the first and last prefix flagged, and whether one counts.
    flagged: Option<(f64, f64)>,
    false_positive: bool,
    /// Leaks: the detection delay (s) and its goal (s).
    delay_s: Option<f64>,
    delay_goal_s: Option<f64>,
    /// Leaks: forecast errors at detection and on the whole trace.
    error_at_detection: Option<f64>,
    error_whole: Option<f64>,
}

/// Runs the evaluation; returns the exit status.
pub(super) fn run(manifest_path: &Path, json_output: bool) -> ExitCode {
    match evaluate(manifest_path) {
        Ok(outcomes) => {
            let goals = goals(&outcomes);
            if json_output {
                println!("{}", json_report(&outcomes, &goals));
            } else {
                print!("{}", markdown(&outcomes, &goals));
            }
            if goals.iter().all(|g| g.met) { ExitCode::SUCCESS } else { ExitCode::from(EXIT_CHECK_FAILED) }
        }
        Err(error) => {
            eprintln!("plimsoll leak-check --evaluate: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn evaluate(manifest_path: &Path) -> Result<Vec<Outcome>, String> {
    let text =
        std::fs::read_to_string(manifest_path).map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let limit = plimsoll::config::parse_bytes(&manifest.limit)
        .ok_or_else(|| format!("{}: limit {:?} is not a size", manifest_path.display(), manifest.limit))?;
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    manifest.trace.iter().map(|entry| judge(dir, entry, limit)).collect()
}

fn judge(dir: &Path, entry: &Entry, limit: u64) -> Result<Outcome, String> {
    let options = ReadOptions { column: entry.column.clone(), ..ReadOptions::default() };
    let trace = trace::read(&dir.join(&entry.file), &options).map_err(|e| e.to_string())?;
    let [signal] = trace.signals.as_slice() else {
        return Err(format!("{}: name the memory column to judge (column = ...)", entry.file));
    };
    let samples = &signal.samples;
    let settings = Settings { limit_bytes: Some(limit), warm_up_ms: None, rules: LeakRules::DEFAULT };
    let whole = analysis::analyse(samples, &settings);
    let span = samples.last().map_or(0.0, |s| s.0) - samples.first().map_or(0.0, |s| s.0);
    let step = (span / PREFIXES as f64).max(whole.interval_ms);
    let first = samples.first().map_or(0.0, |s| s.0);
    let prefixes = (1..).map(move |k| first + k as f64 * step).take_while(move |&end| end <= first + span);
    let judge_prefix = |end: f64| {
        let len = samples.partition_point(|s| s.0 <= end);
        (end - first, analysis::analyse(&samples[..len], &settings))
    };
    let mut outcome = Outcome {
        file: entry.file.clone(),
        description: entry.description.clone(),
        truth: String::new(),
        whole,
        flagged: None,
        false_positive: false,
        delay_s: None,
        delay_goal_s: None,
        error_at_detection: None,
        error_whole: None,
    };
    if !entry.leak {
        let settled_ms = entry.grows_until_s.unwrap_or(0.0) * 1.5 * 1_000.0;
        outcome.truth = match entry.grows_until_s {
            Some(g) => format!("no leak; grows for {}", seconds(g)),
            None => "no leak".to_owned(),
        };
        for (at, analysis) in prefixes.map(judge_prefix) {
            if analysis.assessment.verdict == Verdict::LeakSuspected {
                let (from, _) = outcome.flagged.unwrap_or((at, at));
                outcome.flagged = Some((from, at));
                outcome.false_positive |= at >= settled_ms;
            }
        }
        return Ok(outcome);
    }
    let rate_per_hour = entry
        .rate_bytes_per_hour
        .filter(|r| *r > 0.0)
        .ok_or_else(|| format!("{}: a leak needs rate_bytes_per_hour > 0", entry.file))?;
    let start_ms = entry.leak_starts_s.unwrap_or(0.0) * 1_000.0;
    let leaked = |at_ms: f64| rate_per_hour * (at_ms - start_ms).max(0.0) / 3_600_000.0;
    let truth_eta = |analysis: &Analysis| {
        let &(at_ms, level) = analysis.envelope.last()?;
        let floor = entry.floor_bytes.map_or(level, |floor| floor + leaked(at_ms));
        Some((limit as f64 - floor) / rate_per_hour * 3_600.0)
    };
    let error = |analysis: &Analysis| {
        let (predicted, truth) = (analysis.assessment.eta_seconds?, truth_eta(analysis)?);
        (truth > 0.0 && predicted.is_finite()).then(|| (predicted - truth) / truth)
    };
    // The floor when the leak starts: given, or the whole trace's level less the leak since.
    let start_floor = entry.floor_bytes.or_else(|| {
        let &(at_ms, level) = outcome.whole.envelope.last()?;
        Some(level - leaked(at_ms))
    });
    let hours_to_limit = start_floor.map(|floor| (limit as f64 - floor) / rate_per_hour);
    outcome.truth = format!(
        "leak {}{}{}",
        rate(rate_per_hour),
        entry.leak_starts_s.map_or(String::new(), |s| format!(" from {}", seconds(s))),
        hours_to_limit.map_or(String::new(), |h| format!(", limit in {}", seconds(h * 3_600.0)))
    );
    outcome.delay_goal_s = match hours_to_limit {
        Some(h) if h <= FAST_LEAK_HOURS => Some(FAST_LEAK_DELAY_S),
        Some(h) if h <= SLOW_LEAK_HOURS => Some(SLOW_LEAK_DELAY_S),
        _ => None,
    };
    for (at, analysis) in prefixes.map(judge_prefix) {
        if analysis.assessment.verdict != Verdict::LeakSuspected {
            continue;
        }
        if at < start_ms {
            // Flagged before the leak began: a false positive.
            let (from, _) = outcome.flagged.unwrap_or((at, at));
            outcome.flagged = Some((from, at));
            outcome.false_positive = true;
            continue;
        }
        outcome.delay_s = Some((at - start_ms) / 1_000.0);
        outcome.error_at_detection = error(&analysis);
        break;
    }
    outcome.error_whole = error(&outcome.whole);
    Ok(outcome)
}

/// A goal and whether the set meets it.
#[derive(Debug)]
struct Goal {
    name: &'static str,
    target: String,
    achieved: String,
    met: bool,
}

fn goals(outcomes: &[Outcome]) -> Vec<Goal> {
    let clean = outcomes.iter().filter(|o| o.truth.starts_with("no leak")).count();
    let false_positives = outcomes.iter().filter(|o| o.false_positive).count();
    let mut goals = vec![Goal {
        name: "false positives",
        target: "0 traces".to_owned(),
        achieved: format!("{false_positives} of {clean} traces without a leak (or before it starts)"),
        met: false_positives == 0,
    }];
    for (goal_s, name) in
        [(FAST_LEAK_DELAY_S, "detection, limit within 1 h"), (SLOW_LEAK_DELAY_S, "detection, limit within 24 h")]
    {
        let leaks: Vec<&Outcome> = outcomes.iter().filter(|o| o.delay_goal_s == Some(goal_s)).collect();
        let worst = leaks.iter().map(|o| o.delay_s.unwrap_or(f64::INFINITY)).fold(0.0, f64::max);
        let missed = leaks.iter().filter(|o| o.delay_s.is_none_or(|d| d > goal_s)).count();
        goals.push(Goal {
            name,
            target: format!("flagged within {}", seconds(goal_s)),
            achieved: if worst.is_finite() {
                format!("slowest {} of {} traces", seconds(worst), leaks.len())
            } else {
                format!("{missed} of {} traces never flagged", leaks.len())
            },
            met: missed == 0,
        });
    }
    for (name, pick) in [
        ("forecast error at detection", (|o: &Outcome| o.error_at_detection) as fn(&Outcome) -> Option<f64>),
        ("forecast error, whole trace", |o: &Outcome| o.error_whole),
    ] {
        let leaks: Vec<&Outcome> = outcomes.iter().filter(|o| o.truth.starts_with("leak")).collect();
        let worst = leaks.iter().map(|o| pick(o).map_or(f64::INFINITY, f64::abs)).fold(0.0, f64::max);
        goals.push(Goal {
            name,
            target: format!("within {:.0} %", MAX_FORECAST_ERROR * 100.0),
            achieved: if worst.is_finite() {
                format!("worst {:.1} % of {} leaks", worst * 100.0, leaks.len())
            } else {
                "a leak has no forecast".to_owned()
            },
            met: worst <= MAX_FORECAST_ERROR,
        });
    }
    goals
}

fn percent(error: Option<f64>) -> String {
    error.map_or_else(|| "–".to_owned(), |e| format!("{:+.1} %", e * 100.0))
}

fn verdict_cell(analysis: &Analysis) -> String {
    let a = &analysis.assessment;
    let mut cell = a.verdict.label().to_owned();
    if a.plateau {
        cell.push_str(" (plateau)");
    }
    if let Some(slope) = a.slope_bytes_per_hour() {
        let _ = write!(cell, ", {}", rate(slope));
    }
    if let Some(at) = analysis.change_ms() {
        let _ = write!(cell, " after a change at {}", seconds(at / 1_000.0));
    }
    cell
}

fn markdown(outcomes: &[Outcome], goals: &[Goal]) -> String {
    let mut out = String::new();
    out.push_str(
        "| trace | truth | verdict on the whole trace | first flagged (delay) | goal | forecast error at detection | \
         … whole trace |\n|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let (flagged, goal) = if o.truth.starts_with("no leak") {
            let flagged = o.flagged.map_or_else(
                || "never".to_owned(),
                |(from, to)| format!("{} to {} of prefixes", seconds(from / 1_000.0), seconds(to / 1_000.0)),
            );
            (flagged, if o.false_positive { "✗ false positive" } else { "✓ no false positive" }.to_owned())
        } else {
            let flagged = o.delay_s.map_or_else(|| "never".to_owned(), seconds);
            let goal = match o.delay_goal_s {
                Some(g) if o.delay_s.is_some_and(|d| d <= g) => format!("✓ ≤ {}", seconds(g)),
                Some(g) => format!("✗ > {}", seconds(g)),
                None => "none (slow)".to_owned(),
            };
            (flagged, goal)
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {flagged} | {goal} | {} | {} |",
            o.file,
            o.truth,
            verdict_cell(&o.whole),
            percent(o.error_at_detection),
            percent(o.error_whole)
        );
    }
    out.push_str("\n| goal | target | achieved | met |\n|---|---|---|---|\n");
    for goal in goals {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            goal.name,
            goal.target,
            goal.achieved,
            if goal.met { "yes" } else { "**no**" }
        );
    }
    out
}

fn json_report(outcomes: &[Outcome], goals: &[Goal]) -> Value {
    let traces: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({
                "file": o.file,
                "description": o.description,
                "truth": o.truth,
                "verdict": o.whole.assessment.verdict.label(),
                "change_seconds": o.whole.change_ms().map(|ms| ms / 1_000.0),
                "slope_bytes_per_hour": o.whole.assessment.slope_bytes_per_hour(),
                "level": o.whole.assessment.level_bytes().map(bytes),
                "flagged_seconds": o.flagged.map(|(from, to)| [from / 1_000.0, to / 1_000.0]),
                "false_positive": o.false_positive,
                "detection_delay_seconds": o.delay_s,
                "detection_goal_seconds": o.delay_goal_s,
                "forecast_error_at_detection": o.error_at_detection,
                "forecast_error_whole": o.error_whole,
            })
        })
        .collect();
    let goals: Vec<Value> = goals
        .iter()
        .map(|g| json!({ "goal": g.name, "target": g.target, "achieved": g.achieved, "met": g.met }))
        .collect();
    json!({ "traces": traces, "goals": goals })
}
