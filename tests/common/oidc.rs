//! A small OpenID Connect issuer on a port of its own, beside the app: discovery, JWKS, an
//! authorization endpoint that approves at once, a token endpoint that checks the client,
//! the redirect URI, PKCE and single use, and userinfo. Its misbehaviour is switchable.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalClaims, Audience, ClientId, EndUserEmail, EndUserName,
    IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId, LocalizedClaim, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
    core::{
        CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
        CoreRsaPrivateSigningKey,
    },
};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::{Browser, TestEnv};

pub const OIDC_CLIENT_ID: &str = "corp-client";
pub const OIDC_CLIENT_SECRET: &str = "corp-secret-0123456789abcdef";
const KEY_PEM: &str = include_str!("../keys/issuer-rs256.pem");
const OTHER_KEY_PEM: &str = include_str!("../keys/other-rs256.pem");
const KID: &str = "test-key";
/// The key the issuer moves to when it rotates (published only after the rotation).
const ROTATED_KID: &str = "rotated-key";
/// An elliptic-curve key (ES256), published from the start beside the RSA one.
const EC_KID: &str = "ec-key";
const EC_SECRET: [u8; 32] = [7; 32];
const ACCESS_TOKEN: &str = "at-for-ada";

/// Claims beyond the standard ones (Google's `hd`, a groups claim), as JSON.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Extra(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for Extra {}

type Claims = IdTokenClaims<Extra, CoreGenderClaim>;
type Token =
    IdToken<Extra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// How the issuer misbehaves in the next answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Misbehaviour {
    #[default]
    None,
    WrongNonce,
    WrongAudience,
    OtherIssuer,
    Expired,
    IssuedInTheFuture,
    OtherAuthorizedParty,
    OtherKey,
    AlgNone,
    UserinfoOtherSubject,
    /// `at_hash` of another access token.
    WrongAccessTokenHash,
    /// Signed with a key it never publishes, under a `kid` nobody knows.
    UnknownKey,
    /// HS256 keyed with the issuer's public key: the classic algorithm-confusion forgery.
    Hs256WithPublicKey,
}

/// How the issuer signs its ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signing {
    /// RS256 with the key published from the start.
    #[default]
    Rs256,
    /// RS256 with a new key, published from now on beside the old one (a rotation).
    Rotated,
    /// ES256 (P-256).
    Es256,
}

/// What `/.well-known/openid-configuration` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    #[default]
    Up,
    /// 503, as an issuer down for maintenance.
    Down,
    /// A document naming another issuer.
    OtherIssuer,
}

/// Who signs in and how the issuer behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// What the issuer says in `email_verified`.
    pub email_verified: bool,
    /// Name and email only in userinfo, as oidc-provider does by default.
    pub claims_in_userinfo_only: bool,
    pub misbehaviour: Misbehaviour,
    pub signing: Signing,
    pub discovery: Discovery,
    /// Google's `hd` claim in the ID token: the person's Workspace domain, none for a
    /// consumer account.
    pub hd: Option<String>,
    /// More claims in the ID token, and in userinfo (a groups claim).
    pub id_token_claims: serde_json::Map<String, serde_json::Value>,
    pub userinfo_claims: serde_json::Map<String, serde_json::Value>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            sub: "ada-0001".to_owned(),
            email: "ada@corp.example".to_owned(),
            name: "Ada Lovelace".to_owned(),
            email_verified: true,
            claims_in_userinfo_only: false,
            misbehaviour: Misbehaviour::None,
            signing: Signing::Rs256,
            discovery: Discovery::Up,
            hd: None,
            id_token_claims: serde_json::Map::new(),
            userinfo_claims: serde_json::Map::new(),
        }
    }
}

struct Grant {
    nonce: String,
    challenge: String,
}

pub struct Issuer {
    pub url: String,
    redirect_uri: String,
    behaviour: Mutex<Behaviour>,
    codes: Mutex<HashMap<String, Grant>>,
    /// The `hd` of the last authorization request, as the dialog received it.
    pub requested_hd: Mutex<Option<String>>,
    /// How often discovery and the keys were fetched.
    pub discovery_fetches: AtomicUsize,
    pub key_fetches: AtomicUsize,
    /// How often a browser ended its session here (RP-Initiated Logout).
    pub sessions_ended: AtomicUsize,
}

impl Issuer {
    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().expect("lock"));
    }

    fn behaviour(&self) -> Behaviour {
        self.behaviour.lock().expect("lock").clone()
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/logout", get(end_session))
            .with_state(self)
    }

    /// A back-channel logout token for the person signing in (`sub`), signed with the
    /// issuer's published key, as Back-Channel Logout 1.0 writes one; `edit` changes its
    /// claims (add `sid`, remove `sub`, age `iat` …).
    pub fn logout_token(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        self.sign_logout_token(KEY_PEM, KID, edit)
    }

    /// [`Issuer::logout_token`] signed with a key the issuer never published, under its own
    /// key's `kid`: a forgery.
    pub fn forged_logout_token(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        self.sign_logout_token(OTHER_KEY_PEM, KID, edit)
    }

    /// [`Issuer::logout_token`] signed with a key the issuer never published, under a `kid`
    /// it does not publish either: the app fetches the keys again before refusing it.
    pub fn unknown_key_logout_token(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        self.sign_logout_token(OTHER_KEY_PEM, "never-published", edit)
    }

    /// [`Issuer::logout_token`] as an HS256 MAC keyed with the issuer's public key: the
    /// algorithm-confusion forgery.
    pub fn hs256_logout_token(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        let token = self.logout_token(edit);
        let claims = token.split('.').nth(1).expect("claims").to_owned();
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"alg": "HS256", "kid": KID, "typ": "logout+jwt"}))
                .expect("header"),
        );
        let signed = format!("{header}.{claims}");
        let public =
            serde_json::to_vec(&signing_key(KEY_PEM, KID).as_verification_key()).expect("jwk");
        let mut mac = Hmac::<Sha256>::new_from_slice(&public).expect("any key length");
        mac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn sign_logout_token(
        &self,
        pem: &str,
        kid: &str,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.url,
            "aud": OIDC_CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": format!("jti-{}", rand::random::<u64>()),
            "sub": self.behaviour().sub,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        })
        .as_object()
        .cloned()
        .expect("an object");
        edit(&mut claims);
        let key = signing_key(pem, kid);
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"alg": "RS256", "kid": kid, "typ": "logout+jwt"}))
                .expect("header"),
        );
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims"));
        let signed = format!("{header}.{payload}");
        let signature = key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                signed.as_bytes(),
            )
            .expect("sign");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn id_token(&self, nonce: &str) -> String {
        let b = self.behaviour();
        let now = chrono::Utc::now();
        let (iat, exp) = match b.misbehaviour {
            Misbehaviour::Expired => (
                now - chrono::Duration::minutes(20),
                now - chrono::Duration::minutes(10),
            ),
            Misbehaviour::IssuedInTheFuture => (
                now + chrono::Duration::minutes(10),
                now + chrono::Duration::minutes(20),
            ),
            _ => (now, now + chrono::Duration::minutes(5)),
        };
        let issuer = match b.misbehaviour {
            Misbehaviour::OtherIssuer => format!("{}/other", self.url),
            _ => self.url.clone(),
        };
        let audience = match b.misbehaviour {
            Misbehaviour::WrongAudience => "someone-else",
            _ => OIDC_CLIENT_ID,
        };
        let mut standard = StandardClaims::new(SubjectIdentifier::new(b.sub.clone()));
        if !b.claims_in_userinfo_only {
            standard = standard
                .set_email(Some(EndUserEmail::new(b.email.clone())))
                .set_email_verified(Some(b.email_verified))
                .set_name(Some(LocalizedClaim::from(EndUserName::new(b.name.clone()))));
        }
        let nonce = match b.misbehaviour {
            Misbehaviour::WrongNonce => "not-the-nonce".to_owned(),
            _ => nonce.to_owned(),
        };
        let mut extra = b.id_token_claims.clone();
        if let Some(hd) = b.hd {
            extra.insert("hd".to_owned(), hd.into());
        }
        let mut claims = Claims::new(
            IssuerUrl::new(issuer).expect("issuer"),
            vec![Audience::new(audience.to_owned())],
            exp,
            iat,
            standard,
            Extra(extra),
        )
        .set_nonce(Some(Nonce::new(nonce)));
        if b.misbehaviour == Misbehaviour::OtherAuthorizedParty {
            claims = claims.set_authorized_party(Some(ClientId::new("another-client".into())));
        }
        if b.misbehaviour == Misbehaviour::AlgNone {
            return unsigned(&claims);
        }
        if b.misbehaviour == Misbehaviour::Hs256WithPublicKey {
            return hs256_with_public_key(&claims);
        }
        if b.signing == Signing::Es256 {
            let claims =
                claims.set_access_token_hash(Some(AccessTokenHash::new(left_half_sha256(match b
                    .misbehaviour
                {
                    Misbehaviour::WrongAccessTokenHash => "another-access-token",
                    _ => ACCESS_TOKEN,
                }))));
            return es256(&claims);
        }
        let (pem, kid) = match (b.misbehaviour, b.signing) {
            (Misbehaviour::OtherKey, _) => (OTHER_KEY_PEM, KID),
            (Misbehaviour::UnknownKey, _) => (OTHER_KEY_PEM, "never-published"),
            (_, Signing::Rotated) => (OTHER_KEY_PEM, ROTATED_KID),
            _ => (KEY_PEM, KID),
        };
        let key = signing_key(pem, kid);
        let hashed = match b.misbehaviour {
            Misbehaviour::WrongAccessTokenHash => "another-access-token",
            _ => ACCESS_TOKEN,
        };
        let at_hash = AccessTokenHash::from_token(
            &AccessToken::new(hashed.to_owned()),
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            &key.as_verification_key(),
        )
        .expect("at_hash");
        let token = Token::new(
            claims.set_access_token_hash(Some(at_hash)),
            &key,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .expect("sign");
        token.to_string()
    }
}

fn signing_key(pem: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.to_owned())))
        .expect("test key")
}

fn ec_key() -> SigningKey {
    SigningKey::from_slice(&EC_SECRET).expect("EC test key")
}

/// The EC key as a JWK (x and y from the uncompressed SEC1 point: 0x04 || x || y).
fn ec_jwk() -> serde_json::Value {
    let point = ec_key().verifying_key().to_sec1_bytes();
    let (x, y) = point[1..].split_at(32);
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": EC_KID,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    })
}

/// A compact JWS of `claims` signed by `sign` over `header.payload`.
fn jws(header: serde_json::Value, claims: &Claims, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header"));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(sign(signed.as_bytes()));
    format!("{signed}.{signature}")
}

fn es256(claims: &Claims) -> String {
    jws(
        json!({"alg": "ES256", "kid": EC_KID, "typ": "JWT"}),
        claims,
        |bytes| {
            let signature: Signature = ec_key().sign(bytes);
            signature.to_bytes().to_vec()
        },
    )
}

fn hs256_with_public_key(claims: &Claims) -> String {
    let public = serde_json::to_vec(&signing_key(KEY_PEM, KID).as_verification_key()).expect("jwk");
    jws(
        json!({"alg": "HS256", "kid": KID, "typ": "JWT"}),
        claims,
        |bytes| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&public).expect("any key length");
            mac.update(bytes);
            mac.finalize().into_bytes().to_vec()
        },
    )
}

/// `at_hash` for ES256 and RS256: the left half of SHA-256, base64url.
fn left_half_sha256(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// A JWT with `alg=none` and no signature: what a forger sends.
fn unsigned(claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    format!("{header}.{payload}.")
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    issuer.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let url = &issuer.url;
    let named = match issuer.behaviour().discovery {
        Discovery::Down => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Discovery::OtherIssuer => format!("{url}/other"),
        Discovery::Up => url.clone(),
    };
    Json(json!({
        "issuer": named,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "userinfo_endpoint": format!("{url}/userinfo"),
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "end_session_endpoint": format!("{url}/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct EndSessionQuery {
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

/// RP-Initiated Logout's endpoint: the client must be ours; counted, then back to the
/// client's post-logout URI with its `state`.
async fn end_session(
    State(issuer): State<Arc<Issuer>>,
    Query(q): Query<EndSessionQuery>,
) -> Response {
    if q.client_id != OIDC_CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    issuer.sessions_ended.fetch_add(1, Ordering::SeqCst);
    let back =
        url::Url::parse_with_params(&q.post_logout_redirect_uri, [("state", q.state.as_str())])
            .expect("post-logout URI");
    Redirect::to(back.as_str()).into_response()
}

/// The RSA key and the EC key; after a rotation also the new RSA key.
async fn jwks(State(issuer): State<Arc<Issuer>>) -> Json<serde_json::Value> {
    issuer.key_fetches.fetch_add(1, Ordering::SeqCst);
    let rsa = |pem, kid| serde_json::to_value(signing_key(pem, kid).as_verification_key());
    let mut keys = vec![rsa(KEY_PEM, KID).expect("jwk"), ec_jwk()];
    if issuer.behaviour().signing == Signing::Rotated {
        keys.push(rsa(OTHER_KEY_PEM, ROTATED_KID).expect("jwk"));
    }
    Json(json!({ "keys": keys }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    response_type: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
    /// Google's account-chooser hint.
    hd: Option<String>,
}

async fn authorize(State(issuer): State<Arc<Issuer>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let well_formed = q.client_id == OIDC_CLIENT_ID
        && q.redirect_uri == issuer.redirect_uri
        && q.response_type == "code"
        && q.scope.split(' ').any(|s| s == "openid")
        && q.code_challenge_method == "S256";
    if !well_formed {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    *issuer.requested_hd.lock().expect("lock") = q.hd;
    let code = format!("code-{}", rand::random::<u64>());
    issuer.codes.lock().expect("lock").insert(
        code.clone(),
        Grant {
            nonce: q.nonce,
            challenge: q.code_challenge,
        },
    );
    let back = url::Url::parse_with_params(
        &q.redirect_uri,
        [
            ("code", code.as_str()),
            ("state", q.state.as_str()),
            ("iss", issuer.url.as_str()),
        ],
    )
    .expect("redirect");
    Redirect::to(back.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

async fn token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{OIDC_CLIENT_ID}:{OIDC_CLIENT_SECRET}"))
    );
    if headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return refusal(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    // Single use: taken out whatever happens next.
    let Some(grant) = issuer.codes.lock().expect("lock").remove(&form.code) else {
        return refusal(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes()));
    if form.grant_type != "authorization_code"
        || form.redirect_uri != issuer.redirect_uri
        || challenge != grant.challenge
    {
        return refusal(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    Json(json!({
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": issuer.id_token(&grant.nonce),
    }))
    .into_response()
}

fn refusal(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn userinfo(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    if headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let b = issuer.behaviour();
    let sub = match b.misbehaviour {
        Misbehaviour::UserinfoOtherSubject => "mallory-9999".to_owned(),
        _ => b.sub,
    };
    let mut answer = b.userinfo_claims;
    answer.extend([
        ("sub".to_owned(), sub.into()),
        ("name".to_owned(), b.name.into()),
        ("email".to_owned(), b.email.into()),
        ("email_verified".to_owned(), b.email_verified.into()),
    ]);
    Json(answer).into_response()
}

impl Issuer {
    /// The issuer alone on a port of its own (for the binary), behaving as `behave` says;
    /// `redirect_uri` is the app's callback it accepts.
    pub async fn serve(redirect_uri: &str, behave: impl FnOnce(&mut Behaviour)) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut behaviour = Behaviour::default();
        behave(&mut behaviour);
        Self::serve_on(listener, url, redirect_uri.to_owned(), behaviour)
    }

    /// The issuer at `url`, answering on `listener` from now on.
    fn serve_on(
        listener: TcpListener,
        url: String,
        redirect_uri: String,
        behaviour: Behaviour,
    ) -> Arc<Self> {
        let issuer = Arc::new(Issuer {
            url,
            redirect_uri,
            behaviour: Mutex::new(behaviour),
            codes: Mutex::new(HashMap::new()),
            requested_hd: Mutex::new(None),
            discovery_fetches: AtomicUsize::new(0),
            key_fetches: AtomicUsize::new(0),
            sessions_ended: AtomicUsize::new(0),
        });
        let router = issuer.clone().router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        issuer
    }
}

pub struct OidcEnv {
    pub env: TestEnv,
    pub issuer: Arc<Issuer>,
}

impl OidcEnv {
    /// The app with `[providers.corp]` of kind `oidc` pointing at the test issuer, configured
    /// as people configure it, so the factory discovers it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}, |f| f, Vec::new()).await
    }

    /// [`OidcEnv::start`] with the issuer behaving as `behave` says from its first answer
    /// (discovery included), more configuration, and more providers beside it.
    pub async fn start_with(
        behave: impl FnOnce(&mut Behaviour),
        tweak: impl FnOnce(figment::Figment) -> figment::Figment,
        extra: Vec<Arc<dyn loginwith::auth::Provider>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut behaviour = Behaviour::default();
        behave(&mut behaviour);
        let mut made = None;
        let configured = url.clone();
        let env = TestEnv::start_with_providers(
            |app_url| {
                made = Some(Issuer::serve_on(
                    listener,
                    url.clone(),
                    format!("{app_url}/callback/corp"),
                    behaviour,
                ));
                extra
            },
            move |f| {
                tweak(
                    f.merge(("providers.corp.kind", "oidc"))
                        .merge(("providers.corp.issuer", configured))
                        .merge(("providers.corp.client_id", OIDC_CLIENT_ID))
                        .merge(("providers.corp.client_secret", OIDC_CLIENT_SECRET))
                        .merge(("providers.corp.display_name", "Corp SSO")),
                )
            },
        )
        .await;
        Self {
            env,
            issuer: made.expect("the issuer was made"),
        }
    }

    /// How often the app fetched the discovery document and the keys.
    pub fn fetches(&self) -> (usize, usize) {
        (
            self.issuer.discovery_fetches.load(Ordering::SeqCst),
            self.issuer.key_fetches.load(Ordering::SeqCst),
        )
    }

    /// `/authorize/corp` → the issuer (approves at once) → `/callback/corp` → `/preloader`;
    /// then the finished operation's status.
    pub async fn sign_in(&self, browser: &Browser) -> String {
        browser
            .until_preloader_through("corp", &self.issuer.url)
            .await;
        browser.wait_status().await
    }
}
