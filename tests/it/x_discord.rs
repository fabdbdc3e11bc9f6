//! X and Discord, configured as people configure them, against the stand-in that checks what
//! each service checks (HTTP Basic at the token endpoint, PKCE S256 which X requires, exact
//! redirect URIs) and answers in their shapes.

use loginwith_testkit as common;

use common::{
    api::{ApiEnv, CLIENT_SECRET, ada, client_id, name},
    location,
};
use loginwith::dev_provider::{Fault, api_stand_in::ApiKind};
use reqwest::StatusCode;

const KINDS: [ApiKind; 2] = [ApiKind::X, ApiKind::Discord];

#[tokio::test]
async fn a_whole_sign_in_with_x_and_with_discord() {
    for kind in KINDS {
        let api = ApiEnv::start(kind).await;
        let home = api.login(&api.env.browser()).await;
        assert!(home.contains("Hi, Ada!"), "{kind:?}: {home}");
        let email = match kind {
            // X's address needs `users.email`, which the default scopes leave out.
            ApiKind::X => None,
            ApiKind::Discord => Some("ada@example.com".to_owned()),
        };
        assert_eq!(
            api.env.identities().await,
            [(
                name(kind).to_owned(),
                ada(kind).id,
                "Ada".to_owned(),
                "<i>Lovelace</i> 🧮".to_owned(),
                email,
            )],
            "{kind:?}"
        );
        assert_eq!(api.env.last_operation().await, ("ok".to_owned(), None));
        let calls = api.stand_in.profile_calls();
        let expected = match kind {
            ApiKind::X => "/2/users/me",
            ApiKind::Discord => "/api/v10/users/@me",
        };
        assert_eq!(calls, [expected], "{kind:?}");
    }
}

#[tokio::test]
async fn x_reads_the_confirmed_address_only_with_the_users_email_scope() {
    let api = ApiEnv::start_with(ApiKind::X, |f| {
        f.merge((
            "providers.x.scopes",
            ["users.read", "tweet.read", "users.email"],
        ))
    })
    .await;
    api.login(&api.env.browser()).await;
    assert_eq!(
        api.stand_in.profile_calls(),
        ["/2/users/me?user.fields=confirmed_email"]
    );
    assert_eq!(
        api.env.identities().await[0].4.as_deref(),
        Some("ada@example.com")
    );
    // An app X has not granted email access: no address, still a sign-in.
    api.set_fault(Fault::MissingEmail);
    let browser = api.env.browser();
    let home = api.login(&browser).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
}

#[tokio::test]
async fn the_id_is_the_identity_not_the_handle_and_only_a_verified_discord_address_is_kept() {
    for kind in KINDS {
        let api = ApiEnv::start(kind).await;
        api.login(&api.env.browser()).await;
        api.stand_in
            .set_user(loginwith::dev_provider::api_stand_in::ApiUser {
                username: "countess".to_owned(),
                name: None,
                ..ada(kind)
            });
        let home = api.login(&api.env.browser()).await;
        // Renamed, without a display name: the handle greets, the same person.
        assert!(home.contains("Hi, countess!"), "{kind:?}: {home}");
        assert_eq!(api.env.count("user_identity").await, 1, "{kind:?}");
        api.stand_in
            .set_user(loginwith::dev_provider::api_stand_in::ApiUser {
                id: "42".to_owned(),
                username: "ada_l".to_owned(),
                verified: false,
                email: Some("else@example.com".to_owned()),
                ..ada(kind)
            });
        api.login(&api.env.browser()).await;
        let identities = api.env.identities().await;
        assert_eq!(identities.len(), 2, "{kind:?}: another id is someone else");
        assert_eq!(identities[1].4, None, "{kind:?}: an unverified address");
    }
}

#[tokio::test]
async fn every_failure_is_named_by_what_happened() {
    for kind in KINDS {
        let api = ApiEnv::start_with(kind, |f| f.merge(("limits.auth_burst", 100))).await;
        for (fault, reason) in [
            (Fault::TokenError, "denied"),
            (Fault::TokenInvalidGrant, "denied"),
            (Fault::MeExpiredToken, "provider_error"),
            (Fault::TokenServerError, "provider_error"),
            (Fault::TokenRateLimited, "provider_error"),
            (Fault::TokenBadRequestHtml, "provider_error"),
            (Fault::MeServerError, "provider_error"),
            (Fault::MeRateLimited, "provider_error"),
            (Fault::MeHugeHtmlError, "provider_error"),
            (Fault::TokenEmptyBody, "invalid_response"),
            (Fault::TokenNotJson, "invalid_response"),
            (Fault::TokenHtmlContentType, "invalid_response"),
            (Fault::TokenMissingAccessToken, "invalid_response"),
            (Fault::TokenEmptyAccessToken, "invalid_response"),
            (Fault::TokenTypeMac, "invalid_response"),
            (Fault::MalformedJson, "invalid_response"),
            (Fault::MeHtmlContentType, "invalid_response"),
            (Fault::OversizedResponse, "invalid_response"),
            (Fault::Hang, "timeout"),
        ] {
            api.set_fault(fault);
            let browser = api.env.browser();
            api.login_until_preloader(&browser).await;
            assert_eq!(browser.wait_status().await, "error", "{kind:?} {fault:?}");
            assert_eq!(
                api.env.last_operation().await,
                ("error".to_owned(), Some(reason.to_owned())),
                "{kind:?} {fault:?}"
            );
        }
        assert_eq!(api.env.count("user_profile").await, 0);
    }
}

#[tokio::test]
async fn the_stand_in_refuses_what_each_service_refuses() {
    // Why a sign-in through it shows the client sends Basic credentials and PKCE.
    for kind in KINDS {
        let api = ApiEnv::start(kind).await;
        let [authorize, token, _] = kind.paths();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", "never-issued"),
            ("client_id", client_id(kind)),
            ("client_secret", CLIENT_SECRET),
        ];
        let in_body = client
            .post(format!("{}{token}", api.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(in_body.status(), StatusCode::UNAUTHORIZED, "{kind:?}");
        let answer: serde_json::Value = in_body.json().await.unwrap();
        assert_eq!(answer["error"], "unauthorized_client");
        let basic = client
            .post(format!("{}{token}", api.url))
            .basic_auth(
                url::form_urlencoded::byte_serialize(client_id(kind).as_bytes())
                    .collect::<String>(),
                Some(
                    url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes())
                        .collect::<String>(),
                ),
            )
            .form(&form[..2])
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), StatusCode::BAD_REQUEST, "{kind:?}");
        let answer: serde_json::Value = basic.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_grant");
        let redirect = format!("{}/callback/{}", api.env.app_url, name(kind));
        let without_pkce = client
            .get(format!("{}{authorize}", api.url))
            .query(&[
                ("response_type", "code"),
                ("client_id", client_id(kind)),
                ("redirect_uri", redirect.as_str()),
                ("state", "s"),
            ])
            .send()
            .await
            .unwrap();
        let back = location(&without_pkce).to_owned();
        match kind {
            ApiKind::X => assert!(back.contains("error=invalid_request"), "{back}"),
            ApiKind::Discord => assert!(back.contains("code="), "{back}"),
        }
    }
}

#[tokio::test]
async fn cancelling_explains_and_creates_nothing() {
    for kind in KINDS {
        let api = ApiEnv::start(kind).await;
        api.stand_in.set_denies();
        let browser = api.env.browser();
        let dialog = location(&browser.get(&format!("/authorize/{}", name(kind))).await).to_owned();
        let callback = location(&browser.get(&dialog).await).to_owned();
        assert!(callback.contains("error=access_denied"), "{callback}");
        assert_eq!(location(&browser.get(&callback).await), "/error");
        let (_, page) = browser.text("/error").await;
        let display = match kind {
            ApiKind::X => "X",
            ApiKind::Discord => "Discord",
        };
        assert!(
            page.contains(&format!("You cancelled signing in with {display}")),
            "{page}"
        );
        assert_eq!(api.env.snapshot().await, [0, 0, 0]);
    }
}

#[tokio::test]
async fn each_gets_its_brands_button() {
    for (kind, class, mark, label) in [
        (ApiKind::X, "button-x", "img/x-mark.svg", "Continue with X"),
        (
            ApiKind::Discord,
            "button-discord",
            "img/discord-mark.svg",
            "Continue with Discord",
        ),
    ] {
        let api = ApiEnv::start(kind).await;
        let (_, home) = api.env.browser().text("/").await;
        assert!(
            home.contains(&format!(
                "class=\"button {class}\" href=\"/authorize/{}\"",
                name(kind)
            )),
            "{home}"
        );
        assert!(home.contains(mark), "{home}");
        assert!(home.contains(label), "{home}");
        let (status, _) = api.env.browser().text(&format!("/static/{mark}")).await;
        assert_eq!(status, StatusCode::OK);
    }
}
