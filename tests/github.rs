//! Signing in with GitHub through the real router and the GitHub stand-in: the identity, the
//! email, the name, every failure's reason, and the headers GitHub requires.

use loginwith_testkit as common;

use common::{
    assert_in_order,
    github::{GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GitHubEnv, ada, email},
    location,
};
use loginwith::dev_provider::{Fault, github::GitHubUser};
use reqwest::StatusCode;

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
