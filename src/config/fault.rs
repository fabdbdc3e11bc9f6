//! The development provider's injected failure, as configuration names it
//! (`dev_provider.fault`). It lives here, not in `dev_provider`, so that configuration
//! depends on nothing above it: `dev_provider` reads it from here.

use serde::{Deserialize, Serialize};

/// A failure the development provider can be told to produce, so every failure path of the
/// real client code can be exercised without Facebook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Answers like the real provider.
    #[default]
    None,
    /// The token endpoint refuses every code with Facebook's OAuthException (400).
    TokenError,
    /// The token endpoint refuses every code with RFC 6749's `invalid_grant` (401).
    TokenInvalidGrant,
    /// The token endpoint answers 400 with an HTML page instead of an OAuth error.
    TokenBadRequestHtml,
    /// The token endpoint answers 500 with an HTML page, as a failing load balancer does.
    TokenServerError,
    /// The token endpoint answers 429 with Facebook's rate-limit error.
    TokenRateLimited,
    /// The token endpoint answers 200 with an empty body.
    TokenEmptyBody,
    /// The token endpoint answers 200 with the token form-encoded (as before Graph v2.3) but
    /// labelled JSON.
    TokenNotJson,
    /// The token endpoint answers 200 with the JSON token labelled `text/html`.
    TokenHtmlContentType,
    /// The token endpoint answers 200 without `access_token`.
    TokenMissingAccessToken,
    /// The token endpoint answers 200 with `"access_token":""`.
    TokenEmptyAccessToken,
    /// The token endpoint answers 200 with `"token_type":"mac"`.
    TokenTypeMac,
    /// The token endpoint answers 200 with `"token_type":"Bearer"`: harmless, signs in.
    TokenTypeCapitalized,
    /// `/me` answers 500 with Facebook's transient error body.
    MeServerError,
    /// `/me` answers 500 with a megabyte of HTML.
    MeHugeHtmlError,
    /// `/me` answers 429 with Facebook's rate-limit error.
    MeRateLimited,
    /// `/me` refuses the token with Graph error 190 (the session has expired).
    MeExpiredToken,
    /// `/me` answers 200 with a body that is not JSON.
    MalformedJson,
    /// `/me` answers 200 with the JSON profile labelled `text/html`.
    MeHtmlContentType,
    /// `/me` answers 200 with the JSON profile labelled `text/javascript`, Facebook's legacy
    /// type: harmless, signs in.
    MeLegacyContentType,
    /// `/me` leaves `email` out, as Facebook does for people who declined it.
    MissingEmail,
    /// The token endpoint never answers.
    Hang,
    /// `/me` answers with a megabyte of JSON.
    OversizedResponse,
}
