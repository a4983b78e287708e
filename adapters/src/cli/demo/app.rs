//! The demo's shop: a hyper 1 HTTP/1.1 server instrumented as an application would be.
//!
//! Every request goes through the rate limiter (when the security engine is on), is routed
//! to its template, takes the time [`shop`] plans for it (its simulated
//! database queries included), and is recorded: `demo_http_requests_total`,
//! `demo_http_request_duration_seconds` (measured around the whole handler), the business
//! counters, the `demo_latency` SLO, the status line's windows and a span. See the
//! [demo's docs](super) for the routes and what each monitor receives.
//!
//! # Limits
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once (more wait in the kernel's
//! backlog), a request head must arrive within [`HEADER_TIMEOUT`] (which also closes a
//! keep-alive connection idle that long) and fit in [`MAX_HEAD_BYTES`] (else 431), a body
//! over [`MAX_BODY_BYTES`] gets 413 and a search over [`MAX_QUERY_BYTES`] gets 400, so no
//! answer exceeds [`MAX_ANSWER_BYTES`] and each connection holds at most
//! [`CONNECTION_BYTES`]: hyper's read buffer (under `MAX_HEAD_BYTES`, its capacity at most
//! twice that), its 8 KiB write buffer, a request body, an answer and 8 KiB of fixed state
//! (the task, header maps, timer). [`connections_bound`] states the total in the start-up
//! footprint report.

use super::http::{self, BodyError, Whole};
use super::monitors::{Monitors, PAYMENT_WINDOW};
use super::shop::{self, Plan, Rng, RouteId, Shape, Values};
use crate::cli::footprint::Extra;
use crate::cli::run::CLOCK;
use crate::cli::stopped;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use plimsoll::ratelimit::key_of;
use plimsoll::{
    CircuitBreaker, Clock, Counter, Decision, EventKind, Family, LatencyHistogram, LatencyWindow, RateWindow,
    RegisterError, Registry, Slo, Unlabelled,
};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Connections the app serves at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// How long a request head may take to arrive, and a keep-alive connection may stay idle.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body: a form of a few fields.
pub(crate) const MAX_BODY_BYTES: usize = 4 << 10;
/// The largest request head, as common servers allow (and hyper's smallest buffer limit).
const MAX_HEAD_BYTES: usize = 8 << 10;
/// The longest search text, in bytes.
const MAX_QUERY_BYTES: usize = 128;
/// The largest answer: a search page, its text escaped (at most 6 bytes a byte) four times.
const MAX_ANSWER_BYTES: usize = 4 << 10;
/// The most one connection holds (see the module docs).
const CONNECTION_BYTES: usize = 2 * MAX_HEAD_BYTES + (8 << 10) + MAX_BODY_BYTES + MAX_ANSWER_BYTES + (8 << 10);
/// At shutdown, requests in flight get this long to finish.
const GRACE: Duration = Duration::from_secs(2);
/// The longest a handler sleeps, whatever the model says.
const MAX_SIMULATED: Duration = Duration::from_secs(30);
/// Products 1 to this exist.
pub(crate) const PRODUCTS: u32 = 1_000;
/// The password every shopper account has.
pub(crate) const PASSWORD: &str = "demo";

pub(crate) static REQUESTS: Family<Counter, 3, 64> = Family::new(
    "demo_http_requests",
    "Requests the demo's shop answered, by method, route template (unknown paths: unmatched) and status.",
    ["method", "route", "status"],
);
pub(crate) static LATENCY: Family<LatencyHistogram, 1, 8> = Family::new(
    "demo_http_request_duration_seconds",
    "Time the demo's shop took to answer, by route template (unknown paths: unmatched).",
    ["route"],
)
.unit("seconds");
pub(crate) static LEADS: Unlabelled<Counter> = Unlabelled::new("demo_leads", "Leads captured: successful POST /leads.");
pub(crate) static CONVERSIONS: Unlabelled<Counter> =
    Unlabelled::new("demo_conversions", "Orders placed: successful POST /checkout.");
/// Every answer, for the status line (not exported, not snapshotted).
pub(crate) static RECENT_LATENCY: LatencyWindow = LatencyWindow::new();
pub(crate) static RECENT_REQUESTS: RateWindow = RateWindow::new();

/// The app's state outside the registry, for the footprint report.
pub(crate) const EXTRAS: [Extra; 2] = [
    ("demo latency window (status line)", "window", LatencyWindow::FOOTPRINT),
    ("demo request rate window (status line)", "window", RateWindow::FOOTPRINT),
];

/// The footprint report's line for the shop's connections.
pub(crate) fn connections_bound() -> String {
    format!(
        "plus the shop's connections: at most {MAX_CONNECTIONS} at once, at most about {} KiB together",
        (MAX_CONNECTIONS * CONNECTION_BYTES) >> 10
    )
}

/// Registers the app's families: requests, latency, leads and conversions.
pub(crate) fn register<const F: usize>(registry: &Registry<F>) -> Result<(), RegisterError> {
    registry.register(&REQUESTS)?;
    registry.register(&LATENCY)?;
    registry.register(&LEADS)?;
    registry.register(&CONVERSIONS)
}

/// The shop and what it records into.
pub(crate) struct App {
    pub(crate) monitors: Monitors,
    pub(crate) slo: &'static Slo,
}

/// Serves the shop on `listener` until `stop`, then lets requests in flight finish
/// ([`GRACE`] at most).
pub(crate) async fn serve(listener: TcpListener, app: &'static App, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true).max_buf_size(MAX_HEAD_BYTES);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of descriptors or a connection reset before accept: try again
                    // shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        // Answers are small: send them at once.
        let _ = stream.set_nodelay(true);
        let ip = peer.ip();
        let connection =
            http.serve_connection(TokioIo::new(stream), service_fn(move |request| handle(app, ip, request)));
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, connection).await;
                }
            }
        });
    }
    let drained = tokio::time::timeout(GRACE + Duration::from_millis(500), async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.shutdown().await;
    }
}

/// One request: limit, route, answer, record.
async fn handle(app: &'static App, peer: IpAddr, request: Request<Incoming>) -> Result<Response<Whole>, Infallible> {
    let started = Instant::now();
    let start_ms = CLOCK.now_ms();
    let route = RouteId::of(request.uri().path());
    let method = method_label(request.method());
    let key = client_key(request.headers(), peer);
    let mut rng = Rng::new();
    let (response, counted) = app.respond(route, key, request, &mut rng, start_ms).await;
    app.record(route, method, response.status(), counted, started, start_ms, &mut rng);
    Ok(response)
}

/// The `method` label: one of a fixed set, so a client cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Who is asking: the `x-client-id` header (an API key or session), else the peer's IP.
fn client_key(headers: &HeaderMap, peer: IpAddr) -> u64 {
    match headers.get("x-client-id") {
        Some(id) if !id.is_empty() => key_of(id.as_bytes()),
        _ => match peer {
            IpAddr::V4(ip) => key_of(&ip.octets()),
            IpAddr::V6(ip) => key_of(&ip.octets()),
        },
    }
}

impl App {
    /// The answer, and whether it counts for the SLO: requests to a route of the shop with
    /// its method, that the limiter let through.
    async fn respond(
        &self,
        route: RouteId,
        key: u64,
        request: Request<Incoming>,
        rng: &mut Rng,
        now_ms: u64,
    ) -> (Response<Whole>, bool) {
        if let Some(security) = self.monitors.security {
            if let Decision::Limited { retry_after_ms } = security.limiter.check(key, now_ms) {
                security.events.record(EventKind::RateLimited, key, 429, now_ms);
                security.offenders.add(key);
                return (too_many_requests(retry_after_ms), false);
            }
        }
        if route == RouteId::Unmatched {
            self.not_found_by(key, now_ms);
            sleep(shop::fast_seconds(rng)).await;
            return (page(StatusCode::NOT_FOUND, "<h1>Not found</h1><p><a href=\"/\">Back to the shop</a></p>"), false);
        }
        let expected = route.route().method;
        let method = request.method();
        if method.as_str() != expected && !(expected == "GET" && method == Method::HEAD) {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(expected));
            return (response, false);
        }
        let (parts, body) = request.into_parts();
        let form = if expected == "POST" {
            match http::read(body, MAX_BODY_BYTES).await {
                Ok(form) => String::from_utf8(form).unwrap_or_default(),
                Err(BodyError::TooLarge) => return (text(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n"), false),
                Err(BodyError::Broken) => return (text(StatusCode::BAD_REQUEST, "unreadable body\n"), false),
            }
        } else {
            String::new()
        };
        let query = parts.uri.query().unwrap_or("");
        let response = match route {
            RouteId::Home => self.home(rng, now_ms).await,
            RouteId::Product => self.product(parts.uri.path(), key, rng, now_ms).await,
            RouteId::Search => self.search(query, rng, now_ms).await,
            RouteId::Leads => self.lead(&form, rng, now_ms).await,
            RouteId::Checkout => self.checkout(&form, rng, now_ms).await,
            RouteId::Login => self.login(&form, key, rng, now_ms).await,
            RouteId::Unmatched => unreachable!("answered above"),
        };
        (response, true)
    }

    async fn home(&self, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let route = RouteId::Home.route();
        let mut plan = route.plan(rng, now_ms);
        let values = Values::default();
        if let Some(seconds) = shop::top_sellers_miss(rng) {
            self.query(Shape::TopSellers, &values, seconds, rng, now_ms);
            plan.latency_seconds += seconds;
        }
        self.work(route.queries, &plan, &values, rng, now_ms).await;
        answer(&plan).unwrap_or_else(|| page(StatusCode::OK, HOME))
    }

    async fn product(&self, path: &str, key: u64, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let route = RouteId::Product.route();
        let plan = route.plan(rng, now_ms);
        let id = path.strip_prefix("/products/").and_then(|id| id.parse::<u32>().ok());
        let Some(product) = id.filter(|id| (1..=PRODUCTS).contains(id)) else {
            // The lookup finds nothing: its query, then a 404.
            let values = Values { product: id.unwrap_or(0), ..Values::default() };
            let (shape, share) = route.queries[0];
            self.work(
                &[(shape, share)],
                &Plan { latency_seconds: plan.latency_seconds * share, ..plan },
                &values,
                rng,
                now_ms,
            )
            .await;
            self.not_found_by(key, now_ms);
            return page(StatusCode::NOT_FOUND, "<h1>No such product</h1><p><a href=\"/\">Back to the shop</a></p>");
        };
        let values = Values { product, ..Values::default() };
        self.work(route.queries, &plan, &values, rng, now_ms).await;
        answer(&plan).unwrap_or_else(|| {
            let price = 5 + product * 37 % 200;
            page(
                StatusCode::OK,
                &format!(
                    "<h1>Product {product}</h1><p>A fine thing, {price}.99 €.</p>\
                     <form method=\"post\" action=\"/checkout\"><input type=\"hidden\" name=\"product\" \
                     value=\"{product}\"><input name=\"quantity\" value=\"1\"><button>Buy</button></form>\
                     <p><a href=\"/\">Back to the shop</a></p>"
                ),
            )
        })
    }

    async fn search(&self, query: &str, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let Some(q) = http::field(query, "q").filter(|q| !q.trim().is_empty()) else {
            sleep(shop::fast_seconds(rng)).await;
            return text(StatusCode::BAD_REQUEST, "search needs ?q=\n");
        };
        if q.len() > MAX_QUERY_BYTES {
            sleep(shop::fast_seconds(rng)).await;
            return text(StatusCode::BAD_REQUEST, "search text too long: 128 bytes at most\n");
        }
        let route = RouteId::Search.route();
        let plan = route.plan(rng, now_ms);
        self.work(route.queries, &plan, &Values { text: &q, ..Values::default() }, rng, now_ms).await;
        answer(&plan).unwrap_or_else(|| search_page(&q, rng))
    }

    async fn lead(&self, form: &str, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let Some(email) = http::field(form, "email").filter(|email| valid_email(email)) else {
            sleep(shop::fast_seconds(rng)).await;
            return json(StatusCode::UNPROCESSABLE_ENTITY, r#"{"error":"a valid email is required"}"#);
        };
        let route = RouteId::Leads.route();
        let plan = route.plan(rng, now_ms);
        self.work(route.queries, &plan, &Values { text: &email, ..Values::default() }, rng, now_ms).await;
        answer(&plan).unwrap_or_else(|| json(StatusCode::CREATED, r#"{"lead":"captured"}"#))
    }

    /// Checkout: the order's queries, then the payment service, through the breaker when
    /// resilience is on. An open breaker answers 503 at once; a failed payment is a 502.
    async fn checkout(&self, form: &str, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let product = http::field(form, "product").and_then(|p| p.parse::<u32>().ok());
        let quantity = http::field(form, "quantity").and_then(|q| q.parse::<u32>().ok());
        let (Some(product @ 1..=PRODUCTS), Some(quantity @ 1..=99)) = (product, quantity) else {
            sleep(shop::fast_seconds(rng)).await;
            return json(StatusCode::UNPROCESSABLE_ENTITY, r#"{"error":"product 1-1000 and quantity 1-99 required"}"#);
        };
        let call = match self.monitors.payment.map(|breaker| Call::start(breaker, now_ms)) {
            Some(Err(refused)) => {
                sleep(shop::fast_seconds(rng)).await;
                let mut response = json(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"payments are unavailable"}"#);
                let seconds = refused.retry_after_ms.map_or(1, |ms| ms.div_ceil(1_000).max(1));
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return response;
            }
            Some(Ok(call)) => Some(call),
            None => None,
        };
        let route = RouteId::Checkout.route();
        let plan = route.plan(rng, now_ms);
        let paid = shop::payment_succeeds(rng, now_ms);
        self.work(route.queries, &plan, &Values { product, quantity, ..Values::default() }, rng, now_ms).await;
        if let Some(call) = call {
            let payment_ms = (plan.latency_seconds * shop::PAYMENT_SHARE * 1e3) as u64;
            call.finish(paid, payment_ms, CLOCK.now_ms());
        }
        if !paid {
            return json(StatusCode::BAD_GATEWAY, r#"{"error":"the payment failed"}"#);
        }
        answer(&plan).unwrap_or_else(|| json(StatusCode::CREATED, r#"{"order":"placed"}"#))
    }

    async fn login(&self, form: &str, key: u64, rng: &mut Rng, now_ms: u64) -> Response<Whole> {
        let (Some(email), Some(password)) = (http::field(form, "email"), http::field(form, "password")) else {
            sleep(shop::fast_seconds(rng)).await;
            return json(StatusCode::UNPROCESSABLE_ENTITY, r#"{"error":"email and password required"}"#);
        };
        let route = RouteId::Login.route();
        let plan = route.plan(rng, now_ms);
        self.work(route.queries, &plan, &Values { text: &email, ..Values::default() }, rng, now_ms).await;
        if let Some(failed) = answer(&plan) {
            return failed;
        }
        if password != PASSWORD {
            if let Some(security) = self.monitors.security {
                security.events.record(EventKind::AuthFailure, key, 401, now_ms);
            }
            let mut response = json(StatusCode::UNAUTHORIZED, r#"{"error":"wrong email or password"}"#);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Form"));
            return response;
        }
        json(StatusCode::OK, r#"{"session":"started"}"#)
    }

    /// Runs `queries` (each taking its share of `plan`'s latency) and waits out the latency.
    async fn work(&self, queries: &[(Shape, f64)], plan: &Plan, values: &Values<'_>, rng: &mut Rng, now_ms: u64) {
        for &(shape, share) in queries {
            self.query(shape, values, plan.latency_seconds * share, rng, now_ms);
        }
        sleep(plan.latency_seconds).await;
    }

    /// Records one execution of `shape` taking `seconds`, with the query optimization on;
    /// with it off, no SQL is even written.
    fn query(&self, shape: Shape, values: &Values<'_>, seconds: f64, rng: &mut Rng, now_ms: u64) {
        if let Some(queries) = self.monitors.queries {
            let fingerprint = shape.fingerprint(values, rng);
            queries.record(fingerprint.hash(), fingerprint.text(), (seconds * 1e6) as u64, now_ms);
        }
    }

    fn not_found_by(&self, key: u64, now_ms: u64) {
        if let Some(security) = self.monitors.security {
            security.events.record(EventKind::NotFound, key, 404, now_ms);
        }
    }

    /// Records an answered request: the app's families, the status line's windows, the SLO
    /// (if `counted`) and a span.
    #[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
    fn record(
        &self,
        route: RouteId,
        method: &str,
        status: StatusCode,
        counted: bool,
        started: Instant,
        start_ms: u64,
        rng: &mut Rng,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        let now_ms = CLOCK.now_ms();
        let template = route.template();
        if self.monitors.metrics {
            REQUESTS.with_label_values(&[method, template, status.as_str()]).inc();
            LATENCY.with_label_values(&[template]).record(seconds);
            match (route, status) {
                (RouteId::Leads, StatusCode::CREATED) => LEADS.inc(),
                (RouteId::Checkout, StatusCode::CREATED) => CONVERSIONS.inc(),
                _ => {}
            }
        }
        RECENT_LATENCY.record(now_ms, seconds);
        RECENT_REQUESTS.inc(now_ms);
        if counted {
            if status.is_server_error() {
                self.slo.record(now_ms, false);
            } else {
                self.slo.record_latency(now_ms, seconds);
            }
        }
        if let Some(spans) = self.monitors.spans {
            spans.record(template, start_ms, (seconds * 1e6) as u64, rng.trace_id(), now_ms);
        }
    }
}

/// A call to the payment service through its breaker. Dropped unfinished (the client went
/// away mid-request), it gives its permit back, so a half-open breaker is never left
/// waiting for a trial that will not report.
struct Call {
    breaker: &'static CircuitBreaker<PAYMENT_WINDOW>,
    finished: bool,
}

impl Call {
    fn start(
        breaker: &'static CircuitBreaker<PAYMENT_WINDOW>,
        now_ms: u64,
    ) -> Result<Self, plimsoll::breaker::CallNotPermitted> {
        let _permit = breaker.try_acquire(now_ms)?;
        Ok(Self { breaker, finished: false })
    }

    fn finish(mut self, succeeded: bool, duration_ms: u64, now_ms: u64) {
        self.finished = true;
        if succeeded {
            self.breaker.on_success(duration_ms, now_ms);
        } else {
            self.breaker.on_error(duration_ms, now_ms);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.release_permission();
        }
    }
}

/// The server error `plan` asks for, if any.
fn answer(plan: &Plan) -> Option<Response<Whole>> {
    plan.server_error.map(|code| match code {
        503 => text(StatusCode::SERVICE_UNAVAILABLE, "overloaded, try again\n"),
        _ => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    })
}

/// The results for `q`: three random products.
fn search_page(q: &str, rng: &mut Rng) -> Response<Whole> {
    let q = http::escape(q);
    let hits: String = (0..3)
        .map(|_| rng.below(PRODUCTS) + 1)
        .map(|id| format!("<li><a href=\"/products/{id}\">{q} no. {id}</a></li>"))
        .collect();
    page(StatusCode::OK, &format!("<h1>Results for “{q}”</h1><ul>{hits}</ul><p><a href=\"/\">Back</a></p>"))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254 && !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
}

/// Waits `seconds` (as simulated work), at most [`MAX_SIMULATED`].
async fn sleep(seconds: f64) {
    let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
    tokio::time::sleep(Duration::from_secs_f64(seconds).min(MAX_SIMULATED)).await;
}

fn response(status: StatusCode, content_type: &'static str, body: Whole) -> Response<Whole> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn page(status: StatusCode, html: &str) -> Response<Whole> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Plimsoll shop</title></head><body>{html}</body></html>\n"
    );
    response(status, "text/html; charset=utf-8", Whole::from(html))
}

fn text(status: StatusCode, text: &'static str) -> Response<Whole> {
    response(status, "text/plain; charset=utf-8", Whole::from(text))
}

fn json(status: StatusCode, json: &'static str) -> Response<Whole> {
    response(status, "application/json", Whole::from(json))
}

fn too_many_requests(retry_after_ms: u64) -> Response<Whole> {
    let mut response = text(StatusCode::TOO_MANY_REQUESTS, "too many requests, slow down\n");
    let seconds = retry_after_ms.div_ceil(1_000).max(1);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The home page: a link or a form for every route.
const HOME: &str = "<h1>Plimsoll shop</h1>\
<p>A demo shop instrumented with Plimsoll: its metrics are on the exporter's <code>/metrics</code>, \
its SLO, breakers, rate limits, security events, slow queries and spans on <code>/api/report</code>.</p>\
<ul><li><a href=\"/products/1\">Product 1</a>, <a href=\"/products/42\">product 42</a>, \
<a href=\"/products/1001\">a product that does not exist</a></li>\
<li><form action=\"/search\"><input name=\"q\" value=\"lamp\"><button>Search</button></form></li>\
<li><form method=\"post\" action=\"/leads\"><input name=\"email\" value=\"ada@example.com\">\
<button>Join the newsletter</button></form></li>\
<li><form method=\"post\" action=\"/checkout\"><input name=\"product\" value=\"42\">\
<input name=\"quantity\" value=\"1\"><button>Check out</button></form></li>\
<li><form method=\"post\" action=\"/login\"><input name=\"email\" value=\"ada@example.com\">\
<input name=\"password\" type=\"password\" value=\"demo\"><button>Log in</button></form></li></ul>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_clients_are_told_apart() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("a method")), "other");
        let peer: IpAddr = "192.0.2.7".parse().expect("an address");
        let mut headers = HeaderMap::new();
        assert_eq!(client_key(&headers, peer), key_of(&[192, 0, 2, 7]));
        headers.insert("x-client-id", HeaderValue::from_static("abuser"));
        assert_eq!(client_key(&headers, peer), key_of(b"abuser"));
        assert!(valid_email("ada@example.com"));
        for bad in ["", "ada", "@example.com", "ada@localhost", "a da@example.com"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn the_largest_answer_is_within_its_bound() {
        use http_body::Body;
        // The longest search text, every byte escaped to the longest entity.
        let q = "\"".repeat(MAX_QUERY_BYTES);
        let len = search_page(&q, &mut Rng::seeded(7)).body().size_hint().exact().expect("a whole body");
        assert!(len as usize <= MAX_ANSWER_BYTES, "{len} bytes");
        assert!(len as usize > MAX_ANSWER_BYTES / 2, "{len} bytes: the bound is loose");
    }

    #[test]
    fn an_abandoned_call_gives_its_trial_back() {
        use plimsoll::BreakerState;
        static BREAKER: CircuitBreaker<PAYMENT_WINDOW> = CircuitBreaker::new(
            "test",
            plimsoll::breaker::BreakerConfig {
                wait_duration_in_open_state_ms: 1_000,
                permitted_number_of_calls_in_half_open_state: 3,
                ..plimsoll::breaker::BreakerConfig::DEFAULT
            },
        );
        BREAKER.transition_to_open(0);
        assert!(Call::start(&BREAKER, 500).is_err(), "open: refused at once");
        // Requests cancelled mid-call (a client gone) report nothing but free their trials...
        for _ in 0..5 {
            let trials: Vec<Call> = (0..3).map(|_| Call::start(&BREAKER, 2_000).expect("a trial")).collect();
            assert_eq!(BREAKER.state(), BreakerState::HalfOpen);
            assert!(Call::start(&BREAKER, 2_000).is_err(), "three trials at most");
            drop(trials);
        }
        // ...so the trials that do report still decide.
        for _ in 0..3 {
            Call::start(&BREAKER, 2_000).expect("a trial").finish(true, 10, 2_010);
        }
        assert_eq!(BREAKER.state(), BreakerState::Closed);
    }
}
