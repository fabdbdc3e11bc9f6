use std::time::Duration;

use serde::Deserialize;

/// A failure the development provider can be told to produce, so every failure path of the
/// real client code can be exercised without Facebook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// The token endpoint refuses every code with Facebook's OAuthException.
    TokenError,
    /// `/me` answers 500 with Facebook's transient error body.
    MeServerError,
    /// `/me` answers 200 with a body that is not JSON.
    MalformedJson,
    /// `/me` leaves `email` out, as Facebook does for people who declined it.
    MissingEmail,
    /// The token endpoint never answers.
    Hang,
    /// `/me` answers with a megabyte of JSON.
    OversizedResponse,
}

/// What the development provider currently injects; tests change it between requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Delay before the token and `/me` endpoints answer.
    pub latency: Duration,
    pub fault: Fault,
}
