//! A stand-in for GitHub's OAuth App endpoints and the two REST calls a sign-in makes, for
//! tests (the same client code path as production).
//!
//! It checks what GitHub checks (client id and secret, exact redirect URI, single-use
//! unexpired codes, the PKCE verifier, the `User-Agent`) and, more strictly than GitHub, the
//! `Accept` and `X-GitHub-Api-Version` headers the client is meant to send. It answers in
//! GitHub's shapes, token errors with HTTP 200 included. The same [`Faults`] as the Facebook
//! stand-in inject failures, where they apply.
//!
//! Routes, relative to where it is served: `GET /login/oauth/authorize`,
//! `POST /login/oauth/access_token`, `GET /user`, `GET /user/emails`, and the paged
//! `GET /user/orgs` and `GET /user/teams` (`per_page`, default 30, at most 100; `page`; a
//! `Link` header as GitHub writes it). `/user/teams` answers 403 to a token granted without
//! `read:org` (or a scope that includes it), as GitHub does; the granted scopes are those the
//! authorization request asked for.
//!
//! Longer than the 400 lines a file here aims for: it is one imitated service, GitHub's OAuth
//! endpoints and four REST routes with their paging and faults, kept together so a reader sees
//! the whole of what the GitHub client is tested against; it is compiled for the tests only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{
    CODE_LIFETIME, Fault, Faults, TOKEN_LIFETIME, TokenRequest, faults::FaultSwitch,
    graph::huge_error_page, pkce_matches, random_token, secret_matches,
};

/// The REST API version the stand-in serves (the one the client asks for).
const API_VERSION: &str = "2022-11-28";
const API_MEDIA_TYPE: &str = "application/vnd.github+json";
const DOCS: &str = "https://docs.github.com/rest";

/// The OAuth App registration the stand-in accepts.
#[derive(Clone)]
pub struct GitHubStandInSettings {
    pub client_id: String,
    pub client_secret: String,
    /// The app's callback URL: compared byte for byte.
    pub redirect_uri: String,
}

/// A GitHub account as `/user`, `/user/emails`, `/user/orgs` and `/user/teams` describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitHubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub emails: Vec<GitHubEmail>,
    /// The organisations' logins, as `/user/orgs` lists them.
    pub orgs: Vec<String>,
    /// (organisation login, team slug), as `/user/teams` lists them.
    pub teams: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

/// Scopes any of which lets a token read `/user/teams`.
const ORG_SCOPES: [&str; 3] = ["read:org", "write:org", "admin:org"];
/// GitHub's page size when `per_page` is not given, and its largest.
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

struct IssuedCode {
    redirect_uri: String,
    challenge: Option<String>,
    /// What the authorization request asked for in `scope`: what the token is granted.
    scopes: Vec<String>,
    user: GitHubUser,
    issued: Instant,
    used: bool,
}

/// The stand-in's state. The authorize endpoint approves at once, as whoever [`set_user`]
/// named (or refuses, after [`set_denies`]).
///
/// [`set_user`]: GitHubStandIn::set_user
/// [`set_denies`]: GitHubStandIn::set_denies
pub struct GitHubStandIn {
    settings: GitHubStandInSettings,
    faults: FaultSwitch,
    /// Who approves the next sign-in; `None` means the person clicks "Cancel".
    user: RwLock<Option<GitHubUser>>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    tokens: Mutex<HashMap<String, Grant>>,
    /// Every REST API call, as path and query, in order of arrival.
    api_calls: Mutex<Vec<String>>,
    /// Where the `Link` headers of paged lists point instead of the stand-in itself.
    link_origin: RwLock<Option<String>>,
}

/// An access token's holder and scopes.
#[derive(Clone)]
struct Grant {
    user: GitHubUser,
    scopes: Vec<String>,
    issued: Instant,
}

impl GitHubStandIn {
    pub fn new(settings: GitHubStandInSettings, user: GitHubUser) -> Arc<Self> {
        Arc::new(Self {
            settings,
            faults: FaultSwitch::default(),
            user: RwLock::new(Some(user)),
            codes: Mutex::default(),
            tokens: Mutex::default(),
            api_calls: Mutex::default(),
            link_origin: RwLock::default(),
        })
    }

    /// The routes, to be served at the stand-in's base URL (both github.com's and
    /// api.github.com's paths live on one server).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams))
            .with_state(self.clone())
    }

    /// Who approves from the next sign-in on.
    pub fn set_user(&self, user: GitHubUser) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = Some(user);
    }

    /// From the next sign-in on, the person refuses (`error=access_denied`).
    pub fn set_denies(&self) {
        *self.user.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// Every access token issued and not yet expired (tests check none of them leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.keys().cloned().collect()
    }

    /// Every REST API call so far (`/user/teams?per_page=100&page=2`), in order of arrival.
    pub fn api_calls(&self) -> Vec<String> {
        self.api_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From now on, the `Link` headers of `/user/orgs` and `/user/teams` point at `origin`
    /// (`http://elsewhere.test`) instead of the stand-in: what a client must not follow.
    /// `None` points them home again.
    pub fn set_link_origin(&self, origin: Option<&str>) {
        *self
            .link_origin
            .write()
            .unwrap_or_else(PoisonError::into_inner) = origin.map(str::to_owned);
    }

    fn grant(&self, token: &str) -> Option<Grant> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(token)
            .filter(|grant| grant.issued.elapsed() < TOKEN_LIFETIME)
            .cloned()
    }

    fn record_call(&self, uri: &axum::http::Uri) {
        let call = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string);
        self.api_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

#[derive(Deserialize)]
struct AuthorizeParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    state: Option<String>,
    /// Space-separated (GitHub also accepts commas).
    #[serde(default)]
    scope: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `GET /login/oauth/authorize`: approves at once (or refuses) and sends the browser back.
async fn authorize(State(gh): State<Arc<GitHubStandIn>>, RawQuery(query): RawQuery) -> Response {
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(&query.unwrap_or_default())
    else {
        return (StatusCode::BAD_REQUEST, "malformed parameters").into_response();
    };
    // A bad client or redirect URI gets a page here: nothing is sent to an unknown address.
    if params.client_id != gh.settings.client_id {
        return (StatusCode::NOT_FOUND, "unknown client_id").into_response();
    }
    if params.redirect_uri != gh.settings.redirect_uri {
        return (StatusCode::BAD_REQUEST, "redirect_uri_mismatch").into_response();
    }
    let challenge = match (
        params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (None, None) => None,
        (Some(challenge), Some("S256")) if challenge.len() == 43 => Some(challenge),
        _ => return (StatusCode::BAD_REQUEST, "bad code_challenge").into_response(),
    };
    let Ok(mut target) = Url::parse(&params.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let approver = gh
        .user
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    {
        let mut query = target.query_pairs_mut();
        match approver {
            Some(user) => {
                let code = random_token();
                let mut codes = gh.codes.lock().unwrap_or_else(PoisonError::into_inner);
                codes.retain(|_, c| c.issued.elapsed() < CODE_LIFETIME);
                codes.insert(
                    code.clone(),
                    IssuedCode {
                        redirect_uri: params.redirect_uri.clone(),
                        challenge,
                        scopes: params
                            .scope
                            .split([' ', ','])
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        user,
                        issued: Instant::now(),
                        used: false,
                    },
                );
                query.append_pair("code", &code);
            }
            None => {
                query.append_pair("error", "access_denied").append_pair(
                    "error_description",
                    "The user has denied your application access.",
                );
            }
        }
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

/// `POST /login/oauth/access_token`: GitHub's checks; every refusal is an HTTP 200.
async fn access_token(
    State(gh): State<Arc<GitHubStandIn>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    gh.faults.delay(true).await;
    let fault = gh.faults.get().fault;
    if let Some(answer) = token_fault(fault) {
        return answer;
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return token_error(wants_json, "bad_verification_code", "Malformed request.");
    };
    match check(&gh, &request) {
        Ok((token, scopes)) => {
            // GitHub lists the granted scopes with commas.
            let scope = scopes.join(",");
            let answer = [
                ("access_token", token.as_str()),
                ("token_type", "bearer"),
                ("scope", scope.as_str()),
            ];
            if wants_json {
                Json(json!({
                    "access_token": token,
                    "token_type": "bearer",
                    "scope": scope,
                }))
                .into_response()
            } else {
                form(&answer)
            }
        }
        Err((error, description)) => token_error(wants_json, error, description),
    }
}

/// What the token endpoint answers instead of looking at the code, under a fault.
fn token_fault(fault: Fault) -> Option<Response> {
    let response = match fault {
        Fault::TokenError | Fault::TokenInvalidGrant => token_error(
            true,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        ),
        Fault::TokenServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<!DOCTYPE html><html><body><h1>500</h1><p>Unicorn!</p></body></html>"),
        )
            .into_response(),
        Fault::TokenRateLimited => api_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        Fault::TokenEmptyBody => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "",
        )
            .into_response(),
        // Form-encoded but labelled JSON, so the client gets as far as parsing it.
        Fault::TokenNotJson => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "access_token=gho_x&token_type=bearer",
        )
            .into_response(),
        _ => return None,
    };
    Some(response)
}

/// A token refusal as GitHub sends it: HTTP 200, in the format the client asked for.
fn token_error(wants_json: bool, error: &str, description: &str) -> Response {
    let uri = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
    if wants_json {
        Json(json!({
            "error": error,
            "error_description": description,
            "error_uri": uri,
        }))
        .into_response()
    } else {
        form(&[
            ("error", error),
            ("error_description", description),
            ("error_uri", uri),
        ])
    }
}

fn form(pairs: &[(&str, &str)]) -> Response {
    let body = serde_urlencoded::to_string(pairs).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

/// The code's checks, in GitHub's words; a fresh token for its user, and its scopes, when
/// they pass.
fn check(
    gh: &GitHubStandIn,
    request: &TokenRequest,
) -> Result<(String, Vec<String>), (&'static str, &'static str)> {
    if request.client_id != gh.settings.client_id
        || !secret_matches(&request.client_secret, &gh.settings.client_secret)
    {
        return Err((
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ));
    }
    let bad_code = (
        "bad_verification_code",
        "The code passed is incorrect or expired.",
    );
    let mut codes = gh.codes.lock().unwrap_or_else(PoisonError::into_inner);
    let issued = codes.get_mut(&request.code).ok_or(bad_code)?;
    if issued.used || issued.issued.elapsed() >= CODE_LIFETIME {
        return Err(bad_code);
    }
    // Spent on first presentation, right or wrong.
    issued.used = true;
    if issued.redirect_uri != request.redirect_uri {
        return Err((
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        ));
    }
    if let Some(challenge) = &issued.challenge {
        let verifier = request.code_verifier.as_deref().unwrap_or_default();
        if !pkce_matches(challenge, verifier) {
            return Err(bad_code);
        }
    }
    let grant = Grant {
        user: issued.user.clone(),
        scopes: issued.scopes.clone(),
        issued: Instant::now(),
    };
    drop(codes);
    let token = format!("gho_{}", random_token());
    let scopes = grant.scopes.clone();
    let mut tokens = gh.tokens.lock().unwrap_or_else(PoisonError::into_inner);
    tokens.retain(|_, grant| grant.issued.elapsed() < TOKEN_LIFETIME);
    tokens.insert(token.clone(), grant);
    Ok((token, scopes))
}

/// GitHub's REST error body.
fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": DOCS,
            "status": status.as_str(),
        })),
    )
        .into_response()
}

/// The REST API's checks: the headers, then the token. The `User-Agent` is GitHub's own
/// rule; `Accept` and the version are this stand-in's, so that the client is seen to send
/// them.
/// A refusal is its status and message.
fn api_caller(
    gh: &GitHubStandIn,
    headers: &HeaderMap,
) -> Result<Grant, (StatusCode, &'static str)> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("user-agent").is_none_or(str::is_empty) {
        return Err((
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        ));
    }
    if text("accept") != Some(API_MEDIA_TYPE) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported 'Accept' header: expected application/vnd.github+json",
        ));
    }
    if text("x-github-api-version") != Some(API_VERSION) {
        return Err((
            StatusCode::BAD_REQUEST,
            "X-GitHub-Api-Version header is missing or not supported",
        ));
    }
    text("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .and_then(|token| gh.grant(token))
        .ok_or((StatusCode::UNAUTHORIZED, "Bad credentials"))
}

/// What every API call does first: it is recorded, waits the configured latency, and must
/// carry GitHub's headers and a token the stand-in issued (the grant), else GitHub's error.
async fn api_call(
    gh: &GitHubStandIn,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Grant, Response> {
    gh.record_call(uri);
    gh.faults.delay(false).await;
    api_caller(gh, headers).map_err(|(status, message)| api_error(status, message))
}

/// `GET /user`.
async fn user(
    State(gh): State<Arc<GitHubStandIn>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let user = match api_call(&gh, &uri, &headers).await {
        Ok(grant) => grant.user,
        Err(refused) => return refused,
    };
    match gh.faults.get().fault {
        Fault::MeServerError => api_error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
        Fault::MeHugeHtmlError => {
            (StatusCode::INTERNAL_SERVER_ERROR, Html(huge_error_page())).into_response()
        }
        Fault::MeRateLimited => api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded a secondary rate limit.",
        ),
        Fault::MeExpiredToken => api_error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        Fault::MalformedJson => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            format!("{{\"login\":\"{}\",\"id\":", user.login),
        )
            .into_response(),
        Fault::MeHtmlContentType => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            user_json(&user).to_string(),
        )
            .into_response(),
        Fault::OversizedResponse => {
            let mut body = user_json(&user);
            body["bio"] = json!("x".repeat(1024 * 1024));
            Json(body).into_response()
        }
        _ => Json(user_json(&user)).into_response(),
    }
}

/// `/user`'s shape, trimmed to what matters here; `email` is only the public address.
fn user_json(user: &GitHubUser) -> Value {
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": format!("MDQ6VXNlcj{}", user.id),
        "type": "User",
        "name": user.name,
        "email": Value::Null,
    })
}

/// `GET /user/emails`; under `MissingEmail`, none of them is verified.
async fn emails(
    State(gh): State<Arc<GitHubStandIn>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let user = match api_call(&gh, &uri, &headers).await {
        Ok(grant) => grant.user,
        Err(refused) => return refused,
    };
    let unverified = gh.faults.get().fault == Fault::MissingEmail;
    let list: Vec<Value> = user
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "primary": e.primary,
                "verified": e.verified && !unverified,
                "visibility": if e.primary { Value::from("private") } else { Value::Null },
            })
        })
        .collect();
    Json(list).into_response()
}

/// `GET /user/orgs`: one page of the organisations.
async fn orgs(
    State(gh): State<Arc<GitHubStandIn>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let user = match api_call(&gh, &uri, &headers).await {
        Ok(grant) => grant.user,
        Err(refused) => return refused,
    };
    let list: Vec<Value> = user.orgs.iter().map(|login| org_json(login)).collect();
    page(&gh, &uri, &headers, list)
}

/// `GET /user/teams`: one page of the teams, and a 403 without `read:org`.
async fn teams(
    State(gh): State<Arc<GitHubStandIn>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let grant = match api_call(&gh, &uri, &headers).await {
        Ok(grant) => grant,
        Err(refused) => return refused,
    };
    if !grant
        .scopes
        .iter()
        .any(|scope| ORG_SCOPES.contains(&scope.as_str()))
    {
        let mut answer = api_error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
        let granted = grant.scopes.join(", ");
        for (name, value) in [
            ("x-oauth-scopes", granted.as_str()),
            ("x-accepted-oauth-scopes", "read:org, admin:org, write:org"),
        ] {
            if let Ok(value) = header::HeaderValue::from_str(value) {
                answer.headers_mut().insert(name, value);
            }
        }
        return answer;
    }
    let list: Vec<Value> = grant
        .user
        .teams
        .iter()
        .map(|(org, slug)| team_json(org, slug))
        .collect();
    page(&gh, &uri, &headers, list)
}

/// An organisation as `/user/orgs` lists it (GitHub's "organization-simple").
fn org_json(login: &str) -> Value {
    let api = format!("https://api.github.com/orgs/{login}");
    json!({
        "login": login,
        "id": 1000,
        "node_id": "MDEyOk9yZ2FuaXphdGlvbjEwMDA=",
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": "https://avatars.githubusercontent.com/u/1000?v=4",
        "description": "A great organisation",
    })
}

/// A team as `/user/teams` lists it: GitHub's "team-full", whose `organization` is the whole
/// organisation, some 2 KB a team (so that a page of 100 is as large as GitHub's).
fn team_json(org: &str, slug: &str) -> Value {
    let mut organisation = org_json(org);
    if let Value::Object(fields) = &mut organisation {
        for (name, value) in [
            ("name", json!(org)),
            ("company", json!("GitHub")),
            ("blog", json!("https://github.com/blog")),
            ("location", json!("San Francisco")),
            ("email", json!("octocat@github.com")),
            ("twitter_username", json!("github")),
            ("is_verified", json!(true)),
            ("has_organization_projects", json!(true)),
            ("has_repository_projects", json!(true)),
            ("public_repos", json!(2)),
            ("public_gists", json!(1)),
            ("followers", json!(20)),
            ("following", json!(0)),
            ("html_url", json!(format!("https://github.com/{org}"))),
            ("created_at", json!("2008-01-14T04:33:35Z")),
            ("updated_at", json!("2017-08-17T12:37:15Z")),
            ("type", json!("Organization")),
        ] {
            fields.insert(name.to_owned(), value);
        }
    }
    let api = "https://api.github.com/teams/2000";
    json!({
        "id": 2000,
        "node_id": "MDQ6VGVhbTIwMDA=",
        "url": api,
        "html_url": format!("https://github.com/orgs/{org}/teams/{slug}"),
        "name": slug,
        "slug": slug,
        "description": "A great team.",
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "admin",
        "members_url": format!("{api}/members{{/member}}"),
        "repositories_url": format!("{api}/repos"),
        "parent": Value::Null,
        "members_count": 3,
        "repos_count": 10,
        "created_at": "2017-07-14T16:53:42Z",
        "updated_at": "2017-08-17T12:37:15Z",
        "organization": organisation,
    })
}

/// The `per_page` and `page` of a list request, as GitHub reads them: 30 and 1 unless given,
/// at most 100 a page.
#[derive(Deserialize)]
struct PageParams {
    per_page: Option<String>,
    page: Option<String>,
}

/// One page of `items` as the query asks, with GitHub's `Link` header (`prev`, `next`,
/// `last`, `first`, each where it applies) pointing at the stand-in's own address (or
/// where [`GitHubStandIn::set_link_origin`] said), under the faults that apply to a list.
fn page(
    gh: &GitHubStandIn,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    items: Vec<Value>,
) -> Response {
    let params = serde_urlencoded::from_str::<PageParams>(uri.query().unwrap_or_default()).ok();
    let number = |value: Option<&String>, default: usize| {
        value
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let per_page = number(
        params.as_ref().and_then(|p| p.per_page.as_ref()),
        DEFAULT_PER_PAGE,
    )
    .min(MAX_PER_PAGE);
    let current = number(params.as_ref().and_then(|p| p.page.as_ref()), 1);
    let last = items.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = items
        .into_iter()
        .skip((current - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let origin = gh
        .link_origin
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        });
    let link_to = |n: usize, rel: &str| {
        format!(
            "<{origin}{}?per_page={per_page}&page={n}>; rel=\"{rel}\"",
            uri.path()
        )
    };
    let mut links = Vec::new();
    if current > 1 {
        links.push(link_to((current - 1).min(last), "prev"));
    }
    if current < last {
        links.push(link_to(current + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if current > 1 {
        links.push(link_to(1, "first"));
    }
    let mut answer = match gh.faults.get().fault {
        Fault::MeServerError => {
            return api_error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
        }
        Fault::MeRateLimited => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit.",
            );
        }
        Fault::MeExpiredToken => return api_error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        Fault::MalformedJson => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "[{\"login\":",
        )
            .into_response(),
        _ => Json(body).into_response(),
    };
    if !links.is_empty()
        && let Ok(value) = header::HeaderValue::from_str(&links.join(", "))
    {
        answer.headers_mut().insert(header::LINK, value);
    }
    answer
}
