//! `GET /healthz` and `GET /readyz`, for whatever runs and routes to the process: plain text,
//! outside the session layer (no session is read or written, no cookie set), not
//! rate-limited, and logged at DEBUG whatever they answer (`request_log`), so that a probe
//! every few seconds does not fill the log.
//!
//! `/healthz` (liveness) answers `ok` as long as the process serves. `/readyz` (readiness,
//! for the load balancer) answers `ok` when the database answers and every migration this
//! build knows is applied, and 503 otherwise, and from the moment shutdown begins. While an
//! outage is open (a request met the database unavailable, `store::outage`), it also asks
//! for a write, since a full or read-only disk still serves reads: 503 until a write
//! succeeds, and 200 from that moment.

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::AppError;
use crate::{
    shutdown::Shutdown,
    store::{Store, outage},
};

/// A database that has not answered `/readyz`'s question by then counts as down.
const READY_CHECK_LIMIT: Duration = Duration::from_secs(2);

/// The routes whose answers are never logged above DEBUG.
pub const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Health {
    pub store: Store,
    pub shutdown: Shutdown,
}

/// The two probes, with the 405 page for other methods (HEAD is GET without a body).
pub fn router(health: Health) -> Router {
    Router::new()
        .route(PROBES[0], get(healthz))
        .route(PROBES[1], get(readyz))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(health)
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

async fn readyz(State(health): State<Health>) -> Response {
    if health.shutdown.is_draining() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    match tokio::time::timeout(READY_CHECK_LIMIT, health.store.migrations_applied()).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return text(unavailable, "database migrations not applied"),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "readiness: the database did not answer");
            return text(unavailable, "database unavailable");
        }
        Err(_) => return text(unavailable, "database unavailable"),
    }
    if outage::is_open() {
        match tokio::time::timeout(READY_CHECK_LIMIT, health.store.write_probe()).await {
            Ok(Ok(())) => outage::recovered(),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "readiness: the database takes no write");
                return text(unavailable, "database takes no writes");
            }
            Err(_) => return text(unavailable, "database takes no writes"),
        }
    }
    text(StatusCode::OK, "ok")
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
