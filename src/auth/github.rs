//! GitHub (OAuth App), server side (the protocol facts it relies on:
//! `docs/providers/github.md`): plain OAuth 2.0 with PKCE, the profile from the REST API's `/user` and
//! `/user/emails`, and, when `[access]` names organisations or teams, the person's
//! `/user/orgs` and `/user/teams` (which need the `read:org` scope).

use crate::model::ProviderBrand;
use std::future::Future;

use oauth2::{RequestTokenError, Scope, http::StatusCode};
use reqwest::header::ACCEPT;
use serde::{Deserialize, de::DeserializeOwned};
use url::Url;

use super::{
    ExchangeError, FailureReason, Profile,
    http::{HttpClient, HttpError},
    link,
    oauth::{
        TokenErrorResponse, OAuthApp, PlainOAuth, clean, get_json, get_json_page, oauth_client,
        below, names_or_handle, token_failure,
    },
};
use crate::model::Membership;

/// The media type GitHub's REST API asks clients to accept.
const API_MEDIA_TYPE: &str = "application/vnd.github+json";
/// The REST API version these calls are written against; without it GitHub picks its default,
/// which may change under us.
const API_VERSION: &str = "2022-11-28";
const API_VERSION_HEADER: &str = "X-GitHub-Api-Version";

/// The scope `/user/teams` needs (and without which `/user/orgs` lists only public
/// memberships).
const READ_ORG: &str = "read:org";
/// Scopes that include [`READ_ORG`]: asking for it beside one of them adds nothing.
const ORG_SCOPES: [&str; 3] = [READ_ORG, "write:org", "admin:org"];
/// The largest page GitHub serves.
const PER_PAGE: &str = "100";
/// The most pages of one list read at a sign-in (5,000 organisations or teams). A list
/// longer than that fails the sign-in: a membership cut short is not the person's.
const MAX_PAGES: usize = 50;
/// The largest page of a list read. GitHub's team objects carry their whole organisation
/// (about 2 KB each, so some 200 KB for 100), far beyond what a profile call may send.
const MAX_PAGE_BYTES: usize = 1024 * 1024;

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

/// One entry of `/user/orgs`, and a team's `organization`.
#[derive(Debug, Deserialize)]
struct Organisation {
    login: String,
}

/// One entry of `/user/teams`: a slug is only unique within its organisation.
#[derive(Debug, Deserialize)]
struct Team {
    slug: String,
    organization: Organisation,
}

/// GitHub as a [`Provider`](super::Provider).
pub struct GitHub {
    /// Named `github`, "GitHub", until [`GitHub::named`].
    app: OAuthApp,
    user_url: Url,
    emails_url: Url,
    orgs_url: Url,
    teams_url: Url,
    /// Whether sign-ins read organisations and teams (see [`GitHub::reading_membership`]).
    reads_membership: bool,
    /// Whether `read:org` is in the scopes because of that, not because it was configured.
    added_read_org: bool,
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
            orgs_url: paged(below(&settings.api_url, &["user", "orgs"])?),
            teams_url: paged(below(&settings.api_url, &["user", "teams"])?),
            reads_membership: false,
            added_read_org: false,
        })
    }

    /// Whether each sign-in reads the person's organisations and teams into
    /// [`Profile::membership`] (every page of `/user/orgs` and `/user/teams`), asking for the
    /// `read:org` scope they need unless the configured scopes already grant it. Off (the
    /// default), neither call is made and no scope is added: only what `[access]` needs.
    #[must_use]
    pub fn reading_membership(mut self, yes: bool) -> Self {
        self.reads_membership = yes;
        let granted = self
            .app
            .scopes
            .iter()
            .any(|scope| ORG_SCOPES.contains(&scope.as_str()));
        if yes && !granted {
            self.app.scopes.push(Scope::new(READ_ORG.to_owned()));
            self.added_read_org = true;
        } else if !yes && self.added_read_org {
            self.app.scopes.retain(|scope| scope.as_str() != READ_ORG);
            self.added_read_org = false;
        }
        self
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

    /// `/user` and `/user/emails`, and the membership when it is read, at once.
    async fn fetch_user(&self, access_token: &str) -> Result<Profile, ExchangeError> {
        let (user, emails, membership) = tokio::try_join!(
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
            self.fetch_membership(access_token),
        )?;
        let mut profile = profile(user, &emails);
        profile.membership = membership;
        Ok(profile)
    }

    /// Every organisation and team the person is in, both lists at once; nothing (and no
    /// call) when membership is not read. A list that cannot be read whole fails the
    /// sign-in: an unknown membership never lets anyone in.
    async fn fetch_membership(&self, access_token: &str) -> Result<Membership, ExchangeError> {
        if !self.reads_membership {
            return Ok(Membership::default());
        }
        let (orgs, teams) = tokio::try_join!(
            self.get_every_page::<Organisation>("/user/orgs", &self.orgs_url, access_token),
            self.get_every_page::<Team>("/user/teams", &self.teams_url, access_token),
        )?;
        membership(orgs, teams)
    }

    /// A paged list, read page by page along `Link: <…>; rel="next"` from `first`, for at
    /// most [`MAX_PAGES`] pages, never leaving the API's origin.
    async fn get_every_page<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        first: &Url,
        access_token: &str,
    ) -> Result<Vec<T>, ExchangeError> {
        let origin = first.origin();
        let mut items = Vec::new();
        let mut next = Some(first.clone());
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                return Err(ExchangeError::new(
                    FailureReason::InvalidResponse,
                    format!("{endpoint}: more than {MAX_PAGES} pages"),
                ));
            }
            pages += 1;
            let (page, headers) = get_json_page::<Vec<T>>(
                &self.app.http,
                endpoint,
                self.api_get(&url, access_token),
                MAX_PAGE_BYTES,
            )
            .await
            .map_err(|e| scope_hint(e, endpoint))?;
            items.extend(page);
            next = link::next_page(&headers, &url, &origin).map_err(|e| {
                ExchangeError::new(
                    FailureReason::InvalidResponse,
                    format!("{endpoint}: page {pages}: {e}"),
                )
            })?;
        }
        Ok(items)
    }
}

impl PlainOAuth for GitHub {
    const BRAND: ProviderBrand = ProviderBrand::GitHub;

    fn app(&self) -> &OAuthApp {
        &self.app
    }

    /// GitHub refuses a code with HTTP 200 and an OAuth error body (oauth2-rs#313).
    fn token_refusal(
        status: Option<StatusCode>,
        error: RequestTokenError<HttpError, TokenErrorResponse>,
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

/// A list's first page, as large as GitHub serves them.
fn paged(mut url: Url) -> Url {
    url.query_pairs_mut().append_pair("per_page", PER_PAGE);
    url
}

/// A 403 from a membership call most often means a token without `read:org` (granted before
/// `[access]` named an organisation, or refused by an organisation's OAuth App policy):
/// the log says so.
fn scope_hint(mut error: ExchangeError, endpoint: &str) -> ExchangeError {
    if error.detail.starts_with(&format!("{endpoint}: HTTP 403")) {
        error
            .detail
            .push_str(" (does the token carry the read:org scope?)");
    }
    error
}

/// The organisations and teams as [`Membership`] keeps them (`acme`, `acme/ops`). A name
/// that is empty or could be read another way (a `/`, whitespace, a control character) is
/// refused rather than skipped or guessed at.
fn membership(orgs: Vec<Organisation>, teams: Vec<Team>) -> Result<Membership, ExchangeError> {
    let name = |endpoint: &str, value: String| {
        let usable = !value.is_empty()
            && !value
                .chars()
                .any(|c| c == '/' || c.is_whitespace() || c.is_control());
        if usable {
            Ok(value)
        } else {
            Err(ExchangeError::new(
                FailureReason::InvalidResponse,
                format!(
                    "{endpoint}: a name that is empty or holds a '/', a space or a control character"
                ),
            ))
        }
    };
    let github_orgs = orgs
        .into_iter()
        .map(|org| name("/user/orgs", org.login))
        .collect::<Result<_, _>>()?;
    let github_teams = teams
        .into_iter()
        .map(|team| {
            let org = name("/user/teams", team.organization.login)?;
            let slug = name("/user/teams", team.slug)?;
            Ok(format!("{org}/{slug}"))
        })
        .collect::<Result<_, ExchangeError>>()?;
    Ok(Membership {
        github_orgs,
        github_teams,
        ..Membership::default()
    }
    .normalise())
}

/// GitHub refuses a code with HTTP 200 and an OAuth error body (oauth2-rs#313), which oauth2
/// reports as an unreadable token: such an answer is a refusal. Everything else is named by
/// the shared classification.
fn token_refusal(
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, TokenErrorResponse>,
) -> ExchangeError {
    if let (Some(status), RequestTokenError::Parse(_, body)) = (status, &error)
        && status.is_success()
        // A token answer has no `error` member, so it never reads as one.
        && let Ok(refusal) = serde_json::from_slice::<TokenErrorResponse>(body)
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
    let (first_name, last_name) = names_or_handle(user.name, user.login);
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
        provider_sid: None,
        names_withheld: false,
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

    fn org(login: &str) -> Organisation {
        Organisation {
            login: login.to_owned(),
        }
    }

    fn team(org_login: &str, slug: &str) -> Team {
        Team {
            slug: slug.to_owned(),
            organization: org(org_login),
        }
    }

    #[test]
    fn teams_are_named_within_their_organisation_and_odd_names_refused() {
        let read = membership(
            vec![org("Acme"), org("globex"), org("acme")],
            vec![
                team("acme", "ops"),
                team("Globex", "Ops"),
                team("acme", "ops"),
            ],
        )
        .unwrap();
        assert_eq!(read.github_orgs, ["acme", "globex"]);
        assert_eq!(read.github_teams, ["acme/ops", "globex/ops"]);
        assert!(read.groups.is_empty());
        for (orgs, teams) in [
            (vec![org("")], vec![]),
            (vec![org("acme/ops")], vec![]),
            (vec![org("ac me")], vec![]),
            (vec![], vec![team("acme", "")]),
            (vec![], vec![team("", "ops")]),
            (vec![], vec![team("acme/x", "ops")]),
            (vec![], vec![team("acme", "ops/x")]),
            (vec![], vec![team("acme", "ops\n")]),
        ] {
            let failure = membership(orgs, teams).unwrap_err();
            assert_eq!(failure.reason, FailureReason::InvalidResponse);
        }
    }

    fn scopes(github: &GitHub) -> Vec<&str> {
        github.app.scopes.iter().map(|s| s.as_str()).collect()
    }

    #[test]
    fn read_org_is_added_only_when_membership_is_read_and_not_already_granted() {
        let github = |configured: &[&str]| {
            let api = Url::parse("https://api.github.com/").unwrap();
            GitHub::new(
                GitHubSettings {
                    authorize_url: api.clone(),
                    token_url: api.clone(),
                    api_url: api,
                    client_id: "id".into(),
                    client_secret: "secret".into(),
                    scopes: configured.iter().map(|s| (*s).to_owned()).collect(),
                    redirect_uri: "https://example.com/callback/github".into(),
                },
                HttpClient::new(std::time::Duration::from_secs(1)).unwrap(),
            )
            .unwrap()
        };
        let off = github(&["read:user"]);
        assert_eq!(scopes(&off), ["read:user"]);
        assert_eq!(
            off.orgs_url.as_str(),
            "https://api.github.com/user/orgs?per_page=100"
        );
        assert_eq!(
            off.teams_url.as_str(),
            "https://api.github.com/user/teams?per_page=100"
        );
        let on = github(&["read:user"])
            .reading_membership(true)
            .reading_membership(true);
        assert_eq!(scopes(&on), ["read:user", "read:org"]);
        assert_eq!(scopes(&on.reading_membership(false)), ["read:user"]);
        for granted in ["read:org", "write:org", "admin:org"] {
            let configured = github(&[granted]);
            let on = configured.reading_membership(true);
            assert_eq!(scopes(&on), [granted]);
            // Configured, so kept when membership is off.
            assert_eq!(scopes(&on.reading_membership(false)), [granted]);
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
