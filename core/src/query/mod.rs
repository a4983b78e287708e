//! Slow-query tracking without a SQL engine: allocation-free fingerprints
//! ([`fingerprint`]), per-fingerprint statistics of the queries that take the most time
//! ([`tracker`]) and index hints read from a fingerprint's text ([`hints`]).
//!
//! ```
//! use plimsoll_core::query::fingerprint::fingerprint;
//! use plimsoll_core::query::hints::Hints;
//! use plimsoll_core::SlowQueryTracker;
//!
//! static QUERIES: SlowQueryTracker = SlowQueryTracker::new();
//! let query = fingerprint("SELECT * FROM orders WHERE customer_id = 42 AND created_at > '2026-01-01'");
//! QUERIES.record(query.hash(), query.text(), 250_000, 1_000); // 250 ms: slow
//! let hints: Hints = Hints::of(query.text());
//! let index = hints.indexes().next().unwrap();
//! assert_eq!(index.to_string(), "orders (customer_id, created_at)");
//! ```

pub mod fingerprint;
pub mod hints;
pub mod tracker;
