//! loginwith: sign in with Facebook (and, next, other OAuth 2.0 / OpenID Connect providers)
//! through the authorization-code flow with PKCE, server-rendered.
//!
//! Layout: [`config`] reads and validates settings; [`web`] holds routes and pages;
//! [`auth`] the providers and the background code exchange; [`store`] all SQL;
//! [`dev_provider`] an imitation of Facebook for development and tests; [`App`] wires them;
//! [`logging`] sets up the log output; [`shutdown`] drains on the way out; [`telemetry`]
//! counts for Prometheus.

mod app;
pub mod auth;
pub mod config;
pub mod dev_provider;
pub mod logging;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod web;

pub use app::{App, StartupError, check_issuers, open_store};
pub use config::DEV_PROVIDER_PATH;
pub use store::UserId;
pub use web::{Accounts, SignedIn};
