//! Several instances on one database (SQLite file or PostgreSQL): any instance serves any
//! request of a sign-in, the callback on one, the status on another, `/success` on a third,
//! and the person is signed in on all of them.

use loginwith_testkit as common;

use common::{ADA, Browser, TestEnv, db::TestDb};
use loginwith::config::Environment;
use reqwest::StatusCode;

async fn instance(db: &TestDb) -> TestEnv {
    TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        db.url.clone(),
        Environment::Development,
        Vec::new(),
        unlimited,
    )
    .await
}

/// Hundreds of sign-ins from one test address: no per-address limit, room for every exchange.
fn unlimited(figment: figment::Figment) -> figment::Figment {
    figment
        .merge(("limits.auth_per_minute", 100_000))
        .merge(("limits.auth_burst", 100_000))
        .merge(("limits.max_concurrent_exchanges", 1_000))
}

/// Whole sign-ins in parallel, alternating between the instances: `people(i)` says who the
/// `i`th one is. Returns the greeting pages.
async fn sign_in_in_parallel(
    instances: &[&TestEnv],
    count: usize,
    people: impl Fn(usize) -> (String, String),
) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let browser = instances[i % instances.len()].browser();
        let (first, email) = people(i);
        tasks.push(tokio::spawn(async move {
            let person = common::Person {
                first: &first,
                last: "Lovelace",
                email: &email,
            };
            browser.login(person).await
        }));
    }
    let mut pages = Vec::new();
    for task in tasks {
        pages.push(task.await.expect("a sign-in task"));
    }
    pages
}

#[tokio::test]
async fn a_sign_in_crosses_three_instances_on_one_database() {
    for db in TestDb::all().await {
        let (a, b, c) = (
            instance(&db).await,
            instance(&db).await,
            instance(&db).await,
        );
        // Cookies are per host, not per port: the one session cookie reaches all three.
        let on_a = a.browser();
        let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
        let on_c = Browser::with_client(&c.app_url, on_a.client.clone());

        on_a.login_until_preloader(ADA).await;
        let (status, body) = on_b.text("/get-status?wait=20").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ok"),
            "{}",
            db.backend
        );
        let response = on_c.get("/success").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", db.backend);
        for (name, browser) in [("a", &on_a), ("b", &on_b), ("c", &on_c)] {
            let (_, home) = browser.text("/").await;
            assert!(home.contains("Hi, Ada!"), "{}: instance {name}", db.backend);
        }
        let inspect = db.inspect().await;
        assert_eq!(inspect.count("user_profile").await, 1, "{}", db.backend);

        // Signed out on one, signed out everywhere.
        let token = on_b.csrf_token().await;
        let response = on_b.post_form("/logout", &[("csrf_token", &token)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", db.backend);
        for (name, browser) in [("a", &on_a), ("c", &on_c)] {
            let (_, home) = browser.text("/").await;
            assert!(
                !home.contains("Hi, Ada!"),
                "{}: instance {name}",
                db.backend
            );
        }
    }
}

/// The long poll on one instance answers when the exchange commits on another. On PostgreSQL
/// that is the commit's `NOTIFY` (the periodic re-read is turned off here, so nothing else
/// could answer); on SQLite there is no such announcement and only the re-read would.
#[tokio::test]
async fn a_long_poll_is_woken_by_an_exchange_on_another_instance() {
    for db in TestDb::all().await {
        let a = instance(&db).await;
        let b = TestEnv::start_on(
            tempfile::tempdir().expect("temp dir"),
            db.url.clone(),
            Environment::Development,
            Vec::new(),
            |f| f.merge(("login.status_recheck_ms", 3_600_000)),
        )
        .await;
        // Long enough that the poll on B is waiting before the exchange on A ends; on SQLite
        // longer than the whole wait (at its end the poll reads the database once more).
        let latency = if db.backend == "postgres" { 300 } else { 1500 };
        a.set_latency(std::time::Duration::from_millis(latency));
        // First as a new person, then (on PostgreSQL) as a returning one: their sign-in is
        // written by another statement there (one `WITH … UPDATE`), which must announce it
        // too.
        let rounds: &[&str] = match db.backend {
            "postgres" => &["first sign-in", "returning person"],
            _ => &["first sign-in"],
        };
        for round in rounds {
            let on_a = a.browser();
            let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
            on_a.login_until_preloader(ADA).await;
            match db.backend {
                "postgres" => {
                    // Woken, not answered by the last read at the end of its 30 s (the
                    // exchange takes 0.6 s; without the announcement this poll would answer
                    // at 30 s).
                    let started = std::time::Instant::now();
                    let (_, body) = on_b.text("/get-status?wait=30").await;
                    assert_eq!(body, "ok", "{round}");
                    assert!(
                        started.elapsed() < std::time::Duration::from_secs(20),
                        "{round}: woken by the commit's announcement, not at the end of the wait: {:?}",
                        started.elapsed()
                    );
                }
                _ => {
                    let (_, body) = on_b.text("/get-status?wait=1").await;
                    assert_eq!(
                        body, "pending",
                        "{round}: SQLite has no announcements to wake it"
                    );
                }
            }
        }
    }
}

/// Instances starting together on a new database each run the migrations: one applies them
/// (PostgreSQL's migrator holds an advisory lock meanwhile), the others find them applied.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    for db in TestDb::all().await {
        let (a, b, c) = tokio::join!(
            loginwith::store::Store::connect(&db.url),
            loginwith::store::Store::connect(&db.url),
            loginwith::store::Store::connect(&db.url),
        );
        for store in [a, b, c] {
            let store = store.unwrap_or_else(|e| panic!("{}: {e}", db.backend));
            assert!(store.migrations_applied().await.unwrap(), "{}", db.backend);
            store.close().await;
        }
    }
}

/// 50 first sign-ins of one person at once, spread over two instances: one person, one
/// identity. 200 sign-ins of different people: 200 people.
#[tokio::test]
async fn parallel_first_sign_ins_over_two_instances_make_the_right_people() {
    for db in TestDb::all().await {
        let (a, b) = (instance(&db).await, instance(&db).await);
        let pages = sign_in_in_parallel(&[&a, &b], 50, |_| {
            ("Ada".to_owned(), "ada@example.com".to_owned())
        })
        .await;
        assert!(
            pages.iter().all(|p| p.contains("Hi, Ada!")),
            "{}",
            db.backend
        );
        let inspect = db.inspect().await;
        assert_eq!(inspect.count("user_profile").await, 1, "{}", db.backend);
        assert_eq!(inspect.count("user_identity").await, 1, "{}", db.backend);

        let pages = sign_in_in_parallel(&[&a, &b], 200, |i| {
            (format!("P{i}"), format!("person{i}@example.com"))
        })
        .await;
        for (i, page) in pages.iter().enumerate() {
            assert!(page.contains(&format!("Hi, P{i}!")), "{}: {i}", db.backend);
        }
        assert_eq!(inspect.count("user_profile").await, 201, "{}", db.backend);
        assert_eq!(inspect.count("user_identity").await, 201, "{}", db.backend);
    }
}

/// Shutdown of one instance while 20 exchanges run on it: all 20 finish `ok` within the
/// grace period, and the other instance goes on serving.
#[tokio::test]
async fn an_instance_shut_down_mid_exchange_finishes_all_of_them() {
    for db in TestDb::all().await {
        let (mut a, b) = (instance(&db).await, instance(&db).await);
        a.set_latency(std::time::Duration::from_millis(500));
        let mut browsers = Vec::new();
        for i in 0..20 {
            let browser = a.browser();
            let email = format!("p{i}@example.com");
            browser
                .login_until_preloader(common::Person {
                    first: "P",
                    last: "Q",
                    email: &email,
                })
                .await;
            browsers.push(browser);
        }
        a.begin_shutdown();
        a.stopped().await.expect("a clean stop");
        let inspect = db.inspect().await;
        let ok = inspect
            .number("SELECT COUNT(*) FROM async_operation WHERE async_operation_status_id = (SELECT id FROM async_operation_status WHERE code = 'ok')")
            .await;
        assert_eq!(ok, 20, "{}: every running exchange finished", db.backend);
        // The preloaders carry on at the other instance.
        for browser in &browsers {
            let elsewhere = Browser::with_client(&b.app_url, browser.client.clone());
            assert_eq!(
                elsewhere.text("/get-status").await.1,
                "ok",
                "{}",
                db.backend
            );
        }
    }
}

/// An instance killed outright (`kill -9`) in the middle of an exchange: the sign-in it left
/// `pending` reads as failed (`timeout`) on another instance once the exchange's time limit has
/// passed, and the preloader there says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_left_by_a_killed_instance_fails_on_another_after_the_timeout() {
    for db in TestDb::all().await {
        let mut a = common::binary::Running::development(|command| {
            command
                .env("LOGINWITH_DATABASE__URL", &db.url)
                .env("LOGINWITH_LOGIN__EXCHANGE_TIMEOUT_SECS", "1")
                // The exchange never ends by itself.
                .env("LOGINWITH_DEV_PROVIDER__LATENCY_MS", "600000");
        })
        .await;
        let on_a = Browser::new(&a.url);
        on_a.login_until_preloader(ADA).await;
        a.kill();

        let b = TestEnv::start_on(
            tempfile::tempdir().expect("temp dir"),
            db.url.clone(),
            Environment::Development,
            Vec::new(),
            |f| f.merge(("login.exchange_timeout_secs", 1)),
        )
        .await;
        let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
        assert_eq!(on_b.wait_status().await, "error", "{}", db.backend);
        let (_, reason) = b.last_operation().await;
        assert_eq!(reason.as_deref(), Some("timeout"), "{}", db.backend);
    }
}

/// The pre-sign-in cookie is sealed with keys every instance shares through the database: a
/// sign-in started on one instance finishes on another, also across `loginwith rotate-key`
/// (an instance that does not know the new key yet reads the keys again when a cookie names
/// it), and its callback, replayed with a copy of the cookie, is refused on every instance by
/// the operation's unique state digest.
#[tokio::test]
async fn sealed_sign_ins_cross_instances_and_key_rotations_and_replays_are_refused_on_all() {
    for db in TestDb::all().await {
        let (a, b) = (instance(&db).await, instance(&db).await);
        let on_a = a.browser();
        let dialog = on_a.start_login().await;
        let started = on_a.cookie("loginwith_session_signin").unwrap();
        // Rotated after the sign-in began: the old key still opens.
        let rotated = loginwith::rotate_sealing_key(&a.config).await.unwrap();
        assert!(rotated.starts_with("sealing key "), "{rotated}");
        // (The callback goes to the instance whose development provider issued the code.)
        let callback = on_a.consent(&dialog, ADA, "allow").await;
        let on_b = Browser::with_client(&b.app_url, on_a.client.clone());
        let response = on_a.get(&callback).await;
        assert_eq!(common::location(&response), "/preloader", "{}", db.backend);
        let operations = a.count("async_operation").await;
        // The callback again, with the copy of the cookie taken before it: on either
        // instance, refused, and nothing recorded.
        for env in [&a, &b] {
            let replay = common::cookieless_client()
                .get(format!(
                    "{}{}",
                    env.app_url,
                    callback.trim_start_matches(&a.app_url)
                ))
                .header("cookie", format!("loginwith_session_signin={started}"))
                .send()
                .await
                .unwrap();
            assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "{}", db.backend);
        }
        assert_eq!(a.count("async_operation").await, operations);
        assert_eq!(on_b.wait_status().await, "ok");
        assert_eq!(common::location(&on_b.get("/success").await), "/");
        assert!(on_a.text("/").await.1.contains("Hi, Ada!"));

        // A third instance, started after the rotation, seals with the new key; the first
        // two learn it from the first cookie that names it.
        let c = instance(&db).await;
        let on_c = c.browser();
        on_c.login_until_preloader(ADA).await;
        let on_a = Browser::with_client(&a.app_url, on_c.client.clone());
        assert_eq!(on_a.wait_status().await, "ok", "{}", db.backend);
        let on_b = Browser::with_client(&b.app_url, on_c.client.clone());
        assert_eq!(common::location(&on_b.get("/success").await), "/");
        assert!(on_c.text("/").await.1.contains("Hi, Ada!"));
    }
}
