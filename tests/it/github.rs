//! Signing in with GitHub through the real router and the GitHub stand-in: the identity, the
//! email, the name, every failure's reason, and the headers GitHub requires; and, with the
//! provider alone, the organisations and teams read at sign-in when `[access]` needs them.

use loginwith_testkit as common;

use std::{sync::Arc, time::Duration};

use common::{
    assert_in_order,
    github::{GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GitHubEnv, ada, email},
    location, param,
};
use loginwith::auth::{
    ExchangeError, FailureReason, LoginSecrets, Profile, Provider as _,
    github::{GitHub, GitHubSettings},
    http::HttpClient,
};
use loginwith::dev_provider::{
    Fault,
    github::{GitHubStandIn, GitHubStandInSettings, GitHubUser},
};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use url::Url;

#[tokio::test]
async fn a_whole_sign_in_with_github() {
    let gh = GitHubEnv::start().await;
    let home = gh.login(&gh.env.browser()).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
    assert_eq!(
        gh.env.identities().await,
        vec![(
            "github".to_owned(),
            "1234567".to_owned(),
            "Ada".to_owned(),
            "Lovelace".to_owned(),
            Some("ada@example.com".to_owned()),
        )]
    );
    assert_eq!(gh.env.last_operation().await, ("ok".to_owned(), None));
}

#[tokio::test]
async fn the_numeric_id_is_the_identity_not_the_login() {
    let gh = GitHubEnv::start().await;
    gh.login(&gh.env.browser()).await;
    // Same account, renamed: the same person signs in again.
    gh.github.set_user(GitHubUser {
        login: "countess-of-lovelace".to_owned(),
        ..ada()
    });
    let home = gh.login(&gh.env.browser()).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
    assert_eq!(gh.env.count("user_profile").await, 1);
    assert_eq!(gh.env.count("user_identity").await, 1);
    // Another account that took over the old login is somebody else.
    gh.github.set_user(GitHubUser {
        id: 7_654_321,
        login: "ada-l".to_owned(),
        name: Some("Someone Else".to_owned()),
        emails: vec![email("else@example.com", true, true)],
        ..GitHubUser::default()
    });
    gh.login(&gh.env.browser()).await;
    assert_eq!(gh.env.count("user_identity").await, 2);
}

#[tokio::test]
async fn only_a_primary_verified_email_is_taken() {
    let gh = GitHubEnv::start().await;
    gh.github.set_user(GitHubUser {
        emails: vec![
            email("ada@example.com", true, false),
            email("ada@work.example", false, true),
        ],
        ..ada()
    });
    gh.login(&gh.env.browser()).await;
    assert_eq!(
        gh.env.identities().await[0].4,
        None,
        "an unverified primary"
    );

    // The fault makes every address unverified: still a sign-in, without an email.
    let gh = GitHubEnv::start().await;
    gh.set_fault(Fault::MissingEmail);
    let home = gh.login(&gh.env.browser()).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
    assert_eq!(gh.env.identities().await[0].4, None);
}

#[tokio::test]
async fn without_a_name_the_login_greets() {
    let gh = GitHubEnv::start().await;
    gh.github.set_user(GitHubUser {
        name: None,
        ..ada()
    });
    let home = gh.login(&gh.env.browser()).await;
    assert!(home.contains("Hi, ada-l!"), "{home}");
}

#[tokio::test]
async fn every_failure_is_named_by_what_happened() {
    // One app for every row: the sign-in rate limit is raised to let them all through.
    let gh = GitHubEnv::start_with(|f| f.merge(("limits.auth_burst", 100))).await;
    for (fault, reason) in [
        // HTTP 200 with {"error":"bad_verification_code"}: a refusal, not an unreadable token.
        (Fault::TokenError, "denied"),
        (Fault::TokenServerError, "provider_error"),
        (Fault::TokenRateLimited, "provider_error"),
        (Fault::MeServerError, "provider_error"),
        (Fault::MeRateLimited, "provider_error"),
        (Fault::MeHugeHtmlError, "provider_error"),
        (Fault::TokenEmptyBody, "invalid_response"),
        (Fault::TokenNotJson, "invalid_response"),
        (Fault::MalformedJson, "invalid_response"),
        (Fault::MeHtmlContentType, "invalid_response"),
        (Fault::OversizedResponse, "invalid_response"),
        (Fault::Hang, "timeout"),
    ] {
        gh.set_fault(fault);
        let browser = gh.env.browser();
        gh.login_until_preloader(&browser).await;
        assert_eq!(browser.wait_status().await, "error", "{fault:?}");
        assert_eq!(
            gh.env.last_operation().await,
            ("error".to_owned(), Some(reason.to_owned())),
            "{fault:?}"
        );
    }
    assert_eq!(gh.env.count("user_profile").await, 0);
}

#[tokio::test]
async fn the_api_is_called_with_the_headers_github_requires() {
    let gh = GitHubEnv::start().await;
    // The sign-in succeeds only if the client sent all three headers...
    gh.login(&gh.env.browser()).await;
    let tokens = gh.github.issued_tokens();
    assert_eq!(tokens.len(), 1);
    // ...because the stand-in refuses a call that lacks any one of them.
    let bare = reqwest::Client::new();
    let user = format!("{}/user", gh.github_url);
    let call = |agent: bool, accept: bool, version: bool| {
        let mut request = bare.get(&user).bearer_auth(&tokens[0]);
        if agent {
            request = request.header("User-Agent", "test");
        }
        if accept {
            request = request.header("Accept", "application/vnd.github+json");
        }
        if version {
            request = request.header("X-GitHub-Api-Version", "2022-11-28");
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(call(false, true, true).await, StatusCode::FORBIDDEN);
    assert_eq!(
        call(true, false, true).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(call(true, true, false).await, StatusCode::BAD_REQUEST);
    assert_eq!(call(true, true, true).await, StatusCode::OK);
}

#[tokio::test]
async fn the_token_endpoint_answers_form_encoded_unless_json_is_asked_for() {
    // Why the client must send `Accept: application/json`, and how GitHub refuses: HTTP 200.
    let gh = GitHubEnv::start().await;
    let form = [
        ("client_id", GITHUB_CLIENT_ID),
        ("client_secret", GITHUB_CLIENT_SECRET),
        ("code", "never-issued"),
    ];
    let token_url = format!("{}/login/oauth/access_token", gh.github_url);
    let client = reqwest::Client::new();
    let plain = client.post(&token_url).form(&form).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(
        plain
            .text()
            .await
            .unwrap()
            .starts_with("error=bad_verification_code&")
    );
    let json: serde_json::Value = client
        .post(&token_url)
        .header("Accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["error"], "bad_verification_code");
}

#[tokio::test]
async fn cancel_on_github_explains_and_creates_nothing() {
    let gh = GitHubEnv::start().await;
    gh.github.set_denies();
    let browser = gh.env.browser();
    let dialog = location(&browser.get("/authorize/github").await).to_owned();
    let callback = location(&browser.get(&dialog).await).to_owned();
    assert!(callback.contains("error=access_denied"), "{callback}");
    assert_eq!(location(&browser.get(&callback).await), "/error");
    let (_, page) = browser.text("/error").await;
    assert!(
        page.contains("You cancelled signing in with GitHub"),
        "{page}"
    );
    assert_eq!(gh.env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn configured_github_gets_its_own_button_after_facebook() {
    let github = GitHubEnv::start().await;
    let (_, home) = github.env.browser().text("/").await;
    // Configuration order; GitHub's button in its colours.
    assert_in_order(
        &home,
        "href=\"/authorize/facebook\"",
        "class=\"button button-github\" href=\"/authorize/github\"",
    );
    assert!(home.contains("Continue with GitHub"), "{home}");
    assert!(home.contains("img/github-mark.svg"), "{home}");
}

/// Where the stand-in sends the browser back to in the provider-level tests: never visited,
/// the code is read from the redirect.
const DIRECT_CALLBACK: &str = "http://127.0.0.1:9/callback/github";

/// The GitHub stand-in on a port of its own, approving as `user`, and its address.
async fn stand_in(user: GitHubUser) -> (Arc<GitHubStandIn>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let github = GitHubStandIn::new(
        GitHubStandInSettings {
            client_id: GITHUB_CLIENT_ID.to_owned(),
            client_secret: GITHUB_CLIENT_SECRET.to_owned(),
            redirect_uri: DIRECT_CALLBACK.to_owned(),
        },
        user,
    );
    let router = github.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (github, url)
}

/// The GitHub provider pointed at the stand-in at `url`, asking for `scopes`.
fn provider(url: &str, scopes: &[&str], reads_membership: bool) -> GitHub {
    let at = |path: &str| Url::parse(&format!("{url}{path}")).expect("URL");
    GitHub::new(
        GitHubSettings {
            authorize_url: at("/login/oauth/authorize"),
            token_url: at("/login/oauth/access_token"),
            api_url: at("/"),
            client_id: GITHUB_CLIENT_ID.to_owned(),
            client_secret: GITHUB_CLIENT_SECRET.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            redirect_uri: DIRECT_CALLBACK.to_owned(),
        },
        HttpClient::new(Duration::from_secs(10)).expect("HTTP client"),
    )
    .expect("settings")
    .reading_membership(reads_membership)
}

/// The scopes an authorization URL asks for.
fn scopes_of(url: &Url) -> Vec<String> {
    param(url.as_str(), "scope")
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// A sign-in whose dialog `asking` builds (and so whose scopes it asks for) and whose code
/// `exchanging` swaps: the dialog URL, and what the exchange gave.
async fn sign_in_across(
    asking: &GitHub,
    exchanging: &GitHub,
) -> (Url, Result<Profile, ExchangeError>) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let dialog = asking
        .authorization_url(&CsrfToken::new("the-state".into()), &challenge, "")
        .expect("available");
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(dialog.as_str())
        .send()
        .await
        .expect("authorize");
    let code = param(location(&answer), "code");
    let result = exchanging
        .exchange(
            AuthorizationCode::new(code),
            LoginSecrets {
                verifier,
                nonce: String::new(),
            },
        )
        .await;
    (dialog, result)
}

async fn sign_in(github: &GitHub) -> (Url, Result<Profile, ExchangeError>) {
    sign_in_across(github, github).await
}

/// Ada in three organisations (one written with capitals) and 150 teams: two pages of 100.
/// `ops` is a team in two organisations, which are two teams.
fn ada_in_orgs() -> GitHubUser {
    let mut teams: Vec<(String, String)> = (0..148)
        .map(|n| ("acme".to_owned(), format!("team-{n:03}")))
        .collect();
    teams.push(("Acme".to_owned(), "Ops".to_owned()));
    teams.push(("globex".to_owned(), "ops".to_owned()));
    GitHubUser {
        orgs: vec!["Acme".to_owned(), "globex".to_owned(), "initech".to_owned()],
        teams,
        ..ada()
    }
}

fn calls_to(github: &GitHubStandIn, path: &str) -> Vec<String> {
    github
        .api_calls()
        .into_iter()
        .filter(|call| call.split('?').next() == Some(path))
        .collect()
}

#[tokio::test]
async fn organisations_and_teams_are_read_through_every_page() {
    let (github, url) = stand_in(ada_in_orgs()).await;
    let client = provider(&url, &["read:user", "user:email"], true);
    let (dialog, profile) = sign_in(&client).await;
    assert_eq!(scopes_of(&dialog), ["read:user", "user:email", "read:org"]);
    let profile = profile.expect("a profile");
    assert_eq!(profile.provider_user_id, "1234567");
    assert_eq!(
        profile.membership.github_orgs,
        ["acme", "globex", "initech"]
    );
    let teams = &profile.membership.github_teams;
    assert_eq!(teams.len(), 150, "{teams:?}");
    assert_eq!(teams.first().map(String::as_str), Some("acme/ops"));
    assert!(teams.contains(&"acme/team-000".to_owned()));
    assert!(teams.contains(&"acme/team-147".to_owned()));
    assert_eq!(teams.last().map(String::as_str), Some("globex/ops"));
    assert!(profile.membership.groups.is_empty());
    // Pages of 100, the second one found through the first one's Link header.
    assert_eq!(calls_to(&github, "/user/orgs"), ["/user/orgs?per_page=100"]);
    assert_eq!(
        calls_to(&github, "/user/teams"),
        [
            "/user/teams?per_page=100",
            "/user/teams?per_page=100&page=2"
        ]
    );
}

#[tokio::test]
async fn read_org_is_asked_for_once_and_not_beside_a_scope_that_includes_it() {
    let (_github, url) = stand_in(ada()).await;
    for (configured, asked) in [
        (vec!["read:user"], vec!["read:user", "read:org"]),
        (
            vec!["read:org", "user:email"],
            vec!["read:org", "user:email"],
        ),
        (vec!["admin:org"], vec!["admin:org"]),
    ] {
        let client = provider(&url, &configured, true).reading_membership(true);
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let dialog = client
            .authorization_url(&CsrfToken::new("s".into()), &challenge, "")
            .expect("available");
        assert_eq!(scopes_of(&dialog), asked, "{configured:?}");
    }
    // Turned off again, it takes back only what it added.
    let client = provider(&url, &["read:user"], true).reading_membership(false);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let dialog = client
        .authorization_url(&CsrfToken::new("s".into()), &challenge, "")
        .expect("available");
    assert_eq!(scopes_of(&dialog), ["read:user"]);
}

#[tokio::test]
async fn without_membership_no_read_org_and_no_membership_call() {
    let (github, url) = stand_in(ada_in_orgs()).await;
    let client = provider(&url, &["read:user", "user:email"], false);
    let (dialog, profile) = sign_in(&client).await;
    assert_eq!(scopes_of(&dialog), ["read:user", "user:email"]);
    let profile = profile.expect("a profile");
    assert!(profile.membership.is_empty(), "{:?}", profile.membership);
    let mut calls = github.api_calls();
    calls.sort();
    assert_eq!(calls, ["/user", "/user/emails"]);
}

#[tokio::test]
async fn the_app_reads_no_membership_when_access_names_no_organisation() {
    // Configured as people configure GitHub, without organisation or team conditions.
    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    let dialog = location(&browser.get("/authorize/github").await).to_owned();
    let scope = param(&dialog, "scope");
    assert!(!scope.contains("org"), "{scope}");
    gh.github.set_user(ada_in_orgs());
    gh.login(&gh.env.browser()).await;
    let calls = gh.github.api_calls();
    assert!(
        calls
            .iter()
            .all(|call| call == "/user" || call == "/user/emails"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_token_without_read_org_fails_the_sign_in() {
    // A token granted without read:org (say, before [access] named an organisation): GitHub
    // answers 403 at /user/teams, and nobody is let in with a membership half known.
    let (github, url) = stand_in(ada_in_orgs()).await;
    let without = provider(&url, &["read:user", "user:email"], false);
    let with = provider(&url, &["read:user", "user:email"], true);
    let (dialog, result) = sign_in_across(&without, &with).await;
    assert!(!scopes_of(&dialog).contains(&"read:org".to_owned()));
    let failure = result.expect_err("no profile");
    assert_eq!(failure.reason, FailureReason::ProviderError);
    assert!(
        failure.detail.starts_with("/user/teams: HTTP 403"),
        "{}",
        failure.detail
    );
    assert!(failure.detail.contains("read:org"), "{}", failure.detail);
    assert_eq!(calls_to(&github, "/user/teams").len(), 1);
}

#[tokio::test]
async fn a_failing_or_unreadable_membership_call_fails_the_sign_in() {
    let (github, url) = stand_in(ada_in_orgs()).await;
    let client = provider(&url, &["read:user"], true);
    for (fault, reason) in [
        (Fault::MeServerError, FailureReason::ProviderError),
        (Fault::MeRateLimited, FailureReason::ProviderError),
        (Fault::MalformedJson, FailureReason::InvalidResponse),
    ] {
        github.set_faults(loginwith::dev_provider::Faults {
            fault,
            ..Default::default()
        });
        let (_, result) = sign_in(&client).await;
        assert_eq!(result.expect_err("no profile").reason, reason, "{fault:?}");
    }
}

#[tokio::test]
async fn a_next_page_on_another_origin_is_refused() {
    let (github, url) = stand_in(ada_in_orgs()).await;
    github.set_link_origin(Some("http://elsewhere.test"));
    let client = provider(&url, &["read:user"], true);
    let (_, result) = sign_in(&client).await;
    let failure = result.expect_err("no profile");
    assert_eq!(failure.reason, FailureReason::InvalidResponse);
    assert!(
        failure.detail.starts_with("/user/teams: "),
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains("another origin"),
        "{}",
        failure.detail
    );
    // The first page was read; the second, elsewhere, never asked for.
    assert_eq!(
        calls_to(&github, "/user/teams"),
        ["/user/teams?per_page=100"]
    );
}

#[tokio::test]
async fn a_list_longer_than_fifty_pages_fails_rather_than_being_cut() {
    // 5,001 organisations: 51 pages of 100.
    let (github, url) = stand_in(GitHubUser {
        orgs: (0..5001).map(|n| format!("org-{n}")).collect(),
        ..ada()
    })
    .await;
    let client = provider(&url, &["read:user"], true);
    let (_, result) = sign_in(&client).await;
    let failure = result.expect_err("no profile");
    assert_eq!(failure.reason, FailureReason::InvalidResponse);
    assert_eq!(failure.detail, "/user/orgs: more than 50 pages");
    assert_eq!(calls_to(&github, "/user/orgs").len(), 50);
}

#[tokio::test]
async fn the_stand_in_pages_as_github_does() {
    let (github, url) = stand_in(GitHubUser {
        orgs: (0..65).map(|n| format!("org-{n}")).collect(),
        ..ada()
    })
    .await;
    // A token, from a sign-in that reads nothing more.
    sign_in(&provider(&url, &["read:user"], false))
        .await
        .1
        .expect("a profile");
    let token = github.issued_tokens().pop().expect("a token");
    let http = reqwest::Client::new();
    let get = |query: &'static str| {
        let request = http
            .get(format!("{url}/user/orgs{query}"))
            .bearer_auth(&token)
            .header("User-Agent", "test")
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        async move {
            let answer = request.send().await.expect("GET");
            let link = answer
                .headers()
                .get("link")
                .map(|v| v.to_str().expect("text").to_owned());
            let list: Vec<serde_json::Value> = answer.json().await.expect("JSON");
            (list.len(), link)
        }
    };
    let at = |per_page: u32, page: u32, rel: &str| {
        format!("<{url}/user/orgs?per_page={per_page}&page={page}>; rel=\"{rel}\"")
    };
    // 30 a page unless asked; next and last, then prev and first too.
    assert_eq!(
        get("").await,
        (
            30,
            Some(format!("{}, {}", at(30, 2, "next"), at(30, 3, "last")))
        )
    );
    assert_eq!(
        get("?page=2").await,
        (
            30,
            Some(
                [
                    at(30, 1, "prev"),
                    at(30, 3, "next"),
                    at(30, 3, "last"),
                    at(30, 1, "first")
                ]
                .join(", ")
            )
        )
    );
    assert_eq!(
        get("?page=3").await,
        (
            5,
            Some(format!("{}, {}", at(30, 2, "prev"), at(30, 1, "first")))
        )
    );
    // At most 100 a page, so one page and no Link at all.
    assert_eq!(get("?per_page=500").await, (65, None));
    // Teams need read:org, which this token was not granted.
    let teams = http
        .get(format!("{url}/user/teams"))
        .bearer_auth(&token)
        .header("User-Agent", "test")
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await
        .expect("GET");
    assert_eq!(teams.status(), StatusCode::FORBIDDEN);
}
