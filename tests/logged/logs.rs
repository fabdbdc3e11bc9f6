//! The tracing output of a whole sign-in, at TRACE level, holds no secret: not the client
//! secret, the access token, the appsecret_proof, the code, the state, the PKCE verifier nor
//! the session id.

use loginwith_testkit as common;

use common::{ADA, Capture, TestEnv, param, session_cookie};
use loginwith::auth::facebook::appsecret_proof;
use oauth2::ClientSecret;

#[tokio::test]
async fn a_whole_sign_in_logs_no_secret() {
    let capture = Capture::install_trace();

    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let state = param(dialog.as_str(), "state");
    let sealed = browser
        .cookie("loginwith_session_signin")
        .expect("the pre-sign-in cookie");
    let started = env.open_pre_sign_in(&sealed).await;
    let verifier = started["s"][0]["v"].as_str().unwrap().to_owned();
    let nonce = started["s"][0]["n"].as_str().unwrap().to_owned();
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let code = param(&callback, "code");
    browser.get(&callback).await;
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    let session_id = session_cookie(&response).unwrap();
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));

    let tokens = env.dev.issued_tokens();
    assert_eq!(tokens.len(), 1);
    let proof = appsecret_proof(&ClientSecret::new(common::CLIENT_SECRET.into()), &tokens[0]);
    capture.assert_holds_none(&[
        ("client secret", common::CLIENT_SECRET),
        ("access token", tokens[0].as_str()),
        ("appsecret_proof", proof.as_str()),
        ("code", code.as_str()),
        ("state", state.as_str()),
        ("PKCE verifier", verifier.as_str()),
        ("nonce", nonce.as_str()),
        ("sealed pre-sign-in cookie", sealed.as_str()),
        ("session id", session_id.as_str()),
    ]);
}
