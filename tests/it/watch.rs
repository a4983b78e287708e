//! `plimsoll watch` end to end: a spawned Python process's memory on `/metrics`, signals
//! forwarded to it and its status returned, commands that cannot run, and a process
//! watched by PID until it exits.
//!
//! Every watcher runs under a [`Watcher`] guard and every process a test starts under a
//! [`Sleeper`] guard; both end their process on drop, and every wait has a deadline. The
//! children of a watcher sleep 30 s at most, so even a watcher killed outright leaves
//! nothing running for long.

use crate::support::{Output, capture, dechunk, plimsoll_binary, promtool_check};
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to start, stop or answer.
const DEADLINE: Duration = Duration::from_secs(10);
/// What the Python child holds, beyond its interpreter.
const BALLAST: u64 = 50 << 20;
/// Traps SIGTERM (exit 7), allocates 50 MiB, says its PID, then sleeps.
const PYTHON_BALLAST: &str = r#"
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
ballast = b"\x01" * (50 << 20)
print("pid", os.getpid(), flush=True)
time.sleep(30)
"#;

/// A running `plimsoll watch`; its stdout lines (its own and its child's) and its stderr
/// are read by threads.
struct Watcher {
    child: Child,
    stdout: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // SIGTERM first, so a spawned child hears it too; then SIGKILL if need be.
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watcher {
    /// `plimsoll watch args` on a free port, sampling every 200 ms, with no other setting.
    fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        let mut command = Command::new(plimsoll_binary());
        command.arg("watch").args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("PLIMSOLL_") || name.ends_with("_ENABLED") || name == "ENTERPRISE_MODE" {
                command.env_remove(&*name);
            }
        }
        command.env("PLIMSOLL_ADDR", "127.0.0.1:0").env("PLIMSOLL_SAMPLE_INTERVAL", "200ms");
        let mut child = command.spawn().expect("start plimsoll watch");
        let Output { stdout, stderr } = capture(&mut child);
        Self { child, stdout, seen: Vec::new(), stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The first stdout line `parse` accepts, waiting for it; lines are kept, so each
    /// call searches all of them.
    fn stdout_line<T>(&mut self, what: &str, parse: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(found) = self.seen.iter().find_map(|line| parse(line)) {
                return found;
            }
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(e) => {
                    panic!("no {what} on stdout within {DEADLINE:?} ({e}): {:?}; stderr:\n{}", self.seen, self.stderr())
                }
            }
        }
    }

    /// The address of the `listening on <address>` line.
    fn listening(&mut self) -> SocketAddr {
        self.stdout_line("`listening on` line", |line| line.strip_prefix("listening on ")?.parse().ok())
    }

    /// Waits for the exit, at most [`DEADLINE`]; returns its status and all of stderr.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the watcher") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the watcher did not exit within {DEADLINE:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread holds the other reference until stderr's end.
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        (status, self.stderr())
    }

    /// Sends signal `name` (TERM, INT, HUP) to the watcher and waits for its exit.
    fn signal_and_wait(&mut self, name: &str) -> (ExitStatus, String) {
        signal(self.child.id(), name);
        self.wait()
    }
}

/// `kill -NAME pid`.
fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill");
    assert!(sent.success(), "kill -{name} {pid} failed");
}

/// A process the test started itself, killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        Self(Command::new("sleep").arg("30").spawn().expect("start sleep"))
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` over a plain HTTP/1.1 connection; returns the status line and the body
/// (de-chunked).
fn get(address: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("write timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: plimsoll\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head: {response:?}"));
    let status = head.lines().next().unwrap_or_default().to_owned();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, body)
}

/// `GET /metrics`, which must answer 200.
fn scrape(address: SocketAddr) -> String {
    let (status, body) = get(address, "/metrics");
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    body
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Whether `/proc/PID` exists (a zombie's does).
fn proc_entry(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_spawned_python_process_is_sampled_and_its_sigterm_status_returned() {
    let mut watcher = Watcher::start(&["--", "python3", "-c", PYTHON_BALLAST]);
    let address = watcher.listening();
    let pid: u32 = watcher.stdout_line("the child's `pid` line", |line| line.strip_prefix("pid ")?.parse().ok());

    // The first sample may precede the allocation: scrape until one follows it.
    let rss_series = r#"plimsoll_memory_bytes{signal="rss",stat="last"}"#;
    let deadline = Instant::now() + DEADLINE;
    let text = loop {
        let text = scrape(address);
        if sample(&text, rss_series).is_some_and(|rss| rss >= BALLAST as f64) {
            break text;
        }
        assert!(Instant::now() < deadline, "RSS never reached {BALLAST} bytes:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    promtool_check(&text);
    let target = format!(r#"plimsoll_watch_target_info{{pid="{pid}",command="python3"}}"#);
    assert_eq!(sample(&text, &target), Some(1.0), "the scrape does not name the watched process:\n{text}");
    assert!(sample(&text, "plimsoll_process_open_fds").is_some_and(|fds| fds >= 3.0), "{text}");
    let peak = sample(&text, "plimsoll_process_peak_resident_memory_bytes").expect("the child's peak RSS");
    assert!(peak >= BALLAST as f64, "peak {peak}");

    let (status, report) = get(address, "/api/report");
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(report["watch"]["pid"], pid, "{report}");
    assert_eq!(report["watch"]["mode"], "spawned", "{report}");
    assert_eq!(report["memory"]["signals"][0]["signal"], "rss", "{report}");
    let (status, health) = get(address, "/health");
    assert!(status.starts_with("HTTP/1.1 200 ") && health.contains("\"memory:rss\""), "{status}\n{health}");

    // The child exits 7 on SIGTERM: the watcher forwards it and exits with that status.
    let (status, stderr) = watcher.signal_and_wait("TERM");
    assert_eq!(status.code(), Some(7), "stderr:\n{stderr}");
    for expected in [
        format!("watching python3 (pid {pid}, spawned)"),
        format!("SIGTERM: forwarded to pid {pid}"),
        format!("python3 (pid {pid}) exited with status 7"),
    ] {
        assert!(stderr.contains(&expected), "stderr lacks {expected:?}:\n{stderr}");
    }
    assert!(!proc_entry(pid), "the watcher reaped its child");
}

#[test]
fn the_watcher_exits_with_the_status_of_a_child_that_ends_on_its_own() {
    let mut exits = Watcher::start(&["--", "sh", "-c", "exit 3"]);
    let (status, stderr) = exits.wait();
    assert_eq!(status.code(), Some(3), "stderr:\n{stderr}");
    assert!(stderr.contains("(pid ") && stderr.contains(") exited with status 3"), "{stderr}");

    let mut killed = Watcher::start(&["--", "sh", "-c", "kill -KILL $$"]);
    let (status, stderr) = killed.wait();
    assert_eq!(status.code(), Some(128 + 9), "stderr:\n{stderr}");
    assert!(stderr.contains("was killed by signal 9 (SIGKILL"), "{stderr}");
}

#[test]
fn sighup_and_sigint_are_forwarded() {
    // `sleep` dies of either, so the watcher reports 128 + its number.
    for (name, number) in [("HUP", 1), ("INT", 2)] {
        let mut watcher = Watcher::start(&["--", "sleep", "30"]);
        watcher.listening();
        let (status, stderr) = watcher.signal_and_wait(name);
        assert_eq!(status.code(), Some(128 + number), "SIG{name}; stderr:\n{stderr}");
        assert!(stderr.contains(&format!("SIG{name}: forwarded to pid")), "{stderr}");
    }
}

#[test]
fn commands_that_cannot_run_exit_as_shells_do() {
    let mut missing = Watcher::start(&["--", "/nonexistent/plimsoll-no-such-command"]);
    let (status, stderr) = missing.wait();
    assert_eq!(status.code(), Some(127), "stderr:\n{stderr}");
    assert!(stderr.contains("cannot run /nonexistent/plimsoll-no-such-command: "), "{stderr}");

    let mut directory = Watcher::start(&["--", "/"]);
    let (status, stderr) = directory.wait();
    assert_eq!(status.code(), Some(126), "stderr:\n{stderr}");

    for usage in [&[][..], &["--pid", "1", "--", "sleep", "1"], &["--pid", "0"]] {
        let mut watcher = Watcher::start(usage);
        let (status, stderr) = watcher.wait();
        assert_eq!(status.code(), Some(2), "{usage:?}: stderr:\n{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

#[test]
fn a_process_watched_by_pid_is_followed_until_it_exits() {
    // PIDs never exceed pid_max (at most 2^22), so 2^31 - 1 names no process.
    let mut nobody = Watcher::start(&["--pid", "2147483647"]);
    let (status, stderr) = nobody.wait();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("--pid 2147483647: no such process"), "{stderr}");

    let mut sleeper = Sleeper::start();
    let pid = sleeper.0.id();
    let args = ["--pid".to_owned(), pid.to_string()];

    // SIGTERM stops the watcher, not the process it watches.
    let mut watcher = Watcher::start(&args);
    let text = scrape(watcher.listening());
    let target = format!(r#"plimsoll_watch_target_info{{pid="{pid}",command="sleep"}}"#);
    assert_eq!(sample(&text, &target), Some(1.0), "{text}");
    let (status, stderr) = watcher.signal_and_wait("TERM");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(matches!(sleeper.0.try_wait(), Ok(None)), "the watched process must live on");

    // Killed and not yet reaped, the process is a zombie: that is an exit too.
    let mut watcher = Watcher::start(&args);
    watcher.listening();
    sleeper.0.kill().expect("kill the sleep");
    let (status, stderr) = watcher.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("sleep (pid {pid}) has exited")), "{stderr}");
    assert!(proc_entry(pid), "the test, its parent, has not reaped it yet");
}
