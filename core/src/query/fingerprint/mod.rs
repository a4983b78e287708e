//! SQL fingerprints: a query with its literals replaced by `?`, hashed, its start kept for
//! display.
//!
//! [`Fingerprint::of`] makes one pass over the query with a bounded tokeniser (not a SQL
//! parser) and allocates nothing. Two executions of the same statement with different
//! values get the same fingerprint; statements that differ in a column, table, operator,
//! join or ordering get different ones. Use it to group queries (slow-query statistics,
//! per-statement counters); do not use it to tell whether two queries return the same rows,
//! or as a security boundary (the hash is not cryptographic).
//!
//! # Normalisation
//!
//! The normalised text is the query's tokens, rewritten as follows and separated by single
//! spaces (none after `(`, `[` and `.`, none before `)`, `]`, `,` and `.`, none around `::`,
//! and none before a `(` or `[` that follows a name directly in the query, as in `count(*)`;
//! but always one between two operators, so that the text reads back as the same tokens),
//! so `id=1` and `id = 1` agree. Normalising a normalised text returns it unchanged.
//!
//! - **Literals become `?`**: numbers (`42`, `-7` after an operator, `(`, `,` or a keyword such
//!   as `select` or `and`, `3.14`, `1e-5`, `.5`, `0x1F`, `0b101`, `1_000`), strings (`'it''s'`,
//!   `'a\'b'`, `E'..'`, `N'..'`, `B'..'`, `X'..'`, `U&'..'`, `$$..$$`, `$tag$..$tag$`) and
//!   placeholders already there (`?`, `?1`, `$1`, `:name`, `:1`, `@p1`, `%s`, `%(name)s`).
//!   `true`, `false` and `null` are kept: `is null` is not `= ?`.
//! - **Lists collapse**: `IN (1, 2, 3)` becomes `in (?)` whatever the number of items (items
//!   are literals, possibly signed or cast, as in `'a'::text`); `ARRAY[1, 2]` becomes
//!   `array[?]`. An `IN` over a subquery, expressions or row values (`((1, 2), (3, 4))`) is
//!   kept as written, its literals still replaced.
//! - **`VALUES` rows collapse to the first**: `values (1, 'a'), (2, 'b')` becomes
//!   `values (?, ?)`. Every row after the first is dropped whatever it holds (rows of one
//!   statement come from the same code), so a multi-row insert and a one-row insert of the
//!   same columns share a fingerprint; the number of columns still counts.
//! - **Case**: unquoted keywords and identifiers are lower-cased (ASCII only); quoted
//!   identifiers (`"Users"`, `` `users` ``, `[Users]`) are kept as written.
//! - **Dropped**: comments (`-- ..`, `/* .. */` (not nested), MySQL's `# ..`), whitespace
//!   runs (one space at most, as above) and trailing `;`s. A `;` between statements is kept.
//!
//! Readings that a tokeniser cannot disambiguate, and what is chosen:
//!
//! - A backslash escapes the next byte in every single-quoted string (MySQL's default and
//!   PostgreSQL's `E'..'`). Under PostgreSQL's `standard_conforming_strings` a string that
//!   ends in a backslash (`'C:\'`) therefore runs on to the next quote: the fingerprint is
//!   still deterministic, only coarser.
//! - `"..."` is an identifier (standard SQL, PostgreSQL, SQLite, MySQL in `ANSI_QUOTES`
//!   mode); MySQL's double-quoted strings are therefore kept as written.
//! - `#` starts a comment (MySQL) except in PostgreSQL's `#>`, `#>>` and `#-`; PostgreSQL's
//!   `#` (bitwise xor) is read as a comment.
//! - `?` is always a placeholder, so PostgreSQL's `?`, `?|` and `?&` JSON operators read as
//!   placeholders; `@name` is a placeholder (SQL Server's `@p1`, MySQL's user variables),
//!   `@@name` a system variable, kept.
//! - `[` opens a quoted identifier only when a letter follows and it is not a subscript
//!   (`arr[1]`) or an array (`ARRAY [x]`).
//! - `ORDER BY 1` is normalised like any number, to `order by ?`.
//!
//! # Hash
//!
//! [`Fingerprint::hash`] is FNV-1a 64 over the whole normalised text (not only the part
//! kept for display), finished with MurmurHash3's 64-bit mix so that every bit depends on
//! every byte and any bits can index a table. It is never 0, so 0 can mark an empty slot.
//! Equal normalised texts always give equal hashes; different ones collide with
//! probability about 2^-64 per pair.
//!
//! # Input that is not UTF-8
//!
//! [`Fingerprint::of_bytes`] accepts any bytes: the tokeniser works on bytes, and an
//! invalid UTF-8 sequence inside a kept identifier is written as U+FFFD in the text and
//! hashed as such. `of_bytes(s.as_bytes())` equals `of(s)`. No input makes it panic:
//! unterminated strings, quotes and comments run to the end of the input, numbers are never
//! parsed into integers, and nesting is counted, never recursed into.
//!
//! # Cost
//!
//! One pass over the input, each byte looked at a bounded number of times (an `IN` list is
//! scanned twice); no allocation, no lock, no shared state. Only the first `T` bytes of the
//! text are stored ([`DEFAULT_TEXT_LEN`] = 128 by default), cut at a character boundary.

pub(crate) mod lex;
#[cfg(test)]
mod tests;

use core::fmt;
use lex::{Kind, Lexer, Token};

/// How many bytes of normalised text a [`Fingerprint`] keeps by default.
pub const DEFAULT_TEXT_LEN: usize = 128;

/// The fingerprint of a query: the hash of its normalised text and the first `T` bytes of
/// that text. See the [module docs](self) for the normalisation.
///
/// ```
/// use plimsoll_core::query::fingerprint::Fingerprint;
///
/// let a: Fingerprint = Fingerprint::of("SELECT * FROM users WHERE id = 42 AND status IN (1, 2, 3)");
/// let b: Fingerprint = Fingerprint::of("select *\n  from users where id=7 and status in (5) -- retry");
/// assert_eq!(a.hash(), b.hash());
/// assert_eq!(a.text(), "select * from users where id = ? and status in (?)");
///
/// // Only the hash: keep no text at all.
/// assert_eq!(Fingerprint::<0>::of("SELECT 1").hash(), Fingerprint::<64>::of("select 2;").hash());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint<const T: usize = DEFAULT_TEXT_LEN> {
    hash: u64,
    text: heapless::String<T>,
    truncated: bool,
}

impl<const T: usize> Fingerprint<T> {
    /// Size of a fingerprint in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// The fingerprint of `sql`.
    pub fn of(sql: &str) -> Self {
        Self::of_bytes(sql.as_bytes())
    }

    /// The fingerprint of `sql`, which need not be UTF-8 (see the [module docs](self)).
    pub fn of_bytes(sql: &[u8]) -> Self {
        let mut hash = Fnv1a::new();
        let mut text = heapless::String::new();
        let mut truncated = false;
        normalize(sql, |piece| {
            hash.write(piece.as_bytes());
            if !truncated && text.push_str(piece).is_err() {
                // Keep what fits, whole characters only.
                truncated = piece.chars().any(|c| text.push(c).is_err());
            }
        });
        Self { hash: hash.finish(), text, truncated }
    }

    /// The hash of the whole normalised text; never 0.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The normalised text, at most `T` bytes of it.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    /// Whether [`text`](Self::text) is shorter than the normalised text.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl<const T: usize> fmt::Display for Fingerprint<T> {
    /// The text, followed by `...` if it was truncated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())?;
        if self.truncated { f.write_str("...") } else { Ok(()) }
    }
}

/// The fingerprint of `sql` with the default text length: shorthand for
/// `Fingerprint::<DEFAULT_TEXT_LEN>::of(sql)`.
pub fn fingerprint(sql: &str) -> Fingerprint {
    Fingerprint::of(sql)
}

/// Streams the normalised text of `sql` to `emit`, piece by piece, without storing it:
/// the concatenation of the pieces is the full normalised text (see the
/// [module docs](self)), whatever its length. [`Fingerprint`] is built on this.
///
/// ```
/// use plimsoll_core::query::fingerprint::normalize;
///
/// let mut len = 0;
/// normalize(b"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y');", |piece| len += piece.len());
/// assert_eq!(len, "insert into t (a, b) values (?, ?)".len());
/// ```
pub fn normalize(sql: &[u8], emit: impl FnMut(&str)) {
    let mut normalizer = Normalizer {
        lex: Lexer::new(sql),
        emit,
        prev: None,
        last: 0,
        semicolon: false,
        depth: 0,
        values: Values::Idle,
    };
    while let Some(token) = normalizer.lex.next() {
        normalizer.token(token);
    }
}

/// FNV-1a 64, streamed, with a final mix.
struct Fnv1a(u64);

impl Fnv1a {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// MurmurHash3's `fmix64`: FNV-1a's low bits depend only on the low bits of each byte.
    /// The mix is a bijection, so the only 0 it gives is for 0, which is moved to 1.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h.max(1)
    }
}

/// What a piece of normalised text is, for the spacing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `(` or `[`.
    Open,
    /// `)` or `]`.
    Close,
    /// `,` or `;`.
    Comma,
    /// `.` or `::`.
    Joiner,
    /// A word; `unary` if a sign after it is a number's (`select -1`, `and -1`).
    Word { unary: bool },
    /// A quoted identifier.
    Quoted,
    /// `?`.
    Value,
    /// A collapsed list, `(?)`.
    List,
    /// Any other operator.
    Operator,
}

/// Where the normaliser is in a `VALUES` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Values {
    Idle,
    /// `values` was the last token.
    Keyword,
    /// Inside the first row, opened at this depth.
    Row(u32),
}

/// Keywords after which `-`/`+` and a number are one signed literal.
const UNARY_KEYWORDS: [&[u8]; 17] = [
    b"and",
    b"between",
    b"by",
    b"case",
    b"else",
    b"having",
    b"limit",
    b"not",
    b"offset",
    b"on",
    b"or",
    b"return",
    b"returning",
    b"select",
    b"then",
    b"when",
    b"where",
];

struct Normalizer<'s, F> {
    lex: Lexer<'s>,
    emit: F,
    /// The class of the last piece written; `None` at the start.
    prev: Option<Class>,
    /// The last byte written (0 at the start).
    last: u8,
    /// A `;` is pending: written only if another token follows.
    semicolon: bool,
    /// Open `(` and `[`, saturating, never below 0.
    depth: u32,
    values: Values,
}

impl<F: FnMut(&str)> Normalizer<'_, F> {
    fn token(&mut self, token: Token) {
        let bytes = self.lex.bytes(token);
        if token.kind == Kind::Punct && bytes == b";" {
            self.semicolon = true;
            return;
        }
        if core::mem::replace(&mut self.semicolon, false) {
            self.put(b";", Class::Comma, false);
        }
        if self.values == Values::Keyword && bytes != b"(" {
            self.values = Values::Idle;
        }
        match token.kind {
            Kind::Word => self.word(token, bytes),
            Kind::Quoted => self.put(bytes, Class::Quoted, token.space_before),
            Kind::Number | Kind::String | Kind::Placeholder => self.put(b"?", Class::Value, token.space_before),
            Kind::Punct => self.punct(token, bytes),
        }
    }

    fn word(&mut self, token: Token, bytes: &[u8]) {
        if bytes.eq_ignore_ascii_case(b"in") && self.collapse_list(b"(", b")") {
            self.put(b"in", Class::Word { unary: false }, token.space_before);
            self.put(b"(?)", Class::List, true);
        } else if bytes.eq_ignore_ascii_case(b"array") && self.collapse_list(b"[", b"]") {
            self.put(b"array", Class::Word { unary: false }, token.space_before);
            self.put(b"[?]", Class::Close, false);
        } else {
            if bytes.eq_ignore_ascii_case(b"values") {
                self.values = Values::Keyword;
            }
            let unary = UNARY_KEYWORDS.iter().any(|k| bytes.eq_ignore_ascii_case(k));
            self.put(bytes, Class::Word { unary }, token.space_before);
        }
    }

    fn punct(&mut self, token: Token, bytes: &[u8]) {
        let space = token.space_before;
        match bytes {
            b"-" | b"+" if self.unary_allowed() && self.peek().is_some_and(|t| t.kind == Kind::Number) => {
                self.lex.next();
                self.put(b"?", Class::Value, space);
            }
            // A `[` that is neither a subscript nor an array's keeps spaces around it, so
            // that the text does not read as a `[name]` identifier.
            b"[" if space || !matches!(self.prev, Some(Class::Word { .. } | Class::Quoted | Class::Close)) => {
                self.put(bytes, Class::Operator, space);
            }
            b"(" | b"[" => {
                self.depth = self.depth.saturating_add(1);
                if self.values == Values::Keyword {
                    self.values = Values::Row(self.depth);
                }
                self.put(bytes, Class::Open, space);
            }
            b")" | b"]" => {
                self.put(bytes, Class::Close, space);
                if self.values == Values::Row(self.depth) && bytes == b")" {
                    self.values = Values::Idle;
                    self.skip_rows();
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b"," => self.put(bytes, Class::Comma, space),
            b"." | b"::" => self.put(bytes, Class::Joiner, space),
            _ => self.put(bytes, Class::Operator, space),
        }
    }

    fn peek(&self) -> Option<Token> {
        self.lex.clone().next()
    }

    /// Whether a sign here belongs to the number after it rather than being an operator.
    fn unary_allowed(&self) -> bool {
        match self.prev {
            None | Some(Class::Open | Class::Comma | Class::Operator) => true,
            Some(Class::Word { unary }) => unary,
            Some(Class::Close | Class::Joiner | Class::Quoted | Class::Value | Class::List) => false,
        }
    }

    /// If `open`, literals separated by commas, and `close` come next, consumes them.
    fn collapse_list(&mut self, open: &[u8], close: &[u8]) -> bool {
        let mut ahead = self.lex;
        let opened = ahead.next().is_some_and(|t| t.kind == Kind::Punct && ahead.bytes(t) == open);
        if opened && literal_list(&mut ahead, close) {
            self.lex = ahead;
            return true;
        }
        false
    }

    /// Skips the `, (...)` rows that follow the first row of a `VALUES` list.
    fn skip_rows(&mut self) {
        loop {
            let mut ahead = self.lex;
            let mut punct = |p: &[u8]| ahead.next().is_some_and(|t| t.kind == Kind::Punct && ahead.bytes(t) == p);
            if !(punct(b",") && punct(b"(")) {
                return;
            }
            let mut open = 1_u32;
            while open > 0 {
                match ahead.next() {
                    None => break,
                    Some(t) if t.kind == Kind::Punct && ahead.bytes(t) == b"(" => open = open.saturating_add(1),
                    Some(t) if t.kind == Kind::Punct && ahead.bytes(t) == b")" => open -= 1,
                    Some(_) => {}
                }
            }
            self.lex = ahead;
        }
    }

    /// Writes `bytes` as a piece of class `class`, after a space if the rules want one.
    fn put(&mut self, bytes: &[u8], class: Class, space_in_query: bool) {
        let space = match (self.prev, class) {
            (None, _) => false,
            // Pieces that would read back as other tokens never touch: `:` then `::` would
            // read as `::` then `:`, and `[a]` then `]` as `[a]]...`.
            _ if bytes.first().is_some_and(|&b| touching(self.last, b)) => true,
            (Some(Class::Open | Class::Joiner), _) => false,
            (_, Class::Close | Class::Comma | Class::Joiner) => false,
            (Some(Class::Word { .. } | Class::Quoted | Class::Close | Class::List), Class::Open) => space_in_query,
            _ => true,
        };
        if space {
            (self.emit)(" ");
        }
        let lower = matches!(class, Class::Word { .. });
        for chunk in bytes.utf8_chunks() {
            if lower {
                self.write_lower(chunk.valid());
            } else if !chunk.valid().is_empty() {
                (self.emit)(chunk.valid());
            }
            if !chunk.invalid().is_empty() {
                (self.emit)("\u{FFFD}");
            }
        }
        self.prev = Some(class);
        self.last = bytes.last().copied().unwrap_or(0);
    }

    /// Writes `s` with ASCII letters lower-cased.
    fn write_lower(&mut self, mut s: &str) {
        while let Some(i) = s.bytes().position(|b| b.is_ascii_uppercase()) {
            // `i` is an ASCII byte's index, hence a character boundary.
            let Some((head, tail)) = s.split_at_checked(i) else { return };
            let mut chars = tail.chars();
            if !head.is_empty() {
                (self.emit)(head);
            }
            if let Some(c) = chars.next() {
                (self.emit)(c.to_ascii_lowercase().encode_utf8(&mut [0; 4]));
            }
            s = chars.as_str();
        }
        if !s.is_empty() {
            (self.emit)(s);
        }
    }
}

/// Whether `a` then `b` could read back as one token: both can be part of a multi-byte
/// operator, comment or placeholder, or both close a bracket (`]]` escapes one in `[..]`).
fn touching(a: u8, b: u8) -> bool {
    let operator = |b: u8| b"+-*/<>=~!@#%^&|:$".contains(&b);
    (operator(a) && operator(b)) || (a == b']' && b == b']')
}

/// Consumes `item (, item)* close`, where an item is a literal, a signed number, or either
/// with `::type` casts; returns whether that is what came.
fn literal_list(lex: &mut Lexer<'_>, close: &[u8]) -> bool {
    loop {
        let Some(mut token) = lex.next() else { return false };
        if token.kind == Kind::Punct && matches!(lex.bytes(token), b"-" | b"+") {
            match lex.next() {
                Some(t) if t.kind == Kind::Number => token = t,
                _ => return false,
            }
        }
        if !token.is_literal() {
            return false;
        }
        let mut next = lex.next();
        while next.is_some_and(|t| t.kind == Kind::Punct && lex.bytes(t) == b"::") {
            if !lex.next().is_some_and(|t| t.kind == Kind::Word) {
                return false;
            }
            next = lex.next();
        }
        match next {
            Some(t) if t.kind == Kind::Punct && lex.bytes(t) == b"," => {}
            Some(t) if t.kind == Kind::Punct && lex.bytes(t) == close => return true,
            _ => return false,
        }
    }
}
