//! Arbitrary label values and observations into a registry, rendered in every format
//! through small buffers: never panics, the text output is whole UTF-8 lines, and the
//! protobuf output is whole length-delimited messages, each within `max_message_len`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll_core::{Counter, Family, Format, GaugeF64, LatencyHistogram, Registry};
use std::sync::Once;

static REGISTRY: Registry<4> = Registry::new();
static COUNTS: Family<Counter, 2, 8, 8> = Family::new("fuzz_events", "Events \\ \"quoted\"\nhelp.", ["a", "b"]);
static LEVELS: Family<GaugeF64, 1, 4> = Family::new("fuzz_level", "Levels.", ["k"]);
static LATENCY: Family<LatencyHistogram, 1, 4> = Family::new("fuzz_seconds", "", ["k"]).unit("seconds");
static INIT: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    INIT.call_once(|| {
        REGISTRY.register(&COUNTS).unwrap();
        REGISTRY.register(&LEVELS).unwrap();
        REGISTRY.register(&LATENCY).unwrap();
    });
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('|');
    while let (Some(a), Some(b)) = (parts.next(), parts.next()) {
        COUNTS.with_label_values(&[a, b]).inc();
        let value = f64::from_bits(a.bytes().fold(0u64, |h, x| h.rotate_left(8) ^ u64::from(x)));
        LEVELS.with_label_values(&[b]).set(value);
        LATENCY.with_label_values(&[a]).record(value);
    }
    let buffer_len = REGISTRY.max_line_len() + data.first().copied().unwrap_or(0) as usize;
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let mut renderer = REGISTRY.renderer(format);
        let mut buf = vec![0u8; buffer_len];
        let mut out = Vec::new();
        while !renderer.is_done() {
            let n = renderer.render(&mut buf).expect("max_line_len bounds every line");
            assert!(n > 0 || renderer.is_done());
            out.extend_from_slice(&buf[..n]);
        }
        let text = std::str::from_utf8(&out).expect("exposition is UTF-8");
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            assert!(line.starts_with('#') || line.starts_with("fuzz_") || line.starts_with("plimsoll_"), "{line:?}");
        }
    }
    let limit = REGISTRY.max_message_len(Format::Protobuf);
    let mut renderer = REGISTRY.renderer(Format::Protobuf);
    let mut buf = vec![0u8; limit + data.first().copied().unwrap_or(0) as usize];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).expect("max_message_len bounds every message");
        out.extend_from_slice(&buf[..n]);
    }
    let mut rest = &out[..];
    while !rest.is_empty() {
        let (len, prefix) = varint(rest).expect("a length prefix");
        assert!(prefix + len <= limit, "message of {} bytes over the bound {limit}", prefix + len);
        rest = rest.get(prefix + len..).expect("a whole message");
    }
});

/// A varint at the start of `bytes`: its value and length.
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}
