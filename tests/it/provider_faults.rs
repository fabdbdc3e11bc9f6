//! Every provider failure ends as `error` with the reason that names what happened, within
//! the exchange timeout, and a readable error page that shows nothing of the provider's answer.

use loginwith_testkit as common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, http::header::LOCATION, response::IntoResponse};
use common::{ADA, TestEnv, location};
use loginwith::dev_provider::Fault;
use reqwest::StatusCode;

/// Where a row's provider answer comes from.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// The development provider, with this fault injected.
    Fault(Fault),
    /// A token endpoint on a port nothing listens on.
    NoListener,
}

/// Every row of the classification: status first, then body, for the token endpoint and `/me`.
const FAILURES: &[(Answer, &str)] = &[
    // 5xx and 429, whatever the body: the provider's own trouble.
    (Answer::Fault(Fault::TokenServerError), "provider_error"),
    (Answer::Fault(Fault::TokenRateLimited), "provider_error"),
    (Answer::Fault(Fault::MeServerError), "provider_error"),
    (Answer::Fault(Fault::MeRateLimited), "provider_error"),
    (Answer::Fault(Fault::MeHugeHtmlError), "provider_error"),
    // 400 or 401 with an OAuth or Graph error: a refusal.
    (Answer::Fault(Fault::TokenError), "denied"),
    (Answer::Fault(Fault::TokenInvalidGrant), "denied"),
    (Answer::Fault(Fault::MeExpiredToken), "denied"),
    // A success we cannot read or use.
    (Answer::Fault(Fault::TokenEmptyBody), "invalid_response"),
    (Answer::Fault(Fault::TokenNotJson), "invalid_response"),
    (
        Answer::Fault(Fault::TokenHtmlContentType),
        "invalid_response",
    ),
    (
        Answer::Fault(Fault::TokenMissingAccessToken),
        "invalid_response",
    ),
    (
        Answer::Fault(Fault::TokenEmptyAccessToken),
        "invalid_response",
    ),
    (Answer::Fault(Fault::TokenTypeMac), "invalid_response"),
    (Answer::Fault(Fault::MalformedJson), "invalid_response"),
    (Answer::Fault(Fault::MeHtmlContentType), "invalid_response"),
    (Answer::Fault(Fault::OversizedResponse), "invalid_response"),
    // No answer at all.
    (Answer::NoListener, "unreachable"),
    (Answer::Fault(Fault::Hang), "timeout"),
    // Anything else: a 400 that is not an OAuth error (redirects have a test of their own).
    (Answer::Fault(Fault::TokenBadRequestHtml), "provider_error"),
];

/// What the error page says for each reason.
fn sentence(reason: &str) -> &'static str {
    match reason {
        "denied" => "did not accept this sign-in",
        "provider_error" => "had a problem",
        "invalid_response" => "could not understand",
        "timeout" => "did not answer in time",
        "unreachable" => "could not reach Facebook",
        other => panic!("no sentence for {other}"),
    }
}

async fn env_for(answer: Answer) -> TestEnv {
    match answer {
        Answer::Fault(fault) => {
            let env = TestEnv::start().await;
            env.set_fault(fault);
            env
        }
        Answer::NoListener => {
            // A port that was just free: nothing listens there.
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = closed.local_addr().unwrap().port();
            drop(closed);
            token_endpoint_at(format!("http://127.0.0.1:{port}")).await
        }
    }
}

/// An app whose token endpoint is `base`'s `/oauth/access_token`.
async fn token_endpoint_at(base: String) -> TestEnv {
    TestEnv::start_with(move |f| {
        f.merge((
            "providers.facebook.token_url",
            format!("{base}/oauth/access_token"),
        ))
    })
    .await
}

/// Runs a sign-in against `env` and checks the outcome end to end.
async fn sign_in_fails_with(env: TestEnv, what: &str, reason: &str) {
    let browser = env.browser();
    let started = Instant::now();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error", "{what}");
    let limit = env.config.login.exchange_timeout() + Duration::from_secs(2);
    assert!(
        started.elapsed() < limit,
        "{what} took {:?}",
        started.elapsed()
    );
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some(reason.to_owned())),
        "{what}"
    );

    // The preloader sends the browser on (the no-JavaScript path relies on it).
    let response = browser.get("/preloader").await;
    assert_eq!(location(&response), "/error");
    let response = browser.get("/success").await;
    assert_eq!(location(&response), "/error");
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(sentence(reason)), "{what}: {page}");
    assert!(page.contains("Try again"));
    for internal in [
        "OAuthException",
        "fbtrace",
        "code 100",
        "panicked",
        "invalid_grant",
        "Sorry, something went wrong",
        "request limit",
        "Session has expired",
        reason,
    ] {
        assert!(!page.contains(internal), "{what} page shows {internal:?}");
    }
    assert!(!browser.text("/").await.1.contains("Hi,"), "not signed in");
    assert_eq!(env.count("user_profile").await, 0);
}

#[tokio::test]
async fn provider_failures_are_named_by_what_happened() {
    for &(answer, reason) in FAILURES {
        sign_in_fails_with(env_for(answer).await, &format!("{answer:?}"), reason).await;
    }
}

#[tokio::test]
async fn bearer_in_any_case_and_legacy_json_still_sign_in() {
    // `token_type` is case-insensitive (RFC 6749 section 5.1), and Facebook long served its
    // JSON as `text/javascript`.
    for fault in [Fault::TokenTypeCapitalized, Fault::MeLegacyContentType] {
        let env = TestEnv::start().await;
        env.set_fault(fault);
        let home = env.browser().login(ADA).await;
        assert!(home.contains("Hi, Ada!"), "{fault:?}");
    }
}

/// Serves `router` on an ephemeral local port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// A router counting its requests, each answered by `answer`.
fn counting<R: IntoResponse>(
    hits: &Arc<AtomicUsize>,
    answer: impl Fn() -> R + Clone + Send + Sync + 'static,
) -> Router {
    let hits = hits.clone();
    Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        let response = answer().into_response();
        async move { response }
    })
}

#[tokio::test]
async fn provider_redirects_are_not_followed() {
    // Following would hand the code, verifier and secret to wherever the redirect points
    // (SSRF); the canary even answers with a token, so following would look like success.
    let canary_hits = Arc::new(AtomicUsize::new(0));
    let canary = serve(counting(&canary_hits, || {
        Json(serde_json::json!({"access_token": "EAAcanary", "token_type": "bearer"}))
    }))
    .await;
    let endpoint_hits = Arc::new(AtomicUsize::new(0));
    let target = format!("{canary}/oauth/access_token");
    let endpoint = serve(counting(&endpoint_hits, move || {
        (StatusCode::FOUND, [(LOCATION, target.clone())])
    }))
    .await;

    let env = token_endpoint_at(endpoint).await;
    sign_in_fails_with(env, "a 302 from the token endpoint", "provider_error").await;
    assert_eq!(
        endpoint_hits.load(Ordering::SeqCst),
        1,
        "the endpoint was asked"
    );
    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
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
