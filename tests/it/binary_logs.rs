//! What the binary logs, read from its standard error (a pipe, not a terminal): plain text,
//! one INFO line per refused or failed request and none for the others, and a `RUST_LOG`
//! that cannot be meant is refused aloud instead of silencing everything.

use loginwith_testkit as common;

use common::{Browser, binary::Running};
use reqwest::StatusCode;

/// The log lines about answers.
fn answers(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" answered "))
        .collect()
}

#[tokio::test]
async fn logs_are_plain_text_with_one_info_line_per_refusal() {
    let app = Running::development(|_| {}).await;
    let browser = Browser::new(&app.url);
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
    assert_eq!(
        browser.get("/static/css/app.css").await.status(),
        StatusCode::OK
    );
    let response = browser
        .get("/nope?code=secret-code&state=secret-state")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = browser.get("/deletion/secret-confirmation").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = browser.post_form("/", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Logged before it was answered: once it is there, so are the lines of earlier requests.
    app.wait_for_line("the 405", |line| line.contains("status=405"))
        .await;

    let log = app.stderr();
    assert!(!log.contains('\x1b'), "no ANSI codes into a pipe: {log:?}");
    let answers = answers(&log);
    let expected = [
        "method=GET route=unmatched status=404",
        "method=GET route=/deletion/{code} status=404",
        "method=POST route=/ status=405",
    ];
    assert_eq!(answers.len(), expected.len(), "{log}");
    for (line, expected) in answers.iter().zip(expected) {
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(expected), "{expected}: {line}");
        assert!(line.contains(" duration_ms="), "{line}");
    }
    for secret in ["secret-code", "secret-state", "secret-confirmation"] {
        assert!(!log.contains(secret), "{secret} reached the log: {log}");
    }
}

#[tokio::test]
async fn successful_answers_are_logged_at_debug() {
    let app = Running::development(|command| {
        command.env("RUST_LOG", "info,loginwith=debug");
    })
    .await;
    let response = Browser::new(&app.url).get("/static/js/preloader.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    let line = app
        .wait_for_line("the 200", |line| {
            line.contains("route=/static/{*path} status=200")
        })
        .await;
    assert!(
        line.contains(" DEBUG ") && line.contains("method=GET"),
        "{line}"
    );
}

#[tokio::test]
async fn an_invalid_rust_log_warns_once_and_logging_goes_on_at_info() {
    for value in ["verbose", "loginwith=loud"] {
        let app = Running::development(|command| {
            command.env("RUST_LOG", value);
        })
        .await;
        // The pipe is read by a thread: wait for the line rather than race it.
        app.wait_for_line("the listening line", |l| l.contains("listening on"))
            .await;
        let log = app.stderr();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(" WARN ") && line.contains("RUST_LOG"))
            .collect();
        assert_eq!(warnings.len(), 1, "{value}: {log}");
        let expected = format!("RUST_LOG=\"{value}\" ignored: ");
        assert!(warnings[0].contains(&expected), "{}", warnings[0]);
        assert!(
            warnings[0].ends_with("; logging at info"),
            "{}",
            warnings[0]
        );
        assert!(
            log.lines()
                .any(|line| line.contains(" INFO ") && line.contains("listening on")),
            "{value}: {log}"
        );
        let response = Browser::new(&app.url).get("/nope").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        app.wait_for_line("the 404 at INFO", |line| {
            line.contains(" INFO ") && line.contains("status=404")
        })
        .await;
        assert!(!app.stderr().contains(" DEBUG "), "{value}: info, not more");
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let mut app = Running::development(|command| {
        command
            .env("LOGINWITH_LOG__FORMAT", "json")
            .env("RUST_LOG", "info,loginwith=debug");
    })
    .await;
    let browser = Browser::new(&app.url);
    let response = browser.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.wait_for_line("the 404", |line| line.contains("\"status\":404"))
        .await;
    let status = app.terminate();
    assert!(status.success(), "{status}");

    let log = app.stderr();
    assert!(!log.contains('\x1b'), "no ANSI codes: {log:?}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for line in &lines {
        for field in ["level", "target", "timestamp"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
        assert!(
            line["fields"]["message"].is_string(),
            "fields.message in {line}"
        );
    }
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["fields"]["message"].as_str())
        .collect();
    for expected in ["starting", "stopped"] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "{expected} in {messages:?}"
        );
    }
    let answered = lines
        .iter()
        .find(|line| line["fields"]["message"] == "answered" && line["fields"]["status"] == 404)
        .expect("the 404's line");
    assert_eq!(answered["level"], "INFO");
    assert_eq!(answered["target"], "loginwith::web::request_log");
    assert_eq!(answered["fields"]["route"], "unmatched");
    assert_eq!(answered["fields"]["status"], 404);
}
