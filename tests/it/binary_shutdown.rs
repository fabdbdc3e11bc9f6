//! SIGTERM on the real binary: sign-ins whose code exchange is running are waited for (up to
//! `server.shutdown_grace_secs`), one cut off by that limit is recorded as failed, and the
//! process exits 0 either way.

use loginwith_testkit as common;

use std::{path::Path, process::ExitStatus, time::Duration, time::Instant};

use common::{
    ADA, Browser, CLIENT_ID, CLIENT_SECRET,
    binary::{self, Running},
    dev_provider_settings,
};
use loginwith::dev_provider::{DevProvider, Fault, Faults};
use sqlx::{SqlitePool, sqlite::SqliteConnectOptions};

/// A Facebook stand-in on a port of its own whose token and `/me` endpoints each take
/// `latency`. Its own port: the built-in development provider is served by the process being
/// stopped, whose closed listener would refuse the exchange's second call.
async fn slow_stand_in(app_url: &str, latency: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dev = DevProvider::new(
        dev_provider_settings(app_url),
        Faults {
            latency,
            fault: Fault::None,
        },
    );
    let router = dev.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// `(status, error)` of the newest operation in the binary's database file, read once it
/// has exited.
async fn last_operation(dir: &Path) -> (String, Option<String>) {
    let db = SqlitePool::connect_with(
        SqliteConnectOptions::new().filename(dir.join("data/loginwith.db")),
    )
    .await
    .expect("the database file");
    sqlx::query_as(
        "SELECT s.code, o.error FROM async_operation o
         JOIN async_operation_status s ON s.id = o.async_operation_status_id
         ORDER BY o.id DESC LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .expect("an operation")
}

/// SIGTERM, and wait for the exit (on a worker thread of its own: the stand-in keeps
/// answering on the others).
fn terminate(app: &mut Running) -> ExitStatus {
    tokio::task::block_in_place(|| app.terminate())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_sign_in_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (mut command, url) = binary::development(dir.path());
    // Two calls of 1.5 s each: SIGTERM, sent as soon as the callback has answered, lands in
    // the middle of the exchange.
    let stand_in = slow_stand_in(&url, Duration::from_millis(1500)).await;
    binary::with_facebook_at(&mut command, &stand_in, CLIENT_ID, CLIENT_SECRET)
        .env("RUST_LOG", "info");
    let mut app = Running::start(command, dir, url).await;
    Browser::new(&app.url).login_until_preloader(ADA).await;

    let status = terminate(&mut app);
    assert!(status.success(), "a clean exit: {status}");
    let log = app.stderr();
    let position = |text: &str| {
        log.find(text)
            .unwrap_or_else(|| panic!("{text:?} in the log: {log}"))
    };
    assert!(position("shutting down") < position("sign-in exchange succeeded"));
    assert!(
        position("sign-in exchange succeeded") < position("every sign-in in progress finished")
    );
    assert!(position("every sign-in in progress finished") < position("stopped"));
    assert_eq!(last_operation(app.dir()).await, ("ok".to_owned(), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_cut_off_by_the_grace_period_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut command, url) = binary::development(dir.path());
    // Far beyond the grace period (and the exchange's own 15 s limit), on a port of its own:
    // with the built-in development provider, the listener SIGTERM closes could refuse the
    // exchange's call before it connected (seen in CI), which ends the exchange before the
    // grace period, as unreachable.
    let stand_in = slow_stand_in(&url, Duration::from_secs(600)).await;
    binary::with_facebook_at(&mut command, &stand_in, CLIENT_ID, CLIENT_SECRET)
        .env("RUST_LOG", "info")
        .env("LOGINWITH_SERVER__SHUTDOWN_GRACE_SECS", "1");
    let mut app = Running::start(command, dir, url).await;
    Browser::new(&app.url).login_until_preloader(ADA).await;

    let sent = Instant::now();
    let status = terminate(&mut app);
    let took = sent.elapsed();
    assert!(status.success(), "a clean exit: {status}");
    assert!(
        took < Duration::from_secs(10),
        "stopped after the 1 s grace, not the exchange's 15 s limit: {took:?}"
    );
    let log = app.stderr();
    for expected in ["cut off and recorded as failed (internal)", "stopped"] {
        assert!(log.contains(expected), "{expected}: {log}");
    }
    assert_eq!(
        last_operation(app.dir()).await,
        ("error".to_owned(), Some("internal".to_owned()))
    );
}
