//! The Prometheus rule file: recording rules per window and the multi-window,
//! multi-burn-rate alerts, per SLO (see the [module docs](super) for every rule).
//!
//! # YAML written by hand
//!
//! The file is a fixed shape of groups, rules and string maps, so it is written directly
//! rather than through a YAML serializer: no dependency, the layout (block scalars for
//! expressions, one key per line) stays as readable as Sloth's output, and the output is
//! deterministic by construction. Every string that comes from the configuration is
//! escaped: into YAML double-quoted scalars ([`yaml_string`]) and PromQL string literals
//! ([`promql_string`]), both ASCII-only with `\u` escapes, so no name can end a scalar, a
//! literal or a line. Annotations name the SLO through `{{ $labels.slo }}`, never by
//! pasting its name into a template.

use plimsoll::{BurnPair, BurnThresholds, Slo, SloWindow};
use std::fmt::Write;

/// Recording rules' names, each followed by the window (`rate5m`, `increase1h`).
pub(crate) const ERROR_RATIO: &str = "slo:plimsoll_error_ratio:rate";
pub(crate) const BURN_RATE: &str = "slo:plimsoll_burn_rate:rate";
pub(crate) const EVENTS: &str = "slo:plimsoll_events:increase";
pub(crate) const OBJECTIVE: &str = "slo:plimsoll_objective:ratio";
pub(crate) const BUDGET_REMAINING: &str = "slo:plimsoll_error_budget_remaining:ratio";
/// The alerts: either page pair, either ticket pair.
pub(crate) const PAGE_ALERT: &str = "PlimsollSLOPageBurn";
pub(crate) const TICKET_ALERT: &str = "PlimsollSLOTicketBurn";
/// The exported counter the rules read.
const EVENTS_TOTAL: &str = "plimsoll_slo_events_total";

/// Windows recorded in the SLO's main group: those the alerts read.
pub(crate) const ALERT_WINDOWS: [SloWindow; 7] =
    [SloWindow::M5, SloWindow::M30, SloWindow::H1, SloWindow::H2, SloWindow::H6, SloWindow::D1, SloWindow::D3];
/// Windows recorded in the period group, evaluated every [`PERIOD_INTERVAL`].
pub(crate) const PERIOD_WINDOWS: [SloWindow; 2] = [SloWindow::D7, SloWindow::Period];
const PERIOD_INTERVAL: &str = "5m";

/// A window as a PromQL duration: `5m`, `1h`, `3d`, `30d` (the period: 720 hours).
pub(crate) fn duration(window: SloWindow) -> String {
    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let ms = <Slo>::window_ms(window);
    match ms {
        _ if ms % DAY == 0 => format!("{}d", ms / DAY),
        _ if ms % HOUR == 0 => format!("{}h", ms / HOUR),
        _ if ms % MINUTE == 0 => format!("{}m", ms / MINUTE),
        _ => format!("{}ms", ms),
    }
}

/// The pair's threshold, as the in-process alert reads it.
fn threshold(thresholds: &BurnThresholds, pair: BurnPair) -> f64 {
    match pair {
        BurnPair::Page1h5m => thresholds.page_1h_5m,
        BurnPair::Page6h30m => thresholds.page_6h_30m,
        BurnPair::Ticket1d2h => thresholds.ticket_1d_2h,
        BurnPair::Ticket3d6h => thresholds.ticket_3d_6h,
    }
}

/// How long the pair must hold before its alert fires: Pyrra's durations for these
/// windows.
pub(crate) const fn hold(pair: BurnPair) -> &'static str {
    match pair {
        BurnPair::Page1h5m => "2m",
        BurnPair::Page6h30m => "15m",
        BurnPair::Ticket1d2h => "1h",
        BurnPair::Ticket3d6h => "3h",
    }
}

/// The rule file for `slos`.
pub(crate) fn rules(slos: &[&Slo]) -> String {
    let mut out = String::new();
    out.push_str(
        "# Prometheus recording and alerting rules for Plimsoll's SLOs, written by `plimsoll rules`:\n\
         # regenerate them from the SLOs' configuration rather than edit them. For every SLO, the\n\
         # error ratio and burn rate of each window over all instances, and the SRE Workbook's\n\
         # multi-window, multi-burn-rate alerts with the in-process thresholds.\n",
    );
    let names: Vec<&str> = slos.iter().map(|slo| slo.name()).collect();
    let _ = writeln!(out, "# SLOs: {}", yaml_string(&names.join(", ")));
    out.push_str("groups:\n");
    for slo in slos {
        burn_group(&mut out, slo);
        period_group(&mut out, slo);
    }
    out
}

/// The SLO's windows, objective and alerts. One group, so that each evaluation's alerts
/// read that evaluation's recordings (rules of a group run in order).
fn burn_group(out: &mut String, slo: &Slo) {
    let name = slo.name();
    let selector = promql_string(name);
    let _ = writeln!(out, "  - name: {}\n    rules:", yaml_string(&format!("plimsoll-slo:{name}")));
    let _ = writeln!(
        out,
        "      - record: {OBJECTIVE}\n        expr: vector({})\n        labels:\n          slo: {}",
        slo.objective(),
        yaml_string(name)
    );
    for window in ALERT_WINDOWS {
        window_rules(out, slo, window);
    }
    for pair in BurnPair::ALL {
        let (long, _) = pair.windows();
        let w = duration(long);
        record(
            out,
            slo,
            &format!("{EVENTS}{w}"),
            &format!("sum by (slo) (increase({EVENTS_TOTAL}{{slo={selector}}}[{w}]))"),
        );
    }
    for pair in BurnPair::ALL {
        alert(out, slo, pair);
    }
}

/// The long windows and the period's budget, evaluated less often.
fn period_group(out: &mut String, slo: &Slo) {
    let name = slo.name();
    let _ = writeln!(
        out,
        "  - name: {}\n    interval: {PERIOD_INTERVAL}\n    rules:",
        yaml_string(&format!("plimsoll-slo-period:{name}"))
    );
    for window in PERIOD_WINDOWS {
        window_rules(out, slo, window);
    }
    let period = duration(SloWindow::Period);
    record(
        out,
        slo,
        &format!("{BUDGET_REMAINING}{period}"),
        &format!("1 - {ERROR_RATIO}{period}{{slo={}}} / (1 - {})", promql_string(name), slo.objective()),
    );
}

/// The error ratio and burn rate of `window`.
fn window_rules(out: &mut String, slo: &Slo, window: SloWindow) {
    let selector = promql_string(slo.name());
    let w = duration(window);
    record(
        out,
        slo,
        &format!("{ERROR_RATIO}{w}"),
        &format!(
            "sum by (slo) (rate({EVENTS_TOTAL}{{slo={selector},result=\"bad\"}}[{w}]))\n/\n\
             sum by (slo) (rate({EVENTS_TOTAL}{{slo={selector}}}[{w}]))"
        ),
    );
    record(
        out,
        slo,
        &format!("{BURN_RATE}{w}"),
        &format!("{ERROR_RATIO}{w}{{slo={selector}}} / (1 - {})", slo.objective()),
    );
}

/// A recording rule of `slo`'s. Its `slo` label, which the expression also yields, keeps
/// rules of the same name apart for `promtool check rules` (as Sloth's `sloth_slo` does).
fn record(out: &mut String, slo: &Slo, name: &str, expr: &str) {
    let _ = writeln!(out, "      - record: {name}\n        expr: |-");
    block(out, expr, 10);
    let _ = writeln!(out, "        labels:\n          slo: {}", yaml_string(slo.name()));
}

/// The alert of one pair of windows.
fn alert(out: &mut String, slo: &Slo, pair: BurnPair) {
    let selector = promql_string(slo.name());
    let (long, short) = pair.windows();
    let (l, s) = (duration(long), duration(short));
    let threshold = threshold(&slo.burn_thresholds(), pair);
    let mut expr = format!(
        "{BURN_RATE}{l}{{slo={selector}}} > {threshold}\nand on (slo)\n{BURN_RATE}{s}{{slo={selector}}} > {threshold}"
    );
    let min_events = slo.min_events_to_alert();
    if min_events > 0 {
        let _ = write!(expr, "\nand on (slo)\n{EVENTS}{l}{{slo={selector}}} >= {min_events}");
    }
    let (alert, severity) = if pair.is_page() { (PAGE_ALERT, "page") } else { (TICKET_ALERT, "ticket") };
    let _ = writeln!(out, "      - alert: {alert}\n        expr: |-");
    block(out, &expr, 10);
    let _ = writeln!(
        out,
        "        for: {}\n        labels:\n          slo: {}\n          severity: {severity}\n          long: {}\n          short: {}",
        hold(pair),
        yaml_string(slo.name()),
        yaml_string(&l),
        yaml_string(&s)
    );
    let period_ms = <Slo>::window_ms(SloWindow::Period);
    let spent = threshold * <Slo>::window_ms(long) as f64 / period_ms as f64 * 100.0;
    let short_rate = format!(
        "{{{{ with printf \"{BURN_RATE}{s}{{slo=%q}}\" $labels.slo | query }}}}\
         {{{{ . | first | value | printf \"%.2f\" }}}}{{{{ end }}}}"
    );
    let summary = format!(
        "SLO {{{{ $labels.slo }}}} burns its error budget {{{{ $value | printf \"%.1f\" }}}} times too fast \
         over {l} ({severity})"
    );
    let mut description = format!(
        "Burn rate {{{{ $value | printf \"%.2f\" }}}} over {l} and {short_rate} over {s}, both above {threshold}: \
         {} % of the {} error budget spent in {l}, over all instances. Objective: {}.",
        super::number(spent),
        duration(SloWindow::Period),
        super::objective_text(slo),
    );
    if min_events > 0 {
        let _ = write!(description, " Judged only with at least {min_events} events in {l}.");
    }
    let _ = writeln!(
        out,
        "        annotations:\n          summary: {}\n          description: {}",
        yaml_string(&summary),
        yaml_string(&description)
    );
}

/// `text` as a literal block scalar's lines, indented by `indent` spaces.
fn block(out: &mut String, text: &str, indent: usize) {
    for line in text.lines() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
}

/// `s` as a YAML double-quoted scalar, ASCII only.
pub(crate) fn yaml_string(s: &str) -> String {
    quoted(s)
}

/// `s` as a PromQL string literal (Go's escapes), ASCII only.
pub(crate) fn promql_string(s: &str) -> String {
    quoted(s)
}

/// A double-quoted string both YAML and PromQL read back as `s`: `"` and `\` escaped, and
/// every character outside printable ASCII as `\uXXXX` or `\UXXXXXXXX`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use plimsoll::GoodEvent;

    #[test]
    fn windows_are_promql_durations() {
        let all: Vec<String> = SloWindow::ALL.iter().map(|&w| duration(w)).collect();
        assert_eq!(all, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d", "30d"]);
    }

    #[test]
    fn strings_are_escaped_for_yaml_and_promql() {
        assert_eq!(quoted("demo_latency"), "\"demo_latency\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted("é\u{2028}😀"), "\"\\u00E9\\u2028\\U0001F600\"");
    }

    #[test]
    fn the_rules_carry_the_in_process_thresholds() {
        static SLO: Slo = Slo::new("api \"v2\"", 0.999, GoodEvent::Success);
        let text = rules(&[&SLO]);
        assert!(text.contains("slo:plimsoll_burn_rate:rate1h{slo=\"api \\\"v2\\\"\"} > 14.4\n"), "{text}");
        assert!(text.contains("slo:plimsoll_burn_rate:rate3d{slo=\"api \\\"v2\\\"\"} > 1\n"), "{text}");
        assert!(text.contains("slo:plimsoll_events:increase6h{slo=\"api \\\"v2\\\"\"} >= 100\n"), "{text}");
        assert!(text.contains("/ (1 - 0.999)\n"), "{text}");
        assert_eq!(text.matches("- alert: PlimsollSLOPageBurn\n").count(), 2);
        assert_eq!(text.matches("- alert: PlimsollSLOTicketBurn\n").count(), 2);
        assert_eq!(text, rules(&[&SLO]), "deterministic");
    }
}
