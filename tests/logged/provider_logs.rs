//! A provider's error body reaches the log only as a short excerpt on one line, however large
//! it is, and a successful answer (which may hold a token) not at all.

use loginwith_testkit as common;

use std::sync::OnceLock;

use common::{ADA, Capture, TestEnv};
use loginwith::dev_provider::Fault;

/// Everything this binary logs (the subscriber is global: one capture for every test).
fn log() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(Capture::install_trace)
}

/// A sign-in against `fault` that ends as `error`; by then its failure is logged (the log
/// line comes before the operation is marked).
async fn failed_sign_in(fault: Fault) -> TestEnv {
    let env = TestEnv::start().await;
    env.set_fault(fault);
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error", "{fault:?}");
    env
}

#[tokio::test]
async fn provider_error_bodies_reach_the_log_truncated() {
    let capture = log();
    // `/me` answers 500 with a megabyte of one HTML sentence repeated on a single line.
    failed_sign_in(Fault::MeHugeHtmlError).await;

    let log = capture.text();
    let failures: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("sign-in exchange failed") && line.contains("HTTP 500"))
        .collect();
    assert_eq!(failures.len(), 1, "one line about the failed exchange");
    let line = failures[0];
    assert!(line.contains("provider_error"), "{line}");
    assert!(
        line.contains("Sorry, something went wrong"),
        "the gist is kept: {line}"
    );
    assert!(line.len() < 1_000, "{} bytes: {line}", line.len());
    // Nowhere in the log a run of the body longer than the excerpt.
    let run = "<p>Sorry, something went wrong.</p>".repeat(10);
    assert!(
        !log.contains(&run),
        "the log holds a long run of the body ({} bytes in all)",
        log.len()
    );
}

#[tokio::test]
async fn successful_provider_answers_never_reach_the_log() {
    let capture = log();
    // Each of these answers 200 with a real token in a body the client cannot use.
    for fault in [
        Fault::TokenNotJson,
        Fault::TokenHtmlContentType,
        Fault::TokenTypeMac,
    ] {
        let env = failed_sign_in(fault).await;
        let tokens = env.dev.issued_tokens();
        assert_eq!(tokens.len(), 1, "{fault:?} issued a token");
        assert!(
            !capture.text().contains(&tokens[0]),
            "{fault:?}: the log holds the token"
        );
    }
}
