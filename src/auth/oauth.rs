//! What every OAuth 2.0 provider client shares: the error body type for oauth2, reading a
//! JSON answer, and naming a failed call with [`FailureReason::of`] (status first, then body).
//! Provider text that reaches the log goes through [`excerpt`]; a token never does.
//!
//! Longer than the 400 lines a file here aims for: it is the one client every plain OAuth
//! provider runs through (the authorization URL, the token request, the JSON read, the naming
//! of every failure), kept whole so that Facebook, GitHub and the next kind cannot drift
//! apart; each provider's own file holds only what differs.

use crate::model::ProviderBrand;
use std::future::Future;

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
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

use super::{
    BoxFuture, CallFailure, ExchangeError, FailureReason, LoginSecrets, Profile, Provider,
    Unavailable,
    http::{HttpClient, HttpError, MAX_RESPONSE_BYTES, StatusRecorder, error_chain},
};

/// The oauth2 client of a plain OAuth 2.0 provider (Facebook, GitHub): the shared error body
/// type, the authorization and token endpoints set.
pub(crate) type OAuthClient = Client<
    TokenErrorResponse,
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

/// The client for an app registered as `client_id`/`client_secret`, sending its credentials
/// as parameters of the token request (both Facebook and GitHub document it so), with the
/// exact registered redirect URI.
pub(crate) fn oauth_client(
    client_id: &str,
    client_secret: &str,
    authorize_url: Url,
    token_url: Url,
    redirect_uri: &str,
) -> Result<OAuthClient, url::ParseError> {
    Ok(Client::new(ClientId::new(client_id.to_owned()))
        .set_client_secret(ClientSecret::new(client_secret.to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::from_url(authorize_url))
        .set_token_uri(TokenUrl::from_url(token_url))
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned())?))
}

/// The dialog URL for this `state` and PKCE challenge, asking for `scopes`.
pub(crate) fn authorization_url(
    client: &OAuthClient,
    scopes: &[Scope],
    state: &CsrfToken,
    challenge: &PkceCodeChallenge,
) -> Url {
    let state = state.clone();
    let (url, _) = client
        .authorize_url(move || state)
        .add_scopes(scopes.iter().cloned())
        .set_pkce_challenge(challenge.clone())
        .url();
    url
}

/// A plain OAuth 2.0 provider's registration: the names configuration gives it, its oauth2
/// client and scopes, and the HTTP client its calls go through.
pub(crate) struct OAuthApp {
    /// The name in configuration: the path segment and the `provider` column.
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) oauth: OAuthClient,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) http: HttpClient,
}

impl OAuthApp {
    /// The registration `oauth` describes, under `name` and `display_name`, the client
    /// authenticating at the token endpoint as `auth` says, with the exact `redirect_uri`.
    pub(crate) fn new(
        name: &str,
        display_name: &str,
        oauth: crate::config::OAuthProviderConfig,
        redirect_uri: &str,
        auth: AuthType,
        http: HttpClient,
    ) -> Result<Self, url::ParseError> {
        let client = oauth_client(
            &oauth.client_id,
            &oauth.client_secret,
            oauth.authorize_url,
            oauth.token_url,
            redirect_uri,
        )?
        .set_auth_type(auth);
        Ok(Self {
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            oauth: client,
            scopes: oauth.scopes.into_iter().map(Scope::new).collect(),
            http,
        })
    }

    /// A GET of the provider's API at `url` with the access token, its JSON answer read
    /// ([`get_json`]); `endpoint` names the call in the log.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        url: &Url,
        access_token: &str,
    ) -> Result<T, ExchangeError> {
        let request = self.http.reqwest().get(url.clone()).bearer_auth(access_token);
        get_json(&self.http, endpoint, request).await
    }
}

/// What a plain OAuth 2.0 provider (no ID token, no discovery: Facebook, GitHub) adds to the
/// code flow they all share: its brand, its reading of a refused token request, and how it
/// fetches the profile with the access token. [`Provider`] follows from it.
pub(crate) trait PlainOAuth: Send + Sync + 'static {
    /// The brand whose colours and mark its button wears.
    const BRAND: ProviderBrand;

    fn app(&self) -> &OAuthApp;

    /// The RFC 9207 issuer it sends on the callback, if it has one.
    fn callback_issuer(&self) -> Option<&str> {
        None
    }

    /// Names a refused or unreadable token answer.
    fn token_refusal(
        status: Option<StatusCode>,
        error: RequestTokenError<HttpError, TokenErrorResponse>,
    ) -> ExchangeError {
        token_failure(status, error)
    }

    /// The person, with the access token (used for this call only, then dropped).
    fn fetch_profile(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<Profile, ExchangeError>> + Send;
}

impl<P: PlainOAuth> Provider for P {
    fn id(&self) -> &str {
        &self.app().name
    }

    fn display_name(&self) -> &str {
        &self.app().display_name
    }

    fn brand(&self) -> Option<ProviderBrand> {
        Some(P::BRAND)
    }

    fn issuer(&self) -> Option<&str> {
        self.callback_issuer()
    }

    fn authorization_url(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        _nonce: &str,
    ) -> Result<Url, Unavailable> {
        let app = self.app();
        Ok(authorization_url(&app.oauth, &app.scopes, state, challenge))
    }

    fn exchange(
        &self,
        code: AuthorizationCode,
        secrets: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async move {
            // No ID token here, so the nonce has nothing to be checked against.
            let app = self.app();
            let verifier = secrets.verifier;
            let token =
                exchange_code(&app.oauth, &app.http, code, verifier, P::token_refusal).await?;
            // The token lives only for this call: used for the profile, then dropped.
            self.fetch_profile(token.access_token().secret()).await
        })
    }
}

/// The token request of a plain OAuth 2.0 provider: swaps `code` with its PKCE verifier and
/// keeps the answer only if it is a usable bearer token. `failure` names a refused or
/// unreadable answer ([`token_failure`], or a provider's own reading of its quirks).
pub(crate) async fn exchange_code(
    client: &OAuthClient,
    http: &HttpClient,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
    failure: impl FnOnce(
        Option<StatusCode>,
        RequestTokenError<HttpError, TokenErrorResponse>,
    ) -> ExchangeError,
) -> Result<BasicTokenResponse, ExchangeError> {
    let recorder = StatusRecorder::new(http);
    let token = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&recorder)
        .await
        .map_err(|error| failure(recorder.status(), error))?;
    check_token(&token)?;
    Ok(token)
}

/// Longest name or email we keep; anything longer is cut, not refused.
pub(crate) const MAX_FIELD_CHARS: usize = 200;

/// Any plain OAuth provider's error body, whichever of the two forms it takes: RFC 6749's
/// `{"error":"invalid_grant","error_description":...}` (GitHub, and Facebook's own OAuth
/// layer at times) or Facebook's Graph form `{"error":{"message","type","code",...}}`.
///
/// Used as the oauth2 client's error type, so a refused code arrives as
/// `RequestTokenError::ServerResponse` instead of an unreadable standard error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenErrorResponse {
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

impl std::fmt::Display for TokenErrorResponse {
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

impl oauth2::ErrorResponse for TokenErrorResponse {}

/// Sends a GET of a provider's API and reads its JSON answer: an error status, an answer that
/// is not labelled JSON or that does not parse ends as the failure that names it. `endpoint`
/// names the call in the log.
pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &HttpClient,
    endpoint: &str,
    request: reqwest::RequestBuilder,
) -> Result<T, ExchangeError> {
    Ok(get_json_page(http, endpoint, request, MAX_RESPONSE_BYTES)
        .await?
        .0)
}

/// [`get_json`] of an answer of at most `max_bytes`, with its headers (a paged list's `Link`
/// is among them).
pub(crate) async fn get_json_page<T: DeserializeOwned>(
    http: &HttpClient,
    endpoint: &str,
    request: reqwest::RequestBuilder,
    max_bytes: usize,
) -> Result<(T, reqwest::header::HeaderMap), ExchangeError> {
    let (status, headers, body) = http
        .send_limited(request, max_bytes)
        .await
        .map_err(|e| http_failure(endpoint, &e))?;
    if !status.is_success() {
        return Err(error_answer(endpoint, status, &body));
    }
    if !is_json(headers.get(CONTENT_TYPE)) {
        return Err(ExchangeError::new(
            FailureReason::InvalidResponse,
            format!("{endpoint}: HTTP {status} that is not JSON"),
        ));
    }
    // Where, not what: serde's message may quote the body.
    let value = serde_json::from_slice(&body).map_err(|e| {
        ExchangeError::new(
            FailureReason::InvalidResponse,
            format!(
                "{endpoint}: unreadable answer ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok((value, headers))
}

/// A call that brought back no answer we could look at.
pub(crate) fn http_failure(endpoint: &str, error: &HttpError) -> ExchangeError {
    ExchangeError::new(
        FailureReason::of(CallFailure::Http(error)),
        format!("{endpoint}: {}", excerpt(&error_chain(error), 200)),
    )
}

/// An error answer (not a success), named by its status and whether its body is an OAuth or
/// Graph error; the log gets the error's gist or the start of the body.
pub(crate) fn error_answer(endpoint: &str, status: StatusCode, body: &[u8]) -> ExchangeError {
    let parsed = serde_json::from_slice::<TokenErrorResponse>(body);
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

/// A failed token request; `status` is its answer's, when one came. Generic over the
/// error body's type, so OpenID Connect's standard error response is named the same way.
pub(crate) fn token_failure<E: oauth2::ErrorResponse + std::fmt::Display>(
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, E>,
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
    // RFC 6749, section 5.2: the provider refused this site's own credentials. Nothing the
    // person did or can retry: the operator's to fix, and the log says where to look.
    let client_refused = oauth_error
        && ["invalid_client", "unauthorized_client"]
            .iter()
            .any(|code| detail.split([':', ' ']).next() == Some(*code));
    match status {
        Some(status) if client_refused => ExchangeError::new(
            FailureReason::Internal,
            format!(
                "token endpoint: HTTP {status}: {detail} (the provider refused this site's client credentials: check its client_id and client_secret, or for Apple team_id, key_id and the key)"
            ),
        ),
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
pub(crate) fn check_token(token: &BasicTokenResponse) -> Result<(), ExchangeError> {
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
pub(crate) fn is_json(content_type: Option<&HeaderValue>) -> bool {
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
pub(crate) fn clean(value: Option<String>) -> Option<String> {
    let value: String = value?
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect();
    (!value.is_empty()).then_some(value)
}

/// First and last name from a provider's one free-form `name` (GitHub, X, Discord), or the
/// handle as the first name when there is no name: people are greeted by something.
pub(crate) fn names_or_handle(name: Option<String>, handle: Option<String>) -> (String, String) {
    match clean(name) {
        Some(name) => split_name(&name),
        None => (clean(handle).unwrap_or_default(), String::new()),
    }
}

/// A provider's one free-form `name`: the first word is the first name, the rest the last.
fn split_name(name: &str) -> (String, String) {
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_owned(), rest.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// `base` with `segments` appended to its path.
pub(crate) fn below(base: &Url, segments: &[&str]) -> Result<Url, url::ParseError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| url::ParseError::RelativeUrlWithCannotBeABaseBase)?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Provider text fit for one log line: control characters (line breaks included) become
/// spaces, and at most `max_chars` characters are kept.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
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
    fn clean_trims_strips_and_caps() {
        assert_eq!(clean(Some("  Ada\u{7}  ".into())), Some("Ada".into()));
        assert_eq!(clean(Some("   ".into())), None);
        assert_eq!(clean(None), None);
        assert_eq!(clean(Some("x".repeat(500))).map(|s| s.len()), Some(200));
    }

    #[test]
    fn graph_errors_display_without_the_whole_message() {
        let e: TokenErrorResponse = serde_json::from_str(
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
        let rfc: TokenErrorResponse = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"The code was already used."}"#,
        )
        .unwrap();
        assert_eq!(rfc.to_string(), "invalid_grant: The code was already used.");
        let bare: TokenErrorResponse =
            serde_json::from_str(r#"{"error":"invalid_client"}"#).unwrap();
        assert_eq!(bare.to_string(), "invalid_client");
        for not_an_error in [r#"{"error":5}"#, r#"{"message":"x"}"#, "<html>", ""] {
            assert!(
                serde_json::from_str::<TokenErrorResponse>(not_an_error).is_err(),
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
