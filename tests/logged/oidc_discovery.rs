//! One issuer being down must not take the site down. Discovery that fails at start-up leaves
//! the app serving every other provider, that issuer's sign-ins end on a "cannot reach" page,
//! and discovery is retried until it works; a refresh that fails keeps the last good
//! document; a document naming another issuer refuses the start, or, found later, withdraws
//! the provider with an ERROR line. `loginwith check` reports each issuer's discovery.

use loginwith_testkit as common;

use std::{
    process::Command,
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::{
    Capture,
    oidc::{Discovery, Issuer, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OidcEnv},
};
use reqwest::StatusCode;

/// Everything logged by every test of this binary (the subscriber is global).
fn log() -> String {
    static LOG: OnceLock<Capture> = OnceLock::new();
    let capture = LOG.get_or_init(Capture::install_trace);
    String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned()
}

/// Waits (up to 15 s) for `condition`, polling.
async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// These tests ask `/authorize/corp` over and over from one address: no per-address limit.
fn unlimited(figment: figment::Figment) -> figment::Figment {
    figment
        .merge(("limits.auth_per_minute", 100_000))
        .merge(("limits.auth_burst", 100_000))
}

/// The app with the test issuer, re-reading its discovery document every second.
async fn refreshing_every_second() -> OidcEnv {
    OidcEnv::start_with(
        |_| {},
        |f| unlimited(f).merge(("login.discovery_refresh_secs", 1)),
        Vec::new(),
    )
    .await
}

async fn authorize_status(oidc: &OidcEnv) -> StatusCode {
    oidc.env.browser().get("/authorize/corp").await.status()
}

#[tokio::test]
async fn an_issuer_down_at_start_up_leaves_the_site_up_and_is_retried_until_it_answers() {
    log();
    let oidc = OidcEnv::start_with(
        |b| b.discovery = Discovery::Down,
        unlimited,
        // Another provider beside the issuer, which must keep working while it is down.
        vec![common::stub_provider::StubProvider::plain(
            "elsewhere",
            "Elsewhere",
            "https://elsewhere.example/authorize",
        )],
    )
    .await;
    let browser = oidc.env.browser();
    let home = browser.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    assert!(home.contains("Elsewhere"), "{home}");

    // The other provider starts sign-ins as usual.
    let response = browser.get("/authorize/elsewhere").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The issuer's sign-ins end on a clear page, and nothing is written.
    let response = oidc.env.browser().get("/authorize/corp").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "60");
    let page = response.text().await.unwrap();
    assert!(page.contains("Cannot reach Corp SSO right now"), "{page}");
    assert_eq!(oidc.env.count("async_operation").await, 0);
    assert!(
        log().lines().any(|l| l.contains("WARN")
            && l.contains("providers.corp.issuer: discovery failed (HTTP 503")),
        "{}",
        log()
    );

    // The issuer comes back: a retry finds it, and sign-ins work.
    oidc.issuer.set(|b| b.discovery = Discovery::Up);
    wait_for("the issuer to be discovered", || async {
        authorize_status(&oidc).await == StatusCode::SEE_OTHER
    })
    .await;
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
}

#[tokio::test]
async fn a_refresh_that_fails_keeps_the_last_good_document() {
    log();
    let oidc = refreshing_every_second().await;
    oidc.issuer.set(|b| b.discovery = Discovery::Down);
    let (before, _) = oidc.fetches();
    wait_for("two refreshes while the issuer is down", || async {
        oidc.fetches().0 >= before + 2
    })
    .await;
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert!(
        log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("keeping the last good document")),
        "{}",
        log()
    );
}

#[tokio::test]
async fn a_document_naming_another_issuer_later_withdraws_the_provider_until_fixed() {
    log();
    let oidc = refreshing_every_second().await;
    assert_eq!(authorize_status(&oidc).await, StatusCode::SEE_OTHER);
    oidc.issuer.set(|b| b.discovery = Discovery::OtherIssuer);
    wait_for("the provider to be withdrawn", || async {
        authorize_status(&oidc).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(
        log().lines().any(|l| l.contains("ERROR")
            && l.contains("provider unavailable")
            && l.contains("names another issuer")),
        "{}",
        log()
    );
    assert_eq!(oidc.env.count("async_operation").await, 0);

    oidc.issuer.set(|b| b.discovery = Discovery::Up);
    wait_for("the provider to come back", || async {
        authorize_status(&oidc).await == StatusCode::SEE_OTHER
    })
    .await;
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
}

/// The binary with `[providers.corp]` at `issuer`, running `args`.
async fn loginwith(issuer: &Issuer, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    command.args(args).current_dir(dir.path());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOGINWITH_") {
            command.env_remove(name);
        }
    }
    command.envs([
        ("LOGINWITH_SERVER__BIND", "127.0.0.1:0"),
        ("LOGINWITH_METRICS__BIND", "127.0.0.1:0"),
        ("LOGINWITH_PROVIDERS__CORP__KIND", "oidc"),
        ("LOGINWITH_PROVIDERS__CORP__ISSUER", issuer.url.as_str()),
        ("LOGINWITH_PROVIDERS__CORP__CLIENT_ID", OIDC_CLIENT_ID),
        (
            "LOGINWITH_PROVIDERS__CORP__CLIENT_SECRET",
            OIDC_CLIENT_SECRET,
        ),
        ("LOGINWITH_PROVIDERS__CORP__DISPLAY_NAME", "Corp SSO"),
    ]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("run the binary"))
        .await
        .unwrap();
    assert!(
        !dir.path().join("data").exists(),
        "the database was created"
    );
    output
}

#[tokio::test]
async fn a_document_naming_another_issuer_refuses_start_up_and_check_reports_discovery() {
    let issuer = Issuer::serve("http://127.0.0.1:8080/callback/corp", |b| {
        b.discovery = Discovery::OtherIssuer;
    })
    .await;
    let output = loginwith(&issuer, &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let refusal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("providers.corp.issuer: discovery names another issuer"))
        .collect();
    assert_eq!(refusal.len(), 1, "{stderr}");

    let output = loginwith(&issuer, &["check"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("providers.corp.issuer: discovery names another issuer"),
        "{stderr}"
    );

    issuer.set(|b| b.discovery = Discovery::Up);
    let output = loginwith(&issuer, &["check"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains(&format!(
            "# providers.corp.issuer: discovered {}",
            issuer.url
        )),
        "{stdout}"
    );
}
