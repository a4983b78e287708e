//! `tracing` spans timed into [`SlowSpans`]: a tracing-subscriber [`Layer`] that records
//! each span's duration into the per-name histograms and the slowest-span sets.
//!
//! ```
//! use plimsoll::tracing_layer::{OpenSpans, SpanLayer};
//! use plimsoll::{Registry, SlowSpans, SlowSpansConfig};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! static REGISTRY: Registry<8> = Registry::new();
//! static SPANS: SlowSpans = SlowSpans::new(SlowSpansConfig::DEFAULT);
//! static OPEN_SPANS: OpenSpans = OpenSpans::new();
//!
//! SPANS.register(&REGISTRY).expect("room in the registry");
//! OPEN_SPANS.register(&REGISTRY).expect("room in the registry");
//! let subscriber = tracing_subscriber::registry().with(SpanLayer::new(&SPANS, &OPEN_SPANS));
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("checkout", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736").entered();
//! });
//! assert_eq!(SPANS.recorded(), 1);
//! ```
//!
//! # What is recorded
//!
//! A span's duration is the wall time from its creation to its close, like the latency its
//! caller sees: it includes the time the span was not entered (an instrumented future
//! waiting for I/O), and a span entered many times is one span. At close the layer records
//! it with [`SlowSpans::record`] under the span's name (its `name`, not its target), so the
//! names are bounded by the `SlowSpans`' table: names beyond it share its `__overflow__`
//! series and are counted in `plimsoll_span_name_overflow_total`. The span's start is its
//! close time by the layer's clock ([`SpanLayer::clock`], [`StdClock`] by default, which
//! the exporter also uses) less its duration.
//!
//! # Trace ids
//!
//! A span field named `trace_id` holding 32 hexadecimal digits (OpenTelemetry's and W3C
//! Trace Context's form, as a string, a `Display` or a `Debug` value) or a `u128` is kept
//! as the span's trace id, whether set at creation or recorded later with
//! `Span::record`; the first valid one a span gets is kept. A span without one takes its
//! nearest ancestor's. Any other value (wrong length, not hexadecimal, all zeros, which
//! W3C reserves for "no trace") is ignored and counted in
//! `plimsoll_tracing_invalid_trace_ids_total`.
//!
//! # Memory
//!
//! The layer allocates nothing per span: it does not use tracing-subscriber's span
//! extensions (inserting into them boxes the value), but keeps each open span's start and
//! trace id in the fixed table of an [`OpenSpans`], declared as a `static` like the
//! `SlowSpans`. Spans cost only what tracing-subscriber's own span storage (the
//! `Registry`'s pooled slots) costs; `tests/it/middleware.rs` checks that a thread
//! creating and closing spans makes as many allocations with the layer as without it.
//!
//! A span takes a slot among the [`PROBE`] slots that follow its id's hash and frees it at
//! close. If all of them are taken (the table is nearly full: size it above the most spans
//! open at once, twice that for a margin), the span is not timed, and is counted in
//! `plimsoll_tracing_untimed_spans_total`. One `OpenSpans` serves one subscriber, since
//! span ids are only unique within one.
//!
//! # When not to use it
//!
//! It times spans; it is not a tracer. Use an OpenTelemetry exporter to ship whole traces,
//! and this layer for the fixed-memory view of which operations are slow.

use crate::StdClock;
use plimsoll_core::{Clock, Counter, Exposable, RegisterError, Registry, SlowSpans, Unlabelled};
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::time::Instant;
use tracing_core::Subscriber;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The field whose value is taken as the span's trace id.
pub const TRACE_ID_FIELD: &str = "trace_id";
/// How many slots after its id's hash a span may take.
pub const PROBE: usize = 16;

/// The layer's default clock.
static DEFAULT_CLOCK: StdClock = StdClock::new();

/// `trace_state` values: no trace id, one being written, one set.
const TRACE_NONE: u8 = 0;
const TRACE_WRITING: u8 = 1;
const TRACE_SET: u8 = 2;

/// One open span: its id (0 while the slot is free), its start and its trace id.
#[derive(Debug)]
struct OpenSlot {
    id: AtomicU64,
    start_ns: AtomicU64,
    trace: [AtomicU64; 2],
    trace_state: AtomicU8,
}

impl OpenSlot {
    const fn new() -> Self {
        Self {
            id: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            trace: [AtomicU64::new(0), AtomicU64::new(0)],
            trace_state: AtomicU8::new(TRACE_NONE),
        }
    }

    /// Keeps `trace` unless the span has one already. The state word makes a reader on
    /// another thread (a child closing) see both halves or neither.
    fn set_trace(&self, trace: [u8; 16]) {
        if self.trace_state.compare_exchange(TRACE_NONE, TRACE_WRITING, Acquire, Relaxed).is_err() {
            return;
        }
        let (high, low) = trace.split_at(8);
        self.trace[0].store(u64::from_be_bytes(high.try_into().unwrap_or_default()), Relaxed);
        self.trace[1].store(u64::from_be_bytes(low.try_into().unwrap_or_default()), Relaxed);
        self.trace_state.store(TRACE_SET, Release);
    }

    fn trace(&self) -> Option<[u8; 16]> {
        if self.trace_state.load(Acquire) != TRACE_SET {
            return None;
        }
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&self.trace[0].load(Relaxed).to_be_bytes());
        trace[8..].copy_from_slice(&self.trace[1].load(Relaxed).to_be_bytes());
        Some(trace)
    }
}

/// The fixed table of open spans a [`SpanLayer`] times, for up to `N` spans open at once,
/// and its two fallback counters. See the [module docs](self#memory).
#[derive(Debug)]
pub struct OpenSpans<const N: usize = 1024> {
    slots: [OpenSlot; N],
    untimed: Unlabelled<Counter>,
    invalid_trace_ids: Unlabelled<Counter>,
}

impl<const N: usize> OpenSpans<N> {
    /// Size in bytes: 40 per slot on a 64-bit target, 41 kB for the default 1,024.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();
    /// The number of families [`register`](Self::register) adds.
    pub const FAMILIES: usize = 2;

    /// No open spans.
    pub const fn new() -> Self {
        const { assert!(N > 0, "OpenSpans needs room for at least one span") };
        Self {
            slots: [const { OpenSlot::new() }; N],
            untimed: Unlabelled::new(
                "plimsoll_tracing_untimed_spans",
                "Spans not timed because the table of open spans had no free slot for them.",
            ),
            invalid_trace_ids: Unlabelled::new(
                "plimsoll_tracing_invalid_trace_ids",
                "Span trace_id values ignored: not 32 hexadecimal digits, or all zeros.",
            ),
        }
    }

    /// Registers the 2 families with `registry`. Fails without registering any if the
    /// registry has no room for both.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 2] = [&self.untimed, &self.invalid_trace_ids];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }

    /// Spans open now (a scan of the table).
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|slot| slot.id.load(Relaxed) != 0).count()
    }

    /// Spans not timed for want of a slot.
    pub fn untimed(&self) -> u64 {
        self.untimed.get()
    }

    /// `trace_id` values ignored.
    pub fn invalid_trace_ids(&self) -> u64 {
        self.invalid_trace_ids.get()
    }

    /// The slots span `id` may take, from its hash on, wrapping around.
    fn window(&self, id: u64) -> impl Iterator<Item = &OpenSlot> {
        // Fibonacci hashing spreads the registry's ids (slab indexes with generation bits).
        let hash = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let start = ((u128::from(hash) * N as u128) >> 64) as usize;
        self.slots[start..].iter().chain(&self.slots[..start]).take(PROBE.min(N))
    }

    /// Takes a free slot for span `id` started at `start_ns`; counts it untimed if none.
    fn claim(&self, id: u64, start_ns: u64) -> Option<&OpenSlot> {
        // Acquire pairs with `release`'s store, so the previous span's state is reset here.
        let slot = self.window(id).find(|slot| slot.id.compare_exchange(0, id, Acquire, Relaxed).is_ok());
        match slot {
            Some(slot) => slot.start_ns.store(start_ns, Relaxed),
            None => self.untimed.inc(),
        }
        slot
    }

    /// The slot of open span `id`. Slots are freed anywhere in a window, so the whole
    /// window is searched rather than stopping at a free slot.
    fn find(&self, id: u64) -> Option<&OpenSlot> {
        self.window(id).find(|slot| slot.id.load(Acquire) == id)
    }

    /// Frees span `id`'s slot; returns its start and trace id.
    fn release(&self, id: u64) -> Option<(u64, Option<[u8; 16]>)> {
        let slot = self.find(id)?;
        let taken = (slot.start_ns.load(Relaxed), slot.trace());
        slot.trace_state.store(TRACE_NONE, Relaxed);
        slot.id.store(0, Release);
        Some(taken)
    }
}

impl<const N: usize> Default for OpenSpans<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A tracing-subscriber [`Layer`] that times spans into a [`SlowSpans`], keeping open spans
/// in an [`OpenSpans`]. See the [module docs](self).
pub struct SpanLayer<const NAMES: usize = 16, const SLOWEST: usize = 10, const OPEN: usize = 1024> {
    spans: &'static SlowSpans<NAMES, SLOWEST>,
    open: &'static OpenSpans<OPEN>,
    clock: &'static (dyn Clock + Send + Sync),
    origin: Instant,
}

impl<const NAMES: usize, const SLOWEST: usize, const OPEN: usize> fmt::Debug for SpanLayer<NAMES, SLOWEST, OPEN> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanLayer")
            .field("spans", self.spans)
            .field("open", &self.open.in_use())
            .finish_non_exhaustive()
    }
}

impl<const NAMES: usize, const SLOWEST: usize, const OPEN: usize> SpanLayer<NAMES, SLOWEST, OPEN> {
    /// A layer timing spans into `spans`, with `open` for the spans open at once, and
    /// [`StdClock`].
    pub fn new(spans: &'static SlowSpans<NAMES, SLOWEST>, open: &'static OpenSpans<OPEN>) -> Self {
        Self { spans, open, clock: &DEFAULT_CLOCK, origin: Instant::now() }
    }

    /// The clock that dates spans and windows the slowest sets (default: [`StdClock`],
    /// Unix-epoch milliseconds): the one the exporter reads `SlowSpans` with.
    pub fn clock<C: Clock + Send + Sync>(mut self, clock: &'static C) -> Self {
        self.clock = clock;
        self
    }

    /// Monotonic nanoseconds since the layer was made.
    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

impl<S, const NAMES: usize, const SLOWEST: usize, const OPEN: usize> Layer<S> for SpanLayer<NAMES, SLOWEST, OPEN>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if let Some(slot) = self.open.claim(id.into_u64(), self.elapsed_ns()) {
            attrs.record(&mut TraceIdVisitor { open: self.open, slot });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(slot) = self.open.find(id.into_u64()) {
            values.record(&mut TraceIdVisitor { open: self.open, slot });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some((start_ns, trace)) = self.open.release(id.into_u64()) else {
            return;
        };
        let duration_us = self.elapsed_ns().saturating_sub(start_ns) / 1_000;
        // The registry keeps a closing span's data until every layer has seen the close.
        let Some(span) = ctx.span(&id) else {
            return;
        };
        // A parent stays open while a child is, so its slot (and trace id) is still there.
        let trace =
            trace.or_else(|| span.scope().skip(1).find_map(|parent| self.open.find(parent.id().into_u64())?.trace()));
        let now_ms = self.clock.now_ms();
        self.spans.record(span.name(), now_ms.saturating_sub(duration_us / 1_000), duration_us, trace, now_ms);
    }
}

/// Reads the `trace_id` field into a slot; ignores every other field.
struct TraceIdVisitor<'a, const N: usize> {
    open: &'a OpenSpans<N>,
    slot: &'a OpenSlot,
}

impl<const N: usize> TraceIdVisitor<'_, N> {
    fn keep(&self, trace: Option<[u8; 16]>) {
        match trace {
            Some(trace) => self.slot.set_trace(trace),
            None => self.open.invalid_trace_ids.inc(),
        }
    }
}

impl<const N: usize> Visit for TraceIdVisitor<'_, N> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == TRACE_ID_FIELD {
            self.keep(parse_trace_id(value.as_bytes()));
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if field.name() == TRACE_ID_FIELD {
            self.keep((value != 0).then(|| value.to_be_bytes()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() != TRACE_ID_FIELD {
            return;
        }
        // Formatted on the stack: a value longer than a quoted trace id cannot be one.
        let mut text = StackText { bytes: [0; 34], len: 0 };
        let trace = match fmt::write(&mut text, format_args!("{value:?}")) {
            Ok(()) => {
                let written = &text.bytes[..text.len];
                // `?value` of a string is quoted.
                let unquoted = written.strip_prefix(b"\"").and_then(|w| w.strip_suffix(b"\"")).unwrap_or(written);
                parse_trace_id(unquoted)
            }
            Err(fmt::Error) => None,
        };
        self.keep(trace);
    }
}

/// A fixed buffer that fails to take more than it holds.
struct StackText {
    bytes: [u8; 34],
    len: usize,
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// 32 hexadecimal digits, either case, not all zeros.
fn parse_trace_id(text: &[u8]) -> Option<[u8; 16]> {
    let digits: &[u8; 32] = text.try_into().ok()?;
    let mut trace = [0u8; 16];
    for (byte, pair) in trace.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high << 4 | low) as u8;
    }
    (trace != [0; 16]).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes the docs state.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn footprints() {
        assert_eq!(core::mem::size_of::<OpenSlot>(), 40);
        assert_eq!(OpenSpans::<1024>::FOOTPRINT, 41_104);
    }

    #[test]
    fn trace_ids_are_32_hex_digits_not_all_zero() {
        let id = parse_trace_id(b"4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id[..3], [0x4b, 0xf9, 0x2f]);
        assert_eq!(parse_trace_id(b"4BF92F3577B34DA6A3CE929D0E0E4736"), Some(id));
        for bad in [
            &b"4bf92f3577b34da6a3ce929d0e0e473"[..],
            b"4bf92f3577b34da6a3ce929d0e0e47360",
            b"",
            b"+bf92f3577b34da6a3ce929d0e0e4736",
        ] {
            assert_eq!(parse_trace_id(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_trace_id(&[b'0'; 32]), None);
        assert_eq!(parse_trace_id("é".repeat(16).as_bytes()), None);
    }

    #[test]
    fn slots_are_claimed_found_and_released() {
        let open: Box<OpenSpans<4>> = Box::default();
        let slot = open.claim(7, 100).unwrap();
        slot.set_trace([1; 16]);
        slot.set_trace([2; 16]);
        assert!(open.claim(8, 200).is_some());
        assert_eq!(open.in_use(), 2);
        assert_eq!(open.release(7), Some((100, Some([1; 16]))), "the first trace id is kept");
        assert_eq!(open.release(7), None);
        assert_eq!(open.release(8), Some((200, None)));
        assert_eq!(open.in_use(), 0);
        for id in 1..=4 {
            assert!(open.claim(id, 0).is_some());
        }
        assert!(open.claim(5, 0).is_none(), "a full table times nothing more");
        assert_eq!(open.untimed(), 1);
        let reused = open.claim(9, 0).map(|_| ());
        assert_eq!(reused, None);
        assert_eq!(open.release(3).map(|(start, trace)| (start, trace.is_none())), Some((0, true)));
        assert!(open.claim(9, 5).is_some(), "a freed slot is taken again, with no stale trace id");
        assert_eq!(open.release(9), Some((5, None)));
    }
}
