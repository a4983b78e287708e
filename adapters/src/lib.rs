//! Plimsoll on std: the fixed-memory core ([`plimsoll_core`], re-exported here) plus the
//! adapters that connect it to a process.
//!
//! This crate enables `critical-section`'s std implementation, which the core uses to
//! publish new series; a program that depends on `plimsoll` needs nothing else.

pub use plimsoll_core::*;

pub mod alloc;
#[cfg(any(feature = "metrics", feature = "prometheus"))]
pub mod bridge;
pub mod clock;
pub mod config;
pub mod exporter;
#[cfg(feature = "tower")]
pub mod middleware;
pub mod monitor;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod persist;
pub mod report;
pub mod sampler;
#[cfg(feature = "tracing")]
pub mod tracing_layer;

pub use clock::StdClock;
pub use config::{Config, ConfigError, Profile, SloConfig, Subsystems};
pub use exporter::{ExportError, Exporter, ExporterMetrics, Limits, RunningExporter, ShutdownHandle};
pub use monitor::MemoryMonitor;
pub use persist::{Restore, StateFile};
pub use sampler::{CgroupSampler, ProcessSampler};
