//! Validation of metric names, label names and units (the Prometheus data model).

/// Longest metric or label name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest help text accepted, in bytes.
pub const MAX_HELP_LEN: usize = 1024;

/// Suffixes the exposition formats append to sample names; a family name may not end
/// with one, so that no two families can produce the same sample name.
const RESERVED_SUFFIXES: [&str; 5] = ["_total", "_created", "_bucket", "_count", "_sum"];

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn is_metric_name(name: &str) -> bool {
    is_identifier(name, |b| b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, at most [`MAX_NAME_LEN`] bytes, not starting with `__`.
pub(crate) fn is_label_name(name: &str) -> bool {
    is_identifier(name, |_| false) && !name.starts_with("__")
}

/// `[a-zA-Z0-9_]+`, at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn is_unit(unit: &str) -> bool {
    !unit.is_empty() && unit.len() <= MAX_NAME_LEN && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) fn has_reserved_suffix(name: &str) -> bool {
    RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

fn is_identifier(name: &str, extra: impl Fn(u8) -> bool) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || extra(b);
    bytes.len() <= MAX_NAME_LEN && start(first) && rest.iter().all(|&b| start(b) || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for ok in ["a", "_a", "http_requests", "a:b", "A9_"] {
            assert!(is_metric_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b", &"a".repeat(129)] {
            assert!(!is_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("method") && is_label_name("_x"));
        for bad in ["", "__name__", "__x", "a:b", "9", "a-b"] {
            assert!(!is_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn units_and_suffixes() {
        assert!(is_unit("seconds") && is_unit("bytes") && !is_unit("") && !is_unit("a b"));
        assert!(has_reserved_suffix("x_total") && has_reserved_suffix("x_bucket"));
        assert!(!has_reserved_suffix("x_totals"));
    }
}
