//! `--leak RATE`: a real leak, so the memory monitor's verdict can be watched turning.
//!
//! A task allocates memory at `RATE` (a size per time: `1MiB/s`, `10MiB/min`, `512KiB/h`),
//! writes every byte of it (so every page is resident, not only reserved), and keeps it
//! until the process exits. Memory goes through the global allocator, so both the `heap`
//! signal (the command's counting allocator) and `rss` grow by the leaked amount. Chunks are
//! at least [`MIN_CHUNK`] (a slow leak grows in steps) and the leak stops at
//! [`MAX_LEAK_BYTES`], 1 GiB, which it then holds: enough to watch, bounded so that a
//! forgotten demo does not take the host down. An allocation that fails stops the leak
//! with a message instead of aborting the process.
//!
//! The memory monitor gives a verdict only after its warm-up (5 minutes) and 10 closed
//! buckets of its 30 s ring, so `leak_suspected` appears about 10 minutes after start with
//! the default `PLIMSOLL_SAMPLE_INTERVAL`.

use crate::cli::stopped;
use plimsoll::config::parse_bytes;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// The most the leak takes: 1 GiB.
pub(crate) const MAX_LEAK_BYTES: u64 = 1 << 30;
/// The smallest allocation: a slower leak waits until it owes this much.
pub(crate) const MIN_CHUNK: u64 = 64 << 10;
const TICK: Duration = Duration::from_millis(100);
/// After a stall (a suspended process), at most this much of the leak is caught up at once.
const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// Bytes leaked so far, for the status line.
pub(crate) static LEAKED: AtomicU64 = AtomicU64::new(0);

/// A leak rate: `bytes` every `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeakRate {
    bytes: u64,
    per: Duration,
}

impl LeakRate {
    fn bytes_per_second(self) -> f64 {
        self.bytes as f64 / self.per.as_secs_f64()
    }
}

/// `1048576 bytes per s`.
impl std::fmt::Display for LeakRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{} bytes per {unit}", self.bytes)
    }
}

/// Parses `SIZE/UNIT`: a size as [`parse_bytes`] reads it (`1MiB`, `500kB`, `4096`), then
/// `/s`, `/min` or `/h`. For clap, which prints the error and exits 2.
pub(crate) fn parse(value: &str) -> Result<LeakRate, String> {
    const EXPECTED: &str = "a positive size per s, min or h, such as 1MiB/s, 10MiB/min or 512KiB/h";
    let (size, unit) = value.split_once('/').ok_or_else(|| EXPECTED.to_owned())?;
    let bytes = parse_bytes(size.trim()).filter(|&bytes| bytes > 0).ok_or_else(|| EXPECTED.to_owned())?;
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3_600),
        _ => return Err(EXPECTED.to_owned()),
    };
    Ok(LeakRate { bytes, per })
}

/// Leaks at `rate` until `stop` (or the cap), then frees it all when the process ends.
pub(crate) async fn run(rate: LeakRate, mut stop: watch::Receiver<bool>) {
    eprintln!("demo: leaking {rate}, up to {MAX_LEAK_BYTES} bytes (1 GiB)");
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    let mut owed = 0.0;
    let mut last = Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopped(&mut stop) => return,
        }
        let now = Instant::now();
        owed += rate.bytes_per_second() * now.duration_since(last).min(MAX_CATCH_UP).as_secs_f64();
        last = now;
        let room = MAX_LEAK_BYTES - LEAKED.load(Relaxed);
        let size = (owed as u64).min(room);
        if size < MIN_CHUNK.min(room) || size == 0 {
            continue;
        }
        owed -= size as f64;
        match resident(size) {
            Some(chunk) => kept.push(chunk),
            None => {
                eprintln!("demo: the leak stops: {size} more bytes cannot be allocated");
                return park(kept, stop).await;
            }
        }
        if LEAKED.fetch_add(size, Relaxed) + size == MAX_LEAK_BYTES {
            eprintln!("demo: the leak reached its cap of {MAX_LEAK_BYTES} bytes (1 GiB) and holds it");
            return park(kept, stop).await;
        }
    }
}

/// Holds `kept` until `stop`: a leak keeps what it took.
async fn park(kept: Vec<Box<[u8]>>, mut stop: watch::Receiver<bool>) {
    stopped(&mut stop).await;
    drop(kept);
}

/// `size` bytes, every one written, or `None` if the allocator refuses.
fn resident(size: u64) -> Option<Box<[u8]>> {
    let size = usize::try_from(size).ok()?;
    let mut chunk = Vec::new();
    chunk.try_reserve_exact(size).ok()?;
    // Non-zero, so no allocator can hand back untouched zero pages for it.
    chunk.resize(size, 0xA5);
    Some(chunk.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse("1MiB/s"), Ok(LeakRate { bytes: 1 << 20, per: Duration::from_secs(1) }));
        assert_eq!(parse("10MiB/min").map(LeakRate::bytes_per_second), Ok(f64::from(10 << 20) / 60.0));
        assert_eq!(parse("512 KiB / h").map(|r| r.to_string()), Ok("524288 bytes per h".to_owned()));
        for bad in ["1MiB", "0MiB/s", "1MiB/day", "lots/s", "/s", "1.5MiB/s", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_are_resident_and_refusals_are_none() {
        let chunk = resident(MIN_CHUNK).expect("64 KiB");
        assert!(chunk.iter().all(|&b| b == 0xA5));
        assert!(resident(u64::MAX).is_none());
    }
}
