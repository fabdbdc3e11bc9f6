//! The tests that read what the app logs, as modules of one test binary: a tracing subscriber
//! is global to a process, so they share one capture at TRACE level
//! (`Capture::install_trace`), apart from `tests/it/`, whose tests would otherwise fill it.
//! Each looks only for lines its own test makes (its reference code, its secrets).
//!
//! One file's tests: `cargo test --test logged logs::`.

mod access;
mod error_reference;
mod github_logs;
mod health;
mod logs;
mod oidc_discovery;
mod provider_logs;
