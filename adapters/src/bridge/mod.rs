//! Bridges to the other Rust metrics crates, each behind the feature named after it.
//!
//! - `bridge::metrics` (feature `metrics`): a recorder for the `metrics` facade, so its
//!   `counter!`, `gauge!` and `histogram!` calls anywhere in a program record into fixed
//!   Plimsoll families, with names and label sets beyond capacity counted into overflow
//!   series instead of growing the heap.
//! - `bridge::prometheus` (feature `prometheus`): a Plimsoll registry as a
//!   `prometheus::core::Collector`, so `prometheus::gather()` and the handlers built on it
//!   include Plimsoll's series. The other direction, serving a `prometheus::Registry`
//!   beside Plimsoll's series on one `/metrics`, is `Exporter::prometheus_registry`.
//!
//! Use them to adopt Plimsoll in a program that already speaks one of these crates; code
//! written against Plimsoll directly needs neither (a `static` family is cheaper than any
//! facade call).

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
