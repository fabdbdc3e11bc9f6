//! Configuration: layered, typed, validated once at start-up.
//!
//! Layers, last wins: the embedded `config/default.toml`, the embedded
//! `config/production.toml` when `LOGINWITH_ENV=production`, one optional file
//! (`--config FILE` or `LOGINWITH_CONFIG`), then `LOGINWITH_<SECTION>__<KEY>`
//! environment variables. Unknown keys are errors, so a typo never passes silently.
//! Values from the environment are read as typed (see `raw_env`): an all-digit App ID is
//! a string like any other.
//!
//! Longer than the 400 lines a file here aims for: it is the shape of every section with each
//! key documented, the reference a reader looks a key up in; the rules the values must keep are
//! in `rules.rs`, what `check` prints in `report.rs`.

mod access;
// The development provider's faults: named here, switched on by `dev_provider.fault` in test
// builds only.
#[cfg(feature = "dev-provider")]
pub(crate) mod fault;
mod gateway;
mod kind_rules;
mod one_or_many;
mod presets;
mod problems;
mod providers;
mod raw_env;
mod report;
mod rules;
mod site;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use figment::{
    Figment,
    providers::{Format, Toml},
    value::Dict,
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use url::Url;

pub use access::{AccessConditions, AccessConfig, AccessRule, parse_emails_file, read_emails_file};
// The tests' hooks: what the development provider is told to get wrong, and environments
// they make up.
#[cfg(feature = "test-support")]
pub use fault::Fault;
pub use gateway::{AllowedHost, GatewayConfig};
pub use problems::{ConfigError, Problem};
pub use providers::{
    APPLE_ISSUER, GOOGLE_ISSUER, OAuthProviderConfig, Preset, ProviderConfig, ProviderKind,
    ProvidersConfig, oidc_brand,
};
#[cfg(feature = "test-support")]
pub use raw_env::RawEnv;
#[cfg(not(feature = "test-support"))]
use raw_env::RawEnv;
#[cfg(feature = "dev-provider")]
pub(crate) use report::DEV_PROVIDER_PATH;
pub use report::DatabaseLocation;
pub use site::{
    Brand, DEFAULT_NAME, LOGO_MAX_BYTES, LoadedFile, MIN_CONTRAST, Resource, Rgb,
    STYLESHEET_MAX_BYTES, SiteConfig,
};

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
const PRODUCTION_TOML: &str = include_str!("../../config/production.toml");
/// The keys only test builds know, with their defaults.
#[cfg(feature = "test-support")]
const TEST_SUPPORT_TOML: &str = "[dev_provider]\nfault = \"none\"\n";

/// Which set of defaults and rules applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// `cargo run`: the development provider, plain HTTP on loopback, readable logs.
    Development,
    /// `LOGINWITH_ENV=production`: config/production.toml's defaults, and the rules a
    /// deployment must keep (HTTPS, `Secure` cookies, no development provider).
    Production,
}

impl Environment {
    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value {
            "" | "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            other => Err(ConfigError::one(
                "LOGINWITH_ENV",
                format!("must be \"development\" or \"production\", not {other:?}"),
            )),
        }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> Problem {
    Problem {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The whole configuration, as read from the layers (see the module docs).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: where it listens and where people reach it.
    pub server: ServerConfig,
    /// `[database]`: SQLite or PostgreSQL.
    pub database: DatabaseConfig,
    /// `[session]`: the session cookie and how long a sign-in lasts.
    pub session: SessionConfig,
    /// `[login]`: the code exchange and the preloader's polling.
    pub login: LoginConfig,
    /// `[limits]`: request sizes and per-address rates.
    pub limits: LimitsConfig,
    /// `[providers.<name>]`: Facebook, GitHub, OpenID Connect issuers.
    pub providers: ProvidersConfig,
    /// `[dev_provider]`: the built-in stand-in for Facebook (development only).
    pub dev_provider: DevProviderConfig,
    /// `[log]`: the log's format.
    pub log: LogConfig,
    /// `[metrics]`: Prometheus metrics.
    pub metrics: MetricsConfig,
    /// `[gateway]`: where a sign-in may return to.
    pub gateway: GatewayConfig,
    /// `[site]`: the deployment's own name, logo, colours and privacy contact.
    pub site: SiteConfig,
    /// `[access]`: who may sign in at all (by verified address).
    pub access: AccessConfig,
    /// `[audit]`: how long people's recent sign-in activity is kept.
    pub audit: AuditConfig,
    /// Which defaults and rules applied (`LOGINWITH_ENV`).
    #[serde(skip, default = "development")]
    pub environment: Environment,
    /// `site` checked, with its files read: filled by [`Config::from_figment`].
    #[serde(skip)]
    pub brand: Brand,
}

fn development() -> Environment {
    Environment::Development
}

/// A URL as people write it in the configuration: `http://localhost:3000`, not the
/// `http://localhost:3000/` the parsed form has (`loginwith check` prints it).
fn without_trailing_slash<S: serde::Serializer>(url: &Url, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(url.as_str().trim_end_matches('/'))
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address the HTTP server listens on.
    pub bind: SocketAddr,
    /// The address people reach loginwith at, optionally with a path it lives below. Redirect
    /// URIs are derived from it exactly: `{public_url}/callback/{provider}`.
    #[serde(serialize_with = "without_trailing_slash")]
    pub public_url: Url,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`Forwarded` is never read):
    /// addresses (a bare one is a /32 or /128) and CIDR ranges. Empty: the peer is the
    /// client, and those headers are ignored, so nobody can choose their own address.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// On SIGTERM or Ctrl-C, how long code exchanges already running are waited for before
    /// they are cut off (and recorded as failed).
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    /// `shutdown_grace_secs` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// `[audit]`: the sign-ins and refused sign-ins each person sees under "Recent activity"
/// on their account page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Days a sign-in or refusal is kept; 0 keeps none (nothing is recorded).
    pub retention_days: u32,
}

impl AuditConfig {
    /// Whether anything is recorded at all.
    pub fn records(&self) -> bool {
        self.retention_days > 0
    }

    /// `retention_days` as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 60 * 60)
    }
}

/// Prometheus metrics on a listener of their own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served; empty turns metrics off.
    pub bind: String,
}

impl MetricsConfig {
    /// The address to listen on, `None` when metrics are off (or the address is invalid,
    /// which validation refuses).
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        let bind = self.bind.trim();
        if bind.is_empty() {
            None
        } else {
            bind.parse().ok()
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
}

/// `log.format`: lines for people, or one JSON object per line for log shippers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One readable line per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created on first run) or `postgres://USER:PASSWORD@HOST/DATABASE`.
    pub url: String,
    /// The most connections this instance opens.
    pub max_connections: u32,
    /// How long to wait for a connection (at start-up and for each request).
    pub connect_timeout_secs: u64,
    /// SQLite: the room its file system should keep, in MiB, below which start-up and
    /// maintenance warn (0: never).
    pub min_free_mb: u64,
}

/// `[session]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The session cookie's name (with `__Host-` in front in production).
    pub cookie_name: String,
    /// The cookie's `Domain` (empty: host-only), so that the sign-in reaches the site's other
    /// hosts (forward authentication). See [`Config::cookie_domain`].
    pub cookie_domain: String,
    /// Whether the cookie is `Secure` (HTTPS only); required in production.
    pub secure: bool,
    /// A sign-in unused this many days ends.
    pub remember_days: u32,
    /// A sign-in ends this many days after it began, however active.
    pub absolute_days: u32,
    /// The key that seals the pre-sign-in cookie (base64 of 32 random bytes), for people who
    /// prefer configuration; empty (the default): the instances share keys they keep in the
    /// database, which `loginwith rotate-key` rotates.
    #[serde(default, serialize_with = "redacted")]
    pub sealing_key: String,
}

// Hand-written: the sealing key must never reach a log line through `{:?}`.
impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("cookie_name", &self.cookie_name)
            .field("cookie_domain", &self.cookie_domain)
            .field("secure", &self.secure)
            .field("remember_days", &self.remember_days)
            .field("absolute_days", &self.absolute_days)
            .field("sealing_key", &"[redacted]")
            .finish()
    }
}

impl SessionConfig {
    /// `sealing_key` decoded: `Ok(None)` when empty (keys from the database), `Err` naming
    /// what is wrong with it.
    pub fn sealing_key(&self) -> Result<Option<[u8; 32]>, &'static str> {
        use base64::Engine;
        let text = self.sealing_key.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "must be base64 (openssl rand -base64 32)")?;
        bytes
            .try_into()
            .map(Some)
            .map_err(|_| "must be 32 bytes, base64-encoded (openssl rand -base64 32)")
    }
}

/// `[login]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LoginConfig {
    /// How long the code exchange and profile fetch may take before the sign-in fails.
    pub exchange_timeout_secs: u64,
    /// How often the preloader asks `/get-status` (between long polls).
    pub poll_interval_ms: u64,
    /// How long the preloader keeps asking before it shows the error page.
    pub poll_limit_secs: u64,
    /// While a long poll waits, the database is re-read this often (for exchanges finishing
    /// on another instance; this instance's own wake the poll at once).
    pub status_recheck_ms: u64,
    /// An OpenID Connect issuer's discovery document and keys are fetched again this often.
    pub discovery_refresh_secs: u64,
}

impl LoginConfig {
    /// `exchange_timeout_secs` as a duration.
    pub fn exchange_timeout(&self) -> Duration {
        Duration::from_secs(self.exchange_timeout_secs)
    }

    /// `discovery_refresh_secs` as a duration.
    pub fn discovery_refresh(&self) -> Duration {
        Duration::from_secs(self.discovery_refresh_secs)
    }
}

/// Bounds on what one client, or all of them, can make the server do.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// The largest request body accepted (413 past it).
    pub body_bytes: usize,
    /// The largest request head accepted (431 past it).
    pub header_bytes: usize,
    /// Sign-ins one client address may start per minute (`/authorize`, `/callback`).
    pub auth_per_minute: u32,
    /// How many of those may come at once.
    pub auth_burst: u32,
    /// Facebook data callbacks one address may send per minute.
    pub data_callback_per_minute: u32,
    /// How many of those may come at once.
    pub data_callback_burst: u32,
    /// Back-channel logouts one address (an issuer) may send per minute.
    pub backchannel_logout_per_minute: u32,
    /// How many of those may come at once.
    pub backchannel_logout_burst: u32,
    /// Code exchanges running at once, across all clients; past it a callback answers 503.
    pub max_concurrent_exchanges: usize,
}

/// `[dev_provider]`: the built-in stand-in for Facebook and an OpenID Connect issuer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DevProviderConfig {
    /// Stand in when no provider has a `client_id` (a loopback bind and public URL only).
    pub enabled: bool,
    /// Approve every sign-in without showing the consent page.
    pub auto_approve: bool,
    /// Added to each of its answers to the server, to imitate a slow provider.
    pub latency_ms: u64,
    /// A failure to imitate: only in builds with the tests' `test-support` feature (the
    /// browser suite's binary is one), a key unknown to every other.
    #[cfg(feature = "test-support")]
    pub fault: Fault,
}

/// Where the layers come from; `from_process` fills it from the real process.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// Value of `LOGINWITH_ENV`.
    pub environment: Option<String>,
    /// `--config FILE`, else `LOGINWITH_CONFIG`.
    pub file: Option<PathBuf>,
}

impl Sources {
    /// `LOGINWITH_ENV`, and the file from the command line or else `LOGINWITH_CONFIG`.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            environment: std::env::var("LOGINWITH_ENV").ok(),
            file: file.or_else(|| {
                std::env::var_os("LOGINWITH_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            }),
        }
    }
}

impl Config {
    /// Loads every layer and validates the result.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let environment = Environment::parse(sources.environment.as_deref().unwrap_or(""))?;
        let mut figment = Self::defaults_figment();
        if environment == Environment::Production {
            figment = figment.merge(Toml::string(PRODUCTION_TOML));
        }
        if let Some(file) = &sources.file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                ConfigError::one(
                    "--config",
                    format!("cannot read {}: {e}", problems::absolute(file)),
                )
            })?;
            if let Some(problem) = problems::toml_syntax(file, &text) {
                return Err(ConfigError {
                    problems: vec![problem],
                });
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(RawEnv::prefixed("LOGINWITH_"));
        Self::from_figment(figment, environment)
    }

    /// The built-in defaults (with the production ones when `environment` is production)
    /// under the TOML `text`, validated: for an app that embeds loginwith and keeps its
    /// settings its own way.
    ///
    /// ```
    /// use loginwith::config::{Config, Environment};
    ///
    /// let config = Config::from_toml(
    ///     r#"
    ///     [server]
    ///     public_url = "http://localhost:3000/auth"
    ///     "#,
    ///     Environment::Development,
    /// )?;
    /// assert_eq!(config.base_path(), "/auth");
    /// # Ok::<(), loginwith::config::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str, environment: Environment) -> Result<Self, ConfigError> {
        let mut figment = Self::defaults_figment();
        if environment == Environment::Production {
            figment = figment.merge(Toml::string(PRODUCTION_TOML));
        }
        if let Some(problem) = problems::toml_text_syntax("the TOML given", text) {
            return Err(ConfigError {
                problems: vec![problem],
            });
        }
        Self::from_figment(figment.merge(Toml::string(text)), environment)
    }

    /// Extracts and validates; tests use it with their own layers.
    ///
    /// Lossy extraction: the environment gives every value as text, and numbers and booleans
    /// are read out of it here (string keys keep the text as it was).
    ///
    /// Unknown keys are all reported at once (with the nearest known key), then values of the
    /// wrong type, then every rule a value breaks.
    pub fn from_figment(figment: Figment, environment: Environment) -> Result<Self, ConfigError> {
        let known: Dict = Self::defaults_figment()
            .extract()
            .map_err(|e| ConfigError::one("built-in defaults", e.to_string()))?;
        let given: Dict = figment.extract().map_err(|e| ConfigError {
            problems: problems::from_figment_error(&figment, e),
        })?;
        let unknown = problems::unknown_keys(&figment, &given, &known);
        if !unknown.is_empty() {
            return Err(ConfigError { problems: unknown });
        }
        let mut config: Config = figment.extract_lossy().map_err(|e| ConfigError {
            problems: problems::from_figment_error(&figment, e),
        })?;
        config.environment = environment;
        let mut problems = config.problems();
        // Reads the logo and stylesheet files: once, here, for `serve` and `check` alike.
        match config.site.load(environment == Environment::Development) {
            Ok(brand) => config.brand = brand,
            Err(site) => problems.extend(site),
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The embedded defaults alone, as a starting point for tests and tools.
    pub fn defaults_figment() -> Figment {
        let defaults = Figment::from(Toml::string(DEFAULT_TOML));
        #[cfg(feature = "test-support")]
        let defaults = defaults.merge(Toml::string(TEST_SUPPORT_TOML));
        defaults
    }

    /// Whether the development provider stands in for Facebook: it is enabled and no
    /// provider has a `client_id`. It lets anyone sign in as anyone, so validation only
    /// allows it on a loopback address, at a loopback public URL.
    pub fn uses_dev_provider(&self) -> bool {
        self.dev_provider.enabled && self.providers.enabled().next().is_none()
    }

    /// The session cookie's name: in production with the `__Host-` prefix, which browsers
    /// only accept with `Secure`, `Path=/` and no `Domain` (so no subdomain can plant one).
    /// A cookie shared with a domain (`session.cookie_domain`) cannot be `__Host-`: it takes
    /// `__Secure-`, which still makes browsers refuse it from plain http, but lets any host of
    /// the domain set one (see SECURITY.md).
    pub fn cookie_name(&self) -> String {
        match (self.environment, self.cookie_domain()) {
            (Environment::Production, None) => format!("__Host-{}", self.session.cookie_name),
            (Environment::Production, Some(_)) => format!("__Secure-{}", self.session.cookie_name),
            (Environment::Development, _) => self.session.cookie_name.clone(),
        }
    }

    /// The pre-sign-in cookie's name (`web::PreSignInCookie`): the session cookie's name with
    /// `_signin` after it, and `__Host-` in front whenever the cookies are `Secure` (always
    /// in production), also when the session cookie is shared with a domain, so that no other
    /// host can ever set it.
    pub fn pre_sign_in_cookie_name(&self) -> String {
        let name = format!("{}_signin", self.session.cookie_name);
        if self.session.secure {
            format!("__Host-{name}")
        } else {
            name
        }
    }

    /// `session.cookie_domain` as the cookie's `Domain`: lower case, without a leading dot
    /// (browsers ignore it), `None` when empty (a host-only cookie).
    pub fn cookie_domain(&self) -> Option<String> {
        let domain = self.session.cookie_domain.trim().trim_start_matches('.');
        (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
    }

    /// The path `server.public_url` ends in, without its trailing slash: `""` when loginwith
    /// has the whole host, `"/auth"` when it lives below `/auth`.
    pub fn base_path(&self) -> &str {
        self.server.public_url.path().trim_end_matches('/')
    }

    /// `server.public_url` without its trailing slash: what every URL loginwith makes for
    /// browsers and providers starts with (`http://localhost:3000`, `https://example.com/auth`).
    pub fn public_url(&self) -> &str {
        self.server.public_url.as_str().trim_end_matches('/')
    }

    /// One of loginwith's own URLs as browsers and providers reach it: `{public_url}{path}`,
    /// `path` starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url())
    }

    /// `{public_url}/`: where an issuer sends the browser back after ending its session
    /// there (`sign_out_at_provider`): the post-logout redirect URI registered at it.
    pub fn post_logout_redirect_uri(&self) -> String {
        self.url("/")
    }

    /// `{public_url}/backchannel-logout/{provider}`: where an OpenID Connect issuer posts
    /// its logout tokens (Back-Channel Logout 1.0).
    pub fn backchannel_logout_uri(&self, provider: &str) -> String {
        self.url(&format!("/backchannel-logout/{provider}"))
    }

    /// `{public_url}/callback/{provider}`: the exact redirect URI registered at the provider.
    pub fn redirect_uri(&self, provider: &str) -> String {
        self.url(&format!("/callback/{provider}"))
    }
}

/// A secret, as `check` prints it: whether it is set, never what it is.
fn redacted<S: Serializer>(secret: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.is_empty() { "" } else { "[redacted]" })
}

/// A string key that also takes a bare TOML integer as its digits (`client_id = 1234567890`).
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Text;

    impl de::Visitor<'_> for Text {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_u128<E: de::Error>(self, value: u128) -> Result<String, E> {
            Ok(value.to_string())
        }

        fn visit_i128<E: de::Error>(self, value: i128) -> Result<String, E> {
            Ok(value.to_string())
        }
    }

    deserializer.deserialize_any(Text)
}

/// `server.trusted_proxies`: a list of addresses and CIDR ranges, or one of them as a bare
/// string (`LOGINWITH_SERVER__TRUSTED_PROXIES=10.0.0.1`; blank means none). An entry that is
/// neither refuses start-up, named in the error.
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    one_or_many::one_or_many(
        deserializer,
        "a list of IP addresses and CIDR ranges",
        network,
    )
}

/// One entry of `server.trusted_proxies`: `10.0.0.0/8`, `2001:db8::/32`, or an address.
fn network(entry: &str) -> Result<IpNet, String> {
    let text = entry.trim();
    text.parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{entry:?} is not an IP address or CIDR range (such as 10.0.0.1 or 10.0.0.0/8)")
        })
}
