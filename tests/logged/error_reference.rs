//! A failure of our own (the database) is one ERROR line with its whole cause and a reference,
//! and a 500 page that shows the same reference, so support can find the line from what the
//! person quotes. The answer's request-log line is INFO, not a second error.

use loginwith_testkit as common;

use common::{Capture, TestEnv};
use reqwest::StatusCode;

#[tokio::test]
async fn a_500_page_shows_the_reference_its_one_error_line_carries_with_the_cause() {
    let capture = Capture::install_trace();
    let env = TestEnv::start().await;
    let browser = env.browser();
    // A session to read, then no table to read it from.
    browser.login(common::ADA).await;
    sqlx::query("ALTER TABLE session RENAME TO session_elsewhere")
        .execute(&env.db)
        .await
        .unwrap();

    let (status, page) = browser.text("/").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let marker = "tell us reference ";
    let start = page.find(marker).expect("a reference on the page") + marker.len();
    let reference = &page[start..start + 9];
    assert!(
        reference.len() == 9
            && reference.as_bytes()[4] == b'-'
            && reference
                .chars()
                .filter(|c| *c != '-')
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
        "{reference:?}"
    );

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {errors:#?}");
    let line = errors[0];
    assert!(line.contains(&format!("reference={reference}")), "{line}");
    // The cause, down to the database's own words (SQLite or PostgreSQL).
    assert!(
        line.contains("no such table: session")
            || line.contains("relation \"session\" does not exist"),
        "{line}"
    );
    let answered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("answered") && l.contains("status=500"))
        .collect();
    assert_eq!(answered.len(), 1, "{answered:#?}");
    assert!(answered[0].contains(" INFO "), "{}", answered[0]);

    // Another failure gets another reference.
    let (_, again) = browser.text("/").await;
    assert!(again.contains(marker));
    assert!(!again.contains(reference), "a fresh reference each time");
}
