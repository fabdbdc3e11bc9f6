//! `loginwith users …`: the operators' commands, run as the binary against the database a
//! running app uses (SQLite or, with `LOGINWITH_TEST_FLOWS_ON_POSTGRES`, PostgreSQL), and
//! what they change for people: sessions ended at once, blocked people refused.

use std::process::{Command, Output};

use loginwith_testkit as common;

use common::{ADA, Browser, Person, TestEnv};
use loginwith::config::Environment;
use reqwest::StatusCode;

const GRACE: Person<'static> = Person {
    first: "Grace <b>",
    last: "Hopper 🦀",
    email: "grace@example.com",
};
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// `loginwith users ARGS` on `env`'s database; the process's output.
fn users(env: &TestEnv, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    command.arg("users").args(args).current_dir(dir.path());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOGINWITH_") {
            command.env_remove(name);
        }
    }
    command
        .env("LOGINWITH_DATABASE__URL", &env.config.database.url)
        .output()
        .expect("run the binary")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(!output.status.success(), "should fail: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn person_id(env: &TestEnv, email: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM user_profile WHERE email = $1")
        .bind(email)
        .fetch_one(&env.db)
        .await
        .expect("the person")
}

/// Everything a command must never print: session ids and their CSRF tokens.
async fn secrets(env: &TestEnv) -> Vec<String> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, data FROM session")
        .fetch_all(&env.db)
        .await
        .expect("sessions");
    let mut secrets = Vec::new();
    for (id, data) in rows {
        secrets.push(id);
        let data: serde_json::Value = serde_json::from_str(&data).expect("JSON");
        if let Some(csrf) = data["csrf"].as_str() {
            secrets.push(csrf.to_owned());
        }
    }
    secrets
}

#[tokio::test]
async fn list_and_show_print_people_their_identities_sessions_and_activity_and_no_secret() {
    let env = TestEnv::start().await;
    Browser::with_user_agent(&env.app_url, FIREFOX)
        .login(ADA)
        .await;
    env.browser().login(ADA).await;
    env.browser().login(GRACE).await;
    let ada = person_id(&env, "ada@example.com").await;
    let grace = person_id(&env, "grace@example.com").await;
    let secrets = secrets(&env).await;

    let list = stdout(&users(&env, &["list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[0].starts_with(&format!("{ada}\tAda Lovelace <ada@example.com>")),
        "{list}"
    );
    assert!(lines[0].contains("facebook:"), "{list}");
    assert!(lines[0].contains("2 session(s)"), "{list}");
    assert!(
        lines[1].starts_with(&format!("{grace}\tGrace <b> Hopper 🦀")),
        "{list}"
    );
    assert_eq!(lines[2], "2 people");

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&users(&env, &["list", "--json"]))).expect("JSON");
    assert_eq!(json["total"], 2);
    assert_eq!(json["people"][0]["id"], ada);
    assert_eq!(json["people"][0]["live_sessions"], 2);
    assert_eq!(json["people"][0]["identities"][0]["provider"], "facebook");
    assert_eq!(json["people"][1]["name"], "Grace <b> Hopper 🦀");

    let only_grace = stdout(&users(&env, &["list", "--email", "GRACE@example.com"]));
    assert!(
        only_grace.starts_with(&format!("{grace}\t")),
        "{only_grace}"
    );
    assert!(only_grace.trim_end().ends_with("1 person"), "{only_grace}");
    let nobody = stdout(&users(&env, &["list", "--provider", "github"]));
    assert_eq!(nobody.trim(), "nobody matches");
    let limited = stdout(&users(&env, &["list", "--limit", "1"]));
    assert!(limited.contains("1 of 2 people shown"), "{limited}");

    for who in [ada.to_string(), "ada@example.com".to_owned()] {
        let shown = stdout(&users(&env, &["show", &who]));
        assert!(shown.contains("sessions (2):"), "{shown}");
        assert!(shown.contains("Firefox on Linux with facebook"), "{shown}");
        assert!(shown.contains("recent activity (2):"), "{shown}");
        assert!(
            shown.contains("signed in with facebook from Firefox on Linux"),
            "{shown}"
        );
        for secret in &secrets {
            assert!(!shown.contains(secret.as_str()), "a secret in `users show`");
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&users(&env, &["show", &ada.to_string(), "--json"])))
            .expect("JSON");
    assert_eq!(json["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["recent_activity"][0]["outcome"], "signed_in");
    assert_eq!(json["blocked"], serde_json::Value::Null);
    for output in [
        users(&env, &["list"]),
        users(&env, &["list", "--json"]),
        users(&env, &["show", &grace.to_string(), "--json"]),
    ] {
        let text = String::from_utf8_lossy(&output.stdout);
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret printed");
        }
    }
}

#[tokio::test]
async fn sign_out_ends_every_session_of_the_person_at_once() {
    let env = TestEnv::start().await;
    let laptop = env.browser();
    laptop.login(ADA).await;
    let phone = env.browser();
    phone.login(ADA).await;
    let grace = env.browser();
    grace.login(GRACE).await;
    let output = stdout(&users(&env, &["sign-out", "ada@example.com"]));
    assert!(output.contains("2 session(s) ended"), "{output}");
    assert_eq!(env.auth_check(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.auth_check(&phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.auth_check(&grace).await, StatusCode::OK);
    // She may sign in again: a sign-out is not a block.
    assert!(laptop.login(ADA).await.contains("Hi, Ada!"));
}

#[tokio::test]
async fn a_blocked_person_is_refused_everywhere_until_unblocked() {
    let env = TestEnv::start().await;
    // A second instance on the same database.
    let other = TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        env.config.database.url.clone(),
        Environment::Development,
        Vec::new(),
        |f| f,
    )
    .await;
    let ada = Browser::with_user_agent(&env.app_url, FIREFOX);
    ada.login(ADA).await;
    let on_other = Browser::new(&other.app_url);
    on_other.set_cookie(&format!(
        "loginwith_session={}",
        ada.cookie("loginwith_session").expect("a session")
    ));
    assert_eq!(other.auth_check(&on_other).await, StatusCode::OK);
    let grace = env.browser();
    grace.login(GRACE).await;
    let id = person_id(&env, "ada@example.com").await;

    let output = stdout(&users(
        &env,
        &["block", "ada@example.com", "--reason", "left the company"],
    ));
    assert!(
        output.contains(&format!("person {id} blocked: 1 session(s) ended")),
        "{output}"
    );
    assert_eq!(env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(other.auth_check(&on_other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.auth_check(&grace).await, StatusCode::OK);

    // Signing in again: the provider says yes, loginwith says no, with the refusal page.
    for instance in [&env, &other] {
        let browser = Browser::with_user_agent(&instance.app_url, FIREFOX);
        browser.login_until_preloader(ADA).await;
        assert_eq!(browser.wait_status().await, "ok");
        let response = browser.get("/success").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let page = response.text().await.expect("page");
        assert!(page.contains("may not sign in"), "{page}");
        assert_eq!(
            instance.auth_check(&browser).await,
            StatusCode::UNAUTHORIZED
        );
        assert!(!browser.text("/").await.1.contains("Hi, Ada!"));
    }
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM session WHERE user_id = $1")
        .bind(id)
        .fetch_one(&env.db)
        .await
        .expect("count");
    assert_eq!(sessions, 0);

    let shown = stdout(&users(&env, &["show", &id.to_string()]));
    assert!(shown.contains("blocked since "), "{shown}");
    assert!(shown.contains(": left the company"), "{shown}");
    assert!(
        shown.contains("refused with facebook from Firefox on Linux"),
        "{shown}"
    );
    assert!(stdout(&users(&env, &["list"])).contains("\tBLOCKED"));
    // Blocking again keeps the first block.
    stdout(&users(&env, &["block", &id.to_string()]));
    assert!(stdout(&users(&env, &["show", &id.to_string()])).contains("left the company"));

    let output = stdout(&users(&env, &["unblock", &id.to_string()]));
    assert!(output.contains("unblocked"), "{output}");
    let output = stdout(&users(&env, &["unblock", &id.to_string()]));
    assert!(output.contains("was not blocked"), "{output}");
    assert!(ada.login(ADA).await.contains("Hi, Ada!"));
}

#[tokio::test]
async fn blocked_between_the_exchange_and_success_is_still_refused() {
    let env = TestEnv::start().await;
    let ada = env.browser();
    ada.login(ADA).await;
    let again = env.browser();
    again.login_until_preloader(ADA).await;
    assert_eq!(again.wait_status().await, "ok");
    stdout(&users(&env, &["block", "ada@example.com"]));
    let response = again.get("/success").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(env.auth_check(&again).await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.signed_in_session_ids().await.len(), 0);
}

#[tokio::test]
async fn an_address_two_people_share_is_refused_naming_both_and_mistakes_fail_clearly() {
    let env = TestEnv::start().await;
    env.browser().login(ADA).await;
    let first = person_id(&env, "ada@example.com").await;
    // A second person with the same address (another provider's account, not linked).
    sqlx::query(
        "INSERT INTO user_profile (first_name, last_name, email, created_at, updated_at)
         VALUES ('Ada', 'Twin', 'ADA@example.com', 1, 1)",
    )
    .execute(&env.db)
    .await
    .expect("insert");
    let second: i64 = sqlx::query_scalar("SELECT max(id) FROM user_profile")
        .fetch_one(&env.db)
        .await
        .expect("id");
    for command in ["show", "sign-out", "block", "unblock", "delete"] {
        let error = stderr_of_failure(&users(&env, &[command, "ada@example.com"]));
        assert!(
            error.contains(&format!(
                "is the address of 2 people (ids {first}, {second})"
            )),
            "{command}: {error}"
        );
    }
    assert_eq!(env.signed_in_session_ids().await.len(), 1, "nothing ended");
    for (args, says) in [
        (vec!["show", "999999"], "there is no person 999999"),
        (
            vec!["block", "nobody@example.com"],
            "nobody has the address nobody@example.com",
        ),
        (vec!["delete", "999999"], "there is no person 999999"),
        (vec!["show", "not an id"], "is neither a person's id"),
    ] {
        let error = stderr_of_failure(&users(&env, &args));
        assert!(error.contains(says), "{args:?}: {error}");
    }
    // Two filters at once is a usage mistake.
    stderr_of_failure(&users(
        &env,
        &["list", "--email", "a@b", "--provider", "facebook"],
    ));
}

#[tokio::test]
async fn delete_removes_the_person_as_their_own_deletion_does() {
    let env = TestEnv::start().await;
    let ada = env.browser();
    ada.login(ADA).await;
    env.browser().login(GRACE).await;
    let id = person_id(&env, "ada@example.com").await;
    let output = stdout(&users(&env, &["delete", &id.to_string()]));
    assert!(output.contains(&format!("person {id} deleted")), "{output}");
    assert_eq!(env.auth_check(&ada).await, StatusCode::UNAUTHORIZED);
    for table in ["user_identity", "session", "sign_in_event"] {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {} = $1",
            if table == "session" {
                "user_id"
            } else {
                "user_profile_id"
            }
        )))
        .bind(id)
        .fetch_one(&env.db)
        .await
        .expect("count");
        assert_eq!(rows, 0, "{table}");
    }
    stderr_of_failure(&users(&env, &["delete", &id.to_string()]));
    // Signing in again makes a new person, with a new id.
    ada.login(ADA).await;
    assert_ne!(person_id(&env, "ada@example.com").await, id);
}

#[tokio::test]
async fn a_refused_sign_in_of_an_existing_person_is_in_their_recent_activity() {
    let env = TestEnv::start().await;
    let ada = Browser::with_user_agent(&env.app_url, FIREFOX);
    ada.login(ADA).await;
    // Another instance, whose [access] lets in only Grace's domain.
    let strict = TestEnv::start_on(
        tempfile::tempdir().expect("temp dir"),
        env.config.database.url.clone(),
        Environment::Development,
        Vec::new(),
        |f| f.merge(("access.emails", vec!["grace@example.com"])),
    )
    .await;
    let refused = Browser::with_user_agent(&strict.app_url, FIREFOX);
    refused.login_until_preloader(ADA).await;
    assert_eq!(refused.wait_status().await, "error");
    // A newcomer refused leaves nothing.
    let stranger = Browser::new(&strict.app_url);
    stranger
        .login_until_preloader(Person {
            first: "Mallory",
            last: "M",
            email: "mallory@example.com",
        })
        .await;
    assert_eq!(stranger.wait_status().await, "error");
    assert_eq!(
        env.count("sign_in_event").await,
        2,
        "Ada's sign-in and her refusal"
    );
    let (_, page) = ada.text("/account").await;
    let activity = &page[page.find("Recent activity").expect("section")..];
    common::assert_in_order(activity, "Refused", "Signed in");
    assert!(activity.contains("from Firefox on Linux"), "{activity}");
}
