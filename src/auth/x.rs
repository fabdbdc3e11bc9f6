//! X (Twitter), server side (the protocol facts: `docs/providers/x.md`): OAuth 2.0 with PKCE,
//! which X requires, the confidential client authenticated with HTTP Basic at the token
//! endpoint, and the person from the v2 API's `GET /2/users/me`.

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

/// The scope that lets an app read the person's confirmed address (granted to an app by X,
/// not to every one).
const EMAIL_SCOPE: &str = "users.email";

/// `/2/users/me`'s answer: the user under `data` (an answer with only `errors` does not
/// parse, and ends as an answer we cannot read).
#[derive(Debug, Deserialize)]
struct Answer {
    data: User,
}

/// Only what we keep. `id` is numeric (written as a string) and permanent; `username` (the
/// @handle) can be changed, so it is never the identity.
#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    /// Asked for with `user.fields=confirmed_email` when the app has `users.email`: an
    /// address X has confirmed.
    #[serde(default)]
    confirmed_email: Option<String>,
}

/// X as a [`Provider`](super::Provider).
pub struct X {
    app: OAuthApp,
    me_url: Url,
}

impl X {
    /// Under `name` (the path segment) and `display_name`, registered as `oauth` says, with
    /// the exact `redirect_uri`; the client authenticates with HTTP Basic, the only way X's
    /// token endpoint takes a confidential client's credentials.
    pub fn new(
        name: &str,
        display_name: &str,
        oauth: OAuthProviderConfig,
        redirect_uri: &str,
        http: HttpClient,
    ) -> Result<Self, url::ParseError> {
        let mut me_url = below(&oauth.api_url, &["users", "me"])?;
        if oauth.scopes.iter().any(|s| s == EMAIL_SCOPE) {
            me_url
                .query_pairs_mut()
                .append_pair("user.fields", "confirmed_email");
        }
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
        let answer: Answer = self
            .app
            .get_json("/2/users/me", &self.me_url, access_token)
            .await?;
        Ok(profile(answer.data))
    }
}

impl PlainOAuth for X {
    const BRAND: ProviderBrand = ProviderBrand::X;

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

/// The person: the numeric id, the name split in two (or the @handle when there is no name),
/// and the confirmed address when X gave one.
fn profile(user: User) -> Profile {
    let (first_name, last_name) = names_or_handle(user.name, user.username);
    let email = clean(user.confirmed_email);
    Profile {
        provider_user_id: user.id,
        first_name,
        last_name,
        // X names the field "confirmed": it sent mail there and it was answered.
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

    fn read(json: &str) -> Profile {
        profile(serde_json::from_str::<Answer>(json).unwrap().data)
    }

    #[test]
    fn the_id_is_the_identity_and_a_confirmed_address_is_verified() {
        let dev = read(
            r#"{"data":{"id":"2244994945","name":"X <b>Dev</b>","username":"XDevelopers","confirmed_email":"dev@x.example"}}"#,
        );
        assert_eq!(dev.provider_user_id, "2244994945");
        assert_eq!((dev.first_name.as_str(), dev.last_name.as_str()), ("X", "<b>Dev</b>"));
        assert_eq!(dev.email.as_deref(), Some("dev@x.example"));
        assert!(dev.email_verified);
        let no_email = read(r#"{"data":{"id":"1","username":"XDevelopers"}}"#);
        assert_eq!(no_email.first_name, "XDevelopers");
        assert_eq!(no_email.email, None);
        assert!(!no_email.email_verified);
        assert!(
            serde_json::from_str::<Answer>(
                r#"{"errors":[{"title":"Not Found Error","type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn the_address_is_asked_for_only_with_the_email_scope() {
        let x = |scopes: &[&str]| {
            let url = |u: &str| Url::parse(u).unwrap();
            X::new(
                "x",
                "X",
                OAuthProviderConfig {
                    client_id: "id".into(),
                    client_secret: "secret".into(),
                    authorize_url: url("https://x.com/i/oauth2/authorize"),
                    token_url: url("https://api.x.com/2/oauth2/token"),
                    api_url: url("https://api.x.com/2"),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    issuer: String::new(),
                },
                "https://example.com/callback/x",
                HttpClient::new(std::time::Duration::from_secs(1)).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(
            x(&["users.read", "tweet.read"]).me_url.as_str(),
            "https://api.x.com/2/users/me"
        );
        assert_eq!(
            x(&["users.read", "tweet.read", "users.email"]).me_url.as_str(),
            "https://api.x.com/2/users/me?user.fields=confirmed_email"
        );
    }
}
