//! Index hints: which columns a query compares, and the index each table could use.
//!
//! [`for_each_hint`] reads the text of a query (normally a [`Fingerprint`]'s normalised
//! text, where literals are `?`; raw SQL works too) with the fingerprint's bounded
//! tokeniser and reports each column that a `WHERE` or `ON` condition compares:
//!
//! | condition | hint |
//! |---|---|
//! | `col = ?`, `col <=> ?`, `col in (...)`, `col is null`, `? = col` | [`HintKind::Equality`] |
//! | `col < ?`, `<=`, `>`, `>=`, `col between ? and ?`, `col like ?` | [`HintKind::Range`] |
//! | `a.x = b.y` between two tables (in `ON` or `WHERE`) | [`HintKind::Join`], one per side |
//!
//! The value side may be any expression that is not a bare column (`now() - interval ?`,
//! `any(?)`, a subquery). `like` counts as a range because a pattern with a constant prefix
//! (`'abc%'`) is a B-tree range scan; a literal pattern that starts with a wildcard (`'%abc'`)
//! is skipped, but once normalised the pattern is `?` and cannot be told apart, so
//! `like ?` is reported as a range.
//!
//! Each column is given its table when that is known: from its qualifier (`t.col`, an alias
//! declared in `FROM`/`JOIN`/`UPDATE`, `AS` optional, or a table's name with or without its
//! schema), or, unqualified, when the statement names a single table. Up to [`MAX_TABLES`]
//! table references are remembered; columns of later ones get no table (counted in
//! [`Skipped::tables`]).
//!
//! [`Hints`] keeps the distinct hints in fixed storage and derives a suggested index per
//! table ([`Hints::indexes`]) by the classic rule of thumb — equality columns first, then at
//! most one range column, since an index serves no column after a range as an access
//! predicate (Markus Winand, *Use The Index, Luke*, "Greater, Less and BETWEEN":
//! "index for equality first — then for ranges"). Join columns are equality lookups for the
//! inner side of a nested-loop join and come after the table's filter equalities.
//!
//! # What it covers, and what it does not
//!
//! Covered: the first statement, if it is a `SELECT`, `UPDATE` or `DELETE`; its `WHERE` and
//! `ON` conditions split at `AND`s, parenthesised `AND` groups included (up to
//! [`MAX_NESTING`] levels, as ORMs write them); `col op value`, `value op col` and
//! `col = col`; tables in `FROM` lists, joins of every kind, `UPDATE t ... FROM u`,
//! `DELETE ... USING`, MySQL's `UPDATE a JOIN b`; quoted identifiers, as written.
//!
//! Not covered (nothing is reported for them):
//!
//! - other statements (`INSERT`, `WITH`, DDL): [`Skipped::unsupported_statement`];
//! - a condition with an `OR` outside parentheses (no single index serves a disjunction):
//!   the whole `WHERE` or `ON` is skipped, or only the parenthesised group the `OR` is in,
//!   and counted in [`Skipped::disjunctions`];
//! - subqueries, derived tables and `FILTER (WHERE ..)`: skipped whole (a derived table's
//!   alias resolves to no table);
//! - functions or casts on the column (`lower(email) = ?`, `created::date = ?`), negations
//!   (`not`, `<>`, `is not null`, `not in`), row values (`(a, b) = (?, ?)`), `USING (col)`
//!   joins, `HAVING`, and tables named only inside parentheses (`FROM (a JOIN b ON ..)`);
//! - a comparison between two unqualified columns is taken as a join when the statement
//!   names several tables (their tables are then unknown), and skipped when it names one.
//!
//! A fingerprint keeps only the start of its text ([`Fingerprint::is_truncated`]): conditions
//! past the cut are not seen, so size the fingerprint's text for the queries to be advised.
//!
//! # Cost
//!
//! A few passes of the tokeniser over the text (tables, then conditions, then each condition
//! and each parenthesised group in it, at most [`MAX_NESTING`] deep); no allocation, no lock.
//! Nothing here panics, whatever the text.
//!
//! [`Fingerprint`]: super::fingerprint::Fingerprint
//! [`Fingerprint::is_truncated`]: super::fingerprint::Fingerprint::is_truncated

#[cfg(test)]
mod tests;

use super::fingerprint::lex::{Kind, Lexer};
use core::fmt;

/// The most table references (tables, aliases, derived tables) a statement's columns are
/// resolved against.
pub const MAX_TABLES: usize = 8;
/// How many parentheses deep a condition is still read (`WHERE ((a = ?))` is two).
pub const MAX_NESTING: u32 = 4;
/// How many distinct hints [`Hints`] keeps by default.
pub const DEFAULT_MAX_HINTS: usize = 16;

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HintKind {
    /// Compared for equality with a value: `=`, `in`, `is null`.
    Equality,
    /// Compared with a range: `<`, `<=`, `>`, `>=`, `between`, `like`.
    Range,
    /// Compared for equality with a column of another table.
    Join,
}

/// A column a query compares, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hint<'a> {
    /// The column's table as written in the query (`public.users`, `"User"`), if known.
    pub table: Option<&'a str>,
    /// The column as written (without its qualifier).
    pub column: &'a str,
    /// How it is compared.
    pub kind: HintKind,
}

impl Hint<'_> {
    /// Size of a hint in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    fn same(&self, other: &Self) -> bool {
        self.kind == other.kind && same_table(self.table, other.table) && same_name(self.column, other.column)
    }
}

/// What a scan left out (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Skipped {
    /// The statement is not a `SELECT`, `UPDATE` or `DELETE`: nothing was read.
    pub unsupported_statement: bool,
    /// Table references beyond [`MAX_TABLES`]; columns that would resolve to them get no
    /// table, and neither do unqualified columns.
    pub tables: u32,
    /// `WHERE` and `ON` conditions, or parenthesised parts of them, skipped for an `OR`
    /// outside parentheses.
    pub disjunctions: u32,
    /// Parenthesised groups nested deeper than [`MAX_NESTING`], not read.
    pub nested: u32,
}

/// Calls `f` with each hint of `sql`, in the order of the conditions, repeats included;
/// returns what was skipped. Allocates nothing; see the [module docs](self) for coverage.
///
/// ```
/// use plimsoll_core::query::hints::{for_each_hint, Hint, HintKind};
///
/// let mut found = Vec::new();
/// for_each_hint("select * from orders o where o.customer_id = ? and o.created_at > ?", |h| found.push(h));
/// assert_eq!(found, [
///     Hint { table: Some("orders"), column: "customer_id", kind: HintKind::Equality },
///     Hint { table: Some("orders"), column: "created_at", kind: HintKind::Range },
/// ]);
/// ```
pub fn for_each_hint<'a>(sql: &'a str, mut f: impl FnMut(Hint<'a>)) -> Skipped {
    let mut skipped = Skipped::default();
    match Tables::collect(sql, &mut skipped) {
        Some(tables) => Scan { tables: &tables, skipped: &mut skipped, f: &mut f }.statement(Cursor::new(sql)),
        None => skipped.unsupported_statement = true,
    }
    skipped
}

/// The distinct hints of a query, at most `N` of them, and the index suggested for each of
/// its tables.
///
/// ```
/// use plimsoll_core::query::hints::Hints;
///
/// let sql = "select * from orders o join customers c on c.id = o.customer_id \
///            where o.status = ? and o.created_at >= ? and c.country in (?)";
/// let hints: Hints = Hints::of(sql);
/// let mut indexes = hints.indexes().map(|index| index.to_string());
/// assert_eq!(indexes.next().as_deref(), Some("customers (country, id)"));
/// assert_eq!(indexes.next().as_deref(), Some("orders (status, customer_id, created_at)"));
/// assert_eq!(indexes.next(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Hints<'a, const N: usize = DEFAULT_MAX_HINTS> {
    hints: heapless::Vec<Hint<'a>, N>,
    dropped: u32,
    skipped: Skipped,
}

impl<'a, const N: usize> Hints<'a, N> {
    /// Size of the hints in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// The distinct hints of `sql` (same table, column and kind, ignoring ASCII case, count
    /// once), in order of first appearance.
    pub fn of(sql: &'a str) -> Self {
        const { assert!(N > 0, "Hints needs room for at least one hint") };
        let mut hints = heapless::Vec::<Hint<'a>, N>::new();
        let mut dropped = 0_u32;
        let skipped = for_each_hint(sql, |hint| {
            if !hints.iter().any(|h| h.same(&hint)) && hints.push(hint).is_err() {
                dropped = dropped.saturating_add(1);
            }
        });
        Self { hints, dropped, skipped }
    }

    /// The hints kept.
    pub fn as_slice(&self) -> &[Hint<'a>] {
        &self.hints
    }

    /// Hints not kept because `N` were already (a repeated one counts each time).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// What the scan left out.
    pub fn skipped(&self) -> Skipped {
        self.skipped
    }

    /// One suggested index per known table, in order of the tables' first hint. The
    /// references of a self-join share one table name, hence one suggestion.
    pub fn indexes(&self) -> impl Iterator<Item = IndexSuggestion<'_, 'a>> + '_ {
        let hints = self.as_slice();
        hints.iter().enumerate().filter_map(move |(i, hint)| {
            let table = hint.table?;
            let seen = hints.iter().take(i).any(|h| same_table(h.table, Some(table)));
            (!seen).then_some(IndexSuggestion { table, hints })
        })
    }
}

/// The index suggested for one table: its equality columns, then its join columns, then
/// its first range column not already listed. `Display` writes `table (col, col)`.
#[derive(Debug, Clone, Copy)]
pub struct IndexSuggestion<'h, 'a> {
    table: &'a str,
    hints: &'h [Hint<'a>],
}

impl<'h, 'a> IndexSuggestion<'h, 'a> {
    /// The table, as written in the query.
    pub fn table(&self) -> &'a str {
        self.table
    }

    /// The index's columns, in order.
    pub fn columns(&self) -> impl Iterator<Item = &'a str> + 'h {
        let (table, hints) = (self.table, self.hints);
        let of = move |kind: HintKind| {
            hints.iter().filter(move |h| h.kind == kind && same_table(h.table, Some(table))).map(|h| h.column)
        };
        let equality = of(HintKind::Equality);
        let join = of(HintKind::Join).filter(move |c| !of(HintKind::Equality).any(|e| same_name(e, c)));
        let listed = move |c: &&str| of(HintKind::Equality).chain(of(HintKind::Join)).any(|e| same_name(e, c));
        let range = of(HintKind::Range).find(|c| !listed(c));
        equality.chain(join).chain(range)
    }
}

impl fmt::Display for IndexSuggestion<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.table)?;
        for (i, column) in self.columns().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(column)?;
        }
        f.write_str(")")
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn same_table(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_name(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Words that end a `WHERE` or `ON` condition, or a `FROM` list.
const CLAUSE_ENDS: [&str; 26] = [
    "where",
    "on",
    "using",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "straight_join",
    "group",
    "order",
    "limit",
    "having",
    "window",
    "union",
    "intersect",
    "except",
    "returning",
    "for",
    "offset",
    "fetch",
    "lock",
    "set",
    "into",
];
/// Words after a table name that are not its alias.
const NOT_ALIASES: [&str; 8] = ["outer", "use", "force", "ignore", "tablesample", "partition", "as", "with"];
/// Words that are values, not columns.
const VALUE_WORDS: [&str; 16] = [
    "null",
    "true",
    "false",
    "default",
    "not",
    "exists",
    "case",
    "any",
    "all",
    "some",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
];

/// Whether `condition` has an `OR` outside parentheses.
fn has_top_level_or(mut condition: Cursor<'_>) -> bool {
    let mut depth = 0_u32;
    while let Some(token) = condition.next() {
        if token.is_punct("(") {
            depth = depth.saturating_add(1);
        } else if token.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && token.is_word("or") {
            return true;
        }
    }
    false
}

/// The inside of `c` if `c` is one parenthesised group that is not a subquery.
fn parenthesised(mut c: Cursor<'_>) -> Option<Cursor<'_>> {
    if !c.next()?.is_punct("(") || c.opens_subquery() {
        return None;
    }
    let inner = c;
    let mut open = 1_u32;
    while let Some(token) = c.next() {
        if token.is_punct("(") {
            open = open.saturating_add(1);
        } else if token.is_punct(")") {
            open -= 1;
            if open == 0 {
                let end = token.start;
                return c.next().is_none().then_some(Cursor { end, ..inner });
            }
        }
    }
    None
}

/// The kind of hint a comparison operator gives.
fn comparison(op: Tok<'_>) -> Option<HintKind> {
    match (op.kind, op.text) {
        (Kind::Punct, "=" | "==" | "<=>") => Some(HintKind::Equality),
        (Kind::Punct, "<" | "<=" | ">" | ">=") => Some(HintKind::Range),
        _ => None,
    }
}

/// Whether `token` is a string literal whose pattern starts with a wildcard (`'%x'`).
fn starts_with_wildcard(token: Tok<'_>) -> bool {
    if token.kind != Kind::String {
        return false;
    }
    // Past the prefix and opening quote: `'`, `E'`, `N'`, or a `$tag$`.
    let body = match token.text.strip_prefix('$') {
        Some(rest) => rest.split_once('$').map_or("", |(_, body)| body),
        None => token.text.split_once('\'').map_or("", |(_, body)| body),
    };
    body.starts_with(['%', '_'])
}

fn is_one_of(word: &str, words: &[&str]) -> bool {
    words.iter().any(|w| same_name(w, word))
}

/// A token with its text.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
    end: usize,
}

impl Tok<'_> {
    fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && same_name(self.text, word)
    }

    fn is_punct(&self, punct: &str) -> bool {
        self.kind == Kind::Punct && self.text == punct
    }

    fn is_literal(&self) -> bool {
        matches!(self.kind, Kind::Number | Kind::String | Kind::Placeholder)
    }

    fn is_name(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Quoted)
    }

    fn ends_clause(&self) -> bool {
        (self.kind == Kind::Word && is_one_of(self.text, &CLAUSE_ENDS)) || matches!(self.text, ")" | "," | ";")
    }
}

/// The tokens of `sql` before byte `end`.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    sql: &'a str,
    lex: Lexer<'a>,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn new(sql: &'a str) -> Self {
        Self { sql, lex: Lexer::new(sql.as_bytes()), end: sql.len() }
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let mut ahead = self.lex;
        let token = ahead.next().filter(|t| t.start < self.end)?;
        self.lex = ahead;
        // Token boundaries are ASCII bytes or the end (see `lex`), so `get` always succeeds.
        let text = self.sql.get(token.start..token.end).unwrap_or("");
        Some(Tok { kind: token.kind, text, start: token.start, end: token.end })
    }

    fn peek(&self) -> Option<Tok<'a>> {
        let mut ahead = *self;
        ahead.next()
    }

    /// The same tokens, up to where `self` now is.
    fn until(self, later: &Self) -> Self {
        Self { end: later.peek().map_or(later.end, |t| t.start), ..self }
    }

    /// Text from `from` to `to`, both included.
    fn span(&self, from: Tok<'a>, to: Tok<'a>) -> &'a str {
        self.sql.get(from.start..to.end).unwrap_or(from.text)
    }

    /// After a `(`: whether it opens a subquery (or a `FILTER (WHERE ..)`).
    fn opens_subquery(&self) -> bool {
        self.peek().is_some_and(|t| ["select", "with", "values", "where"].iter().any(|w| t.is_word(w)))
    }

    /// After a `(`: skips to after its `)`.
    fn skip_group(&mut self) {
        let mut open = 1_u32;
        while open > 0 {
            match self.next() {
                None => return,
                Some(t) if t.is_punct("(") => open = open.saturating_add(1),
                Some(t) if t.is_punct(")") => open -= 1,
                Some(_) => {}
            }
        }
    }

    /// A dotted name starting with `first`: (qualifier, last part), or `None` if it is
    /// not a name or is followed by `(` (a function).
    fn name(&mut self, first: Tok<'a>) -> Option<(Option<&'a str>, Tok<'a>)> {
        if !first.is_name() || (first.kind == Kind::Word && is_one_of(first.text, &VALUE_WORDS)) {
            return None;
        }
        let (mut qualifier_end, mut last) = (None, first);
        while self.peek().is_some_and(|t| t.is_punct(".")) {
            self.next();
            let part = self.next().filter(Tok::is_name)?;
            qualifier_end = Some(last);
            last = part;
        }
        if self.peek().is_some_and(|t| t.is_punct("(")) {
            return None;
        }
        Some((qualifier_end.map(|q| self.span(first, q)), last))
    }

    /// An optional alias after a table reference.
    fn alias(&mut self) -> Option<&'a str> {
        let explicit = self.peek().is_some_and(|t| t.is_word("as"));
        if explicit {
            self.next();
        }
        let token = self.peek().filter(Tok::is_name)?;
        let reserved =
            token.kind == Kind::Word && (is_one_of(token.text, &CLAUSE_ENDS) || is_one_of(token.text, &NOT_ALIASES));
        if reserved && !explicit {
            return None;
        }
        self.next();
        Some(token.text)
    }
}

/// A table reference: the table (`None` for a derived table) and its alias.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    table: Option<&'a str>,
    alias: Option<&'a str>,
}

/// The table references of a statement.
#[derive(Debug)]
struct Tables<'a> {
    entries: heapless::Vec<Entry<'a>, MAX_TABLES>,
    complete: bool,
}

impl<'a> Tables<'a> {
    /// The table references of `sql`, or `None` if it is not a `SELECT`, `UPDATE` or
    /// `DELETE`.
    fn collect(sql: &'a str, skipped: &mut Skipped) -> Option<Self> {
        let mut cursor = Cursor::new(sql);
        let first = cursor.peek()?;
        let update = first.is_word("update");
        if !(update || first.is_word("select") || first.is_word("delete")) {
            return None;
        }
        let mut tables = Self { entries: heapless::Vec::new(), complete: true };
        cursor.next();
        let (mut depth, mut in_from, mut expect) = (0_u32, update, update);
        while let Some(token) = cursor.next() {
            if token.is_punct("(") {
                if expect && depth == 0 {
                    cursor.skip_group();
                    let alias = cursor.alias();
                    tables.push(Entry { table: None, alias }, skipped);
                    expect = false;
                } else if cursor.opens_subquery() {
                    cursor.skip_group();
                } else {
                    depth = depth.saturating_add(1);
                }
                continue;
            }
            if token.is_punct(")") {
                depth = depth.saturating_sub(1);
                continue;
            }
            if depth > 0 {
                continue;
            }
            if token.is_punct(";") {
                break;
            }
            let using_list = token.is_word("using") && !cursor.peek().is_some_and(|t| t.is_punct("("));
            if token.is_word("from") || token.is_word("join") || token.is_word("straight_join") || using_list {
                (in_from, expect) = (true, true);
            } else if token.kind == Kind::Word && is_one_of(token.text, &CLAUSE_ENDS) {
                (in_from, expect) = (false, false);
            } else if token.is_punct(",") {
                expect = in_from;
            } else if expect && (token.is_word("only") || token.is_word("lateral")) {
                // PostgreSQL's `FROM ONLY t` and `LATERAL`: the table comes next.
            } else if expect {
                expect = false;
                if let Some((qualifier, last)) = cursor.name(token) {
                    let table = Some(qualifier.map_or(last.text, |_| cursor.span(token, last)));
                    let alias = cursor.alias();
                    tables.push(Entry { table, alias }, skipped);
                }
            }
        }
        Some(tables)
    }

    fn push(&mut self, entry: Entry<'a>, skipped: &mut Skipped) {
        if self.entries.push(entry).is_err() {
            self.complete = false;
            skipped.tables = skipped.tables.saturating_add(1);
        }
    }

    /// The entry a column with this qualifier belongs to, if known.
    fn resolve(&self, qualifier: Option<&str>) -> Option<usize> {
        let Some(q) = qualifier else {
            return (self.entries.len() == 1 && self.complete).then_some(0);
        };
        let by_alias = self.entries.iter().position(|e| e.alias.is_some_and(|a| same_name(a, q)));
        by_alias.or_else(|| {
            self.entries.iter().position(|e| {
                e.table.is_some_and(|t| same_name(t, q) || t.rsplit('.').next().is_some_and(|last| same_name(last, q)))
            })
        })
    }

    fn table(&self, entry: Option<usize>) -> Option<&'a str> {
        self.entries.get(entry?)?.table
    }
}

/// A column in a condition: its table entry, if known, and its name.
#[derive(Debug, Clone, Copy)]
struct Column<'a> {
    entry: Option<usize>,
    name: &'a str,
}

/// The condition pass.
struct Scan<'t, 'a, F> {
    tables: &'t Tables<'a>,
    skipped: &'t mut Skipped,
    f: &'t mut F,
}

impl<'a, F: FnMut(Hint<'a>)> Scan<'_, 'a, F> {
    fn statement(&mut self, mut cursor: Cursor<'a>) {
        let mut depth = 0_u32;
        while let Some(token) = cursor.next() {
            if token.is_punct("(") {
                if cursor.opens_subquery() {
                    cursor.skip_group();
                } else {
                    depth = depth.saturating_add(1);
                }
            } else if token.is_punct(")") {
                depth = depth.saturating_sub(1);
            } else if token.is_punct(";") && depth == 0 {
                return;
            } else if token.is_word("where") || token.is_word("on") {
                self.condition(&mut cursor);
            }
        }
    }

    /// A `WHERE` or `ON` condition, from after its keyword; leaves `cursor` on the token that
    /// ends it.
    fn condition(&mut self, cursor: &mut Cursor<'a>) {
        let start = *cursor;
        let mut depth = 0_u32;
        while let Some(token) = cursor.peek() {
            if depth == 0 && token.ends_clause() {
                break;
            }
            cursor.next();
            if token.is_punct("(") {
                depth = depth.saturating_add(1);
            } else if token.is_punct(")") {
                depth = depth.saturating_sub(1);
            }
        }
        self.conjunction(start.until(cursor), 0);
    }

    /// Conditions joined by `AND`; a parenthesised one is read as a conjunction in turn, down
    /// to [`MAX_NESTING`] levels (so Django's `WHERE (a = ? AND b = ?)` is read).
    fn conjunction(&mut self, condition: Cursor<'a>, nesting: u32) {
        if has_top_level_or(condition) {
            self.skipped.disjunctions = self.skipped.disjunctions.saturating_add(1);
            return;
        }
        let mut rest = condition;
        loop {
            let conjunct = rest;
            let (mut depth, mut between) = (0_u32, false);
            while let Some(token) = rest.peek() {
                if depth == 0 && token.is_word("and") && !core::mem::replace(&mut between, false) {
                    break;
                }
                rest.next();
                if token.is_punct("(") {
                    depth = depth.saturating_add(1);
                } else if token.is_punct(")") {
                    depth = depth.saturating_sub(1);
                } else if depth == 0 && token.is_word("between") {
                    between = true;
                }
            }
            let conjunct = conjunct.until(&rest);
            match parenthesised(conjunct) {
                Some(inner) if nesting < MAX_NESTING => self.conjunction(inner, nesting + 1),
                Some(_) => self.skipped.nested = self.skipped.nested.saturating_add(1),
                None => self.conjunct(conjunct),
            }
            if rest.next().is_none() {
                return;
            }
        }
    }

    /// One conjunct: `col op value`, `value op col` or `col = col`.
    fn conjunct(&mut self, mut c: Cursor<'a>) {
        let Some(first) = c.next() else { return };
        if let Some(left) = self.column(&mut c, first) {
            let Some(op) = c.next() else { return };
            let kind = if op.is_word("is") {
                let null = c.next().is_some_and(|t| t.is_word("null")) && c.next().is_none();
                null.then_some(HintKind::Equality)
            } else if op.is_word("in") {
                Some(HintKind::Equality)
            } else if op.is_word("between") {
                Some(HintKind::Range)
            } else if op.is_word("like") {
                (!c.next().is_some_and(|t| starts_with_wildcard(t))).then_some(HintKind::Range)
            } else {
                match (comparison(op), self.sole_column(c)) {
                    (Some(HintKind::Equality), Some(right)) => return self.join(left, right),
                    (Some(kind), None) if c.peek().is_some() => Some(kind),
                    _ => None,
                }
            };
            if let Some(kind) = kind {
                self.emit(left, kind);
            }
        } else if first.is_literal() || (first.kind == Kind::Punct && matches!(first.text, "-" | "+")) {
            if !first.is_literal() && !c.next().is_some_and(|t| t.kind == Kind::Number) {
                return;
            }
            if let (Some(kind), Some(right)) = (c.next().and_then(comparison), self.sole_column(c)) {
                self.emit(right, kind);
            }
        }
    }

    fn column(&self, c: &mut Cursor<'a>, first: Tok<'a>) -> Option<Column<'a>> {
        let (qualifier, last) = c.name(first)?;
        Some(Column { entry: self.tables.resolve(qualifier), name: last.text })
    }

    /// The conjunct's rest, if it is exactly one column.
    fn sole_column(&self, mut c: Cursor<'a>) -> Option<Column<'a>> {
        let first = c.next()?;
        let column = self.column(&mut c, first)?;
        c.next().is_none().then_some(column)
    }

    fn emit(&mut self, column: Column<'a>, kind: HintKind) {
        (self.f)(Hint { table: self.tables.table(column.entry), column: column.name, kind });
    }

    fn join(&mut self, left: Column<'a>, right: Column<'a>) {
        // Two columns of one table reference compare within a row: not a join.
        if left.entry.is_some() && left.entry == right.entry {
            return;
        }
        self.emit(left, HintKind::Join);
        self.emit(right, HintKind::Join);
    }
}
