//! One person, several identities: listing them, adding one from a signed-in session, and
//! removing one. Linking is explicit (`docs/providers/account-linking.md`); the one
//! exception, off unless a provider's `link_by_verified_email` turns it on, is a first sign-in
//! joining the one person with the same verified address ([`person_to_join`]).

use super::{
    EmailLinking, OperationId, OperationStatus, Store, StoreError, UserId,
    backend::{Tx, on_db, on_tx},
    now_ms,
};
use crate::model::{FailureReason, Profile};

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
        let rows: Vec<(i64, String, i64, i64)> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT id, provider, created_at, last_login_at FROM user_identity
             WHERE user_profile_id = $1 ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, provider, created_at_ms, last_login_at_ms)| Identity {
                id: IdentityId(id),
                provider,
                created_at_ms,
                last_login_at_ms,
            })
            .collect())
    }

    /// The tests' shortcut: a pending exchange that adds an identity to `user` instead of
    /// signing in, with no `state` (see [`Store::begin_operation`]).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn create_link_operation(
        &self,
        provider: &str,
        user: UserId,
    ) -> Result<OperationId, StoreError> {
        let id = self.insert_operation(provider, Some(user), None).await?;
        Ok(id.expect("an operation without a state never conflicts"))
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
        let mut tx = self.db.begin_write().await?;
        let still_pending: bool = on_tx!(&mut tx, |conn| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM async_operation
                            WHERE id = $1 AND async_operation_status_id = $2
                              AND link_user_profile_id = $3)",
        )
        .bind(operation.0)
        .bind(OperationStatus::Pending.id())
        .bind(user.0)
        .fetch_one(conn)
        .await)?;
        if !still_pending {
            return Ok(Err(FailureReason::Internal));
        }
        // Attached when free; the unique (provider, provider_user_id) settles a race with
        // someone else's first sign-in, and the owner found then decides.
        let inserted = insert_identity(&mut tx, user.0, provider, profile, now).await?;
        if !inserted {
            let owner = touch_identity(&mut tx, provider, &profile.provider_user_id, now).await?;
            // Someone else's (or deleted this instant): nothing changes but the operation's
            // failure; the touch goes with the rollback.
            if owner != Some(user.0) {
                drop(tx);
                self.fail_operation(operation, FailureReason::IdentityTaken)
                    .await?;
                return Ok(Err(FailureReason::IdentityTaken));
            }
        }
        on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE async_operation
             SET async_operation_status_id = $1, user_profile_id = $2, updated_at = $3
             WHERE id = $4",
        )
        .bind(OperationStatus::Ok.id())
        .bind(user.0)
        .bind(now)
        .bind(operation.0)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.announce_finished(operation.0).await?;
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
        let mut tx = self.db.begin_write().await?;
        // Two removals at once must not both see the other identity left.
        tx.lock_person(user.0).await?;
        let (count, theirs): (i64, bool) = on_tx!(&mut tx, |conn| sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN id = $2 THEN 1 ELSE 0 END), 0) > 0
             FROM user_identity WHERE user_profile_id = $1",
        )
        .bind(user.0)
        .bind(identity.0)
        .fetch_one(conn)
        .await)?;
        if !theirs {
            return Ok(Unlink::NotFound);
        }
        if count <= 1 {
            return Ok(Unlink::LastOne);
        }
        on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM user_identity WHERE id = $1 AND user_profile_id = $2"
        )
        .bind(identity.0)
        .bind(user.0)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM session WHERE user_id = $1 AND id IS DISTINCT FROM $2"
        )
        .bind(user.0)
        .bind(keep_session)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.commit().await?;
        Ok(Unlink::Removed)
    }
}

/// Attaches the identity `(provider, profile.provider_user_id)` to `user`.
/// Records a sign-in with the identity `(provider, provider_user_id)` and returns whose it is;
/// `None` when nobody has it.
pub(super) async fn touch_identity(
    tx: &mut Tx<'_>,
    provider: &str,
    provider_user_id: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let owner = on_tx!(tx, |conn| sqlx::query_scalar(
        "UPDATE user_identity SET last_login_at = $1
         WHERE provider = $2 AND provider_user_id = $3
         RETURNING user_profile_id",
    )
    .bind(now)
    .bind(provider)
    .bind(provider_user_id)
    .fetch_optional(conn)
    .await)?;
    Ok(owner)
}

/// Attaches the identity `(provider, profile.provider_user_id)` to `user`; `false` when it
/// exists already (the unique constraint decides, so racing inserts cannot both succeed).
pub(super) async fn insert_identity(
    tx: &mut Tx<'_>,
    user: i64,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted = on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO user_identity
         (user_profile_id, provider, provider_user_id, issuer, created_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (provider, provider_user_id) DO NOTHING",
    )
    .bind(user)
    .bind(provider)
    .bind(&profile.provider_user_id)
    .bind(&profile.issuer)
    .bind(now)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(inserted == 1)
}

/// The person a new identity joins under [`EmailLinking::WhenVerified`]: the one profile whose
/// address equals the identity's (ASCII case aside, SQLite's `NOCASE`), when the provider
/// verified the identity's address and that profile's address was last verified by a provider
/// in `trusted`. An address some provider only claimed, such as Facebook's, could have been
/// typed by someone planting an account for its owner to walk into; one "verified" by a
/// provider the operator did not trust with linking may be no better (a provider that calls
/// whatever its users type verified), and one verified before loginwith recorded by whom
/// (`email_verified_by` NULL) is not known to be better. Two or more profiles with the
/// address: nobody, never a guess.
pub(super) async fn person_to_join(
    tx: &mut Tx<'_>,
    linking: EmailLinking<'_>,
    profile: &Profile,
) -> Result<Option<i64>, StoreError> {
    let (email, trusted) = match (linking, profile.email.as_deref()) {
        (EmailLinking::WhenVerified { trusted }, Some(email)) if profile.email_verified => {
            (email, trusted)
        }
        _ => return Ok(None),
    };
    // Each database's case-insensitive lookup, matching its index.
    let sql = match tx {
        Tx::Sqlite(_) => {
            "SELECT id, email_verified_by FROM user_profile
             WHERE email = $1 COLLATE NOCASE LIMIT 2"
        }
        Tx::Postgres(_) => {
            "SELECT id, email_verified_by FROM user_profile
             WHERE lower(email) = lower($1) LIMIT 2"
        }
    };
    let matches: Vec<(i64, Option<String>)> = on_tx!(tx, |conn| sqlx::query_as(sql)
        .bind(email)
        .fetch_all(conn)
        .await)?;
    Ok(match matches.as_slice() {
        [(person, Some(verifier))] if trusted.contains(verifier) => Some(*person),
        _ => None,
    })
}
