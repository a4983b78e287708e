//! The demo's monitors: two capacity profiles, and the switches that leave subsystems out.
//!
//! # Profiles
//!
//! `PLIMSOLL_PROFILE` (or `ENTERPRISE_MODE=true`, which selects `large`) chooses the
//! capacities; both are bounded, and the start-up footprint report prints the one in use,
//! monitor by monitor, and the other's total.
//!
//! | monitor | small | large |
//! |---|---|---|
//! | rate limiter `clients` (keys) | 1,024 | 16,384 |
//! | security events (ring; keys per threat rule) | 64; 256 | 512; 2,048 |
//! | top limited clients (`demo_top_limited_clients`) | 16 | 64 |
//! | slow queries (fingerprints) | 32 | 128 |
//! | slow spans (names; slowest kept per minute) | 16; 10 | 64; 20 |
//! | circuit breaker `payment` (calls in its window) | 20 | 20 |
//!
//! Capacities are const generics, so each profile is a set of `static`s of its own type, and
//! both sets are in the binary; [`install`] uses one. The other is never read or written, so
//! its pages are never faulted in and cost no resident memory. They are zeros but for a few
//! names and quotas, which puts each set in `.data` rather than `.bss`: mapped from the
//! binary on demand, like `.bss` pages, but stored in the file (1.5 MiB of it, on x86_64).
//! Measured on x86_64 with `--rate 0`: the binary's writable mapping of 1.6 MiB has 332 KiB
//! resident with the small profile and 524 KiB with the large one.
//!
//! # Switches
//!
//! A subsystem switched off (`false`) is a no-op at zero cost: its monitors are neither
//! registered (no families on `/metrics`, no section in `/api/report` or check on
//! `/health`) nor recorded into, and the app skips the work that feeds them.
//!
//! | switch | what goes |
//! |---|---|
//! | `METRICS_ENABLED` | the app's own families (`demo_http_*`, `demo_leads_total`, `demo_conversions_total`); `/metrics` still answers with the families of the subsystems that are on |
//! | `TELEMETRY_ENABLED` | slow spans |
//! | `MONITORING_ENABLED` | the memory monitor (sampling, leak verdicts; see `run`) |
//! | `QUERY_OPTIMIZATION_ENABLED` | the slow-query tracker: no SQL is even written |
//! | `SECURITY_ENGINE_ENABLED` | the rate limiter, security events and top limited clients: no request is limited |
//! | `RESILIENCE_ENABLED` | the payment breaker: checkout calls the payment service directly |
//!
//! `/metrics` is kept with metrics off: it is also where the SLO, memory and exporter
//! families are read, and each of those has its own switch or none.

use super::super::footprint::{Monitor, Monitors as Footprints};
use plimsoll::breaker::{BreakerConfig, SlidingWindowType};
use plimsoll::ratelimit::RateLimitStats;
use plimsoll::report::Section;
use plimsoll::topk::{TopK, TopKExport};
use plimsoll::{
    BreakerExport, CircuitBreaker, Decision, EventKind, Profile, Quota, RateLimitExport, RateLimiter, RegisterError,
    Registry, SecurityEvents, SlowQueryTracker, SlowSpans, SlowSpansConfig, Subsystems, ThreatRules,
};
use std::num::NonZeroU32;

/// Each client may make 10 requests a second, 20 at once.
pub(crate) const CLIENT_QUOTA: Quota = Quota::per_second(nonzero(10)).allow_burst(nonzero(20));
/// The payment breaker's window: its last 20 calls.
pub(crate) const PAYMENT_WINDOW: usize = 20;
/// Opens at 50 % failures over the last 20 calls (at least 10), refuses calls for 10 s, then
/// lets 3 trial calls through; a call over 2 s is slow.
const PAYMENT_CONFIG: BreakerConfig = BreakerConfig {
    failure_rate_threshold: 50.0,
    slow_call_duration_threshold_ms: 2_000,
    sliding_window_type: SlidingWindowType::CountBased,
    minimum_number_of_calls: 10,
    wait_duration_in_open_state_ms: 10_000,
    permitted_number_of_calls_in_half_open_state: 3,
    ..BreakerConfig::DEFAULT
};

/// The breaker is the same in both profiles: its window is a policy, not a capacity.
static PAYMENT: CircuitBreaker<PAYMENT_WINDOW> = CircuitBreaker::new("payment", PAYMENT_CONFIG);
static BREAKERS: BreakerExport<1> = BreakerExport::new();

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

/// One profile's monitors: every capacity a const generic.
struct Set<
    const KEYS: usize,
    const RING: usize,
    const RULE_KEYS: usize,
    const TOP: usize,
    const QUERIES: usize,
    const NAMES: usize,
    const SLOWEST: usize,
> {
    limiter: RateLimiter<KEYS>,
    limits: RateLimitExport<1>,
    security: SecurityEvents<RING, RULE_KEYS>,
    top: TopKExport<TOP>,
    queries: SlowQueryTracker<QUERIES>,
    spans: SlowSpans<NAMES, SLOWEST>,
}

type Small = Set<1_024, 64, 256, 16, 32, 16, 10>;
type Large = Set<16_384, 512, 2_048, 64, 128, 64, 20>;

// The top-k tables are statics of their own: an export refers to its table.
static SMALL_TOP: TopK<16> = TopK::new();
static SMALL: Small = Set::new(&SMALL_TOP);
static LARGE_TOP: TopK<64> = TopK::new();
static LARGE: Large = Set::new(&LARGE_TOP);

// Both profiles are bounded, checked at compile time: under 512 KiB for a small container,
// under 4 MiB for a larger host.
const _: () = assert!(Small::FOOTPRINT < Large::FOOTPRINT && Small::FOOTPRINT < 512 << 10);
const _: () = assert!(Large::FOOTPRINT < 4 << 20);

/// What the app records into; `None` (or `false`) for a subsystem switched off.
#[derive(Clone, Copy)]
pub(crate) struct Monitors {
    pub(crate) metrics: bool,
    pub(crate) security: Option<Security>,
    pub(crate) queries: Option<&'static dyn Queries>,
    pub(crate) spans: Option<&'static dyn Spans>,
    pub(crate) payment: Option<&'static CircuitBreaker<PAYMENT_WINDOW>>,
}

/// The security engine: the limiter in front of every route, the events and rules behind
/// it, and the clients it refuses most.
#[derive(Clone, Copy)]
pub(crate) struct Security {
    pub(crate) limiter: &'static dyn Limiter,
    pub(crate) events: &'static dyn Events,
    pub(crate) offenders: &'static dyn Offenders,
}

/// The monitors in use, their sections for the exporter and their footprints.
pub(crate) struct Installed {
    pub(crate) monitors: Monitors,
    pub(crate) sections: Vec<&'static dyn Section>,
    pub(crate) footprints: Footprints,
}

/// Registers the monitors of `profile` that `on` keeps into `registry` and returns them.
pub(crate) fn install<const F: usize>(
    profile: Profile,
    on: &Subsystems,
    registry: &Registry<F>,
) -> Result<Installed, String> {
    let (mut installed, other) = match profile {
        Profile::Small => (SMALL.install(on, registry)?, ("large", Large::FOOTPRINT)),
        Profile::Large => (LARGE.install(on, registry)?, ("small", Small::FOOTPRINT)),
    };
    if on.resilience {
        BREAKERS.add(&PAYMENT).map_err(|e| e.to_string())?;
        BREAKERS.register(registry).map_err(|e| e.to_string())?;
        installed.sections.insert(0, &BREAKERS);
        installed.monitors.payment = Some(&PAYMENT);
        installed.footprints.items.push(Monitor {
            what: format!("circuit breaker payment ({PAYMENT_WINDOW} calls)"),
            bytes: BREAKERS.footprint(),
            prefixes: &["plimsoll_circuit_breaker_"],
        });
    }
    let (other_name, other_bytes) = other;
    installed.footprints.heading = format!(
        "monitors of profile {}, with their families and exports (the {other_name} profile's: {other_bytes} bytes)",
        match profile {
            Profile::Small => "small",
            Profile::Large => "large",
        }
    );
    Ok(installed)
}

impl<
    const KEYS: usize,
    const RING: usize,
    const RULE_KEYS: usize,
    const TOP: usize,
    const QUERIES: usize,
    const NAMES: usize,
    const SLOWEST: usize,
> Set<KEYS, RING, RULE_KEYS, TOP, QUERIES, NAMES, SLOWEST>
{
    /// Bytes of every monitor of the set, its top-k table included.
    const FOOTPRINT: usize = size_of::<Self>() + TopK::<TOP>::FOOTPRINT;

    const fn new(top: &'static TopK<TOP>) -> Self {
        Self {
            limiter: RateLimiter::new("clients", CLIENT_QUOTA),
            limits: RateLimitExport::new(),
            security: SecurityEvents::new(ThreatRules::DEFAULT),
            top: TopKExport::new(
                top,
                "demo_top_limited_clients",
                "Clients the demo's rate limiter refused most often, by rank; key is the client's key (key_of of \
                 its x-client-id, else of its IP address), in hex.",
            ),
            queries: SlowQueryTracker::new(),
            spans: SlowSpans::new(SlowSpansConfig::DEFAULT),
        }
    }

    fn install<const F: usize>(&'static self, on: &Subsystems, registry: &Registry<F>) -> Result<Installed, String> {
        let fail = |e: RegisterError| format!("cannot register the demo's monitors: {e}");
        let mut installed = Installed {
            monitors: Monitors { metrics: on.metrics, security: None, queries: None, spans: None, payment: None },
            sections: Vec::new(),
            footprints: Footprints::default(),
        };
        let items = &mut installed.footprints.items;
        if on.security_engine {
            self.limits.add(&self.limiter).map_err(|e| e.to_string())?;
            self.limits.register(registry).map_err(fail)?;
            self.security.register(registry).map_err(fail)?;
            self.top.register(registry).map_err(fail)?;
            installed.sections.extend([&self.limits as &dyn Section, &self.security, &self.top]);
            installed.monitors.security =
                Some(Security { limiter: &self.limiter, events: &self.security, offenders: self.top.source() });
            items.push(Monitor {
                what: format!("rate limiter clients ({KEYS} keys)"),
                bytes: RateLimiter::<KEYS>::FOOTPRINT + RateLimitExport::<1>::FOOTPRINT,
                prefixes: &["plimsoll_ratelimit_"],
            });
            items.push(Monitor {
                what: format!("security events (ring {RING}, {RULE_KEYS} keys/rule)"),
                bytes: SecurityEvents::<RING, RULE_KEYS>::FOOTPRINT,
                prefixes: &["plimsoll_security_"],
            });
            items.push(Monitor {
                what: format!("top limited clients ({TOP})"),
                bytes: TopK::<TOP>::FOOTPRINT + TopKExport::<TOP>::FOOTPRINT,
                prefixes: &["demo_top_limited_clients"],
            });
        }
        if on.query_optimization {
            self.queries.register(registry).map_err(fail)?;
            installed.sections.push(&self.queries);
            installed.monitors.queries = Some(&self.queries);
            items.push(Monitor {
                what: format!("slow queries ({QUERIES} fingerprints)"),
                bytes: SlowQueryTracker::<QUERIES>::FOOTPRINT,
                prefixes: &["plimsoll_quer"],
            });
        }
        if on.telemetry {
            self.spans.register(registry).map_err(fail)?;
            installed.sections.push(&self.spans);
            installed.monitors.spans = Some(&self.spans);
            items.push(Monitor {
                what: format!("slow spans ({NAMES} names, {SLOWEST} slowest)"),
                bytes: SlowSpans::<NAMES, SLOWEST>::FOOTPRINT,
                prefixes: &["plimsoll_span"],
            });
        }
        Ok(installed)
    }
}

/// A rate limiter of any capacity.
pub(crate) trait Limiter: Sync {
    fn check(&self, key: u64, now_ms: u64) -> Decision;
    fn stats(&self) -> RateLimitStats;
}

impl<const K: usize> Limiter for RateLimiter<K> {
    fn check(&self, key: u64, now_ms: u64) -> Decision {
        RateLimiter::check(self, key, now_ms)
    }

    fn stats(&self) -> RateLimitStats {
        RateLimiter::stats(self)
    }
}

/// Security events of any capacity.
pub(crate) trait Events: Sync {
    /// Records the event; a rule it makes hit is in the ring and counted, which is all the
    /// demo does with it.
    fn record(&self, kind: EventKind, key: u64, code: u16, now_ms: u64);
}

impl<const E: usize, const K: usize> Events for SecurityEvents<E, K> {
    fn record(&self, kind: EventKind, key: u64, code: u16, now_ms: u64) {
        let _ = SecurityEvents::record(self, kind, key, code, now_ms);
    }
}

/// A top-k table of any capacity, counting events.
pub(crate) trait Offenders: Sync {
    fn add(&self, key: u64);
}

impl<const K: usize> Offenders for TopK<K> {
    fn add(&self, key: u64) {
        TopK::add(self, key, 1);
    }
}

/// A slow-query tracker of any capacity.
pub(crate) trait Queries: Sync {
    fn record(&self, fingerprint: u64, text: &str, duration_us: u64, now_ms: u64);
}

impl<const K: usize, const T: usize> Queries for SlowQueryTracker<K, T> {
    fn record(&self, fingerprint: u64, text: &str, duration_us: u64, now_ms: u64) {
        let _slow = SlowQueryTracker::record(self, fingerprint, text, duration_us, now_ms);
    }
}

/// Slow spans of any capacity.
pub(crate) trait Spans: Sync {
    fn record(&self, name: &str, start_ms: u64, duration_us: u64, trace_id: [u8; 16], now_ms: u64);
}

impl<const N: usize, const S: usize> Spans for SlowSpans<N, S> {
    fn record(&self, name: &str, start_ms: u64, duration_us: u64, trace_id: [u8; 16], now_ms: u64) {
        SlowSpans::record(self, name, start_ms, duration_us, Some(trace_id), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_refuses_a_client_beyond_its_burst() {
        let limiter: RateLimiter<8> = RateLimiter::new("test", CLIENT_QUOTA);
        let allowed = (0..40).filter(|_| limiter.check(1, 1_000).is_allowed()).count();
        assert_eq!(allowed, 20);
        assert!(PAYMENT.validate().is_ok());
    }
}
