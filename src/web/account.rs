//! Self-service account deletion: a confirmation page and a CSRF-protected POST.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tracing::info;

use super::{
    AppError, AppState, WebSession,
    pages::{DeleteAccountPage, Page},
    params::{self, FormBody},
    session::tokens_match,
};

/// `GET /account/delete`: asks before deleting. Anonymous visitors go home.
pub async fn confirm(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    if session.user(&app.settings).await?.is_none() {
        return Ok(Redirect::to("/").into_response());
    }
    let csrf_token = session.csrf_token().await?.unwrap_or_default();
    Ok(DeleteAccountPage { csrf_token }.into_page(StatusCode::OK))
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf_token: Option<String>,
}

/// `POST /account/delete`: deletes the signed-in person's profile, identities and
/// operations, then signs out.
pub async fn delete(
    State(app): State<AppState>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let form: DeleteForm = params::decode(&body)?;
    let (Some(user), Some(expected)) = (
        session.user(&app.settings).await?,
        session.csrf_token().await?,
    ) else {
        return Ok(Redirect::to("/").into_response());
    };
    if !tokens_match(&form.csrf_token.unwrap_or_default(), &expected) {
        return Err(AppError::Forbidden(
            "This form has expired. Go back to the home page and try again from there.",
        ));
    }
    let deletion = app.store.delete_user(user).await?;
    info!(
        profile_deleted = deletion.profile_deleted,
        "account deleted by its owner"
    );
    session.sign_out().await?;
    session
        .add_notice(
            "Your account and everything we kept about you were deleted.".to_owned(),
            None,
        )
        .await?;
    Ok(Redirect::to("/").into_response())
}
