//! An OpenID Connect issuer ends sign-ins: Back-Channel Logout 1.0 (`POST
//! /backchannel-logout/{provider}` with a signed logout token, by `sid` or by `sub`, each
//! token once on every instance, nothing ended by a bad one) and RP-Initiated Logout 1.0
//! ("Log out" goes on to the issuer's `end_session_endpoint` with `sign_out_at_provider`).

use std::sync::atomic::Ordering;

use loginwith_testkit as common;

use common::{
    Browser, TestEnv, location,
    oidc::{OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OidcEnv},
};
use loginwith::config::Environment;
use reqwest::{StatusCode, header};
use serde_json::{Map, Value};

const LOGOUT: &str = "/backchannel-logout/corp";

/// Signs a fresh browser in through the issuer as `sub`, the ID token carrying `sid`.
async fn signed_in(oidc: &OidcEnv, sub: &str, sid: Option<&str>) -> Browser {
    oidc.issuer.set(|b| {
        b.sub = sub.to_owned();
        b.email = format!("{sub}@corp.example");
        match sid {
            Some(sid) => b.id_token_claims.insert("sid".into(), sid.into()),
            None => b.id_token_claims.remove("sid"),
        };
    });
    let browser = oidc.env.browser();
    assert_eq!(oidc.sign_in(&browser).await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert_eq!(oidc.env.auth_check(&browser).await, StatusCode::OK);
    browser
}

/// Posts `token` as the issuer does; the status and the JSON answer (null when empty).
async fn post_logout(env: &TestEnv, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{LOGOUT}", env.app_url))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("back-channel POST");
    let status = response.status();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn with(claims: &mut Map<String, Value>, name: &str, value: impl Into<Value>) {
    claims.insert(name.to_owned(), value.into());
}

#[tokio::test]
async fn a_logout_token_naming_a_sid_ends_that_sign_in_only() {
    let oidc = OidcEnv::start().await;
    let laptop = signed_in(&oidc, "ada-0001", Some("sid-laptop")).await;
    let phone = signed_in(&oidc, "ada-0001", Some("sid-phone")).await;
    let grace = signed_in(&oidc, "grace-0002", Some("sid-grace")).await;
    let sids: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT provider_sid FROM session WHERE user_id IS NOT NULL ORDER BY provider_sid",
    )
    .fetch_all(&oidc.env.db)
    .await
    .expect("sids");
    assert_eq!(
        sids,
        [
            Some("sid-grace".into()),
            Some("sid-laptop".into()),
            Some("sid-phone".into())
        ],
        "each sign-in keeps its issuer session id"
    );

    let token = oidc.issuer.logout_token(|c| {
        with(c, "sid", "sid-laptop");
        with(c, "sub", "ada-0001");
    });
    let (status, body) = post_logout(&oidc.env, &token).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(oidc.env.auth_check(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        oidc.env.auth_check(&phone).await,
        StatusCode::OK,
        "her other sign-in stays"
    );
    assert_eq!(oidc.env.auth_check(&grace).await, StatusCode::OK);
    // The page agrees: signed out, the sign-in buttons again.
    assert!(!laptop.text("/").await.1.contains("Hi, "));
}

#[tokio::test]
async fn a_logout_token_with_only_a_sub_ends_every_sign_in_of_that_person_with_that_issuer() {
    let oidc = OidcEnv::start().await;
    let laptop = signed_in(&oidc, "ada-0001", Some("sid-1")).await;
    let phone = signed_in(&oidc, "ada-0001", None).await;
    let grace = signed_in(&oidc, "grace-0002", Some("sid-3")).await;
    let token = oidc.issuer.logout_token(|c| with(c, "sub", "ada-0001"));
    assert_eq!(post_logout(&oidc.env, &token).await.0, StatusCode::OK);
    assert_eq!(oidc.env.auth_check(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(oidc.env.auth_check(&phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(oidc.env.auth_check(&grace).await, StatusCode::OK);
    // A person the issuer names but who never signed in here: done, nothing ended.
    let token = oidc.issuer.logout_token(|c| with(c, "sub", "nobody-9999"));
    assert_eq!(post_logout(&oidc.env, &token).await.0, StatusCode::OK);
    assert_eq!(oidc.env.auth_check(&grace).await, StatusCode::OK);
}

#[tokio::test]
async fn forged_replayed_expired_or_malformed_logout_tokens_end_nothing() {
    let oidc = OidcEnv::start().await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let issuer = &oidc.issuer;
    let now = chrono::Utc::now().timestamp();
    let bad: Vec<(&str, String)> = vec![
        (
            "signature",
            issuer.forged_logout_token(|c| with(c, "sid", "sid-ada")),
        ),
        // HS256 keyed with the issuer's public key: no MAC is ever accepted.
        (
            "alg",
            issuer.hs256_logout_token(|c| with(c, "sid", "sid-ada")),
        ),
        (
            "iss",
            issuer.logout_token(|c| with(c, "iss", "https://evil.example")),
        ),
        (
            "aud",
            issuer.logout_token(|c| with(c, "aud", "another-client")),
        ),
        (
            "too old",
            issuer.logout_token(|c| with(c, "iat", now - 3600)),
        ),
        (
            "future",
            issuer.logout_token(|c| with(c, "iat", now + 3600)),
        ),
        (
            "exp has passed",
            issuer.logout_token(|c| with(c, "exp", now - 600)),
        ),
        (
            "events",
            issuer.logout_token(|c| {
                c.remove("events");
            }),
        ),
        ("nonce", issuer.logout_token(|c| with(c, "nonce", "n-0"))),
        (
            "neither sid nor sub",
            issuer.logout_token(|c| {
                c.remove("sub");
            }),
        ),
        (
            "jti",
            issuer.logout_token(|c| {
                c.remove("jti");
            }),
        ),
        ("three parts", "not-a-jwt".to_owned()),
        ("alg", {
            // alg=none, as a forger sends it.
            let token = issuer.logout_token(|_| {});
            let claims = token.split('.').nth(1).expect("claims").to_owned();
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.")
        }),
        ("typ", {
            // An ID token's type is not a logout token's.
            use base64::Engine;
            let token = issuer.logout_token(|_| {});
            let claims = token.split('.').nth(1).expect("claims").to_owned();
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"RS256","kid":"test-key","typ":"at+jwt"}"#);
            format!("{header}.{claims}.c2ln")
        }),
    ];
    for (why, token) in &bad {
        let (status, body) = post_logout(&oidc.env, token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["error"], "invalid_request", "{why}");
        let description = body["error_description"].as_str().expect("a description");
        assert!(description.contains(why), "{why}: {description}");
        assert_eq!(
            oidc.env.auth_check(&ada).await,
            StatusCode::OK,
            "{why}: nothing ended"
        );
    }
    // No token, an empty one, two of them, a body that is not a form: 400 too.
    let client = reqwest::Client::new();
    let url = format!("{}{LOGOUT}", oidc.env.app_url);
    for body in ["", "logout_token=", "logout_token=a&logout_token=b", "%zz"] {
        let response = client
            .post(&url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(answer["error"], "invalid_request");
    }
    // The wrong method, a provider that is not an issuer, one that does not exist.
    assert_eq!(
        client.get(&url).send().await.expect("GET").status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    for path in ["/backchannel-logout/facebook", "/backchannel-logout/nope"] {
        let response = client
            .post(format!("{}{path}", oidc.env.app_url))
            .form(&[("logout_token", &bad[0].1)])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::OK);
    assert_eq!(
        oidc.env.count("logout_token_seen").await,
        0,
        "no bad jti kept"
    );

    // A good token once, then the same again: refused, and the person who signed in again
    // meanwhile stays signed in.
    let token = issuer.logout_token(|c| with(c, "sid", "sid-ada"));
    assert_eq!(post_logout(&oidc.env, &token).await.0, StatusCode::OK);
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    let again = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let (status, body) = post_logout(&oidc.env, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("used before")),
        "{body}"
    );
    assert_eq!(oidc.env.auth_check(&again).await, StatusCode::OK);
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_sign_in_on_the_other_and_its_token_is_spent_on_both() {
    let oidc = OidcEnv::start().await;
    // A second instance on the same database, configured for the same issuer.
    let issuer_url = oidc.issuer.url.clone();
    let other = TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        oidc.env.config.database.url.clone(),
        Environment::Development,
        Vec::new(),
        move |f| {
            f.merge(("providers.corp.kind", "oidc"))
                .merge(("providers.corp.issuer", issuer_url))
                .merge(("providers.corp.client_id", OIDC_CLIENT_ID))
                .merge(("providers.corp.client_secret", OIDC_CLIENT_SECRET))
                .merge(("providers.corp.display_name", "Corp SSO"))
        },
    )
    .await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let on_other = Browser::new(&other.app_url);
    on_other.set_cookie(&format!(
        "loginwith_session={}",
        ada.cookie("loginwith_session").expect("a session")
    ));
    assert_eq!(
        other.auth_check(&on_other).await,
        StatusCode::OK,
        "signed in on both"
    );

    let token = oidc.issuer.logout_token(|c| with(c, "sid", "sid-ada"));
    assert_eq!(post_logout(&other, &token).await.0, StatusCode::OK);
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(other.auth_check(&on_other).await, StatusCode::UNAUTHORIZED);
    // Replayed to the first instance: spent everywhere.
    assert_eq!(
        post_logout(&oidc.env, &token).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn log_out_with_sign_out_at_provider_ends_ours_first_then_goes_to_the_issuer() {
    let oidc = OidcEnv::start_with(
        |_| {},
        |f| f.merge(("providers.corp.sign_out_at_provider", true)),
        Vec::new(),
    )
    .await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let token = ada.csrf_token().await;
    let response = ada.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refresh = response
        .headers()
        .get("refresh")
        .and_then(|v| v.to_str().ok())
        .expect("a Refresh header")
        .to_owned();
    let page = response.text().await.expect("page");
    assert!(page.contains("You are signed out here"), "{page}");
    assert!(page.contains("Continue to Corp SSO"), "{page}");
    // Ours is over before the browser reaches the issuer, whatever the issuer does.
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(oidc.env.signed_in_session_ids().await.len(), 0);

    let target = url::Url::parse(refresh.strip_prefix("0;url=").expect("0;url=")).expect("a URL");
    assert_eq!(
        target.as_str().split('?').next(),
        Some(format!("{}/logout", oidc.issuer.url).as_str())
    );
    let query: std::collections::HashMap<String, String> =
        target.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], OIDC_CLIENT_ID);
    assert_eq!(
        query["post_logout_redirect_uri"],
        format!("{}/", oidc.env.app_url)
    );
    assert!(query["state"].len() >= 16, "{query:?}");
    assert!(
        page.contains("/logout?client_id=corp-client"),
        "the link too: {page}"
    );
    // The issuer ends its session and sends the browser back home.
    let back = ada.get(target.as_str()).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert!(location(&back).starts_with(&format!("{}/?state=", oidc.env.app_url)));
    assert_eq!(oidc.issuer.sessions_ended.load(Ordering::SeqCst), 1);

    // "Sign in with another account" (with return_to) stays here: the issuer could not
    // bring return_to back.
    let ada = signed_in(&oidc, "ada-0001", None).await;
    let token = ada.csrf_token().await;
    let response = ada
        .post_form(
            "/logout",
            &[("csrf_token", &token), ("return_to", "/account")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn log_out_without_sign_out_at_provider_stays_here() {
    let oidc = OidcEnv::start().await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let token = ada.csrf_token().await;
    let response = ada.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(oidc.issuer.sessions_ended.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn back_channel_logouts_are_limited_per_address() {
    let oidc = OidcEnv::start_with(
        |_| {},
        |f| {
            f.merge(("limits.backchannel_logout_per_minute", 1))
                .merge(("limits.backchannel_logout_burst", 2))
        },
        Vec::new(),
    )
    .await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let token = oidc.issuer.logout_token(|c| with(c, "sub", "nobody-9999"));
        statuses.push(post_logout(&oidc.env, &token).await.0);
    }
    assert_eq!(statuses[..2], [StatusCode::OK, StatusCode::OK]);
    assert!(
        statuses[2..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Refused before the token was read: a good one for Ada ends nothing now.
    let token = oidc.issuer.logout_token(|c| with(c, "sid", "sid-ada"));
    assert_eq!(
        post_logout(&oidc.env, &token).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::OK);
}

#[tokio::test]
async fn while_the_issuers_keys_cannot_be_had_a_logout_is_answered_503_for_the_issuer_to_send_again()
 {
    let oidc = OidcEnv::start_with(
        |b| b.discovery = common::oidc::Discovery::Down,
        |f| f,
        Vec::new(),
    )
    .await;
    let token = oidc.issuer.logout_token(|c| with(c, "sub", "ada-0001"));
    let response = reqwest::Client::new()
        .post(format!("{}{LOGOUT}", oidc.env.app_url))
        .form(&[("logout_token", &token)])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(oidc.env.count("logout_token_seen").await, 0, "not spent");
    // Once the issuer is back (discovery is retried), the same token is taken.
    oidc.issuer
        .set(|b| b.discovery = common::oidc::Discovery::Up);
    common::eventually("the issuer discovered again", || async {
        post_logout(&oidc.env, &token).await.0 == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn a_token_under_a_key_the_issuer_does_not_publish_fetches_the_keys_once_then_is_refused() {
    let oidc = OidcEnv::start().await;
    let ada = signed_in(&oidc, "ada-0001", Some("sid-ada")).await;
    let (_, keys_before) = oidc.fetches();
    let token = oidc
        .issuer
        .unknown_key_logout_token(|c| with(c, "sid", "sid-ada"));
    let (status, body) = post_logout(&oidc.env, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("does not publish")),
        "{body}"
    );
    assert_eq!(oidc.fetches().1, keys_before + 1, "the keys fetched once");
    // Within the minute the keys are not fetched again: the issuer (which may have rotated
    // its keys) is asked to send it again later, and nothing is ended or spent.
    let token = oidc
        .issuer
        .unknown_key_logout_token(|c| with(c, "sid", "sid-ada"));
    let (status, body) = post_logout(&oidc.env, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(oidc.fetches().1, keys_before + 1);
    assert_eq!(oidc.env.auth_check(&ada).await, StatusCode::OK);
    assert_eq!(oidc.env.count("logout_token_seen").await, 0);
}

#[tokio::test]
async fn a_sub_ends_sign_ins_with_that_issuer_only_never_an_equal_id_at_another_provider() {
    let oidc = OidcEnv::start().await;
    // Ada signs in with Facebook (the development stand-in); the issuer names her Facebook
    // id as its `sub`.
    let facebook = oidc.env.browser();
    facebook.login(common::ADA).await;
    let facebook_id: String = sqlx::query_scalar(
        "SELECT provider_user_id FROM user_identity WHERE provider = 'facebook'",
    )
    .fetch_one(&oidc.env.db)
    .await
    .expect("her Facebook id");
    let token = oidc
        .issuer
        .logout_token(|c| with(c, "sub", facebook_id.as_str()));
    assert_eq!(post_logout(&oidc.env, &token).await.0, StatusCode::OK);
    assert_eq!(
        oidc.env.auth_check(&facebook).await,
        StatusCode::OK,
        "not ended"
    );
}
