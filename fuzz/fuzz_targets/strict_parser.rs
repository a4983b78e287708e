//! A strict parser of the Prometheus text 0.0.4 and OpenMetrics 1.0 exposition formats,
//! written for the fuzz targets: it accepts only what both the formats and Plimsoll's
//! renderer promise, and parses label values and help texts back (unescaped) so that a
//! target can compare them with what it recorded.
//!
//! Stricter than the formats in a few places, each because the renderer promises it:
//! every family has a `# TYPE` line before its samples, there are no blank lines, other
//! comments or timestamps, counts (`_total`, buckets, `_count`) are unsigned integers,
//! and a histogram series is written whole (buckets, then `_sum` and `_count`).
//! It is not a general-purpose parser and is not meant to be one.

use std::collections::HashSet;

/// The exposition format being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// The type of a family, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
}

/// One metric family as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name in the metadata lines (Prometheus counters: with `_total`).
    pub name: String,
    /// The type.
    pub kind: Kind,
    /// The help text, unescaped (`None` without a `# HELP` line).
    pub help: Option<String>,
    /// The unit (OpenMetrics only).
    pub unit: Option<String>,
    /// The series, in exposition order.
    pub series: Vec<Series>,
}

/// One series: its labels (without `le`), in order, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Label names and unescaped values, in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
}

/// The value of a series.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's `_total`.
    Counter(u64),
    /// A gauge: its value and the text it was parsed from.
    Gauge {
        /// The value.
        value: f64,
        /// The text as written.
        text: String,
    },
    /// A histogram: `(le, cumulative count)` per bucket, the `+Inf` bucket last, then
    /// `_sum` and `_count`.
    Histogram {
        /// Buckets in order.
        buckets: Vec<(f64, u64)>,
        /// `_sum`.
        sum: f64,
        /// `_count`.
        count: u64,
    },
}

/// A histogram series being read: which of its lines have been seen.
#[derive(Debug, Default)]
struct OpenHistogram {
    buckets: Vec<(f64, u64)>,
    sum: Option<f64>,
    count: Option<u64>,
}

impl OpenHistogram {
    fn is_complete(&self) -> bool {
        self.sum.is_some() && self.count.is_some()
    }

    fn inf_count(&self) -> Option<u64> {
        self.buckets.last().filter(|(le, _)| *le == f64::INFINITY).map(|&(_, c)| c)
    }
}

struct Parser {
    format: Format,
    families: Vec<Family>,
    /// Names used by any family so far (each may be described once).
    family_names: HashSet<String>,
    /// Metadata seen for the current family: HELP, TYPE, UNIT.
    seen: [bool; 3],
    /// Sample name and sorted labels of every sample so far (histogram: with `le`).
    samples: HashSet<(String, Vec<(String, String)>)>,
    /// The histogram series being read, if any.
    histogram: Option<OpenHistogram>,
    /// Series keys (labels without `le`) of the current family.
    family_series: HashSet<Vec<(String, String)>>,
}

/// Parses `text` strictly; on failure, says which line and why.
pub fn parse(text: &str, format: Format) -> Result<Vec<Family>, String> {
    let mut parser = Parser {
        format,
        families: Vec::new(),
        family_names: HashSet::new(),
        seen: [false; 3],
        samples: HashSet::new(),
        histogram: None,
        family_series: HashSet::new(),
    };
    let Some(body) = text.strip_suffix('\n') else {
        return Err("the exposition does not end with a newline".into());
    };
    let body = match format {
        Format::Prometheus => body,
        Format::OpenMetrics => match body.strip_suffix("# EOF") {
            Some(rest) if rest.is_empty() || rest.ends_with('\n') => rest.strip_suffix('\n').unwrap_or(rest),
            _ => return Err("OpenMetrics exposition does not end with `# EOF`".into()),
        },
    };
    if !body.is_empty() {
        for (number, line) in body.split('\n').enumerate() {
            parser.line(line).map_err(|e| format!("line {}: {e}: {line:?}", number + 1))?;
        }
    }
    parser.close_family().map_err(|e| format!("at the end: {e}"))?;
    Ok(parser.families)
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if let Some(rest) = line.strip_prefix("# ") {
            self.metadata(rest)
        } else if line.starts_with('#') {
            Err("a comment that is not HELP, TYPE or UNIT".into())
        } else if line.is_empty() {
            Err("a blank line".into())
        } else {
            self.sample(line)
        }
    }

    /// `HELP name text`, `TYPE name type`, `UNIT name unit` (OpenMetrics).
    fn metadata(&mut self, rest: &str) -> Result<(), String> {
        let (keyword, rest) = rest.split_once(' ').ok_or("metadata without a name")?;
        let which = match keyword {
            "HELP" => 0,
            "TYPE" => 1,
            "UNIT" if self.format == Format::OpenMetrics => 2,
            "EOF" => return Err("`# EOF` before the end".into()),
            _ => return Err(format!("unknown metadata keyword {keyword:?}")),
        };
        let (name, value) = rest.split_once(' ').ok_or("metadata without a value")?;
        if !is_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        let same_family =
            self.families.last().is_some_and(|f| f.name == name && f.series.is_empty()) && self.histogram.is_none();
        if !same_family {
            self.close_family()?;
            if !self.family_names.insert(name.to_owned()) {
                return Err(format!("family {name:?} described twice"));
            }
            // The type is set by the TYPE line; a family without one is caught below.
            self.families.push(Family {
                name: name.to_owned(),
                kind: Kind::Gauge,
                help: None,
                unit: None,
                series: Vec::new(),
            });
            self.seen = [false; 3];
        }
        if std::mem::replace(&mut self.seen[which], true) {
            return Err(format!("a second {keyword} line"));
        }
        let family = self.families.last_mut().expect("pushed above");
        match which {
            0 => family.help = Some(unescape(value, self.format == Format::OpenMetrics)?),
            1 => {
                family.kind = match value {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "histogram" => Kind::Histogram,
                    _ => return Err(format!("unexpected type {value:?}")),
                };
                if family.kind == Kind::Counter && self.format == Format::Prometheus && !name.ends_with("_total") {
                    return Err("a Prometheus counter family name must end with _total".into());
                }
            }
            _ => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("invalid unit {value:?}"));
                }
                if !name.strip_suffix(value).is_some_and(|n| n.ends_with('_')) {
                    return Err("the family name does not end with _<unit>".into());
                }
                family.unit = Some(value.to_owned());
            }
        }
        Ok(())
    }

    /// Checks that the current family ended cleanly: it had a TYPE line and its last
    /// histogram series is whole.
    fn close_family(&mut self) -> Result<(), String> {
        self.close_histogram()?;
        self.family_series.clear();
        if !self.families.is_empty() && !self.seen[1] {
            return Err("a family without a TYPE line".into());
        }
        Ok(())
    }

    fn close_histogram(&mut self) -> Result<(), String> {
        let Some(h) = self.histogram.take() else { return Ok(()) };
        if !h.is_complete() {
            return Err("a histogram series without both _sum and _count".into());
        }
        let series = self.families.last_mut().and_then(|f| f.series.last_mut()).expect("an open series");
        series.value = Value::Histogram { buckets: h.buckets, sum: h.sum.unwrap_or(0.0), count: h.count.unwrap_or(0) };
        Ok(())
    }

    /// `name{label="value",...} value` or `name value`.
    fn sample(&mut self, line: &str) -> Result<(), String> {
        let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
        let (name, mut rest) = line.split_at(name_end);
        if !is_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = parse_labels(after, &mut labels)?;
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        if value.contains(' ') {
            return Err("more than a value after the labels (a timestamp?)".into());
        }
        let mut names = HashSet::new();
        if !labels.iter().all(|(n, _)| names.insert(n.as_str())) {
            return Err("a label name twice".into());
        }
        let mut key = labels.clone();
        key.sort();
        if !self.samples.insert((name.to_owned(), key)) {
            return Err("a duplicate series".into());
        }
        let Some(family) = self.families.last() else { return Err("a sample before any TYPE line".into()) };
        if !self.seen[1] {
            return Err("a sample before its family's TYPE line".into());
        }
        let (family_name, kind) = (family.name.clone(), family.kind);
        match kind {
            Kind::Counter => {
                let expected = match self.format {
                    Format::Prometheus => family_name,
                    Format::OpenMetrics => format!("{family_name}_total"),
                };
                if name != expected {
                    return Err(format!(
                        "sample {name:?} in counter family {:?}",
                        self.families.last().map(|f| &f.name)
                    ));
                }
                let value = Value::Counter(parse_count(value)?);
                self.new_series(labels, value)
            }
            Kind::Gauge => {
                if name != family_name {
                    return Err(format!("sample {name:?} in gauge family {family_name:?}"));
                }
                let value = Value::Gauge { value: parse_float(value)?, text: value.to_owned() };
                self.new_series(labels, value)
            }
            Kind::Histogram => {
                let suffix = name.strip_prefix(family_name.as_str()).ok_or("a sample outside its histogram family")?;
                self.histogram_line(suffix, labels, value)
            }
        }
    }

    fn new_series(&mut self, labels: Vec<(String, String)>, value: Value) -> Result<(), String> {
        let mut key = labels.clone();
        key.sort();
        if !self.family_series.insert(key) {
            return Err("a series twice in one family".into());
        }
        self.families.last_mut().expect("checked by the caller").series.push(Series { labels, value });
        Ok(())
    }

    /// One line of a histogram series: `_bucket` (with `le`), `_sum` or `_count`.
    fn histogram_line(&mut self, suffix: &str, mut labels: Vec<(String, String)>, value: &str) -> Result<(), String> {
        let le = labels.iter().position(|(n, _)| n == "le").map(|i| labels.remove(i).1);
        let open_key = self.families.last().and_then(|f| f.series.last()).map(|s| &s.labels);
        let continues = self.histogram.is_some() && open_key == Some(&labels);
        match (suffix, le) {
            ("_bucket", Some(le)) => {
                if !continues {
                    self.close_histogram()?;
                    self.new_series(labels, Value::Counter(0))?;
                    self.histogram = Some(OpenHistogram::default());
                }
                let h = self.histogram.as_mut().expect("opened above");
                if h.inf_count().is_some() {
                    return Err("a bucket after the +Inf bucket".into());
                }
                let (le, count) = (parse_float(&le)?, parse_count(value)?);
                if le.is_nan() {
                    return Err("le=\"NaN\"".into());
                }
                if let Some(&(previous_le, previous_count)) = h.buckets.last()
                    && (le <= previous_le || count < previous_count)
                {
                    return Err("buckets out of order or counts decreasing".into());
                }
                h.buckets.push((le, count));
                Ok(())
            }
            ("_sum" | "_count", None) => {
                if !continues {
                    return Err(format!("{suffix} without the series' buckets before it"));
                }
                let h = self.histogram.as_mut().expect("checked above");
                let inf = h.inf_count().ok_or("_sum or _count before the +Inf bucket")?;
                if suffix == "_sum" {
                    let sum = parse_float(value)?;
                    if sum.is_nan() || sum < 0.0 {
                        return Err("a NaN or negative _sum of non-negative observations".into());
                    }
                    if h.sum.replace(sum).is_some() {
                        return Err("_sum twice".into());
                    }
                } else {
                    let count = parse_count(value)?;
                    if count != inf {
                        return Err(format!("_count {count} differs from the +Inf bucket {inf}"));
                    }
                    if h.count.replace(count).is_some() {
                        return Err("_count twice".into());
                    }
                }
                if h.is_complete() { self.close_histogram() } else { Ok(()) }
            }
            _ => Err(format!("unexpected histogram sample suffix {suffix:?} (or le misplaced)")),
        }
    }
}

/// `name="value",...}` after the opening brace; returns what follows the closing brace.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        let quoted = rest[eq + 1..].strip_prefix('"').ok_or("a label value without quotes")?;
        let (value, after) = split_quoted(quoted)?;
        labels.push((name.to_owned(), value));
        if let Some(after) = after.strip_prefix('}') {
            return Ok(after);
        }
        rest = after.strip_prefix(',').ok_or("labels not separated by `,`")?;
        if rest.starts_with('}') {
            return Err("a trailing comma in a label set".into());
        }
    }
}

/// The unescaped text up to the closing quote, and what follows it.
fn split_quoted(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => value.push(escape(chars.next().map(|(_, c)| c))?),
            c => value.push(c),
        }
    }
    Err("an unterminated label value".into())
}

/// The help text unescaped: `\\` and `\n`, and in OpenMetrics `\"` (where a bare `"` is
/// not allowed).
fn unescape(text: &str, openmetrics: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next();
                if next == Some('"') && !openmetrics {
                    return Err("`\\\"` in Prometheus help text".into());
                }
                out.push(escape(next)?);
            }
            '"' if openmetrics => return Err("an unescaped `\"` in OpenMetrics help text".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn escape(next: Option<char>) -> Result<char, String> {
    match next {
        Some('\\') => Ok('\\'),
        Some('"') => Ok('"'),
        Some('n') => Ok('\n'),
        other => Err(format!("invalid escape \\{other:?}")),
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    is_identifier(name, true)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    is_identifier(name, false)
}

fn is_identifier(name: &str, colon: bool) -> bool {
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':');
    let bytes = name.as_bytes();
    !bytes.is_empty() && start(bytes[0]) && bytes[1..].iter().all(|&b| start(b) || b.is_ascii_digit())
}

/// A float: digits, sign, point and exponent only, or exactly `+Inf`, `-Inf`, `NaN`.
pub fn parse_float(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => {
            text.parse().map_err(|e| format!("value {text:?}: {e}"))
        }
        _ => Err(format!("value {text:?} is not a number")),
    }
}

/// An unsigned integer count.
fn parse_count(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("count {text:?} is not an unsigned integer"));
    }
    text.parse().map_err(|e| format!("count {text:?}: {e}"))
}
