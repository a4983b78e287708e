//! The pusher's configuration, from OpenTelemetry's standard environment variables.

use crate::config::{ConfigError, parse_bytes};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use std::fmt;
use std::time::Duration;

/// The smallest accepted [`OtlpConfig::max_batch_bytes`]: room for the resource, one
/// family's description and a few data points.
pub const MIN_BATCH_BYTES: usize = 4 << 10;

/// Where and how the pusher sends, and what it keeps while it cannot.
///
/// Build one with [`from_env`](Self::from_env), [`from_vars`](Self::from_vars) or
/// [`new`](Self::new), then change fields as needed; [`OtlpPusher::spawn`] checks them.
///
/// # Environment
///
/// | variable | default | accepted |
/// |---|---|---|
/// | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | none | an `http://` URL, used as it is |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | `http://localhost:4318` | an `http://` base URL; `/v1/metrics` is appended to its path |
/// | `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS` | none | `key=value,key=value`: header names, percent-encoded values |
/// | `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` | `10000` | milliseconds per request, positive |
/// | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | `http/protobuf` only |
/// | `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION`, else `OTEL_EXPORTER_OTLP_COMPRESSION` | `none` | `none` only |
/// | `OTEL_METRIC_EXPORT_INTERVAL` | `60000` | milliseconds between pushes, positive |
/// | `OTEL_SERVICE_NAME` | `unknown_service:<executable name>` | any string; wins over `service.name` in the attributes |
/// | `OTEL_RESOURCE_ATTRIBUTES` | none | `key=value,key=value`, percent-encoded values |
/// | `PLIMSOLL_OTLP_QUEUE_CAPACITY` | `8` | batches waiting to be sent, at least 1 |
/// | `PLIMSOLL_OTLP_MAX_BATCH_BYTES` | `1MiB` | a size (see [`parse_bytes`]) of at least [`MIN_BATCH_BYTES`] |
///
/// As everywhere in Plimsoll, an invalid value is an error that names the variable, never
/// a silent default: a list with one malformed entry is refused whole, where the
/// specification lets SDKs drop it with a warning. Header values are never printed, in
/// errors or in [`Debug`](std::fmt::Debug) output, since they usually carry credentials.
///
/// # No TLS
///
/// The crate has no TLS stack, so an `https://` endpoint is refused with
/// [`OtlpConfigError::TlsUnsupported`] rather than sent in clear text. Push to a collector
/// on the same host or network (an OpenTelemetry Collector agent or sidecar), which can
/// forward over TLS.
///
/// [`OtlpPusher::spawn`]: super::OtlpPusher::spawn
#[derive(Clone)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The URL requests are sent to.
    pub endpoint: Endpoint,
    /// Headers added to every request (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How long one request may take, connection included (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Duration,
    /// Time between collections (`OTEL_METRIC_EXPORT_INTERVAL`); the first is one interval
    /// after the start.
    pub interval: Duration,
    /// Resource attributes, `service.name` first.
    pub resource: Vec<(String, String)>,
    /// Encoded batches kept while the collector does not take them; when full, the oldest
    /// is dropped (and counted).
    pub queue_capacity: usize,
    /// The largest encoded request; a collection larger than this is split into several.
    pub max_batch_bytes: usize,
    /// Retries of one batch after a retryable failure, before it is given up.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one, with jitter.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts, also for a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(name, _)| (name.as_str(), "<redacted>")).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .field("resource", &self.resource)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// The effective configuration, one setting per line, header values redacted.
impl fmt::Display for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "otlp endpoint      {}", self.endpoint)?;
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        writeln!(
            f,
            "otlp headers       {} (values redacted)",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        )?;
        writeln!(f, "otlp interval      {:?}, timeout {:?}", self.interval, self.timeout)?;
        let resource: Vec<String> = self.resource.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(f, "otlp resource      {}", resource.join(", "))?;
        writeln!(f, "otlp queue         {} batches of at most {} bytes", self.queue_capacity, self.max_batch_bytes)
    }
}

/// A parsed `http://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    path_and_query: String,
}

impl Endpoint {
    /// Parses an `http://host[:port][/path]` URL, used as it is (port 80 if none is given).
    pub fn parse(url: &str) -> Result<Self, OtlpConfigError> {
        Self::parse_for("endpoint", url)
    }

    fn parse_for(variable: &str, url: &str) -> Result<Self, OtlpConfigError> {
        let invalid = || {
            OtlpConfigError::Invalid(ConfigError {
                variable: variable.to_owned(),
                value: url.to_owned(),
                expected: "an http:// URL such as http://localhost:4318".to_owned(),
            })
        };
        let uri: Uri = url.trim().parse().map_err(|_| invalid())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => {
                return Err(OtlpConfigError::TlsUnsupported {
                    variable: variable.to_owned(),
                    endpoint: url.to_owned(),
                });
            }
            _ => return Err(invalid()),
        }
        let authority = uri.authority().ok_or_else(invalid)?;
        // Credentials in the URL would be sent nowhere; headers carry them.
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(invalid());
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Self { host, port: authority.port_u16().unwrap_or(80), path_and_query })
    }

    /// `base` with `/v1/metrics` appended to its path, as `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
    fn signal(variable: &str, base: &str) -> Result<Self, OtlpConfigError> {
        let mut endpoint = Self::parse_for(variable, base)?;
        let (path, query) = match endpoint.path_and_query.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (endpoint.path_and_query.clone(), None),
        };
        let mut joined = path.trim_end_matches('/').to_owned() + "/v1/metrics";
        if let Some(query) = query {
            joined = joined + "?" + &query;
        }
        endpoint.path_and_query = joined;
        Ok(endpoint)
    }

    /// The host name or address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The `Host` header's value.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 { host } else { format!("{host}:{}", self.port) }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path_and_query)
    }
}

/// Why the pusher's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpConfigError {
    /// A value is malformed: which variable (or field), its value (`(redacted)` for
    /// headers) and what is accepted.
    Invalid(ConfigError),
    /// The endpoint is `https://`: the crate has no TLS stack, and sending in clear text
    /// what was meant to be encrypted would be worse than not sending. See the
    /// [`OtlpConfig`] docs.
    TlsUnsupported {
        /// The variable (or `endpoint`) that named it.
        variable: String,
        /// The URL.
        endpoint: String,
    },
}

impl fmt::Display for OtlpConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(error) => error.fmt(f),
            Self::TlsUnsupported { variable, endpoint } => write!(
                f,
                "invalid {variable}={endpoint:?}: https is not supported (no TLS stack); push over http:// \
                 to a local collector, which can forward over TLS"
            ),
        }
    }
}

impl std::error::Error for OtlpConfigError {}

impl From<ConfigError> for OtlpConfigError {
    fn from(error: ConfigError) -> Self {
        Self::Invalid(error)
    }
}

const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
const MS: &str = "a positive whole number of milliseconds";
const PAIRS: &str = "comma-separated key=value pairs with percent-encoded values";

impl OtlpConfig {
    /// The defaults of the environment table above, sending to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            interval: Duration::from_secs(60),
            resource: default_resource(None, Vec::new()),
            queue_capacity: 8,
            max_batch_bytes: 1 << 20,
            max_retries: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, OtlpConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Whether the environment asks for OTLP metrics: an endpoint variable is set and
    /// `OTEL_METRICS_EXPORTER` is not `none`. `plimsoll serve` pushes only then.
    pub fn requested(var: impl Fn(&str) -> Option<String>) -> bool {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        let off = var("OTEL_METRICS_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
        !off && (set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
    }

    /// Reads settings through `var` (a variable's value, if set), for tests and embedders.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, OtlpConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        // The signal-specific variable, else the general one: (name, value).
        let either = |specific: &'static str, general: &'static str| {
            get(specific).map(|v| (specific, v)).or_else(|| get(general).map(|v| (general, v)))
        };
        let endpoint = match (get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(url), _) => Endpoint::parse_for("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &url)?,
            (None, Some(base)) => Endpoint::signal("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?,
            (None, None) => Endpoint::signal("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_ENDPOINT)?,
        };
        let mut config = Self::new(endpoint);
        if let Some((name, value)) = either("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
            if value.trim() != "http/protobuf" {
                return Err(invalid(name, &value, "http/protobuf (grpc and http/json are not supported)"));
            }
        }
        if let Some((name, value)) = either("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
        {
            if value.trim() != "none" {
                return Err(invalid(name, &value, "none (compression is not supported)"));
            }
        }
        if let Some((name, value)) = either("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
            config.headers = parse_headers(&value).map_err(|expected| invalid(name, "(redacted)", &expected))?;
        }
        if let Some((name, value)) = either("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
            config.timeout = parse_ms(&value).ok_or_else(|| invalid(name, &value, MS))?;
        }
        if let Some(value) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            config.interval = parse_ms(&value).ok_or_else(|| invalid("OTEL_METRIC_EXPORT_INTERVAL", &value, MS))?;
        }
        let attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(value) => {
                parse_attributes(&value).map_err(|expected| invalid("OTEL_RESOURCE_ATTRIBUTES", &value, &expected))?
            }
            None => Vec::new(),
        };
        config.resource = default_resource(get("OTEL_SERVICE_NAME"), attributes);
        if let Some(value) = get("PLIMSOLL_OTLP_QUEUE_CAPACITY") {
            config.queue_capacity = value.trim().parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| {
                invalid("PLIMSOLL_OTLP_QUEUE_CAPACITY", &value, "a whole number of batches, at least 1")
            })?;
        }
        if let Some(value) = get("PLIMSOLL_OTLP_MAX_BATCH_BYTES") {
            config.max_batch_bytes = parse_bytes(value.trim())
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n >= MIN_BATCH_BYTES)
                .ok_or_else(|| invalid("PLIMSOLL_OTLP_MAX_BATCH_BYTES", &value, "a size of at least 4KiB"))?;
        }
        Ok(config)
    }

    /// Checks the fields a caller may have changed; the error names the field.
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        let check = |ok: bool, field: &str, value: String, expected: &str| {
            if ok { Ok(()) } else { Err(invalid(field, &value, expected)) }
        };
        check(!self.interval.is_zero(), "interval", format!("{:?}", self.interval), "a positive duration")?;
        check(!self.timeout.is_zero(), "timeout", format!("{:?}", self.timeout), "a positive duration")?;
        check(self.queue_capacity > 0, "queue_capacity", self.queue_capacity.to_string(), "at least 1")?;
        check(
            self.max_batch_bytes >= MIN_BATCH_BYTES && self.max_batch_bytes <= u32::MAX as usize,
            "max_batch_bytes",
            self.max_batch_bytes.to_string(),
            "at least 4096 bytes and below 4 GiB",
        )?;
        check(
            self.initial_backoff <= self.max_backoff,
            "initial_backoff",
            format!("{:?}", self.initial_backoff),
            "at most max_backoff",
        )
    }
}

fn invalid(variable: &str, value: &str, expected: &str) -> OtlpConfigError {
    OtlpConfigError::Invalid(ConfigError {
        variable: variable.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    })
}

fn parse_ms(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().filter(|&ms| ms > 0).map(Duration::from_millis)
}

/// `service.name` (from `OTEL_SERVICE_NAME`, else the attributes', else
/// `unknown_service:<executable>`), the SDK's attributes, then `attributes` in order (a
/// repeated key keeps its first place and its last value).
fn default_resource(service_name: Option<String>, attributes: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut resource = vec![
        ("service.name".to_owned(), unknown_service()),
        ("telemetry.sdk.name".to_owned(), "plimsoll".to_owned()),
        ("telemetry.sdk.language".to_owned(), "rust".to_owned()),
        ("telemetry.sdk.version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ];
    for (key, value) in attributes {
        set(&mut resource, key, value);
    }
    if let Some(name) = service_name {
        set(&mut resource, "service.name".to_owned(), name.trim().to_owned());
    }
    resource
}

fn set(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key, value)),
    }
}

/// The specification's default: `unknown_service:` and the executable's name.
fn unknown_service() -> String {
    let exe = std::env::current_exe().ok();
    match exe.as_deref().and_then(|path| path.file_stem()).and_then(|name| name.to_str()) {
        Some(name) => format!("unknown_service:{name}"),
        None => "unknown_service".to_owned(),
    }
}

/// `key=value,key=value` (W3C baggage without properties): whitespace around keys and
/// values trimmed, values percent-decoded, empty members skipped. The error says what is
/// wrong without repeating any value.
fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (i, member) in text.split(',').enumerate().filter(|(_, m)| !m.trim().is_empty()) {
        let entry = i + 1;
        let Some((key, value)) = member.split_once('=') else {
            return Err(format!("{PAIRS} (entry {entry} has no '=')"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{PAIRS} (entry {entry} has an empty key)"));
        }
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("{PAIRS} (the value of {key:?} has a bad %-escape or is not UTF-8)"))?;
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

fn parse_headers(text: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    parse_pairs(text)?
        .into_iter()
        .map(|(key, value)| {
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("{PAIRS} ({key:?} is not a header name)"))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("{PAIRS} (the value of {key:?} holds a control character)"))?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

fn parse_attributes(text: &str) -> Result<Vec<(String, String)>, String> {
    parse_pairs(text)
}

/// `%XX` escapes decoded (`+` stays `+`: this is not form encoding); `None` for a `%`
/// without two hex digits, or bytes that are not UTF-8 once decoded.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<OtlpConfig, OtlpConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        OtlpConfig::from_vars(|name| vars.get(name).cloned())
    }

    fn invalid_variable(result: Result<OtlpConfig, OtlpConfigError>) -> String {
        match result {
            Err(OtlpConfigError::Invalid(error)) => error.variable,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_environment_gives_the_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.endpoint.to_string(), "http://localhost:4318/v1/metrics");
        assert_eq!((c.timeout, c.interval), (Duration::from_secs(10), Duration::from_secs(60)));
        assert!(c.headers.is_empty());
        assert_eq!((c.queue_capacity, c.max_batch_bytes), (8, 1 << 20));
        let name = &c.resource[0];
        assert_eq!(name.0, "service.name");
        assert!(name.1.starts_with("unknown_service"), "{name:?}");
        assert!(c.resource.contains(&("telemetry.sdk.name".into(), "plimsoll".into())));
        assert!(c.resource.contains(&("telemetry.sdk.language".into(), "rust".into())));
        c.validate().unwrap();
    }

    #[test]
    fn the_general_endpoint_gets_the_signal_path_and_the_specific_one_is_used_as_is() {
        let general = |url| config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url)]).unwrap().endpoint;
        assert_eq!(general("http://collector:4318").path_and_query(), "/v1/metrics");
        assert_eq!(general("http://collector:4318/").path_and_query(), "/v1/metrics");
        assert_eq!(general("http://collector/otlp/").to_string(), "http://collector/otlp/v1/metrics");
        assert_eq!(general("http://[::1]:4318").to_string(), "http://[::1]:4318/v1/metrics");
        assert_eq!(general("http://[::1]:4318").host(), "::1");
        let specific = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://10.0.0.5:9999/custom/path"),
        ])
        .unwrap()
        .endpoint;
        assert_eq!((specific.host(), specific.port()), ("10.0.0.5", 9999));
        assert_eq!(specific.path_and_query(), "/custom/path");
        let bare = Endpoint::parse("http://collector").unwrap();
        assert_eq!((bare.port(), bare.path_and_query()), (80, "/"));
    }

    #[test]
    fn https_is_a_typed_error() {
        for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] {
            let err = config(&[(var, "https://collector:4318")]).unwrap_err();
            assert_eq!(
                err,
                OtlpConfigError::TlsUnsupported { variable: var.into(), endpoint: "https://collector:4318".into() }
            );
            assert!(err.to_string().contains("no TLS"), "{err}");
        }
        assert!(matches!(Endpoint::parse("HTTPS://x"), Err(OtlpConfigError::TlsUnsupported { .. })));
    }

    #[test]
    fn bad_endpoints_name_the_variable() {
        for bad in ["collector:4318", "ftp://collector", "http://", "http://user:pw@collector", "not a url"] {
            assert_eq!(
                invalid_variable(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)])),
                "OTEL_EXPORTER_OTLP_ENDPOINT"
            );
        }
    }

    #[test]
    fn headers_are_percent_decoded_and_trimmed() {
        let c = config(&[("OTEL_EXPORTER_OTLP_HEADERS", " api-key = s3cr%3Dt%2C1 ,x-tenant=team%20a,, x-plus=a+b")])
            .unwrap();
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(headers, [("api-key", "s3cr=t,1"), ("x-tenant", "team a"), ("x-plus", "a+b")]);
        assert!(c.headers.iter().all(|(_, v)| v.is_sensitive()));
        let debug = format!("{c:?}");
        assert!(debug.contains("api-key") && !debug.contains("s3cr"), "{debug}");
        assert!(!c.to_string().contains("s3cr"));
        // The signal-specific variable replaces the general one.
        let c =
            config(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=1"), ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=2")]).unwrap();
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers[0].0, "b");
    }

    #[test]
    fn bad_headers_are_errors_that_never_show_the_value() {
        for bad in ["novalue", "=x", "a=%zz", "a=%4", "bad name=1", "a=%0A", "a=%FF"] {
            let err = config(&[("OTEL_EXPORTER_OTLP_HEADERS", bad)]).unwrap_err();
            let OtlpConfigError::Invalid(error) = &err else { panic!("{err:?}") };
            assert_eq!((error.variable.as_str(), error.value.as_str()), ("OTEL_EXPORTER_OTLP_HEADERS", "(redacted)"));
            let text = err.to_string();
            assert!(!text.contains("%zz") && !text.contains("novalue"), "{text}");
        }
    }

    #[test]
    fn resource_attributes_and_the_service_name() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team=a%2Cb,service.name=from-attributes",
        )])
        .unwrap();
        assert_eq!(c.resource[0], ("service.name".into(), "from-attributes".into()));
        assert!(c.resource.contains(&("team".into(), "a,b".into())));
        assert!(c.resource.contains(&("deployment.environment".into(), "prod".into())));
        let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"), ("OTEL_SERVICE_NAME", "shop")])
            .unwrap();
        assert_eq!(c.resource[0], ("service.name".into(), "shop".into()));
        assert_eq!(c.resource.iter().filter(|(k, _)| k == "service.name").count(), 1);
        assert_eq!(invalid_variable(config(&[("OTEL_RESOURCE_ATTRIBUTES", "a=1,b")])), "OTEL_RESOURCE_ATTRIBUTES");
    }

    #[test]
    fn numbers_parse_and_bad_ones_are_typed_errors() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
            ("PLIMSOLL_OTLP_QUEUE_CAPACITY", "3"),
            ("PLIMSOLL_OTLP_MAX_BATCH_BYTES", "64KiB"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ])
        .unwrap();
        assert_eq!((c.timeout, c.interval), (Duration::from_millis(2500), Duration::from_secs(15)));
        assert_eq!((c.queue_capacity, c.max_batch_bytes), (3, 64 << 10));
        let specific = config(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "1"), ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "7")]);
        assert_eq!(specific.unwrap().timeout, Duration::from_millis(7));
        let cases = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", MS),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0", MS),
            ("OTEL_METRIC_EXPORT_INTERVAL", "-1", MS),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf (grpc and http/json are not supported)"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip", "none (compression is not supported)"),
            ("PLIMSOLL_OTLP_QUEUE_CAPACITY", "0", "a whole number of batches, at least 1"),
            ("PLIMSOLL_OTLP_MAX_BATCH_BYTES", "1KiB", "a size of at least 4KiB"),
        ];
        for (variable, value, expected) in cases {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(
                err,
                OtlpConfigError::Invalid(ConfigError {
                    variable: variable.into(),
                    value: value.into(),
                    expected: expected.into()
                })
            );
            assert!(err.to_string().starts_with(&format!("invalid {variable}=\"{value}\"")), "{err}");
        }
    }

    #[test]
    fn changed_fields_are_validated() {
        let mut c = config(&[]).unwrap();
        c.queue_capacity = 0;
        assert!(matches!(c.validate(), Err(OtlpConfigError::Invalid(e)) if e.variable == "queue_capacity"));
        let mut c = config(&[]).unwrap();
        c.max_batch_bytes = 100;
        assert!(matches!(c.validate(), Err(OtlpConfigError::Invalid(e)) if e.variable == "max_batch_bytes"));
        let mut c = config(&[]).unwrap();
        c.interval = Duration::ZERO;
        assert!(c.validate().is_err());
    }

    #[test]
    fn requested_only_with_an_endpoint() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert!(!OtlpConfig::requested(vars(&[])));
        assert!(OtlpConfig::requested(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])));
        assert!(OtlpConfig::requested(vars(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:4318/v1/metrics")])));
        assert!(!OtlpConfig::requested(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none")
        ])));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2c%2C%25").as_deref(), Some("a b,,%"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        for bad in ["%", "%2", "%g0", "%+1", "%C3"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
