//! Facebook's Data Deletion and Deauthorize callbacks, and self-service deletion.

use loginwith_testkit as common;

use common::{ADA, Browser, Person, TestEnv, location};
use loginwith::auth::signed_request::sign;
use reqwest::StatusCode;
use serde_json::Value;

const GRACE: Person<'static> = Person {
    first: "Grace",
    last: "Hopper",
    email: "grace@example.com",
};

/// Facebook's two data callbacks, which take a `signed_request`.
const FACEBOOK_CALLBACKS: [&str; 2] = ["/facebook/data-deletion", "/facebook/deauthorize"];

/// Each of `cases` posted to `path` as the `signed_request` is a 400 with a JSON error.
async fn assert_each_refused(env: &TestEnv, path: &str, cases: &[String]) {
    for signed in cases {
        let response = env
            .browser()
            .post_form(path, &[("signed_request", signed)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{path} {signed}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn a_data_deletion_request_deletes_the_person_and_reports_it() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    env.browser().login(GRACE).await;
    let ada_id = env.dev.user_id_for_email(ADA.email);

    let response = env
        .browser()
        .post_form(
            "/facebook/data-deletion",
            &[("signed_request", &env.dev.signed_request(&ada_id))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    let url = answer["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/deletion/{code}", env.app_url));

    // Ada is gone, profile, identity and operations; Grace is untouched.
    let names: Vec<String> = sqlx::query_scalar("SELECT first_name FROM user_profile")
        .fetch_all(&env.db)
        .await
        .unwrap();
    assert_eq!(names, vec!["Grace".to_owned()]);
    assert_eq!(env.count("user_identity").await, 1);
    assert_eq!(env.count("async_operation").await, 1);

    let (status, page) = env.browser().text(url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&code));
    assert!(page.contains("We also deleted your profile"), "{page}");
}

#[tokio::test]
async fn a_deletion_request_for_an_unknown_person_is_answered_and_deletes_nothing() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let response = env
        .browser()
        .post_form(
            "/facebook/data-deletion",
            &[("signed_request", &env.dev.signed_request("999999"))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let (_, page) = env.browser().text(answer["url"].as_str().unwrap()).await;
    assert!(page.contains("We held no data"), "{page}");
    assert_eq!(env.snapshot().await, [1, 1, 1]);
}

#[tokio::test]
async fn forged_malformed_and_wrongly_signed_requests_are_refused() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let ada_id = env.dev.user_id_for_email(ADA.email);
    let genuine = env.dev.signed_request(&ada_id);
    let (_, payload) = genuine.split_once('.').unwrap();
    let cases = [
        // Signed with another secret.
        sign(
            &format!(r#"{{"algorithm":"HMAC-SHA256","user_id":"{ada_id}"}}"#),
            "not-the-app-secret",
        ),
        // A forged signature on a genuine payload.
        format!("c2lnbmF0dXJl.{payload}"),
        // The right secret, another algorithm.
        sign(
            &format!(r#"{{"algorithm":"HMAC-SHA1","user_id":"{ada_id}"}}"#),
            common::CLIENT_SECRET,
        ),
        // Not base64url at all.
        "%%%.***".to_owned(),
        "".to_owned(),
        "no-dot-here".to_owned(),
    ];
    for path in FACEBOOK_CALLBACKS {
        assert_each_refused(&env, path, &cases).await;
        let response = env.browser().post_form(path, &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(env.snapshot().await, [1, 1, 1]);
    assert_eq!(env.count("deletion_request").await, 0);
}

/// A genuinely signed request is still refused when it is old (a captured one replayed days
/// later must not delete anyone), dated in the future, or undated; a fresh one still works.
#[tokio::test]
async fn old_future_and_undated_signed_requests_are_refused() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let ada_id = env.dev.user_id_for_email(ADA.email);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = |issued_at: &str| {
        let issued_at = if issued_at.is_empty() {
            String::new()
        } else {
            format!(r#","issued_at":{issued_at}"#)
        };
        sign(
            &format!(r#"{{"algorithm":"HMAC-SHA256","user_id":"{ada_id}"{issued_at}}}"#),
            common::CLIENT_SECRET,
        )
    };
    let days_ago = |days: u64| (now - days * 86_400).to_string();
    let cases = [
        // Issued 30 days ago, and just over an hour ago.
        signed(&days_ago(30)),
        signed(&(now - 3_700).to_string()),
        // An hour ahead of this server's clock.
        signed(&(now + 3_600).to_string()),
        // No issued_at at all, or not a number of seconds.
        signed(""),
        signed(&format!(r#""{now}""#)),
        signed("null"),
    ];
    for path in FACEBOOK_CALLBACKS {
        assert_each_refused(&env, path, &cases).await;
    }
    assert_eq!(env.snapshot().await, [1, 1, 1]);
    assert_eq!(env.count("deletion_request").await, 0);
    // Issued ten minutes ago: Facebook's own, delivered late, still deletes.
    let response = env
        .browser()
        .post_form(
            "/facebook/data-deletion",
            &[("signed_request", &signed(&(now - 600).to_string()))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn deauthorize_unlinks_the_identity() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let ada_id = env.dev.user_id_for_email(ADA.email);
    let response = env
        .browser()
        .post_form(
            "/facebook/deauthorize",
            &[("signed_request", &env.dev.signed_request(&ada_id))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(env.count("user_identity").await, 0);
    // It was Ada's only identity: her profile went with it, and her browser is signed out.
    assert_eq!(env.count("user_profile").await, 0);
    assert!(browser.text("/").await.1.contains("Continue with Facebook"));
}

#[tokio::test]
async fn a_person_can_delete_their_own_account() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let (status, page) = browser.text("/account/delete").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Delete my account"));
    assert!(
        page.contains("the link to your Facebook account"),
        "names what is unlinked: {page}"
    );
    let token = browser.csrf_token_on("/account/delete").await;

    let response = browser
        .post_form("/account/delete", &[("csrf_token", "forged")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser.post_form("/account/delete", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(env.snapshot().await, [1, 1, 1]);

    let response = browser
        .post_form("/account/delete", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert_eq!(env.snapshot().await, [0, 0, 0]);
    let (_, home) = browser.text("/").await;
    assert!(home.contains("Your account and everything we kept about you were deleted."));
    assert!(home.contains("Continue with Facebook"));

    // Anonymous visitors are sent home.
    let response = env.browser().get("/account/delete").await;
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn unknown_deletion_codes_are_404() {
    let env = TestEnv::start().await;
    for code in ["nope", "0123456789abcdef0123456789abcdef", "%FF"] {
        let response = env.browser().get(&format!("/deletion/{code}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{code}");
    }
}

const BOB: Person<'static> = Person {
    first: "Bob",
    last: "Builder",
    email: "bob@example.com",
};

/// Sessions whose data names `user` as signed in (read from the data itself, not from the
/// column the store keeps beside it).
async fn sessions_signed_in_as(env: &TestEnv, user: i64) -> i64 {
    let data: Vec<String> = sqlx::query_scalar("SELECT data FROM session")
        .fetch_all(&env.db)
        .await
        .unwrap();
    let signed_in = data.iter().filter(|data| {
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        data["signed_in"]["user"].as_i64() == Some(user)
    });
    i64::try_from(signed_in.count()).unwrap()
}

/// Ada signs in on her laptop and her phone; `delete` removes her through one path. Her phone
/// must be signed out at once, and stay signed out when a newcomer signs in (whose id must not
/// be hers).
async fn every_browser_is_signed_out_after(
    delete: impl AsyncFnOnce(&TestEnv, &Browser, &str) -> StatusCode,
) {
    let env = TestEnv::start().await;
    let (laptop, phone) = (env.browser(), env.browser());
    assert!(laptop.login(ADA).await.contains("Hi, Ada!"));
    assert!(phone.login(ADA).await.contains("Hi, Ada!"));
    let ada: i64 = sqlx::query_scalar("SELECT id FROM user_profile")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(sessions_signed_in_as(&env, ada).await, 2);

    let facebook_id = env.dev.user_id_for_email(ADA.email);
    let status = delete(&env, &laptop, &facebook_id).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    assert_eq!(
        sessions_signed_in_as(&env, ada).await,
        0,
        "every session of hers ended at once"
    );
    let (_, page) = phone.text("/").await;
    assert!(page.contains("Continue with Facebook"), "{page}");

    assert!(env.browser().login(BOB).await.contains("Hi, Bob!"));
    let bob: i64 = sqlx::query_scalar("SELECT id FROM user_profile WHERE first_name = 'Bob'")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        bob > ada,
        "a deleted id is never handed out again: {bob} after {ada}"
    );
    let (_, page) = phone.text("/").await;
    assert!(!page.contains("Hi,"), "Ada's phone is nobody's: {page}");
    assert!(page.contains("Continue with Facebook"), "{page}");
}

#[tokio::test]
async fn deleting_your_account_signs_out_your_other_browsers() {
    every_browser_is_signed_out_after(async |_, laptop, _| {
        let token = laptop.csrf_token_on("/account/delete").await;
        laptop
            .post_form("/account/delete", &[("csrf_token", &token)])
            .await
            .status()
    })
    .await;
}

#[tokio::test]
async fn a_data_deletion_request_signs_out_every_browser() {
    every_browser_is_signed_out_after(async |env, _, facebook_id| {
        let signed = env.dev.signed_request(facebook_id);
        env.browser()
            .post_form("/facebook/data-deletion", &[("signed_request", &signed)])
            .await
            .status()
    })
    .await;
}

#[tokio::test]
async fn deauthorize_signs_out_every_browser() {
    every_browser_is_signed_out_after(async |env, _, facebook_id| {
        let signed = env.dev.signed_request(facebook_id);
        env.browser()
            .post_form("/facebook/deauthorize", &[("signed_request", &signed)])
            .await
            .status()
    })
    .await;
}

#[tokio::test]
async fn facebook_data_callbacks_are_rate_limited_per_address() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.data_callback_per_minute", 1))
            .merge(("limits.data_callback_burst", 2))
    })
    .await;
    let browser = env.browser();
    let signed = env.dev.signed_request("999999");
    for path in ["/facebook/data-deletion", "/facebook/deauthorize"] {
        let response = browser
            .post_form(path, &[("signed_request", &signed)])
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    for path in ["/facebook/data-deletion", "/facebook/deauthorize"] {
        let response = browser
            .post_form(path, &[("signed_request", &signed)])
            .await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert!(response.text().await.unwrap().contains("Too many"));
    }
    // Refused requests deleted nothing and recorded nothing.
    assert_eq!(env.count("deletion_request").await, 1);
    // Sign-in has a budget of its own.
    assert_eq!(
        browser.get("/authorize/facebook").await.status(),
        StatusCode::SEE_OTHER
    );
}

/// Facebook's calls exist only with a Facebook app: a site that signs in with GitHub alone
/// answers them 404 (before, a random secret refused every signature there), and a GET is
/// the 404 page too, not the 405 one.
#[tokio::test]
async fn without_a_facebook_app_there_are_no_facebook_callbacks() {
    // GitHub alone: the harness's Facebook provider unset (an empty client id disables it).
    let gh = common::github::GitHubEnv::start_with(|f| {
        f.merge(("providers.facebook.client_id", ""))
            .merge(("providers.facebook.client_secret", ""))
            .merge(("providers.facebook.issuer", ""))
    })
    .await;
    let browser = gh.env.browser();
    for path in FACEBOOK_CALLBACKS {
        let posted = browser.post_form(path, &[("signed_request", "x.y")]).await;
        assert_eq!(posted.status(), StatusCode::NOT_FOUND, "POST {path}");
        assert_eq!(
            browser.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    // With the development provider standing in for Facebook, they are there.
    let env = TestEnv::start().await;
    let browser = env.browser();
    for path in FACEBOOK_CALLBACKS {
        let posted = browser.post_form(path, &[("signed_request", "x.y")]).await;
        assert_eq!(posted.status(), StatusCode::BAD_REQUEST, "POST {path}");
    }
}

/// The callbacks act on the identities of the Facebook app that signed them, under that
/// provider's own name: a site that calls its Facebook provider `meta` has its people's
/// identities kept as `meta`, and Facebook's deletion request deletes exactly those (before,
/// the callbacks looked under the name `facebook` whatever the configuration said).
#[tokio::test]
async fn the_callbacks_delete_the_identity_under_the_facebook_providers_own_name() {
    const SECRET: &str = "meta-app-secret";
    let env = TestEnv::start_with(|f| {
        f.merge(("providers.facebook.client_id", ""))
            .merge(("providers.facebook.client_secret", ""))
            .merge(("providers.facebook.issuer", ""))
            .merge(("providers.meta.kind", "facebook"))
            .merge(("providers.meta.client_id", "1234567890123456"))
            .merge(("providers.meta.client_secret", SECRET))
    })
    .await;
    let now = loginwith::store::now_ms();
    let person: i64 = sqlx::query_scalar(
        "INSERT INTO user_profile (first_name, last_name, email, created_at, updated_at)
         VALUES ('Ada', 'Lovelace', 'ada@example.com', $1, $1) RETURNING id",
    )
    .bind(now)
    .fetch_one(&env.db)
    .await
    .unwrap();
    for provider in ["meta", "facebook"] {
        sqlx::query(
            "INSERT INTO user_identity
             (user_profile_id, provider, provider_user_id, created_at, last_login_at)
             VALUES ($1, $2, '4242', $3, $3)",
        )
        .bind(person)
        .bind(provider)
        .bind(now)
        .execute(&env.db)
        .await
        .unwrap();
    }
    let signed = sign(
        &format!(
            r#"{{"algorithm":"HMAC-SHA256","issued_at":{},"user_id":"4242"}}"#,
            now / 1000
        ),
        SECRET,
    );
    let response = env
        .browser()
        .post_form("/facebook/deauthorize", &[("signed_request", &signed)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let left: Vec<String> = sqlx::query_scalar("SELECT provider FROM user_identity")
        .fetch_all(&env.db)
        .await
        .unwrap();
    assert_eq!(left, ["facebook"], "only meta's identity is gone");
}
