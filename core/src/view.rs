//! Read-only families over figures a component already holds.
//!
//! A [`View`] is a family whose series are not stored in it but read, at scrape time,
//! from counters and gauges that live in the component (a limiter's decision counters, a
//! security log's per-kind counts). The hot path then updates its own `Counter` directly,
//! with no label lookup, and the exposition still sees an ordinary labelled family.

use crate::family::{Descriptor, Exposable, Fallbacks};
use crate::sealed::Sealed;
use crate::{MAX_LABEL_VALUE_LEN, MetricKind, RegisterError, Sample};

/// Where a [`View`]'s series come from.
pub(crate) trait Rows: Sync {
    /// Series slots to walk when rendering.
    fn slots(&self) -> usize;
    /// The value of the series in `slot`, or `None` if the slot is empty.
    fn sample(&self, slot: usize) -> Option<Sample<'_>>;
    /// The value of label `label` of the series in `slot`.
    fn label_value(&self, slot: usize, label: usize) -> &str;
    /// The longest label value any series can have, in bytes.
    fn label_value_capacity(&self) -> usize;
}

/// A family named `name` with labels `L`, whose series are read from `rows`.
pub(crate) struct View<R, const L: usize> {
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    label_names: [&'static str; L],
    pub(crate) rows: R,
}

impl<R: Rows, const L: usize> View<R, L> {
    pub(crate) const fn new(
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        label_names: [&'static str; L],
        rows: R,
    ) -> Self {
        Self { name, help, kind, label_names, rows }
    }
}

impl<R, const L: usize> Sealed for View<R, L> {}

impl<R: Rows, const L: usize> Exposable for View<R, L> {
    fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            name: self.name,
            help: self.help,
            unit: None,
            kind: self.kind,
            label_names: &self.label_names,
            buckets: &[],
            native_buckets: 0,
            exemplars: false,
        }
    }

    fn slots(&self) -> usize {
        self.rows.slots()
    }

    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        self.rows.sample(slot)
    }

    fn label_value_capacity(&self) -> usize {
        self.rows.label_value_capacity().min(MAX_LABEL_VALUE_LEN)
    }

    fn label_value(&self, slot: usize, label: usize, out: &mut [u8; MAX_LABEL_VALUE_LEN]) -> usize {
        let value = self.rows.label_value(slot, label).as_bytes();
        let len = value.len().min(MAX_LABEL_VALUE_LEN);
        out[..len].copy_from_slice(&value[..len]);
        len
    }

    fn fallbacks(&self) -> Fallbacks {
        // Every series has a slot of its own: nothing overflows or is rejected.
        Fallbacks::default()
    }

    fn footprint(&self) -> usize {
        core::mem::size_of::<Self>()
    }

    fn series_in_use(&self) -> usize {
        (0..self.slots()).filter(|&slot| self.sample(slot).is_some()).count()
    }

    fn validate(&self) -> Result<(), RegisterError> {
        crate::family::validate(&self.descriptor())
    }
}
