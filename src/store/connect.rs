//! Opening the database, checking it without opening it (`loginwith check`), asking it for
//! a write (readiness in an outage), and closing it.

use super::*;

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
}
