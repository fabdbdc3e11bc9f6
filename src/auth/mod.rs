//! Identity providers and the code exchange.

pub mod access;
pub mod discord;
pub mod events;
pub mod exchange;
pub mod facebook;
mod failure;
pub mod github;
pub mod http;
mod link;
mod oauth;
pub mod oidc;
mod provider;
pub mod setup;
pub mod signed_request;
pub mod x;

pub use access::{Access, Conditions, Narrowing, Person, Refusals, Target};
pub use events::OperationEvents;
pub use exchange::{Attempt, Exchanger};
pub use facebook::FacebookApp;
pub use failure::CallFailure;
pub use crate::model::{FailureReason, Profile};
pub use provider::{
    BoxFuture, ExchangeError, LoginSecrets, Provider, Providers, Unavailable,
};
pub use setup::{
    ConfiguredProviders, LocalClients, ProviderSetupError, check_issuers, configured_providers,
};
