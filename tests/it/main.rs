//! The integration tests, as modules of one test binary: the crate is linked once, not once
//! per file (matklad, "Delete Cargo Integration Tests"). Tests that read the global log are in
//! `tests/logged/`, and the outage tests (process-wide outage state, a private PostgreSQL
//! cluster) in `tests/outages.rs`: both need a process of their own.
//!
//! One file's tests: `cargo test --test it store_backends::`.

mod access_rules;
mod account_sessions;
mod addresses;
mod apple;
mod bad_input;
mod binary;
mod binary_logs;
mod binary_shutdown;
mod binary_static;
mod brand;
mod config;
mod data_deletion;
mod dev_oidc;
mod email_linking;
mod embed;
mod forward_auth;
mod fuzz_queries;
mod github;
mod instances;
mod issuer_logout;
mod linking;
mod login_flow;
mod long_poll;
mod metrics;
mod microsoft;
mod oidc;
mod operators;
mod provider_faults;
mod providers;
mod return_to;
mod security;
mod status;
mod store;
mod store_backends;
mod x_discord;
