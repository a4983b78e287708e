//! The optional bearer token, compared in constant time.
//!
//! Both the expected and the presented token are copied into zero-padded buffers of
//! [`MAX_TOKEN_LEN`] bytes and compared whole, lengths included, with `subtle`: the time
//! taken depends neither on the expected token's length nor on where the first differing
//! byte is. Only the presented token's own length (which the client knows) shows.

use super::{ExportError, MAX_TOKEN_LEN};
use subtle::ConstantTimeEq;

/// The expected token, padded to [`MAX_TOKEN_LEN`] bytes.
pub(crate) struct Token {
    bytes: [u8; MAX_TOKEN_LEN],
    len: u64,
}

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Checks `token`: 1 to [`MAX_TOKEN_LEN`] bytes of visible ASCII (RFC 6750's token
    /// characters are a subset), so it can travel in an `Authorization` header as it is.
    pub(crate) fn new(token: &str) -> Result<Self, ExportError> {
        if token.is_empty() {
            return Err(ExportError::InvalidToken("the token is empty"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(ExportError::InvalidToken("the token is longer than MAX_TOKEN_LEN (512) bytes"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ExportError::InvalidToken("the token holds a byte that is not visible ASCII"));
        }
        let mut bytes = [0; MAX_TOKEN_LEN];
        bytes[..token.len()].copy_from_slice(token.as_bytes());
        Ok(Self { bytes, len: token.len() as u64 })
    }

    /// Whether an `Authorization` header value carries this token (`Bearer <token>`, the
    /// scheme case-insensitive).
    pub(crate) fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        match authorization.and_then(bearer) {
            Some(presented) => self.matches(presented),
            None => false,
        }
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let mut padded = [0u8; MAX_TOKEN_LEN];
        let n = presented.len().min(MAX_TOKEN_LEN);
        padded[..n].copy_from_slice(&presented[..n]);
        let same_len = self.len.ct_eq(&(presented.len() as u64));
        let same_bytes = self.bytes[..].ct_eq(&padded[..]);
        bool::from(same_len & same_bytes)
    }
}

/// The credentials of a `Bearer` authorization header value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_token() {
        let token = Token::new("s3cret-token").unwrap();
        assert!(token.authorizes(Some(b"Bearer s3cret-token")));
        assert!(token.authorizes(Some(b"bearer   s3cret-token ")));
        for wrong in [
            &b"Bearer s3cret-tokem"[..],
            b"Bearer s3cret-token2",
            b"Bearer s3cret-toke",
            b"Bearer ",
            b"Bearer",
            b"Basic s3cret-token",
            b"s3cret-token",
            b"",
        ] {
            assert!(!token.authorizes(Some(wrong)), "{:?}", String::from_utf8_lossy(wrong));
        }
        assert!(!token.authorizes(None));
        // A presented token longer than any expected one, with the expected one as prefix.
        let long = format!("Bearer s3cret-token{}", "x".repeat(1000));
        assert!(!token.authorizes(Some(long.as_bytes())));
    }

    #[test]
    fn zero_padding_does_not_match_a_shorter_token() {
        let token = Token::new("abc").unwrap();
        assert!(!token.authorizes(Some(b"Bearer abc\0")));
    }

    #[test]
    fn rejects_unusable_tokens() {
        assert!(Token::new("").is_err());
        assert!(Token::new("with space").is_err());
        assert!(Token::new("new\nline").is_err());
        assert!(Token::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(Token::new(&"x".repeat(MAX_TOKEN_LEN)).is_ok());
        assert_eq!(format!("{:?}", Token::new("abc").unwrap()), "Token(<redacted>)");
    }
}
