//! The start-up footprint report: every family of the registry with its series and bytes,
//! then the fixed state outside the families, the demo's monitors (each whole, its families
//! included) and the total, as the quickstart prints it.

use plimsoll::{ExporterMetrics, Limits, MemoryMonitor, MetricKind, Registry, Slo, SloExport};
use std::fmt::Write;

/// State the report lists besides the registry's families: `(what, kind, bytes)`.
pub(crate) type Extra = (&'static str, &'static str, usize);

/// A monitor whose families are in the registry: listed whole, counted once in the total.
#[derive(Debug)]
pub(crate) struct Monitor {
    pub(crate) what: String,
    /// Its bytes, its families included.
    pub(crate) bytes: usize,
    /// The name prefixes of its families, whose bytes the registry's lines already count.
    pub(crate) prefixes: &'static [&'static str],
}

/// The monitors a command installed, under a heading (its profile, say).
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    pub(crate) heading: String,
    pub(crate) items: Vec<Monitor>,
}

/// The report, one line per item, for stderr.
pub(crate) fn report<const F: usize, const K: usize>(
    registry: &Registry<F>,
    export: &SloExport<K>,
    slos: &[&Slo],
    memory: Option<&MemoryMonitor>,
    extras: &[Extra],
    monitors: Option<&Monitors>,
    limits: &Limits,
) -> String {
    let mut out = format!("{:<44} {:<10} {:>6} {:>8}\n", "family", "type", "series", "bytes");
    let mut line = |what: &str, kind: &str, series: &str, bytes: usize| {
        let _ = writeln!(out, "{what:<44} {kind:<10} {series:>6} {bytes:>8}");
    };
    for family in registry.families() {
        let d = family.descriptor();
        let kind = match d.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        line(d.name, kind, &family.series_in_use().to_string(), family.footprint());
    }
    line("(registry)", "", "", Registry::<F>::FOOTPRINT);
    // The export's and the exporter's families are listed above and counted in the
    // registry's footprint; their own footprints include them too, so they are taken out.
    let in_families = |prefix: &str| -> usize {
        registry.families().filter(|f| f.descriptor().name.starts_with(prefix)).map(|f| f.footprint()).sum()
    };
    let export_rest = size_of_val(export).saturating_sub(in_families("plimsoll_slo_"));
    let exporter_rest = ExporterMetrics::FOOTPRINT.saturating_sub(in_families("plimsoll_exporter_"));
    line("(slo export, besides families)", "", "", export_rest);
    line("(exporter metrics, besides families)", "", "", exporter_rest);
    let mut total = registry.footprint() + export_rest + exporter_rest;
    if let Some(monitor) = memory {
        let rest =
            monitor.footprint().saturating_sub(in_families("plimsoll_memory_") + in_families("plimsoll_process_"));
        line("(memory monitor: histories, samplers)", "", "", rest);
        total += rest;
    }
    for slo in slos {
        line(&format!("slo {}", slo.name()), "slo", "", Slo::<361, 721>::FOOTPRINT);
        total += Slo::<361, 721>::FOOTPRINT;
    }
    for &(what, kind, bytes) in extras {
        line(what, kind, "", bytes);
        total += bytes;
    }
    if let Some(monitors) = monitors {
        let _ = writeln!(out, "{}:{}", monitors.heading, if monitors.items.is_empty() { " none" } else { "" });
        for monitor in &monitors.items {
            let _ = writeln!(out, "{:<44} {:<10} {:>6} {:>8}", monitor.what, "monitor", "", monitor.bytes);
            let families: usize = monitor.prefixes.iter().map(|prefix| in_families(prefix)).sum();
            total += monitor.bytes.saturating_sub(families);
        }
    }
    format!("{out}total: {total} bytes of fixed state, whatever the traffic\n{}\n", connections(limits))
}

/// The exporter's bound on connection memory ([`Limits::connection_memory_bound`]).
fn connections(limits: &Limits) -> String {
    let bound = limits.connection_memory_bound();
    format!(
        "plus the exporter's connections: at most {} at once, at most about {} KiB together",
        limits.max_connections,
        bound >> 10
    )
}
