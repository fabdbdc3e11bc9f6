//! A stand-in for the OAuth 2.0 endpoints and the one profile call of X and of Discord, for
//! tests (the same client code path as production).
//!
//! It checks what they check: the client authenticated with HTTP Basic at the token endpoint
//! (X refuses a confidential client's credentials anywhere else), the exact redirect URI,
//! single-use unexpired codes, and PKCE S256, which X requires on every authorization
//! request. It answers in each service's shapes: X's `{"data":{…}}` and its problem-JSON
//! errors, Discord's user object and `{"message","code"}` errors, RFC 6749 token errors. The
//! same [`Faults`] as the other stand-ins inject failures.
//!
//! Routes, relative to where it is served (the services' own paths, so the client's defaults
//! only change host): X: `GET /i/oauth2/authorize`, `POST /2/oauth2/token`,
//! `GET /2/users/me`; Discord: `GET /oauth2/authorize`, `POST /api/oauth2/token`,
//! `GET /api/v10/users/@me`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{
    CODE_LIFETIME, Fault, Faults, TOKEN_LIFETIME, faults::FaultSwitch, graph::huge_error_page,
    oidc::basic_credentials, pkce_matches, random_token, secret_matches,
};

/// Which service it imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    X,
    Discord,
}

impl ApiKind {
    /// Where the client's `authorize_url`, `token_url` and `api_url` point, below the
    /// stand-in's base URL.
    pub const fn paths(self) -> [&'static str; 3] {
        match self {
            Self::X => ["/i/oauth2/authorize", "/2/oauth2/token", "/2"],
            Self::Discord => ["/oauth2/authorize", "/api/oauth2/token", "/api/v10"],
        }
    }
}

/// The app registration it accepts.
#[derive(Clone)]
pub struct ApiStandInSettings {
    pub kind: ApiKind,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

/// The person who approves, as each service describes them.
#[derive(Debug, Clone, Default)]
pub struct ApiUser {
    /// A snowflake or X's numeric id, as a string.
    pub id: String,
    /// X's `name`, Discord's `global_name`.
    pub name: Option<String>,
    /// The handle, which can change.
    pub username: String,
    /// X's `confirmed_email` (sent with `user.fields=confirmed_email` and the `users.email`
    /// scope), Discord's `email` (with the `email` scope).
    pub email: Option<String>,
    /// Discord's `verified`.
    pub verified: bool,
}

struct IssuedCode {
    redirect_uri: String,
    challenge: Option<String>,
    scopes: Vec<String>,
    user: ApiUser,
    issued: Instant,
    used: bool,
}

struct Grant {
    user: ApiUser,
    scopes: Vec<String>,
    issued: Instant,
}

/// The stand-in's state: the authorize endpoint approves at once as [`ApiStandIn::set_user`]
/// named, or refuses after [`ApiStandIn::set_denies`].
pub struct ApiStandIn {
    settings: ApiStandInSettings,
    faults: FaultSwitch,
    user: RwLock<Option<ApiUser>>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    tokens: Mutex<HashMap<String, Grant>>,
    /// Each profile call's path and query, in order.
    calls: Mutex<Vec<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ApiStandIn {
    pub fn new(settings: ApiStandInSettings, user: ApiUser) -> Arc<Self> {
        Arc::new(Self {
            settings,
            faults: FaultSwitch::default(),
            user: RwLock::new(Some(user)),
            codes: Mutex::default(),
            tokens: Mutex::default(),
            calls: Mutex::default(),
        })
    }

    /// The routes, served at the stand-in's base URL.
    pub fn router(self: &Arc<Self>) -> Router {
        let [authorize_path, token_path, api] = self.settings.kind.paths();
        let me = match self.settings.kind {
            ApiKind::X => format!("{api}/users/me"),
            ApiKind::Discord => format!("{api}/users/@me"),
        };
        Router::new()
            .route(authorize_path, get(authorize))
            .route(token_path, post(token))
            .route(&me, get(me_handler))
            .with_state(self.clone())
    }

    pub fn set_user(&self, user: ApiUser) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = Some(user);
    }

    /// The next sign-in is cancelled by the person.
    pub fn set_denies(&self) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// Every profile call's path and query, in order.
    pub fn profile_calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

#[derive(Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    state: Option<String>,
    #[serde(default)]
    scope: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(State(api): State<Arc<ApiStandIn>>, RawQuery(query): RawQuery) -> Response {
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(&query.unwrap_or_default())
    else {
        return (StatusCode::BAD_REQUEST, "malformed parameters").into_response();
    };
    if params.client_id != api.settings.client_id {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    }
    if params.redirect_uri != api.settings.redirect_uri {
        return (StatusCode::BAD_REQUEST, "Invalid redirect_uri").into_response();
    }
    let Ok(mut target) = Url::parse(&params.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let challenge = match (
        params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) if challenge.len() == 43 => Some(challenge),
        // X requires PKCE; Discord takes it when sent.
        (None, None) if api.settings.kind == ApiKind::Discord => None,
        _ => {
            target
                .query_pairs_mut()
                .append_pair("error", "invalid_request")
                .append_pair("error_description", "code_challenge is required (S256)");
            return Redirect::to(target.as_str()).into_response();
        }
    };
    let approver = api
        .user
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    {
        let mut query = target.query_pairs_mut();
        match (params.response_type.as_str(), approver) {
            ("code", Some(user)) => {
                let code = random_token();
                let mut codes = lock(&api.codes);
                codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
                codes.insert(
                    code.clone(),
                    IssuedCode {
                        redirect_uri: params.redirect_uri.clone(),
                        challenge,
                        scopes: params.scope.split(' ').map(str::to_owned).collect(),
                        user,
                        issued: Instant::now(),
                        used: false,
                    },
                );
                query.append_pair("code", &code);
            }
            ("code", None) => {
                query
                    .append_pair("error", "access_denied")
                    .append_pair("error_description", "The resource owner denied the request");
            }
            _ => {
                query.append_pair("error", "unsupported_response_type");
            }
        }
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    code_verifier: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(api): State<Arc<ApiStandIn>>, headers: HeaderMap, body: Bytes) -> Response {
    api.faults.delay(true).await;
    if let Some(answer) = token_fault(api.faults.get().fault) {
        return answer;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed body");
    };
    let authenticated = basic_credentials(&headers).is_some_and(|(id, secret)| {
        id == api.settings.client_id && secret_matches(&secret, &api.settings.client_secret)
    });
    if !authenticated || form.client_secret.is_some() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Missing valid authorization header",
        );
    }
    if form.grant_type != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type",
        );
    }
    let invalid = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Value passed for the authorization code was invalid.",
        )
    };
    let mut codes = lock(&api.codes);
    let Some(issued) = codes.get_mut(&form.code) else {
        return invalid();
    };
    if issued.used || issued.issued.elapsed() >= CODE_LIFETIME {
        return invalid();
    }
    issued.used = true;
    if issued.redirect_uri != form.redirect_uri {
        return invalid();
    }
    if let Some(challenge) = &issued.challenge
        && !pkce_matches(challenge, form.code_verifier.as_deref().unwrap_or_default())
    {
        return invalid();
    }
    let grant = Grant {
        user: issued.user.clone(),
        scopes: issued.scopes.clone(),
        issued: Instant::now(),
    };
    drop(codes);
    let access_token = random_token();
    let scope = grant.scopes.join(" ");
    let mut tokens = lock(&api.tokens);
    tokens.retain(|_, g| g.issued.elapsed() < TOKEN_LIFETIME);
    tokens.insert(access_token.clone(), grant);
    Json(json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access_token,
        "scope": scope,
    }))
    .into_response()
}

fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What the token endpoint answers instead of looking at the code, under a fault.
pub(super) fn token_fault(fault: Fault) -> Option<Response> {
    let response = match fault {
        Fault::TokenError | Fault::TokenInvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Value passed for the authorization code was invalid.",
        ),
        Fault::TokenBadRequestHtml => {
            (StatusCode::BAD_REQUEST, Html("<html><body>Bad Request</body></html>")).into_response()
        }
        Fault::TokenServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<html><body>Internal Server Error</body></html>"),
        )
            .into_response(),
        Fault::TokenRateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})),
        )
            .into_response(),
        Fault::TokenEmptyBody => json_text(String::new()),
        Fault::TokenNotJson => json_text("access_token=x&token_type=bearer".to_owned()),
        Fault::TokenHtmlContentType => (
            [(header::CONTENT_TYPE, "text/html")],
            r#"{"access_token":"x","token_type":"bearer"}"#,
        )
            .into_response(),
        Fault::TokenMissingAccessToken => json_text(r#"{"token_type":"bearer"}"#.to_owned()),
        Fault::TokenEmptyAccessToken => {
            json_text(r#"{"access_token":"","token_type":"bearer"}"#.to_owned())
        }
        Fault::TokenTypeMac => json_text(r#"{"access_token":"x","token_type":"mac"}"#.to_owned()),
        _ => return None,
    };
    Some(response)
}

/// The service's own error body for a profile call.
fn api_error(kind: ApiKind, status: StatusCode, message: &str) -> Response {
    let body = match kind {
        ApiKind::X => json!({
            "title": message,
            "detail": message,
            "type": "about:blank",
            "status": status.as_u16(),
        }),
        ApiKind::Discord => json!({"message": format!("{}: {message}", status.as_u16()), "code": 0}),
    };
    (status, Json(body)).into_response()
}

fn user_json(kind: ApiKind, user: &ApiUser, scopes: &[String], query: &str, fault: Fault) -> Value {
    match kind {
        ApiKind::X => {
            let mut data = json!({"id": user.id, "name": user.name, "username": user.username});
            let asked = query.contains("user.fields=confirmed_email");
            if asked && scopes.iter().any(|s| s == "users.email") && fault != Fault::MissingEmail
                && let Some(email) = &user.email
            {
                data["confirmed_email"] = json!(email);
            }
            json!({ "data": data })
        }
        ApiKind::Discord => {
            let mut body = json!({
                "id": user.id,
                "username": user.username,
                "discriminator": "0",
                "global_name": user.name,
                "avatar": null,
                "flags": 0,
            });
            if scopes.iter().any(|s| s == "email") {
                body["email"] = json!(user.email);
                body["verified"] = json!(user.verified && fault != Fault::MissingEmail);
            }
            body
        }
    }
}

async fn me_handler(
    State(api): State<Arc<ApiStandIn>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let kind = api.settings.kind;
    lock(&api.calls).push(
        uri.path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    api.faults.delay(false).await;
    let grant = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| {
            lock(&api.tokens)
                .get(token)
                .filter(|g| g.issued.elapsed() < TOKEN_LIFETIME)
                .map(|g| (g.user.clone(), g.scopes.clone()))
        });
    let Some((user, scopes)) = grant else {
        return api_error(kind, StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let fault = api.faults.get().fault;
    let body = user_json(kind, &user, &scopes, uri.query().unwrap_or_default(), fault);
    match fault {
        Fault::MeServerError => api_error(kind, StatusCode::INTERNAL_SERVER_ERROR, "Internal Error"),
        Fault::MeHugeHtmlError => {
            (StatusCode::INTERNAL_SERVER_ERROR, Html(huge_error_page())).into_response()
        }
        Fault::MeRateLimited => api_error(kind, StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Fault::MeExpiredToken => api_error(kind, StatusCode::UNAUTHORIZED, "Unauthorized"),
        Fault::MalformedJson => json_text(format!("{{\"id\":\"{}\",", user.id)),
        Fault::MeHtmlContentType => {
            ([(header::CONTENT_TYPE, "text/html")], body.to_string()).into_response()
        }
        Fault::OversizedResponse => {
            let mut body = body;
            body["padding"] = json!("x".repeat(1024 * 1024));
            Json(body).into_response()
        }
        _ => Json(body).into_response(),
    }
}
