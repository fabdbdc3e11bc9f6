//! `examples/embed.rs`, the example site with loginwith mounted below `/auth`, run as its own
//! process: a visitor of the protected `/dashboard` is sent to sign in, goes through the
//! development stand-in for Facebook below `/auth`, comes back to the dashboard greeted by
//! name, and after signing out is sent to sign in again.

use loginwith_testkit as common;

use std::{path::PathBuf, process::Command};

use common::{Browser, Person, binary::Running, binary::free_port, location};
use reqwest::StatusCode;

/// Markup and emoji, as real names carry them now and then.
const GRACE: Person<'static> = Person {
    first: "Grace <b>",
    last: "Hopper 🚢",
    email: "grace@example.com",
};

/// The example's binary, built beside this test's by `cargo test` (which builds the
/// examples too). Loud when it is missing rather than skipped.
fn example_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/embed-<hash> → target/debug/examples/embed
    let debug = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let binary = debug.join("examples").join("embed");
    assert!(
        binary.exists(),
        "{} is missing: build the examples first (`cargo test` does; `cargo test --test embed` alone does not, run `cargo build --examples`)",
        binary.display()
    );
    binary
}

async fn start_example() -> (Running, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://localhost:{port}");
    let mut command = Command::new(example_binary());
    command
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("LOGINWITH_EMBED_PORT", port.to_string());
    let running = Running::start(command, dir, format!("{site}/")).await;
    (running, site)
}

#[tokio::test]
async fn the_example_site_signs_people_in_below_auth_and_comes_back_to_the_dashboard() {
    let (_example, site) = start_example().await;
    let browser = Browser::new(&format!("{site}/auth"));
    let dashboard = format!("{site}/dashboard");

    // The public page is the site's own, and knows nobody yet.
    let (status, home) = browser.text(&format!("{site}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Welcome, stranger."), "{home}");

    // The protected page sends the visitor to sign in, carrying where they were going.
    let response = browser.get(&dashboard).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let sign_in = location(&response).to_owned();
    assert_eq!(sign_in, "/auth?return_to=%2Fdashboard");

    // The sign-in page below /auth, with its button below /auth.
    let (status, page) = browser.text(&format!("{site}{sign_in}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("href=\"/auth/static/"), "{page}");
    let button = "/auth/authorize/facebook?return_to=%2Fdashboard";
    assert!(
        page.contains(&format!("href=\"{}\"", button.replace('&', "&amp;"))),
        "{page}"
    );

    // The development provider lives below /auth too, and sends the browser back to the
    // redirect URI below /auth.
    let response = browser.get(&format!("{site}{button}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let dialog = url::Url::parse(location(&response)).expect("dialog URL");
    assert!(
        dialog
            .as_str()
            .starts_with(&format!("{site}/auth/dev/facebook/dialog/oauth?")),
        "{dialog}"
    );
    assert_eq!(
        common::param(dialog.as_str(), "redirect_uri"),
        format!("{site}/auth/callback/facebook")
    );
    let callback = browser.consent(&dialog, GRACE, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/auth/preloader");
    // The preloader, or (the exchange already over) a redirect to /success below /auth.
    let response = browser.get("/preloader").await;
    match response.status() {
        StatusCode::OK => {
            let preloader = response.text().await.unwrap();
            assert!(preloader.contains("/auth/static/"), "{preloader}");
        }
        StatusCode::SEE_OTHER => assert_eq!(location(&response), "/auth/success"),
        other => panic!("the preloader answered {other}"),
    }
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/dashboard");

    // Back where they were going, greeted by name (escaped by the site).
    let (status, page) = browser.text(&dashboard).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Hi, Grace &lt;b&gt; Hopper 🚢!"),
        "the dashboard greets the person: {page}"
    );
    assert!(page.contains("Signed in with facebook"), "{page}");
    // Facebook never verifies an address: the site is told so.
    assert!(
        page.contains("Address: grace@example.com (not verified by the provider)"),
        "{page}"
    );
    let (_, home) = browser.text(&format!("{site}/")).await;
    assert!(home.contains("Hello again, Grace &lt;b&gt;."), "{home}");
    // `/ops` needs the ops group, which a Facebook sign-in never has: the refusal page.
    let (status, page) = browser.text(&format!("{site}/ops")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("grace@example.com (Facebook) may not sign in"),
        "{page}"
    );
    // The same sign-in passes forward authentication's check below the mount.
    let check = browser.get("/auth/check").await;
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(check.headers()["x-auth-request-provider"], "facebook");

    // Signing out on loginwith's page signs out of the site too.
    let token = browser.csrf_token_on("").await;
    let response = browser
        .post_form("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/auth");
    let response = browser.get(&dashboard).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/auth?return_to=%2Fdashboard");
}

#[tokio::test]
async fn paths_outside_the_mount_are_the_sites_and_loginwiths_own_paths_stay_below_it() {
    let (_example, site) = start_example().await;
    let browser = Browser::new(&site);
    // loginwith's paths at the root are not loginwith's: the site has no such route.
    for path in [
        "/authorize/facebook",
        "/preloader",
        "/get-status",
        "/healthz",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Below /auth they are; the home page with a trailing slash too, query kept.
    let response = browser.get("/auth/?return_to=%2Fdashboard").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&response), "/auth?return_to=%2Fdashboard");
    assert_eq!(browser.get("/auth/healthz").await.status(), StatusCode::OK);
    // Forward authentication's check is below the mount too (anonymous here: 401).
    assert_eq!(
        browser.get("/auth/auth/check").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = browser.text("/auth/get-status").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "error"),
        "no sign-in in progress"
    );
    // A tampered cookie is nobody: sent to sign in, not an error.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{site}/dashboard"))
        .header("cookie", "loginwith_session=not-a-session; other=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}
