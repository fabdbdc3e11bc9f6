//! Microsoft Entra ID against a stand-in with two tenants: the multi-tenant issuer checked
//! with the token's own `tid`, people keyed on `tid` and `oid`, an address verified only by
//! `xms_edov`, the tenancy deciding whose accounts come in.

use loginwith_testkit as common;

use common::entra::{EntraEnv, TENANT_A, TENANT_B, ada};
use loginwith::dev_provider::{Fault, entra::CONSUMERS};

#[tokio::test]
async fn a_work_account_signs_in_keyed_on_its_tenant_and_object_id() {
    let ms = EntraEnv::start("common", |f| f).await;
    let home = ms.login(&ms.env.browser()).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
    let identities = ms.env.identities().await;
    assert_eq!(identities.len(), 1);
    let (provider, id, first, last, email) = &identities[0];
    assert_eq!(provider, "microsoft");
    assert_eq!(
        id,
        &format!("{TENANT_A}/00000000-0000-0000-66f3-3332eca7ea81")
    );
    assert_eq!(
        (first.as_str(), last.as_str()),
        ("Ada", "<b>Lovelace</b> 💡")
    );
    assert_eq!(email.as_deref(), Some("ada@contoso.example"));
    // The same object id in another tenant is another account.
    ms.entra
        .set_user(loginwith::dev_provider::entra::EntraUser {
            tenant: TENANT_B.to_owned(),
            ..ada(Some(true))
        });
    ms.login(&ms.env.browser()).await;
    assert_eq!(ms.env.count("user_identity").await, 2);
    let (_, home) = ms.env.browser().text("/").await;
    assert!(home.contains("class=\"button button-microsoft\""), "{home}");
    assert!(home.contains("Continue with Microsoft"), "{home}");
}

#[tokio::test]
async fn a_token_of_tenant_a_naming_tenant_b_as_issuer_is_refused() {
    let ms = EntraEnv::start("common", |f| f).await;
    ms.entra.forge_issuer_of(TENANT_B);
    let browser = ms.env.browser();
    ms.login_until_preloader(&browser).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        ms.env.last_operation().await,
        ("error".to_owned(), Some("invalid_response".to_owned()))
    );
    assert_eq!(ms.env.count("user_profile").await, 0);
}

#[tokio::test]
async fn an_address_counts_as_verified_only_with_xms_edov() {
    // The address is kept either way, verified (so that it may ever link or satisfy an
    // [access] rule on verified addresses) only when the token carries xms_edov true.
    for (edov, verified) in [(Some(true), 1), (Some(false), 0), (None, 0)] {
        let ms = EntraEnv::start("common", |f| f).await;
        ms.entra.set_user(ada(edov));
        ms.login(&ms.env.browser()).await;
        // A CASE, so that SQLite's integer and PostgreSQL's boolean read alike.
        let stored: (Option<String>, i64) = sqlx::query_as(
            "SELECT email, CASE WHEN email_verified THEN 1 ELSE 0 END FROM user_profile",
        )
        .fetch_one(&ms.env.db)
        .await
        .unwrap();
        assert_eq!(
            stored,
            (Some("ada@contoso.example".to_owned()), verified),
            "{edov:?}"
        );
    }
}

#[tokio::test]
async fn the_tenancy_decides_whose_accounts_come_in() {
    let personal = || loginwith::dev_provider::entra::EntraUser {
        tenant: CONSUMERS.to_owned(),
        ..ada(None)
    };
    // organizations: work and school accounts only.
    let ms = EntraEnv::start("organizations", |f| f).await;
    ms.entra.set_user(personal());
    let browser = ms.env.browser();
    ms.login_until_preloader(&browser).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        ms.env.last_operation().await.1.as_deref(),
        Some("not_allowed")
    );
    ms.entra.set_user(ada(None));
    ms.login(&ms.env.browser()).await;

    // consumers: a personal account signs in.
    let ms = EntraEnv::start("consumers", |f| f).await;
    ms.entra.set_user(personal());
    ms.login(&ms.env.browser()).await;

    // One tenant: another tenant's account is refused.
    let ms = EntraEnv::start(TENANT_A, |f| f).await;
    ms.login(&ms.env.browser()).await;
    ms.entra
        .set_user(loginwith::dev_provider::entra::EntraUser {
            tenant: TENANT_B.to_owned(),
            ..ada(None)
        });
    let browser = ms.env.browser();
    ms.login_until_preloader(&browser).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(ms.env.count("user_identity").await, 1);

    // common, narrowed to tenant A by `tenants`.
    let ms = EntraEnv::start("common", |f| {
        f.merge(("providers.microsoft.tenants", [TENANT_A]))
    })
    .await;
    ms.login(&ms.env.browser()).await;
    ms.entra
        .set_user(loginwith::dev_provider::entra::EntraUser {
            tenant: TENANT_B.to_owned(),
            ..ada(None)
        });
    let browser = ms.env.browser();
    ms.login_until_preloader(&browser).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        ms.env.last_operation().await.1.as_deref(),
        Some("not_allowed")
    );
}

#[tokio::test]
async fn every_failure_is_named_by_what_happened() {
    let ms = EntraEnv::start("common", |f| f.merge(("limits.auth_burst", 100))).await;
    for (fault, reason) in [
        (Fault::TokenError, "denied"),
        (Fault::TokenServerError, "provider_error"),
        (Fault::TokenRateLimited, "provider_error"),
        (Fault::TokenBadRequestHtml, "provider_error"),
        (Fault::TokenEmptyBody, "invalid_response"),
        (Fault::TokenNotJson, "invalid_response"),
        (Fault::TokenMissingAccessToken, "invalid_response"),
        (Fault::TokenTypeMac, "invalid_response"),
        (Fault::Hang, "timeout"),
    ] {
        ms.set_fault(fault);
        let browser = ms.env.browser();
        ms.login_until_preloader(&browser).await;
        assert_eq!(browser.wait_status().await, "error", "{fault:?}");
        assert_eq!(
            ms.env.last_operation().await,
            ("error".to_owned(), Some(reason.to_owned())),
            "{fault:?}"
        );
    }
    assert_eq!(ms.env.count("user_profile").await, 0);
}
