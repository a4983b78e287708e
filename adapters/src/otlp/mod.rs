//! Pushing a registry to an OpenTelemetry collector over OTLP/HTTP (feature `otlp`).
//!
//! [`OtlpPusher::spawn`] starts two tasks on the current tokio runtime: every
//! [`interval`](OtlpConfig::interval) one encodes the registry as an OTLP
//! `ExportMetricsServiceRequest` (protobuf; see `encode.rs` for the mapping: counters as
//! monotonic cumulative sums, gauges as gauges, histograms as cumulative exponential
//! histograms with their native buckets) and puts it in a bounded queue; the other sends
//! the queue's batches in order, as `POST {endpoint}` with `Content-Type:
//! application/x-protobuf`, over one kept-alive HTTP/1.1 connection (hyper's
//! `client::conn::http1`), retrying what the specification calls retryable.
//!
//! ```no_run
//! use plimsoll::otlp::{OtlpConfig, OtlpMetrics, OtlpPusher};
//! use plimsoll::{Counter, Family, Registry};
//!
//! static REGISTRY: Registry<16> = Registry::new();
//! static REQUESTS: Family<Counter, 1, 16> = Family::new("http_requests", "Requests.", ["method"]);
//! static OTLP: OtlpMetrics = OtlpMetrics::new();
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! REGISTRY.register(&REQUESTS)?;
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318, OTEL_SERVICE_NAME=shop, ...
//! let pusher = OtlpPusher::spawn(&REGISTRY, OtlpConfig::from_env()?, &OTLP)?;
//! REQUESTS.with_label_values(&["GET"]).inc();
//! // ... at exit: one last push of the final values.
//! let stats = pusher.shutdown().await;
//! eprintln!("otlp: {} batches sent, {} dropped", stats.sent, stats.dropped);
//! # Ok(())
//! # }
//! ```
//!
//! # Memory, whatever the collector does
//!
//! Batches wait in a queue of at most [`queue_capacity`](OtlpConfig::queue_capacity)
//! (default 8); when it is full the **oldest** is dropped and counted. Every point is
//! cumulative, so a newer batch carries everything an older one did and a drop loses only
//! time resolution. Batches are sent oldest first, so a collector that comes back receives
//! the surviving batches in time order (backends such as Prometheus refuse samples older
//! than those they hold). The batch being sent is out of the queue, so the encoded bytes
//! held are at most
//!
//! `(queue_capacity + 1) × max_batch_bytes`
//!
//! (9 MiB with the defaults), plus, during a collection, the one batch being built (its
//! message tree and its encoding). A batch's size is bounded by the registry itself, whose
//! series are fixed (each at most one data point, of at most 8 labels of 255 bytes and a
//! histogram's buckets), and never exceeds [`max_batch_bytes`](OtlpConfig::max_batch_bytes)
//! (default 1 MiB): a larger collection is split into several requests, and a single data
//! point larger than the limit is left out and counted. [`OtlpStats::largest_batch_bytes`]
//! shows what the registry takes, so the limit can be set just above it. A response body is
//! read up to 4 KiB.
//!
//! Each batch is retried at most [`max_retries`](OtlpConfig::max_retries) times (default
//! 4), after connection errors, timeouts and `429`/`502`/`503`/`504`, waiting the server's
//! `Retry-After` or an exponential backoff with jitter, both capped at
//! [`max_backoff`](OtlpConfig::max_backoff); then it is counted as failed and the next is
//! taken. Each request, connection included, is bounded by
//! [`timeout`](OtlpConfig::timeout).
//!
//! # What it allocates
//!
//! At spawn, the configuration's copies and the queue. Per collection, the protobuf
//! message tree (owned strings for names and label values, a vector per histogram's
//! buckets) one batch at a time, freed once the batch is encoded, and the encoded batch,
//! freed once it is sent or dropped. Per request, hyper's buffers. The application's
//! recording is untouched: it never allocates, and collection only reads.
//!
//! # Counters
//!
//! [`OtlpPusher::stats`] reads the pusher's counters; they are core metrics in the pushed
//! registry too ([`OtlpMetrics`]), so the collector sees its own delivery record.
//!
//! # When not to use it
//!
//! - The collector needs TLS, gRPC or compression: none is supported (an `https://`
//!   endpoint is refused at configuration). Push to a local collector agent, which can.
//! - Delta temporality is wanted: points are cumulative since the pusher started.

mod config;
mod encode;
mod metrics;
mod send;

pub use config::{Endpoint, MIN_BATCH_BYTES, OtlpConfig, OtlpConfigError};
pub use metrics::OtlpMetrics;

use bytes::Bytes;
use encode::Encoder;
use plimsoll_core::{RegisterError, Registry};
use send::{Attempt, Client};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The pusher's record, read at one instant (under the queue's lock, so the counts agree:
/// `queued == sent + failed + dropped + queue_batches + in_flight`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpStats {
    /// Batches put in the queue.
    pub queued: u64,
    /// Batches the collector accepted.
    pub sent: u64,
    /// Batches given up: a permanent error, or retries exhausted.
    pub failed: u64,
    /// Batches pushed out of the full queue, or still waiting or being sent at shutdown
    /// (the final push supersedes them), unsent.
    pub dropped: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Data points left out, each alone larger than `max_batch_bytes`.
    pub points_oversized: u64,
    /// Data points the collector reported rejected.
    pub points_rejected: u64,
    /// Batches waiting now.
    pub queue_batches: usize,
    /// Their encoded bytes.
    pub queue_bytes: usize,
    /// Batches being sent now: 0 or 1 (out of the queue).
    pub in_flight: usize,
    /// The largest batch encoded so far, in bytes.
    pub largest_batch_bytes: usize,
}

/// Why [`OtlpPusher::spawn`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// A field of the configuration is out of range.
    Config(OtlpConfigError),
    /// The pusher's metrics could not be registered (the registry needs room for
    /// [`OtlpMetrics::FAMILIES`] more families).
    Register(RegisterError),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => error.fmt(f),
            Self::Register(error) => write!(f, "cannot register the OTLP pusher's metrics: {error}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// A running pusher: see the [module docs](self).
///
/// Dropping it stops both tasks at their next step, without a final push; use
/// [`shutdown`](Self::shutdown) for that.
#[derive(Debug)]
pub struct OtlpPusher {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// Returns the final collection's batches once stopped.
    collector: Option<JoinHandle<Vec<Bytes>>>,
    /// Returns its client, so the final push can reuse its connection.
    sender: Option<JoinHandle<Client>>,
}

/// What both tasks and the handle share: the queue and the counters.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the sender when a batch is queued.
    queued: Notify,
    metrics: &'static OtlpMetrics,
    config: OtlpConfig,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    queue_bytes: usize,
    in_flight: bool,
    last_error: Option<String>,
}

impl OtlpPusher {
    /// Checks `config`, registers `metrics`' families into `registry` (unless there
    /// already) and starts pushing `registry` from the current tokio runtime, the first
    /// collection one interval from now. Points' start time is now.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn<const F: usize>(
        registry: &'static Registry<F>,
        config: OtlpConfig,
        metrics: &'static OtlpMetrics,
    ) -> Result<Self, SpawnError> {
        config.validate().map_err(SpawnError::Config)?;
        metrics.register(registry).map_err(SpawnError::Register)?;
        let encoder = Encoder::new(&config, SystemTime::now());
        let client = Client::new(&config);
        let shared = Arc::new(Shared { state: Mutex::default(), queued: Notify::new(), metrics, config });
        let (stop, stopped) = watch::channel(false);
        let collector = tokio::spawn(collect_loop(registry, Arc::clone(&shared), encoder, stopped.clone()));
        let sender = tokio::spawn(send_loop(Arc::clone(&shared), client, stopped));
        Ok(Self { shared, stop, collector: Some(collector), sender: Some(sender) })
    }

    /// The counters now; see [`OtlpStats`].
    pub fn stats(&self) -> OtlpStats {
        self.shared.stats()
    }

    /// Why the last failed attempt failed (`HTTP 503 Service Unavailable`, `connect:
    /// Connection refused`, ...), at most 256 bytes; `None` until one fails.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// Stops collecting and sending, then makes one final push: the registry as of now,
    /// each of its batches sent once (no retry), within the timeout. The batches still
    /// queued are dropped (counted): the final one is cumulative and carries what they
    /// did. Returns the final counts.
    pub async fn shutdown(mut self) -> OtlpStats {
        let _ = self.stop.send(true);
        let client = match self.sender.take() {
            Some(task) => task.await.ok(),
            None => None,
        };
        let last = match self.collector.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let mut client = client.unwrap_or_else(|| Client::new(&self.shared.config));
        self.shared.clear_queue();
        for batch in last {
            self.shared.push(batch);
            let Some(batch) = self.shared.take() else { break };
            let outcome = client.attempt(&batch).await;
            self.shared.finish(&outcome);
        }
        self.shared.stats()
    }
}

impl Drop for OtlpPusher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock guards plain bookkeeping that no panic leaves half-done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `batch`, first dropping the oldest waiting batch if the queue is full.
    fn push(&self, batch: Bytes) {
        let m = self.metrics;
        let mut state = self.lock();
        if state.queue.len() >= self.config.queue_capacity {
            if let Some(oldest) = state.queue.pop_front() {
                state.queue_bytes -= oldest.len();
                m.dropped.inc();
            }
        }
        state.queue_bytes += batch.len();
        state.queue.push_back(batch);
        m.queued.inc();
        self.gauges(&state);
        drop(state);
        self.queued.notify_one();
    }

    /// Takes the oldest batch to send; it is in flight until [`finish`](Self::finish).
    fn take(&self) -> Option<Bytes> {
        let mut state = self.lock();
        let batch = state.queue.pop_front()?;
        state.queue_bytes -= batch.len();
        state.in_flight = true;
        self.gauges(&state);
        Some(batch)
    }

    /// Records how the batch in flight ended (`Retry` means retries are exhausted).
    fn finish(&self, outcome: &Attempt) {
        let m = self.metrics;
        let mut state = self.lock();
        state.in_flight = false;
        match outcome {
            Attempt::Delivered { rejected_points } => {
                m.sent.inc();
                m.rejected.inc_by(*rejected_points);
            }
            Attempt::Retry { reason, .. } | Attempt::Permanent { reason } => {
                m.failed.inc();
                state.last_error = Some(reason.clone());
            }
        }
    }

    /// Counts a retry of the batch in flight, which failed for `reason`.
    fn retrying(&self, reason: &str) {
        let mut state = self.lock();
        self.metrics.retries.inc();
        state.last_error = Some(reason.to_owned());
    }

    /// The batch in flight was abandoned at shutdown.
    fn abandon(&self) {
        let mut state = self.lock();
        if std::mem::take(&mut state.in_flight) {
            self.metrics.dropped.inc();
        }
    }

    /// Drops every waiting batch (counted).
    fn clear_queue(&self) {
        let mut state = self.lock();
        let dropped = state.queue.len() as u64;
        state.queue.clear();
        state.queue_bytes = 0;
        self.metrics.dropped.inc_by(dropped);
        self.gauges(&state);
    }

    fn gauges(&self, state: &State) {
        self.metrics.queue_batches.set(state.queue.len() as i64);
        self.metrics.queue_bytes.set(state.queue_bytes as i64);
    }

    fn stats(&self) -> OtlpStats {
        let m = self.metrics;
        let state = self.lock();
        OtlpStats {
            queued: m.queued.get(),
            sent: m.sent.get(),
            failed: m.failed.get(),
            dropped: m.dropped.get(),
            retries: m.retries.get(),
            points_oversized: m.oversized.get(),
            points_rejected: m.rejected.get(),
            queue_batches: state.queue.len(),
            queue_bytes: state.queue_bytes,
            in_flight: usize::from(state.in_flight),
            largest_batch_bytes: usize::try_from(m.largest_batch.get()).unwrap_or(0),
        }
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// Collects every interval into the queue until stopped; then collects once more and
/// returns that collection's batches for the final push.
async fn collect_loop<const F: usize>(
    registry: &'static Registry<F>,
    shared: Arc<Shared>,
    encoder: Encoder,
    mut stop: watch::Receiver<bool>,
) -> Vec<Bytes> {
    let interval = shared.config.interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // After a stall, collect once and carry on, rather than catching up with a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let collect = |emit: &mut dyn FnMut(Bytes)| {
        let collected = encoder.collect(registry, SystemTime::now(), emit);
        shared.metrics.oversized.inc_by(collected.oversized);
        collected
    };
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                collect(&mut |batch| {
                    shared.note_largest(batch.len());
                    shared.push(batch);
                });
            }
            () = stopped(&mut stop) => break,
        }
    }
    let mut last = Vec::new();
    collect(&mut |batch| {
        shared.note_largest(batch.len());
        last.push(batch);
    });
    last
}

impl Shared {
    fn note_largest(&self, bytes: usize) {
        let gauge = &self.metrics.largest_batch;
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if bytes > gauge.get() {
            gauge.set(bytes);
        }
    }
}

/// Sends queued batches oldest first until stopped; returns the client for the final push.
async fn send_loop(shared: Arc<Shared>, mut client: Client, mut stop: watch::Receiver<bool>) -> Client {
    loop {
        let batch = loop {
            // Registered before the queue is looked at, so a push in between still wakes it.
            let woken = shared.queued.notified();
            if let Some(batch) = shared.take() {
                break batch;
            }
            tokio::select! {
                () = woken => {}
                () = stopped(&mut stop) => return client,
            }
        };
        tokio::select! {
            outcome = deliver(&shared, &mut client, &batch) => shared.finish(&outcome),
            () = stopped(&mut stop) => {
                shared.abandon();
                return client;
            }
        }
    }
}

/// Sends `batch` until it is delivered, fails for good or runs out of retries.
async fn deliver(shared: &Shared, client: &mut Client, batch: &Bytes) -> Attempt {
    let config = &shared.config;
    let mut retry = 0;
    loop {
        match client.attempt(batch).await {
            Attempt::Retry { after, reason } if retry < config.max_retries => {
                shared.retrying(&reason);
                tokio::time::sleep(send::backoff(config, retry, after, send::random())).await;
                retry += 1;
            }
            outcome => return outcome,
        }
    }
}
