//! `[access]`: who may sign in at all, by verified address. On the real router: the test
//! OpenID Connect issuer (`corp`, "Corp SSO"), which can say an address is unverified, and
//! the Facebook stand-in, which never says it is verified.

use loginwith_testkit as common;

use axum::{Router, routing::get};
use common::{
    ADA, Browser, Capture, Person, TestEnv, eventually, github::GitHubEnv, location, oidc::OidcEnv,
};
use figment::Figment;
use loginwith::{App, SignedIn, config::Environment};
use reqwest::{StatusCode, header};
use tower::ServiceExt;

/// `[providers.corp]` with `[access]` as `tweak` sets it, its issuer vouching for `email`.
async fn corp(email: &str, verified: bool, tweak: impl FnOnce(Figment) -> Figment) -> OidcEnv {
    let email = email.to_owned();
    OidcEnv::start_with(
        move |b| {
            b.email = email;
            b.email_verified = verified;
            b.name = "Ada <i>Lovelace</i> 🦀".to_owned();
        },
        tweak,
        Vec::new(),
    )
    .await
}

/// Everything this binary's tests log (installed once: the subscriber is global).
fn log() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(Capture::install_trace)
}

/// `GET /auth/check` with the browser's cookies, as a gateway passes them on.
async fn check(browser: &Browser) -> reqwest::Response {
    browser.get("/auth/check").await
}

/// Rows that would hold anything about a person, and the sessions signed in as one.
async fn kept(env: &TestEnv) -> [i64; 3] {
    let signed_in: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM session WHERE user_id IS NOT NULL")
            .fetch_one(&env.db)
            .await
            .expect("count sessions");
    [
        env.count("user_profile").await,
        env.count("user_identity").await,
        signed_in,
    ]
}

#[tokio::test]
async fn an_exact_address_lets_in_with_its_case_ignored() {
    let env = corp("Ada@CORP.example", true, |f| {
        f.merge(("access.emails", vec!["ada@corp.EXAMPLE"]))
    })
    .await;
    let browser = env.env.browser();
    assert_eq!(env.sign_in(&browser).await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert_eq!(check(&browser).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_domain_lets_in_that_domain_and_not_its_subdomains() {
    let env = corp("grace@corp.example", true, |f| {
        f.merge(("access.email_domains", vec!["corp.example"]))
    })
    .await;
    let browser = env.env.browser();
    assert_eq!(env.sign_in(&browser).await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert_eq!(check(&browser).await.status(), StatusCode::OK);

    env.issuer.set(|b| {
        b.sub = "sub-0002".to_owned();
        b.email = "alan@sub.corp.example".to_owned();
    });
    let other = env.env.browser();
    assert_eq!(env.sign_in(&other).await, "error");
    let (status, page) = other.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("alan@sub.corp.example (Corp SSO) may not sign in to loginwith."),
        "{page}"
    );
    assert_eq!(env.env.count("user_identity").await, 1);
}

#[tokio::test]
async fn an_unverified_address_never_matches() {
    let env = corp("ada@corp.example", false, |f| {
        f.merge(("access.emails", vec!["ada@corp.example"]))
            .merge(("access.email_domains", vec!["corp.example"]))
    })
    .await;
    let browser = env.env.browser();
    assert_eq!(env.sign_in(&browser).await, "error");
    assert_eq!(
        env.env.last_operation().await,
        ("error".to_owned(), Some("not_allowed".to_owned()))
    );
    assert_eq!(kept(&env.env).await, [0, 0, 0]);
}

#[tokio::test]
async fn a_facebook_address_never_matches_when_conditions_are_set() {
    // Facebook says nothing about verification: its address proves nothing.
    let env = corp("ada@corp.example", true, |f| {
        f.merge(("access.email_domains", vec!["example.com"]))
    })
    .await;
    let browser = env.env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error");
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("ada@example.com (Facebook) may not sign in to loginwith."),
        "{page}"
    );
    assert_eq!(kept(&env.env).await, [0, 0, 0]);
}

#[tokio::test]
async fn without_conditions_everyone_a_provider_vouches_for_signs_in() {
    let env = corp("ada@corp.example", false, |f| f).await;
    let facebook = env.env.browser();
    facebook.login(ADA).await;
    assert_eq!(check(&facebook).await.status(), StatusCode::OK);
    let unverified = env.env.browser();
    assert_eq!(env.sign_in(&unverified).await, "ok");
    assert_eq!(location(&unverified.get("/success").await), "/");
    assert_eq!(check(&unverified).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refusal_keeps_nothing_and_says_who_was_refused() {
    let env = corp("<b>ada</b>@gmail.example", true, |f| {
        f.merge(("access.email_domains", vec!["corp.example"]))
    })
    .await;
    let log = log();
    let browser = env.env.browser();
    browser
        .until_preloader_through("corp?return_to=%2Fdashboard%3Fx%3D1", &env.issuer.url)
        .await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        env.env.last_operation().await,
        ("error".to_owned(), Some("not_allowed".to_owned()))
    );
    assert_eq!(kept(&env.env).await, [0, 0, 0]);

    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The address as the provider gave it, escaped.
    assert!(
        page.contains(
            "&#60;b&#62;ada&#60;/b&#62;@gmail.example (Corp SSO) may not sign in to loginwith."
        ),
        "{page}"
    );
    assert!(!page.contains("<b>ada"), "{page}");
    // Back to the buttons, where the sign-in was going kept.
    assert!(
        page.contains(
            r#"href="/?return_to=%2Fdashboard%3Fx%3D1">Sign in with another account</a>"#
        ),
        "{page}"
    );
    // Nobody is signed in, and the buttons are there.
    assert_eq!(check(&browser).await.status(), StatusCode::UNAUTHORIZED);
    let (_, home) = browser.text("/").await;
    assert!(home.contains(r#"href="/authorize/corp""#), "{home}");
    assert_eq!(kept(&env.env).await, [0, 0, 0]);

    // One INFO line names the provider and the address's domain, never the address.
    let text = log.text();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("sign-in refused") && line.contains("gmail.example"))
        .collect();
    assert_eq!(refusals.len(), 1, "{text}");
    assert!(refusals[0].contains(" INFO "), "{}", refusals[0]);
    assert!(
        refusals[0].contains(r#"provider="corp""#),
        "{}",
        refusals[0]
    );
    assert!(
        refusals[0].contains(r#"email_domain="gmail.example""#),
        "{}",
        refusals[0]
    );
    assert!(!refusals[0].contains("ada</b>"), "{}", refusals[0]);

    // Counted as a finished sign-in with its own outcome.
    let metrics = reqwest::get(format!(
        "{}/metrics",
        env.env.metrics_url.as_deref().expect("metrics on")
    ))
    .await
    .expect("scrape")
    .text()
    .await
    .expect("body");
    assert!(
        metrics.lines().any(
            |line| line.starts_with("loginwith_sign_ins_finished_total{")
                && line.contains(r#"outcome="not_allowed""#)
                && line.contains(r#"provider="corp""#)
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_change_to_the_emails_file_applies_at_the_next_check_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("emails");
    std::fs::write(&file, "# staff\nada@corp.example\n").expect("write the list");
    let env = corp("ada@corp.example", true, |f| {
        f.merge(("access.emails_file", file.to_str().expect("a UTF-8 path")))
    })
    .await;
    let browser = env.env.browser();
    assert_eq!(env.sign_in(&browser).await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert_eq!(check(&browser).await.status(), StatusCode::OK);

    // Ada leaves the list: her next checks are refused, without a restart.
    std::fs::write(&file, "# staff\ngrace.hopper@corp.example # joined\n").expect("rewrite");
    eventually("the check refuses Ada once the file drops her", || async {
        check(&browser).await.status() == StatusCode::FORBIDDEN
    })
    .await;
    // And she is let in again when she is back.
    std::fs::write(&file, "ada@corp.example\n").expect("rewrite");
    eventually(
        "the check lets Ada in once the file lists her again",
        || async { check(&browser).await.status() == StatusCode::OK },
    )
    .await;
}

#[tokio::test]
async fn a_person_signed_in_before_the_rules_changed_is_refused_after_a_restart() {
    // Ada signs in through Facebook while anyone may.
    let before = TestEnv::start().await;
    let browser = before.browser();
    browser
        .login(Person {
            first: "Ada <script>",
            last: "🦀",
            email: "ada@example.com",
        })
        .await;
    assert_eq!(check(&browser).await.status(), StatusCode::OK);

    // Restarted on the same database with a condition her Facebook address cannot meet.
    let after = TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        before.config.database.url.clone(),
        Environment::Development,
        Vec::new(),
        |f| {
            f.merge(("access.email_domains", vec!["example.com"]))
                .merge(("server.trusted_proxies", vec!["127.0.0.1"]))
                .merge(("gateway.allowed_hosts", vec!["app.example.test"]))
        },
    )
    .await;
    let on_after = Browser::with_client(&after.app_url, browser.client.clone());
    let response = check(&on_after).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.text().await.expect("body"),
        "signed in, but not allowed"
    );

    // Asked for HTML: the page naming who is signed in, whose buttons sign out.
    let response = on_after
        .client
        .get(on_after.url("/auth/check"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("check");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = response.text().await.expect("page");
    assert!(
        page.contains("ada@example.com (Facebook) may not sign in to loginwith."),
        "{page}"
    );
    // Its links lead to loginwith's home page, where the logout form is: the page is shown on
    // the protected site's host, whose scripts must not read the session's CSRF token.
    let home_url = format!("{}/", after.app_url);
    assert!(
        page.contains(&format!(
            r#"href="{home_url}">Sign in with another account</a>"#
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"href="{home_url}">Log out</a>"#)),
        "{page}"
    );
    assert!(!page.contains("csrf"), "{page}");
    // Shown on the protected site's host: its links and its policy name loginwith's origin.
    assert!(
        page.contains(&format!(r#"href="{}/static/"#, after.app_url)),
        "{page}"
    );

    // Through a trusted gateway that says which URL was asked for (Traefik, Caddy), "Sign in
    // with another account" comes back there.
    let response = on_after
        .client
        .get(on_after.url("/auth/check"))
        .header(header::ACCEPT, "text/html")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/reports?year=2026")
        .send()
        .await
        .expect("check");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("a policy")
        .to_owned();
    assert!(
        policy.contains(&format!("style-src 'self' {}", after.app_url)),
        "{policy}"
    );
    let page = response.text().await.expect("page");
    assert!(
        page.contains(&format!(
            r#"href="{home_url}?return_to=http%3A%2F%2Fapp.example.test%2Freports%3Fyear%3D2026">Sign in with another account</a>"#
        )),
        "{page}"
    );

    // loginwith's own home page still shows her signed in, says why, and stays put rather
    // than sending her on to a site that would refuse her.
    let response = on_after.get("/?return_to=%2Fdashboard").await;
    assert_eq!(response.status(), StatusCode::OK);
    let home = response.text().await.expect("home");
    assert!(
        home.contains("ada@example.com (Facebook) may not sign in to loginwith."),
        "{home}"
    );
    assert!(home.contains(">Log out</button>"), "{home}");
    assert!(
        home.contains(r#"name="return_to" value="/dashboard""#),
        "{home}"
    );

    // A site embedding loginwith: its `SignedIn` route answers her with the same page (403),
    // and `Option<SignedIn>` is `None`.
    let id: String = sqlx::query_scalar("SELECT id FROM session WHERE user_id IS NOT NULL")
        .fetch_one(&after.db)
        .await
        .expect("her session");
    let embedded = App::build(&after.config, "127.0.0.1:9".parse().expect("an address"))
        .await
        .expect("the library builds");
    let site = Router::new()
        .route(
            "/dashboard",
            get(|person: SignedIn| async move { person.name().to_owned() }),
        )
        .route(
            "/",
            get(|person: Option<SignedIn>| async move { format!("{:?}", person.map(|p| p.id())) }),
        )
        .with_state(embedded.accounts());
    let ask = |path: &'static str| {
        site.clone().oneshot(
            axum::http::Request::get(path)
                .header(header::COOKIE, format!("loginwith_session={id}"))
                .body(axum::body::Body::empty())
                .expect("a request"),
        )
    };
    let response = ask("/dashboard").await.expect("an answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("ada@example.com (Facebook) may not sign in to loginwith."),
        "{body}"
    );
    assert!(
        body.contains(r#"name="return_to" value="/dashboard""#),
        "{body}"
    );
    let response = ask("/").await.expect("an answer");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(&body[..], b"None");

    // The home page's logout works, back to the buttons with where she was going.
    let token = on_after.csrf_token().await;
    let response = on_after
        .post_form(
            "/logout",
            &[("csrf_token", token.as_str()), ("return_to", "/dashboard")],
        )
        .await;
    assert_eq!(location(&response), "/?return_to=%2Fdashboard");
    assert_eq!(check(&on_after).await.status(), StatusCode::UNAUTHORIZED);
    drop(after);
}

#[tokio::test]
async fn adding_a_sign_in_method_is_not_restricted_but_signing_in_with_it_is() {
    // Ada's GitHub address is verified and listed; Facebook's never counts.
    let gh = GitHubEnv::start_with(|f| f.merge(("access.emails", vec!["ada@example.com"]))).await;
    let laptop = gh.env.browser();
    assert!(gh.login(&laptop).await.contains("Hi, Ada!"));

    // She adds Facebook from "Sign-in methods": she is signed in already, so it is added.
    let token = laptop.csrf_token_on("/account").await;
    let response = laptop
        .post_form("/account/link/facebook", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let dialog = url::Url::parse(location(&response)).expect("the dialog's URL");
    let callback = laptop.consent(&dialog, ADA, "allow").await;
    assert_eq!(location(&laptop.get(&callback).await), "/preloader");
    assert_eq!(laptop.wait_status().await, "ok");
    assert_eq!(location(&laptop.get("/success").await), "/account");
    assert_eq!(gh.env.count("user_identity").await, 2);
    // Adding it changed nothing of who she is here: still let in.
    assert_eq!(check(&laptop).await.status(), StatusCode::OK);

    // Signing in with it is checked like any sign-in: refused, and nothing written.
    let phone = gh.env.browser();
    phone.login_until_preloader(ADA).await;
    assert_eq!(phone.wait_status().await, "error");
    assert_eq!(check(&phone).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(kept(&gh.env).await, [1, 2, 1]);
}
