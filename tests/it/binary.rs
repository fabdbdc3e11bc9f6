//! The real binary, configured the way people configure it: from the environment, with an
//! all-digit Facebook App ID, signing a person in against a Facebook stand-in on its own port.

use loginwith_testkit as common;

use std::process::Command;

use common::{
    ADA, Browser,
    binary::{Running, free_port},
};
use loginwith::dev_provider::{DevProvider, DevProviderSettings, Faults};

/// The README's block that connects a real Facebook app, as printed.
fn readme_block() -> String {
    let readme = include_str!("../../README.md");
    let marker = "<!-- tests/it/binary.rs runs this block as printed -->";
    let after = &readme[readme.find(marker).expect("the README marks the block") + marker.len()..];
    let start = after
        .find("```sh\n")
        .expect("a sh block follows the marker")
        + "```sh\n".len();
    let end = start + after[start..].find("```").expect("the block ends");
    after[start..end]
        .lines()
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value an `export NAME=value` line of the README's block gives.
fn exported(block: &str, name: &str) -> String {
    let prefix = format!("export {name}=");
    let line = block
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the README exports {name}"));
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A Facebook stand-in for `client_id`/`client_secret` on a port of its own, expecting the
/// binary at `app_url`.
async fn stand_in(client_id: &str, client_secret: &str, app_url: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![format!("{app_url}/callback/facebook")],
            auto_approve: false,
            issuer: None,
        },
        Faults::default(),
    );
    let router = dev.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Starts the binary through `script` (bash), in a fresh folder, with the environment that
/// points it at the stand-in, and waits until it answers.
async fn start(script: &str, env: &[(&str, String)], app_url: String) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .env("README_TEST_BIN", env!("CARGO_BIN_EXE_loginwith"))
        // Never the fixed default metrics port: binaries run side by side.
        .env("LOGINWITH_METRICS__BIND", "127.0.0.1:0")
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    Running::start(command, dir, app_url).await
}

/// The provider endpoints of a stand-in, as environment variables.
fn endpoints(stand_in: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "LOGINWITH_PROVIDERS__FACEBOOK__AUTHORIZE_URL",
            format!("{stand_in}/dialog/oauth"),
        ),
        (
            "LOGINWITH_PROVIDERS__FACEBOOK__TOKEN_URL",
            format!("{stand_in}/oauth/access_token"),
        ),
        (
            "LOGINWITH_PROVIDERS__FACEBOOK__API_URL",
            stand_in.to_owned(),
        ),
    ]
}

#[tokio::test]
async fn the_readme_example_runs_as_printed_and_signs_in() {
    let block = readme_block();
    let client_id = exported(&block, "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID");
    let secret = exported(&block, "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET");
    assert!(
        client_id.bytes().all(|b| b.is_ascii_digit()),
        "the example uses a real-looking (all-digit) App ID: {client_id}"
    );
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let stand_in = stand_in(&client_id, &secret, &app_url).await;
    // `cargo run --release` stands for the binary this test was built with (building a
    // second profile here would double CI's build); the public URL the README gives is
    // replaced by where this test can reach the app. Everything else runs as printed.
    let script = format!(
        "set -eu\n\
         cargo() {{\n\
           [ \"$*\" = 'run --release' ] || {{ echo \"unexpected: cargo $*\" >&2; exit 97; }}\n\
           export LOGINWITH_SERVER__PUBLIC_URL=\"$README_TEST_PUBLIC_URL\"\n\
           exec \"$README_TEST_BIN\"\n\
         }}\n\
         {block}\n"
    );
    let mut env = endpoints(&stand_in);
    env.push(("README_TEST_PUBLIC_URL", app_url.clone()));
    env.push(("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}")));
    let app = start(&script, &env, app_url).await;
    let home = Browser::new(&app.url).login(ADA).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
}

#[tokio::test]
async fn numeric_looking_credentials_from_the_environment_sign_in() {
    // All digits, a leading zero, an exponent: each must stay the text that was typed.
    let (client_id, secret) = ("0123456789", "1e5");
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let stand_in = stand_in(client_id, secret, &app_url).await;
    let mut env = endpoints(&stand_in);
    env.extend([
        (
            "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID",
            client_id.to_owned(),
        ),
        (
            "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET",
            secret.to_owned(),
        ),
        ("LOGINWITH_SERVER__PUBLIC_URL", app_url.clone()),
        ("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}")),
    ]);
    let app = start("exec \"$README_TEST_BIN\"", &env, app_url).await;
    let home = Browser::new(&app.url).login(ADA).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
}

#[tokio::test]
async fn start_up_and_shutdown_say_what_they_do() {
    let mut app = Running::development(|command| {
        command.arg("serve").env("RUST_LOG", "info");
    })
    .await;
    app.wait_for_line("the listening line", |l| l.contains("listening on"))
        .await;
    let start_up = app.stderr();
    let port = app.url.rsplit(':').next().unwrap().to_owned();
    let db = app.dir().canonicalize().unwrap().join("data/loginwith.db");
    for expected in [
        "environment=\"development\"".to_owned(),
        format!("database=SQLite file {}", db.display()),
        format!("listening on 127.0.0.1:{port}; people open http://127.0.0.1:{port}"),
        format!(
            "provider facebook: the development provider stands in at http://127.0.0.1:{port}/dev/facebook"
        ),
        "provider dev-oidc: the development provider's OpenID Connect issuer at /dev/facebook/oidc on this server"
            .to_owned(),
    ] {
        assert!(start_up.contains(&expected), "{expected} in {start_up}");
    }
    let status = app.terminate();
    assert!(status.success(), "a clean exit: {status}");
    let log = app.stderr();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
