use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::pages::{Chrome, Page, ProblemPage};
use crate::store::StoreError;

/// Everything a handler can fail with. Each variant becomes a page with a proper status
/// in one place ([`IntoResponse`] below); internals only ever reach the log.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("request head too large")]
    HeadersTooLarge,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many sign-ins in progress")]
    Busy,
    /// The provider cannot take sign-ins now (an issuer whose discovery has not succeeded).
    #[error("{0} cannot be reached")]
    ProviderUnavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::Internal(format!("session: {error}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address.",
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "This address does not take that kind of request.",
            ),
            Self::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "This link did not work", *message)
            }
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", *message),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many requests came from your network. Please wait a minute and try again.",
            ),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request too large",
                "Your browser sent more than this site accepts. Clearing this site's cookies usually helps.",
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                "Your browser sent a larger form than this site accepts. Please go back and try again.",
            ),
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "A great many people are signing in at this moment. Please try again in a minute.",
            ),
            Self::ProviderUnavailable(name) => return unavailable(name),
            Self::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Please try again in a moment.",
                )
            }
        };
        let mut response = problem_response(status, title.to_owned(), message.to_owned());
        if let Self::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// "Cannot reach Acme SSO right now": 503 with a retry hint; nothing was written.
fn unavailable(display_name: &str) -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let title = format!("Cannot reach {display_name} right now");
    let message = format!(
        "We cannot reach {display_name} at the moment, so signing in with it is not possible right now. Please try again in a few minutes, or choose another way to sign in."
    );
    let mut response = problem_response(status, title, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

/// A problem page waiting for the page chrome: the status and headers are final, the words
/// ride in an extension, and [`render_problems`] draws the page. An error can arise where no
/// state is at hand (an extractor, a fallback, a layer), so it is drawn in one place that
/// holds the chrome.
#[derive(Clone)]
struct UnrenderedProblem {
    title: String,
    message: String,
}

fn problem_response(status: StatusCode, title: String, message: String) -> Response {
    let mut response = status.into_response();
    response
        .extensions_mut()
        .insert(UnrenderedProblem { title, message });
    response
}

/// Draws every problem page with the site's chrome (see [`problem_response`]). Laid outside
/// the size limits, so that their 413 and 431 answers are drawn too.
pub async fn render_problems(
    State(chrome): State<Arc<Chrome>>,
    mut response: Response,
) -> Response {
    let Some(problem) = response.extensions_mut().remove::<UnrenderedProblem>() else {
        return response;
    };
    let status = response.status();
    let page = ProblemPage {
        chrome,
        status: status.as_u16(),
        title: &problem.title,
        message: &problem.message,
    }
    .into_page(status);
    let (mut parts, _) = response.into_parts();
    let (page_parts, body) = page.into_parts();
    // The page's own status (a template that failed to render is a 500) and content type;
    // every other header (Allow, Retry-After) stays.
    parts.status = page_parts.status;
    for (name, value) in &page_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}
