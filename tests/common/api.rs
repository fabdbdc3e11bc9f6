//! X or Discord configured as people configure them (`[providers.x]`, `[providers.discord]`),
//! pointed at the stand-in on a port of its own beside the app.

use std::sync::Arc;

use figment::Figment;
use loginwith::dev_provider::{
    Fault, Faults,
    api_stand_in::{ApiKind, ApiStandIn, ApiStandInSettings, ApiUser},
};
use tokio::net::TcpListener;

use super::{Browser, TestEnv, location};

/// X's OAuth 2.0 client ids are base64-ish text; Discord's are snowflakes (digits).
pub fn client_id(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::X => "M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ",
        ApiKind::Discord => "1234567890123456789",
    }
}

pub const CLIENT_SECRET: &str = "api-secret:with+reserved/characters=";

/// The table's name and so the path segment.
pub fn name(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::X => "x",
        ApiKind::Discord => "discord",
    }
}

/// Ada as each service has her: a numeric id, a handle she may change, a display name with
/// markup and an emoji, and a verified address.
pub fn ada(kind: ApiKind) -> ApiUser {
    ApiUser {
        id: match kind {
            ApiKind::X => "1448762730413473792".to_owned(),
            ApiKind::Discord => "80351110224678912".to_owned(),
        },
        name: Some("Ada <i>Lovelace</i> 🧮".to_owned()),
        username: "ada_l".to_owned(),
        email: Some("ada@example.com".to_owned()),
        verified: true,
    }
}

pub struct ApiEnv {
    pub env: TestEnv,
    pub kind: ApiKind,
    pub stand_in: Arc<ApiStandIn>,
    pub url: String,
}

impl ApiEnv {
    pub async fn start(kind: ApiKind) -> Self {
        Self::start_with(kind, |f| f).await
    }

    pub async fn start_with(kind: ApiKind, tweak: impl FnOnce(Figment) -> Figment) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut made = None;
        let base = url.clone();
        let table = name(kind);
        let env = TestEnv::start_with_providers(
            |app_url| {
                let stand_in = ApiStandIn::new(
                    ApiStandInSettings {
                        kind,
                        client_id: client_id(kind).to_owned(),
                        client_secret: CLIENT_SECRET.to_owned(),
                        redirect_uri: format!("{app_url}/callback/{table}"),
                    },
                    ada(kind),
                );
                let router = stand_in.router();
                tokio::spawn(async move { axum::serve(listener, router).await });
                made = Some(stand_in);
                Vec::new()
            },
            move |f| {
                let [authorize, token, api] = kind.paths();
                let key = |k: &str| format!("providers.{table}.{k}");
                tweak(
                    f.merge((key("client_id"), client_id(kind)))
                        .merge((key("client_secret"), CLIENT_SECRET))
                        .merge((key("authorize_url"), format!("{base}{authorize}")))
                        .merge((key("token_url"), format!("{base}{token}")))
                        .merge((key("api_url"), format!("{base}{api}"))),
                )
            },
        )
        .await;
        Self {
            env,
            kind,
            stand_in: made.expect("the stand-in was made"),
            url,
        }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.stand_in.set_faults(Faults {
            fault,
            ..Faults::default()
        });
    }

    pub async fn login_until_preloader(&self, browser: &Browser) {
        browser
            .until_preloader_through(name(self.kind), &self.url)
            .await;
    }

    /// A whole successful sign-in; the home page's HTML afterwards.
    pub async fn login(&self, browser: &Browser) -> String {
        self.login_until_preloader(browser).await;
        assert_eq!(browser.wait_status().await, "ok");
        let response = browser.get("/success").await;
        assert_eq!(location(&response), "/");
        browser.text("/").await.1
    }
}
