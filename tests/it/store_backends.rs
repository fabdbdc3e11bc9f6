//! The store's promises on every database: SQLite always, and PostgreSQL when
//! `LOGINWITH_TEST_DATABASE_URL` names a server (`.ci/run` does). Each test runs its body once
//! per database, on a fresh one.

use loginwith_testkit as common;

use std::{collections::HashSet, time::Duration};

use common::db::TestDb;
use loginwith::{
    Membership,
    auth::{FailureReason, Profile},
    store::{Consumed, Deletion, EmailLinking, OperationStatus, Store, Unlink, UserId},
};

fn person(id: &str, email: &str) -> Profile {
    Profile {
        provider_user_id: id.to_owned(),
        first_name: "Ada <b>".into(),
        last_name: "Lovelace 🦀".into(),
        email: Some(email.to_owned()),
        email_verified: true,
        issuer: None,
        membership: Default::default(),
        provider_sid: None,
        names_withheld: false,
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// A whole sign-in at the store: an operation, finished with this person.
async fn sign_in(store: &Store, provider: &str, id: &str, email: &str) -> loginwith::store::UserId {
    let op = store.create_operation(provider).await.unwrap();
    store
        .complete_login(op, provider, &person(id, email))
        .await
        .unwrap()
}

/// The groups, organisations and teams a provider named travel with the operation to
/// `/success`, for a first sign-in and a returning one (PostgreSQL answers that one with a
/// statement of its own), and nothing of them is kept with the person.
#[tokio::test]
async fn the_membership_named_at_sign_in_is_handed_to_success_with_the_operation() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let membership = Membership {
            groups: vec!["/acme/admins".into(), "ops 🦀".into()],
            github_orgs: vec!["acme".into()],
            github_teams: vec!["acme/ops".into()],
        };
        let mut ada = person("2001", "ada@example.com");
        ada.membership = membership.clone();
        for round in ["first", "returning"] {
            let op = store.create_operation("corp").await.unwrap();
            let user = store.complete_login(op, "corp", &ada).await.unwrap();
            let consumed = store.consume_operation(op).await.unwrap().unwrap();
            assert_eq!(consumed.user, user, "{} {round}", db.backend);
            assert_eq!(consumed.membership, membership, "{} {round}", db.backend);
        }
        // A sign-in that named none hands none on (not the last one's).
        ada.membership = Membership::default();
        let op = store.create_operation("corp").await.unwrap();
        store.complete_login(op, "corp", &ada).await.unwrap();
        let consumed = store.consume_operation(op).await.unwrap().unwrap();
        assert_eq!(consumed.membership, Membership::default(), "{}", db.backend);
    }
}

#[tokio::test]
async fn a_sign_in_is_recorded_read_back_and_consumed_once() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        assert!(store.migrations_applied().await.unwrap(), "{}", db.backend);
        let op = store.create_operation("facebook").await.unwrap();
        let pending = store.operation(op, MINUTE).await.unwrap().unwrap();
        assert_eq!(pending.status, OperationStatus::Pending, "{}", db.backend);
        let user = store
            .complete_login(op, "facebook", &person("1001", "ada@example.com"))
            .await
            .unwrap();
        let done = store.operation(op, MINUTE).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.user),
            (OperationStatus::Ok, Some(user)),
            "{}",
            db.backend
        );
        let shown = store.user(user).await.unwrap().unwrap();
        assert_eq!(shown.first_name, "Ada <b>", "{}", db.backend);
        assert_eq!(shown.last_name, "Lovelace 🦀", "{}", db.backend);
        assert_eq!(
            store.consume_operation(op).await.unwrap(),
            Some(Consumed {
                user,
                provider: "facebook".to_owned(),
                link_for: None,
                membership: Membership::default(),
                provider_sid: None,
                blocked: false,
            }),
            "{}",
            db.backend
        );
        assert_eq!(
            store.consume_operation(op).await.unwrap(),
            None,
            "{}",
            db.backend
        );
        // A finished operation is never overwritten.
        store
            .fail_operation(op, FailureReason::Timeout)
            .await
            .unwrap();
        let still = store.operation(op, MINUTE).await.unwrap().unwrap();
        assert_eq!(still.status, OperationStatus::Ok, "{}", db.backend);
        store.close().await;
    }
}

/// A returning person's sign-in (on PostgreSQL one statement of its own) refreshes their
/// names, keeps an address the provider did not send this time, marks their identity used
/// and the operation `ok`; an operation that already ended stays as it ended.
#[tokio::test]
async fn a_returning_person_is_refreshed_and_their_operation_finished() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let first = sign_in(&store, "facebook", "2002", "grace@example.com").await;
        let before = store.identities(first).await.unwrap();

        let op = store.create_operation("facebook").await.unwrap();
        let mut again = person("2002", "ignored@example.com");
        again.first_name = "Grace 🚢".into();
        again.email = None;
        let user = store.complete_login(op, "facebook", &again).await.unwrap();
        assert_eq!(user, first, "{}", db.backend);
        let shown = store.user(user).await.unwrap().unwrap();
        assert_eq!(shown.first_name, "Grace 🚢", "{}", db.backend);
        assert_eq!(
            shown.email.as_deref(),
            Some("grace@example.com"),
            "{}",
            db.backend
        );
        let done = store.operation(op, MINUTE).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.user),
            (OperationStatus::Ok, Some(first)),
            "{}",
            db.backend
        );
        let after = store.identities(first).await.unwrap();
        assert_eq!(after.len(), 1, "{}", db.backend);
        assert!(
            after[0].last_login_at_ms >= before[0].last_login_at_ms,
            "{}",
            db.backend
        );

        // An operation that timed out meanwhile is not turned into a sign-in.
        let late = store.create_operation("facebook").await.unwrap();
        store
            .fail_operation(late, FailureReason::Timeout)
            .await
            .unwrap();
        store
            .complete_login(late, "facebook", &person("2002", "grace@example.com"))
            .await
            .unwrap();
        let ended = store.operation(late, MINUTE).await.unwrap().unwrap();
        assert_eq!(
            (ended.status, ended.user, ended.error),
            (OperationStatus::Error, None, Some(FailureReason::Timeout)),
            "{}",
            db.backend
        );
        assert_eq!(
            store.consume_operation(late).await.unwrap(),
            None,
            "{}",
            db.backend
        );
        store.close().await;
    }
}

/// Twenty first sign-ins of one new person at once (tabs, instances): the unique
/// `(provider, provider_user_id)` settles it, one person, one identity, every operation `ok`.
#[tokio::test]
async fn racing_first_sign_ins_make_one_person() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let op = store.create_operation("github").await.unwrap();
                let user = store
                    .complete_login(op, "github", &person("42", "ada@example.com"))
                    .await
                    .unwrap();
                (op, user)
            }));
        }
        let mut users = Vec::new();
        for task in tasks {
            let (op, user) = task.await.unwrap();
            let done = store.operation(op, MINUTE).await.unwrap().unwrap();
            assert_eq!(done.status, OperationStatus::Ok, "{}", db.backend);
            users.push(user);
        }
        users.dedup();
        assert_eq!(users.len(), 1, "{}: {users:?}", db.backend);
        let inspect = db.inspect().await;
        assert_eq!(inspect.count("user_profile").await, 1, "{}", db.backend);
        assert_eq!(inspect.count("user_identity").await, 1, "{}", db.backend);
        store.close().await;
    }
}

#[tokio::test]
async fn linking_and_unlinking_keep_at_least_one_identity_even_when_racing() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let ada = sign_in(&store, "facebook", "1001", "ada@example.com").await;
        let bob = sign_in(&store, "github", "777", "bob@example.com").await;
        // A free identity joins Ada; Bob's stays Bob's and nothing changes.
        let op = store.create_link_operation("github", ada).await.unwrap();
        let linked = store
            .link_identity(op, ada, "github", &person("42", "ada@example.com"))
            .await
            .unwrap();
        assert_eq!(linked, Ok(()), "{}", db.backend);
        let op = store.create_link_operation("github", ada).await.unwrap();
        let taken = store
            .link_identity(op, ada, "github", &person("777", "bob@example.com"))
            .await
            .unwrap();
        assert_eq!(taken, Err(FailureReason::IdentityTaken), "{}", db.backend);
        let failed = store.operation(op, MINUTE).await.unwrap().unwrap();
        assert_eq!(failed.error, Some(FailureReason::IdentityTaken));
        assert_eq!(store.identities(bob).await.unwrap().len(), 1);
        let identities = store.identities(ada).await.unwrap();
        assert_eq!(identities.len(), 2, "{}", db.backend);

        // Both of Ada's identities removed at once: one removal wins, the other is refused
        // as her last, and she can still sign in.
        let (first, second) = tokio::join!(
            store.unlink_identity(ada, identities[0].id, None),
            store.unlink_identity(ada, identities[1].id, None),
        );
        let mut outcomes = [first.unwrap(), second.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            outcomes,
            [Unlink::LastOne, Unlink::Removed],
            "{}",
            db.backend
        );
        assert_eq!(
            store.identities(ada).await.unwrap().len(),
            1,
            "{}",
            db.backend
        );
        // Someone else's identity is not found.
        let bobs = store.identities(bob).await.unwrap();
        assert_eq!(
            store.unlink_identity(ada, bobs[0].id, None).await.unwrap(),
            Unlink::NotFound
        );
        store.close().await;
    }
}

#[tokio::test]
async fn deleting_a_person_takes_everything_and_their_ids_never_come_back() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let ada = sign_in(&store, "facebook", "1001", "ada@example.com").await;
        let deletion = store.delete_identity("facebook", "1001").await.unwrap();
        assert_eq!(
            deletion,
            Deletion {
                identity_deleted: true,
                profile_deleted: true
            },
            "{}",
            db.backend
        );
        store
            .record_deletion("code-1", "facebook", deletion)
            .await
            .unwrap();
        let record = store.deletion("code-1").await.unwrap().unwrap();
        assert_eq!(record.deletion, deletion, "{}", db.backend);
        assert!(store.user(ada).await.unwrap().is_none());
        let inspect = db.inspect().await;
        assert_eq!(inspect.count("async_operation").await, 0, "{}", db.backend);
        // The same person again is somebody new, under a new id.
        let again = sign_in(&store, "facebook", "1001", "ada@example.com").await;
        assert!(again.0 > ada.0, "{}: {again} after {ada}", db.backend);
        store.close().await;
    }
}

#[tokio::test]
async fn orphaned_and_old_operations_are_swept() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let inspect = db.inspect().await;
        let orphan = store.create_operation("facebook").await.unwrap();
        let fresh = store.create_operation("facebook").await.unwrap();
        inspect
            .execute(
                "UPDATE async_operation SET created_at = created_at - 120000 WHERE id = $1",
                orphan.0,
            )
            .await;
        let orphaned = store.housekeeping(MINUTE, MINUTE, MINUTE).await.unwrap();
        assert_eq!(orphaned, 1, "{}", db.backend);
        let swept = store.operation(orphan, MINUTE).await.unwrap().unwrap();
        assert_eq!(swept.error, Some(FailureReason::Timeout), "{}", db.backend);
        let fresh = store.operation(fresh, MINUTE).await.unwrap().unwrap();
        assert_eq!(fresh.status, OperationStatus::Pending, "{}", db.backend);
        inspect
            .execute(
                "UPDATE async_operation SET updated_at = updated_at - 120000 WHERE id = $1",
                orphan.0,
            )
            .await;
        assert_eq!(
            store.delete_finished_operations(MINUTE).await.unwrap(),
            1,
            "{}",
            db.backend
        );
        store.close().await;
    }
}

#[tokio::test]
async fn the_session_table_creates_loads_saves_expires_and_deletes() {
    use tower_sessions::{
        SessionStore,
        session::{Id, Record},
    };
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let sessions = store.sessions();
        let mut record = Record {
            id: Id::default(),
            data: [("k".to_owned(), serde_json::json!(1))].into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        let first_id = record.id;
        sessions.create(&mut record).await.unwrap();
        assert_eq!(record.id, first_id, "{}", db.backend);
        // A colliding id gets a fresh one instead of overwriting.
        let mut twin = Record {
            data: Default::default(),
            ..record.clone()
        };
        sessions.create(&mut twin).await.unwrap();
        assert_ne!(twin.id, first_id, "{}", db.backend);
        let loaded = sessions.load(&first_id).await.unwrap().unwrap();
        assert_eq!(loaded.data["k"], 1, "{}", db.backend);
        record.data.insert("k".into(), serde_json::json!(2));
        sessions.save(&record).await.unwrap();
        assert_eq!(
            sessions.load(&first_id).await.unwrap().unwrap().data["k"],
            2,
            "{}",
            db.backend
        );
        sessions.delete(&first_id).await.unwrap();
        assert!(sessions.load(&first_id).await.unwrap().is_none());

        twin.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        sessions.save(&twin).await.unwrap();
        assert!(
            sessions.load(&twin.id).await.unwrap().is_none(),
            "{}: expired reads as none",
            db.backend
        );
        assert_eq!(
            sessions.delete_expired().await.unwrap(),
            1,
            "{}",
            db.backend
        );

        // Signed in as a person: deleting them ends the session; signed in as someone who
        // no longer exists: not stored at all.
        let ada = sign_in(&store, "facebook", "1001", "ada@example.com").await;
        let signed_in = |id: i64| {
            let data = [(
                loginwith::store::SIGNED_IN_KEY.to_owned(),
                serde_json::json!({ "user": id }),
            )];
            Record {
                id: Id::default(),
                data: data.into(),
                expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            }
        };
        let mut hers = signed_in(ada.0);
        sessions.create(&mut hers).await.unwrap();
        assert!(
            sessions.load(&hers.id).await.unwrap().is_some(),
            "{}",
            db.backend
        );
        store.delete_user(ada).await.unwrap();
        assert!(
            sessions.load(&hers.id).await.unwrap().is_none(),
            "{}: her session ended with her",
            db.backend
        );
        let mut ghost = signed_in(ada.0);
        sessions.create(&mut ghost).await.unwrap();
        assert!(
            sessions.load(&ghost.id).await.unwrap().is_none(),
            "{}: a deleted person's new session is not stored",
            db.backend
        );
        store.close().await;
    }
}

/// `link_by_verified_email` joins a newcomer only to a person whose address was last given as
/// verified by a provider it trusts: the verifier is recorded when a person is made, refreshed
/// at every sign-in that gives an address (on PostgreSQL a returning person's one statement),
/// and forgotten when a provider gives the address unverified.
#[tokio::test]
async fn a_join_by_email_trusts_only_the_provider_that_last_verified_the_address() {
    let trusted = HashSet::from(["corp".to_owned()]);
    let linking = EmailLinking::WhenVerified { trusted: &trusted };
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let first = |provider: &'static str, id: &'static str, email: &'static str| {
            let store = store.clone();
            async move {
                let op = store.create_operation(provider).await.unwrap();
                store
                    .complete_sign_in(op, provider, &person(id, email), linking)
                    .await
                    .unwrap()
            }
        };
        // Verified by GitHub, which corp's sign-ins do not trust: a second person.
        let ada = sign_in(&store, "github", "1", "ada@example.com").await;
        let newcomer = first("corp", "c-ada", "ada@example.com").await;
        assert_ne!(newcomer.user, ada, "{}", db.backend);

        // Verified by corp itself: a second corp identity joins.
        let grace = first("corp", "c-grace", "grace@example.com").await.user;
        let joined = first("corp", "c-grace-2", "GRACE@example.com").await;
        assert_eq!(
            (joined.user, joined.joined_by_email),
            (grace, true),
            "{}",
            db.backend
        );
        // Grace adds GitHub and signs in with it: GitHub is now who last verified her
        // address, and a newcomer no longer joins her.
        let op = store.create_link_operation("github", grace).await.unwrap();
        let linked = store
            .link_identity(op, grace, "github", &person("2", "grace@example.com"))
            .await
            .unwrap();
        assert_eq!(linked, Ok(()), "{}", db.backend);
        assert_eq!(
            sign_in(&store, "github", "2", "grace@example.com").await,
            grace
        );
        let refused = first("corp", "c-grace-3", "grace@example.com").await;
        assert_ne!(refused.user, grace, "{}", db.backend);
        store.delete_user(refused.user).await.unwrap();
        // Back with corp, which verifies it again: joinable again.
        assert_eq!(
            sign_in(&store, "corp", "c-grace", "grace@example.com").await,
            grace
        );
        let joined = first("corp", "c-grace-4", "grace@example.com").await;
        assert_eq!(joined.user, grace, "{}", db.backend);
        // Corp gives it unverified this time: nobody vouches for it any more.
        let op = store.create_operation("corp").await.unwrap();
        let mut unverified = person("c-grace", "grace@example.com");
        unverified.email_verified = false;
        assert_eq!(
            store.complete_login(op, "corp", &unverified).await.unwrap(),
            grace
        );
        let refused = first("corp", "c-grace-5", "grace@example.com").await;
        assert_ne!(refused.user, grace, "{}", db.backend);
        store.close().await;
    }
}

/// Addresses verified before loginwith recorded by whom are not trusted for joining: nobody
/// knows which provider verified them. The person's next sign-in with a provider that links by
/// verified email records it.
#[tokio::test]
async fn addresses_verified_before_the_verifier_was_recorded_are_not_joined_until_verified_again() {
    let trusted = HashSet::from(["corp".to_owned()]);
    let linking = EmailLinking::WhenVerified { trusted: &trusted };
    for db in TestDb::all().await {
        migrate_before(&db, EMAIL_VERIFIED_BY).await;
        let inspect = db.inspect().await;
        let mut old = Vec::new();
        for (name, email) in [("ada", "ada@example.com"), ("grace", "grace@example.com")] {
            let id = inspect
                .number(&format!(
                    "INSERT INTO user_profile
                     (first_name, last_name, email, email_verified, created_at, updated_at)
                     VALUES ('{name}', 'Old', '{email}', TRUE, 1, 1) RETURNING id"
                ))
                .await;
            inspect
                .execute(
                    &format!(
                        "INSERT INTO user_identity
                         (user_profile_id, provider, provider_user_id, created_at, last_login_at)
                         VALUES ($1, 'corp', 'c-{name}', 1, 1)"
                    ),
                    id,
                )
                .await;
            old.push(UserId(id));
        }
        let store = Store::connect(&db.url).await.expect(db.backend);
        assert_eq!(
            inspect
                .number("SELECT COUNT(*) FROM user_profile WHERE email_verified_by IS NULL")
                .await,
            2,
            "{}",
            db.backend
        );
        let op = store.create_operation("corp").await.unwrap();
        let newcomer = store
            .complete_sign_in(op, "corp", &person("c-ada-2", "ada@example.com"), linking)
            .await
            .unwrap();
        assert_ne!(newcomer.user, old[0], "{}", db.backend);
        // Grace signs in again with corp, which verifies her address: now it counts.
        assert_eq!(
            sign_in(&store, "corp", "c-grace", "grace@example.com").await,
            old[1]
        );
        let op = store.create_operation("corp").await.unwrap();
        let joined = store
            .complete_sign_in(
                op,
                "corp",
                &person("c-grace-2", "grace@example.com"),
                linking,
            )
            .await
            .unwrap();
        assert_eq!(joined.user, old[1], "{}", db.backend);
        store.close().await;
    }
}

/// The migration that records who verified an address.
const EMAIL_VERIFIED_BY: i64 = 20261206000001;

/// Brings `db` to the schema of a release before migration `version`: every migration of its
/// backend older than it, as that release applied them.
async fn migrate_before(db: &TestDb, version: i64) {
    let old = tempfile::tempdir().unwrap();
    let all = format!("{}/migrations/{}", env!("CARGO_MANIFEST_DIR"), db.backend);
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number < version {
            std::fs::copy(&path, old.path().join(name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    match db.backend {
        "sqlite" => {
            let options: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// A signed-in session's provider and start are typed columns, written from the session's
/// sign-in on every write, and readers outside the session layer get them typed (with the
/// membership and the CSRF token) from one statement; a session from before providers were
/// recorded is said to be signed in with the person's most recently used provider.
#[tokio::test]
async fn a_sign_in_is_kept_in_typed_columns_and_read_back_typed() {
    use tower_sessions::{
        SessionStore,
        session::{Id, Record},
    };
    sqlx::any::install_default_drivers();
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let rows = sqlx::AnyPool::connect(&db.url).await.expect(db.backend);
        let sessions = store.sessions();
        let ada = sign_in(&store, "github", "1001", "ada@example.com").await;
        let record = |sign_in: serde_json::Value| Record {
            id: Id::default(),
            data: [
                (loginwith::store::SIGNED_IN_KEY.to_owned(), sign_in),
                (
                    loginwith::store::CSRF_KEY.to_owned(),
                    serde_json::json!("token"),
                ),
            ]
            .into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        let columns = |id: Id| {
            let rows = rows.clone();
            async move {
                sqlx::query_as::<_, (Option<String>, Option<i64>)>(
                    "SELECT provider, signed_in_at FROM session WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_one(&rows)
                .await
                .expect("the row")
            }
        };
        let mut session = record(serde_json::json!({
            "user": ada.0, "provider": "corp", "since_ms": 1_700_000_000_000_i64,
            "refreshed_ms": 1_700_000_000_000_i64, "membership": {"groups": ["ops"]},
        }));
        sessions.create(&mut session).await.unwrap();
        let read = || async {
            let id = session.id.to_string();
            store
                .signed_in_sessions(std::slice::from_ref(&id))
                .await
                .unwrap()
                .remove(&id)
                .expect("signed in")
        };
        assert_eq!(
            columns(session.id).await,
            (Some("corp".to_owned()), Some(1_700_000_000_000)),
            "{}",
            db.backend
        );
        let found = read().await;
        assert_eq!(found.user, ada, "{}", db.backend);
        assert_eq!(found.since_ms, 1_700_000_000_000, "{}", db.backend);
        assert_eq!(found.provider.as_deref(), Some("corp"), "{}", db.backend);
        assert_eq!(found.csrf.as_deref(), Some("token"), "{}", db.backend);
        assert_eq!(
            found.membership.all().collect::<Vec<_>>(),
            ["ops"],
            "{}",
            db.backend
        );
        // A save carries a changed sign-in into the columns.
        session.data.insert(
            loginwith::store::SIGNED_IN_KEY.to_owned(),
            serde_json::json!({ "user": ada.0, "since_ms": 5, "refreshed_ms": 5 }),
        );
        sessions.save(&session).await.unwrap();
        assert_eq!(columns(session.id).await, (None, Some(5)), "{}", db.backend);
        // No provider recorded: the person's most recently used one.
        assert_eq!(
            read().await.provider.as_deref(),
            Some("github"),
            "{}",
            db.backend
        );
        // Signed out (the sign-in removed from the data): no longer found, columns empty.
        session.data.remove(loginwith::store::SIGNED_IN_KEY);
        sessions.save(&session).await.unwrap();
        assert_eq!(columns(session.id).await, (None, None), "{}", db.backend);
        let id = session.id.to_string();
        assert!(
            store.signed_in_sessions(&[id]).await.unwrap().is_empty(),
            "{}",
            db.backend
        );
    }
}

/// The test's own connection to `db`, for what the store does not read back.
async fn raw(db: &TestDb) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.expect(db.backend)
}

#[tokio::test]
async fn one_state_records_one_operation_on_every_database() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let state = "s".repeat(43);
        let first = store
            .begin_operation("facebook", None, &state)
            .await
            .unwrap();
        assert!(first.is_some(), "{}", db.backend);
        // The same state again, for any provider or person: nothing recorded.
        let again = store.begin_operation("github", None, &state).await.unwrap();
        assert_eq!(again, None, "{}", db.backend);
        let other = store
            .begin_operation("facebook", None, "another")
            .await
            .unwrap();
        assert!(other.is_some() && other != first, "{}", db.backend);
        // Operations without a state (none are made outside the tests) never collide.
        store.create_operation("facebook").await.unwrap();
        store.create_operation("facebook").await.unwrap();
        // The state itself is never stored, only its digest.
        let stored: Vec<Option<String>> =
            sqlx::query_scalar("SELECT state_digest FROM async_operation ORDER BY id")
                .fetch_all(&raw(&db).await)
                .await
                .unwrap();
        assert_eq!(stored.iter().flatten().count(), 2, "{}", db.backend);
        assert!(
            stored
                .iter()
                .flatten()
                .all(|d| d.len() == 64 && !d.contains("sss")),
            "{}",
            db.backend
        );
    }
}

#[tokio::test]
async fn the_newest_sealing_key_seals_and_replaced_keys_open_for_their_lifetime_only() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let hour = Duration::from_secs(3600);
        // The first instance's key, once: a second instance finds it.
        let first = store.sealing_keys(&[1; 32], hour).await.unwrap();
        let again = store.sealing_keys(&[2; 32], hour).await.unwrap();
        assert_eq!(first.len(), 1, "{}", db.backend);
        assert_eq!(
            (again.len(), again[0].id),
            (1, first[0].id),
            "{}",
            db.backend
        );
        assert_eq!(again[0].secret, [1; 32], "{}", db.backend);
        assert!(
            format!("{:?}", again[0]).contains("[redacted]"),
            "{}",
            db.backend
        );
        // A rotation: the new key first, the old one still opens within the hour.
        let (second, deleted) = store.rotate_sealing_key(&[3; 32], hour).await.unwrap();
        assert_eq!(deleted, 0, "{}", db.backend);
        assert!(second > first[0].id, "{}", db.backend);
        let keys = store.sealing_keys(&[4; 32], hour).await.unwrap();
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        assert_eq!(ids, [second, first[0].id], "{}", db.backend);
        assert_eq!(keys[0].secret, [3; 32], "{}", db.backend);
        // Two hours on: the replaced key no longer opens, and the next rotation deletes it
        // (and only it: the key it replaces now opens for another hour). Ids never return.
        sqlx::query("UPDATE sealing_key SET created_at = created_at - 7200000")
            .execute(&raw(&db).await)
            .await
            .unwrap();
        let keys = store.sealing_keys(&[4; 32], hour).await.unwrap();
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        assert_eq!(ids, [second], "{}", db.backend);
        let (third, deleted) = store.rotate_sealing_key(&[5; 32], hour).await.unwrap();
        assert_eq!(deleted, 1, "{}", db.backend);
        assert!(third > second, "{}", db.backend);
        let keys = store.sealing_keys(&[4; 32], hour).await.unwrap();
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        assert_eq!(ids, [third, second], "{}", db.backend);
    }
}

#[tokio::test]
async fn a_blocked_persons_session_is_neither_stored_nor_read_and_unblocking_deletes_leftovers() {
    use tower_sessions::{
        SessionStore,
        session::{Id, Record},
    };
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let op = store.create_operation("facebook").await.unwrap();
        let user = store
            .complete_login(op, "facebook", &person("fb-1", "a@example.com"))
            .await
            .unwrap();
        let sessions = store.sessions();
        let inspect = db.inspect().await;
        let signed_in = |id: Id| {
            Record {
            id,
            data: [(
                "signed_in".to_owned(),
                serde_json::json!({"user": user.0, "provider": "facebook", "since_ms": 1, "refreshed_ms": 1}),
            )]
            .into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        }
        };
        // A session from before the block (a sign-in that raced it), then the block.
        let mut before = signed_in(Id::default());
        sessions.create(&mut before).await.unwrap();
        inspect
            .execute(
                "UPDATE user_profile SET blocked_at = 1 WHERE id = $1",
                user.0,
            )
            .await;
        // Read as none by the session layer, like every other reader.
        assert!(
            sessions.load(&before.id).await.unwrap().is_none(),
            "{}",
            db.backend
        );
        // A new one for the blocked person is refused, and the call returns (it is not an id
        // collision to retry).
        let mut refused = signed_in(Id::default());
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sessions.create(&mut refused),
        )
        .await
        .expect("create returns")
        .unwrap();
        assert!(
            sessions.load(&refused.id).await.unwrap().is_none(),
            "{}",
            db.backend
        );
        assert_eq!(
            inspect
                .number("SELECT count(*) FROM session WHERE user_id IS NOT NULL")
                .await,
            1,
            "only the leftover, {}",
            db.backend
        );
        // Unblocking deletes the leftover: the person signs in afresh.
        assert_eq!(
            store.unblock(user).await.unwrap(),
            Some(true),
            "{}",
            db.backend
        );
        assert_eq!(
            inspect
                .number("SELECT count(*) FROM session WHERE user_id IS NOT NULL")
                .await,
            0,
            "{}",
            db.backend
        );
        store.close().await;
    }
}

/// A name the provider withheld (Sign in with Apple after the first consent) keeps the stored
/// one, on both databases and in both of their statements (SQLite refreshes in one, and
/// PostgreSQL answers a returning sign-in with a statement of its own); a name a provider
/// sends empty is written as it is: a person who removed it at their issuer loses it here too.
#[tokio::test]
async fn a_withheld_name_is_kept_and_an_empty_one_is_written() {
    for db in TestDb::all().await {
        let store = Store::connect(&db.url).await.expect(db.backend);
        let first = sign_in(
            &store,
            "apple",
            "001234.abcd",
            "ada@privaterelay.appleid.com",
        )
        .await;
        let again = |names_withheld: bool| {
            let mut profile = person("001234.abcd", "ada@privaterelay.appleid.com");
            profile.first_name = String::new();
            profile.last_name = String::new();
            profile.names_withheld = names_withheld;
            profile
        };
        let op = store.create_operation("apple").await.unwrap();
        store
            .complete_login(op, "apple", &again(true))
            .await
            .unwrap();
        let kept = store.user(first).await.unwrap().unwrap();
        assert_eq!(
            (kept.first_name.as_str(), kept.last_name.as_str()),
            ("Ada <b>", "Lovelace 🦀"),
            "{}",
            db.backend
        );
        let op = store.create_operation("apple").await.unwrap();
        store
            .complete_login(op, "apple", &again(false))
            .await
            .unwrap();
        let cleared = store.user(first).await.unwrap().unwrap();
        assert_eq!(
            (cleared.first_name.as_str(), cleared.last_name.as_str()),
            ("", ""),
            "{}",
            db.backend
        );
        store.close().await;
    }
}
