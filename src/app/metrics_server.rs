//! `GET /metrics` on `metrics.bind`, beside the site: apart from the site's layers (no
//! session, no cookie, no rate limit, no request log: a scraper every few seconds would drown
//! it).

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tracing::warn;

use super::StartupError;
use crate::{
    config::{Config, Environment},
    store::Store,
};

/// At shutdown, how long a scrape of `/metrics` in flight may still take.
const LAST_SCRAPE: Duration = Duration::from_secs(1);

/// The bound listener, before the app serves.
pub struct MetricsListener(TcpListener);

impl MetricsListener {
    /// Binds `metrics.bind`; `None` when it is empty. In production an address in use
    /// refuses start-up (before the database is touched); in development (a second checkout,
    /// `cargo test` beside `cargo run`) it is a WARN naming the key, and the instance serves
    /// without metrics.
    pub async fn bind(config: &Config) -> Result<Option<Self>, StartupError> {
        let Some(addr) = config.metrics.bind_addr() else {
            return Ok(None);
        };
        match TcpListener::bind(addr).await {
            Ok(listener) => Ok(Some(Self(listener))),
            Err(source) if config.environment == Environment::Development => {
                warn!(
                    %addr,
                    error = %source,
                    "metrics.bind: cannot listen there (another instance on this machine?); serving without /metrics"
                );
                Ok(None)
            }
            Err(source) => Err(StartupError::MetricsBind { addr, source }),
        }
    }

    /// Ready to serve the store's gauges and the recorder's counters.
    pub fn with_store(self, store: Store) -> MetricsServer {
        MetricsServer {
            listener: self.0,
            router: crate::telemetry::router(store),
        }
    }
}

/// `GET /metrics`, served by [`serve`](Self::serve) until its guard is dropped.
pub struct MetricsServer {
    listener: TcpListener,
    router: Router,
}

impl MetricsServer {
    /// Where it listens (the port actually bound).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `GET /metrics` and keeps the recorder's histograms folded in, until the guard
    /// returned is dropped; a scrape in flight then gets a second more.
    pub fn serve(self) -> tokio_util::sync::DropGuard {
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let handle = crate::telemetry::handle();
        tokio::spawn(async move {
            let server = axum::serve(self.listener, self.router)
                .with_graceful_shutdown(stopped.clone().cancelled_owned())
                .into_future();
            tokio::select! {
                result = server => {
                    if let Err(e) = result {
                        warn!(error = %e, "the metrics listener failed; /metrics is no longer served");
                    }
                }
                () = crate::telemetry::upkeep(handle) => {}
                () = async {
                    stopped.cancelled().await;
                    tokio::time::sleep(LAST_SCRAPE).await;
                } => {}
            }
        });
        stop.drop_guard()
    }
}
