//! Discord, server side (the protocol facts: `docs/providers/discord.md`): plain OAuth 2.0
//! with PKCE, the client authenticated with HTTP Basic at the token endpoint, and the person
//! from the API's `GET /users/@me` (scopes `identify email`).

use std::future::Future;

use oauth2::AuthType;
use serde::Deserialize;
use url::Url;

use super::{
    ExchangeError, Profile,
    http::HttpClient,
    oauth::{OAuthApp, PlainOAuth, below, clean, names_or_handle},
};
use crate::{config::OAuthProviderConfig, model::ProviderBrand};

/// `/users/@me`: only what we keep. `id` is a snowflake (a 64-bit number written as a string)
/// and permanent; `username` can be changed, so it is never the identity.
#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    username: Option<String>,
    /// The display name people chose; absent or null when they kept their username.
    #[serde(default)]
    global_name: Option<String>,
    /// With the `email` scope; absent without it, null for an account without one.
    #[serde(default)]
    email: Option<String>,
    /// Whether Discord has verified that address.
    #[serde(default)]
    verified: Option<bool>,
}

/// Discord as a [`Provider`](super::Provider).
pub struct Discord {
    app: OAuthApp,
    me_url: Url,
}

impl Discord {
    /// Under `name` (the path segment) and `display_name`, registered as `oauth` says, with
    /// the exact `redirect_uri`; the client authenticates with HTTP Basic, as Discord's
    /// documentation does.
    pub fn new(
        name: &str,
        display_name: &str,
        oauth: OAuthProviderConfig,
        redirect_uri: &str,
        http: HttpClient,
    ) -> Result<Self, url::ParseError> {
        let me_url = below(&oauth.api_url, &["users", "@me"])?;
        let app = OAuthApp::new(
            name,
            display_name,
            oauth,
            redirect_uri,
            AuthType::BasicAuth,
            http,
        )?;
        Ok(Self { app, me_url })
    }

    async fn fetch_user(&self, access_token: &str) -> Result<Profile, ExchangeError> {
        let user: User = self
            .app
            .get_json("/users/@me", &self.me_url, access_token)
            .await?;
        Ok(profile(user))
    }
}

impl PlainOAuth for Discord {
    const BRAND: ProviderBrand = ProviderBrand::Discord;

    fn app(&self) -> &OAuthApp {
        &self.app
    }

    fn fetch_profile(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<Profile, ExchangeError>> + Send {
        self.fetch_user(access_token)
    }
}

/// The person: the snowflake, the display name (else the username) as the first name, and the
/// address only when Discord has verified it.
fn profile(user: User) -> Profile {
    let (first_name, last_name) = names_or_handle(user.global_name, user.username);
    let email = if user.verified == Some(true) {
        clean(user.email)
    } else {
        None
    };
    Profile {
        provider_user_id: user.id,
        first_name,
        last_name,
        email_verified: email.is_some(),
        email,
        issuer: None,
        membership: Default::default(),
        provider_sid: None,
        names_withheld: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(json: &str) -> User {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_display_name_greets_and_only_a_verified_address_is_taken() {
        let nelly = profile(user(
            r#"{"id":"80351110224678912","username":"nelly","discriminator":"0","global_name":"Nelly 🎈","avatar":null,"verified":true,"email":"nelly@discord.example","flags":64}"#,
        ));
        assert_eq!(nelly.provider_user_id, "80351110224678912");
        assert_eq!(nelly.first_name, "Nelly");
        assert_eq!(nelly.last_name, "🎈");
        assert_eq!(nelly.email.as_deref(), Some("nelly@discord.example"));
        assert!(nelly.email_verified);
        let unverified = profile(user(
            r#"{"id":"1","username":"nelly","global_name":null,"verified":false,"email":"nelly@discord.example"}"#,
        ));
        assert_eq!(unverified.first_name, "nelly");
        assert_eq!(unverified.email, None);
        assert!(!unverified.email_verified);
        let no_email_scope = profile(user(r#"{"id":"1","username":"nelly"}"#));
        assert_eq!(no_email_scope.email, None);
    }
}
