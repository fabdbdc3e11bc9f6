//! A faithful imitation of Facebook Login's server-side endpoints, for development without
//! a Facebook app and for tests (the same client code path as production).
//!
//! It checks what Facebook checks (client id and secret, exact redirect URI, single-use
//! unexpired codes, the PKCE verifier, `appsecret_proof`) and answers in Facebook's JSON
//! shapes, including its errors. [`Faults`] inject latency and failures.
//!
//! Routes, relative to where it is mounted (`/dev/facebook` inside the app):
//! `GET|POST /dialog/oauth`, `GET|POST /oauth/access_token`, `GET /me`.
//!
//! [`DevOidc`] is its OpenID Connect mode: an issuer (discovery, keys, ID tokens, userinfo)
//! whose authorization endpoint is the same consent dialog, mounted at [`OIDC_PATH`] beside
//! the Facebook routes.

pub mod apple;
// X's and Discord's stand-in, for the tests only.
#[cfg(feature = "test-support")]
pub mod api_stand_in;
mod dialog;
mod es256;
// Microsoft Entra ID's stand-in, for the tests only.
#[cfg(feature = "test-support")]
pub mod entra;
mod faults;
// GitHub's stand-in serves the tests and the benchmark only: `cargo run` imitates Facebook
// and an OpenID issuer.
#[cfg(feature = "test-support")]
pub mod github;
mod graph;
mod graph_error;
pub mod oidc;
mod signing;
mod stand_in;
mod token;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use faults::FaultSwitch;
pub use faults::{Fault, Faults};
pub use oidc::{DevOidc, DevOidcSettings, OIDC_PATH};
#[cfg(feature = "test-support")]
pub use apple::DevApple;
pub use stand_in::StandIn;

/// How long a code is good for, as at Facebook (about ten minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long an access token is good for here (long-lived tokens last about 60 days).
const TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The app registration the development provider accepts.
#[derive(Clone)]
pub struct DevProviderSettings {
    pub client_id: String,
    pub client_secret: String,
    /// "Valid OAuth Redirect URIs": compared byte for byte.
    pub redirect_uris: Vec<String>,
    /// For scripted clients (the load benchmark): the dialog approves at once, without a
    /// consent page, as the person whose email is in the `dev_user` cookie (else Ada).
    pub auto_approve: bool,
    /// RFC 9207: when set, every answer of the dialog names this issuer in `iss`, so the
    /// client's mix-up defence runs (Facebook itself sends none).
    pub issuer: Option<String>,
}

/// A person the consent page signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestUser {
    id: String,
    first_name: String,
    last_name: String,
    email: Option<String>,
    /// The OpenID issuer's `groups` claim (typed on the consent page, or a preset's); the
    /// Facebook stand-in has no such thing and ignores them.
    groups: Vec<String>,
    /// What the OpenID Connect mode says in `email_verified` (Facebook says nothing): `false`
    /// when the consent page's "not verified" box is ticked, to try `[access]`'s refusal of
    /// an address nobody vouched for.
    email_verified: bool,
}

struct IssuedCode {
    redirect_uri: String,
    /// The S256 challenge from the dialog, when the client sent one.
    challenge: Option<String>,
    user: TestUser,
    issued: Instant,
    used: bool,
}

/// The access tokens a stand-in issued (Facebook's, and the OpenID Connect issuer's): whose
/// each is and since when, good for [`TOKEN_LIFETIME`].
#[derive(Default)]
struct IssuedTokens(Mutex<HashMap<String, IssuedToken>>);

struct IssuedToken {
    user: TestUser,
    issued: Instant,
}

impl IssuedTokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, IssuedToken>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `token` as `user`'s from now on (and forgets the expired ones).
    fn insert(&self, token: String, user: TestUser) {
        let mut tokens = self.lock();
        tokens.retain(|_, t| t.issued.elapsed() < TOKEN_LIFETIME);
        tokens.insert(
            token,
            IssuedToken {
                user,
                issued: Instant::now(),
            },
        );
    }

    /// Whose `token` is, while it is good.
    fn user(&self, token: &str) -> Option<TestUser> {
        self.lock()
            .get(token)
            .filter(|t| t.issued.elapsed() < TOKEN_LIFETIME)
            .map(|t| t.user.clone())
    }

    /// Revokes `token`.
    fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    #[cfg(any(test, feature = "test-support"))]
    fn all(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// The development provider's state: its registration, faults, codes and tokens.
pub struct DevProvider {
    settings: DevProviderSettings,
    faults: FaultSwitch,
    codes: Mutex<HashMap<String, IssuedCode>>,
    tokens: IssuedTokens,
}

impl DevProvider {
    pub fn new(settings: DevProviderSettings, faults: Faults) -> Arc<Self> {
        Arc::new(Self {
            settings,
            faults: FaultSwitch::new(faults),
            codes: Mutex::default(),
            tokens: IssuedTokens::default(),
        })
    }

    /// The routes, to be mounted (or served) at the provider's base URL.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/dialog/oauth",
                get(dialog::show::<Self>).post(dialog::decide::<Self>),
            )
            .route(
                "/oauth/access_token",
                get(token::exchange).post(token::exchange),
            )
            .route("/me", get(graph::me))
            .with_state(self.clone())
    }

    #[cfg(any(test, feature = "test-support"))]
    /// A `signed_request` as Facebook would POST it to the Data Deletion or Deauthorize
    /// callback for the person with this app-scoped id.
    pub fn signed_request(&self, user_id: &str) -> String {
        let payload = serde_json::json!({
            "algorithm": "HMAC-SHA256",
            "issued_at": crate::model::now_ms() / 1000,
            "user_id": user_id,
        });
        signing::signed_request(&payload.to_string(), &self.settings.client_secret)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Every access token issued and not yet expired (tests check none of them leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.all()
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The app-scoped id the consent page gives a person with this email.
    pub fn user_id_for_email(&self, email: &str) -> String {
        app_scoped_id(&self.settings.client_id, email)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Changes what is injected from the next request on.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    fn issue_code(
        &self,
        redirect_uri: String,
        challenge: Option<String>,
        user: TestUser,
    ) -> String {
        let code = format!("AQ{}", random_token());
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
        codes.insert(
            code.clone(),
            IssuedCode {
                redirect_uri,
                challenge,
                user,
                issued: Instant::now(),
                used: false,
            },
        );
        code
    }

    fn issue_token(&self, user: TestUser) -> String {
        let token = format!("EAA{}", random_token());
        self.tokens.insert(token.clone(), user);
        token
    }

    fn registered(&self, client_id: &str, redirect_uri: &str) -> Result<(), &'static str> {
        let s = &self.settings;
        check_registration(&s.client_id, &s.redirect_uris, client_id, redirect_uri, &REFUSALS)
    }
}

/// Facebook's words for a dialog request from an unknown client or to an unlisted redirect URI.
const REFUSALS: Unregistered = Unregistered {
    client: "Invalid App ID: the client_id is not the development app's.",
    redirect_uri: "URL Blocked: this redirect failed because the redirect URI is not listed exactly in the app's Valid OAuth Redirect URIs.",
};

/// What a stand-in's dialog says to a client that is not the registered one, or to a
/// redirect URI that is not among the registered ones, in the words of the provider imitated.
struct Unregistered {
    client: &'static str,
    redirect_uri: &'static str,
}

/// A dialog request's client and redirect URI against the development app's registration
/// (the redirect URI compared exactly).
fn check_registration(
    registered_client: &str,
    registered_uris: &[String],
    client_id: &str,
    redirect_uri: &str,
    refusals: &Unregistered,
) -> Result<(), &'static str> {
    if client_id != registered_client {
        return Err(refusals.client);
    }
    if !registered_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(refusals.redirect_uri);
    }
    Ok(())
}

/// A token request's body, as Facebook's and GitHub's token endpoints read it.
#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code: String,
    code_verifier: Option<String>,
}

/// Whether a presented client secret is the registered one (in constant time).
fn secret_matches(given: &str, registered: &str) -> bool {
    given.as_bytes().ct_eq(registered.as_bytes()).into()
}

/// An app-scoped user id, stable for the same email (or name) and app, like Facebook's.
fn app_scoped_id(client_id: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{client_id}|{}", key.to_lowercase()).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
}

/// Whether `verifier` is the PKCE S256 verifier of `challenge` (RFC 7636, section 4.6).
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use base64::Engine as _;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    !verifier.is_empty() && computed == challenge
}

fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The development provider's own security headers: its form redirects to the app's
/// callback, which may be another origin in tests.
const DEV_CSP: &str = "default-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// A random client secret for the development app of one run.
pub fn random_secret() -> String {
    random_token()
}
