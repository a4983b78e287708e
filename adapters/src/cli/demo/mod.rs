//! `plimsoll demo`: a small shop, instrumented with Plimsoll, and visitors to keep it busy,
//! all in one process.
//!
//! - [`app`]: the shop, a hyper 1 HTTP/1.1 server on `--app-addr` (default
//!   127.0.0.1:8080; port 0 picks one, announced as `app listening on <address>` on stdout
//!   after the exporter's `listening on <address>`). Its routes: `GET /` (a page linking the
//!   others), `GET /products/:id` (1 to 1,000 exist), `GET /search?q=`, `POST /leads`
//!   (`email=`), `POST /checkout` (`product=`, `quantity=`) and `POST /login` (`email=`,
//!   `password=`; every password but `demo` fails); anything else is 404.
//! - [`shop`]: how each route behaves: log-normal latencies around the route's median with
//!   a slow tail, some 5xx, about ten shapes of SQL with varying literals whose (simulated)
//!   time is part of the request's, the payment service behind checkout, and two incidents
//!   in every ten minutes from the start: payments fail 60 % of the time in the second, and
//!   search is four times slower with 5 % errors in the fourth.
//! - [`monitors`]: the rate limiter, security events, top limited clients, slow queries,
//!   slow spans and the payment breaker, sized by the profile and left out by the switches.
//! - [`traffic`]: real HTTP requests over loopback at about `--rate` per second: shoppers,
//!   an abusive client above its limit, a path scanner and a password guesser.
//! - [`leak`]: `--leak RATE` leaks memory for real, up to 1 GiB.
//! - [`status`]: the line printed to stderr every 5 s.
//!
//! # What is recorded where
//!
//! | what | into | read on |
//! |---|---|---|
//! | every answer | `demo_http_requests_total{method,route,status}` (route = template, unknown paths `unmatched`), `demo_http_request_duration_seconds{route}` | `/metrics` |
//! | leads and orders placed (201) | `demo_leads_total`, `demo_conversions_total` | `/metrics` |
//! | answers of the shop's routes (not refused by the limiter) | the `demo_latency` SLO: 99 % within 300 ms, a 5xx is bad | `/metrics`, `/health`, `/api/report` |
//! | every request, keyed by `x-client-id` (else the peer's IP) | the rate limiter `clients` (10/s, bursts of 20): a refusal is a 429 with `Retry-After`, a `rate_limited` security event and a count in `demo_top_limited_clients` | `/metrics`, `/api/report` (`rate_limits`, `security`, `demo_top_limited_clients`) |
//! | failed logins, 404s | security events `auth_failure`, `not_found` (the brute-force and path-scan rules) | `/metrics`, `/api/report` (`security`) |
//! | every simulated query | the slow-query tracker, by [`plimsoll::fingerprint`] | `/metrics`, `/api/report` (`slow_queries`, with index hints) |
//! | every request | a span named by its route template, with a random trace id | `/metrics`, `/api/report` (`slow_spans`) |
//! | payment calls | the `payment` circuit breaker (20 calls, opens at 50 % failures; open, checkout answers 503 at once) | `/metrics`, `/health` (degraded while open), `/api/report` (`breakers`) |
//!
//! # Allocation
//!
//! Start-up leaks the [`App`](app::App) (a few pointers) and the monitors' list of sections.
//! Then each request allocates its SQL texts, pages and hyper's per-request state, all
//! freed when it is answered; memory is bounded by the app's and the generator's connection
//! caps (256 and 128) and, with `--leak`, by the leak's 1 GiB cap.

mod app;
mod http;
mod leak;
mod monitors;
mod shop;
mod status;
mod traffic;

use super::footprint::{Extra, Monitors as Footprints};
use super::run::CLOCK;
use super::stopped;
pub(crate) use app::connections_bound;
use clap::Args;
use plimsoll::report::Section;
use plimsoll::{Clock, Config, MemoryMonitor, Registry, Slo};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// `plimsoll demo`'s options.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Requests per second the visitors send to the shop, about (0 for none).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(0..=100_000)
    )]
    pub(crate) rate: u32,
    /// Where the shop listens (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) app_addr: SocketAddr,
    /// Leak memory at this rate, such as 1MiB/s or 10MiB/min, up to 1 GiB.
    #[arg(long, value_name = "RATE", value_parser = leak::parse)]
    pub(crate) leak: Option<leak::LeakRate>,
}

const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The demo, its monitors installed, ready to run.
pub(crate) struct Demo {
    args: DemoArgs,
    app: &'static app::App,
    sections: Vec<&'static dyn Section>,
    footprints: Footprints,
}

impl Demo {
    /// Registers the app's families (with metrics on) and the monitors of the configured
    /// profile and switches into `registry`; `slo` is the demo's SLO.
    pub(crate) fn install<const F: usize>(
        args: DemoArgs,
        config: &Config,
        registry: &Registry<F>,
        slo: &'static Slo,
    ) -> Result<Self, String> {
        if config.subsystems.metrics {
            app::register(registry).map_err(|e| format!("cannot register the demo's families: {e}"))?;
        }
        let installed = monitors::install(config.profile, &config.subsystems, registry)?;
        let app = Box::leak(Box::new(app::App { monitors: installed.monitors, slo }));
        Ok(Self { args, app, sections: installed.sections, footprints: installed.footprints })
    }

    /// The monitors `/api/report` shows and `/health` judges.
    pub(crate) fn sections(&self) -> &[&'static dyn Section] {
        &self.sections
    }

    /// The demo's state outside the registry, for the footprint report.
    pub(crate) fn extras(&self) -> &'static [Extra] {
        &app::EXTRAS
    }

    /// The monitors in use and their bytes, for the footprint report.
    pub(crate) fn footprints(&self) -> &Footprints {
        &self.footprints
    }

    /// Binds the shop's address.
    pub(crate) async fn bind(&self) -> Result<TcpListener, String> {
        let address = self.args.app_addr;
        TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot bind the demo's shop to {address}: {e} (--app-addr to change it)"))
    }

    /// Serves the shop on `listener`, sends it traffic, leaks if asked and prints the status
    /// line until `stop`; then stops the traffic and lets the shop finish its requests.
    pub(crate) async fn run(
        self,
        listener: TcpListener,
        memory: Option<&'static MemoryMonitor>,
        mut stop: watch::Receiver<bool>,
    ) {
        shop::start_incidents(CLOCK.now_ms());
        let address = listener.local_addr().ok();
        let server = tokio::spawn(app::serve(listener, self.app, stop.clone()));
        let traffic = match address {
            Some(address) if self.args.rate > 0 => {
                Some(tokio::spawn(traffic::run(address, self.args.rate, stop.clone())))
            }
            _ => None,
        };
        let leak = self.args.leak.map(|rate| tokio::spawn(leak::run(rate, stop.clone())));
        let sources = status::Sources { slo: self.app.slo, monitors: &self.app.monitors, memory };
        let mut ticks = tokio::time::interval_at(Instant::now() + STATUS_EVERY, STATUS_EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    // A closed stderr must not stop the demo.
                    let _ = writeln!(std::io::stderr(), "{}", status::line(CLOCK.now_ms(), &sources));
                }
                () = stopped(&mut stop) => break,
            }
        }
        // Each task has seen the stop; a task that panicked has said so on stderr already.
        for task in [traffic, leak].into_iter().flatten() {
            let _ = task.await;
        }
        let _ = server.await;
    }
}

/// Prints `app listening on <address>` to stdout, flushed, after the exporter's line.
pub(crate) fn announce(listener: &TcpListener) {
    if let Ok(address) = listener.local_addr() {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "app listening on {address}");
        let _ = stdout.flush();
    }
}
