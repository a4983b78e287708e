//! Snapshot decoding: arbitrary bytes, and valid snapshots with arbitrary edits under a
//! recomputed checksum, restored into live state.
//!
//! The first byte picks the mode; the rest drives it:
//!
//! - **raw**: the rest is the snapshot, as read from a damaged or foreign file;
//! - **edited**: a snapshot of state built from the input, with bytes overwritten at
//!   input-chosen offsets and the CRC-32 recomputed, so the decoder's checks beyond the
//!   checksum (magic, version, fingerprint, every part's state) are reached;
//! - **valid**: that snapshot unedited.
//!
//! Checked for every input: `restore` and `inspect` never panic; a failed restore leaves
//! the live state exactly as it was (its own snapshot is byte-for-byte the same); a
//! successful one leaves state whose own snapshot restores to the same state again (and, for
//! an unedited snapshot, is the input byte for byte); `inspect` accepts whatever `restore`
//! accepts; and a valid snapshot always restores.
#![no_main]

use crc::{CRC_32_ISO_HDLC, Crc};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use plimsoll_core::snapshot::{self, SnapshotPart};
use plimsoll_core::{Counter, GoodEvent, MinMax, Slo, Window};

const CHECKSUM: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
const MINUTE: u64 = 60_000;
/// The smallest rings an `Slo` allows, to keep each input fast.
type SmallSlo = Slo<361, 169>;

/// The state a snapshot holds: two SLOs and two windows.
struct State {
    api: SmallSlo,
    checkout: SmallSlo,
    rate: Window<Counter, 8, 1_000>,
    extremes: Window<MinMax, 4, 500>,
}

impl State {
    fn new() -> Box<Self> {
        Box::new(Self {
            api: Slo::new("api", 0.999, GoodEvent::Success),
            checkout: Slo::new("checkout", 0.99, GoodEvent::LatencyAtMost(0.3)),
            rate: Window::new(),
            extremes: Window::new(),
        })
    }

    fn parts(&self) -> [&dyn SnapshotPart; 4] {
        [&self.api, &self.checkout, &self.rate, &self.extremes]
    }

    /// Records up to 64 input-driven events.
    fn record(&self, u: &mut Unstructured<'_>) -> Result<()> {
        let mut now: u64 = u.int_in_range(0..=400 * 24 * 60 * MINUTE)?;
        for _ in 0..u.int_in_range(0..=64)? {
            now = now.saturating_add(u.int_in_range(0..=3 * 60 * MINUTE)?);
            match u.int_in_range(0..=3)? {
                0 => self.api.record(now, u.arbitrary()?),
                1 => self.checkout.record_latency(now, f64::from(u.int_in_range(0..=2_000u16)?) / 1_000.0),
                2 => self.rate.add(now, u.int_in_range(0..=1_000)?),
                _ => self.extremes.observe(now, u.arbitrary()?),
            }
        }
        Ok(())
    }

    /// The state's snapshot, taken at time 0.
    fn snapshot(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 64 << 10];
        let len = snapshot::write(&self.parts(), 0, &mut buf).expect("64 KiB holds the small state");
        buf.truncate(len);
        buf
    }
}

/// Overwrites input-chosen bytes before the checksum, then recomputes it.
fn edit(bytes: &mut [u8], u: &mut Unstructured<'_>) -> Result<()> {
    let content = bytes.len() - 4;
    for _ in 0..u.int_in_range(1..=8)? {
        let at = u.int_in_range(0..=content - 1)?;
        bytes[at] = u.arbitrary()?;
    }
    let checksum = CHECKSUM.checksum(&bytes[..content]);
    bytes[content..].copy_from_slice(&checksum.to_le_bytes());
    Ok(())
}

fn check(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mode: u8 = u.int_in_range(0..=2)?;
    let bytes = if mode == 0 {
        u.take_rest().to_vec()
    } else {
        let source = State::new();
        source.record(&mut u)?;
        let mut bytes = source.snapshot();
        if mode == 1 {
            edit(&mut bytes, &mut u)?;
        }
        bytes
    };

    // Live state with some history of its own, which a failed restore must not touch.
    let live = State::new();
    live.record(&mut Unstructured::new(&[7, 3, 9, 1, 4, 4, 2, 8, 5, 6, 0, 2, 9, 9, 1]))?;
    let before = live.snapshot();
    let inspected = snapshot::inspect(&bytes);
    match snapshot::restore(&live.parts(), &bytes) {
        Err(error) => {
            assert_ne!(mode, 2, "a valid snapshot was rejected: {error}");
            assert_eq!(live.snapshot(), before, "a rejected snapshot ({error}) changed the live state");
        }
        Ok(restored) => {
            assert_eq!(restored.len, bytes.len());
            assert!(inspected.is_ok(), "inspect rejected what restore accepted: {inspected:?}");
            let rewritten = live.snapshot();
            if mode == 2 {
                assert_eq!(rewritten, bytes, "a valid snapshot does not encode back to itself");
            }
            // Decoding what was encoded gives the same state again.
            let again = State::new();
            snapshot::restore(&again.parts(), &rewritten).expect("a written snapshot restores");
            assert_eq!(again.snapshot(), rewritten, "restored state does not encode back to its snapshot");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
