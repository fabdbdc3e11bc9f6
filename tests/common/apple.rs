//! Sign in with Apple configured as people configure it (`[providers.apple]`, the key as the
//! `.p8` text), against the development issuer's Apple mode on a port of its own: another
//! origin, as appleid.apple.com is, so that its answer is a cross-site POST.

use std::sync::Arc;

use figment::Figment;
use loginwith::dev_provider::{DevApple, DevOidc, DevOidcSettings};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use url::Url;

use super::{Browser, Person, TestEnv, cookieless_client, location, post_consent};

pub const SERVICES_ID: &str = "com.example.web";
pub const TEAM_ID: &str = "ABCDE12345";
pub const KEY_ID: &str = "XYZ987ABCD";

pub struct AppleEnv {
    pub env: TestEnv,
    /// The issuer standing in for Apple.
    pub issuer: Arc<DevOidc>,
    pub url: String,
    /// The key's PEM, as configured.
    pub pem: String,
}

/// An attribute's text with HTML's character references replaced (askama writes `&#60;`).
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The hidden fields of the first form on `html`, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split("name=\"").nth(1)?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

/// The `action` of the first form on `html`.
pub fn form_action(html: &str) -> String {
    html.split("<form ")
        .nth(1)
        .and_then(|form| form.split("action=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(unescape)
        .unwrap_or_default()
}

impl AppleEnv {
    pub async fn start(tweak: impl FnOnce(Figment) -> Figment) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (dev_apple, key) = DevApple::generate(TEAM_ID, KEY_ID, SERVICES_ID);
        let pem = key.pem.clone();
        let issuer = url.clone();
        let configured = url.clone();
        let config_pem = pem.clone();
        let mut made = None;
        let env = TestEnv::start_with_providers(
            |app_url| {
                let apple = DevOidc::with_apple(
                    DevOidcSettings {
                        issuer: issuer.clone(),
                        authorization_endpoint: format!("{issuer}/authorize"),
                        client_id: SERVICES_ID.to_owned(),
                        client_secret: String::new(),
                        redirect_uris: vec![format!("{app_url}/callback/apple")],
                        auto_approve: false,
                    },
                    Some(dev_apple),
                );
                let router = apple.router();
                tokio::spawn(async move { axum::serve(listener, router).await });
                made = Some(apple);
                Vec::new()
            },
            move |f| {
                tweak(
                    f.merge(("providers.apple.client_id", SERVICES_ID))
                        .merge(("providers.apple.team_id", TEAM_ID))
                        .merge(("providers.apple.key_id", KEY_ID))
                        .merge(("providers.apple.private_key", config_pem))
                        .merge(("providers.apple.issuer", configured)),
                )
            },
        )
        .await;
        Self {
            env,
            issuer: made.expect("the issuer was made"),
            url,
            pem,
        }
    }

    /// `/authorize/apple` → Apple's consent, allowed as `person` → Apple's self-submitting
    /// page: its form's target and fields (what Apple posts).
    pub async fn until_apple_posts(
        &self,
        browser: &Browser,
        person: Person<'_>,
    ) -> (String, Vec<(String, String)>) {
        let response = browser.get("/authorize/apple").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let dialog = Url::parse(location(&response)).expect("dialog URL");
        assert!(dialog.as_str().starts_with(&self.url), "{dialog}");
        let page = browser.get(dialog.as_str()).await;
        assert_eq!(page.status(), StatusCode::OK, "consent page shows");
        let answer = post_consent(
            &cookieless_client(),
            &dialog,
            &[
                ("first_name", person.first),
                ("last_name", person.last),
                ("email", person.email),
                ("decision", "allow"),
            ],
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK, "Apple answers with a page");
        let html = answer.text().await.expect("page");
        (form_action(&html), hidden_fields(&html))
    }

    /// What Apple's page posts, posted as a browser posts it from Apple's site: without this
    /// site's SameSite=Lax cookies. Returns the relay page.
    pub async fn post_cross_site(
        &self,
        target: &str,
        fields: &[(String, String)],
    ) -> reqwest::Response {
        cookieless_client()
            .post(target)
            .header("Origin", &self.url)
            .form(fields)
            .send()
            .await
            .expect("cross-site POST")
    }

    /// A whole sign-in as `person`, through the relay; the home page's HTML afterwards.
    pub async fn login(&self, browser: &Browser, person: Person<'_>) -> String {
        let (target, fields) = self.until_apple_posts(browser, person).await;
        let relay = self.post_cross_site(&target, &fields).await;
        assert_eq!(relay.status(), StatusCode::OK);
        let html = relay.text().await.expect("relay page");
        let action = form_action(&html);
        let relayed = hidden_fields(&html);
        let pairs: Vec<(&str, &str)> = relayed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = browser.post_form(&action, &pairs).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
        assert_eq!(location(&response), "/preloader");
        assert_eq!(browser.wait_status().await, "ok");
        assert_eq!(location(&browser.get("/success").await), "/");
        browser.text("/").await.1
    }
}
