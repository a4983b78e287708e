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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, sleep_until};

/// A connection's phase and timestamps (ms since accept). Shared by the I/O wrapper, the
/// service and the task's timer, all polled by the one connection task, so relaxed
/// atomics suffice (they are atomics only so the task is `Send`).
pub(crate) struct ConnState<'s> {
    accepted: Instant,
    in_header: AtomicBool,
    header_start_ms: AtomicU64,
    last_activity_ms: AtomicU64,
    /// Its slot, which tells the accept loop when its current request head began.
    pub(crate) slot: Claimed<'s>,
}

impl<'s> ConnState<'s> {
    fn new(slot: Claimed<'s>) -> Self {
        slot.head_began();
        Self {
            accepted: Instant::now(),
            in_header: AtomicBool::new(true),
            header_start_ms: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(0),
            slot,
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
            self.slot.head_began();
        }
    }

    fn on_write(&self) {
        self.last_activity_ms.store(self.now_ms(), Relaxed);
    }

    /// hyper has parsed a request head: the header deadline no longer applies.
    pub(crate) fn request_started(&self) {
        self.last_activity_ms.store(self.now_ms(), Relaxed);
        self.in_header.store(false, Relaxed);
        self.slot.head_done();
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
    state: &'c ConnState<'c>,
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

    /// hyper writes a response's queued chunks with one call (see `body`).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
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
    // There is a free slot for every permit, so a permit holder always finds one.
    let Some(slot) = shared.slots.claim() else { return };
    let state = ConnState::new(slot);
    let io = TokioIo::new(Watched { io: stream, state: &state });
    let connection = shared.http.serve_connection(io, Handler { shared: &shared, conn: &state });
    tokio::pin!(connection);
    // Declared after the connection, so dropped before it: the count is updated before
    // the socket closes, and also if the runtime drops the task.
    let mut open = Open::new(shared.metrics);

    let mut draining = false;
    let mut making_room = false;
    open.closed_by_us = loop {
        let (deadline, reason) = state.deadline(&shared.limits);
        tokio::select! {
            result = connection.as_mut() => {
                break result.err().and_then(|e| classify(&e)).or(making_room.then_some(CloseReason::MadeRoom));
            }
            asked = state.slot.asked(making_room) => match asked {
                // Asked to make room while still reading a head (see `Slots::preempt`); a
                // head that completed meanwhile keeps its connection.
                Asked::Preempt => {
                    if state.in_header.load(Relaxed) {
                        break Some(CloseReason::Preempted);
                    }
                }
                // Another connection waits for a slot (see `Slots::make_room`). Idle between
                // requests, the connection closes now; being answered, once the response is
                // written. A request still being read is answered with `Connection: close`
                // (`Handler`), or preempted if its head is slow.
                Asked::CloseWhenAnswered => {
                    making_room = true;
                    if !state.in_header.load(Relaxed) {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            },
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

/// One slot per permitted connection, so that when every slot is taken and a connection
/// waits, the accept loop can ask the open ones to close once answered, and the one that
/// has spent the longest on its request head to close now (see
/// [`PREEMPT_AFTER`](super::PREEMPT_AFTER)).
pub(crate) struct Slots {
    epoch: Instant,
    slots: Box<[Slot]>,
}

struct Slot {
    claimed: AtomicBool,
    /// When its current request head began, in ms since `epoch`; [`NOT_IN_HEAD`] while the
    /// connection is idle between requests or being answered, or the slot is free.
    head_since_ms: AtomicU64,
    /// Set to ask the connection to close if still on its request head; `wake` then wakes
    /// its task. A wake sent before the task waits is kept (`Notify` stores one permit), so
    /// none is lost, and a stale one left by the slot's previous connection finds the flags
    /// clear and is ignored.
    preempt: AtomicBool,
    /// Set, for good, to ask the connection to close once it has answered its request.
    close_when_answered: AtomicBool,
    wake: Notify,
}

/// What the accept loop asked of a connection.
enum Asked {
    /// Close if still reading a request head.
    Preempt,
    /// Close once the request in flight, if any, is answered.
    CloseWhenAnswered,
}

const NOT_IN_HEAD: u64 = u64::MAX;

impl Slots {
    pub(crate) fn new(connections: usize) -> Self {
        let slot = || Slot {
            claimed: AtomicBool::new(false),
            head_since_ms: AtomicU64::new(NOT_IN_HEAD),
            preempt: AtomicBool::new(false),
            close_when_answered: AtomicBool::new(false),
            wake: Notify::new(),
        };
        Self { epoch: Instant::now(), slots: (0..connections).map(|_| slot()).collect() }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A free slot, released when the returned guard drops.
    fn claim(&self) -> Option<Claimed<'_>> {
        let slot = self.slots.iter().find(|slot| !slot.claimed.swap(true, Acquire))?;
        slot.preempt.store(false, Relaxed);
        slot.close_when_answered.store(false, Relaxed);
        Some(Claimed { slots: self, slot })
    }

    /// The slot whose connection has been reading its request head the longest, if for at
    /// least `min_age`.
    fn oldest_head(&self, min_age: Duration) -> Option<&Slot> {
        let now = self.now_ms();
        let min_age = min_age.as_millis() as u64;
        self.slots
            .iter()
            .filter(|slot| slot.claimed.load(Relaxed))
            .map(|slot| (slot, slot.head_since_ms.load(Relaxed)))
            .filter(|&(_, since)| since != NOT_IN_HEAD && now.saturating_sub(since) >= min_age)
            .min_by_key(|&(_, since)| since)
            .map(|(slot, _)| slot)
    }

    /// Asks every open connection to close once it has answered its request in flight (at
    /// once if it is idle between requests), so that slots pass to the connections waiting
    /// in the backlog in their order of arrival, however busy the open ones keep them.
    pub(crate) fn make_room(&self) {
        for slot in self.slots.iter().filter(|slot| slot.claimed.load(Relaxed)) {
            if !slot.close_when_answered.swap(true, Relaxed) {
                slot.wake.notify_one();
            }
        }
    }

    /// Asks the connection longest on its head (at least `min_age`) to close; whether there
    /// was one.
    pub(crate) fn preempt(&self, min_age: Duration) -> bool {
        match self.oldest_head(min_age) {
            Some(slot) => {
                // Not a candidate again while it closes.
                slot.head_since_ms.store(NOT_IN_HEAD, Relaxed);
                slot.preempt.store(true, Relaxed);
                slot.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A claimed [`Slot`], free again once dropped.
pub(crate) struct Claimed<'s> {
    slots: &'s Slots,
    slot: &'s Slot,
}

impl Claimed<'_> {
    fn head_began(&self) {
        self.slot.head_since_ms.store(self.slots.now_ms(), Relaxed);
    }

    fn head_done(&self) {
        self.slot.head_since_ms.store(NOT_IN_HEAD, Relaxed);
    }

    /// Whether the connection is to close once it has answered its request.
    pub(crate) fn closes_when_answered(&self) -> bool {
        self.slot.close_when_answered.load(Relaxed)
    }

    /// Completes once the connection is asked to close: preempted, or, unless `seen`
    /// already, to close when answered.
    async fn asked(&self, seen: bool) -> Asked {
        loop {
            if self.slot.preempt.swap(false, Relaxed) {
                return Asked::Preempt;
            }
            if !seen && self.slot.close_when_answered.load(Relaxed) {
                return Asked::CloseWhenAnswered;
            }
            self.slot.wake.notified().await;
        }
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.slot.head_since_ms.store(NOT_IN_HEAD, Relaxed);
        self.slot.claimed.store(false, Release);
    }
}
