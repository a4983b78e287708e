//! A registry as OTLP `ExportMetricsServiceRequest`s of bounded size.
//!
//! Each family becomes one OTLP metric named as the family (counters without `_total`):
//! counters a monotonic cumulative `Sum`, gauges a `Gauge`, histograms a cumulative
//! `ExponentialHistogram` with the histogram's own scale, zero bucket and positive buckets
//! (a Prometheus native index `k` covers `(γ^(k-1), γ^k]` and an OTLP index `i` covers
//! `(γ^i, γ^(i+1)]`, so bucket `k` is sent as OTLP index `k - 1`). Every series is a data
//! point whose attributes are its labels; a family's overflow series also carries
//! `otel.metric.overflow = true`, as the OpenTelemetry SDKs mark theirs. Plimsoll's own
//! counters (`plimsoll_series_overflow` and the others of the Prometheus exposition) follow
//! as sums with a `family` attribute.
//!
//! A collection larger than the batch limit is split between data points into several
//! requests, each complete in itself (resource, scope, metric description). The size of
//! each request is bounded before it is encoded, from the encoded length of each part and
//! the most its length prefixes can grow, so no request ever exceeds the limit.

use super::config::OtlpConfig;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use plimsoll_core::{
    Exposable, HistogramRead, MAX_LABEL_VALUE_LEN, MetricKind, OVERFLOW_LABEL_VALUE, OWN_COUNTERS, Registry, Sample,
};
use prost::Message;
use std::time::SystemTime;

/// The most a field's tag and length prefix take: one tag byte (field numbers below 16)
/// and a length varint of at most 5 bytes (lengths below 4 GiB).
const PREFIX: usize = 6;

/// What one collection produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Collected {
    /// Requests encoded.
    pub(crate) batches: usize,
    /// Their bytes in all.
    pub(crate) bytes: usize,
    /// Data points left out, each alone larger than the limit.
    pub(crate) oversized: u64,
}

/// Encodes collections of one registry, for one resource, with one start time.
#[derive(Debug)]
pub(crate) struct Encoder {
    resource: Resource,
    scope: InstrumentationScope,
    start_unix_nano: u64,
    max_batch_bytes: usize,
}

impl Encoder {
    pub(crate) fn new(config: &OtlpConfig, start: SystemTime) -> Self {
        let resource = Resource {
            attributes: config.resource.iter().map(|(k, v)| string_attribute(k, v.clone())).collect(),
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "plimsoll".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        Self { resource, scope, start_unix_nano: unix_nano(start), max_batch_bytes: config.max_batch_bytes }
    }

    /// Encodes every family of `registry` as of `now` and passes each request to `emit`.
    pub(crate) fn collect<const F: usize>(
        &self,
        registry: &Registry<F>,
        now: SystemTime,
        emit: &mut dyn FnMut(Bytes),
    ) -> Collected {
        let now = unix_nano(now);
        let mut batcher = Batcher::new(self, emit);
        for family in registry.families() {
            let header = header(family);
            for slot in 0..family.slots() {
                if let Some(sample) = family.sample(slot) {
                    batcher.add(&header, self.point(family, slot, sample, now));
                }
            }
            batcher.close_metric();
        }
        for own in OWN_COUNTERS {
            let header = Metric {
                name: own.name.to_owned(),
                description: own.help.to_owned(),
                data: Some(empty_data(MetricKind::Counter)),
                ..Metric::default()
            };
            for family in registry.families().filter(|&f| own.applies_to(f)) {
                let attributes = vec![string_attribute("family", family.descriptor().name.to_owned())];
                let point = self.number(attributes, now, counter_value(own.value(family)));
                batcher.add(&header, Point::Number(point));
            }
            batcher.close_metric();
        }
        batcher.finish()
    }

    fn point(&self, family: &dyn Exposable, slot: usize, sample: Sample<'_>, now: u64) -> Point {
        let attributes = attributes(family, slot);
        match sample {
            Sample::Counter(v) => Point::Number(self.number(attributes, now, counter_value(v))),
            Sample::Gauge(v) => Point::Number(self.number(attributes, now, number_data_point::Value::AsInt(v))),
            Sample::GaugeF64(v) => Point::Number(self.number(attributes, now, number_data_point::Value::AsDouble(v))),
            Sample::Histogram(h) => Point::Exponential(self.exponential(attributes, now, h)),
        }
    }

    fn number(&self, attributes: Vec<KeyValue>, now: u64, value: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: self.start_unix_nano,
            time_unix_nano: now,
            value: Some(value),
            ..NumberDataPoint::default()
        }
    }

    /// One read of the histogram's buckets: the count is that of the buckets read, so
    /// `count == zero_count + Σ bucket_counts` holds even while others record.
    fn exponential(&self, attributes: Vec<KeyValue>, now: u64, h: &dyn HistogramRead) -> ExponentialHistogramDataPoint {
        let mut offset: Option<i32> = None;
        let mut counts: Vec<u64> = Vec::new();
        let mut total = 0u64;
        let zero = h.native_buckets(&mut |native, count| {
            let index = native - 1;
            let first = *offset.get_or_insert(index);
            // Indices come in increasing order; the gaps between them are empty buckets.
            let position = usize::try_from(index - first).expect("native buckets in increasing order");
            counts.resize(position, 0);
            counts.push(count);
            total += count;
        });
        ExponentialHistogramDataPoint {
            attributes,
            start_time_unix_nano: self.start_unix_nano,
            time_unix_nano: now,
            count: zero + total,
            sum: Some(h.sum()),
            scale: i32::from(h.schema()),
            zero_count: zero,
            zero_threshold: h.zero_threshold(),
            positive: Some(Buckets { offset: offset.unwrap_or(0), bucket_counts: counts }),
            ..ExponentialHistogramDataPoint::default()
        }
    }
}

/// A data point of either shape.
enum Point {
    Number(NumberDataPoint),
    Exponential(ExponentialHistogramDataPoint),
}

impl Point {
    fn encoded_len(&self) -> usize {
        match self {
            Self::Number(p) => p.encoded_len(),
            Self::Exponential(p) => p.encoded_len(),
        }
    }
}

/// Fills requests up to the limit and hands each over when the next point would not fit.
struct Batcher<'a> {
    encoder: &'a Encoder,
    emit: &'a mut dyn FnMut(Bytes),
    metrics: Vec<Metric>,
    /// Whether the last of `metrics` is the family being added to.
    open: bool,
    /// The encoded size of a request with no metric, plus the growth of its prefixes.
    base: usize,
    /// An upper bound of the encoded size of the request so far.
    bound: usize,
    out: Collected,
}

impl<'a> Batcher<'a> {
    fn new(encoder: &'a Encoder, emit: &'a mut dyn FnMut(Bytes)) -> Self {
        let base = request(encoder, Vec::new()).encoded_len() + 2 * PREFIX;
        Self { encoder, emit, metrics: Vec::new(), open: false, base, bound: base, out: Collected::default() }
    }

    /// Adds `point` to the metric described by `header` (its data empty), starting a new
    /// request first if it would not fit in this one.
    fn add(&mut self, header: &Metric, point: Point) {
        let limit = self.encoder.max_batch_bytes;
        let point_cost = point.encoded_len() + PREFIX;
        // The metric's own prefix in the scope and its data's prefix may grow.
        let header_cost = header.encoded_len() + 2 * PREFIX;
        let needed = if self.open { point_cost } else { header_cost + point_cost };
        if self.bound + needed > limit && !self.metrics.is_empty() {
            self.flush();
        }
        let needed = if self.open { point_cost } else { header_cost + point_cost };
        if self.bound + needed > limit {
            self.out.oversized += 1;
            return;
        }
        if !self.open {
            self.metrics.push(header.clone());
            self.open = true;
        }
        self.bound += needed;
        let data = self.metrics.last_mut().and_then(|m| m.data.as_mut());
        match (data, point) {
            (Some(metric::Data::Sum(sum)), Point::Number(p)) => sum.data_points.push(p),
            (Some(metric::Data::Gauge(gauge)), Point::Number(p)) => gauge.data_points.push(p),
            (Some(metric::Data::ExponentialHistogram(h)), Point::Exponential(p)) => h.data_points.push(p),
            _ => unreachable!("a family's samples all have the family's type"),
        }
    }

    /// The family is done: its next point, if any, starts a new metric.
    fn close_metric(&mut self) {
        self.open = false;
    }

    /// Encodes the request so far and hands it over.
    fn flush(&mut self) {
        let metrics = std::mem::take(&mut self.metrics);
        let encoded = request(self.encoder, metrics).encode_to_vec();
        assert!(encoded.len() <= self.encoder.max_batch_bytes, "the size bound holds");
        self.out.batches += 1;
        self.out.bytes += encoded.len();
        (self.emit)(Bytes::from(encoded));
        self.open = false;
        self.bound = self.base;
    }

    fn finish(mut self) -> Collected {
        if !self.metrics.is_empty() {
            self.flush();
        }
        self.out
    }
}

fn request(encoder: &Encoder, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(encoder.resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(encoder.scope.clone()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The family's metric with no data points yet.
fn header(family: &dyn Exposable) -> Metric {
    let d = family.descriptor();
    Metric {
        name: d.name.to_owned(),
        description: d.help.to_owned(),
        unit: d.unit.map(ucum).unwrap_or_default().to_owned(),
        data: Some(empty_data(d.kind)),
        ..Metric::default()
    }
}

fn empty_data(kind: MetricKind) -> metric::Data {
    let cumulative = AggregationTemporality::Cumulative as i32;
    match kind {
        MetricKind::Counter => {
            metric::Data::Sum(Sum { data_points: Vec::new(), aggregation_temporality: cumulative, is_monotonic: true })
        }
        MetricKind::Gauge => metric::Data::Gauge(Gauge { data_points: Vec::new() }),
        MetricKind::Histogram => metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
        }),
    }
}

/// The UCUM unit OpenTelemetry uses for a Prometheus base unit; other units as they are.
fn ucum(unit: &'static str) -> &'static str {
    match unit {
        "seconds" => "s",
        "milliseconds" => "ms",
        "bytes" => "By",
        "ratio" => "1",
        "celsius" => "Cel",
        "volts" => "V",
        "amperes" => "A",
        "joules" => "J",
        "grams" => "g",
        "meters" => "m",
        other => other,
    }
}

/// Counters are `u64`; OTLP integers are `i64`, so the (unlikely) values above `i64::MAX`
/// go as doubles rather than wrap.
fn counter_value(value: u64) -> number_data_point::Value {
    match i64::try_from(value) {
        Ok(v) => number_data_point::Value::AsInt(v),
        Err(_) => number_data_point::Value::AsDouble(value as f64),
    }
}

/// The series' labels as string attributes; the overflow series also gets
/// `otel.metric.overflow = true`.
fn attributes(family: &dyn Exposable, slot: usize) -> Vec<KeyValue> {
    let names = family.descriptor().label_names;
    let mut value = [0u8; MAX_LABEL_VALUE_LEN];
    let mut out: Vec<KeyValue> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let len = family.label_value(slot, i, &mut value);
            // Values were copied in from `&str`s, whole, so they are UTF-8.
            string_attribute(name, String::from_utf8_lossy(&value[..len]).into_owned())
        })
        .collect();
    let overflow = !out.is_empty()
        && out.iter().all(|kv| matches!(&kv.value, Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }) if v == OVERFLOW_LABEL_VALUE));
    if overflow {
        out.push(KeyValue {
            key: "otel.metric.overflow".to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
            ..KeyValue::default()
        });
    }
    out
}

fn string_attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }),
        ..KeyValue::default()
    }
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nano(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::config::{Endpoint, MIN_BATCH_BYTES};
    use plimsoll_core::{Counter, Family, Histogram, Unlabelled};

    fn config(max_batch_bytes: usize) -> OtlpConfig {
        let mut config = OtlpConfig::new(Endpoint::parse("http://127.0.0.1:4318/v1/metrics").unwrap());
        config.max_batch_bytes = max_batch_bytes;
        config
    }

    fn collect<const F: usize>(registry: &Registry<F>, max: usize) -> (Vec<ExportMetricsServiceRequest>, Collected) {
        let encoder = Encoder::new(&config(max), SystemTime::UNIX_EPOCH);
        let mut batches = Vec::new();
        let collected = encoder.collect(registry, SystemTime::now(), &mut |bytes| {
            assert!(bytes.len() <= max, "{} > {max}", bytes.len());
            batches.push(ExportMetricsServiceRequest::decode(bytes).unwrap());
        });
        (batches, collected)
    }

    fn points(batches: &[ExportMetricsServiceRequest], name: &str) -> usize {
        batches
            .iter()
            .flat_map(|b| &b.resource_metrics[0].scope_metrics[0].metrics)
            .filter(|m| m.name == name)
            .map(|m| match &m.data {
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                _ => 0,
            })
            .sum()
    }

    /// A registry far larger than the limit is split into requests that each fit, and no
    /// point is lost.
    #[test]
    fn large_collections_split_within_the_limit() {
        static REGISTRY: Registry<4> = Registry::new();
        static COUNTERS: Family<Counter, 1, 512> = Family::new("many", "Many series.", ["key"]);
        static HISTOGRAMS: Family<Histogram<3, -10, 160>, 1, 16> = Family::new("spread", "Spread.", ["key"]);
        REGISTRY.register(&COUNTERS).unwrap();
        REGISTRY.register(&HISTOGRAMS).unwrap();
        for i in 0..500 {
            COUNTERS.with_label_values(&[&format!("series-{i:04}-{}", "x".repeat(40))]).inc_by(i);
        }
        for i in 0..16 {
            let h = HISTOGRAMS.with_label_values(&[&format!("h{i}")]);
            for v in 0..1_000 {
                h.record(f64::from(v) * 0.01 + 0.001);
            }
        }
        let (batches, collected) = collect(&REGISTRY, MIN_BATCH_BYTES);
        assert!(batches.len() > 5, "{}", batches.len());
        assert_eq!(collected.batches, batches.len());
        assert_eq!(collected.oversized, 0);
        assert_eq!(points(&batches, "many"), 500);
        assert_eq!(points(&batches, "spread"), 16);
        for batch in &batches {
            let rm = &batch.resource_metrics[0];
            assert!(rm.resource.as_ref().is_some_and(|r| !r.attributes.is_empty()));
            assert_eq!(rm.scope_metrics[0].scope.as_ref().unwrap().name, "plimsoll");
        }
    }

    /// A point larger than the limit alone is left out and counted; the rest is sent.
    #[test]
    fn oversized_points_are_counted() {
        static REGISTRY: Registry<2> = Registry::new();
        static WIDE: Unlabelled<Histogram<8, -10, 5_000>> = Unlabelled::new("wide", "Every bucket used.");
        static SMALL: Unlabelled<Counter> = Unlabelled::new("small", "One value.");
        REGISTRY.register(&WIDE).unwrap();
        REGISTRY.register(&SMALL).unwrap();
        let mut v = Histogram::<8, -10, 5_000>::ZERO_THRESHOLD * 1.001;
        while v < Histogram::<8, -10, 5_000>::MAX {
            WIDE.record(v);
            v *= 1.002;
        }
        SMALL.inc();
        let (batches, collected) = collect(&REGISTRY, MIN_BATCH_BYTES);
        assert_eq!(collected.oversized, 1);
        assert_eq!(points(&batches, "small"), 1);
        assert_eq!(points(&batches, "wide"), 0);
    }
}
