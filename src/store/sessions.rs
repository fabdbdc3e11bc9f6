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
    /// Runs `sql`, a write of one session, with `$1` its id, `$2` its data, `$3` its expiry
    /// and `$4` the person it is signed in as; how many rows it wrote.
    async fn write(
        &self,
        sql: &'static str,
        record: &Record,
        data: &str,
        owner: Option<i64>,
    ) -> session_store::Result<u64> {
        on_db!(&self.db, |pool| sqlx::query(sql)
            .bind(record.id.to_string())
            .bind(data)
            .bind(expires_at_ms(record))
            .bind(owner)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(backend)
    }

    async fn owner_exists(&self, owner: Option<i64>) -> session_store::Result<bool> {
        let Some(owner) = owner else { return Ok(true) };
        on_db!(&self.db, |pool| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM user_profile WHERE id = $1)"
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

/// A signed-in session as `/auth/check` sees it: one read, nothing written.
#[derive(Clone)]
pub struct SignedInSession {
    /// The session's JSON data, for what only the web layer knows how to read (when the
    /// sign-in began, with which provider).
    pub data: String,
    pub user: UserId,
    /// The person's full name as the provider gave it, if it gave one.
    pub name: Option<String>,
    /// The first name alone, for a greeting.
    pub first_name: String,
    pub email: Option<String>,
    /// Whether the provider that gave `email` said it verified it (false without one).
    pub email_verified: bool,
    /// The provider of the person's most recently used identity: what a session signed in
    /// before sessions recorded their provider is said to be signed in with.
    pub last_provider: Option<String>,
}

// Hand-written: the session's data holds its CSRF token, which must never reach a log line
// through `{:?}`.
impl std::fmt::Debug for SignedInSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedInSession")
            .field("data", &"[redacted]")
            .field("user", &self.user)
            .field("name", &self.name)
            .field("first_name", &self.first_name)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("last_provider", &self.last_provider)
            .finish()
    }
}

/// The most sessions [`Store::signed_in_sessions`] reads with one statement.
pub const MAX_SESSIONS_PER_READ: usize = 64;

impl Store {
    /// Of the sessions `ids` (at most [`MAX_SESSIONS_PER_READ`]; duplicates are fine), those
    /// unexpired and signed in as a person who still exists, with that person, by id. One
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
            "SELECT s.id, s.data, p.id, p.display_name, p.first_name, p.email, p.email_verified,
                    (SELECT i.provider FROM user_identity i
                      WHERE i.user_profile_id = p.id
                      ORDER BY i.last_login_at DESC, i.id DESC LIMIT 1)
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
            i64,
            Option<String>,
            String,
            Option<String>,
            bool,
            Option<String>,
        );
        let rows: Vec<Row> = on_db!(&self.db, |pool| {
            let mut query = sqlx::query_as(&sql);
            for id in ids.clone() {
                query = query.bind(id);
            }
            query.bind(now_ms()).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, data, user, name, first_name, email, verified, last_provider)| {
                let session = SignedInSession {
                    data,
                    user: UserId(user),
                    name,
                    first_name,
                    // An address's flag means nothing without the address.
                    email_verified: verified && email.is_some(),
                    email,
                    last_provider,
                };
                (id, session)
            })
            .collect())
    }
}

/// The session key under which the web layer keeps who is signed in: an object whose `user`
/// is the person's id. The store copies that id into `session.user_id` on every write, so a
/// person's sessions end together: by foreign key when the person is deleted, and with
/// one statement in the deletion's transaction when one of their identities is unlinked.
pub const SIGNED_IN_KEY: &str = "signed_in";

/// Who the record is signed in as, if anyone.
fn owner(record: &Record) -> Option<i64> {
    record.data.get(SIGNED_IN_KEY)?.get("user")?.as_i64()
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
        let owner = owner(record);
        loop {
            // Signed in as someone deleted meanwhile: not stored, so it reads as signed out.
            let inserted = self
                .write(
                    "INSERT INTO session (id, data, expires_at, user_id)
                     SELECT $1, $2, $3, $4
                     WHERE $4 IS NULL OR EXISTS (SELECT 1 FROM user_profile WHERE id = $4)
                     ON CONFLICT (id) DO NOTHING",
                    record,
                    &data,
                    owner,
                )
                .await?;
            if inserted == 1 || !self.owner_exists(owner).await? {
                return Ok(());
            }
            // A 128-bit id collided: draw another.
            record.id = Id::default();
        }
    }

    /// Updates the record in place. A session deleted meanwhile (a sign-out, its person
    /// deleted) stays deleted: an upsert here would bring it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let owner = owner(record);
        let data = encode(record)?;
        self.write(
            "UPDATE session SET data = $2, expires_at = $3, user_id = $4
             WHERE id = $1
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM user_profile WHERE id = $4))",
            record,
            &data,
            owner,
        )
        .await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT data, expires_at FROM session WHERE id = $1 AND expires_at > $2"
        )
        .bind(id.to_string())
        .bind(now_ms())
        .fetch_optional(pool)
        .await)
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
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
