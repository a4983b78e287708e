//! `plimsoll serve` under attack, as a separate process whose memory is read from `/proc`:
//! a flood of silent connections far over the cap, slowloris clients trickling their heads,
//! busy kept-alive clients, oversized heads, wrong tokens, wrong methods and unknown paths,
//! all at once for a few seconds. Meanwhile a well-behaved client must get `/health/live`
//! and `/metrics` (99 % within 1 s, all within 2 s), and the process's anonymous memory must
//! stay within the exporter's documented connection bound (as its footprint report states
//! it) above its size before the attack, its RSS within that bound and the code the attack
//! pages in.

use crate::cli::{Plimsoll, env};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const ATTACK: Duration = Duration::from_secs(5);
const TOKEN: &str = "s3cret-token";
/// Allowed beyond the exporter's stated connection bound in RSS: the pages of this debug
/// build's code that only the attack's error paths (431, 401, 405, 404, preemption) run.
/// Anonymous memory gets no allowance: it must stay within the bound itself.
const RSS_SLACK_BYTES: u64 = 2 << 20;

/// The exporter's documented worst case for its connections, in bytes, as the start-up
/// footprint report states it (`Limits::connection_memory_bound` of the limits in effect).
fn stated_bound(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("plus the exporter's connections:"))
        .unwrap_or_else(|| panic!("no connection bound in the footprint report:\n{stderr}"));
    let kib = line.split("at most about ").nth(1).and_then(|rest| rest.split(' ').next());
    kib.and_then(|kib| kib.parse::<u64>().ok()).unwrap_or_else(|| panic!("unreadable bound: {line}")) * 1024
}

/// A `/proc/PID/status` field in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kib * 1024
}

/// One request on its own connection; the status code, or `None` if the connection failed.
fn request(address: SocketAddr, head: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let status = std::str::from_utf8(answer.get(9..12)?).ok()?;
    status.parse().ok()
}

#[test]
fn under_attack_it_keeps_answering_and_its_memory_stays_bounded() {
    let mut settings = env(&[]);
    settings.push(("PLIMSOLL_TOKEN", OsString::from(TOKEN)));
    let server = Plimsoll::start(&["serve"], &settings);
    let address = server.listening();
    let pid = server.pid();
    let metrics =
        format!("GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n");
    let live = "GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    // Warm up: the first scrapes size hyper's and the pool's buffers.
    for _ in 0..20 {
        assert_eq!(request(address, &metrics), Some(200));
    }
    let (before, anon_before) = (status_bytes(pid, "VmRSS"), status_bytes(pid, "RssAnon"));
    let bound = stated_bound(&server.stderr());

    let stop = AtomicBool::new(false);
    let attacks = AtomicU64::new(0);
    let anon_peak = AtomicU64::new(anon_before);
    let (worst, answered, over_a_second) = std::thread::scope(|scope| {
        // The server's anonymous memory (its heap, without the binary's pages), every 5 ms.
        scope.spawn(|| {
            while !stop.load(Relaxed) {
                anon_peak.fetch_max(status_bytes(pid, "RssAnon"), Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // Silent connections, over and over: up to 1,000 held at once.
        scope.spawn(|| {
            let mut held = std::collections::VecDeque::new();
            while !stop.load(Relaxed) {
                if let Ok(stream) = TcpStream::connect(address) {
                    held.push_back(stream);
                    attacks.fetch_add(1, Relaxed);
                }
                if held.len() > 1_000 {
                    held.pop_front();
                }
            }
        });
        // Slowloris: 50 clients trickling a head one byte every 100 ms.
        scope.spawn(|| {
            let mut trickling: Vec<TcpStream> = Vec::new();
            let head = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            let mut at = 0;
            while !stop.load(Relaxed) {
                trickling.retain_mut(|s| s.write_all(&head[at % head.len()..][..1]).is_ok());
                while trickling.len() < 50 {
                    match TcpStream::connect(address) {
                        Ok(stream) => trickling.push(stream),
                        Err(_) => break,
                    }
                    attacks.fetch_add(1, Relaxed);
                }
                at += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // Busy kept-alive clients: 4 × 25 connections, each sending its next request as soon
        // as the last is answered, reconnecting when the server closes it.
        for _ in 0..4 {
            scope.spawn(|| {
                let request = b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n";
                let connect = || {
                    let stream = TcpStream::connect(address).ok()?;
                    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                    Some(stream)
                };
                let mut busy: Vec<Option<TcpStream>> = (0..25).map(|_| None).collect();
                let mut buf = [0u8; 1024];
                while !stop.load(Relaxed) {
                    for slot in &mut busy {
                        if slot.is_none() {
                            *slot = connect();
                            attacks.fetch_add(1, Relaxed);
                        }
                        if slot.as_mut().is_some_and(|s| s.write_all(request).is_err()) {
                            *slot = None;
                        }
                    }
                    for slot in &mut busy {
                        if slot.as_mut().is_some_and(|s| !matches!(s.read(&mut buf), Ok(n) if n > 0)) {
                            *slot = None;
                        }
                    }
                }
            });
        }
        // Oversized heads, wrong tokens, wrong methods, unknown paths.
        scope.spawn(|| {
            let oversized = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(64 << 10));
            let bad = [
                oversized.as_str(),
                "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n",
                "DELETE /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                "\x16\x03\x01\x02\x00garbage\r\n\r\n",
            ];
            let mut i = 0;
            while !stop.load(Relaxed) {
                let _ = request(address, bad[i % bad.len()]);
                attacks.fetch_add(1, Relaxed);
                i += 1;
            }
        });

        // The well-behaved client, meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let (mut worst, mut answered, mut over_a_second) = (Duration::ZERO, 0, 0u32);
        while started.elapsed() < ATTACK {
            for head in [live, metrics.as_str()] {
                let asked = Instant::now();
                assert_eq!(request(address, head), Some(200), "a well-behaved request failed under attack");
                worst = worst.max(asked.elapsed());
                over_a_second += u32::from(asked.elapsed() >= Duration::from_secs(1));
                answered += 1;
            }
        }
        stop.store(true, Relaxed);
        (worst, answered, over_a_second)
    });
    let peak = status_bytes(pid, "VmHWM");
    let grown = peak.saturating_sub(before);
    let anon_grown = anon_peak.load(Relaxed).saturating_sub(anon_before);
    println!(
        "under {} attacking connections and requests in {ATTACK:?}: {answered} good requests, slowest {worst:?}; \
         RSS {before} bytes before, peak {peak} (+{grown}); anonymous +{anon_grown}; stated bound {bound}",
        attacks.load(Relaxed)
    );
    // Within 1 s, allowing a rare straggler when CI runs this beside the other process tests
    // on two cores (one request of ~4,000 once took 1.03 s); none may take 2 s.
    assert!(over_a_second <= answered / 100, "{over_a_second} of {answered} well-behaved requests took over 1 s");
    assert!(worst < Duration::from_secs(2), "a well-behaved request took {worst:?}");
    assert!(anon_grown <= bound, "the heap grew by {anon_grown} bytes under attack, over the bound {bound}");
    assert!(grown <= bound + RSS_SLACK_BYTES, "peak RSS grew by {grown} bytes under attack, over the bound {bound}");
    // Still serving once the attack stops.
    assert_eq!(request(address, live), Some(200));
}
