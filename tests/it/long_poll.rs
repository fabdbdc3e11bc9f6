//! `/get-status?wait=`: answers the moment the operation leaves `pending`, times out with
//! `pending`, and works when the exchange runs on another instance sharing the database.

use loginwith_testkit as common;

use std::time::{Duration, Instant};

use common::{ADA, Browser, TestEnv};
use loginwith::{config::Environment, dev_provider::Fault};
use reqwest::StatusCode;

/// Far longer than any exchange here: answering well before it proves the wait ended early.
const LONG_WAIT: &str = "/get-status?wait=30";

#[tokio::test]
async fn the_long_poll_answers_early_on_ok() {
    let env = TestEnv::start().await;
    env.set_latency(Duration::from_millis(300));
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let started = Instant::now();
    let (status, body) = browser.text(LONG_WAIT).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    answered_early(started);
}

#[tokio::test]
async fn the_long_poll_answers_early_on_error() {
    let env = TestEnv::start().await;
    env.dev.set_faults(loginwith::dev_provider::Faults {
        latency: Duration::from_millis(300),
        fault: Fault::TokenError,
    });
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let started = Instant::now();
    assert_eq!(browser.text(LONG_WAIT).await.1, "error");
    answered_early(started);
}

#[tokio::test]
async fn the_long_poll_times_out_with_pending() {
    let (_env, browser) = TestEnv::with_a_hanging_sign_in().await;
    let started = Instant::now();
    assert_eq!(browser.text("/get-status?wait=1").await.1, "pending");
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
}

#[tokio::test]
async fn the_long_poll_works_across_two_instances_sharing_one_database() {
    let first = TestEnv::start().await;
    first.set_latency(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let database_url = first.config.database.url.clone();
    let second = TestEnv::start_on(
        dir,
        database_url,
        Environment::Development,
        Vec::new(),
        |f| f,
    )
    .await;

    // The sign-in (and so the exchange) happens on the first instance...
    let browser = first.browser();
    browser.login_until_preloader(ADA).await;
    // ...the long poll goes to the second, which never hears the first's notification.
    // Cookies are per host, not per port: the same session cookie reaches both.
    let other = Browser::with_client(&second.app_url, browser.client.clone());
    let started = Instant::now();
    let (status, body) = other.text(LONG_WAIT).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    answered_early(started);
}

#[tokio::test]
async fn without_wait_it_answers_at_once_and_bad_waits_are_refused() {
    let (env, browser) = TestEnv::with_a_hanging_sign_in().await;
    assert_eq!(browser.text("/get-status").await.1, "pending");
    assert_eq!(browser.text("/get-status?wait=0").await.1, "pending");
    for bad in ["wait=soon", "wait=-1", "wait=1&wait=2"] {
        let (status, _) = browser.text(&format!("/get-status?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // No operation: still the 404 `error`, at once.
    let (status, body) = env.browser().text(LONG_WAIT).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "error"));
}

#[tokio::test]
async fn the_long_poll_is_woken_in_process_not_by_the_database_re_read() {
    // The re-read made rare (an hour): only the exchange task's in-process wake-up can answer
    // this poll before its 30 s are up.
    let env = TestEnv::start_with(|f| f.merge(("login.status_recheck_ms", 3_600_000))).await;
    env.set_latency(Duration::from_millis(300));
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let sent_ms = now_ms();
    let (status, body) = browser.text(LONG_WAIT).await;
    let answered_ms = now_ms();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let finished_ms: i64 = sqlx::query_scalar("SELECT updated_at FROM async_operation")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        finished_ms > sent_ms,
        "the poll was sent while the exchange ran ({finished_ms} > {sent_ms})"
    );
    // Typically a millisecond or two; the bound leaves room for a loaded CI machine while
    // staying far below the hour a database re-read would take.
    let lag = answered_ms - finished_ms;
    assert!(lag < 1_000, "answered {lag} ms after the exchange ended");
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// Far less than [`LONG_WAIT`]'s 30 s: the poll answered because the exchange ended.
fn answered_early(started: Instant) {
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
