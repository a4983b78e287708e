//! The Prometheus protobuf exposition: a stream of varint-length-delimited
//! `io.prometheus.client.MetricFamily` messages (`metrics.proto`), as Prometheus asks for
//! when it scrapes native histograms.
//!
//! Each series is one `MetricFamily` message holding one `Metric`: the family's help text
//! is sent with its first series only, and its name and type with each (Prometheus reads
//! every message on its own). Plimsoll's own counters follow, one message per family
//! they apply to, as in the text formats. Counter and gauge values are `double`s, as the
//! format has it (exact up to 2^53).
//!
//! A histogram series carries both layouts from one reading of its buckets: the native
//! histogram (schema, zero threshold, zero count, positive spans and deltas) and the
//! classic `le` buckets of its family (the `+Inf` bucket is implied by the count, as in
//! the Go client). Its `sample_count` is the zero count plus the native buckets it
//! sends, so the two always agree. Observations above the histogram's range are sent in
//! the native bucket just past it (see [`HistogramRead::native_buckets`]). Runs of up
//! to two empty buckets between used ones are sent as zero deltas inside one span, which
//! is shorter than starting a new span; `sample_sum` is read separately from the counts.
//!
//! # Lengths without a tree
//!
//! A length-delimited field needs its length before its bytes. A series' message is
//! written straight into the caller's buffer with five bytes reserved for each length
//! (enough for any length below 2^35), and when the field ends its length is written and
//! the bytes after it move left over the unused reservation. Each histogram is thus read
//! once, whereas measuring first and writing after would read it twice and could write
//! counts that disagree with the lengths already sent. A message is the unit of
//! [`Renderer::render`]: it is written whole or not at all, and
//! [`Registry::max_message_len`](crate::Registry::max_message_len) bounds its size.
//!
//! [`HistogramRead::native_buckets`]: crate::HistogramRead::native_buckets

use super::{Out, Position, Renderer, Series};
use crate::family::{Descriptor, Exposable};
use crate::metric::{HistogramRead, MetricKind, Sample};
use crate::registry::OWN_COUNTERS;
use crate::{MAX_CLASSIC_BUCKETS, MAX_LABEL_VALUE_LEN};

/// Field numbers of `io.prometheus.client` messages.
mod field {
    pub(super) const FAMILY_NAME: u32 = 1;
    pub(super) const FAMILY_HELP: u32 = 2;
    pub(super) const FAMILY_TYPE: u32 = 3;
    pub(super) const FAMILY_METRIC: u32 = 4;

    pub(super) const METRIC_LABEL: u32 = 1;
    pub(super) const METRIC_GAUGE: u32 = 2;
    pub(super) const METRIC_COUNTER: u32 = 3;
    pub(super) const METRIC_HISTOGRAM: u32 = 7;

    pub(super) const LABEL_NAME: u32 = 1;
    pub(super) const LABEL_VALUE: u32 = 2;

    /// `Counter.value` and `Gauge.value`.
    pub(super) const VALUE: u32 = 1;

    pub(super) const HISTOGRAM_COUNT: u32 = 1;
    pub(super) const HISTOGRAM_SUM: u32 = 2;
    pub(super) const HISTOGRAM_BUCKET: u32 = 3;
    pub(super) const HISTOGRAM_SCHEMA: u32 = 5;
    pub(super) const HISTOGRAM_ZERO_THRESHOLD: u32 = 6;
    pub(super) const HISTOGRAM_ZERO_COUNT: u32 = 7;
    pub(super) const HISTOGRAM_POSITIVE_SPAN: u32 = 12;
    pub(super) const HISTOGRAM_POSITIVE_DELTA: u32 = 13;

    pub(super) const HISTOGRAM_EXEMPLARS: u32 = 16;

    pub(super) const BUCKET_CUMULATIVE_COUNT: u32 = 1;
    pub(super) const BUCKET_UPPER_BOUND: u32 = 2;
    pub(super) const BUCKET_EXEMPLAR: u32 = 3;

    pub(super) const EXEMPLAR_LABEL: u32 = 1;
    pub(super) const EXEMPLAR_VALUE: u32 = 2;
    pub(super) const EXEMPLAR_TIMESTAMP: u32 = 3;

    pub(super) const TIMESTAMP_SECONDS: u32 = 1;
    pub(super) const TIMESTAMP_NANOS: u32 = 2;

    pub(super) const SPAN_OFFSET: u32 = 1;
    pub(super) const SPAN_LENGTH: u32 = 2;
}

/// `MetricType` values.
const fn metric_type(kind: MetricKind) -> u64 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 4,
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;

/// Bytes reserved for a length before the field's bytes are written.
const LENGTH_RESERVE: usize = 5;
/// The most empty buckets sent as zero deltas rather than as the gap between two spans.
const MAX_FILLED_GAP: i32 = 2;
/// Longest varint (a `u64`).
const MAX_VARINT_LEN: usize = 10;

/// `value` as a varint into `out`; returns its length.
fn encode_varint(mut value: u64, out: &mut [u8; MAX_VARINT_LEN]) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        out[len] = value as u8 | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    len + 1
}

const fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

impl Out<'_> {
    fn varint(&mut self, value: u64) {
        let mut bytes = [0; MAX_VARINT_LEN];
        let len = encode_varint(value, &mut bytes);
        self.bytes(&bytes[..len]);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire_type)));
    }

    fn double_field(&mut self, field: u32, value: f64) {
        self.key(field, FIXED64);
        self.bytes(&value.to_le_bytes());
    }

    fn uint_field(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        self.varint(value);
    }

    fn sint_field(&mut self, field: u32, value: i64) {
        self.key(field, VARINT);
        self.varint(zigzag(value));
    }

    fn bytes_field(&mut self, field: u32, parts: &[&[u8]]) {
        self.key(field, LENGTH_DELIMITED);
        self.varint(parts.iter().map(|p| p.len() as u64).sum());
        for part in parts {
            self.bytes(part);
        }
    }

    /// Starts a length-delimited field (`None`: the stream's own message prefix) and
    /// returns where its length goes; [`close`](Self::close) ends it.
    fn open(&mut self, field: Option<u32>) -> usize {
        if let Some(field) = field {
            self.key(field, LENGTH_DELIMITED);
        }
        let at = self.len;
        self.len += LENGTH_RESERVE;
        at
    }

    /// Ends the field opened at `at`: writes its length and moves its bytes up to it.
    fn close(&mut self, at: usize) {
        let start = at + LENGTH_RESERVE;
        let mut length = [0; MAX_VARINT_LEN];
        let n = encode_varint((self.len - start) as u64, &mut length);
        // A message longer than 2^35 bytes would need more; no buffer comes near.
        debug_assert!(n <= LENGTH_RESERVE);
        // Past the buffer's end some bytes were dropped: the length stays past the end
        // too, so the message is rolled back whole (its stated size then overstates it
        // by the unused reservations).
        if self.len <= self.buf.len() {
            self.buf[at..at + n].copy_from_slice(&length[..n]);
            self.buf.copy_within(start..self.len, at + n);
            self.len -= LENGTH_RESERVE.saturating_sub(n);
        }
    }
}

/// The positive spans and deltas of one native histogram, written as its buckets are
/// read: each span's deltas as one packed chunk, then the span (field order does not
/// matter in protobuf, and repeated fields concatenate).
struct NativeWriter {
    /// Where the open delta chunk's length goes.
    chunk: usize,
    /// The open span's offset (from the previous span's end, or absolute for the first).
    offset: i32,
    /// Buckets in the open span.
    len: u32,
    /// The last bucket index written.
    last: Option<i32>,
    /// The last bucket count written.
    previous: u64,
}

impl NativeWriter {
    fn bucket(&mut self, out: &mut Out<'_>, index: i32, count: u64) {
        match self.last {
            None => {
                self.offset = index;
                self.chunk = out.open(Some(field::HISTOGRAM_POSITIVE_DELTA));
            }
            Some(last) if index - last - 1 <= MAX_FILLED_GAP => {
                for _ in last + 1..index {
                    self.delta(out, 0);
                }
            }
            Some(last) => {
                self.end_span(out);
                self.offset = index - last - 1;
                self.chunk = out.open(Some(field::HISTOGRAM_POSITIVE_DELTA));
            }
        }
        self.delta(out, count);
        self.last = Some(index);
    }

    fn delta(&mut self, out: &mut Out<'_>, count: u64) {
        out.varint(zigzag(count.wrapping_sub(self.previous) as i64));
        self.previous = count;
        self.len += 1;
    }

    fn end_span(&mut self, out: &mut Out<'_>) {
        out.close(self.chunk);
        let span = out.open(Some(field::HISTOGRAM_POSITIVE_SPAN));
        out.sint_field(field::SPAN_OFFSET, i64::from(self.offset));
        out.uint_field(field::SPAN_LENGTH, u64::from(self.len));
        out.close(span);
        self.len = 0;
    }

    /// Ends the last span; a histogram without positive buckets gets the no-op span
    /// (offset 0, length 0) that marks a native histogram as one.
    fn finish(&mut self, out: &mut Out<'_>) {
        if self.last.is_some() {
            self.end_span(out);
        } else {
            let span = out.open(Some(field::HISTOGRAM_POSITIVE_SPAN));
            out.close(span);
        }
    }
}

/// Which family's help text was last sent, so that each is sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HelpSent {
    /// A registered family (registry index).
    Family(usize),
    /// One of Plimsoll's own counters.
    Own(usize),
}

impl<const F: usize> Renderer<'_, F> {
    /// Writes the message at the cursor (or nothing, for empty slots) and returns the
    /// position after it.
    pub(super) fn write_protobuf(&mut self, out: &mut Out<'_>) -> Position {
        match self.at {
            Position::Family { index, family, slots, line } => match line {
                super::FamilyLine::Series { slot, .. } if slot >= slots => self.family_start(index + 1),
                super::FamilyLine::Series { slot, line } => {
                    if let Some(sample) = family.sample(slot) {
                        self.write_series_message(out, Series { index, family, slot }, sample);
                    }
                    let line = super::FamilyLine::Series { slot: slot + 1, line };
                    Position::Family { index, family, slots, line }
                }
                _ => {
                    let line = super::FamilyLine::Series { slot: 0, line: 0 };
                    Position::Family { index, family, slots, line }
                }
            },
            Position::Own { counter, line } => {
                let Some(own) = OWN_COUNTERS.get(counter) else {
                    return Position::Done;
                };
                let (name, help) = (own.name, own.help);
                let index = match line {
                    super::OwnLine::Family(index) => index,
                    super::OwnLine::Help | super::OwnLine::Type => 0,
                };
                let next = Position::Own { counter, line: super::OwnLine::Family(index + 1) };
                match self.registry.get(index) {
                    None => Position::Own { counter: counter + 1, line: super::OwnLine::Help },
                    Some(family) if !own.applies_to(family) => next,
                    Some(family) => {
                        let message = out.open(None);
                        out.bytes_field(field::FAMILY_NAME, &[name.as_bytes(), b"_total"]);
                        if self.help_sent != Some(HelpSent::Own(counter)) {
                            out.bytes_field(field::FAMILY_HELP, &[help.as_bytes()]);
                            self.help_sent = Some(HelpSent::Own(counter));
                        }
                        out.uint_field(field::FAMILY_TYPE, metric_type(MetricKind::Counter));
                        let metric = out.open(Some(field::FAMILY_METRIC));
                        let label = out.open(Some(field::METRIC_LABEL));
                        out.bytes_field(field::LABEL_NAME, &[b"family"]);
                        out.bytes_field(field::LABEL_VALUE, &[family.descriptor().name.as_bytes()]);
                        out.close(label);
                        let counter_message = out.open(Some(field::METRIC_COUNTER));
                        out.double_field(field::VALUE, own.value(family) as f64);
                        out.close(counter_message);
                        out.close(metric);
                        out.close(message);
                        next
                    }
                }
            }
            Position::Eof | Position::Done => Position::Done,
        }
    }

    /// One series as one `MetricFamily` message.
    fn write_series_message(&mut self, out: &mut Out<'_>, series: Series<'_>, sample: Sample<'_>) {
        let d = series.family.descriptor();
        let message = out.open(None);
        let suffix: &[u8] = if d.kind == MetricKind::Counter { b"_total" } else { b"" };
        out.bytes_field(field::FAMILY_NAME, &[d.name.as_bytes(), suffix]);
        if self.help_sent != Some(HelpSent::Family(series.index)) {
            if !d.help.is_empty() {
                out.bytes_field(field::FAMILY_HELP, &[d.help.as_bytes()]);
            }
            self.help_sent = Some(HelpSent::Family(series.index));
        }
        out.uint_field(field::FAMILY_TYPE, metric_type(d.kind));
        let metric = out.open(Some(field::FAMILY_METRIC));
        let mut value = [0u8; MAX_LABEL_VALUE_LEN];
        for (i, name) in d.label_names.iter().enumerate() {
            let len = series.family.label_value(series.slot, i, &mut value);
            let label = out.open(Some(field::METRIC_LABEL));
            out.bytes_field(field::LABEL_NAME, &[name.as_bytes()]);
            out.bytes_field(field::LABEL_VALUE, &[&value[..len]]);
            out.close(label);
        }
        let (kind, number) = match sample {
            Sample::Counter(v) => (field::METRIC_COUNTER, v as f64),
            Sample::Gauge(v) => (field::METRIC_GAUGE, v as f64),
            Sample::GaugeF64(v) => (field::METRIC_GAUGE, v),
            Sample::Histogram(histogram) => {
                self.write_histogram(out, series, histogram);
                out.close(metric);
                out.close(message);
                return;
            }
        };
        let value_message = out.open(Some(kind));
        out.double_field(field::VALUE, number);
        out.close(value_message);
        out.close(metric);
        out.close(message);
    }

    /// The `Histogram` message of one series, from one reading of its buckets.
    fn write_histogram(&mut self, out: &mut Out<'_>, series: Series<'_>, histogram: &dyn HistogramRead) {
        self.le_bounds(series.index, series.family, histogram);
        self.read_exemplars(histogram, series.family.descriptor().exemplars);
        let message = out.open(Some(field::METRIC_HISTOGRAM));
        let le = &self.le;
        let cumulative = &mut self.reading.counts;
        let mut native = NativeWriter { chunk: 0, offset: 0, len: 0, last: None, previous: 0 };
        let (mut total, mut next_edge) = (0u64, 0);
        let zero = histogram.native_buckets(&mut |index, count| {
            while next_edge < le.len && le.indices[next_edge] < index {
                cumulative[next_edge] = total;
                next_edge += 1;
            }
            total += count;
            native.bucket(out, index, count);
        });
        native.finish(out);
        for c in &mut cumulative[next_edge..le.len] {
            *c = total;
        }
        out.sint_field(field::HISTOGRAM_SCHEMA, i64::from(histogram.schema()));
        out.double_field(field::HISTOGRAM_ZERO_THRESHOLD, histogram.zero_threshold());
        out.uint_field(field::HISTOGRAM_ZERO_COUNT, zero);
        let reading = &self.reading;
        for (i, (edge, count)) in le.edges[..le.len].iter().zip(&reading.counts[..le.len]).enumerate() {
            let bucket = out.open(Some(field::HISTOGRAM_BUCKET));
            out.uint_field(field::BUCKET_CUMULATIVE_COUNT, zero + count);
            out.double_field(field::BUCKET_UPPER_BOUND, *edge);
            if let Some(exemplar) = reading.exemplar(i) {
                write_exemplar(out, field::BUCKET_EXEMPLAR, exemplar);
            }
            out.close(bucket);
        }
        // The native histogram's own exemplars (which must have time stamps): the same
        // ones, with the `+Inf` bucket's.
        for exemplar in reading.exemplars[..reading.exemplars_read].iter().flatten() {
            write_exemplar(out, field::HISTOGRAM_EXEMPLARS, exemplar);
        }
        out.double_field(field::HISTOGRAM_SUM, histogram.sum());
        out.uint_field(field::HISTOGRAM_COUNT, zero + total);
        out.close(message);
    }
}

/// An `Exemplar` message as field `field`: the `trace_id` label, the value, the time.
fn write_exemplar(out: &mut Out<'_>, field: u32, exemplar: &crate::Exemplar) {
    let message = out.open(Some(field));
    let label = out.open(Some(field::EXEMPLAR_LABEL));
    out.bytes_field(field::LABEL_NAME, &[b"trace_id"]);
    out.bytes_field(field::LABEL_VALUE, &[&super::hex(&exemplar.trace_id)]);
    out.close(label);
    out.double_field(field::EXEMPLAR_VALUE, exemplar.value);
    let timestamp = out.open(Some(field::EXEMPLAR_TIMESTAMP));
    out.uint_field(field::TIMESTAMP_SECONDS, exemplar.timestamp_ms / 1_000);
    out.uint_field(field::TIMESTAMP_NANOS, exemplar.timestamp_ms % 1_000 * 1_000_000);
    out.close(timestamp);
    out.close(message);
}

/// The longest `Exemplar` field [`write_exemplar`] writes.
const MAX_EXEMPLAR_LEN: usize =
    2 + LENGTH_RESERVE + (1 + LENGTH_RESERVE + 2 + 8 + 2 + 32) + 9 + (1 + LENGTH_RESERVE + 11 + 6);

/// The longest message a family's series (or an own counter of it) renders to, with the
/// reservations of the fields still open while it is written.
pub(crate) fn max_message_len_of(family: &dyn Exposable) -> usize {
    let d: Descriptor<'_> = family.descriptor();
    let length = 1 + LENGTH_RESERVE;
    let value = family.label_value_capacity().max(crate::OVERFLOW_LABEL_VALUE.len());
    let labels: usize = d.label_names.iter().map(|name| length + 2 * (1 + 2) + name.len() + value).sum();
    let header = length + (1 + 2 + d.name.len() + "_total".len()) + (1 + 2 + d.help.len()) + 2 + length;
    let body = match d.kind {
        MetricKind::Counter | MetricKind::Gauge => length + 9,
        MetricKind::Histogram => {
            // Spans and deltas: with `s` spans, each after a gap of more than
            // `MAX_FILLED_GAP` empty buckets, at most `buckets - gap * (s - 1)` buckets
            // are sent (a filled empty one as a 1-byte delta, a used one in at most
            // `MAX_VARINT_LEN`). That is linear in `s`, so its largest value is at one end.
            let buckets = d.native_buckets;
            let gap = MAX_FILLED_GAP as usize + 1;
            let span = length + length + 2 * (1 + 5);
            let with_spans = |s: usize| buckets.saturating_sub(gap * (s - 1)) * MAX_VARINT_LEN + s * span;
            let native = with_spans(1).max(with_spans(buckets.div_ceil(gap + 1).max(1)));
            let classic = d.buckets.len().min(MAX_CLASSIC_BUCKETS) * (length + 1 + MAX_VARINT_LEN + 9);
            let classic_buckets = d.buckets.len().min(MAX_CLASSIC_BUCKETS);
            let exemplars = if d.exemplars { (2 * classic_buckets + 1) * MAX_EXEMPLAR_LEN } else { 0 };
            length + native + classic + exemplars + (1 + 5) + 9 + 2 * (1 + MAX_VARINT_LEN) + 9
        }
    };
    let own = 2 * length + 128 + length + 2 * 3 + "family".len() + d.name.len() + length + 9;
    (header + labels + body).max(own)
}
