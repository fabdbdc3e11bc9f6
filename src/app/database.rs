//! Opening the database `[database]` names: for start-up, `loginwith migrate` and
//! `loginwith check`.

use std::time::Duration;

use crate::{
    config::Config,
    store::{ConnectOptions, Store, StoreError},
    web::sealing,
};

/// `loginwith migrate`: creates the database `database.url` names if it is a SQLite file, and
/// applies the migrations this build carries (start-up does the same).
pub async fn migrate(config: &Config) -> Result<(), StoreError> {
    open_store(config).await?.close().await;
    Ok(())
}

/// `loginwith rotate-key`: a new sealing key for the pre-sign-in cookie, which every instance
/// seals with from the first cookie sealed with it that reaches it (or within five minutes);
/// cookies sealed with the previous key keep opening for an hour, and keys replaced longer
/// ago are deleted. What it did, or why not (a key in the configuration is rotated there).
pub async fn rotate_sealing_key(config: &Config) -> Result<String, String> {
    if !config.session.sealing_key.trim().is_empty() {
        return Err(
            "session.sealing_key is set: the key is the configuration's; rotate it by \
                    setting a new one (openssl rand -base64 32) on every instance"
                .to_owned(),
        );
    }
    let store = open_store(config).await.map_err(|e| e.to_string())?;
    let rotated = store
        .rotate_sealing_key(&sealing::new_secret(), sealing::KEY_LIFETIME)
        .await;
    store.close().await;
    let (id, deleted) = rotated.map_err(|e| e.to_string())?;
    Ok(format!(
        "sealing key {id} added to {}: instances seal with it from now on; the previous key \
         opens for another hour; {deleted} retired key(s) deleted",
        config.database_description()
    ))
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
