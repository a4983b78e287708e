//! Routing, authorization and the handlers of every route.

use super::auth::Token;
use super::body::{MetricsStream, ResponseBody, ScrapePool};
use super::conn::{ConnState, Slots};
use super::negotiate::negotiate;
use super::{ExporterMetrics, Limits, MAX_TOKEN_LEN, MEMORY_UNHEALTHY_ETA, SloSource, State};
use crate::MemoryMonitor;
use crate::report::{Section, Status};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use plimsoll_core::SloWindow;
use plimsoll_core::snapshot::{self, SnapshotError, SnapshotPart};
use plimsoll_core::{Clock, Registry, RenderError};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use tokio::sync::watch;

/// What every connection shares, built once at bind.
pub(crate) struct Shared<const F: usize> {
    pub(crate) registry: &'static Registry<F>,
    pub(crate) token: Option<Token>,
    pub(crate) slos: Option<Slos<F>>,
    pub(crate) memory: Option<&'static MemoryMonitor>,
    /// The monitors `/api/report` shows and `/health` judges.
    pub(crate) sections: Vec<&'static dyn Section>,
    /// The state `/snapshot` serves; `None` answers 404.
    pub(crate) snapshot: Option<&'static [&'static dyn SnapshotPart]>,
    pub(crate) clock: &'static (dyn Clock + Send + Sync),
    pub(crate) metrics: &'static ExporterMetrics,
    /// A `prometheus` crate registry whose text `/metrics` appends.
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<::prometheus::Registry>,
    pub(crate) pool: Arc<ScrapePool<F>>,
    pub(crate) limits: Limits,
    pub(crate) http: hyper::server::conn::http1::Builder,
    /// One slot per permitted connection: who is reading a request head, and since when.
    pub(crate) slots: Slots,
    /// Running, draining or aborting; `/health/ready` answers 503 once not running.
    pub(crate) control: watch::Sender<State>,
}

/// The SLO export, registered at bind.
pub(crate) struct Slos<const F: usize> {
    pub(crate) source: &'static dyn SloSource<F>,
}

/// The routes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Health,
    Live,
    Ready,
    Snapshot,
    Report,
    Dashboard,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/metrics" => Some(Self::Metrics),
            "/health" => Some(Self::Health),
            "/health/live" => Some(Self::Live),
            "/health/ready" => Some(Self::Ready),
            "/snapshot" => Some(Self::Snapshot),
            "/api/report" => Some(Self::Report),
            "/dashboard" => Some(Self::Dashboard),
            _ => None,
        }
    }
}

/// The per-connection service hyper calls for each request.
pub(crate) struct Handler<'c, const F: usize> {
    pub(crate) shared: &'c Shared<F>,
    pub(crate) conn: &'c ConnState<'c>,
}

impl<const F: usize> hyper::service::Service<Request<Incoming>> for Handler<'_, F> {
    type Response = Response<ResponseBody<F>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.conn.request_started();
        let (request, _) = request.into_parts();
        let reply = self.shared.respond(&request);
        self.shared.metrics.count_response(reply.status.as_u16());
        // The request's header map becomes the response's. hyper hands a response's map,
        // emptied, to the next request on the connection, so the map cycles and a
        // kept-alive scraper costs no header allocation after its first request.
        let mut headers = request.headers;
        headers.clear();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(content_type) = reply.content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        if let Some((name, value)) = reply.extra {
            headers.insert(name, value);
        }
        // Another connection waits for this one's slot: hyper closes after this response.
        if self.conn.slot.closes_when_answered() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let mut response = Response::new(reply.body);
        *response.status_mut() = reply.status;
        *response.headers_mut() = headers;
        ready(Ok(response))
    }
}

/// A response before its header map is attached.
struct Reply<const F: usize> {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    extra: Option<(HeaderName, HeaderValue)>,
    body: ResponseBody<F>,
}

fn json_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn reply<const F: usize>(status: StatusCode, content_type: Option<HeaderValue>, body: ResponseBody<F>) -> Reply<F> {
    Reply { status, content_type, extra: None, body }
}

fn static_reply<const F: usize>(
    status: StatusCode,
    content_type: HeaderValue,
    body: &'static str,
    head: bool,
) -> Reply<F> {
    let body = if head { ResponseBody::Empty } else { ResponseBody::Full(Some(Bytes::from_static(body.as_bytes()))) };
    reply(status, Some(content_type), body)
}

impl<const F: usize> Shared<F> {
    fn respond(&self, request: &Parts) -> Reply<F> {
        let Some(route) = Route::of(request.uri.path()) else {
            return self.guarded(request, |_| reply(StatusCode::NOT_FOUND, None, ResponseBody::Empty));
        };
        let head = match request.method {
            Method::GET => false,
            Method::HEAD => true,
            _ if route == Route::Live => return method_not_allowed(),
            _ => return self.guarded(request, |_| method_not_allowed()),
        };
        match route {
            Route::Live => static_reply(StatusCode::OK, json_type(), r#"{"status":"live"}"#, head),
            Route::Ready => self.guarded(request, |this| this.ready(head)),
            Route::Health => self.guarded(request, |this| this.health(head)),
            Route::Metrics => self.guarded(request, |this| this.metrics(request, head)),
            Route::Snapshot => self.guarded(request, |this| this.snapshot(head)),
            Route::Report => self.guarded(request, |this| this.report(head)),
            Route::Dashboard => self.dashboard(request, head),
        }
    }

    /// Whether the request's `Authorization` header carries the token (or none is
    /// configured).
    fn authorized(&self, request: &Parts) -> bool {
        match &self.token {
            None => true,
            Some(token) => token.authorizes(request.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes)),
        }
    }

    /// Runs `handler` if the request carries the token (or none is configured), else 401.
    fn guarded(&self, request: &Parts, handler: impl FnOnce(&Self) -> Reply<F>) -> Reply<F> {
        if self.authorized(request) {
            return handler(self);
        }
        challenge(reply(StatusCode::UNAUTHORIZED, None, ResponseBody::Empty))
    }

    /// `/dashboard`: the page, to a request that carries the token in its `Authorization`
    /// header or, on this route only, in a `token` query parameter (a browser's first load
    /// cannot send a header); otherwise 401 with the sign-in page, which asks for the token
    /// (or, on a reload, sends the one the page kept) and loads the page with it.
    fn dashboard(&self, request: &Parts, head: bool) -> Reply<F> {
        let html = HeaderValue::from_static("text/html; charset=utf-8");
        let by_query = |token: &Token| query_authorizes(token, request.uri.query());
        if self.authorized(request) || self.token.as_ref().is_some_and(by_query) {
            return static_reply(StatusCode::OK, html, DASHBOARD, head);
        }
        challenge(static_reply(StatusCode::UNAUTHORIZED, html, SIGN_IN, head))
    }

    fn ready(&self, head: bool) -> Reply<F> {
        if *self.control.borrow() != State::Running {
            static_reply(StatusCode::SERVICE_UNAVAILABLE, json_type(), r#"{"status":"draining"}"#, head)
        } else {
            static_reply(StatusCode::OK, json_type(), r#"{"status":"ready"}"#, head)
        }
    }

    fn metrics(&self, request: &Parts, head: bool) -> Reply<F> {
        let format = negotiate(request.headers.get_all(ACCEPT).iter().map(HeaderValue::as_bytes));
        // The `prometheus` crate's text can only follow Prometheus text (see `prometheus.rs`).
        #[cfg(feature = "prometheus")]
        let format = if self.prometheus.is_some() { plimsoll_core::Format::Prometheus } else { format };
        let content_type = Some(HeaderValue::from_static(format.content_type()));
        if head {
            return reply(StatusCode::OK, content_type, ResponseBody::Empty);
        }
        self.update(self.clock.now_ms());
        let needed = self.registry.max_message_len(format);
        if needed > self.pool.buffer_len() {
            return render_failed(needed);
        }
        match MetricsStream::start(self.registry.renderer(format), Arc::clone(&self.pool)) {
            Ok(stream) => {
                #[cfg(feature = "prometheus")]
                let stream = match &self.prometheus {
                    Some(registry) => stream.append(super::prometheus::exposition(registry, self.registry)),
                    None => stream,
                };
                reply(StatusCode::OK, content_type, ResponseBody::Metrics(stream))
            }
            Err(RenderError::BufferTooSmall { needed }) => render_failed(needed),
            Err(_) => render_failed(needed),
        }
    }

    /// `/snapshot`: the state as the snapshot file holds it (postcard, checksummed), taken
    /// now; 404 when the exporter has no state to snapshot.
    fn snapshot(&self, head: bool) -> Reply<F> {
        let Some(parts) = self.snapshot else {
            return reply(StatusCode::NOT_FOUND, None, ResponseBody::Empty);
        };
        let content_type = Some(HeaderValue::from_static("application/octet-stream"));
        if head {
            return reply(StatusCode::OK, content_type, ResponseBody::Empty);
        }
        let now_ms = self.clock.now_ms();
        let needed = match snapshot::write(parts, now_ms, &mut []) {
            Err(SnapshotError::BufferTooSmall { needed }) => needed,
            _ => 0,
        };
        let mut bytes = vec![0u8; needed];
        match snapshot::write(parts, now_ms, &mut bytes) {
            Ok(len) => {
                bytes.truncate(len);
                reply(StatusCode::OK, content_type, ResponseBody::Full(Some(Bytes::from(bytes))))
            }
            // A part grew between the two writes (none does: their sizes are fixed).
            Err(error) => {
                let text = HeaderValue::from_static("text/plain; charset=utf-8");
                let message = Bytes::from(format!("snapshot failed: {error}\n"));
                reply(StatusCode::INTERNAL_SERVER_ERROR, Some(text), ResponseBody::Full(Some(message)))
            }
        }
    }

    /// Brings every exported figure to `now_ms`: the SLOs', the memory monitor's and each
    /// section's.
    fn update(&self, now_ms: u64) {
        if let Some(slos) = &self.slos {
            slos.source.update(now_ms);
        }
        if let Some(monitor) = self.memory {
            monitor.update(now_ms);
        }
        for section in &self.sections {
            section.update(now_ms);
        }
    }

    /// Every health check at `now_ms` (figures already updated) and the worst status:
    /// unhealthy if an SLO pages or memory is forecast to reach the limit within
    /// [`MEMORY_UNHEALTHY_ETA`]; degraded if an SLO opens a ticket, a leak is suspected or a
    /// section says so (an open breaker).
    fn checks(&self, now_ms: u64) -> (Status, Map<String, Value>) {
        let mut checks = Map::new();
        let mut worst = Status::Healthy;
        let mut check = |name: String, status: Status, detail: Value| {
            worst = worst.max(status);
            checks.insert(name, detail);
        };
        if let Some(monitor) = self.memory {
            monitor.for_each_assessment(now_ms, |signal, assessment| {
                let eta = assessment.eta_seconds.filter(|eta| eta.is_finite());
                let leak = assessment.verdict == plimsoll_core::Verdict::LeakSuspected;
                let status = match (leak, eta) {
                    (true, Some(eta)) if eta < MEMORY_UNHEALTHY_ETA.as_secs_f64() => Status::Unhealthy,
                    (true, _) => Status::Degraded,
                    (false, _) => Status::Healthy,
                };
                let detail = json!({"verdict": assessment.verdict.label(), "eta_seconds": eta});
                check(format!("memory:{signal}"), status, detail);
            });
        }
        if let Some(slos) = &self.slos {
            slos.source.for_each_alert(now_ms, &mut |slo, alerts| {
                let status = match (alerts.page, alerts.ticket) {
                    (true, _) => Status::Unhealthy,
                    (false, true) => Status::Degraded,
                    (false, false) => Status::Healthy,
                };
                check(format!("slo:{slo}"), status, json!({"page": alerts.page, "ticket": alerts.ticket}));
            });
        }
        for section in &self.sections {
            section.health(now_ms, &mut check);
        }
        (worst, checks)
    }

    /// `/health`: see [`checks`](Self::checks); 503 when unhealthy, 200 otherwise.
    fn health(&self, head: bool) -> Reply<F> {
        let now_ms = self.clock.now_ms();
        self.update(now_ms);
        let (status, checks) = self.checks(now_ms);
        let code = if status == Status::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        let body = if head {
            ResponseBody::Empty
        } else {
            let json = json!({"status": status.label(), "checks": checks});
            ResponseBody::Full(Some(Bytes::from(serde_json::to_vec(&json).unwrap_or_default())))
        };
        reply(code, Some(json_type()), body)
    }

    /// `/api/report`: the exporter's figures as one JSON object (see the routes table).
    fn report(&self, head: bool) -> Reply<F> {
        if head {
            return reply(StatusCode::OK, Some(json_type()), ResponseBody::Empty);
        }
        let now_ms = self.clock.now_ms();
        self.update(now_ms);
        let (status, checks) = self.checks(now_ms);
        let families = self.registry.families();
        let series: usize = self.registry.families().map(|f| f.series_in_use()).sum();
        let mut report = Map::new();
        report.insert("time_ms".into(), json!(now_ms));
        report.insert("status".into(), json!(status.label()));
        report.insert("checks".into(), Value::Object(checks));
        report.insert(
            "footprint".into(),
            json!({"registry_bytes": self.registry.footprint(), "families": families.count(), "series": series}),
        );
        if let Some(slos) = &self.slos {
            report.insert("slos".into(), slo_report(slos.source, now_ms));
        }
        if let Some(monitor) = self.memory {
            report.insert("memory".into(), memory_report(monitor, now_ms));
        }
        for section in &self.sections {
            report.insert(section.key().into(), section.report(now_ms));
        }
        let body = serde_json::to_vec(&Value::Object(report)).unwrap_or_default();
        reply(StatusCode::OK, Some(json_type()), ResponseBody::Full(Some(Bytes::from(body))))
    }
}

/// The dashboard: one self-contained page (inline CSS, script and SVG; no external
/// resource) that polls `/api/report` and `/metrics` with the token and keeps its short
/// history in the browser, so a viewer costs the server nothing between requests.
const DASHBOARD: &str = include_str!("dashboard.html");
/// What `/dashboard` answers without the token: a form that asks for it.
const SIGN_IN: &str = include_str!("sign-in.html");

/// `reply` with the `WWW-Authenticate` challenge of a 401.
fn challenge<const F: usize>(reply: Reply<F>) -> Reply<F> {
    let challenge = (WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"plimsoll\""));
    Reply { extra: Some(challenge), ..reply }
}

/// Whether the first `token` parameter of `query` carries `token`. Its value is
/// percent-decoded as a form sends it (`+` is a space, so a token's `+` travels as `%2B`)
/// into a stack buffer and compared as an `Authorization` header is, in constant time; a
/// value that cannot be a token (too long, a malformed escape, a byte that is not visible
/// ASCII) is refused before any comparison, which tells nothing about the token.
fn query_authorizes(token: &Token, query: Option<&str>) -> bool {
    const SCHEME: &[u8] = b"Bearer ";
    let mut pairs = query.into_iter().flat_map(|query| query.split('&'));
    let Some(value) = pairs.find_map(|pair| pair.strip_prefix("token=")) else {
        return false;
    };
    let mut header = [0u8; SCHEME.len() + MAX_TOKEN_LEN];
    header[..SCHEME.len()].copy_from_slice(SCHEME);
    match form_decode(value.as_bytes(), &mut header[SCHEME.len()..]) {
        Some(len) => token.authorizes(Some(&header[..SCHEME.len() + len])),
        None => false,
    }
}

/// Decodes `%XX` escapes and `+` (a space) of a form value into `out`: the decoded length,
/// or `None` if it does not fit, an escape is malformed or a decoded byte is not visible
/// ASCII (no token holds one).
fn form_decode(value: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut read, mut len) = (0, 0);
    while read < value.len() {
        let byte = match value[read] {
            b'%' => {
                let hex = value.get(read + 1..read + 3).filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))?;
                read += 2;
                // Two hex digits always parse.
                u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?
            }
            b'+' => b' ',
            other => other,
        };
        if !byte.is_ascii_graphic() {
            return None;
        }
        *out.get_mut(len)? = byte;
        len += 1;
        read += 1;
    }
    Some(len)
}

/// A finite number, or `null`.
fn finite(value: Option<f64>) -> Value {
    value.filter(|v| v.is_finite()).map_or(Value::Null, Value::from)
}

/// Each SLO's objective, availability and burn rate over its windows, budget and alerts.
fn slo_report<const F: usize>(slos: &dyn SloSource<F>, now_ms: u64) -> Value {
    let mut out = Vec::new();
    slos.for_each_report(now_ms, &mut |name, objective, report| {
        let mut windows = Map::new();
        for window in SloWindow::ALL {
            let events = report.events(window);
            windows.insert(
                window.label().into(),
                json!({
                    "good": events.good,
                    "total": events.total,
                    "availability": finite(report.availability(window)),
                    "burn_rate": finite(report.burn_rate(window).filter(|_| report.is_covered(window))),
                    "covered": report.is_covered(window),
                }),
            );
        }
        let budget = report.budget();
        let alerts = report.alerts();
        out.push(json!({
            "name": name,
            "objective": objective,
            "windows": windows,
            "error_budget": {
                "allowed": finite(Some(budget.allowed)),
                "consumed": budget.consumed,
                "remaining_ratio": finite(Some(budget.remaining_ratio)),
                "exhaustion_seconds": finite(budget.exhaustion_seconds),
            },
            "alerts": {"page": alerts.page, "ticket": alerts.ticket},
        }));
    });
    Value::Array(out)
}

/// Each memory signal's verdict, slope and forecast, and the limit.
fn memory_report(monitor: &MemoryMonitor, now_ms: u64) -> Value {
    let mut signals = Vec::new();
    monitor.for_each_assessment(now_ms, |signal, a| {
        signals.push(json!({
            "signal": signal,
            "verdict": a.verdict.label(),
            "slope_bytes_per_hour": finite(a.slope_bytes_per_hour()),
            "p_value": finite(a.p_value()),
            "eta_seconds": finite(a.eta_seconds),
            "plateau": a.plateau,
        }));
    });
    json!({"limit_bytes": monitor.limit_bytes(), "signals": signals})
}

fn method_not_allowed<const F: usize>() -> Reply<F> {
    let allow = (ALLOW, HeaderValue::from_static("GET, HEAD"));
    Reply { extra: Some(allow), ..reply(StatusCode::METHOD_NOT_ALLOWED, None, ResponseBody::Empty) }
}

/// 500: a line of the exposition does not fit the render buffer (a family with longer
/// lines was registered after bind).
fn render_failed<const F: usize>(needed: usize) -> Reply<F> {
    let message = format!(
        "a line of the exposition needs a render buffer of {needed} bytes; raise Limits::render_buffer_bytes\n"
    );
    let text = HeaderValue::from_static("text/plain; charset=utf-8");
    reply(StatusCode::INTERNAL_SERVER_ERROR, Some(text), ResponseBody::Full(Some(Bytes::from(message))))
}
