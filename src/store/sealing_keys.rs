//! The keys that seal the pre-sign-in cookie, kept in the database so that every instance
//! shares them without configuration: the first instance creates one, `loginwith rotate-key`
//! adds a newer one. The newest seals; a key replaced less than `lifetime` ago still opens
//! what it sealed, and one replaced longer ago is deleted by the next rotation.

use base64::{Engine, engine::general_purpose::STANDARD};

use super::*;

/// One sealing key as stored: its id (named in every cookie it seals; never reused) and its
/// 32 secret bytes.
#[derive(Clone)]
pub struct StoredKey {
    pub id: i64,
    pub secret: [u8; 32],
}

// Hand-written: the secret must never reach a log line through `{:?}`.
impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl Store {
    /// The keys that open cookies now, newest first: the newest, and those it (or a key
    /// after it) replaced less than `lifetime` ago. With no key at all, `first` becomes the
    /// first one (instances starting together may each add one: every key opens, and the
    /// newest seals).
    pub async fn sealing_keys(
        &self,
        first: &[u8; 32],
        lifetime: Duration,
    ) -> Result<Vec<StoredKey>, StoreError> {
        let keys = self.usable_sealing_keys(lifetime).await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        on_db!(&self.db, |pool| sqlx::query(
            "INSERT INTO sealing_key (secret, created_at)
             SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM sealing_key)"
        )
        .bind(STANDARD.encode(first))
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        self.usable_sealing_keys(lifetime).await
    }

    /// Adds `secret` as the newest key and deletes the keys replaced more than `lifetime`
    /// ago; returns the new key's id and how many were deleted.
    pub async fn rotate_sealing_key(
        &self,
        secret: &[u8; 32],
        lifetime: Duration,
    ) -> Result<(i64, u64), StoreError> {
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        let id: i64 = on_tx!(&mut tx, |conn| sqlx::query_scalar(
            "INSERT INTO sealing_key (secret, created_at) VALUES ($1, $2) RETURNING id"
        )
        .bind(STANDARD.encode(secret))
        .bind(now)
        .fetch_one(conn)
        .await)?;
        let deleted = on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM sealing_key
             WHERE EXISTS (SELECT 1 FROM sealing_key newer
                           WHERE newer.id > sealing_key.id AND newer.created_at < $1)"
        )
        .bind(now - millis(lifetime))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.commit().await?;
        Ok((id, deleted))
    }

    async fn usable_sealing_keys(&self, lifetime: Duration) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<(i64, String)> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT id, secret FROM sealing_key
             WHERE NOT EXISTS (SELECT 1 FROM sealing_key newer
                               WHERE newer.id > sealing_key.id AND newer.created_at < $1)
             ORDER BY id DESC"
        )
        .bind(now_ms() - millis(lifetime))
        .fetch_all(pool)
        .await)?;
        // Written by this program; a row that does not read back as 32 bytes opens nothing.
        Ok(rows
            .into_iter()
            .filter_map(|(id, secret)| {
                let secret = STANDARD.decode(secret).ok()?.try_into().ok()?;
                Some(StoredKey { id, secret })
            })
            .collect())
    }
}
