//! Property test: arbitrary query strings at `/callback/facebook` and `/get-status` never
//! cause a 5xx or a panic, and never write a row.

use loginwith_testkit as common;

use common::TestEnv;
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestRunner},
};

/// Pieces that make hostile queries: our real parameter names, separators, broken and
/// non-UTF-8 percent escapes, and random text.
fn query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("state".to_owned()),
        Just("code".to_owned()),
        Just("error".to_owned()),
        Just("iss".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just("%".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%00".to_owned()),
        Just("%zz".to_owned()),
        Just("%C0%AF".to_owned()),
        Just("+".to_owned()),
        "[a-zA-Z0-9._~;,:@/!$'()*-]{0,24}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

#[test]
fn arbitrary_queries_never_fail_the_server_or_write() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = runtime.block_on(TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1_000_000))
            .merge(("limits.auth_burst", 1_000_000))
    }));
    let browser = env.browser();
    // A sign-in in progress, so the state check really runs against something.
    runtime.block_on(browser.start_login());

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&query(), |query| {
            runtime.block_on(async {
                for path in ["/callback/facebook", "/get-status"] {
                    let response = browser
                        .client
                        .get(format!("{}{path}?{query}", env.app_url))
                        .send()
                        .await
                        .expect("the server answers");
                    let status = response.status();
                    prop_assert!(!status.is_server_error(), "{path}?{query} -> {status}");
                    let body = response.text().await.expect("a body");
                    prop_assert!(!body.contains("panicked"));
                }
                prop_assert_eq!(env.snapshot().await, [0, 0, 0], "wrote for {}", query);
                Ok(())
            })
        })
        .unwrap();
}
