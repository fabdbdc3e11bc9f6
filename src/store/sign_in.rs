//! What a finished exchange does to the people: the identity found or created, the person's
//! names and address refreshed, an identity joined to an existing person on a verified
//! address, and the operation marked `ok`, in one transaction.

use super::*;

/// Whether a first sign-in with a new identity may join an existing person whose address is
/// the same (`providers.<name>.link_by_verified_email`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailLinking<'a> {
    /// A new identity is always a new person (the default).
    Never,
    /// A new identity joins the one person with the same address (ASCII case aside) when the
    /// provider verified it and that person's address was last verified by one of `trusted`;
    /// anything less (no address, an unverified one, one verified by a provider not in
    /// `trusted` or by nobody known, nobody or several people with it) makes a new person.
    WhenVerified {
        /// The providers whose verification may hand a person's account to a newcomer: those
        /// with `link_by_verified_email` on, the one signing in among them. Another provider's
        /// "verified" (one that says so of whatever its users type) never counts.
        trusted: &'a HashSet<String>,
    },
}

/// What [`Store::complete_sign_in`] did: who is signed in now (not a session: the web layer
/// makes that of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedSignIn {
    pub user: UserId,
    /// The identity was new and joined an existing person on a verified address.
    pub joined_by_email: bool,
    /// The operation went from pending to `ok` with this call (not: it had been ended
    /// meanwhile, by the orphan check say, and stays as it was).
    pub finished: bool,
}

/// A sign-in's membership as the `async_operation.membership` column holds it: JSON, or NULL
/// when the provider named none.
pub(super) fn membership_json(membership: &Membership) -> Option<String> {
    if membership.is_empty() {
        return None;
    }
    serde_json::to_string(membership).ok()
}

/// The names a sign-in writes over the stored ones: none when the provider withheld them
/// ([`Profile::names_withheld`]), which the statements read as "keep".
pub(super) fn given_names(profile: &Profile) -> Option<(&str, &str)> {
    (!profile.names_withheld).then_some((&profile.first_name, &profile.last_name))
}

/// What pages call the person: the provider's name in full, or nothing when it gave none.
pub(super) fn display_name(profile: &Profile) -> Option<String> {
    let name = format!("{} {}", profile.first_name.trim(), profile.last_name.trim());
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Refreshes a person's names and address from `provider`, which they signed in with. A missing
/// address this time (declined, phone-only account) keeps the one we had, with whoever
/// verified it; a given one is recorded as verified by `provider` when it says so, and as
/// unverified otherwise (`email_verified_by`: who last vouched for the address, what
/// `link_by_verified_email` trusts or not).
pub(super) async fn update_profile(
    tx: &mut Tx<'_>,
    user: i64,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(UPDATE_PROFILE)
    .bind(given_names(profile).map(|(first, _)| first))
    .bind(given_names(profile).map(|(_, last)| last))
    .bind(display_name(profile))
    .bind(&profile.email)
    .bind(profile.email_verified)
    .bind(provider)
    .bind(now)
    .bind(user)
    .execute(conn)
    .await
    .map(|done| done.rows_affected()))?;
    Ok(())
}

/// [`update_profile`]'s statement: `$1` … `$5` the names, the address and whether `$6` (the
/// provider) verified it, `$7` now, `$8` the person. The names are NULL when the provider
/// withheld them ([`Profile::names_withheld`]): the stored ones are kept.
pub(super) const UPDATE_PROFILE: &str = "UPDATE user_profile
     SET first_name = COALESCE($1, first_name), last_name = COALESCE($2, last_name),
         display_name = CASE WHEN $1 IS NULL THEN display_name ELSE $3 END,
         email = COALESCE($4, email),
         email_verified = CASE WHEN $4 IS NULL THEN email_verified ELSE $5 END,
         email_verified_by = CASE WHEN $4 IS NULL THEN email_verified_by
                                  WHEN $5 THEN $6 ELSE NULL END,
         updated_at = $7
     WHERE id = $8";

/// The statement that marks a pending operation `ok` for a person: `$1` the status `ok`, `$2`
/// the person, `$3` now, `$4` the operation, `$5` the status `pending`, `$6` the membership,
/// `$7` the issuer's session id.
pub(super) const FINISH_OPERATION: &str = "UPDATE async_operation
     SET async_operation_status_id = $1, user_profile_id = $2, updated_at = $3,
         membership = $6, provider_sid = $7
     WHERE id = $4 AND async_operation_status_id = $5";

/// A new person, from `provider`'s description (the verifier of its address when it verified
/// it).
pub(super) async fn insert_profile(
    tx: &mut Tx<'_>,
    provider: &str,
    profile: &Profile,
    now: i64,
) -> Result<i64, StoreError> {
    let verified = profile.email.is_some() && profile.email_verified;
    let id = on_tx!(tx, |conn| sqlx::query_scalar(
        "INSERT INTO user_profile
         (first_name, last_name, display_name, email, email_verified, email_verified_by,
          created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(&profile.first_name)
    .bind(&profile.last_name)
    .bind(display_name(profile))
    .bind(&profile.email)
    .bind(verified)
    .bind(verified.then_some(provider))
    .bind(now)
    .fetch_one(conn)
    .await)?;
    Ok(id)
}

impl Store {
    /// Finishes a successful exchange in one transaction: creates or updates the person
    /// behind `(provider, profile.provider_user_id)` and marks the operation `ok`. A new
    /// identity is always a new person ([`EmailLinking::Never`]).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn complete_login(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
    ) -> Result<UserId, StoreError> {
        self.complete_sign_in(operation, provider, profile, EmailLinking::Never)
            .await
            .map(|signed_in| signed_in.user)
    }

    /// [`Store::complete_login`], where a new identity may join an existing person on a
    /// verified address when `email_linking` allows it (see [`EmailLinking`]).
    ///
    /// Two first sign-ins of the same person at once (two tabs, two instances) are settled by
    /// `UNIQUE (provider, provider_user_id)`: the identity is inserted `ON CONFLICT DO
    /// NOTHING`, the one that finds it taken rolls back everything it wrote and starts again,
    /// finding the winner's row. One person, never two.
    pub async fn complete_sign_in(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
        email_linking: EmailLinking<'_>,
    ) -> Result<CompletedSignIn, StoreError> {
        for _ in 0..3 {
            if let Some(done) = self
                .try_complete_sign_in(operation, provider, profile, email_linking)
                .await?
            {
                return Ok(done);
            }
        }
        Err(StoreError::Contention)
    }

    /// One attempt of [`Store::complete_sign_in`]; `None` when a racing sign-in created the
    /// identity first (nothing of this attempt is kept).
    async fn try_complete_sign_in(
        &self,
        operation: OperationId,
        provider: &str,
        profile: &Profile,
        email_linking: EmailLinking<'_>,
    ) -> Result<Option<CompletedSignIn>, StoreError> {
        let now = now_ms();
        // A returning person, the usual case, without a transaction (see each function).
        let returning = match &self.db {
            Db::Postgres(pool) => {
                postgres::sign_in_returning_person(pool, operation.0, provider, profile, now)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlite::sign_in_returning_person(pool, operation.0, provider, profile, now)
                    .await?
            }
        };
        if let Some((user, finished)) = returning {
            return Ok(Some(CompletedSignIn {
                user: UserId(user),
                joined_by_email: false,
                finished,
            }));
        }
        let mut tx = self.db.begin_write().await?;
        // A returning person: their identity is marked and names them, in one statement.
        let existing =
            linking::touch_identity(&mut tx, provider, &profile.provider_user_id, now).await?;
        let mut joined_by_email = false;
        let user_id = match existing {
            Some(user_id) => {
                update_profile(&mut tx, user_id, provider, profile, now).await?;
                user_id
            }
            None => {
                let joined = linking::person_to_join(&mut tx, email_linking, profile).await?;
                let user_id = match joined {
                    Some(person) => {
                        update_profile(&mut tx, person, provider, profile, now).await?;
                        joined_by_email = true;
                        person
                    }
                    None => insert_profile(&mut tx, provider, profile, now).await?,
                };
                if !linking::insert_identity(&mut tx, user_id, provider, profile, now).await? {
                    // Taken meanwhile by a racing first sign-in: drop this attempt.
                    return Ok(None);
                }
                user_id
            }
        };
        let finished = on_tx!(&mut tx, |conn| sqlx::query(FINISH_OPERATION)
        .bind(OperationStatus::Ok.id())
        .bind(user_id)
        .bind(now)
        .bind(operation.0)
        .bind(OperationStatus::Pending.id())
        .bind(membership_json(&profile.membership))
        .bind(&profile.provider_sid)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
        tx.announce_finished(operation.0).await?;
        tx.commit().await?;
        Ok(Some(CompletedSignIn {
            user: UserId(user_id),
            joined_by_email,
            finished: finished == 1,
        }))
    }
}
