//! `providers.<name>.link_by_verified_email`: off by default; when on, a person's first
//! sign-in with that provider joins the one existing person with the same address, only when
//! both addresses were verified, the existing one by a provider that itself links by verified
//! email, and nobody else has it; never instead of an explicit link.
//! Through the real router, with the in-process OpenID Connect issuer (`corp`), the GitHub
//! stand-in (`github`) and Facebook's stand-in (`facebook`) side by side; and the store on
//! its own for racing first sign-ins.

use loginwith_testkit as common;

use std::{collections::HashSet, sync::Arc};

use common::{
    ADA, Browser, Person,
    github::{GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, email},
    location,
    oidc::OidcEnv,
};
use loginwith::{
    auth::Profile,
    config::{Config, Environment},
    dev_provider::github::{GitHubStandIn, GitHubStandInSettings, GitHubUser},
    store::{EmailLinking, Store, UserId},
};
use reqwest::StatusCode;

const GRACE: Person<'static> = Person {
    first: "Grace",
    last: "Hopper",
    email: "grace@example.com",
};

/// The app with `corp` (the test issuer) and `github` (the stand-in) beside Facebook's
/// stand-in; the providers in `linking` link by verified email, and for the others the key is
/// not written at all (its default).
struct Env {
    oidc: OidcEnv,
    github: Arc<GitHubStandIn>,
    github_url: String,
}

impl Env {
    async fn start(linking: &'static [&'static str]) -> Self {
        let mut made = None;
        let oidc = OidcEnv::start_with(
            |_| {},
            |figment| {
                let app_url: String = figment
                    .extract_inner("server.public_url")
                    .expect("public_url");
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
                listener.set_nonblocking(true).expect("non-blocking");
                let url = format!("http://{}", listener.local_addr().expect("address"));
                let github = GitHubStandIn::new(
                    GitHubStandInSettings {
                        client_id: GITHUB_CLIENT_ID.to_owned(),
                        client_secret: GITHUB_CLIENT_SECRET.to_owned(),
                        redirect_uri: format!("{}/callback/github", app_url.trim_end_matches('/')),
                    },
                    github_ada(),
                );
                let router = github.router();
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                tokio::spawn(async move { axum::serve(listener, router).await });
                made = Some((github, url.clone()));
                let figment = figment
                    .merge(("providers.github.client_id", GITHUB_CLIENT_ID))
                    .merge(("providers.github.client_secret", GITHUB_CLIENT_SECRET))
                    .merge((
                        "providers.github.authorize_url",
                        format!("{url}/login/oauth/authorize"),
                    ))
                    .merge((
                        "providers.github.token_url",
                        format!("{url}/login/oauth/access_token"),
                    ))
                    .merge(("providers.github.api_url", format!("{url}/")));
                linking.iter().fold(figment, |figment, name| {
                    figment.merge((format!("providers.{name}.link_by_verified_email"), true))
                })
            },
            Vec::new(),
        )
        .await;
        let (github, github_url) = made.expect("the stand-in was made");
        Self {
            oidc,
            github,
            github_url,
        }
    }

    /// A whole GitHub sign-in (the stand-in approves at once); the person signed in.
    async fn github_sign_in(&self, browser: &Browser) -> i64 {
        browser
            .until_preloader_through("github", &self.github_url)
            .await;
        assert_eq!(browser.wait_status().await, "ok");
        self.finish(browser).await
    }

    /// A whole sign-in with the OpenID Connect issuer; the person signed in.
    async fn corp_sign_in(&self, browser: &Browser) -> i64 {
        assert_eq!(self.oidc.sign_in(browser).await, "ok");
        self.finish(browser).await
    }

    /// A whole sign-in with Facebook's stand-in as `person`; the person signed in.
    async fn facebook_sign_in(&self, browser: &Browser, person: Person<'_>) -> i64 {
        browser.login(person).await;
        self.signed_in_as(browser).await
    }

    /// `/success` after an `ok` exchange, then who this browser is signed in as.
    async fn finish(&self, browser: &Browser) -> i64 {
        let response = browser.get("/success").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/");
        self.signed_in_as(browser).await
    }

    /// The person this browser's session is signed in as (its CSRF token names the session).
    async fn signed_in_as(&self, browser: &Browser) -> i64 {
        let token = browser.csrf_token().await;
        let sessions: Vec<(String, i64)> =
            sqlx::query_as("SELECT data, user_id FROM session WHERE user_id IS NOT NULL")
                .fetch_all(&self.oidc.env.db)
                .await
                .unwrap();
        let mine: Vec<i64> = sessions
            .into_iter()
            .filter(|(data, _)| data.contains(&token))
            .map(|(_, user)| user)
            .collect();
        assert_eq!(mine.len(), 1, "one session holds this browser's token");
        mine[0]
    }

    /// `(provider, person)` of every identity, oldest first.
    async fn identities(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT provider, user_profile_id FROM user_identity ORDER BY id")
            .fetch_all(&self.oidc.env.db)
            .await
            .unwrap()
    }

    async fn people(&self) -> i64 {
        self.oidc.env.count("user_profile").await
    }
}

/// Ada at GitHub: her verified primary address is `ada@example.com`.
fn github_ada() -> GitHubUser {
    common::github::ada()
}

/// The issuer says Ada's address is `address`, verified or not.
fn corp_says(env: &Env, address: &str, verified: bool) {
    env.oidc.issuer.set(|b| {
        b.email = address.to_owned();
        b.email_verified = verified;
    });
}

/// Ada signs in with GitHub, then corp vouches for her address (verified) for a first
/// sign-in: a second person, with an identity each.
async fn ada_on_github_then_a_second_person_on_corp(env: &Env) {
    let ada = env.github_sign_in(&env.oidc.env.browser()).await;
    corp_says(env, "ada@example.com", true);
    let newcomer = env.corp_sign_in(&env.oidc.env.browser()).await;
    assert_ne!(newcomer, ada, "a second person");
    assert_eq!(env.people().await, 2);
    assert_eq!(
        env.identities().await,
        vec![("github".to_owned(), ada), ("corp".to_owned(), newcomer)]
    );
}

#[tokio::test]
async fn by_default_a_matching_verified_address_makes_a_second_person() {
    // GitHub links, so Ada's address counts; corp is left at its default.
    let env = Env::start(&["github"]).await;
    ada_on_github_then_a_second_person_on_corp(&env).await;
}

#[tokio::test]
async fn with_link_by_verified_email_a_first_sign_in_joins_the_one_person_with_that_address() {
    // GitHub links by verified email too, so the address it verified for Ada counts.
    let env = Env::start(&["github", "corp"]).await;
    let laptop = env.oidc.env.browser();
    let ada = env.github_sign_in(&laptop).await;
    // The same address in other ASCII case: the same address.
    corp_says(&env, "Ada@Example.COM", true);
    let phone = env.oidc.env.browser();
    assert_eq!(env.corp_sign_in(&phone).await, ada, "the same person");
    assert!(phone.text("/").await.1.contains("Hi, Ada!"));
    assert_eq!(env.people().await, 1);
    assert_eq!(
        env.identities().await,
        vec![("github".to_owned(), ada), ("corp".to_owned(), ada)],
        "identity count 2, both hers"
    );
    // From now on the identity is simply hers, and GitHub still is too.
    assert_eq!(env.corp_sign_in(&env.oidc.env.browser()).await, ada);
    assert_eq!(env.github_sign_in(&env.oidc.env.browser()).await, ada);
    assert_eq!(env.identities().await.len(), 2);
    let (_, page) = phone.text("/account").await;
    assert!(page.contains("Remove Corp SSO"), "{page}");
    assert!(page.contains("Remove GitHub"), "{page}");
}

#[tokio::test]
async fn with_link_by_verified_email_an_unverified_address_makes_a_second_person() {
    let env = Env::start(&["github", "corp"]).await;
    let ada = env.github_sign_in(&env.oidc.env.browser()).await;
    corp_says(&env, "ada@example.com", false);
    let newcomer = env.corp_sign_in(&env.oidc.env.browser()).await;
    assert_ne!(newcomer, ada);
    assert_eq!(env.people().await, 2);
    // The same holds when the address comes from userinfo rather than the ID token.
    env.oidc.issuer.set(|b| {
        b.sub = "ada-0002".to_owned();
        b.claims_in_userinfo_only = true;
    });
    let third = env.corp_sign_in(&env.oidc.env.browser()).await;
    assert!(third != ada && third != newcomer);
    assert_eq!(env.people().await, 3);
}

#[tokio::test]
async fn with_link_by_verified_email_an_address_two_people_have_makes_a_new_person() {
    let env = Env::start(&["github", "corp"]).await;
    let ada = env.github_sign_in(&env.oidc.env.browser()).await;
    // A second GitHub account, first under an address nobody has (a second person), that later
    // makes Ada's address its verified primary one: two people have it, both verified by a
    // provider that links by verified email.
    let mut other_ada = GitHubUser {
        id: 99,
        login: "other-ada".to_owned(),
        name: Some("Other Ada".to_owned()),
        emails: vec![email("other@example.com", true, true)],
        ..GitHubUser::default()
    };
    env.github.set_user(other_ada.clone());
    let other = env.github_sign_in(&env.oidc.env.browser()).await;
    assert_ne!(other, ada);
    other_ada.emails = vec![email("ADA@example.com", true, true)];
    env.github.set_user(other_ada);
    assert_eq!(env.github_sign_in(&env.oidc.env.browser()).await, other);
    corp_says(&env, "ada@example.com", true);
    let newcomer = env.corp_sign_in(&env.oidc.env.browser()).await;
    assert!(newcomer != ada && newcomer != other, "never a guess");
    assert_eq!(env.people().await, 3);
    assert_eq!(
        env.identities().await,
        vec![
            ("github".to_owned(), ada),
            ("github".to_owned(), other),
            ("corp".to_owned(), newcomer)
        ]
    );
}

#[tokio::test]
async fn with_link_by_verified_email_a_person_whose_address_was_never_verified_is_not_joined() {
    // Facebook gives no verified flag: whoever typed this address at Facebook may not be its
    // owner, and must not receive the owner's later sign-ins.
    let env = Env::start(&["corp"]).await;
    let planted = env.facebook_sign_in(&env.oidc.env.browser(), ADA).await;
    corp_says(&env, ADA.email, true);
    let owner = env.corp_sign_in(&env.oidc.env.browser()).await;
    assert_ne!(owner, planted);
    assert_eq!(env.people().await, 2);
    assert_eq!(
        env.identities().await,
        vec![("facebook".to_owned(), planted), ("corp".to_owned(), owner)]
    );
}

#[tokio::test]
async fn with_link_by_verified_email_only_a_linking_providers_verification_counts() {
    // GitHub verified Ada's address, but GitHub is not trusted to link by email here: the
    // operator vouched for corp's verification, not for GitHub's (nor for any provider that
    // says "verified" of whatever its users type), so GitHub's word must not hand Ada's account
    // to whoever corp says owns the address.
    let env = Env::start(&["corp"]).await;
    ada_on_github_then_a_second_person_on_corp(&env).await;
}

#[tokio::test]
async fn with_link_by_verified_email_an_explicit_link_still_adds_to_the_signed_in_person() {
    let env = Env::start(&["github", "corp"]).await;
    let ada = env.github_sign_in(&env.oidc.env.browser()).await;
    // Grace, signed in, adds Corp SSO from "Sign-in methods"; the issuer's verified address
    // is Ada's. The link goes to Grace, who proved both sides, as it always did.
    let browser = env.oidc.env.browser();
    let grace = env.facebook_sign_in(&browser, GRACE).await;
    corp_says(&env, "ada@example.com", true);
    browser.link_through_stand_in("corp").await;
    assert_eq!(
        env.identities().await,
        vec![
            ("github".to_owned(), ada),
            ("facebook".to_owned(), grace),
            ("corp".to_owned(), grace)
        ]
    );
    assert_eq!(env.signed_in_as(&browser).await, grace);
}

/// A profile as a provider that verified `email` gives it.
fn verified(id: &str, email: &str) -> Profile {
    Profile {
        provider_user_id: id.to_owned(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: Some(email.into()),
        email_verified: true,
        issuer: None,
        membership: Default::default(),
        provider_sid: None,
        names_withheld: false,
    }
}

/// `count` first sign-ins of one identity at once, with GitHub and `provider` linking by
/// verified email; the people they ended as.
async fn race(
    store: &Store,
    count: usize,
    provider: &'static str,
    profile: Profile,
) -> Vec<UserId> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let store = store.clone();
            let profile = profile.clone();
            tokio::spawn(async move {
                let trusted = HashSet::from(["github".to_owned(), provider.to_owned()]);
                let linking = EmailLinking::WhenVerified { trusted: &trusted };
                let operation = store.create_operation(provider).await.unwrap();
                store
                    .complete_sign_in(operation, provider, &profile, linking)
                    .await
                    .unwrap()
                    .user
            })
        })
        .collect();
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap());
    }
    users
}

#[tokio::test]
async fn racing_first_sign_ins_that_join_by_email_still_make_one_identity() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/l.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let op = store.create_operation("github").await.unwrap();
    let ada = store
        .complete_sign_in(
            op,
            "github",
            &verified("1", "ada@example.com"),
            EmailLinking::Never,
        )
        .await
        .unwrap()
        .user;
    // Twenty first sign-ins of one new identity with Ada's verified address: all Ada, one row.
    let users = race(&store, 20, "corp", verified("ada-0001", "ADA@example.com")).await;
    assert!(users.iter().all(|u| *u == ada), "{users:?}");
    // And twenty of a newcomer whose address nobody has: one new person.
    let users = race(&store, 20, "corp", verified("bob-0001", "bob@example.com")).await;
    assert!(
        users.iter().all(|u| *u == users[0] && *u != ada),
        "{users:?}"
    );
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM user_profile),
                (SELECT COUNT(*) FROM user_identity),
                (SELECT COUNT(*) FROM user_identity WHERE user_profile_id = ?)",
    )
    .bind(ada.0)
    .fetch_one(&sqlx::SqlitePool::connect(&url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(counts, (2, 3, 2), "(people, identities, Ada's identities)");
}

#[test]
fn link_by_verified_email_is_off_by_default_and_not_a_key_of_facebook() {
    let config = Config::from_figment(Config::defaults_figment(), Environment::Development)
        .expect("the defaults are valid");
    assert_eq!(config.providers.iter().count(), 9);
    assert!(
        config
            .providers
            .iter()
            .all(|(_, p)| !p.link_by_verified_email)
    );
    let on = |name: &str| {
        Config::defaults_figment()
            .merge((format!("providers.{name}.client_id"), "id"))
            .merge((format!("providers.{name}.client_secret"), "secret"))
            .merge((format!("providers.{name}.link_by_verified_email"), true))
    };
    for name in ["google", "github"] {
        let config = Config::from_figment(on(name), Environment::Development).expect(name);
        assert_eq!(
            config
                .providers
                .linking_by_verified_email()
                .collect::<Vec<_>>(),
            [name]
        );
    }
    let error = Config::from_figment(on("facebook"), Environment::Development)
        .expect_err("Facebook never verifies an address");
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["providers.facebook.link_by_verified_email"],
        "{error}"
    );
}
