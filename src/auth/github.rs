//! GitHub (OAuth App), server side (see `shared/PROVIDERS.md`, "GitHub", for the protocol
//! facts): plain OAuth 2.0 with PKCE, the profile from the REST API's `/user` and
//! `/user/emails`.

use std::future::Future;

use oauth2::{RequestTokenError, Scope, http::StatusCode};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use url::Url;

use super::{
    ExchangeError, FailureReason, Profile,
    http::{HttpClient, HttpError},
    oauth::{
        GraphErrorResponse, OAuthApp, PlainOAuth, clean, get_json, oauth_client, token_failure,
    },
};

/// The media type GitHub's REST API asks clients to accept.
const API_MEDIA_TYPE: &str = "application/vnd.github+json";
/// The REST API version these calls are written against; without it GitHub picks its default,
/// which may change under us.
const API_VERSION: &str = "2022-11-28";
const API_VERSION_HEADER: &str = "X-GitHub-Api-Version";

/// Where GitHub is and how this app is registered there.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    pub authorize_url: Url,
    pub token_url: Url,
    /// The REST API's base: `/user` and `/user/emails` are below it.
    pub api_url: Url,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// `{public_url}/callback/github`, exactly as registered.
    pub redirect_uri: String,
}

/// `/user`: only what we keep. `id` is numeric and permanent; `login` can be changed by its
/// owner, so it is never the identity.
#[derive(Debug, Deserialize)]
struct User {
    id: u64,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// One entry of `/user/emails`.
#[derive(Debug, Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// GitHub as a [`Provider`](super::Provider).
pub struct GitHub {
    /// Named `github`, "GitHub", until [`GitHub::named`].
    app: OAuthApp,
    user_url: Url,
    emails_url: Url,
}

impl GitHub {
    pub fn new(settings: GitHubSettings, http: HttpClient) -> Result<Self, url::ParseError> {
        let oauth = oauth_client(
            &settings.client_id,
            &settings.client_secret,
            settings.authorize_url,
            settings.token_url,
            &settings.redirect_uri,
        )?;
        Ok(Self {
            app: OAuthApp {
                name: "github".to_owned(),
                display_name: "GitHub".to_owned(),
                oauth,
                scopes: settings.scopes.into_iter().map(Scope::new).collect(),
                http,
            },
            user_url: below(&settings.api_url, &["user"])?,
            emails_url: below(&settings.api_url, &["user", "emails"])?,
        })
    }

    /// Under the name and display name configuration gives it (`[providers.<name>]`).
    #[must_use]
    pub fn named(mut self, name: &str, display_name: &str) -> Self {
        name.clone_into(&mut self.app.name);
        display_name.clone_into(&mut self.app.display_name);
        self
    }

    /// A GET of the REST API with the headers GitHub requires (the shared client adds the
    /// `User-Agent`, without which GitHub refuses every call).
    fn api_get(&self, url: &Url, access_token: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .reqwest()
            .get(url.clone())
            .header(ACCEPT, API_MEDIA_TYPE)
            .header(API_VERSION_HEADER, API_VERSION)
            .bearer_auth(access_token)
    }

    /// `/user` and `/user/emails`, at once.
    async fn fetch_user(&self, access_token: &str) -> Result<Profile, ExchangeError> {
        let (user, emails) = tokio::try_join!(
            get_json::<User>(
                &self.app.http,
                "/user",
                self.api_get(&self.user_url, access_token)
            ),
            get_json::<Vec<Email>>(
                &self.app.http,
                "/user/emails",
                self.api_get(&self.emails_url, access_token)
            ),
        )?;
        Ok(profile(user, &emails))
    }
}

impl PlainOAuth for GitHub {
    const BRAND: &'static str = "github";

    fn app(&self) -> &OAuthApp {
        &self.app
    }

    /// GitHub refuses a code with HTTP 200 and an OAuth error body (oauth2-rs#313).
    fn token_refusal(
        status: Option<StatusCode>,
        error: RequestTokenError<HttpError, GraphErrorResponse>,
    ) -> ExchangeError {
        token_refusal(status, error)
    }

    fn fetch_profile(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<Profile, ExchangeError>> + Send {
        self.fetch_user(access_token)
    }
}

/// `base` with `segments` appended to its path.
fn below(base: &Url, segments: &[&str]) -> Result<Url, url::ParseError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| url::ParseError::RelativeUrlWithCannotBeABaseBase)?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// GitHub refuses a code with HTTP 200 and an OAuth error body (oauth2-rs#313), which oauth2
/// reports as an unreadable token: such an answer is a refusal. Everything else is named by
/// the shared classification.
fn token_refusal(
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, GraphErrorResponse>,
) -> ExchangeError {
    if let (Some(status), RequestTokenError::Parse(_, body)) = (status, &error)
        && status.is_success()
        // A token answer has no `error` member, so it never reads as one.
        && let Ok(refusal) = serde_json::from_slice::<GraphErrorResponse>(body)
    {
        return ExchangeError::new(
            FailureReason::Denied,
            format!("token endpoint: HTTP {status}: {refusal}"),
        );
    }
    token_failure(status, error)
}

/// The person: the numeric id, the name split in two (or the login when there is no name),
/// and the primary address only if GitHub has verified it.
fn profile(user: User, emails: &[Email]) -> Profile {
    let (first_name, last_name) = match clean(user.name) {
        Some(name) => split_name(&name),
        None => (clean(user.login).unwrap_or_default(), String::new()),
    };
    let email = primary_verified(emails);
    Profile {
        provider_user_id: user.id.to_string(),
        first_name,
        last_name,
        // Only a verified address is ever taken.
        email_verified: email.is_some(),
        email,
        issuer: None,
        membership: Default::default(),
    }
}

/// GitHub has one free-form `name`: the first word is the first name, the rest the last.
fn split_name(name: &str) -> (String, String) {
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_owned(), rest.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// The address GitHub sends mail to, and only once verified: an unverified one may belong to
/// someone else.
fn primary_verified(emails: &[Email]) -> Option<String> {
    emails
        .iter()
        .find(|e| e.primary && e.verified)
        .and_then(|e| clean(Some(e.email.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: Option<&str>, login: &str) -> User {
        User {
            id: 583231,
            login: Some(login.to_owned()),
            name: name.map(str::to_owned),
        }
    }

    fn email(address: &str, primary: bool, verified: bool) -> Email {
        Email {
            email: address.to_owned(),
            primary,
            verified,
        }
    }

    #[test]
    fn names_split_at_the_first_space_and_fall_back_to_the_login() {
        for (name, first, last) in [
            (Some("Ada Lovelace"), "Ada", "Lovelace"),
            (Some("  Ada   King Lovelace "), "Ada", "King Lovelace"),
            (Some("Ada"), "Ada", ""),
            (None, "octocat", ""),
            (Some("   "), "octocat", ""),
        ] {
            let profile = profile(user(name, "octocat"), &[]);
            assert_eq!(
                (profile.first_name.as_str(), profile.last_name.as_str()),
                (first, last),
                "{name:?}"
            );
            assert_eq!(profile.provider_user_id, "583231");
        }
    }

    #[test]
    fn only_the_primary_verified_email_is_taken() {
        let pick = |emails: &[Email]| profile(user(None, "octocat"), emails).email;
        assert_eq!(
            pick(&[
                email("other@example.com", false, true),
                email("ada@example.com", true, true),
            ]),
            Some("ada@example.com".to_owned())
        );
        assert_eq!(pick(&[email("ada@example.com", true, false)]), None);
        assert_eq!(pick(&[email("other@example.com", false, true)]), None);
        assert_eq!(pick(&[]), None);
    }
}
