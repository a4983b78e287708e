//! `plimsoll demo`'s synthetic workload: something to watch on `/metrics` without an
//! application.
//!
//! Five routes of a small shop (home page, product pages, search, a lead form, checkout),
//! each with its own traffic share, a log-normal latency around its own median, a slow
//! tail (1 % or fewer of requests take 4–20 times longer: a cold cache, lock contention)
//! and its own rates of 4xx and 5xx answers. Every tenth minute of the wall clock, search
//! has an incident: four times slower and 5 % server errors, so burn rates move while you
//! watch. Requests are recorded at about `--rate` per second into:
//!
//! - `demo_http_requests_total{method,route,status}` and
//!   `demo_http_request_duration_seconds{route}` (a native-layout latency histogram);
//! - `demo_leads_total` and `demo_conversions_total`, business counters bumped by
//!   successful `POST /leads` and `POST /checkout`;
//! - the `demo_latency` SLO (99 % of requests answered within 300 ms, a 5xx counting as
//!   bad), exported as `plimsoll_slo_*{slo="demo_latency"}` and judged on `/health`;
//! - a [`LatencyWindow`] and a [`RateWindow`] (not exported, not snapshotted) for the
//!   status line printed to stderr every 5 s: requests/s and p99 over the last minute (the
//!   windows' slots that cover it: 60–70 s of 10 s slots for the rate, the current and the
//!   previous 1-minute slot for p99), the SLO's 1h burn rate and its alert state.
//!
//! Nothing sleeps per request: a task ticks every 50 ms and records the requests due since
//! the previous tick, spread evenly over the interval.
//!
//! This is not yet the demo the project describes: a real hyper app serving its own pages,
//! simulated database queries, a rate limiter, a circuit breaker in front of a flaky
//! dependency and `--leak RATE` come with later issues.

use super::footprint::Extra;
use super::run::CLOCK;
use super::stopped;
use clap::Args;
use plimsoll::{
    Clock, Counter, Family, LatencyHistogram, LatencyWindow, RateWindow, RegisterError, Registry, Slo, SloWindow,
    Unlabelled,
};
use std::io::Write;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// `plimsoll demo`'s options.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Synthetic requests per second, about (0 for none).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(0..=100_000)
    )]
    pub(crate) rate: u32,
}

static REQUESTS: Family<Counter, 3, 32> = Family::new(
    "demo_http_requests",
    "Requests the demo's synthetic shop served, by method, route and status.",
    ["method", "route", "status"],
);
static LATENCY: Family<LatencyHistogram, 1, 8> =
    Family::new("demo_http_request_duration_seconds", "Latency of the demo's synthetic requests, by route.", ["route"])
        .unit("seconds");
static LEADS: Unlabelled<Counter> = Unlabelled::new("demo_leads", "Leads captured: successful POST /leads.");
static CONVERSIONS: Unlabelled<Counter> =
    Unlabelled::new("demo_conversions", "Orders placed: successful POST /checkout.");
static RECENT_LATENCY: LatencyWindow = LatencyWindow::new();
static RECENT_REQUESTS: RateWindow = RateWindow::new();

/// The demo's state outside the registry, for the footprint report.
pub(crate) const EXTRAS: [Extra; 2] = [
    ("demo latency window (status line)", "window", LatencyWindow::FOOTPRINT),
    ("demo request rate window (status line)", "window", RateWindow::FOOTPRINT),
];

const TICK: Duration = Duration::from_millis(50);
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// After a stall (a suspended process), at most this much traffic is caught up at once.
const MAX_CATCH_UP_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60_000;

/// Registers the demo's families.
pub(crate) fn register<const F: usize>(registry: &Registry<F>) -> Result<(), RegisterError> {
    registry.register(&REQUESTS)?;
    registry.register(&LATENCY)?;
    registry.register(&LEADS)?;
    registry.register(&CONVERSIONS)
}

/// Records the workload into the families, the windows and `slo` until `stop` turns true;
/// prints a status line every 5 s.
pub(crate) async fn run(rate: u32, slo: &'static Slo, mut stop: watch::Receiver<bool>) {
    let mut workload = Workload::new(rate, CLOCK.now_ms());
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut status = tokio::time::interval_at(Instant::now() + STATUS_EVERY, STATUS_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => workload.tick(CLOCK.now_ms(), |request, at_ms| request.record(at_ms, slo)),
            _ = status.tick() => {
                // A closed stderr must not stop the demo.
                let _ = writeln!(std::io::stderr(), "{}", status_line(CLOCK.now_ms(), slo));
            }
            () = stopped(&mut stop) => return,
        }
    }
}

/// `demo: 199.6 req/s, p99 287 ms over the last minute; demo_latency 1h burn rate 0.61, alert none; ...`
fn status_line(now_ms: u64, slo: &Slo) -> String {
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
        format!(" (over the {} observed)", super::human::duration(observed))
    } else {
        String::new()
    };
    let alerts = slo.alerts(now_ms);
    let alert = match (alerts.page, alerts.ticket) {
        (true, _) => "PAGE",
        (false, true) => "ticket",
        (false, false) => "none",
    };
    let incident = if in_incident(now_ms) { "; incident: /search degraded" } else { "" };
    format!(
        "demo: {rate:.1} req/s, p99 {p99} over the last minute; {} 1h burn rate {burn}{partial}, alert {alert}; \
         leads {}, conversions {}{incident}",
        slo.name(),
        LEADS.get(),
        CONVERSIONS.get()
    )
}

/// Whether search is degraded at `now_ms`: the tenth minute of every ten.
fn in_incident(now_ms: u64) -> bool {
    now_ms / MINUTE_MS % 10 == 9
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    None,
    Lead,
    Conversion,
}

/// A route of the synthetic shop.
#[derive(Debug)]
struct Route {
    method: &'static str,
    path: &'static str,
    /// Share of the traffic, in percent (the shares add up to 100).
    share: u32,
    /// Median latency; latencies are log-normal around it with spread `sigma`.
    median_seconds: f64,
    sigma: f64,
    /// Chance of a slow request (4–20 times the sampled latency).
    slow_chance: f64,
    /// Chance of a client error (`client_error` status) and of a server error (500, or 503
    /// one time in four).
    client_error_chance: f64,
    server_error_chance: f64,
    ok: &'static str,
    client_error: &'static str,
    outcome: Outcome,
}

const ROUTES: [Route; 5] = [
    Route {
        method: "GET",
        path: "/",
        share: 40,
        median_seconds: 0.012,
        sigma: 0.5,
        slow_chance: 0.005,
        client_error_chance: 0.0,
        server_error_chance: 0.001,
        ok: "200",
        client_error: "404",
        outcome: Outcome::None,
    },
    Route {
        method: "GET",
        path: "/products/:id",
        share: 25,
        median_seconds: 0.025,
        sigma: 0.6,
        slow_chance: 0.01,
        client_error_chance: 0.02,
        server_error_chance: 0.002,
        ok: "200",
        client_error: "404",
        outcome: Outcome::None,
    },
    Route {
        method: "GET",
        path: "/search",
        share: 20,
        median_seconds: 0.06,
        sigma: 0.6,
        slow_chance: 0.01,
        client_error_chance: 0.01,
        server_error_chance: 0.002,
        ok: "200",
        client_error: "400",
        outcome: Outcome::None,
    },
    Route {
        method: "POST",
        path: "/leads",
        share: 10,
        median_seconds: 0.045,
        sigma: 0.5,
        slow_chance: 0.005,
        client_error_chance: 0.03,
        server_error_chance: 0.003,
        ok: "201",
        client_error: "422",
        outcome: Outcome::Lead,
    },
    Route {
        method: "POST",
        path: "/checkout",
        share: 5,
        median_seconds: 0.12,
        sigma: 0.4,
        slow_chance: 0.01,
        client_error_chance: 0.02,
        server_error_chance: 0.005,
        ok: "201",
        client_error: "422",
        outcome: Outcome::Conversion,
    },
];

/// One synthetic request.
#[derive(Debug, Clone, Copy)]
struct Request {
    route: &'static Route,
    status: &'static str,
    latency_seconds: f64,
}

impl Request {
    /// Records the request as the shop's instrumentation would.
    fn record(&self, at_ms: u64, slo: &Slo) {
        let route = self.route;
        REQUESTS.with_label_values(&[route.method, route.path, self.status]).inc();
        LATENCY.with_label_values(&[route.path]).record(self.latency_seconds);
        RECENT_LATENCY.record(at_ms, self.latency_seconds);
        RECENT_REQUESTS.inc(at_ms);
        if self.is_server_error() {
            slo.record(at_ms, false);
        } else {
            slo.record_latency(at_ms, self.latency_seconds);
        }
        if self.status == route.ok {
            match route.outcome {
                Outcome::Lead => LEADS.inc(),
                Outcome::Conversion => CONVERSIONS.inc(),
                Outcome::None => {}
            }
        }
    }

    fn is_server_error(&self) -> bool {
        self.status.starts_with('5')
    }
}

/// The request generator: a seeded random stream and the traffic owed since the last tick.
#[derive(Debug)]
struct Workload {
    rng: XorShift,
    rate: u32,
    /// Requests owed but not yet due (a fraction of one).
    carry: f64,
    last_ms: u64,
}

impl Workload {
    fn new(rate: u32, now_ms: u64) -> Self {
        Self { rng: XorShift(0x2545_f491_4f6c_dd1d), rate, carry: 0.0, last_ms: now_ms }
    }

    /// Generates the requests due between the previous tick and `now_ms`, spread evenly
    /// over the interval, and hands each to `each` with its time.
    fn tick(&mut self, now_ms: u64, mut each: impl FnMut(&Request, u64)) {
        let elapsed = now_ms.saturating_sub(self.last_ms).min(MAX_CATCH_UP_MS);
        self.last_ms = self.last_ms.max(now_ms);
        self.carry += f64::from(self.rate) * elapsed as f64 / 1_000.0;
        let due = self.carry.floor();
        self.carry -= due;
        let due = due as u64;
        for i in 1..=due {
            let at_ms = now_ms - elapsed + elapsed * i / due;
            each(&self.request(at_ms), at_ms);
        }
    }

    fn request(&mut self, at_ms: u64) -> Request {
        let mut pick = (self.rng.uniform() * 100.0) as u32;
        let route = ROUTES
            .iter()
            .find(|route| {
                let hit = pick < route.share;
                pick = pick.saturating_sub(route.share);
                hit
            })
            .unwrap_or(&ROUTES[0]);
        let incident = route.path == "/search" && in_incident(at_ms);
        let mut latency_seconds = route.median_seconds * (route.sigma * self.rng.normal()).exp();
        if self.rng.chance(route.slow_chance) {
            latency_seconds *= 4.0 + 16.0 * self.rng.uniform();
        }
        if incident {
            latency_seconds *= 4.0;
        }
        let server_error_chance = if incident { 0.05 } else { route.server_error_chance };
        let status = if self.rng.chance(server_error_chance) {
            if self.rng.chance(0.25) { "503" } else { "500" }
        } else if self.rng.chance(route.client_error_chance) {
            route.client_error
        } else {
            route.ok
        };
        Request { route, status, latency_seconds }
    }
}

/// xorshift64: a reproducible stream without a dependency.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minute outside the incident.
    const CALM_MS: u64 = 1_800_000_000_000;

    #[test]
    fn shares_add_up() {
        assert_eq!(ROUTES.iter().map(|r| r.share).sum::<u32>(), 100);
        assert!(!in_incident(CALM_MS) && in_incident(CALM_MS + 9 * MINUTE_MS));
    }

    #[test]
    fn ticks_record_the_rate_without_drift() {
        let mut workload = Workload::new(200, CALM_MS);
        let (mut count, mut last) = (0, CALM_MS);
        for tick in 1..=200 {
            workload.tick(CALM_MS + tick * 50, |_, at_ms| {
                assert!(at_ms >= last && at_ms <= CALM_MS + tick * 50, "in order, within the tick");
                last = at_ms;
                count += 1;
            });
        }
        assert_eq!(count, 2_000, "10 s at 200/s");
        // A 10 s stall catches up at most one second of traffic.
        workload.tick(CALM_MS + 20_000, |_, _| count += 1);
        assert_eq!(count, 2_200);
        // A clock that steps back records nothing and does not rewind.
        workload.tick(CALM_MS, |_, _| count += 1);
        assert_eq!(count, 2_200);
    }

    #[test]
    fn the_calm_workload_keeps_within_the_slo_and_an_incident_burns_it() {
        let threshold = crate::cli::state::DEMO_SLO_THRESHOLD_SECONDS;
        let bad_fraction = |start_ms: u64| {
            let mut workload = Workload::new(1_000, start_ms);
            let (mut bad, mut total) = (0u32, 0u32);
            for tick in 1..=1_000 {
                workload.tick(start_ms + tick * 50, |request, _| {
                    total += 1;
                    if request.is_server_error() || request.latency_seconds > threshold {
                        bad += 1;
                    }
                });
            }
            f64::from(bad) / f64::from(total)
        };
        let calm = bad_fraction(CALM_MS);
        assert!((0.002..0.01).contains(&calm), "calm: {calm}");
        let incident = bad_fraction(CALM_MS + 9 * MINUTE_MS);
        assert!(incident > 0.02, "incident: {incident}");
    }
}
