//! One HTTP/1.1 connection to the collector, and what each answer means for a batch.
//!
//! A request is retried after a connection error, a timeout, or a `429`, `502`, `503` or
//! `504` answer (the OTLP/HTTP specification's retryable codes), after the server's
//! `Retry-After` if it gave one (delta-seconds or an HTTP date), else after an exponential
//! backoff with jitter; both are capped at `max_backoff`. Any other answer outside `2xx` is
//! permanent. A `2xx` answer's body is read (at most [`MAX_RESPONSE_BYTES`]) for a partial
//! success's count of rejected points.

use super::config::{Endpoint, OtlpConfig};
use bytes::Bytes;
use http_body::Body;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;

/// The most of a response body read; a longer body is abandoned with its connection.
pub(crate) const MAX_RESPONSE_BYTES: usize = 4 << 10;
/// The most of a failure's description kept for [`OtlpPusher::last_error`](super::OtlpPusher::last_error).
const MAX_ERROR_LEN: usize = 256;

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The collector took the batch; it may have rejected some points.
    Delivered { rejected_points: u64 },
    /// Worth trying again, after the server's `Retry-After` if it gave one.
    Retry { after: Option<Duration>, reason: String },
    /// Not worth trying again.
    Permanent { reason: String },
}

/// A client of one endpoint that keeps its connection between requests.
pub(crate) struct Client {
    endpoint: Endpoint,
    authority: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(config: &OtlpConfig) -> Self {
        let authority = HeaderValue::from_str(&config.endpoint.authority()).expect("a parsed host and port");
        Self {
            endpoint: config.endpoint.clone(),
            authority,
            headers: config.headers.clone(),
            timeout: config.timeout,
            connection: None,
        }
    }

    /// Sends `batch` once, within the timeout.
    pub(crate) async fn attempt(&mut self, batch: &Bytes) -> Attempt {
        match tokio::time::timeout(self.timeout, self.exchange(batch)).await {
            Ok(attempt) => attempt,
            Err(_) => {
                self.connection = None;
                Attempt::Retry { after: None, reason: format!("no answer within {:?}", self.timeout) }
            }
        }
    }

    async fn exchange(&mut self, batch: &Bytes) -> Attempt {
        let sender = match self.connection.take().filter(|c| !c.is_closed()) {
            Some(sender) => sender,
            None => match self.connect().await {
                Ok(sender) => sender,
                Err(error) => return Attempt::Retry { after: None, reason: short(format!("connect: {error}")) },
            },
        };
        let mut sender = sender;
        if let Err(error) = sender.ready().await {
            return Attempt::Retry { after: None, reason: short(format!("connection: {error}")) };
        }
        let response = match sender.send_request(self.request(batch)).await {
            Ok(response) => response,
            Err(error) => return Attempt::Retry { after: None, reason: short(format!("request: {error}")) },
        };
        let (parts, body) = response.into_parts();
        let (body, whole) = read_capped(body, MAX_RESPONSE_BYTES).await;
        // A body read whole leaves the connection ready for the next request.
        if whole {
            self.connection = Some(sender);
        }
        judge(parts.status, parts.headers.get(header::RETRY_AFTER), &body, SystemTime::now())
    }

    fn request(&self, batch: &Bytes) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.path_and_query())
            .header(header::HOST, self.authority.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::USER_AGENT, concat!("plimsoll-otlp/", env!("CARGO_PKG_VERSION")));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        // The method, a parsed path and validated headers make a valid request.
        builder.body(Full::new(batch.clone())).expect("a valid request")
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
        // An IP address connects directly; a name is resolved each time, so a collector
        // that moves is found again.
        let stream = match self.endpoint.host().parse::<std::net::IpAddr>() {
            Ok(ip) => TcpStream::connect((ip, self.endpoint.port())).await?,
            Err(_) => TcpStream::connect((self.endpoint.host(), self.endpoint.port())).await?,
        };
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection ends when its sender is dropped or the collector closes it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// What an answer means for the batch.
fn judge(status: StatusCode, retry_after: Option<&HeaderValue>, body: &[u8], now: SystemTime) -> Attempt {
    if status.is_success() {
        // An empty or unreadable body is a full success: the batch was taken.
        let rejected = ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| u64::try_from(p.rejected_data_points).unwrap_or(0));
        return Attempt::Delivered { rejected_points: rejected };
    }
    let reason = short(format!("HTTP {status}"));
    match status.as_u16() {
        429 | 502 | 503 | 504 => Attempt::Retry { after: retry_after.and_then(|v| parse_retry_after(v, now)), reason },
        _ => Attempt::Permanent { reason },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (a date in the past is no wait).
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(text).ok()?;
    // HTTP dates have whole seconds.
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let wait = date.as_second().saturating_sub(i64::try_from(now).ok()?);
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// Reads at most `limit` bytes of `body`: the bytes, and whether that was all of it.
async fn read_capped(body: hyper::body::Incoming, limit: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(frame) = frame else { return (out, false) };
        let Ok(data) = frame.into_data() else { continue };
        if out.len() + data.len() > limit {
            return (out, false);
        }
        out.extend_from_slice(&data);
    }
    (out, true)
}

fn short(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The wait before retry `retry` (0 for the first): `initial × 2^retry`, capped at `max`,
/// with jitter in its upper half (so clients that failed together spread out), or the
/// server's `Retry-After`, capped at `max`.
pub(crate) fn backoff(config: &OtlpConfig, retry: u32, retry_after: Option<Duration>, random: u64) -> Duration {
    if let Some(after) = retry_after {
        return after.min(config.max_backoff);
    }
    let full =
        config.initial_backoff.saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX)).min(config.max_backoff);
    let half = full / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(if jitter_nanos == 0 { 0 } else { random % (jitter_nanos + 1) })
}

/// A random `u64` from std's per-process hash keys, enough to spread retries.
pub(crate) fn random() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::config::Endpoint;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;

    #[test]
    fn answers_are_judged_by_the_specification() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let judge = |code: u16, retry_after: Option<&str>| {
            let value = retry_after.map(|v| HeaderValue::from_str(v).unwrap());
            judge(StatusCode::from_u16(code).unwrap(), value.as_ref(), b"", now)
        };
        assert_eq!(judge(200, None), Attempt::Delivered { rejected_points: 0 });
        for code in [429, 502, 503, 504] {
            assert!(matches!(judge(code, None), Attempt::Retry { after: None, .. }), "{code}");
        }
        assert!(matches!(judge(503, Some("7")), Attempt::Retry { after: Some(d), .. } if d == Duration::from_secs(7)));
        for code in [400, 401, 404, 413, 500, 301] {
            assert!(matches!(judge(code, None), Attempt::Permanent { .. }), "{code}");
        }
    }

    #[test]
    fn partial_success_counts_rejected_points() {
        let body = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess { rejected_data_points: 3, error_message: "no".into() }),
        }
        .encode_to_vec();
        assert_eq!(judge(StatusCode::OK, None, &body, SystemTime::now()), Attempt::Delivered { rejected_points: 3 });
    }

    #[test]
    fn retry_after_as_seconds_or_a_date() {
        // Tue, 14 Nov 2023 22:13:20 GMT
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let parse = |v: &str| parse_retry_after(&HeaderValue::from_str(v).unwrap(), now);
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("Tue, 14 Nov 2023 22:13:50 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(parse("Tue, 14 Nov 2023 22:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-5"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let mut config = OtlpConfig::new(Endpoint::parse("http://127.0.0.1:1").unwrap());
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_secs(1);
        for random in [0, 1, u64::MAX / 3, u64::MAX] {
            for (retry, full) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1_000), (40, 1_000)] {
                let wait = backoff(&config, retry, None, random);
                let full = Duration::from_millis(full);
                assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
            }
        }
        assert_eq!(backoff(&config, 0, Some(Duration::from_secs(5)), 0), Duration::from_secs(1));
        assert_eq!(backoff(&config, 3, Some(Duration::from_millis(30)), 0), Duration::from_millis(30));
    }
}
