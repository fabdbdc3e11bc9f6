//! The login load benchmark.
//!
//! Starts the release binary (or uses a running one with `--url`), a development provider
//! of its own in this process (auto-approve, configurable latency), and N virtual users, each
//! with its own cookie jar, looping over complete sign-ins:
//! `/authorize/facebook` → dialog → `/callback/facebook` → `/preloader` →
//! `/get-status?wait=30` until `ok` → `/success` → `/` (the greeting) → `POST /logout`.
//!
//! ```text
//! cargo build --release
//! cargo bench --bench login -- --users 64 --duration 60 --latency-ms 0
//! ```
//!
//! Prints a table and one JSON line. See BENCHMARKS.md for the figures on this machine.

use std::{
    collections::BTreeMap,
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
         [--latency-ms MS] [--status-seconds SECS] [--prefill-users N] [--bin PATH]"
    );
    std::process::exit(2)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The server under test, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the server process, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        (ticks(11) + ticks(12)) / clock_ticks_per_second()
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

fn clock_ticks_per_second() -> f64 {
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
    let started = Instant::now();
    let child = Command::new(&options.bin)
        .env("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("LOGINWITH_SERVER__PUBLIC_URL", &url)
        .env("LOGINWITH_DATABASE__URL", database_url)
        .env("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", CLIENT_ID)
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET",
            CLIENT_SECRET,
        )
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__AUTHORIZE_URL",
            format!("{dev_url}/dialog/oauth"),
        )
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__TOKEN_URL",
            format!("{dev_url}/oauth/access_token"),
        )
        .env("LOGINWITH_PROVIDERS__FACEBOOK__API_URL", dev_url)
        .env("LOGINWITH_DEV_PROVIDER__ENABLED", "false")
        .env("LOGINWITH_METRICS__BIND", "127.0.0.1:0")
        .env("LOGINWITH_LIMITS__AUTH_PER_MINUTE", "100000000")
        .env("LOGINWITH_LIMITS__AUTH_BURST", "100000000")
        .env("LOGINWITH_LIMITS__MAX_CONCURRENT_EXCHANGES", "100000")
        .env("RUST_LOG", "warn")
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            usage(&format!(
                "cannot start {} ({e}); run `cargo build --release` first",
                options.bin.display()
            ))
        });
    let server = Server { child, url };
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

/// Inserts `count` people with Facebook identities in one transaction (the "existing
/// users" of the data-growth run), before the server starts.
async fn prefill(database_url: &str, count: u64) {
    if count == 0 {
        return;
    }
    let store = Store::connect(database_url)
        .await
        .expect("open the database");
    store
        .insert_people(count)
        .await
        .expect("insert the existing people");
    store.close().await;
}

#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn fail(&self, kind: String) {
        *self.failures.lock().unwrap().entry(kind).or_default() += 1;
    }
}

fn client(email: &str, base: &str) -> reqwest::Client {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    // The auto-approving dialog signs in as this person.
    jar.add_cookie_str(&format!("dev_user={email}"), &base.parse().expect("url"));
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(Policy::none())
        .pool_max_idle_per_host(4)
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)?
        .to_str()
        .ok()
        .map(|l| l.split('#').next().unwrap_or(l).to_owned())
}

/// One complete sign-in and sign-out. Returns callback → signed-in page, or the step that failed.
async fn sign_in_once(http: &reqwest::Client, base: &str) -> Result<Duration, String> {
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
        get(format!("{base}/authorize/facebook")).await?,
    )?;
    let callback = expect_redirect("dialog", get(dialog).await?)?;
    let started = Instant::now();
    let next = expect_redirect("callback", get(callback).await?)?;
    if next != "/preloader" {
        return Err(format!("callback: went to {next}"));
    }
    let preloader = get(format!("{base}/preloader")).await?;
    if preloader.status() == StatusCode::OK {
        loop {
            let status = get(format!("{base}/get-status?wait=30")).await?;
            let body = status
                .text()
                .await
                .map_err(|_| "get-status: body".to_owned())?;
            match body.as_str() {
                "ok" => break,
                "pending" => continue,
                other => return Err(format!("exchange: {other}")),
            }
        }
    } else if location(&preloader).as_deref() != Some("/success") {
        return Err(format!("preloader: HTTP {}", preloader.status().as_u16()));
    }
    let home = expect_redirect("success", get(format!("{base}/success")).await?)?;
    if home != "/" {
        return Err(format!("success: went to {home}"));
    }
    let page = get(format!("{base}/"))
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
        .post(format!("{base}/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .map_err(|e| format!("transport: {}", e.without_url()))?;
    expect_redirect("logout", logout)?;
    Ok(elapsed)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// Sessions whose operation is finished (`ok`), for the /get-status throughput phase, with
/// their cookie headers.
async fn finished_sessions(base: &str, count: usize) -> Vec<(reqwest::Client, String)> {
    use reqwest::cookie::CookieStore as _;
    let mut sessions = Vec::new();
    for i in 0..count {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let url: reqwest::Url = base.parse().expect("url");
        jar.add_cookie_str(&format!("dev_user=status{i}@bench.example"), &url);
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
        loop {
            let response = http
                .get(format!("{base}/get-status?wait=30"))
                .send()
                .await
                .expect("status");
            if response.text().await.expect("body") == "ok" {
                break;
            }
        }
        let cookie = jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .expect("session cookie");
        sessions.push((http, cookie));
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

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/bench.db", dir.path().display());
    prefill(&database_url, options.prefill_users).await;

    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let dev_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind dev");
    let dev_url = format!("http://{}", dev_listener.local_addr().expect("dev addr"));
    let dev = DevProvider::new(
        DevProviderSettings {
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            redirect_uris: vec![format!("{app_url}/callback/facebook")],
            auto_approve: true,
            issuer: None,
        },
        Faults {
            latency: options.latency,
            fault: Fault::None,
        },
    );
    let dev_router = dev.router();
    tokio::spawn(async move { axum::serve(dev_listener, dev_router).await });

    let (server, startup) = start_server(&options, &dev_url, &database_url, port).await;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = server.cpu_seconds();
    let run_started = Instant::now();
    let mut users = Vec::new();
    for i in 0..options.users {
        let (tally, stop, base) = (tally.clone(), stop.clone(), app_url.clone());
        users.push(tokio::spawn(async move {
            let http = client(&format!("user{i}@bench.example"), &base);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match sign_in_once(&http, &base).await {
                    Ok(elapsed) => {
                        latencies.push(elapsed.as_micros() as u64);
                        tally.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(kind) => tally.fail(kind),
                }
            }
            tally.latencies_us.lock().unwrap().extend(latencies);
        }));
    }
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    for user in users {
        let _ = user.await;
    }
    let elapsed = run_started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    let peak_rss = server.peak_rss_mib();

    let (status_rps, status_how) = status_throughput(&app_url, options.status_seconds).await;

    let completed = tally.completed.load(Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *tally.latencies_us.lock().unwrap());
    latencies.sort_unstable();
    let injected_ms = 2.0 * options.latency.as_secs_f64() * 1000.0;
    let (p50, p95, p99) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
    let failures = tally.failures.lock().unwrap().clone();
    let failed: u64 = failures.values().sum();
    let cpu_per_sign_in_ms = if completed > 0 {
        cpu * 1000.0 / completed as f64
    } else {
        f64::NAN
    };

    println!(
        "login benchmark: {} users, {:.0} s, provider latency {} ms (token and /me each), {} existing users",
        options.users,
        elapsed,
        options.latency.as_millis(),
        options.prefill_users
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
    println!("| server CPU per sign-in (ms) | {cpu_per_sign_in_ms:.3} |");
    println!("| server peak RSS (MiB) | {peak_rss:.1} |");
    println!(
        "| start-up to first page, migrations included (ms) | {:.1} |",
        startup.as_secs_f64() * 1000.0
    );
    println!("| /get-status per second, finished operation ({status_how}) | {status_rps:.0} |");
    let json = serde_json::json!({
        "users": options.users,
        "duration_s": elapsed,
        "latency_ms": options.latency.as_millis() as u64,
        "prefill_users": options.prefill_users,
        "completed": completed,
        "sign_ins_per_s": completed as f64 / elapsed,
        "failures": failures,
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "own_p50_ms": p50 - injected_ms, "own_p95_ms": p95 - injected_ms, "own_p99_ms": p99 - injected_ms,
        "server_cpu_ms_per_sign_in": cpu_per_sign_in_ms,
        "server_peak_rss_mib": peak_rss,
        "startup_ms": startup.as_secs_f64() * 1000.0,
        "get_status_per_s": status_rps,
    });
    println!("{json}");
    drop(server);
}
