//! Several instances on one database (SQLite file or PostgreSQL): any instance serves any
//! request of a sign-in, the callback on one, the status on another, `/success` on a third,
//! and the person is signed in on all of them.

mod common;

use common::{ADA, Browser, TestEnv, db::TestDb};
use loginwith::config::Environment;
use reqwest::StatusCode;

async fn instance(db: &TestDb) -> TestEnv {
    TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        db.url.clone(),
        Environment::Development,
        Vec::new(),
        |f| f,
    )
    .await
}

#[tokio::test]
async fn a_sign_in_crosses_three_instances_on_one_database() {
    for db in TestDb::all().await {
        let (a, b, c) = (
            instance(&db).await,
            instance(&db).await,
            instance(&db).await,
        );
        // Cookies are per host, not per port: the one session cookie reaches all three.
        let on_a = a.browser();
        let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
        let on_c = Browser::with_client(&c.app_url, on_a.client.clone());

        on_a.login_until_preloader(ADA).await;
        let (status, body) = on_b.text("/get-status?wait=20").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ok"),
            "{}",
            db.backend
        );
        let response = on_c.get("/success").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", db.backend);
        for (name, browser) in [("a", &on_a), ("b", &on_b), ("c", &on_c)] {
            let (_, home) = browser.text("/").await;
            assert!(home.contains("Hi, Ada!"), "{}: instance {name}", db.backend);
        }
        let inspect = db.inspect().await;
        assert_eq!(inspect.count("user_profile").await, 1, "{}", db.backend);

        // Signed out on one, signed out everywhere.
        let token = on_b.csrf_token().await;
        let response = on_b.post_form("/logout", &[("csrf_token", &token)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", db.backend);
        for (name, browser) in [("a", &on_a), ("c", &on_c)] {
            let (_, home) = browser.text("/").await;
            assert!(
                !home.contains("Hi, Ada!"),
                "{}: instance {name}",
                db.backend
            );
        }
    }
}

/// The long poll on one instance answers when the exchange commits on another. On PostgreSQL
/// that is the commit's `NOTIFY` (the periodic re-read is turned off here, so nothing else
/// could answer); on SQLite there is no such announcement and only the re-read would.
#[tokio::test]
async fn a_long_poll_is_woken_by_an_exchange_on_another_instance() {
    for db in TestDb::all().await {
        let a = instance(&db).await;
        let b = TestEnv::start_on(
            tempfile::tempdir().expect("temp dir"),
            db.url.clone(),
            Environment::Development,
            Vec::new(),
            |f| f.merge(("login.status_recheck_ms", 3_600_000)),
        )
        .await;
        // Long enough that the poll on B is waiting before the exchange on A ends; on SQLite
        // longer than the whole wait (at its end the poll reads the database once more).
        let latency = if db.backend == "postgres" { 300 } else { 1500 };
        a.set_latency(std::time::Duration::from_millis(latency));
        let on_a = a.browser();
        let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
        on_a.login_until_preloader(ADA).await;
        match db.backend {
            "postgres" => {
                // Woken, not answered by the last read at the end of its 30 s (the exchange
                // takes 0.6 s; without the announcement this poll would answer at 30 s).
                let started = std::time::Instant::now();
                let (_, body) = on_b.text("/get-status?wait=30").await;
                assert_eq!(body, "ok");
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "woken by the commit's announcement, not at the end of the wait: {:?}",
                    started.elapsed()
                );
            }
            _ => {
                let (_, body) = on_b.text("/get-status?wait=1").await;
                assert_eq!(body, "pending", "SQLite has no announcements to wake it");
            }
        }
    }
}

/// Instances starting together on a new database each run the migrations: one applies them
/// (PostgreSQL's migrator holds an advisory lock meanwhile), the others find them applied.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    for db in TestDb::all().await {
        let (a, b, c) = tokio::join!(
            loginwith::store::Store::connect(&db.url),
            loginwith::store::Store::connect(&db.url),
            loginwith::store::Store::connect(&db.url),
        );
        for store in [a, b, c] {
            let store = store.unwrap_or_else(|e| panic!("{}: {e}", db.backend));
            assert!(store.migrations_applied().await.unwrap(), "{}", db.backend);
            store.close().await;
        }
    }
}
