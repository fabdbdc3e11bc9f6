//! `return_to`: a whole sign-in through the real router ends where it was asked to, when
//! that is allowed, and on `/` otherwise (the open-redirect classics).

use loginwith_testkit as common;

use common::{ADA, Browser, TestEnv, github::GitHubEnv, location};
use figment::Figment;
use loginwith::config::{Config, Environment};
use reqwest::StatusCode;
use url::{Url, form_urlencoded};

/// Hosts an absolute `return_to` may name in these tests. `site.example` stands for a
/// site of our own, so that look-alikes of it are tested against a real rule.
const ALLOWED_HOSTS: [&str; 4] = [
    "site.example",
    "app.example",
    ".corp.example",
    "api.example:8443",
];

async fn start() -> TestEnv {
    TestEnv::start_with(|f: Figment| {
        f.merge(("gateway.allowed_hosts", ALLOWED_HOSTS.to_vec()))
            // Many sign-ins from one address in one test.
            .merge(("limits.auth_per_minute", 10_000))
            .merge(("limits.auth_burst", 10_000))
    })
    .await
}

/// `return_to=VALUE` with VALUE query-encoded.
fn query(value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", value)
        .finish()
}

/// A whole sign-in started at `start` (an `/authorize/...` path and query): the consent,
/// the callback, the preloader, the wait and `/success`. Returns where `/success` sends the
/// browser, after checking that no step's `Location` carries a CR or LF.
async fn sign_in_from(browser: &Browser, start: &str) -> String {
    let response = browser.get(start).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{start}");
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/preloader");
    // The preloader, whatever it shows, keeps the target (it is in the session).
    let preloader = browser.get("/preloader").await;
    assert!(
        matches!(preloader.status(), StatusCode::OK | StatusCode::SEE_OTHER),
        "{}",
        preloader.status()
    );
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response).to_owned();
    assert!(!target.contains(['\r', '\n']), "{target:?}");
    // Signed in, wherever it went.
    let (_, home) = browser.text("/").await;
    assert!(home.contains("Hi, Ada!"), "{start}");
    target
}

/// The sign-in button's link on the home page at `path` (HTML entities undone).
async fn button_href(browser: &Browser, path: &str) -> String {
    let (status, page) = browser.text(path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    let marker = "href=\"/authorize/facebook";
    let start = page.find(marker).expect("a Facebook button") + "href=\"".len();
    let end = start + page[start..].find('"').expect("end of href");
    page[start..end]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}

/// Each classic, as it appears in the query string (already percent-encoded where a
/// browser would have to), ends on `/` after a whole sign-in. `%2F%2Fevil.example`
/// decodes to `//evil.example` and `/%2F%2Fevil.example` to `///evil.example`: both are
/// another host to a browser, so both are dropped; only a value that still holds `%2F`
/// after the query's decoding stays a path (see `percent_encoded_slashes_stay_a_path`).
#[tokio::test]
async fn open_redirect_classics_end_on_home_after_a_whole_sign_in() {
    let env = start().await;
    let long = format!("/{}", "a".repeat(2048));
    let classics = [
        "//evil.example",
        // Dot segments that resolve to `//evil.example`.
        "/.//evil.example",
        "/a/..//evil.example",
        "/%252e%252e//evil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "https:evil.example",
        "https:%2F%2Fevil.example",
        "https://site.example.evil.example",
        "https://site.example@evil.example",
        "https://site.example%40evil.example",
        "https://evil.example%23@site.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "%2f%2fevil.example",
        "HTTPS://EVIL.example",
        "/%5C/evil",
        "/\\/evil",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "/ok%0d%0aLocation:%20https://evil.example",
        "/ok%0aLocation:%20https://evil.example",
        "/%09/evil.example",
        "%09//evil.example",
        "%20//evil.example",
        "ftp://app.example/",
        "https://corp.example/",
        "https://api.example/x",
        "https://user:pw@app.example/",
        long.as_str(),
        "",
    ];
    for raw in classics {
        let browser = env.browser();
        let target = sign_in_from(&browser, &format!("/authorize/facebook?return_to={raw}")).await;
        assert_eq!(target, "/", "{raw:?}");
    }
}

/// The same classics through the home page: the button carries nothing that is not
/// allowed, and the sign-in ends on `/`.
#[tokio::test]
async fn classics_given_to_the_home_page_are_not_carried_by_its_buttons() {
    let env = start().await;
    for raw in [
        "//evil.example",
        "/..//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/ok%0d%0aLocation:%20https://evil.example",
    ] {
        let browser = env.browser();
        let href = button_href(&browser, &format!("/?return_to={raw}")).await;
        assert_eq!(href, "/authorize/facebook", "{raw:?}");
        assert_eq!(sign_in_from(&browser, &href).await, "/", "{raw:?}");
    }
}

#[tokio::test]
async fn repeated_return_to_is_a_400_page_like_other_repeated_parameters() {
    let env = start().await;
    let browser = env.browser();
    for path in [
        "/?return_to=/a&return_to=/b",
        "/authorize/facebook?return_to=/a&return_to=//evil.example",
    ] {
        let (status, page) = browser.text(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.contains("repeated"), "{page}");
    }
    assert_eq!(env.count("async_operation").await, 0);
}

#[tokio::test]
async fn a_path_with_query_and_fragment_is_where_the_sign_in_ends() {
    let env = start().await;
    let browser = env.browser();
    let target = sign_in_from(
        &browser,
        &format!("/authorize/facebook?{}", query("/dashboard?x=1#frag")),
    )
    .await;
    // Browsers never send a fragment, but a link may carry one: kept as received.
    assert_eq!(target, "/dashboard?x=1#frag");
}

#[tokio::test]
async fn percent_encoded_slashes_stay_a_path() {
    let env = start().await;
    let browser = env.browser();
    // The value is `/%2F%2Fevil.example`: no browser reads `%2F` as a separator, so this
    // is a path on our site, kept as it is.
    let target = sign_in_from(
        &browser,
        &format!("/authorize/facebook?{}", query("/%2F%2Fevil.example")),
    )
    .await;
    assert_eq!(target, "/%2F%2Fevil.example");
}

#[tokio::test]
async fn listed_hosts_subdomains_and_ports_are_allowed() {
    let env = start().await;
    for (value, expected) in [
        ("https://app.example/x", "https://app.example/x"),
        ("HTTPS://APP.Example/x?y=1", "https://app.example/x?y=1"),
        ("https://a.corp.example/in", "https://a.corp.example/in"),
        ("https://b.a.corp.example/", "https://b.a.corp.example/"),
        ("https://api.example:8443/v", "https://api.example:8443/v"),
        // http:// is allowed in development only.
        ("http://app.example/x", "http://app.example/x"),
    ] {
        let browser = env.browser();
        let target = sign_in_from(&browser, &format!("/authorize/facebook?{}", query(value))).await;
        assert_eq!(target, expected, "{value}");
    }
}

#[test]
fn http_targets_are_dropped_in_production_rules() {
    use loginwith::config::AllowedHost;
    use loginwith::web::return_to::{ReturnRules, allowed_target};
    let rules = ReturnRules {
        public_url: Url::parse("https://login.example").unwrap(),
        hosts: vec![AllowedHost::parse("app.example").unwrap()],
        allow_http: false,
    };
    assert_eq!(allowed_target("http://app.example/x", &rules), None);
    assert_eq!(
        allowed_target("https://app.example/x", &rules).as_deref(),
        Some("https://app.example/x")
    );
}

#[tokio::test]
async fn the_home_page_buttons_carry_return_to_through_the_sign_in() {
    let env = start().await;
    let browser = env.browser();
    let href = button_href(&browser, &format!("/?{}", query("/reports?a=1&b=2"))).await;
    assert_eq!(
        href,
        format!("/authorize/facebook?{}", query("/reports?a=1&b=2"))
    );
    assert_eq!(sign_in_from(&browser, &href).await, "/reports?a=1&b=2");
}

#[tokio::test]
async fn a_signed_in_visitor_goes_to_return_to_at_once() {
    let env = start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let response = browser.get("/?return_to=/somewhere").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/somewhere");
    let response = browser
        .get(&format!(
            "/authorize/facebook?{}",
            query("https://app.example/x")
        ))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "https://app.example/x");
    // Not allowed: the home page, as without return_to.
    for raw in ["//evil.example", "/.//evil.example", "/a/..//evil.example"] {
        let (status, home) = browser.text(&format!("/?return_to={raw}")).await;
        assert_eq!(status, StatusCode::OK, "{raw}");
        assert!(home.contains("Hi, Ada!"), "{raw}");
    }
    let response = browser
        .get("/?return_to=/ok%0d%0aLocation:%20https://evil.example")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn linking_from_sign_in_methods_still_ends_on_sign_in_methods() {
    let gh =
        GitHubEnv::start_with(|f| f.merge(("gateway.allowed_hosts", ALLOWED_HOSTS.to_vec()))).await;
    let browser = gh.env.browser();
    // A sign-in that asked to return somewhere, then GitHub added from "Sign-in methods".
    let target = sign_in_from(
        &browser,
        &format!("/authorize/facebook?{}", query("/somewhere")),
    )
    .await;
    assert_eq!(target, "/somewhere");
    browser.link_through_stand_in("github").await;
}

#[test]
fn bad_allowed_hosts_refuse_start_up_naming_the_key() {
    for entry in ["https://app.example", "*.example.com", "app.example:0", ""] {
        let figment = Config::defaults_figment().merge(("gateway.allowed_hosts", vec![entry]));
        let error = Config::from_figment(figment, Environment::Development)
            .expect_err(entry)
            .to_string();
        assert!(error.contains("gateway.allowed_hosts"), "{error}");
        assert!(error.contains(&format!("{entry:?}")), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
    let figment = Config::defaults_figment().merge((
        "gateway.allowed_hosts",
        vec![
            "app.example",
            "app.example:8443",
            ".example.com",
            "[::1]:8080",
        ],
    ));
    assert!(Config::from_figment(figment, Environment::Development).is_ok());
}

/// The error page's "Try again" link (HTML entities undone).
async fn try_again_href(browser: &Browser) -> String {
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let marker = "href=\"";
    let button = page.find(">Try again<").expect("a Try again button");
    let start = page[..button].rfind(marker).expect("its href") + marker.len();
    let end = start + page[start..].find('"').expect("end of href");
    page[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn try_again_after_cancelling_keeps_where_the_sign_in_was_going() {
    let env = start().await;
    let browser = env.browser();
    let start = format!("/authorize/facebook?{}", query("/reports?month=11"));
    let response = browser.get(&start).await;
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, ADA, "cancel").await;
    let response = browser.get(&callback).await;
    assert_eq!(location(&response), "/error");
    let retry = try_again_href(&browser).await;
    assert_eq!(retry, start);
    // And it works: trying again ends where the first attempt was going.
    assert_eq!(sign_in_from(&browser, &retry).await, "/reports?month=11");
}

#[tokio::test]
async fn try_again_after_a_failed_exchange_keeps_where_the_sign_in_was_going() {
    let env = start().await;
    let browser = env.browser();
    env.set_fault(loginwith::config::Fault::TokenServerError);
    let start = format!("/authorize/facebook?{}", query("https://app.example/inbox"));
    let response = browser.get(&start).await;
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, ADA, "allow").await;
    browser.get(&callback).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(try_again_href(&browser).await, start);
    // With the provider well again, the same browser signs in and gets there.
    env.set_fault(loginwith::config::Fault::None);
    let start = format!("/authorize/facebook?{}", query("/ok"));
    assert_eq!(sign_in_from(&browser, &start).await, "/ok");
}

#[tokio::test]
async fn try_again_without_return_to_is_the_plain_button() {
    let env = start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "cancel").await;
    browser.get(&callback).await;
    assert_eq!(try_again_href(&browser).await, "/authorize/facebook");
}
