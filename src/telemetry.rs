//! Prometheus metrics: what is counted, and `GET /metrics` on a listener of its own
//! (`metrics.bind`), apart from the site: no session, no cookie, no rate limit.
//!
//! The recorder is process-global (`metrics` has one per process): it is installed once, the
//! first time an app with metrics starts, and every app in the process records into it. With
//! metrics off nothing is installed and every `counter!` below is a no-op.
//!
//! Labels come from a fixed set only: provider names from the configuration (never from the
//! URL before the provider is found), route templates (never the raw path), status classes,
//! failure reason codes and limiter names.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::warn;

use crate::store::{Store, outage};

pub const SIGN_INS_STARTED: &str = "loginwith_sign_ins_started_total";
pub const SIGN_INS_FINISHED: &str = "loginwith_sign_ins_finished_total";
pub const EXCHANGE_DURATION: &str = "loginwith_exchange_duration_seconds";
pub const EXCHANGES_IN_FLIGHT: &str = "loginwith_exchanges_in_flight";
pub const LONG_POLL_WAITERS: &str = "loginwith_long_poll_waiters";
pub const HTTP_REQUESTS: &str = "loginwith_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "loginwith_http_request_duration_seconds";
pub const DB_CONNECTIONS_IN_USE: &str = "loginwith_db_pool_connections_in_use";
pub const DB_CONNECTIONS_IDLE: &str = "loginwith_db_pool_connections_idle";
pub const RATE_LIMITED: &str = "loginwith_rate_limited_total";
pub const DB_STATEMENTS: &str = "loginwith_db_statements_total";
pub const STORE_UNAVAILABLE: &str = "loginwith_store_unavailable_total";
pub const DATABASE_FREE_BYTES: &str = "loginwith_database_free_bytes";
pub const DATABASE_FREE_SPACE_LOW: &str = "loginwith_database_free_space_low";

/// Code exchanges take a provider round trip or two: up to `login.exchange_timeout_secs`
/// (300 at most).
const EXCHANGE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0,
];
/// Requests: pages in milliseconds, long polls up to 30 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder's histograms are folded in between scrapes.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// The outcome label of a sign-in the person cancelled at the provider (`error=access_denied`
/// on the callback); any other error the provider sends back counts as `provider_error`.
pub const CANCELLED: &str = "cancelled";
/// The outcome label of a callback refused once its `state` was taken: a mix-up (`iss`), a
/// link whose person signed out meanwhile, no code.
pub const REFUSED: &str = "refused";
/// The outcome label of a callback turned away with "busy" (`limits.max_concurrent_exchanges`).
pub const BUSY: &str = "busy";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed the first time. Should another recorder already be
/// installed (a program embedding this crate), the handle renders an empty page and says so.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(EXCHANGE_DURATION.into()), EXCHANGE_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(HTTP_REQUEST_DURATION.into()),
                        REQUEST_BUCKETS,
                    )
                });
            let builder = match builder {
                Ok(builder) => builder,
                // Only an empty bucket list fails, and these are constants.
                Err(e) => {
                    warn!(error = %e, "metrics: histogram buckets refused; summaries instead");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                warn!(error = %e, "metrics: another recorder is installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        SIGN_INS_STARTED,
        "Sign-ins (and identity links) sent to a provider, by provider."
    );
    describe_counter!(
        SIGN_INS_FINISHED,
        "Sign-ins (and identity links) that ended, by provider and outcome (ok, cancelled, refused, busy, or a failure reason code)."
    );
    describe_histogram!(
        EXCHANGE_DURATION,
        Unit::Seconds,
        "Code exchanges from start to recorded outcome, by provider."
    );
    describe_gauge!(EXCHANGES_IN_FLIGHT, "Code exchanges running now.");
    describe_gauge!(
        LONG_POLL_WAITERS,
        "Browsers waiting in /get-status?wait= now."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template and status class."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer HTTP requests, by route template and status class."
    );
    describe_gauge!(
        DB_CONNECTIONS_IN_USE,
        "Database pool connections lent out (read at each scrape)."
    );
    describe_gauge!(
        DB_CONNECTIONS_IDLE,
        "Database pool connections open and idle (read at each scrape)."
    );
    describe_counter!(
        DB_STATEMENTS,
        "Statements this process sent to the database, BEGIN and COMMIT included (read at each scrape)."
    );
    describe_counter!(
        STORE_UNAVAILABLE,
        "Requests answered 503 because the database could not answer (down, restarting, out of connections, a full or read-only disk)."
    );
    counter!(STORE_UNAVAILABLE).increment(0);
    describe_gauge!(
        DATABASE_FREE_BYTES,
        Unit::Bytes,
        "SQLite only: bytes left on the database file's file system (read at each scrape)."
    );
    describe_gauge!(
        DATABASE_FREE_SPACE_LOW,
        "SQLite only: 1 while the database file's file system has less room than database.min_free_mb, else 0."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused by a per-client rate limit (429), by limiter."
    );
    // Shown at 0 from the first scrape, not from the first time they move, so that a
    // dashboard has a series to draw and an alert a value to compare.
    gauge!(EXCHANGES_IN_FLIGHT).increment(0.0);
    gauge!(LONG_POLL_WAITERS).increment(0.0);
    for limiter in ["auth", "data_callback", "backchannel_logout"] {
        counter!(RATE_LIMITED, "limiter" => limiter).increment(0);
    }
}

/// A request met the database unavailable (`cause`: the whole error chain): counted every
/// time, logged once per outage ([`outage::met`]).
pub fn store_unavailable(cause: &str) {
    counter!(STORE_UNAVAILABLE).increment(1);
    outage::met(cause);
}

pub fn sign_in_started(provider: &str) {
    counter!(SIGN_INS_STARTED, "provider" => provider.to_owned()).increment(1);
}

pub fn sign_in_finished(provider: &str, outcome: &'static str) {
    counter!(SIGN_INS_FINISHED, "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

pub fn exchange_duration(provider: &str, elapsed: Duration) {
    histogram!(EXCHANGE_DURATION, "provider" => provider.to_owned()).record(elapsed);
}

pub fn rate_limited(limiter: &'static str) {
    counter!(RATE_LIMITED, "limiter" => limiter).increment(1);
}

/// One answered request: `route` is the matched route template (or `unmatched`).
pub fn http_request(route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("status", status_class(status).to_owned()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_REQUEST_DURATION, &labels).record(elapsed);
}

/// `2xx` for 200 to 299, and so on: five values, whatever the status.
fn status_class(status: u16) -> &'static str {
    match status {
        0..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts one in a gauge while alive (an exchange running, a long poll waiting).
pub struct InFlight(&'static str);

impl InFlight {
    pub fn exchange() -> Self {
        Self::enter(EXCHANGES_IN_FLIGHT)
    }

    pub fn long_poll() -> Self {
        Self::enter(LONG_POLL_WAITERS)
    }

    fn enter(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Store,
}

/// `GET /metrics` alone (anything else is a plain 404), for the metrics listener.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(Scrape {
            handle: handle(),
            store,
        }))
}

async fn scrape(State(scrape): State<Arc<Scrape>>) -> impl IntoResponse {
    let (in_use, idle) = scrape.store.pool_stats();
    gauge!(DB_CONNECTIONS_IN_USE).set(in_use);
    gauge!(DB_CONNECTIONS_IDLE).set(idle);
    counter!(DB_STATEMENTS).absolute(Store::statements_sent());
    if let Some(room) = scrape.store.free_space() {
        #[allow(clippy::cast_precision_loss)] // a gauge: bytes to the nearest few hundred
        gauge!(DATABASE_FREE_BYTES).set(room.available as f64);
        gauge!(DATABASE_FREE_SPACE_LOW).set(if room.low { 1.0 } else { 0.0 });
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape.handle.render(),
    )
}

/// Folds the histograms in now and then, so that memory stays bounded between scrapes (or
/// with nobody scraping); ends with the metrics listener.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut ticks = tokio::time::interval(UPKEEP_PERIOD);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for (status, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (204, "2xx"),
            (303, "3xx"),
            (308, "3xx"),
            (404, "4xx"),
            (429, "4xx"),
            (500, "5xx"),
            (503, "5xx"),
            (999, "5xx"),
        ] {
            assert_eq!(status_class(status), class, "{status}");
        }
    }
}
