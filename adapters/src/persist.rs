//! Snapshots on disk that survive crashes: written whole or not at all, never lost to a
//! file that could not be read.
//!
//! [`StateFile::save`] writes the core snapshot to `plimsoll.snapshot.tmp` in the state
//! directory, fsyncs it, renames it over `plimsoll.snapshot` and fsyncs the directory, so
//! after a crash at any moment the file is either the previous snapshot or the new one.
//!
//! [`StateFile::restore`] at start-up restores the state from the file if there is one. A
//! truncated, corrupted or incompatible file (a typed [`SnapshotError`] from the core) is
//! renamed to `plimsoll.snapshot.rejected-<unix ms>` and reported once in the returned
//! [`Restore`], and the process starts fresh: the next save cannot overwrite it. A file
//! that cannot be read at all (permissions, I/O errors) is an `io::Error`: the caller
//! should then not save either, rather than overwrite what it could not read.
//!
//! Memory: one buffer, sized at start-up for the snapshot of the given parts, reused by
//! every save.

use plimsoll_core::snapshot::{self, Restored, SnapshotError, SnapshotPart};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const FILE_NAME: &str = "plimsoll.snapshot";
const TEMP_NAME: &str = "plimsoll.snapshot.tmp";
/// The snapshot header's longest encoding: magic, and varints of the version,
/// fingerprint, time, part and word counts.
const MAX_HEADER_LEN: usize = 4 + 3 + 10 + 10 + 3 + 5;

/// The outcome of [`StateFile::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// No snapshot file: the state starts fresh.
    Fresh,
    /// The state was restored.
    Restored(Restored),
    /// The file was rejected and moved aside; the state starts fresh.
    MovedAside {
        /// Why it was rejected.
        error: SnapshotError,
        /// Where it is now.
        moved_to: PathBuf,
    },
}

/// The snapshot file of a state directory. See the [module docs](self).
#[derive(Debug)]
pub struct StateFile {
    dir: PathBuf,
    buf: Vec<u8>,
}

impl StateFile {
    /// A state file in `dir` (created if missing), with a buffer sized for `parts`.
    pub fn new(dir: impl Into<PathBuf>, parts: &[&dyn SnapshotPart]) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        // Room for every word at its longest varint (10 bytes), so the buffer never grows.
        let mut words = 0;
        for part in parts {
            part.save(&mut |_| words += 1);
        }
        Ok(Self { dir, buf: vec![0; MAX_HEADER_LEN + words * 10 + 4] })
    }

    /// The snapshot file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Writes a snapshot of `parts` taken at `now_ms`, atomically; returns its length.
    pub fn save(&mut self, parts: &[&dyn SnapshotPart], now_ms: u64) -> io::Result<usize> {
        let len = snapshot::write(parts, now_ms, &mut self.buf).map_err(io::Error::other)?;
        let temp = self.dir.join(TEMP_NAME);
        let mut file = File::create(&temp)?;
        file.write_all(&self.buf[..len])?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, self.path())?;
        sync_dir(&self.dir)?;
        Ok(len)
    }

    /// Restores `parts` from the snapshot file, if any; moves a rejected file aside.
    pub fn restore(&self, parts: &[&dyn SnapshotPart]) -> io::Result<Restore> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Restore::Fresh),
            Err(e) => return Err(e),
        };
        match snapshot::restore(parts, &bytes) {
            Ok(restored) => Ok(Restore::Restored(restored)),
            Err(error) => {
                let moved_to = self.dir.join(format!("{FILE_NAME}.rejected-{}", unix_ms()));
                fs::rename(&path, &moved_to)?;
                sync_dir(&self.dir)?;
                Ok(Restore::MovedAside { error, moved_to })
            }
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plimsoll_core::{GoodEvent, Slo, Window};

    type Rate = Window<plimsoll_core::Counter, 8, 1_000>;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plimsoll-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn save_then_restore() {
        let dir = temp_dir("round-trip");
        let slo: Slo = Slo::new("api", 0.999, GoodEvent::Success);
        let rate = Rate::new();
        for i in 0..100 {
            slo.record(i * 1_000, i % 10 != 0);
            rate.add(i * 1_000, 2);
        }
        let mut file = StateFile::new(&dir, &[&slo, &rate]).unwrap();
        let len = file.save(&[&slo, &rate], 100_000).unwrap();
        assert!(!dir.join(TEMP_NAME).exists());

        let (fresh_slo, fresh_rate): (Slo, Rate) = (Slo::new("api", 0.999, GoodEvent::Success), Rate::new());
        let restored = file.restore(&[&fresh_slo, &fresh_rate]).unwrap();
        assert_eq!(restored, Restore::Restored(Restored { taken_at_ms: 100_000, len }));
        assert_eq!(fresh_slo.cumulative(), slo.cumulative());
        assert_eq!(fresh_rate.sum(99_000, 7_000), rate.sum(99_000, 7_000));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_file_is_a_fresh_start() {
        let dir = temp_dir("fresh");
        let rate = Rate::new();
        let file = StateFile::new(&dir, &[&rate]).unwrap();
        assert_eq!(file.restore(&[&rate]).unwrap(), Restore::Fresh);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rejected_file_is_moved_aside_and_never_overwritten() {
        let dir = temp_dir("rejected");
        let rate = Rate::new();
        let mut file = StateFile::new(&dir, &[&rate]).unwrap();
        fs::write(file.path(), b"not a snapshot at all").unwrap();
        let Restore::MovedAside { error, moved_to } = file.restore(&[&rate]).unwrap() else {
            panic!("a corrupt file must be moved aside");
        };
        assert_eq!(error, SnapshotError::NotASnapshot);
        assert_eq!(fs::read(&moved_to).unwrap(), b"not a snapshot at all");
        assert!(!file.path().exists());
        rate.add(5_000, 1);
        file.save(&[&rate], 5_000).unwrap();
        assert_eq!(fs::read(&moved_to).unwrap(), b"not a snapshot at all", "the rejected file is kept");

        // A snapshot of another configuration is rejected the same way.
        let other: Window<plimsoll_core::Counter, 9, 1_000> = Window::new();
        let Restore::MovedAside { error, .. } = file.restore(&[&other]).unwrap() else {
            panic!("an incompatible file must be moved aside");
        };
        assert_eq!(error, SnapshotError::ConfigMismatch);
        fs::remove_dir_all(&dir).unwrap();
    }
}
