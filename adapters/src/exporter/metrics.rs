//! The exporter's own metrics: ordinary core families, registered into the served registry
//! at bind, so they appear on `/metrics` beside the application's.

use core::ptr;
use plimsoll_core::{Counter, Exposable, Family, Gauge, RegisterError, Registry, Unlabelled};

/// Why the exporter closed a connection before the client did (the `reason` label of
/// `plimsoll_exporter_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The request head did not arrive within `header_read_timeout` (slowloris).
    HeaderTimeout,
    /// No byte moved in either direction for `keep_alive_idle`: an idle keep-alive
    /// connection, or a client that stopped reading a response.
    IdleTimeout,
    /// The request head was larger than `max_header_bytes` (answered with 431).
    HeadersTooLarge,
    /// Shutdown's grace period ended with the connection still open.
    Shutdown,
    /// A malformed request (answered with 400).
    BadRequest,
    /// Every connection slot was taken and this connection had spent the longest on its
    /// request head (at least [`PREEMPT_AFTER`](super::PREEMPT_AFTER)): closed to admit a
    /// waiting one.
    Preempted,
    /// Every connection slot was taken and another connection waited: closed once it had
    /// answered its request in flight (at once if idle between requests), so that slots
    /// pass to waiting connections in their order of arrival.
    MadeRoom,
}

impl CloseReason {
    /// Every reason, in label order.
    pub const ALL: [CloseReason; 7] = [
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::HeadersTooLarge,
        Self::Shutdown,
        Self::BadRequest,
        Self::Preempted,
        Self::MadeRoom,
    ];

    /// The `reason` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Shutdown => "shutdown",
            Self::BadRequest => "bad_request",
            Self::Preempted => "preempted",
            Self::MadeRoom => "made_room",
        }
    }
}

/// The `code` label value of `status`, if the handler answers with it.
fn code_label(status: u16) -> Option<&'static str> {
    CODES.into_iter().find(|&(code, _)| code == status).map(|(_, label)| label)
}

/// Status codes the exporter's own handler answers with (hyper answers malformed requests
/// and oversized heads itself; those show in `plimsoll_exporter_connections_closed_total`).
const CODES: [(u16, &str); 6] = [(200, "200"), (401, "401"), (404, "404"), (405, "405"), (500, "500"), (503, "503")];

/// The exporter's own metrics, six families:
///
/// | family | type | labels |
/// |---|---|---|
/// | `plimsoll_exporter_requests_total` | counter | `code` = `200` \| `401` \| `404` \| `405` \| `500` \| `503` |
/// | `plimsoll_exporter_unauthorized_requests_total` | counter | |
/// | `plimsoll_exporter_connections_accepted_total` | counter | |
/// | `plimsoll_exporter_connections_open` | gauge | |
/// | `plimsoll_exporter_connection_limit_waits_total` | counter | |
/// | `plimsoll_exporter_connections_closed_total` | counter | `reason` ([`CloseReason`]) |
///
/// A `const fn` constructor, so it lives in a `static`; the exporter uses a process-wide
/// default unless given one with [`Exporter::metrics`](super::Exporter::metrics). The
/// registry must have room for [`FAMILIES`](Self::FAMILIES) more families. Binding twice
/// with the same `ExporterMetrics` and registry registers them once; a different
/// `ExporterMetrics` on the same registry fails with [`RegisterError::DuplicateFamily`]
/// (the names clash), so a registry is served by one set of exporter metrics.
#[derive(Debug)]
pub struct ExporterMetrics {
    requests: Family<Counter, 1, 8, 3>,
    unauthorized: Unlabelled<Counter>,
    accepted: Unlabelled<Counter>,
    open: Unlabelled<Gauge>,
    limit_waits: Unlabelled<Counter>,
    closed: Family<Counter, 1, 8, 24>,
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ExporterMetrics {
    /// Families registered at bind.
    pub const FAMILIES: usize = 6;
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// All at zero.
    pub const fn new() -> Self {
        Self {
            requests: Family::new(
                "plimsoll_exporter_requests",
                "HTTP requests the exporter answered, by status code.",
                ["code"],
            ),
            unauthorized: Unlabelled::new(
                "plimsoll_exporter_unauthorized_requests",
                "Requests refused for a missing or wrong bearer token (a security event).",
            ),
            accepted: Unlabelled::new("plimsoll_exporter_connections_accepted", "Connections the exporter accepted."),
            open: Unlabelled::new("plimsoll_exporter_connections_open", "Connections open now."),
            limit_waits: Unlabelled::new(
                "plimsoll_exporter_connection_limit_waits",
                "Times the exporter stopped accepting because max_connections were open; further \
                 connections waited in the kernel's backlog.",
            ),
            closed: Family::new(
                "plimsoll_exporter_connections_closed",
                "Connections the exporter closed before the client did, by reason.",
                ["reason"],
            ),
        }
    }

    fn families(&'static self) -> [&'static dyn Exposable; Self::FAMILIES] {
        [&self.requests, &self.unauthorized, &self.accepted, &self.open, &self.limit_waits, &self.closed]
    }

    /// Registers the families not yet in `registry` (this very object's, compared by
    /// address), then creates every labelled series so all of them are exported from the
    /// first scrape. Fails without registering any if the registry lacks room.
    pub(crate) fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let missing = |family: &&'static dyn Exposable| !registry.families().any(|r| ptr::addr_eq(r, *family));
        let families = self.families();
        let needed = families.iter().filter(|f| missing(f)).count();
        if let Some(first) = families.iter().find(|f| missing(f)) {
            if F - registry.len() < needed {
                return Err(RegisterError::RegistryFull(first.descriptor().name));
            }
        }
        for family in families {
            if missing(&family) {
                registry.register(family)?;
            }
        }
        for (_, code) in CODES {
            self.requests.with_label_values(&[code]);
        }
        for reason in CloseReason::ALL {
            self.closed.with_label_values(&[reason.label()]);
        }
        Ok(())
    }

    /// Counts a response with `status`.
    pub(crate) fn count_response(&self, status: u16) {
        // The handler answers with no other code; an unexpected one would land in the
        // overflow series rather than create one.
        self.requests.with_label_values(&[code_label(status).unwrap_or("")]).inc();
        if status == 401 {
            self.unauthorized.inc();
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.accepted.inc();
        self.open.add(1);
    }

    pub(crate) fn connection_done(&self, closed_by_us: Option<CloseReason>) {
        self.open.sub(1);
        if let Some(reason) = closed_by_us {
            self.closed.with_label_values(&[reason.label()]).inc();
        }
    }

    pub(crate) fn limit_reached(&self) {
        self.limit_waits.inc();
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        code_label(status).map_or(0, |code| self.requests.with_label_values(&[code]).get())
    }

    /// Requests refused for a missing or wrong token so far.
    pub fn unauthorized_requests(&self) -> u64 {
        self.unauthorized.get()
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Connections open now.
    pub fn connections_open(&self) -> i64 {
        self.open.get()
    }

    /// Times the accept loop found `max_connections` open and waited for one to close.
    pub fn connection_limit_waits(&self) -> u64 {
        self.limit_waits.get()
    }

    /// Connections the exporter closed for `reason` so far.
    pub fn connections_closed(&self, reason: CloseReason) -> u64 {
        self.closed.with_label_values(&[reason.label()]).get()
    }
}
