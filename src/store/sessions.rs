//! The session table behind tower-sessions. Kept here so that all SQL lives in the store, and
//! so that each operation is one statement (a new session is one `INSERT`, not a
//! transaction of three).

use std::collections::HashMap;

use async_trait::async_trait;

use time::OffsetDateTime;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store,
};

use super::{
    Store, StoreError, UserId,
    backend::{Db, on_db},
    now_ms,
    session_data::{SessionSignIn, SharedData},
};

/// tower-sessions' [`SessionStore`] over the `session` table.
#[derive(Debug, Clone)]
pub struct SessionTable {
    db: Db,
}

impl Store {
    /// The session table, for the session layer.
    pub fn sessions(&self) -> SessionTable {
        SessionTable {
            db: self.db.clone(),
        }
    }
}

impl SessionTable {
    /// Runs `sql`, a write of one session, with `$1` its id, `$2` its data, `$3` its expiry,
    /// and its sign-in's columns: `$4` the person, `$5` the provider, `$6` since when, `$7`
    /// the device, `$8` the issuer's session id; how many rows it wrote.
    async fn write(
        &self,
        sql: &'static str,
        record: &Record,
        data: &str,
        sign_in: Option<&SessionSignIn>,
    ) -> session_store::Result<u64> {
        on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(record.id.to_string())
            .bind(data)
            .bind(expires_at_ms(record))
            .bind(sign_in.map(|s| s.user.0))
            .bind(sign_in.and_then(|s| s.provider.as_deref()))
            .bind(sign_in.map(|s| s.since_ms))
            .bind(sign_in.and_then(|s| s.device.as_deref()))
            .bind(sign_in.and_then(|s| s.provider_sid.as_deref()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(backend)
    }

    /// Whether `owner` (none: an anonymous session) may hold a session: they exist and are
    /// not blocked. What the insert checks too, so that a refused insert is told apart from
    /// an id that collided.
    async fn owner_may_sign_in(&self, owner: Option<i64>) -> session_store::Result<bool> {
        let Some(owner) = owner else { return Ok(true) };
        on_db!(&self.db, |pool| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM user_profile WHERE id = $1 AND blocked_at IS NULL)"
        )
        .bind(owner)
        .fetch_one(pool)
        .await)
        .map_err(backend)
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let done = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM session WHERE expires_at <= $1"
        )
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
    }
}

/// A signed-in session as every reader outside the session layer sees it (`/auth/check`, the
/// library's `SignedIn`): one read, nothing written.
#[derive(Clone)]
pub struct SignedInSession {
    pub user: UserId,
    /// When the sign-in began (Unix milliseconds; the `signed_in_at` column).
    pub since_ms: i64,
    /// When it was last used, to the hour (the `last_seen_at` column; see
    /// [`Store::touch_session`]).
    pub last_seen_ms: i64,
    /// The provider it was made with (the `provider` column); for sessions signed in before
    /// that was recorded, the person's most recently used one.
    pub provider: Option<String>,
    /// What the provider said the person belongs to, kept with the sign-in.
    pub membership: crate::model::Membership,
    /// The session's CSRF token, for a logout form on a page answered without the session
    /// layer.
    pub csrf: Option<String>,
    /// The person's full name as the provider gave it, if it gave one.
    pub name: Option<String>,
    /// The first name alone, for a greeting.
    pub first_name: String,
    pub email: Option<String>,
    /// Whether the provider that gave `email` said it verified it (false without one).
    pub email_verified: bool,
    /// When the idle lifetime was last extended (Unix milliseconds).
    pub refreshed_ms: i64,
    /// Whether messages wait in the session for the next page.
    pub has_notices: bool,
}

// Hand-written: the CSRF token must never reach a log line through `{:?}`.
impl std::fmt::Debug for SignedInSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedInSession")
            .field("user", &self.user)
            .field("since_ms", &self.since_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .field("provider", &self.provider)
            .field("membership", &self.membership)
            .field("csrf", &self.csrf.as_ref().map(|_| "[redacted]"))
            .field("name", &self.name)
            .field("first_name", &self.first_name)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("refreshed_ms", &self.refreshed_ms)
            .field("has_notices", &self.has_notices)
            .finish()
    }
}

/// The most sessions [`Store::signed_in_sessions`] reads with one statement.
pub const MAX_SESSIONS_PER_READ: usize = 64;

impl Store {
    /// Of the sessions `ids` (at most [`MAX_SESSIONS_PER_READ`]; duplicates are fine), those
    /// unexpired and signed in as a person who still exists and is not blocked, with that
    /// person, by id; a row
    /// whose data cannot be read as a sign-in is left out (not signed in). One
    /// indexed statement and no write: it answers every request of a site behind forward
    /// authentication, so concurrent checks share it (`web::forward_auth`). A signed-out
    /// session has no row, and a deleted person's sessions are deleted with them (the foreign
    /// key on `session.user_id`), so neither is ever found, on any instance.
    pub async fn signed_in_sessions(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, SignedInSession>, StoreError> {
        let Some(last) = ids.last() else {
            return Ok(HashMap::new());
        };
        // Padded to a power of two with the last id again, so that a handful of statement
        // texts (1, 2, 4 … 64 placeholders) stay prepared instead of one per batch size.
        let slots = ids.len().min(MAX_SESSIONS_PER_READ).next_power_of_two();
        let placeholders: Vec<String> = (1..=slots).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT s.id, s.data, s.signed_in_at, s.last_seen_at, p.blocked_at, p.id,
                    p.display_name, p.first_name, p.email, p.email_verified,
                    COALESCE(s.provider,
                        (SELECT i.provider FROM user_identity i
                          WHERE i.user_profile_id = p.id
                          ORDER BY i.last_login_at DESC, i.id DESC LIMIT 1))
             FROM session s JOIN user_profile p ON p.id = s.user_id
             WHERE s.id IN ({}) AND s.expires_at > ${}",
            placeholders.join(", "),
            slots + 1
        );
        let ids = ids
            .iter()
            .take(slots)
            .chain(std::iter::repeat(last))
            .take(slots);
        type Row = (
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            Option<String>,
            String,
            Option<String>,
            bool,
            Option<String>,
        );
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            // Only placeholders were formatted into it ($1 … $n): the ids are bound.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in ids.clone() {
                query = query.bind(id);
            }
            query.bind(now_ms()).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let (id, data, since, seen, blocked, user, name, first_name, email, verified, provider) =
                    row;
                // Filtered here, not in the statement's WHERE: on PostgreSQL a condition on
                // `blocked_at` before its statistics exist (a new column, a new database) made
                // the planner scan every person for each check (measured: half the checks a
                // second after 9,000 sign-ins).
                if blocked.is_some() {
                    return None;
                }
                let SharedData {
                    signed_in,
                    csrf,
                    notices,
                } = SharedData::parse(&data)?;
                let sign_in = signed_in?;
                let since_ms = since.unwrap_or(sign_in.since_ms);
                let session = SignedInSession {
                    user: UserId(user),
                    // Filled on every write since the column exists, and by its migration.
                    since_ms,
                    last_seen_ms: seen.unwrap_or(since_ms),
                    provider,
                    membership: sign_in.membership,
                    refreshed_ms: sign_in.refreshed_ms,
                    has_notices: notices.is_some(),
                    csrf,
                    name,
                    first_name,
                    // An address's flag means nothing without the address.
                    email_verified: verified && email.is_some(),
                    email,
                };
                Some((id, session))
            })
            .collect())
    }
}

/// Who the record is signed in as, if anyone. Its person is copied into `session.user_id` on
/// every write, so a person's sessions end together: by foreign key when the person is
/// deleted, and with one statement in the deletion's transaction when one of their
/// identities is unlinked.
fn sign_in(record: &Record) -> Option<SessionSignIn> {
    SharedData::sign_in_of(&record.data)
}

/// How a session store error says the database is unavailable (see
/// [`StoreError::is_unavailable`](super::StoreError::is_unavailable)): tower-sessions carries
/// only text, so the web layer recognises the failure by this start.
pub const UNAVAILABLE: &str = "the database is unavailable: ";

tokio::task_local! {
    /// Set, within a request that the web layer scopes with it, when a session read or write
    /// met the database unavailable: tower-sessions answers a failed save with a bare 500 of
    /// its own, and this is how the web layer tells that 500 apart (and answers 503).
    pub static UNAVAILABLE_SEEN: std::cell::Cell<bool>;
}

fn backend(error: sqlx::Error) -> session_store::Error {
    if super::unavailable(&error) {
        // Outside a scoped request (housekeeping) there is nobody to tell.
        let _ = UNAVAILABLE_SEEN.try_with(|seen| seen.set(true));
        session_store::Error::Backend(format!("{UNAVAILABLE}{error}"))
    } else {
        session_store::Error::Backend(error.to_string())
    }
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

fn expires_at_ms(record: &Record) -> i64 {
    i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for SessionTable {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let sign_in = sign_in(record);
        let owner = sign_in.as_ref().map(|s| s.user.0);
        loop {
            // Signed in as someone deleted or blocked meanwhile: not stored, so it reads as
            // signed out.
            let inserted = self
                .write(
                    "INSERT INTO session (id, data, expires_at, user_id, provider, signed_in_at,
                                          last_seen_at, device, provider_sid)
                     SELECT $1, $2, $3, $4, $5, $6, $6, $7, $8
                     WHERE $4 IS NULL OR EXISTS (SELECT 1 FROM user_profile
                                                  WHERE id = $4 AND blocked_at IS NULL)
                     ON CONFLICT (id) DO NOTHING",
                    record,
                    &data,
                    sign_in.as_ref(),
                )
                .await?;
            if inserted == 1 || !self.owner_may_sign_in(owner).await? {
                return Ok(());
            }
            // A 128-bit id collided: draw another.
            record.id = Id::default();
        }
    }

    /// Updates the record in place. A session deleted meanwhile (a sign-out, its person
    /// deleted) stays deleted: an upsert here would bring it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        self.write(
            "UPDATE session
                SET data = $2, expires_at = $3, user_id = $4, provider = $5, signed_in_at = $6,
                    device = $7, provider_sid = $8
              WHERE id = $1
                AND ($4 IS NULL OR EXISTS (SELECT 1 FROM user_profile
                                            WHERE id = $4 AND blocked_at IS NULL))",
            record,
            &data,
            sign_in(record).as_ref(),
        )
        .await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // A session of a blocked person reads as none, so that the pages agree with every
        // other reader even about a row a block raced past (see `Store::block`); filtered
        // here rather than in the WHERE, as in `Store::signed_in_sessions`.
        let row: Option<(String, i64, Option<i64>)> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT s.data, s.expires_at, p.blocked_at FROM session s
               LEFT JOIN user_profile p ON p.id = s.user_id
              WHERE s.id = $1 AND s.expires_at > $2"
        )
        .bind(id.to_string())
        .bind(now_ms())
        .fetch_optional(pool)
        .await)
        .map_err(backend)?;
        let Some((data, expires_at, None)) = row else {
            return Ok(None);
        };
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM session WHERE id = $1"
        )
        .bind(id.to_string())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(backend)?;
        Ok(())
    }
}
