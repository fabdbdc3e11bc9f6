//! The tracing output of a whole GitHub sign-in, at TRACE level, holds no secret: not the
//! client secret, the access token nor the code. Its own binary: the subscriber is global.

use loginwith_testkit as common;

use common::{
    Capture,
    github::{GITHUB_CLIENT_SECRET, GitHubEnv},
    location, param,
};

#[tokio::test]
async fn a_whole_github_sign_in_logs_no_secret() {
    let capture = Capture::install_trace();

    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    let dialog = location(&browser.get("/authorize/github").await).to_owned();
    let state = param(&dialog, "state");
    let callback = location(&browser.get(&dialog).await).to_owned();
    let code = param(&callback, "code");
    assert_eq!(location(&browser.get(&callback).await), "/preloader");
    assert_eq!(browser.wait_status().await, "ok");
    browser.get("/success").await;
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));

    let tokens = gh.github.issued_tokens();
    assert_eq!(tokens.len(), 1);
    capture.assert_holds_none(&[
        ("client secret", GITHUB_CLIENT_SECRET),
        ("access token", tokens[0].as_str()),
        ("code", code.as_str()),
        ("state", state.as_str()),
    ]);
}
