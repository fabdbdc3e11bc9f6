//! Opening the database `[database]` names: for start-up, `loginwith migrate` and
//! `loginwith check`.

use std::time::Duration;

use crate::{
    config::Config,
    store::{ConnectOptions, Store, StoreError},
};

/// `loginwith migrate`: creates the database `database.url` names if it is a SQLite file, and
/// applies the migrations this build carries (start-up does the same).
pub async fn migrate(config: &Config) -> Result<(), StoreError> {
    open_store(config).await?.close().await;
    Ok(())
}

/// Opens and migrates the database `database.url` names, with the pool `[database]` sizes.
pub(crate) async fn open_store(config: &Config) -> Result<Store, StoreError> {
    let options = ConnectOptions {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
        min_free_bytes: config.database.min_free_mb * 1024 * 1024,
    };
    Store::connect_with(&config.database.url, &options).await
}

/// `loginwith check`: whether the database `database.url` names can be reached, without
/// creating or migrating anything: what it found (a SQLite file not there yet, or how many
/// migrations the database has), or `Err` naming the database and the plain cause.
pub async fn check_database(config: &Config) -> Result<String, String> {
    let wait = Duration::from_secs(config.database.connect_timeout_secs);
    let described = config.database_description();
    Store::probe(&config.database.url, wait)
        .await
        .map_err(|e| match e {
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                format!("database {described}: no answer within database.connect_timeout_secs")
            }
            e => format!("database {described}: cannot connect: {e}"),
        })
}
