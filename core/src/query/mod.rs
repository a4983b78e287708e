//! Slow-query tracking: per-fingerprint statistics of the slowest queries.

pub mod tracker;
