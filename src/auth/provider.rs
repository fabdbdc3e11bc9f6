use crate::model::ProviderBrand;
use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use url::Url;

use super::{FailureReason, Profile};

/// A boxed future, so that [`Provider`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a started sign-in kept server-side and hands back to its provider at the exchange:
/// the PKCE verifier (for the token endpoint) and the nonce sent in the authorization request
/// (an OpenID Connect ID token must carry it back; providers without ID tokens ignore it).
pub struct LoginSecrets {
    pub verifier: PkceCodeVerifier,
    pub nonce: String,
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

/// The provider cannot start a sign-in right now: an OpenID Connect issuer whose discovery
/// has not succeeded (yet, or since its document named another issuer). People see a
/// "cannot reach" page; every other provider keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the provider cannot be reached right now")]
pub struct Unavailable;

/// One identity provider speaking the OAuth 2.0 authorization-code flow with PKCE.
///
/// The web layer only ever talks to this trait: adding Google, GitHub or any OpenID Connect
/// issuer means adding an implementation and registering it in [`Providers`].
///
/// ```
/// use loginwith::auth::{
///     BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider, Providers,
///     Unavailable,
/// };
/// use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
/// use url::Url;
///
/// struct Refuses;
///
/// impl Provider for Refuses {
///     fn id(&self) -> &str { "refuses" }
///     fn display_name(&self) -> &str { "Refuses Inc." }
///     fn authorization_url(&self, state: &CsrfToken, _: &PkceCodeChallenge, _: &str)
///         -> Result<Url, Unavailable> {
///         Ok(Url::parse_with_params("https://id.example/authorize", [("state", state.secret())]).unwrap())
///     }
///     fn exchange(&self, _: AuthorizationCode, _: LoginSecrets)
///         -> BoxFuture<'_, Result<Profile, ExchangeError>> {
///         Box::pin(async { Err(ExchangeError::new(FailureReason::Denied, "always")) })
///     }
/// }
///
/// let providers = Providers::new([std::sync::Arc::new(Refuses) as _]);
/// assert!(providers.get("refuses").is_some());
/// assert!(providers.get("facebook").is_none());
/// assert_eq!(providers.iter().map(|p| p.id()).collect::<Vec<_>>(), ["refuses"]);
/// ```
pub trait Provider: Send + Sync + 'static {
    /// The path segment in `/authorize/{id}` and `/callback/{id}`, and the `provider` column:
    /// the provider's name in configuration (`[providers.<name>]`).
    fn id(&self) -> &str;

    /// The name people know, for buttons and messages (from configuration too).
    fn display_name(&self) -> &str;

    /// The brand whose colours and mark its button wears, for brands that publish them;
    /// `None` gives a neutral button with the display name.
    fn brand(&self) -> Option<ProviderBrand> {
        None
    }

    /// The provider's dialog URL for this `state`, PKCE challenge and `nonce`, with the exact
    /// registered redirect URI. Only OpenID Connect sends the nonce (the ID token must echo
    /// it, binding the token to this browser's sign-in); OAuth-only providers ignore it.
    /// [`Unavailable`] while the provider cannot take sign-ins (an issuer not discovered).
    fn authorization_url(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        nonce: &str,
    ) -> Result<Url, Unavailable>;

    /// The issuer identifier it puts in `iss` on the callback (RFC 9207), if it has one. A
    /// callback carrying `iss` for a provider without one, or a different one, is refused:
    /// it came from another authorization server (a mix-up attack).
    fn issuer(&self) -> Option<&str> {
        None
    }

    /// Whether a callback *without* `iss` is refused: the provider always sends it (an OpenID
    /// Connect issuer advertising `authorization_response_iss_parameter_supported`). Google
    /// sends `iss` without advertising it, so an issuer may be known yet not required.
    fn issuer_required(&self) -> bool {
        self.issuer().is_some()
    }

    /// Whether its answer comes as a cross-site POST to the callback
    /// (`response_mode=form_post`, Sign in with Apple), which the web layer relays through a
    /// same-site step, instead of a redirect. Such an answer may also carry the person's
    /// name (`user`), which the exchange keeps when the provider sends none of its own.
    fn posts_its_answer(&self) -> bool {
        false
    }

    /// Swaps the code (with its PKCE verifier) for a token, checks an ID token against the
    /// nonce when there is one, fetches the profile and drops the token.
    fn exchange(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>>;

    /// Checks a back-channel logout token from this provider (OpenID Connect Back-Channel
    /// Logout 1.0): what it asks to end, or why it is refused. `None`: the provider sends
    /// none (OAuth-only providers), and `/backchannel-logout/{id}` answers 404.
    fn verify_logout_token<'a>(
        &'a self,
        _token: &'a str,
    ) -> Option<
        BoxFuture<'a, Result<crate::auth::oidc::VerifiedLogout, crate::auth::oidc::LogoutTokenError>>,
    > {
        None
    }

    /// Where "Log out" sends the browser to end its session at the provider too
    /// (RP-Initiated Logout 1.0), coming back to `post_logout_redirect_uri` with `state`;
    /// `None` when not configured (`sign_out_at_provider`) or not offered by the provider.
    fn end_session_url(&self, _post_logout_redirect_uri: &str, _state: &str) -> Option<Url> {
        None
    }
}

/// The configured providers, in configuration order (the order of the home page's buttons),
/// with a lookup by id.
#[derive(Clone, Default)]
pub struct Providers {
    in_order: Vec<Arc<dyn Provider>>,
    by_id: HashMap<String, usize>,
}

impl Providers {
    /// Keeps the order given. A repeated id keeps its first provider (configuration
    /// validation refuses repeated names before this is reached).
    pub fn new(providers: impl IntoIterator<Item = Arc<dyn Provider>>) -> Self {
        let mut this = Self::default();
        for provider in providers {
            if this.by_id.contains_key(provider.id()) {
                continue;
            }
            this.by_id
                .insert(provider.id().to_owned(), this.in_order.len());
            this.in_order.push(provider);
        }
        this
    }

    /// The provider behind a path segment; `None` for anything we do not know.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.by_id.get(id).and_then(|&i| self.in_order.get(i))
    }

    /// Every provider, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.in_order.iter()
    }
}
