//! Microsoft Entra ID configured as people configure it (`[providers.microsoft]`), pointed at
//! the stand-in with its tenants on a port of its own (as `authority`).

use std::sync::Arc;

use figment::Figment;
use loginwith::dev_provider::{
    Fault, Faults,
    entra::{EntraStandIn, EntraStandInSettings, EntraUser},
};
use tokio::net::TcpListener;

use super::{Browser, TestEnv, location};

pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const CLIENT_SECRET: &str = "Qj88Q~entra.secret-value";
/// Contoso's and Fabrikam's tenants.
pub const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const TENANT_B: &str = "0b5d9a1c-3f1e-4b8e-9c4a-7a2f3e1d5c6b";

/// Ada at Contoso: a name with markup and an emoji, an address, `xms_edov` as asked.
pub fn ada(verified: Option<bool>) -> EntraUser {
    EntraUser {
        tenant: TENANT_A.to_owned(),
        oid: "00000000-0000-0000-66f3-3332eca7ea81".to_owned(),
        name: "Ada <b>Lovelace</b> 💡".to_owned(),
        email: Some("ada@contoso.example".to_owned()),
        email_domain_verified: verified,
    }
}

pub struct EntraEnv {
    pub env: TestEnv,
    pub entra: Arc<EntraStandIn>,
    pub url: String,
}

impl EntraEnv {
    /// With `tenant` (and the configuration changed by `tweak`).
    pub async fn start(tenant: &str, tweak: impl FnOnce(Figment) -> Figment) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut made = None;
        let base = url.clone();
        let authority = url.clone();
        let tenant = tenant.to_owned();
        let env = TestEnv::start_with_providers(
            |app_url| {
                let entra = EntraStandIn::new(
                    EntraStandInSettings {
                        base: base.clone(),
                        client_id: CLIENT_ID.to_owned(),
                        client_secret: CLIENT_SECRET.to_owned(),
                        redirect_uri: format!("{app_url}/callback/microsoft"),
                    },
                    ada(Some(true)),
                );
                let router = entra.router();
                tokio::spawn(async move { axum::serve(listener, router).await });
                made = Some(entra);
                Vec::new()
            },
            move |f| {
                tweak(
                    f.merge(("providers.microsoft.client_id", CLIENT_ID))
                        .merge(("providers.microsoft.client_secret", CLIENT_SECRET))
                        .merge(("providers.microsoft.tenant", tenant))
                        .merge(("providers.microsoft.authority", authority)),
                )
            },
        )
        .await;
        Self {
            env,
            entra: made.expect("the stand-in was made"),
            url,
        }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.entra.set_faults(Faults {
            fault,
            ..Faults::default()
        });
    }

    pub async fn login_until_preloader(&self, browser: &Browser) {
        browser
            .until_preloader_through("microsoft", &self.url)
            .await;
    }

    pub async fn login(&self, browser: &Browser) -> String {
        self.login_until_preloader(browser).await;
        assert_eq!(browser.wait_status().await, "ok");
        let response = browser.get("/success").await;
        assert_eq!(location(&response), "/");
        browser.text("/").await.1
    }
}
