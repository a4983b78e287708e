//! The Grafana dashboard: a Grafana JSON model for import, its data source the
//! `${DS_PROMETHEUS}` input, its SLO picker a `slo` variable.
//!
//! Rows, top to bottom: the SLOs (a text panel of the configured objectives and alerts,
//! availability over all instances and per instance, in-process alert states, event
//! rates); burn rates (the page and ticket windows over all instances, with the thresholds
//! as lines, and the in-process ones per instance); the error budget (over all instances,
//! per instance, time to exhaustion); memory (bytes, leak verdicts, forecast and growth);
//! top offenders (rate limiter decisions, refused share, security events, any `*_top_*`
//! family such as the demo's top limited clients); circuit breakers (instances per state,
//! failure and slow-call ratios).
//!
//! Every expression reads an exported family or a recording rule of
//! [`prometheus`](super::prometheus). Built with `serde_json`, whose maps keep one order, so
//! the output is deterministic.

use super::prometheus::{
    BUDGET_REMAINING, BURN_RATE, ERROR_RATIO, OBJECTIVE, PAGE_ALERT, TICKET_ALERT, duration, hold,
};
use plimsoll::{BurnPair, Slo, SloWindow};
use serde_json::{Value, json};
use std::fmt::Write;

/// The data source of every panel and query: the import's input.
fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"})
}

/// A query: its expression and legend.
struct Query(String, String);

/// A panel's kind and display.
#[derive(Clone, Copy)]
enum Kind<'a> {
    /// A time series, in `unit`; `thresholds` as lines.
    Series { unit: &'static str, thresholds: &'a [f64] },
    /// The last value of each series, 0 green and 1 red.
    State,
    /// An instant table of the series' labels.
    Table,
}

/// Lays panels out in rows of two, 8 units high, and numbers them.
struct Layout {
    panels: Vec<Value>,
    id: u64,
    y: u64,
    x: u64,
}

impl Layout {
    fn row(&mut self, title: &str) {
        self.newline();
        self.id += 1;
        let grid = json!({"h": 1, "w": 24, "x": 0, "y": self.y});
        self.panels.push(
            json!({"type": "row", "id": self.id, "title": title, "collapsed": false, "gridPos": grid, "panels": []}),
        );
        self.y += 1;
    }

    fn newline(&mut self) {
        if self.x > 0 {
            self.x = 0;
            self.y += 8;
        }
    }

    fn place(&mut self, width: u64) -> Value {
        if self.x + width > 24 {
            self.newline();
        }
        let grid = json!({"h": 8, "w": width, "x": self.x, "y": self.y});
        self.x += width;
        if self.x == 24 {
            self.newline();
        }
        grid
    }

    fn panel(&mut self, title: &str, description: &str, kind: Kind<'_>, queries: &[Query]) {
        self.id += 1;
        let grid = self.place(12);
        let targets: Vec<Value> = queries
            .iter()
            .zip('A'..)
            .map(|(Query(expr, legend), ref_id)| {
                let mut target = json!({
                    "datasource": datasource(),
                    "expr": expr,
                    "legendFormat": legend,
                    "refId": ref_id.to_string(),
                });
                if matches!(kind, Kind::Table) {
                    target["instant"] = json!(true);
                    target["range"] = json!(false);
                    target["format"] = json!("table");
                }
                target
            })
            .collect();
        let mut panel = json!({
            "id": self.id,
            "title": title,
            "description": description,
            "datasource": datasource(),
            "gridPos": grid,
            "targets": targets,
        });
        match kind {
            Kind::Series { unit, thresholds } => {
                let mut steps = vec![json!({"color": "green", "value": null})];
                let colours = ["orange", "red", "dark-red"];
                steps.extend(
                    thresholds.iter().zip(colours).map(|(&value, color)| json!({"color": color, "value": value})),
                );
                let mode = if thresholds.is_empty() { "off" } else { "line" };
                panel["type"] = json!("timeseries");
                panel["fieldConfig"] = json!({
                    "defaults": {
                        "unit": unit,
                        "custom": {"thresholdsStyle": {"mode": mode}, "showPoints": "never"},
                        "thresholds": {"mode": "absolute", "steps": steps},
                    },
                    "overrides": [],
                });
                panel["options"] = json!({
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                });
            }
            Kind::State => {
                panel["type"] = json!("stat");
                panel["fieldConfig"] = json!({
                    "defaults": {
                        "mappings": [{"type": "value", "options": {
                            "0": {"text": "ok", "color": "green"},
                            "1": {"text": "firing", "color": "red"},
                        }}],
                        "thresholds": {"mode": "absolute", "steps": [
                            {"color": "green", "value": null}, {"color": "red", "value": 1},
                        ]},
                    },
                    "overrides": [],
                });
                panel["options"] = json!({
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "background",
                    "textMode": "value_and_name",
                });
            }
            Kind::Table => {
                panel["type"] = json!("table");
                panel["fieldConfig"] = json!({"defaults": {}, "overrides": []});
                panel["options"] = json!({"showHeader": true});
                panel["transformations"] =
                    json!([{"id": "organize", "options": {"excludeByName": {"Time": true, "Value": true}}}]);
            }
        }
        self.panels.push(panel);
    }

    fn text(&mut self, title: &str, markdown: String) {
        self.id += 1;
        let grid = self.place(12);
        self.panels.push(json!({
            "id": self.id,
            "type": "text",
            "title": title,
            "gridPos": grid,
            "options": {"mode": "markdown", "content": markdown},
        }));
    }
}

/// `{slo=~"$slo"}`, with more matchers after it.
fn slo(extra: &str) -> String {
    if extra.is_empty() { "{slo=~\"$slo\"}".to_owned() } else { format!("{{slo=~\"$slo\",{extra}}}") }
}

/// The burn-rate queries of `windows`, over all instances.
fn burn_queries(windows: &[SloWindow]) -> Vec<Query> {
    windows
        .iter()
        .map(|&w| Query(format!("{BURN_RATE}{}{}", duration(w), slo("")), format!("{{{{slo}}}} {}", duration(w))))
        .collect()
}

/// The markdown of the configured SLOs and their alerts.
fn slo_text(slos: &[&Slo]) -> String {
    let mut text = String::from("| SLO | objective | page | ticket |\n|---|---|---|---|\n");
    for slo in slos {
        let pairs = |page: bool| {
            let t = slo.burn_thresholds();
            let thresholds = [t.page_1h_5m, t.page_6h_30m, t.ticket_1d_2h, t.ticket_3d_6h];
            BurnPair::ALL
                .iter()
                .zip(thresholds)
                .filter(|(pair, _)| pair.is_page() == page)
                .map(|(&pair, threshold)| {
                    let (long, short) = pair.windows();
                    format!("{} and {} > {threshold} for {}", duration(long), duration(short), hold(pair))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        // Markdown table cells: a `|` or backslash in a name would end or escape one.
        let name = slo.name().replace('\\', "\\\\").replace('|', "\\|");
        let _ = writeln!(text, "| `{name}` | {} | {} | {} |", super::objective_text(slo), pairs(true), pairs(false));
    }
    let _ = write!(
        text,
        "\nAlerts `{PAGE_ALERT}` and `{TICKET_ALERT}` (burn rates over all instances, at least {} events in the \
         long window); the in-process states are `plimsoll_slo_alert`.",
        slos.first().map_or(plimsoll::DEFAULT_MIN_EVENTS, |slo| slo.min_events_to_alert())
    );
    text
}

/// The dashboard for `slos`, as pretty-printed JSON.
pub(crate) fn dashboard(slos: &[&Slo]) -> String {
    let mut layout = Layout { panels: Vec::new(), id: 0, y: 0, x: 0 };
    let page = [SloWindow::M5, SloWindow::H1, SloWindow::M30, SloWindow::H6];
    let ticket = [SloWindow::H2, SloWindow::D1, SloWindow::H6, SloWindow::D3];
    let t = slos.first().map_or(plimsoll::BurnThresholds::WORKBOOK, |slo| slo.burn_thresholds());
    let page_lines = [t.page_6h_30m, t.page_1h_5m];
    let ticket_lines = [t.ticket_3d_6h, t.ticket_1d_2h];
    let series = |unit| Kind::Series { unit, thresholds: &[] };
    let q = |expr: String, legend: &str| Query(expr, legend.to_owned());

    layout.row("Service level objectives");
    layout.text("SLOs", slo_text(slos));
    layout.panel(
        "Availability, all instances (1h)",
        "Good events over all events in the last hour, summed over every instance, and the objective.",
        series("percentunit"),
        &[
            q(format!("1 - {ERROR_RATIO}1h{}", slo("")), "{{slo}}"),
            q(format!("{OBJECTIVE}{}", slo("")), "{{slo}} objective"),
        ],
    );
    layout.panel(
        "Availability per instance",
        "Each instance's own figure over 1 day, 7 days and its compliance period.",
        series("percentunit"),
        &[q(format!("plimsoll_slo_availability_ratio{}", slo("")), "{{instance}} {{slo}} {{window}}")],
    );
    layout.panel(
        "In-process alerts",
        "Each SLO's alert states as the instances judge them (the worst instance).",
        Kind::State,
        &[q(format!("max by (slo, severity) (plimsoll_slo_alert{})", slo("")), "{{slo}} {{severity}}")],
    );
    layout.panel(
        "Events",
        "Events per second over all instances, good and bad.",
        series("ops"),
        &[q(
            format!("sum by (slo, result) (rate(plimsoll_slo_events_total{}[$__rate_interval]))", slo("")),
            "{{slo}} {{result}}",
        )],
    );

    layout.row("Burn rates");
    layout.panel(
        "Burn rate, page windows (all instances)",
        "Error ratio over the error budget ratio: 1 spends the budget in exactly the period. A page pair alerts when \
         both of its windows are above its line.",
        Kind::Series { unit: "none", thresholds: &page_lines },
        &burn_queries(&page),
    );
    layout.panel(
        "Burn rate, ticket windows (all instances)",
        "The ticket pairs: 1 day and 2 hours, 3 days and 6 hours.",
        Kind::Series { unit: "none", thresholds: &ticket_lines },
        &burn_queries(&ticket),
    );
    layout.panel(
        "Burn rate per instance (in-process)",
        "Each instance's own burn rates; absent until it has observed the whole window.",
        Kind::Series { unit: "none", thresholds: &page_lines },
        &[q(format!("plimsoll_slo_burn_rate{}", slo("window=~\"5m|1h|6h\"")), "{{instance}} {{slo}} {{window}}")],
    );
    layout.panel(
        "Window coverage per instance",
        "How much of each window an instance has observed; its alerts judge a window only once covered.",
        series("s"),
        &[q(
            format!("plimsoll_slo_window_covered_seconds{}", slo("window=~\"5m|1h|6h|1d|3d\"")),
            "{{instance}} {{slo}} {{window}}",
        )],
    );

    let period = duration(SloWindow::Period);
    layout.row("Error budget");
    layout.panel(
        &format!("Error budget remaining, all instances ({period})"),
        "1 - consumed / allowed over the period, over all instances; negative once overspent.",
        series("percentunit"),
        &[q(format!("{BUDGET_REMAINING}{period}{}", slo("")), "{{slo}}")],
    );
    layout.panel(
        "Error budget remaining per instance",
        "Each instance's own budget over its compliance period.",
        series("percentunit"),
        &[q(format!("plimsoll_slo_error_budget_remaining_ratio{}", slo("")), "{{instance}} {{slo}}")],
    );
    layout.panel(
        "Time until the budget is spent",
        "At each instance's 1-day burn rate; absent when its last day holds no events.",
        series("s"),
        &[q(format!("plimsoll_slo_error_budget_exhaustion_seconds{}", slo("")), "{{instance}} {{slo}}")],
    );
    layout.panel(
        "Error budget events per instance",
        "Bad events the period allows and bad events it holds.",
        series("short"),
        &[q(format!("plimsoll_slo_error_budget_events{}", slo("")), "{{instance}} {{slo}} {{state}}")],
    );

    layout.row("Memory");
    layout.panel(
        "Memory",
        "Each signal's last sample and floor (memory after collection), and the limit forecasts are made against.",
        series("bytes"),
        &[
            q("plimsoll_memory_bytes{stat=~\"last|floor\"}".to_owned(), "{{instance}} {{signal}} {{stat}}"),
            q("plimsoll_memory_limit_bytes".to_owned(), "{{instance}} limit"),
        ],
    );
    layout.panel(
        "Leak suspected",
        "1 while a signal's lower envelope grows significantly, at least at the leak threshold.",
        Kind::State,
        &[q("max by (instance, signal) (plimsoll_memory_leak_suspected)".to_owned(), "{{instance}} {{signal}}")],
    );
    layout.panel(
        "Leak verdicts",
        "Each signal's current verdict: not_enough_data, stable, growing or leak_suspected.",
        Kind::Table,
        &[q("plimsoll_memory_verdict == 1".to_owned(), "")],
    );
    layout.panel(
        "Forecast: time until the memory limit",
        "At the floor's Theil-Sen slope; +Inf when not growing, absent without a limit or a verdict. Beside it, \
         the slope.",
        series("s"),
        &[
            q("plimsoll_memory_limit_eta_seconds".to_owned(), "{{instance}} {{signal}} eta"),
            q("plimsoll_memory_growth_bytes_per_second".to_owned(), "{{instance}} {{signal}} bytes/s"),
        ],
    );

    layout.row("Top offenders");
    layout.panel(
        "Rate limiter decisions",
        "Checks per second over all instances, allowed and limited.",
        series("reqps"),
        &[q(
            "sum by (limiter, decision) (rate(plimsoll_ratelimit_decisions_total[$__rate_interval]))".to_owned(),
            "{{limiter}} {{decision}}",
        )],
    );
    layout.panel(
        "Refused share",
        "Limited checks over all checks, per limiter.",
        series("percentunit"),
        &[q(
            "sum by (limiter) (rate(plimsoll_ratelimit_decisions_total{decision=\"limited\"}[$__rate_interval]))\n/\n\
             sum by (limiter) (rate(plimsoll_ratelimit_decisions_total[$__rate_interval]))"
                .to_owned(),
            "{{limiter}}",
        )],
    );
    layout.panel(
        "Security events",
        "Signals and threat rule hits per second, by kind.",
        series("ops"),
        &[q("sum by (kind) (rate(plimsoll_security_events_total[$__rate_interval]))".to_owned(), "{{kind}}")],
    );
    layout.panel(
        "Top-k families",
        "Every *_top_* family (such as the demo's top limited clients), now.",
        Kind::Table,
        &[q("{__name__=~\".+_top_.+\"}".to_owned(), "")],
    );

    layout.row("Circuit breakers");
    layout.panel(
        "Instances per breaker state",
        "How many instances have each breaker in each state.",
        series("short"),
        &[q("sum by (name, state) (plimsoll_circuit_breaker_state) > 0".to_owned(), "{{name}} {{state}}")],
    );
    layout.panel(
        "Breaker failure and slow-call ratios",
        "Over each breaker's sliding window, per instance.",
        series("percentunit"),
        &[
            q("plimsoll_circuit_breaker_failure_ratio".to_owned(), "{{instance}} {{name}} failures"),
            q("plimsoll_circuit_breaker_slow_call_ratio".to_owned(), "{{instance}} {{name}} slow calls"),
        ],
    );

    let names: Vec<Value> = slos.iter().map(|slo| json!(slo.name())).collect();
    let variable_query = "label_values(plimsoll_slo_objective_ratio, slo)";
    let dashboard = json!({
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the instances and evaluates plimsoll-rules.yml.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
            {"type": "panel", "id": "text", "name": "Text", "version": ""},
        ],
        "title": "Plimsoll: SLOs, burn rates, memory, offenders, breakers",
        "uid": "plimsoll-slos",
        "description": "Generated by `plimsoll rules` with plimsoll-rules.yml; regenerate rather than edit.",
        "tags": ["plimsoll", "slo"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [{
            "name": "slo",
            "label": "SLO",
            "type": "query",
            "datasource": datasource(),
            "definition": variable_query,
            "query": {"query": variable_query, "refId": "slo"},
            "refresh": 2,
            "multi": true,
            "includeAll": true,
            "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "sort": 1,
            "description": format!("The configured SLOs: {}", names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        }]},
        "panels": layout.panels,
    });
    let mut text = serde_json::to_string_pretty(&dashboard).expect("a JSON value serializes");
    text.push('\n');
    text
}
