//! The `--svg` chart: one panel per signal, self-contained (no scripts, fonts or links).
//!
//! Each panel shows the samples (thin; at most two points per pixel column, the column's
//! lowest and highest, so a month of samples stays a small file that still shows every
//! spike), the warm-up left out (shaded), the lower envelope the verdict was drawn from,
//! the Theil–Sen trend over it (over the part after the change point, when the verdict is
//! drawn from that part), the limit (dashed red; left off when it is far above the
//! data and the forecast does not reach it) and the forecast: a dashed extension of the
//! trend from the latest floor to the limit. The time axis reaches the
//! forecast when it falls within another trace length; otherwise the forecast runs to the
//! edge and its label says when. Axes are in binary byte units and durations since the
//! first row; the title gives the signal, the verdict, the slope and the forecast.

use super::analysis::Analysis;
use super::trace::Trace;
use super::{bytes, rate, seconds};
use plimsoll::memory::Verdict;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 420.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 56.0;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
const PLOT_HEIGHT: f64 = PANEL_HEIGHT - TOP - BOTTOM;

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The SVG document for every signal of `trace`.
pub(super) fn chart(trace: &Trace, analyses: &[Analysis], limit: Option<u64>) -> String {
    let height = PANEL_HEIGHT * trace.signals.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (index, (signal, analysis)) in trace.signals.iter().zip(analyses).enumerate() {
        let panel = Panel::new(&signal.samples, analysis, limit, index as f64 * PANEL_HEIGHT);
        panel.draw(&mut out, &signal.name, &signal.samples, analysis, limit);
    }
    out.push_str("</svg>\n");
    out
}

/// One panel's scales: data (ms since the trace's start, bytes) to pixels.
struct Panel {
    top: f64,
    x_max_ms: f64,
    y_min: f64,
    y_max: f64,
    /// Where the forecast reaches the limit (ms), if it does.
    crossing_ms: Option<f64>,
}

impl Panel {
    fn new(samples: &[(f64, f64)], analysis: &Analysis, limit: Option<u64>, top: f64) -> Self {
        let span = samples.last().map_or(0.0, |s| s.0).max(1.0);
        let (low, high) = samples.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), s| (lo.min(s.1), hi.max(s.1)));
        let crossing_ms = match (analysis.assessment.eta_seconds, analysis.envelope.last()) {
            (Some(eta), Some(&(at, _))) if eta.is_finite() && limit.is_some() => Some(at + eta * 1_000.0),
            _ => None,
        };
        // Room for the forecast when it lands within another trace length.
        let x_max_ms = match crossing_ms {
            Some(c) if c <= 2.0 * span => c.max(span),
            Some(_) => 1.5 * span,
            None => span,
        };
        let (mut y_min, mut y_max) = if low.is_finite() { (low, high) } else { (0.0, 1.0) };
        // The limit is shown when the forecast reaches it on the chart or it is near the
        // data; a far-off limit would flatten the data into a line at the bottom.
        if let Some(limit) = limit.map(|l| l as f64) {
            if (crossing_ms.is_some() && crossing_ms <= Some(x_max_ms)) || limit <= 2.0 * y_max {
                (y_min, y_max) = (0.0, y_max.max(limit));
            }
        }
        let pad = ((y_max - y_min) * 0.05).max(1.0);
        y_max += pad;
        y_min = if y_min == 0.0 { 0.0 } else { (y_min - pad).max(0.0) };
        Self { top, x_max_ms, y_min, y_max, crossing_ms }
    }

    fn x(&self, ms: f64) -> f64 {
        LEFT + (ms / self.x_max_ms).clamp(0.0, 1.0) * PLOT_WIDTH
    }

    fn y(&self, bytes: f64) -> f64 {
        let fraction = ((bytes - self.y_min) / (self.y_max - self.y_min)).clamp(-0.02, 1.02);
        self.top + TOP + (1.0 - fraction) * PLOT_HEIGHT
    }

    fn draw(&self, out: &mut String, name: &str, samples: &[(f64, f64)], analysis: &Analysis, limit: Option<u64>) {
        self.title(out, name, analysis, limit);
        self.axes(out);
        let (plot_top, plot_bottom) = (self.top + TOP, self.top + TOP + PLOT_HEIGHT);
        // The warm-up, shaded.
        let warm_up_end = self.x(analysis.origin_ms);
        if warm_up_end > LEFT {
            let _ = writeln!(
                out,
                r##"<rect x="{LEFT:.1}" y="{plot_top:.1}" width="{:.1}" height="{PLOT_HEIGHT:.1}" fill="#eeeeee"/><text x="{:.1}" y="{:.1}" fill="#888888">warm-up</text>"##,
                warm_up_end - LEFT,
                LEFT + 4.0,
                plot_bottom - 6.0
            );
        }
        self.samples(out, samples);
        let envelope: Vec<String> =
            analysis.envelope.iter().map(|&(ms, min)| format!("{:.1},{:.1}", self.x(ms), self.y(min))).collect();
        if !envelope.is_empty() {
            let _ = writeln!(
                out,
                r##"<polyline points="{}" fill="none" stroke="#1f4e9c" stroke-width="2"/>"##,
                envelope.join(" ")
            );
        }
        self.trend_and_forecast(out, analysis, limit);
        self.legend(out);
    }

    fn title(&self, out: &mut String, name: &str, analysis: &Analysis, limit: Option<u64>) {
        let a = &analysis.assessment;
        let mut title = format!("{}: {}", escape(name), a.verdict.label());
        if a.plateau {
            title.push_str(" (plateau)");
        }
        if let Some(slope) = a.slope_bytes_per_hour() {
            let _ = write!(title, " · {}", rate(slope));
        }
        match (a.eta_seconds, limit) {
            (Some(eta), Some(limit)) if eta.is_finite() => {
                let _ = write!(title, " · {} limit in {}", bytes(limit as f64), seconds(eta));
            }
            (Some(_), Some(limit)) => {
                let _ = write!(title, " · {} limit not in sight", bytes(limit as f64));
            }
            _ => {}
        }
        let colour = match a.verdict {
            Verdict::LeakSuspected => "#b00020",
            Verdict::Growing => "#a15c00",
            Verdict::Stable | Verdict::NotEnoughData => "#222222",
        };
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-size="17" font-weight="bold" fill="{colour}">{title}</text>"#,
            self.top + 28.0
        );
    }

    fn axes(&self, out: &mut String) {
        let (plot_top, plot_bottom) = (self.top + TOP, self.top + TOP + PLOT_HEIGHT);
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{plot_top:.1}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#999999"/>"##
        );
        let (unit, unit_name) = byte_unit(self.y_max);
        let step = nice_step((self.y_max - self.y_min) / unit, 6.0) * unit;
        let mut tick = (self.y_min / step).ceil() * step;
        while tick <= self.y_max {
            let y = self.y(tick);
            let label = format!("{} {unit_name}", trim_number(tick / unit));
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444444">{label}</text>"##,
                LEFT + PLOT_WIDTH,
                LEFT - 6.0,
                y + 4.0
            );
            tick += step;
        }
        let step_ms = nice_duration_ms(self.x_max_ms / 8.0);
        let mut tick = 0.0;
        while tick <= self.x_max_ms {
            let x = self.x(tick);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{plot_top:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#f0f0f0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{}</text>"##,
                plot_bottom + 16.0,
                seconds(tick / 1_000.0)
            );
            tick += step_ms;
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">time since the first row</text>"##,
            LEFT + PLOT_WIDTH / 2.0,
            plot_bottom + 36.0
        );
    }

    /// The samples, at most two points (lowest and highest, in time order) per pixel.
    fn samples(&self, out: &mut String, samples: &[(f64, f64)]) {
        let mut points = Vec::new();
        let mut column: Option<Column> = None;
        let flush = |column: Option<Column>, points: &mut Vec<String>| {
            if let Some((_, low, high)) = column {
                let (a, b) = if low.0 <= high.0 { (low, high) } else { (high, low) };
                points.push(format!("{:.1},{:.1}", self.x(a.0), self.y(a.1)));
                if b != a {
                    points.push(format!("{:.1},{:.1}", self.x(b.0), self.y(b.1)));
                }
            }
        };
        for &sample in samples {
            let pixel = self.x(sample.0).floor() as i64;
            match &mut column {
                Some((p, low, high)) if *p == pixel => {
                    if sample.1 < low.1 {
                        *low = sample;
                    }
                    if sample.1 > high.1 {
                        *high = sample;
                    }
                }
                _ => {
                    flush(column.take(), &mut points);
                    column = Some((pixel, sample, sample));
                }
            }
        }
        flush(column, &mut points);
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#8fb3e0" stroke-width="1"/>"##,
            points.join(" ")
        );
    }

    fn trend_and_forecast(&self, out: &mut String, analysis: &Analysis, limit: Option<u64>) {
        let (Some(&(first_ms, _)), Some(&(last_ms, level))) =
            (analysis.judged_envelope().first(), analysis.envelope.last())
        else {
            return;
        };
        if let (Some(from), Some(to)) = (analysis.trend_at(first_ms), analysis.trend_at(last_ms)) {
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#e07b00" stroke-width="2.5"/>"##,
                self.x(first_ms),
                self.y(from),
                self.x(last_ms),
                self.y(to)
            );
        }
        let Some(limit) = limit else { return };
        let limit_y = self.y(limit as f64);
        if limit as f64 <= self.y_max {
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{limit_y:.1}" x2="{:.1}" y2="{limit_y:.1}" stroke="#d32f2f" stroke-width="1.5" stroke-dasharray="8 5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#d32f2f">limit {}</text>"##,
                LEFT + PLOT_WIDTH,
                LEFT + PLOT_WIDTH - 4.0,
                limit_y - 6.0,
                bytes(limit as f64)
            );
        }
        let (Some(crossing), Some(slope)) = (self.crossing_ms, analysis.assessment.growth_bytes_per_second()) else {
            return;
        };
        // From the latest floor at the Theil–Sen slope, as the forecast is computed.
        let end_ms = crossing.min(self.x_max_ms);
        let end_bytes = level + slope * (end_ms - last_ms) / 1_000.0;
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#e07b00" stroke-width="2" stroke-dasharray="6 4"/>"##,
            self.x(last_ms),
            self.y(level),
            self.x(end_ms),
            self.y(end_bytes)
        );
        let eta = analysis.assessment.eta_seconds.unwrap_or(0.0);
        let arrow = if crossing > self.x_max_ms { " →" } else { "" };
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#e07b00" font-weight="bold">limit in {}{arrow}</text>"##,
            self.x(end_ms) - 4.0,
            self.y(end_bytes) + 18.0,
            seconds(eta)
        );
    }

    fn legend(&self, out: &mut String) {
        let items = [
            ("#8fb3e0", "", "samples"),
            ("#1f4e9c", "", "lower envelope"),
            ("#e07b00", "", "trend"),
            ("#e07b00", r#" stroke-dasharray="6 4""#, "forecast"),
            ("#d32f2f", r#" stroke-dasharray="8 5""#, "limit"),
        ];
        // Between the title and the plot, clear of the data and of the limit line.
        let (mut x, y) = (LEFT, self.top + 54.0);
        for (colour, dash, label) in items {
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{y:.1}" fill="#333333">{label}</text>"##,
                y - 4.0,
                x + 22.0,
                y - 4.0,
                x + 27.0
            );
            x += 36.0 + 7.0 * label.len() as f64;
        }
    }
}

/// A pixel column of samples: its x, and its lowest and highest sample.
type Column = (i64, (f64, f64), (f64, f64));

/// The binary unit a scale reaching `max` bytes is labelled in: its size and name.
fn byte_unit(max: f64) -> (f64, &'static str) {
    [(1u64 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|&(size, _)| max >= 2.0 * size as f64)
        .map_or((1.0, "B"), |(size, name)| (size as f64, name))
}

/// A step of 1, 2 or 5 × 10ⁿ giving about `ticks` ticks over `range`.
fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|&step| step >= raw).unwrap_or(10.0 * power)
}

/// The first of the usual clock steps at least `raw_ms`.
fn nice_duration_ms(raw_ms: f64) -> f64 {
    const STEPS_S: [f64; 22] = [
        1.0,
        2.0,
        5.0,
        10.0,
        15.0,
        30.0,
        60.0,
        120.0,
        300.0,
        600.0,
        900.0,
        1_800.0,
        3_600.0,
        7_200.0,
        10_800.0,
        21_600.0,
        43_200.0,
        86_400.0,
        172_800.0,
        432_000.0,
        604_800.0,
        1_209_600.0,
    ];
    STEPS_S.into_iter().map(|s| s * 1_000.0).find(|&step| step >= raw_ms).unwrap_or_else(|| {
        // Beyond two weeks: whole weeks.
        (raw_ms / 604_800_000.0).ceil() * 604_800_000.0
    })
}

/// A tick value without needless decimals: `128`, `1.5`, `0.25`.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
