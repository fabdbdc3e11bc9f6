//! Several providers from configuration: `[providers.<name>]` tables, each with its own
//! button, `/authorize/<name>` and `/callback/<name>`.

mod common;

use std::sync::Arc;

use common::{ADA, Browser, TestEnv, location};
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

/// A provider of no published brand, for the neutral button.
struct Acme;

impl loginwith::auth::Provider for Acme {
    fn id(&self) -> &str {
        "acme"
    }
    fn display_name(&self) -> &str {
        "Acme <SSO>"
    }
    fn authorization_url(
        &self,
        state: &oauth2::CsrfToken,
        _: &oauth2::PkceCodeChallenge,
        _: &str,
    ) -> Result<Url, loginwith::auth::Unavailable> {
        Ok(Url::parse_with_params(
            "https://acme.example/authorize",
            [("state", state.secret())],
        )
        .expect("static URL"))
    }
    fn exchange(
        &self,
        _: oauth2::AuthorizationCode,
        _: loginwith::auth::LoginSecrets,
    ) -> loginwith::auth::BoxFuture<
        '_,
        Result<loginwith::auth::Profile, loginwith::auth::ExchangeError>,
    > {
        Box::pin(async {
            Err(loginwith::auth::ExchangeError::new(
                loginwith::auth::FailureReason::Denied,
                "test provider",
            ))
        })
    }
}

#[tokio::test]
async fn a_provider_without_a_brand_gets_a_neutral_button_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("loginwith.db").display());
    let env = TestEnv::start_on(
        dir,
        database_url,
        loginwith::config::Environment::Development,
        vec![Arc::new(Acme)],
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
