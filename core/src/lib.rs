//! Plimsoll's core: monitoring whose memory cost is fixed at compile time.
//!
//! `#![no_std]`, and the crate never links `alloc`: every structure here has its size
//! fixed by const generics, is built by a `const fn`, and can live in a `static`. Hot
//! paths are one or two relaxed atomic operations and never block or allocate.
//! 64-bit atomics come from `portable-atomic`, so the crate builds for targets with
//! 32-bit atomics only (for example `thumbv7em-none-eabihf`).
//!
//! - [`Counter`], [`Gauge`], [`GaugeF64`]: single values.
//! - [`Histogram`]: exponential buckets in the Prometheus native-histogram layout, with
//!   quantiles within a stated relative error ([`Histogram::ALPHA`]);
//!   [`ExemplarHistogram`] also keeps the latest [`Exemplar`] (trace id) per range of
//!   buckets.
//! - [`Family`]: a metric with labels, at most `N` series, label values copied into
//!   fixed storage; extra label sets are counted into an overflow series.
//! - [`Registry`] and [`Renderer`]: Prometheus text, OpenMetrics and Prometheus protobuf
//!   (native histograms, exemplars) exposition into a caller's buffer, resumable, with no
//!   allocation.
//! - [`Window`]: rolling time windows of counters, histograms or min/max, fed the time by
//!   the caller (the core never reads a clock; see [`time`]).
//! - [`Slo`] and [`SloExport`]: error budgets, burn rates and multi-window alerts, exported
//!   as ordinary families.
//! - [`MemoryHistory`] and [`MemoryExport`]: memory trends on the lower envelope, leak
//!   verdicts and an out-of-memory forecast.
//! - [`RateLimiter`] and [`RateLimitExport`]: keyed GCRA rate limiting over a fixed table of
//!   keys, with a bounded eviction policy.
//! - [`SecurityEvents`]: the last security events, per-kind counters and threat rules (brute
//!   force, path scanning, limit violations).
//! - [`TopK`] (Space-Saving): the heaviest keys of a stream in `k` counters, with a stated
//!   error bound (top offenders).
//! - [`SlowQueryTracker`] and [`query`]: allocation-free SQL fingerprints, per-fingerprint
//!   statistics of the queries that take the most time, and index hints.
//! - [`CircuitBreaker`] and [`BreakerExport`]: resilience4j's circuit breaker (count- or
//!   time-based windows, failure and slow-call rates, half-open trials), exported.
//! - [`SlowSpans`]: per-name span durations and the slowest recent spans, what tail-based
//!   sampling keeps.
//! - `snapshot` (feature `postcard`): versioned, checksummed snapshots of window and SLO
//!   state.
//!
//! ```
//! use plimsoll_core::{Counter, Family, Format, LatencyHistogram, Registry};
//!
//! static REGISTRY: Registry<4> = Registry::new();
//! static REQUESTS: Family<Counter, 2, 32> =
//!     Family::new("http_requests", "Requests served.", ["method", "status"]);
//! static LATENCY: Family<LatencyHistogram, 1, 16> =
//!     Family::new("http_request_duration_seconds", "Request latency.", ["route"]).unit("seconds");
//!
//! REGISTRY.register(&REQUESTS).unwrap();
//! REGISTRY.register(&LATENCY).unwrap();
//! REQUESTS.with_label_values(&["GET", "200"]).inc();
//! LATENCY.with_label_values(&["/users/:id"]).record(0.012);
//!
//! let mut buf = [0u8; 1024];
//! let mut renderer = REGISTRY.renderer(Format::OpenMetrics);
//! while !renderer.is_done() {
//!     let n = renderer.render(&mut buf).unwrap();
//!     // send &buf[..n]
//! #   assert!(n > 0);
//! }
//! ```
//!
//! # Cost
//!
//! Every type has a `FOOTPRINT` constant (its size in bytes) and
//! [`Registry::footprint`] adds up a registry and its families.
#![no_std]
// The core has no `unsafe` at all, so it needs no miri run to vouch for it.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(test)]
extern crate std;

/// Compiles items only outside `loom` models. Under `--cfg loom` the crate shrinks to the
/// concurrent structures that the models exercise, built on loom's atomics (which cannot
/// be created in `const` context).
macro_rules! cfg_not_loom {
    ($($item:item)*) => { $( #[cfg(not(loom))] $item )* };
}

mod counter;
pub mod exemplar;
mod label_index;
pub mod window;

cfg_not_loom! {
    pub mod breaker;
    mod error;
    pub mod family;
    mod gauge;
    pub mod histogram;
    mod members;
    pub mod memory;
    mod metric;
    mod name;
    pub mod query;
    pub mod ratelimit;
    mod registry;
    pub mod render;
    pub mod security;
    pub mod slo;
    #[cfg(feature = "postcard")]
    pub mod snapshot;
    pub mod span;
    pub mod time;
    pub mod topk;
    mod view;
}

/// Atomic types: `portable-atomic`'s, so 64-bit values work on 32-bit targets; loom's
/// under `--cfg loom`.
mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};
    #[cfg(not(loom))]
    pub(crate) use portable_atomic::{AtomicF64, AtomicI64, AtomicU8, AtomicU64, Ordering, fence};
}

/// The sealed-trait pattern: public so it may bound public traits, unnameable outside.
pub(crate) mod sealed {
    #[allow(unreachable_pub)] // Must be `pub` to bound public traits.
    pub trait Sealed {}
}

pub use counter::Counter;
pub use exemplar::{Exemplar, TraceId};
pub use window::{MAX_TIME_MS, RateWindow, SlotData, Window};

cfg_not_loom! {
    pub use breaker::{
        BreakerConfig, BreakerError, BreakerExport, BreakerMetrics, BreakerState, CallKind, CallNotPermitted,
        CircuitBreaker, Permit, SlidingWindowType,
    };
    pub use error::{RegisterError, RenderError};
    pub use family::{
        DEFAULT_BUCKETS, Descriptor, Exposable, Fallbacks, Family, MAX_LABELS, OVERFLOW_LABEL_VALUE, Unlabelled,
    };
    pub use gauge::{Gauge, GaugeF64};
    pub use histogram::{ExemplarHistogram, Histogram, LatencyExemplarHistogram, LatencyHistogram, MAX_SCHEMA};
    pub use memory::{
        Assessment, LeakRules, MAX_MEMORY_SIGNALS, MAX_SIGNAL_NAME_LEN, MemoryError, MemoryExport, MemoryHistory,
        Resolution, Verdict,
    };
    pub use metric::{HistogramMetric, HistogramRead, Metric, MetricKind, Sample};
    pub use name::{MAX_HELP_LEN, MAX_NAME_LEN};
    pub use query::fingerprint::{Fingerprint, fingerprint};
    pub use query::tracker::{SlowQuery, SlowQueryTracker, TrackerConfig};
    pub use ratelimit::{Decision, Quota, RateLimitExport, RateLimiter};
    pub use registry::{OWN_COUNTERS, OwnCounter, Registry};
    pub use render::{Format, Renderer};
    pub use security::{EventKind, SecurityEvent, SecurityEvents, ThreatRules};
    pub use slo::{
        Alerts, BurnPair, BurnThresholds, DEFAULT_MIN_EVENTS, ErrorBudget, Events, GoodEvent, GoodTotal, MAX_SLO_NAME_LEN,
        MAX_SLOS, Slo, SloError, SloExport, SloReport, SloWindow,
    };
    pub use span::{SlowSpan, SlowSpans, SlowSpansConfig};
    pub use time::{Clock, ManualClock};
    pub use topk::{SpaceSaving, TopK, TopKExport};
    pub use window::{LatencyWindow, MinMax, MinMaxWindow};
}

#[cfg(feature = "embassy-time")]
pub use time::EmbassyClock;

cfg_not_loom! {
/// The most bytes a label value may ever hold (a family's `V` is at most this).
pub const MAX_LABEL_VALUE_LEN: usize = 255;
/// The most classic `le` buckets a histogram family may export (besides `+Inf`).
pub const MAX_CLASSIC_BUCKETS: usize = 32;
}

#[cfg(all(test, not(loom), target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The sizes the README states.
    #[test]
    fn footprint_of_the_default_types() {
        assert_eq!(Counter::FOOTPRINT, 8);
        assert_eq!(Gauge::FOOTPRINT, 8);
        assert_eq!(GaugeF64::FOOTPRINT, 8);
        assert_eq!(LatencyHistogram::FOOTPRINT, 3_504);
        assert_eq!(Histogram::<5, -20, 864>::FOOTPRINT, 6_960);
        assert_eq!(Histogram::<2, -10, 68>::FOOTPRINT, 592);
        assert_eq!(Family::<Counter, 2, 64>::FOOTPRINT, 9_848);
        assert_eq!(Family::<LatencyHistogram, 1, 32>::FOOTPRINT, 118_288);
        assert_eq!(Registry::<16>::FOOTPRINT, 272);
        assert_eq!(Unlabelled::<Gauge>::FOOTPRINT, 72);
    }
}
