//! The registry: a fixed-capacity list of families that renders them all.

use crate::RegisterError;
use crate::family::{Descriptor, Exposable, Fallbacks, OVERFLOW_LABEL_VALUE};
use crate::metric::MetricKind;
use crate::render::{Format, MAX_NUMBER_LEN, Renderer};
use core::cell::RefCell;
use critical_section::Mutex;

/// One of Plimsoll's own counters, which every exposition writes after the registered
/// families, with one series `{family="<name>"}` per family it applies to. Bridges and
/// pushers that convert a registry read them from [`OWN_COUNTERS`].
#[derive(Debug, Clone, Copy)]
pub struct OwnCounter {
    /// Its name, without the `_total` suffix.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    count: fn(&Fallbacks) -> u64,
    applies: fn(&Descriptor<'_>) -> bool,
}

impl OwnCounter {
    /// Whether it has a series for `family`.
    pub fn applies_to(&self, family: &dyn Exposable) -> bool {
        (self.applies)(&family.descriptor())
    }

    /// Its value for `family`, from the family's [`Fallbacks`].
    pub fn value(&self, family: &dyn Exposable) -> u64 {
        (self.count)(&family.fallbacks())
    }
}

/// Plimsoll's own counters, in the order every exposition writes them.
pub const OWN_COUNTERS: [OwnCounter; 3] = [
    OwnCounter {
        name: "plimsoll_series_overflow",
        help: "Records routed to a family's overflow series because the family was full.",
        count: |f| f.series_overflow,
        applies: |d| !d.label_names.is_empty(),
    },
    OwnCounter {
        name: "plimsoll_label_value_rejected",
        help: "Records routed to a family's overflow series because a label value was too long.",
        count: |f| f.label_value_rejected,
        applies: |d| !d.label_names.is_empty(),
    },
    OwnCounter {
        name: "plimsoll_observations_rejected",
        help: "NaN, infinite or negative observations rejected by a histogram family.",
        count: |f| f.invalid_observations,
        applies: |d| d.kind == MetricKind::Histogram,
    },
];

pub(crate) fn is_reserved_name(name: &str) -> bool {
    OWN_COUNTERS.iter().any(|own| own.name == name)
}

/// Up to `F` registered families. A `const fn` constructor, so it lives in a `static`.
///
/// Registration validates the family (see [`RegisterError`]) and takes a short critical
/// section; rendering reads the list one family at a time. Families are never removed,
/// so a rendered scrape is always a consistent list of families.
pub struct Registry<const F: usize> {
    families: Mutex<RefCell<heapless::Vec<&'static dyn Exposable, F>>>,
}

impl<const F: usize> core::fmt::Debug for Registry<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry").field("families", &self.len()).field("capacity", &F).finish()
    }
}

impl<const F: usize> Registry<F> {
    /// Size of the registry itself (not its families) in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty registry.
    pub const fn new() -> Self {
        const { assert!(F > 0, "a registry needs room for at least one family") };
        Self { families: Mutex::new(RefCell::new(heapless::Vec::new())) }
    }

    /// Adds `family` after checking its names, unit, help and buckets and that no family
    /// of the same name is registered.
    pub fn register(&self, family: &'static dyn Exposable) -> Result<(), RegisterError> {
        family.validate()?;
        let name = family.descriptor().name;
        critical_section::with(|cs| {
            let mut families = self.families.borrow_ref_mut(cs);
            if families.iter().any(|f| f.descriptor().name == name) {
                return Err(RegisterError::DuplicateFamily(name));
            }
            families.push(family).map_err(|_| RegisterError::RegistryFull(name))
        })
    }

    /// Number of registered families.
    pub fn len(&self) -> usize {
        critical_section::with(|cs| self.families.borrow_ref(cs).len())
    }

    /// Whether no family is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The family at `index`, in registration order.
    pub fn get(&self, index: usize) -> Option<&'static dyn Exposable> {
        critical_section::with(|cs| self.families.borrow_ref(cs).get(index).copied())
    }

    /// The registered families, in registration order.
    pub fn families(&self) -> impl Iterator<Item = &'static dyn Exposable> + '_ {
        (0..).map_while(|i| self.get(i))
    }

    /// Bytes used by the registry and all its families: fixed once registration is done.
    pub fn footprint(&self) -> usize {
        Self::FOOTPRINT + self.families().map(|f| f.footprint()).sum::<usize>()
    }

    /// The longest line any rendering of the registered families can produce, in either
    /// format; a render buffer at least this long never fails.
    pub fn max_line_len(&self) -> usize {
        self.families().map(max_line_len_of).max().unwrap_or(0).max(OWN_HEADER_MAX)
    }

    /// The longest unit a rendering in `format` writes whole (a line of text, or a
    /// protobuf message); a render buffer at least this long never fails.
    pub fn max_message_len(&self, format: Format) -> usize {
        match format {
            Format::Prometheus | Format::OpenMetrics => self.max_line_len(),
            Format::Protobuf => self.families().map(crate::render::protobuf::max_message_len_of).max().unwrap_or(0),
        }
    }

    /// A renderer of the whole exposition in `format`.
    pub fn renderer(&self, format: Format) -> Renderer<'_, F> {
        Renderer::new(self, format)
    }
}

impl<const F: usize> Default for Registry<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest own-counter line: `# HELP`/`# TYPE` lines are below 120 bytes.
const OWN_HEADER_MAX: usize = 128;

/// Worst case, every label value at its byte limit and every byte escaped.
pub(crate) fn max_line_len_of(family: &dyn Exposable) -> usize {
    let d = family.descriptor();
    // The overflow series writes `__overflow__` whatever the family's bound.
    let value = 2 * family.label_value_capacity().max(OVERFLOW_LABEL_VALUE.len());
    let labels: usize = d.label_names.iter().map(|l| l.len() + value + 4).sum();
    let le = if d.kind == MetricKind::Histogram { "le".len() + MAX_NUMBER_LEN + 4 } else { 0 };
    let exemplar = if d.exemplars { crate::render::MAX_EXEMPLAR_TEXT_LEN } else { 0 };
    let sample = d.name.len() + "_bucket{}".len() + labels + le + MAX_NUMBER_LEN + 2 + exemplar;
    let help = "# HELP _total \n".len() + d.name.len() + 2 * d.help.len();
    let own = "plimsoll_observations_rejected_total{family=\"\"} \n".len() + d.name.len() + MAX_NUMBER_LEN;
    sample.max(help).max(own)
}
