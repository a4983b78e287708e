//! A family's series table: `N` entries, each a label set (its hash and up to `L` values
//! of at most `V` bytes) and the entry's payload, a metric.
//!
//! Lookups are lock-free: hash the values, probe linearly from the hash's slot, compare
//! the stored bytes with atomic loads. An insert takes a short critical section, probes
//! again inside it (another thread may have inserted the same values or taken the slot),
//! copies the values in with relaxed stores and publishes the entry with a release store
//! of its hash; a reader's acquire load of a non-zero hash therefore sees the whole label
//! set. Entries are never removed, so a label set keeps its slot for the life of the table.
//! The loom models at the end of this file check these claims.

use crate::atomic::{AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use core::hash::Hasher;
use rustc_hash::FxHasher;

/// Why a lookup found no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The probe reached an empty slot: the values may be inserted.
    Vacant,
    /// Every slot holds another label set.
    Full,
}

/// One slot: its hash (0 while empty), label values and payload.
#[derive(Debug)]
struct Entry<T, const L: usize, const V: usize> {
    hash: AtomicU64,
    lens: [AtomicU8; L],
    values: [[AtomicU8; V]; L],
    payload: T,
}

impl<T, const L: usize, const V: usize> Entry<T, L, V> {
    fn matches(&self, values: &[&str; L]) -> bool {
        values.iter().zip(&self.lens).zip(&self.values).all(|((value, len), stored)| {
            usize::from(len.load(Relaxed)) == value.len()
                && value.bytes().zip(stored).all(|(b, s)| s.load(Relaxed) == b)
        })
    }

    /// Copies `values` in; the caller publishes the entry by storing its hash afterwards.
    /// Each value must be at most `V` (and 255) bytes long.
    fn store_values(&self, values: &[&str; L]) {
        for ((value, len), stored) in values.iter().zip(&self.lens).zip(&self.values) {
            for (b, s) in value.bytes().zip(stored) {
                s.store(b, Relaxed);
            }
            len.store(value.len() as u8, Relaxed);
        }
    }
}

/// The series table of a family. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct LabelIndex<T, const L: usize, const N: usize, const V: usize> {
    entries: [Entry<T, L, V>; N],
    /// Stands in for the critical section in loom models.
    #[cfg(loom)]
    insert_lock: loom::sync::Mutex<()>,
}

#[cfg(not(loom))]
impl<T: crate::metric::Metric, const L: usize, const N: usize, const V: usize> LabelIndex<T, L, N, V> {
    /// An empty table of zero metrics.
    pub(crate) const fn new() -> Self {
        Self {
            entries: [const {
                Entry {
                    hash: AtomicU64::new(0),
                    lens: [const { AtomicU8::new(0) }; L],
                    values: [const { [const { AtomicU8::new(0) }; V] }; L],
                    payload: T::ZERO,
                }
            }; N],
        }
    }
}

#[cfg(loom)]
impl<T, const L: usize, const N: usize, const V: usize> LabelIndex<T, L, N, V> {
    /// An empty table (loom's atomics have no `const` constructor).
    pub(crate) fn new(mut payload: impl FnMut() -> T) -> Self {
        Self {
            entries: core::array::from_fn(|_| Entry {
                hash: AtomicU64::new(0),
                lens: core::array::from_fn(|_| AtomicU8::new(0)),
                values: core::array::from_fn(|_| core::array::from_fn(|_| AtomicU8::new(0))),
                payload: payload(),
            }),
            insert_lock: loom::sync::Mutex::new(()),
        }
    }
}

impl<T, const L: usize, const N: usize, const V: usize> LabelIndex<T, L, N, V> {
    /// The payload of the entry holding `values` (whose [`hash`] is `hash`).
    #[inline]
    pub(crate) fn get(&self, values: &[&str; L], hash: u64) -> Result<&T, Miss> {
        let mut slot = Self::start(hash);
        for _ in 0..N {
            let entry = &self.entries[slot];
            // Acquire pairs with the release store that published the entry's values.
            match entry.hash.load(Acquire) {
                0 => return Err(Miss::Vacant),
                h if h == hash && entry.matches(values) => return Ok(&entry.payload),
                _ => {}
            }
            slot = if slot + 1 == N { 0 } else { slot + 1 };
        }
        Err(Miss::Full)
    }

    /// The payload of the entry holding `values`, inserting them if they are new; `None`
    /// if the table is full. Each value must be at most `V` bytes long.
    #[cold]
    pub(crate) fn get_or_insert(&self, values: &[&str; L], hash: u64) -> Option<&T> {
        debug_assert!(values.iter().all(|v| v.len() <= V.min(255)));
        let start = Self::start(hash);
        let probe = || {
            for slot in (start..N).chain(0..start) {
                let entry = &self.entries[slot];
                match entry.hash.load(Acquire) {
                    0 => {
                        entry.store_values(values);
                        entry.hash.store(hash, Release);
                        return Some(&entry.payload);
                    }
                    h if h == hash && entry.matches(values) => return Some(&entry.payload),
                    _ => {}
                }
            }
            None
        };
        #[cfg(not(loom))]
        return critical_section::with(|_| probe());
        #[cfg(loom)]
        {
            let _guard = self.insert_lock.lock().expect("lock");
            probe()
        }
    }

    /// The payload of slot `slot` if it holds a label set.
    pub(crate) fn published(&self, slot: usize) -> Option<&T> {
        let entry = self.entries.get(slot)?;
        (entry.hash.load(Acquire) != 0).then_some(&entry.payload)
    }

    /// Copies label `label` of slot `slot` into `out` and returns its length (0 for an
    /// empty slot).
    pub(crate) fn label_value(&self, slot: usize, label: usize, out: &mut [u8]) -> usize {
        let entry = &self.entries[slot];
        if entry.hash.load(Acquire) == 0 {
            return 0;
        }
        let len = usize::from(entry.lens[label].load(Relaxed)).min(out.len());
        for (o, s) in out.iter_mut().zip(&entry.values[label][..len]) {
            *o = s.load(Relaxed);
        }
        len
    }

    /// Slots holding a label set.
    pub(crate) fn in_use(&self) -> usize {
        self.entries.iter().filter(|e| e.hash.load(Relaxed) != 0).count()
    }

    /// Every payload, used or not.
    pub(crate) fn payloads(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.payload)
    }

    /// The slot a probe for `hash` starts at (Lemire's multiply-shift range reduction).
    #[inline]
    fn start(hash: u64) -> usize {
        ((u128::from(hash) * N as u128) >> 64) as usize
    }
}

/// A hash of the label values, never 0 (0 marks an empty slot). Each value is followed
/// by `0xFF`, a byte UTF-8 never contains, so `("a", "bc")` and `("ab", "c")` hash
/// differently (and are compared byte for byte regardless).
#[inline]
pub(crate) fn hash(values: &[&str]) -> u64 {
    let mut hasher = FxHasher::default();
    for value in values {
        hasher.write(value.as_bytes());
        hasher.write_u8(0xFF);
    }
    hasher.finish().max(1)
}

/// Models of concurrent inserts and lookups, with every interleaving loom allows:
/// `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p plimsoll-core --release --lib loom`
///
/// The racing operations run on spawned threads (loom explores too little when the main
/// thread races a spawned thread that loads before it stores, tokio-rs/loom#392), and
/// each model asserts that it saw every outcome it allows, so that it cannot pass by
/// exploring one interleaving only.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::Counter;
    use loom::sync::Arc;
    use loom::thread;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    type Index<const N: usize> = LabelIndex<Counter, 1, N, 2>;

    /// The address of the entry found, to compare entries across threads.
    fn lookup<const N: usize>(index: &Index<N>, value: &str) -> Result<usize, Miss> {
        index.get(&[value], hash(&[value])).map(|c| c as *const Counter as usize)
    }

    fn insert<const N: usize>(index: &Index<N>, value: &str) -> Option<usize> {
        index.get_or_insert(&[value], hash(&[value])).map(|c| c as *const Counter as usize)
    }

    /// Runs `model` under loom and returns the outcomes it reported across executions.
    fn outcomes(model: impl Fn(&dyn Fn(&'static str)) + Sync + Send + 'static) -> BTreeSet<&'static str> {
        let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
        let report = std::sync::Arc::clone(&seen);
        loom::model(move || {
            model(&|outcome| {
                report.lock().unwrap().insert(outcome);
            })
        });
        let seen = seen.lock().unwrap();
        seen.clone()
    }

    /// Two threads inserting the same label set get the same entry, one slot is used, and
    /// both increments land in it.
    #[test]
    fn loom_same_values_get_one_entry() {
        let seen = outcomes(|report| {
            let index = Arc::new(Index::<2>::new(Counter::new));
            let inserters: [_; 2] = core::array::from_fn(|_| {
                let index = Arc::clone(&index);
                thread::spawn(move || {
                    let first = lookup(&index, "ab").is_err();
                    let counter = index.get_or_insert(&["ab"], hash(&["ab"])).expect("room");
                    counter.inc();
                    (counter as *const Counter as usize, first)
                })
            });
            let [a, b] = inserters.map(|t| t.join().unwrap());
            assert_eq!(a.0, b.0);
            assert_eq!(index.in_use(), 1);
            assert_eq!(index.payloads().map(Counter::get).sum::<u64>(), 2);
            report(if a.1 && b.1 { "both missed" } else { "one found the other's" });
        });
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    /// Two threads inserting different label sets into a table with room for one: one
    /// wins the slot, the other is told the table is full, and nothing is torn.
    #[test]
    fn loom_full_table_admits_exactly_one() {
        let seen = outcomes(|report| {
            let index = Arc::new(Index::<1>::new(Counter::new));
            let inserters = ["x", "yz"].map(|value| {
                let index = Arc::clone(&index);
                thread::spawn(move || insert(&index, value).is_some())
            });
            let [x, yz] = inserters.map(|t| t.join().unwrap());
            assert!(x ^ yz, "exactly one insert wins");
            let (winner, loser) = if x { ("x", "yz") } else { ("yz", "x") };
            let mut out = [0u8; 2];
            let len = index.label_value(0, 0, &mut out);
            assert_eq!(&out[..len], winner.as_bytes());
            assert_eq!(lookup(&index, loser), Err(Miss::Full));
            report(winner);
        });
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    /// A reader racing an insert either misses (the slot is still vacant) or finds the
    /// inserted entry with its whole label set: never a torn or foreign value.
    #[test]
    fn loom_reader_sees_whole_label_set_or_nothing() {
        let seen = outcomes(|report| {
            let index = Arc::new(Index::<2>::new(Counter::new));
            let inserter = {
                let index = Arc::clone(&index);
                thread::spawn(move || insert(&index, "ab").expect("room"))
            };
            let reader = {
                let index = Arc::clone(&index);
                thread::spawn(move || {
                    // A slot seen published during the race holds the whole value.
                    for slot in 0..2 {
                        let published = index.published(slot).is_some();
                        let mut out = [0u8; 2];
                        let len = index.label_value(slot, 0, &mut out);
                        assert!(!published || &out[..len] == b"ab", "slot {slot}: {:?}", &out[..len]);
                    }
                    lookup(&index, "ab")
                })
            };
            let inserted = inserter.join().unwrap();
            match reader.join().unwrap() {
                Ok(found) => {
                    assert_eq!(found, inserted);
                    report("found");
                }
                Err(miss) => {
                    assert_eq!(miss, Miss::Vacant);
                    report("missed");
                }
            }
            assert_eq!(lookup(&index, "ab"), Ok(inserted));
        });
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
}
