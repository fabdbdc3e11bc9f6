//! `/get-status`, `/success` and `/error` on their own: no operation, someone else's
//! operation, an orphaned one.

use loginwith_testkit as common;

use common::{ADA, TestEnv, location};
use loginwith::dev_provider::Fault;
use reqwest::StatusCode;

#[tokio::test]
async fn get_status_without_an_operation_is_a_404_error() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let response = browser.get("/get-status").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "error");
}

#[tokio::test]
async fn success_without_an_operation_goes_to_the_error_page() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let response = browser.get("/success").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/error?why=nothing-to-finish");
    let (status, page) = browser.text(location(&response)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("There is no sign-in to finish"), "{page}");
    assert!(!browser.text("/").await.1.contains("Hi,"));
}

#[tokio::test]
async fn preloader_without_an_operation_goes_home() {
    let env = TestEnv::start().await;
    let response = env.browser().get("/preloader").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn another_sessions_operation_is_invisible() {
    let env = TestEnv::start().await;
    env.set_fault(Fault::Hang);
    let owner = env.browser();
    owner.login_until_preloader(ADA).await;
    assert_eq!(owner.text("/get-status").await.1, "pending");

    let stranger = env.browser();
    let response = stranger.get("/get-status").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text().await.unwrap(), "error");
    assert_eq!(
        location(&stranger.get("/success").await),
        "/error?why=nothing-to-finish"
    );

    // Nor can the stranger finish the owner's sign-in once it succeeds.
    env.set_fault(Fault::None);
    let finisher = env.browser();
    finisher.login(ADA).await;
    assert!(!stranger.text("/").await.1.contains("Hi,"));
}

#[tokio::test]
async fn a_pending_operation_past_its_timeout_reads_as_error() {
    // A long exchange timeout and a hanging provider: only the age check can end it.
    let (env, browser) = TestEnv::with_a_hanging_sign_in().await;
    assert_eq!(browser.text("/get-status").await.1, "pending");

    // As if the process running this exchange had died an hour ago: another instance on
    // the same database, which is not running it, is asked (the instance running it knows
    // it is still pending, and its own time limit ends it).
    sqlx::query("UPDATE async_operation SET created_at = created_at - 3600000")
        .execute(&env.db)
        .await
        .unwrap();
    let other = TestEnv::start_on(
        tempfile::tempdir().unwrap(),
        env.config.database.url.clone(),
        loginwith::config::Environment::Development,
        Vec::new(),
        |f| f,
    )
    .await;
    let elsewhere = common::Browser::with_client(&other.app_url, browser.client.clone());
    assert_eq!(elsewhere.text("/get-status").await.1, "error");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("timeout".to_owned()))
    );
    let (_, page) = elsewhere.text("/error").await;
    assert!(page.contains("did not answer in time"), "{page}");
}

#[tokio::test]
async fn get_status_never_writes_the_session() {
    let env = TestEnv::start().await;
    env.set_fault(Fault::Hang);
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    // The sign-in in progress has no session at all: it lives in the sealed cookie.
    assert_eq!(env.count("session").await, 0);
    let operation: (i64, i64) =
        sqlx::query_as("SELECT async_operation_status_id, updated_at FROM async_operation")
            .fetch_one(&env.db)
            .await
            .unwrap();
    for _ in 0..3 {
        let response = browser.get("/get-status").await;
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(response.text().await.unwrap(), "pending");
    }
    assert_eq!(env.count("session").await, 0);
    let after: (i64, i64) =
        sqlx::query_as("SELECT async_operation_status_id, updated_at FROM async_operation")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(operation, after);
}

#[tokio::test]
async fn the_error_page_without_context_is_still_readable() {
    let env = TestEnv::start().await;
    let (status, page) = env.browser().text("/error").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Try again"));
    assert!(page.contains("href=\"/\""));
}

/// While its exchange runs on this instance, and for a minute after this instance saw it
/// finish, the preloader and `/get-status` answer without reading the database: with the
/// operations table gone they still answer right.
#[tokio::test]
async fn polls_answer_from_what_the_instance_knows_without_a_read() {
    let rename = async |env: &TestEnv| {
        sqlx::query("ALTER TABLE async_operation RENAME TO async_operation_elsewhere")
            .execute(&env.db)
            .await
            .unwrap();
    };
    // Running here: pending.
    let (env, browser) = TestEnv::with_a_hanging_sign_in().await;
    rename(&env).await;
    assert_eq!(browser.text("/get-status").await.1, "pending");
    let (status, page) = browser.text("/preloader").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Facebook"), "{page}");

    // Finished here: ok, and the preloader sends the browser on.
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "ok");
    rename(&env).await;
    assert_eq!(browser.text("/get-status").await.1, "ok");
    assert_eq!(location(&browser.get("/preloader").await), "/success");
}
