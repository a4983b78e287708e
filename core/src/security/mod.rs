//! Security events and threat rules in fixed memory.
//!
//! [`SecurityEvents`] takes the security signals a service already sees (a failed login,
//! a 404, a request its rate limiter refused, kinds of its own), counts them by kind,
//! keeps the last `E` in a ring for reports, and applies three threat rules per key (a
//! client address or user id, see [`key_of`](crate::ratelimit::key_of)):
//!
//! | rule | fed by | default |
//! |---|---|---|
//! | [`Rule::BruteForce`] | [`EventKind::AuthFailure`] | 10 in 5 minutes |
//! | [`Rule::PathScan`] | [`EventKind::NotFound`] | 20 in 1 minute |
//! | [`Rule::LimitViolations`] | [`EventKind::RateLimited`] | 50 in 1 minute |
//!
//! # How a rule decides
//!
//! A rule "`N` events in `W`" is a GCRA per key from [`ratelimit`](crate::ratelimit) with
//! burst `N` and period `W` ([`Quota::per_period`]): a bucket of `N` events that drains
//! one event per `W / N`. It **hits** at the event that fills the bucket: the `N`-th of
//! `N` events at one instant, or in general the first event that brings the key's events,
//! less one per `W / N` elapsed (never below none), to `N`. A steady `N` per `W` or slower
//! never hits. This is smoother than a sliding-window count
//! (which would hit `N` evenly spread events too) and needs one `u64` per key instead of
//! `N` timestamps.
//!
//! A hit is reported **once per key per window**: a second GCRA per rule, one event per
//! `W` with no burst, lets a key's hit through only if its previous one is at least `W`
//! old. A hit raises an event of the rule's kind into the ring (with the key, time and code
//! of the event that triggered it) and its counter, and [`SecurityEvents::record`] returns
//! it so the caller can act (block the key, alert).
//!
//! Each rule's two tables hold `K` keys each; see the rate limiter's module docs for what
//! happens beyond that (evicted keys keep their counts, and innocent keys may inherit
//! some; the rule then hits early rather than late).
//!
//! # Concurrency
//!
//! Recording is safe from any number of threads: the per-kind counters are relaxed
//! atomics; writing into the ring and each rule's check are one short critical section
//! each (`critical_section::with`), so readers never see a half-written event. Reads of
//! the ring copy events out one critical section at a time
//! ([`SecurityEvents::for_each_recent`]) or all at once ([`SecurityEvents::copy_recent`]).
//!
//! # When not to use it
//!
//! It is a detector, not an audit log: the ring forgets all but the last `E` events (a
//! flood of 404s pushes older events out; the counters keep the totals), and nothing
//! survives a restart.
//!
//! ```
//! use plimsoll_core::ratelimit::key_of;
//! use plimsoll_core::security::{Rule, SecurityEvents, ThreatRules};
//!
//! static SECURITY: SecurityEvents<32, 128> = SecurityEvents::new(ThreatRules::DEFAULT);
//!
//! let client = key_of(&[198, 51, 100, 23]);
//! for attempt in 1..=10 {
//!     let hit = SECURITY.auth_failure(client, 60_000 + attempt);
//!     assert_eq!(hit, (attempt == 10).then_some(Rule::BruteForce));
//! }
//! SECURITY.for_each_recent(|event| {
//!     // newest first: the brute-force event, then the failures
//! #   let _ = event;
//! });
//! ```

use crate::family::Exposable;
use crate::ratelimit::{Decision, Quota, RateLimiter};
use crate::view::{Rows, View};
use crate::{Counter, MetricKind, RegisterError, Registry, Sample};
use core::cell::Cell;
use core::fmt;
use core::num::{NonZeroU32, NonZeroU64};
use critical_section::Mutex;

#[cfg(test)]
mod tests;

/// Number of counted kinds: every [`EventKind`] with all `Custom` kinds counted as one.
const KINDS: usize = 8;
/// The exported `kind` label of each counted kind, in [`EventKind::index`] order.
const KIND_LABELS: [&str; KINDS] = [
    "auth_failure",
    "forbidden",
    "not_found",
    "rate_limited",
    "brute_force",
    "path_scan",
    "limit_violations",
    "custom",
];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EventKind {
    /// Credentials were rejected (HTTP 401, a failed login). Feeds [`Rule::BruteForce`].
    AuthFailure,
    /// An authenticated caller asked for something it may not have (HTTP 403).
    Forbidden,
    /// A path that does not exist (HTTP 404). Feeds [`Rule::PathScan`].
    NotFound,
    /// A rate limiter refused the request (HTTP 429). Feeds [`Rule::LimitViolations`].
    RateLimited,
    /// [`Rule::BruteForce`] hit.
    BruteForce,
    /// [`Rule::PathScan`] hit.
    PathScan,
    /// [`Rule::LimitViolations`] hit.
    LimitViolations,
    /// A kind of the caller's own, kept in the ring with its number; all custom kinds
    /// share one counter (`kind="custom"`).
    Custom(u8),
}

impl EventKind {
    /// One of each kind, in the order of their counters (`Custom(0)` stands for every
    /// custom kind, which share one counter).
    pub const ALL: [EventKind; 8] = [
        Self::AuthFailure,
        Self::Forbidden,
        Self::NotFound,
        Self::RateLimited,
        Self::BruteForce,
        Self::PathScan,
        Self::LimitViolations,
        Self::Custom(0),
    ];

    /// The exported `kind` label (`"custom"` for every custom kind).
    pub const fn label(self) -> &'static str {
        KIND_LABELS[self.index()]
    }

    /// The kind's counter.
    const fn index(self) -> usize {
        match self {
            Self::AuthFailure => 0,
            Self::Forbidden => 1,
            Self::NotFound => 2,
            Self::RateLimited => 3,
            Self::BruteForce => 4,
            Self::PathScan => 5,
            Self::LimitViolations => 6,
            Self::Custom(_) => 7,
        }
    }
}

/// A threat rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rule {
    /// Too many authentication failures from one key.
    BruteForce,
    /// Too many 404s from one key: probing for paths.
    PathScan,
    /// Too many rate-limited requests from one key: a client that does not back off.
    LimitViolations,
}

impl Rule {
    /// The kind of the event a hit raises.
    pub const fn kind(self) -> EventKind {
        match self {
            Self::BruteForce => EventKind::BruteForce,
            Self::PathScan => EventKind::PathScan,
            Self::LimitViolations => EventKind::LimitViolations,
        }
    }
}

/// One security event: 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SecurityEvent {
    /// When, as the caller's `now_ms`.
    pub time_ms: u64,
    /// Who: the caller's key (see [`key_of`](crate::ratelimit::key_of)).
    pub key: u64,
    /// A small code of the caller's, such as the HTTP status; for a rule's event, the
    /// code of the event that triggered it.
    pub code: u16,
    /// What.
    pub kind: EventKind,
}

impl SecurityEvent {
    /// The value ring slots start with (never read: only written slots are).
    const EMPTY: Self = Self { time_ms: 0, key: 0, code: 0, kind: EventKind::Custom(0) };
}

/// "At least `events` within `window_ms`", as a GCRA bucket: see the
/// [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Threshold {
    /// Events that make a hit.
    pub events: NonZeroU32,
    /// The window, in milliseconds.
    pub window_ms: NonZeroU64,
}

impl Threshold {
    /// The bucket: `events` per window, all at once.
    const fn quota(self) -> Quota {
        Quota::per_period(self.events, self.window_ms)
    }

    /// At most one hit per window.
    const fn hit_quota(self) -> Quota {
        Quota::with_period(self.window_ms)
    }
}

/// The thresholds of the three rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ThreatRules {
    /// Authentication failures per key. Default: 10 in 5 minutes. People mistype a
    /// password two or three times and retry within a minute or two; 10 in 5 minutes is
    /// past that even for a shared office address, and slows a guesser to 2 a minute.
    pub brute_force: Threshold,
    /// 404s per key. Default: 20 in 1 minute. A page with a few missing assets or a
    /// stale bookmark gives a handful; scanners (dirb, nikto) give hundreds a minute.
    pub path_scan: Threshold,
    /// Rate-limited requests per key. Default: 50 in 1 minute. A well-behaved client
    /// backs off after its first 429s; almost one a second for a minute does not.
    pub limit_violations: Threshold,
}

impl ThreatRules {
    /// The defaults: see each field.
    pub const DEFAULT: Self = Self {
        brute_force: threshold(10, 300_000),
        path_scan: threshold(20, 60_000),
        limit_violations: threshold(50, 60_000),
    };
}

impl Default for ThreatRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A threshold from constants (zeros would be taken as 1).
const fn threshold(events: u32, window_ms: u64) -> Threshold {
    let events = match NonZeroU32::new(events) {
        Some(events) => events,
        None => NonZeroU32::MIN,
    };
    let window_ms = match NonZeroU64::new(window_ms) {
        Some(window_ms) => window_ms,
        None => NonZeroU64::MIN,
    };
    Threshold { events, window_ms }
}

/// One rule's two tables: the bucket, and the last hit of each key.
struct Detector<const K: usize> {
    bucket: RateLimiter<K>,
    hits: RateLimiter<K>,
}

impl<const K: usize> Detector<K> {
    const fn new(name: &'static str, threshold: Threshold) -> Self {
        Self { bucket: RateLimiter::new(name, threshold.quota()), hits: RateLimiter::new(name, threshold.hit_quota()) }
    }

    /// Whether this event of `key` hits: it fills the bucket, and the key's previous hit
    /// is at least a window old.
    fn hits(&self, key: u64, now_ms: u64) -> bool {
        self.bucket.check(key, now_ms) == Decision::Allowed { remaining: 0 }
            && self.hits.check(key, now_ms).is_allowed()
    }
}

/// The per-kind counters (series of `plimsoll_security_events_total`).
struct KindCounts([Counter; KINDS]);

impl Rows for KindCounts {
    fn slots(&self) -> usize {
        KINDS
    }
    fn sample(&self, slot: usize) -> Option<Sample<'_>> {
        self.0.get(slot).map(|counter| Sample::Counter(counter.get()))
    }
    fn label_value(&self, slot: usize, _label: usize) -> &str {
        KIND_LABELS.get(slot).copied().unwrap_or("")
    }
    fn label_value_capacity(&self) -> usize {
        "limit_violations".len()
    }
}

/// The last `E` events, and how many were ever written.
struct Ring<const E: usize> {
    state: Mutex<RingState<E>>,
}

struct RingState<const E: usize> {
    events: [Cell<SecurityEvent>; E],
    written: Cell<u64>,
}

impl<const E: usize> Ring<E> {
    const fn new() -> Self {
        Self {
            state: Mutex::new(RingState {
                events: [const { Cell::new(SecurityEvent::EMPTY) }; E],
                written: Cell::new(0),
            }),
        }
    }

    fn push(&self, event: SecurityEvent) {
        critical_section::with(|cs| {
            let state = self.state.borrow(cs);
            let written = state.written.get();
            state.events[(written % E as u64) as usize].set(event);
            state.written.set(written + 1);
        });
    }

    fn written(&self) -> u64 {
        critical_section::with(|cs| self.state.borrow(cs).written.get())
    }

    /// Event number `seq` (from 0), if it is still in the ring.
    fn get(&self, seq: u64) -> Option<SecurityEvent> {
        critical_section::with(|cs| {
            let state = self.state.borrow(cs);
            let written = state.written.get();
            (seq < written && written - seq <= E as u64).then(|| state.events[(seq % E as u64) as usize].get())
        })
    }

    /// Copies the newest events into `out`, newest first, in one critical section.
    fn copy_newest(&self, out: &mut [SecurityEvent]) -> usize {
        critical_section::with(|cs| {
            let state = self.state.borrow(cs);
            let written = state.written.get();
            let n = out.len().min(E).min(usize::try_from(written).unwrap_or(usize::MAX));
            for (back, slot) in out[..n].iter_mut().enumerate() {
                let seq = written - 1 - back as u64;
                *slot = state.events[(seq % E as u64) as usize].get();
            }
            n
        })
    }

    fn held(&self) -> usize {
        usize::try_from(self.written()).unwrap_or(usize::MAX).min(E)
    }
}

impl<const E: usize> Rows for Ring<E> {
    fn slots(&self) -> usize {
        1
    }
    fn sample(&self, _slot: usize) -> Option<Sample<'_>> {
        Some(Sample::Gauge(i64::try_from(self.held()).unwrap_or(i64::MAX)))
    }
    fn label_value(&self, _slot: usize, _label: usize) -> &str {
        ""
    }
    fn label_value_capacity(&self) -> usize {
        0
    }
}

/// Security events: per-kind counters, a ring of the last `E` events (default 64) and
/// three threat rules over up to `K` keys each (default 256). See the
/// [module docs](self).
///
/// Exported through a [`Registry`] by [`register`](Self::register), as families whose
/// series read the counters directly (there is no `update` to call):
///
/// | family | type | labels |
/// |---|---|---|
/// | `plimsoll_security_events_total` | counter | `kind` = `auth_failure` \| `forbidden` \| `not_found` \| `rate_limited` \| `brute_force` \| `path_scan` \| `limit_violations` \| `custom` |
/// | `plimsoll_security_ring_events` | gauge | none: events held in the ring |
///
/// Rule hits are counted as events of the rule's kind (`kind="brute_force"` and so on),
/// so one family holds both the signals and the hits. A registry holds one
/// `SecurityEvents`' families.
///
/// # Footprint
///
/// On a 64-bit target, 696 + 24 × `E` + 204 × `K` bytes (for `K` a multiple of 4): 24 per
/// event of the ring and 6 × 34 per key, for each rule's two tables.
/// `SecurityEvents::<64, 256>::FOOTPRINT` is 54,456 bytes, 52,752 of them the rule tables.
pub struct SecurityEvents<const E: usize = 64, const K: usize = 256> {
    brute_force: Detector<K>,
    path_scan: Detector<K>,
    limit_violations: Detector<K>,
    kinds: View<KindCounts, 1>,
    ring: View<Ring<E>, 0>,
}

impl<const E: usize, const K: usize> fmt::Debug for SecurityEvents<E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityEvents")
            .field("total", &self.total())
            .field("held", &self.len())
            .field("capacity", &E)
            .finish_non_exhaustive()
    }
}

impl<const E: usize, const K: usize> SecurityEvents<E, K> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// No events yet, judged by `rules`.
    pub const fn new(rules: ThreatRules) -> Self {
        const { assert!(E > 0, "the ring needs room for at least one event") };
        Self {
            brute_force: Detector::new("brute_force", rules.brute_force),
            path_scan: Detector::new("path_scan", rules.path_scan),
            limit_violations: Detector::new("limit_violations", rules.limit_violations),
            kinds: View::new(
                "plimsoll_security_events",
                "Security events by kind: signals reported by the service, and threat rule hits \
                 (brute_force, path_scan, limit_violations).",
                MetricKind::Counter,
                ["kind"],
                KindCounts([const { Counter::new() }; KINDS]),
            ),
            ring: View::new(
                "plimsoll_security_ring_events",
                "Security events held in the ring of recent events.",
                MetricKind::Gauge,
                [],
                Ring::new(),
            ),
        }
    }

    /// Records an event of `kind` by `key` at `now_ms` with the caller's `code`: counts
    /// it, writes it into the ring and, for the kinds that feed a rule, applies the rule.
    /// Returns the rule if this event makes it hit (its event is then in the ring too).
    pub fn record(&self, kind: EventKind, key: u64, code: u16, now_ms: u64) -> Option<Rule> {
        self.push(SecurityEvent { time_ms: now_ms, key, code, kind });
        let (rule, detector) = match kind {
            EventKind::AuthFailure => (Rule::BruteForce, &self.brute_force),
            EventKind::NotFound => (Rule::PathScan, &self.path_scan),
            EventKind::RateLimited => (Rule::LimitViolations, &self.limit_violations),
            _ => return None,
        };
        if !detector.hits(key, now_ms) {
            return None;
        }
        self.push(SecurityEvent { time_ms: now_ms, key, code, kind: rule.kind() });
        Some(rule)
    }

    /// A failed authentication: [`record`](Self::record) of [`EventKind::AuthFailure`]
    /// with code 401.
    pub fn auth_failure(&self, key: u64, now_ms: u64) -> Option<Rule> {
        self.record(EventKind::AuthFailure, key, 401, now_ms)
    }

    /// A 404: [`record`](Self::record) of [`EventKind::NotFound`] with code 404.
    pub fn not_found(&self, key: u64, now_ms: u64) -> Option<Rule> {
        self.record(EventKind::NotFound, key, 404, now_ms)
    }

    /// A request refused by a rate limiter: [`record`](Self::record) of
    /// [`EventKind::RateLimited`] with code 429.
    pub fn limit_violation(&self, key: u64, now_ms: u64) -> Option<Rule> {
        self.record(EventKind::RateLimited, key, 429, now_ms)
    }

    fn push(&self, event: SecurityEvent) {
        self.kinds.rows.0[event.kind.index()].inc();
        self.ring.rows.push(event);
    }

    /// Events of `kind` since creation (of every custom kind, for a `Custom` one).
    pub fn count(&self, kind: EventKind) -> u64 {
        self.kinds.rows.0[kind.index()].get()
    }

    /// Events since creation, rule hits included.
    pub fn total(&self) -> u64 {
        self.ring.rows.written()
    }

    /// Events held in the ring (at most `E`).
    pub fn len(&self) -> usize {
        self.ring.rows.held()
    }

    /// Whether no event was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `each` with the events in the ring, newest first. Each event is copied out in
    /// a critical section of its own, so `each` runs outside any; events recorded
    /// meanwhile are not visited, and the walk stops early at events overwritten
    /// meanwhile.
    pub fn for_each_recent(&self, mut each: impl FnMut(SecurityEvent)) {
        let written = self.ring.rows.written();
        for seq in (written.saturating_sub(E as u64)..written).rev() {
            match self.ring.rows.get(seq) {
                Some(event) => each(event),
                None => return,
            }
        }
    }

    /// Copies the newest events into `out`, newest first, as of one instant (one critical
    /// section of up to `out.len()` copies); returns how many.
    pub fn copy_recent(&self, out: &mut [SecurityEvent]) -> usize {
        self.ring.rows.copy_newest(out)
    }

    /// Registers the 2 families with `registry`. Fails without registering any if the
    /// registry has no room for both, or already holds a `SecurityEvents`' families.
    pub fn register<const F: usize>(&'static self, registry: &Registry<F>) -> Result<(), RegisterError> {
        let families: [&'static dyn Exposable; 2] = [&self.kinds, &self.ring];
        if F.saturating_sub(registry.len()) < families.len() {
            return Err(RegisterError::RegistryFull(families[0].descriptor().name));
        }
        families.into_iter().try_for_each(|family| registry.register(family))
    }
}
