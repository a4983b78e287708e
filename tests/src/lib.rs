//! End-to-end tests of Plimsoll live in `it/` (one test binary, `cargo test -p
//! plimsoll-tests`). They run real clients: `promtool` from Debian's `prometheus`
//! package and Python's `prometheus_client` OpenMetrics parser from the venv that
//! `.ci/run` creates. This library is empty.
