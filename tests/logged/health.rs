//! `/healthz` and `/readyz` on the real router, and what shutdown does to them and to the
//! long polls waiting in `/get-status`.

use loginwith_testkit as common;

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use common::{ADA, Capture, TestEnv, eventually};
use loginwith::dev_provider::Fault;
use reqwest::{
    Method, StatusCode,
    header::{CONTENT_TYPE, SET_COOKIE},
};
use tower::ServiceExt;

/// The probes' route names, as the request log writes them.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// Everything this binary logs (one subscriber per process).
fn log() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(Capture::install_trace)
}

fn log_text() -> String {
    String::from_utf8_lossy(&log().0.lock().unwrap()).into_owned()
}

async fn probe(env: &TestEnv, method: Method, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", env.app_url))
        .send()
        .await
        .expect("probe answered")
}

#[tokio::test]
async fn both_answer_plain_text_ok_and_set_no_cookie() {
    let env = TestEnv::start().await;
    for path in PROBES {
        let response = probe(&env, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert!(response.headers().get(SET_COOKIE).is_none(), "{path}");
        assert_eq!(response.text().await.unwrap(), "ok", "{path}");

        let head = probe(&env, Method::HEAD, path).await;
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert!(head.text().await.unwrap().is_empty(), "HEAD {path}");

        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let refused = probe(&env, method.clone(), path).await;
            assert_eq!(
                refused.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert!(
                refused.headers().get(SET_COOKIE).is_none(),
                "{method} {path}"
            );
        }
    }
    assert_eq!(env.count("session").await, 0, "no session was written");
}

#[tokio::test]
async fn a_probe_reads_no_session_even_with_a_cookie() {
    let env = TestEnv::start().await;
    // A signed-in browser's session cookie.
    let browser = env.browser();
    browser.login(ADA).await;
    assert!(
        browser.cookie("loginwith_session").is_some(),
        "a session exists"
    );
    // With the session table gone, anything that reads a session fails...
    sqlx::query("ALTER TABLE session RENAME TO session_elsewhere")
        .execute(&env.db)
        .await
        .unwrap();
    let (status, _) = browser.text("/").await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the home page reads it"
    );
    // ...and the probes, sent with the same cookie, do not.
    for path in PROBES {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{path}");
    }
}

#[tokio::test]
async fn probes_are_not_rate_limited() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 1))
            .merge(("limits.data_callback_per_minute", 1))
            .merge(("limits.data_callback_burst", 1))
    })
    .await;
    for _ in 0..30 {
        for path in PROBES {
            assert_eq!(
                probe(&env, Method::GET, path).await.status(),
                StatusCode::OK
            );
        }
    }
}

#[tokio::test]
async fn readyz_is_503_without_the_migrations_or_the_database() {
    let _ = log();
    let env = TestEnv::start().await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&env.db)
    .await
    .unwrap();
    let response = probe(&env, Method::GET, "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.text().await.unwrap(),
        "database migrations not applied"
    );

    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(&env.db)
        .await
        .unwrap();
    let response = probe(&env, Method::GET, "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.text().await.unwrap(), "database unavailable");
    // Alive all the same.
    let response = probe(&env, Method::GET, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);

    // Logged, like a success, at DEBUG only: a load balancer asks every few seconds.
    let lines: Vec<String> = log_text()
        .lines()
        .filter(|l| l.contains("answered") && l.contains("route=/readyz status=503"))
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "the 503 was logged");
    for line in lines {
        assert!(line.contains(" DEBUG "), "{line}");
    }
}

#[tokio::test]
async fn shutdown_answers_a_waiting_long_poll_at_once_and_turns_readyz_503() {
    let _ = log();
    let mut env = TestEnv::start_with(|f| {
        f.merge(("login.exchange_timeout_secs", 60))
            .merge(("server.shutdown_grace_secs", 1))
    })
    .await;
    env.set_fault(Fault::Hang);
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let poll = {
        let browser = browser.clone();
        tokio::spawn(async move { browser.text("/get-status?wait=30").await })
    };
    let events = env.events.clone();
    eventually("the long poll waiting", || {
        let watched = events.watched();
        async move { watched == 1 }
    })
    .await;

    let began = Instant::now();
    env.begin_shutdown();
    let (status, body) = poll.await.unwrap();
    // What it knows: the exchange still runs (another instance, or this one's next start,
    // finishes the story; the preloader polls again).
    assert_eq!((status, body.as_str()), (StatusCode::OK, "pending"));
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "answered at once, not after the 30 s wait: {:?}",
        began.elapsed()
    );

    // The port is closed; the router itself says not ready, and still alive.
    for (path, expected) in [
        ("/readyz", StatusCode::SERVICE_UNAVAILABLE),
        ("/healthz", StatusCode::OK),
    ] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = env.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "{path}");
    }

    // The hanging exchange is cut off after the 1 s grace and recorded, never left pending.
    env.stopped().await.expect("a clean stop");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("internal".to_owned()))
    );
}

#[tokio::test]
async fn shutdown_waits_for_an_exchange_that_finishes_within_the_grace() {
    let _ = log();
    let mut env = TestEnv::start_with(|f| f.merge(("server.shutdown_grace_secs", 30))).await;
    env.set_latency(Duration::from_millis(500));
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    env.begin_shutdown();
    env.stopped().await.expect("a clean stop");
    assert_eq!(env.last_operation().await, ("ok".to_owned(), None));
}
