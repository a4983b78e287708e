//! One connection: its header and idle deadlines, and hyper driving it.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its
//! next request, so it would close every idle connection after the header timeout and make
//! an idle limit meaningless. The exporter keeps the two apart, as Go's `net/http` does,
//! with one timer per connection:
//!
//! - **Header phase**, from accept, and from the first byte of each later request: the
//!   request head must be complete within `header_read_timeout` (slowloris).
//! - **Idle phase**, from the moment a request head has been read: the connection may go
//!   `keep_alive_idle` without a byte read or written, whether it waits for the next request
//!   or writes a response to a client that stopped reading.
//!
//! The I/O wrapper [`Watched`] notes each read and write; the task's timer reads the
//! deadline when it fires and sleeps again if activity moved it, so progress costs a clock
//! read, not a timer reset.

use super::metrics::CloseReason;
use super::service::{Handler, Shared};
use super::{ExporterMetrics, Limits, State};
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, sleep_until};

/// A connection's phase and timestamps (ms since accept). Shared by the I/O wrapper, the
/// service and the task's timer, all polled by the one connection task, so relaxed
/// atomics suffice (they are atomics only so the task is `Send`).
pub(crate) struct ConnState {
    accepted: Instant,
    in_header: AtomicBool,
    header_start_ms: AtomicU64,
    last_activity_ms: AtomicU64,
}

impl ConnState {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_header: AtomicBool::new(true),
            header_start_ms: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    fn on_read(&self) {
        let now = self.now_ms();
        self.last_activity_ms.store(now, Relaxed);
        if !self.in_header.swap(true, Relaxed) {
            self.header_start_ms.store(now, Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_activity_ms.store(self.now_ms(), Relaxed);
    }

    /// hyper has parsed a request head: the header deadline no longer applies.
    pub(crate) fn request_started(&self) {
        self.last_activity_ms.store(self.now_ms(), Relaxed);
        self.in_header.store(false, Relaxed);
    }

    /// When the connection is to be closed unless something happens, and why.
    fn deadline(&self, limits: &Limits) -> (Instant, CloseReason) {
        let ms = |at: &AtomicU64| std::time::Duration::from_millis(at.load(Relaxed));
        if self.in_header.load(Relaxed) {
            (self.accepted + ms(&self.header_start_ms) + limits.header_read_timeout, CloseReason::HeaderTimeout)
        } else {
            (self.accepted + ms(&self.last_activity_ms) + limits.keep_alive_idle, CloseReason::IdleTimeout)
        }
    }
}

/// A TCP stream that reports reads and writes to its [`ConnState`].
struct Watched<'c> {
    io: TcpStream,
    state: &'c ConnState,
}

impl AsyncRead for Watched<'_> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        polled
    }
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves one accepted connection until it closes, holding `permit` (one of
/// `max_connections`) all along.
pub(crate) async fn serve<const F: usize>(stream: TcpStream, shared: Arc<Shared<F>>, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    let mut control = shared.control.subscribe();
    // Responses are written whole by hyper; Nagle's delay would only hold back the tail.
    let _ = stream.set_nodelay(true);
    let state = ConnState::new();
    let io = TokioIo::new(Watched { io: stream, state: &state });
    let connection = shared.http.serve_connection(io, Handler { shared: &shared, conn: &state });
    tokio::pin!(connection);
    // Declared after the connection, so dropped before it: the count is updated before
    // the socket closes, and also if the runtime drops the task.
    let mut open = Open::new(shared.metrics);

    let mut draining = false;
    open.closed_by_us = loop {
        let (deadline, reason) = state.deadline(&shared.limits);
        tokio::select! {
            result = connection.as_mut() => break result.err().and_then(|e| classify(&e)),
            () = sleep_until(deadline) => {
                if state.deadline(&shared.limits).0 <= Instant::now() {
                    break Some(reason);
                }
            }
            // Before draining, wait for shutdown to begin; then, for the grace to end.
            _ = control.wait_for(|&s| if draining { s == State::Aborting } else { s != State::Running }) => {
                if draining {
                    break Some(CloseReason::Shutdown);
                }
                // Finishes the response in flight, if any, then closes; an idle
                // connection closes now.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    };
}

/// Counts a connection open while it lives.
struct Open<'m> {
    metrics: &'m ExporterMetrics,
    closed_by_us: Option<CloseReason>,
}

impl<'m> Open<'m> {
    fn new(metrics: &'m ExporterMetrics) -> Self {
        metrics.connection_opened();
        Self { metrics, closed_by_us: None }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.metrics.connection_done(self.closed_by_us);
    }
}

/// Whether hyper's error means the exporter closed the connection (having answered 431 or
/// 400), rather than the client going away or the network failing.
fn classify(error: &hyper::Error) -> Option<CloseReason> {
    if error.is_parse_too_large() {
        Some(CloseReason::HeadersTooLarge)
    } else if error.is_parse() {
        Some(CloseReason::BadRequest)
    } else {
        None
    }
}
