//! `plimsoll leak-check`'s CSV trace reader on arbitrary bytes, and the core's leak verdict
//! on whatever it reads.
//!
//! The reader lives in the command (`adapters/src/cli/leak_check/trace.rs`), so it is
//! compiled here from the same source file. Checked for every input, with every time-unit
//! option and with and without skipping malformed rows: nothing panics; a row error names a
//! line of the input (counted at `\n`); an accepted trace has a header, at least two rows, and signals whose
//! samples are finite, non-negative bytes in time order starting at 0; and the core's
//! `Assessment` of each signal (at most 240 points, as the command buckets them) never
//! panics and gives a finite slope and a non-negative forecast.
#![no_main]
// The command's modules are compiled here for their reader only.
#![allow(dead_code)]

#[path = "../../adapters/src/cli/human.rs"]
mod human;
/// Where the reader finds `human`: `crate::cli::human`, as in the command.
mod cli {
    pub(crate) use super::human;
}
#[path = "../../adapters/src/cli/leak_check/trace.rs"]
mod trace;

use libfuzzer_sys::fuzz_target;
use plimsoll_core::{Assessment, LeakRules};
use std::path::Path;
use trace::{ReadOptions, TimeUnit, TraceError};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    for time_unit in [None, Some(TimeUnit::Seconds), Some(TimeUnit::Milliseconds), Some(TimeUnit::Rfc3339)] {
        for skip_malformed in [false, true] {
            let options = ReadOptions { time_unit, column: None, skip_malformed };
            match trace::parse(Path::new("fuzz.csv"), data, &options) {
                // Lines are counted at `\n` (as the csv crate does), so a file with bare `\r`
                // line ends reports its rows on line 1.
                Err(TraceError::Malformed { line, .. }) => {
                    assert!((1..=lines).contains(&line), "row error on line {line} of {lines}");
                }
                Err(error) => assert!(!error.to_string().is_empty()),
                Ok(trace) => {
                    assert!(trace.rows >= 2, "accepted {} rows", trace.rows);
                    assert!(!trace.signals.is_empty());
                    for signal in &trace.signals {
                        check_signal(&signal.samples);
                    }
                }
            }
        }
    }
});

fn check_signal(samples: &[(f64, f64)]) {
    let mut previous = f64::NEG_INFINITY;
    for &(ms, bytes) in samples {
        assert!(ms.is_finite() && ms >= 0.0, "time {ms}");
        assert!(ms >= previous, "times out of order: {previous} then {ms}");
        assert!(bytes.is_finite() && bytes >= 0.0, "bytes {bytes}");
        previous = ms;
    }
    // Bucket minima over at most 240 buckets, x in seconds, as the command judges them.
    let Some(&(last_ms, _)) = samples.last() else { return };
    let width = (last_ms / 240.0).max(1.0);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for &(ms, bytes) in samples {
        let x = (ms / width).floor() * width / 1_000.0;
        match points.last_mut() {
            Some(point) if point.0 == x => point.1 = point.1.min(bytes),
            _ => points.push((x, bytes)),
        }
    }
    let assessment = Assessment::of(&points, 0, &LeakRules::DEFAULT, Some(512 << 20));
    if let Some(slope) = assessment.slope_bytes_per_hour() {
        assert!(slope.is_finite(), "slope {slope}");
    }
    if let Some(eta) = assessment.eta_seconds {
        assert!(eta >= 0.0, "forecast {eta}");
    }
}
