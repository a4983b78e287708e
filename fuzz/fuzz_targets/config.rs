//! Configuration parsing: arbitrary values for every environment variable the command
//! reads, and an arbitrary TOML file of SLOs.
//!
//! Checked for every input: nothing panics; an error names a variable that was set (or the
//! file); an accepted configuration holds only what the docs accept (positive intervals and
//! limit, SLO objectives strictly between 0 and 1 with unique names and positive latency
//! thresholds); and nothing printed (error or configuration) depends on the token's text.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use plimsoll::Config;
use std::collections::HashMap;
use std::path::PathBuf;

const VARIABLES: [&str; 14] = [
    "PLIMSOLL_ADDR",
    "PLIMSOLL_TOKEN",
    "PLIMSOLL_PROFILE",
    "PLIMSOLL_STATE_DIR",
    "PLIMSOLL_SAMPLE_INTERVAL",
    "PLIMSOLL_SNAPSHOT_INTERVAL",
    "PLIMSOLL_MEMORY_LIMIT",
    "METRICS_ENABLED",
    "TELEMETRY_ENABLED",
    "MONITORING_ENABLED",
    "QUERY_OPTIMIZATION_ENABLED",
    "SECURITY_ENGINE_ENABLED",
    "RESILIENCE_ENABLED",
    "ENTERPRISE_MODE",
];

/// This process's TOML file, rewritten for each input.
fn toml_path() -> PathBuf {
    std::env::temp_dir().join(format!("plimsoll-fuzz-config-{}.toml", std::process::id()))
}

fn check(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mut vars: HashMap<&str, String> = HashMap::new();
    for variable in VARIABLES {
        if u.arbitrary()? {
            vars.insert(variable, u.arbitrary::<&str>()?.to_owned());
        }
    }
    if u.arbitrary()? {
        let path = toml_path();
        std::fs::write(&path, u.take_rest()).expect("the temporary directory is writable");
        vars.insert("PLIMSOLL_CONFIG", path.to_string_lossy().into_owned());
    }
    // The token must never be printed: whatever is printed (an error, or the effective
    // configuration) must be the same with another token of the same validity in its place.
    // Comparing outputs, rather than searching them for the token, cannot be fooled by a
    // token whose text also comes from another value or the TOML file.
    let printed = |vars: &HashMap<&str, String>| match Config::from_vars(|name| vars.get(name).cloned()) {
        Ok(config) => config.to_string(),
        Err(error) => error.to_string(),
    };
    if let Some(token) = vars.get("PLIMSOLL_TOKEN").filter(|t| !t.is_empty()) {
        let valid = token.bytes().all(|b| b.is_ascii_graphic());
        let stand_in = if valid { "A".repeat(token.len()) } else { " ".to_owned() };
        let mut other = vars.clone();
        other.insert("PLIMSOLL_TOKEN", stand_in);
        assert_eq!(printed(&vars), printed(&other), "what is printed depends on the token's text");
    }
    match Config::from_vars(|name| vars.get(name).cloned()) {
        Err(error) => {
            assert!(vars.contains_key(error.variable.as_str()), "error names an unset variable: {error}");
        }
        Ok(config) => {
            assert!(!config.sample_interval.is_zero() && !config.snapshot_interval.is_zero());
            assert!(config.memory_limit.is_none_or(|limit| limit > 0));
            for (i, slo) in config.slos.iter().enumerate() {
                assert!(slo.objective > 0.0 && slo.objective < 1.0, "objective {}", slo.objective);
                assert!(slo.latency_threshold_seconds.is_none_or(|t| t.is_finite() && t > 0.0));
                assert!(config.slos[..i].iter().all(|other| other.name != slo.name), "duplicate SLO name");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
