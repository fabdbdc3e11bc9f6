use std::{sync::Arc, time::Duration};

use ipnet::IpNet;

use super::{Accounts, Chrome, PreSignInCookie, PublicOrigin, RateLimiter, Sealer, return_to::ReturnRules};
use crate::{
    auth::{Access, Exchanger, OperationEvents, Providers},
    config::{Config, Environment},
    shutdown::Shutdown,
    store::Store,
};

/// What every handler can reach: one allocation shared by every request, so that handing it
/// to a handler or a layer is one reference count, not one per part (a part such as the
/// shutdown's cancellation token takes a lock to be cloned).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub store: Store,
    /// Who a request is signed in as, read with their person in one statement.
    pub accounts: Accounts,
    pub providers: Providers,
    pub exchanger: Exchanger,
    /// Wakes long-polling `/get-status` requests when an exchange ends.
    pub events: Arc<OperationEvents>,
    /// Per address, on `/authorize` and `/callback`.
    pub auth_limiter: Arc<RateLimiter>,
    /// Per address, on `/backchannel-logout/{provider}` (issuers' servers).
    pub issuer_logout_limiter: Arc<RateLimiter>,
    pub settings: Arc<WebSettings>,
    /// Long polls answer at once when shutdown begins.
    pub shutdown: Shutdown,
    /// Seals and opens the pre-sign-in cookie.
    pub sealer: Sealer,
}

/// The configuration the pages and handlers need, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// `server.public_url` without the trailing slash.
    pub public_url: String,
    /// The path `server.public_url` ends in, without the trailing slash: `""` when loginwith
    /// has the whole host, `"/auth"` when it is mounted there. Every link, form and redirect
    /// loginwith makes starts with it.
    pub base_path: String,
    /// The host and port the pages people open are served on (others are redirected).
    pub public_origin: PublicOrigin,
    /// `server.trusted_proxies`: peers whose forwarding headers name the client.
    pub trusted_proxies: Vec<IpNet>,
    pub poll_interval_ms: u64,
    pub poll_limit_secs: u64,
    /// How often a long poll re-reads the database.
    pub status_recheck: Duration,
    /// Also the age past which a pending operation counts as orphaned.
    pub exchange_timeout: Duration,
    /// Idle lifetime of a sign-in.
    pub remember: Duration,
    /// Absolute lifetime of a sign-in, however active.
    pub absolute: Duration,
    /// The sealed cookie a sign-in in progress lives in (`web::pre_sign_in`).
    pub pre_sign_in: PreSignInCookie,
    pub header_bytes: usize,
    pub body_bytes: usize,
    /// Send HSTS (production).
    pub hsts: bool,
    /// Where a finished sign-in may send the browser (`return_to`).
    pub return_rules: ReturnRules,
    /// What every page shares: `[site]` and the mount path (`templates/base.html`).
    pub chrome: Arc<Chrome>,
    /// `[access]`: asked again on every request that reads a sign-in, not only at sign-in.
    pub access: Access,
    /// Each provider's display name by id, for pages answered without the app's state
    /// (`/auth/check`'s 403, the `SignedIn` extractor's).
    pub provider_names: Arc<std::collections::HashMap<String, String>>,
    /// `[audit]`: whether (and how long) people's recent activity is kept.
    pub audit: crate::config::AuditConfig,
}

impl WebSettings {
    /// What the configuration says, resolved once: `access` and the providers' names are the
    /// ones the app was built with.
    pub fn from_config(
        config: &Config,
        access: Access,
        provider_names: Arc<std::collections::HashMap<String, String>>,
    ) -> Self {
        let days = |days: u32| Duration::from_secs(u64::from(days) * 86_400);
        Self {
            public_url: config.public_url().to_owned(),
            base_path: config.base_path().to_owned(),
            public_origin: PublicOrigin::new(&config.server.public_url),
            trusted_proxies: config.server.trusted_proxies.clone(),
            poll_interval_ms: config.login.poll_interval_ms,
            poll_limit_secs: config.login.poll_limit_secs,
            status_recheck: Duration::from_millis(config.login.status_recheck_ms),
            exchange_timeout: config.login.exchange_timeout(),
            remember: days(config.session.remember_days),
            absolute: days(config.session.absolute_days),
            pre_sign_in: PreSignInCookie {
                name: config.pre_sign_in_cookie_name(),
                secure: config.session.secure,
            },
            header_bytes: config.limits.header_bytes,
            body_bytes: config.limits.body_bytes,
            hsts: config.environment == Environment::Production,
            return_rules: ReturnRules {
                public_url: config.server.public_url.clone(),
                hosts: config.gateway.allowed_hosts(),
                allow_http: config.environment == Environment::Development,
            },
            chrome: Arc::new(Chrome::new(&config.brand, config.server.public_url.path())),
            access,
            provider_names,
            audit: config.audit.clone(),
        }
    }

    /// The name people know for a provider id, or the id itself.
    pub fn provider_name(&self, id: &str) -> String {
        self.provider_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// One of loginwith's own paths (`"/preloader"`) as the browser must ask for it: below
    /// [`base_path`](Self::base_path). `"/"` is loginwith's home page.
    /// The same rule as the pages' links ([`Chrome::href`]), so redirects and links agree.
    pub fn path(&self, path: &str) -> String {
        self.chrome.href(path)
    }

    /// One of loginwith's own URLs, absolute (`{public_url}{path}`), for what leaves the
    /// browser: answers to providers' servers.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// A `303 See Other` to one of loginwith's own paths (see [`path`](Self::path)).
    pub fn redirect(&self, path: &str) -> axum::response::Redirect {
        axum::response::Redirect::to(&self.path(path))
    }

    /// A `303 See Other` to a `return_to` target already checked, else loginwith's home.
    pub fn redirect_to_target(&self, target: Option<&str>) -> axum::response::Redirect {
        match target {
            Some(target) => axum::response::Redirect::to(target),
            None => self.redirect("/"),
        }
    }
}

impl AppState {
    /// The page chrome, for a page's `chrome` field.
    pub fn chrome(&self) -> Arc<Chrome> {
        self.settings.chrome.clone()
    }

    /// The name people know for a provider id (for messages), or the id itself.
    pub fn provider_name(&self, id: &str) -> String {
        self.providers
            .get(id)
            .map_or_else(|| id.to_owned(), |p| p.display_name().to_owned())
    }
}
