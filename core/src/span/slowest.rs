//! The fixed sets of slowest spans: one per time window, kept sorted.

/// The longest span name a slowest set keeps, in bytes (longer names are cut).
pub const MAX_SPAN_NAME_LEN: usize = 64;

/// One span of a slowest set ([`SlowSpans::for_each_slowest`](super::SlowSpans::for_each_slowest)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SlowSpan {
    name: [u8; MAX_SPAN_NAME_LEN],
    name_len: u8,
    duration_us: u64,
    start_ms: u64,
    trace_id: Option<[u8; 16]>,
}

impl core::fmt::Debug for SlowSpan {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlowSpan")
            .field("name", &self.name())
            .field("duration_us", &self.duration_us)
            .field("start_ms", &self.start_ms)
            .field("trace_id", &self.trace_id)
            .finish()
    }
}

impl SlowSpan {
    const EMPTY: Self = Self { name: [0; MAX_SPAN_NAME_LEN], name_len: 0, duration_us: 0, start_ms: 0, trace_id: None };

    pub(super) fn new(name: &str, start_ms: u64, duration_us: u64, trace_id: Option<[u8; 16]>) -> Self {
        // Cut at a character boundary, so that the kept bytes are still a `str`.
        let mut len = name.len().min(MAX_SPAN_NAME_LEN);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut span = Self { name_len: len as u8, duration_us, start_ms, trace_id, ..Self::EMPTY };
        span.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        span
    }

    /// The span's name, cut to [`MAX_SPAN_NAME_LEN`] bytes at a character boundary.
    pub fn name(&self) -> &str {
        // The bytes were copied from a `str` and cut at a character boundary.
        core::str::from_utf8(&self.name[..usize::from(self.name_len)]).unwrap_or_default()
    }

    /// The duration, in microseconds.
    pub const fn duration_us(&self) -> u64 {
        self.duration_us
    }

    /// When the span started, in the caller's milliseconds.
    pub const fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// The trace the span belongs to, if the caller gave one.
    pub const fn trace_id(&self) -> Option<[u8; 16]> {
        self.trace_id
    }
}

/// Up to `N` spans, slowest first; among equal durations, the earlier recorded first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slowest<const N: usize> {
    spans: [SlowSpan; N],
    len: usize,
}

impl<const N: usize> Slowest<N> {
    pub(super) const EMPTY: Self = Self { spans: [SlowSpan::EMPTY; N], len: 0 };

    pub(super) fn as_slice(&self) -> &[SlowSpan] {
        &self.spans[..self.len]
    }

    /// Takes `span` in if the set has room or `span` is slower than its fastest, which it
    /// then drops: `O(N)`.
    pub(super) fn insert(&mut self, span: SlowSpan) {
        let at = self.as_slice().partition_point(|s| s.duration_us >= span.duration_us);
        if at == N {
            return;
        }
        self.len = (self.len + 1).min(N);
        self.spans[at..self.len].rotate_right(1);
        self.spans[at] = span;
    }

    /// The duration a span must exceed to enter the set: the fastest one's when full, else
    /// `None` (any span enters).
    pub(super) fn floor_us(&self) -> Option<u64> {
        (self.len == N).then(|| self.spans[N - 1].duration_us)
    }
}
