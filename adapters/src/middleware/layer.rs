//! The layer, its service and its response future.

use super::{HttpMetrics, Outcome, Recorder, UNMATCHED_ROUTE, method_label, record_slo};
use crate::StdClock;
use hyper::{Method, Request, Response};
use pin_project_lite::pin_project;
use plimsoll_core::{Clock, Slo};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Maps a request's method and path to its route template, or `None` for
/// [`UNMATCHED_ROUTE`]. A plain `fn` returning a `&'static str`, so that naming a route
/// allocates nothing.
pub type RouteFn = fn(&Method, &str) -> Option<&'static str>;

/// The layer's default clock for SLO events.
static DEFAULT_CLOCK: StdClock = StdClock::new();

/// A tower [`Layer`](tower_layer::Layer) that records each request into an
/// [`HttpMetrics`], and into an [`Slo`] if given. See the [module docs](super).
#[derive(Clone, Copy)]
pub struct PlimsollLayer {
    metrics: &'static dyn Recorder,
    slo: Option<&'static Slo>,
    route: Option<RouteFn>,
    clock: &'static (dyn Clock + Send + Sync),
}

impl core::fmt::Debug for PlimsollLayer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PlimsollLayer")
            .field("slo", &self.slo.map(Slo::name))
            .field("route_fn", &self.route.is_some())
            .finish_non_exhaustive()
    }
}

impl PlimsollLayer {
    /// A layer recording into `metrics`, with no SLO, no route function and [`StdClock`].
    pub const fn new<const ROUTES: usize, const SERIES: usize>(metrics: &'static HttpMetrics<ROUTES, SERIES>) -> Self {
        Self { metrics, slo: None, route: None, clock: &DEFAULT_CLOCK }
    }

    /// Also counts each finished request as an event of `slo` (an [`Slo`] of the default
    /// ring sizes): bad if `5xx`, else judged by the SLO's
    /// [`GoodEvent`](plimsoll_core::GoodEvent) (see the module docs).
    pub const fn slo(mut self, slo: &'static Slo) -> Self {
        self.slo = Some(slo);
        self
    }

    /// Names the route of requests that carry no axum `MatchedPath`: hyper services, or
    /// the layer put around a whole router.
    pub const fn route_fn(mut self, route: RouteFn) -> Self {
        self.route = Some(route);
        self
    }

    /// The clock that times SLO events (default: [`StdClock`], Unix-epoch milliseconds).
    pub const fn clock<C: Clock + Send + Sync>(mut self, clock: &'static C) -> Self {
        self.clock = clock;
        self
    }

    /// Starts timing `request`.
    fn start<B>(&self, request: &Request<B>) -> Pending {
        self.metrics.start();
        Pending {
            layer: *self,
            method: method_label(request.method()),
            route: self.route_of(request),
            start: Instant::now(),
            finished: false,
        }
    }

    /// The route template of `request`: axum's matched path, else the route function's
    /// answer, else [`UNMATCHED_ROUTE`].
    fn route_of<B>(&self, request: &Request<B>) -> Route {
        #[cfg(feature = "axum")]
        if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
            return Route::Matched(path.clone());
        }
        let named = self.route.and_then(|route| route(request.method(), request.uri().path()));
        Route::Static(named.unwrap_or(UNMATCHED_ROUTE))
    }
}

impl<S> tower_layer::Layer<S> for PlimsollLayer {
    type Service = PlimsollService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PlimsollService { inner, layer: *self }
    }
}

/// A service wrapped by [`PlimsollLayer`]: a tower `Service` if the inner one is, and a
/// hyper `Service` if the inner one is.
#[derive(Debug, Clone)]
pub struct PlimsollService<S> {
    inner: S,
    layer: PlimsollLayer,
}

impl<S, B, RB> tower_service::Service<Request<B>> for PlimsollService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let pending = self.layer.start(&request);
        ResponseFuture { inner: self.inner.call(request), pending }
    }
}

impl<S, B, RB> hyper::service::Service<Request<B>> for PlimsollService<S>
where
    S: hyper::service::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let pending = self.layer.start(&request);
        ResponseFuture { inner: self.inner.call(request), pending }
    }
}

pin_project! {
    /// The response future of a [`PlimsollService`]: the inner future, and the request's
    /// labels and start, recorded when it completes or is dropped.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Pending,
    }
}

impl<F> core::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseFuture").field("pending", &self.pending).finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let outcome = match &result {
            Ok(response) => Outcome::Status(response.status().as_u16()),
            Err(_) => Outcome::Failed,
        };
        this.pending.finish(outcome);
        Poll::Ready(result)
    }
}

/// A request's route: a template the route function named (or [`UNMATCHED_ROUTE`]), or
/// axum's matched path, whose `Arc<str>` it holds until the request ends.
#[derive(Debug)]
enum Route {
    Static(&'static str),
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Self::Static(route) => route,
            #[cfg(feature = "axum")]
            Self::Matched(path) => path.as_str(),
        }
    }
}

/// A request being answered; records itself once, when finished or dropped.
#[derive(Debug)]
struct Pending {
    layer: PlimsollLayer,
    method: &'static str,
    route: Route,
    start: Instant,
    finished: bool,
}

impl Pending {
    fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let seconds = self.start.elapsed().as_secs_f64();
        let layer = &self.layer;
        layer.metrics.finish(self.method, self.route.as_str(), outcome, seconds);
        if let Some(slo) = layer.slo {
            record_slo(slo, layer.clock.now_ms(), outcome, seconds);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Unwinding from a handler's panic is the server's failure, not the client's.
        let outcome = if std::thread::panicking() { Outcome::Failed } else { Outcome::Cancelled };
        self.finish(outcome);
    }
}
