//! Fresh databases for tests: a SQLite file always, and a PostgreSQL database of its own on
//! the server `LOGINWITH_TEST_DATABASE_URL` names (`.ci/run` sets it to the machine's
//! PostgreSQL). Each PostgreSQL database is created for one test and dropped after it.

use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

/// The server tests may create databases on, if any.
pub const TEST_DATABASE_URL: &str = "LOGINWITH_TEST_DATABASE_URL";

/// One test's database.
pub struct TestDb {
    /// What `database.url` is set to.
    pub url: String,
    /// `"sqlite"` or `"postgres"`, for assertion messages.
    pub backend: &'static str,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The database file's folder, kept (and so not deleted) while the database is in use.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            url: format!("sqlite://{}/loginwith.db", dir.path().display()),
            backend: "sqlite",
            cleanup: Cleanup::Sqlite { _dir: dir },
        }
    }

    /// A new, empty database on the test server; `None` when no server is named. A server
    /// that is named but does not answer fails the test: never a silent skip.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(TEST_DATABASE_URL).ok()?;
        let name = format!("loginwith_test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL}={admin_url} does not answer: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(&admin_url).expect("the test server's URL");
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            backend: "postgres",
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// SQLite, and PostgreSQL when a test server is named.
    pub async fn all() -> Vec<Self> {
        let mut all = vec![Self::sqlite()];
        all.extend(Self::postgres().await);
        all
    }

    /// A connection pool of the test's own, to look at and age rows.
    pub async fn inspect(&self) -> Inspect {
        match self.cleanup {
            Cleanup::Sqlite { .. } => {
                Inspect::Sqlite(SqlitePool::connect(&self.url).await.unwrap())
            }
            Cleanup::Postgres { .. } => {
                Inspect::Postgres(PgPool::connect(&self.url).await.unwrap())
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        if !drop_postgres_database(admin_url, name) {
            eprintln!("could not drop the test database {}", self.url);
        }
    }
}

/// `DROP DATABASE name WITH (FORCE)` on the server `admin_url` names, from any context: a
/// `Drop` runs inside a runtime, which cannot be blocked on, so the statement runs on a
/// thread of its own. Whether it was dropped (the tests' and the benchmark's databases).
pub fn drop_postgres_database(admin_url: &str, name: &str) -> bool {
    let (admin_url, name) = (admin_url.to_owned(), name.to_owned());
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut admin = PgConnection::connect(&admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .map(|_| ())
        })
    })
    .join();
    matches!(dropped, Ok(Ok(())))
}

/// Either database, for the few things tests read or change behind the store's back.
pub enum Inspect {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Inspect {
    /// `SELECT COUNT(*) FROM {table}`.
    pub async fn count(&self, table: &str) -> i64 {
        self.number(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// The one integer `sql` selects.
    pub async fn number(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("a number")
    }

    /// Runs a statement with one `$1` id bound.
    pub async fn execute(&self, sql: &str, id: i64) -> u64 {
        match self {
            Self::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            Self::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        }
        .expect("execute")
    }
}
