//! The test harness: the real router on an ephemeral port, a temporary database, and the
//! development provider on a port of its own, driven by a cookie-keeping HTTP client.

pub mod api;
pub mod apple;
pub mod binary;
pub mod db;
pub mod entra;
pub mod github;
pub mod oidc;
pub mod pg_cluster;
pub mod stub_provider;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::Router;
use figment::Figment;
use loginwith::{
    App,
    auth::{OperationEvents, Provider},
    config::{Config, Environment},
    dev_provider::{DevProvider, DevProviderSettings, Fault, Faults},
    shutdown::Shutdown,
    web::Sealer,
};
use reqwest::{StatusCode, header::LOCATION, redirect::Policy};
use sqlx::AnyPool;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use url::Url;

pub const CLIENT_ID: &str = "test-app-id";
pub const CLIENT_SECRET: &str = "test-app-secret-0123456789";

/// How long a test waits for a condition before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestEnv {
    pub app_url: String,
    pub dev: Arc<DevProvider>,
    pub dev_url: String,
    /// A separate connection pool onto the app's database (the SQLite file or the test's
    /// PostgreSQL database), for assertions. SQL written for it uses `$1` placeholders, which
    /// both databases read.
    pub db: AnyPool,
    pub config: Config,
    /// The app's router, to call without a connection (after shutdown has closed the port).
    pub router: Router,
    /// Who waits for which operation (long polls).
    pub events: Arc<OperationEvents>,
    /// Sees shutdown begin.
    pub shutdown: Shutdown,
    /// Seals the pre-sign-in cookie, as the app does: tests open one, change it, seal it.
    pub sealer: Sealer,
    /// `http://ADDR` of the metrics listener (`metrics.bind`, an ephemeral port unless the
    /// test sets it), `None` with metrics off.
    pub metrics_url: Option<String>,
    /// Completes `App::serve`'s shutdown future, as SIGTERM does in the binary.
    stop: Option<oneshot::Sender<()>>,
    /// `App::serve`, which ends once shutdown has drained.
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database this instance created, dropped with it.
    _database: Option<db::TestDb>,
}

/// When set, whole-flow tests run on a fresh PostgreSQL database each (on the server
/// `LOGINWITH_TEST_DATABASE_URL` names) instead of a SQLite file. `.ci/run` runs the suite
/// both ways.
pub const FLOWS_ON_POSTGRES: &str = "LOGINWITH_TEST_FLOWS_ON_POSTGRES";

/// A fresh database for a new app: a SQLite file in `dir`, or a PostgreSQL database when
/// [`FLOWS_ON_POSTGRES`] says so.
async fn fresh_database(dir: &std::path::Path) -> (String, Option<db::TestDb>) {
    if std::env::var_os(FLOWS_ON_POSTGRES).is_some() {
        let database = db::TestDb::postgres().await.unwrap_or_else(|| {
            panic!(
                "{FLOWS_ON_POSTGRES} needs {} to name a server",
                db::TEST_DATABASE_URL
            )
        });
        return (database.url.clone(), Some(database));
    }
    let path = dir.join("nested").join("loginwith.db");
    (format!("sqlite://{}", path.display()), None)
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::start_with(|f| f).await
    }

    pub async fn start_with(tweak: impl FnOnce(Figment) -> Figment) -> Self {
        Self::start_in(Environment::Development, tweak).await
    }

    /// Starts in `environment`; production also needs `tweak` to satisfy its rules.
    pub async fn start_in(
        environment: Environment,
        tweak: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, database) = fresh_database(dir.path()).await;
        let mut env = Self::start_on(dir, database_url, environment, Vec::new(), tweak).await;
        env._database = database;
        env
    }

    /// Starts an app on a database file of the caller's choosing (e.g. a second instance).
    pub async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        environment: Environment,
        extra_providers: Vec<Arc<dyn Provider>>,
        tweak: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        Self::start_built(dir, database_url, environment, |_| extra_providers, tweak).await
    }

    /// Starts with more providers beside Facebook, made once the app's URL is known (their
    /// redirect URIs are `{app_url}/callback/{id}`).
    pub async fn start_with_providers(
        make: impl FnOnce(&str) -> Vec<Arc<dyn Provider>>,
        tweak: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, database) = fresh_database(dir.path()).await;
        let mut env =
            Self::start_built(dir, database_url, Environment::Development, make, tweak).await;
        env._database = database;
        env
    }

    async fn start_built(
        dir: tempfile::TempDir,
        database_url: String,
        environment: Environment,
        make_providers: impl FnOnce(&str) -> Vec<Arc<dyn Provider>>,
        tweak: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        let app_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
        let app_addr = app_listener.local_addr().expect("app addr");
        let app_url = format!("http://{app_addr}");

        let dev_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind dev");
        let dev_url = format!("http://{}", dev_listener.local_addr().expect("dev addr"));
        let dev = DevProvider::new(
            DevProviderSettings {
                issuer: Some(dev_url.clone()),
                ..dev_provider_settings(&app_url)
            },
            Faults::default(),
        );
        let dev_router = dev.router();
        tokio::spawn(async move { axum::serve(dev_listener, dev_router).await });

        let figment = Config::defaults_figment()
            .merge(("server.public_url", &app_url))
            .merge(("server.bind", app_addr.to_string()))
            .merge(("database.url", &database_url))
            .merge(("providers.facebook.client_id", CLIENT_ID))
            .merge(("providers.facebook.client_secret", CLIENT_SECRET))
            .merge((
                "providers.facebook.authorize_url",
                format!("{dev_url}/dialog/oauth"),
            ))
            .merge((
                "providers.facebook.token_url",
                format!("{dev_url}/oauth/access_token"),
            ))
            .merge(("providers.facebook.api_url", &dev_url))
            .merge(("providers.facebook.issuer", &dev_url))
            .merge(("dev_provider.enabled", false))
            .merge(("login.exchange_timeout_secs", 3))
            // Never the fixed default port: tests run side by side.
            .merge(("metrics.bind", "127.0.0.1:0"));
        let config =
            Config::from_figment(tweak(figment), environment).expect("test configuration is valid");
        let app = App::build_with_providers(&config, app_addr, make_providers(&app_url))
            .await
            .expect("app builds");
        let router = app.router();
        let events = app.events();
        let shutdown = app.shutdown_handle();
        let sealer = app.sealer();
        let metrics_url = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let (stop, stopped) = oneshot::channel::<()>();
        // Dropping `stop` with the environment also shuts down, as the runtime ends anyway.
        let server = tokio::spawn(app.serve(app_listener, async move {
            let _ = stopped.await;
        }));

        sqlx::any::install_default_drivers();
        let db = AnyPool::connect(&database_url)
            .await
            .expect("open the test database");
        Self {
            app_url,
            dev,
            dev_url,
            db,
            config,
            router,
            events,
            shutdown,
            sealer,
            metrics_url,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
            _database: None,
        }
    }

    /// Begins shutdown the way a signal does: through `App::serve`'s shutdown future.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `App::serve` to return (after [`Self::begin_shutdown`]).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        let server = self.server.take().expect("the server runs");
        tokio::time::timeout(PATIENCE, server)
            .await
            .expect("the server stops")
            .expect("the server task")
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.app_url)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.dev.set_faults(Faults {
            fault,
            ..Faults::default()
        });
    }

    pub fn set_latency(&self, latency: Duration) {
        self.dev.set_faults(Faults {
            latency,
            fault: Fault::None,
        });
    }

    /// A sign-in as Ada whose exchange hangs (the provider never answers, and the exchange
    /// timeout is a minute): the app, and the browser waiting on the preloader.
    pub async fn with_a_hanging_sign_in() -> (Self, Browser) {
        let env = Self::start_with(|f| f.merge(("login.exchange_timeout_secs", 60))).await;
        env.set_fault(Fault::Hang);
        let browser = env.browser();
        browser.login_until_preloader(ADA).await;
        (env, browser)
    }

    /// `GET /auth/check` with `browser`'s session cookie (on this instance, whichever the
    /// browser signed in on): 200 signed in, 401 not.
    pub async fn auth_check(&self, browser: &Browser) -> StatusCode {
        let cookie = browser.cookie("loginwith_session").unwrap_or_default();
        reqwest::Client::new()
            .get(format!("{}/auth/check", self.app_url))
            .header(
                reqwest::header::COOKIE,
                format!("loginwith_session={cookie}"),
            )
            .send()
            .await
            .expect("check")
            .status()
    }

    /// The ids of the signed-in sessions, in the order of their people.
    pub async fn signed_in_session_ids(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT id FROM session WHERE user_id IS NOT NULL ORDER BY user_id, id")
            .fetch_all(&self.db)
            .await
            .expect("signed-in sessions")
    }

    /// `(provider, provider_user_id, first_name, last_name, email)` of every identity, in
    /// the order they were made.
    pub async fn identities(&self) -> Vec<(String, String, String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT i.provider, i.provider_user_id, p.first_name, p.last_name, p.email
             FROM user_identity i JOIN user_profile p ON p.id = i.user_profile_id ORDER BY i.id",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .expect("count rows")
    }

    /// `count` browsers sign `person` in at the same time; every one must end greeted.
    pub async fn sign_in_in_parallel(&self, count: usize, person: Person<'static>) {
        let logins: Vec<_> = (0..count)
            .map(|_| {
                let browser = self.browser();
                tokio::spawn(async move { browser.login(person).await })
            })
            .collect();
        for login in logins {
            let home = login.await.expect("the sign-in task");
            assert!(home.contains(&format!("Hi, {}!", person.first)), "{home}");
        }
    }

    /// Rows in the tables a rejected request must not touch.
    pub async fn snapshot(&self) -> [i64; 3] {
        [
            self.count("user_profile").await,
            self.count("user_identity").await,
            self.count("async_operation").await,
        ]
    }

    /// Decodes this app's one session's data, lets `change` edit it, and writes it back:
    /// how tests age a session or a pending state without waiting.
    pub async fn edit_session(
        &self,
        change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) {
        let (id, data): (String, String) = sqlx::query_as("SELECT id, data FROM session")
            .fetch_one(&self.db)
            .await
            .expect("exactly one session");
        let mut data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&data).expect("session data");
        change(&mut data);
        // The columns the store copies from the sign-in on every write, as it would.
        let sign_in = data.get("signed_in");
        let since_ms = sign_in.and_then(|s| s.get("since_ms")?.as_i64());
        let provider = sign_in.and_then(|s| Some(s.get("provider")?.as_str()?.to_owned()));
        sqlx::query("UPDATE session SET data = $1, signed_in_at = $2, provider = $3 WHERE id = $4")
            .bind(serde_json::Value::Object(data).to_string())
            .bind(since_ms)
            .bind(provider)
            .bind(id)
            .execute(&self.db)
            .await
            .expect("write session");
    }

    /// `browser`'s pre-sign-in cookie opened (as JSON), changed by `change`, sealed again and
    /// put back in its jar: how tests age a started sign-in without waiting.
    pub async fn edit_pre_sign_in(
        &self,
        browser: &Browser,
        change: impl FnOnce(&mut serde_json::Value),
    ) {
        let name = self.config.pre_sign_in_cookie_name();
        let value = browser
            .cookie(&name)
            .expect("the browser has a pre-sign-in cookie");
        let mut contents = self.open_pre_sign_in(&value).await;
        change(&mut contents);
        let sealed = self.sealer.seal(&name, &contents.to_string());
        browser.set_cookie(&format!("{name}={sealed}; Path=/"));
    }

    /// A session row of nobody, as sessions were before a sign-in in progress left them (rows
    /// of such sessions stay until they expire): its id, for a browser to bring.
    pub async fn anonymous_session(&self) -> String {
        let id = tower_sessions::session::Id::default().to_string();
        sqlx::query("INSERT INTO session (id, data, expires_at) VALUES ($1, '{}', $2)")
            .bind(&id)
            .bind(loginwith::store::now_ms() + 60 * 60 * 1000)
            .execute(&self.db)
            .await
            .expect("an anonymous session");
        id
    }

    /// A sign-in whose exchange finished `ok` for a new person, written as the app writes it,
    /// and the `Cookie` header of the browser waiting for it (its sealed pre-sign-in cookie):
    /// `/success` with it signs in. For environments whose provider a test cannot reach
    /// (production behind TLS).
    pub async fn finished_sign_in(&self) -> String {
        let now = loginwith::store::now_ms();
        let user: i64 = sqlx::query_scalar(
            "INSERT INTO user_profile (first_name, last_name, email, created_at, updated_at)
             VALUES ('Ada', 'Lovelace', 'ada@example.com', $1, $1) RETURNING id",
        )
        .bind(now)
        .fetch_one(&self.db)
        .await
        .expect("a person");
        let operation: i64 = sqlx::query_scalar(
            "INSERT INTO async_operation
             (async_operation_status_id, provider, user_profile_id, created_at, updated_at)
             VALUES (2, 'facebook', $1, $2, $2) RETURNING id",
        )
        .bind(user)
        .bind(now)
        .fetch_one(&self.db)
        .await
        .expect("an operation");
        let name = self.config.pre_sign_in_cookie_name();
        let sealed = self.sealer.seal(
            &name,
            &serde_json::json!({ "w": { "o": operation, "p": "facebook" } }).to_string(),
        );
        format!("{name}={sealed}")
    }

    /// A pre-sign-in cookie's value opened, as JSON (its short keys: `s` the started
    /// sign-ins, each with `s` state, `v` verifier, `t` issued at; `w` the operation waited
    /// for).
    pub async fn open_pre_sign_in(&self, value: &str) -> serde_json::Value {
        let name = self.config.pre_sign_in_cookie_name();
        let plain = self
            .sealer
            .open(&name, value)
            .await
            .expect("the cookie opens");
        serde_json::from_str(&plain).expect("pre-sign-in contents")
    }

    /// `(status code, error)` of the newest operation.
    pub async fn last_operation(&self) -> (String, Option<String>) {
        sqlx::query_as(
            "SELECT s.code, o.error FROM async_operation o
             JOIN async_operation_status s ON s.id = o.async_operation_status_id
             ORDER BY o.id DESC LIMIT 1",
        )
        .fetch_one(&self.db)
        .await
        .expect("an operation exists")
    }
}

/// A person at a browser: keeps cookies, follows no redirects (each step is checked).
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    base: String,
    /// The cookie jar, when the browser was made with one of ours.
    jar: Option<Arc<reqwest::cookie::Jar>>,
}

/// A test user as typed on the consent page.
#[derive(Clone, Copy)]
pub struct Person<'a> {
    pub first: &'a str,
    pub last: &'a str,
    pub email: &'a str,
}

pub const ADA: Person<'static> = Person {
    first: "Ada",
    last: "Lovelace",
    email: "ada@example.com",
};

impl Browser {
    pub fn new(base: &str) -> Self {
        Self::with_jar(base, Arc::new(reqwest::cookie::Jar::default()))
    }

    /// A browser whose cookies are `jar` (e.g. with planted cookies).
    pub fn with_jar(base: &str, jar: Arc<reqwest::cookie::Jar>) -> Self {
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .build()
            .expect("client");
        Self {
            jar: Some(jar),
            ..Self::with_client(base, client)
        }
    }

    /// A browser that says it is `user_agent` (a real browser's header), with a jar.
    pub fn with_user_agent(base: &str, user_agent: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .user_agent(user_agent)
            .build()
            .expect("client");
        Self {
            jar: Some(jar),
            ..Self::with_client(base, client)
        }
    }

    /// A browser around a client of the test's making.
    pub fn with_client(base: &str, client: reqwest::Client) -> Self {
        Self {
            client,
            base: base.to_owned(),
            jar: None,
        }
    }

    /// The value of the cookie `name` this browser would send to the app.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = Url::parse(&self.base).expect("base URL");
        let header = self.jar.as_ref()?.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    }

    /// Puts `set_cookie` (a `Set-Cookie` value) into this browser's jar, for the app's URL.
    pub fn set_cookie(&self, set_cookie: &str) {
        let url = Url::parse(&self.base).expect("base URL");
        self.jar
            .as_ref()
            .expect("a browser with a jar")
            .add_cookie_str(set_cookie, &url);
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    /// `method` (`"PUT"`, `"DELETE"`, …) on `path`, with nothing in the body.
    pub async fn request(&self, method: &str, path: &str) -> reqwest::Response {
        self.client
            .request(method.parse().expect("an HTTP method"), self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST request")
    }

    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// `/authorize/facebook`, returning the dialog URL it redirects to.
    pub async fn start_login(&self) -> Url {
        let response = self.get("/authorize/facebook").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        Url::parse(location(&response)).expect("dialog URL")
    }

    /// Shows the consent page, then submits its form as the person would. Returns the
    /// callback URL the provider redirects to (without Facebook's `#_=_`).
    pub async fn consent(&self, dialog: &Url, person: Person<'_>, decision: &str) -> String {
        let page = self.get(dialog.as_str()).await;
        assert_eq!(page.status(), StatusCode::OK, "consent page shows");
        let response = submit_consent(&self.client, dialog, person, decision).await;
        let back = location(&response);
        back.split('#').next().unwrap_or(back).to_owned()
    }

    /// A whole sign-in as Ada through the Facebook stand-in, up to the signed-in home's
    /// redirect; returns the pre-sign-in cookie the browser had just before it (the
    /// callback's, which `/success` removed), for requests that arrive late with it.
    pub async fn sign_in_keeping_pre_sign_in_cookie(&self) -> String {
        let dialog = self.start_login().await;
        let callback = self.consent(&dialog, ADA, "allow").await;
        let response = self.get(&callback).await;
        let old = pre_sign_in_cookie(&response).expect("the callback seals the operation in");
        assert_eq!(self.wait_status().await, "ok");
        assert_eq!(location(&self.get("/success").await), "/");
        old
    }

    /// "Add {provider}" on "Sign-in methods", through a stand-in that approves at once, to
    /// the finished link's `/account`.
    pub async fn link_through_stand_in(&self, provider: &str) {
        let token = self.csrf_token_on("/account").await;
        let response = self
            .post_form(
                &format!("/account/link/{provider}"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        // The stand-in approves at once and sends the browser back.
        let response = self.get(location(&response)).await;
        let callback = location(&response).to_owned();
        let response = self.get(&callback).await;
        assert_eq!(location(&response), "/preloader");
        assert_eq!(self.wait_status().await, "ok");
        let response = self.get("/success").await;
        assert_eq!(location(&response), "/account");
    }

    /// Polls `/get-status` until it is no longer `pending`.
    pub async fn wait_status(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.text("/get-status").await;
            if body != "pending" {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "still pending after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Authorize, consent, callback: up to the preloader.
    pub async fn login_until_preloader(&self, person: Person<'_>) {
        let dialog = self.start_login().await;
        let callback = self.consent(&dialog, person, "allow").await;
        let response = self.get(&callback).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/preloader");
    }

    /// `/authorize/{provider}` → a stand-in at `stand_in` that approves at once →
    /// `/callback/{provider}` → `/preloader` (GitHub's and the OpenID Connect stand-ins).
    pub async fn until_preloader_through(&self, provider: &str, stand_in: &str) {
        let response = self.get(&format!("/authorize/{provider}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let dialog = location(&response).to_owned();
        assert!(dialog.starts_with(stand_in), "{dialog}");
        let response = self.get(&dialog).await;
        assert!(response.status().is_redirection(), "{}", response.status());
        let callback = location(&response).to_owned();
        let response = self.get(&callback).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/preloader");
    }

    /// A whole successful sign-in; returns the home page's HTML afterwards.
    pub async fn login(&self, person: Person<'_>) -> String {
        self.login_until_preloader(person).await;
        assert_eq!(self.wait_status().await, "ok");
        let response = self.get("/success").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/");
        let (status, home) = self.text("/").await;
        assert_eq!(status, StatusCode::OK);
        home
    }

    /// The logout form's CSRF token from the signed-in home page.
    pub async fn csrf_token(&self) -> String {
        self.csrf_token_on("/").await
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf_token_on(&self, path: &str) -> String {
        let (_, home) = self.text(path).await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = home.find(marker).expect("logout form on the page") + marker.len();
        let end = start + home[start..].find('"').expect("end of token");
        home[start..end].to_owned()
    }
}

/// The value of query parameter `name` in `url` (a dialog or callback URL).
/// The configuration of a production site behind a TLS proxy: the public URL
/// `https://login.example.test`, secure cookies, and Facebook's endpoints at
/// `https://fb.example.test` instead of the development provider's.
pub fn behind_tls(figment: Figment) -> Figment {
    figment
        .merge(("server.public_url", "https://login.example.test"))
        .merge(("session.secure", true))
        .merge((
            "providers.facebook.authorize_url",
            "https://fb.example.test/dialog",
        ))
        .merge((
            "providers.facebook.token_url",
            "https://fb.example.test/token",
        ))
        .merge(("providers.facebook.api_url", "https://fb.example.test"))
        .merge(("providers.facebook.issuer", "https://fb.example.test"))
}

/// Asserts that `page` holds `first` and, after it, `then` (buttons in configuration order).
pub fn assert_in_order(page: &str, first: &str, then: &str) {
    let at_first = page
        .find(first)
        .unwrap_or_else(|| panic!("no {first}: {page}"));
    let at_then = page
        .find(then)
        .unwrap_or_else(|| panic!("no {then}: {page}"));
    assert!(at_first < at_then, "{first} comes after {then}: {page}");
}

/// The development provider as the app at `app_url` is registered with it (as Facebook):
/// the test app's credentials, its callback, the consent page shown, no `iss` sent.
pub fn dev_provider_settings(app_url: &str) -> DevProviderSettings {
    DevProviderSettings {
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        redirect_uris: vec![format!("{app_url}/callback/facebook")],
        auto_approve: false,
        issuer: None,
    }
}

/// The consent form of the stand-in at `dialog` posted as a browser would: the dialog's own
/// parameters and `fields` (a person, a preset, a decision, boxes ticked).
pub async fn post_consent(
    client: &reqwest::Client,
    dialog: &Url,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = dialog.query_pairs().into_owned().collect();
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut endpoint = dialog.clone();
    endpoint.set_query(None);
    client
        .post(endpoint)
        .form(&form)
        .send()
        .await
        .expect("consent POST")
}

/// Submits the development provider's consent form for `dialog` (its query, then what the
/// person typed and pressed), without following the redirect it answers with, which must
/// be a 303.
pub async fn submit_consent(
    client: &reqwest::Client,
    dialog: &Url,
    person: Person<'_>,
    decision: &str,
) -> reqwest::Response {
    let response = post_consent(
        client,
        dialog,
        &[
            ("first_name", person.first),
            ("last_name", person.last),
            ("email", person.email),
            ("decision", decision),
        ],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "consent redirects back"
    );
    response
}

pub fn param(url: &str, name: &str) -> String {
    Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// The session id a response sets, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .cookies()
        .find(|c| c.name() == "loginwith_session")
        .map(|c| c.value().to_owned())
}

/// A client that keeps no cookies and follows no redirect: for requests that carry exactly the
/// `Cookie` header a test gives them (a late tab, an attacker holding copied values).
pub fn cookieless_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// The sign-in key a response gives the browser, if it gives one.
pub fn pre_sign_in_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .cookies()
        .find(|c| c.name() == "loginwith_session_signin")
        .map(|c| c.value().to_owned())
}

pub fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location")
}

/// Waits until `check` holds, failing after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An answer read off a raw connection: `status` is `None` when nothing came back.
pub struct RawAnswer {
    pub status: Option<u16>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// Sends `request` byte for byte on a new connection and reads until the server closes it:
/// for what HTTP clients will not send (a chunked body of the test's making, a 1 MB request
/// line). The request should say `Connection: close`. It is written from a thread of its
/// own, so that an answer sent before the server read it all is still read; a server that
/// stops reading may reset the connection, so write errors are expected and ignored.
pub async fn raw_exchange(app_url: &str, request: Vec<u8>) -> RawAnswer {
    use std::io::{Read, Write};
    let addr = app_url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        let mut writer = stream.try_clone().expect("clone the stream");
        let writing = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        let mut answer = Vec::new();
        // A reset after the answer ends the read with an error; what came before is kept.
        let _ = stream.read_to_end(&mut answer);
        let _ = writing.join();
        answer
    })
    .await
    .expect("the raw exchange");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            value.trim().parse().expect("header value"),
        );
    }
    RawAnswer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A form POST to `path` whose `len`-byte body is sent in chunks, with no length announced.
pub fn chunked_form_post(path: &str, len: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let body = format!("csrf_token={}", "x".repeat(len.saturating_sub(11)));
    for chunk in body.as_bytes().chunks(4096) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Reads the captured log after a whole sign-in (it must hold the exchange's success,
    /// or the capture proves nothing) and asserts it holds none of `secrets`, each named.
    pub fn assert_holds_none(&self, secrets: &[(&str, &str)]) {
        let log = self.text();
        assert!(
            log.contains("sign-in exchange succeeded"),
            "the capture works: {} bytes",
            log.len()
        );
        for (what, secret) in secrets {
            assert!(!log.contains(secret), "the log holds the {what}");
        }
    }

    /// The capture of everything this test process logs at TRACE level (this crate, oauth2,
    /// reqwest, hyper, sqlx, the session layer, axum): what the no-secret-in-the-log tests
    /// read. The subscriber is global, so the first call installs it and every call returns
    /// the same capture; tests in one binary share it, and each looks for its own lines. The
    /// binary's own filter of lines logged elsewhere (`logging::LoggedElsewhere`) is on too,
    /// for a database wait of one second (what the outage tests set).
    pub fn install_trace() -> Self {
        static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
        CAPTURE.get_or_init(Self::install).clone()
    }

    fn install() -> Self {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let capture = Self::default();
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .with_env_filter(
                "loginwith=trace,oauth2=trace,reqwest=trace,hyper_util=trace,sqlx=trace,\
                 tower_sessions=trace,tower_sessions_core=trace,tower_http=trace,axum=trace",
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .with(loginwith::logging::LoggedElsewhere::new(
                Duration::from_secs(1),
            ))
            .init();
        capture
    }
}

/// A `tracing` writer that keeps everything written, for tests that read the log.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
