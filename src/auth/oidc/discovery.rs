//! An issuer's discovery document and keys: fetched once at start-up and again on a schedule,
//! so that an issuer being down never takes the site down and a refresh that fails keeps the
//! last good document.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use openidconnect::{
    AdditionalProviderMetadata, IssuerUrl, JsonWebKeySet,
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
        CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
        CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    },
};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::Oidc;
use crate::auth::{
    http::{HttpClient, HttpError, error_chain},
    oauth::excerpt,
};

/// The first retry after a failed discovery; each failure doubles it...
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ...up to this (or the refresh period, when that is shorter).
const LONGEST_RETRY: Duration = Duration::from_secs(5 * 60);

/// The discovery members openidconnect's core metadata lacks: RFC 9207's promise that the
/// issuer names itself in `iss` on every authorization response, and RP-Initiated Logout's
/// endpoint.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IssParameter {
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Where a browser is sent to end its session at the issuer (RP-Initiated Logout 1.0),
    /// as the document writes it: read as text so that a value that is no URL (an empty
    /// string, a relative path) costs only the logout at the issuer, never the sign-ins
    /// (the document would not parse); `Oidc::end_session_url` parses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for IssParameter {}

/// Core provider metadata plus [`IssParameter`].
pub type Metadata = openidconnect::ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Why discovery gave no usable document.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// The document or the keys could not be fetched or read: worth trying again.
    #[error("discovery failed: {0}")]
    Unreachable(String),
    /// The document names another issuer (not byte for byte the configured one): a
    /// configuration mistake, or someone else's document. Never used.
    #[error("discovery names another issuer: {0}")]
    OtherIssuer(String),
}

/// The document and keys at `issuer` (openidconnect compares the document's `issuer` with the
/// configured one before fetching the keys).
pub async fn fetch(issuer: &IssuerUrl, http: &HttpClient) -> Result<Metadata, DiscoveryError> {
    Metadata::discover_async(issuer.clone(), http)
        .await
        .map_err(|error| match error {
            openidconnect::DiscoveryError::Validation(detail) => {
                DiscoveryError::OtherIssuer(detail)
            }
            openidconnect::DiscoveryError::Response(status, _, _) => {
                DiscoveryError::Unreachable(format!("HTTP {status}"))
            }
            other => DiscoveryError::Unreachable(detail(&other)),
        })
}

/// The document below `base` when it names `expected` as its issuer rather than `base`
/// itself (Microsoft's multi-tenant documents name a template), and its keys.
pub async fn fetch_naming(
    base: &IssuerUrl,
    expected: &str,
    http: &HttpClient,
) -> Result<Metadata, DiscoveryError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        base.as_str().trim_end_matches('/')
    );
    let (status, _, body) = http
        .send(http.reqwest().get(&url))
        .await
        .map_err(|e| DiscoveryError::Unreachable(excerpt(&error_chain(&e), 200)))?;
    if !status.is_success() {
        return Err(DiscoveryError::Unreachable(format!("HTTP {status}")));
    }
    let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
        DiscoveryError::Unreachable(format!(
            "unreadable document ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if metadata.issuer().as_str() != expected {
        return Err(DiscoveryError::OtherIssuer(format!(
            "expected {expected}, the document names {}",
            excerpt(metadata.issuer().as_str(), 200)
        )));
    }
    let keys = fetch_keys(&metadata, http)
        .await
        .map_err(DiscoveryError::Unreachable)?;
    Ok(metadata.set_jwks(keys))
}

/// The issuer's keys again (after an ID token named a key we do not have).
pub async fn fetch_keys(
    metadata: &Metadata,
    http: &HttpClient,
) -> Result<JsonWebKeySet<CoreJsonWebKey>, String> {
    JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|error| match error {
            openidconnect::DiscoveryError::Response(status, _, _) => format!("HTTP {status}"),
            other => detail(&other),
        })
}

fn detail(error: &openidconnect::DiscoveryError<HttpError>) -> String {
    excerpt(&error_chain(error), 200)
}

/// Keeps `oidc`'s document fresh in the background for as long as the provider lives: every
/// `refresh` after a success; after a failure with a backoff from one second, doubling, up to
/// five minutes (or `refresh`). The first attempt is `first_in` from now.
pub fn keep_fresh(oidc: &Arc<Oidc>, first_in: Duration, refresh: Duration) {
    let oidc: Weak<Oidc> = Arc::downgrade(oidc);
    tokio::spawn(async move {
        let longest = LONGEST_RETRY.min(refresh).max(FIRST_RETRY);
        let mut backoff = FIRST_RETRY;
        let mut delay = first_in;
        let mut failing = false;
        loop {
            tokio::time::sleep(delay).await;
            let Some(oidc) = oidc.upgrade() else {
                return;
            };
            delay = match oidc.rediscover().await {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        info!(
                            provider = oidc.name(),
                            "issuer discovered after failed attempts: its sign-ins work again"
                        );
                    }
                    backoff = FIRST_RETRY;
                    refresh
                }
                Err(failure) => {
                    failing = true;
                    let retry = backoff;
                    backoff = (backoff * 2).min(longest);
                    report(&oidc, &failure, retry);
                    retry
                }
            };
        }
    });
}

/// One log line per failed attempt, saying what people see meanwhile.
fn report(oidc: &Oidc, failure: &DiscoveryError, retry: Duration) {
    let provider = oidc.name();
    let retry_secs = retry.as_secs();
    match failure {
        DiscoveryError::Unreachable(detail) if oidc.is_available() => warn!(
            provider,
            retry_secs, "discovery refresh failed ({detail}); keeping the last good document"
        ),
        DiscoveryError::Unreachable(detail) => warn!(
            provider,
            retry_secs,
            "issuer unreachable ({detail}); its sign-ins show a \"cannot reach\" page until discovery succeeds"
        ),
        DiscoveryError::OtherIssuer(detail) => error!(
            provider,
            retry_secs,
            "provider unavailable: the discovery document names another issuer ({detail}); check providers.{provider}.issuer"
        ),
    }
}
