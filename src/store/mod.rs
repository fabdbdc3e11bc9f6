//! All SQL lives here. Handlers and the exchange task speak in domain types
//! ([`UserId`], [`Operation`], [`Profile`]); the database is a SQLite file or PostgreSQL,
//! chosen by `database.url`'s scheme (see [`backend`]).

mod activity;
mod announcements;
mod backend;
mod connect;
mod deletion;
mod free_space;
mod ids;
mod linking;
mod logout;
mod operations;
mod people;
pub mod outage;
mod postgres;
mod sealing_keys;
mod session_data;
mod sessions;
mod sign_in;
mod sqlite;

use std::{collections::HashSet, sync::Arc, time::Duration};

use backend::{Db, Tx, on_db, on_tx};

pub use activity::{ActivityEntry, Outcome};
pub use announcements::{Announcement, Announcements};
pub use crate::model::{millis, now_ms};
pub use deletion::{Deletion, DeletionRecord};
pub use free_space::{FreeSpace, Room};
pub use ids::{OperationId, UserId};
pub use linking::{IdentityId, Unlink};
pub use logout::{IssuerLogout, LogoutRefused};
pub use people::{LiveSession, PeopleFilter, PersonSummary};
pub use operations::{Consumed, FINISHED_OPERATION_RETENTION, Operation, OperationStatus};
pub use sealing_keys::StoredKey;
pub use sign_in::EmailLinking;
use sign_in::{display_name, given_names, membership_json};
pub use session_data::{CSRF_KEY, NOTICES_KEY, SIGNED_IN_KEY, SessionSignIn};
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

impl StoreError {
    /// Reports the failure of a write a request goes on without (a line of recent activity,
    /// when a session was last used): while the database is unavailable that is the outage's
    /// to report, one WARN for the whole outage (`outage::met`); anything else is a WARN
    /// saying what was skipped.
    pub fn log_skipped(&self, what: &str) {
        if self.is_unavailable() {
            outage::met(&self.to_string());
        } else {
            tracing::warn!(error = %self, "{what}");
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

/// A person as stored, read back by the tests (the pages read a person with their session,
/// [`SignedInSession`]).
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Whether the provider that gave `email` said it verified it (false without one).
    pub email_verified: bool,
}

/// The database: a SQLite file or a PostgreSQL server.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The SQLite file's file system, watched for room; `None` on PostgreSQL and in memory.
    free_space: Option<Arc<FreeSpace>>,
}

impl Store {
    /// The person with this id, if they still exist (the tests' read-back).
    #[cfg(any(test, feature = "test-support"))]
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
