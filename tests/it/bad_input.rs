//! Garbage, missing, repeated and oversized input, wrong methods and unknown paths: a
//! proper status and page, never a 500, and nothing written.

use loginwith_testkit as common;

use common::{
    ADA, TestEnv, chunked_form_post, location, pre_sign_in_cookie, raw_exchange, session_cookie,
};
use reqwest::{StatusCode, header::HeaderMap};

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
        "/static/nope.css",
        "/static/css/",
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
        ("POST", "/static/css/app.css"),
        ("DELETE", "/static/nope.css"),
        ("GET", "/account/sessions/end-others"),
        ("PUT", "/account/sessions/0123/end"),
        ("GET", "/backchannel-logout/facebook"),
    ] {
        let response = browser.request(method, path).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(response.headers().contains_key("allow"), "{method} {path}");
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
    // Each path's answer to a browser without a session.
    let anonymous: [(&str, StatusCode, &str); 5] = [
        ("/", StatusCode::OK, "Continue with Facebook"),
        ("/get-status", StatusCode::NOT_FOUND, "error"),
        (
            "/success",
            StatusCode::SEE_OTHER,
            "/error?why=nothing-to-finish",
        ),
        ("/preloader", StatusCode::SEE_OTHER, "/"),
        ("/error", StatusCode::OK, "The sign-in did not complete."),
    ];
    // The session cookie and the sealed pre-sign-in cookie alike: empty, garbage, the shape
    // of a sealed value with nothing sealed in it, bytes that are not UTF-8.
    let values = [
        "",
        "garbage!!",
        "AAAAAAAAAAAAAAAAAAAAAA",
        "%FF%FE",
        "1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
    ];
    let names = ["loginwith_session", "loginwith_session_signin"];
    for cookie in names
        .iter()
        .flat_map(|name| values.map(|value| format!("{name}={value}")))
    {
        for (path, status, expected) in anonymous {
            let response = client
                .get(format!("{}{path}", env.app_url))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{cookie} {path}");
            if status == StatusCode::SEE_OTHER {
                assert_eq!(location(&response), expected, "{cookie} {path}");
            } else {
                let page = response.text().await.unwrap();
                assert!(page.contains(expected), "{cookie} {path}: {page}");
            }
        }
        // Starting a sign-in stores no session (under the presented value or any other):
        // it lives in the browser's sealed pre-sign-in cookie.
        let response = client
            .get(format!("{}/authorize/facebook", env.app_url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{cookie}");
        assert_eq!(session_cookie(&response), None, "{cookie}");
        assert!(pre_sign_in_cookie(&response).is_some(), "{cookie}");
    }
    assert_eq!(env.count("session").await, 0);
    assert_eq!(env.snapshot().await, [0, 0, 0]);
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
        "/account/sessions/end-others",
        "/backchannel-logout/facebook",
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

/// Every kind of answer, including those made by layers outside the router, carries every
/// security header; only a static file actually served may be cached.
#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let anonymous = env.browser();
    let mut answers: Vec<(&str, u16, HeaderMap)> = Vec::new();
    let mut record = |what, response: reqwest::Response, status: StatusCode| {
        assert_eq!(response.status(), status, "{what}");
        answers.push((what, status.as_u16(), response.headers().clone()));
    };

    record("page", anonymous.get("/").await, StatusCode::OK);
    record("404", anonymous.get("/nope").await, StatusCode::NOT_FOUND);
    let response = anonymous.get("/static/nope.css").await;
    record("404 under /static/", response, StatusCode::NOT_FOUND);
    let response = anonymous
        .client
        .delete(anonymous.url("/"))
        .send()
        .await
        .unwrap();
    record("405", response, StatusCode::METHOD_NOT_ALLOWED);
    let response = anonymous
        .client
        .post(anonymous.url("/static/css/app.css"))
        .send()
        .await
        .unwrap();
    record(
        "405 under /static/",
        response,
        StatusCode::METHOD_NOT_ALLOWED,
    );
    let response = anonymous.get("/callback/facebook").await;
    record("400", response, StatusCode::BAD_REQUEST);
    let response = browser
        .post_form("/logout", &[("csrf_token", "wrong")])
        .await;
    record("403", response, StatusCode::FORBIDDEN);
    let response = anonymous
        .post_form("/logout", &[("csrf_token", &"x".repeat(64 * 1024))])
        .await;
    record("413 announced", response, StatusCode::PAYLOAD_TOO_LARGE);
    let response = anonymous
        .client
        .get(anonymous.url("/"))
        .header("x-padding", "x".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    record("431", response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let response = anonymous.get("/preloader").await;
    record("303", response, StatusCode::SEE_OTHER);
    let response = anonymous.get("/static/css/app.css").await;
    record("static css", response, StatusCode::OK);
    let response = anonymous.get("/static/js/preloader.js").await;
    record("static js", response, StatusCode::OK);

    // The rate limit, on an app that allows one sign-in start a minute.
    let limited = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 1))
    })
    .await;
    let visitor = limited.browser();
    let response = visitor.get("/authorize/facebook").await;
    record("303 to the provider", response, StatusCode::SEE_OTHER);
    let response = visitor.get("/authorize/facebook").await;
    record("429", response, StatusCode::TOO_MANY_REQUESTS);

    let chunked = raw_exchange(&env.app_url, chunked_form_post("/logout", 64 * 1024)).await;
    assert_eq!(chunked.status, Some(413));
    answers.push(("413 streamed", 413, chunked.headers));

    for (what, status, headers) in &answers {
        let value = |name: &str| {
            headers
                .get(name)
                .unwrap_or_else(|| panic!("{what} ({status}) has no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = value("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(value("x-frame-options"), "DENY", "{what}");
        assert_eq!(value("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(value("referrer-policy"), "no-referrer", "{what}");
        let cache = value("cache-control");
        match *what {
            "static css" => {
                assert_eq!(cache, "public, max-age=3600", "{what}");
                assert_eq!(value("content-type"), "text/css; charset=utf-8", "{what}");
            }
            "static js" => {
                assert_eq!(cache, "public, max-age=3600", "{what}");
                let content_type = value("content-type");
                assert_eq!(content_type, "text/javascript; charset=utf-8", "{what}");
            }
            _ => assert_eq!(cache, "no-store", "{what} ({status})"),
        }
        // Every refusal is one of the app's pages, not a bare status.
        if *status >= 400 {
            assert_eq!(value("content-type"), "text/html; charset=utf-8", "{what}");
        }
    }
}
