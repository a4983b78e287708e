//! What the command keeps and snapshots: one [`Slo`] per configured SLO, and the one list
//! of snapshot parts that `serve`, `demo` and `inspect` all use.
//!
//! # Start-up allocation
//!
//! SLO definitions come from the configuration file, known only at run time, while an
//! [`SloExport`](plimsoll::SloExport) holds `&'static` SLOs. So [`build_slos`] allocates
//! each SLO's name and the [`Slo`] itself (17,472 bytes on a 64-bit target) once, at
//! start-up, and leaks them with `Box::leak`, together with the slice that lists them; the
//! snapshot parts list is leaked the same way. That is at most [`MAX_SLOS`] SLOs, about
//! 140 KiB, allocated before the exporter starts and kept until the process exits; nothing
//! here allocates or frees after start-up.
//!
//! # The snapshot's parts
//!
//! [`state_parts`] is the only place that says what a snapshot holds: the SLOs, in the
//! order [`slo_definitions`] gives them (the configuration file's order, then, for the
//! demo, its `demo_latency` SLO). `serve` and `demo` save and restore with it and `inspect`
//! decodes with it, so the same configuration always gives the same fingerprint. The
//! fingerprint hashes each SLO's name, what makes its events good (the latency threshold)
//! and its ring sizes, so adding, removing, renaming or reordering SLOs, or changing a
//! latency threshold, makes an older snapshot a `ConfigMismatch`: `serve` moves it aside
//! and starts fresh, `inspect` reports it. Objectives and burn thresholds are not hashed:
//! tightening an objective keeps the budget's history.
//!
//! The demo's windows (request rate, latency) are not in the list: they span at most an
//! hour and only feed its status line. Nor are its monitors (rate limiter, security events,
//! top limited clients, slow queries, slow spans, the payment breaker): they describe the
//! run in progress, and a restart starts them empty, as it starts the shop's traffic. A state directory written by `demo` therefore does
//! not match `serve` with the same file of SLOs (the demo adds `demo_latency`); give each
//! its own directory, and pass `inspect --demo` to decode the demo's snapshots.

use plimsoll::snapshot::SnapshotPart;
use plimsoll::{Config, GoodEvent, MAX_SLOS, Slo, SloConfig, SloError};

/// The demo's SLO: 99 % of its shop's answers within 300 ms, a 5xx counting as bad.
pub(crate) const DEMO_SLO_NAME: &str = "demo_latency";
const DEMO_SLO_OBJECTIVE: f64 = 0.99;
pub(crate) const DEMO_SLO_THRESHOLD_SECONDS: f64 = 0.3;

/// The SLOs to build: the configuration's, in file order, then the demo's if `demo`.
pub(crate) fn slo_definitions(config: &Config, demo: bool) -> Vec<SloConfig> {
    let mut definitions = config.slos.clone();
    if demo {
        definitions.push(SloConfig {
            name: DEMO_SLO_NAME.to_owned(),
            objective: DEMO_SLO_OBJECTIVE,
            latency_threshold_seconds: Some(DEMO_SLO_THRESHOLD_SECONDS),
        });
    }
    definitions
}

/// One leaked [`Slo`] per definition, in order, each checked as an
/// [`SloExport`](plimsoll::SloExport) would check it: valid, uniquely named, at most
/// [`MAX_SLOS`] of them. See the [module docs](self) for what is allocated.
pub(crate) fn build_slos(definitions: &[SloConfig]) -> Result<&'static [&'static Slo], SloError> {
    let mut slos: Vec<&'static Slo> = Vec::with_capacity(definitions.len());
    for definition in definitions {
        let name: &'static str = Box::leak(definition.name.clone().into_boxed_str());
        let good = match definition.latency_threshold_seconds {
            Some(seconds) => GoodEvent::LatencyAtMost(seconds),
            None => GoodEvent::Success,
        };
        let slo: &'static Slo = Box::leak(Box::new(Slo::new(name, definition.objective, good)));
        slo.validate()?;
        if slos.iter().any(|other| other.name() == name) {
            return Err(SloError::DuplicateName(name));
        }
        if slos.len() == MAX_SLOS {
            return Err(SloError::ExportFull(name));
        }
        slos.push(slo);
    }
    Ok(Box::leak(slos.into_boxed_slice()))
}

/// What a snapshot holds, in order: see the [module docs](self#the-snapshots-parts).
/// Leaked once at start-up so the snapshot task can hold it.
pub(crate) fn state_parts(slos: &'static [&'static Slo]) -> &'static [&'static dyn SnapshotPart] {
    let parts: Vec<&'static dyn SnapshotPart> = slos.iter().map(|&slo| slo as &'static dyn SnapshotPart).collect();
    Box::leak(parts.into_boxed_slice())
}

/// The SLO named `name`, if built.
pub(crate) fn find(slos: &'static [&'static Slo], name: &str) -> Option<&'static Slo> {
    slos.iter().copied().find(|slo| slo.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plimsoll::snapshot;

    fn config_with(slos: &[(&str, Option<f64>)]) -> Config {
        let mut config = Config::from_vars(|_| None).expect("defaults");
        config.slos = slos
            .iter()
            .map(|&(name, latency)| SloConfig {
                name: name.to_owned(),
                objective: 0.999,
                latency_threshold_seconds: latency,
            })
            .collect();
        config
    }

    fn fingerprint(config: &Config, demo: bool) -> u64 {
        let slos = build_slos(&slo_definitions(config, demo)).expect("valid SLOs");
        snapshot::fingerprint(state_parts(slos))
    }

    #[test]
    fn the_demo_adds_its_slo_last() {
        let config = config_with(&[("api", None)]);
        let names: Vec<String> = slo_definitions(&config, true).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["api", DEMO_SLO_NAME]);
        assert_eq!(slo_definitions(&config, false).len(), 1);
    }

    #[test]
    fn the_same_configuration_gives_the_same_fingerprint() {
        let config = config_with(&[("api", None), ("checkout", Some(0.3))]);
        assert_eq!(fingerprint(&config, false), fingerprint(&config, false));
        assert_ne!(fingerprint(&config, false), fingerprint(&config, true), "the demo's SLO is a part");
        let reordered = config_with(&[("checkout", Some(0.3)), ("api", None)]);
        assert_ne!(fingerprint(&config, false), fingerprint(&reordered, false));
        let other_threshold = config_with(&[("api", None), ("checkout", Some(0.5))]);
        assert_ne!(fingerprint(&config, false), fingerprint(&other_threshold, false));
    }

    #[test]
    fn invalid_sets_are_typed_errors() {
        let demo_twice = config_with(&[(DEMO_SLO_NAME, Some(0.3))]);
        let duplicate = build_slos(&slo_definitions(&demo_twice, true));
        assert!(matches!(duplicate, Err(SloError::DuplicateName(DEMO_SLO_NAME))));
        let names: Vec<String> = (0..=MAX_SLOS).map(|i| format!("slo{i}")).collect();
        let too_many = config_with(&names.iter().map(|n| (n.as_str(), None)).collect::<Vec<_>>());
        assert!(matches!(build_slos(&too_many.slos), Err(SloError::ExportFull(_))));
        let control = config_with(&[("bad\nname", None)]);
        assert!(matches!(build_slos(&control.slos), Err(SloError::InvalidName(_))));
    }
}
