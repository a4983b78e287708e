//! Keyed rate limiting (GCRA) in a fixed table of keys.
//!
//! A [`RateLimiter`] decides, for each caller-supplied `u64` key (a client address or a
//! user id hashed by [`key_of`], or any id of the caller's), whether one more request
//! conforms to a [`Quota`]. Its memory is fixed: a table of `K` keys, 34 bytes each.
//!
//! # The algorithm
//!
//! GCRA, the generic cell rate algorithm, exactly as the `governor` crate implements it
//! (`Gcra::test_and_update` and `Gcra::test_n_all_and_update` in governor's
//! `src/gcra.rs`): one theoretical arrival time (TAT) per key.
//!
//! - A quota of `n` requests per period with burst `b` has emission interval
//!   `t = period / n` and tolerance `tau = t × (b − 1)`.
//! - A key with no state has `tat = now`.
//! - A request at `now` is allowed iff `now ≥ tat − tau`; the key's TAT becomes
//!   `max(tat, now) + t`. Otherwise it is limited "not until" `tat − tau`, and the state is
//!   unchanged: a limited request costs the key nothing.
//! - `n` requests at once ([`RateLimiter::check_n`]) are allowed iff
//!   `now ≥ tat + (n − 1) × t − tau`, and advance the TAT by `n × t`; more than the burst
//!   never can be ([`InsufficientCapacity`]).
//! - [`Decision::Allowed`] carries governor's `remaining_burst_capacity`:
//!   `min(now + t + tau − tat, tau) / t`, the requests that would still be allowed right now.
//!
//! So over any span of `L` µs a key gets at most `b + floor(L / t)` requests, and a full
//! burst back after `b × t` of silence.
//!
//! # Time
//!
//! The caller passes `now_ms` (milliseconds, any epoch). Inside, time is kept in
//! **microseconds**: milliseconds would round emission intervals too coarsely (3 per
//! second is 333.333 ms; 5,000 per second is 0.2 ms), while nanoseconds would overflow a
//! `u64` in the year 2554 for a Unix-epoch clock and leave little room for saturating
//! arithmetic. The interval is rounded down to whole microseconds (at least 1), as
//! governor rounds it to whole nanoseconds: a limit is never stricter than asked.
//!
//! - A clock that goes backwards (a `now_ms` lower than one the limiter has already seen,
//!   for any key) is taken as "no time passed": the check runs at the newest time seen,
//!   so it can never grant anything extra.
//! - Times beyond 2^53 ms (about 285,000 years) are taken as 2^53 ms. Every sum
//!   saturates, which only a quota whose burst spans more than 2^63 µs (292,000 years)
//!   can reach: it then behaves as unlimited.
//!
//! # The table and eviction
//!
//! A key lives in one of the `min(8, K)` slots from its home slot (its hash, seeded with
//! [`RateLimiter::with_seed`]). When all of them hold other keys, the new key takes the
//! slot of the key that is, in this order:
//!
//! 1. **expired**: its TAT is at or before `now`, so it carries no debt and forgetting it
//!    loses nothing (its next request would be judged exactly as a new key's);
//! 2. otherwise **least recently seen** (by any check, allowed or limited).
//!
//! Evicting a key with debt moves the debt into a **shadow** of `K` cells, indexed by
//! a second hash of the key and tagged with 16 bits of it. A key entering the table
//! starts from the debt in its cell when the cell is live (TAT after `now`) and carries
//! its tag, or is *merged*: a cell that receives the debt of a second key while the
//! first's is still live keeps the larger TAT and matches every key.
//!
//! # The bound for evicted keys
//!
//! Evictions never let a key exceed its limit: over any span of `L` µs, every key gets at
//! most `b + floor(L / t)` allowed requests, the exact GCRA bound, however often it was
//! evicted (not one burst more per eviction, which is what forgetting evicted state would
//! give). The reason: the state a key is judged by is never below the TAT its own allowed
//! requests imply. It is in the table, or in its shadow cell, which only ever grows while
//! live and keeps matching the key. The test `evicted_key_never_escapes_its_limit` drives
//! a key through hundreds of evictions and checks it gets exactly what a limiter with
//! unlimited memory gives it.
//!
//! The price, paid only when the table is too small for the keys active within a burst
//! period: **an innocent key can be limited for another key's debt.** A key entering the
//! table inherits a live cell's debt if its 16-bit tag matches by chance (1 in 65,535) or
//! the cell is merged. The debt is at most one burst (`tau + t`) and is paid off within
//! `tau + t` of the eviction that recorded it, but under a flood of more distinct keys
//! than the table holds cells keep being refreshed, and keys entering the table keep
//! starting with part of their burst used: the limiter fails closed. Size `K` above the
//! number of keys active within a burst period; [`RateLimitStats::evicted_in_debt`] (the
//! `plimsoll_ratelimit_evictions_total{reason="in_debt"}` series) counts the evictions
//! that fed the shadow, and should stay near zero.
//!
//! # Concurrency
//!
//! Each check is one short critical section (`critical_section::with`): it probes at most
//! 8 slots, reads and writes one slot and at most one shadow cell, and does a constant
//! amount of arithmetic. A check is a read-modify-write of a key, its TAT and its
//! last-seen time that must be atomic with respect to a slot being handed to another key;
//! lock-free, that needs a compare-and-swap over two words (which `thumbv7em` lacks) or a
//! generation counter that can, however rarely, wrap and charge one key's request to
//! another. Counters are relaxed atomics updated after the section. On a single-core
//! microcontroller the section masks interrupts for a few dozen instructions; on std it
//! is the `critical-section` crate's process-wide mutex, so checks from all threads (and
//! all limiters) take turns: ample for request rates, not for per-packet decisions at
//! line rate.
//!
//! # When not to use it
//!
//! - For limits shared between processes or machines: the state lives in this process.
//! - For exact sliding-window counts ("at most 100 in any 60 s"): GCRA is a leaky bucket,
//!   smoother and cheaper, but it allows `b` at once and then one per `t`.
//! - When far more keys are active at once than `K`: see the bound above.
//!
//! ```
//! use core::num::NonZeroU32;
//! use plimsoll_core::ratelimit::{Decision, Quota, RateLimiter, key_of};
//!
//! const TEN: NonZeroU32 = NonZeroU32::new(10).unwrap();
//! static LOGIN: RateLimiter<256> = RateLimiter::new("login", Quota::per_minute(TEN));
//!
//! let client = key_of(&[192, 0, 2, 7]);
//! for _ in 0..10 {
//!     assert!(LOGIN.check(client, 1_000).is_allowed());
//! }
//! assert_eq!(LOGIN.check(client, 1_000), Decision::Limited { retry_after_ms: 6_000 });
//! ```

use crate::Counter;
use crate::atomic::{AtomicU64, Ordering::Relaxed};
use core::cell::Cell;
use core::fmt;
use core::num::{NonZeroU32, NonZeroU64};
use critical_section::Mutex;

mod export;
#[cfg(test)]
mod tests;

pub use export::{ExportError, MAX_LIMITER_NAME_LEN, RateLimitExport};

/// Microseconds per millisecond.
const US_PER_MS: u64 = 1_000;
/// The latest time told apart, in ms (about 285,000 years): in µs it leaves 2^63 µs of
/// room above it for TATs, so only quotas spanning more than that ever saturate.
const MAX_NOW_MS: u64 = 1 << 53;
/// The most slots a key may live in, from its home slot on.
const PROBE: usize = 8;
/// The tag of a shadow cell holding the debt of more than one key: it matches every key.
const MERGED: u16 = 0;

/// How many requests a key may make: `n` per period, with a burst.
///
/// Zero rates, periods and bursts cannot be expressed (`NonZeroU32`, `NonZeroU64`). The
/// constructors are `const`, so a quota can be built in a `static`'s initializer:
///
/// ```
/// use core::num::{NonZeroU32, NonZeroU64};
/// use plimsoll_core::ratelimit::Quota;
///
/// // 100 per second, of which 20 at once.
/// const API: Quota = Quota::per_second(NonZeroU32::new(100).unwrap())
///     .allow_burst(NonZeroU32::new(20).unwrap());
/// assert_eq!(API.interval_us(), 10_000);
/// // One every 10 minutes, none saved up.
/// const RESET: Quota = Quota::with_period(NonZeroU64::new(600_000).unwrap());
/// assert_eq!(RESET.burst().get(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quota {
    /// The emission interval `t` in µs, at least 1.
    interval_us: u64,
    burst: NonZeroU32,
}

impl Quota {
    /// `n` requests per `period_ms`, all of which may come at once (burst `n`).
    pub const fn per_period(n: NonZeroU32, period_ms: NonZeroU64) -> Self {
        Self::per_period_us(n, period_ms.get().saturating_mul(US_PER_MS))
    }

    /// `n` requests per second, burst `n` (governor's `Quota::per_second`).
    pub const fn per_second(n: NonZeroU32) -> Self {
        Self::per_period_us(n, 1_000_000)
    }

    /// `n` requests per minute, burst `n`.
    pub const fn per_minute(n: NonZeroU32) -> Self {
        Self::per_period_us(n, 60_000_000)
    }

    /// `n` requests per hour, burst `n`.
    pub const fn per_hour(n: NonZeroU32) -> Self {
        Self::per_period_us(n, 3_600_000_000)
    }

    /// One request per `period_ms`, burst 1 (governor's `Quota::with_period`).
    pub const fn with_period(period_ms: NonZeroU64) -> Self {
        Self::per_period_us(NonZeroU32::MIN, period_ms.get().saturating_mul(US_PER_MS))
    }

    /// The same rate with a burst of `burst` requests at once.
    pub const fn allow_burst(self, burst: NonZeroU32) -> Self {
        Self { burst, ..self }
    }

    /// The emission interval: a request is earned back every this many microseconds.
    pub const fn interval_us(&self) -> u64 {
        self.interval_us
    }

    /// The most requests allowed at once.
    pub const fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    const fn per_period_us(n: NonZeroU32, period_us: u64) -> Self {
        let interval_us = period_us / n.get() as u64;
        Self { interval_us: if interval_us == 0 { 1 } else { interval_us }, burst: n }
    }

    /// `tau`: how far ahead of `now` a key's TAT may be and still be allowed.
    const fn tolerance_us(&self) -> u64 {
        self.interval_us.saturating_mul(self.burst.get() as u64 - 1)
    }

    /// governor's decision for `n` requests against `tat` at `now` (µs): the new TAT and
    /// the requests remaining, or how long until `n` would conform.
    fn conform(&self, tat: u64, now: u64, n: u32) -> Result<(u64, u32), u64> {
        let (t, tau) = (self.interval_us, self.tolerance_us());
        let extra = t.saturating_mul(u64::from(n - 1));
        let earliest = tat.saturating_add(extra).saturating_sub(tau);
        if now < earliest {
            return Err(earliest - now);
        }
        let next = tat.max(now).saturating_add(t).saturating_add(extra);
        let remaining = now.saturating_add(t).saturating_add(tau).saturating_sub(next).min(tau) / t;
        Ok((next, u32::try_from(remaining).unwrap_or(u32::MAX)))
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// The request conforms; `remaining` more would be allowed right now.
    Allowed {
        /// Requests that would still be allowed at this instant (0 once the burst is used).
        remaining: u32,
    },
    /// The request does not conform and was not counted against the key.
    Limited {
        /// The earliest a retry can be allowed, from now, rounded up to whole
        /// milliseconds (an HTTP `Retry-After` is this in seconds, rounded up).
        retry_after_ms: u64,
    },
}

impl Decision {
    /// Whether the request was allowed.
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// [`RateLimiter::check_n`] was asked for more requests than the burst: no amount of
/// waiting would allow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct InsufficientCapacity {
    /// The quota's burst, the most one check can ask for.
    pub burst: u32,
}

impl fmt::Display for InsufficientCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more requests asked at once than the burst of {}", self.burst)
    }
}

impl core::error::Error for InsufficientCapacity {}

/// A limiter's counts since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RateLimitStats {
    /// Checks that were allowed.
    pub allowed: u64,
    /// Checks that were limited.
    pub limited: u64,
    /// Keys evicted with no debt (TAT at or before the check's time).
    pub evicted_expired: u64,
    /// Keys evicted with debt, moved into the shadow.
    pub evicted_in_debt: u64,
    /// Keys in the table.
    pub keys: u64,
    /// Keys the table can hold (`K`).
    pub capacity: u64,
}

/// A keyed GCRA rate limiter for up to `K` keys at once. See the [module docs](self) for
/// the algorithm, eviction, its bound and concurrency.
///
/// Its size is fixed: `RateLimiter::<K>::FOOTPRINT` bytes, 34 per key plus 88 on a 64-bit
/// target (34,904 bytes for the default `K` = 1024).
pub struct RateLimiter<const K: usize = 1024> {
    name: &'static str,
    quota: Quota,
    seed: u64,
    table: Mutex<Table<K>>,
    allowed: Counter,
    limited: Counter,
    evicted_expired: Counter,
    evicted_in_debt: Counter,
    keys: AtomicU64,
}

impl<const K: usize> fmt::Debug for RateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<const K: usize> RateLimiter<K> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty limiter. `name` labels its series once added to a [`RateLimitExport`].
    pub const fn new(name: &'static str, quota: Quota) -> Self {
        const { assert!(K > 0, "a rate limiter needs room for at least one key") };
        Self {
            name,
            quota,
            seed: 0,
            table: Mutex::new(Table::new()),
            allowed: Counter::new(),
            limited: Counter::new(),
            evicted_expired: Counter::new(),
            evicted_in_debt: Counter::new(),
            keys: AtomicU64::new(0),
        }
    }

    /// Seeds the hash that places keys in the table and the shadow. The hash is not
    /// cryptographic; with the default seed (0) anyone can compute where a key lands and
    /// choose keys that crowd one key's slots and shadow cell (which makes that key
    /// inherit their debt, never escape its own). A secret random seed, drawn once at
    /// start-up, makes the placement unpredictable.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The name given to [`new`](Self::new).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The quota every key is held to.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Whether one request of `key` at `now_ms` conforms; if it does, it is counted.
    #[inline]
    pub fn check(&self, key: u64, now_ms: u64) -> Decision {
        self.decide(key, now_ms, 1)
    }

    /// Whether `n` requests of `key` at once at `now_ms` conform: all or none are
    /// counted. Fails, recording nothing, if `n` exceeds the burst.
    pub fn check_n(&self, key: u64, n: NonZeroU32, now_ms: u64) -> Result<Decision, InsufficientCapacity> {
        let burst = self.quota.burst.get();
        if n.get() > burst {
            return Err(InsufficientCapacity { burst });
        }
        Ok(self.decide(key, now_ms, n.get()))
    }

    /// Counts since the limiter was created.
    pub fn stats(&self) -> RateLimitStats {
        RateLimitStats {
            allowed: self.allowed.get(),
            limited: self.limited.get(),
            evicted_expired: self.evicted_expired.get(),
            evicted_in_debt: self.evicted_in_debt.get(),
            keys: self.keys.load(Relaxed),
            capacity: K as u64,
        }
    }

    fn decide(&self, key: u64, now_ms: u64, n: u32) -> Decision {
        let place = Place::of(key, self.seed, K);
        let (entry, outcome) = critical_section::with(|cs| {
            let table = self.table.borrow(cs);
            let now_ms = table.advance(now_ms);
            let now = now_ms * US_PER_MS;
            let (slot, entry) = table.entry(key, &place, now, self.seed);
            slot.seen.set(now_ms + 1);
            let outcome = self.quota.conform(slot.tat.get(), now, n);
            if let Ok((tat, _)) = outcome {
                slot.tat.set(tat);
            }
            (entry, outcome)
        });
        match entry {
            Entry::Found => {}
            Entry::Inserted => {
                self.keys.fetch_add(1, Relaxed);
            }
            Entry::EvictedExpired => self.evicted_expired.inc(),
            Entry::EvictedInDebt => self.evicted_in_debt.inc(),
        }
        match outcome {
            Ok((_, remaining)) => {
                self.allowed.inc();
                Decision::Allowed { remaining }
            }
            Err(wait_us) => {
                self.limited.inc();
                Decision::Limited { retry_after_ms: wait_us.div_ceil(US_PER_MS) }
            }
        }
    }
}

/// A key in the table: its TAT (µs) and when it was last checked (ms + 1; 0: empty).
struct Slot {
    key: Cell<u64>,
    tat: Cell<u64>,
    seen: Cell<u64>,
}

/// How [`Table::entry`] found the key's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Found,
    Inserted,
    EvictedExpired,
    EvictedInDebt,
}

/// The state behind the critical section.
struct Table<const K: usize> {
    slots: [Slot; K],
    /// The shadow: the largest live TAT of the evicted keys of each cell, and its tag.
    debt: [Cell<u64>; K],
    tags: [Cell<u16>; K],
    /// The newest time any check has run at (ms).
    newest_ms: Cell<u64>,
}

impl<const K: usize> Table<K> {
    const fn new() -> Self {
        Self {
            slots: [const { Slot { key: Cell::new(0), tat: Cell::new(0), seen: Cell::new(0) } }; K],
            debt: [const { Cell::new(0) }; K],
            tags: [const { Cell::new(0) }; K],
            newest_ms: Cell::new(0),
        }
    }

    /// The time to judge a check at: `now_ms`, capped, and never before the newest seen.
    fn advance(&self, now_ms: u64) -> u64 {
        let now_ms = now_ms.min(MAX_NOW_MS).max(self.newest_ms.get());
        self.newest_ms.set(now_ms);
        now_ms
    }

    /// The slot holding `key`, filled or taken over (see the module docs) if none does.
    fn entry(&self, key: u64, place: &Place, now: u64, seed: u64) -> (&Slot, Entry) {
        let mut victim = place.home;
        for i in 0..PROBE.min(K) {
            let index = (place.home + i) % K;
            let slot = &self.slots[index];
            if slot.seen.get() == 0 {
                // Slots are never emptied, so no key lives past the first empty one.
                self.occupy(slot, key, place, now);
                return (slot, Entry::Inserted);
            }
            if slot.key.get() == key {
                return (slot, Entry::Found);
            }
            if eviction_rank(slot, now) < eviction_rank(&self.slots[victim], now) {
                victim = index;
            }
        }
        let slot = &self.slots[victim];
        let debt = slot.tat.get();
        let entry = if debt > now {
            self.remember(&Place::of(slot.key.get(), seed, K), debt, now);
            Entry::EvictedInDebt
        } else {
            Entry::EvictedExpired
        };
        self.occupy(slot, key, place, now);
        (slot, entry)
    }

    /// Gives `slot` to `key`, starting from the debt its shadow cell holds for it.
    fn occupy(&self, slot: &Slot, key: u64, place: &Place, now: u64) {
        let (debt, tag) = (self.debt[place.cell].get(), self.tags[place.cell].get());
        let inherited = debt > now && (tag == place.tag || tag == MERGED);
        slot.key.set(key);
        slot.tat.set(if inherited { debt } else { now });
    }

    /// Keeps the debt (`tat` after `now`) of an evicted key in its shadow cell.
    fn remember(&self, place: &Place, tat: u64, now: u64) {
        let (debt, tag) = (&self.debt[place.cell], &self.tags[place.cell]);
        if debt.get() <= now {
            // The cell's previous debt is paid: it is this key's alone now.
            debt.set(tat);
            tag.set(place.tag);
        } else {
            debt.set(debt.get().max(tat));
            if tag.get() != place.tag {
                tag.set(MERGED);
            }
        }
    }
}

/// Slots with a lower rank are evicted first: expired before in debt, then least
/// recently seen.
fn eviction_rank(slot: &Slot, now: u64) -> (bool, u64) {
    (slot.tat.get() > now, slot.seen.get())
}

/// Where a key lives: its home slot, its shadow cell and its shadow tag (never `MERGED`).
struct Place {
    home: usize,
    cell: usize,
    tag: u16,
}

impl Place {
    fn of(key: u64, seed: u64, k: usize) -> Self {
        let hash = mix(key ^ seed);
        let second = mix(hash ^ 0x9E37_79B9_7F4A_7C15);
        Self { home: scale(hash, k), cell: scale(second, k), tag: (second as u16).max(1) }
    }
}

/// `hash` scaled to `0..n` by its high bits (multiply-shift, no division).
fn scale(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// MurmurHash3's 64-bit finalizer: a bijection of `u64` in which every input bit flips
/// each output bit with probability close to one half.
const fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

/// A well-mixed 64-bit key for `bytes` (a client address, a user id).
///
/// Inputs are read as little-endian 8-byte words, each folded into the state and mixed
/// with MurmurHash3's finalizer, starting from a state that depends on the length.
///
/// **Collisions.** For inputs of the same length up to 8 bytes (an IPv4 address, an IPv4
/// address and port, an IPv6 /64 prefix, a `u64` id) `key_of` is a bijection: distinct
/// inputs never share a key. Longer inputs (a full IPv6 address, a user name) are hashed,
/// and the hash is not keyed: someone who chooses the bytes freely can compute an input
/// with the same key as another and so share (and spend) its limit. For such input, key
/// on something the client cannot choose, or hash it with a keyed hash (SipHash with a
/// secret key) and pass the result to [`RateLimiter::check`].
pub const fn key_of(bytes: &[u8]) -> u64 {
    let mut state = mix(bytes.len() as u64 ^ 0x243F_6A88_85A3_08D3);
    let mut start = 0;
    while start < bytes.len() {
        let mut word = 0u64;
        let mut i = 0;
        while i < 8 && start + i < bytes.len() {
            word |= (bytes[start + i] as u64) << (8 * i);
            i += 1;
        }
        state = mix(state ^ word);
        start += 8;
    }
    state
}
