//! Any OpenID Connect issuer (see `docs/providers/openid-connect.md`): endpoints and
//! keys from discovery (at start-up and on a schedule, see [`discovery`]), the
//! authorization-code flow with PKCE and a nonce, the ID token checked (the crate's checks plus
//! `iat`, `azp` and `at_hash`), keys fetched again once when a token names an unknown one, and
//! userinfo when the ID token lacks the name or the address.
//!
//! Longer than the 400 lines a file here aims for: the client's steps (authorization URL,
//! token, ID token, keys fetched again, userinfo) share its discovered state; what the ID token
//! and userinfo say, and the checks on them, are in `oidc/id_token.rs`, discovery and its
//! schedule in `oidc/discovery.rs`.

pub mod apple;
pub mod discovery;
pub mod entra;
mod id_token;
pub mod logout_token;

use crate::model::ProviderBrand;
use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthenticationFlow, ClaimsVerificationError, IdToken,
    IdTokenClaims, IssuerUrl, Nonce, SignatureVerificationError, SubjectIdentifier,
    TokenResponse as _, UserInfoClaims, UserInfoError,
    core::{
        CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreIdTokenVerifier,
        CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreResponseType,
        CoreTokenResponse,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tracing::{debug, info};
use url::Url;

use self::discovery::{DiscoveryError, Metadata};
pub use self::logout_token::{LogoutTokenError, VerifiedLogout};
use super::{
    BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider, Unavailable,
    http::{HttpClient, HttpError, StatusRecorder, error_chain},
    oauth::{clean, excerpt, http_failure, token_failure},
};

use id_token::{
    Checked, Claimed, bounded, check_id_token, claimed_groups, fill_from_userinfo,
    profile_from_id_token,
};

/// How far in the future an ID token's `iat` may be: clocks drift, a minute is plenty.
const IAT_LEEWAY: Duration = Duration::from_secs(60);

/// An ID token naming a key we do not have makes us fetch the keys again at most this often:
/// rotation at the issuer needs one fetch, and forged tokens cannot make us hammer it.
const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The groups claim read when `groups_claim` is not configured.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// At most this many groups are kept from one sign-in, each of at most `MAX_GROUP_LEN` bytes:
/// they will travel with the sign-in (stored, and sent to protected sites in a header), so an
/// issuer sending thousands (Entra ID beyond its overage limit) or a huge value must not
/// make every request heavy. 200 is Entra ID's own limit in a token.
const MAX_GROUPS: usize = 200;
const MAX_GROUP_LEN: usize = 200;

/// The signature algorithms an ID token may use: public-key ones only. `none` is no
/// signature, and an HMAC would be keyed with the client secret, or, in the classic attack,
/// with the issuer's public key.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The client as discovery leaves it: authorization endpoint set, token and userinfo
/// endpoints set when advertised.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Every claim beyond the standard ones, kept as JSON: Google's `hd`, and (named by
/// configuration) a groups claim. openidconnect's `EmptyAdditionalClaims` drops them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct OtherClaims(Map<String, Value>);

impl AdditionalClaims for OtherClaims {}

impl OtherClaims {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// The ID token read with [`OtherClaims`]: the token response's own type drops them, so the
/// token is read again from its compact form (the same bytes, checked as one).
type IdTokenWithOthers =
    IdToken<OtherClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type IdTokenClaimsWithOthers = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type UserInfoWithOthers = UserInfoClaims<OtherClaims, CoreGenderClaim>;

/// How this app is registered at an issuer.
#[derive(Clone)]
pub struct OidcSettings {
    /// The configured name (`/authorize/{name}`) and the name on its button.
    pub name: String,
    pub display_name: String,
    /// Exactly as configured: discovery must name the same issuer byte for byte.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `openid` is added when missing.
    pub scopes: Vec<String>,
    /// `{public_url}/callback/{name}`, exactly as registered.
    pub redirect_uri: String,
    /// A Google Workspace domain (`hosted_domain`): sent as `hd`, and required in the ID
    /// token's `hd` claim.
    pub hosted_domain: Option<String>,
    /// The claim holding the person's groups (`groups_claim`). `None`: `groups`, read from
    /// what the sign-in fetched anyway; set: userinfo is also asked when the ID token lacks it.
    pub groups_claim: Option<String>,
    /// "Log out" also ends the session at the issuer (`sign_out_at_provider`): the browser is
    /// sent to the discovered `end_session_endpoint` (RP-Initiated Logout 1.0).
    pub sign_out_at_provider: bool,
    /// The client secret goes in the token request's body (`client_secret_post`) even when
    /// the document does not say that only this works (LinkedIn's).
    pub client_secret_in_body: bool,
    /// What this issuer does differently from the standard.
    pub dialect: Dialect,
}

/// An issuer's departures from plain OpenID Connect, each met where it bites.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Any issuer, as the specifications write it.
    #[default]
    Standard,
    /// Microsoft Entra ID (see [`entra`]): one issuer per tenant, people keyed on `tid` and
    /// `oid`, an address verified only by `xms_edov`.
    Microsoft(entra::Tenancy),
    /// Sign in with Apple (see [`apple`]): a client secret signed for each token request, the
    /// answer posted (`response_mode=form_post`).
    Apple(apple::AppleSecret),
}

/// Settings that cannot describe an issuer.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("issuer {0:?} is not a URL")]
    Issuer(String),
    #[error("redirect URI: {0}")]
    RedirectUri(url::ParseError),
}

/// What one successful discovery gave: the client built from it, kept whole so that a
/// refresh replaces it in one step.
struct Discovered {
    metadata: Metadata,
    client: OidcClient,
    issuer_required: bool,
}

/// An OpenID Connect issuer as a [`Provider`]. Until its first discovery succeeds (and after
/// a later one names another issuer) it is unavailable: its sign-ins end on a "cannot reach"
/// page while every other provider keeps working.
///
/// ```no_run
/// # async fn run(http: loginwith::auth::http::HttpClient) {
/// use std::time::Duration;
/// use loginwith::auth::oidc::{Oidc, OidcSettings, discovery};
///
/// let corp = Oidc::new(OidcSettings {
///     name: "corp".into(),
///     display_name: "Acme SSO".into(),
///     issuer: "https://sso.acme.example/realms/main".into(),
///     client_id: "loginwith".into(),
///     client_secret: "…".into(),
///     scopes: vec!["openid".into(), "email".into(), "profile".into()],
///     redirect_uri: "https://login.acme.example/callback/corp".into(),
///     hosted_domain: None,
///     groups_claim: None,
///     sign_out_at_provider: false,
///     client_secret_in_body: false,
///     dialect: Default::default(),
/// }, http).unwrap();
/// // One attempt now; then hourly, or with a backoff while it fails.
/// let first = corp.rediscover().await;
/// discovery::keep_fresh(&corp, Duration::from_secs(1), Duration::from_secs(3600));
/// # let _ = first;
/// # }
/// ```
pub struct Oidc {
    http: HttpClient,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect_uri: RedirectUrl,
    scopes: Vec<Scope>,
    name: String,
    display_name: String,
    hosted_domain: Option<String>,
    groups_claim: String,
    /// Whether a missing groups claim in the ID token is looked for at userinfo.
    groups_from_userinfo: bool,
    /// Set once a groups claim of the wrong type was logged: one line, not one a sign-in.
    groups_type_logged: AtomicBool,
    /// The last good discovery, or none yet (or withdrawn: it named another issuer).
    current: RwLock<Option<Arc<Discovered>>>,
    /// When the keys were last fetched because a token named an unknown one.
    keys_refreshed: Mutex<Option<Instant>>,
    /// See [`OidcSettings::sign_out_at_provider`].
    sign_out_at_provider: bool,
    /// See [`OidcSettings::client_secret_in_body`].
    client_secret_in_body: bool,
    dialect: Dialect,
}

impl Oidc {
    /// The provider with nothing discovered yet: see [`Oidc::rediscover`] and
    /// [`discovery::keep_fresh`].
    pub fn new(settings: OidcSettings, http: HttpClient) -> Result<Arc<Self>, SetupError> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|_| SetupError::Issuer(settings.issuer.clone()))?;
        let redirect_uri =
            RedirectUrl::new(settings.redirect_uri).map_err(SetupError::RedirectUri)?;
        Ok(Arc::new(Self {
            http,
            issuer,
            client_id: ClientId::new(settings.client_id),
            client_secret: ClientSecret::new(settings.client_secret),
            redirect_uri,
            // The client adds `openid` itself; repeating it would send it twice.
            scopes: settings
                .scopes
                .into_iter()
                .filter(|s| s != "openid")
                .map(Scope::new)
                .collect(),
            name: settings.name,
            display_name: settings.display_name,
            hosted_domain: settings.hosted_domain.filter(|d| !d.is_empty()),
            groups_from_userinfo: settings.groups_claim.is_some(),
            groups_claim: settings
                .groups_claim
                .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned()),
            groups_type_logged: AtomicBool::new(false),
            current: RwLock::new(None),
            keys_refreshed: Mutex::new(None),
            sign_out_at_provider: settings.sign_out_at_provider,
            client_secret_in_body: settings.client_secret_in_body,
            dialect: settings.dialect,
        }))
    }

    /// The configured name, for log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether sign-ins can start (a good document is at hand).
    pub fn is_available(&self) -> bool {
        self.current().is_some()
    }

    /// One discovery attempt. Success replaces the document; a failure to fetch keeps the
    /// last good one; a document naming another issuer withdraws it, so that sign-ins stop
    /// rather than trust the wrong issuer.
    pub async fn rediscover(&self) -> Result<(), DiscoveryError> {
        let fetched = match &self.dialect {
            Dialect::Microsoft(tenancy) => {
                let expected = tenancy.document_issuer(self.issuer.as_str());
                discovery::fetch_naming(&self.issuer, &expected, &self.http).await
            }
            Dialect::Standard | Dialect::Apple(_) => {
                discovery::fetch(&self.issuer, &self.http).await
            }
        };
        match fetched {
            Ok(metadata) => {
                self.install(metadata);
                Ok(())
            }
            Err(failure) => {
                if matches!(failure, DiscoveryError::OtherIssuer(_)) {
                    self.set_current(None);
                }
                Err(failure)
            }
        }
    }

    fn current(&self) -> Option<Arc<Discovered>> {
        // A poisoned lock only means a panic elsewhere while swapping an `Arc`: the value
        // inside is whole either way.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, discovered: Option<Arc<Discovered>>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = discovered;
    }

    fn install(&self, metadata: Metadata) -> Arc<Discovered> {
        let issuer_required = metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported;
        // HTTP Basic unless the issuer takes the secret only in the body (RFC 8414: no list
        // means Basic).
        let in_body = self.client_secret_in_body
            || metadata
                .token_endpoint_auth_methods_supported()
                .is_some_and(|methods| {
                    !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                        && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                });
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect_uri.clone())
        .set_auth_type(if in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
        let discovered = Arc::new(Discovered {
            metadata,
            client,
            issuer_required,
        });
        self.set_current(Some(discovered.clone()));
        discovered
    }

    /// The document to sign in with now, or why there is none.
    fn discovered(&self) -> Result<Arc<Discovered>, ExchangeError> {
        self.current().ok_or_else(|| {
            ExchangeError::new(
                FailureReason::Unreachable,
                "the issuer's discovery document is not available",
            )
        })
    }

    /// After a token named a key we lack: the keys again, unless another sign-in fetched them
    /// since `seen` (then those are used) or a fetch happened less than a minute ago.
    async fn refresh_keys(&self, seen: &Arc<Discovered>) -> Result<Arc<Discovered>, ExchangeError> {
        let mut last = self.keys_refreshed.lock().await;
        let current = self.discovered()?;
        if !Arc::ptr_eq(&current, seen) {
            return Ok(current);
        }
        if last.is_some_and(|at| at.elapsed() < KEY_REFRESH_INTERVAL) {
            return Err(invalid(
                "id_token: signed with an unknown key (keys were fetched again less than a minute ago)",
            ));
        }
        *last = Some(Instant::now());
        let keys = discovery::fetch_keys(&current.metadata, &self.http)
            .await
            .map_err(|detail| {
                ExchangeError::new(
                    FailureReason::Unreachable,
                    format!("id_token: unknown key, and the keys cannot be fetched: {detail}"),
                )
            })?;
        Ok(self.install(current.metadata.clone().set_jwks(keys)))
    }

    /// A back-channel logout token checked (see [`logout_token`]), fetching the keys again
    /// once when it names a key we do not have; why not, for the 400's description.
    async fn verified_logout(&self, token: &str) -> Result<VerifiedLogout, LogoutTokenError> {
        let unavailable = |e: ExchangeError| LogoutTokenError::Unavailable(e.detail);
        let discovered = self.discovered().map_err(unavailable)?;
        let check = |discovered: &Discovered| {
            logout_token::verify(
                discovered.metadata.jwks(),
                self.issuer.as_str(),
                self.client_id.as_str(),
                token,
                crate::model::now_ms(),
            )
        };
        match check(&discovered) {
            Ok(verified) => Ok(verified),
            Err(logout_token::Refused::Invalid(why)) => Err(LogoutTokenError::Invalid(why)),
            Err(logout_token::Refused::UnknownKey) => {
                // The keys cannot be fetched again now (the issuer is unreachable, or they were
                // fetched less than a minute ago, perhaps for a forged token): the issuer may
                // have rotated its keys, so it is asked to send the token again, rather than
                // told it was bad (a 400 is final for it).
                let refreshed = self.refresh_keys(&discovered).await.map_err(unavailable)?;
                check(&refreshed).map_err(|refused| {
                    LogoutTokenError::Invalid(match refused {
                        logout_token::Refused::UnknownKey => {
                            "logout_token: signed with a key the issuer does not publish"
                                .to_owned()
                        }
                        logout_token::Refused::Invalid(why) => why,
                    })
                })
            }
        }
    }

    async fn fetch_code_token(
        &self,
        discovered: &Discovered,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> Result<CoreTokenResponse, ExchangeError> {
        // Apple's client secret is made for this request (and never kept).
        let fresh_client;
        let client = match &self.dialect {
            Dialect::Apple(secret) => {
                let minted = secret.mint().map_err(|e| {
                    ExchangeError::new(
                        FailureReason::Internal,
                        format!("the client secret could not be signed: {e}"),
                    )
                })?;
                fresh_client = discovered
                    .client
                    .clone()
                    .set_client_secret(ClientSecret::new(minted));
                &fresh_client
            }
            _ => &discovered.client,
        };
        let request = client.exchange_code(code).map_err(|_| {
            ExchangeError::new(
                FailureReason::InvalidResponse,
                "discovery advertised no token endpoint",
            )
        })?;
        let http = StatusRecorder::new(&self.http);
        request
            .set_pkce_verifier(secrets.verifier)
            .request_async(&http)
            .await
            .map_err(|error| token_failure(http.status(), error))
    }

    /// The ID token's claims once every check has passed, fetching the keys again once when
    /// it names a key we do not have (the issuer rotated its keys).
    async fn verified_claims(
        &self,
        discovered: Arc<Discovered>,
        token: &CoreTokenResponse,
        nonce: &str,
    ) -> Result<IdTokenClaimsWithOthers, ExchangeError> {
        let id_token = token.id_token().ok_or_else(|| invalid("no id_token"))?;
        let id_token: IdTokenWithOthers = id_token
            .to_string()
            .parse()
            .map_err(|e| invalid(format!("id_token: {}", excerpt(&error_chain(&e), 200))))?;
        let id_token = &id_token;
        // Entra ID's multi-tenant issuer is checked with the token's `tid` afterwards.
        let issuer_fixed = !matches!(self.dialect, Dialect::Microsoft(_));
        let check = |discovered: &Discovered| {
            check_id_token(discovered, id_token, token, &self.client_id, nonce, issuer_fixed)
        };
        match check(&discovered) {
            Err(Checked::UnknownKey) => {
                let refreshed = self.refresh_keys(&discovered).await?;
                check(&refreshed).map_err(
                    |failure| match failure {
                        Checked::UnknownKey => {
                            invalid("id_token: signed with a key the issuer does not publish")
                        }
                        Checked::Invalid(error) => error,
                    },
                )
            }
            Err(Checked::Invalid(error)) => Err(error),
            Ok(claims) => Ok(claims),
        }
    }

    /// Userinfo, whose `sub` openidconnect checks against the ID token's.
    async fn fetch_userinfo(
        &self,
        discovered: &Discovered,
        token: &CoreTokenResponse,
        subject: &SubjectIdentifier,
    ) -> Result<Option<UserInfoWithOthers>, ExchangeError> {
        let Ok(request) = discovered
            .client
            .user_info(token.access_token().clone(), Some(subject.clone()))
        else {
            // No userinfo endpoint: the ID token is all there is.
            return Ok(None);
        };
        request
            .request_async::<OtherClaims, _, CoreGenderClaim>(&self.http)
            .await
            .map(Some)
            .map_err(|e| userinfo_failure(&e))
    }

    /// The groups `claims` carry, if the claim is there; a claim of another type is logged
    /// once and reads as no groups (a mapper misconfigured at the issuer is not a reason to
    /// refuse the sign-in while nothing depends on groups).
    fn groups_in(&self, claims: &OtherClaims) -> Option<Vec<String>> {
        match claimed_groups(claims, &self.groups_claim) {
            Claimed::Absent => None,
            Claimed::Groups(groups) => Some(groups),
            Claimed::OtherType(kind) => {
                if !self.groups_type_logged.swap(true, Ordering::Relaxed) {
                    info!(
                        provider = self.name,
                        "providers.{}.groups_claim: the {:?} claim is {kind}, not a string or a list of strings: read as no groups (logged once)",
                        self.name,
                        excerpt(&self.groups_claim, 100),
                    );
                }
                Some(Vec::new())
            }
        }
    }

    /// With `hosted_domain` set, the ID token must name that Workspace domain in `hd`: the
    /// `hd` on the authorization URL only narrows Google's account chooser, and a person can
    /// take it out of the URL and sign in with any account.
    fn check_hosted_domain(&self, claims: &IdTokenClaimsWithOthers) -> Result<(), ExchangeError> {
        let Some(domain) = &self.hosted_domain else {
            return Ok(());
        };
        match claims.additional_claims().get("hd") {
            Some(Value::String(hd)) if hd.eq_ignore_ascii_case(domain) => Ok(()),
            Some(Value::String(hd)) => Err(ExchangeError::new(
                FailureReason::NotAllowed,
                format!(
                    "id_token: hd {:?} is not hosted_domain {domain:?}",
                    excerpt(hd, 100)
                ),
            )),
            Some(_) => Err(ExchangeError::new(
                FailureReason::NotAllowed,
                format!("id_token: hd is not a string (hosted_domain {domain:?})"),
            )),
            None => Err(ExchangeError::new(
                FailureReason::NotAllowed,
                format!("id_token: no hd (an account outside any Workspace domain; hosted_domain {domain:?})"),
            )),
        }
    }
}

impl Provider for Oidc {
    fn id(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn brand(&self) -> Option<ProviderBrand> {
        match self.dialect {
            Dialect::Microsoft(_) => Some(ProviderBrand::Microsoft),
            Dialect::Apple(_) => Some(ProviderBrand::Apple),
            // Google's colours and mark only for Google's own issuer.
            Dialect::Standard => self.issuer().and_then(crate::config::oidc_brand),
        }
    }

    fn authorization_url(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        nonce: &str,
    ) -> Result<Url, Unavailable> {
        let discovered = self.current().ok_or(Unavailable)?;
        let state = state.clone();
        let nonce = Nonce::new(nonce.to_owned());
        let mut request = discovered
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || state,
                move || nonce,
            )
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge.clone());
        if let Some(domain) = &self.hosted_domain {
            // Only a hint to Google's account chooser: the ID token's `hd` is what counts.
            request = request.add_extra_param("hd", domain.clone());
        }
        if self.posts_its_answer() {
            // Apple requires it whenever the name or the address is asked for.
            request = request.add_extra_param("response_mode", "form_post");
        }
        let (url, _, _) = request.url();
        Ok(url)
    }

    fn issuer(&self) -> Option<&str> {
        Some(self.issuer.as_str())
    }

    fn posts_its_answer(&self) -> bool {
        matches!(self.dialect, Dialect::Apple(_))
    }

    fn issuer_required(&self) -> bool {
        // Without a document there is no exchange either; requiring `iss` then costs nothing.
        self.current().is_none_or(|d| d.issuer_required)
    }

    fn verify_logout_token<'a>(
        &'a self,
        token: &'a str,
    ) -> Option<BoxFuture<'a, Result<VerifiedLogout, LogoutTokenError>>> {
        Some(Box::pin(self.verified_logout(token)))
    }

    fn end_session_url(&self, post_logout_redirect_uri: &str, state: &str) -> Option<Url> {
        if !self.sign_out_at_provider {
            return None;
        }
        let discovered = self.current()?;
        let advertised = discovered
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_deref()?;
        let mut url = match Url::parse(advertised) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => url,
            _ => {
                tracing::warn!(
                    provider = self.name,
                    "the issuer's end_session_endpoint is not a URL: signed out here only"
                );
                return None;
            }
        };
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id.as_str())
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("state", state);
        Some(url)
    }

    fn exchange(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async move {
            let discovered = self.discovered()?;
            let nonce = secrets.nonce.clone();
            let token = self.fetch_code_token(&discovered, code, secrets).await?;
            let claims = self
                .verified_claims(discovered.clone(), &token, &nonce)
                .await?;
            self.check_hosted_domain(&claims)?;
            let mut profile = profile_from_id_token(&claims);
            if let Dialect::Microsoft(tenancy) = &self.dialect {
                let others = claims.additional_claims();
                let document = tenancy.document_issuer(self.issuer.as_str());
                let tid = tenancy.check(&document, others, claims.issuer().as_str())?;
                profile.provider_user_id = entra::subject(&tid, others)?;
            }
            // What the ID token said, before userinfo adds to it.
            let id_token_email = profile.email.clone();
            let mut groups = self.groups_in(claims.additional_claims());
            // The ID token may carry only `sub` (oidc-provider's default): the rest is in
            // userinfo. Groups too, with many issuers, but asking userinfo for them costs a
            // call on every sign-in: only when `groups_claim` is configured.
            let incomplete = profile.first_name.is_empty()
                || profile.email.is_none()
                || (groups.is_none() && self.groups_from_userinfo);
            if incomplete
                && let Some(userinfo) = self
                    .fetch_userinfo(&discovered, &token, claims.subject())
                    .await?
            {
                fill_from_userinfo(&mut profile, &userinfo);
                // Both are the issuer's word for this `sub` at this moment: their union.
                if let Some(more) = self.groups_in(userinfo.additional_claims()) {
                    groups.get_or_insert_with(Vec::new).extend(more);
                }
            }
            if matches!(self.dialect, Dialect::Microsoft(_)) {
                // nOAuth: only the ID token's own address, and only with `xms_edov`; never
                // what userinfo says about an address.
                profile.email_verified = profile.email.is_some()
                    && profile.email == id_token_email
                    && entra::address_verified(claims.additional_claims());
            }
            profile.membership.groups = bounded(groups.unwrap_or_default(), &self.name);
            Ok(profile)
        })
    }
}

fn invalid(detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(FailureReason::InvalidResponse, detail)
}

/// A failed userinfo call, named like every other provider call.
fn userinfo_failure(error: &UserInfoError<HttpError>) -> ExchangeError {
    match error {
        UserInfoError::Request(http) => http_failure("userinfo", http),
        UserInfoError::Response(status, _, _) => ExchangeError::new(
            FailureReason::of(super::CallFailure::Answer {
                status: *status,
                oauth_error: false,
            }),
            format!("userinfo: HTTP {status}"),
        ),
        // A different `sub`, an unreadable body: the answer cannot be used.
        other => invalid(format!("userinfo: {}", excerpt(&error_chain(other), 200))),
    }
}

#[cfg(test)]
mod tests {
    use super::id_token::names;
    use super::*;

    fn claims(json: Value) -> OtherClaims {
        serde_json::from_value(json).unwrap_or_default()
    }

    fn groups(list: &[&str]) -> Claimed {
        Claimed::Groups(list.iter().map(|g| (*g).to_owned()).collect())
    }

    #[test]
    fn a_groups_claim_is_a_string_or_the_strings_of_a_list() {
        let read = |json: Value| claimed_groups(&claims(json), "groups");
        assert_eq!(read(serde_json::json!({"groups": "ops"})), groups(&["ops"]));
        assert_eq!(
            read(serde_json::json!({"groups": ["/ops", "admins", "/ops/oncall"]})),
            groups(&["/ops", "admins", "/ops/oncall"]),
            "Keycloak's paths are kept as they are"
        );
        assert_eq!(
            read(serde_json::json!({"groups": ["ops", 7, null, {"x": 1}, ["y"], true, "admins"]})),
            groups(&["ops", "admins"]),
            "other members are left out"
        );
        assert_eq!(read(serde_json::json!({"groups": []})), groups(&[]));
        assert_eq!(read(serde_json::json!({"sub": "1"})), Claimed::Absent);
        assert_eq!(
            read(serde_json::json!({"groups": 7})),
            Claimed::OtherType("a number")
        );
        assert_eq!(
            read(serde_json::json!({"groups": {"ops": true}})),
            Claimed::OtherType("an object")
        );
        assert_eq!(
            read(serde_json::json!({"groups": null})),
            Claimed::OtherType("null")
        );
    }

    #[test]
    fn the_groups_claim_is_the_one_configured() {
        let both = claims(serde_json::json!({"groups": ["a"], "roles": ["admin", "reader"]}));
        assert_eq!(claimed_groups(&both, "roles"), groups(&["admin", "reader"]));
        assert_eq!(claimed_groups(&both, "Roles"), Claimed::Absent, "names are exact");
    }

    #[test]
    fn groups_are_sorted_deduplicated_and_bounded() {
        let given = ["b", "", "a", "b", &"x".repeat(201), &"y".repeat(200)]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            bounded(given, "corp"),
            vec!["a".to_owned(), "b".to_owned(), "y".repeat(200)]
        );
        let many: Vec<String> = (0..250).map(|i| format!("g{i:03}")).collect();
        let kept = bounded(many, "corp");
        assert_eq!(kept.len(), MAX_GROUPS);
        assert_eq!(kept.first().map(String::as_str), Some("g000"));
        assert_eq!(kept.last().map(String::as_str), Some("g199"));
    }

    #[test]
    fn names_prefer_given_and_family_then_split_name() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            names(s("Ada"), s("Lovelace"), s("X Y")),
            ("Ada".into(), "Lovelace".into())
        );
        assert_eq!(
            names(None, None, s("Ada King Lovelace")),
            ("Ada".into(), "King Lovelace".into())
        );
        assert_eq!(names(None, None, None), (String::new(), String::new()));
    }
}
