//! `plimsoll rules`: the generated Prometheus rules pass `promtool check rules`, and
//! `promtool test rules` (tests/rules/plimsoll-rules.test.yml) checks that a synthetic
//! outage pages at the expected minute and not before, that a slow burn opens a ticket,
//! and that the low-traffic guard holds; the output is deterministic; the Grafana
//! dashboard parses and reads only families the demo exports and series the rules record.
//!
//! promtool comes with the Debian package `prometheus`, which `.ci/run` installs; without
//! it these tests say so and pass without checking.

use crate::cli::{PROMETHEUS_ACCEPT, Plimsoll, env, scrape};
use crate::support::plimsoll_binary;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The SLOs the tests generate for, and promtool's test cases for their rules.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules").join(name)
}

/// A fresh directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("plimsoll-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `plimsoll rules args` (no `PLIMSOLL_*` variable from the test's environment).
pub(crate) fn plimsoll_rules(args: &[&str]) -> Output {
    let mut command = Command::new(plimsoll_binary());
    command.arg("rules").args(args);
    command.env_remove("PLIMSOLL_CONFIG");
    command.output().expect("run plimsoll rules")
}

/// Generates into `out` and checks the command's report.
pub(crate) fn generate(args: &[&str], out: &Path) -> (String, Value) {
    let out_arg = out.to_str().expect("a UTF-8 path");
    let mut all = args.to_vec();
    all.extend(["--out", out_arg]);
    let output = plimsoll_rules(&all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "plimsoll rules failed: {}", String::from_utf8_lossy(&output.stderr));
    for file in ["plimsoll-rules.yml", "plimsoll-dashboard.json"] {
        assert!(stdout.contains(&format!("wrote {}", out.join(file).display())), "{stdout}");
    }
    let rules = std::fs::read_to_string(out.join("plimsoll-rules.yml")).expect("read the rules");
    let dashboard = std::fs::read_to_string(out.join("plimsoll-dashboard.json")).expect("read the dashboard");
    let dashboard: Value =
        serde_json::from_str(&dashboard).unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"));
    (rules, dashboard)
}

/// Whether promtool runs; if not, says why the caller skips.
fn promtool_available(test: &str) -> bool {
    match Command::new("promtool").arg("--version").output() {
        Ok(output) if output.status.success() => true,
        _ => {
            eprintln!(
                "SKIPPED {test}: promtool is not on PATH (install the Debian package `prometheus`, as .ci/run does)"
            );
            false
        }
    }
}

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool").args(args).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

#[test]
fn generated_rules_pass_promtool_and_page_when_expected() {
    if !promtool_available("generated_rules_pass_promtool_and_page_when_expected") {
        return;
    }
    let dir = TempDir::new("rules");
    let config = fixture("plimsoll.toml");
    let config = config.to_str().expect("a UTF-8 path");
    let (rules, _) = generate(&["--config", config], &dir.0.join("a"));

    // The same SLOs give the same bytes.
    let (again, _) = generate(&["--config", config], &dir.0.join("b"));
    assert_eq!(rules, again, "the rules are deterministic");
    let dashboard = |d: &str| std::fs::read(dir.0.join(d).join("plimsoll-dashboard.json")).expect("read");
    assert_eq!(dashboard("a"), dashboard("b"), "the dashboard is deterministic");

    // 28 rules per SLO: 9 windows x 2, 4 event counts, the objective, the period's budget
    // and 4 alerts.
    let check = promtool(&["check", "rules", dir.0.join("a/plimsoll-rules.yml").to_str().expect("UTF-8")]);
    assert!(check.contains("SUCCESS: 56 rules found"), "{check}");
    for expected in [
        "slo:plimsoll_burn_rate:rate1h{slo=\"checkout\"} > 14.4\n          and on (slo)\n          \
         slo:plimsoll_burn_rate:rate5m{slo=\"checkout\"} > 14.4\n          and on (slo)\n          \
         slo:plimsoll_events:increase1h{slo=\"checkout\"} >= 100\n        for: 2m\n",
        "slo:plimsoll_error_ratio:rate5m{slo=\"api\"} / (1 - 0.99)\n",
        "sum by (slo) (rate(plimsoll_slo_events_total{slo=\"checkout\",result=\"bad\"}[30m]))\n",
        "severity: ticket\n          long: \"3d\"\n          short: \"6h\"\n",
    ] {
        assert!(rules.contains(expected), "the rules lack {expected:?}:\n{rules}");
    }

    // The unit tests sit next to the rules they name.
    let tests = dir.0.join("a/plimsoll-rules.test.yml");
    std::fs::copy(fixture("plimsoll-rules.test.yml"), &tests).expect("copy the promtool tests");
    let report = promtool(&["test", "rules", tests.to_str().expect("UTF-8")]);
    assert!(report.contains("SUCCESS"), "{report}");
}

#[test]
fn without_slos_or_with_an_invalid_file_the_command_exits_2() {
    let dir = TempDir::new("rules-invalid");
    let output = plimsoll_rules(&["--out", dir.0.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no SLO to generate rules for"), "{output:?}");
    assert!(!dir.0.join("plimsoll-rules.yml").exists(), "nothing written");

    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[[slo]]\nname = \"a\"\nobjective = 1.5\n").expect("write");
    let output = plimsoll_rules(&["--config", bad.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PLIMSOLL_CONFIG") && stderr.contains("strictly between 0 and 1"), "{stderr}");
}

/// Every metric name a PromQL expression reads: identifiers outside strings, label
/// matchers and ranges that are neither functions, keywords nor grouping labels.
fn metric_names(expr: &str) -> Vec<String> {
    // Blank out strings, then matchers and ranges.
    let mut plain = String::new();
    let mut chars = expr.chars();
    let mut depth = 0;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                plain.push(' ');
            }
            '{' | '[' => {
                depth += 1;
                plain.push(' ');
            }
            '}' | ']' => {
                depth -= 1;
                plain.push(' ');
            }
            _ if depth > 0 => {}
            _ => plain.push(c),
        }
    }
    const KEYWORDS: [&str; 11] =
        ["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"];
    let bytes = plain.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                i += 1;
            }
            let word = &plain[start..i];
            let next = plain[i..].trim_start();
            if KEYWORDS.contains(&word) {
                skip_group = matches!(word, "by" | "without" | "on" | "ignoring" | "group_left" | "group_right");
                continue;
            }
            skip_group = false;
            // A function or an aggregation (`sum by (slo) (...)`) is not a metric.
            let clause = ["by", "without"]
                .iter()
                .any(|k| next.strip_prefix(k).is_some_and(|rest| rest.trim_start().starts_with('(')));
            if !next.starts_with('(') && !clause {
                names.push(word.to_owned());
            }
        } else if c.is_ascii_digit() || c == b'.' {
            // A number (its exponent or unit letters included).
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else if c == b'(' && skip_group {
            // The label list after by/without/on/ignoring.
            while i < bytes.len() && bytes[i] != b')' {
                i += 1;
            }
            skip_group = false;
            i += 1;
        } else {
            if !c.is_ascii_whitespace() {
                skip_group = false;
            }
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        "sum by (slo, result) (rate(plimsoll_slo_events_total{slo=~\"$slo\"}[$__rate_interval]))\n/ on (slo) \
         group_left max(x:y:z) > 1e3 and 1 - slo:plimsoll_error_ratio:rate1h{a=\"}\"} == bool 1",
    );
    assert_eq!(names, ["plimsoll_slo_events_total", "x:y:z", "slo:plimsoll_error_ratio:rate1h"]);
}

#[test]
fn the_dashboard_reads_what_the_demo_exports_and_the_rules_record() {
    let dir = TempDir::new("rules-dashboard");
    let config = fixture("plimsoll.toml");
    let (rules, dashboard) = generate(&["--config", config.to_str().expect("UTF-8"), "--demo"], &dir.0);

    // What the demo exports: every family (a TYPE line, even before its first sample) and
    // every sample name. Memory is sampled every 100 ms so its families have samples.
    let mut demo_env = env(&[]);
    demo_env.push(("PLIMSOLL_SAMPLE_INTERVAL", "100ms".into()));
    let demo = Plimsoll::start(&["demo", "--rate", "200", "--app-addr", "127.0.0.1:0"], &demo_env);
    let address = demo.listening();
    std::thread::sleep(Duration::from_millis(1500));
    let exposition = scrape(address, PROMETHEUS_ACCEPT);
    drop(demo);
    let mut known: BTreeSet<String> = BTreeSet::new();
    for line in exposition.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        };
        known.extend(name.filter(|n| !n.is_empty()).map(str::to_owned));
    }
    let exported = known.clone();
    for line in rules.lines() {
        if let Some(record) = line.trim().strip_prefix("- record: ") {
            known.insert(record.to_owned());
        }
    }
    // The rules themselves read only the exported counter.
    for line in rules.lines().filter(|line| line.contains("plimsoll_slo_events_total")) {
        for name in metric_names(line).into_iter().filter(|n| !n.starts_with("slo:")) {
            assert!(exported.contains(&name), "the rules read {name}, which the demo does not export");
        }
    }

    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS", "{dashboard}");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut read = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        let kind = panel["type"].as_str().expect("a type");
        if matches!(kind, "row" | "text") {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let expr = target["expr"].as_str().expect("an expression");
            for name in metric_names(expr) {
                assert!(known.contains(&name), "panel {title:?} reads {name}, neither exported nor recorded: {expr}");
                read.insert(name);
            }
        }
    }
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["name"], "slo");
    let query = variable["query"]["query"].as_str().expect("the variable's query");
    let family = query.strip_prefix("label_values(").and_then(|q| q.split(',').next()).expect("label_values");
    assert!(exported.contains(family), "{query}");

    // The sections the issue asks for.
    for expected in [
        "slo:plimsoll_error_ratio:rate1h",
        "slo:plimsoll_burn_rate:rate5m",
        "plimsoll_slo_error_budget_remaining_ratio",
        "plimsoll_memory_bytes",
        "plimsoll_memory_verdict",
        "plimsoll_memory_limit_eta_seconds",
        "plimsoll_ratelimit_decisions_total",
        "plimsoll_circuit_breaker_state",
    ] {
        assert!(read.contains(expected), "no panel reads {expected}; read: {read:?}");
    }
    let text = dashboard.to_string();
    assert!(text.contains("demo_latency") && text.contains("checkout"), "the configured SLOs are listed");
}
