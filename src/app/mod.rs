//! Wiring: from a validated [`Config`] to a running router, and serving it.
//!
//! The rooms it wires: the providers ([`crate::auth::configured_providers`]), the
//! development stand-in (`dev_provider::StandIn`, feature `dev-provider`), the database
//! ([`database`]), the site's routes and layers ([`crate::web::site`]), the background
//! tasks ([`tasks`]) and `/metrics` ([`metrics_server`]).

mod database;
mod metrics_server;
mod tasks;
mod users;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use tokio::{net::TcpListener, time::Instant};
use tracing::{error, info, warn};

pub use database::{check_database, migrate, rotate_sealing_key};
use metrics_server::{MetricsListener, MetricsServer};
pub use users::{Filter, Person, UsersCommand, users};

use crate::{
    auth::{
        Access, ConfiguredProviders, Exchanger, LocalClients, OperationEvents, Provider,
        ProviderSetupError, Providers, configured_providers, http::HttpClient,
    },
    config::{Config, Environment, ProviderKind},
    shutdown::{Drained, Shutdown},
    store::StoreError,
    web::{self, AppState, FacebookCallbacks, RateLimiter, Sealer, Shared, WebSettings},
};

/// Why [`App::build`] refused to start: each names the configuration key to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client for the providers could not be built (no trust store, say).
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// A provider cannot be built from its `[providers.<name>]`.
    #[error(transparent)]
    Provider(#[from] ProviderSetupError),
    /// `metrics.bind` cannot be listened on (in use, say).
    #[error("metrics.bind: cannot listen on {addr}: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
}

/// A ready-to-serve application.
pub struct App {
    /// What [`App::serve`] serves.
    router: Router,
    /// What [`App::router`] hands to an app that embeds loginwith.
    mounted: Router,
    shutdown: Shutdown,
    /// `server.shutdown_grace_secs`.
    grace: Duration,
    /// `None` when `metrics.bind` is empty.
    metrics: Option<MetricsServer>,
    accounts: web::Accounts,
    #[cfg(any(test, feature = "test-support"))]
    events: Arc<OperationEvents>,
    #[cfg(any(test, feature = "test-support"))]
    sealer: Sealer,
}

impl App {
    /// Opens the database, runs migrations and start-up checks, and builds the router.
    /// `local_addr` is where the server actually listens (the development provider's token
    /// and profile endpoints are called there, not through the public URL).
    pub async fn build(config: &Config, local_addr: SocketAddr) -> Result<Self, StartupError> {
        Self::assemble(config, local_addr, Vec::new()).await
    }

    /// [`App::build`] with more providers after the configured ones: the tests' stand-ins
    /// for providers that misbehave on purpose. Not part of the library's API (a
    /// [`Provider`] is an internal trait).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn build_with_providers(
        config: &Config,
        local_addr: SocketAddr,
        extra_providers: Vec<Arc<dyn Provider>>,
    ) -> Result<Self, StartupError> {
        Self::assemble(config, local_addr, extra_providers).await
    }

    /// Builds in this order: providers, then metrics' address, then the database, so that a
    /// mistake refuses start-up before anything is created.
    async fn assemble(
        config: &Config,
        local_addr: SocketAddr,
        extra_providers: Vec<Arc<dyn Provider>>,
    ) -> Result<Self, StartupError> {
        warn_about_config(config, local_addr);
        let timeout = config.login.exchange_timeout();
        let http = HttpClient::new(timeout)?;
        let (local_clients, stand_in_routes) = stand_in(config, local_addr)?;
        // Before the database: a provider that cannot be built, or (in production) a metrics
        // address in use, refuses start-up without creating or migrating anything.
        let ConfiguredProviders {
            providers,
            facebook_app,
        } = configured_providers(config, &http, local_clients).await?;
        let metrics_listener = MetricsListener::bind(config).await?;
        let providers = Providers::new(providers.into_iter().chain(extra_providers));
        let provider_names = Arc::new(
            providers
                .iter()
                .map(|p| (p.id().to_owned(), p.display_name().to_owned()))
                .collect(),
        );
        let store = database::open_store(config).await?;
        if store.free_space().is_some() {
            tasks::spawn_free_space_watch(store.clone());
        }
        tasks::first_housekeeping(&store, timeout, config.audit.retention()).await;
        let sealer = match config.session.sealing_key() {
            Ok(Some(secret)) => Sealer::configured(&secret),
            // Validated with the configuration: only an empty key gets here.
            Ok(None) | Err(_) => {
                let sealer = Sealer::from_store(store.clone()).await?;
                tasks::spawn_sealing_key_reload(sealer.clone());
                sealer
            }
        };

        let limits = &config.limits;
        let access = Access::new(&config.access);
        let events = Arc::new(OperationEvents::default());
        let shutdown = Shutdown::new();
        let settings = Arc::new(WebSettings::from_config(
            config,
            access.clone(),
            provider_names,
        ));
        let auth_limiter =
            Arc::new(RateLimiter::new(limits.auth_per_minute, limits.auth_burst).named("auth"));
        let facebook = facebook_app.map(|app| FacebookCallbacks {
            app,
            limiter: Arc::new(
                RateLimiter::new(limits.data_callback_per_minute, limits.data_callback_burst)
                    .named("data_callback"),
            ),
        });
        // Issuers' back-channel logouts: server to server, one per session ended.
        let issuer_logout_limiter = Arc::new(
            RateLimiter::new(
                limits.backchannel_logout_per_minute,
                limits.backchannel_logout_burst,
            )
            .named("backchannel_logout"),
        );
        let mut limiters = vec![auth_limiter.clone(), issuer_logout_limiter.clone()];
        limiters.extend(facebook.as_ref().map(|f| f.limiter.clone()));
        let state = AppState::new(Shared {
            accounts: web::Accounts::new(store.clone(), &config.cookie_name(), settings.clone()),
            store: store.clone(),
            providers,
            exchanger: Exchanger::new(
                store.clone(),
                timeout,
                limits.max_concurrent_exchanges,
                events.clone(),
                shutdown.clone(),
            )
            .link_by_verified_email(config.providers.linking_by_verified_email())
            .with_access(access)
            .recording_activity(config.audit.records()),
            events: events.clone(),
            auth_limiter,
            issuer_logout_limiter,
            settings: settings.clone(),
            shutdown: shutdown.clone(),
            sealer,
        });
        let mut routes = web::router(state.clone(), facebook);
        if let Some(stand_in) = stand_in_routes {
            routes = routes.merge(stand_in);
        }
        let site = web::site(config, &state, routes);

        tasks::spawn_maintenance(store.clone(), timeout, config.audit.retention());
        // Two database waits: a connection's and a statement's (see `Store::watch_outages`).
        let settling = Duration::from_secs(config.database.connect_timeout_secs) * 2;
        tokio::spawn(store.clone().watch_outages(settling));
        tasks::spawn_limiter_upkeep(limiters);
        if let Some(announcements) = store.announcements().await? {
            tasks::spawn_announcement_listener(announcements, events.clone(), shutdown.clone());
        }
        Ok(Self {
            router: site.served,
            mounted: site.mounted,
            accounts: state.accounts.clone(),
            shutdown,
            grace: config.server.shutdown_grace(),
            metrics: metrics_listener.map(|listener| listener.with_store(store)),
            #[cfg(any(test, feature = "test-support"))]
            events,
            #[cfg(any(test, feature = "test-support"))]
            sealer: state.sealer.clone(),
        })
    }

    /// loginwith's routes, to serve or to merge into an app's own router: they all live below
    /// the path of `server.public_url` (none: loginwith owns `/` and the 404 page). Merged
    /// into another app, loginwith's layers (security headers, request log, limits) stay
    /// on loginwith's routes; the app keeps its own fallback.
    pub fn router(&self) -> Router {
        self.mounted.clone()
    }

    /// Who is signed in, for the app's own handlers: put it in the app's state and take
    /// [`SignedIn`](crate::SignedIn) or `Option<SignedIn>` as an extractor.
    pub fn accounts(&self) -> web::Accounts {
        self.accounts.clone()
    }

    /// Where `GET /metrics` is served (the port actually bound), `None` with metrics off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(MetricsServer::local_addr)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Who waits for which operation: tests see a long poll waiting.
    pub fn events(&self) -> Arc<OperationEvents> {
        self.events.clone()
    }

    #[cfg(any(test, feature = "test-support"))]
    /// What seals the pre-sign-in cookie: tests open one, change it and seal it again.
    pub fn sealer(&self) -> Sealer {
        self.sealer.clone()
    }

    /// The handle that sees shutdown begin: `serve`'s `shutdown` future completing begins it,
    /// and so does its `begin`.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves until `shutdown` completes, then drains: `/readyz` answers 503, the listener
    /// stops accepting, long polls answer at once, requests in flight are answered, and code
    /// exchanges already running get `server.shutdown_grace_secs` to finish; any still
    /// running then is recorded as failed (`internal`) before this returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Metrics are served until this returns, whichever way: they show the drain too.
        let _metrics = self.metrics.map(MetricsServer::serve);
        let draining = self.shutdown.clone();
        // With the peer address, for the per-client rate limit.
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { draining.draining().await })
        .into_future();
        tokio::pin!(server);
        let ended_by_itself = tokio::select! {
            // Only an error ends it before shutdown begins, in practice.
            result = &mut server => {
                result?;
                true
            }
            () = shutdown => false,
            // Begun through the handle.
            () = self.shutdown.draining() => false,
        };
        self.shutdown.begin();
        let deadline = Instant::now() + self.grace;
        info!(
            exchanges = self.shutdown.running_exchanges(),
            grace_secs = self.grace.as_secs(),
            "draining: /readyz answers 503, no new connections, long polls answered; waiting for the sign-ins in progress"
        );
        let connections = async {
            if ended_by_itself {
                Ok(())
            } else {
                (&mut server).await
            }
        };
        let (served, drained) = tokio::join!(
            tokio::time::timeout_at(deadline, connections),
            self.shutdown.drain_exchanges(deadline),
        );
        match drained {
            Drained::Finished => info!("every sign-in in progress finished"),
            Drained::CutOff(count) => warn!(
                count,
                "sign-ins still in progress after server.shutdown_grace_secs were cut off and recorded as failed (internal)"
            ),
            Drained::Abandoned(count) => error!(
                count,
                "sign-ins cut off at shutdown could not record their failure; the next start marks them timed out"
            ),
        }
        match served {
            Ok(result) => result,
            Err(_) => {
                warn!("connections still open after server.shutdown_grace_secs were closed");
                Ok(())
            }
        }
    }
}

/// The development provider, when it stands in (`dev_provider.enabled` and no provider
/// configured): the clients that sign in with it, and its routes to merge into the app's.
#[cfg(feature = "dev-provider")]
fn stand_in(
    config: &Config,
    local_addr: SocketAddr,
) -> Result<(Option<LocalClients>, Option<Router>), ProviderSetupError> {
    if !config.uses_dev_provider() {
        return Ok((None, None));
    }
    let crate::dev_provider::StandIn { clients, router } =
        crate::dev_provider::StandIn::new(config, local_addr).map_err(|source| {
            ProviderSetupError::Url {
                name: "facebook".to_owned(),
                source,
            }
        })?;
    Ok((Some(clients), Some(router)))
}

/// Without the `dev-provider` feature there is none: validation has refused a configuration
/// that needs it.
#[cfg(not(feature = "dev-provider"))]
fn stand_in(
    _: &Config,
    _: SocketAddr,
) -> Result<(Option<LocalClients>, Option<Router>), ProviderSetupError> {
    Ok((None, None))
}

/// What start-up says about the configuration as a whole, before building anything.
fn warn_about_config(config: &Config, local_addr: SocketAddr) {
    // A group condition is met by a group of that name from any OpenID issuer: with two,
    // one whose people can make their own groups would let them in. Said once, at start-up.
    let issuers: Vec<&str> = config
        .providers
        .enabled()
        .filter(|(_, p)| p.kind().is_some_and(ProviderKind::sends_claims))
        .map(|(name, _)| name)
        .collect();
    if config.access.names_groups() && issuers.len() > 1 {
        warn!(
            issuers = %issuers.join(", "),
            "[access] groups are matched against the groups claim of every OpenID Connect issuer enabled: make sure none of them lets people name their own groups (or set its groups_claim to a claim it does not send)"
        );
    }
    // Pages are redirected to the public URL. In development nothing usually forwards its
    // port to this one, so a port that differs sends every browser to a dead address.
    let public_port = config.server.public_url.port_or_known_default();
    if config.environment == Environment::Development && public_port != Some(local_addr.port()) {
        warn!(
            "server.bind listens on port {port} but server.public_url is {public}: open {public} (pages opened on another host or port are redirected there), or set server.public_url to port {port}",
            port = local_addr.port(),
            public = config.public_url(),
        );
    }
}
