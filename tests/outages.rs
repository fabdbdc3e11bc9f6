//! Outages survived (issue 22), on the real router under sign-ins that never pause, with
//! real faults:
//! - PostgreSQL stopped and started again: a private cluster each test makes itself
//!   (`PgCluster`: Debian's `initdb` and `pg_ctl` as the `postgres` user, its own port);
//! - SQLite's file system full, then freed: a small tmpfs the test mounts;
//! - the database held up past `database.connect_timeout_secs` by a lock another connection
//!   holds, on SQLite and on PostgreSQL.
//!
//! The provider failing for a while is `tests/provider_faults.rs`.
//!
//! Each asserts: no 500 at any step, 503s with `Retry-After` and the "try again" page during
//! the fault, `/readyz` 503 during it and 200 after, sign-ins succeeding again within 10 s of
//! the fault ending without a restart, no operation left `pending` past its timeout, nobody
//! doubled, and the log: one WARN for the outage, no ERROR. They need root (mount, runuser),
//! as `.ci/run` has; without it they fail, loudly.
//!
//! A process has one log subscriber and one outage state: the tests here take turns.

use loginwith_testkit as common;

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{ADA, Browser, Capture, PATIENCE, Person, TestEnv, eventually, location};
use loginwith::config::Environment;
use loginwith_testkit::pg_cluster::PgCluster;
use reqwest::{StatusCode, header};
use sqlx::Connection;
use url::Url;

/// The step label of a `/get-status` that answered `pending`.
const WAITING: &str = "/get-status pending";

/// How many clients sign in without pause, each as a person of its own.
const CLIENTS: usize = 4;
/// Sign-ins must succeed again this soon after the fault ends.
const RECOVERY: Duration = Duration::from_secs(10);

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn; the last test's outage is then forgotten, so that this one's is
/// logged as the new incident it is (not as the tail of the last).
async fn my_turn() -> tokio::sync::MutexGuard<'static, ()> {
    let turn = TURN.lock().await;
    loginwith::store::outage::forget();
    turn
}

fn log() -> &'static Capture {
    static LOG: OnceLock<Capture> = OnceLock::new();
    LOG.get_or_init(Capture::install_trace)
}

/// The log from byte `from` on.
fn log_since(from: usize) -> String {
    log().text()[from..].to_owned()
}

/// Many sign-ins from one address, a request held up at most a second, and an exchange
/// deadline longer than the faults here: a person who approved during one is signed in
/// after it.
fn under_load(figment: figment::Figment) -> figment::Figment {
    figment
        .merge(("limits.auth_per_minute", 100_000))
        .merge(("limits.auth_burst", 100_000))
        .merge(("database.connect_timeout_secs", 1))
        .merge(("login.exchange_timeout_secs", 15))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_stopped_and_started_again_is_a_503_and_then_sign_ins_without_a_restart() {
    let _turn = my_turn().await;
    let cluster = PgCluster::start();
    let env = start(cluster.url()).await;
    let report = survive(&env, || cluster.stop(), || cluster.start_again()).await;
    report.assert_clean(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_a_503_that_says_try_again_and_sign_ins_come_back_once_it_has_room() {
    let _turn = my_turn().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mount = dir.path().join("small");
    let tmpfs = Tmpfs::mount(&mount, "8m");
    let from = log().text().len();
    let env = start(format!("sqlite://{}", mount.join("loginwith.db").display())).await;
    // 8 MiB is less than `database.min_free_mb` (64): said at start-up.
    let started = &log().text()[from..];
    assert!(
        started.contains("the database's file system is nearly full"),
        "{started}"
    );

    // A sign-in whose exchange is still at the provider when the disk fills: its final
    // transaction fails with SQLITE_FULL (which used to leave its connection in the pool
    // counted as inside a transaction, failing every later BEGIN on it), and is tried again
    // until the disk has room, within the exchange's deadline.
    let filler = tmpfs.0.join("filler");
    let report = survive(
        &env,
        || {
            fill(&filler);
        },
        || std::fs::remove_file(&filler).expect("free the space"),
    )
    .await;
    report.assert_clean(&env).await;
    // More sign-ins than the pool has connections (8): each connection serves some.
    for _ in 0..12 {
        let browser = env.browser();
        browser.login(ADA).await;
        assert_eq!(browser.get("/auth/check").await.status(), StatusCode::OK);
    }
    drop(env);
    drop(tmpfs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_approved_while_the_disk_is_full_is_not_lost() {
    let _turn = my_turn().await;
    let full = FullDisk::catching_a_sign_in(|f| f).await;
    let (env, caught) = (&full.env, &full.caught);
    // The preloader is told to try again, in text.
    let response = caught.get("/get-status").await;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(response.text().await.expect("body"), "error");
    }
    full.free();
    assert_eq!(caught.wait_status().await, "ok");
    assert_eq!(caught.get("/success").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(caught.get("/auth/check").await.status(), StatusCode::OK);
    eventually("/readyz to answer ok", || async {
        env.browser().get("/readyz").await.status() == StatusCode::OK
    })
    .await;
}

/// The disk stays full past the exchange's deadline, with nobody asking anything: the
/// exchange gives up, `/readyz` stays 503 (a quiet outage is still one), and once there is
/// room the operation is marked failed by the exchange itself, never left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_outlasting_the_exchange_deadline_fails_the_sign_in_and_leaves_nothing_pending() {
    let _turn = my_turn().await;
    let full = FullDisk::catching_a_sign_in(|f| f.merge(("login.exchange_timeout_secs", 2))).await;
    let (env, caught, from) = (&full.env, &full.caught, full.log_from);
    eventually("the exchange to give up at its deadline", || async {
        log_since(from).contains("could not record the exchange's outcome before its deadline")
    })
    .await;
    let pending = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM async_operation WHERE async_operation_status_id = 1",
        )
        .fetch_one(&env.db)
        .await
        .expect("count")
    };
    // Reads still work; the operation could not be written either way.
    assert_eq!(pending().await, 1);
    // Nobody has met the database since the exchange, and the outage is still one: only a
    // write ends it.
    let (status, body) = env.browser().text("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    full.free();
    // Marked failed by the exchange's own retry, with no browser asking.
    eventually("the operation to be marked failed", || async {
        pending().await == 0
    })
    .await;
    assert_eq!(caught.wait_status().await, "error");
    eventually("/readyz to answer ok", || async {
        env.browser().get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    eventually("the INFO that the outage is over", || async {
        log_since(from).contains("the database answers again")
    })
    .await;
    let log = log_since(from);
    let errors: Vec<_> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// An app on a small tmpfs with a sign-in whose exchange was still at the provider when the
/// disk filled: its final transaction failed with SQLITE_FULL (which used to leave its
/// connection in the pool counted as inside a transaction, failing every later BEGIN on it),
/// and it is trying again.
struct FullDisk {
    env: TestEnv,
    caught: Browser,
    filler: std::path::PathBuf,
    /// Where the log stood before the sign-in.
    log_from: usize,
    _tmpfs: Tmpfs,
    _dir: tempfile::TempDir,
}

impl FullDisk {
    async fn catching_a_sign_in(tweak: impl FnOnce(figment::Figment) -> figment::Figment) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mount = dir.path().join("small");
        let tmpfs = Tmpfs::mount(&mount, "8m");
        let env = start_with(
            format!("sqlite://{}", mount.join("loginwith.db").display()),
            tweak,
        )
        .await;
        let log_from = log().text().len();
        env.set_latency(Duration::from_millis(400));
        let caught = env.browser();
        caught.login_until_preloader(ADA).await;
        let filler = mount.join("filler");
        fill(&filler);
        eventually("the exchange to wait for room", || async {
            log_since(log_from)
                .contains("the database is unavailable; trying again until the exchange's deadline")
        })
        .await;
        env.set_latency(Duration::ZERO);
        Self {
            env,
            caught,
            filler,
            log_from,
            _tmpfs: tmpfs,
            _dir: dir,
        }
    }

    fn free(&self) {
        std::fs::remove_file(&self.filler).expect("free the space");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_held_by_a_lock_past_the_connect_timeout_is_a_503_not_a_hang() {
    let _turn = my_turn().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("loginwith.db").display());
    let env = start(url.clone()).await;
    // Another process's connection takes the write lock and keeps it (WAL: reads go on).
    let report = a_lock_held(&env, &url, &["BEGIN EXCLUSIVE"]).await;
    report.assert_clean(&env).await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_held_by_a_lock_past_the_connect_timeout_is_a_503_not_a_hang() {
    let _turn = my_turn().await;
    let cluster = PgCluster::start();
    let url = cluster.url();
    let env = start(url.clone()).await;
    // A server held up (an operator's transaction left open over a migration, a `VACUUM
    // FULL`, a stalled disk): every statement on loginwith's tables waits.
    let lock = "LOCK TABLE session, async_operation, user_profile, user_identity, write_probe
                IN ACCESS EXCLUSIVE MODE";
    let report = a_lock_held(&env, &url, &["BEGIN", lock]).await;
    report.assert_clean(&env).await;
}

/// [`survive_async`] a lock that another connection to `url` takes with `take` and holds
/// until it rolls back.
async fn a_lock_held(env: &TestEnv, url: &str, take: &[&'static str]) -> Report {
    let holder = tokio::sync::Mutex::new(None::<sqlx::AnyConnection>);
    survive_async(
        env,
        || async {
            let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
            for statement in take {
                sqlx::query(*statement)
                    .execute(&mut conn)
                    .await
                    .expect("take the lock");
            }
            *holder.lock().await = Some(conn);
        },
        || async {
            let mut conn = holder.lock().await.take().expect("the lock is held");
            sqlx::query("ROLLBACK")
                .execute(&mut conn)
                .await
                .expect("let go");
        },
    )
    .await
}

async fn start(database_url: String) -> TestEnv {
    start_with(database_url, |f| f).await
}

async fn start_with(
    database_url: String,
    tweak: impl FnOnce(figment::Figment) -> figment::Figment,
) -> TestEnv {
    log();
    let dir = tempfile::tempdir().expect("temp dir");
    TestEnv::start_on(
        dir,
        database_url,
        Environment::Development,
        Vec::new(),
        |f| tweak(under_load(f)),
    )
    .await
}

/// What happened around one fault.
struct Report {
    /// Where the log stood when the fault began.
    log_from: usize,
    /// Every sign-in attempted: when it began, when it ended, how.
    attempts: Vec<Attempt>,
    /// How many 503s (with the retry hint) the clients were answered, at any step.
    answered_503: usize,
    /// How long after the fault ended the first sign-in begun after it had succeeded.
    signed_in_after: Duration,
    /// How long after the fault ended `/readyz` answered 200.
    ready_after: Duration,
}

impl Report {
    async fn assert_clean(&self, env: &TestEnv) {
        let wrong: Vec<_> = self
            .attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Wrong(what) => Some(what.as_str()),
                _ => None,
            })
            .collect();
        assert!(wrong.is_empty(), "answers no fault excuses: {wrong:#?}");
        let unavailable = self.answered_503;
        assert!(unavailable > 0, "the fault was never met");
        assert!(
            self.signed_in_after <= RECOVERY,
            "sign-ins came back {:?} after the fault ended",
            self.signed_in_after
        );
        assert!(self.ready_after <= RECOVERY, "{:?}", self.ready_after);
        eprintln!(
            "{} sign-ins, {} answers 503, {} sign-ins ended in the error page, {} lost at /success; signed in again {:?} and ready {:?} after the fault ended",
            self.attempts.len(),
            unavailable,
            self.count(|o| matches!(o, Outcome::Failed)),
            self.count(|o| matches!(o, Outcome::LostAtSuccess)),
            self.signed_in_after,
            self.ready_after
        );
        // Nobody doubled: each client is one person with one identity.
        assert_eq!(env.count("user_profile").await, CLIENTS as i64);
        assert_eq!(env.count("user_identity").await, CLIENTS as i64);
        // No operation left pending past its deadline (15 s, and an attempt waits for its
        // answer at most PATIENCE): whatever could not be recorded has been marked failed.
        let limit = i64::try_from((Duration::from_secs(15)).as_millis()).expect("ms");
        let stale = || async {
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis(),
            )
            .expect("ms");
            sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT id, created_at, updated_at FROM async_operation
                 WHERE async_operation_status_id = 1 AND created_at < $1",
            )
            .bind(now - limit)
            .fetch_all(&env.db)
            .await
            .expect("stale operations")
        };
        let patience = Instant::now() + PATIENCE;
        loop {
            let left = stale().await;
            if left.is_empty() {
                break;
            }
            if Instant::now() > patience {
                let log = log_since(self.log_from);
                let about: Vec<_> = left
                    .iter()
                    .flat_map(|(id, _, _)| {
                        let tag = format!("operation={id} ");
                        log.lines()
                            .filter(|l| {
                                l.contains(&tag) && !l.contains("hyper") && !l.contains("reqwest")
                            })
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                panic!("operations pending past their deadline: {left:?}\n{about:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // One WARN for the whole outage, however many requests it refused; no ERROR.
        let log = log().text();
        let log = &log[self.log_from..];
        let errors: Vec<_> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let (ours, theirs): (Vec<_>, Vec<_>) = log
            .lines()
            .filter(|l| l.contains(" WARN "))
            .partition(|l| l.contains(" loginwith::"));
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert!(
            ours[0].contains("the database is unavailable: answering 503"),
            "{ours:#?}"
        );
        // sqlx's own, at most one per pooled connection (8), never a line per request: a
        // connection a server restart broke, or a statement that waited for the lock and got
        // it as it was let go (slow, but it succeeded: worth a line).
        let connection_or_slow = |l: &&&str| {
            l.contains("sqlx_core::pool")
                || (l.contains("sqlx::query: slow statement")
                    && !l.contains("rows_affected=0 rows_returned=0"))
        };
        assert!(
            theirs.len() <= 8 && theirs.iter().all(|l| connection_or_slow(&l)),
            "{theirs:#?}"
        );
        // And one INFO once it has settled (two database waits after the first write).
        eventually("the INFO that the outage is over", || async {
            log_since(self.log_from).contains("the database answers again")
        })
        .await;
        // Counted.
        let metrics_url = env.metrics_url.as_ref().expect("metrics are on");
        let metrics = reqwest::get(format!("{metrics_url}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let count = metrics
            .lines()
            .find_map(|l| l.strip_prefix("loginwith_store_unavailable_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(count >= 1.0, "{metrics}");
    }

    fn count(&self, which: impl Fn(&Outcome) -> bool) -> usize {
        self.attempts.iter().filter(|a| which(&a.outcome)).count()
    }
}

/// Runs sign-ins on [`CLIENTS`] clients, brings the fault with `begin`, holds it until every
/// client has met it and `/readyz` says so, ends it with `end`, and waits until every client
/// has signed in again.
async fn survive(env: &TestEnv, begin: impl FnOnce(), end: impl FnOnce()) -> Report {
    survive_async(env, || async { begin() }, || async { end() }).await
}

async fn survive_async<B, E, BF, EF>(env: &TestEnv, begin: B, end: E) -> Report
where
    B: FnOnce() -> BF,
    BF: Future<Output = ()>,
    E: FnOnce() -> EF,
    EF: Future<Output = ()>,
{
    let load = Load::start(&env.app_url);
    let warm = Instant::now();
    eventually("every client to sign in before the fault", || async {
        load.clients_signed_in_since(warm) == CLIENTS
    })
    .await;

    let log_from = log().text().len();
    let fault = Instant::now();
    begin().await;
    let patience = Instant::now() + PATIENCE;
    while !load.every_client_met_the_fault_since(fault) {
        assert!(
            Instant::now() < patience,
            "not every client met the fault; each one's last answers:\n{}",
            load.last_answers()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = env.browser().text("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/readyz: {body}");
    // The process serves on: liveness says so.
    assert_eq!(env.browser().get("/healthz").await.status(), StatusCode::OK);

    end().await;
    let ended = Instant::now();
    let ready = Arc::new(Mutex::new(None));
    eventually("/readyz to answer ok after the fault", || async {
        let ok = env.browser().get("/readyz").await.status() == StatusCode::OK;
        if ok {
            ready.lock().unwrap().get_or_insert_with(Instant::now);
        }
        ok
    })
    .await;
    eventually("every client to sign in after the fault", || async {
        load.clients_signed_in_since(ended) == CLIENTS
    })
    .await;
    let (attempts, answered_503) = load.stop().await;
    let signed_in_after = attempts
        .iter()
        .filter(|a| a.began >= ended && matches!(a.outcome, Outcome::SignedIn))
        .map(|a| a.ended - ended)
        .min()
        .expect("a sign-in after the fault");
    let ready_after = ready.lock().unwrap().expect("ready") - ended;
    Report {
        log_from,
        attempts,
        answered_503,
        signed_in_after,
        ready_after,
    }
}

/// How one sign-in attempt ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// Signed in and greeted.
    SignedIn,
    /// A 503 with `Retry-After` and the "try again in a moment" page: the person starts over.
    Unavailable,
    /// The preloader was told `error` (the outcome could not be recorded by the deadline).
    Failed,
    /// `/success` took the operation but could not save the signed-in session (the database
    /// failed between its two writes): the person lands signed out and signs in again. A
    /// known window, closed when `/success` becomes one transaction (issue 24); counted and
    /// reported, not hidden.
    LostAtSuccess,
    /// Anything a fault does not excuse: a 500, a page without the retry hint, a hang.
    Wrong(String),
}

struct Answer {
    client: usize,
    at: Instant,
    path: String,
    status: StatusCode,
}

struct Attempt {
    client: usize,
    began: Instant,
    ended: Instant,
    outcome: Outcome,
}

/// Clients signing in without pause until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    /// Every answer a client had from the app: which client, when, the path, the status.
    answers: Arc<Mutex<Vec<Answer>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(app_url: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..CLIENTS)
            .map(|client| {
                let (stop, attempts, app_url) =
                    (stop.clone(), attempts.clone(), app_url.to_owned());
                let answered = answers.clone();
                let saw = move |path: &str, status: StatusCode| {
                    answered.lock().unwrap().push(Answer {
                        client,
                        at: Instant::now(),
                        path: path.to_owned(),
                        status,
                    });
                };
                tokio::spawn(async move {
                    let email = format!("client{client}@example.com");
                    let last = format!("<b>Client</b> {client} 🚀");
                    let person = Person {
                        first: "Ada",
                        last: &last,
                        email: &email,
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        let outcome = sign_in(&Browser::new(&app_url), person, &saw).await;
                        let pause = matches!(outcome, Outcome::Unavailable);
                        attempts.lock().unwrap().push(Attempt {
                            client,
                            began,
                            ended: Instant::now(),
                            outcome,
                        });
                        if pause {
                            // A person waits a moment before trying again.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            attempts,
            answers,
            clients,
        }
    }

    fn clients_where(&self, which: impl Fn(&Attempt) -> bool) -> usize {
        let attempts = self.attempts.lock().unwrap();
        (0..CLIENTS)
            .filter(|&c| attempts.iter().any(|a| a.client == c && which(a)))
            .count()
    }

    fn clients_signed_in_since(&self, since: Instant) -> usize {
        self.clients_where(|a| a.began >= since && matches!(a.outcome, Outcome::SignedIn))
    }

    /// Whether the fault has reached every client since `since`: each was answered 503 at
    /// some step, or kept waiting in the preloader (where a write that cannot be made holds
    /// the exchange: reads go on during a full disk or a held write lock), and 503s were
    /// answered at least once per client.
    fn every_client_met_the_fault_since(&self, since: Instant) -> bool {
        let answers = self.answers.lock().unwrap();
        let unavailable = |a: &&Answer| a.status == StatusCode::SERVICE_UNAVAILABLE;
        let since_fault = || answers.iter().filter(|a| a.at >= since);
        since_fault().filter(unavailable).count() >= CLIENTS
            && (0..CLIENTS).all(|c| {
                since_fault().any(|a| a.client == c && (unavailable(&a) || a.path == WAITING))
            })
    }

    /// Each client's last three answers, for a failure message.
    fn last_answers(&self) -> String {
        let answers = self.answers.lock().unwrap();
        let now = Instant::now();
        (0..CLIENTS)
            .map(|c| {
                let last: Vec<_> = answers
                    .iter()
                    .filter(|a| a.client == c)
                    .rev()
                    .take(3)
                    .map(|a| format!("{} {} {:?} ago", a.path, a.status, now - a.at))
                    .collect();
                format!("client {c}: {last:?}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the clients: every attempt, and how many 503s they were answered.
    async fn stop(self) -> (Vec<Attempt>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a client ran to the end");
        }
        let answered_503 = self
            .answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        let attempts = std::mem::take(&mut *self.attempts.lock().unwrap());
        (attempts, answered_503)
    }
}

/// One sign-in as a browser makes it, with the preloader's and a person's patience: a 503 on
/// `/get-status` is a failed poll, polled again; a 503 on `/success` is a page reloaded a
/// moment later; a 503 anywhere else ends the attempt (the person starts over).
async fn sign_in(
    browser: &Browser,
    person: Person<'_>,
    saw: &impl Fn(&str, StatusCode),
) -> Outcome {
    let response = browser.get("/authorize/facebook").await;
    saw("/authorize", response.status());
    match response.status() {
        StatusCode::SEE_OTHER => {}
        StatusCode::SERVICE_UNAVAILABLE => return unavailable(response, "/authorize").await,
        status => return Outcome::Wrong(format!("/authorize: {status}")),
    }
    let dialog = Url::parse(location(&response)).expect("dialog URL");
    let callback = browser.consent(&dialog, person, "allow").await;
    let response = browser.get(&callback).await;
    saw("/callback", response.status());
    match response.status() {
        StatusCode::SEE_OTHER if location(&response) == "/preloader" => {}
        StatusCode::SERVICE_UNAVAILABLE => return unavailable(response, "/callback").await,
        status => return Outcome::Wrong(format!("/callback: {status}")),
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        if Instant::now() > deadline {
            return Outcome::Wrong("/get-status: pending past PATIENCE".to_owned());
        }
        let response = browser.get("/get-status").await;
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let body = response.text().await.unwrap_or_default();
        saw(
            if body == "pending" {
                WAITING
            } else {
                "/get-status"
            },
            status,
        );
        match (status, body.as_str()) {
            (StatusCode::OK, "ok") => break,
            (StatusCode::OK, "error") => return Outcome::Failed,
            (StatusCode::OK, "pending") => {}
            (StatusCode::SERVICE_UNAVAILABLE, "error") if retry.is_some() => {}
            _ => return Outcome::Wrong(format!("/get-status: {status} {body:?}")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        if Instant::now() > deadline {
            return Outcome::Wrong("/success: unavailable past PATIENCE".to_owned());
        }
        let response = browser.get("/success").await;
        saw("/success", response.status());
        match response.status() {
            StatusCode::SEE_OTHER if location(&response) == "/" => {
                return greeted(browser, deadline, saw).await;
            }
            StatusCode::SEE_OTHER if location(&response) == "/error?why=nothing-to-finish" => {
                return Outcome::LostAtSuccess;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                if let Outcome::Wrong(what) = unavailable(response, "/success").await {
                    return Outcome::Wrong(what);
                }
            }
            status => return Outcome::Wrong(format!("/success: {status}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the home page greets the person (asked again while it answers 503).
async fn greeted(browser: &Browser, deadline: Instant, saw: &impl Fn(&str, StatusCode)) -> Outcome {
    loop {
        let (status, page) = browser.text("/").await;
        saw("/", status);
        match status {
            StatusCode::OK if page.contains("Hi, Ada!") => return Outcome::SignedIn,
            StatusCode::OK => return Outcome::LostAtSuccess,
            StatusCode::SERVICE_UNAVAILABLE if Instant::now() < deadline => {}
            status => return Outcome::Wrong(format!("/ after /success: {status}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 503 as the outage should answer it: `Retry-After` and the "try again" page, no error
/// reference.
async fn unavailable(response: reqwest::Response, step: &str) -> Outcome {
    let retry = response.headers().get(header::RETRY_AFTER).cloned();
    let page = response.text().await.unwrap_or_default();
    if retry.is_some_and(|r| r == "5")
        && page.contains("Try again in a moment")
        && !page.contains("reference")
    {
        Outcome::Unavailable
    } else {
        Outcome::Wrong(format!(
            "{step}: a 503 without the retry hint or page: {page}"
        ))
    }
}

/// A tmpfs of `size` mounted at `dir` for the test's life.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed ({status}): this test needs root, as .ci/run has",
            dir.display()
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `filler` until the file system refuses another byte.
fn fill(filler: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_err()
        {
            break;
        }
    }
    // Whatever is left below a whole chunk, too.
    while file
        .write_all(&[0u8; 512])
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}
