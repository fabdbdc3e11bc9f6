//! One log line per answer: INFO for refusals and failures (4xx, 5xx), which someone running
//! the site wants to see, DEBUG for the rest, which would drown them. The health probes
//! (`/healthz`, `/readyz`) are DEBUG whatever they answer: a load balancer asks every few
//! seconds, and a 503 while shutting down is expected.
//!
//! Requests are named by their route (`/callback/{provider}`), never by their URL: query
//! strings carry codes and states, and some paths carry confirmation codes. A 5xx is logged
//! here at INFO like any other refusal; its cause is logged at ERROR where it happens
//! (`AppError::Internal`), so it is not reported twice as an error.
//!
//! The same route and status class count the request in the metrics (see
//! [`crate::telemetry`]).

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request},
    http::{Method, StatusCode},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use super::{client_addr::ClientAddr, health::PROBES};

/// The route of a request that matched none (the 404 page).
const UNMATCHED: &str = "unmatched";

/// Runs the request inside a `request` span (method, route and the client's address, which
/// `client_addr::resolve` put there before: what the handler logs is
/// placed by it), then logs its answer. Needs to be added with `Router::layer`, which is
/// where the matched route is known.
pub async fn log_requests(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let client = ClientAddr::of(request.extensions());
    let span = tracing::info_span!("request", %method, %route, %client);
    let started = Instant::now();
    let response = next.run(request).instrument(span).await;
    let elapsed = started.elapsed();
    log_answer(&method, route, response.status(), elapsed);
    crate::telemetry::http_request(route, response.status().as_u16(), elapsed);
    response
}

/// Outside the request's span, so that the line says method and route once.
fn log_answer(method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
    let status = status.as_u16();
    let duration_ms = format_args!("{:.1}", elapsed.as_secs_f64() * 1000.0);
    // The forward-authentication check answers 401 for every anonymous visitor of the
    // protected site: expected, and as frequent as a probe.
    let quiet = PROBES.contains(&route) || route.ends_with(super::CHECK_PATH);
    if status >= 400 && !quiet {
        tracing::info!(%method, %route, status, duration_ms, "answered");
    } else {
        tracing::debug!(%method, %route, status, duration_ms, "answered");
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `log_answer` writes for `status` with everything enabled, for this thread only.
    fn logged(status: StatusCode) -> String {
        logged_on("/x/{id}", status)
    }

    fn logged_on(route: &str, status: StatusCode) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            log_answer(&Method::GET, route, status, Duration::from_micros(1500));
        });
        String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn refusals_and_failures_at_info_the_rest_at_debug() {
        for (status, level) in [
            (StatusCode::OK, " DEBUG "),
            (StatusCode::SEE_OTHER, " DEBUG "),
            (StatusCode::NOT_FOUND, " INFO "),
            (StatusCode::TOO_MANY_REQUESTS, " INFO "),
            // Its cause is logged at ERROR where it happens; this line is not a second one.
            (StatusCode::INTERNAL_SERVER_ERROR, " INFO "),
        ] {
            let line = logged(status);
            assert_eq!(line.lines().count(), 1, "{line}");
            assert!(line.contains(level), "{status}: {line}");
            let expected = format!(
                "answered method=GET route=/x/{{id}} status={} duration_ms=1.5",
                status.as_u16()
            );
            assert!(line.contains(&expected), "{line}");
        }
    }

    #[test]
    fn probes_at_debug_whatever_they_answer() {
        for route in PROBES {
            for status in [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE] {
                let line = logged_on(route, status);
                assert!(line.contains(" DEBUG "), "{route} {status}: {line}");
            }
        }
    }
}
