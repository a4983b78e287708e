//! Snapshots for `serve` and `demo`: restore at start-up, save every
//! `PLIMSOLL_SNAPSHOT_INTERVAL` and once more at shutdown.
//!
//! Saving writes and fsyncs a file, so it runs on tokio's blocking pool (one thread), never
//! on a worker that serves scrapes. The task owns the [`StateFile`] and its buffer, sized
//! at start-up, so a save allocates nothing but the blocking task itself.

use super::{human, run::CLOCK, stopped};
use plimsoll::snapshot::SnapshotPart;
use plimsoll::{Clock, Restore, StateFile};
use std::io;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// The state file in `dir`, after restoring `parts` from it; reports the outcome on stderr,
/// once. `None`, with the reason reported, if the directory or an existing file cannot be
/// read: snapshots are then off, so that a file that could not be read is never
/// overwritten.
pub(crate) fn open(dir: &Path, parts: &'static [&'static dyn SnapshotPart]) -> Option<StateFile> {
    let file = match StateFile::new(dir, parts) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("state: cannot use {}: {error}; snapshots are off", dir.display());
            return None;
        }
    };
    let path = file.path();
    match file.restore(parts) {
        Ok(Restore::Fresh) => eprintln!("state: no snapshot at {}; starting fresh", path.display()),
        Ok(Restore::Restored(restored)) => eprintln!(
            "state: restored {} (taken at {}, {} bytes)",
            path.display(),
            human::utc(restored.taken_at_ms),
            restored.len
        ),
        Ok(Restore::MovedAside { error, moved_to }) => eprintln!(
            "state: rejected {} ({error}), moved it to {}; starting fresh",
            path.display(),
            moved_to.display()
        ),
        Err(error) => {
            eprintln!(
                "state: cannot read {}: {error}; snapshots are off so that it is not overwritten",
                path.display()
            );
            return None;
        }
    }
    Some(file)
}

/// Saves `parts` every `every` until `stop` turns true, then once more; returns the last
/// save's outcome (its length in bytes). A failed periodic save is reported and retried at
/// the next tick.
pub(crate) async fn run(
    mut file: StateFile,
    parts: &'static [&'static dyn SnapshotPart],
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> io::Result<usize> {
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let result;
                (file, result) = save(file, parts).await;
                if let Err(error) = result {
                    eprintln!("state: snapshot failed: {error}; retrying in {every:?}");
                }
            }
            () = stopped(&mut stop) => break,
        }
    }
    save(file, parts).await.1
}

/// One save on the blocking pool, taken at the command's clock.
async fn save(mut file: StateFile, parts: &'static [&'static dyn SnapshotPart]) -> (StateFile, io::Result<usize>) {
    let task = tokio::task::spawn_blocking(move || {
        let result = file.save(parts, CLOCK.now_ms());
        (file, result)
    });
    match task.await {
        Ok(done) => done,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only a runtime shutting down cancels a blocking task, and the runtime outlives
        // this task.
        Err(error) => unreachable!("snapshot save cancelled: {error}"),
    }
}
