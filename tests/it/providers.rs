//! Several providers from configuration: `[providers.<name>]` tables, each with its own
//! button, `/authorize/<name>` and `/callback/<name>`.

use loginwith_testkit as common;

use std::sync::Arc;

use common::{ADA, Browser, TestEnv, location, stub_provider::StubProvider};
use loginwith::dev_provider::{DevProvider, DevProviderSettings, Faults};
use reqwest::StatusCode;
use url::Url;

const SECOND_ID: &str = "second-app-id";
const SECOND_SECRET: &str = "second-app-secret-0123456789";

/// A second stand-in on a port of its own, registered for `{app_url}/callback/facebook_test`.
fn second_stand_in(app_url: &str) -> (Arc<DevProvider>, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind second stand-in");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: SECOND_ID.to_owned(),
            client_secret: SECOND_SECRET.to_owned(),
            redirect_uris: vec![format!("{app_url}/callback/facebook_test")],
            auto_approve: false,
            issuer: Some(url.clone()),
        },
        Faults::default(),
    );
    let router = dev.router();
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (dev, url)
}

/// The app with `facebook` (the harness's stand-in) and `facebook_test` (a second one).
async fn two_facebook_apps() -> (TestEnv, String) {
    let mut second_url = String::new();
    let env = TestEnv::start_with(|figment| {
        let app_url: String = figment
            .extract_inner("server.public_url")
            .expect("public_url");
        let (_, url) = second_stand_in(app_url.trim_end_matches('/'));
        second_url = url.clone();
        let key = |field: &str| format!("providers.facebook_test.{field}");
        figment
            .merge((key("kind"), "facebook"))
            .merge((key("display_name"), "Facebook Test"))
            .merge((key("client_id"), SECOND_ID))
            .merge((key("client_secret"), SECOND_SECRET))
            .merge((key("authorize_url"), format!("{url}/dialog/oauth")))
            .merge((key("token_url"), format!("{url}/oauth/access_token")))
            .merge((key("api_url"), &url))
            .merge((key("issuer"), &url))
    })
    .await;
    (env, second_url)
}

/// Signs in through `/authorize/{name}`; returns the dialog's origin.
async fn sign_in_with(browser: &Browser, env: &TestEnv, name: &str) -> String {
    let response = browser.get(&format!("/authorize/{name}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, ADA, "allow").await;
    assert!(
        callback.starts_with(&format!("{}/callback/{name}?", env.app_url)),
        "{callback}"
    );
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/preloader");
    assert_eq!(browser.wait_status().await, "ok");
    dialog.origin().ascii_serialization()
}

#[tokio::test]
async fn two_facebook_kind_providers_each_get_a_button_a_dialog_and_a_callback() {
    let (env, second_url) = two_facebook_apps().await;
    let browser = env.browser();
    let (status, home) = browser.text("/").await;
    assert_eq!(status, StatusCode::OK);
    let first = home
        .find(r#"href="/authorize/facebook""#)
        .expect("a button for facebook");
    let second = home
        .find(r#"href="/authorize/facebook_test""#)
        .expect("a button for facebook_test");
    assert!(first < second, "configuration order: {home}");
    assert!(home.contains("Continue with Facebook</span>"), "{home}");
    assert!(
        home.contains("Continue with Facebook Test</span>"),
        "{home}"
    );

    assert_eq!(sign_in_with(&browser, &env, "facebook").await, env.dev_url);
    assert_eq!(
        sign_in_with(&env.browser(), &env, "facebook_test").await,
        second_url
    );
    let mut providers: Vec<String> = sqlx::query_scalar("SELECT provider FROM user_identity")
        .fetch_all(&env.db)
        .await
        .unwrap();
    providers.sort();
    assert_eq!(providers, ["facebook", "facebook_test"]);
}

#[tokio::test]
async fn a_callback_on_the_other_providers_path_is_refused() {
    let (env, _) = two_facebook_apps().await;
    let browser = env.browser();
    let response = browser.get("/authorize/facebook_test").await;
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, ADA, "allow").await;
    // The code and state of facebook_test, brought to facebook's callback.
    let moved = callback.replace("/callback/facebook_test?", "/callback/facebook?");
    let response = browser.get(&moved).await;
    assert_ne!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(env.count("user_identity").await, 0);
}

#[tokio::test]
async fn an_unknown_provider_name_is_not_found() {
    let (env, _) = two_facebook_apps().await;
    let browser = env.browser();
    for path in [
        "/authorize/github",
        "/authorize/nobody",
        "/callback/nobody?code=x&state=y",
        "/authorize/Facebook",
    ] {
        assert_eq!(
            browser.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_provider_without_a_brand_gets_a_neutral_button_with_its_name() {
    let env = TestEnv::start_with_providers(
        |_| {
            // A provider of no published brand, for the neutral button.
            vec![StubProvider::plain(
                "acme",
                "Acme <SSO>",
                "https://acme.example/authorize",
            )]
        },
        |f| f,
    )
    .await;
    let (_, home) = env.browser().text("/").await;
    assert!(
        home.contains(
            r#"<a class="button button-secondary button-provider" href="/authorize/acme">"#
        ),
        "{home}"
    );
    // The name is text, escaped: its accessible name is exactly what it says.
    assert!(
        home.contains("Continue with Acme &#60;SSO&#62;</span>")
            || home.contains("Continue with Acme &lt;SSO&gt;</span>"),
        "{home}"
    );
    assert!(home.contains("Use an account you already have"), "{home}");
    let response = env.browser().get("/authorize/acme").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("https://acme.example/authorize?state="));
}

/// The HTML of the link to `/authorize/{name}`, from `<a` to `</a>`.
fn link_to<'a>(home: &'a str, name: &str) -> &'a str {
    let href = format!(r#"href="/authorize/{name}""#);
    let at = home
        .find(&href)
        .unwrap_or_else(|| panic!("no link to {name}: {home}"));
    let start = home[..at].rfind("<a ").expect("the link's start");
    let end = at + home[at..].find("</a>").expect("the link's end") + "</a>".len();
    &home[start..end]
}

/// What a screen reader announces for a link made of an `alt=""` image and text: the text.
fn accessible_name(link: &str) -> String {
    assert!(
        !link.contains("aria-label") && !link.contains("title="),
        "the name comes from the text alone: {link}"
    );
    let mut text = String::new();
    let mut in_tag = false;
    for c in link.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn googles_issuer_gets_googles_white_button_with_the_four_colour_mark() {
    let env = TestEnv::start_with_providers(
        |_| {
            // Google as the app knows it: named `google`, issuer `https://accounts.google.com`, and
            // so Google's brand (the real `Oidc` cannot be built here: its discovery would have
            // to reach Google).
            vec![Arc::new(StubProvider {
                id: "google",
                display_name: "Google",
                dialog: "https://accounts.google.com/o/oauth2/v2/auth",
                issuer: Some(loginwith::config::GOOGLE_ISSUER),
            })]
        },
        |f| f,
    )
    .await;
    let browser = env.browser();
    let (status, home) = browser.text("/").await;
    assert_eq!(status, StatusCode::OK);
    let facebook = home
        .find(r#"href="/authorize/facebook""#)
        .expect("Facebook");
    let google_at = home.find(r#"href="/authorize/google""#).expect("Google");
    assert!(facebook < google_at, "configuration order: {home}");
    let google = link_to(&home, "google");
    assert!(
        google.starts_with(r#"<a class="button button-google" href="/authorize/google">"#),
        "{google}"
    );
    assert_eq!(accessible_name(google), "Continue with Google");
    // The mark: decorative (the text names the link), from the binary, versioned.
    let marker = r#"<img src="/static/img/google-g.svg?v="#;
    let at = google.find(marker).expect("Google's mark in the button");
    let tag = &google[at..at + google[at..].find('>').expect("end of img")];
    assert!(tag.contains(r#"alt="""#), "{tag}");
    let src = &tag[r#"<img src=""#.len()..];
    let src = &src[..src.find('"').expect("end of src")];
    let response = browser.get(src).await;
    assert_eq!(response.status(), StatusCode::OK, "{src}");
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.unwrap().to_ascii_uppercase();
    for colour in ["#4285F4", "#34A853", "#FBBC05", "#EA4335"] {
        assert_eq!(svg.matches(colour).count(), 1, "{colour} in the G: {svg}");
    }
    // The stylesheet draws the light-theme button of Google's guidelines.
    let css_url = {
        let at = home.find("/static/css/app.css?v=").expect("stylesheet");
        &home[at..at + home[at..].find('"').expect("end of href")]
    };
    let css = browser.text(css_url).await.1;
    let rule = &css[css.find(".button-google {").expect("a .button-google rule")..];
    let rule = &rule[..rule.find('}').expect("end of rule")];
    for declaration in [
        "background: #fff",
        "color: #1f1f1f",
        "border-color: #747775",
        "font-family: Roboto,",
        "overflow-wrap: anywhere",
    ] {
        assert!(rule.contains(declaration), "{declaration} in {rule}");
    }
    // Still a sign-in like any other: to Google, with the state.
    let response = browser.get("/authorize/google").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("https://accounts.google.com/o/oauth2/v2/auth?state="));
}

#[tokio::test]
async fn an_openid_connect_issuer_other_than_google_never_wears_googles_mark() {
    let oidc = common::oidc::OidcEnv::start().await;
    let (_, home) = oidc.env.browser().text("/").await;
    let corp = link_to(&home, "corp");
    assert!(
        corp.starts_with(
            r#"<a class="button button-secondary button-provider" href="/authorize/corp">"#
        ),
        "{corp}"
    );
    assert_eq!(accessible_name(corp), "Continue with Corp SSO");
    assert!(!home.contains("google-g.svg"), "{home}");
    assert!(!home.contains("button-google"), "{home}");
}
