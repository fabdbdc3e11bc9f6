//! Sign in with Apple against the development issuer's Apple mode on another origin: the
//! client secret signed with the team's key, the answer posted cross-site and relayed through
//! a same-site step, the name kept from the first answer only, Apple's string booleans.

use loginwith_testkit as common;

use common::{
    ADA, Person,
    apple::{AppleEnv, form_action, hidden_fields},
    location,
};
use reqwest::StatusCode;

const RELAY_ADA: Person<'static> = Person {
    first: "Ada <i>",
    last: "Lovelace 🍏",
    email: "x7k2p9q4rw@privaterelay.appleid.com",
};

#[tokio::test]
async fn a_whole_sign_in_through_the_posted_answer_keeps_the_name_given_once() {
    let apple = AppleEnv::start(|f| f).await;
    let browser = apple.env.browser();
    let home = apple.login(&browser, RELAY_ADA).await;
    assert!(home.contains("Hi, Ada &#60;i&#62;!"), "{home}");
    let identities = apple.env.identities().await;
    assert_eq!(identities.len(), 1);
    let (provider, _, first, last, email) = &identities[0];
    assert_eq!(provider, "apple");
    assert_eq!((first.as_str(), last.as_str()), ("Ada <i>", "Lovelace 🍏"));
    // A private relay address is a real, verified address ("true" as a string).
    assert_eq!(email.as_deref(), Some(RELAY_ADA.email));
    let verified: i64 =
        sqlx::query_scalar("SELECT CASE WHEN email_verified THEN 1 ELSE 0 END FROM user_profile")
            .fetch_one(&apple.env.db)
            .await
            .unwrap();
    assert_eq!(verified, 1);
    // The second time Apple sends no name: the one kept stays.
    let again = apple.env.browser();
    let (target, fields) = apple.until_apple_posts(&again, RELAY_ADA).await;
    assert!(
        !fields.iter().any(|(k, _)| k == "user"),
        "Apple sends the name once: {fields:?}"
    );
    let _ = (target, fields);
    let home = apple.login(&apple.env.browser(), RELAY_ADA).await;
    assert!(home.contains("Hi, Ada &#60;i&#62;!"), "{home}");
    assert_eq!(apple.env.identities().await[0].2, "Ada <i>");
    assert_eq!(apple.env.count("user_identity").await, 1);
    let (_, page) = apple.env.browser().text("/").await;
    assert!(page.contains("class=\"button button-apple\""), "{page}");
}

#[tokio::test]
async fn the_posted_answer_is_only_relayed_and_changes_nothing() {
    let apple = AppleEnv::start(|f| f).await;
    let browser = apple.env.browser();
    let (target, fields) = apple.until_apple_posts(&browser, ADA).await;
    assert!(target.ends_with("/callback/apple"), "{target}");
    let relay = apple.post_cross_site(&target, &fields).await;
    assert_eq!(relay.status(), StatusCode::OK);
    // No cookie set, nothing recorded, the code not cached or sent on as a referrer.
    assert!(relay.headers().get("set-cookie").is_none());
    assert_eq!(relay.headers()["cache-control"], "no-store");
    assert_eq!(relay.headers()["referrer-policy"], "no-referrer");
    let html = relay.text().await.unwrap();
    assert!(
        form_action(&html).ends_with("/callback/apple/continue"),
        "{html}"
    );
    let mut relayed = hidden_fields(&html);
    let mut posted = fields.clone();
    relayed.sort();
    posted.sort();
    assert_eq!(relayed, posted, "the same fields, unchanged");
    assert!(html.contains("js/form-post.js"), "{html}");
    assert_eq!(apple.env.snapshot().await, [0, 0, 0]);
    // The continuation without the browser's cookies (a forged relay) is refused.
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let forged = common::cookieless_client()
        .post(format!("{}/callback/apple/continue", apple.env.app_url))
        .form(&pairs)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(apple.env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn bad_posts_get_a_clear_answer() {
    let apple = AppleEnv::start(|f| f).await;
    let client = common::cookieless_client();
    let app = &apple.env.app_url;
    for (path, body, status) in [
        ("/callback/apple", "", StatusCode::BAD_REQUEST),
        ("/callback/apple", "code=a&code=b", StatusCode::BAD_REQUEST),
        ("/callback/apple", "%zz", StatusCode::BAD_REQUEST),
        // Providers that answer with redirects take no POST.
        (
            "/callback/facebook",
            "code=a&state=b",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("/callback/nobody", "code=a&state=b", StatusCode::NOT_FOUND),
        (
            "/callback/apple/continue",
            "code=a&state=b",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/callback/facebook/continue",
            "code=a&state=b",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = client
            .post(format!("{app}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<html"), "a page: {page}");
    }
    let wrong_method = client
        .get(format!("{app}/callback/apple/continue"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(apple.env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn a_client_secret_apple_would_refuse_ends_the_sign_in_as_the_sites_fault() {
    // Another key under the configured key id: Apple cannot verify the secret.
    let other = loginwith::dev_provider::DevApple::generate(
        common::apple::TEAM_ID,
        common::apple::KEY_ID,
        common::apple::SERVICES_ID,
    )
    .1
    .pem;
    let apple = AppleEnv::start(move |f| f.merge(("providers.apple.private_key", other))).await;
    let browser = apple.env.browser();
    let (target, fields) = apple.until_apple_posts(&browser, ADA).await;
    let relay = apple.post_cross_site(&target, &fields).await;
    let html = relay.text().await.unwrap();
    let pairs: Vec<(String, String)> = hidden_fields(&html);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = browser.post_form(&form_action(&html), &pairs).await;
    assert_eq!(location(&response), "/preloader");
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        apple.env.last_operation().await,
        ("error".to_owned(), Some("internal".to_owned())),
        "a refused client secret is the site's to fix, not the person's to retry"
    );
    assert_eq!(apple.env.count("user_profile").await, 0);
    let (_, page) = browser.text("/error").await;
    assert!(page.contains("Something went wrong on our side"), "{page}");
}

#[tokio::test]
async fn every_failure_of_the_token_endpoint_is_named_by_what_happened() {
    use loginwith::dev_provider::{Fault, Faults};
    let apple = AppleEnv::start(|f| f.merge(("limits.auth_burst", 100))).await;
    for (fault, reason) in [
        (Fault::TokenInvalidGrant, "denied"),
        (Fault::TokenServerError, "provider_error"),
        (Fault::TokenRateLimited, "provider_error"),
        (Fault::TokenBadRequestHtml, "provider_error"),
        (Fault::TokenEmptyBody, "invalid_response"),
        (Fault::TokenNotJson, "invalid_response"),
        (Fault::TokenHtmlContentType, "invalid_response"),
        (Fault::TokenMissingAccessToken, "invalid_response"),
        (Fault::TokenTypeMac, "invalid_response"),
        (Fault::Hang, "timeout"),
    ] {
        apple.issuer.set_faults(Faults {
            fault,
            ..Faults::default()
        });
        let browser = apple.env.browser();
        let (target, fields) = apple.until_apple_posts(&browser, ADA).await;
        let relay = apple.post_cross_site(&target, &fields).await;
        let html = relay.text().await.unwrap();
        let pairs = hidden_fields(&html);
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = browser.post_form(&form_action(&html), &pairs).await;
        assert_eq!(location(&response), "/preloader", "{fault:?}");
        assert_eq!(browser.wait_status().await, "error", "{fault:?}");
        assert_eq!(
            apple.env.last_operation().await,
            ("error".to_owned(), Some(reason.to_owned())),
            "{fault:?}"
        );
    }
    assert_eq!(apple.env.count("user_profile").await, 0);
}

#[tokio::test]
async fn cancel_at_apple_is_a_cancel_and_keeps_nothing() {
    let apple = AppleEnv::start(|f| f).await;
    let browser = apple.env.browser();
    let dialog = url::Url::parse(location(&browser.get("/authorize/apple").await)).unwrap();
    let answer = common::post_consent(
        &common::cookieless_client(),
        &dialog,
        &[("decision", "cancel")],
    )
    .await;
    let html = answer.text().await.unwrap();
    let fields = hidden_fields(&html);
    assert!(
        fields.contains(&("error".to_owned(), "user_cancelled_authorize".to_owned())),
        "Apple's own code: {fields:?}"
    );
    let relay = apple.post_cross_site(&form_action(&html), &fields).await;
    let relay = relay.text().await.unwrap();
    let pairs = hidden_fields(&relay);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = browser.post_form(&form_action(&relay), &pairs).await;
    assert_eq!(location(&response), "/error");
    let (_, page) = browser.text("/error").await;
    assert!(
        page.contains("You cancelled signing in with Apple"),
        "{page}"
    );
    assert_eq!(apple.env.snapshot().await, [0, 0, 0]);
}
