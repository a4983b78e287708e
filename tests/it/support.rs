//! Rendering to a `String`, and the external checkers.

use plimsoll::{Format, Registry};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Renders the whole exposition through a buffer of `buf_len` bytes.
pub(crate) fn render<const F: usize>(registry: &Registry<F>, format: Format, buf_len: usize) -> String {
    let mut renderer = registry.renderer(format);
    let mut buf = vec![0u8; buf_len];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).expect("buffer holds the longest line");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).expect("exposition is UTF-8")
}

/// Runs `program args` with `input` on stdin; returns (success, stdout + stderr).
fn run_with_stdin(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; `bash .ci/run` installs the test tools"));
    child.stdin.take().expect("piped stdin").write_all(input.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("wait for checker");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// `promtool check metrics` (the Prometheus text parser plus its linter).
pub(crate) fn promtool_check(text: &str) {
    let (ok, report) = run_with_stdin("promtool", &["check", "metrics"], text);
    assert!(ok, "promtool check metrics rejected the exposition:\n{report}\n--- input ---\n{text}");
}

fn python() -> PathBuf {
    std::env::var_os("PLIMSOLL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

/// Parses `text` with `prometheus_client`'s strict parser for `format` and returns its
/// samples as JSON lines `[name, {labels}, value]` for comparison.
pub(crate) fn python_parse(text: &str, format: Format) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/it/parse_exposition.py");
    let flavour = match format {
        Format::Prometheus => "prometheus",
        Format::OpenMetrics => "openmetrics",
        Format::Protobuf => panic!("the protobuf format is binary: decode it with `protobuf::decode`"),
    };
    let python = python();
    let (ok, report) = run_with_stdin(python.to_str().expect("UTF-8 path"), &[script, flavour], text);
    assert!(ok, "prometheus_client's {flavour} parser rejected the exposition:\n{report}\n--- input ---\n{text}");
    report.lines().map(str::to_owned).collect()
}

/// Decodes a chunked body strictly: every size line, every chunk's CRLF, the last chunk.
pub(crate) fn dechunk(mut raw: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, rest) = raw.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            assert_eq!(rest, "\r\n", "the body ends after the last chunk");
            return body;
        }
        body.push_str(&rest[..size]);
        assert_eq!(&rest[size..size + 2], "\r\n", "a chunk ends with CRLF");
        raw = &rest[size + 2..];
    }
}

/// The `plimsoll` binary, built from the current source into the tests' target directory
/// and profile (once per test run), so the command under test is never stale.
pub(crate) fn plimsoll_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test_exe = std::env::current_exe().expect("the test executable's path");
        // target/<profile>/deps/it-<hash>
        let profile_dir = test_exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile directory name");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "plimsoll", "--bin", "plimsoll", "--target-dir"]);
        build.arg(profile_dir.parent().expect("the target directory"));
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let output = build.output().expect("run cargo build");
        assert!(
            output.status.success(),
            "cargo build -p plimsoll --bin plimsoll failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = profile_dir.join(format!("plimsoll{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.is_file(), "cargo build did not leave {}", binary.display());
        binary
    })
}

/// A child's piped output as it arrives: its stdout lines over a channel, its stderr
/// collected whole; each read by a thread of its own, so a full pipe never blocks the child.
pub(crate) struct Output {
    pub(crate) stdout: std::sync::mpsc::Receiver<String>,
    pub(crate) stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts reading `child`'s piped stdout and stderr (see [`Output`]).
pub(crate) fn capture(child: &mut std::process::Child) -> Output {
    use std::io::{BufRead, BufReader, Read};
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let collected = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&collected);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            sink.lock().expect("stderr lock").push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Output { stdout: receiver, stderr: collected }
}
