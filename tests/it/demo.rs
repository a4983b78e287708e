//! `plimsoll demo` end to end: its shop's pages and rate limit, every monitor on
//! `/api/report` after real traffic, a scrape `promtool` accepts, a subsystem switched off,
//! the two profiles' footprints, and `--leak` growing the heap and RSS.
//!
//! Each demo runs under the `cli` module's guard (killed on drop, every wait bounded) on
//! ports picked by the kernel, and its traffic goes to its own shop over loopback.

use crate::cli::{DEADLINE, PROMETHEUS_ACCEPT, Plimsoll, env, scrape};
use crate::support::{dechunk, promtool_check};
use serde_json::Value;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// `demo ARGS --app-addr 127.0.0.1:0` with `vars` (and `PLIMSOLL_ADDR` on a free port):
/// the running demo, its exporter's address and its shop's.
fn start(args: &[&str], vars: &[(&'static str, &str)]) -> (Plimsoll, SocketAddr, SocketAddr) {
    let mut argv = vec!["demo", "--app-addr", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    let mut environment = env(&[]);
    environment.extend(vars.iter().map(|&(name, value)| (name, OsString::from(value))));
    let demo = Plimsoll::start(&argv, &environment);
    let exporter = demo.listening();
    let line = demo
        .stdout
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("no `app listening on` line ({e}); stderr:\n{}", demo.stderr()));
    let shop = line.strip_prefix("app listening on ").unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
    let shop = shop.parse().unwrap_or_else(|e| panic!("{shop:?}: {e}"));
    (demo, exporter, shop)
}

/// An answer: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `GET path` on a connection of its own, with `headers`.
fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("write timeout");
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
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

/// `GET path`, again while the shop answers with one of the server errors it makes on
/// purpose (0.1 to 0.5 % of requests), at most three times.
fn get_served(shop: SocketAddr, path: &str) -> Answer {
    let mut answer = get(shop, path, &[]);
    for _ in 0..2 {
        if answer.status < 500 {
            break;
        }
        answer = get(shop, path, &[]);
    }
    answer
}

/// The statuses of `n` requests for `path` from one client, sent one after another.
fn hammer(shop: SocketAddr, client: &str, path: &str, n: usize) -> Vec<Answer> {
    (0..n).map(|_| get(shop, path, &[("x-client-id", client)])).collect()
}

fn report(exporter: SocketAddr) -> Value {
    let answer = get(exporter, "/api/report", &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

/// The value of the sample whose line starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[test]
fn the_shop_serves_limits_and_reports_every_monitor() {
    let (mut demo, exporter, shop) = start(&["--rate", "1000"], &[]);
    let started = Instant::now();

    let home = get_served(shop, "/");
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.head.contains("content-type: text/html"), "{}", home.head);
    for link in ["href=\"/products/1\"", "action=\"/search\"", "action=\"/leads\"", "action=\"/checkout\"", "/login"] {
        assert!(home.body.contains(link), "the home page lacks {link}:\n{}", home.body);
    }
    assert_eq!(get_served(shop, "/products/42").status, 200);
    assert_eq!(get(shop, "/no/such/page", &[]).status, 404);

    // Unknown paths answer at once, so 40 of them come well within a second: past the burst
    // of 20, the client is refused.
    let answers = hammer(shop, "test-hammer", "/hammered", 40);
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(limited.len() >= 10, "statuses: {:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(limited.iter().all(|a| a.head.contains("\r\nretry-after: ")), "{}", limited[0].head);

    // A few seconds of traffic at 1,000 requests/s fill every monitor.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    let report = report(exporter);
    let breaker = &report["breakers"][0];
    assert_eq!(breaker["name"], "payment", "{report:#}");
    assert!(breaker["buffered_calls"].as_u64() > Some(0), "{breaker:#}");
    let limits = &report["rate_limits"][0];
    assert_eq!(limits["name"], "clients");
    assert!(limits["limited"].as_u64() >= Some(limited.len() as u64), "{limits:#}");
    for kind in ["rate_limited", "not_found", "auth_failure"] {
        assert!(report["security"]["by_kind"][kind].as_u64() > Some(0), "no {kind}: {:#}", report["security"]);
    }
    assert!(report["demo_top_limited_clients"][0]["count"].as_u64() > Some(0), "{report:#}");
    let queries = &report["slow_queries"];
    assert!(queries["queries_total"].as_u64() > Some(0), "{queries:#}");
    let top = queries["top_by_total_time"].as_array().expect("queries by total time");
    assert!(top.iter().all(|q| !q["text"].as_str().unwrap_or("").contains('\'')), "literals are folded: {queries:#}");
    let mut hinted = top.iter().filter_map(|q| q["index_hints"].as_array()).flatten().filter_map(Value::as_str);
    assert!(hinted.any(|hint| hint.starts_with("products (")), "{queries:#}");
    let spans = &report["slow_spans"];
    assert!(spans["recorded"].as_u64() > Some(1_000), "{spans:#}");
    let slowest = &spans["slowest"][0];
    assert!(slowest["trace_id"].as_str().is_some_and(|id| id.len() == 32), "{spans:#}");
    assert!(slowest["name"].as_str().is_some_and(|name| name.starts_with('/') || name == "unmatched"));

    let text = scrape(exporter, PROMETHEUS_ACCEPT);
    promtool_check(&text);
    for expected in [
        "demo_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
        "demo_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"429\"}",
        "demo_http_request_duration_seconds_count{route=\"/products/:id\"}",
        "plimsoll_ratelimit_decisions_total{limiter=\"clients\",decision=\"limited\"}",
        "plimsoll_security_events_total{kind=\"rate_limited\"}",
        "demo_top_limited_clients{rank=\"1\",key=\"",
        "plimsoll_query_duration_seconds_count{fingerprint=\"",
        "plimsoll_span_duration_seconds_count{span=\"/search\"}",
        "plimsoll_circuit_breaker_calls_total{name=\"payment\",kind=\"successful\"}",
    ] {
        assert!(text.contains(expected), "the scrape lacks {expected:?}:\n{text}");
    }
    assert!(!text.contains("/no/such/page") && !text.contains("/hammered"), "raw paths never become labels");
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}

#[test]
fn without_the_security_engine_nothing_is_limited_or_exported() {
    let (mut demo, exporter, shop) = start(&["--rate", "0"], &[("SECURITY_ENGINE_ENABLED", "false")]);
    let answers = hammer(shop, "test-hammer", "/hammered", 40);
    assert!(answers.iter().all(|a| a.status == 404), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    let text = scrape(exporter, PROMETHEUS_ACCEPT);
    assert!(text.contains("demo_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 40"), "{text}");
    for absent in ["plimsoll_ratelimit_", "plimsoll_security_", "demo_top_limited_clients"] {
        assert!(!text.contains(absent), "{absent} is exported with the security engine off:\n{text}");
    }
    let report = report(exporter);
    for absent in ["rate_limits", "security", "demo_top_limited_clients"] {
        assert!(report.get(absent).is_none(), "{absent} is reported with the security engine off: {report:#}");
    }
    assert!(report.get("breakers").is_some() && report.get("slow_spans").is_some(), "{report:#}");
    let stderr = demo.wait_for_stderr("plus the exporter's connections", DEADLINE);
    assert!(stderr.contains("security engine off") && !stderr.contains("rate limiter clients"), "{stderr}");
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}

/// The footprint report's monitor lines (`what -> bytes`) and its total.
fn footprints(vars: &[(&'static str, &str)]) -> (Vec<(String, u64)>, u64, String) {
    let (mut demo, _, _) = start(&["--rate", "0"], vars);
    let stderr = demo.wait_for_stderr("plus the exporter's connections", DEADLINE);
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
    let monitors = stderr
        .lines()
        .filter_map(|line| {
            let (what, bytes) = line.split_once(" monitor ")?;
            Some((what.split(" (").next()?.trim().to_owned(), bytes.trim().parse().ok()?))
        })
        .collect();
    let total = stderr
        .lines()
        .find_map(|line| line.strip_prefix("total: ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no total in\n{stderr}"));
    (monitors, total, stderr)
}

#[test]
fn the_large_profile_prints_larger_footprints() {
    let (small, small_total, stderr) = footprints(&[]);
    assert!(stderr.contains("monitors of profile small"), "{stderr}");
    let names: Vec<&str> = small.iter().map(|(what, _)| what.as_str()).collect();
    assert_eq!(
        names,
        [
            "rate limiter clients",
            "security events",
            "top limited clients",
            "slow queries",
            "slow spans",
            "circuit breaker payment"
        ],
        "{stderr}"
    );
    for vars in [&[("PLIMSOLL_PROFILE", "large")][..], &[("ENTERPRISE_MODE", "true")]] {
        let (large, large_total, stderr) = footprints(vars);
        assert!(stderr.contains("monitors of profile large"), "{vars:?}: {stderr}");
        assert_eq!(large.len(), small.len(), "{stderr}");
        for ((what, small_bytes), (_, large_bytes)) in small.iter().zip(&large) {
            if what == "circuit breaker payment" {
                assert_eq!(small_bytes, large_bytes, "the breaker is a policy, not a capacity");
            } else {
                assert!(large_bytes > small_bytes, "{what}: {large_bytes} <= {small_bytes}");
            }
        }
        assert!(large_total > small_total + 1_000_000, "{large_total} vs {small_total}");
    }
}

/// `--leak` at 32 MiB/s with a sample a second: over about 5 s the heap's last sample
/// rises by at least 80 % of what was leaked between the two samples read, and RSS by at
/// least 60 % (pages the allocator reuses need not all be new). The leak verdict itself
/// needs the monitor's 5-minute warm-up and ten 30 s buckets, about 10 minutes: longer than
/// a test should take, so only `not_enough_data` is checked here.
#[test]
fn a_leak_grows_the_heap_and_rss() {
    const RATE: f64 = 32.0 * 1_048_576.0;
    let (mut demo, exporter, _) = start(&["--rate", "0", "--leak", "32MiB/s"], &[("PLIMSOLL_SAMPLE_INTERVAL", "1s")]);
    std::thread::sleep(Duration::from_millis(1_500));
    let read = || {
        let text = scrape(exporter, PROMETHEUS_ACCEPT);
        let heap = sample(&text, "plimsoll_memory_bytes{signal=\"heap\",stat=\"last\"}");
        let rss = sample(&text, "plimsoll_memory_bytes{signal=\"rss\",stat=\"last\"}");
        (Instant::now(), heap, rss, text)
    };
    let (t1, heap1, rss1, _) = read();
    std::thread::sleep(Duration::from_secs(5));
    let (t2, heap2, rss2, text) = read();
    // Each read sees the sample of up to a second before it, and the leak allocates every
    // 100 ms: the samples are at least 1.2 s less apart than the reads.
    let leaked = RATE * (t2.duration_since(t1).as_secs_f64() - 1.2);
    assert!(heap2 - heap1 >= 0.8 * leaked, "heap {heap1} -> {heap2}, leaked about {leaked}");
    assert!(rss2 - rss1 >= 0.6 * leaked, "rss {rss1} -> {rss2}, leaked about {leaked}");
    assert!(text.contains("plimsoll_memory_verdict{signal=\"heap\",verdict=\"not_enough_data\"} 1"), "{text}");
    let stderr = demo.wait_for_stderr("; leaked ", DEADLINE);
    assert!(stderr.contains("demo: leaking 33554432 bytes per s, up to 1073741824 bytes (1 GiB)"), "{stderr}");
    assert!(stderr.contains("; memory rss not_enough_data"), "{stderr}");
    assert_eq!(demo.terminate().code(), Some(0), "stderr:\n{}", demo.stderr());
}
