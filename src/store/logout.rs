//! An issuer's back-channel logout: the sign-ins a logout token names are ended, and the
//! token's `jti` is kept until it expires, so that a replay ends nothing, on any instance.

use super::*;

/// What a verified logout token names (OpenID Connect Back-Channel Logout 1.0, 2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerLogout<'a> {
    /// The provider id the issuer is configured as.
    pub provider: &'a str,
    /// The token's `iss`, which scopes its `jti`.
    pub issuer: &'a str,
    pub jti: &'a str,
    /// Until when the `jti` must be remembered (Unix milliseconds).
    pub remember_until_ms: i64,
    /// The issuer's session id: when given, the sign-ins carrying it are ended.
    pub sid: Option<&'a str>,
    /// The person at the issuer: without `sid`, every sign-in of theirs with this provider
    /// is ended.
    pub sub: Option<&'a str>,
}

/// Why a logout ended nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutRefused {
    /// The token's `jti` was seen before (its lifetime has not run out).
    Replayed,
}

impl Store {
    /// Ends what `logout` names and remembers its `jti`, in one transaction: a replay, or a
    /// failure half-way, ends nothing. How many sessions were ended (none is a success: the
    /// person may have signed out already).
    pub async fn issuer_logout(
        &self,
        logout: &IssuerLogout<'_>,
    ) -> Result<Result<u64, LogoutRefused>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let fresh = on_tx!(&mut tx, |conn| sqlx::query(
            "INSERT INTO logout_token_seen (issuer, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, jti) DO NOTHING"
        )
        .bind(logout.issuer)
        .bind(logout.jti)
        .bind(logout.remember_until_ms)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        if fresh == 0 {
            return Ok(Err(LogoutRefused::Replayed));
        }
        let ended = match (logout.sid, logout.sub) {
            (Some(sid), _) => on_tx!(&mut tx, |conn| sqlx::query(
                "DELETE FROM session WHERE provider = $1 AND provider_sid = $2"
            )
            .bind(logout.provider)
            .bind(sid)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?,
            (None, Some(sub)) => on_tx!(&mut tx, |conn| sqlx::query(
                "DELETE FROM session WHERE provider = $1 AND user_id IN
                    (SELECT user_profile_id FROM user_identity
                      WHERE provider = $1 AND provider_user_id = $2)"
            )
            .bind(logout.provider)
            .bind(sub)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?,
            (None, None) => 0,
        };
        tx.commit().await?;
        Ok(Ok(ended))
    }

    /// Forgets logout tokens whose lifetime has run out; how many.
    pub async fn forget_expired_logout_tokens(&self) -> Result<u64, StoreError> {
        let done = on_db!(&self.db, |pool| sqlx::query(
            "DELETE FROM logout_token_seen WHERE expires_at <= $1"
        )
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done)
    }
}
