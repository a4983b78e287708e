//! Error types, one per operation.

use core::fmt;

/// Why a family could not be registered. Registration never panics and never lets a
/// family through that would make a scrape malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegisterError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*` of at most
    /// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes.
    InvalidMetricName(&'static str),
    /// The metric name ends with a suffix that the exposition formats append
    /// (`_total`, `_created`, `_bucket`, `_count`, `_sum`) or is one of Plimsoll's own.
    ReservedMetricName(&'static str),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*` of at most
    /// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes, starts with `__`, or is `le` on a
    /// histogram.
    InvalidLabelName {
        /// The family.
        family: &'static str,
        /// The offending label name.
        label: &'static str,
    },
    /// The same label name appears twice.
    DuplicateLabelName {
        /// The family.
        family: &'static str,
        /// The repeated label name.
        label: &'static str,
    },
    /// The unit is not `[a-zA-Z0-9_]+`, or the family name does not end in `_<unit>`
    /// (OpenMetrics requires it).
    InvalidUnit {
        /// The family.
        family: &'static str,
        /// The unit.
        unit: &'static str,
    },
    /// The help text is longer than [`MAX_HELP_LEN`](crate::MAX_HELP_LEN) bytes.
    HelpTooLong(&'static str),
    /// Histogram bucket bounds are not finite, not within the histogram's range, not
    /// strictly increasing once snapped to bucket edges, or more than
    /// [`MAX_CLASSIC_BUCKETS`](crate::MAX_CLASSIC_BUCKETS).
    InvalidBuckets(&'static str),
    /// A family with this name is already registered.
    DuplicateFamily(&'static str),
    /// The registry holds its maximum number of families.
    RegistryFull(&'static str),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMetricName(name) => write!(f, "invalid metric name {name:?}"),
            Self::ReservedMetricName(name) => {
                write!(f, "metric name {name:?} is reserved or ends with a reserved suffix")
            }
            Self::InvalidLabelName { family, label } => {
                write!(f, "invalid label name {label:?} in family {family:?}")
            }
            Self::DuplicateLabelName { family, label } => {
                write!(f, "label name {label:?} appears twice in family {family:?}")
            }
            Self::InvalidUnit { family, unit } => {
                write!(f, "unit {unit:?} is invalid or not a suffix of family {family:?}")
            }
            Self::HelpTooLong(name) => write!(f, "help text of {name:?} is too long"),
            Self::InvalidBuckets(name) => write!(f, "invalid histogram buckets in {name:?}"),
            Self::DuplicateFamily(name) => write!(f, "family {name:?} is already registered"),
            Self::RegistryFull(name) => write!(f, "registry is full; cannot register {name:?}"),
        }
    }
}

impl core::error::Error for RegisterError {}

/// Why rendering stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RenderError {
    /// One line of the exposition does not fit in the whole buffer; `needed` bytes would.
    /// [`Registry::max_line_len`](crate::Registry::max_line_len) bounds every line.
    BufferTooSmall {
        /// Length of the line that did not fit.
        needed: usize,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(f, "render buffer too small: a line needs {needed} bytes")
            }
        }
    }
}

impl core::error::Error for RenderError {}
