//! Serving a `prometheus` crate registry on `/metrics` beside Plimsoll's series (feature
//! `prometheus`); the behaviour is documented on [`Exporter::prometheus_registry`].

use super::Exporter;
use crate::bridge::prometheus::is_exposed;
use ::prometheus::proto::MetricType;
use ::prometheus::{Registry as PrometheusRegistry, TextEncoder};
use bytes::Bytes;
use plimsoll_core::Registry;

impl<const F: usize> Exporter<F> {
    /// A `prometheus` crate registry whose families `/metrics` appends after Plimsoll's,
    /// for a program moving to Plimsoll that still has metrics there. Each scrape gathers
    /// and encodes it with the crate's `TextEncoder` when it starts, then streams
    /// Plimsoll's exposition and that text after it.
    ///
    /// - **Format.** The answer is Prometheus text whatever `Accept` asks for: the crate
    ///   writes nothing else, and an OpenMetrics exposition ends at `# EOF`, so appending
    ///   to one would make it malformed.
    /// - **Names.** A family of this registry whose name Plimsoll's exposition writes in a
    ///   `# TYPE` line (a Plimsoll counter `x` is `x_total`; Plimsoll's own counters) is
    ///   left out, since a second family of one name makes the whole scrape invalid; so is
    ///   an untyped family, which the encoder cannot write. A comment line
    ///   `# plimsoll: left out prometheus family "NAME": WHY` says so in the exposition.
    /// - **Cost.** Gathering allocates the crate's families and their text on every
    ///   scrape, as the crate's own handlers do, so the allocation-free scrape of the
    ///   [module docs](super#what-it-allocates) holds only without this registry. The text
    ///   is freed when the response ends.
    pub fn prometheus_registry(mut self, registry: PrometheusRegistry) -> Self {
        self.prometheus = Some(registry);
        self
    }
}

/// `registry`'s exposition in Prometheus text, without the families whose names
/// `plimsoll`'s exposition writes (or that the encoder cannot write), each left out with a
/// comment line.
pub(crate) fn exposition<const F: usize>(registry: &PrometheusRegistry, plimsoll: &Registry<F>) -> Bytes {
    let encoder = TextEncoder::new();
    let mut text = String::new();
    for family in registry.gather() {
        let name = family.name();
        let why = if is_exposed(plimsoll, name) {
            "the name is taken"
        } else if family.get_field_type() == MetricType::UNTYPED {
            "untyped families cannot be encoded"
        } else if encoder.encode_utf8(std::slice::from_ref(&family), &mut text).is_ok() {
            continue;
        } else {
            // The encoder checks a family before writing any of it, so a refused family
            // (no series or no name, which `gather` already drops) leaves no partial lines.
            "the encoder refused it"
        };
        text.push_str(&format!("# plimsoll: left out prometheus family {name:?}: {why}\n"));
    }
    Bytes::from(text)
}
