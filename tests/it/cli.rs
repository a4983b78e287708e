//! The `plimsoll` command end to end: `serve` and `demo` scraped over TCP and checked by
//! `promtool` and `prometheus_client`, stopped by SIGTERM with a final snapshot; an
//! invalid setting; `inspect` on good, foreign and damaged snapshots.
//!
//! Every child runs under a [`Plimsoll`] guard that kills it on drop, and every wait has a
//! deadline, so a failing test leaves no process behind and never hangs.
//!
//! # Which binary
//!
//! The binary belongs to the `plimsoll` package, so Cargo gives this package's tests no
//! `CARGO_BIN_EXE_plimsoll`, and `cargo test`, even with `--workspace`, builds a package's
//! binaries only for that package's own integration tests (checked: a clean
//! `cargo test --workspace --no-run` leaves no `target/debug/plimsoll`). So [`binary`]
//! runs `cargo build -p plimsoll --bin plimsoll` once per test run, into this test
//! executable's target directory and profile, and runs what it built: always the current
//! source, whichever `cargo test` started the tests.

use crate::support::{Output, capture, dechunk, plimsoll_binary, promtool_check, python_parse};
use plimsoll::Format;
use serde_json::Value;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child may take to start, stop or answer.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
pub(crate) const PROMETHEUS_ACCEPT: &str = "text/plain;version=0.0.4";
const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0";
const ONE_SLO: &str = "[[slo]]\nname = \"checkout\"\nobjective = 0.999\nlatency_threshold_seconds = 0.3\n";

/// `plimsoll args` with only the given configuration: variables the command reads that
/// the test's own environment may set are removed.
fn command(args: &[&str], env: &[(&str, OsString)]) -> Command {
    let mut command = Command::new(plimsoll_binary());
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("PLIMSOLL_") || name.ends_with("_ENABLED") || name == "ENTERPRISE_MODE" {
            command.env_remove(&*name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// A running `plimsoll`, killed on drop; its stdout lines and stderr are read by threads.
pub(crate) struct Plimsoll {
    child: Child,
    pub(crate) stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Plimsoll {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Plimsoll {
    pub(crate) fn start(args: &[&str], env: &[(&str, OsString)]) -> Self {
        let mut child = command(args, env).spawn().expect("start plimsoll");
        let Output { stdout, stderr } = capture(&mut child);
        Self { child, stdout, stderr }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address from the `listening on <address>` line.
    pub(crate) fn listening(&self) -> SocketAddr {
        let line = self
            .stdout
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no `listening on` line within {DEADLINE:?} ({e}); stderr:\n{}", self.stderr()));
        let address = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
        address.parse().unwrap_or_else(|e| panic!("{address:?}: {e}"))
    }

    /// Waits until stderr holds `needle`; returns all of stderr.
    pub(crate) fn wait_for_stderr(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let stderr = self.stderr();
            if stderr.contains(needle) {
                return stderr;
            }
            assert!(Instant::now() < deadline, "no {needle:?} on stderr within {within:?}:\n{stderr}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit, at most [`DEADLINE`].
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.wait()
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < deadline, "plimsoll did not exit within {DEADLINE:?}; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `plimsoll args` to the end (at most [`DEADLINE`]); returns its status, stdout and
/// stderr.
fn run(args: &[&str], env: &[(&str, OsString)]) -> (ExitStatus, String, String) {
    let mut plimsoll = Plimsoll::start(args, env);
    let status = plimsoll.wait();
    // The reader threads see the end of both pipes once the process is gone.
    let stdout: Vec<String> = plimsoll.stdout.iter().collect();
    let deadline = Instant::now() + DEADLINE;
    while Arc::strong_count(&plimsoll.stderr) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stderr = plimsoll.stderr();
    (status, stdout.iter().map(|line| format!("{line}\n")).collect(), stderr)
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plimsoll-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// `PLIMSOLL_ADDR` on a free port, and the other settings given.
pub(crate) fn env(settings: &[(&'static str, &Path)]) -> Vec<(&'static str, OsString)> {
    let mut env = vec![("PLIMSOLL_ADDR", OsString::from("127.0.0.1:0"))];
    env.extend(settings.iter().map(|&(name, path)| (name, path.as_os_str().to_owned())));
    env
}

/// `GET /metrics` over a plain HTTP/1.1 connection; returns the body (de-chunked).
pub(crate) fn scrape(address: SocketAddr, accept: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("write timeout");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: plimsoll\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head: {response:?}"));
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() }
}

/// Runs `serve` on `dir/state` with `dir/slos.toml` until SIGTERM; returns its stderr.
fn serve_until_sigterm(dir: &Path, check: impl FnOnce(SocketAddr)) -> String {
    let mut serve = Plimsoll::start(
        &["serve"],
        &env(&[("PLIMSOLL_STATE_DIR", &dir.join("state")), ("PLIMSOLL_CONFIG", &dir.join("slos.toml"))]),
    );
    check(serve.listening());
    let status = serve.terminate();
    let stderr = serve.wait_for_stderr("plimsoll: stopped", DEADLINE);
    assert_eq!(status.code(), Some(0), "serve must exit 0 after SIGTERM; stderr:\n{stderr}");
    stderr
}

#[test]
fn serve_scrapes_cleanly_and_saves_a_snapshot_on_sigterm() {
    let dir = temp_dir("serve");
    std::fs::write(dir.join("slos.toml"), ONE_SLO).expect("write the SLO file");
    let stderr = serve_until_sigterm(&dir, |address| {
        let text = scrape(address, PROMETHEUS_ACCEPT);
        promtool_check(&text);
        python_parse(&text, Format::Prometheus);
        assert!(text.contains("plimsoll_slo_objective_ratio{slo=\"checkout\"} 0.999"), "{text}");
        assert!(text.contains("plimsoll_exporter_requests_total"), "{text}");
        let openmetrics = scrape(address, OPENMETRICS_ACCEPT);
        python_parse(&openmetrics, Format::OpenMetrics);
        assert!(openmetrics.ends_with("# EOF\n"));
    });
    for expected in [
        "address            127.0.0.1:0",
        "slo                checkout: 0.999 of events within 0.3 s",
        "state: no snapshot at",
        "starting fresh",
        "total: ",
        "plimsoll: SIGTERM: shutting down",
        "plimsoll: final snapshot saved",
    ] {
        assert!(stderr.contains(expected), "stderr lacks {expected:?}:\n{stderr}");
    }
    assert!(dir.join("state/plimsoll.snapshot").is_file(), "the final snapshot is on disk");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn demo_serves_its_workload_and_prints_status_lines() {
    let mut demo = Plimsoll::start(&["demo", "--rate", "1000", "--app-addr", "127.0.0.1:0"], &env(&[]));
    let address = demo.listening();
    std::thread::sleep(Duration::from_secs(2));
    let text = scrape(address, PROMETHEUS_ACCEPT);
    promtool_check(&text);
    for expected in [
        "demo_leads_total ",
        "demo_conversions_total ",
        "demo_http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}",
        "demo_http_request_duration_seconds_bucket{route=\"/search\",le=\"+Inf\"}",
        "plimsoll_slo_events_total{slo=\"demo_latency\",result=\"good\"}",
    ] {
        assert!(text.contains(expected), "the scrape lacks {expected:?}:\n{text}");
    }
    let leads: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("demo_leads_total "))
        .and_then(|value| value.parse().ok())
        .expect("a demo_leads_total sample");
    assert!(leads > 0.0, "2 s at 1,000 requests/s captures leads");
    python_parse(&scrape(address, OPENMETRICS_ACCEPT), Format::OpenMetrics);
    // The first status line comes 5 s after start.
    let stderr = demo.wait_for_stderr("\ndemo: ", DEADLINE);
    let status = stderr.lines().find(|line| line.starts_with("demo: ")).expect("a status line");
    for expected in [
        " req/s, p99 ",
        " ms over the last minute; demo_latency 1h burn rate ",
        ", alert ",
        "; memory rss ",
        "; breaker payment ",
        "; limited ",
    ] {
        assert!(status.contains(expected), "status line {status:?} lacks {expected:?}");
    }
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}

#[test]
fn an_invalid_variable_stops_start_up_with_status_2() {
    for subcommand in ["serve", "demo"] {
        let mut env = env(&[]);
        env.push(("METRICS_ENABLED", OsString::from("maybe")));
        let (status, stdout, stderr) = run(&[subcommand], &env);
        assert_eq!(status.code(), Some(2), "{subcommand}: stderr:\n{stderr}");
        assert!(stdout.is_empty(), "{subcommand} announced an address: {stdout}");
        for expected in ["METRICS_ENABLED", "\"maybe\"", "true or false"] {
            assert!(stderr.contains(expected), "{subcommand}: stderr lacks {expected:?}:\n{stderr}");
        }
    }
}

#[test]
fn inspect_decodes_what_serve_saved_and_rejects_the_rest() {
    let dir = temp_dir("inspect");
    std::fs::write(dir.join("slos.toml"), ONE_SLO).expect("write the SLO file");
    serve_until_sigterm(&dir, |_| {});
    // A second start restores what the first saved.
    let again = serve_until_sigterm(&dir, |_| {});
    assert!(again.contains("state: restored"), "{again}");
    let snapshot = dir.join("state/plimsoll.snapshot");
    let path = snapshot.to_str().expect("a UTF-8 path");
    let config = [("PLIMSOLL_CONFIG", dir.join("slos.toml").into_os_string())];

    let (status, text, stderr) = run(&["inspect", path], &config);
    assert!(status.success(), "{stderr}");
    for expected in
        ["format       version 1", "fingerprint  0x", "Z)", "matches the configuration (1 SLO)", "slo checkout"]
    {
        assert!(text.contains(expected), "inspect lacks {expected:?}:\n{text}");
    }

    let (status, json, stderr) = run(&["inspect", path, "--json"], &config);
    assert!(status.success(), "{stderr}");
    let json: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(json["version"], 1);
    assert_eq!(json["state"], "decoded");
    assert_eq!(json["slos"][0]["name"], "checkout");
    assert_eq!(json["slos"][0]["windows"].as_array().map(Vec::len), Some(9));
    assert!(json["taken_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{json}");

    // Without the configuration the header is still shown.
    let (status, text, _) = run(&["inspect", path], &[]);
    assert!(status.success() && text.contains("not decoded"), "{text}");

    // Another configuration, foreign bytes and a damaged snapshot are typed errors.
    std::fs::write(dir.join("other.toml"), ONE_SLO.replace("checkout", "other")).expect("write");
    let (status, _, stderr) = run(&["inspect", path], &[("PLIMSOLL_CONFIG", dir.join("other.toml").into_os_string())]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("different configuration (ConfigMismatch)"), "{stderr}");

    let garbage = dir.join("garbage");
    std::fs::write(&garbage, "this is not a snapshot, only some text\n").expect("write");
    let (status, stdout, stderr) = run(&["inspect", garbage.to_str().expect("UTF-8")], &config);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("garbage: not a Plimsoll snapshot (NotASnapshot)"), "{stderr}");

    let mut bytes = std::fs::read(&snapshot).expect("read the snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = dir.join("damaged");
    std::fs::write(&damaged, &bytes).expect("write");
    let (status, _, stderr) = run(&["inspect", damaged.to_str().expect("UTF-8")], &config);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("checksum mismatch (Checksum)"), "{stderr}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn every_subcommand_has_help() {
    for (subcommand, mentions) in
        [("serve", "listening on <address>"), ("demo", "--leak <RATE>"), ("inspect", "PLIMSOLL_CONFIG")]
    {
        let (status, stdout, stderr) = run(&[subcommand, "--help"], &[]);
        assert!(status.success(), "{subcommand} --help: {stderr}");
        assert!(stdout.contains(&format!("Usage: plimsoll {subcommand}")), "{stdout}");
        assert!(stdout.contains(mentions), "{subcommand} --help lacks {mentions:?}:\n{stdout}");
    }
}
