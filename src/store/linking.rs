//! One person, several identities: listing them, adding one from a signed-in session, and
//! removing one. Linking is explicit (PROVIDERS.md, "Account linking: the safe rule"); the one
//! exception, off unless a provider's `link_by_verified_email` turns it on, is a first sign-in
//! joining the one person with the same verified address ([`person_to_join`]).

use sqlx::Row;

use super::{EmailLinking, OperationId, OperationStatus, Store, StoreError, UserId, now_ms};
use crate::auth::{FailureReason, Profile};

/// The id of a `user_identity` row, as the "Remove" buttons name it. Only ever acted on
/// together with the signed-in person's id, so naming someone else's changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityId(pub i64);

/// One way a person signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: IdentityId,
    pub provider: String,
    pub created_at_ms: i64,
    pub last_login_at_ms: i64,
}

/// What [`Store::unlink_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    Removed,
    /// The person's only identity: removing it would leave no way to sign in.
    LastOne,
    /// No identity of this person has that id (someone else's, or none at all).
    NotFound,
}

impl Store {
    /// The person's identities, oldest first.
    pub async fn identities(&self, user: UserId) -> Result<Vec<Identity>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, provider, created_at, last_login_at FROM user_identity
             WHERE user_profile_id = ? ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Identity {
                    id: IdentityId(row.try_get("id")?),
                    provider: row.try_get("provider")?,
                    created_at_ms: row.try_get("created_at")?,
                    last_login_at_ms: row.try_get("last_login_at")?,
                })
            })
            .collect()
    }

    /// Records a pending exchange that adds an identity to `user` instead of signing in.
    pub async fn create_link_operation(
        &self,
        provider: &str,
        user: UserId,
    ) -> Result<OperationId, StoreError> {
        self.insert_operation(provider, Some(user)).await
    }

    /// Finishes a link exchange in one transaction. The identity `(provider,
    /// profile.provider_user_id)` is attached to `user` when it belongs to nobody, only
    /// touched (`last_login_at`) when it is theirs already, and left alone when it is
    /// someone else's: then the operation fails with `identity_taken` and nothing changes.
    /// The profile's names and email are not overwritten by the new provider's: the person
    /// stays who they were.
    ///
    /// The operation must still be a pending link for `user`: a person deleted meanwhile
    /// took the operation with them (foreign key), and then nothing is written.
    pub async fn link_identity(
        &self,
        operation: OperationId,
        user: UserId,
        provider: &str,
        profile: &Profile,
    ) -> Result<Result<(), FailureReason>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let still_pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM async_operation
                            WHERE id = ? AND async_operation_status_id = ?
                              AND link_user_profile_id = ?)",
        )
        .bind(operation.0)
        .bind(OperationStatus::Pending.id())
        .bind(user.0)
        .fetch_one(&mut *tx)
        .await?;
        if !still_pending {
            return Ok(Err(FailureReason::Internal));
        }
        let owner: Option<i64> = sqlx::query_scalar(
            "SELECT user_profile_id FROM user_identity WHERE provider = ? AND provider_user_id = ?",
        )
        .bind(provider)
        .bind(&profile.provider_user_id)
        .fetch_optional(&mut *tx)
        .await?;
        match owner {
            None => insert_identity(&mut tx, user.0, provider, profile, now).await?,
            Some(owner) if owner == user.0 => {
                sqlx::query(
                    "UPDATE user_identity SET last_login_at = ?
                     WHERE provider = ? AND provider_user_id = ?",
                )
                .bind(now)
                .bind(provider)
                .bind(&profile.provider_user_id)
                .execute(&mut *tx)
                .await?;
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE async_operation
                     SET async_operation_status_id = ?, error = ?, updated_at = ?
                     WHERE id = ?",
                )
                .bind(OperationStatus::Error.id())
                .bind(FailureReason::IdentityTaken.code())
                .bind(now)
                .bind(operation.0)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Err(FailureReason::IdentityTaken));
            }
        }
        sqlx::query(
            "UPDATE async_operation
             SET async_operation_status_id = ?, user_profile_id = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(OperationStatus::Ok.id())
        .bind(user.0)
        .bind(now)
        .bind(operation.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Removes one of `user`'s identities, never the last one. Their sessions other than
    /// `keep_session` end: whoever signed in through the removed identity (which sessions
    /// do not record) must not stay signed in by it, while the browser that asked stays
    /// signed in, since it just proved to be the person.
    pub async fn unlink_identity(
        &self,
        user: UserId,
        identity: IdentityId,
        keep_session: Option<&str>,
    ) -> Result<Unlink, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM user_identity WHERE user_profile_id = ?")
                .bind(user.0)
                .fetch_one(&mut *tx)
                .await?;
        let theirs: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM user_identity WHERE id = ? AND user_profile_id = ?)",
        )
        .bind(identity.0)
        .bind(user.0)
        .fetch_one(&mut *tx)
        .await?;
        if !theirs {
            return Ok(Unlink::NotFound);
        }
        if count <= 1 {
            return Ok(Unlink::LastOne);
        }
        sqlx::query("DELETE FROM user_identity WHERE id = ? AND user_profile_id = ?")
            .bind(identity.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM session WHERE user_id = ? AND id IS NOT ?")
            .bind(user.0)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Unlink::Removed)
    }
}

/// Attaches the identity `(provider, profile.provider_user_id)` to `user`.
pub(super) async fn insert_identity(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: i64,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO user_identity
         (user_profile_id, provider, provider_user_id, created_at, last_login_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user)
    .bind(provider)
    .bind(&profile.provider_user_id)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The person a new identity joins under [`EmailLinking::WhenVerified`]: the one profile whose
/// address equals the identity's (ASCII case aside, SQLite's `NOCASE`), when the provider
/// verified the identity's address and that profile's address was verified too (an address
/// some provider only claimed, such as Facebook's, could have been typed by someone planting
/// an account for its owner to walk into). Two or more profiles with the address: nobody,
/// never a guess.
pub(super) async fn person_to_join(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    linking: EmailLinking,
    profile: &Profile,
) -> Result<Option<i64>, StoreError> {
    let email = match (linking, profile.email.as_deref()) {
        (EmailLinking::WhenVerified, Some(email)) if profile.email_verified => email,
        _ => return Ok(None),
    };
    let matches: Vec<(i64, bool)> = sqlx::query_as(
        "SELECT id, email_verified FROM user_profile WHERE email = ? COLLATE NOCASE LIMIT 2",
    )
    .bind(email)
    .fetch_all(&mut **tx)
    .await?;
    Ok(match matches.as_slice() {
        [(person, true)] => Some(*person),
        _ => None,
    })
}
