//! The HTTP exporter: `/metrics` and health endpoints over HTTP/1.1 (tokio + hyper 1),
//! with limits that bound its memory.
//!
//! ```no_run
//! use plimsoll::exporter::{Exporter, Limits};
//! use plimsoll::{Counter, Registry, Unlabelled};
//!
//! static REGISTRY: Registry<16> = Registry::new();
//! static JOBS: Unlabelled<Counter> = Unlabelled::new("jobs", "Jobs done.");
//!
//! # async fn run() -> Result<(), plimsoll::exporter::ExportError> {
//! REGISTRY.register(&JOBS).expect("room in the registry");
//! let exporter = Exporter::builder(&REGISTRY)
//!     .address("127.0.0.1:9090".parse().unwrap())
//!     .token(std::env::var("PLIMSOLL_TOKEN").ok())
//!     .limits(Limits { max_connections: 16, ..Limits::default() })
//!     .bind()
//!     .await?;
//! println!("serving on {}", exporter.local_addr());
//! // Serve until the future completes: a signal, say (`tokio::signal::ctrl_c`).
//! exporter.serve(std::future::pending()).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | the registry, Prometheus text 0.0.4, or OpenMetrics 1.0 when `Accept` prefers `application/openmetrics-text` (see [`negotiate`](self#content-negotiation)); streamed |
//! | `GET /health` | `{"status":"healthy"\|"degraded"\|"unhealthy","checks":{"slo:<name>":{"page":bool,"ticket":bool},"memory:<signal>":{"verdict":"...","eta_seconds":number\|null}}}`: 503 if an SLO pages or a memory signal is forecast to reach the limit within [`MEMORY_UNHEALTHY_ETA`], 200 otherwise (`degraded` if an SLO opens a ticket or a leak is suspected) |
//! | `GET /health/live` | 200 `{"status":"live"}`, always, and never behind the token |
//! | `GET /api/report` | a JSON summary for people and scripts: `time_ms`, `status` (as `/health`), `footprint` (the registry's bytes, families and series), `slos` (objective, availability, burn rates, error budget and alerts of each), `memory` (each signal's verdict, slope and forecast, and the limit), then each [`Section`]'s report under its key (breakers, rate limits, security events, top offenders, slow queries with index hints, slow spans) |
//! | `GET /snapshot` | the state given to [`Exporter::snapshot`] as a snapshot file holds it (`application/octet-stream`, postcard, checksummed; decode it with `plimsoll inspect`); 404 without state |
//! | `GET /health/ready` | 200 `{"status":"ready"}` while serving, 503 `{"status":"draining"}` once shutdown began |
//! | `GET /dashboard` | a page for people (`text/html`, embedded in the binary, no external resource, works offline): request rate and p50/p99 latency, each SLO's burn rates, budget and alerts, memory per signal with its floor, trend and forecast, breakers, rate limits, top offenders, security events, slow queries with index hints, slow spans and the footprint; it polls `/api/report` and `/metrics` every 2 s (`?interval=N` seconds, 1 to 60) and keeps its charts' history in the browser, so the server holds nothing per viewer. See [the dashboard](self#the-dashboard) |
//!
//! `HEAD` is answered on every route with the `GET` status and headers and no body; any
//! other method gets 405 with `Allow: GET, HEAD`, any other path 404. With a token
//! ([`Exporter::token`]), every request but `/health/live` must carry
//! `Authorization: Bearer <token>`, else it gets 401 with `WWW-Authenticate: Bearer` and
//! counts in `plimsoll_exporter_unauthorized_requests_total`; the comparison takes the same
//! time whatever the tokens (padded to [`MAX_TOKEN_LEN`] and compared whole with
//! `subtle`). With SLOs ([`Exporter::slos`]) or a memory monitor ([`Exporter::memory`]),
//! `/metrics`, `/health` and `/api/report` call [`SloExport::update`],
//! [`MemoryMonitor::update`] and each [`Section::update`] with the exporter's clock before
//! reading them; an open circuit breaker makes `/health` degraded.
//!
//! # The dashboard
//!
//! `/dashboard` is guarded like the other routes, with one addition: as a browser cannot
//! send a header when it follows a link, this route (and no other) also takes the token
//! from a `token` query parameter, form-encoded (a `+` in the token is written `%2B`) and
//! compared in the same constant time. Open `http://HOST:PORT/dashboard?token=TOKEN`
//! once: the page keeps the token in the tab's `sessionStorage` (gone when the tab
//! closes), removes it from the address bar and the history entry with
//! `history.replaceState`, and sends it as `Authorization: Bearer` on its polls. Without
//! the token, `/dashboard` answers 401 with a small sign-in page: a form that asks for the
//! token, or, when the tab kept one (a reload), a script that fetches the page with it in
//! the header. Without a configured token, no token is needed. The page's
//! Content-Security-Policy (a `<meta>` tag) lets it reach nothing but its own origin.
//!
//! Its figures come from `/api/report`, except two series the report does not carry, which
//! it reads from `/metrics`: request rate and p50/p99 latency, over 10 s, 1 and 5 minutes,
//! from the first histogram family named `*_request_duration_seconds` (summed over its
//! series, quantiles interpolated within buckets as Prometheus's `histogram_quantile`
//! does), and each memory signal's last sample and floor (`plimsoll_memory_bytes`). A
//! hidden tab stops polling until it is shown again.
//!
//! # Content negotiation
//!
//! Media ranges weigh by `q` (default 1), ties going to the more specific range, then to the
//! earlier one; `application/openmetrics-text` with no version, `1.0.0` or `0.0.1` selects
//! OpenMetrics 1.0; `text/plain`, `text/*` and `*/*` select Prometheus text; a header that
//! accepts neither, or none, gets Prometheus text.
//!
//! # Limits
//!
//! See [`Limits`] for each limit, its default and why. In short: at most `max_connections`
//! connections are open (the accept loop takes a permit *before* calling `accept`, so
//! excess connections wait in the kernel's listen backlog and never cost this process
//! memory). While every slot is taken, the loop accepts one more connection and holds it
//! (at most one beyond the limit) until a slot frees: meanwhile every open connection
//! closes once it has answered its request in flight (at once if idle between requests;
//! counted as `made_room`), and a connection that has spent over [`PREEMPT_AFTER`] on its
//! request head is closed (`preempted`). So neither slow-header clients nor busy kept-alive
//! clients can keep others out: under a flood, slots pass to waiting connections in their
//! order of arrival, at the cost of keep-alive. A request head must arrive within
//! `header_read_timeout` of its first byte (or of accept) and fit in `max_header_bytes`
//! (else 431); a connection that moves no byte for `keep_alive_idle` is closed, whether
//! idle between requests or stuck writing to a client that stopped reading.
//!
//! # What it allocates
//!
//! - **At bind:** the listening socket; one `Arc` of shared state (the token padded to
//!   512 bytes, the hyper configuration, the pool's list of at most `max_connections`
//!   buffer pointers); the semaphore; the accept task. The exporter's own six families are
//!   `static`s ([`ExporterMetrics`]) registered into the registry, which needs room for
//!   [`ExporterMetrics::FAMILIES`] more families (and the SLO export's 11 if it is not
//!   registered yet).
//! - **Per connection:** 13 allocations on x86_64 with tokio 1.54 and hyper 1.12, all
//!   freed when it closes: the task (holding hyper's connection state and the exporter's
//!   timer), the socket's registration, hyper's read buffer (8 KiB, growing to at most
//!   `B = max(max_header_bytes, 8 KiB)`), hyper's write buffer for response heads (8 KiB),
//!   its queue of body chunks, its slot for a response body, and a header map.
//! - **Per request:** nothing on a kept-alive connection: hyper reuses its buffers and
//!   hands each response's header map back for the next request (the exporter builds the
//!   response in the request's map), and `/metrics` takes a scrape (the renderer's state
//!   and its render buffers, see `body`) from the pool, which allocates one only when every
//!   pooled scrape is in use (so at most `max_connections` ever exist) and gets it back when
//!   the response ends. `/health`
//!   builds its JSON (at most 8 SLOs with 64-byte names: well under 1 KiB) in a fresh
//!   `Vec`; `/snapshot` writes the snapshot into a fresh `Vec` of exactly its size (about
//!   17 KiB per SLO), freed once sent; a 500 formats its message. `/dashboard` sends
//!   the page's static bytes, allocating nothing. With a `prometheus` crate registry
//!   attached (`Exporter::prometheus_registry`, feature `prometheus`), each scrape also
//!   gathers and encodes that registry, allocating as that crate does, until it is sent.
//!
//! Measured by `tests/it/exporter.rs` (`the_servers_heap_does_not_grow`, counting the
//! server thread's allocations on a current-thread runtime, x86_64): after warm-up, 1,000
//! scrapes of a 28 KiB exposition make **0 allocations** and leave the heap unchanged on
//! one kept-alive connection, and make 13 allocations each, all freed, on a new connection
//! each; an idle connection that has served a scrape holds **18,912 bytes** (hyper's two
//! 8 KiB buffers and 2.5 KiB of state) whatever the render buffer's size, all returned
//! when it closes. A release run of 100,000 scrapes each way (`PLIMSOLL_SCRAPES=100000`)
//! gives the same: 0 allocations per kept-alive scrape, no growth.
//!
//! **The bound** ([`Limits::connection_memory_bound`]). With `B` as above,
//! `R = render_buffer_bytes`, `K = ⌈B / R⌉ + 2` and `N = max_connections`, the exporter
//! holds at most about `N × (2 B₂ + 8 KiB + K R + 8 KiB)` beyond what bind allocated:
//! hyper's read buffer, its write buffer for heads, the render buffers of a scrape in
//! flight (hyper queues chunks only while it holds less than `B` bytes, so a scrape needs
//! at most `K` buffers) and the fixed state, a scrape's renderer included. hyper reads a
//! head into a `BytesMut` that grows by doubling from 8 KiB while the head is under `B`,
//! so its capacity stays under `2 B₂`, with `B₂` the least 8 KiB × 2ᵏ at or above `B`:
//! 16 KiB by default, where a head of up to `B` would suggest 8. The connection the accept
//! loop holds while the open ones make room for it has no buffers yet. With the defaults,
//! 64 × 48 KiB = 3 MiB in the worst case, every connection in the middle of a scrape whose
//! client reads slowly; 64 × 18,912 bytes ≈ 1.15 MiB when every connection is open between
//! scrapes. Connections beyond `N` wait in the kernel's backlog, at no cost to the process;
//! lower `max_connections` for a smaller bound.
//!
//! # When not to use it
//!
//! It serves one registry over plain HTTP/1.1 on a trusted network or behind a proxy that
//! terminates TLS; it has no TLS, no HTTP/2 and no compression. Put it behind a reverse
//! proxy to expose it beyond the host.

mod auth;
mod body;
mod conn;
mod metrics;
mod negotiate;
#[cfg(feature = "prometheus")]
mod prometheus;
mod server;
mod service;

pub use metrics::{CloseReason, ExporterMetrics};
pub use server::{RunningExporter, ShutdownHandle, ShutdownReport};

use crate::report::Section;
use crate::{MemoryMonitor, StdClock};
use plimsoll_core::snapshot::SnapshotPart;
use plimsoll_core::{Alerts, Clock, Format, RegisterError, Registry, SloExport, SloReport};
use service::{Shared, Slos};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// The default address: loopback only, Prometheus's usual exporter port range.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));
/// A leak forecast to reach the memory limit sooner than this makes `/health` unhealthy
/// (503), so an orchestrator can restart the process before the out-of-memory killer does:
/// 15 minutes, two or three restarts' worth of warning at common probe settings.
pub const MEMORY_UNHEALTHY_ETA: Duration = Duration::from_secs(15 * 60);
/// When every connection slot is taken and another connection waits, the connection that
/// has spent the longest on its request head is closed to admit it, if that is at least
/// this long (10 ms): a client sends its head in one packet right after connecting, so a
/// head that takes longer while the exporter is full is a slow or stalled client
/// (slowloris), and new clients are answered at once instead of after the header timeout.
/// Connections idle between requests and connections being answered are not preempted;
/// they are asked to close once answered instead (see [Limits](self#limits)).
pub const PREEMPT_AFTER: Duration = Duration::from_millis(10);
/// The longest bearer token, in bytes.
pub const MAX_TOKEN_LEN: usize = 512;
/// The most connections [`Limits::max_connections`] may allow.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The largest [`Limits::max_header_bytes`].
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// hyper's write buffer for response heads (hyper 1's initial size; the exporter's heads
/// are far smaller, so it never grows).
const HEAD_BUFFER: usize = 8 << 10;

/// The exporter's limits. Each bounds a resource a client could otherwise make it spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (default 64; 1 to [`MAX_CONNECTIONS`]). Each costs memory
    /// (see the [module docs](self#what-it-allocates)); 64 is far more than the few
    /// scrapers and probes that poll an exporter, and small enough that the worst case
    /// stays a few MiB. Further connections wait in the kernel's listen backlog until one
    /// closes; while they wait, open connections close once answered (see
    /// [Limits](self#limits)).
    pub max_connections: usize,
    /// Time a client has to send a request head, from accept or from the head's first
    /// byte (default 5 s). A scraper sends its head in one packet; 5 s is generous for
    /// slow networks and short enough that slowloris connections free their slot quickly.
    pub header_read_timeout: Duration,
    /// Largest request head, request line included (default 8 KiB, as common servers; 1 KiB
    /// to [`MAX_HEADER_BYTES`]). Larger heads get 431 and the connection is closed. A
    /// scrape's head is a few hundred bytes.
    pub max_header_bytes: usize,
    /// Time a connection may move no byte before it is closed (default 30 s): between
    /// requests, this is the keep-alive idle time, which outlasts a 15 s scrape interval so
    /// a scraper keeps its connection; mid-response, it closes a client that stopped
    /// reading.
    pub keep_alive_idle: Duration,
    /// Time responses in flight get to finish once shutdown begins (default 5 s, within
    /// the 10 s an orchestrator usually allows after SIGTERM).
    pub shutdown_grace: Duration,
    /// Size of a scrape's render buffer, the chunk size of `/metrics` (default 4 KiB);
    /// raised at bind to the registry's [`Registry::max_message_len`] (of any format) if
    /// smaller, since a line or protobuf message must fit whole. A scrape in flight holds
    /// up to `⌈B / R⌉ + 2` of them (see "What it allocates" in the [module docs](self)),
    /// 4 × 4 KiB by default, returned to a pool when it ends; a connection between scrapes
    /// holds none.
    pub render_buffer_bytes: usize,
    /// Length of the listening socket's accept queue (default 1,024; the kernel caps it,
    /// at `net.core.somaxconn` on Linux). Connections beyond `max_connections` wait there,
    /// in kernel memory, until the exporter accepts them; once it is full the kernel
    /// drops further handshakes and clients retry. 1,024 holds a burst of that many
    /// clients rather than making them retry after a second, for a few hundred bytes of
    /// kernel memory each.
    pub backlog: u32,
}

impl Limits {
    /// The defaults (see each field).
    pub const DEFAULT: Self = Self {
        max_connections: 64,
        header_read_timeout: Duration::from_secs(5),
        max_header_bytes: 8 << 10,
        keep_alive_idle: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(5),
        render_buffer_bytes: 4 << 10,
        backlog: 1024,
    };

    /// The most memory the exporter's connections hold together, in bytes, beyond what
    /// bind allocated: `N × (2 B₂ + 8 KiB + K R + 8 KiB)`, with `B₂` the read buffer's
    /// limit `B` rounded up to 8 KiB times a power of two and `K = ⌈B / R⌉ + 2` render
    /// buffers (see [What it allocates](self#what-it-allocates)). With the defaults,
    /// 64 × 48 KiB.
    pub const fn connection_memory_bound(&self) -> usize {
        let read_limit = self.read_buffer_limit();
        let read_capacity = (read_limit.div_ceil(8 << 10)).next_power_of_two().saturating_mul(8 << 10);
        let render = self.render_buffer_bytes;
        let buffers = body::buffers_per_scrape(render, read_limit);
        let per_connection = read_capacity
            .saturating_mul(2)
            .saturating_add(HEAD_BUFFER)
            .saturating_add(buffers.saturating_mul(render))
            .saturating_add(8 << 10);
        self.max_connections.saturating_mul(per_connection)
    }

    /// `B`, the most hyper's read buffer holds: `max_header_bytes`, but at least the
    /// 8 KiB hyper allows as its smallest.
    const fn read_buffer_limit(&self) -> usize {
        if self.max_header_bytes > 8 << 10 { self.max_header_bytes } else { 8 << 10 }
    }

    fn validate(&self) -> Result<(), ExportError> {
        let invalid = |why| Err(ExportError::InvalidLimits(why));
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return invalid("max_connections must be 1 to MAX_CONNECTIONS (65,536)");
        }
        if self.header_read_timeout.is_zero() || self.keep_alive_idle.is_zero() {
            return invalid("header_read_timeout and keep_alive_idle must be above zero");
        }
        if !(1024..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return invalid("max_header_bytes must be 1 KiB to MAX_HEADER_BYTES (1 MiB)");
        }
        if self.render_buffer_bytes == 0 || self.backlog == 0 {
            return invalid("render_buffer_bytes and backlog must be above zero");
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why the exporter could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportError {
    /// The address could not be bound.
    Bind {
        /// The address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The exporter's own families, or the SLO export's, could not be registered.
    Register(RegisterError),
    /// A limit is out of range; the message says which.
    InvalidLimits(&'static str),
    /// The token is empty, too long or holds a byte that cannot travel in a header.
    InvalidToken(&'static str),
}

impl core::fmt::Display for ExportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Self::Register(error) => write!(f, "cannot register the exporter's metrics: {error}"),
            Self::InvalidLimits(why) => write!(f, "invalid exporter limits: {why}"),
            Self::InvalidToken(why) => write!(f, "invalid exporter token: {why}"),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } => Some(source),
            Self::Register(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RegisterError> for ExportError {
    fn from(error: RegisterError) -> Self {
        Self::Register(error)
    }
}

/// Where shutdown stands; every connection watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Running,
    Draining,
    Aborting,
}

/// An [`SloExport`] of any capacity, as the exporter uses it.
pub(crate) trait SloSource<const F: usize>: Send + Sync {
    /// [`SloExport::update`].
    fn update(&self, now_ms: u64);
    /// [`SloExport::for_each_alert`].
    fn for_each_alert(&self, now_ms: u64, each: &mut dyn FnMut(&'static str, Alerts));
    /// [`SloExport::for_each_report`].
    fn for_each_report(&self, now_ms: u64, each: &mut dyn FnMut(&'static str, f64, &SloReport));
    /// Registers the export into `registry` unless it is there already.
    fn prepare(&'static self, registry: &Registry<F>) -> Result<(), RegisterError>;
}

impl<const F: usize, const K: usize> SloSource<F> for SloExport<K> {
    fn update(&self, now_ms: u64) {
        SloExport::update(self, now_ms);
    }

    fn for_each_alert(&self, now_ms: u64, each: &mut dyn FnMut(&'static str, Alerts)) {
        SloExport::for_each_alert(self, now_ms, each);
    }

    fn for_each_report(&self, now_ms: u64, each: &mut dyn FnMut(&'static str, f64, &SloReport)) {
        SloExport::for_each_report(self, now_ms, each);
    }

    fn prepare(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        match self.register(registry) {
            // The export registers its families in one go, so a duplicate first family
            // means the caller registered it already.
            Ok(()) | Err(RegisterError::DuplicateFamily(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

/// A listening socket on `address` with an accept queue of `backlog`.
fn listen(address: SocketAddr, backlog: u32) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // A restarted exporter can bind while its predecessor's connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    let listener = socket.listen(backlog)?;
    let local_addr = listener.local_addr()?;
    Ok((listener, local_addr))
}

/// The process-wide defaults of [`Exporter::clock`] and [`Exporter::metrics`].
static DEFAULT_CLOCK: StdClock = StdClock::new();
static DEFAULT_METRICS: ExporterMetrics = ExporterMetrics::new();

/// An exporter being configured: [`Exporter::builder`], the setters, then
/// [`bind`](Self::bind).
pub struct Exporter<const F: usize> {
    registry: &'static Registry<F>,
    address: SocketAddr,
    token: Option<String>,
    limits: Limits,
    slos: Option<&'static dyn SloSource<F>>,
    memory: Option<&'static MemoryMonitor>,
    snapshot: Option<&'static [&'static dyn SnapshotPart]>,
    sections: Vec<&'static dyn Section>,
    clock: &'static (dyn Clock + Send + Sync),
    metrics: &'static ExporterMetrics,
    /// A `prometheus` crate registry appended to `/metrics` (see `prometheus.rs`).
    #[cfg(feature = "prometheus")]
    prometheus: Option<::prometheus::Registry>,
}

impl<const F: usize> core::fmt::Debug for Exporter<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Exporter")
            .field("registry", self.registry)
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("slos", &self.slos.is_some())
            .field("memory", &self.memory.is_some())
            .field("sections", &self.sections.iter().map(|s| s.key()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<const F: usize> Exporter<F> {
    /// An exporter of `registry` on [`DEFAULT_ADDRESS`] with the default [`Limits`], no
    /// token, no SLOs, [`StdClock`] and the process-wide [`ExporterMetrics`].
    pub fn builder(registry: &'static Registry<F>) -> Self {
        Self {
            registry,
            address: DEFAULT_ADDRESS,
            token: None,
            limits: Limits::DEFAULT,
            slos: None,
            memory: None,
            snapshot: None,
            sections: Vec::new(),
            clock: &DEFAULT_CLOCK,
            metrics: &DEFAULT_METRICS,
            #[cfg(feature = "prometheus")]
            prometheus: None,
        }
    }

    /// The address to listen on (port 0 picks a free port; see
    /// [`RunningExporter::local_addr`]).
    pub fn address(mut self, address: SocketAddr) -> Self {
        self.address = address;
        self
    }

    /// The bearer token every route but `/health/live` requires, or `None` for none.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// SLOs whose alerts `/health` reports; updated before each `/metrics` and `/health`
    /// answer. Bind registers the export's families into the registry unless they are
    /// there already.
    pub fn slos<const K: usize>(mut self, slos: &'static SloExport<K>) -> Self {
        self.slos = Some(slos);
        self
    }

    /// A memory monitor whose verdicts `/health` reports; updated before each `/metrics`
    /// and `/health` answer (sampling is the caller's, on its own schedule). Bind registers
    /// its families into the registry unless they are there already.
    pub fn memory(mut self, monitor: &'static MemoryMonitor) -> Self {
        self.memory = Some(monitor);
        self
    }

    /// A monitor `/api/report` shows and `/health` judges (see [`report`](crate::report)):
    /// breakers, rate limits, security events, top offenders, slow queries, slow spans.
    /// Register its families into the registry yourself; it is updated before each answer.
    pub fn section(mut self, section: &'static dyn Section) -> Self {
        self.sections.push(section);
        self
    }

    /// The state `GET /snapshot` serves, taken at each request with the exporter's clock.
    pub fn snapshot(mut self, parts: &'static [&'static dyn SnapshotPart]) -> Self {
        self.snapshot = Some(parts);
        self
    }

    /// The clock SLOs are judged by: the one the application records SLO events with
    /// (default: [`StdClock`], Unix-epoch milliseconds).
    pub fn clock<C: Clock + Send + Sync>(mut self, clock: &'static C) -> Self {
        self.clock = clock;
        self
    }

    /// Where the exporter counts its own requests and connections (default: one
    /// process-wide [`ExporterMetrics`]).
    pub fn metrics(mut self, metrics: &'static ExporterMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Checks the configuration, registers the exporter's families (and the SLO export's),
    /// listens on the address and starts serving on the current tokio runtime.
    pub async fn bind(self) -> Result<RunningExporter, ExportError> {
        self.limits.validate()?;
        let token = self.token.as_deref().map(auth::Token::new).transpose()?;
        self.metrics.register(self.registry)?;
        let slos = match self.slos {
            Some(source) => {
                source.prepare(self.registry)?;
                Some(Slos { source })
            }
            None => None,
        };
        if let Some(monitor) = self.memory {
            match monitor.register(self.registry) {
                // The monitor registers the export's families first, in one go.
                Ok(()) | Err(RegisterError::DuplicateFamily("plimsoll_memory_bytes")) => {}
                Err(other) => return Err(other.into()),
            }
        }
        let (listener, local_addr) = listen(self.address, self.limits.backlog)
            .map_err(|source| ExportError::Bind { address: self.address, source })?;

        let limits = self.limits;
        let longest = [Format::Prometheus, Format::OpenMetrics, Format::Protobuf]
            .map(|format| self.registry.max_message_len(format))
            .into_iter()
            .max()
            .unwrap_or(0);
        let render_buffer = limits.render_buffer_bytes.max(longest);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.keep_alive(true)
            // The exporter times request heads itself (see `conn`): hyper's timer would
            // also run while a keep-alive connection is idle.
            .header_read_timeout(None)
            .max_header_size(limits.max_header_bytes)
            .max_buf_size(limits.read_buffer_limit())
            // Queue the chunks and write them with one vectored write rather than copy them
            // into a write buffer that would double to 16 KiB (see `body`).
            .writev(true)
            // A client may shut down its write side once its request is sent (`nc -N`,
            // some HTTP/1.0 clients); without this, hyper drops the connection unanswered
            // when that end-of-file arrives before it responds. The idle timeout still
            // closes a half-closed connection that goes quiet.
            .half_close(true);
        let shared = Arc::new(Shared {
            registry: self.registry,
            token,
            slos,
            memory: self.memory,
            snapshot: self.snapshot,
            sections: self.sections,
            clock: self.clock,
            metrics: self.metrics,
            #[cfg(feature = "prometheus")]
            prometheus: self.prometheus,
            pool: Arc::new(body::ScrapePool::new(render_buffer, limits.read_buffer_limit(), limits.max_connections)),
            limits: Limits { render_buffer_bytes: render_buffer, ..limits },
            http,
            slots: conn::Slots::new(limits.max_connections),
            control: tokio::sync::watch::Sender::new(State::Running),
        });
        Ok(server::start(listener, local_addr, shared))
    }

    /// [`bind`](Self::bind), then [`RunningExporter::serve`] until `signal` completes.
    pub async fn serve(self, signal: impl Future<Output = ()>) -> Result<ShutdownReport, ExportError> {
        Ok(self.bind().await?.serve(signal).await)
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    #[test]
    fn the_connection_bound_counts_a_read_buffer_grown_by_doubling() {
        // 64 × (2 × 8 + 8 + (⌈8 / 4⌉ + 2) × 4 + 8) KiB.
        assert_eq!(Limits::DEFAULT.connection_memory_bound(), 64 * (48 << 10));
        // A 12 KiB head limit: the read buffer doubles from 8 to 16 KiB and then to 32 KiB,
        // and hyper holds up to 12 KiB of chunks: 5 render buffers.
        let limits = Limits { max_connections: 1, max_header_bytes: 12 << 10, ..Limits::DEFAULT };
        assert_eq!(limits.connection_memory_bound(), (32 + 8 + 5 * 4 + 8) << 10);
        let huge = Limits { max_connections: usize::MAX, ..Limits::DEFAULT };
        assert_eq!(huge.connection_memory_bound(), usize::MAX, "saturates");
    }
}
