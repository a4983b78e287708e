//! Configuration from the environment, and an optional TOML file for SLO definitions.
//!
//! Every setting has a default, so an empty environment is a valid configuration. An
//! invalid value stops start-up with a [`ConfigError`] that names the variable, the value
//! and what is accepted; nothing is silently ignored or clamped.
//!
//! | variable | default | accepted |
//! |---|---|---|
//! | `PLIMSOLL_ADDR` | `127.0.0.1:9090` | a socket address |
//! | `PLIMSOLL_TOKEN` | none | a non-empty bearer token of visible ASCII |
//! | `PLIMSOLL_PROFILE` | `small` (`large` if `ENTERPRISE_MODE` is true) | `small`, `large` |
//! | `PLIMSOLL_STATE_DIR` | none (no snapshots) | a directory path |
//! | `PLIMSOLL_SAMPLE_INTERVAL` | `30s` | a duration: `500ms`, `30s`, `5m`, `1h`, or seconds |
//! | `PLIMSOLL_SNAPSHOT_INTERVAL` | `60s` | a duration |
//! | `PLIMSOLL_MEMORY_LIMIT` | none: the cgroup's limit, if any | a size: `512MiB`, `1GiB`, `500MB`, or bytes (see [`parse_bytes`]) |
//! | `PLIMSOLL_CONFIG` | none | path of a TOML file (see below) |
//! | `METRICS_ENABLED`, `TELEMETRY_ENABLED`, `MONITORING_ENABLED`, `QUERY_OPTIMIZATION_ENABLED`, `SECURITY_ENGINE_ENABLED`, `RESILIENCE_ENABLED` | `true` | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` |
//! | `ENTERPRISE_MODE` | `false` | a boolean, as above |
//!
//! The subsystem switches are the ones the app that motivated Plimsoll already used; here
//! they default to on, because every subsystem fits its fixed budget, and `false` turns a
//! subsystem into a no-op. `ENTERPRISE_MODE=true` selects the large profile unless
//! `PLIMSOLL_PROFILE` says otherwise.
//!
//! The TOML file holds SLO definitions:
//!
//! ```toml
//! [[slo]]
//! name = "checkout"
//! objective = 0.999
//! latency_threshold_seconds = 0.3   # omit for a success-based SLO
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How many series, SLOs and samples the process keeps: both bounded, the large one for
/// busier services with memory to spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// For a small container (the default).
    Small,
    /// For larger hosts (`ENTERPRISE_MODE=true`).
    Large,
}

/// Which subsystems run. A disabled subsystem is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subsystems {
    /// `METRICS_ENABLED`: metric families and the `/metrics` endpoint.
    pub metrics: bool,
    /// `TELEMETRY_ENABLED`: span timing.
    pub telemetry: bool,
    /// `MONITORING_ENABLED`: memory sampling and leak verdicts.
    pub monitoring: bool,
    /// `QUERY_OPTIMIZATION_ENABLED`: slow-query tracking.
    pub query_optimization: bool,
    /// `SECURITY_ENGINE_ENABLED`: rate limits and security events.
    pub security_engine: bool,
    /// `RESILIENCE_ENABLED`: circuit breakers.
    pub resilience: bool,
}

/// One SLO from the TOML file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// The SLO's name (a label value).
    pub name: String,
    /// Target fraction of good events, strictly between 0 and 1.
    pub objective: f64,
    /// If set, an event is good when its latency is at most this many seconds; otherwise
    /// the application says whether each event succeeded.
    pub latency_threshold_seconds: Option<f64>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the exporter listens.
    pub address: SocketAddr,
    /// Bearer token guarding every endpoint but `/health/live`.
    pub token: Option<String>,
    /// Capacity profile.
    pub profile: Profile,
    /// Where snapshots are kept; none disables them.
    pub state_dir: Option<PathBuf>,
    /// How often memory is sampled.
    pub sample_interval: Duration,
    /// How often state is snapshotted.
    pub snapshot_interval: Duration,
    /// The memory limit leak forecasts are made against, in bytes; `None` uses the
    /// cgroup's limit, if any.
    pub memory_limit: Option<u64>,
    /// Which subsystems run.
    pub subsystems: Subsystems,
    /// SLOs from the TOML file.
    pub slos: Vec<SloConfig>,
}

/// An invalid setting: which one, its value, and what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable (or file key) at fault.
    pub variable: String,
    /// The value found.
    pub value: String,
    /// What is accepted.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={:?}: expected {}", self.variable, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    slo: Vec<SloConfig>,
}

impl Config {
    /// Reads the process environment (and the TOML file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var` (a variable's value, if set), for tests and embedders.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let enterprise = parse_or(&get, "ENTERPRISE_MODE", false, parse_bool, BOOL)?;
        let default_profile = if enterprise { Profile::Large } else { Profile::Small };
        let subsystem = |name| parse_or(&get, name, true, parse_bool, BOOL);
        let slos = match get("PLIMSOLL_CONFIG") {
            Some(path) => read_slo_file(&path)?,
            None => Vec::new(),
        };
        Ok(Config {
            address: parse_or(&get, "PLIMSOLL_ADDR", SocketAddr::from(([127, 0, 0, 1], 9090)), parse_addr, ADDR)?,
            token: get("PLIMSOLL_TOKEN").map(|t| check_token(&t)).transpose()?,
            profile: parse_or(&get, "PLIMSOLL_PROFILE", default_profile, parse_profile, "small or large")?,
            state_dir: get("PLIMSOLL_STATE_DIR").map(PathBuf::from),
            sample_interval: parse_or(
                &get,
                "PLIMSOLL_SAMPLE_INTERVAL",
                Duration::from_secs(30),
                parse_duration,
                DURATION,
            )?,
            snapshot_interval: parse_or(
                &get,
                "PLIMSOLL_SNAPSHOT_INTERVAL",
                Duration::from_secs(60),
                parse_duration,
                DURATION,
            )?,
            memory_limit: get("PLIMSOLL_MEMORY_LIMIT")
                .map(|value| {
                    parse_bytes(value.trim()).filter(|&bytes| bytes > 0).ok_or_else(|| ConfigError {
                        variable: "PLIMSOLL_MEMORY_LIMIT".to_owned(),
                        value,
                        expected: SIZE.to_owned(),
                    })
                })
                .transpose()?,
            subsystems: Subsystems {
                metrics: subsystem("METRICS_ENABLED")?,
                telemetry: subsystem("TELEMETRY_ENABLED")?,
                monitoring: subsystem("MONITORING_ENABLED")?,
                query_optimization: subsystem("QUERY_OPTIMIZATION_ENABLED")?,
                security_engine: subsystem("SECURITY_ENGINE_ENABLED")?,
                resilience: subsystem("RESILIENCE_ENABLED")?,
            },
            slos,
        })
    }
}

/// The effective configuration, one setting per line, the token redacted.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |enabled: bool| if enabled { "on" } else { "off" };
        let s = &self.subsystems;
        writeln!(f, "address            {}", self.address)?;
        writeln!(f, "token              {}", if self.token.is_some() { "set (redacted)" } else { "none" })?;
        writeln!(f, "profile            {:?}", self.profile)?;
        match &self.state_dir {
            Some(dir) => writeln!(f, "state dir          {}", dir.display())?,
            None => writeln!(f, "state dir          none (snapshots off)")?,
        }
        writeln!(f, "sample interval    {:?}", self.sample_interval)?;
        writeln!(f, "snapshot interval  {:?}", self.snapshot_interval)?;
        match self.memory_limit {
            Some(bytes) => writeln!(f, "memory limit       {bytes} bytes")?,
            None => writeln!(f, "memory limit       the cgroup's, if any")?,
        }
        writeln!(
            f,
            "subsystems         metrics {}, telemetry {}, monitoring {}, query optimization {}, security engine {}, resilience {}",
            on(s.metrics),
            on(s.telemetry),
            on(s.monitoring),
            on(s.query_optimization),
            on(s.security_engine),
            on(s.resilience)
        )?;
        for slo in &self.slos {
            match slo.latency_threshold_seconds {
                Some(limit) => {
                    writeln!(f, "slo                {}: {} of events within {limit} s", slo.name, slo.objective)?
                }
                None => writeln!(f, "slo                {}: {} of events succeed", slo.name, slo.objective)?,
            }
        }
        Ok(())
    }
}

const BOOL: &str = "true or false (also 1/0, yes/no, on/off)";
const ADDR: &str = "a socket address such as 127.0.0.1:9090";
const SIZE: &str = "a positive size such as 512MiB, 1GiB, 500MB or a number of bytes";
const DURATION: &str = "a positive duration such as 500ms, 30s, 5m, 1h, or a number of seconds";

fn parse_or<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => parse(value.trim()).ok_or_else(|| ConfigError {
            variable: name.to_owned(),
            value,
            expected: expected.to_owned(),
        }),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_addr(value: &str) -> Option<SocketAddr> {
    value.parse().ok()
}

fn parse_profile(value: &str) -> Option<Profile> {
    match value.to_ascii_lowercase().as_str() {
        "small" => Some(Profile::Small),
        "large" => Some(Profile::Large),
        _ => None,
    }
}

fn parse_duration(value: &str) -> Option<Duration> {
    let (number, unit_ms) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (value, 1_000)
    };
    let ms = number.trim().parse::<u64>().ok()?.checked_mul(unit_ms)?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// A size in bytes: a whole number, optionally followed (spaces allowed) by a unit: `B`,
/// decimal `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000), or binary `KiB`, `MiB`, `GiB`,
/// `TiB` (powers of 1024), also as `K`, `M`, `G`, `T` (binary, as Kubernetes and Docker
/// read `512M`). `None` if malformed or over `u64::MAX`.
pub fn parse_bytes(value: &str) -> Option<u64> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn check_token(token: &str) -> Result<String, ConfigError> {
    if token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token.to_owned())
    } else {
        Err(ConfigError {
            variable: "PLIMSOLL_TOKEN".to_owned(),
            value: "(redacted)".to_owned(),
            expected: "visible ASCII characters without spaces".to_owned(),
        })
    }
}

fn read_slo_file(path: &str) -> Result<Vec<SloConfig>, ConfigError> {
    let fail =
        |expected: String| ConfigError { variable: "PLIMSOLL_CONFIG".to_owned(), value: path.to_owned(), expected };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("a readable TOML file ({e})")))?;
    parse_slo_file(&text).map_err(fail)
}

/// The SLOs of a TOML file, each checked; the error says what is expected.
fn parse_slo_file(text: &str) -> Result<Vec<SloConfig>, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| format!("valid TOML with [[slo]] tables ({e})"))?;
    for (i, slo) in file.slo.iter().enumerate() {
        if !(slo.objective > 0.0 && slo.objective < 1.0) {
            return Err(format!("slo[{i}].objective strictly between 0 and 1, not {}", slo.objective));
        }
        if slo.name.is_empty() || slo.name.len() > plimsoll_core::MAX_SLO_NAME_LEN {
            return Err(format!("slo[{i}].name of 1 to {} bytes", plimsoll_core::MAX_SLO_NAME_LEN));
        }
        if let Some(limit) = slo.latency_threshold_seconds {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(format!("slo[{i}].latency_threshold_seconds finite and positive, not {limit}"));
            }
        }
        if file.slo[..i].iter().any(|other| other.name == slo.name) {
            return Err(format!("unique slo names, not {:?} twice", slo.name));
        }
    }
    Ok(file.slo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.address, "127.0.0.1:9090".parse().unwrap());
        assert_eq!((c.profile, c.token, c.state_dir), (Profile::Small, None, None));
        assert_eq!((c.sample_interval, c.snapshot_interval), (Duration::from_secs(30), Duration::from_secs(60)));
        assert!(c.subsystems.metrics && c.subsystems.resilience);
        assert!(c.slos.is_empty());
        assert_eq!(c.memory_limit, None);
    }

    #[test]
    fn sizes_parse() {
        let cases = [
            ("536870912", Some(512 << 20)),
            ("512MiB", Some(512 << 20)),
            ("512 MiB", Some(512 << 20)),
            ("512M", Some(512 << 20)),
            ("500MB", Some(500_000_000)),
            ("1GiB", Some(1 << 30)),
            ("2kB", Some(2_000)),
            ("7B", Some(7)),
            ("1.5GiB", None),
            ("-1", None),
            ("MiB", None),
            ("12 parsecs", None),
            ("99999999999TiB", None),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_bytes(text), bytes, "{text}");
        }
    }

    #[test]
    fn the_original_switches_work() {
        let c = config(&[("ENTERPRISE_MODE", "true"), ("SECURITY_ENGINE_ENABLED", "false"), ("METRICS_ENABLED", "0")])
            .unwrap();
        assert_eq!(c.profile, Profile::Large);
        assert!(!c.subsystems.security_engine && !c.subsystems.metrics && c.subsystems.monitoring);
        let explicit = config(&[("ENTERPRISE_MODE", "yes"), ("PLIMSOLL_PROFILE", "small")]).unwrap();
        assert_eq!(explicit.profile, Profile::Small, "an explicit profile wins");
    }

    #[test]
    fn values_parse() {
        let c = config(&[
            ("PLIMSOLL_ADDR", "0.0.0.0:9100"),
            ("PLIMSOLL_TOKEN", "s3cret"),
            ("PLIMSOLL_SAMPLE_INTERVAL", "500ms"),
            ("PLIMSOLL_SNAPSHOT_INTERVAL", "5m"),
            ("PLIMSOLL_STATE_DIR", "/var/lib/plimsoll"),
            ("PLIMSOLL_MEMORY_LIMIT", "512MiB"),
        ])
        .unwrap();
        assert_eq!(c.memory_limit, Some(512 << 20));
        assert_eq!(c.address.port(), 9100);
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        assert_eq!(c.sample_interval, Duration::from_millis(500));
        assert_eq!(c.snapshot_interval, Duration::from_secs(300));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert!(c.to_string().contains("set (redacted)") && !c.to_string().contains("s3cret"));
    }

    #[test]
    fn invalid_values_name_the_variable_value_and_what_is_accepted() {
        let cases = [
            ("METRICS_ENABLED", "maybe", BOOL),
            ("PLIMSOLL_ADDR", "localhost", ADDR),
            ("PLIMSOLL_SAMPLE_INTERVAL", "0s", DURATION),
            ("PLIMSOLL_SAMPLE_INTERVAL", "-5", DURATION),
            ("PLIMSOLL_SNAPSHOT_INTERVAL", "99999999999999999h", DURATION),
            ("PLIMSOLL_PROFILE", "huge", "small or large"),
            ("PLIMSOLL_MEMORY_LIMIT", "0", SIZE),
            ("PLIMSOLL_MEMORY_LIMIT", "lots", SIZE),
        ];
        for (variable, value, expected) in cases {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err, ConfigError { variable: variable.into(), value: value.into(), expected: expected.into() });
            assert!(err.to_string().starts_with(&format!("invalid {variable}=\"{value}\"")), "{err}");
        }
        let token = config(&[("PLIMSOLL_TOKEN", "has space")]).unwrap_err();
        assert!(!token.to_string().contains("has space"), "the token is never printed");
    }

    #[test]
    fn slo_file() {
        let slos = parse_slo_file(
            "[[slo]]\nname = \"api\"\nobjective = 0.999\n\n[[slo]]\nname = \"checkout\"\nobjective = 0.99\nlatency_threshold_seconds = 0.3\n",
        )
        .unwrap();
        assert_eq!(slos.len(), 2);
        assert_eq!(slos[1].latency_threshold_seconds, Some(0.3));
        for bad in [
            "[[slo]]\nname = \"a\"\nobjective = 1.0\n",
            "[[slo]]\nname = \"a\"\nobjective = 0\n",
            "[[slo]]\nname = \"\"\nobjective = 0.9\n",
            "[[slo]]\nname = \"a\"\nobjective = 0.9\nlatency_threshold_seconds = -1.0\n",
            "[[slo]]\nname = \"a\"\nobjective = 0.9\n[[slo]]\nname = \"a\"\nobjective = 0.8\n",
            "[[slo]]\nname = \"a\"\nobjective = 0.9\ncolour = \"red\"\n",
            "not toml",
        ] {
            assert!(parse_slo_file(bad).is_err(), "{bad}");
        }
        let missing = config(&[("PLIMSOLL_CONFIG", "/nonexistent/plimsoll.toml")]).unwrap_err();
        assert_eq!(missing.variable, "PLIMSOLL_CONFIG");
    }
}
