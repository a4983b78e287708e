//! Sections of `/api/report` and `/health`: what the exporter shows of the security,
//! query and resilience monitors.
//!
//! A [`Section`] is a monitor the exporter was given with
//! [`Exporter::section`](crate::exporter::Exporter::section): before every `/metrics`, `/health` and
//! `/api/report` answer the exporter calls its [`update`](Section::update) with its clock
//! (so exported families are fresh); `/api/report` puts its [`report`](Section::report)
//! under its [`key`](Section::key); `/health` adds its [`health`](Section::health) checks.
//!
//! This module implements it for the core's monitors: [`BreakerExport`] (`"breakers"`; an
//! open breaker makes `/health` degraded), [`RateLimitExport`] (`"rate_limits"`),
//! [`SecurityEvents`] (`"security"`), [`TopKExport`] (under its family's name: the top keys),
//! [`SlowQueryTracker`] (`"slow_queries"`, with index hints for each query) and
//! [`SlowSpans`] (`"slow_spans"`).
//!
//! # Allocation
//!
//! Reports and checks are built as JSON values when asked for, then dropped: a report's size
//! is bounded by the monitors' fixed capacities (at most 64 slow queries with 120-byte texts,
//! 64 security events, ... under 64 KiB for the demo's), and nothing is kept between
//! requests.

use plimsoll_core::query::hints::Hints;
use plimsoll_core::security::EventKind;
use plimsoll_core::topk::TopKExport;
use plimsoll_core::{
    BreakerExport, BreakerState, RateLimitExport, SecurityEvents, SlowQuery, SlowQueryTracker, SlowSpans,
    query::tracker::Order,
};
use serde_json::{Value, json};

/// How a health check judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// All is well.
    Healthy,
    /// Serving, but something needs a look (an SLO ticket, a suspected leak, an open
    /// breaker): still 200.
    Degraded,
    /// Failing (an SLO page, memory about to run out): 503.
    Unhealthy,
}

impl Status {
    /// `healthy`, `degraded` or `unhealthy`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// A monitor the exporter reports on. See the [module docs](self).
pub trait Section: Send + Sync {
    /// Its key in `/api/report`'s JSON object.
    fn key(&self) -> &'static str;
    /// Refreshes its exported families at `now_ms` (the default does nothing).
    fn update(&self, now_ms: u64) {
        let _ = now_ms;
    }
    /// Its figures at `now_ms`.
    fn report(&self, now_ms: u64) -> Value;
    /// Its health checks at `now_ms`: `check(name, status, detail)` for each (the default
    /// has none).
    fn health(&self, now_ms: u64, check: &mut dyn FnMut(String, Status, Value)) {
        let _ = (now_ms, check);
    }
}

/// `null` for a figure that is not defined (a rate before enough calls, say).
fn number(value: Option<f64>) -> Value {
    value.filter(|v| v.is_finite()).map_or(Value::Null, Value::from)
}

impl<const K: usize> Section for BreakerExport<K> {
    fn key(&self) -> &'static str {
        "breakers"
    }

    fn update(&self, now_ms: u64) {
        BreakerExport::update(self, now_ms);
    }

    fn report(&self, now_ms: u64) -> Value {
        let mut breakers = Vec::new();
        self.for_each_breaker(now_ms, |name, m| {
            breakers.push(json!({
                "name": name,
                "state": m.state.label(),
                "failure_rate": number(m.failure_rate.map(|percent| percent / 100.0)),
                "slow_call_rate": number(m.slow_call_rate.map(|percent| percent / 100.0)),
                "buffered_calls": m.buffered_calls,
                "failed_calls": m.failed_calls,
                "slow_calls": m.slow_calls,
                "not_permitted_calls": m.not_permitted_calls,
            }));
        });
        Value::Array(breakers)
    }

    /// An open (or forced open) breaker makes the service degraded: a dependency is cut off.
    fn health(&self, now_ms: u64, check: &mut dyn FnMut(String, Status, Value)) {
        self.for_each_breaker(now_ms, |name, m| {
            let open = matches!(m.state, BreakerState::Open | BreakerState::ForcedOpen);
            let status = if open { Status::Degraded } else { Status::Healthy };
            check(format!("breaker:{name}"), status, json!({"state": m.state.label()}));
        });
    }
}

impl<const N: usize> Section for RateLimitExport<N> {
    fn key(&self) -> &'static str {
        "rate_limits"
    }

    fn report(&self, _now_ms: u64) -> Value {
        let mut limiters = Vec::new();
        self.for_each_limiter(|name, stats| {
            limiters.push(json!({
                "name": name,
                "allowed": stats.allowed,
                "limited": stats.limited,
                "keys": stats.keys,
                "capacity": stats.capacity,
                "evicted_expired": stats.evicted_expired,
                "evicted_in_debt": stats.evicted_in_debt,
            }));
        });
        Value::Array(limiters)
    }
}

impl<const E: usize, const K: usize> Section for SecurityEvents<E, K> {
    fn key(&self) -> &'static str {
        "security"
    }

    fn report(&self, _now_ms: u64) -> Value {
        let mut counts = serde_json::Map::new();
        for kind in EventKind::ALL {
            counts.insert(kind.label().to_owned(), Value::from(self.count(kind)));
        }
        let mut recent = Vec::new();
        self.for_each_recent(|event| {
            recent.push(json!({
                "time_ms": event.time_ms,
                "kind": event.kind.label(),
                "key": format!("{:016x}", event.key),
                "code": event.code,
            }));
        });
        json!({"events_total": self.total(), "by_kind": counts, "recent": recent})
    }
}

impl<const K: usize> Section for TopKExport<K> {
    fn key(&self) -> &'static str {
        self.name()
    }

    fn update(&self, _now_ms: u64) {
        TopKExport::update(self);
    }

    fn report(&self, _now_ms: u64) -> Value {
        let mut top = Vec::new();
        self.source().for_each_top(|key, count, error| {
            top.push(json!({"key": format!("{key:016x}"), "count": count, "error": error}));
        });
        Value::Array(top)
    }
}

/// The slow queries section shows this many fingerprints, by total time.
const SLOW_QUERIES_SHOWN: usize = 16;

impl<const K: usize, const T: usize> Section for SlowQueryTracker<K, T> {
    fn key(&self) -> &'static str {
        "slow_queries"
    }

    fn update(&self, _now_ms: u64) {
        SlowQueryTracker::update(self);
    }

    fn report(&self, _now_ms: u64) -> Value {
        let mut top = [SlowQuery::<T>::EMPTY; SLOW_QUERIES_SHOWN];
        let len = self.top(Order::TotalTime, &mut top);
        let queries: Vec<Value> = top[..len]
            .iter()
            .map(|q| {
                let hints: Hints<'_> = Hints::of(q.text());
                let indexes: Vec<String> = hints.indexes().map(|index| index.to_string()).collect();
                json!({
                    "fingerprint": format!("{:016x}", q.fingerprint),
                    "text": q.text(),
                    "calls": q.calls,
                    "slow_calls": q.slow_calls,
                    "total_ms": q.total_us as f64 / 1e3,
                    "mean_ms": q.mean_us() as f64 / 1e3,
                    "max_ms": q.max_us as f64 / 1e3,
                    "p99_ms": q.p99_us as f64 / 1e3,
                    "index_hints": indexes,
                })
            })
            .collect();
        json!({
            "queries_total": self.queries(),
            "slow_total": self.slow_queries(),
            "slow_threshold_ms": self.config().slow_threshold_us as f64 / 1e3,
            "top_by_total_time": queries,
        })
    }
}

impl<const N: usize, const S: usize> Section for SlowSpans<N, S> {
    fn key(&self) -> &'static str {
        "slow_spans"
    }

    fn report(&self, now_ms: u64) -> Value {
        let mut spans = Vec::new();
        self.for_each_slowest(now_ms, |span| {
            spans.push(json!({
                "name": span.name(),
                "duration_ms": span.duration_us() as f64 / 1e3,
                "start_ms": span.start_ms(),
                "trace_id": span.trace_id().map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            }));
        });
        json!({"recorded": self.recorded(), "slowest": spans})
    }
}
