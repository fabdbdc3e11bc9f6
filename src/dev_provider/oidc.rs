//! The development provider's OpenID Connect mode: an issuer the app discovers like any
//! other, with the consent dialog of the Facebook stand-in as its authorization endpoint.
//!
//! It checks what an OpenID Provider checks (the client by HTTP Basic authentication, the
//! exact redirect URI, PKCE S256, single-use codes that expire within a minute, bearer
//! tokens at userinfo) and answers with RFC 6749's errors. Its ID tokens are signed with an
//! ES256 key generated at start (see [`super::es256`]), here rather than by anything of the
//! client it stands in for, so that a mistake in one is not mirrored by the other.
//!
//! Routes, relative to where it is mounted ([`OIDC_PATH`] inside the development provider):
//! `GET /.well-known/openid-configuration`, `GET /jwks`, `GET|POST /authorize`,
//! `POST /token`, `GET|POST /userinfo`.
//!
//! Longer than the 400 lines a file here aims for: one imitated issuer (discovery, keys, the
//! token endpoint's checks and ID token, userinfo) reads best whole; the consent dialog,
//! signing and codes live beside it (`dialog.rs`, `es256.rs`, `token.rs`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, ClientId, EndUserEmail, EndUserFamilyName,
    EndUserGivenName, EndUserName, IdToken, IdTokenClaims, IssuerUrl, LocalizedClaim, Nonce,
    PrivateSigningKey as _, StandardClaims, SubjectIdentifier,
    core::{
        CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{
    es256::Es256Key,
    TestUser,
    faults::FaultSwitch,
    apple::{AppleClaims, DevApple},
    dialog::{self, Authority, DialogParams},
    
    IssuedTokens, Unregistered, check_registration, pkce_matches, random_token,
};

/// Where the issuer is mounted inside the development provider.
pub const OIDC_PATH: &str = "/oidc";
/// How long a code is good for: one redirect and one back-channel call need seconds.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long an access token (for userinfo) and an ID token are good for.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The claim beyond the standard ones: the test user's groups, as Keycloak's group mapper or
/// Authentik sends them (left out when there are none).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Groups {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

impl AdditionalClaims for Groups {}

type DevIdToken =
    IdToken<Groups, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type AppleIdToken = IdToken<
    AppleClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// How the app is registered at the issuer, and where the issuer is.
#[derive(Clone)]
pub struct DevOidcSettings {
    /// The issuer identifier, byte for byte what the client is configured with, and where
    /// the issuer is served: discovery at `{issuer}/.well-known/openid-configuration`, and
    /// the token, userinfo and keys endpoints beside it. Inside the app it is the listening
    /// socket, as for the Facebook stand-in's token URL: server-to-server calls, and the
    /// start-up discovery, then work whatever `server.public_url` says.
    pub issuer: String,
    /// The authorization endpoint, which browsers visit: on the public URL inside the app.
    /// It serves this issuer's `/authorize`.
    pub authorization_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// Compared byte for byte.
    pub redirect_uris: Vec<String>,
    /// For scripted clients: approve at once (see [`super::DevProviderSettings`]).
    pub auto_approve: bool,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: TestUser,
    issued: Instant,
    /// Set on first presentation; the access token issued then, when the exchange succeeded.
    spent: Option<Option<String>>,
}

/// The issuer's state: its registration, signing key, codes and access tokens.
pub struct DevOidc {
    settings: DevOidcSettings,
    /// Sign in with Apple's ways, when it stands in for Apple (see [`super::apple`]).
    apple: Option<DevApple>,
    /// What the token endpoint gets wrong, for the tests' failure tables.
    faults: FaultSwitch,
    key: Es256Key,
    codes: Mutex<HashMap<String, IssuedCode>>,
    tokens: IssuedTokens,
}

impl DevOidc {
    /// The issuer with a fresh signing key (about 3 ms in a debug build: see [`super::es256`]).
    pub fn new(settings: DevOidcSettings) -> Arc<Self> {
        Self::with_apple(settings, None)
    }

    /// The issuer standing in for Apple when `apple` is given: Apple's client secret and
    /// answer, ID token and discovery document (the client secret replaces
    /// `settings.client_secret`, which is then unused).
    pub fn with_apple(settings: DevOidcSettings, apple: Option<DevApple>) -> Arc<Self> {
        Arc::new(Self {
            settings,
            apple,
            faults: FaultSwitch::default(),
            key: Es256Key::generate(),
            codes: Mutex::default(),
            tokens: IssuedTokens::default(),
        })
    }

    /// The routes, to be mounted (or served) at the issuer's URL.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(configuration))
            .route("/jwks", get(jwks))
            .route(
                "/authorize",
                get(dialog::show::<Self>).post(dialog::decide::<Self>),
            )
            .route("/token", post(token))
            .route("/userinfo", get(userinfo).post(userinfo))
            .with_state(self.clone())
    }

    /// Changes what the token endpoint injects from the next request on.
    #[cfg(feature = "test-support")]
    pub fn set_faults(&self, faults: super::Faults) {
        self.faults.set(faults);
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The `sub` the consent page gives a person with this email.
    pub fn subject_for_email(&self, email: &str) -> String {
        super::app_scoped_id(&self.settings.client_id, email)
    }

    /// Spends `code` (right or wrong, it is good once) and checks it was issued to
    /// `client_id` for `redirect_uri` with the challenge of `verifier`; then issues an
    /// access token.
    fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Redeemed, TokenError> {
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME * 10);
        let Some(issued) = codes.get_mut(code) else {
            return Err(TokenError::grant("The authorization code is not known."));
        };
        // Marks it spent, returning whether it already was (and for which token).
        if let Some(exchanged_for) = issued.spent.replace(None) {
            // RFC 6749, section 4.1.2: a code presented twice revokes what it was
            // exchanged for.
            drop(codes);
            if let Some(token) = exchanged_for {
                self.tokens.remove(&token);
            }
            return Err(TokenError::grant(
                "The authorization code has already been used.",
            ));
        }
        if issued.issued.elapsed() >= CODE_LIFETIME {
            return Err(TokenError::grant("The authorization code has expired."));
        }
        if issued.client_id != client_id {
            return Err(TokenError::grant(
                "The authorization code was issued to another client.",
            ));
        }
        if issued.redirect_uri != redirect_uri {
            return Err(TokenError::grant(
                "redirect_uri differs from the one of the authorization request.",
            ));
        }
        if !pkce_matches(&issued.challenge, verifier) {
            return Err(TokenError::grant(
                "code_verifier does not match the code_challenge.",
            ));
        }
        let access_token = random_token();
        issued.spent = Some(Some(access_token.clone()));
        let user = issued.user.clone();
        let nonce = issued.nonce.clone();
        drop(codes);
        self.tokens.insert(access_token.clone(), user.clone());
        Ok(Redeemed {
            user,
            nonce,
            access_token: AccessToken::new(access_token),
        })
    }

    /// The signed ID token for `user`, bound to `access_token` by `at_hash`.
    fn id_token(
        &self,
        user: &TestUser,
        nonce: Option<String>,
        access_token: &AccessToken,
    ) -> Result<String, TokenError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|_| TokenError::server("the issuer is not a URL"))?;
        let now = chrono::Utc::now();
        let lifetime = chrono::Duration::from_std(TOKEN_LIFETIME)
            .map_err(|_| TokenError::server("token lifetime"))?;
        if self.apple.is_some() {
            // Only `sub` among the standard claims: no name, and the address with Apple's
            // string booleans among the others.
            let claims = IdTokenClaims::new(
                issuer,
                vec![Audience::new(self.settings.client_id.clone())],
                now + lifetime,
                now,
                StandardClaims::new(SubjectIdentifier::new(user.id.clone())),
                AppleClaims::of(user),
            )
            .set_nonce(nonce.map(Nonce::new));
            return AppleIdToken::new(
                claims,
                &self.key,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                Some(access_token),
                None,
            )
            .map(|token| token.to_string())
            .map_err(|_| TokenError::server("the ID token could not be signed"));
        }
        let claims = IdTokenClaims::new(
            issuer,
            vec![Audience::new(self.settings.client_id.clone())],
            now + lifetime,
            now,
            standard_claims(user),
            Groups {
                groups: user.groups.clone(),
            },
        )
        .set_nonce(nonce.map(Nonce::new))
        // As Google does: the client the token was issued to, which the client must check.
        .set_authorized_party(Some(ClientId::new(self.settings.client_id.clone())));
        DevIdToken::new(
            claims,
            &self.key,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            Some(access_token),
            None,
        )
        .map(|token| token.to_string())
        .map_err(|_| TokenError::server("the ID token could not be signed"))
    }

    /// HTTP Basic client authentication (RFC 6749, section 2.3.1: each part form-encoded).
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let Some((id, secret)) = basic_credentials(headers) else {
            return false;
        };
        let id_ok = id.as_bytes().ct_eq(self.settings.client_id.as_bytes());
        let secret_ok = secret
            .as_bytes()
            .ct_eq(self.settings.client_secret.as_bytes());
        (id_ok & secret_ok).into()
    }
}

/// This issuer's words for an authorization request from an unknown client or to an
/// unregistered redirect URI.
const REFUSALS: Unregistered = Unregistered {
    client: "Unknown client: the client_id is not the development app's.",
    redirect_uri: "The redirect_uri is not registered for this client (compared exactly).",
};

/// What a good code is exchanged for.
struct Redeemed {
    user: TestUser,
    nonce: Option<String>,
    access_token: AccessToken,
}

/// The dialog, answering for this issuer's client.
impl Authority for DevOidc {
    fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    fn registered(&self, client_id: &str, redirect_uri: &str) -> Result<(), &'static str> {
        let s = &self.settings;
        check_registration(&s.client_id, &s.redirect_uris, client_id, redirect_uri, &REFUSALS)
    }

    fn check(&self, params: &DialogParams) -> Result<(), &'static str> {
        if !params.scope.split(' ').any(|s| s == "openid") {
            return Err("An OpenID Connect request needs \"openid\" among its scopes.");
        }
        let asks_name_or_email = params.scope.split(' ').any(|s| s == "name" || s == "email");
        if self.apple.is_some()
            && asks_name_or_email
            && params.response_mode.as_deref() != Some("form_post")
        {
            return Err("Apple: response_mode must be form_post when name or email is requested.");
        }
        if params.code_challenge.is_none() {
            return Err(
                "This issuer requires PKCE: code_challenge with code_challenge_method=S256.",
            );
        }
        Ok(())
    }

    fn auto_approve(&self) -> bool {
        self.settings.auto_approve
    }

    fn posts_answer(&self, params: &DialogParams) -> bool {
        params.response_mode.as_deref() == Some("form_post")
    }

    fn user_field(&self, user: &TestUser) -> Option<String> {
        self.apple.as_ref().and_then(|apple| apple.user_field(user))
    }

    fn issue_code(&self, params: &DialogParams, user: TestUser) -> String {
        let code = random_token();
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME * 10);
        codes.insert(
            code.clone(),
            IssuedCode {
                client_id: params.client_id.clone(),
                redirect_uri: params.redirect_uri.clone(),
                // `check` has made sure of it.
                challenge: params.code_challenge.clone().unwrap_or_default(),
                nonce: params.nonce.clone(),
                user,
                issued: Instant::now(),
                spent: None,
            },
        );
        code
    }

    fn issuer(&self) -> Option<&str> {
        // Apple names no issuer on its answers (RFC 9207 is not among its features).
        self.apple.is_none().then_some(self.settings.issuer.as_str())
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        if self.apple.is_some() {
            // Apple's own code for Cancel, not RFC 6749's.
            return &[("error", "user_cancelled_authorize")];
        }
        &[
            ("error", "access_denied"),
            ("error_description", "The person declined."),
        ]
    }

    fn fragment(&self) -> Option<&'static str> {
        None
    }

    fn sends_groups(&self) -> bool {
        true
    }
}

/// `GET /.well-known/openid-configuration`.
async fn configuration(State(dev): State<Arc<DevOidc>>) -> Response {
    let issuer = &dev.settings.issuer;
    if dev.apple.is_some() {
        // Apple's document, with this issuer's addresses.
        return Json(json!({
            "issuer": issuer,
            "authorization_endpoint": dev.settings.authorization_endpoint,
            "token_endpoint": format!("{issuer}/token"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            // Apple signs with RS256; this stand-in with its ES256 key (see es256.rs).
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid", "email", "name"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": [
                "aud", "email", "email_verified", "exp", "iat", "is_private_email", "iss",
                "nonce", "nonce_supported", "real_user_status", "sub", "transfer_sub",
            ],
        }))
        .into_response();
    }
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": dev.settings.authorization_endpoint,
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "scopes_supported": ["openid", "email", "profile"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "nonce", "azp", "at_hash",
            "name", "given_name", "family_name", "email", "email_verified", "groups",
        ],
        "authorization_response_iss_parameter_supported": true,
    });
    Json(document).into_response()
}

/// `GET /jwks`: the one signing key.
async fn jwks(State(dev): State<Arc<DevOidc>>) -> Json<CoreJsonWebKeySet> {
    Json(CoreJsonWebKeySet::new(vec![dev.key.as_verification_key()]))
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    /// Allowed beside Basic authentication, when it names the same client.
    client_id: Option<String>,
    /// Not accepted: only `client_secret_basic` is advertised.
    client_secret: Option<String>,
}

/// `POST /token`: the client by Basic authentication, then the code.
async fn token(State(dev): State<Arc<DevOidc>>, headers: HeaderMap, body: Bytes) -> Response {
    dev.faults.delay(true).await;
    #[cfg(feature = "test-support")]
    if let Some(answer) = super::api_stand_in::token_fault(dev.faults.get().fault) {
        return answer;
    }
    match exchange(&dev, &headers, &body) {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(error) => error.into_response(),
    }
}

fn exchange(dev: &DevOidc, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(body) else {
        return Err(TokenError::request(
            "The form is malformed or repeats a parameter.",
        ));
    };
    if let Some(apple) = &dev.apple {
        // client_secret_post, the secret Apple's JWT.
        let (Some(client_id), Some(secret)) = (&request.client_id, &request.client_secret)
        else {
            return Err(TokenError::client());
        };
        if *client_id != dev.settings.client_id
            || apple.check_client_secret(client_id, secret).is_err()
        {
            return Err(TokenError::client());
        }
    } else if !dev.authenticated(headers) {
        return Err(TokenError::client());
    }
    if dev.apple.is_none() && request.client_secret.is_some() {
        return Err(TokenError::request(
            "Use one client authentication method: client_secret_basic.",
        ));
    }
    if request
        .client_id
        .as_ref()
        .is_some_and(|id| *id != dev.settings.client_id)
    {
        return Err(TokenError::request(
            "client_id differs from the authenticated client.",
        ));
    }
    if request.grant_type != "authorization_code" {
        return Err(TokenError {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: "Only authorization_code is supported.",
        });
    }
    let redeemed = dev.redeem(
        &request.code,
        &dev.settings.client_id,
        &request.redirect_uri,
        &request.code_verifier,
    )?;
    let id_token = dev.id_token(&redeemed.user, redeemed.nonce, &redeemed.access_token)?;
    Ok(json!({
        "access_token": redeemed.access_token.secret(),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "scope": "openid email profile",
        "id_token": id_token,
    }))
}

/// `GET|POST /userinfo` with `Authorization: Bearer`.
async fn userinfo(State(dev): State<Arc<DevOidc>>, headers: HeaderMap) -> Response {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| dev.tokens.user(token.trim()));
    let Some(user) = user else {
        // RFC 6750, section 3.1.
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        return response;
    };
    let mut claims = serde_json::to_value(standard_claims(&user)).unwrap_or_default();
    // The same groups as the ID token's, for clients that read them here.
    if let Some(claims) = claims.as_object_mut()
        && !user.groups.is_empty()
    {
        claims.insert("groups".to_owned(), json!(user.groups));
    }
    no_store(Json(claims).into_response())
}

/// The person's claims, the same in the ID token and at userinfo.
fn standard_claims(user: &TestUser) -> StandardClaims<openidconnect::core::CoreGenderClaim> {
    let name = [user.first_name.as_str(), user.last_name.as_str()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut claims = StandardClaims::new(SubjectIdentifier::new(user.id.clone()))
        .set_name(Some(LocalizedClaim::from(EndUserName::new(name))))
        .set_given_name(Some(LocalizedClaim::from(EndUserGivenName::new(
            user.first_name.clone(),
        ))));
    if !user.last_name.is_empty() {
        claims = claims.set_family_name(Some(LocalizedClaim::from(EndUserFamilyName::new(
            user.last_name.clone(),
        ))));
    }
    if let Some(email) = &user.email {
        // The person typed it: this stand-in vouches for it, as Google does for its accounts,
        // unless the consent page's "not verified" box says otherwise.
        claims = claims
            .set_email(Some(EndUserEmail::new(email.clone())))
            .set_email_verified(Some(user.email_verified));
    }
    claims
}

/// Credentials from `Authorization: Basic`, each part form-decoded.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one part (`+` is a space).
fn form_decode(part: &str) -> Option<String> {
    if part.contains(['&', '=']) {
        return None;
    }
    let (decoded, _) = url::form_urlencoded::parse(part.as_bytes())
        .next()
        .unwrap_or_default();
    Some(decoded.into_owned())
}

/// Token answers and userinfo are not to be cached (RFC 6749, section 5.1).
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 (section 5.2) error answer.
#[derive(Debug)]
struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl TokenError {
    fn client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed (client_secret_basic).",
        }
    }

    fn request(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description,
        }
    }

    fn grant(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description,
        }
    }

    fn server(description: &'static str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description,
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = no_store((self.status, Json(body)).into_response());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="loginwith development issuer""#),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Arc<DevOidc> {
        DevOidc::new(DevOidcSettings {
            issuer: "http://127.0.0.1:9/dev/facebook/oidc".to_owned(),
            authorization_endpoint: "http://localhost:9/dev/facebook/oidc/authorize".to_owned(),
            client_id: "client".to_owned(),
            client_secret: "secret".to_owned(),
            redirect_uris: vec!["http://127.0.0.1:9/callback/dev-oidc".to_owned()],
            auto_approve: false,
        })
    }

    fn params() -> DialogParams {
        DialogParams {
            client_id: "client".to_owned(),
            redirect_uri: "http://127.0.0.1:9/callback/dev-oidc".to_owned(),
            response_type: "code".to_owned(),
            scope: "openid".to_owned(),
            code_challenge: Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(<sha2::Sha256 as sha2::Digest>::digest(b"verifier")),
            ),
            code_challenge_method: Some("S256".to_owned()),
            ..DialogParams::default()
        }
    }

    fn ada() -> TestUser {
        TestUser {
            id: "1".to_owned(),
            first_name: "Ada".to_owned(),
            last_name: String::new(),
            email: None,
            groups: Vec::new(),
            email_verified: true,
        }
    }

    #[test]
    fn a_code_older_than_a_minute_is_refused() {
        let dev = issuer();
        let code = dev.issue_code(&params(), ada());
        let Some(then) = Instant::now().checked_sub(CODE_LIFETIME) else {
            return; // a machine up for less than a minute: nothing to age
        };
        if let Some(issued) = dev
            .codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&code)
        {
            issued.issued = then;
        }
        let redirect = &params().redirect_uri;
        let refused = dev.redeem(&code, "client", redirect, "verifier").err();
        assert_eq!(
            refused.map(|e| e.description),
            Some("The authorization code has expired.")
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        // RFC 6749, section 2.3.1: `a b:c` and `p@ss:w%rd` form-encoded, then base64.
        let encoded = STANDARD.encode("a+b%3Ac:p%40ss%3Aw%25rd");
        let value = HeaderValue::from_str(&format!("Basic {encoded}"));
        if let Ok(value) = value {
            headers.insert(header::AUTHORIZATION, value);
        }
        assert_eq!(
            basic_credentials(&headers),
            Some(("a b:c".to_owned(), "p@ss:w%rd".to_owned()))
        );
        assert_eq!(form_decode("x&y"), None);
    }

    #[test]
    fn claims_leave_out_what_the_person_did_not_type() {
        let claims = serde_json::to_value(standard_claims(&ada())).unwrap_or_default();
        assert_eq!(claims["name"], "Ada");
        assert_eq!(claims["given_name"], "Ada");
        assert!(claims.get("family_name").is_none(), "{claims}");
        assert!(claims.get("email").is_none(), "{claims}");
        assert!(claims.get("email_verified").is_none(), "{claims}");
    }

    #[test]
    fn an_address_is_verified_unless_the_consent_page_says_not() {
        let with = |email_verified| TestUser {
            email: Some("ada@example.com".to_owned()),
            email_verified,
            ..ada()
        };
        let claims = serde_json::to_value(standard_claims(&with(true))).unwrap_or_default();
        assert_eq!(claims["email_verified"], true);
        let claims = serde_json::to_value(standard_claims(&with(false))).unwrap_or_default();
        assert_eq!(claims["email"], "ada@example.com");
        assert_eq!(claims["email_verified"], false);
    }
}
