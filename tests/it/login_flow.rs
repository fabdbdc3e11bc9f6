//! Whole sign-in flows through the real router and the development provider.

use loginwith_testkit as common;

use std::time::Duration;

use common::{ADA, Person, TestEnv, location, param, session_cookie};
use reqwest::StatusCode;

#[tokio::test]
async fn first_login_creates_one_user_and_one_identity() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let home = browser.login(ADA).await;
    assert!(home.contains("Hi, Ada!"), "greets by first name: {home}");
    assert!(home.contains("action=\"/logout\""), "offers logout");

    let (first, last, email): (String, String, Option<String>) =
        sqlx::query_as("SELECT first_name, last_name, email FROM user_profile")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(
        (first.as_str(), last.as_str(), email.as_deref()),
        ("Ada", "Lovelace", Some("ada@example.com"))
    );
    let (provider, provider_user_id): (String, String) =
        sqlx::query_as("SELECT provider, provider_user_id FROM user_identity")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(provider, "facebook");
    assert!(!provider_user_id.is_empty());
    assert_eq!(env.snapshot().await, [1, 1, 1]);
    let ok_with_user: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM async_operation WHERE async_operation_status_id = (SELECT id FROM async_operation_status WHERE code = 'ok') AND user_profile_id IS NOT NULL",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(ok_with_user, 1);

    // Reload: still signed in.
    let (_, again) = browser.text("/").await;
    assert!(again.contains("Hi, Ada!"));
}

#[tokio::test]
async fn second_login_updates_the_user_and_creates_nothing_new() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let renamed = Person {
        first: "Augusta",
        last: "King",
        ..ADA
    };
    let home = env.browser().login(renamed).await;
    assert!(home.contains("Hi, Augusta!"));
    assert_eq!(env.count("user_profile").await, 1);
    assert_eq!(env.count("user_identity").await, 1);
    let (first, last): (String, String) =
        sqlx::query_as("SELECT first_name, last_name FROM user_profile")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!((first.as_str(), last.as_str()), ("Augusta", "King"));
}

#[tokio::test]
async fn concurrent_first_logins_of_one_person_make_one_user() {
    let env = TestEnv::start().await;
    // Latency keeps both exchanges in flight together, so their upserts race.
    env.set_latency(Duration::from_millis(300));
    env.sign_in_in_parallel(4, ADA).await;
    assert_eq!(env.count("user_profile").await, 1);
    assert_eq!(env.count("user_identity").await, 1);
    assert_eq!(env.count("async_operation").await, 4);
}

#[tokio::test]
async fn logout_requires_the_csrf_token() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let token = browser.csrf_token().await;

    for form in [
        vec![],
        vec![("csrf_token", "forged")],
        vec![("csrf_token", "")],
    ] {
        let response = browser.post_form("/logout", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let page = response.text().await.unwrap();
        assert!(page.contains("<h1>"), "a proper page");
        assert!(
            browser.text("/").await.1.contains("Hi, Ada!"),
            "still signed in"
        );
    }

    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let (_, home) = browser.text("/").await;
    assert!(
        home.contains("Continue with Facebook"),
        "signed out: {home}"
    );
    assert!(!home.contains("Hi, Ada!"));
}

#[tokio::test]
async fn cancel_at_the_dialog_explains_and_creates_nothing() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "cancel").await;
    assert!(callback.contains("error=access_denied"));
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/error");
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("You cancelled signing in with Facebook"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/authorize/facebook\""),
        "Try again restarts"
    );
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn bad_missing_and_replayed_state_are_refused_and_write_nothing() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let code = param(&callback, "code");

    for bad in [
        format!("/callback/facebook?code={code}"),
        format!("/callback/facebook?code={code}&state="),
        format!("/callback/facebook?code={code}&state=not-the-state"),
        format!("/callback/facebook?code={code}&state=a&state=b"),
        "/callback/facebook".to_owned(),
    ] {
        let response = browser.get(&bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(response.text().await.unwrap().contains("<h1>"));
    }
    assert_eq!(env.snapshot().await, [0, 0, 0]);

    // A refused callback clears the pending state: the genuine one no longer works either.
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.snapshot().await, [0, 0, 0]);

    // A fresh sign-in works once; replaying its callback is refused.
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "ok");
    let count = env.count("async_operation").await;
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    assert_eq!(browser.get(&callback).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get(&callback).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(env.count("async_operation").await, count + 1);
}

#[tokio::test]
async fn callback_without_code_is_refused() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let state = param(dialog.as_str(), "state");
    let response = browser
        .get(&format!(
            "/callback/facebook?state={state}&iss={}",
            env.dev_url
        ))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn a_replayed_code_ends_as_denied() {
    let env = TestEnv::start().await;
    let victim = env.browser();
    let dialog = victim.start_login().await;
    let callback = victim.consent(&dialog, ADA, "allow").await;
    assert_eq!(victim.get(&callback).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(victim.wait_status().await, "ok");
    let used_code = param(&callback, "code");

    // Another browser with a valid state of its own presents the spent code.
    let attacker = env.browser();
    let dialog = attacker.start_login().await;
    let state = param(dialog.as_str(), "state");
    let response = attacker
        .get(&format!(
            "/callback/facebook?code={used_code}&state={state}&iss={}",
            env.dev_url
        ))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(attacker.wait_status().await, "error");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("denied".to_owned()))
    );
    let response = attacker.get("/success").await;
    assert_eq!(location(&response), "/error");
    let (_, page) = attacker.text("/error").await;
    assert!(page.contains("did not accept this sign-in"), "{page}");
    assert!(!attacker.text("/").await.1.contains("Hi,"));
    assert_eq!(env.count("user_profile").await, 1);
}

#[tokio::test]
async fn authorize_sends_every_parameter_facebook_needs() {
    let env = TestEnv::start().await;
    let dialog = env.browser().start_login().await;
    assert!(
        dialog
            .as_str()
            .starts_with(&format!("{}/dialog/oauth?", env.dev_url))
    );
    let params: std::collections::HashMap<String, String> =
        dialog.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], common::CLIENT_ID);
    assert_eq!(
        params["redirect_uri"],
        format!("{}/callback/facebook", env.app_url)
    );
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], "public_profile email");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    // At least 128 bits of randomness; ours is 256 bits in base64url.
    assert!(params["state"].len() >= 43, "state {}", params["state"]);
    let other = env.browser().start_login().await;
    let other_state = param(other.as_str(), "state");
    assert_ne!(params["state"], other_state);
}

#[tokio::test]
async fn two_tabs_can_sign_in_side_by_side() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let first_tab = browser.start_login().await;
    let second_tab = browser.start_login().await;
    let callback = browser.consent(&first_tab, ADA, "allow").await;
    assert_eq!(browser.get(&callback).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.wait_status().await, "ok");
    let callback = browser.consent(&second_tab, ADA, "allow").await;
    assert_eq!(browser.get(&callback).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.wait_status().await, "ok");
}

/// Four sign-ins started in four tabs all stay valid (the sealed cookie keeps four); a fifth
/// pushes out the oldest.
#[tokio::test]
async fn four_tabs_stay_valid_side_by_side_and_a_fifth_pushes_out_the_oldest() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let mut tabs = Vec::new();
    for _ in 0..5 {
        tabs.push(browser.start_login().await);
    }
    // The oldest is gone: its answer is refused (and, as any refused callback, clears the
    // others; so it is tried last).
    let oldest = tabs.remove(0);
    for tab in tabs.iter().rev() {
        let callback = browser.consent(tab, ADA, "allow").await;
        let response = browser.get(&callback).await;
        assert_eq!(location(&response), "/preloader");
        assert_eq!(browser.wait_status().await, "ok");
    }
    let callback = browser.consent(&oldest, ADA, "allow").await;
    assert_eq!(
        browser.get(&callback).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(env.count("async_operation").await, 4);
}

#[tokio::test]
async fn signed_in_people_are_not_sent_to_the_provider_again() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let response = browser.get("/authorize/facebook").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn session_id_changes_at_sign_in() {
    let env = TestEnv::start().await;
    // A browser that brings a session id from before (an anonymous session's, or one planted).
    let anonymous = env.anonymous_session().await;
    let browser = env.browser();
    browser.set_cookie(&format!("loginwith_session={anonymous}; Path=/"));
    let response = browser.get("/authorize/facebook").await;
    // Starting a sign-in makes no session: only the sealed pre-sign-in cookie.
    assert_eq!(session_cookie(&response), None);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.starts_with("loginwith_session_signin="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let dialog = url::Url::parse(location(&response)).unwrap();
    let callback = browser.consent(&dialog, ADA, "allow").await;
    browser.get(&callback).await;
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    let signed_in = session_cookie(&response).expect("a new cookie at sign-in");
    assert_ne!(anonymous, signed_in);
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("loginwith_session="))
        .unwrap();
    assert!(set_cookie.contains("Max-Age="), "persistent: {set_cookie}");

    // The old id is worthless now.
    let planted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = planted
        .get(format!("{}/", env.app_url))
        .header("cookie", format!("loginwith_session={anonymous}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Hi, Ada!"));
}

#[tokio::test]
async fn the_auto_approving_dialog_signs_in_the_person_named_by_the_dev_user_cookie() {
    use loginwith::dev_provider::{DevProvider, DevProviderSettings, Faults};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dev_url = format!("http://{}", listener.local_addr().unwrap());
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: "auto".into(),
            client_secret: "secret".into(),
            redirect_uris: vec!["http://app.example/callback/facebook".into()],
            auto_approve: true,
            issuer: None,
        },
        Faults::default(),
    );
    let router = dev.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{dev_url}/dialog/oauth?client_id=auto&redirect_uri=http%3A%2F%2Fapp.example%2Fcallback%2Ffacebook&response_type=code&state=s1"
        ))
        .header("cookie", "dev_user=grace@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    assert!(
        target.starts_with("http://app.example/callback/facebook?code="),
        "{target}"
    );
    assert!(target.ends_with("&state=s1#_=_"), "{target}");
    // An unregistered redirect URI still gets Facebook's error page, never a redirect.
    let response = client
        .get(format!(
            "{dev_url}/dialog/oauth?client_id=auto&redirect_uri=http%3A%2F%2Fevil.example%2F&response_type=code"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// Starting a sign-in reads and writes nothing in the database: with every table it could
/// touch gone, a stranger's `/authorize` still sends them to the provider (a robot hammering
/// it costs no statement), and the callback is the first to need the database.
#[tokio::test]
async fn a_strangers_authorize_touches_no_table() {
    let env = TestEnv::start().await;
    for table in ["session", "async_operation", "sealing_key", "user_profile"] {
        // Table names of this test, not input.
        let sql = format!("ALTER TABLE {table} RENAME TO {table}_elsewhere");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&env.db)
            .await
            .unwrap();
    }
    let browser = env.browser();
    for _ in 0..5 {
        let response = browser.get("/authorize/facebook").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(location(&response).starts_with(&env.dev_url));
    }
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// A tab waiting on the preloader keeps waiting when another tab starts a sign-in meanwhile:
/// starting one adds to the sealed cookie, it does not forget the exchange waited for.
#[tokio::test]
async fn starting_a_sign_in_in_another_tab_does_not_end_the_one_waiting() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    browser.start_login().await;
    assert_eq!(browser.wait_status().await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
}
