//! `/dashboard` end to end. Over raw HTTP: the page is served whole, only with the token,
//! which this route alone also takes from its address (form-encoded). In Debian's Chromium,
//! driven by `tests/dashboard/check.mjs` (playwright-core, `executablePath` set, no browser
//! download): against a running demo with a token, the page draws its charts from live
//! data; its figures are exactly those of the `/api/report` answer it drew them from (as the
//! browser received it), agree with the answers this test fetched just before and after,
//! and are written for people (thousands separators, KiB, states in words); it takes the
//! token out of the address bar, survives a reload, signs in through its form, fits a
//! phone's width and reaches nothing beyond its origin. Screenshots land in
//! `target/dashboard/`. Ten dashboards' cost to the server is measured on demand
//! ([`ten_dashboards_polling_every_second`]).
//!
//! The browser tests skip, saying why, when Chromium (`PLIMSOLL_CHROMIUM`, default
//! `/usr/bin/chromium`), Node.js or `tests/dashboard/node_modules` is missing (`bash
//! .ci/run` installs them); under CI (`CI` set), where `.ci/run` installed them, a missing
//! one fails instead. Every child runs under a guard that kills it on drop, and every wait
//! has a deadline.

use crate::cli::{DEADLINE, Plimsoll, env};
use crate::support::dechunk;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The page as the exporter embeds it.
const PAGE: &str = include_str!("../../adapters/src/exporter/dashboard.html");
/// `+`, `/` and `%` exercise the query's form decoding.
const TOKEN: &str = "dash+board/%token";
const TOKEN_QUERY: &str = "dash%2Bboard%2F%25token";
/// How long the browser may take for each step (a cold Chromium start on a busy machine
/// takes seconds).
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

/// `demo ARGS` with the token and a memory sample a second: the demo and its exporter.
fn start(args: &[&str]) -> (Plimsoll, SocketAddr) {
    let mut argv = vec!["demo", "--app-addr", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    let mut environment = env(&[]);
    environment.push(("PLIMSOLL_TOKEN", OsString::from(TOKEN)));
    environment.push(("PLIMSOLL_SAMPLE_INTERVAL", OsString::from("1s")));
    let demo = Plimsoll::start(&argv, &environment);
    let exporter = demo.listening();
    (demo, exporter)
}

/// An answer: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `method path` on a connection of its own, with `headers`.
fn request(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("write timeout");
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head: {response:?}"));
    let head = head.to_ascii_lowercase();
    let status = head.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Answer { status, head, body }
}

fn authorized(address: SocketAddr, path: &str) -> String {
    let answer = request(address, "GET", path, &[("Authorization", &format!("Bearer {TOKEN}"))]);
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.body
}

fn report(exporter: SocketAddr) -> Value {
    let body = authorized(exporter, "/api/report");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Requests the demo's shop has answered so far (its latency histogram's count).
fn requests_served(exporter: SocketAddr) -> f64 {
    let text = authorized(exporter, "/metrics");
    let counts = text.lines().filter_map(|line| line.strip_prefix("demo_http_request_duration_seconds_count"));
    counts.filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[test]
fn the_dashboard_takes_the_token_once_in_its_address() {
    let (mut demo, exporter) = start(&["--rate", "0"]);
    let page = request(exporter, "GET", &format!("/dashboard?token={TOKEN_QUERY}"), &[]);
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.head.contains("\r\ncontent-type: text/html; charset=utf-8"), "{}", page.head);
    assert!(page.head.contains("\r\ncache-control: no-store"), "{}", page.head);
    assert!(page.body == PAGE, "/dashboard is not the embedded page");
    let by_header = request(exporter, "GET", "/dashboard", &[("Authorization", &format!("Bearer {TOKEN}"))]);
    assert!(by_header.status == 200 && by_header.body == PAGE, "{}", by_header.head);
    let head = request(exporter, "HEAD", &format!("/dashboard?interval=1&token={TOKEN_QUERY}"), &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""), "{}", head.head);

    let refused = [
        "/dashboard".to_owned(),
        "/dashboard?token=".to_owned(),
        // Not form-encoded: `+` is a space and `%to` no escape.
        format!("/dashboard?token={TOKEN}"),
        "/dashboard?token=dash%2Bboard%2F%25toke".to_owned(),
        format!("/dashboard?token={TOKEN_QUERY}x"),
        format!("/dashboard?token={}", "x".repeat(600)),
        format!("/dashboard?tokens={TOKEN_QUERY}"),
    ];
    for path in &refused {
        let answer = request(exporter, "GET", path, &[]);
        assert_eq!(answer.status, 401, "{path}");
        assert!(answer.head.contains("\r\nwww-authenticate: bearer"), "{path}: {}", answer.head);
        assert!(answer.head.contains("\r\ncontent-type: text/html; charset=utf-8"), "{path}: {}", answer.head);
        assert!(answer.body.contains("<form") && !answer.body.contains("api/report"), "{path}: not the sign-in page");
    }
    // Only /dashboard takes the token from its address.
    for path in ["/api/report", "/metrics", "/health", "/snapshot"] {
        let answer = request(exporter, "GET", &format!("{path}?token={TOKEN_QUERY}"), &[]);
        assert_eq!((answer.status, answer.body.as_str()), (401, ""), "{path}");
    }
    let metrics = authorized(exporter, "/metrics");
    let expected = format!("plimsoll_exporter_unauthorized_requests_total {}", refused.len() + 4);
    assert!(metrics.contains(&expected), "{expected} not in\n{metrics}");
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}

/// The page is self-contained: nothing it names lies beyond its origin.
#[test]
fn the_page_names_no_outside_resource() {
    for outside in ["http:", "https:", "//", "<link", "<img", "<iframe", " src=", "@import", "url("] {
        let found = PAGE.match_indices(outside).map(|(at, _)| &PAGE[at.saturating_sub(40)..(at + 40).min(PAGE.len())]);
        // `//` opens the script's comments too: only a `//` right after a quote is a URL.
        let found: Vec<&str> = found.filter(|around| outside != "//" || around.contains("\"//")).collect();
        assert!(found.is_empty(), "the page holds {outside:?}: {found:?}");
    }
    assert!(PAGE.contains("Content-Security-Policy\" content=\"default-src 'none'; connect-src 'self';"));
    assert!(PAGE.len() < 48 << 10, "the page grew to {} bytes", PAGE.len());
}

/// Why the browser tests cannot run here, if they cannot.
fn browser_missing() -> Option<String> {
    let chromium = chromium();
    if !chromium.is_file() {
        return Some(format!(
            "no Chromium at {} (Debian's `chromium`, which `bash .ci/run` installs; PLIMSOLL_CHROMIUM names another)",
            chromium.display()
        ));
    }
    if !Command::new("node").arg("--version").output().is_ok_and(|out| out.status.success()) {
        return Some("no `node` on PATH (Debian's `nodejs`)".to_owned());
    }
    if !script_dir().join("node_modules/playwright-core").is_dir() {
        return Some("no tests/dashboard/node_modules: run `npm ci` in tests/dashboard".to_owned());
    }
    None
}

/// Whether `test` can drive a browser here; says why not, and fails under CI, if not.
fn browser_ready(test: &str) -> bool {
    let Some(why) = browser_missing() else {
        return true;
    };
    assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
    eprintln!("skipping {test}: {why}");
    false
}

fn chromium() -> PathBuf {
    std::env::var_os("PLIMSOLL_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

/// `target/dashboard/`, beside the profile directories of this test run.
fn artifacts() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/it-<hash>
    let target = test_exe.ancestors().nth(3).expect("the target directory");
    let dir = target.join("dashboard");
    std::fs::create_dir_all(&dir).expect("create target/dashboard");
    dir
}

/// A running `node check.mjs`, killed on drop (its Chromium exits when the pipe to it
/// closes); its stdout lines are events, read by a thread.
struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Script {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new("node")
            .arg(script_dir().join("check.mjs"))
            .args(args)
            .env("PLIMSOLL_CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().expect("stderr lock").push_str(&text);
        });
        let stdin = child.stdin.take();
        Self { child, stdin, events, stderr: collected }
    }

    /// The next event, which must be `name`.
    fn expect(&mut self, name: &str) -> Value {
        let line = self.events.recv_timeout(BROWSER_DEADLINE).unwrap_or_else(|e| {
            // The script failed: its stderr is complete once it has exited.
            let _ = self.child.wait();
            std::thread::sleep(Duration::from_millis(200));
            panic!("no {name:?} event from check.mjs ({e}); stderr:\n{}", self.stderr.lock().expect("stderr lock"))
        });
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["event"], name, "{line}");
        event
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to check.mjs");
    }

    fn succeeded(mut self) {
        let deadline = Instant::now() + BROWSER_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll node") {
                break status;
            }
            assert!(Instant::now() < deadline, "check.mjs did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "check.mjs: {status}; stderr:\n{}", self.stderr.lock().expect("stderr lock"));
    }
}

#[test]
fn chromium_draws_the_reports_figures() {
    if !browser_ready("chromium_draws_the_reports_figures") {
        return;
    }
    let (mut demo, exporter) = start(&[]);
    let screenshot = artifacts().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = format!("http://{exporter}");
    let (started, served) = (Instant::now(), requests_served(exporter));
    let mut script = Script::start(&["check", &url, TOKEN, screenshot.to_str().expect("a UTF-8 path")]);
    script.expect("rendered");
    // The page shows a report answered after `before`, and read before `after` was asked.
    let before = report(exporter);
    script.send(&before["time_ms"].to_string());
    let values = script.expect("values");
    let after = report(exporter);
    let rate = (requests_served(exporter) - served) / started.elapsed().as_secs_f64();
    let figures = Figures(values["values"].as_object().expect("values").clone());
    figures.compare(&before, &values["report"], &after, rate);
    script.expect("done");
    script.succeeded();
    for shot in [screenshot.clone(), screenshot.with_file_name("dashboard-phone.png")] {
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} is no screenshot", shot.display());
    }
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}

/// How a figure may move between two reports.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// A name or state: as one of the two reports has it.
    State,
    /// A counter: between the two reports'.
    Count,
    /// A ratio that moves either way: within the two reports' (and a little).
    Ratio,
    /// The report's time: after the first report, not after the second.
    Time,
}

/// The figures the page must show for `report`: `data-key`, kind and the report's value.
fn figures_of(report: &Value) -> Vec<(String, Kind, Value)> {
    let mut out = vec![
        ("status".to_owned(), Kind::State, report["status"].clone()),
        ("time_ms".to_owned(), Kind::Time, report["time_ms"].clone()),
        ("footprint.registry_bytes".to_owned(), Kind::State, report["footprint"]["registry_bytes"].clone()),
        ("footprint.families".to_owned(), Kind::State, report["footprint"]["families"].clone()),
        ("footprint.series".to_owned(), Kind::Count, report["footprint"]["series"].clone()),
    ];
    let mut add = |key: String, kind, value: &Value| out.push((key, kind, value.clone()));
    for slo in report["slos"].as_array().into_iter().flatten() {
        let name = slo["name"].as_str().expect("a name");
        let alert = match (slo["alerts"]["page"].as_bool(), slo["alerts"]["ticket"].as_bool()) {
            (Some(true), _) => "page",
            (_, Some(true)) => "ticket",
            _ => "none",
        };
        add(format!("slo.{name}.alert"), Kind::State, &Value::from(alert));
        add(format!("slo.{name}.consumed"), Kind::Count, &slo["error_budget"]["consumed"]);
        add(format!("slo.{name}.budget_remaining"), Kind::Ratio, &slo["error_budget"]["remaining_ratio"]);
        for (window, figures) in slo["windows"].as_object().expect("windows") {
            add(format!("slo.{name}.burn.{window}"), Kind::Ratio, &figures["burn_rate"]);
        }
    }
    for signal in report["memory"]["signals"].as_array().into_iter().flatten() {
        add(
            format!("memory.{}.verdict", signal["signal"].as_str().expect("a signal")),
            Kind::State,
            &signal["verdict"],
        );
    }
    for breaker in report["breakers"].as_array().into_iter().flatten() {
        add(format!("breaker.{}.state", breaker["name"].as_str().expect("a name")), Kind::State, &breaker["state"]);
    }
    for limiter in report["rate_limits"].as_array().into_iter().flatten() {
        add(
            format!("ratelimit.{}.limited", limiter["name"].as_str().expect("a name")),
            Kind::Count,
            &limiter["limited"],
        );
    }
    // Top-k sections are named after their family: any array of `{key, count}` rows.
    for (name, rows) in report.as_object().expect("an object") {
        let rows = rows.as_array().filter(|rows| {
            !rows.is_empty() && rows.iter().all(|row| row.get("key").is_some() && row.get("count").is_some())
        });
        if let Some(rows) = rows {
            add(format!("top.{name}.first"), Kind::State, &rows[0]["key"]);
        }
    }
    add("security.events_total".to_owned(), Kind::Count, &report["security"]["events_total"]);
    add("queries.total".to_owned(), Kind::Count, &report["slow_queries"]["queries_total"]);
    add("queries.slow_total".to_owned(), Kind::Count, &report["slow_queries"]["slow_total"]);
    add("spans.recorded".to_owned(), Kind::Count, &report["slow_spans"]["recorded"]);
    out
}

/// The page's figures: `data-key` -> [the report's figure, the text shown].
struct Figures(Map<String, Value>);

impl Figures {
    fn get(&self, key: &str) -> (&str, &str) {
        let pair = self
            .0
            .get(key)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("the page shows no {key}: {:#?}", self.0));
        (pair[0].as_str().expect("a value"), pair[1].as_str().expect("a text"))
    }

    /// Whether the page shows `value` for `key`: a string exactly, a number to 1e-12
    /// relative (the page may derive a figure in JavaScript, which can differ from the
    /// report's own arithmetic in the last bits), `null` as nothing.
    fn shows(&self, key: &str, value: &Value) -> bool {
        let (shown, _) = self.get(key);
        match value {
            Value::Null => shown.is_empty(),
            Value::String(text) => shown == text,
            number => match (shown.parse::<f64>(), number.as_f64()) {
                (Ok(shown), Some(number)) => (shown - number).abs() <= 1e-12 * number.abs().max(1.0),
                _ => false,
            },
        }
    }

    /// Checks every figure: exactly the `seen` report's (the answer the page drew, as the
    /// browser received it), and consistent with `before` and `after`, which this test
    /// fetched itself just before the page's poll and just after it read the page.
    fn compare(&self, before: &Value, seen: &Value, after: &Value, rate: f64) {
        let (early, late) = (figures_of(before), figures_of(after));
        let figures = figures_of(seen);
        let mut keys: Vec<&str> = figures.iter().map(|(key, ..)| key.as_str()).collect();
        keys.push("traffic.rate");
        keys.sort_unstable();
        let mut shown: Vec<&str> = self.0.keys().map(String::as_str).collect();
        shown.sort_unstable();
        assert_eq!(shown, keys, "the page's figures are not the report's");
        for (((key, kind, value), (_, _, first)), (_, _, last)) in figures.iter().zip(&early).zip(&late) {
            assert!(self.shows(key, value), "{key}: the page shows {:?}, its report {value}", self.get(key));
            let (low, high) = (first.as_f64(), last.as_f64());
            let ok = match (kind, value.as_f64()) {
                (Kind::State, _) => self.shows(key, first) || self.shows(key, last),
                (Kind::Time, Some(t)) => low < Some(t) && Some(t) <= high,
                (Kind::Count, Some(n)) => low <= Some(n) && Some(n) <= high,
                (Kind::Ratio, None) => low.is_none() || high.is_none(),
                (Kind::Ratio, Some(r)) => {
                    let (low, high) = (low.or(high).unwrap_or(r), high.or(low).unwrap_or(r));
                    let slack = 0.05 * low.abs().max(high.abs()) + 0.01;
                    low.min(high) - slack <= r && r <= low.max(high) + slack
                }
                (_, None) => false,
            };
            assert!(ok, "{key} ({kind:?}): the page shows {value}, the reports before and after {first} and {last}");
            if *kind == Kind::Count {
                assert_eq!(self.get(key).1, grouped(value.as_u64().expect("a count")), "{key}'s text");
            }
        }
        let text = |key: &str| self.get(key).1.to_owned();
        let value = |key: &str| self.get(key).0.to_owned();
        assert_eq!(text("status"), value("status").to_uppercase());
        assert_eq!(
            text("footprint.registry_bytes"),
            human_bytes(value("footprint.registry_bytes").parse().expect("bytes"))
        );
        for (key, ..) in &figures {
            let expected = match key.rsplit('.').next() {
                Some("verdict") => value(key).replace('_', " "),
                Some("state") => value(key).to_uppercase().replace('_', "-"),
                Some("alert") => {
                    let alert = value(key);
                    if alert == "none" { "no alert".to_owned() } else { alert.to_uppercase() }
                }
                _ => continue,
            };
            assert_eq!(text(key), expected, "{key}'s text");
        }
        let shown_rate: f64 = value("traffic.rate").parse().expect("a rate");
        assert!(
            (shown_rate - rate).abs() <= 0.35 * rate,
            "the page shows {shown_rate} requests/s, the shop served {rate}/s"
        );
    }
}

/// `n` with thousands separators, as the page writes counts.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes as the page writes them: binary units, at most four digits, two decimals below 10,
/// one above.
fn human_bytes(mut n: f64) -> String {
    let mut unit = 0;
    while n >= 1000.0 && unit < 4 {
        n /= 1024.0;
        unit += 1;
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    match unit {
        0 => format!("{} B", n.round()),
        _ if n < 10.0 => format!("{n:.2} {}", units[unit]),
        _ => format!("{n:.1} {}", units[unit]),
    }
}

/// The resident memory of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}

/// Ten dashboards polling every second for 20 s: what they cost the demo's process. A
/// measurement (ten Chromium pages load two cores for half a minute), run on demand:
/// `cargo test -p plimsoll-tests --test it --release ten_dashboards -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: ten Chromium pages for 20 s"]
fn ten_dashboards_polling_every_second() {
    const PAGES: usize = 10;
    const SECONDS: u64 = 20;
    if !browser_ready("ten_dashboards_polling_every_second") {
        return;
    }
    let (mut demo, exporter) = start(&[]);
    // The demo's own start-up and first traffic settle first.
    std::thread::sleep(Duration::from_secs(10));
    let idle = rss(demo.pid());
    let mut script =
        Script::start(&["load", &format!("http://{exporter}"), TOKEN, &PAGES.to_string(), &SECONDS.to_string()]);
    let mut peak = idle;
    // The script bounds its own time; meanwhile, the demo's RSS is read every half second.
    let waiter = std::thread::spawn(move || {
        let event = script.expect("load");
        script.succeeded();
        event
    });
    while !waiter.is_finished() {
        peak = peak.max(rss(demo.pid()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let event = waiter.join().expect("check.mjs failed");
    let after = rss(demo.pid());
    let polls: Vec<u64> = event["polls"].as_array().expect("polls").iter().filter_map(Value::as_u64).collect();
    println!(
        "dashboard: page {} bytes; demo RSS {idle} bytes before, peak {peak} with {PAGES} dashboards polling every \
         second for {SECONDS} s (+{} bytes), {after} after they closed; /api/report polls per page {polls:?}",
        PAGE.len(),
        peak - idle
    );
    assert_eq!(event["failures"], 0, "{event}");
    assert!(polls.len() == PAGES && polls.iter().all(|&n| n >= SECONDS - 5), "{event}");
    assert!(peak - idle < 16 << 20, "ten dashboards raised the demo's RSS by {} bytes", peak - idle);
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}
