//! Reading a memory trace: a CSV file whose first column is time and whose other numeric
//! columns are memory signals in bytes. The rules it applies are the command's (see the
//! [parent module](super)); this module turns the file into samples or a typed error.

use crate::cli::human;
use std::fmt;
use std::path::{Path, PathBuf};

/// How the time column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TimeUnit {
    /// Seconds since any origin; fractions allowed.
    #[value(name = "s")]
    Seconds,
    /// Milliseconds since any origin; fractions allowed.
    #[value(name = "ms")]
    Milliseconds,
    /// RFC 3339 date-times with an offset, such as `2026-11-27T06:00:00.250Z`.
    #[value(name = "rfc3339")]
    Rfc3339,
}

impl TimeUnit {
    /// The unit a column name announces: `…_ms`, `ms`, `millis(econds)` for milliseconds;
    /// `…_s`, `…_sec(s)`, `…_seconds`, `s`, `seconds` for seconds; `None` otherwise.
    fn from_column_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        let suffix = name.rsplit(['_', '-', ' ']).next().unwrap_or(&name);
        match suffix {
            "ms" | "millis" | "milliseconds" => Some(Self::Milliseconds),
            "s" | "sec" | "secs" | "seconds" => Some(Self::Seconds),
            _ => None,
        }
    }

    /// `s`, `ms` or `rfc3339`, as `--time-unit` takes it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Milliseconds => "ms",
            Self::Rfc3339 => "rfc3339",
        }
    }

    /// The time in milliseconds (since the unit's origin), `None` if `text` is not one.
    fn parse_ms(self, text: &str) -> Option<f64> {
        let ms = match self {
            Self::Seconds => text.parse::<f64>().ok()? * 1_000.0,
            Self::Milliseconds => text.parse::<f64>().ok()?,
            Self::Rfc3339 => text.parse::<jiff::Timestamp>().ok()?.as_millisecond() as f64,
        };
        ms.is_finite().then_some(ms)
    }
}

/// One memory signal of a trace.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    /// The column's header.
    pub(crate) name: String,
    /// `(milliseconds since the trace's first row, bytes)`, in time order.
    pub(crate) samples: Vec<(f64, f64)>,
    /// Rows where this column was empty or `NaN` (a missed sample, not an error).
    pub(crate) missing: usize,
}

/// A row left out by `--skip-malformed`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Skipped {
    /// Rows skipped.
    pub(crate) count: usize,
    /// The first one's line number and why.
    pub(crate) first: Option<(u64, String)>,
}

/// A trace as read.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    /// The time column's header and how it was read.
    pub(crate) time_column: String,
    pub(crate) time_unit: TimeUnit,
    /// The first row's time in the file's unit, in milliseconds (for date-times, Unix
    /// milliseconds), which the samples' times count from.
    pub(crate) start_ms: f64,
    /// Rows read (data rows, not counting skipped ones).
    pub(crate) rows: usize,
    /// The memory signals, in column order.
    pub(crate) signals: Vec<Signal>,
    /// Columns left out: not numeric (their first value is not a number).
    pub(crate) ignored_columns: Vec<String>,
    /// Rows left out with `--skip-malformed`.
    pub(crate) skipped: Skipped,
}

/// Why a trace cannot be analysed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum TraceError {
    /// The file cannot be opened or read.
    Io(PathBuf, std::io::Error),
    /// A CSV record cannot be read (invalid UTF-8, an unterminated quote).
    Csv(PathBuf, csv::Error),
    /// The file has no header row.
    NoHeader(PathBuf),
    /// Fewer than two data rows: no trend can be drawn.
    TooFewRows(PathBuf, usize),
    /// Every row has the same time.
    NoTimeSpan(PathBuf),
    /// A malformed row (without `--skip-malformed`).
    Malformed { path: PathBuf, line: u64, reason: String },
    /// The time column's unit cannot be told from its name or first value.
    UnknownTimeUnit { path: PathBuf, column: String, value: String },
    /// No column holds numbers.
    NoSignal(PathBuf),
    /// `--column` names no column of the trace (or the time column).
    UnknownColumn { path: PathBuf, column: String, available: Vec<String> },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            Self::Csv(path, error) => write!(f, "{}: {error}", path.display()),
            Self::NoHeader(path) => {
                write!(f, "{}: empty file; a trace starts with a header row such as `t_s,rss_bytes`", path.display())
            }
            Self::TooFewRows(path, rows) => write!(
                f,
                "{}: {} after the header; a trend needs at least two samples over time",
                path.display(),
                match rows {
                    0 => "no data rows".to_owned(),
                    n => format!("only {n} data row"),
                }
            ),
            Self::NoTimeSpan(path) => write!(f, "{}: every row has the same time; there is no trend", path.display()),
            Self::Malformed { path, line, reason } => write!(
                f,
                "{}:{line}: {reason} (pass --skip-malformed to skip such rows and count them)",
                path.display()
            ),
            Self::UnknownTimeUnit { path, column, value } => write!(
                f,
                "{}: cannot tell the unit of the time column {column:?} (first value {value:?}): name it t_s or \
                 t_ms, write RFC 3339 date-times, or pass --time-unit s|ms|rfc3339",
                path.display()
            ),
            Self::NoSignal(path) => write!(
                f,
                "{}: no memory column: after the time column, at least one column must hold numbers (bytes)",
                path.display()
            ),
            Self::UnknownColumn { path, column, available } => write!(
                f,
                "{}: no memory column {column:?}; the memory columns are: {}",
                path.display(),
                available.join(", ")
            ),
        }
    }
}

impl std::error::Error for TraceError {}

/// How a column after the time column is used; decided by its first non-empty value.
enum Column {
    /// No value yet.
    Undecided,
    /// A memory signal: index into `Trace::signals`.
    Signal(usize),
    /// Not numeric: left out.
    Ignored,
}

/// A value that stands for a missed sample: empty, or NaN as Prometheus writes it.
fn is_missing(text: &str) -> bool {
    text.is_empty() || text.eq_ignore_ascii_case("nan")
}

/// Bytes: a finite, non-negative number (`123`, `1.5e9`), `None` otherwise.
fn parse_bytes(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|b| b.is_finite() && *b >= 0.0)
}

/// Options of [`read`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadOptions {
    /// The time unit, instead of telling it from the column's name or first value.
    pub(crate) time_unit: Option<TimeUnit>,
    /// The one memory column to keep.
    pub(crate) column: Option<String>,
    /// Skip (and count) malformed rows instead of failing on the first.
    pub(crate) skip_malformed: bool,
}

/// Reads the trace at `path`.
pub(crate) fn read(path: &Path, options: &ReadOptions) -> Result<Trace, TraceError> {
    let file = std::fs::File::open(path).map_err(|e| TraceError::Io(path.to_owned(), e))?;
    parse(path, file, options)
}

/// Reads a trace from `input`; `path` names it in errors.
pub(crate) fn parse(path: &Path, input: impl std::io::Read, options: &ReadOptions) -> Result<Trace, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input);
    let mut records = reader.records();
    let csv_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(_) => TraceError::Io(path.to_owned(), std::io::Error::other(e.to_string())),
        _ => TraceError::Csv(path.to_owned(), e),
    };
    let header = records.next().ok_or_else(|| TraceError::NoHeader(path.to_owned()))?.map_err(csv_error)?;
    let names: Vec<String> = header.iter().map(str::to_owned).collect();
    if let Some(column) = options.column.as_ref().filter(|&c| !names.iter().skip(1).any(|name| name == c)) {
        let available = names.iter().skip(1).cloned().collect();
        return Err(TraceError::UnknownColumn { path: path.to_owned(), column: column.clone(), available });
    }
    let mut reading = Reading::new(path, names, options);
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        match reading.row(&record) {
            Ok(()) => {}
            Err(RowError::UnknownTimeUnit(value)) => {
                let column = reading.trace.time_column;
                return Err(TraceError::UnknownTimeUnit { path: path.to_owned(), column, value });
            }
            Err(RowError::Malformed(reason)) if !options.skip_malformed => {
                return Err(TraceError::Malformed { path: path.to_owned(), line, reason });
            }
            Err(RowError::Malformed(reason)) => {
                reading.trace.skipped.count += 1;
                reading.trace.skipped.first.get_or_insert((line, reason));
            }
        }
    }
    reading.finish()
}

/// Why a row was not taken.
enum RowError {
    /// The row is malformed: skipped with `--skip-malformed`, an error otherwise.
    Malformed(String),
    /// The first row's time does not tell its unit (this value): the file cannot be read.
    UnknownTimeUnit(String),
}

/// The state of a read in progress.
struct Reading<'a> {
    path: &'a Path,
    options: &'a ReadOptions,
    names: Vec<String>,
    columns: Vec<Column>,
    /// The previous row's time, in the file's milliseconds.
    previous_ms: Option<f64>,
    trace: Trace,
}

impl<'a> Reading<'a> {
    fn new(path: &'a Path, names: Vec<String>, options: &'a ReadOptions) -> Self {
        let columns = names.iter().skip(1).map(|_| Column::Undecided).collect();
        let trace = Trace {
            time_column: names.first().cloned().unwrap_or_default(),
            // Settled by the first row unless given.
            time_unit: options.time_unit.unwrap_or(TimeUnit::Seconds),
            start_ms: 0.0,
            rows: 0,
            signals: Vec::new(),
            ignored_columns: Vec::new(),
            skipped: Skipped { count: 0, first: None },
        };
        Self { path, options, names, columns, previous_ms: None, trace }
    }

    /// Whether the column at `index` (after the time column) is analysed at all.
    fn wanted(&self, index: usize) -> bool {
        self.options.column.as_ref().is_none_or(|name| *name == self.names[index + 1])
    }

    /// Takes one data row, or says why it is malformed (nothing of it is kept then).
    fn row(&mut self, record: &csv::StringRecord) -> Result<(), RowError> {
        if record.len() != self.names.len() {
            let reason = format!("{} fields where the header has {}", record.len(), self.names.len());
            return Err(RowError::Malformed(reason));
        }
        let time_text = &record[0];
        let ms = self.time_ms(time_text)?;
        if let Some(previous) = self.previous_ms.filter(|&p| ms < p) {
            let back = human::duration((previous - ms) as u64);
            let reason = format!("time {time_text:?} is {back} before the previous row's; rows must be in time order");
            return Err(RowError::Malformed(reason));
        }
        // Check every value before keeping any, so a malformed row leaves no trace.
        let mut values = Vec::with_capacity(self.columns.len());
        for (index, text) in record.iter().skip(1).enumerate() {
            let not_bytes = || {
                RowError::Malformed(format!(
                    "column {:?}: {text:?} is not a number of bytes (≥ 0)",
                    self.names[index + 1]
                ))
            };
            let value = match (&self.columns[index], is_missing(text)) {
                (_, true) | (Column::Ignored, _) => None,
                (Column::Signal(_), false) => Some(parse_bytes(text).ok_or_else(not_bytes)?),
                // A column named by --column must be numeric from its first value on.
                (Column::Undecided, false) if self.options.column.is_some() && self.wanted(index) => {
                    Some(parse_bytes(text).ok_or_else(not_bytes)?)
                }
                (Column::Undecided, false) => parse_bytes(text),
            };
            values.push((index, value, text.is_empty()));
        }
        if self.previous_ms.is_none() {
            self.trace.start_ms = ms;
        }
        self.previous_ms = Some(ms);
        self.trace.rows += 1;
        let at = ms - self.trace.start_ms;
        for (index, value, empty) in values {
            self.take(index, at, value, empty, &record[index + 1]);
        }
        Ok(())
    }

    /// Settles the column's use on its first value, and keeps the sample.
    fn take(&mut self, index: usize, at: f64, value: Option<f64>, empty: bool, text: &str) {
        if matches!(self.columns[index], Column::Undecided) && !empty {
            self.columns[index] = match value {
                Some(_) if self.wanted(index) => {
                    self.trace.signals.push(Signal {
                        name: self.names[index + 1].clone(),
                        samples: Vec::new(),
                        missing: self.trace.rows - 1,
                    });
                    Column::Signal(self.trace.signals.len() - 1)
                }
                // NaN says "missed sample" without saying what the column holds.
                None if is_missing(text) => Column::Undecided,
                _ => {
                    if self.wanted(index) {
                        self.trace.ignored_columns.push(self.names[index + 1].clone());
                    }
                    Column::Ignored
                }
            };
        }
        if let Column::Signal(signal) = self.columns[index] {
            let signal = &mut self.trace.signals[signal];
            match value {
                Some(bytes) => signal.samples.push((at, bytes)),
                None => signal.missing += 1,
            }
        }
    }

    /// The row's time in milliseconds; on the first row, settles the unit if not given.
    fn time_ms(&mut self, text: &str) -> Result<f64, RowError> {
        if self.previous_ms.is_none() && self.options.time_unit.is_none() {
            let by_name = TimeUnit::from_column_name(&self.trace.time_column);
            let unit = by_name.or_else(|| TimeUnit::Rfc3339.parse_ms(text).map(|_| TimeUnit::Rfc3339));
            // Not a malformed row: without a unit no row can be read.
            self.trace.time_unit = unit.ok_or_else(|| RowError::UnknownTimeUnit(text.to_owned()))?;
        }
        let unit = self.trace.time_unit;
        unit.parse_ms(text).ok_or_else(|| {
            RowError::Malformed(match unit {
                TimeUnit::Rfc3339 => format!("time {text:?} is not an RFC 3339 date-time"),
                TimeUnit::Seconds => format!("time {text:?} is not a number of seconds"),
                TimeUnit::Milliseconds => format!("time {text:?} is not a number of milliseconds"),
            })
        })
    }

    fn finish(self) -> Result<Trace, TraceError> {
        let path = self.path.to_owned();
        let trace = self.trace;
        if trace.rows < 2 {
            return Err(TraceError::TooFewRows(path, trace.rows));
        }
        if self.previous_ms == Some(trace.start_ms) {
            return Err(TraceError::NoTimeSpan(path));
        }
        if trace.signals.is_empty() {
            return Err(TraceError::NoSignal(path));
        }
        Ok(trace)
    }
}
