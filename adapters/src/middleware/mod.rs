//! HTTP server metrics as a tower [`Layer`](tower_layer::Layer): per-route request counts,
//! requests in flight, latency and status classes, and an optional [`Slo`].
//!
//! [`PlimsollLayer`] wraps a tower service (an axum `Router`'s routes) or a hyper service
//! (`hyper::service::service_fn`) and records each request into the `static` families of
//! an [`HttpMetrics`], and into an SLO if one is given:
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{Router, routing::get};
//! use plimsoll::middleware::{HttpMetrics, PlimsollLayer};
//! use plimsoll::{GoodEvent, Registry, Slo};
//!
//! static REGISTRY: Registry<16> = Registry::new();
//! static HTTP: HttpMetrics = HttpMetrics::new();
//! static LATENCY_SLO: Slo = Slo::new("http_latency", 0.99, GoodEvent::LatencyAtMost(0.25));
//!
//! HTTP.register(&REGISTRY).expect("room in the registry");
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "a user" }))
//!     // `Router::layer` runs after routing, so the layer sees the matched route.
//!     .layer(PlimsollLayer::new(&HTTP).slo(&LATENCY_SLO));
//! # }
//! ```
//!
//! # Exported families
//!
//! | family | type | labels |
//! |---|---|---|
//! | `http_server_requests_total` | counter | `method`, `route`, `status` |
//! | `http_server_active_requests` | gauge | none |
//! | `http_server_request_duration_seconds` | histogram | `route` |
//!
//! The names follow OpenTelemetry's HTTP server conventions as Prometheus spells them.
//!
//! # Labels, and why they are bounded
//!
//! - `route` is the route *template*, never the raw path: `/users/{id}` for `/users/7` and
//!   `/users/8` alike, so a crawler or a scanner cannot create a series per URL. With the
//!   `axum` feature it is axum's `MatchedPath` request extension, which axum sets before
//!   the middleware given to `Router::layer` runs (that also wraps the fallback, while
//!   `Router::route_layer` would leave 404s uncounted). Without it (a hyper service, or
//!   the layer put around the whole router), the function given to
//!   [`PlimsollLayer::route_fn`] maps the method and path to a template. A request neither
//!   names (axum's fallback, a 404, a path the function does not know) is counted under
//!   the one route [`UNMATCHED_ROUTE`] (`"unmatched"`).
//! - `method` is one of the nine methods of RFC 9110 and RFC 5789 (`GET`, `HEAD`, `POST`,
//!   `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH`); any other is `OTHER`.
//! - `status` is the class of the status code: `1xx` to `5xx`. Codes 600 to 999, which the
//!   `http` crate allows but no client understands, count as `5xx`; an error returned by
//!   the inner service instead of a response also counts as `5xx` (hyper closes the
//!   connection, and axum's services cannot fail). A request whose response future is
//!   dropped before it produced a response is `cancelled`, see below.
//!
//! Past that, each family's fixed table bounds the series: once `ROUTES` routes have a
//! latency series, or `SERIES` method/route/status combinations a request series, further
//! ones go to the family's `__overflow__` series, as does a route template longer than 64
//! bytes (see [`Family`]; both are counted in `plimsoll_series_overflow_total` and
//! `plimsoll_label_value_rejected_total`).
//!
//! # What is measured
//!
//! The latency is the time from the call of the service to its response *head*: a
//! streamed body is not waited for. The request is counted, its latency recorded and the
//! in-flight gauge decremented when the response future completes, or when it is dropped
//! unfinished:
//!
//! - **Cancelled.** A future dropped unfinished means the client went away (hyper drops
//!   the future when the connection closes) or a timeout outside the layer gave up. It is
//!   counted with `status="cancelled"`, and its time until then is recorded in the latency
//!   histogram, because leaving it out would hide exactly the requests slow enough for
//!   clients to give up on. If the future is dropped while its thread panics (a handler
//!   panicked), the request counts as `5xx` instead: the server failed.
//! - **SLO.** With [`PlimsollLayer::slo`], every finished request is an event: bad if `5xx`,
//!   else good for a [`GoodEvent::Success`] SLO and judged by its latency for a
//!   [`GoodEvent::LatencyAtMost`] SLO. A cancelled request is no evidence of the server's
//!   availability, so it is left out of a success SLO, and out of a latency SLO unless it
//!   had already run longer than the threshold, when it is bad whatever happened next.
//!   Events are timed by the layer's clock ([`PlimsollLayer::clock`],
//!   [`StdClock`](crate::StdClock) by default): give the exporter the same one.
//!
//! # Cost
//!
//! Per request, the layer allocates nothing: it reads [`Instant`](std::time::Instant)
//! twice, clones axum's `MatchedPath` (an `Arc<str>`: a reference count, no allocation),
//! and at the end makes two lock-free family lookups, a few atomic updates and, with an
//! SLO, one clock reading and one SLO record. Its response future is the inner future with
//! 112 bytes beside it (x86_64), inside whatever box axum or hyper already keep the future
//! in. A route's first request creates its series in a short critical section (see
//! [`Family`]). `tests/it/middleware.rs` checks that an axum router makes the same number
//! of allocations per request with this layer as with tower's `Identity` layer, and a
//! hyper service with it as without it. (axum itself boxes each layered route's service
//! and future again per request, whatever the layer; and a `Router` called as a service
//! before `with_state` or `into_make_service`, which `axum::serve` calls, also boxes a
//! clone of each layer per request.)
//!
//! The families' size is fixed: [`HttpMetrics::FOOTPRINT`] bytes, 116,448 for the default
//! `HttpMetrics<16, 256>` on a 64-bit target: 3.6 kB per route's latency histogram and
//! 216 bytes per request series.
//!
//! # When not to use it
//!
//! It counts HTTP requests a server answers. For gRPC statuses, client-side requests or
//! per-tenant labels, declare [`Family`]s of your own and record into them from your own
//! middleware.

mod layer;

pub use layer::{PlimsollLayer, PlimsollService, ResponseFuture, RouteFn};

use plimsoll_core::{
    Counter, Exposable, Family, Gauge, GoodEvent, LatencyHistogram, RegisterError, Registry, Slo, Unlabelled,
};

/// The route of requests that no route template names.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The methods counted under their own name; others are `OTHER`.
const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// The `method` label of `method`: its name if standard, else `OTHER`.
fn method_label(method: &hyper::Method) -> &'static str {
    METHODS.into_iter().find(|known| *known == method.as_str()).unwrap_or("OTHER")
}

/// How a request ended, as its `status` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A response with this status code.
    Status(u16),
    /// The inner service failed, or the future was dropped while its thread panicked.
    Failed,
    /// The future was dropped before a response.
    Cancelled,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Status(100..=199) => "1xx",
            Self::Status(200..=299) => "2xx",
            Self::Status(300..=399) => "3xx",
            Self::Status(400..=499) => "4xx",
            Self::Status(_) | Self::Failed => "5xx",
            Self::Cancelled => "cancelled",
        }
    }

    fn is_server_error(self) -> bool {
        self.label() == "5xx"
    }
}

/// The families [`PlimsollLayer`] records into: requests by method, route and status
/// class, requests in flight, and latency by route, for up to `ROUTES` routes and `SERIES`
/// request series. Declare one as a `static` and [`register`](Self::register) it. See the
/// [module docs](self) for the labels and their bounds.
#[derive(Debug)]
pub struct HttpMetrics<const ROUTES: usize = 16, const SERIES: usize = 256> {
    requests: Family<Counter, 3, SERIES>,
    in_flight: Unlabelled<Gauge>,
    duration: Family<LatencyHistogram, 1, ROUTES>,
}

impl<const ROUTES: usize, const SERIES: usize> HttpMetrics<ROUTES, SERIES> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();
    /// The number of families [`register`](Self::register) adds.
    pub const FAMILIES: usize = 3;

    /// No requests yet.
    pub const fn new() -> Self {
        Self {
            requests: Family::new(
                "http_server_requests",
                "HTTP requests answered, by method, route template and status class.",
                ["method", "route", "status"],
            ),
            in_flight: Unlabelled::new("http_server_active_requests", "HTTP requests being answered."),
            duration: Family::new(
                "http_server_request_duration_seconds",
                "Time to the response head of HTTP requests, by route template.",
                ["route"],
            )
            .unit("seconds"),
        }
    }

    /// Registers the 3 families with `registry`. Fails without registering any if the
    /// registry has no room for all of them; a clash with another family's name fails at
    /// that family, leaving the ones before it registered.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 3] = [&self.requests, &self.in_flight, &self.duration];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }
}

/// What the layer records into: an [`HttpMetrics`] of any size, behind one pointer, so
/// that the layer's types carry no capacities.
trait Recorder: Sync {
    /// Counts a request's start.
    fn start(&self);
    /// Counts a request's end.
    fn finish(&self, method: &'static str, route: &str, outcome: Outcome, seconds: f64);
}

impl<const ROUTES: usize, const SERIES: usize> Recorder for HttpMetrics<ROUTES, SERIES> {
    fn start(&self) {
        self.in_flight.add(1);
    }

    fn finish(&self, method: &'static str, route: &str, outcome: Outcome, seconds: f64) {
        self.requests.with_label_values(&[method, route, outcome.label()]).inc();
        self.duration.with_label_values(&[route]).record(seconds);
        self.in_flight.sub(1);
    }
}

impl<const ROUTES: usize, const SERIES: usize> Default for HttpMetrics<ROUTES, SERIES> {
    fn default() -> Self {
        Self::new()
    }
}

/// Records a finished request into `slo` at `now_ms`; see the module docs' "SLO".
fn record_slo(slo: &Slo, now_ms: u64, outcome: Outcome, seconds: f64) {
    match (outcome, slo.good_event()) {
        (outcome, _) if outcome.is_server_error() => slo.record(now_ms, false),
        (Outcome::Cancelled, GoodEvent::LatencyAtMost(limit)) if seconds > limit => slo.record(now_ms, false),
        (Outcome::Cancelled, _) => {}
        (_, GoodEvent::Success) => slo.record(now_ms, true),
        (_, GoodEvent::LatencyAtMost(_)) => slo.record_latency(now_ms, seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes the module docs state.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn footprints() {
        assert_eq!(HttpMetrics::<16, 256>::FOOTPRINT, 116_448);
        assert_eq!(core::mem::size_of::<ResponseFuture<std::future::Ready<()>>>(), 112 + 8);
    }

    #[test]
    fn statuses_fold_into_classes() {
        let labels: Vec<_> = [100, 101, 200, 204, 301, 404, 499, 500, 599, 600, 999]
            .into_iter()
            .map(|code| Outcome::Status(code).label())
            .collect();
        assert_eq!(labels, ["1xx", "1xx", "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "5xx", "5xx"]);
        assert_eq!(Outcome::Failed.label(), "5xx");
        assert_eq!(Outcome::Cancelled.label(), "cancelled");
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_label(&hyper::Method::PATCH), "PATCH");
        assert_eq!(method_label(&hyper::Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&hyper::Method::from_bytes(b"get").unwrap()), "OTHER", "methods are case-sensitive");
    }

    /// The outcomes' effect on a latency SLO of 100 ms and on a success SLO.
    #[test]
    fn slo_events_follow_the_outcome() {
        let latency = Box::new(Slo::<361, 721>::new("latency", 0.99, GoodEvent::LatencyAtMost(0.1)));
        let success = Box::new(Slo::<361, 721>::new("success", 0.99, GoodEvent::Success));
        let cases = [
            (Outcome::Status(200), 0.05, Some(true), Some(true)),
            (Outcome::Status(404), 0.05, Some(true), Some(true)),
            (Outcome::Status(200), 0.5, Some(false), Some(true)),
            (Outcome::Status(503), 0.01, Some(false), Some(false)),
            (Outcome::Failed, 0.01, Some(false), Some(false)),
            (Outcome::Cancelled, 0.05, None, None),
            (Outcome::Cancelled, 0.5, Some(false), None),
        ];
        for (i, (outcome, seconds, latency_good, success_good)) in cases.into_iter().enumerate() {
            for (slo, expected) in [(&latency, latency_good), (&success, success_good)] {
                let now_ms = 3_600_000 * (i as u64 + 1);
                record_slo(slo, now_ms, outcome, seconds);
                let events = slo.events(now_ms, plimsoll_core::SloWindow::M5);
                let seen = (events.total == 1).then_some(events.good == 1);
                assert_eq!(seen, expected, "{outcome:?} after {seconds} s, SLO {}", slo.name());
            }
        }
    }
}
