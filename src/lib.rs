//! loginwith: "Sign in with Facebook" (and GitHub, Google, any OpenID Connect issuer) for a
//! site, through the OAuth 2.0 authorization-code flow with PKCE, server-rendered.
//!
//! It runs two ways:
//!
//! - **On its own**, as the `loginwith` binary: in front of any site through a web server's
//!   forward authentication, or as the site's sign-in pages (see the README).
//! - **Inside an axum app**, as this library: build an [`App`] from a [`Config`], merge its
//!   [`App::router`] into the app's router, and take [`SignedIn`] (or `Option<SignedIn>`) in
//!   the app's handlers. With a path in `server.public_url` (`http://localhost:3000/auth`),
//!   every page, callback, asset and the development provider live below that path, and the
//!   rest of the site is the app's.
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, extract::FromRef, response::Html, routing::get};
//! use loginwith::{Accounts, App, SignedIn, config::{Config, Environment}};
//!
//! #[derive(Clone, FromRef)]
//! struct Site {
//!     accounts: Accounts,
//! }
//!
//! /// Anyone not signed in is sent to `/auth?return_to=/dashboard` first.
//! async fn dashboard(person: SignedIn) -> Html<String> {
//!     Html(format!("<p>Your id is {}</p>", person.id()))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_toml(
//!     r#"
//!     [server]
//!     public_url = "http://localhost:3000/auth"
//!     "#,
//!     Environment::Development,
//! )?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let login = App::build(&config, listener.local_addr()?).await?;
//! let site = Router::new()
//!     .route("/dashboard", get(dashboard))
//!     .with_state(Site { accounts: login.accounts() })
//!     .merge(login.router());
//! // With the peer's address: loginwith's rate limits count per client.
//! axum::serve(listener, site.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! `examples/embed.rs` is the same site, complete.

#![warn(missing_docs)]

/// The modules behind the public API: private to the crate, and public (hidden from the
/// documentation) only with the `test-support` feature that the tests and benchmarks use.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(feature = "test-support")]
            #[doc(hidden)]
            pub mod $name;
            #[cfg(not(feature = "test-support"))]
            mod $name;
        )*
    };
}

mod app;
pub mod config;
pub mod logging;
mod model;
internal_modules!(auth, shutdown, store, telemetry, web);
#[cfg(feature = "dev-provider")]
internal_modules!(dev_provider);

pub use app::{App, StartupError, check_database, migrate, rotate_sealing_key};
/// `loginwith users …`: the operators' commands on people.
pub mod users {
    pub use crate::app::{Filter, Person, UsersCommand, users as run};
}
pub use auth::{ProviderSetupError, check_issuers};
pub use config::Config;
pub use model::{Membership, ProviderBrand};
pub use store::UserId;
pub use web::{Accounts, RequireAccess, RequireAccessService, SignedIn};
