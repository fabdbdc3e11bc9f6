//! The login load benchmark.
//!
//! Starts the release binary (or uses a running one with `--url`), a development provider
//! of its own in this process (auto-approve, configurable latency), and N virtual users, each
//! with its own cookie jar, looping over complete sign-ins:
//! `/authorize/facebook` → dialog → `/callback/facebook` → `/preloader` →
//! `/get-status?wait=30` until `ok` → `/success` → `/` (the greeting) → `POST /logout`.
//!
//! The database is a fresh SQLite file, or with `--database-url postgres://…` a fresh
//! database created on that PostgreSQL server for the run and dropped after it. With
//! `--instances N`, N servers share it and each sign-in is spread over them: `/authorize`,
//! `/callback` and `/preloader` on instance i, the long poll on i+1, `/success`, `/` and
//! `/logout` on i+2 (mod N).
//!
//! With `--prefill-users N` the database starts with N existing people, and each sign-in is
//! one of them drawn at random (uniform over the whole table), so that a large table is
//! really read, not the same 64 rows again.
//!
//! Besides throughput, latency, the servers' CPU (summed over the instances) and the
//! statements they sent to the database per sign-in (`loginwith_db_statements_total` on each
//! server's metrics listener), it reports
//! PostgreSQL's CPU per sign-in (every `postgres` process) and the wake-up latency: from the
//! moment the development provider hands over its `/me` answer (the exchange's last call) to
//! the moment the long poll's `ok` reaches the client, which with `--instances 2` is on the
//! other instance (the commit, its `NOTIFY`, the listener and the answer).
//!
//! ```text
//! cargo build --release
//! cargo bench --bench login -- --users 64 --duration 60 --latency-ms 0
//! cargo bench --bench login -- --users 64 --duration 30 \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres --instances 2
//! ```
//!
//! Then `/get-status` on finished sessions, and `GET /auth/check` (forward authentication) with
//! a signed-in cookie on `--check-connections` (64) connections, for `--check-seconds` (10): checks per second and
//! their latency, every answer required to be a 200. `--check-only` runs only that phase.
//!
//! Prints a table and one JSON line. See BENCHMARKS.md for the figures on this machine.

use std::{
    collections::{BTreeMap, HashMap},
    net::TcpListener as StdListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use loginwith::{
    dev_provider::{DevProvider, DevProviderSettings, Fault, Faults},
    store::Store,
};
use reqwest::{StatusCode, header::LOCATION, redirect::Policy};

const CLIENT_ID: &str = "bench-app";
const CLIENT_SECRET: &str = "bench-secret-0123456789abcdef";

struct Options {
    users: usize,
    duration: Duration,
    latency: Duration,
    status_seconds: u64,
    prefill_users: u64,
    bin: PathBuf,
    /// A PostgreSQL server to create the run's database on; `None`: a SQLite file.
    database_url: Option<String>,
    instances: usize,
    /// How long the `/auth/check` phase runs.
    check_seconds: u64,
    /// Connections of the `/auth/check` phase (64).
    check_connections: u64,
    /// Only the `/auth/check` phase: no sign-in load, no `/get-status` phase.
    check_only: bool,
    /// `[[access.rules]]` for the `/auth/check` phase: 20 rules and 1,000 listed addresses
    /// (see [`AccessRules`]).
    access_rules: bool,
    /// The configuration file holding them, written once the options are read.
    config_file: Option<PathBuf>,
}

impl Options {
    fn parse() -> Self {
        let mut options = Self {
            users: 64,
            duration: Duration::from_secs(60),
            latency: Duration::ZERO,
            status_seconds: 10,
            prefill_users: 0,
            bin: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/loginwith"),
            database_url: None,
            instances: 1,
            check_seconds: 10,
            check_connections: 64,
            check_only: false,
            access_rules: false,
            config_file: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
            };
            match arg.as_str() {
                "--users" => options.users = number(&value()) as usize,
                "--duration" => options.duration = Duration::from_secs(number(&value())),
                "--latency-ms" => options.latency = Duration::from_millis(number(&value())),
                "--status-seconds" => options.status_seconds = number(&value()),
                "--prefill-users" => options.prefill_users = number(&value()),
                "--bin" => options.bin = PathBuf::from(value()),
                "--database-url" => {
                    let url = value();
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        usage("--database-url takes a postgres:// URL (the default is SQLite)");
                    }
                    options.database_url = Some(url);
                }
                "--instances" => {
                    options.instances = number(&value()) as usize;
                    if options.instances == 0 {
                        usage("--instances needs at least 1");
                    }
                }
                "--check-seconds" => options.check_seconds = number(&value()).max(1),
                "--check-connections" => options.check_connections = number(&value()).max(1),
                "--check-only" => options.check_only = true,
                "--access-rules" => options.access_rules = true,
                // cargo bench passes --bench to harness-less targets.
                "--bench" => {}
                other => usage(&format!("unknown argument {other}")),
            }
        }
        options
    }
}

fn number(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("{text} is not a number")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "login bench: {problem}\nusage: cargo bench --bench login -- [--users N] [--duration SECS] \
         [--latency-ms MS] [--status-seconds SECS] [--prefill-users N] [--bin PATH] \
         [--database-url postgres://USER@HOST/DB] [--instances N] [--check-seconds SECS] \
         [--check-connections N] [--check-only] [--access-rules]"
    );
    std::process::exit(2)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Statements every server sent to the database so far.
async fn statements_sent(servers: &[Server]) -> f64 {
    let mut sum = 0.0;
    for server in servers {
        sum += server.statements_sent().await;
    }
    sum
}

/// The server under test, killed on drop.
struct Server {
    child: Child,
    url: String,
    /// Its Prometheus listener (`metrics.bind`).
    metrics_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `loginwith_db_statements_total`: statements the server sent to the database so far
    /// (NaN from a build before it was counted, run with `--bin`).
    async fn statements_sent(&self) -> f64 {
        let page = reqwest::get(&self.metrics_url)
            .await
            .expect("the metrics listener")
            .text()
            .await
            .expect("the metrics page");
        page.lines()
            .find_map(|line| line.strip_prefix("loginwith_db_statements_total "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the server process, in seconds.
    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&format!("/proc/{}/stat", self.pid())).map_or(0.0, |(_, cpu)| cpu)
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

/// The command name and utime + stime (seconds) of the process whose `/proc/PID/stat` this is.
fn process_cpu_seconds(stat_path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last `)`.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    Some((comm, (ticks(11) + ticks(12)) / clock_ticks_per_second()))
}

/// utime + stime, in seconds, of every process named `postgres` (the postmaster, its
/// background workers and every connection's backend) that is alive now. A backend that
/// starts and exits between two readings is missed: the servers' pools keep theirs open.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| process_cpu_seconds(&format!("{}/stat", e.path().display())))
        .filter(|(comm, _)| comm == "postgres")
        .map(|(_, cpu)| cpu)
        .sum()
}

/// `git rev-parse --short HEAD` of the checkout the benchmark runs in, `-dirty` when tracked
/// files differ from it.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if changes.is_empty() => head,
        _ => format!("{head}-dirty"),
    }
}

static CLOCK_TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn clock_ticks_per_second() -> f64 {
    *CLOCK_TICKS.get_or_init(read_clock_ticks)
}

fn read_clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn start_server(
    options: &Options,
    dev_url: &str,
    database_url: &str,
    port: u16,
) -> (Server, Duration) {
    let url = format!("http://127.0.0.1:{port}");
    let metrics_port = free_port();
    let started = Instant::now();
    let mut command = Command::new(&options.bin);
    loginwith_testkit::binary::with_facebook_at(&mut command, dev_url, CLIENT_ID, CLIENT_SECRET)
        .env("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("LOGINWITH_SERVER__PUBLIC_URL", &url)
        .env("LOGINWITH_DATABASE__URL", database_url)
        .env("LOGINWITH_DEV_PROVIDER__ENABLED", "false")
        .env(
            "LOGINWITH_METRICS__BIND",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("LOGINWITH_LIMITS__AUTH_PER_MINUTE", "100000000")
        .env("LOGINWITH_LIMITS__AUTH_BURST", "100000000")
        .env("LOGINWITH_LIMITS__MAX_CONCURRENT_EXCHANGES", "100000")
        .env("RUST_LOG", "warn")
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG");
    if let Some(file) = &options.config_file {
        command.env("LOGINWITH_CONFIG", file);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            usage(&format!(
                "cannot start {} ({e}); run `cargo build --release` first",
                options.bin.display()
            ))
        });
    let server = Server {
        child,
        url,
        metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
    };
    let probe = reqwest::Client::new();
    loop {
        if let Ok(response) = probe.get(format!("{}/", server.url)).send().await
            && response.status() == StatusCode::OK
        {
            return (server, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The run's database: a SQLite file in a temporary folder, or a PostgreSQL database created
/// for the run and dropped on drop (after the servers, which the caller stops first).
enum Database {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl Database {
    async fn create(server: Option<&str>) -> Self {
        let Some(admin_url) = server else {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/bench.db", dir.path().display());
            return Self::Sqlite { _dir: dir, url };
        };
        use sqlx::Connection as _;
        let name = format!("loginwith_bench_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| usage(&format!("{admin_url} does not answer: {e}")));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the benchmark's database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(admin_url).expect("the server's URL");
        url.set_path(&name);
        Self::Postgres {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Self::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        if !loginwith_testkit::db::drop_postgres_database(admin_url, name) {
            eprintln!("could not drop the benchmark's database {name}: drop it by hand");
        }
    }
}

/// Inserts `count` people with Facebook identities in one transaction (the "existing
/// people" of the data-growth run), before the server starts: person `i` is the one the
/// development provider signs in for [`existing_email`]`(i)`, so that the run can sign in
/// people drawn from the whole table.
async fn prefill(database_url: &str, count: u64, dev: &DevProvider) {
    if count == 0 {
        return;
    }
    let store = Store::connect(database_url)
        .await
        .expect("open the database");
    store
        .insert_people(count, |i| dev.user_id_for_email(&existing_email(i)))
        .await
        .expect("insert the existing people");
    store.close().await;
}

/// The address of existing person `i` (see [`prefill`]).
fn existing_email(i: u64) -> String {
    format!("existing{i}@bench.example")
}

/// A small xorshift generator: which existing person each sign-in is, uniform over the
/// table, reproducible per virtual user.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    /// Provider's `/me` answer → the long poll's `ok` at the client, for sign-ins whose long
    /// poll was already waiting when `/me` answered (woken by the commit).
    woken_us: Mutex<Vec<u64>>,
    /// The same for every sign-in that got its `ok` from a long poll, waiting or not.
    polled_us: Mutex<Vec<u64>>,
    /// Sign-ins whose preloader found the exchange finished and went straight to `/success`.
    no_poll: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn fail(&self, kind: String) {
        *self.failures.lock().unwrap().entry(kind).or_default() += 1;
    }
}

/// When the development provider last answered `/me` for each virtual user: nanoseconds
/// since `clock`'s start, plus one (0: not since the user's last callback).
struct MeAnswers {
    clock: Instant,
    /// Provider user id → virtual user; with existing people drawn at random, each sign-in
    /// notes its person here first.
    user_of: Mutex<HashMap<String, usize>>,
    at: Vec<AtomicU64>,
}

impl MeAnswers {
    fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }
}

/// Middleware on the development provider: notes the moment its `/me` handler hands the
/// answer (the exchange's last provider call) to the HTTP server, for the user it names.
async fn record_me(
    axum::extract::State(answers): axum::extract::State<Arc<MeAnswers>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_me = request.uri().path() == "/me";
    let response = next.run(request).await;
    if !is_me {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let at = answers.now_ns() + 1;
    let user = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
        .and_then(|id| answers.user_of.lock().unwrap().get(&id).copied());
    if let Some(user) = user {
        answers.at[user].store(at, Ordering::Relaxed);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn client(email: &str, base: &str) -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    // The auto-approving dialog signs in as this person. Cookies are per host, not per port:
    // this jar serves every instance on 127.0.0.1.
    jar.add_cookie_str(&format!("dev_user={email}"), &base.parse().expect("url"));
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .pool_max_idle_per_host(4)
        .build()
        .expect("client");
    (http, jar)
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)?
        .to_str()
        .ok()
        .map(|l| l.split('#').next().unwrap_or(l).to_owned())
}

/// One virtual user: its client, the instances its sign-in is spread over, and its slot in
/// [`MeAnswers`].
struct User<'a> {
    http: &'a reqwest::Client,
    /// `/authorize`, `/callback` and `/preloader`.
    start: &'a str,
    /// The long poll.
    poll: &'a str,
    /// `/success`, `/` and `/logout`.
    finish: &'a str,
    answers: &'a MeAnswers,
    index: usize,
}

/// What one sign-in measured.
struct SignIn {
    /// Callback → signed-in page.
    elapsed: Duration,
    /// Provider's `/me` answer → long poll's `ok`, and whether the poll was waiting already;
    /// `None` when the preloader found the exchange finished.
    wake: Option<(Duration, bool)>,
}

/// One complete sign-in and sign-out. Returns what it measured, or the step that failed.
async fn sign_in_once(user: &User<'_>) -> Result<SignIn, String> {
    let http = user.http;
    let get = |url: String| async move {
        http.get(&url)
            .send()
            .await
            .map_err(|e| format!("transport: {}", e.without_url()))
    };
    let expect_redirect = |step: &'static str, response: reqwest::Response| {
        if response.status() == StatusCode::SEE_OTHER {
            location(&response).ok_or_else(|| format!("{step}: no location"))
        } else {
            Err(format!("{step}: HTTP {}", response.status().as_u16()))
        }
    };
    let dialog = expect_redirect(
        "authorize",
        get(format!("{}/authorize/facebook", user.start)).await?,
    )?;
    let callback = expect_redirect("dialog", get(dialog).await?)?;
    let me_answered = &user.answers.at[user.index];
    me_answered.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let next = expect_redirect("callback", get(callback).await?)?;
    if next != "/preloader" {
        return Err(format!("callback: went to {next}"));
    }
    let preloader = get(format!("{}/preloader", user.start)).await?;
    let mut wake = None;
    if preloader.status() == StatusCode::OK {
        loop {
            let sent = user.answers.now_ns();
            let status = get(format!("{}/get-status?wait=30", user.poll)).await?;
            let body = status
                .text()
                .await
                .map_err(|_| "get-status: body".to_owned())?;
            let received = user.answers.now_ns();
            match body.as_str() {
                "ok" => {
                    // 0 cannot happen (the app hears `/me` after it is noted); such a sign-in
                    // would show as polled + preloader shortcuts < completed.
                    let me = me_answered.load(Ordering::Relaxed);
                    wake = me
                        .checked_sub(1)
                        .map(|me| (Duration::from_nanos(received.saturating_sub(me)), sent < me));
                    break;
                }
                "pending" => continue,
                other => return Err(format!("exchange: {other}")),
            }
        }
    } else if location(&preloader).as_deref() != Some("/success") {
        return Err(format!("preloader: HTTP {}", preloader.status().as_u16()));
    }
    let home = expect_redirect("success", get(format!("{}/success", user.finish)).await?)?;
    if home != "/" {
        return Err(format!("success: went to {home}"));
    }
    let page = get(format!("{}/", user.finish))
        .await?
        .text()
        .await
        .map_err(|_| "home: body".to_owned())?;
    let elapsed = started.elapsed();
    if !page.contains("Hi, ") {
        return Err("home: no greeting".to_owned());
    }
    let marker = "name=\"csrf_token\" value=\"";
    let token = page
        .split_once(marker)
        .and_then(|(_, rest)| rest.split('"').next())
        .ok_or("home: no logout form")?;
    let logout = http
        .post(format!("{}/logout", user.finish))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .map_err(|e| format!("transport: {}", e.without_url()))?;
    expect_redirect("logout", logout)?;
    Ok(SignIn { elapsed, wake })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// A browser of `who` through one whole exchange with the auto-approving development
/// provider, waited until its operation is `ok` (not yet through `/success`): the client, its
/// cookie jar and the URL the jar is keyed by.
async fn finished_exchange(
    base: &str,
    who: &str,
) -> (reqwest::Client, Arc<reqwest::cookie::Jar>, reqwest::Url) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let url: reqwest::Url = base.parse().expect("url");
    jar.add_cookie_str(&format!("dev_user={who}"), &url);
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .expect("client");
    let step = |r: reqwest::Response| location(&r).expect("a redirect");
    let dialog = step(
        http.get(format!("{base}/authorize/facebook"))
            .send()
            .await
            .expect("authorize"),
    );
    let callback = step(http.get(dialog).send().await.expect("dialog"));
    http.get(callback).send().await.expect("callback");
    while http
        .get(format!("{base}/get-status?wait=30"))
        .send()
        .await
        .expect("status")
        .text()
        .await
        .expect("body")
        != "ok"
    {}
    (http, jar, url)
}

/// The `Cookie` header a jar sends to `url`.
fn cookie_header(jar: &reqwest::cookie::Jar, url: &reqwest::Url) -> String {
    use reqwest::cookie::CookieStore as _;
    jar.cookies(url)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .expect("session cookie")
}

/// Sessions whose operation is finished (`ok`), for the /get-status throughput phase, with
/// their cookie headers.
async fn finished_sessions(base: &str, count: usize) -> Vec<(reqwest::Client, String)> {
    let mut sessions = Vec::new();
    for i in 0..count {
        let (http, jar, url) = finished_exchange(base, &format!("status{i}@bench.example")).await;
        sessions.push((http, cookie_header(&jar, &url)));
    }
    sessions
}

/// `/get-status` requests per second on finished sessions: with wrk when it is installed (it
/// costs far less CPU than this process's HTTP client, which otherwise shares the two cores
/// with the server), else with this process's own clients.
async fn status_throughput(base: &str, seconds: u64) -> (f64, String) {
    let sessions = finished_sessions(base, 32).await;
    let url = format!("{base}/get-status");
    if Command::new("wrk").arg("-v").output().is_ok() {
        let output = Command::new("wrk")
            .args(["-t", "1", "-c", "64", "-d", &format!("{seconds}s")])
            .args(["-H", &format!("Cookie: {}", sessions[0].1)])
            .arg(&url)
            .output()
            .expect("run wrk");
        let text = String::from_utf8_lossy(&output.stdout);
        let rps = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let errors = text
            .lines()
            .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
        if let Some(errors) = errors {
            eprintln!("wrk: {}", errors.trim());
        }
        return (rps, "wrk, 1 thread, 64 connections".to_owned());
    }
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (http, _) in sessions {
        for _ in 0..2 {
            let (http, count, stop, url) = (http.clone(), count.clone(), stop.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(r) = http.get(&url).send().await
                        && r.bytes().await.is_ok()
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    (
        count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        "reqwest in the load generator, 64 connections".to_owned(),
    )
}

/// A signed-in session's `Cookie` header: one whole sign-in through the auto-approving
/// development provider, up to `/success`.
/// `--access-rules`: 20 `[[access.rules]]` for hosts `rule-0.bench.example` …
/// `rule-19.bench.example` (each listing addresses), the last also with an `emails_file` of
/// 1,000 addresses, and every check asking, as a trusted gateway, about the last host, so
/// that each check walks all 20 rules before the matching one looks the address up.
/// `[access]` itself stays open so that the Facebook stand-in's people can sign in; the
/// person checked has their address marked verified in the database (Facebook never says
/// so), as an OpenID issuer would have.
struct AccessRules {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

/// The address the `/auth/check` phase signs in with.
const CHECK_EMAIL: &str = "check@bench.example";
/// The host the checks with `--access-rules` ask about: the last rule's.
const LAST_RULE_HOST: &str = "rule-19.bench.example";

impl AccessRules {
    fn write() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let emails = dir.path().join("emails");
        let mut listed: Vec<String> = (0..999)
            .map(|i| format!("staff{i}@bench.example"))
            .collect();
        listed.push(CHECK_EMAIL.to_owned());
        std::fs::write(&emails, listed.join("\n")).expect("write the emails file");
        let mut toml = String::from(
            "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[gateway]\nallowed_hosts = [\".bench.example\"]\n",
        );
        for rule in 0..20 {
            toml.push_str(&format!(
                "[[access.rules]]\nhost = \"rule-{rule}.bench.example\"\npath = \"/app\"\nemails = [\"lead{rule}@bench.example\"]\n"
            ));
        }
        toml.push_str(&format!(
            "emails_file = {:?}\n",
            emails.display().to_string()
        ));
        let file = dir.path().join("loginwith.toml");
        std::fs::write(&file, toml).expect("write the configuration");
        Self { _dir: dir, file }
    }

    /// The headers a trusted gateway sends about the protected request.
    fn headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", LAST_RULE_HOST),
            ("X-Forwarded-Uri", "/app/dashboard?tab=1"),
        ]
    }

    /// Marks the checked person's address verified (see the type's docs).
    async fn verify(database_url: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(database_url)
            .await
            .expect("open the database");
        let marked = sqlx::query(
            "UPDATE user_profile SET email_verified = TRUE, email_verified_by = 'facebook' WHERE email = $1",
        )
        .bind(CHECK_EMAIL)
        .execute(&pool)
        .await
        .expect("mark the address verified");
        assert_eq!(marked.rows_affected(), 1, "the checked person exists");
        pool.close().await;
    }
}

async fn signed_in_cookie(base: &str, rules: Option<&str>) -> String {
    let (http, jar, url) = finished_exchange(base, CHECK_EMAIL).await;
    let home = location(
        &http
            .get(format!("{base}/success"))
            .send()
            .await
            .expect("success"),
    )
    .expect("a redirect");
    assert_eq!(home, "/", "signed in");
    let cookie = cookie_header(&jar, &url);
    let mut check = http
        .get(format!("{base}/auth/check"))
        .header("cookie", &cookie);
    if let Some(database_url) = rules {
        AccessRules::verify(database_url).await;
        for (name, value) in AccessRules::headers() {
            check = check.header(name, value);
        }
    }
    let check = check.send().await.expect("check");
    assert_eq!(
        check.status(),
        StatusCode::OK,
        "the cookie passes the check"
    );
    cookie
}

/// What the `/auth/check` phase measured.
struct CheckFigures {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers other than 200 (a 401 would mean the cookie did not pass: no figure then).
    not_ok: u64,
    how: String,
}

/// `GET /auth/check` with a signed-in cookie on `connections` connections for `seconds`: with
/// wrk when it is installed (far cheaper than reqwest on the two cores the server shares),
/// else with this process's own clients.
/// With `rules` (the database's URL, `--access-rules`), every check asks as a trusted gateway
/// about the last rule's host.
async fn check_throughput(
    base: &str,
    seconds: u64,
    connections: u64,
    rules: Option<&str>,
) -> CheckFigures {
    let cookie = signed_in_cookie(base, rules).await;
    let url = format!("{base}/auth/check");
    let extra = if rules.is_some() {
        AccessRules::headers()
    } else {
        Vec::new()
    };
    if Command::new("wrk").arg("-v").output().is_ok() {
        let mut wrk = Command::new("wrk");
        wrk.args(["-t", "1", "-c", &connections.to_string(), "--latency"])
            .args(["-d", &format!("{seconds}s")])
            .args(["-H", &format!("Cookie: {cookie}")]);
        for (name, value) in &extra {
            wrk.args(["-H", &format!("{name}: {value}")]);
        }
        let output = wrk.arg(&url).output().expect("run wrk");
        let text = String::from_utf8_lossy(&output.stdout);
        // wrk's own report, on stderr beside the table: its latency distribution in full.
        eprintln!("{text}");
        let field = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
                .map(str::to_owned)
        };
        let per_s = field("Requests/sec:")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let not_ok = field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if let Some(errors) = field("Socket errors:") {
            eprintln!("wrk: socket errors: {errors}");
        }
        return CheckFigures {
            per_s,
            p50_ms: field("50%").map_or(f64::NAN, |v| wrk_ms(&v)),
            p99_ms: field("99%").map_or(f64::NAN, |v| wrk_ms(&v)),
            not_ok,
            how: format!("wrk, 1 thread, {connections} connections"),
        };
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let not_ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, stop, not_ok, url, cookie, extra) = (
            http.clone(),
            stop.clone(),
            not_ok.clone(),
            url.clone(),
            cookie.clone(),
            extra.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut request = http.get(&url).header("cookie", &cookie);
                for (name, value) in &extra {
                    request = request.header(*name, *value);
                }
                let ok = match request.send().await {
                    Ok(r) => r.status() == StatusCode::OK && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    took.push(started.elapsed().as_micros() as u64);
                } else {
                    not_ok.fetch_add(1, Ordering::Relaxed);
                }
            }
            took
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut took = Vec::new();
    for task in tasks {
        took.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    took.sort_unstable();
    CheckFigures {
        per_s: took.len() as f64 / elapsed,
        p50_ms: percentile(&took, 0.50),
        p99_ms: percentile(&took, 0.99),
        not_ok: not_ok.load(Ordering::Relaxed),
        how: format!("reqwest in the load generator, {connections} connections"),
    }
}

/// A latency as wrk prints it (`812.00us`, `1.94ms`, `1.02s`) in milliseconds.
fn wrk_ms(text: &str) -> f64 {
    let number = |suffix: &str| text.strip_suffix(suffix)?.parse::<f64>().ok();
    number("us")
        .map(|us| us / 1000.0)
        .or_else(|| number("ms"))
        .or_else(|| number("s").map(|s| s * 1000.0))
        .unwrap_or(f64::NAN)
}

/// `--check-only`: one instance, the `/auth/check` phase, its figures and a JSON line.
async fn check_only(
    options: &Options,
    commit: &str,
    database: &Database,
    app_url: &str,
    server: &Server,
) {
    let cpu_before = server.cpu_seconds();
    let rules = options.access_rules.then(|| database.url());
    let figures = check_throughput(
        app_url,
        options.check_seconds,
        options.check_connections,
        rules,
    )
    .await;
    let cpu = server.cpu_seconds() - cpu_before;
    println!(
        "/auth/check benchmark: {} s, {} on 1 instance, commit {commit}",
        options.check_seconds,
        database.kind()
    );
    print_check(&figures);
    println!(
        "| server CPU per check (µs) | {:.1} |",
        cpu * 1e6 / (figures.per_s * options.check_seconds as f64)
    );
    let json = serde_json::json!({
        "commit": commit,
        "database": database.kind(),
        "instances": 1,
        "check_seconds": options.check_seconds,
        "check_connections": options.check_connections,
        "check_per_s": figures.per_s,
        "check_p50_ms": figures.p50_ms,
        "check_p99_ms": figures.p99_ms,
        "check_not_ok": figures.not_ok,
        "check_how": figures.how,
        "access_rules": if options.access_rules { "20 rules, 1000 addresses" } else { "none" },
    });
    println!("{json}");
}

fn print_check(figures: &CheckFigures) {
    println!(
        "| /auth/check per second, signed-in cookie ({}) | {:.0} |",
        figures.how, figures.per_s
    );
    println!(
        "| /auth/check latency p50 / p99 (ms) | {:.2} / {:.2} |",
        figures.p50_ms, figures.p99_ms
    );
    println!(
        "| /auth/check answers other than 200 | {} |",
        figures.not_ok
    );
}

#[tokio::main]
async fn main() {
    let mut options = Options::parse();
    // Kept until the end: the servers read the emails file while they run.
    let access_rules = options.access_rules.then(AccessRules::write);
    options.config_file = access_rules.as_ref().map(|rules| rules.file.clone());
    let commit = commit();
    let database = Database::create(options.database_url.as_deref()).await;

    let ports: Vec<u16> = (0..options.instances).map(|_| free_port()).collect();
    let app_urls: Vec<String> = ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let dev_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind dev");
    let dev_url = format!("http://{}", dev_listener.local_addr().expect("dev addr"));
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            // Each instance's public URL is its own: its pages are not redirected elsewhere.
            redirect_uris: app_urls
                .iter()
                .map(|url| format!("{url}/callback/facebook"))
                .collect(),
            auto_approve: true,
            issuer: None,
        },
        Faults {
            latency: options.latency,
            fault: Fault::None,
        },
    );
    prefill(database.url(), options.prefill_users, &dev).await;
    let emails: Vec<String> = (0..options.users)
        .map(|i| format!("user{i}@bench.example"))
        .collect();
    let answers = Arc::new(MeAnswers {
        clock: Instant::now(),
        user_of: Mutex::new(
            emails
                .iter()
                .enumerate()
                .map(|(i, email)| (dev.user_id_for_email(email), i))
                .collect(),
        ),
        at: (0..options.users).map(|_| AtomicU64::new(0)).collect(),
    });
    let dev_router = dev.router().layer(axum::middleware::from_fn_with_state(
        answers.clone(),
        record_me,
    ));
    tokio::spawn(async move { axum::serve(dev_listener, dev_router).await });

    // The first instance migrates the fresh database (its start-up is the one reported);
    // the others start on the migrated one.
    let mut servers = Vec::new();
    let mut startup = Duration::ZERO;
    for (i, port) in ports.iter().enumerate() {
        let (server, took) = start_server(&options, &dev_url, database.url(), *port).await;
        if i == 0 {
            startup = took;
        }
        servers.push(server);
    }
    let app_cpu = |servers: &[Server]| servers.iter().map(Server::cpu_seconds).sum::<f64>();
    let postgres = database.kind() == "postgres";
    if options.check_only {
        check_only(&options, &commit, &database, &app_urls[0], &servers[0]).await;
        drop(servers);
        drop(database);
        return;
    }

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = app_cpu(&servers);
    let statements_before = statements_sent(&servers).await;
    let postgres_before = postgres.then(postgres_cpu_seconds);
    let run_started = Instant::now();
    let mut users = Vec::new();
    for (i, email) in emails.into_iter().enumerate() {
        let n = options.instances;
        let (tally, stop, answers) = (tally.clone(), stop.clone(), answers.clone());
        let (dev, existing, n_users) = (dev.clone(), options.prefill_users, options.users);
        let bases = [
            app_urls[i % n].clone(),
            app_urls[(i + 1) % n].clone(),
            app_urls[(i + 2) % n].clone(),
        ];
        users.push(tokio::spawn(async move {
            let (http, jar) = client(&email, &bases[0]);
            let jar_url: reqwest::Url = bases[0].parse().expect("url");
            let mut draw = Draw(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            let user = User {
                http: &http,
                start: &bases[0],
                poll: &bases[1],
                finish: &bases[2],
                answers: &answers,
                index: i,
            };
            let (mut latencies, mut woken, mut polled) = (Vec::new(), Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                if existing > 0 {
                    // An existing person drawn from the whole table, not the same 64 again;
                    // each virtual user draws from its own share (person k with k mod users =
                    // i), so two users never sign in as the same person at once (unless there
                    // are fewer people than users).
                    let users = n_users as u64;
                    let own = (existing / users).max(1);
                    let k = (i as u64 + users * draw.below(own)) % existing;
                    let email = existing_email(k);
                    jar.add_cookie_str(&format!("dev_user={email}"), &jar_url);
                    let id = dev.user_id_for_email(&email);
                    answers.user_of.lock().unwrap().insert(id, i);
                }
                match sign_in_once(&user).await {
                    Ok(sign_in) => {
                        latencies.push(sign_in.elapsed.as_micros() as u64);
                        match sign_in.wake {
                            Some((took, waiting)) => {
                                polled.push(took.as_micros() as u64);
                                if waiting {
                                    woken.push(took.as_micros() as u64);
                                }
                            }
                            None => {
                                tally.no_poll.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tally.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(kind) => tally.fail(kind),
                }
            }
            tally.latencies_us.lock().unwrap().extend(latencies);
            tally.woken_us.lock().unwrap().extend(woken);
            tally.polled_us.lock().unwrap().extend(polled);
        }));
    }
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    for user in users {
        let _ = user.await;
    }
    let elapsed = run_started.elapsed().as_secs_f64();
    let cpu = app_cpu(&servers) - cpu_before;
    let statements = statements_sent(&servers).await - statements_before;
    let postgres_cpu = postgres_before.map(|before| postgres_cpu_seconds() - before);
    let peak_rss = servers.iter().map(Server::peak_rss_mib).fold(0.0, f64::max);

    let (status_rps, status_how) = status_throughput(&app_urls[0], options.status_seconds).await;
    let check = check_throughput(
        &app_urls[0],
        options.check_seconds,
        options.check_connections,
        options.access_rules.then(|| database.url()),
    )
    .await;

    let completed = tally.completed.load(Ordering::Relaxed);
    let no_poll = tally.no_poll.load(Ordering::Relaxed);
    let sorted = |list: &Mutex<Vec<u64>>| {
        let mut list = std::mem::take(&mut *list.lock().unwrap());
        list.sort_unstable();
        list
    };
    let latencies = sorted(&tally.latencies_us);
    let woken = sorted(&tally.woken_us);
    let polled = sorted(&tally.polled_us);
    let injected_ms = 2.0 * options.latency.as_secs_f64() * 1000.0;
    let (p50, p95, p99) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
    let (woken_p50, woken_p99) = (percentile(&woken, 0.50), percentile(&woken, 0.99));
    let (polled_p50, polled_p99) = (percentile(&polled, 0.50), percentile(&polled, 0.99));
    let failures = tally.failures.lock().unwrap().clone();
    let failed: u64 = failures.values().sum();
    let per_sign_in_ms = |seconds: f64| {
        if completed > 0 {
            seconds * 1000.0 / completed as f64
        } else {
            f64::NAN
        }
    };
    let cpu_per_sign_in_ms = per_sign_in_ms(cpu);
    // Every user finishes the sign-in it is in before the figure is read. What is counted and
    // is not a completed sign-in's: failed sign-ins (reported beside), the server's
    // housekeeping (a few statements a minute): well under 0.1 per sign-in at thousands.
    let statements_per_sign_in = per_sign_in_ms(statements) / 1000.0;
    let postgres_cpu_per_sign_in_ms = postgres_cpu.map(per_sign_in_ms);

    println!(
        "login benchmark: {} users, {:.0} s, provider latency {} ms (token and /me each), {} existing users, {} on {} instance(s), commit {commit}",
        options.users,
        elapsed,
        options.latency.as_millis(),
        options.prefill_users,
        database.kind(),
        options.instances,
    );
    println!("| figure | value |");
    println!("| --- | --- |");
    println!("| completed sign-ins | {completed} |");
    println!(
        "| sign-ins per second | {:.1} |",
        completed as f64 / elapsed
    );
    println!("| failures | {failed} {failures:?} |");
    println!("| callback → signed-in page p50 / p95 / p99 (ms) | {p50:.2} / {p95:.2} / {p99:.2} |");
    println!(
        "| same minus injected latency p50 / p95 / p99 (ms) | {:.2} / {:.2} / {:.2} |",
        p50 - injected_ms,
        p95 - injected_ms,
        p99 - injected_ms
    );
    println!(
        "| provider's /me answer → long poll's ok, poll already waiting: p50 / p99 (ms), sign-ins | {woken_p50:.2} / {woken_p99:.2}, {} |",
        woken.len()
    );
    println!(
        "| the same, every sign-in answered by a long poll: p50 / p99 (ms), sign-ins | {polled_p50:.2} / {polled_p99:.2}, {} |",
        polled.len()
    );
    println!("| sign-ins whose preloader found the exchange finished (no long poll) | {no_poll} |");
    println!(
        "| server CPU per sign-in, all {} instance(s) (ms) | {cpu_per_sign_in_ms:.3} |",
        options.instances
    );
    if let Some(ms) = postgres_cpu_per_sign_in_ms {
        println!("| PostgreSQL CPU per sign-in, every `postgres` process (ms) | {ms:.3} |");
    }
    println!(
        "| database statements per sign-in, BEGIN and COMMIT included | {statements_per_sign_in:.2} |"
    );
    println!("| server peak RSS, largest instance (MiB) | {peak_rss:.1} |");
    println!(
        "| start-up to first page, migrations included (ms) | {:.1} |",
        startup.as_secs_f64() * 1000.0
    );
    println!("| /get-status per second, finished operation ({status_how}) | {status_rps:.0} |");
    print_check(&check);
    let json = serde_json::json!({
        "commit": commit,
        "database": database.kind(),
        "instances": options.instances,
        "users": options.users,
        "duration_s": elapsed,
        "latency_ms": options.latency.as_millis() as u64,
        "prefill_users": options.prefill_users,
        "completed": completed,
        "sign_ins_per_s": completed as f64 / elapsed,
        "failures": failures,
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "own_p50_ms": p50 - injected_ms, "own_p95_ms": p95 - injected_ms, "own_p99_ms": p99 - injected_ms,
        "wakeup_waiting_count": woken.len(), "wakeup_waiting_p50_ms": woken_p50, "wakeup_waiting_p99_ms": woken_p99,
        "wakeup_polled_count": polled.len(), "wakeup_polled_p50_ms": polled_p50, "wakeup_polled_p99_ms": polled_p99,
        "no_long_poll": no_poll,
        "server_cpu_ms_per_sign_in": cpu_per_sign_in_ms,
        "statements_per_sign_in": statements_per_sign_in,
        "postgres_cpu_ms_per_sign_in": postgres_cpu_per_sign_in_ms,
        "server_peak_rss_mib": peak_rss,
        "startup_ms": startup.as_secs_f64() * 1000.0,
        "get_status_per_s": status_rps,
        "check_per_s": check.per_s,
        "check_p50_ms": check.p50_ms,
        "check_p99_ms": check.p99_ms,
        "check_not_ok": check.not_ok,
        "check_how": check.how,
        "get_status_how": status_how,
        "sign_in_client": "reqwest in the load generator, one client and cookie jar per user",
        "existing_people_drawn_at_random": options.prefill_users > 0,
    });
    println!("{json}");
    // The servers stop before their database is dropped.
    drop(servers);
    drop(database);
}
