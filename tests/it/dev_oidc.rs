//! The development provider's OpenID Connect mode: the issuer on a port of its own, driven over
//! HTTP endpoint by endpoint (refusals included), its ID tokens checked with openidconnect's
//! verifier rather than the app's client; then the app as `cargo run` starts it, whose second
//! button signs people in through that issuer.

use loginwith_testkit as common;

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{Browser, Person, assert_in_order, location, param, post_consent, submit_consent};
use loginwith::{
    App,
    auth::{
        LoginSecrets, Provider as _,
        http::HttpClient,
        oidc::{Oidc, OidcSettings},
    },
    config::{Config, Environment},
    dev_provider::{DevOidc, DevOidcSettings},
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKey as _, Nonce, PkceCodeChallenge,
    core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm},
};
use reqwest::{StatusCode, header, redirect::Policy};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const CLIENT_ID: &str = "dev-oidc-client";
const CLIENT_SECRET: &str = "dev-oidc-secret-0123456789";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback/dev-oidc";
const VERIFIER: &str = "a-pkce-verifier-of-at-least-43-characters-0123456789";

struct Issuer {
    url: String,
    dev: Arc<DevOidc>,
    http: reqwest::Client,
}

const GRACE: Person<'static> = Person {
    first: "Grace",
    last: "Hopper",
    email: "grace@example.com",
};

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Issuer {
    /// The issuer served at `http://127.0.0.1:{port}/oidc`, its authorization endpoint
    /// named with `localhost` (as a public URL might be).
    async fn start(auto_approve: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/oidc", listener.local_addr().expect("address"));
        let dev = DevOidc::new(DevOidcSettings {
            issuer: url.clone(),
            authorization_endpoint: format!("{}/authorize", url.replace("127.0.0.1", "localhost")),
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            auto_approve,
        });
        let router = axum::Router::new().nest("/oidc", dev.router());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        Self { url, dev, http }
    }

    /// An authorization request as the app makes it, with `change` applied to its parameters.
    fn authorize_url(&self, change: impl FnOnce(&mut Params)) -> Url {
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("scope", "openid email profile".to_owned()),
            ("state", "the-state".to_owned()),
            ("nonce", "the-nonce".to_owned()),
            ("code_challenge", challenge(VERIFIER)),
            ("code_challenge_method", "S256".to_owned()),
        ];
        change(&mut params);
        Url::parse_with_params(&format!("{}/authorize", self.url), &params).expect("URL")
    }

    /// Shows the consent page for `dialog`, then submits it; returns where the browser goes.
    async fn consent(&self, dialog: &Url, person: &Person<'_>, decision: &str) -> Url {
        let page = self.http.get(dialog.clone()).send().await.expect("GET");
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.expect("page");
        assert!(page.contains("Sign in as a test user"), "{page}");
        assert!(page.contains(r#"name="nonce" value="the-nonce""#), "{page}");
        let response = submit_consent(&self.http, dialog, *person, decision).await;
        Url::parse(location(&response)).expect("redirect URL")
    }

    /// A code for `person`, through the consent page.
    async fn code_for(&self, person: &Person<'_>) -> String {
        let back = self
            .consent(&self.authorize_url(|_| {}), person, "allow")
            .await;
        param(back.as_str(), "code")
    }

    /// `POST /token` with Basic authentication as `(id, secret)` and `form`.
    async fn token(
        &self,
        auth: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/token", self.url)).form(form);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.expect("token request");
        let status = response.status();
        if status.is_success() {
            let cache = response.headers().get(header::CACHE_CONTROL);
            assert_eq!(cache.and_then(|v| v.to_str().ok()), Some("no-store"));
        }
        (status, response.json().await.expect("JSON answer"))
    }

    /// The token request the app makes for `code`.
    async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.token(
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    async fn jwks(&self) -> CoreJsonWebKeySet {
        let response = self
            .http
            .get(format!("{}/jwks", self.url))
            .send()
            .await
            .expect("JWKS");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a key set")
    }

    async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/userinfo", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("userinfo")
    }
}

/// The authorization request's parameters, as a test changes them.
type Params = Vec<(&'static str, String)>;
/// A named change to a good authorization request.
type Spoil = (&'static str, fn(&mut Params));

fn error_of(answer: &Value) -> &str {
    answer["error"].as_str().unwrap_or("(none)")
}

#[tokio::test]
async fn discovery_names_the_issuer_its_endpoints_and_what_it_supports() {
    let issuer = Issuer::start(false).await;
    let response = issuer
        .http
        .get(format!("{}/.well-known/openid-configuration", issuer.url))
        .send()
        .await
        .expect("discovery");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("JSON");
    let url = &issuer.url;
    assert_eq!(doc["issuer"], *url);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/authorize", url.replace("127.0.0.1", "localhost"))
    );
    assert_eq!(doc["token_endpoint"], format!("{url}/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{url}/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{url}/jwks"));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));

    // openidconnect itself accepts it, keys included.
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let metadata = openidconnect::core::CoreProviderMetadata::discover_async(
        IssuerUrl::new(url.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("openidconnect discovers the issuer");
    assert_eq!(metadata.jwks().keys().len(), 1);
}

#[tokio::test]
async fn the_key_set_has_one_p256_signing_key_with_an_id_and_no_private_part() {
    let issuer = Issuer::start(false).await;
    let raw: Value = issuer
        .http
        .get(format!("{}/jwks", issuer.url))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JSON");
    let keys = raw["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{raw}");
    let key = &keys[0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["use"], "sig");
    assert!(
        key["kid"].as_str().is_some_and(|kid| kid.len() == 43),
        "{key}"
    );
    assert!(
        key.get("d").is_none_or(Value::is_null),
        "no private key: {key}"
    );
    // A new start, a new key.
    let other = Issuer::start(false).await.jwks().await;
    assert_ne!(
        other.keys()[0].key_id(),
        issuer.jwks().await.keys()[0].key_id()
    );
}

#[tokio::test]
async fn a_whole_exchange_gives_a_signed_id_token_and_userinfo_for_the_typed_person() {
    let issuer = Issuer::start(false).await;
    let back = issuer
        .consent(&issuer.authorize_url(|_| {}), &GRACE, "allow")
        .await;
    assert!(
        back.as_str().starts_with(&format!("{REDIRECT_URI}?")),
        "{back}"
    );
    assert_eq!(param(back.as_str(), "state"), "the-state");
    assert_eq!(param(back.as_str(), "iss"), issuer.url, "RFC 9207");
    assert_eq!(back.fragment(), None, "no Facebook #_=_ here");
    let code = param(back.as_str(), "code");

    let (status, answer) = issuer.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    let access_token = answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let id_token: CoreIdToken = serde_json::from_value(answer["id_token"].clone()).expect("a JWT");

    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(CLIENT_ID.to_owned()),
        ClientSecret::new(CLIENT_SECRET.to_owned()),
        IssuerUrl::new(issuer.url.clone()).expect("issuer"),
        issuer.jwks().await,
    )
    .set_allowed_algs([CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&verifier, &Nonce::new("the-nonce".to_owned()))
        .expect("signature, iss, aud, exp and nonce check out");
    let sub = issuer.dev.subject_for_email("grace@example.com");
    assert_eq!(claims.subject().as_str(), sub);
    assert_eq!(claims.issuer().as_str(), issuer.url);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), CLIENT_ID);
    assert_eq!(
        claims.authorized_party().map(|a| a.as_str()),
        Some(CLIENT_ID)
    );
    let now = chrono::Utc::now();
    assert!(claims.issue_time() <= now && claims.issue_time() > now - chrono::Duration::minutes(1));
    assert!(claims.expiration() > now + chrono::Duration::minutes(30));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Grace Hopper")
    );
    assert_eq!(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Grace")
    );
    assert_eq!(
        claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Hopper")
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("grace@example.com")
    );
    assert_eq!(claims.email_verified(), Some(true));
    // at_hash binds the access token to the ID token.
    let alg = id_token.signing_alg().expect("alg").clone();
    assert_eq!(alg, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    let keys = issuer.jwks().await;
    let key = &keys.keys()[0];
    let expected = AccessTokenHash::from_token(&AccessToken::new(access_token.clone()), &alg, key)
        .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected));
    assert!(key.key_id().is_some());

    let response = issuer.userinfo(&access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("userinfo JSON");
    assert_eq!(info["sub"], sub.as_str(), "the same sub as the ID token");
    assert_eq!(info["name"], "Grace Hopper");
    assert_eq!(info["given_name"], "Grace");
    assert_eq!(info["family_name"], "Hopper");
    assert_eq!(info["email"], "grace@example.com");
    assert_eq!(info["email_verified"], true);
}

#[tokio::test]
async fn the_subject_is_stable_per_typed_person_and_differs_between_people() {
    let issuer = Issuer::start(false).await;
    let mut subjects = Vec::new();
    for person in [
        &GRACE,
        &GRACE,
        &Person {
            first: "Ada",
            last: "Lovelace",
            email: "ada@example.com",
        },
    ] {
        let code = issuer.code_for(person).await;
        let (status, answer) = issuer.redeem(&code).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let token = answer["access_token"].as_str().expect("token").to_owned();
        let info: Value = issuer.userinfo(&token).await.json().await.expect("JSON");
        subjects.push(info["sub"].as_str().expect("sub").to_owned());
    }
    assert_eq!(subjects[0], subjects[1]);
    assert_ne!(subjects[0], subjects[2]);
    assert_eq!(subjects[2], issuer.dev.subject_for_email("ada@example.com"));
}

#[tokio::test]
async fn cancel_sends_access_denied_with_state_and_iss() {
    let issuer = Issuer::start(false).await;
    let back = issuer
        .consent(&issuer.authorize_url(|_| {}), &GRACE, "cancel")
        .await;
    assert!(
        back.as_str().starts_with(&format!("{REDIRECT_URI}?")),
        "{back}"
    );
    assert_eq!(param(back.as_str(), "error"), "access_denied");
    assert_eq!(param(back.as_str(), "state"), "the-state");
    assert_eq!(param(back.as_str(), "iss"), issuer.url);
    assert!(!back.query_pairs().any(|(k, _)| k == "code"), "{back}");
}

#[tokio::test]
async fn bad_authorization_requests_get_an_error_page_never_a_redirect() {
    let issuer = Issuer::start(false).await;
    let cases: [Spoil; 6] = [
        ("unknown client", |p| p[1].1 = "someone-else".into()),
        ("unregistered redirect", |p| {
            p[2].1 = "http://127.0.0.1:9/callback/dev-oidc/".into()
        }),
        ("token response type", |p| p[0].1 = "token".into()),
        ("no openid scope", |p| p[3].1 = "email profile".into()),
        ("no PKCE", |p| p.truncate(6)),
        ("plain PKCE", |p| p[7].1 = "plain".into()),
    ];
    for (what, change) in cases {
        let response = issuer
            .http
            .get(issuer.authorize_url(change))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(response.headers().get(header::LOCATION).is_none(), "{what}");
    }
}

#[tokio::test]
async fn auto_approve_answers_at_once_as_the_dev_user_cookie_says() {
    let issuer = Issuer::start(true).await;
    let response = issuer
        .http
        .get(issuer.authorize_url(|_| {}))
        .header(header::COOKIE, "dev_user=lin@example.com")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let code = param(location(&response), "code");
    let (status, answer) = issuer.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().expect("token").to_owned();
    let info: Value = issuer.userinfo(&token).await.json().await.expect("JSON");
    assert_eq!(info["email"], "lin@example.com");
    assert_eq!(info["sub"], issuer.dev.subject_for_email("lin@example.com"));
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_wrong_or_missing_client_secret() {
    let issuer = Issuer::start(false).await;
    let code = issuer.code_for(&GRACE).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    for auth in [
        Some((CLIENT_ID, "not-the-secret")),
        Some(("someone-else", CLIENT_SECRET)),
        None,
    ] {
        let (status, answer) = issuer.token(auth, &form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(error_of(&answer), "invalid_client");
    }
    // The secret in the body (client_secret_post) is not what was advertised.
    let mut post = form.to_vec();
    post.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
    let (status, answer) = issuer.token(None, &post).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&answer), "invalid_client");
    // Refused client authentication does not spend the code.
    let (status, answer) = issuer.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn the_token_endpoint_refuses_another_redirect_uri_verifier_or_grant_and_spends_the_code() {
    let issuer = Issuer::start(false).await;
    let auth = Some((CLIENT_ID, CLIENT_SECRET));
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "redirect_uri",
            "http://127.0.0.1:9/callback/other",
            VERIFIER,
            "invalid_grant",
        ),
        (
            "verifier",
            REDIRECT_URI,
            "another-verifier-of-at-least-43-characters-000",
            "invalid_grant",
        ),
        ("empty verifier", REDIRECT_URI, "", "invalid_grant"),
        ("unknown code", REDIRECT_URI, VERIFIER, "invalid_grant"),
    ];
    for (what, redirect_uri, verifier, error) in cases {
        let code = if what == "unknown code" {
            "no-such-code".to_owned()
        } else {
            issuer.code_for(&GRACE).await
        };
        let (status, answer) = issuer
            .token(
                auth,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(error_of(&answer), error, "{what}");
        // A wrong attempt spends the code: the right one is refused afterwards.
        let (status, answer) = issuer.redeem(&code).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{what} then right: {answer}"
        );
        assert_eq!(error_of(&answer), "invalid_grant");
    }
    let code = issuer.code_for(&GRACE).await;
    let (status, answer) = issuer
        .token(
            auth,
            &[
                ("grant_type", "refresh_token"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&answer), "unsupported_grant_type");
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_token_it_gave() {
    let issuer = Issuer::start(false).await;
    let code = issuer.code_for(&GRACE).await;
    let (status, answer) = issuer.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().expect("token").to_owned();
    assert_eq!(issuer.userinfo(&token).await.status(), StatusCode::OK);

    let (status, answer) = issuer.redeem(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(error_of(&answer), "invalid_grant");
    assert_eq!(
        issuer.userinfo(&token).await.status(),
        StatusCode::UNAUTHORIZED,
        "the first exchange's token is revoked"
    );
}

#[tokio::test]
async fn userinfo_refuses_missing_or_unknown_tokens() {
    let issuer = Issuer::start(false).await;
    let response = issuer.userinfo("not-a-token").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers().get(header::WWW_AUTHENTICATE);
    assert_eq!(
        challenge.and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    let response = issuer
        .http
        .get(format!("{}/userinfo", issuer.url))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The app as `cargo run` starts it: the embedded defaults (no provider configured), the
/// development environment, on loopback. Returns its URL and the directory of its database.
async fn default_development_app() -> (String, tempfile::TempDir) {
    default_development_app_with(|f| f).await
}

/// [`default_development_app`] with more configuration.
async fn default_development_app_with(
    tweak: impl FnOnce(figment::Figment) -> figment::Figment,
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let url = format!("http://{addr}");
    let figment = Config::defaults_figment()
        .merge(("server.public_url", &url))
        .merge(("server.bind", addr.to_string()))
        .merge((
            "database.url",
            format!("sqlite://{}/loginwith.db", dir.path().display()),
        ))
        // Never the fixed default port: a `cargo run` beside the tests holds it.
        .merge(("metrics.bind", "127.0.0.1:0"));
    let config = Config::from_figment(tweak(figment), Environment::Development)
        .expect("the defaults are valid");
    assert!(
        config.uses_dev_provider(),
        "the development provider stands in"
    );
    // Built before serving, as `serve` does: the app discovers its own issuer only once the
    // listener answers, so this must not wait on it.
    let app = App::build(&config, addr).await.expect("app builds");
    tokio::spawn(app.serve(listener, std::future::pending()));
    (url, dir)
}

#[tokio::test]
async fn with_the_default_development_configuration_a_second_button_signs_in_through_the_dev_issuer()
 {
    let (url, _dir) = default_development_app().await;
    let browser = Browser::new(&url);
    let (status, home) = browser.text("/").await;
    assert_eq!(status, StatusCode::OK);
    // The Facebook stand-in's button first, then the dev issuer's.
    assert_in_order(&home, "Continue with Facebook", "Continue with Dev OpenID");
    assert!(home.contains(r#"href="/authorize/dev-oidc""#), "{home}");

    let dialog = dev_oidc_dialog(&browser, &url).await;
    let grace = Person {
        first: "Grace",
        last: "Hopper",
        email: "grace@example.com",
    };
    let callback = browser.consent(&dialog, grace, "allow").await;
    assert!(
        callback.starts_with(&format!("{url}/callback/dev-oidc?")),
        "{callback}"
    );
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/preloader");
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    assert_eq!(location(&response), "/");
    let (_, home) = browser.text("/").await;
    assert!(home.contains("Hi, Grace!"), "{home}");
}

/// A test user typed with groups on the consent page carries them in the ID token and at
/// userinfo, and the app's OpenID Connect client reads them into the profile (sorted, the
/// duplicate gone): what `cargo run` shows through its second button. A preset has its own.
#[tokio::test]
async fn groups_typed_on_the_consent_page_reach_the_clients_profile() {
    let issuer = Issuer::start(false).await;
    let client = Oidc::new(
        OidcSettings {
            name: "dev-oidc".into(),
            display_name: "Dev OpenID".into(),
            issuer: issuer.url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            redirect_uri: REDIRECT_URI.into(),
            hosted_domain: None,
            groups_claim: None,
            sign_out_at_provider: false,
            client_secret_in_body: false,
            dialect: Default::default(),
        },
        HttpClient::new(std::time::Duration::from_secs(5)).expect("HTTP client"),
    )
    .expect("settings");
    client.rediscover().await.expect("discovery");
    for (choice, expected) in [
        (
            vec![
                ("first_name", "Grace"),
                ("last_name", "Hopper"),
                ("email", "grace@example.com"),
                ("groups", "/acme/ops, admins admins"),
            ],
            vec!["/acme/ops", "admins"],
        ),
        (vec![("preset", "ada")], vec!["admins", "ops"]),
        (vec![("preset", "alan")], vec![]),
    ] {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let dialog = client
            .authorization_url(&CsrfToken::new("s".into()), &challenge, "n")
            .expect("available");
        let page = issuer.http.get(dialog.clone()).send().await.expect("GET");
        assert!(
            page.text()
                .await
                .expect("page")
                .contains(r#"name="groups""#),
            "the OpenID issuer's consent page asks for groups"
        );
        let fields: Vec<(&str, &str)> = choice
            .iter()
            .copied()
            .chain([("decision", "allow")])
            .collect();
        let back = post_consent(&issuer.http, &dialog, &fields).await;
        let code = param(location(&back), "code");
        let profile = client
            .exchange(
                AuthorizationCode::new(code),
                LoginSecrets {
                    verifier,
                    nonce: "n".into(),
                },
            )
            .await
            .expect("a profile");
        assert_eq!(profile.membership.groups, expected, "{choice:?}");
    }
}

/// The groups claim is in the ID token itself (signed) and at userinfo, and left out for a
/// person without groups.
#[tokio::test]
async fn the_groups_claim_is_in_the_id_token_and_at_userinfo() {
    let issuer = Issuer::start(false).await;
    let dialog = issuer.authorize_url(|_| {});
    let back = post_consent(
        &issuer.http,
        &dialog,
        &[("preset", "ada"), ("decision", "allow")],
    )
    .await;
    let (status, answer) = issuer.redeem(&param(location(&back), "code")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id_token = answer["id_token"].as_str().expect("id_token");
    let payload = id_token.split('.').nth(1).expect("a JWS");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    assert_eq!(claims["groups"], serde_json::json!(["ops", "admins"]));
    let info: Value = issuer
        .userinfo(answer["access_token"].as_str().expect("access_token"))
        .await
        .json()
        .await
        .expect("userinfo JSON");
    assert_eq!(info["groups"], serde_json::json!(["ops", "admins"]));

    let code = issuer.code_for(&GRACE).await;
    let (_, answer) = issuer.redeem(&code).await;
    let payload = answer["id_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1));
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(payload.expect("a JWS"))
            .expect("base64url"),
    )
    .expect("JSON");
    assert!(claims.get("groups").is_none(), "{claims}");
}

/// `/authorize/dev-oidc`'s dialog URL, once the app has discovered its own issuer (which it
/// does in the background once it serves).
async fn dev_oidc_dialog(browser: &Browser, url: &str) -> Url {
    let dialog_prefix = format!("{url}/dev/facebook/oidc/authorize?");
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let dialog = loop {
        let response = browser.get("/authorize/dev-oidc").await;
        let target = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if target.starts_with(&dialog_prefix) {
            break target;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dev issuer is still not discovered: /authorize/dev-oidc goes to {target:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    Url::parse(&dialog).expect("dialog URL")
}

#[tokio::test]
async fn the_dev_issuer_can_say_an_address_is_not_verified_and_access_then_refuses_it() {
    let (url, _dir) = default_development_app_with(|f| {
        f.merge(("access.emails", vec!["grace@example.com"]))
            // Not the default port, which the test beside this one takes.
            .merge(("metrics.bind", "127.0.0.1:0"))
    })
    .await;
    // Ticked "not verified": Grace's address proves nothing, and she is refused.
    let browser = Browser::new(&url);
    let dialog = dev_oidc_dialog(&browser, &url).await;
    let response = post_consent(
        &browser.client,
        &dialog,
        &[
            ("first_name", "Grace <b>"),
            ("last_name", "Hopper 🦀"),
            ("email", "grace@example.com"),
            ("email_unverified", "1"),
            ("decision", "allow"),
        ],
    )
    .await;
    let response = browser.get(location(&response)).await;
    assert_eq!(location(&response), "/preloader");
    assert_eq!(browser.wait_status().await, "error");
    let (status, page) = browser.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("grace@example.com (Dev OpenID) may not sign in to loginwith."),
        "{page}"
    );
    // Unticked (the default): verified, and let in.
    let browser = Browser::new(&url);
    let dialog = dev_oidc_dialog(&browser, &url).await;
    let grace = Person {
        first: "Grace <b>",
        last: "Hopper 🦀",
        email: "grace@example.com",
    };
    let callback = browser.consent(&dialog, grace, "allow").await;
    assert_eq!(location(&browser.get(&callback).await), "/preloader");
    assert_eq!(browser.wait_status().await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    assert_eq!(browser.get("/auth/check").await.status(), StatusCode::OK);
}

/// README's "Try it" for groups: `LOGINWITH_ACCESS__GROUPS=ops` with the default development
/// configuration lets in the preset Ada (in `ops` and `admins`) and refuses the preset Grace
/// (only `admins`), and the gateway is told Ada's groups.
#[tokio::test]
async fn with_access_groups_the_dev_issuers_presets_are_let_in_or_refused_by_group() {
    let (url, _dir) = default_development_app_with(|f| {
        f.merge(("access.groups", "ops"))
            .merge(("metrics.bind", "127.0.0.1:0"))
    })
    .await;
    let sign_in_as = |preset: &'static str| {
        let url = url.clone();
        async move {
            let browser = Browser::new(&url);
            let dialog = dev_oidc_dialog(&browser, &url).await;
            let response = post_consent(
                &browser.client,
                &dialog,
                &[("preset", preset), ("decision", "allow")],
            )
            .await;
            let response = browser.get(location(&response)).await;
            assert_eq!(location(&response), "/preloader");
            let status = browser.wait_status().await;
            (browser, status)
        }
    };
    let (ada, status) = sign_in_as("ada").await;
    assert_eq!(status, "ok");
    assert_eq!(location(&ada.get("/success").await), "/");
    let check = ada.get("/auth/check").await;
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(check.headers()["x-auth-request-groups"], "admins,ops");
    let (grace, status) = sign_in_as("grace").await;
    assert_eq!(status, "error");
    let (status, page) = grace.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("(Dev OpenID) may not sign in to loginwith."),
        "{page}"
    );
}
