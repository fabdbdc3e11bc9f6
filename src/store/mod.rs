//! All SQL lives here. Handlers and the exchange task speak in domain types
//! ([`UserId`], [`Operation`], [`Profile`]); the database is a SQLite file or PostgreSQL,
//! chosen by `database.url`'s scheme (see [`backend`]).

mod announcements;
mod backend;
mod deletion;
mod free_space;
mod ids;
mod linking;
pub mod outage;
mod postgres;
mod session_data;
mod sessions;
mod sqlite;

use std::{collections::HashSet, sync::Arc, time::Duration};

use backend::{Db, Tx, on_db, on_tx};

pub use announcements::{Announcement, Announcements};
pub use crate::model::{millis, now_ms};
pub use deletion::{Deletion, DeletionRecord};
pub use free_space::{FreeSpace, Room};
pub use ids::{OperationId, UserId};
pub use linking::{IdentityId, Unlink};
pub use session_data::{CSRF_KEY, SIGNED_IN_KEY, SessionSignIn};
pub use sessions::{
    MAX_SESSIONS_PER_READ, SignedInSession, UNAVAILABLE, UNAVAILABLE_SEEN,
};

use crate::model::{FailureReason, Membership, Profile};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("database.url must start with sqlite: or postgres: ({0:?})")]
    Scheme(String),
    /// The same first sign-in kept losing a race it should win on its second try.
    #[error("a first sign-in kept colliding with another one")]
    Contention,
}

impl StoreError {
    /// Whether the database cannot answer at the moment (down, restarting, out of
    /// connections, a full or read-only disk, an I/O error), as opposed to a mistake in what
    /// was asked: such a failure passes by itself, and people should be told to try again in
    /// a moment rather than given an error reference.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(error) | Self::Open { source: error, .. } => unavailable(error),
            Self::Folder { .. } => true,
            Self::Migrate(_) | Self::Scheme(_) | Self::Contention => false,
        }
    }
}

/// See [`StoreError::is_unavailable`]. A database error is told apart by its code: SQLite's
/// are numbers (the primary code is the low byte of an extended one), PostgreSQL's are
/// five-character SQLSTATEs.
pub fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            match code.parse::<u32>() {
                // SQLITE_BUSY, _READONLY, _IOERR, _FULL, _CANTOPEN.
                Ok(sqlite) if code.len() < 5 => matches!(sqlite & 0xff, 5 | 8 | 10 | 13 | 14),
                // Connection exceptions, insufficient resources (a full disk), operator
                // intervention (shutting down, starting up), system errors (I/O); a
                // statement cancelled by `statement_timeout` or a lock not granted in time
                // (a server held up longer than `database.connect_timeout_secs`), and a
                // server that takes no writes (a standby, a read-only transaction mode).
                _ => ["08", "53", "57P", "58", "57014", "55P03", "25006"]
                    .iter()
                    .any(|class| code.starts_with(class)),
            }
        }),
        _ => false,
    }
}

/// How many connections to keep and how long to wait for one.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// A SQLite file's file system with fewer bytes than this left is "nearly full"
    /// ([`FreeSpace`]); 0 never is.
    pub min_free_bytes: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
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

/// An `ok` operation taken by [`Store::consume_operation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The person it signed in (or, for a link, the person the identity was added to).
    pub user: UserId,
    /// The provider id it was started for.
    pub provider: String,
    /// For a link from "Sign-in methods": the person who started it.
    pub link_for: Option<UserId>,
    /// The groups, organisations and teams the provider named at sign-in, to keep with the
    /// signed-in session (empty for a link, which signs nobody in).
    pub membership: Membership,
}

/// Whether a first sign-in with a new identity may join an existing person whose address is
/// the same (`providers.<name>.link_by_verified_email`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailLinking<'a> {
    /// A new identity is always a new person (the default).
    Never,
    /// A new identity joins the one person with the same address (ASCII case aside) when the
    /// provider verified it and that person's address was last verified by one of `trusted`;
    /// anything less (no address, an unverified one, one verified by a provider not in
    /// `trusted` or by nobody known, nobody or several people with it) makes a new person.
    WhenVerified {
        /// The providers whose verification may hand a person's account to a newcomer: those
        /// with `link_by_verified_email` on, the one signing in among them. Another provider's
        /// "verified" (one that says so of whatever its users type) never counts.
        trusted: &'a HashSet<String>,
    },
}

/// What [`Store::complete_sign_in`] did: who is signed in now (not a session: the web layer
/// makes that of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedSignIn {
    pub user: UserId,
    /// The identity was new and joined an existing person on a verified address.
    pub joined_by_email: bool,
}

/// A signed-in person, as the pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Whether the provider that gave `email` said it verified it (false without one).
    pub email_verified: bool,
}

/// Finished operations are kept this long, then deleted by [`Store::housekeeping`] (the
/// privacy page says so).
pub const FINISHED_OPERATION_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);

/// The database: a SQLite file or a PostgreSQL server.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The SQLite file's file system, watched for room; `None` on PostgreSQL and in memory.
    free_space: Option<Arc<FreeSpace>>,
}

impl Store {
    /// Opens and migrates the database `url` names (`sqlite://PATH`, creating the file and
    /// its folder when missing, or `postgres://…`), with the default pool size.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// [`Store::connect`] with the pool sized by `options`.
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let db = if url.starts_with("sqlite:") {
            sqlite::connect(url, options).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            postgres::connect(url, options).await?
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Scheme(scheme.to_owned()));
        };
        // sqlx names an in-memory database `file:sqlx-in-memory-N`: told apart by the URL.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let free_space = match &db {
            Db::Sqlite(pool) if !in_memory => Some(Arc::new(FreeSpace::new(
                pool.connect_options().get_filename(),
                options.min_free_bytes,
            ))),
            _ => None,
        };
        Ok(Self { db, free_space })
    }

    /// What `loginwith check` says of the database `url` names, without creating, migrating
    /// or writing anything: a SQLite file that does not exist yet is fine (start-up creates
    /// it); an existing one, or a PostgreSQL server, is asked how many of this build's
    /// migrations it has. `Err` when it cannot be reached, with the plain cause ("connection
    /// refused"), within `wait`.
    pub async fn probe(url: &str, wait: Duration) -> Result<String, StoreError> {
        use sqlx::Connection;
        let count = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let (applied, known): (Result<i64, sqlx::Error>, usize) = if url.starts_with("sqlite:") {
            let connect = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)?
                .read_only(true);
            let file = connect.get_filename().to_owned();
            if !url.contains(":memory:") && !file.exists() {
                return Ok(format!(
                    "{} does not exist yet: start-up creates it",
                    file.display()
                ));
            }
            let mut conn = tokio::time::timeout(wait, sqlx::SqliteConnection::connect_with(&connect))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            let applied = sqlx::query_scalar(count).fetch_one(&mut conn).await;
            (applied, sqlite::MIGRATOR.iter().count())
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)?;
            let mut conn = tokio::time::timeout(wait, sqlx::PgConnection::connect_with(&connect))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            let applied = sqlx::query_scalar(count).fetch_one(&mut conn).await;
            (applied, postgres::MIGRATOR.iter().count())
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Scheme(scheme.to_owned()));
        };
        Ok(match applied {
            Ok(applied) if usize::try_from(applied).is_ok_and(|n| n >= known) => {
                format!("reachable, with all {known} migrations this build knows")
            }
            Ok(applied) => format!(
                "reachable; {applied} of the {known} migrations this build knows are applied (start-up applies the rest)"
            ),
            // A database nothing has migrated yet has no `_sqlx_migrations`.
            Err(_) => format!("reachable; none of the {known} migrations are applied yet (start-up applies them)"),
        })
    }

    /// Whether the database answers.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Whether the database answers and has every migration this build knows applied (for
    /// `/readyz`). Reads only: another instance, or `loginwith migrate`, applies them.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let migrator = match &self.db {
            Db::Sqlite(_) => &sqlite::MIGRATOR,
            Db::Postgres(_) => &postgres::MIGRATOR,
        };
        let applied: Vec<i64> = on_db!(&self.db, |pool| sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success"
        )
        .fetch_all(pool)
        .await)?;
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.contains(&m.version)))
    }

    /// Whether the database takes a write now: the one row of `write_probe` rewritten. A full
    /// or read-only disk still serves reads, so `/readyz` asks this too while an outage is
    /// open (see [`outage`]).
    pub async fn write_probe(&self) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query(
            "UPDATE write_probe SET probed_at = $1 WHERE id = 1"
        )
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Runs for the app's life: while an outage is open ([`outage`]), asks for a write every
    /// second, so that the outage ends with the first write that succeeds even when nobody
    /// asks `/readyz`; and ends it in the log once it has settled (no failure for `settling`
    /// after that write: requests already waiting when the database came back fail within
    /// two database waits, a connection's and a statement's).
    pub async fn watch_outages(self, settling: Duration) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if outage::is_open()
                && matches!(
                    tokio::time::timeout(settling, self.write_probe()).await,
                    Ok(Ok(()))
                )
            {
                outage::recovered();
            }
            outage::settle(settling);
        }
    }

    /// The room left on the SQLite file's file system, logging a crossing of
    /// `database.min_free_mb` ([`FreeSpace::check`]); `None` on PostgreSQL.
    pub fn free_space(&self) -> Option<Room> {
        self.free_space.as_ref().and_then(|watch| watch.check())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Adds `count` people in one transaction, person `i` with the Facebook identity
    /// `provider_user_id(i)` and the address `existing{i}@bench.example`: the benchmark's
    /// "existing people" before it starts.
    #[cfg(feature = "test-support")]
    pub async fn insert_people(
        &self,
        count: u64,
        provider_user_id: impl Fn(u64) -> String,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        for i in 0..count {
            let id: i64 = on_tx!(&mut tx, |conn| {
                sqlx::query_scalar(
                "INSERT INTO user_profile (first_name, last_name, email, created_at, updated_at)
                 VALUES ($1, 'Existing', $2, $3, $3) RETURNING id",
            )
            .bind(format!("U{i}"))
            .bind(format!("existing{i}@bench.example"))
            .bind(now)
            .fetch_one(conn)
            .await
            })?;
            on_tx!(&mut tx, |conn| sqlx::query(
                "INSERT INTO user_identity
                 (user_profile_id, provider, provider_user_id, created_at, last_login_at)
                 VALUES ($1, 'facebook', $2, $3, $3)",
            )
            .bind(id)
            .bind(provider_user_id(i))
            .bind(now)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
        }
        tx.commit().await
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
        let id: i64 = on_db!(&self.db, |pool| sqlx::query_scalar(
            "INSERT INTO async_operation
             (async_operation_status_id, provider, link_user_profile_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(OperationStatus::Pending.id())
        .bind(provider)
        .bind(link_for.map(|user| user.0))
        .bind(now)
        .fetch_one(pool)
        .await)?;
        Ok(OperationId(id))
    }

    /// Reads an operation. A pending one older than `pending_limit` was orphaned (a crash,
    /// a restart): it is turned into a `timeout` error here, so no reader waits forever.
    pub async fn operation(
        &self,
        id: OperationId,
        pending_limit: Duration,
    ) -> Result<Option<Operation>, StoreError> {
        type Row = (i64, String, Option<i64>, Option<String>, i64, Option<i64>);
        let row: Option<Row> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT async_operation_status_id, provider, user_profile_id, error, created_at,
                    link_user_profile_id
             FROM async_operation WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(pool)
        .await)?;
        let Some((status, provider, user, error, created_at, link_for)) = row else {
            return Ok(None);
        };
        let status = OperationStatus::from_id(status).unwrap_or(OperationStatus::Error);
        let link_for = link_for.map(UserId);
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
        Ok(Some(Operation {
            id,
            status,
            provider,
            user: user.map(UserId),
            error: error.map(|e| FailureReason::from_code(&e)),
            link_for,
        }))
    }

    /// Finishes a successful exchange in one transaction: creates or updates the person
    /// behind `(provider, profile.provider_user_id)` and marks the operation `ok`. A new
    /// identity is always a new person ([`EmailLinking::Never`]).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn complete_login(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
    ) -> Result<UserId, StoreError> {
        self.complete_sign_in(operation, provider, profile, EmailLinking::Never)
            .await
            .map(|signed_in| signed_in.user)
    }

    /// [`Store::complete_login`], where a new identity may join an existing person on a
    /// verified address when `email_linking` allows it (see [`EmailLinking`]).
    ///
    /// Two first sign-ins of the same person at once (two tabs, two instances) are settled by
    /// `UNIQUE (provider, provider_user_id)`: the identity is inserted `ON CONFLICT DO
    /// NOTHING`, the one that finds it taken rolls back everything it wrote and starts again,
    /// finding the winner's row. One person, never two.
    pub async fn complete_sign_in(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
        email_linking: EmailLinking<'_>,
    ) -> Result<CompletedSignIn, StoreError> {
        for _ in 0..3 {
            if let Some(done) = self
                .try_complete_sign_in(operation, provider, profile, email_linking)
                .await?
            {
                return Ok(done);
            }
        }
        Err(StoreError::Contention)
    }

    /// One attempt of [`Store::complete_sign_in`]; `None` when a racing sign-in created the
    /// identity first (nothing of this attempt is kept).
    async fn try_complete_sign_in(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
        email_linking: EmailLinking<'_>,
    ) -> Result<Option<CompletedSignIn>, StoreError> {
        let now = now_ms();
        if let Db::Postgres(pool) = &self.db
            && let Some(user) =
                postgres::sign_in_returning_person(pool, operation.0, provider, profile, now)
                    .await?
        {
            return Ok(Some(CompletedSignIn {
                user: UserId(user),
                joined_by_email: false,
            }));
        }
        let mut tx = self.db.begin_write().await?;
        // A returning person: their identity is marked and names them, in one statement.
        let existing =
            linking::touch_identity(&mut tx, provider, &profile.provider_user_id, now).await?;
        let mut joined_by_email = false;
        let user_id = match existing {
            Some(user_id) => {
                update_profile(&mut tx, user_id, provider, profile, now).await?;
                user_id
            }
            None => {
                let joined = linking::person_to_join(&mut tx, email_linking, profile).await?;
                let user_id = match joined {
                    Some(person) => {
                        update_profile(&mut tx, person, provider, profile, now).await?;
                        joined_by_email = true;
                        person
                    }
                    None => insert_profile(&mut tx, provider, profile, now).await?,
                };
                if !linking::insert_identity(&mut tx, user_id, provider, profile, now).await? {
                    // Taken meanwhile by a racing first sign-in: drop this attempt.
                    return Ok(None);
                }
                user_id
            }
        };
        on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE async_operation
             SET async_operation_status_id = $1, user_profile_id = $2, updated_at = $3,
                 membership = $6
             WHERE id = $4 AND async_operation_status_id = $5",
        )
        .bind(OperationStatus::Ok.id())
        .bind(user_id)
        .bind(now)
        .bind(operation.0)
        .bind(OperationStatus::Pending.id())
        .bind(membership_json(&profile.membership))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.announce_finished(operation.0).await?;
        tx.commit().await?;
        Ok(Some(CompletedSignIn {
            user: UserId(user_id),
            joined_by_email,
        }))
    }

    /// Takes the sign-in of an `ok` operation, once: the first caller gets the person (and
    /// what `/success` needs of the operation, so it need not read it first), every later one
    /// (a second tab, a copied cookie racing the real browser) and any operation not `ok`
    /// get `None`.
    pub async fn consume_operation(&self, id: OperationId) -> Result<Option<Consumed>, StoreError> {
        type Row = (Option<i64>, String, Option<i64>, Option<String>);
        let row: Option<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(
                "UPDATE async_operation SET consumed_at = $1
                 WHERE id = $2 AND async_operation_status_id = $3 AND consumed_at IS NULL
                 RETURNING user_profile_id, provider, link_user_profile_id, membership",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(OperationStatus::Ok.id())
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.and_then(|(user, provider, link_for, membership)| {
            Some(Consumed {
                user: UserId(user?),
                provider,
                link_for: link_for.map(UserId),
                // Written by this program from the type itself; should it ever not read back,
                // the sign-in keeps no membership, which no membership condition lets in.
                membership: membership
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default(),
            })
        }))
    }

    /// Marks a still-pending operation as failed. A finished one is left as it is.
    pub async fn fail_operation(
        &self,
        id: OperationId,
        reason: FailureReason,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let failed = on_tx!(&mut tx, |conn| {
            sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = $1, error = $2, updated_at = $3
             WHERE id = $4 AND async_operation_status_id = $5",
        )
        .bind(OperationStatus::Error.id())
        .bind(reason.code())
        .bind(now_ms())
        .bind(id.0)
        .bind(OperationStatus::Pending.id())
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
        })?;
        if failed == 1 {
            tx.announce_finished(id.0).await?;
        }
        tx.commit().await
    }

    /// Turns every pending operation older than `limit` into a `timeout` error.
    /// Returns how many there were.
    pub async fn expire_orphaned_operations(&self, limit: Duration) -> Result<u64, StoreError> {
        let now = now_ms();
        let done = on_db!(&self.db, |pool| {
            sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = $1, error = $2, updated_at = $3
             WHERE async_operation_status_id = $4 AND created_at < $5",
        )
        .bind(OperationStatus::Error.id())
        .bind(FailureReason::Timeout.code())
        .bind(now)
        .bind(OperationStatus::Pending.id())
        .bind(now - millis(limit))
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    /// Deletes finished operations last touched more than `age` ago.
    pub async fn delete_finished_operations(&self, age: Duration) -> Result<u64, StoreError> {
        let done = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM async_operation
             WHERE async_operation_status_id IN ($1, $2) AND updated_at < $3",
        )
        .bind(OperationStatus::Ok.id())
        .bind(OperationStatus::Error.id())
        .bind(now_ms() - millis(age))
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
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
        let row: Option<(String, String, Option<String>, bool)> = on_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT first_name, last_name, email, email_verified FROM user_profile WHERE id = $1",
            )
            .bind(id.0)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(first_name, last_name, email, verified)| User {
            id,
            first_name,
            last_name,
            // An address's flag means nothing without the address.
            email_verified: verified && email.is_some(),
            email,
        }))
    }
}

/// What pages call the person: the provider's name in full, or nothing when it gave none.
/// A sign-in's membership as the `async_operation.membership` column holds it: JSON, or NULL
/// when the provider named none.
fn membership_json(membership: &Membership) -> Option<String> {
    if membership.is_empty() {
        return None;
    }
    serde_json::to_string(membership).ok()
}

fn display_name(profile: &Profile) -> Option<String> {
    let name = format!("{} {}", profile.first_name.trim(), profile.last_name.trim());
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Refreshes a person's names and address from `provider`, which they signed in with. A missing
/// address this time (declined, phone-only account) keeps the one we had, with whoever
/// verified it; a given one is recorded as verified by `provider` when it says so, and as
/// unverified otherwise (`email_verified_by`: who last vouched for the address, what
/// `link_by_verified_email` trusts or not).
async fn update_profile(
    tx: &mut Tx<'_>,
    user: i64,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "UPDATE user_profile
         SET first_name = $1, last_name = $2, display_name = $3,
             email = COALESCE($4, email),
             email_verified = CASE WHEN $4 IS NULL THEN email_verified ELSE $5 END,
             email_verified_by = CASE WHEN $4 IS NULL THEN email_verified_by
                                      WHEN $5 THEN $6 ELSE NULL END,
             updated_at = $7
         WHERE id = $8",
    )
    .bind(&profile.first_name)
    .bind(&profile.last_name)
    .bind(display_name(profile))
    .bind(&profile.email)
    .bind(profile.email_verified)
    .bind(provider)
    .bind(now)
    .bind(user)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// A new person, from `provider`'s description (the verifier of its address when it verified
/// it).
async fn insert_profile(
    tx: &mut Tx<'_>,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<i64, StoreError> {
    let verified = profile.email.is_some() && profile.email_verified;
    let id = on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO user_profile
         (first_name, last_name, display_name, email, email_verified, email_verified_by,
          created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(&profile.first_name)
    .bind(&profile.last_name)
    .bind(display_name(profile))
    .bind(&profile.email)
    .bind(verified)
    .bind(verified.then_some(provider))
    .bind(now)
    .fetch_one(conn)
    .await)?;
    Ok(id)
}
