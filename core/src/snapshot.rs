//! Versioned, checksummed snapshots of window and SLO state (feature `postcard`), so a
//! 30-day error budget survives a deploy.
//!
//! A snapshot is written into a caller's buffer and restored from a byte slice, with no
//! allocation. Writing it to disk is the std adapter's job.
//!
//! # Format (version 1)
//!
//! ```text
//! header   postcard: magic "PLSN", version u16, fingerprint u64, taken_at_ms u64,
//!          parts u16, words u32
//! body     `words` postcard varints: each part's state, in the order given
//! checksum CRC-32 (ISO-HDLC) of header and body, 4 bytes little-endian
//! ```
//!
//! The **fingerprint** hashes what the stored counts mean: each part's kind, its ring
//! geometry (slots and slot length), and for an [`Slo`](crate::Slo) its name and what a
//! good event is (a latency threshold changes which events were good). It leaves out what
//! only changes how counts are judged (objective, burn thresholds, low-traffic guard), so
//! tightening an objective keeps the budget's history.
//!
//! # Restoring is all or nothing
//!
//! [`restore`] checks the length, the checksum, the magic, the version and the
//! fingerprint, then decodes and validates every part without changing anything; only if
//! all of it is valid does it decode again and store the state. A truncated, corrupted,
//! foreign or mismatched snapshot is a typed [`SnapshotError`] and leaves the live state
//! untouched. Restore before recording starts: a record that races the restore may be
//! overwritten.
//!
//! # Versions
//!
//! Version 1 is the first format, so there is nothing older to migrate: any other version
//! is rejected ([`SnapshotError::NewerVersion`] or [`SnapshotError::UnsupportedVersion`]).
//! A future format states here how each older version it accepts is migrated.

use crate::sealed::Sealed;
use core::fmt;
use core::hash::Hasher;
use crc::{CRC_32_ISO_HDLC, Crc};
use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};

/// The format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: [u8; 4] = *b"PLSN";
const CHECKSUM: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
const CHECKSUM_LEN: usize = 4;

#[derive(Serialize, Deserialize)]
struct Header {
    magic: [u8; 4],
    version: u16,
    fingerprint: u64,
    taken_at_ms: u64,
    parts: u16,
    words: u32,
}

/// Why a snapshot could not be written or restored. Restoring never changes live state
/// when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotError {
    /// The buffer cannot hold the snapshot; `needed` bytes would.
    BufferTooSmall {
        /// Bytes the snapshot needs.
        needed: usize,
    },
    /// The bytes end before the snapshot does.
    Truncated,
    /// The checksum does not match: the bytes were damaged.
    Checksum,
    /// The bytes are not a Plimsoll snapshot.
    NotASnapshot,
    /// Written by a newer format than this build reads.
    NewerVersion {
        /// The snapshot's format version.
        found: u16,
    },
    /// Written by an older format that this build cannot migrate.
    UnsupportedVersion {
        /// The snapshot's format version.
        found: u16,
    },
    /// Written for a different configuration (other parts, ring sizes or SLO definitions).
    ConfigMismatch,
    /// Checksummed correctly but not a valid state (for example a slot tag that does not
    /// fit its ring): a writer bug or a checksum collision.
    Corrupt,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "snapshot buffer too small: {needed} bytes needed"),
            Self::Truncated => f.write_str("snapshot is truncated"),
            Self::Checksum => f.write_str("snapshot checksum mismatch"),
            Self::NotASnapshot => f.write_str("not a Plimsoll snapshot"),
            Self::NewerVersion { found } => {
                write!(f, "snapshot format {found} is newer than supported {FORMAT_VERSION}")
            }
            Self::UnsupportedVersion { found } => write!(f, "snapshot format {found} cannot be migrated"),
            Self::ConfigMismatch => f.write_str("snapshot was taken with a different configuration"),
            Self::Corrupt => f.write_str("snapshot state is invalid"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// What a successful [`restore`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Restored {
    /// When the snapshot was taken (the `taken_at_ms` given to [`write()`]).
    pub taken_at_ms: u64,
    /// Its length in bytes.
    pub len: usize,
}

/// A snapshot's header, read without knowing its configuration ([`inspect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
    /// The format version.
    pub version: u16,
    /// The configuration fingerprint (see the [module docs](self)).
    pub fingerprint: u64,
    /// When it was taken.
    pub taken_at_ms: u64,
    /// How many parts it holds.
    pub parts: u16,
    /// How many state words its body holds.
    pub words: u32,
}

/// Checks a snapshot's length, magic and checksum and returns its header, without
/// restoring anything: for tools that look at a snapshot file.
pub fn inspect(bytes: &[u8]) -> Result<Summary, SnapshotError> {
    let (header, _) = checked_header(bytes)?;
    Ok(Summary {
        version: header.version,
        fingerprint: header.fingerprint,
        taken_at_ms: header.taken_at_ms,
        parts: header.parts,
        words: header.words,
    })
}

/// The header and body of `bytes`, once length, magic and checksum are checked.
fn checked_header(bytes: &[u8]) -> Result<(Header, &[u8]), SnapshotError> {
    let (content, checksum) =
        bytes.split_at_checked(bytes.len().wrapping_sub(CHECKSUM_LEN)).ok_or(SnapshotError::Truncated)?;
    let (header, body) = postcard::take_from_bytes::<Header>(content).map_err(|_| SnapshotError::Truncated)?;
    if header.magic != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if u32::from_le_bytes(checksum.try_into().map_err(|_| SnapshotError::Truncated)?) != CHECKSUM.checksum(content) {
        return Err(SnapshotError::Checksum);
    }
    Ok((header, body))
}

/// State that goes into a snapshot: a [`Window`](crate::Window) of counters, min/max or
/// histograms, or an [`Slo`](crate::Slo). Sealed.
pub trait SnapshotPart: Sync + Sealed {
    /// Hashes what the stored state means (see the [module docs](self)).
    fn describe(&self, hasher: &mut FxHasher);
    /// Emits the state as words.
    fn save(&self, out: &mut dyn FnMut(u64));
    /// Reads the state back; stores it only if `apply`.
    fn load(&self, words: &mut Words<'_>, apply: bool) -> Result<(), SnapshotError>;
}

/// The body's words, read one at a time.
#[derive(Debug)]
pub struct Words<'a> {
    rest: &'a [u8],
}

impl Words<'_> {
    /// The next word.
    pub(crate) fn next(&mut self) -> Result<u64, SnapshotError> {
        let (word, rest) = postcard::take_from_bytes::<u64>(self.rest).map_err(|_| SnapshotError::Corrupt)?;
        self.rest = rest;
        Ok(word)
    }
}

/// The fingerprint of `parts`, in order.
pub fn fingerprint(parts: &[&dyn SnapshotPart]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write_usize(parts.len());
    for part in parts {
        part.describe(&mut hasher);
    }
    hasher.finish()
}

/// Writes a snapshot of `parts` into `buf`; returns its length.
pub fn write(parts: &[&dyn SnapshotPart], taken_at_ms: u64, buf: &mut [u8]) -> Result<usize, SnapshotError> {
    let mut words = 0u32;
    for part in parts {
        part.save(&mut |_| words += 1);
    }
    let header = Header {
        magic: MAGIC,
        version: FORMAT_VERSION,
        fingerprint: fingerprint(parts),
        taken_at_ms,
        parts: parts.len() as u16,
        words,
    };
    let mut len = match postcard::to_slice(&header, buf) {
        Ok(used) => used.len(),
        Err(_) => return Err(SnapshotError::BufferTooSmall { needed: needed_len(parts, &header) }),
    };
    let mut full = false;
    for part in parts {
        part.save(&mut |word| {
            if full {
                return;
            }
            match postcard::to_slice(&word, &mut buf[len..]) {
                Ok(used) => len += used.len(),
                Err(_) => full = true,
            }
        });
    }
    if full || buf.len() < len + CHECKSUM_LEN {
        return Err(SnapshotError::BufferTooSmall { needed: needed_len(parts, &header) });
    }
    let checksum = CHECKSUM.checksum(&buf[..len]);
    buf[len..len + CHECKSUM_LEN].copy_from_slice(&checksum.to_le_bytes());
    Ok(len + CHECKSUM_LEN)
}

/// The length a snapshot of `parts` with `header` takes.
fn needed_len(parts: &[&dyn SnapshotPart], header: &Header) -> usize {
    let mut scratch = [0u8; 64];
    let mut len = postcard::to_slice(header, &mut scratch).map_or(64, |used| used.len());
    for part in parts {
        part.save(&mut |word| len += postcard::to_slice(&word, &mut scratch).map_or(10, |used| used.len()));
    }
    len + CHECKSUM_LEN
}

/// Restores `parts` from `bytes`, all or nothing (see the [module docs](self)).
pub fn restore(parts: &[&dyn SnapshotPart], bytes: &[u8]) -> Result<Restored, SnapshotError> {
    let (header, body) = checked_header(bytes)?;
    match header.version {
        FORMAT_VERSION => {}
        found if found > FORMAT_VERSION => return Err(SnapshotError::NewerVersion { found }),
        found => return Err(SnapshotError::UnsupportedVersion { found }),
    }
    if header.fingerprint != fingerprint(parts) || usize::from(header.parts) != parts.len() {
        return Err(SnapshotError::ConfigMismatch);
    }
    for apply in [false, true] {
        let mut words = Words { rest: body };
        for part in parts {
            part.load(&mut words, apply)?;
        }
        if !words.rest.is_empty() {
            return Err(SnapshotError::Corrupt);
        }
    }
    Ok(Restored { taken_at_ms: header.taken_at_ms, len: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, GoodEvent, LatencyWindow, MinMaxWindow, Slo, Window};
    use std::vec;
    use std::vec::Vec;

    type Rate = Window<Counter, 8, 1_000>;

    /// The parts of one process: an SLO and three windows.
    struct State {
        slo: Slo,
        rate: Rate,
        gauge: MinMaxWindow,
        latency: LatencyWindow,
    }

    impl State {
        fn new() -> Self {
            Self {
                slo: Slo::new("checkout", 0.999, GoodEvent::LatencyAtMost(0.3)),
                rate: Rate::new(),
                gauge: MinMaxWindow::new(),
                latency: LatencyWindow::new(),
            }
        }

        fn parts(&self) -> [&dyn SnapshotPart; 4] {
            [&self.slo, &self.rate, &self.gauge, &self.latency]
        }

        /// Three days of traffic with some slow requests, ending at `END`.
        fn fill(&self) {
            for i in 0..(3 * 24 * 60) {
                let now = i * 60_000 + 17;
                for k in 0..5 {
                    let latency = if (i + k) % 97 == 0 { 0.5 } else { 0.01 * (k + 1) as f64 };
                    self.slo.record_latency(now, latency);
                    self.latency.record(now, latency);
                }
                self.rate.add(now, 3);
                self.gauge.observe(now, i as i64 % 1000 - 500);
            }
        }

        fn readings(&self, now: u64) -> (crate::SloReport, crate::Events, u64, Option<(i64, i64)>, Option<f64>) {
            (
                self.slo.report(now),
                self.slo.cumulative(),
                self.rate.sum(now, 7_000),
                self.gauge.min_max(now, 3_600_000),
                self.latency.quantile(now, 300_000, 0.99),
            )
        }
    }

    const END: u64 = 3 * 24 * 60 * 60_000;

    fn snapshot_of(state: &State) -> Vec<u8> {
        let mut buf = vec![0u8; 200_000];
        let len = write(&state.parts(), END, &mut buf).unwrap();
        buf.truncate(len);
        buf
    }

    #[test]
    fn round_trip_restores_every_reading() {
        let original = State::new();
        original.fill();
        let bytes = snapshot_of(&original);
        let restored = State::new();
        assert_eq!(restore(&restored.parts(), &bytes), Ok(Restored { taken_at_ms: END, len: bytes.len() }));
        for now in [END, END + 30_000, END + 3_600_000] {
            assert_eq!(restored.readings(now), original.readings(now), "at {now}");
        }
        // Recording continues seamlessly on both.
        original.slo.record(END + 60_000, false);
        restored.slo.record(END + 60_000, false);
        assert_eq!(restored.readings(END + 60_000), original.readings(END + 60_000));
        assert_eq!(snapshot_of(&restored), snapshot_of(&original));
    }

    #[test]
    fn inspect_reads_the_header_and_checks_the_checksum() {
        let state = State::new();
        state.fill();
        let bytes = snapshot_of(&state);
        let summary = inspect(&bytes).unwrap();
        assert_eq!((summary.version, summary.taken_at_ms, summary.parts), (FORMAT_VERSION, END, 4));
        assert_eq!(summary.fingerprint, fingerprint(&state.parts()));
        assert_eq!(inspect(&bytes[..bytes.len() - 1]), Err(SnapshotError::Checksum));
    }

    #[test]
    fn too_small_a_buffer_says_how_much_is_needed() {
        let state = State::new();
        state.fill();
        let len = snapshot_of(&state).len();
        let mut small = vec![0u8; len - 1];
        assert_eq!(write(&state.parts(), END, &mut small), Err(SnapshotError::BufferTooSmall { needed: len }));
        assert_eq!(write(&state.parts(), END, &mut [0u8; 3]), Err(SnapshotError::BufferTooSmall { needed: len }));
    }

    /// Restoring `bytes` into a filled state fails with `expected` and changes nothing.
    fn assert_rejected(bytes: &[u8], parts_of: impl Fn(&State) -> Vec<&dyn SnapshotPart>, expected: SnapshotError) {
        let live = State::new();
        live.slo.record(END - 5, true);
        live.rate.add(END - 5, 9);
        let before = live.readings(END);
        assert_eq!(restore(&parts_of(&live), bytes), Err(expected));
        assert_eq!(live.readings(END), before, "live state changed by a rejected snapshot");
    }

    fn all_parts(state: &State) -> Vec<&dyn SnapshotPart> {
        state.parts().to_vec()
    }

    /// `bytes` with its header edited by `edit` and a valid checksum.
    fn with_header(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
        let (mut header, body) = postcard::take_from_bytes::<Header>(&bytes[..bytes.len() - 4]).unwrap();
        edit(&mut header);
        checksummed(&header, body)
    }

    /// `header` and `body` followed by their checksum.
    fn checksummed(header: &Header, body: &[u8]) -> Vec<u8> {
        let mut out = postcard::to_slice(header, &mut [0u8; 64]).unwrap().to_vec();
        out.extend_from_slice(body);
        let checksum = CHECKSUM.checksum(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    #[test]
    fn every_bad_snapshot_is_rejected_without_touching_live_state() {
        let state = State::new();
        state.fill();
        let good = snapshot_of(&state);

        assert_rejected(&with_header(&good, |h| h.version = 2), all_parts, SnapshotError::NewerVersion { found: 2 });
        assert_rejected(
            &with_header(&good, |h| h.version = 0),
            all_parts,
            SnapshotError::UnsupportedVersion { found: 0 },
        );
        assert_rejected(&with_header(&good, |h| h.magic = *b"JUNK"), all_parts, SnapshotError::NotASnapshot);
        assert_rejected(b"", all_parts, SnapshotError::Truncated);
        assert_rejected(b"PLSN", all_parts, SnapshotError::Truncated);
        assert_rejected(&good[..good.len() - 1], all_parts, SnapshotError::Checksum);

        // A different configuration: parts missing, reordered, or an SLO defined otherwise.
        assert_rejected(&good, |s| vec![&s.slo, &s.rate, &s.gauge], SnapshotError::ConfigMismatch);
        assert_rejected(&good, |s| vec![&s.rate, &s.slo, &s.gauge, &s.latency], SnapshotError::ConfigMismatch);
        let other_threshold: Slo = Slo::new("checkout", 0.999, GoodEvent::LatencyAtMost(0.25));
        let other_name: Slo = Slo::new("payments", 0.999, GoodEvent::LatencyAtMost(0.3));
        let other_size: Slo<400, 721> = Slo::new("checkout", 0.999, GoodEvent::LatencyAtMost(0.3));
        for slo in [&other_threshold as &dyn SnapshotPart, &other_name, &other_size] {
            let live = State::new();
            assert_eq!(
                restore(&[slo, &live.rate, &live.gauge, &live.latency], &good),
                Err(SnapshotError::ConfigMismatch)
            );
        }
        // An objective change keeps the history: it only changes how counts are judged.
        let tighter: Slo = Slo::new("checkout", 0.9999, GoodEvent::LatencyAtMost(0.3));
        let live = State::new();
        assert!(restore(&[&tighter, &live.rate, &live.gauge, &live.latency], &good).is_ok());
        assert_eq!(tighter.cumulative(), state.slo.cumulative());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let state = State::new();
        for i in 0..50u64 {
            state.slo.record(i * 1_000, i % 7 != 0);
            state.rate.add(i * 1_000, i);
        }
        let good = snapshot_of(&state);
        for len in 0..good.len() {
            let live = State::new();
            assert!(restore(&live.parts(), &good[..len]).is_err(), "prefix of {len} bytes accepted");
            assert_eq!(live.slo.cumulative(), crate::Events::default());
        }
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let live = State::new();
                assert!(restore(&live.parts(), &bad).is_err(), "flip of bit {bit} in byte {byte} accepted");
                assert_eq!(live.rate.sum(50_000, 7_000), 0, "live state changed");
            }
        }
    }

    #[test]
    fn valid_checksum_over_invalid_state_is_corrupt() {
        let state = State::new();
        state.rate.add(5_000, 1);
        let parts: [&dyn SnapshotPart; 1] = [&state.rate];
        let mut buf = [0u8; 256];
        let len = write(&parts, 5_000, &mut buf).unwrap();
        let (header, body) = postcard::take_from_bytes::<Header>(&buf[..len - 4]).unwrap();
        // Body: newest, first_ms, late, then (tag, count) per slot. Give slot 0 the tag
        // of epoch 5, which belongs to slot 5.
        let mut words: Vec<u64> = Vec::new();
        let mut reader = Words { rest: body };
        while let Ok(w) = reader.next() {
            words.push(w);
        }
        words[3] = 6;
        let mut body = Vec::new();
        for w in words {
            body.extend_from_slice(postcard::to_slice(&w, &mut [0u8; 10]).unwrap());
        }
        let out = checksummed(&header, &body);
        let live = Rate::new();
        assert_eq!(restore(&[&live], &out), Err(SnapshotError::Corrupt));
    }
}
