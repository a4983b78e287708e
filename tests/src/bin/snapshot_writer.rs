//! Saves snapshots in a loop, for the crash test: `snapshot-writer STATE_DIR`.
//!
//! Restores the state directory's snapshot first and prints the outcome (`fresh`,
//! `restored <generation>` or `moved-aside <error>`). Then, for generation 1, 2, …, records
//! one more SLO event and one more window count, saves a snapshot taken at
//! `generation` ms, and prints the generation once the save has returned.

use plimsoll::snapshot::SnapshotPart;
use plimsoll::{Counter, GoodEvent, Restore, Slo, StateFile, Window};
use std::io::Write;

static SLO: Slo = Slo::new("crash_test", 0.99, GoodEvent::Success);
static COUNTS: Window<Counter, 8, 1_000_000> = Window::new();

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: snapshot-writer STATE_DIR")?;
    let parts: [&dyn SnapshotPart; 2] = [&SLO, &COUNTS];
    let mut file = StateFile::new(dir, &parts)?;
    let mut out = std::io::stdout().lock();
    let start = match file.restore(&parts)? {
        Restore::Fresh => {
            writeln!(out, "fresh")?;
            0
        }
        Restore::Restored(restored) => {
            writeln!(out, "restored {}", restored.taken_at_ms)?;
            restored.taken_at_ms
        }
        Restore::MovedAside { error, .. } => {
            writeln!(out, "moved-aside {error}")?;
            0
        }
    };
    out.flush()?;
    for generation in start + 1.. {
        SLO.record(generation, true);
        COUNTS.inc(generation);
        file.save(&parts, generation)?;
        writeln!(out, "{generation}")?;
        out.flush()?;
    }
    Ok(())
}
