//! Facebook Login, server side (see `shared/FACEBOOK.md` for the protocol facts).

use hmac::{Hmac, Mac};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
    basic::{BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse},
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

use super::{
    BoxFuture, ExchangeError, FailureReason, Profile, Provider,
    http::{HttpClient, HttpError, error_chain},
};
use crate::config::OAuthProviderConfig;

/// Longest name or email we keep; anything longer is cut, not refused.
const MAX_FIELD_CHARS: usize = 200;

/// Facebook's error body: `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
///
/// Used as the oauth2 client's error type, so a refused code arrives as
/// `RequestTokenError::ServerResponse` instead of an unreadable standard error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphErrorResponse {
    pub error: GraphError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

impl std::fmt::Display for GraphErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.error;
        write!(f, "{} code {}", e.kind, e.code)?;
        if let Some(sub) = e.error_subcode {
            write!(f, "/{sub}")?;
        }
        write!(f, ": {}", truncate(&e.message, 200))
    }
}

impl oauth2::ErrorResponse for GraphErrorResponse {}

/// The oauth2 client with Facebook's error type, the auth and token endpoints set.
type FacebookClient = Client<
    GraphErrorResponse,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

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
    oauth: FacebookClient,
    http: HttpClient,
    me_url: Url,
    scopes: Vec<Scope>,
    /// Kept apart from `oauth` to compute `appsecret_proof`.
    app_secret: ClientSecret,
    /// RFC 9207 `iss`, for servers that send it (Facebook does not).
    issuer: Option<String>,
}

impl Facebook {
    /// Builds the client from configuration. `redirect_uri` is `{public_url}/callback/facebook`.
    pub fn new(
        config: &OAuthProviderConfig,
        redirect_uri: &str,
        http: HttpClient,
    ) -> Result<Self, url::ParseError> {
        let oauth = Client::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.clone()))
            // Facebook takes the client credentials as parameters, not HTTP Basic.
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned())?);
        let mut me_url = config.api_url.clone();
        me_url
            .path_segments_mut()
            .map_err(|()| url::ParseError::RelativeUrlWithCannotBeABaseBase)?
            .pop_if_empty()
            .push("me");
        Ok(Self {
            oauth,
            http,
            me_url,
            scopes: config.scopes.iter().cloned().map(Scope::new).collect(),
            app_secret: ClientSecret::new(config.client_secret.clone()),
            issuer: (!config.issuer.is_empty()).then(|| config.issuer.clone()),
        })
    }

    async fn fetch_code_token(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> Result<BasicTokenResponse, ExchangeError> {
        self.oauth
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                RequestTokenError::ServerResponse(refusal) => {
                    ExchangeError::new(FailureReason::Denied, format!("token endpoint: {refusal}"))
                }
                RequestTokenError::Request(http) => http_failure("token endpoint", http),
                // The body is not logged: a 200 that failed to parse may hold a token.
                RequestTokenError::Parse(e, _) => ExchangeError::new(
                    FailureReason::InvalidResponse,
                    format!("token endpoint: unreadable answer at {}", e.path()),
                ),
                RequestTokenError::Other(text) => ExchangeError::new(
                    FailureReason::ProviderError,
                    format!("token endpoint: {}", truncate(&text, 200)),
                ),
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
        let (status, _, body) = self
            .http
            .send(request)
            .await
            .map_err(|e| http_failure("/me", e))?;
        if !status.is_success() {
            let detail = match serde_json::from_slice::<GraphErrorResponse>(&body) {
                Ok(graph) => format!("/me: HTTP {status}: {graph}"),
                Err(_) => format!(
                    "/me: HTTP {status}: {}",
                    truncate(&String::from_utf8_lossy(&body), 200)
                ),
            };
            return Err(ExchangeError::new(FailureReason::ProviderError, detail));
        }
        let me: Me = serde_json::from_slice(&body).map_err(|e| {
            ExchangeError::new(
                FailureReason::InvalidResponse,
                format!("/me: unreadable answer: {e}"),
            )
        })?;
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
        })
    }
}

impl Provider for Facebook {
    fn id(&self) -> &'static str {
        "facebook"
    }

    fn display_name(&self) -> &'static str {
        "Facebook"
    }

    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    fn authorization_url(&self, state: &CsrfToken, challenge: &PkceCodeChallenge) -> Url {
        let state = state.clone();
        let (url, _) = self
            .oauth
            .authorize_url(move || state)
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge.clone())
            .url();
        url
    }

    fn exchange(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async move {
            let token = self.fetch_code_token(code, verifier).await?;
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

fn http_failure(endpoint: &str, error: HttpError) -> ExchangeError {
    let reason = match &error {
        HttpError::Timeout => FailureReason::Timeout,
        HttpError::Connect(_) => FailureReason::Unreachable,
        HttpError::TooLarge => FailureReason::InvalidResponse,
        HttpError::Transport(_) => FailureReason::ProviderError,
    };
    ExchangeError::new(reason, format!("{endpoint}: {}", error_chain(&error)))
}

/// Trims, drops control characters, caps the length; `None` when nothing is left.
fn clean(value: Option<String>) -> Option<String> {
    let value: String = value?
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect();
    (!value.is_empty()).then_some(value)
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
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

    #[test]
    fn clean_trims_strips_and_caps() {
        assert_eq!(clean(Some("  Ada\u{7}  ".into())), Some("Ada".into()));
        assert_eq!(clean(Some("   ".into())), None);
        assert_eq!(clean(None), None);
        assert_eq!(clean(Some("x".repeat(500))).map(|s| s.len()), Some(200));
    }

    #[test]
    fn graph_errors_display_without_the_whole_message() {
        let e: GraphErrorResponse = serde_json::from_str(
            r#"{"error":{"message":"This authorization code has been used.","type":"OAuthException","code":100,"error_subcode":36009,"fbtrace_id":"A"}}"#,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "OAuthException code 100/36009: This authorization code has been used."
        );
    }
}
