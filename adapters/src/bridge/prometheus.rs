//! A Plimsoll registry as a `prometheus` crate collector (feature `prometheus`).
//!
//! [`RegistryCollector`] implements `prometheus::core::Collector` over a [`Registry`], so a
//! program that serves `prometheus::gather()` (or a `prometheus::Registry` of its own)
//! includes Plimsoll's series without a second endpoint:
//!
//! ```
//! use plimsoll::bridge::prometheus::RegistryCollector;
//! use plimsoll::{Counter, Family, Registry};
//!
//! static REGISTRY: Registry<8> = Registry::new();
//! static REQUESTS: Family<Counter, 1, 16> = Family::new("http_requests", "Requests.", ["method"]);
//!
//! REGISTRY.register(&REQUESTS).unwrap();
//! prometheus::register(Box::new(RegistryCollector::new(&REGISTRY))).unwrap();
//! REQUESTS.with_label_values(&["GET"]).inc();
//!
//! let text = prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()).unwrap();
//! assert!(text.contains("http_requests_total{method=\"GET\"} 1"));
//! ```
//!
//! The families carry what Plimsoll's own exposition does: counters named `<name>_total`,
//! gauges, histograms with their classic buckets at the same snapped `le` edges, each
//! family's overflow series once used, and Plimsoll's own counters
//! (`plimsoll_series_overflow_total`, `plimsoll_label_value_rejected_total`,
//! `plimsoll_observations_rejected_total`, by `family`). Units and the OpenMetrics
//! metadata have no place in the crate's data model and are left out.
//!
//! # What it allocates
//!
//! The `prometheus` crate's model is a tree of owned structures per collection, so every
//! [`collect`](prometheus::core::Collector::collect) allocates the families, their series,
//! label pairs and buckets (a few allocations per series), all owned by the caller and
//! freed when it drops them. The recording side is untouched: Plimsoll's hot paths still
//! never allocate. To serve Plimsoll's series without allocating per scrape, use its own
//! exporter (`plimsoll::exporter`), which can serve a `prometheus::Registry` beside them
//! (`Exporter::prometheus_registry`).
//!
//! # Descriptors
//!
//! `prometheus::Registry::register` checks a collector's descriptors against those already
//! registered. [`RegistryCollector::new`] describes the families registered at that
//! moment; families registered later (the `metrics` facade recorder adds them on first
//! use) are collected all the same but were not part of that check, so keep their names
//! distinct from the `prometheus` registry's.

use crate::{
    Exposable, HistogramRead, MAX_CLASSIC_BUCKETS, MAX_LABEL_VALUE_LEN, MetricKind, OWN_COUNTERS, Registry, Sample,
};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use std::collections::HashMap;

/// A Plimsoll [`Registry`] as a `prometheus::core::Collector`. See the [module docs](self).
#[derive(Debug)]
pub struct RegistryCollector<const F: usize> {
    registry: &'static Registry<F>,
    descs: Vec<Desc>,
}

impl<const F: usize> RegistryCollector<F> {
    /// A collector of `registry`, described by the families registered now and Plimsoll's
    /// own counters.
    pub fn new(registry: &'static Registry<F>) -> Self {
        let mut descs: Vec<Desc> = registry.families().filter_map(describe).collect();
        for own in OWN_COUNTERS {
            if registry.families().any(|family| own.applies_to(family)) {
                let name = format!("{}_total", own.name);
                descs.extend(Desc::new(name, own.help.into(), vec!["family".into()], HashMap::new()));
            }
        }
        Self { registry, descs }
    }
}

impl<const F: usize> Collector for RegistryCollector<F> {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        metric_families(self.registry)
    }
}

/// The descriptor of `family`; `None` if the crate's checks refuse it (they are Plimsoll's
/// own, but for an empty help text, which the crate requires and which is replaced by the
/// name here).
fn describe(family: &dyn Exposable) -> Option<Desc> {
    let d = family.descriptor();
    let help = if d.help.is_empty() { d.name } else { d.help };
    let labels = d.label_names.iter().map(|&l| l.to_owned()).collect();
    Desc::new(exposed_name(family), help.to_owned(), labels, HashMap::new()).ok()
}

/// Whether Plimsoll's Prometheus text exposition of `registry` writes `name` in a
/// `# TYPE` line: as a registered family's name, or as one of Plimsoll's own counters.
pub(crate) fn is_exposed<const F: usize>(registry: &Registry<F>, name: &str) -> bool {
    OWN_COUNTERS.iter().any(|own| name.strip_suffix("_total") == Some(own.name))
        || registry.families().any(|family| {
            let d = family.descriptor();
            match d.kind {
                MetricKind::Counter => name.strip_suffix("_total") == Some(d.name),
                MetricKind::Gauge | MetricKind::Histogram => name == d.name,
            }
        })
}

/// The family name as the Prometheus text format writes it: `<name>_total` for counters.
fn exposed_name(family: &dyn Exposable) -> String {
    let d = family.descriptor();
    match d.kind {
        MetricKind::Counter => format!("{}_total", d.name),
        MetricKind::Gauge | MetricKind::Histogram => d.name.to_owned(),
    }
}

/// Every family of `registry` and Plimsoll's own counters, as the `prometheus` crate's
/// data model; families with no series are left out (the crate's encoder refuses them).
pub fn metric_families<const F: usize>(registry: &Registry<F>) -> Vec<MetricFamily> {
    let mut out: Vec<MetricFamily> = registry.families().filter_map(convert).collect();
    for own in OWN_COUNTERS {
        let metrics: Vec<proto::Metric> = registry
            .families()
            .filter(|&family| own.applies_to(family))
            .map(|family| {
                let mut metric = proto::Metric::default();
                metric.set_label(vec![label_pair("family", family.descriptor().name)]);
                metric.set_counter(counter(own.value(family) as f64));
                metric
            })
            .collect();
        if !metrics.is_empty() {
            out.push(metric_family(format!("{}_total", own.name), own.help, MetricType::COUNTER, metrics));
        }
    }
    out
}

fn convert(family: &dyn Exposable) -> Option<MetricFamily> {
    let d = family.descriptor();
    // The classic buckets' snapped edges, found once per family from its first histogram.
    let mut edges: Option<Vec<f64>> = None;
    let mut metrics = Vec::new();
    for slot in 0..family.slots() {
        let Some(sample) = family.sample(slot) else { continue };
        let mut metric = proto::Metric::default();
        metric.set_label(labels(family, slot));
        match sample {
            Sample::Counter(v) => metric.set_counter(counter(v as f64)),
            Sample::Gauge(v) => metric.set_gauge(gauge(v as f64)),
            Sample::GaugeF64(v) => metric.set_gauge(gauge(v)),
            Sample::Histogram(h) => {
                let edges = edges.get_or_insert_with(|| snapped(d.buckets, h));
                metric.set_histogram(histogram(h, edges));
            }
        }
        metrics.push(metric);
    }
    let kind = match d.kind {
        MetricKind::Counter => MetricType::COUNTER,
        MetricKind::Gauge => MetricType::GAUGE,
        MetricKind::Histogram => MetricType::HISTOGRAM,
    };
    (!metrics.is_empty()).then(|| metric_family(exposed_name(family), d.help, kind, metrics))
}

fn metric_family(name: String, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name);
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn label_pair(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

/// The label pairs of the series in `slot` (the overflow series' values included).
fn labels(family: &dyn Exposable, slot: usize) -> Vec<LabelPair> {
    let mut value = [0u8; MAX_LABEL_VALUE_LEN];
    let names = family.descriptor().label_names;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let len = family.label_value(slot, i, &mut value);
            // Values were copied in from `&str`s, whole, so they are UTF-8.
            label_pair(name, &String::from_utf8_lossy(&value[..len]))
        })
        .collect()
}

fn counter(value: f64) -> proto::Counter {
    let mut counter = proto::Counter::default();
    counter.set_value(value);
    counter
}

fn gauge(value: f64) -> proto::Gauge {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    gauge
}

/// `bounds` snapped to the histogram's bucket edges, as the core's renderer exports them
/// (registration checked that each snaps and that there are at most
/// `MAX_CLASSIC_BUCKETS`).
fn snapped(bounds: &[f64], h: &dyn HistogramRead) -> Vec<f64> {
    bounds.iter().filter_map(|&b| h.snap_to_edge(b)).take(MAX_CLASSIC_BUCKETS).collect()
}

fn histogram(h: &dyn HistogramRead, edges: &[f64]) -> proto::Histogram {
    let mut counts = [0u64; MAX_CLASSIC_BUCKETS];
    let counts = &mut counts[..edges.len()];
    let total = h.cumulative_counts(edges, counts);
    let buckets = edges
        .iter()
        .zip(counts.iter())
        .map(|(&edge, &count)| {
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(edge);
            bucket.set_cumulative_count(count);
            bucket
        })
        .collect();
    let mut out = proto::Histogram::default();
    out.set_sample_count(total);
    out.set_sample_sum(h.sum());
    out.set_bucket(buckets);
    out
}
