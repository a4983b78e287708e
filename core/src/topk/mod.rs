//! Heavy hitters in fixed memory: the Space-Saving algorithm over `K` counters.
//!
//! [`SpaceSaving`] answers "which keys carry the most weight?" over an unbounded stream
//! of `u64` keys, in memory fixed by `K`: the top keys by request count ([`TopK`], weight
//! 1 per event), or by total time (weight = a duration), with a per-key [`Payload`] for
//! whatever else a key should carry (the slow-query tracker keeps its statistics there).
//! Keys are `u64`: hash a string key first (for example with `rustc_hash::FxHasher`);
//! two keys whose hashes collide are counted as one.
//!
//! # The algorithm
//!
//! Space-Saving (Metwally, Agrawal and El Abbadi, "Efficient computation of frequent and
//! top-k elements in data streams", ICDT 2005), with weighted increments. A key already in
//! the table adds its weight to its count. A new key takes a free counter if there is one;
//! otherwise it replaces the key with the smallest count `m`, inherits `m` as its
//! over-estimation `error` and starts at `count = m + weight`. So `count - error` is
//! exactly the weight the key received since it last entered the table.
//!
//! # Guarantees
//!
//! With `N` the total weight added ([`SpaceSaving::total`]) and `m` the smallest count of
//! a full table ([`SpaceSaving::min_count`], 0 while a counter is free), the counts always
//! add up to `N`, so `m <= N / K`, and for every key `x` with exact weight `exact(x)`:
//!
//! - if `x` is in the table: `count - error <= exact(x) <= count`, and
//!   `error <= m <= N / K`, so the count over-estimates by at most `N / K`;
//! - if `x` is not in the table: `exact(x) <= m`; hence every key with
//!   `exact(x) > N / K` is in the table.
//!
//! While at most `K` distinct keys have been seen, every count is exact (`error == 0`).
//! Counts and the total saturate at `u64::MAX` instead of wrapping.
//!
//! A zero weight updates a key already in the table (its payload sees the event), takes
//! a free counter, but never evicts another key: it would bring no weight for the count
//! it displaces.
//!
//! # Cost and concurrency
//!
//! Each [`add`](SpaceSaving::add) is a linear scan of the `K` keys, plus a second linear
//! scan of the counts to find the minimum when a new key meets a full table: O(K) per
//! event, which is the right trade for the small `K` this is meant for (up to 64 or so);
//! a larger `K` costs proportionally more per event. Memory is 24 bytes per counter plus
//! the payloads ([`SpaceSaving::FOOTPRINT`]).
//!
//! Updates take a short critical section (`critical-section`) around the fixed table: at
//! most two scans of `K` words and the payload update, never longer. With
//! `critical-section/std` this is one process-wide lock, so threads adding at very high
//! rates contend on it; on a single-core embedded target it masks interrupts for that
//! long. A lock-free Space-Saving is not attempted: replacing the minimum changes a key,
//! its count and its error together, after a search over every counter, and without a
//! multi-word compare-and-swap (which the 32-bit targets this crate supports lack) racing
//! replacements either lose weight or count it twice; the published concurrent variants
//! keep one table per thread and merge on read, multiplying memory by the thread count.
//!
//! # Export
//!
//! [`TopKExport`] renders a [`TopK`] as one gauge family of at most `K` series labelled
//! `rank` and `key` (16 hex digits), refreshed by its `update` before each scrape.
//!
//! # When not to use it
//!
//! For a small, known set of keys, a [`Family`](crate::Family) of counters is exact. The
//! table covers everything since it was created, with no decay or time window: it finds
//! the keys that dominate the whole run, not those of the last minute.

mod export;
#[cfg(test)]
mod tests;

pub use export::TopKExport;

use core::cell::RefCell;
use critical_section::Mutex;

/// What each counter carries besides its key, count and error; `()` for none.
///
/// A payload is reset whenever its counter is given to a new key, inside the critical
/// section, and updated there by [`SpaceSaving::add_with`]; it is shared through `&self`
/// (readers such as an exporter may read it outside the section), hence the `&self` reset
/// and the usual atomics inside.
pub trait Payload: Sync {
    /// The payload of a counter that has never held a key.
    // A const of an interior-mutable type is only ever copied into a new table.
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self;
    /// Returns the payload to [`ZERO`](Self::ZERO), through `&self`.
    fn reset(&self);
}

impl Payload for () {
    const ZERO: Self = ();
    fn reset(&self) {}
}

/// One counter as read back: its key, its estimated count and the count's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Entry {
    /// The key.
    pub key: u64,
    /// The estimated weight of the key: never below its exact weight.
    pub count: u64,
    /// How much `count` may over-estimate: the count the key inherited when it entered.
    pub error: u64,
}

impl Entry {
    const EMPTY: Self = Self { key: 0, count: 0, error: 0 };

    /// The guaranteed weight of the key, `count - error`: exactly what it received since it
    /// last entered the table, never above its exact weight.
    pub const fn lower_bound(&self) -> u64 {
        self.count.saturating_sub(self.error)
    }
}

/// The counters, behind the critical section: structure of arrays, so that each linear
/// scan reads one dense array.
#[derive(Debug, Clone, Copy)]
struct Table<const K: usize> {
    keys: [u64; K],
    counts: [u64; K],
    errors: [u64; K],
    /// Counters in use; they fill in order and are never freed.
    len: usize,
    /// The total weight added, `N`.
    total: u64,
}

/// Where an arrival went.
enum Placed {
    /// Into the counter already holding the key.
    Hit(usize),
    /// Into a counter newly given to the key (free, or taken from the minimum).
    Admitted(usize),
}

impl<const K: usize> Table<K> {
    const EMPTY: Self = Self { keys: [0; K], counts: [0; K], errors: [0; K], len: 0, total: 0 };

    fn add(&mut self, key: u64, weight: u64) -> Option<Placed> {
        self.total = self.total.saturating_add(weight);
        if let Some(slot) = self.keys[..self.len].iter().position(|&k| k == key) {
            self.counts[slot] = self.counts[slot].saturating_add(weight);
            return Some(Placed::Hit(slot));
        }
        let (slot, inherited) = if self.len < K {
            self.len += 1;
            (self.len - 1, 0)
        } else if weight == 0 {
            return None;
        } else {
            let slot = self.min_slot();
            (slot, self.counts[slot])
        };
        self.keys[slot] = key;
        self.errors[slot] = inherited;
        self.counts[slot] = inherited.saturating_add(weight);
        Some(Placed::Admitted(slot))
    }

    /// The counter with the smallest count (the first of equals), by linear scan.
    fn min_slot(&self) -> usize {
        let counts = &self.counts[..self.len];
        (1..counts.len()).fold(0, |min, i| if counts[i] < counts[min] { i } else { min })
    }

    fn min_count(&self) -> u64 {
        if self.len < K { 0 } else { self.counts[self.min_slot()] }
    }

    fn entry(&self, slot: usize) -> Entry {
        Entry { key: self.keys[slot], count: self.counts[slot], error: self.errors[slot] }
    }

    /// The counters in use ordered by descending `score`, ties by ascending key; only the
    /// first `len` indices are meaningful.
    fn ranked(&self, score: impl Fn(usize) -> u64) -> [usize; K] {
        let mut order = [0; K];
        for (slot, o) in order.iter_mut().enumerate() {
            *o = slot;
        }
        order[..self.len].sort_unstable_by(|&a, &b| score(b).cmp(&score(a)).then(self.keys[a].cmp(&self.keys[b])));
        order
    }
}

/// Space-Saving over `K` counters keyed by `u64`, each with a payload `P`. See the
/// [module docs](self) for the guarantees, cost and concurrency.
///
/// ```
/// use plimsoll_core::topk::TopK;
/// static CLIENTS: TopK<16> = TopK::new();
///
/// for client in [7, 7, 3, 7, 9, 3] {
///     CLIENTS.add(client, 1);
/// }
/// let mut top = Vec::new();
/// CLIENTS.for_each_top(|key, count, error| top.push((key, count, error)));
/// assert_eq!(top, [(7, 3, 0), (3, 2, 0), (9, 1, 0)]);
/// ```
pub struct SpaceSaving<P, const K: usize> {
    table: Mutex<RefCell<Table<K>>>,
    payloads: [P; K],
}

/// Space-Saving without payload: the top `K` keys by count or by total weight.
pub type TopK<const K: usize> = SpaceSaving<(), K>;

impl<P: Payload, const K: usize> core::fmt::Debug for SpaceSaving<P, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpaceSaving")
            .field("len", &self.len())
            .field("capacity", &K)
            .field("total", &self.total())
            .finish_non_exhaustive()
    }
}

impl<P: Payload, const K: usize> Default for SpaceSaving<P, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Payload, const K: usize> SpaceSaving<P, K> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// An empty table.
    pub const fn new() -> Self {
        const { assert!(K > 0, "a Space-Saving table needs at least one counter") };
        Self { table: Mutex::new(RefCell::new(Table::EMPTY)), payloads: [const { P::ZERO }; K] }
    }

    /// Adds `weight` to `key` (1 to count events, or a duration to rank by total time).
    #[inline]
    pub fn add(&self, key: u64, weight: u64) {
        self.add_with(key, weight, |_| {});
    }

    /// Adds `weight` to `key`, then calls `update` on the key's payload (reset first if the
    /// counter was just given to the key), unless the arrival was a zero weight that found
    /// no free counter (see the [module docs](self)). `update` runs inside the critical
    /// section: keep it short.
    pub fn add_with(&self, key: u64, weight: u64, update: impl FnOnce(&P)) {
        critical_section::with(|cs| {
            // The table's borrow ends here, so `update` may even call back into `self`.
            let placed = self.table.borrow_ref_mut(cs).add(key, weight);
            let payload = match placed {
                Some(Placed::Hit(slot)) => &self.payloads[slot],
                Some(Placed::Admitted(slot)) => {
                    self.payloads[slot].reset();
                    &self.payloads[slot]
                }
                None => return,
            };
            update(payload);
        });
    }

    /// Calls `each(key, count, error)` for every counter in use, by descending count (ties
    /// by ascending key). The counters are copied out of the critical section and sorted
    /// on the stack (`24 * K` bytes); `each` runs outside the section.
    pub fn for_each_top(&self, mut each: impl FnMut(u64, u64, u64)) {
        let (mut entries, len) = critical_section::with(|cs| {
            let table = self.table.borrow_ref(cs);
            let mut entries = [Entry::EMPTY; K];
            for (slot, e) in entries[..table.len].iter_mut().enumerate() {
                *e = table.entry(slot);
            }
            (entries, table.len)
        });
        entries[..len].sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        for e in &entries[..len] {
            each(e.key, e.count, e.error);
        }
    }

    /// Fills `out` with `read(entry, payload)` for the counters in use with the highest
    /// `score(entry, payload)` (ties by ascending key), best first; returns how many were
    /// written (at most `K` and `out.len()`). Both closures run inside the critical
    /// section, so that each entry and its payload belong to the same key: keep them short.
    pub fn top_with<R>(
        &self,
        out: &mut [R],
        score: impl Fn(&Entry, &P) -> u64,
        mut read: impl FnMut(&Entry, &P) -> R,
    ) -> usize {
        critical_section::with(|cs| {
            // A copy, so that no borrow is held while the closures run.
            let table = *self.table.borrow_ref(cs);
            let order = table.ranked(|slot| score(&table.entry(slot), &self.payloads[slot]));
            let n = table.len.min(out.len());
            for (o, &slot) in out.iter_mut().zip(&order[..n]) {
                *o = read(&table.entry(slot), &self.payloads[slot]);
            }
            n
        })
    }

    /// The total weight added, `N` (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        critical_section::with(|cs| self.table.borrow_ref(cs).total)
    }

    /// The smallest count once every counter is in use, 0 before: an upper bound on every
    /// entry's error and on the exact weight of every key not in the table; at most
    /// `total() / K`.
    pub fn min_count(&self) -> u64 {
        critical_section::with(|cs| self.table.borrow_ref(cs).min_count())
    }

    /// Counters in use (at most `K`; they are never freed).
    pub fn len(&self) -> usize {
        critical_section::with(|cs| self.table.borrow_ref(cs).len)
    }

    /// Whether nothing has been added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the key of each counter in use into `out`, in counter order; returns how
    /// many. Counter `i` keeps its payload at [`payload(i)`](Self::payload) until it is
    /// given to another key.
    pub(crate) fn keys(&self, out: &mut [u64; K]) -> usize {
        critical_section::with(|cs| {
            let table = self.table.borrow_ref(cs);
            out[..table.len].copy_from_slice(&table.keys[..table.len]);
            table.len
        })
    }

    /// The payload of counter `slot`, read outside the critical section.
    pub(crate) fn payload(&self, slot: usize) -> Option<&P> {
        self.payloads.get(slot)
    }
}

/// `value` as 16 lowercase hexadecimal digits, the form keys and fingerprints take in
/// label values.
pub(crate) fn hex16(value: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = DIGITS[((value >> (60 - 4 * i)) & 0xF) as usize];
    }
    out
}
