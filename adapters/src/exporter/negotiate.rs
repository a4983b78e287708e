//! Content negotiation for `/metrics`: Prometheus protobuf or OpenMetrics when the
//! `Accept` header prefers it, Prometheus text otherwise.
//!
//! Prometheus sends, for example,
//! `application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1`.
//! Each media range is weighed by its `q` (default 1), ties going to the more specific
//! range (`type/subtype` over `type/*` over `*/*`) and then to the earlier one, as
//! Prometheus's own negotiation does. `application/openmetrics-text` counts when its
//! `version` is absent, `1.0.0` or `0.0.1` (1.0.0 is served for both); `text/plain` (any
//! version: 0.0.4 is served), `text/*` and `*/*` mean Prometheus text.
//! `application/vnd.google.protobuf` counts only with `proto=io.prometheus.client.MetricFamily`
//! and `encoding=delimited`, what Prometheus sends when it scrapes native histograms. A header that
//! accepts neither, or none at all, gets Prometheus text rather than a 406: a scraper that
//! can read anything reads that. A `q` is read as RFC 9110's `qvalue` (`0`, `1`, or either
//! with a fraction, `1` only with zeros), in thousandths, digits past the third ignored; a
//! range with any other `q` is skipped. Parsing borrows the header and never allocates.

use plimsoll_core::Format;

/// The format to serve for the `Accept` header values `accept` (all of them, in order).
pub(crate) fn negotiate<'a>(accept: impl IntoIterator<Item = &'a [u8]>) -> Format {
    let mut best: Option<(u16, u8, Format)> = None;
    for value in accept {
        for range in value.split(|&b| b == b',') {
            let Some((q, specificity, format)) = weigh(range) else { continue };
            if best.is_none_or(|(bq, bs, _)| (q, specificity) > (bq, bs)) {
                best = Some((q, specificity, format));
            }
        }
    }
    best.map_or(Format::Prometheus, |(_, _, format)| format)
}

/// A `qvalue` in thousandths: `0`, `0.5`, `0.125`, `1`, `1.000`; `None` if malformed or
/// above 1.
fn qvalue(text: &[u8]) -> Option<u16> {
    let (&unit, rest) = text.split_first()?;
    let fraction = match rest {
        [] => &[][..],
        [b'.', digits @ ..] if digits.iter().all(u8::is_ascii_digit) => digits,
        _ => return None,
    };
    let thousandths = (0..3).fold(0, |sum, i| sum * 10 + u16::from(fraction.get(i).map_or(0, |d| d - b'0')));
    match unit {
        b'0' => Some(thousandths),
        b'1' if fraction.iter().all(|&d| d == b'0') => Some(1000),
        _ => None,
    }
}

/// `(q, specificity, format)` of one media range, or `None` if it is not acceptable
/// (unknown type, unsupported version, `q=0`, malformed `q`).
fn weigh(range: &[u8]) -> Option<(u16, u8, Format)> {
    let mut parts = range.split(|&b| b == b';');
    let media = parts.next()?.trim_ascii();
    let mut q = 1000;
    let mut version: Option<&[u8]> = None;
    let (mut proto, mut encoding): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    for param in parts {
        let param = param.trim_ascii();
        let eq = param.iter().position(|&b| b == b'=')?;
        let (name, value) = (param[..eq].trim_ascii(), param[eq + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"q") {
            q = qvalue(value)?;
        } else if name.eq_ignore_ascii_case(b"version") {
            version = Some(value);
        } else if name.eq_ignore_ascii_case(b"proto") {
            proto = Some(value);
        } else if name.eq_ignore_ascii_case(b"encoding") {
            encoding = Some(value);
        }
    }
    if q == 0 {
        return None;
    }
    let is = |text: &[u8]| media.eq_ignore_ascii_case(text);
    let (specificity, format) = if is(b"application/vnd.google.protobuf") {
        match (proto, encoding) {
            (Some(b"io.prometheus.client.MetricFamily"), Some(b"delimited")) => (2, Format::Protobuf),
            _ => return None,
        }
    } else if is(b"application/openmetrics-text") {
        match version {
            None | Some(b"1.0.0") | Some(b"0.0.1") => (2, Format::OpenMetrics),
            Some(_) => return None,
        }
    } else if is(b"text/plain") {
        (2, Format::Prometheus)
    } else if is(b"text/*") {
        (1, Format::Prometheus)
    } else if is(b"*/*") {
        (0, Format::Prometheus)
    } else {
        return None;
    };
    Some((q, specificity, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn for_header(accept: &str) -> Format {
        negotiate([accept.as_bytes()])
    }

    #[test]
    fn what_prometheus_sends() {
        let cases = [
            // Prometheus 2.x.
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            // Prometheus 3.x, with UTF-8 escaping parameters.
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "application/openmetrics-text",
            "Application/OpenMetrics-Text; Version=1.0.0",
        ];
        for accept in cases {
            assert_eq!(for_header(accept), Format::OpenMetrics, "{accept}");
        }
        // Prometheus configured to prefer the text format.
        let text_first = "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1";
        assert_eq!(for_header(text_first), Format::Prometheus);
    }

    #[test]
    fn protobuf_when_prometheus_scrapes_native_histograms() {
        // Prometheus 3.x with native histograms on (`scrape_native_histograms`).
        let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,\
                      application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,\
                      text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(for_header(accept), Format::Protobuf);
        for other in [
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=io.prometheus.write.v2.Request;encoding=delimited",
        ] {
            assert_eq!(for_header(other), Format::Prometheus, "{other}");
        }
    }

    #[test]
    fn text_when_not_asked_for_openmetrics() {
        for accept in [
            "",
            "text/plain",
            "text/plain;version=0.0.4",
            "*/*",
            "text/*",
            "application/json",
            "application/openmetrics-text;version=2.0.0",
            "application/openmetrics-text;q=0",
            "application/openmetrics-text;q=abc",
            "application/openmetrics-text;q=1.5",
            "application/openmetrics-text;q=0.1, text/plain;q=0.9",
            "application/openmetrics-text;q",
        ] {
            assert_eq!(for_header(accept), Format::Prometheus, "{accept:?}");
        }
        assert_eq!(negotiate(std::iter::empty()), Format::Prometheus);
    }

    #[test]
    fn ties_go_to_the_more_specific_then_the_earlier_range() {
        assert_eq!(for_header("*/*;q=0.5, application/openmetrics-text;q=0.5"), Format::OpenMetrics);
        assert_eq!(for_header("text/plain;q=0.5, application/openmetrics-text;q=0.5"), Format::Prometheus);
        assert_eq!(for_header("application/openmetrics-text;q=0.5, text/plain;q=0.5"), Format::OpenMetrics);
    }

    #[test]
    fn qvalues_are_read_as_rfc_9110_writes_them() {
        for (text, thousandths) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.05", 50),
            ("0.125", 125),
            ("0.1239", 123),
            ("1", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(qvalue(text.as_bytes()), Some(thousandths), "{text}");
        }
        for text in ["", ".5", "1.5", "1.0001", "2", "0.5x", "0,5", "-0", "0..5", "1e-1", "abc"] {
            assert_eq!(qvalue(text.as_bytes()), None, "{text}");
        }
        // The order is the number's: 0.125 < 0.5 < 1.
        assert_eq!(for_header("text/plain;q=0.125, application/openmetrics-text;q=0.5"), Format::OpenMetrics);
        assert_eq!(for_header("text/plain;q=1, application/openmetrics-text;q=0.999"), Format::Prometheus);
    }

    #[test]
    fn several_header_values_are_one_list() {
        let values: [&[u8]; 2] = [b"text/plain;q=0.3", b"application/openmetrics-text;q=0.6"];
        assert_eq!(negotiate(values), Format::OpenMetrics);
    }
}
