use super::*;
use crate::query::fingerprint::Fingerprint;
use proptest::prelude::*;
use std::string::{String, ToString};
use std::vec::Vec;

use HintKind::{Equality as Eq, Join, Range};

type Expected<'a> = &'a [(Option<&'a str>, &'a str, HintKind)];

fn hints(sql: &str) -> Vec<(Option<&str>, &str, HintKind)> {
    let mut found = Vec::new();
    for_each_hint(sql, |h| found.push((h.table, h.column, h.kind)));
    found
}

fn indexes(sql: &str) -> Vec<String> {
    Hints::<16>::of(sql).indexes().map(|index| index.to_string()).collect()
}

/// Queries (normalised texts and raw SQL), their hints in order, and the suggested indexes.
const CASES: &[(&str, Expected<'_>, &[&str])] = &[
    // Rails / ActiveRecord.
    (
        r#"select "users".* from "users" where "users"."id" = ? limit ?"#,
        &[(Some(r#""users""#), r#""id""#, Eq)],
        &[r#""users" ("id")"#],
    ),
    // TPC-C new-order: two tables, unqualified columns, so no tables and no index.
    (
        "select c_discount, c_last from customer, warehouse where w_id = ? and c_w_id = w_id and c_d_id = ? and c_id = ?",
        &[(None, "w_id", Eq), (None, "c_w_id", Join), (None, "w_id", Join), (None, "c_d_id", Eq), (None, "c_id", Eq)],
        &[],
    ),
    // WordPress term query.
    (
        "select t.*, tt.* from wp_terms as t inner join wp_term_taxonomy as tt on t.term_id = tt.term_id \
         where tt.taxonomy in (?) and t.term_id in (?)",
        &[
            (Some("wp_terms"), "term_id", Join),
            (Some("wp_term_taxonomy"), "term_id", Join),
            (Some("wp_term_taxonomy"), "taxonomy", Eq),
            (Some("wp_terms"), "term_id", Eq),
        ],
        &["wp_terms (term_id)", "wp_term_taxonomy (taxonomy, term_id)"],
    ),
    // Redmine: `<>` is skipped.
    (
        r#"select "issues".* from "issues" inner join "projects" on "projects"."id" = "issues"."project_id" where (projects.status <> ?) and "issues"."id" = ? limit ?"#,
        &[
            (Some(r#""projects""#), r#""id""#, Join),
            (Some(r#""issues""#), r#""project_id""#, Join),
            (Some(r#""issues""#), r#""id""#, Eq),
        ],
        &[r#""projects" ("id")"#, r#""issues" ("id", "project_id")"#],
    ),
    // Equality first, then one range column.
    (
        "select * from orders where customer_id = ? and created_at between ? and ? and status in (?) and note like ?",
        &[
            (Some("orders"), "customer_id", Eq),
            (Some("orders"), "created_at", Range),
            (Some("orders"), "status", Eq),
            (Some("orders"), "note", Range),
        ],
        &["orders (customer_id, status, created_at)"],
    ),
    ("select * from t where a = ? or b = ?", &[], &[]),
    ("select * from t where a = ? and (b = ? or c = ?)", &[(Some("t"), "a", Eq)], &["t (a)"]),
    // Django and WordPress wrap conditions in parentheses.
    (
        r#"select "auth_user"."email" from "auth_user" where ("auth_user"."date_joined" > ?::timestamptz and "auth_user"."username" = ?)"#,
        &[(Some(r#""auth_user""#), r#""date_joined""#, Range), (Some(r#""auth_user""#), r#""username""#, Eq)],
        &[r#""auth_user" ("username", "date_joined")"#],
    ),
    (
        "select wp_posts.id from wp_posts where ? = ? and wp_posts.post_type = ? and ((wp_posts.post_status = ?)) \
         order by wp_posts.post_date desc limit ?, ?",
        &[(Some("wp_posts"), "post_type", Eq), (Some("wp_posts"), "post_status", Eq)],
        &["wp_posts (post_type, post_status)"],
    ),
    // pgbench: the SET assignments are not predicates.
    (
        "update pgbench_accounts set abalance = abalance + ? where aid = ?",
        &[(Some("pgbench_accounts"), "aid", Eq)],
        &["pgbench_accounts (aid)"],
    ),
    (
        "DELETE FROM tokens WHERE expires_at < now() AND user_id IS NULL",
        &[(Some("tokens"), "expires_at", Range), (Some("tokens"), "user_id", Eq)],
        &["tokens (user_id, expires_at)"],
    ),
    (
        "select * from t where ? = a and -1 < b and 'x' = c",
        &[(Some("t"), "a", Eq), (Some("t"), "b", Range), (Some("t"), "c", Eq)],
        &["t (a, c, b)"],
    ),
    // A self-join is a join: two references of one table.
    (
        "select * from emp e join emp m on e.manager_id = m.id where m.dept = ?",
        &[(Some("emp"), "manager_id", Join), (Some("emp"), "id", Join), (Some("emp"), "dept", Eq)],
        &["emp (dept, manager_id, id)"],
    ),
    // The subquery's own conditions and tables are skipped.
    (
        "select * from t where a in (select b from u where c = ?) and d > ?",
        &[(Some("t"), "a", Eq), (Some("t"), "d", Range)],
        &["t (a, d)"],
    ),
    (
        "select * from users where lower(email) = ? and created_at > now() - interval ?",
        &[(Some("users"), "created_at", Range)],
        &["users (created_at)"],
    ),
    (
        "select * from t where a <> ? and b is not null and c not in (?) and not d = ? and e::date = ? and (f, g) = (?, ?)",
        &[],
        &[],
    ),
    // Prisma: schema-qualified, quoted.
    (
        r#"select "public"."User"."id" from "public"."User" where "public"."User"."email" = ? limit ? offset ?"#,
        &[(Some(r#""public"."User""#), r#""email""#, Eq)],
        &[r#""public"."User" ("email")"#],
    ),
    // Rails on MySQL, alias without AS.
    (
        "select `p`.* from `posts` `p` where `p`.`author_id` in (?) order by `p`.`created_at` desc",
        &[(Some("`posts`"), "`author_id`", Eq)],
        &["`posts` (`author_id`)"],
    ),
    // PostgreSQL's UPDATE ... FROM.
    (
        "update accounts a set balance = ? from users u where u.id = a.user_id and u.email = ?",
        &[(Some("users"), "id", Join), (Some("accounts"), "user_id", Join), (Some("users"), "email", Eq)],
        &["users (email, id)", "accounts (user_id)"],
    ),
    // MySQL's multi-table UPDATE.
    (
        "update t1 join t2 on t1.id = t2.t1_id set t1.a = ? where t2.b = ?",
        &[(Some("t1"), "id", Join), (Some("t2"), "t1_id", Join), (Some("t2"), "b", Eq)],
        &["t1 (id)", "t2 (b, t1_id)"],
    ),
    // A literal pattern with a leading wildcard is no range; `ilike` is no hint.
    (
        "select * from t where name like '%abc' and code like 'ab%' and x like $$_x$$ and y ilike ?",
        &[(Some("t"), "code", Range)],
        &["t (code)"],
    ),
    ("select * from t where a = b", &[], &[]),
    // A derived table has no table to index.
    ("select * from (select * from t) sub where sub.x = ?", &[(None, "x", Eq)], &[]),
    (
        "select * from a join b using (id) where a.x = ? and b.y >= ?",
        &[(Some("a"), "x", Eq), (Some("b"), "y", Range)],
        &["a (x)", "b (y)"],
    ),
    // Hibernate.
    (
        "select user0_.id as id1_0_ from users user0_ where user0_.email=?",
        &[(Some("users"), "email", Eq)],
        &["users (email)"],
    ),
    // TPC-H Q6: one index, on the first range column.
    (
        "select sum(l_extendedprice * l_discount) as revenue from lineitem where l_shipdate >= date ? \
         and l_shipdate < date ? + interval ? year and l_discount between ? - ? and ? + ? and l_quantity < ?",
        &[
            (Some("lineitem"), "l_shipdate", Range),
            (Some("lineitem"), "l_shipdate", Range),
            (Some("lineitem"), "l_discount", Range),
            (Some("lineitem"), "l_quantity", Range),
        ],
        &["lineitem (l_shipdate)"],
    ),
    // Only the first statement.
    ("select * from t where a = ?; select * from u where b = ?", &[(Some("t"), "a", Eq)], &["t (a)"]),
    // A FILTER clause and a function's `FROM` are no conditions or tables.
    (
        "select count(*) filter (where x = ?), extract(year from d) from t left join u on u.t_id = t.id where t.k = ?",
        &[(Some("u"), "t_id", Join), (Some("t"), "id", Join), (Some("t"), "k", Eq)],
        &["u (t_id)", "t (k, id)"],
    ),
    ("insert into t (a) values (?)", &[], &[]),
    ("with x as (select * from t where a = ?) select * from x where id = ?", &[], &[]),
];

#[test]
fn hints_of_queries() {
    for (sql, expected, _) in CASES {
        assert_eq!(hints(sql), *expected, "{sql}");
    }
}

#[test]
fn suggested_indexes() {
    for (sql, _, expected) in CASES {
        assert_eq!(indexes(sql), *expected, "{sql}");
    }
}

#[test]
fn hints_of_a_fingerprint_text() {
    let raw = "SELECT o.id FROM Orders o JOIN Customers c ON c.ID = o.customer_id \
               WHERE o.Status IN (1, 2, 3) AND c.country = 'NL' AND o.created_at >= '2024-01-01'";
    let fingerprint: Fingerprint = Fingerprint::of(raw);
    assert_eq!(
        hints(fingerprint.text()),
        [
            (Some("customers"), "id", Join),
            (Some("orders"), "customer_id", Join),
            (Some("orders"), "status", Eq),
            (Some("customers"), "country", Eq),
            (Some("orders"), "created_at", Range),
        ]
    );
    // Raw text gives the same hints, as written.
    assert_eq!(hints(raw)[2], (Some("Orders"), "Status", Eq));
    assert_eq!(indexes(fingerprint.text()), ["customers (country, id)", "orders (status, customer_id, created_at)"]);
}

#[test]
fn what_was_skipped() {
    let skipped = for_each_hint("select * from t where a = ? or b = ?", |_| {});
    assert_eq!(skipped, Skipped { disjunctions: 1, ..Skipped::default() });
    let sql = "select * from t where (a = ? or b = ?) and c = ? and ((((d = ? and (e = ?))))) and (((((f = ?)))))";
    let skipped = for_each_hint(sql, |_| {});
    assert_eq!(skipped, Skipped { disjunctions: 1, nested: 2, ..Skipped::default() });
    assert_eq!(hints(sql), [(Some("t"), "c", Eq), (Some("t"), "d", Eq)]);
    assert!(for_each_hint("insert into t values (?)", |_| {}).unsupported_statement);
    assert!(for_each_hint("", |_| {}).unsupported_statement);

    // Nine tables: the ninth is not remembered, so unqualified columns get no table.
    let sql = "select * from a, b, c, d, e, f, g, h, i where i.x = ? and a.y = ?";
    let mut found = Vec::new();
    let skipped = for_each_hint(sql, |h| found.push((h.table, h.column)));
    assert_eq!(skipped.tables, 1);
    assert_eq!(found, [(None, "x"), (Some("a"), "y")]);
    let sql = "select * from t, u where t.a = ? and b = ?";
    assert_eq!(hints(sql), [(Some("t"), "a", Eq), (None, "b", Eq)]);
}

#[test]
fn hints_are_distinct_and_bounded() {
    let sql = "select * from t where a = ? and A = ? and b = ? and c = ? and a > ?";
    assert_eq!(hints(sql).len(), 5);
    let all = Hints::<16>::of(sql);
    assert_eq!(all.as_slice().len(), 4, "a = ? counts once");
    assert_eq!(all.dropped(), 0);
    let two = Hints::<2>::of(sql);
    assert_eq!(two.as_slice().len(), 2);
    assert_eq!(two.dropped(), 2);
    assert_eq!(two.skipped(), Skipped::default());
    assert_eq!(indexes(sql), ["t (a, b, c)"]);
    let suggestion = all.indexes().next().map(|index| (index.table(), index.columns().collect::<Vec<_>>()));
    assert_eq!(suggestion, Some(("t", std::vec!["a", "b", "c"])));
}

#[test]
fn footprint() {
    #[cfg(target_pointer_width = "64")]
    {
        assert_eq!(Hint::FOOTPRINT, 40);
        assert_eq!(Hints::<DEFAULT_MAX_HINTS>::FOOTPRINT, 672);
    }
}

proptest! {
    #[test]
    fn never_panics(sql in "\\PC{0,200}") {
        let hints = Hints::<4>::of(&sql);
        let range = sql.as_ptr() as usize..=sql.as_ptr() as usize + sql.len();
        for hint in hints.as_slice() {
            prop_assert!(range.contains(&(hint.column.as_ptr() as usize)));
            prop_assert!(!hint.column.is_empty());
        }
        for index in hints.indexes() {
            prop_assert!(index.columns().count() > 0);
        }
    }

    #[test]
    fn never_panics_on_sql_like_text(
        parts in proptest::collection::vec(prop::sample::select(&[
            "select", "update", "delete", "*", "from", "join", "on", "using", "t", "u x", "a.b", "\"q\"", ".", ",", "where",
            "and", "or", "between", "in", "is", "null", "not", "like", "'%'", "=", "<", ">=", "?", "-", "1", "(", ")",
            "select", "as", "set", ";", "order", "by", "limit",
        ][..]), 0..40),
    ) {
        let sql = parts.join(" ");
        let fingerprint: Fingerprint = Fingerprint::of(&sql);
        for text in [sql.as_str(), fingerprint.text()] {
            let mut count = 0_u32;
            let skipped = for_each_hint(text, |hint| {
                count += 1;
                assert!(!hint.column.is_empty() && hint.table.is_none_or(|t| !t.is_empty()), "{text}");
            });
            let hints = Hints::<8>::of(text);
            prop_assert_eq!(hints.skipped(), skipped);
            prop_assert!(hints.as_slice().len() as u32 + hints.dropped() <= count);
        }
    }
}
