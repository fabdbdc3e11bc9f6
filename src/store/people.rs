//! People's sign-ins as they and operators see them: the live sessions of a person ("Where
//! you're signed in"), ending them, blocking a person, and the operators' list of people.

use super::*;

/// One live sign-in of a person, as "Where you're signed in" lists it.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The session id. Compared with the browser's own to mark "this device", and named by
    /// the form that ends it; never shown.
    pub id: String,
    /// "Firefox on Linux"; `None` when the browser did not say or could not be read.
    pub device: Option<String>,
    /// The provider id the sign-in was made with (absent for sessions from before it was
    /// recorded).
    pub provider: Option<String>,
    /// When the sign-in began (Unix milliseconds).
    pub since_ms: i64,
    /// When it was last used, to the hour (Unix milliseconds).
    pub last_seen_ms: i64,
}

// Hand-written: a session id is a bearer credential and never reaches a log line.
impl std::fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("id", &"[redacted]")
            .field("device", &self.device)
            .field("provider", &self.provider)
            .field("since_ms", &self.since_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish()
    }
}

/// An operator's block on a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// When it was set (Unix milliseconds).
    pub at_ms: i64,
    /// What the operator wrote, if anything.
    pub reason: Option<String>,
}

/// A person as the operators' `loginwith users` commands show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSummary {
    pub id: UserId,
    /// The full name the provider gave, if any.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Whether the provider that gave `email` said it verified it.
    pub email_verified: bool,
    /// When the person first signed in (Unix milliseconds).
    pub created_ms: i64,
    /// Set while an operator blocks them.
    pub blocked: Option<Block>,
    /// Their identities: the provider id and the provider's id for the person, oldest first.
    pub identities: Vec<(String, String)>,
    /// How many unexpired sessions are signed in as them.
    pub live_sessions: i64,
}

/// Which people `loginwith users list` shows.
#[derive(Debug, Clone, Default)]
pub enum PeopleFilter {
    /// Everyone.
    #[default]
    Everyone,
    /// People whose address is this one (ASCII case aside).
    Email(String),
    /// People with an identity at this provider.
    Provider(String),
}

/// The columns [`PersonSummary`] is read from, for `FROM user_profile p`: `$1` is now, `$2`
/// the start of the oldest sign-in still within its absolute lifetime.
const PERSON_COLUMNS: &str = "p.id, p.display_name, p.email, p.email_verified, p.created_at,
     p.blocked_at, p.blocked_reason,
     (SELECT count(*) FROM session s WHERE s.user_id = p.id AND s.expires_at > $1
                                     AND COALESCE(s.signed_in_at, 0) > $2),
     count(*) OVER ()";

type PersonRow = (
    i64,
    Option<String>,
    Option<String>,
    bool,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

impl Store {
    /// The person's live sessions: unexpired, and begun after `signed_in_after_ms` (a
    /// sign-in past the absolute lifetime is over even while its row waits for the clean-up);
    /// most recently used first.
    pub async fn live_sessions(
        &self,
        user: UserId,
        signed_in_after_ms: i64,
    ) -> Result<Vec<LiveSession>, StoreError> {
        type Row = (String, Option<String>, Option<String>, Option<i64>, Option<i64>);
        let rows: Vec<Row> =
            on_db!(&self.db, |pool| sqlx::query_as(
                "SELECT id, device, provider, signed_in_at, last_seen_at FROM session
                 WHERE user_id = $1 AND expires_at > $2 AND COALESCE(signed_in_at, 0) > $3
                 ORDER BY last_seen_at DESC NULLS LAST, signed_in_at DESC, id",
            )
            .bind(user.0)
            .bind(now_ms())
            .bind(signed_in_after_ms)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, device, provider, since, seen)| {
                let since_ms = since.unwrap_or(0);
                LiveSession {
                    id,
                    device,
                    provider,
                    since_ms,
                    last_seen_ms: seen.unwrap_or(since_ms),
                }
            })
            .collect())
    }

    /// Ends the session `id` if it is one of `user`'s: whether one was ended. Another
    /// person's session id ends nothing.
    pub async fn end_session_of(&self, user: UserId, id: &str) -> Result<bool, StoreError> {
        let ended = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM session WHERE id = $1 AND user_id = $2"
        )
        .bind(id)
        .bind(user.0)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(ended == 1)
    }

    /// Ends every session of `user` but `except` (the browser asking, for "Sign out
    /// everywhere else"); how many.
    pub async fn end_sessions_of(
        &self,
        user: UserId,
        except: Option<&str>,
    ) -> Result<u64, StoreError> {
        let ended = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM session WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)"
        )
        .bind(user.0)
        .bind(except)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(ended)
    }

    /// Moves a session's "last used" to `now`: called at most once an hour per session (by
    /// whoever reads it signed in), so that "Where you're signed in" can say when each was
    /// last used, to the hour, without a write per request.
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        on_db!(&self.db, |pool| sqlx::query(
            "UPDATE session SET last_seen_at = $2
              WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)"
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Blocks `user`: every session ended and every later sign-in refused, in one
    /// transaction, until [`Store::unblock`]. A session inserted by a sign-in racing the
    /// block (on PostgreSQL its check may read the person before the block commits) is read
    /// as none by every reader, and deleted by the unblock. How many sessions were ended; `None` when there
    /// is no such person. Blocking a blocked person keeps the first block's time and reason.
    pub async fn block(
        &self,
        user: UserId,
        reason: Option<&str>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let found = on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE user_profile
                SET blocked_at = COALESCE(blocked_at, $2),
                    blocked_reason = CASE WHEN blocked_at IS NULL THEN $3 ELSE blocked_reason END
              WHERE id = $1"
        )
        .bind(user.0)
        .bind(now_ms())
        .bind(reason)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        if found == 0 {
            return Ok(None);
        }
        let ended = on_tx!(&mut tx, |conn| sqlx::query(
            "DELETE FROM session WHERE user_id = $1"
        )
        .bind(user.0)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.commit().await?;
        Ok(Some(ended))
    }

    /// Lifts a block: whether the person was blocked; `None` when there is no such person.
    /// Any session left from before the block (see [`Store::block`]) is deleted with it, so
    /// that the person signs in afresh.
    pub async fn unblock(&self, user: UserId) -> Result<Option<bool>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let lifted = on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE user_profile SET blocked_at = NULL, blocked_reason = NULL
              WHERE id = $1 AND blocked_at IS NOT NULL"
        )
        .bind(user.0)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        if lifted == 1 {
            on_tx!(&mut tx, |conn| sqlx::query("DELETE FROM session WHERE user_id = $1")
                .bind(user.0)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?;
        }
        tx.commit().await?;
        if lifted == 1 {
            return Ok(Some(true));
        }
        Ok(self.person(user, 0).await?.map(|_| false))
    }

    /// The people `filter` picks, oldest first, at most `limit` of them, and how many it
    /// picks in all (when it picks any: a `limit` of 0 reads as none).
    pub async fn people(
        &self,
        filter: &PeopleFilter,
        limit: u32,
        signed_in_after_ms: i64,
    ) -> Result<(Vec<PersonSummary>, i64), StoreError> {
        let (condition, value) = match filter {
            PeopleFilter::Everyone => ("$3 IS NULL", None),
            PeopleFilter::Email(email) => ("lower(p.email) = lower($3)", Some(email.as_str())),
            PeopleFilter::Provider(provider) => (
                "EXISTS (SELECT 1 FROM user_identity i
                          WHERE i.user_profile_id = p.id AND i.provider = $3)",
                Some(provider.as_str()),
            ),
        };
        // Only one of three fixed conditions is formatted in; every value is bound.
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM user_profile p WHERE {condition} ORDER BY p.id LIMIT $4"
        );
        let rows: Vec<PersonRow> = on_db!(&self.db, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(now_ms())
        .bind(signed_in_after_ms)
        .bind(value)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        let total = rows.first().map_or(0, |row| row.8);
        let mut people = Vec::with_capacity(rows.len());
        for row in rows {
            people.push(self.summary(row).await?);
        }
        Ok((people, total))
    }

    /// One person, if they exist, counting the sessions begun after `signed_in_after_ms`.
    pub async fn person(
        &self,
        user: UserId,
        signed_in_after_ms: i64,
    ) -> Result<Option<PersonSummary>, StoreError> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM user_profile p WHERE p.id = $3");
        let row: Option<PersonRow> = on_db!(&self.db, |pool| sqlx::query_as(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(now_ms())
        .bind(signed_in_after_ms)
        .bind(user.0)
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row) => Ok(Some(self.summary(row).await?)),
            None => Ok(None),
        }
    }

    /// The people whose address is `email` (ASCII case aside), by id.
    pub async fn people_with_email(&self, email: &str) -> Result<Vec<UserId>, StoreError> {
        let ids: Vec<i64> = on_db!(&self.db, |pool| sqlx::query_scalar(
            "SELECT id FROM user_profile WHERE lower(email) = lower($1) ORDER BY id"
        )
        .bind(email)
        .fetch_all(pool)
        .await)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn summary(&self, row: PersonRow) -> Result<PersonSummary, StoreError> {
        let (id, name, email, verified, created_ms, blocked_at, reason, live_sessions, _) = row;
        let identities: Vec<(String, String)> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT provider, provider_user_id FROM user_identity
              WHERE user_profile_id = $1 ORDER BY id"
        )
        .bind(id)
        .fetch_all(pool)
        .await)?;
        Ok(PersonSummary {
            id: UserId(id),
            name,
            email_verified: verified && email.is_some(),
            email,
            created_ms,
            blocked: blocked_at.map(|at_ms| Block { at_ms, reason }),
            identities,
            live_sessions,
        })
    }
}
