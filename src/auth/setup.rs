//! From the configuration to the providers: one [`Provider`] per enabled `[providers.<name>]`,
//! in button order, and the [`FacebookApp`] that Facebook's own calls to the site are checked
//! against when a Facebook-kind provider is among them.
//!
//! The one place that knows which kind is built how: adding a provider kind touches its own
//! file, the configuration and the `match` in [`configured_providers`], nothing else.

use std::{sync::Arc, time::Duration};

use tracing::warn;

use super::{
    Provider,
    discord::Discord,
    facebook::{Facebook, FacebookApp},
    github::{GitHub, GitHubSettings},
    http::HttpClient,
    oidc::{
        Dialect, Oidc, OidcSettings, SetupError,
        apple::AppleSecret,
        entra::Tenancy,
        discovery::{self, DiscoveryError},
    },
    x::X,
};
use crate::config::{Config, OAuthProviderConfig, ProviderConfig, ProviderKind};

/// The providers a configuration names, ready to sign people in.
pub struct ConfiguredProviders {
    /// In button order: the local stand-ins first, then `[providers.*]` as written.
    pub providers: Vec<Arc<dyn Provider>>,
    /// The first Facebook-kind provider's app; `None` without one, and then the site has no
    /// Data Deletion or Deauthorize callback at all.
    pub facebook_app: Option<FacebookApp>,
}

/// Clients of providers that this very server serves (the development stand-in): built like
/// configured ones, except that the issuer is discovered only in the background, since it
/// answers once the server runs.
pub struct LocalClients {
    /// The Facebook imitation, under the provider name `facebook`.
    pub facebook: OAuthProviderConfig,
    /// The OpenID Connect issuer.
    pub oidc: OidcSettings,
    /// Sign in with Apple's imitation, under the provider name `apple`.
    pub apple: OidcSettings,
}

/// Why a provider could not be built: each names the configuration key to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderSetupError {
    /// A provider's endpoint is not a URL.
    #[error("providers.{name}: {source}")]
    Url {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// What is wrong with the URL.
        source: url::ParseError,
    },
    /// An OpenID Connect issuer cannot be set up.
    #[error("providers.{name}.issuer: {source}")]
    Oidc {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// Why.
        source: SetupError,
    },
    /// A discovery document naming another issuer is a configuration mistake: refused. (An
    /// issuer that cannot be reached is not: the app starts and keeps trying.)
    #[error("providers.{name}.issuer: {source}")]
    Discovery {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// What discovery found.
        source: DiscoveryError,
    },
    /// Sign in with Apple's key cannot be read or is no P-256 key.
    #[error("providers.{name}.{key}: {reason}")]
    AppleKey {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// `private_key_file` or `private_key`.
        key: &'static str,
        /// Why (never the key's text).
        reason: String,
    },
    /// A provider kind this build leaves out.
    #[error("providers.{name}.kind: kind = \"{kind}\" is not available in this build")]
    KindNotAvailable {
        /// The provider's name in `[providers.<name>]`.
        name: String,
        /// The kind asked for.
        kind: &'static str,
    },
}

/// Builds every provider the configuration enables, after the `local` stand-ins when there
/// are any. OpenID Connect issuers are discovered now when they answer (see [`oidc`]).
pub async fn configured_providers(
    config: &Config,
    http: &HttpClient,
    local: Option<LocalClients>,
) -> Result<ConfiguredProviders, ProviderSetupError> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut facebook_app = None;
    if let Some(local) = local {
        let name = "facebook";
        facebook_app = Some(FacebookApp::new(name, &local.facebook.client_secret));
        providers.push(facebook(config, name, "Facebook", &local.facebook, http)?);
        providers.push(local_oidc(config, local.oidc, http)?);
        providers.push(local_oidc(config, local.apple, http)?);
    }
    for (name, provider) in config.providers.enabled() {
        let kind = provider.kind();
        let display_name = provider.display_name();
        match (kind, provider.oauth()) {
            (Some(ProviderKind::Facebook), Some(oauth)) => {
                facebook_app.get_or_insert_with(|| FacebookApp::new(name, &oauth.client_secret));
                providers.push(facebook(config, name, display_name, &oauth, http)?);
            }
            (Some(ProviderKind::Github), Some(oauth)) => {
                providers.push(github(config, name, display_name, oauth, http)?);
            }
            (Some(ProviderKind::X), Some(oauth)) => {
                let redirect = config.redirect_uri(name);
                let client = X::new(name, display_name, oauth, &redirect, http.clone())
                    .map_err(|source| url_error(name, source))?;
                providers.push(Arc::new(client));
            }
            (Some(ProviderKind::Discord), Some(oauth)) => {
                let redirect = config.redirect_uri(name);
                let client = Discord::new(name, display_name, oauth, &redirect, http.clone())
                    .map_err(|source| url_error(name, source))?;
                providers.push(Arc::new(client));
            }
            (Some(ProviderKind::Oidc | ProviderKind::Microsoft | ProviderKind::Apple), _) => {
                providers.push(oidc(config, name, provider, http).await?);
            }
            // Validation has refused unknown kinds.
            _ => {
                return Err(ProviderSetupError::KindNotAvailable {
                    name: name.to_owned(),
                    kind: kind.map_or("unknown", ProviderKind::name),
                });
            }
        }
    }
    Ok(ConfiguredProviders {
        providers,
        facebook_app,
    })
}

fn url_error(name: &str, source: url::ParseError) -> ProviderSetupError {
    ProviderSetupError::Url {
        name: name.to_owned(),
        source,
    }
}

impl OidcSettings {
    /// The settings of the issuer `[providers.<name>]` configures.
    pub fn from_config(config: &Config, name: &str, provider: &ProviderConfig) -> Self {
        Self {
            name: name.to_owned(),
            display_name: provider.display_name().to_owned(),
            // Validation requires it for this kind.
            issuer: provider.issuer(),
            client_id: provider.client_id.clone(),
            client_secret: provider.client_secret.clone(),
            scopes: provider.scopes(),
            redirect_uri: config.redirect_uri(name),
            hosted_domain: provider.hosted_domain().map(str::to_owned),
            groups_claim: provider.groups_claim().map(str::to_owned),
            sign_out_at_provider: provider.sign_out_at_provider,
            client_secret_in_body: provider.preset().is_some_and(|p| p.client_secret_in_body),
            dialect: match provider.kind() {
                Some(ProviderKind::Microsoft) => Dialect::Microsoft(Tenancy::new(
                    provider.tenant(),
                    provider.tenants.as_deref().unwrap_or_default(),
                )),
                _ => Dialect::Standard,
            },
        }
    }

    /// [`OidcSettings::from_config`] of a `kind = "apple"` table, with its signing key read
    /// (from `private_key_file`, or `private_key`).
    pub fn apple_from_config(
        config: &Config,
        name: &str,
        provider: &ProviderConfig,
    ) -> Result<Self, ProviderSetupError> {
        let error = |key, reason: String| ProviderSetupError::AppleKey {
            name: name.to_owned(),
            key,
            reason,
        };
        let (key, pem) = match provider.private_key.as_deref().filter(|k| !k.is_empty()) {
            Some(text) => ("private_key", text.to_owned()),
            None => {
                let path = provider.private_key_file.clone().unwrap_or_default();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| error("private_key_file", format!("{}: {e}", path.display())))?;
                ("private_key_file", text)
            }
        };
        let secret = AppleSecret::new(
            provider.team_id.as_deref().unwrap_or_default(),
            provider.key_id.as_deref().unwrap_or_default(),
            &provider.client_id,
            &pem,
        )
        .map_err(|e| error(key, e.to_string()))?;
        Ok(Self {
            dialect: Dialect::Apple(secret),
            ..Self::from_config(config, name, provider)
        })
    }
}

fn facebook(
    config: &Config,
    name: &str,
    display_name: &str,
    oauth: &OAuthProviderConfig,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, ProviderSetupError> {
    let client = Facebook::new(
        name,
        display_name,
        oauth,
        &config.redirect_uri(name),
        http.clone(),
    )
    .map_err(|source| ProviderSetupError::Url {
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
) -> Result<Arc<dyn Provider>, ProviderSetupError> {
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
        GitHub::new(settings, http.clone()).map_err(|source| ProviderSetupError::Url {
            name: name.to_owned(),
            source,
        })?;
    Ok(Arc::new(
        client
            .named(name, display_name)
            .reading_membership(config.access.reads_github_membership()),
    ))
}

/// An OpenID Connect issuer, discovered now if it answers, and kept fresh in the background:
/// one issuer being down must not take the site down, so an unreachable one only warns (its
/// sign-ins show a "cannot reach" page until a retry succeeds), while a document naming
/// another issuer refuses the start.
async fn oidc(
    config: &Config,
    name: &str,
    provider: &ProviderConfig,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, ProviderSetupError> {
    let settings = if provider.kind() == Some(ProviderKind::Apple) {
        OidcSettings::apple_from_config(config, name, provider)?
    } else {
        OidcSettings::from_config(config, name, provider)
    };
    let display_name = settings.display_name.clone();
    let client = Oidc::new(settings, http.clone()).map_err(|source| ProviderSetupError::Oidc {
        name: name.to_owned(),
        source,
    })?;
    let refresh = config.login.discovery_refresh();
    let next = match client.rediscover().await {
        Ok(()) => refresh,
        Err(source @ DiscoveryError::OtherIssuer(_)) => {
            return Err(ProviderSetupError::Discovery {
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

/// A local issuer's client, discovered like any issuer's but only in the background: the
/// issuer is this very server, which answers once it serves, so discovering here, before
/// returning, would wait on itself. The first attempt goes out at once and waits in the bound
/// socket's backlog until then.
fn local_oidc(
    config: &Config,
    settings: OidcSettings,
    http: &HttpClient,
) -> Result<Arc<dyn Provider>, ProviderSetupError> {
    let name = settings.name.clone();
    let client = Oidc::new(settings, http.clone())
        .map_err(|source| ProviderSetupError::Oidc { name, source })?;
    discovery::keep_fresh(&client, Duration::ZERO, config.login.discovery_refresh());
    Ok(client)
}

/// `loginwith check`: one discovery attempt at each enabled OpenID Connect issuer, as start-up
/// makes it; a line per issuer, and `Err` when any failed.
pub async fn check_issuers(config: &Config) -> Result<Vec<String>, Vec<String>> {
    let http = HttpClient::new(config.login.exchange_timeout())
        .map_err(|e| vec![format!("HTTP client: {e}")])?;
    let mut lines = Vec::new();
    let mut failed = false;
    for (name, provider) in config.providers.enabled() {
        if !provider.kind().is_some_and(ProviderKind::is_openid_connect) {
            continue;
        }
        let settings = if provider.kind() == Some(ProviderKind::Apple) {
            match OidcSettings::apple_from_config(config, name, provider) {
                Ok(settings) => settings,
                Err(e) => {
                    failed = true;
                    lines.push(e.to_string());
                    continue;
                }
            }
        } else {
            OidcSettings::from_config(config, name, provider)
        };
        let issuer = settings.issuer.clone();
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
