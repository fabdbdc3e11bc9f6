//! `GET /auth/check`, forward authentication for a web server in front of another site, and
//! `session.cookie_domain`, which shares the sign-in with that site's hosts.

use loginwith_testkit as common;

use common::{Browser, Person, TestEnv, behind_tls, location, oidc::OidcEnv};
use loginwith::config::{Config, Environment};
use reqwest::{StatusCode, header};
use tower_sessions::session::Id;

const CHECK: &str = "/auth/check";

/// A name as providers really send them: markup, an accent and an emoji.
const ZOE: Person<'static> = Person {
    first: "Zoë <b>",
    last: "O'Brien 🦀",
    email: "zoe@example.com",
};

/// The `X-Auth-Request-*` headers of an answer, as text: user, email, name, provider and
/// whether the address was verified.
fn identity(response: &reqwest::Response) -> [String; 5] {
    ["user", "email", "name", "provider", "email-verified"].map(|part| {
        let name = format!("x-auth-request-{part}");
        response
            .headers()
            .get(&name)
            .unwrap_or_else(|| panic!("{name} in {:?}", response.headers()))
            .to_str()
            .expect("visible ASCII")
            .to_owned()
    })
}

/// `GET /auth/check` as a gateway sends it: with the browser's session cookie, if any, and
/// nothing else of the browser's.
async fn check(env: &TestEnv, cookie: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{CHECK}", env.app_url));
    if let Some(id) = cookie {
        request = request.header(header::COOKIE, format!("loginwith_session={id}"));
    }
    request.send().await.expect("check")
}

/// The session id a signed-in browser holds (this app's one signed-in session).
async fn signed_in_session_id(env: &TestEnv) -> String {
    sqlx::query_scalar("SELECT id FROM session WHERE user_id IS NOT NULL")
        .fetch_one(&env.db)
        .await
        .expect("one signed-in session")
}

/// Every session row, whole: what a request that writes nothing leaves as it was.
async fn session_rows(env: &TestEnv) -> Vec<(String, String, i64, Option<i64>)> {
    sqlx::query_as("SELECT id, data, expires_at, user_id FROM session ORDER BY id")
        .fetch_all(&env.db)
        .await
        .expect("session rows")
}

async fn signed_in_check(env: &TestEnv, browser: &Browser, person: Person<'_>) -> String {
    browser.login(person).await;
    let id = signed_in_session_id(env).await;
    assert_eq!(check(env, Some(&id)).await.status(), StatusCode::OK);
    id
}

#[tokio::test]
async fn a_signed_in_browser_gets_200_with_who_it_is_percent_encoded() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ZOE).await;
    let user: i64 = sqlx::query_scalar("SELECT id FROM user_profile")
        .fetch_one(&env.db)
        .await
        .unwrap();

    // The browser's own cookie jar, as nginx passes the Cookie header on.
    let response = browser.get(CHECK).await;
    assert_eq!(response.status(), StatusCode::OK);
    let [id, email, name, provider, verified] = identity(&response);
    assert_eq!(id, user.to_string());
    assert_eq!(email, "zoe@example.com");
    assert_eq!(name, "Zo%C3%AB%20<b>%20O'Brien%20%F0%9F%A6%80");
    assert_eq!(provider, "facebook");
    // Facebook never says it verified an address.
    assert_eq!(verified, "false");
    // Percent-decoding gives the name back exactly.
    let decoded = percent_encoding::percent_decode_str(&name)
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, "Zoë <b> O'Brien 🦀");
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}

/// `X-Auth-Request-Email-Verified`: `true` only when the provider that gave the address said
/// it verified it. An address is stored and sent whether or not it was (Facebook never verifies
/// one; an OpenID Connect issuer may say `email_verified: false`), so a site that lets people
/// in by address must be able to tell.
#[tokio::test]
async fn the_check_says_whether_a_provider_verified_the_address() {
    let oidc = OidcEnv::start().await;
    let env = &oidc.env;
    let check = |browser: Browser| async move {
        let response = browser.get(CHECK).await;
        assert_eq!(response.status(), StatusCode::OK);
        let [_, email, _, provider, verified] = identity(&response);
        (email, provider, verified)
    };
    let facebook = env.browser();
    facebook.login(ZOE).await;
    assert_eq!(
        check(facebook).await,
        ("zoe@example.com".into(), "facebook".into(), "false".into())
    );

    // The issuer's address, verified.
    let corp = env.browser();
    assert_eq!(oidc.sign_in(&corp).await, "ok");
    assert_eq!(corp.get("/success").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        check(corp).await,
        ("ada@corp.example".into(), "corp".into(), "true".into())
    );

    // Someone whose address the issuer says it did not verify: kept and sent all the same,
    // and said to be unverified.
    oidc.issuer.set(|b| {
        b.sub = "grace-0001".to_owned();
        b.email = "grace@corp.example".to_owned();
        b.email_verified = false;
    });
    let unverified = env.browser();
    assert_eq!(oidc.sign_in(&unverified).await, "ok");
    assert_eq!(
        unverified.get("/success").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        check(unverified).await,
        ("grace@corp.example".into(), "corp".into(), "false".into())
    );
}

#[tokio::test]
async fn anonymous_tampered_and_unknown_cookies_get_401() {
    let env = TestEnv::start().await;
    let signed_in = env.browser();
    let real = signed_in_check(&env, &signed_in, common::ADA).await;

    let anonymous = check(&env, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().get("x-auth-request-user").is_none());

    // One character changed, garbage, an id nobody has, an anonymous session's id.
    let mut tampered = real.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = Id::default().to_string();
    // A sign-in in progress has no session any more; an anonymous row (from before that,
    // until it expires) is still nobody.
    let anonymous_id = Id::default().to_string();
    sqlx::query("INSERT INTO session (id, data, expires_at) VALUES ($1, '{}', $2)")
        .bind(&anonymous_id)
        .bind(i64::MAX / 2)
        .execute(&env.db)
        .await
        .unwrap();
    for cookie in [
        tampered.as_str(),
        "garbage",
        "",
        "%00%0d%0a",
        unknown.as_str(),
        anonymous_id.as_str(),
    ] {
        let response = check(&env, Some(cookie)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie:?}");
        assert!(response.headers().get("x-auth-request-user").is_none());
    }
    // A cookie of another name is not ours.
    let response = reqwest::Client::new()
        .get(format!("{}{CHECK}", env.app_url))
        .header(header::COOKIE, format!("other_session={real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_check_writes_nothing_and_sets_no_cookie() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let id = signed_in_check(&env, &browser, common::ADA).await;
    // An anonymous session in progress too, and a session past its sign-in's refresh day,
    // which a page would extend (a write) and the check must not.
    env.browser().start_login().await;
    let before = session_rows(&env).await;
    let people = env.snapshot().await;
    let stale = Id::default().to_string();
    for cookie in [
        Some(id.as_str()),
        Some(stale.as_str()),
        Some("garbage"),
        None,
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let mut request =
                reqwest::Client::new().request(method, format!("{}{CHECK}", env.app_url));
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, format!("loginwith_session={cookie}"));
            }
            let response = request.send().await.unwrap();
            assert!(
                response.headers().get(header::SET_COOKIE).is_none(),
                "{cookie:?}: {:?}",
                response.headers()
            );
        }
    }
    assert_eq!(
        session_rows(&env).await,
        before,
        "no session row written or touched"
    );
    assert_eq!(env.snapshot().await, people);

    // Even a sign-in more than a day old, which any page would extend, is only read.
    let day_ago = loginwith::store::now_ms() - 2 * 24 * 60 * 60 * 1000;
    sqlx::query("UPDATE session SET data = $1 WHERE id = $2")
        .bind(
            serde_json::json!({
                "signed_in": {"user": before.iter().find(|r| r.0 == id).unwrap().3, "since_ms": day_ago, "refreshed_ms": day_ago}
            })
            .to_string(),
        )
        .bind(&id)
        .execute(&env.db)
        .await
        .unwrap();
    let before = session_rows(&env).await;
    let response = check(&env, Some(&id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(session_rows(&env).await, before);
    // A page does write it: the comparison above could have failed.
    browser.get("/").await;
    assert_ne!(
        session_rows(&env).await,
        before,
        "the home page extends the sign-in"
    );
}

#[tokio::test]
async fn after_logout_the_old_cookie_gets_401() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let id = signed_in_check(&env, &browser, common::ADA).await;
    let token = browser.csrf_token().await;
    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The browser dropped its cookie; someone who kept a copy gets nothing with it.
    assert_eq!(browser.get(CHECK).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&env, Some(&id)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn after_deleting_the_account_the_cookie_gets_401() {
    let env = TestEnv::start().await;
    let (laptop, phone) = (env.browser(), env.browser());
    laptop.login(common::ADA).await;
    phone.login(common::ADA).await;
    assert_eq!(phone.get(CHECK).await.status(), StatusCode::OK);
    let token = laptop.csrf_token_on("/account/delete").await;
    let response = laptop
        .post_form("/account/delete", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get(CHECK).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(laptop.get(CHECK).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn after_a_facebook_data_deletion_request_the_cookie_gets_401() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let id = signed_in_check(&env, &browser, common::ADA).await;
    let signed = env
        .dev
        .signed_request(&env.dev.user_id_for_email(common::ADA.email));
    let response = env
        .browser()
        .post_form("/facebook/data-deletion", &[("signed_request", &signed)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        check(&env, Some(&id)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browser.get(CHECK).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_sign_in_past_its_absolute_lifetime_gets_401() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let id = signed_in_check(&env, &browser, common::ADA).await;
    env.edit_session(|data| {
        let old = loginwith::store::now_ms() - 91 * 24 * 60 * 60 * 1000;
        data["signed_in"]["since_ms"] = old.into();
    })
    .await;
    assert_eq!(
        check(&env, Some(&id)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn other_methods_get_the_405_page_and_any_host_is_answered() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    signed_in_check(&env, &browser, common::ADA).await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = browser
            .client
            .request(method.clone(), browser.url(CHECK))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert!(
            response.headers()[header::ALLOW]
                .to_str()
                .unwrap()
                .contains("GET")
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains("<html") && page.contains("Not allowed"),
            "{page}"
        );
    }
    // A gateway calls it on an internal address: never redirected to the public URL.
    let response = browser
        .client
        .get(browser.url(CHECK))
        .header(header::HOST, "loginwith.internal:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_check_is_not_rate_limited_per_address() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 1))
    })
    .await;
    for _ in 0..50 {
        assert_eq!(check(&env, None).await.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn gateway_env(trusted: &[&str]) -> TestEnv {
    let trusted: Vec<String> = trusted.iter().map(|p| (*p).to_owned()).collect();
    TestEnv::start_with(move |f| {
        f.merge(("server.trusted_proxies", trusted))
            .merge(("gateway.allowed_hosts", ["app.example"]))
    })
    .await
}

/// `GET /auth/check` as Traefik's ForwardAuth sends it for `https://{host}{uri}`.
async fn traefik_check(
    env: &TestEnv,
    host: &str,
    uri: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let client = common::cookieless_client();
    let mut request = client
        .get(format!("{}{CHECK}", env.app_url))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-method", "GET");
    if let Some(id) = cookie {
        request = request.header(header::COOKIE, format!("loginwith_session={id}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_trusted_gateway_gets_a_redirect_to_the_sign_in_page_with_return_to() {
    let env = gateway_env(&["127.0.0.1"]).await;
    let response = traefik_check(&env, "app.example", "/reports?year=2026&q=a%20b", None).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = url::Url::parse(location(&response)).unwrap();
    assert_eq!(
        format!("{}/", env.app_url),
        target[..url::Position::AfterPath]
    );
    let return_to: Vec<_> = target.query_pairs().collect();
    assert_eq!(return_to.len(), 1, "{target}");
    assert_eq!(return_to[0].0, "return_to");
    assert_eq!(
        return_to[0].1,
        "https://app.example/reports?year=2026&q=a%20b"
    );

    // That sign-in page carries it on, and a finished sign-in ends there.
    let browser = env.browser();
    let (status, page) = browser.text(&target[url::Position::BeforePath..]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("return_to=https%3A%2F%2Fapp.example%2Freports"),
        "{page}"
    );

    // A host gateway.allowed_hosts does not list: the sign-in page, without return_to.
    let response = traefik_check(&env, "evil.example", "/x", None).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), format!("{}/", env.app_url));

    // Missing X-Forwarded-Uri (nginx's auth_request): the bare 401 it needs.
    let response = reqwest::Client::new()
        .get(format!("{}{CHECK}", env.app_url))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed in: 200 whatever the forwarded headers say.
    browser.login(common::ADA).await;
    let id = signed_in_session_id(&env).await;
    let response = traefik_check(&env, "app.example", "/reports", Some(&id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(identity(&response)[1], "ada@example.com");
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    // 127.0.0.1 is where the test connects from; only 10.0.0.0/8 is trusted.
    let env = gateway_env(&["10.0.0.0/8"]).await;
    let response = traefik_check(&env, "app.example", "/reports", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::LOCATION).is_none());
    // Nor does an X-Forwarded-For naming a trusted address make the peer one.
    let response = common::cookieless_client()
        .get(format!("{}{CHECK}", env.app_url))
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example")
        .header("x-forwarded-uri", "/reports")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// A configuration of a real Facebook app at `public_url` sharing its cookie with `domain`: a
/// real app, since the development provider refuses a public URL that is not loopback.
fn with_domain(environment: Environment, public_url: &str, domain: &str) -> Result<Config, String> {
    let mut figment = Config::defaults_figment()
        .merge(("server.public_url", public_url))
        .merge(("session.cookie_domain", domain))
        .merge(("dev_provider.enabled", false))
        .merge(("providers.facebook.client_id", "1234"))
        .merge(("providers.facebook.client_secret", "secret"));
    if environment == Environment::Production {
        figment = figment.merge(("session.secure", true));
    }
    Config::from_figment(figment, environment).map_err(|e| e.to_string())
}

#[test]
fn a_cookie_domain_must_contain_the_public_urls_host() {
    for (url, domain) in [
        ("http://login.example.com:3000", "example.com"),
        ("http://login.example.com:3000", ".example.com"),
        ("http://login.example.com:3000", "Example.COM"),
        ("http://login.example.com:3000", "login.example.com"),
        ("http://a.b.example.com", "b.example.com"),
    ] {
        let config = with_domain(Environment::Development, url, domain)
            .unwrap_or_else(|e| panic!("{url} {domain}: {e}"));
        let expected = domain.trim_start_matches('.').to_ascii_lowercase();
        assert_eq!(config.cookie_domain().as_deref(), Some(expected.as_str()));
        assert_eq!(config.cookie_name(), "loginwith_session");
    }
    for (url, domain) in [
        ("http://login.example.com", "other.com"),
        ("http://login.example.com", "ample.com"),
        ("http://login.example.com", "app.example.com"),
        ("http://login.example.com", "sub.login.example.com"),
        ("http://127.0.0.1:3000", "127.0.0.1"),
        ("http://127.0.0.1:3000", "example.com"),
        ("http://login.example.com", "example.com/x"),
        ("http://login.example.com", "example.com."),
        ("http://login.example.com", "exa mple.com"),
    ] {
        let error = with_domain(Environment::Development, url, domain)
            .expect_err(&format!("{url} {domain}"));
        assert!(error.contains("session.cookie_domain"), "{error}");
        assert!(error.contains(&format!("{domain:?}")), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
    // Empty: a cookie of the public URL's host alone.
    let config = with_domain(Environment::Development, "http://localhost:3000", "").unwrap();
    assert_eq!(config.cookie_domain(), None);
}

#[test]
fn in_production_a_cookie_with_a_domain_is_secure_prefixed_and_without_one_host_prefixed() {
    let shared = with_domain(
        Environment::Production,
        "https://login.example.com",
        "example.com",
    )
    .unwrap();
    assert_eq!(shared.cookie_name(), "__Secure-loginwith_session");
    let host_only = with_domain(Environment::Production, "https://login.example.com", "").unwrap();
    assert_eq!(host_only.cookie_name(), "__Host-loginwith_session");
    // The sign-in key is `__Host-` whenever cookies are `Secure`: in production, and in a
    // development setup with a shared domain and secure cookies too.
    for config in [&shared, &host_only] {
        assert_eq!(
            config.pre_sign_in_cookie_name(),
            "__Host-loginwith_session_signin"
        );
    }
    let development = Config::from_figment(
        Config::defaults_figment()
            .merge(("server.public_url", "https://login.example.com"))
            .merge(("session.cookie_domain", "example.com"))
            .merge(("session.secure", true))
            .merge(("dev_provider.enabled", false))
            .merge(("providers.facebook.client_id", "1234"))
            .merge(("providers.facebook.client_secret", "secret")),
        Environment::Development,
    )
    .unwrap();
    assert_eq!(development.cookie_name(), "loginwith_session");
    assert_eq!(
        development.pre_sign_in_cookie_name(),
        "__Host-loginwith_session_signin"
    );
    let plain = with_domain(Environment::Development, "http://login.example.com", "").unwrap();
    assert_eq!(plain.pre_sign_in_cookie_name(), "loginwith_session_signin");
}

/// A person and a session signed in as them, written as the app writes them: a browser of
/// production, whose provider cannot be reached from a test, signed in.
async fn plant_signed_in_session(env: &TestEnv) -> (String, String) {
    plant_signed_in(env, "Ada").await
}

/// [`plant_signed_in_session`] for a person of the first name `first`.
async fn plant_signed_in(env: &TestEnv, first: &str) -> (String, String) {
    let now = loginwith::store::now_ms();
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO user_profile (first_name, last_name, email, created_at, updated_at, display_name)
         VALUES ($2, 'Lovelace', $3, $1, $1, $2 || ' Lovelace') RETURNING id",
    )
    .bind(now)
    .bind(first)
    .bind(format!("{}@example.com", first.to_lowercase()))
    .fetch_one(&env.db)
    .await
    .unwrap();
    let id = Id::default().to_string();
    let csrf = "c".repeat(43);
    let data = serde_json::json!({
        "signed_in": {"user": user, "since_ms": now, "refreshed_ms": now, "provider": "facebook"},
        "csrf": csrf,
    });
    sqlx::query("INSERT INTO session (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(data.to_string())
        .bind(now + 60 * 60 * 1000)
        .bind(user)
        .execute(&env.db)
        .await
        .unwrap();
    (id, csrf)
}

#[tokio::test]
async fn in_production_the_shared_cookie_is_checked_and_logout_clears_it_with_its_domain() {
    let env = TestEnv::start_in(Environment::Production, |f| {
        behind_tls(f).merge(("session.cookie_domain", "example.test"))
    })
    .await;
    let client = common::cookieless_client();
    // A new session's cookie at sign-in, and the pre-sign-in cookie of a sign-in started, as
    // the proxy in front passes the public host on.
    let signed_in = client
        .get(format!("{}/success", env.app_url))
        .header(header::HOST, "login.example.test")
        .header(header::COOKIE, env.finished_sign_in().await)
        .send()
        .await
        .unwrap();
    let started = client
        .get(format!("{}/authorize/facebook", env.app_url))
        .header(header::HOST, "login.example.test")
        .send()
        .await
        .unwrap();
    let set_cookie = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {:?}", response.headers()))
    };
    let cookie = set_cookie(&signed_in, "__Secure-loginwith_session");
    for part in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Domain=example.test",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    // The sign-in in progress is bound to a cookie no other host of the domain can set:
    // `__Host-`, no `Domain`, although the session cookie has one.
    let key = set_cookie(&started, "__Host-loginwith_session_signin");
    for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(key.contains(part), "{part} in {key}");
    }
    assert!(!key.contains("Domain"), "{key}");

    let (id, csrf) = plant_signed_in_session(&env).await;
    let session_cookie = format!("__Secure-loginwith_session={id}");
    let check = async |cookie: &str| {
        client
            .get(format!("{}{CHECK}", env.app_url))
            .header(header::HOST, "10.0.0.5:3000")
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(check(&session_cookie).await, StatusCode::OK);
    // The development name, or the host-only one, is not the cookie in production.
    assert_eq!(
        check(&format!("loginwith_session={id}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        check(&format!("__Host-loginwith_session={id}")).await,
        StatusCode::UNAUTHORIZED
    );

    let response = client
        .post(format!("{}/logout", env.app_url))
        .header(header::HOST, "login.example.test")
        .header(header::COOKIE, &session_cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let removals: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(removals.len(), 1, "{removals:?}");
    let removal = removals[0];
    assert!(
        removal.starts_with("__Secure-loginwith_session=;"),
        "{removal}"
    );
    // Without the same Domain (and Secure) the browser would keep the signed-in cookie.
    for part in ["Max-Age=0", "Domain=example.test", "Secure", "Path=/"] {
        assert!(removal.contains(part), "{part} in {removal}");
    }
    assert_eq!(check(&session_cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn concurrent_checks_with_different_cookies_each_get_their_own_answer() {
    let env = TestEnv::start().await;
    let (ada, bob) = (env.browser(), env.browser());
    ada.login(common::ADA).await;
    let bob_person = Person {
        first: "Bob",
        last: "Builder",
        email: "bob@example.com",
    };
    bob.login(bob_person).await;
    let ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.id, p.email FROM session s JOIN user_profile p ON p.id = s.user_id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    // Checks read the table together (several cookies per statement): 150 at once, signed in
    // as either person or not at all, must each get their own answer.
    let unknown = Id::default().to_string();
    let checks: Vec<_> = (0..150)
        .map(|i| {
            let (cookie, email) = match i % 3 {
                0 => (ids[0].0.clone(), Some(ids[0].1.clone())),
                1 => (ids[1].0.clone(), Some(ids[1].1.clone())),
                _ => (unknown.clone(), None),
            };
            let url = format!("{}{CHECK}", env.app_url);
            tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .get(url)
                    .header(header::COOKIE, format!("loginwith_session={cookie}"))
                    .send()
                    .await
                    .unwrap();
                let got =
                    (response.status() == StatusCode::OK).then(|| identity(&response)[1].clone());
                assert_eq!(got, email, "check {i}");
            })
        })
        .collect();
    for check in checks {
        check.await.unwrap();
    }
}

/// The shared cookie's hole: another host of the domain tosses its own signed-in cookie into a
/// signed-in browser, which then sends two of the name. Neither is believed: the page answers
/// as signed out and removes both, the host-only one and the domain's (`Secure`, or the
/// browser ignores the removal of a `__Secure-` cookie), and the check answers 401.
#[tokio::test]
async fn in_production_two_shared_cookies_of_the_name_are_signed_out_and_both_removed() {
    let env = TestEnv::start_in(Environment::Production, |f| {
        behind_tls(f).merge(("session.cookie_domain", "example.test"))
    })
    .await;
    let client = common::cookieless_client();
    let (ada, _) = plant_signed_in(&env, "Ada").await;
    let (mallory, _) = plant_signed_in(&env, "Mallory").await;
    let get = async |path: &str, cookie: &str| {
        client
            .get(format!("{}{path}", env.app_url))
            .header(header::HOST, "login.example.test")
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
    };
    let set_cookies = |response: &reqwest::Response| -> Vec<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let name = "__Secure-loginwith_session";
    for (first, last) in [(&ada, &mallory), (&mallory, &ada)] {
        let twins = format!("{name}={first}; {name}={last}");
        let response = get("/", &twins).await;
        assert_eq!(response.status(), StatusCode::OK);
        let removals = set_cookies(&response);
        for removal in &removals {
            assert!(removal.starts_with(&format!("{name}=;")), "{removal}");
            for part in ["Max-Age=0", "Secure", "Path=/"] {
                assert!(removal.contains(part), "{part} in {removal}");
            }
        }
        // Host-only, and for every domain the public host is inside: the twin tossed in by
        // another host may be for any of them.
        let scopes: Vec<Option<&str>> = removals
            .iter()
            .map(|r| r.split("; ").find_map(|part| part.strip_prefix("Domain=")))
            .collect();
        assert_eq!(
            scopes,
            [
                None,
                Some("login.example.test"),
                Some("example.test"),
                Some("test")
            ],
            "{removals:?}"
        );
        let page = response.text().await.unwrap();
        assert!(!page.contains("Hi, "), "{page}");
        assert_eq!(get(CHECK, &twins).await.status(), StatusCode::UNAUTHORIZED);
        // Finishing a sign-in from there: a new session for the domain, and every removal
        // but the one for that scope (which would delete the new cookie).
        let finished = env.finished_sign_in().await;
        let response = get("/success", &format!("{twins}; {finished}")).await;
        assert_eq!(location(&response), "/");
        let cookies = set_cookies(&response);
        let session: Vec<&String> = cookies
            .iter()
            .filter(|c| c.starts_with(&format!("{name}=")))
            .collect();
        let set: Vec<&&String> = session
            .iter()
            .filter(|c| !c.contains("Max-Age=0"))
            .collect();
        assert_eq!(set.len(), 1, "{cookies:?}");
        assert!(set[0].contains("Domain=example.test"), "{cookies:?}");
        assert!(
            !session.iter().any(|c| c.contains("Path=/;")
                && c.contains("Domain=example.test;")
                && c.contains("Max-Age=0")),
            "{cookies:?}"
        );
        assert!(
            session
                .iter()
                .any(|c| c.contains("Path=/;") && !c.contains("Domain") && c.contains("Max-Age=0")),
            "{cookies:?}"
        );
    }
    // Each alone is who it was: nothing was deleted.
    for id in [&ada, &mallory] {
        let check = get(CHECK, &format!("{name}={id}")).await;
        assert_eq!(check.status(), StatusCode::OK);
    }
}

/// A twin tossed in for a longer path is sent first for the pages below it: the removals
/// asked from there cover that path too, in every scope.
#[tokio::test]
async fn in_production_a_twin_for_a_longer_path_is_removed_there() {
    let env = TestEnv::start_in(Environment::Production, |f| {
        behind_tls(f).merge(("session.cookie_domain", "example.test"))
    })
    .await;
    let (ada, _) = plant_signed_in(&env, "Ada").await;
    let (mallory, _) = plant_signed_in(&env, "Mallory").await;
    let name = "__Secure-loginwith_session";
    let response = common::cookieless_client()
        .get(format!("{}/account", env.app_url))
        .header(header::HOST, "login.example.test")
        .header(header::COOKIE, format!("{name}={mallory}; {name}={ada}"))
        .send()
        .await
        .unwrap();
    // Signed out: /account sends an anonymous visitor home.
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let removals: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for domain in ["", "; Domain=example.test"] {
        assert!(
            removals.iter().any(|r| r.contains("Path=/account")
                && r.contains("Max-Age=0")
                && (domain.is_empty() != r.contains("Domain="))
                && r.contains(domain)),
            "Path=/account{domain} in {removals:?}"
        );
    }
}
