//! Prometheus text 0.0.4, OpenMetrics 1.0 and Prometheus protobuf exposition into a
//! caller's fixed buffer.
//!
//! A [`Renderer`] is a resumable cursor over the registry: each call to
//! [`render`](Renderer::render) writes as many whole lines as fit and returns how many
//! bytes it wrote; the caller sends them and calls again until
//! [`is_done`](Renderer::is_done). A scrape of any size thus needs one buffer of at least
//! [`Registry::max_line_len`](crate::Registry::max_line_len) bytes, and no allocation.
//!
//! Order is deterministic: families in registration order, series in table order (a
//! series keeps its slot for the life of the process, so the order is stable), then
//! Plimsoll's own counters (`plimsoll_series_overflow_total`,
//! `plimsoll_label_value_rejected_total`, `plimsoll_observations_rejected_total`,
//! one series per family they apply to), then `# EOF` for OpenMetrics.
//!
//! A histogram series is read once, when its first line is written: its buckets,
//! `_sum` and `_count` come from that one reading even if the buffer fills halfway, so
//! `_count` always equals the `+Inf` bucket. `_created` samples are not written (the core
//! never reads a clock).
//!
//! The [protobuf format](protobuf) is written by the same cursor, one message per series
//! where the text formats write one line.

use crate::family::Exposable;
use crate::metric::{MetricKind, Sample};
use crate::registry::OWN_COUNTERS;
use crate::{Exemplar, MAX_CLASSIC_BUCKETS, MAX_LABEL_VALUE_LEN, Registry, RenderError};
use core::ops::Range;

pub mod protobuf;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus protobuf: length-delimited `io.prometheus.client.MetricFamily`
    /// messages, with native histograms ([`protobuf`]).
    Protobuf,
}

impl Format {
    /// The HTTP `Content-Type` of this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

/// Where the cursor stands: the next line to write.
#[derive(Clone, Copy)]
enum Position {
    Family { index: usize, family: &'static dyn Exposable, slots: usize, line: FamilyLine },
    Own { counter: usize, line: OwnLine },
    Eof,
    Done,
}

#[derive(Clone, Copy)]
enum FamilyLine {
    Help,
    Type,
    Unit,
    Series { slot: usize, line: usize },
}

#[derive(Clone, Copy)]
enum OwnLine {
    Help,
    Type,
    Family(usize),
}

/// A histogram family's `le` bounds, snapped and formatted once per family; each text is
/// followed by the `"} ` that ends a bucket line's labels.
struct LeBounds {
    /// The family (registry index) they belong to.
    family: Option<usize>,
    edges: [f64; MAX_CLASSIC_BUCKETS],
    /// The native index of the bucket each edge is the upper edge of.
    indices: [i32; MAX_CLASSIC_BUCKETS],
    text: [[u8; MAX_NUMBER_LEN + 3]; MAX_CLASSIC_BUCKETS],
    text_len: [u8; MAX_CLASSIC_BUCKETS],
    len: usize,
}

/// One reading of a histogram series, reused by all its lines.
struct HistogramReading {
    counts: [u64; MAX_CLASSIC_BUCKETS],
    count: u64,
    sum: f64,
    /// The latest exemplar of each classic bucket (the last one is `+Inf`'s), valid up to
    /// `exemplars_read` (0 when the series keeps none or the format shows none).
    exemplars: [Option<Exemplar>; MAX_CLASSIC_BUCKETS + 1],
    exemplars_read: usize,
}

impl HistogramReading {
    /// The exemplar read for classic bucket `bucket` (`+Inf` is the last).
    fn exemplar(&self, bucket: usize) -> Option<&Exemplar> {
        self.exemplars[..self.exemplars_read].get(bucket)?.as_ref()
    }
}

/// Where part of the current series' text already stands in this call's buffer, so the
/// series' next lines copy it instead of reading and escaping the values again: its label
/// block (`{name="value",...`, without the closing brace), or a histogram's bucket-line
/// prefix (`name_bucket{labels,le="`).
#[derive(Clone, Copy)]
struct InBuffer {
    family: usize,
    slot: usize,
    start: usize,
    end: usize,
}

/// Longest rendering of a `u64`, `i64` or `f64` value.
pub(crate) const MAX_NUMBER_LEN: usize = 24;

/// Closes a sample's labels (if any) before its value.
fn end_labels(out: &mut Out<'_>, has_labels: bool) {
    out.bytes(if has_labels { b"} " } else { b" " });
}

/// A resumable cursor that renders a registry into fixed buffers. See the
/// [module docs](self).
pub struct Renderer<'r, const F: usize> {
    registry: &'r Registry<F>,
    format: Format,
    at: Position,
    le: LeBounds,
    reading: HistogramReading,
    labels: Option<InBuffer>,
    bucket_prefix: Option<InBuffer>,
    help_sent: Option<protobuf::HelpSent>,
}

impl<const F: usize> core::fmt::Debug for Renderer<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Renderer").field("format", &self.format).field("done", &self.is_done()).finish()
    }
}

/// A byte writer over a fixed buffer that keeps counting past its end, so a line that
/// does not fit can be rolled back and its length reported.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            copy_short(dst, bytes);
        }
        self.len = end;
    }

    #[inline]
    fn byte(&mut self, byte: u8) {
        if let Some(dst) = self.buf.get_mut(self.len) {
            *dst = byte;
        }
        self.len += 1;
    }

    /// Writes `text` with `\\`, newline and (if `quote`) `"` escaped, copying the runs
    /// between them whole.
    fn escaped(&mut self, text: &[u8], quote: bool) {
        let mut rest = text;
        while let Some(i) = rest.iter().position(|&b| b == b'\\' || b == b'\n' || (quote && b == b'"')) {
            self.bytes(&rest[..i]);
            self.bytes(match rest[i] {
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                _ => b"\\\"",
            });
            rest = &rest[i + 1..];
        }
        self.bytes(rest);
    }

    /// Writes `value` in decimal; a single digit, the most common count, directly.
    #[inline]
    fn u64(&mut self, value: u64) {
        match value {
            0..=9 => self.byte(b'0' + value as u8),
            _ => self.bytes(itoa::Buffer::new().format(value).as_bytes()),
        }
    }

    fn i64(&mut self, value: i64) {
        self.bytes(itoa::Buffer::new().format(value).as_bytes());
    }

    fn f64(&mut self, value: f64) {
        self.bytes(format_f64(value, &mut itoa::Buffer::new(), &mut ryu::Buffer::new()));
    }

    /// Appends a copy of `range`, an earlier part of this buffer.
    #[inline(always)]
    fn repeat(&mut self, range: Range<usize>) {
        let end = self.len + range.len();
        if end <= self.buf.len() {
            let (written, free) = self.buf.split_at_mut(self.len);
            copy_short(&mut free[..range.len()], &written[range]);
        }
        self.len = end;
    }
}

/// `dst.copy_from_slice(src)` (same lengths, no overlap) for the short pieces lines are
/// made of, without a call to `memcpy`: up to 64 bytes move as overlapping words.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    match n {
        33..=64 => {
            copy_word::<16>(dst, src, 0);
            copy_word::<16>(dst, src, 16);
            copy_word::<16>(dst, src, n - 32);
            copy_word::<16>(dst, src, n - 16);
        }
        17..=32 => {
            copy_word::<16>(dst, src, 0);
            copy_word::<16>(dst, src, n - 16);
        }
        8..=16 => {
            copy_word::<8>(dst, src, 0);
            copy_word::<8>(dst, src, n - 8);
        }
        4..=7 => {
            copy_word::<4>(dst, src, 0);
            copy_word::<4>(dst, src, n - 4);
        }
        0..=3 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Copies the `N` bytes at `at` from `src` to `dst` (both hold them).
#[inline(always)]
fn copy_word<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    if let (Some(d), Some(s)) = (dst.get_mut(at..at + N), src.get(at..at + N)) {
        d.copy_from_slice(s);
    }
}

/// `NaN`, `+Inf`, `-Inf`, integers without exponent or fraction below 2^53, else the
/// shortest representation that reads back as the same `f64`; formatted in `int` or
/// `float` as needed.
fn format_f64<'a>(value: f64, int: &'a mut itoa::Buffer, float: &'a mut ryu::Buffer) -> &'a [u8] {
    if value.is_nan() {
        b"NaN"
    } else if value.is_infinite() {
        if value > 0.0 { b"+Inf" } else { b"-Inf" }
    } else if value.abs() < 9_007_199_254_740_992.0 && value == (value as i64) as f64 {
        int.format(value as i64).as_bytes()
    } else {
        float.format_finite(value).as_bytes()
    }
}

impl<'r, const F: usize> Renderer<'r, F> {
    pub(crate) fn new(registry: &'r Registry<F>, format: Format) -> Self {
        let mut renderer = Self {
            registry,
            format,
            at: Position::Done,
            le: LeBounds {
                family: None,
                edges: [0.0; MAX_CLASSIC_BUCKETS],
                indices: [0; MAX_CLASSIC_BUCKETS],
                text: [[0; MAX_NUMBER_LEN + 3]; MAX_CLASSIC_BUCKETS],
                text_len: [0; MAX_CLASSIC_BUCKETS],
                len: 0,
            },
            reading: HistogramReading {
                counts: [0; MAX_CLASSIC_BUCKETS],
                count: 0,
                sum: 0.0,
                exemplars: [None; MAX_CLASSIC_BUCKETS + 1],
                exemplars_read: 0,
            },
            labels: None,
            bucket_prefix: None,
            help_sent: None,
        };
        renderer.at = renderer.family_start(0);
        renderer
    }

    /// The format being rendered.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the whole exposition has been written.
    pub fn is_done(&self) -> bool {
        matches!(self.at, Position::Done)
    }

    /// Writes as many whole lines (protobuf: messages) as fit into `buf`; returns the
    /// number of bytes written (0 once done). Fails only if a single line or message is
    /// longer than `buf`.
    pub fn render(&mut self, buf: &mut [u8]) -> Result<usize, RenderError> {
        let mut out = Out { buf, len: 0 };
        self.labels = None;
        self.bucket_prefix = None;
        while !self.is_done() {
            let start = out.len;
            let help_sent = self.help_sent;
            let next = match self.format {
                Format::Prometheus | Format::OpenMetrics => self.write_line(&mut out),
                Format::Protobuf => self.write_protobuf(&mut out),
            };
            if out.len > out.buf.len() {
                // The line is rolled back: it is written again, whole, by the next call.
                self.help_sent = help_sent;
                if start == 0 {
                    return Err(RenderError::BufferTooSmall { needed: out.len });
                }
                return Ok(start);
            }
            self.at = next;
        }
        Ok(out.len)
    }

    fn family_start(&self, index: usize) -> Position {
        match self.registry.get(index) {
            Some(family) => Position::Family { index, family, slots: family.slots(), line: FamilyLine::Help },
            None => Position::Own { counter: 0, line: OwnLine::Help },
        }
    }

    /// Writes the line at the cursor (or nothing, for empty slots and absent lines) and
    /// returns the position after it.
    fn write_line(&mut self, out: &mut Out<'_>) -> Position {
        match self.at {
            Position::Family { index, family, slots, line } => {
                let next = |line| Position::Family { index, family, slots, line };
                match line {
                    FamilyLine::Help => {
                        self.write_help(out, family);
                        next(FamilyLine::Type)
                    }
                    FamilyLine::Type => {
                        self.write_type(out, family);
                        next(FamilyLine::Unit)
                    }
                    FamilyLine::Unit => {
                        self.write_unit(out, family);
                        next(FamilyLine::Series { slot: 0, line: 0 })
                    }
                    FamilyLine::Series { slot, .. } if slot >= slots => self.family_start(index + 1),
                    FamilyLine::Series { mut slot, mut line } => {
                        // The following series too, while the buffer surely has room for
                        // the longest line of the family.
                        let longest = crate::registry::max_line_len_of(family);
                        loop {
                            if let Some(line) = self.write_series_line(out, index, family, slot, line) {
                                return next(FamilyLine::Series { slot, line });
                            }
                            (slot, line) = (slot + 1, 0);
                            if slot >= slots || out.len + longest > out.buf.len() {
                                return next(FamilyLine::Series { slot, line });
                            }
                        }
                    }
                }
            }
            Position::Own { counter, line } => self.write_own(out, counter, line),
            Position::Eof => {
                if self.format == Format::OpenMetrics {
                    out.bytes(b"# EOF\n");
                }
                Position::Done
            }
            Position::Done => Position::Done,
        }
    }

    /// `name` or, for counters in Prometheus text, `name_total`.
    fn write_metadata_name(&self, out: &mut Out<'_>, name: &str, kind: MetricKind) {
        out.bytes(name.as_bytes());
        if kind == MetricKind::Counter && self.format == Format::Prometheus {
            out.bytes(b"_total");
        }
    }

    fn write_help(&self, out: &mut Out<'_>, family: &dyn Exposable) {
        let d = family.descriptor();
        if d.help.is_empty() {
            return;
        }
        out.bytes(b"# HELP ");
        self.write_metadata_name(out, d.name, d.kind);
        out.byte(b' ');
        out.escaped(d.help.as_bytes(), self.format == Format::OpenMetrics);
        out.byte(b'\n');
    }

    fn write_type(&self, out: &mut Out<'_>, family: &dyn Exposable) {
        let d = family.descriptor();
        out.bytes(b"# TYPE ");
        self.write_metadata_name(out, d.name, d.kind);
        out.bytes(match d.kind {
            MetricKind::Counter => b" counter\n",
            MetricKind::Gauge => b" gauge\n",
            MetricKind::Histogram => b" histogram\n",
        });
    }

    fn write_unit(&self, out: &mut Out<'_>, family: &dyn Exposable) {
        let d = family.descriptor();
        if let (Format::OpenMetrics, Some(unit)) = (self.format, d.unit) {
            out.bytes(b"# UNIT ");
            out.bytes(d.name.as_bytes());
            out.byte(b' ');
            out.bytes(unit.as_bytes());
            out.byte(b'\n');
        }
    }

    /// Writes line `line` of the series in `slot`; returns the next line of the same
    /// series, or `None` when the series is finished (or the slot is empty).
    fn write_series_line(
        &mut self,
        out: &mut Out<'_>,
        index: usize,
        family: &dyn Exposable,
        slot: usize,
        line: usize,
    ) -> Option<usize> {
        let series = Series { index, family, slot };
        if line > 0 {
            // Only histogram series have more than one line; the reading taken at line 0
            // serves them all.
            return self.write_histogram_lines(out, series, line);
        }
        let next = match family.sample(slot)? {
            Sample::Counter(value) => {
                let has_labels = self.write_series_start(out, series, b"_total");
                end_labels(out, has_labels);
                out.u64(value);
                None
            }
            Sample::Gauge(value) => {
                let has_labels = self.write_series_start(out, series, b"");
                end_labels(out, has_labels);
                out.i64(value);
                None
            }
            Sample::GaugeF64(value) => {
                let has_labels = self.write_series_start(out, series, b"");
                end_labels(out, has_labels);
                out.f64(value);
                None
            }
            Sample::Histogram(histogram) => {
                self.read_histogram(index, family, histogram);
                return self.write_histogram_lines(out, series, line);
            }
        };
        out.byte(b'\n');
        next
    }

    /// Writes line `line` of a histogram series and, while the buffer surely has room for
    /// the next, the lines after it, without a trip through the cursor for each; returns
    /// the next line to write, or `None` once the series is written.
    fn write_histogram_lines(&mut self, out: &mut Out<'_>, series: Series<'_>, mut line: usize) -> Option<usize> {
        loop {
            let start = out.len;
            let next = self.write_histogram_line(out, series, line);
            out.byte(b'\n');
            // A series' lines differ only in their suffix, `le`, numbers and exemplar, so
            // the next is at most this long plus those.
            let next_len = out.len - start + 2 * MAX_NUMBER_LEN + MAX_EXEMPLAR_TEXT_LEN + 16;
            match next {
                Some(next) if out.len + next_len <= out.buf.len() => line = next,
                next => return next,
            }
            // The bucket lines after the one whose prefix this buffer holds copy it in a
            // tighter loop.
            if let Some(prefix) = self.bucket_prefix.filter(|c| c.family == series.index && c.slot == series.slot) {
                line = self.write_bucket_lines(out, prefix.start..prefix.end, line, next_len);
                if out.len + next_len > out.buf.len() {
                    return Some(line);
                }
            }
        }
    }

    /// Writes the series' bucket lines from `line` on, before `+Inf`, while the buffer
    /// has room for `next_len` bytes, copying `prefix` (`name_bucket{labels,le="`, already
    /// in the buffer); returns the next line. Writes none if the series shows exemplars.
    fn write_bucket_lines(&self, out: &mut Out<'_>, prefix: Range<usize>, mut line: usize, next_len: usize) -> usize {
        if self.reading.exemplars_read > 0 {
            return line;
        }
        // A cursor of its own, which the compiler keeps in registers through the loop.
        let mut local = Out { buf: &mut *out.buf, len: out.len };
        while line < self.le.len && local.len + next_len <= local.buf.len() {
            local.repeat(prefix.clone());
            local.bytes(&self.le.text[line][..usize::from(self.le.text_len[line])]);
            local.u64(self.reading.counts[line]);
            local.byte(b'\n');
            line += 1;
        }
        out.len = local.len;
        line
    }

    /// Writes line `line` of a histogram series (its buckets, `+Inf`, `_sum`, `_count`),
    /// without the newline.
    fn write_histogram_line(&mut self, out: &mut Out<'_>, series: Series<'_>, line: usize) -> Option<usize> {
        let buckets = self.le.len;
        if line <= buckets {
            self.write_bucket_prefix(out, series);
            if line < buckets {
                out.bytes(&self.le.text[line][..usize::from(self.le.text_len[line])]);
                out.u64(self.reading.counts[line]);
            } else {
                out.bytes(b"+Inf\"} ");
                out.u64(self.reading.count);
            }
            if let Some(exemplar) = self.reading.exemplar(line) {
                write_exemplar(out, exemplar);
            }
            return Some(line + 1);
        }
        let suffix: &[u8] = if line == buckets + 1 { b"_sum" } else { b"_count" };
        let has_labels = self.write_series_start(out, series, suffix);
        end_labels(out, has_labels);
        if line == buckets + 1 {
            out.f64(self.reading.sum);
            Some(line + 1)
        } else {
            out.u64(self.reading.count);
            None
        }
    }

    /// Writes `name_bucket{labels,le="`, copied from the series' previous bucket line
    /// when it is in this buffer.
    fn write_bucket_prefix(&mut self, out: &mut Out<'_>, series: Series<'_>) {
        if let Some(c) = self.bucket_prefix.filter(|c| c.family == series.index && c.slot == series.slot) {
            out.repeat(c.start..c.end);
            return;
        }
        let start = out.len;
        let has_labels = self.write_series_start(out, series, b"_bucket");
        out.bytes(if has_labels { b",le=\"" } else { b"{le=\"" });
        if out.len <= out.buf.len() {
            self.bucket_prefix = Some(InBuffer { family: series.index, slot: series.slot, start, end: out.len });
        }
    }

    /// Writes `name suffix {labels` (the caller closes the brace, possibly after `le`);
    /// returns whether any label was written (for none, not even `{` is).
    fn write_series_start(&mut self, out: &mut Out<'_>, series: Series<'_>, suffix: &[u8]) -> bool {
        let d = series.family.descriptor();
        out.bytes(d.name.as_bytes());
        out.bytes(suffix);
        if d.label_names.is_empty() {
            return false;
        }
        let cached = self.labels.filter(|c| c.family == series.index && c.slot == series.slot);
        if let Some(c) = cached {
            out.repeat(c.start..c.end);
            return true;
        }
        let start = out.len;
        out.byte(b'{');
        let mut value = [0u8; MAX_LABEL_VALUE_LEN];
        for (i, label) in d.label_names.iter().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            out.bytes(label.as_bytes());
            out.bytes(b"=\"");
            let len = series.family.label_value(series.slot, i, &mut value);
            out.escaped(&value[..len], true);
            out.byte(b'"');
        }
        if out.len <= out.buf.len() {
            self.labels = Some(InBuffer { family: series.index, slot: series.slot, start, end: out.len });
        }
        true
    }

    fn read_histogram(&mut self, index: usize, family: &dyn Exposable, histogram: &dyn crate::metric::HistogramRead) {
        self.le_bounds(index, family, histogram);
        let r = &mut self.reading;
        r.sum = histogram.sum();
        r.count = histogram.cumulative_counts_at(&self.le.indices[..self.le.len], &mut r.counts);
        let wanted = self.format == Format::OpenMetrics && family.descriptor().exemplars;
        self.read_exemplars(histogram, wanted);
    }

    /// Files each exemplar under the classic bucket its value falls in, keeping the
    /// latest of each.
    /// Only if `wanted`: a series without exemplars reads (and clears) nothing.
    fn read_exemplars(&mut self, histogram: &dyn crate::metric::HistogramRead, wanted: bool) {
        let (le, reading) = (&self.le, &mut self.reading);
        reading.exemplars_read = if wanted { le.len + 1 } else { 0 };
        let exemplars = &mut reading.exemplars[..reading.exemplars_read];
        exemplars.fill(None);
        if !wanted {
            return;
        }
        histogram.exemplars(&mut |exemplar| {
            let bucket = le.edges[..le.len].iter().position(|&edge| exemplar.value <= edge).unwrap_or(le.len);
            let kept = &mut exemplars[bucket];
            if kept.is_none_or(|k| k.timestamp_ms <= exemplar.timestamp_ms) {
                *kept = Some(*exemplar);
            }
        });
    }

    /// Snaps and formats the family's `le` bounds, once per family.
    fn le_bounds(&mut self, index: usize, family: &dyn Exposable, histogram: &dyn crate::metric::HistogramRead) {
        if self.le.family != Some(index) {
            let bounds = family.descriptor().buckets;
            let le = &mut self.le;
            le.len = bounds.len();
            for (i, &bound) in bounds.iter().enumerate() {
                // Registration checked that every bound snaps to an edge.
                le.edges[i] = histogram.snap_to_edge(bound).unwrap_or(f64::INFINITY);
                le.indices[i] = histogram.edge_index(le.edges[i]);
                let (mut int, mut float) = (itoa::Buffer::new(), ryu::Buffer::new());
                let number = format_f64(le.edges[i], &mut int, &mut float);
                let len = number.len();
                le.text[i][..len].copy_from_slice(number);
                le.text[i][len..len + 3].copy_from_slice(b"\"} ");
                le.text_len[i] = (len + 3) as u8;
            }
            le.family = Some(index);
        }
    }

    fn write_own(&self, out: &mut Out<'_>, counter: usize, line: OwnLine) -> Position {
        let Some(own) = OWN_COUNTERS.get(counter) else {
            return Position::Eof;
        };
        let (name, help) = (own.name, own.help);
        let next = |line| Position::Own { counter, line };
        match line {
            OwnLine::Help => {
                out.bytes(b"# HELP ");
                self.write_metadata_name(out, name, MetricKind::Counter);
                out.byte(b' ');
                out.bytes(help.as_bytes());
                out.byte(b'\n');
                next(OwnLine::Type)
            }
            OwnLine::Type => {
                out.bytes(b"# TYPE ");
                self.write_metadata_name(out, name, MetricKind::Counter);
                out.bytes(b" counter\n");
                next(OwnLine::Family(0))
            }
            OwnLine::Family(index) => match self.registry.get(index) {
                None => Position::Own { counter: counter + 1, line: OwnLine::Help },
                Some(family) if !own.applies_to(family) => next(OwnLine::Family(index + 1)),
                Some(family) => {
                    out.bytes(name.as_bytes());
                    out.bytes(b"_total{family=\"");
                    out.bytes(family.descriptor().name.as_bytes());
                    out.bytes(b"\"} ");
                    out.u64(own.value(family));
                    out.byte(b'\n');
                    next(OwnLine::Family(index + 1))
                }
            },
        }
    }
}

/// The longest exemplar suffix of a bucket line: ` # {trace_id="<32 hex digits>"} <value>
/// <seconds>.<milliseconds>`.
pub(crate) const MAX_EXEMPLAR_TEXT_LEN: usize = " # {trace_id=\"\"} ".len() + 32 + MAX_NUMBER_LEN + 1 + 24;

/// Writes an OpenMetrics exemplar after a bucket line's count.
fn write_exemplar(out: &mut Out<'_>, exemplar: &Exemplar) {
    out.bytes(b" # {trace_id=\"");
    out.bytes(&hex(&exemplar.trace_id));
    out.bytes(b"\"} ");
    out.f64(exemplar.value);
    out.byte(b' ');
    out.u64(exemplar.timestamp_ms / 1_000);
    out.byte(b'.');
    let millis = exemplar.timestamp_ms % 1_000;
    out.bytes(&[b'0' + (millis / 100) as u8, b'0' + (millis / 10 % 10) as u8, b'0' + (millis % 10) as u8]);
}

/// A trace id in lower-case hex, as W3C trace context writes it.
pub(crate) fn hex(trace_id: &crate::TraceId) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0; 32];
    for (pair, byte) in text.chunks_exact_mut(2).zip(trace_id) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xF)];
    }
    text
}

/// The series a line belongs to.
#[derive(Clone, Copy)]
struct Series<'a> {
    index: usize,
    family: &'a dyn Exposable,
    slot: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, Family, Gauge, GaugeF64, Histogram, Unlabelled};
    use std::string::String;
    use std::vec::Vec;

    type Small = Histogram<2, -4, 32>;

    static REGISTRY: Registry<8> = Registry::new();
    static REQUESTS: Family<Counter, 2, 4> = Family::new("http_requests", "Requests \\ served\n.", ["method", "path"]);
    static TEMPERATURE: Unlabelled<GaugeF64> =
        Unlabelled::<GaugeF64>::new("temperature_celsius", "Temp.").unit("celsius");
    static QUEUE: Unlabelled<Gauge> = Unlabelled::new("queue_depth", "");
    static LATENCY: Family<Small, 1, 2> =
        Family::<Small, 1, 2>::new("latency_seconds", "Latency \"quoted\".", ["route"])
            .unit("seconds")
            .buckets(&[0.1, 1.0]);

    fn setup() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            REGISTRY.register(&REQUESTS).unwrap();
            REGISTRY.register(&TEMPERATURE).unwrap();
            REGISTRY.register(&QUEUE).unwrap();
            REGISTRY.register(&LATENCY).unwrap();
            REQUESTS.with_label_values(&["GET", "/a\"b\\c\nd"]).inc_by(3);
            TEMPERATURE.set(-1.5);
            QUEUE.set(-7);
            let route = LATENCY.with_label_values(&["/x"]);
            for v in [0.05, 0.1, 0.5, 2.0, f64::NAN] {
                route.record(v);
            }
            for r in ["/y", "/z", "/w"] {
                LATENCY.with_label_values(&[r]).record(100.0);
            }
        });
    }

    fn render_all(format: Format, buf_len: usize) -> String {
        render_with(&REGISTRY, format, buf_len)
    }

    fn render_with<const F: usize>(registry: &Registry<F>, format: Format, buf_len: usize) -> String {
        let mut renderer = registry.renderer(format);
        let mut buf = std::vec![0u8; buf_len];
        let mut out = Vec::new();
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    const PROMETHEUS: &str = r#"# HELP http_requests_total Requests \\ served\n.
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/a\"b\\c\nd"} 3
# HELP temperature_celsius Temp.
# TYPE temperature_celsius gauge
temperature_celsius -1.5
# TYPE queue_depth gauge
queue_depth -7
# HELP latency_seconds Latency "quoted".
# TYPE latency_seconds histogram
latency_seconds_bucket{route="/y",le="0.10511205190671431"} 0
latency_seconds_bucket{route="/y",le="1"} 0
latency_seconds_bucket{route="/y",le="+Inf"} 1
latency_seconds_sum{route="/y"} 100
latency_seconds_count{route="/y"} 1
latency_seconds_bucket{route="/x",le="0.10511205190671431"} 2
latency_seconds_bucket{route="/x",le="1"} 3
latency_seconds_bucket{route="/x",le="+Inf"} 4
latency_seconds_sum{route="/x"} 2.65
latency_seconds_count{route="/x"} 4
latency_seconds_bucket{route="__overflow__",le="0.10511205190671431"} 0
latency_seconds_bucket{route="__overflow__",le="1"} 0
latency_seconds_bucket{route="__overflow__",le="+Inf"} 2
latency_seconds_sum{route="__overflow__"} 200
latency_seconds_count{route="__overflow__"} 2
# HELP plimsoll_series_overflow_total Records routed to a family's overflow series because the family was full.
# TYPE plimsoll_series_overflow_total counter
plimsoll_series_overflow_total{family="http_requests"} 0
plimsoll_series_overflow_total{family="latency_seconds"} 2
# HELP plimsoll_label_value_rejected_total Records routed to a family's overflow series because a label value was too long.
# TYPE plimsoll_label_value_rejected_total counter
plimsoll_label_value_rejected_total{family="http_requests"} 0
plimsoll_label_value_rejected_total{family="latency_seconds"} 0
# HELP plimsoll_observations_rejected_total NaN, infinite or negative observations rejected by a histogram family.
# TYPE plimsoll_observations_rejected_total counter
plimsoll_observations_rejected_total{family="latency_seconds"} 1
"#;

    #[test]
    fn prometheus_text_golden() {
        setup();
        let text = render_all(Format::Prometheus, 4096);
        assert_eq!(text, PROMETHEUS, "{text}");
    }

    #[test]
    fn every_buffer_size_gives_the_same_bytes() {
        setup();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let whole = render_all(format, 1 << 16);
            let min = REGISTRY.max_line_len();
            for len in [min, min + 1, min + 7, 300, 1000] {
                assert_eq!(render_all(format, len), whole, "buffer of {len}");
            }
        }
    }

    /// Found by fuzzing: with label values shorter than `__overflow__`, the overflow
    /// series' line was longer than `max_line_len`.
    #[test]
    fn max_line_len_covers_the_overflow_series_of_short_labels() {
        static SHORT: Registry<1> = Registry::new();
        static TINY: Family<Counter, 8, 2, 1> =
            Family::new("requests", "", ["a", "b", "l", "e", "Z", "aa", "bb", "ll"]);
        SHORT.register(&TINY).unwrap();
        TINY.with_label_values(&["GET", "", "", "", "", "", "", ""]).inc();
        let len = SHORT.max_line_len();
        let text = render_with(&SHORT, Format::OpenMetrics, len);
        assert!(text.contains("requests_total{a=\"__overflow__\""), "{text}");
    }

    #[test]
    fn too_small_buffer_is_a_typed_error() {
        setup();
        let mut renderer = REGISTRY.renderer(Format::Prometheus);
        let mut buf = [0u8; 16];
        assert_eq!(renderer.render(&mut buf), Err(RenderError::BufferTooSmall { needed: 49 }));
        assert!(!renderer.is_done());
    }

    #[test]
    fn openmetrics_metadata_and_eof() {
        setup();
        let text = render_all(Format::OpenMetrics, 4096);
        assert!(text.starts_with("# HELP http_requests Requests \\\\ served\\n.\n# TYPE http_requests counter\n"));
        assert!(text.contains("http_requests_total{method=\"GET\""));
        assert!(text.contains("# TYPE temperature_celsius gauge\n# UNIT temperature_celsius celsius\n"));
        assert!(text.contains("# HELP latency_seconds Latency \\\"quoted\\\".\n"));
        assert!(text.contains("# TYPE plimsoll_series_overflow counter\n"));
        assert!(text.ends_with("plimsoll_observations_rejected_total{family=\"latency_seconds\"} 1\n# EOF\n"));
    }

    #[test]
    fn float_formatting() {
        let cases: [(f64, &str); 10] = [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.0, "0"),
            (-0.0, "0"),
            (1e15, "1000000000000000"),
            (9007199254740992.0, "9007199254740992.0"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (-2.5e300, "-2.5e300"),
        ];
        for (value, expected) in cases {
            let mut buf = [0u8; 32];
            let mut out = Out { buf: &mut buf, len: 0 };
            out.f64(value);
            let len = out.len;
            assert_eq!(core::str::from_utf8(&buf[..len]).unwrap(), expected);
        }
    }
}
