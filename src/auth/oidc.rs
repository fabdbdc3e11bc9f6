//! Any OpenID Connect issuer (see `shared/PROVIDERS.md`, "openidconnect 4.1.0"): endpoints and
//! keys from discovery at start-up, the authorization-code flow with PKCE and a nonce, the ID
//! token checked (the crate's checks plus `iat` and `azp`), userinfo when the ID token lacks
//! the name or the address.

use std::time::Duration;

use oauth2::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthenticationFlow, DiscoveryError, IssuerUrl, Nonce,
    ProviderMetadata, SubjectIdentifier, TokenResponse as _, UserInfoError,
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
        CoreGrantType, CoreIdTokenClaims, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
        CoreSubjectIdentifierType, CoreTokenResponse, CoreUserInfoClaims,
    },
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider,
    http::{HttpClient, HttpError, StatusRecorder, error_chain},
    oauth::{clean, excerpt, http_failure, token_failure},
};

/// How far in the future an ID token's `iat` may be: clocks drift, a minute is plenty.
const IAT_LEEWAY: Duration = Duration::from_secs(60);

/// The discovery member openidconnect's core metadata lacks: RFC 9207's promise that the
/// issuer names itself in `iss` on every authorization response.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IssParameter {
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for IssParameter {}

/// Core provider metadata plus [`IssParameter`].
type Metadata = ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as discovery leaves it: authorization endpoint set, token and userinfo
/// endpoints set when advertised.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How this app is registered at an issuer.
#[derive(Clone)]
pub struct OidcSettings {
    /// The configured name (`/authorize/{name}`) and the name on its button.
    pub name: String,
    pub display_name: String,
    /// Exactly as configured: discovery must name the same issuer byte for byte.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `openid` is added when missing.
    pub scopes: Vec<String>,
    /// `{public_url}/callback/{name}`, exactly as registered.
    pub redirect_uri: String,
}

/// Why an issuer could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("issuer {0:?} is not a URL")]
    Issuer(String),
    #[error("redirect URI: {0}")]
    RedirectUri(url::ParseError),
    #[error("discovery failed: {0}")]
    Discovery(String),
}

/// An OpenID Connect issuer as a [`Provider`].
pub struct Oidc {
    client: OidcClient,
    http: HttpClient,
    client_id: ClientId,
    scopes: Vec<Scope>,
    /// The issuer, which an `iss` on the callback must name (RFC 9207)...
    callback_issuer: String,
    /// ...and must be there when the issuer advertises sending it.
    issuer_required: bool,
    name: String,
    display_name: String,
}

impl Oidc {
    /// Fetches the issuer's discovery document and keys (openidconnect refuses a document
    /// naming another issuer) and builds the client.
    pub async fn discover(settings: OidcSettings, http: HttpClient) -> Result<Self, SetupError> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|_| SetupError::Issuer(settings.issuer.clone()))?;
        let metadata = Metadata::discover_async(issuer, &http)
            .await
            .map_err(|e| SetupError::Discovery(discovery_detail(&e)))?;
        let issuer_required = metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported;
        let callback_issuer = settings.issuer.clone();
        let client_id = ClientId::new(settings.client_id);
        let client = CoreClient::from_provider_metadata(
            metadata,
            client_id.clone(),
            Some(ClientSecret::new(settings.client_secret)),
        )
        .set_redirect_uri(
            RedirectUrl::new(settings.redirect_uri).map_err(SetupError::RedirectUri)?,
        );
        Ok(Self {
            client,
            http,
            client_id,
            // The client adds `openid` itself; repeating it would send it twice.
            scopes: settings
                .scopes
                .into_iter()
                .filter(|s| s != "openid")
                .map(Scope::new)
                .collect(),
            callback_issuer,
            issuer_required,
            name: settings.name,
            display_name: settings.display_name,
        })
    }

    async fn fetch_code_token(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> Result<CoreTokenResponse, ExchangeError> {
        let request = self.client.exchange_code(code).map_err(|_| {
            ExchangeError::new(
                FailureReason::Internal,
                "discovery advertised no token endpoint",
            )
        })?;
        let http = StatusRecorder::new(&self.http);
        request
            .set_pkce_verifier(secrets.verifier)
            .request_async(&http)
            .await
            .map_err(|error| token_failure(http.status(), error))
    }

    /// The ID token's claims once every check has passed.
    fn verified_claims(
        &self,
        token: &CoreTokenResponse,
        nonce: &str,
    ) -> Result<CoreIdTokenClaims, ExchangeError> {
        let id_token = token.id_token().ok_or_else(|| invalid("no id_token"))?;
        let verifier = self
            .client
            .id_token_verifier()
            // The crate leaves `iat` alone: a token issued in the future is forged or from a
            // clock we should not trust.
            .set_issue_time_verifier_fn(|iat| {
                let latest = chrono::Utc::now() + IAT_LEEWAY;
                if iat > latest {
                    Err(format!("iat {iat} is in the future"))
                } else {
                    Ok(())
                }
            });
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .map_err(|e| invalid(format!("id_token: {}", excerpt(&error_chain(&e), 200))))?;
        check_authorized_party(claims, &self.client_id)?;
        Ok(claims.clone())
    }

    /// Userinfo, whose `sub` openidconnect checks against the ID token's.
    async fn fetch_userinfo(
        &self,
        token: &CoreTokenResponse,
        subject: &SubjectIdentifier,
    ) -> Result<Option<CoreUserInfoClaims>, ExchangeError> {
        let Ok(request) = self
            .client
            .user_info(token.access_token().clone(), Some(subject.clone()))
        else {
            // No userinfo endpoint: the ID token is all there is.
            return Ok(None);
        };
        request
            .request_async(&self.http)
            .await
            .map(Some)
            .map_err(|e| userinfo_failure(&e))
    }
}

impl Provider for Oidc {
    fn id(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn brand(&self) -> Option<&'static str> {
        // Google's colours and mark only for Google's own issuer.
        self.issuer().and_then(crate::config::oidc_brand)
    }

    fn authorization_url(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        nonce: &str,
    ) -> Url {
        let state = state.clone();
        let nonce = Nonce::new(nonce.to_owned());
        let (url, _, _) = self
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || state,
                move || nonce,
            )
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge.clone())
            .url();
        url
    }

    fn issuer(&self) -> Option<&str> {
        Some(&self.callback_issuer)
    }

    fn issuer_required(&self) -> bool {
        self.issuer_required
    }

    fn exchange(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async move {
            let nonce = secrets.nonce.clone();
            let token = self.fetch_code_token(code, secrets).await?;
            let claims = self.verified_claims(&token, &nonce)?;
            let mut profile = profile_from_id_token(&claims);
            // The ID token may carry only `sub` (oidc-provider's default): the rest is in
            // userinfo.
            let incomplete = profile.first_name.is_empty() || profile.email.is_none();
            if incomplete
                && let Some(userinfo) = self.fetch_userinfo(&token, claims.subject()).await?
            {
                fill_from_userinfo(&mut profile, &userinfo);
            }
            Ok(profile)
        })
    }
}

/// `azp`, which openidconnect does not check: when present it must be us, or the token was
/// issued to another client.
fn check_authorized_party(
    claims: &CoreIdTokenClaims,
    client_id: &ClientId,
) -> Result<(), ExchangeError> {
    match claims.authorized_party() {
        Some(azp) if azp != client_id => Err(invalid(format!(
            "id_token: azp {:?} is another client",
            excerpt(azp, 50)
        ))),
        _ => Ok(()),
    }
}

/// The person from the ID token: `sub` is the identity (stable, never reused), never the
/// address.
fn profile_from_id_token(claims: &CoreIdTokenClaims) -> Profile {
    let (first_name, last_name) = names(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
    );
    let email = clean(claims.email().map(|e| e.to_string()));
    Profile {
        provider_user_id: claims.subject().to_string(),
        first_name,
        last_name,
        email_verified: email.is_some() && claims.email_verified() == Some(true),
        email,
    }
}

/// Fills what the ID token left empty from userinfo (already checked to be the same `sub`).
fn fill_from_userinfo(profile: &mut Profile, userinfo: &CoreUserInfoClaims) {
    if profile.first_name.is_empty() {
        let (first, last) = names(
            userinfo
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            userinfo
                .family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            userinfo
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        );
        profile.first_name = first;
        profile.last_name = last;
    }
    if profile.email.is_none() {
        profile.email = clean(userinfo.email().map(|e| e.to_string()));
        profile.email_verified = profile.email.is_some() && userinfo.email_verified() == Some(true);
    }
}

/// `given_name`/`family_name` when given, else `name` split at its first space.
fn names(given: Option<String>, family: Option<String>, name: Option<String>) -> (String, String) {
    match (clean(given), clean(family), clean(name)) {
        (Some(first), last, _) => (first, last.unwrap_or_default()),
        (None, Some(last), _) => (String::new(), last),
        (None, None, Some(name)) => match name.split_once(char::is_whitespace) {
            Some((first, rest)) => (first.to_owned(), rest.trim().to_owned()),
            None => (name, String::new()),
        },
        (None, None, None) => (String::new(), String::new()),
    }
}

fn invalid(detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(FailureReason::InvalidResponse, detail)
}

/// A failed userinfo call, named like every other provider call.
fn userinfo_failure(error: &UserInfoError<HttpError>) -> ExchangeError {
    match error {
        UserInfoError::Request(http) => http_failure("userinfo", http),
        UserInfoError::Response(status, _, _) => ExchangeError::new(
            FailureReason::of(super::CallFailure::Answer {
                status: *status,
                oauth_error: false,
            }),
            format!("userinfo: HTTP {status}"),
        ),
        // A different `sub`, an unreadable body: the answer cannot be used.
        other => invalid(format!("userinfo: {}", excerpt(&error_chain(other), 200))),
    }
}

/// One line naming why discovery failed, without a body.
fn discovery_detail(error: &DiscoveryError<HttpError>) -> String {
    match error {
        DiscoveryError::Response(status, _, _) => format!("HTTP {status}"),
        other => excerpt(&error_chain(other), 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_prefer_given_and_family_then_split_name() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            names(s("Ada"), s("Lovelace"), s("X Y")),
            ("Ada".into(), "Lovelace".into())
        );
        assert_eq!(
            names(None, None, s("Ada King Lovelace")),
            ("Ada".into(), "King Lovelace".into())
        );
        assert_eq!(names(None, None, None), (String::new(), String::new()));
    }
}
