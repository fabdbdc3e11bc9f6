//! A provider that posts its answer (`response_mode=form_post`: Sign in with Apple) posts it
//! from its own site. The session and pre-sign-in cookies are `SameSite=Lax`, so browsers
//! leave them off that cross-site POST, and the answer cannot be checked against the
//! sign-in that started it there.
//!
//! So `POST /callback/{provider}` trusts nothing and changes nothing: it answers a page whose
//! form posts the same fields to `POST /callback/{provider}/continue` from this site (by
//! script at once, or by a button without JavaScript). That request is same-site, the
//! browser's own cookies come with it, and it is taken like any provider's redirect:
//! `state`, PKCE and the nonce checked as for every provider. A forged cross-site POST gains
//! nothing: the page it yields only repeats it, and the continuation needs the `state` that
//! only the browser that started the sign-in holds.

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header::USER_AGENT},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    AppError, AppState,
    login::take_callback,
    pages::{Chrome, Page},
    params::{self, FormBody, PathParam},
    pre_sign_in::PreSignIn,
    session::WebSession,
};
use crate::model::device;

/// The fields a posted answer may carry, each at most once (a repeated one is a 400).
#[derive(Deserialize)]
struct Posted {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    user: Option<String>,
    iss: Option<String>,
}

/// The relay page: the posted fields again, in a form to this site.
#[derive(Template)]
#[template(path = "form_post.html")]
struct RelayPage {
    chrome: std::sync::Arc<Chrome>,
    provider: String,
    action: String,
    fields: Vec<(&'static str, String)>,
}

/// `POST /callback/{provider}`: the relay page, for a provider that posts its answers; the
/// 405 page for one that does not (its answers are redirects).
pub async fn relay(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let provider = app.providers.get(&provider).ok_or(AppError::NotFound)?;
    if !provider.posts_its_answer() {
        // Its answers are redirects: only GET here, as for a route without POST.
        let mut refused = AppError::MethodNotAllowed.into_response();
        refused.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("GET,HEAD"),
        );
        return Ok(refused);
    }
    let posted: Posted = params::decode(&body)?;
    let fields: Vec<(&'static str, String)> = [
        ("code", posted.code),
        ("state", posted.state),
        ("error", posted.error),
        ("user", posted.user),
        ("iss", posted.iss),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    if fields.is_empty() {
        return Err(AppError::BadRequest(
            "This is where a sign-in's answer arrives, and this one carried none. Please start the sign-in again.",
        ));
    }
    let mut page = RelayPage {
        chrome: app.chrome(),
        provider: provider.display_name().to_owned(),
        action: app
            .chrome()
            .href(&format!("/callback/{}/continue", provider.id())),
        fields,
    }
    .into_page(StatusCode::OK);
    // The code is in the page: never stored (every response also carries
    // `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` with the
    // continuation: nothing here relies on `Origin`, the `state` is the defence).
    page.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(page)
}

/// `POST /callback/{provider}/continue`: the relayed answer, from this site, with the
/// browser's cookies: taken as `GET /callback/{provider}` takes a redirect's query.
pub async fn continue_sign_in(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    session: WebSession,
    mut pre: PreSignIn,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let posts = app
        .providers
        .get(&provider)
        .is_some_and(|p| p.posts_its_answer());
    if !posts {
        return AppError::NotFound.into_response();
    }
    let user_agent = device::user_agent(headers.get(USER_AGENT).map(|v| v.as_bytes()));
    let body = String::from_utf8_lossy(&body).into_owned();
    let answer = take_callback(&app, &provider, Some(body), &session, &mut pre, user_agent)
        .await
        .into_response();
    if answer.status().is_server_error() {
        return answer;
    }
    pre.attach(answer)
}
