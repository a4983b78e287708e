//! The status line the demo prints to stderr every 5 s:
//!
//! ```text
//! demo: 199.6 req/s, p99 287 ms over the last minute; demo_latency 1h burn rate 0.61, alert none;
//! leads 214, conversions 101; memory rss stable; breaker payment closed; limited 1042
//! ```
//!
//! (one line): requests/s and p99 of every answer over the last minute (the windows' slots
//! that cover it: 60–70 s of 10 s slots for the rate, the current and the previous 1-minute
//! slot for p99), the SLO's 1h burn rate and alert, then, for each subsystem that is on, its
//! figure: the business counters, the `rss` leak verdict, the payment breaker's state and the
//! requests the rate limiter refused. The bytes leaked, the traffic skipped or failed, and a
//! running incident are added when there are any.

use super::app::{CONVERSIONS, LEADS, RECENT_LATENCY, RECENT_REQUESTS};
use super::monitors::Monitors;
use super::shop::{MINUTE_MS, payment_incident, search_incident};
use super::{leak, traffic};
use plimsoll::{MemoryMonitor, Slo, SloWindow};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// What the status line reads besides the statics.
pub(crate) struct Sources<'a> {
    pub(crate) slo: &'a Slo,
    pub(crate) monitors: &'a Monitors,
    pub(crate) memory: Option<&'a MemoryMonitor>,
}

/// The line at `now_ms`, without its newline.
pub(crate) fn line(now_ms: u64, sources: &Sources<'_>) -> String {
    let Sources { slo, monitors, memory } = *sources;
    let rate = RECENT_REQUESTS.rate_per_second(now_ms, MINUTE_MS).unwrap_or(0.0);
    let p99 = match RECENT_LATENCY.quantile(now_ms, MINUTE_MS, 0.99) {
        Some(seconds) => format!("{:.0} ms", seconds * 1_000.0),
        None => "n/a".to_owned(),
    };
    let burn = match slo.burn_rate(now_ms, SloWindow::H1) {
        Some(burn) => format!("{burn:.2}"),
        None => "n/a".to_owned(),
    };
    let observed = slo.covered_ms(now_ms, SloWindow::H1);
    let partial = if observed < Slo::<361, 721>::window_ms(SloWindow::H1) {
        format!(" (over the {} observed)", crate::cli::human::duration(observed))
    } else {
        String::new()
    };
    let alerts = slo.alerts(now_ms);
    let alert = match (alerts.page, alerts.ticket) {
        (true, _) => "PAGE",
        (false, true) => "ticket",
        (false, false) => "none",
    };
    let mut line = format!(
        "demo: {rate:.1} req/s, p99 {p99} over the last minute; {} 1h burn rate {burn}{partial}, alert {alert}",
        slo.name()
    );
    // Writing into a String cannot fail.
    if monitors.metrics {
        let _ = write!(line, "; leads {}, conversions {}", LEADS.get(), CONVERSIONS.get());
    }
    if let Some(memory) = memory {
        let mut verdict = "n/a";
        memory.for_each_assessment(now_ms, |signal, assessment| {
            if signal == "rss" {
                verdict = assessment.verdict.label();
            }
        });
        let _ = write!(line, "; memory rss {verdict}");
    }
    if let Some(breaker) = monitors.payment {
        let _ = write!(line, "; breaker payment {}", breaker.state().label());
    }
    if let Some(security) = monitors.security {
        let _ = write!(line, "; limited {}", security.limiter.stats().limited);
    }
    let leaked = leak::LEAKED.load(Relaxed);
    if leaked > 0 {
        let _ = write!(line, "; leaked {} MiB", leaked >> 20);
    }
    let (skipped, failed) = (traffic::COUNTS.skipped.load(Relaxed), traffic::COUNTS.failed.load(Relaxed));
    if skipped + failed > 0 {
        let _ = write!(line, "; traffic skipped {skipped}, failed {failed}");
    }
    if search_incident(now_ms) {
        line.push_str("; incident: /search degraded");
    }
    if payment_incident(now_ms) {
        line.push_str("; incident: payments failing");
    }
    line
}
