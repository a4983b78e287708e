//! The HTTP exporter's request handling: arbitrary bytes sent to a running exporter (with a
//! bearer token and a registry of counters, a histogram and an SLO) over loopback, parsed
//! by hyper and routed, authorised and answered by the exporter's own code.
//!
//! Checked for every input: nothing panics (a panic in any server task aborts the fuzzer);
//! every answer starts with an HTTP/1.1 (or, to an HTTP/1.0 request, 1.0) status line whose status is one the exporter
//! documents (200, 400, 401, 404, 405, 431, 503) or hyper's own for a malformed request
//! (400, 413, 414, 501, 505); and afterwards the exporter still answers a fresh request
//! on a new connection (`/health/live`), so no input can wedge it or use up its connection
//! limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll::{Counter, Exporter, Family, GoodEvent, LatencyHistogram, Limits, Registry, Slo, SloExport};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

static REGISTRY: Registry<32> = Registry::new();
static REQUESTS: Family<Counter, 2, 16> = Family::new("http_requests", "Requests.", ["method", "status"]);
static LATENCY: Family<LatencyHistogram, 1, 4> =
    Family::new("http_request_duration_seconds", "Latency.", ["route"]).unit("seconds");
static API: Slo = Slo::new("api", 0.999, GoodEvent::Success);
static SLOS: SloExport<1> = SloExport::new();

/// Status codes an answer may carry.
const ALLOWED: [&[u8]; 11] = [b"200", b"400", b"401", b"404", b"405", b"413", b"414", b"431", b"501", b"503", b"505"];

/// The exporter, started once per process on its own runtime thread.
fn exporter() -> SocketAddr {
    static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();
    *ADDRESS.get_or_init(|| {
        REGISTRY.register(&REQUESTS).unwrap();
        REGISTRY.register(&LATENCY).unwrap();
        REQUESTS.with_label_values(&["GET", "200"]).inc();
        LATENCY.with_label_values(&["/users/:id"]).record(0.012);
        SLOS.add(&API).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let limits = Limits { header_read_timeout: Duration::from_secs(2), ..Limits::DEFAULT };
                let exporter = Exporter::builder(&REGISTRY)
                    .address("127.0.0.1:0".parse().unwrap())
                    .token(Some("fuzz-token".to_owned()))
                    .slos(&SLOS)
                    .limits(limits)
                    .bind()
                    .await
                    .expect("the exporter binds on loopback");
                sender.send(exporter.local_addr()).unwrap();
                exporter.serve(std::future::pending()).await;
            });
        });
        receiver.recv().expect("the exporter started")
    })
}

/// Sends `request`, closes the write side, and returns what came back.
fn exchange(address: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("the exporter accepts");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The exporter may answer and close before reading everything (431, 400): a reset
    // or broken pipe while writing is an answer, not a failure.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the answer failed: {e} (after {} bytes)", answer.len()),
    }
    answer
}

fn status(answer: &[u8]) -> &[u8] {
    // hyper answers an HTTP/1.0 request in kind.
    let http = answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 ");
    assert!(http, "not an HTTP/1.x answer: {:?}", String::from_utf8_lossy(answer));
    &answer[9..12.min(answer.len())]
}

fuzz_target!(|data: &[u8]| {
    let address = exporter();
    let answer = exchange(address, data);
    if !answer.is_empty() {
        let code = status(&answer);
        assert!(ALLOWED.contains(&code), "status {:?}", String::from_utf8_lossy(code));
    }
    let live = exchange(address, b"GET /health/live HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n\r\n");
    assert!(!live.is_empty(), "no answer to a fresh request after {:?}", String::from_utf8_lossy(data));
    assert_eq!(status(&live), b"200", "the exporter stopped answering");
});
