//! Exemplars: a trace id attached to one observation, kept in fixed slots.
//!
//! A slot holds the latest exemplar written to it under a sequence lock made of atomics:
//! a writer takes the slot by moving its version from even to odd (a compare-exchange; a
//! writer that finds the slot taken gives up, keeping the other writer's exemplar, since
//! an exemplar is a sample of observations rather than a count of them), writes the
//! fields and makes the version even again. A reader takes the fields only if the
//! version was even and unchanged across its reads, and otherwise tries again a few times
//! before reporting the slot as busy. No lock is held, nothing allocates, and a torn
//! exemplar is never returned: the loom model at the end of this file checks it.

use crate::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence};

/// A trace id: the 16 bytes of a W3C trace context (OpenTelemetry) trace id.
pub type TraceId = [u8; 16];

/// One observation with the trace it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Exemplar {
    /// The trace the observation was made in.
    pub trace_id: TraceId,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// How often a reader tries again when a writer is busy in the slot.
const READ_ATTEMPTS: usize = 4;

/// A slot holding the latest exemplar written to it. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct ExemplarSlot {
    /// Even when stable, odd while a writer is in; 0 while never written.
    version: AtomicU64,
    trace_id: [AtomicU64; 2],
    value: AtomicU64,
    timestamp_ms: AtomicU64,
}

impl ExemplarSlot {
    /// An empty slot.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            version: AtomicU64::new(0),
            trace_id: [AtomicU64::new(0), AtomicU64::new(0)],
            value: AtomicU64::new(0),
            timestamp_ms: AtomicU64::new(0),
        }
    }

    /// An empty slot (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            version: AtomicU64::new(0),
            trace_id: [AtomicU64::new(0), AtomicU64::new(0)],
            value: AtomicU64::new(0),
            timestamp_ms: AtomicU64::new(0),
        }
    }

    /// Writes `exemplar` unless another writer is in the slot; returns whether it did.
    pub(crate) fn store(&self, exemplar: &Exemplar) -> bool {
        let version = self.version.load(Relaxed);
        // Acquire pairs with the previous writer's release of the version, so this
        // writer's field stores come after that writer's in every field's order.
        if version & 1 == 1 || self.version.compare_exchange(version, version + 1, Acquire, Relaxed).is_err() {
            return false;
        }
        // Orders the odd version before the field stores, for a reader that sees any of
        // them (its acquire fence pairs with this one).
        fence(Release);
        let [high, low] = &self.trace_id;
        high.store(u64::from_be_bytes(exemplar.trace_id[..8].try_into().expect("8 bytes")), Relaxed);
        low.store(u64::from_be_bytes(exemplar.trace_id[8..].try_into().expect("8 bytes")), Relaxed);
        self.value.store(exemplar.value.to_bits(), Relaxed);
        self.timestamp_ms.store(exemplar.timestamp_ms, Relaxed);
        // Publishes the fields with the even version.
        self.version.store(version + 2, Release);
        true
    }

    /// The exemplar in the slot; `None` if it was never written, or a writer kept it busy
    /// through every attempt.
    pub(crate) fn load(&self) -> Option<Exemplar> {
        for _ in 0..READ_ATTEMPTS {
            let before = self.version.load(Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                continue;
            }
            let [high, low] = &self.trace_id;
            let (high, low) = (high.load(Relaxed), low.load(Relaxed));
            let value = f64::from_bits(self.value.load(Relaxed));
            let timestamp_ms = self.timestamp_ms.load(Relaxed);
            fence(Acquire);
            if self.version.load(Relaxed) == before {
                let mut trace_id = [0; 16];
                trace_id[..8].copy_from_slice(&high.to_be_bytes());
                trace_id[8..].copy_from_slice(&low.to_be_bytes());
                return Some(Exemplar { trace_id, value, timestamp_ms });
            }
        }
        None
    }
}

/// A writer racing a reader and another writer: the reader gets nothing, or one of the
/// written exemplars whole; the slot ends holding one of them whole.
/// `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p plimsoll-core --release --lib loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// An exemplar whose every field is derived from `n`, so a mix of two is detectable.
    fn exemplar(n: u8) -> Exemplar {
        Exemplar { trace_id: [n; 16], value: f64::from(n), timestamp_ms: u64::from(n) * 1_000 }
    }

    fn which(e: Option<Exemplar>) -> &'static str {
        match e {
            None => "none",
            Some(e) if e == exemplar(1) => "first",
            Some(e) if e == exemplar(2) => "second",
            Some(e) => panic!("a torn exemplar: {e:?}"),
        }
    }

    #[test]
    fn loom_readers_never_see_a_torn_exemplar() {
        let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
        let report = std::sync::Arc::clone(&seen);
        loom::model(move || {
            let slot = Arc::new(ExemplarSlot::new());
            let writers = [1, 2].map(|n| {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.store(&exemplar(n)))
            });
            let reader = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || which(slot.load()))
            };
            let read = reader.join().unwrap();
            let stored = writers.map(|w| w.join().unwrap());
            assert!(stored.iter().any(|&s| s), "at least one writer gets the slot");
            let last = which(slot.load());
            assert_ne!(last, "none");
            report.lock().unwrap().insert(read);
        });
        let seen = seen.lock().unwrap();
        assert!(seen.contains("none") && (seen.contains("first") || seen.contains("second")), "{seen:?}");
    }
}
