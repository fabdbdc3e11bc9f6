//! The life of an asynchronous code exchange (`async_operation`): created pending by the
//! callback, finished `ok` or `error` by the exchange, consumed once by `/success`, expired
//! when orphaned and deleted a day after it finished.

use sha2::{Digest, Sha256};

use super::*;

/// The state of one asynchronous code exchange, as `async_operation_status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Pending,
    Ok,
    Error,
}

impl OperationStatus {
    pub(super) const fn id(self) -> i64 {
        match self {
            Self::Pending => 1,
            Self::Ok => 2,
            Self::Error => 3,
        }
    }

    pub(super) fn from_id(id: i64) -> Option<Self> {
        match id {
            1 => Some(Self::Pending),
            2 => Some(Self::Ok),
            3 => Some(Self::Error),
            _ => None,
        }
    }

    /// The word `/get-status` answers with.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// One row of `async_operation`, as the web layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: OperationId,
    pub status: OperationStatus,
    /// The provider id it was started for.
    pub provider: String,
    pub user: Option<UserId>,
    pub error: Option<FailureReason>,
    /// For a sign-in started from "Sign-in methods": the person the identity is added to.
    /// Such an operation never signs anyone in.
    pub link_for: Option<UserId>,
}

/// An `ok` operation taken by [`Store::consume_operation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The person it signed in (or, for a link, the person the identity was added to).
    pub user: UserId,
    /// The provider id it was started for.
    pub provider: String,
    /// For a link from "Sign-in methods": the person who started it.
    pub link_for: Option<UserId>,
    /// The groups, organisations and teams the provider named at sign-in, to keep with the
    /// signed-in session (empty for a link, which signs nobody in).
    pub membership: Membership,
    /// The OpenID Connect issuer's session id (the ID token's `sid`), to keep with the
    /// signed-in session for back-channel logout.
    pub provider_sid: Option<String>,
    /// The person was blocked (`loginwith users block`) after the exchange found them: they
    /// are refused, not signed in.
    pub blocked: bool,
}

/// Finished operations are kept this long, then deleted by [`Store::housekeeping`] (the
/// privacy page says so).
pub const FINISHED_OPERATION_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);

impl Store {
    /// Records the pending exchange a callback starts for `provider` (with `link_for`, one
    /// that adds an identity to that person), once per `state`: the row keeps the state's
    /// SHA-256 under a unique index, so a replayed callback gets `None` on every instance, and
    /// nothing is written. The state itself is never stored.
    pub async fn begin_operation(
        &self,
        provider: &str,
        link_for: Option<UserId>,
        state: &str,
    ) -> Result<Option<OperationId>, StoreError> {
        let digest = hex::encode(Sha256::digest(state.as_bytes()));
        self.insert_operation(provider, link_for, Some(&digest))
            .await
    }

    /// The tests' shortcut: a pending exchange for `provider` with no `state`.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn create_operation(&self, provider: &str) -> Result<OperationId, StoreError> {
        let id = self.insert_operation(provider, None, None).await?;
        Ok(id.expect("an operation without a state never conflicts"))
    }

    /// A pending operation; `None` when `state_digest` was recorded before.
    pub(super) async fn insert_operation(
        &self,
        provider: &str,
        link_for: Option<UserId>,
        state_digest: Option<&str>,
    ) -> Result<Option<OperationId>, StoreError> {
        let now = now_ms();
        // Every row fetched, not the first: SQLite commits a statement on its own when it
        // runs to the end, and a commit that fails then (a full disk) must fail this call,
        // not leave an id that was never stored.
        let ids: Vec<i64> = on_db!(&self.db, |pool| sqlx::query_scalar(
            "INSERT INTO async_operation
             (async_operation_status_id, provider, link_user_profile_id, state_digest,
              created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (state_digest) DO NOTHING RETURNING id",
        )
        .bind(OperationStatus::Pending.id())
        .bind(provider)
        .bind(link_for.map(|user| user.0))
        .bind(state_digest)
        .bind(now)
        .fetch_all(pool)
        .await)?;
        Ok(ids.first().copied().map(OperationId))
    }

    /// Reads an operation. A pending one older than `pending_limit` was orphaned (a crash,
    /// a restart): it is turned into a `timeout` error here, so no reader waits forever.
    pub async fn operation(
        &self,
        id: OperationId,
        pending_limit: Duration,
    ) -> Result<Option<Operation>, StoreError> {
        type Row = (i64, String, Option<i64>, Option<String>, i64, Option<i64>);
        let row: Option<Row> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT async_operation_status_id, provider, user_profile_id, error, created_at,
                    link_user_profile_id
             FROM async_operation WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(pool)
        .await)?;
        let Some((status, provider, user, error, created_at, link_for)) = row else {
            return Ok(None);
        };
        let status = OperationStatus::from_id(status).unwrap_or(OperationStatus::Error);
        let link_for = link_for.map(UserId);
        if status == OperationStatus::Pending && created_at < now_ms() - millis(pending_limit) {
            self.fail_operation(id, FailureReason::Timeout).await?;
            return Ok(Some(Operation {
                id,
                status: OperationStatus::Error,
                provider,
                user: None,
                error: Some(FailureReason::Timeout),
                link_for,
            }));
        }
        Ok(Some(Operation {
            id,
            status,
            provider,
            user: user.map(UserId),
            error: error.map(|e| FailureReason::from_code(&e)),
            link_for,
        }))
    }

    /// Takes the sign-in of an `ok` operation, once: the first caller gets the person (and
    /// what `/success` needs of the operation, so it need not read it first), every later one
    /// (a second tab, a copied cookie racing the real browser) and any operation not `ok`
    /// get `None`.
    pub async fn consume_operation(&self, id: OperationId) -> Result<Option<Consumed>, StoreError> {
        type Row = (Option<i64>, String, Option<i64>, Option<String>, Option<String>, bool);
        // Every row fetched, not the first (see `insert_operation`): a consumption whose
        // commit failed must not sign anyone in.
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            sqlx::query_as(
                "UPDATE async_operation SET consumed_at = $1
                 WHERE id = $2 AND async_operation_status_id = $3 AND consumed_at IS NULL
                 RETURNING user_profile_id, provider, link_user_profile_id, membership,
                           provider_sid,
                           EXISTS (SELECT 1 FROM user_profile p
                                    WHERE p.id = user_profile_id AND p.blocked_at IS NOT NULL)",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(OperationStatus::Ok.id())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().next().and_then(|row| {
            let (user, provider, link_for, membership, provider_sid, blocked) = row;
            Some(Consumed {
                user: UserId(user?),
                provider,
                link_for: link_for.map(UserId),
                // Written by this program from the type itself; should it ever not read back,
                // the sign-in keeps no membership, which no membership condition lets in.
                membership: membership
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default(),
                provider_sid,
                blocked,
            })
        }))
    }

    /// Marks a still-pending operation as failed. A finished one is left as it is.
    pub async fn fail_operation(
        &self,
        id: OperationId,
        reason: FailureReason,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let failed = on_tx!(&mut tx, |conn| {
            sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = $1, error = $2, updated_at = $3
             WHERE id = $4 AND async_operation_status_id = $5",
        )
        .bind(OperationStatus::Error.id())
        .bind(reason.code())
        .bind(now_ms())
        .bind(id.0)
        .bind(OperationStatus::Pending.id())
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
        })?;
        if failed == 1 {
            tx.announce_finished(id.0).await?;
        }
        tx.commit().await
    }

    /// Turns every pending operation older than `limit` into a `timeout` error.
    /// Returns how many there were.
    pub async fn expire_orphaned_operations(&self, limit: Duration) -> Result<u64, StoreError> {
        let now = now_ms();
        let done = on_db!(&self.db, |pool| {
            sqlx::query(
            "UPDATE async_operation SET async_operation_status_id = $1, error = $2, updated_at = $3
             WHERE async_operation_status_id = $4 AND created_at < $5",
        )
        .bind(OperationStatus::Error.id())
        .bind(FailureReason::Timeout.code())
        .bind(now)
        .bind(OperationStatus::Pending.id())
        .bind(now - millis(limit))
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    /// Deletes finished operations last touched more than `age` ago.
    pub async fn delete_finished_operations(&self, age: Duration) -> Result<u64, StoreError> {
        let done = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM async_operation
             WHERE async_operation_status_id IN ($1, $2) AND updated_at < $3",
        )
        .bind(OperationStatus::Ok.id())
        .bind(OperationStatus::Error.id())
        .bind(now_ms() - millis(age))
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
    }

    /// The periodic clean-up, also run at start-up: orphaned pending operations (older than
    /// `pending_limit`) become `timeout` errors; finished operations older than `retention`,
    /// expired sessions, recent activity older than `activity_retention` and logout tokens
    /// past their lifetime are deleted. Returns how many operations were orphaned.
    pub async fn housekeeping(
        &self,
        pending_limit: Duration,
        retention: Duration,
        activity_retention: Duration,
    ) -> Result<u64, StoreError> {
        let orphaned = self.expire_orphaned_operations(pending_limit).await?;
        self.delete_finished_operations(retention).await?;
        self.sessions().delete_expired().await?;
        self.forget_activity(activity_retention).await?;
        self.forget_expired_logout_tokens().await?;
        Ok(orphaned)
    }
}
