use super::*;
use proptest::prelude::*;
use std::string::{String, ToString};
use std::vec::Vec;

fn fp(sql: &str) -> Fingerprint {
    Fingerprint::of(sql)
}

fn normalized(sql: &[u8]) -> String {
    let mut out = String::new();
    normalize(sql, |piece| out.push_str(piece));
    out
}

/// Real-world queries, each pair differing only in literal values, placeholders or list
/// lengths: they must share a fingerprint.
const SAME: &[(&str, &str)] = &[
    // pgbench (PostgreSQL).
    (
        "UPDATE pgbench_accounts SET abalance = abalance + -4096 WHERE aid = 81234;",
        "UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 5;",
    ),
    ("SELECT abalance FROM pgbench_accounts WHERE aid = 42;", "SELECT abalance FROM pgbench_accounts WHERE aid = 9"),
    (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 4242, -3000, CURRENT_TIMESTAMP);",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 5000, CURRENT_TIMESTAMP);",
    ),
    // Django (PostgreSQL).
    (
        r#"SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = 'admin' LIMIT 21"#,
        r#"SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = 'bob' LIMIT 1"#,
    ),
    (
        r#"SELECT "blog_entry"."id" FROM "blog_entry" WHERE "blog_entry"."blog_id" IN (1, 2, 3)"#,
        r#"SELECT "blog_entry"."id" FROM "blog_entry" WHERE "blog_entry"."blog_id" IN (7)"#,
    ),
    (
        r#"SELECT "auth_user"."email" FROM "auth_user" WHERE ("auth_user"."date_joined" > '2024-05-01T10:00:00+00:00'::timestamptz AND "auth_user"."username" = 'k1')"#,
        r#"SELECT "auth_user"."email" FROM "auth_user" WHERE ("auth_user"."date_joined" > '2025-01-09T00:00:00+00:00'::timestamptz AND "auth_user"."username" = 'zz')"#,
    ),
    // Rails / ActiveRecord: bind placeholders and the same query with literals.
    (
        r#"SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2"#,
        r#"SELECT "users".* FROM "users" WHERE "users"."id" = 42 LIMIT 1"#,
    ),
    (
        "SELECT `posts`.* FROM `posts` WHERE `posts`.`author_id` IN (1, 2, 3) ORDER BY `posts`.`created_at` DESC",
        "SELECT `posts`.* FROM `posts` WHERE `posts`.`author_id` IN (9) ORDER BY `posts`.`created_at` DESC",
    ),
    // Hibernate.
    (
        "select user0_.id as id1_0_, user0_.email as email2_0_ from users user0_ where user0_.email=?",
        "select user0_.id as id1_0_, user0_.email as email2_0_ from users user0_ where user0_.email='x@y.z'",
    ),
    (
        "insert into orders (customer_id, total, id) values (?, ?, ?)",
        "insert into orders (customer_id, total, id) values (12, 99.95, 1001)",
    ),
    // SQLAlchemy with psycopg2's pyformat placeholders, and an expanding IN.
    (
        "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = %(name_1)s",
        "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = 'ed'",
    ),
    (
        "SELECT users.id FROM users WHERE users.id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s)",
        "SELECT users.id FROM users WHERE users.id IN (%(id_1_1)s)",
    ),
    ("SELECT * FROM users WHERE id = %s AND name = %s", "SELECT * FROM users WHERE id = 1 AND name = 'x'"),
    // Prisma.
    (
        r#"SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."email" = $1 LIMIT $2 OFFSET $3"#,
        r#"SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."email" = 'a@b.c' LIMIT 1 OFFSET 0"#,
    ),
    // Redmine.
    (
        r#"SELECT "issues".* FROM "issues" INNER JOIN "projects" ON "projects"."id" = "issues"."project_id" WHERE (projects.status <> 9) AND "issues"."id" = 1234 LIMIT 1"#,
        r#"SELECT "issues".* FROM "issues" INNER JOIN "projects" ON "projects"."id" = "issues"."project_id" WHERE (projects.status <> 1) AND "issues"."id" = 7 LIMIT 1"#,
    ),
    // TPC-C.
    (
        "SELECT c_discount, c_last, c_credit, w_tax FROM customer, warehouse WHERE w_id = 1 AND c_w_id = w_id AND c_d_id = 7 AND c_id = 2201",
        "SELECT c_discount, c_last, c_credit, w_tax FROM customer, warehouse WHERE w_id = 3 AND c_w_id = w_id AND c_d_id = 10 AND c_id = 5",
    ),
    (
        "SELECT d_next_o_id, d_tax FROM district WHERE d_w_id = 3 AND d_id = 9 FOR UPDATE",
        "SELECT d_next_o_id, d_tax FROM district WHERE d_w_id = 1 AND d_id = 1 FOR UPDATE",
    ),
    (
        "SELECT COUNT(DISTINCT (s_i_id)) FROM order_line, stock WHERE ol_w_id = 1 AND ol_d_id = 5 AND ol_o_id < 3001 AND ol_o_id >= 2981 AND s_w_id = 1 AND s_i_id = ol_i_id AND s_quantity < 15",
        "SELECT COUNT(DISTINCT (s_i_id)) FROM order_line, stock WHERE ol_w_id = 2 AND ol_d_id = 1 AND ol_o_id < 17 AND ol_o_id >= 0 AND s_w_id = 2 AND s_i_id = ol_i_id AND s_quantity < 10",
    ),
    // TPC-H Q6 and Q1.
    (
        "select sum(l_extendedprice * l_discount) as revenue from lineitem where l_shipdate >= date '1994-01-01' and l_shipdate < date '1994-01-01' + interval '1' year and l_discount between .06 - 0.01 and .06 + 0.01 and l_quantity < 24;",
        "select sum(l_extendedprice * l_discount) as revenue from lineitem where l_shipdate >= date '1995-01-01' and l_shipdate < date '1995-01-01' + interval '1' year and l_discount between 0.07 - 0.01 and 0.07 + 0.01 and l_quantity < 25",
    ),
    (
        "select l_returnflag, sum(l_quantity) as sum_qty from lineitem where l_shipdate <= date '1998-12-01' - interval '90' day (3) group by l_returnflag order by l_returnflag",
        "select l_returnflag, sum(l_quantity) as sum_qty from lineitem where l_shipdate <= date '1998-12-01' - interval '60' day (3) group by l_returnflag order by l_returnflag",
    ),
    // PostgreSQL strings, arrays and JSON.
    ("SELECT $$it's 42$$ AS a, $fn$ body $$ $fn$ AS b", "SELECT $$x$$ AS a, $fn$$fn$ AS b"),
    (
        r"SELECT * FROM logs WHERE msg LIKE E'%\'q\\%' AND level = U&'d\0061t'",
        "SELECT * FROM logs WHERE msg LIKE 'x' AND level = 'y'",
    ),
    ("SELECT * FROM items WHERE id = ANY(ARRAY[1, 2, 3])", "SELECT * FROM items WHERE id = ANY(ARRAY[4])"),
    (
        r#"SELECT data->>'name' FROM docs WHERE data @> '{"a": 1}'::jsonb"#,
        r#"SELECT data->>'title' FROM docs WHERE data @> '{}'::jsonb"#,
    ),
    (
        "SELECT * FROM t WHERE x IN ('a'::text, 'b'::text) AND y = -1.5e-3",
        "SELECT * FROM t WHERE x IN ($1::text) AND y = 0x1F",
    ),
    // WordPress (MySQL).
    (
        "SELECT option_name, option_value FROM wp_options WHERE autoload = 'yes'",
        "SELECT option_name, option_value FROM wp_options WHERE autoload = 'no'",
    ),
    (
        "SELECT SQL_CALC_FOUND_ROWS wp_posts.ID FROM wp_posts WHERE 1=1 AND wp_posts.post_type = 'post' AND ((wp_posts.post_status = 'publish')) ORDER BY wp_posts.post_date DESC LIMIT 0, 10",
        "SELECT SQL_CALC_FOUND_ROWS wp_posts.ID FROM wp_posts WHERE 1=1 AND wp_posts.post_type = 'page' AND ((wp_posts.post_status = 'draft')) ORDER BY wp_posts.post_date DESC LIMIT 10, 10",
    ),
    (
        "SELECT t.*, tt.* FROM wp_terms AS t INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id WHERE tt.taxonomy IN ('category') AND t.term_id IN (1, 5, 7)",
        "SELECT t.*, tt.* FROM wp_terms AS t INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id WHERE tt.taxonomy IN ('post_tag', 'category') AND t.term_id IN (3)",
    ),
    (
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (12, '_edit_lock', '1700000000:1'), (12, '_edit_last', '1')",
        "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (99, '_thumbnail_id', '7')",
    ),
    // MySQL comments, escapes and prefixes.
    ("SELECT * FROM t WHERE a = 0x1F # trailing", "/* app:web */ SELECT * FROM t WHERE a = 255 -- other\n"),
    (
        r"SELECT id FROM users WHERE name = 'O\'Reilly' AND age > 30",
        "SELECT id FROM users WHERE name = 'Smith' AND age > 4",
    ),
    (
        "INSERT INTO counters (id, hits) VALUES (1, 1) ON DUPLICATE KEY UPDATE hits = hits + 1",
        "INSERT INTO counters (id, hits) VALUES (2, 1), (3, 1) ON DUPLICATE KEY UPDATE hits = hits + 5",
    ),
    (
        "SELECT * FROM t WHERE name = N'abc' AND b = b'101' AND x = X'0F'",
        "SELECT * FROM t WHERE name = ? AND b = ? AND x = ?",
    ),
    // SQLite (Firefox's places database) and SQL Server.
    (
        "SELECT id, url FROM moz_places WHERE url_hash = hash(?1) AND url = ?1",
        "SELECT id, url FROM moz_places WHERE url_hash = hash('http://a') AND url = 'http://a'",
    ),
    ("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", "INSERT OR REPLACE INTO kv (k, v) VALUES ('theme', 'dark')"),
    ("SELECT * FROM [dbo].[Users] WHERE [Id] = @p0", "SELECT * FROM [dbo].[Users] WHERE [Id] = 5"),
    // Oracle-style and named binds, and spacing.
    ("SELECT * FROM emp WHERE deptno = :dept AND sal > :1", "select * from EMP where DEPTNO=10 and SAL>1000"),
];

/// Pairs that differ in structure: they must not share a fingerprint.
const DIFFERENT: &[(&str, &str)] = &[
    ("SELECT abalance FROM pgbench_accounts WHERE aid = 1", "SELECT abalance FROM pgbench_accounts WHERE bid = 1"),
    ("SELECT abalance FROM pgbench_accounts WHERE aid = 1", "SELECT abalance FROM pgbench_tellers WHERE aid = 1"),
    ("SELECT abalance, aid FROM pgbench_accounts WHERE aid = 1", "SELECT abalance FROM pgbench_accounts WHERE aid = 1"),
    ("SELECT * FROM t WHERE a < 1", "SELECT * FROM t WHERE a <= 1"),
    ("SELECT * FROM t WHERE a = 1 AND b = 2", "SELECT * FROM t WHERE a = 1 OR b = 2"),
    ("SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a = 1"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a = 1"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (SELECT b FROM u)"),
    ("SELECT * FROM t WHERE a NOT IN (1)", "SELECT * FROM t WHERE a IN (1)"),
    ("SELECT * FROM t ORDER BY a ASC", "SELECT * FROM t ORDER BY a DESC"),
    ("SELECT * FROM t ORDER BY a", "SELECT * FROM t ORDER BY b"),
    ("SELECT * FROM t ORDER BY a, b", "SELECT * FROM t ORDER BY b, a"),
    ("SELECT * FROM t LIMIT 1", "SELECT * FROM t"),
    ("SELECT * FROM a JOIN b ON a.id = b.a_id", "SELECT * FROM a LEFT JOIN b ON a.id = b.a_id"),
    ("SELECT * FROM a JOIN b ON a.id = b.a_id", "SELECT * FROM a JOIN b ON a.id = b.a_id JOIN c ON c.id = b.c_id"),
    ("SELECT count(*) FROM t", "SELECT count(id) FROM t"),
    ("SELECT a - 1 FROM t", "SELECT a + 1 FROM t"),
    (r#"SELECT * FROM "User""#, r#"SELECT * FROM "user""#),
    ("INSERT INTO t (a, b) VALUES (1, 2)", "INSERT INTO t (a, b, c) VALUES (1, 2, 3)"),
    ("INSERT INTO t (a) VALUES (1)", "INSERT INTO t (b) VALUES (1)"),
    ("SELECT 1; SELECT 2", "SELECT 1"),
    ("SELECT * FROM t WHERE a = true", "SELECT * FROM t WHERE a = false"),
    ("SELECT * FROM t WHERE a = 1 FOR UPDATE", "SELECT * FROM t WHERE a = 1"),
    ("UPDATE t SET a = a + 1 WHERE id = 1", "UPDATE t SET a = a - 1 WHERE id = 1"),
];

/// Exact normalised texts.
const TEXTS: &[(&str, &str)] = &[
    (
        "UPDATE pgbench_accounts SET abalance = abalance + -4096 WHERE aid = 81234;",
        "update pgbench_accounts set abalance = abalance + ? where aid = ?",
    ),
    (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 4242, -3000, CURRENT_TIMESTAMP);",
        "insert into pgbench_history (tid, bid, aid, delta, mtime) values (?, ?, ?, ?, current_timestamp)",
    ),
    (
        r#"SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2"#,
        r#"select "users".* from "users" where "users"."id" = ? limit ?"#,
    ),
    (
        r#"SELECT "auth_user"."email" FROM "auth_user" WHERE ("auth_user"."date_joined" > '2024-05-01'::timestamptz AND "auth_user"."username" = 'k1')"#,
        r#"select "auth_user"."email" from "auth_user" where ("auth_user"."date_joined" > ?::timestamptz and "auth_user"."username" = ?)"#,
    ),
    (
        "SELECT COUNT(DISTINCT (s_i_id)) FROM order_line, stock WHERE ol_o_id < 3001 AND s_i_id = ol_i_id",
        "select count(distinct (s_i_id)) from order_line, stock where ol_o_id < ? and s_i_id = ol_i_id",
    ),
    (
        "select sum(l_extendedprice*l_discount) from lineitem where l_discount between .06 - 0.01 and .06 + 0.01",
        "select sum(l_extendedprice * l_discount) from lineitem where l_discount between ? - ? and ? + ?",
    ),
    (
        "SELECT SQL_CALC_FOUND_ROWS wp_posts.ID FROM wp_posts WHERE 1=1 AND ((wp_posts.post_status = 'publish')) ORDER BY wp_posts.post_date DESC LIMIT 0, 10",
        "select sql_calc_found_rows wp_posts.id from wp_posts where ? = ? and ((wp_posts.post_status = ?)) order by wp_posts.post_date desc limit ?, ?",
    ),
    (
        "INSERT INTO wp_postmeta (post_id, meta_key) VALUES (12, '_edit_lock'), (12, '_edit_last') ON DUPLICATE KEY UPDATE meta_key = VALUES(meta_key)",
        "insert into wp_postmeta (post_id, meta_key) values (?, ?) on duplicate key update meta_key = values(meta_key)",
    ),
    (
        "SELECT * FROM items WHERE id = ANY(ARRAY[1, -2, 3]) AND tag IN ( 'a' , 'b' )",
        "select * from items where id = any(array[?]) and tag in (?)",
    ),
    (
        "SELECT * FROM t WHERE a IN(SELECT b FROM u WHERE c IN (1,2))",
        "select * from t where a in(select b from u where c in (?))",
    ),
    ("select -1, +2, 3 - -4, f(-5), x-6 from t where y = -7", "select ?, ?, ? - ?, f(?), x - ? from t where y = ?"),
    (
        r#"SELECT data->>'name', arr[1], "Mixed"."Case", `back`, [Bracket] FROM docs"#,
        r#"select data ->> ?, arr[?], "Mixed"."Case", `back`, [Bracket] from docs"#,
    ),
    ("SELECT @@GLOBAL.sql_mode, @uservar, x::INT FROM t", "select @@global.sql_mode, ?, x::int from t"),
    ("  SELECT\t1 /* c */ ;; -- tail\n ; ", "select ?"),
    ("SELECT 1; SELECT 2;", "select ?; select ?"),
    ("SELECT a AS \"Größe\", ÄBC FROM t", "select a as \"Größe\", Äbc from t"),
];

#[test]
fn literal_variants_share_a_fingerprint() {
    assert!(SAME.len() >= 30);
    for (a, b) in SAME {
        let (fa, fb) = (fp(a), fp(b));
        assert_eq!(fa.text(), fb.text(), "\n{a}\n{b}");
        assert_eq!(fa.hash(), fb.hash(), "\n{a}\n{b}");
        assert_eq!(fa, fb);
    }
}

#[test]
fn structural_variants_differ() {
    for (a, b) in DIFFERENT {
        assert_ne!(fp(a).hash(), fp(b).hash(), "\n{a}\n{b}\n{}", fp(a).text());
        assert_ne!(fp(a).text(), fp(b).text());
    }
}

#[test]
fn normalised_texts() {
    for (sql, text) in TEXTS {
        let f = Fingerprint::<512>::of(sql);
        assert_eq!(f.text(), *text, "{sql}");
        assert!(!f.is_truncated());
        assert_eq!(normalized(sql.as_bytes()), *text);
    }
}

#[test]
fn placeholders_of_every_style_are_one() {
    let forms = ["?", "?7", "$1", ":name", ":1", "@p1", "%s", "%(name)s", "42", "'x'", "-3.5", "$$x$$", "E'x'"];
    for form in forms {
        assert_eq!(
            fp(&std::format!("select * from t where a = {form}")).text(),
            "select * from t where a = ?",
            "{form}"
        );
    }
}

#[test]
fn empty_input_has_a_non_zero_hash() {
    let empty = fp("");
    assert_eq!(empty.text(), "");
    assert_ne!(empty.hash(), 0);
    assert!(!empty.is_truncated());
    for blank in ["  ", ";", "-- comment", "/* c */ ;\n", "# mysql"] {
        assert_eq!(fp(blank), empty, "{blank:?}");
    }
}

#[test]
fn text_is_cut_at_a_character_boundary() {
    let sql = "SELECT \"ééé\" FROM t";
    let full = normalized(sql.as_bytes());
    assert_eq!(full, "select \"ééé\" from t");
    assert_eq!(full.len(), 22);
    let whole = Fingerprint::<22>::of(sql);
    assert_eq!(whole.text(), full);
    assert!(!whole.is_truncated());
    for (len, text) in [(0, ""), (8, "select \""), (9, "select \""), (10, "select \"é"), (21, "select \"ééé\" from ")]
    {
        let f = match len {
            0 => Fingerprint::<0>::of(sql).hash(),
            8 => check::<8>(sql, text),
            9 => check::<9>(sql, text),
            10 => check::<10>(sql, text),
            _ => check::<21>(sql, text),
        };
        assert_eq!(f, whole.hash(), "the hash covers the whole text");
    }
    let short = Fingerprint::<10>::of(sql);
    assert_eq!(std::format!("{short}"), "select \"é...");
    assert_eq!(std::format!("{whole}"), full);
}

fn check<const T: usize>(sql: &str, text: &str) -> u64 {
    let f = Fingerprint::<T>::of(sql);
    assert_eq!(f.text(), text);
    assert!(f.is_truncated());
    f.hash()
}

#[test]
fn bytes_that_are_not_utf8() {
    let f = Fingerprint::<64>::of_bytes(b"SELECT \xff\xfeA FROM t WHERE a = 'caf\xe9'");
    assert_eq!(f.text(), "select \u{FFFD}\u{FFFD}a from t where a = ?");
    assert_eq!(f.hash(), Fingerprint::<64>::of("select \u{FFFD}\u{FFFD}a from t where a = ?").hash());
    assert_eq!(Fingerprint::<64>::of_bytes(b"\"\xc3\" x").text(), "\"\u{FFFD}\" x");
}

#[test]
fn unterminated_and_extreme_input() {
    for sql in [
        "select 'abc",
        "select \"abc",
        "select `a",
        "select [a",
        "select /* x",
        "select $$abc",
        "select $a$ b",
        "select E'\\",
    ] {
        let f = fp(sql);
        assert!(f.text().starts_with("select"), "{sql}: {}", f.text());
    }
    assert_eq!(fp("select 'abc").text(), "select ?");
    assert_eq!(fp("select $$abc").text(), "select ?");
    let digits: String = core::iter::repeat_n('9', 10_000).collect();
    assert_eq!(fp(&std::format!("select {digits}")).text(), "select ?");
    let deep = std::format!("select {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let f = fp(&deep);
    assert!(f.is_truncated());
    assert_eq!(f.text().len(), DEFAULT_TEXT_LEN);
    let list: Vec<String> = (0..10_000_u32).map(|i| i.to_string()).collect();
    let long_in = std::format!("select * from t where id in ({})", list.join(", "));
    assert_eq!(fp(&long_in), fp("select * from t where id in (1)"));
}

#[test]
fn footprint() {
    #[cfg(target_pointer_width = "64")]
    {
        assert_eq!(Fingerprint::<DEFAULT_TEXT_LEN>::FOOTPRINT, 152);
        assert_eq!(Fingerprint::<0>::FOOTPRINT, 24, "the hash, the length and the flag");
    }
}

/// SQL-ish pieces for the property tests: keywords, operators, quotes, comment markers,
/// sigils, bytes that start special tokens, and a few multi-byte characters.
const PIECES: &[&str] = &[
    "select",
    "*",
    "from",
    "t",
    "u.a",
    "where",
    "a",
    "=",
    "<",
    ">=",
    "and",
    "or",
    "in",
    "(",
    ")",
    ",",
    "-",
    "+",
    "values",
    "'x'",
    "'",
    "--",
    "/*",
    "*/",
    "\n",
    "::",
    "int",
    "array",
    "[",
    "]",
    "[a]",
    ".",
    "limit",
    "?",
    "$1",
    ";",
    "#",
    "#>",
    "e",
    "E",
    "N",
    "x",
    "$$",
    "$a$",
    ":",
    ":=",
    "@",
    "@@",
    "%",
    "%(",
    ")s",
    "1.5",
    "1e5",
    ".5",
    "between",
    "not",
    "null",
    "is",
    "f(",
    "\"",
    "`",
    "\\",
    "é",
    "\u{ff}",
    "!",
    "|",
    "&",
    "0x",
    "_",
    "$",
    "in (1, 2)",
    "values (1), (2)",
];

/// Pieces joined by spaces around integer slots (`None`); no quoted identifiers, so every
/// integer is a literal or inside a string or comment.
fn template() -> impl Strategy<Value = Vec<Option<&'static str>>> {
    let unquoted: Vec<&str> = PIECES.iter().copied().filter(|p| !p.contains(['"', '`', '['])).collect();
    let pieces = prop::sample::select(unquoted);
    proptest::collection::vec(prop_oneof![3 => pieces.prop_map(Some), 1 => Just(None)], 0..40)
}

fn render(template: &[Option<&str>], ints: &[u64]) -> String {
    let mut ints = ints.iter().cycle();
    let parts: Vec<String> = template
        .iter()
        .map(|slot| match slot {
            Some(word) => String::from(*word),
            None => ints.next().map_or(String::from("0"), |i| i.to_string()),
        })
        .collect();
    parts.join(" ")
}

proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let f = Fingerprint::<32>::of_bytes(&bytes);
        prop_assert_ne!(f.hash(), 0);
        prop_assert!(f.text().len() <= 32);
        let full = normalized(&bytes);
        prop_assert!(full.starts_with(f.text()));
        prop_assert_eq!(f.is_truncated(), full.len() > f.text().len());
        let mut hash = Fnv1a::new();
        hash.write(full.as_bytes());
        prop_assert_eq!(f.hash(), hash.finish());
    }

    #[test]
    fn never_panics_on_strings(sql in "\\PC{0,200}") {
        let f = Fingerprint::<64>::of(&sql);
        prop_assert_eq!(&f, &Fingerprint::<64>::of_bytes(sql.as_bytes()));
        let text = normalized(sql.as_bytes());
        prop_assert_eq!(normalized(text.as_bytes()), text);
    }

    /// Normalising normalised text changes nothing: the text reads back as the same tokens.
    #[test]
    fn normalised_text_is_a_fixed_point(
        parts in proptest::collection::vec((prop::sample::select(PIECES), any::<bool>()), 0..40),
    ) {
        let sql: String = parts.iter().flat_map(|(piece, space)| [*piece, if *space { " " } else { "" }]).collect();
        let text = normalized(sql.as_bytes());
        prop_assert_eq!(normalized(text.as_bytes()), text.clone(), "{:?}", sql);
    }

    #[test]
    fn integers_do_not_change_the_hash(
        template in template(),
        a in proptest::collection::vec(any::<u64>(), 1..8),
        b in proptest::collection::vec(any::<u64>(), 1..8),
    ) {
        let (x, y) = (render(&template, &a), render(&template, &b));
        prop_assert_eq!(fp(&x).hash(), fp(&y).hash(), "\n{}\n{}", x, y);
    }
}
