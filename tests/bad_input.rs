//! Garbage, missing, repeated and oversized input, wrong methods and unknown paths: a
//! proper status and page, never a 500, and nothing written.

mod common;

use common::{ADA, TestEnv, chunked_form_post, raw_exchange};
use reqwest::StatusCode;

#[tokio::test]
async fn unknown_paths_and_providers_get_the_404_page() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    for path in [
        "/nope",
        "/authorize/twitter",
        "/callback/twitter?code=x&state=y",
        "/authorize/%FF%FE",
        "/static/../Cargo.toml",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Page not found"), "{path}: {page}");
    }
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn wrong_methods_get_the_405_page() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    for (method, path) in [
        ("POST", "/"),
        ("GET", "/logout"),
        ("POST", "/callback/facebook"),
        ("DELETE", "/get-status"),
        ("PUT", "/success"),
    ] {
        let response = browser
            .client
            .request(method.parse().unwrap(), browser.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(response.text().await.unwrap().contains("Not allowed"));
    }
}

#[tokio::test]
async fn hostile_callback_queries_are_400_and_write_nothing() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.start_login().await;
    // Near the longest URI a client can send (the http crate stops at 64 KiB).
    let huge = "a".repeat(60_000);
    for query in [
        "".to_owned(),
        "?".to_owned(),
        "?state=&code=".to_owned(),
        "?state=%FF%FE&code=%C0%AF".to_owned(),
        "?code=a&code=b&state=c".to_owned(),
        "?state=%".to_owned(),
        format!("?state={huge}&code=x"),
    ] {
        let response = browser.get(&format!("/callback/facebook{query}")).await;
        let status = response.status();
        assert!(
            status.is_client_error(),
            "{}: {status}",
            &query[..query.len().min(40)]
        );
    }
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn tampered_or_unknown_cookies_start_a_fresh_session() {
    let env = TestEnv::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for cookie in [
        "loginwith_session=",
        "loginwith_session=garbage!!",
        "loginwith_session=AAAAAAAAAAAAAAAAAAAAAA",
        "loginwith_session=%FF%FE",
    ] {
        for path in ["/", "/get-status", "/success", "/preloader", "/error"] {
            let response = client
                .get(format!("{}{path}", env.app_url))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert!(
                !response.status().is_server_error(),
                "{cookie} {path}: {}",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn oversized_and_garbage_logout_forms_are_refused() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let huge = "x".repeat(1024 * 1024);
    let response = browser
        .post_form("/logout", &[("csrf_token", huge.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = browser
        .client
        .post(browser.url("/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser
        .post_form("/logout", &[("csrf_token", "a"), ("csrf_token", "b")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        browser.text("/").await.1.contains("Hi, Ada!"),
        "still signed in"
    );
}

#[tokio::test]
async fn oversized_bodies_get_the_413_page_however_they_are_sent() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let limit = env.config.limits.body_bytes;
    for path in [
        "/logout",
        "/account/delete",
        "/facebook/data-deletion",
        "/facebook/deauthorize",
    ] {
        // Announced: refused before the body is read.
        let response = browser
            .client
            .post(browser.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf_token={}", "x".repeat(4 * limit)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Request too large"), "{path}: {page}");
        // Streamed without a length: cut off once it passes the limit.
        let answer = raw_exchange(&env.app_url, chunked_form_post(path, 4 * limit)).await;
        assert_eq!(answer.status, Some(413), "{path} chunked");
        assert!(
            answer.body.contains("Request too large"),
            "{path} chunked: {}",
            answer.body
        );
    }
    // Under the limit, a chunked body is read as usual (here: a logout without a session).
    let answer = raw_exchange(&env.app_url, chunked_form_post("/logout", limit / 2)).await;
    assert_eq!(answer.status, Some(303));
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
    assert_eq!(env.snapshot().await[..2], [1, 1]);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let response = browser.get("/").await;
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");

    let css = browser.get("/static/css/app.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
}
