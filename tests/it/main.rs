//! End-to-end tests: exposition checked by real parsers, allocation counting, bad input.

mod adversarial;
mod alloc;
mod bad_input;
mod cli;
mod crash;
mod demo;
mod exporter;
mod exposition;
mod leak_check;
mod prometheus;
mod rules;
mod support;
#[cfg(unix)]
mod watch;
