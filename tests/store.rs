//! The store on its own: database creation, orphan sweep, clean-up, upserts.

use std::time::Duration;

use loginwith::{
    auth::{FailureReason, Profile},
    store::{OperationStatus, Store},
};

async fn temp_store() -> (tempfile::TempDir, Store, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/a/b/c.db", dir.path().display());
    let store = Store::connect(&url)
        .await
        .expect("creates the folders and file");
    (dir, store, url)
}

fn ada(id: &str) -> Profile {
    Profile {
        provider_user_id: id.to_owned(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: Some("ada@example.com".into()),
    }
}

#[tokio::test]
async fn the_database_is_created_in_wal_mode_with_seeded_statuses() {
    let (_dir, store, _) = temp_store().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let codes: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, code FROM async_operation_status ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        codes,
        vec![(1, "pending".into()), (2, "ok".into()), (3, "error".into())]
    );
}

#[tokio::test]
async fn orphaned_pending_operations_are_expired_at_start_up() {
    let (_dir, store, url) = temp_store().await;
    let old = store.create_operation("facebook").await.unwrap();
    let fresh = store.create_operation("facebook").await.unwrap();
    sqlx::query("UPDATE async_operation SET created_at = created_at - 60000 WHERE id = ?")
        .bind(old.0)
        .execute(store.pool())
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
    let (_dir, store, _) = temp_store().await;
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
        .execute(store.pool())
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
    let (_dir, store, _) = temp_store().await;
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
    let (_dir, store, _) = temp_store().await;
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
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn the_session_table_creates_loads_saves_expires_and_deletes() {
    use tower_sessions::{
        SessionStore,
        session::{Id, Record},
    };
    let (_dir, store, _) = temp_store().await;
    let sessions = store.sessions();
    let mut record = Record {
        id: Id::default(),
        data: [("k".to_owned(), serde_json::json!(1))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    let first_id = record.id;
    sessions.create(&mut record).await.unwrap();
    assert_eq!(record.id, first_id);
    // A colliding id gets a fresh one instead of overwriting.
    let mut twin = Record {
        data: Default::default(),
        ..record.clone()
    };
    sessions.create(&mut twin).await.unwrap();
    assert_ne!(twin.id, first_id);
    let loaded = sessions.load(&first_id).await.unwrap().unwrap();
    assert_eq!(loaded.data["k"], 1);
    record.data.insert("k".into(), serde_json::json!(2));
    sessions.save(&record).await.unwrap();
    assert_eq!(
        sessions.load(&first_id).await.unwrap().unwrap().data["k"],
        2
    );
    sessions.delete(&first_id).await.unwrap();
    assert!(sessions.load(&first_id).await.unwrap().is_none());

    twin.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    sessions.save(&twin).await.unwrap();
    assert!(
        sessions.load(&twin.id).await.unwrap().is_none(),
        "expired reads as none"
    );
    assert_eq!(sessions.delete_expired().await.unwrap(), 1);
}
