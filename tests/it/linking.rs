//! One person, several identities (issue 10): adding GitHub to a Facebook sign-in from
//! "Sign-in methods", never merging on a matching email, refusing someone else's identity,
//! removing a method but never the last, and Facebook's deauthorize keeping a person who
//! still has GitHub. Through the real router, Facebook's stand-in and GitHub's.

use loginwith_testkit as common;

use common::{
    ADA, Browser, Person,
    github::{GitHubEnv, email},
    location,
};
use loginwith::dev_provider::github::GitHubUser;
use reqwest::StatusCode;

const GRACE: Person<'static> = Person {
    first: "Grace",
    last: "Hopper",
    email: "grace@example.com",
};

/// The ids of the people signed in, one per signed-in session.
async fn signed_in_users(gh: &GitHubEnv) -> Vec<i64> {
    sqlx::query_scalar("SELECT user_id FROM session WHERE user_id IS NOT NULL ORDER BY user_id")
        .fetch_all(&gh.env.db)
        .await
        .unwrap()
}

/// `(identity id, provider, person)` of every identity, oldest first.
async fn identities(gh: &GitHubEnv) -> Vec<(i64, String, i64)> {
    sqlx::query_as("SELECT id, provider, user_profile_id FROM user_identity ORDER BY id")
        .fetch_all(&gh.env.db)
        .await
        .unwrap()
}

/// Everything a refused request must leave as it was.
async fn everything(gh: &GitHubEnv) -> (Vec<(i64, String, i64)>, [i64; 3], Vec<i64>) {
    (
        identities(gh).await,
        gh.env.snapshot().await,
        signed_in_users(gh).await,
    )
}

/// "Add GitHub" on `/account`: the POST, the stand-in (which approves at once), the
/// callback. Returns the callback's answer.
async fn start_github_link(gh: &GitHubEnv, browser: &Browser) -> reqwest::Response {
    let dialog = github_link_dialog(browser).await;
    assert!(dialog.starts_with(&gh.github_url), "{dialog}");
    answer_dialog(browser, &dialog).await
}

/// "Add GitHub" on `/account`, up to the stand-in's dialog it redirects to.
async fn github_link_dialog(browser: &Browser) -> String {
    let token = browser.csrf_token_on("/account").await;
    let response = browser
        .post_form("/account/link/github", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response).to_owned()
}

/// The stand-in's dialog (which approves at once), then the callback it sends back to.
async fn answer_dialog(browser: &Browser, dialog: &str) -> reqwest::Response {
    let response = browser.get(dialog).await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let callback = location(&response).to_owned();
    browser.get(&callback).await
}

/// A whole link up to `/success`; returns where `/success` sends the browser.
async fn link_github(gh: &GitHubEnv, browser: &Browser) -> (String, String) {
    let response = start_github_link(gh, browser).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/preloader");
    let status = browser.wait_status().await;
    let response = browser.get("/success").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    (status, location(&response).to_owned())
}

async fn sign_out(browser: &Browser) {
    let token = browser.csrf_token().await;
    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_person_links_github_and_then_signs_in_with_it_as_themselves() {
    let gh = GitHubEnv::start().await;
    let laptop = gh.env.browser();
    assert!(laptop.login(ADA).await.contains("Hi, Ada!"));
    let home = laptop.text("/").await.1;
    assert!(home.contains("href=\"/account\""), "{home}");
    // The "Add GitHub" form's redirect to GitHub must pass the page's `form-action`.
    let response = laptop.get("/account").await;
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains(&format!("form-action 'self' {};", gh.github_url)),
        "{policy}"
    );
    let (_, page) = laptop.text("/account").await;
    assert!(page.contains("Facebook"), "{page}");
    assert!(page.contains("Add GitHub"), "{page}");
    assert!(!page.contains("Remove Facebook"), "the only one: {page}");
    let ada_id = signed_in_users(&gh).await[0];

    assert_eq!(
        link_github(&gh, &laptop).await,
        ("ok".to_owned(), "/account".to_owned())
    );
    let (_, page) = laptop.text("/account").await;
    assert!(page.contains("GitHub was added"), "{page}");
    assert!(page.contains("Remove Facebook"), "{page}");
    assert!(page.contains("Remove GitHub"), "{page}");
    assert!(!page.contains("Add GitHub"), "{page}");
    assert_eq!(signed_in_users(&gh).await, vec![ada_id], "still Ada, once");

    sign_out(&laptop).await;
    let phone = gh.env.browser();
    assert!(gh.login(&phone).await.contains("Hi, Ada!"));
    assert_eq!(signed_in_users(&gh).await, vec![ada_id], "the same person");
    assert_eq!(gh.env.count("user_profile").await, 1);
    let providers: Vec<(String, i64)> = identities(&gh)
        .await
        .into_iter()
        .map(|(_, provider, user)| (provider, user))
        .collect();
    assert_eq!(
        providers,
        vec![
            ("facebook".to_owned(), ada_id),
            ("github".to_owned(), ada_id)
        ]
    );
}

#[tokio::test]
async fn linking_an_identity_that_belongs_to_someone_else_changes_nothing() {
    let gh = GitHubEnv::start().await;
    // Ada's GitHub account is hers already (her own profile).
    let ada_browser = gh.env.browser();
    gh.login(&ada_browser).await;
    // Grace signs in with Facebook and tries to add that same GitHub account.
    let grace = gh.env.browser();
    assert!(grace.login(GRACE).await.contains("Hi, Grace!"));
    let before = everything(&gh).await;

    let (status, next) = link_github(&gh, &grace).await;
    assert_eq!((status.as_str(), next.as_str()), ("error", "/error"));
    let (_, page) = grace.text("/error").await;
    assert!(
        page.contains("This GitHub account is already used by someone else here."),
        "{page}"
    );
    assert!(page.contains("href=\"/account\""), "{page}");
    assert_eq!(
        gh.env.last_operation().await,
        ("error".to_owned(), Some("identity_taken".to_owned()))
    );
    let after = everything(&gh).await;
    assert_eq!(after.0, before.0, "no identity moved");
    assert_eq!(
        after.1[..2],
        before.1[..2],
        "no profile or identity added or deleted"
    );
    assert_eq!(after.2, before.2, "both stay signed in as themselves");
    assert!(grace.text("/").await.1.contains("Hi, Grace!"));
    assert!(ada_browser.text("/").await.1.contains("Hi, Ada!"));
}

#[tokio::test]
async fn a_matching_email_never_merges_two_people() {
    let gh = GitHubEnv::start().await;
    // Ada on Facebook and a GitHub account whose verified primary address is the same.
    gh.env.browser().login(ADA).await;
    gh.github.set_user(GitHubUser {
        id: 99,
        login: "not-ada".to_owned(),
        name: Some("Someone Else".to_owned()),
        emails: vec![email(ADA.email, true, true)],
        ..GitHubUser::default()
    });
    assert!(gh.login(&gh.env.browser()).await.contains("Hi, Someone!"));
    let emails: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, email FROM user_profile ORDER BY id")
            .fetch_all(&gh.env.db)
            .await
            .unwrap();
    assert_eq!(emails.len(), 2, "two people: {emails:?}");
    assert!(emails.iter().all(|(_, e)| e.as_deref() == Some(ADA.email)));
    let owners: Vec<i64> = identities(&gh).await.into_iter().map(|i| i.2).collect();
    assert_ne!(owners[0], owners[1]);
}

#[tokio::test]
async fn removing_an_identity_works_and_the_last_one_is_refused() {
    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    browser.login(ADA).await;
    link_github(&gh, &browser).await;
    let ada_id = signed_in_users(&gh).await[0];
    let github = identities(&gh).await[1].0;
    // Her phone came in through GitHub: removing GitHub ends it, not the browser asking.
    let phone = gh.env.browser();
    gh.login(&phone).await;
    assert_eq!(signed_in_users(&gh).await, vec![ada_id, ada_id]);

    let token = browser.csrf_token_on("/account").await;
    let response = browser
        .post_form(
            &format!("/account/identities/{github}/remove"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let (_, page) = browser.text("/account").await;
    assert!(page.contains("was removed"), "{page}");
    assert!(page.contains("Add GitHub"), "{page}");
    assert!(!page.contains("Remove Facebook"), "{page}");
    assert_eq!(identities(&gh).await.len(), 1);
    assert_eq!(
        signed_in_users(&gh).await,
        vec![ada_id],
        "still signed in here, and only here"
    );
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
    assert!(
        !phone.text("/").await.1.contains("Hi, Ada!"),
        "the phone is signed out"
    );

    // The last one, asked for anyway (an old page, a hand-made request): refused.
    let facebook = identities(&gh).await[0].0;
    let before = everything(&gh).await;
    let response = browser
        .post_form(
            &format!("/account/identities/{facebook}/remove"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(location(&response), "/account");
    let (_, page) = browser.text("/account").await;
    assert!(page.contains("This is your only sign-in method"), "{page}");
    assert_eq!(everything(&gh).await, before);
}

#[tokio::test]
async fn removing_someone_elses_identity_is_404_and_changes_nothing() {
    let gh = GitHubEnv::start().await;
    gh.login(&gh.env.browser()).await;
    let ada_github = identities(&gh).await[0].0;
    let grace = gh.env.browser();
    grace.login(GRACE).await;
    let before = everything(&gh).await;
    let token = grace.csrf_token_on("/account").await;
    for id in [ada_github.to_string(), "999999".to_owned(), "x".to_owned()] {
        let response = grace
            .post_form(
                &format!("/account/identities/{id}/remove"),
                &[("csrf_token", &token)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(everything(&gh).await, before);
}

#[tokio::test]
async fn every_account_post_without_the_right_csrf_token_is_403_and_writes_nothing() {
    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    browser.login(ADA).await;
    link_github(&gh, &browser).await;
    let github = identities(&gh).await[1].0;
    let remove = format!("/account/identities/{github}/remove");
    let before = everything(&gh).await;
    let session_before: String = sqlx::query_scalar("SELECT data FROM session")
        .fetch_one(&gh.env.db)
        .await
        .unwrap();
    for path in ["/account/link/github", remove.as_str()] {
        for form in [
            vec![],
            vec![("csrf_token", "wrong")],
            vec![("csrf_token", "")],
        ] {
            let response = browser.post_form(path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {form:?}");
        }
    }
    assert_eq!(everything(&gh).await, before);
    let session_after: String = sqlx::query_scalar("SELECT data FROM session")
        .fetch_one(&gh.env.db)
        .await
        .unwrap();
    assert_eq!(session_after, session_before, "no sign-in was started");
}

#[tokio::test]
async fn the_account_page_is_for_signed_in_people_only() {
    let gh = GitHubEnv::start().await;
    let response = gh.env.browser().get("/account").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn a_link_whose_person_signed_out_meanwhile_adds_nothing() {
    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    browser.login(ADA).await;
    let dialog = github_link_dialog(&browser).await;
    sign_out(&browser).await;
    let response = answer_dialog(&browser, &dialog).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(identities(&gh).await.len(), 1, "GitHub was not added");
    assert_eq!(
        gh.env.count("async_operation").await,
        1,
        "only Ada's sign-in"
    );
}

/// The started link lives in the browser's sealed cookie, which a sign-out does not remove:
/// it is bound to the sign-in that started it, so signing in again, even as the same person,
/// does not revive it.
#[tokio::test]
async fn a_link_started_before_signing_out_and_in_again_adds_nothing() {
    let gh = GitHubEnv::start().await;
    let browser = gh.env.browser();
    browser.login(ADA).await;
    let dialog = github_link_dialog(&browser).await;
    sign_out(&browser).await;
    // Ada signs in again (elsewhere, so the sealed cookie with the started link stays as it
    // is), and that new sign-in reaches this browser.
    let elsewhere = gh.env.browser();
    elsewhere.login(ADA).await;
    let session = elsewhere.cookie("loginwith_session").unwrap();
    browser.set_cookie(&format!("loginwith_session={session}; Path=/"));
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
    let response = answer_dialog(&browser, &dialog).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(identities(&gh).await.len(), 1, "GitHub was not added");
    assert_eq!(
        gh.env.count("async_operation").await,
        2,
        "only Ada's two sign-ins"
    );
    // Started again in this sign-in, it works.
    assert_eq!(
        link_github(&gh, &browser).await,
        ("ok".to_owned(), "/account".to_owned())
    );
    assert_eq!(identities(&gh).await.len(), 2);
}

#[tokio::test]
async fn facebook_deauthorize_keeps_a_person_who_also_has_github() {
    let gh = GitHubEnv::start().await;
    let laptop = gh.env.browser();
    laptop.login(ADA).await;
    link_github(&gh, &laptop).await;
    let ada_id = signed_in_users(&gh).await[0];
    let phone = gh.env.browser();
    gh.login(&phone).await;
    assert_eq!(signed_in_users(&gh).await, vec![ada_id, ada_id]);

    let facebook_id = gh.env.dev.user_id_for_email(ADA.email);
    let response = gh
        .env
        .browser()
        .post_form(
            "/facebook/deauthorize",
            &[("signed_request", &gh.env.dev.signed_request(&facebook_id))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let left: Vec<(String, i64)> = identities(&gh)
        .await
        .into_iter()
        .map(|(_, provider, user)| (provider, user))
        .collect();
    assert_eq!(left, vec![("github".to_owned(), ada_id)]);
    assert_eq!(gh.env.count("user_profile").await, 1, "her profile stays");
    assert!(signed_in_users(&gh).await.is_empty(), "her sessions end");
    // GitHub still signs her in as herself.
    assert!(gh.login(&gh.env.browser()).await.contains("Hi, Ada!"));
    assert_eq!(signed_in_users(&gh).await, vec![ada_id]);
}
