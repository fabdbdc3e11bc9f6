//! Facebook Login, server side (the protocol facts it relies on: `docs/providers/facebook.md`).

use crate::model::ProviderBrand;
use std::{future::Future, sync::Arc};

use hmac::{Hmac, Mac};
use oauth2::{ClientSecret, Scope};
use serde::Deserialize;
use sha2::Sha256;
use url::Url;

use super::{
    ExchangeError, FailureReason, Profile,
    signed_request::{self, SignedRequest, SignedRequestError},
    http::HttpClient,
    oauth::{OAuthApp, PlainOAuth, clean, get_json, oauth_client},
};
use crate::config::OAuthProviderConfig;

/// The fields `/me` answers with when asked for `id,email,first_name,last_name`.
#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// A Facebook app, as Facebook's own calls to the site see it: the Data Deletion and
/// Deauthorize requests it signs with the app secret. It exists only when a Facebook-kind
/// provider is configured (or the development provider stands in for one), and only then does
/// the site answer those callbacks.
#[derive(Clone)]
pub struct FacebookApp {
    /// The provider whose identities the callbacks name: `[providers.<name>]`.
    provider: Arc<str>,
    secret: Arc<ClientSecret>,
}

impl FacebookApp {
    /// The app of the provider named `provider`, whose requests are signed with `app_secret`.
    pub fn new(provider: &str, app_secret: &str) -> Self {
        Self {
            provider: Arc::from(provider),
            secret: Arc::new(ClientSecret::new(app_secret.to_owned())),
        }
    }

    /// The provider name its people's identities are kept under.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The person a `signed_request` names, if this app signed it (and not long ago).
    pub fn verify(&self, signed_request: &str) -> Result<SignedRequest, SignedRequestError> {
        signed_request::verify(signed_request, self.secret.secret())
    }
}

/// Facebook as a [`Provider`](super::Provider).
pub struct Facebook {
    app: OAuthApp,
    me_url: Url,
    /// Kept apart from `oauth` to compute `appsecret_proof`.
    app_secret: ClientSecret,
    /// RFC 9207 `iss`, for servers that send it (Facebook does not).
    issuer: Option<String>,
}

impl Facebook {
    /// Builds the client from configuration for the provider named `name`
    /// (`[providers.<name>]`). `redirect_uri` is `{public_url}/callback/{name}`.
    pub fn new(
        name: &str,
        display_name: &str,
        config: &OAuthProviderConfig,
        redirect_uri: &str,
        http: HttpClient,
    ) -> Result<Self, url::ParseError> {
        let oauth = oauth_client(
            &config.client_id,
            &config.client_secret,
            config.authorize_url.clone(),
            config.token_url.clone(),
            redirect_uri,
        )?;
        let mut me_url = config.api_url.clone();
        me_url
            .path_segments_mut()
            .map_err(|()| url::ParseError::RelativeUrlWithCannotBeABaseBase)?
            .pop_if_empty()
            .push("me");
        Ok(Self {
            app: OAuthApp {
                name: name.to_owned(),
                display_name: display_name.to_owned(),
                oauth,
                scopes: config.scopes.iter().cloned().map(Scope::new).collect(),
                http,
            },
            me_url,
            app_secret: ClientSecret::new(config.client_secret.clone()),
            issuer: (!config.issuer.is_empty()).then(|| config.issuer.clone()),
        })
    }

    /// `/me`, with the `appsecret_proof` Facebook asks servers for.
    async fn fetch_me(&self, access_token: &str) -> Result<Profile, ExchangeError> {
        let request = self
            .app
            .http
            .reqwest()
            .get(self.me_url.clone())
            .query(&[
                ("fields", "id,email,first_name,last_name"),
                (
                    "appsecret_proof",
                    &appsecret_proof(&self.app_secret, access_token),
                ),
            ])
            // In a header rather than the URL, so it cannot end up in an access log.
            .bearer_auth(access_token);
        let me: Me = get_json(&self.app.http, "/me", request).await?;
        let id = me.id.trim();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ExchangeError::new(
                FailureReason::InvalidResponse,
                "/me: missing or malformed id",
            ));
        }
        Ok(Profile {
            provider_user_id: id.to_owned(),
            first_name: clean(me.first_name).unwrap_or_default(),
            last_name: clean(me.last_name).unwrap_or_default(),
            email: clean(me.email),
            // Facebook does not say whether it verified the address.
            email_verified: false,
            issuer: None,
            membership: Default::default(),
            provider_sid: None,
            names_withheld: false,
        })
    }
}

impl PlainOAuth for Facebook {
    const BRAND: ProviderBrand = ProviderBrand::Facebook;

    fn app(&self) -> &OAuthApp {
        &self.app
    }

    fn callback_issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    fn fetch_profile(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<Profile, ExchangeError>> + Send {
        self.fetch_me(access_token)
    }
}

/// `hex(HMAC-SHA256(key = app secret, message = access token))`, as Graph API calls from a
/// server should carry.
pub fn appsecret_proof(app_secret: &ClientSecret, access_token: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_hmac_sha256_hex() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let proof = appsecret_proof(
            &ClientSecret::new("Jefe".to_owned()),
            "what do ya want for nothing?",
        );
        assert_eq!(
            proof,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
