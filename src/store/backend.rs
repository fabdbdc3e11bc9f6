//! The two databases behind [`super::Store`]: a SQLite file (the embedded default) and
//! PostgreSQL (several instances on one database). Every statement is written once, with `$n`
//! placeholders, which both drivers bind; [`on_db!`] and [`on_tx!`] run it on whichever pool
//! or transaction is at hand. What differs (opening, migrations, how a write transaction
//! starts, locking a person's row) is in `sqlite.rs` and `postgres.rs`.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;

/// Statements this process sent to its databases (`BEGIN` and `COMMIT` included), for the
/// metrics and the benchmark. Not counted: what sqlx sends on its own (the connection checks
/// around each use of a pooled connection, the `ROLLBACK` of a transaction dropped
/// unfinished) and `LISTEN`.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts one statement (called by [`on_db!`], [`on_tx!`] and the few statements written
/// outside them).
pub fn count_statement() {
    STATEMENTS.fetch_add(1, Ordering::Relaxed);
}


/// The pool of whichever database `database.url` names.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either database.
pub enum Tx<'a> {
    Sqlite(Transaction<'a, Sqlite>),
    Postgres(Transaction<'a, Postgres>),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever database it is. The body is
/// compiled once per database, so the same SQL text and binds serve both.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {{
        $crate::store::backend::count_statement();
        match $db {
            $crate::store::backend::Db::Sqlite($pool) => $body,
            $crate::store::backend::Db::Postgres($pool) => $body,
        }
    }};
}

/// [`on_db!`] for a transaction: `$conn` is its connection (`&mut *tx`).
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {{
        $crate::store::backend::count_statement();
        match $tx {
            $crate::store::backend::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::backend::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    }};
}

pub(crate) use {on_db, on_tx};

impl Db {
    /// A transaction that will write. On SQLite `BEGIN IMMEDIATE` takes the write lock before
    /// the first read, so a read-then-write never fails half-way with "database is locked";
    /// PostgreSQL's row locks and unique constraints settle races inside the transaction.
    pub async fn begin_write(&self) -> Result<Tx<'static>, StoreError> {
        count_statement();
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Closes every connection (the benchmark, tests).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// The PostgreSQL channel on which a finished operation's id is announced, so that a long
/// poll on another instance answers at once.
pub const OPERATION_FINISHED: &str = "loginwith_operation_finished";

impl super::Store {
    /// Statements this process sent to its databases since it started (every store in the
    /// process together; `BEGIN` and `COMMIT` count): `loginwith_db_statements_total`.
    pub fn statements_sent() -> u64 {
        STATEMENTS.load(Ordering::Relaxed)
    }

    /// The pool's connections: `(in use, idle)`, for the metrics. Reads counters only.
    pub fn pool_stats(&self) -> (u32, u32) {
        let (size, idle) = match &self.db {
            Db::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Db::Postgres(pool) => (pool.size(), pool.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        (size - idle, idle)
    }
}

impl Tx<'_> {
    /// Announces that `operation` left `pending` to every instance (PostgreSQL delivers it
    /// when the transaction commits, and not at all if it rolls back). On SQLite every waiter
    /// is in this process and is woken by the caller.
    pub async fn announce_finished(&mut self, operation: i64) -> Result<(), StoreError> {
        if let Tx::Postgres(tx) = self {
            count_statement();
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(OPERATION_FINISHED)
                .bind(operation.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        count_statement();
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Locks the person's row until the transaction ends, so that two requests about the same
    /// person (removing two identities at once) run one after the other. SQLite's write
    /// transaction already holds the whole database.
    pub async fn lock_person(&mut self, user: i64) -> Result<(), StoreError> {
        if let Tx::Postgres(tx) = self {
            count_statement();
            sqlx::query("SELECT 1 FROM user_profile WHERE id = $1 FOR UPDATE")
                .bind(user)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
