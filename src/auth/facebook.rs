//! Facebook Login, server side (see `shared/FACEBOOK.md` for the protocol facts).

use hmac::{Hmac, Mac};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
    basic::{
        BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
        BasicTokenType,
    },
    http::{HeaderValue, StatusCode, header::CONTENT_TYPE},
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

use super::{
    BoxFuture, CallFailure, ExchangeError, FailureReason, Profile, Provider,
    http::{HttpClient, HttpError, StatusRecorder, error_chain},
};
use crate::config::OAuthProviderConfig;

/// Longest name or email we keep; anything longer is cut, not refused.
const MAX_FIELD_CHARS: usize = 200;

/// A provider's error body: Facebook's `{"error":{"message","type","code",...}}` or RFC 6749's
/// `{"error":"invalid_grant","error_description":...}` (what other servers speaking Facebook's
/// protocol, and Facebook's own OAuth layer at times, answer).
///
/// Used as the oauth2 client's error type, so a refused code arrives as
/// `RequestTokenError::ServerResponse` instead of an unreadable standard error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphErrorResponse {
    pub error: ErrorBody,
    /// RFC 6749's explanation beside a string `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The `error` member, in either form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorBody {
    Graph(GraphError),
    /// RFC 6749's error code: `invalid_grant`, `invalid_client`, ...
    Code(String),
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
        match &self.error {
            ErrorBody::Graph(e) => {
                write!(f, "{} code {}", excerpt(&e.kind, 50), e.code)?;
                if let Some(sub) = e.error_subcode {
                    write!(f, "/{sub}")?;
                }
                write!(f, ": {}", excerpt(&e.message, 200))
            }
            ErrorBody::Code(code) => {
                write!(f, "{}", excerpt(code, 50))?;
                match &self.error_description {
                    Some(description) => write!(f, ": {}", excerpt(description, 200)),
                    None => Ok(()),
                }
            }
        }
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
    /// The name in configuration: the path segment and the `provider` column.
    name: String,
    display_name: String,
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
    /// Builds the client from configuration for the provider named `name`
    /// (`[providers.<name>]`). `redirect_uri` is `{public_url}/callback/{name}`.
    pub fn new(
        name: &str,
        display_name: &str,
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

    async fn fetch_code_token(
        &self,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) -> Result<BasicTokenResponse, ExchangeError> {
        let http = StatusRecorder::new(&self.http);
        let token = self
            .oauth
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .map_err(|error| token_failure(http.status(), error))?;
        check_token(&token)?;
        Ok(token)
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
        let (status, headers, body) = self
            .http
            .send(request)
            .await
            .map_err(|e| http_failure("/me", &e))?;
        if !status.is_success() {
            return Err(error_answer("/me", status, &body));
        }
        if !is_json(headers.get(CONTENT_TYPE)) {
            return Err(ExchangeError::new(
                FailureReason::InvalidResponse,
                format!("/me: HTTP {status} that is not JSON"),
            ));
        }
        // Where, not what: serde's message may quote the body.
        let me: Me = serde_json::from_slice(&body).map_err(|e| {
            ExchangeError::new(
                FailureReason::InvalidResponse,
                format!(
                    "/me: unreadable answer ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
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

/// A call that brought back no answer we could look at.
fn http_failure(endpoint: &str, error: &HttpError) -> ExchangeError {
    ExchangeError::new(
        FailureReason::of(CallFailure::Http(error)),
        format!("{endpoint}: {}", excerpt(&error_chain(error), 200)),
    )
}

/// An error answer (not a success), named by its status and whether its body is an OAuth or
/// Graph error; the log gets the error's gist or the start of the body.
fn error_answer(endpoint: &str, status: StatusCode, body: &[u8]) -> ExchangeError {
    let parsed = serde_json::from_slice::<GraphErrorResponse>(body);
    let detail = match &parsed {
        Ok(error) => error.to_string(),
        Err(_) => excerpt(&String::from_utf8_lossy(body), 200),
    };
    let failure = CallFailure::Answer {
        status,
        oauth_error: parsed.is_ok(),
    };
    ExchangeError::new(
        FailureReason::of(failure),
        format!("{endpoint}: HTTP {status}: {detail}"),
    )
}

/// A failed token request; `status` is its answer's, when one came.
fn token_failure(
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, GraphErrorResponse>,
) -> ExchangeError {
    let (oauth_error, detail) = match error {
        RequestTokenError::Request(http) => return http_failure("token endpoint", &http),
        RequestTokenError::ServerResponse(refusal) => (true, refusal.to_string()),
        // Only an error's body is logged: a success's may hold a token.
        RequestTokenError::Parse(_, body) if status.is_some_and(|s| !s.is_success()) => {
            (false, excerpt(&String::from_utf8_lossy(&body), 200))
        }
        RequestTokenError::Parse(e, _) => (
            false,
            format!(
                "unreadable answer at {}",
                excerpt(&e.path().to_string(), 100)
            ),
        ),
        RequestTokenError::Other(text) => (false, excerpt(&text, 200)),
    };
    match status {
        Some(status) => ExchangeError::new(
            FailureReason::of(CallFailure::Answer {
                status,
                oauth_error,
            }),
            format!("token endpoint: HTTP {status}: {detail}"),
        ),
        // oauth2 gave up before sending anything: it could not build the request.
        None => ExchangeError::new(FailureReason::Internal, format!("token endpoint: {detail}")),
    }
}

/// A token answer we can use: a non-empty access token of type bearer (oauth2 has already
/// lower-cased `token_type`, so `Bearer` and `BEARER` pass).
fn check_token(token: &BasicTokenResponse) -> Result<(), ExchangeError> {
    if token.access_token().secret().trim().is_empty() {
        return Err(ExchangeError::new(
            FailureReason::InvalidResponse,
            "token endpoint: empty access_token",
        ));
    }
    if *token.token_type() != BasicTokenType::Bearer {
        return Err(ExchangeError::new(
            FailureReason::InvalidResponse,
            format!(
                "token endpoint: token_type {:?} is not bearer",
                excerpt(token.token_type().as_ref(), 50)
            ),
        ));
    }
    Ok(())
}

/// Whether a success's content type is JSON: `application/json`, `application/*+json` or
/// Facebook's legacy `text/javascript`, in any case, parameters allowed. An answer without
/// one is read as JSON, as oauth2 reads the token endpoint's.
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence == "text/javascript"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
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

/// Provider text fit for one log line: control characters (line breaks included) become
/// spaces, and at most `max_chars` characters are kept.
fn excerpt(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let mut kept: String = chars
        .by_ref()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
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

    #[test]
    fn both_forms_of_error_body_are_oauth_errors() {
        let rfc: GraphErrorResponse = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"The code was already used."}"#,
        )
        .unwrap();
        assert_eq!(rfc.to_string(), "invalid_grant: The code was already used.");
        let bare: GraphErrorResponse =
            serde_json::from_str(r#"{"error":"invalid_client"}"#).unwrap();
        assert_eq!(bare.to_string(), "invalid_client");
        for not_an_error in [r#"{"error":5}"#, r#"{"message":"x"}"#, "<html>", ""] {
            assert!(
                serde_json::from_str::<GraphErrorResponse>(not_an_error).is_err(),
                "{not_an_error}"
            );
        }
    }

    #[test]
    fn only_a_non_empty_bearer_token_of_any_case_is_usable() {
        let token = |json: &str| serde_json::from_str::<BasicTokenResponse>(json).unwrap();
        for usable in ["bearer", "Bearer", "BEARER"] {
            let answer = token(&format!(
                r#"{{"access_token":"EAA1","token_type":"{usable}"}}"#
            ));
            assert!(check_token(&answer).is_ok(), "{usable}");
        }
        for unusable in [
            r#"{"access_token":"EAA1","token_type":"mac"}"#,
            r#"{"access_token":"EAA1","token_type":"pop"}"#,
            r#"{"access_token":"","token_type":"bearer"}"#,
            r#"{"access_token":"  ","token_type":"bearer"}"#,
        ] {
            let failure = check_token(&token(unusable)).unwrap_err();
            assert_eq!(failure.reason, FailureReason::InvalidResponse, "{unusable}");
            assert!(!failure.detail.contains("EAA1"), "{}", failure.detail);
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let is = |value: &str| is_json(Some(&HeaderValue::from_str(value).unwrap()));
        for json in [
            "application/json",
            "application/json; charset=UTF-8",
            "Application/JSON",
            "application/problem+json",
            "text/javascript; charset=UTF-8",
        ] {
            assert!(is(json), "{json}");
        }
        for other in [
            "text/html",
            "text/html; charset=utf-8",
            "text/plain",
            "application/xml",
            "application/jsonp",
            "json",
        ] {
            assert!(!is(other), "{other}");
        }
        assert!(
            is_json(None),
            "no content type reads as JSON, as oauth2 does"
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("a\nb\r\tc", 10), "a b  c");
        assert_eq!(excerpt(&"é".repeat(300), 200).chars().count(), 201);
        assert_eq!(excerpt("short", 200), "short");
    }
}
