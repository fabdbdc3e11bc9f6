//! Every injected provider fault ends as `error` with the right reason, within the exchange
//! timeout, and a readable error page that shows nothing of the provider's answer.

mod common;

use std::time::{Duration, Instant};

use common::{ADA, TestEnv, location};
use loginwith::dev_provider::Fault;
use reqwest::StatusCode;

/// Runs a sign-in against `fault` and checks the outcome end to end.
async fn sign_in_fails_with(fault: Fault, reason: &str, sentence: &str) {
    let env = TestEnv::start().await;
    env.set_fault(fault);
    let browser = env.browser();
    let started = Instant::now();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error", "{fault:?}");
    let limit = env.config.login.exchange_timeout() + Duration::from_secs(2);
    assert!(
        started.elapsed() < limit,
        "{fault:?} took {:?}",
        started.elapsed()
    );
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some(reason.to_owned())),
        "{fault:?}"
    );

    // The preloader sends the browser on (the no-JavaScript path relies on it).
    let response = browser.get("/preloader").await;
    assert_eq!(location(&response), "/error");
    let response = browser.get("/success").await;
    assert_eq!(location(&response), "/error");
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(sentence), "{fault:?}: {page}");
    assert!(page.contains("Try again"));
    for internal in ["OAuthException", "fbtrace", "code 100", "panicked", reason] {
        assert!(
            !page.contains(internal),
            "{fault:?} page shows {internal:?}"
        );
    }
    assert!(!browser.text("/").await.1.contains("Hi,"), "not signed in");
    assert_eq!(env.count("user_profile").await, 0);
}

#[tokio::test]
async fn token_error_ends_as_denied() {
    sign_in_fails_with(Fault::TokenError, "denied", "did not accept this sign-in").await;
}

#[tokio::test]
async fn profile_server_error_ends_as_provider_error() {
    sign_in_fails_with(Fault::MeServerError, "provider_error", "had a problem").await;
}

#[tokio::test]
async fn malformed_profile_ends_as_invalid_response() {
    sign_in_fails_with(
        Fault::MalformedJson,
        "invalid_response",
        "could not understand",
    )
    .await;
}

#[tokio::test]
async fn a_hanging_provider_ends_as_timeout() {
    sign_in_fails_with(Fault::Hang, "timeout", "did not answer in time").await;
}

#[tokio::test]
async fn an_unreachable_provider_ends_as_unreachable() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = TestEnv::start_with(move |f| {
        f.merge((
            "providers.facebook.token_url",
            format!("http://127.0.0.1:{port}/oauth/access_token"),
        ))
    })
    .await;
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("unreachable".to_owned()))
    );
}

#[tokio::test]
async fn a_missing_email_is_not_an_error() {
    // Facebook leaves `email` out for people who declined it or have none: they sign in.
    let env = TestEnv::start().await;
    env.set_fault(Fault::MissingEmail);
    let home = env.browser().login(ADA).await;
    assert!(home.contains("Hi, Ada!"));
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM user_profile")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(email, None);

    // A later login that does share the email fills it in.
    env.set_fault(Fault::None);
    env.browser().login(ADA).await;
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM user_profile")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("ada@example.com"));
    assert_eq!(env.count("user_profile").await, 1);
}

#[tokio::test]
async fn a_slow_provider_within_the_timeout_still_signs_in() {
    let env = TestEnv::start().await;
    env.set_latency(Duration::from_millis(700));
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let (_, first) = browser.text("/get-status").await;
    assert_eq!(first, "pending", "the exchange takes at least 1.4 s");
    let (status, page) = browser.text("/preloader").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Talking to Facebook"));
    assert_eq!(browser.wait_status().await, "ok");
}
