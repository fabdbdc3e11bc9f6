//! Wiring: from a validated [`Config`] to a running router.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use oauth2::ClientSecret;
use tokio::{net::TcpListener, time::Instant};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};
use tracing::{error, info, warn};
use url::Url;

use crate::{
    auth::{
        Access, Exchanger, OperationEvents, Provider, Providers,
        facebook::Facebook,
        github::{GitHub, GitHubSettings},
        http::HttpClient,
        oidc::{
            Oidc, OidcSettings,
            discovery::{self, DiscoveryError},
        },
    },
    config::{
        Config, DEV_PROVIDER_PATH, Environment, OAuthProviderConfig, ProviderConfig, ProviderKind,
    },
    dev_provider::{DevOidc, DevOidcSettings, DevProvider, DevProviderSettings, Faults, OIDC_PATH},
    shutdown::{Drained, Shutdown},
    store::{Announcement, Announcements, ConnectOptions, Store, StoreError},
    web::{
        self, AppState, Health, PublicOrigin, RateLimiter, Shared, WebSettings,
        return_to::ReturnRules,
    },
};

/// The development app's id; its secret is random for each run.
const DEV_CLIENT_ID: &str = "loginwith-dev-app";
/// The development provider's OpenID Connect mode: the provider name (`/authorize/dev-oidc`),
/// its button's name and the client id registered there (its secret is random too).
const DEV_OIDC_NAME: &str = "dev-oidc";
const DEV_OIDC_DISPLAY_NAME: &str = "Dev OpenID";
const DEV_OIDC_CLIENT_ID: &str = "loginwith-dev-oidc";
/// Finished operations are kept this long, then deleted (the privacy page says so).
pub(crate) const FINISHED_OPERATION_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// After the announcement listener loses its connection, it tries again this much later.
const LISTENER_RETRY: Duration = Duration::from_secs(1);
/// How often the rate limiters drop the addresses they no longer need.
const LIMITER_UPKEEP_PERIOD: Duration = Duration::from_secs(60);
/// How often the room left beside a SQLite file is read (`database.min_free_mb`).
const FREE_SPACE_PERIOD: Duration = Duration::from_secs(60);
/// How often the clean-up runs.
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(10 * 60);
/// At shutdown, how long a scrape of `/metrics` in flight may still take.
const METRICS_LAST_SCRAPE: Duration = Duration::from_secs(1);
/// An anonymous session (a sign-in in progress) lives this long without use.
const ANONYMOUS_SESSION_IDLE: time::Duration = time::Duration::hours(1);

/// Why [`App::build`] refused to start: each names the configuration key to look at.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client for the providers could not be built (no trust store, say).
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// A provider's endpoint is not a URL.
    #[error("providers.{name}: {source}")]
    ProviderUrl {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// What is wrong with the URL.
        source: url::ParseError,
    },
    /// An OpenID Connect issuer cannot be set up.
    #[error("providers.{name}.issuer: {source}")]
    OidcSetup {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// Why.
        source: crate::auth::oidc::SetupError,
    },
    /// A discovery document naming another issuer is a configuration mistake: refused. (An
    /// issuer that cannot be reached is not: the app starts and keeps trying.)
    #[error("providers.{name}.issuer: {source}")]
    OidcDiscovery {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// What discovery found.
        source: DiscoveryError,
    },
    /// A provider kind this build leaves out.
    #[error("providers.{name}.kind: kind = \"{kind}\" is not available in this build")]
    KindNotAvailable {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// The kind asked for.
        kind: &'static str,
    },
    /// `metrics.bind` cannot be listened on (in use, say).
    #[error("metrics.bind: cannot listen on {addr}: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
}

/// `GET /metrics` on `metrics.bind`, served beside the site by [`App::serve`].
struct MetricsServer {
    listener: TcpListener,
    router: Router,
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
}

impl App {
    /// Opens the database, runs migrations and start-up checks, and builds the router.
    /// `local_addr` is where the server actually listens (the development provider's token
    /// and profile endpoints are called there, not through the public URL).
    pub async fn build(config: &Config, local_addr: SocketAddr) -> Result<Self, StartupError> {
        Self::build_with_providers(config, local_addr, Vec::new()).await
    }

    /// [`App::build`] with more providers beside Facebook (tests use it for mix-up cases;
    /// Google, GitHub and OpenID Connect issuers arrive the same way).
    pub async fn build_with_providers(
        config: &Config,
        local_addr: SocketAddr,
        extra_providers: Vec<Arc<dyn Provider>>,
    ) -> Result<Self, StartupError> {
        let timeout = config.login.exchange_timeout();
        let http = HttpClient::new(timeout)?;
        let mut dev_config = None;
        let mut dev_router = None;
        if config.uses_dev_provider() {
            let (stand_in, router) =
                dev_provider(config, local_addr).map_err(|source| StartupError::ProviderUrl {
                    name: "facebook".to_owned(),
                    source,
                })?;
            // Loud on purpose: anyone who reaches this address can sign in as anyone.
            warn!(
                "the development provider stands in for Facebook at {public}{DEV_PROVIDER_PATH}, and for an OpenID Connect issuer ({DEV_OIDC_NAME}) at {public}{DEV_PROVIDER_PATH}/oidc (its issuer name is {}, the address this server reaches itself at): anyone who reaches {} can sign in as any person they type; set providers.facebook.client_id for a real app",
                stand_in.oidc.issuer,
                config.server.bind,
                public = config.server.public_url.as_str().trim_end_matches('/'),
            );
            if config.dev_provider.auto_approve {
                warn!(
                    "dev_provider.auto_approve is on: the development provider approves every sign-in without asking"
                );
            }
            dev_config = Some(stand_in);
            dev_router = Some(router);
        }
        // A group condition is met by a group of that name from any OpenID issuer: with two,
        // one whose people can make their own groups would let them in. Said once, at start-up.
        let issuers: Vec<&str> = config
            .providers
            .enabled()
            .filter(|(_, p)| p.kind() == Some(crate::config::ProviderKind::Oidc))
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
        if config.environment == Environment::Development && public_port != Some(local_addr.port())
        {
            warn!(
                "server.bind listens on port {port} but server.public_url is {public}: open {public} (pages opened on another host or port are redirected there), or set server.public_url to port {port}",
                port = local_addr.port(),
                public = config.server.public_url.as_str().trim_end_matches('/'),
            );
        }
        // Before the database: a provider that cannot be built refuses start-up without
        // creating or migrating anything.
        let (providers, facebook_app_secret) = build_providers(config, &http, dev_config).await?;
        let provider_names = Arc::new(
            providers
                .iter()
                .chain(&extra_providers)
                .map(|p| (p.id().to_owned(), p.display_name().to_owned()))
                .collect(),
        );
        let access = Access::new(&config.access);
        // Before the database too: in production an address in use refuses start-up having
        // touched nothing. In development (a second checkout, `cargo test` beside `cargo run`)
        // it is a WARN naming the key, and the instance serves without metrics.
        let metrics_listener = match config.metrics.bind_addr() {
            Some(addr) => match TcpListener::bind(addr).await {
                Ok(listener) => Some(listener),
                Err(source) if config.environment == Environment::Development => {
                    warn!(
                        %addr,
                        error = %source,
                        "metrics.bind: cannot listen there (another instance on this machine?); serving without /metrics"
                    );
                    None
                }
                Err(source) => return Err(StartupError::MetricsBind { addr, source }),
            },
            None => None,
        };
        let store = open_store(config).await?;
        // Warns now if the SQLite file's file system is nearly full, then once a minute.
        if store.free_space().is_some() {
            spawn_free_space_watch(store.clone());
        }
        // Not a reason to refuse to start: the maintenance task tries again.
        match store
            .housekeeping(timeout, FINISHED_OPERATION_RETENTION)
            .await
        {
            Ok(0) => {}
            Ok(orphaned) => warn!(
                orphaned,
                "pending sign-ins from a previous run were marked as timed out"
            ),
            Err(e) => warn!(error = %e, "the clean-up at start-up failed; maintenance will retry"),
        }
        let limits = &config.limits;
        let events = Arc::new(OperationEvents::default());
        let events_for_listener = events.clone();
        let shutdown = Shutdown::new();
        let settings = Arc::new(WebSettings {
            public_url: config
                .server
                .public_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            base_path: config.base_path().to_owned(),
            public_origin: PublicOrigin::new(&config.server.public_url),
            trusted_proxies: config.server.trusted_proxies.clone(),
            poll_interval_ms: config.login.poll_interval_ms,
            poll_limit_secs: config.login.poll_limit_secs,
            status_recheck: Duration::from_millis(config.login.status_recheck_ms),
            exchange_timeout: timeout,
            remember: days(config.session.remember_days),
            absolute: days(config.session.absolute_days),
            sign_in_key: web::SignInKeyCookie {
                name: config.sign_in_key_cookie_name(),
                secure: config.session.secure,
            },
            header_bytes: limits.header_bytes,
            body_bytes: limits.body_bytes,
            hsts: config.environment == Environment::Production,
            return_rules: ReturnRules {
                public_url: config.server.public_url.clone(),
                hosts: config.gateway.allowed_hosts(),
                allow_http: config.environment == Environment::Development,
            },
            chrome: Arc::new(web::Chrome::new(
                &config.brand,
                config.server.public_url.path(),
            )),
            access: access.clone(),
            provider_names,
        });
        let auth_limiter =
            Arc::new(RateLimiter::new(limits.auth_per_minute, limits.auth_burst).named("auth"));
        let data_callback_limiter = Arc::new(
            RateLimiter::new(limits.data_callback_per_minute, limits.data_callback_burst)
                .named("data_callback"),
        );
        let state = AppState::new(Shared {
            store: store.clone(),
            providers: Providers::new(providers.into_iter().chain(extra_providers)),
            exchanger: Exchanger::new(
                store.clone(),
                timeout,
                limits.max_concurrent_exchanges,
                events.clone(),
                shutdown.clone(),
            )
            .link_by_verified_email(config.providers.linking_by_verified_email())
            .with_access(access),
            events,
            auth_limiter: auth_limiter.clone(),
            data_callback_limiter: data_callback_limiter.clone(),
            facebook_app_secret: Arc::new(facebook_app_secret),
            settings: settings.clone(),
            shutdown: shutdown.clone(),
        });
        #[cfg(any(test, feature = "test-support"))]
        let watched = state.events.clone();

        // SameSite=Lax, not Strict: the provider's redirect back to /callback is a cross-site
        // top-level GET, and Strict would leave the session cookie (and so the state) behind.
        let mut session_layer = SessionManagerLayer::new(store.sessions())
            .with_name(config.cookie_name())
            .with_same_site(SameSite::Lax)
            .with_secure(config.session.secure)
            .with_http_only(true)
            .with_expiry(Expiry::OnInactivity(ANONYMOUS_SESSION_IDLE));
        // `session.cookie_domain`: the site's other hosts see the sign-in too (forward
        // authentication); tower-sessions puts the domain on its removals as well.
        if let Some(domain) = config.cookie_domain() {
            session_layer = session_layer.with_domain(domain);
        }
        let mut router = web::router(state);
        if let Some(dev_router) = dev_router {
            router = router.nest(DEV_PROVIDER_PATH, dev_router);
        }
        let session_cookie = web::SessionCookie {
            name: Arc::from(config.cookie_name()),
            secure: config.session.secure,
            domain: config.cookie_domain().map(Arc::from),
            host: match config.server.public_url.host() {
                Some(url::Host::Domain(name)) => Some(Arc::from(name)),
                _ => None,
            },
        };
        let router = router
            .layer(session_layer)
            .layer(axum::middleware::from_fn(web::unavailable_on_failed_save))
            .layer(axum::middleware::from_fn_with_state(
                session_cookie.clone(),
                web::keep_cookie_unless_signed_out,
            ))
            // Outside the guard, whose job is to drop removals nobody declared: these are
            // declared, for both twins.
            .layer(axum::middleware::from_fn_with_state(
                session_cookie,
                web::sign_out_twins,
            ))
            // Outside the session layers: a probe reads and writes no session.
            .merge(web::health_router(Health {
                store: store.clone(),
                shutdown: shutdown.clone(),
            }))
            // Outside too: the check reads the session once itself and writes nothing.
            .merge(web::forward_auth_router(web::ForwardAuth {
                store: store.clone(),
                cookie_name: Arc::from(config.cookie_name()),
                settings: settings.clone(),
                remote_chrome: Arc::new(web::Chrome::new(
                    &config.brand,
                    config.server.public_url.as_str().trim_end_matches('/'),
                )),
            }));
        // With a path in `server.public_url`, everything lives below it: the pages, the
        // callbacks, the assets, the development provider and the probes. Served alone, the
        // rest of the host answers the 404 page; merged into another app (`mounted`), the
        // rest is that app's, fallback included (axum allows one per router).
        let (router, mounted) = match settings.base_path.as_str() {
            "" => {
                let router = web::common_layers(router, &settings);
                (router.clone(), router)
            }
            base => {
                let nested = Router::new()
                    .nest(base, router)
                    // People type the home page with a trailing slash too.
                    .route(
                        &format!("{base}/"),
                        axum::routing::get(web::to_mounted_home),
                    );
                (
                    web::common_layers(
                        nested
                            .clone()
                            .fallback(|| async { web::AppError::NotFound }),
                        &settings,
                    ),
                    web::common_layers(nested, &settings),
                )
            }
        };
        spawn_maintenance(store.clone(), timeout);
        // Two database waits: a connection's and a statement's (see `Store::watch_outages`).
        let settling = Duration::from_secs(config.database.connect_timeout_secs) * 2;
        tokio::spawn(store.clone().watch_outages(settling));
        spawn_limiter_upkeep([auth_limiter, data_callback_limiter]);
        if let Some(announcements) = store.announcements().await? {
            spawn_announcement_listener(announcements, events_for_listener, shutdown.clone());
        }
        // Apart from the site's layers: no session, no cookie, no rate limit, no request
        // log (a scraper every few seconds would drown it).
        let metrics = metrics_listener.map(|listener| MetricsServer {
            listener,
            router: crate::telemetry::router(store.clone()),
        });
        Ok(Self {
            router,
            mounted,
            accounts: web::Accounts::new(store.clone(), &config.cookie_name(), settings.clone()),
            shutdown,
            grace: config.server.shutdown_grace(),
            metrics,
            #[cfg(any(test, feature = "test-support"))]
            events: watched,
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
        self.metrics
            .as_ref()
            .and_then(|metrics| metrics.listener.local_addr().ok())
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Who waits for which operation: tests see a long poll waiting.
    pub fn events(&self) -> Arc<OperationEvents> {
        self.events.clone()
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
        let _metrics = self.metrics.map(serve_metrics);
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

/// Serves `GET /metrics` and keeps the recorder's histograms folded in, until the guard
/// returned is dropped.
fn serve_metrics(metrics: MetricsServer) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let handle = crate::telemetry::handle();
    tokio::spawn(async move {
        let server = axum::serve(metrics.listener, metrics.router)
            .with_graceful_shutdown(stopped.clone().cancelled_owned())
            .into_future();
        tokio::select! {
            result = server => {
                if let Err(e) = result {
                    warn!(error = %e, "the metrics listener failed; /metrics is no longer served");
                }
            }
            () = crate::telemetry::upkeep(handle) => {}
            // A scrape still in flight at the end gets a second, not more.
            () = async {
                stopped.cancelled().await;
                tokio::time::sleep(METRICS_LAST_SCRAPE).await;
            } => {}
        }
    });
    stop.drop_guard()
}

fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

/// The factory: one [`Provider`] per enabled `[providers.<name>]`, in button order (the
/// development provider's Facebook imitation under `facebook` when it stands in), and the
/// app secret that verifies Facebook's signed requests (Data Deletion, Deauthorize): the
/// first Facebook-kind provider's.
async fn build_providers(
    config: &Config,
    http: &HttpClient,
    dev_config: Option<DevStandIn>,
) -> Result<(Vec<Arc<dyn Provider>>, ClientSecret), StartupError> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut facebook_secret = None;
    if let Some(dev) = dev_config {
        facebook_secret = Some(dev.facebook.client_secret.clone());
        providers.push(facebook(
            config,
            "facebook",
            "Facebook",
            &dev.facebook,
            http,
        )?);
        providers.push(dev_oidc(config, dev.oidc, http)?);
    }
    for (name, provider) in config.providers.enabled() {
        let kind = provider.kind();
        let display_name = provider.display_name();
        match (kind, provider.oauth()) {
            (Some(ProviderKind::Facebook), Some(oauth)) => {
                facebook_secret.get_or_insert_with(|| oauth.client_secret.clone());
                providers.push(facebook(config, name, display_name, &oauth, http)?);
            }
            (Some(ProviderKind::Github), Some(oauth)) => {
                providers.push(github(config, name, display_name, oauth, http)?);
            }
            (Some(ProviderKind::Oidc), _) => {
                providers.push(oidc(config, name, display_name, provider, http).await?);
            }
            // Validation has refused unknown kinds.
            _ => {
                return Err(StartupError::KindNotAvailable {
                    name: name.to_owned(),
                    kind: kind.map_or("unknown", ProviderKind::name),
                });
            }
        }
    }
    // Without a Facebook app there is no secret to verify with; an empty one would accept
    // requests anyone can sign, so a random one refuses them all.
    let secret = facebook_secret.unwrap_or_else(crate::dev_provider::random_secret);
    Ok((providers, ClientSecret::new(secret)))
}

fn facebook(
    config: &Config,
    name: &str,
    display_name: &str,
    oauth: &OAuthProviderConfig,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, StartupError> {
    let client = Facebook::new(
        name,
        display_name,
        oauth,
        &config.redirect_uri(name),
        http.clone(),
    )
    .map_err(|source| StartupError::ProviderUrl {
        name: name.to_owned(),
        source,
    })?;
    Ok(Arc::new(client))
}

fn github(
    config: &Config,
    name: &str,
    display_name: &str,
    oauth: OAuthProviderConfig,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, StartupError> {
    let settings = GitHubSettings {
        authorize_url: oauth.authorize_url,
        token_url: oauth.token_url,
        api_url: oauth.api_url,
        client_id: oauth.client_id,
        client_secret: oauth.client_secret,
        scopes: oauth.scopes,
        redirect_uri: config.redirect_uri(name),
    };
    let client =
        GitHub::new(settings, http.clone()).map_err(|source| StartupError::ProviderUrl {
            name: name.to_owned(),
            source,
        })?;
    Ok(Arc::new(
        client
            .named(name, display_name)
            .reading_membership(config.access.reads_github_membership()),
    ))
}

/// `loginwith migrate`: creates the database `database.url` names if it is a SQLite file, and
/// applies the migrations this build carries (start-up does the same).
pub async fn migrate(config: &Config) -> Result<(), StoreError> {
    open_store(config).await?.close().await;
    Ok(())
}

/// Opens and migrates the database `database.url` names, with the pool `[database]` sizes.
pub(crate) async fn open_store(config: &Config) -> Result<Store, StoreError> {
    let options = ConnectOptions {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
        min_free_bytes: config.database.min_free_mb * 1024 * 1024,
    };
    Store::connect_with(&config.database.url, &options).await
}

/// An OpenID Connect issuer, discovered now if it answers, and kept fresh in the background:
/// one issuer being down must not take the site down, so an unreachable one only warns (its
/// sign-ins show a "cannot reach" page until a retry succeeds), while a document naming
/// another issuer refuses the start.
async fn oidc(
    config: &Config,
    name: &str,
    display_name: &str,
    provider: &ProviderConfig,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, StartupError> {
    let settings = OidcSettings {
        name: name.to_owned(),
        display_name: display_name.to_owned(),
        // Validation requires it for this kind.
        issuer: provider.issuer.clone().unwrap_or_default(),
        client_id: provider.client_id.clone(),
        client_secret: provider.client_secret.clone(),
        scopes: provider.scopes(),
        redirect_uri: config.redirect_uri(name),
        hosted_domain: provider.hosted_domain().map(str::to_owned),
        groups_claim: provider.groups_claim().map(str::to_owned),
    };
    let client = Oidc::new(settings, http.clone()).map_err(|source| StartupError::OidcSetup {
        name: name.to_owned(),
        source,
    })?;
    let refresh = config.login.discovery_refresh();
    let next = match client.rediscover().await {
        Ok(()) => refresh,
        Err(source @ DiscoveryError::OtherIssuer(_)) => {
            return Err(StartupError::OidcDiscovery {
                name: name.to_owned(),
                source,
            });
        }
        Err(DiscoveryError::Unreachable(detail)) => {
            warn!(
                provider = name,
                "providers.{name}.issuer: discovery failed ({detail}); starting without {display_name}: its sign-ins show a \"cannot reach\" page until discovery succeeds (retried with backoff)"
            );
            discovery::FIRST_RETRY
        }
    };
    discovery::keep_fresh(&client, next, refresh);
    Ok(client)
}

/// The client of the development provider's OpenID issuer, discovered like any issuer's but
/// only in the background: the issuer is this very server, which answers once
/// [`App::serve`] runs, so discovering here, before returning, would wait on itself. The
/// first attempt goes out at once and waits in the bound socket's backlog until then.
fn dev_oidc(
    config: &Config,
    settings: OidcSettings,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, StartupError> {
    let client = Oidc::new(settings, http.clone()).map_err(|source| StartupError::OidcSetup {
        name: DEV_OIDC_NAME.to_owned(),
        source,
    })?;
    discovery::keep_fresh(&client, Duration::ZERO, config.login.discovery_refresh());
    Ok(client)
}

/// `loginwith check`: whether the database `database.url` names can be reached, without
/// creating or migrating anything: what it found (a SQLite file not there yet, or how many
/// migrations the database has), or `Err` naming the database and the plain cause.
pub async fn check_database(config: &Config) -> Result<String, String> {
    let wait = Duration::from_secs(config.database.connect_timeout_secs);
    let described = config.database_description();
    Store::probe(&config.database.url, wait)
        .await
        .map_err(|e| match e {
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                format!("database {described}: no answer within database.connect_timeout_secs")
            }
            e => format!("database {described}: cannot connect: {e}"),
        })
}

/// `loginwith check`: one discovery attempt at each enabled OpenID Connect issuer, as start-up
/// makes it; a line per issuer, and `Err` when any failed.
pub async fn check_issuers(config: &Config) -> Result<Vec<String>, Vec<String>> {
    let http = HttpClient::new(config.login.exchange_timeout())
        .map_err(|e| vec![format!("HTTP client: {e}")])?;
    let mut lines = Vec::new();
    let mut failed = false;
    for (name, provider) in config.providers.enabled() {
        if provider.kind() != Some(ProviderKind::Oidc) {
            continue;
        }
        let issuer = provider.issuer.clone().unwrap_or_default();
        let settings = OidcSettings {
            name: name.to_owned(),
            display_name: provider.display_name().to_owned(),
            issuer: issuer.clone(),
            client_id: provider.client_id.clone(),
            client_secret: provider.client_secret.clone(),
            scopes: provider.scopes(),
            redirect_uri: config.redirect_uri(name),
            hosted_domain: provider.hosted_domain().map(str::to_owned),
            groups_claim: provider.groups_claim().map(str::to_owned),
        };
        let outcome = match Oidc::new(settings, http.clone()) {
            Ok(client) => client.rediscover().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            // A comment, so that what `check` prints stays a configuration file.
            Ok(()) => lines.push(format!("# providers.{name}.issuer: discovered {issuer}")),
            Err(detail) => {
                failed = true;
                lines.push(format!("providers.{name}.issuer: {detail}"));
            }
        }
    }
    if failed { Err(lines) } else { Ok(lines) }
}

/// The clients of the development provider: its Facebook imitation's and its OpenID issuer's.
struct DevStandIn {
    facebook: OAuthProviderConfig,
    oidc: OidcSettings,
}

/// The development provider's registrations and the client settings that point at it.
fn dev_provider(
    config: &Config,
    local_addr: SocketAddr,
) -> Result<(DevStandIn, Router), url::ParseError> {
    let public = config.server.public_url.as_str().trim_end_matches('/');
    // Server-to-server calls go straight to the listening socket.
    let ip = match local_addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let internal = format!(
        "http://{}{}{DEV_PROVIDER_PATH}",
        SocketAddr::new(ip, local_addr.port()),
        config.base_path(),
    );
    let secret = crate::dev_provider::random_secret();
    let issuer = format!("{public}{DEV_PROVIDER_PATH}");
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: DEV_CLIENT_ID.to_owned(),
            client_secret: secret.clone(),
            redirect_uris: vec![config.redirect_uri("facebook")],
            auto_approve: config.dev_provider.auto_approve,
            issuer: Some(issuer.clone()),
        },
        Faults {
            latency: Duration::from_millis(config.dev_provider.latency_ms),
            fault: config.dev_provider.fault,
        },
    );
    let facebook = OAuthProviderConfig {
        client_id: DEV_CLIENT_ID.to_owned(),
        client_secret: secret,
        authorize_url: Url::parse(&format!("{public}{DEV_PROVIDER_PATH}/dialog/oauth"))?,
        token_url: Url::parse(&format!("{internal}/oauth/access_token"))?,
        api_url: Url::parse(&internal)?,
        scopes: config
            .providers
            .get("facebook")
            .map_or_else(|| vec!["public_profile".to_owned()], |p| p.scopes()),
        issuer,
    };
    // The issuer is named by the listening socket, where the app discovers it and calls its
    // token, userinfo and keys endpoints; browsers only visit its authorization endpoint.
    let oidc_secret = crate::dev_provider::random_secret();
    let oidc_issuer = format!("{internal}{OIDC_PATH}");
    let dev_oidc = DevOidc::new(DevOidcSettings {
        issuer: oidc_issuer.clone(),
        authorization_endpoint: format!("{public}{DEV_PROVIDER_PATH}{OIDC_PATH}/authorize"),
        client_id: DEV_OIDC_CLIENT_ID.to_owned(),
        client_secret: oidc_secret.clone(),
        redirect_uris: vec![config.redirect_uri(DEV_OIDC_NAME)],
        auto_approve: config.dev_provider.auto_approve,
    });
    let oidc = OidcSettings {
        name: DEV_OIDC_NAME.to_owned(),
        display_name: DEV_OIDC_DISPLAY_NAME.to_owned(),
        issuer: oidc_issuer,
        client_id: DEV_OIDC_CLIENT_ID.to_owned(),
        client_secret: oidc_secret,
        scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
        redirect_uri: config.redirect_uri(DEV_OIDC_NAME),
        hosted_domain: None,
        groups_claim: None,
    };
    let router = dev.router().nest(OIDC_PATH, dev_oidc.router());
    Ok((DevStandIn { facebook, oidc }, router))
}

/// On PostgreSQL: wakes this instance's long polls when an operation finishes on any
/// instance. A lost connection may have dropped announcements, so every waiter re-reads then.
fn spawn_announcement_listener(
    mut announcements: Announcements,
    events: Arc<OperationEvents>,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        // Whether the last attempt failed: a lost connection is one line, not one a second.
        let mut lost = false;
        loop {
            let heard = tokio::select! {
                heard = announcements.next() => heard,
                () = shutdown.draining() => return,
            };
            if heard.is_ok() && std::mem::take(&mut lost) {
                info!("listening for finished sign-ins again");
            }
            match heard {
                Ok(Announcement::Finished(id)) => events.finished(id),
                Ok(Announcement::Missed) => events.wake_all(),
                Err(e) => {
                    if std::mem::replace(&mut lost, true) {
                        tracing::debug!(error = %e, "still not listening for finished sign-ins");
                    } else if e.is_unavailable() {
                        // The database is down: the outage's one WARN says so.
                        crate::store::outage::met(&e.to_string());
                        info!(error = %e, "listening for finished sign-ins failed; reconnecting");
                    } else {
                        warn!(error = %e, "listening for finished sign-ins failed; reconnecting");
                    }
                    events.wake_all();
                    // Not in a loop of failed connections at full speed.
                    tokio::time::sleep(LISTENER_RETRY).await;
                }
            }
        }
    });
}

/// Every minute, the rate limiters forget the addresses whose buckets are full again.
fn spawn_limiter_upkeep(limiters: [Arc<RateLimiter>; 2]) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LIMITER_UPKEEP_PERIOD);
        loop {
            ticks.tick().await;
            limiters.iter().for_each(|limiter| limiter.forget_idle());
        }
    });
}

/// Reads the room left on the SQLite file's file system now and then: [`Store::free_space`]
/// warns when it falls below `database.min_free_mb`, before the disk is full.
fn spawn_free_space_watch(store: Store) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FREE_SPACE_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            store.free_space();
        }
    });
}

/// Periodic clean-up: orphaned pending operations, old finished ones, expired sessions.
fn spawn_maintenance(store: Store, timeout: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(MAINTENANCE_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let result = store
                .housekeeping(timeout, FINISHED_OPERATION_RETENTION)
                .await;
            if let Err(e) = result {
                warn!(error = %e, "maintenance failed; will retry");
            }
        }
    });
}
