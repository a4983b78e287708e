//! Routing, authorization and the handlers of every route.

use super::auth::Token;
use super::body::{BufferPool, MetricsStream, ResponseBody};
use super::conn::ConnState;
use super::negotiate::negotiate;
use super::{ExporterMetrics, Limits, MEMORY_UNHEALTHY_ETA, SloSource, State};
use crate::MemoryMonitor;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use plimsoll_core::snapshot::{self, SnapshotError, SnapshotPart};
use plimsoll_core::{Clock, Registry, RenderError};
use serde_json::{Map, json};
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
    /// The state `/snapshot` serves; `None` answers 404.
    pub(crate) snapshot: Option<&'static [&'static dyn SnapshotPart]>,
    pub(crate) clock: &'static (dyn Clock + Send + Sync),
    pub(crate) metrics: &'static ExporterMetrics,
    pub(crate) pool: Arc<BufferPool>,
    pub(crate) limits: Limits,
    pub(crate) http: hyper::server::conn::http1::Builder,
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
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/metrics" => Some(Self::Metrics),
            "/health" => Some(Self::Health),
            "/health/live" => Some(Self::Live),
            "/health/ready" => Some(Self::Ready),
            "/snapshot" => Some(Self::Snapshot),
            _ => None,
        }
    }
}

/// The per-connection service hyper calls for each request.
pub(crate) struct Handler<'c, const F: usize> {
    pub(crate) shared: &'c Shared<F>,
    pub(crate) conn: &'c ConnState,
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
        }
    }

    /// Runs `handler` if the request carries the token (or none is configured), else 401.
    fn guarded(&self, request: &Parts, handler: impl FnOnce(&Self) -> Reply<F>) -> Reply<F> {
        let authorized = match &self.token {
            None => true,
            Some(token) => token.authorizes(request.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes)),
        };
        if authorized {
            return handler(self);
        }
        let challenge = (WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"plimsoll\""));
        Reply { extra: Some(challenge), ..reply(StatusCode::UNAUTHORIZED, None, ResponseBody::Empty) }
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
        let content_type = Some(HeaderValue::from_static(format.content_type()));
        if head {
            return reply(StatusCode::OK, content_type, ResponseBody::Empty);
        }
        let now_ms = self.clock.now_ms();
        if let Some(slos) = &self.slos {
            slos.source.update(now_ms);
        }
        if let Some(monitor) = self.memory {
            monitor.update(now_ms);
        }
        let needed = self.registry.max_line_len();
        if needed > self.pool.buffer_len() {
            return render_failed(needed);
        }
        match MetricsStream::start(self.registry.renderer(format), Arc::clone(&self.pool)) {
            Ok(stream) => reply(StatusCode::OK, content_type, ResponseBody::Metrics(stream)),
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

    /// `/health`: `unhealthy` (503) if an SLO pages or memory is forecast to reach the
    /// limit within [`MEMORY_UNHEALTHY_ETA`], `degraded` (200) if an SLO opens a ticket or
    /// a leak is suspected, `healthy` (200) otherwise, with each SLO's alerts and each
    /// memory signal's verdict under `checks`.
    fn health(&self, head: bool) -> Reply<F> {
        let mut checks = Map::new();
        let (mut page, mut ticket) = (false, false);
        let now_ms = self.clock.now_ms();
        if let Some(monitor) = self.memory {
            monitor.update(now_ms);
            monitor.for_each_assessment(now_ms, |signal, assessment| {
                let eta = assessment.eta_seconds.filter(|eta| eta.is_finite());
                checks.insert(
                    format!("memory:{signal}"),
                    json!({"verdict": assessment.verdict.label(), "eta_seconds": eta}),
                );
                let leak = assessment.verdict == plimsoll_core::Verdict::LeakSuspected;
                page |= leak && eta.is_some_and(|eta| eta < MEMORY_UNHEALTHY_ETA.as_secs_f64());
                ticket |= leak;
            });
        }
        if let Some(slos) = &self.slos {
            slos.source.update(now_ms);
            slos.source.for_each_alert(now_ms, &mut |slo, alerts| {
                checks.insert(format!("slo:{slo}"), json!({"page": alerts.page, "ticket": alerts.ticket}));
                page |= alerts.page;
                ticket |= alerts.ticket;
            });
        }
        let (status, code) = match (page, ticket) {
            (true, _) => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
            (false, true) => ("degraded", StatusCode::OK),
            (false, false) => ("healthy", StatusCode::OK),
        };
        let body = if head {
            ResponseBody::Empty
        } else {
            let json = json!({"status": status, "checks": checks});
            ResponseBody::Full(Some(Bytes::from(serde_json::to_vec(&json).unwrap_or_default())))
        };
        reply(code, Some(json_type()), body)
    }
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
