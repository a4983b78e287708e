//! The accept loop, the connection cap and shutdown.

use super::service::Shared;
use super::{ExporterMetrics, Limits, State, conn};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

/// A running exporter. See the [module docs](super).
///
/// Dropping it begins a graceful shutdown, like [`ShutdownHandle::shutdown`], without
/// waiting for it; [`shutdown`](Self::shutdown) waits.
#[must_use = "dropping a RunningExporter shuts it down"]
#[derive(Debug)]
pub struct RunningExporter {
    local_addr: SocketAddr,
    control: watch::Sender<State>,
    task: JoinHandle<ShutdownReport>,
    metrics: &'static ExporterMetrics,
    limits: Limits,
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections still open when the grace period ended, closed without finishing.
    pub aborted: usize,
}

/// Begins a graceful shutdown from anywhere (a signal handler task, say). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    control: watch::Sender<State>,
}

impl ShutdownHandle {
    /// Stops accepting connections and lets open ones finish their response in flight
    /// within the grace period. Idempotent; returns at once.
    pub fn shutdown(&self) {
        self.control.send_if_modified(|state| {
            let running = *state == State::Running;
            if running {
                *state = State::Draining;
            }
            running
        });
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.control.borrow() != State::Running
    }
}

impl RunningExporter {
    /// The address the exporter listens on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The exporter's own metrics.
    pub fn metrics(&self) -> &'static ExporterMetrics {
        self.metrics
    }

    /// The limits in effect: those given, with `render_buffer_bytes` raised to the
    /// registry's longest line or message if it was smaller.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A handle that begins a graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { control: self.control.clone() }
    }

    /// Shuts down gracefully: stops accepting (the listening socket is closed, so the
    /// connections waiting in its backlog are refused), closes idle connections, lets
    /// responses in flight finish within `shutdown_grace`, then closes what is left.
    /// Returns once every connection is closed.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.shutdown_handle().shutdown();
        match (&mut self.task).await {
            Ok(report) => report,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down and took the task with it.
            Err(_) => ShutdownReport::default(),
        }
    }

    /// Serves until `signal` completes (or a [`ShutdownHandle`] is used), then shuts down
    /// as [`shutdown`](Self::shutdown) does.
    pub async fn serve(self, signal: impl Future<Output = ()>) -> ShutdownReport {
        let mut control = self.control.subscribe();
        tokio::select! {
            () = signal => {}
            _ = control.wait_for(|s| *s != State::Running) => {}
        }
        self.shutdown().await
    }
}

impl Drop for RunningExporter {
    fn drop(&mut self) {
        self.shutdown_handle().shutdown();
    }
}

/// Spawns the accept loop on `listener`.
pub(crate) fn start<const F: usize>(
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared<F>>,
) -> RunningExporter {
    let control = shared.control.clone();
    let metrics = shared.metrics;
    let limits = shared.limits;
    let task = tokio::spawn(accept_loop(listener, shared));
    RunningExporter { local_addr, control, task, metrics, limits }
}

/// Accepts connections until shutdown, never more than `max_connections` at once (plus at
/// most one waiting for a slot to free), then drains them.
async fn accept_loop<const F: usize>(listener: TcpListener, shared: Arc<Shared<F>>) -> ShutdownReport {
    let max = shared.limits.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let mut control = shared.control.subscribe();
    loop {
        // The permit comes first: while none is free the loop does not call accept, so
        // excess connections wait in the kernel's backlog, not in this process, but for the
        // one the loop holds while the open ones make room for it (`at_capacity`).
        let admitted = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => Admit::Permit(permit),
            Err(_) => {
                shared.metrics.limit_reached();
                match at_capacity(&listener, &permits, &shared, &mut control).await {
                    Some(admitted) => admitted,
                    None => break,
                }
            }
        };
        let (stream, permit) = match admitted {
            Admit::Stream(stream, permit) => (stream, permit),
            Admit::Permit(permit) => {
                let accepted = tokio::select! {
                    biased;
                    _ = control.wait_for(|s| *s != State::Running) => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => (stream, permit),
                    Err(error) if is_per_connection(&error) => continue,
                    Err(_) => match back_off(&mut control).await {
                        Some(()) => continue,
                        None => break,
                    },
                }
            }
        };
        tokio::spawn(conn::serve(stream, Arc::clone(&shared), permit));
    }
    drop(listener);
    drain(&shared, &permits, max).await
}

/// A connection admitted, or a permit to accept one with.
enum Admit {
    Permit(OwnedSemaphorePermit),
    Stream(TcpStream, OwnedSemaphorePermit),
}

/// How often a full exporter with a connection waiting asks the open ones again to make
/// room and looks again for a head slow enough to preempt.
const RECHECK: Duration = Duration::from_millis(20);

/// Every slot is taken: waits for a permit, or for a connection to arrive. Then that
/// connection waits, alone, for a slot: every open connection is asked to close once it has
/// answered its request in flight ([`Slots::make_room`](conn::Slots::make_room)), and,
/// while some connection has spent over [`PREEMPT_AFTER`](super::PREEMPT_AFTER) on its
/// request head, the slowest is preempted. So neither slow heads nor busy kept-alive
/// connections keep the backlog waiting, and connections are admitted in their order of
/// arrival. `None` once shutdown begins.
async fn at_capacity<const F: usize>(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    shared: &Shared<F>,
    control: &mut watch::Receiver<State>,
) -> Option<Admit> {
    let stream = loop {
        let accepted = tokio::select! {
            biased;
            _ = control.wait_for(|s| *s != State::Running) => return None,
            // The semaphore is never closed.
            permit = Arc::clone(permits).acquire_owned() => return permit.ok().map(Admit::Permit),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => break stream,
            Err(error) if is_per_connection(&error) => {}
            Err(_) => back_off(control).await?,
        }
    };
    loop {
        // Again at every check: a connection admitted just before may not have claimed its
        // slot yet.
        shared.slots.make_room();
        shared.slots.preempt(super::PREEMPT_AFTER);
        tokio::select! {
            biased;
            _ = control.wait_for(|s| *s != State::Running) => return None,
            permit = Arc::clone(permits).acquire_owned() => return permit.ok().map(|p| Admit::Stream(stream, p)),
            () = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// After a failed accept (out of file descriptors or memory), waits a little rather than
/// spin; `None` once shutdown begins.
async fn back_off(control: &mut watch::Receiver<State>) -> Option<()> {
    tokio::select! {
        _ = control.wait_for(|s| *s != State::Running) => None,
        () = tokio::time::sleep(Duration::from_millis(50)) => Some(()),
    }
}

/// Errors of one incoming connection (reset before accept, say), not of the listener.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock)
}

/// Waits for every connection to close, up to the grace period, then tells the rest to
/// close now.
async fn drain<const F: usize>(shared: &Shared<F>, permits: &Semaphore, max: usize) -> ShutdownReport {
    let all = u32::try_from(max).expect("max_connections fits u32 (checked at bind)");
    if let Ok(Ok(_)) = tokio::time::timeout(shared.limits.shutdown_grace, permits.acquire_many(all)).await {
        return ShutdownReport::default();
    }
    let aborted = max - permits.available_permits();
    shared.control.send_replace(State::Aborting);
    let _ = permits.acquire_many(all).await;
    ShutdownReport { aborted }
}
