//! The addresses the app believes: the client's (its own peer address, or behind a trusted
//! proxy the one that proxy forwards) and the host's (pages people open are served on
//! `server.public_url`'s host only; machine endpoints on any).

use loginwith_testkit as common;

use common::{ADA, TestEnv, raw_exchange};
use reqwest::{Method, StatusCode, header::HeaderValue, redirect::Policy};

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
async fn forwarded_is_not_read_behind_a_trusted_proxy() {
    // The proxies people put in front set X-Forwarded-For and pass a client's own `Forwarded`
    // on untouched, so whatever it names, these are requests of the proxy's own address.
    let env = limited_env(&["127.0.0.1"]).await;
    let mut statuses = Vec::new();
    for forwarded in [
        "for=192.0.2.1",
        "for=\"[2001:db8::1]:4711\"",
        "for=192.0.2.2",
    ] {
        statuses.push(authorize(&env, &[("forwarded", forwarded)]).await);
    }
    assert_eq!(statuses, [SEE_OTHER, SEE_OTHER, TOO_MANY]);
    assert_eq!(authorize(&env, &[]).await, TOO_MANY);
    // Beside X-Forwarded-For it changes nothing either: that client has its own bucket.
    let both = [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=192.0.2.9"),
    ];
    assert_eq!(authorize(&env, &both).await, SEE_OTHER);
}

#[tokio::test]
async fn malformed_forwarding_headers_fall_back_to_the_peer() {
    let env = limited_env(&["127.0.0.1"]).await;
    // Nothing the proxy appended can be read: it vouches for no one but itself.
    let garbage: [&[(&str, &str)]; 5] = [
        &[("x-forwarded-for", "not an address")],
        &[("x-forwarded-for", "203.0.113.9, ")],
        &[("x-forwarded-for", "unknown")],
        &[("x-forwarded-for", "_hidden")],
        &[("x-forwarded-for", "[2001:db8::1")],
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

/// A sign-in start with header values that need not be text: HTTP allows bytes past ASCII in a
/// value, and nginx passes on what a client sent.
async fn authorize_bytes(env: &TestEnv, headers: &[(&str, &[u8])]) -> StatusCode {
    let mut request = client().get(format!("{}/authorize/facebook", env.app_url));
    for (name, value) in headers {
        let value = HeaderValue::from_bytes(value).expect("a valid header value");
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status()
}

/// Behind nginx, which sets `X-Forwarded-For: $proxy_add_x_forwarded_for` (what the client
/// sent, then the address nginx saw) and passes any `Forwarded` on untouched, a client writes
/// whatever it likes except the last entry. Nothing it adds may move it out of its bucket:
/// not a made-up `Forwarded`, nor entries of its own in front, nor bytes that are not text.
#[tokio::test]
async fn a_limited_client_stays_limited_whatever_forwarding_headers_it_adds() {
    let attempts: [&[(&str, &[u8])]; 9] = [
        // A Forwarded header of its own, naming someone else or nothing readable.
        &[
            ("x-forwarded-for", b"203.0.113.1"),
            ("forwarded", b"for=198.51.100.1"),
        ],
        &[
            ("x-forwarded-for", b"203.0.113.1"),
            ("forwarded", b"for=unknown"),
        ],
        &[
            ("x-forwarded-for", b"203.0.113.1"),
            ("forwarded", b"garbage"),
        ],
        // Entries of its own in front of nginx's.
        &[("x-forwarded-for", b"198.51.100.2, 203.0.113.1")],
        &[("x-forwarded-for", b"not an address, 203.0.113.1")],
        &[("x-forwarded-for", b"unknown, , 203.0.113.1")],
        // Bytes that are not text in front of nginx's entry: one value...
        &[("x-forwarded-for", b"\xff\xfe, 203.0.113.1")],
        &[("x-forwarded-for", b"198.51.100.3\xff, 203.0.113.1")],
        // ... or a header of its own before the one a proxy adds.
        &[
            ("x-forwarded-for", b"\xff"),
            ("x-forwarded-for", b"203.0.113.1"),
        ],
    ];
    // A burst larger than the attempts: were they all to land in one other bucket (such as
    // the proxy's), each would still be seen escaping.
    let burst = attempts.len() + 1;
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", burst))
            .merge(("server.trusted_proxies", ["127.0.0.1"]))
    })
    .await;
    let own: &[(&str, &[u8])] = &[("x-forwarded-for", b"203.0.113.1")];
    for _ in 0..burst {
        assert_eq!(authorize_bytes(&env, own).await, SEE_OTHER);
    }
    assert_eq!(authorize_bytes(&env, own).await, TOO_MANY);
    let mut escaped = Vec::new();
    for headers in attempts {
        let status = authorize_bytes(&env, headers).await;
        if status != TOO_MANY {
            let shown: Vec<_> = headers
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.escape_ascii()))
                .collect();
            escaped.push(format!("{status} for {shown:?}"));
        }
    }
    assert!(
        escaped.is_empty(),
        "escaped its bucket:\n{}",
        escaped.join("\n")
    );
    // Nor did any of them spend the tokens of the proxy's own address, which every client
    // would share.
    assert_eq!(authorize(&env, &[]).await, SEE_OTHER);
}

// ---- One origin ---------------------------------------------------------------------------

/// `localhost` on the app's port: what a person types while the public URL says 127.0.0.1.
fn foreign_host(env: &TestEnv) -> String {
    env.app_url
        .replace("127.0.0.1", "localhost")
        .replace("http://", "")
}

#[tokio::test]
async fn pages_opened_on_another_host_are_sent_to_the_public_url() {
    let env = TestEnv::start().await;
    let localhost = foreign_host(&env);
    let other_port = "127.0.0.1:1".to_owned();
    for (method, path, host) in [
        (Method::GET, "/", &localhost),
        (Method::HEAD, "/", &localhost),
        (Method::GET, "/", &other_port),
        (Method::GET, "/authorize/facebook?x=1", &localhost),
        (Method::GET, "/account/delete", &localhost),
        (Method::GET, "/preloader", &localhost),
        (Method::GET, "/success", &localhost),
        (Method::GET, "/error?a=%2F%2Fevil.example", &localhost),
    ] {
        let response = send(&env, method.clone(), path, &[("host", host)]).await;
        let what = format!("{method} {path} on {host}");
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{what}");
        assert_eq!(
            response.headers()["location"],
            format!("{}{path}", env.app_url).as_str(),
            "{what}"
        );
        assert!(!response.headers().contains_key("set-cookie"), "{what}");
        // Not remembered by the browser: changing public_url later must not strand anyone.
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{what}");
    }
    assert_eq!(env.count("session").await, 0, "no session was made");
    assert_eq!(env.snapshot().await, [0, 0, 0], "nothing was written");
}

#[tokio::test]
async fn machine_endpoints_answer_on_any_host() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let localhost = foreign_host(&env);
    let host = [("host", localhost.as_str())];
    for (path, status) in [
        ("/get-status", StatusCode::NOT_FOUND),
        ("/static/css/app.css", StatusCode::OK),
        ("/callback/facebook?state=x&code=y", StatusCode::BAD_REQUEST),
        (
            "/deletion/0123456789abcdef0123456789abcdef",
            StatusCode::NOT_FOUND,
        ),
        ("/no-such-page", StatusCode::NOT_FOUND),
    ] {
        let response = send(&env, Method::GET, path, &host).await;
        assert_eq!(response.status(), status, "{path}");
    }
    // Facebook's Deauthorize callback, on whatever host its request names.
    let ada = env.dev.user_id_for_email(ADA.email);
    let response = client()
        .post(format!("{}/facebook/deauthorize", env.app_url))
        .header("host", &localhost)
        .form(&[("signed_request", env.dev.signed_request(&ada))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        env.count("user_identity").await,
        0,
        "the identity is unlinked"
    );
    // A form post is not a page being opened: it is answered where it came (here without
    // a session, so home), not redirected.
    let logout = send(&env, Method::POST, "/logout", &host).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(logout.headers()["location"], "/");
}

#[tokio::test]
async fn pages_are_served_on_the_public_host_and_to_requests_without_a_host() {
    let env = TestEnv::start().await;
    let public = env.app_url.replace("http://", "");
    let response = send(&env, Method::GET, "/", &[("host", &public)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // HTTP/1.0 needs no Host: nothing to compare, so the page is served.
    let answer = raw_exchange(&env.app_url, b"GET / HTTP/1.0\r\n\r\n".to_vec()).await;
    assert_eq!(answer.status, Some(200), "{}", answer.body);
}

#[tokio::test]
async fn behind_a_proxy_that_forwards_the_host_pages_are_served() {
    // As behind `proxy_set_header Host $host`: the public URL is the proxy's, and the
    // request reaches the app on its own address, naming the public host.
    let env = TestEnv::start_with(|f| {
        f.merge(("server.public_url", "https://login.example.com"))
            .merge(("server.trusted_proxies", ["127.0.0.1"]))
    })
    .await;
    for host in ["login.example.com", "LOGIN.example.com:443"] {
        let response = send(
            &env,
            Method::GET,
            "/",
            &[("host", host), ("x-forwarded-for", "203.0.113.1")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    // A proxy that does not forward the host sends its upstream's, which is not public.
    let response = send(&env, Method::GET, "/?a=b", &[]).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://login.example.com/?a=b"
    );
}
