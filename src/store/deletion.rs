//! Deleting people: Facebook's Data Deletion and Deauthorize callbacks, and self-service.

use super::{
    Store, StoreError, UserId,
    backend::{Tx, on_db, on_tx},
    now_ms,
};

/// What a deletion removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// The provider identity (the link between the provider's account and ours).
    pub identity_deleted: bool,
    /// The profile (names, email) and its operations: only when no other identity uses it.
    pub profile_deleted: bool,
}

/// A recorded deletion, as its status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    pub confirmation_code: String,
    pub provider: String,
    pub deletion: Deletion,
    pub created_at_ms: i64,
}

impl Store {
    /// Removes the identity `(provider, provider_user_id)` and, when it was the person's last
    /// one, their profile and operations. Unknown identities delete nothing.
    pub async fn delete_identity(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Deletion, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let user: Option<i64> = on_tx!(&mut tx, |conn| sqlx::query_scalar(
            "DELETE FROM user_identity WHERE provider = $1 AND provider_user_id = $2
             RETURNING user_profile_id",
        )
        .bind(provider)
        .bind(provider_user_id)
        .fetch_optional(conn)
        .await)?;
        let Some(user) = user else {
            return Ok(Deletion {
                identity_deleted: false,
                profile_deleted: false,
            });
        };
        // Two identities of one person removed at once must not both see the other one left.
        tx.lock_person(user).await?;
        let remaining: i64 = on_tx!(&mut tx, |conn| sqlx::query_scalar(
            "SELECT COUNT(*) FROM user_identity WHERE user_profile_id = $1"
        )
        .bind(user)
        .fetch_one(conn)
        .await)?;
        let profile_deleted = remaining == 0;
        if profile_deleted {
            delete_profile(&mut tx, user).await?;
        } else {
            // The person stays (another identity), but whoever signed in through this one
            // is signed out everywhere.
            end_sessions(&mut tx, user).await?;
        }
        tx.commit().await?;
        Ok(Deletion {
            identity_deleted: true,
            profile_deleted,
        })
    }

    /// Removes a person entirely: every identity, their operations and their profile.
    pub async fn delete_user(&self, user: UserId) -> Result<Deletion, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let identities = on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM user_identity WHERE user_profile_id = $1"
        )
        .bind(user.0)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        let profile_deleted = delete_profile(&mut tx, user.0).await?;
        tx.commit().await?;
        Ok(Deletion {
            identity_deleted: identities > 0,
            profile_deleted,
        })
    }

    /// Keeps what a deletion did under its confirmation code, for the status page.
    pub async fn record_deletion(
        &self,
        confirmation_code: &str,
        provider: &str,
        deletion: Deletion,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query(
            "INSERT INTO deletion_request
             (confirmation_code, provider, identity_deleted, profile_deleted, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(confirmation_code)
        .bind(provider)
        .bind(deletion.identity_deleted)
        .bind(deletion.profile_deleted)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    pub async fn deletion(
        &self,
        confirmation_code: &str,
    ) -> Result<Option<DeletionRecord>, StoreError> {
        let row: Option<(String, String, bool, bool, i64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT confirmation_code, provider, identity_deleted, profile_deleted, created_at
                 FROM deletion_request WHERE confirmation_code = $1",
            )
            .bind(confirmation_code)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(
            |(confirmation_code, provider, identity_deleted, profile_deleted, created_at_ms)| {
                DeletionRecord {
                    confirmation_code,
                    provider,
                    deletion: Deletion {
                        identity_deleted,
                        profile_deleted,
                    },
                    created_at_ms,
                }
            },
        ))
    }
}

/// Deletes a profile with its operations and every session signed in as it. (Foreign keys
/// would cascade to both; the deletes say so here, where a reader looks.)
async fn delete_profile(tx: &mut Tx<'_>, user: i64) -> Result<bool, StoreError> {
    end_sessions(tx, user).await?;
    on_tx!(tx, |conn| sqlx::query(
        "DELETE FROM async_operation WHERE user_profile_id = $1"
    )
    .bind(user)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    let deleted = on_tx!(tx, |conn| sqlx::query(
        "DELETE FROM user_profile WHERE id = $1"
    )
    .bind(user)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(deleted > 0)
}

/// Ends every session signed in as `user`, on every browser.
async fn end_sessions(tx: &mut Tx<'_>, user: i64) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(
        "DELETE FROM session WHERE user_id = $1"
    )
    .bind(user)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}
