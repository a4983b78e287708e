//! What the app and the traffic generator share of HTTP: a body sent whole, bodies read
//! with a limit, and form fields.

use bytes::Bytes;
use http_body::Body;

/// A body sent in one frame (or none, if empty).
pub(crate) type Whole = http_body_util::Full<Bytes>;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The connection failed while reading it.
    Broken,
}

/// Reads `body` whole, refusing more than `limit` bytes (before reading, if it says so).
pub(crate) async fn read<B: Body<Data = Bytes>>(body: B, limit: usize) -> Result<Vec<u8>, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else { continue };
        if out.len() + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// Reads `body` to its end and drops it; returns how many bytes it had.
pub(crate) async fn drain<B: Body<Data = Bytes>>(body: B) -> Result<usize, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut len = 0;
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            len += data.len();
        }
    }
    Ok(len)
}

/// The value of `name` in `form` (`a=1&b=2`, a query string or an
/// `application/x-www-form-urlencoded` body), `+` and `%XX` decoded; `None` if absent or
/// not UTF-8 once decoded.
pub(crate) fn field(form: &str, name: &str) -> Option<String> {
    let raw = form.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })?;
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (byte, tail) {
            (b'+', _) => bytes.push(b' '),
            (b'%', [high, low, ..]) if hex(*high).is_some() && hex(*low).is_some() => {
                // Two hex digits make at most 255.
                bytes.push((hex(*high).unwrap_or(0) * 16 + hex(*low).unwrap_or(0)) as u8);
                rest = &tail[2..];
                continue;
            }
            _ => bytes.push(byte),
        }
        rest = tail;
    }
    String::from_utf8(bytes).ok()
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let form = "email=ada%40example.com&q=red+lamp&empty=&flag&bad=%zz&half=%4";
        assert_eq!(field(form, "email").as_deref(), Some("ada@example.com"));
        assert_eq!(field(form, "q").as_deref(), Some("red lamp"));
        assert_eq!(field(form, "empty").as_deref(), Some(""));
        assert_eq!(field(form, "flag").as_deref(), Some(""));
        assert_eq!(field(form, "bad").as_deref(), Some("%zz"));
        assert_eq!(field(form, "half").as_deref(), Some("%4"));
        assert_eq!(field(form, "missing"), None);
        assert_eq!(field("x=%ff", "x"), None, "not UTF-8");
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    #[tokio::test]
    async fn bodies_are_read_within_their_limit() {
        assert_eq!(read(Whole::from("abc"), 3).await.ok(), Some(b"abc".to_vec()));
        assert!(matches!(read(Whole::from("abcd"), 3).await, Err(BodyError::TooLarge)));
        assert_eq!(drain(Whole::from("abcd")).await.ok(), Some(4));
        assert_eq!(drain(Whole::default()).await.ok(), Some(0));
    }
}
