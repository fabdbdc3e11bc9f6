//! Signing in with an OpenID Connect issuer configured as people configure one
//! (`[providers.corp] kind = "oidc"`), against the in-process test issuer: the identity is
//! `sub`, and every ID token or userinfo answer that fails a check ends the sign-in with
//! nothing written.

use loginwith_testkit as common;

use std::time::Duration;

use common::{
    location,
    oidc::{Behaviour, Issuer, Misbehaviour, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OidcEnv, Signing},
    param,
};
use loginwith::auth::{
    LoginSecrets, Profile, Provider as _,
    http::HttpClient,
    oidc::{Oidc, OidcSettings},
};
use openidconnect::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
use reqwest::StatusCode;
use serde_json::json;

fn ada() -> (String, String, String, String, Option<String>) {
    (
        "corp".to_owned(),
        "ada-0001".to_owned(),
        "Ada".to_owned(),
        "Lovelace".to_owned(),
        Some("ada@corp.example".to_owned()),
    )
}

#[tokio::test]
async fn a_whole_sign_in_with_an_oidc_issuer() {
    let oidc = OidcEnv::start().await;
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.env.identities().await, vec![ada()]);
    assert_eq!(oidc.env.last_operation().await, ("ok".to_owned(), None));
}

#[tokio::test]
async fn name_and_email_come_from_userinfo_when_the_id_token_lacks_them() {
    let oidc = OidcEnv::start().await;
    oidc.issuer.set(|b| b.claims_in_userinfo_only = true);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.env.identities().await, vec![ada()]);
}

#[tokio::test]
async fn the_subject_is_the_identity_not_the_email() {
    let oidc = OidcEnv::start().await;
    oidc.sign_in(&oidc.env.browser()).await;
    // Another subject with the same address (a re-registered domain): somebody else.
    oidc.issuer.set(|b| b.sub = "someone-else-0002".to_owned());
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.env.count("user_profile").await, 2);
    assert_eq!(oidc.env.count("user_identity").await, 2);
}

#[tokio::test]
async fn id_tokens_and_userinfo_failing_a_check_are_refused_with_nothing_written() {
    for misbehaviour in [
        Misbehaviour::WrongNonce,
        Misbehaviour::WrongAudience,
        Misbehaviour::OtherIssuer,
        Misbehaviour::Expired,
        Misbehaviour::IssuedInTheFuture,
        Misbehaviour::OtherAuthorizedParty,
        Misbehaviour::OtherKey,
        Misbehaviour::AlgNone,
        Misbehaviour::Hs256WithPublicKey,
        Misbehaviour::WrongAccessTokenHash,
        Misbehaviour::UserinfoOtherSubject,
    ] {
        let oidc = OidcEnv::start().await;
        oidc.issuer.set(|b| {
            b.misbehaviour = misbehaviour;
            // So that userinfo is read (and its `sub` compared).
            b.claims_in_userinfo_only = misbehaviour == Misbehaviour::UserinfoOtherSubject;
        });
        assert_eq!(
            oidc.sign_in(&oidc.env.browser()).await,
            "error",
            "{misbehaviour:?}"
        );
        let (status, reason) = oidc.env.last_operation().await;
        assert_eq!(status, "error", "{misbehaviour:?}");
        assert!(
            matches!(reason.as_deref(), Some("invalid_response" | "denied")),
            "{misbehaviour:?}: {reason:?}"
        );
        assert_eq!(oidc.env.count("user_identity").await, 0, "{misbehaviour:?}");
        assert_eq!(oidc.env.count("user_profile").await, 0, "{misbehaviour:?}");
    }
}

/// The issuer advertises `authorization_response_iss_parameter_supported`, so a callback
/// without its `iss`, or with another, is refused before any exchange (RFC 9207, mix-up).
#[tokio::test]
async fn a_callback_without_the_issuers_iss_is_refused() {
    let oidc = OidcEnv::start().await;
    for iss in [None, Some("http://127.0.0.1:9")] {
        let browser = oidc.env.browser();
        let response = browser.get("/authorize/corp").await;
        let response = browser.get(location(&response)).await;
        // The issuer redirects to the app's absolute callback URL.
        let mut callback = url::Url::parse(location(&response)).unwrap();
        let kept: Vec<(String, String)> = callback
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut query = callback.query_pairs_mut();
            query.clear().extend_pairs(kept);
            if let Some(iss) = iss {
                query.append_pair("iss", iss);
            }
        }
        let response = browser.get(callback.as_str()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{iss:?}");
    }
    assert_eq!(oidc.env.count("async_operation").await, 0);
}

#[tokio::test]
async fn an_es256_id_token_is_accepted_and_its_at_hash_checked() {
    let oidc = OidcEnv::start().await;
    oidc.issuer.set(|b| b.signing = Signing::Es256);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.env.identities().await, vec![ada()]);

    oidc.issuer
        .set(|b| b.misbehaviour = Misbehaviour::WrongAccessTokenHash);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "error");
    assert_eq!(
        oidc.env.last_operation().await,
        ("error".to_owned(), Some("invalid_response".to_owned()))
    );
}

/// The issuer rotates its key: the first token under the new `kid` makes the app fetch the
/// keys once, and the sign-in works. A token under a `kid` the issuer never publishes is
/// refused, and within the minute it does not make the app fetch the keys again (forged
/// tokens cannot make us hammer the issuer).
#[tokio::test]
async fn a_key_rotation_fetches_the_keys_once_and_an_unknown_key_is_refused() {
    let oidc = OidcEnv::start().await;
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    let (_, keys_at_start) = oidc.fetches();
    assert_eq!(keys_at_start, 1, "the keys are fetched with discovery");

    oidc.issuer.set(|b| b.signing = Signing::Rotated);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.fetches().1, 2, "one fetch for the new key");
    // The new key is kept: the next sign-in needs no fetch.
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.fetches().1, 2);

    oidc.issuer
        .set(|b| b.misbehaviour = Misbehaviour::UnknownKey);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "error");
    assert_eq!(
        oidc.env.last_operation().await,
        ("error".to_owned(), Some("invalid_response".to_owned()))
    );
    assert_eq!(oidc.fetches().1, 2, "no second fetch within the minute");
    // Still one person: the same subject signed in three times.
    assert_eq!(oidc.env.identities().await, vec![ada()]);
}

/// A token under an unknown `kid` right after start-up (the issuer rotated between our
/// discovery and this sign-in) fetches the keys and signs in.
#[tokio::test]
async fn an_unknown_key_right_after_start_up_fetches_the_keys_and_signs_in() {
    let oidc = OidcEnv::start().await;
    oidc.issuer.set(|b| b.signing = Signing::Rotated);
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(oidc.fetches().1, 2);
}

/// `[providers.corp] hosted_domain`, the way Google is configured for one Workspace domain.
async fn workspace(domain: &'static str) -> OidcEnv {
    OidcEnv::start_with(
        |b| b.hd = Some("corp.example".to_owned()),
        move |f| f.merge(("providers.corp.hosted_domain", domain)),
        Vec::new(),
    )
    .await
}

/// The authorization URL asks for the domain (`hd`, the account chooser's hint), and an ID
/// token naming it, in any ASCII case, signs the person in.
#[tokio::test]
async fn the_hosted_domain_is_sent_as_hd_and_an_id_token_naming_it_signs_in() {
    let oidc = workspace("Corp.Example").await;
    let browser = oidc.env.browser();
    let response = browser.get("/authorize/corp").await;
    assert_eq!(param(location(&response), "hd"), "Corp.Example");

    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
    assert_eq!(
        oidc.issuer.requested_hd.lock().unwrap().as_deref(),
        Some("Corp.Example")
    );
    assert_eq!(oidc.env.identities().await, vec![ada()]);
}

/// The `hd` URL parameter proves nothing: a person can take it out of the URL and choose a
/// consumer account (no `hd`) or another domain's. The dialog was asked for the domain, the
/// ID token names another or none: refused, `not_allowed`, nothing kept.
#[tokio::test]
async fn an_id_token_without_the_hosted_domain_in_hd_is_refused_with_nothing_written() {
    for hd in [Some("other.example"), Some("corp.example.evil"), None] {
        let oidc = workspace("corp.example").await;
        oidc.issuer.set(|b| b.hd = hd.map(str::to_owned));
        let browser = oidc.env.browser();
        assert_eq!(oidc.sign_in(&browser).await, "error", "{hd:?}");
        let (_, page) = browser.text("/error").await;
        assert!(
            page.contains("This account (Corp SSO) may not sign in to loginwith."),
            "{page}"
        );
        assert_eq!(
            oidc.issuer.requested_hd.lock().unwrap().as_deref(),
            Some("corp.example"),
            "the dialog was asked for the domain"
        );
        assert_eq!(
            oidc.env.last_operation().await,
            ("error".to_owned(), Some("not_allowed".to_owned())),
            "{hd:?}"
        );
        assert_eq!(oidc.env.count("user_profile").await, 0, "{hd:?}");
        assert_eq!(oidc.env.count("user_identity").await, 0, "{hd:?}");
    }
}

/// Without `hosted_domain`, no `hd` is sent and none is required.
#[tokio::test]
async fn without_a_hosted_domain_no_hd_is_sent_or_required() {
    let oidc = OidcEnv::start().await;
    let response = oidc.env.browser().get("/authorize/corp").await;
    assert!(
        !location(&response).contains("hd="),
        "{}",
        location(&response)
    );
    assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "ok");
}

const DIRECT_CALLBACK: &str = "http://127.0.0.1:9/callback/corp";

/// The profile the client makes of one sign-in at the stand-in issuer behaving as `behave`
/// says, with `providers.corp.groups_claim` as `groups_claim`: the client driven as the
/// router drives it (authorization URL, the issuer's redirect, the code exchange), since
/// groups are not stored yet and nothing downstream shows them.
async fn profile_of(groups_claim: Option<&str>, behave: impl FnOnce(&mut Behaviour)) -> Profile {
    let issuer = Issuer::serve(DIRECT_CALLBACK, behave).await;
    let http = HttpClient::new(Duration::from_secs(5)).expect("HTTP client");
    let client = Oidc::new(
        OidcSettings {
            name: "corp".into(),
            display_name: "Corp SSO".into(),
            issuer: issuer.url.clone(),
            client_id: OIDC_CLIENT_ID.into(),
            client_secret: OIDC_CLIENT_SECRET.into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            redirect_uri: DIRECT_CALLBACK.into(),
            hosted_domain: None,
            groups_claim: groups_claim.map(str::to_owned),
            sign_out_at_provider: false,
            client_secret_in_body: false,
            dialect: Default::default(),
        },
        http,
    )
    .expect("settings");
    client.rediscover().await.expect("discovery");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let url = client
        .authorization_url(&CsrfToken::new("the-state".into()), &challenge, "the-nonce")
        .expect("available");
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(url.as_str())
        .send()
        .await
        .expect("authorize");
    let code = param(location(&answer), "code");
    client
        .exchange(
            AuthorizationCode::new(code),
            LoginSecrets {
                verifier,
                nonce: "the-nonce".into(),
            },
        )
        .await
        .expect("a profile")
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|g| (*g).to_owned()).collect()
}

fn claims(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match json {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The ID token's `groups` (the default claim) become the profile's groups: sorted, without
/// duplicates or empty values, Keycloak's paths as they are, other members left out.
#[tokio::test]
async fn groups_in_the_id_token_reach_the_profile() {
    let profile = profile_of(None, |b| {
        b.id_token_claims =
            claims(json!({"groups": ["ops", "/acme/admins", "ops", "", 7, {"x": 1}]}));
    })
    .await;
    assert_eq!(profile.membership.groups, strings(&["/acme/admins", "ops"]));
    assert_eq!(profile.provider_user_id, "ada-0001");
}

/// A configured claim (`roles`) only in userinfo: asked for there, since the ID token
/// lacks it. Without the key, no userinfo call is made for groups, and none are read.
#[tokio::test]
async fn a_configured_groups_claim_only_in_userinfo_is_read_there() {
    let roles = |b: &mut Behaviour| {
        b.userinfo_claims = claims(json!({"roles": "admin", "groups": ["ignored"]}));
    };
    assert_eq!(
        profile_of(Some("roles"), roles).await.membership.groups,
        strings(&["admin"])
    );
    assert_eq!(
        profile_of(None, roles).await.membership.groups,
        Vec::<String>::new()
    );
}

/// Both carry the claim (userinfo read for the name and address anyway): their union.
#[tokio::test]
async fn groups_in_both_the_id_token_and_userinfo_are_united() {
    let profile = profile_of(None, |b| {
        b.claims_in_userinfo_only = true;
        b.id_token_claims = claims(json!({"groups": ["ops"]}));
        b.userinfo_claims = claims(json!({"groups": ["admins", "ops"]}));
    })
    .await;
    assert_eq!(profile.membership.groups, strings(&["admins", "ops"]));
    assert_eq!(profile.email.as_deref(), Some("ada@corp.example"));
}

/// A claim of another type is no groups, not a failed sign-in.
#[tokio::test]
async fn a_groups_claim_of_another_type_is_no_groups_and_the_sign_in_works() {
    let profile = profile_of(Some("groups"), |b| {
        b.id_token_claims = claims(json!({"groups": {"ops": true}}));
    })
    .await;
    assert_eq!(profile.membership.groups, Vec::<String>::new());
    assert_eq!(profile.provider_user_id, "ada-0001");
}
