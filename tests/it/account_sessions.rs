//! "Where you're signed in" and "Recent activity" on `/account`: every live sign-in of the
//! person with its device, ending one or all others, never another person's; the last
//! sign-ins and refusals, kept `audit.retention_days`.

use loginwith_testkit as common;

use common::{ADA, Browser, Person, TestEnv, location};
use reqwest::StatusCode;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

const GRACE: Person<'static> = Person {
    first: "Grace <b>",
    last: "Hopper 🦀",
    email: "grace@example.com",
};

/// The references of the "Sign out" forms on `/account` (a digest of each other session).
fn end_forms(page: &str) -> Vec<String> {
    page.match_indices("/account/sessions/")
        .filter_map(|(at, _)| {
            let rest = &page[at + "/account/sessions/".len()..];
            let reference = rest.split('/').next()?;
            (rest[reference.len()..].starts_with("/end\"")).then(|| reference.to_owned())
        })
        .collect()
}

/// The `/account` page's "Where you're signed in" section.
fn devices_section(page: &str) -> &str {
    let start = page.find("Where you're signed in").expect("the section");
    let end = page[start..]
        .find("Recent activity")
        .map_or(page.len(), |e| start + e);
    &page[start..end]
}

async fn signed_in_as(env: &TestEnv, agent: &str, person: Person<'_>) -> Browser {
    let browser = Browser::with_user_agent(&env.app_url, agent);
    browser.login(person).await;
    browser
}

#[tokio::test]
async fn the_account_page_lists_every_sign_in_of_the_person_with_its_device() {
    let env = TestEnv::start().await;
    let laptop = signed_in_as(&env, FIREFOX, ADA).await;
    let phone = signed_in_as(&env, IPHONE, ADA).await;
    // Someone else's sign-in is never listed.
    let _grace = signed_in_as(&env, FIREFOX, GRACE).await;

    let (status, page) = laptop.text("/account").await;
    assert_eq!(status, StatusCode::OK);
    let devices = devices_section(&page);
    assert!(devices.contains("Firefox on Linux"), "{devices}");
    assert!(devices.contains("Safari on iPhone"), "{devices}");
    assert_eq!(
        devices.matches("<li>").count(),
        2,
        "Ada's two sign-ins only: {devices}"
    );
    // This browser is marked and signs out through the logout form; the other has its own.
    let this = devices.find("this device").expect("this browser marked");
    assert!(
        devices[..this].contains("Firefox on Linux"),
        "the mark is on the laptop's line: {devices}"
    );
    assert_eq!(end_forms(&page).len(), 1, "one other device to end");
    assert!(devices.contains("with Facebook"), "{devices}");
    assert!(devices.contains("Sign out everywhere else"), "{devices}");
    // No session id is in the page: only digests of them.
    for id in env.signed_in_session_ids().await {
        assert!(!page.contains(&id), "a session id leaked into the page");
    }
    // The phone sees the same two, itself marked.
    let (_, page) = phone.text("/account").await;
    let devices = devices_section(&page);
    let this = devices.find("this device").expect("this browser marked");
    assert!(devices[..this].contains("Safari on iPhone"), "{devices}");
}

#[tokio::test]
async fn signing_out_another_device_ends_that_session_only() {
    let env = TestEnv::start().await;
    let laptop = signed_in_as(&env, FIREFOX, ADA).await;
    let phone = signed_in_as(&env, IPHONE, ADA).await;
    let tablet = signed_in_as(&env, IPHONE, ADA).await;
    let (_, page) = laptop.text("/account").await;
    let references = end_forms(&page);
    assert_eq!(references.len(), 2);
    let token = laptop.csrf_token_on("/account").await;

    let response = laptop
        .post_form(
            &format!("/account/sessions/{}/end", references[0]),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let (_, page) = laptop.text("/account").await;
    assert!(page.contains("That device is signed out"), "{page}");
    assert_eq!(end_forms(&page).len(), 1);
    let mut still = 0;
    for browser in [&phone, &tablet] {
        if browser.text("/").await.1.contains("Hi, Ada!") {
            still += 1;
        }
    }
    assert_eq!(still, 1, "exactly one of the other two was signed out");
    assert!(
        laptop.text("/").await.1.contains("Hi, Ada!"),
        "this one stays"
    );

    // The same form again: nothing left to end, and it says so.
    let response = laptop
        .post_form(
            &format!("/account/sessions/{}/end", references[0]),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        laptop
            .text("/account")
            .await
            .1
            .contains("had ended already")
    );
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_this_browser_only() {
    let env = TestEnv::start().await;
    let laptop = signed_in_as(&env, FIREFOX, ADA).await;
    let others = [
        signed_in_as(&env, IPHONE, ADA).await,
        signed_in_as(&env, FIREFOX, ADA).await,
    ];
    let grace = signed_in_as(&env, FIREFOX, GRACE).await;
    let token = laptop.csrf_token_on("/account").await;
    let response = laptop
        .post_form("/account/sessions/end-others", &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        laptop
            .text("/account")
            .await
            .1
            .contains("Signed out on 2 other devices")
    );
    for other in &others {
        assert!(!other.text("/").await.1.contains("Hi, Ada!"));
    }
    assert!(laptop.text("/").await.1.contains("Hi, Ada!"));
    assert!(
        grace.text("/").await.1.contains("Hi, Grace"),
        "another person is untouched"
    );
}

#[tokio::test]
async fn another_persons_session_cannot_be_ended_and_forms_need_the_token() {
    let env = TestEnv::start().await;
    let ada = signed_in_as(&env, FIREFOX, ADA).await;
    let _ada_phone = signed_in_as(&env, IPHONE, ADA).await;
    let grace = signed_in_as(&env, FIREFOX, GRACE).await;
    let grace_phone = signed_in_as(&env, IPHONE, GRACE).await;
    // Ada's page names Ada's other session; Grace posts its reference with her own token.
    let (_, page) = ada.text("/account").await;
    let adas_reference = end_forms(&page).pop().expect("Ada's other session");
    let grace_token = grace.csrf_token_on("/account").await;
    let before = env.signed_in_session_ids().await;
    let response = grace
        .post_form(
            &format!("/account/sessions/{adas_reference}/end"),
            &[("csrf_token", &grace_token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(env.signed_in_session_ids().await, before, "nothing ended");
    // Made-up references and garbage end nothing either.
    for reference in ["0".repeat(32), "not-hex".to_owned(), "%00".to_owned()] {
        let response = grace
            .post_form(
                &format!("/account/sessions/{reference}/end"),
                &[("csrf_token", &grace_token)],
            )
            .await;
        assert!(
            response.status() == StatusCode::SEE_OTHER
                || response.status() == StatusCode::NOT_FOUND,
            "{reference}: {}",
            response.status()
        );
    }
    assert_eq!(env.signed_in_session_ids().await, before, "nothing ended");
    // Without the token, or with another session's: 403, nothing ended.
    let (_, page) = grace.text("/account").await;
    let graces_reference = end_forms(&page).pop().expect("Grace's phone");
    let adas_token = ada.csrf_token_on("/account").await;
    for form in [vec![], vec![("csrf_token", adas_token.as_str())]] {
        for path in [
            format!("/account/sessions/{graces_reference}/end"),
            "/account/sessions/end-others".to_owned(),
        ] {
            let response = grace.post_form(&path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
    // A GET is the 405 page.
    let response = grace.get("/account/sessions/end-others").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(env.signed_in_session_ids().await, before, "nothing ended");
    assert!(grace_phone.text("/").await.1.contains("Hi, Grace"));
    // Someone signed out posting goes home, and nothing changes.
    let stranger = env.browser();
    let response = stranger
        .post_form("/account/sessions/end-others", &[("csrf_token", "x")])
        .await;
    assert_eq!(location(&response), "/");
    assert_eq!(env.signed_in_session_ids().await, before);
}

#[tokio::test]
async fn recent_activity_shows_sign_ins_and_refusals_newest_first() {
    let env = TestEnv::start().await;
    let laptop = signed_in_as(&env, FIREFOX, ADA).await;
    let _phone = signed_in_as(&env, IPHONE, ADA).await;
    let (_, page) = laptop.text("/account").await;
    let activity = &page[page.find("Recent activity").expect("the section")..];
    assert_eq!(
        activity.matches("Signed in</strong>").count(),
        2,
        "{activity}"
    );
    // Newest first: the phone's sign-in is above the laptop's.
    common::assert_in_order(activity, "Safari on iPhone", "Firefox on Linux");
    assert!(activity.contains("with Facebook"));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sign_in_event")
        .fetch_one(&env.db)
        .await
        .expect("count");
    assert_eq!(rows, 2);
    // Grace's sign-in is hers alone.
    let _grace = signed_in_as(&env, FIREFOX, GRACE).await;
    let (_, page) = laptop.text("/account").await;
    let activity = &page[page.find("Recent activity").expect("the section")..];
    assert_eq!(activity.matches("Signed in</strong>").count(), 2);
}

#[tokio::test]
async fn no_activity_is_kept_with_retention_zero_and_old_activity_is_forgotten() {
    let env = TestEnv::start_with(|f| f.merge(("audit.retention_days", 0))).await;
    let browser = signed_in_as(&env, FIREFOX, ADA).await;
    let (_, page) = browser.text("/account").await;
    assert!(
        page.contains("This site keeps no record of sign-ins."),
        "{page}"
    );
    assert_eq!(env.count("sign_in_event").await, 0);

    // Kept for 90 days (the default): housekeeping forgets what is older.
    let env = TestEnv::start().await;
    let _browser = signed_in_as(&env, FIREFOX, ADA).await;
    assert_eq!(env.count("sign_in_event").await, 1);
    let store = loginwith::store::Store::connect(&env.config.database.url)
        .await
        .expect("store");
    let day = std::time::Duration::from_secs(24 * 60 * 60);
    store
        .housekeeping(day, day, 90 * day)
        .await
        .expect("housekeeping");
    assert_eq!(env.count("sign_in_event").await, 1, "a fresh sign-in stays");
    sqlx::query("UPDATE sign_in_event SET at = at - $1")
        .bind(91 * 24 * 60 * 60 * 1000_i64)
        .execute(&env.db)
        .await
        .expect("age it");
    store
        .housekeeping(day, day, 90 * day)
        .await
        .expect("housekeeping");
    assert_eq!(
        env.count("sign_in_event").await,
        0,
        "older than 90 days: gone"
    );
}

#[tokio::test]
async fn last_used_moves_at_most_once_an_hour_whoever_reads_the_sign_in() {
    let env = TestEnv::start().await;
    let browser = signed_in_as(&env, FIREFOX, ADA).await;
    let id = env.signed_in_session_ids().await.pop().expect("a session");
    let seen = || async {
        sqlx::query_scalar::<_, i64>("SELECT last_seen_at FROM session WHERE id = $1")
            .bind(&id)
            .fetch_one(&env.db)
            .await
            .expect("last_seen_at")
    };
    let at_sign_in = seen().await;
    let signed_in_at: i64 = sqlx::query_scalar("SELECT signed_in_at FROM session WHERE id = $1")
        .bind(&id)
        .fetch_one(&env.db)
        .await
        .expect("signed_in_at");
    assert_eq!(
        at_sign_in, signed_in_at,
        "a new sign-in was last used when it began"
    );
    // Within the hour: pages and checks read it and write nothing.
    browser.text("/").await;
    browser.text("/").await;
    assert_eq!(seen().await, at_sign_in);
    // Two hours later, the next read moves it to now, once.
    let two_hours = 2 * 60 * 60 * 1000_i64;
    sqlx::query("UPDATE session SET last_seen_at = last_seen_at - $1 WHERE id = $2")
        .bind(two_hours)
        .bind(&id)
        .execute(&env.db)
        .await
        .expect("age it");
    let before = loginwith::store::now_ms();
    let response = reqwest::Client::new()
        .get(format!("{}/auth/check", env.app_url))
        .header(reqwest::header::COOKIE, format!("loginwith_session={id}"))
        .send()
        .await
        .expect("check");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_none(),
        "still no cookie from the check"
    );
    // Written beside the check's answer, which does not wait for it.
    common::eventually("last used moved to now", || async {
        seen().await >= before
    })
    .await;
    let moved = seen().await;
    browser.text("/").await;
    assert_eq!(seen().await, moved, "not again within the hour");
    // A page reads it the same way.
    sqlx::query("UPDATE session SET last_seen_at = last_seen_at - $1 WHERE id = $2")
        .bind(two_hours)
        .bind(&id)
        .execute(&env.db)
        .await
        .expect("age it");
    browser.text("/").await;
    assert!(seen().await >= moved, "the home page moved it");
    // The page says it as precisely as it is kept: this browser is in use now; another
    // sign-in, last used two hours ago, to the hour.
    let other = signed_in_as(&env, IPHONE, ADA).await;
    let (_, page) = other.text("/account").await;
    let devices = devices_section(&page);
    assert!(devices.contains("last used now"), "{devices}");
    assert!(
        devices.contains("last used within the past hour"),
        "{devices}"
    );
    sqlx::query("UPDATE session SET last_seen_at = last_seen_at - $1 WHERE id = $2")
        .bind(two_hours)
        .bind(&id)
        .execute(&env.db)
        .await
        .expect("age it");
    let (_, page) = other.text("/account").await;
    assert!(devices_section(&page).contains(":00 UTC"), "{page}");
}

#[tokio::test]
async fn with_no_activity_kept_the_privacy_page_does_not_promise_any() {
    let env = TestEnv::start_with(|f| f.merge(("audit.retention_days", 0))).await;
    let (_, page) = env.browser().text("/privacy").await;
    assert!(!page.contains("Recent activity"), "{page}");
    assert!(
        page.contains("the kind of browser and system"),
        "sessions still say so"
    );
}

#[tokio::test]
async fn a_sign_in_goes_on_when_its_activity_cannot_be_recorded() {
    let env = TestEnv::start().await;
    sqlx::query("ALTER TABLE sign_in_event RENAME TO sign_in_event_elsewhere")
        .execute(&env.db)
        .await
        .expect("rename");
    let home = env.browser().login(ADA).await;
    assert!(home.contains("Hi, Ada!"), "{home}");
}

#[tokio::test]
async fn retention_zero_forgets_activity_kept_before() {
    let env = TestEnv::start().await;
    signed_in_as(&env, FIREFOX, ADA).await;
    assert_eq!(env.count("sign_in_event").await, 1);
    // An instance configured to keep none cleans up at start-up.
    let _none = TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        env.config.database.url.clone(),
        loginwith::config::Environment::Development,
        Vec::new(),
        |f| f.merge(("audit.retention_days", 0)),
    )
    .await;
    assert_eq!(env.count("sign_in_event").await, 0);
}

#[tokio::test]
async fn a_sign_in_past_its_absolute_lifetime_is_not_listed() {
    let env = TestEnv::start().await;
    let laptop = signed_in_as(&env, FIREFOX, ADA).await;
    let _phone = signed_in_as(&env, IPHONE, ADA).await;
    // The phone's sign-in began longer ago than session.absolute_days (90): over, though
    // its row waits for the clean-up.
    let long_ago = loginwith::store::now_ms() - 91 * 24 * 60 * 60 * 1000;
    sqlx::query("UPDATE session SET signed_in_at = $1 WHERE device = 'Safari on iPhone'")
        .bind(long_ago)
        .execute(&env.db)
        .await
        .expect("age it");
    let (_, page) = laptop.text("/account").await;
    let devices = devices_section(&page);
    assert!(!devices.contains("Safari on iPhone"), "{devices}");
    assert!(devices.contains("Firefox on Linux"), "{devices}");
}
