//! `POST /backchannel-logout/{provider}`: an OpenID Connect issuer ends sign-ins it started
//! (Back-Channel Logout 1.0). Server to server: no session, no CSRF token, no cookie; the
//! logout token's signature is the authentication. Answered on any host, limited per address
//! like Facebook's callbacks, and in JSON as the specification asks: 200 when done (ending
//! nothing is done: the person may have signed out already), 400 `invalid_request` with a
//! description otherwise, and nothing ended then; 503 while the issuer's keys cannot be had
//! (the issuer may send it again).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::{
    AppError, AppState, RateLimiter,
    params::{self, FormBody, PathParam},
};
use crate::{
    auth::oidc::LogoutTokenError,
    store::{IssuerLogout, LogoutRefused},
};

/// The route, limited per address by `limiter` (every token costs a signature check).
pub fn router(state: AppState, limiter: Arc<RateLimiter>) -> Router {
    Router::new()
        .route("/backchannel-logout/{provider}", post(backchannel_logout))
        .route_layer(middleware::from_fn_with_state(
            limiter,
            super::rate_limit::limit,
        ))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state)
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: Option<String>,
}

async fn backchannel_logout(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let Some(provider) = app.providers.get(&provider) else {
        return Ok(refused(StatusCode::NOT_FOUND, "no such provider"));
    };
    // A form that does not decode (a repeated parameter among them) is refused like a
    // missing token.
    let token = params::decode::<LogoutForm>(&body)
        .ok()
        .and_then(|form| form.logout_token)
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Ok(refused(StatusCode::BAD_REQUEST, "logout_token is missing"));
    };
    let Some(verifying) = provider.verify_logout_token(&token) else {
        return Ok(refused(
            StatusCode::NOT_FOUND,
            "this provider sends no logout tokens",
        ));
    };
    let verified = match verifying.await {
        Ok(verified) => verified,
        Err(LogoutTokenError::Invalid(why)) => {
            info!(provider = provider.id(), %why, "back-channel logout refused");
            return Ok(refused(StatusCode::BAD_REQUEST, &why));
        }
        // The issuer's keys cannot be had now: ours to fix, its to send again.
        Err(LogoutTokenError::Unavailable(why)) => {
            warn!(provider = provider.id(), %why, "back-channel logout not checked: the issuer's keys are unavailable");
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "60")],
                Json(json!({
                    "error": "temporarily_unavailable",
                    "error_description": "the issuer's keys cannot be fetched right now",
                })),
            )
                .into_response());
        }
    };
    let logout = IssuerLogout {
        provider: provider.id(),
        issuer: &verified.issuer,
        jti: &verified.jti,
        remember_until_ms: verified.remember_until_ms,
        sid: verified.sid.as_deref(),
        sub: verified.sub.as_deref(),
    };
    match app.store.issuer_logout(&logout).await? {
        Ok(ended) => {
            info!(
                provider = provider.id(),
                by = if logout.sid.is_some() { "sid" } else { "sub" },
                ended,
                "back-channel logout: sign-ins ended"
            );
            Ok(StatusCode::OK.into_response())
        }
        Err(LogoutRefused::Replayed) => {
            info!(provider = provider.id(), "back-channel logout refused: jti seen before");
            Ok(refused(
                StatusCode::BAD_REQUEST,
                "logout_token: this jti was used before",
            ))
        }
    }
}

/// The specification's error answer: `{"error": "invalid_request", "error_description"}`.
fn refused(status: StatusCode, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": "invalid_request", "error_description": description })),
    )
        .into_response()
}
