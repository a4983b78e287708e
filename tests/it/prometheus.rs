//! End to end against a real Prometheus: three `plimsoll demo` instances and one
//! Prometheus server (loopback only, a temporary data directory, the rules `plimsoll
//! rules` generates, scrapes and rule evaluations every second), checked through
//! Prometheus' HTTP API:
//!
//! 1. `up` is 1 for all three instances;
//! 2. `sum(plimsoll_slo_events_total{slo="demo_latency"})` matches the sum of the
//!    instances' own `/api/report` figures (`windows.period.total`, which is every event
//!    of a process younger than its period). Prometheus holds each instance's last scrape,
//!    so its sum lags the instances by up to a scrape interval: the test reads the reports,
//!    waits [`SCRAPE_LAG`], queries Prometheus, then reads the reports again, and asserts
//!    `before <= prometheus <= after` (the documented tolerance: the events of those few
//!    seconds, printed);
//! 3. after an injected error burst on one instance, the generated page alert
//!    `PlimsollSLOPageBurn` (1h/5m) is pending or firing in Prometheus, and that
//!    instance's in-process page alert (on `/api/report`, and scraped by Prometheus as
//!    `plimsoll_slo_alert`) agrees.
//!
//! # The error burst
//!
//! The demo's SLO `demo_latency` counts a request bad when the shop takes over 300 ms to
//! answer it, body included. The burst is [`BURST`] form posts to the shop whose body
//! arrives [`SLOW_BODY`] after the head (each with its own client id, so the rate limiter
//! lets them all through): the shop measures every one as slow. The demo has no switch to
//! inject errors; this uses only its public HTTP interface.
//!
//! # The coverage guard
//!
//! The process judges a window only once it has observed all of it, so a demo started
//! seconds ago never pages in-process. The burst instance therefore starts from a snapshot
//! ([`write_history`]) holding one good event a minute for the last 70 minutes, written
//! with the library exactly as the demo writes its own (same SLOs, same order): its 1h
//! and 5m windows are covered from the start, its 6h window not. Prometheus has no such
//! guard and sees only what it scraped (the restored events arrive in the first scrape,
//! so `rate()` ignores them).
//!
//! Every process the test starts runs under a guard that kills it on drop, every wait has a
//! deadline, and the test skips, saying why, only when `prometheus` is not on PATH (`.ci/run`
//! installs the Debian package).

use crate::cli::{Plimsoll, env};
use crate::rules::{TempDir, generate};
use crate::support::dechunk;
use plimsoll::snapshot::SnapshotPart;
use plimsoll::{GoodEvent, Slo, StateFile};
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTANCES: usize = 3;
/// Requests per second each demo sends its shop.
const RATE: &str = "20";
/// Slow requests in the burst, and the connections sending them at once.
const BURST: usize = 600;
const BURST_CONNECTIONS: usize = 100;
/// How late each burst request's body arrives: over the SLO's 300 ms.
const SLOW_BODY: Duration = Duration::from_millis(400);
/// Between the reports read before and the query: more than two scrape intervals, so that
/// every instance has been scraped (and the sample committed) after its report.
const SCRAPE_LAG: Duration = Duration::from_millis(2500);
/// Bounds of the waits.
const UP_WITHIN: Duration = Duration::from_secs(20);
const ALERT_WITHIN: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The configured SLO besides the demo's, so that the rules hold more than one.
const SLOS: &str = "[[slo]]\nname = \"api\"\nobjective = 0.999\n";
const SLO: &str = "demo_latency";

/// The Prometheus server, killed on drop; its log in a file.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Prometheus with the rules `plimsoll rules` wrote into `dir/rules`.
    fn start(dir: &Path, targets: &[SocketAddr]) -> Self {
        let rules = format!("rule_files:\n  - \"{}\"\n", dir.join("rules/plimsoll-rules.yml").display());
        Self::start_with(dir, targets, &rules, &[])
    }

    /// Prometheus with `extra_config` (top-level YAML) and extra command-line `flags`.
    fn start_with(dir: &Path, targets: &[SocketAddr], extra_config: &str, flags: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n{extra_config}\
             scrape_configs:\n  - job_name: plimsoll\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let log = dir.join("prometheus.log");
        let log_file = File::create(&log).expect("create the log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log"))
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        Self { child, address, log }
    }

    /// Fails the test with `what` and the server's log.
    fn fail(&self, what: &str) -> ! {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("{what}\n--- prometheus log ---\n{log}")
    }

    /// The API's `data`; `None` while it does not answer (starting up).
    fn api(&self, path_and_query: &str) -> Option<Value> {
        let (status, body) = get(self.address, path_and_query).ok()?;
        let json: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && json["status"] == "success").then(|| json["data"].clone())
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", encode(promql)))
            .and_then(|data| data["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The value of a query that gives one sample.
    fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET` over a fresh HTTP/1.1 connection: the status and the body (de-chunked).
fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let bad = || std::io::Error::other(format!("malformed response: {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A demo instance: its exporter and its shop.
struct Instance {
    process: Plimsoll,
    exporter: SocketAddr,
    shop: SocketAddr,
}

impl Instance {
    fn start(dir: &Path, state: Option<&Path>) -> Self {
        let config = dir.join("slos.toml");
        let mut settings = vec![("PLIMSOLL_CONFIG", config.as_path())];
        settings.extend(state.map(|state| ("PLIMSOLL_STATE_DIR", state)));
        let process = Plimsoll::start(&["demo", "--rate", RATE, "--app-addr", "127.0.0.1:0"], &env(&settings));
        let exporter = process.listening();
        let line = process.stdout.recv_timeout(IO_TIMEOUT * 2).unwrap_or_else(|e| {
            panic!("no `app listening on` line ({e}); stderr:\n{}", process.stderr());
        });
        let shop = line
            .strip_prefix("app listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
        Self { process, exporter, shop }
    }

    /// `/api/report`'s entry for the demo's SLO.
    fn slo_report(&self) -> Value {
        let (status, body) = get(self.exporter, "/api/report").expect("GET /api/report");
        assert_eq!(status, 200, "{body}");
        let report: Value = serde_json::from_str(&body).expect("a JSON report");
        let slos = report["slos"].as_array().expect("a slos array");
        slos.iter().find(|slo| slo["name"] == SLO).cloned().expect("the demo's SLO")
    }

    fn events(&self) -> u64 {
        self.slo_report()["windows"]["period"]["total"].as_u64().expect("period.total")
    }
}

/// The burst instance's state: the SLOs the demo builds with [`SLOS`] (the configured one,
/// then its own), with one good event a minute for the last 70 minutes in `demo_latency`.
fn write_history(dir: &Path) {
    let api: Slo = Slo::new("api", 0.999, GoodEvent::Success);
    let demo: Slo = Slo::new(SLO, 0.99, GoodEvent::LatencyAtMost(0.3));
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64;
    for minutes_ago in (1..=70u64).rev() {
        demo.record(now_ms - minutes_ago * 60_000, true);
    }
    let parts: [&dyn SnapshotPart; 2] = [&api, &demo];
    let mut file = StateFile::new(dir, &parts).expect("a state file");
    file.save(&parts, now_ms).expect("save the history");
}

/// Sends `BURST` slow form posts to `shop`; returns how many were answered.
fn slow_burst(shop: SocketAddr) -> usize {
    let per_connection = BURST / BURST_CONNECTIONS;
    let threads: Vec<_> = (0..BURST_CONNECTIONS)
        .map(|connection| {
            std::thread::spawn(move || {
                let mut answered = 0;
                for n in 0..per_connection {
                    let body = "email=burst%40example.com";
                    let head = format!(
                        "POST /leads HTTP/1.1\r\nHost: shop\r\nx-client-id: burst-{connection}-{n}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        body.len()
                    );
                    let sent = (|| {
                        let mut stream = TcpStream::connect_timeout(&shop, IO_TIMEOUT)?;
                        stream.set_read_timeout(Some(IO_TIMEOUT))?;
                        stream.write_all(head.as_bytes())?;
                        std::thread::sleep(SLOW_BODY);
                        stream.write_all(body.as_bytes())?;
                        let mut response = Vec::new();
                        stream.read_to_end(&mut response)?;
                        Ok::<_, std::io::Error>(
                            response.starts_with(b"HTTP/1.1 ") && !response.starts_with(b"HTTP/1.1 429"),
                        )
                    })();
                    answered += usize::from(sent.unwrap_or(false));
                }
                answered
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("a burst thread")).sum()
}

/// The wall clock, as Prometheus stamps samples.
fn unix_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

/// Polls `check` every 250 ms until it holds or `within` passes; returns when it held.
fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_three_demos_and_pages_with_them() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED prometheus_scrapes_three_demos_and_pages_with_them: prometheus is not on PATH \
             (install the Debian package `prometheus`, as .ci/run does)"
        );
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("prometheus");
    std::fs::write(dir.0.join("slos.toml"), SLOS).expect("write the SLOs");
    let config = dir.0.join("slos.toml");
    generate(&["--config", config.to_str().expect("UTF-8"), "--demo"], &dir.0.join("rules"));
    let state = dir.0.join("state0");
    write_history(&state);

    let instances: Vec<Instance> =
        (0..INSTANCES).map(|i| Instance::start(&dir.0, (i == 0).then_some(state.as_path()))).collect();
    let burst = &instances[0];
    // The burst instance restored its history (said on stderr before it listened).
    burst.process.wait_for_stderr("state: restored", IO_TIMEOUT);
    let targets: Vec<SocketAddr> = instances.iter().map(|i| i.exporter).collect();
    let prometheus = Prometheus::start(&dir.0, &targets);

    // 1. Every instance is up.
    let up = wait_until(UP_WITHIN, || {
        let up = prometheus.query("up");
        up.len() == INSTANCES && up.iter().all(|s| s["value"][1] == "1")
    })
    .unwrap_or_else(|| prometheus.fail(&format!("up is not 1 for all {INSTANCES} instances within {UP_WITHIN:?}")));
    eprintln!(
        "prometheus: all {INSTANCES} instances up {up:?} after it started ({:?} since the test's start)",
        started.elapsed()
    );
    let rules = prometheus.api("/api/v1/rules").unwrap_or_else(|| prometheus.fail("no /api/v1/rules"));
    let groups = rules["groups"].as_array().map_or(0, Vec::len);
    assert_eq!(groups, 4, "two groups per SLO (api, demo_latency) loaded: {rules}");

    // 2. The counter's sum over the instances, against their own reports. The bracket
    //    holds once every instance's newest sample was scraped after its report; a scrape
    //    that came late (a loaded machine) makes the test try again, at most 5 times.
    let series = format!("plimsoll_slo_events_total{{slo=\"{SLO}\"}}");
    let mut compared = None;
    for _ in 0..5 {
        let reported_at = unix_seconds();
        let before: u64 = instances.iter().map(Instance::events).sum();
        std::thread::sleep(SCRAPE_LAG);
        let oldest = prometheus.value(&format!("min(timestamp({series}))"));
        let summed = prometheus.value(&format!("sum({series})"));
        let after: u64 = instances.iter().map(Instance::events).sum();
        match (oldest, summed) {
            (Some(oldest), Some(summed)) if oldest > reported_at => {
                compared = Some((before, summed, after, oldest - reported_at));
                break;
            }
            _ => eprintln!("events: a scrape older than the reports ({oldest:?} <= {reported_at}); again"),
        }
    }
    let (before, summed, after, lag) =
        compared.unwrap_or_else(|| prometheus.fail("no comparison: Prometheus held no sample newer than the reports"));
    eprintln!(
        "events: reports {before} before, Prometheus {summed} {SCRAPE_LAG:?} later (its oldest sample {lag:.3} s \
         after the reports), reports {after} after (tolerance {} events)",
        after - before
    );
    assert!(
        before as f64 <= summed && summed <= after as f64,
        "Prometheus' sum {summed} is not between the reports' {before} and {after}"
    );

    // 3. Before the burst, neither pages (reported, not asserted: a slow machine's latencies
    //    are the demo's to judge).
    let page_alert = || -> Option<String> {
        let alerts = prometheus.api("/api/v1/alerts")?;
        alerts["alerts"].as_array()?.iter().find_map(|alert| {
            let labels = &alert["labels"];
            (labels["alertname"] == "PlimsollSLOPageBurn" && labels["slo"] == SLO && labels["long"] == "1h")
                .then(|| alert["state"].as_str().unwrap_or_default().to_owned())
        })
    };
    eprintln!(
        "before the burst: Prometheus page alert {:?}, in-process page {}",
        page_alert(),
        burst.slo_report()["alerts"]["page"]
    );

    let burst_start = Instant::now();
    let answered = slow_burst(burst.shop);
    eprintln!("burst: {answered} of {BURST} slow requests answered in {:?}", burst_start.elapsed());
    assert!(answered >= BURST * 9 / 10, "the shop answered only {answered} of {BURST} burst requests");

    let mut prometheus_at = None;
    let mut in_process_at = None;
    let mut scraped_at = None;
    let scraped_alert = format!("max(plimsoll_slo_alert{{slo=\"{SLO}\",severity=\"page\"}})");
    let held = wait_until(ALERT_WITHIN, || {
        let elapsed = burst_start.elapsed();
        if prometheus_at.is_none() && page_alert().is_some_and(|state| state == "pending" || state == "firing") {
            prometheus_at = Some(elapsed);
        }
        if in_process_at.is_none() && burst.slo_report()["alerts"]["page"] == true {
            in_process_at = Some(elapsed);
        }
        if scraped_at.is_none() && prometheus.value(&scraped_alert) == Some(1.0) {
            scraped_at = Some(elapsed);
        }
        prometheus_at.is_some() && in_process_at.is_some() && scraped_at.is_some()
    });
    let report = burst.slo_report();
    let burn = |w: &str| prometheus.value(&format!("slo:plimsoll_burn_rate:rate{w}{{slo=\"{SLO}\"}}"));
    eprintln!(
        "after the burst: Prometheus page alert {:?} at {prometheus_at:?} (burn rates 5m {:?}, 1h {:?}); \
         in-process page at {in_process_at:?} (burn rates 5m {}, 1h {}), scraped as plimsoll_slo_alert at \
         {scraped_at:?}; other instances' in-process page: {:?}",
        page_alert(),
        burn("5m"),
        burn("1h"),
        report["windows"]["5m"]["burn_rate"],
        report["windows"]["1h"]["burn_rate"],
        instances[1..].iter().map(|i| i.slo_report()["alerts"]["page"].clone()).collect::<Vec<_>>(),
    );
    if held.is_none() {
        prometheus.fail(&format!(
            "within {ALERT_WITHIN:?} of the burst: Prometheus page alert {prometheus_at:?}, in-process page \
             {in_process_at:?}, scraped in-process alert {scraped_at:?}; report: {report}"
        ));
    }
    eprintln!("prometheus end to end: {:?} in all", started.elapsed());
    drop(prometheus);
    drop(instances);
}

/// Prometheus with native histograms on scrapes an exporter's protobuf exposition, and
/// `histogram_quantile(0.99, …)` over the native histogram agrees with the in-process p99:
/// both fall in the same bucket, so they differ by at most half its width relative to the
/// in-process estimate (its midpoint), `(γ - 1) / 2` = 2.2 % at schema 4.
#[test]
fn prometheus_scrapes_native_histograms_over_protobuf() {
    use plimsoll::exporter::Exporter;
    use plimsoll::{Family, LatencyHistogram, Registry};
    if Command::new("prometheus").arg("--version").output().is_err() {
        eprintln!("SKIPPED prometheus_scrapes_native_histograms_over_protobuf: prometheus is not on PATH");
        return;
    }
    static REGISTRY: Registry<16> = Registry::new();
    static LATENCY: Family<LatencyHistogram, 1, 4> =
        Family::new("checkout_latency_seconds", "Checkout latency.", ["route"]);
    REGISTRY.register(&LATENCY).expect("a valid family");
    // 1,000 values spread over three decades; a few in the zero bucket.
    let values: Vec<f64> = (0..1_000).map(|i| if i < 5 { 0.0 } else { 2e-4 * 1.007f64.powi(i) }).collect();
    let series = LATENCY.with_label_values(&["/pay"]);
    values.iter().for_each(|&v| series.record(v));
    let in_process = series.quantile(0.99).expect("a p99");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let exporter = runtime
        .block_on(Exporter::builder(&REGISTRY).address("127.0.0.1:0".parse().expect("an address")).bind())
        .expect("the exporter binds");
    let dir = TempDir::new("native-histograms");
    let prometheus =
        Prometheus::start_with(&dir.0, &[exporter.local_addr()], "", &["--enable-feature=native-histograms"]);

    let selector = r#"checkout_latency_seconds{route="/pay"}"#;
    let scraped = wait_until(UP_WITHIN, || prometheus.value(&format!("histogram_count({selector})")).is_some());
    if scraped.is_none() {
        prometheus.fail("no native histogram was scraped");
    }
    assert_eq!(prometheus.value(&format!("histogram_count({selector})")), Some(1_000.0));
    let sum: f64 = values.iter().sum();
    let scraped_sum = prometheus.value(&format!("histogram_sum({selector})")).expect("a sum");
    assert!((scraped_sum - sum).abs() <= 1e-9 * sum, "sum {scraped_sum} vs {sum}");
    assert!(
        prometheus.query(r#"checkout_latency_seconds_bucket"#).is_empty(),
        "ingested as a native histogram, not as classic buckets"
    );
    let p99 = prometheus.value(&format!("histogram_quantile(0.99, {selector})")).expect("a p99");
    let gamma = 2f64.powf(2f64.powi(-i32::from(LatencyHistogram::SCHEMA)));
    let bound = (gamma - 1.0) / 2.0;
    let error = (p99 - in_process).abs() / in_process;
    eprintln!("p99: Prometheus {p99}, in process {in_process}, relative difference {error:.4} (bound {bound:.4})");
    assert!(error <= bound * (1.0 + 1e-9), "p99 {p99} vs in-process {in_process}: {error} > {bound}");
    drop(prometheus);
    drop(exporter);
}
