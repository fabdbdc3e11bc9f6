//! Facebook Login, server side (see `shared/FACEBOOK.md` for the protocol facts).

use hmac::{Hmac, Mac};
use oauth2::{AuthorizationCode, ClientSecret, CsrfToken, PkceCodeChallenge, Scope, TokenResponse};
use serde::Deserialize;
use sha2::Sha256;
use url::Url;

// Where they always lived, for code that names them through this module.
use super::{
    BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider, Unavailable,
    http::HttpClient,
    oauth::{
        OAuthClient, authorization_url, clean, exchange_code, get_json, oauth_client,
        token_failure,
    },
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

/// Facebook as a [`Provider`].
pub struct Facebook {
    /// The name in configuration: the path segment and the `provider` column.
    name: String,
    display_name: String,
    oauth: OAuthClient,
    http: HttpClient,
    me_url: Url,
    scopes: Vec<Scope>,
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
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            oauth,
            http,
            me_url,
            scopes: config.scopes.iter().cloned().map(Scope::new).collect(),
            app_secret: ClientSecret::new(config.client_secret.clone()),
            issuer: (!config.issuer.is_empty()).then(|| config.issuer.clone()),
        })
    }

    async fn fetch_profile(&self, access_token: &str) -> Result<Profile, ExchangeError> {
        let request = self
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
        let me: Me = get_json(&self.http, "/me", request).await?;
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
        })
    }
}

impl Provider for Facebook {
    fn id(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    fn brand(&self) -> Option<&'static str> {
        Some("facebook")
    }

    fn authorization_url(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        _nonce: &str,
    ) -> Result<Url, Unavailable> {
        Ok(authorization_url(
            &self.oauth,
            &self.scopes,
            state,
            challenge,
        ))
    }

    fn exchange(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async move {
            // No ID token here, so the nonce has nothing to be checked against.
            let token =
                exchange_code(&self.oauth, &self.http, code, secrets.verifier, token_failure)
                    .await?;
            // The token lives only for this call: used for /me, then dropped.
            self.fetch_profile(token.access_token().secret()).await
        })
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
