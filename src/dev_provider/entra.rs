//! A stand-in for Microsoft Entra ID's v2.0 endpoints with several tenants, for tests (the
//! same client code path as production).
//!
//! As Entra ID does: discovery per tenant path, the multi-tenant documents (`common`,
//! `organizations`) naming the issuer `{base}/{tenantid}/v2.0` as a template, `consumers`
//! the personal accounts' tenant; one key set for all; ID tokens whose `iss` names the
//! account's own tenant, with `tid`, `oid`, a pairwise `sub`, `name`, `preferred_username`,
//! and `email`/`xms_edov` only when the registration asked for them. The client may
//! authenticate with HTTP Basic or in the body; codes are single-use, PKCE and the exact
//! redirect URI are checked. [`EntraStandIn::forge_issuer_of`] makes it sign a token naming
//! another tenant than the account's: what a client that trusted `iss` alone would accept.
//!
//! Routes: `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /discovery/v2.0/keys`,
//! `GET /{tenant}/oauth2/v2.0/authorize`, `POST /{tenant}/oauth2/v2.0/token`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, EndUserName, IdToken, IdTokenClaims, IssuerUrl,
    Nonce, PrivateSigningKey, StandardClaims, SubjectIdentifier,
    core::{
        CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use super::{
    es256::Es256Key,
    CODE_LIFETIME, Faults, api_stand_in::token_fault, 
    faults::FaultSwitch, oidc::basic_credentials, pkce_matches, random_token, secret_matches,
};

/// The personal accounts' tenant, as Entra ID names it.
pub const CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// An account in one tenant.
#[derive(Debug, Clone)]
pub struct EntraUser {
    /// The tenant id (`tid`).
    pub tenant: String,
    /// The object id (`oid`).
    pub oid: String,
    pub name: String,
    pub email: Option<String>,
    /// `xms_edov`: the address's domain is verified by the tenant (sent only when set).
    pub email_domain_verified: Option<bool>,
}

/// The app registration.
#[derive(Clone)]
pub struct EntraStandInSettings {
    /// Where it is served (`http://127.0.0.1:port`): the authority.
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

struct IssuedCode {
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: EntraUser,
    issued: Instant,
}

pub struct EntraStandIn {
    settings: EntraStandInSettings,
    key: Es256Key,
    faults: FaultSwitch,
    user: RwLock<EntraUser>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    /// Sign the next tokens naming this tenant in `iss`, whatever the account's.
    forged_issuer: RwLock<Option<String>>,
}

/// The claims beyond the standard ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
struct Extra(Map<String, Value>);

impl AdditionalClaims for Extra {}

type EntraIdToken =
    IdToken<Extra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EntraStandIn {
    pub fn new(settings: EntraStandInSettings, user: EntraUser) -> Arc<Self> {
        Arc::new(Self {
            settings,
            key: Es256Key::generate(),
            faults: FaultSwitch::default(),
            user: RwLock::new(user),
            codes: Mutex::default(),
            forged_issuer: RwLock::new(None),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(configuration),
            )
            .route("/discovery/v2.0/keys", get(keys))
            .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(self.clone())
    }

    pub fn set_user(&self, user: EntraUser) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = user;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// From now on, tokens name `tenant` in `iss` (with the account's own `tid`).
    pub fn forge_issuer_of(&self, tenant: &str) {
        *self
            .forged_issuer
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(tenant.to_owned());
    }

    fn issuer_of(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.settings.base)
    }

    fn id_token(
        &self,
        user: &EntraUser,
        nonce: Option<String>,
        access_token: &AccessToken,
    ) -> Option<String> {
        let forged = self
            .forged_issuer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let issuer = self.issuer_of(forged.as_deref().unwrap_or(&user.tenant));
        let now = chrono::Utc::now();
        let mut extra = Map::new();
        extra.insert("tid".into(), json!(user.tenant));
        extra.insert("oid".into(), json!(user.oid));
        extra.insert("preferred_username".into(), json!(user.email));
        extra.insert("ver".into(), json!("2.0"));
        if let Some(verified) = user.email_domain_verified {
            extra.insert("xms_edov".into(), json!(verified));
        }
        // Pairwise: the same account has another `sub` in every application.
        let sub = format!("{}-{}", user.oid, self.settings.client_id);
        let mut standard = StandardClaims::new(SubjectIdentifier::new(sub))
            .set_name(Some(EndUserName::new(user.name.clone()).into()));
        if let Some(email) = &user.email {
            standard = standard.set_email(Some(openidconnect::EndUserEmail::new(email.clone())));
        }
        let claims = IdTokenClaims::new(
            IssuerUrl::new(issuer).ok()?,
            vec![Audience::new(self.settings.client_id.clone())],
            now + chrono::Duration::minutes(60),
            now,
            standard,
            Extra(extra),
        )
        .set_nonce(nonce.map(Nonce::new));
        EntraIdToken::new(
            claims,
            &self.key,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            Some(access_token),
            None,
        )
        .ok()
        .map(|t| t.to_string())
    }
}

async fn configuration(State(entra): State<Arc<EntraStandIn>>, Path(tenant): Path<String>) -> Response {
    let base = &entra.settings.base;
    let issuer = match tenant.as_str() {
        "common" | "organizations" => format!("{base}/{{tenantid}}/v2.0"),
        "consumers" => entra.issuer_of(CONSUMERS),
        id => entra.issuer_of(id),
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username", "email", "tid", "oid", "ver"],
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

async fn keys(State(entra): State<Arc<EntraStandIn>>) -> Json<CoreJsonWebKeySet> {
    Json(CoreJsonWebKeySet::new(vec![entra.key.as_verification_key()]))
}

#[derive(Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

async fn authorize(State(entra): State<Arc<EntraStandIn>>, RawQuery(query): RawQuery) -> Response {
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(&query.unwrap_or_default())
    else {
        return (StatusCode::BAD_REQUEST, "AADSTS900144: malformed request").into_response();
    };
    if params.client_id != entra.settings.client_id {
        return (StatusCode::BAD_REQUEST, "AADSTS700016: application not found").into_response();
    }
    if params.redirect_uri != entra.settings.redirect_uri {
        return (StatusCode::BAD_REQUEST, "AADSTS50011: redirect URI mismatch").into_response();
    }
    let Ok(mut target) = Url::parse(&params.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect URI").into_response();
    };
    if params.code_challenge_method != "S256" || params.code_challenge.len() != 43 {
        return (StatusCode::BAD_REQUEST, "this stand-in requires PKCE S256").into_response();
    }
    let user = entra
        .user
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let code = random_token();
    {
        let mut codes = lock(&entra.codes);
        codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
        codes.insert(
            code.clone(),
            IssuedCode {
                redirect_uri: params.redirect_uri.clone(),
                challenge: params.code_challenge,
                nonce: params.nonce,
                user,
                issued: Instant::now(),
            },
        );
    }
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description, "error_codes": [70008]})),
    )
        .into_response()
}

async fn token(State(entra): State<Arc<EntraStandIn>>, headers: HeaderMap, body: Bytes) -> Response {
    entra.faults.delay(true).await;
    if let Some(answer) = token_fault(entra.faults.get().fault) {
        return answer;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS900144");
    };
    let (id, secret) = basic_credentials(&headers)
        .or_else(|| form.client_id.clone().zip(form.client_secret.clone()))
        .unwrap_or_default();
    if id != entra.settings.client_id || !secret_matches(&secret, &entra.settings.client_secret) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let grant = || {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
        )
    };
    let Some(issued) = lock(&entra.codes).remove(&form.code) else {
        return grant();
    };
    if issued.issued.elapsed() >= CODE_LIFETIME
        || issued.redirect_uri != form.redirect_uri
        || !pkce_matches(&issued.challenge, &form.code_verifier)
    {
        return grant();
    }
    let access_token = AccessToken::new(random_token());
    let Some(id_token) = entra.id_token(&issued.user, issued.nonce, &access_token) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "signing");
    };
    Json(json!({
        "token_type": "Bearer",
        "scope": "openid profile email",
        "expires_in": 3600,
        "access_token": access_token.secret(),
        "id_token": id_token,
    }))
    .into_response()
}
