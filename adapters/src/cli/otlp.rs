//! `serve` and `demo` push their registry over OTLP/HTTP when the binary is built with
//! feature `otlp` and the environment names an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, unless `OTEL_METRICS_EXPORTER=none`). Built
//! without it, such an endpoint is reported at start-up rather than silently ignored.

use plimsoll::Registry;

/// The push's configuration, read at start-up: none when no push is asked for.
#[derive(Debug)]
pub(crate) struct Setting {
    #[cfg(feature = "otlp")]
    config: Option<plimsoll::otlp::OtlpConfig>,
}

/// The running push, if any.
#[derive(Debug)]
pub(crate) struct Running {
    #[cfg(feature = "otlp")]
    pusher: Option<plimsoll::otlp::OtlpPusher>,
}

#[cfg(feature = "otlp")]
static METRICS: plimsoll::otlp::OtlpMetrics = plimsoll::otlp::OtlpMetrics::new();

/// Reads the configuration and prints it; an invalid one is the message to exit 2 with.
#[cfg(feature = "otlp")]
pub(crate) fn configure() -> Result<Setting, String> {
    if !plimsoll::otlp::OtlpConfig::requested(|name| std::env::var(name).ok()) {
        return Ok(Setting { config: None });
    }
    let config = plimsoll::otlp::OtlpConfig::from_env().map_err(|e| e.to_string())?;
    eprint!("{config}");
    Ok(Setting { config: Some(config) })
}

/// Reports an endpoint this build cannot push to.
#[cfg(not(feature = "otlp"))]
#[allow(clippy::unnecessary_wraps)] // The same signature as with the feature.
pub(crate) fn configure() -> Result<Setting, String> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
        eprintln!("plimsoll: an OTLP endpoint is set, but this build has no OTLP push (cargo feature otlp)");
    }
    Ok(Setting {})
}

/// Starts pushing `registry` on the current runtime.
#[cfg(feature = "otlp")]
pub(crate) fn start<const F: usize>(setting: Setting, registry: &'static Registry<F>) -> Result<Running, String> {
    let Some(config) = setting.config else { return Ok(Running { pusher: None }) };
    let pusher = plimsoll::otlp::OtlpPusher::spawn(registry, config, &METRICS).map_err(|e| e.to_string())?;
    Ok(Running { pusher: Some(pusher) })
}

/// Nothing to start.
#[cfg(not(feature = "otlp"))]
#[allow(clippy::unnecessary_wraps)] // The same signature as with the feature.
pub(crate) fn start<const F: usize>(_: Setting, _: &'static Registry<F>) -> Result<Running, String> {
    Ok(Running {})
}

/// Stops the push after a final push, and reports how it went.
pub(crate) async fn stop(running: Running) {
    #[cfg(feature = "otlp")]
    if let Some(pusher) = running.pusher {
        let stats = pusher.shutdown().await;
        eprintln!(
            "plimsoll: otlp: {} batches sent, {} failed, {} dropped, {} retries",
            stats.sent, stats.failed, stats.dropped, stats.retries
        );
    }
    #[cfg(not(feature = "otlp"))]
    let Running {} = running;
}
