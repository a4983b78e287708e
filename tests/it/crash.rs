//! Snapshots survive `kill -9` at any moment: after a restart the state is the last
//! snapshot that was saved or the one being saved, never a corrupt one.

use plimsoll::snapshot::{Restored, SnapshotPart};
use plimsoll::{Counter, Events, GoodEvent, Restore, Slo, StateFile, Window};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the writer when dropped, so a failing test leaves no process behind.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the writer on `dir`; returns it and its first line (the restore outcome).
fn start_writer(dir: &Path) -> (Writer, BufReader<std::process::ChildStdout>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snapshot-writer"))
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the snapshot writer");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    lines.read_line(&mut first).expect("read the restore outcome");
    (Writer(child), lines, first.trim().to_owned())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plimsoll-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The generation a state directory's snapshot holds, checked against its contents; 0 if
/// there is no snapshot yet (a kill before the first save finished).
fn restored_generation(dir: &Path) -> u64 {
    let slo: Slo = Slo::new("crash_test", 0.99, GoodEvent::Success);
    let counts: Window<Counter, 8, 1_000_000> = Window::new();
    let parts: [&dyn SnapshotPart; 2] = [&slo, &counts];
    let file = StateFile::new(dir, &parts).expect("state dir");
    match file.restore(&parts).expect("readable") {
        Restore::Restored(Restored { taken_at_ms, .. }) => {
            // Generation g recorded exactly g events: the contents match the header.
            assert_eq!(slo.cumulative(), Events { good: taken_at_ms, total: taken_at_ms });
            assert_eq!(counts.sum(taken_at_ms, 0), taken_at_ms);
            taken_at_ms
        }
        Restore::Fresh => 0,
        other => panic!("after a kill the snapshot must restore, got {other:?}"),
    }
}

#[test]
fn kill_9_during_writes_never_leaves_a_corrupt_snapshot() {
    let dir = temp_dir("kill");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut last_confirmed = 0;
    for round in 0..25 {
        assert!(Instant::now() < deadline, "the crash test ran out of time at round {round}");
        let (mut writer, mut lines, first) = start_writer(&dir);
        let expected_start =
            if last_confirmed == 0 { "fresh".to_owned() } else { format!("restored {last_confirmed}") };
        // The previous kill may have landed after a save but before its line was printed.
        let restored: u64 = match first.strip_prefix("restored ") {
            Some(generation) => generation.parse().expect("a generation"),
            None => 0,
        };
        assert!(
            first == expected_start || restored == last_confirmed + 1,
            "round {round}: started with {first:?}, expected {expected_start:?} or one more"
        );
        // Let it write for a pseudo-random 0–40 ms, then kill it mid-stream.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 41));
        writer.0.kill().expect("kill -9");
        writer.0.wait().expect("reap");
        let mut confirmed = restored;
        let mut line = String::new();
        while lines.read_line(&mut line).expect("read") > 0 {
            confirmed = line.trim().parse().expect("a generation");
            line.clear();
        }
        let on_disk = restored_generation(&dir);
        assert!(
            on_disk == confirmed || on_disk == confirmed + 1,
            "round {round}: disk holds generation {on_disk}, last confirmed {confirmed}"
        );
        last_confirmed = on_disk;
    }
    assert!(last_confirmed > 25, "the writer barely wrote: {last_confirmed} generations");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_corrupt_state_file_is_moved_aside_at_start_up() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).expect("state dir");
    std::fs::write(dir.join("plimsoll.snapshot"), b"\x00garbage").expect("write garbage");
    let (writer, mut lines, first) = start_writer(&dir);
    assert!(first.starts_with("moved-aside"), "{first}");
    let mut line = String::new();
    lines.read_line(&mut line).expect("the writer goes on");
    assert_eq!(line.trim(), "1", "it starts fresh");
    drop(writer);
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("plimsoll.snapshot.rejected-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(dir.join(&kept[0])).expect("read"), b"\x00garbage");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
