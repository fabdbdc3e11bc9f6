//! Signing in with an OpenID Connect issuer configured as people configure one
//! (`[providers.corp] kind = "oidc"`), against the in-process test issuer: the identity is
//! `sub`, and every ID token or userinfo answer that fails a check ends the sign-in with
//! nothing written.

use loginwith_testkit as common;

use common::{
    location,
    oidc::{Misbehaviour, OidcEnv, Signing},
    param,
};
use reqwest::StatusCode;

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
        assert_eq!(oidc.sign_in(&oidc.env.browser()).await, "error", "{hd:?}");
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
