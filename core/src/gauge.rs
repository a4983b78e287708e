//! Gauges: values that go up and down, as `i64` or `f64`.

use crate::atomic::{AtomicF64, AtomicI64, Ordering::Relaxed};

/// An `i64` gauge: one relaxed atomic operation per update, wrapping on overflow.
///
/// ```
/// use plimsoll_core::Gauge;
/// static IN_FLIGHT: Gauge = Gauge::new();
/// IN_FLIGHT.add(3);
/// IN_FLIGHT.sub(1);
/// assert_eq!(IN_FLIGHT.get(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Size of a gauge in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A gauge at zero.
    pub const fn new() -> Self {
        Self(AtomicI64::new(0))
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        self.0.store(value, Relaxed);
    }

    /// Adds `delta`.
    #[inline]
    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta, Relaxed);
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: i64) {
        self.0.fetch_sub(delta, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// An `f64` gauge. `set` is one store; `add`/`sub` are a compare-exchange loop (one
/// load and one compare-exchange when uncontended).
///
/// Every `f64` is a valid gauge value, NaN and infinities included: they are exported
/// as `NaN`, `+Inf` and `-Inf`, as the Prometheus data model allows.
#[derive(Debug, Default)]
pub struct GaugeF64(AtomicF64);

impl GaugeF64 {
    /// Size of a gauge in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A gauge at zero.
    pub const fn new() -> Self {
        Self(AtomicF64::new(0.0))
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value, Relaxed);
    }

    /// Adds `delta`.
    #[inline]
    pub fn add(&self, delta: f64) {
        self.0.fetch_add(delta, Relaxed);
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: f64) {
        self.0.fetch_sub(delta, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        self.0.load(Relaxed)
    }
}
