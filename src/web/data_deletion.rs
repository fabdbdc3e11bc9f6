//! Facebook's Data Deletion and Deauthorize callbacks, and the deletion status page.
//!
//! Both callbacks are form POSTs from Facebook's servers, authenticated by the
//! `signed_request` signature (not by a session or a CSRF token). They exist only when a
//! Facebook app does ([`FacebookApp`]): a site without one answers 404 there. The status page
//! stays, so that a link handed out once keeps working.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::{
    AppError, AppState, RateLimiter,
    pages::{DeletionPage, Page},
    params::{self, FormBody, PathParam},
};
use crate::{
    auth::{FacebookApp, signed_request::SignedRequest},
    store::Deletion,
};

/// What the callbacks need: the app's state and the Facebook app they verify against.
#[derive(Clone)]
struct Callbacks {
    app: AppState,
    facebook: FacebookApp,
}

/// `POST /facebook/data-deletion` and `POST /facebook/deauthorize` for `facebook`. Each
/// verifies an HMAC: limited per address by `limiter`, so nobody can make the server verify
/// signatures without end.
pub fn router(state: AppState, facebook: FacebookApp, limiter: Arc<RateLimiter>) -> Router {
    Router::new()
        .route("/facebook/data-deletion", post(data_deletion))
        .route("/facebook/deauthorize", post(deauthorize))
        .route_layer(middleware::from_fn_with_state(
            limiter,
            super::rate_limit::limit,
        ))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(Callbacks {
            app: state,
            facebook,
        })
}

#[derive(Deserialize)]
struct SignedForm {
    signed_request: Option<String>,
}

/// `POST /facebook/data-deletion`: deletes the person's identity (and their profile when it
/// was their last), answers `{"url", "confirmation_code"}` as Facebook requires.
async fn data_deletion(
    State(callbacks): State<Callbacks>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let deletion =
        match delete_signed_identity(&callbacks, &body, "data deletion request").await? {
            Ok(deletion) => deletion,
            Err(refusal) => return Ok(refusal.into_response()),
        };
    let code = confirmation_code();
    let app = &callbacks.app;
    app.store
        .record_deletion(&code, callbacks.facebook.provider(), deletion)
        .await?;
    Ok(Json(json!({
        "url": app.settings.url(&format!("/deletion/{code}")),
        "confirmation_code": code,
    }))
    .into_response())
}

/// `POST /facebook/deauthorize`: the person removed the app at Facebook; unlink them.
async fn deauthorize(
    State(callbacks): State<Callbacks>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    Ok(
        match delete_signed_identity(&callbacks, &body, "deauthorization").await? {
            Ok(_) => StatusCode::OK.into_response(),
            Err(refusal) => refusal.into_response(),
        },
    )
}

/// Verifies the callback's signed request and deletes the identity it names (with the
/// profile when it was the last one). The inner `Err` is the answer for a refused request.
async fn delete_signed_identity(
    callbacks: &Callbacks,
    body: &[u8],
    what: &str,
) -> Result<Result<Deletion, Refusal>, AppError> {
    let request = match verified(&callbacks.facebook, body) {
        Ok(request) => request,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let deletion = callbacks
        .app
        .store
        .delete_identity(callbacks.facebook.provider(), &request.user_id)
        .await?;
    info!(
        identity_deleted = deletion.identity_deleted,
        profile_deleted = deletion.profile_deleted,
        "Facebook {what} handled"
    );
    Ok(Ok(deletion))
}

/// `GET /deletion/{code}`: what a deletion removed, for the person who asked.
pub async fn status_page(
    State(app): State<AppState>,
    PathParam(code): PathParam<String>,
) -> Result<Response, AppError> {
    if code.len() != 32 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let record = app.store.deletion(&code).await?.ok_or(AppError::NotFound)?;
    let provider_name = app.provider_name(&record.provider);
    Ok(DeletionPage::new(app.chrome(), &record, &provider_name).into_page(StatusCode::OK))
}

/// Why a signed request was refused, answered to Facebook as a JSON 400.
struct Refusal(String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({ "error": self.0 }))).into_response()
    }
}

/// The verified signed request from a callback's form body.
fn verified(facebook: &FacebookApp, body: &[u8]) -> Result<SignedRequest, Refusal> {
    let form: SignedForm =
        params::decode(body).map_err(|_| Refusal("malformed form".to_owned()))?;
    let raw = form
        .signed_request
        .ok_or_else(|| Refusal("signed_request is missing".to_owned()))?;
    facebook.verify(&raw).map_err(|e| {
        warn!(error = %e, "refused a Facebook signed_request");
        Refusal(e.to_string())
    })
}

fn confirmation_code() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
