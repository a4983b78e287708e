//! The parts of the `plimsoll` command; `main.rs` holds its arguments.
//!
//! - [`run`]: `serve` and `demo` (configuration, state, exporter, signals, shutdown);
//! - [`demo`]: the demo's instrumented shop, its visitors, `--leak` and the status line;
//! - [`inspect`]: decoding a snapshot file;
//! - [`leak_check`]: the leak verdict on a recorded memory trace, and its evaluation;
//! - [`watch`]: the sidecar for another process (Unix only: it forwards signals);
//! - [`rules`]: Prometheus recording and alerting rules and a Grafana dashboard for the SLOs;
//! - [`state`]: the SLOs built from the configuration and the one list of snapshot parts
//!   that all three share;
//! - [`snapshots`]: restore at start-up, periodic and final saves;
//! - [`footprint`]: the start-up footprint report;
//! - [`otlp`]: the optional OTLP push of `serve` and `demo`;
//! - [`human`]: date-times and durations for people.

pub(crate) mod demo;
mod footprint;
mod human;
pub(crate) mod inspect;
pub(crate) mod leak_check;
mod otlp;
pub(crate) mod rules;
pub(crate) mod run;
mod snapshots;
mod state;
#[cfg(unix)]
pub(crate) mod watch;

/// Exit status of a failure at run time: the address cannot be bound, a snapshot cannot be
/// read or is rejected, the final snapshot cannot be saved.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit status of an invalid configuration (as of a usage error, which clap reports).
pub(crate) const EXIT_CONFIG: u8 = 2;

/// Completes once `stop` holds `true`, or its sender is gone (a stop too). The guard
/// `wait_for` returns is dropped here, so the caller's future stays `Send`.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stopped| stopped).await;
}
