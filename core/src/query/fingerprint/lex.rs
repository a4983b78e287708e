//! A bounded SQL tokeniser shared by the fingerprint and the index hints.
//!
//! It splits bytes into words, quoted identifiers, literals, placeholders and
//! punctuation, skipping whitespace and comments. It never fails and never looks further
//! than one token back (whether a `[` opens a subscript) or, inside a dollar-quoted
//! string, a delimiter of at most [`MAX_DOLLAR_TAG`] bytes: every byte is visited a
//! bounded number of times. Every token boundary lies on an ASCII byte or at the end of
//! the input (bytes from 0x80 up only ever occur inside words, quotes and literals), so
//! the tokens of a `&str` can be sliced out of it as `&str`s.

/// The longest dollar-quote tag PostgreSQL accepts (`NAMEDATALEN - 1`). A longer
/// `$tag$` is not taken as a quote, which bounds the search for its closing delimiter.
const MAX_DOLLAR_TAG: usize = 63;

/// Operators of two or three bytes, longest first so the first match is the longest.
const OPERATORS: [&[u8]; 25] = [
    b"<=>", b"->>", b"#>>", b"!~*", b"<=", b">=", b"<>", b"!=", b"==", b"::", b"||", b"->", b"#>", b"#-", b"@>", b"<@",
    b"&&", b":=", b"<<", b">>", b"~*", b"!~", b"~~", b"=>", b"^@",
];

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted identifier or keyword (`select`, `users`, `@@version`).
    Word,
    /// A quoted identifier, quotes included: `"..."`, `` `...` `` or `[...]`.
    Quoted,
    /// A number: integer, decimal, exponent, `0x..`, `0b..`, `0o..`.
    Number,
    /// A string literal, prefix and quotes included: `'..'`, `E'..'`, `N'..'`, `$$..$$`.
    String,
    /// A bind placeholder: `?`, `?1`, `$1`, `:name`, `:1`, `@p1`, `%s`, `%(name)s`.
    Placeholder,
    /// An operator or punctuation, one to three ASCII bytes.
    Punct,
}

/// One token: its kind, its byte range in the input, and whether whitespace or a
/// comment came before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) space_before: bool,
}

impl Token {
    /// Whether this is a literal value (number, string or placeholder).
    pub(crate) fn is_literal(&self) -> bool {
        matches!(self.kind, Kind::Number | Kind::String | Kind::Placeholder)
    }
}

/// The tokeniser: a position in the input. `Copy`, so lookahead is a copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer<'s> {
    src: &'s [u8],
    pos: usize,
    /// Whether the previous token can take a subscript (`arr[1]`): a word, a quoted
    /// identifier, `)` or `]`, with nothing between it and here.
    glued: bool,
    /// Whether the previous token is the word `array` (PostgreSQL's `ARRAY [1, 2]`).
    after_array: bool,
}

impl<'s> Lexer<'s> {
    pub(crate) const fn new(src: &'s [u8]) -> Self {
        Self { src, pos: 0, glued: false, after_array: false }
    }

    /// The bytes of `token` (empty if it did not come from this input).
    pub(crate) fn bytes(&self, token: Token) -> &'s [u8] {
        self.src.get(token.start..token.end).unwrap_or(&[])
    }

    fn bytes_of(&self, start: usize) -> &'s [u8] {
        self.src.get(start..self.pos).unwrap_or(&[])
    }

    fn at(&self, ahead: usize) -> u8 {
        // 0 past the end: no rule below treats a NUL byte as the start of anything.
        self.src.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn rest(&self) -> &'s [u8] {
        self.src.get(self.pos..).unwrap_or(&[])
    }

    /// Skips whitespace and comments; returns whether there were any.
    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            match (self.at(0), self.at(1)) {
                (b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c, _) => self.pos += 1,
                (b'-', b'-') => self.skip_line(),
                // MySQL's `#` comment, except PostgreSQL's `#>`, `#>>` and `#-` operators.
                (b'#', next) if next != b'>' && next != b'-' => self.skip_line(),
                (b'/', b'*') => {
                    // Not nested (MySQL's rule; PostgreSQL nests), and unterminated
                    // comments run to the end.
                    let body = self.src.get(self.pos + 2..).unwrap_or(&[]);
                    self.pos += 2 + body.windows(2).position(|w| w == b"*/").map_or(body.len(), |i| i + 2);
                }
                _ => break,
            }
        }
        self.pos = self.pos.min(self.src.len());
        self.pos != start
    }

    fn skip_line(&mut self) {
        self.pos += self.rest().iter().position(|&b| b == b'\n').unwrap_or(self.rest().len());
    }

    /// Advances while `pred` holds.
    fn eat_while(&mut self, pred: impl Fn(u8) -> bool) {
        self.pos += self.rest().iter().position(|&b| !pred(b)).unwrap_or(self.rest().len());
    }

    /// Skips a string body after its opening quote, up to and including the closing one;
    /// a doubled quote is an escaped quote, and so is a backslash-escaped one if `backslash`.
    fn quoted(&mut self, close: u8, backslash: bool) {
        loop {
            match self.rest().iter().position(|&b| b == close || (backslash && b == b'\\')) {
                None => {
                    self.pos = self.src.len();
                    return;
                }
                Some(i) => {
                    self.pos += i;
                    if self.at(0) == b'\\' {
                        self.pos = (self.pos + 2).min(self.src.len());
                    } else if self.at(1) == close {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return;
                    }
                }
            }
        }
    }

    /// A `$tag$` (tag possibly empty) at the position: its length.
    fn dollar_tag(&self) -> Option<usize> {
        let tag = self.rest().get(1..)?;
        let len = tag.iter().position(|&b| !is_ident_continue(b) || b == b'$')?;
        let valid = len <= MAX_DOLLAR_TAG
            && tag.get(len) == Some(&b'$')
            && tag.first().is_some_and(|&b| b == b'$' || (is_ident_start(b) && b < 0x80))
            && tag.get(..len).is_some_and(|t| t.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_'));
        valid.then_some(len + 2)
    }

    fn number(&mut self) -> Kind {
        let start = self.pos;
        let radix = matches!(self.at(1), b'x' | b'X' | b'b' | b'B' | b'o' | b'O');
        if self.at(0) == b'0' && radix && self.at(2).is_ascii_hexdigit() {
            self.pos += 2;
            self.eat_while(|b| b.is_ascii_hexdigit() || b == b'_');
            return Kind::Number;
        }
        self.eat_while(|b| b.is_ascii_digit() || b == b'_');
        let integer = self.pos;
        if self.at(0) == b'.' {
            self.pos += 1;
            self.eat_while(|b| b.is_ascii_digit() || b == b'_');
        }
        let sign = usize::from(matches!(self.at(1), b'+' | b'-'));
        if matches!(self.at(0), b'e' | b'E') && self.at(1 + sign).is_ascii_digit() {
            self.pos += 1 + sign;
            self.eat_while(|b| b.is_ascii_digit());
        }
        if is_ident_continue(self.at(0)) {
            if self.src.get(start) == Some(&b'.') {
                // `.1st`: a dot, then a name (below).
                self.pos = start + 1;
                return Kind::Punct;
            }
            if self.pos == integer {
                // MySQL identifiers may start with digits (`1st_quarter`).
                self.eat_while(is_ident_continue);
                return Kind::Word;
            }
        }
        Kind::Number
    }

    fn word(&mut self) -> Kind {
        let (first, second) = (self.at(0), self.at(1));
        if second == b'\'' && matches!(first, b'e' | b'E' | b'n' | b'N' | b'b' | b'B' | b'x' | b'X') {
            self.pos += 2;
            self.quoted(b'\'', true);
            return Kind::String;
        }
        if matches!(first, b'u' | b'U') && second == b'&' && self.at(2) == b'\'' {
            self.pos += 3;
            self.quoted(b'\'', true);
            return Kind::String;
        }
        self.eat_while(is_ident_continue);
        Kind::Word
    }

    /// A placeholder or punctuation starting with `$`, `?`, `:`, `@` or `%`, or a
    /// dollar-quoted string.
    fn sigil(&mut self, b: u8) -> Kind {
        let next = self.at(1);
        match b {
            b'$' if next.is_ascii_digit() => {
                self.pos += 1;
                self.eat_while(|b| b.is_ascii_digit());
                Kind::Placeholder
            }
            b'$' => match self.dollar_tag() {
                Some(len) => {
                    let delimiter = self.src.get(self.pos..self.pos + len).unwrap_or(&[]);
                    let body = self.src.get(self.pos + len..).unwrap_or(&[]);
                    let close = body.windows(len).position(|w| w == delimiter);
                    self.pos = close.map_or(self.src.len(), |i| self.pos + len + i + len);
                    Kind::String
                }
                None => self.punct(),
            },
            b'?' => {
                self.pos += 1;
                self.eat_while(|b| b.is_ascii_digit());
                Kind::Placeholder
            }
            b':' if is_ident_start(next) || next.is_ascii_digit() => {
                self.pos += 1;
                self.eat_while(is_ident_continue);
                Kind::Placeholder
            }
            b'@' if next == b'@' && is_ident_start(self.at(2)) => {
                // A MySQL system variable (`@@global.sql_mode`): kept, it names a setting.
                self.pos += 2;
                self.eat_while(is_ident_continue);
                Kind::Word
            }
            b'@' if is_ident_start(next) => {
                self.pos += 1;
                self.eat_while(is_ident_continue);
                Kind::Placeholder
            }
            b'%' if next == b's' && !is_ident_continue(self.at(2)) => {
                self.pos += 2;
                Kind::Placeholder
            }
            b'%' if next == b'(' => {
                let name = self.rest().get(2..).unwrap_or(&[]);
                let len = name.iter().position(|&b| !is_ident_continue(b)).unwrap_or(name.len());
                if len > 0 && name.get(len..len + 2) == Some(&b")s"[..]) && !is_ident_continue(self.at(len + 4)) {
                    self.pos += len + 4;
                    Kind::Placeholder
                } else {
                    self.punct()
                }
            }
            _ => self.punct(),
        }
    }

    fn punct(&mut self) -> Kind {
        let rest = self.rest();
        let len = OPERATORS.iter().find(|op| rest.starts_with(op)).map_or(1, |op| op.len());
        self.pos += len;
        Kind::Punct
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let space_before = self.skip_space();
        let start = self.pos;
        let b = *self.src.get(start)?;
        // Right after a name or a closing bracket: `arr[1]`, `t.1st`.
        let attached = self.glued && !space_before;
        let kind = match b {
            b'\'' => {
                self.pos += 1;
                self.quoted(b'\'', true);
                Kind::String
            }
            b'"' | b'`' => {
                self.pos += 1;
                self.quoted(b, false);
                Kind::Quoted
            }
            // SQL Server's `[name]`, unless it is a subscript (`arr[1]`, `f(x)[1]`) or
            // an array (`ARRAY [1, 2]`, `[1:2]`).
            b'[' if !attached && !self.after_array && is_ident_start(self.at(1)) => {
                self.pos += 1;
                self.quoted(b']', false);
                Kind::Quoted
            }
            b'0'..=b'9' => self.number(),
            // `.5`, but not `t.1col` (MySQL allows identifiers that start with digits).
            b'.' if self.at(1).is_ascii_digit() && !attached => self.number(),
            b'$' | b'?' | b':' | b'@' | b'%' => self.sigil(b),
            b if is_ident_start(b) => self.word(),
            _ => self.punct(),
        };
        self.pos = self.pos.min(self.src.len());
        let closer = kind == Kind::Punct && matches!(b, b')' | b']');
        self.glued = matches!(kind, Kind::Word | Kind::Quoted) || closer;
        self.after_array = kind == Kind::Word && self.bytes_of(start).eq_ignore_ascii_case(b"array");
        Some(Token { kind, start, end: self.pos, space_before })
    }
}

/// Whether `b` may start an unquoted identifier. Bytes from 0x80 up are taken as letters,
/// so a multi-byte character (or a stray non-UTF-8 byte) never splits a token.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Whether `b` may continue an unquoted identifier (`$` as in PostgreSQL and MySQL).
fn is_ident_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}
