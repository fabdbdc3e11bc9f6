//! "Recent activity": the sign-ins and refused sign-ins of a person, kept for
//! `audit.retention_days` so that people notice one that was not theirs.

use super::*;

/// What happened at a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    SignedIn,
    /// `[access]` or an operator's block refused it.
    Refused,
}

impl Outcome {
    fn code(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::Refused => "refused",
        }
    }
}

/// One line of a person's recent activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub outcome: Outcome,
    /// The provider id.
    pub provider: String,
    /// "Firefox on Linux"; `None` when the browser could not be read.
    pub device: Option<String>,
    /// When (Unix milliseconds).
    pub at_ms: i64,
}

impl Store {
    /// Records a sign-in or a refusal of `user`.
    pub async fn record_activity(
        &self,
        user: UserId,
        outcome: Outcome,
        provider: &str,
        device: Option<&str>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query(
            "INSERT INTO sign_in_event (user_profile_id, outcome, provider, device, at)
             SELECT id, $2, $3, $4, $5 FROM user_profile WHERE id = $1"
        )
        .bind(user.0)
        .bind(outcome.code())
        .bind(provider)
        .bind(device)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Records a refused sign-in of whoever owns the identity `(provider, subject)`: nothing
    /// when nobody does (a refused newcomer leaves no trace).
    pub async fn record_refusal(
        &self,
        provider: &str,
        subject: &str,
        device: Option<&str>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query(
            "INSERT INTO sign_in_event (user_profile_id, outcome, provider, device, at)
             SELECT user_profile_id, 'refused', $1, $3, $4 FROM user_identity
              WHERE provider = $1 AND provider_user_id = $2"
        )
        .bind(provider)
        .bind(subject)
        .bind(device)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The person's last `limit` sign-ins and refusals, newest first.
    pub async fn recent_activity(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        let rows: Vec<(String, String, Option<String>, i64)> = on_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT outcome, provider, device, at FROM sign_in_event
                  WHERE user_profile_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(user.0)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(outcome, provider, device, at_ms)| ActivityEntry {
                outcome: if outcome == "refused" {
                    Outcome::Refused
                } else {
                    Outcome::SignedIn
                },
                provider,
                device,
                at_ms,
            })
            .collect())
    }

    /// Deletes activity older than `retention` (all of it when `retention` is zero); how
    /// many lines.
    pub async fn forget_activity(&self, retention: Duration) -> Result<u64, StoreError> {
        let before = now_ms().saturating_sub(crate::model::millis(retention));
        let done = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM sign_in_event WHERE at <= $1"
        )
        .bind(before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
    }
}
