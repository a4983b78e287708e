//! End-to-end tests: exposition checked by real parsers, allocation counting, bad input,
//! OTLP pushes decoded by the OTLP project's own types.

mod adversarial;
mod alloc;
mod bad_input;
mod bridges;
mod cli;
mod crash;
mod dashboard;
mod demo;
mod exemplars;
mod exporter;
mod exposition;
mod leak_check;
mod middleware;
mod otlp;
mod prometheus;
mod protobuf;
mod rules;
mod support;
#[cfg(unix)]
mod watch;
