//! SQL fingerprinting and index hints on arbitrary bytes.
//!
//! Checked for every input: nothing panics or hangs; the fingerprint's text is a prefix of
//! the streamed normalisation, cut at a character boundary, flagged truncated exactly when
//! it is shorter; the hash is never 0 and equals that of the same input as `&str` when it is
//! UTF-8; normalising the normalised text changes nothing (a fixed point, so equal
//! structures get equal fingerprints however they are spaced); and every hint's table and
//! column are pieces of the text the hints were read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plimsoll_core::query::fingerprint::{Fingerprint, normalize};
use plimsoll_core::query::hints::Hints;

fuzz_target!(|data: &[u8]| {
    let mut full = String::new();
    normalize(data, |piece| full.push_str(piece));
    let short: Fingerprint<64> = Fingerprint::of_bytes(data);
    assert!(full.starts_with(short.text()), "text {:?} is not a prefix of {full:?}", short.text());
    assert_eq!(short.is_truncated(), short.text().len() < full.len());
    assert_ne!(short.hash(), 0);
    let long: Fingerprint<4096> = Fingerprint::of_bytes(data);
    assert_eq!(long.hash(), short.hash(), "the hash covers the whole text, whatever is kept");
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(Fingerprint::<64>::of(text).hash(), short.hash());
    }

    let mut again = String::new();
    normalize(full.as_bytes(), |piece| again.push_str(piece));
    assert_eq!(again, full, "normalising a normalised text changed it");

    let hints: Hints<'_, 16> = Hints::of(&full);
    let within = |piece: &str| {
        let (start, end) = (full.as_ptr() as usize, full.as_ptr() as usize + full.len());
        (start..=end).contains(&(piece.as_ptr() as usize)) && piece.as_ptr() as usize + piece.len() <= end
    };
    for hint in hints.as_slice() {
        assert!(within(hint.column), "column {:?} not from the text", hint.column);
        assert!(hint.table.is_none_or(within), "table {:?} not from the text", hint.table);
    }
    for index in hints.indexes() {
        assert!(index.columns().count() > 0, "an index of no column");
    }
});
