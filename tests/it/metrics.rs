//! Prometheus metrics on their own listener (`metrics.bind`), read the way a scraper reads
//! them. The recorder is one per process and the tests of this file run side by side, so
//! every assertion is on a count that went up (never on an absolute value), or on a gauge
//! while this test holds it up.

use loginwith_testkit as common;

use std::time::Duration;

use common::{ADA, TestEnv, eventually, location};
use figment::Figment;
use loginwith::config::{Config, Environment};
use reqwest::{StatusCode, header::SET_COOKIE};

/// `GET /metrics` on the metrics listener: the page, after checking how it is served.
async fn scrape(env: &TestEnv) -> String {
    let url = env.metrics_url.as_ref().expect("metrics are on");
    let response = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(SET_COOKIE).is_none());
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("the page")
}

/// The sum of the samples named `name` whose labels include every one of `labels` (0 when
/// there is none).
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, sample) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| sample.parse::<f64>().ok()).flatten()
        })
        .sum()
}

fn described(page: &str, name: &str, kind: &str) -> bool {
    page.contains(&format!("# TYPE {name} {kind}")) && page.contains(&format!("# HELP {name} "))
}

#[tokio::test]
async fn a_whole_sign_in_is_counted_on_the_metrics_listener() {
    let env = TestEnv::start().await;
    let facebook = [("provider", "facebook")];
    let ok = [("provider", "facebook"), ("outcome", "ok")];
    let callback = [("route", "/callback/{provider}"), ("status", "3xx")];
    let before = scrape(&env).await;

    let home = env.browser().login(ADA).await;
    assert!(home.contains("Hi, Ada!"), "{home}");

    let after = scrape(&env).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) >= value(&before, name, labels) + 1.0
    };
    assert!(
        grew("loginwith_sign_ins_started_total", &facebook),
        "{after}"
    );
    assert!(grew("loginwith_sign_ins_finished_total", &ok), "{after}");
    assert!(
        grew("loginwith_exchange_duration_seconds_count", &facebook),
        "{after}"
    );
    assert!(
        value(
            &after,
            "loginwith_exchange_duration_seconds_bucket",
            &facebook
        ) > 0.0,
        "a histogram with buckets: {after}"
    );
    assert!(grew("loginwith_http_requests_total", &callback), "{after}");
    assert!(
        grew("loginwith_http_request_duration_seconds_count", &callback),
        "{after}"
    );
    // Route templates only: no raw path with a provider's name or a query in it.
    assert!(!after.contains("route=\"/callback/facebook"), "{after}");
    // The pool: it has served this sign-in, so at least one connection is open.
    assert!(
        value(&after, "loginwith_db_pool_connections_in_use", &[])
            + value(&after, "loginwith_db_pool_connections_idle", &[])
            >= 1.0,
        "{after}"
    );
    // A sign-in is a dozen statements or more (sessions, the operation, the person).
    assert!(
        value(&after, "loginwith_db_statements_total", &[])
            >= value(&before, "loginwith_db_statements_total", &[]) + 10.0,
        "{after}"
    );
    // SQLite: the room left beside the database file, and whether that is below
    // `database.min_free_mb` (these test machines have far more than 64 MiB).
    if env.config.database.url.starts_with("sqlite:") {
        assert!(
            value(&after, "loginwith_database_free_bytes", &[]) > 64.0 * 1024.0 * 1024.0,
            "{after}"
        );
        assert_eq!(
            value(&after, "loginwith_database_free_space_low", &[]),
            0.0,
            "{after}"
        );
        assert!(described(&after, "loginwith_database_free_bytes", "gauge"));
    }
    for (name, kind) in [
        ("loginwith_db_statements_total", "counter"),
        ("loginwith_sign_ins_started_total", "counter"),
        ("loginwith_sign_ins_finished_total", "counter"),
        ("loginwith_exchange_duration_seconds", "histogram"),
        ("loginwith_exchanges_in_flight", "gauge"),
        ("loginwith_long_poll_waiters", "gauge"),
        ("loginwith_http_requests_total", "counter"),
        ("loginwith_http_request_duration_seconds", "histogram"),
        ("loginwith_db_pool_connections_in_use", "gauge"),
        ("loginwith_db_pool_connections_idle", "gauge"),
    ] {
        assert!(described(&after, name, kind), "{name} {kind}: {after}");
    }
}

#[tokio::test]
async fn failures_are_counted_by_reason_cancellations_and_refusals_apart() {
    let env = TestEnv::start().await;
    let before = scrape(&env).await;

    // The provider refuses the code: the exchange fails as `denied`.
    env.set_fault(loginwith::dev_provider::Fault::TokenInvalidGrant);
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error");

    // The person cancels at the provider: no exchange at all.
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let back = browser.consent(&dialog, ADA, "cancel").await;
    let response = browser.get(&back).await;
    assert_eq!(location(&response), "/error");

    // A callback with its state but without a code: refused once the state is taken.
    env.set_fault(loginwith::dev_provider::Fault::None);
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let back = browser.consent(&dialog, ADA, "allow").await;
    let mut without_code = url::Url::parse(&back).expect("callback URL");
    let kept: Vec<(String, String)> = without_code
        .query_pairs()
        .into_owned()
        .filter(|(name, _)| name != "code")
        .collect();
    without_code.query_pairs_mut().clear().extend_pairs(kept);
    let response = browser.get(without_code.as_str()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let after = scrape(&env).await;
    for outcome in ["denied", "cancelled", "refused"] {
        let labels = [("provider", "facebook"), ("outcome", outcome)];
        assert!(
            value(&after, "loginwith_sign_ins_finished_total", &labels)
                >= value(&before, "loginwith_sign_ins_finished_total", &labels) + 1.0,
            "{outcome}: {after}"
        );
    }
}

#[tokio::test]
async fn exchanges_and_long_polls_in_flight_are_gauged() {
    let env = TestEnv::start().await;
    // Slow enough to be seen running; the exchange limit (3 s in tests) covers two calls.
    env.set_latency(Duration::from_millis(700));
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    let polling = browser.clone();
    let poll = tokio::spawn(async move { polling.text("/get-status?wait=10").await });
    eventually("an exchange and a long poll in flight", || async {
        let page = scrape(&env).await;
        value(&page, "loginwith_exchanges_in_flight", &[]) >= 1.0
            && value(&page, "loginwith_long_poll_waiters", &[]) >= 1.0
    })
    .await;
    let (status, body) = poll.await.expect("the long poll");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn rate_limit_refusals_are_counted_by_limiter() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 1))
    })
    .await;
    let auth = [("limiter", "auth")];
    let before = value(&scrape(&env).await, "loginwith_rate_limited_total", &auth);
    let browser = env.browser();
    let statuses = [
        browser.get("/authorize/facebook").await.status(),
        browser.get("/authorize/facebook").await.status(),
    ];
    assert_eq!(statuses[1], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let after = scrape(&env).await;
    assert!(
        value(&after, "loginwith_rate_limited_total", &auth) >= before + 1.0,
        "{after}"
    );
    assert!(
        described(&after, "loginwith_rate_limited_total", "counter"),
        "{after}"
    );
    // The metrics listener has no rate limit of its own, whatever the site's.
    for _ in 0..30 {
        scrape(&env).await;
    }
}

#[tokio::test]
async fn the_site_does_not_serve_metrics() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let response = browser.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // And the metrics listener serves nothing else.
    let url = env.metrics_url.as_ref().expect("metrics are on");
    let other = reqwest::get(format!("{url}/")).await.expect("answered");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert!(other.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn an_empty_bind_turns_metrics_off() {
    // Two of them: with no listener, nothing can be in use twice.
    let first = TestEnv::start_with(|f| f.merge(("metrics.bind", ""))).await;
    let second = TestEnv::start_with(|f| f.merge(("metrics.bind", ""))).await;
    for env in [&first, &second] {
        assert_eq!(env.metrics_url, None);
        assert_eq!(
            env.browser().get("/metrics").await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn the_metrics_listener_stops_with_the_app() {
    let mut env = TestEnv::start().await;
    let url = env.metrics_url.clone().expect("metrics are on");
    scrape(&env).await;
    env.begin_shutdown();
    env.stopped().await.expect("a clean stop");
    eventually("the metrics listener to close", || {
        let url = url.clone();
        async move { reqwest::get(format!("{url}/metrics")).await.is_err() }
    })
    .await;
}

fn config_with(bind: &str) -> Result<Config, String> {
    let figment: Figment = Config::defaults_figment().merge(("metrics.bind", bind));
    Config::from_figment(figment, Environment::Development).map_err(|e| e.to_string())
}

#[test]
fn the_free_space_margin_is_a_mebibyte_count() {
    let with = |mb: u64| {
        Config::from_figment(
            Config::defaults_figment().merge(("database.min_free_mb", mb)),
            Environment::Development,
        )
        .map_err(|e| e.to_string())
    };
    let shipped = Config::from_figment(Config::defaults_figment(), Environment::Development)
        .expect("the defaults are valid");
    assert_eq!(shipped.database.min_free_mb, 64);
    assert_eq!(
        with(0)
            .expect("0 turns the warning off")
            .database
            .min_free_mb,
        0
    );
    let error = with(u64::MAX / 1024).expect_err("bytes would overflow");
    assert!(error.contains("database.min_free_mb"), "{error}");
}

#[test]
fn metrics_bind_is_a_socket_address_or_empty() {
    let defaults = config_with("127.0.0.1:9464").expect("valid");
    assert_eq!(
        defaults.metrics.bind_addr(),
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(config_with("").expect("valid").metrics.bind_addr(), None);
    assert!(config_with("[::1]:9464").is_ok());
    for wrong in [
        "9464",
        "localhost:9464",
        "127.0.0.1",
        "http://127.0.0.1:9464",
    ] {
        let error = config_with(wrong).expect_err(wrong);
        assert!(error.contains("metrics.bind"), "{wrong}: {error}");
    }
    let shipped = Config::from_figment(Config::defaults_figment(), Environment::Development)
        .expect("the defaults are valid");
    assert_eq!(shipped.metrics.bind, "127.0.0.1:9464");
}

/// A second instance on one machine (a second checkout, `cargo test` beside `cargo run`)
/// finds the metrics port taken: in development it serves without `/metrics` and says so;
/// in production it refuses to start, naming the key.
#[tokio::test]
async fn a_taken_metrics_port_is_a_warning_in_development_and_a_refusal_in_production() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let env = TestEnv::start_with(|f| f.merge(("metrics.bind", &addr))).await;
    assert!(env.metrics_url.is_none(), "no metrics listener");
    assert_eq!(env.browser().get("/healthz").await.status(), StatusCode::OK);
    env.browser().login(ADA).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let figment = common::behind_tls(Config::defaults_figment())
        .merge(("dev_provider.enabled", false))
        .merge(("providers.facebook.client_id", "123456789012345"))
        .merge(("providers.facebook.client_secret", common::CLIENT_SECRET))
        .merge(("metrics.bind", &addr))
        .merge((
            "database.url",
            format!("sqlite://{}", dir.path().join("prod.db").display()),
        ));
    let config = Config::from_figment(figment, Environment::Production).expect("valid");
    let refused = loginwith::App::build(&config, "127.0.0.1:9".parse().expect("an address"))
        .await
        .err()
        .expect("production refuses a taken metrics port");
    assert!(refused.to_string().contains("metrics.bind"), "{refused}");
    // Nothing was written before it refused: not even the database file.
    assert!(!dir.path().join("prod.db").exists());
}
