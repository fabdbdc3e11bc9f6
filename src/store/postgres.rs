//! PostgreSQL: several instances on one database. Migrations take sqlx's advisory lock, so
//! instances starting together apply them once.

use std::str::FromStr;

use sqlx::{
    Connection, Executor, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::{
    ConnectOptions, OperationStatus, StoreError,
    backend::{Db, OPERATION_FINISHED, count_statement},
    display_name, given_names,
};
use crate::model::Profile;

/// This database's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connects and migrates. The error names the server, never the password.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Db, StoreError> {
    let connect = PgConnectOptions::from_str(url)?;
    let server = format!(
        "{}:{}/{}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or_default()
    );
    // Migrations first, on a connection of their own with no statement limit: they may take
    // as long as they need (a new index on a big table), and the advisory lock they take
    // waits for another instance's. sqlx's migrator takes that lock.
    let mut migrating = PgConnection::connect_with(&connect)
        .await
        .map_err(|source| StoreError::Open {
            path: server.clone(),
            source,
        })?;
    MIGRATOR.run(&mut migrating).await?;
    migrating.close().await?;
    // Then no statement waits longer than a request waits for a connection: a server held up
    // (a lock, a slow disk, a checkpoint storm) past `database.connect_timeout_secs` cancels
    // the statement (SQLSTATE 57014), which is a 503 (`StoreError::is_unavailable`), not a
    // request left hanging. Set per connection rather than as a startup parameter, which
    // PgBouncer refuses.
    let statement_timeout = format!(
        "SET statement_timeout = {}",
        options.connect_timeout.as_millis()
    );
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.connect_timeout)
        .after_connect(move |conn, _| {
            // Built from a number of our own configuration: nothing a request controls.
            let statement_timeout = sqlx::AssertSqlSafe(statement_timeout.clone());
            Box::pin(async move {
                conn.execute(statement_timeout).await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await
        .map_err(|source| StoreError::Open {
            path: server,
            source,
        })?;
    Ok(Db::Postgres(pool))
}

/// A returning person's sign-in in one statement, which PostgreSQL runs as one transaction:
/// the identity is marked, the person's names and address (and who verified it) refreshed,
/// the operation set `ok` and its end announced — what `Store::complete_sign_in`'s transaction
/// does in six statements (`BEGIN`, four, `COMMIT`). `None` when the identity is new: nothing
/// was written then, and the caller takes the general path.
///
/// The statements of one query see one snapshot, so each later one reads the rows an earlier
/// one wrote through its `RETURNING` (PostgreSQL, "Data-Modifying Statements in WITH"). The
/// announcement is sent only when the operation really left `pending`; like any
/// `pg_notify`, it is delivered at commit.
pub(super) async fn sign_in_returning_person(
    pool: &PgPool,
    operation: i64,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<Option<(i64, bool)>, StoreError> {
    count_statement();
    let row: Option<(i64, i64)> = sqlx::query_as(
        "WITH identity AS (
             UPDATE user_identity SET last_login_at = $1
             WHERE provider = $2 AND provider_user_id = $3
             RETURNING user_profile_id
         ), person AS (
             UPDATE user_profile
             -- NULL names: withheld by the provider (Apple after the first consent), kept.
             SET first_name = COALESCE($4, first_name), last_name = COALESCE($5, last_name),
                 display_name = CASE WHEN $4::text IS NULL THEN display_name ELSE $6 END,
                 email = COALESCE($7, email),
                 email_verified = CASE WHEN $7::text IS NULL THEN email_verified ELSE $8 END,
                 email_verified_by = CASE WHEN $7::text IS NULL THEN email_verified_by
                                          WHEN $8 THEN $2 ELSE NULL END,
                 updated_at = $1
             FROM identity WHERE user_profile.id = identity.user_profile_id
             RETURNING user_profile.id
         ), finished AS (
             UPDATE async_operation
             SET async_operation_status_id = $9, user_profile_id = person.id, updated_at = $1,
                 membership = $13, provider_sid = $14
             FROM person
             WHERE async_operation.id = $10 AND async_operation_status_id = $11
             RETURNING async_operation.id
         )
         SELECT person.id,
                (SELECT count(pg_notify($12, finished.id::text)) FROM finished)
         FROM person",
    )
    .bind(now)
    .bind(provider)
    .bind(&profile.provider_user_id)
    .bind(given_names(profile).map(|(first, _)| first))
    .bind(given_names(profile).map(|(_, last)| last))
    .bind(display_name(profile))
    .bind(&profile.email)
    .bind(profile.email_verified)
    .bind(OperationStatus::Ok.id())
    .bind(operation)
    .bind(OperationStatus::Pending.id())
    .bind(OPERATION_FINISHED)
    .bind(super::membership_json(&profile.membership))
    .bind(&profile.provider_sid)
    .fetch_optional(pool)
    .await?;
    // One announcement per operation finished: whether it went to `ok` now.
    Ok(row.map(|(user, announced)| (user, announced == 1)))
}
