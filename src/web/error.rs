use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::pages::{Chrome, Page, ProblemPage};
use crate::store::{StoreError, UNAVAILABLE};

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
    /// The database failed; the cause is kept for the log line.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// The session could not be read or written.
    #[error("the session failed")]
    Session(#[from] tower_sessions::session::Error),
    /// The session table could not be read outside the session layer.
    #[error("the session store failed")]
    SessionStore(#[from] tower_sessions::session_store::Error),
    /// Our own mistake that no other variant names (described for the log).
    #[error("internal: {0}")]
    Internal(String),
}

/// The error and each of its sources, once: `a: b: c`. A source whose text the previous one
/// already holds (thiserror's `"database: {0}"`) is not repeated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// A short code for one failure, shown on its page and written in its log line, so that
/// support finds the line from what the person quotes: 8 characters from an alphabet without
/// look-alikes (no 0/O, 1/I/L), in two groups.
fn reference() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    code
}

impl AppError {
    /// Whether the database could not answer at the moment (see
    /// [`StoreError::is_unavailable`]), whichever way the failure came.
    pub(super) fn is_store_unavailable(&self) -> bool {
        let session_store = |error: &tower_sessions::session_store::Error| {
            matches!(error, tower_sessions::session_store::Error::Backend(text) if text.starts_with(UNAVAILABLE))
        };
        match self {
            Self::Store(error) => error.is_unavailable(),
            Self::Session(tower_sessions::session::Error::Store(error)) | Self::SessionStore(error) => {
                session_store(error)
            }
            _ => false,
        }
    }
}

impl AppError {
    /// [`AppError::is_store_unavailable`] for a client that reads text (`/get-status`): 503,
    /// `Retry-After`, the body `error`; logged and counted like the page.
    pub(super) fn unavailable_text(&self) -> Response {
        crate::telemetry::store_unavailable(&chain(self));
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
                (header::RETRY_AFTER, HeaderValue::from_static("5")),
            ],
            "error",
        )
            .into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.is_store_unavailable() {
            return store_unavailable(&self);
        }
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
            Self::Store(_) | Self::Session(_) | Self::SessionStore(_) | Self::Internal(_) => {
                return internal(&self);
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

/// The 500 page with a reference, and the one log line with the same reference and the
/// whole cause (the request log's line for the answer is INFO, not a second error).
fn internal(error: &AppError) -> Response {
    let reference = reference();
    tracing::error!(reference = %reference, error = %chain(error), "request failed");
    problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong".to_owned(),
        format!(
            "Something went wrong on our side. Please try again in a moment. If it keeps happening, tell us reference {reference}."
        ),
    )
}

/// The database cannot answer at the moment: 503 with a retry hint and a page saying so, no
/// error reference (there is nothing for support to look up: it passes by itself). Logged
/// once per outage, not once per request ([`telemetry::store_unavailable`]).
fn store_unavailable(error: &AppError) -> Response {
    crate::telemetry::store_unavailable(&chain(error));
    let mut response = problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment".to_owned(),
        "We can't sign you in right now: our database is not answering. Nothing is lost. Please try again in a moment.".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Laid just outside the session layer: a request whose session could not be saved because
/// the database was unavailable gets the 503 page, not tower-sessions' bare 500.
pub async fn unavailable_on_failed_save(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use crate::store::UNAVAILABLE_SEEN;
    UNAVAILABLE_SEEN
        .scope(std::cell::Cell::new(false), async move {
            let response = next.run(request).await;
            let seen = UNAVAILABLE_SEEN.with(std::cell::Cell::get);
            let bare = response.extensions().get::<UnrenderedProblem>().is_none();
            if seen && bare && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                store_unavailable(&AppError::Internal(
                    "the session could not be saved: the database is unavailable".to_owned(),
                ))
            } else {
                response
            }
        })
        .await
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
