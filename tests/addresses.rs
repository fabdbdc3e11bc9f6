//! The addresses the app believes: the client's (its own peer address, or behind a trusted
//! proxy the one that proxy forwards).

mod common;

use common::TestEnv;
use reqwest::{Method, StatusCode, redirect::Policy};

/// A client that follows no redirects and keeps no cookies: each request is a stranger.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn send(
    env: &TestEnv,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client().request(method, format!("{}{path}", env.app_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

// ---- The client's address -----------------------------------------------------------------

/// A sign-in start with `headers`: 303 while the client has tokens, 429 after.
async fn authorize(env: &TestEnv, headers: &[(&str, &str)]) -> StatusCode {
    send(env, Method::GET, "/authorize/facebook", headers)
        .await
        .status()
}

/// Two sign-in starts per client address, and none more for the rest of the test.
async fn limited_env(trusted_proxies: &[&str]) -> TestEnv {
    let trusted: Vec<String> = trusted_proxies.iter().map(|p| (*p).to_owned()).collect();
    TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 2))
            .merge(("server.trusted_proxies", trusted))
    })
    .await
}

const SEE_OTHER: StatusCode = StatusCode::SEE_OTHER;
const TOO_MANY: StatusCode = StatusCode::TOO_MANY_REQUESTS;

#[tokio::test]
async fn an_untrusted_peer_cannot_escape_its_bucket_with_forwarding_headers() {
    let env = limited_env(&[]).await;
    let mut statuses = Vec::new();
    for i in 1..=4 {
        // A fresh made-up address in every header, every time.
        let xff = format!("203.0.113.{i}");
        let forwarded = format!("for=198.51.100.{i}");
        let headers = [
            ("x-forwarded-for", xff.as_str()),
            ("forwarded", forwarded.as_str()),
        ];
        statuses.push(authorize(&env, &headers).await);
    }
    assert_eq!(statuses, [SEE_OTHER, SEE_OTHER, TOO_MANY, TOO_MANY]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let env = limited_env(&["127.0.0.1"]).await;
    let ada = [("x-forwarded-for", "203.0.113.1")];
    let grace = [("x-forwarded-for", "203.0.113.2")];
    assert_eq!(authorize(&env, &ada).await, SEE_OTHER);
    assert_eq!(authorize(&env, &ada).await, SEE_OTHER);
    assert_eq!(authorize(&env, &ada).await, TOO_MANY);
    // Another client behind the same proxy, and the proxy's own requests, are unaffected.
    assert_eq!(authorize(&env, &grace).await, SEE_OTHER);
    assert_eq!(authorize(&env, &[]).await, SEE_OTHER);
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_by_writing_left_of_the_proxy() {
    let env = limited_env(&["127.0.0.1"]).await;
    // The proxy appends the address it saw (203.0.113.1) to whatever the client sent.
    for i in 1..=2 {
        let xff = format!("198.51.100.{i}, 203.0.113.1");
        assert_eq!(
            authorize(&env, &[("x-forwarded-for", &xff)]).await,
            SEE_OTHER
        );
    }
    let fresh = [("x-forwarded-for", "198.51.100.3, 203.0.113.1")];
    assert_eq!(authorize(&env, &fresh).await, TOO_MANY);
    // Several headers are one list: the proxy's own header is the last one.
    let split = [
        ("x-forwarded-for", "198.51.100.4"),
        ("x-forwarded-for", "203.0.113.1"),
    ];
    assert_eq!(authorize(&env, &split).await, TOO_MANY);
}

#[tokio::test]
async fn a_chain_of_trusted_proxies_names_the_client_before_them() {
    let env = limited_env(&["127.0.0.1", "10.0.0.0/8"]).await;
    // Client -> load balancer (10.x) -> local proxy (127.0.0.1) -> app.
    let first = [("x-forwarded-for", "203.0.113.5, 10.0.0.7")];
    let other_balancer = [("x-forwarded-for", "198.51.100.9, 203.0.113.5, 10.1.1.1")];
    assert_eq!(authorize(&env, &first).await, SEE_OTHER);
    assert_eq!(authorize(&env, &other_balancer).await, SEE_OTHER);
    assert_eq!(authorize(&env, &first).await, TOO_MANY);
    let neighbour = [("x-forwarded-for", "203.0.113.6, 10.0.0.7")];
    assert_eq!(authorize(&env, &neighbour).await, SEE_OTHER);
}

#[tokio::test]
async fn forwarded_names_the_client_behind_a_trusted_proxy() {
    let env = limited_env(&["127.0.0.1"]).await;
    let v6 = [("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")];
    let v6_again = [(
        "forwarded",
        "for=192.0.2.1, For=\"[2001:db8::1]\";by=_proxy",
    )];
    assert_eq!(authorize(&env, &v6).await, SEE_OTHER);
    assert_eq!(authorize(&env, &v6_again).await, SEE_OTHER);
    assert_eq!(authorize(&env, &v6).await, TOO_MANY);
    let other = [("forwarded", "for=192.0.2.2")];
    assert_eq!(authorize(&env, &other).await, SEE_OTHER);
}

#[tokio::test]
async fn malformed_forwarding_headers_fall_back_to_the_peer() {
    let env = limited_env(&["127.0.0.1"]).await;
    let garbage: [&[(&str, &str)]; 6] = [
        &[("x-forwarded-for", "not an address")],
        &[("x-forwarded-for", "203.0.113.9, ")],
        &[("forwarded", "for=unknown")],
        &[("forwarded", "for=_hidden")],
        &[("forwarded", "for=\"[2001:db8::1")],
        // Two headers that disagree: one of them is the client's own.
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.9"),
        ],
    ];
    // All of them share the proxy's own bucket, whose two tokens the first two spend.
    let mut statuses = Vec::new();
    for headers in garbage {
        statuses.push(authorize(&env, headers).await);
    }
    assert_eq!(statuses[..2], [SEE_OTHER, SEE_OTHER]);
    assert!(statuses[2..].iter().all(|s| *s == TOO_MANY), "{statuses:?}");
    assert_eq!(authorize(&env, &[]).await, TOO_MANY);
    // A well-formed header still names its client.
    let client = [("x-forwarded-for", "203.0.113.9")];
    assert_eq!(authorize(&env, &client).await, SEE_OTHER);
}
