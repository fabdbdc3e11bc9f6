//! The store on its own: database creation, orphan sweep, clean-up, upserts.

use std::time::Duration;

use sqlx::SqlitePool;

use loginwith::{
    auth::{FailureReason, Profile},
    store::{OperationId, OperationStatus, Store, Unlink, UserId},
};

async fn temp_store() -> (tempfile::TempDir, Store, String, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/a/b/c.db", dir.path().display());
    let store = Store::connect(&url)
        .await
        .expect("creates the folders and file");
    let db = inspect(&url).await;
    (dir, store, url, db)
}

/// A connection of the test's own to the store's file, to look at and age rows.
async fn inspect(url: &str) -> SqlitePool {
    SqlitePool::connect(url)
        .await
        .expect("open the test database")
}

fn ada(id: &str) -> Profile {
    Profile {
        provider_user_id: id.to_owned(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: Some("ada@example.com".into()),
        email_verified: false,
        issuer: None,
        membership: Default::default(),
        provider_sid: None,
        names_withheld: false,
    }
}

#[tokio::test]
async fn the_database_is_created_in_wal_mode_with_seeded_statuses() {
    let (_dir, _store, _, db) = temp_store().await;
    // WAL is a property of the file (foreign keys, a property of each connection, are shown
    // by the cascades that tests/it/data_deletion.rs relies on).
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let codes: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, code FROM async_operation_status ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        codes,
        vec![(1, "pending".into()), (2, "ok".into()), (3, "error".into())]
    );
}

#[tokio::test]
async fn orphaned_pending_operations_are_expired_at_start_up() {
    let (_dir, store, url, db) = temp_store().await;
    let old = store.create_operation("facebook").await.unwrap();
    let fresh = store.create_operation("facebook").await.unwrap();
    sqlx::query("UPDATE async_operation SET created_at = created_at - 60000 WHERE id = ?")
        .bind(old.0)
        .execute(&db)
        .await
        .unwrap();
    drop(store);

    // A restart: the sweep runs as part of start-up, through the same method App uses.
    let store = Store::connect(&url).await.unwrap();
    let expired = store
        .expire_orphaned_operations(Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let long = Duration::from_secs(3600);
    let old = store.operation(old, long).await.unwrap().unwrap();
    assert_eq!(old.status, OperationStatus::Error);
    assert_eq!(old.error, Some(FailureReason::Timeout));
    let fresh = store.operation(fresh, long).await.unwrap().unwrap();
    assert_eq!(fresh.status, OperationStatus::Pending);
}

#[tokio::test]
async fn finished_operations_older_than_a_day_are_deleted() {
    let (_dir, store, _, db) = temp_store().await;
    let old = store.create_operation("facebook").await.unwrap();
    store
        .fail_operation(old, FailureReason::Denied)
        .await
        .unwrap();
    let recent = store.create_operation("facebook").await.unwrap();
    store
        .fail_operation(recent, FailureReason::Denied)
        .await
        .unwrap();
    let pending = store.create_operation("facebook").await.unwrap();
    sqlx::query("UPDATE async_operation SET updated_at = updated_at - 2 * 86400000, created_at = created_at - 2 * 86400000 WHERE id IN (?, ?)")
        .bind(old.0)
        .bind(pending.0)
        .execute(&db)
        .await
        .unwrap();
    let deleted = store
        .delete_finished_operations(Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let long = Duration::from_secs(10 * 86_400);
    assert!(store.operation(old, long).await.unwrap().is_none());
    assert!(store.operation(recent, long).await.unwrap().is_some());
    assert!(
        store.operation(pending, long).await.unwrap().is_some(),
        "pending ones are the orphan sweep's business"
    );
}

#[tokio::test]
async fn a_finished_operation_is_never_overwritten() {
    let (_dir, store, _, _db) = temp_store().await;
    let op = store.create_operation("facebook").await.unwrap();
    let user = store
        .complete_login(op, "facebook", &ada("1"))
        .await
        .unwrap();
    store
        .fail_operation(op, FailureReason::Timeout)
        .await
        .unwrap();
    let op = store
        .operation(op, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.status, OperationStatus::Ok);
    assert_eq!(op.user, Some(user));
}

#[tokio::test]
async fn concurrent_upserts_of_one_identity_make_one_user() {
    let (_dir, store, _, db) = temp_store().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let op = store.create_operation("facebook").await.unwrap();
            store
                .complete_login(op, "facebook", &ada("42"))
                .await
                .unwrap()
        }));
    }
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap());
    }
    users.dedup();
    assert_eq!(users.len(), 1, "every login found the same user");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_profile")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn ids_of_deleted_people_identities_and_operations_are_never_reused() {
    let (_dir, store, _, db) = temp_store().await;
    let first_op = store.create_operation("facebook").await.unwrap();
    let first = store
        .complete_login(first_op, "facebook", &ada("1001"))
        .await
        .unwrap();
    let identity: i64 = sqlx::query_scalar("SELECT id FROM user_identity")
        .fetch_one(&db)
        .await
        .unwrap();
    // Ada had the highest ids of all three tables; she goes.
    store.delete_user(first).await.unwrap();
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM async_operation")
            .fetch_one(&db)
            .await
            .unwrap(),
        0
    );

    let second_op = store.create_operation("facebook").await.unwrap();
    let bob = store
        .complete_login(second_op, "facebook", &ada("2002"))
        .await
        .unwrap();
    let bob_identity: i64 = sqlx::query_scalar("SELECT id FROM user_identity")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(bob.0 > first.0, "person {bob} after {first}");
    assert!(
        bob_identity > identity,
        "identity {bob_identity} after {identity}"
    );
    assert!(
        second_op.0 > first_op.0,
        "operation {second_op} after {first_op}"
    );
}

#[tokio::test]
async fn the_migration_to_never_reused_ids_keeps_every_row() {
    // A database as the previous release left it: the first three migrations only.
    let dir = tempfile::tempdir().unwrap();
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    let mut files: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    files.sort();
    for file in files.iter().take(3) {
        std::fs::copy(file, old_migrations.join(file.file_name().unwrap())).unwrap();
    }
    let url = format!("sqlite://{}/old.db", dir.path().display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let old = sqlx::SqlitePool::connect_with(options.create_if_missing(true).foreign_keys(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old_migrations.as_path())
        .await
        .unwrap()
        .run(&old)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO user_profile VALUES (1, 'Ada', 'L', 'ada@example.com', 1, 1), (7, 'Grace', 'H', NULL, 2, 2);
         INSERT INTO user_identity VALUES (3, 1, 'facebook', '1001', 1, 1), (9, 7, 'facebook', '1007', 2, 2);
         INSERT INTO async_operation VALUES (5, 2, 7, 'facebook', NULL, 2, 2), (6, 3, NULL, 'facebook', 'denied', 3, 3);
         INSERT INTO session VALUES ('grace', '{\"signed_in\":{\"user\":7,\"since_ms\":1,\"refreshed_ms\":1}}', 9999999999999),
                                    ('gone', '{\"signed_in\":{\"user\":8,\"since_ms\":1,\"refreshed_ms\":1}}', 9999999999999),
                                    ('anonymous', '{}', 9999999999999);",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let store = Store::connect(&url).await.unwrap();
    let pool = &inspect(&url).await;
    let people: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, first_name FROM user_profile ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(people, [(1, "Ada".to_owned()), (7, "Grace".to_owned())]);
    let identities: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT id, user_profile_id, provider_user_id FROM user_identity ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        identities,
        [(3, 1, "1001".to_owned()), (9, 7, "1007".to_owned())]
    );
    let operations: Vec<(i64, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT id, user_profile_id, error FROM async_operation ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        operations,
        [(5, Some(7), None), (6, None, Some("denied".to_owned()))]
    );
    // The session of someone already deleted ends; the others keep going, indexed by person.
    let sessions: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, user_id FROM session ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        sessions,
        [
            ("anonymous".to_owned(), None),
            ("grace".to_owned(), Some(7))
        ]
    );
    // The linking migration: names become a display name, no email is taken as verified,
    // identities have no issuer, operations no link.
    let profiles: Vec<(Option<String>, bool)> =
        sqlx::query_as("SELECT display_name, email_verified FROM user_profile ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        profiles,
        [
            (Some("Ada L".to_owned()), false),
            (Some("Grace H".to_owned()), false)
        ]
    );
    let issuers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM user_identity WHERE issuer IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(issuers, 0);
    let links: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM async_operation WHERE link_user_profile_id IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(links, 0);

    // Grace, the newest person, goes: her id is not handed out again.
    store
        .delete_user(loginwith::store::UserId(7))
        .await
        .unwrap();
    let operation = store.create_operation("facebook").await.unwrap();
    assert!(operation.0 > 6, "operation id {operation}");
    let newcomer = store
        .complete_login(operation, "facebook", &ada("3003"))
        .await
        .unwrap();
    assert!(newcomer.0 > 7, "person id {newcomer}");
    let foreign_key_problems: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(foreign_key_problems.is_empty(), "{foreign_key_problems:?}");
}

/// Starts linking `profile`'s GitHub identity to `user` (as "Add GitHub" does), then links
/// it: the operation, and whether the identity was attached.
async fn link_github(
    store: &Store,
    user: UserId,
    profile: &Profile,
) -> (OperationId, Result<(), FailureReason>) {
    let op = store.create_link_operation("github", user).await.unwrap();
    let linked = store
        .link_identity(op, user, "github", profile)
        .await
        .unwrap();
    (op, linked)
}

#[tokio::test]
async fn linking_attaches_a_free_identity_and_never_takes_someone_elses() {
    let (_dir, store, _, _db) = temp_store().await;
    let op = store.create_operation("facebook").await.unwrap();
    let ada_user = store
        .complete_login(op, "facebook", &ada("1001"))
        .await
        .unwrap();
    let op = store.create_operation("github").await.unwrap();
    let bob = store
        .complete_login(op, "github", &ada("777"))
        .await
        .unwrap();

    // A free identity is attached; her profile keeps her names.
    let (op, linked) = link_github(&store, ada_user, &ada("42")).await;
    assert_eq!(linked, Ok(()));
    let done = store
        .operation(op, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, OperationStatus::Ok);
    assert_eq!(done.link_for, Some(ada_user));
    assert_eq!(store.identities(ada_user).await.unwrap().len(), 2);

    // Her own again: nothing new.
    let (_, linked) = link_github(&store, ada_user, &ada("42")).await;
    assert_eq!(linked, Ok(()));
    assert_eq!(store.identities(ada_user).await.unwrap().len(), 2);

    // Bob's: refused, the operation says why, nobody's identities change.
    let (op, linked) = link_github(&store, ada_user, &ada("777")).await;
    assert_eq!(linked, Err(FailureReason::IdentityTaken));
    let failed = store
        .operation(op, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.error, Some(FailureReason::IdentityTaken));
    assert_eq!(store.identities(ada_user).await.unwrap().len(), 2);
    assert_eq!(store.identities(bob).await.unwrap().len(), 1);

    // Removing: someone else's is not found, the last one is refused.
    let bobs = store.identities(bob).await.unwrap()[0].id;
    assert_eq!(
        store.unlink_identity(ada_user, bobs, None).await.unwrap(),
        Unlink::NotFound
    );
    assert_eq!(
        store.unlink_identity(bob, bobs, None).await.unwrap(),
        Unlink::LastOne
    );
    let github = store.identities(ada_user).await.unwrap()[1].id;
    assert_eq!(
        store.unlink_identity(ada_user, github, None).await.unwrap(),
        Unlink::Removed
    );
    let facebook = store.identities(ada_user).await.unwrap()[0].id;
    assert_eq!(
        store
            .unlink_identity(ada_user, facebook, None)
            .await
            .unwrap(),
        Unlink::LastOne
    );
}

#[tokio::test]
async fn a_link_for_a_person_deleted_meanwhile_writes_nothing() {
    let (_dir, store, _, db) = temp_store().await;
    let op = store.create_operation("facebook").await.unwrap();
    let user = store
        .complete_login(op, "facebook", &ada("1001"))
        .await
        .unwrap();
    let op = store.create_link_operation("github", user).await.unwrap();
    store.delete_user(user).await.unwrap();
    assert_eq!(
        store
            .link_identity(op, user, "github", &ada("42"))
            .await
            .unwrap(),
        Err(FailureReason::Internal)
    );
    let identities: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_identity")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(identities, 0);
}
