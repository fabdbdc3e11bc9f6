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
