//! The GitHub provider pointed at the GitHub stand-in on a port of its own, beside the app.

use std::sync::Arc;

use figment::Figment;

use loginwith::dev_provider::{
    Fault, Faults,
    github::{GitHubEmail, GitHubStandIn, GitHubStandInSettings, GitHubUser},
};
use tokio::net::TcpListener;

use super::{Browser, TestEnv, location};

pub const GITHUB_CLIENT_ID: &str = "Iv1.test-github-app";
pub const GITHUB_CLIENT_SECRET: &str = "github-secret-0123456789abcdef";

/// Ada on GitHub: a numeric id, a login she may change, a name, and two addresses of which
/// the primary one is verified.
pub fn ada() -> GitHubUser {
    GitHubUser {
        id: 1_234_567,
        login: "ada-l".to_owned(),
        name: Some("Ada Lovelace".to_owned()),
        emails: vec![
            email("ada@work.example", false, true),
            email("ada@example.com", true, true),
        ],
        ..GitHubUser::default()
    }
}

pub fn email(address: &str, primary: bool, verified: bool) -> GitHubEmail {
    GitHubEmail {
        email: address.to_owned(),
        primary,
        verified,
    }
}

pub struct GitHubEnv {
    pub env: TestEnv,
    pub github: Arc<GitHubStandIn>,
    pub github_url: String,
}

impl GitHubEnv {
    pub async fn start() -> Self {
        Self::start_with(|f| f).await
    }

    /// Starts with the app's configuration changed by `tweak`. The GitHub provider is
    /// configured as people configure it (`[providers.github]`), so the factory builds it.
    pub async fn start_with(tweak: impl FnOnce(Figment) -> Figment) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let github_url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut stand_in = None;
        let configured = github_url.clone();
        let env = TestEnv::start_with_providers(
            |app_url| {
                let github = GitHubStandIn::new(
                    GitHubStandInSettings {
                        client_id: GITHUB_CLIENT_ID.to_owned(),
                        client_secret: GITHUB_CLIENT_SECRET.to_owned(),
                        redirect_uri: format!("{app_url}/callback/github"),
                    },
                    ada(),
                );
                let router = github.router();
                tokio::spawn(async move { axum::serve(listener, router).await });
                stand_in = Some(github);
                Vec::new()
            },
            move |f| {
                tweak(
                    f.merge(("providers.github.client_id", GITHUB_CLIENT_ID))
                        .merge(("providers.github.client_secret", GITHUB_CLIENT_SECRET))
                        .merge((
                            "providers.github.authorize_url",
                            format!("{configured}/login/oauth/authorize"),
                        ))
                        .merge((
                            "providers.github.token_url",
                            format!("{configured}/login/oauth/access_token"),
                        ))
                        .merge(("providers.github.api_url", format!("{configured}/"))),
                )
            },
        )
        .await;
        Self {
            env,
            github: stand_in.expect("the stand-in was made"),
            github_url,
        }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.github.set_faults(Faults {
            fault,
            ..Faults::default()
        });
    }

    /// `/authorize/github` → the stand-in (which approves at once) → `/callback/github` →
    /// `/preloader`.
    pub async fn login_until_preloader(&self, browser: &Browser) {
        browser
            .until_preloader_through("github", &self.github_url)
            .await;
    }

    /// A whole successful sign-in; returns the home page's HTML afterwards.
    pub async fn login(&self, browser: &Browser) -> String {
        self.login_until_preloader(browser).await;
        assert_eq!(browser.wait_status().await, "ok");
        let response = browser.get("/success").await;
        assert_eq!(location(&response), "/");
        browser.text("/").await.1
    }
}
