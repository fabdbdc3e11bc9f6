//! PostgreSQL: several instances on one database. Migrations take sqlx's advisory lock, so
//! instances starting together apply them once.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{ConnectOptions, StoreError, backend::Db};

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
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect)
        .await
        .map_err(|source| StoreError::Open {
            path: server,
            source,
        })?;
    MIGRATOR.run(&pool).await?;
    Ok(Db::Postgres(pool))
}
