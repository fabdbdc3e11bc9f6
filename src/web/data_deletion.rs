//! Facebook's Data Deletion and Deauthorize callbacks, and the deletion status page.
//!
//! Both callbacks are form POSTs from Facebook's servers, authenticated by the
//! `signed_request` signature (not by a session or a CSRF token).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::{
    AppError, AppState,
    pages::{DeletionPage, Page},
    params::{self, FormBody, PathParam},
};
use crate::{
    auth::signed_request::{self, SignedRequest},
    store::Deletion,
};

const FACEBOOK: &str = "facebook";

#[derive(Deserialize)]
struct SignedForm {
    signed_request: Option<String>,
}

/// `POST /facebook/data-deletion`: deletes the person's identity (and their profile when it
/// was their last), answers `{"url", "confirmation_code"}` as Facebook requires.
pub async fn data_deletion(
    State(app): State<AppState>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let deletion = match delete_signed_identity(&app, &body, "data deletion request").await? {
        Ok(deletion) => deletion,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let code = confirmation_code();
    app.store.record_deletion(&code, FACEBOOK, deletion).await?;
    Ok(Json(json!({
        "url": format!("{}/deletion/{code}", app.settings.public_url),
        "confirmation_code": code,
    }))
    .into_response())
}

/// `POST /facebook/deauthorize`: the person removed the app at Facebook; unlink them.
pub async fn deauthorize(
    State(app): State<AppState>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    Ok(
        match delete_signed_identity(&app, &body, "deauthorization").await? {
            Ok(_) => StatusCode::OK.into_response(),
            Err(refusal) => refusal.into_response(),
        },
    )
}

/// Verifies the callback's signed request and deletes the identity it names (with the
/// profile when it was the last one). The inner `Err` is the answer for a refused request.
async fn delete_signed_identity(
    app: &AppState,
    body: &[u8],
    what: &str,
) -> Result<Result<Deletion, Refusal>, AppError> {
    let request = match verified(app, body) {
        Ok(request) => request,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let deletion = app
        .store
        .delete_identity(FACEBOOK, &request.user_id)
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
fn verified(app: &AppState, body: &[u8]) -> Result<SignedRequest, Refusal> {
    let form: SignedForm =
        params::decode(body).map_err(|_| Refusal("malformed form".to_owned()))?;
    let raw = form
        .signed_request
        .ok_or_else(|| Refusal("signed_request is missing".to_owned()))?;
    signed_request::verify(&raw, app.facebook_app_secret.secret()).map_err(|e| {
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
