use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use url::Url;

use super::FailureReason;

/// A boxed future, so that [`Provider`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who signed in, as the provider describes them. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The provider's id for this person (for Facebook: app-scoped).
    pub provider_user_id: String,
    pub first_name: String,
    pub last_name: String,
    /// Absent when the person declined it or has none; not an error.
    pub email: Option<String>,
    /// Whether the provider says it verified `email`. Facebook gives no such flag: false.
    /// Never a reason to merge two people (see PROVIDERS.md, "Account linking").
    pub email_verified: bool,
}

/// Why an exchange failed: the reason for the database and the person, and a detail for the
/// log (status codes, provider error codes; never a secret, a token or a raw body).
#[derive(Debug)]
pub struct ExchangeError {
    pub reason: FailureReason,
    pub detail: String,
}

impl ExchangeError {
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// One identity provider speaking the OAuth 2.0 authorization-code flow with PKCE.
///
/// The web layer only ever talks to this trait: adding Google, GitHub or any OpenID Connect
/// issuer means adding an implementation and registering it in [`Providers`].
///
/// ```
/// use loginwith::auth::{BoxFuture, ExchangeError, FailureReason, Profile, Provider, Providers};
/// use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
/// use url::Url;
///
/// struct Refuses;
///
/// impl Provider for Refuses {
///     fn id(&self) -> &'static str { "refuses" }
///     fn display_name(&self) -> &'static str { "Refuses Inc." }
///     fn authorization_url(&self, state: &CsrfToken, _: &PkceCodeChallenge) -> Url {
///         Url::parse_with_params("https://id.example/authorize", [("state", state.secret())]).unwrap()
///     }
///     fn exchange(&self, _: AuthorizationCode, _: PkceCodeVerifier)
///         -> BoxFuture<'_, Result<Profile, ExchangeError>> {
///         Box::pin(async { Err(ExchangeError::new(FailureReason::Denied, "always")) })
///     }
/// }
///
/// let providers = Providers::new([std::sync::Arc::new(Refuses) as _]);
/// assert!(providers.get("refuses").is_some());
/// assert!(providers.get("facebook").is_none());
/// ```
pub trait Provider: Send + Sync + 'static {
    /// The path segment in `/authorize/{id}` and `/callback/{id}`, and the `provider` column.
    fn id(&self) -> &'static str;

    /// The name people know, for buttons and messages.
    fn display_name(&self) -> &'static str;

    /// The provider's dialog URL for this `state` and PKCE challenge, with the exact
    /// registered redirect URI.
    fn authorization_url(&self, state: &CsrfToken, challenge: &PkceCodeChallenge) -> Url;

    /// The issuer identifier it puts in `iss` on the callback (RFC 9207), if it does. A
    /// callback carrying `iss` for a provider without one, or a different one, is refused:
    /// it came from another authorization server (a mix-up attack).
    fn issuer(&self) -> Option<&str> {
        None
    }

    /// Swaps the code (with its PKCE verifier) for a token, fetches the profile and drops
    /// the token.
    fn exchange(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>>;
}

/// The configured providers, by id.
#[derive(Clone, Default)]
pub struct Providers {
    by_id: BTreeMap<&'static str, Arc<dyn Provider>>,
}

impl Providers {
    pub fn new(providers: impl IntoIterator<Item = Arc<dyn Provider>>) -> Self {
        Self {
            by_id: providers.into_iter().map(|p| (p.id(), p)).collect(),
        }
    }

    /// The provider behind a path segment; `None` for anything we do not know.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.by_id.get(id)
    }
}
