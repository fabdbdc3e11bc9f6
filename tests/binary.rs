//! The real binary, configured the way people configure it: from the environment, with an
//! all-digit Facebook App ID, signing a person in against a Facebook stand-in on its own port.

mod common;

use std::{
    net::TcpListener as StdListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{ADA, Browser, PATIENCE};
use loginwith::dev_provider::{DevProvider, DevProviderSettings, Faults};

/// The README's block that connects a real Facebook app, as printed.
fn readme_block() -> String {
    let readme = include_str!("../README.md");
    let marker = "<!-- tests/binary.rs runs this block as printed -->";
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

/// A running binary, stopped when dropped.
struct Running {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("bash runs");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("the binary stopped ({status}): {stderr}");
        }
        if let Ok(response) = client.get(&app_url).send().await {
            assert!(response.status().is_success(), "{}", response.status());
            break;
        }
        assert!(Instant::now() < deadline, "the binary never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        child,
        url: app_url,
        _dir: dir,
    }
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

/// `text` without terminal colour codes (`ESC [ … m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn start_up_and_shutdown_say_what_they_do() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOGINWITH_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("serve")
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "LOGINWITH_SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, reader) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(plain(&line)).is_err() {
                break;
            }
        }
    });
    let mut start_up = Vec::new();
    while !start_up.iter().any(|l: &String| l.contains("listening on")) {
        start_up.push(reader.recv_timeout(PATIENCE).expect("a start-up line"));
    }
    let start_up = start_up.join("\n");
    let db = dir.path().canonicalize().unwrap().join("data/loginwith.db");
    for expected in [
        "environment=\"development\"".to_owned(),
        format!("database=SQLite file {}", db.display()),
        format!("listening on 127.0.0.1:{port}; people open http://127.0.0.1:{port}"),
        format!(
            "provider facebook: the development provider stands in at http://127.0.0.1:{port}/dev/facebook"
        ),
    ] {
        assert!(start_up.contains(&expected), "{expected} in {start_up}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut shutdown = Vec::new();
    while let Ok(line) = reader.recv_timeout(PATIENCE) {
        shutdown.push(line);
    }
    assert!(child.wait().unwrap().success(), "a clean exit");
    let shutdown = shutdown.join("\n");
    assert!(shutdown.contains("shutting down"), "{shutdown}");
    assert!(shutdown.contains("stopped"), "{shutdown}");
}
