//! The pusher's own metrics: ordinary core families, registered into the pushed registry
//! at spawn, so they travel with the application's and show on `/metrics` if it is served.

use core::ptr;
use plimsoll_core::{Counter, Exposable, Gauge, RegisterError, Registry, Unlabelled};

/// The pusher's counters and gauges, ten families:
///
/// | family | type | counts |
/// |---|---|---|
/// | `plimsoll_otlp_batches_queued_total` | counter | batches put in the queue |
/// | `plimsoll_otlp_batches_sent_total` | counter | batches the collector accepted (2xx) |
/// | `plimsoll_otlp_batches_failed_total` | counter | batches given up: a permanent error, or retries exhausted |
/// | `plimsoll_otlp_batches_dropped_total` | counter | batches pushed out of the full queue unsent, or still waiting or being sent at shutdown |
/// | `plimsoll_otlp_retries_total` | counter | attempts after the first, all batches together |
/// | `plimsoll_otlp_points_oversized_total` | counter | data points left out because one alone exceeds `max_batch_bytes` |
/// | `plimsoll_otlp_points_rejected_total` | counter | data points the collector reported rejected (partial success) |
/// | `plimsoll_otlp_queue_batches` | gauge | batches waiting now |
/// | `plimsoll_otlp_queue_bytes` | gauge | encoded bytes waiting now |
/// | `plimsoll_otlp_largest_batch_bytes` | gauge | the largest batch encoded so far |
///
/// A `const fn` constructor, so it lives in a `static`. One set of metrics serves one
/// pusher: two pushers sharing it add into the same counters.
#[derive(Debug)]
pub struct OtlpMetrics {
    pub(crate) queued: Unlabelled<Counter>,
    pub(crate) sent: Unlabelled<Counter>,
    pub(crate) failed: Unlabelled<Counter>,
    pub(crate) dropped: Unlabelled<Counter>,
    pub(crate) retries: Unlabelled<Counter>,
    pub(crate) oversized: Unlabelled<Counter>,
    pub(crate) rejected: Unlabelled<Counter>,
    pub(crate) queue_batches: Unlabelled<Gauge>,
    pub(crate) queue_bytes: Unlabelled<Gauge>,
    pub(crate) largest_batch: Unlabelled<Gauge>,
}

impl Default for OtlpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OtlpMetrics {
    /// Families registered at spawn.
    pub const FAMILIES: usize = 10;
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// All at zero.
    pub const fn new() -> Self {
        Self {
            queued: Unlabelled::new("plimsoll_otlp_batches_queued", "OTLP batches put in the send queue."),
            sent: Unlabelled::new("plimsoll_otlp_batches_sent", "OTLP batches the collector accepted."),
            failed: Unlabelled::new(
                "plimsoll_otlp_batches_failed",
                "OTLP batches given up after a permanent error or the last retry.",
            ),
            dropped: Unlabelled::new(
                "plimsoll_otlp_batches_dropped",
                "OTLP batches pushed out of the full send queue, or still waiting or being sent at shutdown, unsent.",
            ),
            retries: Unlabelled::new("plimsoll_otlp_retries", "OTLP requests retried after a retryable failure."),
            oversized: Unlabelled::new(
                "plimsoll_otlp_points_oversized",
                "Data points left out of OTLP batches because one alone exceeds the batch size limit.",
            ),
            rejected: Unlabelled::new(
                "plimsoll_otlp_points_rejected",
                "Data points the OTLP collector reported rejected in a partial success.",
            ),
            queue_batches: Unlabelled::new("plimsoll_otlp_queue_batches", "OTLP batches waiting to be sent."),
            queue_bytes: Unlabelled::new("plimsoll_otlp_queue_bytes", "Encoded bytes of the OTLP batches waiting."),
            largest_batch: Unlabelled::new(
                "plimsoll_otlp_largest_batch_bytes",
                "The largest OTLP batch encoded so far, in bytes.",
            ),
        }
    }

    fn families(&'static self) -> [&'static dyn Exposable; Self::FAMILIES] {
        [
            &self.queued,
            &self.sent,
            &self.failed,
            &self.dropped,
            &self.retries,
            &self.oversized,
            &self.rejected,
            &self.queue_batches,
            &self.queue_bytes,
            &self.largest_batch,
        ]
    }

    /// Registers the families not yet in `registry` (this very object's, compared by
    /// address). Fails without registering any if the registry lacks room.
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
        Ok(())
    }
}
