//! The development provider mounted in the app: what `cargo run` signs in with when no
//! provider is configured. It registers the app's two clients with itself (a Facebook app and
//! an OpenID Connect client, each with a secret random for the run), and hands the app the
//! client settings that point at it and the routes to mount at [`DEV_PROVIDER_PATH`].

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use tracing::warn;
use url::Url;

use super::{
    DevOidc, DevOidcSettings, DevProvider, DevProviderSettings, Faults, OIDC_PATH,
    apple::{APPLE_PATH, DevApple},
    random_secret,
};
use crate::{
    auth::{
        LocalClients,
        oidc::{Dialect, OidcSettings},
    },
    config::{Config, DEV_PROVIDER_PATH, OAuthProviderConfig},
};

/// The development app's id; its secret is random for each run.
const CLIENT_ID: &str = "loginwith-dev-app";
/// The OpenID Connect mode: the provider name (`/authorize/dev-oidc`), its button's name and
/// the client id registered there (its secret is random too).
const OIDC_NAME: &str = "dev-oidc";
const OIDC_DISPLAY_NAME: &str = "Dev OpenID";
const OIDC_CLIENT_ID: &str = "loginwith-dev-oidc";
/// The Apple mode: the provider name and button, the Services ID, and the team and key ids
/// the client secret is signed under (the key is random for each run).
const APPLE_NAME: &str = "apple";
const APPLE_DISPLAY_NAME: &str = "Apple";
const APPLE_CLIENT_ID: &str = "dev.loginwith.web";
const APPLE_TEAM_ID: &str = "DEVTEAM123";
const APPLE_KEY_ID: &str = "DEVKEY4567";

/// The stand-in, ready to mount.
pub struct StandIn {
    /// The clients the app signs in with, pointing here.
    pub clients: LocalClients,
    /// The provider's routes at [`DEV_PROVIDER_PATH`], to merge into the app's (below its
    /// base path, with its layers).
    pub router: Router,
}

impl StandIn {
    /// The stand-in for an app whose server listens on `local_addr`: server-to-server calls go
    /// straight to that socket, browsers to `server.public_url`. Says loudly, once, that
    /// anyone who reaches the server can sign in as anyone.
    pub fn new(config: &Config, local_addr: SocketAddr) -> Result<Self, url::ParseError> {
        let public = config.public_url();
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
        let secret = random_secret();
        let issuer = format!("{public}{DEV_PROVIDER_PATH}");
        let dev = DevProvider::new(
            DevProviderSettings {
                client_id: CLIENT_ID.to_owned(),
                client_secret: secret.clone(),
                redirect_uris: vec![config.redirect_uri("facebook")],
                auto_approve: config.dev_provider.auto_approve,
                issuer: Some(issuer.clone()),
            },
            Faults {
                latency: Duration::from_millis(config.dev_provider.latency_ms),
                // Fault injection is for the tests alone: no other build knows the key.
                #[cfg(feature = "test-support")]
                fault: config.dev_provider.fault,
                #[cfg(not(feature = "test-support"))]
                fault: super::Fault::None,
            },
        );
        let facebook = OAuthProviderConfig {
            client_id: CLIENT_ID.to_owned(),
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
        // The issuer is named by the listening socket, where the app discovers it and calls
        // its token, userinfo and keys endpoints; browsers only visit its authorization
        // endpoint.
        let oidc_secret = random_secret();
        let oidc_issuer = format!("{internal}{OIDC_PATH}");
        let dev_oidc = DevOidc::new(DevOidcSettings {
            issuer: oidc_issuer.clone(),
            authorization_endpoint: format!("{public}{DEV_PROVIDER_PATH}{OIDC_PATH}/authorize"),
            client_id: OIDC_CLIENT_ID.to_owned(),
            client_secret: oidc_secret.clone(),
            redirect_uris: vec![config.redirect_uri(OIDC_NAME)],
            auto_approve: config.dev_provider.auto_approve,
        });
        let oidc = OidcSettings {
            name: OIDC_NAME.to_owned(),
            display_name: OIDC_DISPLAY_NAME.to_owned(),
            issuer: oidc_issuer,
            client_id: OIDC_CLIENT_ID.to_owned(),
            client_secret: oidc_secret,
            scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
            redirect_uri: config.redirect_uri(OIDC_NAME),
            hosted_domain: None,
            groups_claim: None,
            sign_out_at_provider: false,
            client_secret_in_body: false,
            dialect: Default::default(),
        };
        // Sign in with Apple's stand-in: the same consent page, answering as Apple does.
        let (dev_apple, apple_key) =
            DevApple::generate(APPLE_TEAM_ID, APPLE_KEY_ID, APPLE_CLIENT_ID);
        let apple_issuer = format!("{internal}{APPLE_PATH}");
        let apple_issuer_router = DevOidc::with_apple(
            DevOidcSettings {
                issuer: apple_issuer.clone(),
                authorization_endpoint: format!(
                    "{public}{DEV_PROVIDER_PATH}{APPLE_PATH}/authorize"
                ),
                client_id: APPLE_CLIENT_ID.to_owned(),
                client_secret: String::new(),
                redirect_uris: vec![config.redirect_uri(APPLE_NAME)],
                auto_approve: config.dev_provider.auto_approve,
            },
            Some(dev_apple),
        )
        .router();
        let apple = OidcSettings {
            name: APPLE_NAME.to_owned(),
            display_name: APPLE_DISPLAY_NAME.to_owned(),
            issuer: apple_issuer,
            client_id: APPLE_CLIENT_ID.to_owned(),
            client_secret: String::new(),
            scopes: ["name", "email"].map(str::to_owned).to_vec(),
            redirect_uri: config.redirect_uri(APPLE_NAME),
            hosted_domain: None,
            groups_claim: None,
            sign_out_at_provider: false,
            client_secret_in_body: false,
            dialect: Dialect::Apple(apple_key.secret),
        };
        // Loud on purpose: anyone who reaches this address can sign in as anyone.
        warn!(
            "the development provider stands in for Facebook at {public}{DEV_PROVIDER_PATH}, and for an OpenID Connect issuer ({OIDC_NAME}) at {public}{DEV_PROVIDER_PATH}/oidc (its issuer name is {}, the address this server reaches itself at): anyone who reaches {} can sign in as any person they type; set providers.facebook.client_id for a real app",
            oidc.issuer, config.server.bind,
        );
        if config.dev_provider.auto_approve {
            warn!(
                "dev_provider.auto_approve is on: the development provider approves every sign-in without asking"
            );
        }
        Ok(Self {
            clients: LocalClients {
                facebook,
                oidc,
                apple,
            },
            router: Router::new().nest(
                DEV_PROVIDER_PATH,
                dev.router()
                    .nest(OIDC_PATH, dev_oidc.router())
                    .nest(APPLE_PATH, apple_issuer_router),
            ),
        })
    }
}
