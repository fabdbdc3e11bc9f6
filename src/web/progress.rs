//! The wait after the callback: the preloader, its status endpoint, and the two ways out.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{
    AppError, AppState, WebSession,
    pages::{ErrorPage, Page, PreloaderPage},
};
use crate::store::{Operation, OperationStatus};

impl AppState {
    /// The operation this browser waits for, read with the orphan check.
    async fn session_operation(&self, session: &WebSession) -> Result<Option<Operation>, AppError> {
        let Some(id) = session.operation().await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .operation(id, self.settings.exchange_timeout)
            .await?)
    }
}

/// `GET /preloader`: the spinner while pending. Once the operation is finished it sends the
/// browser on directly, which is also what the `<noscript>` refresh relies on.
pub async fn preloader(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    let Some(operation) = app.session_operation(&session).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    Ok(match operation.status {
        OperationStatus::Ok => Redirect::to("/success").into_response(),
        OperationStatus::Error => Redirect::to("/error").into_response(),
        OperationStatus::Pending => PreloaderPage {
            provider_name: app.provider_name(&operation.provider),
            poll_interval_ms: app.settings.poll_interval_ms,
            poll_limit_secs: app.settings.poll_limit_secs,
            refresh_secs: app.settings.poll_interval_ms.div_ceil(1000).max(1),
        }
        .into_page(StatusCode::OK),
    })
}

/// `GET /get-status`: `pending`, `ok` or `error` for this session's operation. Reads only:
/// a late poll must never write the session over a newer one.
pub async fn get_status(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    let (status, body) = match app.session_operation(&session).await? {
        Some(operation) => (StatusCode::OK, operation.status.code()),
        None => (StatusCode::NOT_FOUND, OperationStatus::Error.code()),
    };
    Ok((
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// `GET /success`: signs the person in when their operation is `ok`.
pub async fn success(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    match app.session_operation(&session).await? {
        Some(Operation {
            status: OperationStatus::Ok,
            user: Some(user),
            ..
        }) => {
            session.sign_in(user).await?;
            Ok(Redirect::to("/").into_response())
        }
        // Not finished yet (someone came here early): keep waiting rather than fail a
        // sign-in that is about to succeed.
        Some(Operation {
            status: OperationStatus::Pending,
            ..
        }) => Ok(Redirect::to("/preloader").into_response()),
        // Failed: the error page reads the reason from the operation.
        Some(_) => Ok(Redirect::to("/error").into_response()),
        None => {
            session
                .add_notice(
                    "There is no sign-in to finish. Please start again.".to_owned(),
                    None,
                )
                .await?;
            Ok(Redirect::to("/error").into_response())
        }
    }
}

/// `GET /error`: why the sign-in did not work, in the person's words, and a way back in.
pub async fn error_page(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    let notices = session.take_notices().await?;
    let mut retry_provider = notices.iter().find_map(|n| n.provider.clone());
    let mut messages: Vec<String> = notices.into_iter().map(|n| n.text).collect();
    if let Some(operation) = app.session_operation(&session).await? {
        let name = app.provider_name(&operation.provider);
        match operation.status {
            OperationStatus::Ok => return Ok(Redirect::to("/success").into_response()),
            OperationStatus::Error => messages.push(
                operation
                    .error
                    .unwrap_or(crate::auth::FailureReason::Internal)
                    .message(&name),
            ),
            OperationStatus::Pending => messages.push(format!(
                "{name} is taking longer than usual to answer. Please try again in a moment."
            )),
        }
        retry_provider.get_or_insert(operation.provider);
        session.clear_operation().await?;
    }
    if messages.is_empty() {
        messages.push("The sign-in did not complete. Please try again.".to_owned());
    }
    let retry_href = retry_provider
        .filter(|p| app.providers.get(p).is_some())
        .map_or_else(|| "/".to_owned(), |p| format!("/authorize/{p}"));
    Ok(ErrorPage {
        messages,
        retry_href,
    }
    .into_page(StatusCode::OK))
}
