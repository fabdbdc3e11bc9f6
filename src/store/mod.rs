//! All SQL lives here. Handlers and the exchange task speak in domain types
//! ([`UserId`], [`Operation`], [`Profile`]), so a PostgreSQL backend can be added
//! behind the same methods without touching them.

mod clock;
mod deletion;
mod ids;
mod linking;
mod sessions;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use clock::{millis, now_ms};
pub use deletion::{Deletion, DeletionRecord};
pub use ids::{OperationId, UserId};
pub use linking::{Identity, IdentityId, Unlink};
pub use sessions::{SIGNED_IN_KEY, SessionTable};

use crate::auth::{FailureReason, Profile};

/// How long SQLite waits for a competing writer (another task or another instance)
/// before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the database file {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// The state of one asynchronous code exchange, as `async_operation_status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Pending,
    Ok,
    Error,
}

impl OperationStatus {
    const fn id(self) -> i64 {
        match self {
            Self::Pending => 1,
            Self::Ok => 2,
            Self::Error => 3,
        }
    }

    fn from_id(id: i64) -> Option<Self> {
        match id {
            1 => Some(Self::Pending),
            2 => Some(Self::Ok),
            3 => Some(Self::Error),
            _ => None,
        }
    }

    /// The word `/get-status` answers with.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// One row of `async_operation`, as the web layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: OperationId,
    pub status: OperationStatus,
    /// The provider id it was started for.
    pub provider: String,
    pub user: Option<UserId>,
    pub error: Option<FailureReason>,
    /// For a sign-in started from "Sign-in methods": the person the identity is added to.
    /// Such an operation never signs anyone in.
    pub link_for: Option<UserId>,
}

/// A signed-in person, as the pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

/// The database: a pool of SQLite connections in WAL mode.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating the file and its folder when missing) and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        create_parent_folder(options.get_filename())?;
        let path = std::path::absolute(options.get_filename())
            .unwrap_or_else(|_| options.get_filename().to_path_buf())
            .display()
            .to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path, source })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Whether the database answers and has every migration this build knows applied (for
    /// `/readyz`). Reads only: another instance, or `loginwith migrate`, applies them.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&self.pool)
                .await?;
        Ok(sqlx::migrate!("./migrations")
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.contains(&m.version)))
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The pool, for the benchmark's bulk fill and tests that inspect the database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Records a new pending exchange for `provider`.
    pub async fn create_operation(&self, provider: &str) -> Result<OperationId, StoreError> {
        self.insert_operation(provider, None).await
    }

    /// A pending operation; with `link_for`, one that adds an identity to that person.
    async fn insert_operation(
        &self,
        provider: &str,
        link_for: Option<UserId>,
    ) -> Result<OperationId, StoreError> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO async_operation
             (async_operation_status_id, provider, link_user_profile_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(OperationStatus::Pending.id())
        .bind(provider)
        .bind(link_for.map(|user| user.0))
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(OperationId(id))
    }

    /// Reads an operation. A pending one older than `pending_limit` was orphaned (a crash,
    /// a restart): it is turned into a `timeout` error here, so no reader waits forever.
    pub async fn operation(
        &self,
        id: OperationId,
        pending_limit: Duration,
    ) -> Result<Option<Operation>, StoreError> {
        let row = sqlx::query(
            "SELECT async_operation_status_id, provider, user_profile_id, error, created_at,
                    link_user_profile_id
             FROM async_operation WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status = OperationStatus::from_id(row.try_get("async_operation_status_id")?)
            .unwrap_or(OperationStatus::Error);
        let created_at: i64 = row.try_get("created_at")?;
        let provider: String = row.try_get("provider")?;
        let link_for = row
            .try_get::<Option<i64>, _>("link_user_profile_id")?
            .map(UserId);
        if status == OperationStatus::Pending && created_at < now_ms() - millis(pending_limit) {
            self.fail_operation(id, FailureReason::Timeout).await?;
            return Ok(Some(Operation {
                id,
                status: OperationStatus::Error,
                provider,
                user: None,
                error: Some(FailureReason::Timeout),
                link_for,
            }));
        }
        let error: Option<String> = row.try_get("error")?;
        Ok(Some(Operation {
            id,
            status,
            provider,
            user: row
                .try_get::<Option<i64>, _>("user_profile_id")?
                .map(UserId),
            error: error.map(|e| FailureReason::from_code(&e)),
            link_for,
        }))
    }

    /// Finishes a successful exchange in one transaction: creates or updates the person
    /// behind `(provider, profile.provider_user_id)` and marks the operation `ok`.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock before the lookup, so two first logins of
    /// the same person (in this process or another one on the same file) serialise and
    /// the second one finds the first one's row: one user, never two.
    pub async fn complete_login(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
    ) -> Result<UserId, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT user_profile_id FROM user_identity WHERE provider = ? AND provider_user_id = ?",
        )
        .bind(provider)
        .bind(&profile.provider_user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let user_id = match existing {
            Some(user_id) => {
                // A missing email this time (declined, phone-only account) keeps the one we had.
                sqlx::query(
                    "UPDATE user_profile
                     SET first_name = ?, last_name = ?, display_name = ?,
                         email = COALESCE(?, email),
                         email_verified = CASE WHEN ? IS NULL THEN email_verified ELSE ? END,
                         updated_at = ?
                     WHERE id = ?",
                )
                .bind(&profile.first_name)
                .bind(&profile.last_name)
                .bind(display_name(profile))
                .bind(&profile.email)
                .bind(&profile.email)
                .bind(profile.email_verified)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE user_identity SET last_login_at = ?
                     WHERE provider = ? AND provider_user_id = ?",
                )
                .bind(now)
                .bind(provider)
                .bind(&profile.provider_user_id)
                .execute(&mut *tx)
                .await?;
                user_id
            }
            None => {
                let user_id: i64 = sqlx::query_scalar(
                    "INSERT INTO user_profile
                     (first_name, last_name, display_name, email, email_verified,
                      created_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&profile.first_name)
                .bind(&profile.last_name)
                .bind(display_name(profile))
                .bind(&profile.email)
                .bind(profile.email.is_some() && profile.email_verified)
                .bind(now)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                linking::insert_identity(&mut tx, user_id, provider, profile, now).await?;
                user_id
            }
        };
        sqlx::query(
            "UPDATE async_operation
             SET async_operation_status_id = ?, user_profile_id = ?, updated_at = ?
             WHERE id = ? AND async_operation_status_id = ?",
        )
        .bind(OperationStatus::Ok.id())
        .bind(user_id)
        .bind(now)
        .bind(operation.0)
        .bind(OperationStatus::Pending.id())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(UserId(user_id))
    }

    /// Takes the sign-in of an `ok` operation, once: the first caller gets the person, every
    /// later one (a second tab, a copied cookie racing the real browser) gets `None`.
    pub async fn consume_operation(&self, id: OperationId) -> Result<Option<UserId>, StoreError> {
        let user: Option<Option<i64>> = sqlx::query_scalar(
            "UPDATE async_operation SET consumed_at = ?
             WHERE id = ? AND async_operation_status_id = ? AND consumed_at IS NULL
             RETURNING user_profile_id",
        )
        .bind(now_ms())
        .bind(id.0)
        .bind(OperationStatus::Ok.id())
        .fetch_optional(&self.pool)
        .await?;
        Ok(user.flatten().map(UserId))
    }

    /// Marks a still-pending operation as failed. A finished one is left as it is.
    pub async fn fail_operation(
        &self,
        id: OperationId,
        reason: FailureReason,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = ?, error = ?, updated_at = ?
             WHERE id = ? AND async_operation_status_id = ?",
        )
        .bind(OperationStatus::Error.id())
        .bind(reason.code())
        .bind(now_ms())
        .bind(id.0)
        .bind(OperationStatus::Pending.id())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Turns every pending operation older than `limit` into a `timeout` error.
    /// Returns how many there were.
    pub async fn expire_orphaned_operations(&self, limit: Duration) -> Result<u64, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = ?, error = ?, updated_at = ?
             WHERE async_operation_status_id = ? AND created_at < ?",
        )
        .bind(OperationStatus::Error.id())
        .bind(FailureReason::Timeout.code())
        .bind(now)
        .bind(OperationStatus::Pending.id())
        .bind(now - millis(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes finished operations last touched more than `age` ago.
    pub async fn delete_finished_operations(&self, age: Duration) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM async_operation
             WHERE async_operation_status_id IN (?, ?) AND updated_at < ?",
        )
        .bind(OperationStatus::Ok.id())
        .bind(OperationStatus::Error.id())
        .bind(now_ms() - millis(age))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The periodic clean-up, also run at start-up: orphaned pending operations (older than
    /// `pending_limit`) become `timeout` errors, finished operations older than `retention`
    /// and expired sessions are deleted. Returns how many operations were orphaned.
    pub async fn housekeeping(
        &self,
        pending_limit: Duration,
        retention: Duration,
    ) -> Result<u64, StoreError> {
        let orphaned = self.expire_orphaned_operations(pending_limit).await?;
        self.delete_finished_operations(retention).await?;
        self.sessions().delete_expired().await?;
        Ok(orphaned)
    }

    /// The person with this id, if they still exist.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query("SELECT id, first_name, last_name, email FROM user_profile WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(User {
                id: UserId(row.try_get("id")?),
                first_name: row.try_get("first_name")?,
                last_name: row.try_get("last_name")?,
                email: row.try_get("email")?,
            })
        })
        .transpose()
    }
}

/// What pages call the person: the provider's name in full, or nothing when it gave none.
fn display_name(profile: &Profile) -> Option<String> {
    let name = format!("{} {}", profile.first_name.trim(), profile.last_name.trim());
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn create_parent_folder(file: &Path) -> Result<(), StoreError> {
    let is_memory = file.as_os_str().is_empty() || file.as_os_str() == ":memory:";
    match file.parent() {
        Some(folder) if !is_memory && !folder.as_os_str().is_empty() => {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                path: folder.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}
